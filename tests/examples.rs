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
    let args = [
        "--quick",
        "--no-pytorch",
        "--rounds",
        "2",
        "--json",
        json_arg,
    ];
    let out = run_example("compare", &args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "compare --quick failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("against PyTorch (not run)"), "{stdout}");
    assert!(stdout.contains("2 round(s) per entry"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("the JSON was written"))
            .expect("valid JSON");
    let _ = std::fs::remove_file(&json);
    // the CPU line says what this machine's vectors are
    #[cfg(target_arch = "x86_64")]
    {
        let avx512f = std::arch::is_x86_feature_detected!("avx512f");
        let cpu_line = stdout
            .lines()
            .find(|l| l.starts_with("CPU: "))
            .unwrap_or_else(|| panic!("no CPU line:\n{stdout}"));
        let says = if avx512f {
            "(avx512f detected)"
        } else {
            "no avx512f"
        };
        assert!(cpu_line.contains(says), "{cpu_line}");
        assert_eq!(report["avx512f"], avx512f, "{report}");
    }
    // the peak: matrixmultiply alone without PyTorch, the median of its two rounds
    let peak = &report["peak"];
    let peak_rounds: Vec<f64> = peak["matrixmultiply_gflops_rounds"]
        .as_array()
        .expect("the peak's rounds")
        .iter()
        .map(|v| v.as_f64().expect("GFLOP/s"))
        .collect();
    assert_eq!(peak_rounds.len(), 2, "{peak}");
    let peak_gflops = peak["peak_gflops"].as_f64().expect("the peak");
    assert!(peak_gflops > 0.0, "{peak}");
    assert!(
        close(peak_gflops, (peak_rounds[0] + peak_rounds[1]) / 2.0),
        "{peak}"
    );
    assert_eq!(peak["peak_source"], "matrixmultiply", "{peak}");
    assert!(peak["torch_matmul_gflops"].is_null(), "{peak}");
    assert!(stdout.contains("torch.matmul (not run)"), "{stdout}");
    // one line per workload, cell and mode, with this crate's time and share of the peak, and
    // no PyTorch time or speedup
    let workloads = ["tiny", "tiny_b1", "tiny_bi2"];
    let cells = ["lstm", "gru", "rnn_tanh"];
    let lines: Vec<Vec<&str>> = stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| w.first().is_some_and(|n| workloads.contains(n)))
        .filter(|w| w.get(1).is_some_and(|c| cells.contains(c)))
        .collect();
    assert_eq!(lines.len(), 3 * 3 * 3, "{stdout}");
    let rows = report["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 27, "{report}");
    for workload in workloads {
        for cell in ["lstm", "gru", "rnn_tanh"] {
            for mode in ["infer", "forward", "train"] {
                let line = lines
                    .iter()
                    .find(|w| w[..3] == [workload, cell, mode])
                    .unwrap_or_else(|| panic!("no line {workload} {cell} {mode}:\n{stdout}"));
                let row = rows
                    .iter()
                    .find(|r| r["workload"] == workload && r["cell"] == cell && r["mode"] == mode)
                    .unwrap_or_else(|| panic!("no row {workload} {cell} {mode}: {report}"));
                check_compare_row(line, row, peak_gflops);
            }
        }
    }
    // the summary: nothing compared, and the tiny workload's share of the peak as in its rows
    assert!(
        stdout.contains("slower than PyTorch: not measured (PyTorch not run)"),
        "{stdout}"
    );
    let summary = &report["summary"];
    assert!(
        summary["slower_than_torch"]["slower"].is_null(),
        "{summary}"
    );
    assert!(summary["lstm_speedup"].is_null(), "{summary}");
    let stream = summary["stream_speedups"].as_array().expect("stream rows");
    assert_eq!(stream.len(), 6, "LSTM and GRU in three modes: {summary}");
    assert!(
        stream
            .iter()
            .all(|s| s["workload"] == "tiny_b1" && s["speedup"].is_null()),
        "{summary}"
    );
    let large = summary["large_percent_of_peak"]
        .as_array()
        .expect("large rows");
    assert_eq!(large.len(), 9, "{summary}");
    for entry in large {
        let row = rows
            .iter()
            .find(|r| {
                r["workload"] == "tiny" && r["cell"] == entry["cell"] && r["mode"] == entry["mode"]
            })
            .unwrap_or_else(|| panic!("no row for {entry}"));
        assert_eq!(entry["ours"], row["percent_of_peak"], "{entry} {row}");
        let quoted = format!(
            "{} {} {:.0}%/-",
            entry["cell"].as_str().expect("a cell"),
            entry["mode"].as_str().expect("a mode"),
            row["percent_of_peak"].as_f64().expect("a share")
        );
        assert!(stdout.contains(&quoted), "no `{quoted}` in:\n{stdout}");
    }
    check_compare_variants(&stdout, &report, &workloads);
    // 2 rounds of the peak, 3 × 3 product timings, 2 × 27 of this crate's, and 2 × 2 × 24 of
    // the variants and the LSTM beside them
    assert!(
        stdout.contains("quick check: 161 timings, all finite and positive"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("written to {json_arg}")),
        "{stdout}"
    );
}

/// The table of the LSTM variants in `compare --quick --no-pytorch --rounds 2`: one line and
/// one JSON row per workload, variant and mode (no `infer` for the dropout, which never drops
/// there), each time the median of its two rounds, the ratio to the LSTM the median of the
/// rounds' ratios; and the summary line quoting each variant's worst ratio.
fn check_compare_variants(stdout: &str, report: &serde_json::Value, workloads: &[&str]) {
    let variants = ["peephole_lstm", "layernorm_lstm", "lstm_vd"];
    let lines: Vec<Vec<&str>> = stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| w.first().is_some_and(|n| workloads.contains(n)))
        .filter(|w| w.get(1).is_some_and(|v| variants.contains(v)))
        .collect();
    let rows = report["variants"].as_array().expect("variant rows");
    assert_eq!((lines.len(), rows.len()), (24, 24), "{stdout}");
    let rounds = |row: &serde_json::Value, key: &str| -> Vec<f64> {
        let values = row[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key}: {row}"));
        values.iter().map(|v| v.as_f64().expect("a time")).collect()
    };
    let mut worst = std::collections::HashMap::new();
    for row in rows {
        let (ours, lstm) = (rounds(row, "ms_rounds"), rounds(row, "lstm_ms_rounds"));
        assert_eq!((ours.len(), lstm.len()), (2, 2), "{row}");
        let ms = row["ms"].as_f64().expect("a time");
        assert!(close(ms, (ours[0] + ours[1]) / 2.0), "{row}");
        let ratio = row["ratio"].as_f64().expect("a ratio");
        assert!(
            close(ratio, (ours[0] / lstm[0] + ours[1] / lstm[1]) / 2.0),
            "{row}"
        );
        let (workload, variant, mode) = (
            row["workload"].as_str().expect("a workload"),
            row["variant"].as_str().expect("a variant"),
            row["mode"].as_str().expect("a mode"),
        );
        assert!(!(variant == "lstm_vd" && mode == "infer"), "{row}");
        let line = lines
            .iter()
            .find(|w| w[..3] == [workload, variant, mode])
            .unwrap_or_else(|| panic!("no line {workload} {variant} {mode}:\n{stdout}"));
        assert_eq!(line[3], format!("{ms:.3}"), "{line:?} {row}");
        assert_eq!(line[7], format!("{ratio:.2}"), "{line:?} {row}");
        let w: &mut f64 = worst.entry(variant).or_insert(0.0);
        *w = w.max(ratio);
    }
    let summary = stdout
        .lines()
        .find(|l| l.contains("LSTM variants, time against this crate's LSTM"))
        .unwrap_or_else(|| panic!("no variants summary:\n{stdout}"));
    for (variant, ratio) in worst {
        assert!(
            summary.contains(&format!("{variant} {ratio:.2}")),
            "{summary}"
        );
        assert_eq!(
            report["variants_summary"][variant]["max"], ratio,
            "{report}"
        );
    }
}

