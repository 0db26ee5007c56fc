//! Adam and AdamW, as PyTorch's `torch.optim.Adam` and `torch.optim.AdamW`.

use core::fmt;

use super::binding::{prepare, Binding};
use super::group::{effective, validate_groups, with_group_settings, ParamGroup};
use super::state::{state_error, OptimizerState, Settings};
use super::{check_non_negative, Optimizer};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::params::{NamedTensors, Parameters};
use crate::tensor::Tensor;

/// Configuration of an [`Adam`] optimiser: `AdamConfig::new(lr)` (Adam) or
/// [`AdamConfig::adamw(lr)`](AdamConfig::adamw) (AdamW), then `with_*` options, then
/// [`init`](AdamConfig::init), which checks the values.
#[derive(Debug, Clone, PartialEq)]
pub struct AdamConfig {
    lr: f64,
    betas: (f64, f64),
    eps: f64,
    weight_decay: f64,
    decoupled_weight_decay: bool,
    groups: Vec<ParamGroup>,
}

impl AdamConfig {
    /// Adam with learning rate `lr` and PyTorch's defaults for everything else
    /// (`torch.optim.Adam`; PyTorch's default learning rate is `1e-3`).
    pub fn new(lr: f64) -> Self {
        AdamConfig {
            lr,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled_weight_decay: false,
            groups: Vec::new(),
        }
    }

    /// AdamW with learning rate `lr` and PyTorch's defaults for everything else
    /// (`torch.optim.AdamW`): decoupled weight decay `0.01`.
    pub fn adamw(lr: f64) -> Self {
        AdamConfig {
            weight_decay: 0.01,
            decoupled_weight_decay: true,
            ..AdamConfig::new(lr)
        }
    }

    /// The decay rates `(β₁, β₂)` of the first and second moment estimates, each in `[0, 1)`.
    /// Defaults to `(0.9, 0.999)`.
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_betas(self, beta1: f64, beta2: f64) -> Self {
        AdamConfig {
            betas: (beta1, beta2),
            ..self
        }
    }

    /// The term ε added to the denominator. Defaults to `1e-8`.
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_eps(self, eps: f64) -> Self {
        AdamConfig { eps, ..self }
    }

    /// The weight decay λ: an L2 penalty added to the gradient (`g + λ·p`), or with
    /// [`with_decoupled_weight_decay`](AdamConfig::with_decoupled_weight_decay) a shrinking
    /// `p ← p − lr·λ·p` before the step. Defaults to `0.0` for [`new`](AdamConfig::new) and
    /// `0.01` for [`adamw`](AdamConfig::adamw).
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_weight_decay(self, weight_decay: f64) -> Self {
        AdamConfig {
            weight_decay,
            ..self
        }
    }

