//! [`ReduceLrOnPlateau`]: the learning rate lowered when a metric stops improving, as
//! `torch.optim.lr_scheduler.ReduceLROnPlateau`.

use super::scheduler::SchedulerState;
use super::{check_non_negative, Optimizer};
use crate::error::{Error, Result};
use crate::float::Float;

/// Whether the metric of a [`ReduceLrOnPlateau`] should go down (a loss) or up (an accuracy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlateauMode {
    /// Lower is better: PyTorch's `mode="min"`.
    Min,
    /// Higher is better: PyTorch's `mode="max"`.
    Max,
}

/// How a [`ReduceLrOnPlateau`] measures a significant improvement over the best metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThresholdMode {
    /// Relative: better than `best·(1 − threshold)` (`Min`) or `best·(1 + threshold)` (`Max`).
    Rel,
    /// Absolute: better than `best − threshold` (`Min`) or `best + threshold` (`Max`).
    Abs,
}

/// Configuration of a [`ReduceLrOnPlateau`]: `ReduceLrOnPlateauConfig::new(mode)`, then
/// `with_*` options, then [`init`](ReduceLrOnPlateauConfig::init), which checks the values.
/// The defaults are PyTorch's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReduceLrOnPlateauConfig {
    mode: PlateauMode,
    factor: f64,
    patience: u64,
    threshold: f64,
    threshold_mode: ThresholdMode,
    cooldown: u64,
    min_lr: f64,
    eps: f64,
}

impl ReduceLrOnPlateauConfig {
    /// A schedule watching a metric that should go down ([`PlateauMode::Min`]) or up.
    pub fn new(mode: PlateauMode) -> Self {
        ReduceLrOnPlateauConfig {
            mode,
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            threshold_mode: ThresholdMode::Rel,
            cooldown: 0,
            min_lr: 0.0,
            eps: 1e-8,
        }
    }

    /// The factor the learning rate is multiplied by at a reduction, in `[0, 1)`. Defaults to
    /// `0.1`.
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_factor(self, factor: f64) -> Self {
        ReduceLrOnPlateauConfig { factor, ..self }
    }

    /// The number of epochs without improvement tolerated: the rate is reduced at the
    /// `patience + 1`-th bad epoch in a row. Defaults to `10`.
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_patience(self, patience: u64) -> Self {
        ReduceLrOnPlateauConfig { patience, ..self }
    }

    /// The least improvement that counts, in the units of
    /// [`with_threshold_mode`](ReduceLrOnPlateauConfig::with_threshold_mode). Defaults to
    /// `1e-4`.
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_threshold(self, threshold: f64) -> Self {
        ReduceLrOnPlateauConfig { threshold, ..self }
    }

    /// Whether the threshold is relative to the best metric or absolute. Defaults to
    /// [`ThresholdMode::Rel`].
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_threshold_mode(self, threshold_mode: ThresholdMode) -> Self {
        ReduceLrOnPlateauConfig {
            threshold_mode,
            ..self
        }
    }

    /// The number of epochs after a reduction during which bad epochs are not counted.
    /// Defaults to `0`.
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_cooldown(self, cooldown: u64) -> Self {
        ReduceLrOnPlateauConfig { cooldown, ..self }
    }

    /// The learning rate below which no reduction goes. Defaults to `0.0`.
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_min_lr(self, min_lr: f64) -> Self {
        ReduceLrOnPlateauConfig { min_lr, ..self }
    }

    /// The least change of the learning rate that is made: a reduction by `eps` or less is
    /// skipped. Defaults to `1e-8`.
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_eps(self, eps: f64) -> Self {
        ReduceLrOnPlateauConfig { eps, ..self }
    }

    /// The schedule, with no metric seen yet. Unlike the epoch schedules it does not need
    /// the optimiser until its first [`step_with`](ReduceLrOnPlateau::step_with), as in
    /// PyTorch it leaves the learning rate alone at construction.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if `factor` is not in `[0, 1)`, or the threshold, `min_lr`
    /// or `eps` is negative or not finite.
    pub fn init(&self) -> Result<ReduceLrOnPlateau> {
        if !(0.0..1.0).contains(&self.factor) {
            return Err(Error::InvalidArgument {
                name: "factor",
                reason: format!("{} is not in [0, 1)", self.factor),
            });
        }
        check_non_negative("threshold", self.threshold)?;
        check_non_negative("min_lr", self.min_lr)?;
        check_non_negative("eps", self.eps)?;
        Ok(ReduceLrOnPlateau {
            config: *self,
            last_epoch: 0,
            best: self.worst(),
            num_bad_epochs: 0,
            cooldown_counter: 0,
        })
    }

    /// The worst metric: the best before the first.
    fn worst(&self) -> f64 {
        match self.mode {
            PlateauMode::Min => f64::INFINITY,
            PlateauMode::Max => f64::NEG_INFINITY,
        }
    }
}

