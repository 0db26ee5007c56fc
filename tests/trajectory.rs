//! Training-trajectory parity with PyTorch: composed models (embedding → recurrent network →
//! adapter → linear head → loss) trained for several optimiser steps, with clipping and Adam,
//! AdamW or SGD, in `f64`. Every recorded loss, every recorded gradient norm and every final
//! parameter must match PyTorch's to 1e-10, relative to `max(1, |value|)`.
//!
//! The cases committed in `tests/fixtures/trajectories/` (format and generator beside them) are
//! always run; so is every case in the directories listed in `RECURRENT_TRAJECTORY_DIRS`
//! (separated like `PATH`), one line per case. The models are built only through the public
//! API, as a user would write them: a named chain, one forward, one loss, one backward, one
//! clipping call and one optimiser step per training step.

mod common;

use std::path::{Path, PathBuf};

use common::{json_cases, json_tensor, worst_error};
use recurrent::{
    binary_cross_entropy_with_logits, clip_grad_norm, clip_grad_value, cross_entropy_with_logits,
    mse_loss, AdamConfig, CrossEntropyLoss, EmbeddingConfig, Error, GruConfig, LastHidden, Layer,
    LinearConfig, Loss, LstmConfig, MaxPool, MeanPool, Mode, Nonlinearity, Optimizer, RnnConfig,
    Sequence, SgdConfig, Tensor, TimeDistributed, TokenBatch,
};
use serde_json::Value;

/// Losses, gradient norms and parameters must match to this, relative to `max(1, |value|)`.
const TOLERANCE: f64 = 1e-10;

/// One case file of the `recurrent-trajectory/1` format.
struct Case {
    name: String,
    json: Value,
}

impl Case {
    fn model(&self, part: &str) -> &Value {
        &self.json["model"][part]
    }
}

fn usize_of(v: &Value) -> usize {
    v.as_u64().expect("a non-negative integer") as usize
}

fn f64_of(v: &Value) -> f64 {
    v.as_f64().expect("a number")
}

/// A `{"shape", "data"}` tensor; a 0-d shape becomes `[1]`.
fn tensor(v: &Value) -> Tensor<f64> {
    json_tensor(v).expect("a tensor")
}

