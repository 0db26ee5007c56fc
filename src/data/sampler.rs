//! [`BatchSampler`]: the batches of each epoch, as indices into a data set, shuffled from a
//! seed and optionally grouped by length.

use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};

use crate::error::{Error, Result};

/// The options of a [`BatchSampler`]: `BatchSamplerConfig::new(num_items, batch_size)`, then
/// `with_*` options, then [`init`](BatchSamplerConfig::init).
///
/// # Examples
///
/// ```
/// use recurrent::BatchSamplerConfig;
///
/// let sampler = BatchSamplerConfig::new(10, 4).init()?;
/// assert_eq!(sampler.epoch(0), [vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9]]);
/// let sampler = BatchSamplerConfig::new(10, 4).with_drop_last(true).init()?;
/// assert_eq!(sampler.num_batches(), 2);
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchSamplerConfig {
    num_items: usize,
    batch_size: usize,
    seed: Option<u64>,
    buckets: Option<(Vec<usize>, usize)>,
    drop_last: bool,
}

impl BatchSamplerConfig {
    /// Batches of `batch_size` indices over the items `0..num_items`.
    pub fn new(num_items: usize, batch_size: usize) -> Self {
        BatchSamplerConfig {
            num_items,
            batch_size,
            seed: None,
            buckets: None,
            drop_last: false,
        }
    }

    /// Shuffles every epoch: epoch `e` is a permutation drawn from `(seed, e)`, so epochs
    /// differ from each other and a rerun with the same seed repeats them.
    ///
    /// Defaults to no shuffling (the items in order, every epoch the same).
    #[must_use]
    pub fn with_shuffle(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Groups items of similar length, given each item's `lengths`: the (shuffled) items are
    /// cut into pools of `bucket_batches · batch_size`, each pool is sorted by length (stably,
    /// so that equal lengths keep their shuffled order) and cut into batches, and then the
    /// batches of all pools are shuffled (when shuffling). A batch then holds sequences of
    /// similar lengths, so little of it is padding, while pools keep epochs random. `init`
    /// returns an error unless there is one length per item and `bucket_batches ≥ 1`.
    ///
    /// Defaults to no buckets.
    #[must_use]
    pub fn with_buckets(mut self, lengths: Vec<usize>, bucket_batches: usize) -> Self {
        self.buckets = Some((lengths, bucket_batches));
        self
    }

    /// Drops the last batch of an epoch when it has fewer than `batch_size` items (there is at
    /// most one such batch), PyTorch's `drop_last`.
    ///
    /// Defaults to `false`.
    #[must_use]
    pub fn with_drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    /// The sampler.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if `batch_size` is 0, if `bucket_batches` is 0, or if the
    /// bucket lengths are not one per item (naming both counts).
    pub fn init(self) -> Result<BatchSampler> {
        if self.batch_size == 0 {
            return Err(Error::InvalidArgument {
                name: "batch size",
                reason: "0: a batch needs at least one item".to_string(),
            });
        }
        if let Some((lengths, bucket_batches)) = &self.buckets {
            if *bucket_batches == 0 {
                return Err(Error::InvalidArgument {
                    name: "bucket batches",
                    reason: "0: a pool needs at least one batch".to_string(),
                });
            }
            if lengths.len() != self.num_items {
                return Err(Error::InvalidArgument {
                    name: "bucket lengths",
                    reason: format!(
                        "{} lengths for {} items: there must be one per item",
                        lengths.len(),
                        self.num_items
                    ),
                });
            }
        }
        Ok(BatchSampler { config: self })
    }
}

/// The batches of each epoch, as lists of indices into a data set of `num_items` items: in
/// order, or shuffled from a seed, and optionally grouped by length (see
/// [`BatchSamplerConfig`]).
///
/// Every item appears in exactly one batch of an epoch, except the items of a dropped last
/// batch. The shuffles come from [`StdRng`] seeded with the seed and the epoch: they repeat
/// on every run with the same version of `rand`.
///
/// # Examples
///
/// ```
/// use recurrent::BatchSamplerConfig;
///
/// let lengths = vec![3, 40, 5, 38, 4, 41, 6, 39];
/// let sampler = BatchSamplerConfig::new(8, 2)
///     .with_shuffle(7)
///     .with_buckets(lengths.clone(), 4)
///     .init()?;
/// let epoch = sampler.epoch(0);
/// assert_eq!(epoch, sampler.epoch(0)); // reproducible
/// assert_ne!(epoch, sampler.epoch(1)); // each epoch its own order
/// for batch in &epoch {
///     // short with short, long with long
///     assert!(lengths[batch[0]].abs_diff(lengths[batch[1]]) <= 3);
/// }
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchSampler {
    config: BatchSamplerConfig,
}

impl BatchSampler {
    /// The batches of epoch `epoch`, each a list of item indices.
    pub fn epoch(&self, epoch: u64) -> Vec<Vec<usize>> {
        let BatchSamplerConfig {
            num_items,
            batch_size,
            seed,
            ref buckets,
            drop_last,
        } = self.config;
        let mut rng = seed.map(|seed| epoch_rng(seed, epoch));
        let mut items: Vec<usize> = (0..num_items).collect();
        if let Some(rng) = rng.as_mut() {
            items.shuffle(rng);
        }
        if let Some((lengths, bucket_batches)) = buckets {
            for pool in items.chunks_mut(bucket_batches.saturating_mul(batch_size)) {
                pool.sort_by_key(|&i| lengths[i]);
            }
        }
        // every batch is full except possibly the last one: chunks never span two pools,
        // since a pool is a whole number of batches
        let mut batches: Vec<Vec<usize>> = items.chunks(batch_size).map(<[_]>::to_vec).collect();
        if drop_last && batches.last().is_some_and(|b| b.len() < batch_size) {
            batches.pop();
        }
        if let (Some(rng), Some(_)) = (rng.as_mut(), buckets) {
            batches.shuffle(rng);
        }
        batches
    }

    /// The number of batches in every epoch.
    pub fn num_batches(&self) -> usize {
        let BatchSamplerConfig {
            num_items,
            batch_size,
            drop_last,
            ..
        } = self.config;
        if drop_last {
            num_items / batch_size
        } else {
            num_items.div_ceil(batch_size)
        }
    }

    /// The number of items `num_items`.
    pub fn num_items(&self) -> usize {
        self.config.num_items
    }

    /// The number of items in a full batch.
    pub fn batch_size(&self) -> usize {
        self.config.batch_size
    }
}

/// The generator of one epoch: the seed and the epoch side by side in the 32-byte key, so
/// that distinct `(seed, epoch)` pairs give distinct streams.
fn epoch_rng(seed: u64, epoch: u64) -> StdRng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&epoch.to_le_bytes());
    StdRng::from_seed(key)
}
