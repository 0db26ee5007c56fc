//! `Recurrent<C>`: one cell run over a batch of sequences, forward and backward through time.
//!
//! This file holds the type, its builder and its entry points; `bptt` the validation of a call
//! and backpropagation through time, `forward` the forward time loop (with a trace or without),
//! `products` the GEMMs over all steps, `rows` the packing of sequences into rows, `trace` what
//! forward keeps for backward, `stream` step-by-step inference and `single_step` one cell step
//! outside a sequence.

mod bptt;
mod dropout;
mod forward;
mod products;
pub(crate) mod rows;
pub(crate) mod single_step;
mod stream;
mod trace;

use core::fmt;
use std::sync::Arc;

pub use stream::Stream;
pub use trace::RecurrentTrace;

use super::parallel::{backward_split, forward_split, work, ParallelPolicy, SplitTrace};
use super::pool::Pool;
use super::{Direction, SequenceGrads, SequenceLayer, SequenceOutput};
use crate::cell::Cell;
#[cfg(doc)]
use crate::error::Error;
use crate::error::{check_shape, Result};
use crate::float::Float;
use crate::mode::Mode;
use crate::params::Parameters;
use crate::state::{State, StatePart};
use crate::tensor::Tensor;
use bptt::Plan;
use dropout::VariationalDropout;
use trace::Stamp;

/// One recurrent layer in one direction: a [`Cell`] run over every time step of a batch.
///
/// The input projection `x_t·W_ihᵀ + b_ih` of all time steps is one GEMM before the time loop;
/// inside it, the cell does one recurrent GEMM per step and its fused non-linearities. In
/// backward, `dW_ih`, `dW_hh` and the input gradient are one GEMM each after the loop.
///
/// Parameters are named as in PyTorch's `nn.LSTM` / `nn.GRU` / `nn.RNN` with one layer:
/// `weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`.
///
/// # Shapes
///
/// - input: `(T, B, I)`, or `(B, T, I)` with [`with_batch_first`](Recurrent::with_batch_first)
/// - output: `(T, B, H)` (or `(B, T, H)`), zero past each sequence's length
/// - states (initial and final): each part `(1, B, width)`, as PyTorch's `h_0` / `c_0`
///
/// # Examples
///
/// ```
/// use recurrent::rand::{rngs::StdRng, SeedableRng};
/// use recurrent::{GruCellConfig, Mode, Recurrent, SequenceLayer, Tensor};
///
/// let mut rng = StdRng::seed_from_u64(7);
/// let gru = Recurrent::new(GruCellConfig::new(4, 8).init::<f32>(&mut rng)?);
/// let x = Tensor::randn(&[10, 3, 4], &mut rng); // T = 10, B = 3, I = 4
/// let out = gru.forward_with_state(&x, None, Some(&[10, 6, 2]), Mode::Eval)?;
/// assert_eq!(out.output.shape(), &[10, 3, 8]);
/// assert_eq!(out.output.at(&[9, 2, 0]), 0.0); // past the third sequence's length
/// let grads = gru.backward_with_state(&out.trace, Some(&out.output), None)?;
/// assert_eq!(grads.params.get("weight_hh_l0").unwrap().shape(), &[24, 8]);
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Clone)]
pub struct Recurrent<C> {
    cell: C,
    batch_first: bool,
    name_suffix: String,
    /// When a call splits its batch over two threads.
    parallel: ParallelPolicy,
    /// Variational dropout in training mode.
    dropout: VariationalDropout,
    /// Buffers of earlier calls, reused by later ones (shared by clones).
    pool: Arc<Pool>,
}

/// The default of [`Recurrent::with_parallel_threshold`] (see the README's performance
/// section for the measurements behind it).
const PARALLEL_THRESHOLD: usize = 1 << 25;

impl<C: PartialEq> PartialEq for Recurrent<C> {
    fn eq(&self, other: &Self) -> bool {
        self.cell == other.cell
            && self.batch_first == other.batch_first
            && self.name_suffix == other.name_suffix
            && self.parallel == other.parallel
            && self.dropout == other.dropout
    }
}

impl<C> Recurrent<C> {
    /// A layer running `cell` over time-major sequences.
    pub fn new(cell: C) -> Self {
        Recurrent {
            cell,
            batch_first: false,
            name_suffix: "_l0".to_string(),
            parallel: ParallelPolicy::new(PARALLEL_THRESHOLD),
            dropout: VariationalDropout::default(),
            pool: Arc::default(),
        }
    }

