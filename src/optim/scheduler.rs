//! Learning-rate schedules over the epochs, as `torch.optim.lr_scheduler`: [`StepLr`],
//! [`ExponentialLr`], [`CosineAnnealingLr`] and [`LinearLr`] behind [`LrScheduler`], and the
//! [`SchedulerState`] that lets a resumed run continue a schedule.

use super::scheduler_state::SchedulerState;
use super::{check_non_negative, Optimizer};
use crate::error::{Error, Result};
use crate::float::Float;

/// A learning-rate schedule, as `torch.optim.lr_scheduler.LRScheduler`: made from the
/// optimiser (whose learning rate at that moment is the base rate, and which it sets to the
/// rate of epoch 0), then stepped once per epoch after the optimiser's steps.
///
/// To resume a run, build the optimiser and the scheduler as at the start, then restore both
/// (the optimiser's learning rate with [`Optimizer::load_state_dict`] or
/// [`load_optimizer`](crate::load_optimizer), the scheduler's epoch with
/// [`restore`](LrScheduler::restore)): in that order of building, the run continues exactly.
///
/// # Examples
///
/// ```
/// use recurrent::{LrScheduler, Optimizer, SgdConfig, Sgd, StepLr};
///
/// let mut sgd: Sgd<f32> = SgdConfig::new(0.1).init()?;
/// let mut schedule = StepLr::new(&mut sgd, 2, 0.5)?;
/// let mut rates = vec![sgd.lr()];
/// for _epoch in 0..5 {
///     // … the epoch's optimiser steps …
///     schedule.step(&mut sgd)?;
///     rates.push(sgd.lr());
/// }
/// assert_eq!(rates, [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]);
///
/// // resuming: a new schedule continues from the saved epoch
/// let saved = schedule.state();
/// let mut resumed = StepLr::new(&mut sgd, 2, 0.5)?;
/// resumed.restore(&saved)?;
/// assert_eq!(resumed.last_epoch(), 5);
/// # Ok::<(), recurrent::Error>(())
/// ```
pub trait LrScheduler<T: Float> {
    /// Advances one epoch and sets the optimiser's learning rate to the new epoch's.
    ///
    /// # Errors
    ///
    /// Those of [`Optimizer::set_lr`], which a schedule built from valid values does not
    /// produce; on error the schedule is unchanged.
    fn step(&mut self, optimizer: &mut dyn Optimizer<T>) -> Result<()>;

    /// The schedule's position: its base learning rate and epoch.
    fn state(&self) -> SchedulerState;

    /// Continues from `state`, which [`state`](LrScheduler::state) made for a schedule of the
    /// same kind. The optimiser's learning rate is not touched: it is restored with the
    /// optimiser's state.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if `state` is of another kind of schedule or holds an
    /// invalid value; the schedule is then unchanged.
    fn restore(&mut self, state: &SchedulerState) -> Result<()>;
}

/// The base learning rate and epoch of a closed or chained schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Position {
    base_lr: f64,
    last_epoch: u64,
}

impl Position {
    /// Epoch 0 of a schedule starting from `base_lr`.
    fn start(base_lr: f64) -> Self {
        Position {
            base_lr,
            last_epoch: 0,
        }
    }

    fn state(&self, kind: &str) -> SchedulerState {
        SchedulerState::new(
            kind,
            &[
                ("base_lr", self.base_lr),
                ("last_epoch", self.last_epoch as f64),
            ],
        )
    }

    fn restore(&mut self, kind: &str, state: &SchedulerState) -> Result<()> {
        state.expect_kind(kind)?;
        *self = Position {
            base_lr: state.non_negative("base_lr")?,
            last_epoch: state.count("last_epoch")?,
        };
        Ok(())
    }

    /// Sets the optimiser's rate to `lr` and advances the epoch.
    fn advance<T: Float>(&mut self, optimizer: &mut dyn Optimizer<T>, lr: f64) -> Result<()> {
        optimizer.set_lr(lr)?;
        self.last_epoch += 1;
        Ok(())
    }
}

