//! One persistent worker thread that runs half of a split product (or of a layer) while the
//! calling thread runs the other half: [`join`].
//!
//! A time loop splits its product at every step, hundreds of times a second per layer, so
//! handing over the half must cost far less than a thread spawn or a futex wake: the worker
//! spins on an atomic counter between jobs, and sleeps (parked) only after about a
//! millisecond without one. The caller spins for the worker's half in the same way. One job
//! is in flight at a time: a [`join`] that finds the worker taken (by another thread, or nested
//! in a half) runs both halves itself.
//!
//! The job borrows from the caller's stack. That is sound for the reason scoped threads are:
//! [`join`] does not return, nor unwind, before the worker has finished with the job.

#![allow(unsafe_code)]

use std::cell::Cell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// A job as the worker holds it: its lifetime erased by [`join`], which outlives its use.
type Job = &'static (dyn Fn() + Sync);

/// How long the worker spins for the next job before it parks.
const SPIN: Duration = Duration::from_millis(1);

/// The shared state of the worker thread.
struct Worker {
    /// The worker's handle, to unpark it.
    thread: Thread,
    /// Held by the one caller whose job is in flight.
    taken: AtomicBool,
    /// The job of the latest post.
    job: Mutex<Option<Job>>,
    /// Jobs posted so far.
    posted: AtomicU64,
    /// Jobs finished so far.
    done: AtomicU64,
    /// Whether the worker is parked, or about to park.
    parked: AtomicBool,
}

thread_local! {
    /// Whether this thread is the worker (a nested [`join`] there runs both halves).
    static IS_WORKER: Cell<bool> = const { Cell::new(false) };
}

/// The worker, started on first use; `None` if no thread could be started.
fn worker() -> Option<&'static Worker> {
    static WORKER: OnceLock<Option<&'static Worker>> = OnceLock::new();
    *WORKER.get_or_init(|| {
        let (send, receive) = std::sync::mpsc::channel::<&'static Worker>();
        let handle = thread::Builder::new()
            .name("recurrent-worker".into())
            .spawn(move || {
                if let Ok(worker) = receive.recv() {
                    worker.serve();
                }
            })
            .ok()?;
        // lives as long as the process, like the thread that serves it
        let worker: &'static Worker = Box::leak(Box::new(Worker {
            thread: handle.thread().clone(),
            taken: AtomicBool::new(false),
            job: Mutex::new(None),
            posted: AtomicU64::new(0),
            done: AtomicU64::new(0),
            parked: AtomicBool::new(false),
        }));
        send.send(worker).ok()?;
        Some(worker)
    })
}

impl Worker {
    /// The worker's loop: wait for a post, run its job, report it done.
    fn serve(&self) {
        IS_WORKER.with(|w| w.set(true));
        let mut seen = 0;
        loop {
            let mut idle_since = Instant::now();
            while self.posted.load(Ordering::Acquire) == seen {
                for _ in 0..64 {
                    std::hint::spin_loop();
                }
                if idle_since.elapsed() > SPIN {
                    self.parked.store(true, Ordering::SeqCst);
                    // a post after this check sees `parked` and unparks
                    if self.posted.load(Ordering::SeqCst) == seen {
                        thread::park();
                    }
                    self.parked.store(false, Ordering::SeqCst);
                    idle_since = Instant::now();
                }
            }
            seen = self.posted.load(Ordering::Acquire);
            let job = self
                .job
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(job) = job {
                // a job catches its own panics (see `join`)
                job();
            }
            self.done.store(seen, Ordering::Release);
        }
    }

    /// Hands `job` to the worker; returns its number.
    fn post(&self, job: Job) -> u64 {
        *self.job.lock().unwrap_or_else(PoisonError::into_inner) = Some(job);
        let number = self.posted.fetch_add(1, Ordering::SeqCst) + 1;
        if self.parked.load(Ordering::SeqCst) {
            self.thread.unpark();
        }
        number
    }
}

