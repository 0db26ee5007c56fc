//! PyTorch-style networks: [`Lstm`], [`Gru`] and [`Rnn`] built from a config the way
//! `nn.LSTM(...)`, `nn.GRU(...)` and `nn.RNN(...)` are, with the same parameter names.

use core::fmt;

use super::{
    Bidirectional, BidirectionalTrace, Direction, Recurrent, RecurrentTrace, SequenceGrads,
    SequenceLayer, SequenceOutput, Stacked, StackedTrace,
};
use crate::cell::{Cell, GruCell, LstmCell, RnnCell};
mod config;
mod lstm_variants;
mod stream;

pub use config::{GruConfig, LstmConfig, RnnConfig};
pub use lstm_variants::{LayerNormLstm, LayerNormLstmConfig, PeepholeLstm, PeepholeLstmConfig};
pub use stream::NetworkStream;

use crate::error::{Error, Result};
use crate::float::Float;
use crate::mode::Mode;
use crate::params::Parameters;
use crate::state::{State, StatePart};
use crate::tensor::{checked_size, Tensor};
use config::Shared;

/// A multi-layer, optionally bidirectional recurrent network of one cell type, as PyTorch's
/// `nn.LSTM` / `nn.GRU` / `nn.RNN`: use it as [`Lstm`], [`Gru`] or [`Rnn`].
///
/// It is a [`Stacked`] of [`Recurrent`] layers, or of [`Bidirectional`] pairs of them, built
/// from a config. Parameters have PyTorch's names and `state_dict` order
/// (`weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`, [`weight_hr_l0`],
/// then `…_l0_reverse`, then `…_l1`, …), so weights saved from PyTorch load into it directly.
/// Use it through [`SequenceLayer`]: input `(T, B, I)`, output `(T, B, D·H_out)`, states
/// `(L·D, B, H)`.
///
/// # Examples
///
/// ```
/// use recurrent::rand::{rngs::StdRng, SeedableRng};
/// use recurrent::{Lstm, LstmConfig, Mode, Parameters, SequenceLayer, Tensor};
///
/// let mut rng = StdRng::seed_from_u64(0);
/// // nn.LSTM(input_size=8, hidden_size=16, num_layers=2, bidirectional=True)
/// let config = LstmConfig::new(8, 16).with_num_layers(2).with_bidirectional(true);
/// let lstm: Lstm<f32> = config.init(&mut rng)?;
/// let x = Tensor::randn(&[12, 4, 8], &mut rng);
/// let out = lstm.forward_with_state(&x, None, Some(&[12, 9, 7, 2]), Mode::Eval)?;
/// assert_eq!(out.output.shape(), &[12, 4, 32]);
/// assert_eq!(out.state.h().shape(), &[4, 4, 16]);
/// assert_eq!(lstm.param_names()[4..6], ["weight_ih_l0_reverse", "weight_hh_l0_reverse"]);
/// # Ok::<(), recurrent::Error>(())
/// ```
///
/// [`weight_hr_l0`]: LstmConfig::with_proj_size
pub struct Network<C> {
    layers: Layers<C>,
}

/// An LSTM network, PyTorch's `nn.LSTM`; built with [`LstmConfig::init`].
pub type Lstm<T> = Network<LstmCell<T>>;
/// A GRU network, PyTorch's `nn.GRU`; built with [`GruConfig::init`].
pub type Gru<T> = Network<GruCell<T>>;
/// A vanilla RNN network, PyTorch's `nn.RNN`; built with [`RnnConfig::init`].
pub type Rnn<T> = Network<RnnCell<T>>;

#[derive(Clone)]
enum Layers<C> {
    Forward(Stacked<Recurrent<C>>),
    Bidirectional(Stacked<Bidirectional<Recurrent<C>>>),
}

/// Calls the same method on whichever stack the network holds.
macro_rules! on_layers {
    ($layers:expr, $s:ident => $body:expr) => {
        match $layers {
            Layers::Forward($s) => $body,
            Layers::Bidirectional($s) => $body,
        }
    };
}

/// What a [`Network`]'s forward pass keeps for its backward pass.
pub struct NetworkTrace<T> {
    inner: TraceOf<T>,
}

enum TraceOf<T> {
    Forward(StackedTrace<T, RecurrentTrace<T>>),
    Bidirectional(StackedTrace<T, BidirectionalTrace<RecurrentTrace<T>>>),
}

impl<T> fmt::Debug for NetworkTrace<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            TraceOf::Forward(t) => t.fmt(f),
            TraceOf::Bidirectional(t) => t.fmt(f),
        }
    }
}

impl<C> Network<C> {
    /// Builds the layers: `make_cell(input_size)` makes one cell for one layer and direction.
    fn build<T: Float>(
        shared: &Shared,
        h_out: usize,
        mut make_cell: impl FnMut(usize) -> Result<C>,
    ) -> Result<Self>
    where
        C: Cell<T>,
    {
        shared.check()?;
        let directions = if shared.bidirectional { 2 } else { 1 };
        let upper_input = checked_size("layer input", &[directions, h_out])?;
        let input_size = |k: usize| {
            if k == 0 {
                shared.input_size
            } else {
                upper_input
            }
        };
        let (drop_input, drop_state) = shared.variational_dropout;
        let mut recurrent = |k: usize| {
            let cell = make_cell(input_size(k))?;
            Recurrent::new(cell)
                .with_batch_first(shared.batch_first)
                .with_variational_dropout(drop_input, drop_state)
        };
        let layers = if shared.bidirectional {
            let layers = (0..shared.num_layers)
                .map(|k| Bidirectional::new(recurrent(k)?, recurrent(k)?))
                .collect::<Result<Vec<_>>>()?;
            Layers::Bidirectional(Stacked::new(layers, shared.dropout)?)
        } else {
            let layers = (0..shared.num_layers)
                .map(recurrent)
                .collect::<Result<Vec<_>>>()?;
            Layers::Forward(Stacked::new(layers, shared.dropout)?)
        };
        Ok(Network { layers })
    }

