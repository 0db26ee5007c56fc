//! PyTorch parity: every reference case in `tests/fixtures/pytorch/` (made by
//! `tests/fixtures/pytorch/make_reference.py`, format in its README) and in each directory of the
//! colon-separated environment variable `RECURRENT_REFERENCE_DIRS`.
//!
//! In `f64` the outputs, final states and every gradient must match to 1e-10 relative to
//! `max(1, |expected|)` (the cases' README asks for 1e-10; PyTorch and this crate agree to
//! about 1e-15); the forward pass in `f32` to 1e-4. One line is printed per case
//! (`cargo test --release --test parity -- --nocapture` shows them).
//!
//! Sequence cases are run through the PyTorch-style builders ([`Lstm`], [`Gru`], [`Rnn`]) made
//! from the case's config, with the case's parameters loaded by their `state_dict` names: this
//! covers several layers, both directions, variable lengths and LSTM projections.

mod common;

use common::{
    fixtures_dir, load_cases, nonlinearity, with_network, worst_error, Case, WithNetwork,
};
use recurrent::{
    Cell, CellParams, Float, GruCell, LstmCell, Mode, Parameters, RnnCell, SequenceLayer, State,
    Tensor,
};

const F64_TOLERANCE: f64 = 1e-10;
const F32_TOLERANCE: f64 = 1e-4;

/// What happened to one case: the worst `f64` error over everything compared, where it was,
/// and the worst `f32` forward error.
struct Outcome {
    f64_error: f64,
    f32_error: f64,
    worst_at: String,
}

/// Tracks the worst error and where it was.
struct Worst {
    error: f64,
    at: String,
}

impl Worst {
    fn new() -> Self {
        Worst {
            error: 0.0,
            at: String::from("-"),
        }
    }

    fn check<T: Float>(&mut self, what: &str, actual: &Tensor<T>, expected: Option<Tensor<f64>>) {
        let expected = expected.unwrap_or_else(|| panic!("the case has no {what}"));
        let e = worst_error(actual, &expected);
        if e > self.error || e.is_nan() {
            self.error = e;
            self.at = what.to_string();
        }
    }
}

fn cast_params(p: &CellParams<f64>) -> CellParams<f32> {
    CellParams::new(
        p.weight_ih().cast(),
        p.weight_hh().cast(),
        p.bias_ih().map(Tensor::cast),
        p.bias_hh().map(Tensor::cast),
    )
}

/// The case's initial state (`h0`, and `c0` for an LSTM), as `T`.
fn initial_state<T: Float>(case: &Case) -> State<T> {
    let h = case.tensor("inputs", "h0").expect("h0").cast();
    match case.tensor("inputs", "c0") {
        Some(c) => State::from_hc(h, c.cast()),
        None => State::from_h(h),
    }
}

fn final_state_weights(case: &Case) -> State<f64> {
    let h = case.tensor("loss_weights", "g_h").expect("g_h");
    match case.tensor("loss_weights", "g_c") {
        Some(c) => State::from_hc(h, c),
        None => State::from_h(h),
    }
}

fn check_states<T: Float>(
    worst: &mut Worst,
    case: &Case,
    state: &State<T>,
    section: &str,
    names: [&str; 2],
) {
    worst.check(
        &format!("{section}.{}", names[0]),
        state.h(),
        case.tensor(section, names[0]),
    );
    if let Some(c) = state.c() {
        worst.check(
            &format!("{section}.{}", names[1]),
            c,
            case.tensor(section, names[1]),
        );
    }
}

fn check_param_grads(
    worst: &mut Worst,
    case: &Case,
    grads: impl IntoIterator<Item = (String, Tensor<f64>)>,
) {
    let mut seen = 0;
    for (name, g) in grads {
        worst.check(
            &format!("param_grads.{name}"),
            &g,
            case.tensor("param_grads", &name),
        );
        seen += 1;
    }
    let expected = case.json["param_grads"].as_object().map_or(0, |o| o.len());
    assert_eq!(
        seen, expected,
        "{}: {seen} parameter gradients, the case has {expected}",
        case.name
    );
}

