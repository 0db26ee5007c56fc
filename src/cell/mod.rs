//! The [`Cell`] trait and the three built-in cells: [`RnnCell`], [`LstmCell`], [`GruCell`].
//!
//! A cell owns one time step of a recurrence: from the input projection `P_t = x_t·W_ihᵀ + b_ih`
//! (which [`crate::Recurrent`] computes for all time steps in one GEMM) and the previous state,
//! to the next state; and that step's derivative. Everything that is one big product over all
//! time steps (the input projection, `dW_ih`, `dW_hh`, the input gradient) is done by the
//! sequence driver, so a cell of your own inherits it.

mod gru;
mod lstm;
mod rnn;

use core::fmt;
use std::sync::OnceLock;

use rand::Rng;

pub use gru::{GruCell, GruCellConfig};
pub use lstm::{LstmCell, LstmCellConfig};
pub use rnn::{Nonlinearity, RnnCell, RnnCellConfig};

use crate::error::{check_shape, Error, Result, Shape};
use crate::float::Float;
use crate::tensor::{gemm, MatMut, MatRef, Tensor};

/// The parameters of a cell, under PyTorch's names (`weight_ih`, `weight_hh`, `bias_ih`,
/// `bias_hh`), plus any extra parameters a cell of your own needs; the same type holds their
/// gradients.
///
/// `weight_ih` is `(G·H, I)` and `weight_hh` is `(G·H, H_out)`: G gate blocks of H rows each,
/// in the cell's gate order. The biases are `(G·H)`, both present or both absent. The sequence
/// driver computes the gradients of these four; a cell accumulates those of its `extra`
/// parameters itself, in [`Cell::step_backward`].
#[derive(Clone, PartialEq)]
pub struct CellParams<T> {
    /// Input-to-hidden weights, `(G·H, I)`.
    pub weight_ih: Tensor<T>,
    /// Hidden-to-hidden weights, `(G·H, H_out)`.
    pub weight_hh: Tensor<T>,
    /// Input-to-hidden bias, `(G·H)`.
    pub bias_ih: Option<Tensor<T>>,
    /// Hidden-to-hidden bias, `(G·H)`.
    pub bias_hh: Option<Tensor<T>>,
    /// Further named parameters (for example a peephole cell's weights), visited after the
    /// four above in this order.
    pub extra: Vec<(&'static str, Tensor<T>)>,
}

impl<T: Float> CellParams<T> {
    /// The four standard parameters and no extra one.
    pub fn new(
        weight_ih: Tensor<T>,
        weight_hh: Tensor<T>,
        bias_ih: Option<Tensor<T>>,
        bias_hh: Option<Tensor<T>>,
    ) -> Self {
        CellParams {
            weight_ih,
            weight_hh,
            bias_ih,
            bias_hh,
            extra: Vec::new(),
        }
    }

    /// Adds an extra parameter called `name`.
    ///
    /// # Examples
    ///
    /// ```
    /// use rand::{rngs::StdRng, SeedableRng};
    /// use recurrent::{Cell, LstmCellConfig, Tensor};
    ///
    /// let lstm = LstmCellConfig::new(2, 3).init::<f64, _>(&mut StdRng::seed_from_u64(0));
    /// let params = lstm.params().clone().with_extra("weight_ci", Tensor::zeros(&[3]));
    /// assert_eq!(params.extra("weight_ci").unwrap().shape(), &[3]);
    /// assert_eq!(params.count(), lstm.params().count() + 3);
    /// ```
    #[must_use = "returns new parameters and does not modify self"]
    pub fn with_extra(mut self, name: &'static str, value: Tensor<T>) -> Self {
        self.extra.push((name, value));
        self
    }

    /// The extra parameter called `name`.
    pub fn extra(&self, name: &str) -> Option<&Tensor<T>> {
        self.extra.iter().find(|(n, _)| *n == name).map(|(_, t)| t)
    }

