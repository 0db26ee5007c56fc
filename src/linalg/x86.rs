//! The `f32` tiles of [`super::panels`] in AVX2 + FMA and AVX-512 intrinsics, each behind a
//! safe function that checks the CPU and the slice lengths before the one `unsafe` call.
//!
//! A tile is `R` rows × one panel of 16 columns summed over `k`: per step of `k`, one or two
//! loads of the panel row, `R` broadcasts of `A` and `R·16 / lanes` fused multiply-adds into
//! accumulators that stay in registers (AVX2: 6 rows × 2 vectors = 12 of the 16 registers;
//! AVX-512: 8 rows × 1 vector, enough to cover the FMA latency).

#![allow(unsafe_code)]

use core::arch::x86_64::*;

use super::panels::NR;

/// The instruction sets the tiles are written for, best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    /// AVX-512F: one 16-lane vector per row.
    Avx512,
    /// AVX2 with FMA: two 8-lane vectors per row.
    Avx2,
}

impl Isa {
    /// The best instruction set this CPU has, asked once per process.
    pub(crate) fn detect() -> Option<Isa> {
        use std::sync::OnceLock;
        static DETECTED: OnceLock<Option<Isa>> = OnceLock::new();
        *DETECTED.get_or_init(|| {
            if is_x86_feature_detected!("avx512f") {
                Some(Isa::Avx512)
            } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                Some(Isa::Avx2)
            } else {
                None
            }
        })
    }

    /// Whether this CPU can run `self`'s tiles.
    pub(crate) fn available(self) -> bool {
        match self {
            Isa::Avx512 => is_x86_feature_detected!("avx512f"),
            Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
        }
    }

    /// Rows of a full tile.
    pub(crate) fn rows(self) -> usize {
        match self {
            Isa::Avx512 => 8,
            Isa::Avx2 => 6,
        }
    }

    /// Panels a tile of one or two rows takes at once, for enough accumulators (eight).
    pub(crate) fn panels_for_short_tiles(self) -> (usize, usize) {
        match self {
            Isa::Avx512 => (8, 4),
            Isa::Avx2 => (4, 2),
        }
    }
}

/// One tile: `acc[r][q][j] = Σ_p a[p·stride + r]·panels[q·k·NR + p·NR + j]` for `r < R` rows,
/// `q < P` consecutive panels, `p < k`, each sum accumulated in order of `p` with fused
/// multiply-adds, on `isa`. Several panels at once give a tile of few rows enough independent
/// accumulators to cover the FMA latency.
///
/// # Panics
///
/// Panics if `isa` is not available on this CPU, `R > stride`, `a` holds fewer than `k` rows or
/// `panels` fewer than `P` panels of `k` rows.
#[inline]
pub(crate) fn tile<const R: usize, const P: usize>(
    isa: Isa,
    k: usize,
    a: &[f32],
    stride: usize,
    panels: &[f32],
) -> [[[f32; NR]; P]; R] {
    assert!(isa.available(), "{isa:?} is not available on this CPU");
    assert!(R <= stride, "a tile of {R} rows from blocks of {stride}");
    assert!(
        k == 0 || a.len() >= (k - 1) * stride + R,
        "{k} steps of {stride} values of A, {} given",
        a.len()
    );
    assert!(
        panels.len() >= P * k * NR,
        "{P} panels of {k} rows, {} values",
        panels.len()
    );
    let mut acc = [[[0.0f32; NR]; P]; R];
    // SAFETY: the CPU has the instruction set (asserted above), and the kernels read only
    // a[p·stride + r] for p < k, r < R (within a.len() as asserted) and
    // panels[q·k·NR + p·NR + j] for q < P, j < NR (within panels.len()), and write only acc.
    unsafe {
        match isa {
            Isa::Avx512 => tile_avx512::<R, P>(k, a.as_ptr(), stride, panels.as_ptr(), &mut acc),
            Isa::Avx2 => tile_avx2::<R, P>(k, a.as_ptr(), stride, panels.as_ptr(), &mut acc),
        }
    }
    acc
}

/// [`tile`] with AVX2 + FMA.
///
/// # Safety
///
/// The CPU must have AVX2 and FMA; `a` must be valid for reads at `p·stride + r` and `panels` at
/// `q·k·NR + p·NR + j` for every `p < k`, `r < R`, `q < P`, `j < NR`.
// indices, not iterators: the same (r, q) picks the accumulator, the vector and A's lane
#[allow(clippy::needless_range_loop)]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_avx2<const R: usize, const P: usize>(
    k: usize,
    a: *const f32,
    stride: usize,
    panels: *const f32,
    acc: &mut [[[f32; NR]; P]; R],
) {
    let mut lo = [[_mm256_setzero_ps(); P]; R];
    let mut hi = [[_mm256_setzero_ps(); P]; R];
    for p in 0..k {
        let a = a.add(p * stride);
        for q in 0..P {
            let b = panels.add(q * k * NR + p * NR);
            let (b_lo, b_hi) = (_mm256_loadu_ps(b), _mm256_loadu_ps(b.add(8)));
            for r in 0..R {
                let ar = _mm256_broadcast_ss(&*a.add(r));
                lo[r][q] = _mm256_fmadd_ps(ar, b_lo, lo[r][q]);
                hi[r][q] = _mm256_fmadd_ps(ar, b_hi, hi[r][q]);
            }
        }
    }
    for r in 0..R {
        for q in 0..P {
            _mm256_storeu_ps(acc[r][q].as_mut_ptr(), lo[r][q]);
            _mm256_storeu_ps(acc[r][q].as_mut_ptr().add(8), hi[r][q]);
        }
    }
}