/// One step of a cell, as `nn.LSTMCell` / `nn.GRUCell` / `nn.RNNCell`.
fn check_cell_case<C64: Cell<f64>, C32: Cell<f32>>(case: &Case, cell: C64, cell32: C32) -> Outcome {
    let mut worst = Worst::new();
    let x = case.tensor("inputs", "x").expect("x");
    let (next, trace) = cell
        .forward(&x, Some(&initial_state(case)))
        .expect("forward");
    check_states(&mut worst, case, &next, "outputs", ["h_n", "c_n"]);
    let grads = cell
        .backward(&trace, &final_state_weights(case))
        .expect("backward");
    worst.check(
        "input_grads.x",
        &grads.input,
        case.tensor("input_grads", "x"),
    );
    check_states(&mut worst, case, &grads.state, "input_grads", ["h0", "c0"]);
    let mut named = Vec::new();
    grads
        .params
        .visit(|name, t| named.push((name.to_string(), t.clone())));
    check_param_grads(&mut worst, case, named);

    let (next32, _) = cell32
        .forward(&x.cast(), Some(&initial_state(case)))
        .expect("f32 forward");
    let mut worst32 = Worst::new();
    check_states(&mut worst32, case, &next32, "outputs", ["h_n", "c_n"]);
    Outcome {
        f64_error: worst.error,
        f32_error: worst32.error,
        worst_at: worst.at,
    }
}

/// Sets every parameter of `model` to the case's tensor of the same name, and checks that the
/// model has exactly the case's parameters.
fn load_params<T: Float>(case: &Case, model: &mut impl Parameters<T>) {
    let mut loaded = 0;
    model.visit_params_mut(&mut |name, t| {
        let value = case
            .tensor("params", name)
            .unwrap_or_else(|| panic!("{}: the case has no parameter {name}", case.name));
        assert_eq!(t.shape(), value.shape(), "{}: shape of {name}", case.name);
        *t = value.cast();
        loaded += 1;
    });
    let expected = case.json["params"].as_object().map_or(0, |o| o.len());
    assert_eq!(loaded, expected, "{}: parameter count", case.name);
}

/// A sequence case, as `nn.LSTM` / `nn.GRU` / `nn.RNN` with the case's configuration.
fn check_sequence_case<N64, N32>(case: &Case, mut layer: N64, mut layer32: N32) -> Outcome
where
    N64: SequenceLayer<f64>,
    N32: SequenceLayer<f32>,
{
    let mut worst = Worst::new();
    load_params(case, &mut layer);
    load_params(case, &mut layer32);
    let x = case.tensor("inputs", "x").expect("x");
    let lengths = case.lengths();
    let out = layer
        .forward_with_state(
            &x,
            Some(&initial_state(case)),
            lengths.as_deref(),
            Mode::Eval,
        )
        .expect("forward");
    worst.check(
        "outputs.output",
        &out.output,
        case.tensor("outputs", "output"),
    );
    check_states(&mut worst, case, &out.state, "outputs", ["h_n", "c_n"]);
    let g_out = case.tensor("loss_weights", "g_out").expect("g_out");
    let grads = layer
        .backward_with_state(&out.trace, Some(&g_out), Some(&final_state_weights(case)))
        .expect("backward");
    worst.check(
        "input_grads.x",
        &grads.input,
        case.tensor("input_grads", "x"),
    );
    check_states(
        &mut worst,
        case,
        &grads.initial_state,
        "input_grads",
        ["h0", "c0"],
    );
    check_param_grads(
        &mut worst,
        case,
        grads.params.iter().map(|(n, t)| (n.to_string(), t.clone())),
    );

    let out32 = layer32
        .forward_with_state(
            &x.cast(),
            Some(&initial_state(case)),
            lengths.as_deref(),
            Mode::Eval,
        )
        .expect("f32 forward");
    let mut worst32 = Worst::new();
    worst32.check(
        "outputs.output",
        &out32.output,
        case.tensor("outputs", "output"),
    );
    check_states(&mut worst32, case, &out32.state, "outputs", ["h_n", "c_n"]);
    Outcome {
        f64_error: worst.error,
        f32_error: worst32.error,
        worst_at: worst.at,
    }
}

/// Runs a sequence case through the network its configuration describes.
struct CheckSequence;

impl WithNetwork for CheckSequence {
    type Output = Outcome;

    fn run<N64: SequenceLayer<f64>, N32: SequenceLayer<f32>>(
        self,
        case: &Case,
        net64: N64,
        net32: N32,
    ) -> Outcome {
        check_sequence_case(case, net64, net32)
    }
}

