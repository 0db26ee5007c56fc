//! A cell written outside the crate, with only the public API: a peephole LSTM (Gers &
//! Schmidhuber, 2000) with three extra parameters. Implementing `Cell` gives it `Recurrent`
//! (hoisted input projection, variable lengths, backpropagation through time) and `Gradcheck`;
//! writing its step with `recurrent::kernels` (the recurrent product against the packed
//! `weight_hh`, the vectorised non-linearities) gives it the built-in cells' speed: with zero
//! peepholes it computes exactly what the built-in `LstmCell` does, bit for bit in `f32`, with
//! the same kernels. Checked: its gradients against finite differences, that equality, and
//! that the crate's own `PeepholeLstmCell`, written the same way, agrees with it. Not covered:
//! timings (`cargo bench --bench cells` runs this cell beside the built-in one).

use rand::{rngs::StdRng, SeedableRng};
use recurrent::{
    kernels, BackwardStep, Cell, CellParams, Float, Gradcheck, LstmCell, LstmCellConfig, MatMut,
    MatRef, Mode, Parameters, Recurrent, SequenceLayer, StatePart, Tensor,
};

/// ```text
/// i  = σ(W_ii x + b_ii + W_hi h + b_hi + w_ci ⊙ c)
/// f  = σ(W_if x + b_if + W_hf h + b_hf + w_cf ⊙ c)
/// g  = tanh(W_ig x + b_ig + W_hg h + b_hg)
/// c' = f ⊙ c + i ⊙ g
/// o  = σ(W_io x + b_io + W_ho h + b_ho + w_co ⊙ c')
/// h' = o ⊙ tanh(c')
/// ```
#[derive(Clone)]
struct PeepholeLstm<T> {
    input_size: usize,
    hidden_size: usize,
    params: CellParams<T>,
    parts: [StatePart; 2],
}

impl<T: Float> PeepholeLstm<T> {
    /// An LSTM's parameters plus the peephole weights `weight_ci`, `weight_cf`, `weight_co`.
    fn new(lstm: &LstmCell<T>, peepholes: [Tensor<T>; 3]) -> Self {
        let [ci, cf, co] = peepholes;
        let params = lstm
            .params()
            .clone()
            .with_extra("weight_ci", ci)
            .with_extra("weight_cf", cf)
            .with_extra("weight_co", co);
        let h = lstm.hidden_size();
        PeepholeLstm {
            input_size: lstm.input_size(),
            hidden_size: h,
            params,
            parts: [StatePart::new("h", h), StatePart::new("c", h)],
        }
    }

    fn peephole(&self, name: &str) -> &[T] {
        self.params
            .extra(name)
            .expect("peephole weights")
            .as_slice()
    }
}

impl<T: Float> Cell<T> for PeepholeLstm<T> {
    fn input_size(&self) -> usize {
        self.input_size
    }
    fn hidden_size(&self) -> usize {
        self.hidden_size
    }
    fn gate_width(&self) -> usize {
        4 * self.hidden_size
    }
    fn state_parts(&self) -> &[StatePart] {
        &self.parts
    }
    fn saved_width(&self) -> usize {
        5 * self.hidden_size // i, f, g, o, tanh(c')
    }
    fn params(&self) -> &CellParams<T> {
        &self.params
    }
    fn params_mut(&mut self) -> &mut CellParams<T> {
        &mut self.params
    }

    fn step(&self, batch: usize, p: &[T], prev: &[T], next: &mut [T], saved: &mut [T]) {
        let h = self.hidden_size;
        let (gw, sw, width) = (4 * h, 5 * h, 2 * h);
        // gates ← b_hh + h·W_hhᵀ, in the saved rows
        kernels::broadcast_bias(self.params.bias_hh(), batch, gw, saved, sw);
        let h_prev = MatRef::strided(prev, batch, h, width, 1);
        let out = MatMut::strided(saved, batch, gw, sw, 1);
        kernels::recurrent_product(&self.params, h_prev, T::one(), out);
        let (w_ci, w_cf, w_co) = (
            self.peephole("weight_ci"),
            self.peephole("weight_cf"),
            self.peephole("weight_co"),
        );
        for b in 0..batch {
            let s = &mut saved[b * sw..][..sw];
            let p = &p[b * gw..][..gw];
            let c = &prev[b * width + h..][..h];
            let (h_next, c_next) = next[b * width..][..width].split_at_mut(h);
            // + p, and the peepholes of i and f on c
            for j in 0..h {
                s[j] = s[j] + p[j] + w_ci[j] * c[j];
                s[h + j] = s[h + j] + p[h + j] + w_cf[j] * c[j];
            }
            for j in 2 * h..gw {
                s[j] = s[j] + p[j];
            }
            kernels::sigmoid(&mut s[..2 * h]);
            kernels::tanh(&mut s[2 * h..3 * h]);
            for j in 0..h {
                c_next[j] = s[h + j] * c[j] + s[j] * s[2 * h + j];
                // the output gate sees the new cell state
                s[3 * h + j] = s[3 * h + j] + w_co[j] * c_next[j];
                s[4 * h + j] = c_next[j];
            }
            kernels::sigmoid(&mut s[3 * h..4 * h]);
            kernels::tanh(&mut s[4 * h..]);
            for j in 0..h {
                h_next[j] = s[3 * h + j] * s[4 * h + j];
            }
        }
    }

