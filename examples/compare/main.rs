//! This crate against PyTorch on the same machine, in one run: the recurrent workloads of the
//! performance contract, timed in several rounds that alternate the two libraries, the
//! machine's single-thread GEMM peak, one table and a summary (also written as JSON).
//!
//! ```sh
//! cargo run --release --example compare -- --threads 1
//! cargo run --release --example compare -- --threads 2 --python .venv/bin/python --rounds 5
//! cargo run --release --example compare -- --quick   # a few seconds: does everything run?
//! ```
//!
//! PyTorch's side is `scripts/bench_pytorch.py --serve`, started once with the given Python
//! when it can import `torch` (install it into a virtual environment: `python3 -m venv .venv
//! && .venv/bin/pip install torch`) and asked for one time after another over a pipe (the
//! protocol is in the script's docstring); without it the table has this crate's columns only.
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
//! Every entry (workload, cell, mode) is timed in `--rounds` rounds; in each, this crate and
//! PyTorch are timed one right after the other, the one going first alternating from round to
//! round, so that a drift of the machine's speed hits both. A round's time is the median of
//! repeated calls over at least `--min-seconds`; the table gives the median over the rounds and
//! the farthest round from it (±, in percent), and for the speedup (PyTorch's time over ours)
//! the median of the rounds' ratios and their range.
//!
//! The machine's single-thread peak is measured first, the same way: the GFLOP/s (`2·n³` per
//! product) of `matrixmultiply`'s sgemm (through [`recurrent::gemm`]) and of `torch.matmul`
//! (with PyTorch set to one thread) on one 2048 × 2048 product; the peak is the larger of the
//! two, and "% peak" is this crate's GFLOP/s against it, in every mode (with two threads it can
//! pass 100%). The "mm GF/s" column is `matrixmultiply` alone on the products a forward pass of
//! the workload does (the input projection of every layer and direction, then one recurrent
//! product per step, weights in the faster `(K, N)` layout), on one thread, timed once: for the
//! stream workload (batch 1) the per-step products are single rows, which `recurrent::gemm`
//! computes with the crate's own matrix-vector loop, so there it is that loop's rate.
//!
//! The closing summary counts the rows slower than PyTorch (and those of them with a round the
//! other way), and quotes the LSTM rows' median speedup, the batch-1 stream rows' speedups and
//! the large workload's share of the peak.
//!
//! After the table comes a second one: the LSTM variants PyTorch does not have (the peephole
//! LSTM, the layer-normalised LSTM and the LSTM with variational dropout), each timed against
//! this crate's LSTM on the same workload in alternating rounds, with their time ratio (see
//! `variants.rs`; `--no-variants` skips it).
//!
//! `--memory` prints instead the peak memory of `infer`, `forward` and a training step on the
//! medium and large LSTM workloads, each measured in a process of its own.
//!
//! `--quick` runs tiny workloads instead (T5 B2 I8 H8 as one layer, batch 1 and two
//! bidirectional layers) and a 256 × 256 product for the peak, each timed in one round
//! (unless `--rounds` says otherwise) over a few calls, and PyTorch only when `--python` is
//! given. Its numbers measure nothing; it checks that every path runs and that every timing is
//! finite and positive, and exits with an error otherwise.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio};
use std::time::Instant;

use clap::Parser;
use recurrent::rand::{rngs::StdRng, SeedableRng};
use recurrent::{
    gemm, Gru, GruConfig, Lstm, LstmConfig, MatMut, MatRef, Mode, Rnn, RnnConfig, SequenceLayer,
    Tensor,
};
use serde_json::{json, Value};

mod variants;

#[derive(Parser)]
#[command(about = "recurrent against PyTorch on the same workloads, in one run")]
struct Args {
    /// Threads for both libraries (`torch.set_num_threads` and `recurrent::set_num_threads`;
    /// this crate shares its products, a large batch or the two directions of a bidirectional
    /// layer with one worker thread). The peak and `mm GF/s` are measured on one thread
    /// regardless.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Minimum measuring time per entry, library and round, in seconds [default: 1, or 0
    /// with --quick].
    #[arg(long)]
    min_seconds: Option<f64>,
    /// Rounds per entry, this crate and PyTorch alternating within each; the table gives
    /// the median over the rounds and their spread [default: 3, or 1 with --quick; at
    /// least 1].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: Option<u32>,
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
    /// Skip the table of the LSTM variants against this crate's LSTM.
    #[arg(long)]
    no_variants: bool,
    /// Where to write the table, the peak and the summary as JSON.
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
    /// The minimum measuring time per entry, library and round, in seconds.
    fn min_seconds(&self) -> f64 {
        self.min_seconds
            .unwrap_or(if self.quick { 0.0 } else { 1.0 })
    }

