//! Buffers recycled between calls of a layer.
//!
//! A forward pass needs tens of megabytes for its trace on the larger workloads. Freshly
//! allocated, that memory comes from the operating system as new pages, each faulted in and
//! zeroed on first touch: measured on an LSTM forward pass (T 50, B 16, I 64, H 128, f32), that
//! doubled its time. A [`Pool`] keeps the buffers of dropped traces and of finished backward
//! passes and hands them out again, so a model called in a loop reuses the same memory.

use std::any::Any;
use std::sync::{Arc, Mutex, PoisonError};

use crate::error::Result;
use crate::float::Float;
use crate::tensor::try_filled_vec;

/// At most this many idle buffers are kept; beyond it the smallest is dropped.
const MAX_IDLE: usize = 16;

/// At most this many bytes are kept idle (beyond it the smallest buffers are dropped, and a
/// larger buffer is not kept at all): room for the traces of a few large training steps.
const MAX_IDLE_BYTES: usize = 1 << 30;

/// Idle buffers of any element type (`Vec<f32>` or `Vec<f64>`, type-erased).
#[derive(Default)]
pub(crate) struct Pool {
    idle: Mutex<Vec<Idle>>,
}

/// An idle buffer and its size in bytes.
struct Idle {
    buffer: Box<dyn Any + Send>,
    bytes: usize,
}

impl Idle {
    fn new<T: Float>(v: Vec<T>) -> Self {
        Idle {
            bytes: bytes_of(v.capacity(), core::mem::size_of::<T>()),
            buffer: Box::new(v),
        }
    }
}

fn bytes_of(len: usize, size: usize) -> usize {
    len.saturating_mul(size)
}

impl Pool {
    /// A buffer of `len` zeros, or [`Error::Allocation`](crate::Error::Allocation) if it cannot
    /// be had.
    pub(crate) fn zeroed<T: Float>(&self, len: usize) -> Result<Vec<T>> {
        match self.reuse::<T>(len) {
            Some(mut v) => {
                v.clear();
                v.resize(len, T::zero());
                Ok(v)
            }
            None => try_filled_vec("recurrent buffers", len, T::zero()),
        }
    }

    /// A buffer of `len` values that the caller overwrites before reading (they are whatever
    /// an earlier call left, never uninitialised memory), or
    /// [`Error::Allocation`](crate::Error::Allocation).
    pub(crate) fn scratch<T: Float>(&self, len: usize) -> Result<Vec<T>> {
        match self.reuse::<T>(len) {
            Some(mut v) => {
                v.resize(len, T::zero());
                Ok(v)
            }
            None => try_filled_vec("recurrent buffers", len, T::zero()),
        }
    }

    /// Takes back a buffer for later calls, within the pool's bounds.
    pub(crate) fn recycle<T: Float>(&self, v: Vec<T>) {
        if v.capacity() == 0 || bytes_of(v.capacity(), core::mem::size_of::<T>()) > MAX_IDLE_BYTES {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        idle.push(Idle::new(v));
        while idle.len() > MAX_IDLE || idle.iter().map(|b| b.bytes).sum::<usize>() > MAX_IDLE_BYTES
        {
            let smallest = (0..idle.len())
                .min_by_key(|&i| idle[i].bytes)
                .expect("the pool is not empty");
            idle.swap_remove(smallest);
        }
    }

    /// Drops every idle buffer.
    pub(crate) fn release(&self) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// The bytes held by idle buffers.
    #[cfg(test)]
    fn idle_bytes(&self) -> usize {
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        idle.iter().map(|b| b.bytes).sum()
    }

    /// The idle `Vec<T>` with the smallest capacity that holds `len` values, if any.
    fn reuse<T: Float>(&self, len: usize) -> Option<Vec<T>> {
        if len == 0 {
            return None;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let best = (0..idle.len())
            .filter_map(|i| capacity_of::<T>(&idle[i]).map(|c| (i, c)))
            .filter(|&(_, c)| c >= len)
            .min_by_key(|&(_, c)| c)?
            .0;
        let boxed = idle.swap_remove(best).buffer;
        boxed.downcast::<Vec<T>>().ok().map(|v| *v)
    }
}

fn capacity_of<T: Float>(b: &Idle) -> Option<usize> {
    b.buffer.downcast_ref::<Vec<T>>().map(Vec::capacity)
}

/// Hands a trace's buffers back to the pool of the layer that made it, when the trace is
/// dropped. Type-erased over `T` so that traces need no bound on their element type.
#[derive(Clone)]
pub(crate) struct Recycler<T>(Arc<dyn Fn(Vec<T>) + Send + Sync>);

impl<T: Float> Recycler<T> {
    pub(crate) fn new(pool: &Arc<Pool>) -> Self {
        let pool = Arc::clone(pool);
        Recycler(Arc::new(move |v| pool.recycle(v)))
    }
}

impl<T> Recycler<T> {
    pub(crate) fn recycle(&self, v: Vec<T>) {
        (self.0)(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_by_type_and_size() {
        let pool = Pool::default();
        let v: Vec<f32> = pool.zeroed(100).unwrap();
        let ptr = v.as_ptr();
        pool.recycle(v);
        // an f64 request does not take the f32 buffer
        let w: Vec<f64> = pool.zeroed(50).unwrap();
        assert_ne!(w.as_ptr() as usize, ptr as usize);
        // nor does a larger one
        let big: Vec<f32> = pool.scratch(200).unwrap();
        assert_ne!(big.as_ptr(), ptr);
        let mut again: Vec<f32> = pool.scratch(80).unwrap();
        assert_eq!(again.as_ptr(), ptr);
        assert_eq!(again.len(), 80);
        again.fill(7.0);
        pool.recycle(again);
        let zeroed: Vec<f32> = pool.zeroed(90).unwrap();
        assert_eq!(zeroed.as_ptr(), ptr);
        assert!(zeroed.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn the_pool_stays_bounded() {
        let pool = Pool::default();
        for n in 1..=40 {
            pool.recycle(vec![0.0f32; n]);
        }
        let idle = pool.idle.lock().unwrap();
        assert_eq!(idle.len(), MAX_IDLE);
        // the largest are kept
        assert!(idle
            .iter()
            .all(|b| capacity_of::<f32>(b).unwrap() > 40 - MAX_IDLE));
    }

    #[test]
    fn the_pool_is_bounded_in_bytes_and_can_be_released() {
        let pool = Pool::default();
        let quarter = MAX_IDLE_BYTES / 4 / core::mem::size_of::<f64>();
        for _ in 0..6 {
            pool.recycle(Vec::<f64>::with_capacity(quarter));
        }
        assert!(pool.idle_bytes() <= MAX_IDLE_BYTES);
        assert!(pool.idle_bytes() >= MAX_IDLE_BYTES / 2);
        // a buffer beyond the bound is not kept at all
        pool.release();
        pool.recycle(Vec::<f64>::with_capacity(2 * quarter * 4));
        assert_eq!(pool.idle_bytes(), 0);
        pool.recycle(vec![0.0f32; 10]);
        assert_eq!(pool.idle_bytes(), 40);
        pool.release();
        assert_eq!(pool.idle_bytes(), 0);
    }
}
