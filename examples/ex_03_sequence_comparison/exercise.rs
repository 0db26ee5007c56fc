//! Experiments 1–3, the exercise's tasks: the sine wave, `y_t = x_0·x_t` and speed.

use std::path::Path;
use std::time::Instant;

use recurrent::rand::{rngs::StdRng, Rng, SeedableRng};
use recurrent::{
    mse_loss, AdamConfig, Layer, LinearConfig, Mode, Optimizer, Tensor, TimeDistributed,
};

use crate::support::chart::numbered;
use crate::support::chart::{save_bars, Chart, Mark};
use crate::support::progress;
use crate::support::report::{sig, Table};
use crate::support::steps::StepData;
use crate::support::tasks::{fit_last_step, sine_task, Training};
use crate::{Arch, Res};

// ───────────────────────────── 1. sine ─────────────────────────────

/// The sine task for each cell: test MSE, training loss curves and predictions.
pub(crate) fn sine(dir: &Path, quick: bool, seed: u64) -> Res<Table> {
    let task = sine_task(1000, 20.0 * std::f64::consts::PI, 20, 0.8);
    let epochs = if quick { 8 } else { 50 };
    let training = Training {
        epochs,
        lr: 0.01,
        batch: 32,
        seed,
    };
    let repeat = task.test.repeat_last_mse();
    let mut table = Table::new(
        format!(
            "Sine: {} training / {} test windows, hidden 10, {epochs} epochs",
            task.train.len(),
            task.test.len()
        ),
        &[
            "cell",
            "final train loss",
            "test MSE",
            "repeat-last MSE",
            "seconds",
        ],
    );
    let mut losses = Chart::new("Sine: training loss", "epoch", "MSE (log)").log_y();
    let shown = 100.min(task.test.len());
    let truth = (0..shown).map(|i| (i as f64, f64::from(task.test.targets[i])));
    let mut predictions = Chart::new("Sine: test predictions", "test window", "next value").series(
        "truth",
        truth.collect(),
        Mark::Dots,
    );
    for arch in Arch::COURSE {
        let bar = progress::bar(epochs as u64, format!("sine {}", arch.label()));
        let fit = with_network!(arch, f32, 1, 10, seed, |net| fit_last_step(
            net, 10, &task, training, &bar
        )?);
        bar.finish_and_clear();
        println!("  {:4} test MSE {}", arch.label(), sig(fit.test_mse));
        if fit.test_mse >= repeat {
            return Err(format!(
                "{} does not beat repeating the last value on the sine task: {} ≥ {repeat}",
                arch.label(),
                fit.test_mse
            )
            .into());
        }
        table.row(vec![
            arch.label().into(),
            sig(*fit.epoch_loss.last().unwrap_or(&f64::NAN)),
            sig(fit.test_mse),
            sig(repeat),
            format!("{:.2}", fit.seconds),
        ]);
        losses = losses.line(arch.label(), numbered(fit.epoch_loss.iter().copied(), 1.0));
        let p: Vec<f64> = fit.test_predictions[..shown]
            .iter()
            .map(|&v| v.into())
            .collect();
        predictions = predictions.line(arch.label(), numbered(p.iter().copied(), 0.0));
    }
    losses.save(&dir.join("sine_loss.png"))?;
    predictions.save(&dir.join("sine_predictions.png"))?;
    Ok(table)
}

// ───────────────────────────── 2. y_t = x_0 · x_t ─────────────────────────────

/// `n` sequences of `steps` values in U(0, 1), `(T, N, 1)`, and `y_t = x_0·x_t`, `(T, N, 1)`.
fn product_data(n: usize, steps: usize, rng: &mut StdRng) -> recurrent::Result<StepData<f32>> {
    let x: Vec<f32> = (0..steps * n).map(|_| rng.random::<f32>()).collect();
    let y: Vec<f32> = (0..steps * n).map(|i| x[i % n] * x[i]).collect();
    Ok(StepData {
        x: Tensor::from_vec(x, &[steps, n, 1])?,
        y: Tensor::from_vec(y, &[steps, n, 1])?,
    })
}

