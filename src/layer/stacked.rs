//! `Stacked<L>`: layers in sequence, each reading the previous one's output.

use core::fmt;

use rand::{rngs::StdRng, SeedableRng};

use super::ops::{
    check_lengths, check_unique_names, concat_slots, sequence_dims, split_state,
    split_state_gradient,
};
use super::{Direction, SequenceGrads, SequenceLayer, SequenceOutput};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::mode::Mode;
use crate::nn::{check_probability, dropout_scale};
use crate::params::{NamedTensors, Parameters};
use crate::state::{State, StatePart};
use crate::tensor::Tensor;

/// Layers run one after the other, each reading the previous one's output, as PyTorch's
/// `num_layers`; with optional dropout between them (PyTorch's `dropout` argument).
///
/// Every layer sees the same sequence lengths. States stack the layers' slots in order, so
/// `Stacked<Recurrent<_>>` has PyTorch's `(L, B, H)` and `Stacked<Bidirectional<_>>` PyTorch's
/// layer-major, direction-minor `(2·L, B, H)`. Layer `k`'s parameters are named `…_l{k}`.
///
/// # Dropout
///
/// With a dropout `p` ([`Stacked::new`]'s second argument), in [`Mode::Train`] each element of
/// every layer's output except the last layer's is zeroed with probability `p` and the others
/// are scaled by `1/(1 − p)`. The masks of a call are drawn from a generator seeded with the
/// mode's seed, and nothing else: a forward pass is a function of its inputs, its parameters
/// and that seed, whatever other calls ran before or on other threads. A training loop gives
/// each step masks of its own by passing a new seed per step (`Mode::Train { seed: step }`).
/// In [`Mode::Eval`] dropout does nothing.
///
/// # Examples
///
/// ```
/// use recurrent::rand::{rngs::StdRng, SeedableRng};
/// use recurrent::{LstmCellConfig, Mode, Parameters, Recurrent, SequenceLayer, Stacked, Tensor};
///
/// let mut rng = StdRng::seed_from_u64(0);
/// let stack = Stacked::new(vec![
///     Recurrent::new(LstmCellConfig::new(4, 8).init::<f32>(&mut rng)?),
///     Recurrent::new(LstmCellConfig::new(8, 8).init(&mut rng)?),
/// ], 0.2)?;
/// let x = Tensor::randn(&[5, 3, 4], &mut rng);
/// let out = stack.forward_with_state(&x, None, None, Mode::Train { seed: 7 })?;
/// assert_eq!(out.state.h().shape(), &[2, 3, 8]);
/// assert_eq!(stack.param_names()[4], "weight_ih_l1");
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Clone)]
pub struct Stacked<L> {
    layers: Vec<L>,
    dropout: f64,
}

/// What [`SequenceLayer::forward_with_state`] of a [`Stacked`] layer keeps for its backward
/// pass.
#[derive(Clone)]
pub struct StackedTrace<T, Tr> {
    layers: Vec<Tr>,
    /// The dropout mask applied to each layer's output but the last (`0` or `1/(1 − p)`), if
    /// dropout was active.
    masks: Vec<Option<Tensor<T>>>,
    /// Samples in the call.
    batch: usize,
}

impl<T, Tr> fmt::Debug for StackedTrace<T, Tr> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StackedTrace")
            .field("layers", &self.layers.len())
            .field("dropout", &self.masks.iter().any(Option::is_some))
            .finish_non_exhaustive()
    }
}

impl<L> Stacked<L> {
    /// The layers in order, each placed at its depth so that its parameters carry PyTorch's
    /// names (`weight_ih_l{k}`).
    ///
    /// `dropout` is the probability of zeroing each element of every layer's output but the
    /// last, in training mode (PyTorch's `dropout` argument; 0 for none).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if there is no layer, if a layer's input size is not the
    /// previous layer's output size, if the layers differ in state layout or in layout
    /// (batch-first or not), if two of their parameters end up with the same name (a layer
    /// that does not implement [`SequenceLayer::set_position`], or a stack inside a stack), or
    /// unless `0 ≤ dropout < 1`.
    pub fn new<T: Float>(layers: Vec<L>, dropout: f64) -> Result<Self>
    where
        L: SequenceLayer<T>,
    {
        let invalid = |reason: String| Error::InvalidArgument {
            name: "stacked layers",
            reason,
        };
        let Some(first) = layers.first() else {
            return Err(invalid("a stack needs at least one layer".into()));
        };
        for (k, pair) in layers.windows(2).enumerate() {
            let (below, above) = (&pair[0], &pair[1]);
            if above.input_size() != below.output_size() {
                return Err(invalid(format!(
                    "layer {} reads {} features but layer {k} outputs {}",
                    k + 1,
                    above.input_size(),
                    below.output_size()
                )));
            }
            if above.state_parts() != first.state_parts()
                || above.batch_first() != first.batch_first()
            {
                return Err(invalid(format!(
                    "layer {} has state {:?} (batch_first {}), layer 0 has {:?} (batch_first {})",
                    k + 1,
                    above.state_parts(),
                    above.batch_first(),
                    first.state_parts(),
                    first.batch_first()
                )));
            }
        }
        check_probability("dropout", dropout)?;
        let mut stack = Stacked { layers, dropout };
        SequenceLayer::<T>::set_position(&mut stack, 0, Direction::Forward);
        check_unique_names("stacked layers", &stack)?;
        Ok(stack)
    }

