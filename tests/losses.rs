//! `CrossEntropyLoss` against PyTorch's `F.cross_entropy` (values pasted from PyTorch 2.15,
//! float64, each with the snippet that made it), against a slow reference written from the
//! soft-target formula, and its gradients against central finite differences.

mod common;

use proptest::prelude::*;
use rand::{rngs::StdRng, Rng, SeedableRng};
use recurrent::{
    cross_entropy_with_logits, CrossEntropyLoss, Error, Gradcheck, PerPosition, Reduction,
    Sequence, Tensor,
};

/// Agreement with PyTorch's float64 numbers.
const TORCH_TOL: f64 = 1e-14;
/// The bound on a gradient check's worst error.
const FD_BOUND: f64 = 1e-7;

#[track_caller]
fn assert_close(actual: &[f64], expected: &[f64], tol: f64) {
    assert_eq!(actual.len(), expected.len(), "lengths");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        let ok = (a - e).abs() <= tol * e.abs().max(1.0) || a.is_nan() && e.is_nan();
        assert!(
            ok,
            "element {i}: got {a}, expected {e}\n{actual:?}\n{expected:?}"
        );
    }
}

fn tensor(data: &[f64], dims: &[usize]) -> Tensor<f64> {
    Tensor::from_vec(data.to_vec(), dims).unwrap()
}

/// The logits of the PyTorch cases `X` (5 × 3).
fn x5() -> Tensor<f64> {
    #[rustfmt::skip]
    let x = [1.0, 2.0, 3.0,  0.5, -1.0, 0.25,  -2.0, 0.0, 2.0,  0.3, 0.1, -0.4,  1.5, 1.5, -0.5];
    tensor(&x, &[5, 3])
}

/// The sequence of the PyTorch cases `S`: `(T, B, C) = (3, 2, 4)`, lengths `[3, 1]`; the
/// padding holds 9s, which must not matter.
fn s3() -> Sequence<f64> {
    #[rustfmt::skip]
    let s = [
        0.1, 0.2, -0.3, 1.0,   2.0, -1.0, 0.0, 0.5,
        -0.5, 0.4, 0.3, 0.0,   9.0, 9.0, 9.0, 9.0,
        1.2, -0.7, 0.0, 0.6,   9.0, 9.0, 9.0, 9.0,
    ];
    Sequence::new(tensor(&s, &[3, 2, 4]), Some(vec![3, 1])).unwrap()
}

const W3: [f64; 3] = [0.2, 1.0, 3.0];

/// ```python
/// X = torch.tensor([[1., 2, 3], [.5, -1, .25], [-2, 0, 2], [.3, .1, -.4], [1.5, 1.5, -.5]],
///                  dtype=torch.float64, requires_grad=True)
/// W = torch.tensor([0.2, 1.0, 3.0], dtype=torch.float64)
/// l = F.cross_entropy(X, torch.tensor([2, 1, 0, 1, 1]), weight=W, ignore_index=1,
///                     label_smoothing=0.1, reduction=red)   # red in mean, sum, none
/// (l if l.dim() == 0 else l.sum()).backward(); print(l, X.grad)
/// ```
#[test]
fn weighted_ignored_smoothed_matches_pytorch_for_every_reduction() {
    let targets = [2, 1, 0, 1, 1];
    let ce = CrossEntropyLoss::new()
        .with_weight(W3)
        .with_ignore_index(1)
        .with_label_smoothing(0.1);
    let mean = ce.clone().forward(&x5(), &targets).unwrap();
    assert_close(&[mean.value], &[0.6447934562943776], TORCH_TOL);
    #[rustfmt::skip]
    let mean_grad = [
        0.0778188003553793, 0.20677985139446622, -0.2845986517498457, 0.0, 0.0, 0.0,
        -0.05674570933568666, 0.00131437611595317, 0.055431333219733495,
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    ];
    assert_close(mean.grad.as_slice(), &mean_grad, TORCH_TOL);

    let sum = ce.clone().with_reduction(Reduction::Sum);
    let sum = sum.forward(&x5(), &targets).unwrap();
    assert_close(&[sum.value], &[2.0633390601420083], TORCH_TOL);
    #[rustfmt::skip]
    let sum_grad = [
        0.24902016113721379, 0.6616955244622921, -0.9107156855995062, 0.0, 0.0, 0.0,
        -0.18158626987419732, 0.004206003571050141, 0.17738026630314718,
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    ];
    assert_close(sum.grad.as_slice(), &sum_grad, TORCH_TOL);

    let none = ce.with_reduction(Reduction::None);
    let each = none.forward_per_position(&x5(), &targets).unwrap();
    assert_eq!(each.values.shape(), &[5]);
    let values = [1.2042676056887072, 0.0, 0.8590714544533012, 0.0, 0.0];
    assert_close(each.values.as_slice(), &values, TORCH_TOL);
    assert_close(each.grad.as_slice(), &sum_grad, TORCH_TOL);
    // the mean divides by the weights of the counted targets, w_2 + w_0
    assert_close(&[sum.value / (3.0 + 0.2)], &[mean.value], TORCH_TOL);
}

