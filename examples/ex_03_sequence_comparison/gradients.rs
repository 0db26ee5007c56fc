//! Experiments 4 and 6: the norm of `∂L/∂h_t` at every step, carried back one step at a time
//! through each cell's own backward pass — on the exercise's task, and on the adding problem
//! at initialisation and after training.

use std::path::Path;

use recurrent::rand::{rngs::StdRng, SeedableRng};
use recurrent::{
    mse_loss, AdamConfig, Cell, Direction, LastStep, Layer, Linear, LinearConfig, Mode,
    NamedTensors, Network, Optimizer, Parameters, Sequence, SequenceLayer, State, Tensor,
};

use crate::adding::{adding_data, Adding};
use crate::support::chart::numbered;
use crate::support::chart::{Chart, Mark};
use crate::support::progress;
use crate::support::report::{sig, Table};
use crate::{Arch, Res};

// ───────────────────────────── 4. gradient flow ─────────────────────────────

/// What carrying the gradient back one step at a time gave.
struct Flow {
    /// `‖∂L/∂h_t‖` for `t = 1 … T` (Frobenius norm over the batch).
    norms: Vec<f64>,
    /// The loss.
    loss: f64,
    /// The largest difference between the gradient at `h_0` carried back step by step and the
    /// network's fused backward pass, relative to the largest entry.
    fused_difference: f64,
}

/// `‖∂L/∂h_t‖` for every step of `net` (one layer) followed by its last hidden state, `head`
/// and MSE to `y`: the forward pass runs one [`Cell::forward`] step at a time, the backward one
/// [`Cell::backward`] step at a time from `∂L/∂h_T`. Checks that the gradient it reaches at the
/// initial state equals the network's own fused backward pass.
fn hidden_gradients<C: Cell<f64>>(
    net: &Network<C>,
    head: &Linear<f64>,
    x: &Tensor<f64>,
    y: &Tensor<f64>,
) -> Res<Flow> {
    let (steps, batch, input) = (x.shape()[0], x.shape()[1], x.shape()[2]);
    let cell = net
        .cell(0, Direction::Forward)
        .ok_or("a one-layer network")?;
    let mut state = cell.zero_state(batch);
    let mut traces = Vec::with_capacity(steps);
    for t in 0..steps {
        let x_t = &x.as_slice()[t * batch * input..][..batch * input];
        let (next, trace) = cell.forward(
            &Tensor::from_vec(x_t.to_vec(), &[batch, input])?,
            Some(&state),
        )?;
        traces.push(trace);
        state = next;
    }
    let (prediction, head_trace) = head.forward(state.h(), Mode::Eval)?;
    let loss = mse_loss(&prediction, y)?;
    let d_h_last = head.backward(&head_trace, &loss.grad)?.input;
    let mut d_state = State::new(vec![("h", d_h_last.clone())]);
    let mut norms = vec![0.0; steps];
    for t in (0..steps).rev() {
        norms[t] = norm(d_state.h());
        d_state = cell.backward(&traces[t], &d_state)?.state;
    }
    // the same gradient at h_0 from the network's fused BPTT
    let out = net.forward_with_state(x, None, None, Mode::Eval)?;
    let d_final = State::new(vec![(
        "h",
        d_h_last.reshape(&[1, batch, cell.hidden_size()])?,
    )]);
    let fused = net.backward_with_state(&out.trace, None, Some(&d_final))?;
    let (a, b) = (fused.initial_state.h().as_slice(), d_state.h().as_slice());
    let worst = a
        .iter()
        .zip(b)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let scale = a.iter().map(|v| v.abs()).fold(f64::MIN_POSITIVE, f64::max);
    let fused_difference = worst / scale;
    if fused_difference > 1e-9 {
        return Err(format!(
            "step-by-step BPTT differs from the fused backward pass by {fused_difference:.2e}"
        )
        .into());
    }
    Ok(Flow {
        norms,
        loss: loss.value,
        fused_difference,
    })
}

/// The Frobenius norm.
fn norm(t: &Tensor<f64>) -> f64 {
    t.as_slice().iter().map(|v| v * v).sum::<f64>().sqrt()
}

