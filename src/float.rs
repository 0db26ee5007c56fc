//! The element types of the crate: `f32` for speed, `f64` for gradient checks.

use core::fmt::{Debug, Display};
use core::iter::Sum;

/// The raw GEMM of `matrixmultiply` (`sgemm` or `dgemm`): `C ← α·A·B + β·C` over strided
/// row/column layouts. Only the safe [`crate::gemm`] calls it.
pub(crate) type RawGemm<T> = unsafe fn(
    usize,
    usize,
    usize,
    T,
    *const T,
    isize,
    isize,
    *const T,
    isize,
    isize,
    T,
    *mut T,
    isize,
    isize,
);

pub(crate) mod private {
    use core::ops::Range;

    use super::RawGemm;
    use crate::linalg::{MatMut, MatRef, PackedWeight};

    /// Seals [`super::Float`] and carries what must not be public: the raw GEMM kernel and
    /// the gate non-linearities over slices, the element type of weight files.
    pub trait Sealed: Sized {
        /// `matrixmultiply::sgemm` or `dgemm`.
        const GEMM: RawGemm<Self>;

        /// The element type in a safetensors file.
        const DTYPE: safetensors::Dtype;

        /// [`Sealed::DTYPE`]'s name in a file's header, for messages.
        const DTYPE_NAME: &'static str;

        /// `x ← σ(x)` for every element.
        fn sigmoid_slice(xs: &mut [Self]);

        /// `x ← tanh x` for every element.
        fn tanh_slice(xs: &mut [Self]);

        /// `C ← A·B + β·C` on the columns of `panels` of a packed `B`, shapes checked: the
        /// per-step product (SIMD tiles for `f32`, portable ones for `f64`); with `split`, half
        /// of it on the worker thread.
        fn packed_product(
            a: MatRef<'_, Self>,
            b: &PackedWeight<Self>,
            beta: Self,
            c: MatMut<'_, Self>,
            panels: Range<usize>,
            split: bool,
        );
    }

    impl Sealed for f32 {
        const GEMM: RawGemm<f32> = matrixmultiply::sgemm;
        const DTYPE: safetensors::Dtype = safetensors::Dtype::F32;
        const DTYPE_NAME: &'static str = "F32";

        fn sigmoid_slice(xs: &mut [f32]) {
            crate::activation::sigmoid_f32_slice(xs);
        }

        fn tanh_slice(xs: &mut [f32]) {
            crate::activation::tanh_f32_slice(xs);
        }

        fn packed_product(
            a: MatRef<'_, f32>,
            b: &PackedWeight<f32>,
            beta: f32,
            c: MatMut<'_, f32>,
            panels: Range<usize>,
            split: bool,
        ) {
            crate::linalg::product_f32(a, b, beta, c, panels, split);
        }
    }

    impl Sealed for f64 {
        const GEMM: RawGemm<f64> = matrixmultiply::dgemm;
        const DTYPE: safetensors::Dtype = safetensors::Dtype::F64;
        const DTYPE_NAME: &'static str = "F64";

        fn sigmoid_slice(xs: &mut [f64]) {
            for x in xs {
                *x = super::Float::sigmoid(*x);
            }
        }

        fn tanh_slice(xs: &mut [f64]) {
            for x in xs {
                *x = x.tanh();
            }
        }

        fn packed_product(
            a: MatRef<'_, f64>,
            b: &PackedWeight<f64>,
            beta: f64,
            c: MatMut<'_, f64>,
            panels: Range<usize>,
            split: bool,
        ) {
            crate::linalg::product_portable(a, b, beta, c, panels, split);
        }
    }
}

/// A floating-point element type: `f32` or `f64`.
///
/// It is [`num_traits::Float`] plus a statically dispatched matrix product (`f32` uses
/// `matrixmultiply::sgemm`, `f64` uses `matrixmultiply::dgemm`). The trait is sealed: it is
/// implemented for exactly these two types.
pub trait Float:
    num_traits::Float + Debug + Display + Default + Sum + Send + Sync + 'static + private::Sealed
{
    /// Converts an `f64` to this type (rounding to nearest for `f32`).
    fn from_f64(value: f64) -> Self;

    /// Converts this value to `f64` (exactly).
    fn as_f64(self) -> f64;

    /// The logistic sigmoid `1 / (1 + e^(−x))`, written so that it never overflows.
    #[inline]
    fn sigmoid(self) -> Self {
        if self >= Self::zero() {
            Self::one() / (Self::one() + (-self).exp())
        } else {
            let e = self.exp();
            e / (Self::one() + e)
        }
    }
}

impl Float for f32 {
    #[inline]
    fn from_f64(value: f64) -> Self {
        value as f32
    }

    #[inline]
    fn as_f64(self) -> f64 {
        f64::from(self)
    }
}

impl Float for f64 {
    #[inline]
    fn from_f64(value: f64) -> Self {
        value
    }

    #[inline]
    fn as_f64(self) -> f64 {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::Float;

    #[test]
    fn sigmoid_is_stable_at_both_ends() {
        assert_eq!(Float::sigmoid(0.0f64), 0.5);
        assert_eq!(Float::sigmoid(-1000.0f64), 0.0);
        assert_eq!(Float::sigmoid(1000.0f64), 1.0);
        let x = 0.3f64;
        assert!((Float::sigmoid(x) - 1.0 / (1.0 + (-x).exp())).abs() < 1e-16);
        assert!((Float::sigmoid(-x) - 1.0 / (1.0 + x.exp())).abs() < 1e-16);
    }
}
