//! `Tensor::gemm` and the strided `gemm` against a simple, slow, correct triple loop: all four
//! transpose combinations, degenerate sizes (0 and 1), `α`/`β` scaling, strided views, in `f32`
//! and `f64`. Not covered: speed (see `benches/gemm.rs`).

use rand::{rngs::StdRng, SeedableRng};
use recurrent::{gemm, Float, MatMut, MatRef, Tensor};

/// `α·op(A)·op(B) + β·C` by definition.
fn naive<T: Float>(
    alpha: T,
    a: &Tensor<T>,
    ta: bool,
    b: &Tensor<T>,
    tb: bool,
    beta: T,
    c: &Tensor<T>,
) -> Tensor<T> {
    let get = |t: &Tensor<T>, trans: bool, i: usize, j: usize| {
        if trans {
            t.at(&[j, i])
        } else {
            t.at(&[i, j])
        }
    };
    let (m, n) = (c.shape()[0], c.shape()[1]);
    let k = if ta { a.shape()[0] } else { a.shape()[1] };
    let mut out = c.clone();
    for i in 0..m {
        for j in 0..n {
            let mut sum = T::zero();
            for p in 0..k {
                sum = sum + get(a, ta, i, p) * get(b, tb, p, j);
            }
            out.as_mut_slice()[i * n + j] = alpha * sum + beta * c.at(&[i, j]);
        }
    }
    out
}

fn check_all_sizes<T: Float>(tolerance: f64) {
    let mut rng = StdRng::seed_from_u64(11);
    let sizes = [0, 1, 2, 3, 7, 16, 33];
    for &m in &sizes {
        for &k in &sizes {
            for &n in &sizes {
                for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                    let a_dims = if ta { [k, m] } else { [m, k] };
                    let b_dims = if tb { [n, k] } else { [k, n] };
                    let a = Tensor::<T>::randn(&a_dims, &mut rng);
                    let b = Tensor::<T>::randn(&b_dims, &mut rng);
                    let c0 = Tensor::<T>::randn(&[m, n], &mut rng);
                    for (alpha, beta) in [(1.0, 0.0), (0.5, 1.0), (-2.0, 0.25)] {
                        let (alpha, beta) = (T::from_f64(alpha), T::from_f64(beta));
                        let mut c = c0.clone();
                        Tensor::gemm(alpha, &a, ta, &b, tb, beta, &mut c).unwrap();
                        let expected = naive(alpha, &a, ta, &b, tb, beta, &c0);
                        let diff = c.max_abs_diff(&expected).unwrap().as_f64();
                        assert!(
                            diff <= tolerance * (k as f64 + 1.0),
                            "m={m} k={k} n={n} ta={ta} tb={tb}: off by {diff}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn gemm_matches_the_triple_loop_f32() {
    check_all_sizes::<f32>(1e-5);
}

#[test]
fn gemm_matches_the_triple_loop_f64() {
    check_all_sizes::<f64>(1e-13);
}

/// `β = 0` overwrites `C` without reading it, so NaN in `C` does not survive.
#[test]
fn beta_zero_ignores_nan_in_the_output() {
    let a = Tensor::from_vec(vec![1.0f64, 2.0], &[1, 2]).unwrap();
    let b = Tensor::from_vec(vec![3.0f64, 4.0], &[2, 1]).unwrap();
    let mut c = Tensor::from_vec(vec![f64::NAN], &[1, 1]).unwrap();
    Tensor::gemm(1.0, &a, false, &b, false, 0.0, &mut c).unwrap();
    assert_eq!(c.as_slice(), &[11.0]);
    // with k = 0 too
    let empty = Tensor::<f64>::zeros(&[1, 0]);
    let empty_t = Tensor::<f64>::zeros(&[0, 1]);
    let mut c = Tensor::from_vec(vec![f64::NAN], &[1, 1]).unwrap();
    Tensor::gemm(1.0, &empty, false, &empty_t, false, 0.0, &mut c).unwrap();
    assert_eq!(c.as_slice(), &[0.0]);
}

/// Views into the middle of wider rows, as the recurrent step uses them.
#[test]
fn strided_views_read_and_write_only_their_elements() {
    let mut rng = StdRng::seed_from_u64(5);
    // A: 3×2 taken from the first two columns of rows 5 wide
    let a_buf = Tensor::<f64>::randn(&[3, 5], &mut rng);
    let a = MatRef::strided(a_buf.as_slice(), 3, 2, 5, 1);
    let b_t = Tensor::<f64>::randn(&[4, 2], &mut rng); // B = b_tᵀ, 2×4
    let mut c_buf = vec![7.0f64; 3 * 6];
    gemm(
        1.0,
        a,
        b_t.as_mat().t(),
        0.0,
        MatMut::strided(&mut c_buf, 3, 4, 6, 1),
    );
    for i in 0..3 {
        for j in 0..4 {
            let expected: f64 = (0..2).map(|p| a_buf.at(&[i, p]) * b_t.at(&[j, p])).sum();
            assert!((c_buf[i * 6 + j] - expected).abs() < 1e-14);
        }
        assert_eq!(
            &c_buf[i * 6 + 4..i * 6 + 6],
            &[7.0, 7.0],
            "row padding untouched"
        );
    }
}

/// A single row (batch-1 inference) takes a matrix-vector path: rows of `B` contiguous,
/// columns contiguous, neither, and a strided `C`, each against the definition; `β = 0` does
/// not read `C`.
#[test]
fn a_row_vector_times_any_layout_of_b() {
    let mut rng = StdRng::seed_from_u64(9);
    let (k, n) = (37, 21);
    let a = Tensor::<f64>::randn(&[1, k], &mut rng);
    // B's values at (p, j) live at p·rs + j·cs in `data`, for three layouts
    let data = Tensor::<f64>::randn(&[3 * k * n], &mut rng);
    let c0 = Tensor::<f64>::randn(&[2 * n], &mut rng);
    for (rs, cs) in [(n, 1), (1, k), (2 * n, 2)] {
        let b = MatRef::strided(data.as_slice(), k, n, rs, cs);
        // C contiguous or every other element; β = 0 over NaN, or β = 0.7 over values
        for (c_stride, beta) in [(1, 0.0), (2, 0.0), (1, 0.7), (2, 0.7)] {
            let mut c_buf = vec![f64::NAN; 2 * n];
            if beta != 0.0 {
                c_buf.copy_from_slice(c0.as_slice());
            }
            let c = MatMut::strided(&mut c_buf, 1, n, 2 * n, c_stride);
            gemm(0.5, a.as_mat(), b, beta, c);
            for j in 0..n {
                let expected: f64 = (0..k)
                    .map(|p| a.as_slice()[p] * data.as_slice()[p * rs + j * cs])
                    .sum();
                let expected = 0.5 * expected + beta * c0.as_slice()[j * c_stride];
                assert!(
                    (c_buf[j * c_stride] - expected).abs() < 1e-13,
                    "layout ({rs}, {cs}), C stride {c_stride}, β {beta}, column {j}"
                );
                if c_stride == 2 && beta == 0.0 {
                    assert!(c_buf[2 * j + 1].is_nan(), "between C's elements untouched");
                }
            }
        }
    }
}

#[test]
#[should_panic(expected = "gemm shape mismatch: A is 2×3, B is 2×2, C is 2×2")]
fn mismatched_views_panic_with_the_shapes() {
    let data = [0.0f32; 6];
    let mut out = [0.0f32; 4];
    gemm(
        1.0,
        MatRef::new(&data, 2, 3),
        MatRef::new(&data, 2, 2),
        0.0,
        MatMut::new(&mut out, 2, 2),
    );
}