    /// Whether the weight decay is decoupled from the gradient (AdamW, Loshchilov & Hutter,
    /// 2019) rather than an L2 penalty (PyTorch's `decoupled_weight_decay`). Defaults to
    /// `false` for [`new`](AdamConfig::new) and `true` for [`adamw`](AdamConfig::adamw).
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_decoupled_weight_decay(self, decoupled: bool) -> Self {
        AdamConfig {
            decoupled_weight_decay: decoupled,
            ..self
        }
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

    /// The decay rates `(β₁, β₂)`.
    pub fn betas(&self) -> (f64, f64) {
        self.betas
    }

    /// The term ε added to the denominator.
    pub fn eps(&self) -> f64 {
        self.eps
    }

    /// The weight decay λ.
    pub fn weight_decay(&self) -> f64 {
        self.weight_decay
    }

    /// Whether the weight decay is decoupled (AdamW).
    pub fn decoupled_weight_decay(&self) -> bool {
        self.decoupled_weight_decay
    }

    /// The optimiser, with no state yet.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if the learning rate, ε or a weight decay or a group's
    /// `lr_scale` is negative or not finite, or if a β is outside `[0, 1)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::{Adam, AdamConfig, Error};
    ///
    /// let adamw: Adam<f32> = AdamConfig::adamw(1e-3).with_betas(0.9, 0.98).init()?;
    /// assert_eq!(adamw.config().betas(), (0.9, 0.98));
    /// let e = AdamConfig::new(1e-3).with_betas(0.9, 1.0).init::<f32>().unwrap_err();
    /// assert_eq!(e.to_string(), "invalid beta2: 1 is not in [0, 1)");
    /// # Ok::<(), Error>(())
    /// ```
    pub fn init<T: Float>(&self) -> Result<Adam<T>> {
        self.validate()?;
        Ok(Adam {
            config: self.clone(),
            binding: None,
            states: Vec::new(),
        })
    }

    /// Checks the values, as [`init`](AdamConfig::init) documents.
    fn validate(&self) -> Result<()> {
        check_non_negative("learning rate", self.lr)?;
        check_non_negative("eps", self.eps)?;
        check_non_negative("weight decay", self.weight_decay)?;
        for (name, beta) in [("beta1", self.betas.0), ("beta2", self.betas.1)] {
            if !(0.0..1.0).contains(&beta) {
                return Err(Error::InvalidArgument {
                    name,
                    reason: format!("{beta} is not in [0, 1)"),
                });
            }
        }
        validate_groups(&self.groups)
    }
}

/// The state Adam keeps for one parameter.
#[derive(Clone)]
struct Moments<T> {
    /// The number of steps taken, `t`.
    step: u64,
    /// The first moment estimate `m`.
    m: Tensor<T>,
    /// The second moment estimate `v`.
    v: Tensor<T>,
}

/// Adam (Kingma & Ba, 2015) with bias correction, and AdamW (decoupled weight decay), with
/// [`torch.optim.Adam`](https://pytorch.org/docs/stable/generated/torch.optim.Adam.html)'s and
/// [`torch.optim.AdamW`](https://pytorch.org/docs/stable/generated/torch.optim.AdamW.html)'s
/// update rules. For each parameter `p` with gradient `g`, at its step `t = 1, 2, …`:
///
/// ```text
/// p ← p − lr·λ·p                       (AdamW: decoupled weight decay λ)
/// g ← g + λ·p                          (Adam: L2 weight decay λ)
/// m ← β₁·m + (1 − β₁)·g                (m₀ = 0)
/// v ← β₂·v + (1 − β₂)·g²               (v₀ = 0)
/// p ← p − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)
/// ```
///
/// `m`, `v` and `t` are kept per parameter, under its full name in the model the optimiser
/// is bound to (see [`Optimizer`]). The learning rate and weight decay of a parameter are
/// those of its [`ParamGroup`], if any; a frozen parameter is left alone. The scalar factors are computed in `f64`, as
/// PyTorch computes them in Python floats; the elementwise work is in `T`. AMSGrad is not
/// implemented.
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
/// // minimise (x − 3)² from x = 0
/// let mut model = Point { x: Tensor::zeros(&[1]) };
/// let mut adam = AdamConfig::new(0.1).init()?;
/// for _ in 0..300 {
///     let mut grads = NamedTensors::new();
///     grads.push("x", model.x.map(|x| 2.0 * (x - 3.0)));
///     adam.step(&mut model, &grads)?;
/// }
/// assert!((model.x.as_slice()[0] - 3.0).abs() < 1e-2);
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Clone)]
pub struct Adam<T> {
    config: AdamConfig,
    /// The model's parameter set, from the first step (or a load).
    binding: Option<Binding>,
    /// The moments of each parameter of the binding, in order; `None` before its first step
    /// and for frozen parameters.
    states: Vec<Option<Moments<T>>>,
}

impl<T> Adam<T> {
    /// The configuration.
    pub fn config(&self) -> &AdamConfig {
        &self.config
    }
}

/// PyTorch's `lerp(start, end, weight)`: `start + weight·(end − start)`, computed from the
/// nearer end for accuracy.
#[inline]
fn lerp<T: Float>(start: T, end: T, weight: T) -> T {
    if weight.abs() < T::from_f64(0.5) {
        start + weight * (end - start)
    } else {
        end - (end - start) * (T::one() - weight)
    }
}

