//! How many threads the crate may use, like PyTorch's `torch.set_num_threads`.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// 0: not set, use the available cores.
static NUM_THREADS: AtomicUsize = AtomicUsize::new(0);

/// Sets how many threads the crate may use at most. With more than one, the calling thread
/// shares its work with one persistent worker thread (started on first use, spinning briefly
/// between jobs and then asleep): the per-step products of a recurrent layer are split in two
/// halves of the hidden units (and the LSTM's gate updates in two halves of the batch rows),
/// the large products over
/// all time steps in two halves of their rows, a large batch of a [`crate::Recurrent`] layer in
/// two halves run side by side, and the two directions of a [`crate::Bidirectional`] layer run
/// in parallel. The crate never uses more than the two threads: values above 2 act as 2. If two
/// threads of a program call the crate at once, the one that finds the worker busy runs alone.
/// `1` means one thread, whatever a layer's `with_parallel_threshold` says. `0` restores the
/// default, the number of available cores.
///
/// # Examples
///
/// ```
/// recurrent::set_num_threads(1); // everything on the calling thread
/// assert_eq!(recurrent::num_threads(), 1);
/// recurrent::set_num_threads(0);
/// assert!(recurrent::num_threads() >= 1);
/// ```
pub fn set_num_threads(threads: usize) {
    NUM_THREADS.store(threads, Ordering::Relaxed);
}

/// How many threads the crate may use: the value given to [`set_num_threads`], or by default
/// the number of available cores (1 if that cannot be told; asked once per process).
pub fn num_threads() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    match NUM_THREADS.load(Ordering::Relaxed) {
        0 => *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        n => n,
    }
}

thread_local! {
    /// Whether this thread runs one side of a [`join`]: its layers do not start more threads.
    static IN_JOIN: Cell<bool> = const { Cell::new(false) };
}

/// Whether a layer or product may use a second thread here: more than one thread is allowed and
/// this thread is not already one side of a [`join`] (two cores are busy then).
pub(crate) fn may_spawn() -> bool {
    num_threads() > 1 && !IN_JOIN.with(Cell::get)
}

/// Marks the current thread as one side of a [`join`] until dropped (also on a panic).
struct JoinSide(bool);

impl JoinSide {
    fn enter() -> Self {
        JoinSide(IN_JOIN.with(|c| c.replace(true)))
    }
}

impl Drop for JoinSide {
    fn drop(&mut self) {
        IN_JOIN.with(|c| c.set(self.0));
    }
}

/// Runs `a` and `b`, side by side if `parallel` (`b` on the crate's persistent worker thread,
/// unless another caller holds it), each marked so that the layers and products inside do not
/// split their work again; a panic on either side is resumed here.
pub(crate) fn join<A: Send, B: Send>(
    parallel: bool,
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    if !parallel {
        return (a(), b());
    }
    crate::linalg::join(
        || {
            let _side = JoinSide::enter();
            a()
        },
        || {
            let _side = JoinSide::enter();
            b()
        },
    )
}
