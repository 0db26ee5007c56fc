//! Experiment 5: the adding problem over growing lengths, several seeds, runs in parallel.

use std::path::Path;
use std::time::Instant;

use recurrent::rand::{rngs::StdRng, SeedableRng};
use recurrent::{
    clip_grad_norm, mse_loss, AdamConfig, LastStep, Layer, LinearConfig, Mode, NamedTensors,
    Optimizer, Parameters,
};

use crate::support::chart::{save_grid, Chart, Mark};
use crate::support::progress;
use crate::support::report::{sig, Table};
use crate::{Arch, Args, Res};

// ───────────────────────────── 5. the adding problem ─────────────────────────────

/// The data, shared with `custom_cell`.
pub(crate) use crate::support::tasks::adding_data;

/// One training run of the adding problem.
struct Run {
    arch: Arch,
    steps: usize,
    seed: u64,
    /// `(training step, test MSE)` every 100 steps and at the end.
    curve: Vec<(f64, f64)>,
    /// The first step whose test MSE was below 0.01.
    solved_at: Option<usize>,
    /// Seconds of training (test evaluations excluded).
    seconds: f64,
    /// Training steps taken.
    trained: usize,
    /// The parameters at the end, by name.
    params: NamedTensors<f32>,
}

/// Trains one architecture on the adding problem of length `steps`.
fn adding_run(
    arch: Arch,
    steps: usize,
    seed: u64,
    args: &Args,
    bar: &indicatif::ProgressBar,
) -> Res<Run> {
    const EVAL_EVERY: usize = 100;
    let mut test_rng = StdRng::seed_from_u64(12345 + steps as u64);
    let (test_x, test_y) = adding_data::<f32>(1000, steps, &mut test_rng)?;
    let mut rng = StdRng::seed_from_u64(1000 + seed);
    with_network!(arch, f32, 2, 128, seed, |net| {
        let mut model = net
            .then(LastStep)
            .then(LinearConfig::new(128, 1).init_seeded(seed + 1)?);
        let mut adam = AdamConfig::new(1e-3).init()?;
        let (mut curve, mut solved_at, mut seconds, mut trained) = (Vec::new(), None, 0.0, 0);
        while trained < args.steps {
            let start = Instant::now();
            let chunk = EVAL_EVERY.min(args.steps - trained);
            for _ in 0..chunk {
                let (x, y) = adding_data::<f32>(64, steps, &mut rng)?;
                let (out, trace) = model.forward(
                    &x,
                    Mode::Train {
                        seed: trained as u64,
                    },
                )?;
                let loss = mse_loss(&out, &y)?;
                let mut grads = model.backward(&trace, &loss.grad)?.params;
                clip_grad_norm(&mut grads, 1.0)?;
                adam.step(&mut model, &grads)?;
                trained += 1;
            }
            seconds += start.elapsed().as_secs_f64();
            bar.inc(chunk as u64);
            let mse = f64::from(mse_loss(&model.infer(&test_x)?, &test_y)?.value);
            curve.push((trained as f64, mse));
            if mse < 0.01 && solved_at.is_none() {
                solved_at = Some(trained);
                if !args.full_budget {
                    bar.inc((args.steps - trained) as u64);
                    break;
                }
            }
        }
        Ok(Run {
            arch,
            steps,
            seed,
            curve,
            solved_at,
            seconds,
            trained,
            params: model.state_dict(),
        })
    })
}

/// What the adding problem gave: its tables, and the trained parameters of the first seed at
/// the length the vanishing-gradient measurement uses.
pub(crate) struct Adding {
    /// Final MSE and steps to solve, per length and architecture.
    pub(crate) table: Table,
    /// Time per training step, per length and architecture.
    pub(crate) speed: Table,
    /// The length the vanishing-gradient measurement uses (100, or the longest one trained).
    pub(crate) length: usize,
    /// Each architecture's trained parameters at that length (first seed).
    pub(crate) trained: Vec<(Arch, NamedTensors<f32>)>,
}

