//! When a sequence layer uses a second thread, and the one way it splits a batch over two.
//!
//! One [`ParallelPolicy`] serves [`crate::Recurrent`] (which splits a large batch in halves)
//! and [`crate::Bidirectional`] (which runs its two directions side by side): a second thread
//! is used only when [`crate::set_num_threads`] allows more than one, the calling thread is
//! not already one side of a split, and the work reaches the layer's threshold.

use super::ops::{concat_batch, concat_state_batch, split_batch, split_state_batch};
use super::recurrent::rows::SeqLayout;
use super::{SequenceGrads, SequenceOutput};
use crate::error::Result;
use crate::float::Float;
use crate::state::State;
use crate::tensor::Tensor;
use crate::threads::{join, may_spawn};

/// The work of a layer call in the unit the thresholds use: `T·B·(I + H)·H`, proportional to
/// its floating-point operations (saturating instead of overflowing).
pub(crate) fn work(seq_len: usize, batch: usize, input_size: usize, hidden: usize) -> usize {
    seq_len
        .saturating_mul(batch)
        .saturating_mul(input_size.saturating_add(hidden))
        .saturating_mul(hidden)
}

/// From how much work a layer runs on two threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ParallelPolicy {
    threshold: usize,
}

impl ParallelPolicy {
    /// Two threads from `threshold` units of [`work`] (`0`: whenever two threads are allowed;
    /// `usize::MAX`: never).
    pub(crate) const fn new(threshold: usize) -> Self {
        ParallelPolicy { threshold }
    }

    /// The threshold.
    pub(crate) fn threshold(&self) -> usize {
        self.threshold
    }

    /// Whether a call with this much work takes a second thread. `set_num_threads(1)` always
    /// means no: no threshold overrides it.
    pub(crate) fn allows(&self, work: usize) -> bool {
        self.threshold != usize::MAX && work >= self.threshold && may_spawn()
    }
}

/// The trace of a call that may have split its batch in two halves run side by side.
#[derive(Debug, Clone)]
pub(crate) enum SplitTrace<Tr> {
    /// The whole batch on one thread.
    Whole(Tr),
    /// The first `at` samples and the rest, each with its own trace.
    Split {
        /// The first sample of the second half.
        at: usize,
        /// The traces of the two halves.
        halves: Box<[Tr; 2]>,
    },
}

/// Runs `run` on the two halves of the batch (samples `..at` and `at..`) on two threads, and
/// joins their outputs and final states. `run` also receives the index of its half's first
/// sample in the whole batch. `input`, `initial` and `lengths` must be validated.
pub(crate) fn forward_split<T: Float, Tr: Send>(
    layout: SeqLayout,
    at: usize,
    input: &Tensor<T>,
    initial: Option<&State<T>>,
    lengths: Option<&[usize]>,
    run: impl Fn(&Tensor<T>, Option<&State<T>>, Option<&[usize]>, usize) -> Result<SequenceOutput<T, Tr>>
        + Sync,
) -> Result<SequenceOutput<T, SplitTrace<Tr>>> {
    let axis = layout.batch_axis();
    let (x_a, x_b) = split_batch(input, at, axis);
    let (init_a, init_b) = initial.map(|s| split_state_batch(s, at)).unzip();
    let (len_a, len_b) = lengths.map(|l| l.split_at(at)).unzip();
    let (a, b) = join(
        true,
        || run(&x_a, init_a.as_ref(), len_a, 0),
        || run(&x_b, init_b.as_ref(), len_b, at),
    );
    let (a, b) = (a?, b?);
    Ok(SequenceOutput {
        output: concat_batch(&a.output, &b.output, axis),
        state: concat_state_batch(&a.state, &b.state),
        trace: SplitTrace::Split {
            at,
            halves: Box::new([a.trace, b.trace]),
        },
    })
}

/// The backward pass of [`forward_split`]: `run` on each half with its share of the (validated)
/// gradients, on two threads if allowed; parameter gradients are summed over the halves.
pub(crate) fn backward_split<T: Float, Tr: Sync>(
    layout: SeqLayout,
    at: usize,
    halves: &[Tr; 2],
    d_output: Option<&Tensor<T>>,
    d_state: Option<&State<T>>,
    run: impl Fn(&Tr, Option<&Tensor<T>>, Option<&State<T>>) -> Result<SequenceGrads<T>> + Sync,
) -> Result<SequenceGrads<T>> {
    let axis = layout.batch_axis();
    let (d_out_a, d_out_b) = d_output.map(|d| split_batch(d, at, axis)).unzip();
    let (d_state_a, d_state_b) = d_state.map(|s| split_state_batch(s, at)).unzip();
    let (a, b) = join(
        may_spawn(),
        || run(&halves[0], d_out_a.as_ref(), d_state_a.as_ref()),
        || run(&halves[1], d_out_b.as_ref(), d_state_b.as_ref()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_thread_always_means_one_thread() {
        // the process-wide setting is shared by the tests of this binary: restore it
        let _setting = crate::test_util::THREAD_SETTING.lock();
        let before = crate::threads::num_threads();
        crate::set_num_threads(1);
        let never = ParallelPolicy::new(0).allows(usize::MAX);
        crate::set_num_threads(2);
        let zero = ParallelPolicy::new(0).allows(0);
        let below = ParallelPolicy::new(100).allows(99);
        let off = ParallelPolicy::new(usize::MAX).allows(usize::MAX);
        crate::set_num_threads(before);
        assert!(!never);
        assert!(zero);
        assert!(!below);
        assert!(!off);
        assert_eq!(work(usize::MAX, 2, 3, 4), usize::MAX);
        assert_eq!(work(10, 2, 3, 4), 10 * 2 * 7 * 4);
    }
}
