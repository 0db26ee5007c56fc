//! Loss functions, each returning its value and its gradient with respect to the prediction
//! together: [`mse_loss`] and [`binary_cross_entropy_with_logits`] with PyTorch's default
//! `reduction='mean'`, and the configurable [`CrossEntropyLoss`] (`cross_entropy.rs`).

mod cross_entropy;

pub use cross_entropy::{CrossEntropyLoss, PerPosition, Reduction};

use crate::error::{check_shape, Error, Result};
use crate::float::Float;
use crate::tensor::Tensor;

/// The value of a loss and its gradient `dL/d(prediction)`, the shape of the prediction: the
/// `d_output` to hand to the backward pass of the layer that made the prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct Loss<T> {
    /// The loss: averaged over its elements (or samples) as PyTorch's `reduction='mean'`, or
    /// summed with [`Reduction::Sum`].
    pub value: T,
    /// `dL/d(prediction)`.
    pub grad: Tensor<T>,
}

/// The mean squared error, PyTorch's `F.mse_loss(prediction, target)`:
///
/// ```text
/// L = Σ (p − t)² / n,   dL/dp = 2 (p − t) / n
/// ```
///
/// over the `n` elements. An empty prediction gives a NaN value, as in PyTorch.
///
/// # Errors
///
/// [`Error::ShapeMismatch`] if `target` does not have the shape of `prediction`, naming both
/// (PyTorch would broadcast, with a warning).
///
/// # Examples
///
/// ```
/// use recurrent::{mse_loss, Tensor};
///
/// let p = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[3])?;
/// let t = Tensor::from_vec(vec![1.5, 2.0, 1.0], &[3])?;
/// let loss = mse_loss(&p, &t)?;
/// assert!((loss.value - (0.25 + 4.0) / 3.0).abs() < 1e-15);
/// assert_eq!(loss.grad.as_slice()[1], 0.0);
///
/// let e = mse_loss(&p, &Tensor::zeros(&[3, 1])).unwrap_err();
/// assert_eq!(e.to_string(), "shape mismatch in mse_loss target: expected [3], got [3, 1]");
/// # Ok::<(), recurrent::Error>(())
/// ```
pub fn mse_loss<T: Float>(prediction: &Tensor<T>, target: &Tensor<T>) -> Result<Loss<T>> {
    check_shape(
        "mse_loss target",
        prediction.raw_shape(),
        target.raw_shape(),
    )?;
    let n = T::from_f64(prediction.len() as f64);
    let two_over_n = T::from_f64(2.0) / n;
    let mut grad = prediction.zeros_like();
    let mut sum = T::zero();
    for ((g, &p), &t) in grad
        .as_mut_slice()
        .iter_mut()
        .zip(prediction.as_slice())
        .zip(target.as_slice())
    {
        let d = p - t;
        sum = sum + d * d;
        // d(d²)/dp = 2d
        *g = two_over_n * d;
    }
    Ok(Loss {
        value: sum / n,
        grad,
    })
}

/// Binary cross-entropy on logits, PyTorch's
/// `F.binary_cross_entropy_with_logits(logits, targets)`, in the stable form that never takes
/// the exponential of a positive number:
///
/// ```text
/// ℓ(x, y) = max(x, 0) − x·y + log(1 + e^(−|x|))   (= −y·log σ(x) − (1 − y)·log(1 − σ(x)))
/// L = Σ ℓ / n,   dL/dx = (σ(x) − y) / n
/// ```
///
/// over the `n` elements. The targets are probabilities: labels 0 and 1, or soft labels
/// between. An empty input gives a NaN value, as in PyTorch.
///
/// # Errors
///
/// [`Error::ShapeMismatch`] if `targets` does not have the shape of `logits`, naming both;
/// [`Error::InvalidArgument`] if a target is not in `[0, 1]` (or is NaN), naming it and its
/// position.
///
/// # Examples
///
/// ```
/// use recurrent::{binary_cross_entropy_with_logits, Tensor};
///
/// let x = Tensor::from_vec(vec![0.5f64, -1.0], &[2])?;
/// let y = Tensor::from_vec(vec![1.0, 0.0], &[2])?;
/// let loss = binary_cross_entropy_with_logits(&x, &y)?;
/// // (log(1 + e^−0.5) + log(1 + e^−1)) / 2
/// assert!((loss.value - 0.393_669_335_849_164_75).abs() < 1e-15);
///
/// // confidently wrong: ℓ = 1000 for both, without overflow
/// let wrong = Tensor::from_vec(vec![-1000.0, 1000.0], &[2])?;
/// assert_eq!(binary_cross_entropy_with_logits(&wrong, &y)?.value, 1000.0);
/// # Ok::<(), recurrent::Error>(())
/// ```
pub fn binary_cross_entropy_with_logits<T: Float>(
    logits: &Tensor<T>,
    targets: &Tensor<T>,
) -> Result<Loss<T>> {
    check_shape(
        "binary_cross_entropy_with_logits targets",
        logits.raw_shape(),
        targets.raw_shape(),
    )?;
    if let Some((i, &y)) = targets
        .as_slice()
        .iter()
        .enumerate()
        .find(|(_, &y)| !(y >= T::zero() && y <= T::one()))
    {
        return Err(Error::InvalidArgument {
            name: "binary cross-entropy target",
            reason: format!("{y} at flat index {i} is not in [0, 1]"),
        });
    }
    let n = T::from_f64(logits.len() as f64);
    let mut grad = logits.zeros_like();
    let mut sum = T::zero();
    for ((g, &x), &y) in grad
        .as_mut_slice()
        .iter_mut()
        .zip(logits.as_slice())
        .zip(targets.as_slice())
    {
        sum = sum + x.max(T::zero()) - x * y + (-x.abs()).exp().ln_1p();
        // dℓ/dx = σ(x) − y
        *g = (x.sigmoid() - y) / n;
    }
    Ok(Loss {
        value: sum / n,
        grad,
    })
}

