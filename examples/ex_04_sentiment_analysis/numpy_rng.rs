//! NumPy's legacy random permutation (`numpy.random.RandomState(seed).permutation(n)`), bit for
//! bit, so that the example splits the IMDB training reviews exactly as the PyTorch reference
//! does.
//!
//! `RandomState` is the Mersenne Twister MT19937 seeded with `init_genrand(seed)` (NumPy's legacy
//! seeding of an integer seed); `permutation(n)` shuffles `0..n` with a Fisher–Yates pass from the
//! end, each index drawn by rejection sampling on masked 32-bit outputs.

/// Number of 32-bit words in the MT19937 state.
const STATE_LEN: usize = 624;
/// The twist's offset `m`.
const SHIFT: usize = 397;
/// The twist matrix's constant `a`.
const MATRIX_A: u32 = 0x9908_b0df;
/// The most significant bit of a word.
const UPPER_MASK: u32 = 0x8000_0000;
/// The 31 least significant bits of a word.
const LOWER_MASK: u32 = 0x7fff_ffff;

/// The 32-bit Mersenne Twister MT19937 (Matsumoto & Nishimura, 1998), as NumPy's `RandomState`
/// uses it.
pub struct Mt19937 {
    /// The 624 words of state.
    state: [u32; STATE_LEN],
    /// Index of the next word to temper; `STATE_LEN` means the state must be regenerated.
    position: usize,
}

impl Mt19937 {
    /// The generator seeded by the reference `init_genrand(seed)`, which is what
    /// `numpy.random.RandomState(seed)` does for an integer seed.
    pub fn new(seed: u32) -> Self {
        let mut state = [0u32; STATE_LEN];
        state[0] = seed;
        for i in 1..STATE_LEN {
            let previous = state[i - 1];
            state[i] = 1_812_433_253u32
                .wrapping_mul(previous ^ (previous >> 30))
                .wrapping_add(i as u32);
        }
        Self {
            state,
            position: STATE_LEN,
        }
    }

    /// Regenerates the 624 words of state (the "twist").
    fn twist(&mut self) {
        for i in 0..STATE_LEN {
            let y = (self.state[i] & UPPER_MASK) | (self.state[(i + 1) % STATE_LEN] & LOWER_MASK);
            let mut next = self.state[(i + SHIFT) % STATE_LEN] ^ (y >> 1);
            if y & 1 == 1 {
                next ^= MATRIX_A;
            }
            self.state[i] = next;
        }
        self.position = 0;
    }

    /// The next 32-bit output (`genrand_int32`).
    pub fn next_u32(&mut self) -> u32 {
        if self.position >= STATE_LEN {
            self.twist();
        }
        let mut y = self.state[self.position];
        self.position += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    /// A uniform integer in `0..=max` by NumPy's `random_interval`: draw 32-bit outputs masked
    /// to the smallest `2^k - 1 >= max` until one is at most `max`. Returns 0 for `max == 0`
    /// without drawing.
    fn interval(&mut self, max: u32) -> u32 {
        if max == 0 {
            return 0;
        }
        let mask = u32::MAX >> max.leading_zeros();
        loop {
            let value = self.next_u32() & mask;
            if value <= max {
                return value;
            }
        }
    }
}

/// `numpy.random.RandomState(seed).permutation(n)`: `0..n` shuffled by NumPy's legacy
/// Fisher–Yates pass (for `i` from `n - 1` down to 1, swap `i` with `random_interval(i)`).
///
/// # Panics
///
/// If `n` exceeds `u32::MAX + 1`, where NumPy would switch to 64-bit draws (far beyond any data
/// set here).
pub fn legacy_permutation(seed: u32, n: usize) -> Vec<usize> {
    assert!(
        n as u64 <= u64::from(u32::MAX) + 1,
        "legacy_permutation supports at most 2^32 elements, got {n}"
    );
    let mut rng = Mt19937::new(seed);
    let mut values: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.interval(i as u32) as usize;
        values.swap(i, j);
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mt19937_matches_the_reference_outputs() {
        // the reference implementation's default seed; its first output is the well-known value
        let mut rng = Mt19937::new(5489);
        assert_eq!(rng.next_u32(), 3_499_211_612);
        assert_eq!(rng.next_u32(), 581_869_302);
        // the 10,000th output of the default-seeded generator (C++ std::mt19937's check)
        let mut rng = Mt19937::new(5489);
        let last = (0..10_000).map(|_| rng.next_u32()).last();
        assert_eq!(last, Some(4_123_659_995));
    }

    #[test]
    fn small_permutations_match_numpy() {
        // numpy.random.RandomState(42).permutation(10) and RandomState(0).permutation(5)
        assert_eq!(
            legacy_permutation(42, 10),
            vec![8, 1, 5, 0, 7, 2, 9, 4, 3, 6]
        );
        assert_eq!(legacy_permutation(0, 5), vec![2, 0, 1, 3, 4]);
    }

    #[test]
    fn degenerate_lengths() {
        assert!(legacy_permutation(42, 0).is_empty());
        assert_eq!(legacy_permutation(42, 1), vec![0]);
    }

    #[test]
    fn imdb_split_permutation_matches_numpy() {
        // numpy.random.RandomState(42).permutation(25000): the course preset's split
        let perm = legacy_permutation(42, 25_000);
        assert_eq!(perm.len(), 25_000);
        assert_eq!(
            perm[..8],
            [6868, 24016, 9668, 13640, 14018, 7488, 5804, 12909]
        );
        assert_eq!(perm[perm.len() - 4..], [5390, 860, 15795, 23654]);
        let weighted: u64 = perm.iter().enumerate().map(|(i, &p)| (i * p) as u64).sum();
        assert_eq!(weighted, 3_914_946_534_567);
        let mut sorted = perm.clone();
        sorted.sort_unstable();
        assert!(sorted.iter().enumerate().all(|(i, &p)| i == p));
    }
}
