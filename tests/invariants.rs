//! Invariants of `Recurrent` that hold to 1e-12 (the rounding of one product differing in the
//! last bit), over random shapes and seeds drawn from a fixed seed: a sample's results do not
//! depend on the rest of its batch, and the parameter gradients of a batch are the sum of its
//! samples'; what lies past a sequence's length (including NaN and extra steps) changes
//! nothing; batch-first is the transposed time-major computation, gradients included (for
//! `Recurrent` and for a two-layer bidirectional projection LSTM); streaming one step at a time
//! equals the whole forward; lengths all equal to `T` are no lengths (exactly). Batch
//! independence and padding invariance are also checked for networks built from `Stacked` and
//! `Bidirectional` in both orders. The layer-normalised LSTM (its own tests, with random
//! layer-norm gains and shifts) is checked for the same invariants, alone and as a bidirectional
//! pair of two-layer stacks. Also: the public layer types are `Send + Sync`. Not covered:
//! PyTorch's values (`parity.rs`), gradient correctness (`gradcheck.rs`).

mod common;

use common::{layer_norm, problems, random_lengths, runner, Problem};
use proptest::prelude::*;
use rand::{rngs::StdRng, SeedableRng};
use recurrent::{
    Bidirectional, Cell, Gru, GruCell, GruCellConfig, GruConfig, LayerNormLstmCell, Lstm, LstmCell,
    LstmCellConfig, LstmConfig, Mode, NamedTensors, PeepholeLstmCell, PeepholeLstmCellConfig,
    Recurrent, RnnCell, RnnCellConfig, SequenceLayer, Stacked, State, Tensor,
};

/// A random state for `layer`, parts `(L·D, batch, width)`.
fn random_state<L: SequenceLayer<f64>>(layer: &L, batch: usize, rng: &mut StdRng) -> State<f64> {
    let slots = layer.state_slots();
    let parts = layer.state_parts().into_iter();
    State::new(
        parts
            .map(|p| (p.name, Tensor::randn(&[slots, batch, p.size], rng)))
            .collect(),
    )
}

/// Sample `b` (axis 1) of a rank-3 tensor, as a `(d0, 1, d2)` tensor.
fn sample(t: &Tensor<f64>, b: usize) -> Tensor<f64> {
    let [d0, d1, f] = [t.shape()[0], t.shape()[1], t.shape()[2]];
    let data = (0..d0)
        .flat_map(|i| t.as_slice()[(i * d1 + b) * f..][..f].to_vec())
        .collect();
    Tensor::from_vec(data, &[d0, 1, f]).unwrap()
}

/// A rank-3 tensor with its two leading axes swapped.
fn swap(t: &Tensor<f64>) -> Tensor<f64> {
    let [d0, d1, f] = [t.shape()[0], t.shape()[1], t.shape()[2]];
    let data =
        (0..d1).flat_map(|j| (0..d0).flat_map(move |i| (i * d1 + j) * f..(i * d1 + j + 1) * f));
    Tensor::from_vec(data.map(|i| t.as_slice()[i]).collect(), &[d1, d0, f]).unwrap()
}

fn close(a: &Tensor<f64>, b: &Tensor<f64>) -> bool {
    a.shape() == b.shape()
        && a.as_slice()
            .iter()
            .zip(b.as_slice())
            .all(|(x, y)| (x - y).abs() <= 1e-12 * (1.0 + y.abs()))
}

fn states_close(a: &State<f64>, b: &State<f64>) -> bool {
    a.parts().len() == b.parts().len()
        && a.parts()
            .zip(b.parts())
            .all(|((n, x), (m, y))| n == m && close(x, y))
}

fn grads_close(a: &NamedTensors<f64>, b: &NamedTensors<f64>) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b.iter())
            .all(|((n, x), (m, y))| n == m && close(x, y))
}

/// One layer of each cell.
type Layers = (
    Recurrent<LstmCell<f64>>,
    Recurrent<GruCell<f64>>,
    Recurrent<RnnCell<f64>>,
    Recurrent<PeepholeLstmCell<f64>>,
);

