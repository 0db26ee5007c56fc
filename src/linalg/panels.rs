//! A weight operand packed once into column panels ([`PackedWeight`]), and the register-blocked
//! micro-kernel that multiplies a few rows by it ([`packed_gemm`]): the per-step products of a
//! time loop, `h·W_hhᵀ` forward and `d_g·W_hh` backward.
//!
//! A recurrent layer multiplies by the same weight at every time step. `matrixmultiply` packs
//! both operands again at every call, which costs a quarter of a step at the batch sizes of a
//! time loop; here the weight is packed once (per change of its values), and only the few rows
//! of the left operand are packed per call.
//!
//! Layout: `B (k × n)` is cut into panels of [`NR`] columns (the last one zero-padded), each
//! stored row-major `k × NR`, so that the kernel streams one panel from start to end. A tile of
//! `R` rows × `NR` columns is held in registers while it runs over all of `k`: `R·NR / lanes`
//! vector accumulators, `R` broadcasts and `NR / lanes` loads per step of `k`.
//!
//! For `f32` the tiles are AVX-512 or AVX2 + FMA intrinsics (in `x86`), chosen at run time
//! (the CPU is asked once); `f64`, and `f32` on other CPUs, use portable tiles that compute
//! the same sums.
//!
//! Every element of `C` is the sum over `p = 0..k` of `a_ip·b_pj`, accumulated in order of `p`
//! from zero, then added to `β·c_ij`: the same operations whatever the number of rows, the
//! blocking or the columns a thread computes, so results never depend on the batch size.

use core::ops::Range;

use multiversion::multiversion;

use super::worker::join;
use super::{MatMut, MatRef};
use crate::float::Float;

/// Columns of a panel: two AVX2 vectors or one AVX-512 vector of `f32`.
pub(crate) const NR: usize = 16;

/// From how many multiply-adds a product is split between the calling thread and the worker
/// (when two threads are allowed): below it (the small workload's 2²⁰ per step), the
/// hand-over and the second thread's share of the cache cost what the split saves.
const PARALLEL_WORK: usize = 1 << 21;

/// Products of at most this many rows (batch-1 streaming: a matrix-vector product, bound by
/// the weight's stream from cache) are split from [`PARALLEL_FEW_ROWS`] multiply-adds.
const FEW_ROWS: usize = 4;

/// From how many multiply-adds a product of [`FEW_ROWS`] rows or fewer is split: the stream
/// workload's 2¹⁸ per step ran 1.25× faster split (1.80 against 2.25 ms for the LSTM's
/// `infer`).
const PARALLEL_FEW_ROWS: usize = 1 << 16;

/// The most rows of a tile (the `f32` AVX-512 tile's).
const MAX_ROWS: usize = 8;

/// A weight `B (k × n)` packed into panels of [`NR`] columns for [`packed_gemm`].
pub struct PackedWeight<T> {
    /// From `start`: panel `j` (columns `j·NR..(j + 1)·NR`) at `j·k·NR`, row-major `k × NR`.
    data: Vec<T>,
    /// Where the panels start in `data`: on a 64-byte boundary, so that a panel row of 16
    /// `f32` is one cache line (a row split over two lines slows every load of the tile).
    start: usize,
    k: usize,
    n: usize,
}

/// The alignment of the panels, a cache line.
const ALIGN: usize = 64;

impl<T: Clone> Clone for PackedWeight<T> {
    /// A copy with its own alignment.
    fn clone(&self) -> Self {
        let mut data = self.data.clone();
        let len = self.n.div_ceil(NR) * self.k * NR;
        let start = data.as_ptr().align_offset(ALIGN);
        let start = if start <= data.len() - len {
            start
        } else {
            self.start
        };
        // move the panels to the copy's aligned start
        if start < self.start {
            data[start..self.start + len].rotate_left(self.start - start);
        } else if start > self.start {
            data[self.start..start + len].rotate_right(start - self.start);
        }
        PackedWeight {
            data,
            start,
            k: self.k,
            n: self.n,
        }
    }
}

impl<T> core::fmt::Debug for PackedWeight<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "PackedWeight {{ rows: {}, cols: {} }}", self.k, self.n)
    }
}

