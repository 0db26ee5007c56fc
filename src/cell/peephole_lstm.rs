//! The LSTM cell with diagonal peephole connections (Gers & Schmidhuber, 2000): the gates also
//! look at the cell state.
//!
//! Written as a cell of your own would be, with the crate's public API only: the [`Cell`] trait,
//! [`CellParams`] (the peephole weights are its [`extra`](CellParams::extra) parameters) and
//! [`kernels`]. [`LstmCellConfig`] draws the four standard parameters, so a peephole cell
//! starts from the LSTM that the same seed gives.

use core::fmt;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::kernels::{
    broadcast_bias, join, recurrent_product, recurrent_product_backward, split_rows,
};
use crate::{
    kernels, BackwardStep, Cell, CellParams, Error, Float, Init, LstmCellConfig, MatMut, MatRef,
    Result, Shape, StatePart, Tensor,
};

/// Gates of an LSTM, in PyTorch's packed order `i, f, g, o`.
const GATES: usize = 4;

/// The peephole weight of the input gate, `(H)`.
const WEIGHT_CI: &str = "weight_ci";

/// The peephole weight of the forget gate, `(H)`.
const WEIGHT_CF: &str = "weight_cf";

/// The peephole weight of the output gate, `(H)`.
const WEIGHT_CO: &str = "weight_co";

/// The peephole weights, in the order they are drawn and stored.
const PEEPHOLES: [&str; 3] = [WEIGHT_CI, WEIGHT_CF, WEIGHT_CO];

/// Configuration of a [`PeepholeLstmCell`]: `PeepholeLstmCellConfig::new(input_size,
/// hidden_size)`, then `with_*` options, then [`init`](PeepholeLstmCellConfig::init).
///
/// # Examples
///
/// ```
/// use recurrent::{Cell, PeepholeLstmCell, PeepholeLstmCellConfig};
///
/// let cell: PeepholeLstmCell<f32> = PeepholeLstmCellConfig::new(3, 5)
///     .with_forget_bias(1.0)
///     .init_seeded(0)?;
/// assert_eq!(cell.params().extra("weight_cf").unwrap().shape(), &[5]);
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeepholeLstmCellConfig {
    input_size: usize,
    hidden_size: usize,
    bias: bool,
    weight_ih_init: Init,
    weight_hh_init: Init,
    forget_bias: Option<f64>,
}

impl PeepholeLstmCellConfig {
    /// A peephole LSTM cell reading `input_size` features into `hidden_size` units.
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        PeepholeLstmCellConfig {
            input_size,
            hidden_size,
            bias: true,
            weight_ih_init: Init::Default,
            weight_hh_init: Init::Default,
            forget_bias: None,
        }
    }

    /// Whether the cell has the biases `bias_ih` and `bias_hh`. Defaults to `true`.
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_bias(self, bias: bool) -> Self {
        PeepholeLstmCellConfig { bias, ..self }
    }

    /// How `weight_ih (4H, I)` is initialised; see [`Init`]. Defaults to [`Init::Default`].
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_weight_ih_init(self, weight_ih_init: Init) -> Self {
        PeepholeLstmCellConfig {
            weight_ih_init,
            ..self
        }
    }

    /// How `weight_hh (4H, H)` is initialised; see [`Init`]. The peephole weights always take
    /// `U(−1/√H, 1/√H)`. Defaults to [`Init::Default`].
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_weight_hh_init(self, weight_hh_init: Init) -> Self {
        PeepholeLstmCellConfig {
            weight_hh_init,
            ..self
        }
    }

    /// Sets the forget-gate bias to `forget_bias` (1 is the common choice), so that the cell
    /// starts by keeping its memory, as [`LstmCellConfig::with_forget_bias`] does: the forget
    /// block (entries `H..2H`) of `bias_ih` becomes `forget_bias` and that of `bias_hh` 0, so
    /// the gate sees their sum `forget_bias` (plus `w_cf ⊙ c`, 0 for a zero state). Defaults to
    /// no change: the forget biases are drawn like the others.
    ///
    /// [`init`](PeepholeLstmCellConfig::init) fails with [`Error::InvalidArgument`] if the cell
    /// has no bias ([`with_bias(false)`](PeepholeLstmCellConfig::with_bias)) or `forget_bias`
    /// is not finite.
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_forget_bias(self, forget_bias: f64) -> Self {
        PeepholeLstmCellConfig {
            forget_bias: Some(forget_bias),
            ..self
        }
    }

    /// A cell whose four standard parameters are those [`LstmCellConfig`] draws from `rng` with
    /// the same options (so with the default inits they equal
    /// `LstmCellConfig::new(input_size, hidden_size).init(rng)` from the same seed), followed
    /// by the peephole weights `weight_ci`, `weight_cf`, `weight_co`, in that order, from
    /// PyTorch's default `U(−1/√H, 1/√H)`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if `hidden_size` is 0, or for a
    /// [`forget_bias`](PeepholeLstmCellConfig::with_forget_bias) without biases or not finite;
    /// [`Error::SizeOverflow`] or [`Error::Allocation`] for sizes beyond the machine.
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::rand::{rngs::StdRng, SeedableRng};
    /// use recurrent::{Cell, LstmCellConfig, PeepholeLstmCellConfig};
    ///
    /// let cell = PeepholeLstmCellConfig::new(3, 5).init::<f64>(&mut StdRng::seed_from_u64(0))?;
    /// let lstm = LstmCellConfig::new(3, 5).init::<f64>(&mut StdRng::seed_from_u64(0))?;
    /// assert_eq!(cell.params().weight_hh(), lstm.params().weight_hh());
    ///
    /// let e = PeepholeLstmCellConfig::new(3, 0).init::<f64>(&mut StdRng::seed_from_u64(0));
    /// assert!(e.is_err());
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn init<T: Float>(&self, rng: &mut (impl Rng + ?Sized)) -> Result<PeepholeLstmCell<T>> {
        let mut lstm = LstmCellConfig::new(self.input_size, self.hidden_size)
            .with_bias(self.bias)
            .with_weight_ih_init(self.weight_ih_init)
            .with_weight_hh_init(self.weight_hh_init);
        if let Some(forget_bias) = self.forget_bias {
            lstm = lstm.with_forget_bias(forget_bias);
        }
        let lstm = lstm.init::<T>(rng)?;
        let h = self.hidden_size;
        // the bound as the LSTM computes it; (H) values cannot fail where (4H, H) did not
        let k = T::one() / T::from_f64(h as f64).sqrt();
        let mut params = lstm.params().clone();
        for name in PEEPHOLES {
            params = params.with_extra(name, Tensor::uniform(&[h], -k, k, rng));
        }
        Ok(PeepholeLstmCell::new_unchecked(self.input_size, h, params))
    }

    /// [`init`](PeepholeLstmCellConfig::init) from `StdRng::seed_from_u64(seed)`.
    ///
    /// # Errors
    ///
    /// As [`init`](PeepholeLstmCellConfig::init).
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::rand::{rngs::StdRng, SeedableRng};
    /// use recurrent::{PeepholeLstmCell, PeepholeLstmCellConfig};
    ///
    /// let config = PeepholeLstmCellConfig::new(3, 5);
    /// let a: PeepholeLstmCell<f64> = config.init_seeded(7)?;
    /// assert_eq!(a, config.init(&mut StdRng::seed_from_u64(7))?);
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn init_seeded<T: Float>(&self, seed: u64) -> Result<PeepholeLstmCell<T>> {
        self.init(&mut StdRng::seed_from_u64(seed))
    }
}

