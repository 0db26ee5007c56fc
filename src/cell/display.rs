//! The one-line `Display` of the built-in cells.

use core::fmt;

use super::CellParams;
use crate::float::Float;

/// Writes a cell's one-line summary:
/// `LstmCell { input_size: 2, hidden_size: 3, bias: true, params: 84 }`, with `option` (such as
/// an RNN's non-linearity) before `bias`.
pub(crate) fn display_cell<T: Float>(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    input_size: usize,
    hidden_size: usize,
    option: Option<(&str, &dyn fmt::Debug)>,
    params: &CellParams<T>,
) -> fmt::Result {
    write!(
        f,
        "{name} {{ input_size: {input_size}, hidden_size: {hidden_size}, "
    )?;
    if let Some((label, value)) = option {
        write!(f, "{label}: {value:?}, ")?;
    }
    let bias = params.bias_ih().is_some();
    write!(f, "bias: {bias}, params: {} }}", params.count())
}