/// ```python
/// l = F.cross_entropy(X, torch.tensor([2, 0, 0, 1, 2]), label_smoothing=0.2, ignore_index=0)
/// ```
#[test]
fn unweighted_smoothing_matches_pytorch() {
    let ce = CrossEntropyLoss::new()
        .with_label_smoothing(0.2)
        .with_ignore_index(0);
    let loss = ce.forward(&x5(), &[2, 0, 0, 1, 2]).unwrap();
    assert_close(&[loss.value], &[1.3863697257740575], TORCH_TOL);
    #[rustfmt::skip]
    let grad = [
        0.007787968834571253, 0.05935393479604365, -0.06714190363061495,
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
        0.12174660326246917, -0.17101718398005494, 0.04927058071758568,
        0.1338812880556048, 0.1338812880556048, -0.2677625761112096,
    ];
    assert_close(loss.grad.as_slice(), &grad, TORCH_TOL);
}

/// ```python
/// l = F.cross_entropy(X, torch.tensor([2, 1, 0, 1, 1]), label_smoothing=1.0)
/// ```
#[test]
fn full_smoothing_matches_pytorch() {
    let ce = CrossEntropyLoss::new().with_label_smoothing(1.0);
    let loss = ce.forward(&x5(), &[2, 1, 0, 1, 1]).unwrap();
    assert_close(&[loss.value], &[1.4785639317781305], TORCH_TOL);
    #[rustfmt::skip]
    let grad = [
        -0.04866055203259058, -0.017720972455707133, 0.0663815244882977,
        0.033236879295976324, -0.044375172456626116, 0.011138293160649772,
        -0.06349141867137331, -0.04320458110142699, 0.10669599977280032,
        0.019714628624148193, 0.004056356278633701, -0.02377098490278191,
        0.026995439500029573, 0.026995439500029573, -0.05399087900005914,
    ];
    assert_close(loss.grad.as_slice(), &grad, TORCH_TOL);
}

/// An ignored class at or past `C` (a padding id) is allowed, and its targets are not out of
/// range:
///
/// ```python
/// l = F.cross_entropy(X, torch.tensor([2, 5, 0, 5, 1]), ignore_index=5, weight=W)
/// ```
#[test]
fn ignored_class_past_the_classes_matches_pytorch() {
    let ce = CrossEntropyLoss::new().with_ignore_index(5).with_weight(W3);
    let loss = ce.forward(&x5(), &[2, 5, 0, 5, 1]).unwrap();
    assert_close(&[loss.value], &[0.6690542606458654], TORCH_TOL);
    #[rustfmt::skip]
    let grad = [
        0.06430755226455745, 0.17480605075342687, -0.2391136030179844, 0.0, 0.0, 0.0,
        -0.04686303619159682, 0.005586210848866588, 0.04127682534273023, 0.0, 0.0, 0.0,
        0.11150250734130504, -0.12659273075393304, 0.015090223412628008,
    ];
    assert_close(loss.grad.as_slice(), &grad, TORCH_TOL);
}

