//! The gated recurrent unit (Cho et al., 2014) in PyTorch's variant, as `nn.GRUCell`.

use core::fmt;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::kernels::{broadcast_bias, recurrent_product, recurrent_product_backward};
use super::{check_hidden_size, display_cell, kernels, BackwardStep, Cell, CellParams, Init};
use crate::error::Result;
use crate::float::Float;
use crate::linalg::{MatMut, MatRef};
use crate::state::StatePart;
use crate::tensor::checked_size;

/// Gates of a GRU, in PyTorch's packed order `r, z, n`.
const GATES: usize = 3;

/// Configuration of a [`GruCell`]: `GruCellConfig::new(input_size, hidden_size)`, then `with_*`
/// options, then [`init`](GruCellConfig::init).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GruCellConfig {
    input_size: usize,
    hidden_size: usize,
    bias: bool,
    weight_ih_init: Init,
    weight_hh_init: Init,
}

impl GruCellConfig {
    /// A GRU cell reading `input_size` features into `hidden_size` units.
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        GruCellConfig {
            input_size,
            hidden_size,
            bias: true,
            weight_ih_init: Init::Default,
            weight_hh_init: Init::Default,
        }
    }

    /// Whether the cell has the biases `bias_ih` and `bias_hh`. Defaults to `true`.
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_bias(self, bias: bool) -> Self {
        GruCellConfig { bias, ..self }
    }

    /// How `weight_ih (3H, I)` is initialised; see [`Init`]. Defaults to [`Init::Default`].
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_weight_ih_init(self, weight_ih_init: Init) -> Self {
        GruCellConfig {
            weight_ih_init,
            ..self
        }
    }

    /// How `weight_hh (3H, H)` is initialised; see [`Init`]. Defaults to [`Init::Default`].
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_weight_hh_init(self, weight_hh_init: Init) -> Self {
        GruCellConfig {
            weight_hh_init,
            ..self
        }
    }

    /// A cell with its weights drawn from `rng` by the chosen [`Init`]s (PyTorch's default
    /// `U(−1/√H, 1/√H)` unless set) and its biases by PyTorch's default, in the order
    /// `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`.
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidArgument`] if `hidden_size` is 0;
    /// [`crate::Error::SizeOverflow`] or [`crate::Error::Allocation`] for sizes beyond the
    /// machine.
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::rand::{rngs::StdRng, SeedableRng};
    /// use recurrent::{Cell, GruCellConfig};
    ///
    /// let mut rng = StdRng::seed_from_u64(0);
    /// let cell = GruCellConfig::new(3, 5).init::<f32>(&mut rng)?;
    /// assert_eq!(cell.params().weight_hh().shape(), &[15, 5]);
    /// assert!(GruCellConfig::new(3, 0).init::<f32>(&mut rng).is_err());
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn init<T: Float>(&self, rng: &mut (impl Rng + ?Sized)) -> Result<GruCell<T>> {
        let h = self.hidden_size;
        check_hidden_size(h)?;
        let gw = checked_size("gru gates", &[GATES, h])?;
        let inits = [self.weight_ih_init, self.weight_hh_init];
        let params = CellParams::init_with(gw, self.input_size, h, h, self.bias, inits, rng)?;
        Ok(GruCell::new_unchecked(self.input_size, h, params))
    }

    /// [`init`](GruCellConfig::init) from `StdRng::seed_from_u64(seed)`.
    ///
    /// # Errors
    ///
    /// As [`init`](GruCellConfig::init).
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::rand::{rngs::StdRng, SeedableRng};
    /// use recurrent::{GruCell, GruCellConfig};
    ///
    /// let config = GruCellConfig::new(3, 5);
    /// let a: GruCell<f64> = config.init_seeded(7)?;
    /// assert_eq!(a, config.init(&mut StdRng::seed_from_u64(7))?);
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn init_seeded<T: Float>(&self, seed: u64) -> Result<GruCell<T>> {
        self.init(&mut StdRng::seed_from_u64(seed))
    }
}

/// A GRU cell with PyTorch's parameterisation.
///
/// ```text
/// r  = σ(W_ir x + b_ir + W_hr h + b_hr)
/// z  = σ(W_iz x + b_iz + W_hz h + b_hz)
/// n  = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
/// h' = (1 − z) ⊙ n + z ⊙ h
/// ```
///
/// The reset gate multiplies the hidden projection *including its bias*: this is PyTorch's
/// form (the "reset after" variant of [arXiv:1406.1078v3](https://arxiv.org/abs/1406.1078v3)),
/// not the original one of v1. The gates are packed in the order `r, z, n` into
/// `weight_ih (3H, I)`, `weight_hh (3H, H)`, `bias_ih (3H)` and `bias_hh (3H)`, as in
/// [`torch.nn.GRU`](https://pytorch.org/docs/stable/generated/torch.nn.GRU.html).
///
/// # Examples
///
/// ```
/// use recurrent::rand::{rngs::StdRng, SeedableRng};
/// use recurrent::{Cell, GruCell, GruCellConfig, Tensor};
///
/// let cell: GruCell<f32> = GruCellConfig::new(3, 5).init(&mut StdRng::seed_from_u64(0))?;
/// let (next, _trace) = cell.forward(&Tensor::zeros(&[2, 3]), None)?;
/// assert_eq!(next.h().shape(), &[2, 5]);
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct GruCell<T> {
    input_size: usize,
    hidden_size: usize,
    params: CellParams<T>,
    layout: [StatePart; 1],
}

