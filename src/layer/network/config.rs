//! The configurations of the networks, with the arguments of PyTorch's `nn.LSTM`, `nn.GRU`
//! and `nn.RNN` and their defaults.

#[cfg(doc)]
use super::{Gru, Lstm, Network, Rnn};
use crate::cell::{check_hidden_size, Nonlinearity};
use crate::error::{Error, Result};
#[cfg(doc)]
use crate::layer::{Bidirectional, Stacked};
use crate::nn::check_probability;

/// The options every network config shares, with PyTorch's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Shared {
    pub(super) input_size: usize,
    pub(super) hidden_size: usize,
    pub(super) num_layers: usize,
    pub(super) bias: bool,
    pub(super) batch_first: bool,
    pub(super) dropout: f64,
    pub(super) bidirectional: bool,
}

impl Shared {
    fn new(input_size: usize, hidden_size: usize) -> Self {
        Shared {
            input_size,
            hidden_size,
            num_layers: 1,
            bias: true,
            batch_first: false,
            dropout: 0.0,
            bidirectional: false,
        }
    }

    pub(super) fn check(&self) -> Result<()> {
        check_hidden_size(self.hidden_size)?;
        if self.num_layers == 0 {
            return Err(Error::InvalidArgument {
                name: "num_layers",
                reason: "0: a network needs at least one layer".into(),
            });
        }
        check_probability("dropout", self.dropout)
    }
}

/// The `with_*` methods of the options every network config shares.
macro_rules! shared_options {
    ($config:ident) => {
        impl $config {
            /// The number of stacked layers, PyTorch's `num_layers`. Defaults to 1.
            #[must_use = "returns a new config and does not modify self"]
            pub fn with_num_layers(mut self, num_layers: usize) -> Self {
                self.shared.num_layers = num_layers;
                self
            }

            /// Whether the layers have the biases `bias_ih` and `bias_hh`. Defaults to `true`.
            #[must_use = "returns a new config and does not modify self"]
            pub fn with_bias(mut self, bias: bool) -> Self {
                self.shared.bias = bias;
                self
            }

            /// Whether inputs and outputs are `(B, T, F)`; states stay `(L·D, B, H)`, as in
            /// PyTorch. Defaults to `false`.
            #[must_use = "returns a new config and does not modify self"]
            pub fn with_batch_first(mut self, batch_first: bool) -> Self {
                self.shared.batch_first = batch_first;
                self
            }

            /// Dropout on the output of every layer but the last, in training mode; see
            /// [`Stacked`]. The masks are drawn from the network's seed alone, so they repeat
            /// from one call to the next: a training loop sets a new seed for each step
            /// ([`Network::set_seed`]) or passes one with each call
            /// ([`Network::forward_seeded`]). Defaults to 0.
            #[must_use = "returns a new config and does not modify self"]
            pub fn with_dropout(mut self, dropout: f64) -> Self {
                self.shared.dropout = dropout;
                self
            }

            /// Whether every layer reads the sequences in both directions; see
            /// [`Bidirectional`]. Defaults to `false`.
            #[must_use = "returns a new config and does not modify self"]
            pub fn with_bidirectional(mut self, bidirectional: bool) -> Self {
                self.shared.bidirectional = bidirectional;
                self
            }

            /// Features per input step, `I`.
            pub fn input_size(&self) -> usize {
                self.shared.input_size
            }

            /// Hidden units per layer and direction, `H`.
            pub fn hidden_size(&self) -> usize {
                self.shared.hidden_size
            }

            /// The number of stacked layers.
            pub fn num_layers(&self) -> usize {
                self.shared.num_layers
            }

            /// Whether the network reads both directions.
            pub fn bidirectional(&self) -> bool {
                self.shared.bidirectional
            }

            /// Whether the layers have biases.
            pub fn bias(&self) -> bool {
                self.shared.bias
            }

            /// Whether inputs and outputs are `(B, T, F)`.
            pub fn batch_first(&self) -> bool {
                self.shared.batch_first
            }

            /// The dropout probability between layers.
            pub fn dropout(&self) -> f64 {
                self.shared.dropout
            }
        }
    };
}

/// The configuration of an [`Lstm`], with the arguments of PyTorch's `nn.LSTM`:
/// `LstmConfig::new(input_size, hidden_size)`, then `with_*` options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LstmConfig {
    pub(super) shared: Shared,
    pub(super) proj_size: usize,
}

impl LstmConfig {
    /// One forward layer of `hidden_size` units reading `input_size` features, with biases,
    /// time-major, no dropout and no projection: PyTorch's defaults.
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        LstmConfig {
            shared: Shared::new(input_size, hidden_size),
            proj_size: 0,
        }
    }

    /// Projects every layer's `h` to `proj_size` units (PyTorch's `proj_size`, parameter
    /// `weight_hr_l{k}`); 0, the default, means no projection.
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_proj_size(mut self, proj_size: usize) -> Self {
        self.proj_size = proj_size;
        self
    }

    /// The projection size, 0 without a projection.
    pub fn proj_size(&self) -> usize {
        self.proj_size
    }
}

shared_options!(LstmConfig);

/// The configuration of a [`Gru`], with the arguments of PyTorch's `nn.GRU`:
/// `GruConfig::new(input_size, hidden_size)`, then `with_*` options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GruConfig {
    pub(super) shared: Shared,
}

impl GruConfig {
    /// One forward layer of `hidden_size` units reading `input_size` features, with biases,
    /// time-major and no dropout: PyTorch's defaults.
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        GruConfig {
            shared: Shared::new(input_size, hidden_size),
        }
    }
}

shared_options!(GruConfig);

/// The configuration of an [`Rnn`], with the arguments of PyTorch's `nn.RNN`:
/// `RnnConfig::new(input_size, hidden_size)`, then `with_*` options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RnnConfig {
    pub(super) shared: Shared,
    pub(super) nonlinearity: Nonlinearity,
}

impl RnnConfig {
    /// One forward tanh layer of `hidden_size` units reading `input_size` features, with
    /// biases, time-major and no dropout: PyTorch's defaults.
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        RnnConfig {
            shared: Shared::new(input_size, hidden_size),
            nonlinearity: Nonlinearity::Tanh,
        }
    }

    /// The non-linearity, PyTorch's `nonlinearity`. Defaults to [`Nonlinearity::Tanh`].
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_nonlinearity(mut self, nonlinearity: Nonlinearity) -> Self {
        self.nonlinearity = nonlinearity;
        self
    }

    /// The non-linearity.
    pub fn nonlinearity(&self) -> Nonlinearity {
        self.nonlinearity
    }
}

shared_options!(RnnConfig);
