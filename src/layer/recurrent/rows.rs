//! Where each step of each sample lives: in a sequence tensor (time-major or batch-first), and
//! in the packed rows a recurrent layer runs on, where the samples are sorted by decreasing
//! length (the order PyTorch packs them) so that those still running at step `t` are a prefix.

use super::super::pool::Pool;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::tensor::{try_filled_vec, Shape, Tensor};

/// The layout of a sequence tensor: `(T, B, F)`, or `(B, T, F)` when batch-first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SeqLayout {
    pub(crate) seq_len: usize,
    pub(crate) batch: usize,
    pub(crate) batch_first: bool,
}

impl SeqLayout {
    /// The row (the index of the feature vector) of step `t` of sample `b`.
    #[inline]
    pub(crate) fn row(&self, t: usize, b: usize) -> usize {
        if self.batch_first {
            b * self.seq_len + t
        } else {
            t * self.batch + b
        }
    }

    /// The shape of a tensor of this layout with `features` per step.
    pub(crate) fn shape(&self, features: usize) -> Shape {
        if self.batch_first {
            Shape::from([self.batch, self.seq_len, features])
        } else {
            Shape::from([self.seq_len, self.batch, features])
        }
    }

    /// The axis of the batch: 0 batch-first, 1 time-major.
    pub(crate) fn batch_axis(&self) -> usize {
        usize::from(!self.batch_first)
    }
}

/// Checks `lengths`: one per sample, each in `1..=seq_len`.
pub(crate) fn check_lengths(lengths: Option<&[usize]>, seq_len: usize, batch: usize) -> Result<()> {
    let Some(lengths) = lengths else {
        return Ok(());
    };
    if lengths.len() != batch {
        return Err(Error::LengthCount {
            expected: batch,
            actual: lengths.len(),
        });
    }
    match lengths
        .iter()
        .enumerate()
        .find(|(_, &l)| l == 0 || l > seq_len)
    {
        Some((index, &length)) => Err(Error::InvalidLength {
            index,
            length,
            seq_len,
        }),
        None => Ok(()),
    }
}

/// The packed order of a batch: which sample each packed row holds, and how many samples still
/// run at each step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Packing {
    /// `order[j]` is the sample at packed row `j`; `None` without lengths (the identity).
    order: Option<Vec<usize>>,
    /// Samples still running at each step.
    pub(crate) batch_sizes: Vec<usize>,
}

impl Packing {
    /// Validates `lengths` against the batch and sorts the samples by decreasing length
    /// (stable, so equal lengths keep their order).
    pub(crate) fn new(lengths: Option<&[usize]>, seq_len: usize, batch: usize) -> Result<Self> {
        check_lengths(lengths, seq_len, batch)?;
        // an input without features can have any number of steps
        let mut batch_sizes = try_filled_vec("batch sizes", seq_len, batch)?;
        let Some(lengths) = lengths else {
            return Ok(Packing {
                order: None,
                batch_sizes,
            });
        };
        let mut order: Vec<usize> = (0..batch).collect();
        order.sort_by_key(|&b| core::cmp::Reverse(lengths[b]));
        for (t, running) in batch_sizes.iter_mut().enumerate() {
            *running = lengths.iter().filter(|&&l| l > t).count();
        }
        Ok(Packing {
            order: Some(order),
            batch_sizes,
        })
    }

    /// The order, if the samples were sorted.
    pub(crate) fn order(&self) -> Option<&[usize]> {
        self.order.as_deref()
    }

    /// The sample at packed row `j`.
    #[inline]
    pub(crate) fn sample(&self, j: usize) -> usize {
        self.order.as_ref().map_or(j, |o| o[j])
    }

    /// Whether packed rows are the layout's rows already (time-major, no reordering).
    pub(crate) fn is_identity(&self, layout: SeqLayout) -> bool {
        self.order.is_none() && !layout.batch_first
    }
}

/// Packed rows `(T·B, width)` from a sequence tensor's values: row `t·B + j` is step `t` of
/// sample `order[j]` while it runs, and zero after its end.
pub(crate) fn pack_rows<T: Float>(
    pool: &Pool,
    src: &[T],
    layout: SeqLayout,
    width: usize,
    packing: &Packing,
) -> Result<Vec<T>> {
    if packing.is_identity(layout) {
        let mut rows = pool.scratch(src.len())?;
        rows.copy_from_slice(src);
        return Ok(rows);
    }
    let batch = layout.batch;
    let mut rows = pool.zeroed(layout.seq_len * batch * width)?;
    for (t, &bt) in packing.batch_sizes.iter().enumerate() {
        for j in 0..bt {
            let from = layout.row(t, packing.sample(j)) * width;
            rows[(t * batch + j) * width..][..width].copy_from_slice(&src[from..][..width]);
        }
    }
    Ok(rows)
}

/// The inverse of [`pack_rows`]: a sequence tensor whose step `t` of the sample at packed row
/// `j` is `src[row(t, j)..][..width]`, zero after the sample's end.
pub(crate) fn unpack_rows<T: Float>(
    src: &[T],
    row: impl Fn(usize, usize) -> usize,
    layout: SeqLayout,
    width: usize,
    packing: &Packing,
) -> Tensor<T> {
    let mut out = vec![T::zero(); layout.seq_len * layout.batch * width];
    for (t, &bt) in packing.batch_sizes.iter().enumerate() {
        for j in 0..bt {
            let to = layout.row(t, packing.sample(j)) * width;
            out[to..][..width].copy_from_slice(&src[row(t, j)..][..width]);
        }
    }
    Tensor::from_vec(out, layout.shape(width).dims())
        .expect("the sequence buffer matches its shape")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_in_both_layouts() {
        let pool = Pool::default();
        // T = 3, B = 2, lengths (2, 3): sample 1 runs longer, so it is packed first
        let packing = Packing::new(Some(&[2, 3]), 3, 2).unwrap();
        assert_eq!(packing.order(), Some(&[1, 0][..]));
        assert_eq!(packing.batch_sizes, [2, 2, 1]);
        for batch_first in [false, true] {
            let layout = SeqLayout {
                seq_len: 3,
                batch: 2,
                batch_first,
            };
            // one feature: 10·b + t
            let mut src = vec![0.0f64; 6];
            for t in 0..3 {
                for b in 0..2 {
                    src[layout.row(t, b)] = (10 * b + t) as f64;
                }
            }
            let rows = pack_rows(&pool, &src, layout, 1, &packing).unwrap();
            assert_eq!(rows, [10.0, 0.0, 11.0, 1.0, 12.0, 0.0]);
            let back = unpack_rows(&rows, |t, j| t * 2 + j, layout, 1, &packing);
            // sample 0's third step is padding: zero
            src[layout.row(2, 0)] = 0.0;
            assert_eq!(back.as_slice(), &src[..]);
            assert_eq!(back.raw_shape(), layout.shape(1));
        }
    }

    #[test]
    fn lengths_are_checked() {
        assert_eq!(
            Packing::new(Some(&[1]), 3, 2).unwrap_err(),
            Error::LengthCount {
                expected: 2,
                actual: 1
            }
        );
        assert!(Packing::new(Some(&[1, 4]), 3, 2).is_err());
        assert!(Packing::new(Some(&[0, 1]), 3, 2).is_err());
    }
}
