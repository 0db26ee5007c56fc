//! The fully connected layer, as PyTorch's `nn.Linear`.

use core::fmt;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::{check_shape, Error, Result};
use crate::float::Float;
use crate::linalg::{gemm, MatMut, MatRef};
use crate::mode::Mode;
use crate::nn::{Layer, LayerGrads};
use crate::params::{NamedTensors, Parameters};
use crate::tensor::{Shape, Tensor};

/// A fully connected layer with PyTorch's parameterisation:
///
/// ```text
/// y = x·Wᵀ + b
/// ```
///
/// with `weight (out_features, in_features)` and `bias (out_features)`, as in
/// [`torch.nn.Linear`](https://pytorch.org/docs/stable/generated/torch.nn.Linear.html). The
/// layer applies to the last axis of its input and keeps the leading ones, so a sequence
/// output `(T, B, H)` maps to `(T, B, out_features)` in one matrix product over all `T·B` rows.
///
/// # Shapes
///
/// - input: `(in_features)`, `(N, in_features)` or `(A, B, in_features)`
/// - output: the input's leading axes, then `out_features`
///
/// # Examples
///
/// ```
/// use recurrent::rand::{rngs::StdRng, SeedableRng};
/// use recurrent::{Layer, LinearConfig, Parameters, Tensor};
///
/// let mut rng = StdRng::seed_from_u64(0);
/// let fc = LinearConfig::new(16, 4).init::<f32>(&mut rng)?;
/// let h = Tensor::randn(&[20, 8, 16], &mut rng); // (T, B, H) from a recurrent layer
/// let y = fc.infer(&h)?;
/// assert_eq!(y.shape(), &[20, 8, 4]);
///
/// let grads = fc.backward(&h, &y.map(|_| 1.0))?; // d(sum y)
/// assert_eq!(grads.input.shape(), h.shape());
/// assert_eq!(fc.param_names(), ["weight", "bias"]);
/// assert_eq!(grads.params.get("bias").unwrap().as_slice(), &[160.0; 4]);
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Linear<T> {
    weight: Tensor<T>,
    bias: Option<Tensor<T>>,
}

/// Configuration of a [`Linear`] layer: `LinearConfig::new(in_features, out_features)`, then
/// `with_*` options, then [`init`](LinearConfig::init), as PyTorch's
/// `nn.Linear(in_features, out_features, bias=True)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinearConfig {
    in_features: usize,
    out_features: usize,
    bias: bool,
}

impl LinearConfig {
    /// A layer mapping `in_features` to `out_features`.
    pub fn new(in_features: usize, out_features: usize) -> Self {
        LinearConfig {
            in_features,
            out_features,
            bias: true,
        }
    }

    /// Whether the layer has a bias. Defaults to `true`.
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_bias(self, bias: bool) -> Self {
        LinearConfig { bias, ..self }
    }

    /// A layer with PyTorch's default initialisation: weight, then bias, drawn from
    /// `U(−1/√in_features, 1/√in_features)`.
    ///
    /// With `in_features = 0` the weight is empty and the bias is zero, as in PyTorch.
    ///
    /// # Errors
    ///
    /// [`Error::SizeOverflow`] naming `out_features` and `in_features` if the weight's size
    /// (in elements or bytes) overflows `usize`; [`Error::Allocation`] if the memory for a
    /// parameter cannot be allocated.
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::rand::{rngs::StdRng, SeedableRng};
    /// use recurrent::LinearConfig;
    ///
    /// let mut rng = StdRng::seed_from_u64(0);
    /// let fc = LinearConfig::new(4, 3).with_bias(false).init::<f64>(&mut rng)?;
    /// assert_eq!(fc.weight().shape(), &[3, 4]);
    /// assert!(fc.bias().is_none());
    /// assert!(fc.weight().as_slice().iter().all(|w| w.abs() <= 0.5));
    ///
    /// let e = LinearConfig::new(1 << 33, 1 << 31).init::<f32>(&mut rng).unwrap_err();
    /// assert_eq!(
    ///     e.to_string(),
    ///     "size overflow in linear weight: the product of [2147483648, 8589934592] does not \
    ///      fit in usize"
    /// );
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn init<T: Float>(&self, rng: &mut (impl Rng + ?Sized)) -> Result<Linear<T>> {
        let (in_features, out_features) = (self.in_features, self.out_features);
        let mut draw = |what, dims: &[usize]| {
            if in_features == 0 {
                // PyTorch: kaiming_uniform_ on an empty weight is a no-op, the bias bound is 0
                Tensor::try_from_fn(what, dims, T::zero)
            } else {
                let k = T::one() / T::from_f64(in_features as f64).sqrt();
                Tensor::try_uniform(what, dims, -k, k, rng)
            }
        };
        let weight = draw("linear weight", &[out_features, in_features])?;
        let bias = self
            .bias
            .then(|| draw("linear bias", &[out_features]))
            .transpose()?;
        Ok(Linear { weight, bias })
    }

