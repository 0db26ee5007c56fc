//! `Bidirectional`, `Stacked` and the PyTorch-style builders: analytic gradients against central
//! finite differences (`f64`, bound 1e-6 on `|analytic − numeric| / max(1, |analytic|,
//! |numeric|)`) for both directions, stacks of depth 1 to 3, both composition orders, LSTM
//! projections and inter-layer dropout, over random shapes, lengths and seeds drawn from a fixed
//! seed (and `Bidirectional` and `Stacked` of the peephole and the layer-normalised LSTM, whose
//! parameters are named per layer and direction); a stack of one layer equals that layer; dropout's training and evaluation behaviour;
//! threads change nothing; and the errors of bad configurations. PyTorch's values are checked
//! in `parity.rs`, the invariants in `invariants.rs`.

mod common;

use std::cell::Cell as StdCell;

use common::{layer_norm, random_lengths, runner};
use proptest::prelude::*;
use rand::{rngs::StdRng, SeedableRng};
use recurrent::{
    Bidirectional, Cell, Error, Gradcheck, GradcheckReport, GruCellConfig, Lstm, LstmCellConfig,
    LstmConfig, Mode, Parameters, PeepholeLstmCellConfig, Recurrent, RnnCellConfig, SequenceLayer,
    Stacked, State, Tensor,
};

const BOUND: f64 = 1e-6;

/// How the layers are put together.
#[derive(Debug, Clone, Copy)]
enum Composition {
    /// `Bidirectional<Recurrent<C>>`
    Bidirectional,
    /// `Stacked<Recurrent<C>>`
    Stacked,
    /// `Stacked<Bidirectional<Recurrent<C>>>`, PyTorch's multi-layer bidirectional network
    StackedBidirectional,
    /// `Bidirectional<Stacked<Recurrent<C>>>`, two deep stacks
    BidirectionalStacked,
    /// `Stacked<Recurrent<C>>` with dropout 0.3 between the layers, masks from a fixed seed
    StackedDropout,
}

#[derive(Debug, Clone)]
struct Problem {
    seq_len: usize,
    batch: usize,
    input_size: usize,
    hidden_size: usize,
    depth: usize,
    /// 0 LSTM, 1 LSTM with a projection, 2 GRU, 3 tanh RNN
    cell: u8,
    bias: bool,
    initial_state: bool,
    variable_lengths: bool,
    seed: u64,
}

fn problems() -> impl Strategy<Value = Problem> {
    (
        (1..=7usize, 1..=4usize, 1..=5usize, 2..=5usize, 1..=3usize),
        (
            0..4u8,
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<u64>(),
        ),
    )
        .prop_map(
            |(
                (seq_len, batch, input_size, hidden_size, depth),
                (cell, bias, initial_state, variable_lengths, seed),
            )| Problem {
                seq_len,
                batch,
                input_size,
                hidden_size,
                depth,
                cell,
                bias,
                initial_state,
                variable_lengths,
                seed,
            },
        )
}

/// A random state for `layer`, parts `(L·D, B, width)`.
fn random_state<L: SequenceLayer<f64>>(layer: &L, batch: usize, rng: &mut StdRng) -> State<f64> {
    let slots = layer.state_slots();
    let parts = layer.state_parts().into_iter().map(|p| {
        let t = Tensor::randn(&[slots, batch, p.size], rng).map(|v| 0.5 * v);
        (p.name, t)
    });
    State::new(parts.collect())
}

fn check<L: SequenceLayer<f64> + Clone>(
    layer: L,
    p: &Problem,
    rng: &mut StdRng,
) -> GradcheckReport {
    let x = Tensor::randn(&[p.seq_len, p.batch, layer.input_size()], rng);
    let init = p.initial_state.then(|| random_state(&layer, p.batch, rng));
    let lengths: Option<Vec<usize>> = p
        .variable_lengths
        .then(|| random_lengths(p.seq_len, p.batch, rng));
    Gradcheck::new()
        .with_seed(p.seed)
        .check_layer(&layer, &x, init.as_ref(), lengths.as_deref())
        .expect("valid problem")
}