    /// Whether inputs and outputs are `(B, T, F)` (PyTorch's `batch_first=True`). States stay
    /// `(1, B, H)`, as in PyTorch. Defaults to `false`.
    #[must_use = "returns a new layer and does not modify self"]
    pub fn with_batch_first(self, batch_first: bool) -> Self {
        Recurrent {
            batch_first,
            ..self
        }
    }

    /// The amount of work, `T·B·(I + H_out)·H_out`, from which a call splits its batch in two
    /// halves run on two threads, when [`crate::set_num_threads`] allows more than one and the
    /// layer is not already running beside another (as one direction of a parallel
    /// [`crate::Bidirectional`]). `0` splits every batch of two or more samples that may use
    /// two threads; `usize::MAX` never splits; with `set_num_threads(1)` nothing is split,
    /// whatever the threshold. A split call keeps copies of the halves of its input and
    /// gradients, so it needs more memory. Defaults to 2²⁵, measured on a two-core machine
    /// (see the README).
    #[must_use = "returns a new layer and does not modify self"]
    pub fn with_parallel_threshold(self, work: usize) -> Self {
        Recurrent {
            parallel: ParallelPolicy::new(work),
            ..self
        }
    }

    /// Variational dropout (Gal & Ghahramani, 2016) with probability `input` on the input and
    /// `recurrent` on the recurrent state, in [`Mode::Train`] only: each sequence draws one
    /// mask for its input features and one for its `h` units, and keeps them for every time
    /// step (ordinary dropout draws a new mask at every step, which disrupts the recurrence).
    /// Kept values are scaled by `1/(1 − p)`, so evaluation needs no rescaling.
    ///
    /// - The input mask multiplies `x_t` before the input projection.
    /// - The recurrent mask multiplies the `h` part of the previous state where the step reads
    ///   it; other state parts (an LSTM's `c`) are not dropped. In RNN and LSTM cells (plain,
    ///   peephole and layer-normalised) `h` enters a step only through `h·W_hhᵀ`, so this is
    ///   Gal & Ghahramani's recurrent dropout exactly. In a GRU, `h` also enters the update
    ///   `h' = (1 − z) ⊙ n + z ⊙ h`, which then reads the masked `h` too (dropout on the state
    ///   itself, Moon et al. 2015): a dropped unit carries no memory across steps, so keep the
    ///   GRU's `recurrent` probability small.
    /// - The masks are drawn from the mode's seed and the sample's index in the batch, and
    ///   nothing else: a sample's masks do not depend on the other samples, on its length or
    ///   on how the batch is split over threads. Padded steps are never read, so they need no
    ///   mask. The layers of a [`crate::Stacked`] and the directions of a
    ///   [`crate::Bidirectional`] each run in a mode of their own
    ///   ([`Mode::for_layer`]), so they draw independent masks.
    ///
    /// Both default to 0. [`infer_with_state`](SequenceLayer::infer_with_state) and
    /// [`Mode::Eval`] never drop.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if a probability is outside `[0, 1)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::rand::{rngs::StdRng, SeedableRng};
    /// use recurrent::{LstmCellConfig, Mode, Recurrent, SequenceLayer, Tensor};
    ///
    /// let mut rng = StdRng::seed_from_u64(0);
    /// let lstm = Recurrent::new(LstmCellConfig::new(3, 8).init::<f64>(&mut rng)?)
    ///     .with_variational_dropout(0.2, 0.3)?;
    /// let x = Tensor::randn(&[5, 2, 3], &mut rng);
    /// let a = lstm.forward_with_state(&x, None, None, Mode::Train { seed: 1 })?;
    /// let b = lstm.forward_with_state(&x, None, None, Mode::Train { seed: 1 })?;
    /// assert_eq!(a.output, b.output); // the masks are the seed's
    /// let eval = lstm.forward_with_state(&x, None, None, Mode::Eval)?;
    /// assert_ne!(a.output, eval.output);
    /// assert!(Recurrent::new(LstmCellConfig::new(3, 8).init::<f64>(&mut rng)?)
    ///     .with_variational_dropout(1.0, 0.0)
    ///     .is_err());
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn with_variational_dropout(self, input: f64, recurrent: f64) -> Result<Self> {
        Ok(Recurrent {
            dropout: VariationalDropout::new(input, recurrent)?,
            ..self
        })
    }

