//! The [`Cell`] trait: one time step of a recurrence and its derivative, the part of a
//! recurrent network that differs between RNN, LSTM and GRU. The built-in cells ([`RnnCell`],
//! [`LstmCell`], [`GruCell`]) each live in a file of their own; [`CellParams`] holds their
//! parameters, and [`kernels`] what a step needs to be fast, for the built-in cells and yours
//! alike. [`PeepholeLstmCell`] and [`LayerNormLstmCell`] are written with these public items only, as a cell of your own
//! would be.
//!
//! A cell owns one time step: from the input projection `P_t = x_t·W_ihᵀ + b_ih` (which
//! [`crate::Recurrent`] computes for all time steps in one GEMM) and the previous state, to the
//! next state; and that step's derivative. Everything that is one big product over all time
//! steps (the input projection, `dW_ih`, `dW_hh`, the input gradient) is done by the sequence
//! driver, so a cell of your own inherits it.

mod display;
mod gru;
mod init;
pub mod kernels;
mod layer_norm_lstm;
mod lstm;
mod params;
mod peephole_lstm;
mod rnn;
mod step;

pub(crate) use display::display_cell;
pub use gru::{GruCell, GruCellConfig};
pub use init::Init;
pub use layer_norm_lstm::{LayerNormLstmCell, LayerNormLstmCellConfig};
pub use lstm::{LstmCell, LstmCellConfig};
pub(crate) use params::check_hidden_size;
pub use params::CellParams;
pub use peephole_lstm::{PeepholeLstmCell, PeepholeLstmCellConfig};
pub use rnn::{Nonlinearity, RnnCell, RnnCellConfig};
pub use step::BackwardStep;

#[cfg(doc)]
use crate::error::Error;
use crate::error::Result;
use crate::float::Float;
pub use crate::layer::single_step::{StepGrads, StepTrace};
use crate::state::{State, StatePart};
use crate::tensor::Tensor;

