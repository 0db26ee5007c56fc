//! Named parameters: the [`Parameters`] visitor that every layer implements, and [`NamedTensors`],
//! the gradients of a model under the same names, and [`Summary`], the table of a model's
//! parameters. Optimisers, gradient clipping, gradient checking and weight files all walk this
//! one visitor.

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

    /// Each parameter's name, shape and number of values, and their total: a [`Summary`],
    /// which displays as a table.
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::{GruCellConfig, Parameters, Recurrent};
    ///
    /// let gru = Recurrent::new(GruCellConfig::new(4, 8).init_seeded::<f32>(0)?);
    /// let summary = gru.summary();
    /// assert_eq!(summary.total(), gru.param_count());
    /// assert_eq!(summary.entries()[1].shape(), &[24, 8]);
    /// println!("{summary}");
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    fn summary(&self) -> Summary {
        let mut entries = Vec::new();
        self.visit_params(&mut |name, t| {
            entries.push(SummaryEntry {
                name: name.to_string(),
                shape: t.shape().to_vec(),
                count: t.len(),
            });
        });
        let total = entries.iter().map(|e| e.count).sum();
        Summary { entries, total }
    }
}

/// The parameters of a model, from [`Parameters::summary`]: each one's name, shape and number
/// of values, in `state_dict` order, and their total.
///
/// It displays as an aligned table, counts grouped by thousands:
///
/// ```text
/// name         | shape   | parameters
/// -------------+---------+-----------
/// weight_ih_l0 | [24, 4] |         96
/// weight_hh_l0 | [24, 8] |        192
/// bias_ih_l0   | [24]    |         24
/// bias_hh_l0   | [24]    |         24
/// -------------+---------+-----------
/// total        |         |        336
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    entries: Vec<SummaryEntry>,
    total: usize,
}

/// One parameter of a [`Summary`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryEntry {
    name: String,
    shape: Vec<usize>,
    count: usize,
}

impl Summary {
    /// The parameters, in `state_dict` order.
    pub fn entries(&self) -> &[SummaryEntry] {
        &self.entries
    }

    /// The total number of values of all parameters.
    pub fn total(&self) -> usize {
        self.total
    }
}

impl SummaryEntry {
    /// The parameter's name, for example `"weight_ih_l0"`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Its number of values.
    pub fn count(&self) -> usize {
        self.count
    }
}

/// `n` with its digits grouped by thousands: `1,234,567`.
fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() * 4 / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows: Vec<(&str, String, String)> = self
            .entries
            .iter()
            .map(|e| (e.name.as_str(), format!("{:?}", e.shape), grouped(e.count)))
            .collect();
        let total = grouped(self.total);
        let width = |header: &str, column: &dyn Fn(&(&str, String, String)) -> usize| {
            rows.iter()
                .map(column)
                .fold(header.chars().count(), usize::max)
        };
        let w_name = width("total", &|r| r.0.chars().count());
        let w_shape = width("shape", &|r| r.1.chars().count());
        let w_count = width("parameters", &|r| r.2.chars().count()).max(total.len());
        let rule = format!(
            "{}-+-{}-+-{}",
            "-".repeat(w_name),
            "-".repeat(w_shape),
            "-".repeat(w_count)
        );
        writeln!(
            f,
            "{:<w_name$} | {:<w_shape$} | {:>w_count$}",
            "name", "shape", "parameters"
        )?;
        writeln!(f, "{rule}")?;
        for (name, shape, count) in &rows {
            writeln!(f, "{name:<w_name$} | {shape:<w_shape$} | {count:>w_count$}")?;
        }
        writeln!(f, "{rule}")?;
        write!(
            f,
            "{:<w_name$} | {:<w_shape$} | {total:>w_count$}",
            "total", ""
        )
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

    /// Removes the tensor called `name` and returns it (the first, if several have that name).
    pub fn remove(&mut self, name: &str) -> Option<Tensor<T>> {
        let i = self.entries.iter().position(|(n, _)| n == name)?;
        Some(self.entries.remove(i).1)
    }

    /// Keeps only the entries for which `keep(name, tensor)` is true, in order: for example,
    /// to drop the gradients of frozen parameters before clipping.
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::{NamedTensors, Tensor};
    ///
    /// let mut grads = NamedTensors::new();
    /// grads.push("embedding.weight", Tensor::<f32>::zeros(&[4, 2]));
    /// grads.push("fc.weight", Tensor::zeros(&[1, 2]));
    /// grads.retain(|name, _| !name.starts_with("embedding."));
    /// assert_eq!(grads.len(), 1);
    /// assert!(grads.get("fc.weight").is_some());
    /// ```
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &Tensor<T>) -> bool) {
        self.entries.retain(|(n, t)| keep(n, t));
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
    fn thousands_are_grouped() {
        let cases = [
            (0, "0"),
            (999, "999"),
            (1000, "1,000"),
            (123_456, "123,456"),
        ];
        for (n, text) in cases {
            assert_eq!(grouped(n), text);
        }
        assert_eq!(grouped(1_234_567), "1,234,567");
    }

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
