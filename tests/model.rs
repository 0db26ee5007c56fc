//! Composed models: the [`Layer`] trait over chains, named layers, the sequence adapters and
//! the `model!` macro. Gradients of whole models (embedding → recurrent network → adapter →
//! head → loss) against finite differences in `f64`, adapters against slow references,
//! parameter names, error messages and the trace-free inference path. Not covered here: the
//! layers' own gradients (`tests/gradcheck.rs`) and training against PyTorch
//! (`tests/trajectory.rs`).

mod common;

use common::runner;
use proptest::prelude::*;
use recurrent::rand::{rngs::StdRng, Rng, SeedableRng};
use recurrent::{
    cross_entropy_with_logits, mse_loss, DropoutConfig, EmbeddingConfig, Error, Gradcheck,
    GruConfig, LastHidden, LastStep, Layer, LinearConfig, LstmConfig, MaxPool, MeanPool, Mode,
    Parameters, RnnConfig, Sequence, Tensor, TimeDistributed, TokenBatch,
};

/// A random `(T, B, F)` sequence batch with random lengths, one of them `T`.
fn random_sequence(t: usize, b: usize, f: usize, rng: &mut StdRng) -> Sequence<f64> {
    let mut lengths: Vec<usize> = (0..b).map(|_| rng.random_range(1..=t)).collect();
    lengths[rng.random_range(0..b)] = t;
    Sequence::new(Tensor::randn(&[t, b, f], rng), Some(lengths)).unwrap()
}

/// The slow reference of a pooling adapter: `reduce` over each sample's valid steps of each
/// feature, given the steps' values in order.
fn reference_pool(x: &Sequence<f64>, reduce: impl Fn(&[f64], usize) -> f64) -> Vec<f64> {
    let (b_n, f_n) = (x.batch_size(), x.features());
    let mut out = Vec::new();
    for b in 0..b_n {
        for f in 0..f_n {
            let values: Vec<f64> = (0..x.length(b)).map(|t| x.data().at(&[t, b, f])).collect();
            out.push(reduce(&values, f));
        }
    }
    out
}

#[test]
fn pooling_adapters_match_slow_references() {
    let mut rng = StdRng::seed_from_u64(3);
    for directions in [1, 2] {
        let x = random_sequence(6, 4, 6, &mut rng);
        // a sequence that says it holds two direction blocks, as a bidirectional output does
        let x = if directions == 2 {
            let lstm = LstmConfig::new(6, 3)
                .with_bidirectional(true)
                .init_seeded::<f64>(1)
                .unwrap();
            lstm.forward(&x, Mode::Eval).unwrap().0
        } else {
            x
        };
        let width = x.features() / directions;
        let run = |layer: &dyn Fn(&Sequence<f64>) -> Tensor<f64>| layer(&x).into_vec();
        let mean = run(&|x| Layer::<f64>::infer(&MeanPool, x).unwrap());
        let max = run(&|x| Layer::<f64>::infer(&MaxPool, x).unwrap());
        let last = run(&|x| Layer::<f64>::infer(&LastStep, x).unwrap());
        let hidden = run(&|x| Layer::<f64>::infer(&LastHidden, x).unwrap());
        let close = |a: &[f64], b: &[f64]| {
            a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-14) && a.len() == b.len()
        };
        assert!(close(
            &mean,
            &reference_pool(&x, |v, _| v.iter().sum::<f64>() / v.len() as f64)
        ));
        assert_eq!(
            max,
            reference_pool(&x, |v, _| v.iter().copied().fold(f64::MIN, f64::max))
        );
        assert_eq!(last, reference_pool(&x, |v, _| v[v.len() - 1]));
        assert_eq!(
            hidden,
            reference_pool(&x, |v, f| if f < width { v[v.len() - 1] } else { v[0] })
        );
    }
}

#[test]
fn last_hidden_is_pytorch_h_n_of_the_last_layer() {
    // PyTorch: cat(h_n[-2], h_n[-1]) for a bidirectional network, each at its own length
    let mut rng = StdRng::seed_from_u64(5);
    let x = random_sequence(7, 3, 4, &mut rng);
    for bidirectional in [false, true] {
        let gru = GruConfig::new(4, 5)
            .with_num_layers(2)
            .with_bidirectional(bidirectional)
            .init_seeded::<f64>(2)
            .unwrap();
        let full = recurrent::SequenceLayer::forward_with_state(
            &gru,
            x.data(),
            None,
            x.lengths(),
            Mode::Eval,
        )
        .unwrap();
        let h_n = full.state.h();
        let slots = h_n.shape()[0];
        let directions = if bidirectional { 2 } else { 1 };
        let (out, _) = gru.forward(&x, Mode::Eval).unwrap();
        let last = Layer::<f64>::infer(&LastHidden, &out).unwrap();
        for b in 0..3 {
            for d in 0..directions {
                for j in 0..5 {
                    let slot = slots - directions + d;
                    assert_eq!(last.at(&[b, d * 5 + j]), h_n.at(&[slot, b, j]));
                }
            }
        }
    }
}