/// One recurrent time step and its derivative: the part of a recurrent network that differs
/// between RNN, LSTM and GRU.
///
/// Buffers are row-major `(batch, width)` slices with exactly `batch` rows (`batch ≥ 1`: the
/// driver skips steps where every sequence has ended):
///
/// | buffer | width | meaning |
/// |---|---|---|
/// | `p` | [`gate_width`](Cell::gate_width) | this step's input projection `x_t·W_ihᵀ + b_ih` |
/// | `prev`, `next`, `d_prev`, `d_next` | sum of the [`state_parts`](Cell::state_parts) sizes | states, parts side by side in order, `h` first |
/// | `saved` | [`saved_width`](Cell::saved_width) | what [`step`](Cell::step) keeps for [`step_backward`](Cell::step_backward) |
/// | `d_p`, `d_hp` | `gate_width` | gradients of `p` and of `h_prev·W_hhᵀ + b_hh` |
///
/// [`step_backward`](Cell::step_backward) receives its buffers by name in a [`BackwardStep`].
///
/// The cell computes the recurrent product `h_prev·W_hhᵀ` itself (so it can choose how; the
/// [`kernels`] are what the built-in cells use), and in `step_backward` it reports the gradient
/// `d_hp` of that product so that the driver forms `dW_hh = Σ_t d_hpᵀ·h_prev` in one GEMM after the
/// time loop. For cells where `d_hp` equals `d_p` (RNN, LSTM)
/// [`separate_hidden_grad`](Cell::separate_hidden_grad) is `false` and `d_hp` is empty; the driver
/// then uses `d_p`.
///
/// Implementing these required methods gives a cell of your own [`crate::Recurrent`], the
/// single-step [`forward`](Cell::forward) / [`backward`](Cell::backward) and
/// [`crate::Gradcheck`]: [`state_parts`](Cell::state_parts), [`saved_width`](Cell::saved_width),
/// [`params`](Cell::params), [`params_mut`](Cell::params_mut), [`step`](Cell::step) and
/// [`step_backward`](Cell::step_backward). The sizes [`input_size`](Cell::input_size),
/// [`gate_width`](Cell::gate_width) and [`hidden_size`](Cell::hidden_size) are provided: they
/// read the shape of `weight_ih` and the width of `h`, so a cell overrides them only when its
/// sizes are not those. With these defaults, [`validate_params`](Cell::validate_params) checks
/// that the parameters agree with one another and with the state; a cell whose gate count is
/// fixed (`G·H`) can override `gate_width` to have that checked too.
///
/// # Examples
///
/// A vanilla RNN cell `h' = tanh(p + b_hh + h·W_hhᵀ)` of your own, whose sizes the provided
/// methods read from its parameters and its state:
///
/// ```
/// use recurrent::rand::{rngs::StdRng, SeedableRng};
/// use recurrent::{kernels, BackwardStep, Cell, CellParams, Gradcheck, MatMut, MatRef};
/// use recurrent::{StatePart, Tensor};
///
/// #[derive(Clone)]
/// struct TanhRnn {
///     params: CellParams<f64>,
///     parts: [StatePart; 1],
/// }
///
/// impl Cell<f64> for TanhRnn {
///     fn state_parts(&self) -> &[StatePart] {
///         &self.parts
///     }
///     fn saved_width(&self) -> usize {
///         0 // the derivative reads `next`
///     }
///     fn params(&self) -> &CellParams<f64> {
///         &self.params
///     }
///     fn params_mut(&mut self) -> &mut CellParams<f64> {
///         &mut self.params
///     }
///     fn step(&self, batch: usize, p: &[f64], prev: &[f64], next: &mut [f64], _: &mut [f64]) {
///         let (h, params) = (self.hidden_size(), &self.params);
///         kernels::broadcast_bias(params.bias_hh(), batch, h, next, h);
///         let prev = MatRef::new(prev, batch, h);
///         kernels::recurrent_product(params, prev, 1.0, MatMut::new(next, batch, h));
///         next.iter_mut().zip(p).for_each(|(n, p)| *n += p);
///         kernels::tanh(next);
///     }
///     fn step_backward(&self, s: BackwardStep<'_, f64>, _: &mut CellParams<f64>) {
///         let h = self.hidden_size();
///         for ((d_p, d_next), next) in s.d_p.iter_mut().zip(s.d_next).zip(s.next) {
///             *d_p = d_next * (1.0 - next * next); // d tanh(x)/dx = 1 − tanh²(x)
///         }
///         let (d_p, d_prev) = (MatRef::new(s.d_p, s.batch, h), MatMut::new(s.d_prev, s.batch, h));
///         // d_prev = d_p·W_hh, overwritten (β = 0)
///         kernels::recurrent_product_backward(&self.params, d_p, 0.0, d_prev);
///     }
/// }
///
/// let mut rng = StdRng::seed_from_u64(0);
/// // gate width 4 (one gate of 4 units), 3 input features, 4 hidden units
/// let params = CellParams::init(4, 3, 4, true, &mut rng)?;
/// let cell = TanhRnn { params, parts: [StatePart::new("h", 4)] };
/// assert_eq!((cell.input_size(), cell.gate_width(), cell.hidden_size()), (3, 4, 4));
/// let x = Tensor::randn(&[2, 3], &mut rng);
/// let report = Gradcheck::new().check_cell(&cell, &x, None)?;
/// assert!(report.worst_error < 1e-7, "{report}");
/// # // a `weight_ih` that is not a matrix gives an error naming it, not a panic
/// # let mut broken = cell.clone();
/// # *broken.params_mut().weight_ih_mut() = Tensor::zeros(&[4]);
/// # let error = broken.forward(&x, None).err().expect("a shape error").to_string();
/// # assert!(error.contains("weight_ih"), "{error}");
/// # Ok::<(), recurrent::Error>(())
/// ```
pub trait Cell<T: Float>: Send + Sync {
    /// Features per input sample, `I`. Defaults to the columns of
    /// [`weight_ih`](CellParams::weight_ih) `(G·H, I)` (0 if it is not a matrix, which
    /// [`validate_params`](Cell::validate_params) then reports); a cell whose input does not
    /// go through `weight_ih` overrides it.
    fn input_size(&self) -> usize {
        let shape = self.params().weight_ih().shape();
        shape.get(1).copied().unwrap_or(0)
    }

    /// Hidden units, `H`. Defaults to the width of `h`, the first of the
    /// [`state_parts`](Cell::state_parts); a cell whose `h` is narrower than its gates (an LSTM
    /// with a projection: `h` has `P < H` values) overrides it.
    fn hidden_size(&self) -> usize {
        self.state_parts()[0].size
    }

