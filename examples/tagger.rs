//! A token classifier: an embedding, a two-layer bidirectional LSTM and a linear head tag each
//! token of variable-length sequences with whether the same token comes again later in its
//! sequence — which only the reverse direction can see. Training batches are bucketed by
//! length; the loss is a cross-entropy over every valid step. The trained model is saved,
//! loaded into a freshly built one, and checked to predict exactly as before.
//!
//! ```sh
//! cargo run --release --example tagger -- --epochs 20
//! ```

use std::error::Error;

use clap::Parser;
use recurrent::rand::{rngs::StdRng, Rng, SeedableRng};
use recurrent::{
    clip_grad_norm, load, pad_collate, save, AdamConfig, BatchSamplerConfig, CrossEntropyLoss,
    EmbeddingConfig, Layer, LinearConfig, LstmConfig, Mode, Optimizer, Parameters, Sequence,
    Tensor, TimeDistributed, TokenBatch,
};

/// Token ids 1..VOCAB; 0 pads.
const VOCAB: usize = 20;

#[derive(Parser)]
#[command(about = "A bidirectional LSTM tagger, trained, saved and reloaded")]
struct Args {
    /// Passes over the training sequences.
    #[arg(long, default_value_t = 10)]
    epochs: u64,
    /// Seed of the data, the initialisation and the batches.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where to save the trained weights (a safetensors file).
    #[arg(long, default_value = "target/tagger.safetensors")]
    out: std::path::PathBuf,
}

/// A random sequence of 4 to 24 tokens and its tags: 1 where the token appears again later.
fn sample(rng: &mut StdRng) -> (Vec<usize>, Vec<usize>) {
    let len = rng.random_range(4..=24);
    let tokens: Vec<usize> = (0..len).map(|_| rng.random_range(1..VOCAB)).collect();
    let tags = (0..len)
        .map(|i| usize::from(tokens[i + 1..].contains(&tokens[i])))
        .collect();
    (tokens, tags)
}

/// The model, from a seed: `embedding → rnn → head` at every step.
fn build(
    seed: u64,
) -> recurrent::Result<
    impl Layer<f32, Input = TokenBatch, Output = Sequence<f32>, OutputGrad = Tensor<f32>>,
> {
    Ok(EmbeddingConfig::new(VOCAB, 16)
        .with_padding_idx(Some(0))
        .init_seeded::<f32>(seed)?
        .named("embedding")
        .then(
            LstmConfig::new(16, 32)
                .with_num_layers(2)
                .with_bidirectional(true)
                .init_seeded(seed + 1)?
                .named("rnn"),
        )
        .then(TimeDistributed::new(LinearConfig::new(64, 2).init_seeded(seed + 2)?).named("head")))
}

/// The tokens and tags of the sequences at `indices`, padded into time-major batches.
fn collate(
    data: &[(Vec<usize>, Vec<usize>)],
    indices: &[usize],
) -> recurrent::Result<(TokenBatch, TokenBatch)> {
    let tokens: Vec<&[usize]> = indices.iter().map(|&i| &data[i].0[..]).collect();
    let tags: Vec<&[usize]> = indices.iter().map(|&i| &data[i].1[..]).collect();
    Ok((pad_collate(&tokens, 0, None)?, pad_collate(&tags, 0, None)?))
}

/// The share of valid steps whose most likely tag is the true one.
fn accuracy(logits: &Sequence<f32>, tags: &TokenBatch) -> f64 {
    let (mut right, mut all) = (0, 0);
    for (t, b, scores) in logits.valid_steps() {
        let predicted = usize::from(scores[1] > scores[0]);
        right += usize::from(predicted == tags.at(t, b));
        all += 1;
    }
    right as f64 / all as f64
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = Args::parse();
    let mut rng = StdRng::seed_from_u64(args.seed);
    let data: Vec<_> = (0..2400).map(|_| sample(&mut rng)).collect();
    let (train, test) = data.split_at(2000);

    let mut model = build(args.seed)?;
    println!("{}", model.summary());
    let lengths = train.iter().map(|(tokens, _)| tokens.len()).collect();
    let sampler = BatchSamplerConfig::new(train.len(), 32)
        .with_shuffle(args.seed)
        .with_buckets(lengths, 8)
        .init()?;
    let mut adam = AdamConfig::new(3e-3).init()?;
    let loss_fn = CrossEntropyLoss::new();
    let (test_tokens, test_tags) = collate(test, &(0..test.len()).collect::<Vec<_>>())?;

    let mut step = 0;
    for epoch in 0..args.epochs {
        let mut total = 0.0;
        let batches = sampler.epoch(epoch);
        for batch in &batches {
            let (tokens, tags) = collate(train, batch)?;
            let (logits, trace) = model.forward(&tokens, Mode::Train { seed: step })?;
            let loss = loss_fn.forward_sequence(&logits, tags.ids())?;
            let mut grads = model.backward(&trace, &loss.grad)?.params;
            clip_grad_norm(&mut grads, 1.0)?;
            adam.step(&mut model, &grads)?;
            total += f64::from(loss.value);
            step += 1;
        }
        let test_accuracy = accuracy(&model.infer(&test_tokens)?, &test_tags);
        println!(
            "epoch {epoch}: training loss {:.4}, test accuracy {:.1}%",
            total / batches.len() as f64,
            100.0 * test_accuracy
        );
    }

    // save, load into a model built from another seed, and predict again
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    save(&model, &args.out)?;
    let mut reloaded = build(args.seed + 100)?;
    load(&mut reloaded, &args.out)?;
    let (before, after) = (model.infer(&test_tokens)?, reloaded.infer(&test_tokens)?);
    assert_eq!(
        before, after,
        "the reloaded model predicts exactly as the trained one"
    );
    println!(
        "saved to {} and reloaded: the same predictions on all {} test sequences",
        args.out.display(),
        test.len()
    );
    Ok(())
}
