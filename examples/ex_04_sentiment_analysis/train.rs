//! Training and evaluation: reviews as token ids, the training loop (Adam, clipping, a
//! learning rate that decays by epoch, batches grouped by length), the selection of the epoch
//! by validation accuracy, and the figures of a classifier on a split.

use std::time::Instant;

use recurrent::{
    clip_grad_norm, pad_collate, AdamConfig, BatchSamplerConfig, CrossEntropyLoss, ExponentialLr,
    LrScheduler, Mode, Optimizer, Reduction, Result, TokenBatch,
};

use crate::model::Model;
use crate::support::progress;
use crate::text::PAD;

/// Reviews as token ids (each cut to the preset's length, never empty) with their labels
/// (0 negative, 1 positive).
#[derive(Debug, Clone, Default)]
pub struct Encoded {
    /// Token ids of each review.
    pub ids: Vec<Vec<usize>>,
    /// Label of each review.
    pub labels: Vec<usize>,
}

impl Encoded {
    /// Number of reviews.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// The reviews `indices` as one padded, time-major batch, and their labels.
    pub fn batch(&self, indices: &[usize]) -> Result<(TokenBatch, Vec<usize>)> {
        let samples: Vec<&[usize]> = indices.iter().map(|&i| &self.ids[i][..]).collect();
        let labels = indices.iter().map(|&i| self.labels[i]).collect();
        Ok((pad_collate(&samples, PAD, None)?, labels))
    }

    /// Mean length in tokens.
    pub fn mean_length(&self) -> f64 {
        self.ids.iter().map(Vec::len).sum::<usize>() as f64 / self.len().max(1) as f64
    }

    /// Number of positive reviews.
    pub fn positives(&self) -> usize {
        self.labels.iter().filter(|&&y| y == 1).count()
    }
}

/// How a classifier is trained.
#[derive(Debug, Clone)]
pub struct Training {
    /// Passes over the training reviews.
    pub epochs: usize,
    /// Reviews per batch.
    pub batch: usize,
    /// Adam's learning rate in the first epoch.
    pub lr: f64,
    /// The learning rate's factor from one epoch to the next.
    pub lr_decay: f64,
    /// Gradients are rescaled to this global norm when above it.
    pub clip: f32,
    /// The batches of an epoch are cut from a shuffled order in chunks of this many batches,
    /// each sorted by length, so that a batch holds reviews of similar lengths.
    pub bucket_batches: usize,
    /// Seed of the batch order and of dropout.
    pub seed: u64,
}

/// One epoch's figures.
#[derive(Debug, Clone)]
pub struct Epoch {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean loss over the epoch's batches, in training mode (dropout on).
    pub train_loss: f64,
    /// Accuracy over the epoch's batches, in training mode.
    pub train_accuracy: f64,
    /// Validation figures after the epoch.
    pub validation: Scores,
    /// Seconds of training (without the validation pass).
    pub seconds: f64,
}

/// The result of [`fit`]: every epoch's figures and the model at the epoch with the best
/// validation accuracy (the first of equals).
pub struct Fitted<M> {
    /// Figures of each epoch.
    pub epochs: Vec<Epoch>,
    /// 1-based number of the epoch that validation selects.
    pub selected: usize,
    /// The model after that epoch.
    pub model: M,
}

impl<M> Fitted<M> {
    /// Total seconds of training over all epochs.
    pub fn training_seconds(&self) -> f64 {
        self.epochs.iter().map(|e| e.seconds).sum()
    }

    /// Seconds of training up to and including the selected epoch.
    pub fn seconds_to_selected(&self) -> f64 {
        self.epochs[..self.selected].iter().map(|e| e.seconds).sum()
    }
}

/// Trains `model` on `train`, evaluating on `validation` after each epoch, and returns the
/// epochs' figures with the model of the best validation accuracy. `name` labels the progress
/// bar and the printed lines.
pub fn fit<M: Model>(
    name: &str,
    mut model: M,
    train: &Encoded,
    validation: &Encoded,
    training: &Training,
) -> Result<Fitted<M>> {
    let lengths = train.ids.iter().map(Vec::len).collect();
    let sampler = BatchSamplerConfig::new(train.len(), training.batch)
        .with_shuffle(training.seed)
        .with_buckets(lengths, training.bucket_batches)
        .init()?;
    let mut adam = AdamConfig::new(training.lr).init()?;
    let mut schedule = ExponentialLr::new(&mut adam, training.lr_decay)?;
    let loss_fn = CrossEntropyLoss::new();
    let mut epochs: Vec<Epoch> = Vec::new();
    let mut best: Option<(usize, f64, M)> = None;
    let mut step = 0u64;
    for epoch in 1..=training.epochs {
        let batches = sampler.epoch(epoch as u64);
        let bar = progress::bar(batches.len() as u64, format!("{name} epoch {epoch}"));
        let start = Instant::now();
        let (mut loss_sum, mut correct, mut seen) = (0.0, 0usize, 0usize);
        for indices in &batches {
            let (tokens, labels) = train.batch(indices)?;
            let seed = training.seed.wrapping_mul(1_000_003).wrapping_add(step);
            let (logits, trace) = model.forward(&tokens, Mode::Train { seed })?;
            let loss = loss_fn.forward(&logits, &labels)?;
            let mut grads = model.backward(&trace, &loss.grad)?.params;
            clip_grad_norm(&mut grads, training.clip)?;
            adam.step(&mut model, &grads)?;
            step += 1;
            loss_sum += f64::from(loss.value) * labels.len() as f64;
            correct += predictions(logits.as_slice())
                .zip(&labels)
                .filter(|(p, &y)| *p == y)
                .count();
            seen += labels.len();
            bar.inc(1);
            bar.set_message(format!(
                "{name} epoch {epoch} loss {:.3}",
                loss_sum / seen as f64
            ));
        }
        let seconds = start.elapsed().as_secs_f64();
        bar.finish_and_clear();
        schedule.step(&mut adam)?;
        let scores = evaluate(&model, validation)?;
        let record = Epoch {
            epoch,
            train_loss: loss_sum / seen as f64,
            train_accuracy: correct as f64 / seen as f64,
            validation: scores,
            seconds,
        };
        println!(
            "  {name} epoch {epoch}: train loss {:.4} acc {:.2}%, validation loss {:.4} acc {:.2}%, {:.0} s",
            record.train_loss,
            100.0 * record.train_accuracy,
            record.validation.loss,
            100.0 * record.validation.accuracy,
            record.seconds
        );
        if best
            .as_ref()
            .is_none_or(|b| record.validation.accuracy > b.1)
        {
            best = Some((epoch, record.validation.accuracy, model.clone()));
        }
        epochs.push(record);
    }
    let (selected, _, model) = best.expect("at least one epoch");
    Ok(Fitted {
        epochs,
        selected,
        model,
    })
}

