//! NumPy's default random generator, bit for bit: `numpy.random.default_rng(seed)` (a
//! `SeedSequence` hashing the seed into a PCG64 state) and `Generator.integers(low, high)`
//! for ranges under 2^32 (Lemire's bounded method on buffered 32-bit halves). With it the
//! pageviews preset writes exactly the records the Flink peer's generator writes for the
//! same seed, so both engines read the same input.

const MULT_128: u128 = 0x2360_ED05_1FC6_5DA4_4385_DF64_9FCC_F645;

/// NumPy's `SeedSequence(seed).generate_state(words, uint64)` for a seed below 2^32.
fn seed_sequence_state(seed: u32, words: usize) -> Vec<u64> {
    const INIT_A: u32 = 0x43b0_d7e5;
    const MULT_A: u32 = 0x931e_8875;
    const INIT_B: u32 = 0x8b51_f9dd;
    const MULT_B: u32 = 0x58f3_8ded;
    const MIX_MULT_L: u32 = 0xca01_f9dd;
    const MIX_MULT_R: u32 = 0x4973_f715;
    const POOL: usize = 4;
    let mut hash_const = INIT_A;
    let mut hashmix = |value: u32| {
        let mut v = value ^ hash_const;
        hash_const = hash_const.wrapping_mul(MULT_A);
        v = v.wrapping_mul(hash_const);
        v ^ (v >> 16)
    };
    let mix = |x: u32, y: u32| {
        let r = MIX_MULT_L.wrapping_mul(x).wrapping_sub(MIX_MULT_R.wrapping_mul(y));
        r ^ (r >> 16)
    };
    let entropy = [seed];
    let mut pool = [0u32; POOL];
    for (i, slot) in pool.iter_mut().enumerate() {
        *slot = hashmix(entropy.get(i).copied().unwrap_or(0));
    }
    for src in 0..POOL {
        for dst in 0..POOL {
            if src != dst {
                let h = hashmix(pool[src]);
                pool[dst] = mix(pool[dst], h);
            }
        }
    }
    let mut hash_const = INIT_B;
    let halves: Vec<u32> = (0..words * 2)
        .map(|i| {
            let mut v = pool[i % POOL] ^ hash_const;
            hash_const = hash_const.wrapping_mul(MULT_B);
            v = v.wrapping_mul(hash_const);
            v ^ (v >> 16)
        })
        .collect();
    halves.chunks(2).map(|p| u64::from(p[0]) | (u64::from(p[1]) << 32)).collect()
}

/// PCG64 (XSL-RR, 128-bit state) with NumPy's 32-bit buffering.
#[derive(Debug, Clone)]
pub struct NumpyRng {
    state: u128,
    inc: u128,
    /// The high half of the last 64-bit output, when a 32-bit draw left it.
    buffered: Option<u32>,
}

impl NumpyRng {
    /// `numpy.random.default_rng(seed)`.
    pub fn new(seed: u32) -> NumpyRng {
        let s = seed_sequence_state(seed, 4);
        let init_state = (u128::from(s[0]) << 64) | u128::from(s[1]);
        let init_seq = (u128::from(s[2]) << 64) | u128::from(s[3]);
        let mut rng = NumpyRng { state: 0, inc: (init_seq << 1) | 1, buffered: None };
        rng.step();
        rng.state = rng.state.wrapping_add(init_state);
        rng.step();
        rng
    }

    fn step(&mut self) {
        self.state = self.state.wrapping_mul(MULT_128).wrapping_add(self.inc);
    }

    pub fn next_u64(&mut self) -> u64 {
        self.step();
        let rot = (self.state >> 122) as u32;
        (((self.state >> 64) as u64) ^ (self.state as u64)).rotate_right(rot)
    }

    pub fn next_u32(&mut self) -> u32 {
        if let Some(high) = self.buffered.take() {
            return high;
        }
        let next = self.next_u64();
        self.buffered = Some((next >> 32) as u32);
        next as u32
    }

    /// `Generator.integers(0, n)` for `1 <= n <= 2^32 - 1`: uniform in `0..n`.
    pub fn below(&mut self, n: u32) -> u32 {
        let max = n.saturating_sub(1);
        if max == 0 {
            return 0;
        }
        let excl = u64::from(n);
        let mut m = u64::from(self.next_u32()) * excl;
        let mut leftover = m as u32;
        if u64::from(leftover) < excl {
            let threshold = (u32::MAX - max) % n;
            while leftover < threshold {
                m = u64::from(self.next_u32()) * excl;
                leftover = m as u32;
            }
        }
        (m >> 32) as u32
    }

    /// Uniform in `0..n` for any `n` (ranges past 2^32 by a modulo of a 64-bit draw).
    pub fn below_u64(&mut self, n: u64) -> u64 {
        match u32::try_from(n) {
            Ok(n) => u64::from(self.below(n)),
            Err(_) => self.next_u64() % n,
        }
    }

    /// A double uniform in [0, 1) (NumPy's `random()`: the top 53 bits).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Known answers printed by NumPy 2 (`np.random.default_rng(42)`).
    #[test]
    fn seeding_matches_numpy_seed_sequence() {
        assert_eq!(seed_sequence_state(42, 4), vec![11465652750463011511, 15382171918060459190, 9018504550953525431, 3703499796004394495]);
        let rng = NumpyRng::new(42);
        assert_eq!(rng.state, 0xcea44f6798798f2aacbc7c9d68860ac8);
        assert_eq!(rng.inc, 0xfa505436c9a8416e66caf2e28d25abff);
    }

    #[test]
    fn raw_outputs_match_numpy_pcg64() {
        let mut rng = NumpyRng::new(42);
        assert_eq!([rng.next_u64(), rng.next_u64(), rng.next_u64()], [0xc621fbcd16d92688, 0x705a5661a791ffc1, 0xdbcd12c26eda1624]);
    }

    #[test]
    fn bounded_integers_match_numpy_generator_integers() {
        let mut rng = NumpyRng::new(42);
        let users: Vec<u32> = (0..5).map(|_| rng.below(100_000)).collect();
        let pages: Vec<u32> = (0..5).map(|_| rng.below(5)).collect();
        let dwell: Vec<u32> = (0..5).map(|_| rng.below(5001)).collect();
        assert_eq!(users, [8925, 77395, 65457, 43887, 43301]);
        assert_eq!(pages, [4, 0, 3, 1, 0]);
        assert_eq!(dwell, [2632, 4879, 3679, 3806, 3588]);
    }
}
