//! The layer-normalised LSTM cell (Ba, Kiros & Hinton, 2016, "Layer Normalization",
//! [arXiv:1607.06450](https://arxiv.org/abs/1607.06450), eqs. 20–22).
//!
//! The cell is written the way a cell of your own would be: with the public [`Cell`] trait,
//! [`CellParams`] (its layer-norm gains and shifts are [`extra`](CellParams::extra)
//! parameters) and [`kernels`] only, so it is also a worked example of a cell with extra
//! parameters and a hidden-projection gradient of its own
//! ([`separate_hidden_grad`](Cell::separate_hidden_grad)).

use core::fmt;

use multiversion::multiversion;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::{
    kernels, BackwardStep, Cell, CellParams, Error, Float, Init, LstmCellConfig, MatMut, MatRef,
    Result, Shape, StatePart, Tensor,
};

/// Gates of an LSTM, in PyTorch's packed order `i, f, g, o`.
const GATES: usize = 4;

/// PyTorch's default `eps` of `torch.nn.LayerNorm`.
const DEFAULT_EPS: f64 = 1e-5;

/// A row's element-wise work in units of an LSTM's (two layer norms over `4H` values, one over
/// `H`, and the gates): [`kernels::split_rows`] is asked with this many values per gate value,
/// so that a step's rows are split over two threads at a third of the LSTM's batch.
const ROW_WORK: usize = 3;

/// The gain `α_ih (4H)` of the layer norm of `W_ih x`.
const LN_WEIGHT_IH: &str = "ln_weight_ih";
/// The shift `β_ih (4H)` of the layer norm of `W_ih x`.
const LN_BIAS_IH: &str = "ln_bias_ih";
/// The gain `α_hh (4H)` of the layer norm of `W_hh h`.
const LN_WEIGHT_HH: &str = "ln_weight_hh";
/// The shift `β_hh (4H)` of the layer norm of `W_hh h`.
const LN_BIAS_HH: &str = "ln_bias_hh";
/// The gain `α_c (H)` of the layer norm of `c'`.
const LN_WEIGHT_C: &str = "ln_weight_c";
/// The shift `β_c (H)` of the layer norm of `c'`.
const LN_BIAS_C: &str = "ln_bias_c";

/// The extra parameters in the order they are added: name, length in units of `H`, initial
/// value of every entry (gains 1, shifts 0, as `torch.nn.LayerNorm`).
const LN_PARAMS: [(&str, usize, f64); 6] = [
    (LN_WEIGHT_IH, GATES, 1.0),
    (LN_BIAS_IH, GATES, 0.0),
    (LN_WEIGHT_HH, GATES, 1.0),
    (LN_BIAS_HH, GATES, 0.0),
    (LN_WEIGHT_C, 1, 1.0),
    (LN_BIAS_C, 1, 0.0),
];

/// Values saved per sample, in units of `H`, before the three inverse standard deviations:
/// the gates `i, f, g, o` (4), the normalised `W_ih x` (4) and `W_hh h` (4), the normalised
/// `c'` (1) and `tanh(LN(c'))` (1).
const SAVED_UNITS: usize = 14;

/// Gradient sums per backward step, in units of `H`: `Σ dz`, `Σ dz ⊙ x̂_ih`, `Σ dz ⊙ x̂_hh`
/// (4 each, `dz` the gradient of the gate pre-activations), `Σ dy ⊙ ĉ` and `Σ dy` (1 each, `dy`
/// the gradient of `LN(c')`).
const SUM_UNITS: usize = 14;

/// Configuration of a [`LayerNormLstmCell`]: `LayerNormLstmCellConfig::new(input_size,
/// hidden_size)`, then `with_*` options, then [`init`](LayerNormLstmCellConfig::init).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerNormLstmCellConfig {
    input_size: usize,
    hidden_size: usize,
    weight_ih_init: Init,
    weight_hh_init: Init,
    forget_bias: f64,
    eps: f64,
}

impl LayerNormLstmCellConfig {
    /// A layer-normalised LSTM cell reading `input_size` features into `hidden_size` units.
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        LayerNormLstmCellConfig {
            input_size,
            hidden_size,
            weight_ih_init: Init::Default,
            weight_hh_init: Init::Default,
            forget_bias: 0.0,
            eps: DEFAULT_EPS,
        }
    }

    /// How `weight_ih (4H, I)` is initialised; see [`Init`]. Defaults to [`Init::Default`].
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_weight_ih_init(self, weight_ih_init: Init) -> Self {
        LayerNormLstmCellConfig {
            weight_ih_init,
            ..self
        }
    }

    /// How `weight_hh (4H, H)` is initialised; see [`Init`]. Defaults to [`Init::Default`].
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_weight_hh_init(self, weight_hh_init: Init) -> Self {
        LayerNormLstmCellConfig {
            weight_hh_init,
            ..self
        }
    }

    /// Sets the forget block (entries `H..2H`, gate order `i, f, g, o`) of `ln_bias_ih` to
    /// `forget_bias` (1 is the common choice), so that the cell starts by keeping its memory:
    /// the cell has no other bias, the shifts of its layer norms play that part. Defaults to 0,
    /// like every other shift.
    ///
    /// [`init`](LayerNormLstmCellConfig::init) fails with [`Error::InvalidArgument`] if
    /// `forget_bias` is not finite.
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_forget_bias(self, forget_bias: f64) -> Self {
        LayerNormLstmCellConfig {
            forget_bias,
            ..self
        }
    }

    /// The `eps` added to each variance before its square root, as in `torch.nn.LayerNorm`.
    /// Defaults to `1e-5`, PyTorch's default.
    ///
    /// [`init`](LayerNormLstmCellConfig::init) fails with [`Error::InvalidArgument`] unless
    /// `eps` is positive and finite (with `eps = 0` a constant vector, such as `W_hh h` for the
    /// zero initial state, would be divided by zero).
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_eps(self, eps: f64) -> Self {
        LayerNormLstmCellConfig { eps, ..self }
    }

    /// A cell with `weight_ih` and `weight_hh` drawn from `rng` exactly as
    /// [`LstmCellConfig`]`::new(input_size, hidden_size).with_bias(false)` draws them (PyTorch's
    /// default `U(−1/√H, 1/√H)` unless another [`Init`] is chosen), the layer-norm gains set
    /// to 1 and the shifts to 0 (the forget block of `ln_bias_ih` to the
    /// [`forget_bias`](LayerNormLstmCellConfig::with_forget_bias)).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if `hidden_size` is 0, `forget_bias` is not finite or `eps`
    /// is not positive and finite; [`Error::SizeOverflow`] or [`Error::Allocation`] for sizes
    /// beyond the machine.
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::rand::{rngs::StdRng, SeedableRng};
    /// use recurrent::{Cell, LayerNormLstmCell, LayerNormLstmCellConfig};
    ///
    /// let cell: LayerNormLstmCell<f32> = LayerNormLstmCellConfig::new(3, 5)
    ///     .with_forget_bias(1.0)
    ///     .init(&mut StdRng::seed_from_u64(0))?;
    /// assert_eq!(cell.params().weight_ih().shape(), &[20, 3]);
    /// assert!(cell.params().bias_ih().is_none());
    /// let shift = cell.params().extra("ln_bias_ih").unwrap().as_slice();
    /// assert_eq!(shift[5..10], [1.0; 5]);
    ///
    /// let e = LayerNormLstmCellConfig::new(3, 5).with_eps(0.0).init::<f32>(&mut StdRng::seed_from_u64(0));
    /// assert_eq!(e.unwrap_err().to_string(), "invalid eps: 0 must be positive and finite");
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn init<T: Float>(&self, rng: &mut (impl Rng + ?Sized)) -> Result<LayerNormLstmCell<T>> {
        let (i, h) = (self.input_size, self.hidden_size);
        gate_width(h)?;
        check_eps(self.eps)?;
        if !self.forget_bias.is_finite() {
            return Err(Error::InvalidArgument {
                name: "forget_bias",
                reason: format!("{} is not finite", self.forget_bias),
            });
        }
        // the weights exactly as an LSTM without biases draws them
        let lstm = LstmCellConfig::new(i, h)
            .with_bias(false)
            .with_weight_ih_init(self.weight_ih_init)
            .with_weight_hh_init(self.weight_hh_init)
            .init::<T>(rng)?;
        let weights = lstm.params();
        let mut params = CellParams::new(
            weights.weight_ih().clone(),
            weights.weight_hh().clone(),
            None,
            None,
        );
        for (name, units, value) in LN_PARAMS {
            let mut t = Tensor::try_zeros(&[units * h])?;
            let values = t.as_mut_slice();
            values.fill(T::from_f64(value));
            if name == LN_BIAS_IH {
                values[h..2 * h].fill(T::from_f64(self.forget_bias));
            }
            params = params.with_extra(name, t);
        }
        Ok(LayerNormLstmCell {
            input_size: i,
            hidden_size: h,
            eps: self.eps,
            params,
            layout: [StatePart::new("h", h), StatePart::new("c", h)],
        })
    }

    /// [`init`](LayerNormLstmCellConfig::init) from `StdRng::seed_from_u64(seed)`.
    ///
    /// # Errors
    ///
    /// As [`init`](LayerNormLstmCellConfig::init).
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::rand::{rngs::StdRng, SeedableRng};
    /// use recurrent::{LayerNormLstmCell, LayerNormLstmCellConfig};
    ///
    /// let config = LayerNormLstmCellConfig::new(3, 5);
    /// let a: LayerNormLstmCell<f64> = config.init_seeded(7)?;
    /// assert_eq!(a, config.init(&mut StdRng::seed_from_u64(7))?);
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn init_seeded<T: Float>(&self, seed: u64) -> Result<LayerNormLstmCell<T>> {
        self.init(&mut StdRng::seed_from_u64(seed))
    }
}

