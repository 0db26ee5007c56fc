//! [`Sequence`]: a time-major batch of variable-length sequences, the value that flows between
//! the layers of a model over sequences.

use core::fmt;

use crate::error::{check_shape, Error, Result};
use crate::float::Float;
use crate::layer::check_lengths;
use crate::tensor::Tensor;

/// A time-major batch of sequences: features `(T, B, F)` and, when the sequences have lengths
/// of their own, each one's number of valid steps (PyTorch's `PackedSequence` semantics: steps
/// `t ≥ length_b` of sample `b` are padding and never read).
///
/// It is what an [`Embedding`](crate::Embedding) makes from a [`TokenBatch`](crate::TokenBatch),
/// what a recurrent network reads and writes as a [`Layer`](crate::Layer), and what the
/// sequence adapters ([`LastHidden`](crate::LastHidden), [`MeanPool`](crate::MeanPool), …)
/// reduce to one row per sample. The gradient of a `Sequence` is a plain `(T, B, F)` tensor.
///
/// A recurrent network's output also records how many directions its features hold (`[forward;
/// reverse]` halves for a bidirectional network), so that [`LastHidden`](crate::LastHidden)
/// can take each direction's final state.
///
/// # Examples
///
/// ```
/// use recurrent::{Sequence, Tensor};
///
/// let x = Tensor::<f32>::zeros(&[5, 3, 8]);
/// let seq = Sequence::new(x, Some(vec![5, 2, 4]))?;
/// assert_eq!((seq.steps(), seq.batch_size(), seq.features()), (5, 3, 8));
/// assert_eq!(seq.length(1), 2);
///
/// let e = Sequence::new(Tensor::<f32>::zeros(&[5, 3, 8]), Some(vec![5, 6, 1])).unwrap_err();
/// assert_eq!(e.to_string(), "invalid sequence length 6 at batch index 1: lengths must be in 1..=5");
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Clone, PartialEq)]
pub struct Sequence<T> {
    data: Tensor<T>,
    lengths: Option<Vec<usize>>,
    directions: usize,
}

impl<T: Float> Sequence<T> {
    /// A batch of sequences from its `(T, B, F)` features and, optionally, each sequence's
    /// length (`None`: every sequence has all `T` steps).
    ///
    /// # Errors
    ///
    /// [`Error::RankMismatch`] unless `data` has rank 3; [`Error::InvalidArgument`] if it has
    /// no step; [`Error::LengthCount`] unless there is
    /// one length per sample; [`Error::InvalidLength`] for a length outside `1..=T`.
    pub fn new(data: Tensor<T>, lengths: Option<Vec<usize>>) -> Result<Self> {
        if data.rank() != 3 {
            return Err(Error::RankMismatch {
                op: "sequence",
                expected: 3,
                layout: "(T, B, F)",
                actual: data.raw_shape(),
            });
        }
        let shape = data.shape();
        if shape[0] == 0 {
            return Err(Error::InvalidArgument {
                name: "sequence",
                reason: "a batch of sequences needs at least one step".into(),
            });
        }
        check_lengths(lengths.as_deref(), shape[0], shape[1])?;
        Ok(Sequence {
            data,
            lengths,
            directions: 1,
        })
    }

    /// The same sequences with `data` as features: the lengths are kept, and so is the number
    /// of directions if the number of features is.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] unless `data` is `(T, B, F')` with this batch's `T` and `B`.
    pub fn with_data(&self, data: Tensor<T>) -> Result<Self> {
        let features = if data.rank() == 3 { data.shape()[2] } else { 0 };
        let expected = [self.steps(), self.batch_size(), features];
        check_shape("sequence data", expected.into(), data.raw_shape())?;
        let directions = if features == self.features() {
            self.directions
        } else {
            1
        };
        Ok(Sequence {
            data,
            lengths: self.lengths.clone(),
            directions,
        })
    }