    /// [`init`](LinearConfig::init) from `StdRng::seed_from_u64(seed)`.
    ///
    /// # Errors
    ///
    /// As [`init`](LinearConfig::init).
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::rand::{rngs::StdRng, SeedableRng};
    /// use recurrent::LinearConfig;
    ///
    /// let config = LinearConfig::new(4, 3);
    /// let fc = config.init_seeded::<f32>(7)?;
    /// assert_eq!(fc, config.init(&mut StdRng::seed_from_u64(7))?);
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn init_seeded<T: Float>(&self, seed: u64) -> Result<Linear<T>> {
        self.init(&mut StdRng::seed_from_u64(seed))
    }
}

impl<T: Float> Linear<T> {
    /// A layer with the given parameters (for example loaded from PyTorch): `weight` is
    /// `(out_features, in_features)` and `bias`, if any, `(out_features)`.
    ///
    /// # Errors
    ///
    /// [`Error::RankMismatch`] if `weight` is not a matrix; [`Error::ShapeMismatch`] if `bias`
    /// does not have one entry per output feature.
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::{Layer, Linear, Tensor};
    ///
    /// let w = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
    /// let fc = Linear::from_params(w.clone(), Some(Tensor::from_vec(vec![0.5, -0.5], &[2])?))?;
    /// let y = fc.infer(&Tensor::from_vec(vec![1.0, 0.0, -1.0], &[1, 3])?)?;
    /// assert_eq!(y.as_slice(), &[-1.5, -2.5]);
    ///
    /// let e = Linear::from_params(w, Some(Tensor::zeros(&[3]))).unwrap_err();
    /// assert_eq!(e.to_string(), "shape mismatch in linear bias: expected [2], got [3]");
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn from_params(weight: Tensor<T>, bias: Option<Tensor<T>>) -> Result<Self> {
        let fc = Linear { weight, bias };
        fc.check_params()?;
        Ok(fc)
    }

    /// The weight, `(out_features, in_features)`.
    pub fn weight(&self) -> &Tensor<T> {
        &self.weight
    }

    /// The bias, `(out_features)`, if the layer has one.
    pub fn bias(&self) -> Option<&Tensor<T>> {
        self.bias.as_ref()
    }

    /// Features per input row.
    ///
    /// # Panics
    ///
    /// Panics if the weight is not a matrix, which only
    /// [`visit_params_mut`](Parameters::visit_params_mut) can make it.
    pub fn in_features(&self) -> usize {
        self.weight.shape()[1]
    }

    /// Features per output row.
    pub fn out_features(&self) -> usize {
        self.weight.shape()[0]
    }

    /// `y = x·Wᵀ + b`; see [`Layer::infer`](#method.infer).
    fn apply(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        self.check_params()?;
        self.check_input(x)?;
        let rows: usize = leading(x.shape()).iter().product();
        let out = self.out_features();
        let mut y = Tensor::zeros(&with_last(x.shape(), out));
        let beta = match &self.bias {
            Some(b) => {
                y.as_mut_slice()
                    .chunks_exact_mut(out.max(1))
                    .for_each(|row| row.copy_from_slice(b.as_slice()));
                T::one()
            }
            None => T::zero(),
        };
        // Y = X·Wᵀ (+ the bias rows already in Y)
        gemm(
            T::one(),
            MatRef::new(x.as_slice(), rows, self.in_features()),
            self.weight.as_mat().t(),
            beta,
            MatMut::new(y.as_mut_slice(), rows, out),
        );
        Ok(y)
    }