impl<T: Float> Optimizer<T> for Adam<T> {
    fn step(&mut self, model: &mut dyn Parameters<T>, grads: &NamedTensors<T>) -> Result<()> {
        let c = &self.config;
        let (binding, grads) = prepare(&mut self.binding, &c.groups, model, grads)?;
        let states = &mut self.states;
        states.resize_with(binding.len(), || None);
        let (beta1, beta2) = c.betas;
        let one_minus_beta1 = T::from_f64(1.0 - beta1);
        let one_minus_beta2 = T::from_f64(1.0 - beta2);
        let beta2_t = T::from_f64(beta2);
        let eps = T::from_f64(c.eps);
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
            let l2 = (!c.decoupled_weight_decay && e.weight_decay != 0.0)
                .then(|| T::from_f64(e.weight_decay));
            let shrink = (c.decoupled_weight_decay && e.weight_decay != 0.0)
                .then(|| T::from_f64(1.0 - e.lr * e.weight_decay));
            let s = state.get_or_insert_with(|| Moments {
                step: 0,
                m: p.zeros_like(),
                v: p.zeros_like(),
            });
            s.step += 1;
            let t = s.step as f64;
            let bias_correction1 = 1.0 - beta1.powf(t);
            let bias_correction2 = 1.0 - beta2.powf(t);
            let step_size = T::from_f64(e.lr / bias_correction1);
            let bias_correction2_sqrt = T::from_f64(bias_correction2.sqrt());
            let values = p.as_mut_slice().iter_mut().zip(g.as_slice());
            let moments = s.m.as_mut_slice().iter_mut().zip(s.v.as_mut_slice());
            for ((p, &g), (m, v)) in values.zip(moments) {
                if let Some(shrink) = shrink {
                    *p = *p * shrink;
                }
                let g = match l2 {
                    Some(l2) => g + l2 * *p,
                    None => g,
                };
                *m = lerp(*m, g, one_minus_beta1);
                *v = *v * beta2_t + one_minus_beta2 * g * g;
                let denom = v.sqrt() / bias_correction2_sqrt + eps;
                // addcdiv: p + value·m / denom, evaluated as (value·m) / denom
                *p = *p - step_size * *m / denom;
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
                    tensors.push(format!("exp_avg.{name}"), s.m.clone());
                    tensors.push(format!("exp_avg_sq.{name}"), s.v.clone());
                }
            }
        }
        OptimizerState {
            settings: Settings::Adam {
                lr: c.lr,
                betas: c.betas,
                eps: c.eps,
                weight_decay: c.weight_decay,
                decoupled_weight_decay: c.decoupled_weight_decay,
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
        let Settings::Adam {
            lr,
            betas,
            eps,
            weight_decay,
            decoupled_weight_decay,
        } = state.settings
        else {
            return Err(state_error(format!(
                "it is the state of {}, not of adam",
                state.kind()
            )));
        };
        let config = AdamConfig {
            lr,
            betas,
            eps,
            weight_decay,
            decoupled_weight_decay,
            groups: with_group_settings(&self.config.groups, &state.groups)?,
        };
        config.validate()?;
        let binding = Binding::of(model, &config.groups)?;
        let unpacked = state.unpack(&binding, &["exp_avg", "exp_avg_sq"])?;
        // unpack gives each parameter with state one tensor per kind, in order
        self.states = unpacked
            .into_iter()
            .map(|s| {
                let (step, tensors) = s?;
                let [m, v] = <[Tensor<T>; 2]>::try_from(tensors).ok()?;
                Some(Moments { step, m, v })
            })
            .collect();
        self.config = config;
        self.binding = Some(binding);
        Ok(())
    }
}