/// Nothing counted: the mean is 0 / 0, NaN with a zero gradient; the sum is 0. Counted
/// targets of total weight 0 give NaN everywhere in their rows:
///
/// ```python
/// F.cross_entropy(X, torch.tensor([1] * 5), ignore_index=1)              # nan, grad 0
/// F.cross_entropy(X, torch.tensor([1] * 5), ignore_index=1, weight=W,
///                 label_smoothing=0.3)                                   # nan, grad 0
/// F.cross_entropy(X[:2], torch.tensor([0, 0]),
///                 weight=torch.tensor([0., 1, 1], dtype=torch.float64))  # nan, grad nan
/// ```
#[test]
fn all_ignored_mean_is_nan_as_in_pytorch() {
    let plain = CrossEntropyLoss::new().with_ignore_index(1);
    let smoothed = plain.clone().with_weight(W3).with_label_smoothing(0.3);
    for ce in [plain.clone(), smoothed] {
        let loss = ce.forward(&x5(), &[1; 5]).unwrap();
        assert!(loss.value.is_nan());
        assert!(loss.grad.as_slice().iter().all(|&g| g == 0.0));
    }
    let sum = plain.with_reduction(Reduction::Sum);
    let sum = sum.forward(&x5(), &[1; 5]).unwrap();
    assert_eq!(sum.value, 0.0);

    let two = tensor(&x5().as_slice()[..6], &[2, 3]);
    let zero = CrossEntropyLoss::new().with_weight([0.0, 1.0, 1.0]);
    let loss = zero.forward(&two, &[0, 0]).unwrap();
    assert!(loss.value.is_nan());
    assert!(loss.grad.as_slice().iter().all(|g| g.is_nan()));

    // an empty batch: NaN as well
    let empty = CrossEntropyLoss::new().forward(&Tensor::<f64>::zeros(&[0, 3]), &[]);
    assert!(empty.unwrap().value.is_nan());
}

/// Steps past a sequence's length are ignored: PyTorch on the flattened logits with their
/// targets set to the ignored class.
///
/// ```python
/// S = ...  # (3, 2, 4), see s3(); sample 1 has length 1
/// W4 = torch.tensor([1.0, 0.5, 2.0, 1.5], dtype=torch.float64)
/// l = F.cross_entropy(S.reshape(6, 4), torch.tensor([3, 1, 0, -100, 2, -100]), weight=W4,
///                     label_smoothing=0.05, reduction=red)  # red in mean, none
/// ```
#[test]
fn sequence_matches_pytorch() {
    let targets = [3, 1, 0, 77, 2, 1000]; // past the end: anything
    let ce = CrossEntropyLoss::new()
        .with_weight(vec![1.0, 0.5, 2.0, 1.5])
        .with_label_smoothing(0.05);
    let mean = ce.forward_sequence(&s3(), &targets).unwrap();
    assert_close(&[mean.value], &[1.7107381087664482], TORCH_TOL);
    assert_eq!(mean.grad.shape(), &[3, 2, 4]);
    #[rustfmt::skip]
    let mean_grad = [
        0.054328014114484964, 0.0615546685313212, 0.033092957037335516, -0.14897563968314173,
        0.07383574171026375, -0.0924494672085595, 0.0053309192254354515, 0.013282806272860324,
        -0.1648883666483168, 0.06666365929592502, 0.056450820126698636, 0.04177388722569319,
        0.0, 0.0, 0.0, 0.0,
        0.19379176428920458, 0.028109088149511276, -0.3258780567500573, 0.10397720431134136,
        0.0, 0.0, 0.0, 0.0,
    ];
    assert_close(mean.grad.as_slice(), &mean_grad, TORCH_TOL);

    let none = ce.with_reduction(Reduction::None);
    let each = none.forward_sequence_per_position(&s3(), &targets).unwrap();
    assert_eq!(each.values.shape(), &[3, 2]);
    #[rustfmt::skip]
    let values = [
        1.1723849117232534, 1.7058879005345293, 1.9824089881842755, 0.0, 3.6930087433901826,
        0.0,
    ];
    assert_close(each.values.as_slice(), &values, TORCH_TOL);
    #[rustfmt::skip]
    let grad = [
        0.2716400705724248, 0.307773342656606, 0.16546478518667757, -0.7448781984157086,
        0.3691787085513187, -0.46224733604279744, 0.026654596127177247, 0.0664140313643016,
        -0.8244418332415838, 0.3333182964796251, 0.28225410063349315, 0.2088694361284659,
        0.0, 0.0, 0.0, 0.0,
        0.968958821446023, 0.1405454407475564, -1.6293902837502863, 0.5198860215567068,
        0.0, 0.0, 0.0, 0.0,
    ];
    assert_close(each.grad.as_slice(), &grad, TORCH_TOL);
}

