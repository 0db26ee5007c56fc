//! Parameter groups: other settings for the parameters whose names match a predicate, as
//! PyTorch's `param_groups`.

use core::fmt;
use std::sync::Arc;

use super::check_non_negative;
use super::state::state_error;
use crate::error::Result;

/// The settings of a [`ParamGroup`], without its predicate: what an optimiser's state records.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct GroupSettings {
    /// The group's learning rate as a factor of the optimiser's.
    pub(crate) lr_scale: f64,
    /// The group's weight decay, or `None` for the optimiser's.
    pub(crate) weight_decay: Option<f64>,
    /// Whether the group's parameters are left alone.
    pub(crate) frozen: bool,
}

impl GroupSettings {
    /// Checks the values, as the optimiser's `init` does.
    pub(crate) fn validate(&self) -> Result<()> {
        check_non_negative("lr_scale", self.lr_scale)?;
        if let Some(wd) = self.weight_decay {
            check_non_negative("weight decay", wd)?;
        }
        Ok(())
    }
}

/// Other settings for some of a model's parameters, chosen by name, as PyTorch's
/// `param_groups`: a learning-rate factor, a weight decay, or no update at all.
///
/// An optimiser configuration holds a list of groups
/// ([`AdamConfig::with_group`](crate::AdamConfig::with_group),
/// [`SgdConfig::with_group`](crate::SgdConfig::with_group)). Each parameter belongs to the
/// first group whose predicate accepts its full name (the name the model's
/// [`visit_params`](crate::Parameters::visit_params) gives it); a parameter that matches no
/// group takes the optimiser's own settings. The membership is decided once, when the
/// optimiser binds to a model at its first step.
///
/// A [`frozen`](ParamGroup::frozen) group is PyTorch's `requires_grad = False`: its parameters
/// are not updated, the optimiser keeps no state for them, and their gradients may be absent
/// (any given are ignored).
///
/// The group's learning rate is a factor of the optimiser's ([`with_lr_scale`](ParamGroup::with_lr_scale)),
/// so a learning-rate schedule, which sets the optimiser's rate, moves every group alike.
///
/// Two groups are equal when their settings are and they share the same predicate (one
/// cloned from the other).
///
/// # Examples
///
/// No weight decay on biases (`bias_ih_l0`, `fc.bias`, …) and embeddings, a tenth of the
/// learning rate for the rest of the encoder, and a frozen decoder:
///
/// ```
/// use recurrent::{AdamConfig, ParamGroup};
///
/// let config = AdamConfig::adamw(1e-3)
///     .with_group(
///         ParamGroup::new(|name: &str| name.contains("bias") || name.starts_with("embedding."))
///             .with_weight_decay(0.0),
///     )
///     .with_group(ParamGroup::new(|name: &str| name.starts_with("encoder.")).with_lr_scale(0.1))
///     .with_group(ParamGroup::new(|name: &str| name.starts_with("decoder.")).frozen());
/// assert!(config.groups()[0].matches("encoder.bias_ih_l0"));
/// assert!(!config.groups()[0].matches("encoder.weight_ih_l0"));
/// assert!(config.groups()[1].matches("encoder.weight_ih_l0"));
/// assert_eq!(config.groups()[0].weight_decay(), Some(0.0));
/// assert_eq!(
///     format!("{:?}", config.groups()[2]),
///     "ParamGroup { lr_scale: 1.0, weight_decay: None, frozen: true }"
/// );
/// ```
#[derive(Clone)]
pub struct ParamGroup {
    predicate: Arc<dyn Fn(&str) -> bool + Send + Sync>,
    pub(crate) settings: GroupSettings,
}

impl ParamGroup {
    /// The parameters whose full names `predicate` accepts, with the optimiser's settings
    /// until changed by the `with_*` methods.
    pub fn new(predicate: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        ParamGroup {
            predicate: Arc::new(predicate),
            settings: GroupSettings {
                lr_scale: 1.0,
                weight_decay: None,
                frozen: false,
            },
        }
    }

