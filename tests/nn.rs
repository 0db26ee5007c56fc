//! Analytic gradients of the `nn` layers and losses against central finite differences (`f64`,
//! through `Gradcheck::check_fn`), over random shapes and seeds: `Linear` (input, weight, bias;
//! inputs of rank 1 to 3, with and without bias), `Embedding` (weight, with and without a
//! padding row, repeated ids), `Dropout` (input, for a fixed mask, which a seeded generator
//! reproduces) and the three losses (prediction). The bound is 1e-6 on the error
//! `|analytic − numeric| / max(1, |analytic|, |numeric|)` of every element, and no element may
//! sit on a kink: every function checked here is smooth.
//!
//! The layers' loss is `L = Σ output ⊙ G` with `G` drawn from `N(0, 1)`; a loss is checked as
//! it is. The cases are drawn by proptest from a fixed seed, so a run is reproducible; set
//! `PROPTEST_CASES` to draw more. Not covered here: hand-computed values and error messages
//! (the unit tests beside each layer).

mod common;

use std::cell::Cell as StdCell;
use std::fmt::Debug;

use common::runner;
use proptest::prelude::*;
use rand::{rngs::StdRng, Rng, SeedableRng};
use recurrent::{
    binary_cross_entropy_with_logits, cross_entropy_with_logits, mse_loss, Dropout, DropoutConfig,
    Embedding, EmbeddingConfig, Gradcheck, GradcheckReport, Layer, Linear, LinearConfig, Tensor,
    TokenBatch,
};

const BOUND: f64 = 1e-6;

/// Problems per family, unless `PROPTEST_CASES` says otherwise.
const CASES: u32 = 256;

