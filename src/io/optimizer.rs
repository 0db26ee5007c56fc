//! Optimiser files: an optimiser's state (and optionally a schedule's) as one safetensors
//! file, so that a stopped run resumes exactly.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use super::file::{read_file, write_atomically};
use super::{decode, encode, parse, Dtypes, Encoded};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::optim::{Optimizer, OptimizerState, SchedulerState};
use crate::params::{NamedTensors, Parameters};
use crate::tensor::Tensor;

/// The `__metadata__` key of an optimiser file's JSON.
const METADATA_KEY: &str = "recurrent.optimizer";

/// The version of the JSON layout, written as `"version"`.
const VERSION: u64 = 1;

/// The optimiser file's bytes for `state` and `scheduler`.
fn to_bytes<T: Float>(
    state: &OptimizerState<T>,
    scheduler: Option<&SchedulerState>,
) -> Result<Vec<u8>> {
    let mut json = state.to_json();
    if let Value::Object(o) = &mut json {
        o.insert("version".into(), VERSION.into());
        if let Some(s) = scheduler {
            o.insert("scheduler".into(), s.to_json());
        }
    }
    let metadata = HashMap::from([(METADATA_KEY.to_string(), json.to_string())]);
    let tensors: Vec<(&str, Encoded)> = state
        .tensors()
        .iter()
        .map(|(n, t)| (n, encode(t)))
        .collect();
    let views = tensors.iter().map(|(n, e)| (*n, e));
    safetensors::serialize(views, Some(metadata)).map_err(|e| Error::InvalidArgument {
        name: "optimiser state",
        reason: format!("cannot be written as safetensors: {e}"),
    })
}

/// The optimiser state and the scheduler state (if any) of an optimiser file's bytes.
fn from_bytes<T: Float>(
    bytes: &[u8],
    path: &str,
) -> Result<(OptimizerState<T>, Option<SchedulerState>)> {
    let corrupt = |reason: String| Error::Corrupt {
        path: path.to_string(),
        reason,
    };
    let (_, header) =
        safetensors::SafeTensors::read_metadata(bytes).map_err(|e| corrupt(e.to_string()))?;
    let text = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(METADATA_KEY))
        .ok_or_else(|| {
            corrupt(format!(
                "no `{METADATA_KEY}` metadata: not an optimiser file"
            ))
        })?;
    let json: Value = serde_json::from_str(text)
        .map_err(|e| corrupt(format!("the `{METADATA_KEY}` metadata is not JSON: {e}")))?;
    match json.get("version").and_then(Value::as_u64) {
        Some(VERSION) => {}
        other => {
            return Err(corrupt(format!(
                "optimiser file version {other:?}, this library reads version {VERSION}"
            )))
        }
    }
    let file = parse(bytes, path)?;
    let mut names = file.names();
    names.sort_unstable();
    let mut tensors = NamedTensors::new();
    for name in names {
        let view = file.tensor(name).map_err(|e| corrupt(e.to_string()))?;
        let values = decode(name, view.dtype(), view.data(), Dtypes::Strict)?;
        let tensor = Tensor::from_vec(values, view.shape()).map_err(|_| {
            corrupt(format!(
                "tensor `{name}` has shape {:?}; optimiser state tensors have rank 1 to 3",
                view.shape()
            ))
        })?;
        tensors.push(name, tensor);
    }
    let state = OptimizerState::from_json(&json, tensors).map_err(corrupt)?;
    let scheduler = match json.get("scheduler") {
        None | Some(Value::Null) => None,
        Some(s) => Some(SchedulerState::from_json(s).map_err(corrupt)?),
    };
    Ok((state, scheduler))
}

/// Writes the state of `optimizer` ([`Optimizer::state_dict`]), and the state of a learning-rate
/// schedule if given, to the file `path`, so that [`load_optimizer`] resumes a run exactly.
///
/// The file is a safetensors file: its tensors are the state's tensors under their names
/// (`exp_avg.<param>`, `exp_avg_sq.<param>` for Adam, `momentum_buffer.<param>` for SGD, in
/// `T`'s element type), and its `__metadata__` holds under the key `"recurrent.optimizer"` a
/// JSON object with the hyper-parameters, the groups' settings, the step count of each
/// parameter (as `[name, count]` pairs) and the schedule's state. Like [`save`](crate::save),
/// it replaces `path` atomically (a temporary file renamed over it).
///
/// # Errors
///
/// [`Error::Io`] if the file cannot be written.
///
/// # Examples
///
/// Saving a model, its optimiser and its schedule, then resuming:
///
/// ```
/// use recurrent::{
///     load, load_optimizer, save, save_optimizer, AdamConfig, LrScheduler, NamedTensors,
///     Optimizer, Parameters, StepLr, Tensor,
/// };
///
/// struct Point {
///     x: Tensor<f32>,
/// }
///
/// impl Parameters<f32> for Point {
///     fn visit_params(&self, f: &mut dyn FnMut(&str, &Tensor<f32>)) {
///         f("x", &self.x)
///     }
///     fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Tensor<f32>)) {
///         f("x", &mut self.x)
///     }
/// }
///
/// let mut model = Point { x: Tensor::zeros(&[1]) };
/// let mut adam = AdamConfig::new(0.1).init()?;
/// let mut schedule = StepLr::new(&mut adam, 1, 0.5)?;
/// let mut grads = NamedTensors::new();
/// grads.push("x", Tensor::from_vec(vec![1.0], &[1])?);
/// adam.step(&mut model, &grads)?;
/// schedule.step(&mut adam)?;
///
/// let dir = std::env::temp_dir();
/// let weights = dir.join(format!("point-{}.safetensors", std::process::id()));
/// let opt = dir.join(format!("point-{}.optim.safetensors", std::process::id()));
/// save(&model, &weights)?;
/// save_optimizer(&adam, Some(&schedule.state()), &opt)?;
///
/// // a new process: build everything as at the start, then load
/// let mut model2 = Point { x: Tensor::zeros(&[1]) };
/// let mut adam2 = AdamConfig::new(0.1).init()?;
/// let mut schedule2 = StepLr::new(&mut adam2, 1, 0.5)?;
/// load(&mut model2, &weights)?;
/// if let Some(s) = load_optimizer(&mut adam2, &model2, &opt)? {
///     schedule2.restore(&s)?;
/// }
/// assert_eq!(adam2.lr(), 0.05);
/// assert_eq!(adam2.state_dict(), adam.state_dict());
/// assert_eq!(schedule2, schedule);
/// # std::fs::remove_file(&weights).unwrap();
/// # std::fs::remove_file(&opt).unwrap();
/// # Ok::<(), recurrent::Error>(())
/// ```
pub fn save_optimizer<T: Float, O: Optimizer<T> + ?Sized>(
    optimizer: &O,
    scheduler: Option<&SchedulerState>,
    path: impl AsRef<Path>,
) -> Result<()> {
    let bytes = to_bytes(&optimizer.state_dict(), scheduler)?;
    write_atomically(path.as_ref(), &bytes)
}

