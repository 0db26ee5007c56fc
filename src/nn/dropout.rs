//! Inverted dropout, as PyTorch's `nn.Dropout` in training mode.

use core::fmt;

use rand::{rngs::StdRng, Rng, SeedableRng};

use crate::error::{check_shape, Error, Result};
use crate::float::Float;
use crate::mode::Mode;
use crate::nn::{Layer, LayerGrads};
use crate::params::{NamedTensors, Parameters};
use crate::tensor::Tensor;

/// Inverted dropout: during training each element is zeroed with probability `p` and the kept
/// ones are scaled by `1/(1 − p)`, so that the expected output is the input, as
/// [`torch.nn.Dropout`](https://pytorch.org/docs/stable/generated/torch.nn.Dropout.html).
///
/// ```text
/// y = x ⊙ m,   m_i = 0 with probability p, 1/(1 − p) otherwise
/// ```
///
/// As a [`Layer`], it drops in [`Mode::Train`], with the mask drawn from the mode's seed alone,
/// and passes its input through in [`Mode::Eval`] (PyTorch's `model.eval()`).
/// [`forward_with_rng`](Dropout::forward_with_rng) draws the mask from a generator of your
/// own instead, for [`backward_with_mask`](Dropout::backward_with_mask). With `p = 0` the
/// input is returned unchanged and nothing is drawn.
///
/// The layer has no parameters and no state; the mask is a value, so one layer can serve
/// several threads.
///
/// # Examples
///
/// ```
/// use recurrent::rand::{rngs::StdRng, SeedableRng};
/// use recurrent::{DropoutConfig, Tensor};
///
/// let dropout = DropoutConfig::new(0.5).init()?;
/// let x = Tensor::<f32>::full(&[4, 8], 3.0);
/// let (y, mask) = dropout.forward_with_rng(&x, &mut StdRng::seed_from_u64(0));
/// assert!(y.as_slice().iter().all(|&v| v == 0.0 || v == 6.0));
///
/// // dL/dx = dL/dy ⊙ m
/// let dx = dropout.backward_with_mask(&mask, &Tensor::full(&[4, 8], 1.0))?;
/// assert_eq!(dx.as_slice(), mask.as_tensor().as_slice());
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dropout {
    p: f64,
}

/// The multipliers that one [`Dropout::forward_with_rng`] call applied: `0` for a dropped element,
/// `1/(1 − p)` for a kept one, in the shape of the input.
#[derive(Debug, Clone, PartialEq)]
pub struct DropoutMask<T> {
    scale: Tensor<T>,
}

/// Configuration of a [`Dropout`] layer: `DropoutConfig::new(p)`, then
/// [`init`](DropoutConfig::init), as PyTorch's `nn.Dropout(p)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DropoutConfig {
    p: f64,
}

impl DropoutConfig {
    /// Dropout that zeroes each element with probability `p` (checked by
    /// [`init`](DropoutConfig::init)).
    pub fn new(p: f64) -> Self {
        DropoutConfig { p }
    }

    /// The layer.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] unless `0 ≤ p < 1` (NaN included). PyTorch accepts `p = 1`
    /// and then returns zeros; here it is rejected, since such a layer cuts every gradient and
    /// its scale `1/(1 − p)` is undefined.
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::DropoutConfig;
    ///
    /// assert_eq!(DropoutConfig::new(0.2).init()?.p(), 0.2);
    /// let e = DropoutConfig::new(1.0).init().unwrap_err();
    /// assert_eq!(e.to_string(), "invalid dropout probability: 1 is not in [0, 1)");
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn init(&self) -> Result<Dropout> {
        check_probability("dropout probability", self.p)?;
        Ok(Dropout { p: self.p })
    }
}

impl Dropout {
    /// The probability of zeroing an element.
    pub fn p(&self) -> f64 {
        self.p
    }

    /// The training pass: draws a mask and returns `x ⊙ mask` with the mask.
    ///
    /// Every element takes one `f64` from `rng`, in row-major order, and is dropped when it is
    /// below `p`; so the mask is a function of the generator's state and of `x`'s length, and
    /// a seeded generator gives the same mask on every run. With `p = 0` nothing is drawn.
    ///
    /// # Shapes
    ///
    /// - `x`: any
    /// - output and mask: the shape of `x`
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::rand::{rngs::StdRng, SeedableRng};
    /// use recurrent::{DropoutConfig, Tensor};
    ///
    /// let dropout = DropoutConfig::new(0.3).init()?;
    /// let x = Tensor::<f64>::randn(&[5, 2, 4], &mut StdRng::seed_from_u64(1));
    /// let (a, _) = dropout.forward_with_rng(&x, &mut StdRng::seed_from_u64(7));
    /// let (b, mask) = dropout.forward_with_rng(&x, &mut StdRng::seed_from_u64(7));
    /// assert_eq!(a, b);
    /// assert_eq!(mask.apply(&x)?, a);
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn forward_with_rng<T: Float, R: Rng + ?Sized>(
        &self,
        x: &Tensor<T>,
        rng: &mut R,
    ) -> (Tensor<T>, DropoutMask<T>) {
        let scale = dropout_scale(x.shape(), self.p, rng);
        let mask = DropoutMask { scale };
        let y = mask.apply_unchecked(x);
        (y, mask)
    }

