//! Validation of a call of [`Recurrent`] into a [`Plan`], and backpropagation through time
//! (the forward time loop is in `forward`). The loops run on validated buffers.

use super::super::SequenceGrads;
use super::products::{accumulate_param_grads, input_grad};
use super::rows::{unpack_rows, Packing, SeqLayout};
use super::trace::{RowsTrace, Stamp};
use super::Recurrent;
use crate::cell::{BackwardStep, Cell, CellParams};
use crate::error::{check_shape, Result};
use crate::float::Float;
use crate::layer::ops::sequence_dims;
use crate::linalg::{MatMut, MatRef};
use crate::params::NamedTensors;
use crate::state::{pack_state, state_width, unpack_state, State};
use crate::tensor::{checked_size, Tensor};

/// A validated call: its layout, the packed order of its samples, and the cell's widths.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) layout: SeqLayout,
    pub(crate) packing: Packing,
    pub(super) input_size: usize,
    /// Values per packed state row (all parts side by side).
    pub(super) width: usize,
    /// Width of `h`, the output.
    pub(super) h_out: usize,
    pub(super) gate_width: usize,
    pub(super) saved_width: usize,
    /// Packed rows of the whole call, `T·B`.
    pub(super) rows: usize,
    /// Values in the states of every step, `(T + 1)·B·S`.
    pub(super) states_len: usize,
}

impl<C> Recurrent<C> {
    /// Validates a forward call (the input's shape, the lengths, the initial state and the size
    /// of every buffer) for a cell whose parameters the caller has checked.
    pub(crate) fn plan<T: Float>(
        &self,
        input: &Tensor<T>,
        initial: Option<&State<T>>,
        lengths: Option<&[usize]>,
    ) -> Result<Plan>
    where
        C: Cell<T>,
    {
        let cell = &self.cell;
        let input_size = cell.input_size();
        let layout = self.batch_first;
        let (seq_len, batch) = sequence_dims("recurrent input", input, input_size, layout)?;
        let parts = cell.state_parts();
        if let Some(initial) = initial {
            initial.validate("initial state", parts, &[1, batch])?;
        }
        // every buffer's size, checked once: an input with no feature can have any T and B
        let width = state_width(parts);
        let (gate_width, saved_width) = (cell.gate_width(), cell.saved_width());
        let rows = checked_size("recurrent rows", &[seq_len, batch])?;
        let steps = seq_len.saturating_add(1);
        let states_len = checked_size("recurrent states", &[steps, batch, width])?;
        checked_size("recurrent gates", &[rows, gate_width.max(saved_width)])?;
        checked_size(
            "recurrent input rows",
            &[rows, input_size.max(parts[0].size)],
        )?;
        let packing = Packing::new(lengths, seq_len, batch)?;
        Ok(Plan {
            layout: SeqLayout {
                seq_len,
                batch,
                batch_first: self.batch_first,
            },
            packing,
            input_size,
            width,
            h_out: parts[0].size,
            gate_width,
            saved_width,
            rows,
            states_len,
        })
    }

    /// Backpropagation through time for a trace of one thread, whose stamp is checked against
    /// `now` (the layer's).
    pub(crate) fn backward_rows<T: Float>(
        &self,
        trace: &RowsTrace<T>,
        now: &Stamp,
        d_output: Option<&Tensor<T>>,
        d_state: Option<&State<T>>,
    ) -> Result<SequenceGrads<T>>
    where
        C: Cell<T>,
    {
        trace.stamp.check(now)?;
        let cell = &self.cell;
        let parts = cell.state_parts();
        let (layout, width, h_out) = (trace.layout, state_width(parts), parts[0].size);
        let (batch, rows) = (layout.batch, layout.seq_len * layout.batch);
        if let Some(d) = d_output {
            check_shape("output gradient", layout.shape(h_out), d.raw_shape())?;
        }
        let order = trace.packing.order();
        let mut d_state_rows = vec![T::zero(); batch * width];
        if let Some(d_state) = d_state {
            d_state.validate_gradient("final state gradient", parts, &[1, batch])?;
            pack_state(d_state, parts, batch, &mut d_state_rows, order);
        }

        let gw = cell.gate_width();
        // zero: the rows of finished samples stay zero and enter the weight gradients
        let mut d_p = self.pool.zeroed(rows * gw)?;
        let separate = cell.separate_hidden_grad();
        let mut d_hp = self.pool.zeroed(if separate { rows * gw } else { 0 })?;
        let mut param_grads = cell.params().zeros_like();
        let d_initial = backward_steps(
            cell,
            trace,
            d_output,
            d_state_rows,
            (&mut d_p, &mut d_hp),
            &mut param_grads,
        );
        let initial_state = unpack_state(&d_initial, parts, &[1, batch], batch, order);

        let x = MatRef::new(&trace.x, rows, cell.input_size());
        // with recurrent dropout, W_hh multiplied the masked h: dW_hh = Σ d_hpᵀ·(m ⊙ h_prev)
        let dropped_h = match &trace.masks {
            Some(masks) if masks.drops_state() => {
                let mut h = self.pool.scratch(rows * h_out)?;
                let states = trace.states.chunks_exact(width);
                for (row, state) in h.chunks_exact_mut(h_out).zip(states) {
                    row.copy_from_slice(&state[..h_out]);
                }
                masks.apply_recurrent(&mut h, h_out);
                h
            }
            _ => Vec::new(),
        };
        let h_prev = if dropped_h.is_empty() {
            MatRef::strided(&trace.states, rows, h_out, width, 1)
        } else {
            MatRef::new(&dropped_h, rows, h_out)
        };
        let d_hp_or_p = if separate { &d_hp } else { &d_p };
        accumulate_param_grads(cell.params(), &mut param_grads, x, &d_p, h_prev, d_hp_or_p);
        let input = self.input_gradient(cell.params(), &d_p, trace)?;
        for buffer in [d_p, d_hp, dropped_h] {
            self.pool.recycle(buffer);
        }
        let mut params = NamedTensors::new();
        param_grads.visit(|name, t| params.push(format!("{name}{}", self.name_suffix), t.clone()));
        Ok(SequenceGrads {
            input,
            initial_state,
            params,
        })
    }