/// `4H`, or [`Error::InvalidArgument`] for `H = 0` (a layer needs a unit, and a layer norm
/// over no value has no mean) and [`Error::SizeOverflow`] if `4H` does not fit in `usize`.
fn gate_width(hidden_size: usize) -> Result<usize> {
    if hidden_size == 0 {
        return Err(Error::InvalidArgument {
            name: "hidden_size",
            reason: "0: a layer needs at least one unit".into(),
        });
    }
    hidden_size
        .checked_mul(GATES)
        .ok_or_else(|| Error::SizeOverflow {
            what: "layer-norm lstm gates",
            sizes: vec![GATES, hidden_size],
        })
}

/// [`Error::InvalidArgument`] unless `eps` is positive and finite.
fn check_eps(eps: f64) -> Result<()> {
    if eps > 0.0 && eps.is_finite() {
        return Ok(());
    }
    Err(Error::InvalidArgument {
        name: "eps",
        reason: format!("{eps} must be positive and finite"),
    })
}

/// An LSTM cell with layer normalisation (Ba, Kiros & Hinton, 2016,
/// [arXiv:1607.06450](https://arxiv.org/abs/1607.06450), eqs. 20–22): the input and hidden
/// projections are normalised separately over all `4H` gate pre-activations, and the new cell
/// state before its `tanh`.
///
/// ```text
/// (i, f, g, o) = LN(W_ih x; α_ih, β_ih) + LN(W_hh h; α_hh, β_hh)    (pre-activations, 4H)
/// i, f, o = σ(·),  g = tanh(·)
/// c' = f ⊙ c + i ⊙ g
/// h' = o ⊙ tanh(LN(c'; α_c, β_c))
///
/// LN(v; α, β) = α ⊙ (v − mean(v)) / √(var(v) + eps) + β
/// ```
///
/// `mean` and the biased `var` are taken over the entries of the one vector (per sample), as
/// `torch.nn.LayerNorm(4H)` and `LayerNorm(H)` do. The state is `(h, c)`, where `c` is the
/// un-normalised `c'`.
///
/// # Parameters
///
/// | name | shape | initial value |
/// |---|---|---|
/// | `weight_ih` | `(4H, I)` | `U(−1/√H, 1/√H)` |
/// | `weight_hh` | `(4H, H)` | `U(−1/√H, 1/√H)` |
/// | `ln_weight_ih`, `ln_bias_ih` | `(4H)` | `α_ih = 1`, `β_ih = 0` |
/// | `ln_weight_hh`, `ln_bias_hh` | `(4H)` | `α_hh = 1`, `β_hh = 0` |
/// | `ln_weight_c`, `ln_bias_c` | `(H)` | `α_c = 1`, `β_c = 0` |
///
/// Gate blocks are packed in the order `i, f, g, o`, as in PyTorch's LSTM. The cell has no
/// `bias_ih`/`bias_hh`: the shifts `β` are its biases (a bias before a layer norm would be
/// cancelled by its mean). The layer-norm parameters are [`CellParams::extra`] parameters; in a
/// [`Recurrent`](crate::Recurrent) layer they are named like the others, `ln_weight_ih_l0`,
/// `ln_bias_c_l0_reverse` and so on.
///
/// # Examples
///
/// ```
/// use recurrent::rand::{rngs::StdRng, SeedableRng};
/// use recurrent::{Cell, Gradcheck, LayerNormLstmCellConfig, Recurrent, SequenceLayer, Tensor};
///
/// let mut rng = StdRng::seed_from_u64(0);
/// let cell = LayerNormLstmCellConfig::new(3, 5).init::<f64>(&mut rng)?;
/// let (next, _trace) = cell.forward(&Tensor::zeros(&[2, 3]), None)?;
/// assert_eq!(next.c().unwrap().shape(), &[2, 5]);
///
/// // over sequences, with gradients checked against finite differences
/// let layer = Recurrent::new(cell);
/// let x = Tensor::randn(&[4, 2, 3], &mut rng);
/// let out = layer.forward_with_state(&x, None, None, recurrent::Mode::Eval)?;
/// assert_eq!(out.output.shape(), &[4, 2, 5]);
/// let report = Gradcheck::new().check_layer(&layer, &x, None, None)?;
/// assert!(report.worst_error < 1e-6, "{report}");
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LayerNormLstmCell<T> {
    input_size: usize,
    hidden_size: usize,
    eps: f64,
    params: CellParams<T>,
    /// `h` and `c`, both `H` units.
    layout: [StatePart; 2],
}

impl<T: Float> LayerNormLstmCell<T> {
    /// A cell with the given parameters and `eps = 1e-5` (see
    /// [`with_eps`](LayerNormLstmCell::with_eps)): `weight_ih (4H, I)`, `weight_hh (4H, H)`,
    /// no biases, and the extra parameters `ln_weight_ih`, `ln_bias_ih`, `ln_weight_hh`,
    /// `ln_bias_hh` (each `4H`), `ln_weight_c` and `ln_bias_c` (each `H`).
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] naming the first parameter of another shape;
    /// [`Error::MissingParameter`] naming a missing layer-norm parameter;
    /// [`Error::UnexpectedParameter`] for `bias_ih`, `bias_hh` or an extra parameter of another
    /// name; [`Error::InvalidArgument`] for `hidden_size = 0`.
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::{Cell, CellParams, LayerNormLstmCell, Tensor};
    ///
    /// let (i, h) = (2, 3);
    /// let params = CellParams::<f32>::new(Tensor::zeros(&[4 * h, i]), Tensor::zeros(&[4 * h, h]), None, None)
    ///     .with_extra("ln_weight_ih", Tensor::full(&[4 * h], 1.0))
    ///     .with_extra("ln_bias_ih", Tensor::zeros(&[4 * h]))
    ///     .with_extra("ln_weight_hh", Tensor::full(&[4 * h], 1.0))
    ///     .with_extra("ln_bias_hh", Tensor::zeros(&[4 * h]));
    /// let e = LayerNormLstmCell::from_params(i, h, params.clone()).unwrap_err();
    /// assert_eq!(
    ///     e.to_string(),
    ///     "missing parameter `ln_weight_c`: a layer-normalised LSTM normalises c' with it"
    /// );
    /// let params = params
    ///     .with_extra("ln_weight_c", Tensor::full(&[h], 1.0))
    ///     .with_extra("ln_bias_c", Tensor::zeros(&[h]));
    /// let cell = LayerNormLstmCell::from_params(i, h, params)?;
    /// assert_eq!(cell.params().count(), 24 + 36 + 4 * 12 + 2 * 3);
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn from_params(
        input_size: usize,
        hidden_size: usize,
        mut params: CellParams<T>,
    ) -> Result<Self> {
        gate_width(hidden_size)?;
        // a mutable access moves the parameters' version on: a trace made by another cell
        // from a clone of these values is not taken for this cell's
        params.visit_mut(|_, _| {});
        let cell = LayerNormLstmCell {
            input_size,
            hidden_size,
            eps: DEFAULT_EPS,
            params,
            layout: [
                StatePart::new("h", hidden_size),
                StatePart::new("c", hidden_size),
            ],
        };
        cell.validate_params()?;
        Ok(cell)
    }

    /// The cell with `eps` (added to each variance before its square root) instead of its
    /// current one, for a cell made by [`from_params`](LayerNormLstmCell::from_params) from a
    /// model trained with another `eps`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] unless `eps` is positive and finite.
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::LayerNormLstmCellConfig;
    ///
    /// let cell = LayerNormLstmCellConfig::new(2, 3).init_seeded::<f64>(0)?;
    /// assert_eq!(cell.eps(), 1e-5);
    /// assert_eq!(cell.with_eps(1e-3)?.eps(), 1e-3);
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn with_eps(self, eps: f64) -> Result<Self> {
        check_eps(eps)?;
        Ok(LayerNormLstmCell { eps, ..self })
    }

    /// The `eps` added to each variance before its square root.
    pub fn eps(&self) -> f64 {
        self.eps
    }

    /// The layer-norm parameters, as slices.
    fn ln_params(&self) -> LnParams<'_, T> {
        let get = |name| {
            self.params
                .extra(name)
                .expect("validated: the cell has its layer-norm parameters")
                .as_slice()
        };
        LnParams {
            w_ih: get(LN_WEIGHT_IH),
            b_ih: get(LN_BIAS_IH),
            w_hh: get(LN_WEIGHT_HH),
            b_hh: get(LN_BIAS_HH),
            w_c: get(LN_WEIGHT_C),
            b_c: get(LN_BIAS_C),
        }
    }
}