impl<T: Float> GruCell<T> {
    /// A cell with the given parameters (for example loaded from PyTorch).
    ///
    /// # Errors
    ///
    /// [`crate::Error::ShapeMismatch`] naming the first parameter whose shape is not
    /// `weight_ih (3H, I)`, `weight_hh (3H, H)`, `bias_* (3H)`;
    /// [`crate::Error::InvalidArgument`] for `hidden_size = 0`.
    pub fn from_params(
        input_size: usize,
        hidden_size: usize,
        params: CellParams<T>,
    ) -> Result<Self> {
        check_hidden_size(hidden_size)?;
        let gw = checked_size("gru gates", &[GATES, hidden_size])?;
        params.validate(gw, input_size, hidden_size)?;
        Ok(GruCell::new_unchecked(input_size, hidden_size, params))
    }

    fn new_unchecked(input_size: usize, hidden_size: usize, mut params: CellParams<T>) -> Self {
        params.renew_version();
        GruCell {
            input_size,
            hidden_size,
            params,
            layout: [StatePart::new("h", hidden_size)],
        }
    }
}

impl<T: Float> Cell<T> for GruCell<T> {
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

    /// Saved per sample: the gates `r, z, n` and the hidden projection `W_hn h + b_hn`.
    fn saved_width(&self) -> usize {
        (GATES + 1) * self.hidden_size
    }

    fn separate_hidden_grad(&self) -> bool {
        true
    }

    fn params(&self) -> &CellParams<T> {
        &self.params
    }

    fn params_mut(&mut self) -> &mut CellParams<T> {
        &mut self.params
    }

    fn step(&self, batch: usize, p: &[T], prev: &[T], next: &mut [T], saved: &mut [T]) {
        let h = self.hidden_size;
        let (gw, sw) = (GATES * h, (GATES + 1) * h);
        debug_assert_eq!(p.len(), batch * gw);
        debug_assert_eq!(prev.len(), batch * h);
        debug_assert_eq!(saved.len(), batch * sw);
        // hidden projection ← b_hh + h·W_hhᵀ, written straight into the saved rows
        broadcast_bias(self.params.bias_hh(), batch, gw, saved, sw);
        recurrent_product(
            &self.params,
            MatRef::new(prev, batch, h),
            T::one(),
            MatMut::strided(saved, batch, gw, sw, 1),
        );
        let one = T::one();
        for b in 0..batch {
            let p = &p[b * gw..][..gw];
            let s = &mut saved[b * sw..][..sw];
            let h_prev = &prev[b * h..][..h];
            let h_next = &mut next[b * h..][..h];
            // s = [W_hr h + b_hr, W_hz h + b_hz, W_hn h + b_hn, (free)]
            let (rz, rest) = s.split_at_mut(2 * h);
            rz.iter_mut().zip(p).for_each(|(v, &p)| *v = *v + p);
            // r, z = σ(·)
            kernels::sigmoid(rz);
            let (r, z) = rz.split_at(h);
            let (n, hn) = rest.split_at_mut(h);
            // keep W_hn h + b_hn for backward; n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
            hn.copy_from_slice(n);
            for j in 0..h {
                n[j] = p[2 * h + j] + r[j] * hn[j];
            }
            kernels::tanh(n);
            // h' = (1 − z) ⊙ n + z ⊙ h
            for j in 0..h {
                h_next[j] = (one - z[j]) * n[j] + z[j] * h_prev[j];
            }
        }
    }

    fn step_backward(&self, step: BackwardStep<'_, T>, _grads: &mut CellParams<T>) {
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
        gate_gradients(h, saved, prev, d_next, d_p, d_hp, d_prev);
        // dh_prev += d_hidden_projection·W_hh
        recurrent_product_backward(
            &self.params,
            MatRef::new(d_hp, batch, GATES * h),
            T::one(),
            MatMut::new(d_prev, batch, h),
        );
    }
}

