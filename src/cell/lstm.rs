//! The long short-term memory cell (Hochreiter & Schmidhuber, 1997), as PyTorch's `nn.LSTMCell`.

use core::fmt;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::kernels::{
    broadcast_bias, join, recurrent_product, recurrent_product_backward, split_rows,
};
use super::{check_hidden_size, display_cell, kernels, BackwardStep, Cell, CellParams, Init};
use crate::error::{check_shape, Error, Result};
use crate::float::Float;
use crate::linalg::{gemm, MatMut, MatRef};
use crate::state::StatePart;
use crate::tensor::{checked_size, Shape, Tensor};

/// Gates of an LSTM, in PyTorch's packed order `i, f, g, o`.
const GATES: usize = 4;

/// The name of the projection weight, PyTorch's `weight_hr`.
const PROJECTION: &str = "weight_hr";

/// Configuration of an [`LstmCell`]: `LstmCellConfig::new(input_size, hidden_size)`, then `with_*`
/// options, then [`init`](LstmCellConfig::init).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LstmCellConfig {
    input_size: usize,
    hidden_size: usize,
    bias: bool,
    proj_size: usize,
    weight_ih_init: Init,
    weight_hh_init: Init,
    forget_bias: Option<f64>,
}

impl LstmCellConfig {
    /// An LSTM cell reading `input_size` features into `hidden_size` units.
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        LstmCellConfig {
            input_size,
            hidden_size,
            bias: true,
            proj_size: 0,
            weight_ih_init: Init::Default,
            weight_hh_init: Init::Default,
            forget_bias: None,
        }
    }

    /// Whether the cell has the biases `bias_ih` and `bias_hh`. Defaults to `true`.
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_bias(self, bias: bool) -> Self {
        LstmCellConfig { bias, ..self }
    }

    /// Projects `h` to `proj_size` units with a weight `weight_hr (P, H)`, as PyTorch's
    /// `nn.LSTM(proj_size=P)`: `h' = W_hr (o ⊙ tanh(c'))`. Defaults to 0, no projection.
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_proj_size(self, proj_size: usize) -> Self {
        LstmCellConfig { proj_size, ..self }
    }

    /// How `weight_ih (4H, I)` is initialised; see [`Init`]. Defaults to [`Init::Default`].
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_weight_ih_init(self, weight_ih_init: Init) -> Self {
        LstmCellConfig {
            weight_ih_init,
            ..self
        }
    }

    /// How `weight_hh (4H, H)` (and `weight_hr (P, H)` with a projection) is initialised; see
    /// [`Init`]. Defaults to [`Init::Default`].
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_weight_hh_init(self, weight_hh_init: Init) -> Self {
        LstmCellConfig {
            weight_hh_init,
            ..self
        }
    }

    /// Sets the forget-gate bias to `forget_bias` (1 is the common choice, from Gers et al.,
    /// 2000 and Jozefowicz et al., 2015), so that the cell starts by keeping its memory.
    ///
    /// PyTorch's LSTM has two bias vectors and the gates see their sum `b_ih + b_hh`; this
    /// sets the forget block (entries `H..2H`, gate order `i, f, g, o`) of `bias_ih` to
    /// `forget_bias` and that of `bias_hh` to 0, so the sum is `forget_bias`. The other bias
    /// entries keep PyTorch's default `U(−1/√H, 1/√H)`, drawn as without this option (the
    /// forget entries are drawn too, then overwritten). Defaults to no change: the forget
    /// biases are drawn like the others.
    ///
    /// [`init`](LstmCellConfig::init) fails with [`Error::InvalidArgument`] if the cell has
    /// no bias ([`with_bias(false)`](LstmCellConfig::with_bias)) or `forget_bias` is not finite.
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_forget_bias(self, forget_bias: f64) -> Self {
        LstmCellConfig {
            forget_bias: Some(forget_bias),
            ..self
        }
    }

    /// A cell with its weights drawn from `rng` by the chosen [`Init`]s (PyTorch's default
    /// `U(−1/√H, 1/√H)` unless set) and its biases by PyTorch's default, in the order
    /// `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh` (then, with a projection and the default
    /// init, `weight_hh` again at its projected width, and `weight_hr`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if `hidden_size` is 0, if `proj_size` is not smaller than
    /// `hidden_size` (as PyTorch rejects them), or for a
    /// [`forget_bias`](LstmCellConfig::with_forget_bias) without biases or not finite;
    /// [`Error::SizeOverflow`] or [`Error::Allocation`] for sizes beyond the machine.
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::rand::{rngs::StdRng, SeedableRng};
    /// use recurrent::{Cell, LstmCell, LstmCellConfig};
    ///
    /// let cell: LstmCell<f32> = LstmCellConfig::new(3, 5).init(&mut StdRng::seed_from_u64(0))?;
    /// assert_eq!(cell.params().weight_ih().shape(), &[20, 3]);
    ///
    /// let config = LstmCellConfig::new(3, 5).with_proj_size(5);
    /// let e = config.init::<f32>(&mut StdRng::seed_from_u64(0)).unwrap_err();
    /// assert_eq!(
    ///     e.to_string(),
    ///     "invalid proj_size: 5 must be smaller than hidden_size (5)"
    /// );
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn init<T: Float>(&self, rng: &mut (impl Rng + ?Sized)) -> Result<LstmCell<T>> {
        let (h, p) = (self.hidden_size, self.proj_size);
        check_hidden_size(h)?;
        check_proj_size(p, h)?;
        if let Some(f) = self.forget_bias {
            check_forget_bias(f, self.bias)?;
        }
        let gw = checked_size("lstm gates", &[GATES, h])?;
        // with a projection and the default init, a square weight_hh is drawn first and
        // replaced, as in earlier versions, so that seeded draws stay the same
        let square_first = p > 0 && self.weight_hh_init == Init::Default;
        let h_hh = if p > 0 && !square_first { p } else { h };
        let inits = [self.weight_ih_init, self.weight_hh_init];
        let mut params =
            CellParams::init_with(gw, self.input_size, h, h_hh, self.bias, inits, rng)?;
        if p > 0 {
            if square_first {
                *params.weight_hh_mut() = Init::Default.draw("weight_hh", [gw, p], h, h, rng)?;
            }
            let w_hr = self.weight_hh_init.draw(PROJECTION, [p, h], p, h, rng)?;
            params = params.with_extra(PROJECTION, w_hr);
        }
        if let Some(f) = self.forget_bias {
            // the gates see b_ih + b_hh: the forget block of that sum becomes f
            let forget = h..2 * h;
            if let Some(b) = params.bias_ih_mut() {
                b.as_mut_slice()[forget.clone()].fill(T::from_f64(f));
            }
            if let Some(b) = params.bias_hh_mut() {
                b.as_mut_slice()[forget].fill(T::zero());
            }
        }
        Ok(LstmCell::new_unchecked(self.input_size, h, p, params))
    }

    /// [`init`](LstmCellConfig::init) from `StdRng::seed_from_u64(seed)`.
    ///
    /// # Errors
    ///
    /// As [`init`](LstmCellConfig::init).
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::rand::{rngs::StdRng, SeedableRng};
    /// use recurrent::{LstmCell, LstmCellConfig};
    ///
    /// let config = LstmCellConfig::new(3, 5);
    /// let a: LstmCell<f64> = config.init_seeded(7)?;
    /// assert_eq!(a, config.init(&mut StdRng::seed_from_u64(7))?);
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn init_seeded<T: Float>(&self, seed: u64) -> Result<LstmCell<T>> {
        self.init(&mut StdRng::seed_from_u64(seed))
    }
}