fn layers(p: &Problem, rng: &mut StdRng) -> Layers {
    (
        Recurrent::new(
            LstmCellConfig::new(p.input_size, p.hidden_size)
                .init(rng)
                .unwrap(),
        ),
        Recurrent::new(
            GruCellConfig::new(p.input_size, p.hidden_size)
                .init(rng)
                .unwrap(),
        ),
        Recurrent::new(
            RnnCellConfig::new(p.input_size, p.hidden_size)
                .init(rng)
                .unwrap(),
        ),
        Recurrent::new(
            PeepholeLstmCellConfig::new(p.input_size, p.hidden_size)
                .init(rng)
                .unwrap(),
        ),
    )
}

/// Each sample run alone gives its slice of the batched output, final state, input and
/// initial-state gradients; the batch's parameter gradients are the sum of the samples'.
fn batch_independence<L: SequenceLayer<f64>>(
    layer: &L,
    p: &Problem,
    rng: &mut StdRng,
) -> Result<(), TestCaseError> {
    let x = Tensor::randn(&[p.seq_len, p.batch, p.input_size], rng);
    let lengths = random_lengths(p.seq_len, p.batch, rng);
    let init = random_state(layer, p.batch, rng);
    let g = Tensor::randn(&[p.seq_len, p.batch, layer.output_size()], rng);
    let g_state = random_state(layer, p.batch, rng);
    let all = layer
        .forward_with_state(&x, Some(&init), Some(&lengths), Mode::Eval)
        .unwrap();
    let all_grads = layer
        .backward_with_state(&all.trace, Some(&g), Some(&g_state))
        .unwrap();
    let mut summed: Option<NamedTensors<f64>> = None;
    for b in 0..p.batch {
        let pick_state =
            |s: &State<f64>| State::new(s.parts().map(|(n, t)| (n, sample(t, b))).collect());
        let one = layer
            .forward_with_state(
                &sample(&x, b),
                Some(&pick_state(&init)),
                Some(&lengths[b..=b]),
                Mode::Eval,
            )
            .unwrap();
        prop_assert!(close(&one.output, &sample(&all.output, b)));
        prop_assert!(states_close(&one.state, &pick_state(&all.state)));
        let grads = layer
            .backward_with_state(
                &one.trace,
                Some(&sample(&g, b)),
                Some(&pick_state(&g_state)),
            )
            .unwrap();
        prop_assert!(close(&grads.input, &sample(&all_grads.input, b)));
        prop_assert!(states_close(
            &grads.initial_state,
            &pick_state(&all_grads.initial_state)
        ));
        summed = Some(match summed {
            None => grads.params,
            Some(mut total) => {
                for ((_, t), (_, g)) in total.iter_mut().zip(grads.params.iter()) {
                    t.as_mut_slice()
                        .iter_mut()
                        .zip(g.as_slice())
                        .for_each(|(t, &g)| *t += g);
                }
                total
            }
        });
    }
    prop_assert!(grads_close(
        &summed.expect("at least one sample"),
        &all_grads.params
    ));
    Ok(())
}

