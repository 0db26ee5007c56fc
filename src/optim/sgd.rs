//! Stochastic gradient descent with momentum, as PyTorch's `torch.optim.SGD`.

use core::fmt;

use super::binding::{prepare, Binding};
use super::group::{effective, validate_groups, with_group_settings, ParamGroup};
use super::state::{state_error, OptimizerState, Settings};
use super::{check_non_negative, Optimizer};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::params::{NamedTensors, Parameters};
use crate::tensor::Tensor;

/// Configuration of an [`Sgd`] optimiser: `SgdConfig::new(lr)`, then `with_*` options, then
/// [`init`](SgdConfig::init), which checks the values.
#[derive(Debug, Clone, PartialEq)]
pub struct SgdConfig {
    lr: f64,
    momentum: f64,
    dampening: f64,
    weight_decay: f64,
    nesterov: bool,
    groups: Vec<ParamGroup>,
}

impl SgdConfig {
    /// Plain gradient descent with learning rate `lr`: `p ← p − lr·g`.
    pub fn new(lr: f64) -> Self {
        SgdConfig {
            lr,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            groups: Vec::new(),
        }
    }

    /// The momentum factor μ (0 for none). Defaults to `0.0`.
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_momentum(self, momentum: f64) -> Self {
        SgdConfig { momentum, ..self }
    }

    /// The dampening τ of the momentum: the buffer is `b ← μ·b + (1 − τ)·g` after the first
    /// step. Defaults to `0.0`.
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_dampening(self, dampening: f64) -> Self {
        SgdConfig { dampening, ..self }
    }

    /// The L2 penalty λ, added to the gradient as `g + λ·p`. Defaults to `0.0`.
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_weight_decay(self, weight_decay: f64) -> Self {
        SgdConfig {
            weight_decay,
            ..self
        }
    }

    /// Whether to use Nesterov momentum (`g + μ·b` instead of `b`). Defaults to `false`.
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_nesterov(self, nesterov: bool) -> Self {
        SgdConfig { nesterov, ..self }
    }

    /// Appends a parameter group: other settings for the parameters its predicate accepts
    /// (see [`ParamGroup`]). A parameter belongs to the first group that accepts it; one that
    /// no group accepts takes the optimiser's settings. Defaults to no groups.
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_group(mut self, group: ParamGroup) -> Self {
        self.groups.push(group);
        self
    }

    /// The learning rate.
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// The parameter groups, in the order they are tried.
    pub fn groups(&self) -> &[ParamGroup] {
        &self.groups
    }

    /// The momentum factor μ.
    pub fn momentum(&self) -> f64 {
        self.momentum
    }

    /// The dampening τ.
    pub fn dampening(&self) -> f64 {
        self.dampening
    }

    /// The weight decay λ.
    pub fn weight_decay(&self) -> f64 {
        self.weight_decay
    }

    /// Whether Nesterov momentum is used.
    pub fn nesterov(&self) -> bool {
        self.nesterov
    }

    /// The optimiser, with no state yet.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if the learning rate, the momentum, the dampening, a weight
    /// decay or a group's `lr_scale` is negative or not finite, or if Nesterov momentum is asked for without
    /// a positive momentum and zero dampening (as PyTorch).
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::{Error, Sgd, SgdConfig};
    ///
    /// let sgd: Sgd<f32> = SgdConfig::new(0.1).with_momentum(0.9).with_nesterov(true).init()?;
    /// assert!(sgd.config().nesterov());
    /// let e = SgdConfig::new(-0.1).init::<f32>().unwrap_err();
    /// assert_eq!(e.to_string(), "invalid learning rate: -0.1 is not a finite value >= 0");
    /// # Ok::<(), Error>(())
    /// ```
    pub fn init<T: Float>(&self) -> Result<Sgd<T>> {
        self.validate()?;
        Ok(Sgd {
            config: self.clone(),
            binding: None,
            states: Vec::new(),
        })
    }

    /// Checks the values, as [`init`](SgdConfig::init) documents.
    fn validate(&self) -> Result<()> {
        check_non_negative("learning rate", self.lr)?;
        check_non_negative("momentum", self.momentum)?;
        check_non_negative("dampening", self.dampening)?;
        check_non_negative("weight decay", self.weight_decay)?;
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(Error::InvalidArgument {
                name: "nesterov",
                reason: format!(
                    "nesterov momentum needs a momentum > 0 and zero dampening, got momentum {} \
                     and dampening {}",
                    self.momentum, self.dampening
                ),
            });
        }
        validate_groups(&self.groups)
    }
}