/// Builds the composition out of cells from `make(input_size, rng)` and checks it.
fn compose<C: Cell<f64> + Clone>(
    how: Composition,
    p: &Problem,
    make: impl Fn(usize, &mut StdRng) -> C,
) -> GradcheckReport {
    let rng = &mut StdRng::seed_from_u64(p.seed);
    let layer = |input: usize, rng: &mut StdRng| Recurrent::new(make(input, rng));
    let out = make(1, &mut StdRng::seed_from_u64(0)).output_size();
    let stack_with = |first_input: usize, dropout: f64, rng: &mut StdRng| {
        let layers = (0..p.depth)
            .map(|k| layer(if k == 0 { first_input } else { out }, rng))
            .collect();
        Stacked::new(layers, dropout).expect("sizes chain")
    };
    let stack = |first_input: usize, rng: &mut StdRng| stack_with(first_input, 0.0, rng);
    match how {
        Composition::Bidirectional => {
            let bi = Bidirectional::new(layer(p.input_size, rng), layer(p.input_size, rng));
            check(bi.expect("same sizes"), p, rng)
        }
        Composition::Stacked => check(stack(p.input_size, rng), p, rng),
        Composition::StackedBidirectional => {
            let layers = (0..p.depth)
                .map(|k| {
                    let input = if k == 0 { p.input_size } else { 2 * out };
                    Bidirectional::new(layer(input, rng), layer(input, rng)).expect("same sizes")
                })
                .collect();
            check(Stacked::new(layers, 0.0).expect("sizes chain"), p, rng)
        }
        Composition::BidirectionalStacked => {
            let (f, r) = (stack(p.input_size, rng), stack(p.input_size, rng));
            check(Bidirectional::new(f, r).expect("same sizes"), p, rng)
        }
        Composition::StackedDropout => {
            let stacked = stack_with(p.input_size, 0.3, rng);
            if p.depth > 1 {
                // the masks are really applied: evaluation mode gives another output
                let x = Tensor::randn(&[p.seq_len, p.batch, p.input_size], rng);
                let (dropped, plain) = (
                    stacked
                        .forward_with_state(&x, None, None, Mode::Train { seed: 7 })
                        .expect("valid input"),
                    stacked
                        .forward_with_state(&x, None, None, Mode::Eval)
                        .expect("valid input"),
                );
                assert_ne!(dropped.output, plain.output, "{p:?}");
            }
            check(stacked, p, rng)
        }
    }
}

/// Checks `how` with the problem's cell over every drawn problem and asserts the bound.
fn run(how: Composition) {
    run_with(&format!("{how:?}"), |p| {
        let (h, bias) = (p.hidden_size, p.bias);
        match p.cell {
            0 => compose(how, p, |i, rng| {
                LstmCellConfig::new(i, h).with_bias(bias).init(rng).unwrap()
            }),
            1 => compose(how, p, |i, rng| {
                LstmCellConfig::new(i, h)
                    .with_bias(bias)
                    .with_proj_size(h - 1)
                    .init(rng)
                    .unwrap()
            }),
            2 => compose(how, p, |i, rng| {
                GruCellConfig::new(i, h).with_bias(bias).init(rng).unwrap()
            }),
            _ => compose(how, p, |i, rng| {
                RnnCellConfig::new(i, h).with_bias(bias).init(rng).unwrap()
            }),
        }
    });
}

/// Checks `how` with peephole LSTM cells (whatever the problem's `cell`) over every drawn
/// problem and asserts the bound.
fn run_peephole_lstm(how: Composition) {
    run_with(&format!("{how:?} of PeepholeLstmCell"), |p| {
        compose(how, p, |i, rng| {
            PeepholeLstmCellConfig::new(i, p.hidden_size)
                .with_bias(p.bias)
                .init(rng)
                .unwrap()
        })
    });
}