/// Values and gradients past each sequence's length, and extra padded steps, change nothing.
fn padding_invariance<L: SequenceLayer<f64>>(
    layer: &L,
    p: &Problem,
    rng: &mut StdRng,
) -> Result<(), TestCaseError> {
    let (t, extra, i) = (p.seq_len, 3, p.input_size);
    let lengths = random_lengths(p.seq_len, p.batch, rng);
    let x = Tensor::randn(&[t, p.batch, i], rng);
    let g = Tensor::randn(&[t + extra, p.batch, layer.output_size()], rng);
    let g_state = random_state(layer, p.batch, rng);
    // the same valid values, other padding (NaN at every other step), and `extra` more steps
    let mut longer = Tensor::randn(&[t + extra, p.batch, i], rng);
    for step in 0..t + extra {
        for (b, &len) in lengths.iter().enumerate() {
            let row = &mut longer.as_mut_slice()[(step * p.batch + b) * i..][..i];
            if step < len {
                row.copy_from_slice(&x.as_slice()[(step * p.batch + b) * i..][..i]);
            } else if step % 2 == 0 {
                row.fill(f64::NAN);
            }
        }
    }
    let short = layer
        .forward_with_state(&x, None, Some(&lengths), Mode::Eval)
        .unwrap();
    let long = layer
        .forward_with_state(&longer, None, Some(&lengths), Mode::Eval)
        .unwrap();
    let n = short.output.len();
    prop_assert!(long.output.as_slice().iter().all(|v| v.is_finite()));
    let head =
        Tensor::from_vec(long.output.as_slice()[..n].to_vec(), short.output.shape()).unwrap();
    prop_assert!(close(&head, &short.output));
    prop_assert!(long.output.as_slice()[n..].iter().all(|&v| v == 0.0));
    prop_assert!(states_close(&long.state, &short.state));
    let g_short = Tensor::from_vec(g.as_slice()[..n].to_vec(), short.output.shape()).unwrap();
    let d_short = layer
        .backward_with_state(&short.trace, Some(&g_short), Some(&g_state))
        .unwrap();
    let d_long = layer
        .backward_with_state(&long.trace, Some(&g), Some(&g_state))
        .unwrap();
    // to 1e-12, not bit for bit: with one row in all, the short input's gradient product is a
    // matrix-vector product whose rounding differs from the GEMM's in the last bit
    let head = Tensor::from_vec(
        d_long.input.as_slice()[..d_short.input.len()].to_vec(),
        d_short.input.shape(),
    )
    .unwrap();
    prop_assert!(close(&head, &d_short.input));
    prop_assert!(grads_close(&d_long.params, &d_short.params));
    prop_assert!(states_close(&d_long.initial_state, &d_short.initial_state));
    // the input gradient is exactly zero at every padded position
    for step in 0..t + extra {
        for (b, &len) in lengths.iter().enumerate() {
            let row = &d_long.input.as_slice()[(step * p.batch + b) * i..][..i];
            prop_assert!(step < len || row.iter().all(|&v| v == 0.0));
        }
    }
    Ok(())
}

/// Batch-first is the time-major computation with the two leading axes swapped, in forward
/// and in every gradient.
fn batch_first_matches<C: Cell<f64> + Clone>(
    layer: &Recurrent<C>,
    p: &Problem,
    rng: &mut StdRng,
) -> Result<(), TestCaseError> {
    transposed_layouts_match(layer, &layer.clone().with_batch_first(true), p, rng)
}

/// `bf_layer` (batch-first) computes what `layer` (time-major, same parameters) does, with the
/// two leading axes swapped, in forward and in every gradient, with variable lengths.
fn transposed_layouts_match<L: SequenceLayer<f64>>(
    layer: &L,
    bf_layer: &L,
    p: &Problem,
    rng: &mut StdRng,
) -> Result<(), TestCaseError> {
    let x = Tensor::randn(&[p.seq_len, p.batch, layer.input_size()], rng);
    let lengths = random_lengths(p.seq_len, p.batch, rng);
    let init = random_state(layer, p.batch, rng);
    let g_state = random_state(layer, p.batch, rng);
    let tm = layer
        .forward_with_state(&x, Some(&init), Some(&lengths), Mode::Eval)
        .unwrap();
    let bf = bf_layer
        .forward_with_state(&swap(&x), Some(&init), Some(&lengths), Mode::Eval)
        .unwrap();
    prop_assert!(close(&swap(&bf.output), &tm.output));
    prop_assert!(states_close(&bf.state, &tm.state));
    let g = Tensor::randn(tm.output.shape(), rng);
    let d_tm = layer
        .backward_with_state(&tm.trace, Some(&g), Some(&g_state))
        .unwrap();
    let d_bf = bf_layer
        .backward_with_state(&bf.trace, Some(&swap(&g)), Some(&g_state))
        .unwrap();
    prop_assert!(close(&swap(&d_bf.input), &d_tm.input));
    prop_assert!(states_close(&d_bf.initial_state, &d_tm.initial_state));
    prop_assert!(grads_close(&d_bf.params, &d_tm.params));
    Ok(())
}