/// [`Error::InvalidArgument`] for a forget-gate bias that is not finite or without biases.
fn check_forget_bias(forget_bias: f64, bias: bool) -> Result<()> {
    let reason = if !forget_bias.is_finite() {
        format!("{forget_bias} is not finite")
    } else if !bias {
        "the cell has no bias (with_bias(false))".into()
    } else {
        return Ok(());
    };
    Err(Error::InvalidArgument {
        name: "forget_bias",
        reason,
    })
}

/// [`Error::InvalidArgument`] unless `proj_size < hidden_size` (as PyTorch requires).
fn check_proj_size(proj_size: usize, hidden_size: usize) -> Result<()> {
    if proj_size >= hidden_size {
        return Err(Error::InvalidArgument {
            name: "proj_size",
            reason: format!("{proj_size} must be smaller than hidden_size ({hidden_size})"),
        });
    }
    Ok(())
}

/// An LSTM cell with PyTorch's parameterisation.
///
/// ```text
/// i  = σ(W_ii x + b_ii + W_hi h + b_hi)
/// f  = σ(W_if x + b_if + W_hf h + b_hf)
/// g  = tanh(W_ig x + b_ig + W_hg h + b_hg)
/// o  = σ(W_io x + b_io + W_ho h + b_ho)
/// c' = f ⊙ c + i ⊙ g
/// h' = o ⊙ tanh(c')              (h' = W_hr (o ⊙ tanh(c')) with a projection)
/// ```
///
/// The gates are packed in the order `i, f, g, o` into `weight_ih (4H, I)`,
/// `weight_hh (4H, H)`, `bias_ih (4H)` and `bias_hh (4H)`, as in
/// [`torch.nn.LSTM`](https://pytorch.org/docs/stable/generated/torch.nn.LSTM.html).
/// The state is `(h, c)`.
///
/// With a projection of size `P` ([`LstmCellConfig::with_proj_size`]), `h` has `P` units,
/// `weight_hh` is `(4H, P)`, and the extra parameter `weight_hr (P, H)` (in
/// [`CellParams::extra`]) maps `o ⊙ tanh(c')` to `h'`; `c` keeps `H` units.
///
/// # Examples
///
/// ```
/// use recurrent::rand::{rngs::StdRng, SeedableRng};
/// use recurrent::{Cell, LstmCell, LstmCellConfig, Tensor};
///
/// let cell: LstmCell<f64> = LstmCellConfig::new(3, 5).init(&mut StdRng::seed_from_u64(0))?;
/// let x = Tensor::zeros(&[2, 3]);
/// let (next, _trace) = cell.forward(&x, None)?;
/// assert_eq!(next.h().shape(), &[2, 5]);
/// assert_eq!(next.c().unwrap().shape(), &[2, 5]);
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LstmCell<T> {
    input_size: usize,
    hidden_size: usize,
    /// `P`, or 0 without a projection.
    proj_size: usize,
    params: CellParams<T>,
    /// `h` (`P` units with a projection, else `H`) and `c` (`H`).
    layout: [StatePart; 2],
}