/// The state SGD keeps for one parameter.
#[derive(Clone)]
struct Velocity<T> {
    /// The number of steps taken.
    step: u64,
    /// The momentum buffer `b`, if there is momentum.
    buffer: Option<Tensor<T>>,
}

/// Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and
/// weight decay, with [`torch.optim.SGD`](https://pytorch.org/docs/stable/generated/torch.optim.SGD.html)'s
/// update rule. For each parameter `p` with gradient `g`:
///
/// ```text
/// g ← g + λ·p                          (weight decay λ ≠ 0)
/// b ← g                                (momentum μ ≠ 0, first step)
/// b ← μ·b + (1 − τ)·g                  (momentum μ ≠ 0, later steps)
/// g ← g + μ·b  (Nesterov)  or  g ← b
/// p ← p − lr·g
/// ```
///
/// The momentum buffer `b` is kept per parameter, under its full name in the model the
/// optimiser is bound to (see [`Optimizer`]), and, as in PyTorch, starts as the first gradient
/// (not as zero). The learning rate and weight decay of a parameter are those of its
/// [`ParamGroup`], if any; a frozen parameter is left alone.
///
/// # Examples
///
/// ```
/// use recurrent::{NamedTensors, Optimizer, Parameters, SgdConfig, Tensor};
///
/// struct Line {
///     w: Tensor<f64>,
/// }
///
/// impl Parameters<f64> for Line {
///     fn visit_params(&self, f: &mut dyn FnMut(&str, &Tensor<f64>)) {
///         f("w", &self.w)
///     }
///     fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Tensor<f64>)) {
///         f("w", &mut self.w)
///     }
/// }
///
/// let mut model = Line { w: Tensor::from_vec(vec![1.0, -2.0], &[2])? };
/// let mut grads = NamedTensors::new();
/// grads.push("w", Tensor::from_vec(vec![0.5, 1.0], &[2])?);
/// let mut sgd = SgdConfig::new(0.1).init()?;
/// sgd.step(&mut model, &grads)?;
/// assert_eq!(model.w.as_slice(), &[0.95, -2.1]);
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Clone)]
pub struct Sgd<T> {
    config: SgdConfig,
    /// The model's parameter set, from the first step (or a load).
    binding: Option<Binding>,
    /// The state of each parameter of the binding, in order; `None` before its first step and
    /// for frozen parameters.
    states: Vec<Option<Velocity<T>>>,
}

impl<T> Sgd<T> {
    /// The configuration.
    pub fn config(&self) -> &SgdConfig {
        &self.config
    }
}

impl<T: Float> Optimizer<T> for Sgd<T> {
    fn step(&mut self, model: &mut dyn Parameters<T>, grads: &NamedTensors<T>) -> Result<()> {
        let c = &self.config;
        let (binding, grads) = prepare(&mut self.binding, &c.groups, model, grads)?;
        let states = &mut self.states;
        states.resize_with(binding.len(), || None);
        let momentum = T::from_f64(c.momentum);
        let keep = T::from_f64(1.0 - c.dampening);
        let mut i = 0;
        model.visit_params_mut(&mut |name, p| {
            let index = i;
            i += 1;
            debug_assert_eq!(
                binding.names.get(index).map(String::as_str),
                Some(name),
                "visit_params_mut visits in another order than visit_params"
            );
            let (Some(Some(g)), Some(state)) = (grads.get(index), states.get_mut(index)) else {
                return; // frozen
            };
            let e = effective(&c.groups, binding.groups[index], c.lr, c.weight_decay);
            let lr = T::from_f64(e.lr);
            let weight_decay = T::from_f64(e.weight_decay);
            let first = state.is_none();
            let s = state.get_or_insert_with(|| Velocity {
                step: 0,
                buffer: (c.momentum != 0.0).then(|| p.zeros_like()),
            });
            s.step += 1;
            let mut buffer = s.buffer.as_mut().map(Tensor::as_mut_slice);
            for (i, (p, &g)) in p.as_mut_slice().iter_mut().zip(g.as_slice()).enumerate() {
                let mut d = g;
                if e.weight_decay != 0.0 {
                    d = d + weight_decay * *p;
                }
                if let Some(b) = &mut buffer {
                    let b = &mut b[i];
                    *b = if first { d } else { momentum * *b + keep * d };
                    d = if c.nesterov { d + momentum * *b } else { *b };
                }
                *p = *p - lr * d;
            }
        });
        Ok(())
    }

    fn lr(&self) -> f64 {
        self.config.lr
    }