impl<T: Float> PackedWeight<T> {
    /// Zero panels for `B (k × n)`, aligned.
    fn zeroed(k: usize, n: usize) -> Self {
        let len = n.div_ceil(NR) * k * NR;
        let data = vec![T::zero(); len + ALIGN / core::mem::size_of::<T>()];
        let start = data.as_ptr().align_offset(ALIGN);
        let start = if start <= data.len() - len { start } else { 0 };
        PackedWeight { data, start, k, n }
    }

    /// The panels.
    fn values(&self) -> &[T] {
        &self.data[self.start..][..self.panels() * self.k * NR]
    }

    /// The panels, mutably.
    fn values_mut(&mut self) -> &mut [T] {
        let len = self.panels() * self.k * NR;
        &mut self.data[self.start..][..len]
    }

    /// Packs the operand `b` (`k × n`, any strides).
    pub(crate) fn new(b: MatRef<'_, T>) -> Self {
        let (k, n) = (b.rows, b.cols);
        let mut packed = Self::zeroed(k, n);
        for (j, panel) in packed
            .values_mut()
            .chunks_exact_mut(k.max(1) * NR)
            .enumerate()
        {
            let cols = NR.min(n - j * NR);
            for (p, row) in panel.chunks_exact_mut(NR).enumerate() {
                for (c, v) in row[..cols].iter_mut().enumerate() {
                    *v = b.data[p * b.row_stride + (j * NR + c) * b.col_stride];
                }
            }
        }
        packed
    }

    /// Packs `wᵀ` for a row-major `w (rows × cols)`: the operand of `x·wᵀ`.
    ///
    /// # Panics
    ///
    /// Panics if `w` does not hold `rows·cols` values.
    #[track_caller]
    pub(crate) fn transposed(w: &[T], rows: usize, cols: usize) -> Self {
        Self::new(MatRef::new(w, rows, cols).t())
    }

    /// Packs a row-major `w (rows × cols)` as it is: the operand of `x·w`.
    ///
    /// # Panics
    ///
    /// Panics if `w` does not hold `rows·cols` values.
    #[track_caller]
    pub(crate) fn plain(w: &[T], rows: usize, cols: usize) -> Self {
        Self::new(MatRef::new(w, rows, cols))
    }

    /// Rows of the operand, `k`.
    pub(crate) fn rows(&self) -> usize {
        self.k
    }

    /// Columns of the operand, `n`.
    pub(crate) fn cols(&self) -> usize {
        self.n
    }

    /// Number of panels, `⌈n / NR⌉`.
    pub(crate) fn panels(&self) -> usize {
        self.n.div_ceil(NR)
    }
}

/// `C ← A·B + β·C` with `B` packed: the product of a time step. `β = 0` never reads `C`.
///
/// # Panics
///
/// Panics if the shapes do not chain: `A` is `m×k`, `B` must be `k×n` and `C` `m×n`.
#[track_caller]
pub(crate) fn packed_gemm<T: Float>(
    a: MatRef<'_, T>,
    b: &PackedWeight<T>,
    beta: T,
    c: MatMut<'_, T>,
) {
    packed_gemm_panels(a, b, beta, c, 0..b.panels());
}

/// [`packed_gemm`] on the columns of the panels in `panels` only; the other columns of `C` are
/// left alone. A large product is split in two halves of the panels (hidden units), one run by
/// the worker thread, when [`crate::set_num_threads`] allows two threads and the calling
/// thread is not already one side of a split.
///
/// # Panics
///
/// Panics if the shapes do not chain or `panels` is not a range of `B`'s panels.
#[track_caller]
pub(crate) fn packed_gemm_panels<T: Float>(
    a: MatRef<'_, T>,
    b: &PackedWeight<T>,
    beta: T,
    c: MatMut<'_, T>,
    panels: Range<usize>,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols());
    assert!(
        b.rows() == k && c.rows == m && c.cols == n,
        "gemm shape mismatch: A is {m}×{k}, B is {}×{n}, C is {}×{}",
        b.rows(),
        c.rows,
        c.cols
    );
    assert!(
        panels.start <= panels.end && panels.end <= b.panels(),
        "panels {panels:?} of {}",
        b.panels()
    );
    if m == 0 || panels.is_empty() {
        return;
    }
    // a few rows stream the weight from cache: two cores have twice the cache bandwidth
    let work = m * k * n;
    let split = (work >= PARALLEL_WORK || m <= FEW_ROWS && work >= PARALLEL_FEW_ROWS)
        && crate::threads::may_spawn();
    T::packed_product(a, b, beta, c, panels, split);
}