/// The gradients of the gate pre-activations of every row, `d_p` (input side) and `d_hp`
/// (hidden side, where the reset gate scales the `n` block), and the part of `d_prev` that
/// does not go through `W_hh`. The slices are this function's arguments so that the compiler
/// knows they do not overlap and vectorises the loop (`&mut` fields of a struct do not tell it).
fn gate_gradients<T: Float>(
    h: usize,
    saved: &[T],
    prev: &[T],
    d_next: &[T],
    d_p: &mut [T],
    d_hp: &mut [T],
    d_prev: &mut [T],
) {
    let (gw, sw) = (GATES * h, (GATES + 1) * h);
    let one = T::one();
    for b in 0..d_next.len() / h {
        let s = &saved[b * sw..][..sw];
        let h_prev = &prev[b * h..][..h];
        let dh = &d_next[b * h..][..h];
        let (dgi, dgh) = (&mut d_p[b * gw..][..gw], &mut d_hp[b * gw..][..gw]);
        let dh_prev = &mut d_prev[b * h..][..h];
        for j in 0..h {
            let (r, z, n, hn) = (s[j], s[h + j], s[2 * h + j], s[3 * h + j]);
            // h' = (1 − z)·n + z·h; dtanh/dx = 1 − tanh²
            let dn = dh[j] * (one - z) * (one - n * n);
            // dσ/dx = σ(1 − σ)
            let dz = dh[j] * (h_prev[j] - n) * z * (one - z);
            // n = tanh(x_n + r·hn): dr = dn·hn
            let dr = dn * hn * r * (one - r);
            (dgi[j], dgi[h + j], dgi[2 * h + j]) = (dr, dz, dn);
            (dgh[j], dgh[h + j], dgh[2 * h + j]) = (dr, dz, dn * r);
            dh_prev[j] = dh[j] * z;
        }
    }
}

impl<T: Float> fmt::Display for GruCell<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        display_cell(
            f,
            "GruCell",
            self.input_size,
            self.hidden_size,
            None,
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

    /// The parameters keep `weight_hhᵀ` packed for the per-step product; changing `weight_hh`
    /// through `params_mut` must not leave the step on the old copy.
    #[test]
    fn changing_weight_hh_refreshes_its_transposed_copy() {
        let rng = &mut StdRng::seed_from_u64(4);
        let mut cell: GruCell<f64> = GruCellConfig::new(2, 3).init(rng).unwrap();
        let x = crate::Tensor::randn(&[2, 2], rng);
        let h = State::from_h(crate::Tensor::randn(&[2, 3], rng));
        let (before, _) = cell.forward(&x, Some(&h)).unwrap();
        cell.params_mut().weight_hh_mut().as_mut_slice()[4] += 1.0;
        let (after, _) = cell.forward(&x, Some(&h)).unwrap();
        let fresh = GruCell::from_params(2, 3, cell.params().clone()).unwrap();
        assert_ne!(before, after);
        assert_eq!(after, fresh.forward(&x, Some(&h)).unwrap().0);
    }

    /// One step with I = H = 1, `W_ih = [0.1, 0.2, 0.3]`, `W_hh = [0.5, −0.5, 0.25]`, every
    /// bias 0.05, x = 0.5, h = 0.2:
    ///
    /// ```text
    /// r  = σ(0.05 + 0.05 + 0.1 + 0.05)   = σ(0.25) = 0.562177
    /// z  = σ(0.1 + 0.05 − 0.1 + 0.05)    = σ(0.10) = 0.524979
    /// n  = tanh(0.15 + 0.05 + r·(0.05 + 0.05)) = tanh(0.256218) = 0.250754
    /// h' = (1 − z)·n + z·h = 0.119114 + 0.104996 = 0.224109
    /// ```
    #[test]
    fn one_step_by_hand() {
        let params = CellParams::new(
            t(&[0.1, 0.2, 0.3], &[3, 1]),
            t(&[0.5, -0.5, 0.25], &[3, 1]),
            Some(t(&[0.05; 3], &[3])),
            Some(t(&[0.05; 3], &[3])),
        );
        let cell = GruCell::from_params(1, 1, params).unwrap();
        let state = State::from_h(t(&[0.2], &[1, 1]));
        let (next, _) = cell.forward(&t(&[0.5], &[1, 1]), Some(&state)).unwrap();
        approx::assert_relative_eq!(
            next.h().as_slice()[0],
            0.22410938866284716,
            max_relative = 1e-14
        );
    }

    #[test]
    fn display_is_one_line() {
        let cell: GruCell<f32> = GruCellConfig::new(2, 3)
            .init(&mut StdRng::seed_from_u64(1))
            .unwrap();
        assert_eq!(
            cell.to_string(),
            "GruCell { input_size: 2, hidden_size: 3, bias: true, params: 63 }"
        );
    }
}
