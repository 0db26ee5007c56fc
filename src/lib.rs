//! Recurrent neural networks — vanilla RNN, LSTM and GRU — with analytic backpropagation
//! through time, numerically identical to PyTorch for the same weights.
//!
//! ```
//! use rand::{rngs::StdRng, SeedableRng};
//! use recurrent::{LstmCellConfig, Recurrent, Tensor};
//!
//! let mut rng = StdRng::seed_from_u64(42);
//! // nn.LSTM(input_size=8, hidden_size=16) with PyTorch's parameter names and initialisation
//! let lstm = Recurrent::new(LstmCellConfig::new(8, 16).init::<f32, _>(&mut rng));
//! let x = Tensor::randn(&[20, 4, 8], &mut rng); // (T, B, I), time-major
//! let out = lstm.forward(&x, None, Some(&[20, 17, 9, 3]))?; // variable lengths
//! assert_eq!(out.output.shape(), &[20, 4, 16]);
//! assert_eq!(out.state.c().unwrap().shape(), &[1, 4, 16]);
//!
//! // gradient of sum(output) with respect to the input, the initial state and every weight
//! let d_output = out.output.map(|_| 1.0);
//! let grads = lstm.backward(&out.trace, Some(&d_output), None)?;
//! assert_eq!(grads.input.shape(), x.shape());
//! assert_eq!(grads.params.get("weight_ih_l0").unwrap().shape(), &[64, 8]);
//! # Ok::<(), recurrent::Error>(())
//! ```
//!
//! # Overview
//!
//! A recurrent network here is a [`Cell`] (one time step and its derivative) run over whole
//! sequences by a [`SequenceLayer`] such as [`Recurrent`]. Forward passes take `&self` and
//! return a trace; backward passes take the trace and return the gradients as values, named
//! like the parameters. Everything is generic over [`Float`]: `f32` for speed, `f64` for
//! gradient checks.
//!
//! # Cells
//!
//! [`RnnCell`] (tanh or relu), [`LstmCell`] and [`GruCell`] follow PyTorch exactly: the same
//! parameter names and shapes (`weight_ih (G·H, I)`, `weight_hh (G·H, H)`, `bias_ih`,
//! `bias_hh`), the same gate order (LSTM `i, f, g, o`; GRU `r, z, n` with the reset gate applied
//! to `W_hn h + b_hn`), and the default initialisation `U(−1/√H, 1/√H)` from a seedable RNG.
//! Implement [`Cell`] for a cell of your own and it gets [`Recurrent`] and [`Gradcheck`].
//!
//! # Layers
//!
//! [`Recurrent`] runs a cell over `(T, B, I)` input (or batch-first), with an optional initial
//! state and optional per-sequence lengths with PyTorch `PackedSequence` semantics: outputs
//! past a sequence's length are zero and its final state is taken at its own last step.
//! [`Recurrent::stream`] feeds one step at a time for online inference.
//!
//! # Gradient checking
//!
//! [`Gradcheck`] compares every analytic gradient of a cell or a sequence layer with central
//! finite differences in `f64` and reports the worst error and where it occurred.
//!
//! # Performance
//!
//! The input projection of all time steps is one GEMM before the time loop; inside it there is
//! one recurrent GEMM per step and the gate non-linearities are fused; the weight and input
//! gradients are one GEMM each after the loop. Matrix products are `matrixmultiply`'s.
//!
//! # Crate features
//!
//! None yet.
//!
//! # Rust version
//!
//! The minimum supported Rust version is 1.82.

#![deny(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]
#![doc(test(attr(deny(warnings))))]

mod cell;
mod error;
mod float;
mod gradcheck;
mod io;
mod layer;
mod nn;
mod optim;
mod params;
mod tensor;

pub use cell::{
    Cell, CellParams, GruCell, GruCellConfig, LstmCell, LstmCellConfig, Nonlinearity, RnnCell,
    RnnCellConfig, State, StatePart, StepGrads, StepTrace,
};
pub use error::{Error, Result, Shape};
pub use float::Float;
pub use gradcheck::{Gradcheck, GradcheckReport};
pub use io::{from_bytes, load, load_converting, read_tensors, save, to_bytes};
pub use layer::{
    Bidirectional, BidirectionalTrace, Gru, GruConfig, Lstm, LstmConfig, Network, NetworkTrace,
    Recurrent, RecurrentTrace, Rnn, RnnConfig, SequenceGrads, SequenceLayer, SequenceOutput,
    Stacked, StackedTrace, Stream,
};
pub use nn::{
    binary_cross_entropy_with_logits, cross_entropy_with_logits, mse_loss, Dropout, DropoutMask,
    Embedding, Linear, LinearGrads, Loss,
};
pub use optim::{clip_grad_norm, clip_grad_value, Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
pub use params::{Grads, Parameters};
pub use tensor::{gemm, MatMut, MatRef, Tensor};

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
