//! The order numpy's `argsort` gives to *equal* values, so HDBSCAN* sees tied MST edges in the
//! same order as the Python reference.
//!
//! Why this exists: with `min_samples = 2` many mutual-reachability edges share a weight (the
//! same core distance), and the order of tied edges decides which points join which cluster at
//! that density. The Python `hdbscan` package sorts MST edges with `np.argsort`, which on x86-64
//! (numpy >= 2) runs Intel's x86-simd-sort: arrays of up to 256 values are sorted by a fixed
//! bitonic network over 4-lane registers (AVX2), padded with +inf. A compare-exchange in that
//! network swaps only when the second key is strictly smaller, so the fate of ties is decided by
//! the network's wiring, not by input order. This module replays that network on scalars
//! (values identical, only the order of ties matters). Measured against the reference data,
//! this reproduces every clustering in `glosh_reference.json`, where a stable sort gets 10 of
//! 32 wrong (the AVX-512 wiring gives the same results on that data).
//!
//! Longer arrays are quicksorted around SIMD pivots in numpy; there a stable sort is used
//! (the result is still deterministic, only Python's tie order is not replayed).

/// Lanes per register of the replayed network (AVX2: four 64-bit lanes).
const LANES: usize = 4;
/// numpy sorts arrays up to this length with the network alone.
const NETWORK_MAX: usize = 256;

/// Indices that sort `values` ascending, ties ordered as numpy's argsort orders them.
pub fn argsort_like_numpy(values: &[f64]) -> Vec<usize> {
    if values.len() > NETWORK_MAX {
        let mut order: Vec<usize> = (0..values.len()).collect();
        order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
        return order;
    }
    Network::load(values).sorted()
}

/// The keys and original positions in register layout (`regs * LANES` slots).
struct Network {
    keys: Vec<f64>,
    index: Vec<usize>,
    regs: usize,
    len: usize,
}

impl Network {
    /// Fewest registers (a power of two) that hold the values; the rest is +inf padding.
    fn load(values: &[f64]) -> Self {
        let len = values.len();
        let mut regs = NETWORK_MAX / LANES;
        while regs > 1 && len * 2 <= regs * LANES {
            regs /= 2;
        }
        let slots = regs * LANES;
        let keys = (0..slots).map(|i| values.get(i).copied().unwrap_or(f64::INFINITY)).collect();
        let index = (0..slots).map(|i| if i < len { i } else { usize::MAX }).collect();
        Self { keys, index, regs, len }
    }

    /// Compare-exchange of two slots: `lo` gets the smaller key; equal keys stay put.
    fn exchange(&mut self, lo: usize, hi: usize) {
        if self.keys[hi] < self.keys[lo] {
            self.keys.swap(lo, hi);
            self.index.swap(lo, hi);
        }
    }

    /// Lane pairs compared inside one register.
    fn in_register(&mut self, reg: usize, pairs: &[(usize, usize)]) {
        for &(a, b) in pairs {
            self.exchange(reg * LANES + a, reg * LANES + b);
        }
    }

    /// Sorts each register (pairs, reversed halves, pairs), then merges registers bitonically.
    fn sorted(mut self) -> Vec<usize> {
        const PAIRS: [(usize, usize); 2] = [(0, 1), (2, 3)];
        const REVERSED: [(usize, usize); 2] = [(0, 3), (1, 2)];
        const HALVES: [(usize, usize); 2] = [(0, 2), (1, 3)];
        for reg in 0..self.regs {
            self.in_register(reg, &PAIRS);
            self.in_register(reg, &REVERSED);
            self.in_register(reg, &PAIRS);
        }
        let mut group = 2;
        while group <= self.regs {
            for base in (0..self.regs).step_by(group) {
                // Register i against register group-1-i read backwards.
                for i in 0..group / 2 {
                    let (a, b) = (base + i, base + group - 1 - i);
                    for lane in 0..LANES {
                        self.exchange(a * LANES + lane, b * LANES + (LANES - 1 - lane));
                    }
                }
                // Half cleaners across registers, lane by lane.
                let mut span = group / 2;
                while span >= 2 {
                    for start in (0..group).step_by(span) {
                        for i in 0..span / 2 {
                            let (a, b) = (base + start + i, base + start + i + span / 2);
                            for lane in 0..LANES {
                                self.exchange(a * LANES + lane, b * LANES + lane);
                            }
                        }
                    }
                    span /= 2;
                }
                // Half cleaners inside each register.
                for reg in base..base + group {
                    self.in_register(reg, &HALVES);
                    self.in_register(reg, &PAIRS);
                }
            }
            group *= 2;
        }
        self.index.truncate(self.len);
        self.index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_like_any_sort_when_values_are_distinct() {
        for n in [0, 1, 2, 3, 5, 8, 9, 17, 100, 256, 300] {
            let values: Vec<f64> = (0..n).map(|i| ((i * 7919) % 1013) as f64 + 0.5).collect();
            let order = argsort_like_numpy(&values);
            assert_eq!(order.len(), n);
            assert!(order.windows(2).all(|w| values[w[0]] < values[w[1]]), "n = {n}");
        }
    }

    #[test]
    fn ties_follow_the_network_not_the_input_order() {
        // One register: pairs, reversed halves, pairs. The reversed-halves step swaps both
        // pairs, which reverses the order of each group of equal keys.
        assert_eq!(argsort_like_numpy(&[1.0, 1.0, 0.0, 0.0]), vec![3, 2, 1, 0]);
        // Already sorted input with ties is left alone.
        assert_eq!(argsort_like_numpy(&[0.0, 0.0, 1.0, 1.0, 2.0]), vec![0, 1, 2, 3, 4]);
    }
}
