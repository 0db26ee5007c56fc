//! [`CrossEntropyLoss`]: PyTorch's `F.cross_entropy` with class weights, an ignored class,
//! label smoothing and a choice of reduction, over rows of logits or over a [`Sequence`] of
//! them.

use crate::error::{check_shape, Error, Result};
use crate::float::Float;
use crate::nn::Sequence;
use crate::tensor::{Shape, Tensor};

use super::Loss;

/// How a loss combines the losses of its positions, PyTorch's `reduction` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reduction {
    /// The weighted mean, `reduction='mean'`: the sum divided by the total weight of the
    /// positions that count (their number, without class weights).
    #[default]
    Mean,
    /// The sum, `reduction='sum'`.
    Sum,
    /// No reduction, `reduction='none'`: one loss per position, returned as a
    /// [`PerPosition`].
    None,
}

/// The losses of every position, unreduced ([`Reduction::None`]), with their gradient.
///
/// `values` holds one loss per position: `(N)` for logits `(N, C)`, `(T, B)` for a sequence
/// `(T, B, C)`; 0 at ignored positions. `grad`, the shape of the logits, is the gradient of
/// `Σ values`: its row at a position is the gradient of that position's loss alone (each loss
/// reads only its own row of logits), zero at ignored positions. For any other function of the
/// values, pass its gradient to [`backward`](PerPosition::backward).
#[derive(Debug, Clone, PartialEq)]
pub struct PerPosition<T> {
    /// The loss of each position, `(N)` or `(T, B)`.
    pub values: Tensor<T>,
    /// `d(Σ values)/d(logits)`, the shape of the logits.
    pub grad: Tensor<T>,
}

impl<T: Float> PerPosition<T> {
    /// `dL/d(logits)` from `dL/d(values)`: each position's row of [`grad`](PerPosition::grad)
    /// scaled by its entry of `d_values`.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] unless `d_values` has the shape of `values`, naming both.
    ///
    /// # Examples
    ///
    /// A loss averaged with weights of one's own, here `(0.25, 0.75)`:
    ///
    /// ```
    /// use recurrent::{CrossEntropyLoss, Reduction, Tensor};
    ///
    /// let logits = Tensor::from_vec(vec![1.0f64, 2.0, 0.0, 0.5], &[2, 2])?;
    /// let ce = CrossEntropyLoss::new().with_reduction(Reduction::None);
    /// let each = ce.forward_per_position(&logits, &[0, 1])?;
    /// let share = Tensor::from_vec(vec![0.25, 0.75], &[2])?;
    /// let value = each.values.dot(&share)?; // 0.25·ℓ₀ + 0.75·ℓ₁
    /// assert!((value - 0.25 * each.values.at(&[0]) - 0.75 * each.values.at(&[1])).abs() < 1e-15);
    /// let d_logits = each.backward(&share)?;
    /// assert!((d_logits.at(&[1, 1]) - 0.75 * each.grad.at(&[1, 1])).abs() < 1e-15);
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn backward(&self, d_values: &Tensor<T>) -> Result<Tensor<T>> {
        check_shape(
            "cross-entropy d_values",
            self.values.raw_shape(),
            d_values.raw_shape(),
        )?;
        let mut grad = self.grad.clone();
        let classes = grad.len().checked_div(self.values.len()).unwrap_or(0);
        if classes > 0 {
            for (row, &d) in grad
                .as_mut_slice()
                .chunks_exact_mut(classes)
                .zip(d_values.as_slice())
            {
                row.iter_mut().for_each(|g| *g = *g * d);
            }
        }
        Ok(grad)
    }
}