/// Every architecture at every length with every seed, `args.jobs` runs at a time.
pub(crate) fn adding_problem(args: &Args, dir: &Path) -> Res<Adding> {
    let (lengths, seeds) = if args.common.quick {
        (vec![10, 25], 1)
    } else {
        (args.lengths.clone(), args.seeds)
    };
    let budget = if args.common.quick {
        args.steps.min(300)
    } else {
        args.steps
    };
    let args = Args {
        steps: budget,
        ..args.clone()
    };
    let mut jobs: Vec<(Arch, usize, u64)> = lengths
        .iter()
        .flat_map(|&t| {
            args.cells
                .iter()
                .flat_map(move |&a| (0..seeds).map(move |s| (a, t, s)))
        })
        .collect();
    // longest first, so that the runs finish together
    let cost = |a: Arch, t: usize| {
        t * match a {
            Arch::Rnn => 1,
            Arch::Gru => 3,
            Arch::Lstm | Arch::LstmDropout => 4,
            Arch::Peephole => 5,
            Arch::LayerNorm => 6,
        }
    };
    jobs.sort_by_key(|&(a, t, _)| std::cmp::Reverse(cost(a, t)));
    println!(
        "  {} runs of up to {budget} steps ({} at a time, {} thread(s) each){}",
        jobs.len(),
        args.jobs,
        args.threads,
        if !args.full_budget {
            ", each stopping once solved"
        } else {
            ""
        }
    );
    recurrent::set_num_threads(args.threads);
    let bar = progress::bar((jobs.len() * budget) as u64, "adding problem (steps)");
    let next = std::sync::atomic::AtomicUsize::new(0);
    let runs = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| -> Res {
        let workers: Vec<_> = (0..args.jobs.max(1))
            .map(|_| {
                scope.spawn(|| -> Result<(), String> {
                    while let Some(&(arch, steps, seed)) =
                        jobs.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                    {
                        let run = adding_run(arch, steps, seed, &args, &bar).map_err(|e| e.to_string())?;
                        let line = format!(
                            "  {:13} T = {:3} seed {seed}: test MSE {} after {} steps{} ({:.1} ms/step)",
                            arch.label(),
                            steps,
                            sig(run.curve.last().map_or(f64::NAN, |c| c.1)),
                            run.trained,
                            run.solved_at.map_or(String::new(), |s| format!(", below 0.01 at step {s}")),
                            1e3 * run.seconds / run.trained as f64
                        );
                        // printed around the bar, also when the bar is hidden (no terminal)
                        bar.suspend(|| println!("{line}"));
                        runs.lock().map_err(|e| e.to_string())?.push(run);
                    }
                    Ok(())
                })
            })
            .collect();
        for worker in workers {
            worker.join().map_err(|_| "a training thread panicked")??;
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    let mut runs = runs.into_inner().map_err(|e| e.to_string())?;
    runs.sort_by_key(|r| (r.steps, r.arch as u8, r.seed));

    let final_mse = |r: &Run| r.curve.last().map_or(f64::NAN, |c| c.1);
    let mut table = Table::new(
        format!("Adding problem: hidden 128, batch 64, Adam 1e-3, clip 1, budget {budget} steps, {seeds} seed(s); predicting the mean ≈ 0.167, solved < 0.01"),
        &["T", "cell", "final test MSE per seed", "best", "steps to < 0.01 per seed"],
    );
    let mut speed = Table::new(
        format!("Adding problem: time per training step (batch 64, hidden 128, {} run(s) at a time, {} thread(s) each)", args.jobs, args.threads),
        &["T", "cell", "ms/step"],
    );
    let mut by_length = Chart::new(
        "Adding problem: final test MSE against length",
        "sequence length T",
        "test MSE (log)",
    )
    .log_y()
    .hline(1.0 / 6.0, "predicting the mean")
    .hline(0.01, "solved");
    let mut panels = Vec::new();
    for &t in &lengths {
        let mut panel = Chart::new(format!("T = {t}"), "training step", "test MSE (log)").log_y();
        for &arch in &args.cells {
            let these: Vec<&Run> = runs
                .iter()
                .filter(|r| r.steps == t && r.arch == arch)
                .collect();
            let per_seed: Vec<String> = these.iter().map(|r| sig(final_mse(r))).collect();
            let solved: Vec<String> = these
                .iter()
                .map(|r| r.solved_at.map_or("—".into(), |s| s.to_string()))
                .collect();
            let best = these
                .iter()
                .flat_map(|r| r.curve.iter().map(|c| c.1))
                .fold(f64::INFINITY, f64::min);
            table.row(vec![
                t.to_string(),
                arch.label().into(),
                per_seed.join(", "),
                sig(best),
                solved.join(", "),
            ]);
            let (seconds, trained) = these
                .iter()
                .fold((0.0, 0), |(s, n), r| (s + r.seconds, n + r.trained));
            speed.row(vec![
                t.to_string(),
                arch.label().into(),
                format!("{:.2}", 1e3 * seconds / trained as f64),
            ]);
            for r in &these {
                let mark = if r.seed == 0 {
                    Mark::Line
                } else {
                    Mark::Dashed
                };
                let name = if r.seed == 0 {
                    arch.label().to_string()
                } else {
                    String::new()
                };
                panel = panel.series_coloured(name, r.curve.clone(), mark, arch.colour());
            }
        }
        panels.push(panel);
    }
    for &arch in &args.cells {
        for seed in 0..seeds {
            let points = lengths
                .iter()
                .filter_map(|&t| {
                    runs.iter()
                        .find(|r| r.steps == t && r.arch == arch && r.seed == seed)
                })
                .map(|r| (r.steps as f64, final_mse(r)))
                .collect();
            let name = if seed == 0 { arch.label() } else { "" };
            by_length = by_length.series_coloured(
                name,
                points,
                if seed == 0 { Mark::Line } else { Mark::Dashed },
                arch.colour(),
            );
        }
    }
    by_length.save(&dir.join("adding_mse_by_length.png"))?;
    save_grid(
        &dir.join("adding_curves.png"),
        "Adding problem: test MSE during training (seed 0 solid, others dashed)",
        lengths.len().min(3),
        &panels,
    )?;
    let length = if lengths.contains(&100) {
        100
    } else {
        *lengths.iter().max().ok_or("no length")?
    };
    let trained = runs
        .into_iter()
        .filter(|r| r.steps == length && r.seed == 0)
        .map(|r| (r.arch, r.params))
        .collect();
    Ok(Adding {
        table,
        speed,
        length,
        trained,
    })
}
