//! The forward time loop of [`Recurrent`], run two ways on the same steps: keeping every state
//! and every step's saved values for backward (`forward`), or only the current ones (`infer`,
//! which also projects the input a chunk of steps at a time).

use super::super::SequenceOutput;
use super::bptt::Plan;
use super::dropout::Masks;
use super::products::project_input;
use super::rows::{pack_rows, unpack_rows};
use super::trace::{RowsTrace, Stamp};
use super::Recurrent;
use crate::cell::{Cell, CellParams};
use crate::error::Result;
use crate::float::Float;
use crate::layer::pool::Recycler;
use crate::linalg::MatRef;
use crate::mode::Mode;
use crate::state::{pack_state, unpack_state, State};
use crate::tensor::{try_filled_vec, Tensor};

/// About this many values of input projections are kept at a time by `infer` (8 MiB of `f32`):
/// large enough that each chunk's GEMM runs at full speed and the weight is packed only a few
/// times per call, small next to the `T·B·G·H` values of a whole long sequence.
const PROJECTION_CHUNK: usize = 1 << 21;

impl<C> Recurrent<C> {
    /// The forward pass of a validated call on one thread, on the samples from `offset` on of
    /// the whole batch (which the dropout masks depend on).
    pub(crate) fn forward_planned<T: Float>(
        &self,
        plan: Plan,
        input: &Tensor<T>,
        initial: Option<&State<T>>,
        mode: Mode,
        offset: usize,
    ) -> Result<SequenceOutput<T, RowsTrace<T>>>
    where
        C: Cell<T>,
    {
        let (batch, width, rows) = (plan.layout.batch, plan.width, plan.rows);
        let mut x = pack_rows(
            &self.pool,
            input.as_slice(),
            plan.layout,
            plan.input_size,
            &plan.packing,
        )?;
        let sizes = (plan.input_size, plan.h_out);
        let masks = self
            .dropout
            .masks(mode, offset, &plan.packing, batch, sizes);
        if let Some(masks) = &masks {
            masks.apply_input(&mut x);
        }
        // every row of p is written
        let mut p = self.pool.scratch(rows * plan.gate_width)?;
        project_input(
            self.cell.params(),
            MatRef::new(&x, rows, plan.input_size),
            &mut p,
        );
        let mut states = self.pool.zeroed(plan.states_len)?;
        self.pack_initial(&plan, initial, &mut states);
        // every row of saved that is read is written first
        let mut saved = self.pool.scratch(rows * plan.saved_width)?;
        let keep = Keep::All {
            states: &mut states,
            saved: &mut saved,
        };
        let mut dropped = match &masks {
            Some(m) if m.drops_state() => Some((m, self.pool.scratch(batch * width)?)),
            _ => None,
        };
        let dropped_prev = dropped.as_mut().map(|(m, buf)| (*m, &mut buf[..]));
        run_steps(&self.cell, &plan, Projections::All(&p), keep, dropped_prev);
        self.pool.recycle(p);
        if let Some((_, buf)) = dropped {
            self.pool.recycle(buf);
        }

        let step_len = batch * width;
        let output = unpack_rows(
            &states[step_len..],
            |t, j| (t * batch + j) * width,
            plan.layout,
            plan.h_out,
            &plan.packing,
        );
        let last = &states[plan.layout.seq_len * step_len..];
        let order = plan.packing.order();
        let state = unpack_state(last, self.cell.state_parts(), &[1, batch], batch, order);
        let trace = RowsTrace {
            stamp: Stamp::of(&self.cell),
            layout: plan.layout,
            packing: plan.packing,
            x,
            states,
            saved,
            masks,
            recycler: Recycler::new(&self.pool),
        };
        Ok(SequenceOutput {
            output,
            state,
            trace,
        })
    }

    /// The forward pass of a validated call on one thread without a trace: the input is
    /// projected a chunk of steps at a time, the time loop keeps only the current state and
    /// one step's saved values, and `h` of every step goes straight into the output rows. The
    /// same steps as [`forward_planned`](Self::forward_planned) on the same values, so the same
    /// results.
    pub(crate) fn infer_planned<T: Float>(
        &self,
        plan: Plan,
        input: &Tensor<T>,
        initial: Option<&State<T>>,
    ) -> Result<SequenceOutput<T, ()>>
    where
        C: Cell<T>,
    {
        self.infer_in_chunks(plan, input, initial, PROJECTION_CHUNK)
    }

