//! End to end: a two-layer bidirectional LSTM with a linear head, trained with Adam from a fixed
//! seed, learns which of two marker symbols comes first in a noisy sequence of 30 steps, to at
//! least 95% accuracy on held-out sequences within a bounded number of steps.
//!
//! Each step of a sequence has four features: marker A, marker B, a distractor symbol that
//! appears at random, and Gaussian noise. Markers A and B appear exactly once each, at random
//! distinct positions; the label is 1 when A comes first. The network reads the sequence in both
//! directions; the head reads the last layer's final forward and reverse `h`.

use recurrent::rand::{rngs::StdRng, Rng, SeedableRng};
use recurrent::{
    binary_cross_entropy_with_logits, clip_grad_norm, AdamConfig, LastHidden, Layer, LinearConfig,
    LstmConfig, Mode, Optimizer, Sequence, Tensor,
};

const SEQ_LEN: usize = 30;
const FEATURES: usize = 4;
const HIDDEN: usize = 16;
const BATCH: usize = 32;
const MAX_STEPS: usize = 1200;

/// A batch of sequences `(T, B, 4)` and their labels.
fn batch(size: usize, rng: &mut StdRng) -> (Tensor<f32>, Vec<f32>) {
    let mut x = vec![0.0f32; SEQ_LEN * size * FEATURES];
    let mut labels = Vec::with_capacity(size);
    for b in 0..size {
        let a = rng.random_range(0..SEQ_LEN);
        let mut m = rng.random_range(0..SEQ_LEN - 1);
        if m >= a {
            m += 1;
        }
        for t in 0..SEQ_LEN {
            let row = &mut x[(t * size + b) * FEATURES..][..FEATURES];
            row[0] = f32::from(t == a);
            row[1] = f32::from(t == m);
            row[2] = f32::from(t != a && t != m && rng.random_bool(0.2));
            row[3] = rng.random::<f32>() - 0.5;
        }
        labels.push(f32::from(a < m));
    }
    let x = Tensor::from_vec(x, &[SEQ_LEN, size, FEATURES]).expect("sized to fit");
    (x, labels)
}

/// The share of `labels` the model's logits get right.
fn accuracy(logits: &Tensor<f32>, labels: &[f32]) -> f64 {
    let right = logits
        .as_slice()
        .iter()
        .zip(labels)
        .filter(|(&z, &y)| (z > 0.0) == (y > 0.5))
        .count();
    right as f64 / labels.len() as f64
}

#[test]
fn a_bidirectional_lstm_learns_which_marker_comes_first() {
    let rng = &mut StdRng::seed_from_u64(2026);
    let config = LstmConfig::new(FEATURES, HIDDEN)
        .with_num_layers(2)
        .with_bidirectional(true);
    // the last layer's final forward and reverse h, then a linear head
    let mut model = config
        .init(rng)
        .expect("valid config")
        .named("rnn")
        .then(LastHidden)
        .then(
            LinearConfig::new(2 * HIDDEN, 1)
                .init(rng)
                .expect("a small layer")
                .named("head"),
        );
    let mut adam = AdamConfig::new(0.01).init().expect("valid learning rate");
    let (held_out, held_out_labels) = batch(1000, &mut StdRng::seed_from_u64(7));
    let held_out = Sequence::new(held_out, None).expect("a sequence batch");
    let evaluate = |model: &dyn Fn(&Sequence<f32>) -> Tensor<f32>| {
        accuracy(&model(&held_out), &held_out_labels)
    };
    let before = evaluate(&|x| model.infer(x).expect("valid input"));

    let mut accuracy = before;
    let mut steps = 0;
    while steps < MAX_STEPS && accuracy < 0.97 {
        let (x, labels) = batch(BATCH, rng);
        let x = Sequence::new(x, None).expect("a sequence batch");
        let (logits, trace) = model
            .forward(&x, Mode::Train { seed: steps as u64 })
            .expect("valid input");
        let targets = Tensor::from_vec(labels, &[BATCH, 1]).expect("one per sample");
        let loss = binary_cross_entropy_with_logits(&logits, &targets).expect("same shapes");
        let mut grads = model.backward(&trace, &loss.grad).expect("shapes").params;
        clip_grad_norm(&mut grads, 1.0).expect("a valid limit");
        adam.step(&mut model, &grads)
            .expect("a gradient for every parameter");
        steps += 1;
        if steps % 50 == 0 {
            accuracy = evaluate(&|x| model.infer(x).expect("valid input"));
            println!(
                "step {steps}: loss {:.4}, held-out accuracy {accuracy:.3}",
                loss.value
            );
        }
    }
    println!("held-out accuracy {before:.3} before training, {accuracy:.3} after {steps} steps");
    assert!(before < 0.7, "the task is not solved by chance: {before}");
    assert!(
        accuracy >= 0.95,
        "held-out accuracy {accuracy} after {steps} steps"
    );
}