    /// The probabilities of the variational dropout, `(input, recurrent)`; see
    /// [`with_variational_dropout`](Recurrent::with_variational_dropout).
    pub fn variational_dropout(&self) -> (f64, f64) {
        (self.dropout.input, self.dropout.recurrent)
    }

    /// The cell.
    pub fn cell(&self) -> &C {
        &self.cell
    }

    /// The cell, mutably (for example to update its parameters; traces made before then are
    /// refused by [`backward_with_state`](SequenceLayer::backward_with_state)).
    pub fn cell_mut(&mut self) -> &mut C {
        &mut self.cell
    }

    /// Frees the buffers this layer (and its clones) keep from earlier calls for later ones.
    /// The pool is bounded in any case; this gives its memory back now, for example after
    /// training, before a long idle time.
    pub fn release_buffers(&self) {
        self.pool.release();
    }
}

impl<C> Recurrent<C> {
    /// The forward pass; see the [`SequenceLayer`] implementation.
    fn forward_inner<T: Float>(
        &self,
        input: &Tensor<T>,
        initial: Option<&State<T>>,
        lengths: Option<&[usize]>,
        mode: Mode,
    ) -> Result<SequenceOutput<T, RecurrentTrace<T>>>
    where
        C: Cell<T>,
    {
        let out = self.run_planned(input, initial, lengths, |plan, x, init, offset| {
            self.forward_planned(plan, x, init, mode, offset)
        })?;
        Ok(SequenceOutput {
            output: out.output,
            state: out.state,
            trace: RecurrentTrace(out.trace),
        })
    }

    /// The forward pass without a trace; see the [`SequenceLayer`] implementation.
    fn infer_inner<T: Float>(
        &self,
        input: &Tensor<T>,
        initial: Option<&State<T>>,
        lengths: Option<&[usize]>,
    ) -> Result<SequenceOutput<T, ()>>
    where
        C: Cell<T>,
    {
        let out = self.run_planned(input, initial, lengths, |plan, x, init, _| {
            self.infer_planned(plan, x, init)
        })?;
        Ok(out.without_trace())
    }

    /// Validates a call once, then runs `run` on its plan: on the whole batch, or on each half
    /// of it on two threads when [`split_point`](Self::split_point) says so. `run` also
    /// receives the index of its first sample in the whole batch.
    fn run_planned<T: Float, Tr: Send>(
        &self,
        input: &Tensor<T>,
        initial: Option<&State<T>>,
        lengths: Option<&[usize]>,
        run: impl Fn(Plan, &Tensor<T>, Option<&State<T>>, usize) -> Result<SequenceOutput<T, Tr>> + Sync,
    ) -> Result<SequenceOutput<T, SplitTrace<Tr>>>
    where
        C: Cell<T>,
    {
        // once per call, not once per half
        self.cell.validate_params()?;
        let plan = self.plan(input, initial, lengths)?;
        let layout = plan.layout;
        let Some(at) = self.split_point::<T>(layout.seq_len, layout.batch) else {
            let out = run(plan, input, initial, 0)?;
            return Ok(SequenceOutput {
                output: out.output,
                state: out.state,
                trace: SplitTrace::Whole(out.trace),
            });
        };
        forward_split(
            layout,
            at,
            input,
            initial,
            lengths,
            |x, init, len, offset| run(self.plan(x, init, len)?, x, init, offset),
        )
    }

    /// Where to split a batch over two threads, if this call should: at half the batch, when
    /// there are two samples or more, some work, and the policy allows it.
    fn split_point<T: Float>(&self, seq_len: usize, batch: usize) -> Option<usize>
    where
        C: Cell<T>,
    {
        let (i, h) = (self.cell.input_size(), self.cell.output_size());
        let worth = self.parallel.allows(work(seq_len, batch, i, h));
        // an empty input (no step or no feature) is not worth a thread either
        (batch >= 2 && seq_len > 0 && i > 0 && worth).then_some(batch / 2)
    }

