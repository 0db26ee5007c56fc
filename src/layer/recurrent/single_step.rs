//! One cell step on a batch, outside any sequence: [`Cell::forward`] and [`Cell::backward`]
//! (PyTorch's `nn.LSTMCell(x, (h, c))` and its gradients), built from the same products as
//! the sequence driver.

use core::fmt;

use super::products::{accumulate_param_grads, input_grad, project_input};
use super::trace::Stamp;
use crate::cell::{BackwardStep, Cell, CellParams};
use crate::error::{check_shape, Result};
use crate::float::Float;
use crate::linalg::MatRef;
use crate::state::{pack_state, state_width, unpack_state, State};
use crate::tensor::{Shape, Tensor};

/// What one [`Cell::forward`] step keeps for [`Cell::backward`].
#[derive(Clone)]
pub struct StepTrace<T> {
    stamp: Stamp,
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

/// [`Cell::forward`].
pub(crate) fn forward<T: Float, C: Cell<T>>(
    cell: &C,
    x: &Tensor<T>,
    state: Option<&State<T>>,
) -> Result<(State<T>, StepTrace<T>)> {
    cell.validate_params()?;
    let parts = cell.state_parts();
    let (batch, width) = (x.shape()[0], state_width(parts));
    let expected = Shape::from([batch, cell.input_size()]);
    check_shape("cell input", expected, x.raw_shape())?;
    let mut prev = vec![T::zero(); batch * width];
    if let Some(state) = state {
        state.validate("cell state", parts, &[batch])?;
        pack_state(state, parts, batch, &mut prev, None);
    }
    let mut p = vec![T::zero(); batch * cell.gate_width()];
    project_input(cell.params(), x.as_mat(), &mut p);
    let mut next = vec![T::zero(); batch * width];
    let mut saved = vec![T::zero(); batch * cell.saved_width()];
    if batch > 0 {
        // a cell never sees an empty batch
        cell.step(batch, &p, &prev, &mut next, &mut saved);
    }
    let out = unpack_state(&next, parts, &[batch], batch, None);
    let trace = StepTrace {
        stamp: Stamp::of(cell),
        x: x.clone(),
        prev,
        next,
        saved,
    };
    Ok((out, trace))
}

/// [`Cell::backward`].
pub(crate) fn backward<T: Float, C: Cell<T>>(
    cell: &C,
    trace: &StepTrace<T>,
    d_state: &State<T>,
) -> Result<StepGrads<T>> {
    cell.validate_params()?;
    trace.stamp.check(&Stamp::of(cell))?;
    let parts = cell.state_parts();
    let (batch, width, gw) = (trace.x.shape()[0], state_width(parts), cell.gate_width());
    d_state.validate_gradient("cell state gradient", parts, &[batch])?;
    let mut d_next = vec![T::zero(); batch * width];
    pack_state(d_state, parts, batch, &mut d_next, None);
    let separate = cell.separate_hidden_grad();
    let mut d_p = vec![T::zero(); batch * gw];
    let mut d_hp = vec![T::zero(); if separate { batch * gw } else { 0 }];
    let mut d_prev = vec![T::zero(); batch * width];
    let mut params = cell.params().zeros_like();
    let step = BackwardStep {
        batch,
        saved: &trace.saved,
        prev: &trace.prev,
        next: &trace.next,
        d_next: &d_next,
        d_p: &mut d_p,
        d_hp: &mut d_hp,
        d_prev: &mut d_prev,
    };
    if batch > 0 {
        cell.step_backward(step, &mut params);
    }
    let d_hp = if separate { &d_hp } else { &d_p };
    let h_prev = MatRef::strided(&trace.prev, batch, parts[0].size, width, 1);
    accumulate_param_grads(
        cell.params(),
        &mut params,
        trace.x.as_mat(),
        &d_p,
        h_prev,
        d_hp,
    );
    let mut input = Tensor::zeros(&[batch, cell.input_size()]);
    input_grad(cell.params(), &d_p, input.as_mat_mut());
    let state = unpack_state(&d_prev, parts, &[batch], batch, None);
    Ok(StepGrads {
        input,
        state,
        params,
    })
}
