//! Pairwise distances computed when needed, without an n x n matrix.
//!
//! Why: HDBSCAN* and the k-nearest-neighbour graph of the reduction need every pairwise
//! distance, and an n x n f64 matrix is 800 MB for a list of 10,000 items and 3.2 GB for
//! 20,000. Computing distances on the fly needs O(n) memory besides the points; the price is
//! computing some distances twice, so the arithmetic is made cheap here instead.
//!
//! Why blocks: the points are copied into blocks of [`LANES`] points stored dimension by
//! dimension, so one point is compared with a whole block at a time: [`LANES`] independent
//! sums the compiler keeps in SIMD registers. Each pair's sum is still taken over the
//! dimensions in order, with the same f64 operations as a plain loop over two vectors, so
//! every distance is bit-identical to the one the former matrix held (the clustering and its
//! tie-breaking depend on exact values).

/// Points per block: 8 f64 sums in flight hide the latency of the additions.
pub const LANES: usize = 8;

/// Dimensions between two checks of a cut-short rough distance (a check costs about as much
/// as a few dimensions).
const CHECK_EVERY: usize = 64;

/// The points in blocks of [`LANES`], dimension-major inside a block; the last block is padded
/// with zeros (distances to padding lanes are computed but meaningless).
pub struct Blocks {
    n: usize,
    dim: usize,
    data: Vec<f32>,
}

impl Blocks {
    /// Copies `points` (all of one dimension) into blocks.
    pub fn new(points: &[Vec<f32>]) -> Self {
        Self::from_rows(points.iter().map(Vec::as_slice), points.len())
    }

    /// Copies the points `ids` (in that order) into blocks: slot `s` holds `points[ids[s]]`.
    pub fn subset(points: &[Vec<f32>], ids: &[usize]) -> Self {
        Self::from_rows(ids.iter().map(|&i| points[i].as_slice()), ids.len())
    }

    fn from_rows<'a>(rows: impl Iterator<Item = &'a [f32]> + Clone, n: usize) -> Self {
        let dim = rows.clone().next().map_or(0, <[f32]>::len);
        let mut data = vec![0.0f32; n.div_ceil(LANES) * LANES * dim];
        for (j, p) in rows.enumerate() {
            let base = j / LANES * LANES * dim + j % LANES;
            for (d, &v) in p.iter().enumerate() {
                data[base + d * LANES] = v;
            }
        }
        Self { n, dim, data }
    }

    /// Dimension of the points.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Number of blocks; block `b` holds points `b * LANES ..`.
    pub fn blocks(&self) -> usize {
        self.n.div_ceil(LANES)
    }

    fn block(&self, b: usize) -> &[f32] {
        let size = LANES * self.dim;
        &self.data[b * size..(b + 1) * size]
    }

    /// Euclidean distances in f64 from `a` to the points of block `b`, as
    /// [`euclidean`]: per dimension `t = a - p` in f64, `sum += t * t`, then the square root.
    pub fn euclidean(&self, a: &[f32], b: usize) -> [f64; LANES] {
        let mut acc = [0.0f64; LANES];
        for (&x, lanes) in a.iter().zip(self.block(b).chunks_exact(LANES)) {
            let x = f64::from(x);
            for (s, &p) in acc.iter_mut().zip(lanes) {
                let t = x - f64::from(p);
                *s += t * t;
            }
        }
        acc.map(f64::sqrt)
    }

    /// Cosine distances `max(1 - a . p, 0)` of unit vectors from `a` to the points of block
    /// `b`, as [`cosine`]: each product in f32, summed in f64 in dimension order.
    pub fn cosine(&self, a: &[f32], b: usize) -> [f64; LANES] {
        let mut acc = [0.0f64; LANES];
        for (&x, lanes) in a.iter().zip(self.block(b).chunks_exact(LANES)) {
            for (s, &p) in acc.iter_mut().zip(lanes) {
                *s += f64::from(x * p);
            }
        }
        acc.map(|dot| (1.0 - dot).max(0.0))
    }

    /// Rough [`Blocks::euclidean`] in f32, about twice as fast (four lanes per SIMD operation
    /// instead of two, no conversions) and cut short: `None` as soon as every lane's partial
    /// sum of squares is above its threshold ([`Rough::threshold_sq`]; -inf for a lane that
    /// does not matter), since the remaining terms can only add (an f32 overflow proves
    /// nothing). Only used to skip pairs whose exact distance surely cannot matter, never as a
    /// result.
    pub fn euclidean_f32_unless_beyond(
        &self,
        a: &[f32],
        b: usize,
        thresholds: &[f64; LANES],
    ) -> Option<[f32; LANES]> {
        let mut acc = [0.0f32; LANES];
        let chunks = a.chunks(CHECK_EVERY).zip(self.block(b).chunks(CHECK_EVERY * LANES));
        for (xs, block) in chunks {
            for (&x, lanes) in xs.iter().zip(block.chunks_exact(LANES)) {
                for (s, &p) in acc.iter_mut().zip(lanes) {
                    let t = x - p;
                    *s += t * t;
                }
            }
            if acc.iter().zip(thresholds).all(|(&s, &t)| s.is_finite() && f64::from(s) > t) {
                return None;
            }
        }
        Some(acc.map(f32::sqrt))
    }

    /// Rough dot products in f32 for [`Rough::cosine_above`]: the same f32 products as
    /// [`Blocks::cosine`], summed in f32.
    pub fn dot_f32(&self, a: &[f32], b: usize) -> [f32; LANES] {
        let mut acc = [0.0f32; LANES];
        for (&x, lanes) in a.iter().zip(self.block(b).chunks_exact(LANES)) {
            for (s, &p) in acc.iter_mut().zip(lanes) {
                *s += x * p;
            }
        }
        acc
    }
}