impl<T: Float> LstmCell<T> {
    /// A cell with the given parameters (for example loaded from PyTorch). A projection cell
    /// is recognised by its extra parameter `weight_hr (P, H)`.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] naming the first parameter whose shape is not
    /// `weight_ih (4H, I)`, `weight_hh (4H, P or H)`, `bias_* (4H)`, `weight_hr (P, H)`;
    /// [`Error::InvalidArgument`] if `P ≥ H` or `H = 0`; [`Error::MissingParameter`] if exactly one of
    /// the biases is given.
    pub fn from_params(
        input_size: usize,
        hidden_size: usize,
        params: CellParams<T>,
    ) -> Result<Self> {
        let proj_size = params.extra(PROJECTION).map_or(0, |w| w.shape()[0]);
        check_hidden_size(hidden_size)?;
        checked_size("lstm gates", &[GATES, hidden_size])?;
        let cell = LstmCell::new_unchecked(input_size, hidden_size, proj_size, params);
        cell.validate_params()?;
        Ok(cell)
    }

    fn new_unchecked(
        input_size: usize,
        hidden_size: usize,
        proj_size: usize,
        mut params: CellParams<T>,
    ) -> Self {
        params.renew_version();
        let h_out = if proj_size > 0 {
            proj_size
        } else {
            hidden_size
        };
        LstmCell {
            input_size,
            hidden_size,
            proj_size,
            params,
            layout: [StatePart::new("h", h_out), StatePart::new("c", hidden_size)],
        }
    }

