//! `Recurrent<C>`: one cell run over a batch of sequences, forward and backward through time.

use core::fmt;
use std::sync::Arc;

use super::ops::{
    check_lengths, concat_batch, concat_state_batch, sequence_dims, split_batch, split_state_batch,
};
use super::pool::{Pool, Recycler};
use super::{SequenceGrads, SequenceLayer, SequenceOutput};
use crate::cell::{
    accumulate_param_grads, check_trace, input_grad, pack_state, project_input, state_width,
    unpack_state, Cell, State, StatePart,
};
#[cfg(doc)]
use crate::error::Error;
use crate::error::{check_shape, Result, Shape};
use crate::float::Float;
use crate::params::{Grads, Parameters};
use crate::tensor::{MatMut, MatRef, Tensor};
use crate::threads::{join, may_spawn};

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
/// use rand::{rngs::StdRng, SeedableRng};
/// use recurrent::{GruCellConfig, Recurrent, Tensor};
///
/// let mut rng = StdRng::seed_from_u64(7);
/// let gru = Recurrent::new(GruCellConfig::new(4, 8).init::<f32, _>(&mut rng));
/// let x = Tensor::randn(&[10, 3, 4], &mut rng); // T = 10, B = 3, I = 4
/// let out = gru.forward(&x, None, Some(&[10, 6, 2]))?;
/// assert_eq!(out.output.shape(), &[10, 3, 8]);
/// assert_eq!(out.output.at(&[9, 2, 0]), 0.0); // past the third sequence's length
/// let grads = gru.backward(&out.trace, Some(&out.output), None)?;
/// assert_eq!(grads.params.get("weight_hh_l0").unwrap().shape(), &[24, 8]);
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Clone)]
pub struct Recurrent<C> {
    cell: C,
    batch_first: bool,
    name_suffix: String,
    /// Work (`T·B·(I + H_out)·H_out`) from which a call splits its batch over two threads.
    parallel_threshold: usize,
    /// Buffers of earlier calls, reused by later ones (shared by clones).
    pool: Arc<Pool>,
}

/// The default of [`Recurrent::with_parallel_threshold`].
const PARALLEL_THRESHOLD: usize = 1 << 25;

impl<C: PartialEq> PartialEq for Recurrent<C> {
    fn eq(&self, other: &Self) -> bool {
        self.cell == other.cell
            && self.batch_first == other.batch_first
            && self.name_suffix == other.name_suffix
            && self.parallel_threshold == other.parallel_threshold
    }
}

/// What [`Recurrent::forward`] keeps for [`Recurrent::backward`].
///
/// Rows are in the order of decreasing sequence length (the order PyTorch packs them), so
/// that the samples still running at step `t` are a prefix of the batch.
#[derive(Clone)]
pub struct RecurrentTrace<T> {
    seq_len: usize,
    batch: usize,
    /// Input rows `(T·B, I)` in packed order, zero past each length.
    x: Vec<T>,
    /// States `(T + 1, B, S)` in packed order; a finished sample's state is carried forward.
    states: Vec<T>,
    /// What the cell saved, `(T, B, saved_width)`.
    saved: Vec<T>,
    /// `order[j]` is the sample at packed row `j`; `None` when no lengths were given.
    order: Option<Vec<usize>>,
    /// Samples still running at each step.
    batch_sizes: Vec<usize>,
    /// Gives `x`, `states` and `saved` back to the layer's pool when the trace is dropped.
    recycler: Recycler<T>,
    /// When the call split its batch over two threads: the traces of the first `split_at`
    /// samples and of the rest (and the buffers above are empty).
    halves: Option<Box<[RecurrentTrace<T>; 2]>>,
    split_at: usize,
}

impl<T> Drop for RecurrentTrace<T> {
    fn drop(&mut self) {
        for buffer in [&mut self.x, &mut self.states, &mut self.saved] {
            self.recycler.recycle(core::mem::take(buffer));
        }
    }
}

impl<T> fmt::Debug for RecurrentTrace<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecurrentTrace")
            .field("seq_len", &self.seq_len)
            .field("batch", &self.batch)
            .field("batch_sizes", &self.batch_sizes)
            .finish_non_exhaustive()
    }
}