/// How far a rough (f32) value may be from the exact (f64) one, and the two safe conclusions
/// drawn from a rough value.
///
/// Why the bound holds: summing `dim` terms in f32 is off by at most (dim - 1)·u times the sum
/// of the terms' magnitudes, u = 2⁻²⁴ (Higham, Accuracy and Stability of Numerical Algorithms,
/// 2nd ed., §4.2); rounding each difference and square adds 3u. For a squared distance the
/// terms are non-negative, so the relative error is below (dim + 2)·u, and at most half that
/// after the square root; for a dot product it is below (dim + 2)·u·|a|·|b| (Cauchy-Schwarz).
/// The f64 value's own error is 2²⁹ times smaller. `relative` is 4·(dim + 4)·u, well above
/// all of that; `absolute` covers f32 underflow (at most dim·2⁻¹⁴⁹ in a squared distance).
#[derive(Debug, Clone, Copy)]
pub struct Rough {
    relative: f64,
    absolute: f64,
}

impl Rough {
    /// Error bound for vectors of `dim` dimensions. Past about 40,000 dimensions the bound is
    /// too loose to help, and nothing is concluded from rough values.
    pub fn new(dim: usize) -> Self {
        let relative = 4.0 * (dim as f64 + 4.0) * 2f64.powi(-24);
        Self { relative: if relative < 0.01 { relative } else { f64::INFINITY }, absolute: 1e-18 }
    }

    /// A rough squared distance, or a rough partial sum of its squares, above this proves the
    /// exact distance above `bound` (>= 0): its square root would pass [`Rough::above`] (the
    /// squaring's rounding is far inside the bound's margin).
    pub fn threshold_sq(&self, bound: f64) -> f64 {
        let t = bound * (1.0 + self.relative) + self.absolute;
        t * t
    }

    /// True when the exact value of which `rough` is the f32 version is surely above `bound`
    /// (`bound` >= 0). A non-finite rough value (f32 overflow) proves nothing.
    pub fn above(&self, rough: f64, bound: f64) -> bool {
        rough.is_finite() && rough > bound * (1.0 + self.relative) + self.absolute
    }

    /// True when the exact value is surely below `bound` (`bound` >= 0).
    pub fn below(&self, rough: f64, bound: f64) -> bool {
        rough.is_finite() && rough < bound * (1.0 - self.relative) - self.absolute
    }

    /// True when the exact cosine distance [`Blocks::cosine`] is surely above `bound`, from
    /// the rough dot product ([`Blocks::dot_f32`]) of vectors whose norms multiply to
    /// `norms`. The dot product's error is relative to `norms`; the 1 covers rounding `1 - dot`.
    pub fn cosine_above(&self, rough_dot: f32, norms: f64, bound: f64) -> bool {
        let rough = (1.0 - f64::from(rough_dot)).max(0.0);
        rough_dot.is_finite() && rough - self.relative * (1.0 + norms) > bound
    }
}