    /// The group's learning rate as a factor of the optimiser's: its parameters are updated
    /// with `lr_scale · lr`. Must be finite and at least 0 (checked by the optimiser's
    /// `init`). Defaults to `1.0`.
    #[must_use = "returns a new group and does not modify self"]
    pub fn with_lr_scale(mut self, lr_scale: f64) -> Self {
        self.settings.lr_scale = lr_scale;
        self
    }

    /// The group's weight decay, in place of the optimiser's (of the same kind: an L2 penalty,
    /// or decoupled for AdamW). Must be finite and at least 0 (checked by the optimiser's
    /// `init`). Defaults to the optimiser's weight decay.
    #[must_use = "returns a new group and does not modify self"]
    pub fn with_weight_decay(mut self, weight_decay: f64) -> Self {
        self.settings.weight_decay = Some(weight_decay);
        self
    }

    /// Freezes the group's parameters: they are not updated, have no optimiser state, and
    /// need no gradient (one given is ignored). Defaults to not frozen.
    #[must_use = "returns a new group and does not modify self"]
    pub fn frozen(mut self) -> Self {
        self.settings.frozen = true;
        self
    }

    /// Whether the parameter called `name` (its full name) is in the group, ignoring groups
    /// listed before this one.
    pub fn matches(&self, name: &str) -> bool {
        (self.predicate)(name)
    }

    /// The learning-rate factor.
    pub fn lr_scale(&self) -> f64 {
        self.settings.lr_scale
    }

    /// The group's weight decay, or `None` if it takes the optimiser's.
    pub fn weight_decay(&self) -> Option<f64> {
        self.settings.weight_decay
    }

    /// Whether the group is frozen.
    pub fn is_frozen(&self) -> bool {
        self.settings.frozen
    }
}

impl PartialEq for ParamGroup {
    fn eq(&self, other: &Self) -> bool {
        self.settings == other.settings
            && std::ptr::addr_eq(Arc::as_ptr(&self.predicate), Arc::as_ptr(&other.predicate))
    }
}

impl fmt::Debug for ParamGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParamGroup")
            .field("lr_scale", &self.settings.lr_scale)
            .field("weight_decay", &self.settings.weight_decay)
            .field("frozen", &self.settings.frozen)
            .finish()
    }
}

/// The index of the first group of `groups` that accepts `name`.
pub(crate) fn group_of(groups: &[ParamGroup], name: &str) -> Option<usize> {
    groups.iter().position(|g| g.matches(name))
}

/// Checks every group's settings.
pub(crate) fn validate_groups(groups: &[ParamGroup]) -> Result<()> {
    groups.iter().try_for_each(|g| g.settings.validate())
}

/// The settings the parameters of one group (or of none) are updated with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Effective {
    /// `lr_scale · lr`.
    pub(crate) lr: f64,
    /// The weight decay.
    pub(crate) weight_decay: f64,
}

/// The learning rate and weight decay of a parameter in group `group` (or in none), given the
/// optimiser's own values.
pub(crate) fn effective(
    groups: &[ParamGroup],
    group: Option<usize>,
    lr: f64,
    weight_decay: f64,
) -> Effective {
    match group.map(|g| groups[g].settings) {
        None => Effective { lr, weight_decay },
        Some(s) => Effective {
            lr: lr * s.lr_scale,
            weight_decay: s.weight_decay.unwrap_or(weight_decay),
        },
    }
}

