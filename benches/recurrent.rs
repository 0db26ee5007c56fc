//! `Recurrent` forward (inference) and forward + backward (training) for every cell, in `f32`.
//!
//! FLOPs per call: forward `2·G·H·(I + H)` per time step and sample (G = 4 LSTM, 3 GRU,
//! 1 RNN), so `T·B·2·G·H·(I + H)`; training counts 3× that (forward, input and weight
//! gradients). Criterion's elements/s read as FLOP/s.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{rngs::StdRng, SeedableRng};
use recurrent::{Cell, GruCellConfig, LstmCellConfig, Recurrent, RnnCellConfig, Tensor};

/// `(T, B, I, H)`: the small and medium workloads.
const WORKLOADS: &[(usize, usize, usize, usize)] = &[(50, 16, 64, 128), (100, 32, 256, 256)];

fn bench_cell<C: Cell<f32>>(
    c: &mut Criterion,
    name: &str,
    gates: usize,
    make: impl Fn(usize, usize) -> C,
) {
    let mut rng = StdRng::seed_from_u64(0);
    let mut infer = c.benchmark_group(format!("{name}_forward/f32"));
    infer.sample_size(20);
    let mut cases = Vec::new();
    for &(t, b, i, h) in WORKLOADS {
        let layer = Recurrent::new(make(i, h));
        let x = Tensor::<f32>::randn(&[t, b, i], &mut rng);
        let flops = (t * b * 2 * gates * h * (i + h)) as u64;
        let id = format!("T{t}_B{b}_I{i}_H{h}");
        infer.throughput(Throughput::Elements(flops));
        infer.bench_function(BenchmarkId::from_parameter(&id), |bench| {
            bench.iter(|| layer.forward(&x, None, None).unwrap())
        });
        cases.push((id, layer, x, flops));
    }
    infer.finish();
    let mut train = c.benchmark_group(format!("{name}_train/f32"));
    train.sample_size(10);
    for (id, layer, x, flops) in &cases {
        train.throughput(Throughput::Elements(3 * flops));
        train.bench_function(BenchmarkId::from_parameter(id), |bench| {
            bench.iter(|| {
                let out = layer.forward(x, None, None).unwrap();
                let d_output = out.output.map(|_| 1.0);
                layer.backward(&out.trace, Some(&d_output), None).unwrap()
            })
        });
    }
    train.finish();
}

fn recurrent(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(1);
    bench_cell(c, "lstm", 4, |i, h| {
        LstmCellConfig::new(i, h).init(&mut rng.clone())
    });
    bench_cell(c, "gru", 3, |i, h| {
        GruCellConfig::new(i, h).init(&mut rng.clone())
    });
    rng = StdRng::seed_from_u64(2);
    bench_cell(c, "rnn_tanh", 1, |i, h| {
        RnnCellConfig::new(i, h).init(&mut rng.clone())
    });
}

criterion_group!(benches, recurrent);
criterion_main!(benches);
