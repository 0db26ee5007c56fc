//! Vanilla RNN, LSTM and GRU side by side, with the same settings, on sequence tasks of growing
//! difficulty — and how far back each one's gradient reaches.
//!
//! ```sh
//! cargo run --release --example ex_03_sequence_comparison            # about 10 minutes
//! cargo run --release --example ex_03_sequence_comparison -- --quick  # a reduced run
//! # the adding problem up to T = 200 (about 25 minutes on 2 cores)
//! cargo run --release --example ex_03_sequence_comparison -- --lengths 10,25,50,100,200
//! ```
//!
//! The experiments of the course exercise, then two beyond it:
//!
//! 1. **Sine**: predict the next sample of a sine wave from the 20 before it (979 windows,
//!    783 train / 196 test, hidden 10, 50 epochs, learning rate 0.01).
//! 2. **Long-term dependency**: `y_t = x_0 · x_t` with `x ~ U(0, 1)` over 50 steps (160 training
//!    and 40 test sequences, hidden 20, 100 epochs): every output needs the first input.
//! 3. **Speed**: seconds for the same training budget (the sine task, hidden 10, 20 epochs).
//! 4. **Gradient flow**: target `x_0` after 100 steps (50 sequences, hidden 5), the norm of
//!    `∂L/∂h_t` at every step and its mean per epoch.
//! 5. **The adding problem** over lengths 10, 25, 50, 100 (and 200 with `--lengths`; hidden 128,
//!    batch 64, Adam 1e-3, gradient clipping at norm 1, the same budget of 4,000 steps for all
//!    three, two seeds): the input is a sequence of random values with two of them marked, the
//!    target their sum. Always predicting the mean scores about 0.167 MSE; below 0.01 the task
//!    is solved, and a run stops at the first test evaluation (every 100 steps) below 0.01
//!    unless `--full-budget` is given. Two runs train at a time, one per core (`--jobs`,
//!    `--threads`).
//! 6. **Vanishing gradients, measured**: `‖∂L/∂h_t‖` against the distance from the loss on the
//!    adding problem at T = 100, in f64, at initialisation and after training.
//!
//! Experiments 4–6 also run three LSTM variants PyTorch does not have, as extra rows: the
//! peephole LSTM (Gers & Schmidhuber 2000), the layer-normalised LSTM (Ba, Kiros & Hinton 2016)
//! and the LSTM with variational recurrent dropout (Gal & Ghahramani 2016; probability 0.25 on
//! `h`, none on the input, whose marker feature a dropped mask would hide for a whole
//! sequence). `--cells` picks the cells of experiments 4–6.
//!
//! What differs from the original exercise, and why:
//!
//! - The original computes the gradient flow for the vanilla RNN only and *fakes* it for LSTM
//!   and GRU (multiplying by 0.5 and 0.6 per step); its conclusions are constant sentences.
//!   Here every number is measured, with real backpropagation through time for all three cells:
//!   the gradient is carried back one step at a time through each cell's own backward
//!   ([`Cell::backward`]), and the example checks that this step-by-step chain gives the same
//!   gradient as the network's fused backward pass.
//! - The original trains sample by sample with plain SGD and a backward pass that is not true
//!   BPTT; here the crate's analytic BPTT trains mini-batches (32 sequences) with Adam at the
//!   exercise's learning rate, 0.01.
//! - The sine wave spans `[0, 20π]` with 1,000 samples (the exercise gives only the count).
//! - The gradient-flow task's inputs are standard normal, as in ex_01's memory task.
//! - The adding problem (from the exercise's sequel) and the gradient ratios on it are new:
//!   they show where each architecture stops learning, which the exercise only asserts.

#[path = "../support/mod.rs"]
mod support;

use std::error::Error;

use clap::Parser;
use support::{section, CommonArgs};

use adding::adding_problem;
use exercise::{product, sine, speed};
use gradients::{gradient_flow, vanishing};

#[derive(Parser, Debug, Clone)]
#[command(about = "Vanilla RNN, LSTM and GRU compared on sequence tasks of growing length")]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Lengths of the adding problem.
    #[arg(long, value_delimiter = ',', default_value = "10,25,50,100")]
    lengths: Vec<usize>,
    /// Seeds of the adding problem per length and architecture.
    #[arg(long, default_value_t = 2)]
    seeds: u64,
    /// The cells of the gradient-flow, adding-problem and vanishing-gradient experiments
    /// (the exercise's three and the LSTM variants).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "rnn,lstm,gru,peephole,layer-norm,lstm-dropout"
    )]
    cells: Vec<Arch>,
    /// Training steps of the adding problem (the same budget for all architectures).
    #[arg(long, default_value_t = 4000)]
    steps: usize,
    /// Spend the whole budget of every adding-problem run, even after it is solved (by default
    /// a run stops at the first evaluation with a test MSE below 0.01).
    #[arg(long)]
    full_budget: bool,
    /// Adding-problem runs trained at the same time.
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Threads each adding-problem run may use (`recurrent::set_num_threads`).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// The experiments to run (the vanishing-gradient measurement comes with `adding`).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "sine,product,speed,flow,adding"
    )]
    only: Vec<Experiment>,
}

