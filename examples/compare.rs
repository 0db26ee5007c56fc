//! This crate against PyTorch on the same machine, in one run: the recurrent workloads of the
//! performance contract, the machine's sgemm peak on the GEMM shapes they involve, and one
//! table (also written as JSON).
//!
//! ```sh
//! cargo run --release --example compare -- --threads 1
//! cargo run --release --example compare -- --threads 2 --python .venv/bin/python
//! cargo run --release --example compare -- --quick   # a few seconds: does everything run?
//! ```
//!
//! PyTorch's side is `scripts/bench_pytorch.py`, run with the given Python when it can import
//! `torch` (install it into a virtual environment: `python3 -m venv .venv && .venv/bin/pip
//! install torch`); without it the table has this crate's columns only.
//!
//! Workloads (f32, time-major): small T50 B16 I64 H128, medium T100 B32 I256 H256, large
//! T100 B64 I512 H512, stream T100 B1 I128 H256, bi2 = medium as a 2-layer bidirectional
//! network. Modes: `infer` (a forward pass that keeps no trace: `SequenceLayer::infer_with_state`, and
//! PyTorch's forward under `torch.inference_mode()`), `forward` (a forward pass keeping what
//! backward needs: `SequenceLayer::forward_with_state`, and PyTorch's forward recording its graph) and
//! `train` (forward and backward of `sum(output)` to the input and every weight). FLOPs:
//! `2·G·H·(I + H)` per step, sample, layer and direction (G = 4 LSTM, 3 GRU, 1 RNN), train = 3×
//! forward.
//!
//! The sgemm peak of a workload is the GFLOP/s of `matrixmultiply`'s sgemm alone on the same
//! products a forward pass does (the input projection of every layer and direction, then one
//! recurrent product per step, weights in the faster `(K, N)` layout), on one thread, timed
//! the same way; "% peak" is this crate's GFLOP/s against it, in every mode (the
//! backward products are not timed separately). For the stream workload (batch 1) the
//! per-step products are single rows, which go through the crate's own matrix-vector loop,
//! so its "peak" is that loop's rate, not sgemm's (sgemm manages 2 to 5 GFLOP/s there).
//!
//! `--memory` prints instead the peak memory of `infer`, `forward` and a training step on the
//! medium and large LSTM workloads, each measured in a process of its own.
//!
//! `--quick` runs tiny workloads instead (T5 B2 I8 H8 as one layer, batch 1 and two
//! bidirectional layers), each timed once over a few calls, and PyTorch only when `--python`
//! is given. Its numbers measure nothing; it checks that every path runs and that every timing
//! is finite and positive, and exits with an error otherwise.

use std::process::Command;
use std::time::Instant;

use clap::Parser;
use recurrent::rand::{rngs::StdRng, SeedableRng};
use recurrent::{
    gemm, GruConfig, Lstm, LstmConfig, MatMut, MatRef, Mode, RnnConfig, SequenceLayer, Tensor,
};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(about = "recurrent against PyTorch on the same workloads, in one run")]
struct Args {
    /// Threads for both libraries (`torch.set_num_threads` and `recurrent::set_num_threads`;
    /// this crate uses a second thread for half of a large batch, or for the other direction
    /// of a bidirectional layer).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Minimum measuring time per entry, in seconds [default: 1, or 0 with --quick].
    #[arg(long)]
    min_seconds: Option<f64>,
    /// Only these workloads (small, medium, large, stream, bi2; with --quick: tiny,
    /// tiny_b1, tiny_bi2).
    #[arg(long, num_args = 1..)]
    only: Vec<String>,
    /// The Python that runs `scripts/bench_pytorch.py` [default: python3; with --quick,
    /// PyTorch runs only when this is given].
    #[arg(long)]
    python: Option<String>,
    /// Skip PyTorch.
    #[arg(long)]
    no_pytorch: bool,
    /// Where to write the table as JSON.
    #[arg(long, default_value = "target/compare.json")]
    json: String,
    /// Instead of the table: the peak memory of infer, forward and a training step on the
    /// medium and large LSTM workloads, and of the training step against what its backward
    /// pass needs (Linux only).
    #[arg(long)]
    memory: bool,
    /// One measurement of --memory, `workload:mode`, in this process (--memory runs each in a
    /// process of its own, so that memory freed by one does not hide another's).
    #[arg(long, hide = true)]
    memory_case: Option<String>,
    /// Tiny workloads, each timed once, to check in a few seconds that everything runs and
    /// that every timing is finite and positive; exits with an error otherwise.
    #[arg(long, conflicts_with = "memory")]
    quick: bool,
}

