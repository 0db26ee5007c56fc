//! Gradient clipping, as PyTorch's `torch.nn.utils.clip_grad_norm_` and `clip_grad_value_`.

use crate::error::{Error, Result};
use crate::float::Float;
use crate::params::NamedTensors;

/// Scales all gradients together so that their total L2 norm is at most `max_norm`, and
/// returns the total norm before clipping, as PyTorch's `clip_grad_norm_`.
///
/// The norm is taken over every element of every gradient, as if they were one vector:
///
/// ```text
/// norm = √(Σ g²)
/// g ← g · min(1, max_norm / (norm + 1e-6))
/// ```
///
/// As in PyTorch, the `1e-6` keeps the division finite and makes a norm just below
/// `max_norm` shrink very slightly; a non-finite norm (a NaN or infinite gradient) makes
/// the scaled gradients NaN, so that the step that follows shows the problem. The sum of
/// squares is accumulated in `f64`.
///
/// Every tensor of `grads` counts. PyTorch clips only the gradients that exist, so a frozen
/// parameter (`requires_grad = False`) has none to count; here, drop the gradients of frozen
/// parameters first with [`NamedTensors::retain`] (the optimiser does not need them), or
/// their norm enters the total.
///
/// # Errors
///
/// [`Error::InvalidArgument`] if `max_norm` is negative or NaN; the gradients are unchanged.
///
/// # Examples
///
/// ```
/// use recurrent::{clip_grad_norm, NamedTensors, Tensor};
///
/// let mut grads = NamedTensors::new();
/// grads.push("weight", Tensor::from_vec(vec![3.0f64, 0.0], &[2])?);
/// grads.push("bias", Tensor::from_vec(vec![4.0], &[1])?);
/// let norm = clip_grad_norm(&mut grads, 1.0)?;
/// assert_eq!(norm, 5.0);
/// let w = grads.get("weight").unwrap().as_slice()[0];
/// assert!((w - 0.6).abs() < 1e-6);
/// # Ok::<(), recurrent::Error>(())
/// ```
pub fn clip_grad_norm<T: Float>(grads: &mut NamedTensors<T>, max_norm: T) -> Result<T> {
    if max_norm.is_nan() || max_norm < T::zero() {
        return Err(Error::InvalidArgument {
            name: "max_norm",
            reason: format!("{max_norm} is not a value >= 0"),
        });
    }
    let sum_of_squares: f64 = grads
        .iter()
        .flat_map(|(_, g)| g.as_slice())
        .map(|&v| v.as_f64() * v.as_f64())
        .sum();
    let norm = T::from_f64(sum_of_squares.sqrt());
    let coef = max_norm / (norm + T::from_f64(1e-6));
    // torch.clamp(coef, max=1.0): NaN stays NaN
    let coef = if coef > T::one() { T::one() } else { coef };
    if coef != T::one() {
        for (_, g) in grads.iter_mut() {
            for v in g.as_mut_slice() {
                *v = *v * coef;
            }
        }
    }
    Ok(norm)
}