/// ```python
/// l = F.cross_entropy(S.reshape(6, 4), torch.tensor([3, 1, 0, -100, 2, -100]))
/// ```
/// and the same with the ignored class inside the valid steps: sample 0 at step 1 (target 0).
#[test]
fn sequence_lengths_and_ignored_class_combine() {
    let plain = CrossEntropyLoss::new();
    let loss = plain.forward_sequence(&s3(), &[3, 1, 0, 5, 2, 5]).unwrap();
    assert_close(&[loss.value], &[1.9957928732274053], TORCH_TOL);
    #[rustfmt::skip]
    let grad = [
        0.04775463370965123, 0.05277703237926152, 0.0320108882666685, -0.13254255435558127,
        0.17752498072154357, -0.24116155164781278, 0.024025393547524303, 0.039611177378744936,
        -0.21591156376335408, 0.08384402382212965, 0.07586521003296127, 0.05620232990826319,
        0.0, 0.0, 0.0, 0.0,
        0.1250266014580921, 0.01870005614618553, -0.21234271130576898, 0.06861605370149132,
        0.0, 0.0, 0.0, 0.0,
    ];
    assert_close(loss.grad.as_slice(), &grad, TORCH_TOL);

    // ignoring class 0 as well leaves steps (0, 0), (0, 1) and (2, 0): the same as the flat
    // loss with the other three targets ignored
    let ignoring = CrossEntropyLoss::new().with_ignore_index(0);
    let seq = ignoring
        .forward_sequence(&s3(), &[3, 1, 0, 5, 2, 5])
        .unwrap();
    let flat = ignoring
        .forward(
            &s3().into_data().reshape(&[6, 4]).unwrap(),
            &[3, 1, 0, 0, 2, 0],
        )
        .unwrap();
    assert_close(&[seq.value], &[flat.value], 1e-15);
    assert_close(seq.grad.as_slice(), flat.grad.as_slice(), 1e-15);
}

#[test]
fn the_plain_function_is_the_default_loss() {
    let a = cross_entropy_with_logits(&x5(), &[2, 1, 0, 1, 1]).unwrap();
    let b = CrossEntropyLoss::new()
        .forward(&x5(), &[2, 1, 0, 1, 1])
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(Reduction::default(), Reduction::Mean);
}

#[test]
fn f32_is_stable() {
    let logits =
        Tensor::<f32>::from_vec(vec![1000.0, 0.0, -1000.0, 0.0, 5.0, 5.0], &[3, 2]).unwrap();
    let ce = CrossEntropyLoss::new()
        .with_label_smoothing(0.1)
        .with_weight([1.0, 2.0]);
    let loss = ce.forward(&logits, &[1, 0, 1]).unwrap();
    assert!(
        loss.value.is_finite() && loss.value > 300.0,
        "{}",
        loss.value
    );
    assert!(loss.grad.as_slice().iter().all(|g| g.is_finite()));
}

#[test]
fn bad_options_and_targets_are_errors() {
    let x = x5();
    let t = [2, 1, 0, 1, 1];
    let message =
        |ce: CrossEntropyLoss, targets: &[usize]| ce.forward(&x, targets).unwrap_err().to_string();
    assert_eq!(
        message(CrossEntropyLoss::new(), &[2, 1, 3, 1, 1]),
        "invalid cross-entropy target: 3 at position 2 is not a class in 0..3"
    );
    assert_eq!(
        message(
            CrossEntropyLoss::new().with_ignore_index(4),
            &[2, 1, 3, 4, 1]
        ),
        "invalid cross-entropy target: 3 at position 2 is not a class in 0..3"
    );
    for bad in [1.5, -0.1, f64::NAN] {
        let e = message(CrossEntropyLoss::new().with_label_smoothing(bad), &t);
        assert_eq!(
            e,
            format!("invalid label smoothing: {bad} is not in [0, 1]")
        );
    }
    assert_eq!(
        message(CrossEntropyLoss::new().with_weight([1.0, 2.0]), &t),
        "shape mismatch in cross-entropy class weights: expected [3], got [2]"
    );
    assert_eq!(
        message(
            CrossEntropyLoss::new().with_weight([1.0, f64::INFINITY, 1.0]),
            &t
        ),
        "invalid cross-entropy class weight: inf for class 1 is not finite"
    );
    assert_eq!(
        message(CrossEntropyLoss::new(), &[0, 1]),
        "shape mismatch in cross-entropy targets: expected [5], got [2]"
    );
    let e = CrossEntropyLoss::new()
        .forward(&Tensor::<f64>::zeros(&[2, 3, 4]), &[0, 1])
        .unwrap_err();
    assert!(matches!(e, Error::RankMismatch { expected: 2, .. }), "{e}");

    // each reduction has its methods
    let none = CrossEntropyLoss::new().with_reduction(Reduction::None);
    let e = none.forward(&x, &t).unwrap_err();
    assert!(e.to_string().contains("call forward_per_position"), "{e}");
    let e = none.forward_sequence(&s3(), &[0; 6]).unwrap_err();
    assert!(matches!(
        e,
        Error::InvalidArgument {
            name: "reduction",
            ..
        }
    ));
    let sum = CrossEntropyLoss::new().with_reduction(Reduction::Sum);
    assert_eq!(
        sum.forward_per_position(&x, &t).unwrap_err().to_string(),
        "invalid reduction: Reduction::Sum gives one value: call forward or forward_sequence"
    );

    // sequences: the count is T·B, and a bad target is named by its step and sample
    let e = CrossEntropyLoss::new()
        .forward_sequence(&s3(), &[0; 5])
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "shape mismatch in cross-entropy sequence targets: expected [6], got [5]"
    );
    let e = CrossEntropyLoss::new()
        .forward_sequence(&s3(), &[0, 4, 0, 0, 0, 0])
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid cross-entropy target: 4 at step 0 of sample 1 (position 1) is not a class in 0..4"
    );

    // PerPosition::backward checks its input
    let each = none.forward_per_position(&x, &t).unwrap();
    let e = each.backward(&Tensor::zeros(&[4])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "shape mismatch in cross-entropy d_values: expected [5], got [4]"
    );
}

