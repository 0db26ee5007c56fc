//! [`ReduceLrOnPlateau`]: the learning rate lowered when a metric stops improving, as
//! `torch.optim.lr_scheduler.ReduceLROnPlateau`.

use super::scheduler_state::SchedulerState;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Sgd, SgdConfig};

    /// Runs `config` from `lr` over `metrics`; returns `(lr, best, bad epochs, cooldown)`
    /// after each.
    fn run(config: ReduceLrOnPlateauConfig, lr: f64, metrics: &[f64]) -> Vec<(f64, f64, u64, u64)> {
        let mut opt: Sgd<f32> = SgdConfig::new(lr).init().unwrap();
        let mut plateau = config.init().unwrap();
        metrics
            .iter()
            .map(|&m| {
                plateau.step_with(m, &mut opt).unwrap();
                let p = &plateau;
                (opt.lr(), p.best(), p.num_bad_epochs(), p.cooldown_counter())
            })
            .collect()
    }

    // The expected values come from torch 2.15 (CPU):
    //
    //     import torch
    //     o = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=LR)
    //     s = torch.optim.lr_scheduler.ReduceLROnPlateau(o, ...)
    //     for m in metrics:
    //         o.step(); s.step(m)
    //         print(o.param_groups[0]["lr"], s.best, s.num_bad_epochs, s.cooldown_counter)

    const LOSSES: [f64; 26] = [
        1.0, 0.9, 0.95, 0.92, 0.91, 0.905, 0.95, 0.96, 0.97, 0.5, 0.6, 0.7, 0.8, 0.9, 0.45, 0.46,
        0.47, 0.48, 0.49, 0.5, 0.51, 0.52, 0.53, 0.54, 0.55, 0.56,
    ];

    /// `ReduceLROnPlateau(o, mode="min", factor=0.5, patience=2, threshold=0.01,
    /// threshold_mode="rel", cooldown=2, min_lr=0.01)` from `lr=0.1` over `LOSSES`: reductions
    /// at the third bad epoch, two epochs of cooldown after each, the last one clamped to
    /// `min_lr`; 0.905 is not 1 % better than 0.9.
    #[test]
    fn min_mode_with_cooldown_matches_torch() {
        let expected = [
            (0.1, 1.0, 0, 0),
            (0.1, 0.9, 0, 0),
            (0.1, 0.9, 1, 0),
            (0.1, 0.9, 2, 0),
            (0.05, 0.9, 0, 2),
            (0.05, 0.9, 0, 1),
            (0.05, 0.9, 0, 0),
            (0.05, 0.9, 1, 0),
            (0.05, 0.9, 2, 0),
            (0.05, 0.5, 0, 0),
            (0.05, 0.5, 1, 0),
            (0.05, 0.5, 2, 0),
            (0.025, 0.5, 0, 2),
            (0.025, 0.5, 0, 1),
            (0.025, 0.45, 0, 0),
            (0.025, 0.45, 1, 0),
            (0.025, 0.45, 2, 0),
            (0.0125, 0.45, 0, 2),
            (0.0125, 0.45, 0, 1),
            (0.0125, 0.45, 0, 0),
            (0.0125, 0.45, 1, 0),
            (0.0125, 0.45, 2, 0),
            (0.01, 0.45, 0, 2),
            (0.01, 0.45, 0, 1),
            (0.01, 0.45, 0, 0),
            (0.01, 0.45, 1, 0),
        ];
        let config = ReduceLrOnPlateauConfig::new(PlateauMode::Min)
            .with_factor(0.5)
            .with_patience(2)
            .with_threshold(0.01)
            .with_cooldown(2)
            .with_min_lr(0.01);
        assert_eq!(run(config, 0.1, &LOSSES), expected);
    }

    /// `ReduceLROnPlateau(o, mode="max", factor=0.3, patience=1, threshold=0.1,
    /// threshold_mode="abs", min_lr=0.05)` from `lr=1.0`: 1.52 is not 0.1 better than 1.5, a
    /// NaN is a bad epoch, and once at `min_lr` a reduction changes nothing (less than `eps`).
    #[test]
    fn max_mode_with_absolute_threshold_matches_torch() {
        let metrics = [
            1.0,
            1.5,
            1.52,
            1.4,
            1.3,
            2.0,
            f64::NAN,
            2.05,
            1.9,
            1.8,
            1.7,
            1.6,
            1.5,
            1.4,
        ];
        let expected = [
            (1.0, 1.0, 0, 0),
            (1.0, 1.5, 0, 0),
            (1.0, 1.5, 1, 0),
            (0.3, 1.5, 0, 0),
            (0.3, 1.5, 1, 0),
            (0.3, 2.0, 0, 0),
            (0.3, 2.0, 1, 0),
            (0.09, 2.0, 0, 0),
            (0.09, 2.0, 1, 0),
            (0.05, 2.0, 0, 0),
            (0.05, 2.0, 1, 0),
            (0.05, 2.0, 0, 0),
            (0.05, 2.0, 1, 0),
            (0.05, 2.0, 0, 0),
        ];
        let config = ReduceLrOnPlateauConfig::new(PlateauMode::Max)
            .with_factor(0.3)
            .with_patience(1)
            .with_threshold(0.1)
            .with_threshold_mode(ThresholdMode::Abs)
            .with_min_lr(0.05);
        assert_eq!(run(config, 1.0, &metrics), expected);
    }

    /// Stopped after 13 epochs (in a cooldown) and restored into a new schedule, the run goes
    /// on as the one that never stopped.
    #[test]
    fn a_restored_plateau_continues_identically() {
        let config = ReduceLrOnPlateauConfig::new(PlateauMode::Min)
            .with_factor(0.5)
            .with_patience(2)
            .with_threshold(0.01)
            .with_cooldown(2);
        let mut opt: Sgd<f64> = SgdConfig::new(0.1).init().unwrap();
        let mut straight = config.init().unwrap();
        for &m in &LOSSES[..13] {
            straight.step_with(m, &mut opt).unwrap();
        }
        assert_eq!(straight.cooldown_counter(), 2);
        let mut resumed = config.init().unwrap();
        let mut opt2 = opt.clone();
        resumed.restore(&straight.state()).unwrap();
        assert_eq!(resumed, straight);
        for &m in &LOSSES[13..] {
            straight.step_with(m, &mut opt).unwrap();
            resumed.step_with(m, &mut opt2).unwrap();
            assert_eq!(opt2.lr(), opt.lr());
        }
        assert_eq!(resumed, straight);
        // before the first metric the best is the worst of the mode, which JSON cannot hold
        let fresh = config.init().unwrap().state();
        assert_eq!(fresh.get("best"), Some(f64::INFINITY));
        let back = SchedulerState::from_json(&fresh.to_json()).unwrap();
        assert_eq!(back, fresh);
    }

    #[test]
    fn invalid_settings_and_states_are_rejected() {
        let config = ReduceLrOnPlateauConfig::new(PlateauMode::Min);
        for (bad, what) in [
            (config.with_factor(1.0), "factor"),
            (config.with_factor(-0.1), "factor"),
            (config.with_threshold(f64::NAN), "threshold"),
            (config.with_min_lr(-1.0), "min_lr"),
            (config.with_eps(f64::INFINITY), "eps"),
        ] {
            match bad.init() {
                Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, what),
                other => panic!("expected an invalid {what}, got {other:?}"),
            }
        }
        let mut plateau = config.init().unwrap();
        let mut state = plateau.state();
        state = SchedulerState::new(
            state.kind(),
            &[
                ("last_epoch", 1.0),
                ("best", f64::NAN),
                ("num_bad_epochs", 0.0),
                ("cooldown_counter", 0.0),
            ],
        );
        assert!(plateau.restore(&state).is_err());
        assert_eq!(plateau, config.init().unwrap());
    }
}