/// Loads the optimiser file `path` (written by [`save_optimizer`]) into `optimizer`, checked
/// against `model` as [`Optimizer::load_state_dict`] does, and returns the schedule's state
/// the file holds, if any, to give to the schedule's `restore`.
///
/// Everything is checked before the optimiser changes; on error it is unchanged.
///
/// # Errors
///
/// - [`Error::Io`] if the file cannot be read;
/// - [`Error::Corrupt`] naming the file if it is not a valid safetensors file, has no
///   `"recurrent.optimizer"` metadata or one that is not the JSON [`save_optimizer`] writes,
///   or holds a tensor of rank 0 or above 3;
/// - [`Error::DtypeMismatch`] naming a tensor of another element type than `T`'s;
/// - the errors of [`Optimizer::load_state_dict`]: a state of another kind of optimiser,
///   a tensor or step count of no parameter of `model` or of another shape, state missing.
///
/// # Examples
///
/// See [`save_optimizer`].
pub fn load_optimizer<T: Float, O: Optimizer<T> + ?Sized>(
    optimizer: &mut O,
    model: &dyn Parameters<T>,
    path: impl AsRef<Path>,
) -> Result<Option<SchedulerState>> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    let (state, scheduler) = from_bytes(&bytes, &path.display().to_string())?;
    optimizer.load_state_dict(state, model)?;
    Ok(scheduler)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::testing::{grad_w, Toy};
    use crate::SgdConfig;

    #[test]
    fn bytes_round_trip_the_state_and_the_schedule() {
        let mut model = Toy::<f64>::new(&[1.0, 2.0]);
        let mut sgd = SgdConfig::new(0.1).with_momentum(0.9).init().unwrap();
        sgd.step(&mut model, &grad_w(&[0.5, -0.25])).unwrap();
        let schedule = SchedulerState::new(
            "reduce_lr_on_plateau",
            &[("best", f64::INFINITY), ("last_epoch", 3.0)],
        );
        let bytes = to_bytes(&sgd.state_dict(), Some(&schedule)).unwrap();
        let (state, s) = from_bytes::<f64>(&bytes, "<memory>").unwrap();
        assert_eq!(state, sgd.state_dict());
        assert_eq!(s, Some(schedule));
    }

    #[test]
    fn bad_metadata_is_corrupt() {
        let sgd = SgdConfig::new(0.1).init::<f32>().unwrap();
        let good = to_bytes(&sgd.state_dict(), None).unwrap();
        // no tensors: the header (JSON, so UTF-8) is all that follows its length
        let (len, text) = good.split_at(8);
        let text = std::str::from_utf8(text).unwrap();
        // each change keeps the header's length
        for (from, to, why) in [
            (
                "\"kind\\\":\\\"sgd",
                "\"kind\\\":\\\"rms",
                "unknown optimiser kind `rms`",
            ),
            ("\"lr\\\":0.1", "\"lr\\\":[1]", "`lr` is not a number"),
            ("\"version\\\":1", "\"version\\\":9", "version Some(9)"),
            (
                "recurrent.optimizer",
                "recurrent.optimizes",
                "not an optimiser file",
            ),
            ("{\\\"", "[\\\"", "is not JSON"),
        ] {
            assert!(text.contains(from), "{from} not in {text}");
            let bad = [len, text.replacen(from, to, 1).as_bytes()].concat();
            match from_bytes::<f32>(&bad, "f") {
                Err(Error::Corrupt { reason, .. }) => assert!(reason.contains(why), "{reason}"),
                other => panic!("{from}: expected a corrupt file, got {other:?}"),
            }
        }
        let e = from_bytes::<f32>(&good[..good.len() / 2], "f").unwrap_err();
        assert!(matches!(e, Error::Corrupt { .. }), "{e}");
    }
}