/// A random problem: logits `(T, B, C)` with lengths, targets, and the options.
#[derive(Debug, Clone)]
struct Problem {
    steps: usize,
    batch: usize,
    classes: usize,
    seed: u64,
    scale: f64,
    weighted: bool,
    ignore: Option<usize>,
    smoothing: f64,
}

fn problems() -> impl Strategy<Value = Problem> {
    (1usize..5, 1usize..4, 1usize..6, any::<u64>(), 0.1f64..4.0)
        .prop_flat_map(|(steps, batch, classes, seed, scale)| {
            (
                Just((steps, batch, classes, seed, scale)),
                any::<bool>(),
                prop::option::of(0..classes + 2),
                prop_oneof![Just(0.0), 0.0f64..=1.0, Just(1.0)],
            )
        })
        .prop_map(
            |((steps, batch, classes, seed, scale), weighted, ignore, smoothing)| Problem {
                steps,
                batch,
                classes,
                seed,
                scale,
                weighted,
                ignore,
                smoothing,
            },
        )
}

impl Problem {
    /// The loss, the sequence of logits, the targets and the class weights (all 1 when the
    /// loss has none).
    fn build(&self) -> (CrossEntropyLoss, Sequence<f64>, Vec<usize>, Vec<f64>) {
        let mut rng = StdRng::seed_from_u64(self.seed);
        let x = Tensor::randn(&[self.steps, self.batch, self.classes], &mut rng);
        let lengths = common::random_lengths(self.steps, self.batch, &mut rng);
        let logits = Sequence::new(x.map(|v| self.scale * v), Some(lengths)).unwrap();
        // targets may hit the ignored class, and past the end anything at all
        let targets = (0..self.steps * self.batch)
            .map(|i| {
                if i / self.batch >= logits.length(i % self.batch) {
                    rng.random_range(0..1000)
                } else if rng.random_bool(0.2) {
                    self.ignore.unwrap_or(0)
                } else {
                    rng.random_range(0..self.classes)
                }
            })
            .collect();
        let mut ce = CrossEntropyLoss::new().with_label_smoothing(self.smoothing);
        let mut weight = vec![1.0; self.classes];
        if self.weighted {
            weight
                .iter_mut()
                .for_each(|w| *w = rng.random_range(0.1..2.0));
            ce = ce.with_weight(weight.clone());
        }
        if let Some(ignore) = self.ignore {
            ce = ce.with_ignore_index(ignore);
        }
        (ce, logits, targets, weight)
    }
}

/// The slow reference: cross-entropy against the smoothed target distribution
/// `q = (1 − ε)·one_hot(t) + ε/C`, each class weighted, `ℓ = −Σ_c w_c q_c log softmax(x)_c`,
/// with a naive log-softmax; the mean divides by `Σ w_t` over the counted positions.
fn reference(
    x: &[f64],
    classes: usize,
    targets: &[usize],
    counted: &[bool],
    weight: &[f64],
    smoothing: f64,
) -> (Vec<f64>, f64) {
    let mut values = vec![0.0; targets.len()];
    let mut total_weight = 0.0;
    for (i, row) in x.chunks(classes).enumerate() {
        if !counted[i] {
            continue;
        }
        let lse = row.iter().map(|v| v.exp()).sum::<f64>().ln();
        let q = |c: usize| {
            (1.0 - smoothing) * f64::from(u8::from(c == targets[i])) + smoothing / classes as f64
        };
        values[i] = -(0..classes)
            .map(|c| weight[c] * q(c) * (row[c] - lse))
            .sum::<f64>();
        total_weight += weight[targets[i]];
    }
    (values, total_weight)
}

