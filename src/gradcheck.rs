//! Gradient checking: analytic gradients against central finite differences, in `f64`.

use core::fmt;

use rand::{rngs::StdRng, SeedableRng};

use crate::cell::Cell;
use crate::error::{check_shape, Error, Result};
use crate::layer::SequenceLayer;
use crate::mode::Mode;
use crate::nn::Layer;
use crate::state::State;
use crate::tensor::Tensor;

/// A gradient check: analytic gradients against central finite differences, in `f64`.
///
/// The checked scalar is `L = Σ output ⊙ G_out + Σ_parts state ⊙ G_state`, with the weights
/// `G` drawn from `N(0, 1)` with a fixed seed, so every output and every state part matters.
/// Each parameter, input and initial-state element `θ` is moved by `±ε` and the slope
/// `(L(θ + ε) − L(θ − ε)) / 2ε` is compared with the analytic `dL/dθ`.
///
/// The error of one element is `|analytic − numeric| / max(1, |analytic|, |numeric|)`: relative
/// for large gradients, absolute below 1, so that gradients that are zero do not divide by zero.
///
/// # Kinks
///
/// A relu is not differentiable at 0. When a pre-activation lies within `ε` of 0, the central
/// difference straddles the kink and disagrees with any analytic gradient. Such an element is
/// recognised by its one-sided differences `(L(θ + ε) − L(θ)) / ε` and `(L(θ) − L(θ − ε)) / ε`:
/// they differ (by more than 1e-4, relative), and the analytic gradient equals one of them (to
/// 1e-4). It is then counted in [`GradcheckReport::kinks`] instead of the worst error. An
/// analytic gradient that matches neither side is reported as an error like any other, so a
/// wrong backward pass cannot hide behind a kink.
///
/// Use: `Gradcheck::new()`, then `with_*` options, then
/// [`check_layer`](Gradcheck::check_layer) or [`check_cell`](Gradcheck::check_cell); or
/// [`check_fn`](Gradcheck::check_fn) for any scalar function of one tensor with a loss of
/// your own (a [`Linear`](crate::Linear) layer's weight, a loss's prediction).
///
/// # Examples
///
/// ```
/// use recurrent::rand::{rngs::StdRng, SeedableRng};
/// use recurrent::{Gradcheck, LstmCellConfig, Recurrent, Tensor};
///
/// let mut rng = StdRng::seed_from_u64(3);
/// let lstm = Recurrent::new(LstmCellConfig::new(3, 4).init::<f64>(&mut rng)?);
/// let x = Tensor::randn(&[5, 2, 3], &mut rng);
/// let report = Gradcheck::new().check_layer(&lstm, &x, None, Some(&[5, 3]))?;
/// assert!(report.worst_error < 1e-7, "{report}");
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gradcheck {
    epsilon: f64,
    seed: u64,
}

impl Default for Gradcheck {
    fn default() -> Self {
        Self::new()
    }
}

/// The outcome of a gradient check.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct GradcheckReport {
    /// The largest error over every checked element (see [`Gradcheck`]).
    pub worst_error: f64,
    /// Where it occurred, for example `"weight_hh_l0[5, 2]"` or `"input[3, 0, 1]"`.
    pub worst_at: String,
    /// The analytic gradient there.
    pub analytic: f64,
    /// The finite-difference gradient there.
    pub numeric: f64,
    /// How many elements were checked.
    pub checked: usize,
    /// How many of them sat on a kink (see [kinks](Gradcheck#kinks)); their
    /// analytic gradient matched a one-sided difference and is not in `worst_error`.
    pub kinks: usize,
}

impl fmt::Display for GradcheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "worst error {:.3e} at {} (analytic {:.9e}, numeric {:.9e}) over {} elements, {} at kinks",
            self.worst_error, self.worst_at, self.analytic, self.numeric, self.checked, self.kinks
        )
    }
}

impl GradcheckReport {
    fn new() -> Self {
        GradcheckReport {
            worst_error: 0.0,
            worst_at: String::from("nothing checked"),
            analytic: 0.0,
            numeric: 0.0,
            checked: 0,
            kinks: 0,
        }
    }

