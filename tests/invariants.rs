//! Invariants of `Recurrent` that hold exactly, checked over random shapes and seeds:
//! a sample's results do not depend on the rest of its batch; what lies past a sequence's
//! length changes nothing; batch-first is the transposed time-major computation; streaming one
//! step at a time equals the whole-sequence forward; lengths all equal to `T` equal no lengths.
//! Also: every public layer type is `Send + Sync`. Not covered: PyTorch's values (`parity.rs`)
//! and gradient correctness (`gradcheck.rs`).

use proptest::prelude::*;
use rand::{rngs::StdRng, Rng, SeedableRng};
use recurrent::{
    Cell, GruCell, GruConfig, LstmCell, LstmConfig, Recurrent, RnnCell, RnnConfig, SequenceLayer,
    State, Tensor,
};

#[derive(Debug, Clone)]
struct Problem {
    seq_len: usize,
    batch: usize,
    input_size: usize,
    hidden_size: usize,
    seed: u64,
}

fn problems() -> impl Strategy<Value = Problem> {
    (
        1..=10usize,
        1..=5usize,
        1..=6usize,
        1..=6usize,
        any::<u64>(),
    )
        .prop_map(|(seq_len, batch, input_size, hidden_size, seed)| Problem {
            seq_len,
            batch,
            input_size,
            hidden_size,
            seed,
        })
}

fn random_state<C: Cell<f64>>(cell: &C, batch: usize, rng: &mut StdRng) -> State<f64> {
    let parts = cell.state_parts().into_iter();
    State::new(
        parts
            .map(|p| (p.name, Tensor::randn(&[1, batch, p.size], rng)))
            .collect(),
    )
}

/// Rows `b` of the batch dimension (axis `axis`) of a rank-3 tensor.
fn select(t: &Tensor<f64>, axis: usize, b: usize) -> Vec<f64> {
    let [d0, d1, f] = [t.shape()[0], t.shape()[1], t.shape()[2]];
    let mut out = Vec::new();
    for i in 0..d0 {
        for j in 0..d1 {
            if (axis == 0 && i == b) || (axis == 1 && j == b) {
                out.extend_from_slice(&t.as_slice()[(i * d1 + j) * f..][..f]);
            }
        }
    }
    out
}

fn close(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= 1e-12 * (1.0 + y.abs()))
}

/// One layer of each cell.
type Layers = (
    Recurrent<LstmCell<f64>>,
    Recurrent<GruCell<f64>>,
    Recurrent<RnnCell<f64>>,
);

fn layers(p: &Problem, rng: &mut StdRng) -> Layers {
    (
        Recurrent::new(LstmConfig::new(p.input_size, p.hidden_size).init(rng)),
        Recurrent::new(GruConfig::new(p.input_size, p.hidden_size).init(rng)),
        Recurrent::new(RnnConfig::new(p.input_size, p.hidden_size).init(rng)),
    )
}

/// Each sample run alone gives its slice of the batched output, final state and gradients.
fn batch_independence<C: Cell<f64>>(
    layer: &Recurrent<C>,
    p: &Problem,
    rng: &mut StdRng,
) -> Result<(), TestCaseError> {
    let x = Tensor::randn(&[p.seq_len, p.batch, p.input_size], rng);
    let lengths: Vec<usize> = (0..p.batch)
        .map(|_| rng.random_range(1..=p.seq_len))
        .collect();
    let init = random_state(layer.cell(), p.batch, rng);
    let g = Tensor::randn(&[p.seq_len, p.batch, p.hidden_size], rng);
    let all = layer.forward(&x, Some(&init), Some(&lengths)).unwrap();
    let all_grads = layer.backward(&all.trace, Some(&g), None).unwrap();
    for b in 0..p.batch {
        let pick = |t: &Tensor<f64>| {
            Tensor::from_vec(select(t, 1, b), &[t.shape()[0], 1, t.shape()[2]]).unwrap()
        };
        let init_b = State::new(init.parts().map(|(n, t)| (n, pick(t))).collect());
        let one = layer
            .forward(&pick(&x), Some(&init_b), Some(&lengths[b..=b]))
            .unwrap();
        prop_assert!(close(one.output.as_slice(), &select(&all.output, 1, b)));
        for ((_, s1), (_, s)) in one.state.parts().zip(all.state.parts()) {
            prop_assert!(close(s1.as_slice(), &select(s, 1, b)));
        }
        let grads = layer.backward(&one.trace, Some(&pick(&g)), None).unwrap();
        prop_assert!(close(
            grads.input.as_slice(),
            &select(&all_grads.input, 1, b)
        ));
    }
    Ok(())
}