impl Args {
    /// The minimum measuring time per entry, in seconds.
    fn min_seconds(&self) -> f64 {
        self.min_seconds
            .unwrap_or(if self.quick { 0.0 } else { 1.0 })
    }

    /// The workloads to run, before `--only`.
    fn workloads(&self) -> &'static [Workload] {
        if self.quick {
            QUICK_WORKLOADS
        } else {
            WORKLOADS
        }
    }
}

/// The process's peak resident memory in bytes since the last reset (`VmHWM`), and a reset of
/// it (`/proc/self/clear_refs`), on Linux.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn current_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The LSTM workloads of `--memory`: `(name, T, B, I, H)`.
const MEMORY_WORKLOADS: &[(&str, usize, usize, usize, usize)] =
    &[("medium", 100, 32, 256, 256), ("large", 100, 64, 512, 512)];

/// The modes of the table and of `--memory`.
const MODES: &[&str] = &["infer", "forward", "train"];

/// `--memory`: each workload and mode measured by [`memory_case`] in a process of its own.
fn memory(threads: usize) -> Result<(), Box<dyn std::error::Error>> {
    let exe = std::env::current_exe()?;
    let mb = |v: u64| v as f64 / (1 << 20) as f64;
    for &(name, t, b, i, h) in MEMORY_WORKLOADS {
        let mut peaks = Vec::new();
        for &mode in MODES {
            let out = Command::new(&exe)
                .arg("--threads")
                .arg(threads.to_string())
                .arg("--memory-case")
                .arg(format!("{name}:{mode}"))
                .output()?;
            let text = String::from_utf8_lossy(&out.stdout);
            let peak: u64 = text.trim().parse().map_err(|_| {
                format!(
                    "no measurement for {name} {mode}: {text}{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })?;
            let mut line = format!("{mode} {:.1} MiB", mb(peak));
            if mode == "train" {
                let needed = train_needs(t, b, i, h);
                let ratio = peak as f64 / needed as f64;
                line += &format!(" (needs {:.1} MiB: {ratio:.2}x)", mb(needed));
            }
            peaks.push(line);
        }
        println!(
            "{name} LSTM (T{t} B{b} I{i} H{h}, f32), peak above the resting process: {}",
            peaks.join(", ")
        );
    }
    Ok(())
}

/// What a training step of an LSTM cannot do without, in bytes: the trace's activations
/// (input rows, `h` and `c` of every step, the gates and `tanh c` of every step), the output
/// and its gradient, the input gradient, the parameters and their gradients.
fn train_needs(t: usize, b: usize, i: usize, h: usize) -> u64 {
    let f = std::mem::size_of::<f32>() as u64;
    let params = (4 * h * (i + h) + 8 * h) as u64;
    f * ((t * b * i) as u64 // the input rows kept by the trace
        + ((t + 1) * b * 2 * h) as u64    // h and c at every step
        + (t * b * 5 * h) as u64          // the gates and tanh(c) of every step
        + 2 * (t * b * h) as u64          // the output and its gradient
        + (t * b * i) as u64              // the input gradient
        + 2 * params) // parameters and their gradients
}

/// One measurement of `--memory`, `workload:mode`: two calls (the second runs on the buffers
/// the first left in the layer's pool); prints the peak memory in bytes above the process
/// holding the input.
fn memory_case(case: &str) -> Result<(), Box<dyn std::error::Error>> {
    let (name, mode) = case.split_once(':').ok_or("expected workload:mode")?;
    let &(_, t, b, i, h) = MEMORY_WORKLOADS
        .iter()
        .find(|w| w.0 == name)
        .ok_or_else(|| format!("no memory workload {name}"))?;
    let rng = &mut StdRng::seed_from_u64(2);
    let x = Tensor::<f32>::randn(&[t, b, i], rng);
    // the input is the caller's; everything from the model on counts
    let resting = current_rss().ok_or("no /proc/self/status: peak memory is measured on Linux")?;
    std::fs::write("/proc/self/clear_refs", "5")?;
    let lstm: Lstm<f32> = LstmConfig::new(i, h).init(rng)?;
    let call = || -> Result<(), recurrent::Error> {
        match mode {
            "infer" => drop(lstm.infer_with_state(&x, None, None)?),
            "forward" => drop(lstm.forward_with_state(&x, None, None, Mode::Eval)?),
            _ => {
                let out = lstm.forward_with_state(&x, None, None, Mode::Eval)?;
                let d_output = Tensor::full(out.output.shape(), 1.0);
                lstm.backward_with_state(&out.trace, Some(&d_output), None)?;
            }
        }
        Ok(())
    };
    call()?;
    call()?;
    let peak = peak_rss().ok_or("no VmHWM")? - resting;
    println!("{peak}");
    Ok(())
}

/// `(name, T, B, I, H, layers, bidirectional)`.
type Workload = (&'static str, usize, usize, usize, usize, usize, bool);

/// The workloads of the comparison (the same in `scripts/bench_pytorch.py`).
const WORKLOADS: &[Workload] = &[
    ("small", 50, 16, 64, 128, 1, false),
    ("medium", 100, 32, 256, 256, 1, false),
    ("large", 100, 64, 512, 512, 1, false),
    ("stream", 100, 1, 128, 256, 1, false),
    ("bi2", 100, 32, 256, 256, 2, true),
];

/// The workloads of `--quick`, covering the same paths (batched, batch 1, bidirectional
/// layers) at tiny sizes (the same in `scripts/bench_pytorch.py --quick`).
const QUICK_WORKLOADS: &[Workload] = &[
    ("tiny", 5, 2, 8, 8, 1, false),
    ("tiny_b1", 5, 1, 8, 8, 1, false),
    ("tiny_bi2", 5, 2, 8, 8, 2, true),
];

/// `(name, gates)`.
const CELLS: &[(&str, usize)] = &[("lstm", 4), ("gru", 3), ("rnn_tanh", 1)];

/// The median time of `f` in milliseconds, after a warm-up, over at least five calls and
/// `min_seconds`.
fn median_ms(min_seconds: f64, mut f: impl FnMut()) -> f64 {
    f();
    f();
    let start = Instant::now();
    let mut times = Vec::new();
    while times.len() < 5 || start.elapsed().as_secs_f64() < min_seconds && times.len() < 200 {
        let t = Instant::now();
        f();
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Forward FLOPs of a workload.
fn forward_flops(t: usize, b: usize, i: usize, h: usize, layers: usize, bi: bool, g: usize) -> f64 {
    let d = if bi { 2 } else { 1 };
    (0..layers)
        .map(|k| {
            let input = if k == 0 { i } else { d * h };
            (d * t * b * 2 * g * h * (input + h)) as f64
        })
        .sum()
}

/// Milliseconds of `matrixmultiply`'s sgemm alone on the products of one forward pass.
fn sgemm_ms(
    min_seconds: f64,
    (t, b, i, h, layers, bi): (usize, usize, usize, usize, usize, bool),
    g: usize,
) -> f64 {
    let rng = &mut StdRng::seed_from_u64(0);
    let d = if bi { 2 } else { 1 };
    let x = Tensor::<f32>::randn(&[t * b, i.max(d * h)], rng).into_vec();
    let w = Tensor::<f32>::randn(&[g * h, i.max(d * h)], rng).into_vec();
    let mut p = vec![0.0f32; t * b * g * h];
    let mut gates = vec![0.0f32; b * g * h];
    median_ms(min_seconds, || {
        for k in 0..layers {
            let input = if k == 0 { i } else { d * h };
            for _ in 0..d {
                let xm = MatRef::new(&x[..t * b * input], t * b, input);
                // weights as (K, N), the faster layout for these shapes
                let wm = MatRef::new(&w[..g * h * input], input, g * h);
                gemm(1.0, xm, wm, 0.0, MatMut::new(&mut p, t * b, g * h));
                let hm = MatRef::new(&x[..b * h], b, h);
                let whh = MatRef::new(&w[..g * h * h], h, g * h);
                for _ in 0..t {
                    gemm(1.0, hm, whh, 1.0, MatMut::new(&mut gates, b, g * h));
                }
            }
        }
    })
}

/// Milliseconds of this crate's `mode` on `net`.
fn ours_ms<N: SequenceLayer<f32>>(net: &N, x: &Tensor<f32>, mode: &str, min_seconds: f64) -> f64 {
    match mode {
        "infer" => median_ms(min_seconds, || {
            net.infer_with_state(x, None, None).expect("valid input");
        }),
        "forward" => median_ms(min_seconds, || {
            net.forward_with_state(x, None, None, Mode::Eval)
                .expect("valid input");
        }),
        _ => median_ms(min_seconds, || {
            let out = net
                .forward_with_state(x, None, None, Mode::Eval)
                .expect("valid input");
            let d_output = Tensor::full(out.output.shape(), 1.0);
            net.backward_with_state(&out.trace, Some(&d_output), None)
                .expect("valid gradient");
        }),
    }
}

fn pytorch(args: &Args) -> Option<Value> {
    if args.no_pytorch || args.quick && args.python.is_none() {
        return None;
    }
    let python = args.python.as_deref().unwrap_or("python3");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/bench_pytorch.py");
    let mut cmd = Command::new(python);
    cmd.arg(script)
        .arg("--threads")
        .arg(args.threads.to_string())
        .arg("--min-seconds")
        .arg(args.min_seconds().to_string());
    if args.quick {
        cmd.arg("--quick");
    }
    if !args.only.is_empty() {
        cmd.arg("--only").args(&args.only);
    }
    eprintln!("running PyTorch: {python} {script}");
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) => {
            eprintln!("cannot run {python}: {e}; PyTorch columns left empty");
            return None;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let value: Value = match serde_json::from_str(text.trim()) {
        Ok(v) => v,
        Err(e) => {
            eprintln!(
                "PyTorch's script gave no result ({e}): {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
    };
    if let Some(err) = value.get("error") {
        eprintln!("PyTorch columns left empty: {err}");
        return None;
    }
    Some(value)
}

/// The CPU's model name, as `/proc/cpuinfo` gives it.
fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn print_header() {
    println!(
        "{:<8} {:<9} {:<7} {:>10} {:>9} {:>10} {:>9} {:>8} {:>11} {:>7}",
        "workload",
        "cell",
        "mode",
        "ours ms",
        "GFLOP/s",
        "torch ms",
        "GFLOP/s",
        "speedup",
        "sgemm GF/s",
        "% peak"
    );
}

/// This crate's time for one workload: a network of `cell` with `(I, H, layers,
/// bidirectional)` on `x`.
fn time_cell(
    cell: &str,
    (i, h, layers, bi): (usize, usize, usize, bool),
    x: &Tensor<f32>,
    mode: &str,
    min_seconds: f64,
    rng: &mut StdRng,
) -> Result<f64, Box<dyn std::error::Error>> {
    Ok(match cell {
        "lstm" => {
            let c = LstmConfig::new(i, h)
                .with_num_layers(layers)
                .with_bidirectional(bi);
            ours_ms(&c.init(rng)?, x, mode, min_seconds)
        }
        "gru" => {
            let c = GruConfig::new(i, h)
                .with_num_layers(layers)
                .with_bidirectional(bi);
            ours_ms(&c.init(rng)?, x, mode, min_seconds)
        }
        _ => {
            let c = RnnConfig::new(i, h)
                .with_num_layers(layers)
                .with_bidirectional(bi);
            ours_ms(&c.init(rng)?, x, mode, min_seconds)
        }
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    recurrent::set_num_threads(args.threads);
    if let Some(case) = &args.memory_case {
        return memory_case(case);
    }
    if args.memory {
        return memory(args.threads);
    }
    let torch = pytorch(&args);
    let torch_ms = |w: &str, c: &str, m: &str| -> Option<f64> {
        torch.as_ref()?["results"].as_array()?.iter().find_map(|r| {
            (r["workload"] == w && r["cell"] == c && r["mode"] == m).then(|| r["ms"].as_f64())?
        })
    };
    let cpu = cpu_name();
    println!(
        "recurrent {} against PyTorch {}, {} thread(s), CPU: {cpu}",
        env!("CARGO_PKG_VERSION"),
        torch
            .as_ref()
            .and_then(|t| t["torch_version"].as_str())
            .unwrap_or("(not run)"),
        args.threads
    );
    print_header();
    let min_seconds = args.min_seconds();
    let mut rows = Vec::new();
    // every time measured, for the check of --quick
    let mut timings: Vec<(String, f64)> = Vec::new();
    let rng = &mut StdRng::seed_from_u64(1);
    for &(name, t, b, i, h, layers, bi) in args.workloads() {
        if !args.only.is_empty() && !args.only.iter().any(|o| o == name) {
            continue;
        }
        let x = Tensor::<f32>::randn(&[t, b, i], rng);
        for &(cell, g) in CELLS {
            let fwd = forward_flops(t, b, i, h, layers, bi, g);
            let peak_ms = sgemm_ms(min_seconds, (t, b, i, h, layers, bi), g);
            timings.push((format!("{name} {cell} sgemm"), peak_ms));
            let peak = fwd / 1e6 / peak_ms;
            for &mode in MODES {
                let ms = time_cell(cell, (i, h, layers, bi), &x, mode, min_seconds, rng)?;
                let flops = if mode == "train" { 3.0 * fwd } else { fwd };
                let gflops = flops / 1e6 / ms;
                let theirs = torch_ms(name, cell, mode);
                timings.push((format!("{name} {cell} {mode} ours"), ms));
                if let Some(theirs) = theirs {
                    timings.push((format!("{name} {cell} {mode} torch"), theirs));
                }
                let fmt =
                    |v: Option<f64>, p: usize| v.map_or("-".to_string(), |v| format!("{v:.p$}"));
                println!(
                    "{name:<8} {cell:<9} {mode:<7} {ms:>10.3} {gflops:>9.1} {:>10} {:>9} {:>8} {peak:>11.1} {:>6.0}%",
                    fmt(theirs, 3),
                    fmt(theirs.map(|m| flops / 1e6 / m), 1),
                    fmt(theirs.map(|m| m / ms), 2),
                    100.0 * gflops / peak
                );
                rows.push(json!({
                    "workload": name, "cell": cell, "mode": mode, "threads": args.threads,
                    "ours_ms": ms, "ours_gflops": gflops, "torch_ms": theirs,
                    "torch_gflops": theirs.map(|m| flops / 1e6 / m),
                    "speedup": theirs.map(|m| m / ms), "sgemm_peak_gflops": peak,
                    "percent_of_peak": 100.0 * gflops / peak,
                }));
            }
        }
    }
    let report = json!({
        "crate_version": env!("CARGO_PKG_VERSION"),
        "torch_version": torch.as_ref().and_then(|t| t["torch_version"].as_str()),
        "threads": args.threads,
        "cpu": cpu,
        "rows": rows,
    });
    std::fs::write(&args.json, serde_json::to_string_pretty(&report)?)?;
    println!("written to {}", args.json);
    if args.quick {
        check_timings(&timings)?;
    }
    Ok(())
}

/// The check of `--quick`: at least one timing, and every one finite and positive.
fn check_timings(timings: &[(String, f64)]) -> Result<(), String> {
    let bad: Vec<String> = timings
        .iter()
        .filter(|(_, ms)| !(ms.is_finite() && *ms > 0.0))
        .map(|(what, ms)| format!("{what}: {ms:.6} ms"))
        .collect();
    if timings.is_empty() {
        return Err("quick check failed: nothing was timed".into());
    }
    if !bad.is_empty() {
        return Err(format!(
            "quick check failed: {} of {} timings are not finite and positive: {}",
            bad.len(),
            timings.len(),
            bad.join("; ")
        ));
    }
    println!(
        "quick check: {} timings, all finite and positive",
        timings.len()
    );
    Ok(())
}
