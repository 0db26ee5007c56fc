//! The vanilla (Elman) recurrent cell, as PyTorch's `nn.RNNCell`.

use core::fmt;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::kernels::{broadcast_bias, recurrent_product, recurrent_product_backward};
use super::{check_hidden_size, display_cell, BackwardStep, Cell, CellParams, Init};
use crate::error::Result;
use crate::float::Float;
use crate::linalg::{MatMut, MatRef};
use crate::state::StatePart;

/// The non-linearity of an [`RnnCell`], PyTorch's `nonlinearity` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Nonlinearity {
    /// `tanh` (PyTorch's default).
    #[default]
    Tanh,
    /// `max(0, x)`.
    Relu,
}

/// Configuration of an [`RnnCell`]: `RnnCellConfig::new(input_size, hidden_size)`, then `with_*`
/// options, then [`init`](RnnCellConfig::init).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RnnCellConfig {
    input_size: usize,
    hidden_size: usize,
    bias: bool,
    nonlinearity: Nonlinearity,
    weight_ih_init: Init,
    weight_hh_init: Init,
}

impl RnnCellConfig {
    /// A vanilla RNN cell reading `input_size` features into `hidden_size` units.
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        RnnCellConfig {
            input_size,
            hidden_size,
            bias: true,
            nonlinearity: Nonlinearity::Tanh,
            weight_ih_init: Init::Default,
            weight_hh_init: Init::Default,
        }
    }

    /// Whether the cell has the biases `bias_ih` and `bias_hh`. Defaults to `true`.
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_bias(self, bias: bool) -> Self {
        RnnCellConfig { bias, ..self }
    }

    /// The non-linearity. Defaults to [`Nonlinearity::Tanh`].
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_nonlinearity(self, nonlinearity: Nonlinearity) -> Self {
        RnnCellConfig {
            nonlinearity,
            ..self
        }
    }

    /// How `weight_ih (H, I)` is initialised; see [`Init`]. Defaults to [`Init::Default`].
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_weight_ih_init(self, weight_ih_init: Init) -> Self {
        RnnCellConfig {
            weight_ih_init,
            ..self
        }
    }

    /// How `weight_hh (H, H)` is initialised; see [`Init`]. Defaults to [`Init::Default`].
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_weight_hh_init(self, weight_hh_init: Init) -> Self {
        RnnCellConfig {
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
    /// use recurrent::{Cell, RnnCellConfig};
    ///
    /// let mut rng = StdRng::seed_from_u64(0);
    /// let cell = RnnCellConfig::new(3, 5).init::<f32>(&mut rng)?;
    /// assert_eq!(cell.params().weight_hh().shape(), &[5, 5]);
    /// assert!(RnnCellConfig::new(3, 0).init::<f32>(&mut rng).is_err());
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn init<T: Float>(&self, rng: &mut (impl Rng + ?Sized)) -> Result<RnnCell<T>> {
        let h = self.hidden_size;
        let inits = [self.weight_ih_init, self.weight_hh_init];
        let params = CellParams::init_with(h, self.input_size, h, h, self.bias, inits, rng)?;
        Ok(RnnCell::new_unchecked(
            self.input_size,
            h,
            self.nonlinearity,
            params,
        ))
    }

    /// [`init`](RnnCellConfig::init) from `StdRng::seed_from_u64(seed)`.
    ///
    /// # Errors
    ///
    /// As [`init`](RnnCellConfig::init).
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::rand::{rngs::StdRng, SeedableRng};
    /// use recurrent::{RnnCell, RnnCellConfig};
    ///
    /// let config = RnnCellConfig::new(3, 5);
    /// let a: RnnCell<f64> = config.init_seeded(7)?;
    /// assert_eq!(a, config.init(&mut StdRng::seed_from_u64(7))?);
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn init_seeded<T: Float>(&self, seed: u64) -> Result<RnnCell<T>> {
        self.init(&mut StdRng::seed_from_u64(seed))
    }
}

/// A vanilla RNN cell with PyTorch's parameterisation:
///
/// ```text
/// h' = φ(W_ih x + b_ih + W_hh h + b_hh),   φ = tanh or relu
/// ```
///
/// with `weight_ih (H, I)`, `weight_hh (H, H)`, `bias_ih (H)`, `bias_hh (H)`, as in
/// [`torch.nn.RNN`](https://pytorch.org/docs/stable/generated/torch.nn.RNN.html).
///
/// # Examples
///
/// ```
/// use recurrent::rand::{rngs::StdRng, SeedableRng};
/// use recurrent::{Cell, Nonlinearity, RnnCell, RnnCellConfig, Tensor};
///
/// let cell: RnnCell<f64> = RnnCellConfig::new(3, 5)
///     .with_nonlinearity(Nonlinearity::Relu)
///     .init(&mut StdRng::seed_from_u64(0))?;
/// let (next, _trace) = cell.forward(&Tensor::zeros(&[2, 3]), None)?;
/// assert!(next.h().as_slice().iter().all(|&v| v >= 0.0));
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RnnCell<T> {
    input_size: usize,
    hidden_size: usize,
    nonlinearity: Nonlinearity,
    params: CellParams<T>,
    layout: [StatePart; 1],
}

impl<T: Float> RnnCell<T> {
    /// A cell with the given parameters (for example loaded from PyTorch).
    ///
    /// # Errors
    ///
    /// [`crate::Error::ShapeMismatch`] naming the first parameter whose shape is not
    /// `weight_ih (H, I)`, `weight_hh (H, H)`, `bias_* (H)`;
    /// [`crate::Error::InvalidArgument`] for `hidden_size = 0`.
    pub fn from_params(
        input_size: usize,
        hidden_size: usize,
        nonlinearity: Nonlinearity,
        params: CellParams<T>,
    ) -> Result<Self> {
        check_hidden_size(hidden_size)?;
        params.validate(hidden_size, input_size, hidden_size)?;
        Ok(RnnCell::new_unchecked(
            input_size,
            hidden_size,
            nonlinearity,
            params,
        ))
    }

    fn new_unchecked(
        input_size: usize,
        hidden_size: usize,
        nonlinearity: Nonlinearity,
        mut params: CellParams<T>,
    ) -> Self {
        params.renew_version();
        RnnCell {
            input_size,
            hidden_size,
            nonlinearity,
            params,
            layout: [StatePart::new("h", hidden_size)],
        }
    }

    /// The non-linearity.
    pub fn nonlinearity(&self) -> Nonlinearity {
        self.nonlinearity
    }
}

impl<T: Float> Cell<T> for RnnCell<T> {
    fn input_size(&self) -> usize {
        self.input_size
    }

    fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    fn gate_width(&self) -> usize {
        self.hidden_size
    }

    fn state_parts(&self) -> &[StatePart] {
        &self.layout
    }

    /// Nothing is saved: the derivative of φ is a function of `h'`, which the driver keeps.
    fn saved_width(&self) -> usize {
        0
    }

    fn params(&self) -> &CellParams<T> {
        &self.params
    }

    fn params_mut(&mut self) -> &mut CellParams<T> {
        &mut self.params
    }

    fn step(&self, batch: usize, p: &[T], prev: &[T], next: &mut [T], _saved: &mut [T]) {
        let h = self.hidden_size;
        debug_assert_eq!(p.len(), batch * h);
        broadcast_bias(self.params.bias_hh(), batch, h, next, h);
        recurrent_product(
            &self.params,
            MatRef::new(prev, batch, h),
            T::one(),
            MatMut::new(next, batch, h),
        );
        let next = &mut next[..batch * h];
        next.iter_mut().zip(p).for_each(|(v, &p)| *v = *v + p);
        match self.nonlinearity {
            Nonlinearity::Tanh => super::kernels::tanh(next),
            Nonlinearity::Relu => next.iter_mut().for_each(|v| *v = v.max(T::zero())),
        }
    }

    fn step_backward(&self, step: BackwardStep<'_, T>, _grads: &mut CellParams<T>) {
        let BackwardStep {
            batch,
            next,
            d_next,
            d_p,
            d_prev,
            ..
        } = step;
        let h = self.hidden_size;
        let rows = batch * h;
        let (next, d_next) = (&next[..rows], &d_next[..rows]);
        match self.nonlinearity {
            // dtanh/dx = 1 − tanh²
            Nonlinearity::Tanh => d_p[..rows]
                .iter_mut()
                .zip(next.iter().zip(d_next))
                .for_each(|(d, (&y, &dy))| *d = dy * (T::one() - y * y)),
            // drelu/dx = 1 where the output is positive, else 0
            Nonlinearity::Relu => d_p[..rows]
                .iter_mut()
                .zip(next.iter().zip(d_next))
                .for_each(|(d, (&y, &dy))| *d = if y > T::zero() { dy } else { T::zero() }),
        }
        // dh_prev = d_pre·W_hh
        recurrent_product_backward(
            &self.params,
            MatRef::new(d_p, batch, h),
            T::zero(),
            MatMut::new(d_prev, batch, h),
        );
    }
}

impl<T: Float> fmt::Display for RnnCell<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        display_cell(
            f,
            "RnnCell",
            self.input_size,
            self.hidden_size,
            Some(("nonlinearity", &self.nonlinearity)),
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

    fn hand_cell(nonlinearity: Nonlinearity) -> RnnCell<f64> {
        let params = CellParams::new(
            t(&[0.5], &[1, 1]),
            t(&[-0.4], &[1, 1]),
            Some(t(&[0.05], &[1])),
            Some(t(&[0.05], &[1])),
        );
        RnnCell::from_params(1, 1, nonlinearity, params).unwrap()
    }

    /// One step with `W_ih = 0.5`, `W_hh = −0.4`, both biases 0.05, x = 0.5, h = 0.2:
    /// `h' = tanh(0.25 − 0.08 + 0.1) = tanh(0.27) = 0.263625`, and relu gives `0.27`.
    #[test]
    fn one_step_by_hand() {
        let state = State::from_h(t(&[0.2], &[1, 1]));
        let x = t(&[0.5], &[1, 1]);
        let (next, _) = hand_cell(Nonlinearity::Tanh)
            .forward(&x, Some(&state))
            .unwrap();
        approx::assert_relative_eq!(
            next.h().as_slice()[0],
            0.2636248354722033,
            max_relative = 1e-14
        );
        let (next, _) = hand_cell(Nonlinearity::Relu)
            .forward(&x, Some(&state))
            .unwrap();
        approx::assert_relative_eq!(next.h().as_slice()[0], 0.27, max_relative = 1e-14);
    }

    #[test]
    fn relu_blocks_the_gradient_of_negative_units() {
        let cell = hand_cell(Nonlinearity::Relu);
        let x = t(&[-2.0], &[1, 1]);
        let (next, trace) = cell.forward(&x, None).unwrap();
        assert_eq!(next.h().as_slice(), &[0.0]);
        let grads = cell
            .backward(&trace, &State::from_h(t(&[1.0], &[1, 1])))
            .unwrap();
        assert_eq!(grads.input.as_slice(), &[0.0]);
        assert_eq!(grads.params.weight_ih().as_slice(), &[0.0]);
    }

    #[test]
    fn display_is_one_line() {
        let cell: RnnCell<f32> = RnnCellConfig::new(2, 3)
            .init(&mut StdRng::seed_from_u64(1))
            .unwrap();
        assert_eq!(
            cell.to_string(),
            "RnnCell { input_size: 2, hidden_size: 3, nonlinearity: Tanh, bias: true, params: 21 }"
        );
    }
}