/// Runs `check` on every drawn problem and asserts the bound.
fn run_with(label: &str, check: impl Fn(&Problem) -> GradcheckReport) {
    let (worst, checked) = (StdCell::new(0.0f64), StdCell::new(0));
    let result = runner(48).run(&problems(), |p| {
        let report = check(&p);
        worst.set(worst.get().max(report.worst_error));
        checked.set(checked.get() + report.checked);
        prop_assert!(report.worst_error <= BOUND, "{label} {p:?}: {report}");
        prop_assert_eq!(report.kinks, 0, "{} {:?}: {}", label, p, report);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    println!(
        "{label}: worst error {:.3e} over {} problems, {} elements",
        worst.get(),
        runner(48).config().cases,
        checked.get()
    );
}

#[test]
fn bidirectional_gradients_match_finite_differences() {
    run(Composition::Bidirectional);
}

#[test]
fn stacked_gradients_match_finite_differences() {
    run(Composition::Stacked);
}

#[test]
fn bidirectional_peephole_lstm_gradients_match_finite_differences() {
    run_peephole_lstm(Composition::Bidirectional);
}

#[test]
fn stacked_peephole_lstm_gradients_match_finite_differences() {
    run_peephole_lstm(Composition::Stacked);
}

#[test]
fn stacked_bidirectional_gradients_match_finite_differences() {
    run(Composition::StackedBidirectional);
}

#[test]
fn bidirectional_stacked_gradients_match_finite_differences() {
    run(Composition::BidirectionalStacked);
}

#[test]
fn stacked_dropout_gradients_match_finite_differences() {
    run(Composition::StackedDropout);
}

#[test]
fn a_stack_of_one_layer_is_that_layer() {
    let result = runner(64).run(&problems(), |p| {
        let rng = &mut StdRng::seed_from_u64(p.seed);
        let layer = Recurrent::new(
            GruCellConfig::new(p.input_size, p.hidden_size)
                .init(rng)
                .unwrap(),
        );
        let stack = Stacked::new(vec![layer.clone()], 0.5).unwrap();
        let x = Tensor::randn(&[p.seq_len, p.batch, p.input_size], rng);
        let lengths: Vec<usize> = random_lengths(p.seq_len, p.batch, rng);
        let init = random_state(&layer, p.batch, rng);
        let (a, b) = (
            layer
                .forward_with_state(&x, Some(&init), Some(&lengths), Mode::Eval)
                .unwrap(),
            stack
                .forward_with_state(&x, Some(&init), Some(&lengths), Mode::Eval)
                .unwrap(),
        );
        prop_assert_eq!(&a.output, &b.output);
        prop_assert_eq!(&a.state, &b.state);
        let g = Tensor::randn(a.output.shape(), rng);
        let g_state = random_state(&layer, p.batch, rng);
        let ga = layer
            .backward_with_state(&a.trace, Some(&g), Some(&g_state))
            .unwrap();
        let gb = stack
            .backward_with_state(&b.trace, Some(&g), Some(&g_state))
            .unwrap();
        prop_assert_eq!(&ga.input, &gb.input);
        prop_assert_eq!(&ga.initial_state, &gb.initial_state);
        prop_assert_eq!(&ga.params, &gb.params);
        prop_assert_eq!(layer.param_names(), stack.param_names());
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Another input of the shape the dropout tests use.
fn x_side() -> Tensor<f64> {
    Tensor::randn(&[5, 4, 3], &mut StdRng::seed_from_u64(3))
}

fn two_layer_lstm(dropout: f64) -> Lstm<f64> {
    let config = LstmConfig::new(3, 6)
        .with_num_layers(2)
        .with_dropout(dropout);
    config.init(&mut StdRng::seed_from_u64(1)).unwrap()
}

#[test]
fn dropout_is_active_in_training_only_and_reproducible() {
    let x = Tensor::randn(&[5, 4, 3], &mut StdRng::seed_from_u64(2));
    let run = |lstm: &recurrent::Lstm<f64>, x: &Tensor<f64>, mode| {
        lstm.forward_with_state(x, None, None, mode).unwrap().output
    };
    let plain = run(&two_layer_lstm(0.0), &x, Mode::Train { seed: 11 });

    let lstm = two_layer_lstm(0.5);
    let first = run(&lstm, &x, Mode::Train { seed: 11 });
    assert_ne!(first, plain, "training mode drops");
    // the masks depend on the seed only, not on earlier calls (or their threads)
    let clone = lstm.clone();
    let side = std::thread::spawn(move || run(&clone, &x_side(), Mode::Train { seed: 11 }));
    let second = run(&lstm, &x, Mode::Train { seed: 11 });
    side.join().unwrap();
    assert_eq!(first, second, "same seed, same masks");
    assert_eq!(
        run(&two_layer_lstm(0.5), &x, Mode::Train { seed: 11 }),
        first
    );
    let third = run(&lstm, &x, Mode::Train { seed: 12 });
    assert_ne!(third, first, "a new seed draws new masks");
    assert_eq!(
        run(&lstm, &x, Mode::Eval),
        plain,
        "evaluation mode does not drop"
    );
}

#[test]
fn two_threads_give_the_same_results_as_one() {
    let rng = &mut StdRng::seed_from_u64(4);
    let config = LstmCellConfig::new(5, 7);
    let bi = Bidirectional::new(
        Recurrent::new(config.init::<f64>(rng).unwrap()),
        Recurrent::new(config.init(rng).unwrap()),
    )
    .unwrap();
    let (serial, parallel) = (
        bi.clone().with_parallel_threshold(usize::MAX),
        bi.with_parallel_threshold(0),
    );
    let x = Tensor::randn(&[9, 3, 5], rng);
    let lengths = [9, 4, 6];
    let a = serial
        .forward_with_state(&x, None, Some(&lengths), Mode::Eval)
        .unwrap();
    let b = parallel
        .forward_with_state(&x, None, Some(&lengths), Mode::Eval)
        .unwrap();
    assert_eq!(a.output, b.output);
    assert_eq!(a.state, b.state);
    let g = Tensor::randn(a.output.shape(), rng);
    let ga = serial
        .backward_with_state(&a.trace, Some(&g), None)
        .unwrap();
    let gb = parallel
        .backward_with_state(&b.trace, Some(&g), None)
        .unwrap();
    assert_eq!(ga.input, gb.input);
    assert_eq!(ga.params, gb.params);
}

/// Splitting an empty input (no feature, or no step) is not attempted, and the call works.
#[test]
fn empty_inputs_are_not_split() {
    let rng = &mut StdRng::seed_from_u64(13);
    let layer = Recurrent::new(RnnCellConfig::new(0, 4).init::<f64>(rng).unwrap())
        .with_parallel_threshold(0);
    let out = layer
        .forward_with_state(&Tensor::zeros(&[6, 4, 0]), None, None, Mode::Eval)
        .unwrap();
    assert_eq!(out.output.shape(), &[6, 4, 4]);
    let layer = Recurrent::new(RnnCellConfig::new(3, 4).init::<f64>(rng).unwrap())
        .with_batch_first(true)
        .with_parallel_threshold(0);
    let out = layer
        .forward_with_state(&Tensor::zeros(&[4, 0, 3]), None, None, Mode::Eval)
        .unwrap();
    assert_eq!(out.output.shape(), &[4, 0, 4]);
}

/// A `Recurrent` whose batch is split over two threads has the right gradients.
#[test]
fn a_split_batch_passes_gradcheck() {
    let rng = &mut StdRng::seed_from_u64(12);
    let layer = Recurrent::new(LstmCellConfig::new(3, 4).init::<f64>(rng).unwrap())
        .with_parallel_threshold(0);
    let x = Tensor::randn(&[5, 3, 3], rng);
    let report = Gradcheck::new()
        .check_layer(&layer, &x, None, Some(&[5, 2, 4]))
        .unwrap();
    assert!(report.worst_error < BOUND, "{report}");
}

#[test]
fn names_follow_pytorch() {
    let config = LstmConfig::new(3, 4)
        .with_num_layers(2)
        .with_bidirectional(true)
        .with_proj_size(2);
    let lstm: Lstm<f32> = config.init(&mut StdRng::seed_from_u64(0)).unwrap();
    let mut expected = Vec::new();
    for layer in 0..2 {
        for suffix in ["", "_reverse"] {
            for base in ["weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr"] {
                expected.push(format!("{base}_l{layer}{suffix}"));
            }
        }
    }
    assert_eq!(lstm.param_names(), expected);
    let shapes = lstm.state_dict();
    assert_eq!(shapes.get("weight_ih_l1").unwrap().shape(), &[16, 4]);
    assert_eq!(
        shapes.get("weight_hh_l1_reverse").unwrap().shape(),
        &[16, 2]
    );
    assert_eq!(shapes.get("weight_hr_l0").unwrap().shape(), &[2, 4]);
}

#[test]
fn bad_configurations_are_rejected_with_their_reason() {
    let rng = &mut StdRng::seed_from_u64(0);
    let invalid = |r: recurrent::Result<Lstm<f32>>| match r {
        Err(Error::InvalidArgument { name, reason }) => format!("{name}: {reason}"),
        other => panic!("expected InvalidArgument, got {other:?}"),
    };
    let msg = invalid(LstmConfig::new(3, 4).with_num_layers(0).init(rng));
    assert!(msg.starts_with("num_layers"), "{msg}");
    let msg = invalid(LstmConfig::new(3, 4).with_dropout(1.0).init(rng));
    assert!(msg.starts_with("dropout: 1"), "{msg}");
    let msg = invalid(LstmConfig::new(3, 4).with_proj_size(4).init(rng));
    assert!(msg.starts_with("proj_size: 4"), "{msg}");
    let msg = invalid(LstmConfig::new(3, 0).init(rng));
    assert!(msg.starts_with("hidden_size"), "{msg}");

    let a = Recurrent::new(GruCellConfig::new(3, 4).init::<f32>(rng).unwrap());
    let b = Recurrent::new(GruCellConfig::new(5, 4).init::<f32>(rng).unwrap());
    let e = Stacked::new(vec![a.clone(), b.clone()], 0.0).unwrap_err();
    assert!(
        e.to_string()
            .contains("layer 1 reads 5 features but layer 0 outputs 4"),
        "{e}"
    );
    assert!(Stacked::<Recurrent<recurrent::GruCell<f32>>>::new(vec![], 0.0).is_err());
    let e = Stacked::new(vec![a.clone()], 1.0).unwrap_err();
    assert_eq!(e.to_string(), "invalid dropout: 1 is not in [0, 1)");
    let e = Bidirectional::new(a.clone(), b).unwrap_err();
    assert!(
        e.to_string().contains("the forward layer has input 3"),
        "{e}"
    );

    let bi = Bidirectional::new(a.clone(), a).unwrap();
    let x = Tensor::zeros(&[4, 2, 3]);
    let h0 = State::from_h(Tensor::zeros(&[1, 2, 4]));
    let e = bi
        .forward_with_state(&x, Some(&h0), None, Mode::Eval)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "shape mismatch in initial state: expected [2, 2, 4], got [1, 2, 4]"
    );
    let e = bi
        .forward_with_state(&x, None, Some(&[4, 5]), Mode::Eval)
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidLength {
                index: 1,
                length: 5,
                seq_len: 4
            }
        ),
        "{e}"
    );
}

#[test]
fn a_wrong_output_gradient_is_an_error_not_a_panic() {
    let rng = &mut StdRng::seed_from_u64(5);
    let config = GruCellConfig::new(2, 3);
    let bi = Bidirectional::new(
        Recurrent::new(config.init::<f64>(rng).unwrap()),
        Recurrent::new(config.init(rng).unwrap()),
    )
    .unwrap();
    let out = bi
        .forward_with_state(
            &Tensor::randn(&[4, 2, 2], rng),
            None,
            Some(&[4, 3]),
            Mode::Eval,
        )
        .unwrap();
    for dims in [[2, 2, 6], [4, 3, 6], [4, 2, 5]] {
        let e = bi
            .backward_with_state(&out.trace, Some(&Tensor::zeros(&dims)), None)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("shape mismatch in output gradient: expected [4, 2, 6], got {dims:?}")
        );
    }
    let d_state = State::from_h(Tensor::zeros(&[2, 3, 3]));
    let e = bi
        .backward_with_state(&out.trace, None, Some(&d_state))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "shape mismatch in final state gradient: expected [2, 2, 3], got [2, 3, 3]"
    );
}