    fn step_backward(&self, step: BackwardStep<'_, T>, grads: &mut CellParams<T>) {
        let BackwardStep {
            batch,
            saved,
            prev,
            next,
            d_next,
            d_p,
            d_prev,
            ..
        } = step;
        let h = self.hidden_size;
        let (gw, sw, width) = (4 * h, 5 * h, 2 * h);
        let one = T::one();
        let (w_ci, w_cf, w_co) = (
            self.peephole("weight_ci"),
            self.peephole("weight_cf"),
            self.peephole("weight_co"),
        );
        let mut d_peep = [vec![T::zero(); h], vec![T::zero(); h], vec![T::zero(); h]];
        for b in 0..batch {
            let s = &saved[b * sw..][..sw];
            let c = &prev[b * width + h..][..h];
            let c_new = &next[b * width + h..][..h];
            let (dh, dc_in) = d_next[b * width..][..width].split_at(h);
            let dg = &mut d_p[b * gw..][..gw];
            for j in 0..h {
                let (i, f, g, o, tc) = (s[j], s[h + j], s[2 * h + j], s[3 * h + j], s[4 * h + j]);
                let d_o = dh[j] * tc * o * (one - o);
                let dc = dc_in[j] + dh[j] * o * (one - tc * tc) + d_o * w_co[j];
                let d_i = dc * g * i * (one - i);
                let d_f = dc * c[j] * f * (one - f);
                (dg[j], dg[h + j], dg[2 * h + j], dg[3 * h + j]) =
                    (d_i, d_f, dc * i * (one - g * g), d_o);
                d_prev[b * width + h + j] = dc * f + d_i * w_ci[j] + d_f * w_cf[j];
                d_peep[0][j] = d_peep[0][j] + d_i * c[j];
                d_peep[1][j] = d_peep[1][j] + d_f * c[j];
                d_peep[2][j] = d_peep[2][j] + d_o * c_new[j];
            }
        }
        for (name, d) in ["weight_ci", "weight_cf", "weight_co"]
            .into_iter()
            .zip(&d_peep)
        {
            let g = grads
                .extra_mut(name)
                .expect("peephole gradient")
                .as_mut_slice();
            g.iter_mut().zip(d).for_each(|(g, &d)| *g = *g + d);
        }
        // dh_prev = d_gates·W_hh
        let d_h = MatMut::strided(d_prev, batch, h, width, 1);
        kernels::recurrent_product_backward(
            &self.params,
            MatRef::new(d_p, batch, gw),
            T::zero(),
            d_h,
        );
    }
}

fn peephole_lstm<T: Float>(
    input_size: usize,
    hidden_size: usize,
    seed: u64,
    zero: bool,
) -> PeepholeLstm<T> {
    let mut rng = StdRng::seed_from_u64(seed);
    let lstm = LstmCellConfig::new(input_size, hidden_size)
        .init(&mut rng)
        .unwrap();
    let mut peephole = || {
        let w = Tensor::uniform(
            &[hidden_size],
            T::from_f64(-0.5),
            T::from_f64(0.5),
            &mut rng,
        );
        if zero {
            w.zeros_like()
        } else {
            w
        }
    };
    PeepholeLstm::new(&lstm, [peephole(), peephole(), peephole()])
}