/// An LSTM cell with diagonal peephole connections from the cell state to the gates, after
/// Gers & Schmidhuber, "Recurrent nets that time and count" (IJCNN 2000), in PyTorch's
/// parameterisation of the rest:
///
/// ```text
/// i  = σ(W_ii x + b_ii + W_hi h + b_hi + w_ci ⊙ c)
/// f  = σ(W_if x + b_if + W_hf h + b_hf + w_cf ⊙ c)
/// g  = tanh(W_ig x + b_ig + W_hg h + b_hg)
/// c' = f ⊙ c + i ⊙ g
/// o  = σ(W_io x + b_io + W_ho h + b_ho + w_co ⊙ c')
/// h' = o ⊙ tanh(c')
/// ```
///
/// The input and forget gates look at the previous cell state `c`, the output gate at the new
/// one `c'`. The gates are packed in the order `i, f, g, o` into `weight_ih (4H, I)`,
/// `weight_hh (4H, H)`, `bias_ih (4H)` and `bias_hh (4H)`, as in
/// [`torch.nn.LSTM`](https://pytorch.org/docs/stable/generated/torch.nn.LSTM.html); the
/// peephole weights are the [`extra`](CellParams::extra) parameters `weight_ci`, `weight_cf`
/// and `weight_co`, each `(H)` (in a [`Recurrent`](crate::Recurrent) layer `weight_ci_l0` and
/// so on). The state is `(h, c)`. With zero peephole weights the cell computes exactly what
/// [`LstmCell`](crate::LstmCell) does.
///
/// # Examples
///
/// ```
/// use recurrent::{Mode, Parameters, PeepholeLstmCellConfig, Recurrent, SequenceLayer, Tensor};
///
/// let layer = Recurrent::new(PeepholeLstmCellConfig::new(3, 5).init_seeded::<f64>(0)?);
/// assert_eq!(&layer.param_names()[4..], ["weight_ci_l0", "weight_cf_l0", "weight_co_l0"]);
/// let x = Tensor::zeros(&[4, 2, 3]); // (T, B, I)
/// let out = layer.forward_with_state(&x, None, None, Mode::Eval)?;
/// assert_eq!(out.output.shape(), &[4, 2, 5]);
/// let grads = layer.backward_with_state(&out.trace, Some(&out.output), None)?;
/// assert_eq!(grads.params.get("weight_co_l0").unwrap().shape(), &[5]);
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct PeepholeLstmCell<T> {
    input_size: usize,
    hidden_size: usize,
    params: CellParams<T>,
    /// `h` and `c`, `H` units each.
    layout: [StatePart; 2],
}

