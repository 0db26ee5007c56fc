//! [`OptimizerState`]: what an optimiser knows, as a value to save and to load, and its JSON
//! form for the optimiser files of [`crate::io`].

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::binding::Binding;
use super::group::GroupSettings;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::params::NamedTensors;
use crate::tensor::Tensor;

/// The hyper-parameters of an optimiser, by kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Settings {
    /// [`crate::Adam`]'s.
    Adam {
        lr: f64,
        betas: (f64, f64),
        eps: f64,
        weight_decay: f64,
        decoupled_weight_decay: bool,
    },
    /// [`crate::Sgd`]'s.
    Sgd {
        lr: f64,
        momentum: f64,
        dampening: f64,
        weight_decay: f64,
        nesterov: bool,
    },
}

impl Settings {
    /// `"adam"` or `"sgd"`.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Settings::Adam { .. } => "adam",
            Settings::Sgd { .. } => "sgd",
        }
    }
}

/// Everything an optimiser knows, as PyTorch's `optimizer.state_dict()`: its hyper-parameters
/// (the learning rate as a schedule left it), the settings of its parameter groups (not their
/// predicates, which stay with the optimiser), the number of steps each parameter has taken,
/// and its tensors under PyTorch's state names followed by the parameter's full name:
/// `exp_avg.<param>` and `exp_avg_sq.<param>` for [`Adam`](crate::Adam),
/// `momentum_buffer.<param>` for [`Sgd`](crate::Sgd) with momentum.
///
/// Made by [`Optimizer::state_dict`](crate::Optimizer::state_dict), given back with
/// [`Optimizer::load_state_dict`](crate::Optimizer::load_state_dict), written to a file with
/// [`save_optimizer`](crate::save_optimizer).
///
/// # Examples
///
/// ```
/// use recurrent::{AdamConfig, NamedTensors, Optimizer, Parameters, Tensor};
///
/// struct Point {
///     x: Tensor<f64>,
/// }
///
/// impl Parameters<f64> for Point {
///     fn visit_params(&self, f: &mut dyn FnMut(&str, &Tensor<f64>)) {
///         f("x", &self.x)
///     }
///     fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Tensor<f64>)) {
///         f("x", &mut self.x)
///     }
/// }
///
/// let mut model = Point { x: Tensor::zeros(&[2]) };
/// let mut adam = AdamConfig::new(0.1).init()?;
/// let mut grads = NamedTensors::new();
/// grads.push("x", Tensor::from_vec(vec![1.0, -1.0], &[2])?);
/// adam.step(&mut model, &grads)?;
///
/// let state = adam.state_dict();
/// assert_eq!(state.kind(), "adam");
/// assert_eq!(state.step_count("x"), Some(1));
/// let names: Vec<&str> = state.tensors().iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["exp_avg.x", "exp_avg_sq.x"]);
///
/// let mut resumed = AdamConfig::new(0.1).init()?;
/// resumed.load_state_dict(state, &model)?;
/// assert_eq!(resumed.state_dict(), adam.state_dict());
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct OptimizerState<T> {
    pub(crate) settings: Settings,
    pub(crate) groups: Vec<GroupSettings>,
    pub(crate) steps: Vec<(String, u64)>,
    pub(crate) tensors: NamedTensors<T>,
}

