//! The parameter set an optimiser is bound to, and the matching of gradients to it.

use std::collections::HashMap;

use super::group::{group_of, ParamGroup};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::params::{NamedTensors, Parameters};
use crate::tensor::Tensor;

/// The parameters of one model, as an optimiser sees them: names, shapes and buffers in
/// visiting order, the group of each, and the position of each name.
///
/// The tensor's identity is the parameter's, as `id(param)` is in PyTorch: two modules with
/// the same parameter names and shapes (two `Linear(3, 3)`s) are told apart by it. Every
/// tensor made or cloned has an identity of its own, never reused; training updates a
/// parameter in place and [`load`](crate::load) copies into it, so the identity stays.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Binding {
    pub(crate) names: Vec<String>,
    pub(crate) shapes: Vec<Vec<usize>>,
    /// The identity of each parameter's tensor.
    identities: Vec<u64>,
    /// The first group accepting each parameter, if any.
    pub(crate) groups: Vec<Option<usize>>,
    /// Whether each parameter is frozen.
    pub(crate) frozen: Vec<bool>,
    index: HashMap<String, usize>,
}

impl Binding {
    /// The parameters of `model` with their groups among `groups`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if the model's visitor gives two parameters the same name.
    pub(crate) fn of<T: Float>(model: &dyn Parameters<T>, groups: &[ParamGroup]) -> Result<Self> {
        let mut names = Vec::new();
        let mut shapes = Vec::new();
        let mut identities = Vec::new();
        model.visit_params(&mut |name, p| {
            names.push(name.to_string());
            shapes.push(p.shape().to_vec());
            identities.push(p.id());
        });
        let mut index = HashMap::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            if index.insert(name.clone(), i).is_some() {
                return Err(Error::InvalidArgument {
                    name: "model",
                    reason: format!(
                        "two parameters are named `{name}`; an optimiser keeps its state by \
                         name, so a model must name its parts apart (a prefix per part)"
                    ),
                });
            }
        }
        let group: Vec<Option<usize>> = names.iter().map(|n| group_of(groups, n)).collect();
        let frozen = group
            .iter()
            .map(|g| g.is_some_and(|g| groups[g].settings.frozen))
            .collect();
        Ok(Binding {
            names,
            shapes,
            identities,
            groups: group,
            frozen,
            index,
        })
    }

    /// The number of parameters.
    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }

    /// The position of the parameter called `name`.
    pub(crate) fn position(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// Checks that `model` has this parameter set: the same names and shapes in the same
    /// order.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] naming the first parameter that differs.
    pub(crate) fn check_model<T: Float>(&self, model: &dyn Parameters<T>) -> Result<()> {
        let mut i = 0;
        let mut first_difference = None;
        let mut other_tensor = None;
        model.visit_params(&mut |name, p| {
            if other_tensor.is_none() && self.identities.get(i).is_some_and(|&id| id != p.id()) {
                other_tensor = Some(name.to_string());
            }
            if first_difference.is_none() {
                let same = self.names.get(i).is_some_and(|n| n == name)
                    && self.shapes.get(i).is_some_and(|s| s == p.shape());
                if !same {
                    first_difference = Some((i, name.to_string(), p.shape().to_vec()));
                }
            }
            i += 1;
        });
        let reason = match first_difference {
            None if i == self.len() => match other_tensor {
                None => return Ok(()),
                Some(name) => format!(
                    "its parameter `{name}` has the bound one's name and shape but is another \
                     tensor (another module with the same parameter names, or a copy of the \
                     model); to move the state onto this model on purpose, load it: \
                     `optimizer.load_state_dict(optimizer.state_dict(), &model)`"
                ),
            },
            None => format!(
                "it ends after {i} parameters, before `{}` of shape {:?}",
                self.names[i], self.shapes[i]
            ),
            Some((i, name, shape)) => match self.names.get(i) {
                None => format!(
                    "it has a parameter `{name}` of shape {shape:?} after the {} bound ones",
                    self.len()
                ),
                Some(bound) => format!(
                    "its parameter {i} is `{name}` of shape {shape:?}, the bound set's is \
                     `{bound}` of shape {:?}",
                    self.shapes[i]
                ),
            },
        };
        Err(Error::InvalidArgument {
            name: "model",
            reason: format!(
                "the optimiser is bound to another parameter set (the model of its first \
                 step): {reason}; use one optimiser per model, or one model whose parts' \
                 names are prefixed"
            ),
        })
    }

    /// Matches `grads` to the parameters by name: the gradient of each parameter that is not
    /// frozen, `None` for frozen ones (whose gradients, if any, are ignored).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`] if two gradients have the same name;
    /// - [`Error::MissingParameter`] naming the first parameter that is not frozen and has no
    ///   gradient;
    /// - [`Error::ParameterShape`] naming the first such parameter whose gradient has another
    ///   shape;
    /// - [`Error::UnknownName`] for a gradient that names no parameter.
    pub(crate) fn match_grads<'g, T: Float>(
        &self,
        grads: &'g NamedTensors<T>,
    ) -> Result<Vec<Option<&'g Tensor<T>>>> {
        let mut by_name = HashMap::with_capacity(grads.len());
        for (name, g) in grads.iter() {
            if by_name.insert(name, g).is_some() {
                return Err(Error::InvalidArgument {
                    name: "gradients",
                    reason: format!("two gradients are named `{name}`"),
                });
            }
        }
        let mut matched = Vec::with_capacity(self.len());
        for (i, name) in self.names.iter().enumerate() {
            if self.frozen[i] {
                matched.push(None);
                continue;
            }
            let Some(g) = by_name.get(name.as_str()) else {
                return Err(Error::MissingParameter {
                    name: name.clone(),
                    reason: "there is no gradient for it",
                });
            };
            if g.shape() != self.shapes[i].as_slice() {
                return Err(Error::ParameterShape {
                    name: name.clone(),
                    expected: self.shapes[i].clone(),
                    actual: g.shape().to_vec(),
                });
            }
            matched.push(Some(*g));
        }
        if let Some((name, _)) = grads.iter().find(|(n, _)| !self.index.contains_key(*n)) {
            return Err(Error::UnknownName {
                name: name.to_string(),
            });
        }
        Ok(matched)
    }
}

/// Checks `model` against the optimiser's binding (or binds it at the first step) and matches
/// `grads` to its parameters; nothing changes on error.
pub(crate) fn prepare<'b, 'g, T: Float>(
    binding: &'b mut Option<Binding>,
    groups: &[ParamGroup],
    model: &dyn Parameters<T>,
    grads: &'g NamedTensors<T>,
) -> Result<(&'b Binding, Vec<Option<&'g Tensor<T>>>)> {
    match binding {
        Some(b) => {
            b.check_model(model)?;
            let matched = b.match_grads(grads)?;
            Ok((b, matched))
        }
        None => {
            let b = Binding::of(model, groups)?;
            let matched = b.match_grads(grads)?;
            Ok((binding.insert(b), matched))
        }
    }
}