/// What every schedule with a [`Position`] shares: its [`LrScheduler`] implementation (the
/// schedule's own `next_lr`, then the position advances), and inherent methods for its epoch,
/// its base rate and its state (inherent as well as in [`LrScheduler`], so that calling them
/// needs no element type).
macro_rules! position_methods {
    ($ty:ident, $kind:literal) => {
        impl<T: Float> LrScheduler<T> for $ty {
            fn step(&mut self, optimizer: &mut dyn Optimizer<T>) -> Result<()> {
                let lr = self.next_lr(optimizer.lr());
                self.position.advance(optimizer, lr)
            }

            fn state(&self) -> SchedulerState {
                self.position.state($kind)
            }

            fn restore(&mut self, state: &SchedulerState) -> Result<()> {
                self.position.restore($kind, state)
            }
        }

        impl $ty {
            /// The epoch reached: 0 after construction, 1 after the first
            /// [`step`](LrScheduler::step).
            pub fn last_epoch(&self) -> u64 {
                self.position.last_epoch
            }

            /// The optimiser's learning rate when the schedule was made.
            pub fn base_lr(&self) -> f64 {
                self.position.base_lr
            }

            #[doc = concat!(
                                "The schedule's position, as [`LrScheduler::state`]: its kind `\"",
                                $kind,
                                "\"`, `base_lr` and `last_epoch`."
                            )]
            pub fn state(&self) -> SchedulerState {
                self.position.state($kind)
            }

            /// Continues from `state`, as [`LrScheduler::restore`].
            ///
            /// # Errors
            ///
            /// [`Error::InvalidArgument`] if `state` is of another kind of schedule, or its
            /// base rate is negative or not finite, or its epoch not a whole number; the
            /// schedule is then unchanged.
            pub fn restore(&mut self, state: &SchedulerState) -> Result<()> {
                self.position.restore($kind, state)
            }
        }
    };
}

/// Checks a whole-number argument that must be at least 1.
fn check_positive(name: &'static str, value: u64) -> Result<()> {
    if value >= 1 {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            name,
            reason: "0 is not a value >= 1".into(),
        })
    }
}

/// Multiplies the learning rate by γ every `step_size` epochs, as PyTorch's
/// [`StepLR`](https://pytorch.org/docs/stable/generated/torch.optim.lr_scheduler.StepLR.html):
///
/// ```text
/// lr_e = lr_{e−1} · γ   if e > 0 and e mod step_size = 0
/// lr_e = lr_{e−1}       otherwise
/// ```
///
/// The rate is chained from the optimiser's current rate, as PyTorch's `scheduler.step()`
/// computes it (not from the closed form `base_lr · γ^⌊e/step_size⌋`, which can differ in the
/// last bits), so the rates equal PyTorch's exactly.
#[derive(Debug, Clone, PartialEq)]
pub struct StepLr {
    step_size: u64,
    gamma: f64,
    position: Position,
}

impl StepLr {
    /// The schedule for `optimizer` from its current learning rate (PyTorch's default γ is
    /// `0.1`). Epoch 0 keeps the rate.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if `step_size` is 0, or `gamma` is negative or not finite.
    pub fn new<T: Float>(
        optimizer: &mut dyn Optimizer<T>,
        step_size: u64,
        gamma: f64,
    ) -> Result<Self> {
        check_positive("step_size", step_size)?;
        check_non_negative("gamma", gamma)?;
        Ok(StepLr {
            step_size,
            gamma,
            position: Position::start(optimizer.lr()),
        })
    }
}

impl StepLr {
    /// The rate of the next epoch, from the optimiser's current rate `lr`.
    fn next_lr(&self, lr: f64) -> f64 {
        let epoch = self.position.last_epoch + 1;
        if epoch.is_multiple_of(self.step_size) {
            lr * self.gamma
        } else {
            lr
        }
    }
}

position_methods!(StepLr, "step_lr");

