//! Learning-rate schedules over the epochs, as `torch.optim.lr_scheduler`: [`StepLr`],
//! [`ExponentialLr`], [`CosineAnnealingLr`] and [`LinearLr`] behind [`LrScheduler`], and the
//! [`SchedulerState`] that lets a resumed run continue a schedule.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

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

/// The position of a learning-rate schedule, as named numbers (as PyTorch's
/// `scheduler.state_dict()`): made by [`LrScheduler::state`] or
/// [`ReduceLrOnPlateau::state`](crate::ReduceLrOnPlateau::state), given back to `restore`, and
/// saved beside an optimiser's state with [`save_optimizer`](crate::save_optimizer).
///
/// # Examples
///
/// ```
/// use recurrent::{ExponentialLr, LrScheduler, Sgd, SgdConfig};
///
/// let mut sgd: Sgd<f64> = SgdConfig::new(0.1).init()?;
/// let mut schedule = ExponentialLr::new(&mut sgd, 0.9)?;
/// schedule.step(&mut sgd)?;
/// let state = schedule.state();
/// assert_eq!(state.kind(), "exponential_lr");
/// assert_eq!(state.get("last_epoch"), Some(1.0));
/// assert_eq!(state.get("base_lr"), Some(0.1));
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SchedulerState {
    kind: String,
    values: BTreeMap<String, f64>,
}

impl SchedulerState {
    /// A state of the schedule `kind` with the named values.
    pub(crate) fn new(kind: &str, values: &[(&str, f64)]) -> Self {
        SchedulerState {
            kind: kind.to_string(),
            values: values.iter().map(|&(k, v)| (k.to_string(), v)).collect(),
        }
    }

    /// The kind of schedule, for example `"step_lr"` or `"reduce_lr_on_plateau"`.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The value called `name`, for example `"last_epoch"`.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.values.get(name).copied()
    }

    /// The names and values, by name.
    pub fn values(&self) -> impl ExactSizeIterator<Item = (&str, f64)> {
        self.values.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// Checks that the state is of the schedule `kind`.
    pub(crate) fn expect_kind(&self, kind: &str) -> Result<()> {
        if self.kind == kind {
            Ok(())
        } else {
            Err(Error::InvalidArgument {
                name: "scheduler state",
                reason: format!("it is the state of {}, not of {kind}", self.kind),
            })
        }
    }

    /// The value called `name`, which must be finite and at least 0.
    pub(crate) fn non_negative(&self, name: &'static str) -> Result<f64> {
        let v = self.require(name)?;
        check_non_negative(name, v)?;
        Ok(v)
    }

    /// The value called `name`, which must be a whole number in `0..=2⁵³`.
    pub(crate) fn count(&self, name: &'static str) -> Result<u64> {
        let v = self.require(name)?;
        if (0.0..=9_007_199_254_740_992.0).contains(&v) && v.fract() == 0.0 {
            Ok(v as u64)
        } else {
            Err(Error::InvalidArgument {
                name,
                reason: format!("{v} is not a whole number >= 0"),
            })
        }
    }

    /// The value called `name`.
    pub(crate) fn require(&self, name: &'static str) -> Result<f64> {
        self.get(name).ok_or_else(|| Error::InvalidArgument {
            name: "scheduler state",
            reason: format!("it has no value `{name}`"),
        })
    }

    /// The state as a JSON object; infinities and NaN, which JSON numbers cannot hold, are
    /// written as the strings `"inf"`, `"-inf"` and `"nan"`.
    pub(crate) fn to_json(&self) -> Value {
        let values: Map<String, Value> = self
            .values
            .iter()
            .map(|(k, &v)| {
                let v = if v.is_finite() {
                    Value::from(v)
                } else if v.is_nan() {
                    "nan".into()
                } else if v > 0.0 {
                    "inf".into()
                } else {
                    "-inf".into()
                };
                (k.clone(), v)
            })
            .collect();
        serde_json::json!({ "kind": self.kind, "values": values })
    }

    /// The state from the JSON object [`to_json`](SchedulerState::to_json) makes.
    pub(crate) fn from_json(value: &Value) -> core::result::Result<Self, String> {
        let kind = value
            .get("kind")
            .and_then(Value::as_str)
            .ok_or("the scheduler state has no `kind` string")?;
        let values = value
            .get("values")
            .and_then(Value::as_object)
            .ok_or("the scheduler state has no `values` object")?
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) if s == "inf" => f64::INFINITY,
                    Value::String(s) if s == "-inf" => f64::NEG_INFINITY,
                    Value::String(s) if s == "nan" => f64::NAN,
                    v => v
                        .as_f64()
                        .ok_or_else(|| format!("scheduler value `{k}` is not a number"))?,
                };
                Ok((k.clone(), v))
            })
            .collect::<core::result::Result<_, String>>()?;
        Ok(SchedulerState {
            kind: kind.to_string(),
            values,
        })
    }
}