    /// [`infer_planned`](Self::infer_planned) with chunks of about `chunk` projected values.
    fn infer_in_chunks<T: Float>(
        &self,
        plan: Plan,
        input: &Tensor<T>,
        initial: Option<&State<T>>,
        chunk: usize,
    ) -> Result<SequenceOutput<T, ()>>
    where
        C: Cell<T>,
    {
        let (layout, batch, width) = (plan.layout, plan.layout.batch, plan.width);
        let identity = plan.packing.is_identity(layout);
        // time-major without lengths, the input is in packed order already: no copy
        let packed = if identity {
            None
        } else {
            let x = input.as_slice();
            Some(pack_rows(
                &self.pool,
                x,
                layout,
                plan.input_size,
                &plan.packing,
            )?)
        };
        let x = packed.as_deref().unwrap_or(input.as_slice());
        let steps = chunk_steps(chunk, layout.seq_len, batch, plan.gate_width);
        // every row of a chunk is written before it is read
        let mut p = self.pool.scratch(steps * batch * plan.gate_width)?;
        let step_len = batch * width;
        let mut states = self.pool.zeroed(2 * step_len)?;
        self.pack_initial(&plan, initial, &mut states);
        let mut saved = self.pool.scratch(batch * plan.saved_width)?;
        let h_len = plan.rows * plan.h_out;
        // the rows of h that are read are written first; time-major without lengths, they
        // are the output tensor itself
        let mut h_rows = if identity {
            try_filled_vec("recurrent output", h_len, T::zero())?
        } else {
            self.pool.scratch(h_len)?
        };
        let projections = Projections::Chunked {
            params: self.cell.params(),
            x,
            input_size: plan.input_size,
            steps,
            buffer: &mut p,
        };
        let keep = Keep::Current {
            states: &mut states,
            saved: &mut saved,
            output: &mut h_rows,
        };
        run_steps(&self.cell, &plan, projections, keep, None);
        if let Some(x) = packed {
            self.pool.recycle(x);
        }
        let output = if identity {
            Tensor::from_vec(h_rows, layout.shape(plan.h_out).dims()).expect("T·B rows of h")
        } else {
            let h_out = plan.h_out;
            let row = |t: usize, j: usize| (t * batch + j) * h_out;
            let output = unpack_rows(&h_rows, row, layout, h_out, &plan.packing);
            self.pool.recycle(h_rows);
            output
        };
        let last = &states[(layout.seq_len % 2) * step_len..][..step_len];
        let order = plan.packing.order();
        let state = unpack_state(last, self.cell.state_parts(), &[1, batch], batch, order);
        for buffer in [p, states, saved] {
            self.pool.recycle(buffer);
        }
        Ok(SequenceOutput {
            output,
            state,
            trace: (),
        })
    }

    /// Packs `initial` (if any) into the first step of `states`, which is zero.
    fn pack_initial<T: Float>(&self, plan: &Plan, initial: Option<&State<T>>, states: &mut [T])
    where
        C: Cell<T>,
    {
        if let Some(initial) = initial {
            let (batch, parts) = (plan.layout.batch, self.cell.state_parts());
            let first = &mut states[..batch * plan.width];
            pack_state(initial, parts, batch, first, plan.packing.order());
        }
    }
}

/// The steps of input projections `infer` computes at a time: about `chunk` values, at least one step, at most all of them. A GEMM of one row takes another path
/// (the row-vector loop) whose sums round differently from those of a GEMM of more rows, so
/// no chunk has a single row unless the whole call has: with one sample, chunks have two
/// steps or more, and the last chunk never has one step alone.
fn chunk_steps(chunk: usize, seq_len: usize, batch: usize, gate_width: usize) -> usize {
    let per_step = batch.saturating_mul(gate_width).max(1);
    let mut steps = (chunk / per_step).clamp(1, seq_len.max(1));
    if batch == 1 && seq_len >= 2 {
        steps = steps.max(2);
        while steps < seq_len && seq_len % steps == 1 {
            steps += 1;
        }
    }
    steps
}