    /// The extra parameter called `name`, mutably.
    pub fn extra_mut(&mut self, name: &str) -> Option<&mut Tensor<T>> {
        self.extra
            .iter_mut()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| t)
    }

    /// Draws every parameter from PyTorch's default `U(−1/√H, 1/√H)`, where `H` is
    /// `hidden_size`, in the order `weight_ih (gate_width, input_size)`,
    /// `weight_hh (gate_width, hidden_size)`, `bias_ih`, `bias_hh`.
    ///
    /// # Panics
    ///
    /// Panics if `hidden_size` is 0 (as PyTorch rejects it).
    #[track_caller]
    pub fn init<R: Rng + ?Sized>(
        gate_width: usize,
        input_size: usize,
        hidden_size: usize,
        bias: bool,
        rng: &mut R,
    ) -> Self {
        assert!(hidden_size > 0, "hidden_size must be positive");
        let k = T::one() / T::from_f64(hidden_size as f64).sqrt();
        let mut draw = |dims: &[usize]| Tensor::uniform(dims, -k, k, rng);
        let weight_ih = draw(&[gate_width, input_size]);
        let weight_hh = draw(&[gate_width, hidden_size]);
        let (bias_ih, bias_hh) = if bias {
            (Some(draw(&[gate_width])), Some(draw(&[gate_width])))
        } else {
            (None, None)
        };
        CellParams::new(weight_ih, weight_hh, bias_ih, bias_hh)
    }

    /// Checks the shapes against a cell with these sizes.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] naming the first parameter whose shape is wrong;
    /// [`Error::MissingParameter`] if exactly one of the two biases is present.
    pub fn validate(&self, gate_width: usize, input_size: usize, h_out: usize) -> Result<()> {
        check_shape(
            "weight_ih",
            Shape::from([gate_width, input_size]),
            self.weight_ih.raw_shape(),
        )?;
        check_shape(
            "weight_hh",
            Shape::from([gate_width, h_out]),
            self.weight_hh.raw_shape(),
        )?;
        match (&self.bias_ih, &self.bias_hh) {
            (Some(b_ih), Some(b_hh)) => {
                check_shape("bias_ih", Shape::from([gate_width]), b_ih.raw_shape())?;
                check_shape("bias_hh", Shape::from([gate_width]), b_hh.raw_shape())
            }
            (None, None) => Ok(()),
            (Some(_), None) => Err(Error::MissingParameter {
                name: "bias_hh".into(),
                reason: "bias_ih is given and the biases come in pairs",
            }),
            (None, Some(_)) => Err(Error::MissingParameter {
                name: "bias_ih".into(),
                reason: "bias_hh is given and the biases come in pairs",
            }),
        }
    }

    /// Zeros with the same shapes (for accumulating gradients).
    #[must_use = "returns new parameters and does not modify self"]
    pub fn zeros_like(&self) -> Self {
        CellParams {
            weight_ih: self.weight_ih.zeros_like(),
            weight_hh: self.weight_hh.zeros_like(),
            bias_ih: self.bias_ih.as_ref().map(Tensor::zeros_like),
            bias_hh: self.bias_hh.as_ref().map(Tensor::zeros_like),
            extra: self
                .extra
                .iter()
                .map(|(n, t)| (*n, t.zeros_like()))
                .collect(),
        }
    }

