//! [`TimeDistributed`]: a layer over rows applied at every step of a sequence.

use core::fmt;

use crate::error::{check_shape, Error, Result};
use crate::float::Float;
use crate::mode::Mode;
use crate::nn::{zero_padding, Layer, LayerGrads, Sequence};
use crate::params::Parameters;
use crate::tensor::Tensor;

/// A layer over rows (`(N, F) → (N, F')`, such as [`Linear`](crate::Linear) or
/// [`Dropout`](crate::Dropout)) applied at every step of a [`Sequence`]: Keras's
/// `TimeDistributed`, or PyTorch's habit of applying `nn.Linear` to a `(T, B, F)` tensor.
///
/// Its output keeps the input's lengths, and is zero past each sample's length; gradients
/// there are dropped, so padding never reaches the inner layer's parameters. Parameters keep
/// the inner layer's names.
///
/// # Examples
///
/// A per-step classifier head over an LSTM's output:
///
/// ```
/// use recurrent::{Layer, LinearConfig, Mode, Sequence, Tensor, TimeDistributed};
///
/// let head = TimeDistributed::new(LinearConfig::new(8, 5).init_seeded::<f64>(0)?);
/// let seq = Sequence::new(Tensor::full(&[4, 2, 8], 1.0), Some(vec![4, 2]))?;
/// let (logits, trace) = head.forward(&seq, Mode::Eval)?;
/// assert_eq!(logits.data().shape(), &[4, 2, 5]);
/// assert_eq!(logits.lengths(), Some(&[4, 2][..]));
/// assert_eq!(logits.data().at(&[3, 1, 0]), 0.0); // past the second sample's length
/// let grads = head.backward(&trace, &Tensor::full(&[4, 2, 5], 1.0))?;
/// assert_eq!(grads.input.shape(), &[4, 2, 8]);
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Clone, PartialEq)]
pub struct TimeDistributed<L> {
    layer: L,
}

/// What a [`TimeDistributed`] layer's forward pass keeps: the inner layer's trace and the
/// lengths of the input.
#[derive(Debug, Clone)]
pub struct TimeDistributedTrace<Tr> {
    inner: Tr,
    steps: usize,
    batch: usize,
    features: usize,
    lengths: Option<Vec<usize>>,
}

impl<L> TimeDistributed<L> {
    /// `layer` applied at every step.
    pub fn new(layer: L) -> Self {
        TimeDistributed { layer }
    }

    /// The inner layer.
    pub fn inner(&self) -> &L {
        &self.layer
    }

    /// The inner layer, mutably.
    pub fn inner_mut(&mut self) -> &mut L {
        &mut self.layer
    }

    /// The inner layer, consuming the adapter.
    pub fn into_inner(self) -> L {
        self.layer
    }
}

/// The width of the inner layer's `(rows, F)` result, which must keep one row per step.
fn row_width<T: Float>(x: &Tensor<T>, rows: usize) -> Result<usize> {
    match x.shape() {
        &[n, f] if n == rows => Ok(f),
        _ => Err(Error::ShapeMismatch {
            op: "time-distributed layer output",
            expected: [rows, x.shape().last().copied().unwrap_or(0)].into(),
            actual: x.raw_shape(),
        }),
    }
}

/// The steps of `input` as rows, `(T·B, F)`.
fn rows_of<T: Float>(input: &Sequence<T>) -> Result<Tensor<T>> {
    let (t_n, b_n, f_n) = (input.steps(), input.batch_size(), input.features());
    input.data().clone().reshape(&[t_n * b_n, f_n])
}

/// The inner layer's rows `out` as the output sequence of `input`: one row per step, zero
/// past each length.
fn to_sequence<T: Float>(input: &Sequence<T>, mut out: Tensor<T>) -> Result<Sequence<T>> {
    let (t_n, b_n) = (input.steps(), input.batch_size());
    let f_out = row_width(&out, t_n * b_n)?;
    zero_padding(out.as_mut_slice(), f_out, input.lengths());
    input.with_data(out.reshape(&[t_n, b_n, f_out])?)
}

impl<T: Float, L> Layer<T> for TimeDistributed<L>
where
    L: Layer<
        T,
        Input = Tensor<T>,
        Output = Tensor<T>,
        InputGrad = Tensor<T>,
        OutputGrad = Tensor<T>,
    >,
{
    type Input = Sequence<T>;
    type Output = Sequence<T>;
    type InputGrad = Tensor<T>;
    type OutputGrad = Tensor<T>;
    type Trace = TimeDistributedTrace<L::Trace>;

    fn forward(&self, input: &Sequence<T>, mode: Mode) -> Result<(Sequence<T>, Self::Trace)> {
        let (out, inner) = self.layer.forward(&rows_of(input)?, mode)?;
        let output = to_sequence(input, out)?;
        let trace = TimeDistributedTrace {
            inner,
            steps: input.steps(),
            batch: input.batch_size(),
            features: output.features(),
            lengths: input.lengths().map(<[usize]>::to_vec),
        };
        Ok((output, trace))
    }

    fn backward(
        &self,
        trace: &Self::Trace,
        d_output: &Tensor<T>,
    ) -> Result<LayerGrads<T, Tensor<T>>> {
        let (t_n, b_n, f_out) = (trace.steps, trace.batch, trace.features);
        check_shape(
            "time-distributed output gradient",
            [t_n, b_n, f_out].into(),
            d_output.raw_shape(),
        )?;
        let lengths = trace.lengths.as_deref();
        let mut d_rows = d_output.clone().reshape(&[t_n * b_n, f_out])?;
        zero_padding(d_rows.as_mut_slice(), f_out, lengths);
        let grads = self.layer.backward(&trace.inner, &d_rows)?;
        let mut d_input = grads.input;
        let f_in = row_width(&d_input, t_n * b_n)?;
        zero_padding(d_input.as_mut_slice(), f_in, lengths);
        Ok(LayerGrads {
            input: d_input.reshape(&[t_n, b_n, f_in])?,
            params: grads.params,
        })
    }

    /// The inner layer's name: a named layer keeps its name when it is time-distributed.
    fn name(&self) -> Option<&str> {
        self.layer.name()
    }

    fn infer(&self, input: &Sequence<T>) -> Result<Sequence<T>> {
        to_sequence(input, self.layer.infer(&rows_of(input)?)?)
    }
}

impl<T: Float, L: Parameters<T>> Parameters<T> for TimeDistributed<L> {
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Tensor<T>)) {
        self.layer.visit_params(f);
    }

    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Tensor<T>)) {
        self.layer.visit_params_mut(f);
    }
}

impl<L: fmt::Display> fmt::Display for TimeDistributed<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TimeDistributed({})", self.layer)
    }
}

impl<L: fmt::Debug> fmt::Debug for TimeDistributed<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TimeDistributed").field(&self.layer).finish()
    }
}