#[test]
fn layers_whose_names_would_clash_are_rejected() {
    let rng = &mut StdRng::seed_from_u64(6);
    let config = LstmConfig::new(3, 3).with_num_layers(2);
    let (a, b) = (config.init::<f32>(rng).unwrap(), config.init(rng).unwrap());
    // a stack of stacks numbers both inner stacks from l0
    let e = Stacked::new(vec![a, b], 0.0).unwrap_err();
    assert!(
        e.to_string()
            .contains("two parameters are named `bias_hh_l0`"),
        "{e}"
    );
}

#[test]
fn gradcheck_checks_a_layer_with_active_dropout() {
    let rng = &mut StdRng::seed_from_u64(8);
    let config = LstmConfig::new(2, 3).with_num_layers(2).with_dropout(0.5);
    let lstm = config.init::<f64>(rng).unwrap();
    let x = Tensor::randn(&[4, 2, 2], rng);
    // the checker runs in training mode with its own seed, so every evaluation sees the same
    // masks, and they are really applied
    let check = Gradcheck::new().with_seed(5);
    let report = check.check_layer(&lstm, &x, None, None).unwrap();
    assert!(report.worst_error < BOUND, "{report}");
    let train = lstm.forward_with_state(&x, None, None, Mode::Train { seed: 5 });
    let eval = lstm.forward_with_state(&x, None, None, Mode::Eval);
    assert_ne!(train.unwrap().output, eval.unwrap().output);
}

