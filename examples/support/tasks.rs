//! The sine task the three course examples share — predict the next sample of a sine wave from
//! a window of the samples before it — and the training loop that fits a recurrent network with
//! a linear head on its last step to it; and the adding problem, which ex_03 and `custom_cell`
//! train on.

use std::time::Instant;

use indicatif::ProgressBar;
use recurrent::rand::seq::SliceRandom;
use recurrent::rand::{rngs::StdRng, Rng, SeedableRng};
use recurrent::{
    mse_loss, AdamConfig, Error, Float, LastStep, Layer, LinearConfig, Mode, Optimizer, Sequence,
    Tensor,
};

/// Sequences of one feature and one target value each.
#[derive(Debug, Clone, Default)]
pub struct Windows {
    /// The input sequences, each of the same length.
    pub inputs: Vec<Vec<f32>>,
    /// One target per sequence.
    pub targets: Vec<f32>,
}

impl Windows {
    /// How many sequences.
    pub fn len(&self) -> usize {
        self.inputs.len()
    }

    /// The MSE of predicting each sequence's target by repeating its last value.
    pub fn repeat_last_mse(&self) -> f64 {
        let errors = self.inputs.iter().zip(&self.targets);
        let sum: f64 = errors
            .map(|(x, &y)| f64::from(x[x.len() - 1] - y).powi(2))
            .sum();
        sum / self.len() as f64
    }

    /// The sequences `indices` as a time-major `(T, B, 1)` batch, and their targets `(B, 1)`.
    pub fn batch(&self, indices: &[usize]) -> recurrent::Result<(Sequence<f32>, Tensor<f32>)> {
        let steps = self.inputs[indices[0]].len();
        let batch = indices.len();
        let mut x = vec![0.0; steps * batch];
        for (b, &i) in indices.iter().enumerate() {
            for (t, &v) in self.inputs[i].iter().enumerate() {
                x[t * batch + b] = v;
            }
        }
        let y = indices.iter().map(|&i| self.targets[i]).collect();
        Ok((
            Sequence::new(Tensor::from_vec(x, &[steps, batch, 1])?, None)?,
            Tensor::from_vec(y, &[batch, 1])?,
        ))
    }
}

/// A training and a test set.
#[derive(Debug, Clone)]
pub struct Task {
    /// What the model learns from.
    pub train: Windows,
    /// What it is scored on.
    pub test: Windows,
}

/// `sin` sampled at `points` evenly spaced points of `[0, end]`, cut into every window of
/// `window` consecutive samples whose next sample is the target (but the last, as the course
/// does); the first `train_fraction` of
/// the windows (in time order, rounded down) train, the rest test — as the course does.
pub fn sine_task(points: usize, end: f64, window: usize, train_fraction: f64) -> Task {
    let wave: Vec<f32> = (0..points)
        .map(|i| (end * i as f64 / (points - 1) as f64).sin() as f32)
        .collect();
    let mut all = Windows::default();
    for start in 0..points - window - 1 {
        all.inputs.push(wave[start..start + window].to_vec());
        all.targets.push(wave[start + window]);
    }
    let n_train = (all.len() as f64 * train_fraction) as usize;
    let test = Windows {
        inputs: all.inputs.split_off(n_train),
        targets: all.targets.split_off(n_train),
    };
    Task { train: all, test }
}