    /// The cell of layer `layer` in `direction` (`None` past the last layer, or for
    /// [`Direction::Reverse`] in a unidirectional network).
    pub fn cell(&self, layer: usize, direction: Direction) -> Option<&C> {
        match (&self.layers, direction) {
            (Layers::Forward(s), Direction::Forward) => s.layers().get(layer).map(Recurrent::cell),
            (Layers::Forward(_), Direction::Reverse) => None,
            (Layers::Bidirectional(s), _) => s.layers().get(layer).map(|b| match direction {
                Direction::Forward => b.forward_layer().cell(),
                Direction::Reverse => b.reverse_layer().cell(),
            }),
        }
    }
}

impl<T: Float, C: Cell<T>> SequenceLayer<T> for Network<C> {
    type Trace = NetworkTrace<T>;

    fn input_size(&self) -> usize {
        on_layers!(&self.layers, s => s.input_size())
    }

    fn output_size(&self) -> usize {
        on_layers!(&self.layers, s => s.output_size())
    }

    fn state_parts(&self) -> Vec<StatePart> {
        on_layers!(&self.layers, s => s.state_parts())
    }

    fn directions(&self) -> usize {
        on_layers!(&self.layers, s => SequenceLayer::<T>::directions(s))
    }

    fn state_slots(&self) -> usize {
        on_layers!(&self.layers, s => s.state_slots())
    }

    fn batch_first(&self) -> bool {
        on_layers!(&self.layers, s => s.batch_first())
    }

    fn forward_with_state(
        &self,
        input: &Tensor<T>,
        initial: Option<&State<T>>,
        lengths: Option<&[usize]>,
        mode: Mode,
    ) -> Result<SequenceOutput<T, Self::Trace>> {
        Ok(match &self.layers {
            Layers::Forward(s) => with_trace(
                s.forward_with_state(input, initial, lengths, mode)?,
                TraceOf::Forward,
            ),
            Layers::Bidirectional(s) => with_trace(
                s.forward_with_state(input, initial, lengths, mode)?,
                TraceOf::Bidirectional,
            ),
        })
    }

    fn infer_with_state(
        &self,
        input: &Tensor<T>,
        initial: Option<&State<T>>,
        lengths: Option<&[usize]>,
    ) -> Result<SequenceOutput<T, ()>> {
        on_layers!(&self.layers, s => s.infer_with_state(input, initial, lengths))
    }

    fn backward_with_state(
        &self,
        trace: &Self::Trace,
        d_output: Option<&Tensor<T>>,
        d_state: Option<&State<T>>,
    ) -> Result<SequenceGrads<T>> {
        match (&self.layers, &trace.inner) {
            (Layers::Forward(s), TraceOf::Forward(t)) => {
                s.backward_with_state(t, d_output, d_state)
            }
            (Layers::Bidirectional(s), TraceOf::Bidirectional(t)) => {
                s.backward_with_state(t, d_output, d_state)
            }
            _ => Err(Error::TraceMismatch {
                what: "number of directions",
                expected: self.directions(),
                actual: match trace.inner {
                    TraceOf::Forward(_) => 1,
                    TraceOf::Bidirectional(_) => 2,
                },
            }),
        }
    }

    fn set_position(&mut self, layer: usize, direction: Direction) {
        on_layers!(&mut self.layers, s => SequenceLayer::<T>::set_position(s, layer, direction));
    }

    fn release_buffers(&self) {
        on_layers!(&self.layers, s => SequenceLayer::<T>::release_buffers(s));
    }
}

/// `out` with its trace wrapped into a [`NetworkTrace`].
fn with_trace<T, Tr>(
    out: SequenceOutput<T, Tr>,
    inner: impl FnOnce(Tr) -> TraceOf<T>,
) -> SequenceOutput<T, NetworkTrace<T>> {
    SequenceOutput {
        output: out.output,
        state: out.state,
        trace: NetworkTrace {
            inner: inner(out.trace),
        },
    }
}

impl<C> Network<C> {
    /// 1, or 2 if bidirectional.
    fn directions(&self) -> usize {
        match self.layers {
            Layers::Forward(_) => 1,
            Layers::Bidirectional(_) => 2,
        }
    }
}

impl<T: Float, C: Cell<T>> Parameters<T> for Network<C> {
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Tensor<T>)) {
        on_layers!(&self.layers, s => s.visit_params(f));
    }

    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Tensor<T>)) {
        on_layers!(&mut self.layers, s => s.visit_params_mut(f));
    }
}

impl<C: Clone> Clone for Network<C> {
    fn clone(&self) -> Self {
        Network {
            layers: self.layers.clone(),
        }
    }
}

impl<C: fmt::Display> fmt::Display for Network<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        on_layers!(&self.layers, s => write!(f, "Network {{ {s} }}"))
    }
}

impl<C: fmt::Debug> fmt::Debug for Network<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        on_layers!(&self.layers, s => f.debug_struct("Network").field("layers", s).finish())
    }
}