impl<T: Float> OptimizerState<T> {
    /// The kind of optimiser: `"adam"` or `"sgd"`.
    pub fn kind(&self) -> &'static str {
        self.settings.kind()
    }

    /// The learning rate.
    pub fn lr(&self) -> f64 {
        match self.settings {
            Settings::Adam { lr, .. } | Settings::Sgd { lr, .. } => lr,
        }
    }

    /// The number of steps the parameter called `name` has taken, if the optimiser has state
    /// for it (none for a frozen parameter, or before the first step).
    pub fn step_count(&self, name: &str) -> Option<u64> {
        self.steps.iter().find(|(n, _)| n == name).map(|&(_, s)| s)
    }

    /// The step count of every parameter with state, in the model's order.
    pub fn step_counts(&self) -> impl ExactSizeIterator<Item = (&str, u64)> {
        self.steps.iter().map(|(n, s)| (n.as_str(), *s))
    }

    /// The state's tensors, named `<state>.<param>`.
    pub fn tensors(&self) -> &NamedTensors<T> {
        &self.tensors
    }

    /// Checks the state's step counts and tensors against the parameters of `binding` (whose
    /// frozen flags follow the state's groups), and returns for each parameter its step count
    /// and its tensors in the order of `kinds` (`["exp_avg", "exp_avg_sq"]`), or `None` if it
    /// has no state. Either every parameter that is not frozen has state, or none has.
    ///
    /// # Errors
    ///
    /// - [`Error::UnexpectedParameter`] naming a step count or tensor of no parameter (or a
    ///   tensor whose state name is not one of `kinds`);
    /// - [`Error::InvalidArgument`] for state of a frozen parameter, or a name given twice;
    /// - [`Error::ParameterShape`] naming a tensor of another shape than its parameter;
    /// - [`Error::MissingParameter`] naming a tensor or step count the state lacks.
    pub(crate) fn unpack(
        &self,
        binding: &Binding,
        kinds: &[&str],
    ) -> Result<Vec<Option<Unpacked<T>>>> {
        let mut steps = vec![None; binding.len()];
        for (name, step) in &self.steps {
            let Some(i) = binding.position(name) else {
                return Err(Error::UnexpectedParameter { name: name.clone() });
            };
            if binding.frozen[i] {
                return Err(state_error(format!(
                    "parameter `{name}` is frozen, but the state has a step count for it"
                )));
            }
            if steps[i].replace(*step).is_some() {
                return Err(state_error(format!("two step counts for `{name}`")));
            }
        }
        let mut tensors: HashMap<(usize, usize), &Tensor<T>> = HashMap::new();
        for (full, t) in self.tensors.iter() {
            let found = kinds.iter().enumerate().find_map(|(k, kind)| {
                let param = full.strip_prefix(kind)?.strip_prefix('.')?;
                Some((k, binding.position(param)?))
            });
            let Some((k, i)) = found else {
                return Err(Error::UnexpectedParameter {
                    name: full.to_string(),
                });
            };
            if steps[i].is_none() {
                return Err(state_error(format!(
                    "tensor `{full}` belongs to a parameter without a step count"
                )));
            }
            if t.shape() != binding.shapes[i].as_slice() {
                return Err(Error::ParameterShape {
                    name: full.to_string(),
                    expected: binding.shapes[i].clone(),
                    actual: t.shape().to_vec(),
                });
            }
            if tensors.insert((i, k), t).is_some() {
                return Err(state_error(format!("two tensors are named `{full}`")));
            }
        }
        let any = steps.iter().any(Option::is_some);
        let mut unpacked = Vec::with_capacity(binding.len());
        for (i, step) in steps.into_iter().enumerate() {
            let Some(step) = step else {
                if any && !binding.frozen[i] {
                    return Err(Error::MissingParameter {
                        name: binding.names[i].clone(),
                        reason: "the optimiser state has no step count for it",
                    });
                }
                unpacked.push(None);
                continue;
            };
            let mut own = Vec::with_capacity(kinds.len());
            for (k, kind) in kinds.iter().enumerate() {
                match tensors.get(&(i, k)) {
                    Some(t) => own.push((*t).clone()),
                    None => {
                        return Err(Error::MissingParameter {
                            name: format!("{kind}.{}", binding.names[i]),
                            reason: "the optimiser state has no tensor of that name",
                        })
                    }
                }
            }
            unpacked.push(Some((step, own)));
        }
        Ok(unpacked)
    }

    /// The state without its tensors, as the JSON object of an optimiser file.
    pub(crate) fn to_json(&self) -> Value {
        let mut object = match self.settings {
            Settings::Adam {
                lr,
                betas,
                eps,
                weight_decay,
                decoupled_weight_decay,
            } => json!({
                "lr": lr,
                "betas": [betas.0, betas.1],
                "eps": eps,
                "weight_decay": weight_decay,
                "decoupled_weight_decay": decoupled_weight_decay,
            }),
            Settings::Sgd {
                lr,
                momentum,
                dampening,
                weight_decay,
                nesterov,
            } => json!({
                "lr": lr,
                "momentum": momentum,
                "dampening": dampening,
                "weight_decay": weight_decay,
                "nesterov": nesterov,
            }),
        };
        let groups: Vec<Value> = self
            .groups
            .iter()
            .map(|g| {
                json!({
                    "lr_scale": g.lr_scale,
                    "weight_decay": g.weight_decay,
                    "frozen": g.frozen,
                })
            })
            .collect();
        let steps: Vec<Value> = self.steps.iter().map(|(n, s)| json!([n, s])).collect();
        if let Value::Object(o) = &mut object {
            o.insert("kind".into(), self.kind().into());
            o.insert("groups".into(), groups.into());
            o.insert("steps".into(), steps.into());
        }
        object
    }

    /// The state from the JSON object of an optimiser file and its tensors; the values are
    /// checked by the optimiser that loads the state.
    ///
    /// # Errors
    ///
    /// A description of the first field that is missing or of the wrong type.
    pub(crate) fn from_json(
        value: &Value,
        tensors: NamedTensors<T>,
    ) -> core::result::Result<Self, String> {
        let o = value
            .as_object()
            .ok_or("the optimiser state is not a JSON object")?;
        let kind = field(o, "kind")?.as_str().ok_or("`kind` is not a string")?;
        let settings = match kind {
            "adam" => {
                let betas = field(o, "betas")?
                    .as_array()
                    .filter(|b| b.len() == 2)
                    .ok_or("`betas` is not a pair")?;
                Settings::Adam {
                    lr: number(o, "lr")?,
                    betas: (
                        as_number(&betas[0], "betas")?,
                        as_number(&betas[1], "betas")?,
                    ),
                    eps: number(o, "eps")?,
                    weight_decay: number(o, "weight_decay")?,
                    decoupled_weight_decay: boolean(o, "decoupled_weight_decay")?,
                }
            }
            "sgd" => Settings::Sgd {
                lr: number(o, "lr")?,
                momentum: number(o, "momentum")?,
                dampening: number(o, "dampening")?,
                weight_decay: number(o, "weight_decay")?,
                nesterov: boolean(o, "nesterov")?,
            },
            other => return Err(format!("unknown optimiser kind `{other}`")),
        };
        let groups = field(o, "groups")?
            .as_array()
            .ok_or("`groups` is not an array")?
            .iter()
            .map(|g| {
                let g = g.as_object().ok_or("a group is not an object")?;
                let weight_decay = match field(g, "weight_decay")? {
                    Value::Null => None,
                    v => Some(as_number(v, "weight_decay")?),
                };
                Ok(GroupSettings {
                    lr_scale: number(g, "lr_scale")?,
                    weight_decay,
                    frozen: boolean(g, "frozen")?,
                })
            })
            .collect::<core::result::Result<_, String>>()?;
        let steps = field(o, "steps")?
            .as_array()
            .ok_or("`steps` is not an array")?
            .iter()
            .map(|s| match s.as_array().map(Vec::as_slice) {
                Some([Value::String(n), s]) => s
                    .as_u64()
                    .map(|s| (n.clone(), s))
                    .ok_or_else(|| format!("the step count of `{n}` is not an integer >= 0")),
                _ => Err("a step count is not a [name, count] pair".to_string()),
            })
            .collect::<core::result::Result<_, String>>()?;
        Ok(OptimizerState {
            settings,
            groups,
            steps,
            tensors,
        })
    }
}

