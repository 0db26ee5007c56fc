//! One recurrent step of each cell (`Cell::step`) and its derivative (`Cell::step_backward`),
//! in `f32`: the work inside `Recurrent`'s time loop.
//!
//! FLOPs per step: the recurrent product, `2·B·H·G·H` (G = 4 LSTM, 3 GRU, 1 RNN), both for
//! `step` (`h·W_hhᵀ`) and for `step_backward` (`d_g·W_hh`; `dW_hh` is formed after the time loop
//! by `Recurrent`, not here; the peephole LSTM's element-wise peephole terms are not counted).
//! Criterion's elements/s read as FLOP/s.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{rngs::StdRng, SeedableRng};
use recurrent::{
    BackwardStep, Cell, CellParams, GruCellConfig, LayerNormLstmCellConfig, LstmCellConfig,
    PeepholeLstmCellConfig, RnnCellConfig, Tensor,
};

/// `(B, H)` with `I = H`.
const SHAPES: &[(usize, usize)] = &[(16, 128), (32, 256), (1, 256)];

fn bench_cell<C: Cell<f32>>(
    c: &mut Criterion,
    name: &str,
    gates: usize,
    make: impl Fn(usize) -> C,
) {
    let mut rng = StdRng::seed_from_u64(0);
    let mut group = c.benchmark_group(format!("{name}_step/f32"));
    for &(batch, hidden) in SHAPES {
        let cell = make(hidden);
        let width: usize = cell.state_parts().iter().map(|p| p.size).sum();
        let (gw, sw) = (cell.gate_width(), cell.saved_width());
        let p = Tensor::<f32>::randn(&[batch, gw], &mut rng).into_vec();
        let prev = Tensor::<f32>::randn(&[batch, width], &mut rng).into_vec();
        let (mut next, mut saved) = (vec![0.0; batch * width], vec![0.0; batch * sw]);
        let flops = (2 * batch * hidden * gates * hidden) as u64;
        let id = format!("B{batch}_H{hidden}");
        group.throughput(Throughput::Elements(flops));
        group.bench_function(BenchmarkId::new("forward", &id), |b| {
            b.iter(|| cell.step(batch, &p, &prev, &mut next, &mut saved))
        });
        let d_next = Tensor::<f32>::randn(&[batch, width], &mut rng).into_vec();
        let mut d_p = vec![0.0; batch * gw];
        let mut d_hp = vec![
            0.0;
            if cell.separate_hidden_grad() {
                batch * gw
            } else {
                0
            }
        ];
        let mut d_prev = vec![0.0; batch * width];
        let mut grads: CellParams<f32> = cell.params().zeros_like();
        group.bench_function(BenchmarkId::new("backward", &id), |b| {
            b.iter(|| {
                let step = BackwardStep {
                    batch,
                    saved: &saved,
                    prev: &prev,
                    next: &next,
                    d_next: &d_next,
                    d_p: &mut d_p,
                    d_hp: &mut d_hp,
                    d_prev: &mut d_prev,
                };
                cell.step_backward(step, &mut grads)
            })
        });
    }
    group.finish();
}

fn cells(c: &mut Criterion) {
    let rng = StdRng::seed_from_u64(1);
    bench_cell(c, "lstm", 4, |h| {
        LstmCellConfig::new(h, h).init(&mut rng.clone()).unwrap()
    });
    bench_cell(c, "peephole_lstm", 4, |h| {
        PeepholeLstmCellConfig::new(h, h)
            .init(&mut rng.clone())
            .unwrap()
    });
    bench_cell(c, "layer_norm_lstm", 4, |h| {
        LayerNormLstmCellConfig::new(h, h)
            .init(&mut rng.clone())
            .unwrap()
    });
    bench_cell(c, "gru", 3, |h| {
        GruCellConfig::new(h, h).init(&mut rng.clone()).unwrap()
    });
    bench_cell(c, "rnn_tanh", 1, |h| {
        RnnCellConfig::new(h, h).init(&mut rng.clone()).unwrap()
    });
}

criterion_group!(benches, cells);
criterion_main!(benches);
