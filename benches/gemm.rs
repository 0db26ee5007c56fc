//! The GEMM throughput behind every recurrent layer, at the shapes a layer uses.
//!
//! FLOPs of `C(m×n) = A(m×k)·B(k×n)`: `2·m·k·n`; criterion's elements/s read as FLOP/s.
//! Shapes: the hoisted input projection `(T·B × I)·(I × G·H)` and the per-step recurrent
//! product `(B × H)·(H × G·H)` of an LSTM (G = 4), in both weight layouts (`W` and `Wᵀ`), with
//! `matrixmultiply` (`Tensor::gemm`); and the per-step product as the cells compute it,
//! `kernels::recurrent_product` (the weight packed once into panels, the crate's tiles), at the
//! step shapes of the `compare` workloads. Everything on one thread.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{rngs::StdRng, SeedableRng};
use recurrent::{kernels, CellParams, Float, MatMut, MatRef, Tensor};

/// `(label, m, k, n)`.
const SHAPES: &[(&str, usize, usize, usize)] = &[
    ("projection_T50_B16_I64_H128", 50 * 16, 64, 512),
    ("step_B16_H128", 16, 128, 512),
    ("projection_T100_B32_I256_H256", 100 * 32, 256, 1024),
    ("step_B32_H256", 32, 256, 1024),
];

fn bench_gemm<T: Float>(c: &mut Criterion, type_name: &str) {
    // one thread: `gemm` splits large products with the worker thread otherwise
    recurrent::set_num_threads(1);
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

/// `(label, B, H)` of the per-step products `(B × H)·(H × 4H)` of the `compare` workloads.
const STEPS: &[(&str, usize, usize)] = &[
    ("small_B16_H128", 16, 128),
    ("medium_B32_H256", 32, 256),
    ("large_B64_H512", 64, 512),
    ("stream_B1_H256", 1, 256),
];

fn bench_recurrent_product(c: &mut Criterion) {
    recurrent::set_num_threads(1);
    let mut rng = StdRng::seed_from_u64(1);
    let mut group = c.benchmark_group("recurrent_product/f32");
    for &(label, b, h) in STEPS {
        let params = CellParams::new(
            Tensor::zeros(&[4 * h, 1]),
            Tensor::<f32>::randn(&[4 * h, h], &mut rng),
            None,
            None,
        );
        let x = Tensor::<f32>::randn(&[b, h], &mut rng);
        let mut out = vec![0.0f32; b * 4 * h];
        group.throughput(Throughput::Elements((2 * b * h * 4 * h) as u64));
        group.bench_function(BenchmarkId::from_parameter(label), |bench| {
            bench.iter(|| {
                let out = MatMut::new(&mut out, b, 4 * h);
                kernels::recurrent_product(&params, MatRef::new(x.as_slice(), b, h), 0.0, out)
            })
        });
    }
    group.finish();
    recurrent::set_num_threads(0);
}

fn gemm(c: &mut Criterion) {
    bench_gemm::<f32>(c, "f32");
    bench_gemm::<f64>(c, "f64");
    bench_recurrent_product(c);
}

criterion_group!(benches, gemm);
criterion_main!(benches);
