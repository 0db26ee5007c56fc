//! `Tensor<T>`: an owned, contiguous, row-major array of rank 1 to 3 with its [`Shape`], and
//! element-wise work on it. Its matrix products ([`Tensor::gemm`], [`Tensor::matmul`]) check
//! shapes and call [`crate::linalg`]'s GEMM.

mod shape;

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use rand::Rng;
use rand_distr::{Distribution, StandardNormal, Uniform};

pub(crate) use shape::checked_size;
pub use shape::Shape;

use crate::error::{check_shape, or_panic, Error, Result};
use crate::float::Float;
use crate::linalg::{gemm, MatMut, MatRef};

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
pub struct Tensor<T> {
    data: Vec<T>,
    shape: Shape,
    /// The tensor's identity: new for every tensor made or cloned, kept while it is changed in
    /// place (an optimiser step, a load). Optimisers know a parameter by it.
    id: u64,
}

/// A fresh tensor identity.
fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl<T: Clone> Clone for Tensor<T> {
    /// A copy with an identity of its own.
    fn clone(&self) -> Self {
        Tensor::with_data(self.data.clone(), self.shape)
    }
}

/// Tensors are equal when their shapes and elements are; their identities do not matter.
impl<T: PartialEq> PartialEq for Tensor<T> {
    fn eq(&self, other: &Self) -> bool {
        self.shape == other.shape && self.data == other.data
    }
}

#[track_caller]
fn checked_shape(dims: &[usize]) -> Result<Shape> {
    if dims.is_empty() || dims.len() > 3 {
        return Err(Error::InvalidRank { rank: dims.len() });
    }
    checked_size("tensor", dims)?;
    Ok(Shape::new(dims))
}

/// `len` copies of `value`, or [`Error::Allocation`] (naming `what`) if the memory cannot be
/// had: a size that overflows no integer can still be far beyond the machine.
pub(crate) fn try_filled_vec<T: Copy>(what: &'static str, len: usize, value: T) -> Result<Vec<T>> {
    try_vec_from_fn(what, len, || value)
}

/// `len` values `fill()`, in order, or [`Error::Allocation`] (naming `what`) if the memory
/// cannot be had: the one fallible allocation of the crate's buffers and tensors.
fn try_vec_from_fn<T>(what: &'static str, len: usize, fill: impl FnMut() -> T) -> Result<Vec<T>> {
    let mut data = Vec::new();
    data.try_reserve_exact(len).map_err(|_| Error::Allocation {
        what,
        bytes: len.saturating_mul(core::mem::size_of::<T>()),
    })?;
    data.extend(core::iter::repeat_with(fill).take(len));
    Ok(data)
}

impl<T> Tensor<T> {
    /// A tensor of `data` laid out as `shape` (which the caller has checked), with a fresh
    /// identity.
    fn with_data(data: Vec<T>, shape: Shape) -> Self {
        debug_assert_eq!(data.len(), shape.len());
        Tensor {
            data,
            shape,
            id: next_id(),
        }
    }

