//! The [`Layer`] trait that every layer implements, so that layers compose into models whose
//! backward pass is one call.

use crate::error::Result;
use crate::float::Float;
use crate::mode::Mode;
use crate::nn::{Chain, Named};
use crate::params::{NamedTensors, Parameters};

/// What a [`Layer`]'s backward pass returns: the gradient of the loss with respect to the
/// layer's input, and with respect to each of its parameters under the parameters' names.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerGrads<T, G> {
    /// `dL/d(input)`; `()` for an input without a gradient (token ids).
    pub input: G,
    /// `dL/dθ`, named as [`Parameters::visit_params`] names the parameters.
    pub params: NamedTensors<T>,
}

/// A layer of a model: a forward pass that returns its output and what its backward pass
/// needs, and a backward pass that returns the gradients as values.
///
/// Every layer of the crate implements it — [`Embedding`](crate::Embedding),
/// [`Linear`](crate::Linear), [`Dropout`](crate::Dropout), the recurrent networks
/// ([`Lstm`](crate::Lstm), [`Gru`](crate::Gru), [`Rnn`](crate::Rnn), and
/// [`Recurrent`](crate::Recurrent), [`Bidirectional`](crate::Bidirectional) and
/// [`Stacked`](crate::Stacked)), and the sequence adapters
/// ([`LastHidden`](crate::LastHidden), [`MeanPool`](crate::MeanPool),
/// [`MaxPool`](crate::MaxPool), [`LastStep`](crate::LastStep),
/// [`TimeDistributed`](crate::TimeDistributed)) — and layers compose with
/// [`then`](Layer::then) into a [`Chain`], itself a layer, whose types are checked when it is
/// built: a layer's output must be the next one's input.
///
/// Forward takes `&self` and the [`Mode`]: a layer never changes during a forward pass, so one
/// model can serve several threads. [`infer`](Layer::infer) is the pass without a trace
/// (PyTorch's `torch.no_grad()`): evaluation mode, less memory, less time.
///
/// # Examples
///
/// A whole training step of a sentiment classifier: build, forward, loss, one backward, step.
///
/// ```
/// use recurrent::rand::{rngs::StdRng, SeedableRng};
/// use recurrent::{
///     binary_cross_entropy_with_logits, AdamConfig, EmbeddingConfig, LastHidden, Layer,
///     LinearConfig, LstmConfig, Mode, Optimizer, Parameters, Tensor, TokenBatch,
/// };
///
/// let mut rng = StdRng::seed_from_u64(0);
/// let mut model = EmbeddingConfig::new(100, 16).init::<f32>(&mut rng)?.named("embedding")
///     .then(LstmConfig::new(16, 32).with_bidirectional(true).init(&mut rng)?.named("rnn"))
///     .then(LastHidden)
///     .then(LinearConfig::new(64, 1).init(&mut rng)?.named("head"));
/// assert_eq!(model.param_names()[1], "rnn.weight_ih_l0");
///
/// // two reviews of 5 and 3 tokens, time-major, and their labels
/// let batch = TokenBatch::new(vec![4, 8, 15, 16, 23, 42, 7, 0, 9, 0], 5, 2, Some(vec![5, 3]))?;
/// let labels = Tensor::from_vec(vec![1.0, 0.0], &[2, 1])?;
///
/// let mut adam = AdamConfig::new(1e-3).init()?;
/// let (logits, trace) = model.forward(&batch, Mode::Train { seed: 0 })?;
/// let loss = binary_cross_entropy_with_logits(&logits, &labels)?;
/// let grads = model.backward(&trace, &loss.grad)?;
/// adam.step(&mut model, &grads.params)?;
///
/// let prediction = model.infer(&batch)?; // no trace, dropout off
/// assert_eq!(prediction.shape(), &[2, 1]);
/// # Ok::<(), recurrent::Error>(())
/// ```
pub trait Layer<T: Float>: Parameters<T> {
    /// What the layer reads: a [`Tensor`](crate::Tensor), a [`Sequence`](crate::Sequence) or
    /// a [`TokenBatch`](crate::TokenBatch).
    type Input;
    /// What the layer returns.
    type Output;
    /// The gradient of the input: a tensor of the input's features, `()` for token ids.
    type InputGrad;
    /// The gradient of the output: a tensor of the output's features.
    type OutputGrad;
    /// What the forward pass keeps for the backward pass.
    type Trace;

    /// Runs the layer on `input` in `mode`; returns the output and what
    /// [`backward`](Layer::backward) needs.
    ///
    /// # Errors
    ///
    /// When `input` does not fit the layer, an error naming the expected and actual shapes.
    fn forward(&self, input: &Self::Input, mode: Mode) -> Result<(Self::Output, Self::Trace)>;

    /// Backpropagates `d_output`, the gradient of the loss with respect to the output of the
    /// forward pass that made `trace`.
    ///
    /// # Errors
    ///
    /// When `d_output` does not have the output's shape, or `trace` was not made by this
    /// layer with its current parameters.
    fn backward(
        &self,
        trace: &Self::Trace,
        d_output: &Self::OutputGrad,
    ) -> Result<LayerGrads<T, Self::InputGrad>>;

    /// The evaluation-mode output with no trace kept, PyTorch's `torch.no_grad()`. Equal to
    /// the output of `forward(input, Mode::Eval)`; layers that can skip saving what backward
    /// needs (the recurrent networks) do, and run in less memory and time.
    ///
    /// # Errors
    ///
    /// As [`forward`](Layer::forward).
    fn infer(&self, input: &Self::Input) -> Result<Self::Output> {
        self.forward(input, Mode::Eval).map(|(output, _)| output)
    }

    /// The name this layer's parameters are prefixed with inside a [`Chain`]; `None` (the
    /// default) lets the chain name it by its position, as PyTorch's `nn.Sequential` does.
    /// [`Named`] gives a layer a name.
    fn name(&self) -> Option<&str> {
        None
    }

    /// This layer followed by `next`, as one layer: `next` reads this layer's output, and
    /// the backward pass of the chain runs both backward passes in reverse order. Parameters
    /// are named `"{position}.{name}"` as in PyTorch's `nn.Sequential` (`"0.weight"`), or
    /// `"{name}.{…}"` for a layer given a name with [`named`](Layer::named).
    fn then<N>(self, next: N) -> Chain<Self, N>
    where
        Self: Sized,
        N: Layer<T, Input = Self::Output, InputGrad = Self::OutputGrad>,
    {
        Chain::new(self, next)
    }

    /// How many positions this layer takes at the start of a [`Chain`]: 1 for a layer, a
    /// chain's own number of layers for a chain, so that `a.then(b).then(c)` counts its
    /// layers 0, 1, 2 (as `nn.Sequential(a, b, c)`) however it was built. Only [`Chain`]
    /// overrides it.
    fn chain_len(&self) -> usize {
        1
    }

    /// This layer with a name, which prefixes its parameters' names: `"rnn.weight_ih_l0"`
    /// for an LSTM named `"rnn"`.
    fn named(self, name: impl Into<String>) -> Named<Self>
    where
        Self: Sized,
    {
        Named::new(name, self)
    }
}
