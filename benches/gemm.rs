//! The sgemm/dgemm throughput behind every recurrent layer, at the shapes a layer uses.
//!
//! FLOPs of `C(m×n) = A(m×k)·B(k×n)`: `2·m·k·n`; criterion's elements/s read as FLOP/s.
//! Shapes: the hoisted input projection `(T·B × I)·(I × G·H)` and the per-step recurrent
//! product `(B × H)·(H × G·H)` of an LSTM (G = 4), in both weight layouts (`W` and `Wᵀ`).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{rngs::StdRng, SeedableRng};
use recurrent::{Float, Tensor};

/// `(label, m, k, n)`.
const SHAPES: &[(&str, usize, usize, usize)] = &[
    ("projection_T50_B16_I64_H128", 50 * 16, 64, 512),
    ("step_B16_H128", 16, 128, 512),
    ("projection_T100_B32_I256_H256", 100 * 32, 256, 1024),
    ("step_B32_H256", 32, 256, 1024),
];

fn bench_gemm<T: Float>(c: &mut Criterion, type_name: &str) {
    let mut rng = StdRng::seed_from_u64(0);
    for trans_b in [false, true] {
        let mut group = c.benchmark_group(format!(
            "gemm_{}/{type_name}",
            if trans_b { "nt" } else { "nn" }
        ));
        for &(label, m, k, n) in SHAPES {
            let a = Tensor::<T>::randn(&[m, k], &mut rng);
            let b_dims = if trans_b { [n, k] } else { [k, n] };
            let b = Tensor::<T>::randn(&b_dims, &mut rng);
            let mut out = Tensor::<T>::zeros(&[m, n]);
            group.throughput(Throughput::Elements((2 * m * k * n) as u64));
            group.bench_function(BenchmarkId::from_parameter(label), |bench| {
                bench.iter(|| {
                    Tensor::gemm(T::one(), &a, false, &b, trans_b, T::zero(), &mut out).unwrap()
                })
            });
        }
        group.finish();
    }
}

fn gemm(c: &mut Criterion) {
    bench_gemm::<f32>(c, "f32");
    bench_gemm::<f64>(c, "f64");
}

criterion_group!(benches, gemm);
criterion_main!(benches);