    /// The gradients of `y = x·Wᵀ + b`; see [`Layer::backward`](#method.backward).
    fn gradients(&self, x: &Tensor<T>, d_output: &Tensor<T>) -> Result<LayerGrads<T, Tensor<T>>> {
        self.check_params()?;
        self.check_input(x)?;
        let (input, out) = (self.in_features(), self.out_features());
        let expected = with_last(x.shape(), out);
        check_shape(
            "linear d_output",
            Shape::new(&expected),
            d_output.raw_shape(),
        )?;
        let rows: usize = leading(x.shape()).iter().product();
        let (x_mat, dy) = (
            MatRef::new(x.as_slice(), rows, input),
            MatRef::new(d_output.as_slice(), rows, out),
        );
        // dX = dY·W
        let mut d_input = x.zeros_like();
        gemm(
            T::one(),
            dy,
            self.weight.as_mat(),
            T::zero(),
            MatMut::new(d_input.as_mut_slice(), rows, input),
        );
        // dW = dYᵀ·X
        let mut d_weight = self.weight.zeros_like();
        gemm(T::one(), dy.t(), x_mat, T::zero(), d_weight.as_mat_mut());
        let mut params = NamedTensors::new();
        params.push("weight", d_weight);
        if let Some(b) = &self.bias {
            // db = Σ_rows dY
            let mut d_bias = b.zeros_like();
            for row in d_output.as_slice().chunks_exact(out.max(1)) {
                d_bias
                    .as_mut_slice()
                    .iter_mut()
                    .zip(row)
                    .for_each(|(s, &g)| *s = *s + g);
            }
            params.push("bias", d_bias);
        }
        Ok(LayerGrads {
            input: d_input,
            params,
        })
    }

    /// Checks that the weight is a matrix and the bias, if any, has one entry per output
    /// feature: [`from_params`](Linear::from_params) ensures it, but
    /// [`visit_params_mut`](Parameters::visit_params_mut) can replace either.
    fn check_params(&self) -> Result<()> {
        if self.weight.rank() != 2 {
            return Err(Error::RankMismatch {
                op: "linear weight",
                expected: 2,
                layout: "(out_features, in_features)",
                actual: self.weight.raw_shape(),
            });
        }
        match &self.bias {
            Some(b) => check_shape(
                "linear bias",
                Shape::from([self.out_features()]),
                b.raw_shape(),
            ),
            None => Ok(()),
        }
    }

    fn check_input(&self, x: &Tensor<T>) -> Result<()> {
        check_shape(
            "linear input",
            Shape::new(&with_last(x.shape(), self.in_features())),
            x.raw_shape(),
        )
    }
}

/// All axes but the last.
fn leading(dims: &[usize]) -> &[usize] {
    &dims[..dims.len().saturating_sub(1)]
}

/// `dims` with its last axis replaced by `last`.
fn with_last(dims: &[usize], last: usize) -> Vec<usize> {
    let mut out = leading(dims).to_vec();
    out.push(last);
    out
}

impl<T: Float> Parameters<T> for Linear<T> {
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Tensor<T>)) {
        f("weight", &self.weight);
        if let Some(b) = &self.bias {
            f("bias", b);
        }
    }

    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Tensor<T>)) {
        f("weight", &mut self.weight);
        if let Some(b) = &mut self.bias {
            f("bias", b);
        }
    }
}

/// `Linear` as a [`Layer`]: the forward pass keeps its input for the backward pass.
impl<T: Float> Layer<T> for Linear<T> {
    type Input = Tensor<T>;
    type Output = Tensor<T>;
    type InputGrad = Tensor<T>;
    type OutputGrad = Tensor<T>;
    /// The input, which the gradients of the weight need.
    type Trace = Tensor<T>;

    /// `y = x·Wᵀ + b`, and `x` for the backward pass; see [`infer`](#method.infer).
    fn forward(&self, input: &Tensor<T>, _mode: Mode) -> Result<(Tensor<T>, Tensor<T>)> {
        Ok((self.apply(input)?, input.clone()))
    }

