//! The crate's sequence layers (the recurrent networks, `Recurrent`, `Bidirectional`,
//! `Stacked`) are [`Layer`]s from [`Sequence`] to [`Sequence`], starting from a zero state.

use crate::error::{Error, Result};
use crate::float::Float;
use crate::layer::SequenceLayer;
use crate::mode::Mode;
use crate::nn::{Layer, LayerGrads, Sequence};
use crate::tensor::Tensor;

/// What a sequence layer keeps for its [`Layer::backward`]: its own trace.
#[derive(Debug, Clone)]
pub struct SequenceTrace<Tr> {
    inner: Tr,
}

impl<Tr> SequenceTrace<Tr> {
    /// The sequence layer's trace, for [`SequenceLayer::backward_with_state`].
    pub fn inner(&self) -> &Tr {
        &self.inner
    }
}

/// Rejects a batch-first layer: a [`Sequence`] is time-major.
fn check_time_major<T: Float, S: SequenceLayer<T>>(layer: &S) -> Result<()> {
    if layer.batch_first() {
        return Err(Error::InvalidArgument {
            name: "layer",
            reason: "a batch-first sequence layer cannot read a time-major Sequence; build it \
                     without batch_first to use it as a Layer"
                .into(),
        });
    }
    Ok(())
}

/// Implements [`Layer`] for sequence layers: each reads a [`Sequence`] (its lengths included)
/// from a zero initial state and returns its output sequence, with as many direction blocks
/// as the layer has; the final state is not returned (use [`LastHidden`](crate::LastHidden)
/// for `h_n` of the last layer, or [`SequenceLayer::forward_with_state`] for every layer's state).
/// Dropout between stacked layers follows the [`Mode`].
macro_rules! sequence_layer {
    ($($ty:ident<$param:ident $(: $bound:path)?>),*) => {$(
        impl<T: Float, $param $(: $bound)?> Layer<T> for crate::layer::$ty<$param>
        where
            crate::layer::$ty<$param>: SequenceLayer<T>,
        {
            type Input = Sequence<T>;
            type Output = Sequence<T>;
            type InputGrad = Tensor<T>;
            type OutputGrad = Tensor<T>;
            type Trace = SequenceTrace<<Self as SequenceLayer<T>>::Trace>;

            fn forward(&self, input: &Sequence<T>, mode: Mode) -> Result<(Sequence<T>, Self::Trace)> {
                forward(self, input, mode)
            }

            fn backward(
                &self,
                trace: &Self::Trace,
                d_output: &Tensor<T>,
            ) -> Result<LayerGrads<T, Tensor<T>>> {
                let grads = SequenceLayer::backward_with_state(self, &trace.inner, Some(d_output), None)?;
                Ok(LayerGrads { input: grads.input, params: grads.params })
            }

            /// The pass without a trace, [`SequenceLayer::infer_with_state`]: less memory and
            /// time than `forward`, the same output.
            fn infer(&self, input: &Sequence<T>) -> Result<Sequence<T>> {
                check_time_major(self)?;
                let out = self.infer_with_state(input.data(), None, input.lengths())?;
                input.with_data(out.output)?.with_directions(self.directions())
            }
        }
    )*};
}

sequence_layer!(Recurrent<C>, Bidirectional<L>, Stacked<L>, Network<C>);

/// The forward pass of a sequence layer as a [`Layer`].
fn forward<T: Float, S: SequenceLayer<T>>(
    layer: &S,
    input: &Sequence<T>,
    mode: Mode,
) -> Result<(Sequence<T>, SequenceTrace<S::Trace>)> {
    check_time_major(layer)?;
    let out = SequenceLayer::forward_with_state(layer, input.data(), None, input.lengths(), mode)?;
    let output = input
        .with_data(out.output)?
        .with_directions(layer.directions())?;
    Ok((output, SequenceTrace { inner: out.trace }))
}
