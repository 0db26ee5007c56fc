//! Tasks with a target at every step (memory, copy, `y_t = x_0·x_t`, next value) and the loop
//! that trains a sequence-to-sequence model on them, scoring a range of steps.

use std::ops::Range;

use indicatif::ProgressBar;
use recurrent::rand::seq::SliceRandom;
use recurrent::rand::{rngs::StdRng, SeedableRng};
use recurrent::{
    clip_grad_norm, mse_loss, AdamConfig, Float, Layer, Mode, Optimizer, Parameters, Sequence,
    Tensor,
};

use super::tasks::Training;

/// Sequences with one target per step: inputs `(T, N, F)` and targets `(T, N, 1)`, time-major.
#[derive(Debug, Clone)]
pub struct StepData<T> {
    /// The inputs.
    pub x: Tensor<T>,
    /// The targets.
    pub y: Tensor<T>,
}

impl<T: Float> StepData<T> {
    /// The sequences `indices` as a batch.
    pub fn batch(&self, indices: &[usize]) -> recurrent::Result<(Sequence<T>, Tensor<T>)> {
        let gather = |t: &Tensor<T>| -> recurrent::Result<Tensor<T>> {
            let [steps, n, f] = [t.shape()[0], t.shape()[1], t.shape()[2]];
            let mut out = Vec::with_capacity(steps * indices.len() * f);
            for s in 0..steps {
                for &i in indices {
                    out.extend_from_slice(&t.as_slice()[(s * n + i) * f..(s * n + i + 1) * f]);
                }
            }
            Tensor::from_vec(out, &[steps, indices.len(), f])
        };
        Ok((Sequence::new(gather(&self.x)?, None)?, gather(&self.y)?))
    }

    /// Every sequence as one batch.
    pub fn all(&self) -> recurrent::Result<(Sequence<T>, Tensor<T>)> {
        self.batch(&(0..self.len()).collect::<Vec<_>>())
    }

    /// How many sequences.
    pub fn len(&self) -> usize {
        self.x.shape()[1]
    }

    /// How many steps.
    pub fn steps(&self) -> usize {
        self.x.shape()[0]
    }
}

/// The MSE over the steps `scored` of a time-major prediction, and its gradient (zero at the
/// other steps).
pub fn scored_mse<T: Float>(
    p: &Tensor<T>,
    target: &Tensor<T>,
    scored: &Range<usize>,
) -> recurrent::Result<(f64, Tensor<T>)> {
    let per_step = p.len() / p.shape()[0];
    let span = scored.start * per_step..scored.end * per_step;
    let part = |t: &Tensor<T>| Tensor::from_vec(t.as_slice()[span.clone()].to_vec(), &[span.len()]);
    let loss = mse_loss(&part(p)?, &part(target)?)?;
    let mut grad = p.zeros_like();
    grad.as_mut_slice()[span].copy_from_slice(loss.grad.as_slice());
    Ok((loss.value.to_f64().unwrap_or(f64::NAN), grad))
}

/// Trains `model` with Adam on the steps `scored` of `data`, in batches shuffled each epoch,
/// clipping the gradients' norm to `clip` if given; advances `bar` by one per epoch and
/// returns the mean training loss of each epoch.
pub fn fit_steps<T, M>(
    model: &mut M,
    data: &StepData<T>,
    scored: Range<usize>,
    training: Training,
    clip: Option<f64>,
    bar: &ProgressBar,
) -> recurrent::Result<Vec<f64>>
where
    T: Float,
    M: Layer<T, Input = Sequence<T>, Output = Sequence<T>, OutputGrad = Tensor<T>> + Parameters<T>,
{
    let mut adam = AdamConfig::new(training.lr).init()?;
    let mut rng = StdRng::seed_from_u64(training.seed);
    let mut order: Vec<usize> = (0..data.len()).collect();
    let mut epoch_loss = Vec::with_capacity(training.epochs);
    for epoch in 0..training.epochs {
        order.shuffle(&mut rng);
        let mut sum = 0.0;
        for indices in order.chunks(training.batch) {
            let (x, y) = data.batch(indices)?;
            let (prediction, trace) = model.forward(&x, Mode::Train { seed: epoch as u64 })?;
            let (loss, grad) = scored_mse(prediction.data(), &y, &scored)?;
            let mut grads = model.backward(&trace, &grad)?.params;
            if let Some(max_norm) = clip {
                clip_grad_norm(&mut grads, T::from(max_norm).unwrap_or_else(T::one))?;
            }
            adam.step(model, &grads)?;
            sum += loss * indices.len() as f64;
        }
        epoch_loss.push(sum / data.len() as f64);
        bar.inc(1);
    }
    Ok(epoch_loss)
}
