//! [`TokenBatch`], a time-major batch of token ids, and [`pad_collate`], which makes one from
//! sequences of different lengths.

use core::fmt;

use crate::error::{Error, Result};
use crate::layer::check_lengths;
use crate::tensor::{checked_size, try_filled_vec, Shape};

/// A time-major batch of token ids `(T, B)`, sample `b`'s token at step `t` at `t·B + b`,
/// with each sample's length when they differ: the input of an
/// [`Embedding`](crate::Embedding) in a model over sequences, which turns it into a
/// [`Sequence`](crate::Sequence) with the same lengths. Ids past a sample's length are padding
/// and never read as tokens (an embedding still needs them to be valid ids).
///
/// # Examples
///
/// ```
/// use recurrent::TokenBatch;
///
/// // two sequences, [4, 8, 1] and [6, 2], padded with 0
/// let batch = TokenBatch::new(vec![4, 6, 8, 2, 1, 0], 3, 2, Some(vec![3, 2]))?;
/// assert_eq!((batch.steps(), batch.batch_size()), (3, 2));
/// assert_eq!(batch.length(1), 2);
/// assert_eq!(format!("{batch:?}"), "TokenBatch { shape: [3, 2], lengths: Some([3, 2]) }");
///
/// let e = TokenBatch::new(vec![4, 6, 8], 2, 2, None).unwrap_err();
/// assert_eq!(e.to_string(), "data length mismatch: shape [2, 2] needs 4 values, got 3");
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct TokenBatch {
    ids: Vec<usize>,
    steps: usize,
    batch_size: usize,
    lengths: Option<Vec<usize>>,
}

impl TokenBatch {
    /// A batch from its time-major ids (`T·B` of them) and, optionally, each sample's length
    /// (`None`: every sample has all `T` steps).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if `T` is 0; [`Error::SizeOverflow`] if `T·B` does not fit
    /// in `usize`; [`Error::DataLength`] unless
    /// there are `T·B` ids; [`Error::LengthCount`] unless there is one length per sample;
    /// [`Error::InvalidLength`] for a length outside `1..=T`.
    pub fn new(
        ids: Vec<usize>,
        steps: usize,
        batch_size: usize,
        lengths: Option<Vec<usize>>,
    ) -> Result<Self> {
        if steps == 0 {
            return Err(Error::InvalidArgument {
                name: "token batch",
                reason: "a batch of sequences needs at least one step".into(),
            });
        }
        let len = checked_size("token batch", &[steps, batch_size])?;
        if ids.len() != len {
            return Err(Error::DataLength {
                shape: Shape::new(&[steps, batch_size]),
                actual: ids.len(),
            });
        }
        check_lengths(lengths.as_deref(), steps, batch_size)?;
        Ok(TokenBatch {
            ids,
            steps,
            batch_size,
            lengths,
        })
    }

    /// The ids, time-major: sample `b`'s token at step `t` at `t·B + b`.
    pub fn ids(&self) -> &[usize] {
        &self.ids
    }

    /// The token of sample `b` at step `t`.
    ///
    /// # Panics
    ///
    /// If `t` is not below [`steps`](TokenBatch::steps) or `b` not below
    /// [`batch_size`](TokenBatch::batch_size).
    #[track_caller]
    pub fn at(&self, t: usize, b: usize) -> usize {
        assert!(
            t < self.steps && b < self.batch_size,
            "step {t} of sample {b} in a batch of {} steps and {} samples",
            self.steps,
            self.batch_size
        );
        self.ids[t * self.batch_size + b]
    }

    /// The ids, consuming the batch.
    pub fn into_ids(self) -> Vec<usize> {
        self.ids
    }

    /// The number of time steps `T` (the longest sample).
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// The number of samples `B`.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Each sample's number of valid steps, if they were given.
    pub fn lengths(&self) -> Option<&[usize]> {
        self.lengths.as_deref()
    }

    /// The number of valid steps of sample `b`.
    ///
    /// # Panics
    ///
    /// If `b` is not below [`batch_size`](TokenBatch::batch_size).
    #[track_caller]
    pub fn length(&self, b: usize) -> usize {
        assert!(b < self.batch_size, "sample {b} of {}", self.batch_size);
        self.lengths.as_ref().map_or(self.steps, |l| l[b])
    }
}

impl fmt::Debug for TokenBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenBatch")
            .field("shape", &[self.steps, self.batch_size])
            .field("lengths", &self.lengths)
            .finish()
    }
}

/// Pads token sequences of different lengths into one time-major [`TokenBatch`]: `T` is the
/// longest sequence, shorter ones are followed by `pad`, and the batch records every length.
///
/// With `max_len`, each sequence longer than it is truncated to its first `max_len` tokens
/// (the rest are dropped), so `T ≤ max_len`.
///
/// # Errors
///
/// [`Error::InvalidArgument`] if there are no sequences, if a sequence is empty (naming the
/// sample), or if `max_len` is `Some(0)`; [`Error::Allocation`] if the batch does not fit in
/// memory.
///
/// # Examples
///
/// ```
/// use recurrent::pad_collate;
///
/// let batch = pad_collate(&[vec![4, 8, 1], vec![6, 2], vec![5, 5, 5, 5]], 0, Some(3))?;
/// assert_eq!(batch.steps(), 3);
/// assert_eq!(batch.lengths(), Some(&[3, 2, 3][..]));
/// // time-major: step 0 of every sample, then step 1, …
/// assert_eq!(batch.ids(), &[4, 6, 5, 8, 2, 5, 1, 0, 5]);
///
/// let e = pad_collate(&[vec![4], vec![]], 0, None).unwrap_err();
/// assert_eq!(e.to_string(), "invalid sequence: sample 1 of the batch is empty");
/// # Ok::<(), recurrent::Error>(())
/// ```
pub fn pad_collate(
    sequences: &[impl AsRef<[usize]>],
    pad: usize,
    max_len: Option<usize>,
) -> Result<TokenBatch> {
    if sequences.is_empty() {
        return Err(Error::InvalidArgument {
            name: "batch",
            reason: "no sequences to pad".to_string(),
        });
    }
    if max_len == Some(0) {
        return Err(Error::InvalidArgument {
            name: "max_len",
            reason: "0: a sequence needs at least one step".to_string(),
        });
    }
    if let Some(b) = sequences.iter().position(|s| s.as_ref().is_empty()) {
        return Err(Error::InvalidArgument {
            name: "sequence",
            reason: format!("sample {b} of the batch is empty"),
        });
    }
    let limit = max_len.unwrap_or(usize::MAX);
    let lengths: Vec<usize> = sequences
        .iter()
        .map(|s| s.as_ref().len().min(limit))
        .collect();
    let steps = lengths.iter().copied().max().unwrap_or(0);
    let batch_size = sequences.len();
    let len = checked_size("token batch", &[steps, batch_size])?;
    let mut ids = try_filled_vec("token batch", len, pad)?;
    for (b, (s, &length)) in sequences.iter().zip(&lengths).enumerate() {
        for (t, &id) in s.as_ref()[..length].iter().enumerate() {
            ids[t * batch_size + b] = id;
        }
    }
    TokenBatch::new(ids, steps, batch_size, Some(lengths))
}
