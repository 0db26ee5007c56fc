//! Optimisers over the [`Parameters`] visitor: [`Sgd`], [`Adam`] (and AdamW through
//! [`AdamConfig::adamw`]), parameter groups, their state, learning-rate schedules, and gradient
//! clipping. Each follows the `torch.optim` rule of the same name.

mod adam;
mod binding;
mod clip;
mod group;
mod plateau;
mod scheduler;
mod scheduler_state;
mod sgd;
mod state;

pub use adam::{Adam, AdamConfig};
pub use clip::{clip_grad_norm, clip_grad_value};
pub use group::ParamGroup;
pub use plateau::{PlateauMode, ReduceLrOnPlateau, ReduceLrOnPlateauConfig, ThresholdMode};
pub use scheduler::{CosineAnnealingLr, ExponentialLr, LinearLr, LrScheduler, StepLr};
pub use scheduler_state::SchedulerState;
pub use sgd::{Sgd, SgdConfig};
pub use state::OptimizerState;

use crate::error::{Error, Result};
use crate::float::Float;
use crate::params::{NamedTensors, Parameters};

/// An optimiser: updates a model's parameters from their gradients, keeping whatever state it
/// needs (momentum buffers, moment estimates) per parameter.
///
/// An optimiser belongs to one model. At its first step it binds to the model's parameters —
/// the names, shapes and tensors its [`visit_params`](Parameters::visit_params) gives, in
/// order — and keeps its state under each parameter's full name; stepping other parameters
/// is then an error that changes nothing. A parameter's identity is its tensor's, as
/// `id(param)` is in PyTorch (every tensor made or cloned gets one of its own), so two modules with the same parameter names and shapes are told
/// apart too: one optimiser never shares moments between them. A model made of parts names
/// the parts apart (`"encoder.weight"`, `"decoder.weight"`: a [`Chain`](crate::Chain), a
/// [`Named`](crate::Named) layer or a [`model!`](crate::model) struct does) and is stepped as
/// one. Training updates the tensors in place and [`load`](crate::load) copies into them, so
/// the identity holds across a run; to carry the state over to a copy of the model, load it
/// there with [`load_state_dict`](Optimizer::load_state_dict).
///
/// Parameters of a frozen [`ParamGroup`] (PyTorch's `requires_grad = False`) are not updated
/// and need no gradient. Every other parameter needs one: a missing gradient is an error, as
/// it usually means that part of the model was left out of the backward pass.
///
/// # Examples
///
/// One training step of an LSTM on the loss `sum(output)`:
///
/// ```
/// use recurrent::rand::{rngs::StdRng, SeedableRng};
/// use recurrent::{AdamConfig, LstmCellConfig, Mode, Optimizer, Parameters, Recurrent, SequenceLayer, Tensor};
///
/// let mut rng = StdRng::seed_from_u64(0);
/// let mut lstm = Recurrent::new(LstmCellConfig::new(3, 4).init::<f32>(&mut rng)?);
/// let mut adam = AdamConfig::new(1e-3).init()?;
///
/// let x = Tensor::randn(&[5, 2, 3], &mut rng);
/// let before = lstm.state_dict();
/// let out = lstm.forward_with_state(&x, None, None, Mode::Eval)?;
/// let grads = lstm.backward_with_state(&out.trace, Some(&out.output.map(|_| 1.0)), None)?;
/// adam.step(&mut lstm, &grads.params)?;
/// assert_ne!(lstm.state_dict(), before);
/// # Ok::<(), recurrent::Error>(())
/// ```
pub trait Optimizer<T: Float> {
    /// Updates every parameter of `model` that is not frozen from its gradient in `grads`
    /// (matched by name). Gradients of frozen parameters are ignored and may be absent.
    ///
    /// The first step binds the optimiser to the model's parameter set. Everything is checked
    /// before any parameter changes, so an error leaves the model and the optimiser's state as
    /// they were.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`] if `model` has another parameter set than the one the
    ///   optimiser is bound to (naming the first parameter that differs), if its visitor gives
    ///   two parameters the same name, or if two gradients have the same name;
    /// - [`Error::MissingParameter`] naming the first parameter, not frozen, without a gradient;
    /// - [`Error::ParameterShape`] naming the first parameter whose gradient has another
    ///   shape, with both shapes;
    /// - [`Error::UnknownName`] for a gradient that is not a parameter of `model`.
    fn step(&mut self, model: &mut dyn Parameters<T>, grads: &NamedTensors<T>) -> Result<()>;

    /// The learning rate.
    fn lr(&self) -> f64;

    /// Changes the learning rate (for a schedule); the state is kept. Parameter groups keep
    /// their [`lr_scale`](ParamGroup::with_lr_scale) of it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if `lr` is negative or not finite.
    fn set_lr(&mut self, lr: f64) -> Result<()>;

