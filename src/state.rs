//! Recurrent state: [`State`] (named parts such as `h` and an LSTM's `c`), the layout of its
//! parts ([`StatePart`]), and the packing of parts side by side in the rows a cell reads.

use core::fmt;

use crate::error::{check_shape, Error, Result};
use crate::float::Float;
use crate::tensor::{Shape, Tensor};

/// One named part of a cell's state (`h`, or LSTM's `c`) and its width per sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatePart {
    /// The name: `"h"` for the part that is also the output, `"c"` for an LSTM's cell state.
    pub name: &'static str,
    /// Values per sample.
    pub size: usize,
}

impl StatePart {
    /// A part called `name` with `size` values per sample.
    pub fn new(name: &'static str, size: usize) -> Self {
        StatePart { name, size }
    }
}

/// A recurrent state: named tensors such as `h` (and `c` for an LSTM).
///
/// For a cell step each part is `(B, width)`; for a sequence layer each part is
/// `(L·D, B, width)` as in PyTorch (`L·D = 1` for one [`crate::Recurrent`] layer).
#[derive(Clone, PartialEq)]
pub struct State<T> {
    parts: Vec<(&'static str, Tensor<T>)>,
}

impl<T: Float> State<T> {
    /// A state made of named parts; the first part is `h`, the output.
    pub fn new(parts: Vec<(&'static str, Tensor<T>)>) -> Self {
        State { parts }
    }

    /// The state of a vanilla RNN or GRU: `h` only.
    pub fn from_h(h: Tensor<T>) -> Self {
        State {
            parts: vec![("h", h)],
        }
    }

    /// The state of an LSTM: `h` and `c`.
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::{State, Tensor};
    ///
    /// // h_0 and c_0 of a one-layer LSTM with batch 4 and hidden size 8, as in PyTorch
    /// let state = State::from_hc(Tensor::<f32>::zeros(&[1, 4, 8]), Tensor::zeros(&[1, 4, 8]));
    /// assert_eq!(state.c().unwrap().shape(), &[1, 4, 8]);
    /// assert_eq!(state.parts().map(|(name, _)| name).collect::<Vec<_>>(), ["h", "c"]);
    /// ```
    pub fn from_hc(h: Tensor<T>, c: Tensor<T>) -> Self {
        State {
            parts: vec![("h", h), ("c", c)],
        }
    }

    /// The hidden state `h` (the first part).
    ///
    /// # Panics
    ///
    /// Panics if the state has no part.
    #[track_caller]
    pub fn h(&self) -> &Tensor<T> {
        &self.parts.first().expect("a state has at least one part").1
    }

    /// The LSTM cell state `c`, if this state has one.
    pub fn c(&self) -> Option<&Tensor<T>> {
        self.get("c")
    }

    /// The part called `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor<T>> {
        self.parts.iter().find(|(n, _)| *n == name).map(|(_, t)| t)
    }

    /// The parts with their names, `h` first.
    pub fn parts(&self) -> impl ExactSizeIterator<Item = (&'static str, &Tensor<T>)> {
        self.parts.iter().map(|(n, t)| (*n, t))
    }

    /// Mutable access to the parts.
    pub fn parts_mut(&mut self) -> impl ExactSizeIterator<Item = (&'static str, &mut Tensor<T>)> {
        self.parts.iter_mut().map(|(n, t)| (*n, t))
    }

    /// The parts, consuming the state.
    pub fn into_parts(self) -> Vec<(&'static str, Tensor<T>)> {
        self.parts
    }

    /// Checks that the parts are `layout`'s, each of shape `lead ++ [width]`.
    pub(crate) fn validate(
        &self,
        op: &'static str,
        layout: &[StatePart],
        lead: &[usize],
    ) -> Result<()> {
        let actual: Vec<&'static str> = self.parts.iter().map(|(n, _)| *n).collect();
        let expected: Vec<&'static str> = layout.iter().map(|p| p.name).collect();
        if actual != expected {
            return Err(Error::StatePartsMismatch {
                op,
                expected,
                actual,
            });
        }
        self.check_part_shapes(op, layout, lead)
    }

    /// Checks a gradient of a state: its parts are some of `layout`'s, in `layout`'s order,
    /// each of shape `lead ++ [width]`. A part that is absent counts as zero (the loss does not
    /// read it: an LSTM's `c_n` when only `h_n` is used), so an empty state is all zero.
    pub(crate) fn validate_gradient(
        &self,
        op: &'static str,
        layout: &[StatePart],
        lead: &[usize],
    ) -> Result<()> {
        let mut names = layout.iter().map(|p| p.name);
        // each part must come later in the layout than the one before it
        let in_order = self
            .parts
            .iter()
            .all(|(n, _)| names.by_ref().any(|name| name == *n));
        if !in_order {
            return Err(Error::StatePartsMismatch {
                op,
                expected: layout.iter().map(|p| p.name).collect(),
                actual: self.parts.iter().map(|(n, _)| *n).collect(),
            });
        }
        self.check_part_shapes(op, layout, lead)
    }

