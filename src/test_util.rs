//! Helpers shared by the unit tests of several modules.

use crate::tensor::Tensor;

/// A tensor from literal values.
pub(crate) fn t(data: &[f64], dims: &[usize]) -> Tensor<f64> {
    Tensor::from_vec(data.to_vec(), dims).unwrap()
}

/// Asserts `actual ≈ expected` elementwise to `tol`.
#[track_caller]
pub(crate) fn assert_close(actual: &[f64], expected: &[f64], tol: f64) {
    assert_eq!(actual.len(), expected.len());
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            (a - e).abs() <= tol,
            "element {i}: got {a}, expected {e} (tolerance {tol})\n actual:   {actual:?}\n expected: {expected:?}"
        );
    }
}

/// Held by the unit tests that change the process-wide thread setting, so that they do not
/// change it under each other.
pub(crate) static THREAD_SETTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