/// The integers of a `{"shape", "data"}` tensor, row-major.
fn integers(v: &Value) -> Vec<usize> {
    v["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|x| f64_of(x) as usize)
        .collect()
}

/// Every trajectory case in `dir`, sorted by name.
fn load_cases(dir: &Path) -> Vec<Case> {
    json_cases(dir, "recurrent-trajectory/1", "steps")
        .into_iter()
        .map(|(name, json)| Case { name, json })
        .collect()
}

/// How far a run strayed from PyTorch's.
struct Outcome {
    worst: f64,
    worst_at: String,
}

impl Outcome {
    fn record(&mut self, error: f64, at: impl FnOnce() -> String) {
        if error > self.worst || error.is_nan() {
            self.worst = error;
            self.worst_at = at();
        }
    }
}

/// The relative error of a scalar.
fn scalar_error(actual: f64, expected: f64) -> f64 {
    (actual - expected).abs() / expected.abs().max(1.0)
}

/// The case's optimiser, as `torch.optim` builds it.
fn optimizer(case: &Case) -> Box<dyn Optimizer<f64>> {
    let o = case.model("optimizer");
    let lr = f64_of(&o["lr"]);
    let wd = f64_of(&o["weight_decay"]);
    let betas = |k: usize| f64_of(&o["betas"][k]);
    match o["kind"].as_str().expect("optimizer kind") {
        kind @ ("adam" | "adamw") => {
            let config = if kind == "adam" {
                AdamConfig::new(lr)
            } else {
                AdamConfig::adamw(lr)
            };
            Box::new(
                config
                    .with_betas(betas(0), betas(1))
                    .with_eps(f64_of(&o["eps"]))
                    .with_weight_decay(wd)
                    .init()
                    .expect("valid Adam settings"),
            )
        }
        "sgd" => Box::new(
            SgdConfig::new(lr)
                .with_momentum(f64_of(&o["momentum"]))
                .with_dampening(f64_of(&o["dampening"]))
                .with_nesterov(o["nesterov"].as_bool().expect("nesterov"))
                .with_weight_decay(wd)
                .init()
                .expect("valid SGD settings"),
        ),
        other => panic!("{}: unknown optimizer {other}", case.name),
    }
}

/// The loss of one step's output against its targets, as the case's `model.loss` defines it.
trait CaseLoss: Sized {
    fn loss(&self, case: &Case, targets: &Value) -> Result<Loss<f64>, Error>;
}

impl CaseLoss for Tensor<f64> {
    fn loss(&self, case: &Case, targets: &Value) -> Result<Loss<f64>, Error> {
        match case.model("loss")["kind"].as_str().expect("loss kind") {
            "cross_entropy" => cross_entropy_with_logits(self, &integers(targets)),
            // the head's one output, squeezed to (B) in PyTorch
            "bce_with_logits" => {
                binary_cross_entropy_with_logits(self, &tensor(targets).reshape(self.shape())?)
            }
            "mse" => mse_loss(self, &tensor(targets)),
            other => panic!("{}: unknown loss {other}", case.name),
        }
    }
}

impl CaseLoss for Sequence<f64> {
    fn loss(&self, case: &Case, targets: &Value) -> Result<Loss<f64>, Error> {
        // PyTorch's ignore_index may be negative (−100 by default), which a class id of this
        // crate cannot be: such targets become usize::MAX, ignored as the same class
        let ignore = case.model("loss")["ignore_index"].as_i64().unwrap_or(-100);
        let class = |v: &Value| match v.as_i64().expect("a class id") {
            c if c == ignore && c < 0 => usize::MAX,
            c => c as usize,
        };
        let classes: Vec<usize> = targets["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(class)
            .collect();
        let ignore = if ignore < 0 {
            usize::MAX
        } else {
            ignore as usize
        };
        CrossEntropyLoss::new()
            .with_ignore_index(ignore)
            .forward_sequence(self, &classes)
    }
}

/// Trains `model` through the case's steps and compares everything PyTorch recorded.
fn train<M>(case: &Case, mut model: M) -> Outcome
where
    M: Layer<f64, Input = TokenBatch, OutputGrad = Tensor<f64>>,
    M::Output: CaseLoss,
{
    let mut outcome = Outcome {
        worst: 0.0,
        worst_at: "nothing".into(),
    };
    let names: Vec<String> = case.json["param_names"]
        .as_array()
        .expect("param_names")
        .iter()
        .map(|n| n.as_str().expect("name").to_string())
        .collect();
    assert_eq!(
        model.param_names(),
        names,
        "{}: parameter names and order",
        case.name
    );
    let initial = &case.json["initial_params"];
    model.visit_params_mut(&mut |name, t| {
        *t = tensor(&initial[name])
            .reshape(t.shape())
            .expect("the parameter's shape")
    });

    let mut optimizer = optimizer(case);
    let clip = case.model("clip");
    for (k, step) in case.json["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .enumerate()
    {
        let t_n = usize_of(&step["tokens"]["shape"][0]);
        let b_n = usize_of(&step["tokens"]["shape"][1]);
        let lengths = step["lengths"]
            .as_array()
            .expect("lengths")
            .iter()
            .map(usize_of)
            .collect();
        let tokens = TokenBatch::new(integers(&step["tokens"]), t_n, b_n, Some(lengths))
            .expect("a valid batch");

        let (output, trace) = model
            .forward(&tokens, Mode::Train { seed: k as u64 })
            .expect("forward");
        let loss = output.loss(case, &step["targets"]).expect("loss");
        let mut grads = model.backward(&trace, &loss.grad).expect("backward").params;
        match clip["kind"].as_str() {
            Some("norm") => {
                let total = clip_grad_norm(&mut grads, f64_of(&clip["max_norm"])).expect("clip");
                let expected = f64_of(&case.json["grad_norms"][k]);
                outcome.record(scalar_error(total, expected), || {
                    format!("grad norm of step {k}: {total} vs {expected}")
                });
            }
            Some("value") => {
                clip_grad_value(&mut grads, f64_of(&clip["clip_value"])).expect("clip")
            }
            _ => {}
        }
        optimizer.step(&mut model, &grads).expect("optimiser step");

        let expected = f64_of(&case.json["losses"][k]);
        outcome.record(scalar_error(loss.value, expected), || {
            format!("loss of step {k}: {} vs {expected}", loss.value)
        });
    }
    let finals = &case.json["final_params"];
    model.visit_params(&mut |name, t| {
        let expected = tensor(&finals[name])
            .reshape(t.shape())
            .expect("the parameter's shape");
        outcome.record(worst_error(t, &expected), || format!("final {name}"));
    });
    outcome
}

/// Builds the case's model — `embedding → rnn → pool → head`, named as PyTorch's module
/// attributes — and trains it.
fn run_case(case: &Case) -> Outcome {
    let e = case.model("embedding");
    let embedding = EmbeddingConfig::new(
        usize_of(&e["num_embeddings"]),
        usize_of(&e["embedding_dim"]),
    )
    .with_padding_idx(e["padding_idx"].as_u64().map(|p| p as usize))
    .init_seeded::<f64>(0)
    .expect("embedding")
    .named("embedding");
    let h = case.model("head");
    let head = LinearConfig::new(usize_of(&h["in_features"]), usize_of(&h["out_features"]))
        .with_bias(h["bias"].as_bool().expect("head bias"))
        .init_seeded::<f64>(0)
        .expect("head")
        .named("head");
    let r = case.model("rnn");
    let (i, hidden) = (usize_of(&r["input_size"]), usize_of(&r["hidden_size"]));
    let (layers, bidirectional) = (
        usize_of(&r["num_layers"]),
        r["bidirectional"].as_bool().expect("bidirectional"),
    );
    let bias = r["bias"].as_bool().expect("bias");
    let pool = case.model("pool").as_str().expect("pool").to_string();

    macro_rules! with_pool {
        ($rnn:expr) => {{
            let front = embedding.then($rnn.named("rnn"));
            match pool.as_str() {
                "last" => train(case, front.then(LastHidden).then(head)),
                "mean" => train(case, front.then(MeanPool).then(head)),
                "max" => train(case, front.then(MaxPool).then(head)),
                "none" => train(case, front.then(TimeDistributed::new(head))),
                other => panic!("{}: unknown pool {other}", case.name),
            }
        }};
    }
    macro_rules! network {
        ($config:expr) => {
            $config
                .with_num_layers(layers)
                .with_bidirectional(bidirectional)
                .with_bias(bias)
                .init_seeded::<f64>(0)
                .expect("recurrent network")
        };
    }
    match r["cell"].as_str().expect("cell") {
        "lstm" => with_pool!(network!(
            LstmConfig::new(i, hidden).with_proj_size(usize_of(&r["proj_size"]))
        )),
        "gru" => with_pool!(network!(GruConfig::new(i, hidden))),
        "rnn_tanh" => with_pool!(network!(
            RnnConfig::new(i, hidden).with_nonlinearity(Nonlinearity::Tanh)
        )),
        "rnn_relu" => with_pool!(network!(
            RnnConfig::new(i, hidden).with_nonlinearity(Nonlinearity::Relu)
        )),
        other => panic!("{}: unknown cell {other}", case.name),
    }
}

/// Runs every case in `dir`, printing one line each; returns the failures.
fn run_dir(dir: &Path) -> Vec<String> {
    let cases = load_cases(dir);
    assert!(!cases.is_empty(), "no trajectory case in {}", dir.display());
    println!("{} ({} cases)", dir.display(), cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let Outcome { worst, worst_at } = run_case(case);
        let ok = worst <= TOLERANCE;
        println!(
            "  {} {:<40} worst {worst:.2e} ({worst_at})",
            if ok { "pass" } else { "FAIL" },
            case.name
        );
        if !ok {
            failures.push(format!("{}: {worst:.2e} at {worst_at}", case.name));
        }
    }
    failures
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/trajectories")
}

#[test]
fn pytorch_training_trajectories_are_reproduced() {
    let failures = run_dir(&fixtures_dir());
    assert!(
        failures.is_empty(),
        "trajectories that differ from PyTorch:\n{}",
        failures.join("\n")
    );
}

#[test]
fn user_trajectory_dirs_are_reproduced() {
    let Some(dirs) = std::env::var_os("RECURRENT_TRAJECTORY_DIRS") else {
        println!("RECURRENT_TRAJECTORY_DIRS is not set: no user cases to check");
        return;
    };
    let mut failures = Vec::new();
    for dir in std::env::split_paths(&dirs).filter(|d| !d.as_os_str().is_empty()) {
        failures.extend(run_dir(&dir));
    }
    assert!(
        failures.is_empty(),
        "trajectories that differ from PyTorch:\n{}",
        failures.join("\n")
    );
}

/// The harness itself: a case whose recorded final parameter is off by 1e-8 fails.
#[test]
fn a_corrupted_trajectory_is_reported() {
    let mut case = load_cases(&fixtures_dir())
        .into_iter()
        .next()
        .expect("a committed case");
    let name = case.json["param_names"][1]
        .as_str()
        .expect("name")
        .to_string();
    let first = &mut case.json["final_params"][&name]["data"][0];
    *first = Value::from(f64_of(first) + 1e-8);
    let outcome = run_case(&case);
    assert!(outcome.worst > TOLERANCE, "{}", outcome.worst);
    assert_eq!(outcome.worst_at, format!("final {name}"));
}
