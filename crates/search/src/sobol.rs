//! Scrambled Sobol points: the quasi-random sequence behind `method: sobol` and the initial
//! design of `bayes` and `tpe`.
//!
//! Point `i` of the unscrambled sequence in dimension `j` is the XOR of the direction numbers
//! `v_{j,b}` over the set bits `b` of `i`, read as a binary fraction. Dimension 0 uses
//! `v_b = 2^{31−b}` (the van der Corput sequence); dimension `j ≥ 1` uses the `j`-th
//! primitive polynomial over GF(2) (ordered by degree, then by its middle coefficients, the
//! usual order) and the recurrence
//!
//! ```text
//! m_k = 2 a_1 m_{k−1} ⊕ 2² a_2 m_{k−2} ⊕ … ⊕ 2^{s−1} a_{s−1} m_{k−s+1} ⊕ 2^s m_{k−s} ⊕ m_{k−s}
//! ```
//!
//! from `s` odd initial values `m_1..m_s` (`m_k < 2^k`), `v_k = m_k · 2^{32−k}`. The first
//! twenty dimensions use the initial values published by Joe and Kuo (2008); later ones use
//! odd values from a fixed hash (still a valid Sobol sequence, with somewhat weaker
//! two-dimensional projections, which the scrambling hides in practice).
//!
//! Scrambling is Owen's nested uniform scrambling in the hash-based form of Burley (2020):
//! bit-reverse, apply a Laine–Karras permutation seeded per dimension (each output bit
//! depends only on itself and lower input bits, which after reversal means: each digit is
//! permuted depending only on the digits above it), bit-reverse back. The result keeps the
//! sequence's stratification (every power-of-two prefix is a (t, m, s)-net) while being an
//! unbiased random point set. A half-ulp offset keeps coordinates strictly inside `(0, 1)`.

/// Initial direction numbers `m_1..m_s` of dimensions 1 to 20 (Joe and Kuo, 2008).
const JOE_KUO: &[&[u32]] = &[
    &[1],
    &[1, 3],
    &[1, 3, 1],
    &[1, 1, 1],
    &[1, 1, 3, 3],
    &[1, 3, 5, 13],
    &[1, 1, 5, 5, 17],
    &[1, 1, 5, 5, 5],
    &[1, 1, 7, 11, 19],
    &[1, 1, 5, 1, 1],
    &[1, 1, 1, 3, 11],
    &[1, 3, 5, 5, 31],
    &[1, 3, 3, 9, 7, 49],
    &[1, 1, 1, 15, 21, 21],
    &[1, 3, 1, 13, 27, 49],
    &[1, 1, 1, 15, 7, 5],
    &[1, 3, 1, 15, 13, 25],
    &[1, 1, 5, 5, 19, 61],
    &[1, 3, 7, 11, 23, 15, 103],
    &[1, 3, 7, 13, 13, 15, 69],
];

/// Bits of precision.
const BITS: usize = 32;

/// A scrambled Sobol sequence in a fixed number of dimensions.
#[derive(Debug, Clone)]
pub struct Sobol {
    /// Direction numbers, `BITS` per dimension.
    directions: Vec<[u32; BITS]>,
    /// Per-dimension scrambling seeds.
    seeds: Vec<u32>,
}