/// A whole sentence classifier — embedding, recurrent network, each adapter, a head, a loss —
/// against finite differences.
#[test]
fn composed_models_match_finite_differences() {
    let problems = (any::<u64>(), 0usize..3, 0usize..4, any::<bool>(), 1usize..3);
    let result = runner(24).run(&problems, |(seed, cell, pool, bidirectional, layers)| {
        let mut rng = StdRng::seed_from_u64(seed);
        let (vocab, e, h, t, b) = (7, 3, 4, 5, 3);
        let lengths: Vec<usize> = (0..b)
            .map(|k| if k == 0 { t } else { rng.random_range(1..=t) })
            .collect();
        // valid steps hold tokens 1.., padded ones the padding token 0
        let ids = (0..t * b)
            .map(|i| {
                if i / b < lengths[i % b] {
                    rng.random_range(1..vocab)
                } else {
                    0
                }
            })
            .collect();
        let tokens = TokenBatch::new(ids, t, b, Some(lengths)).unwrap();
        let targets: Vec<usize> = (0..b).map(|_| rng.random_range(0..2)).collect();
        let loss =
            |y: &Tensor<f64>| cross_entropy_with_logits(y, &targets).map(|l| (l.value, l.grad));
        let embedding = EmbeddingConfig::new(vocab, e)
            .with_padding_idx(Some(0))
            .init_seeded(seed)
            .unwrap();
        let d = if bidirectional { 2 } else { 1 };
        let head = LinearConfig::new(d * h, 2)
            .init_seeded(seed ^ 1)
            .unwrap()
            .named("head");
        macro_rules! check {
            ($rnn:expr) => {{
                let rnn = $rnn
                    .with_num_layers(layers)
                    .with_bidirectional(bidirectional)
                    .init_seeded(seed ^ 2)
                    .unwrap();
                let front = embedding.clone().named("embedding").then(rnn.named("rnn"));
                let check = Gradcheck::new();
                let report = match pool {
                    0 => check.check_model(
                        &front.then(LastHidden).then(head.clone()),
                        &tokens,
                        Mode::Eval,
                        loss,
                    ),
                    1 => check.check_model(
                        &front.then(MeanPool).then(head.clone()),
                        &tokens,
                        Mode::Eval,
                        loss,
                    ),
                    2 => check.check_model(
                        &front.then(MaxPool).then(head.clone()),
                        &tokens,
                        Mode::Eval,
                        loss,
                    ),
                    _ => check.check_model(
                        &front.then(LastStep).then(head.clone()),
                        &tokens,
                        Mode::Eval,
                        loss,
                    ),
                }
                .unwrap();
                prop_assert!(report.worst_error < 1e-6, "{}", report);
                prop_assert!(report.checked > 0);
            }};
        }
        match cell {
            0 => check!(LstmConfig::new(e, h)),
            1 => check!(GruConfig::new(e, h)),
            _ => check!(RnnConfig::new(e, h)),
        }
        Ok(())
    });
    result.unwrap();
}

/// A per-step head (time-distributed) and dropout layers in training mode, against finite
/// differences: the masks repeat for the same mode.
#[test]
fn per_step_heads_and_dropout_match_finite_differences() {
    let result = runner(16).run(&any::<u64>(), |seed| {
        let mut rng = StdRng::seed_from_u64(seed);
        let x = random_sequence(5, 3, 4, &mut rng);
        let model = LstmConfig::new(4, 6)
            .with_num_layers(2)
            .with_dropout(0.3)
            .init_seeded::<f64>(seed)
            .unwrap()
            .then(TimeDistributed::new(
                DropoutConfig::new(0.2).init().unwrap(),
            ))
            .then(TimeDistributed::new(
                LinearConfig::new(6, 2).init_seeded(seed ^ 7).unwrap(),
            ));
        let target = Tensor::randn(&[5, 3, 2], &mut rng);
        let report = Gradcheck::new()
            .check_model(&model, &x, Mode::Train { seed }, |y| {
                mse_loss(y.data(), &target).map(|l| (l.value, l.grad))
            })
            .unwrap();
        prop_assert!(report.worst_error < 1e-6, "{}", report);
        Ok(())
    });
    result.unwrap();
}