    /// A copy of everything the optimiser knows: hyper-parameters, group settings, step counts
    /// and state tensors (see [`OptimizerState`]).
    fn state_dict(&self) -> OptimizerState<T>;

    /// Replaces the optimiser's hyper-parameters, group settings and state with `state` (as
    /// PyTorch's `load_state_dict`, the learning rate included), and binds the optimiser to
    /// `model`'s parameter set. The groups' predicates stay the optimiser's own, and decide
    /// with the loaded group settings which parameters are frozen.
    ///
    /// Everything is checked against `model` first; on error the optimiser is unchanged.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`] if `state` is another kind of optimiser's, has another
    ///   number of groups, holds an invalid hyper-parameter, state for a frozen parameter or
    ///   a name twice, or if `model`'s visitor gives two parameters the same name;
    /// - [`Error::UnexpectedParameter`] naming a step count or tensor of no parameter of
    ///   `model`;
    /// - [`Error::ParameterShape`] naming a tensor whose shape is not its parameter's;
    /// - [`Error::MissingParameter`] naming a state tensor or step count the state lacks.
    fn load_state_dict(
        &mut self,
        state: OptimizerState<T>,
        model: &dyn Parameters<T>,
    ) -> Result<()>;
}

/// Checks that `value` is finite and at least 0.
pub(crate) fn check_non_negative(name: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            name,
            reason: format!("{value} is not a finite value >= 0"),
        })
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A tiny model for the optimisers' tests: named rank-1 parameters.

    use crate::float::Float;
    use crate::params::{NamedTensors, Parameters};
    use crate::tensor::Tensor;

    /// Named parameters, visited in order.
    #[derive(Debug, Clone, PartialEq)]
    pub(crate) struct Toy<T> {
        pub(crate) params: Vec<(&'static str, Tensor<T>)>,
    }

    impl<T: Float> Toy<T> {
        /// One parameter `w` with the given values.
        pub(crate) fn new(w: &[f64]) -> Self {
            Toy {
                params: vec![("w", vec1(w))],
            }
        }

        /// The values of `w`.
        pub(crate) fn w(&self) -> Vec<f64> {
            self.params[0]
                .1
                .as_slice()
                .iter()
                .map(|v| v.as_f64())
                .collect()
        }
    }

    impl<T: Float> Parameters<T> for Toy<T> {
        fn visit_params(&self, f: &mut dyn FnMut(&str, &Tensor<T>)) {
            for (n, t) in &self.params {
                f(n, t);
            }
        }

        fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Tensor<T>)) {
            for (n, t) in &mut self.params {
                f(n, t);
            }
        }
    }

    /// A rank-1 tensor.
    pub(crate) fn vec1<T: Float>(values: &[f64]) -> Tensor<T> {
        Tensor::from_vec(
            values.iter().map(|&v| T::from_f64(v)).collect(),
            &[values.len()],
        )
        .expect("a rank-1 tensor")
    }

    /// Gradients `{"w": values}`.
    pub(crate) fn grad_w<T: Float>(values: &[f64]) -> NamedTensors<T> {
        let mut g = NamedTensors::new();
        g.push("w", vec1(values));
        g
    }

    /// The quadratic `L(w) = ½ Σ cᵢ (wᵢ − tᵢ)²` with `c = [1, 10]`, `t = [3, −2]`, and its
    /// gradient `cᵢ (wᵢ − tᵢ)`: an ill-conditioned bowl for the convergence tests.
    pub(crate) fn quadratic_grad<T: Float>(model: &Toy<T>) -> NamedTensors<T> {
        const C: [f64; 2] = [1.0, 10.0];
        const TARGET: [f64; 2] = [3.0, -2.0];
        let w = model.w();
        let g: Vec<f64> = (0..2).map(|i| C[i] * (w[i] - TARGET[i])).collect();
        grad_w(&g)
    }

    /// The minimum of [`quadratic_grad`]'s loss.
    pub(crate) const QUADRATIC_MIN: [f64; 2] = [3.0, -2.0];
}

#[cfg(test)]
mod tests {
    use super::testing::{grad_w, vec1, Toy};
    use super::*;
    use crate::SgdConfig;

    fn two_params() -> Toy<f64> {
        Toy {
            params: vec![("a", vec1(&[1.0, 2.0])), ("b", vec1(&[3.0]))],
        }
    }

    fn grads(entries: &[(&str, &[f64])]) -> NamedTensors<f64> {
        let mut g = NamedTensors::new();
        for (n, v) in entries {
            g.push(*n, vec1(v));
        }
        g
    }

