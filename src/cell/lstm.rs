//! The long short-term memory cell (Hochreiter & Schmidhuber, 1997), as PyTorch's `nn.LSTMCell`.

use core::fmt;

use rand::Rng;

use super::kernels::{broadcast_bias, recurrent_product, recurrent_product_backward};
use super::{check_hidden_size, display_cell, kernels, BackwardStep, Cell, CellParams};
use crate::error::{check_shape, or_panic, Error, Result};
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LstmCellConfig {
    input_size: usize,
    hidden_size: usize,
    bias: bool,
    proj_size: usize,
}

impl LstmCellConfig {
    /// An LSTM cell reading `input_size` features into `hidden_size` units.
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        LstmCellConfig {
            input_size,
            hidden_size,
            bias: true,
            proj_size: 0,
        }
    }

    /// Whether the cell has the biases `bias_ih` and `bias_hh`. Defaults to `true`.
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_bias(self, bias: bool) -> Self {
        LstmCellConfig { bias, ..self }
    }

    /// Projects `h` to `proj_size` units with a weight `weight_hr (P, H)`, as PyTorch's
    /// `nn.LSTM(proj_size=P)`: `h' = W_hr (o ⊙ tanh(c'))`. `0` (the default) means no projection.
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_proj_size(self, proj_size: usize) -> Self {
        LstmCellConfig { proj_size, ..self }
    }

    /// A cell with PyTorch's default initialisation `U(−1/√H, 1/√H)` drawn from `rng`.
    ///
    /// # Panics
    ///
    /// Panics if `hidden_size` is 0, if `proj_size` is not smaller than `hidden_size` (as
    /// PyTorch rejects it), or if the sizes are beyond the machine.
    #[track_caller]
    pub fn init<T: Float, R: Rng + ?Sized>(&self, rng: &mut R) -> LstmCell<T> {
        or_panic(self.try_init(rng))
    }

    /// [`LstmCellConfig::init`], returning an error where it panics.
    pub(crate) fn try_init<T: Float, R: Rng + ?Sized>(&self, rng: &mut R) -> Result<LstmCell<T>> {
        let (h, p) = (self.hidden_size, self.proj_size);
        check_hidden_size(h)?;
        check_proj_size(p, h)?;
        let gw = checked_size("lstm gates", &[GATES, h])?;
        let mut params = CellParams::try_init(gw, self.input_size, h, h, self.bias, rng)?;
        if p > 0 {
            // drawn after the square weight_hh, which it replaces, as in earlier versions
            let k = T::one() / T::from_f64(h as f64).sqrt();
            *params.weight_hh_mut() = Tensor::try_uniform("weight_hh", &[gw, p], -k, k, rng)?;
            params = params.with_extra(
                PROJECTION,
                Tensor::try_uniform(PROJECTION, &[p, h], -k, k, rng)?,
            );
        }
        Ok(LstmCell::new_unchecked(self.input_size, h, p, params))
    }
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
/// use rand::{rngs::StdRng, SeedableRng};
/// use recurrent::{Cell, LstmCell, LstmCellConfig, Tensor};
///
/// let cell: LstmCell<f64> = LstmCellConfig::new(3, 5).init(&mut StdRng::seed_from_u64(0));
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
            let out = if projection.is_some() {
                unprojected
            } else {
                h_next
            };
            out.iter_mut()
                .zip(o.iter().zip(tc.iter()))
                .for_each(|(h, (&o, &tc))| *h = o * tc);
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
        let one = T::one();
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
        let cell: LstmCell<f32> = LstmCellConfig::new(2, 3).init(&mut StdRng::seed_from_u64(1));
        assert_eq!(
            cell.to_string(),
            "LstmCell { input_size: 2, hidden_size: 3, bias: true, params: 84 }"
        );
        let cell: LstmCell<f32> = LstmCellConfig::new(2, 3)
            .with_bias(false)
            .init(&mut StdRng::seed_from_u64(1));
        assert_eq!(
            cell.to_string(),
            "LstmCell { input_size: 2, hidden_size: 3, bias: false, params: 60 }"
        );
    }

    #[test]
    fn init_is_within_pytorch_bounds() {
        let cell: LstmCell<f64> = LstmCellConfig::new(7, 16).init(&mut StdRng::seed_from_u64(2));
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
            .init::<f64, _>(&mut StdRng::seed_from_u64(3))
            .params;
        *params.weight_hh_mut() = crate::Tensor::zeros(&[12, 2]);
        let e = LstmCell::from_params(2, 3, params).unwrap_err();
        assert_eq!(
            e.to_string(),
            "shape mismatch in weight_hh: expected [12, 3], got [12, 2]"
        );
    }
}
