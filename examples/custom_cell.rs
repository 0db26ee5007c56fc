//! A cell of your own: the update-gate RNN (UGRNN) of Collins, Sohl-Dickstein & Sussillo (2017),
//! checked against finite differences, then trained on the adding problem (the sum of the two
//! marked values of a random sequence), which a gate that holds what it has read makes learnable.
//!
//! A [`Cell`] gives its state parts, its parameters, one step from the input projection `p` and
//! that step's derivative; its sizes are read from these. [`Recurrent`] does the rest: `p` for
//! all steps in one product, sequence lengths, backpropagation through time, weight gradients.
//!
//! `cargo run --release --example custom_cell` (`-- --quick` for a short run).

mod support;

use recurrent::rand::{rngs::StdRng, SeedableRng};
use recurrent::{
    kernels, mse_loss, AdamConfig, BackwardStep, Cell, CellParams, Float, Gradcheck, LastHidden,
    Layer, LinearConfig, MatMut, MatRef, Mode, Optimizer, Recurrent, StatePart, Tensor,
};
use support::tasks::adding_data;

/// `c = tanh(p_c + W_hc h + b_hc)`, `g = σ(p_g + W_hg h + b_hg)`, `h' = g ⊙ h + (1 − g) ⊙ c`.
#[derive(Clone)]
struct Ugrnn<T> {
    /// `weight_ih (2H, I)`, `weight_hh (2H, H)`, `bias_ih`, `bias_hh (2H)`, blocks (c, g).
    params: CellParams<T>,
    /// The state: `h` alone.
    parts: [StatePart; 1],
}

impl<T: Float> Ugrnn<T> {
    /// `hidden` units reading `input` features, initialised as PyTorch does.
    fn new(input: usize, hidden: usize, rng: &mut StdRng) -> recurrent::Result<Self> {
        let params = CellParams::init(2 * hidden, input, hidden, true, rng)?;
        let parts = [StatePart::new("h", hidden)];
        Ok(Ugrnn { params, parts })
    }
}

/// The sizes (`input_size`, `hidden_size`, `gate_width`), `validate_params` and
/// `separate_hidden_grad` (`false`: the gradient of `W_hh h + b_hh` is that of `p`) are provided.
impl<T: Float> Cell<T> for Ugrnn<T> {
    fn state_parts(&self) -> &[StatePart] {
        &self.parts
    }
    fn saved_width(&self) -> usize {
        2 * self.hidden_size() // c and g
    }
    fn params(&self) -> &CellParams<T> {
        &self.params
    }
    fn params_mut(&mut self) -> &mut CellParams<T> {
        &mut self.params
    }

    /// `saved ← (c, g)`, then `h' = c + g ⊙ (h − c)`.
    fn step(&self, batch: usize, p: &[T], prev: &[T], next: &mut [T], saved: &mut [T]) {
        let h = self.hidden_size();
        kernels::broadcast_bias(self.params.bias_hh(), batch, 2 * h, saved, 2 * h);
        let pre = MatMut::new(saved, batch, 2 * h);
        kernels::recurrent_product(&self.params, MatRef::new(prev, batch, h), T::one(), pre);
        saved.iter_mut().zip(p).for_each(|(s, &p)| *s = *s + p);
        for b in 0..batch {
            let (c, g) = saved[b * 2 * h..][..2 * h].split_at_mut(h);
            kernels::tanh(c);
            kernels::sigmoid(g);
            for j in 0..h {
                next[b * h + j] = c[j] + g[j] * (prev[b * h + j] - c[j]);
            }
        }
    }

    /// `d_p = (d_h' (1 − g)(1 − c²), d_h' (h − c) g (1 − g))`, `d_h = d_h' g + d_p·W_hh`.
    fn step_backward(&self, s: BackwardStep<'_, T>, _: &mut CellParams<T>) {
        let (h, one) = (self.hidden_size(), T::one());
        for b in 0..s.batch {
            let (c, g) = s.saved[b * 2 * h..][..2 * h].split_at(h);
            for j in 0..h {
                let (dh, k) = (s.d_next[b * h + j], b * 2 * h + j);
                s.d_p[k] = dh * (one - g[j]) * (one - c[j] * c[j]);
                s.d_p[k + h] = dh * (s.prev[b * h + j] - c[j]) * g[j] * (one - g[j]);
                s.d_prev[b * h + j] = dh * g[j];
            }
        }
        let d_p = MatRef::new(s.d_p, s.batch, 2 * h);
        let d_h = MatMut::new(s.d_prev, s.batch, h);
        kernels::recurrent_product_backward(&self.params, d_p, one, d_h);
    }
}

/// Checks the cell's gradients, then trains a model built on it.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let quick = std::env::args().any(|a| a == "--quick");
    let mut rng = StdRng::seed_from_u64(0);
    // every gradient against finite differences, in f64, over sequences of lengths 5 and 3
    let layer = Recurrent::new(Ugrnn::<f64>::new(2, 3, &mut rng)?);
    let x = Tensor::randn(&[5, 2, 2], &mut rng);
    let report = Gradcheck::new().check_layer(&layer, &x, None, Some(&[5, 3]))?;
    println!("gradcheck {report}");
    if report.worst_error > 1e-6 {
        return Err("the gradients do not match finite differences".into());
    }
    // UGRNN → its last hidden state → a linear head, trained with Adam on fresh batches
    let (steps, len) = if quick { (300, 20) } else { (600, 50) };
    let hidden = 32;
    let model = Recurrent::new(Ugrnn::new(2, hidden, &mut rng)?).then(LastHidden);
    let mut model = model.then(LinearConfig::new(hidden, 1).init(&mut rng)?);
    let mut adam = AdamConfig::new(1e-2).init()?;
    for step in 0..steps {
        let (x, y) = adding_data(32, len, &mut rng)?;
        let (prediction, trace) = model.forward(&x, Mode::Train { seed: step })?;
        let loss = mse_loss(&prediction, &y)?;
        let grads = model.backward(&trace, &loss.grad)?.params;
        adam.step(&mut model, &grads)?;
        if step % (steps / 5) == 0 || step == steps - 1 {
            println!("step {step:>4}: mse {:.4}", loss.value);
        }
    }
    let (x, y) = adding_data::<f32>(1000, len, &mut rng)?;
    let mean = Tensor::full(y.shape(), y.as_slice().iter().sum::<f32>() / 1000.0);
    let mse = mse_loss(&model.infer(&x)?, &y)?.value;
    let baseline = mse_loss(&mean, &y)?.value;
    println!("T = {len}: test mse {mse:.4}; predicting the mean scores {baseline:.4}");
    if mse > baseline / 10.0 {
        return Err("the model did not learn the sum".into());
    }
    Ok(())
}
