//! What a forward pass of [`Recurrent`](super::Recurrent) keeps for its backward pass, and the
//! stamp that ties a trace to the cell and parameters that made it.

use core::fmt;

use super::super::parallel::SplitTrace;
use super::super::pool::Recycler;
use super::dropout::Masks;
use super::rows::{Packing, SeqLayout};
use crate::cell::Cell;
use crate::error::{without_paths, Error, Result};
use crate::float::Float;
use crate::state::state_width;

/// The cell kind, sizes and parameter version a trace was made with. A backward pass checks
/// that its layer still has them: a trace of another kind of cell with the same buffer widths,
/// or one made before an optimiser step or a load, would otherwise give wrong gradients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp {
    cell: &'static str,
    input_size: usize,
    gate_width: usize,
    state_width: usize,
    saved_width: usize,
    version: u64,
}

impl Stamp {
    /// The stamp of `cell` as it is now.
    pub(crate) fn of<T: Float, C: Cell<T>>(cell: &C) -> Self {
        Stamp {
            cell: core::any::type_name::<C>(),
            input_size: cell.input_size(),
            gate_width: cell.gate_width(),
            state_width: state_width(cell.state_parts()),
            saved_width: cell.saved_width(),
            version: cell.params().version(),
        }
    }

    /// Checks that `self` (a trace's stamp) is the stamp of the layer now.
    pub(crate) fn check(&self, now: &Stamp) -> Result<()> {
        if self.cell != now.cell {
            return Err(Error::StaleTrace {
                reason: format!(
                    "it was made by a layer of {}, this layer has {}",
                    without_paths(self.cell),
                    without_paths(now.cell)
                ),
            });
        }
        let sizes = [
            ("input size", self.input_size, now.input_size),
            ("gate width", self.gate_width, now.gate_width),
            ("state width", self.state_width, now.state_width),
            ("saved width", self.saved_width, now.saved_width),
        ];
        if let Some(&(what, actual, expected)) = sizes.iter().find(|(_, a, e)| a != e) {
            return Err(Error::TraceMismatch {
                what,
                expected,
                actual,
            });
        }
        if self.version != now.version {
            return Err(Error::StaleTrace {
                reason: "the parameters changed since the forward pass (an optimiser step, a \
                         load or a mutable access)"
                    .into(),
            });
        }
        Ok(())
    }
}

/// The trace of a call on one thread, in packed rows.
#[derive(Clone)]
pub(crate) struct RowsTrace<T> {
    pub(crate) stamp: Stamp,
    pub(crate) layout: SeqLayout,
    pub(crate) packing: Packing,
    /// Input rows `(T·B, I)` in packed order, zero past each length.
    pub(crate) x: Vec<T>,
    /// States `(T + 1, B, S)` in packed order; a finished sample's state is carried forward.
    pub(crate) states: Vec<T>,
    /// What the cell saved, `(T, B, saved_width)`.
    pub(crate) saved: Vec<T>,
    /// The variational dropout masks of a training call that drops.
    pub(crate) masks: Option<Masks<T>>,
    /// Gives the buffers back to the layer's pool when the trace is dropped.
    pub(crate) recycler: Recycler<T>,
}

impl<T> Drop for RowsTrace<T> {
    fn drop(&mut self) {
        for buffer in [&mut self.x, &mut self.states, &mut self.saved] {
            self.recycler.recycle(core::mem::take(buffer));
        }
    }
}

impl<T> fmt::Debug for RowsTrace<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RowsTrace")
            .field("layout", &self.layout)
            .field("batch_sizes", &self.packing.batch_sizes)
            .finish_non_exhaustive()
    }
}

/// What a [`Recurrent`](super::Recurrent) layer's forward pass keeps for its backward pass
/// ([`SequenceLayer`](crate::SequenceLayer)`::forward_with_state` and `backward_with_state`):
/// the inputs, every state and what the
/// cell saved at each step, for the whole batch or for each half of a batch split over two
/// threads. Its buffers go back to the layer when it is dropped.
#[derive(Clone)]
pub struct RecurrentTrace<T>(pub(crate) SplitTrace<RowsTrace<T>>);

impl<T> RecurrentTrace<T> {
    /// Whether the call split its batch in two halves run on two threads.
    pub fn is_split(&self) -> bool {
        matches!(self.0, SplitTrace::Split { .. })
    }
}

impl<T> fmt::Debug for RecurrentTrace<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            SplitTrace::Whole(t) => f.debug_tuple("RecurrentTrace").field(t).finish(),
            SplitTrace::Split { at, halves } => f
                .debug_struct("RecurrentTrace")
                .field("split_at", at)
                .field("halves", halves)
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::without_paths;

    #[test]
    fn type_names_lose_their_paths() {
        assert_eq!(
            without_paths("recurrent::cell::lstm::LstmCell<f64>"),
            "LstmCell<f64>"
        );
        assert_eq!(
            without_paths("a::Wrap<b::c::Inner<f32>, d::E>"),
            "Wrap<Inner<f32>, E>"
        );
    }
}
