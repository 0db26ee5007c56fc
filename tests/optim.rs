//! Resuming training: a run saved (model with `save`, optimiser and schedule with
//! `save_optimizer`) and loaded into fresh objects continues bit for bit as the run that never
//! stopped, for Adam and SGD with momentum, with parameter groups and schedules; and optimiser
//! files that do not fit (another shape, another name, another optimiser, corrupt bytes,
//! another element type) are rejected by name and leave the optimiser as it was.
//!
//! The update rules and schedules themselves are checked in the unit tests beside them.

mod common;

use std::path::PathBuf;

use common::ParamList;

use recurrent::{
    load, load_optimizer, save, save_optimizer, AdamConfig, CosineAnnealingLr, Error, Float,
    LrScheduler, NamedTensors, Optimizer, ParamGroup, PlateauMode, ReduceLrOnPlateauConfig,
    SgdConfig, StepLr, Tensor,
};

/// Named parameters of any shape, visited in order.
type Model<T> = ParamList<T>;

/// A model with the parameters `(name, shape)`, each element `offset + 0.1·i`.
fn model<T: Float>(shapes: &[(&str, &[usize])], offset: f64) -> Model<T> {
    let params = shapes
        .iter()
        .map(|&(n, shape)| {
            let len = shape.iter().product::<usize>();
            let values = (0..len)
                .map(|i| T::from_f64(offset + 0.1 * i as f64))
                .collect();
            (n.to_string(), Tensor::from_vec(values, shape).unwrap())
        })
        .collect();
    ParamList { params }
}

const SHAPES: [(&str, &[usize]); 4] = [
    ("embedding.weight", &[3, 2]),
    ("rnn.weight_ih_l0", &[2, 3]),
    ("rnn.bias_ih_l0", &[2]),
    ("fc.weight", &[1, 2, 2]),
];

/// The gradient of `Σ ½ cᵢ (wᵢ − tᵢ)²` with `cᵢ = 1 + i mod 5` and `tᵢ = sin(i)`, an
/// ill-conditioned bowl, for every parameter.
fn grads<T: Float>(m: &Model<T>) -> NamedTensors<T> {
    let mut g = NamedTensors::new();
    for (n, t) in &m.params {
        let values = t
            .as_slice()
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let c = 1.0 + (i % 5) as f64;
                T::from_f64(c * (w.as_f64() - (i as f64).sin()))
            })
            .collect();
        g.push(n.as_str(), Tensor::from_vec(values, t.shape()).unwrap());
    }
    g
}

/// A file in the temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> Self {
        TempFile(std::env::temp_dir().join(format!(
            "recurrent-optim-{}-{name}.safetensors",
            std::process::id()
        )))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// One epoch: a step of the optimiser, then of the schedule.
type Epoch<T, O, S> = fn(&mut Model<T>, &mut O, &mut S);

/// Trains `n` epochs straight, and `k` epochs then a save, a load into fresh objects (built by
/// `fresh`, the model from other values) and `n − k` more: the parameters and the optimiser
/// state agree bit for bit.
fn resume_is_exact<T: Float, O: Optimizer<T>, S: Clone + PartialEq + std::fmt::Debug>(
    name: &str,
    fresh: impl Fn() -> (O, S),
    epoch: Epoch<T, O, S>,
    state: fn(&S) -> recurrent::SchedulerState,
    restore: fn(&mut S, &recurrent::SchedulerState) -> recurrent::Result<()>,
) {
    let (n, k) = (12, 5);
    let mut straight = model::<T>(&SHAPES, 0.3);
    let (mut opt, mut schedule) = fresh();
    for _ in 0..n {
        epoch(&mut straight, &mut opt, &mut schedule);
    }

    let mut first = model::<T>(&SHAPES, 0.3);
    let (mut opt1, mut schedule1) = fresh();
    for _ in 0..k {
        epoch(&mut first, &mut opt1, &mut schedule1);
    }
    let (weights, optim) = (TempFile::new(&format!("{name}-w")), TempFile::new(name));
    save(&first, &weights.0).unwrap();
    save_optimizer(&opt1, Some(&state(&schedule1)), &optim.0).unwrap();
    drop((first, opt1, schedule1));

    let mut second = model::<T>(&SHAPES, -1.0);
    let (mut opt2, mut schedule2) = fresh();
    load(&mut second, &weights.0).unwrap();
    let s = load_optimizer(&mut opt2, &second, &optim.0).unwrap();
    restore(&mut schedule2, &s.expect("the file holds the schedule")).unwrap();
    for _ in k..n {
        epoch(&mut second, &mut opt2, &mut schedule2);
    }
    assert_eq!(second, straight, "{name}: the parameters differ");
    assert_eq!(
        opt2.state_dict(),
        opt.state_dict(),
        "{name}: the states differ"
    );
    assert_eq!(schedule2, schedule, "{name}: the schedules differ");
    assert_ne!(
        straight,
        model::<T>(&SHAPES, 0.3),
        "{name}: nothing trained"
    );
}

