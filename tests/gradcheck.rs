//! Analytic gradients against central finite differences (`f64`), for every cell's single step
//! and for `Recurrent` of every cell (the layer-normalised LSTM with random layer-norm gains and
//! shifts), over random shapes, lengths, seeds, with and without bias and initial state. The bound is 1e-6 on the error `|analytic − numeric| / max(1, |analytic|,
//! |numeric|)` of every parameter, input and initial-state element.
//!
//! The cases are drawn by proptest from a fixed seed, so a run is reproducible; set
//! `PROPTEST_CASES` to draw more. Not covered here: PyTorch's values (see `parity.rs`).

mod common;

use std::cell::Cell as StdCell;

use common::{layer_norm, random_lengths, runner};

use proptest::prelude::*;
use rand::{rngs::StdRng, SeedableRng};
use recurrent::{
    BackwardStep, Cell, Gradcheck, GradcheckReport, GruCellConfig, LayerNormLstmCell,
    LstmCellConfig, Mode, Nonlinearity, PeepholeLstmCellConfig, Recurrent, RnnCellConfig,
    SequenceLayer, State, Tensor,
};

const BOUND: f64 = 1e-6;

/// One random problem: sizes, options and the seed of everything random in it.
#[derive(Debug, Clone)]
struct Problem {
    seq_len: usize,
    batch: usize,
    input_size: usize,
    hidden_size: usize,
    bias: bool,
    initial_state: bool,
    variable_lengths: bool,
    seed: u64,
}

fn problems() -> impl Strategy<Value = Problem> {
    (
        1..=12usize,
        1..=5usize,
        1..=8usize,
        1..=8usize,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(
                seq_len,
                batch,
                input_size,
                hidden_size,
                bias,
                initial_state,
                variable_lengths,
                seed,
            )| {
                Problem {
                    seq_len,
                    batch,
                    input_size,
                    hidden_size,
                    bias,
                    initial_state,
                    variable_lengths,
                    seed,
                }
            },
        )
}

/// A random state for `cell` with parts `lead ++ [width]`, scaled like the PyTorch cases.
fn random_state<C: Cell<f64>>(cell: &C, lead: &[usize], rng: &mut StdRng) -> State<f64> {
    let parts = cell.state_parts().iter().map(|p| {
        let mut dims = lead.to_vec();
        dims.push(p.size);
        (p.name, Tensor::randn(&dims, rng).map(|v| 0.5 * v))
    });
    State::new(parts.collect())
}