/// Splitting the batch over two threads gives the same outputs, states and gradients (to
/// 1e-12: the parameter gradients are summed over the halves in another order).
fn split_matches<C: Cell<f64> + Clone>(
    layer: &Recurrent<C>,
    p: &Problem,
    rng: &mut StdRng,
) -> Result<(), TestCaseError> {
    for batch_first in [false, true] {
        let whole = layer
            .clone()
            .with_batch_first(batch_first)
            .with_parallel_threshold(usize::MAX);
        let split = whole.clone().with_parallel_threshold(0);
        layers_agree(&whole, &split, p, rng, batch_first)?;
    }
    Ok(())
}

/// `a` and `b` (same parameters and layout) agree to 1e-12 in forward and every gradient,
/// with variable lengths and an initial state.
fn layers_agree<L: SequenceLayer<f64>>(
    a: &L,
    b: &L,
    p: &Problem,
    rng: &mut StdRng,
    batch_first: bool,
) -> Result<(), TestCaseError> {
    let dims = if batch_first {
        [p.batch, p.seq_len, p.input_size]
    } else {
        [p.seq_len, p.batch, p.input_size]
    };
    let x = Tensor::randn(&dims, rng);
    let lengths = random_lengths(p.seq_len, p.batch, rng);
    let init = random_state(a, p.batch, rng);
    let (out_a, out_b) = (
        a.forward_with_state(&x, Some(&init), Some(&lengths), Mode::Eval)
            .unwrap(),
        b.forward_with_state(&x, Some(&init), Some(&lengths), Mode::Eval)
            .unwrap(),
    );
    prop_assert!(close(&out_a.output, &out_b.output));
    prop_assert!(states_close(&out_a.state, &out_b.state));
    let g = Tensor::randn(out_a.output.shape(), rng);
    let g_state = random_state(a, p.batch, rng);
    let d_a = a
        .backward_with_state(&out_a.trace, Some(&g), Some(&g_state))
        .unwrap();
    let d_b = b
        .backward_with_state(&out_b.trace, Some(&g), Some(&g_state))
        .unwrap();
    prop_assert!(close(&d_a.input, &d_b.input));
    prop_assert!(states_close(&d_a.initial_state, &d_b.initial_state));
    prop_assert!(grads_close(&d_a.params, &d_b.params));
    Ok(())
}

/// `Stream` gives the whole-sequence output step by step, and lengths all equal to `T` are no
/// lengths at all.
fn stream_matches<C: Cell<f64>>(
    layer: &Recurrent<C>,
    p: &Problem,
    rng: &mut StdRng,
) -> Result<(), TestCaseError> {
    let x = Tensor::randn(&[p.seq_len, p.batch, p.input_size], rng);
    let init = random_state(layer, p.batch, rng);
    let whole = layer
        .forward_with_state(&x, Some(&init), None, Mode::Eval)
        .unwrap();
    let full = layer
        .forward_with_state(&x, Some(&init), Some(&vec![p.seq_len; p.batch]), Mode::Eval)
        .unwrap();
    prop_assert_eq!(&whole.output, &full.output);
    prop_assert_eq!(&whole.state, &full.state);
    let mut stream = layer.stream(p.batch, Some(&init)).unwrap();
    let (step_len, out_len) = (p.batch * p.input_size, p.batch * p.hidden_size);
    for t in 0..p.seq_len {
        let x_t = x.as_slice()[t * step_len..][..step_len].to_vec();
        let h = stream
            .step(&Tensor::from_vec(x_t, &[p.batch, p.input_size]).unwrap())
            .unwrap();
        // to 1e-12: with batch 1 the stream's input projection is a matrix-vector product,
        // rounded differently in the last bit from the whole sequence's GEMM
        let step = &whole.output.as_slice()[t * out_len..][..out_len];
        let step = Tensor::from_vec(step.to_vec(), h.shape()).unwrap();
        prop_assert!(close(&h, &step));
    }
    prop_assert!(states_close(&stream.state(), &whole.state));
    Ok(())
}

