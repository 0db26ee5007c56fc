//! Sequence layers: [`Recurrent`] runs one cell over a whole batch of sequences; every layer
//! implements [`SequenceLayer`] so that layers compose and share gradient checking.

mod bidirectional;
mod network;
mod ops;
mod parallel;
mod pool;
mod recurrent;
mod stacked;

pub(crate) use ops::check_lengths;
pub(crate) use recurrent::single_step;

pub use bidirectional::{Bidirectional, BidirectionalTrace};
pub use network::{
    Gru, GruConfig, LayerNormLstm, LayerNormLstmConfig, Lstm, LstmConfig, Network, NetworkStream,
    NetworkTrace, PeepholeLstm, PeepholeLstmConfig, Rnn, RnnConfig,
};
pub use recurrent::{Recurrent, RecurrentTrace, Stream};
pub use stacked::{Stacked, StackedTrace};

#[cfg(doc)]
use crate::error::Error;
use crate::error::Result;
use crate::float::Float;
use crate::mode::Mode;
use crate::params::{NamedTensors, Parameters};
use crate::state::{State, StatePart};
use crate::tensor::Tensor;

/// The direction in which a layer reads its sequences: its place in a [`Bidirectional`] pair,
/// which gives its parameters PyTorch's names (`weight_ih_l0` or `weight_ih_l0_reverse`).
///
/// # Examples
///
/// ```
/// use recurrent::{Cell, Direction, LstmConfig};
///
/// let lstm = LstmConfig::new(2, 3).with_bidirectional(true).init_seeded::<f32>(0)?;
/// assert!(lstm.cell(0, Direction::Reverse).is_some());
/// let forward_only = LstmConfig::new(2, 3).init_seeded::<f32>(0)?;
/// assert!(forward_only.cell(0, Direction::Reverse).is_none());
/// assert_eq!(forward_only.cell(0, Direction::Forward).unwrap().hidden_size(), 3);
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// First step to last: a unidirectional layer, or the first half of a bidirectional one.
    Forward,
    /// Each sequence from its own last step back to the first: the second half of a
    /// bidirectional layer, whose parameter names end in `_reverse`.
    Reverse,
}

impl Direction {
    /// What PyTorch appends to a parameter name for this direction: `""` or `"_reverse"`.
    pub(crate) fn suffix(self) -> &'static str {
        match self {
            Direction::Forward => "",
            Direction::Reverse => "_reverse",
        }
    }
}

/// What a sequence layer's forward pass returns.
#[derive(Debug, Clone)]
pub struct SequenceOutput<T, Tr> {
    /// The output of every time step, `(T, B, D·H_out)` (`(B, T, D·H_out)` if batch-first);
    /// zero past each sequence's length.
    pub output: Tensor<T>,
    /// The final state, parts `(L·D, B, width)`, taken at each sequence's own last step.
    pub state: State<T>,
    /// What [`SequenceLayer::backward_with_state`] needs.
    pub trace: Tr,
}

impl<T, Tr> SequenceOutput<T, Tr> {
    /// The output and final state, the trace dropped.
    pub(crate) fn without_trace(self) -> SequenceOutput<T, ()> {
        SequenceOutput {
            output: self.output,
            state: self.state,
            trace: (),
        }
    }
}

/// Gradients of a loss with respect to everything a sequence layer reads.
#[derive(Debug, Clone)]
pub struct SequenceGrads<T> {
    /// `dL/d(input)`, the shape of the input; zero at padded positions.
    pub input: Tensor<T>,
    /// `dL/d(initial state)`, parts `(L·D, B, width)`.
    pub initial_state: State<T>,
    /// `dL/dθ` under the parameters' names.
    pub params: NamedTensors<T>,
}

/// A layer over whole sequence batches with analytic backpropagation through time.
///
/// Forward takes `&self`: everything a call needs later lives in the returned trace, so one
/// layer can serve several threads.
pub trait SequenceLayer<T: Float>: Parameters<T> + Send + Sync {
    /// What forward keeps for backward.
    type Trace: Send + Sync;

    /// Features per input step.
    fn input_size(&self) -> usize;

    /// Features per output step (`D·H_out`).
    fn output_size(&self) -> usize;

    /// The layout of one slot of the state, `h` first.
    fn state_parts(&self) -> Vec<StatePart>;

    /// Slots in the state (`L·D`; 1 for one [`Recurrent`]).
    fn state_slots(&self) -> usize;

    /// How many directions the output's features hold, as equal blocks `[forward; reverse]`:
    /// 2 for a [`Bidirectional`] layer (and a stack ending in one), otherwise 1 (the default).
    fn directions(&self) -> usize {
        1
    }

    /// Whether inputs and outputs are `(B, T, F)` instead of `(T, B, F)`.
    fn batch_first(&self) -> bool;