/// Checks `how` built from layer-normalised LSTMs (random layer-norm gains and shifts, at the
/// `eps` of [`layer_norm::GRADCHECK_EPS`]) over every drawn problem and asserts the bound.
fn run_layer_norm_lstm(how: Composition) {
    run_with(&format!("{how:?} of LayerNormLstmCell"), |p| {
        compose(how, p, |i, rng| {
            layer_norm::random_layer_norm_lstm(i, p.hidden_size, layer_norm::GRADCHECK_EPS, rng)
        })
    });
}

#[test]
fn bidirectional_layer_norm_lstm_gradients_match_finite_differences() {
    run_layer_norm_lstm(Composition::Bidirectional);
}

#[test]
fn stacked_layer_norm_lstm_gradients_match_finite_differences() {
    run_layer_norm_lstm(Composition::Stacked);
}

/// The layer-norm parameters of a layer-normalised LSTM take the suffixes of their layer and
/// direction, as the standard ones do.
#[test]
fn layer_norm_lstm_parameters_are_named_per_layer_and_direction() {
    let rng = &mut StdRng::seed_from_u64(3);
    let mut pair = |input| {
        let mut cell =
            || layer_norm::random_layer_norm_lstm(input, 3, layer_norm::GRADCHECK_EPS, rng);
        let (forward, reverse) = (Recurrent::new(cell()), Recurrent::new(cell()));
        Bidirectional::new(forward, reverse).unwrap()
    };
    let (first, second) = (pair(2), pair(6));
    let network = Stacked::new(vec![first, second], 0.0).unwrap();
    let names = network.param_names();
    assert_eq!(names.len(), 2 * 2 * 8);
    for name in [
        "ln_weight_ih_l0",
        "ln_bias_c_l0_reverse",
        "ln_weight_hh_l1",
        "ln_bias_ih_l1_reverse",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }
}
