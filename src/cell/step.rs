//! [`BackwardStep`]: the buffers of one step of backpropagation through time, by name.

/// The buffers [`Cell::step_backward`](crate::Cell::step_backward) reads and writes for one
/// time step, each row-major `(batch, width)` with exactly `batch` rows:
///
/// | buffer | width | meaning |
/// |---|---|---|
/// | `saved` | [`saved_width`](crate::Cell::saved_width) | what [`step`](crate::Cell::step) kept |
/// | `prev`, `next` | the state width | the states before and after the step |
/// | `d_next` | the state width | the gradient of `next` (read) |
/// | `d_p` | [`gate_width`](crate::Cell::gate_width) | the gradient of the input projection `p` (written) |
/// | `d_hp` | `gate_width`, or empty | the gradient of `h_prev·W_hhᵀ + b_hh` (written) when [`separate_hidden_grad`](crate::Cell::separate_hidden_grad) |
/// | `d_prev` | the state width | the gradient of `prev` (written) |
///
/// States are packed rows with their parts side by side, `h` first.
///
/// For speed: the compiler knows that slices passed as separate function arguments do not
/// overlap, not that the `&mut` fields of a struct do not. A loop over these buffers that
/// should vectorise belongs in a function that takes them as arguments (the built-in GRU's
/// `gate_gradients` is an example); without it the same loop can run several times slower.
#[derive(Debug)]
pub struct BackwardStep<'a, T> {
    /// Samples in this step (`≥ 1`).
    pub batch: usize,
    /// What the forward step saved.
    pub saved: &'a [T],
    /// The state before the step.
    pub prev: &'a [T],
    /// The state after the step.
    pub next: &'a [T],
    /// The gradient of `next`.
    pub d_next: &'a [T],
    /// Receives the gradient of the input projection.
    pub d_p: &'a mut [T],
    /// Receives the gradient of the hidden projection (empty unless the cell keeps it apart).
    pub d_hp: &'a mut [T],
    /// Receives the gradient of `prev`.
    pub d_prev: &'a mut [T],
}
