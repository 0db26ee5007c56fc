//! [`Init`]: how a cell's weight matrices are drawn — PyTorch's default, Xavier/Glorot or
//! orthogonal — and the orthogonalisation behind the last.

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::error::Result;
use crate::float::Float;
use crate::tensor::Tensor;

/// How a recurrent weight matrix (`weight_ih`, `weight_hh`, and an LSTM's `weight_hr`) is
/// initialised; chosen per matrix with `with_weight_ih_init` / `with_weight_hh_init` on the cell
/// and network configs (for example [`LstmCellConfig::with_weight_hh_init`]). Biases always
/// take PyTorch's default.
///
/// For a `(rows, cols)` matrix of a cell of `H` hidden units (`rows = G·H` for the gate
/// weights, `G` gate blocks of `H` rows each):
///
/// | scheme | distribution | PyTorch equivalent |
/// |---|---|---|
/// | [`Default`](Init::Default) | `U(−1/√H, 1/√H)` | `nn.LSTM`'s own initialisation |
/// | [`XavierUniform`](Init::XavierUniform) | `U(−a, a)`, `a = √(6 / (cols + rows))` | `xavier_uniform_(w)` |
/// | [`XavierNormal`](Init::XavierNormal) | `N(0, σ²)`, `σ = √(2 / (cols + rows))` | `xavier_normal_(w)` |
/// | [`Orthogonal`](Init::Orthogonal) | each gate block `(H, cols)` orthogonal | `orthogonal_(block)` per block |
///
/// Xavier takes `fan_in = cols` and `fan_out = rows` of the whole packed matrix, as
/// `torch.nn.init.xavier_uniform_` does when given PyTorch's `(G·H, cols)` parameter.
///
/// Orthogonal makes every `H`-row gate block orthogonal on its own (the usual practice for
/// LSTMs and GRUs, so that each gate's recurrent map preserves norms), as
/// `torch.nn.init.orthogonal_` would for that block: a block of standard-normal draws (row-major),
/// factored as `Q·R` with the signs of `Q` chosen so that `R` has a positive diagonal. A square
/// block (`weight_hh` without a projection) is then orthogonal, `QᵀQ = Q·Qᵀ = I`; a tall one has
/// orthonormal columns and a wide one orthonormal rows. `weight_hr (P, H)` is one block.
///
/// [`Default`](Init::Default) draws exactly what earlier versions drew, so a seeded model stays
/// the same.
///
/// # Examples
///
/// ```
/// use recurrent::{Cell, Init, LstmCellConfig};
///
/// let cell = LstmCellConfig::new(3, 4)
///     .with_weight_ih_init(Init::XavierUniform)
///     .with_weight_hh_init(Init::Orthogonal)
///     .init_seeded::<f64>(0)?;
/// // the forget-gate block of weight_hh (rows 4..8) is orthogonal
/// let w = cell.params().weight_hh().as_slice();
/// for i in 4..8 {
///     for j in 4..8 {
///         let dot: f64 = (0..4).map(|k| w[i * 4 + k] * w[j * 4 + k]).sum();
///         assert!((dot - f64::from(u8::from(i == j))).abs() < 1e-12);
///     }
/// }
/// # Ok::<(), recurrent::Error>(())
/// ```
///
/// [`LstmCellConfig::with_weight_hh_init`]: crate::LstmCellConfig::with_weight_hh_init
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Init {
    /// PyTorch's default for recurrent layers, `U(−1/√H, 1/√H)`.
    #[default]
    Default,
    /// Xavier/Glorot uniform, `U(−a, a)` with `a = √(6 / (fan_in + fan_out))`.
    XavierUniform,
    /// Xavier/Glorot normal, `N(0, 2 / (fan_in + fan_out))`.
    XavierNormal,
    /// Each gate block orthogonal (orthonormal rows or columns when it is not square).
    Orthogonal,
}