    /// Compares `analytic[i]` with the finite differences of every element of the tensor
    /// `name`: `losses(i)` is `(L(θ_i + ε), L(θ_i − ε))` and `base` is `L(θ)`.
    fn compare(
        &mut self,
        name: &str,
        dims: &[usize],
        analytic: &[f64],
        (base, eps): (f64, f64),
        mut losses: impl FnMut(usize) -> (f64, f64),
    ) {
        let relative = |a: f64, b: f64| (a - b).abs() / 1f64.max(a.abs()).max(b.abs());
        for (i, &a) in analytic.iter().enumerate() {
            let (plus, minus) = losses(i);
            let n = (plus - minus) / (2.0 * eps);
            let error = relative(a, n);
            self.checked += 1;
            let (right, left) = ((plus - base) / eps, (base - minus) / eps);
            if relative(right, left) > KINK_TOLERANCE
                && relative(a, right).min(relative(a, left)) <= KINK_TOLERANCE
            {
                self.kinks += 1;
                continue;
            }
            let first = self.checked - self.kinks == 1;
            if first || error > self.worst_error || error.is_nan() && !self.worst_error.is_nan() {
                self.worst_error = error;
                self.worst_at = format!("{name}{:?}", unravel(i, dims));
                self.analytic = a;
                self.numeric = n;
            }
        }
    }
}

/// How far one-sided differences must disagree to be a kink, and how well the analytic
/// gradient must then match one of them.
const KINK_TOLERANCE: f64 = 1e-4;

fn unravel(mut flat: usize, dims: &[usize]) -> Vec<usize> {
    let mut index = vec![0; dims.len()];
    for (slot, &d) in index.iter_mut().zip(dims).rev() {
        *slot = flat % d;
        flat /= d;
    }
    index
}

/// `L = Σ output ⊙ g_out + Σ state ⊙ g_state`.
fn weighted_sum(
    output: Option<(&Tensor<f64>, &Tensor<f64>)>,
    state: &State<f64>,
    g_state: &State<f64>,
) -> f64 {
    let out = output.map_or(0.0, |(o, g)| o.dot(g).expect("weights match the output"));
    out + state
        .parts()
        .zip(g_state.parts())
        .map(|((_, s), (_, g))| s.dot(g).expect("weights match the state"))
        .sum::<f64>()
}

fn random_like(state: &State<f64>, rng: &mut StdRng) -> State<f64> {
    State::new(
        state
            .parts()
            .map(|(n, t)| (n, Tensor::randn(t.shape(), rng)))
            .collect(),
    )
}

impl Gradcheck {
    /// A check with `ε = 1e-6` and loss weights drawn with seed 0.
    pub fn new() -> Self {
        Gradcheck {
            epsilon: 1e-6,
            seed: 0,
        }
    }

    /// The finite-difference step. Defaults to `1e-6`.
    ///
    /// # Panics
    ///
    /// Panics unless `epsilon` is positive and finite.
    #[must_use = "returns a new check and does not modify self"]
    #[track_caller]
    pub fn with_epsilon(self, epsilon: f64) -> Self {
        assert!(
            epsilon > 0.0 && epsilon.is_finite(),
            "the finite-difference step must be positive and finite, got {epsilon}"
        );
        Gradcheck { epsilon, ..self }
    }

    /// The seed of the random loss weights. Defaults to `0`.
    #[must_use = "returns a new check and does not modify self"]
    pub fn with_seed(self, seed: u64) -> Self {
        Gradcheck { seed, ..self }
    }

