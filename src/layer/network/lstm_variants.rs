//! The configurations of networks of the LSTM variants PyTorch does not have: the peephole
//! LSTM and the layer-normalised LSTM, with the options of the PyTorch-style networks.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::config::{shared_options, Shared};
use super::Network;
use crate::cell::{
    Init, LayerNormLstmCell, LayerNormLstmCellConfig, PeepholeLstmCell, PeepholeLstmCellConfig,
};
use crate::error::{Error, Result};
use crate::float::Float;
#[cfg(doc)]
use crate::layer::{Bidirectional, Stacked};

/// A network of peephole LSTM layers; built with [`PeepholeLstmConfig::init`].
pub type PeepholeLstm<T> = Network<PeepholeLstmCell<T>>;
/// A network of layer-normalised LSTM layers; built with [`LayerNormLstmConfig::init`].
pub type LayerNormLstm<T> = Network<LayerNormLstmCell<T>>;

/// The configuration of a [`PeepholeLstm`]: the options of [`crate::LstmConfig`] (but the
/// projection) for layers of [`PeepholeLstmCell`]s. Parameters are named as an LSTM's plus the
/// peephole weights of each layer and direction, `weight_ci_l{k}`, `weight_cf_l{k}`,
/// `weight_co_l{k}` (`…_reverse` for the reverse direction).
///
/// # Examples
///
/// ```
/// use recurrent::{Mode, Parameters, PeepholeLstmConfig, SequenceLayer, Tensor};
///
/// let net = PeepholeLstmConfig::new(3, 8).with_num_layers(2).init_seeded::<f32>(0)?;
/// assert_eq!(net.param_names()[4..7], ["weight_ci_l0", "weight_cf_l0", "weight_co_l0"]);
/// let out = net.forward_with_state(&Tensor::zeros(&[5, 2, 3]), None, None, Mode::Eval)?;
/// assert_eq!(out.output.shape(), &[5, 2, 8]);
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeepholeLstmConfig {
    shared: Shared,
    forget_bias: Option<f64>,
}

impl PeepholeLstmConfig {
    /// One forward layer of `hidden_size` units reading `input_size` features, with biases,
    /// time-major and no dropout.
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        PeepholeLstmConfig {
            shared: Shared::new(input_size, hidden_size),
            forget_bias: None,
        }
    }

    /// Sets every layer's forget-gate bias, as [`crate::LstmConfig::with_forget_bias`].
    /// Defaults to no change.
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_forget_bias(mut self, forget_bias: f64) -> Self {
        self.forget_bias = Some(forget_bias);
        self
    }

    /// The forget-gate bias, if set.
    pub fn forget_bias(&self) -> Option<f64> {
        self.forget_bias
    }

    /// The network this config describes, each cell drawn as
    /// [`PeepholeLstmCellConfig::init`] draws it, layer by layer and forward before reverse.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a hidden size or number of layers of 0, a dropout
    /// outside `[0, 1)`, or a forget bias without biases or not finite;
    /// [`Error::SizeOverflow`] or [`Error::Allocation`] for sizes beyond the machine.
    pub fn init<T: Float>(&self, rng: &mut (impl Rng + ?Sized)) -> Result<PeepholeLstm<T>> {
        let shared = &self.shared;
        let h = shared.hidden_size;
        Network::build(shared, h, |input_size| {
            let cell = PeepholeLstmCellConfig::new(input_size, h)
                .with_bias(shared.bias)
                .with_weight_ih_init(shared.weight_ih_init)
                .with_weight_hh_init(shared.weight_hh_init);
            match self.forget_bias {
                Some(f) => cell.with_forget_bias(f).init(rng),
                None => cell.init(rng),
            }
        })
    }

    /// [`init`](PeepholeLstmConfig::init) from `StdRng::seed_from_u64(seed)`.
    ///
    /// # Errors
    ///
    /// As [`init`](PeepholeLstmConfig::init).
    pub fn init_seeded<T: Float>(&self, seed: u64) -> Result<PeepholeLstm<T>> {
        self.init(&mut StdRng::seed_from_u64(seed))
    }
}

shared_options!(PeepholeLstmConfig);