/// Runs `check` on every problem that `strategy` draws and asserts the bound on each report
/// it returns; prints the worst error of the family.
fn run<S>(label: &str, strategy: S, check: impl Fn(&S::Value) -> Vec<GradcheckReport>)
where
    S: Strategy,
    S::Value: Debug,
{
    let (worst, checked) = (StdCell::new(0.0f64), StdCell::new(0));
    let result = runner(CASES).run(&strategy, |problem| {
        for report in check(&problem) {
            worst.set(worst.get().max(report.worst_error));
            checked.set(checked.get() + report.checked);
            prop_assert!(report.worst_error <= BOUND, "{label} {problem:?}: {report}");
            prop_assert_eq!(report.kinks, 0, "{} {:?}: {}", label, problem, report);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    println!(
        "{label}: worst error {:.3e} over {} problems, {} elements",
        worst.get(),
        runner(CASES).config().cases,
        checked.get(),
    );
}

/// `dims` with `last` appended.
fn with_last(dims: &[usize], last: usize) -> Vec<usize> {
    let mut out = dims.to_vec();
    out.push(last);
    out
}

/// Leading axes of an input: rank 0 to `max_rank` axes of 1 to 5.
fn leading_dims(max_rank: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1..=5usize, 0..=max_rank)
}

#[derive(Debug, Clone)]
struct LinearProblem {
    lead: Vec<usize>,
    in_features: usize,
    out_features: usize,
    bias: bool,
    seed: u64,
}

fn linear_problems() -> impl Strategy<Value = LinearProblem> {
    (
        leading_dims(2),
        1..=6usize,
        1..=6usize,
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(lead, in_features, out_features, bias, seed)| LinearProblem {
                lead,
                in_features,
                out_features,
                bias,
                seed,
            },
        )
}

#[test]
fn linear_gradients_match_finite_differences() {
    run("Linear", linear_problems(), |p| {
        let mut rng = StdRng::seed_from_u64(p.seed);
        let fc = LinearConfig::new(p.in_features, p.out_features)
            .with_bias(p.bias)
            .init::<f64>(&mut rng)
            .expect("a small layer");
        let x = Tensor::randn(&with_last(&p.lead, p.in_features), &mut rng);
        let g = Tensor::randn(&with_last(&p.lead, p.out_features), &mut rng);
        let grads = fc.backward(&x, &g).expect("valid problem");
        let loss = |fc: &Linear<f64>, x: &Tensor<f64>| fc.infer(x).unwrap().dot(&g).unwrap();

        let check = Gradcheck::new();
        let mut reports = vec![check
            .check_fn("input", &x, &grads.input, |x| loss(&fc, x))
            .unwrap()];
        reports.push(
            check
                .check_fn(
                    "weight",
                    fc.weight(),
                    grads.params.require("weight").unwrap(),
                    |w| {
                        loss(
                            &Linear::from_params(w.clone(), fc.bias().cloned()).unwrap(),
                            &x,
                        )
                    },
                )
                .unwrap(),
        );
        assert_eq!(grads.params.get("bias").is_some(), p.bias);
        if let Some(b) = fc.bias() {
            reports.push(
                check
                    .check_fn("bias", b, grads.params.require("bias").unwrap(), |b| {
                        let fc = Linear::from_params(fc.weight().clone(), Some(b.clone()));
                        loss(&fc.unwrap(), &x)
                    })
                    .unwrap(),
            );
        }
        reports
    });
}

#[derive(Debug, Clone)]
struct EmbeddingProblem {
    num_embeddings: usize,
    embedding_dim: usize,
    dims: Vec<usize>,
    padding: Option<usize>,
    seed: u64,
}

fn embedding_problems() -> impl Strategy<Value = EmbeddingProblem> {
    (
        1..=8usize,
        1..=5usize,
        leading_dims(2),
        any::<Option<usize>>(),
        any::<u64>(),
    )
        .prop_map(
            |(num_embeddings, embedding_dim, dims, padding, seed)| EmbeddingProblem {
                num_embeddings,
                embedding_dim,
                dims,
                padding: padding.map(|i| i % num_embeddings),
                seed,
            },
        )
}

/// The padding row is frozen: it gets no gradient, so the loss is checked as a function of
/// the other rows, with the padding row held at its value (its finite difference is then 0,
/// and so must its analytic gradient be).
#[test]
fn embedding_gradients_match_finite_differences() {
    let (repeated, padded) = (StdCell::new(0), StdCell::new(0));
    run("Embedding", embedding_problems(), |p| {
        let mut rng = StdRng::seed_from_u64(p.seed);
        let emb = EmbeddingConfig::new(p.num_embeddings, p.embedding_dim)
            .with_padding_idx(p.padding)
            .init::<f64>(&mut rng)
            .expect("a small table");
        let count: usize = p.dims.iter().product();
        let ids: Vec<usize> = (0..count)
            .map(|_| rng.random_range(0..p.num_embeddings))
            .collect();
        // the ids as a time-major (T, B) batch: (N) is (N, 1), () is (1, 1)
        let (t, b) = (
            p.dims.first().copied().unwrap_or(1),
            p.dims.get(1).copied().unwrap_or(1),
        );
        let tokens = TokenBatch::new(ids.clone(), t, b, None).expect("a batch");
        let g = Tensor::randn(&[t, b, p.embedding_dim], &mut rng);
        let grads = emb.backward(&tokens, &g).expect("valid problem").params;
        let d_weight = grads.require("weight").unwrap();

        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        repeated.set(repeated.get() + usize::from(sorted.len() < ids.len()));
        if let Some(idx) = p.padding {
            padded.set(padded.get() + usize::from(ids.contains(&idx)));
            let row = &d_weight.as_slice()[idx * p.embedding_dim..][..p.embedding_dim];
            assert!(row.iter().all(|&v| v == 0.0), "{p:?}: {row:?}");
        }

        let frozen = emb.weight().clone();
        let report = Gradcheck::new()
            .check_fn("weight", emb.weight(), d_weight, |w| {
                let mut w = w.clone();
                if let Some(idx) = p.padding {
                    let row = idx * p.embedding_dim..(idx + 1) * p.embedding_dim;
                    w.as_mut_slice()[row.clone()].copy_from_slice(&frozen.as_slice()[row]);
                }
                let emb = Embedding::from_weight(w, p.padding).unwrap();
                emb.infer(&tokens).unwrap().data().dot(&g).unwrap()
            })
            .unwrap();
        vec![report]
    });
    // the cases must include what they claim to cover
    assert!(repeated.get() > 0, "no problem had a repeated id");
    assert!(padded.get() > 0, "no problem looked up its padding row");
}

#[derive(Debug, Clone)]
struct DropoutProblem {
    p: f64,
    dims: Vec<usize>,
    seed: u64,
}

fn dropout_problems() -> impl Strategy<Value = DropoutProblem> {
    (
        0..10u32,
        prop::collection::vec(1..=5usize, 1..=3),
        any::<u64>(),
    )
        .prop_map(|(tenths, dims, seed)| DropoutProblem {
            p: f64::from(tenths) / 10.0,
            dims,
            seed,
        })
}

#[test]
fn dropout_gradients_match_finite_differences_for_a_fixed_mask() {
    run("Dropout", dropout_problems(), |p| {
        let dropout = DropoutConfig::new(p.p).init().unwrap();
        let mut rng = StdRng::seed_from_u64(p.seed);
        let x = Tensor::randn(&p.dims, &mut rng);
        let g = Tensor::randn(&p.dims, &mut rng);
        let (y, mask) = dropout.forward_with_rng(&x, &mut StdRng::seed_from_u64(p.seed ^ 1));
        // a seeded generator reproduces the mask
        let (again, _) = dropout.forward_with_rng(&x, &mut StdRng::seed_from_u64(p.seed ^ 1));
        assert_eq!(y, again);
        assert_eq!(mask.apply(&x).unwrap(), y);

        let dx = dropout.backward_with_mask(&mask, &g).unwrap();
        let report = Gradcheck::new()
            .check_fn("input", &x, &dx, |x| {
                mask.apply(x).unwrap().dot(&g).unwrap()
            })
            .unwrap();
        vec![report]
    });
}

#[derive(Debug, Clone)]
struct LossProblem {
    rows: usize,
    classes: usize,
    /// Spread of the predictions: large logits test the stable forms.
    scale: f64,
    hard_targets: bool,
    seed: u64,
}

fn loss_problems() -> impl Strategy<Value = LossProblem> {
    (
        1..=6usize,
        1..=6usize,
        prop::sample::select(vec![0.1, 1.0, 5.0, 20.0]),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(|(rows, classes, scale, hard_targets, seed)| LossProblem {
            rows,
            classes,
            scale,
            hard_targets,
            seed,
        })
}

#[test]
fn mse_loss_gradient_matches_finite_differences() {
    run("mse_loss", loss_problems(), |p| {
        let mut rng = StdRng::seed_from_u64(p.seed);
        let dims = [p.rows, p.classes];
        let prediction = Tensor::randn(&dims, &mut rng).map(|v| p.scale * v);
        let target = Tensor::randn(&dims, &mut rng).map(|v| p.scale * v);
        let loss = mse_loss(&prediction, &target).unwrap();
        let report = Gradcheck::new()
            .check_fn("prediction", &prediction, &loss.grad, |x| {
                mse_loss(x, &target).unwrap().value
            })
            .unwrap();
        vec![report]
    });
}

#[test]
fn binary_cross_entropy_gradient_matches_finite_differences() {
    run("binary_cross_entropy_with_logits", loss_problems(), |p| {
        let mut rng = StdRng::seed_from_u64(p.seed);
        let dims = [p.rows, p.classes];
        let logits = Tensor::randn(&dims, &mut rng).map(|v| p.scale * v);
        let targets = Tensor::<f64>::zeros(&dims).map(|_| {
            if p.hard_targets {
                f64::from(u8::from(rng.random_bool(0.5)))
            } else {
                rng.random_range(0.0..=1.0)
            }
        });
        let loss = binary_cross_entropy_with_logits(&logits, &targets).unwrap();
        let report = Gradcheck::new()
            .check_fn("logits", &logits, &loss.grad, |x| {
                binary_cross_entropy_with_logits(x, &targets).unwrap().value
            })
            .unwrap();
        vec![report]
    });
}

#[test]
fn cross_entropy_gradient_matches_finite_differences() {
    run("cross_entropy_with_logits", loss_problems(), |p| {
        let mut rng = StdRng::seed_from_u64(p.seed);
        let logits = Tensor::randn(&[p.rows, p.classes], &mut rng).map(|v| p.scale * v);
        let targets: Vec<usize> = (0..p.rows)
            .map(|_| rng.random_range(0..p.classes))
            .collect();
        let loss = cross_entropy_with_logits(&logits, &targets).unwrap();
        let report = Gradcheck::new()
            .check_fn("logits", &logits, &loss.grad, |x| {
                cross_entropy_with_logits(x, &targets).unwrap().value
            })
            .unwrap();
        vec![report]
    });
}

/// The checker must notice a wrong gradient: the mean squared error's gradient without its
/// factor 2 fails, and the report names an element of the tensor.
#[test]
fn check_fn_catches_a_wrong_gradient() {
    let mut rng = StdRng::seed_from_u64(2);
    let prediction = Tensor::randn(&[3, 4], &mut rng);
    let target = Tensor::randn(&[3, 4], &mut rng);
    let loss = mse_loss(&prediction, &target).unwrap();
    let halved = loss.grad.map(|g| g / 2.0);
    let report = Gradcheck::new()
        .check_fn("prediction", &prediction, &halved, |x| {
            mse_loss(x, &target).unwrap().value
        })
        .unwrap();
    assert!(report.worst_error > 1e-3, "{report}");
    assert!(report.worst_at.starts_with("prediction["), "{report}");
    assert_eq!(report.checked, 12);

    let e = Gradcheck::new()
        .check_fn("prediction", &prediction, &Tensor::zeros(&[12]), |_| 0.0)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "shape mismatch in gradcheck analytic gradient: expected [3, 4], got [12]"
    );
}

#[test]
fn layers_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Linear<f32>>();
    send_sync::<recurrent::LayerGrads<f64, recurrent::Tensor<f64>>>();
    send_sync::<Embedding<f32>>();
    send_sync::<Dropout>();
    send_sync::<recurrent::DropoutMask<f32>>();
    send_sync::<recurrent::Loss<f64>>();
}