    /// Checks every parameter, input and initial-state gradient of a sequence layer.
    ///
    /// # Errors
    ///
    /// Whatever the layer's forward pass returns for these inputs;
    /// [`Error::InvalidArgument`] if two forward passes of the same input differ (a layer of
    /// your own that draws fresh randomness at each call: fix its seed for the check). The
    /// layer runs in `Mode::Train` with the checker's [seed](Gradcheck::with_seed), so dropout
    /// is checked too, with the same masks at every evaluation.
    pub fn check_layer<L>(
        &self,
        layer: &L,
        input: &Tensor<f64>,
        initial: Option<&State<f64>>,
        lengths: Option<&[usize]>,
    ) -> Result<GradcheckReport>
    where
        L: SequenceLayer<f64> + Clone,
    {
        let mut rng = StdRng::seed_from_u64(self.seed);
        let mode = Mode::Train { seed: self.seed };
        let out = layer.forward_with_state(input, initial, lengths, mode)?;
        let again = layer.forward_with_state(input, initial, lengths, mode)?;
        if again.output != out.output || again.state != out.state {
            return Err(Error::InvalidArgument {
                name: "layer",
                reason: "two forward passes of the same input differ, so finite differences \
                         mean nothing (randomness drawn afresh at each call?)"
                    .into(),
            });
        }
        let g_out = Tensor::randn(out.output.shape(), &mut rng);
        let g_state = random_like(&out.state, &mut rng);
        let grads = layer.backward_with_state(&out.trace, Some(&g_out), Some(&g_state))?;
        let loss = |l: &L, x: &Tensor<f64>, s: Option<&State<f64>>| {
            let out = l
                .forward_with_state(x, s, lengths, mode)
                .expect("the forward pass succeeded once");
            weighted_sum(Some((&out.output, &g_out)), &out.state, &g_state)
        };

        let mut params = Vec::new();
        layer.visit_params(&mut |name, _| params.push(name.to_string()));
        let params = params
            .into_iter()
            .map(|name| Ok((grads.params.require(&name)?.clone(), name)))
            .collect::<Result<Vec<_>>>()?;
        let analytic = Analytic {
            params,
            input: &grads.input,
            state: &grads.initial_state,
        };
        let perturb = |l: &mut L, k: usize, f: &mut dyn FnMut(&mut Tensor<f64>)| {
            let mut seen = 0;
            l.visit_params_mut(&mut |_, t| {
                if seen == k {
                    f(t);
                }
                seen += 1;
            });
        };
        Ok(self.compare_all(layer, input, initial, &analytic, perturb, loss))
    }

    /// Checks every parameter, input and state gradient of one cell step
    /// ([`Cell::forward`] / [`Cell::backward`]); `x` is `(B, I)`.
    ///
    /// # Errors
    ///
    /// Whatever the cell's forward step returns for these inputs.
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::rand::{rngs::StdRng, SeedableRng};
    /// use recurrent::{Gradcheck, GruCellConfig, Tensor};
    ///
    /// let mut rng = StdRng::seed_from_u64(1);
    /// let gru = GruCellConfig::new(3, 4).init::<f64>(&mut rng)?;
    /// let x = Tensor::randn(&[2, 3], &mut rng);
    /// let report = Gradcheck::new().check_cell(&gru, &x, None)?;
    /// assert!(report.worst_error < 1e-7, "{report}");
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn check_cell<C>(
        &self,
        cell: &C,
        x: &Tensor<f64>,
        state: Option<&State<f64>>,
    ) -> Result<GradcheckReport>
    where
        C: Cell<f64> + Clone,
    {
        let mut rng = StdRng::seed_from_u64(self.seed);
        let (next, trace) = cell.forward(x, state)?;
        let g_state = random_like(&next, &mut rng);
        let grads = cell.backward(&trace, &g_state)?;
        let loss = |c: &C, x: &Tensor<f64>, s: Option<&State<f64>>| {
            let (next, _) = c.forward(x, s).expect("the forward step succeeded once");
            weighted_sum(None, &next, &g_state)
        };

        let mut params = Vec::new();
        grads
            .params
            .visit(|name, t| params.push((t.clone(), name.to_string())));
        let analytic = Analytic {
            params,
            input: &grads.input,
            state: &grads.state,
        };
        let perturb = |c: &mut C, k: usize, f: &mut dyn FnMut(&mut Tensor<f64>)| {
            let mut seen = 0;
            c.params_mut().visit_mut(|_, t| {
                if seen == k {
                    f(t);
                }
                seen += 1;
            });
        };
        Ok(self.compare_all(cell, x, state, &analytic, perturb, loss))
    }