/// The input projections `p_t = x_t·W_ihᵀ + b_ih` the time loop reads.
enum Projections<'a, T> {
    /// Every step's, `(T·B, G·H)`, computed before the loop.
    All(&'a [T]),
    /// Computed `steps` steps at a time from the packed input rows `x` into `buffer`.
    Chunked {
        params: &'a CellParams<T>,
        x: &'a [T],
        input_size: usize,
        steps: usize,
        buffer: &'a mut [T],
    },
}

impl<T: Float> Projections<'_, T> {
    /// The projections of step `t`, `(B, G·H)`, of a call of `plan`.
    fn step(&mut self, t: usize, plan: &Plan) -> &[T] {
        let (batch, gw) = (plan.layout.batch, plan.gate_width);
        let step_len = batch * gw;
        match self {
            Projections::All(p) => &p[t * step_len..][..step_len],
            Projections::Chunked {
                params,
                x,
                input_size,
                steps,
                buffer,
            } => {
                let at = t % *steps;
                if at == 0 {
                    // a new chunk: the rows of steps t.. up to the chunk's end
                    let rows = (*steps).min(plan.layout.seq_len - t) * batch;
                    let x = &x[t * batch * *input_size..][..rows * *input_size];
                    let x = MatRef::new(x, rows, *input_size);
                    project_input(params, x, &mut buffer[..rows * gw]);
                }
                &buffer[at * step_len..][..step_len]
            }
        }
    }
}

/// What the forward time loop keeps.
enum Keep<'a, T> {
    /// Every state, `(T + 1, B, S)`, and every step's saved values, `(T, B, saved_width)`:
    /// what backward needs.
    All {
        states: &'a mut [T],
        saved: &'a mut [T],
    },
    /// Two states `(2, B, S)` used in turn (step `t` reads slot `t mod 2`) and one step's
    /// saved values `(B, saved_width)`; `h` of every step goes to `output`, `(T, B, h_out)`.
    Current {
        states: &'a mut [T],
        saved: &'a mut [T],
        output: &'a mut [T],
    },
}

/// The buffers of one step: the previous state, the next one, the saved values, and where
/// `h` goes if it is kept apart from the states.
type StepBuffers<'b, T> = (&'b [T], &'b mut [T], &'b mut [T], Option<&'b mut [T]>);

impl<T> Keep<'_, T> {
    /// The buffers of step `t` of a call of `plan`.
    fn step(&mut self, t: usize, plan: &Plan) -> StepBuffers<'_, T> {
        let batch = plan.layout.batch;
        let (step_len, saved_len) = (batch * plan.width, batch * plan.saved_width);
        match self {
            Keep::All { states, saved } => {
                let (done, rest) = states.split_at_mut((t + 1) * step_len);
                let saved = &mut saved[t * saved_len..][..saved_len];
                (&done[t * step_len..], &mut rest[..step_len], saved, None)
            }
            Keep::Current {
                states,
                saved,
                output,
            } => {
                let (a, b) = states.split_at_mut(step_len);
                let (prev, next) = if t.is_multiple_of(2) { (a, b) } else { (b, a) };
                let h_len = batch * plan.h_out;
                let output = &mut output[t * h_len..][..h_len];
                (prev, next, &mut saved[..saved_len], Some(output))
            }
        }
    }
}

