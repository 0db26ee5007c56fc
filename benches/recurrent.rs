//! Every cell × workload × mode of the performance contract, in `f32`, through the PyTorch-style
//! builders (`Lstm`, `Gru`, `Rnn`), time-major.
//!
//! Workloads: small T50 B16 I64 H128, medium T100 B32 I256 H256, large T100 B64 I512 H512,
//! stream T100 B1 I128 H256, bi2 = medium as a two-layer bidirectional network. Modes: `infer`
//! (forward) and `train` (forward and backward of `sum(output)` to the input and every weight).
//!
//! FLOPs per call: forward `2·G·H·(I + H)` per time step, sample, layer and direction (G = 4
//! LSTM, 3 GRU, 1 RNN); training counts 3× that. Criterion's elements/s read as FLOP/s. For the
//! side-by-side table against PyTorch, run `cargo run --release --example compare`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{rngs::StdRng, SeedableRng};
use recurrent::{GruConfig, LstmConfig, Mode, RnnConfig, SequenceLayer, Tensor};

/// `(name, T, B, I, H, layers, bidirectional)`.
const WORKLOADS: &[(&str, usize, usize, usize, usize, usize, bool)] = &[
    ("small", 50, 16, 64, 128, 1, false),
    ("medium", 100, 32, 256, 256, 1, false),
    ("large", 100, 64, 512, 512, 1, false),
    ("stream", 100, 1, 128, 256, 1, false),
    ("bi2", 100, 32, 256, 256, 2, true),
];

/// Forward FLOPs of a workload with `g` gates.
fn forward_flops(
    &(_, t, b, i, h, layers, bi): &(&str, usize, usize, usize, usize, usize, bool),
    g: usize,
) -> u64 {
    let d = if bi { 2 } else { 1 };
    (0..layers)
        .map(|k| {
            let input = if k == 0 { i } else { d * h };
            (d * t * b * 2 * g * h * (input + h)) as u64
        })
        .sum()
}

fn bench_network<N: SequenceLayer<f32>>(
    c: &mut Criterion,
    cell: &str,
    gates: usize,
    make: impl Fn(usize, usize, usize, bool, &mut StdRng) -> N,
) {
    let rng = &mut StdRng::seed_from_u64(0);
    for mode in ["infer", "train"] {
        let mut group = c.benchmark_group(format!("{cell}_{mode}/f32"));
        group.sample_size(10);
        for workload in WORKLOADS {
            let &(name, t, b, i, h, layers, bi) = workload;
            let net = make(i, h, layers, bi, rng);
            let x = Tensor::<f32>::randn(&[t, b, i], rng);
            let flops = forward_flops(workload, gates);
            group.throughput(Throughput::Elements(if mode == "infer" {
                flops
            } else {
                3 * flops
            }));
            group.bench_function(BenchmarkId::from_parameter(name), |bench| {
                bench.iter(|| {
                    let out = net
                        .forward_with_state(&x, None, None, Mode::Eval)
                        .expect("valid input");
                    if mode == "train" {
                        let d_output = Tensor::full(out.output.shape(), 1.0);
                        net.backward_with_state(&out.trace, Some(&d_output), None)
                            .expect("valid gradient");
                    }
                })
            });
        }
        group.finish();
    }
}

fn recurrent(c: &mut Criterion) {
    bench_network(c, "lstm", 4, |i, h, layers, bi, rng| {
        let config = LstmConfig::new(i, h)
            .with_num_layers(layers)
            .with_bidirectional(bi);
        config.init(rng).expect("valid config")
    });
    bench_network(c, "gru", 3, |i, h, layers, bi, rng| {
        let config = GruConfig::new(i, h)
            .with_num_layers(layers)
            .with_bidirectional(bi);
        config.init(rng).expect("valid config")
    });
    bench_network(c, "rnn_tanh", 1, |i, h, layers, bi, rng| {
        let config = RnnConfig::new(i, h)
            .with_num_layers(layers)
            .with_bidirectional(bi);
        config.init(rng).expect("valid config")
    });
}

criterion_group!(benches, recurrent);
criterion_main!(benches);