/// Values and gradients past each sequence's length, and extra padded steps, change nothing.
fn padding_invariance<C: Cell<f64>>(
    layer: &Recurrent<C>,
    p: &Problem,
    rng: &mut StdRng,
) -> Result<(), TestCaseError> {
    let (t, extra) = (p.seq_len, 3);
    let lengths: Vec<usize> = (0..p.batch).map(|_| rng.random_range(1..=t)).collect();
    let x = Tensor::randn(&[t, p.batch, p.input_size], rng);
    let g = Tensor::randn(&[t + extra, p.batch, p.hidden_size], rng);
    // the same valid values, different padding, and `extra` more padded steps (NaN included)
    let mut longer = Tensor::randn(&[t + extra, p.batch, p.input_size], rng);
    for step in 0..t + extra {
        for (b, &len) in lengths.iter().enumerate() {
            let row =
                &mut longer.as_mut_slice()[(step * p.batch + b) * p.input_size..][..p.input_size];
            if step < len {
                row.copy_from_slice(
                    &x.as_slice()[(step * p.batch + b) * p.input_size..][..p.input_size],
                );
            } else if step % 2 == 0 {
                row.fill(f64::NAN);
            }
        }
    }
    let short = layer.forward(&x, None, Some(&lengths)).unwrap();
    let long = layer.forward(&longer, None, Some(&lengths)).unwrap();
    prop_assert!(long.output.as_slice().iter().all(|v| v.is_finite()));
    prop_assert!(close(
        &long.output.as_slice()[..short.output.len()],
        short.output.as_slice()
    ));
    prop_assert!(long.output.as_slice()[short.output.len()..]
        .iter()
        .all(|&v| v == 0.0));
    prop_assert!(close(long.state.h().as_slice(), short.state.h().as_slice()));
    let g_short = Tensor::from_vec(
        g.as_slice()[..short.output.len()].to_vec(),
        short.output.shape(),
    )
    .unwrap();
    let d_short = layer.backward(&short.trace, Some(&g_short), None).unwrap();
    let d_long = layer.backward(&long.trace, Some(&g), None).unwrap();
    prop_assert!(close(
        &d_long.input.as_slice()[..d_short.input.len()],
        d_short.input.as_slice()
    ));
    for ((name, a), (_, b)) in d_long.params.iter().zip(d_short.params.iter()) {
        prop_assert!(close(a.as_slice(), b.as_slice()), "{name}");
    }
    // the input gradient is exactly zero at every padded position
    for step in 0..t + extra {
        for (b, &len) in lengths.iter().enumerate() {
            let row =
                &d_long.input.as_slice()[(step * p.batch + b) * p.input_size..][..p.input_size];
            prop_assert!(step < len || row.iter().all(|&v| v == 0.0));
        }
    }
    Ok(())
}