#[test]
fn chains_name_their_layers_like_nn_sequential() {
    let model = EmbeddingConfig::new(10, 4)
        .init_seeded::<f32>(0)
        .unwrap()
        .then(LstmConfig::new(4, 3).init_seeded(1).unwrap())
        .then(LastHidden)
        .then(LinearConfig::new(3, 2).init_seeded(2).unwrap());
    let names = model.param_names();
    assert_eq!(names[0], "0.weight");
    assert_eq!(names[1], "1.weight_ih_l0");
    assert_eq!(names[names.len() - 1], "3.bias");

    let named = EmbeddingConfig::new(10, 4)
        .init_seeded::<f32>(0)
        .unwrap()
        .named("embedding")
        .then(LstmConfig::new(4, 3).init_seeded(1).unwrap().named("rnn"))
        .then(LastHidden)
        .then(
            LinearConfig::new(3, 2)
                .init_seeded(2)
                .unwrap()
                .named("head"),
        );
    let names = named.param_names();
    assert_eq!(names[0], "embedding.weight");
    assert_eq!(names[1], "rnn.weight_ih_l0");
    assert_eq!(names[names.len() - 1], "head.bias");
}

#[test]
fn gradients_carry_the_parameters_names() {
    let model = EmbeddingConfig::new(10, 4)
        .init_seeded::<f64>(0)
        .unwrap()
        .named("embedding")
        .then(GruConfig::new(4, 3).init_seeded(1).unwrap())
        .then(MeanPool)
        .then(
            LinearConfig::new(3, 2)
                .init_seeded(2)
                .unwrap()
                .named("head"),
        );
    let tokens = TokenBatch::new(vec![1, 2, 3, 4, 5, 6], 3, 2, None).unwrap();
    let (y, trace) = model.forward(&tokens, Mode::Eval).unwrap();
    let grads = model.backward(&trace, &y.map(|_| 1.0)).unwrap();
    let grad_names: Vec<&str> = grads.params.iter().map(|(n, _)| n).collect();
    assert_eq!(grad_names, model.param_names());
}

#[test]
fn a_chain_that_does_not_fit_names_both_layers_and_shapes() {
    let model = EmbeddingConfig::new(10, 4)
        .init_seeded::<f32>(0)
        .unwrap()
        .named("embedding")
        .then(LstmConfig::new(5, 3).init_seeded(1).unwrap().named("rnn"));
    let tokens = TokenBatch::new(vec![1, 2], 1, 2, None).unwrap();
    let e = model.forward(&tokens, Mode::Eval).unwrap_err();
    assert!(matches!(e, Error::InLayer { .. }));
    let message = e.to_string();
    assert!(message.starts_with("in layer `rnn` ("), "{message}");
    assert!(
        message.contains("reading the output of layer `embedding`"),
        "{message}"
    );
    assert!(
        message.contains("[1, 2, 5]") && message.contains("[1, 2, 4]"),
        "{message}"
    );
}

#[test]
fn inference_equals_evaluation_and_ignores_the_dropout_seed() {
    let mut rng = StdRng::seed_from_u64(9);
    let x = random_sequence(6, 3, 4, &mut rng);
    let model = LstmConfig::new(4, 5)
        .with_num_layers(2)
        .with_dropout(0.5)
        .init_seeded::<f64>(0)
        .unwrap()
        .then(TimeDistributed::new(
            DropoutConfig::new(0.5).init().unwrap(),
        ))
        .then(MaxPool);
    let inferred = model.infer(&x).unwrap();
    assert_eq!(inferred, model.forward(&x, Mode::Eval).unwrap().0);
    let train = |seed| model.forward(&x, Mode::Train { seed }).unwrap().0;
    assert_ne!(train(1), inferred, "dropout is active in training");
    assert_eq!(train(1), train(1), "the masks come from the seed alone");
    assert_ne!(train(1), train(2));
}

recurrent::model! {
    /// Two encoders read the same tokens; their final states are added.
    #[derive(Debug, Clone)]
    struct Twin<T> {
        embedding: recurrent::Embedding<T>,
        left: recurrent::Gru<T>,
        right: recurrent::Lstm<T>,
    }
}

#[test]
fn the_model_macro_names_fields_once_for_parameters_and_gradients() {
    let twin = Twin::<f64> {
        embedding: EmbeddingConfig::new(6, 3).init_seeded(0).unwrap(),
        left: GruConfig::new(3, 2).init_seeded(1).unwrap(),
        right: LstmConfig::new(3, 2).init_seeded(2).unwrap(),
    };
    let names = twin.param_names();
    assert_eq!(names[0], "embedding.weight");
    assert_eq!(names[1], "left.weight_ih_l0");
    assert_eq!(names[5], "right.weight_ih_l0");

    let tokens = TokenBatch::new(vec![1, 2, 3, 4], 2, 2, None).unwrap();
    let (x, e_trace) = twin.embedding.forward(&tokens, Mode::Eval).unwrap();
    let (l, l_trace) = twin.left.forward(&x, Mode::Eval).unwrap();
    let (r, r_trace) = twin.right.forward(&x, Mode::Eval).unwrap();
    let ones = Tensor::full(&[2, 2, 2], 1.0);
    let gl = twin.left.backward(&l_trace, &ones).unwrap();
    let gr = twin.right.backward(&r_trace, &ones).unwrap();
    let d_x = Tensor::from_vec(
        gl.input
            .as_slice()
            .iter()
            .zip(gr.input.as_slice())
            .map(|(a, b)| a + b)
            .collect(),
        &[2, 2, 3],
    )
    .unwrap();
    let ge = twin.embedding.backward(&e_trace, &d_x).unwrap();
    let grads = Twin::collect_grads(ge.params, gl.params, gr.params);
    let grad_names: Vec<&str> = grads.iter().map(|(n, _)| n).collect();
    assert_eq!(grad_names, names);
    assert_eq!((l.steps(), r.features()), (2, 2));
}