    /// Calls `f` with each parameter's name and value, in PyTorch's `state_dict` order.
    pub fn visit(&self, mut f: impl FnMut(&'static str, &Tensor<T>)) {
        f("weight_ih", &self.weight_ih);
        f("weight_hh", &self.weight_hh);
        if let Some(b) = &self.bias_ih {
            f("bias_ih", b);
        }
        if let Some(b) = &self.bias_hh {
            f("bias_hh", b);
        }
        for (name, t) in &self.extra {
            f(name, t);
        }
    }

    /// Calls `f` with each parameter's name and a mutable reference to it.
    pub fn visit_mut(&mut self, mut f: impl FnMut(&'static str, &mut Tensor<T>)) {
        f("weight_ih", &mut self.weight_ih);
        f("weight_hh", &mut self.weight_hh);
        if let Some(b) = &mut self.bias_ih {
            f("bias_ih", b);
        }
        if let Some(b) = &mut self.bias_hh {
            f("bias_hh", b);
        }
        for (name, t) in &mut self.extra {
            f(name, t);
        }
    }

    /// The total number of scalar parameters.
    pub fn count(&self) -> usize {
        let mut n = 0;
        self.visit(|_, t| n += t.len());
        n
    }
}

impl<T: fmt::Debug> fmt::Debug for CellParams<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CellParams")
            .field("weight_ih", &self.weight_ih)
            .field("weight_hh", &self.weight_hh)
            .field("bias_ih", &self.bias_ih)
            .field("bias_hh", &self.bias_hh)
            .field("extra", &self.extra)
            .finish()
    }
}

/// One named part of a cell's state (`h`, or LSTM's `c`) and its width per sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatePart {
    /// The name: `"h"` for the part that is also the output, `"c"` for an LSTM's cell state.
    pub name: &'static str,
    /// Values per sample.
    pub size: usize,
}

impl StatePart {
    /// A part called `name` with `size` values per sample.
    pub fn new(name: &'static str, size: usize) -> Self {
        StatePart { name, size }
    }
}

/// A recurrent state: named tensors such as `h` (and `c` for an LSTM).
///
/// For a cell step each part is `(B, width)`; for a sequence layer each part is
/// `(L·D, B, width)` as in PyTorch (`L·D = 1` for one [`crate::Recurrent`] layer).
#[derive(Clone, PartialEq)]
pub struct State<T> {
    parts: Vec<(&'static str, Tensor<T>)>,
}

impl<T: Float> State<T> {
    /// A state made of named parts; the first part is `h`, the output.
    pub fn new(parts: Vec<(&'static str, Tensor<T>)>) -> Self {
        State { parts }
    }

    /// The state of a vanilla RNN or GRU: `h` only.
    pub fn from_h(h: Tensor<T>) -> Self {
        State {
            parts: vec![("h", h)],
        }
    }

    /// The state of an LSTM: `h` and `c`.
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::{State, Tensor};
    ///
    /// // h_0 and c_0 of a one-layer LSTM with batch 4 and hidden size 8, as in PyTorch
    /// let state = State::from_hc(Tensor::<f32>::zeros(&[1, 4, 8]), Tensor::zeros(&[1, 4, 8]));
    /// assert_eq!(state.c().unwrap().shape(), &[1, 4, 8]);
    /// assert_eq!(state.parts().map(|(name, _)| name).collect::<Vec<_>>(), ["h", "c"]);
    /// ```
    pub fn from_hc(h: Tensor<T>, c: Tensor<T>) -> Self {
        State {
            parts: vec![("h", h), ("c", c)],
        }
    }

    /// The hidden state `h` (the first part).
    ///
    /// # Panics
    ///
    /// Panics if the state has no part.
    #[track_caller]
    pub fn h(&self) -> &Tensor<T> {
        &self.parts.first().expect("a state has at least one part").1
    }

    /// The LSTM cell state `c`, if this state has one.
    pub fn c(&self) -> Option<&Tensor<T>> {
        self.get("c")
    }

    /// The part called `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor<T>> {
        self.parts.iter().find(|(n, _)| *n == name).map(|(_, t)| t)
    }

    /// The parts with their names, `h` first.
    pub fn parts(&self) -> impl ExactSizeIterator<Item = (&'static str, &Tensor<T>)> {
        self.parts.iter().map(|(n, t)| (*n, t))
    }

    /// Mutable access to the parts.
    pub fn parts_mut(&mut self) -> impl ExactSizeIterator<Item = (&'static str, &mut Tensor<T>)> {
        self.parts.iter_mut().map(|(n, t)| (*n, t))
    }