/// Lowers the learning rate when a metric has stopped improving for a while, as PyTorch's
/// [`ReduceLROnPlateau`](https://pytorch.org/docs/stable/generated/torch.optim.lr_scheduler.ReduceLROnPlateau.html).
/// At each epoch's [`step_with`](ReduceLrOnPlateau::step_with)`(metric, optimizer)`:
///
/// ```text
/// if metric is better than best (by the threshold): best ← metric, bad ← 0
/// else: bad ← bad + 1
/// if cooldown > 0: cooldown ← cooldown − 1, bad ← 0
/// if bad > patience:
///     new = max(lr · factor, min_lr); if lr − new > eps: lr ← new
///     cooldown ← the configured cooldown, bad ← 0
/// ```
///
/// A NaN metric is never better, so it counts as a bad epoch, as in PyTorch.
///
/// # Examples
///
/// ```
/// use recurrent::{Optimizer, PlateauMode, ReduceLrOnPlateauConfig, Sgd, SgdConfig};
///
/// let mut sgd: Sgd<f32> = SgdConfig::new(0.1).init()?;
/// let mut plateau = ReduceLrOnPlateauConfig::new(PlateauMode::Min)
///     .with_patience(1)
///     .with_factor(0.5)
///     .init()?;
/// for loss in [1.0, 0.8, 0.8, 0.8] {
///     plateau.step_with(loss, &mut sgd)?;
/// }
/// // the second epoch without improvement halves the rate
/// assert_eq!(sgd.lr(), 0.05);
/// assert_eq!(plateau.best(), 0.8);
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ReduceLrOnPlateau {
    config: ReduceLrOnPlateauConfig,
    last_epoch: u64,
    best: f64,
    num_bad_epochs: u64,
    cooldown_counter: u64,
}

impl ReduceLrOnPlateau {
    /// Records the epoch's metric and lowers the optimiser's learning rate if the metric has
    /// not improved for more than `patience` epochs (outside a cooldown).
    ///
    /// # Errors
    ///
    /// Those of [`Optimizer::set_lr`], which valid settings do not produce; on error the
    /// schedule is unchanged.
    pub fn step_with<T: Float>(
        &mut self,
        metric: f64,
        optimizer: &mut dyn Optimizer<T>,
    ) -> Result<()> {
        let c = &self.config;
        let mut next = self.clone();
        next.last_epoch += 1;
        if self.is_better(metric) {
            next.best = metric;
            next.num_bad_epochs = 0;
        } else {
            next.num_bad_epochs += 1;
        }
        if next.cooldown_counter > 0 {
            next.cooldown_counter -= 1;
            next.num_bad_epochs = 0;
        }
        if next.num_bad_epochs > c.patience {
            let old = optimizer.lr();
            let new = (old * c.factor).max(c.min_lr);
            if old - new > c.eps {
                optimizer.set_lr(new)?;
            }
            next.cooldown_counter = c.cooldown;
            next.num_bad_epochs = 0;
        }
        *self = next;
        Ok(())
    }

    /// Whether `metric` improves significantly on the best so far.
    fn is_better(&self, metric: f64) -> bool {
        let (best, t) = (self.best, self.config.threshold);
        match (self.config.mode, self.config.threshold_mode) {
            (PlateauMode::Min, ThresholdMode::Rel) => metric < best * (1.0 - t),
            (PlateauMode::Min, ThresholdMode::Abs) => metric < best - t,
            (PlateauMode::Max, ThresholdMode::Rel) => metric > best * (t + 1.0),
            (PlateauMode::Max, ThresholdMode::Abs) => metric > best + t,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ReduceLrOnPlateauConfig {
        &self.config
    }

    /// The number of metrics seen.
    pub fn last_epoch(&self) -> u64 {
        self.last_epoch
    }

    /// The best metric so far (infinite, the worst of the mode, before the first).
    pub fn best(&self) -> f64 {
        self.best
    }

    /// The number of bad epochs in a row since the last improvement or reduction.
    pub fn num_bad_epochs(&self) -> u64 {
        self.num_bad_epochs
    }

    /// The epochs of cooldown left.
    pub fn cooldown_counter(&self) -> u64 {
        self.cooldown_counter
    }

    /// The schedule's position: its kind `"reduce_lr_on_plateau"`, `last_epoch`, `best`,
    /// `num_bad_epochs` and `cooldown_counter` (the settings stay the configuration's).
    pub fn state(&self) -> SchedulerState {
        SchedulerState::new(
            "reduce_lr_on_plateau",
            &[
                ("last_epoch", self.last_epoch as f64),
                ("best", self.best),
                ("num_bad_epochs", self.num_bad_epochs as f64),
                ("cooldown_counter", self.cooldown_counter as f64),
            ],
        )
    }

    /// Continues from `state`, which [`state`](ReduceLrOnPlateau::state) made.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if `state` is of another kind of schedule, a count is not
    /// a whole number, or `best` is NaN; the schedule is then unchanged.
    pub fn restore(&mut self, state: &SchedulerState) -> Result<()> {
        state.expect_kind("reduce_lr_on_plateau")?;
        let best = state.require("best")?;
        if best.is_nan() {
            return Err(Error::InvalidArgument {
                name: "best",
                reason: "NaN is not a metric a schedule can have kept".into(),
            });
        }
        let restored = ReduceLrOnPlateau {
            config: self.config,
            last_epoch: state.count("last_epoch")?,
            best,
            num_bad_epochs: state.count("num_bad_epochs")?,
            cooldown_counter: state.count("cooldown_counter")?,
        };
        *self = restored;
        Ok(())
    }
}