/// The long-term dependency task for each cell, with a linear head at every step.
pub(crate) fn product(dir: &Path, quick: bool, seed: u64) -> Res<Table> {
    let (steps, hidden, epochs, batch) = (50, 20, if quick { 15 } else { 100 }, 16);
    let mut rng = StdRng::seed_from_u64(seed);
    let train = product_data(160, steps, &mut rng)?;
    let (test_x, test_y) = product_data(40, steps, &mut rng)?.all()?;
    // ignoring x_0: the best guess is E[x_0]·x_t = x_t / 2
    let ignore = mse_loss(&test_x.data().map(|v| v * 0.5), &test_y)?.value;
    let mut table = Table::new(
        format!("y_t = x_0·x_t: T = {steps}, 160 training / 40 test sequences, hidden {hidden}, {epochs} epochs"),
        &["cell", "final train loss", "test MSE", "x_t/2 (ignores x_0) MSE", "seconds"],
    );
    let mut losses = Chart::new("y_t = x_0·x_t: training loss", "epoch", "MSE (log)").log_y();
    // the test sequence whose x_0 is farthest from its mean: forgetting x_0 shows most there
    let x0s = &test_x.data().as_slice()[..40];
    let shown = (0..40)
        .max_by(|&a, &b| (x0s[a] - 0.5).abs().total_cmp(&(x0s[b] - 0.5).abs()))
        .unwrap_or(0);
    let x0 = f64::from(x0s[shown]);
    let truth: Vec<f64> = (0..steps)
        .map(|t| f64::from(test_y.as_slice()[t * 40 + shown]))
        .collect();
    let mut overlay = Chart::new(
        "y_t = x_0·x_t: the test sequence with the most extreme x_0",
        "step t",
        "y_t",
    )
    .series("truth", numbered(truth.iter().copied(), 0.0), Mark::Dots)
    .hline(x0, format!("x_0 = {x0:.2}"));
    for arch in Arch::COURSE {
        let bar = progress::bar(epochs as u64, format!("x0·xt {}", arch.label()));
        let start = Instant::now();
        let (curve, prediction) = with_network!(arch, f32, 1, hidden, seed, |net| {
            let mut model = net.then(TimeDistributed::new(
                LinearConfig::new(hidden, 1).init_seeded(seed)?,
            ));
            let mut adam = AdamConfig::new(0.01).init()?;
            let mut curve = Vec::new();
            for epoch in 0..epochs {
                let mut sum = 0.0;
                for first in (0..160).step_by(batch) {
                    let (x, y) = train.batch(&(first..first + batch).collect::<Vec<_>>())?;
                    let (out, trace) = model.forward(&x, Mode::Train { seed: epoch as u64 })?;
                    let loss = mse_loss(out.data(), &y)?;
                    let grads = model.backward(&trace, &loss.grad)?.params;
                    adam.step(&mut model, &grads)?;
                    sum += f64::from(loss.value) * batch as f64 / 160.0;
                }
                curve.push(sum);
                bar.inc(1);
            }
            (curve, model.infer(&test_x)?)
        });
        bar.finish_and_clear();
        let seconds = start.elapsed().as_secs_f64();
        let test = mse_loss(prediction.data(), &test_y)?.value;
        println!("  {:4} test MSE {}", arch.label(), sig(test.into()));
        table.row(vec![
            arch.label().into(),
            sig(*curve.last().unwrap_or(&f64::NAN)),
            sig(test.into()),
            sig(ignore.into()),
            format!("{seconds:.2}"),
        ]);
        losses = losses.line(arch.label(), numbered(curve.iter().copied(), 1.0));
        let p: Vec<f64> = (0..steps)
            .map(|t| f64::from(prediction.data().as_slice()[t * 40 + shown]))
            .collect();
        overlay = overlay.line(arch.label(), numbered(p.iter().copied(), 0.0));
    }
    losses.save(&dir.join("product_loss.png"))?;
    overlay.save(&dir.join("product_predictions.png"))?;
    Ok(table)
}

// ───────────────────────────── 3. speed ─────────────────────────────

/// Seconds each cell needs for the same training budget on the sine task.
pub(crate) fn speed(dir: &Path, quick: bool, seed: u64) -> Res<Table> {
    let task = sine_task(1000, 20.0 * std::f64::consts::PI, 20, 0.8);
    let epochs = if quick { 4 } else { 20 };
    let training = Training {
        epochs,
        lr: 0.01,
        batch: 32,
        seed,
    };
    let mut table = Table::new(
        format!(
            "Speed: sine, hidden 10, {epochs} epochs of {} windows",
            task.train.len()
        ),
        &["cell", "seconds", "relative to RNN"],
    );
    let mut bars = Vec::new();
    for arch in Arch::COURSE {
        let bar = progress::bar(epochs as u64, format!("speed {}", arch.label()));
        let fit = with_network!(arch, f32, 1, 10, seed, |net| fit_last_step(
            net, 10, &task, training, &bar
        )?);
        bar.finish_and_clear();
        bars.push((arch.label().to_string(), fit.seconds));
    }
    for (label, seconds) in &bars {
        table.row(vec![
            label.clone(),
            format!("{seconds:.3}"),
            format!("{:.2}×", seconds / bars[0].1),
        ]);
    }
    save_bars(
        &dir.join("speed.png"),
        &format!("Training time for the same budget (sine, hidden 10, {epochs} epochs)"),
        "seconds",
        &bars,
    )?;
    Ok(table)
}
