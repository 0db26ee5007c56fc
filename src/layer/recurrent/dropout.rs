//! Variational dropout (Gal & Ghahramani, 2016) inside [`Recurrent`]: one mask per sequence on
//! the input and one on the recurrent state, the same at every time step, drawn per sample so
//! that a sample's masks depend only on the seed and its place in the batch.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::rows::Packing;
#[cfg(doc)]
use super::Recurrent;
use crate::error::Result;
use crate::float::Float;
use crate::mode::Mode;
use crate::nn::check_probability;

/// The dropout probabilities of a [`Recurrent`] layer's variational dropout: `input` on `x_t`,
/// `recurrent` on `h_{t−1}` as each step reads it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct VariationalDropout {
    pub(crate) input: f64,
    pub(crate) recurrent: f64,
}

impl VariationalDropout {
    /// Checks both probabilities: each in `[0, 1)`.
    pub(crate) fn new(input: f64, recurrent: f64) -> Result<Self> {
        check_probability("variational input dropout", input)?;
        check_probability("variational recurrent dropout", recurrent)?;
        Ok(VariationalDropout { input, recurrent })
    }

    /// Whether a forward pass in `mode` drops anything.
    pub(crate) fn active(&self, mode: Mode) -> bool {
        mode.is_training() && (self.input > 0.0 || self.recurrent > 0.0)
    }

    /// The masks of a call in `mode` on samples `offset..offset + batch` of the whole batch,
    /// in the packed order of `packing`; `None` when the pass drops nothing.
    pub(crate) fn masks<T: Float>(
        &self,
        mode: Mode,
        offset: usize,
        packing: &Packing,
        batch: usize,
        (input_size, h_out): (usize, usize),
    ) -> Option<Masks<T>> {
        if !self.active(mode) {
            return None;
        }
        let width = |p: f64, n: usize| if p > 0.0 { n } else { 0 };
        let (wi, wh) = (width(self.input, input_size), width(self.recurrent, h_out));
        let mut masks = Masks {
            input: vec![T::zero(); batch * wi],
            recurrent: vec![T::zero(); batch * wh],
            input_size: wi,
            h_out: wh,
        };
        for j in 0..batch {
            // the sample's own generator: its masks do not depend on the batch around it
            let sample = offset + packing.sample(j);
            let seed = mode.for_layer(sample).seed().expect("a training mode");
            let rng = &mut StdRng::seed_from_u64(seed);
            draw(self.input, &mut masks.input[j * wi..][..wi], rng);
            draw(self.recurrent, &mut masks.recurrent[j * wh..][..wh], rng);
        }
        Some(masks)
    }
}

/// Fills `mask` with `0` (probability `p`) or `1/(1 − p)`, one `f64` draw per entry.
fn draw<T: Float>(p: f64, mask: &mut [T], rng: &mut StdRng) {
    let keep = T::from_f64(1.0 / (1.0 - p));
    for m in mask {
        *m = if rng.random::<f64>() < p {
            T::zero()
        } else {
            keep
        };
    }
}

/// The masks of one call, one row per sample in packed order: `input` `(B, I)` and `recurrent`
/// `(B, H_out)`, each empty when its probability is 0.
#[derive(Debug, Clone)]
pub(crate) struct Masks<T> {
    input: Vec<T>,
    recurrent: Vec<T>,
    input_size: usize,
    h_out: usize,
}

impl<T: Float> Masks<T> {
    /// Multiplies rows of `I` values (`T·B` of them, step after step, `B` samples a step in
    /// packed order) by the input mask: the input in forward, its gradient in backward.
    pub(crate) fn apply_input(&self, rows: &mut [T]) {
        apply(&self.input, self.input_size, rows, self.input_size);
    }

    /// Multiplies the `h` columns (the first `H_out` of each row of `width`) of the first
    /// `rows.len() / width` packed state rows by the recurrent mask.
    pub(crate) fn apply_recurrent(&self, rows: &mut [T], width: usize) {
        apply(&self.recurrent, self.h_out, rows, width);
    }

    /// Whether the recurrent state is dropped.
    pub(crate) fn drops_state(&self) -> bool {
        self.h_out > 0
    }
}

/// Multiplies the first `cols` values of each row (`stride` apart) by the mask row of its
/// sample, the mask rows repeating every `mask.len() / cols` rows (one per sample).
fn apply<T: Float>(mask: &[T], cols: usize, rows: &mut [T], stride: usize) {
    if cols == 0 || mask.is_empty() {
        return;
    }
    let samples = mask.chunks_exact(cols).cycle();
    for (row, m) in rows.chunks_mut(stride).zip(samples) {
        row[..cols]
            .iter_mut()
            .zip(m)
            .for_each(|(v, &m)| *v = *v * m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_are_per_sample_and_scaled() {
        let dropout = VariationalDropout::new(0.5, 0.25).unwrap();
        let packing = Packing::new(Some(&[2, 3]), 3, 2).unwrap();
        let mode = Mode::Train { seed: 9 };
        let masks = dropout
            .masks::<f64>(mode, 0, &packing, 2, (40, 30))
            .unwrap();
        assert!(masks.input.iter().all(|&m| m == 0.0 || m == 2.0));
        assert!(masks.recurrent.iter().all(|&m| m == 0.0 || m == 4.0 / 3.0));
        let dropped = masks.input.iter().filter(|&&m| m == 0.0).count();
        assert!((20..60).contains(&dropped), "{dropped} of 80");
        // packed order puts the longer second sample first; alone, at offset 1, it draws the
        // same masks
        let alone = Packing::new(Some(&[3]), 3, 1).unwrap();
        let second = dropout.masks::<f64>(mode, 1, &alone, 1, (40, 30)).unwrap();
        assert_eq!(second.input, masks.input[..40]);
        assert_eq!(second.recurrent, masks.recurrent[..30]);
        assert_ne!(masks.input[..40], masks.input[40..]);
        assert!(dropout
            .masks::<f64>(Mode::Eval, 0, &packing, 2, (4, 3))
            .is_none());
        assert!(VariationalDropout::new(1.0, 0.0).is_err());
        assert!(VariationalDropout::new(0.0, -0.1).is_err());
    }

    #[test]
    fn rows_take_their_sample_mask() {
        let masks = Masks {
            input: vec![1.0, 0.0, 0.0, 2.0],
            recurrent: vec![3.0, 0.0],
            input_size: 2,
            h_out: 1,
        };
        // two steps of two samples
        let mut x = vec![1.0; 8];
        masks.apply_input(&mut x);
        assert_eq!(x, [1.0, 0.0, 0.0, 2.0, 1.0, 0.0, 0.0, 2.0]);
        // state rows of width 2: only the h column
        let mut s = vec![1.0; 4];
        masks.apply_recurrent(&mut s, 2);
        assert_eq!(s, [3.0, 1.0, 0.0, 1.0]);
    }
}
