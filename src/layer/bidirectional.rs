//! `Bidirectional<L>`: a layer and its mirror image, reading each sequence forwards and
//! backwards.

use core::fmt;

use super::ops::{
    add, check_lengths, check_unique_names, concat_features, concat_slots, reverse_time,
    sequence_dims, split_features, split_state, split_state_gradient,
};
use super::parallel::{work, ParallelPolicy};
use super::{Direction, SequenceGrads, SequenceLayer, SequenceOutput};
use crate::error::{check_shape, Error, Result};
use crate::float::Float;
use crate::mode::Mode;
use crate::params::Parameters;
use crate::state::{State, StatePart};
use crate::tensor::{Shape, Tensor};
use crate::threads::{join, may_spawn};

/// Below this much work per direction (`T·B·(I + H_out)·H_out`) the two directions run one
/// after the other; above it, on two threads. Measured with `benches/bidirectional.rs` (see the
/// README's tuning notes).
const PARALLEL_THRESHOLD: usize = 1 << 17;

/// Two layers over the same input, one reading each sequence forwards and one backwards, as
/// PyTorch's `bidirectional=True`.
///
/// The reverse layer reads each sequence from its own last step (`lengths[b] − 1`) back to
/// step 0, so padding never enters it. The output concatenates both along features, forward
/// first: `(T, B, 2·H_out)`, where step `t` of the reverse half is the reverse layer's state
/// after it has read steps `n_b − 1` down to `t`. States stack the forward layer's slots
/// before the reverse layer's, so `Bidirectional<Recurrent<_>>` has PyTorch's
/// `(2, B, H)` with index 0 forward and 1 reverse, and [`crate::Stacked`] of it has PyTorch's
/// layer-major, direction-minor `(2·L, B, H)`.
///
/// The reverse layer's parameters are named with `_reverse` appended
/// (`weight_ih_l0_reverse`), after the forward layer's.
///
/// The two directions run on two threads when the work is large enough to pay for starting
/// them ([`with_parallel_threshold`](Bidirectional::with_parallel_threshold)).
///
/// # Examples
///
/// ```
/// use recurrent::rand::{rngs::StdRng, SeedableRng};
/// use recurrent::{Bidirectional, GruCellConfig, Mode, Parameters, Recurrent, SequenceLayer, Tensor};
///
/// let mut rng = StdRng::seed_from_u64(0);
/// let config = GruCellConfig::new(4, 8);
/// let bi = Bidirectional::new(
///     Recurrent::new(config.init::<f32>(&mut rng)?),
///     Recurrent::new(config.init(&mut rng)?),
/// )?;
/// let x = Tensor::randn(&[6, 2, 4], &mut rng);
/// let out = bi.forward_with_state(&x, None, Some(&[6, 3]), Mode::Eval)?;
/// assert_eq!(out.output.shape(), &[6, 2, 16]);
/// assert_eq!(out.state.h().shape(), &[2, 2, 8]);
/// assert_eq!(bi.param_names()[4], "weight_ih_l0_reverse");
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Clone, PartialEq)]
pub struct Bidirectional<L> {
    forward: L,
    reverse: L,
    parallel: ParallelPolicy,
}

/// What [`SequenceLayer::forward_with_state`] of a [`Bidirectional`] layer keeps for its
/// backward pass.
#[derive(Clone)]
pub struct BidirectionalTrace<Tr> {
    forward: Tr,
    reverse: Tr,
    seq_len: usize,
    batch: usize,
    lengths: Option<Vec<usize>>,
    /// Whether forward ran the directions on two threads (backward does the same).
    parallel: bool,
}

impl<Tr> fmt::Debug for BidirectionalTrace<Tr> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BidirectionalTrace")
            .field("seq_len", &self.seq_len)
            .field("batch", &self.batch)
            .field("lengths", &self.lengths)
            .finish_non_exhaustive()
    }
}

impl<L> Bidirectional<L> {
    /// The forward layer.
    pub fn forward_layer(&self) -> &L {
        &self.forward
    }

    /// The reverse layer.
    pub fn reverse_layer(&self) -> &L {
        &self.reverse
    }