/// The exercise's gradient flow: target `x_0` after 100 steps, hidden 5, in f64.
pub(crate) fn gradient_flow(dir: &Path, cells: &[Arch], quick: bool, seed: u64) -> Res<Table> {
    let (steps, n, hidden, epochs) = (100, 50, 5, if quick { 10 } else { 100 });
    let mut rng = StdRng::seed_from_u64(seed);
    let x = Tensor::<f64>::randn(&[steps, n, 1], &mut rng);
    let y = Tensor::from_vec(x.as_slice()[..n].to_vec(), &[n, 1])?;
    let input = Sequence::new(x.clone(), None)?;
    let mut table = Table::new(
        format!("Gradient flow: target x_0 after {steps} steps, {n} sequences, hidden {hidden}, {epochs} epochs (f64)"),
        &["cell", "loss", "‖dL/dh_1‖ start", "‖dL/dh_T‖ start", "ratio start", "‖dL/dh_1‖ end", "‖dL/dh_T‖ end", "ratio end"],
    );
    let mut per_step = Chart::new(
        format!("Gradient flow, target x_0, T = {steps}: after {epochs} epochs (dashed: before)"),
        "step t (0 = earliest)",
        "‖dL/dh_t‖ (log)",
    )
    .log_y()
    .legend_lower_right();
    let mut agreement: f64 = 0.0;
    let mut per_epoch = Chart::new(
        "Mean ‖dL/dh_t‖ over the steps, per epoch",
        "epoch",
        "mean ‖dL/dh_t‖ (log)",
    )
    .log_y();
    for &arch in cells {
        let bar = progress::bar(epochs as u64, format!("flow {}", arch.label()));
        let (first, last, means) = with_network!(arch, f64, 1, hidden, seed, |net| {
            let mut model = net
                .then(LastStep)
                .then(LinearConfig::new(hidden, 1).init_seeded(seed)?);
            let mut adam = AdamConfig::new(0.01).init()?;
            let first = hidden_gradients(model.first().first(), model.last(), &x, &y)?;
            let mut means = Vec::new();
            for epoch in 0..epochs {
                let (out, trace) = model.forward(&input, Mode::Train { seed: epoch as u64 })?;
                let loss = mse_loss(&out, &y)?;
                let grads = model.backward(&trace, &loss.grad)?.params;
                adam.step(&mut model, &grads)?;
                let flow = hidden_gradients(model.first().first(), model.last(), &x, &y)?;
                means.push(flow.norms.iter().sum::<f64>() / steps as f64);
                bar.inc(1);
            }
            let last = hidden_gradients(model.first().first(), model.last(), &x, &y)?;
            agreement = agreement
                .max(first.fused_difference)
                .max(last.fused_difference);
            (first, last, means)
        });
        bar.finish_and_clear();
        let ratio = |f: &Flow| f.norms[0] / f.norms[steps - 1];
        println!(
            "  {:13} ‖dL/dh_1‖ / ‖dL/dh_T‖: {} at the start, {} after training",
            arch.label(),
            sig(ratio(&first)),
            sig(ratio(&last))
        );
        table.row(vec![
            arch.label().into(),
            sig(last.loss),
            sig(first.norms[0]),
            sig(first.norms[steps - 1]),
            sig(ratio(&first)),
            sig(last.norms[0]),
            sig(last.norms[steps - 1]),
            sig(ratio(&last)),
        ]);
        per_step = per_step
            .series_coloured(
                arch.label(),
                numbered(last.norms.iter().copied(), 0.0),
                Mark::Line,
                arch.colour(),
            )
            .series_coloured(
                "",
                numbered(first.norms.iter().copied(), 0.0),
                Mark::Dashed,
                arch.colour(),
            );
        per_epoch = per_epoch.series_coloured(
            arch.label(),
            numbered(means.iter().copied(), 1.0),
            Mark::Line,
            arch.colour(),
        );
    }
    println!("  step-by-step BPTT equals the fused backward pass: worst relative difference {agreement:.1e}");
    per_step.save(&dir.join("gradient_flow_steps.png"))?;
    per_epoch.save(&dir.join("gradient_flow_epochs.png"))?;
    Ok(table)
}

// ───────────────────────────── 6. vanishing gradients ─────────────────────────────

/// `‖∂L/∂h_t‖` in f64 on the adding problem, at initialisation and with the trained
/// parameters, for each architecture.
pub(crate) fn vanishing(dir: &Path, adding: &Adding, seed: u64) -> Res<Table> {
    let steps = adding.length;
    let mut rng = StdRng::seed_from_u64(777);
    let (x, y) = adding_data::<f64>(64, steps, &mut rng)?;
    let mut table = Table::new(
        format!("Vanishing gradients on the adding problem, T = {steps}, 64 sequences, f64"),
        &[
            "cell",
            "state",
            "loss",
            "‖dL/dh_1‖",
            "‖dL/dh_T‖",
            "‖dL/dh_1‖ / ‖dL/dh_T‖",
        ],
    );
    let mut chart = Chart::new(
        format!("‖dL/dh_t‖ on the adding problem, T = {steps} (dashed: at initialisation)"),
        "distance from the loss, T − t",
        "‖dL/dh_t‖ (log)",
    )
    .log_y()
    .legend_lower_right();
    for (arch, params) in &adding.trained {
        for trained in [false, true] {
            let flow = with_network!(*arch, f64, 2, 128, seed, |net| {
                let mut model = net
                    .then(LastStep)
                    .then(LinearConfig::new(128, 1).init_seeded(seed + 1)?);
                if trained {
                    copy_params(params, &mut model)?;
                }
                hidden_gradients(model.first().first(), model.last(), x.data(), &y)?
            });
            let ratio = flow.norms[0] / flow.norms[steps - 1];
            let state = if trained { "trained" } else { "initial" };
            println!(
                "  {:13} {state:8} ‖dL/dh_1‖ / ‖dL/dh_T‖ = {}",
                arch.label(),
                sig(ratio)
            );
            table.row(vec![
                arch.label().into(),
                state.into(),
                sig(flow.loss),
                sig(flow.norms[0]),
                sig(flow.norms[steps - 1]),
                sig(ratio),
            ]);
            let by_distance = flow
                .norms
                .iter()
                .rev()
                .enumerate()
                .map(|(d, &n)| (d as f64, n))
                .collect();
            let (name, mark) = if trained {
                (arch.label(), Mark::Line)
            } else {
                ("", Mark::Dashed)
            };
            chart = chart.series_coloured(name, by_distance, mark, arch.colour());
        }
    }
    chart.save(&dir.join("vanishing_gradients.png"))?;
    Ok(table)
}

/// Copies f32 parameters into a model of the same architecture in f64, by name.
fn copy_params(from: &NamedTensors<f32>, to: &mut impl Parameters<f64>) -> Res {
    let mut missing = None;
    to.visit_params_mut(&mut |name, t| match from.get(name) {
        Some(v) => *t = v.cast(),
        None => missing = Some(name.to_string()),
    });
    match missing {
        Some(name) => Err(format!("no trained parameter {name}").into()),
        None => Ok(()),
    }
}