/// Euclidean distance of two points, the reference for [`Blocks::euclidean`] (the order of
/// the points does not matter: `(a - b)²` and `(b - a)²` are the same f64).
pub fn euclidean(a: &[f32], b: &[f32]) -> f64 {
    let mut acc = 0.0f64;
    for (&x, &y) in a.iter().zip(b) {
        let t = f64::from(x) - f64::from(y);
        acc += t * t;
    }
    acc.sqrt()
}

/// Cosine distance of two unit vectors, the reference for [`Blocks::cosine`]. (Starting the
/// sum at +0.0 or -0.0 can only change the sign of a zero dot product, never `1 - dot`.)
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let mut dot = 0.0f64;
    for (&x, &y) in a.iter().zip(b) {
        dot += f64::from(x * y);
    }
    (1.0 - dot).max(0.0)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Deterministic pseudo-random points: `n` points of `dim` values in -1..1, or, with
    /// `grid`, small integers (many equal distances, to exercise tie-breaking).
    pub fn random_points(n: usize, dim: usize, seed: u64, grid: bool) -> Vec<Vec<f32>> {
        let mut state = seed;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 33) as f64 / (1u64 << 31) as f64) * 2.0 - 1.0
        };
        (0..n)
            .map(|_| {
                (0..dim)
                    .map(|_| if grid { (next() * 3.0).round() as f32 } else { next() as f32 })
                    .collect()
            })
            .collect()
    }

    /// A rough value never proves the exact one above or below itself, nor does a cut-short
    /// rough sum, across dimensions and scales (tiny values near f32 underflow, huge ones past
    /// f32 overflow); and rough values do settle comparisons 1% away.
    #[test]
    fn rough_conclusions_are_never_wrong() {
        let mut settled = 0;
        for (dim, scale) in [(1, 1.0), (5, 1.0), (384, 1.0), (1024, 1.0), (384, 1e-21), (7, 1e20)] {
            let mut points = random_points(40, dim, dim as u64 + 5, false);
            points.iter_mut().flatten().for_each(|v| *v *= scale);
            let blocks = Blocks::new(&points);
            let rough = Rough::new(dim);
            let norm = |p: &[f32]| euclidean(p, &vec![0.0; p.len()]);
            for (i, a) in points.iter().enumerate() {
                for b in 0..blocks.blocks() {
                    let full = blocks.euclidean_f32_unless_beyond(a, b, &[f64::INFINITY; LANES]);
                    let (near, dots) = (full.unwrap(), blocks.dot_f32(a, b));
                    for (j, p) in points.iter().enumerate().skip(b * LANES).take(LANES) {
                        let (e, c, lane) = (euclidean(a, p), cosine(a, p), j % LANES);
                        let near = f64::from(near[lane]);
                        assert!(!rough.above(near, e) && !rough.below(near, e), "{dim} {i} {j}");
                        let norms = norm(a) * norm(p);
                        assert!(!rough.cosine_above(dots[lane], norms, c), "{dim} {i} {j}");
                        let mut thresholds = [f64::NEG_INFINITY; LANES];
                        thresholds[lane] = rough.threshold_sq(e);
                        assert!(blocks.euclidean_f32_unless_beyond(a, b, &thresholds).is_some());
                        if scale == 1.0 && i != j {
                            assert!(rough.above(near, 0.99 * e) && rough.below(near, 1.01 * e));
                            thresholds[lane] = rough.threshold_sq(0.99 * e);
                            assert!(blocks
                                .euclidean_f32_unless_beyond(a, b, &thresholds)
                                .is_none());
                            settled += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(settled, 4 * 40 * 39);
    }

    #[test]
    fn block_distances_are_bit_identical_to_the_pairwise_loop() {
        for (n, dim) in [(1, 3), (7, 1), (8, 384), (19, 13), (33, 5)] {
            for grid in [false, true] {
                let points = random_points(n, dim, n as u64 * 31 + dim as u64, grid);
                let blocks = Blocks::new(&points);
                assert_eq!(blocks.len(), n);
                for a in &points {
                    for b in 0..blocks.blocks() {
                        let (e, c) = (blocks.euclidean(a, b), blocks.cosine(a, b));
                        for (l, p) in points.iter().enumerate().skip(b * LANES).take(LANES) {
                            let lane = l % LANES;
                            assert_eq!(e[lane].to_bits(), euclidean(a, p).to_bits());
                            assert_eq!(e[lane].to_bits(), euclidean(p, a).to_bits());
                            assert_eq!(c[lane].to_bits(), cosine(a, p).to_bits());
                        }
                    }
                }
            }
        }
    }
}