/// Whether `a` and `b` agree to 1e-9 relative.
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// One row of `compare --quick --no-pytorch --rounds 2`, as printed (`line`, split into
/// words) and in the JSON (`row`): this crate's time is the median of its two rounds and its
/// spread their distance from it, its share of the peak is its GFLOP/s over `peak_gflops`,
/// and PyTorch's columns are empty.
fn check_compare_row(line: &[&str], row: &serde_json::Value, peak_gflops: f64) {
    let rounds: Vec<f64> = row["ours_ms_rounds"]
        .as_array()
        .expect("rounds")
        .iter()
        .map(|v| v.as_f64().expect("a time"))
        .collect();
    assert_eq!(rounds.len(), 2, "{row}");
    assert!(rounds.iter().all(|&ms| ms > 0.0), "{row}");
    let ms = row["ours_ms"].as_f64().expect("a time");
    assert!(close(ms, (rounds[0] + rounds[1]) / 2.0), "{row}");
    let spread = row["ours_spread_percent"].as_f64().expect("a spread");
    assert!(
        close(spread, 100.0 * (rounds[0] - rounds[1]).abs() / 2.0 / ms),
        "{row}"
    );
    let gflops = row["ours_gflops"].as_f64().expect("GFLOP/s");
    let percent = row["percent_of_peak"].as_f64().expect("a share");
    assert!(close(percent, 100.0 * gflops / peak_gflops), "{row}");
    assert!(
        row["torch_ms"].is_null() && row["speedup"].is_null(),
        "{row}"
    );
    // printed: time, ±spread, GFLOP/s, three empty PyTorch columns, empty speedup and range
    assert_eq!(line[3], format!("{ms:.3}"), "{line:?} {row}");
    assert_eq!(line[4], format!("±{spread:.0}%"), "{line:?} {row}");
    assert_eq!(line[6..11], ["-"; 5], "no PyTorch columns: {line:?}");
    assert_eq!(line[12], format!("{percent:.0}%"), "{line:?} {row}");
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
fn the_custom_cell_passes_its_gradient_check_and_learns_the_adding_problem() {
    let stdout = run_ok("custom_cell", &["--quick"]);
    let worst: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("gradcheck worst error "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("no gradcheck line:\n{stdout}"));
    assert!(worst < 1e-6, "worst gradient error {worst}:\n{stdout}");
    let losses = stdout.lines().filter(|l| l.starts_with("step ")).count();
    assert!(losses >= 5, "{losses} loss lines:\n{stdout}");
    // predicting the mean scores about 1/6 (the variance of a sum of two uniform values)
    let mse = last_value(&stdout, "test mse");
    let mean = last_value(&stdout, "predicting the mean scores");
    assert!(mean > 0.1, "baseline {mean}:\n{stdout}");
    assert!(
        mse < mean / 10.0,
        "test mse {mse} against {mean}:\n{stdout}"
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

/// Runs `cargo run --release --example <name> -- <args>` with `stdin` as standard input.
fn run_with_input(name: &str, args: &[&str], stdin: &str) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--release", "--example", name, "--"])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("cargo starts");
    child
        .stdin
        .take()
        .expect("a pipe")
        .write_all(stdin.as_bytes())
        .expect("the example reads its input");
    child.wait_with_output().expect("the example ends")
}

/// Words that make a synthetic review positive or negative, and the neutral rest.
const GOOD: [&str; 6] = [
    "wonderful",
    "superb",
    "moving",
    "brilliant",
    "loved",
    "great",
];
const BAD: [&str; 6] = ["awful", "boring", "dull", "terrible", "hated", "worst"];
const NEUTRAL: [&str; 12] = [
    "the", "film", "a", "story", "actor", "scene", "and", "of", "plot", "it", "was", "director",
];

/// A review of `class` (1 positive): neutral words, with words of its class among them, an
/// HTML line break and punctuation as in IMDB reviews.
fn synthetic_review(class: usize, seed: u64) -> String {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = |n: usize| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) % n as u64) as usize
    };
    let words = 20 + next(40);
    let mut text = Vec::new();
    for k in 0..words {
        let word = if next(6) == 0 {
            [BAD, GOOD][class][next(6)]
        } else {
            NEUTRAL[next(12)]
        };
        text.push(if k == words / 2 {
            format!("{word}.<br /><br />")
        } else {
            word.to_string()
        });
    }
    format!("{}!", text.join(" "))
}