/// The body of [`packed_gemm_panels`] for `f32`, shapes checked: the AVX-512 or AVX2 tiles
/// when the CPU has them, else the portable ones.
pub(crate) fn product_f32(
    a: MatRef<'_, f32>,
    b: &PackedWeight<f32>,
    beta: f32,
    c: MatMut<'_, f32>,
    panels: Range<usize>,
    split: bool,
) {
    #[cfg(target_arch = "x86_64")]
    if let Some(isa) = super::x86::Isa::detect() {
        use super::x86::{tile, Isa};
        let k = a.cols;
        let (wide, wide2) = isa.panels_for_short_tiles();
        // one or two rows take several panels at a time, the AVX-512 tile twice as many
        let group = match (a.rows, isa) {
            (1, _) => wide,
            (2, _) => wide2,
            _ => 1,
        };
        let kernel = |height: usize,
                      g: usize,
                      a: &[f32],
                      stride: usize,
                      b: &[f32],
                      out: Out<'_, f32>| {
            match (height, g, isa) {
                (1, 8, _) => out.store(&tile::<1, 8>(isa, k, a, stride, b)),
                (1, 4, _) => out.store(&tile::<1, 4>(isa, k, a, stride, b)),
                (2, 4, _) => out.store(&tile::<2, 4>(isa, k, a, stride, b)),
                (2, 2, _) => out.store(&tile::<2, 2>(isa, k, a, stride, b)),
                (1, _, _) => out.store(&tile::<1, 1>(isa, k, a, stride, b)),
                (2, _, _) => out.store(&tile::<2, 1>(isa, k, a, stride, b)),
                (3, _, _) => out.store(&tile::<3, 1>(isa, k, a, stride, b)),
                (4, _, _) => out.store(&tile::<4, 1>(isa, k, a, stride, b)),
                (5, _, _) => out.store(&tile::<5, 1>(isa, k, a, stride, b)),
                (6, _, _) => out.store(&tile::<6, 1>(isa, k, a, stride, b)),
                (7, _, Isa::Avx512) => out.store(&tile::<7, 1>(isa, k, a, stride, b)),
                _ => out.store(&tile::<MAX_ROWS, 1>(isa, k, a, stride, b)),
            }
        };
        run(a, b, beta, c, (panels, split), (isa.rows(), group), kernel);
        return;
    }
    product_portable(a, b, beta, c, panels, split);
}

/// The body of [`packed_gemm_panels`] in portable code (`f64`, and `f32` on CPUs without AVX2),
/// shapes checked. Compiled for AVX-512 and AVX2 as well, chosen at run time. Its sums are
/// fused multiply-adds in the same order as the `f32` SIMD tiles', so it gives the same bits.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
pub(crate) fn product_portable<T: Float>(
    a: MatRef<'_, T>,
    b: &PackedWeight<T>,
    beta: T,
    c: MatMut<'_, T>,
    panels: Range<usize>,
    split: bool,
) {
    let kernel =
        |height: usize, _: usize, a: &[T], stride: usize, b: &[T], out: Out<'_, T>| match height {
            1 => out.store(&portable_tile::<T, 1>(a, stride, b)),
            2 => out.store(&portable_tile::<T, 2>(a, stride, b)),
            3 => out.store(&portable_tile::<T, 3>(a, stride, b)),
            _ => out.store(&portable_tile::<T, PORTABLE_ROWS>(a, stride, b)),
        };
    run(a, b, beta, c, (panels, split), (PORTABLE_ROWS, 1), kernel);
}

/// Rows of a portable tile.
const PORTABLE_ROWS: usize = 4;