/// Multiplies the learning rate by γ every epoch, as PyTorch's
/// [`ExponentialLR`](https://pytorch.org/docs/stable/generated/torch.optim.lr_scheduler.ExponentialLR.html):
/// `lr_e = lr_{e−1} · γ`, chained from the optimiser's current rate as PyTorch's
/// `scheduler.step()` computes it, so the rates equal PyTorch's exactly.
#[derive(Debug, Clone, PartialEq)]
pub struct ExponentialLr {
    gamma: f64,
    position: Position,
}

impl ExponentialLr {
    /// The schedule for `optimizer` from its current learning rate. Epoch 0 keeps the rate.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if `gamma` is negative or not finite.
    pub fn new<T: Float>(optimizer: &mut dyn Optimizer<T>, gamma: f64) -> Result<Self> {
        check_non_negative("gamma", gamma)?;
        Ok(ExponentialLr {
            gamma,
            position: Position::start(optimizer.lr()),
        })
    }
}

impl ExponentialLr {
    /// The rate of the next epoch, from the optimiser's current rate `lr`.
    fn next_lr(&self, lr: f64) -> f64 {
        lr * self.gamma
    }
}

position_methods!(ExponentialLr, "exponential_lr");

/// Anneals the learning rate from its base rate to `eta_min` along half a cosine over `t_max`
/// epochs, as PyTorch's
/// [`CosineAnnealingLR`](https://pytorch.org/docs/stable/generated/torch.optim.lr_scheduler.CosineAnnealingLR.html),
/// by the closed form PyTorch documents (SGDR without restarts, Loshchilov & Hutter, 2017):
///
/// ```text
/// lr_e = η_min + (base_lr − η_min) · (1 + cos(π·e / t_max)) / 2
/// ```
///
/// Past `t_max` the cosine goes on, so the rate rises back towards the base rate over the
/// next `t_max` epochs, as in PyTorch. PyTorch's `scheduler.step()` computes the same rates
/// by a recursion on the current rate; its results equal the closed form up to rounding:
/// within one unit in the last place up to `t_max` (checked against PyTorch 2.15 for
/// `t_max = 10`), drifting to a few parts in 10¹⁵ over the following epochs as the ratios
/// accumulate. The closed form is followed here: it depends only on the epoch, so it cannot drift, and
/// `lr_{t_max} = η_min` exactly. Epoch 0 keeps the optimiser's rate, as PyTorch does.
#[derive(Debug, Clone, PartialEq)]
pub struct CosineAnnealingLr {
    t_max: u64,
    eta_min: f64,
    position: Position,
}

impl CosineAnnealingLr {
    /// The schedule for `optimizer` from its current learning rate (PyTorch's default
    /// `eta_min` is `0.0`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if `t_max` is 0, or `eta_min` is negative or not finite.
    pub fn new<T: Float>(
        optimizer: &mut dyn Optimizer<T>,
        t_max: u64,
        eta_min: f64,
    ) -> Result<Self> {
        check_positive("t_max", t_max)?;
        check_non_negative("eta_min", eta_min)?;
        Ok(CosineAnnealingLr {
            t_max,
            eta_min,
            position: Position::start(optimizer.lr()),
        })
    }
}

impl CosineAnnealingLr {
    /// The rate of the next epoch, by the closed form alone (the current rate is not read).
    fn next_lr(&self, _current: f64) -> f64 {
        let e = (self.position.last_epoch + 1) as f64;
        let (base, eta_min) = (self.position.base_lr, self.eta_min);
        // as torch's _get_closed_form_lr evaluates it
        let cos = (core::f64::consts::PI * e / self.t_max as f64).cos();
        let lr = eta_min + (base - eta_min) * (1.0 + cos) / 2.0;
        // a base rate below eta_min would go negative through rounding only
        lr.max(0.0)
    }
}

position_methods!(CosineAnnealingLr, "cosine_annealing_lr");

