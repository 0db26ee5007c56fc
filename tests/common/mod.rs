//! Helpers shared by the integration tests: reading PyTorch reference cases.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use proptest::prelude::{any, Strategy};
use proptest::test_runner::{Config, FileFailurePersistence, RngAlgorithm, TestRng, TestRunner};
use rand::{rngs::StdRng, Rng, SeedableRng};
use recurrent::{
    CellParams, Float, GruConfig, LstmConfig, Nonlinearity, Parameters, RnnConfig, SequenceLayer,
    Tensor,
};
use serde_json::Value;

pub mod layer_norm;

/// A proptest runner with a fixed seed, so that a run is reproducible: `cases` problems, or
/// `PROPTEST_CASES` when set. A failing case is saved beside the calling test file
/// (`tests/gradcheck.proptest-regressions` for `tests/gradcheck.rs`; commit those files) and
/// replayed first by later runs.
#[track_caller]
pub fn runner(cases: u32) -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(cases);
    let config = Config {
        cases,
        source_file: Some(std::panic::Location::caller().file()),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha))
}

/// Sizes and the seed of one random problem of a property test.
#[derive(Debug, Clone)]
pub struct Problem {
    pub seq_len: usize,
    pub batch: usize,
    pub input_size: usize,
    pub hidden_size: usize,
    pub seed: u64,
}

/// Problems of `1..=max_seq_len` steps, `1..=max_batch` samples, 1 to 6 input features and
/// hidden units, and any seed.
pub fn problems(max_seq_len: usize, max_batch: usize) -> impl Strategy<Value = Problem> {
    (
        1..=max_seq_len,
        1..=max_batch,
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

/// `batch` random sequence lengths in `1..=seq_len`.
pub fn random_lengths(seq_len: usize, batch: usize, rng: &mut StdRng) -> Vec<usize> {
    (0..batch).map(|_| rng.random_range(1..=seq_len)).collect()
}

/// The reference cases committed with the crate.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pytorch")
}

/// One case file of the `recurrent-reference/1` format.
pub struct Case {
    pub name: String,
    pub json: Value,
}

impl Case {
    pub fn config(&self) -> &Value {
        &self.json["config"]
    }

    pub fn kind(&self) -> &str {
        self.json["kind"].as_str().expect("kind is a string")
    }

    pub fn cell(&self) -> &str {
        self.config()["cell"]
            .as_str()
            .expect("config.cell is a string")
    }

    pub fn usize(&self, key: &str) -> usize {
        self.config()[key].as_u64().unwrap_or(0) as usize
    }

    pub fn flag(&self, key: &str) -> bool {
        self.config()[key].as_bool().unwrap_or(false)
    }

    pub fn lengths(&self) -> Option<Vec<usize>> {
        self.config()["lengths"].as_array().map(|a| {
            a.iter()
                .map(|v| v.as_u64().expect("length") as usize)
                .collect()
        })
    }

    /// `section.name` as a tensor, if present.
    pub fn tensor(&self, section: &str, name: &str) -> Option<Tensor<f64>> {
        json_tensor(self.json.get(section)?.get(name)?)
    }

    /// The parameters of layer `k`'s cell, under the case's names with `suffix` (`""` for
    /// cell cases, `"_l0"` for a one-layer sequence).
    pub fn cell_params(&self, suffix: &str) -> CellParams<f64> {
        let get = |base: &str| self.tensor("params", &format!("{base}{suffix}"));
        CellParams::new(
            get("weight_ih").expect("weight_ih"),
            get("weight_hh").expect("weight_hh"),
            get("bias_ih"),
            get("bias_hh"),
        )
    }
}

/// Every case of the format in `dir` (files `*.json` whose `format` is `recurrent-reference/1`),
/// sorted by name.
pub fn load_cases(dir: &Path) -> Vec<Case> {
    json_cases(dir, "recurrent-reference/1", "kind")
        .into_iter()
        .map(|(name, json)| Case { name, json })
        .collect()
}

/// The JSON files in `dir` whose `format` is `format` and which have the key `key` (so not
/// their directory's index), as `(name, contents)` sorted by name.
pub fn json_cases(dir: &Path, format: &str, key: &str) -> Vec<(String, Value)> {
    let mut cases = Vec::new();
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable case file");
        let json: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()));
        if json["format"] != format || json.get(key).is_none() {
            continue; // an index or another layout
        }
        let name = json["name"].as_str().expect("name").to_string();
        cases.push((name, json));
    }
    cases.sort_by(|a, b| a.0.cmp(&b.0));
    cases
}

