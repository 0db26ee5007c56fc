//! Linear algebra: strided matrix views ([`MatRef`], [`MatMut`]), the GEMM `C ← α·A·B + β·C`
//! (`matrixmultiply`'s, or a vector loop for a single row), and weight operands packed once for
//! the many small products of a time loop, with the micro-kernel that multiplies by them
//! ([`panels`]).
//!
//! This module holds the crate's only `unsafe` code, each piece behind a safe function that
//! checks what it relies on first: the call into `matrixmultiply` (behind [`gemm`], which
//! checks every dimension and extent), the SIMD tiles (`x86`, which check the CPU and every
//! slice length) and the lifetime of a job handed to the worker thread (`worker::join`, which
//! waits for it before returning). The products can use one worker thread (`worker`).

mod panels;
mod worker;
#[cfg(target_arch = "x86_64")]
mod x86;

pub(crate) use panels::{packed_gemm, product_f32, product_portable, PackedWeight};
pub(crate) use worker::join;

use core::fmt;

use multiversion::multiversion;

use crate::float::{private::Sealed, Float};

/// A read-only strided matrix view: element `(i, j)` is `data[i·row_stride + j·col_stride]`.
///
/// Views are checked when they are made, so every element they describe lies inside `data`.
/// [`MatRef::t`] transposes a view without copying.
#[derive(Clone, Copy)]
pub struct MatRef<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

/// A mutable strided matrix view whose elements are distinct: the output of [`gemm`].
pub struct MatMut<'a, T> {
    data: &'a mut [T],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

/// Panics unless every element of a `rows × cols` view with these strides lies in `len`, and
/// returns the strides with those of empty or single-element axes set to 0, so that every
/// stride of a view is below the buffer's length (and so fits in `isize`).
#[track_caller]
fn checked_strides(
    len: usize,
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
) -> (usize, usize) {
    if rows == 0 || cols == 0 {
        return (0, 0);
    }
    let last = (rows - 1).checked_mul(row_stride).and_then(|r| {
        (cols - 1)
            .checked_mul(col_stride)
            .and_then(|c| r.checked_add(c))
    });
    assert!(
        matches!(last, Some(last) if last < len),
        "matrix view of {rows}×{cols} with strides ({row_stride}, {col_stride}) \
         does not fit in a buffer of {len} values"
    );
    let row_stride = if rows == 1 { 0 } else { row_stride };
    let col_stride = if cols == 1 { 0 } else { col_stride };
    (row_stride, col_stride)
}

impl<'a, T> MatRef<'a, T> {
    /// A contiguous row-major `rows × cols` view of the first `rows·cols` values of `data`.
    ///
    /// # Panics
    ///
    /// Panics if `data` holds fewer than `rows·cols` values.
    #[track_caller]
    pub fn new(data: &'a [T], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, cols, 1)
    }

    /// A view with explicit strides.
    ///
    /// # Panics
    ///
    /// Panics if an element of the view would lie outside `data`.
    #[track_caller]
    pub fn strided(
        data: &'a [T],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Self {
        let (row_stride, col_stride) =
            checked_strides(data.len(), rows, cols, row_stride, col_stride);
        MatRef {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        }
    }

    /// The first `at` rows and the others (`0 < at < rows`).
    fn split_rows(self, at: usize) -> (Self, Self) {
        let bottom = MatRef {
            data: &self.data[at * self.row_stride..],
            rows: self.rows - at,
            ..self
        };
        (MatRef { rows: at, ..self }, bottom)
    }

    /// The transposed view (no copy).
    #[must_use = "returns a new view and does not modify self"]
    pub fn t(self) -> Self {
        MatRef {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }
}

impl<'a, T> MatMut<'a, T> {
    /// A contiguous row-major `rows × cols` view of the first `rows·cols` values of `data`.
    ///
    /// # Panics
    ///
    /// Panics if `data` holds fewer than `rows·cols` values.
    #[track_caller]
    pub fn new(data: &'a mut [T], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, cols, 1)
    }