    /// The gradient of a loss with respect to the input of the [`forward_with_rng`](Dropout::forward_with_rng)
    /// call that made `mask`: `dL/dx = d_output ⊙ mask`.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if `d_output` does not have the mask's shape, naming both.
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::rand::{rngs::StdRng, SeedableRng};
    /// use recurrent::{DropoutConfig, Tensor};
    ///
    /// let dropout = DropoutConfig::new(0.5).init()?;
    /// let (_, mask) = dropout.forward_with_rng(&Tensor::<f64>::zeros(&[2, 3]), &mut StdRng::seed_from_u64(0));
    /// let dx = dropout.backward_with_mask(&mask, &Tensor::full(&[2, 3], 0.5))?;
    /// assert!(dx.as_slice().iter().all(|&g| g == 0.0 || g == 1.0));
    /// let e = dropout.backward_with_mask(&mask, &Tensor::zeros(&[3, 2])).unwrap_err();
    /// assert_eq!(e.to_string(), "shape mismatch in dropout d_output: expected [2, 3], got [3, 2]");
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn backward_with_mask<T: Float>(
        &self,
        mask: &DropoutMask<T>,
        d_output: &Tensor<T>,
    ) -> Result<Tensor<T>> {
        check_shape(
            "dropout d_output",
            mask.scale.raw_shape(),
            d_output.raw_shape(),
        )?;
        // dy/dx = m
        Ok(mask.apply_unchecked(d_output))
    }
}

impl<T: Float> DropoutMask<T> {
    /// `x ⊙ mask`: the same dropout applied to another tensor of the same shape (for example
    /// to recompute a forward pass with a fixed mask).
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if `x` does not have the mask's shape, naming both.
    pub fn apply(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        check_shape("dropout mask", self.scale.raw_shape(), x.raw_shape())?;
        Ok(self.apply_unchecked(x))
    }

    /// The multipliers: `0` where an element was dropped, `1/(1 − p)` where it was kept.
    pub fn as_tensor(&self) -> &Tensor<T> {
        &self.scale
    }

    /// `x ⊙ mask` for `x` of the mask's shape.
    fn apply_unchecked(&self, x: &Tensor<T>) -> Tensor<T> {
        debug_assert_eq!(x.shape(), self.scale.shape());
        let mut y = x.clone();
        y.as_mut_slice()
            .iter_mut()
            .zip(self.scale.as_slice())
            .for_each(|(v, &m)| *v = *v * m);
        y
    }
}

/// `Dropout` as a [`Layer`]: in training mode the mask is drawn from the mode's seed alone
/// (a `StdRng` seeded with it, one `f64` per element as [`Dropout::forward_with_rng`] draws); in
/// evaluation mode the input passes through and nothing is drawn.
impl<T: Float> Layer<T> for Dropout {
    type Input = Tensor<T>;
    type Output = Tensor<T>;
    type InputGrad = Tensor<T>;
    type OutputGrad = Tensor<T>;
    /// The mask of a training pass; `None` in evaluation.
    type Trace = Option<DropoutMask<T>>;

    fn forward(&self, input: &Tensor<T>, mode: Mode) -> Result<(Tensor<T>, Self::Trace)> {
        match mode {
            Mode::Train { seed } if self.p > 0.0 => {
                let (y, mask) =
                    Dropout::forward_with_rng(self, input, &mut StdRng::seed_from_u64(seed));
                Ok((y, Some(mask)))
            }
            _ => Ok((input.clone(), None)),
        }
    }

    fn backward(
        &self,
        mask: &Self::Trace,
        d_output: &Tensor<T>,
    ) -> Result<LayerGrads<T, Tensor<T>>> {
        let input = match mask {
            Some(mask) => Dropout::backward_with_mask(self, mask, d_output)?,
            None => d_output.clone(),
        };
        Ok(LayerGrads {
            input,
            params: NamedTensors::new(),
        })
    }
}