/// The groups `groups` with the settings `settings` of a loaded state (their predicates kept).
///
/// # Errors
///
/// [`Error::InvalidArgument`](crate::Error::InvalidArgument) if there are not as many settings
/// as groups.
pub(crate) fn with_group_settings(
    groups: &[ParamGroup],
    settings: &[GroupSettings],
) -> Result<Vec<ParamGroup>> {
    if groups.len() != settings.len() {
        return Err(state_error(format!(
            "it has {} parameter groups, the optimiser {}",
            settings.len(),
            groups.len()
        )));
    }
    Ok(groups
        .iter()
        .zip(settings)
        .map(|(g, s)| ParamGroup {
            predicate: Arc::clone(&g.predicate),
            settings: *s,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{vec1, Toy};
    use super::*;
    use crate::{AdamConfig, Error, NamedTensors, Optimizer, SgdConfig};

    /// An embedding, a weight and a bias.
    fn model() -> Toy<f64> {
        Toy {
            params: vec![
                ("embedding.weight", vec1(&[1.0, -1.0, 0.5])),
                ("fc.weight", vec1(&[0.25, 2.0])),
                ("fc.bias", vec1(&[-0.75])),
            ],
        }
    }

    /// Gradients for the parameters of `names`, different at each `step`.
    fn grads(names: &[&str], step: usize) -> NamedTensors<f64> {
        let mut g = NamedTensors::new();
        for (n, t) in model().params {
            if names.contains(&n) {
                g.push(n, t.map(|v| (v + 1.0) * (step as f64 + 1.0).sqrt() - 0.5));
            }
        }
        g
    }

    const TRAINED: [&str; 2] = ["fc.weight", "fc.bias"];

    fn frozen_embedding(optimizer: &mut dyn Optimizer<f64>) {
        let mut m = model();
        for step in 0..3 {
            optimizer.step(&mut m, &grads(&TRAINED, step)).unwrap();
        }
        assert_eq!(m.params[0], model().params[0], "the frozen parameter moved");
        assert_ne!(m.params[1], model().params[1]);
        let state = optimizer.state_dict();
        assert_eq!(state.step_count("embedding.weight"), None);
        assert_eq!(state.step_count("fc.bias"), Some(3));
        assert!(state
            .tensors()
            .iter()
            .all(|(n, _)| !n.contains("embedding")));

        // a gradient for the frozen parameter, even of another shape, is ignored
        // (copies of the model, each given the state: an optimiser steps its own tensors)
        let saved = optimizer.state_dict();
        let mut with = m.clone();
        optimizer.load_state_dict(saved.clone(), &with).unwrap();
        let mut g = grads(&TRAINED, 3);
        g.push("embedding.weight", vec1(&[9.0]));
        optimizer.step(&mut with, &g).unwrap();
        let mut without = m.clone();
        optimizer.load_state_dict(saved, &without).unwrap();
        optimizer.step(&mut without, &grads(&TRAINED, 3)).unwrap();
        assert_eq!(with, without);
        // a parameter that is not frozen still needs its gradient
        let e = optimizer
            .step(&mut without, &grads(&["fc.weight"], 4))
            .unwrap_err();
        assert_eq!(
            e,
            Error::MissingParameter {
                name: "fc.bias".into(),
                reason: "there is no gradient for it"
            }
        );
        assert_eq!(with.params[0], model().params[0]);
    }

    #[test]
    fn frozen_parameters_have_no_update_no_state_and_need_no_gradient() {
        let frozen = || ParamGroup::new(|n: &str| n.starts_with("embedding.")).frozen();
        frozen_embedding(&mut AdamConfig::adamw(0.1).with_group(frozen()).init().unwrap());
        frozen_embedding(
            &mut SgdConfig::new(0.1)
                .with_momentum(0.9)
                .with_weight_decay(0.1)
                .with_group(frozen())
                .init()
                .unwrap(),
        );
    }

    /// Runs `optimizer` on `model()` for three steps with every gradient; returns the model.
    fn train(optimizer: &mut dyn Optimizer<f64>, names: &[&'static str]) -> Toy<f64> {
        let mut m = Toy {
            params: model()
                .params
                .into_iter()
                .filter(|(n, _)| names.contains(n))
                .collect(),
        };
        for step in 0..3 {
            optimizer.step(&mut m, &grads(names, step)).unwrap();
        }
        m
    }

    /// Biases take no weight decay, the rest of `fc` half the learning rate: each parameter
    /// moves exactly as under an optimiser of its own with those settings. `fc.bias` matches
    /// both groups and takes the first.
    #[test]
    fn groups_set_the_weight_decay_and_scale_the_learning_rate() {
        let all = ["embedding.weight", "fc.weight", "fc.bias"];
        type Make = fn(f64, f64) -> Box<dyn Optimizer<f64>>;
        let kinds: [(Make, Make); 2] = [
            (
                |lr, wd| Box::new(AdamConfig::adamw(lr).with_weight_decay(wd).init().unwrap()),
                |lr, wd| {
                    let bias =
                        ParamGroup::new(|n: &str| n.ends_with("bias")).with_weight_decay(0.0);
                    let fc = ParamGroup::new(|n: &str| n.starts_with("fc.")).with_lr_scale(0.5);
                    let c = AdamConfig::adamw(lr).with_weight_decay(wd);
                    Box::new(c.with_group(bias).with_group(fc).init().unwrap())
                },
            ),
            (
                |lr, wd| {
                    let c = SgdConfig::new(lr).with_momentum(0.9).with_weight_decay(wd);
                    Box::new(c.init().unwrap())
                },
                |lr, wd| {
                    let bias =
                        ParamGroup::new(|n: &str| n.ends_with("bias")).with_weight_decay(0.0);
                    let fc = ParamGroup::new(|n: &str| n.starts_with("fc.")).with_lr_scale(0.5);
                    let c = SgdConfig::new(lr).with_momentum(0.9).with_weight_decay(wd);
                    Box::new(c.with_group(bias).with_group(fc).init().unwrap())
                },
            ),
        ];
        for (plain, grouped) in kinds {
            let m = train(grouped(0.1, 0.2).as_mut(), &all);
            let embedding = train(plain(0.1, 0.2).as_mut(), &["embedding.weight"]);
            let weight = train(plain(0.05, 0.2).as_mut(), &["fc.weight"]);
            let bias = train(plain(0.1, 0.0).as_mut(), &["fc.bias"]);
            assert_eq!(m.params[0], embedding.params[0]);
            assert_eq!(m.params[1], weight.params[0]);
            assert_eq!(m.params[2], bias.params[0]);
        }
    }

    /// `set_lr` moves every group: plain SGD from 0 with gradient 1, lr 0.2 and a group at
    /// half of it: `w = −0.1`, the rest `−0.2`.
    #[test]
    fn the_learning_rate_factor_follows_set_lr() {
        let mut sgd = SgdConfig::new(1.0)
            .with_group(ParamGroup::new(|n: &str| n == "a").with_lr_scale(0.5))
            .init()
            .unwrap();
        sgd.set_lr(0.2).unwrap();
        let mut m = Toy::<f64> {
            params: vec![("a", vec1(&[0.0])), ("b", vec1(&[0.0]))],
        };
        let mut g = NamedTensors::new();
        g.push("a", vec1(&[1.0]));
        g.push("b", vec1(&[1.0]));
        sgd.step(&mut m, &g).unwrap();
        assert_eq!(m.params[0].1.as_slice(), [-0.1]);
        assert_eq!(m.params[1].1.as_slice(), [-0.2]);
    }

    #[test]
    fn invalid_group_settings_are_rejected() {
        let g = || ParamGroup::new(|_: &str| true);
        for (group, what) in [
            (g().with_lr_scale(-1.0), "lr_scale"),
            (g().with_lr_scale(f64::INFINITY), "lr_scale"),
            (g().with_weight_decay(f64::NAN), "weight decay"),
        ] {
            for e in [
                AdamConfig::new(0.1)
                    .with_group(group.clone())
                    .init::<f32>()
                    .unwrap_err(),
                SgdConfig::new(0.1)
                    .with_group(group)
                    .init::<f32>()
                    .unwrap_err(),
            ] {
                assert!(
                    matches!(e, Error::InvalidArgument { name, .. } if name == what),
                    "{e}"
                );
            }
        }
    }

    #[test]
    fn groups_compare_by_settings_and_shared_predicate() {
        let a = ParamGroup::new(|n: &str| n.is_empty()).with_lr_scale(0.5);
        assert_eq!(a, a.clone());
        assert_ne!(a, a.clone().frozen());
        assert_ne!(
            a,
            ParamGroup::new(|n: &str| n.is_empty()).with_lr_scale(0.5)
        );
        let config = SgdConfig::new(0.1).with_group(a);
        assert_eq!(
            format!("{config:?}"),
            "SgdConfig { lr: 0.1, momentum: 0.0, dampening: 0.0, weight_decay: 0.0, \
             nesterov: false, groups: [ParamGroup { lr_scale: 0.5, weight_decay: None, \
             frozen: false }] }"
        );
        assert!(config.groups()[0].matches(""));
        assert!(!config.groups()[0].matches("x"));
    }
}
