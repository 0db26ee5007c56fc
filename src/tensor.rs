//! `Tensor<T>`: an owned, contiguous, row-major array of rank 1 to 3, and the crate's one GEMM.

use core::fmt;

use multiversion::multiversion;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal, Uniform};

use crate::error::{check_shape, Error, Result, Shape};
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
/// never read (NaN in `C` does not leak into the result).
///
/// Transposes are expressed through the views' strides ([`MatRef::t`]), never by copying.
///
/// # Panics
///
/// Panics if the shapes do not chain: `A` is `m×k`, `B` must be `k×n` and `C` `m×n`.
#[track_caller]
#[allow(unsafe_code)]
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
    // SAFETY: this is the crate's only unsafe block. `sgemm`/`dgemm` require:
    // - `a` valid for reads of the m×k elements at (rsa, csa): `MatRef::strided` checked that
    //   every element of the view lies inside its slice, and the shapes were matched above;
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

/// Values printed by `{:?}` before eliding the rest (`{:#?}` prints everything).
const DEBUG_ELEMENT_LIMIT: usize = 16;

/// An owned, contiguous, row-major tensor of rank 1 to 3.
///
/// Sequence tensors are `(T, B, F)` (time, batch, features) unless a layer is configured
/// batch-first; weight matrices are `(rows, cols)` as in PyTorch.
///
/// # Examples
///
/// ```
/// use recurrent::Tensor;
///
/// let a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
/// let b = Tensor::from_vec(vec![1.0, 0.0, 1.0], &[3])?.reshape(&[3, 1])?;
/// let c = a.matmul(&b)?;
/// assert_eq!(c.shape(), &[2, 1]);
/// assert_eq!(c.as_slice(), &[4.0, 10.0]);
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Clone, PartialEq)]
pub struct Tensor<T> {
    data: Vec<T>,
    shape: Shape,
}

#[track_caller]
fn checked_shape(dims: &[usize]) -> Result<Shape> {
    if dims.is_empty() || dims.len() > 3 {
        return Err(Error::InvalidRank { rank: dims.len() });
    }
    Ok(Shape::new(dims))
}

impl<T> Tensor<T> {
    /// The dimensions, outermost first.
    pub fn shape(&self) -> &[usize] {
        self.shape.dims()
    }

    /// The shape as a [`Shape`] value (for error messages and comparisons).
    pub fn raw_shape(&self) -> Shape {
        self.shape
    }

    /// The number of dimensions (1 to 3).
    pub fn rank(&self) -> usize {
        self.shape.rank()
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the tensor has no element.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The elements in row-major order.
    pub fn as_slice(&self) -> &[T] {
        &self.data
    }

    /// The elements in row-major order, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.data
    }

    /// The element buffer.
    pub fn into_vec(self) -> Vec<T> {
        self.data
    }
}

impl<T: Float> Tensor<T> {
    /// Wraps `data` (row-major) as a tensor of shape `dims`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRank`] unless `dims` has 1 to 3 entries; [`Error::DataLength`] if
    /// `data.len()` is not the product of `dims`.
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::{Error, Tensor};
    ///
    /// let t = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
    /// assert_eq!(t.at(&[1, 0]), 4.0);
    /// let e = Tensor::from_vec(vec![1.0f32; 5], &[2, 3]).unwrap_err();
    /// assert_eq!(e.to_string(), "data length mismatch: shape [2, 3] needs 6 values, got 5");
    /// # Ok::<(), Error>(())
    /// ```
    pub fn from_vec(data: Vec<T>, dims: &[usize]) -> Result<Self> {
        let shape = checked_shape(dims)?;
        if data.len() != shape.len() {
            return Err(Error::DataLength {
                shape,
                actual: data.len(),
            });
        }
        Ok(Tensor { data, shape })
    }

    /// A tensor of zeros.
    ///
    /// # Panics
    ///
    /// Panics unless `dims` has 1 to 3 entries.
    #[track_caller]
    pub fn zeros(dims: &[usize]) -> Self {
        Self::full(dims, T::zero())
    }

    /// A tensor with every element equal to `value`.
    ///
    /// # Panics
    ///
    /// Panics unless `dims` has 1 to 3 entries.
    #[track_caller]
    pub fn full(dims: &[usize], value: T) -> Self {
        let shape = match checked_shape(dims) {
            Ok(shape) => shape,
            Err(e) => panic!("{e}"),
        };
        Tensor {
            data: vec![value; shape.len()],
            shape,
        }
    }

    /// A tensor with elements drawn independently from `U(low, high)`.
    ///
    /// # Panics
    ///
    /// Panics unless `dims` has 1 to 3 entries and `low < high`, both finite.
    #[track_caller]
    pub fn uniform<R: Rng + ?Sized>(dims: &[usize], low: T, high: T, rng: &mut R) -> Self {
        let dist = Uniform::new(low.as_f64(), high.as_f64()).expect("uniform bounds: low < high");
        let mut t = Self::zeros(dims);
        t.data
            .iter_mut()
            .for_each(|v| *v = T::from_f64(dist.sample(rng)));
        t
    }