#[test]
fn a_cell_of_your_own_gets_recurrent_and_gradcheck() {
    for (seed, (t, b, i, h)) in [(1, (7, 3, 4, 5)), (2, (1, 1, 1, 1)), (3, (12, 5, 3, 8))] {
        let mut rng = StdRng::seed_from_u64(seed + 100);
        let layer = Recurrent::new(peephole_lstm(i, h, seed, false));
        let x = Tensor::randn(&[t, b, i], &mut rng);
        let lengths: Vec<usize> = (0..b).map(|k| t - k % t).collect();
        let report = Gradcheck::new()
            .check_layer(&layer, &x, None, Some(&lengths))
            .unwrap();
        assert!(report.worst_error < 1e-6, "{report}");
        let mut names = Vec::new();
        layer.visit_params(&mut |name, _| names.push(name.to_string()));
        assert_eq!(
            names,
            [
                "weight_ih_l0",
                "weight_hh_l0",
                "bias_ih_l0",
                "bias_hh_l0",
                "weight_ci_l0",
                "weight_cf_l0",
                "weight_co_l0"
            ]
        );
        let report = Gradcheck::new()
            .check_cell(layer.cell(), &x_step(&x, b, i), None)
            .unwrap();
        assert!(report.worst_error < 1e-6, "{report}");
    }
}

fn x_step(x: &Tensor<f64>, batch: usize, input_size: usize) -> Tensor<f64> {
    Tensor::from_vec(
        x.as_slice()[..batch * input_size].to_vec(),
        &[batch, input_size],
    )
    .unwrap()
}

/// With zero peepholes the cell is an LSTM written with the same kernels as the built-in one:
/// outputs, states and gradients are equal bit for bit.
fn zero_peepholes_are_the_builtin_lstm<T: Float>() {
    let peephole = Recurrent::new(peephole_lstm::<T>(3, 4, 7, true));
    let mut rng = StdRng::seed_from_u64(7);
    let lstm = Recurrent::new(LstmCellConfig::new(3, 4).init::<T>(&mut rng).unwrap());
    let x = Tensor::randn(&[6, 2, 3], &mut StdRng::seed_from_u64(8));
    let a = peephole
        .forward_with_state(&x, None, Some(&[6, 4]), Mode::Eval)
        .unwrap();
    let b = lstm
        .forward_with_state(&x, None, Some(&[6, 4]), Mode::Eval)
        .unwrap();
    assert_eq!(a.output, b.output);
    assert_eq!(a.state, b.state);
    let da = peephole
        .backward_with_state(&a.trace, Some(&a.output), None)
        .unwrap();
    let db = lstm
        .backward_with_state(&b.trace, Some(&b.output), None)
        .unwrap();
    assert_eq!(da.input, db.input);
    for (name, g) in db.params.iter() {
        assert_eq!(da.params.get(name), Some(g), "{name}");
    }
}

#[test]
fn zero_peepholes_are_the_builtin_lstm_in_f32() {
    zero_peepholes_are_the_builtin_lstm::<f32>();
}

#[test]
fn zero_peepholes_are_the_builtin_lstm_in_f64() {
    zero_peepholes_are_the_builtin_lstm::<f64>();
}

/// The crate's `PeepholeLstmCell`, written the same way, computes what this one does: same
/// outputs, states and gradients (to rounding: the two order their sums differently).
#[test]
fn the_builtin_peephole_cell_agrees_with_this_one() {
    let builtin = recurrent::PeepholeLstmCellConfig::new(3, 4)
        .init_seeded::<f64>(5)
        .unwrap();
    let p = builtin.params();
    let four = CellParams::new(
        p.weight_ih().clone(),
        p.weight_hh().clone(),
        p.bias_ih().cloned(),
        p.bias_hh().cloned(),
    );
    let lstm = LstmCell::from_params(3, 4, four).unwrap();
    let peepholes = ["weight_ci", "weight_cf", "weight_co"].map(|n| p.extra(n).unwrap().clone());
    let ours = Recurrent::new(PeepholeLstm::new(&lstm, peepholes));
    let theirs = Recurrent::new(builtin);
    let x = Tensor::randn(&[6, 3, 3], &mut StdRng::seed_from_u64(6));
    let lengths = Some(&[6, 2, 5][..]);
    let a = ours
        .forward_with_state(&x, None, lengths, Mode::Eval)
        .unwrap();
    let b = theirs
        .forward_with_state(&x, None, lengths, Mode::Eval)
        .unwrap();
    let close = |u: &Tensor<f64>, v: &Tensor<f64>| {
        assert_eq!(u.shape(), v.shape());
        for (s, t) in u.as_slice().iter().zip(v.as_slice()) {
            assert!((s - t).abs() <= 1e-12, "{s} vs {t}");
        }
    };
    close(&a.output, &b.output);
    close(b.state.h(), a.state.h());
    let da = ours
        .backward_with_state(&a.trace, Some(&a.output), None)
        .unwrap();
    let db = theirs
        .backward_with_state(&b.trace, Some(&b.output), None)
        .unwrap();
    close(&da.input, &db.input);
    assert_eq!(da.params.len(), db.params.len());
    for (name, g) in db.params.iter() {
        close(da.params.get(name).unwrap(), g);
    }
}
