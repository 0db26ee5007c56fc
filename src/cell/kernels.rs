//! What a cell's step needs to be fast, public so that a cell written outside the crate runs
//! at the speed of the built-in ones: the recurrent product against `weight_hh` kept in the
//! layout of the per-step product, its derivative, bias broadcasting, and the gate
//! non-linearities over whole slices (vectorised for `f32`, dispatched at run time to
//! AVX-512 or AVX2).
//!
//! The built-in cells are written with these functions only; a cell of your own that uses them
//! (see [`Cell`](crate::Cell)) gets the same products and the same non-linearities.
//!
//! # Examples
//!
//! One vanilla tanh RNN step `h' = tanh(p + b_hh + h·W_hhᵀ)` over packed rows:
//!
//! ```
//! use recurrent::{kernels, CellParams, MatMut, MatRef, Tensor};
//!
//! // H = 2, one sample: W_hh = [[1, 0], [0, 2]], no bias
//! let w_hh = Tensor::from_vec(vec![1.0, 0.0, 0.0, 2.0], &[2, 2])?;
//! let params = CellParams::new(Tensor::zeros(&[2, 1]), w_hh, None, None);
//! let (p, h) = ([0.5, -0.5], [0.25, 0.5]);
//! let mut next = [0.0; 2];
//! kernels::broadcast_bias(params.bias_hh(), 1, 2, &mut next, 2); // zeros without a bias
//! kernels::recurrent_product(&params, MatRef::new(&h, 1, 2), 1.0, MatMut::new(&mut next, 1, 2));
//! next.iter_mut().zip(p).for_each(|(n, p)| *n += p);
//! kernels::tanh(&mut next);
//! assert_eq!(next, [(0.5f64 + 0.25).tanh(), (-0.5f64 + 1.0).tanh()]);
//! # Ok::<(), recurrent::Error>(())
//! ```

use super::CellParams;
use crate::float::{private::Sealed, Float};
use crate::linalg::{packed_gemm, MatMut, MatRef};
use crate::tensor::Tensor;

/// `out ← β·out + h·W_hhᵀ`, with `W_hhᵀ` packed once per change of the weight (the first use
/// after [`CellParams::weight_hh_mut`] or any other mutable access packs it again) into panels
/// for a register-blocked micro-kernel (AVX-512, AVX2 + FMA or portable, chosen at run time).
/// Each row of `out` is computed the same way whatever the other rows: results do not depend on
/// the batch size.
///
/// # Shapes
///
/// `h: (B, H_out)` (typically a strided view of the `h` columns of packed state rows),
/// `out: (B, G·H)`.
///
/// # Panics
///
/// Panics if the shapes do not chain.
#[track_caller]
pub fn recurrent_product<T: Float>(
    params: &CellParams<T>,
    h: MatRef<'_, T>,
    beta: T,
    out: MatMut<'_, T>,
) {
    packed_gemm(h, params.packed_weight_hh(), beta, out);
}

/// `d_h ← β·d_h + d_g·W_hh`: the gradient reaching `h` through [`recurrent_product`], from the
/// gradient `d_g` of its result, with `W_hh` packed once per change as in
/// [`recurrent_product`].
///
/// # Shapes
///
/// `d_g: (B, G·H)`, `d_h: (B, H_out)`.
///
/// # Panics
///
/// Panics if the shapes do not chain.
#[track_caller]
pub fn recurrent_product_backward<T: Float>(
    params: &CellParams<T>,
    d_g: MatRef<'_, T>,
    beta: T,
    d_h: MatMut<'_, T>,
) {
    packed_gemm(d_g, params.packed_weight_hh_backward(), beta, d_h);
}

/// Where to split a step of `batch` rows of `per_row` values between the calling thread and the
/// crate's worker thread, or `None` to run it whole here: a split when
/// [`set_num_threads`](crate::set_num_threads) allows two threads, the calling thread is not
/// already one side of a split (one direction of a parallel [`crate::Bidirectional`], one half
/// of a split batch), and the step is large enough to repay the hand-over (from 2¹⁴ values: 32
/// rows of an LSTM with 128 units). The built-in cells split their gate updates this way; run
/// the two halves with [`join`].
///
/// # Examples
///
/// ```
/// use recurrent::kernels;
///
/// assert_eq!(kernels::split_rows(1, 1 << 20), None); // one row is never split
/// assert_eq!(kernels::split_rows(64, 2), None); // too little work to repay a hand-over
/// if let Some(mid) = kernels::split_rows(64, 1024) {
///     assert_eq!(mid, 32); // with two threads allowed: the rows in halves
/// }
/// ```
pub fn split_rows(batch: usize, per_row: usize) -> Option<usize> {
    /// From how many values a step's rows are split.
    const SPLIT_VALUES: usize = 1 << 14;
    (batch >= 2 && batch.saturating_mul(per_row) >= SPLIT_VALUES && crate::threads::may_spawn())
        .then_some(batch / 2)
}