    /// The gradients of a loss given `d_output = dL/dy` for the input `x` that
    /// [`forward`](Layer::forward) read: `dL/dx = dY·W`, `dL/dW = dYᵀ·X` and `dL/db`, the sum
    /// of `dY` over all rows. Each product is one GEMM over all rows.
    ///
    /// # Shapes
    ///
    /// - `x`: `(…, in_features)`, as given to `forward`
    /// - `d_output`: `(…, out_features)`, the shape of the output
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if `x` is not a valid input or `d_output` does not have the
    /// output's shape, naming the expected and the actual shape; the parameter errors of
    /// [`forward`](Layer::forward).
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::{Layer, Linear, Tensor};
    ///
    /// let w = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2])?;
    /// let fc = Linear::from_params(w, None)?;
    /// let x = Tensor::from_vec(vec![1.0, -1.0], &[1, 2])?;
    /// let grads = fc.backward(&x, &Tensor::from_vec(vec![1.0, 0.0], &[1, 2])?)?;
    /// assert_eq!(grads.input.as_slice(), &[1.0, 2.0]); // the first row of W
    /// assert_eq!(grads.params.get("weight").unwrap().as_slice(), &[1.0, -1.0, 0.0, 0.0]);
    ///
    /// let e = fc.backward(&x, &Tensor::zeros(&[1, 3])).unwrap_err();
    /// assert_eq!(e.to_string(), "shape mismatch in linear d_output: expected [1, 2], got [1, 3]");
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    fn backward(&self, x: &Tensor<T>, d_output: &Tensor<T>) -> Result<LayerGrads<T, Tensor<T>>> {
        self.gradients(x, d_output)
    }

    /// `y = x·Wᵀ + b` over the last axis of `x`, as one matrix product over all rows.
    ///
    /// # Shapes
    ///
    /// - `x`: `(…, in_features)`, rank 1 to 3
    /// - output: `(…, out_features)`
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if the last axis of `x` is not `in_features`, naming the shape
    /// `x` should have and the one it has; [`Error::RankMismatch`] naming the weight if it is
    /// not a matrix, or [`Error::ShapeMismatch`] naming the bias if it does not have one entry
    /// per output feature (possible only after
    /// [`visit_params_mut`](Parameters::visit_params_mut) replaced them).
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::{Layer, LinearConfig, Tensor};
    ///
    /// let fc = LinearConfig::new(3, 2).init_seeded::<f64>(0)?;
    /// assert_eq!(fc.infer(&Tensor::zeros(&[5, 3]))?.shape(), &[5, 2]);
    /// let e = fc.infer(&Tensor::zeros(&[4, 5, 2])).unwrap_err();
    /// assert_eq!(e.to_string(), "shape mismatch in linear input: expected [4, 5, 3], got [4, 5, 2]");
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    fn infer(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        self.apply(x)
    }
}