/// Packs `A` into blocks of at most `rows` rows (`k × rows` each, column by column) and runs
/// `kernel` on each tile (its height, its number of panels, its block of `A`, `rows`, its
/// panels, where it goes), `group` panels at a time (one for the last few), so that the panels
/// stay in cache while every block of rows passes over them. With `split`, the worker thread
/// takes the second half of the panels.
#[inline(always)]
fn run<T: Float>(
    a: MatRef<'_, T>,
    b: &PackedWeight<T>,
    beta: T,
    c: MatMut<'_, T>,
    (panels, split): (Range<usize>, bool),
    (rows, group): (usize, usize),
    kernel: impl Fn(usize, usize, &[T], usize, &[T], Out<'_, T>) + Sync,
) {
    let (m, k, n) = (a.rows, a.cols, b.n);
    // blocks of as even heights as can be (6 + 5 + 5 rather than 6 + 6 + 4): a short tile has
    // too few accumulators to keep the FMA units busy
    let blocks = m.div_ceil(rows);
    let block_rows = |block: usize| {
        let (base, extra) = (m / blocks, m % blocks);
        let first = block * base + block.min(extra);
        (first, base + usize::from(block < extra))
    };
    // block by block, column by column; the rows of a short block past its height are padding
    // that no tile reads
    let mut packed_a = vec![T::zero(); blocks * k * rows];
    for (block, packed) in packed_a.chunks_exact_mut((k * rows).max(1)).enumerate() {
        let (first, height) = block_rows(block);
        for (r, row) in (first..first + height).enumerate() {
            let at = row * a.row_stride;
            for p in 0..k {
                packed[p * rows + r] = a.data[at + p * a.col_stride];
            }
        }
    }
    let packed_a = &packed_a;
    // the tiles of `panels` into `data` (strides `rs`, `cs`), whose column 0 is column
    // `origin` of C
    let compute = |panels: Range<usize>, data: &mut [T], (rs, cs): (usize, usize), origin, beta| {
        let mut j = panels.start;
        while j < panels.end {
            let g = if j + group <= panels.end { group } else { 1 };
            let panel = &b.values()[j * k * NR..][..g * k * NR];
            let (col0, cols) = (j * NR, (g * NR).min(n - j * NR));
            j += g;
            for block in 0..blocks {
                let (first, height) = block_rows(block);
                let out = Out {
                    data: &mut *data,
                    at: first * rs + (col0 - origin) * cs,
                    rs,
                    cs,
                    cols,
                    beta,
                };
                let a_block = &packed_a[block * rows * k..][..rows * k];
                kernel(height, g, a_block, rows, panel, out);
            }
        }
    };
    let MatMut {
        data: c_data,
        row_stride: rs,
        col_stride: cs,
        ..
    } = c;
    if !split || panels.len() < 2 {
        compute(panels, c_data, (rs, cs), 0, beta);
        return;
    }
    // the second half of the panels on the worker, into a buffer of its own that is added
    // to C here afterwards, as the tiles would have (so the results are the same)
    let mid = panels.start + panels.len() / 2;
    let origin = mid * NR;
    let width = (panels.end * NR).min(n) - origin;
    let mut theirs = vec![T::zero(); m * width];
    join(
        || compute(panels.start..mid, &mut *c_data, (rs, cs), 0, beta),
        || compute(mid..panels.end, &mut theirs, (width, 1), origin, T::zero()),
    );
    for (i, row) in theirs.chunks_exact(width).enumerate() {
        for (j, &v) in row.iter().enumerate() {
            let c = &mut c_data[i * rs + (origin + j) * cs];
            *c = if beta == T::zero() { v } else { beta * *c + v };
        }
    }
}

/// Where a tile goes: `cols` columns (over its panels) of its rows from `data[at]`, strides
/// `(rs, cs)`, as `c ← β·c + tile`.
struct Out<'a, T> {
    data: &'a mut [T],
    at: usize,
    rs: usize,
    cs: usize,
    cols: usize,
    beta: T,
}

impl<T: Float> Out<'_, T> {
    /// Stores a tile of `R` rows of `P` panels.
    #[inline(always)]
    fn store<const R: usize, const P: usize>(self, tile: &[[[T; NR]; P]; R]) {
        if self.cs == 1 {
            // contiguous rows: loops the compiler vectorises
            for (r, row) in tile.iter().enumerate() {
                let values = &row.as_flattened()[..self.cols];
                let dst = &mut self.data[self.at + r * self.rs..][..self.cols];
                if self.beta == T::zero() {
                    dst.copy_from_slice(values);
                } else {
                    for (c, &v) in dst.iter_mut().zip(values) {
                        *c = self.beta * *c + v;
                    }
                }
            }
            return;
        }
        for (r, row) in tile.iter().enumerate() {
            let values = row.iter().flatten().take(self.cols);
            for (j, &v) in values.enumerate() {
                let c = &mut self.data[self.at + r * self.rs + j * self.cs];
                *c = if self.beta == T::zero() {
                    v
                } else {
                    self.beta * *c + v
                };
            }
        }
    }
}

