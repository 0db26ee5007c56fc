//! [`SchedulerState`]: the position of a learning-rate schedule as named numbers, and its JSON
//! form for the optimiser files of [`crate::io`].

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::check_non_negative;
use crate::error::{Error, Result};

/// The position of a learning-rate schedule, as named numbers (as PyTorch's
/// `scheduler.state_dict()`): made by [`LrScheduler::state`](crate::LrScheduler::state) or
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_state_json_round_trips_infinities() {
        let s = SchedulerState::new(
            "x",
            &[("a", f64::INFINITY), ("b", f64::NEG_INFINITY), ("c", 0.1)],
        );
        let back = SchedulerState::from_json(&s.to_json()).unwrap();
        assert_eq!(back, s);
        let nan = SchedulerState::new("x", &[("a", f64::NAN)]);
        let back = SchedulerState::from_json(&nan.to_json()).unwrap();
        assert!(back.get("a").unwrap().is_nan());
        assert!(SchedulerState::from_json(&serde_json::json!({"kind": "x"})).is_err());
    }
}