    /// A view with explicit strides; rows or columns may be spaced apart but never overlap.
    ///
    /// # Panics
    ///
    /// Panics if an element lies outside `data` or if two elements share a location.
    #[track_caller]
    pub fn strided(
        data: &'a mut [T],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Self {
        let (row_stride, col_stride) =
            checked_strides(data.len(), rows, cols, row_stride, col_stride);
        let distinct = rows == 0
            || cols == 0
            || rows <= 1 && (cols <= 1 || col_stride > 0)
            || cols <= 1 && row_stride > 0
            || col_stride > 0 && row_stride >= cols * col_stride
            || row_stride > 0 && col_stride >= rows * row_stride;
        assert!(
            distinct,
            "output view of {rows}×{cols} with strides ({row_stride}, {col_stride}) aliases itself"
        );
        MatMut {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }
}

impl<T> MatMut<'_, T> {
    /// The first `at` rows and the others (`0 < at < rows`), for a view whose rows lie apart
    /// (`row_stride > (cols − 1)·col_stride`), so that the two share no element.
    fn split_rows(self, at: usize) -> (Self, Self) {
        let (rows, cols, row_stride, col_stride) =
            (self.rows, self.cols, self.row_stride, self.col_stride);
        let (top, bottom) = self.data.split_at_mut(at * row_stride);
        let view = |data, rows| MatMut {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        };
        (view(top, at), view(bottom, rows - at))
    }
}

impl<T> fmt::Debug for MatRef<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "MatRef {{ rows: {}, cols: {}, strides: ({}, {}) }}",
            self.rows, self.cols, self.row_stride, self.col_stride
        )
    }
}

impl<T> fmt::Debug for MatMut<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "MatMut {{ rows: {}, cols: {}, strides: ({}, {}) }}",
            self.rows, self.cols, self.row_stride, self.col_stride
        )
    }
}

/// `c ← α·a·B + β·c` for a row vector `a` (`1×k`, `k ≥ 1`) and `B` (`k×n`): the matrix-vector
/// product of batch-1 inference. Rows of `B` that are contiguous are added to `c` (`axpy`);
/// contiguous columns are dotted with `a` in sixteen lanes at once. Compiled for AVX-512 and
/// AVX2 as well, chosen at run time.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
fn row_times_matrix<T: Float>(
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    c: MatMut<'_, T>,
) {
    let (k, n) = (b.rows, b.cols);
    let a_at = |p: usize| a.data[p * a.col_stride];
    let c_at = |j: usize| j * c.col_stride;
    for j in 0..n {
        let v = &mut c.data[c_at(j)];
        *v = if beta == T::zero() {
            T::zero()
        } else {
            beta * *v
        };
    }
    if b.col_stride == 1 && c.col_stride == 1 {
        // c += (α·a_p)·B[p, :] for each p
        let c = &mut c.data[..n];
        for p in 0..k {
            let s = alpha * a_at(p);
            let row = &b.data[p * b.row_stride..][..n];
            c.iter_mut().zip(row).for_each(|(c, &b)| *c = *c + s * b);
        }
    } else if b.row_stride == 1 && a.col_stride == 1 {
        // c_j += α·(a · B[:, j]), B's columns contiguous
        let a = &a.data[..k];
        for j in 0..n {
            let column = &b.data[j * b.col_stride..][..k];
            let v = &mut c.data[c_at(j)];
            *v = *v + alpha * dot(a, column);
        }
    } else {
        for j in 0..n {
            let sum = (0..k).fold(T::zero(), |s, p| {
                s + a_at(p) * b.data[p * b.row_stride + j * b.col_stride]
            });
            let v = &mut c.data[c_at(j)];
            *v = *v + alpha * sum;
        }
    }
}

/// `Σ a_i·b_i` in sixteen independent partial sums, so that the compiler vectorises it.
#[inline(always)]
fn dot<T: Float>(a: &[T], b: &[T]) -> T {
    const LANES: usize = 16;
    let mut acc = [T::zero(); LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: T = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .fold(T::zero(), |s, (&x, &y)| s + x * y);
    for (x, y) in a_chunks.zip(b_chunks) {
        for l in 0..LANES {
            acc[l] = acc[l] + x[l] * y[l];
        }
    }
    acc.iter().fold(tail, |s, &v| s + v)
}

/// `C ← α·A·B + β·C`, with `matrixmultiply`'s GEMM. When `β = 0`, `C`'s previous values are
/// never read (NaN in `C` does not leak into the result). A large product is split in two
/// halves of its rows, one run by the crate's worker thread, when [`crate::set_num_threads`]
/// allows two threads and the calling thread is not already one side of a split; every
/// element is computed the same way either way.
///
/// Transposes are expressed through the views' strides ([`MatRef::t`]), never by copying.
///
/// # Panics
///
/// Panics if the shapes do not chain: `A` is `m×k`, `B` must be `k×n` and `C` `m×n`.
#[track_caller]
pub fn gemm<T: Float>(alpha: T, a: MatRef<'_, T>, b: MatRef<'_, T>, beta: T, c: MatMut<'_, T>) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(
        b.rows == k && c.rows == m && c.cols == n,
        "gemm shape mismatch: A is {m}×{k}, B is {}×{}, C is {}×{}",
        b.rows,
        b.cols,
        c.rows,
        c.cols
    );
    if m == 0 || n == 0 {
        return;
    }
    let separable_rows = c.row_stride > (n - 1) * c.col_stride;
    if m >= 2 * MIN_SPLIT_ROWS
        && separable_rows
        && m.saturating_mul(k).saturating_mul(n) >= PARALLEL_WORK
        && crate::threads::may_spawn()
    {
        // the two halves of the rows side by side, the second on the worker thread: each
        // element is computed as without the split
        let half = m / 2;
        let (a_top, a_bottom) = a.split_rows(half);
        let (c_top, c_bottom) = c.split_rows(half);
        join(
            || gemm_serial(alpha, a_top, b, beta, c_top),
            || gemm_serial(alpha, a_bottom, b, beta, c_bottom),
        );
        return;
    }
    gemm_serial(alpha, a, b, beta, c);
}