/// Runs `check` on a layer of every cell, for every drawn problem.
macro_rules! on_every_cell {
    ($check:ident) => {{
        let result = runner(64).run(&problems(10, 5), |p| {
            let mut rng = StdRng::seed_from_u64(p.seed);
            let (lstm, gru, rnn, peephole_lstm) = layers(&p, &mut rng);
            $check(&lstm, &p, &mut rng)?;
            $check(&gru, &p, &mut rng)?;
            $check(&rnn, &p, &mut rng)?;
            $check(&peephole_lstm, &p, &mut rng)
        });
        if let Err(e) = result {
            panic!("{e}");
        }
    }};
}

/// One network of each composition.
type Networks = (
    Lstm<f64>,
    Gru<f64>,
    Bidirectional<Stacked<Recurrent<RnnCell<f64>>>>,
);

/// Networks built from the combinators: a two-layer bidirectional LSTM with a projection (as
/// PyTorch's `nn.LSTM`), a three-layer GRU with dropout in evaluation mode, and a
/// bidirectional pair of two-layer tanh RNN stacks (the other composition order).
fn networks(p: &Problem, rng: &mut StdRng) -> Networks {
    let (i, h) = (p.input_size, p.hidden_size + 1);
    let lstm = LstmConfig::new(i, h)
        .with_num_layers(2)
        .with_bidirectional(true)
        .with_proj_size(h - 1);
    let gru = GruConfig::new(i, h)
        .with_num_layers(3)
        .with_dropout(0.5)
        .init(rng)
        .unwrap();
    let mut stack = || {
        Stacked::new(
            vec![
                Recurrent::new(RnnCellConfig::new(i, h).init(rng).unwrap()),
                Recurrent::new(RnnCellConfig::new(h, h).init(rng).unwrap()),
            ],
            0.0,
        )
        .unwrap()
    };
    let (forward, reverse) = (stack(), stack());
    (
        lstm.init(rng).unwrap(),
        gru,
        Bidirectional::new(forward, reverse).unwrap(),
    )
}

/// Runs `check` on every network of [`networks`], for every drawn problem.
macro_rules! on_every_network {
    ($check:ident) => {{
        let result = runner(32).run(&problems(10, 5), |p| {
            let mut rng = StdRng::seed_from_u64(p.seed);
            let (lstm, gru, rnn) = networks(&p, &mut rng);
            $check(&lstm, &p, &mut rng)?;
            $check(&gru, &p, &mut rng)?;
            $check(&rnn, &p, &mut rng)
        });
        if let Err(e) = result {
            panic!("{e}");
        }
    }};
}

#[test]
fn a_sample_does_not_depend_on_its_batch() {
    on_every_cell!(batch_independence);
    on_every_network!(batch_independence);
}

#[test]
fn padding_changes_nothing() {
    on_every_cell!(padding_invariance);
    on_every_network!(padding_invariance);
}

#[test]
fn batch_first_is_the_transposed_computation() {
    on_every_cell!(batch_first_matches);
}

