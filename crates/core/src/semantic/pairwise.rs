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
        let n = points.len();
        let dim = points.first().map_or(0, Vec::len);
        let mut data = vec![0.0f32; n.div_ceil(LANES) * LANES * dim];
        for (j, p) in points.iter().enumerate() {
            let (block, lane) = (j / LANES, j % LANES);
            let base = block * LANES * dim;
            for (d, &v) in p.iter().enumerate() {
                data[base + d * LANES + lane] = v;
            }
        }
        Self { n, dim, data }
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
