//! Optimisers over the [`Parameters`] visitor: [`Sgd`], [`Adam`] (and AdamW through
//! [`AdamConfig::adamw`]), and gradient clipping. Each follows the `torch.optim` update rule of
//! the same name, with its state kept per parameter name.

mod adam;
mod clip;
mod sgd;

use std::collections::{HashMap, HashSet};

pub use adam::{Adam, AdamConfig};
pub use clip::{clip_grad_norm, clip_grad_value};
pub use sgd::{Sgd, SgdConfig};

use crate::error::{Error, Result};
use crate::float::Float;
use crate::params::{NamedTensors, Parameters};
use crate::tensor::Tensor;

/// An optimiser: updates a model's parameters from their gradients, keeping whatever state it
/// needs (momentum buffers, moment estimates) per parameter name.
///
/// # Examples
///
/// One training step of an LSTM on the loss `sum(output)`:
///
/// ```
/// use recurrent::rand::{rngs::StdRng, SeedableRng};
/// use recurrent::{AdamConfig, LstmCellConfig, Optimizer, Parameters, Recurrent, Tensor};
///
/// let mut rng = StdRng::seed_from_u64(0);
/// let mut lstm = Recurrent::new(LstmCellConfig::new(3, 4).init::<f32>(&mut rng)?);
/// let mut adam = AdamConfig::new(1e-3).init()?;
///
/// let x = Tensor::randn(&[5, 2, 3], &mut rng);
/// let before = lstm.state_dict();
/// let out = lstm.forward(&x, None, None)?;
/// let grads = lstm.backward(&out.trace, Some(&out.output.map(|_| 1.0)), None)?;
/// adam.step(&mut lstm, &grads.params)?;
/// assert_ne!(lstm.state_dict(), before);
/// # Ok::<(), recurrent::Error>(())
/// ```
pub trait Optimizer<T: Float> {
    /// Updates every parameter of `model` from its gradient in `grads` (matched by name).
    ///
    /// Everything is checked before any parameter changes, so an error leaves the model and
    /// the optimiser's state as they were.
    ///
    /// # Errors
    ///
    /// - [`Error::MissingParameter`] naming the first parameter without a gradient;
    /// - [`Error::ParameterShape`] naming the first parameter whose gradient has another
    ///   shape, with both shapes;
    /// - [`Error::UnknownName`] for a gradient that is not a parameter of `model`;
    /// - [`Error::InvalidArgument`] if two gradients have the same name, or if a parameter
    ///   has another shape than the optimiser's state for that name (the optimiser was used
    ///   with another model).
    fn step(&mut self, model: &mut dyn Parameters<T>, grads: &NamedTensors<T>) -> Result<()>;

    /// The learning rate.
    fn lr(&self) -> f64;

    /// Changes the learning rate (for a schedule); the state is kept.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if `lr` is negative or not finite.
    fn set_lr(&mut self, lr: f64) -> Result<()>;
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

/// Matches `grads` to the parameters of `model` by name and checks everything a step needs,
/// before anything is changed: every parameter has exactly one gradient of its own shape,
/// every gradient belongs to a parameter, and `state_shape(name)` (the shape of the
/// optimiser's state for that name, if it has any) is the parameter's shape.
///
/// Returns the gradients by name.
pub(crate) fn match_grads<'g, T: Float>(
    model: &dyn Parameters<T>,
    grads: &'g NamedTensors<T>,
    state_shape: impl Fn(&str) -> Option<Vec<usize>>,
) -> Result<HashMap<&'g str, &'g Tensor<T>>> {
    let mut by_name = HashMap::with_capacity(grads.len());
    for (name, g) in grads.iter() {
        if by_name.insert(name, g).is_some() {
            return Err(Error::InvalidArgument {
                name: "gradients",
                reason: format!("two gradients are named `{name}`"),
            });
        }
    }
    let mut params = HashSet::new();
    let mut first_error = None;
    model.visit_params(&mut |name, p| {
        params.insert(name.to_string());
        if first_error.is_some() {
            return;
        }
        first_error = match by_name.get(name) {
            None => Some(Error::MissingParameter {
                name: name.to_string(),
                reason: "there is no gradient for it",
            }),
            Some(g) if g.shape() != p.shape() => Some(Error::ParameterShape {
                name: name.to_string(),
                expected: p.shape().to_vec(),
                actual: g.shape().to_vec(),
            }),
            Some(_) => match state_shape(name) {
                Some(s) if s != p.shape() => Some(Error::InvalidArgument {
                    name: "model",
                    reason: format!(
                        "parameter `{name}` has shape {:?} but the optimiser's state for it \
                         has shape {s:?}; use a new optimiser for another model",
                        p.shape()
                    ),
                }),
                _ => None,
            },
        };
    });
    if let Some(e) = first_error {
        return Err(e);
    }
    if let Some((name, _)) = grads.iter().find(|(n, _)| !params.contains(*n)) {
        return Err(Error::UnknownName {
            name: name.to_string(),
        });
    }
    Ok(by_name)
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
    fn state_of_another_shape_is_rejected() {
        let mut sgd = SgdConfig::new(0.1).with_momentum(0.9).init().unwrap();
        sgd.step(&mut Toy::<f64>::new(&[1.0]), &grad_w(&[1.0]))
            .unwrap();
        let mut other = Toy::<f64>::new(&[1.0, 2.0]);
        let e = sgd.step(&mut other, &grad_w(&[1.0, 1.0])).unwrap_err();
        assert!(e.to_string().contains("optimiser's state"), "{e}");
        assert_eq!(other.w(), [1.0, 2.0]);
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
