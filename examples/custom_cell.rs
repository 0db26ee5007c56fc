//! A cell of your own, the update-gate RNN of Collins et al. (2017). A [`Cell`] gives its state,
//! its parameters, one step from the input projection `p` and that step's derivative; [`Recurrent`]
//! does the rest (`p` for all steps at once, lengths, backpropagation through time, weight
//! gradients). `cargo run --release --example custom_cell` (`-- --quick` for a short run).
mod support;

use recurrent::rand::{rngs::StdRng, SeedableRng};
use recurrent::{kernels, mse_loss, AdamConfig, BackwardStep, Cell, CellParams, Float, Gradcheck};
use recurrent::{LastHidden, Layer, LinearConfig, MatMut, MatRef, Mode, Optimizer, Recurrent};
use recurrent::{StatePart, Tensor};

/// `c = tanh(p_c + W_hc h + b_hc)`, `g = σ(p_g + W_hg h + b_hg)`, `h' = g ⊙ h + (1 − g) ⊙ c`,
/// from `weight_ih (2H, I)`, `weight_hh (2H, H)`, `bias_ih` and `bias_hh (2H)`, blocks (c, g).
#[derive(Clone)]
struct Ugrnn<T>(CellParams<T>, [StatePart; 1]);

fn ugrnn<T: Float>(input: usize, hidden: usize, rng: &mut StdRng) -> recurrent::Result<Ugrnn<T>> {
    let params = CellParams::init(2 * hidden, input, hidden, true, rng)?;
    Ok(Ugrnn(params, [StatePart::new("h", hidden)]))
}

/// The sizes, `validate_params` and `separate_hidden_grad` (`false`) come from the defaults.
impl<T: Float> Cell<T> for Ugrnn<T> {
    fn state_parts(&self) -> &[StatePart] {
        &self.1
    }
    fn saved_width(&self) -> usize {
        2 * self.hidden_size() // c and g
    }
    fn params(&self) -> &CellParams<T> {
        &self.0
    }
    fn params_mut(&mut self) -> &mut CellParams<T> {
        &mut self.0
    }
    /// `saved ← (c, g)` from `p + W_hh h + b_hh`, then `h' = c + g ⊙ (h − c)`.
    fn step(&self, batch: usize, p: &[T], prev: &[T], next: &mut [T], saved: &mut [T]) {
        let h = self.hidden_size();
        kernels::broadcast_bias(self.0.bias_hh(), batch, 2 * h, saved, 2 * h);
        let pre = MatMut::new(saved, batch, 2 * h);
        kernels::recurrent_product(&self.0, MatRef::new(prev, batch, h), T::one(), pre);
        saved.iter_mut().zip(p).for_each(|(s, &p)| *s = *s + p);
        for row in saved.chunks_mut(2 * h) {
            kernels::tanh(&mut row[..h]);
            kernels::sigmoid(&mut row[h..]);
        }
        for (i, (next, prev)) in next.iter_mut().zip(prev).enumerate() {
            let k = i / h * 2 * h + i % h;
            *next = saved[k] + saved[k + h] * (*prev - saved[k]);
        }
    }
    /// `d_p = (d_h' (1 − g)(1 − c²), d_h' (h − c) g (1 − g))`, `d_h = d_h' g + d_p W_hh`.
    fn step_backward(&self, s: BackwardStep<'_, T>, _: &mut CellParams<T>) {
        let (h, one) = (self.hidden_size(), T::one());
        for i in 0..s.batch * h {
            let (k, dh) = (i / h * 2 * h + i % h, s.d_next[i]);
            let (c, g) = (s.saved[k], s.saved[k + h]);
            s.d_p[k] = dh * (one - g) * (one - c * c);
            s.d_p[k + h] = dh * (s.prev[i] - c) * g * (one - g);
            s.d_prev[i] = dh * g;
        }
        let d_p = MatRef::new(s.d_p, s.batch, 2 * h);
        kernels::recurrent_product_backward(&self.0, d_p, one, MatMut::new(s.d_prev, s.batch, h));
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let quick = std::env::args().any(|a| a == "--quick");
    let mut rng = StdRng::seed_from_u64(0);
    // every gradient against finite differences, in f64, over sequences of lengths 5 and 3
    let layer = Recurrent::new(ugrnn::<f64>(2, 3, &mut rng)?);
    let x = Tensor::randn(&[5, 2, 2], &mut rng);
    let report = Gradcheck::new().check_layer(&layer, &x, None, Some(&[5, 3]))?;
    println!("gradcheck {report}");
    assert!(
        report.worst_error < 1e-6,
        "the gradients differ from finite differences"
    );
    // its last hidden state → a linear head, trained with Adam on fresh batches of the task
    let (steps, len) = if quick { (300, 20) } else { (600, 50) };
    let model = Recurrent::new(ugrnn(2, 32, &mut rng)?).then(LastHidden);
    let mut model = model.then(LinearConfig::new(32, 1).init(&mut rng)?);
    let mut adam = AdamConfig::new(1e-2).init()?;
    for step in 0..=steps {
        let (x, y) = support::tasks::adding_data(32, len, &mut rng)?;
        let (prediction, trace) = model.forward(&x, Mode::Train { seed: step })?;
        let loss = mse_loss(&prediction, &y)?;
        let grads = model.backward(&trace, &loss.grad)?.params;
        adam.step(&mut model, &grads)?;
        if step % (steps / 5) == 0 {
            println!("step {step:>4}: mse {:.4}", loss.value);
        }
    }
    let (x, y) = support::tasks::adding_data::<f32>(1000, len, &mut rng)?;
    let mean = Tensor::full(y.shape(), y.as_slice().iter().sum::<f32>() / 1000.0);
    let mse = mse_loss(&model.infer(&x)?, &y)?.value;
    let baseline = mse_loss(&mean, &y)?.value;
    println!("T = {len}: test mse {mse:.4}; predicting the mean scores {baseline:.4}");
    assert!(mse < baseline / 10.0, "the model did not learn the sum");
    Ok(())
}