    #[test]
    fn a_parameter_without_gradient_is_named() {
        let mut model = two_params();
        let mut sgd = SgdConfig::new(0.1).init().unwrap();
        let e = sgd
            .step(&mut model, &grads(&[("a", &[1.0, 1.0])]))
            .unwrap_err();
        assert_eq!(
            e,
            Error::MissingParameter {
                name: "b".into(),
                reason: "there is no gradient for it"
            }
        );
        assert_eq!(model, two_params());
    }

    #[test]
    fn a_misshapen_gradient_names_both_shapes() {
        let mut model = two_params();
        let mut sgd = SgdConfig::new(0.1).init().unwrap();
        let e = sgd
            .step(
                &mut model,
                &grads(&[("a", &[1.0, 1.0]), ("b", &[1.0, 1.0])]),
            )
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "shape mismatch for parameter `b`: the model has [1], got [2]"
        );
        assert_eq!(model, two_params());
    }

    #[test]
    fn a_gradient_of_no_parameter_is_unknown_and_nothing_moves() {
        let mut model = two_params();
        let mut sgd = SgdConfig::new(0.1).with_momentum(0.9).init().unwrap();
        let g = grads(&[("a", &[1.0, 1.0]), ("b", &[1.0]), ("c", &[1.0])]);
        let e = sgd.step(&mut model, &g).unwrap_err();
        assert_eq!(e, Error::UnknownName { name: "c".into() });
        assert_eq!(model, two_params(), "no half-applied step");
        assert_eq!(format!("{sgd:?}").matches("states: 0").count(), 1);
    }

    #[test]
    fn duplicate_gradients_are_rejected() {
        let mut model = Toy::<f64>::new(&[1.0]);
        let mut g = grad_w(&[1.0]);
        g.push("w", vec1(&[2.0]));
        let e = SgdConfig::new(0.1)
            .init()
            .unwrap()
            .step(&mut model, &g)
            .unwrap_err();
        assert!(matches!(
            e,
            Error::InvalidArgument {
                name: "gradients",
                ..
            }
        ));
    }

    #[test]
    fn a_parameter_of_another_shape_is_another_parameter_set() {
        let mut sgd = SgdConfig::new(0.1).with_momentum(0.9).init().unwrap();
        sgd.step(&mut Toy::<f64>::new(&[1.0]), &grad_w(&[1.0]))
            .unwrap();
        let before = sgd.state_dict();
        let mut other = Toy::<f64>::new(&[1.0, 2.0]);
        let e = sgd.step(&mut other, &grad_w(&[1.0, 1.0])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid model: the optimiser is bound to another parameter set (the model of its \
             first step): its parameter 0 is `w` of shape [2], the bound set's is `w` of shape \
             [1]; use one optimiser per model, or one model whose parts' names are prefixed"
        );
        assert_eq!(other.w(), [1.0, 2.0]);
        assert_eq!(sgd.state_dict(), before);
    }

    /// A module: `weight` and, optionally, `bias`, unprefixed, as a layer names its own.
    fn module(weight: &[f64], bias: Option<f64>) -> Toy<f64> {
        let mut params = vec![("weight", vec1(weight))];
        if let Some(b) = bias {
            params.push(("bias", vec1(&[b])));
        }
        Toy { params }
    }

    fn grads_of(model: &Toy<f64>, scale: f64) -> NamedTensors<f64> {
        let mut g = NamedTensors::new();
        for (n, t) in &model.params {
            g.push(*n, t.map(|v| scale * v + 0.5));
        }
        g
    }

    /// The defect this binding fixes: one Adam stepping two modules that both call a
    /// parameter `weight` of the same shape kept one set of moments for both.
    #[test]
    fn two_modules_stepped_by_one_optimiser_are_rejected() {
        let mut adam = crate::AdamConfig::new(0.1).init().unwrap();
        let mut encoder = module(&[1.0, 2.0], Some(0.5));
        let mut decoder = module(&[3.0, 4.0], None);
        let (ge, gd) = (grads_of(&encoder, 1.0), grads_of(&decoder, 1.0));
        adam.step(&mut encoder, &ge).unwrap();
        let before = adam.state_dict();
        let e = adam.step(&mut decoder, &gd).unwrap_err();
        assert!(
            e.to_string()
                .contains("it ends after 1 parameters, before `bias` of shape [1]"),
            "{e}"
        );
        assert_eq!(decoder, module(&[3.0, 4.0], None), "nothing moved");
        assert_eq!(adam.state_dict(), before, "no state shared");
        // the other way round: a parameter beyond the bound set
        let mut adam = crate::AdamConfig::new(0.1).init().unwrap();
        adam.step(&mut decoder, &gd).unwrap();
        let e = adam.step(&mut encoder, &ge).unwrap_err();
        assert!(
            e.to_string()
                .contains("a parameter `bias` of shape [1] after the 1 bound ones"),
            "{e}"
        );
    }

    /// Two modules with exactly the same parameter names and shapes are told apart by their
    /// tensors: the second is rejected and nothing moves.
    #[test]
    fn identical_modules_stepped_by_one_optimiser_are_rejected() {
        let mut adam = crate::AdamConfig::new(0.1).init().unwrap();
        let mut left = module(&[1.0, 2.0], None);
        let mut right = module(&[1.0, 2.0], None);
        let g = grads_of(&left, 1.0);
        adam.step(&mut left, &g).unwrap();
        let before = adam.state_dict();
        let e = adam.step(&mut right, &g).unwrap_err();
        assert!(e.to_string().contains("is another tensor"), "{e}");
        assert_eq!(right, module(&[1.0, 2.0], None), "nothing moved");
        assert_eq!(adam.state_dict(), before, "no state shared");
        // the same module keeps stepping; a copy takes the state over only when told to
        adam.step(&mut left, &g).unwrap();
        let mut copy = left.clone();
        assert!(adam.step(&mut copy, &g).is_err());
        adam.load_state_dict(adam.state_dict(), &copy).unwrap();
        adam.step(&mut copy, &g).unwrap();
        // a module built after the bound one is gone, perhaps at the same address, is another
        drop(copy);
        let mut later = module(&[1.0, 2.0], None);
        assert!(adam.step(&mut later, &g).is_err());
    }

    /// The same two modules inside one model, named apart by prefixes, have moments of their
    /// own: each moves exactly as it would under an optimiser of its own.
    #[test]
    fn prefixed_modules_have_independent_moments() {
        let mut both = Toy::<f64> {
            params: vec![
                ("a.weight", vec1(&[1.0, 2.0])),
                ("b.weight", vec1(&[1.0, 2.0])),
            ],
        };
        let mut alone_a = module(&[1.0, 2.0], None);
        let mut alone_b = module(&[1.0, 2.0], None);
        let config = crate::AdamConfig::new(0.1);
        let mut adam = config.init().unwrap();
        let (mut adam_a, mut adam_b) = (config.init().unwrap(), config.init().unwrap());
        for step in 0..4 {
            // a's gradients grow, b's shrink and change sign
            let ga = [1.0 + step as f64, 0.5];
            let gb = [-0.25 * step as f64, 2.0 / (1.0 + step as f64)];
            let mut g = NamedTensors::new();
            g.push("a.weight", vec1(&ga));
            g.push("b.weight", vec1(&gb));
            adam.step(&mut both, &g).unwrap();
            let mut g = NamedTensors::new();
            g.push("weight", vec1(&ga));
            adam_a.step(&mut alone_a, &g).unwrap();
            let mut g = NamedTensors::new();
            g.push("weight", vec1(&gb));
            adam_b.step(&mut alone_b, &g).unwrap();
        }
        assert_eq!(both.params[0].1, alone_a.params[0].1);
        assert_eq!(both.params[1].1, alone_b.params[0].1);
        assert_ne!(both.params[0].1, both.params[1].1);
        let state = adam.state_dict();
        assert_eq!(state.step_count("a.weight"), Some(4));
        assert_eq!(
            state.tensors().get("exp_avg.b.weight"),
            adam_b.state_dict().tensors().get("exp_avg.weight")
        );
    }

    #[test]
    fn a_visitor_that_repeats_a_name_is_rejected() {
        let mut model = Toy::<f64> {
            params: vec![("weight", vec1(&[1.0])), ("weight", vec1(&[2.0]))],
        };
        let mut g = NamedTensors::new();
        g.push("weight", vec1(&[1.0]));
        let mut sgd = SgdConfig::new(0.1).init().unwrap();
        let e = sgd.step(&mut model, &g).unwrap_err();
        assert!(
            e.to_string().contains("two parameters are named `weight`"),
            "{e}"
        );
        assert_eq!(model.params[0].1.as_slice(), [1.0]);
        let e = sgd.load_state_dict(sgd.state_dict(), &model).unwrap_err();
        assert!(
            e.to_string().contains("two parameters are named `weight`"),
            "{e}"
        );
    }

    #[test]
    fn set_lr_is_validated() {
        let mut sgd: Sgd<f32> = SgdConfig::new(0.1).init().unwrap();
        assert!(sgd.set_lr(-1.0).is_err());
        assert!(sgd.set_lr(f64::NAN).is_err());
        assert_eq!(sgd.lr(), 0.1);
        sgd.set_lr(0.01).unwrap();
        assert_eq!(sgd.lr(), 0.01);
    }
}