impl Init {
    /// A `(rows, cols)` weight called `what` drawn from this scheme, for a cell of
    /// `hidden_size` units (the bound of [`Init::Default`]) whose gate blocks have
    /// `block_rows` rows (the blocks [`Init::Orthogonal`] makes orthogonal; `rows` is a multiple
    /// of it). The sizes have been checked by the caller.
    pub(crate) fn draw<T: Float, R: Rng + ?Sized>(
        self,
        what: &'static str,
        [rows, cols]: [usize; 2],
        block_rows: usize,
        hidden_size: usize,
        rng: &mut R,
    ) -> Result<Tensor<T>> {
        match self {
            Init::Default => {
                // the bound as earlier versions computed it, so that draws stay bit-identical
                let k = T::one() / T::from_f64(hidden_size as f64).sqrt();
                Tensor::try_uniform(what, &[rows, cols], -k, k, rng)
            }
            Init::XavierUniform => {
                // torch: std = √(2 / (fan_in + fan_out)), a = √3·std
                let a = 3f64.sqrt() * xavier_std(rows, cols);
                Tensor::try_uniform(what, &[rows, cols], T::from_f64(-a), T::from_f64(a), rng)
            }
            Init::XavierNormal => {
                let std = xavier_std(rows, cols);
                Tensor::try_from_fn(what, &[rows, cols], || {
                    let z: f64 = StandardNormal.sample(rng);
                    T::from_f64(std * z)
                })
            }
            Init::Orthogonal => {
                debug_assert!(block_rows > 0 && rows % block_rows == 0);
                let mut w = Tensor::try_zeros(&[rows, cols])?;
                let block_len = block_rows * cols;
                if block_len > 0 {
                    let mut block = vec![0.0; block_len];
                    for out in w.as_mut_slice().chunks_exact_mut(block_len) {
                        block
                            .iter_mut()
                            .for_each(|v| *v = StandardNormal.sample(rng));
                        orthogonalize(&mut block, block_rows, cols);
                        out.iter_mut()
                            .zip(&block)
                            .for_each(|(o, &v)| *o = T::from_f64(v));
                    }
                }
                Ok(w)
            }
        }
    }
}

/// `√(2 / (fan_in + fan_out))` with `fan_in = cols`, `fan_out = rows` (`rows ≥ 1`).
fn xavier_std(rows: usize, cols: usize) -> f64 {
    (2.0 / (rows as f64 + cols as f64)).sqrt()
}

/// Replaces the row-major `(rows, cols)` matrix `a` by the `Q` of its QR decomposition with a
/// positive diagonal in `R`: `Q` has orthonormal columns if `rows ≥ cols`, and otherwise (when
/// torch factors `aᵀ`) `Q` has orthonormal rows.
///
/// Gram-Schmidt with every vector orthogonalised twice against the earlier ones ("twice is
/// enough": the result is orthonormal to rounding error whatever the conditioning), in `f64`.
/// Gram-Schmidt yields `R` with a positive diagonal directly, which is what torch's sign
/// correction `Q ← Q·sign(diag R)` makes of its Householder `Q`.
pub(crate) fn orthogonalize(a: &mut [f64], rows: usize, cols: usize) {
    debug_assert_eq!(a.len(), rows * cols);
    // the vectors to orthonormalise, each contiguous: the rows of a wide matrix, else the
    // columns (transposed here and back at the end)
    let (count, len) = (rows.min(cols), rows.max(cols));
    let mut v = if rows < cols {
        a.to_vec()
    } else {
        transpose(a, rows, cols)
    };
    for j in 0..count {
        let (done, rest) = v.split_at_mut(j * len);
        let vj = &mut rest[..len];
        for _ in 0..2 {
            for qi in done.chunks_exact(len) {
                let r = dot(qi, vj);
                vj.iter_mut().zip(qi).for_each(|(x, &q)| *x -= r * q);
            }
        }
        let norm = dot(vj, vj).sqrt();
        if norm > 0.0 {
            vj.iter_mut().for_each(|x| *x /= norm);
        }
    }
    if rows < cols {
        a.copy_from_slice(&v);
    } else {
        a.copy_from_slice(&transpose(&v, cols, rows));
    }
}

