//! [`Shape`]: the dimensions of a tensor, with checked size products.

use core::fmt;

use crate::error::{Error, Result};

/// The shape of a tensor: up to three dimensions, printed as `[2, 3, 4]`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Shape {
    dims: [usize; 3],
    rank: u8,
}

impl Shape {
    /// Builds a shape from its dimensions.
    ///
    /// # Panics
    ///
    /// Panics if `dims` has more than three entries.
    #[track_caller]
    pub fn new(dims: &[usize]) -> Shape {
        assert!(
            dims.len() <= 3,
            "a shape has at most 3 dimensions, got {}",
            dims.len()
        );
        let mut all = [0; 3];
        all[..dims.len()].copy_from_slice(dims);
        Shape {
            dims: all,
            rank: dims.len() as u8,
        }
    }

    /// The dimensions, outermost first.
    pub fn dims(&self) -> &[usize] {
        &self.dims[..usize::from(self.rank)]
    }

    /// The number of dimensions.
    pub fn rank(&self) -> usize {
        usize::from(self.rank)
    }

    /// The number of elements (the product of the dimensions; 1 for rank 0), or `None` if
    /// that product overflows `usize`.
    pub fn checked_len(&self) -> Option<usize> {
        checked_product(self.dims())
    }

    /// The number of elements (the product of the dimensions; 1 for rank 0), saturating at
    /// `usize::MAX`. A tensor's shape never saturates: [`crate::Tensor`] checks the product
    /// when it is made.
    pub fn len(&self) -> usize {
        self.checked_len().unwrap_or(usize::MAX)
    }

    /// Whether the shape holds no element.
    pub fn is_empty(&self) -> bool {
        self.dims().contains(&0)
    }
}

impl From<&[usize]> for Shape {
    fn from(dims: &[usize]) -> Shape {
        Shape::new(dims)
    }
}

impl<const N: usize> From<[usize; N]> for Shape {
    fn from(dims: [usize; N]) -> Shape {
        Shape::new(&dims)
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.dims()).finish()
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The product of `sizes`, or `None` if it overflows `usize`. A zero anywhere makes the product
/// zero, as the number of elements of a shape with an empty axis.
pub(crate) fn checked_product(sizes: &[usize]) -> Option<usize> {
    if sizes.contains(&0) {
        return Some(0);
    }
    sizes.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// The product of `sizes`, or [`Error::SizeOverflow`] naming `what` and the sizes.
pub(crate) fn checked_size(what: &'static str, sizes: &[usize]) -> Result<usize> {
    checked_product(sizes).ok_or_else(|| Error::SizeOverflow {
        what,
        sizes: sizes.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_are_checked() {
        assert_eq!(checked_product(&[2, 3, 4]), Some(24));
        assert_eq!(checked_product(&[]), Some(1));
        assert_eq!(checked_product(&[1 << 32, 1 << 32]), None);
        // an empty axis makes any shape empty, however large the others
        assert_eq!(checked_product(&[usize::MAX, 0, usize::MAX]), Some(0));
        let big = Shape::new(&[1 << 32, 1 << 32]);
        assert_eq!(big.checked_len(), None);
        assert_eq!(big.len(), usize::MAX);
        assert!(!big.is_empty());
        let e = checked_size("weight", &[1 << 40, 1 << 24]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "size overflow in weight: the product of [1099511627776, 16777216] does not fit in usize"
        );
    }
}
