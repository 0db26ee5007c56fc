//! Inference without a trace and step-by-step streaming, against the forward pass with a trace:
//! `infer` gives `forward`'s output and final state bit for bit, for every cell (LSTM with and
//! without a projection, GRU, tanh and ReLU RNN), with and without lengths and an initial state,
//! time-major and batch-first, for `Recurrent`, `Bidirectional`, `Stacked`, both compositions
//! and the PyTorch-style networks, in f32 and f64, on one and on two threads (split batches,
//! parallel directions), with dropout off; `Network::stream` fed `T` steps gives `forward`'s
//! outputs and final state over them (bit for bit from two samples up, to rounding for one),
//! for every cell type and 1 to 3 layers; and the errors of streaming. The memory and time
//! that `infer` saves are measured by `examples/compare.rs`, not here.

use std::sync::{Mutex, PoisonError};

use rand::{rngs::StdRng, SeedableRng};
use recurrent::{
    Bidirectional, Cell, Error, Float, Gru, GruCellConfig, GruConfig, Lstm, LstmCellConfig,
    LstmConfig, Mode, Network, Nonlinearity, Recurrent, Rnn, RnnCellConfig, RnnConfig,
    SequenceLayer, Stacked, State, Tensor,
};

/// The thread setting is process-wide: tests that change it hold this lock.
static THREAD_SETTING: Mutex<()> = Mutex::new(());