    /// The part of [`Cell::step`] after the recurrent product, for `batch` rows: `saved`
    /// holds `b_hh + h·W_hhᵀ` in its gate columns; adds `p`, applies the gate non-linearities
    /// and writes `c'`, `tanh(c')` and (unless `projected`, where it goes to `saved` for the
    /// projection) `h'`.
    fn activate(
        &self,
        batch: usize,
        p: &[T],
        prev: &[T],
        next: &mut [T],
        saved: &mut [T],
        projected: bool,
    ) {
        let h = self.hidden_size;
        let h_out = self.output_size();
        let (gw, sw, width) = (GATES * h, self.saved_width(), h_out + h);
        for b in 0..batch {
            let s = &mut saved[b * sw..][..sw];
            let c_prev = &prev[b * width + h_out..][..h];
            let (h_next, c_next) = next[b * width..][..width].split_at_mut(h_out);
            let (gates, rest) = s.split_at_mut(gw);
            gates
                .iter_mut()
                .zip(&p[b * gw..][..gw])
                .for_each(|(g, &p)| *g = *g + p);
            // i, f, o = σ(·); g = tanh(·)
            kernels::sigmoid(&mut gates[..2 * h]);
            kernels::tanh(&mut gates[2 * h..3 * h]);
            kernels::sigmoid(&mut gates[3 * h..]);
            let (i, f) = (&gates[..h], &gates[h..2 * h]);
            let (g, o) = (&gates[2 * h..3 * h], &gates[3 * h..]);
            let (tc, unprojected) = rest.split_at_mut(h);
            // c' = f ⊙ c + i ⊙ g, and tanh(c') next to it
            for j in 0..h {
                let c = f[j] * c_prev[j] + i[j] * g[j];
                c_next[j] = c;
                tc[j] = c;
            }
            kernels::tanh(tc);
            // h' = o ⊙ tanh(c'), projected below if the cell has a projection
            let out = if projected { unprojected } else { h_next };
            out.iter_mut()
                .zip(o.iter().zip(tc.iter()))
                .for_each(|(h, (&o, &tc))| *h = o * tc);
        }
    }

    /// The gates' part of [`Cell::step_backward`] for `batch` rows: writes `d_p` (the
    /// gradient of the gate pre-activations) and the `c` part of `d_prev`. With a projection,
    /// `d_p`'s `o` block holds the gradient of `o ⊙ tanh(c')` on entry.
    // the buffers as separate arguments: the compiler then knows they do not overlap and
    // vectorises the loop (see `BackwardStep`)
    #[allow(clippy::too_many_arguments)]
    fn gate_gradients(
        &self,
        batch: usize,
        saved: &[T],
        prev: &[T],
        d_next: &[T],
        d_p: &mut [T],
        d_prev: &mut [T],
        projected: bool,
    ) {
        let h = self.hidden_size;
        let h_out = self.output_size();
        let (gw, sw, width) = (GATES * h, self.saved_width(), h_out + h);
        let one = T::one();
        for b in 0..batch {
            let s = &saved[b * sw..][..sw];
            let c_prev = &prev[b * width + h_out..][..h];
            let (dh, dc_next) = d_next[b * width..][..width].split_at(h_out);
            let dg = &mut d_p[b * gw..][..gw];
            let dc_prev = &mut d_prev[b * width + h_out..][..h];
            for j in 0..h {
                let (i, f, g, o, tc) = (s[j], s[h + j], s[2 * h + j], s[3 * h + j], s[4 * h + j]);
                // the gradient of o ⊙ tanh c' (before the projection, if any)
                let du = if projected { dg[3 * h + j] } else { dh[j] };
                // h' = o·tanh(c'): dc' gets dh·o·(1 − tanh²c') on top of the incoming dc'
                let dc = dc_next[j] + du * o * (one - tc * tc);
                // dσ/dx = σ(1 − σ), dtanh/dx = 1 − tanh²
                dg[j] = dc * g * i * (one - i);
                dg[h + j] = dc * c_prev[j] * f * (one - f);
                dg[2 * h + j] = dc * i * (one - g * g);
                dg[3 * h + j] = du * tc * o * (one - o);
                // c' = f·c + i·g: dc = dc'·f
                dc_prev[j] = dc * f;
            }
        }
    }