/// [`tile`] with AVX-512F.
///
/// # Safety
///
/// The CPU must have AVX-512F; `a` must be valid for reads at `p·stride + r` and `panels` at
/// `q·k·NR + p·NR + j` for every `p < k`, `r < R`, `q < P`, `j < NR`.
// indices, not iterators: the same (r, q) picks the accumulator, the vector and A's lane
#[allow(clippy::needless_range_loop)]
#[target_feature(enable = "avx512f")]
unsafe fn tile_avx512<const R: usize, const P: usize>(
    k: usize,
    a: *const f32,
    stride: usize,
    panels: *const f32,
    acc: &mut [[[f32; NR]; P]; R],
) {
    let mut sums = [[_mm512_setzero_ps(); P]; R];
    for p in 0..k {
        let a = a.add(p * stride);
        for q in 0..P {
            let b = _mm512_loadu_ps(panels.add(q * k * NR + p * NR));
            for r in 0..R {
                let ar = _mm512_set1_ps(*a.add(r));
                sums[r][q] = _mm512_fmadd_ps(ar, b, sums[r][q]);
            }
        }
    }
    for r in 0..R {
        for q in 0..P {
            _mm512_storeu_ps(acc[r][q].as_mut_ptr(), sums[r][q]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One tile against its definition, the fused multiply-adds in order of `p`: the same bits.
    fn check<const R: usize, const P: usize>(isa: Isa, k: usize, a: &[f32], panels: &[f32]) {
        let stride = MAX_STRIDE;
        let got = tile::<R, P>(isa, k, a, stride, panels);
        for (r, row) in got.iter().enumerate() {
            for (q, panel) in row.iter().enumerate() {
                for (j, &v) in panel.iter().enumerate() {
                    let want = (0..k).fold(0.0f32, |s, p| {
                        a[p * stride + r].mul_add(panels[q * k * NR + p * NR + j], s)
                    });
                    assert_eq!(v, want, "{isa:?} {R}×{P}: [{r}][{q}][{j}]");
                }
            }
        }
    }

    /// Rows per block of `A` in the test: the most a tile reads.
    const MAX_STRIDE: usize = 8;

    /// Every tile shape the products use, on each instruction set this CPU has (the AVX2 tiles
    /// also on an AVX-512 machine), with an odd `k`.
    #[test]
    fn tiles_equal_their_definition_on_every_available_instruction_set() {
        let k = 37;
        let value = |v: usize, prime: usize| ((v * prime) % 1000) as f32 / 500.0 - 1.0;
        let a: Vec<f32> = (0..k * MAX_STRIDE).map(|v| value(v, 7919)).collect();
        let panels: Vec<f32> = (0..8 * k * NR).map(|v| value(v, 104_729)).collect();
        let isas = [Isa::Avx2, Isa::Avx512]
            .into_iter()
            .filter(|i| i.available());
        let mut tested = 0;
        for isa in isas {
            check::<1, 1>(isa, k, &a, &panels);
            check::<1, 4>(isa, k, &a, &panels);
            check::<1, 8>(isa, k, &a, &panels);
            check::<2, 1>(isa, k, &a, &panels);
            check::<2, 2>(isa, k, &a, &panels);
            check::<2, 4>(isa, k, &a, &panels);
            check::<3, 1>(isa, k, &a, &panels);
            check::<4, 1>(isa, k, &a, &panels);
            check::<5, 1>(isa, k, &a, &panels);
            check::<6, 1>(isa, k, &a, &panels);
            check::<7, 1>(isa, k, &a, &panels);
            check::<8, 1>(isa, k, &a, &panels);
            tested += 1;
        }
        assert_eq!(tested > 0, Isa::detect().is_some());
    }

    /// Operands too short for the tile are refused before the unsafe code reads them.
    #[test]
    fn short_operands_panic_before_any_unsafe_read() {
        let Some(isa) = Isa::detect() else {
            return; // no SIMD tile on this CPU: the products take the portable ones
        };
        let message = |f: fn(Isa)| {
            let e = std::panic::catch_unwind(|| f(isa)).unwrap_err();
            e.downcast::<String>().map(|m| *m).unwrap_or_default()
        };
        let short_a = message(|isa| {
            tile::<2, 1>(isa, 3, &[0.0; 17], 8, &[0.0; 3 * NR]);
        });
        assert_eq!(short_a, "3 steps of 8 values of A, 17 given");
        let short_panels = message(|isa| {
            tile::<1, 2>(isa, 3, &[0.0; 24], 8, &[0.0; 6 * NR - 1]);
        });
        assert_eq!(short_panels, "2 panels of 3 rows, 95 values");
    }
}