/// The row-major transpose of the `(rows, cols)` matrix `a`.
fn transpose(a: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut t = vec![0.0; a.len()];
    for i in 0..rows {
        for j in 0..cols {
            t[j * rows + i] = a[i * cols + j];
        }
    }
    t
}

/// `Σ x_k·y_k`, with four partial sums so that it vectorises.
fn dot(x: &[f64], y: &[f64]) -> f64 {
    let mut acc = [0.0; 4];
    let (xc, yc) = (x.chunks_exact(4), y.chunks_exact(4));
    let tail: f64 = xc
        .remainder()
        .iter()
        .zip(yc.remainder())
        .map(|(a, b)| a * b)
        .sum();
    for (a, b) in xc.zip(yc) {
        for k in 0..4 {
            acc[k] += a[k] * b[k];
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    /// `AᵀB` of two row-major `(rows, cols)` matrices, by the textbook triple loop.
    fn at_b(a: &[f64], b: &[f64], rows: usize, cols: usize) -> Vec<f64> {
        let mut c = vec![0.0; cols * cols];
        for i in 0..cols {
            for j in 0..cols {
                c[i * cols + j] = (0..rows).map(|k| a[k * cols + i] * b[k * cols + j]).sum();
            }
        }
        c
    }

    fn assert_identity(c: &[f64], n: usize) {
        for i in 0..n {
            for j in 0..n {
                let expected = if i == j { 1.0 } else { 0.0 };
                assert!(
                    (c[i * n + j] - expected).abs() < 1e-12,
                    "entry ({i}, {j}) is {}",
                    c[i * n + j]
                );
            }
        }
    }

    /// `Q` from the same normal draws as torch's `orthogonal_`, checked against the defining
    /// properties of its sign-corrected QR: orthonormal columns, `R = QᵀA` upper triangular
    /// with a positive diagonal, and `Q·R = A`.
    #[test]
    fn orthogonal_is_the_qr_factor_with_positive_r() {
        for (rows, cols) in [(5, 5), (7, 3), (3, 7), (1, 4), (4, 1), (40, 40)] {
            let mut rng = StdRng::seed_from_u64(rows as u64 * 100 + cols as u64);
            let w = Init::Orthogonal
                .draw::<f64, _>("w", [rows, cols], rows, 1, &mut rng)
                .unwrap();
            let mut rng = StdRng::seed_from_u64(rows as u64 * 100 + cols as u64);
            let a: Vec<f64> = (0..rows * cols)
                .map(|_| StandardNormal.sample(&mut rng))
                .collect();
            // torch factors the tall one of a and aᵀ
            let (q, a, m, n) = if rows >= cols {
                (w.as_slice().to_vec(), a, rows, cols)
            } else {
                (
                    transpose(w.as_slice(), rows, cols),
                    transpose(&a, rows, cols),
                    cols,
                    rows,
                )
            };
            assert_identity(&at_b(&q, &q, m, n), n);
            let r = at_b(&q, &a, m, n);
            for i in 0..n {
                assert!(r[i * n + i] > 0.0, "R[{i}, {i}] = {}", r[i * n + i]);
                for j in 0..i {
                    assert!(r[i * n + j].abs() < 1e-12, "R[{i}, {j}] = {}", r[i * n + j]);
                }
            }
            for i in 0..m {
                for j in 0..n {
                    let qr: f64 = (0..n).map(|k| q[i * n + k] * r[k * n + j]).sum();
                    assert!((qr - a[i * n + j]).abs() < 1e-12);
                }
            }
        }
    }

    #[test]
    fn orthogonal_square_blocks_are_orthogonal_both_ways() {
        let (h, g) = (16, 4);
        let w = Init::Orthogonal
            .draw::<f64, _>("w", [g * h, h], h, h, &mut StdRng::seed_from_u64(1))
            .unwrap();
        for block in w.as_slice().chunks_exact(h * h) {
            assert_identity(&at_b(block, block, h, h), h);
            assert_identity(
                &at_b(&transpose(block, h, h), &transpose(block, h, h), h, h),
                h,
            );
        }
        // the blocks are drawn independently
        assert_ne!(w.as_slice()[..h * h], w.as_slice()[h * h..2 * h * h]);
    }

    #[test]
    fn xavier_uniform_has_torch_bound_and_variance() {
        let (rows, cols) = (400, 200);
        let w = Init::XavierUniform
            .draw::<f64, _>("w", [rows, cols], 100, 100, &mut StdRng::seed_from_u64(2))
            .unwrap();
        let a = (6.0 / (rows + cols) as f64).sqrt();
        let s = w.as_slice();
        assert!(s.iter().all(|v| v.abs() <= a));
        // U(−a, a) has variance a²/3; 80 000 draws give its estimate to about 0.5 %
        let var = s.iter().map(|v| v * v).sum::<f64>() / s.len() as f64;
        approx::assert_relative_eq!(var, a * a / 3.0, max_relative = 0.02);
        assert!(s.iter().any(|v| v.abs() > 0.99 * a));
    }

    #[test]
    fn xavier_normal_has_torch_variance() {
        let (rows, cols) = (300, 100);
        let w = Init::XavierNormal
            .draw::<f64, _>("w", [rows, cols], 100, 100, &mut StdRng::seed_from_u64(3))
            .unwrap();
        let s = w.as_slice();
        let n = s.len() as f64;
        let std = (2.0 / (rows + cols) as f64).sqrt();
        let mean = s.iter().sum::<f64>() / n;
        let var = s.iter().map(|v| v * v).sum::<f64>() / n;
        // five standard errors of the mean; the variance's relative standard error is √(2/n)
        assert!(mean.abs() < 5.0 * std / n.sqrt());
        approx::assert_relative_eq!(var, 2.0 / (rows + cols) as f64, max_relative = 0.03);
    }

    #[test]
    fn default_is_pytorch_uniform() {
        let w = Init::Default
            .draw::<f32, _>("w", [12, 5], 3, 3, &mut StdRng::seed_from_u64(4))
            .unwrap();
        let k = 1.0 / 3f32.sqrt();
        let expected = Tensor::uniform(&[12, 5], -k, k, &mut StdRng::seed_from_u64(4));
        assert_eq!(w, expected);
    }

    /// [`Init::Default`] draws what earlier versions drew: every parameter from
    /// `U(−1/√H, 1/√H)` in the order `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`, and for a
    /// projection a square `weight_hh` first, then the projected one and `weight_hr`.
    #[test]
    fn default_init_draws_as_earlier_versions() {
        use crate::cell::{Cell, GruCellConfig, LstmCellConfig, RnnCellConfig};
        let (i, h, p) = (3, 5, 2);
        let reference = |g: usize, proj: usize, seed: u64| {
            let rng = &mut StdRng::seed_from_u64(seed);
            let k = 1.0 / (h as f64).sqrt();
            let mut u = |dims: &[usize]| Tensor::<f64>::uniform(dims, -k, k, rng);
            let mut all = vec![u(&[g * h, i]), u(&[g * h, h]), u(&[g * h]), u(&[g * h])];
            if proj > 0 {
                all[1] = u(&[g * h, proj]);
                all.push(u(&[proj, h]));
            }
            all
        };
        let drawn = |params: &crate::cell::CellParams<f64>| {
            let mut all = Vec::new();
            params.visit(|_, t| all.push(t.clone()));
            all
        };
        let lstm = LstmCellConfig::new(i, h).init_seeded::<f64>(1).unwrap();
        assert_eq!(drawn(lstm.params()), reference(4, 0, 1));
        let projected = LstmCellConfig::new(i, h).with_proj_size(p);
        let projected = projected.init_seeded::<f64>(2).unwrap();
        assert_eq!(drawn(projected.params()), reference(4, p, 2));
        let gru = GruCellConfig::new(i, h).init_seeded::<f64>(3).unwrap();
        assert_eq!(drawn(gru.params()), reference(3, 0, 3));
        let rnn = RnnCellConfig::new(i, h).init_seeded::<f64>(4).unwrap();
        assert_eq!(drawn(rnn.params()), reference(1, 0, 4));
    }
}
