//! Every example runs to completion (the examples check their own results and exit with an
//! error when a check fails). Each is run through `cargo run --release --example`, so it is
//! built first when needed; `compare` runs in its `--quick` mode, without PyTorch. Not
//! covered: the examples' timing, `compare`'s full workloads, its PyTorch columns and
//! `--memory`.

use std::process::{Command, Output};

/// Runs `cargo run --release --example <name> -- <args>` and returns what it printed.
fn run_example(name: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--release", "--example", name, "--"])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo starts")
}

#[test]
fn quickstart_runs_and_its_gradients_check() {
    let out = run_example("quickstart", &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "quickstart failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("zero past each length: true"), "{stdout}");
    assert!(stdout.contains("gradcheck worst error"), "{stdout}");
}

#[test]
fn compare_quick_prints_every_cell_and_mode_and_checks_its_timings() {
    let json = std::env::temp_dir().join(format!("recurrent-compare-{}.json", std::process::id()));
    let json_arg = json.to_str().expect("a UTF-8 temporary path");
    let out = run_example("compare", &["--quick", "--no-pytorch", "--json", json_arg]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "compare --quick failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("against PyTorch (not run)"), "{stdout}");
    // one row per workload, cell and mode, each with this crate's time and no PyTorch time
    let workloads = ["tiny", "tiny_b1", "tiny_bi2"];
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| w.first().is_some_and(|n| workloads.contains(n)))
        .collect();
    assert_eq!(rows.len(), 3 * 3 * 3, "{stdout}");
    for workload in workloads {
        for cell in ["lstm", "gru", "rnn_tanh"] {
            for mode in ["infer", "forward", "train"] {
                let row = rows
                    .iter()
                    .find(|w| w[..3] == [workload, cell, mode])
                    .unwrap_or_else(|| panic!("no row {workload} {cell} {mode}:\n{stdout}"));
                let ms: f64 = row[3].parse().expect("a time in ms");
                assert!(ms.is_finite() && ms >= 0.0, "{row:?}");
                assert_eq!(row[5], "-", "no PyTorch time: {row:?}");
            }
        }
    }
    // 3 × 3 sgemm timings and 27 of this crate's
    assert!(
        stdout.contains("quick check: 36 timings, all finite and positive"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("written to {json_arg}")),
        "{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("the JSON was written"))
            .expect("valid JSON");
    let _ = std::fs::remove_file(&json);
    let rows = report["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 27, "{report}");
    assert!(
        rows.iter()
            .all(|r| r["ours_ms"].as_f64().is_some_and(|ms| ms > 0.0) && r["torch_ms"].is_null()),
        "{report}"
    );
}

/// Runs an example and returns its standard output, failing with both outputs if it failed.
fn run_ok(name: &str, args: &[&str]) -> String {
    let out = run_example(name, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The number after `key` on the last line that has it.
fn last_value(stdout: &str, key: &str) -> f64 {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.contains(key))
        .unwrap_or_else(|| panic!("no `{key}` in:\n{stdout}"));
    let rest = &line[line.find(key).expect("found") + key.len()..];
    let number: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    number
        .parse()
        .unwrap_or_else(|_| panic!("no number after `{key}` in {line}"))
}

/// A fresh output folder for an example's charts.
fn out_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("recurrent-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Asserts that each chart was written as a non-empty PNG file.
fn assert_charts(dir: &std::path::Path, charts: &[&str]) {
    for chart in charts {
        let bytes = std::fs::read(dir.join(chart)).unwrap_or_else(|e| panic!("{chart}: {e}"));
        assert!(
            bytes.len() > 1000 && bytes.starts_with(b"\x89PNG"),
            "{chart} is not a PNG"
        );
    }
}

#[test]
fn the_sequence_comparison_measures_every_cell_and_checks_its_bptt() {
    let dir = out_dir("ex03");
    let stdout = run_ok(
        "ex_03_sequence_comparison",
        &["--quick", "--out", dir.to_str().expect("a UTF-8 path")],
    );
    // the example fails unless each cell beats repeating the last value on the sine task and
    // the step-by-step gradients equal the fused backward pass; here: every table has its rows
    let table = std::fs::read_to_string(dir.join("results.md")).expect("results.md");
    for title in [
        "Sine:",
        "y_t = x_0·x_t:",
        "Speed:",
        "Gradient flow:",
        "Vanishing gradients",
        "Adding problem: hidden 128",
        "Adding problem: time per training step",
    ] {
        assert!(table.contains(title), "no table {title}:\n{table}");
    }
    for cell in ["RNN", "LSTM", "GRU"] {
        let rows = table
            .lines()
            .filter(|l| l.split('|').any(|c| c.trim() == cell))
            .count();
        // sine, product, speed, flow, 2 vanishing states; 2 lengths × (results, speed)
        assert_eq!(rows, 10, "{cell} rows in:\n{table}");
    }
    assert!(
        stdout.contains("step-by-step BPTT equals the fused backward pass"),
        "{stdout}"
    );
    assert_charts(
        &dir,
        &[
            "sine_loss.png",
            "sine_predictions.png",
            "product_loss.png",
            "product_predictions.png",
            "speed.png",
            "gradient_flow_steps.png",
            "gradient_flow_epochs.png",
            "adding_mse_by_length.png",
            "adding_curves.png",
            "vanishing_gradients.png",
        ],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_tagger_learns_and_its_saved_model_predicts_the_same() {
    let path = std::env::temp_dir().join(format!("recurrent-tagger-{}.st", std::process::id()));
    let stdout = run_ok(
        "tagger",
        &[
            "--epochs",
            "10",
            "--out",
            path.to_str().expect("a UTF-8 path"),
        ],
    );
    let _ = std::fs::remove_file(&path);
    assert!(
        stdout.contains("embedding.weight"),
        "the summary:\n{stdout}"
    );
    assert!(
        stdout.contains("the same predictions on all 400 test sequences"),
        "{stdout}"
    );
    // always answering "no repeat later" scores about 69%; the tagger must beat that clearly
    let accuracy = last_value(&stdout, "test accuracy");
    assert!(accuracy > 80.0, "test accuracy {accuracy}%:\n{stdout}");
}

#[test]
fn the_character_model_learns_and_samples() {
    let stdout = run_ok("char_lm", &["--steps", "100", "--sample", "40"]);
    let loss = last_value(&stdout, "loss");
    let uniform = last_value(&stdout, "uniform guess:");
    assert!(
        loss < 0.75 * uniform,
        "loss {loss} against {uniform}:\n{stdout}"
    );
    let sampled = stdout
        .lines()
        .find_map(|l| l.strip_prefix("sampled: "))
        .unwrap_or_else(|| panic!("no sample:\n{stdout}"));
    assert_eq!(sampled.chars().count(), 41, "{sampled}");
}

#[test]
fn the_sine_regressor_ends_below_the_signal_variance() {
    let stdout = run_ok("sine", &["--steps", "150"]);
    let mse = last_value(&stdout, "test mse");
    let repeat = last_value(&stdout, "repeating the noisy input scores");
    assert!(
        mse < 0.8 * repeat,
        "test mse {mse} against {repeat}:\n{stdout}"
    );
}

#[test]
fn the_gru_exercise_checks_its_step_by_hand_and_writes_its_charts() {
    let dir = out_dir("ex02");
    let stdout = run_ok(
        "ex_02_gru_implementation",
        &["--quick", "--out", dir.to_str().expect("a UTF-8 path")],
    );
    for expected in [
        "gradcheck of the step's backward: worst error",
        "| walk-through",
        "| A sine, hidden 10",
        "| B copy, 100 sequences",
        "| B copy, 1000 sequences",
        "| C sine, hidden 20",
        "| D one-unit GRU",
        "Parameter counts",
        "0.75 |",
    ] {
        assert!(stdout.contains(expected), "no `{expected}` in:\n{stdout}");
    }
    assert_charts(
        &dir,
        &[
            "ex02_sine.png",
            "ex02_copy.png",
            "ex02_copy_positions.png",
            "ex02_hidden_sizes.png",
            "ex02_hidden_sizes_predictions.png",
            "ex02_gru_gates.png",
            "ex02_gru_gates_zoom.png",
        ],
    );
    assert!(dir.join("results.md").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ex_01_quick_checks_the_hand_computed_step_and_beats_every_baseline() {
    let dir = out_dir("ex01");
    let stdout = run_ok(
        "ex_01_lstm_implementation",
        &["--quick", "--out", dir.to_str().expect("a UTF-8 path")],
    );
    for line in [
        "forget gate f",
        "hidden state h",
        "| h: max abs(hand − Cell::forward)",
        "| gradcheck, one step",
        "| gradcheck, BPTT over 6 steps",
        "| A sine, hidden 10",
        "| B memory, hidden 10 (last step)",
        "| C sine, hidden 20",
        "all 9 checks passed",
    ] {
        assert!(stdout.contains(line), "no `{line}` in:\n{stdout}");
    }
    assert!(!stdout.contains("FAIL"), "{stdout}");
    assert_charts(
        &dir,
        &[
            "sine_loss.png",
            "sine_predictions.png",
            "memory_loss.png",
            "memory_recall.png",
            "hidden_sizes.png",
            "hidden_sizes_predictions.png",
        ],
    );
    assert!(dir.join("results.md").exists(), "no results.md");
    let _ = std::fs::remove_dir_all(&dir);
}