    /// A tensor with elements drawn independently from the standard normal `N(0, 1)`.
    ///
    /// # Panics
    ///
    /// Panics unless `dims` has 1 to 3 entries.
    #[track_caller]
    pub fn randn<R: Rng + ?Sized>(dims: &[usize], rng: &mut R) -> Self {
        let mut t = Self::zeros(dims);
        t.data.iter_mut().for_each(|v| {
            let x: f64 = StandardNormal.sample(rng);
            *v = T::from_f64(x)
        });
        t
    }

    /// Inverted-dropout multipliers of shape `dims`: each element is `0` with probability `p`
    /// and `1/(1 − p)` otherwise. Every element takes one `f64` from `rng` in row-major order
    /// and is dropped when it is below `p`; with `p = 0` nothing is drawn. `p` is checked by
    /// the callers (`0 ≤ p < 1`).
    pub(crate) fn dropout_scale<R: Rng + ?Sized>(dims: &[usize], p: f64, rng: &mut R) -> Self {
        let mut scale = Tensor::full(dims, T::one());
        if p > 0.0 {
            let keep = T::from_f64(1.0 / (1.0 - p));
            for v in scale.as_mut_slice() {
                *v = if rng.random::<f64>() < p {
                    T::zero()
                } else {
                    keep
                };
            }
        }
        scale
    }

    /// A tensor of zeros with the shape of `self`.
    #[must_use = "returns a new tensor and does not modify self"]
    pub fn zeros_like(&self) -> Self {
        Tensor {
            data: vec![T::zero(); self.data.len()],
            shape: self.shape,
        }
    }

    /// The element at `index` (one entry per dimension).
    ///
    /// # Panics
    ///
    /// Panics if `index` has the wrong number of entries or is out of bounds.
    #[track_caller]
    pub fn at(&self, index: &[usize]) -> T {
        let dims = self.shape();
        assert!(
            index.len() == dims.len() && index.iter().zip(dims).all(|(i, d)| i < d),
            "index {index:?} out of bounds for shape {}",
            self.shape
        );
        let flat = index.iter().zip(dims).fold(0, |acc, (i, d)| acc * d + i);
        self.data[flat]
    }

    /// The same data under another shape with as many elements.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRank`] or [`Error::DataLength`] if `dims` does not fit the data.
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::Tensor;
    ///
    /// let t = Tensor::<f64>::zeros(&[6]).reshape(&[1, 2, 3])?;
    /// assert_eq!(t.shape(), &[1, 2, 3]);
    /// assert!(Tensor::<f64>::zeros(&[6]).reshape(&[4]).is_err());
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn reshape(self, dims: &[usize]) -> Result<Self> {
        Self::from_vec(self.data, dims)
    }

    /// Applies `f` to every element.
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::Tensor;
    ///
    /// let t = Tensor::from_vec(vec![-1.0f32, 2.0], &[2])?;
    /// assert_eq!(t.map(|v| v.max(0.0)).as_slice(), &[0.0, 2.0]);
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    #[must_use = "returns a new tensor and does not modify self"]
    pub fn map(&self, f: impl FnMut(T) -> T) -> Self {
        Tensor {
            data: self.data.iter().copied().map(f).collect(),
            shape: self.shape,
        }
    }

    /// The sum of the element-wise product with `other` (the Frobenius inner product).
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if the shapes differ.
    pub fn dot(&self, other: &Self) -> Result<T> {
        check_shape("dot", self.shape, other.shape)?;
        Ok(self
            .data
            .iter()
            .zip(&other.data)
            .map(|(&a, &b)| a * b)
            .sum())
    }

    /// Converts every element to another float type.
    #[must_use = "returns a new tensor and does not modify self"]
    pub fn cast<U: Float>(&self) -> Tensor<U> {
        Tensor {
            data: self.data.iter().map(|v| U::from_f64(v.as_f64())).collect(),
            shape: self.shape,
        }
    }

    /// The largest absolute element-wise difference to `other`; NaN if any difference is NaN.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if the shapes differ.
    pub fn max_abs_diff(&self, other: &Self) -> Result<T> {
        check_shape("max_abs_diff", self.shape, other.shape)?;
        Ok(self
            .data
            .iter()
            .zip(&other.data)
            .map(|(&a, &b)| (a - b).abs())
            .fold(T::zero(), |m, d| {
                if m.is_nan() || d.is_nan() {
                    T::nan()
                } else {
                    m.max(d)
                }
            }))
    }