/// One tile in portable code: `R` rows (the first `R` of each `stride`-value group of `a`)
/// times one panel, each sum accumulated over all of `k` in order with fused multiply-adds.
#[inline(always)]
fn portable_tile<T: Float, const R: usize>(
    a: &[T],
    stride: usize,
    panel: &[T],
) -> [[[T; NR]; 1]; R] {
    let mut acc = [[[T::zero(); NR]; 1]; R];
    for (a, b) in a.chunks_exact(stride).zip(panel.chunks_exact(NR)) {
        for ([acc], &ar) in acc.iter_mut().zip(&a[..R]) {
            for (c, &b) in acc.iter_mut().zip(b) {
                *c = ar.mul_add(b, *c);
            }
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::gemm;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    fn random<T: Float>(len: usize, rng: &mut StdRng) -> Vec<T> {
        (0..len)
            .map(|_| T::from_f64(rng.random_range(-1.0..1.0)))
            .collect()
    }

    /// The packed product against `matrixmultiply` (and the row-vector loop) on every shape it
    /// serves: one row and odd row counts, partial panels, `β` 0 and 1, strided `A` and `C`
    /// (state rows), and `B` given as a transpose or as it is.
    fn matches_gemm<T: Float>(tol: f64) {
        let rng = &mut StdRng::seed_from_u64(7);
        for m in [1, 2, 3, 5, 6, 7, 8, 9, 13, 16, 17, 64] {
            for (k, n) in [(1, 1), (3, 5), (8, 16), (13, 33), (64, 256), (100, 300)] {
                for transposed in [false, true] {
                    // A: m rows of a buffer 3 values wider than k (strided, like state rows)
                    let a_buf = random::<T>(m * (k + 3), rng);
                    let a = MatRef::strided(&a_buf, m, k, k + 3, 1);
                    let w = random::<T>(k * n, rng);
                    let (b_view, packed) = if transposed {
                        (
                            MatRef::new(&w, n, k).t(),
                            PackedWeight::transposed(&w, n, k),
                        )
                    } else {
                        (MatRef::new(&w, k, n), PackedWeight::plain(&w, k, n))
                    };
                    assert_eq!((packed.rows(), packed.cols()), (k, n));
                    for beta in [0.0, 1.0] {
                        let beta = T::from_f64(beta);
                        let c0 = random::<T>(m * (n + 2), rng);
                        let (mut want, mut got) = (c0.clone(), c0.clone());
                        gemm(
                            T::one(),
                            a,
                            b_view,
                            beta,
                            MatMut::strided(&mut want, m, n, n + 2, 1),
                        );
                        packed_gemm(a, &packed, beta, MatMut::strided(&mut got, m, n, n + 2, 1));
                        for (i, (w, g)) in want.iter().zip(&got).enumerate() {
                            let (w, g) = (w.as_f64(), g.as_f64());
                            assert!(
                                (w - g).abs() <= tol * (1.0 + w.abs()),
                                "m {m} k {k} n {n} transposed {transposed}: [{i}] {g} vs {w}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn f32_matches_gemm() {
        matches_gemm::<f32>(1e-5);
    }

    #[test]
    fn f64_matches_gemm() {
        matches_gemm::<f64>(1e-13);
    }

    /// A clone keeps the values (moved to its own aligned start) and the alignment.
    #[test]
    fn clones_are_aligned_copies() {
        let w: Vec<f32> = (0..40).map(|v| v as f32).collect();
        let packed = PackedWeight::plain(&w, 2, 20);
        for _ in 0..8 {
            let copy = packed.clone();
            assert_eq!(copy.values(), packed.values());
            assert_eq!(copy.values().as_ptr().align_offset(ALIGN), 0);
        }
        assert_eq!(packed.values()[..3], [0.0, 1.0, 2.0]);
        assert_eq!(packed.values().as_ptr().align_offset(ALIGN), 0);
    }

    /// The portable tiles give the SIMD tiles' results bit for bit (the same fused
    /// multiply-adds in the same order): a CPU without AVX2 computes what one with it does.
    #[test]
    fn portable_tiles_give_the_simd_tiles_bits() {
        let rng = &mut StdRng::seed_from_u64(9);
        for (m, k, n) in [(1, 37, 70), (2, 64, 64), (5, 100, 33), (13, 128, 512)] {
            let a = random::<f32>(m * k, rng);
            let w = random::<f32>(k * n, rng);
            let packed = PackedWeight::plain(&w, k, n);
            let (mut simd, mut portable) = (vec![0.0f32; m * n], vec![0.0f32; m * n]);
            let a = MatRef::new(&a, m, k);
            let all = 0..packed.panels();
            product_f32(
                a,
                &packed,
                0.0,
                MatMut::new(&mut simd, m, n),
                all.clone(),
                false,
            );
            product_portable(
                a,
                &packed,
                0.0,
                MatMut::new(&mut portable, m, n),
                all,
                false,
            );
            assert_eq!(simd, portable, "{m}×{k}×{n}");
        }
    }

    /// `A` is read through its strides whatever they are: a transposed view, a column repeated
    /// by a zero stride, and no columns at all (`k = 0`, `C ← β·C`).
    #[test]
    fn a_is_read_through_any_strides() {
        let rng = &mut StdRng::seed_from_u64(3);
        let (m, k, n) = (7, 5, 20);
        let w = random::<f64>(k * n, rng);
        let packed = PackedWeight::plain(&w, k, n);
        let a_t = random::<f64>(k * m, rng);
        let column = random::<f64>(m, rng);
        let views = [
            MatRef::new(&a_t, k, m).t(),
            MatRef::strided(&column, m, k, 1, 0),
        ];
        for a in views {
            let mut got = vec![0.0; m * n];
            packed_gemm(a, &packed, 0.0, MatMut::new(&mut got, m, n));
            for i in 0..m {
                for j in 0..n {
                    let at = |p: usize| a.data[i * a.row_stride + p * a.col_stride];
                    let want: f64 = (0..k).map(|p| at(p) * w[p * n + j]).sum();
                    assert!((got[i * n + j] - want).abs() < 1e-12, "({i}, {j})");
                }
            }
        }
        let mut c = vec![2.0; m * n];
        let empty = PackedWeight::plain(&[], 0, n);
        packed_gemm(
            MatRef::new(&[], m, 0),
            &empty,
            0.5,
            MatMut::new(&mut c, m, n),
        );
        assert!(c.iter().all(|&v| v == 1.0));
    }

    /// `β = 0` never reads `C`: NaN there does not leak.
    #[test]
    fn beta_zero_ignores_nan() {
        let a = [1.0f32, 2.0];
        let w = [1.0f32, 0.0, 0.0, 1.0];
        let mut c = [f32::NAN; 2];
        packed_gemm(
            MatRef::new(&a, 1, 2),
            &PackedWeight::plain(&w, 2, 2),
            0.0,
            MatMut::new(&mut c, 1, 2),
        );
        assert_eq!(c, [1.0, 2.0]);
    }

    /// Each row's result is the same whatever the other rows, and a range of panels writes
    /// exactly its columns: what splitting a batch or the hidden units between threads needs.
    #[test]
    fn rows_and_panels_are_independent() {
        let rng = &mut StdRng::seed_from_u64(3);
        let (m, k, n) = (11, 37, 3 * NR + 5);
        let a = random::<f32>(m * k, rng);
        let w = random::<f32>(k * n, rng);
        let packed = PackedWeight::plain(&w, k, n);
        let mut all = vec![0.0f32; m * n];
        packed_gemm(
            MatRef::new(&a, m, k),
            &packed,
            0.0,
            MatMut::new(&mut all, m, n),
        );
        for i in 0..m {
            let mut one = vec![0.0f32; n];
            let row = MatRef::new(&a[i * k..][..k], 1, k);
            packed_gemm(row, &packed, 0.0, MatMut::new(&mut one, 1, n));
            assert_eq!(one, all[i * n..][..n], "row {i}");
        }
        let mut split = vec![f32::NAN; m * n];
        let a = MatRef::new(&a, m, k);
        packed_gemm_panels(a, &packed, 0.0, MatMut::new(&mut split, m, n), 0..2);
        assert!(split
            .iter()
            .enumerate()
            .all(|(i, v)| v.is_nan() == (i % n >= 2 * NR)));
        packed_gemm_panels(a, &packed, 0.0, MatMut::new(&mut split, m, n), 2..4);
        assert_eq!(split, all);
    }

    #[test]
    #[should_panic(expected = "gemm shape mismatch: A is 2×3, B is 4×5, C is 2×5")]
    fn mismatched_shapes_panic_naming_both() {
        let w = [0.0f32; 20];
        let mut c = [0.0f32; 10];
        packed_gemm(
            MatRef::new(&[0.0; 6], 2, 3),
            &PackedWeight::plain(&w, 4, 5),
            0.0,
            MatMut::new(&mut c, 2, 5),
        );
    }
}