#[test]
fn a_layer_that_changes_the_width_resets_the_directions() {
    // a bidirectional output mapped to 3 features per step is no longer two direction blocks:
    // LastHidden then reads every feature at each sample's last step
    let mut rng = StdRng::seed_from_u64(4);
    let x = random_sequence(5, 3, 2, &mut rng);
    let model = LstmConfig::new(2, 3)
        .with_bidirectional(true)
        .init_seeded::<f64>(0)
        .unwrap()
        .then(TimeDistributed::new(
            LinearConfig::new(6, 3).init_seeded(1).unwrap(),
        ));
    let out = model.infer(&x).unwrap();
    assert_eq!(out.directions(), 1);
    assert_eq!(
        Layer::<f64>::infer(&LastHidden, &out).unwrap(),
        Layer::<f64>::infer(&LastStep, &out).unwrap()
    );
    let e = out.with_directions(4).unwrap_err();
    assert!(e.to_string().contains("do not divide 3 features"), "{e}");
}

#[test]
fn empty_batches_and_misshapen_gradients_are_errors() {
    assert!(Sequence::new(Tensor::<f64>::zeros(&[0, 2, 3]), None).is_err());
    assert!(TokenBatch::new(vec![], 0, 2, None).is_err());
    let head = TimeDistributed::new(LinearConfig::new(3, 2).init_seeded::<f64>(0).unwrap());
    let x = Sequence::new(Tensor::zeros(&[4, 2, 3]), None).unwrap();
    let (_, trace) = head.forward(&x, Mode::Eval).unwrap();
    // the right number of values in the wrong layout
    let e = head
        .backward(&trace, &Tensor::zeros(&[2, 4, 2]))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "shape mismatch in time-distributed output gradient: expected [4, 2, 2], got [2, 4, 2]"
    );
}

#[test]
fn embeddings_are_zero_past_each_length() {
    let emb = EmbeddingConfig::new(10, 3).init_seeded::<f32>(0).unwrap();
    let tokens = TokenBatch::new(vec![1, 2, 3, 4], 2, 2, Some(vec![2, 1])).unwrap();
    let x = emb.infer(&tokens).unwrap();
    assert!(x.data().as_slice()[9..12].iter().all(|&v| v == 0.0));
    assert!(x.data().as_slice()[6..9].iter().any(|&v| v != 0.0));
}

/// A chain built by generic code through `Layer::then` counts its layers as one built
/// directly: the same names, so weight files and optimiser states move between them.
#[test]
fn chains_count_their_layers_however_they_are_built() {
    fn add_head<L: Layer<f32, Output = Tensor<f32>, OutputGrad = Tensor<f32>>>(
        body: L,
    ) -> impl Layer<f32> {
        body.then(LinearConfig::new(2, 2).init_seeded(2).unwrap())
    }
    let body = || {
        LinearConfig::new(4, 3)
            .init_seeded::<f32>(0)
            .unwrap()
            .then(LinearConfig::new(3, 2).init_seeded(1).unwrap())
    };
    let direct = body().then(LinearConfig::new(2, 2).init_seeded(2).unwrap());
    assert_eq!(direct.len(), 3);
    assert_eq!(add_head(body()).param_names(), direct.param_names());
    assert_eq!(direct.param_names()[4], "2.weight");
}

#[test]
fn a_failure_deep_in_a_nested_chain_names_every_level() {
    let inner = LinearConfig::new(3, 2)
        .init_seeded::<f64>(0)
        .unwrap()
        .then(LinearConfig::new(5, 1).init_seeded(1).unwrap());
    let outer = LinearConfig::new(4, 3)
        .init_seeded::<f64>(2)
        .unwrap()
        .then(inner);
    let e = outer
        .infer(&Tensor::zeros(&[1, 4]))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("in layer 1 (Chain<"), "{e}");
    assert!(
        e.contains(": in layer 1 (Linear<f64>), reading the output of layer 0"),
        "{e}"
    );
}