    /// The rounds per entry.
    fn rounds(&self) -> usize {
        self.rounds
            .map_or(if self.quick { 1 } else { 3 }, |r| r as usize)
    }

    /// The workloads to run, before `--only`.
    fn workloads(&self) -> &'static [Workload] {
        if self.quick {
            QUICK_WORKLOADS
        } else {
            WORKLOADS
        }
    }

    /// The size `n` of the `n × n` product that measures the peak.
    fn peak_size(&self) -> usize {
        if self.quick {
            QUICK_PEAK_SIZE
        } else {
            PEAK_SIZE
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

/// The process's resident memory in bytes now (`VmRSS`), on Linux.
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

/// The batch-1 workloads whose LSTM and GRU speedups the summary quotes (the full one and its
/// `--quick` counterpart).
const STREAM_WORKLOADS: &[&str] = &["stream", "tiny_b1"];

/// The workloads whose share of the peak the summary quotes (the largest batched one and its
/// `--quick` counterpart).
const LARGE_WORKLOADS: &[&str] = &["large", "tiny"];

/// `n` of the `n × n` product that measures the machine's single-thread peak.
const PEAK_SIZE: usize = 2048;

/// `n` of that product with `--quick`.
const QUICK_PEAK_SIZE: usize = 256;

/// `(name, gates)`.
const CELLS: &[(&str, usize)] = &[("lstm", 4), ("gru", 3), ("rnn_tanh", 1)];

/// The median of `values` (the mean of the middle two for an even count); `values` is not
/// empty.
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

/// The median time of `f` in milliseconds, after two warm-up calls, over at least five calls
/// and `min_seconds` (at most 200 calls).
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
    median(&times)
}

/// One measurement in every round, in round order (never empty).
#[derive(Clone)]
struct Rounds(Vec<f64>);

impl Rounds {
    /// The median over the rounds.
    fn median(&self) -> f64 {
        median(&self.0)
    }

    /// The lowest round.
    fn min(&self) -> f64 {
        self.0.iter().copied().fold(f64::INFINITY, f64::min)
    }

    /// The highest round.
    fn max(&self) -> f64 {
        self.0.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    }

    /// The farthest round from the median, in percent of the median.
    fn spread_percent(&self) -> f64 {
        let m = self.median();
        100.0 * (self.max() - m).max(m - self.min()) / m
    }

    /// Each round's value mapped by `f`.
    fn map(&self, f: impl Fn(f64) -> f64) -> Rounds {
        Rounds(self.0.iter().map(|&v| f(v)).collect())
    }

    /// The rounds' ratios `self / other`, round by round.
    fn ratios(&self, other: &Rounds) -> Rounds {
        Rounds(self.0.iter().zip(&other.0).map(|(a, b)| a / b).collect())
    }
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

/// `f` with this crate set to one thread, then back to `threads`.
fn on_one_thread<R>(threads: usize, f: impl FnOnce() -> R) -> R {
    recurrent::set_num_threads(1);
    let result = f();
    recurrent::set_num_threads(threads);
    result
}

/// Milliseconds of `matrixmultiply`'s sgemm alone (through `recurrent::gemm`, which takes its
/// own matrix-vector loop for single rows) on the products of one forward pass.
fn products_ms(
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

/// One network of this crate, built once per workload and cell and timed in every mode and
/// round.
enum Net {
    /// `lstm`.
    Lstm(Lstm<f32>),
    /// `gru`.
    Gru(Gru<f32>),
    /// `rnn_tanh`.
    Rnn(Rnn<f32>),
}

impl Net {
    /// A network of `cell` with `(I, H, layers, bidirectional)`.
    fn new(
        cell: &str,
        (i, h, layers, bi): (usize, usize, usize, bool),
        rng: &mut StdRng,
    ) -> Result<Net, Box<dyn std::error::Error>> {
        Ok(match cell {
            "lstm" => Net::Lstm(
                LstmConfig::new(i, h)
                    .with_num_layers(layers)
                    .with_bidirectional(bi)
                    .init(rng)?,
            ),
            "gru" => Net::Gru(
                GruConfig::new(i, h)
                    .with_num_layers(layers)
                    .with_bidirectional(bi)
                    .init(rng)?,
            ),
            "rnn_tanh" => Net::Rnn(
                RnnConfig::new(i, h)
                    .with_num_layers(layers)
                    .with_bidirectional(bi)
                    .init(rng)?,
            ),
            _ => return Err(format!("no cell {cell}").into()),
        })
    }

    /// Milliseconds of one `mode` call on `x`.
    fn time_ms(&self, x: &Tensor<f32>, mode: &str, min_seconds: f64) -> f64 {
        match self {
            Net::Lstm(n) => ours_ms(n, x, mode, min_seconds),
            Net::Gru(n) => ours_ms(n, x, mode, min_seconds),
            Net::Rnn(n) => ours_ms(n, x, mode, min_seconds),
        }
    }
}

/// PyTorch's side: `scripts/bench_pytorch.py --serve`, asked one JSON request per line on its
/// standard input and answering one JSON line each on its standard output (the protocol is in
/// the script's docstring). Its standard error is ours.
struct Torch {
    /// The script's process.
    child: Child,
    /// Where requests go; `None` once closed, which ends the session.
    requests: Option<ChildStdin>,
    /// Where answers come from.
    answers: BufReader<ChildStdout>,
    /// `torch.__version__`.
    version: String,
}

impl Torch {
    /// Starts the script with `python` and `threads` threads, and reads its greeting. The error
    /// says why there will be no PyTorch columns.
    fn start(python: &str, threads: usize) -> Result<Torch, String> {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/bench_pytorch.py");
        eprintln!("starting PyTorch: {python} {script} --serve");
        let mut child = Command::new(python)
            .arg(script)
            .arg("--serve")
            .arg("--threads")
            .arg(threads.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot run {python}: {e}"))?;
        let (Some(requests), Some(answers)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("no pipe to PyTorch's script".into());
        };
        let mut torch = Torch {
            child,
            requests: Some(requests),
            answers: BufReader::new(answers),
            version: String::new(),
        };
        let greeting = torch.read_answer("to start").inspect_err(|_| {
            // it may be something else than the script, still running
            let _ = torch.child.kill();
        })?;
        torch.version = greeting["torch_version"]
            .as_str()
            .ok_or_else(|| format!("PyTorch's script started without a torch_version: {greeting}"))?
            .to_string();
        Ok(torch)
    }

    /// Reads one answer, an error if the script says so or stopped (`what`: "to start", or
    /// "to answer" a request).
    fn read_answer(&mut self, what: &str) -> Result<Value, String> {
        let mut line = String::new();
        match self.answers.read_line(&mut line) {
            Ok(0) => {
                // its standard output is closed: it is exiting
                let status = self
                    .child
                    .wait()
                    .map_or_else(|e| e.to_string(), |s| s.to_string());
                return Err(format!(
                    "PyTorch's script failed {what}: it ended ({status}; its messages are above)"
                ));
            }
            Err(e) => {
                return Err(format!(
                    "PyTorch's script failed {what}: cannot read it: {e}"
                ))
            }
            Ok(_) => {}
        }
        let answer: Value = serde_json::from_str(line.trim())
            .map_err(|e| format!("PyTorch's script failed {what}: no JSON ({e}): {line}"))?;
        match answer.get("error") {
            Some(err) => Err(format!("PyTorch's script failed {what}: {err}")),
            None => Ok(answer),
        }
    }

    /// Sends `request` and returns the number `key` of its answer.
    fn ask(&mut self, request: &Value, key: &str) -> Result<f64, String> {
        let requests = self
            .requests
            .as_mut()
            .ok_or("PyTorch's session is closed")?;
        writeln!(requests, "{request}")
            .and_then(|()| requests.flush())
            .map_err(|e| format!("cannot send {request} to PyTorch's script: {e}"))?;
        let answer = self.read_answer(&format!("to answer {request}"))?;
        answer[key]
            .as_f64()
            .ok_or_else(|| format!("PyTorch's answer to {request} has no number {key}: {answer}"))
    }

    /// Milliseconds of one `mode` call of PyTorch's `cell` on `workload`.
    fn time_ms(
        &mut self,
        &(_, t, b, i, h, layers, bi): &Workload,
        cell: &str,
        mode: &str,
        min_seconds: f64,
    ) -> Result<f64, String> {
        let request = json!({
            "op": "time", "cell": cell, "mode": mode, "T": t, "B": b, "I": i, "H": h,
            "layers": layers, "bidirectional": bi, "min_seconds": min_seconds,
        });
        self.ask(&request, "ms")
    }

    /// Milliseconds of `torch.matmul` of two `n × n` matrices on one thread.
    fn matmul_ms(&mut self, n: usize, min_seconds: f64) -> Result<f64, String> {
        self.ask(
            &json!({"op": "matmul", "n": n, "min_seconds": min_seconds}),
            "ms",
        )
    }
}

impl Drop for Torch {
    /// Ends the session (the script exits at the end of its input) and waits for the script.
    fn drop(&mut self) {
        self.requests.take();
        let _ = self.child.wait();
    }
}

/// PyTorch's session, unless `--no-pytorch`, or `--quick` without `--python`, or it cannot
/// start (then it says why on standard error).
fn start_torch(args: &Args) -> Option<Torch> {
    if args.no_pytorch || args.quick && args.python.is_none() {
        return None;
    }
    let python = args.python.as_deref().unwrap_or("python3");
    Torch::start(python, args.threads)
        .inspect_err(|e| eprintln!("PyTorch columns left empty: {e}"))
        .ok()
}

/// Runs `ours` and `theirs` (when there is a PyTorch) once per round, one right after the
/// other, PyTorch first in odd rounds; returns the two series of milliseconds.
fn alternate(
    rounds: usize,
    torch: &mut Option<Torch>,
    mut ours: impl FnMut() -> f64,
    mut theirs: impl FnMut(&mut Torch) -> Result<f64, String>,
) -> Result<(Rounds, Option<Rounds>), String> {
    let mut our_ms = Vec::new();
    let mut their_ms = Vec::new();
    for round in 0..rounds {
        let torch_first = round % 2 == 1;
        if let (true, Some(torch)) = (torch_first, torch.as_mut()) {
            their_ms.push(theirs(torch)?);
        }
        our_ms.push(ours());
        if let (false, Some(torch)) = (torch_first, torch.as_mut()) {
            their_ms.push(theirs(torch)?);
        }
    }
    let theirs = (!their_ms.is_empty()).then_some(Rounds(their_ms));
    Ok((Rounds(our_ms), theirs))
}

/// The machine's single-thread f32 GEMM peak: both libraries on one `n × n` product, in
/// GFLOP/s per round.
struct Peak {
    /// `n`.
    n: usize,
    /// `matrixmultiply`'s sgemm through `recurrent::gemm`.
    ours: Rounds,
    /// `torch.matmul`, when PyTorch runs.
    torch: Option<Rounds>,
}

impl Peak {
    /// Measures it in `rounds` rounds alternating the two libraries; every time goes to
    /// `timings`.
    fn measure(
        n: usize,
        rounds: usize,
        min_seconds: f64,
        torch: &mut Option<Torch>,
        timings: &mut Vec<(String, f64)>,
    ) -> Result<Peak, String> {
        let rng = &mut StdRng::seed_from_u64(3);
        let a = Tensor::<f32>::randn(&[n, n], rng).into_vec();
        let b = Tensor::<f32>::randn(&[n, n], rng).into_vec();
        let mut c = vec![0.0f32; n * n];
        let (ours, theirs) = alternate(
            rounds,
            torch,
            || {
                median_ms(min_seconds, || {
                    let (am, bm) = (MatRef::new(&a, n, n), MatRef::new(&b, n, n));
                    gemm(1.0, am, bm, 0.0, MatMut::new(&mut c, n, n));
                })
            },
            |torch| torch.matmul_ms(n, min_seconds),
        )?;
        timings.extend(ours.0.iter().map(|&ms| (format!("peak {n}² gemm"), ms)));
        let gflops = |ms: f64| 2.0 * (n as f64).powi(3) / ms / 1e6;
        Ok(Peak {
            n,
            ours: ours.map(gflops),
            torch: theirs.map(|t| t.map(gflops)),
        })
    }

    /// The peak: the larger median of the two libraries, GFLOP/s.
    fn gflops(&self) -> f64 {
        let theirs = self.torch.as_ref().map_or(0.0, Rounds::median);
        self.ours.median().max(theirs)
    }

    /// Which library set the peak.
    fn source(&self) -> &'static str {
        if self.torch.as_ref().map_or(0.0, Rounds::median) > self.ours.median() {
            "torch.matmul"
        } else {
            "matrixmultiply"
        }
    }

    /// The header line.
    fn describe(&self) -> String {
        let rate = |r: &Rounds| format!("{:.1} GFLOP/s ±{:.0}%", r.median(), r.spread_percent());
        format!(
            "single-thread f32 GEMM peak on one {n}×{n} product (2·n³ flops): matrixmultiply {}, \
             torch.matmul {}; peak = the larger: {:.1} GFLOP/s ({})",
            rate(&self.ours),
            self.torch.as_ref().map_or("(not run)".to_string(), rate),
            self.gflops(),
            self.source(),
            n = self.n,
        )
    }

    /// Its JSON.
    fn to_json(&self) -> Value {
        json!({
            "n": self.n,
            "threads": 1,
            "matrixmultiply_gflops": self.ours.median(),
            "matrixmultiply_gflops_rounds": self.ours.0,
            "torch_matmul_gflops": self.torch.as_ref().map(Rounds::median),
            "torch_matmul_gflops_rounds": self.torch.as_ref().map(|t| &t.0),
            "peak_gflops": self.gflops(),
            "peak_source": self.source(),
        })
    }
}

/// One entry of the table: a workload, cell and mode, timed in every round.
struct Row {
    /// The workload's name.
    workload: &'static str,
    /// `lstm`, `gru` or `rnn_tanh`.
    cell: &'static str,
    /// `infer`, `forward` or `train`.
    mode: &'static str,
    /// FLOPs of one call.
    flops: f64,
    /// This crate's milliseconds per round.
    ours: Rounds,
    /// PyTorch's milliseconds per round, when it runs.
    torch: Option<Rounds>,
    /// GFLOP/s of `matrixmultiply` alone on the workload's forward products (the crate's
    /// matrix-vector loop for single rows).
    products_gflops: f64,
    /// The machine's single-thread peak, GFLOP/s.
    peak_gflops: f64,
}

/// The table's columns: heading and width (the first three are left-aligned).
const COLUMNS: [(&str, usize); 13] = [
    ("workload", 8),
    ("cell", 9),
    ("mode", 7),
    ("ours ms", 10),
    ("±", 5),
    ("GFLOP/s", 8),
    ("torch ms", 10),
    ("±", 5),
    ("GFLOP/s", 8),
    ("speedup", 7),
    ("min-max", 12),
    ("mm GF/s", 8),
    ("% peak", 6),
];

/// One line of the table from its cells, in the order of [`COLUMNS`].
fn table_line(cells: &[String]) -> String {
    aligned_line(cells, &COLUMNS)
}

/// `cells` padded to the widths of `columns`, the first three left-aligned, the others right.
fn aligned_line(cells: &[String], columns: &[(&str, usize)]) -> String {
    let padded: Vec<String> = cells
        .iter()
        .zip(columns)
        .enumerate()
        .map(|(k, (cell, &(_, width)))| {
            if k < 3 {
                format!("{cell:<width$}")
            } else {
                format!("{cell:>width$}")
            }
        })
        .collect();
    padded.join(" ")
}

/// A value with `decimals` decimals, or `-` when there is none.
fn or_dash(value: Option<f64>, decimals: usize) -> String {
    value.map_or("-".to_string(), |v| format!("{v:.decimals$}"))
}

impl Row {
    /// GFLOP/s of a call taking `ms` milliseconds.
    fn gflops(&self, ms: f64) -> f64 {
        self.flops / 1e6 / ms
    }

    /// PyTorch's time over ours, round by round (above 1: this crate is faster).
    fn speedups(&self) -> Option<Rounds> {
        Some(self.torch.as_ref()?.ratios(&self.ours))
    }

    /// A call taking `ms` milliseconds against the single-thread peak, in percent.
    fn percent_of_peak(&self, ms: f64) -> f64 {
        100.0 * self.gflops(ms) / self.peak_gflops
    }

    /// `workload cell mode`.
    fn name(&self) -> String {
        format!("{} {} {}", self.workload, self.cell, self.mode)
    }

    /// Its line of the table.
    fn line(&self) -> String {
        let ours = self.ours.median();
        let theirs = self.torch.as_ref().map(Rounds::median);
        let speedups = self.speedups();
        table_line(&[
            self.workload.to_string(),
            self.cell.to_string(),
            self.mode.to_string(),
            format!("{ours:.3}"),
            format!("±{:.0}%", self.ours.spread_percent()),
            format!("{:.1}", self.gflops(ours)),
            or_dash(theirs, 3),
            self.torch
                .as_ref()
                .map_or("-".into(), |t| format!("±{:.0}%", t.spread_percent())),
            or_dash(theirs.map(|t| self.gflops(t)), 1),
            or_dash(speedups.as_ref().map(Rounds::median), 2),
            speedups
                .as_ref()
                .map_or("-".into(), |s| format!("{:.2}-{:.2}", s.min(), s.max())),
            format!("{:.1}", self.products_gflops),
            format!("{:.0}%", self.percent_of_peak(ours)),
        ])
    }

    /// Its JSON: medians over the rounds, spreads in percent, and every round.
    fn to_json(&self, threads: usize) -> Value {
        let ours = self.ours.median();
        let theirs = self.torch.as_ref().map(Rounds::median);
        let speedups = self.speedups();
        json!({
            "workload": self.workload, "cell": self.cell, "mode": self.mode, "threads": threads,
            "ours_ms": ours, "ours_ms_rounds": self.ours.0,
            "ours_spread_percent": self.ours.spread_percent(), "ours_gflops": self.gflops(ours),
            "torch_ms": theirs, "torch_ms_rounds": self.torch.as_ref().map(|t| &t.0),
            "torch_spread_percent": self.torch.as_ref().map(Rounds::spread_percent),
            "torch_gflops": theirs.map(|t| self.gflops(t)),
            "speedup": speedups.as_ref().map(Rounds::median),
            "speedup_rounds": speedups.as_ref().map(|s| &s.0),
            "speedup_min": speedups.as_ref().map(Rounds::min),
            "speedup_max": speedups.as_ref().map(Rounds::max),
            "matrixmultiply_products_gflops": self.products_gflops,
            "percent_of_peak": self.percent_of_peak(ours),
            "torch_percent_of_peak": theirs.map(|t| self.percent_of_peak(t)),
        })
    }
}

/// The closing summary: one line per part and the JSON of every part.
fn summary(rows: &[Row]) -> (Vec<String>, Value) {
    let parts = [
        ("slower_than_torch", slower_summary(rows)),
        ("lstm_speedup", lstm_summary(rows)),
        ("stream_speedups", stream_summary(rows)),
        ("large_percent_of_peak", large_summary(rows)),
    ];
    let lines = parts.iter().map(|(_, (line, _))| line.clone()).collect();
    let json = parts
        .into_iter()
        .map(|(key, (_, value))| (key.to_string(), value))
        .collect::<serde_json::Map<_, _>>();
    (lines, Value::Object(json))
}

/// The rows slower than PyTorch (median speedup below 1), and those of them that straddle 1.0
/// (a round where this crate was faster).
fn slower_summary(rows: &[Row]) -> (String, Value) {
    let speedups: Vec<(&Row, Rounds)> = rows
        .iter()
        .filter_map(|r| Some((r, r.speedups()?)))
        .collect();
    let slower: Vec<&(&Row, Rounds)> = speedups.iter().filter(|(_, s)| s.median() < 1.0).collect();
    let straddling: Vec<String> = slower
        .iter()
        .filter(|(_, s)| s.max() > 1.0)
        .map(|(r, _)| r.name())
        .collect();
    let line = if speedups.is_empty() {
        "slower than PyTorch: not measured (PyTorch not run)".to_string()
    } else {
        format!(
            "slower than PyTorch (median speedup below 1): {} of {} rows, {} of them with \
             rounds on both sides of 1.0{}",
            slower.len(),
            speedups.len(),
            straddling.len(),
            if straddling.is_empty() {
                String::new()
            } else {
                format!(": {}", straddling.join(", "))
            }
        )
    };
    let compared = !speedups.is_empty();
    let json = json!({
        "compared_rows": speedups.len(),
        "slower": compared.then_some(slower.len()),
        "straddling_one": compared.then_some(straddling),
    });
    (line, json)
}

/// The median of the LSTM rows' speedups.
fn lstm_summary(rows: &[Row]) -> (String, Value) {
    let lstm = Rounds(
        rows.iter()
            .filter(|r| r.cell == "lstm")
            .filter_map(|r| Some(r.speedups()?.median()))
            .collect(),
    );
    if lstm.0.is_empty() {
        return ("LSTM rows: no speedup measured".to_string(), Value::Null);
    }
    let line = format!(
        "LSTM rows: median speedup {:.2} over {} rows (rows from {:.2} to {:.2})",
        lstm.median(),
        lstm.0.len(),
        lstm.min(),
        lstm.max()
    );
    let json = json!({
        "median": lstm.median(), "rows": lstm.0.len(), "min": lstm.min(), "max": lstm.max(),
    });
    (line, json)
}

/// The LSTM and GRU speedups of the batch-1 stream workload, with their ranges.
fn stream_summary(rows: &[Row]) -> (String, Value) {
    let stream: Vec<&Row> = rows
        .iter()
        .filter(|r| STREAM_WORKLOADS.contains(&r.workload) && ["lstm", "gru"].contains(&r.cell))
        .collect();
    let Some(first) = stream.first() else {
        return (
            "speedups at batch 1: no batch-1 workload run".to_string(),
            json!([]),
        );
    };
    let quoted: Vec<String> = stream
        .iter()
        .map(|r| {
            let s = r.speedups();
            let range = s.as_ref().map_or(String::new(), |s| {
                format!(" ({:.2}-{:.2})", s.min(), s.max())
            });
            let speedup = or_dash(s.as_ref().map(Rounds::median), 2);
            format!("{} {} {speedup}{range}", r.cell, r.mode)
        })
        .collect();
    let line = format!(
        "speedups at batch 1 ({}): {}",
        first.workload,
        quoted.join(", ")
    );
    let json = stream
        .iter()
        .map(|r| {
            let s = r.speedups();
            json!({
                "workload": r.workload, "cell": r.cell, "mode": r.mode,
                "speedup": s.as_ref().map(Rounds::median),
                "speedup_min": s.as_ref().map(Rounds::min),
                "speedup_max": s.as_ref().map(Rounds::max),
            })
        })
        .collect();
    (line, json)
}

/// The large workload's share of the single-thread peak, this crate's and PyTorch's.
fn large_summary(rows: &[Row]) -> (String, Value) {
    let large: Vec<&Row> = rows
        .iter()
        .filter(|r| LARGE_WORKLOADS.contains(&r.workload))
        .collect();
    let Some(first) = large.first() else {
        return (
            "% of the single-thread peak: no large workload run".to_string(),
            json!([]),
        );
    };
    let shares = |r: &Row| {
        let theirs = r.torch.as_ref().map(|t| r.percent_of_peak(t.median()));
        (r.percent_of_peak(r.ours.median()), theirs)
    };
    let quoted: Vec<String> = large
        .iter()
        .map(|r| {
            let (ours, theirs) = shares(r);
            let theirs = theirs.map_or("-".to_string(), |p| format!("{p:.0}%"));
            format!("{} {} {ours:.0}%/{theirs}", r.cell, r.mode)
        })
        .collect();
    let line = format!(
        "% of the single-thread peak ({}, ours/PyTorch): {}",
        first.workload,
        quoted.join(", ")
    );
    let json = large
        .iter()
        .map(|r| {
            let (ours, theirs) = shares(r);
            json!({
                "workload": r.workload, "cell": r.cell, "mode": r.mode,
                "ours": ours, "torch": theirs,
            })
        })
        .collect();
    (line, json)
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

/// The widest vectors the CPU offers, detected at run time, and whether `avx512f` is among
/// them (`None` off x86-64).
fn vector_width() -> (&'static str, Option<bool>) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            ("512-bit (avx512f detected)", Some(true))
        } else if std::arch::is_x86_feature_detected!("avx2") {
            ("256-bit (avx2, no avx512f detected)", Some(false))
        } else {
            ("128-bit (neither avx2 nor avx512f detected)", Some(false))
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        ("not x86-64 (no avx512f)", None)
    }
}

/// The lines that explain the table, printed above it.
const LEGEND: &[&str] = &[
    "ms: median over the rounds (each round: the median of repeated calls); ±: the farthest \
     round from it",
    "speedup: PyTorch's time over ours (above 1: this crate is faster), the median of the \
     rounds' ratios; min-max: their range",
    "mm GF/s: matrixmultiply alone on the workload's forward products, one thread (at batch 1 \
     the crate's matrix-vector loop)",
    "% peak: our GFLOP/s against the single-thread peak above (with more threads it can pass \
     100%)",
];

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The whole run, `--memory` or the table.
fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    recurrent::set_num_threads(args.threads);
    if let Some(case) = &args.memory_case {
        return memory_case(case);
    }
    if args.memory {
        return memory(args.threads);
    }
    let mut torch = start_torch(&args);
    let torch_version = torch.as_ref().map(|t| t.version.clone());
    let (rounds, min_seconds) = (args.rounds(), args.min_seconds());
    let cpu = cpu_name();
    let (vectors, avx512f) = vector_width();
    println!(
        "recurrent {} against PyTorch {}, {} thread(s), {rounds} round(s) per entry \
         alternating the two, each over at least {min_seconds} s",
        env!("CARGO_PKG_VERSION"),
        torch_version.as_deref().unwrap_or("(not run)"),
        args.threads
    );
    println!("CPU: {cpu}, vectors: {vectors}");
    // every time measured, for the check of --quick
    let mut timings: Vec<(String, f64)> = Vec::new();
    // the single-thread peak: `recurrent::gemm` splits large products over two threads
    let peak = on_one_thread(args.threads, || {
        Peak::measure(
            args.peak_size(),
            rounds,
            min_seconds,
            &mut torch,
            &mut timings,
        )
    })?;
    println!("{}", peak.describe());
    for line in LEGEND {
        println!("{line}");
    }
    println!(
        "{}",
        table_line(&COLUMNS.map(|(heading, _)| heading.to_string()))
    );
    let mut rows = Vec::new();
    let rng = &mut StdRng::seed_from_u64(1);
    for workload @ &(name, t, b, i, h, layers, bi) in args.workloads() {
        if !args.only.is_empty() && !args.only.iter().any(|o| o == name) {
            continue;
        }
        let x = Tensor::<f32>::randn(&[t, b, i], rng);
        for &(cell, g) in CELLS {
            let fwd = forward_flops(t, b, i, h, layers, bi, g);
            let mm_ms = on_one_thread(args.threads, || {
                products_ms(min_seconds, (t, b, i, h, layers, bi), g)
            });
            timings.push((format!("{name} {cell} products"), mm_ms));
            let net = Net::new(cell, (i, h, layers, bi), rng)?;
            for &mode in MODES {
                let (ours, theirs) = alternate(
                    rounds,
                    &mut torch,
                    || net.time_ms(&x, mode, min_seconds),
                    |torch| torch.time_ms(workload, cell, mode, min_seconds),
                )?;
                let what = format!("{name} {cell} {mode}");
                timings.extend(ours.0.iter().map(|&ms| (format!("{what} ours"), ms)));
                if let Some(theirs) = &theirs {
                    timings.extend(theirs.0.iter().map(|&ms| (format!("{what} torch"), ms)));
                }
                let row = Row {
                    workload: name,
                    cell,
                    mode,
                    flops: if mode == "train" { 3.0 * fwd } else { fwd },
                    ours,
                    torch: theirs,
                    products_gflops: fwd / 1e6 / mm_ms,
                    peak_gflops: peak.gflops(),
                };
                println!("{}", row.line());
                rows.push(row);
            }
        }
    }
    drop(torch);
    let mut variant_rows = Vec::new();
    if !args.no_variants {
        println!("LSTM variants PyTorch does not have, against this crate's LSTM (× lstm: time ratio, median of the rounds; forward and train in training mode)");
        println!(
            "{}",
            aligned_line(
                &variants::HEADING.map(|(heading, _)| heading.to_string()),
                &variants::HEADING
            )
        );
        let rng = &mut StdRng::seed_from_u64(2);
        for workload @ &(name, t, b, i, ..) in args.workloads() {
            if !args.only.is_empty() && !args.only.iter().any(|o| o == name) {
                continue;
            }
            let x = Tensor::<f32>::randn(&[t, b, i], rng);
            let timing = (rounds, min_seconds);
            variant_rows.extend(variants::measure(workload, &x, timing, rng, &mut timings)?);
        }
    }
    let (mut summary_lines, summary_json) = summary(&rows);
    let (variants_line, variants_json) = variants::summary(&variant_rows);
    if !variant_rows.is_empty() {
        summary_lines.push(variants_line);
    }
    println!("summary:");
    for line in &summary_lines {
        println!("  {line}");
    }
    let report = json!({
        "crate_version": env!("CARGO_PKG_VERSION"),
        "torch_version": torch_version,
        "threads": args.threads,
        "rounds": rounds,
        "min_seconds": min_seconds,
        "cpu": cpu,
        "vectors": vectors,
        "avx512f": avx512f,
        "peak": peak.to_json(),
        "rows": rows.iter().map(|r| r.to_json(args.threads)).collect::<Vec<_>>(),
        "summary": summary_json,
        "variants": variant_rows.iter().map(variants::VariantRow::to_json).collect::<Vec<_>>(),
        "variants_summary": variants_json,
    });
    std::fs::write(&args.json, serde_json::to_string_pretty(&report)?)
        .map_err(|e| format!("cannot write {}: {e}", args.json))?;
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