/// Cross-entropy of class logits against class indices, PyTorch's
/// `F.cross_entropy(logits, targets, weight, ignore_index, reduction, label_smoothing)`.
///
/// With `p = log_softmax(x)` over the `C` classes of a position, target `t`, class weights
/// `w` (all 1 by default) and label smoothing `ε`, the loss of a position is
///
/// ```text
/// ℓ = (1 − ε) · w_t · (−p_t) + (ε / C) · Σ_c w_c · (−p_c)
/// dℓ/dx_c = (1 − ε) · w_t · (softmax_c − [c = t]) + (ε / C) · (softmax_c · Σ_k w_k − w_c)
/// ```
///
/// that is, the target distribution is `(1 − ε)·one_hot(t) + ε/C` and, as in PyTorch, each
/// class's share of it is weighted by that class's weight. Ignored positions (target equal to
/// the ignored class, or past a sequence's length) have loss 0 and gradient 0.
/// [`Reduction::Mean`] divides the sum by `Σ w_t` over the positions that count (their number,
/// without weights): when every position is ignored that is `0 / 0`, a NaN value with a zero
/// gradient, as in PyTorch.
///
/// Options are plain values; they are checked by the methods that compute, which return an
/// error for a bad one rather than panic.
///
/// # Examples
///
/// Next-token prediction over a padded batch: steps past each sequence's length count for
/// nothing, nor do targets of the padding class 0.
///
/// ```
/// use recurrent::{CrossEntropyLoss, Sequence, Tensor};
///
/// // (T, B, C) = (3, 2, 4), the second sequence two steps long
/// let logits = Sequence::new(Tensor::<f64>::zeros(&[3, 2, 4]), Some(vec![3, 2]))?;
/// let targets = [1, 2, 0, 3, 1, 99]; // time-major; 99 is padding, never read
/// let ce = CrossEntropyLoss::new().with_ignore_index(0).with_label_smoothing(0.1);
/// let loss = ce.forward_sequence(&logits, &targets)?;
/// assert!((loss.value - 4f64.ln()).abs() < 1e-15); // uniform logits: log C
/// assert_eq!(loss.grad.shape(), &[3, 2, 4]);
/// assert_eq!(loss.grad.at(&[2, 1, 0]), 0.0);
///
/// let e = ce.forward_sequence(&logits, &[1, 2, 0, 3, 4, 0]).unwrap_err();
/// assert_eq!(
///     e.to_string(),
///     "invalid cross-entropy target: 4 at step 2 of sample 0 (position 4) is not a class in 0..4"
/// );
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CrossEntropyLoss {
    weight: Option<Vec<f64>>,
    ignore_index: Option<usize>,
    label_smoothing: f64,
    reduction: Reduction,
}

/// The unreduced result of one call: each row's loss, the gradient of their sum, and the
/// denominator of the mean.
struct Raw<T> {
    values: Vec<T>,
    grad: Tensor<T>,
    counted: Vec<bool>,
    total_weight: T,
}

impl CrossEntropyLoss {
    /// PyTorch's defaults: no class weights, no ignored class, no label smoothing, the mean.
    pub fn new() -> Self {
        CrossEntropyLoss::default()
    }

    /// One weight per class, PyTorch's `weight`: each position's loss is scaled by the weight
    /// of its target (and, with label smoothing, each class's share by its own weight), and
    /// the mean divides by the total weight of the targets that count. The forward methods
    /// return an error unless there are exactly `C` weights, all finite.
    ///
    /// Defaults to no weights (every class weighs 1).
    #[must_use]
    pub fn with_weight(mut self, weight: impl Into<Vec<f64>>) -> Self {
        self.weight = Some(weight.into());
        self
    }

    /// A target class that counts for nothing, PyTorch's `ignore_index`: positions with this
    /// target have loss 0 and gradient 0 and are left out of the mean. It need not be below
    /// `C` (a padding id such as `C` itself is fine).
    ///
    /// Defaults to none (PyTorch's `-100`, which no `usize` target can equal).
    #[must_use]
    pub fn with_ignore_index(mut self, ignore_index: usize) -> Self {
        self.ignore_index = Some(ignore_index);
        self
    }

    /// Label smoothing `ε`, PyTorch's `label_smoothing`: the target distribution becomes
    /// `(1 − ε)·one_hot(t) + ε/C`. The forward methods return an error unless `ε` is in
    /// `[0, 1]`.
    ///
    /// Defaults to `0.0`.
    #[must_use]
    pub fn with_label_smoothing(mut self, label_smoothing: f64) -> Self {
        self.label_smoothing = label_smoothing;
        self
    }

