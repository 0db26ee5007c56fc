//! Variational dropout in `Recurrent` (one mask per sequence on the input and on `h`):
//! gradients against finite differences in training mode for every built-in cell and the
//! combinators, what the masks are (the same at every step, per sample, scaled, only where the
//! docs say), and that they depend on nothing but the seed and the sample's index: not on
//! padding, the other samples, or the split of the batch over threads.

mod common;

use std::cell::Cell as StdCell;

use common::{problems, random_lengths, runner, Problem};
use proptest::prelude::*;
use rand::{rngs::StdRng, SeedableRng};
use recurrent::{
    Cell, Gradcheck, GruCellConfig, GruConfig, LstmCellConfig, LstmConfig, Mode, Nonlinearity,
    Parameters, Recurrent, RnnCellConfig, SequenceLayer, State, Tensor,
};

const BOUND: f64 = 1e-6;
const P_INPUT: f64 = 0.3;
const P_STATE: f64 = 0.4;

/// Gradients of `layer` (made by `make`) against finite differences, in training mode with
/// the checker's seed (fixed masks), with random lengths and initial state.
fn gradcheck<L: SequenceLayer<f64> + Clone>(
    label: &str,
    make: impl Fn(&Problem, &mut StdRng) -> L,
) {
    let worst = StdCell::new(0.0f64);
    let result = runner(64).run(&problems(8, 4), |p| {
        let rng = &mut StdRng::seed_from_u64(p.seed);
        let layer = make(&p, rng);
        let x = Tensor::randn(&[p.seq_len, p.batch, p.input_size], rng);
        let lengths = random_lengths(p.seq_len, p.batch, rng);
        let report = Gradcheck::new()
            .with_seed(p.seed)
            .check_layer(&layer, &x, None, Some(&lengths))
            .expect("valid problem");
        worst.set(worst.get().max(report.worst_error));
        prop_assert!(report.worst_error <= BOUND, "{label} {p:?}: {report}");
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    println!("{label}: worst error {:.3e}", worst.get());
}

fn dropped<C>(cell: C) -> Recurrent<C> {
    Recurrent::new(cell)
        .with_variational_dropout(P_INPUT, P_STATE)
        .unwrap()
}

#[test]
fn gradients_with_variational_dropout_match_finite_differences() {
    gradcheck("lstm", |p, rng| {
        dropped(
            LstmCellConfig::new(p.input_size, p.hidden_size)
                .init::<f64>(rng)
                .unwrap(),
        )
    });
    gradcheck("gru", |p, rng| {
        dropped(
            GruCellConfig::new(p.input_size, p.hidden_size)
                .init::<f64>(rng)
                .unwrap(),
        )
    });
    gradcheck("rnn tanh", |p, rng| {
        dropped(
            RnnCellConfig::new(p.input_size, p.hidden_size)
                .with_nonlinearity(Nonlinearity::Tanh)
                .init::<f64>(rng)
                .unwrap(),
        )
    });
    gradcheck("lstm with projection", |p, rng| {
        dropped(
            LstmCellConfig::new(p.input_size, p.hidden_size + 1)
                .with_proj_size(p.hidden_size)
                .init::<f64>(rng)
                .unwrap(),
        )
    });
}

#[test]
fn stacked_bidirectional_networks_with_variational_dropout_match_finite_differences() {
    gradcheck("2-layer bidirectional lstm", |p, rng| {
        LstmConfig::new(p.input_size, p.hidden_size)
            .with_num_layers(2)
            .with_bidirectional(true)
            .with_dropout(0.25)
            .with_variational_dropout(P_INPUT, P_STATE)
            .init::<f64>(rng)
            .unwrap()
    });
    gradcheck("2-layer gru", |p, rng| {
        GruConfig::new(p.input_size, p.hidden_size)
            .with_num_layers(2)
            .with_variational_dropout(P_INPUT, P_STATE)
            .init::<f64>(rng)
            .unwrap()
    });
}

/// The input mask read back from the input gradient: `(B, I)`, 0 where a feature is dropped.
/// Asserts that it is the same at every step of each sample.
fn input_mask_from_gradient(d_x: &Tensor<f64>, lengths: &[usize]) -> Vec<Vec<bool>> {
    let (_, batch, input_size) = (d_x.shape()[0], d_x.shape()[1], d_x.shape()[2]);
    (0..batch)
        .map(|b| {
            let kept = |t: usize| -> Vec<bool> {
                (0..input_size).map(|i| d_x.at(&[t, b, i]) != 0.0).collect()
            };
            let first = kept(0);
            for t in 1..lengths[b] {
                assert_eq!(kept(t), first, "sample {b}: the mask changed at step {t}");
            }
            first
        })
        .collect()
}

/// The input mask is one per sequence, scaled by 1/(1 − p): the output equals evaluation on
/// the input multiplied by the mask read back from the gradient.
#[test]
fn the_input_mask_is_one_per_sequence() {
    let rng = &mut StdRng::seed_from_u64(3);
    let (t, b, i, h) = (6, 5, 40, 4);
    let cell = LstmCellConfig::new(i, h).init::<f64>(rng).unwrap();
    let layer = Recurrent::new(cell.clone())
        .with_variational_dropout(0.5, 0.0)
        .unwrap();
    let plain = Recurrent::new(cell);
    let x = Tensor::randn(&[t, b, i], rng);
    let lengths = [6, 3, 5, 6, 1];
    let mode = Mode::Train { seed: 11 };
    let out = layer
        .forward_with_state(&x, None, Some(&lengths), mode)
        .unwrap();
    let grads = layer
        .backward_with_state(&out.trace, Some(&Tensor::full(&[t, b, h], 1.0)), None)
        .unwrap();
    let mask = input_mask_from_gradient(&grads.input, &lengths);
    let dropped: usize = mask.iter().flatten().filter(|&&k| !k).count();
    assert!((50..150).contains(&dropped), "{dropped} of 200 dropped");
    assert_ne!(mask[0], mask[1], "each sequence draws its own mask");
    let masked = from_fn(&[t, b, i], |ix| {
        let keep = if mask[ix[1]][ix[2]] { 2.0 } else { 0.0 };
        keep * x.at(ix)
    });
    let expected = plain
        .forward_with_state(&masked, None, Some(&lengths), Mode::Eval)
        .unwrap();
    assert_close(&out.output, &expected.output, 1e-12);
}

/// The recurrent mask multiplies `h` where each step reads it, the same mask at every step:
/// the sequence equals single steps of the cell from the masked previous state, with the
/// mask read back from the gradient of the initial state.
#[test]
fn the_recurrent_mask_is_one_per_sequence_on_h() {
    let rng = &mut StdRng::seed_from_u64(4);
    let (t, b, i, h) = (5, 3, 3, 24);
    let cell = RnnCellConfig::new(i, h).init::<f64>(rng).unwrap();
    let layer = Recurrent::new(cell.clone())
        .with_variational_dropout(0.0, 0.5)
        .unwrap();
    let x = Tensor::randn(&[t, b, i], rng);
    let h0 = State::from_h(Tensor::randn(&[1, b, h], rng));
    let mode = Mode::Train { seed: 5 };
    let out = layer.forward_with_state(&x, Some(&h0), None, mode).unwrap();
    let grads = layer
        .backward_with_state(&out.trace, Some(&Tensor::full(&[t, b, h], 1.0)), None)
        .unwrap();
    // d h0 = m ⊙ (W_hhᵀ · …): zero exactly where the mask drops
    let d_h0 = grads.initial_state.h();
    let mask = from_fn(&[b, h], |ix| {
        if d_h0.at(&[0, ix[0], ix[1]]) == 0.0 {
            0.0
        } else {
            2.0
        }
    });
    let dropped = mask.as_slice().iter().filter(|&&m| m == 0.0).count();
    assert!((12..60).contains(&dropped), "{dropped} of 72 dropped");
    let mut state = h0.h().clone().reshape(&[b, h]).unwrap();
    for step in 0..t {
        let x_t = from_fn(&[b, i], |ix| x.at(&[step, ix[0], ix[1]]));
        let read = from_fn(&[b, h], |ix| state.at(ix) * mask.at(ix));
        let (next, _) = cell.forward(&x_t, Some(&State::from_h(read))).unwrap();
        state = next.h().clone();
        let out_t = from_fn(&[b, h], |ix| out.output.at(&[step, ix[0], ix[1]]));
        assert_close(&out_t, &state, 1e-12);
    }
}

/// A sample's output and gradients do not depend on padding past its end (the masks are
/// drawn per sample, whatever the sequence length of the batch).
#[test]
fn padding_changes_nothing_in_training() {
    let rng = &mut StdRng::seed_from_u64(6);
    let layer = dropped(LstmCellConfig::new(3, 5).init::<f64>(rng).unwrap());
    let x = Tensor::randn(&[4, 2, 3], rng);
    let lengths = [4, 2];
    let mut padded = Tensor::randn(&[9, 2, 3], rng);
    for (t, b, f) in (0..4).flat_map(|t| (0..2).flat_map(move |b| (0..3).map(move |f| (t, b, f)))) {
        set(&mut padded, &[t, b, f], x.at(&[t, b, f]));
    }
    let mode = Mode::Train { seed: 8 };
    let a = layer
        .forward_with_state(&x, None, Some(&lengths), mode)
        .unwrap();
    let b = layer
        .forward_with_state(&padded, None, Some(&lengths), mode)
        .unwrap();
    assert_eq!(a.state, b.state);
    for t in 0..4 {
        for s in 0..2 {
            for j in 0..5 {
                assert_eq!(a.output.at(&[t, s, j]), b.output.at(&[t, s, j]));
            }
        }
    }
    let ga = layer
        .backward_with_state(&a.trace, None, Some(&a.state))
        .unwrap();
    let gb = layer
        .backward_with_state(&b.trace, None, Some(&b.state))
        .unwrap();
    for (name, g) in ga.params.iter() {
        assert_close(g, gb.params.get(name).unwrap(), 1e-12);
    }
}

/// Changing the other samples changes nothing in a sample's output (its masks are its own).
#[test]
fn a_sample_does_not_depend_on_its_batch_in_training() {
    let rng = &mut StdRng::seed_from_u64(7);
    let layer = dropped(GruCellConfig::new(3, 6).init::<f64>(rng).unwrap());
    let x = Tensor::randn(&[5, 3, 3], rng);
    let mut other = Tensor::randn(&[5, 3, 3], rng);
    for t in 0..5 {
        for f in 0..3 {
            set(&mut other, &[t, 1, f], x.at(&[t, 1, f]));
        }
    }
    let mode = Mode::Train { seed: 2 };
    let a = layer.forward_with_state(&x, None, None, mode).unwrap();
    let b = layer.forward_with_state(&other, None, None, mode).unwrap();
    for t in 0..5 {
        for j in 0..6 {
            assert_eq!(a.output.at(&[t, 1, j]), b.output.at(&[t, 1, j]));
        }
    }
}

/// The masks depend on the seed; evaluation, inference and zero probabilities never drop; a
/// batch split over two threads draws the masks of the whole batch.
#[test]
fn masks_follow_the_seed_and_the_mode_only() {
    let rng = &mut StdRng::seed_from_u64(9);
    let cell = LstmCellConfig::new(4, 8).init::<f64>(rng).unwrap();
    let plain = Recurrent::new(cell.clone());
    let layer = dropped(cell.clone());
    let x = Tensor::randn(&[6, 8, 4], rng);
    let lengths = [6, 5, 6, 1, 2, 6, 3, 4];
    let run = |l: &Recurrent<_>, mode| {
        l.forward_with_state(&x, None, Some(&lengths), mode)
            .unwrap()
            .output
    };
    let (s1, s2) = (Mode::Train { seed: 1 }, Mode::Train { seed: 2 });
    assert_eq!(run(&layer, s1), run(&layer, s1));
    assert_ne!(run(&layer, s1), run(&layer, s2));
    assert_ne!(run(&layer, s1), run(&plain, s1));
    assert_eq!(run(&layer, Mode::Eval), run(&plain, Mode::Eval));
    let inferred = layer.infer_with_state(&x, None, Some(&lengths)).unwrap();
    assert_eq!(inferred.output, run(&plain, Mode::Eval));
    let off = Recurrent::new(cell)
        .with_variational_dropout(0.0, 0.0)
        .unwrap();
    assert_eq!(run(&off, s1), run(&plain, s1));
    // the whole batch on one thread, or in two halves on two (where two are allowed)
    let whole = layer.clone().with_parallel_threshold(usize::MAX);
    let split = layer.clone().with_parallel_threshold(0);
    let (a, b) = (
        whole
            .forward_with_state(&x, None, Some(&lengths), s1)
            .unwrap(),
        split
            .forward_with_state(&x, None, Some(&lengths), s1)
            .unwrap(),
    );
    assert_eq!(a.output, b.output);
    let ga = whole
        .backward_with_state(&a.trace, Some(&a.output), None)
        .unwrap();
    let gb = split
        .backward_with_state(&b.trace, Some(&b.output), None)
        .unwrap();
    assert_eq!(ga.input, gb.input);
    for (name, g) in ga.params.iter() {
        assert_close(g, gb.params.get(name).unwrap(), 1e-12);
    }
}

/// Networks pass their variational dropout to every layer and reject bad probabilities.
#[test]
fn network_configs_set_every_layer() {
    let config = LstmConfig::new(3, 4)
        .with_num_layers(2)
        .with_bidirectional(true)
        .with_variational_dropout(0.1, 0.2);
    assert_eq!(config.variational_dropout(), (0.1, 0.2));
    let lstm = config.init_seeded::<f64>(0).unwrap();
    let x = Tensor::randn(&[4, 2, 3], &mut StdRng::seed_from_u64(1));
    let train = lstm
        .forward_with_state(&x, None, None, Mode::Train { seed: 3 })
        .unwrap();
    let eval = lstm.forward_with_state(&x, None, None, Mode::Eval).unwrap();
    assert_ne!(train.output, eval.output);
    assert_eq!(lstm.param_names().len(), 16);
    for bad in [(1.0, 0.0), (0.0, 1.5), (f64::NAN, 0.0)] {
        let err = LstmConfig::new(3, 4)
            .with_variational_dropout(bad.0, bad.1)
            .init_seeded::<f64>(0)
            .unwrap_err();
        assert!(err.to_string().contains("variational"), "{err}");
    }
}

fn assert_close(a: &Tensor<f64>, b: &Tensor<f64>, tol: f64) {
    assert_eq!(a.shape(), b.shape());
    for (x, y) in a.as_slice().iter().zip(b.as_slice()) {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{x} vs {y}");
    }
}

/// A rank-2 or rank-3 tensor with `f(index)` at every index.
fn from_fn(dims: &[usize], f: impl Fn(&[usize]) -> f64) -> Tensor<f64> {
    let (rows, cols) = (
        dims[..dims.len() - 1].iter().product::<usize>(),
        dims[dims.len() - 1],
    );
    let mut values = Vec::with_capacity(rows * cols);
    for r in 0..rows {
        let lead = if dims.len() == 3 {
            vec![r / dims[1], r % dims[1]]
        } else {
            vec![r]
        };
        for c in 0..cols {
            let mut index = lead.clone();
            index.push(c);
            values.push(f(&index));
        }
    }
    Tensor::from_vec(values, dims).unwrap()
}

/// Sets one element of a `(T, B, F)` tensor.
fn set(t: &mut Tensor<f64>, [a, b, c]: &[usize; 3], value: f64) {
    let (batch, features) = (t.shape()[1], t.shape()[2]);
    t.as_mut_slice()[(a * batch + b) * features + c] = value;
}