    /// The projection size `P`, or 0 without a projection.
    pub fn proj_size(&self) -> usize {
        self.proj_size
    }

    /// `weight_hr` if the cell has a projection.
    fn projection(&self) -> Option<&Tensor<T>> {
        (self.proj_size > 0).then(|| {
            self.params
                .extra(PROJECTION)
                .expect("validated: a projection cell has weight_hr")
        })
    }
}

impl<T: Float> Cell<T> for LstmCell<T> {
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

    /// Saved per sample: the activated gates `i, f, g, o` and `tanh(c')`, and with a
    /// projection also `o ⊙ tanh(c')`.
    fn saved_width(&self) -> usize {
        let unprojected = usize::from(self.proj_size > 0);
        (GATES + 1 + unprojected) * self.hidden_size
    }

    fn validate_params(&self) -> Result<()> {
        let (h, p) = (self.hidden_size, self.proj_size);
        if p > 0 {
            let Some(w_hr) = self.params.extra(PROJECTION) else {
                return Err(Error::MissingParameter {
                    name: PROJECTION.into(),
                    reason: "the cell has a projection",
                });
            };
            check_proj_size(p, h)?;
            check_shape(PROJECTION, Shape::from([p, h]), w_hr.raw_shape())?;
        }
        self.params
            .validate(GATES * h, self.input_size, self.output_size())
    }

    fn params(&self) -> &CellParams<T> {
        &self.params
    }

    fn params_mut(&mut self) -> &mut CellParams<T> {
        &mut self.params
    }

    fn step(&self, batch: usize, p: &[T], prev: &[T], next: &mut [T], saved: &mut [T]) {
        let h = self.hidden_size;
        let h_out = self.output_size();
        let (gw, sw, width) = (GATES * h, self.saved_width(), h_out + h);
        let projection = self.projection();
        debug_assert_eq!(p.len(), batch * gw);
        debug_assert_eq!(prev.len(), batch * width);
        debug_assert_eq!(saved.len(), batch * sw);
        // gates ← b_hh + h·W_hhᵀ, written straight into the saved rows
        broadcast_bias(self.params.bias_hh(), batch, gw, saved, sw);
        recurrent_product(
            &self.params,
            MatRef::strided(prev, batch, h_out, width, 1),
            T::one(),
            MatMut::strided(saved, batch, gw, sw, 1),
        );
        // the gate non-linearities and the cell update, row by row (two halves side by side
        // when the step is large)
        let projected = projection.is_some();
        let rows = |batch: usize, p: &[T], prev: &[T], next: &mut [T], saved: &mut [T]| {
            self.activate(batch, p, prev, next, saved, projected)
        };
        match split_rows(batch, gw) {
            Some(mid) => {
                let (p_a, p_b) = p.split_at(mid * gw);
                let (prev_a, prev_b) = prev.split_at(mid * width);
                let (next_a, next_b) = next.split_at_mut(mid * width);
                let (saved_a, saved_b) = saved.split_at_mut(mid * sw);
                join(
                    || rows(mid, p_a, prev_a, next_a, saved_a),
                    || rows(batch - mid, p_b, prev_b, next_b, saved_b),
                );
            }
            None => rows(batch, p, prev, next, saved),
        }
        if let Some(w_hr) = projection {
            // h' = (o ⊙ tanh c')·W_hrᵀ
            gemm(
                T::one(),
                MatRef::strided(&saved[5 * h..], batch, h, sw, 1),
                w_hr.as_mat().t(),
                T::zero(),
                MatMut::strided(next, batch, h_out, width, 1),
            );
        }
    }