/// The gains and shifts of the three layer norms.
#[derive(Debug, Clone, Copy)]
struct LnParams<'a, T> {
    w_ih: &'a [T],
    b_ih: &'a [T],
    w_hh: &'a [T],
    b_hh: &'a [T],
    w_c: &'a [T],
    b_c: &'a [T],
}

impl<T: Float> Cell<T> for LayerNormLstmCell<T> {
    fn input_size(&self) -> usize {
        self.input_size
    }

    fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    fn gate_width(&self) -> usize {
        GATES * self.hidden_size
    }

    fn state_parts(&self) -> &[StatePart] {
        &self.layout
    }

    /// Saved per sample: the activated gates `i, f, g, o`, the normalised `W_ih x` and
    /// `W_hh h` (`4H` each), the normalised `c'` and `tanh(LN(c'))` (`H` each), and the three
    /// inverse standard deviations.
    fn saved_width(&self) -> usize {
        SAVED_UNITS * self.hidden_size + 3
    }

    /// `true`: `W_hh h` goes through its own layer norm, so its gradient differs from that of
    /// `W_ih x`.
    fn separate_hidden_grad(&self) -> bool {
        true
    }

    /// Checks `weight_ih (4H, I)` and `weight_hh (4H, H)`, that there is no bias, and the
    /// shapes of the six layer-norm parameters.
    fn validate_params(&self) -> Result<()> {
        let h = self.hidden_size;
        if self.params.bias_ih().is_some() || self.params.bias_hh().is_some() {
            let name = if self.params.bias_ih().is_some() {
                "bias_ih"
            } else {
                "bias_hh"
            };
            return Err(Error::UnexpectedParameter { name: name.into() });
        }
        self.params.validate(GATES * h, self.input_size, h)?;
        let mut unexpected = None;
        self.params.visit(|name, _| {
            let known = matches!(name, "weight_ih" | "weight_hh")
                || LN_PARAMS.iter().any(|&(n, ..)| n == name);
            if !known && unexpected.is_none() {
                unexpected = Some(name);
            }
        });
        if let Some(name) = unexpected {
            return Err(Error::UnexpectedParameter { name: name.into() });
        }
        for (name, units, _) in LN_PARAMS {
            let Some(t) = self.params.extra(name) else {
                return Err(Error::MissingParameter {
                    name: name.into(),
                    reason: if units == 1 {
                        "a layer-normalised LSTM normalises c' with it"
                    } else {
                        "a layer-normalised LSTM normalises its gate pre-activations with it"
                    },
                });
            };
            let expected = Shape::from([units * h]);
            if t.raw_shape() != expected {
                return Err(Error::ShapeMismatch {
                    op: name,
                    expected,
                    actual: t.raw_shape(),
                });
            }
        }
        Ok(())
    }

    fn params(&self) -> &CellParams<T> {
        &self.params
    }

    fn params_mut(&mut self) -> &mut CellParams<T> {
        &mut self.params
    }

    fn step(&self, batch: usize, p: &[T], prev: &[T], next: &mut [T], saved: &mut [T]) {
        let h = self.hidden_size;
        let (gw, sw, width) = (GATES * h, self.saved_width(), 2 * h);
        debug_assert_eq!(p.len(), batch * gw);
        debug_assert_eq!(prev.len(), batch * width);
        debug_assert_eq!(saved.len(), batch * sw);
        // W_hh h, written straight into the saved rows where it is normalised in place
        kernels::recurrent_product(
            &self.params,
            MatRef::strided(prev, batch, h, width, 1),
            T::zero(),
            MatMut::strided(&mut saved[2 * gw..], batch, gw, sw, 1),
        );
        let (ln, eps) = (self.ln_params(), T::from_f64(self.eps));
        let rows = |batch: usize, p: &[T], prev: &[T], next: &mut [T], saved: &mut [T]| {
            forward_rows(eps, ln, batch, p, prev, next, saved)
        };
        // two halves of the rows side by side when the step is large
        match kernels::split_rows(batch, ROW_WORK * gw) {
            Some(mid) => {
                let (p_a, p_b) = p.split_at(mid * gw);
                let (prev_a, prev_b) = prev.split_at(mid * width);
                let (next_a, next_b) = next.split_at_mut(mid * width);
                let (saved_a, saved_b) = saved.split_at_mut(mid * sw);
                kernels::join(
                    || rows(mid, p_a, prev_a, next_a, saved_a),
                    || rows(batch - mid, p_b, prev_b, next_b, saved_b),
                );
            }
            None => rows(batch, p, prev, next, saved),
        }
    }

    /// Writes `d_p` (through the layer norm of `W_ih x`), `d_hp` (through that of `W_hh h`)
    /// and `d_prev`, and adds the gradients of the six layer-norm parameters to `grads`.
    fn step_backward(&self, step: BackwardStep<'_, T>, grads: &mut CellParams<T>) {
        let BackwardStep {
            batch,
            saved,
            prev,
            d_next,
            d_p,
            d_hp,
            d_prev,
            ..
        } = step;
        let h = self.hidden_size;
        let (gw, sw, width) = (GATES * h, self.saved_width(), 2 * h);
        let ln = self.ln_params();
        // (read, written) buffers of `batch` rows
        type Read<'a, T> = (&'a [T], &'a [T], &'a [T]);
        type Written<'a, T> = (&'a mut [T], &'a mut [T], &'a mut [T], &'a mut [T]);
        let rows = |batch: usize,
                    (saved, prev, d_next): Read<'_, T>,
                    (d_p, d_hp, d_prev, sums): Written<'_, T>| {
            backward_rows(ln, batch, saved, prev, d_next, d_p, d_hp, d_prev, sums)
        };
        // the parameter-gradient sums of this step, added to `grads` below
        let mut sums = vec![T::zero(); SUM_UNITS * h];
        match kernels::split_rows(batch, ROW_WORK * gw) {
            Some(mid) => {
                let mut sums_b = vec![T::zero(); SUM_UNITS * h];
                let (saved_a, saved_b) = saved.split_at(mid * sw);
                let (prev_a, prev_b) = prev.split_at(mid * width);
                let (d_next_a, d_next_b) = d_next.split_at(mid * width);
                let (d_p_a, d_p_b) = d_p.split_at_mut(mid * gw);
                let (d_hp_a, d_hp_b) = d_hp.split_at_mut(mid * gw);
                let (d_prev_a, d_prev_b) = d_prev.split_at_mut(mid * width);
                let (read_a, read_b) = ((saved_a, prev_a, d_next_a), (saved_b, prev_b, d_next_b));
                let written_a = (d_p_a, d_hp_a, d_prev_a, &mut sums[..]);
                let written_b = (d_p_b, d_hp_b, d_prev_b, &mut sums_b[..]);
                kernels::join(
                    || rows(mid, read_a, written_a),
                    || rows(batch - mid, read_b, written_b),
                );
                add_to(&mut sums, &sums_b);
            }
            None => rows(batch, (saved, prev, d_next), (d_p, d_hp, d_prev, &mut sums)),
        }
        let (sum_dz, rest) = sums.split_at(GATES * h);
        let (sum_dz_ih, rest) = rest.split_at(GATES * h);
        let (sum_dz_hh, rest) = rest.split_at(GATES * h);
        let (sum_dy_c, sum_dy) = rest.split_at(h);
        // both shifts of the gate pre-activations get Σ dz
        for (name, sum) in [
            (LN_WEIGHT_IH, sum_dz_ih),
            (LN_BIAS_IH, sum_dz),
            (LN_WEIGHT_HH, sum_dz_hh),
            (LN_BIAS_HH, sum_dz),
            (LN_WEIGHT_C, sum_dy_c),
            (LN_BIAS_C, sum_dy),
        ] {
            let g = grads
                .extra_mut(name)
                .expect("the gradients mirror the parameters");
            add_to(g.as_mut_slice(), sum);
        }
        // dh_prev = d_hp·W_hh
        kernels::recurrent_product_backward(
            &self.params,
            MatRef::new(d_hp, batch, gw),
            T::zero(),
            MatMut::strided(d_prev, batch, h, width, 1),
        );
    }
}

