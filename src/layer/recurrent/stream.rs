//! [`Stream`]: step-by-step inference with a [`Recurrent`] layer, for online use.

use core::fmt;

use super::products::project_input;
use super::Recurrent;
use crate::cell::Cell;
#[cfg(doc)]
use crate::error::Error;
use crate::error::{check_shape, Result};
use crate::float::Float;
use crate::state::{pack_state, state_width, unpack_state, State, StatePart};
use crate::tensor::{checked_size, try_filled_vec, Shape, Tensor};

impl<C> Recurrent<C> {
    /// Starts step-by-step inference over `batch` samples from `initial` (zeros if `None`):
    /// feed one time step at a time with [`Stream::step`].
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if a part of `initial` is not `(1, batch, width)` or a
    /// parameter does not have the shape the cell's sizes imply;
    /// [`Error::StatePartsMismatch`] if `initial` does not have the cell's parts;
    /// [`Error::SizeOverflow`] or [`Error::Allocation`] if `batch` is too large for the
    /// buffers.
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::rand::{rngs::StdRng, SeedableRng};
    /// use recurrent::{LstmCellConfig, Mode, Recurrent, SequenceLayer, Tensor};
    ///
    /// let mut rng = StdRng::seed_from_u64(1);
    /// let lstm = Recurrent::new(LstmCellConfig::new(2, 3).init::<f64>(&mut rng)?);
    /// let x = Tensor::randn(&[5, 1, 2], &mut rng);
    /// let whole = lstm.forward_with_state(&x, None, None, Mode::Eval)?;
    /// let mut stream = lstm.stream(1, None)?;
    /// for t in 0..5 {
    ///     let x_t = Tensor::from_vec(x.as_slice()[2 * t..2 * t + 2].to_vec(), &[1, 2])?;
    ///     let h = stream.step(&x_t)?;
    ///     let expected = Tensor::from_vec(whole.output.as_slice()[3 * t..3 * t + 3].to_vec(), &[1, 3])?;
    ///     assert!(h.max_abs_diff(&expected)? < 1e-15); // the same up to rounding
    /// }
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn stream<T: Float>(
        &self,
        batch: usize,
        initial: Option<&State<T>>,
    ) -> Result<Stream<'_, C, T>>
    where
        C: Cell<T>,
    {
        self.cell.validate_params()?;
        let layout = self.cell.state_parts().to_vec();
        let width = state_width(&layout);
        if let Some(initial) = initial {
            initial.validate("initial state", &layout, &[1, batch])?;
        }
        let buffer =
            |what, width| try_filled_vec(what, checked_size(what, &[batch, width])?, T::zero());
        let mut state = buffer("stream state", width)?;
        if let Some(initial) = initial {
            pack_state(initial, &layout, batch, &mut state, None);
        }
        Ok(Stream {
            cell: &self.cell,
            batch,
            next: buffer("stream state", width)?,
            state,
            p: buffer("stream gates", self.cell.gate_width())?,
            saved: buffer("stream saved values", self.cell.saved_width())?,
            layout,
        })
    }
}

/// Step-by-step inference with a [`Recurrent`] layer, keeping the state between calls: for
/// online use, where the next input is not known yet. Made by [`Recurrent::stream`].
///
/// Buffers are allocated once; [`step`](Stream::step) only allocates the returned `h`.
pub struct Stream<'a, C, T> {
    cell: &'a C,
    batch: usize,
    state: Vec<T>,
    next: Vec<T>,
    p: Vec<T>,
    saved: Vec<T>,
    layout: Vec<StatePart>,
}

impl<C: Cell<T>, T: Float> Stream<'_, C, T> {
    /// Advances one time step with `x_t` of shape `(B, I)` and returns `h`, `(B, H)`.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if `x_t` is not `(B, I)`.
    pub fn step(&mut self, x_t: &Tensor<T>) -> Result<Tensor<T>> {
        check_shape(
            "stream input",
            Shape::from([self.batch, self.cell.input_size()]),
            x_t.raw_shape(),
        )?;
        if self.batch > 0 {
            // a cell never sees an empty batch
            project_input(self.cell.params(), x_t.as_mat(), &mut self.p);
            let (p, state, next) = (&self.p, &self.state, &mut self.next);
            self.cell.step(self.batch, p, state, next, &mut self.saved);
            core::mem::swap(&mut self.state, &mut self.next);
        }
        let (width, h_out) = (state_width(&self.layout), self.layout[0].size);
        let h = self
            .state
            .chunks_exact(width)
            .flat_map(|row| &row[..h_out])
            .copied()
            .collect();
        Ok(Tensor::from_vec(h, &[self.batch, h_out]).expect("h matches its shape"))
    }

    /// The current state, parts `(1, B, width)`.
    pub fn state(&self) -> State<T> {
        unpack_state(
            &self.state,
            &self.layout,
            &[1, self.batch],
            self.batch,
            None,
        )
    }

    /// Sets the state to zeros (not to the `initial` state the stream started from).
    pub fn reset(&mut self) {
        self.state.fill(T::zero());
    }
}

impl<C, T> fmt::Debug for Stream<'_, C, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream")
            .field("batch", &self.batch)
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}