    /// Checks that each part has the shape `lead ++ [width]` of its namesake in `layout`.
    fn check_part_shapes(
        &self,
        op: &'static str,
        layout: &[StatePart],
        lead: &[usize],
    ) -> Result<()> {
        for (name, t) in &self.parts {
            let part = layout
                .iter()
                .find(|p| p.name == *name)
                .expect("validated: every part is in the layout");
            let mut dims = lead.to_vec();
            dims.push(part.size);
            check_shape(op, Shape::new(&dims), t.raw_shape())?;
        }
        Ok(())
    }
}

impl<T: fmt::Debug> fmt::Debug for State<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("State");
        for (name, t) in &self.parts {
            s.field(name, t);
        }
        s.finish()
    }
}

/// The sum of the widths of the state parts.
pub(crate) fn state_width(layout: &[StatePart]) -> usize {
    layout.iter().map(|p| p.size).sum()
}

/// Copies a validated state (parts `(…, B, width)` with `batch` samples) into packed rows
/// `(B, S)`, the parts side by side in `layout`'s order; row `j` takes sample `order[j]` (or
/// `j` without an order). A part the state lacks (a gradient that does not reach it) leaves
/// its columns as they are.
pub(crate) fn pack_state<T: Float>(
    state: &State<T>,
    layout: &[StatePart],
    batch: usize,
    rows: &mut [T],
    order: Option<&[usize]>,
) {
    let width = state_width(layout);
    let mut offset = 0;
    for part in layout {
        if let Some(t) = state.get(part.name) {
            let src = t.as_slice();
            for j in 0..batch {
                let b = order.map_or(j, |o| o[j]);
                rows[j * width + offset..][..part.size]
                    .copy_from_slice(&src[b * part.size..][..part.size]);
            }
        }
        offset += part.size;
    }
}

/// The inverse of [`pack_state`]: a state with parts of shape `lead ++ [width]`.
pub(crate) fn unpack_state<T: Float>(
    rows: &[T],
    layout: &[StatePart],
    lead: &[usize],
    batch: usize,
    order: Option<&[usize]>,
) -> State<T> {
    let width = state_width(layout);
    let mut offset = 0;
    let mut parts = Vec::with_capacity(layout.len());
    for part in layout {
        let mut dims = lead.to_vec();
        dims.push(part.size);
        let mut t = Tensor::zeros(&dims);
        let dst = t.as_mut_slice();
        for j in 0..batch {
            let b = order.map_or(j, |o| o[j]);
            dst[b * part.size..][..part.size]
                .copy_from_slice(&rows[j * width + offset..][..part.size]);
        }
        offset += part.size;
        parts.push((part.name, t));
    }
    State::new(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lstm_layout() -> [StatePart; 2] {
        [StatePart::new("h", 2), StatePart::new("c", 3)]
    }

    #[test]
    fn a_gradient_may_leave_parts_out() {
        let layout = lstm_layout();
        let h = Tensor::<f64>::full(&[1, 2, 2], 1.0);
        let only_h = State::from_h(h.clone());
        only_h.validate_gradient("d", &layout, &[1, 2]).unwrap();
        State::<f64>::new(vec![])
            .validate_gradient("d", &layout, &[1, 2])
            .unwrap();
        // but not the initial state itself
        assert!(only_h.validate("s", &layout, &[1, 2]).is_err());
        // parts out of order or unknown are rejected
        let c = Tensor::<f64>::zeros(&[1, 2, 3]);
        let swapped = State::new(vec![("c", c), ("h", h.clone())]);
        let e = swapped
            .validate_gradient("d", &layout, &[1, 2])
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "state parts mismatch in d: expected [h, c], got [c, h]"
        );
        let e = State::from_hc(h, Tensor::zeros(&[1, 2, 2]))
            .validate_gradient("d", &layout, &[1, 2])
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "shape mismatch in d: expected [1, 2, 3], got [1, 2, 2]"
        );
    }

    #[test]
    fn packing_leaves_missing_parts_alone() {
        let layout = lstm_layout();
        let h = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[1, 2, 2]).unwrap();
        let mut rows = vec![0.0f64; 2 * 5];
        // rows are (sample 1, sample 0)
        pack_state(&State::from_h(h), &layout, 2, &mut rows, Some(&[1, 0]));
        assert_eq!(rows, [3.0, 4.0, 0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 0.0, 0.0]);
        let back = unpack_state(&rows, &layout, &[1, 2], 2, Some(&[1, 0]));
        assert_eq!(back.h().as_slice(), &[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(back.c().unwrap().as_slice(), &[0.0; 6]);
    }
}