impl<C> Recurrent<C> {
    /// A layer running `cell` over time-major sequences.
    pub fn new(cell: C) -> Self {
        Recurrent {
            cell,
            batch_first: false,
            name_suffix: "_l0".to_string(),
            parallel_threshold: PARALLEL_THRESHOLD,
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
    /// halves run on two threads (if [`crate::set_num_threads`] allows more than one, and the
    /// layer is not already running beside another, as one direction of a parallel
    /// [`crate::Bidirectional`]). `0` always splits a batch of two or more (even on one core,
    /// and whatever [`crate::set_num_threads`] says), `usize::MAX` never. A split call keeps
    /// copies of the halves of its input and gradients: the peak memory of a large training
    /// step is about 1.2× that of an unsplit one.
    /// The default, 2²⁵, leaves the small workload of `cargo run --release --example compare`
    /// (T50 B16 I64 H128, work 2·10⁷) on one thread, where halves of 8 samples gain nothing (an
    /// LSTM 5%, a vanilla RNN loses 10%), and splits the medium one (4·10⁸), where two threads
    /// are 1.35× (LSTM) to 1.6× (GRU) faster on a two-core machine.
    #[must_use = "returns a new layer and does not modify self"]
    pub fn with_parallel_threshold(self, work: usize) -> Self {
        Recurrent {
            parallel_threshold: work,
            ..self
        }
    }

    /// The cell.
    pub fn cell(&self) -> &C {
        &self.cell
    }

    /// The cell, mutably (for example to update its parameters).
    pub fn cell_mut(&mut self) -> &mut C {
        &mut self.cell
    }
}

/// Validates `lengths` against the batch and returns `(order, batch_sizes)`.
fn pack_lengths(
    lengths: Option<&[usize]>,
    seq_len: usize,
    batch: usize,
) -> Result<(Option<Vec<usize>>, Vec<usize>)> {
    check_lengths(lengths, seq_len, batch)?;
    let Some(lengths) = lengths else {
        return Ok((None, vec![batch; seq_len]));
    };
    let mut order: Vec<usize> = (0..batch).collect();
    order.sort_by_key(|&b| core::cmp::Reverse(lengths[b]));
    let batch_sizes = (0..seq_len)
        .map(|t| lengths.iter().filter(|&&l| l > t).count())
        .collect();
    Ok((Some(order), batch_sizes))
}

impl<C> Recurrent<C> {
    /// The row of step `t` of sample `b` in a sequence tensor of this layer's layout.
    fn row_index(&self, t: usize, b: usize, seq_len: usize, batch: usize) -> usize {
        if self.batch_first {
            b * seq_len + t
        } else {
            t * batch + b
        }
    }

    /// Packed rows `(T·B, width)` from a sequence tensor in this layer's layout: row `t·B + j`
    /// is step `t` of sample `order[j]` while it runs, and zero after its end.
    fn pack_rows<T: Float>(
        &self,
        src: &[T],
        (seq_len, batch, width): (usize, usize, usize),
        order: Option<&[usize]>,
        batch_sizes: &[usize],
    ) -> Vec<T> {
        if order.is_none() && !self.batch_first {
            let mut rows = self.pool.scratch(src.len());
            rows.copy_from_slice(src);
            return rows;
        }
        let mut rows = self.pool.zeroed(seq_len * batch * width);
        for (t, &bt) in batch_sizes.iter().enumerate() {
            for j in 0..bt {
                let b = order.map_or(j, |o| o[j]);
                let from = self.row_index(t, b, seq_len, batch) * width;
                rows[(t * batch + j) * width..][..width].copy_from_slice(&src[from..][..width]);
            }
        }
        rows
    }

    /// The inverse of [`pack_rows`](Recurrent::pack_rows): a sequence tensor in this layer's
    /// layout whose step `t` of the sample at packed row `j` is `src[row(t, j)..][..width]`,
    /// zero after the sample's end.
    fn unpack_rows<T: Float>(
        &self,
        src: &[T],
        row: impl Fn(usize, usize) -> usize,
        (seq_len, batch, width): (usize, usize, usize),
        order: Option<&[usize]>,
        batch_sizes: &[usize],
    ) -> Tensor<T> {
        let mut out = vec![T::zero(); seq_len * batch * width];
        for (t, &bt) in batch_sizes.iter().enumerate() {
            for j in 0..bt {
                let b = order.map_or(j, |o| o[j]);
                let to = self.row_index(t, b, seq_len, batch) * width;
                out[to..][..width].copy_from_slice(&src[row(t, j)..][..width]);
            }
        }
        let dims = self.sequence_shape(seq_len, batch, width);
        Tensor::from_vec(out, dims.dims()).expect("the sequence buffer matches its shape")
    }
}

impl<C> Recurrent<C> {
    /// Runs the cell over `input`; see [`SequenceLayer::forward`].
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
    /// use rand::{rngs::StdRng, SeedableRng};
    /// use recurrent::{LstmCellConfig, Recurrent, State, Tensor};
    ///
    /// let mut rng = StdRng::seed_from_u64(0);
    /// let lstm = Recurrent::new(LstmCellConfig::new(3, 2).init::<f64, _>(&mut rng));
    /// let x = Tensor::randn(&[4, 2, 3], &mut rng);
    /// let h0 = State::from_hc(Tensor::full(&[1, 2, 2], 0.1), Tensor::zeros(&[1, 2, 2]));
    /// let out = lstm.forward(&x, Some(&h0), Some(&[4, 2]))?;
    /// // the second sequence's final state is its output at its last step, t = 1
    /// assert_eq!(out.state.h().at(&[0, 1, 0]), out.output.at(&[1, 1, 0]));
    /// assert_eq!(out.output.at(&[2, 1, 0]), 0.0);
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn forward<T: Float>(
        &self,
        input: &Tensor<T>,
        initial: Option<&State<T>>,
        lengths: Option<&[usize]>,
    ) -> Result<SequenceOutput<T, RecurrentTrace<T>>>
    where
        C: Cell<T>,
    {
        let cell = &self.cell;
        cell.validate_params()?;
        let in_size = cell.input_size();
        let (seq_len, batch) = sequence_dims("recurrent input", input, in_size, self.batch_first)?;
        let Some(at) = self.split_point::<T>(seq_len, batch) else {
            return self.forward_rows(input, initial, lengths);
        };
        check_lengths(lengths, seq_len, batch)?;
        if let Some(initial) = initial {
            initial.validate("initial state", &cell.state_parts(), &[1, batch])?;
        }
        let axis = self.batch_axis();
        let (x_a, x_b) = split_batch(input, at, axis);
        let (init_a, init_b) = initial.map(|s| split_state_batch(s, at)).unzip();
        let (len_a, len_b) = lengths.map(|l| l.split_at(at)).unzip();
        let (a, b) = join(
            true,
            || self.forward_rows(&x_a, init_a.as_ref(), len_a),
            || self.forward_rows(&x_b, init_b.as_ref(), len_b),
        );
        let (a, b) = (a?, b?);
        Ok(SequenceOutput {
            output: concat_batch(&a.output, &b.output, axis),
            state: concat_state_batch(&a.state, &b.state),
            trace: RecurrentTrace {
                seq_len,
                batch,
                x: Vec::new(),
                states: Vec::new(),
                saved: Vec::new(),
                order: None,
                batch_sizes: Vec::new(),
                recycler: Recycler::new(&self.pool),
                halves: Some(Box::new([a.trace, b.trace])),
                split_at: at,
            },
        })
    }

    /// Where to split a batch over two threads, if this call should: at half the batch, when
    /// there are two samples or more, the work reaches the threshold and a thread may start.
    fn split_point<T: Float>(&self, seq_len: usize, batch: usize) -> Option<usize>
    where
        C: Cell<T>,
    {
        let (i, h) = (self.cell.input_size(), self.cell.output_size());
        let work = (seq_len * batch).saturating_mul(i + h).saturating_mul(h);
        let worth = self.parallel_threshold == 0 || work >= self.parallel_threshold && may_spawn();
        // an empty input (no step or no feature) is not worth a thread either
        (batch >= 2 && seq_len > 0 && i > 0 && worth).then_some(batch / 2)
    }

    /// The axis of the batch in sequence tensors: 1 time-major, 0 batch-first.
    fn batch_axis(&self) -> usize {
        usize::from(!self.batch_first)
    }

    /// [`forward`](Recurrent::forward) on one thread.
    fn forward_rows<T: Float>(
        &self,
        input: &Tensor<T>,
        initial: Option<&State<T>>,
        lengths: Option<&[usize]>,
    ) -> Result<SequenceOutput<T, RecurrentTrace<T>>>
    where
        C: Cell<T>,
    {
        let cell = &self.cell;
        cell.validate_params()?;
        let in_size = cell.input_size();
        let (seq_len, batch) = sequence_dims("recurrent input", input, in_size, self.batch_first)?;
        let (order, batch_sizes) = pack_lengths(lengths, seq_len, batch)?;
        let layout = cell.state_parts();
        if let Some(initial) = initial {
            initial.validate("initial state", &layout, &[1, batch])?;
        }
        let (width, h_out, gw, sw) = (
            state_width(&layout),
            layout[0].size,
            cell.gate_width(),
            cell.saved_width(),
        );
        let rows = seq_len * batch;

        let dims = (seq_len, batch, in_size);
        let x = self.pack_rows(input.as_slice(), dims, order.as_deref(), &batch_sizes);

        let mut states = self.pool.zeroed((seq_len + 1) * batch * width);
        if let Some(initial) = initial {
            pack_state(
                initial,
                &layout,
                batch,
                &mut states[..batch * width],
                order.as_deref(),
            );
        }
        // every row of p and saved that is read is written first
        let mut p = self.pool.scratch(rows * gw);
        project_input(cell.params(), MatRef::new(&x, rows, in_size), &mut p);
        let mut saved = self.pool.scratch(rows * sw);
        let step_len = batch * width;
        for (t, &bt) in batch_sizes.iter().enumerate() {
            let (done, rest) = states.split_at_mut((t + 1) * step_len);
            let prev = &done[t * step_len..];
            let next = &mut rest[..step_len];
            if bt == 0 {
                // past every sequence's end: nothing runs
                next.copy_from_slice(prev);
                continue;
            }
            cell.step(
                bt,
                &p[t * batch * gw..][..bt * gw],
                &prev[..bt * width],
                &mut next[..bt * width],
                &mut saved[t * batch * sw..][..bt * sw],
            );
            // finished samples keep their state
            next[bt * width..].copy_from_slice(&prev[bt * width..]);
        }

        let output = self.unpack_rows(
            &states[step_len..],
            |t, j| (t * batch + j) * width,
            (seq_len, batch, h_out),
            order.as_deref(),
            &batch_sizes,
        );
        let state = unpack_state(
            &states[seq_len * step_len..],
            &layout,
            &[1, batch],
            batch,
            order.as_deref(),
        );
        self.pool.recycle(p);
        let trace = RecurrentTrace {
            seq_len,
            batch,
            x,
            states,
            saved,
            order,
            batch_sizes,
            recycler: Recycler::new(&self.pool),
            halves: None,
            split_at: 0,
        };
        Ok(SequenceOutput {
            output,
            state,
            trace,
        })
    }

    /// Backpropagation through time for the call that made `trace`; see
    /// [`SequenceLayer::backward`].
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
    /// [`Error::TraceMismatch`] if `trace` was made by a layer of other sizes. The parameters
    /// must not change between `forward` and `backward`: the gradients are those of the
    /// current parameters.
    ///
    /// # Examples
    ///
    /// ```
    /// use rand::{rngs::StdRng, SeedableRng};
    /// use recurrent::{RnnCellConfig, Recurrent, State, Tensor};
    ///
    /// let mut rng = StdRng::seed_from_u64(0);
    /// let rnn = Recurrent::new(RnnCellConfig::new(3, 2).init::<f64, _>(&mut rng));
    /// let x = Tensor::randn(&[4, 2, 3], &mut rng);
    /// let out = rnn.forward(&x, None, Some(&[4, 2]))?;
    /// // L = Σ h_n: only the final state carries gradient
    /// let d_state = State::from_h(Tensor::full(&[1, 2, 2], 1.0));
    /// let grads = rnn.backward(&out.trace, None, Some(&d_state))?;
    /// assert_eq!(grads.input.at(&[3, 1, 0]), 0.0); // past the second sequence's end
    /// assert_eq!(grads.params.len(), 4);
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn backward<T: Float>(
        &self,
        trace: &RecurrentTrace<T>,
        d_output: Option<&Tensor<T>>,
        d_state: Option<&State<T>>,
    ) -> Result<SequenceGrads<T>>
    where
        C: Cell<T>,
    {
        let Some(halves) = &trace.halves else {
            return self.backward_rows(trace, d_output, d_state);
        };
        let (seq_len, batch, at) = (trace.seq_len, trace.batch, trace.split_at);
        let layout = self.cell.state_parts();
        if let Some(d) = d_output {
            let expected = self.sequence_shape(seq_len, batch, layout[0].size);
            check_shape("output gradient", expected, d.raw_shape())?;
        }
        if let Some(d_state) = d_state {
            d_state.validate("final state gradient", &layout, &[1, batch])?;
        }
        let axis = self.batch_axis();
        let (d_out_a, d_out_b) = d_output.map(|d| split_batch(d, at, axis)).unzip();
        let (d_state_a, d_state_b) = d_state.map(|s| split_state_batch(s, at)).unzip();
        let (a, b) = join(
            may_spawn(),
            || self.backward_rows(&halves[0], d_out_a.as_ref(), d_state_a.as_ref()),
            || self.backward_rows(&halves[1], d_out_b.as_ref(), d_state_b.as_ref()),
        );
        let (a, mut b) = (a?, b?);
        // the parameters' gradients are sums over the samples
        for ((_, total), (_, part)) in b.params.iter_mut().zip(a.params.iter()) {
            total
                .as_mut_slice()
                .iter_mut()
                .zip(part.as_slice())
                .for_each(|(t, &p)| *t = *t + p);
        }
        Ok(SequenceGrads {
            input: concat_batch(&a.input, &b.input, axis),
            initial_state: concat_state_batch(&a.initial_state, &b.initial_state),
            params: b.params,
        })
    }

    /// [`backward`](Recurrent::backward) of an unsplit trace, on one thread.
    fn backward_rows<T: Float>(
        &self,
        trace: &RecurrentTrace<T>,
        d_output: Option<&Tensor<T>>,
        d_state: Option<&State<T>>,
    ) -> Result<SequenceGrads<T>>
    where
        C: Cell<T>,
    {
        let cell = &self.cell;
        let (seq_len, batch) = (trace.seq_len, trace.batch);
        let layout = cell.state_parts();
        let (width, h_out, gw, sw) = (
            state_width(&layout),
            layout[0].size,
            cell.gate_width(),
            cell.saved_width(),
        );
        let in_size = cell.input_size();
        let rows = seq_len * batch;
        let order = trace.order.as_deref();
        cell.validate_params()?;
        check_trace(&[
            ("input size", in_size, trace.x.len(), rows),
            ("state width", width, trace.states.len(), rows + batch),
            ("saved width", sw, trace.saved.len(), rows),
        ])?;

        if let Some(d) = d_output {
            let expected = self.sequence_shape(seq_len, batch, h_out);
            check_shape("output gradient", expected, d.raw_shape())?;
        }
        let mut d_next = vec![T::zero(); batch * width];
        if let Some(d_state) = d_state {
            d_state.validate("final state gradient", &layout, &[1, batch])?;
            pack_state(d_state, &layout, batch, &mut d_next, order);
        }

        let mut d_prev = vec![T::zero(); batch * width];
        // zero: the rows of finished samples stay zero and enter the weight gradients
        let mut d_p = self.pool.zeroed(rows * gw);
        let separate = cell.separate_hidden_grad();
        let mut d_hp = self.pool.zeroed(if separate { rows * gw } else { 0 });
        let mut param_grads = cell.params().zeros_like();
        let step_len = batch * width;
        for (t, &bt) in trace.batch_sizes.iter().enumerate().rev() {
            if bt == 0 {
                continue; // past every sequence's end: the state passes through
            }
            if let Some(d_out) = d_output {
                for j in 0..bt {
                    let b = order.map_or(j, |o| o[j]);
                    let row = self.row_index(t, b, seq_len, batch);
                    let src = &d_out.as_slice()[row * h_out..][..h_out];
                    d_next[j * width..][..h_out]
                        .iter_mut()
                        .zip(src)
                        .for_each(|(d, &s)| *d = *d + s);
                }
            }
            let d_hp_t: &mut [T] = if separate {
                &mut d_hp[t * batch * gw..][..bt * gw]
            } else {
                &mut []
            };
            cell.step_backward(
                bt,
                &trace.saved[t * batch * sw..][..bt * sw],
                &trace.states[t * step_len..][..bt * width],
                &trace.states[(t + 1) * step_len..][..bt * width],
                &d_next[..bt * width],
                &mut d_p[t * batch * gw..][..bt * gw],
                d_hp_t,
                &mut d_prev[..bt * width],
                &mut param_grads,
            );
            // a finished sample's state passes through unchanged
            d_prev[bt * width..].copy_from_slice(&d_next[bt * width..]);
            core::mem::swap(&mut d_next, &mut d_prev);
        }
        let initial_state = unpack_state(&d_next, &layout, &[1, batch], batch, order);

        let x = MatRef::new(&trace.x, rows, in_size);
        let h_prev = MatRef::strided(&trace.states, rows, h_out, width, 1);
        accumulate_param_grads(
            cell.params(),
            &mut param_grads,
            x,
            &d_p,
            h_prev,
            if separate { &d_hp } else { &d_p },
        );
        let mut d_x = self.pool.scratch(rows * in_size);
        input_grad(cell.params(), &d_p, MatMut::new(&mut d_x, rows, in_size));
        let input = if order.is_none() && !self.batch_first {
            // time-major without lengths: the packed rows are the input's layout already
            Tensor::from_vec(d_x, &[seq_len, batch, in_size]).expect("T·B rows of I")
        } else {
            let input = self.unpack_rows(
                &d_x,
                |t, j| (t * batch + j) * in_size,
                (seq_len, batch, in_size),
                order,
                &trace.batch_sizes,
            );
            self.pool.recycle(d_x);
            input
        };
        for buffer in [d_p, d_hp] {
            self.pool.recycle(buffer);
        }
        let mut params = Grads::new();
        param_grads.visit(|name, t| params.push(format!("{name}{}", self.name_suffix), t.clone()));
        Ok(SequenceGrads {
            input,
            initial_state,
            params,
        })
    }

    fn sequence_shape(&self, seq_len: usize, batch: usize, f: usize) -> Shape {
        if self.batch_first {
            Shape::from([batch, seq_len, f])
        } else {
            Shape::from([seq_len, batch, f])
        }
    }

    /// Starts step-by-step inference over `batch` samples from `initial` (zeros if `None`):
    /// feed one time step at a time with [`Stream::step`].
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if a part of `initial` is not `(1, batch, width)` or a
    /// parameter does not have the shape the cell's sizes imply;
    /// [`Error::StatePartsMismatch`] if `initial` does not have the cell's parts.
    ///
    /// # Examples
    ///
    /// ```
    /// use rand::{rngs::StdRng, SeedableRng};
    /// use recurrent::{LstmCellConfig, Recurrent, Tensor};
    ///
    /// let mut rng = StdRng::seed_from_u64(1);
    /// let lstm = Recurrent::new(LstmCellConfig::new(2, 3).init::<f64, _>(&mut rng));
    /// let x = Tensor::randn(&[5, 1, 2], &mut rng);
    /// let whole = lstm.forward(&x, None, None)?;
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
        let layout = self.cell.state_parts();
        let width = state_width(&layout);
        let mut state = vec![T::zero(); batch * width];
        if let Some(initial) = initial {
            initial.validate("initial state", &layout, &[1, batch])?;
            pack_state(initial, &layout, batch, &mut state, None);
        }
        Ok(Stream {
            cell: &self.cell,
            batch,
            next: state.clone(),
            state,
            p: vec![T::zero(); batch * self.cell.gate_width()],
            saved: vec![T::zero(); batch * self.cell.saved_width()],
            layout,
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
        self.cell.state_parts()
    }

    fn state_slots(&self) -> usize {
        1
    }

    fn batch_first(&self) -> bool {
        self.batch_first
    }

    fn forward(
        &self,
        input: &Tensor<T>,
        initial: Option<&State<T>>,
        lengths: Option<&[usize]>,
    ) -> Result<SequenceOutput<T, Self::Trace>> {
        Recurrent::forward(self, input, initial, lengths)
    }

    fn backward(
        &self,
        trace: &Self::Trace,
        d_output: Option<&Tensor<T>>,
        d_state: Option<&State<T>>,
    ) -> Result<SequenceGrads<T>> {
        Recurrent::backward(self, trace, d_output, d_state)
    }

    fn set_position(&mut self, layer: usize, reverse: bool) {
        let direction = if reverse { "_reverse" } else { "" };
        self.name_suffix = format!("_l{layer}{direction}");
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
            .finish()
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
        project_input(self.cell.params(), x_t.as_mat(), &mut self.p);
        self.cell.step(
            self.batch,
            &self.p,
            &self.state,
            &mut self.next,
            &mut self.saved,
        );
        core::mem::swap(&mut self.state, &mut self.next);
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