/// Clamps every gradient element to `[−clip_value, clip_value]`, as PyTorch's
/// `clip_grad_value_`. NaN elements stay NaN. Gradients of frozen parameters, if `grads` holds
/// them, are clamped too and ignored by the optimiser; [`NamedTensors::retain`] drops them.
///
/// # Errors
///
/// [`Error::InvalidArgument`] if `clip_value` is negative or NaN; the gradients are
/// unchanged.
///
/// # Examples
///
/// ```
/// use recurrent::{clip_grad_value, NamedTensors, Tensor};
///
/// let mut grads = NamedTensors::new();
/// grads.push("weight", Tensor::from_vec(vec![-3.0f32, 0.5, 2.0], &[3])?);
/// clip_grad_value(&mut grads, 1.0)?;
/// assert_eq!(grads.get("weight").unwrap().as_slice(), &[-1.0, 0.5, 1.0]);
/// # Ok::<(), recurrent::Error>(())
/// ```
pub fn clip_grad_value<T: Float>(grads: &mut NamedTensors<T>, clip_value: T) -> Result<()> {
    if clip_value.is_nan() || clip_value < T::zero() {
        return Err(Error::InvalidArgument {
            name: "clip_value",
            reason: format!("{clip_value} is not a value >= 0"),
        });
    }
    for (_, g) in grads.iter_mut() {
        for v in g.as_mut_slice() {
            if *v > clip_value {
                *v = clip_value;
            } else if *v < -clip_value {
                *v = -clip_value;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::vec1;
    use super::*;
    use crate::test_util::assert_close;

    fn grads<T: Float>(a: &[f64], b: &[f64]) -> NamedTensors<T> {
        let mut g = NamedTensors::new();
        g.push("a", vec1(a));
        g.push("b", vec1(b));
        g
    }

    fn values<T: Float>(g: &NamedTensors<T>) -> Vec<f64> {
        g.iter()
            .flat_map(|(_, t)| t.as_slice().iter().map(|v| v.as_f64()))
            .collect()
    }

    /// `‖[1, 2, 2], [4]‖ = √(1 + 4 + 4 + 16) = 5`; with `max_norm = 2.5` every element is scaled
    /// by `2.5 / (5 + 1e-6) = 0.4999999`.
    #[test]
    fn norm_clipping_scales_everything_together() {
        let mut g = grads::<f64>(&[1.0, 2.0, 2.0], &[4.0]);
        let norm = clip_grad_norm(&mut g, 2.5).unwrap();
        assert_eq!(norm, 5.0);
        let c = 2.5 / (5.0 + 1e-6);
        assert_close(&values(&g), &[c, 2.0 * c, 2.0 * c, 4.0 * c], 1e-15);
        let clipped = clip_grad_norm(&mut g, 2.5).unwrap();
        assert!((clipped - 2.5).abs() < 1e-6);
    }

    #[test]
    fn norm_below_the_limit_is_left_alone() {
        let mut g = grads::<f32>(&[0.3], &[-0.4]);
        let norm = clip_grad_norm(&mut g, 1.0).unwrap();
        assert!((norm - 0.5).abs() < 1e-7);
        assert_eq!(values(&g), values(&grads::<f32>(&[0.3], &[-0.4])));
    }

    #[test]
    fn a_zero_limit_zeroes_the_gradients() {
        let mut g = grads::<f64>(&[1.0], &[-1.0]);
        clip_grad_norm(&mut g, 0.0).unwrap();
        assert_eq!(values(&g), [0.0, 0.0]);
        let mut empty = NamedTensors::<f64>::new();
        assert_eq!(clip_grad_norm(&mut empty, 1.0).unwrap(), 0.0);
    }

    #[test]
    fn a_non_finite_norm_propagates_as_pytorch_does() {
        let mut g = grads::<f64>(&[f64::INFINITY], &[1.0]);
        assert_eq!(clip_grad_norm(&mut g, 1.0).unwrap(), f64::INFINITY);
        assert!(values(&g)[0].is_nan());
        let mut g = grads::<f32>(&[f64::NAN], &[1.0]);
        assert!(clip_grad_norm(&mut g, 1.0).unwrap().is_nan());
        assert!(values(&g).iter().all(|v| v.is_nan()));
    }

    #[test]
    fn value_clipping_clamps_each_element() {
        let mut g = grads::<f64>(&[-3.0, 0.5, f64::NAN], &[2.0]);
        clip_grad_value(&mut g, 1.0).unwrap();
        let v = values(&g);
        assert_eq!(v[..2], [-1.0, 0.5]);
        assert!(v[2].is_nan());
        assert_eq!(v[3], 1.0);
    }

    #[test]
    fn invalid_limits_are_rejected_without_change() {
        let mut g = grads::<f64>(&[3.0], &[4.0]);
        for bad in [-1.0, f64::NAN] {
            let e = clip_grad_norm(&mut g, bad).unwrap_err();
            assert!(matches!(
                e,
                Error::InvalidArgument {
                    name: "max_norm",
                    ..
                }
            ));
            let e = clip_grad_value(&mut g, bad).unwrap_err();
            assert!(matches!(
                e,
                Error::InvalidArgument {
                    name: "clip_value",
                    ..
                }
            ));
        }
        assert_eq!(values(&g), [3.0, 4.0]);
    }
}