    /// The parts, consuming the state.
    pub fn into_parts(self) -> Vec<(&'static str, Tensor<T>)> {
        self.parts
    }

    /// Checks that the parts are `layout`'s, each of shape `lead ++ [width]`.
    pub(crate) fn validate(
        &self,
        op: &'static str,
        layout: &[StatePart],
        lead: &[usize],
    ) -> Result<()> {
        let actual: Vec<&'static str> = self.parts.iter().map(|(n, _)| *n).collect();
        let expected: Vec<&'static str> = layout.iter().map(|p| p.name).collect();
        if actual != expected {
            return Err(Error::StatePartsMismatch {
                op,
                expected,
                actual,
            });
        }
        for ((_, t), part) in self.parts.iter().zip(layout) {
            let mut dims = lead.to_vec();
            dims.push(part.size);
            check_shape(op, Shape::new(&dims), t.raw_shape())?;
        }
        Ok(())
    }
}

impl<T: fmt::Debug> fmt::Debug for State<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("State");
        for (name, t) in &self.parts {
            s.field(name, t);
        }
        s.finish()
    }
}

/// One recurrent time step and its derivative: the part of a recurrent network that differs
/// between RNN, LSTM and GRU.
///
/// Buffers are row-major `(batch, width)` slices with exactly `batch` rows (`batch ≥ 1`: the
/// driver skips steps where every sequence has ended):
///
/// | buffer | width | meaning |
/// |---|---|---|
/// | `p` | [`gate_width`](Cell::gate_width) | this step's input projection `x_t·W_ihᵀ + b_ih` |
/// | `prev`, `next`, `d_prev`, `d_next` | sum of the [`state_parts`](Cell::state_parts) sizes | states, parts side by side in order, `h` first |
/// | `saved` | [`saved_width`](Cell::saved_width) | what [`step`](Cell::step) keeps for [`step_backward`](Cell::step_backward) |
/// | `d_p`, `d_hp` | `gate_width` | gradients of `p` and of `h_prev·W_hhᵀ + b_hh` |
///
/// The cell computes the recurrent product `h_prev·W_hhᵀ` itself (so it can choose how), and in
/// `step_backward` it reports the gradient `d_hp` of that product so that the driver forms
/// `dW_hh = Σ_t d_hpᵀ·h_prev` in one GEMM after the time loop. For cells where `d_hp` equals
/// `d_p` (RNN, LSTM) [`separate_hidden_grad`](Cell::separate_hidden_grad) is `false` and `d_hp`
/// is empty; the driver then uses `d_p`.
///
/// Implementing these required methods gives a cell of your own [`crate::Recurrent`], the
/// single-step [`forward`](Cell::forward) / [`backward`](Cell::backward) and
/// [`crate::Gradcheck`].
pub trait Cell<T: Float>: Send + Sync {
    /// Features per input sample, `I`.
    fn input_size(&self) -> usize;

    /// Hidden units, `H`.
    fn hidden_size(&self) -> usize;

    /// Width of the packed gate pre-activations, `G·H`.
    fn gate_width(&self) -> usize;

    /// The parts of the state, `h` first.
    fn state_parts(&self) -> Vec<StatePart>;

    /// Values per sample that [`step`](Cell::step) saves for [`step_backward`](Cell::step_backward).
    fn saved_width(&self) -> usize;

    /// Whether the gradient of the hidden projection differs from that of the input projection
    /// (GRU: yes, because the reset gate scales `W_hn h + b_hn`). Defaults to `false`.
    fn separate_hidden_grad(&self) -> bool {
        false
    }