    /// The tensor's identity: distinct for every tensor made or cloned, kept while it is
    /// changed in place.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

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
        Ok(Tensor::with_data(data, shape))
    }

    /// A tensor of zeros.
    ///
    /// # Panics
    ///
    /// Panics unless `dims` has 1 to 3 entries whose product fits in `usize`, or if the memory
    /// cannot be allocated ([`Tensor::try_zeros`] returns an error instead).
    #[track_caller]
    pub fn zeros(dims: &[usize]) -> Self {
        Self::full(dims, T::zero())
    }

    /// A tensor of zeros, or an error if it cannot be made.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRank`] unless `dims` has 1 to 3 entries; [`Error::SizeOverflow`] if
    /// their product does not fit in `usize`; [`Error::Allocation`] if the memory cannot be
    /// allocated.
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::{Error, Tensor};
    ///
    /// assert_eq!(Tensor::<f32>::try_zeros(&[2, 3])?.len(), 6);
    /// let e = Tensor::<f32>::try_zeros(&[1 << 32, 1 << 32]).unwrap_err();
    /// assert!(matches!(e, Error::SizeOverflow { .. }));
    /// let e = Tensor::<f32>::try_zeros(&[1 << 40, 1 << 20]).unwrap_err(); // 4 EiB
    /// assert!(matches!(e, Error::Allocation { .. }));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn try_zeros(dims: &[usize]) -> Result<Self> {
        Self::try_full(dims, T::zero())
    }

    /// A tensor with every element equal to `value`.
    ///
    /// # Panics
    ///
    /// As [`Tensor::zeros`].
    #[track_caller]
    pub fn full(dims: &[usize], value: T) -> Self {
        or_panic(Self::try_full(dims, value))
    }

    fn try_full(dims: &[usize], value: T) -> Result<Self> {
        Self::try_from_fn("tensor", dims, || value)
    }

    /// A tensor of shape `dims` whose elements are `fill()` in row-major order, allocated
    /// fallibly; errors name `what` (for example `"linear weight"`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRank`] unless `dims` has 1 to 3 entries; [`Error::SizeOverflow`] if
    /// the number of elements, or of bytes, does not fit in `usize`; [`Error::Allocation`] if
    /// the memory cannot be allocated.
    pub(crate) fn try_from_fn(
        what: &'static str,
        dims: &[usize],
        fill: impl FnMut() -> T,
    ) -> Result<Self> {
        if dims.is_empty() || dims.len() > 3 {
            return Err(Error::InvalidRank { rank: dims.len() });
        }
        let len = checked_size(what, dims)?;
        // the bytes too, so that an overflow is named as one rather than as a failed allocation
        let mut bytes = dims.to_vec();
        bytes.push(core::mem::size_of::<T>());
        checked_size(what, &bytes)?;
        Ok(Tensor::with_data(
            try_vec_from_fn(what, len, fill)?,
            Shape::new(dims),
        ))
    }

    /// A tensor with elements drawn independently from `U(low, high)`.
    ///
    /// # Panics
    ///
    /// As [`Tensor::zeros`], and unless `low < high`, both finite.
    #[track_caller]
    pub fn uniform<R: Rng + ?Sized>(dims: &[usize], low: T, high: T, rng: &mut R) -> Self {
        or_panic(Self::try_uniform("tensor", dims, low, high, rng))
    }

    /// [`Tensor::uniform`], returning an error where it panics.
    pub(crate) fn try_uniform<R: Rng + ?Sized>(
        what: &'static str,
        dims: &[usize],
        low: T,
        high: T,
        rng: &mut R,
    ) -> Result<Self> {
        let dist =
            Uniform::new(low.as_f64(), high.as_f64()).map_err(|e| Error::InvalidArgument {
                name: "uniform bounds",
                reason: format!("[{low}, {high}): {e}"),
            })?;
        Self::try_from_fn(what, dims, || T::from_f64(dist.sample(rng)))
    }

    /// A tensor with elements drawn independently from the standard normal `N(0, 1)`.
    ///
    /// # Panics
    ///
    /// As [`Tensor::zeros`].
    #[track_caller]
    pub fn randn<R: Rng + ?Sized>(dims: &[usize], rng: &mut R) -> Self {
        or_panic(Self::try_randn("tensor", dims, rng))
    }

    /// [`Tensor::randn`], returning an error where it panics.
    pub(crate) fn try_randn<R: Rng + ?Sized>(
        what: &'static str,
        dims: &[usize],
        rng: &mut R,
    ) -> Result<Self> {
        Self::try_from_fn(what, dims, || {
            let x: f64 = StandardNormal.sample(rng);
            T::from_f64(x)
        })
    }

    /// A tensor of zeros with the shape of `self`.
    #[must_use = "returns a new tensor and does not modify self"]
    pub fn zeros_like(&self) -> Self {
        Tensor::with_data(vec![T::zero(); self.data.len()], self.shape)
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
        Tensor::with_data(self.data.iter().copied().map(f).collect(), self.shape)
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
        Tensor::with_data(
            self.data.iter().map(|v| U::from_f64(v.as_f64())).collect(),
            self.shape,
        )
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
    /// [`Error::RankMismatch`] if an operand is not a matrix; [`Error::ShapeMismatch`] (naming
    /// `C`'s expected and actual shapes, or `B`'s) if their shapes do not chain.
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
        let (m, k, n) = (a_view.rows(), a_view.cols(), b_view.cols());
        if b_view.rows() != k {
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
        let rows = self.matrix_view("matmul lhs")?.rows();
        let cols = other.matrix_view("matmul rhs")?.cols();
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
        // the product of the dimensions wraps to 0 without a checked product
        let e = Tensor::<f64>::from_vec(vec![], &[1 << 32, 1 << 32]).unwrap_err();
        assert_eq!(
            e,
            Error::SizeOverflow {
                what: "tensor",
                sizes: vec![1 << 32, 1 << 32]
            }
        );
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
}