/// A `{"shape", "data"}` tensor of a case file, if it is one; a 0-d shape becomes `[1]`.
pub fn json_tensor(v: &Value) -> Option<Tensor<f64>> {
    let mut shape: Vec<usize> = v["shape"]
        .as_array()?
        .iter()
        .map(|d| d.as_u64().expect("dim") as usize)
        .collect();
    if shape.is_empty() {
        shape.push(1);
    }
    let data: Vec<f64> = v["data"]
        .as_array()?
        .iter()
        .map(|d| d.as_f64().expect("number"))
        .collect();
    Some(Tensor::from_vec(data, &shape).expect("the case's tensor matches its shape"))
}

/// The largest `|actual − expected| / max(1, |expected|)`; NaN if any value is NaN.
pub fn worst_error<T: recurrent::Float>(actual: &Tensor<T>, expected: &Tensor<f64>) -> f64 {
    assert_eq!(actual.shape(), expected.shape(), "shapes differ");
    actual
        .as_slice()
        .iter()
        .zip(expected.as_slice())
        .map(|(&a, &e)| (a.as_f64() - e).abs() / e.abs().max(1.0))
        .fold(0.0, |m, e| {
            if m.is_nan() || e.is_nan() {
                f64::NAN
            } else {
                m.max(e)
            }
        })
}

/// Something to do with the network a sequence case describes (`nn.LSTM` / `nn.GRU` / `nn.RNN`
/// with the case's configuration), given in `f64` and in `f32`, both with fresh parameters.
pub trait WithNetwork {
    type Output;
    fn run<N64: SequenceLayer<f64>, N32: SequenceLayer<f32>>(
        self,
        case: &Case,
        net64: N64,
        net32: N32,
    ) -> Self::Output;
}

/// Applies the options every network config shares from the case's config.
macro_rules! configured {
    ($config:expr, $case:expr) => {
        $config
            .with_num_layers($case.usize("num_layers"))
            .with_bidirectional($case.flag("bidirectional"))
            .with_bias($case.flag("bias"))
            .with_batch_first($case.flag("batch_first"))
    };
}

/// The RNN non-linearity of a case's `cell`.
pub fn nonlinearity(cell: &str) -> Nonlinearity {
    if cell == "rnn_tanh" {
        Nonlinearity::Tanh
    } else {
        Nonlinearity::Relu
    }
}

/// Builds the network of a sequence case with the builders and hands it to `w`.
pub fn with_network<W: WithNetwork>(case: &Case, w: W) -> W::Output {
    let (i, h) = (case.usize("input_size"), case.usize("hidden_size"));
    let rng = &mut StdRng::seed_from_u64(0);
    let built = "the case's configuration is valid";
    match case.cell() {
        "lstm" => {
            let config =
                configured!(LstmConfig::new(i, h), case).with_proj_size(case.usize("proj_size"));
            let (a, b) = (config.init(rng), config.init(rng));
            w.run(case, a.expect(built), b.expect(built))
        }
        "gru" => {
            let config = configured!(GruConfig::new(i, h), case);
            let (a, b) = (config.init(rng), config.init(rng));
            w.run(case, a.expect(built), b.expect(built))
        }
        cell @ ("rnn_tanh" | "rnn_relu") => {
            let config =
                configured!(RnnConfig::new(i, h), case).with_nonlinearity(nonlinearity(cell));
            let (a, b) = (config.init(rng), config.init(rng));
            w.run(case, a.expect(built), b.expect(built))
        }
        other => panic!("{}: unknown cell {other:?}", case.name),
    }
}

/// Named tensors as a model: parameters of any name and shape, visited in order.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamList<T> {
    pub params: Vec<(String, Tensor<T>)>,
}

impl<T: Float> Parameters<T> for ParamList<T> {
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Tensor<T>)) {
        for (n, t) in &self.params {
            f(n, t);
        }
    }

    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Tensor<T>)) {
        for (n, t) in &mut self.params {
            f(n, t);
        }
    }
}