    /// Checks that the parameters have the shapes the cell's sizes imply. The default checks
    /// the four standard parameters with [`CellParams::validate`]; a cell with extra
    /// parameters overrides it to check those too. Every forward and backward pass calls it.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] naming the first parameter whose shape is wrong;
    /// [`Error::MissingParameter`] for a parameter that is absent.
    fn validate_params(&self) -> Result<()> {
        self.params()
            .validate(self.gate_width(), self.input_size(), self.output_size())
    }

    /// The parameters.
    fn params(&self) -> &CellParams<T>;

    /// The parameters, mutably (for optimisers and loading).
    fn params_mut(&mut self) -> &mut CellParams<T>;

    /// One forward step over `batch` samples: `next` and `saved` from `p` and `prev`.
    fn step(&self, batch: usize, p: &[T], prev: &[T], next: &mut [T], saved: &mut [T]);

    /// The derivative of [`step`](Cell::step): from `d_next` (the gradient of `next`), writes
    /// `d_p`, `d_hp` (only if [`separate_hidden_grad`](Cell::separate_hidden_grad)) and
    /// `d_prev`, overwriting them, and adds this step's contribution to the gradients of the
    /// cell's [`extra`](CellParams::extra) parameters in `grads` (the driver computes the four
    /// standard ones; the built-in cells have no extra parameter and leave `grads` alone).
    #[allow(clippy::too_many_arguments)]
    fn step_backward(
        &self,
        batch: usize,
        saved: &[T],
        prev: &[T],
        next: &[T],
        d_next: &[T],
        d_p: &mut [T],
        d_hp: &mut [T],
        d_prev: &mut [T],
        grads: &mut CellParams<T>,
    );

    /// Width of `h`, the output of a step (the first state part).
    fn output_size(&self) -> usize {
        self.state_parts()[0].size
    }

    /// A zero state for `batch` samples, each part `(batch, width)`.
    fn zero_state(&self, batch: usize) -> State<T> {
        State::new(
            self.state_parts()
                .iter()
                .map(|p| (p.name, Tensor::zeros(&[batch, p.size])))
                .collect(),
        )
    }

    /// One step on a batch, like PyTorch's `nn.LSTMCell(x, (h, c))`: `x` is `(B, I)`, each
    /// state part `(B, width)`; `None` starts from zeros.
    ///
    /// # Shapes
    ///
    /// `x: (B, I)`; state parts `(B, H)`; the returned state has the same shapes.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if `x`, a state part or a parameter has the wrong shape;
    /// [`Error::StatePartsMismatch`] if `state` does not have the cell's parts.
    fn forward(&self, x: &Tensor<T>, state: Option<&State<T>>) -> Result<(State<T>, StepTrace<T>)>
    where
        Self: Sized,
    {
        self.validate_params()?;
        let layout = self.state_parts();
        let (batch, width) = (x.shape()[0], state_width(&layout));
        check_shape(
            "cell input",
            Shape::from([batch, self.input_size()]),
            x.raw_shape(),
        )?;
        let mut prev = vec![T::zero(); batch * width];
        if let Some(state) = state {
            state.validate("cell state", &layout, &[batch])?;
            pack_state(state, &layout, batch, &mut prev, None);
        }
        let mut p = vec![T::zero(); batch * self.gate_width()];
        project_input(self.params(), x.as_mat(), &mut p);
        let mut next = vec![T::zero(); batch * width];
        let mut saved = vec![T::zero(); batch * self.saved_width()];
        self.step(batch, &p, &prev, &mut next, &mut saved);
        let out = unpack_state(&next, &layout, &[batch], batch, None);
        Ok((
            out,
            StepTrace {
                x: x.clone(),
                prev,
                next,
                saved,
            },
        ))
    }