/// Batch-first is the time-major computation with the two leading axes swapped.
fn batch_first_matches<C: Cell<f64> + Clone>(
    layer: &Recurrent<C>,
    p: &Problem,
    rng: &mut StdRng,
) -> Result<(), TestCaseError> {
    let x = Tensor::randn(&[p.seq_len, p.batch, p.input_size], rng);
    let swap = |t: &Tensor<f64>| {
        let [d0, d1, f] = [t.shape()[0], t.shape()[1], t.shape()[2]];
        let data = (0..d1)
            .flat_map(|j| (0..d0).flat_map(move |i| (0..f).map(move |k| (i * d1 + j) * f + k)));
        Tensor::from_vec(data.map(|i| t.as_slice()[i]).collect(), &[d1, d0, f]).unwrap()
    };
    let lengths: Vec<usize> = (0..p.batch)
        .map(|_| rng.random_range(1..=p.seq_len))
        .collect();
    let tm = layer.forward(&x, None, Some(&lengths)).unwrap();
    let bf_layer = layer.clone().with_batch_first(true);
    let bf = bf_layer.forward(&swap(&x), None, Some(&lengths)).unwrap();
    prop_assert_eq!(&swap(&bf.output), &tm.output);
    let g = Tensor::randn(tm.output.shape(), rng);
    let d_tm = layer.backward(&tm.trace, Some(&g), None).unwrap();
    let d_bf = bf_layer.backward(&bf.trace, Some(&swap(&g)), None).unwrap();
    prop_assert_eq!(&swap(&d_bf.input), &d_tm.input);
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
    let init = random_state(layer.cell(), p.batch, rng);
    let whole = layer.forward(&x, Some(&init), None).unwrap();
    let full = layer
        .forward(&x, Some(&init), Some(&vec![p.seq_len; p.batch]))
        .unwrap();
    prop_assert_eq!(whole.output.as_slice(), full.output.as_slice());
    let mut stream = layer.stream(p.batch, Some(&init)).unwrap();
    let step_len = p.batch * p.input_size;
    let out_len = p.batch * p.hidden_size;
    for t in 0..p.seq_len {
        let x_t = Tensor::from_vec(
            x.as_slice()[t * step_len..][..step_len].to_vec(),
            &[p.batch, p.input_size],
        )
        .unwrap();
        let h = stream.step(&x_t).unwrap();
        prop_assert_eq!(
            h.as_slice(),
            &whole.output.as_slice()[t * out_len..][..out_len]
        );
    }
    prop_assert_eq!(stream.state(), whole.state);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn a_sample_does_not_depend_on_its_batch(p in problems()) {
        let mut rng = StdRng::seed_from_u64(p.seed);
        let (lstm, gru, rnn) = layers(&p, &mut rng);
        batch_independence(&lstm, &p, &mut rng)?;
        batch_independence(&gru, &p, &mut rng)?;
        batch_independence(&rnn, &p, &mut rng)?;
    }

    #[test]
    fn padding_changes_nothing(p in problems()) {
        let mut rng = StdRng::seed_from_u64(p.seed);
        let (lstm, gru, rnn) = layers(&p, &mut rng);
        padding_invariance(&lstm, &p, &mut rng)?;
        padding_invariance(&gru, &p, &mut rng)?;
        padding_invariance(&rnn, &p, &mut rng)?;
    }

    #[test]
    fn batch_first_is_the_transposed_computation(p in problems()) {
        let mut rng = StdRng::seed_from_u64(p.seed);
        let (lstm, gru, rnn) = layers(&p, &mut rng);
        batch_first_matches(&lstm, &p, &mut rng)?;
        batch_first_matches(&gru, &p, &mut rng)?;
        batch_first_matches(&rnn, &p, &mut rng)?;
    }

    #[test]
    fn streaming_equals_the_whole_sequence(p in problems()) {
        let mut rng = StdRng::seed_from_u64(p.seed);
        let (lstm, gru, rnn) = layers(&p, &mut rng);
        stream_matches(&lstm, &p, &mut rng)?;
        stream_matches(&gru, &p, &mut rng)?;
        stream_matches(&rnn, &p, &mut rng)?;
    }
}

#[test]
fn layers_and_cells_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Recurrent<LstmCell<f32>>>();
    send_sync::<Recurrent<GruCell<f64>>>();
    send_sync::<Recurrent<RnnCell<f32>>>();
    send_sync::<recurrent::RecurrentTrace<f32>>();
    send_sync::<Tensor<f32>>();
    send_sync::<State<f64>>();
    fn sequence_layer<L: SequenceLayer<f32>>() {}
    sequence_layer::<Recurrent<LstmCell<f32>>>();
}