/// The forward time loop: `states[t + 1] = step(p[t], states[t])` for the samples running at
/// step `t`; finished samples keep their state. Where the projections come from and what the
/// loop keeps are `projections`' and `keep`'s choice; the steps are the same either way. With
/// `dropped` (recurrent dropout's masks and a buffer of one step's states), each step reads
/// its previous state with `h` masked, copied into the buffer; the kept states are not masked.
fn run_steps<T: Float, C: Cell<T>>(
    cell: &C,
    plan: &Plan,
    mut projections: Projections<'_, T>,
    mut keep: Keep<'_, T>,
    mut dropped: Option<(&Masks<T>, &mut [T])>,
) {
    let (width, h_out, gw) = (plan.width, plan.h_out, plan.gate_width);
    for (t, &bt) in plan.packing.batch_sizes.iter().enumerate() {
        let p = projections.step(t, plan);
        let (prev, next, saved, output) = keep.step(t, plan);
        if bt > 0 {
            let prev_read: &[T] = match &mut dropped {
                Some((masks, buf)) => {
                    let buf = &mut buf[..bt * width];
                    buf.copy_from_slice(&prev[..bt * width]);
                    masks.apply_recurrent(buf, width);
                    buf
                }
                None => &prev[..bt * width],
            };
            cell.step(
                bt,
                &p[..bt * gw],
                prev_read,
                &mut next[..bt * width],
                &mut saved[..bt * plan.saved_width],
            );
        }
        // finished samples (all of them past every sequence's end) keep their state
        next[bt * width..].copy_from_slice(&prev[bt * width..]);
        if let Some(output) = output {
            // only the running samples' h is read
            let rows = output.chunks_exact_mut(h_out).zip(next.chunks_exact(width));
            for (h, row) in rows.take(bt) {
                h.copy_from_slice(&row[..h_out]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::SequenceLayer;
    use crate::mode::Mode;

    /// No chunk has a single row unless the whole call has one.
    #[test]
    fn chunks_of_projections_never_have_one_row_alone() {
        for seq_len in 0..40 {
            for (batch, gate_width) in [(1, PROJECTION_CHUNK), (1, 1), (2, PROJECTION_CHUNK)] {
                let steps = chunk_steps(PROJECTION_CHUNK, seq_len, batch, gate_width);
                assert!(steps >= 1 && steps <= seq_len.max(1));
                if seq_len * batch >= 2 {
                    assert!(steps * batch >= 2, "T {seq_len} B {batch}: {steps}");
                    let last = seq_len % steps;
                    assert!(last == 0 || last * batch >= 2, "T {seq_len}: {steps}");
                }
            }
        }
        assert_eq!(chunk_steps(PROJECTION_CHUNK, 100, 64, 2048), 16);
        assert_eq!(chunk_steps(PROJECTION_CHUNK, 100, 32, 1024), 64);
        assert_eq!(chunk_steps(PROJECTION_CHUNK, 0, 0, 0), 1);
    }

    /// Projections computed a few steps at a time give the forward pass's results bit for
    /// bit, for every chunk size, with lengths, one sample or several.
    #[test]
    fn chunked_projections_change_nothing() {
        use crate::cell::{GruCellConfig, LstmCellConfig};
        use rand::{rngs::StdRng, SeedableRng};

        let rng = &mut StdRng::seed_from_u64(11);
        let lstm = Recurrent::new(
            LstmCellConfig::new(3, 4)
                .with_proj_size(2)
                .init::<f32>(rng)
                .unwrap(),
        );
        let gru = Recurrent::new(GruCellConfig::new(3, 4).init::<f64>(rng).unwrap())
            .with_batch_first(true);
        for (batch, lengths) in [(1, None), (1, Some(vec![7])), (3, Some(vec![7, 2, 5]))] {
            let lengths = lengths.as_deref();
            let x = Tensor::randn(&[7, batch, 3], rng);
            let full = lstm
                .forward_with_state(&x, None, lengths, Mode::Eval)
                .unwrap();
            let xb = Tensor::randn(&[batch, 7, 3], rng);
            let full_b = gru
                .forward_with_state(&xb, None, lengths, Mode::Eval)
                .unwrap();
            for steps in 1..=8 {
                let plan = lstm.plan(&x, None, lengths).unwrap();
                let out = lstm
                    .infer_in_chunks(plan, &x, None, steps * batch * 16)
                    .unwrap();
                assert_eq!(out.output, full.output, "B {batch}, {steps} steps a chunk");
                assert_eq!(out.state, full.state);
                let plan = gru.plan(&xb, None, lengths).unwrap();
                let out = gru
                    .infer_in_chunks(plan, &xb, None, steps * batch * 12)
                    .unwrap();
                assert_eq!(
                    out.output, full_b.output,
                    "B {batch}, {steps} steps a chunk"
                );
                assert_eq!(out.state, full_b.state);
            }
        }
    }
}
