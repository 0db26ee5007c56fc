//! Recurrent neural networks — vanilla RNN, LSTM and GRU — with analytic backpropagation
//! through time, numerically identical to PyTorch for the same weights.
//!
//! ```
//! use recurrent::rand::{rngs::StdRng, SeedableRng};
//! use recurrent::{
//!     clip_grad_norm, AdamConfig, CrossEntropyLoss, EmbeddingConfig, LastHidden, Layer,
//!     LinearConfig, LstmConfig, Mode, Optimizer, Parameters, TokenBatch,
//! };
//!
//! let mut rng = StdRng::seed_from_u64(42);
//! // embedding → nn.LSTM(16, 32, num_layers=2, bidirectional=True) → final states → linear,
//! // with PyTorch's parameter names, shapes and initialisation
//! let mut model = EmbeddingConfig::new(1000, 16).with_padding_idx(Some(0))
//!     .init::<f32>(&mut rng)?.named("embedding")
//!     .then(LstmConfig::new(16, 32).with_num_layers(2).with_bidirectional(true)
//!         .init(&mut rng)?.named("rnn"))
//!     .then(LastHidden)
//!     .then(LinearConfig::new(64, 2).init(&mut rng)?.named("head"));
//! assert_eq!(model.param_names()[1], "rnn.weight_ih_l0");
//!
//! // three sentences of 4, 2 and 3 tokens, time-major (T, B), padded with 0, and their classes
//! let tokens = TokenBatch::new(vec![5, 8, 2, 9, 3, 7, 4, 0, 6, 1, 0, 0], 4, 3, Some(vec![4, 2, 3]))?;
//! let classes = [1, 0, 1];
//!
//! // one training step: forward, loss, one backward, clipping, an optimiser step
//! let mut adam = AdamConfig::new(1e-3).init()?;
//! let (logits, trace) = model.forward(&tokens, Mode::Train { seed: 0 })?;
//! let loss = CrossEntropyLoss::new().forward(&logits, &classes)?;
//! let mut grads = model.backward(&trace, &loss.grad)?.params;
//! clip_grad_norm(&mut grads, 1.0)?;
//! adam.step(&mut model, &grads)?;
//!
//! // inference: no trace kept, dropout off
//! let logits = model.infer(&tokens)?;
//! assert_eq!(logits.shape(), &[3, 2]);
//! # Ok::<(), recurrent::Error>(())
//! ```
//!
//! # Overview
//!
//! A recurrent network here is a [`Cell`] (one time step and its derivative) run over whole
//! sequences by a [`SequenceLayer`] such as [`Recurrent`]; [`Bidirectional`] and [`Stacked`]
//! compose sequence layers, and [`Lstm`], [`Gru`] and [`Rnn`] build the networks PyTorch's
//! `nn.LSTM`, `nn.GRU` and `nn.RNN` describe. Forward passes take `&self` and return a trace;
//! backward passes take the trace and return the gradients as values, named like the
//! parameters. Every layer visits its parameters through [`Parameters`] under PyTorch's
//! `state_dict` names; optimisers, clipping, gradient checking and weight files all walk that
//! one visitor. Everything is generic over [`Float`]: `f32` for speed, `f64` for gradient
//! checks.
//!
//! # Cells
//!
//! [`RnnCell`] (tanh or relu), [`LstmCell`] (optionally with a projection) and [`GruCell`]
//! follow PyTorch exactly: the same parameter names and shapes (`weight_ih (G·H, I)`,
//! `weight_hh (G·H, H)`, `bias_ih`, `bias_hh`, `weight_hr`), the same gate order (LSTM
//! `i, f, g, o`; GRU `r, z, n` with the reset gate applied to `W_hn h + b_hn`), and the default
//! initialisation `U(−1/√H, 1/√H)` from a seedable RNG. Implement [`Cell`] for a cell of your
//! own and it gets [`Recurrent`], the combinators and [`Gradcheck`]; write its step with
//! [`kernels`] (the recurrent product against the packed `weight_hh`, the vectorised
//! non-linearities) and it runs at the built-in cells' speed. [`PeepholeLstmCell`] (an LSTM
//! whose gates also see the cell state) and [`LayerNormLstmCell`] (the layer-normalised LSTM
//! of Ba, Kiros & Hinton, 2016) are written that way, with the public API only; every cell
//! takes variational dropout ([`Recurrent::with_variational_dropout`]).
//!
//! # Building
//!
//! Every cell, network and layer is built the same way: `XConfig::new(required)`, then
//! `with_*` options, each documented with its default, then `init(&mut rng)` or
//! `init_seeded(seed)`, which return a [`Result`]. The generator is [`rand`]'s (version 0.9,
//! re-exported as `recurrent::rand`, so you need no `rand` dependency of your own). Weights
//! take PyTorch's default initialisation unless a config chooses another [`Init`]
//! (Xavier/Glorot or orthogonal), and [`LstmCellConfig::with_forget_bias`] starts an LSTM
//! with a forget-gate bias.
//!
//! # Layers
//!
//! - [`Recurrent`] runs a cell over `(T, B, I)` input (or batch-first), with an optional
//!   initial state and optional per-sequence lengths with PyTorch `PackedSequence` semantics:
//!   outputs past a sequence's length are zero and its final state is taken at its own last
//!   step. [`Recurrent::stream`] feeds one step at a time for online inference.
//! - [`Bidirectional`] reads each sequence both ways (the reverse direction from each
//!   sequence's own end), on two threads when that pays.
//! - [`Stacked`] feeds each layer's output to the next, with optional inter-layer dropout.
//! - [`Lstm`], [`Gru`], [`Rnn`]: `Stacked` of `Recurrent` or of `Bidirectional` pairs, built
//!   from [`LstmConfig`], [`GruConfig`], [`RnnConfig`] with `nn.LSTM`'s arguments.
//!
//! # Training
//!
//! [`Linear`], [`Embedding`] and [`Dropout`]; the losses [`mse_loss`],
//! [`binary_cross_entropy_with_logits`] and [`cross_entropy_with_logits`], each returning its
//! value and gradient, and [`CrossEntropyLoss`] with PyTorch's class weights, ignored class,
//! label smoothing and [`Reduction`], over rows of logits or a [`Sequence`] with its lengths;
//! the optimisers [`Sgd`] and [`Adam`] (AdamW with [`AdamConfig::adamw`]) behind
//! [`Optimizer`], with [`ParamGroup`]s for per-parameter settings and frozen parameters; the
//! learning-rate schedules [`StepLr`], [`ExponentialLr`], [`CosineAnnealingLr`], [`LinearLr`]
//! (behind [`LrScheduler`]) and [`ReduceLrOnPlateau`]; [`clip_grad_norm`] and
//! [`clip_grad_value`].
//!
//! # Data
//!
//! [`TokenBatch`] is a time-major batch of token ids with its lengths, [`pad_collate`] makes
//! one from sequences of different lengths, and [`BatchSampler`] draws the batches of each
//! epoch, shuffled from a seed and optionally grouped by length. [`Parameters::summary`]
//! tabulates a model's parameters.
//!
//! # Weights
//!
//! [`save`] and [`load`] write and read safetensors files under PyTorch's `state_dict` names,
//! so a file saved in PyTorch with `safetensors.torch.save_file(model.state_dict(), path)`
//! loads into the equivalent model. Loading rejects a missing, unexpected, mis-shaped or
//! wrong-dtype tensor by name, and a corrupt file with an error; saving is atomic.
//! [`save_optimizer`] and [`load_optimizer`] do the same for an optimiser's state and a
//! schedule's, so that a stopped run resumes exactly.
//!
//! # Gradient checking
//!
//! [`Gradcheck`] compares every analytic gradient of a cell, a sequence layer, a whole model
//! under its loss ([`Gradcheck::check_model`]) or any scalar function with central finite
//! differences in `f64` and reports the worst error and where it occurred.
//!
//! # Performance
//!
//! The input projection of all time steps is one GEMM before the time loop; inside it there is
//! one recurrent GEMM per step, against `W_hhᵀ` packed once per change of the weight
//! ([`CellParams`] keeps it), and the gate non-linearities run over whole gate blocks (in `f32`
//! a vectorised exponential, dispatched at run time to AVX-512 or AVX2); the weight and input
//! gradients are one GEMM each after the loop. Matrix products are `matrixmultiply`'s, except a
//! single row (batch-1 inference), which takes a matrix-vector loop. Buffers are reused across
//! calls, in a pool bounded in size per layer ([`Recurrent::release_buffers`] frees it). When
//! [`set_num_threads`] allows two threads and the work is large enough, [`Recurrent`] splits its
//! batch into two halves run side by side, and the two directions of a [`Bidirectional`] layer run
//! in parallel; `set_num_threads(1)` always means one thread. `cargo run --release --example
//! compare` measures all this against PyTorch (see the README).
//!
//! # Crate features
//!
//! None yet.
//!
//! # Rust version
//!
//! The minimum supported Rust version is 1.89.