    /// The gradients of one [`forward`](Cell::forward) step, given the gradient of the next
    /// state (`d_state` parts `(B, width)`).
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if a part of `d_state` or a parameter has the wrong shape;
    /// [`Error::StatePartsMismatch`] if `d_state` does not have the cell's parts;
    /// [`Error::TraceMismatch`] if `trace` was made by a cell of other sizes. The parameters
    /// must not change between `forward` and `backward`.
    fn backward(&self, trace: &StepTrace<T>, d_state: &State<T>) -> Result<StepGrads<T>>
    where
        Self: Sized,
    {
        self.validate_params()?;
        let layout = self.state_parts();
        let (batch, width, gw) = (trace.x.shape()[0], state_width(&layout), self.gate_width());
        check_trace(&[
            ("input size", self.input_size(), trace.x.len(), batch),
            ("state width", width, trace.prev.len(), batch),
            ("saved width", self.saved_width(), trace.saved.len(), batch),
        ])?;
        d_state.validate("cell state gradient", &layout, &[batch])?;
        let mut d_next = vec![T::zero(); batch * width];
        pack_state(d_state, &layout, batch, &mut d_next, None);
        let mut d_p = vec![T::zero(); batch * gw];
        let mut d_hp = vec![
            T::zero();
            if self.separate_hidden_grad() {
                batch * gw
            } else {
                0
            }
        ];
        let mut d_prev = vec![T::zero(); batch * width];
        let mut params = self.params().zeros_like();
        self.step_backward(
            batch,
            &trace.saved,
            &trace.prev,
            &trace.next,
            &d_next,
            &mut d_p,
            &mut d_hp,
            &mut d_prev,
            &mut params,
        );
        let h_out = layout[0].size;
        let d_hp = if self.separate_hidden_grad() {
            &d_hp
        } else {
            &d_p
        };
        let mut input = Tensor::zeros(&[batch, self.input_size()]);
        let x = trace.x.as_mat();
        let h_prev = MatRef::strided(&trace.prev, batch, h_out, width, 1);
        accumulate_param_grads(self.params(), &mut params, x, &d_p, h_prev, d_hp);
        input_grad(self.params(), &d_p, input.as_mat_mut());
        let state = unpack_state(&d_prev, &layout, &[batch], batch, None);
        Ok(StepGrads {
            input,
            state,
            params,
        })
    }
}

/// What one [`Cell::forward`] step keeps for [`Cell::backward`].
#[derive(Clone)]
pub struct StepTrace<T> {
    x: Tensor<T>,
    prev: Vec<T>,
    next: Vec<T>,
    saved: Vec<T>,
}

impl<T> fmt::Debug for StepTrace<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepTrace")
            .field("x_shape", &self.x.raw_shape())
            .finish_non_exhaustive()
    }
}

/// The gradients of one [`Cell::forward`] step.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StepGrads<T> {
    /// `dL/dx`, `(B, I)`.
    pub input: Tensor<T>,
    /// `dL/d(previous state)`, parts `(B, width)`.
    pub state: State<T>,
    /// `dL/dθ` for every parameter.
    pub params: CellParams<T>,
}

/// Writes a cell's one-line summary:
/// `LstmCell { input_size: 2, hidden_size: 3, bias: true, params: 84 }`, with `option` (such as
/// an RNN's non-linearity) before `bias`.
pub(crate) fn display_cell<T: Float>(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    input_size: usize,
    hidden_size: usize,
    option: Option<(&str, &dyn fmt::Debug)>,
    params: &CellParams<T>,
) -> fmt::Result {
    write!(
        f,
        "{name} {{ input_size: {input_size}, hidden_size: {hidden_size}, "
    )?;
    if let Some((label, value)) = option {
        write!(f, "{label}: {value:?}, ")?;
    }
    let bias = params.bias_ih.is_some();
    write!(f, "bias: {bias}, params: {} }}", params.count())
}