    /// Checks the gradient of any scalar function of one tensor: `analytic` is the claimed
    /// `dL/d(at)` and `loss(θ)` evaluates `L` at `θ`, a copy of `at` with one element moved
    /// by `±ε` (or `at` itself, for the base value used by the [kink](Gradcheck#kinks) test).
    /// The loss weights are the caller's, so the seed is not used. Elements are reported as
    /// `name[i, j]`.
    ///
    /// To check several tensors of one model, call it once per tensor, rebuilding the model
    /// from the perturbed tensor inside `loss`.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) if `analytic` does not have the
    /// shape of `at`, naming both.
    ///
    /// # Examples
    ///
    /// The weight gradient of a [`Linear`](crate::Linear) layer under `L = Σ y ⊙ g`:
    ///
    /// ```
    /// use recurrent::rand::{rngs::StdRng, SeedableRng};
    /// use recurrent::{Gradcheck, Layer, Linear, LinearConfig, Tensor};
    ///
    /// let mut rng = StdRng::seed_from_u64(0);
    /// let fc = LinearConfig::new(3, 2).init::<f64>(&mut rng)?;
    /// let x = Tensor::randn(&[4, 3], &mut rng);
    /// let g = Tensor::randn(&[4, 2], &mut rng); // dL/dy
    /// let grads = fc.backward(&x, &g)?;
    ///
    /// let report = Gradcheck::new().check_fn(
    ///     "weight",
    ///     fc.weight(),
    ///     grads.params.require("weight")?,
    ///     |w| {
    ///         let fc = Linear::from_params(w.clone(), fc.bias().cloned()).unwrap();
    ///         fc.infer(&x).unwrap().dot(&g).unwrap()
    ///     },
    /// )?;
    /// assert_eq!(report.checked, 6);
    /// assert!(report.worst_error < 1e-7, "{report}");
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn check_fn(
        &self,
        name: &str,
        at: &Tensor<f64>,
        analytic: &Tensor<f64>,
        mut loss: impl FnMut(&Tensor<f64>) -> f64,
    ) -> Result<GradcheckReport> {
        check_shape(
            "gradcheck analytic gradient",
            at.raw_shape(),
            analytic.raw_shape(),
        )?;
        let eps = self.epsilon;
        let mut theta = at.clone();
        let base = loss(&theta);
        let mut report = GradcheckReport::new();
        report.compare(name, at.shape(), analytic.as_slice(), (base, eps), |i| {
            let mut eval = |delta: f64| {
                let original = nudge(&mut theta, i, delta);
                let l = loss(&theta);
                theta.as_mut_slice()[i] = original;
                l
            };
            (eval(eps), eval(-eps))
        });
        Ok(report)
    }