/// Runs `f` with `set_num_threads(threads)`, then restores the default.
fn with_threads(threads: usize, f: impl FnOnce()) {
    let _lock = THREAD_SETTING
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    recurrent::set_num_threads(threads);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    recurrent::set_num_threads(0);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

const SEQ_LEN: usize = 6;
const BATCH: usize = 4;
const INPUT: usize = 3;
const HIDDEN: usize = 5;
const LENGTHS: [usize; BATCH] = [6, 2, 5, 1];

/// A random state for `layer`, parts `(L·D, B, width)`.
fn random_state<T: Float, L: SequenceLayer<T>>(
    layer: &L,
    batch: usize,
    rng: &mut StdRng,
) -> State<T> {
    let slots = layer.state_slots();
    let parts = layer
        .state_parts()
        .into_iter()
        .map(|p| (p.name, Tensor::randn(&[slots, batch, p.size], rng)));
    State::new(parts.collect())
}

/// `layer.infer` equals `reference.forward` (the same layer, or its evaluation-mode copy), bit
/// for bit, with and without lengths and an initial state.
fn assert_infer_is_forward<T: Float, L: SequenceLayer<T>>(
    layer: &L,
    reference: &L,
    what: &str,
    rng: &mut StdRng,
) {
    let dims = if layer.batch_first() {
        [BATCH, SEQ_LEN, layer.input_size()]
    } else {
        [SEQ_LEN, BATCH, layer.input_size()]
    };
    let x = Tensor::<T>::randn(&dims, rng);
    let init = random_state(layer, BATCH, rng);
    for lengths in [None, Some(&LENGTHS[..])] {
        for initial in [None, Some(&init)] {
            let fast = layer.infer_with_state(&x, initial, lengths).unwrap();
            let full = reference
                .forward_with_state(&x, initial, lengths, Mode::Eval)
                .unwrap();
            let case = format!("{what}, lengths {lengths:?}, initial {}", initial.is_some());
            assert_eq!(fast.output, full.output, "{case}");
            assert_eq!(fast.state, full.state, "{case}");
        }
    }
}

/// Every composition of cells from `make(input_size, rng)`, in both layouts, each layer
/// splitting every batch and running directions in parallel when two threads are allowed.
fn check_compositions<T: Float, C: Cell<T> + Clone>(
    cell: &str,
    make: impl Fn(usize, &mut StdRng) -> C,
    rng: &mut StdRng,
) {
    let h_out = make(1, rng).output_size();
    for batch_first in [false, true] {
        let layer = |input: usize, rng: &mut StdRng| {
            Recurrent::new(make(input, rng))
                .with_batch_first(batch_first)
                .with_parallel_threshold(0)
        };
        let pair = |input: usize, rng: &mut StdRng| {
            Bidirectional::new(layer(input, rng), layer(input, rng))
                .unwrap()
                .with_parallel_threshold(0)
        };
        let what = |kind: &str| format!("{cell} {kind}, batch_first {batch_first}");
        let single = layer(INPUT, rng);
        assert_infer_is_forward(&single, &single, &what("recurrent"), rng);
        let bi = pair(INPUT, rng);
        assert_infer_is_forward(&bi, &bi, &what("bidirectional"), rng);
        let stack = vec![layer(INPUT, rng), layer(h_out, rng), layer(h_out, rng)];
        let stack = Stacked::new(stack, 0.0).unwrap();
        assert_infer_is_forward(&stack, &stack, &what("stacked"), rng);
        let stack_bi = vec![pair(INPUT, rng), pair(2 * h_out, rng)];
        let stack_bi = Stacked::new(stack_bi, 0.0).unwrap();
        assert_infer_is_forward(&stack_bi, &stack_bi, &what("stacked bidirectional"), rng);
        let bi_stack = Bidirectional::new(
            Stacked::new(vec![layer(INPUT, rng), layer(h_out, rng)], 0.0).unwrap(),
            Stacked::new(vec![layer(INPUT, rng), layer(h_out, rng)], 0.0).unwrap(),
        )
        .unwrap();
        assert_infer_is_forward(&bi_stack, &bi_stack, &what("bidirectional stacked"), rng);
        // dropout is off in infer, as in evaluation mode, even in training mode
        let dropped = Stacked::new(vec![layer(INPUT, rng), layer(h_out, rng)], 0.5).unwrap();
        let eval = dropped.clone();
        assert_infer_is_forward(&dropped, &eval, &what("stacked with dropout"), rng);
    }
}

/// Every cell through [`check_compositions`] in type `T`.
fn check_every_cell<T: Float>(rng: &mut StdRng) {
    check_compositions::<T, _>(
        "lstm",
        |i, r| LstmCellConfig::new(i, HIDDEN).init(r).unwrap(),
        rng,
    );
    check_compositions::<T, _>(
        "lstm with projection",
        |i, r| {
            LstmCellConfig::new(i, HIDDEN)
                .with_proj_size(2)
                .init(r)
                .unwrap()
        },
        rng,
    );
    check_compositions::<T, _>(
        "gru",
        |i, r| GruCellConfig::new(i, HIDDEN).init(r).unwrap(),
        rng,
    );
    for nonlinearity in [Nonlinearity::Tanh, Nonlinearity::Relu] {
        let make = |i, r: &mut StdRng| {
            RnnCellConfig::new(i, HIDDEN)
                .with_nonlinearity(nonlinearity)
                .init(r)
                .unwrap()
        };
        check_compositions::<T, _>(&format!("rnn {nonlinearity:?}"), make, rng);
    }
}

#[test]
fn infer_is_forward_bit_for_bit_for_every_cell_layer_and_thread_count() {
    for threads in [1, 2] {
        with_threads(threads, || {
            let rng = &mut StdRng::seed_from_u64(1);
            check_every_cell::<f64>(rng);
            check_every_cell::<f32>(rng);
        });
    }
}

/// With two threads, the layers of [`check_compositions`] do take the split path.
#[test]
fn two_threads_split_the_batch_in_forward_and_infer_alike() {
    with_threads(2, || {
        let rng = &mut StdRng::seed_from_u64(2);
        let layer = Recurrent::new(GruCellConfig::new(INPUT, HIDDEN).init::<f32>(rng).unwrap())
            .with_parallel_threshold(0);
        let x = Tensor::randn(&[SEQ_LEN, BATCH, INPUT], rng);
        let full = layer
            .forward_with_state(&x, None, Some(&LENGTHS), Mode::Eval)
            .unwrap();
        assert!(full.trace.is_split());
        let fast = layer.infer_with_state(&x, None, Some(&LENGTHS)).unwrap();
        assert_eq!(fast.output, full.output);
        assert_eq!(fast.state, full.state);
    });
}

/// The networks: every cell type, 1 to 3 layers, both directions, both layouts, dropout.
fn check_network<T: Float, C: Cell<T> + Clone>(net: Network<C>, what: &str, rng: &mut StdRng) {
    let eval = net.clone();
    assert_infer_is_forward(&net, &eval, what, rng);
    assert_infer_is_forward(&eval, &eval, what, rng);
}

fn check_networks<T: Float>(rng: &mut StdRng) {
    for layers in 1..=3 {
        for bidirectional in [false, true] {
            for batch_first in [false, true] {
                let what = format!("{layers} layers, bidirectional {bidirectional}");
                macro_rules! config {
                    ($config:expr) => {
                        $config
                            .with_num_layers(layers)
                            .with_bidirectional(bidirectional)
                            .with_batch_first(batch_first)
                            .with_dropout(0.3)
                    };
                }
                let lstm = config!(LstmConfig::new(INPUT, HIDDEN));
                let lstm_net: Lstm<T> = lstm.init(rng).unwrap();
                check_network(lstm_net, &format!("lstm, {what}"), rng);
                let proj: Lstm<T> = lstm.with_proj_size(3).init(rng).unwrap();
                check_network(proj, &format!("lstm with projection, {what}"), rng);
                let gru: Gru<T> = config!(GruConfig::new(INPUT, HIDDEN)).init(rng).unwrap();
                check_network(gru, &format!("gru, {what}"), rng);
                let rnn: Rnn<T> = config!(RnnConfig::new(INPUT, HIDDEN)).init(rng).unwrap();
                check_network(rnn, &format!("rnn, {what}"), rng);
            }
        }
    }
}

#[test]
fn network_infer_is_forward_in_evaluation_bit_for_bit() {
    for threads in [1, 2] {
        with_threads(threads, || {
            let rng = &mut StdRng::seed_from_u64(3);
            check_networks::<f64>(rng);
            check_networks::<f32>(rng);
        });
    }
}

/// Step `t` of a time-major `(T, B, F)` tensor, `(B, F)`.
fn step_of<T: Float>(x: &Tensor<T>, t: usize) -> Tensor<T> {
    let (b, f) = (x.shape()[1], x.shape()[2]);
    Tensor::from_vec(x.as_slice()[t * b * f..][..b * f].to_vec(), &[b, f]).unwrap()
}

/// Whether `a` and `b` agree to rounding: `|a − b| ≤ 1000·ε·(1 + max |b|)`.
fn close<T: Float>(a: &Tensor<T>, b: &Tensor<T>) -> bool {
    let scale = b
        .as_slice()
        .iter()
        .fold(T::one(), |m, &v| m.max(T::one() + v.abs()));
    let bound = T::from_f64(1000.0) * T::epsilon() * scale;
    a.max_abs_diff(b).unwrap() <= bound
}

/// Streaming `net` step by step gives `forward`'s outputs and final state over the same steps
/// (bit for bit from two samples up), from zeros and from a random state; after `reset`, the
/// outputs from zeros again.
fn check_stream<T: Float, C: Cell<T> + Clone>(net: &Network<C>, batch: usize, what: &str) {
    let rng = &mut StdRng::seed_from_u64(4);
    let steps = 7;
    let x = Tensor::<T>::randn(&[steps, batch, net.input_size()], rng);
    let init = random_state(net, batch, rng);
    let eval = net.clone();
    for initial in [None, Some(&init)] {
        let whole = eval
            .forward_with_state(&x, initial, None, Mode::Eval)
            .unwrap();
        let mut stream = net.stream(batch, initial).unwrap();
        let same = |a: &Tensor<T>, b: &Tensor<T>| if batch >= 2 { a == b } else { close(a, b) };
        for t in 0..steps {
            let h = stream.step(&step_of(&x, t)).unwrap();
            let case = format!(
                "{what}, batch {batch}, step {t}, initial {}",
                initial.is_some()
            );
            assert!(same(&h, &step_of(&whole.output, t)), "{case}");
        }
        let state = stream.state();
        let parts = whole.state.parts().zip(state.parts());
        for ((name, expected), (same_name, actual)) in parts {
            assert_eq!(name, same_name);
            assert_eq!(actual.shape(), expected.shape(), "{what}: {name}");
            assert!(
                same(actual, expected),
                "{what}, batch {batch}: final {name}"
            );
        }
        stream.reset();
        assert!(stream
            .state()
            .parts()
            .all(|(_, t)| t.as_slice().iter().all(|&v| v == T::zero())));
        let from_zeros = eval.forward_with_state(&x, None, None, Mode::Eval).unwrap();
        for t in 0..steps {
            let h = stream.step(&step_of(&x, t)).unwrap();
            assert!(
                same(&h, &step_of(&from_zeros.output, t)),
                "{what}: after reset"
            );
        }
    }
}

fn check_streams<T: Float>() {
    let rng = &mut StdRng::seed_from_u64(5);
    for layers in 1..=3 {
        for batch in [3, 1] {
            let what = format!("{layers} layers");
            // dropout between the layers, which a stream (like evaluation) does not apply
            let lstm = LstmConfig::new(INPUT, HIDDEN)
                .with_num_layers(layers)
                .with_dropout(0.3);
            let net: Lstm<T> = lstm.init(rng).unwrap();
            check_stream(&net, batch, &format!("lstm, {what}"));
            let net: Lstm<T> = lstm.with_proj_size(2).init(rng).unwrap();
            check_stream(&net, batch, &format!("lstm with projection, {what}"));
            let gru = GruConfig::new(INPUT, HIDDEN).with_num_layers(layers);
            let net: Gru<T> = gru.init(rng).unwrap();
            check_stream(&net, batch, &format!("gru, {what}"));
            for nonlinearity in [Nonlinearity::Tanh, Nonlinearity::Relu] {
                let rnn = RnnConfig::new(INPUT, HIDDEN)
                    .with_num_layers(layers)
                    .with_nonlinearity(nonlinearity);
                let net: Rnn<T> = rnn.init(rng).unwrap();
                check_stream(&net, batch, &format!("rnn {nonlinearity:?}, {what}"));
            }
        }
    }
}

#[test]
fn a_network_streamed_step_by_step_is_its_forward_pass() {
    check_streams::<f64>();
    check_streams::<f32>();
}

#[test]
fn a_stream_has_the_layout_of_pytorchs_states() {
    let rng = &mut StdRng::seed_from_u64(6);
    let config = LstmConfig::new(INPUT, HIDDEN)
        .with_num_layers(3)
        .with_proj_size(2);
    let lstm: Lstm<f32> = config.init(rng).unwrap();
    let stream = lstm.stream(4, None).unwrap();
    let state = stream.state();
    assert_eq!(state.h().shape(), &[3, 4, 2]);
    assert_eq!(state.c().unwrap().shape(), &[3, 4, HIDDEN]);
}

#[test]
fn streaming_errors_name_what_is_wrong() {
    let rng = &mut StdRng::seed_from_u64(7);
    let gru: Gru<f64> = GruConfig::new(INPUT, HIDDEN)
        .with_num_layers(2)
        .init(rng)
        .unwrap();
    let mut stream = gru.stream(2, None).unwrap();
    let e = stream.step(&Tensor::zeros(&[2, INPUT + 1])).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "shape mismatch in stream input: expected [2, 3], got [2, 4]"
    );
    // the failed step changed nothing
    assert!(stream.state().h().as_slice().iter().all(|&v| v == 0.0));

    let bad_initial = State::from_h(Tensor::zeros(&[1, 2, HIDDEN]));
    let e = gru.stream(2, Some(&bad_initial)).unwrap_err();
    assert!(e.to_string().contains("[2, 2, 5]"), "{e}");
    assert!(e.to_string().contains("[1, 2, 5]"), "{e}");

    let bi = GruConfig::new(INPUT, HIDDEN).with_bidirectional(true);
    let bi: Gru<f64> = bi.init(rng).unwrap();
    let e = bi.stream(2, None).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");
    assert!(e.to_string().contains("bidirectional"), "{e}");
}

/// A sequence long enough that `infer` projects its input in several chunks of steps (about
/// 2²¹ values each: 128 steps here) gives `forward`'s results bit for bit.
#[test]
fn long_sequences_projected_in_chunks_are_forward_bit_for_bit() {
    let rng = &mut StdRng::seed_from_u64(8);
    let (seq_len, batch) = (130, 64);
    let lstm = Recurrent::new(LstmCellConfig::new(8, 64).init::<f32>(rng).unwrap());
    let x = Tensor::randn(&[seq_len, batch, 8], rng);
    let lengths: Vec<usize> = (0..batch).map(|b| seq_len - 2 * b).collect();
    for lengths in [None, Some(&lengths[..])] {
        let fast = lstm.infer_with_state(&x, None, lengths).unwrap();
        let full = lstm
            .forward_with_state(&x, None, lengths, Mode::Eval)
            .unwrap();
        assert_eq!(fast.output, full.output);
        assert_eq!(fast.state, full.state);
    }
}