    /// The layers, first to last.
    pub fn layers(&self) -> &[L] {
        &self.layers
    }

    /// The dropout probability.
    pub fn dropout(&self) -> f64 {
        self.dropout
    }

    /// Runs `layer_call` (a layer's `forward` or `infer`) on each layer in turn, with dropout
    /// masks drawn from `rng` if given.
    fn run<T: Float, Tr>(
        &self,
        input: &Tensor<T>,
        initial: Option<&State<T>>,
        lengths: Option<&[usize]>,
        mut rng: Option<StdRng>,
        layer_call: impl Fn(
            &L,
            usize,
            &Tensor<T>,
            Option<&State<T>>,
            Option<&[usize]>,
        ) -> Result<SequenceOutput<T, Tr>>,
    ) -> Result<SequenceOutput<T, StackedTrace<T, Tr>>>
    where
        L: SequenceLayer<T>,
    {
        let first = &self.layers[0];
        let op = "stacked input";
        let (seq_len, batch) = sequence_dims(op, input, first.input_size(), first.batch_first())?;
        check_lengths(lengths, seq_len, batch)?;
        let slots: Vec<usize> = self.layers.iter().map(|l| l.state_slots()).collect();
        let layout = first.state_parts();
        let initial = split_state("initial state", initial, &layout, &slots, batch)?;
        let last = self.layers.len() - 1;
        let (mut traces, mut states, mut masks) = (Vec::new(), Vec::new(), Vec::new());
        let mut output: Option<Tensor<T>> = None;
        for (k, (layer, init)) in self.layers.iter().zip(&initial).enumerate() {
            let x = output.as_ref().unwrap_or(input);
            let mut out = layer_call(layer, k, x, init.as_ref(), lengths)?;
            if k < last {
                masks.push(rng.as_mut().map(|rng| {
                    let mask = dropout_scale(out.output.shape(), self.dropout, rng);
                    multiply(&mut out.output, &mask);
                    mask
                }));
            }
            traces.push(out.trace);
            states.push(out.state);
            output = Some(out.output);
        }
        Ok(SequenceOutput {
            output: output.expect("a stack has at least one layer"),
            state: concat_slots(&states),
            trace: StackedTrace {
                layers: traces,
                masks,
                batch,
            },
        })
    }
}

/// `x ← x ⊙ mask`.
fn multiply<T: Float>(x: &mut Tensor<T>, mask: &Tensor<T>) {
    x.as_mut_slice()
        .iter_mut()
        .zip(mask.as_slice())
        .for_each(|(v, &m)| *v = *v * m);
}

impl<T: Float, L: SequenceLayer<T>> SequenceLayer<T> for Stacked<L> {
    type Trace = StackedTrace<T, L::Trace>;

    fn input_size(&self) -> usize {
        self.layers[0].input_size()
    }

    fn output_size(&self) -> usize {
        self.layers[self.layers.len() - 1].output_size()
    }

    fn state_parts(&self) -> Vec<StatePart> {
        self.layers[0].state_parts()
    }

    fn directions(&self) -> usize {
        self.layers[self.layers.len() - 1].directions()
    }

    fn state_slots(&self) -> usize {
        self.layers.iter().map(|l| l.state_slots()).sum()
    }

    fn batch_first(&self) -> bool {
        self.layers[0].batch_first()
    }

    /// Runs the layers in turn, layer `k` in the mode's [`for_layer`](Mode::for_layer)`(k)`;
    /// in [`Mode::Train`] the dropout masks between them are drawn from a `StdRng` seeded with
    /// the mode's seed.
    fn forward_with_state(
        &self,
        input: &Tensor<T>,
        initial: Option<&State<T>>,
        lengths: Option<&[usize]>,
        mode: Mode,
    ) -> Result<SequenceOutput<T, Self::Trace>> {
        let rng = mode
            .seed()
            .filter(|_| self.dropout > 0.0)
            .map(StdRng::seed_from_u64);
        let call = |l: &L, k: usize, x: &Tensor<T>, s: Option<&State<T>>, len: Option<&[usize]>| {
            l.forward_with_state(x, s, len, mode.for_layer(k))
        };
        self.run(input, initial, lengths, rng, call)
    }