    fn set_lr(&mut self, lr: f64) -> Result<()> {
        check_non_negative("learning rate", lr)?;
        self.config.lr = lr;
        Ok(())
    }

    fn state_dict(&self) -> OptimizerState<T> {
        let c = &self.config;
        let mut steps = Vec::new();
        let mut tensors = NamedTensors::new();
        if let Some(b) = &self.binding {
            for (name, s) in b.names.iter().zip(&self.states) {
                if let Some(s) = s {
                    steps.push((name.clone(), s.step));
                    if let Some(buffer) = &s.buffer {
                        tensors.push(format!("momentum_buffer.{name}"), buffer.clone());
                    }
                }
            }
        }
        OptimizerState {
            settings: Settings::Sgd {
                lr: c.lr,
                momentum: c.momentum,
                dampening: c.dampening,
                weight_decay: c.weight_decay,
                nesterov: c.nesterov,
            },
            groups: c.groups.iter().map(|g| g.settings).collect(),
            steps,
            tensors,
        }
    }

    fn load_state_dict(
        &mut self,
        state: OptimizerState<T>,
        model: &dyn Parameters<T>,
    ) -> Result<()> {
        let Settings::Sgd {
            lr,
            momentum,
            dampening,
            weight_decay,
            nesterov,
        } = state.settings
        else {
            return Err(state_error(format!(
                "it is the state of {}, not of sgd",
                state.kind()
            )));
        };
        let config = SgdConfig {
            lr,
            momentum,
            dampening,
            weight_decay,
            nesterov,
            groups: with_group_settings(&self.config.groups, &state.groups)?,
        };
        config.validate()?;
        let binding = Binding::of(model, &config.groups)?;
        let kinds: &[&str] = if momentum != 0.0 {
            &["momentum_buffer"]
        } else {
            &[]
        };
        let unpacked = state.unpack(&binding, kinds)?;
        // unpack gives each parameter with state one tensor per kind
        self.states = unpacked
            .into_iter()
            .map(|s| {
                s.map(|(step, tensors)| Velocity {
                    step,
                    buffer: tensors.into_iter().next(),
                })
            })
            .collect();
        self.config = config;
        self.binding = Some(binding);
        Ok(())
    }
}

