//! The products of a recurrent layer that span every time step, each one GEMM: the input
//! projection before the time loop, and after the backward loop the weight gradients and the
//! input gradient. The per-step recurrent product is the cell's (see [`crate::kernels`]).

use crate::cell::CellParams;
use crate::float::Float;
use crate::linalg::{gemm, MatMut, MatRef};

/// `p ← x·W_ihᵀ + b_ih` for all rows of `x` at once.
pub(crate) fn project_input<T: Float>(params: &CellParams<T>, x: MatRef<'_, T>, p: &mut [T]) {
    let gw = params.weight_ih().shape()[0];
    let rows = x.rows();
    let beta = match params.bias_ih() {
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
        params.weight_ih().as_mat().t(),
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
    let gw = params.weight_ih().shape()[0];
    let rows = x.rows();
    let d_p = MatRef::new(d_p, rows, gw);
    let d_hp = MatRef::new(d_hp, rows, gw);
    gemm(
        T::one(),
        d_p.t(),
        x,
        T::one(),
        grads.weight_ih_mut().as_mat_mut(),
    );
    gemm(
        T::one(),
        d_hp.t(),
        h_prev,
        T::one(),
        grads.weight_hh_mut().as_mat_mut(),
    );
    if grads.bias_ih().is_some() {
        let ones = vec![T::one(); rows];
        let ones = MatRef::new(&ones, 1, rows);
        let g_ih = grads.bias_ih_mut().expect("checked above");
        gemm(T::one(), ones, d_p, T::one(), g_ih.as_mat_mut());
        let g_hh = grads.bias_hh_mut().expect("biases come in pairs");
        gemm(T::one(), ones, d_hp, T::one(), g_hh.as_mat_mut());
    }
}

/// `d_x ← d_p·W_ih` for all rows at once.
pub(crate) fn input_grad<T: Float>(params: &CellParams<T>, d_p: &[T], d_x: MatMut<'_, T>) {
    let gw = params.weight_ih().shape()[0];
    let rows = d_x.rows();
    gemm(
        T::one(),
        MatRef::new(d_p, rows, gw),
        params.weight_ih().as_mat(),
        T::zero(),
        d_x,
    );
}