#![deny(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]
#![doc(test(attr(deny(warnings))))]

// DESIGN's layers, each depending only on those above it (blank lines keep rustfmt from
// sorting them alphabetically)
mod activation;
mod error;
mod float;
mod linalg;
mod tensor;

mod mode;
mod state;

mod cell;

mod params;

mod layer;

mod data;

mod nn;
mod optim;

mod io;

mod gradcheck;
#[cfg(test)]
mod test_util;
mod threads;

pub use cell::{
    kernels, BackwardStep, Cell, CellParams, GruCell, GruCellConfig, Init, LayerNormLstmCell,
    LayerNormLstmCellConfig, LstmCell, LstmCellConfig, Nonlinearity, PeepholeLstmCell,
    PeepholeLstmCellConfig, RnnCell, RnnCellConfig, StepGrads, StepTrace,
};
pub use data::{pad_collate, BatchSampler, BatchSamplerConfig, TokenBatch};
pub use error::{Error, IoSource, Result};
pub use float::Float;
pub use gradcheck::{Gradcheck, GradcheckReport};
pub use io::{
    from_bytes, load, load_converting, load_optimizer, read_metadata, read_tensors, save,
    save_optimizer, save_with_metadata, to_bytes,
};
pub use layer::{
    Bidirectional, BidirectionalTrace, Direction, Gru, GruConfig, LayerNormLstm,
    LayerNormLstmConfig, Lstm, LstmConfig, Network, NetworkStream, NetworkTrace, PeepholeLstm,
    PeepholeLstmConfig, Recurrent, RecurrentTrace, Rnn, RnnConfig, SequenceGrads, SequenceLayer,
    SequenceOutput, Stacked, StackedTrace, Stream,
};
pub use linalg::{gemm, MatMut, MatRef};
pub use mode::Mode;
pub use nn::{
    binary_cross_entropy_with_logits, cross_entropy_with_logits, mse_loss, Chain, ChainTrace,
    CrossEntropyLoss, Dropout, DropoutConfig, DropoutMask, Embedding, EmbeddingConfig, LastHidden,
    LastStep, Layer, LayerGrads, Linear, LinearConfig, Loss, MaxPool, MeanPool, Named, PerPosition,
    PoolTrace, Reduction, Sequence, SequenceTrace, TimeDistributed, TimeDistributedTrace,
};
pub use optim::{
    clip_grad_norm, clip_grad_value, Adam, AdamConfig, CosineAnnealingLr, ExponentialLr, LinearLr,
    LrScheduler, Optimizer, OptimizerState, ParamGroup, PlateauMode, ReduceLrOnPlateau,
    ReduceLrOnPlateauConfig, SchedulerState, Sgd, SgdConfig, StepLr, ThresholdMode,
};
pub use params::{NamedTensors, Parameters, Summary, SummaryEntry};
pub use state::{State, StatePart};
pub use tensor::{Shape, Tensor};
pub use threads::{num_threads, set_num_threads};

/// The version of [`rand`](https://docs.rs/rand/0.9) (0.9) whose `Rng` the crate's APIs take:
/// `use recurrent::rand::{rngs::StdRng, SeedableRng};` needs no `rand` dependency of your own,
/// and cannot pick a version whose generators the crate does not accept.
pub use rand;

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