/// The class each row of logits `(B, 2)` predicts (the first on a tie, as `argmax`).
fn predictions(logits: &[f32]) -> impl Iterator<Item = usize> + '_ {
    logits
        .chunks_exact(2)
        .map(|row| usize::from(row[1] > row[0]))
}

/// A classifier's figures on a split.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    /// Mean cross-entropy.
    pub loss: f64,
    /// Fraction of reviews classified right.
    pub accuracy: f64,
    /// `confusion[true class][predicted class]`, class 0 negative, 1 positive.
    pub confusion: [[usize; 2]; 2],
}

impl Scores {
    /// Of the reviews predicted as `class`, the fraction that are (1 when none is).
    pub fn precision(&self, class: usize) -> f64 {
        let predicted = self.confusion[0][class] + self.confusion[1][class];
        ratio(self.confusion[class][class], predicted)
    }

    /// Of the reviews of `class`, the fraction predicted as such.
    pub fn recall(&self, class: usize) -> f64 {
        let actual = self.confusion[class][0] + self.confusion[class][1];
        ratio(self.confusion[class][class], actual)
    }
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        1.0
    } else {
        part as f64 / whole as f64
    }
}

/// Reviews per evaluation batch: evaluation keeps no trace, so batches can be large.
const EVAL_BATCH: usize = 256;

/// The figures of `model` on `data`, in evaluation mode (no dropout) and without a trace;
/// reviews are batched by length, which does not change the result.
pub fn evaluate<M: Model>(model: &M, data: &Encoded) -> Result<Scores> {
    let mut order: Vec<usize> = (0..data.len()).collect();
    order.sort_by_key(|&i| data.ids[i].len());
    let summed = CrossEntropyLoss::new().with_reduction(Reduction::Sum);
    let (mut loss_sum, mut confusion) = (0.0, [[0usize; 2]; 2]);
    for indices in order.chunks(EVAL_BATCH) {
        let (tokens, labels) = data.batch(indices)?;
        let logits = model.infer(&tokens)?;
        loss_sum += f64::from(summed.forward(&logits, &labels)?.value);
        for (predicted, &y) in predictions(logits.as_slice()).zip(&labels) {
            confusion[y][predicted] += 1;
        }
    }
    let correct = confusion[0][0] + confusion[1][1];
    Ok(Scores {
        loss: loss_sum / data.len().max(1) as f64,
        accuracy: ratio(correct, data.len()),
        confusion,
    })
}

/// The probability that each review of `data` is positive, in `data`'s order.
pub fn positive_probabilities<M: Model>(model: &M, data: &Encoded) -> Result<Vec<f64>> {
    let mut out = vec![0.0; data.len()];
    let indices: Vec<usize> = (0..data.len()).collect();
    for chunk in indices.chunks(EVAL_BATCH) {
        let (tokens, _) = data.batch(chunk)?;
        let logits = model.infer(&tokens)?;
        for (row, &i) in logits.as_slice().chunks_exact(2).zip(chunk) {
            let (a, b) = (f64::from(row[0]), f64::from(row[1]));
            out[i] = 1.0 / (1.0 + (a - b).exp());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_and_recall_come_from_the_confusion_matrix() {
        let scores = Scores {
            loss: 0.0,
            accuracy: 0.7,
            confusion: [[40, 10], [20, 30]],
        };
        assert!((scores.precision(0) - 40.0 / 60.0).abs() < 1e-12);
        assert!((scores.recall(0) - 40.0 / 50.0).abs() < 1e-12);
        assert!((scores.precision(1) - 30.0 / 40.0).abs() < 1e-12);
        assert!((scores.recall(1) - 30.0 / 50.0).abs() < 1e-12);
        let none = Scores {
            confusion: [[5, 0], [5, 0]],
            ..scores
        };
        assert_eq!(none.precision(1), 1.0, "no positive prediction");
    }

    #[test]
    fn ties_predict_the_first_class() {
        let p: Vec<usize> = predictions(&[0.5, 0.5, 0.1, 0.2, 0.3, -1.0]).collect();
        assert_eq!(p, [0, 1, 0]);
    }
}
