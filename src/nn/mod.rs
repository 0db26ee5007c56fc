//! Everything a model is built from besides the recurrent networks, and what composes them:
//! the [`Layer`] trait, [`Chain`] and [`Named`], the [`model!`](crate::model) macro;
//! [`Linear`], [`Embedding`] and [`Dropout`]; the [`Sequence`] adapters [`LastHidden`],
//! [`LastStep`], [`MeanPool`], [`MaxPool`] and [`TimeDistributed`]; and the losses
//! [`mse_loss`], [`binary_cross_entropy_with_logits`], [`cross_entropy_with_logits`] and
//! [`CrossEntropyLoss`].
//!
//! A loss returns its value and `dL/d(prediction)` together, which is the `d_output` of the
//! model's backward pass.
//!
//! ```
//! use recurrent::rand::{rngs::StdRng, SeedableRng};
//! use recurrent::{
//!     CrossEntropyLoss, EmbeddingConfig, Layer, LinearConfig, LstmConfig, Mode, TimeDistributed,
//!     TokenBatch,
//! };
//!
//! let mut rng = StdRng::seed_from_u64(0);
//! // a language model: predict the next token at every step
//! let model = EmbeddingConfig::new(50, 8).init::<f32>(&mut rng)?
//!     .then(LstmConfig::new(8, 16).init(&mut rng)?)
//!     .then(TimeDistributed::new(LinearConfig::new(16, 50).init(&mut rng)?));
//!
//! // two sequences of four and three tokens, time-major (T, B) = (4, 2)
//! let tokens = TokenBatch::new(vec![3, 7, 1, 9, 4, 4, 2, 0], 4, 2, Some(vec![4, 3]))?;
//! let next = [1, 9, 4, 4, 2, 8, 6, 0]; // the target past the second sequence's end is ignored
//! let (logits, trace) = model.forward(&tokens, Mode::Train { seed: 1 })?; // (T, B, 50)
//! let loss = CrossEntropyLoss::new().forward_sequence(&logits, &next)?;
//! let grads = model.backward(&trace, &loss.grad)?.params;
//! assert!(loss.value > 0.0);
//! assert_eq!(grads.get("2.weight").unwrap().shape(), &[50, 16]);
//! assert_eq!(grads.get("0.weight").unwrap().shape(), &[50, 8]);
//! # Ok::<(), recurrent::Error>(())
//! ```

mod chain;
mod dropout;
mod embedding;
mod layer;
mod linear;
mod loss;
mod model;
mod pooling;
mod recurrent_layer;
mod sequence;
mod time_distributed;

pub use chain::{Chain, ChainTrace, Named};
pub(crate) use dropout::{check_probability, dropout_scale};
pub use dropout::{Dropout, DropoutConfig, DropoutMask};
pub use embedding::{Embedding, EmbeddingConfig};
pub use layer::{Layer, LayerGrads};
pub use linear::{Linear, LinearConfig};
pub use loss::{
    binary_cross_entropy_with_logits, cross_entropy_with_logits, mse_loss, CrossEntropyLoss, Loss,
    PerPosition, Reduction,
};
pub use pooling::{LastHidden, LastStep, MaxPool, MeanPool, PoolTrace};
pub use recurrent_layer::SequenceTrace;
pub(crate) use sequence::zero_padding;
pub use sequence::Sequence;
pub use time_distributed::{TimeDistributed, TimeDistributedTrace};