/// The data folder the sentiment example reads: `RECURRENT_DATA` when set (CI points it at the
/// real datasets), otherwise synthetic IMDB and MR datasets in their original layouts under
/// `dir` (3,000 reviews per class and split; MR lines in Windows-1252).
fn sentiment_data(dir: &std::path::Path) -> std::path::PathBuf {
    if let Some(data) = std::env::var_os("RECURRENT_DATA") {
        return data.into();
    }
    for split in ["train", "test"] {
        for (class, folder) in [(1, "pos"), (0, "neg")] {
            let folder = dir.join("imdb").join(split).join(folder);
            std::fs::create_dir_all(&folder).expect("a temporary folder");
            for id in 0..3_000u64 {
                let seed = id * 4 + class as u64 * 2 + u64::from(split == "test");
                let rating = if class == 1 { 7 + id % 4 } else { 1 + id % 4 };
                std::fs::write(
                    folder.join(format!("{id}_{rating}.txt")),
                    synthetic_review(class, seed),
                )
                .expect("a review is written");
            }
        }
    }
    std::fs::create_dir_all(dir.join("mr")).expect("a temporary folder");
    for (class, file) in [(1, "rt-polarity.pos"), (0, "rt-polarity.neg")] {
        let mut bytes = Vec::new();
        for line in 0..2_000u64 {
            let review = synthetic_review(class, 100_000 + line * 2 + class as u64);
            bytes.extend_from_slice(review.replace("<br />", " ").as_bytes());
            bytes.extend_from_slice(b" caf\xe9 \x97 \n"); // Windows-1252: é and an em dash
        }
        std::fs::write(dir.join("mr").join(file), bytes).expect("a snippet file is written");
    }
    dir.to_path_buf()
}

