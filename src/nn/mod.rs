//! The layers around a recurrent network and the losses that train it: [`Linear`],
//! [`Embedding`], [`Dropout`], and [`mse_loss`], [`binary_cross_entropy_with_logits`],
//! [`cross_entropy_with_logits`], [`CrossEntropyLoss`].
//!
//! Each layer works like the sequence layers: `forward` takes `&self` and returns a value,
//! `backward` takes what forward read (the input, the ids, the dropout mask) and `dL/d(output)`
//! and returns the gradients as values, with parameter gradients under the parameters' PyTorch
//! names. A loss returns its value and `dL/d(prediction)` together, which is the `d_output`
//! of the layer before it.
//!
//! ```
//! use recurrent::rand::{rngs::StdRng, SeedableRng};
//! use recurrent::{
//!     cross_entropy_with_logits, EmbeddingConfig, LinearConfig, LstmCellConfig, Recurrent,
//! };
//!
//! let mut rng = StdRng::seed_from_u64(0);
//! let embedding = EmbeddingConfig::new(50, 8).init::<f32>(&mut rng)?;
//! let lstm = Recurrent::new(LstmCellConfig::new(8, 16).init(&mut rng)?);
//! let head = LinearConfig::new(16, 50).init(&mut rng)?;
//!
//! // predict the next token of two sequences of four tokens, time-major (T, B) = (4, 2)
//! let ids = [3, 7, 1, 9, 4, 4, 2, 8];
//! let next = [1, 9, 4, 4, 2, 8, 6, 0];
//! let x = embedding.forward(&ids, &[4, 2])?; // (T, B, 8)
//! let out = lstm.forward_with_state(&x, None, None, Mode::Eval)?; // (T, B, 16)
//! let logits = head.infer(&out.output)?; // (T, B, 50)
//! let loss = cross_entropy_with_logits(&logits.reshape(&[8, 50])?, &next)?;
//!
//! let d_logits = loss.grad.reshape(&[4, 2, 50])?;
//! let head_grads = head.backward(&out.output, &d_logits)?;
//! let lstm_grads = lstm.backward_with_state(&out.trace, Some(&head_grads.input), None)?;
//! let embedding_grads = embedding.backward(&ids, &lstm_grads.input)?;
//! assert!(loss.value > 0.0);
//! assert_eq!(head_grads.params.get("weight").unwrap().shape(), &[50, 16]);
//! assert_eq!(embedding_grads.get("weight").unwrap().shape(), &[50, 8]);
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
pub use sequence::Sequence;
pub use time_distributed::{TimeDistributed, TimeDistributedTrace};
