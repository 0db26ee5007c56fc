//! One training step of an IMDB-sized sentence classifier — embedding 128 (vocabulary 20 000),
//! bidirectional LSTM 128, final states of both directions, linear head with 2 classes,
//! cross-entropy — on a batch of 64 reviews of up to 400 tokens (lengths 100..=400), in `f32`:
//!
//! - `chain`: the model as a [`Chain`](recurrent::Chain), one `forward`, one `backward`;
//! - `by_hand`: the same step written layer by layer: each layer's backward called in reverse
//!   order, the final states gathered from `h_n` and their gradient scattered back by hand, the
//!   gradients renamed into one map.
//!
//! Both compute the same gradients (checked before timing). FLOPs per step count the LSTM only:
//! `3 · 2 · 2·4·H·(E + H)` per valid token (train = 3× forward, two directions).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use recurrent::rand::{rngs::StdRng, Rng, SeedableRng};
use recurrent::{
    CrossEntropyLoss, Embedding, EmbeddingConfig, LastHidden, Layer, Linear, LinearConfig, Lstm,
    LstmConfig, Mode, NamedTensors, SequenceLayer, State, Tensor, TokenBatch,
};

const VOCAB: usize = 20_000;
const EMBED: usize = 128;
const HIDDEN: usize = 128;
const BATCH: usize = 64;
const STEPS: usize = 400;

/// The three layers, built once.
fn layers() -> (Embedding<f32>, Lstm<f32>, Linear<f32>) {
    (
        EmbeddingConfig::new(VOCAB, EMBED)
            .with_padding_idx(Some(0))
            .init_seeded(0)
            .unwrap(),
        LstmConfig::new(EMBED, HIDDEN)
            .with_bidirectional(true)
            .init_seeded(1)
            .unwrap(),
        LinearConfig::new(2 * HIDDEN, 2).init_seeded(2).unwrap(),
    )
}

/// A batch of reviews of 100 to 400 tokens, time-major, padded with 0, and their classes.
fn batch() -> (TokenBatch, Vec<usize>) {
    let rng = &mut StdRng::seed_from_u64(3);
    let mut lengths: Vec<usize> = (0..BATCH).map(|_| rng.random_range(100..=STEPS)).collect();
    lengths[0] = STEPS;
    let ids = (0..STEPS * BATCH)
        .map(|i| {
            let (t, b) = (i / BATCH, i % BATCH);
            if t < lengths[b] {
                rng.random_range(1..VOCAB)
            } else {
                0
            }
        })
        .collect();
    let classes = (0..BATCH).map(|_| rng.random_range(0..2)).collect();
    (
        TokenBatch::new(ids, STEPS, BATCH, Some(lengths)).unwrap(),
        classes,
    )
}

/// The training step written layer by layer, as it had to be before chains: the final
/// forward and reverse `h` of the last layer picked out of `h_n` `(2, B, H)`, their gradient
/// scattered back into a `d_state`, each backward in reverse order, names given by hand.
fn step_by_hand(
    (embedding, lstm, head): &(Embedding<f32>, Lstm<f32>, Linear<f32>),
    tokens: &TokenBatch,
    classes: &[usize],
) -> NamedTensors<f32> {
    let (x, x_trace) = embedding.forward(tokens, Mode::Train { seed: 0 }).unwrap();
    let out = lstm
        .forward_with_state(x.data(), None, tokens.lengths(), Mode::Train { seed: 0 })
        .unwrap();
    let h_n = out.state.h().as_slice();
    let mut last = vec![0.0; BATCH * 2 * HIDDEN];
    for b in 0..BATCH {
        for d in 0..2 {
            let from = (d * BATCH + b) * HIDDEN;
            last[(b * 2 + d) * HIDDEN..][..HIDDEN].copy_from_slice(&h_n[from..from + HIDDEN]);
        }
    }
    let last = Tensor::from_vec(last, &[BATCH, 2 * HIDDEN]).unwrap();
    let (logits, head_trace) = head.forward(&last, Mode::Train { seed: 0 }).unwrap();
    let loss = CrossEntropyLoss::new().forward(&logits, classes).unwrap();

    let head_grads = head.backward(&head_trace, &loss.grad).unwrap();
    let mut d_h = vec![0.0; 2 * BATCH * HIDDEN];
    for b in 0..BATCH {
        for d in 0..2 {
            let to = (d * BATCH + b) * HIDDEN;
            d_h[to..to + HIDDEN]
                .copy_from_slice(&head_grads.input.as_slice()[(b * 2 + d) * HIDDEN..][..HIDDEN]);
        }
    }
    let d_state = State::from_h(Tensor::from_vec(d_h, &[2, BATCH, HIDDEN]).unwrap());
    let lstm_grads = lstm
        .backward_with_state(&out.trace, None, Some(&d_state))
        .unwrap();
    let embedding_grads = embedding.backward(&x_trace, &lstm_grads.input).unwrap();
    let mut grads = NamedTensors::new();
    grads.extend_prefixed("embedding.", embedding_grads.params);
    grads.extend_prefixed("rnn.", lstm_grads.params);
    grads.extend_prefixed("head.", head_grads.params);
    grads
}

fn training_step(c: &mut Criterion) {
    let (tokens, classes) = batch();
    let parts = layers();
    let (embedding, lstm, head) = layers();
    let model = embedding
        .named("embedding")
        .then(lstm.named("rnn"))
        .then(LastHidden)
        .then(head.named("head"));
    let step_chain = || {
        let (logits, trace) = model.forward(&tokens, Mode::Train { seed: 0 }).unwrap();
        let loss = CrossEntropyLoss::new().forward(&logits, &classes).unwrap();
        model.backward(&trace, &loss.grad).unwrap().params
    };
    // the two ways compute the same gradients
    let (a, b) = (step_chain(), step_by_hand(&parts, &tokens, &classes));
    assert_eq!(a.len(), b.len());
    for ((name_a, ga), (name_b, gb)) in a.iter().zip(b.iter()) {
        assert_eq!(name_a, name_b);
        assert!(ga.max_abs_diff(gb).unwrap() <= 1e-6, "{name_a}");
    }

    let valid: usize = tokens.lengths().unwrap().iter().sum();
    let flops = (3 * 2 * 2 * 4 * HIDDEN * (EMBED + HIDDEN) * valid) as u64;
    let mut group = c.benchmark_group("imdb_step/f32");
    group
        .sample_size(10)
        .throughput(Throughput::Elements(flops));
    group.bench_function("chain", |bench| bench.iter(step_chain));
    group.bench_function("by_hand", |bench| {
        bench.iter(|| step_by_hand(&parts, &tokens, &classes))
    });
    group.finish();
}

criterion_group!(benches, training_step);
criterion_main!(benches);