    /// Width of the packed gate pre-activations, `G·H`. Defaults to the rows of
    /// [`weight_ih`](CellParams::weight_ih) `(G·H, I)`; a cell whose gates are not the rows of
    /// `weight_ih`, or that wants [`validate_params`](Cell::validate_params) to check its gate
    /// count, overrides it.
    fn gate_width(&self) -> usize {
        let shape = self.params().weight_ih().shape();
        shape.first().copied().unwrap_or(0)
    }

    /// The parts of the state, `h` first (stored in the cell: the driver asks at every call).
    fn state_parts(&self) -> &[StatePart];

    /// Values per sample that [`step`](Cell::step) saves for [`step_backward`](Cell::step_backward).
    fn saved_width(&self) -> usize;

    /// Whether the gradient of the hidden projection differs from that of the input projection
    /// (GRU: yes, because the reset gate scales `W_hn h + b_hn`). Defaults to `false`.
    fn separate_hidden_grad(&self) -> bool {
        false
    }

    /// Checks that the parameters have the shapes the cell's sizes imply. The default checks
    /// the four standard parameters with [`CellParams::validate`]; a cell with extra
    /// parameters overrides it to check those too. Every forward and backward pass calls it.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] naming the first parameter whose shape is wrong;
    /// [`Error::MissingParameter`] for a parameter that is absent.
    fn validate_params(&self) -> Result<()> {
        self.params()
            .validate(self.gate_width(), self.input_size(), self.output_size())
    }

    /// The parameters.
    fn params(&self) -> &CellParams<T>;

    /// The parameters, mutably (for optimisers and loading).
    fn params_mut(&mut self) -> &mut CellParams<T>;

    /// One forward step over `batch` samples: `next` and `saved` from `p` and `prev`.
    fn step(&self, batch: usize, p: &[T], prev: &[T], next: &mut [T], saved: &mut [T]);

    /// The derivative of [`step`](Cell::step): from `step.d_next` (the gradient of `next`),
    /// writes `step.d_p`, `step.d_hp` (only if
    /// [`separate_hidden_grad`](Cell::separate_hidden_grad)) and `step.d_prev`, overwriting
    /// them, and adds this step's contribution to the gradients of the cell's
    /// [`extra`](CellParams::extra) parameters in `grads` (the driver computes the four
    /// standard ones; the built-in cells have no extra parameter and leave `grads` alone).
    fn step_backward(&self, step: BackwardStep<'_, T>, grads: &mut CellParams<T>);

    /// Width of `h`, the output of a step (the first state part).
    fn output_size(&self) -> usize {
        self.state_parts()[0].size
    }

    /// A zero state for `batch` samples, each part `(batch, width)`.
    fn zero_state(&self, batch: usize) -> State<T> {
        State::new(
            self.state_parts()
                .iter()
                .map(|p| (p.name, Tensor::zeros(&[batch, p.size])))
                .collect(),
        )
    }

    /// One step on a batch, like PyTorch's `nn.LSTMCell(x, (h, c))`: `x` is `(B, I)`, each
    /// state part `(B, width)`; `None` starts from zeros.
    ///
    /// # Shapes
    ///
    /// `x: (B, I)`; state parts `(B, H)`; the returned state has the same shapes.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if `x`, a state part or a parameter has the wrong shape;
    /// [`Error::StatePartsMismatch`] if `state` does not have the cell's parts.
    fn forward(&self, x: &Tensor<T>, state: Option<&State<T>>) -> Result<(State<T>, StepTrace<T>)>
    where
        Self: Sized,
    {
        crate::layer::single_step::forward(self, x, state)
    }

    /// The gradients of one [`forward`](Cell::forward) step, given the gradient of the next
    /// state (`d_state` parts `(B, width)`; a part left out counts as zero).
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if a part of `d_state` or a parameter has the wrong shape;
    /// [`Error::StatePartsMismatch`] if `d_state` has a part the cell does not have;
    /// [`Error::TraceMismatch`] if `trace` was made by a cell of other sizes;
    /// [`Error::StaleTrace`] if the parameters changed since `forward` or `trace` was made by
    /// another kind of cell.
    fn backward(&self, trace: &StepTrace<T>, d_state: &State<T>) -> Result<StepGrads<T>>
    where
        Self: Sized,
    {
        crate::layer::single_step::backward(self, trace, d_state)
    }
}