    /// Backpropagation through time; see the [`SequenceLayer`] implementation.
    fn backward_inner<T: Float>(
        &self,
        trace: &RecurrentTrace<T>,
        d_output: Option<&Tensor<T>>,
        d_state: Option<&State<T>>,
    ) -> Result<SequenceGrads<T>>
    where
        C: Cell<T>,
    {
        self.cell.validate_params()?;
        let now = Stamp::of(&self.cell);
        let (at, halves) = match &trace.0 {
            SplitTrace::Whole(t) => return self.backward_rows(t, &now, d_output, d_state),
            SplitTrace::Split { at, halves } => (*at, halves),
        };
        // the whole call's layout, to check the gradients before they are split
        let mut layout = halves[0].layout;
        layout.batch += halves[1].layout.batch;
        let parts = self.cell.state_parts();
        if let Some(d) = d_output {
            check_shape(
                "output gradient",
                layout.shape(parts[0].size),
                d.raw_shape(),
            )?;
        }
        if let Some(d_state) = d_state {
            d_state.validate_gradient("final state gradient", parts, &[1, layout.batch])?;
        }
        backward_split(layout, at, halves, d_output, d_state, |t, d, s| {
            self.backward_rows(t, &now, d, s)
        })
    }
}

impl<T: Float, C: Cell<T>> SequenceLayer<T> for Recurrent<C> {
    type Trace = RecurrentTrace<T>;

    fn input_size(&self) -> usize {
        self.cell.input_size()
    }

    fn output_size(&self) -> usize {
        self.cell.output_size()
    }

    fn state_parts(&self) -> Vec<StatePart> {
        self.cell.state_parts().to_vec()
    }

    fn state_slots(&self) -> usize {
        1
    }

    fn batch_first(&self) -> bool {
        self.batch_first
    }

    /// Runs the cell over `input`; see [`SequenceLayer::forward_with_state`]. In
    /// [`Mode::Train`] the layer's [variational dropout](Recurrent::with_variational_dropout),
    /// if any, drops with masks drawn from the mode's seed; in [`Mode::Eval`] nothing is dropped.
    ///
    /// # Shapes
    ///
    /// `input: (T, B, I)`; `initial` and the returned state: parts `(1, B, width)`;
    /// `output: (T, B, H)`. `lengths`: `B` values in `1..=T`, in batch order (not sorted).
    ///
    /// # Errors
    ///
    /// [`Error::RankMismatch`] / [`Error::ShapeMismatch`] for a wrong input or state shape
    /// (the message names the expected and the actual shape), [`Error::StatePartsMismatch`]
    /// for an initial state without the cell's parts, [`Error::LengthCount`] /
    /// [`Error::InvalidLength`] for lengths that are not one per sample or outside `1..=T`.
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::rand::{rngs::StdRng, SeedableRng};
    /// use recurrent::{LstmCellConfig, Mode, Recurrent, SequenceLayer, State, Tensor};
    ///
    /// let mut rng = StdRng::seed_from_u64(0);
    /// let lstm = Recurrent::new(LstmCellConfig::new(3, 2).init::<f64>(&mut rng)?);
    /// let x = Tensor::randn(&[4, 2, 3], &mut rng);
    /// let h0 = State::from_hc(Tensor::full(&[1, 2, 2], 0.1), Tensor::zeros(&[1, 2, 2]));
    /// let out = lstm.forward_with_state(&x, Some(&h0), Some(&[4, 2]), Mode::Eval)?;
    /// // the second sequence's final state is its output at its last step, t = 1
    /// assert_eq!(out.state.h().at(&[0, 1, 0]), out.output.at(&[1, 1, 0]));
    /// assert_eq!(out.output.at(&[2, 1, 0]), 0.0);
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    fn forward_with_state(
        &self,
        input: &Tensor<T>,
        initial: Option<&State<T>>,
        lengths: Option<&[usize]>,
        mode: Mode,
    ) -> Result<SequenceOutput<T, Self::Trace>> {
        self.forward_inner(input, initial, lengths, mode)
    }

