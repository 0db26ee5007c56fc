//! How many threads the crate may use, like PyTorch's `torch.set_num_threads`.

use std::sync::atomic::{AtomicUsize, Ordering};

/// 0: not set, use the available cores.
static NUM_THREADS: AtomicUsize = AtomicUsize::new(0);

/// Sets how many threads the crate may use at most (for now: whether the two directions of a
/// [`crate::Bidirectional`] layer may run in parallel). `0` restores the default, the number
/// of available cores.
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
/// the number of available cores (1 if that cannot be told).
pub fn num_threads() -> usize {
    match NUM_THREADS.load(Ordering::Relaxed) {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}
