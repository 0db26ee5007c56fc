//! Sequence adapters that reduce a [`Sequence`] to one row per sample, each at every sample's
//! own length: [`LastHidden`], [`LastStep`], [`MeanPool`] and [`MaxPool`].

use core::fmt;

use crate::error::{check_shape, Result};
use crate::float::Float;
use crate::mode::Mode;
use crate::nn::{Layer, LayerGrads, Sequence};
use crate::params::{NamedTensors, Parameters};
use crate::tensor::Tensor;

/// The final hidden state of the last layer of a recurrent network, from its output
/// sequence: PyTorch's `h_n[-1]`, or `cat(h_n[-2], h_n[-1])` for a bidirectional network.
///
/// For sample `b` of length `l_b`, the forward direction's state is the output at step
/// `l_b − 1` and the reverse direction's the output at step 0 (where the reverse direction
/// ends, having started at `l_b − 1`). Input `(T, B, D·H)`, output `(B, D·H)`.
///
/// # Examples
///
/// ```
/// use recurrent::{LastHidden, Layer, Mode, Sequence, Tensor};
///
/// // T = 3, B = 1, one direction of 2 features; the sample has 2 valid steps
/// let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 0.0, 0.0], &[3, 1, 2])?;
/// let seq = Sequence::new(x, Some(vec![2]))?;
/// let (h, trace) = Layer::<f64>::forward(&LastHidden, &seq, Mode::Eval)?;
/// assert_eq!(h.as_slice(), &[3.0, 4.0]);
/// let grads = LastHidden.backward(&trace, &Tensor::full(&[1, 2], 1.0))?;
/// assert_eq!(grads.input.as_slice(), &[0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LastHidden;

/// The output at each sample's last valid step, all features: step `l_b − 1` of sample `b`.
/// Input `(T, B, F)`, output `(B, F)`. For a one-direction network this is [`LastHidden`];
/// for a bidirectional one, the reverse half is the reverse direction's *first* step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LastStep;

/// The mean of each sample's output over its valid steps `t < l_b`. Input `(T, B, F)`, output
/// `(B, F)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MeanPool;

/// The element-wise maximum of each sample's output over its valid steps `t < l_b`; the
/// gradient goes to the step the maximum was taken from (the first one, on ties). Input
/// `(T, B, F)`, output `(B, F)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MaxPool;

/// What a pooling adapter keeps for its backward pass: the input's sizes and lengths, and
/// for each output element the step it came from (for [`LastHidden`], [`LastStep`] and
/// [`MaxPool`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PoolTrace {
    steps: usize,
    batch: usize,
    features: usize,
    lengths: Vec<usize>,
    /// `(B, F)`: the step each output element was read from; empty for the mean.
    picked: Vec<usize>,
}

impl PoolTrace {
    fn new<T>(input: &Sequence<T>, picked: Vec<usize>) -> Self {
        PoolTrace {
            steps: input.steps(),
            batch: input.batch_size(),
            features: input.features(),
            lengths: (0..input.batch_size()).map(|b| input.length(b)).collect(),
            picked,
        }
    }

    /// `dL/d(input)` for `d_output`, after checking its shape.
    fn scatter<T: Float>(&self, d_output: &Tensor<T>) -> Result<Tensor<T>> {
        check_shape(
            "pooled output gradient",
            [self.batch, self.features].into(),
            d_output.raw_shape(),
        )?;
        let (b_n, f_n) = (self.batch, self.features);
        let mut d_input = Tensor::try_zeros(&[self.steps, b_n, f_n])?;
        let d_in = d_input.as_mut_slice();
        let d_out = d_output.as_slice();
        if self.picked.is_empty() {
            // mean: ∂mean/∂x_t = 1/l for every valid step
            for (b, &l) in self.lengths.iter().enumerate() {
                let scale = T::one() / T::from_f64(l as f64);
                for t in 0..l {
                    let row = (t * b_n + b) * f_n;
                    for (d, &g) in d_in[row..row + f_n]
                        .iter_mut()
                        .zip(&d_out[b * f_n..(b + 1) * f_n])
                    {
                        *d = g * scale;
                    }
                }
            }
        } else {
            for (i, (&t, &g)) in self.picked.iter().zip(d_out).enumerate() {
                let (b, f) = (i / f_n, i % f_n);
                d_in[(t * b_n + b) * f_n + f] = g;
            }
        }
        Ok(d_input)
    }
}