/// Whether the polynomial with bit pattern `p` (degree `deg`, bit `deg` and bit 0 set) is
/// primitive over GF(2): `x` has multiplicative order exactly `2^deg − 1` modulo `p`.
fn is_primitive(p: u64, deg: u32) -> bool {
    let order = (1u64 << deg) - 1;
    let mulmod = |a: u64, b: u64| -> u64 {
        let mut r = 0u64;
        let mut a = a;
        let mut b = b;
        while b != 0 {
            if b & 1 == 1 {
                r ^= a;
            }
            b >>= 1;
            a <<= 1;
            if a >> deg & 1 == 1 {
                a ^= p;
            }
        }
        r
    };
    let powmod = |mut e: u64| -> u64 {
        let mut base = 2u64; // x
        if deg == 1 {
            base = 2 ^ p; // x mod (x + 1) = 1
        }
        let mut r = 1u64;
        while e > 0 {
            if e & 1 == 1 {
                r = mulmod(r, base);
            }
            base = mulmod(base, base);
            e >>= 1;
        }
        r
    };
    if powmod(order) != 1 {
        return false;
    }
    // The order must not be a proper divisor of 2^deg − 1.
    let mut n = order;
    let mut factors = Vec::new();
    let mut f = 2;
    while f * f <= n {
        if n % f == 0 {
            factors.push(f);
            while n % f == 0 {
                n /= f;
            }
        }
        f += 1;
    }
    if n > 1 {
        factors.push(n);
    }
    factors.iter().all(|&q| powmod(order / q) != 1)
}

/// The first `count` primitive polynomials of degree ≥ 1, as (degree, middle coefficients
/// `a`): bit `k−1` of `a` is the coefficient of `x^{deg−k}` for `k = 1..deg−1`.
pub(crate) fn primitive_polynomials(count: usize) -> Vec<(u32, u32)> {
    let mut out = Vec::with_capacity(count);
    let mut deg = 1;
    while out.len() < count && deg < 31 {
        for a in 0..(1u32 << (deg - 1)) {
            if out.len() >= count {
                break;
            }
            let p = (1u64 << deg) | (u64::from(a) << 1) | 1;
            if is_primitive(p, deg) {
                out.push((deg, a));
            }
        }
        deg += 1;
    }
    out
}

/// SplitMix64 step, for fixed pseudo-random constants.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The Laine–Karras permutation (constants from Burley 2020): a bijection on 32-bit words
/// in which every output bit depends only on the input bits at or below it.
fn laine_karras(mut x: u32, seed: u32) -> u32 {
    x = x.wrapping_add(seed);
    x ^= x.wrapping_mul(0x6c50_b47c);
    x ^= x.wrapping_mul(0xb82f_1e52);
    x ^= x.wrapping_mul(0xc7af_e638);
    x ^= x.wrapping_mul(0x8d22_f6e6);
    x
}

/// Owen scrambling of a 32-bit binary fraction.
fn owen(x: u32, seed: u32) -> u32 {
    laine_karras(x.reverse_bits(), seed).reverse_bits()
}

impl Sobol {
    /// A sequence in `dims` dimensions, scrambled from `seed` (seed `None`: unscrambled).
    pub fn new(dims: usize, seed: Option<u64>) -> Self {
        let polys = primitive_polynomials(dims.saturating_sub(1));
        let mut directions = Vec::with_capacity(dims);
        for j in 0..dims {
            let mut v = [0u32; BITS];
            if j == 0 {
                for (b, slot) in v.iter_mut().enumerate() {
                    *slot = 1u32 << (31 - b);
                }
            } else {
                let (deg, a) = polys[j - 1];
                let s = deg as usize;
                let mut m = vec![0u64; BITS + 1];
                #[allow(clippy::needless_range_loop)]
                for k in 1..=s.min(BITS) {
                    let init = JOE_KUO
                        .get(j - 1)
                        .and_then(|row| row.get(k - 1))
                        .map(|&x| u64::from(x))
                        .unwrap_or_else(|| mix((j as u64) << 8 | k as u64) % (1u64 << k));
                    // m_k must be odd and below 2^k.
                    m[k] = (init | 1) % (1u64 << k);
                }
                for k in (s + 1)..=BITS {
                    let mut x = m[k - s] ^ (m[k - s] << s);
                    for i in 1..s {
                        if (a >> (s - 1 - i)) & 1 == 1 {
                            x ^= m[k - i] << i;
                        }
                    }
                    m[k] = x;
                }
                for k in 1..=BITS {
                    v[k - 1] = (m[k] << (BITS - k)) as u32;
                }
            }
            directions.push(v);
        }
        let seeds = (0..dims)
            .map(|j| seed.map_or(0, |s| mix(s ^ mix(j as u64)) as u32))
            .collect();
        let mut sobol = Sobol { directions, seeds };
        if seed.is_none() {
            sobol.seeds.clear();
        }
        sobol
    }