/// The base learning rate and epoch of a closed or chained schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Position {
    base_lr: f64,
    last_epoch: u64,
}

impl Position {
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

/// The inherent methods every schedule with a [`Position`] shares: its epoch, its base rate,
/// and its state (inherent as well as in [`LrScheduler`], so that calling them needs no
/// element type).
macro_rules! position_methods {
    ($ty:ident, $kind:literal) => {
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
            position: Position {
                base_lr: optimizer.lr(),
                last_epoch: 0,
            },
        })
    }
}

impl<T: Float> LrScheduler<T> for StepLr {
    fn step(&mut self, optimizer: &mut dyn Optimizer<T>) -> Result<()> {
        let epoch = self.position.last_epoch + 1;
        let lr = if epoch % self.step_size == 0 {
            optimizer.lr() * self.gamma
        } else {
            optimizer.lr()
        };
        self.position.advance(optimizer, lr)
    }

    fn state(&self) -> SchedulerState {
        StepLr::state(self)
    }

    fn restore(&mut self, state: &SchedulerState) -> Result<()> {
        StepLr::restore(self, state)
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
            position: Position {
                base_lr: optimizer.lr(),
                last_epoch: 0,
            },
        })
    }
}

impl<T: Float> LrScheduler<T> for ExponentialLr {
    fn step(&mut self, optimizer: &mut dyn Optimizer<T>) -> Result<()> {
        let lr = optimizer.lr() * self.gamma;
        self.position.advance(optimizer, lr)
    }

    fn state(&self) -> SchedulerState {
        ExponentialLr::state(self)
    }

    fn restore(&mut self, state: &SchedulerState) -> Result<()> {
        ExponentialLr::restore(self, state)
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
/// by a recursion on the current rate; its results equal the closed form up to rounding (at
/// most a few units in the last place over two periods, from the accumulated ratios). The
/// closed form is followed here: it depends only on the epoch, so it cannot drift, and
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
            position: Position {
                base_lr: optimizer.lr(),
                last_epoch: 0,
            },
        })
    }
}

impl<T: Float> LrScheduler<T> for CosineAnnealingLr {
    fn step(&mut self, optimizer: &mut dyn Optimizer<T>) -> Result<()> {
        let e = (self.position.last_epoch + 1) as f64;
        let (base, eta_min) = (self.position.base_lr, self.eta_min);
        // as torch's _get_closed_form_lr evaluates it
        let cos = (core::f64::consts::PI * e / self.t_max as f64).cos();
        let lr = eta_min + (base - eta_min) * (1.0 + cos) / 2.0;
        // a base rate below eta_min would go negative through rounding only
        self.position.advance(optimizer, lr.max(0.0))
    }

    fn state(&self) -> SchedulerState {
        CosineAnnealingLr::state(self)
    }

    fn restore(&mut self, state: &SchedulerState) -> Result<()> {
        CosineAnnealingLr::restore(self, state)
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
            position: Position {
                base_lr,
                last_epoch: 0,
            },
        })
    }
}

impl<T: Float> LrScheduler<T> for LinearLr {
    fn step(&mut self, optimizer: &mut dyn Optimizer<T>) -> Result<()> {
        let epoch = self.position.last_epoch + 1;
        let lr = if epoch > self.total_iters {
            optimizer.lr()
        } else {
            let (start, end) = (self.start_factor, self.end_factor);
            let total = self.total_iters as f64;
            let ratio = 1.0 + (end - start) / (total * start + (epoch - 1) as f64 * (end - start));
            optimizer.lr() * ratio
        };
        self.position.advance(optimizer, lr)
    }

    fn state(&self) -> SchedulerState {
        LinearLr::state(self)
    }

    fn restore(&mut self, state: &SchedulerState) -> Result<()> {
        LinearLr::restore(self, state)
    }
}

position_methods!(LinearLr, "linear_lr");
