//! Sequence layers: [`Recurrent`] runs one cell over a whole batch of sequences; every layer
//! implements [`SequenceLayer`] so that layers compose and share gradient checking.

mod recurrent;

use core::fmt;

pub use recurrent::{Recurrent, RecurrentTrace, Stream};

use crate::cell::{State, StatePart};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::tensor::Tensor;

/// What a sequence layer's forward pass returns.
#[derive(Debug, Clone)]
pub struct SequenceOutput<T, Tr> {
    /// The output of every time step, `(T, B, D·H_out)` (`(B, T, D·H_out)` if batch-first);
    /// zero past each sequence's length.
    pub output: Tensor<T>,
    /// The final state, parts `(L·D, B, width)`, taken at each sequence's own last step.
    pub state: State<T>,
    /// What [`SequenceLayer::backward`] needs.
    pub trace: Tr,
}

/// Gradients of a loss with respect to everything a sequence layer reads.
#[derive(Debug, Clone)]
pub struct SequenceGrads<T> {
    /// `dL/d(input)`, the shape of the input; zero at padded positions.
    pub input: Tensor<T>,
    /// `dL/d(initial state)`, parts `(L·D, B, width)`.
    pub initial_state: State<T>,
    /// `dL/dθ` under the parameters' names.
    pub params: Grads<T>,
}

/// Named tensors, in the order a layer visits its parameters: the gradients of a model.
#[derive(Clone, Default, PartialEq)]
pub struct Grads<T> {
    entries: Vec<(String, Tensor<T>)>,
}

impl<T: Float> Grads<T> {
    /// No entries.
    pub fn new() -> Self {
        Grads {
            entries: Vec::new(),
        }
    }

    /// Appends an entry.
    pub fn push(&mut self, name: impl Into<String>, tensor: Tensor<T>) {
        self.entries.push((name.into(), tensor));
    }

    /// The tensor called `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor<T>> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, t)| t)
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

impl<T: fmt::Debug> fmt::Debug for Grads<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(n, t)| (n, t)))
            .finish()
    }
}

/// A layer over whole sequence batches with analytic backpropagation through time.
///
/// Forward takes `&self`: everything a call needs later lives in the returned trace, so one
/// layer can serve several threads.
pub trait SequenceLayer<T: Float>: Send + Sync {
    /// What forward keeps for backward.
    type Trace;

    /// Features per input step.
    fn input_size(&self) -> usize;

    /// Features per output step (`D·H_out`).
    fn output_size(&self) -> usize;

    /// The layout of one slot of the state, `h` first.
    fn state_parts(&self) -> Vec<StatePart>;

    /// Slots in the state (`L·D`; 1 for one [`Recurrent`]).
    fn state_slots(&self) -> usize;

    /// Whether inputs and outputs are `(B, T, F)` instead of `(T, B, F)`.
    fn batch_first(&self) -> bool;

    /// Runs the layer over `input` from `initial` (zeros if `None`); `lengths` gives each
    /// sequence's number of valid steps (PyTorch `PackedSequence` semantics).
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] or [`Error::RankMismatch`] for a wrong input or state shape,
    /// [`Error::StatePartsMismatch`] for a state without the layer's parts,
    /// [`Error::LengthCount`] / [`Error::InvalidLength`] for lengths that are not one per
    /// sample or outside `1..=T`.
    fn forward(
        &self,
        input: &Tensor<T>,
        initial: Option<&State<T>>,
        lengths: Option<&[usize]>,
    ) -> Result<SequenceOutput<T, Self::Trace>>;

    /// Backpropagates `d_output` (the gradient of the output, `None` for zero) and `d_state`
    /// (the gradient of the final state, `None` for zero) through the call that made `trace`.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if a gradient does not have the shape of what it differentiates.
    fn backward(
        &self,
        trace: &Self::Trace,
        d_output: Option<&Tensor<T>>,
        d_state: Option<&State<T>>,
    ) -> Result<SequenceGrads<T>>;

    /// Calls `f` with each parameter's PyTorch `state_dict` name and value, in `state_dict` order.
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Tensor<T>));

    /// Calls `f` with each parameter's name and a mutable reference to it.
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Tensor<T>));
}