/// Runs `a` on the calling thread and `b` on the crate's persistent worker thread, side by
/// side, and returns both results; when the worker is busy (another caller holds it) `b` runs
/// here after `a`. Products and layers inside either side do not split their work again. A
/// panic on either side is resumed here. Use it for the halves [`split_rows`] gives.
///
/// # Examples
///
/// ```
/// use recurrent::kernels;
///
/// let mut rows = vec![1.0f32; 8];
/// let (top, bottom) = rows.split_at_mut(4);
/// kernels::join(|| top.iter_mut().for_each(|v| *v *= 2.0), || bottom.fill(0.0));
/// assert_eq!(rows, [2.0, 2.0, 2.0, 2.0, 0.0, 0.0, 0.0, 0.0]);
/// ```
pub fn join<A: Send, B: Send>(
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    crate::threads::join(true, a, b)
}

/// Sets the first `width` values of each of `rows` rows (`stride` apart in `buf`) to `bias`,
/// or to zero without one: the start of a step's pre-activations before
/// [`recurrent_product`] adds to them with `β = 1`.
///
/// # Panics
///
/// Panics if `buf` holds fewer than `rows` rows or `bias` does not have `width` values.
#[track_caller]
pub fn broadcast_bias<T: Float>(
    bias: Option<&Tensor<T>>,
    rows: usize,
    width: usize,
    buf: &mut [T],
    stride: usize,
) {
    assert!(width <= stride, "rows of {width} values {stride} apart");
    assert!(
        rows == 0 || buf.len() >= (rows - 1) * stride + width,
        "{rows} rows of {width} values {stride} apart do not fit in {} values",
        buf.len()
    );
    for row in buf.chunks_mut(stride).take(rows) {
        match bias {
            Some(b) => row[..width].copy_from_slice(b.as_slice()),
            None => row[..width].fill(T::zero()),
        }
    }
}

/// `x ← σ(x) = 1 / (1 + e^(−x))` for every element. In `f32` a branch-free vectorised
/// exponential (error below 3e-7), in `f64` the standard library's.
pub fn sigmoid<T: Float>(xs: &mut [T]) {
    <T as Sealed>::sigmoid_slice(xs);
}

/// `x ← tanh x` for every element. In `f32` a branch-free vectorised exponential (error below
/// 3e-7), in `f64` the standard library's.
pub fn tanh<T: Float>(xs: &mut [T]) {
    <T as Sealed>::tanh_slice(xs);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::t;

    #[test]
    fn the_products_use_the_current_weight() {
        // W_hh (G·H = 3, H_out = 2)
        let mut params = CellParams::new(
            t(&[0.0; 3], &[3, 1]),
            t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[3, 2]),
            None,
            None,
        );
        let h = [1.0, -1.0];
        let mut out = [10.0; 3];
        recurrent_product(
            &params,
            MatRef::new(&h, 1, 2),
            1.0,
            MatMut::new(&mut out, 1, 3),
        );
        assert_eq!(out, [9.0, 9.0, 9.0]); // 10 + (1 − 2, 3 − 4, 5 − 6)
        params.weight_hh_mut().as_mut_slice()[0] = 0.0;
        recurrent_product(
            &params,
            MatRef::new(&h, 1, 2),
            0.0,
            MatMut::new(&mut out, 1, 3),
        );
        assert_eq!(out, [-2.0, -1.0, -1.0]);
        // d_h = d_g·W_hh
        let d_g = [1.0, 0.0, 1.0];
        let mut d_h = [0.0; 2];
        recurrent_product_backward(
            &params,
            MatRef::new(&d_g, 1, 3),
            0.0,
            MatMut::new(&mut d_h, 1, 2),
        );
        assert_eq!(d_h, [5.0, 8.0]);
    }

    #[test]
    fn bias_fills_strided_rows() {
        let mut buf = [9.0; 7];
        broadcast_bias(Some(&t(&[1.0, 2.0], &[2])), 2, 2, &mut buf, 4);
        assert_eq!(buf, [1.0, 2.0, 9.0, 9.0, 1.0, 2.0, 9.0]);
        broadcast_bias(None, 2, 2, &mut buf, 4);
        assert_eq!(buf, [0.0, 0.0, 9.0, 9.0, 0.0, 0.0, 9.0]);
    }

    #[test]
    fn activations_match_their_definitions() {
        let xs: [f64; 7] = [-30.0, -2.0, -0.5, 0.0, 0.5, 2.0, 30.0];
        let (mut s, mut th) = (xs, xs);
        sigmoid(&mut s);
        tanh(&mut th);
        for ((x, s), th) in xs.iter().zip(s).zip(th) {
            assert!((s - 1.0 / (1.0 + (-x).exp())).abs() < 1e-15);
            assert!((th - x.tanh()).abs() < 1e-15);
        }
        let mut s32 = xs.map(|x| x as f32);
        sigmoid(&mut s32);
        for (x, s) in xs.iter().zip(s32) {
            assert!((f64::from(s) - 1.0 / (1.0 + (-x).exp())).abs() < 3e-7);
        }
    }
}