impl<T: Float> PeepholeLstmCell<T> {
    /// A cell with the given parameters: the four of an LSTM (`weight_ih (4H, I)`,
    /// `weight_hh (4H, H)`, optionally `bias_ih (4H)` and `bias_hh (4H)`) and the extra
    /// parameters `weight_ci`, `weight_cf`, `weight_co`, each `(H)`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if `hidden_size` is 0; [`Error::SizeOverflow`] if `4H` does
    /// not fit in `usize`; and those of [`Cell::validate_params`]: [`Error::ShapeMismatch`]
    /// naming the first parameter whose shape is wrong, [`Error::MissingParameter`] naming a
    /// missing peephole weight (or the missing one of the two biases),
    /// [`Error::UnexpectedParameter`] for any other extra parameter.
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::{Cell, LstmCellConfig, PeepholeLstmCell, Tensor};
    ///
    /// let lstm = LstmCellConfig::new(2, 3).init_seeded::<f64>(0)?;
    /// let params = lstm.params().clone().with_extra("weight_ci", Tensor::zeros(&[3]));
    /// let e = PeepholeLstmCell::from_params(2, 3, params.clone()).unwrap_err();
    /// assert_eq!(
    ///     e.to_string(),
    ///     "missing parameter `weight_cf`: a peephole LSTM has weight_ci, weight_cf and weight_co"
    /// );
    /// let params = params
    ///     .with_extra("weight_cf", Tensor::zeros(&[3]))
    ///     .with_extra("weight_co", Tensor::zeros(&[3]));
    /// let cell = PeepholeLstmCell::from_params(2, 3, params)?;
    /// assert_eq!(cell.hidden_size(), 3);
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn from_params(
        input_size: usize,
        hidden_size: usize,
        params: CellParams<T>,
    ) -> Result<Self> {
        if hidden_size == 0 {
            return Err(Error::InvalidArgument {
                name: "hidden_size",
                reason: "0: a layer needs at least one unit".into(),
            });
        }
        if hidden_size.checked_mul(GATES).is_none() {
            return Err(Error::SizeOverflow {
                what: "peephole lstm gates",
                sizes: vec![GATES, hidden_size],
            });
        }
        let cell = PeepholeLstmCell::new_unchecked(input_size, hidden_size, params);
        cell.validate_params()?;
        Ok(cell)
    }

    fn new_unchecked(input_size: usize, hidden_size: usize, params: CellParams<T>) -> Self {
        PeepholeLstmCell {
            input_size,
            hidden_size,
            params,
            layout: [
                StatePart::new("h", hidden_size),
                StatePart::new("c", hidden_size),
            ],
        }
    }

    /// The peephole weights (checked by [`Cell::validate_params`] before every pass).
    fn peepholes(&self) -> Peepholes<'_, T> {
        let weight = |name| {
            self.params
                .extra(name)
                .expect("validated: a peephole cell has its peephole weights")
                .as_slice()
        };
        Peepholes {
            ci: weight(WEIGHT_CI),
            cf: weight(WEIGHT_CF),
            co: weight(WEIGHT_CO),
        }
    }
}

/// The three peephole weights of a step, each `H` values.
#[derive(Clone, Copy)]
struct Peepholes<'a, T> {
    ci: &'a [T],
    cf: &'a [T],
    co: &'a [T],
}

// The row loops below take each buffer as a separate argument: the compiler then knows that
// they do not overlap and vectorises the loops (see `BackwardStep`).

/// The part of [`Cell::step`] after the recurrent product, for `batch` rows of `H = w.ci.len()`
/// units: `saved` holds `b_hh + h·W_hhᵀ` in its gate columns; adds `p` and the peepholes,
/// applies the gate non-linearities and writes `c'`, `tanh(c')` (to `saved`) and `h'`.
fn activate<T: Float>(
    batch: usize,
    p: &[T],
    prev: &[T],
    next: &mut [T],
    saved: &mut [T],
    w: Peepholes<'_, T>,
) {
    let h = w.ci.len();
    let (gw, sw, width) = (GATES * h, (GATES + 1) * h, 2 * h);
    for b in 0..batch {
        let (gates, tc) = saved[b * sw..][..sw].split_at_mut(gw);
        let p = &p[b * gw..][..gw];
        let c = &prev[b * width + h..][..h];
        let (h_next, c_next) = next[b * width..][..width].split_at_mut(h);
        {
            // i and f: + p, and the peepholes on c; g: + p
            let (pre_i, rest) = gates.split_at_mut(h);
            let (pre_f, pre_g) = rest.split_at_mut(h);
            add_peephole(pre_i, &p[..h], w.ci, c);
            add_peephole(pre_f, &p[h..2 * h], w.cf, c);
            add_input(&mut pre_g[..h], &p[2 * h..3 * h]);
        }
        // i, f = σ(·); g = tanh(·)
        kernels::sigmoid(&mut gates[..2 * h]);
        kernels::tanh(&mut gates[2 * h..3 * h]);
        let (ifg, o) = gates.split_at_mut(3 * h);
        let (i, f, g) = (&ifg[..h], &ifg[h..2 * h], &ifg[2 * h..]);
        // c' = f ⊙ c + i ⊙ g, kept in saved for tanh(c')
        cell_update(c_next, tc, i, f, g, c);
        // the output gate looks at the new cell state
        add_peephole(o, &p[3 * h..], w.co, c_next);
        kernels::sigmoid(o);
        kernels::tanh(tc);
        // h' = o ⊙ tanh(c')
        h_next
            .iter_mut()
            .zip(o.iter().zip(tc.iter()))
            .for_each(|(h, (&o, &tc))| *h = o * tc);
    }
}