/// Runs `check` on every drawn problem and asserts the bound. Only relu cells may have
/// elements on a kink (see `recurrent::gradcheck`), and then only a few.
fn run(label: &str, smooth: bool, check: impl Fn(&Problem) -> GradcheckReport) {
    let (worst, kinks, checked) = (StdCell::new(0.0f64), StdCell::new(0), StdCell::new(0));
    let result = runner(256).run(&problems(), |problem| {
        let report = check(&problem);
        worst.set(worst.get().max(report.worst_error));
        kinks.set(kinks.get() + report.kinks);
        checked.set(checked.get() + report.checked);
        prop_assert!(report.worst_error <= BOUND, "{label} {problem:?}: {report}");
        prop_assert!(report.checked > 0);
        prop_assert!(
            report.kinks == 0 || !smooth && report.kinks * 4 <= report.checked,
            "{label} {problem:?}: {report}"
        );
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    println!(
        "{label}: worst error {:.3e} over {} problems, {} elements ({} at relu kinks)",
        worst.get(),
        runner(256).config().cases,
        checked.get(),
        kinks.get()
    );
}

/// `Recurrent` of the cell that `make` builds.
fn check_recurrent<C: Cell<f64> + Clone>(
    label: &str,
    smooth: bool,
    make: impl Fn(&Problem, &mut StdRng) -> C,
) {
    run(label, smooth, |p| {
        let mut rng = StdRng::seed_from_u64(p.seed);
        let layer = Recurrent::new(make(p, &mut rng));
        let x = Tensor::randn(&[p.seq_len, p.batch, p.input_size], &mut rng);
        let init = p
            .initial_state
            .then(|| random_state(layer.cell(), &[1, p.batch], &mut rng));
        let lengths: Option<Vec<usize>> = p
            .variable_lengths
            .then(|| random_lengths(p.seq_len, p.batch, &mut rng));
        Gradcheck::new()
            .with_seed(p.seed)
            .check_layer(&layer, &x, init.as_ref(), lengths.as_deref())
            .expect("valid problem")
    });
}

/// One step of the cell that `make` builds.
fn check_cell<C: Cell<f64> + Clone>(
    label: &str,
    smooth: bool,
    make: impl Fn(&Problem, &mut StdRng) -> C,
) {
    run(label, smooth, |p| {
        let mut rng = StdRng::seed_from_u64(p.seed);
        let cell = make(p, &mut rng);
        let x = Tensor::randn(&[p.batch, p.input_size], &mut rng);
        let state = p
            .initial_state
            .then(|| random_state(&cell, &[p.batch], &mut rng));
        Gradcheck::new()
            .with_seed(p.seed)
            .check_cell(&cell, &x, state.as_ref())
            .expect("valid problem")
    });
}

fn lstm(p: &Problem, rng: &mut StdRng) -> recurrent::LstmCell<f64> {
    LstmCellConfig::new(p.input_size, p.hidden_size)
        .with_bias(p.bias)
        .init(rng)
        .unwrap()
}

fn peephole_lstm(p: &Problem, rng: &mut StdRng) -> recurrent::PeepholeLstmCell<f64> {
    PeepholeLstmCellConfig::new(p.input_size, p.hidden_size)
        .with_bias(p.bias)
        .init(rng)
        .unwrap()
}

fn gru(p: &Problem, rng: &mut StdRng) -> recurrent::GruCell<f64> {
    GruCellConfig::new(p.input_size, p.hidden_size)
        .with_bias(p.bias)
        .init(rng)
        .unwrap()
}

/// A layer-normalised LSTM with random layer-norm gains and shifts, at the `eps` of
/// [`layer_norm::GRADCHECK_EPS`] (whose doc says why). The cell has no bias, so `p.bias` does
/// not apply.
fn layer_norm_lstm(p: &Problem, rng: &mut StdRng) -> LayerNormLstmCell<f64> {
    let eps = layer_norm::GRADCHECK_EPS;
    layer_norm::random_layer_norm_lstm(p.input_size, p.hidden_size, eps, rng)
}

fn rnn(nonlinearity: Nonlinearity) -> impl Fn(&Problem, &mut StdRng) -> recurrent::RnnCell<f64> {
    move |p, rng| {
        RnnCellConfig::new(p.input_size, p.hidden_size)
            .with_bias(p.bias)
            .with_nonlinearity(nonlinearity)
            .init(rng)
            .unwrap()
    }
}

#[test]
fn lstm_sequence_gradients_match_finite_differences() {
    check_recurrent("Recurrent<LstmCell>", true, lstm);
}

#[test]
fn peephole_lstm_sequence_gradients_match_finite_differences() {
    check_recurrent("Recurrent<PeepholeLstmCell>", true, peephole_lstm);
}

#[test]
fn layer_norm_lstm_sequence_gradients_match_finite_differences() {
    check_recurrent("Recurrent<LayerNormLstmCell>", true, layer_norm_lstm);
}

#[test]
fn gru_sequence_gradients_match_finite_differences() {
    check_recurrent("Recurrent<GruCell>", true, gru);
}

#[test]
fn rnn_tanh_sequence_gradients_match_finite_differences() {
    check_recurrent("Recurrent<RnnCell tanh>", true, rnn(Nonlinearity::Tanh));
}

#[test]
fn rnn_relu_sequence_gradients_match_finite_differences() {
    check_recurrent("Recurrent<RnnCell relu>", false, rnn(Nonlinearity::Relu));
}

#[test]
fn lstm_step_gradients_match_finite_differences() {
    check_cell("LstmCell", true, lstm);
}

#[test]
fn peephole_lstm_step_gradients_match_finite_differences() {
    check_cell("PeepholeLstmCell", true, peephole_lstm);
}

#[test]
fn layer_norm_lstm_step_gradients_match_finite_differences() {
    check_cell("LayerNormLstmCell", true, layer_norm_lstm);
}

#[test]
fn gru_step_gradients_match_finite_differences() {
    check_cell("GruCell", true, gru);
}

#[test]
fn rnn_tanh_step_gradients_match_finite_differences() {
    check_cell("RnnCell tanh", true, rnn(Nonlinearity::Tanh));
}

#[test]
fn rnn_relu_step_gradients_match_finite_differences() {
    check_cell("RnnCell relu", false, rnn(Nonlinearity::Relu));
}

/// `Cell::step_backward` as a plain function of the inner cell.
type Backward<C> = fn(&C, BackwardStep<'_, f64>, &mut recurrent::CellParams<f64>);

/// A built-in cell whose backward step is replaced by a deliberately wrong one, to show that
/// the checker notices. Everything else is the inner cell's.
#[derive(Clone)]
struct Tampered<C> {
    inner: C,
    separate_hidden_grad: bool,
    backward: Backward<C>,
}

impl<C: Cell<f64>> Cell<f64> for Tampered<C> {
    fn input_size(&self) -> usize {
        self.inner.input_size()
    }
    fn hidden_size(&self) -> usize {
        self.inner.hidden_size()
    }
    fn gate_width(&self) -> usize {
        self.inner.gate_width()
    }
    fn state_parts(&self) -> &[recurrent::StatePart] {
        self.inner.state_parts()
    }
    fn saved_width(&self) -> usize {
        self.inner.saved_width()
    }
    fn separate_hidden_grad(&self) -> bool {
        self.separate_hidden_grad
    }
    fn params(&self) -> &recurrent::CellParams<f64> {
        self.inner.params()
    }
    fn params_mut(&mut self) -> &mut recurrent::CellParams<f64> {
        self.inner.params_mut()
    }
    fn step(&self, batch: usize, p: &[f64], prev: &[f64], next: &mut [f64], saved: &mut [f64]) {
        self.inner.step(batch, p, prev, next, saved)
    }
    fn step_backward(&self, step: BackwardStep<'_, f64>, grads: &mut recurrent::CellParams<f64>) {
        (self.backward)(&self.inner, step, grads)
    }
}

/// The checker itself must notice a wrong gradient: a GRU that claims `d_hp = d_p` (wrong for
/// its reset-gated n block) fails, at a recurrent parameter.
#[test]
fn a_wrong_backward_is_caught() {
    let mut rng = StdRng::seed_from_u64(9);
    let layer = Recurrent::new(Tampered {
        inner: GruCellConfig::new(3, 4).init(&mut rng).unwrap(),
        separate_hidden_grad: false,
        backward: |gru: &recurrent::GruCell<f64>, step, grads| {
            // the GRU writes its true d_hp into a scratch buffer the driver never sees
            let mut d_hp = vec![0.0; step.d_p.len()];
            gru.step_backward(
                BackwardStep {
                    d_hp: &mut d_hp,
                    ..step
                },
                grads,
            )
        },
    });
    let x = Tensor::randn(&[5, 2, 3], &mut rng);
    let report = Gradcheck::new()
        .check_layer(&layer, &x, None, None)
        .unwrap();
    assert!(report.worst_error > 1e-3, "{report}");
    assert!(
        report.worst_at.starts_with("weight_hh_l0") || report.worst_at.starts_with("bias_hh_l0"),
        "{report}"
    );
}

/// A relu whose derivative is taken as 1 at 0 (`y >= 0`, so everywhere) cannot pass as a
/// kink: where the unit is off, both one-sided differences are 0 and the analytic gradient is
/// not.
#[test]
fn a_wrong_relu_derivative_is_not_taken_for_a_kink() {
    let mut rng = StdRng::seed_from_u64(4);
    let cell = RnnCellConfig::new(3, 6)
        .with_nonlinearity(Nonlinearity::Relu)
        .init(&mut rng)
        .unwrap();
    let layer = Recurrent::new(Tampered {
        inner: cell,
        separate_hidden_grad: false,
        backward: |rnn: &recurrent::RnnCell<f64>, step, _| {
            // wrong: d relu(y)/dy taken as 1 wherever y >= 0, which is everywhere
            step.d_p.copy_from_slice(step.d_next);
            let h = rnn.hidden_size();
            recurrent::gemm(
                1.0,
                recurrent::MatRef::new(step.d_p, step.batch, h),
                rnn.params().weight_hh().as_mat(),
                0.0,
                recurrent::MatMut::new(step.d_prev, step.batch, h),
            );
        },
    });
    let x = Tensor::randn(&[6, 3, 3], &mut rng);
    let out = layer
        .forward_with_state(&x, None, None, Mode::Eval)
        .unwrap();
    assert!(
        out.output.as_slice().contains(&0.0),
        "some units must be off for this test"
    );
    let report = Gradcheck::new()
        .check_layer(&layer, &x, None, None)
        .unwrap();
    assert!(report.worst_error > 1e-2, "{report}");
    assert_eq!(report.kinks, 0, "{report}");
}