    /// Checks every parameter gradient of a whole model — a [`Layer`] such as a [`Chain`]
    /// of embedding, recurrent network, adapter and head — under a loss: `loss(output)` returns
    /// the loss's value and its gradient with respect to the output (for example from
    /// [`cross_entropy_with_logits`](crate::cross_entropy_with_logits)). The model runs in
    /// `mode` for every evaluation, so dropout draws the same masks each time.
    ///
    /// # Errors
    ///
    /// Whatever the model's passes or the loss return, at these parameters or at a perturbed
    /// one; [`Error::InvalidArgument`] if two forward passes of the same input differ. The
    /// gradient of the model's input is not checked (it may be token ids): check the first
    /// layer alone for that.
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::{
    ///     mse_loss, EmbeddingConfig, Gradcheck, GruConfig, Layer, LinearConfig, MeanPool, Mode,
    ///     Tensor, TokenBatch,
    /// };
    ///
    /// let model = EmbeddingConfig::new(10, 3).init_seeded::<f64>(0)?
    ///     .then(GruConfig::new(3, 4).init_seeded(1)?)
    ///     .then(MeanPool)
    ///     .then(LinearConfig::new(4, 2).init_seeded(2)?);
    /// let tokens = TokenBatch::new(vec![1, 2, 3, 0, 5, 0], 3, 2, Some(vec![3, 2]))?;
    /// let target = Tensor::zeros(&[2, 2]);
    /// let report = Gradcheck::new().check_model(&model, &tokens, Mode::Eval, |y| {
    ///     mse_loss(y, &target).map(|l| (l.value, l.grad))
    /// })?;
    /// assert!(report.worst_error < 1e-7, "{report}");
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    ///
    /// [`Chain`]: crate::Chain
    pub fn check_model<M>(
        &self,
        model: &M,
        input: &M::Input,
        mode: Mode,
        loss: impl Fn(&M::Output) -> Result<(f64, M::OutputGrad)>,
    ) -> Result<GradcheckReport>
    where
        M: Layer<f64> + Clone,
        M::Output: PartialEq,
    {
        let (output, trace) = model.forward(input, mode)?;
        if model.forward(input, mode)?.0 != output {
            return Err(Error::InvalidArgument {
                name: "model",
                reason: "two forward passes of the same input differ, so finite differences \
                         mean nothing (randomness drawn afresh at each call?)"
                    .into(),
            });
        }
        let (base, d_output) = loss(&output)?;
        let grads = model.backward(&trace, &d_output)?;
        // an error at a perturbed point (a loss that checks its domain) is returned, not a panic
        let failure = std::cell::RefCell::new(None);
        let value = |m: &M| -> f64 {
            let at = m.forward(input, mode).and_then(|(y, _)| loss(&y));
            match at {
                Ok((l, _)) => l,
                Err(e) => {
                    failure.borrow_mut().get_or_insert(e);
                    f64::NAN
                }
            }
        };
        let mut report = GradcheckReport::new();
        let mut probe = model.clone();
        for (k, name) in model.param_names().iter().enumerate() {
            let analytic = grads.params.require(name)?;
            let nudge_param = |m: &mut M, i: usize, delta: Option<f64>, original: f64| -> f64 {
                let mut seen = 0;
                let mut before = 0.0;
                m.visit_params_mut(&mut |_, t| {
                    if seen == k {
                        before = match delta {
                            Some(d) => nudge(t, i, d),
                            None => std::mem::replace(&mut t.as_mut_slice()[i], original),
                        };
                    }
                    seen += 1;
                });
                before
            };
            let eps = self.epsilon;
            report.compare(
                name,
                analytic.shape(),
                analytic.as_slice(),
                (base, eps),
                |i| {
                    let mut eval = |delta: f64| {
                        let original = nudge_param(&mut probe, i, Some(delta), 0.0);
                        let l = value(&probe);
                        nudge_param(&mut probe, i, None, original);
                        l
                    };
                    (eval(eps), eval(-eps))
                },
            );
            if let Some(e) = failure.borrow_mut().take() {
                return Err(e);
            }
        }
        Ok(report)
    }

    /// Compares every analytic gradient with its central difference. `perturb(model, k, f)`
    /// applies `f` to the model's `k`-th parameter; `loss` evaluates the checked scalar.
    fn compare_all<M: Clone>(
        &self,
        model: &M,
        input: &Tensor<f64>,
        state: Option<&State<f64>>,
        analytic: &Analytic<'_>,
        perturb: impl Fn(&mut M, usize, &mut dyn FnMut(&mut Tensor<f64>)),
        loss: impl Fn(&M, &Tensor<f64>, Option<&State<f64>>) -> f64,
    ) -> GradcheckReport {
        let eps = self.epsilon;
        let at = (loss(model, input, state), eps);
        let mut report = GradcheckReport::new();
        let mut probe = model.clone();
        for (k, (a, name)) in analytic.params.iter().enumerate() {
            report.compare(name, a.shape(), a.as_slice(), at, |i| {
                let mut eval = |delta: f64| {
                    let mut original = 0.0;
                    perturb(&mut probe, k, &mut |t| original = nudge(t, i, delta));
                    let l = loss(&probe, input, state);
                    perturb(&mut probe, k, &mut |t| t.as_mut_slice()[i] = original);
                    l
                };
                (eval(eps), eval(-eps))
            });
        }
        let mut x = input.clone();
        report.compare("input", input.shape(), analytic.input.as_slice(), at, |i| {
            let mut eval = |delta: f64| {
                let original = nudge(&mut x, i, delta);
                let l = loss(model, &x, state);
                x.as_mut_slice()[i] = original;
                l
            };
            (eval(eps), eval(-eps))
        });
        let mut s = state
            .cloned()
            .unwrap_or_else(|| zeros_like_state(analytic.state));
        for (p, (name, a)) in analytic.state.parts().enumerate() {
            report.compare(&format!("state.{name}"), a.shape(), a.as_slice(), at, |i| {
                let mut eval = |delta: f64| {
                    let original = nudge(part_mut(&mut s, p), i, delta);
                    let l = loss(model, input, Some(&s));
                    part_mut(&mut s, p).as_mut_slice()[i] = original;
                    l
                };
                (eval(eps), eval(-eps))
            });
        }
        report
    }
}

/// Adds `delta` to element `i` of `t` and returns its previous value.
fn nudge(t: &mut Tensor<f64>, i: usize, delta: f64) -> f64 {
    let original = t.as_slice()[i];
    t.as_mut_slice()[i] = original + delta;
    original
}

fn part_mut(state: &mut State<f64>, p: usize) -> &mut Tensor<f64> {
    state.parts_mut().nth(p).expect("the state has this part").1
}

/// The analytic gradients to check: parameters (with their names), input, initial state.
struct Analytic<'a> {
    params: Vec<(Tensor<f64>, String)>,
    input: &'a Tensor<f64>,
    state: &'a State<f64>,
}

fn zeros_like_state(state: &State<f64>) -> State<f64> {
    State::new(state.parts().map(|(n, t)| (n, t.zeros_like())).collect())
}