/// `pre ← pre + p + w ⊙ c`: a gate's input projection and its peephole, the peephole added
/// last, so that a zero peephole changes nothing.
fn add_peephole<T: Float>(pre: &mut [T], p: &[T], w: &[T], c: &[T]) {
    pre.iter_mut()
        .zip(p.iter().zip(w.iter().zip(c)))
        .for_each(|(x, (&p, (&w, &c)))| *x = *x + p + w * c);
}

/// `pre ← pre + p`: a gate's input projection.
fn add_input<T: Float>(pre: &mut [T], p: &[T]) {
    pre.iter_mut().zip(p).for_each(|(x, &p)| *x = *x + p);
}

/// `c' = f ⊙ c + i ⊙ g`, written to `c_next` and `tc`.
fn cell_update<T: Float>(c_next: &mut [T], tc: &mut [T], i: &[T], f: &[T], g: &[T], c: &[T]) {
    let h = c_next.len();
    let (tc, i, f, g, c) = (&mut tc[..h], &i[..h], &f[..h], &g[..h], &c[..h]);
    for j in 0..h {
        let c_new = f[j] * c[j] + i[j] * g[j];
        c_next[j] = c_new;
        tc[j] = c_new;
    }
}

/// The gates' part of [`Cell::step_backward`] for `batch` rows: writes `d_p` (the gradient of
/// the gate pre-activations) and the `c` part of `d_prev`.
fn gate_gradients<T: Float>(
    batch: usize,
    saved: &[T],
    prev: &[T],
    d_next: &[T],
    d_p: &mut [T],
    d_prev: &mut [T],
    w: Peepholes<'_, T>,
) {
    let h = w.ci.len();
    let (gw, sw, width) = (GATES * h, (GATES + 1) * h, 2 * h);
    let (w_ci, w_cf, w_co) = (&w.ci[..h], &w.cf[..h], &w.co[..h]);
    let one = T::one();
    for b in 0..batch {
        let s = &saved[b * sw..][..sw];
        let c_prev = &prev[b * width + h..][..h];
        let (dh, dc_next) = d_next[b * width..][..width].split_at(h);
        let dg = &mut d_p[b * gw..][..gw];
        let dc_prev = &mut d_prev[b * width + h..][..h];
        for j in 0..h {
            let (i, f, g, o, tc) = (s[j], s[h + j], s[2 * h + j], s[3 * h + j], s[4 * h + j]);
            // h' = o·tanh(c'), dσ/dx = σ(1 − σ)
            let d_o = dh[j] * tc * o * (one - o);
            // dc' = incoming + dh·o·(1 − tanh²c') + (through o's peephole) d_o·w_co
            let dc = dc_next[j] + dh[j] * o * (one - tc * tc) + d_o * w_co[j];
            // c' = f·c + i·g
            let d_i = dc * g * i * (one - i);
            let d_f = dc * c_prev[j] * f * (one - f);
            dg[j] = d_i;
            dg[h + j] = d_f;
            // dtanh/dx = 1 − tanh²
            dg[2 * h + j] = dc * i * (one - g * g);
            dg[3 * h + j] = d_o;
            // c reaches c' through f and the gates i, f through their peepholes
            dc_prev[j] = dc * f + d_i * w_ci[j] + d_f * w_cf[j];
        }
    }
}

/// `grad += Σ_b d_gate_b ⊙ c_b` over `batch` rows: `d_gate` rows are `d_stride` apart and `c`
/// rows `c_stride` apart, `grad.len()` values each (a peephole weight's gradient).
fn accumulate_peephole_grad<T: Float>(
    grad: &mut [T],
    batch: usize,
    d_gate: &[T],
    d_stride: usize,
    c: &[T],
    c_stride: usize,
) {
    let h = grad.len();
    for b in 0..batch {
        let (d, c) = (&d_gate[b * d_stride..][..h], &c[b * c_stride..][..h]);
        grad.iter_mut()
            .zip(d.iter().zip(c))
            .for_each(|(g, (&d, &c))| *g = *g + d * c);
    }
}

impl<T: Float> Cell<T> for PeepholeLstmCell<T> {
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

    /// Saved per sample: the activated gates `i, f, g, o` and `tanh(c')`.
    fn saved_width(&self) -> usize {
        (GATES + 1) * self.hidden_size
    }