/// Checks trace buffers: each `(what, width, len, rows)` must hold `rows` rows of `width`.
pub(crate) fn check_trace(buffers: &[(&'static str, usize, usize, usize)]) -> Result<()> {
    for &(what, expected, len, rows) in buffers {
        if len != expected * rows {
            let actual = len.checked_div(rows).unwrap_or(0);
            return Err(Error::TraceMismatch {
                what,
                expected,
                actual,
            });
        }
    }
    Ok(())
}

/// The sum of the widths of the state parts.
pub(crate) fn state_width(layout: &[StatePart]) -> usize {
    layout.iter().map(|p| p.size).sum()
}

/// Copies a state (parts `(…, B, width)` with `batch` samples) into packed rows `(B, S)`; row
/// `j` takes sample `order[j]` (or `j` without an order).
pub(crate) fn pack_state<T: Float>(
    state: &State<T>,
    layout: &[StatePart],
    batch: usize,
    rows: &mut [T],
    order: Option<&[usize]>,
) {
    let width = state_width(layout);
    let mut offset = 0;
    for ((_, t), part) in state.parts().zip(layout) {
        let src = t.as_slice();
        for j in 0..batch {
            let b = order.map_or(j, |o| o[j]);
            rows[j * width + offset..][..part.size]
                .copy_from_slice(&src[b * part.size..][..part.size]);
        }
        offset += part.size;
    }
}

/// The inverse of [`pack_state`]: a state with parts of shape `lead ++ [width]`.
pub(crate) fn unpack_state<T: Float>(
    rows: &[T],
    layout: &[StatePart],
    lead: &[usize],
    batch: usize,
    order: Option<&[usize]>,
) -> State<T> {
    let width = state_width(layout);
    let mut offset = 0;
    let mut parts = Vec::with_capacity(layout.len());
    for part in layout {
        let mut dims = lead.to_vec();
        dims.push(part.size);
        let mut t = Tensor::zeros(&dims);
        let dst = t.as_mut_slice();
        for j in 0..batch {
            let b = order.map_or(j, |o| o[j]);
            dst[b * part.size..][..part.size]
                .copy_from_slice(&rows[j * width + offset..][..part.size]);
        }
        offset += part.size;
        parts.push((part.name, t));
    }
    State::new(parts)
}

/// `p ← x·W_ihᵀ + b_ih` for all rows of `x` at once.
pub(crate) fn project_input<T: Float>(params: &CellParams<T>, x: MatRef<'_, T>, p: &mut [T]) {
    let gw = params.weight_ih.shape()[0];
    let rows = x.rows();
    let beta = match &params.bias_ih {
        Some(b) => {
            for row in p.chunks_exact_mut(gw) {
                row.copy_from_slice(b.as_slice());
            }
            T::one()
        }
        None => T::zero(),
    };
    gemm(
        T::one(),
        x,
        params.weight_ih.as_mat().t(),
        beta,
        MatMut::new(p, rows, gw),
    );
}

/// Adds to `grads` the parameter gradients of a whole sequence in one GEMM each:
/// `dW_ih += d_pᵀ·x`, `dW_hh += d_hpᵀ·h_prev`, and the bias gradients as column sums.
pub(crate) fn accumulate_param_grads<T: Float>(
    params: &CellParams<T>,
    grads: &mut CellParams<T>,
    x: MatRef<'_, T>,
    d_p: &[T],
    h_prev: MatRef<'_, T>,
    d_hp: &[T],
) {
    let gw = params.weight_ih.shape()[0];
    let rows = x.rows();
    let d_p = MatRef::new(d_p, rows, gw);
    let d_hp = MatRef::new(d_hp, rows, gw);
    gemm(T::one(), d_p.t(), x, T::one(), grads.weight_ih.as_mat_mut());
    gemm(
        T::one(),
        d_hp.t(),
        h_prev,
        T::one(),
        grads.weight_hh.as_mat_mut(),
    );
    if let (Some(g_ih), Some(g_hh)) = (&mut grads.bias_ih, &mut grads.bias_hh) {
        let ones = vec![T::one(); rows];
        let ones = MatRef::new(&ones, 1, rows);
        gemm(T::one(), ones, d_p, T::one(), g_ih.as_mat_mut());
        gemm(T::one(), ones, d_hp, T::one(), g_hh.as_mat_mut());
    }
}

/// `d_x ← d_p·W_ih` for all rows at once.
pub(crate) fn input_grad<T: Float>(params: &CellParams<T>, d_p: &[T], d_x: MatMut<'_, T>) {
    let gw = params.weight_ih.shape()[0];
    let rows = d_x.rows();
    gemm(
        T::one(),
        MatRef::new(d_p, rows, gw),
        params.weight_ih.as_mat(),
        T::zero(),
        d_x,
    );
}

/// `weight_hhᵀ` laid out contiguously, `(H_out, G·H)`: `h·W_hhᵀ` as a product of two row-major
/// matrices runs up to 1.8× faster in `sgemm` at the per-step shapes (16×128×512: 145 against
/// 81 GFLOP/s) than with the transpose expressed by strides. A built-in cell computes it on
/// first use and drops it whenever its parameters are handed out mutably
/// ([`Cell::params_mut`]), so it always matches `weight_hh`.
#[derive(Clone, Default)]
pub(crate) struct TransposedWeight<T>(OnceLock<Vec<T>>);

impl<T: Float> TransposedWeight<T> {
    /// `wᵀ` for `w = weight_hh`, computed once.
    pub(crate) fn of<'a>(&'a self, w: &Tensor<T>) -> MatRef<'a, T> {
        let (rows, cols) = (w.shape()[0], w.shape()[1]);
        let data = self.0.get_or_init(|| {
            let w = w.as_slice();
            (0..cols)
                .flat_map(|c| (0..rows).map(move |r| w[r * cols + c]))
                .collect()
        });
        MatRef::new(data, cols, rows)
    }

    /// Forgets the transposed copy (the weight is about to change).
    pub(crate) fn clear(&mut self) {
        self.0 = OnceLock::new();
    }
}