/// The forward step after the recurrent product for `batch` rows (see [`forward_row`]),
/// compiled for AVX-512 and AVX2 as well and chosen at run time, so that the element-wise loops
/// and the reductions run in wide vectors.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
fn forward_rows<T: Float>(
    eps: T,
    ln: LnParams<'_, T>,
    batch: usize,
    p: &[T],
    prev: &[T],
    next: &mut [T],
    saved: &mut [T],
) {
    let h = ln.w_c.len();
    let (gw, sw, width) = (GATES * h, SAVED_UNITS * h + 3, 2 * h);
    for b in 0..batch {
        let (h_next, c_next) = next[b * width..][..width].split_at_mut(h);
        forward_row(
            eps,
            ln,
            &p[b * gw..][..gw],
            &prev[b * width + h..][..h],
            h_next,
            c_next,
            &mut saved[b * sw..][..sw],
        );
    }
}

/// The backward step for `batch` rows (see [`backward_row`]) but the recurrent product,
/// compiled like [`forward_rows`].
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn backward_rows<T: Float>(
    ln: LnParams<'_, T>,
    batch: usize,
    saved: &[T],
    prev: &[T],
    d_next: &[T],
    d_p: &mut [T],
    d_hp: &mut [T],
    d_prev: &mut [T],
    sums: &mut [T],
) {
    let h = ln.w_c.len();
    let (gw, sw, width) = (GATES * h, SAVED_UNITS * h + 3, 2 * h);
    for b in 0..batch {
        let (dh, dc_next) = d_next[b * width..][..width].split_at(h);
        backward_row(
            ln,
            &saved[b * sw..][..sw],
            &prev[b * width + h..][..h],
            (dh, dc_next),
            &mut d_p[b * gw..][..gw],
            &mut d_hp[b * gw..][..gw],
            &mut d_prev[b * width + h..][..h],
            sums,
        );
    }
}

/// One sample's forward step after the recurrent product: `s` (its saved row) holds `W_hh h`
/// in its third `4H` block on entry; writes `h'`, `c'` and the rest of `s`.
#[inline(always)]
fn forward_row<T: Float>(
    eps: T,
    ln: LnParams<'_, T>,
    p: &[T],
    c_prev: &[T],
    h_next: &mut [T],
    c_next: &mut [T],
    s: &mut [T],
) {
    let h = c_prev.len();
    let gw = GATES * h;
    let (gates, rest) = s.split_at_mut(gw);
    let (x_ih, rest) = rest.split_at_mut(gw);
    let (x_hh, rest) = rest.split_at_mut(gw);
    let (c_hat, rest) = rest.split_at_mut(h);
    let (tanh_y, inv_std) = rest.split_at_mut(h);
    // x̂_ih = (p − mean) / √(var + eps), x̂_hh likewise in place
    let (mean, inv_ih) = moments(p, eps);
    normalize(x_ih, p, mean, inv_ih);
    let (mean, inv_hh) = moments(x_hh, eps);
    normalize_in_place(x_hh, mean, inv_hh);
    pre_activations(gates, x_ih, x_hh, ln.w_ih, ln.b_ih, ln.w_hh, ln.b_hh);
    // i, f = σ(·); g = tanh(·); o = σ(·)
    kernels::sigmoid(&mut gates[..2 * h]);
    kernels::tanh(&mut gates[2 * h..3 * h]);
    kernels::sigmoid(&mut gates[3 * h..]);
    let (i, rest) = gates.split_at(h);
    let (f, rest) = rest.split_at(h);
    let (g, o) = rest.split_at(h);
    cell_update(c_next, c_hat, i, f, g, c_prev);
    // y = LN(c'), then tanh(y)
    let (mean, inv_c) = moments(c_hat, eps);
    normalize_affine(c_hat, tanh_y, ln.w_c, ln.b_c, mean, inv_c);
    kernels::tanh(tanh_y);
    // h' = o ⊙ tanh(y)
    for ((h, &o), &t) in h_next.iter_mut().zip(o).zip(&*tanh_y) {
        *h = o * t;
    }
    inv_std.copy_from_slice(&[inv_ih, inv_hh, inv_c]);
}

/// One sample's backward step: from `dh'`, `dc'` (`d_next`) and its saved row `s`, writes
/// `d_p`, `d_hp` and `dc` (`dc_prev`), and adds to the gradient sums (see [`SUM_UNITS`]).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn backward_row<T: Float>(
    ln: LnParams<'_, T>,
    s: &[T],
    c_prev: &[T],
    (dh, dc_next): (&[T], &[T]),
    d_p: &mut [T],
    d_hp: &mut [T],
    dc_prev: &mut [T],
    sums: &mut [T],
) {
    let h = c_prev.len();
    let gw = GATES * h;
    let (gates, rest) = s.split_at(gw);
    let (x_ih, rest) = rest.split_at(gw);
    let (x_hh, rest) = rest.split_at(gw);
    let (c_hat, rest) = rest.split_at(h);
    let (tanh_y, inv_std) = rest.split_at(h);
    let (inv_ih, inv_hh, inv_c) = (inv_std[0], inv_std[1], inv_std[2]);
    let (i, rest) = gates.split_at(h);
    let (f, rest) = rest.split_at(h);
    let (g, o) = rest.split_at(h);
    let (sum_dz, rest) = sums.split_at_mut(gw);
    let (sum_dz_ih, rest) = rest.split_at_mut(gw);
    let (sum_dz_hh, rest) = rest.split_at_mut(gw);
    let (sum_dy_c, sum_dy) = rest.split_at_mut(h);
    let (dz_ifg, dz_o) = d_p.split_at_mut(3 * h);
    // dy in d_hp's first H entries until d_hp is written; dĉ in dc_prev until dc is
    let dy = &mut d_hp[..h];
    output_gradients(dy, dz_o, dh, o, tanh_y);
    // y = α_c ⊙ ĉ + β_c
    affine_gradients(dc_prev, sum_dy_c, sum_dy, dy, c_hat, ln.w_c);
    let (d_mean, d_dot) = sum_and_dot(dc_prev, c_hat);
    let n = T::from_f64(h as f64);
    let (dz_i, rest) = dz_ifg.split_at_mut(h);
    let (dz_f, dz_g) = rest.split_at_mut(h);
    cell_gradients(
        (dz_i, dz_f, dz_g),
        dc_prev,
        dc_next,
        (i, f, g),
        c_prev,
        c_hat,
        (inv_c, d_mean / n, d_dot / n),
    );
    // z = α_ih ⊙ x̂_ih + β_ih + α_hh ⊙ x̂_hh + β_hh
    let (sums_ih, sums_hh) = ((sum_dz_ih, x_ih), (sum_dz_hh, x_hh));
    normalized_gradients(d_p, d_hp, sum_dz, sums_ih, sums_hh, ln.w_ih, ln.w_hh);
    layer_norm_backward(d_p, x_ih, inv_ih);
    layer_norm_backward(d_hp, x_hh, inv_hh);
}