    /// Checks the four standard parameters with [`CellParams::validate`], then that the
    /// peephole weights `weight_ci`, `weight_cf`, `weight_co` are there, each `(H)`, and that
    /// there is no other extra parameter.
    fn validate_params(&self) -> Result<()> {
        let h = self.hidden_size;
        self.params.validate(GATES * h, self.input_size, h)?;
        for name in PEEPHOLES {
            let Some(w) = self.params.extra(name) else {
                return Err(Error::MissingParameter {
                    name: name.into(),
                    reason: "a peephole LSTM has weight_ci, weight_cf and weight_co",
                });
            };
            if w.shape() != [h] {
                return Err(Error::ShapeMismatch {
                    op: name,
                    expected: Shape::new(&[h]),
                    actual: w.raw_shape(),
                });
            }
        }
        let standard = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"];
        let mut unexpected = None;
        self.params.visit(|name, _| {
            if unexpected.is_none() && !standard.contains(&name) && !PEEPHOLES.contains(&name) {
                unexpected = Some(name);
            }
        });
        match unexpected {
            Some(name) => Err(Error::UnexpectedParameter { name: name.into() }),
            None => Ok(()),
        }
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
        // gates ← b_hh + h·W_hhᵀ, written straight into the saved rows
        broadcast_bias(self.params.bias_hh(), batch, gw, saved, sw);
        recurrent_product(
            &self.params,
            MatRef::strided(prev, batch, h, width, 1),
            T::one(),
            MatMut::strided(saved, batch, gw, sw, 1),
        );
        // the peepholes, the gate non-linearities and the cell update, row by row (two halves
        // side by side when the step is large)
        let w = self.peepholes();
        match split_rows(batch, gw) {
            Some(mid) => {
                let (p_a, p_b) = p.split_at(mid * gw);
                let (prev_a, prev_b) = prev.split_at(mid * width);
                let (next_a, next_b) = next.split_at_mut(mid * width);
                let (saved_a, saved_b) = saved.split_at_mut(mid * sw);
                join(
                    || activate(mid, p_a, prev_a, next_a, saved_a, w),
                    || activate(batch - mid, p_b, prev_b, next_b, saved_b, w),
                );
            }
            None => activate(batch, p, prev, next, saved, w),
        }
    }

    fn step_backward(&self, step: BackwardStep<'_, T>, grads: &mut CellParams<T>) {
        let BackwardStep {
            batch,
            saved,
            prev,
            next,
            d_next,
            d_p,
            d_prev,
            ..
        } = step;
        let h = self.hidden_size;
        let (gw, sw, width) = (GATES * h, self.saved_width(), 2 * h);
        let w = self.peepholes();
        // the gates' gradients, row by row (two halves side by side when the step is large)
        match split_rows(batch, gw) {
            Some(mid) => {
                let (saved_a, saved_b) = saved.split_at(mid * sw);
                let (prev_a, prev_b) = prev.split_at(mid * width);
                let (d_next_a, d_next_b) = d_next.split_at(mid * width);
                let (d_p_a, d_p_b) = d_p.split_at_mut(mid * gw);
                let (d_prev_a, d_prev_b) = d_prev.split_at_mut(mid * width);
                join(
                    || gate_gradients(mid, saved_a, prev_a, d_next_a, d_p_a, d_prev_a, w),
                    || {
                        let rows = batch - mid;
                        gate_gradients(rows, saved_b, prev_b, d_next_b, d_p_b, d_prev_b, w)
                    },
                );
            }
            None => gate_gradients(batch, saved, prev, d_next, d_p, d_prev, w),
        }
        // dw_ci = Σ d_i ⊙ c, dw_cf = Σ d_f ⊙ c, dw_co = Σ d_o ⊙ c', straight into the gradients,
        // from the gate gradients just written
        let (c_prev, c_next) = (&prev[h..], &next[h..]);
        let sources = [(0, c_prev), (h, c_prev), (3 * h, c_next)];
        for (name, (gate, c)) in PEEPHOLES.into_iter().zip(sources) {
            let grad = grads
                .extra_mut(name)
                .expect("a peephole cell's gradients have its peephole weights");
            let d_gate = &d_p[gate..];
            accumulate_peephole_grad(grad.as_mut_slice(), batch, d_gate, gw, c, width);
        }
        // dh_prev = d_gates·W_hh
        recurrent_product_backward(
            &self.params,
            MatRef::new(d_p, batch, gw),
            T::zero(),
            MatMut::strided(d_prev, batch, h, width, 1),
        );
    }
}