/// A cache is no part of a cell's value.
impl<T> PartialEq for TransposedWeight<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<T> fmt::Debug for TransposedWeight<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "cached"
        } else {
            "empty"
        })
    }
}

/// `out ← β·out + h·W_hhᵀ` for the `h` columns (the first `h_out`) of packed state rows, with
/// `w_hh_t = W_hhᵀ` (`(H_out, G·H)`, see [`TransposedWeight`]).
pub(crate) fn recurrent_product<T: Float>(
    w_hh_t: MatRef<'_, T>,
    batch: usize,
    prev: &[T],
    state_width: usize,
    beta: T,
    out: MatMut<'_, T>,
) {
    let h = MatRef::strided(prev, batch, w_hh_t.rows(), state_width, 1);
    gemm(T::one(), h, w_hh_t, beta, out);
}

/// `d_h ← β·d_h + d_g·W_hh`: the gradient reaching `h_prev` through the recurrent product.
pub(crate) fn recurrent_product_backward<T: Float>(
    params: &CellParams<T>,
    batch: usize,
    d_g: &[T],
    beta: T,
    d_prev: &mut [T],
    state_width: usize,
) {
    let (gw, h_out) = (params.weight_hh.shape()[0], params.weight_hh.shape()[1]);
    let d_h = MatMut::strided(d_prev, batch, h_out, state_width, 1);
    gemm(
        T::one(),
        MatRef::new(d_g, batch, gw),
        params.weight_hh.as_mat(),
        beta,
        d_h,
    );
}

/// Fills each row's first `gw` values (of rows `stride` apart) with `b_hh`, or zeros.
pub(crate) fn fill_rows_with_bias<T: Float>(
    bias: Option<&Tensor<T>>,
    batch: usize,
    gw: usize,
    buf: &mut [T],
    stride: usize,
) {
    for row in buf.chunks_mut(stride).take(batch) {
        match bias {
            Some(b) => row[..gw].copy_from_slice(b.as_slice()),
            None => row[..gw].fill(T::zero()),
        }
    }
}