/// From how many multiply-adds [`gemm`] splits its rows between the calling thread and the
/// worker (when two threads are allowed).
const PARALLEL_WORK: usize = 1 << 20;

/// The fewest rows each half of a split [`gemm`] has.
const MIN_SPLIT_ROWS: usize = 16;

/// [`gemm`] on the calling thread, shapes checked.
#[allow(unsafe_code)]
fn gemm_serial<T: Float>(alpha: T, a: MatRef<'_, T>, b: MatRef<'_, T>, beta: T, c: MatMut<'_, T>) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if k == 0 {
        for i in 0..m {
            for j in 0..n {
                let v = &mut c.data[i * c.row_stride + j * c.col_stride];
                *v = if beta == T::zero() {
                    T::zero()
                } else {
                    beta * *v
                };
            }
        }
        return;
    }
    if m == 1 {
        // a row vector: sgemm would pack both operands for one row; a vector loop is ~10×
        // faster (batch-1 inference)
        row_times_matrix(alpha, a, b, beta, c);
        return;
    }
    // SAFETY: `sgemm`/`dgemm` require (the views are those `gemm` checked, or the halves of
    // their rows that `split_rows` made, which keep every element inside their slice and
    // have at least 16 rows, so no stride of a single-row axis is left):
    // - `a` valid for reads of the m×k elements at (rsa, csa): `MatRef::strided` checked that
    //   every element of the view lies inside its slice, and the shapes were matched in `gemm`;
    // - `b` valid for reads of the k×n elements at (rsb, csb): likewise;
    // - `c` valid for reads and writes of the m×n elements at (rsc, csc), which must not
    //   alias each other: `MatMut::strided` checked the extent and that no two elements share
    //   a location; `c` is an exclusive borrow, so it cannot overlap `a` or `b`;
    // - `c` initialised unless β = 0: it is a `&mut [T]` of initialised `T`;
    // - strides fit in `isize`: `checked_strides` zeroes the strides of axes of length 0 or
    //   1, so every stride is at most an offset inside the slice, and slices hold at most
    //   `isize::MAX` bytes.
    unsafe {
        (<T as Sealed>::GEMM)(
            m,
            k,
            n,
            alpha,
            a.data.as_ptr(),
            a.row_stride as isize,
            a.col_stride as isize,
            b.data.as_ptr(),
            b.row_stride as isize,
            b.col_stride as isize,
            beta,
            c.data.as_mut_ptr(),
            c.row_stride as isize,
            c.col_stride as isize,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degenerate_axes_get_zero_strides() {
        let data = [1.0f32; 4];
        let v = MatRef::strided(&data, 1, 4, usize::MAX, 1);
        assert_eq!((v.row_stride, v.col_stride), (0, 1));
        let empty = MatRef::strided(&data, 0, 3, usize::MAX, usize::MAX);
        assert_eq!((empty.row_stride, empty.col_stride), (0, 0));
    }

    #[test]
    #[should_panic(expected = "aliases itself")]
    fn aliasing_output_view_panics() {
        let mut data = [0.0f64; 8];
        let _ = MatMut::strided(&mut data, 2, 3, 1, 1);
    }

    #[test]
    #[should_panic(expected = "does not fit")]
    fn out_of_bounds_view_panics() {
        let data = [0.0f64; 5];
        let _ = MatRef::new(&data, 2, 3);
    }
}