impl<T: Float> Parameters<T> for Dropout {
    fn visit_params(&self, _: &mut dyn FnMut(&str, &Tensor<T>)) {}

    fn visit_params_mut(&mut self, _: &mut dyn FnMut(&str, &mut Tensor<T>)) {}
}

impl fmt::Display for Dropout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dropout {{ p: {} }}", self.p)
    }
}

/// Inverted-dropout multipliers of shape `dims`: each element is `0` with probability `p`
/// and `1/(1 − p)` otherwise. Every element takes one `f64` from `rng` in row-major order
/// and is dropped when it is below `p`; with `p = 0` nothing is drawn. `p` is checked by
/// the callers (`0 ≤ p < 1`).
pub(crate) fn dropout_scale<T: Float, R: Rng + ?Sized>(
    dims: &[usize],
    p: f64,
    rng: &mut R,
) -> Tensor<T> {
    let mut scale = Tensor::full(dims, T::one());
    if p > 0.0 {
        let keep = T::from_f64(1.0 / (1.0 - p));
        for v in scale.as_mut_slice() {
            *v = if rng.random::<f64>() < p {
                T::zero()
            } else {
                keep
            };
        }
    }
    scale
}

/// Returns an [`Error::InvalidArgument`] for `name` unless `0 ≤ p < 1` (a dropout
/// probability; NaN is rejected).
pub(crate) fn check_probability(name: &'static str, p: f64) -> Result<()> {
    if (0.0..1.0).contains(&p) {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            name,
            reason: format!("{p} is not in [0, 1)"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn kept_elements_are_scaled_by_one_over_one_minus_p() {
        let dropout = DropoutConfig::new(0.25).init().unwrap();
        let x = Tensor::<f64>::full(&[100, 40], 3.0);
        let (y, mask) = dropout.forward_with_rng(&x, &mut StdRng::seed_from_u64(3));
        let kept = y.as_slice().iter().filter(|&&v| v != 0.0).count();
        assert!(y.as_slice().iter().all(|&v| v == 0.0 || v == 4.0));
        // 3000 expected of 4000; a binomial with σ ≈ 27
        assert!((2850..=3150).contains(&kept), "{kept}");
        assert_eq!(mask.as_tensor().as_slice()[0] * 3.0, y.as_slice()[0]);
        assert_eq!(dropout.to_string(), "Dropout { p: 0.25 }");
    }

    #[test]
    fn p_zero_is_the_identity_and_draws_nothing() {
        let x = Tensor::<f32>::randn(&[3, 4], &mut StdRng::seed_from_u64(0));
        let mut rng = StdRng::seed_from_u64(5);
        let (y, mask) = DropoutConfig::new(0.0)
            .init()
            .unwrap()
            .forward_with_rng(&x, &mut rng);
        assert_eq!(y, x);
        assert!(mask.as_tensor().as_slice().iter().all(|&m| m == 1.0));
        assert_eq!(
            rng.random::<u64>(),
            StdRng::seed_from_u64(5).random::<u64>()
        );
    }

    #[test]
    fn backward_is_the_mask() {
        let dropout = DropoutConfig::new(0.5).init().unwrap();
        let x = Tensor::<f64>::randn(&[2, 3, 4], &mut StdRng::seed_from_u64(0));
        let (_, mask) = dropout.forward_with_rng(&x, &mut StdRng::seed_from_u64(1));
        let g = Tensor::randn(&[2, 3, 4], &mut StdRng::seed_from_u64(2));
        let dx = dropout.backward_with_mask(&mask, &g).unwrap();
        for ((&d, &gi), &m) in dx
            .as_slice()
            .iter()
            .zip(g.as_slice())
            .zip(mask.as_tensor().as_slice())
        {
            assert_eq!(d, gi * m);
        }
        let e = dropout
            .backward_with_mask(&mask, &Tensor::zeros(&[2, 4, 3]))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "shape mismatch in dropout d_output: expected [2, 3, 4], got [2, 4, 3]"
        );
        let e = mask.apply(&Tensor::zeros(&[24])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "shape mismatch in dropout mask: expected [2, 3, 4], got [24]"
        );
    }

    #[test]
    fn probabilities_outside_zero_one_are_rejected() {
        for p in [-0.1, 1.0, 1.5, f64::NAN, f64::INFINITY] {
            let e = DropoutConfig::new(p).init().unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::InvalidArgument {
                        name: "dropout probability",
                        ..
                    }
                ),
                "{p}: {e}"
            );
        }
        assert_eq!(
            DropoutConfig::new(-0.1).init().unwrap_err().to_string(),
            "invalid dropout probability: -0.1 is not in [0, 1)"
        );
    }
}
