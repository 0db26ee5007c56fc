//! [`NetworkStream`]: step-by-step inference through every layer of a unidirectional
//! [`Network`], for online use.

use core::fmt;

use super::{Layers, Network};
use crate::cell::Cell;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::layer::ops::{concat_slots, split_state};
use crate::layer::{SequenceLayer, Stream};
use crate::state::State;
use crate::tensor::Tensor;

impl<C> Network<C> {
    /// Starts step-by-step inference over `batch` samples from `initial` (zeros if `None`),
    /// through every layer: feed one time step at a time with [`NetworkStream::step`]. As in
    /// evaluation mode, there is no dropout between the layers.
    ///
    /// Streaming `T` steps gives the outputs and final state of
    /// [`forward_with_state`](SequenceLayer::forward_with_state) over the `T` steps without lengths, bit for bit
    /// when `batch ≥ 2`. With one sample, each step's input projection is a vector loop (three
    /// times faster than a GEMM for one row) whose sums are rounded in another order than the
    /// whole sequence's GEMM, so the results agree to a few units in the last place.
    ///
    /// # Shapes
    ///
    /// `initial`: parts `(L, batch, width)`, as PyTorch's `h_0` / `c_0` (`h` has `H_out` units:
    /// the projection size of an LSTM with one).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a bidirectional network, whose reverse direction needs
    /// the whole sequence; [`Error::ShapeMismatch`] / [`Error::RankMismatch`] if a part of
    /// `initial` is not `(L, batch, width)`; [`Error::StatePartsMismatch`] if `initial` does
    /// not have the cell's parts; [`Error::SizeOverflow`] or [`Error::Allocation`] if `batch`
    /// is too large for the buffers.
    ///
    /// [`Error::ShapeMismatch`]: crate::Error::ShapeMismatch
    /// [`Error::RankMismatch`]: crate::Error::RankMismatch
    /// [`Error::StatePartsMismatch`]: crate::Error::StatePartsMismatch
    /// [`Error::SizeOverflow`]: crate::Error::SizeOverflow
    /// [`Error::Allocation`]: crate::Error::Allocation
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::rand::{rngs::StdRng, SeedableRng};
    /// use recurrent::{Lstm, LstmConfig, Mode, SequenceLayer, Tensor};
    ///
    /// let mut rng = StdRng::seed_from_u64(1);
    /// let lstm: Lstm<f64> = LstmConfig::new(2, 3).with_num_layers(2).init(&mut rng)?;
    /// let x = Tensor::randn(&[5, 4, 2], &mut rng); // T = 5, B = 4
    /// let whole = lstm.forward_with_state(&x, None, None, Mode::Eval)?;
    /// let mut stream = lstm.stream(4, None)?;
    /// for t in 0..5 {
    ///     let x_t = Tensor::from_vec(x.as_slice()[8 * t..8 * (t + 1)].to_vec(), &[4, 2])?;
    ///     let h = stream.step(&x_t)?;
    ///     assert_eq!(h.as_slice(), &whole.output.as_slice()[12 * t..12 * (t + 1)]);
    /// }
    /// assert_eq!(stream.state(), whole.state); // (2, 4, 3) for h and for c
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn stream<T: Float>(
        &self,
        batch: usize,
        initial: Option<&State<T>>,
    ) -> Result<NetworkStream<'_, C, T>>
    where
        C: Cell<T>,
    {
        let stack = match &self.layers {
            Layers::Forward(stack) => stack,
            Layers::Bidirectional(_) => {
                return Err(Error::InvalidArgument {
                    name: "network to stream",
                    reason: "a bidirectional network cannot stream step by step: its reverse \
                             direction reads each sequence from its end (run forward or infer \
                             over the whole sequence)"
                        .into(),
                });
            }
        };
        let layers = stack.layers();
        let slots = vec![1; layers.len()];
        let layout = SequenceLayer::<T>::state_parts(&layers[0]);
        let initial = split_state("initial state", initial, &layout, &slots, batch)?;
        let streams = layers
            .iter()
            .zip(&initial)
            .map(|(layer, init)| layer.stream(batch, init.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        Ok(NetworkStream { layers: streams })
    }
}

/// Step-by-step inference through every layer of a unidirectional [`Network`], keeping the
/// state between calls: for online use, where the next input is not known yet. Made by
/// [`Network::stream`].
pub struct NetworkStream<'a, C, T> {
    /// One stream per layer, first to last.
    layers: Vec<Stream<'a, C, T>>,
}

impl<C: Cell<T>, T: Float> NetworkStream<'_, C, T> {
    /// Advances one time step with `x_t` through every layer and returns the last layer's `h`.
    ///
    /// # Shapes
    ///
    /// `x_t: (B, I)`; the result: `(B, H_out)`.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if `x_t` is not `(B, I)`; the message names both shapes.
    pub fn step(&mut self, x_t: &Tensor<T>) -> Result<Tensor<T>> {
        let (first, rest) = self
            .layers
            .split_first_mut()
            .expect("a network has at least one layer");
        let mut h = first.step(x_t)?;
        for layer in rest {
            h = layer.step(&h)?;
        }
        Ok(h)
    }

    /// The current state, parts `(L, B, width)` in layer order, as PyTorch's `h_n` / `c_n`.
    pub fn state(&self) -> State<T> {
        let states: Vec<State<T>> = self.layers.iter().map(Stream::state).collect();
        concat_slots(&states)
    }

    /// Sets the state of every layer to zeros (not to the `initial` state the stream started
    /// from).
    pub fn reset(&mut self) {
        self.layers.iter_mut().for_each(Stream::reset);
    }
}

impl<C, T> fmt::Debug for NetworkStream<'_, C, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetworkStream")
            .field("layers", &self.layers)
            .finish()
    }
}