    /// A matrix view of a rank-2 tensor, or of a rank-3 tensor `(d0, d1, d2)` as
    /// `(d0·d1, d2)`; a rank-1 tensor of length `n` is a `1×n` row.
    pub fn as_mat(&self) -> MatRef<'_, T> {
        let (rows, cols) = self.mat_dims();
        MatRef::new(&self.data, rows, cols)
    }

    /// Mutable counterpart of [`Tensor::as_mat`].
    pub fn as_mat_mut(&mut self) -> MatMut<'_, T> {
        let (rows, cols) = self.mat_dims();
        MatMut::new(&mut self.data, rows, cols)
    }

    fn mat_dims(&self) -> (usize, usize) {
        match *self.shape() {
            [n] => (1, n),
            [r, c] => (r, c),
            [a, b, c] => (a * b, c),
            _ => unreachable!("tensors have rank 1 to 3"),
        }
    }

    /// `C ← α·op(A)·op(B) + β·C` for rank-2 tensors, where `op(X)` is `Xᵀ` when its flag is
    /// set. The transposes are strides, not copies.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] (naming `C`'s expected and actual shapes, or `B`'s) if the
    /// operands are not matrices or their shapes do not chain.
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::Tensor;
    ///
    /// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
    /// let mut c = Tensor::zeros(&[2, 2]);
    /// Tensor::gemm(1.0, &a, true, &a, false, 0.0, &mut c)?; // c = aᵀ·a
    /// assert_eq!(c.as_slice(), &[10.0, 14.0, 14.0, 20.0]);
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn gemm(
        alpha: T,
        a: &Self,
        trans_a: bool,
        b: &Self,
        trans_b: bool,
        beta: T,
        c: &mut Self,
    ) -> Result<()> {
        let (a_view, b_view) = (
            a.matrix_view("gemm operand A")?,
            b.matrix_view("gemm operand B")?,
        );
        let a_view = if trans_a { a_view.t() } else { a_view };
        let b_view = if trans_b { b_view.t() } else { b_view };
        let (m, k, n) = (a_view.rows, a_view.cols, b_view.cols);
        if b_view.rows != k {
            let expected = if trans_b { [n, k] } else { [k, n] };
            return Err(Error::ShapeMismatch {
                op: "gemm operand B",
                expected: Shape::from(expected),
                actual: b.shape,
            });
        }
        check_shape("gemm output C", Shape::from([m, n]), c.shape)?;
        gemm(alpha, a_view, b_view, beta, c.as_mat_mut());
        Ok(())
    }

    /// The matrix product `self · other` of two rank-2 tensors.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if the operands are not matrices or the inner dimensions
    /// differ.
    pub fn matmul(&self, other: &Self) -> Result<Self> {
        let rows = self.matrix_view("matmul lhs")?.rows;
        let cols = other.matrix_view("matmul rhs")?.cols;
        let mut out = Self::zeros(&[rows, cols]);
        Self::gemm(T::one(), self, false, other, false, T::zero(), &mut out)?;
        Ok(out)
    }

    fn matrix_view(&self, op: &'static str) -> Result<MatRef<'_, T>> {
        if self.rank() != 2 {
            return Err(Error::RankMismatch {
                op,
                expected: 2,
                layout: "(rows, cols)",
                actual: self.shape,
            });
        }
        Ok(self.as_mat())
    }
}

impl<T: fmt::Debug> fmt::Debug for Tensor<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let limit = if f.alternate() {
            usize::MAX
        } else {
            DEBUG_ELEMENT_LIMIT
        };
        write!(f, "Tensor {{ shape={}, data=[", self.shape)?;
        for (i, v) in self.data.iter().take(limit).enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{v:?}")?;
        }
        if self.data.len() > limit {
            write!(f, ", … {} more", self.data.len() - limit)?;
        }
        write!(f, "] }}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_vec_checks_length_and_rank() {
        let e = Tensor::<f64>::from_vec(vec![0.0; 5], &[2, 3]).unwrap_err();
        assert_eq!(
            e,
            Error::DataLength {
                shape: Shape::from([2, 3]),
                actual: 5
            }
        );
        let e = Tensor::<f64>::from_vec(vec![0.0; 16], &[2, 2, 2, 2]).unwrap_err();
        assert_eq!(e, Error::InvalidRank { rank: 4 });
    }

    #[test]
    fn gemm_reports_both_shapes() {
        let a = Tensor::<f32>::zeros(&[2, 3]);
        let b = Tensor::<f32>::zeros(&[4, 5]);
        let mut c = Tensor::<f32>::zeros(&[2, 5]);
        let e = Tensor::gemm(1.0, &a, false, &b, false, 0.0, &mut c).unwrap_err();
        assert_eq!(
            e.to_string(),
            "shape mismatch in gemm operand B: expected [3, 5], got [4, 5]"
        );
    }

    #[test]
    fn debug_shows_shape_and_elides() {
        let t = Tensor::<f64>::zeros(&[4, 5]);
        let s = format!("{t:?}");
        assert!(
            s.starts_with("Tensor { shape=[4, 5], data=[0.0, 0.0"),
            "{s}"
        );
        assert!(s.ends_with(", … 4 more] }"), "{s}");
        assert!(!format!("{t:#?}").contains('…'));
    }

    #[test]
    fn max_abs_diff_propagates_nan() {
        let a = Tensor::from_vec(vec![1.0f64, f64::NAN, 2.0], &[3]).unwrap();
        assert!(a.max_abs_diff(&a.zeros_like()).unwrap().is_nan());
    }

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