/// Values against the reference, gradients against finite differences, for every reduction,
/// with lengths, class weights, an ignored class and label smoothing drawn at random.
#[test]
fn random_problems_match_the_reference_and_finite_differences() {
    let result = common::runner(64).run(&problems(), |p| {
        let (ce, logits, targets, weight) = p.build();
        let (steps, batch, classes) = (p.steps, p.batch, p.classes);
        let counted: Vec<bool> = (0..steps * batch)
            .map(|i| i / batch < logits.length(i % batch) && Some(targets[i]) != p.ignore)
            .collect();
        let (values, total_weight) = reference(
            logits.data().as_slice(),
            classes,
            &targets,
            &counted,
            &weight,
            p.smoothing,
        );
        let sum: f64 = values.iter().sum();

        // mean (the NaN of an all-ignored batch is compared as NaN)
        let mean = ce.forward_sequence(&logits, &targets).unwrap();
        let expected = sum / total_weight;
        prop_assert!(
            (mean.value - expected).abs() <= 1e-12 * expected.abs().max(1.0)
                || mean.value.is_nan() && expected.is_nan(),
            "mean {} vs {}",
            mean.value,
            expected
        );
        let seq = |x: &Tensor<f64>| logits.with_data(x.clone()).unwrap();
        if total_weight > 0.0 {
            let report = Gradcheck::new()
                .check_fn("logits", logits.data(), &mean.grad, |x| {
                    ce.forward_sequence(&seq(x), &targets).unwrap().value
                })
                .unwrap();
            prop_assert!(report.worst_error <= FD_BOUND, "mean: {}", report);
        }

        // sum
        let sum_ce = ce.clone().with_reduction(Reduction::Sum);
        let total = sum_ce.forward_sequence(&logits, &targets).unwrap();
        prop_assert!((total.value - sum).abs() <= 1e-12 * sum.abs().max(1.0));
        let report = Gradcheck::new()
            .check_fn("logits", logits.data(), &total.grad, |x| {
                sum_ce.forward_sequence(&seq(x), &targets).unwrap().value
            })
            .unwrap();
        prop_assert!(report.worst_error <= FD_BOUND, "sum: {}", report);

        // none, through backward with random weights of the positions
        let none = ce.clone().with_reduction(Reduction::None);
        let each: PerPosition<f64> = none
            .forward_sequence_per_position(&logits, &targets)
            .unwrap();
        for (a, e) in each.values.as_slice().iter().zip(&values) {
            prop_assert!((a - e).abs() <= 1e-12 * e.abs().max(1.0), "{} vs {}", a, e);
        }
        let mut rng = StdRng::seed_from_u64(p.seed ^ 1);
        let d_values = Tensor::randn(&[steps, batch], &mut rng);
        let d_logits = each.backward(&d_values).unwrap();
        let report = Gradcheck::new()
            .check_fn("logits", logits.data(), &d_logits, |x| {
                let v = none
                    .forward_sequence_per_position(&seq(x), &targets)
                    .unwrap();
                v.values.dot(&d_values).unwrap()
            })
            .unwrap();
        prop_assert!(report.worst_error <= FD_BOUND, "none: {}", report);

        // the flat forward on the same rows, with the padding's targets set to the ignored
        // class, is the same loss
        let pad = p.ignore.unwrap_or(classes + 2);
        let flat_targets: Vec<usize> = (0..steps * batch)
            .map(|i| if counted[i] { targets[i] } else { pad })
            .collect();
        let flat_x = logits
            .data()
            .clone()
            .reshape(&[steps * batch, classes])
            .unwrap();
        let flat_ce = sum_ce.clone().with_ignore_index(pad);
        let flat = flat_ce.forward(&flat_x, &flat_targets).unwrap();
        prop_assert_eq!(flat.value, total.value);
        prop_assert_eq!(flat.grad.as_slice(), total.grad.as_slice());
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