/// AdamW with a group without weight decay and a frozen embedding, under a cosine schedule.
fn adam_config() -> AdamConfig {
    AdamConfig::adamw(0.05)
        .with_weight_decay(0.1)
        .with_group(ParamGroup::new(|n: &str| n.starts_with("embedding.")).frozen())
        .with_group(
            ParamGroup::new(|n: &str| n.contains("bias"))
                .with_weight_decay(0.0)
                .with_lr_scale(2.0),
        )
}

#[test]
fn a_resumed_adam_run_is_bit_identical() {
    resume_is_exact::<f32, _, _>(
        "adam",
        || {
            let mut adam = adam_config().init().unwrap();
            let cosine = CosineAnnealingLr::new(&mut adam, 8, 0.001).unwrap();
            (adam, cosine)
        },
        |m, adam, cosine| {
            let g = grads(m);
            adam.step(m, &g).unwrap();
            cosine.step(adam).unwrap();
        },
        CosineAnnealingLr::state,
        CosineAnnealingLr::restore,
    );
}

#[test]
fn a_resumed_sgd_run_with_momentum_is_bit_identical() {
    resume_is_exact::<f64, _, _>(
        "sgd",
        || {
            let mut sgd = SgdConfig::new(0.02)
                .with_momentum(0.9)
                .with_nesterov(true)
                .with_weight_decay(1e-3)
                .init()
                .unwrap();
            let step = StepLr::new(&mut sgd, 3, 0.5).unwrap();
            (sgd, step)
        },
        |m, sgd, step| {
            let g = grads(m);
            sgd.step(m, &g).unwrap();
            step.step(sgd).unwrap();
        },
        StepLr::state,
        StepLr::restore,
    );
    // and with a plateau schedule, whose state (best, bad epochs, cooldown) is not the rate's
    resume_is_exact::<f64, _, _>(
        "sgd-plateau",
        || {
            let sgd = SgdConfig::new(0.05).with_momentum(0.5).init().unwrap();
            let plateau = ReduceLrOnPlateauConfig::new(PlateauMode::Min)
                .with_patience(1)
                .with_cooldown(1)
                .with_factor(0.5)
                .with_threshold(0.2)
                .init()
                .unwrap();
            (sgd, plateau)
        },
        |m, sgd, plateau| {
            let g = grads(m);
            let loss: f64 = g
                .iter()
                .flat_map(|(_, t)| t.as_slice())
                .map(|v| v * v)
                .sum();
            sgd.step(m, &g).unwrap();
            plateau.step_with(loss, sgd).unwrap();
        },
        |p| p.state(),
        |p, s| p.restore(s),
    );
}

/// An Adam trained two epochs on `SHAPES`, and its file.
fn trained_adam() -> (recurrent::Adam<f32>, Model<f32>, TempFile) {
    let mut m = model::<f32>(&SHAPES, 0.3);
    let mut adam = adam_config().init().unwrap();
    for _ in 0..2 {
        let g = grads(&m);
        adam.step(&mut m, &g).unwrap();
    }
    let file = TempFile::new("adam-trained");
    save_optimizer(&adam, None, &file.0).unwrap();
    (adam, m, file)
}

/// `load_optimizer` fails with `expected` and leaves `opt` as it was (and bound to `bound`).
fn rejected<O: Optimizer<f32>>(
    opt: &mut O,
    bound: &mut Model<f32>,
    model: &Model<f32>,
    path: &std::path::Path,
) -> Error {
    let before = opt.state_dict();
    let e = load_optimizer(opt, model, path).unwrap_err();
    assert_eq!(opt.state_dict(), before, "{e}: the optimiser changed");
    // still bound to its own model
    let g = grads(bound);
    opt.step(bound, &g).unwrap();
    e
}