    /// Runs the cell over `input` without keeping a trace; see [`SequenceLayer::infer_with_state`]. The
    /// time loop keeps the current state and one step's gate activations instead of every
    /// step's, and the input is not copied (time-major without lengths); the batch is split
    /// over two threads exactly when [`forward_with_state`](SequenceLayer::forward_with_state) splits it, and the output
    /// and final state are `forward`'s, bit for bit.
    ///
    /// # Shapes
    ///
    /// As [`forward_with_state`](SequenceLayer::forward_with_state).
    ///
    /// # Errors
    ///
    /// As [`forward_with_state`](SequenceLayer::forward_with_state).
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::rand::{rngs::StdRng, SeedableRng};
    /// use recurrent::{LstmCellConfig, Mode, Recurrent, SequenceLayer, Tensor};
    ///
    /// let mut rng = StdRng::seed_from_u64(0);
    /// let lstm = Recurrent::new(LstmCellConfig::new(3, 2).init::<f64>(&mut rng)?);
    /// let x = Tensor::randn(&[4, 2, 3], &mut rng);
    /// let out = lstm.infer_with_state(&x, None, Some(&[4, 2]))?;
    /// assert_eq!(out.output, lstm.forward_with_state(&x, None, Some(&[4, 2]), Mode::Eval)?.output);
    /// assert_eq!(out.output.at(&[2, 1, 0]), 0.0); // past the second sequence's end
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    fn infer_with_state(
        &self,
        input: &Tensor<T>,
        initial: Option<&State<T>>,
        lengths: Option<&[usize]>,
    ) -> Result<SequenceOutput<T, ()>> {
        self.infer_inner(input, initial, lengths)
    }

    /// Backpropagation through time for the call that made `trace`; see
    /// [`SequenceLayer::backward_with_state`].
    ///
    /// # Shapes
    ///
    /// `d_output`: the output's shape; `d_state`: parts `(1, B, width)`. The returned input
    /// gradient has the input's shape and is zero at padded positions.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if a gradient's shape differs from that of what it
    /// differentiates, or a parameter's from what the cell's sizes imply;
    /// [`Error::StatePartsMismatch`] if `d_state` does not have the cell's parts;
    /// [`Error::TraceMismatch`] if `trace` was made by a layer of other sizes;
    /// [`Error::StaleTrace`] if it was made by a layer of another cell, or if the parameters
    /// changed since (an optimiser step or a load): run forward again. A part of `d_state`
    /// left out (an LSTM's `c` when the loss reads only `h_n`) counts as zero.
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::rand::{rngs::StdRng, SeedableRng};
    /// use recurrent::{Mode, RnnCellConfig, Recurrent, SequenceLayer, State, Tensor};
    ///
    /// let mut rng = StdRng::seed_from_u64(0);
    /// let rnn = Recurrent::new(RnnCellConfig::new(3, 2).init::<f64>(&mut rng)?);
    /// let x = Tensor::randn(&[4, 2, 3], &mut rng);
    /// let out = rnn.forward_with_state(&x, None, Some(&[4, 2]), Mode::Eval)?;
    /// // L = Σ h_n: only the final state carries gradient
    /// let d_state = State::from_h(Tensor::full(&[1, 2, 2], 1.0));
    /// let grads = rnn.backward_with_state(&out.trace, None, Some(&d_state))?;
    /// assert_eq!(grads.input.at(&[3, 1, 0]), 0.0); // past the second sequence's end
    /// assert_eq!(grads.params.len(), 4);
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    fn backward_with_state(
        &self,
        trace: &Self::Trace,
        d_output: Option<&Tensor<T>>,
        d_state: Option<&State<T>>,
    ) -> Result<SequenceGrads<T>> {
        self.backward_inner(trace, d_output, d_state)
    }

    fn set_position(&mut self, layer: usize, direction: Direction) {
        self.name_suffix = format!("_l{layer}{}", direction.suffix());
    }

    fn release_buffers(&self) {
        Recurrent::release_buffers(self);
    }
}

impl<T: Float, C: Cell<T>> Parameters<T> for Recurrent<C> {
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Tensor<T>)) {
        self.cell
            .params()
            .visit(|name, t| f(&format!("{name}{}", self.name_suffix), t));
    }

    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Tensor<T>)) {
        let suffix = &self.name_suffix;
        self.cell
            .params_mut()
            .visit_mut(|name, t| f(&format!("{name}{suffix}"), t));
    }
}

impl<C: fmt::Display> fmt::Display for Recurrent<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Recurrent {{ cell: {}, batch_first: {} }}",
            self.cell, self.batch_first
        )
    }
}

impl<C: fmt::Debug> fmt::Debug for Recurrent<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recurrent")
            .field("cell", &self.cell)
            .field("batch_first", &self.batch_first)
            .field("name_suffix", &self.name_suffix)
            .field("parallel_threshold", &self.parallel.threshold())
            .field("variational_dropout", &self.variational_dropout())
            .finish()
    }
}
