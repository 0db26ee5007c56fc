//! Named parameters: the [`Parameters`] visitor that every layer implements, and [`NamedTensors`],
//! the gradients of a model under the same names. Optimisers, gradient clipping, gradient
//! checking and weight files all walk this one visitor.

use core::fmt;

use crate::error::{Error, Result};
use crate::float::Float;
use crate::tensor::Tensor;

/// A model or layer with named parameters, visited in PyTorch's `state_dict` order under
/// PyTorch's `state_dict` names (`weight_ih_l0`, `fc.weight`, ...).
///
/// A model made of several parts implements it by visiting each part with a prefix, as
/// PyTorch names the parameters of submodules:
///
/// ```
/// use recurrent::rand::{rngs::StdRng, SeedableRng};
/// use recurrent::{GruCellConfig, Parameters, Recurrent, Tensor};
///
/// struct Model {
///     encoder: Recurrent<recurrent::GruCell<f32>>,
///     decoder: Recurrent<recurrent::GruCell<f32>>,
/// }
///
/// impl Parameters<f32> for Model {
///     fn visit_params(&self, f: &mut dyn FnMut(&str, &Tensor<f32>)) {
///         self.encoder.visit_params(&mut |n, t| f(&format!("encoder.{n}"), t));
///         self.decoder.visit_params(&mut |n, t| f(&format!("decoder.{n}"), t));
///     }
///
///     fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Tensor<f32>)) {
///         self.encoder.visit_params_mut(&mut |n, t| f(&format!("encoder.{n}"), t));
///         self.decoder.visit_params_mut(&mut |n, t| f(&format!("decoder.{n}"), t));
///     }
/// }
///
/// let mut rng = StdRng::seed_from_u64(0);
/// let model = Model {
///     encoder: Recurrent::new(GruCellConfig::new(4, 8).init(&mut rng)?),
///     decoder: Recurrent::new(GruCellConfig::new(8, 4).init(&mut rng)?),
/// };
/// assert_eq!(model.param_names()[0], "encoder.weight_ih_l0");
/// assert_eq!(model.param_count(), (24 * 4 + 24 * 8 + 2 * 24) + (12 * 8 + 12 * 4 + 2 * 12));
/// # Ok::<(), recurrent::Error>(())
/// ```
pub trait Parameters<T: Float> {
    /// Calls `f` with each parameter's name and value, in `state_dict` order.
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Tensor<T>));

    /// Calls `f` with each parameter's name and a mutable reference to it, in the same order.
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Tensor<T>));

    /// The parameters' names, in order.
    fn param_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        self.visit_params(&mut |n, _| names.push(n.to_string()));
        names
    }

    /// The total number of scalar parameters.
    fn param_count(&self) -> usize {
        let mut n = 0;
        self.visit_params(&mut |_, t| n += t.len());
        n
    }

    /// A copy of every parameter under its name (PyTorch's `state_dict()`).
    fn state_dict(&self) -> NamedTensors<T> {
        let mut all = NamedTensors::new();
        self.visit_params(&mut |n, t| all.push(n, t.clone()));
        all
    }
}

/// Named tensors, in the order a model visits its parameters: the gradients of a model (or a
/// copy of its parameters, see [`Parameters::state_dict`]).
#[derive(Clone, Default, PartialEq)]
pub struct NamedTensors<T> {
    entries: Vec<(String, Tensor<T>)>,
}

impl<T: Float> NamedTensors<T> {
    /// No entries.
    pub fn new() -> Self {
        NamedTensors {
            entries: Vec::new(),
        }
    }

    /// Appends an entry.
    pub fn push(&mut self, name: impl Into<String>, tensor: Tensor<T>) {
        self.entries.push((name.into(), tensor));
    }

    /// Appends every entry of `other`, its name prefixed with `prefix` (for example `"rnn."`,
    /// to name the gradients of a submodule as PyTorch does).
    pub fn extend_prefixed(&mut self, prefix: &str, other: NamedTensors<T>) {
        self.entries.extend(
            other
                .entries
                .into_iter()
                .map(|(n, t)| (format!("{prefix}{n}"), t)),
        );
    }

    /// The tensor called `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor<T>> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// The tensor called `name`, mutably.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Tensor<T>> {
        self.entries
            .iter_mut()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
    }

    /// The tensor called `name`.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownName`] if there is none.
    pub fn require(&self, name: &str) -> Result<&Tensor<T>> {
        self.get(name).ok_or_else(|| Error::UnknownName {
            name: name.to_string(),
        })
    }

    /// The entries in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &Tensor<T>)> {
        self.entries.iter().map(|(n, t)| (n.as_str(), t))
    }

    /// The entries in order, mutably.
    pub fn iter_mut(&mut self) -> impl ExactSizeIterator<Item = (&str, &mut Tensor<T>)> {
        self.entries.iter_mut().map(|(n, t)| (n.as_str(), t))
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<T> IntoIterator for NamedTensors<T> {
    type Item = (String, Tensor<T>);
    type IntoIter = std::vec::IntoIter<(String, Tensor<T>)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<T: fmt::Debug> fmt::Debug for NamedTensors<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(n, t)| (n, t)))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extend_prefixed_names_like_a_submodule() {
        let mut inner = NamedTensors::new();
        inner.push("weight", Tensor::<f64>::zeros(&[2]));
        let mut all = NamedTensors::new();
        all.push("bias", Tensor::zeros(&[1]));
        all.extend_prefixed("fc.", inner);
        let names: Vec<&str> = all.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["bias", "fc.weight"]);
        assert!(all.get_mut("fc.weight").is_some());
        assert!(matches!(
            all.require("weight"),
            Err(Error::UnknownName { .. })
        ));
    }
}
