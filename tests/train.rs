//! End to end: a two-layer bidirectional LSTM with a linear head, trained with Adam from a fixed
//! seed, learns which of two marker symbols comes first in a noisy sequence of 30 steps, to at
//! least 95% accuracy on held-out sequences within a bounded number of steps.
//!
//! Each step of a sequence has four features: marker A, marker B, a distractor symbol that
//! appears at random, and Gaussian noise. Markers A and B appear exactly once each, at random
//! distinct positions; the label is 1 when A comes first. The network reads the sequence in both
//! directions; the head reads the last layer's final forward and reverse `h`.

use rand::{rngs::StdRng, Rng, SeedableRng};
use recurrent::{
    binary_cross_entropy_with_logits, clip_grad_norm, AdamConfig, Linear, LinearConfig, Lstm,
    LstmConfig, NamedTensors, Optimizer, Parameters, SequenceLayer, State, Tensor,
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

struct Model {
    rnn: Lstm<f32>,
    head: Linear<f32>,
}

impl Parameters<f32> for Model {
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Tensor<f32>)) {
        self.rnn.visit_params(&mut |n, t| f(&format!("rnn.{n}"), t));
        self.head
            .visit_params(&mut |n, t| f(&format!("head.{n}"), t));
    }

    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Tensor<f32>)) {
        self.rnn
            .visit_params_mut(&mut |n, t| f(&format!("rnn.{n}"), t));
        self.head
            .visit_params_mut(&mut |n, t| f(&format!("head.{n}"), t));
    }
}

/// The last layer's final forward and reverse `h` side by side, `(B, 2H)`, from `h_n`
/// `(4, B, H)`.
fn last_layer_h(h_n: &Tensor<f32>) -> Tensor<f32> {
    let batch = h_n.shape()[1];
    let slot = |s: usize, b: usize| &h_n.as_slice()[(s * batch + b) * HIDDEN..][..HIDDEN];
    let data = (0..batch)
        .flat_map(|b| [slot(2, b), slot(3, b)].concat())
        .collect();
    Tensor::from_vec(data, &[batch, 2 * HIDDEN]).expect("sized to fit")
}

/// The inverse of [`last_layer_h`] for gradients: zeros for the first layer's slots.
fn into_h_n(d: &Tensor<f32>) -> Tensor<f32> {
    let batch = d.shape()[0];
    let mut h_n = Tensor::zeros(&[4, batch, HIDDEN]);
    for b in 0..batch {
        let row = &d.as_slice()[b * 2 * HIDDEN..][..2 * HIDDEN];
        for (k, slot) in [2, 3].into_iter().enumerate() {
            h_n.as_mut_slice()[(slot * batch + b) * HIDDEN..][..HIDDEN]
                .copy_from_slice(&row[k * HIDDEN..][..HIDDEN]);
        }
    }
    h_n
}

impl Model {
    /// Logits `(B, 1)`, the features the head read, and the network's trace.
    fn forward(&self, x: &Tensor<f32>) -> (Tensor<f32>, Tensor<f32>, recurrent::NetworkTrace<f32>) {
        let out = self.rnn.forward(x, None, None).expect("valid input");
        let features = last_layer_h(out.state.h());
        let logits = self.head.forward(&features).expect("valid features");
        (logits, features, out.trace)
    }

    fn accuracy(&self, x: &Tensor<f32>, labels: &[f32]) -> f64 {
        let (logits, _, _) = self.forward(x);
        let right = logits
            .as_slice()
            .iter()
            .zip(labels)
            .filter(|(&z, &y)| (z > 0.0) == (y > 0.5))
            .count();
        right as f64 / labels.len() as f64
    }
}

#[test]
fn a_bidirectional_lstm_learns_which_marker_comes_first() {
    let rng = &mut StdRng::seed_from_u64(2026);
    let config = LstmConfig::new(FEATURES, HIDDEN)
        .with_num_layers(2)
        .with_bidirectional(true);
    let mut model = Model {
        rnn: config.init(rng).expect("valid config"),
        head: LinearConfig::new(2 * HIDDEN, 1)
            .init(rng)
            .expect("a small layer"),
    };
    let mut adam = AdamConfig::new(0.01).init().expect("valid learning rate");
    let (held_out, held_out_labels) = batch(1000, &mut StdRng::seed_from_u64(7));
    let before = model.accuracy(&held_out, &held_out_labels);

    let mut accuracy = before;
    let mut steps = 0;
    while steps < MAX_STEPS && accuracy < 0.97 {
        let (x, labels) = batch(BATCH, rng);
        let (logits, features, trace) = model.forward(&x);
        let targets = Tensor::from_vec(labels, &[BATCH, 1]).expect("one per sample");
        let loss = binary_cross_entropy_with_logits(&logits, &targets).expect("same shapes");
        let head = model.head.backward(&features, &loss.grad).expect("shapes");
        let d_state = State::from_hc(into_h_n(&head.input), Tensor::zeros(&[4, BATCH, HIDDEN]));
        let rnn = model
            .rnn
            .backward(&trace, None, Some(&d_state))
            .expect("shapes");
        let mut grads = NamedTensors::new();
        grads.extend_prefixed("rnn.", rnn.params);
        grads.extend_prefixed("head.", head.params);
        clip_grad_norm(&mut grads, 1.0).expect("a valid limit");
        adam.step(&mut model, &grads)
            .expect("a gradient for every parameter");
        steps += 1;
        if steps % 50 == 0 {
            accuracy = model.accuracy(&held_out, &held_out_labels);
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