#[test]
fn optimiser_files_that_do_not_fit_are_rejected_without_change() {
    let (_, _, file) = trained_adam();
    let mut target = model::<f32>(&SHAPES, 0.0);
    let fresh = || {
        let mut adam = adam_config().init().unwrap();
        let mut m = model::<f32>(&SHAPES, 0.0);
        let g = grads(&m);
        adam.step(&mut m, &g).unwrap();
        (adam, m)
    };

    // a parameter of another shape
    let mut shapes = SHAPES;
    shapes[1].1 = &[3, 3];
    let (mut adam, mut m) = fresh();
    let e = rejected(&mut adam, &mut m, &model(&shapes, 0.0), &file.0);
    assert_eq!(
        e,
        Error::ParameterShape {
            name: "exp_avg.rnn.weight_ih_l0".into(),
            expected: vec![3, 3],
            actual: vec![2, 3]
        }
    );

    // a parameter of another name
    let mut shapes = SHAPES;
    shapes[3].0 = "head.weight";
    let e = rejected(&mut adam, &mut m, &model(&shapes, 0.0), &file.0);
    assert_eq!(
        e,
        Error::UnexpectedParameter {
            name: "fc.weight".into()
        }
    );

    // another optimiser's state
    let mut sgd = SgdConfig::new(0.1).with_momentum(0.9).init().unwrap();
    let g = grads(&target);
    sgd.step(&mut target, &g).unwrap();
    let sgd_file = TempFile::new("sgd-kind");
    save_optimizer(&sgd, None, &sgd_file.0).unwrap();
    let e = rejected(&mut adam, &mut m, &target, &sgd_file.0);
    assert_eq!(
        e.to_string(),
        "invalid optimiser state: it is the state of sgd, not of adam"
    );

    // another number of groups: the predicates are the optimiser's, the settings the file's
    let mut plain = AdamConfig::adamw(0.05).init().unwrap();
    let mut m2 = model::<f32>(&SHAPES, 0.0);
    let g = grads(&m2);
    plain.step(&mut m2, &g).unwrap();
    let e = rejected(&mut plain, &mut m2, &target, &file.0);
    assert_eq!(
        e.to_string(),
        "invalid optimiser state: it has 2 parameter groups, the optimiser 0"
    );

    // state for a parameter the optimiser's groups freeze
    let mut frozen_bias = AdamConfig::adamw(0.05)
        .with_group(ParamGroup::new(|n: &str| n.contains("bias")).frozen())
        .with_group(ParamGroup::new(|n: &str| n.starts_with("embedding.")))
        .init()
        .unwrap();
    let mut m3 = model::<f32>(&SHAPES, 0.0);
    let g = grads(&m3);
    frozen_bias.step(&mut m3, &g).unwrap();
    let e = rejected(&mut frozen_bias, &mut m3, &target, &file.0);
    assert_eq!(
        e.to_string(),
        "invalid optimiser state: parameter `rnn.bias_ih_l0` is frozen, but the state has a \
         step count for it"
    );

    // corrupt bytes: truncated, garbage, a weight file, another element type
    let bytes = std::fs::read(&file.0).unwrap();
    let corrupt = TempFile::new("corrupt");
    for bad in [
        bytes[..bytes.len() - 7].to_vec(),
        bytes[..bytes.len() / 3].to_vec(),
        b"not a safetensors file at all".to_vec(),
    ] {
        std::fs::write(&corrupt.0, bad).unwrap();
        let e = rejected(&mut adam, &mut m, &target, &corrupt.0);
        assert!(matches!(e, Error::Corrupt { .. }), "{e}");
    }
    save(&target, &corrupt.0).unwrap();
    let e = rejected(&mut adam, &mut m, &target, &corrupt.0);
    assert!(e.to_string().contains("not an optimiser file"), "{e}");
    let mut wide = adam_config().init::<f64>().unwrap();
    let mut m64 = model::<f64>(&SHAPES, 0.0);
    let g = grads(&m64);
    wide.step(&mut m64, &g).unwrap();
    save_optimizer(&wide, None, &corrupt.0).unwrap();
    let e = rejected(&mut adam, &mut m, &target, &corrupt.0);
    assert!(matches!(e, Error::DtypeMismatch { .. }), "{e}");
}

#[test]
fn a_loaded_optimiser_binds_to_the_model_it_was_checked_against() {
    let (adam, trained, file) = trained_adam();
    let mut fresh = adam_config().init().unwrap();
    let mut copy = trained.clone();
    assert_eq!(load_optimizer(&mut fresh, &copy, &file.0).unwrap(), None);
    assert_eq!(fresh.state_dict(), adam.state_dict());
    let mut shapes = SHAPES;
    shapes[2].1 = &[5];
    let mut other = model::<f32>(&shapes, 0.0);
    let g = grads(&other);
    let e = fresh.step(&mut other, &g).unwrap_err();
    assert!(
        e.to_string().contains("bound to another parameter set"),
        "{e}"
    );
    let g = grads(&copy);
    fresh.step(&mut copy, &g).unwrap();
}