    fn step_backward(&self, step: BackwardStep<'_, T>, grads: &mut CellParams<T>) {
        let BackwardStep {
            batch,
            saved,
            prev,
            d_next,
            d_p,
            d_prev,
            ..
        } = step;
        let h = self.hidden_size;
        let h_out = self.output_size();
        let (gw, sw, width) = (GATES * h, self.saved_width(), h_out + h);
        if let Some(w_hr) = self.projection() {
            // h' = u·W_hrᵀ with u = o ⊙ tanh c': du = dh'·W_hr, parked in the o block of d_p
            // (each element is read there before its own slot is overwritten below);
            // dW_hr += dh'ᵀ·u
            let d_h = MatRef::strided(d_next, batch, h_out, width, 1);
            let u = MatRef::strided(&saved[5 * h..], batch, h, sw, 1);
            let d_w_hr = grads
                .extra_mut(PROJECTION)
                .expect("a projection cell's gradients have weight_hr");
            gemm(T::one(), d_h.t(), u, T::one(), d_w_hr.as_mat_mut());
            let d_u = MatMut::strided(&mut d_p[3 * h..], batch, h, gw, 1);
            gemm(T::one(), d_h, w_hr.as_mat(), T::zero(), d_u);
        }
        let projected = self.proj_size > 0;
        // the gates' gradients, row by row (two halves side by side when the step is large)
        let rows = |batch: usize,
                    saved: &[T],
                    prev: &[T],
                    d_next: &[T],
                    d_p: &mut [T],
                    d_prev: &mut [T]| {
            self.gate_gradients(batch, saved, prev, d_next, d_p, d_prev, projected)
        };
        match split_rows(batch, gw) {
            Some(mid) => {
                let (saved_a, saved_b) = saved.split_at(mid * sw);
                let (prev_a, prev_b) = prev.split_at(mid * width);
                let (d_next_a, d_next_b) = d_next.split_at(mid * width);
                let (d_p_a, d_p_b) = d_p.split_at_mut(mid * gw);
                let (d_prev_a, d_prev_b) = d_prev.split_at_mut(mid * width);
                join(
                    || rows(mid, saved_a, prev_a, d_next_a, d_p_a, d_prev_a),
                    || rows(batch - mid, saved_b, prev_b, d_next_b, d_p_b, d_prev_b),
                );
            }
            None => rows(batch, saved, prev, d_next, d_p, d_prev),
        }
        // dh_prev = d_gates·W_hh
        recurrent_product_backward(
            &self.params,
            MatRef::new(d_p, batch, gw),
            T::zero(),
            MatMut::strided(d_prev, batch, h_out, width, 1),
        );
    }
}