    /// The amount of work per direction, `T·B·(I + H_out)·H_out`, from which the two
    /// directions run on two threads, when [`crate::set_num_threads`] allows more than one.
    /// `0` uses two threads whenever they are allowed, `usize::MAX` never; with
    /// `set_num_threads(1)` everything runs on the calling thread, whatever the threshold.
    /// Defaults to 2¹⁷, where two threads start to win for an LSTM on a two-core machine
    /// (`cargo bench --bench bidirectional`; see the README). The measure leaves out the
    /// number of gates, so for a GRU or a vanilla RNN the break-even work is higher.
    #[must_use = "returns a new layer and does not modify self"]
    pub fn with_parallel_threshold(self, work: usize) -> Self {
        Bidirectional {
            parallel: ParallelPolicy::new(work),
            ..self
        }
    }
}

impl<L> Bidirectional<L> {
    /// Pairs a forward and a reverse layer, and names the reverse layer's parameters with
    /// `_reverse`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if the two layers differ in input size, output size, state
    /// layout, state slots or layout (batch-first or not), or if two of their parameters end
    /// up with the same name (a layer that does not implement
    /// [`SequenceLayer::set_position`]).
    pub fn new<T: Float>(forward: L, reverse: L) -> Result<Self>
    where
        L: SequenceLayer<T>,
    {
        let describe = |l: &L| {
            format!(
                "input {}, output {}, state {:?} x{}, batch_first {}",
                l.input_size(),
                l.output_size(),
                l.state_parts(),
                l.state_slots(),
                l.batch_first()
            )
        };
        let (f, r) = (describe(&forward), describe(&reverse));
        if f != r {
            return Err(Error::InvalidArgument {
                name: "bidirectional layers",
                reason: format!("the forward layer has {f}, the reverse layer {r}"),
            });
        }
        let mut bi = Bidirectional {
            forward,
            reverse,
            parallel: ParallelPolicy::new(PARALLEL_THRESHOLD),
        };
        SequenceLayer::<T>::set_position(&mut bi, 0, Direction::Forward);
        check_unique_names("bidirectional layers", &bi)?;
        Ok(bi)
    }

    /// Whether a call of `T·B` steps is worth two threads.
    fn parallel<T: Float>(&self, seq_len: usize, batch: usize) -> bool
    where
        L: SequenceLayer<T>,
    {
        let h = self.forward.output_size();
        let work = work(seq_len, batch, self.forward.input_size(), h);
        self.parallel.allows(work)
    }
}

/// How a call of a [`Bidirectional`] ran: its sizes and whether on two threads.
struct Run {
    seq_len: usize,
    batch: usize,
    parallel: bool,
}

impl<L> Bidirectional<L> {
    /// Runs `layer_call` (a layer's `forward` or `infer`) in both directions, the reverse one on
    /// the input reversed within each sequence, and joins the outputs and states; the traces
    /// come back forward first.
    fn run<T: Float, Tr: Send>(
        &self,
        input: &Tensor<T>,
        initial: Option<&State<T>>,
        lengths: Option<&[usize]>,
        layer_call: impl Fn(
                &L,
                usize,
                &Tensor<T>,
                Option<&State<T>>,
                Option<&[usize]>,
            ) -> Result<SequenceOutput<T, Tr>>
            + Sync,
    ) -> Result<(SequenceOutput<T, [Tr; 2]>, Run)>
    where
        L: SequenceLayer<T>,
    {
        let batch_first = self.batch_first();
        let op = "bidirectional input";
        let (seq_len, batch) = sequence_dims(op, input, self.input_size(), batch_first)?;
        check_lengths(lengths, seq_len, batch)?;
        let slots = self.forward.state_slots();
        let layout = self.state_parts();
        let initial = split_state("initial state", initial, &layout, &[slots, slots], batch)?;
        let reversed = reverse_time(input, lengths, batch_first);
        let parallel = self.parallel(seq_len, batch);
        let (fwd, rev) = join(
            parallel,
            || layer_call(&self.forward, 0, input, initial[0].as_ref(), lengths),
            || layer_call(&self.reverse, 1, &reversed, initial[1].as_ref(), lengths),
        );
        let (fwd, rev) = (fwd?, rev?);
        let output = concat_features(
            &fwd.output,
            &reverse_time(&rev.output, lengths, batch_first),
        );
        let out = SequenceOutput {
            output,
            state: concat_slots(&[fwd.state, rev.state]),
            trace: [fwd.trace, rev.trace],
        };
        let run = Run {
            seq_len,
            batch,
            parallel,
        };
        Ok((out, run))
    }
}

impl<T: Float, L: SequenceLayer<T>> SequenceLayer<T> for Bidirectional<L> {
    type Trace = BidirectionalTrace<L::Trace>;

    fn input_size(&self) -> usize {
        self.forward.input_size()
    }