impl<T> fmt::Debug for Sgd<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sgd")
            .field("config", &self.config)
            .field("states", &self.states.iter().flatten().count())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{grad_w, quadratic_grad, Toy, QUADRATIC_MIN};
    use super::*;
    use crate::test_util::assert_close;

    /// Runs `steps` of `config` from `w` with the gradients `gs` in turn; returns `w` after each.
    fn run<T: Float>(config: SgdConfig, w: &[f64], gs: &[&[f64]]) -> Vec<Vec<f64>> {
        let mut model = Toy::<T>::new(w);
        let mut sgd = config.init::<T>().unwrap();
        gs.iter()
            .map(|g| {
                sgd.step(&mut model, &grad_w(g)).unwrap();
                model.w()
            })
            .collect()
    }

    /// `p ← p − lr·g`: `[1, −2] − 0.1·[0.5, 1] = [0.95, −2.1]`.
    #[test]
    fn plain_step() {
        let w = run::<f64>(SgdConfig::new(0.1), &[1.0, -2.0], &[&[0.5, 1.0]]);
        assert_close(&w[0], &[0.95, -2.1], 1e-15);
    }

    /// μ = 0.9, lr = 0.1 from `w = 0`:
    /// step 1: `b = g₁ = [1, 2]` (the first gradient, not `(1 − τ)·g₁`), `w = −0.1·b = [−0.1, −0.2]`;
    /// step 2: `b = 0.9·[1, 2] + [0.5, −1] = [1.4, 0.8]`, `w = [−0.1 − 0.14, −0.2 − 0.08] = [−0.24, −0.28]`.
    #[test]
    fn momentum_buffer_starts_at_the_first_gradient() {
        let w = run::<f64>(
            SgdConfig::new(0.1).with_momentum(0.9),
            &[0.0, 0.0],
            &[&[1.0, 2.0], &[0.5, -1.0]],
        );
        assert_close(&w[0], &[-0.1, -0.2], 1e-15);
        assert_close(&w[1], &[-0.24, -0.28], 1e-15);
    }

    /// τ = 0.5: step 1 as without dampening; step 2: `b = 0.9·[1, 2] + 0.5·[0.5, −1] = [1.15, 1.3]`,
    /// `w = [−0.1 − 0.115, −0.2 − 0.13] = [−0.215, −0.33]`.
    #[test]
    fn dampening_scales_later_gradients_only() {
        let w = run::<f64>(
            SgdConfig::new(0.1).with_momentum(0.9).with_dampening(0.5),
            &[0.0, 0.0],
            &[&[1.0, 2.0], &[0.5, -1.0]],
        );
        assert_close(&w[0], &[-0.1, -0.2], 1e-15);
        assert_close(&w[1], &[-0.215, -0.33], 1e-15);
    }

    /// Nesterov: step 1: `b = [1, 2]`, `d = g + 0.9·b = [1.9, 3.8]`, `w = [−0.19, −0.38]`;
    /// step 2: `b = [1.4, 0.8]`, `d = [0.5, −1] + 0.9·[1.4, 0.8] = [1.76, −0.28]`,
    /// `w = [−0.19 − 0.176, −0.38 + 0.028] = [−0.366, −0.352]`.
    #[test]
    fn nesterov_looks_ahead() {
        let w = run::<f64>(
            SgdConfig::new(0.1).with_momentum(0.9).with_nesterov(true),
            &[0.0, 0.0],
            &[&[1.0, 2.0], &[0.5, -1.0]],
        );
        assert_close(&w[0], &[-0.19, -0.38], 1e-15);
        assert_close(&w[1], &[-0.366, -0.352], 1e-15);
    }

    /// λ = 0.1, lr = 0.5, zero gradient: `d = 0.1·[1, −2]`, `w = [1 − 0.05, −2 + 0.1] = [0.95, −1.9]`.
    #[test]
    fn weight_decay_is_added_to_the_gradient() {
        let w = run::<f64>(
            SgdConfig::new(0.5).with_weight_decay(0.1),
            &[1.0, -2.0],
            &[&[0.0, 0.0]],
        );
        assert_close(&w[0], &[0.95, -1.9], 1e-15);
    }

    #[test]
    fn f32_matches_f64_to_rounding() {
        let config = SgdConfig::new(0.1)
            .with_momentum(0.9)
            .with_weight_decay(0.01);
        let gs: [&[f64]; 3] = [&[1.0, 2.0], &[0.5, -1.0], &[-0.25, 0.125]];
        let a = run::<f32>(config.clone(), &[0.3, -0.7], &gs);
        let b = run::<f64>(config, &[0.3, -0.7], &gs);
        assert_close(&a[2], &b[2], 1e-6);
    }

    #[test]
    fn every_variant_minimises_a_quadratic() {
        let configs = [
            SgdConfig::new(0.05),
            SgdConfig::new(0.01).with_momentum(0.9),
            SgdConfig::new(0.01).with_momentum(0.9).with_dampening(0.1),
            SgdConfig::new(0.01).with_momentum(0.9).with_nesterov(true),
        ];
        for config in configs {
            let mut model = Toy::<f64>::new(&[0.0, 0.0]);
            let mut sgd = config.init().unwrap();
            for _ in 0..500 {
                let g = quadratic_grad(&model);
                sgd.step(&mut model, &g).unwrap();
            }
            assert_close(&model.w(), &QUADRATIC_MIN, 1e-4);
        }
    }

    #[test]
    fn invalid_configs_are_rejected() {
        let bad = [
            (SgdConfig::new(-1.0), "learning rate"),
            (SgdConfig::new(f64::NAN), "learning rate"),
            (SgdConfig::new(0.1).with_momentum(-0.5), "momentum"),
            (
                SgdConfig::new(0.1).with_dampening(f64::INFINITY),
                "dampening",
            ),
            (SgdConfig::new(0.1).with_weight_decay(-1e-4), "weight decay"),
            (SgdConfig::new(0.1).with_nesterov(true), "nesterov"),
            (
                SgdConfig::new(0.1)
                    .with_momentum(0.9)
                    .with_dampening(0.1)
                    .with_nesterov(true),
                "nesterov",
            ),
        ];
        for (config, what) in bad {
            match config.init::<f64>() {
                Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, what),
                other => panic!("{config:?}: expected an invalid {what}, got {other:?}"),
            }
        }
    }

    #[test]
    fn debug_shows_the_config_and_the_state_count() {
        let mut sgd = SgdConfig::new(0.1).with_momentum(0.5).init().unwrap();
        sgd.step(&mut Toy::<f32>::new(&[1.0]), &grad_w(&[1.0]))
            .unwrap();
        assert_eq!(
            format!("{sgd:?}"),
            "Sgd { config: SgdConfig { lr: 0.1, momentum: 0.5, dampening: 0.0, \
             weight_decay: 0.0, nesterov: false, groups: [] }, states: 1 }"
        );
    }
}
