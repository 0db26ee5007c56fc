//! Where running the two directions of a `Bidirectional` LSTM on two threads starts to pay:
//! forward passes of growing size, one thread against two. The parameter of each benchmark is
//! the work per direction, `T·B·(I + H)·H`, which `Bidirectional::with_parallel_threshold`
//! compares with its threshold.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{rngs::StdRng, SeedableRng};
use recurrent::{Bidirectional, LstmCellConfig, Mode, Recurrent, SequenceLayer, Tensor};

/// `(T, B, I = H)`, from tiny to the medium workload.
const SIZES: &[(usize, usize, usize)] = &[
    (10, 1, 8),
    (10, 4, 16),
    (10, 4, 24),
    (16, 4, 24),
    (20, 4, 32),
    (25, 8, 32),
    (50, 8, 64),
    (50, 16, 128),
    (100, 32, 256),
];

fn bidirectional(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(0);
    let mut group = c.benchmark_group("bidirectional_lstm_forward/f32");
    group.sample_size(20);
    for &(t, b, h) in SIZES {
        let config = LstmCellConfig::new(h, h);
        let bi = Bidirectional::new(
            Recurrent::new(config.init::<f32>(&mut rng).unwrap()),
            Recurrent::new(config.init(&mut rng).unwrap()),
        )
        .expect("same sizes");
        let x = Tensor::randn(&[t, b, h], &mut rng);
        let work = t * b * 2 * h * h;
        group.throughput(Throughput::Elements((2 * t * b * 2 * 4 * h * 2 * h) as u64));
        for (threads, threshold) in [("1_thread", usize::MAX), ("2_threads", 0)] {
            let layer = bi.clone().with_parallel_threshold(threshold);
            group.bench_function(BenchmarkId::new(threads, work), |bench| {
                bench.iter(|| {
                    layer
                        .forward_with_state(&x, None, None, Mode::Eval)
                        .expect("valid input")
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bidirectional);
criterion_main!(benches);