/// Cross-entropy of class logits against class indices, PyTorch's
/// `F.cross_entropy(logits, targets)` for logits `(N, C)` with its defaults (the mean, no
/// weights, nothing ignored, no smoothing): the negative log-likelihood of the log-softmax,
/// computed stably by subtracting each row's maximum:
///
/// ```text
/// ℓ_i = log Σ_c e^(x_ic) − x_i,t_i
/// L = Σ ℓ_i / N,   dL/dx_ic = (softmax(x_i)_c − [c = t_i]) / N
/// ```
///
/// It is `CrossEntropyLoss::new().forward(logits, targets)`; [`CrossEntropyLoss`] adds class
/// weights, an ignored class, label smoothing, other reductions, and sequences `(T, B, C)`
/// with their lengths. An empty batch gives a NaN value, as in PyTorch.
///
/// # Errors
///
/// [`Error::RankMismatch`] unless `logits` is `(N, C)`; [`Error::ShapeMismatch`] unless there
/// are `N` targets, naming both counts; [`Error::InvalidArgument`], naming the target, its
/// position and `C`, unless every target is below `C`.
///
/// # Examples
///
/// ```
/// use recurrent::{cross_entropy_with_logits, Tensor};
///
/// let logits = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 1.0, 1.0, 1.0], &[2, 3])?;
/// let loss = cross_entropy_with_logits(&logits, &[2, 0])?;
/// // (log(e + e² + e³) − 3 + log 3) / 2
/// assert!((loss.value - 0.753_109_126_556_245).abs() < 1e-15);
/// assert_eq!(loss.grad.shape(), &[2, 3]);
///
/// let e = cross_entropy_with_logits(&logits, &[2, 3]).unwrap_err();
/// assert_eq!(
///     e.to_string(),
///     "invalid cross-entropy target: 3 at position 1 is not a class in 0..3"
/// );
/// # Ok::<(), recurrent::Error>(())
/// ```
pub fn cross_entropy_with_logits<T: Float>(
    logits: &Tensor<T>,
    targets: &[usize],
) -> Result<Loss<T>> {
    CrossEntropyLoss::new().forward(logits, targets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_close, t};

    /// The tolerance of the hand-computed values.
    const TOL: f64 = 1e-15;

    /// `p = [1, 2, 3]`, `t = [1.5, 2, 1]`: `d = [−0.5, 0, 2]`, `L = (0.25 + 0 + 4) / 3`,
    /// `dL/dp = 2d/3 = [−1/3, 0, 4/3]`.
    #[test]
    fn mse_by_hand() {
        let loss = mse_loss(&t(&[1.0, 2.0, 3.0], &[3]), &t(&[1.5, 2.0, 1.0], &[3])).unwrap();
        assert_close(&[loss.value], &[4.25 / 3.0], TOL);
        assert_close(loss.grad.as_slice(), &[-1.0 / 3.0, 0.0, 4.0 / 3.0], TOL);
    }

    /// PyTorch's `F.binary_cross_entropy_with_logits(torch.tensor([0.5, -1.0]),
    /// torch.tensor([1.0, 0.0]))`, by the formula:
    ///
    /// ```text
    /// ℓ₁ = max(0.5, 0) − 0.5·1 + log(1 + e^−0.5) = 0.474076984180107
    /// ℓ₂ = max(−1, 0) + 1·0   + log(1 + e^−1)   = 0.313261687518223
    /// L  = (ℓ₁ + ℓ₂) / 2                         = 0.393669335849165
    /// dL/dx = ((σ(0.5) − 1) / 2, (σ(−1) − 0) / 2) = (−0.188770334399073, 0.134470710684998)
    /// ```
    #[test]
    fn bce_with_logits_by_hand() {
        let loss = binary_cross_entropy_with_logits(&t(&[0.5, -1.0], &[2]), &t(&[1.0, 0.0], &[2]))
            .unwrap();
        assert_close(&[loss.value], &[0.393_669_335_849_164_75], TOL);
        assert_close(
            loss.grad.as_slice(),
            &[-0.188_770_334_399_072_7, 0.134_470_710_684_997_55],
            TOL,
        );
    }

    #[test]
    fn bce_with_logits_is_stable_and_checks_targets() {
        let loss = binary_cross_entropy_with_logits(
            &Tensor::<f32>::from_vec(vec![100.0, -100.0, 100.0], &[3]).unwrap(),
            &Tensor::from_vec(vec![1.0, 0.0, 0.0], &[3]).unwrap(),
        )
        .unwrap();
        assert!((loss.value - 100.0 / 3.0).abs() < 1e-4, "{}", loss.value);
        assert!(loss.grad.as_slice().iter().all(|g| g.is_finite()));
        let e = binary_cross_entropy_with_logits(&t(&[0.0, 0.0], &[2]), &t(&[0.0, 1.5], &[2]))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid binary cross-entropy target: 1.5 at flat index 1 is not in [0, 1]"
        );
        let e = binary_cross_entropy_with_logits(&t(&[0.0], &[1]), &t(&[f64::NAN], &[1]));
        assert!(matches!(e, Err(Error::InvalidArgument { .. })));
        let e = binary_cross_entropy_with_logits(&t(&[0.0; 4], &[2, 2]), &t(&[0.0; 4], &[4]))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "shape mismatch in binary_cross_entropy_with_logits targets: expected [2, 2], got [4]"
        );
    }

    /// Logits `[[1, 2, 3], [1, 1, 1]]`, targets `[2, 0]`:
    ///
    /// ```text
    /// ℓ₀ = log(e + e² + e³) − 3 = 3.407605964444380 − 3 = 0.407605964444380
    /// ℓ₁ = log 3                                      = 1.098612288668110
    /// L  = (ℓ₀ + ℓ₁) / 2                              = 0.753109126556245
    /// softmax(x₀) = (0.090030573170380, 0.244728471054798, 0.665240955774822)
    /// dL/dx₀ = (0.045015286585190, 0.122364235527399, −0.167379522112589)
    /// dL/dx₁ = ((1/3 − 1)/2, 1/6, 1/6)
    /// ```
    #[test]
    fn cross_entropy_by_hand() {
        let logits = t(&[1.0, 2.0, 3.0, 1.0, 1.0, 1.0], &[2, 3]);
        let loss = cross_entropy_with_logits(&logits, &[2, 0]).unwrap();
        assert_close(&[loss.value], &[0.753_109_126_556_245], TOL);
        assert_close(
            loss.grad.as_slice(),
            &[
                0.045_015_286_585_190_24,
                0.122_364_235_527_398_85,
                -0.167_379_522_112_589,
                -1.0 / 3.0,
                1.0 / 6.0,
                1.0 / 6.0,
            ],
            TOL,
        );
        // each row of the gradient sums to zero
        for row in loss.grad.as_slice().chunks(3) {
            assert!(row.iter().sum::<f64>().abs() < 1e-16);
        }
    }

    #[test]
    fn cross_entropy_is_stable_and_checks_its_input() {
        let logits = Tensor::<f32>::from_vec(vec![1000.0, 0.0, -1000.0, 0.0], &[2, 2]).unwrap();
        let loss = cross_entropy_with_logits(&logits, &[1, 0]).unwrap();
        assert!((loss.value - 1000.0).abs() < 1e-3, "{}", loss.value);
        assert!(loss.grad.as_slice().iter().all(|g| g.is_finite()));
        let e = cross_entropy_with_logits(&t(&[0.0; 6], &[6]), &[0]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "rank mismatch in cross-entropy logits: expected a rank-2 tensor (N, C), \
             got shape [6]"
        );
        let e = cross_entropy_with_logits(&t(&[0.0; 6], &[2, 3]), &[0, 1, 2]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "shape mismatch in cross-entropy targets: expected [2], got [3]"
        );
        let e = cross_entropy_with_logits(&t(&[0.0; 6], &[3, 2]), &[0, 1, 7]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid cross-entropy target: 7 at position 2 is not a class in 0..2"
        );
    }
}
