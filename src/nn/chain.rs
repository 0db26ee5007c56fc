//! [`Chain`]: layers composed in sequence, one layer whose backward pass is one call; and
//! [`Named`], a layer with a name for its parameters.

use core::fmt;

use crate::error::{without_paths, Error, Result};
use crate::float::Float;
use crate::mode::Mode;
use crate::nn::{Layer, LayerGrads};
use crate::params::{NamedTensors, Parameters};
use crate::tensor::Tensor;

/// Two layers in sequence, made by [`Layer::then`]: the second reads the first one's output.
/// A longer chain nests (`a.then(b).then(c)` is `Chain<Chain<A, B>, C>`) and counts its
/// layers flat, `0, 1, 2`, as PyTorch's `nn.Sequential` does.
///
/// The types are checked when the chain is built: `b`'s input must be `a`'s output. The
/// feature sizes are checked at the first forward pass; an error there names the layer that
/// failed and the one before it ([`Error::InLayer`]).
///
/// Each layer is given its own seed in training mode ([`Mode::for_layer`] with its position),
/// so two dropout layers draw different masks.
///
/// # Examples
///
/// ```
/// use recurrent::rand::{rngs::StdRng, SeedableRng};
/// use recurrent::{DropoutConfig, Layer, LinearConfig, Mode, Parameters, Tensor};
///
/// let mut rng = StdRng::seed_from_u64(0);
/// let mlp = LinearConfig::new(4, 8).init::<f64>(&mut rng)?
///     .then(DropoutConfig::new(0.1).init()?)
///     .then(LinearConfig::new(8, 2).init(&mut rng)?.named("head"));
/// assert_eq!(mlp.param_names(), ["0.weight", "0.bias", "head.weight", "head.bias"]);
///
/// let x = Tensor::randn(&[3, 4], &mut rng);
/// let (y, trace) = mlp.forward(&x, Mode::Train { seed: 1 })?;
/// let grads = mlp.backward(&trace, &y.map(|_| 1.0))?;
/// assert_eq!(grads.input.shape(), &[3, 4]);
/// assert_eq!(grads.params.len(), 4);
///
/// // a layer that cannot read its predecessor's output is named, with both shapes
/// let bad = LinearConfig::new(4, 8).init::<f64>(&mut rng)?
///     .then(LinearConfig::new(6, 2).init(&mut rng)?);
/// let e = bad.forward(&x, Mode::Eval).unwrap_err();
/// assert_eq!(
///     e.to_string(),
///     "in layer 1 (Linear<f64>), reading the output of layer 0 (Linear<f64>): \
///      shape mismatch in linear input: expected [3, 6], got [3, 8]"
/// );
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Clone)]
pub struct Chain<A, B> {
    first: A,
    second: B,
    /// The number of layers `first` holds when it is itself a chain (whose layers are then
    /// counted flat with this chain's); 0 when it is one layer.
    first_chain_len: usize,
}

/// What a [`Chain`]'s forward pass keeps: the traces of both of its layers.
#[derive(Debug, Clone)]
pub struct ChainTrace<A, B> {
    first: A,
    second: B,
}

impl<A, B> Chain<A, B> {
    /// `first` then `second`; a chain as `first` keeps counting its layers.
    pub(crate) fn new<T: Float>(first: A, second: B) -> Self
    where
        A: Layer<T>,
    {
        let len = first.chain_len();
        Chain {
            first,
            second,
            first_chain_len: if len > 1 { len } else { 0 },
        }
    }

    /// The number of positions in the chain: its layers, counted flat along `then`, a chain
    /// passed whole to `then` (`a.then(b.then(c))`) counting as one, as a nested
    /// `nn.Sequential` does.
    pub fn len(&self) -> usize {
        self.first_chain_len.max(1) + 1
    }

    /// Always `false`: a chain has at least two layers.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The first layer (a chain of all but the last layer when there are more than two).
    pub fn first(&self) -> &A {
        &self.first
    }

    /// The last layer.
    pub fn last(&self) -> &B {
        &self.second
    }

    /// The first layer (or chain of all but the last), mutably.
    pub fn first_mut(&mut self) -> &mut A {
        &mut self.first
    }

    /// The last layer, mutably.
    pub fn last_mut(&mut self) -> &mut B {
        &mut self.second
    }