/// One line: `PeepholeLstmCell { input_size: 2, hidden_size: 3, bias: true, params: 93 }`.
impl<T: Float> fmt::Display for PeepholeLstmCell<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PeepholeLstmCell {{ input_size: {}, hidden_size: {}, bias: {}, params: {} }}",
            self.input_size,
            self.hidden_size,
            self.params.bias_ih().is_some(),
            self.params.count()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        LstmCell, Mode, NamedTensors, Parameters, Recurrent, SequenceGrads, SequenceLayer, State,
    };

    /// A tensor from values, for the shapes below.
    fn t(values: &[f64], dims: &[usize]) -> Tensor<f64> {
        Tensor::from_vec(values.to_vec(), dims).expect("values fit the shape")
    }

    /// The cell of the hand-computed step: I = H = 1, `W_ih = [0.1, 0.2, 0.3, 0.4]`,
    /// `W_hh = [0.5, −0.5, 0.25, −0.25]`, every bias 0.05, `w_ci = 0.5`, `w_cf = −0.5`,
    /// `w_co = 0.25`.
    fn hand_cell() -> PeepholeLstmCell<f64> {
        let params = CellParams::new(
            t(&[0.1, 0.2, 0.3, 0.4], &[4, 1]),
            t(&[0.5, -0.5, 0.25, -0.25], &[4, 1]),
            Some(t(&[0.05; 4], &[4])),
            Some(t(&[0.05; 4], &[4])),
        )
        .with_extra(WEIGHT_CI, t(&[0.5], &[1]))
        .with_extra(WEIGHT_CF, t(&[-0.5], &[1]))
        .with_extra(WEIGHT_CO, t(&[0.25], &[1]));
        PeepholeLstmCell::from_params(1, 1, params).unwrap()
    }

    /// One step of [`hand_cell`] with x = 0.5, h = 0.2, c = 0.3 (the pre-activations without
    /// peepholes are those of `LstmCell`'s hand-computed step):
    ///
    /// ```text
    /// i  = σ(0.25 + 0.5·0.3)  = σ(0.40)  = 0.598688
    /// f  = σ(0.10 − 0.5·0.3)  = σ(−0.05) = 0.487503
    /// g  = tanh(0.30)                     = 0.291313
    /// c' = f·c + i·g = 0.146251 + 0.174405 = 0.320656
    /// o  = σ(0.25 + 0.25·c')  = σ(0.330164) = 0.581799
    /// h' = o·tanh(c') = 0.581799 · 0.310100 = 0.180416
    /// ```
    ///
    /// and its gradient for `dL/dh' = 1`, `dL/dc' = 0`:
    ///
    /// ```text
    /// d_o = tanh(c')·o(1 − o)                  = 0.075452
    /// dc' = o(1 − tanh²c') + d_o·w_co           = 0.544594
    /// d_i = dc'·g·i(1 − i),  d_f = dc'·c·f(1 − f)
    /// dw_ci = d_i·c = 0.011438   dw_cf = d_f·c = 0.012248   dw_co = d_o·c' = 0.024194
    /// dc = dc'·f + d_i·w_ci + d_f·w_cf          = 0.264198
    /// ```
    #[test]
    fn one_step_by_hand() {
        let cell = hand_cell();
        let state = State::from_hc(t(&[0.2], &[1, 1]), t(&[0.3], &[1, 1]));
        let (next, trace) = cell.forward(&t(&[0.5], &[1, 1]), Some(&state)).unwrap();
        let close = |a: f64, b: f64| approx::assert_relative_eq!(a, b, max_relative = 1e-13);
        close(next.c().unwrap().as_slice()[0], 0.3206560473646254);
        close(next.h().as_slice()[0], 0.180415958978278);
        let d_next = State::from_hc(t(&[1.0], &[1, 1]), t(&[0.0], &[1, 1]));
        let grads = cell.backward(&trace, &d_next).unwrap();
        let peephole = |name| grads.params.extra(name).unwrap().as_slice()[0];
        close(peephole(WEIGHT_CI), 0.01143753800628655);
        close(peephole(WEIGHT_CF), 0.01224842646409825);
        close(peephole(WEIGHT_CO), 0.024193525522295343);
        close(grads.state.c().unwrap().as_slice()[0], 0.26419840946566653);
    }

    #[test]
    fn display_is_one_line() {
        let config = PeepholeLstmCellConfig::new(2, 3);
        let cell: PeepholeLstmCell<f32> = config.init_seeded(1).unwrap();
        assert_eq!(
            cell.to_string(),
            "PeepholeLstmCell { input_size: 2, hidden_size: 3, bias: true, params: 93 }"
        );
        let cell: PeepholeLstmCell<f32> = config.with_bias(false).init_seeded(1).unwrap();
        assert_eq!(
            cell.to_string(),
            "PeepholeLstmCell { input_size: 2, hidden_size: 3, bias: false, params: 69 }"
        );
    }

    /// The standard four are the LSTM's draws from the same generator, whatever the options;
    /// the peepholes follow, from `U(−1/√H, 1/√H)` in the order ci, cf, co.
    #[test]
    fn init_draws_the_lstm_then_the_peepholes() {
        let (i, h) = (3, 4);
        let configs = [
            (LstmCellConfig::new(i, h), PeepholeLstmCellConfig::new(i, h)),
            (
                LstmCellConfig::new(i, h)
                    .with_bias(false)
                    .with_weight_ih_init(Init::XavierUniform)
                    .with_weight_hh_init(Init::Orthogonal),
                PeepholeLstmCellConfig::new(i, h)
                    .with_bias(false)
                    .with_weight_ih_init(Init::XavierUniform)
                    .with_weight_hh_init(Init::Orthogonal),
            ),
            (
                LstmCellConfig::new(i, h).with_forget_bias(1.0),
                PeepholeLstmCellConfig::new(i, h).with_forget_bias(1.0),
            ),
        ];
        for (seed, (lstm, peephole)) in (0..).zip(configs) {
            let rng = &mut StdRng::seed_from_u64(seed);
            let lstm: LstmCell<f64> = lstm.init(rng).unwrap();
            let k = 1.0 / (h as f64).sqrt();
            let mut expected = lstm.params().clone();
            for name in PEEPHOLES {
                expected = expected.with_extra(name, Tensor::uniform(&[h], -k, k, rng));
            }
            let cell: PeepholeLstmCell<f64> = peephole.init_seeded(seed).unwrap();
            assert_eq!(cell.params(), &expected, "config {seed}");
            for name in PEEPHOLES {
                let w = cell.params().extra(name).unwrap().as_slice();
                assert!(w.iter().all(|v| v.abs() <= k), "{name} out of U(-k, k)");
                assert!(w.iter().any(|&v| v != 0.0), "{name} drawn");
            }
        }
    }

    #[test]
    fn init_rejects_what_the_lstm_rejects() {
        let e = PeepholeLstmCellConfig::new(2, 0)
            .init_seeded::<f32>(0)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid hidden_size: 0: a layer needs at least one unit"
        );
        let e = PeepholeLstmCellConfig::new(2, 3)
            .with_bias(false)
            .with_forget_bias(1.0)
            .init_seeded::<f32>(0)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid forget_bias: the cell has no bias (with_bias(false))"
        );
    }

    /// An LSTM's parameters and the given peephole weights.
    fn params_with(peepholes: &[(&'static str, Tensor<f64>)]) -> CellParams<f64> {
        let lstm: LstmCell<f64> = LstmCellConfig::new(2, 3).init_seeded(3).unwrap();
        peepholes
            .iter()
            .fold(lstm.params().clone(), |p, (name, w)| {
                p.with_extra(name, w.clone())
            })
    }

    #[test]
    fn from_params_names_the_missing_or_misshaped_tensor() {
        let w = Tensor::<f64>::zeros(&[3]);
        let cases = [
            (
                vec![(WEIGHT_CF, w.clone()), (WEIGHT_CO, w.clone())],
                "missing parameter `weight_ci`: a peephole LSTM has weight_ci, weight_cf and \
                 weight_co",
            ),
            (
                vec![(WEIGHT_CI, w.clone()), (WEIGHT_CO, w.clone())],
                "missing parameter `weight_cf`: a peephole LSTM has weight_ci, weight_cf and \
                 weight_co",
            ),
            (
                vec![(WEIGHT_CI, w.clone()), (WEIGHT_CF, w.clone())],
                "missing parameter `weight_co`: a peephole LSTM has weight_ci, weight_cf and \
                 weight_co",
            ),
            (
                vec![
                    (WEIGHT_CI, w.clone()),
                    (WEIGHT_CF, w.clone()),
                    (WEIGHT_CO, Tensor::zeros(&[4])),
                ],
                "shape mismatch in weight_co: expected [3], got [4]",
            ),
            (
                vec![
                    (WEIGHT_CI, Tensor::zeros(&[1, 3])),
                    (WEIGHT_CF, w.clone()),
                    (WEIGHT_CO, w.clone()),
                ],
                "shape mismatch in weight_ci: expected [3], got [1, 3]",
            ),
            (
                vec![
                    (WEIGHT_CI, w.clone()),
                    (WEIGHT_CF, w.clone()),
                    (WEIGHT_CO, w.clone()),
                    ("weight_hr", Tensor::zeros(&[2, 3])),
                ],
                "unexpected parameter `weight_hr`: the model has no tensor of that name",
            ),
        ];
        for (peepholes, message) in cases {
            let e = PeepholeLstmCell::from_params(2, 3, params_with(&peepholes)).unwrap_err();
            assert_eq!(e.to_string(), message);
        }
        // the standard parameters are checked too
        let mut params = params_with(&[(WEIGHT_CI, w.clone()), (WEIGHT_CF, w.clone())]);
        *params.weight_hh_mut() = Tensor::zeros(&[12, 2]);
        let e = PeepholeLstmCell::from_params(2, 3, params).unwrap_err();
        assert_eq!(
            e.to_string(),
            "shape mismatch in weight_hh: expected [12, 3], got [12, 2]"
        );
        let all = [
            (WEIGHT_CI, w.clone()),
            (WEIGHT_CF, w.clone()),
            (WEIGHT_CO, w),
        ];
        let e = PeepholeLstmCell::from_params(2, 0, params_with(&all)).unwrap_err();
        assert!(matches!(
            e,
            Error::InvalidArgument {
                name: "hidden_size",
                ..
            }
        ));
    }

    /// A weight changed after construction is caught when the layer next runs.
    #[test]
    fn a_misshaped_peephole_is_an_error_of_the_forward_pass() {
        let mut cell: PeepholeLstmCell<f64> =
            PeepholeLstmCellConfig::new(2, 3).init_seeded(4).unwrap();
        *cell.params_mut().extra_mut(WEIGHT_CF).unwrap() = Tensor::zeros(&[2]);
        let layer = Recurrent::new(cell);
        let e = layer
            .forward_with_state(&Tensor::zeros(&[2, 1, 2]), None, None, Mode::Eval)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "shape mismatch in weight_cf: expected [3], got [2]"
        );
    }

    /// The forward pass and every gradient of `layer` on a random problem of `(T, B, I)` with
    /// lengths, an initial state and output and state gradients.
    fn run<T: Float, L: SequenceLayer<T>>(
        layer: &L,
        [t, b, i]: [usize; 3],
        seed: u64,
    ) -> (Tensor<T>, State<T>, SequenceGrads<T>) {
        let rng = &mut StdRng::seed_from_u64(seed);
        let x = Tensor::randn(&[t, b, i], rng);
        let lengths: Vec<usize> = (0..b).map(|k| t - k % t).collect();
        let init = State::new(
            layer
                .state_parts()
                .into_iter()
                .map(|p| (p.name, Tensor::randn(&[1, b, p.size], rng)))
                .collect(),
        );
        let out = layer
            .forward_with_state(&x, Some(&init), Some(&lengths), Mode::Eval)
            .unwrap();
        let d_state = State::new(
            layer
                .state_parts()
                .into_iter()
                .map(|p| (p.name, Tensor::randn(&[1, b, p.size], rng)))
                .collect(),
        );
        let grads = layer
            .backward_with_state(&out.trace, Some(&out.output), Some(&d_state))
            .unwrap();
        (out.output, out.state, grads)
    }

    /// With zero peepholes a `Recurrent` of the cell computes what one of `LstmCell` does, bit
    /// for bit: outputs, final states and every gradient, the LSTM's parameters from the same
    /// seed. The larger problem splits its gate updates between two threads when two are
    /// allowed.
    fn zero_peepholes_are_the_lstm<T: Float>() {
        for (seed, [t, b, i, h]) in [(1, [5, 3, 4, 6]), (2, [1, 1, 1, 1]), (3, [3, 64, 8, 64])] {
            let mut cell: PeepholeLstmCell<T> =
                PeepholeLstmCellConfig::new(i, h).init_seeded(seed).unwrap();
            cell.params_mut().visit_mut(|name, w| {
                if PEEPHOLES.contains(&name) {
                    w.as_mut_slice().fill(T::zero());
                }
            });
            let peephole = Recurrent::new(cell);
            let lstm: LstmCell<T> = LstmCellConfig::new(i, h).init_seeded(seed).unwrap();
            let lstm = Recurrent::new(lstm);
            let (out_a, state_a, grads_a) = run(&peephole, [t, b, i], seed);
            let (out_b, state_b, grads_b) = run(&lstm, [t, b, i], seed);
            assert_eq!(out_a, out_b);
            assert_eq!(state_a, state_b);
            assert_eq!(grads_a.input, grads_b.input);
            assert_eq!(grads_a.initial_state, grads_b.initial_state);
            let names = |g: &NamedTensors<T>| g.iter().map(|(n, _)| n.to_string()).collect();
            let names: Vec<String> = names(&grads_b.params);
            for (name, g) in grads_b.params.iter() {
                assert_eq!(grads_a.params.get(name), Some(g), "{name}");
            }
            assert_eq!(names.len() + 3, grads_a.params.len());
            assert_eq!(peephole.param_names().len(), grads_a.params.len());
        }
    }

    #[test]
    fn zero_peepholes_are_the_lstm_in_f32() {
        zero_peepholes_are_the_lstm::<f32>();
    }

    #[test]
    fn zero_peepholes_are_the_lstm_in_f64() {
        zero_peepholes_are_the_lstm::<f64>();
    }

    /// A step of many rows (split between two threads when two are allowed) gives each row
    /// what the row gives alone, and the peephole gradients are the sums over the rows in
    /// order, bit for bit.
    #[test]
    fn rows_do_not_depend_on_the_split() {
        let (batch, h) = (64, 64);
        let cell: PeepholeLstmCell<f32> = PeepholeLstmCellConfig::new(h, h).init_seeded(5).unwrap();
        let rng = &mut StdRng::seed_from_u64(6);
        let (gw, sw, width) = (4 * h, 5 * h, 2 * h);
        let p = Tensor::<f32>::randn(&[batch, gw], rng).into_vec();
        let prev = Tensor::<f32>::randn(&[batch, width], rng).into_vec();
        let d_next = Tensor::<f32>::randn(&[batch, width], rng).into_vec();
        let whole = |rows: std::ops::Range<usize>, grads: &mut CellParams<f32>| {
            let n = rows.len();
            let (mut next, mut saved) = (vec![0.0; n * width], vec![0.0; n * sw]);
            let prev = &prev[rows.start * width..rows.end * width];
            cell.step(
                n,
                &p[rows.start * gw..rows.end * gw],
                prev,
                &mut next,
                &mut saved,
            );
            let (mut d_p, mut d_prev) = (vec![0.0; n * gw], vec![0.0; n * width]);
            let step = BackwardStep {
                batch: n,
                saved: &saved,
                prev,
                next: &next,
                d_next: &d_next[rows.start * width..rows.end * width],
                d_p: &mut d_p,
                d_hp: &mut [],
                d_prev: &mut d_prev,
            };
            cell.step_backward(step, grads);
            [next, d_p, d_prev]
        };
        let mut grads_all = cell.params().zeros_like();
        let all = whole(0..batch, &mut grads_all);
        let mut grads_rows = cell.params().zeros_like();
        for b in 0..batch {
            let row = whole(b..b + 1, &mut grads_rows);
            for (buf, one) in all.iter().zip(&row) {
                let n = one.len();
                assert_eq!(&buf[b * n..(b + 1) * n], &one[..], "row {b}");
            }
        }
        for name in PEEPHOLES {
            assert_eq!(grads_all.extra(name), grads_rows.extra(name), "{name}");
        }
    }
}
