//! Preparing training data: [`TokenBatch`], a time-major batch of token ids with lengths;
//! [`pad_collate`], which pads token sequences of different lengths into one; and
//! [`BatchSampler`], which draws the batches of an epoch, shuffled from a seed and, if asked,
//! grouped by length so that little of a batch is padding.
//!
//! ```
//! use recurrent::{pad_collate, BatchSamplerConfig};
//!
//! let corpus: Vec<Vec<usize>> = vec![vec![5, 2, 9], vec![7], vec![3, 3], vec![8, 1, 4, 6]];
//! let lengths = corpus.iter().map(Vec::len).collect();
//! let sampler = BatchSamplerConfig::new(corpus.len(), 2)
//!     .with_shuffle(42)
//!     .with_buckets(lengths, 2)
//!     .init()?;
//! for batch in sampler.epoch(0) {
//!     let samples: Vec<&[usize]> = batch.iter().map(|&i| corpus[i].as_slice()).collect();
//!     let tokens = pad_collate(&samples, 0, None)?;
//!     assert_eq!(tokens.batch_size(), 2);
//!     assert!(tokens.steps() <= 4);
//! }
//! # Ok::<(), recurrent::Error>(())
//! ```

mod sampler;
mod tokens;

pub use sampler::{BatchSampler, BatchSamplerConfig};
pub use tokens::{pad_collate, TokenBatch};