/// `batch` sequences of the adding problem of length `steps`, `(T, B, 2)`: a value in U(0, 1)
/// and a marker that is 1 at one step of the first half and one of the second; the target
/// `(B, 1)` is the sum of the two marked values. Predicting the mean scores an MSE of about
/// 1/6, the variance of a sum of two uniform values.
///
/// Draws, per sequence, the two marked steps and then the `steps` values (as `f64`), so a seed
/// gives the same data in `f32` and `f64`.
///
/// # Errors
///
/// [`Error::InvalidArgument`] if `steps` is below 2 (each half needs a step to mark).
pub fn adding_data<T: Float>(
    batch: usize,
    steps: usize,
    rng: &mut StdRng,
) -> recurrent::Result<(Sequence<T>, Tensor<T>)> {
    if steps < 2 {
        return Err(Error::InvalidArgument {
            name: "steps",
            reason: format!("needs 2 or more to mark a step in each half, got {steps}"),
        });
    }
    let mut x = vec![T::zero(); steps * batch * 2];
    let mut y = vec![T::zero(); batch];
    for b in 0..batch {
        let marks = [
            rng.random_range(0..steps / 2),
            rng.random_range(steps / 2..steps),
        ];
        for t in 0..steps {
            let v = T::from_f64(rng.random());
            x[(t * batch + b) * 2] = v;
            if marks.contains(&t) {
                x[(t * batch + b) * 2 + 1] = T::one();
                y[b] = y[b] + v;
            }
        }
    }
    Ok((
        Sequence::new(Tensor::from_vec(x, &[steps, batch, 2])?, None)?,
        Tensor::from_vec(y, &[batch, 1])?,
    ))
}

/// How a model is trained.
#[derive(Debug, Clone, Copy)]
pub struct Training {
    /// Passes over the training set.
    pub epochs: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Sequences per step.
    pub batch: usize,
    /// Seed of the head's initialisation and of the order of the batches.
    pub seed: u64,
}

/// What training a model on a [`Task`] gave.
#[derive(Debug, Clone)]
pub struct Fitted {
    /// The mean training loss of each epoch.
    pub epoch_loss: Vec<f64>,
    /// The mean squared error on the test set after training.
    pub test_mse: f64,
    /// The model's prediction for each test sequence.
    pub test_predictions: Vec<f32>,
    /// Seconds spent training (test evaluation excluded).
    pub seconds: f64,
}

/// Trains `rnn` followed by its last step and a linear head of one output with MSE and Adam,
/// in shuffled mini-batches, advancing `bar` by one per epoch.
pub fn fit_last_step<R>(
    rnn: R,
    hidden: usize,
    task: &Task,
    training: Training,
    bar: &ProgressBar,
) -> recurrent::Result<Fitted>
where
    R: Layer<
        f32,
        Input = Sequence<f32>,
        Output = Sequence<f32>,
        InputGrad = Tensor<f32>,
        OutputGrad = Tensor<f32>,
    >,
{
    let mut model = rnn
        .then(LastStep)
        .then(LinearConfig::new(hidden, 1).init_seeded(training.seed)?);
    let mut adam = AdamConfig::new(training.lr).init()?;
    let mut rng = StdRng::seed_from_u64(training.seed);
    let mut order: Vec<usize> = (0..task.train.len()).collect();
    let mut epoch_loss = Vec::with_capacity(training.epochs);
    let mut step = 0;
    let start = Instant::now();
    for _ in 0..training.epochs {
        order.shuffle(&mut rng);
        let (mut sum, mut count) = (0.0, 0);
        for indices in order.chunks(training.batch) {
            let (x, y) = task.train.batch(indices)?;
            let (prediction, trace) = model.forward(&x, Mode::Train { seed: step })?;
            let loss = mse_loss(&prediction, &y)?;
            let grads = model.backward(&trace, &loss.grad)?.params;
            adam.step(&mut model, &grads)?;
            sum += f64::from(loss.value) * indices.len() as f64;
            step += 1;
            count += indices.len();
        }
        epoch_loss.push(sum / count as f64);
        bar.inc(1);
    }
    let seconds = start.elapsed().as_secs_f64();
    let all: Vec<usize> = (0..task.test.len()).collect();
    let (x, y) = task.test.batch(&all)?;
    let prediction = model.infer(&x)?;
    let test_mse = f64::from(mse_loss(&prediction, &y)?.value);
    Ok(Fitted {
        epoch_loss,
        test_mse,
        test_predictions: prediction.as_slice().to_vec(),
        seconds,
    })
}