#[test]
fn the_sentiment_example_trains_both_models_saves_them_and_predicts() {
    let dir = out_dir("ex04");
    let data = sentiment_data(&dir.join("data"));
    let out = dir.join("out");
    let stdout = run_ok(
        "ex_04_sentiment_analysis",
        &[
            "--quick",
            "--data",
            data.to_str().expect("a UTF-8 path"),
            "--out",
            out.to_str().expect("a UTF-8 path"),
        ],
    );
    for line in [
        "| BiLSTM |     1 |",
        "| BiGRU  |     2 |",
        "| BiLSTM | official test |",
        "| BiGRU  | official test |",
        "check: the model reloaded from its file alone gives the same probabilities",
        "check: every model is above 60% accuracy on every test set",
    ] {
        assert!(stdout.contains(line), "no `{line}` in:\n{stdout}");
    }
    assert_charts(&out, &["loss_curves.png", "confusion_matrices.png"]);
    assert!(out.join("results.md").exists(), "no results.md");

    // predict, from arguments and from standard input
    let model = out.join("imdb-lstm.safetensors");
    let model = model.to_str().expect("a UTF-8 path");
    let sentences = ["A wonderful, moving film.", "Boring, dull and awful."];
    let mut args = vec!["predict", "--model", model];
    args.extend(sentences);
    let printed = run_ok("ex_04_sentiment_analysis", &args);
    let piped = run_with_input(
        "ex_04_sentiment_analysis",
        &["predict", "--model", model],
        &format!("{}\n\n{}\n", sentences[0], sentences[1]),
    );
    assert!(piped.status.success(), "{piped:?}");
    assert_eq!(
        printed,
        String::from_utf8_lossy(&piped.stdout),
        "the same lines either way"
    );
    let rows: Vec<&str> = printed.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{printed}");
    for (row, sentence) in rows.iter().zip(sentences) {
        let p: f64 = row.split_whitespace().next().unwrap().parse().unwrap();
        assert!((0.0..=1.0).contains(&p), "{row}");
        assert!(row.ends_with(sentence), "{row}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_sentiment_example_runs_the_course_preset_and_mr() {
    let dir = out_dir("ex04-course");
    let data = sentiment_data(&dir.join("data"));
    let data = data.to_str().expect("a UTF-8 path");
    let out = dir.join("course");
    let stdout = run_ok(
        "ex_04_sentiment_analysis",
        &[
            "--quick",
            "--preset",
            "course",
            "--cell",
            "gru",
            "--data",
            data,
            "--out",
            out.to_str().expect("a UTF-8 path"),
        ],
    );
    for line in [
        "split 60/20/20",
        "| BiGRU |  own test 20% |",
        "| BiGRU | official test |",
        "check: every model is above 60% accuracy",
    ] {
        assert!(stdout.contains(line), "no `{line}` in:\n{stdout}");
    }
    assert!(!stdout.contains("BiLSTM"), "only the GRU was asked for");
    let out = dir.join("mr");
    let stdout = run_ok(
        "ex_04_sentiment_analysis",
        &[
            "--quick",
            "--dataset",
            "mr",
            "--cell",
            "lstm",
            "--data",
            data,
            "--out",
            out.to_str().expect("a UTF-8 path"),
        ],
    );
    assert!(stdout.contains("| BiLSTM | test (fold 9) |"), "{stdout}");
    assert!(out.join("mr-lstm.safetensors").exists());

    // the course's GRU fine-tuned on MR: its vocabulary and weights, its cell
    let course_gru = dir.join("course").join("imdb-gru.safetensors");
    let out = dir.join("fine-tuned");
    let stdout = run_ok(
        "ex_04_sentiment_analysis",
        &[
            "--quick",
            "--dataset",
            "mr",
            "--init-from",
            course_gru.to_str().expect("a UTF-8 path"),
            "--data",
            data,
            "--out",
            out.to_str().expect("a UTF-8 path"),
        ],
    );
    for line in [
        "starting from",
        "| BiGRU | test (fold 9) | 0 (as loaded) |",
        "Adam 0.0015",
        "check: the model reloaded from its file alone",
    ] {
        assert!(stdout.contains(line), "no `{line}` in:\n{stdout}");
    }
    assert!(out.join("mr-gru.safetensors").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_sentiment_example_names_what_is_wrong() {
    let dir = out_dir("ex04-errors");
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("no-such-folder");
    let out = run_example(
        "ex_04_sentiment_analysis",
        &[
            "--quick",
            "--data",
            missing.to_str().unwrap(),
            "--no-download",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("no-such-folder"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let not_a_model = dir.join("notes.safetensors");
    std::fs::write(&not_a_model, b"not a model").unwrap();
    let out = run_example(
        "ex_04_sentiment_analysis",
        &["predict", "--model", not_a_model.to_str().unwrap(), "great"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("notes.safetensors"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