/// The experiments, for `--only`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Experiment {
    Sine,
    Product,
    Speed,
    Flow,
    Adding,
}

/// The architectures compared: the exercise's three, and three LSTM variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
enum Arch {
    Rnn,
    Lstm,
    Gru,
    /// The peephole LSTM.
    Peephole,
    /// The layer-normalised LSTM.
    LayerNorm,
    /// The LSTM with variational recurrent dropout.
    LstmDropout,
}

impl Arch {
    /// The exercise's three cells, those of experiments 1–3.
    const COURSE: [Arch; 3] = [Arch::Rnn, Arch::Lstm, Arch::Gru];

    fn label(self) -> &'static str {
        match self {
            Arch::Rnn => "RNN",
            Arch::Lstm => "LSTM",
            Arch::Gru => "GRU",
            Arch::Peephole => "peephole LSTM",
            Arch::LayerNorm => "LN-LSTM",
            Arch::LstmDropout => "LSTM + VD",
        }
    }

    /// The colour of its lines in the charts (the same in every chart).
    fn colour(self) -> usize {
        self as usize
    }
}

/// The variational recurrent dropout of [`Arch::LstmDropout`].
const RECURRENT_DROPOUT: f64 = 0.25;

/// Runs `$body` with `$net` bound to a new one-layer network of `$arch` (`RnnConfig`,
/// `LstmConfig`, `GruConfig`, `PeepholeLstmConfig` or `LayerNormLstmConfig`) in precision
/// `$t`: they are different types, and the experiments are generic over them.
macro_rules! with_network {
    ($arch:expr, $t:ty, $input:expr, $hidden:expr, $seed:expr, |$net:ident| $body:expr) => {
        match $arch {
            $crate::Arch::Rnn => {
                let $net = recurrent::RnnConfig::new($input, $hidden).init_seeded::<$t>($seed)?;
                $body
            }
            $crate::Arch::Lstm => {
                let $net = recurrent::LstmConfig::new($input, $hidden).init_seeded::<$t>($seed)?;
                $body
            }
            $crate::Arch::Gru => {
                let $net = recurrent::GruConfig::new($input, $hidden).init_seeded::<$t>($seed)?;
                $body
            }
            $crate::Arch::Peephole => {
                let $net =
                    recurrent::PeepholeLstmConfig::new($input, $hidden).init_seeded::<$t>($seed)?;
                $body
            }
            $crate::Arch::LayerNorm => {
                let $net = recurrent::LayerNormLstmConfig::new($input, $hidden)
                    .init_seeded::<$t>($seed)?;
                $body
            }
            $crate::Arch::LstmDropout => {
                let $net = recurrent::LstmConfig::new($input, $hidden)
                    .with_variational_dropout(0.0, $crate::RECURRENT_DROPOUT)
                    .init_seeded::<$t>($seed)?;
                $body
            }
        }
    };
}

mod adding;
mod exercise;
mod gradients;

/// What the experiments return: their result, or an error that ends the run.
type Res<T = ()> = Result<T, Box<dyn Error>>;

fn main() -> Res {
    let args = Args::parse();
    let dir = args.common.out_dir("ex_03_sequence_comparison")?;
    let quick = args.common.quick;
    let seed = args.common.seed;
    let mut tables = Vec::new();
    let run = |e: Experiment| args.only.contains(&e);

    if run(Experiment::Sine) {
        section(
            "1. Sine",
            "Each cell predicts the next sample of a sine wave from the 20 before it.",
        );
        tables.push(sine(&dir, quick, seed)?);
    }
    if run(Experiment::Product) {
        section(
            "2. Long-term dependency",
            "y_t = x_0 · x_t over 50 steps: every output needs the first input, 50 steps back.",
        );
        tables.push(product(&dir, quick, seed)?);
    }
    if run(Experiment::Speed) {
        section(
            "3. Speed",
            "Seconds for the same training budget: the sine task, hidden 10, 20 epochs.",
        );
        tables.push(speed(&dir, quick, seed)?);
    }
    if run(Experiment::Flow) {
        section(
            "4. Gradient flow",
            "Target x_0 after 100 steps: the norm of dL/dh_t at every step, carried back one step \
             at a time through each cell's own backward pass.",
        );
        tables.push(gradient_flow(&dir, &args.cells, quick, seed)?);
    }
    if run(Experiment::Adding) {
        section(
            "5. The adding problem",
            "The sum of the two marked values of a random sequence, over growing lengths: where \
             does each architecture stop learning? (Always predicting the mean scores ~0.167.)",
        );
        let adding = adding_problem(&args, &dir)?;

        section(
            "6. Vanishing gradients, measured",
            &format!(
                "‖dL/dh_t‖ on the adding problem at T = {}, in f64, against the distance from \
                 the loss, at initialisation and after training.",
                adding.length
            ),
        );
        tables.push(vanishing(&dir, &adding, seed)?);
        tables.push(adding.table);
        tables.push(adding.speed);
    }

    support::report::finish(&dir, &tables)?;
    Ok(())
}