/// Scales the learning rate by a factor that moves linearly from `start_factor` to
/// `end_factor` over `total_iters` epochs, then stays: a linear warm-up (or decay), as
/// PyTorch's
/// [`LinearLR`](https://pytorch.org/docs/stable/generated/torch.optim.lr_scheduler.LinearLR.html):
///
/// ```text
/// lr_0 = base_lr · start_factor
/// lr_e = lr_{e−1} · (1 + (end − start) / (total_iters·start + (e − 1)·(end − start)))   0 < e ≤ total_iters
/// lr_e = lr_{e−1}                                                                       e > total_iters
/// ```
///
/// so that `lr_e = base_lr · (start + (end − start)·min(e, total_iters)/total_iters)` up to
/// rounding. The chained form is followed, as PyTorch's `scheduler.step()` computes it, so the
/// rates equal PyTorch's exactly. Making the schedule sets the optimiser's rate to `lr_0`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearLr {
    start_factor: f64,
    end_factor: f64,
    total_iters: u64,
    position: Position,
}

impl LinearLr {
    /// The schedule for `optimizer` from its current learning rate, which it multiplies by
    /// `start_factor` (PyTorch's defaults: `start_factor = 1/3`, `end_factor = 1.0`,
    /// `total_iters = 5`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if `start_factor` is not in `(0, 1]` or `end_factor` not in
    /// `[0, 1]` (as PyTorch); the optimiser is then unchanged.
    pub fn new<T: Float>(
        optimizer: &mut dyn Optimizer<T>,
        start_factor: f64,
        end_factor: f64,
        total_iters: u64,
    ) -> Result<Self> {
        if !(start_factor > 0.0 && start_factor <= 1.0) {
            return Err(Error::InvalidArgument {
                name: "start_factor",
                reason: format!("{start_factor} is not in (0, 1]"),
            });
        }
        if !(0.0..=1.0).contains(&end_factor) {
            return Err(Error::InvalidArgument {
                name: "end_factor",
                reason: format!("{end_factor} is not in [0, 1]"),
            });
        }
        let base_lr = optimizer.lr();
        optimizer.set_lr(base_lr * start_factor)?;
        Ok(LinearLr {
            start_factor,
            end_factor,
            total_iters,
            position: Position::start(base_lr),
        })
    }
}

impl LinearLr {
    /// The rate of the next epoch, from the optimiser's current rate `lr`.
    fn next_lr(&self, lr: f64) -> f64 {
        let epoch = self.position.last_epoch + 1;
        if epoch > self.total_iters {
            lr
        } else {
            let (start, end) = (self.start_factor, self.end_factor);
            let total = self.total_iters as f64;
            lr * (1.0 + (end - start) / (total * start + (epoch - 1) as f64 * (end - start)))
        }
    }
}