/// Waits, when dropped (also while unwinding), until the worker has finished job `number`,
/// then frees the worker for the next caller.
struct Finish {
    worker: &'static Worker,
    number: u64,
}

impl Drop for Finish {
    fn drop(&mut self) {
        let mut spins = 0u32;
        while self.worker.done.load(Ordering::Acquire) < self.number {
            std::hint::spin_loop();
            spins = spins.saturating_add(1);
            if spins > 1 << 16 {
                // the worker is descheduled: let it run
                thread::yield_now();
            }
        }
        self.worker.taken.store(false, Ordering::Release);
    }
}

/// Runs `a` on the calling thread and `b` on the worker, side by side, and returns both
/// results; a panic on either side is resumed here once both have finished. If the worker is
/// taken, could not be started, or this is the worker, runs `a` then `b` here.
pub(crate) fn join<RA, RB: Send>(
    a: impl FnOnce() -> RA,
    b: impl FnOnce() -> RB + Send,
) -> (RA, RB) {
    let free = |w: &&Worker| {
        !IS_WORKER.with(Cell::get)
            && w.taken
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    };
    let Some(worker) = worker().filter(free) else {
        return (a(), b());
    };
    let b = Mutex::new(Some(b));
    let result = Mutex::new(None);
    let job = || {
        let b = b.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(b) = b {
            let r = catch_unwind(AssertUnwindSafe(b));
            *result.lock().unwrap_or_else(PoisonError::into_inner) = Some(r);
        }
    };
    let job: &(dyn Fn() + Sync) = &job;
    // SAFETY: only the lifetime changes (the same fat reference). The worker calls the job
    // once and drops the reference before it reports the job done, and `finish` waits for that
    // report before this function returns or unwinds past `job`, `b` and `result`; so the
    // worker never uses the reference after what it points to is gone.
    let job: Job = unsafe { core::mem::transmute::<&(dyn Fn() + Sync), Job>(job) };
    let finish = Finish {
        worker,
        number: worker.post(job),
    };
    let ra = a();
    drop(finish);
    let rb = result
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
        .expect("the worker ran the job");
    match rb {
        Ok(rb) => (ra, rb),
        Err(panic) => resume_unwind(panic),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_halves_run_and_return() {
        let data: Vec<u64> = (0..1000).collect();
        let (lo, hi) = data.split_at(500);
        for _ in 0..1000 {
            let (a, b) = join(|| lo.iter().sum::<u64>(), || hi.iter().sum::<u64>());
            assert_eq!(a + b, 499_500);
        }
    }

    #[test]
    fn halves_write_their_own_slices() {
        let mut data = vec![0u32; 64];
        let (lo, hi) = data.split_at_mut(32);
        join(|| lo.fill(1), || hi.fill(2));
        assert!(data[..32].iter().all(|&v| v == 1) && data[32..].iter().all(|&v| v == 2));
    }

    #[test]
    fn nested_and_concurrent_joins_run_inline() {
        let (a, (b, c)) = join(|| 1, || join(|| 2, || 3));
        assert_eq!((a, b, c), (1, 2, 3));
        let sums: Vec<u64> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4u64)
                .map(|i| s.spawn(move || (0..200).map(|_| join(|| i, || i).1).sum()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(sums, [0, 200, 400, 600]);
    }

    #[test]
    fn a_panic_on_the_worker_reaches_the_caller_after_both_finished() {
        let mut finished = false;
        let r = catch_unwind(AssertUnwindSafe(|| {
            join(|| finished = true, || panic!("worker half"));
        }));
        assert!(r.is_err() && finished);
        // the worker serves the next join
        assert_eq!(join(|| 1, || 2), (1, 2));
        let r = catch_unwind(|| join(|| panic!("caller half"), || 2));
        assert!(r.is_err());
        assert_eq!(join(|| 3, || 4), (3, 4));
    }
}