    /// `d_x = d_p·W_ih` in one GEMM, in the layer's layout.
    fn input_gradient<T: Float>(
        &self,
        params: &CellParams<T>,
        d_p: &[T],
        trace: &RowsTrace<T>,
    ) -> Result<Tensor<T>> {
        let (layout, input_size) = (trace.layout, params.weight_ih().shape()[1]);
        let (rows, batch) = (layout.seq_len * layout.batch, layout.batch);
        let mut d_x = self.pool.scratch(rows * input_size)?;
        input_grad(params, d_p, MatMut::new(&mut d_x, rows, input_size));
        if let Some(masks) = &trace.masks {
            masks.apply_input(&mut d_x);
        }
        if trace.packing.is_identity(layout) {
            // time-major without lengths: the packed rows are the input's layout already
            let dims = [layout.seq_len, batch, input_size];
            return Ok(Tensor::from_vec(d_x, &dims).expect("T·B rows of I"));
        }
        let row = |t: usize, j: usize| (t * batch + j) * input_size;
        let input = unpack_rows(&d_x, row, layout, input_size, &trace.packing);
        self.pool.recycle(d_x);
        Ok(input)
    }
}

/// The backward time loop: from the gradient of the final state (`d_next`, packed rows), each
/// step in reverse adds the output gradient of that step and asks the cell for the gradients
/// of `p`, the hidden projection and the previous state. With recurrent dropout the cell sees
/// the previous state it read in forward (`h` masked), and the gradient of that `h` is masked
/// on its way back. Returns the gradient of the initial state, in packed rows.
fn backward_steps<T: Float, C: Cell<T>>(
    cell: &C,
    trace: &RowsTrace<T>,
    d_output: Option<&Tensor<T>>,
    mut d_next: Vec<T>,
    (d_p, d_hp): (&mut [T], &mut [T]),
    grads: &mut CellParams<T>,
) -> Vec<T> {
    let (layout, parts) = (trace.layout, cell.state_parts());
    let (batch, width, h_out) = (layout.batch, state_width(parts), parts[0].size);
    let (gw, sw, step_len) = (cell.gate_width(), cell.saved_width(), batch * width);
    let separate = cell.separate_hidden_grad();
    let mut d_prev = vec![T::zero(); step_len];
    let masks = trace.masks.as_ref().filter(|m| m.drops_state());
    let mut dropped_prev = vec![T::zero(); if masks.is_some() { step_len } else { 0 }];
    for (t, &bt) in trace.packing.batch_sizes.iter().enumerate().rev() {
        if bt == 0 {
            continue; // past every sequence's end: the state passes through
        }
        if let Some(d_out) = d_output {
            add_output_gradient(d_out.as_slice(), trace, t, bt, h_out, &mut d_next, width);
        }
        let d_hp_t: &mut [T] = if separate {
            &mut d_hp[t * batch * gw..][..bt * gw]
        } else {
            &mut []
        };
        let prev = &trace.states[t * step_len..][..bt * width];
        let prev = match masks {
            Some(masks) => {
                let buf = &mut dropped_prev[..bt * width];
                buf.copy_from_slice(prev);
                masks.apply_recurrent(buf, width);
                buf
            }
            None => prev,
        };
        let step = BackwardStep {
            batch: bt,
            saved: &trace.saved[t * batch * sw..][..bt * sw],
            prev,
            next: &trace.states[(t + 1) * step_len..][..bt * width],
            d_next: &d_next[..bt * width],
            d_p: &mut d_p[t * batch * gw..][..bt * gw],
            d_hp: d_hp_t,
            d_prev: &mut d_prev[..bt * width],
        };
        cell.step_backward(step, grads);
        if let Some(masks) = masks {
            masks.apply_recurrent(&mut d_prev[..bt * width], width);
        }
        // a finished sample's state passes through unchanged
        d_prev[bt * width..].copy_from_slice(&d_next[bt * width..]);
        core::mem::swap(&mut d_next, &mut d_prev);
    }
    d_next
}

/// Adds the output gradient of step `t` to the `h` columns of the running samples' rows.
fn add_output_gradient<T: Float>(
    d_out: &[T],
    trace: &RowsTrace<T>,
    t: usize,
    running: usize,
    h_out: usize,
    d_next: &mut [T],
    width: usize,
) {
    for j in 0..running {
        let b = trace.packing.sample(j);
        let src = &d_out[trace.layout.row(t, b) * h_out..][..h_out];
        d_next[j * width..][..h_out]
            .iter_mut()
            .zip(src)
            .for_each(|(d, &s)| *d = *d + s);
    }
}