    /// The same sequences, their features marked as `directions` equal blocks
    /// `[forward; reverse]`, as a bidirectional layer writes them ([`LastHidden`] reads each
    /// direction's final state from its own block). A sequence layer of your own that reads
    /// both ways marks its output with it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] unless `directions` is at least 1 and divides the number of
    /// features.
    ///
    /// [`LastHidden`]: crate::LastHidden
    pub fn with_directions(mut self, directions: usize) -> Result<Self> {
        if directions == 0 || !self.features().is_multiple_of(directions) {
            return Err(Error::InvalidArgument {
                name: "directions",
                reason: format!(
                    "{directions} direction blocks do not divide {} features",
                    self.features()
                ),
            });
        }
        self.directions = directions;
        Ok(self)
    }
}

impl<T> Sequence<T> {
    /// The features, `(T, B, F)`; past each sequence's length, whatever the producer wrote
    /// there (zeros for the layers of this crate).
    pub fn data(&self) -> &Tensor<T> {
        &self.data
    }

    /// The features, consuming the sequence.
    pub fn into_data(self) -> Tensor<T> {
        self.data
    }

    /// Each sequence's number of valid steps, if they differ from `T`.
    pub fn lengths(&self) -> Option<&[usize]> {
        self.lengths.as_deref()
    }

    /// The number of valid steps of sample `b`.
    ///
    /// # Panics
    ///
    /// If `b` is not below [`batch_size`](Sequence::batch_size).
    #[track_caller]
    pub fn length(&self, b: usize) -> usize {
        assert!(b < self.batch_size(), "sample {b} of {}", self.batch_size());
        self.lengths.as_ref().map_or(self.steps(), |l| l[b])
    }

    /// The number of time steps `T` (the longest sequence).
    pub fn steps(&self) -> usize {
        self.data.shape()[0]
    }

    /// The number of sequences `B`.
    pub fn batch_size(&self) -> usize {
        self.data.shape()[1]
    }

    /// Features per step `F`.
    pub fn features(&self) -> usize {
        self.data.shape()[2]
    }

    /// The valid steps, time-major (every sample's step 0, then step 1, …), each as
    /// `(t, b, features)`: what a per-step metric or prediction reads, padding skipped.
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::{Sequence, Tensor};
    ///
    /// let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 0.0], &[2, 2, 1])?;
    /// let seq = Sequence::new(x, Some(vec![2, 1]))?;
    /// let steps: Vec<_> = seq.valid_steps().collect();
    /// assert_eq!(steps, [(0, 0, &[1.0][..]), (0, 1, &[2.0][..]), (1, 0, &[3.0][..])]);
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn valid_steps(&self) -> impl Iterator<Item = (usize, usize, &[T])> {
        let (b_n, f_n) = (self.batch_size(), self.features());
        self.data
            .as_slice()
            .chunks(f_n.max(1))
            .take(self.steps() * b_n)
            .enumerate()
            .map(move |(row, features)| (row / b_n, row % b_n, features))
            .filter(move |&(t, b, _)| t < self.length(b))
    }

    /// How many direction blocks the features hold: 2 for the output of a bidirectional
    /// network (`[forward; reverse]`), otherwise 1.
    pub fn directions(&self) -> usize {
        self.directions
    }
}

impl<T: fmt::Debug> fmt::Debug for Sequence<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sequence")
            .field("shape", &self.data.shape())
            .field("lengths", &self.lengths)
            .field("directions", &self.directions)
            .finish()
    }
}

/// Zeroes the time-major rows of `features` values past each sample's length (one length per
/// sample); does nothing without lengths.
pub(crate) fn zero_padding<T: Float>(rows: &mut [T], features: usize, lengths: Option<&[usize]>) {
    let Some(lengths) = lengths else {
        return;
    };
    let batch = lengths.len();
    for (row, values) in rows.chunks_mut(features.max(1)).enumerate() {
        if row / batch >= lengths[row % batch] {
            values.iter_mut().for_each(|v| *v = T::zero());
        }
    }
}