/// Reads one step per output element: `pick(b, f, length)` gives the step of element `f` of
/// sample `b`.
fn gather<T: Float>(
    input: &Sequence<T>,
    pick: impl Fn(usize, usize, usize) -> usize,
) -> Result<(Tensor<T>, PoolTrace)> {
    let (b_n, f_n) = (input.batch_size(), input.features());
    let x = input.data().as_slice();
    let mut picked = Vec::with_capacity(b_n * f_n);
    let mut out = Tensor::try_zeros(&[b_n, f_n])?;
    for (i, o) in out.as_mut_slice().iter_mut().enumerate() {
        let (b, f) = (i / f_n, i % f_n);
        let t = pick(b, f, input.length(b));
        picked.push(t);
        *o = x[(t * b_n + b) * f_n + f];
    }
    Ok((out, PoolTrace::new(input, picked)))
}

/// Implements `Layer` for a pooling adapter from its forward function.
macro_rules! pooling_layer {
    ($adapter:ident, $display:literal, |$input:ident| $forward:expr) => {
        impl<T: Float> Layer<T> for $adapter {
            type Input = Sequence<T>;
            type Output = Tensor<T>;
            type InputGrad = Tensor<T>;
            type OutputGrad = Tensor<T>;
            type Trace = PoolTrace;

            fn forward(&self, $input: &Sequence<T>, _mode: Mode) -> Result<(Tensor<T>, PoolTrace)> {
                $forward
            }

            fn backward(
                &self,
                trace: &PoolTrace,
                d_output: &Tensor<T>,
            ) -> Result<LayerGrads<T, Tensor<T>>> {
                Ok(LayerGrads {
                    input: trace.scatter(d_output)?,
                    params: NamedTensors::new(),
                })
            }
        }

        impl<T: Float> Parameters<T> for $adapter {
            fn visit_params(&self, _: &mut dyn FnMut(&str, &Tensor<T>)) {}

            fn visit_params_mut(&mut self, _: &mut dyn FnMut(&str, &mut Tensor<T>)) {}
        }

        impl fmt::Display for $adapter {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str($display)
            }
        }
    };
}

pooling_layer!(LastHidden, "LastHidden()", |input| {
    // a Sequence's directions always divide its features (Sequence::with_directions)
    let width = input.features() / input.directions();
    // the forward direction ends at the last valid step, the reverse one at step 0
    gather(input, |_, f, length| if f < width { length - 1 } else { 0 })
});

pooling_layer!(LastStep, "LastStep()", |input| gather(
    input,
    |_, _, length| length - 1
));

pooling_layer!(MaxPool, "MaxPool()", |input| {
    let (b_n, f_n) = (input.batch_size(), input.features());
    let x = input.data().as_slice();
    gather(input, |b, f, length| {
        // the first step holding the maximum, as torch.max over a dimension; a NaN wins
        let at = |t: usize| x[(t * b_n + b) * f_n + f];
        (1..length).fold(0, |best, t| {
            let (v, m) = (at(t), at(best));
            if v > m || (v.is_nan() && !m.is_nan()) {
                t
            } else {
                best
            }
        })
    })
});

pooling_layer!(MeanPool, "MeanPool()", |input| {
    let (b_n, f_n) = (input.batch_size(), input.features());
    let x = input.data().as_slice();
    let mut out = Tensor::try_zeros(&[b_n, f_n])?;
    for (b, row) in out.as_mut_slice().chunks_mut(f_n.max(1)).enumerate() {
        let l = input.length(b);
        for t in 0..l {
            let step = &x[(t * b_n + b) * f_n..(t * b_n + b + 1) * f_n];
            row.iter_mut().zip(step).for_each(|(o, &v)| *o = *o + v);
        }
        let n = T::from_f64(l as f64);
        row.iter_mut().for_each(|o| *o = *o / n);
    }
    Ok((out, PoolTrace::new(input, Vec::new())))
});