impl<T> fmt::Debug for Adam<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Adam")
            .field("config", &self.config)
            .field("states", &self.states.iter().flatten().count())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{grad_w, quadratic_grad, vec1, Toy, QUADRATIC_MIN};
    use super::*;
    use crate::test_util::assert_close;

    /// Runs `config` from `w` with the gradients `gs` in turn; returns `w` after each step.
    fn run<T: Float>(config: AdamConfig, w: &[f64], gs: &[&[f64]]) -> Vec<Vec<f64>> {
        let mut model = Toy::<T>::new(w);
        let mut adam = config.init::<T>().unwrap();
        gs.iter()
            .map(|g| {
                adam.step(&mut model, &grad_w(g)).unwrap();
                model.w()
            })
            .collect()
    }

    const GS: [&[f64]; 2] = [&[0.5, -1.0], &[0.1, 0.2]];

    /// lr = 0.1, β = (0.9, 0.999), ε = 1e-8, `w = [1, −2]`, `g₁ = [0.5, −1]`, `g₂ = [0.1, 0.2]`.
    ///
    /// Step 1: `m = 0.1·g₁ = [0.05, −0.1]`, `v = 0.001·g₁² = [0.00025, 0.001]`; the bias
    /// corrections `1 − 0.9 = 0.1` and `1 − 0.999 = 0.001` give `m̂ = g₁`, `√v̂ = |g₁|`, so
    /// `w = w − 0.1·g₁/(|g₁| + ε) = [1 − 0.099999998, −2 + 0.099999999] = [0.900000002, −1.900000001]`.
    ///
    /// Step 2: `m = 0.9·m + 0.1·g₂ = [0.055, −0.07]`,
    /// `v = 0.999·v + 0.001·g₂² = [0.00025975, 0.001039]`; `1 − 0.9² = 0.19`,
    /// `1 − 0.999² = 0.001999`; `m̂ = [0.2894737, −0.3684211]`,
    /// `√v̂ = [0.3604719, 0.7209437]`, `m̂/(√v̂ + ε) = [0.8030410, −0.5110261]`, so
    /// `w = [0.900000002 − 0.0803041, −1.900000001 + 0.0511026] = [0.8196959, −1.8488974]`.
    #[test]
    fn two_hand_computed_steps() {
        let w = run::<f64>(AdamConfig::new(0.1), &[1.0, -2.0], &GS);
        assert_close(&w[0], &[0.900000002, -1.900000001], 1e-15);
        assert_close(
            &w[1],
            &[0.819_695_906_384_651_7, -1.848_897_393_990_494_5],
            1e-12,
        );
        let w32 = run::<f32>(AdamConfig::new(0.1), &[1.0, -2.0], &GS);
        assert_close(&w32[1], &w[1], 1e-6);
    }

    /// λ = 0.1 as an L2 penalty: step 1 uses `g = g₁ + 0.1·[1, −2] = [0.6, −1.2]`, and with
    /// `m̂ = g`, `√v̂ = |g|` the step is again `lr·sign(g)` up to ε:
    /// `w = [1 − 0.1·0.6/(0.6 + ε), −2 + 0.1·1.2/(1.2 + ε)] = [0.9000000016667, −1.9000000008333]`.
    /// Step 2: `g = [0.1, 0.2] + 0.1·w = [0.19, 0.01]`, `m = [0.073, −0.107]`,
    /// `v = [0.00039574, 0.00143866]`, so `w = [0.8136483, −1.8336169]`.
    #[test]
    fn l2_weight_decay_enters_the_gradient() {
        let w = run::<f64>(
            AdamConfig::new(0.1).with_weight_decay(0.1),
            &[1.0, -2.0],
            &GS,
        );
        assert_close(
            &w[0],
            &[0.900_000_001_666_666_6, -1.900_000_000_833_333_3],
            1e-15,
        );
        assert_close(
            &w[1],
            &[0.813_648_345_429_757_5, -1.833_616_907_742_074_8],
            1e-12,
        );
    }

    /// AdamW, λ = 0.1, lr = 0.1: each step first shrinks `w` by `1 − lr·λ = 0.99`, then takes
    /// Adam's step, whose moments do not see the decay. Step 1:
    /// `w = 0.99·[1, −2] − [0.099999998, −0.099999999] = [0.890000002, −1.880000001]`;
    /// step 2: `w = 0.99·w − [0.0803041, −0.0511026] = [0.8007959, −1.8100974]`.
    #[test]
    fn decoupled_weight_decay_shrinks_before_the_step() {
        let w = run::<f64>(
            AdamConfig::adamw(0.1).with_weight_decay(0.1),
            &[1.0, -2.0],
            &GS,
        );
        assert_close(&w[0], &[0.890000002, -1.880000001], 1e-15);
        assert_close(
            &w[1],
            &[0.800_795_906_364_651_7, -1.810_097_393_980_494_5],
            1e-12,
        );
    }

    #[test]
    fn adamw_has_pytorch_defaults() {
        let c = AdamConfig::adamw(1e-3);
        assert_eq!(
            c,
            AdamConfig::new(1e-3)
                .with_weight_decay(0.01)
                .with_decoupled_weight_decay(true)
        );
        assert_eq!(
            format!("{c:?}"),
            "AdamConfig { lr: 0.001, betas: (0.9, 0.999), eps: 1e-8, weight_decay: 0.01, \
             decoupled_weight_decay: true, groups: [] }"
        );
    }

    /// The moments are kept per parameter and read back under PyTorch's names. `a` takes
    /// `g₁ = 1`, `g₂ = 3`: `m = 0.9·0.1 + 0.1·3 = 0.39`, `v = 0.999·0.001 + 0.001·9 = 0.009999`,
    /// `m̂/√v̂ = (0.39/0.19)/√(0.009999/0.001999) = 0.9177`, so `a = −0.1 − 0.09177`; `b` takes
    /// `[2, −3]` then `0`: `m = 0.09·[2, −3]`, `v = 0.000999·[4, 9]`.
    #[test]
    fn state_is_kept_per_parameter_under_pytorch_names() {
        let mut adam = AdamConfig::new(0.1).init().unwrap();
        let mut model = Toy::<f64> {
            params: vec![("a", vec1(&[0.0])), ("b", vec1(&[0.0, 0.0]))],
        };
        for (ga, gb) in [(1.0, [2.0, -3.0]), (3.0, [0.0, 0.0])] {
            let mut g = NamedTensors::new();
            g.push("a", vec1(&[ga]));
            g.push("b", vec1(&gb));
            adam.step(&mut model, &g).unwrap();
        }
        let a = model.params[0].1.as_slice()[0];
        let second = (0.39 / 0.19) / (0.009999f64 / 0.001999).sqrt();
        assert_close(&[a], &[-0.1 - 0.1 * second], 1e-8);
        assert!((second - 0.9177).abs() < 1e-4);
        let state = adam.state_dict();
        let values =
            |name: &str| -> Vec<f64> { state.tensors().get(name).unwrap().as_slice().to_vec() };
        assert_close(&values("exp_avg.a"), &[0.39], 1e-15);
        assert_close(&values("exp_avg_sq.a"), &[0.009999], 1e-15);
        assert_close(&values("exp_avg.b"), &[0.18, -0.27], 1e-15);
        assert_close(&values("exp_avg_sq.b"), &[0.003996, 0.008991], 1e-15);
        assert_eq!(
            state.step_counts().collect::<Vec<_>>(),
            [("a", 2), ("b", 2)]
        );
        assert_eq!(format!("{adam:?}").matches("states: 2").count(), 1);
    }

    #[test]
    fn adam_and_adamw_minimise_a_quadratic() {
        for (config, tol) in [
            (AdamConfig::new(0.05), 1e-3),
            (AdamConfig::new(0.05).with_betas(0.8, 0.99), 1e-3),
            (AdamConfig::adamw(0.05).with_weight_decay(1e-4), 1e-2),
        ] {
            let mut model = Toy::<f64>::new(&[0.0, 0.0]);
            let mut adam = config.init().unwrap();
            for i in 0..2000 {
                if i == 1000 {
                    adam.set_lr(0.005).unwrap();
                }
                let g = quadratic_grad(&model);
                adam.step(&mut model, &g).unwrap();
            }
            assert_close(&model.w(), &QUADRATIC_MIN, tol);
        }
    }

    #[test]
    fn invalid_configs_are_rejected() {
        let bad = [
            (AdamConfig::new(-1e-3), "learning rate"),
            (AdamConfig::new(f64::INFINITY), "learning rate"),
            (AdamConfig::new(1e-3).with_betas(-0.1, 0.999), "beta1"),
            (AdamConfig::new(1e-3).with_betas(1.0, 0.999), "beta1"),
            (AdamConfig::new(1e-3).with_betas(0.9, 1.5), "beta2"),
            (AdamConfig::new(1e-3).with_betas(0.9, f64::NAN), "beta2"),
            (AdamConfig::new(1e-3).with_eps(-1e-8), "eps"),
            (
                AdamConfig::adamw(1e-3).with_weight_decay(-0.01),
                "weight decay",
            ),
        ];
        for (config, what) in bad {
            match config.init::<f32>() {
                Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, what),
                other => panic!("{config:?}: expected an invalid {what}, got {other:?}"),
            }
        }
    }
}