fn run_cell_case(case: &Case) -> Outcome {
    let (i, h) = (case.usize("input_size"), case.usize("hidden_size"));
    let params = case.cell_params("");
    let params32 = cast_params(&params);
    let valid = "the case's parameters have the cell's shapes";
    match case.cell() {
        "lstm" => {
            let (a, b) = (
                LstmCell::from_params(i, h, params),
                LstmCell::from_params(i, h, params32),
            );
            check_cell_case(case, a.expect(valid), b.expect(valid))
        }
        "gru" => {
            let (a, b) = (
                GruCell::from_params(i, h, params),
                GruCell::from_params(i, h, params32),
            );
            check_cell_case(case, a.expect(valid), b.expect(valid))
        }
        cell @ ("rnn_tanh" | "rnn_relu") => {
            let nl = nonlinearity(cell);
            let a = RnnCell::from_params(i, h, nl, params).expect(valid);
            let b = RnnCell::from_params(i, h, nl, params32).expect(valid);
            check_cell_case(case, a, b)
        }
        other => panic!("{}: unknown cell {other:?}", case.name),
    }
}

fn run_case(case: &Case) -> Outcome {
    match case.kind() {
        "cell" => run_cell_case(case),
        "sequence" => with_network(case, CheckSequence),
        other => panic!("{}: unknown kind {other:?}", case.name),
    }
}

/// Runs every case in `dir`, prints one line each, and returns the number passed and the
/// failures.
fn run_dir(dir: &std::path::Path) -> (usize, Vec<String>) {
    let cases = load_cases(dir);
    assert!(!cases.is_empty(), "no reference case in {}", dir.display());
    println!("{} ({} cases)", dir.display(), cases.len());
    let (mut passed, mut failures) = (0, Vec::new());
    for case in &cases {
        let Outcome {
            f64_error,
            f32_error,
            worst_at,
        } = run_case(case);
        let ok = f64_error <= F64_TOLERANCE && f32_error <= F32_TOLERANCE;
        println!(
            "  {} {:<28} f64 worst {f64_error:.2e} ({worst_at}), f32 forward worst {f32_error:.2e}",
            if ok { "pass" } else { "FAIL" },
            case.name
        );
        if ok {
            passed += 1;
        } else {
            failures.push(format!(
                "{}: f64 {f64_error:.2e} at {worst_at}, f32 {f32_error:.2e}",
                case.name
            ));
        }
    }
    (passed, failures)
}

#[test]
fn pytorch_reference_cases_match() {
    let (passed, failures) = run_dir(&fixtures_dir());
    println!("{passed} passed, {} failed", failures.len());
    assert!(
        failures.is_empty(),
        "cases that do not match PyTorch:\n{}",
        failures.join("\n")
    );
    assert_eq!(passed, load_cases(&fixtures_dir()).len());
}

#[test]
fn user_reference_dirs_match() {
    let Some(dirs) = std::env::var_os("RECURRENT_REFERENCE_DIRS") else {
        println!("RECURRENT_REFERENCE_DIRS is not set: no user cases to check");
        return;
    };
    let mut failures = Vec::new();
    for dir in std::env::split_paths(&dirs).filter(|d| !d.as_os_str().is_empty()) {
        let (_, f) = run_dir(&dir);
        failures.extend(f);
    }
    assert!(
        failures.is_empty(),
        "cases that do not match PyTorch:\n{}",
        failures.join("\n")
    );
}

/// The harness itself: a case whose stored gradient is off by 1e-6 fails, with its name.
#[test]
fn a_corrupted_case_is_reported() {
    let dir = std::env::temp_dir().join(format!("recurrent-parity-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    let text = std::fs::read_to_string(fixtures_dir().join("gru_l1_T5_B2.json")).expect("fixture");
    let mut json: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let value = &mut json["param_grads"]["weight_hh_l0"]["data"][3];
    *value = (value.as_f64().expect("number") + 1e-6).into();
    json["name"] = "gru_corrupted".into();
    std::fs::write(dir.join("gru_corrupted.json"), json.to_string()).expect("write case");
    let (passed, failures) = run_dir(&dir);
    std::fs::remove_dir_all(&dir).expect("clean up");
    assert_eq!(passed, 0);
    assert_eq!(failures.len(), 1);
    assert!(
        failures[0].starts_with("gru_corrupted: f64 1.00e-6 at param_grads.weight_hh_l0"),
        "{}",
        failures[0]
    );
}