    fn output_size(&self) -> usize {
        2 * self.forward.output_size()
    }

    fn state_parts(&self) -> Vec<StatePart> {
        self.forward.state_parts()
    }

    fn directions(&self) -> usize {
        2
    }

    fn state_slots(&self) -> usize {
        2 * self.forward.state_slots()
    }

    fn batch_first(&self) -> bool {
        self.forward.batch_first()
    }

    /// Each direction runs in the mode's [`for_layer`](Mode::for_layer)`(0)` (forward) or
    /// `(1)` (reverse), so that dropout inside them draws different masks.
    fn forward_with_state(
        &self,
        input: &Tensor<T>,
        initial: Option<&State<T>>,
        lengths: Option<&[usize]>,
        mode: Mode,
    ) -> Result<SequenceOutput<T, Self::Trace>> {
        let call = |l: &L, k: usize, x: &Tensor<T>, s: Option<&State<T>>, len: Option<&[usize]>| {
            l.forward_with_state(x, s, len, mode.for_layer(k))
        };
        let (out, run) = self.run(input, initial, lengths, call)?;
        let [forward, reverse] = out.trace;
        Ok(SequenceOutput {
            output: out.output,
            state: out.state,
            trace: BidirectionalTrace {
                forward,
                reverse,
                seq_len: run.seq_len,
                batch: run.batch,
                lengths: lengths.map(<[usize]>::to_vec),
                parallel: run.parallel,
            },
        })
    }

    fn infer_with_state(
        &self,
        input: &Tensor<T>,
        initial: Option<&State<T>>,
        lengths: Option<&[usize]>,
    ) -> Result<SequenceOutput<T, ()>> {
        let call = |l: &L, _: usize, x: &Tensor<T>, s: Option<&State<T>>, len: Option<&[usize]>| {
            l.infer_with_state(x, s, len)
        };
        let (out, _) = self.run(input, initial, lengths, call)?;
        Ok(out.without_trace())
    }

    fn backward_with_state(
        &self,
        trace: &Self::Trace,
        d_output: Option<&Tensor<T>>,
        d_state: Option<&State<T>>,
    ) -> Result<SequenceGrads<T>> {
        let batch_first = self.batch_first();
        let lengths = trace.lengths.as_deref();
        let h_out = self.forward.output_size();
        let (seq_len, batch) = (trace.seq_len, trace.batch);
        let d_output = match d_output {
            Some(d) => {
                let expected = if batch_first {
                    [batch, seq_len, 2 * h_out]
                } else {
                    [seq_len, batch, 2 * h_out]
                };
                check_shape("output gradient", Shape::from(expected), d.raw_shape())?;
                let (f, r) = split_features(d, h_out);
                (Some(f), Some(reverse_time(&r, lengths, batch_first)))
            }
            None => (None, None),
        };
        let slots = self.forward.state_slots();
        let layout = self.state_parts();
        let op = "final state gradient";
        let d_state = split_state_gradient(op, d_state, &layout, &[slots, slots], batch)?;
        let (fwd, rev) = join(
            // as forward decided, unless the thread setting has changed since
            trace.parallel && may_spawn(),
            || {
                self.forward.backward_with_state(
                    &trace.forward,
                    d_output.0.as_ref(),
                    d_state[0].as_ref(),
                )
            },
            || {
                self.reverse.backward_with_state(
                    &trace.reverse,
                    d_output.1.as_ref(),
                    d_state[1].as_ref(),
                )
            },
        );
        let (fwd, rev) = (fwd?, rev?);
        let mut params = fwd.params;
        params.extend_prefixed("", rev.params);
        Ok(SequenceGrads {
            input: add(&fwd.input, &reverse_time(&rev.input, lengths, batch_first)),
            initial_state: concat_slots(&[fwd.initial_state, rev.initial_state]),
            params,
        })
    }

    fn set_position(&mut self, layer: usize, direction: Direction) {
        self.forward.set_position(layer, direction);
        self.reverse.set_position(layer, Direction::Reverse);
    }

    fn release_buffers(&self) {
        self.forward.release_buffers();
        self.reverse.release_buffers();
    }
}

impl<T: Float, L: SequenceLayer<T>> Parameters<T> for Bidirectional<L> {
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Tensor<T>)) {
        self.forward.visit_params(f);
        self.reverse.visit_params(f);
    }

    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Tensor<T>)) {
        self.forward.visit_params_mut(f);
        self.reverse.visit_params_mut(f);
    }
}