impl<T: Float> fmt::Display for Linear<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Linear {{ in_features: {}, out_features: {}, bias: {} }}",
            self.in_features(),
            self.out_features(),
            self.bias.is_some()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_close, t};
    use rand::{rngs::StdRng, SeedableRng};

    /// The tolerance of the hand-computed values.
    const TOL: f64 = 1e-12;

    /// `W = [[0.1, 0.2, 0.3], [−0.4, 0.5, −0.6]]`, `b = [0.01, −0.02]`,
    /// `x = [[1, 2, 3], [−1, 0, 2]]`:
    ///
    /// ```text
    /// y00 = 0.1 + 0.4 + 0.9 + 0.01   =  1.41
    /// y01 = −0.4 + 1.0 − 1.8 − 0.02  = −1.22
    /// y10 = −0.1 + 0 + 0.6 + 0.01    =  0.51
    /// y11 = 0.4 + 0 − 1.2 − 0.02     = −0.82
    /// ```
    ///
    /// and for `dY = 1`: every row of `dX` is `Σ_j W[j] = [−0.3, 0.7, −0.3]`, every row of
    /// `dW` is `Σ_r x[r] = [0, 2, 5]`, and `db = [2, 2]`.
    #[test]
    fn two_by_three_by_hand() {
        let fc = Linear::from_params(
            t(&[0.1, 0.2, 0.3, -0.4, 0.5, -0.6], &[2, 3]),
            Some(t(&[0.01, -0.02], &[2])),
        )
        .unwrap();
        let x = t(&[1.0, 2.0, 3.0, -1.0, 0.0, 2.0], &[2, 3]);
        let y = fc.infer(&x).unwrap();
        assert_eq!(y.shape(), &[2, 2]);
        assert_close(y.as_slice(), &[1.41, -1.22, 0.51, -0.82], TOL);

        let grads = fc.backward(&x, &y.map(|_| 1.0)).unwrap();
        assert_close(
            grads.input.as_slice(),
            &[-0.3, 0.7, -0.3, -0.3, 0.7, -0.3],
            TOL,
        );
        let names: Vec<&str> = grads.params.iter().map(|(n, _)| n).collect();
        assert_eq!(names, fc.param_names());
        assert_close(
            grads.params.get("weight").unwrap().as_slice(),
            &[0.0, 2.0, 5.0, 0.0, 2.0, 5.0],
            TOL,
        );
        assert_close(
            grads.params.get("bias").unwrap().as_slice(),
            &[2.0, 2.0],
            TOL,
        );
    }

    #[test]
    fn leading_axes_are_kept_and_rows_are_independent() {
        let mut rng = StdRng::seed_from_u64(1);
        let fc = LinearConfig::new(3, 4).init::<f64>(&mut rng).unwrap();
        let x = Tensor::randn(&[2, 5, 3], &mut rng);
        let y = fc.infer(&x).unwrap();
        assert_eq!(y.shape(), &[2, 5, 4]);
        let flat = fc.infer(&x.clone().reshape(&[10, 3]).unwrap()).unwrap();
        assert_eq!(flat.as_slice(), y.as_slice());
        let row = fc.infer(&t(&x.as_slice()[3..6], &[3])).unwrap();
        assert_eq!(row.shape(), &[4]);
        assert_close(row.as_slice(), &y.as_slice()[4..8], TOL);
    }

    #[test]
    fn default_init_is_pytorch_bound_and_named() {
        let fc = LinearConfig::new(9, 5)
            .init::<f32>(&mut StdRng::seed_from_u64(0))
            .unwrap();
        assert_eq!(fc.param_names(), ["weight", "bias"]);
        assert_eq!(fc.param_count(), 9 * 5 + 5);
        let bound = 1.0 / 3.0;
        fc.visit_params(&mut |_, t| {
            assert!(t.as_slice().iter().all(|v| v.abs() <= bound));
        });
        assert_eq!(
            fc.to_string(),
            "Linear { in_features: 9, out_features: 5, bias: true }"
        );
        let empty = LinearConfig::new(0, 2)
            .init::<f32>(&mut StdRng::seed_from_u64(0))
            .unwrap();
        assert_eq!(empty.bias().unwrap().as_slice(), &[0.0, 0.0]);
        let y = empty.infer(&Tensor::zeros(&[3, 0])).unwrap();
        assert_eq!(y.as_slice(), &[0.0; 6]);
        let grads = empty.backward(&Tensor::zeros(&[3, 0]), &y).unwrap();
        assert_eq!(grads.input.shape(), &[3, 0]);
        let none_out = LinearConfig::new(3, 0)
            .init::<f32>(&mut StdRng::seed_from_u64(0))
            .unwrap();
        let y = none_out.infer(&Tensor::zeros(&[2, 3])).unwrap();
        assert_eq!(y.shape(), &[2, 0]);
        let grads = none_out.backward(&Tensor::zeros(&[2, 3]), &y).unwrap();
        assert_eq!(grads.input.as_slice(), &[0.0; 6]);
    }

    #[test]
    fn bad_shapes_name_both_shapes() {
        let fc = LinearConfig::new(3, 2)
            .init::<f64>(&mut StdRng::seed_from_u64(0))
            .unwrap();
        let e = fc.infer(&Tensor::zeros(&[4, 2])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "shape mismatch in linear input: expected [4, 3], got [4, 2]"
        );
        let e = fc
            .backward(&Tensor::zeros(&[2, 4, 3]), &Tensor::zeros(&[2, 4, 3]))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "shape mismatch in linear d_output: expected [2, 4, 2], got [2, 4, 3]"
        );
        let e = Linear::from_params(Tensor::<f64>::zeros(&[6]), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "rank mismatch in linear weight: expected a rank-2 tensor \
             (out_features, in_features), got shape [6]"
        );
    }

    /// A seeded layer is the same as before the fallible allocation.
    #[test]
    fn init_draws_what_tensor_uniform_draws() {
        let fc = LinearConfig::new(5, 3)
            .init::<f32>(&mut StdRng::seed_from_u64(7))
            .unwrap();
        let rng = &mut StdRng::seed_from_u64(7);
        let k = 1.0 / 5f32.sqrt();
        assert_eq!(fc.weight(), &Tensor::uniform(&[3, 5], -k, k, rng));
        assert_eq!(fc.bias().unwrap(), &Tensor::uniform(&[3], -k, k, rng));
    }

    #[test]
    fn sizes_too_large_for_memory_are_errors_not_aborts() {
        let rng = &mut StdRng::seed_from_u64(0);
        // the number of elements overflows usize (it was wrapped before: an empty "success")
        let e = LinearConfig::new(1 << 33, 1 << 31)
            .init::<f32>(rng)
            .unwrap_err();
        assert_eq!(
            e,
            Error::SizeOverflow {
                what: "linear weight",
                sizes: vec![1 << 31, 1 << 33]
            }
        );
        // the elements fit in usize, their bytes do not
        let e = LinearConfig::new(1 << 31, 1 << 31)
            .with_bias(false)
            .init::<f64>(rng)
            .unwrap_err();
        assert_eq!(
            e,
            Error::SizeOverflow {
                what: "linear weight",
                sizes: vec![1 << 31, 1 << 31, 8]
            }
        );
        // an empty weight is no overflow, whatever out_features; the bias may be
        let e = LinearConfig::new(0, usize::MAX / 2)
            .init::<f32>(rng)
            .unwrap_err();
        assert_eq!(
            e,
            Error::SizeOverflow {
                what: "linear bias",
                sizes: vec![usize::MAX / 2, 4]
            }
        );
        // 2⁶⁰ bytes fit in usize but in no address space, so the allocation fails on any
        // machine (a smaller size, such as 4 TiB, may be promised by an overcommitting kernel)
        let e = LinearConfig::new(1 << 29, 1 << 29)
            .init::<f32>(rng)
            .unwrap_err();
        assert_eq!(
            e,
            Error::Allocation {
                what: "linear weight",
                bytes: 1 << 60
            }
        );
        assert_eq!(
            e.to_string(),
            "cannot allocate 1152921504606846976 bytes for linear weight"
        );
        let e = LinearConfig::new(0, 1 << 58).init::<f32>(rng).unwrap_err();
        assert_eq!(
            e,
            Error::Allocation {
                what: "linear bias",
                bytes: 1 << 60
            }
        );
    }

    #[test]
    fn replaced_parameters_of_the_wrong_shape_are_errors_not_panics() {
        let (x, d_y) = (Tensor::zeros(&[4, 3]), Tensor::zeros(&[4, 2]));
        let cases = [
            (
                "weight",
                Tensor::zeros(&[1]),
                "rank mismatch in linear weight: expected a rank-2 tensor \
                 (out_features, in_features), got shape [1]",
            ),
            (
                "weight",
                Tensor::zeros(&[2, 3, 1]),
                "rank mismatch in linear weight: expected a rank-2 tensor \
                 (out_features, in_features), got shape [2, 3, 1]",
            ),
            (
                "weight",
                Tensor::zeros(&[4, 3]),
                "shape mismatch in linear bias: expected [4], got [2]",
            ),
            (
                "bias",
                Tensor::zeros(&[5]),
                "shape mismatch in linear bias: expected [2], got [5]",
            ),
            (
                "bias",
                Tensor::zeros(&[2, 1]),
                "shape mismatch in linear bias: expected [2], got [2, 1]",
            ),
        ];
        for (name, replacement, message) in cases {
            let mut fc = LinearConfig::new(3, 2)
                .init::<f64>(&mut StdRng::seed_from_u64(0))
                .unwrap();
            let mut replacement = Some(replacement);
            fc.visit_params_mut(&mut |n, p| {
                if n == name {
                    *p = replacement.take().unwrap();
                }
            });
            assert_eq!(fc.infer(&x).unwrap_err().to_string(), message);
            assert_eq!(fc.backward(&x, &d_y).unwrap_err().to_string(), message);
        }
    }
}
