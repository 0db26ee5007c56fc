//! [`Mode`]: training or evaluation, passed to every forward pass.

/// Whether a forward pass trains (dropout active, with the masks drawn from `seed`) or
/// evaluates (dropout off), PyTorch's `module.train()` / `module.eval()` passed as an argument
/// instead of kept in the layer: nothing in a layer changes during a forward pass, and a
/// training step is a function of its inputs, the parameters and the seed alone.
///
/// A [`Chain`](crate::Chain) hands each of its layers a seed of its own
/// ([`Mode::for_layer`]), so two dropout layers of one model never draw the same mask.
///
/// # Examples
///
/// ```
/// use recurrent::Mode;
///
/// let step = 17;
/// let mode = Mode::Train { seed: step };
/// assert!(mode.is_training());
/// assert_ne!(mode.for_layer(0), mode.for_layer(1));
/// assert_eq!(Mode::Eval.for_layer(3), Mode::Eval);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Training: dropout drops, with its masks drawn from `seed` and nothing else. Give each
    /// training step a seed of its own (the step number, for example).
    Train {
        /// The seed of every random draw of the pass.
        seed: u64,
    },
    /// Evaluation: dropout passes its input through unchanged.
    Eval,
}

impl Mode {
    /// Whether this is [`Mode::Train`].
    pub fn is_training(self) -> bool {
        matches!(self, Mode::Train { .. })
    }

    /// The seed of a training pass; `None` in evaluation.
    pub fn seed(self) -> Option<u64> {
        match self {
            Mode::Train { seed } => Some(seed),
            Mode::Eval => None,
        }
    }

    /// The mode of part `index` of a composite layer: the same mode with a seed derived from
    /// this one and `index` (SplitMix64 of both), so the parts draw independent masks.
    #[must_use]
    pub fn for_layer(self, index: usize) -> Mode {
        match self {
            Mode::Train { seed } => Mode::Train {
                seed: split_mix(seed ^ split_mix(index as u64 + 1)),
            },
            Mode::Eval => Mode::Eval,
        }
    }
}

/// SplitMix64's output function: a bijection of `u64` that scatters nearby inputs.
fn split_mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_seeds_differ_from_each_other_and_from_the_parent() {
        let mode = Mode::Train { seed: 0 };
        let seeds: Vec<u64> = (0..100)
            .map(|k| mode.for_layer(k).seed().unwrap())
            .collect();
        let mut unique = seeds.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), seeds.len());
        assert!(!seeds.contains(&0));
        assert_eq!(mode.for_layer(4), mode.for_layer(4));
        assert_ne!(
            Mode::Train { seed: 1 }.for_layer(0),
            Mode::Train { seed: 0 }.for_layer(0)
        );
    }
}