    /// Runs each layer's [`infer_with_state`](SequenceLayer::infer_with_state) in turn,
    /// without dropout.
    fn infer_with_state(
        &self,
        input: &Tensor<T>,
        initial: Option<&State<T>>,
        lengths: Option<&[usize]>,
    ) -> Result<SequenceOutput<T, ()>> {
        let call = |l: &L, _: usize, x: &Tensor<T>, s: Option<&State<T>>, len: Option<&[usize]>| {
            l.infer_with_state(x, s, len)
        };
        let out = self.run(input, initial, lengths, None, call)?;
        Ok(out.without_trace())
    }

    fn backward_with_state(
        &self,
        trace: &Self::Trace,
        d_output: Option<&Tensor<T>>,
        d_state: Option<&State<T>>,
    ) -> Result<SequenceGrads<T>> {
        if trace.layers.len() != self.layers.len() {
            return Err(Error::TraceMismatch {
                what: "number of layers",
                expected: self.layers.len(),
                actual: trace.layers.len(),
            });
        }
        let slots: Vec<usize> = self.layers.iter().map(|l| l.state_slots()).collect();
        let layout = self.state_parts();
        let op = "final state gradient";
        let d_states = split_state_gradient(op, d_state, &layout, &slots, trace.batch)?;
        let mut d_out: Option<Tensor<T>> = None;
        let mut initial = Vec::with_capacity(self.layers.len());
        let mut layer_params = Vec::with_capacity(self.layers.len());
        let mut input = None;
        for (k, layer) in self.layers.iter().enumerate().rev() {
            let d = if k == self.layers.len() - 1 {
                d_output
            } else {
                d_out.as_ref()
            };
            let mut g = layer.backward_with_state(&trace.layers[k], d, d_states[k].as_ref())?;
            initial.push(g.initial_state);
            layer_params.push(g.params);
            if k == 0 {
                input = Some(g.input);
            } else {
                if let Some(mask) = &trace.masks[k - 1] {
                    multiply(&mut g.input, mask);
                }
                d_out = Some(g.input);
            }
        }
        initial.reverse();
        let mut params = NamedTensors::new();
        for p in layer_params.into_iter().rev() {
            params.extend_prefixed("", p);
        }
        Ok(SequenceGrads {
            input: input.expect("a stack has at least one layer"),
            initial_state: concat_slots(&initial),
            params,
        })
    }

    fn set_position(&mut self, _layer: usize, direction: Direction) {
        for (k, layer) in self.layers.iter_mut().enumerate() {
            layer.set_position(k, direction);
        }
    }

    fn release_buffers(&self) {
        for layer in &self.layers {
            layer.release_buffers();
        }
    }
}

impl<T: Float, L: SequenceLayer<T>> Parameters<T> for Stacked<L> {
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Tensor<T>)) {
        for layer in &self.layers {
            layer.visit_params(f);
        }
    }

    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Tensor<T>)) {
        for layer in &mut self.layers {
            layer.visit_params_mut(f);
        }
    }
}

impl<L: fmt::Display> fmt::Display for Stacked<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Stacked {{ layers: [")?;
        for (k, layer) in self.layers.iter().enumerate() {
            let sep = if k == 0 { "" } else { ", " };
            write!(f, "{sep}{layer}")?;
        }
        write!(f, "], dropout: {} }}", self.dropout)
    }
}

impl<L: fmt::Debug> fmt::Debug for Stacked<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stacked")
            .field("layers", &self.layers)
            .field("dropout", &self.dropout)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cell::GruCellConfig;
    use crate::layer::Recurrent;

    #[test]
    fn dropout_zeroes_about_p_and_scales_the_rest() {
        let rng = &mut StdRng::seed_from_u64(3);
        let layers = vec![
            Recurrent::new(GruCellConfig::new(2, 50).init::<f64>(rng).unwrap()),
            Recurrent::new(GruCellConfig::new(50, 50).init(rng).unwrap()),
        ];
        let stack = Stacked::new(layers, 0.25).unwrap();
        let x = Tensor::randn(&[40, 8, 2], rng);
        let out = stack
            .forward_with_state(&x, None, None, Mode::Train { seed: 5 })
            .unwrap();
        let mask = out.trace.masks[0]
            .as_ref()
            .expect("dropout is active in training");
        let mask = mask.as_slice();
        let dropped = mask.iter().filter(|&&m| m == 0.0).count() as f64 / mask.len() as f64;
        assert!((dropped - 0.25).abs() < 0.02, "dropped {dropped}");
        assert!(mask.iter().all(|&m| m == 0.0 || m == 1.0 / 0.75));

        let plain = stack
            .forward_with_state(&x, None, None, Mode::Eval)
            .unwrap();
        assert!(plain.trace.masks[0].is_none());
        assert_ne!(plain.output, out.output);
    }
}