/// Batch-first networks are the time-major ones with the two leading axes swapped: the same
/// parameters (same seed) built with `with_batch_first(true)`.
#[test]
fn batch_first_networks_are_the_transposed_computation() {
    let result = runner(32).run(&problems(10, 5), |p| {
        let (i, h) = (p.input_size, p.hidden_size + 1);
        let config = LstmConfig::new(i, h)
            .with_num_layers(2)
            .with_bidirectional(true)
            .with_proj_size(h - 1);
        let build = |batch_first| {
            let rng = &mut StdRng::seed_from_u64(p.seed);
            config
                .with_batch_first(batch_first)
                .init::<f64>(rng)
                .unwrap()
        };
        let rng = &mut StdRng::seed_from_u64(p.seed ^ 1);
        transposed_layouts_match(&build(false), &build(true), &p, rng)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn splitting_the_batch_over_two_threads_changes_nothing() {
    on_every_cell!(split_matches);
}

#[test]
fn streaming_equals_the_whole_sequence() {
    on_every_cell!(stream_matches);
}

#[test]
fn layers_and_cells_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Recurrent<LstmCell<f32>>>();
    send_sync::<Recurrent<GruCell<f64>>>();
    send_sync::<Recurrent<RnnCell<f32>>>();
    send_sync::<Recurrent<PeepholeLstmCell<f32>>>();
    send_sync::<recurrent::RecurrentTrace<f32>>();
    send_sync::<Tensor<f32>>();
    send_sync::<State<f64>>();
    send_sync::<Lstm<f32>>();
    send_sync::<Bidirectional<Stacked<Recurrent<GruCell<f32>>>>>();
    send_sync::<recurrent::NetworkTrace<f32>>();
    fn sequence_layer<L: SequenceLayer<f32>>() {}
    sequence_layer::<Recurrent<LstmCell<f32>>>();
    sequence_layer::<Stacked<Bidirectional<Recurrent<LstmCell<f32>>>>>();
}

/// A layer-normalised LSTM cell reading `input_size` features, at the default `eps`, with
/// random layer-norm gains and shifts (so that every parameter matters).
fn layer_norm_lstm_cell(
    input_size: usize,
    p: &Problem,
    rng: &mut StdRng,
) -> LayerNormLstmCell<f64> {
    layer_norm::random_layer_norm_lstm(input_size, p.hidden_size, 1e-5, rng)
}

/// A bidirectional pair of two-layer stacks of layer-normalised LSTMs.
fn layer_norm_lstm_network(
    p: &Problem,
    rng: &mut StdRng,
) -> Bidirectional<Stacked<Recurrent<LayerNormLstmCell<f64>>>> {
    let (i, h) = (p.input_size, p.hidden_size);
    let mut stack = || {
        let first = Recurrent::new(layer_norm_lstm_cell(i, p, rng));
        let second = Recurrent::new(layer_norm_lstm_cell(h, p, rng));
        Stacked::new(vec![first, second], 0.0).unwrap()
    };
    let (forward, reverse) = (stack(), stack());
    Bidirectional::new(forward, reverse).unwrap()
}

/// Runs `check` on a layer of layer-normalised LSTMs (and, with `and_network`, on
/// [`layer_norm_lstm_network`] too), for every drawn problem.
macro_rules! on_layer_norm_lstm {
    ($check:ident $(, $and_network:ident)?) => {{
        let result = runner(64).run(&problems(10, 5), |p| {
            let mut rng = StdRng::seed_from_u64(p.seed);
            let layer = Recurrent::new(layer_norm_lstm_cell(p.input_size, &p, &mut rng));
            $check(&layer, &p, &mut rng)?;
            $(
                let $and_network = layer_norm_lstm_network(&p, &mut rng);
                $check(&$and_network, &p, &mut rng)?;
            )?
            Ok(())
        });
        if let Err(e) = result {
            panic!("{e}");
        }
    }};
}

#[test]
fn a_layer_norm_lstm_sample_does_not_depend_on_its_batch() {
    on_layer_norm_lstm!(batch_independence, and_network);
}

#[test]
fn padding_changes_nothing_in_a_layer_norm_lstm() {
    on_layer_norm_lstm!(padding_invariance, and_network);
}

#[test]
fn a_batch_first_layer_norm_lstm_is_the_transposed_computation() {
    on_layer_norm_lstm!(batch_first_matches);
}

#[test]
fn splitting_a_layer_norm_lstm_batch_over_two_threads_changes_nothing() {
    on_layer_norm_lstm!(split_matches);
}

#[test]
fn streaming_a_layer_norm_lstm_equals_the_whole_sequence() {
    on_layer_norm_lstm!(stream_matches);
}

#[test]
fn layer_norm_lstm_layers_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Recurrent<LayerNormLstmCell<f32>>>();
    send_sync::<Bidirectional<Stacked<Recurrent<LayerNormLstmCell<f64>>>>>();
    fn sequence_layer<L: SequenceLayer<f32>>() {}
    sequence_layer::<Stacked<Bidirectional<Recurrent<LayerNormLstmCell<f32>>>>>();
}