impl<T: Float> fmt::Display for LstmCell<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        display_cell(
            f,
            "LstmCell",
            self.input_size,
            self.hidden_size,
            (self.proj_size > 0).then_some(("proj_size", &self.proj_size as &dyn fmt::Debug)),
            &self.params,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::State;
    use crate::test_util::t;
    use rand::{rngs::StdRng, SeedableRng};

    /// One step with I = H = 1, `W_ih = [0.1, 0.2, 0.3, 0.4]`, `W_hh = [0.5, −0.5, 0.25, −0.25]`,
    /// every bias 0.05, x = 0.5, h = 0.2, c = 0.3:
    ///
    /// ```text
    /// i = σ(0.05 + 0.1 + 0.1)  = σ(0.25) = 0.562177
    /// f = σ(0.1 − 0.1 + 0.1)   = σ(0.10) = 0.524979
    /// g = tanh(0.15 + 0.05 + 0.1) = tanh(0.30) = 0.291313
    /// o = σ(0.2 − 0.05 + 0.1)  = σ(0.25) = 0.562177
    /// c' = f·c + i·g = 0.157494 + 0.163769 = 0.321263
    /// h' = o·tanh(c') = 0.562177 · 0.310652 = 0.174639
    /// ```
    #[test]
    fn one_step_by_hand() {
        let params = CellParams::new(
            t(&[0.1, 0.2, 0.3, 0.4], &[4, 1]),
            t(&[0.5, -0.5, 0.25, -0.25], &[4, 1]),
            Some(t(&[0.05; 4], &[4])),
            Some(t(&[0.05; 4], &[4])),
        );
        let cell = LstmCell::from_params(1, 1, params).unwrap();
        let state = State::from_hc(t(&[0.2], &[1, 1]), t(&[0.3], &[1, 1]));
        let (next, _) = cell.forward(&t(&[0.5], &[1, 1]), Some(&state)).unwrap();
        approx::assert_relative_eq!(
            next.c().unwrap().as_slice()[0],
            0.32126286137561794,
            max_relative = 1e-14
        );
        approx::assert_relative_eq!(
            next.h().as_slice()[0],
            0.17463920837710778,
            max_relative = 1e-14
        );
    }

    #[test]
    fn display_is_one_line() {
        let cell: LstmCell<f32> = LstmCellConfig::new(2, 3)
            .init(&mut StdRng::seed_from_u64(1))
            .unwrap();
        assert_eq!(
            cell.to_string(),
            "LstmCell { input_size: 2, hidden_size: 3, bias: true, params: 84 }"
        );
        let cell: LstmCell<f32> = LstmCellConfig::new(2, 3)
            .with_bias(false)
            .init(&mut StdRng::seed_from_u64(1))
            .unwrap();
        assert_eq!(
            cell.to_string(),
            "LstmCell { input_size: 2, hidden_size: 3, bias: false, params: 60 }"
        );
    }

    #[test]
    fn init_is_within_pytorch_bounds() {
        let cell: LstmCell<f64> = LstmCellConfig::new(7, 16)
            .init(&mut StdRng::seed_from_u64(2))
            .unwrap();
        cell.params().visit(|name, t| {
            assert!(
                t.as_slice().iter().all(|v| v.abs() <= 0.25),
                "{name} out of U(-1/4, 1/4)"
            );
        });
    }

    #[test]
    fn from_params_names_the_wrong_tensor() {
        let mut params = LstmCellConfig::new(2, 3)
            .init::<f64>(&mut StdRng::seed_from_u64(3))
            .unwrap()
            .params;
        *params.weight_hh_mut() = crate::Tensor::zeros(&[12, 2]);
        let e = LstmCell::from_params(2, 3, params).unwrap_err();
        assert_eq!(
            e.to_string(),
            "shape mismatch in weight_hh: expected [12, 3], got [12, 2]"
        );
    }

    #[test]
    fn forget_bias_sets_the_sum_of_the_two_forget_blocks() {
        let (i, h) = (3, 4);
        let config = LstmCellConfig::new(i, h);
        let plain: LstmCell<f64> = config.init_seeded(5).unwrap();
        let cell: LstmCell<f64> = config.with_forget_bias(1.0).init_seeded(5).unwrap();
        let (b_ih, b_hh) = (
            cell.params.bias_ih().unwrap(),
            cell.params.bias_hh().unwrap(),
        );
        assert_eq!(b_ih.as_slice()[h..2 * h], [1.0; 4]);
        assert_eq!(b_hh.as_slice()[h..2 * h], [0.0; 4]);
        // everything else is the draw without the option
        let (p_ih, p_hh) = (
            plain.params.bias_ih().unwrap(),
            plain.params.bias_hh().unwrap(),
        );
        for k in (0..h).chain(2 * h..4 * h) {
            assert_eq!(b_ih.as_slice()[k], p_ih.as_slice()[k]);
            assert_eq!(b_hh.as_slice()[k], p_hh.as_slice()[k]);
        }
        assert_eq!(cell.params.weight_ih(), plain.params.weight_ih());
        assert_eq!(cell.params.weight_hh(), plain.params.weight_hh());
        // the forget gate of a zero input and state is σ(1)
        let (next, _) = cell.forward(&Tensor::zeros(&[1, i]), None).unwrap();
        let state = State::from_hc(Tensor::zeros(&[1, h]), Tensor::full(&[1, h], 1.0));
        let (with_c, _) = cell.forward(&Tensor::zeros(&[1, i]), Some(&state)).unwrap();
        let sigmoid_1 = 1.0 / (1.0 + (-1.0f64).exp());
        for k in 0..h {
            let dc = with_c.c().unwrap().as_slice()[k] - next.c().unwrap().as_slice()[k];
            approx::assert_relative_eq!(dc, sigmoid_1, max_relative = 1e-14);
        }
    }

    #[test]
    fn forget_bias_needs_finite_value_and_biases() {
        let e = LstmCellConfig::new(2, 3)
            .with_bias(false)
            .with_forget_bias(1.0)
            .init_seeded::<f32>(0)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid forget_bias: the cell has no bias (with_bias(false))"
        );
        let e = LstmCellConfig::new(2, 3)
            .with_forget_bias(f64::NAN)
            .init_seeded::<f32>(0)
            .unwrap_err();
        assert_eq!(e.to_string(), "invalid forget_bias: NaN is not finite");
    }

    /// Xavier takes the fans of the whole packed `(4H, I)` matrix, as `xavier_uniform_` on
    /// PyTorch's parameter does.
    #[test]
    fn xavier_uses_the_fans_of_the_packed_matrix() {
        let (i, h) = (30, 20);
        let cell: LstmCell<f64> = LstmCellConfig::new(i, h)
            .with_weight_ih_init(Init::XavierUniform)
            .init_seeded(6)
            .unwrap();
        let a = (6.0 / (i + 4 * h) as f64).sqrt();
        let w = cell.params.weight_ih().as_slice();
        let largest = w.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(largest <= a && largest > 0.99 * a, "{largest} vs {a}");
        // weight_hh keeps PyTorch's default bound 1/√H
        let w_hh = cell.params.weight_hh().as_slice();
        assert!(w_hh.iter().all(|v| v.abs() <= 1.0 / (h as f64).sqrt()));
    }

    /// With a projection, the `(H, P)` gate blocks of `weight_hh` have orthonormal columns and
    /// `weight_hr (P, H)` orthonormal rows.
    #[test]
    fn orthogonal_projection_blocks_are_orthonormal() {
        let (h, p) = (6, 4);
        let cell: LstmCell<f64> = LstmCellConfig::new(3, h)
            .with_proj_size(p)
            .with_weight_hh_init(Init::Orthogonal)
            .init_seeded(7)
            .unwrap();
        let gram = |w: &[f64], rows: usize, cols: usize, by_rows: bool| {
            let n = if by_rows { rows } else { cols };
            let at = |v: usize, k: usize| {
                if by_rows {
                    w[v * cols + k]
                } else {
                    w[k * cols + v]
                }
            };
            let len = if by_rows { cols } else { rows };
            for a in 0..n {
                for b in 0..n {
                    let dot: f64 = (0..len).map(|k| at(a, k) * at(b, k)).sum();
                    let expected = if a == b { 1.0 } else { 0.0 };
                    assert!((dot - expected).abs() < 1e-12, "({a}, {b}): {dot}");
                }
            }
        };
        let w_hh = cell.params.weight_hh();
        assert_eq!(w_hh.shape(), &[4 * h, p]);
        for block in w_hh.as_slice().chunks_exact(h * p) {
            gram(block, h, p, false);
        }
        let w_hr = cell.params.extra(PROJECTION).unwrap();
        gram(w_hr.as_slice(), p, h, true);
    }
}