    /// How the positions' losses combine. [`Reduction::Mean`] and [`Reduction::Sum`] give one
    /// value, from [`forward`](Self::forward) and [`forward_sequence`](Self::forward_sequence);
    /// [`Reduction::None`] gives one loss per position, from
    /// [`forward_per_position`](Self::forward_per_position) and
    /// [`forward_sequence_per_position`](Self::forward_sequence_per_position). Each pair
    /// refuses the other reductions, so that a configuration means one thing.
    ///
    /// Defaults to [`Reduction::Mean`].
    #[must_use]
    pub fn with_reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }

    /// The loss of logits `(N, C)` against `N` targets, reduced to one value, and
    /// `dL/d(logits)`.
    ///
    /// # Shapes
    ///
    /// `logits: (N, C)`, `targets: N`, `grad: (N, C)`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if the reduction is [`Reduction::None`], if the label
    /// smoothing is not in `[0, 1]`, if a class weight is not finite, or if a target that is
    /// not the ignored class is not below `C` (naming it, its position and `C`);
    /// [`Error::RankMismatch`] unless `logits` is `(N, C)`; [`Error::ShapeMismatch`] unless
    /// there are `N` targets, or unless there are `C` class weights.
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::{CrossEntropyLoss, Reduction, Tensor};
    ///
    /// let logits = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 1.0, 1.0, 1.0], &[2, 3])?;
    /// let ce = CrossEntropyLoss::new().with_weight(vec![1.0, 1.0, 3.0]);
    /// let loss = ce.forward(&logits, &[2, 0])?;
    /// // (3·(log(e + e² + e³) − 3) + 1·log 3) / (3 + 1)
    /// assert!((loss.value - 0.580_357_545_500_313).abs() < 1e-15);
    ///
    /// let sum = ce.with_reduction(Reduction::Sum).forward(&logits, &[2, 0])?;
    /// assert!((sum.value - 4.0 * loss.value).abs() < 1e-14);
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn forward<T: Float>(&self, logits: &Tensor<T>, targets: &[usize]) -> Result<Loss<T>> {
        self.expect_reduced()?;
        let raw = self.rows(logits, targets)?;
        Ok(self.reduce(raw))
    }

    /// The loss of every position of logits `(N, C)`, unreduced, for [`Reduction::None`].
    ///
    /// # Shapes
    ///
    /// `logits: (N, C)`, `targets: N`, `values: (N)`, `grad: (N, C)`.
    ///
    /// # Errors
    ///
    /// As [`forward`](Self::forward), except that the reduction must be [`Reduction::None`].
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::{CrossEntropyLoss, Reduction, Tensor};
    ///
    /// let logits = Tensor::from_vec(vec![0.0f64, 0.0, 5.0, -5.0], &[2, 2])?;
    /// let ce = CrossEntropyLoss::new().with_ignore_index(1).with_reduction(Reduction::None);
    /// let each = ce.forward_per_position(&logits, &[0, 1])?;
    /// assert!((each.values.at(&[0]) - 2f64.ln()).abs() < 1e-15);
    /// assert_eq!(each.values.at(&[1]), 0.0); // ignored
    /// assert_eq!(each.grad.as_slice()[2..], [0.0, 0.0]);
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn forward_per_position<T: Float>(
        &self,
        logits: &Tensor<T>,
        targets: &[usize],
    ) -> Result<PerPosition<T>> {
        self.expect_unreduced()?;
        let raw = self.rows(logits, targets)?;
        let n = raw.values.len();
        Ok(PerPosition {
            values: Tensor::from_vec(raw.values, &[n])?,
            grad: raw.grad,
        })
    }

    /// The loss of a sequence of logits `(T, B, C)` against time-major targets (`T·B`,
    /// sample `b`'s target at step `t` at `t·B + b`), reduced to one value, and
    /// `dL/d(logits)`. Steps at or past a sequence's length count for nothing, exactly like
    /// targets of the ignored class; the targets there are never read.
    ///
    /// # Shapes
    ///
    /// `logits: (T, B, C)`, `targets: T·B`, `grad: (T, B, C)`.
    ///
    /// # Errors
    ///
    /// As [`forward`](Self::forward), with `T·B` targets; an out-of-range target is named by
    /// its step and sample.
    ///
    /// # Examples
    ///
    /// See [`CrossEntropyLoss`].
    pub fn forward_sequence<T: Float>(
        &self,
        logits: &Sequence<T>,
        targets: &[usize],
    ) -> Result<Loss<T>> {
        self.expect_reduced()?;
        let raw = self.sequence_rows(logits, targets)?;
        Ok(self.reduce(raw))
    }

    /// The loss of every step of a sequence of logits `(T, B, C)`, unreduced, for
    /// [`Reduction::None`]: 0 at steps past a sequence's length and at ignored targets.
    ///
    /// # Shapes
    ///
    /// `logits: (T, B, C)`, `targets: T·B`, `values: (T, B)`, `grad: (T, B, C)`.
    ///
    /// # Errors
    ///
    /// As [`forward_sequence`](Self::forward_sequence), except that the reduction must be
    /// [`Reduction::None`].
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::{CrossEntropyLoss, Reduction, Sequence, Tensor};
    ///
    /// let logits = Sequence::new(Tensor::<f32>::zeros(&[2, 2, 3]), Some(vec![2, 1]))?;
    /// let ce = CrossEntropyLoss::new().with_reduction(Reduction::None);
    /// let each = ce.forward_sequence_per_position(&logits, &[0, 1, 2, 0])?;
    /// assert_eq!(each.values.shape(), &[2, 2]);
    /// assert_eq!(each.values.at(&[1, 1]), 0.0); // past the second sequence's end
    /// assert!((each.values.at(&[1, 0]) - 3f32.ln()).abs() < 1e-6);
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn forward_sequence_per_position<T: Float>(
        &self,
        logits: &Sequence<T>,
        targets: &[usize],
    ) -> Result<PerPosition<T>> {
        self.expect_unreduced()?;
        let raw = self.sequence_rows(logits, targets)?;
        Ok(PerPosition {
            values: Tensor::from_vec(raw.values, &[logits.steps(), logits.batch_size()])?,
            grad: raw.grad,
        })
    }

    fn expect_reduced(&self) -> Result<()> {
        if self.reduction == Reduction::None {
            return Err(Error::InvalidArgument {
                name: "reduction",
                reason: "Reduction::None gives one loss per position: call \
                         forward_per_position or forward_sequence_per_position"
                    .to_string(),
            });
        }
        Ok(())
    }

    fn expect_unreduced(&self) -> Result<()> {
        if self.reduction != Reduction::None {
            return Err(Error::InvalidArgument {
                name: "reduction",
                reason: format!(
                    "Reduction::{:?} gives one value: call forward or forward_sequence",
                    self.reduction
                ),
            });
        }
        Ok(())
    }

    /// Rows of `(N, C)` logits.
    fn rows<T: Float>(&self, logits: &Tensor<T>, targets: &[usize]) -> Result<Raw<T>> {
        let &[rows, classes] = logits.shape() else {
            return Err(Error::RankMismatch {
                op: "cross-entropy logits",
                expected: 2,
                layout: "(N, C)",
                actual: logits.raw_shape(),
            });
        };
        check_shape(
            "cross-entropy targets",
            Shape::from([rows]),
            Shape::from([targets.len()]),
        )?;
        self.compute(
            logits,
            classes,
            targets,
            |_| true,
            |i| format!("position {i}"),
        )
    }

    /// Rows of a `(T, B, C)` sequence, time-major, the padding left out.
    fn sequence_rows<T: Float>(&self, logits: &Sequence<T>, targets: &[usize]) -> Result<Raw<T>> {
        let (steps, batch) = (logits.steps(), logits.batch_size());
        // T·B·C elements exist, so T·B cannot overflow
        check_shape(
            "cross-entropy sequence targets",
            Shape::from([steps * batch]),
            Shape::from([targets.len()]),
        )?;
        let valid = |i: usize| i / batch < logits.length(i % batch);
        let position =
            |i: usize| format!("step {} of sample {} (position {i})", i / batch, i % batch);
        self.compute(logits.data(), logits.features(), targets, valid, position)
    }

    /// The loss of each row of `logits` (rows of `classes` values, one per target) that is
    /// `valid` and not of the ignored class, and the gradient of their sum.
    fn compute<T: Float>(
        &self,
        logits: &Tensor<T>,
        classes: usize,
        targets: &[usize],
        valid: impl Fn(usize) -> bool,
        position: impl Fn(usize) -> String,
    ) -> Result<Raw<T>> {
        let weight = self.class_weights::<T>(classes)?;
        let counted: Vec<bool> = (0..targets.len())
            .map(|i| valid(i) && Some(targets[i]) != self.ignore_index)
            .collect();
        if let Some(i) = (0..targets.len()).find(|&i| counted[i] && targets[i] >= classes) {
            return Err(Error::InvalidArgument {
                name: "cross-entropy target",
                reason: format!(
                    "{} at {} is not a class in 0..{classes}",
                    targets[i],
                    position(i)
                ),
            });
        }
        let smoothing = self.label_smoothing > 0.0;
        let eps = T::from_f64(self.label_smoothing);
        let share = eps / T::from_f64(classes as f64);
        let keep = T::one() - eps;
        let weight_sum = weight.iter().fold(T::zero(), |a, &w| a + w);
        let mut values = vec![T::zero(); targets.len()];
        let mut grad = logits.zeros_like();
        let mut total_weight = T::zero();
        let rows_in = logits.as_slice().chunks_exact(classes.max(1));
        let rows_out = grad.as_mut_slice().chunks_exact_mut(classes.max(1));
        for (i, (x, g)) in rows_in.zip(rows_out).enumerate() {
            if !counted[i] {
                continue;
            }
            let t = targets[i];
            let max = x.iter().copied().fold(T::neg_infinity(), T::max);
            let mut total = T::zero();
            for (gc, &xc) in g.iter_mut().zip(x) {
                *gc = (xc - max).exp();
                total = total + *gc;
            }
            // log Σ e^x = max + log Σ e^(x − max); −log_softmax_c = lse − x_c
            let lse = max + total.ln();
            let wt = weight[t];
            let mut loss = keep * wt * (lse - x[t]);
            if smoothing {
                let spread = x
                    .iter()
                    .zip(&weight)
                    .fold(T::zero(), |a, (&xc, &wc)| a + wc * (lse - xc));
                loss = loss + share * spread;
            }
            values[i] = loss;
            total_weight = total_weight + wt;
            // dℓ/dx_c = (1 − ε)·w_t·(softmax_c − [c = t]) + (ε/C)·(softmax_c·Σw − w_c)
            let scale = keep * wt
                + if smoothing {
                    share * weight_sum
                } else {
                    T::zero()
                };
            g.iter_mut().for_each(|gc| *gc = *gc / total * scale);
            g[t] = g[t] - keep * wt;
            if smoothing {
                for (gc, &wc) in g.iter_mut().zip(&weight) {
                    *gc = *gc - share * wc;
                }
            }
        }
        Ok(Raw {
            values,
            grad,
            counted,
            total_weight,
        })
    }

    /// The class weights as `T`, all 1 without weights, after checking them and the label
    /// smoothing.
    fn class_weights<T: Float>(&self, classes: usize) -> Result<Vec<T>> {
        let ls = self.label_smoothing;
        if !(0.0..=1.0).contains(&ls) {
            return Err(Error::InvalidArgument {
                name: "label smoothing",
                reason: format!("{ls} is not in [0, 1]"),
            });
        }
        let Some(weight) = &self.weight else {
            return Ok(vec![T::one(); classes]);
        };
        check_shape(
            "cross-entropy class weights",
            Shape::from([classes]),
            Shape::from([weight.len()]),
        )?;
        if let Some((c, w)) = weight.iter().enumerate().find(|(_, w)| !w.is_finite()) {
            return Err(Error::InvalidArgument {
                name: "cross-entropy class weight",
                reason: format!("{w} for class {c} is not finite"),
            });
        }
        Ok(weight.iter().map(|&w| T::from_f64(w)).collect())
    }

    /// The sum or the weighted mean of the counted rows.
    fn reduce<T: Float>(&self, raw: Raw<T>) -> Loss<T> {
        let Raw {
            values,
            mut grad,
            counted,
            total_weight,
        } = raw;
        let sum = values.iter().fold(T::zero(), |a, &v| a + v);
        if self.reduction == Reduction::Sum {
            return Loss { value: sum, grad };
        }
        let classes = grad.len().checked_div(values.len()).unwrap_or(0);
        if classes > 0 {
            // uncounted rows keep a zero gradient, even when the mean is 0 / 0 (as PyTorch)
            for (g, _) in grad
                .as_mut_slice()
                .chunks_exact_mut(classes)
                .zip(&counted)
                .filter(|(_, &c)| c)
            {
                g.iter_mut().for_each(|gc| *gc = *gc / total_weight);
            }
        }
        Loss {
            value: sum / total_weight,
            grad,
        }
    }
}