    /// The two parts, consuming the chain.
    pub fn into_parts(self) -> (A, B) {
        (self.first, self.second)
    }

    /// The position of the second layer.
    fn second_index(&self) -> usize {
        self.first_chain_len.max(1)
    }
}

/// How a chain names one of its layers in errors: its name or position, and its type.
fn describe<T: Float, L: Layer<T>>(layer: &L, index: usize) -> String {
    let kind = without_paths(core::any::type_name::<L>());
    match layer.name() {
        Some(name) => format!("`{name}` ({kind})"),
        None => format!("{index} ({kind})"),
    }
}

/// The prefix a chain gives the parameters of a layer at `index`: none for a named layer
/// (which prefixes its own) or a nested chain's first part (which names its layers itself).
fn prefix<T: Float, L: Layer<T>>(layer: &L, index: usize, is_chain: bool) -> String {
    if layer.name().is_some() || is_chain {
        String::new()
    } else {
        format!("{index}.")
    }
}

impl<A, B> Chain<A, B> {
    /// Names a failure of the first layer; a chain there has named its own layer, at the same
    /// position.
    fn in_first<T: Float>(&self, e: Error) -> Error
    where
        A: Layer<T>,
    {
        if self.first_chain_len > 0 {
            return e;
        }
        Error::InLayer {
            layer: describe(&self.first, 0),
            previous: None,
            source: Box::new(e),
        }
    }

    /// Names a failure of the second layer in the forward pass, and the layer whose output
    /// it read.
    fn in_second<T: Float>(&self, e: Error) -> Error
    where
        A: Layer<T>,
        B: Layer<T>,
    {
        let index = self.second_index();
        let previous = if self.first_chain_len > 0 {
            format!("{}", index - 1)
        } else {
            describe(&self.first, index - 1)
        };
        Error::InLayer {
            layer: describe(&self.second, index),
            previous: Some(previous),
            source: Box::new(e),
        }
    }

    /// Names a failure of the second layer in the backward pass.
    fn in_second_backward<T: Float>(&self, e: Error) -> Error
    where
        B: Layer<T>,
    {
        Error::InLayer {
            layer: describe(&self.second, self.second_index()),
            previous: None,
            source: Box::new(e),
        }
    }
}

impl<T: Float, A, B> Layer<T> for Chain<A, B>
where
    A: Layer<T>,
    B: Layer<T, Input = A::Output, InputGrad = A::OutputGrad>,
{
    type Input = A::Input;
    type Output = B::Output;
    type InputGrad = A::InputGrad;
    type OutputGrad = B::OutputGrad;
    type Trace = ChainTrace<A::Trace, B::Trace>;

    fn forward(&self, input: &A::Input, mode: Mode) -> Result<(B::Output, Self::Trace)> {
        let first_mode = if self.first_chain_len > 0 {
            mode // a nested chain derives its layers' seeds from positions 0, 1, …
        } else {
            mode.for_layer(0)
        };
        let (middle, first) = self
            .first
            .forward(input, first_mode)
            .map_err(|e| self.in_first(e))?;
        let (output, second) = self
            .second
            .forward(&middle, mode.for_layer(self.second_index()))
            .map_err(|e| self.in_second(e))?;
        Ok((output, ChainTrace { first, second }))
    }

    fn backward(
        &self,
        trace: &Self::Trace,
        d_output: &B::OutputGrad,
    ) -> Result<LayerGrads<T, A::InputGrad>> {
        let second = self
            .second
            .backward(&trace.second, d_output)
            .map_err(|e| self.in_second_backward(e))?;
        let first = self
            .first
            .backward(&trace.first, &second.input)
            .map_err(|e| self.in_first(e))?;
        let mut params = NamedTensors::new();
        params.extend_prefixed(
            &prefix(&self.first, 0, self.first_chain_len > 0),
            first.params,
        );
        params.extend_prefixed(
            &prefix(&self.second, self.second_index(), false),
            second.params,
        );
        Ok(LayerGrads {
            input: first.input,
            params,
        })
    }

    fn infer(&self, input: &A::Input) -> Result<B::Output> {
        let middle = self.first.infer(input).map_err(|e| self.in_first(e))?;
        self.second.infer(&middle).map_err(|e| self.in_second(e))
    }

    fn chain_len(&self) -> usize {
        self.len()
    }
}