/// The configuration of a [`LayerNormLstm`]: the options of [`crate::LstmConfig`] (but the
/// projection) for layers of [`LayerNormLstmCell`]s. Parameters are named as an LSTM's
/// weights, without `bias_ih`/`bias_hh` (the normalisations' shifts are the biases), plus each
/// layer's normalisation gains and shifts, `ln_weight_ih_l{k}`, `ln_bias_ih_l{k}`,
/// `ln_weight_hh_l{k}`, `ln_bias_hh_l{k}`, `ln_weight_c_l{k}`, `ln_bias_c_l{k}`.
///
/// [`with_bias`](LayerNormLstmConfig::with_bias)`(false)` is refused by
/// [`init`](LayerNormLstmConfig::init): the shifts cannot be left out.
///
/// # Examples
///
/// ```
/// use recurrent::{LayerNormLstmConfig, Mode, Parameters, SequenceLayer, Tensor};
///
/// let net = LayerNormLstmConfig::new(3, 8).with_bidirectional(true).init_seeded::<f32>(0)?;
/// assert_eq!(net.param_names()[..3], ["weight_ih_l0", "weight_hh_l0", "ln_weight_ih_l0"]);
/// let out = net.forward_with_state(&Tensor::zeros(&[5, 2, 3]), None, None, Mode::Eval)?;
/// assert_eq!(out.output.shape(), &[5, 2, 16]);
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerNormLstmConfig {
    shared: Shared,
    forget_bias: Option<f64>,
    eps: Option<f64>,
}

impl LayerNormLstmConfig {
    /// One forward layer of `hidden_size` units reading `input_size` features, time-major and
    /// no dropout.
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        LayerNormLstmConfig {
            shared: Shared::new(input_size, hidden_size),
            forget_bias: None,
            eps: None,
        }
    }

    /// Sets every layer's forget-gate shift, as
    /// [`LayerNormLstmCellConfig::with_forget_bias`]. Defaults to no change.
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_forget_bias(mut self, forget_bias: f64) -> Self {
        self.forget_bias = Some(forget_bias);
        self
    }

    /// The `eps` of every normalisation, as [`LayerNormLstmCellConfig::with_eps`]. Defaults to
    /// the cell's default.
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_eps(mut self, eps: f64) -> Self {
        self.eps = Some(eps);
        self
    }

    /// The forget-gate shift, if set.
    pub fn forget_bias(&self) -> Option<f64> {
        self.forget_bias
    }

    /// The network this config describes, each cell drawn as
    /// [`LayerNormLstmCellConfig::init`] draws it, layer by layer and forward before reverse.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a hidden size or number of layers of 0, a dropout
    /// outside `[0, 1)`, `with_bias(false)`, or a forget bias or `eps` the cell refuses;
    /// [`Error::SizeOverflow`] or [`Error::Allocation`] for sizes beyond the machine.
    pub fn init<T: Float>(&self, rng: &mut (impl Rng + ?Sized)) -> Result<LayerNormLstm<T>> {
        let shared = &self.shared;
        if !shared.bias {
            return Err(Error::InvalidArgument {
                name: "bias",
                reason: "false: a layer-normalised LSTM's biases are its normalisations' \
                         shifts, which it cannot do without"
                    .into(),
            });
        }
        let h = shared.hidden_size;
        Network::build(shared, h, |input_size| {
            let mut cell = LayerNormLstmCellConfig::new(input_size, h)
                .with_weight_ih_init(shared.weight_ih_init)
                .with_weight_hh_init(shared.weight_hh_init);
            if let Some(f) = self.forget_bias {
                cell = cell.with_forget_bias(f);
            }
            if let Some(eps) = self.eps {
                cell = cell.with_eps(eps);
            }
            cell.init(rng)
        })
    }

    /// [`init`](LayerNormLstmConfig::init) from `StdRng::seed_from_u64(seed)`.
    ///
    /// # Errors
    ///
    /// As [`init`](LayerNormLstmConfig::init).
    pub fn init_seeded<T: Float>(&self, seed: u64) -> Result<LayerNormLstm<T>> {
        self.init(&mut StdRng::seed_from_u64(seed))
    }
}

shared_options!(LayerNormLstmConfig);