/// Partial sums kept side by side in the reductions, so that they vectorise (sixteen `f32` fill
/// an AVX-512 register, two AVX2 ones) and add up in an order that does not depend on other rows.
const LANES: usize = 16;

/// `Σ term(a_j, b_j)` over equally long `a` and `b`, in [`LANES`] partial sums.
#[inline(always)]
fn lane_sum<T: Float>(a: &[T], b: &[T], term: impl Fn(T, T) -> T) -> T {
    let mut acc = [T::zero(); LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .fold(T::zero(), |s, (&x, &y)| s + term(x, y));
    for (x, y) in a_chunks.zip(b_chunks) {
        for l in 0..LANES {
            acc[l] = acc[l] + term(x[l], y[l]);
        }
    }
    acc.iter().fold(tail, |s, &v| s + v)
}

/// `(Σ a, Σ a ⊙ b)`.
#[inline(always)]
fn sum_and_dot<T: Float>(a: &[T], b: &[T]) -> (T, T) {
    (lane_sum(a, a, |x, _| x), lane_sum(a, b, |x, y| x * y))
}

/// The mean of `v` and `1 / √(var + eps)`, with the biased variance (as `torch.nn.LayerNorm`),
/// in two passes for accuracy: the mean, then the squared deviations from it.
#[inline(always)]
fn moments<T: Float>(v: &[T], eps: T) -> (T, T) {
    let n = T::from_f64(v.len() as f64);
    let mean = lane_sum(v, v, |x, _| x) / n;
    let var = lane_sum(v, v, |x, _| (x - mean) * (x - mean)) / n;
    (mean, T::one() / (var + eps).sqrt())
}

/// `x̂ = (v − mean) · inv_std`.
#[inline(always)]
fn normalize<T: Float>(x_hat: &mut [T], v: &[T], mean: T, inv_std: T) {
    for (x, &v) in x_hat.iter_mut().zip(v) {
        *x = (v - mean) * inv_std;
    }
}

/// `v ← (v − mean) · inv_std`.
#[inline(always)]
fn normalize_in_place<T: Float>(v: &mut [T], mean: T, inv_std: T) {
    for v in v {
        *v = (*v - mean) * inv_std;
    }
}

/// `ĉ ← (c − mean) · inv_std` in place, and `y = α ⊙ ĉ + β`.
#[inline(always)]
fn normalize_affine<T: Float>(c_hat: &mut [T], y: &mut [T], w: &[T], b: &[T], mean: T, inv: T) {
    let n = c_hat.len();
    let (y, w, b) = (&mut y[..n], &w[..n], &b[..n]);
    for j in 0..n {
        let c = (c_hat[j] - mean) * inv;
        c_hat[j] = c;
        y[j] = w[j] * c + b[j];
    }
}

/// The gate pre-activations `z = (α_ih ⊙ x̂_ih + β_ih) + (α_hh ⊙ x̂_hh + β_hh)`.
#[inline(always)]
fn pre_activations<T: Float>(
    z: &mut [T],
    x_ih: &[T],
    x_hh: &[T],
    w_ih: &[T],
    b_ih: &[T],
    w_hh: &[T],
    b_hh: &[T],
) {
    let n = z.len();
    let (x_ih, x_hh, w_ih, b_ih, w_hh, b_hh) = (
        &x_ih[..n],
        &x_hh[..n],
        &w_ih[..n],
        &b_ih[..n],
        &w_hh[..n],
        &b_hh[..n],
    );
    for j in 0..n {
        z[j] = (w_ih[j] * x_ih[j] + b_ih[j]) + (w_hh[j] * x_hh[j] + b_hh[j]);
    }
}

/// `c' = f ⊙ c + i ⊙ g`, into the next state and into `c_hat` (normalised there next).
#[inline(always)]
fn cell_update<T: Float>(c_next: &mut [T], c_hat: &mut [T], i: &[T], f: &[T], g: &[T], c: &[T]) {
    let n = c_next.len();
    let (c_hat, i, f, g, c) = (&mut c_hat[..n], &i[..n], &f[..n], &g[..n], &c[..n]);
    for j in 0..n {
        let v = f[j] * c[j] + i[j] * g[j];
        c_next[j] = v;
        c_hat[j] = v;
    }
}

/// From `dh'` through `h' = o ⊙ tanh(y)`: the gradient of `o`'s pre-activation `dz_o` and
/// that of `y`.
#[inline(always)]
fn output_gradients<T: Float>(dy: &mut [T], dz_o: &mut [T], dh: &[T], o: &[T], tanh_y: &[T]) {
    let n = dy.len();
    let (dz_o, dh, o, tanh_y) = (&mut dz_o[..n], &dh[..n], &o[..n], &tanh_y[..n]);
    let one = T::one();
    for j in 0..n {
        let (o, t) = (o[j], tanh_y[j]);
        // dσ/dx = σ(1 − σ), dtanh/dx = 1 − tanh²
        dz_o[j] = dh[j] * t * o * (one - o);
        dy[j] = dh[j] * o * (one - t * t);
    }
}

/// Through `y = α ⊙ ĉ + β`: `dĉ = dy ⊙ α`, and `Σ dy ⊙ ĉ`, `Σ dy` added to the sums of `α`'s
/// and `β`'s gradients.
#[inline(always)]
fn affine_gradients<T: Float>(
    d_c_hat: &mut [T],
    sum_dw: &mut [T],
    sum_db: &mut [T],
    dy: &[T],
    c_hat: &[T],
    w: &[T],
) {
    let n = d_c_hat.len();
    let (sum_dw, sum_db, dy, c_hat, w) = (
        &mut sum_dw[..n],
        &mut sum_db[..n],
        &dy[..n],
        &c_hat[..n],
        &w[..n],
    );
    for j in 0..n {
        d_c_hat[j] = dy[j] * w[j];
        sum_dw[j] = sum_dw[j] + dy[j] * c_hat[j];
        sum_db[j] = sum_db[j] + dy[j];
    }
}

/// Through `ĉ = LN(c')` (`dc' = inv·(dĉ − mean(dĉ) − ĉ·mean(dĉ ⊙ ĉ))`) plus the incoming
/// `dc'`, then `c' = f ⊙ c + i ⊙ g`: the gradients of the pre-activations of `i`, `f`, `g`,
/// and `dc = dc' ⊙ f`, written over `dĉ` (which `d_c` holds on entry).
#[inline(always)]
fn cell_gradients<T: Float>(
    (dz_i, dz_f, dz_g): (&mut [T], &mut [T], &mut [T]),
    d_c: &mut [T],
    dc_next: &[T],
    (i, f, g): (&[T], &[T], &[T]),
    c_prev: &[T],
    c_hat: &[T],
    (inv, d_mean, d_dot): (T, T, T),
) {
    let n = d_c.len();
    let (dz_i, dz_f, dz_g) = (&mut dz_i[..n], &mut dz_f[..n], &mut dz_g[..n]);
    let (dc_next, i, f, g) = (&dc_next[..n], &i[..n], &f[..n], &g[..n]);
    let (c_prev, c_hat) = (&c_prev[..n], &c_hat[..n]);
    let one = T::one();
    for j in 0..n {
        let dc = inv * (d_c[j] - d_mean - c_hat[j] * d_dot) + dc_next[j];
        let (i, f, g) = (i[j], f[j], g[j]);
        // dσ/dx = σ(1 − σ), dtanh/dx = 1 − tanh²
        dz_i[j] = dc * g * i * (one - i);
        dz_f[j] = dc * c_prev[j] * f * (one - f);
        dz_g[j] = dc * i * (one - g * g);
        d_c[j] = dc * f;
    }
}

/// Through `z = α_ih ⊙ x̂_ih + β_ih + α_hh ⊙ x̂_hh + β_hh`, with `dz` in `d_p` on entry: adds
/// `dz`, `dz ⊙ x̂_ih` and `dz ⊙ x̂_hh` to their sums and writes the gradients of the normalised
/// values, `α_ih ⊙ dz` over `d_p` and `α_hh ⊙ dz` into `d_hp`.
#[inline(always)]
fn normalized_gradients<T: Float>(
    d_p: &mut [T],
    d_hp: &mut [T],
    sum_dz: &mut [T],
    (sum_dz_ih, x_ih): (&mut [T], &[T]),
    (sum_dz_hh, x_hh): (&mut [T], &[T]),
    w_ih: &[T],
    w_hh: &[T],
) {
    let n = d_p.len();
    let (d_hp, sum_dz, sum_dz_ih, sum_dz_hh) = (
        &mut d_hp[..n],
        &mut sum_dz[..n],
        &mut sum_dz_ih[..n],
        &mut sum_dz_hh[..n],
    );
    let (x_ih, x_hh, w_ih, w_hh) = (&x_ih[..n], &x_hh[..n], &w_ih[..n], &w_hh[..n]);
    for j in 0..n {
        let dz = d_p[j];
        sum_dz[j] = sum_dz[j] + dz;
        sum_dz_ih[j] = sum_dz_ih[j] + dz * x_ih[j];
        sum_dz_hh[j] = sum_dz_hh[j] + dz * x_hh[j];
        d_p[j] = dz * w_ih[j];
        d_hp[j] = dz * w_hh[j];
    }
}

/// `d ← inv·(d − mean(d) − x̂·mean(d ⊙ x̂))`: the gradient of `v` from that of
/// `x̂ = (v − mean(v))·inv`.
#[inline(always)]
fn layer_norm_backward<T: Float>(d: &mut [T], x_hat: &[T], inv: T) {
    let n = T::from_f64(d.len() as f64);
    let (sum, dot) = sum_and_dot(d, x_hat);
    let (d_mean, d_dot) = (sum / n, dot / n);
    for (d, &x) in d.iter_mut().zip(x_hat) {
        *d = inv * (*d - d_mean - x * d_dot);
    }
}

/// `acc += v`, element by element.
fn add_to<T: Float>(acc: &mut [T], v: &[T]) {
    for (a, &v) in acc.iter_mut().zip(v) {
        *a = *a + v;
    }
}

impl<T: Float> fmt::Display for LayerNormLstmCell<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LayerNormLstmCell {{ input_size: {}, hidden_size: {}, eps: {:?}, params: {} }}",
            self.input_size,
            self.hidden_size,
            self.eps,
            self.params.count()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_close, t};
    use crate::{Parameters, Recurrent, SequenceLayer, State};
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    /// A cell whose layer-norm gains and shifts are drawn from `U(−1, 2)` and `U(−1, 1)` (the
    /// initial ones, all 1 and 0, would hide a gain or shift used in the wrong place).
    fn random_cell(i: usize, h: usize, seed: u64) -> LayerNormLstmCell<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut cell: LayerNormLstmCell<f64> =
            LayerNormLstmCellConfig::new(i, h).init(&mut rng).unwrap();
        cell.params_mut().visit_mut(|name, t| {
            let (low, high) = if name.starts_with("ln_weight") {
                (-1.0, 2.0)
            } else {
                (-1.0, 1.0)
            };
            if name.starts_with("ln_") {
                *t = Tensor::uniform(t.shape(), low, high, &mut rng);
            }
        });
        cell
    }

    /// `torch.nn.LayerNorm` of `v` with gain `w` and shift `b`, written out.
    fn layer_norm(v: &[f64], w: &[f64], b: &[f64], eps: f64) -> Vec<f64> {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let sd = (var + eps).sqrt();
        (0..v.len())
            .map(|j| w[j] * (v[j] - mean) / sd + b[j])
            .collect()
    }

    /// One step of the equations in the type's doc for one sample, in plain `f64` loops:
    /// `(h', c')`.
    fn reference_step(
        cell: &LayerNormLstmCell<f64>,
        x: &[f64],
        h: &[f64],
        c: &[f64],
    ) -> (Vec<f64>, Vec<f64>) {
        let (n_in, n) = (cell.input_size(), cell.hidden_size());
        let params = cell.params();
        let (w_ih, w_hh) = (params.weight_ih().as_slice(), params.weight_hh().as_slice());
        let ln = |name| params.extra(name).unwrap().as_slice();
        let wx: Vec<f64> = (0..4 * n)
            .map(|r| (0..n_in).map(|k| w_ih[r * n_in + k] * x[k]).sum())
            .collect();
        let wh: Vec<f64> = (0..4 * n)
            .map(|r| (0..n).map(|k| w_hh[r * n + k] * h[k]).sum())
            .collect();
        let eps = cell.eps();
        let a = layer_norm(&wx, ln(LN_WEIGHT_IH), ln(LN_BIAS_IH), eps);
        let b = layer_norm(&wh, ln(LN_WEIGHT_HH), ln(LN_BIAS_HH), eps);
        let z: Vec<f64> = a.iter().zip(&b).map(|(a, b)| a + b).collect();
        let sigmoid = |v: f64| 1.0 / (1.0 + (-v).exp());
        let c_next: Vec<f64> = (0..n)
            .map(|j| sigmoid(z[n + j]) * c[j] + sigmoid(z[j]) * z[2 * n + j].tanh())
            .collect();
        let y = layer_norm(&c_next, ln(LN_WEIGHT_C), ln(LN_BIAS_C), eps);
        let h_next = (0..n)
            .map(|j| sigmoid(z[3 * n + j]) * y[j].tanh())
            .collect();
        (h_next, c_next)
    }

    /// A step of two samples (I = 2, H = 3, random gains and shifts) equals the equations
    /// evaluated directly.
    #[test]
    fn one_step_matches_the_equations() {
        let (i, h, batch) = (2, 3, 2);
        let cell = random_cell(i, h, 1);
        let mut rng = StdRng::seed_from_u64(2);
        let x = Tensor::randn(&[batch, i], &mut rng);
        let (h0, c0) = (
            Tensor::randn(&[batch, h], &mut rng),
            Tensor::randn(&[batch, h], &mut rng),
        );
        let state = State::from_hc(h0.clone(), c0.clone());
        let (next, _) = cell.forward(&x, Some(&state)).unwrap();
        for b in 0..batch {
            let (h_ref, c_ref) = reference_step(
                &cell,
                &x.as_slice()[b * i..][..i],
                &h0.as_slice()[b * h..][..h],
                &c0.as_slice()[b * h..][..h],
            );
            assert_close(&next.h().as_slice()[b * h..][..h], &h_ref, 1e-14);
            assert_close(&next.c().unwrap().as_slice()[b * h..][..h], &c_ref, 1e-14);
        }
    }

    /// With `H = 1`, `LN(c')` has one entry, which is always its mean: `h' = o·tanh(β_c)`.
    /// One step with `I = 1`, `W_ih = [0.1, 0.2, 0.3, 0.4]`, `W_hh = 0`, every gain 1 and shift
    /// 0 except `β_c = 0.5`, x = 0.5, c = 0.3:
    ///
    /// ```text
    /// W_ih x = [0.05, 0.1, 0.15, 0.2]: mean 0.125, var 0.003125
    /// x̂ = [−0.075, −0.025, 0.025, 0.075] / √(0.003125 + 1e-5) = [−1.339499, −0.446500, 0.446500, 1.339499]
    /// (W_hh h = 0 normalises to 0)
    /// i = σ(−1.339499) = 0.207592, f = σ(−0.446500) = 0.390193
    /// g = tanh(0.446500) = 0.419018, o = σ(1.339499) = 0.792408
    /// c' = f·c + i·g = 0.117058 + 0.086985 = 0.204043
    /// h' = o·tanh(0.5) = 0.792408 · 0.462117 = 0.366185
    /// ```
    #[test]
    fn one_step_by_hand() {
        let params = CellParams::new(
            t(&[0.1, 0.2, 0.3, 0.4], &[4, 1]),
            t(&[0.0; 4], &[4, 1]),
            None,
            None,
        )
        .with_extra(LN_WEIGHT_IH, t(&[1.0; 4], &[4]))
        .with_extra(LN_BIAS_IH, t(&[0.0; 4], &[4]))
        .with_extra(LN_WEIGHT_HH, t(&[1.0; 4], &[4]))
        .with_extra(LN_BIAS_HH, t(&[0.0; 4], &[4]))
        .with_extra(LN_WEIGHT_C, t(&[1.0], &[1]))
        .with_extra(LN_BIAS_C, t(&[0.5], &[1]));
        let cell = LayerNormLstmCell::from_params(1, 1, params).unwrap();
        let state = State::from_hc(t(&[0.2], &[1, 1]), t(&[0.3], &[1, 1]));
        let (next, _) = cell.forward(&t(&[0.5], &[1, 1]), Some(&state)).unwrap();
        approx::assert_relative_eq!(
            next.c().unwrap().as_slice()[0],
            0.2040428563936498,
            max_relative = 1e-14
        );
        approx::assert_relative_eq!(
            next.h().as_slice()[0],
            0.36618514258540186,
            max_relative = 1e-14
        );
    }

    /// `logit(s)` or `atanh(s)`: the pre-activation behind a saved gate.
    fn pre_activation(s: f64, tanh: bool) -> f64 {
        if tanh {
            s.atanh()
        } else {
            (s / (1.0 - s)).ln()
        }
    }

    /// Mean and biased standard deviation.
    fn mean_sd(v: &[f64]) -> (f64, f64) {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        (mean, var.sqrt())
    }

    /// Each layer norm's output has mean `β` and standard deviation `α·√(var / (var + eps))`
    /// (for constant `α`, `β`): read back from the saved gates with `W_hh h`'s norm switched
    /// off (`α_hh = β_hh = 0`), and from `tanh(LN(c'))`.
    #[test]
    fn layer_norm_outputs_have_mean_beta_and_scale_alpha() {
        let (i, h, eps) = (5, 6, 1e-2);
        let mut cell = random_cell(i, h, 3).with_eps(eps).unwrap();
        let set = |cell: &mut LayerNormLstmCell<f64>, name, value| {
            cell.params_mut()
                .extra_mut(name)
                .unwrap()
                .as_mut_slice()
                .fill(value);
        };
        let (alpha, beta, alpha_c, beta_c) = (0.7, 0.3, 0.4, -0.2);
        set(&mut cell, LN_WEIGHT_IH, alpha);
        set(&mut cell, LN_BIAS_IH, beta);
        set(&mut cell, LN_WEIGHT_HH, 0.0);
        set(&mut cell, LN_BIAS_HH, 0.0);
        set(&mut cell, LN_WEIGHT_C, alpha_c);
        set(&mut cell, LN_BIAS_C, beta_c);
        let mut rng = StdRng::seed_from_u64(4);
        // p scaled small, so that eps matters in the scale
        let p = Tensor::randn(&[1, 4 * h], &mut rng).map(|v| 0.1 * v + 0.05);
        let prev = Tensor::randn(&[1, 2 * h], &mut rng);
        let (mut next, mut saved) = (vec![0.0; 2 * h], vec![0.0; cell.saved_width()]);
        cell.step(1, p.as_slice(), prev.as_slice(), &mut next, &mut saved);
        let scale = |v: &[f64]| {
            let (_, sd) = mean_sd(v);
            (sd * sd / (sd * sd + eps)).sqrt()
        };
        // the gates: z = α·x̂_ih + β
        let z: Vec<f64> = (0..4 * h)
            .map(|j| pre_activation(saved[j], (2 * h..3 * h).contains(&j)))
            .collect();
        let (mean, sd) = mean_sd(&z);
        approx::assert_relative_eq!(mean, beta, max_relative = 1e-10);
        approx::assert_relative_eq!(sd, alpha * scale(p.as_slice()), max_relative = 1e-10);
        // the normalised W_ih x itself: mean 0
        let (mean, _) = mean_sd(&saved[4 * h..8 * h]);
        assert!(mean.abs() < 1e-14, "{mean}");
        // y = LN(c'), c' in the next state
        let y: Vec<f64> = saved[13 * h..14 * h].iter().map(|s| s.atanh()).collect();
        let (mean, sd) = mean_sd(&y);
        approx::assert_relative_eq!(mean, beta_c, max_relative = 1e-10);
        let c_next = &next[h..];
        approx::assert_relative_eq!(sd, alpha_c * scale(c_next), max_relative = 1e-10);
    }

    /// A complete set of parameters for `I = 2`, `H = 3`, with `skip` left out and `resize`
    /// one entry longer.
    fn params_without(skip: &str, resize: &str) -> CellParams<f64> {
        let (i, h) = (2, 3);
        let mut params = CellParams::new(
            Tensor::zeros(&[4 * h, i]),
            Tensor::zeros(&[4 * h, h]),
            None,
            None,
        );
        for (name, units, _) in LN_PARAMS {
            let len = units * h + usize::from(name == resize);
            if name != skip {
                params = params.with_extra(name, Tensor::zeros(&[len]));
            }
        }
        params
    }

    #[test]
    fn from_params_names_a_missing_or_misshaped_tensor() {
        let make = |params| LayerNormLstmCell::from_params(2, 3, params).unwrap_err();
        assert!(LayerNormLstmCell::from_params(2, 3, params_without("", "")).is_ok());
        assert_eq!(
            make(params_without(LN_BIAS_HH, "")).to_string(),
            "missing parameter `ln_bias_hh`: a layer-normalised LSTM normalises its gate \
             pre-activations with it"
        );
        assert_eq!(
            make(params_without(LN_WEIGHT_C, "")).to_string(),
            "missing parameter `ln_weight_c`: a layer-normalised LSTM normalises c' with it"
        );
        assert_eq!(
            make(params_without("", LN_BIAS_C)).to_string(),
            "shape mismatch in ln_bias_c: expected [3], got [4]"
        );
        assert_eq!(
            make(params_without("", LN_WEIGHT_IH)).to_string(),
            "shape mismatch in ln_weight_ih: expected [12], got [13]"
        );
        let mut wrong_hh = params_without("", "");
        *wrong_hh.weight_hh_mut() = Tensor::zeros(&[12, 2]);
        assert_eq!(
            make(wrong_hh).to_string(),
            "shape mismatch in weight_hh: expected [12, 3], got [12, 2]"
        );
        let mut biased = params_without("", "");
        biased.set_biases(Some(Tensor::zeros(&[12])), Some(Tensor::zeros(&[12])));
        assert_eq!(
            make(biased).to_string(),
            "unexpected parameter `bias_ih`: the model has no tensor of that name"
        );
        let other = params_without("", "").with_extra("weight_hr", Tensor::zeros(&[2, 3]));
        assert_eq!(
            make(other).to_string(),
            "unexpected parameter `weight_hr`: the model has no tensor of that name"
        );
        assert!(matches!(
            LayerNormLstmCell::from_params(2, 0, params_without("", "")),
            Err(Error::InvalidArgument {
                name: "hidden_size",
                ..
            })
        ));
    }

    /// The shapes are checked on every pass, so a tensor changed through `params_mut` is
    /// reported by the next forward, not read out of bounds.
    #[test]
    fn a_misshaped_tensor_set_later_is_reported_by_forward() {
        let mut cell = random_cell(2, 3, 5);
        *cell.params_mut().extra_mut(LN_WEIGHT_HH).unwrap() = Tensor::zeros(&[3]);
        let e = cell.forward(&Tensor::zeros(&[1, 2]), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "shape mismatch in ln_weight_hh: expected [12], got [3]"
        );
    }

    #[test]
    fn init_draws_the_weights_of_an_lstm_without_bias() {
        let (i, h) = (3, 4);
        let cell: LayerNormLstmCell<f64> = LayerNormLstmCellConfig::new(i, h)
            .with_forget_bias(1.0)
            .init_seeded(6)
            .unwrap();
        let plain =
            CellParams::<f64>::init(4 * h, i, h, false, &mut StdRng::seed_from_u64(6)).unwrap();
        assert_eq!(cell.params().weight_ih(), plain.weight_ih());
        assert_eq!(cell.params().weight_hh(), plain.weight_hh());
        assert!(cell.params().bias_ih().is_none() && cell.params().bias_hh().is_none());
        let mut names = Vec::new();
        cell.params().visit(|name, t| {
            names.push(name);
            let v = t.as_slice();
            match name {
                LN_BIAS_IH => {
                    assert!(v[..h].iter().chain(&v[2 * h..]).all(|&v| v == 0.0));
                    assert!(v[h..2 * h].iter().all(|&v| v == 1.0));
                }
                LN_WEIGHT_IH | LN_WEIGHT_HH | LN_WEIGHT_C => assert!(v.iter().all(|&v| v == 1.0)),
                LN_BIAS_HH | LN_BIAS_C => assert!(v.iter().all(|&v| v == 0.0)),
                _ => {}
            }
        });
        let mut expected = vec!["weight_ih", "weight_hh"];
        expected.extend(LN_PARAMS.map(|(name, ..)| name));
        assert_eq!(names, expected);
        // another init draws what the LSTM's does
        let orthogonal: LayerNormLstmCell<f64> = LayerNormLstmCellConfig::new(i, h)
            .with_weight_hh_init(Init::Orthogonal)
            .init_seeded(6)
            .unwrap();
        let lstm = LstmCellConfig::new(i, h)
            .with_bias(false)
            .with_weight_hh_init(Init::Orthogonal)
            .init_seeded::<f64>(6)
            .unwrap();
        assert_eq!(orthogonal.params().weight_hh(), lstm.params().weight_hh());
    }

    #[test]
    fn bad_configurations_are_rejected_with_their_reason() {
        let fail = |config: LayerNormLstmCellConfig| config.init_seeded::<f32>(0).unwrap_err();
        let config = LayerNormLstmCellConfig::new(2, 3);
        assert_eq!(
            fail(config.with_eps(-1e-5)).to_string(),
            "invalid eps: -0.00001 must be positive and finite"
        );
        assert_eq!(
            fail(config.with_eps(f64::INFINITY)).to_string(),
            "invalid eps: inf must be positive and finite"
        );
        assert_eq!(
            fail(config.with_forget_bias(f64::NAN)).to_string(),
            "invalid forget_bias: NaN is not finite"
        );
        assert_eq!(
            fail(LayerNormLstmCellConfig::new(2, 0)).to_string(),
            "invalid hidden_size: 0: a layer needs at least one unit"
        );
        let cell = config.init_seeded::<f32>(0).unwrap();
        assert!(cell.clone().with_eps(0.0).is_err());
        assert_eq!(cell.with_eps(0.5).unwrap().eps(), 0.5);
    }

    #[test]
    fn display_is_one_line() {
        let cell: LayerNormLstmCell<f32> =
            LayerNormLstmCellConfig::new(2, 3).init_seeded(1).unwrap();
        assert_eq!(
            cell.to_string(),
            "LayerNormLstmCell { input_size: 2, hidden_size: 3, eps: 1e-5, params: 114 }"
        );
    }

    /// In a layer, the layer-norm parameters and their gradients take the layer's suffix.
    #[test]
    fn a_layer_names_the_layer_norm_parameters() {
        let layer = Recurrent::new(random_cell(2, 3, 7));
        let mut names = Vec::new();
        layer.visit_params(&mut |name, _| names.push(name.to_string()));
        let mut expected = vec!["weight_ih_l0".to_string(), "weight_hh_l0".to_string()];
        expected.extend(LN_PARAMS.map(|(name, ..)| format!("{name}_l0")));
        assert_eq!(names, expected);
        let x = Tensor::randn(&[3, 2, 2], &mut StdRng::seed_from_u64(8));
        let out = layer
            .forward_with_state(&x, None, None, crate::Mode::Eval)
            .unwrap();
        let grads = layer
            .backward_with_state(&out.trace, Some(&out.output), None)
            .unwrap();
        let grad_names: Vec<&str> = grads.params.iter().map(|(n, _)| n).collect();
        assert_eq!(grad_names, expected);
        assert!(grads.params.get("ln_bias_c_l0").unwrap().as_slice()[0] != 0.0);
    }

    /// A step large enough to be split over two threads gives each sample what it gets alone,
    /// and parameter gradients that are the samples' sum.
    #[test]
    fn a_split_step_equals_its_samples_one_by_one() {
        let _setting = crate::test_util::THREAD_SETTING.lock();
        let before = crate::num_threads();
        crate::set_num_threads(2);
        let (i, h, batch) = (5, 64, 64);
        assert!(kernels::split_rows(batch, 4 * h).is_some());
        let cell = random_cell(i, h, 9);
        let mut rng = StdRng::seed_from_u64(10);
        let x = Tensor::randn(&[batch, i], &mut rng);
        let state = State::from_hc(
            Tensor::randn(&[batch, h], &mut rng),
            Tensor::randn(&[batch, h], &mut rng),
        );
        let d_state = State::from_hc(
            Tensor::randn(&[batch, h], &mut rng),
            Tensor::randn(&[batch, h], &mut rng),
        );
        let (next, trace) = cell.forward(&x, Some(&state)).unwrap();
        let grads = cell.backward(&trace, &d_state).unwrap();
        crate::set_num_threads(before);
        let row = |t: &Tensor<f64>, b: usize| {
            let w = t.shape()[1];
            Tensor::from_vec(t.as_slice()[b * w..][..w].to_vec(), &[1, w]).unwrap()
        };
        let pick = |s: &State<f64>, b| State::from_hc(row(s.h(), b), row(s.c().unwrap(), b));
        let mut summed = cell.params().zeros_like();
        for b in 0..batch {
            let (one, one_trace) = cell.forward(&row(&x, b), Some(&pick(&state, b))).unwrap();
            // to 1e-13: the batch's input projection is a GEMM, a sample's a matrix-vector
            // product, rounded differently in the last bit
            let expected = pick(&next, b);
            assert_close(one.h().as_slice(), expected.h().as_slice(), 1e-13);
            assert_close(
                one.c().unwrap().as_slice(),
                expected.c().unwrap().as_slice(),
                1e-13,
            );
            let g = cell.backward(&one_trace, &pick(&d_state, b)).unwrap();
            assert_close(g.input.as_slice(), row(&grads.input, b).as_slice(), 1e-13);
            assert_close(
                g.state.c().unwrap().as_slice(),
                row(grads.state.c().unwrap(), b).as_slice(),
                1e-13,
            );
            let mut sums = g.params.clone();
            summed.visit_mut(|name, t| {
                let add = match name {
                    "weight_ih" => sums.weight_ih_mut(),
                    "weight_hh" => sums.weight_hh_mut(),
                    other => sums.extra_mut(other).unwrap(),
                };
                t.as_mut_slice()
                    .iter_mut()
                    .zip(add.as_slice())
                    .for_each(|(t, &a)| *t += a);
            });
        }
        summed.visit(|name, t| {
            let mut all = None;
            grads.params.visit(|n, g| {
                if n == name {
                    all = Some(g.clone());
                }
            });
            assert_close(t.as_slice(), all.unwrap().as_slice(), 1e-10);
        });
    }

    /// `f32` (vectorised non-linearities and reductions) agrees with `f64` to `f32` precision,
    /// forward and backward.
    #[test]
    fn f32_agrees_with_f64() {
        let (i, h, batch) = (4, 20, 3);
        let cell = random_cell(i, h, 11);
        let to_f32 = |t: &Tensor<f64>| {
            Tensor::from_vec(t.as_slice().iter().map(|&v| v as f32).collect(), t.shape()).unwrap()
        };
        let p = cell.params();
        let mut params32 =
            CellParams::new(to_f32(p.weight_ih()), to_f32(p.weight_hh()), None, None);
        for (name, ..) in LN_PARAMS {
            params32 = params32.with_extra(name, to_f32(p.extra(name).unwrap()));
        }
        let cell32 = LayerNormLstmCell::from_params(i, h, params32).unwrap();
        let mut rng = StdRng::seed_from_u64(12);
        let x = Tensor::randn(&[batch, i], &mut rng);
        let state = State::from_hc(
            Tensor::randn(&[batch, h], &mut rng),
            Tensor::randn(&[batch, h], &mut rng),
        );
        let d = State::from_hc(
            Tensor::randn(&[batch, h], &mut rng),
            Tensor::randn(&[batch, h], &mut rng),
        );
        let state32 = State::from_hc(to_f32(state.h()), to_f32(state.c().unwrap()));
        let d32 = State::from_hc(to_f32(d.h()), to_f32(d.c().unwrap()));
        let (next, trace) = cell.forward(&x, Some(&state)).unwrap();
        let (next32, trace32) = cell32.forward(&to_f32(&x), Some(&state32)).unwrap();
        let widen = |t: &Tensor<f32>| {
            t.as_slice()
                .iter()
                .map(|&v| f64::from(v))
                .collect::<Vec<_>>()
        };
        assert_close(&widen(next32.h()), next.h().as_slice(), 1e-5);
        assert_close(
            &widen(next32.c().unwrap()),
            next.c().unwrap().as_slice(),
            1e-5,
        );
        let (g, g32) = (
            cell.backward(&trace, &d).unwrap(),
            cell32.backward(&trace32, &d32).unwrap(),
        );
        assert_close(&widen(&g32.input), g.input.as_slice(), 1e-4);
        for (name, ..) in LN_PARAMS {
            let (a, b) = (
                g32.params.extra(name).unwrap(),
                g.params.extra(name).unwrap(),
            );
            assert_close(&widen(a), b.as_slice(), 1e-4);
        }
    }
}