impl<T: Float, A, B> Parameters<T> for Chain<A, B>
where
    A: Layer<T>,
    B: Layer<T, Input = A::Output, InputGrad = A::OutputGrad>,
{
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Tensor<T>)) {
        let first = prefix(&self.first, 0, self.first_chain_len > 0);
        self.first
            .visit_params(&mut |n, t| f(&format!("{first}{n}"), t));
        let second = prefix(&self.second, self.second_index(), false);
        self.second
            .visit_params(&mut |n, t| f(&format!("{second}{n}"), t));
    }

    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Tensor<T>)) {
        let first = prefix(&self.first, 0, self.first_chain_len > 0);
        self.first
            .visit_params_mut(&mut |n, t| f(&format!("{first}{n}"), t));
        let second = prefix(&self.second, self.second_index(), false);
        self.second
            .visit_params_mut(&mut |n, t| f(&format!("{second}{n}"), t));
    }
}

impl<A: fmt::Display, B: fmt::Display> fmt::Display for Chain<A, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first_chain_len > 0 {
            writeln!(f, "{}", self.first)?;
        } else {
            writeln!(f, "(0): {}", self.first)?;
        }
        write!(f, "({}): {}", self.second_index(), self.second)
    }
}

impl<A: fmt::Debug, B: fmt::Debug> fmt::Debug for Chain<A, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chain")
            .field("first", &self.first)
            .field("second", &self.second)
            .finish()
    }
}

/// A layer with a name, made by [`Layer::named`]: its parameters are named
/// `"{name}.{parameter}"`, in a [`Chain`] or alone, as a PyTorch module's attribute names its
/// submodule's parameters (`rnn.weight_ih_l0`).
///
/// # Examples
///
/// ```
/// use recurrent::{Layer, LinearConfig, Parameters};
///
/// let head = LinearConfig::new(8, 2).init_seeded::<f32>(0)?.named("head");
/// assert_eq!(head.param_names(), ["head.weight", "head.bias"]);
/// assert_eq!(head.inner().out_features(), 2);
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Clone, PartialEq)]
pub struct Named<L> {
    name: String,
    layer: L,
}

impl<L> Named<L> {
    pub(crate) fn new(name: impl Into<String>, layer: L) -> Self {
        Named {
            name: name.into(),
            layer,
        }
    }

    /// The layer.
    pub fn inner(&self) -> &L {
        &self.layer
    }

    /// The layer, mutably.
    pub fn inner_mut(&mut self) -> &mut L {
        &mut self.layer
    }

    /// The layer, consuming the name.
    pub fn into_inner(self) -> L {
        self.layer
    }
}

impl<T: Float, L: Layer<T>> Layer<T> for Named<L> {
    type Input = L::Input;
    type Output = L::Output;
    type InputGrad = L::InputGrad;
    type OutputGrad = L::OutputGrad;
    type Trace = L::Trace;

    fn forward(&self, input: &L::Input, mode: Mode) -> Result<(L::Output, L::Trace)> {
        self.layer.forward(input, mode)
    }

    fn backward(
        &self,
        trace: &L::Trace,
        d_output: &L::OutputGrad,
    ) -> Result<LayerGrads<T, L::InputGrad>> {
        let grads = self.layer.backward(trace, d_output)?;
        let mut params = NamedTensors::new();
        params.extend_prefixed(&format!("{}.", self.name), grads.params);
        Ok(LayerGrads {
            input: grads.input,
            params,
        })
    }

    fn infer(&self, input: &L::Input) -> Result<L::Output> {
        self.layer.infer(input)
    }

    fn name(&self) -> Option<&str> {
        Some(&self.name)
    }
}

impl<T: Float, L: Parameters<T>> Parameters<T> for Named<L> {
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Tensor<T>)) {
        let name = &self.name;
        self.layer
            .visit_params(&mut |n, t| f(&format!("{name}.{n}"), t));
    }

    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Tensor<T>)) {
        let name = &self.name;
        self.layer
            .visit_params_mut(&mut |n, t| f(&format!("{name}.{n}"), t));
    }
}

impl<L: fmt::Display> fmt::Display for Named<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.layer)
    }
}

impl<L: fmt::Debug> fmt::Debug for Named<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Named")
            .field("name", &self.name)
            .field("layer", &self.layer)
            .finish()
    }
}