/// The state of one parameter: its step count and its tensors, one per state name.
pub(crate) type Unpacked<T> = (u64, Vec<Tensor<T>>);

/// An [`Error::InvalidArgument`] about an optimiser state.
pub(crate) fn state_error(reason: String) -> Error {
    Error::InvalidArgument {
        name: "optimiser state",
        reason,
    }
}

fn field<'a>(o: &'a Map<String, Value>, key: &str) -> core::result::Result<&'a Value, String> {
    o.get(key).ok_or_else(|| format!("`{key}` is missing"))
}

fn as_number(v: &Value, key: &str) -> core::result::Result<f64, String> {
    v.as_f64().ok_or_else(|| format!("`{key}` is not a number"))
}

fn number(o: &Map<String, Value>, key: &str) -> core::result::Result<f64, String> {
    as_number(field(o, key)?, key)
}

fn boolean(o: &Map<String, Value>, key: &str) -> core::result::Result<bool, String> {
    field(o, key)?
        .as_bool()
        .ok_or_else(|| format!("`{key}` is not a boolean"))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{vec1, Toy};
    use super::*;
    use crate::{AdamConfig, Optimizer, SgdConfig};

    fn model() -> Toy<f64> {
        Toy {
            params: vec![("a", vec1(&[1.0, 2.0])), ("b", vec1(&[3.0]))],
        }
    }

    fn trained(optimizer: &mut dyn Optimizer<f64>) -> OptimizerState<f64> {
        let mut m = model();
        let mut g = NamedTensors::new();
        g.push("a", vec1(&[0.5, -1.0]));
        g.push("b", vec1(&[2.0]));
        optimizer.step(&mut m, &g).unwrap();
        optimizer.state_dict()
    }

    /// Loading `state` fails with a message containing `why`, and changes nothing.
    fn rejected(optimizer: &mut dyn Optimizer<f64>, state: OptimizerState<f64>, why: &str) {
        let before = optimizer.state_dict();
        let e = optimizer.load_state_dict(state, &model()).unwrap_err();
        assert!(e.to_string().contains(why), "expected `{why}`, got `{e}`");
        assert_eq!(optimizer.state_dict(), before);
    }

    #[test]
    fn inconsistent_states_are_rejected_by_name() {
        let mut adam = AdamConfig::new(0.1).init().unwrap();
        let good = trained(&mut adam);
        let mut fresh = AdamConfig::new(0.1).init().unwrap();
        let edit = |f: &dyn Fn(&mut OptimizerState<f64>)| {
            let mut s = good.clone();
            f(&mut s);
            s
        };
        let cases: [(OptimizerState<f64>, &str); 7] = [
            (
                edit(&|s| s.tensors.retain(|n, _| n != "exp_avg_sq.b")),
                "missing parameter `exp_avg_sq.b`: the optimiser state has no tensor of that name",
            ),
            (
                edit(&|s| s.steps.retain(|(n, _)| n != "b")),
                "tensor `exp_avg.b` belongs to a parameter without a step count",
            ),
            (
                edit(&|s| {
                    s.steps.retain(|(n, _)| n != "b");
                    s.tensors.retain(|n, _| !n.ends_with(".b"));
                }),
                "missing parameter `b`: the optimiser state has no step count for it",
            ),
            (
                edit(&|s| s.steps.push(("a".into(), 3))),
                "two step counts for `a`",
            ),
            (
                edit(&|s| s.tensors.push("exp_avg.a", vec1(&[0.0, 0.0]))),
                "two tensors are named `exp_avg.a`",
            ),
            (
                edit(&|s| s.tensors.push("momentum_buffer.a", vec1(&[0.0, 0.0]))),
                "unexpected parameter `momentum_buffer.a`",
            ),
            (
                edit(&|s| {
                    if let Settings::Adam { betas, .. } = &mut s.settings {
                        betas.1 = 1.0;
                    }
                }),
                "invalid beta2: 1 is not in [0, 1)",
            ),
        ];
        for (state, why) in cases {
            rejected(&mut fresh, state, why);
        }
        fresh.load_state_dict(good.clone(), &model()).unwrap();
        assert_eq!(fresh.state_dict(), good);
    }

    #[test]
    fn sgd_state_follows_its_momentum() {
        let mut plain = SgdConfig::new(0.1).init().unwrap();
        let state = trained(&mut plain);
        assert!(state.tensors().is_empty());
        assert_eq!(state.step_count("b"), Some(1));
        let mut heavy = SgdConfig::new(0.1).with_momentum(0.9).init().unwrap();
        let with_buffers = trained(&mut heavy);
        assert_eq!(
            with_buffers.tensors().get("momentum_buffer.a"),
            Some(&vec1(&[0.5, -1.0]))
        );
        // loading takes the state's momentum too: buffers without momentum are unexpected
        let mut no_buffers = with_buffers.clone();
        if let Settings::Sgd { momentum, .. } = &mut no_buffers.settings {
            *momentum = 0.0;
        }
        rejected(
            &mut plain,
            no_buffers,
            "unexpected parameter `momentum_buffer.a`",
        );
        plain
            .load_state_dict(with_buffers.clone(), &model())
            .unwrap();
        assert_eq!(plain.state_dict(), with_buffers);
        assert_eq!(plain.lr(), 0.1);
    }

    #[test]
    fn json_round_trips_every_field() {
        let mut adam = AdamConfig::adamw(0.1)
            .with_group(crate::ParamGroup::new(|n: &str| n == "b").with_lr_scale(0.5))
            .with_group(
                crate::ParamGroup::new(|_: &str| false)
                    .frozen()
                    .with_weight_decay(0.0),
            )
            .init()
            .unwrap();
        let state = trained(&mut adam);
        let json = state.to_json();
        let back = OptimizerState::from_json(&json, state.tensors.clone()).unwrap();
        assert_eq!(back, state);
        let mut sgd = SgdConfig::new(0.3)
            .with_momentum(0.9)
            .with_nesterov(true)
            .init()
            .unwrap();
        let state = trained(&mut sgd);
        let back = OptimizerState::from_json(&state.to_json(), state.tensors.clone()).unwrap();
        assert_eq!(back, state);
    }
}