impl<L: fmt::Display> fmt::Display for Bidirectional<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Bidirectional {{ forward: {}, reverse: {} }}",
            self.forward, self.reverse
        )
    }
}

impl<L: fmt::Debug> fmt::Debug for Bidirectional<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bidirectional")
            .field("forward", &self.forward)
            .field("reverse", &self.reverse)
            .field("parallel_threshold", &self.parallel.threshold())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::thread::ThreadId;

    use super::*;
    use crate::layer::{SequenceGrads, SequenceOutput};
    use crate::params::NamedTensors;

    /// A layer that passes its input through and records the threads its passes ran on.
    #[derive(Default)]
    struct Recorder {
        threads: Mutex<Vec<ThreadId>>,
        name: String,
    }

    impl Recorder {
        fn record(&self) {
            self.threads
                .lock()
                .unwrap()
                .push(std::thread::current().id());
        }
    }

    impl Parameters<f64> for Recorder {
        fn visit_params(&self, f: &mut dyn FnMut(&str, &Tensor<f64>)) {
            f(&self.name, &Tensor::zeros(&[1]));
        }
        fn visit_params_mut(&mut self, _: &mut dyn FnMut(&str, &mut Tensor<f64>)) {}
    }

    impl SequenceLayer<f64> for Recorder {
        type Trace = ();
        fn input_size(&self) -> usize {
            1
        }
        fn output_size(&self) -> usize {
            1
        }
        fn state_parts(&self) -> Vec<StatePart> {
            vec![StatePart::new("h", 1)]
        }
        fn state_slots(&self) -> usize {
            1
        }
        fn batch_first(&self) -> bool {
            false
        }
        fn forward_with_state(
            &self,
            input: &Tensor<f64>,
            _: Option<&State<f64>>,
            _: Option<&[usize]>,
            _: Mode,
        ) -> Result<SequenceOutput<f64, ()>> {
            self.record();
            let batch = input.shape()[1];
            let state = State::from_h(Tensor::zeros(&[1, batch, 1]));
            Ok(SequenceOutput {
                output: input.clone(),
                state,
                trace: (),
            })
        }
        fn backward_with_state(
            &self,
            _: &(),
            d_output: Option<&Tensor<f64>>,
            _: Option<&State<f64>>,
        ) -> Result<SequenceGrads<f64>> {
            self.record();
            let d = d_output.expect("the test passes an output gradient");
            Ok(SequenceGrads {
                input: d.clone(),
                initial_state: State::from_h(Tensor::zeros(&[1, d.shape()[1], 1])),
                params: NamedTensors::new(),
            })
        }
        fn set_position(&mut self, _: usize, direction: Direction) {
            self.name = match direction {
                Direction::Forward => "f",
                Direction::Reverse => "r",
            }
            .into();
        }
    }

    /// A trace made on two threads goes back on one after `set_num_threads(1)`.
    #[test]
    fn backward_follows_the_thread_setting_of_the_moment() {
        let _setting = crate::test_util::THREAD_SETTING.lock();
        let before = crate::threads::num_threads();
        crate::set_num_threads(2);
        let bi = Bidirectional::new(Recorder::default(), Recorder::default())
            .unwrap()
            .with_parallel_threshold(0);
        let x = Tensor::<f64>::zeros(&[3, 2, 1]);
        let here = std::thread::current().id();
        // the worker thread may be busy with another test's split, and then the reverse
        // direction runs here: try until a forward pass has run on two threads
        let mut attempts = 0;
        let out = loop {
            for layer in [bi.forward_layer(), bi.reverse_layer()] {
                layer.threads.lock().unwrap().clear();
            }
            let out = bi.forward_with_state(&x, None, None, Mode::Eval).unwrap();
            attempts += 1;
            if bi.reverse_layer().threads.lock().unwrap()[0] != here || attempts == 1000 {
                break out;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        };
        crate::set_num_threads(1);
        let d = Tensor::zeros(&[3, 2, 2]);
        let grads = bi.backward_with_state(&out.trace, Some(&d), None);
        crate::set_num_threads(before);
        grads.unwrap();
        let threads = |l: &Recorder| l.threads.lock().unwrap().clone();
        let (fwd, rev) = (threads(bi.forward_layer()), threads(bi.reverse_layer()));
        // forward: the reverse direction on a second thread; backward: both here
        assert_eq!((fwd[0], fwd[1]), (here, here));
        assert_ne!(rev[0], here);
        assert_eq!(rev[1], here);
    }
}