    /// Runs the layer over `input` from `initial` (zeros if `None`); `lengths` gives each
    /// sequence's number of valid steps (PyTorch `PackedSequence` semantics). In
    /// [`Mode::Train`] dropout between stacked layers is active, with masks drawn from the
    /// mode's seed alone; in [`Mode::Eval`] it is off.
    ///
    /// This is the form of a forward pass that takes an initial state and returns the final
    /// one; as a [`Layer`](crate::Layer), the same layer reads a [`Sequence`](crate::Sequence)
    /// from a zero state.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] or [`Error::RankMismatch`] for a wrong input or state shape,
    /// [`Error::StatePartsMismatch`] for a state without the layer's parts,
    /// [`Error::LengthCount`] / [`Error::InvalidLength`] for lengths that are not one per
    /// sample or outside `1..=T`.
    ///
    /// [`Error::ShapeMismatch`]: crate::Error::ShapeMismatch
    /// [`Error::RankMismatch`]: crate::Error::RankMismatch
    /// [`Error::StatePartsMismatch`]: crate::Error::StatePartsMismatch
    /// [`Error::LengthCount`]: crate::Error::LengthCount
    /// [`Error::InvalidLength`]: crate::Error::InvalidLength
    fn forward_with_state(
        &self,
        input: &Tensor<T>,
        initial: Option<&State<T>>,
        lengths: Option<&[usize]>,
        mode: Mode,
    ) -> Result<SequenceOutput<T, Self::Trace>>;

    /// Runs the layer for inference, like PyTorch under `torch.no_grad()`: the output and final
    /// state of [`forward_with_state`](SequenceLayer::forward_with_state) in [`Mode::Eval`],
    /// bit for bit, without the trace that backward needs, so with less memory and time.
    ///
    /// The default runs `forward_with_state` and drops the trace; [`Recurrent`] and the combinators
    /// override it with a path that keeps only the current step, and a layer of your own
    /// with dropout or a cheaper path overrides it too.
    ///
    /// # Errors
    ///
    /// As [`forward_with_state`](SequenceLayer::forward_with_state).
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::rand::{rngs::StdRng, SeedableRng};
    /// use recurrent::{Gru, GruConfig, Mode, SequenceLayer, Tensor};
    ///
    /// let mut rng = StdRng::seed_from_u64(0);
    /// let gru: Gru<f32> = GruConfig::new(4, 8).with_num_layers(2).init(&mut rng)?;
    /// let x = Tensor::randn(&[10, 3, 4], &mut rng);
    /// let out = gru.infer_with_state(&x, None, Some(&[10, 7, 2]))?;
    /// let with_trace = gru.forward_with_state(&x, None, Some(&[10, 7, 2]), Mode::Eval)?;
    /// assert_eq!(out.output, with_trace.output);
    /// assert_eq!(out.state, with_trace.state);
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    fn infer_with_state(
        &self,
        input: &Tensor<T>,
        initial: Option<&State<T>>,
        lengths: Option<&[usize]>,
    ) -> Result<SequenceOutput<T, ()>> {
        let out = self.forward_with_state(input, initial, lengths, Mode::Eval)?;
        Ok(out.without_trace())
    }

    /// Backpropagates `d_output` (the gradient of the output, `None` for zero) and `d_state`
    /// (the gradient of the final state, `None` for zero; a part left out, such as an LSTM's
    /// `c` when the loss reads only `h_n`, counts as zero) through the call that made `trace`.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if a gradient does not have the shape of what it
    /// differentiates; [`Error::StatePartsMismatch`] if `d_state` has a part the layer does
    /// not have; [`Error::TraceMismatch`] if `trace` was made by a layer of other sizes;
    /// [`Error::StaleTrace`] if it was made by a layer of another cell or before the
    /// parameters changed (an optimiser step, a load).
    ///
    /// [`Error::ShapeMismatch`]: crate::Error::ShapeMismatch
    /// [`Error::StatePartsMismatch`]: crate::Error::StatePartsMismatch
    /// [`Error::TraceMismatch`]: crate::Error::TraceMismatch
    /// [`Error::StaleTrace`]: crate::Error::StaleTrace
    fn backward_with_state(
        &self,
        trace: &Self::Trace,
        d_output: Option<&Tensor<T>>,
        d_state: Option<&State<T>>,
    ) -> Result<SequenceGrads<T>>;

    /// Places the layer at depth `layer` of a network, reading in `direction`, so that its
    /// parameters carry PyTorch's names for that place: `weight_ih_l{layer}`, with `_reverse`
    /// appended for [`Direction::Reverse`]. [`Stacked`] and [`Bidirectional`] call it on the
    /// layers they own; the default does nothing.
    fn set_position(&mut self, layer: usize, direction: Direction) {
        let _ = (layer, direction);
    }

    /// Frees the buffers the layer keeps from earlier calls to reuse in later ones (they are
    /// bounded in any case). Combinators pass it on to the layers they own; the default does
    /// nothing.
    fn release_buffers(&self) {}
}
