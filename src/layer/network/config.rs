//! The configurations of the networks, with the arguments of PyTorch's `nn.LSTM`, `nn.GRU`
//! and `nn.RNN` and their defaults.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Gru, Lstm, Network, Rnn};
use crate::cell::{
    check_hidden_size, GruCellConfig, Init, LstmCellConfig, Nonlinearity, RnnCellConfig,
};
use crate::error::{Error, Result};
use crate::float::Float;
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
    /// Variational dropout of every layer: `(input, recurrent)`.
    pub(super) variational_dropout: (f64, f64),
    pub(super) bidirectional: bool,
    pub(super) weight_ih_init: Init,
    pub(super) weight_hh_init: Init,
}

impl Shared {
    pub(super) fn new(input_size: usize, hidden_size: usize) -> Self {
        Shared {
            input_size,
            hidden_size,
            num_layers: 1,
            bias: true,
            batch_first: false,
            dropout: 0.0,
            variational_dropout: (0.0, 0.0),
            bidirectional: false,
            weight_ih_init: Init::Default,
            weight_hh_init: Init::Default,
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
        check_probability("dropout", self.dropout)?;
        let (input, recurrent) = self.variational_dropout;
        check_probability("variational input dropout", input)?;
        check_probability("variational recurrent dropout", recurrent)
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

            /// Dropout on the output of every layer but the last, in
            /// [`Mode::Train`](crate::Mode::Train); see [`Stacked`]. The masks are drawn from
            /// the mode's seed alone, so a training loop passes a new seed with each step.
            /// Defaults to 0.
            #[must_use = "returns a new config and does not modify self"]
            pub fn with_dropout(mut self, dropout: f64) -> Self {
                self.shared.dropout = dropout;
                self
            }

            /// Variational dropout inside every layer, in [`Mode::Train`](crate::Mode::Train):
            /// one mask per sequence on each layer's input (probability `input`) and one on its
            /// recurrent state `h` (probability `recurrent`), the same at every time step; see
            /// [`Recurrent::with_variational_dropout`](crate::Recurrent::with_variational_dropout).
            /// Independent of [`with_dropout`](Self::with_dropout), which drops between layers
            /// with a new mask at every step. Defaults to `(0, 0)`.
            #[must_use = "returns a new config and does not modify self"]
            pub fn with_variational_dropout(mut self, input: f64, recurrent: f64) -> Self {
                self.shared.variational_dropout = (input, recurrent);
                self
            }

            /// The variational dropout probabilities, `(input, recurrent)`.
            pub fn variational_dropout(&self) -> (f64, f64) {
                self.shared.variational_dropout
            }

            /// Whether every layer reads the sequences in both directions; see
            /// [`Bidirectional`]. Defaults to `false`.
            #[must_use = "returns a new config and does not modify self"]
            pub fn with_bidirectional(mut self, bidirectional: bool) -> Self {
                self.shared.bidirectional = bidirectional;
                self
            }

            /// How every layer's `weight_ih_l{k}` is initialised; see [`Init`]. Defaults to
            /// [`Init::Default`].
            #[must_use = "returns a new config and does not modify self"]
            pub fn with_weight_ih_init(mut self, weight_ih_init: Init) -> Self {
                self.shared.weight_ih_init = weight_ih_init;
                self
            }

            /// How every layer's `weight_hh_l{k}` (and an LSTM's `weight_hr_l{k}`) is
            /// initialised; see [`Init`]. Defaults to [`Init::Default`].
            #[must_use = "returns a new config and does not modify self"]
            pub fn with_weight_hh_init(mut self, weight_hh_init: Init) -> Self {
                self.shared.weight_hh_init = weight_hh_init;
                self
            }

            /// How the input-to-hidden weights are initialised.
            pub fn weight_ih_init(&self) -> Init {
                self.shared.weight_ih_init
            }

            /// How the hidden-to-hidden weights are initialised.
            pub fn weight_hh_init(&self) -> Init {
                self.shared.weight_hh_init
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

pub(super) use shared_options;

/// The configuration of an [`Lstm`], with the arguments of PyTorch's `nn.LSTM`:
/// `LstmConfig::new(input_size, hidden_size)`, then `with_*` options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LstmConfig {
    pub(super) shared: Shared,
    pub(super) proj_size: usize,
    pub(super) forget_bias: Option<f64>,
}

impl LstmConfig {
    /// One forward layer of `hidden_size` units reading `input_size` features, with biases,
    /// time-major, no dropout and no projection: PyTorch's defaults.
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        LstmConfig {
            shared: Shared::new(input_size, hidden_size),
            proj_size: 0,
            forget_bias: None,
        }
    }

    /// Projects every layer's `h` to `proj_size` units (PyTorch's `proj_size`, parameter
    /// `weight_hr_l{k}`); 0, the default, means no projection.
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_proj_size(mut self, proj_size: usize) -> Self {
        self.proj_size = proj_size;
        self
    }

    /// Sets every layer's forget-gate bias to `forget_bias`: the forget block (entries
    /// `H..2H`) of `bias_ih_l{k}` becomes `forget_bias` and that of `bias_hh_l{k}` 0, so the sum
    /// the gate sees is `forget_bias`; see [`LstmCellConfig::with_forget_bias`]. Defaults to
    /// no change (PyTorch's default draw).
    ///
    /// [`init`](LstmConfig::init) fails if the network has no biases or `forget_bias` is not
    /// finite.
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_forget_bias(mut self, forget_bias: f64) -> Self {
        self.forget_bias = Some(forget_bias);
        self
    }

    /// The projection size, 0 without a projection.
    pub fn proj_size(&self) -> usize {
        self.proj_size
    }

    /// The forget-gate bias, if set.
    pub fn forget_bias(&self) -> Option<f64> {
        self.forget_bias
    }

    /// The network this config describes, its weights drawn from `rng` by the chosen
    /// [`Init`]s (PyTorch's default `U(−1/√H, 1/√H)` unless set), layer by layer and forward
    /// before reverse, each cell as [`LstmCellConfig::init`] draws it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a hidden size or number of layers of 0, a dropout
    /// outside `[0, 1)`, a projection not smaller than the hidden size, or a forget bias
    /// without biases or not finite; [`Error::SizeOverflow`] or [`Error::Allocation`] for
    /// sizes beyond the machine.
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::rand::{rngs::StdRng, SeedableRng};
    /// use recurrent::{Cell, Direction, Lstm, LstmConfig};
    ///
    /// let config = LstmConfig::new(4, 8).with_num_layers(2).with_forget_bias(1.0);
    /// let lstm: Lstm<f32> = config.init(&mut StdRng::seed_from_u64(0))?;
    /// let cell = lstm.cell(1, Direction::Forward).unwrap();
    /// assert_eq!(cell.params().bias_ih().unwrap().as_slice()[8..16], [1.0; 8]);
    /// assert!(LstmConfig::new(4, 8).with_num_layers(0).init::<f32>(&mut StdRng::seed_from_u64(0)).is_err());
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn init<T: Float>(&self, rng: &mut (impl Rng + ?Sized)) -> Result<Lstm<T>> {
        let (shared, p) = (&self.shared, self.proj_size);
        let h = shared.hidden_size;
        let h_out = if p > 0 { p } else { h };
        Network::build(shared, h_out, |input_size| {
            let cell = LstmCellConfig::new(input_size, h)
                .with_bias(shared.bias)
                .with_proj_size(p)
                .with_weight_ih_init(shared.weight_ih_init)
                .with_weight_hh_init(shared.weight_hh_init);
            match self.forget_bias {
                Some(f) => cell.with_forget_bias(f).init(rng),
                None => cell.init(rng),
            }
        })
    }

    /// [`init`](LstmConfig::init) from `StdRng::seed_from_u64(seed)`.
    ///
    /// # Errors
    ///
    /// As [`init`](LstmConfig::init).
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::rand::{rngs::StdRng, SeedableRng};
    /// use recurrent::{LstmConfig, Parameters};
    ///
    /// let config = LstmConfig::new(3, 5).with_bidirectional(true);
    /// let a = config.init_seeded::<f64>(7)?;
    /// let b = config.init::<f64>(&mut StdRng::seed_from_u64(7))?;
    /// assert_eq!(a.state_dict(), b.state_dict());
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn init_seeded<T: Float>(&self, seed: u64) -> Result<Lstm<T>> {
        self.init(&mut StdRng::seed_from_u64(seed))
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

    /// The network this config describes, its weights drawn from `rng` by the chosen
    /// [`Init`]s (PyTorch's default `U(−1/√H, 1/√H)` unless set), layer by layer and forward
    /// before reverse, each cell as [`GruCellConfig::init`] draws it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a hidden size or number of layers of 0, or a dropout
    /// outside `[0, 1)`; [`Error::SizeOverflow`] or [`Error::Allocation`] for sizes beyond the
    /// machine.
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::rand::{rngs::StdRng, SeedableRng};
    /// use recurrent::{Gru, GruConfig, Parameters};
    ///
    /// let gru: Gru<f32> = GruConfig::new(4, 8).init(&mut StdRng::seed_from_u64(0))?;
    /// assert_eq!(gru.param_names(), ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]);
    /// let e = GruConfig::new(4, 8).with_dropout(1.0).init::<f32>(&mut StdRng::seed_from_u64(0));
    /// assert!(e.is_err());
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn init<T: Float>(&self, rng: &mut (impl Rng + ?Sized)) -> Result<Gru<T>> {
        let shared = &self.shared;
        let h = shared.hidden_size;
        Network::build(shared, h, |input_size| {
            GruCellConfig::new(input_size, h)
                .with_bias(shared.bias)
                .with_weight_ih_init(shared.weight_ih_init)
                .with_weight_hh_init(shared.weight_hh_init)
                .init(rng)
        })
    }

    /// [`init`](GruConfig::init) from `StdRng::seed_from_u64(seed)`.
    ///
    /// # Errors
    ///
    /// As [`init`](GruConfig::init).
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::rand::{rngs::StdRng, SeedableRng};
    /// use recurrent::{GruConfig, Parameters};
    ///
    /// let config = GruConfig::new(3, 5).with_num_layers(2);
    /// let a = config.init_seeded::<f64>(7)?;
    /// let b = config.init::<f64>(&mut StdRng::seed_from_u64(7))?;
    /// assert_eq!(a.state_dict(), b.state_dict());
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn init_seeded<T: Float>(&self, seed: u64) -> Result<Gru<T>> {
        self.init(&mut StdRng::seed_from_u64(seed))
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

    /// The network this config describes, its weights drawn from `rng` by the chosen
    /// [`Init`]s (PyTorch's default `U(−1/√H, 1/√H)` unless set), layer by layer and forward
    /// before reverse, each cell as [`RnnCellConfig::init`] draws it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a hidden size or number of layers of 0, or a dropout
    /// outside `[0, 1)`; [`Error::SizeOverflow`] or [`Error::Allocation`] for sizes beyond the
    /// machine.
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::rand::{rngs::StdRng, SeedableRng};
    /// use recurrent::{Nonlinearity, Rnn, RnnConfig, SequenceLayer};
    ///
    /// let config = RnnConfig::new(4, 8).with_nonlinearity(Nonlinearity::Relu);
    /// let rnn: Rnn<f32> = config.init(&mut StdRng::seed_from_u64(0))?;
    /// assert_eq!(rnn.output_size(), 8);
    /// assert!(RnnConfig::new(4, 0).init::<f32>(&mut StdRng::seed_from_u64(0)).is_err());
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn init<T: Float>(&self, rng: &mut (impl Rng + ?Sized)) -> Result<Rnn<T>> {
        let shared = &self.shared;
        let h = shared.hidden_size;
        Network::build(shared, h, |input_size| {
            RnnCellConfig::new(input_size, h)
                .with_bias(shared.bias)
                .with_nonlinearity(self.nonlinearity)
                .with_weight_ih_init(shared.weight_ih_init)
                .with_weight_hh_init(shared.weight_hh_init)
                .init(rng)
        })
    }

    /// [`init`](RnnConfig::init) from `StdRng::seed_from_u64(seed)`.
    ///
    /// # Errors
    ///
    /// As [`init`](RnnConfig::init).
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::rand::{rngs::StdRng, SeedableRng};
    /// use recurrent::{Parameters, RnnConfig};
    ///
    /// let config = RnnConfig::new(3, 5).with_bidirectional(true);
    /// let a = config.init_seeded::<f64>(7)?;
    /// let b = config.init::<f64>(&mut StdRng::seed_from_u64(7))?;
    /// assert_eq!(a.state_dict(), b.state_dict());
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn init_seeded<T: Float>(&self, seed: u64) -> Result<Rnn<T>> {
        self.init(&mut StdRng::seed_from_u64(seed))
    }
}

shared_options!(RnnConfig);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cell::Cell;
    use crate::layer::Direction;

    /// `QᵀQ = I` for every `(H, H)` block of `w`.
    fn assert_orthogonal_blocks(w: &[f64], h: usize) {
        for block in w.chunks_exact(h * h) {
            for a in 0..h {
                for b in 0..h {
                    let dot: f64 = (0..h).map(|k| block[k * h + a] * block[k * h + b]).sum();
                    let expected = if a == b { 1.0 } else { 0.0 };
                    assert!((dot - expected).abs() < 1e-12, "({a}, {b}): {dot}");
                }
            }
        }
    }

    #[test]
    fn every_cell_gets_the_inits_and_the_forget_bias() {
        let h = 5;
        let config = LstmConfig::new(3, h)
            .with_num_layers(2)
            .with_bidirectional(true)
            .with_weight_ih_init(Init::XavierNormal)
            .with_weight_hh_init(Init::Orthogonal)
            .with_forget_bias(2.0);
        assert_eq!(config.weight_hh_init(), Init::Orthogonal);
        let lstm = config.init_seeded::<f64>(0).unwrap();
        let mut cells = 0;
        for layer in 0..2 {
            for direction in [Direction::Forward, Direction::Reverse] {
                let params = lstm.cell(layer, direction).unwrap().params();
                assert_orthogonal_blocks(params.weight_hh().as_slice(), h);
                assert_eq!(params.bias_ih().unwrap().as_slice()[h..2 * h], [2.0; 5]);
                assert_eq!(params.bias_hh().unwrap().as_slice()[h..2 * h], [0.0; 5]);
                cells += 1;
            }
        }
        assert_eq!(cells, 4);
        // the cells differ: each draws its own blocks
        let (f, r) = (
            lstm.cell(0, Direction::Forward).unwrap(),
            lstm.cell(0, Direction::Reverse).unwrap(),
        );
        assert_ne!(f.params().weight_hh(), r.params().weight_hh());

        let gru = GruConfig::new(3, h)
            .with_num_layers(2)
            .with_weight_hh_init(Init::Orthogonal)
            .init_seeded::<f64>(1)
            .unwrap();
        let rnn = RnnConfig::new(3, h)
            .with_weight_hh_init(Init::Orthogonal)
            .init_seeded::<f64>(2)
            .unwrap();
        for params in [
            gru.cell(0, Direction::Forward).unwrap().params(),
            gru.cell(1, Direction::Forward).unwrap().params(),
            rnn.cell(0, Direction::Forward).unwrap().params(),
        ] {
            assert_orthogonal_blocks(params.weight_hh().as_slice(), h);
        }
    }

    #[test]
    fn a_forget_bias_without_biases_is_rejected() {
        let e = LstmConfig::new(3, 4)
            .with_bias(false)
            .with_forget_bias(1.0)
            .init_seeded::<f32>(0)
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidArgument {
                    name: "forget_bias",
                    ..
                }
            ),
            "{e}"
        );
    }
}