position_methods!(LinearLr, "linear_lr");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Sgd, SgdConfig};

    fn sgd(lr: f64) -> Sgd<f64> {
        SgdConfig::new(lr).init().unwrap()
    }

    /// The optimiser's rate after construction (epoch 0), then after each of `n` steps.
    fn rates(
        lr: f64,
        n: usize,
        make: impl FnOnce(&mut Sgd<f64>) -> Result<Box<dyn LrScheduler<f64>>>,
    ) -> Vec<f64> {
        let mut opt = sgd(lr);
        let mut schedule = make(&mut opt).unwrap();
        let mut lrs = vec![opt.lr()];
        for _ in 0..n {
            schedule.step(&mut opt).unwrap();
            lrs.push(opt.lr());
        }
        lrs
    }

    // The expected rates below come from torch 2.15 (CPU), printed with `repr`:
    //
    //     import torch
    //     def run(make, lr, n):
    //         o = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    //         s = make(o); lrs = [o.param_groups[0]["lr"]]
    //         for _ in range(n):
    //             o.step(); s.step(); lrs.append(o.param_groups[0]["lr"])
    //         return lrs

    /// `run(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.3), 0.1, 12)`
    #[test]
    fn step_lr_matches_torch() {
        let expected = [
            0.1,
            0.1,
            0.1,
            0.03,
            0.03,
            0.03,
            0.009,
            0.009,
            0.009,
            0.0026999999999999997,
            0.0026999999999999997,
            0.0026999999999999997,
            0.0008099999999999998,
        ];
        let got = rates(0.1, 12, |o| Ok(Box::new(StepLr::new(o, 3, 0.3)?)));
        assert_eq!(got, expected);
    }

    /// `run(lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.9), 0.05, 12)`
    #[test]
    fn exponential_lr_matches_torch() {
        let expected = [
            0.05,
            0.045000000000000005,
            0.04050000000000001,
            0.03645000000000001,
            0.03280500000000001,
            0.02952450000000001,
            0.02657205000000001,
            0.02391484500000001,
            0.021523360500000012,
            0.01937102445000001,
            0.01743392200500001,
            0.015690529804500006,
            0.014121476824050006,
        ];
        let got = rates(0.05, 12, |o| Ok(Box::new(ExponentialLr::new(o, 0.9)?)));
        assert_eq!(got, expected);
    }

    /// Warm-up: `run(lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=0.1,
    /// end_factor=1.0, total_iters=6), 0.2, 10)`; decay: `LinearLR(o, start_factor=1.0,
    /// end_factor=0.25, total_iters=4)` from 0.3 for 7 steps.
    #[test]
    fn linear_lr_matches_torch() {
        let warm_up = [
            0.020000000000000004,
            0.05000000000000001,
            0.08000000000000002,
            0.11000000000000001,
            0.14,
            0.17,
            0.2,
            0.2,
            0.2,
            0.2,
            0.2,
        ];
        let got = rates(0.2, 10, |o| Ok(Box::new(LinearLr::new(o, 0.1, 1.0, 6)?)));
        assert_eq!(got, warm_up);
        let decay = [
            0.3,
            0.24375,
            0.18749999999999997,
            0.13124999999999998,
            0.07499999999999998,
            0.07499999999999998,
            0.07499999999999998,
            0.07499999999999998,
        ];
        let got = rates(0.3, 7, |o| Ok(Box::new(LinearLr::new(o, 1.0, 0.25, 4)?)));
        assert_eq!(got, decay);
    }

    /// `t_max = 10`, `eta_min = 0.001` from 0.1, 25 steps (two and a half half-periods).
    /// `closed` is torch's closed form, `[0.001 + (0.1 - 0.001) * (1 + math.cos(math.pi * e /
    /// 10)) / 2 for e in range(26)]` (`_get_closed_form_lr`), followed here exactly;
    /// `recursive` is what torch's `scheduler.step()` gives,
    /// `run(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=0.001),
    /// 0.1, 25)`: the same up to 1 ulp for `e ≤ t_max`, up to 4.5e-16 (32 ulps at the base
    /// rate) after.
    #[test]
    fn cosine_annealing_lr_matches_torch() {
        let closed = [
            0.1,
            0.09757729755661011,
            0.0905463412215599,
            0.07959536998847742,
            0.0657963412215599,
            0.0505,
            0.03520365877844011,
            0.021404630011522586,
            0.010453658778440109,
            0.0034227024433899004,
            0.001,
            0.003422702443389889,
            0.010453658778440095,
            0.021404630011522575,
            0.035203658778440096,
            0.05049999999999999,
            0.06579634122155989,
            0.07959536998847741,
            0.0905463412215599,
            0.09757729755661011,
            0.1,
            0.09757729755661011,
            0.09054634122155994,
            0.07959536998847744,
            0.06579634122155992,
            0.05050000000000002,
        ];
        let recursive = [
            0.1,
            0.09757729755661011,
            0.0905463412215599,
            0.07959536998847742,
            0.0657963412215599,
            0.0505,
            0.03520365877844011,
            0.02140463001152259,
            0.010453658778440109,
            0.0034227024433899004,
            0.001,
            0.0034227024433899004,
            0.01045365877844014,
            0.02140463001152267,
            0.035203658778440255,
            0.05050000000000022,
            0.06579634122156018,
            0.07959536998847777,
            0.09054634122156031,
            0.09757729755661054,
            0.10000000000000045,
            0.09757729755661054,
            0.09054634122156033,
            0.07959536998847778,
            0.0657963412215602,
            0.050500000000000225,
        ];
        let got = rates(0.1, 25, |o| {
            Ok(Box::new(CosineAnnealingLr::new(o, 10, 0.001)?))
        });
        assert_eq!(got, closed);
        for (e, (g, r)) in got.iter().zip(recursive).enumerate() {
            // within an ulp up to t_max, then within 1e-14 of the base rate
            let tol = if e <= 10 {
                f64::EPSILON * r
            } else {
                1e-14 * 0.1
            };
            assert!((g - r).abs() <= tol, "epoch {e}: {g} vs {r}");
        }
    }

    /// A schedule restored into a new one (built from a fresh optimiser whose state is then
    /// restored) continues exactly as the one that never stopped.
    #[test]
    fn a_restored_schedule_continues_identically() {
        type Make = fn(&mut Sgd<f64>) -> Result<Box<dyn LrScheduler<f64>>>;
        let makes: [Make; 4] = [
            |o| Ok(Box::new(StepLr::new(o, 2, 0.5)?)),
            |o| Ok(Box::new(ExponentialLr::new(o, 0.7)?)),
            |o| Ok(Box::new(CosineAnnealingLr::new(o, 5, 0.01)?)),
            |o| Ok(Box::new(LinearLr::new(o, 0.25, 1.0, 6)?)),
        ];
        for make in makes {
            let straight = rates(0.3, 9, make);
            let mut opt = sgd(0.3);
            let mut schedule = make(&mut opt).unwrap();
            for _ in 0..4 {
                schedule.step(&mut opt).unwrap();
            }
            let (saved_opt, saved) = (opt.clone(), schedule.state());
            let mut opt = sgd(0.3);
            let mut resumed = make(&mut opt).unwrap();
            opt.set_lr(saved_opt.lr()).unwrap();
            resumed.restore(&saved).unwrap();
            assert_eq!(resumed.state(), saved);
            let mut rest = vec![opt.lr()];
            for _ in 0..5 {
                resumed.step(&mut opt).unwrap();
                rest.push(opt.lr());
            }
            assert_eq!(rest, straight[4..], "{}", saved.kind());
        }
    }

    #[test]
    fn a_state_of_another_kind_or_value_is_rejected() {
        let mut opt = sgd(0.1);
        let mut step = StepLr::new(&mut opt, 2, 0.5).unwrap();
        let cosine = CosineAnnealingLr::new(&mut opt, 5, 0.0).unwrap();
        let e = step.restore(&cosine.state()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid scheduler state: it is the state of cosine_annealing_lr, not of step_lr"
        );
        for bad in [
            SchedulerState::new("step_lr", &[("base_lr", 0.1), ("last_epoch", 1.5)]),
            SchedulerState::new("step_lr", &[("base_lr", -0.1), ("last_epoch", 1.0)]),
            SchedulerState::new("step_lr", &[("last_epoch", 1.0)]),
        ] {
            assert!(step.restore(&bad).is_err(), "{bad:?}");
        }
        assert_eq!(step, StepLr::new(&mut opt, 2, 0.5).unwrap(), "unchanged");
    }

    #[test]
    fn invalid_arguments_are_rejected_and_leave_the_rate() {
        let mut opt = sgd(0.1);
        let errors = [
            StepLr::new(&mut opt, 0, 0.5).unwrap_err(),
            StepLr::new(&mut opt, 1, -0.5).unwrap_err(),
            ExponentialLr::new(&mut opt, f64::NAN).unwrap_err(),
            CosineAnnealingLr::new(&mut opt, 0, 0.0).unwrap_err(),
            CosineAnnealingLr::new(&mut opt, 3, -1.0).unwrap_err(),
            LinearLr::new(&mut opt, 0.0, 1.0, 5).unwrap_err(),
            LinearLr::new(&mut opt, 0.5, 1.5, 5).unwrap_err(),
        ];
        let names: Vec<String> = errors
            .iter()
            .map(|e| match e {
                Error::InvalidArgument { name, .. } => name.to_string(),
                e => e.to_string(),
            })
            .collect();
        assert_eq!(
            names,
            [
                "step_size",
                "gamma",
                "gamma",
                "t_max",
                "eta_min",
                "start_factor",
                "end_factor"
            ]
        );
        assert_eq!(opt.lr(), 0.1);
    }
}