    /// The number of dimensions.
    pub fn dims(&self) -> usize {
        self.directions.len()
    }

    /// Point `index` of the sequence, coordinates in `(0, 1)`.
    pub fn point(&self, index: u64) -> Vec<f64> {
        // Indices beyond 2^32 wrap (the sequence has 2^32 distinct points at this precision).
        let i = index as u32;
        self.directions
            .iter()
            .enumerate()
            .map(|(j, v)| {
                let mut x = 0u32;
                let mut bits = i;
                let mut b = 0;
                while bits != 0 {
                    if bits & 1 == 1 {
                        x ^= v[b];
                    }
                    bits >>= 1;
                    b += 1;
                }
                if let Some(&seed) = self.seeds.get(j) {
                    x = owen(x, seed);
                }
                (f64::from(x) + 0.5) / 4_294_967_296.0
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitive_polynomials_match_the_known_list() {
        let polys = primitive_polynomials(20);
        let expected: Vec<(u32, u32)> = vec![
            (1, 0),
            (2, 1),
            (3, 1),
            (3, 2),
            (4, 1),
            (4, 4),
            (5, 2),
            (5, 4),
            (5, 7),
            (5, 11),
            (5, 13),
            (5, 14),
            (6, 1),
            (6, 13),
            (6, 16),
            (6, 19),
            (6, 22),
            (6, 25),
            (7, 1),
            (7, 4),
        ];
        assert_eq!(polys, expected);
        // 18 primitive polynomials of degree 7, 16 of degree 8.
        let many = primitive_polynomials(60);
        assert_eq!(many.iter().filter(|p| p.0 == 7).count(), 18);
        assert_eq!(many.iter().filter(|p| p.0 == 8).count(), 16);
    }

    #[test]
    fn unscrambled_prefix_is_the_textbook_sequence() {
        let s = Sobol::new(3, None);
        let pts: Vec<Vec<f64>> = (0..4).map(|i| s.point(i)).collect();
        let round = |x: f64| (x * 8.0).floor() / 8.0;
        assert_eq!(
            pts.iter().map(|p| round(p[0])).collect::<Vec<_>>(),
            [0.0, 0.5, 0.25, 0.75]
        );
        assert_eq!(
            pts.iter().map(|p| round(p[1])).collect::<Vec<_>>(),
            [0.0, 0.5, 0.75, 0.25]
        );
    }

    /// Every power-of-two prefix of 2^k points puts exactly one point in each of the 2^k
    /// elementary intervals of each coordinate, scrambled or not.
    #[test]
    fn prefixes_stratify_each_coordinate() {
        for seed in [None, Some(7), Some(12345)] {
            let s = Sobol::new(25, seed);
            let n = 64;
            let pts: Vec<Vec<f64>> = (0..n).map(|i| s.point(i)).collect();
            for j in 0..25 {
                let mut cells: Vec<usize> =
                    pts.iter().map(|p| (p[j] * n as f64) as usize).collect();
                cells.sort_unstable();
                assert_eq!(cells, (0..n as usize).collect::<Vec<_>>(), "dim {j}");
                assert!(pts.iter().all(|p| p[j] > 0.0 && p[j] < 1.0));
            }
        }
    }

    #[test]
    fn two_dimensional_projections_are_nets() {
        // (0, m, 2)-net property of the first two dimensions: 16 points, one in each
        // 4×4 cell.
        let s = Sobol::new(2, Some(3));
        let mut cells: Vec<(usize, usize)> = (0..16)
            .map(|i| {
                let p = s.point(i);
                ((p[0] * 4.0) as usize, (p[1] * 4.0) as usize)
            })
            .collect();
        cells.sort_unstable();
        cells.dedup();
        assert_eq!(cells.len(), 16);
    }
}
