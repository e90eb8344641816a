//! HDBSCAN* clustering with membership probabilities and GLOSH outlier scores.
//!
//! Why this is hand-written: the Rust crates looked at do not give what the engine needs.
//! `hdbscan` (0.12) returns labels and centres only — no membership probabilities, no GLOSH
//! scores, no `leaf` selection; `petal-clustering` returns cluster members and outlier indices
//! only. The engine must also agree with the Python `hdbscan` package (the reference
//! implementation the project is measured against, see `shared/reference/README.md`) to 1e-3 on
//! GLOSH scores, and those scores depend on that package's exact conventions: core distance to
//! the k-th nearest *other* point, its Prim's tie-breaking, the order numpy's argsort gives to
//! MST edges of equal weight ([`super::tie_order`]), and its condensed-tree conventions. This
//! module reproduces those step by step; each function says which one it follows. On all 32
//! clusterings of `glosh_reference.json` the scores agree to ~1e-16.
//!
//! Memory is O(n): distances are computed when needed ([`super::pairwise`]) instead of held in
//! an n x n matrix (3.2 GB at 20,000 items), bit-identical to the matrix's. Time is O(n² · d)
//! (core distances and Prim's MST), so lists above [`MAX_POINTS`] are refused.

use crate::params::ClusterMethod;
use crate::semantic::pairwise::{Blocks, Rough, LANES};
use crate::semantic::tie_order::argsort_like_numpy;

/// Longest list one run accepts. Why a limit: memory is O(n) but time grows with the square
/// of the list size (README, Performance, has measurements), and past this a list is better
/// split than clustered. Callers also check it before embedding ([`check_list_size`]), so a
/// too-long list fails at once.
pub const MAX_POINTS: usize = 50_000;

/// Refuses a list longer than [`MAX_POINTS`] with an error that says what to do.
pub fn check_list_size(n: usize) -> anyhow::Result<()> {
    anyhow::ensure!(
        n <= MAX_POINTS,
        "a list of {n} items is longer than the semantic engine's limit of {MAX_POINTS} items \
         (clustering time grows with the square of the list size): split it into smaller \
         lists, e.g. sub-categories, and run again"
    );
    Ok(())
}

/// Settings of one HDBSCAN* run (metric euclidean, alpha 1, no epsilon, no single cluster).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HdbscanParams {
    /// Smallest group that counts as a cluster; smaller splits are points "falling out".
    pub min_cluster_size: usize,
    /// Neighbourhood size for core distances; `None` means `min_cluster_size` (as in Python).
    pub min_samples: Option<usize>,
    /// How flat clusters are chosen from the condensed tree.
    pub selection: ClusterMethod,
}

impl HdbscanParams {
    pub fn new(min_cluster_size: usize, selection: ClusterMethod) -> Self {
        Self { min_cluster_size, min_samples: None, selection }
    }
}

/// Result of a run, one entry per input point, in input order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Clustering {
    /// Cluster of each point (`None` = noise). Clusters are numbered 0.. in condensed-tree order.
    pub labels: Vec<Option<usize>>,
    /// Membership strength in [0, 1] (0 for noise), as Python's `probabilities_`.
    pub probabilities: Vec<f64>,
    /// GLOSH outlier score in [0, 1], as Python's `outlier_scores_`.
    pub outlier_scores: Vec<f64>,
    /// Number of clusters found.
    pub n_clusters: usize,
}

impl Clustering {
    /// Members of each cluster, in ascending point order.
    pub fn members(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.n_clusters];
        for (i, l) in self.labels.iter().enumerate() {
            if let Some(c) = l {
                out[*c].push(i);
            }
        }
        out
    }

    /// Mean membership probability of each cluster (the arranger's acceptance measure).
    pub fn mean_probabilities(&self) -> Vec<f64> {
        self.members()
            .iter()
            .map(|m| m.iter().map(|&i| self.probabilities[i]).sum::<f64>() / m.len().max(1) as f64)
            .collect()
    }
}

/// Runs HDBSCAN* over `points` (all of the same dimension).
///
/// Python needs more than `min_samples` points; here `min_samples` is clamped to `n - 1` so
/// any list works (with fewer than 2 points everything is noise with score 0).
pub fn hdbscan(points: &[Vec<f32>], params: &HdbscanParams) -> anyhow::Result<Clustering> {
    let n = points.len();
    check_list_size(n)?;
    if let Some(first) = points.first() {
        let dim = first.len();
        if let Some((i, p)) = points.iter().enumerate().find(|(_, p)| p.len() != dim) {
            anyhow::bail!("hdbscan: vector {i} has {} dimensions, expected {dim}", p.len());
        }
        if points.iter().flatten().any(|v| !v.is_finite()) {
            anyhow::bail!("hdbscan: the vectors contain a NaN or infinite value");
        }
    }
    if n < 2 {
        return Ok(Clustering {
            labels: vec![None; n],
            probabilities: vec![0.0; n],
            outlier_scores: vec![0.0; n],
            n_clusters: 0,
        });
    }
    let min_cluster_size = params.min_cluster_size.max(2);
    let k = params.min_samples.unwrap_or(min_cluster_size).clamp(1, n - 1);

    let core = core_distances(points, &Blocks::new(points), k);
    let mst = prim_mst(points, &core);
    let order = argsort_like_numpy(&mst.iter().map(|e| e.2).collect::<Vec<_>>());
    let mst: Vec<_> = order.iter().map(|&i| mst[i]).collect();
    let hierarchy = single_linkage(&mst, n);
    let tree = CondensedTree::new(&hierarchy, n, min_cluster_size);

    let selected = match params.selection {
        ClusterMethod::Eom => tree.select_eom(),
        ClusterMethod::Leaf => tree.select_leaf(),
    };
    let (labels, n_clusters, cluster_of_label) = tree.labels(&selected);
    let probabilities = tree.probabilities(&labels, &cluster_of_label);
    let outlier_scores = tree.glosh();
    Ok(Clustering { labels, probabilities, outlier_scores, n_clusters })
}

/// Core distance of each point: the distance to its k-th nearest *other* point (Python queries
/// k+1 neighbours, the point itself included, and takes the last). Euclidean distances in f64,
/// computed as Python does (sum of squares, then sqrt; see [`super::pairwise`]).
fn core_distances(points: &[Vec<f32>], blocks: &Blocks, k: usize) -> Vec<f64> {
    if k <= SHARED_K {
        core_distances_shared(points, blocks, k)
    } else {
        core_distances_by_row(points, blocks, k)
    }
}

/// Up to this k every point keeps its k smallest distances so far (n * k values) and each
/// pair is computed once, for both of its points; above it, [`core_distances_by_row`] keeps
/// memory O(n) at twice the arithmetic. Outlier scoring uses k = 2, arrangement k = 3..5.
const SHARED_K: usize = 16;

/// Core distances computing each pair once (for small k): the pair's distance is offered to
/// both points' lists of k smallest. A block whose rough distances are all surely above both
/// points' current k-th smallest is skipped (the exact ones would change nothing).
fn core_distances_shared(points: &[Vec<f32>], blocks: &Blocks, k: usize) -> Vec<f64> {
    let n = points.len();
    let rough = Rough::new(blocks.dim());
    let mut smallest = vec![f64::INFINITY; n * k];
    for (i, a) in points.iter().enumerate() {
        for b in i / LANES..blocks.blocks() {
            let others = (b * LANES).max(i + 1)..((b + 1) * LANES).min(n);
            let kth = |j: usize| smallest[j * k + k - 1];
            let mut thresholds = [f64::NEG_INFINITY; LANES];
            for j in others.clone() {
                thresholds[j % LANES] = rough.threshold_sq(kth(i).max(kth(j)));
            }
            if others.is_empty() || blocks.euclidean_f32_unless_beyond(a, b, &thresholds).is_none()
            {
                continue;
            }
            let exact = blocks.euclidean(a, b);
            for j in others {
                offer(&mut smallest[i * k..(i + 1) * k], exact[j % LANES]);
                offer(&mut smallest[j * k..(j + 1) * k], exact[j % LANES]);
            }
        }
    }
    smallest.chunks_exact(k).map(|row| row[k - 1]).collect()
}

/// Puts `v` into `row` (the smallest values so far, ascending) when it is below the largest.
fn offer(row: &mut [f64], v: f64) {
    let last = row.len() - 1;
    if v < row[last] {
        let pos = row.partition_point(|&x| x <= v);
        row.copy_within(pos..last, pos + 1);
        row[pos] = v;
    }
}

/// Core distances one point at a time: all its distances in one reused buffer, then the k-th
/// smallest selected (for large k, where n * k values would be too many).
fn core_distances_by_row(points: &[Vec<f32>], blocks: &Blocks, k: usize) -> Vec<f64> {
    let n = points.len();
    let mut others = Vec::with_capacity(blocks.blocks() * LANES);
    points
        .iter()
        .enumerate()
        .map(|(i, a)| {
            others.clear();
            for b in 0..blocks.blocks() {
                others.extend_from_slice(&blocks.euclidean(a, b));
            }
            others.truncate(n);
            others.swap_remove(i);
            let (_, kth, _) = others.select_nth_unstable_by(k - 1, |a, b| a.total_cmp(b));
            *kth
        })
        .collect()
}

/// Prim's minimum spanning tree over mutual reachability `max(core_a, core_b, d(a, b))`,
/// starting at point 0, as the Python package's `mst_linkage_core_vector`: a node keeps its
/// recorded source on a tie, and the first node (lowest index) with the smallest distance joins
/// next. Edges are `(source, new node, weight)` in the order they were added.
///
/// Exact distances are computed only where they decide something ([`Frontier::measure`]);
/// which edges are chosen is exactly as with every distance computed.
fn prim_mst(points: &[Vec<f32>], core: &[f64]) -> Vec<(usize, usize, f64)> {
    let n = points.len();
    let mut in_tree = vec![false; n];
    let mut best = vec![f64::INFINITY; n];
    let mut source = vec![1usize; n];
    let mut frontier = Frontier::new(points, (0..n).collect());
    let mut edges = Vec::with_capacity(n.saturating_sub(1));
    let mut current = 0usize;
    for left in (1..n).rev() {
        in_tree[current] = true;
        frontier.compact(points, &in_tree, left);
        frontier.measure(&points[current], core[current], core, &best, &in_tree);
        let mut new_distance = f64::MAX;
        let mut new_node = 0usize;
        let mut new_source = 0usize;
        for (&j, &reach) in frontier.ids.iter().zip(&frontier.reach) {
            if in_tree[j] {
                continue;
            }
            if reach < best[j] {
                best[j] = reach;
                source[j] = current;
            }
            if best[j] < new_distance {
                new_distance = best[j];
                new_source = source[j];
                new_node = j;
            }
        }
        edges.push((new_source, new_node, new_distance));
        current = new_node;
    }
    edges
}

/// The points not yet in the tree, ascending, packed in blocks. Rebuilt without the tree's
/// points once those fill a quarter of it, so a step's work follows the points left.
struct Frontier {
    ids: Vec<usize>,
    blocks: Blocks,
    rough: Rough,
    /// Per slot, the reachability from the node just added where it may beat the point's best
    /// so far, else infinity.
    reach: Vec<f64>,
}

impl Frontier {
    fn new(points: &[Vec<f32>], ids: Vec<usize>) -> Self {
        let blocks = Blocks::subset(points, &ids);
        let reach = vec![f64::INFINITY; blocks.blocks() * LANES];
        Self { ids, rough: Rough::new(blocks.dim()), blocks, reach }
    }

    /// Drops the tree's points once only `left` of the slots are not in it, under 3/4.
    fn compact(&mut self, points: &[Vec<f32>], in_tree: &[bool], left: usize) {
        if 4 * left < 3 * self.ids.len() {
            let ids = self.ids.iter().copied().filter(|&j| !in_tree[j]).collect();
            *self = Self::new(points, ids);
        }
    }

    /// Reachabilities from `from` (core distance `core_from`). The reachability is
    /// `max(d, m)`, m the pair's larger core distance, and counts only when below `best`. So a
    /// point with `m >= best` is skipped, and so is a block whose points are all surely farther
    /// than their `best` (rough partial sums, [`Blocks::euclidean_f32_unless_beyond`]). A
    /// distance surely below `m` gives `m`; only one between the two needs the exact value.
    fn measure(
        &mut self,
        from: &[f32],
        core_from: f64,
        core: &[f64],
        best: &[f64],
        in_tree: &[bool],
    ) {
        let Self { ids, blocks, rough, reach } = self;
        for b in 0..blocks.blocks() {
            let slots = b * LANES..((b + 1) * LANES).min(ids.len());
            reach[b * LANES..(b + 1) * LANES].fill(f64::INFINITY);
            let mut wanted = [false; LANES];
            let mut thresholds = [f64::NEG_INFINITY; LANES];
            for s in slots.clone() {
                let j = ids[s];
                if !in_tree[j] && core_from.max(core[j]) < best[j] {
                    wanted[s % LANES] = true;
                    thresholds[s % LANES] = rough.threshold_sq(best[j]);
                }
            }
            if !wanted.contains(&true) {
                continue;
            }
            let Some(near) = blocks.euclidean_f32_unless_beyond(from, b, &thresholds) else {
                continue;
            };
            let mut exact = None;
            for s in slots.filter(|s| wanted[s % LANES]) {
                let (j, near) = (ids[s], f64::from(near[s % LANES]));
                let m = core_from.max(core[j]);
                reach[s] = if rough.above(near, best[j]) {
                    f64::INFINITY
                } else if rough.below(near, m) {
                    m
                } else {
                    let exact = exact.get_or_insert_with(|| blocks.euclidean(from, b));
                    exact[s % LANES].max(core_from).max(core[j])
                };
            }
        }
    }
}

/// One merge of the single-linkage dendrogram (scipy format): two node ids, height, size.
#[derive(Debug, Clone, Copy)]
struct Merge {
    left: usize,
    right: usize,
    distance: f64,
    size: usize,
}

/// Single-linkage dendrogram from MST edges sorted by weight. Points are nodes `0..n`, merge
/// `i` creates node `n + i`; the left child is the component of the edge's source.
fn single_linkage(edges: &[(usize, usize, f64)], n: usize) -> Vec<Merge> {
    let mut parent: Vec<usize> = (0..2 * n - 1).collect();
    let mut size = vec![1usize; 2 * n - 1];
    let find = |parent: &mut Vec<usize>, mut x: usize| {
        let mut root = x;
        while parent[root] != root {
            root = parent[root];
        }
        while parent[x] != root {
            let next = parent[x];
            parent[x] = root;
            x = next;
        }
        root
    };
    let mut merges = Vec::with_capacity(edges.len());
    for (i, &(a, b, w)) in edges.iter().enumerate() {
        let ra = find(&mut parent, a);
        let rb = find(&mut parent, b);
        let node = n + i;
        size[node] = size[ra] + size[rb];
        parent[ra] = node;
        parent[rb] = node;
        merges.push(Merge { left: ra, right: rb, distance: w, size: size[node] });
    }
    merges
}

/// One row of the condensed tree: `child` (a point `< n` or a cluster `>= n`) leaves or splits
/// from cluster `parent` at density `lambda` = 1 / distance.
#[derive(Debug, Clone, Copy)]
struct Row {
    parent: usize,
    child: usize,
    lambda: f64,
    size: usize,
}

/// The condensed cluster tree. Cluster ids start at `n` (the root); rows are kept in the order
/// the Python package emits them, which its GLOSH pass depends on.
struct CondensedTree {
    n: usize,
    rows: Vec<Row>,
    /// Number of clusters including the root.
    n_nodes: usize,
}

impl CondensedTree {
    /// Walks the dendrogram breadth first from the top. A split where both sides have at least
    /// `min_cluster_size` points creates two new clusters; otherwise the small side's points
    /// fall out of the current cluster, which lives on as the large side.
    fn new(merges: &[Merge], n: usize, min_cluster_size: usize) -> Self {
        let root = 2 * n - 2;
        let node_size = |node: usize| if node >= n { merges[node - n].size } else { 1 };
        let mut relabel = vec![0usize; root + 1];
        relabel[root] = n;
        let mut next_label = n + 1;
        let mut ignore = vec![false; root + 1];
        let mut rows = Vec::new();

        for node in bfs(merges, n, root) {
            if ignore[node] || node < n {
                continue;
            }
            let m = merges[node - n];
            let lambda = if m.distance > 0.0 { 1.0 / m.distance } else { f64::INFINITY };
            let (left_size, right_size) = (node_size(m.left), node_size(m.right));
            let parent = relabel[node];
            let mut fall_out = |sub: usize, rows: &mut Vec<Row>| {
                for s in bfs(merges, n, sub) {
                    if s < n {
                        rows.push(Row { parent, child: s, lambda, size: 1 });
                    }
                    ignore[s] = true;
                }
            };
            match (left_size >= min_cluster_size, right_size >= min_cluster_size) {
                (true, true) => {
                    for (child, size) in [(m.left, left_size), (m.right, right_size)] {
                        relabel[child] = next_label;
                        rows.push(Row { parent, child: next_label, lambda, size });
                        next_label += 1;
                    }
                }
                (false, false) => {
                    fall_out(m.left, &mut rows);
                    fall_out(m.right, &mut rows);
                }
                (false, true) => {
                    relabel[m.right] = parent;
                    fall_out(m.left, &mut rows);
                }
                (true, false) => {
                    relabel[m.left] = parent;
                    fall_out(m.right, &mut rows);
                }
            }
        }
        Self { n, rows, n_nodes: next_label - n }
    }

    /// Rows whose child is a cluster.
    fn cluster_rows(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(move |r| r.child >= self.n)
    }

    /// Direct child clusters of each cluster (index = cluster id - n), in row order.
    fn children(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.n_nodes];
        for r in self.cluster_rows() {
            out[r.parent - self.n].push(r.child - self.n);
        }
        out
    }

    /// Largest lambda among each cluster's direct rows (Python's `max_lambdas`).
    fn deaths(&self) -> Vec<f64> {
        let mut deaths = vec![0.0f64; self.n_nodes];
        for r in &self.rows {
            let d = &mut deaths[r.parent - self.n];
            if r.lambda > *d {
                *d = r.lambda;
            }
        }
        deaths
    }

    /// Excess-of-mass stability: sum over a cluster's rows of (lambda - birth) * size.
    fn stabilities(&self) -> Vec<f64> {
        let mut births = vec![f64::INFINITY; self.n_nodes];
        births[0] = 0.0;
        for r in self.cluster_rows() {
            let b = &mut births[r.child - self.n];
            if r.lambda < *b {
                *b = r.lambda;
            }
        }
        let mut stability = vec![0.0f64; self.n_nodes];
        for r in &self.rows {
            let c = r.parent - self.n;
            stability[c] += (r.lambda - births[c]) * r.size as f64;
        }
        stability
    }

    /// Excess of mass, bottom up (cluster ids are a topological order): a cluster is kept when
    /// its stability is at least the sum of its children's; the root is never selected.
    fn select_eom(&self) -> Vec<bool> {
        let children = self.children();
        let mut stability = self.stabilities();
        let mut selected = vec![true; self.n_nodes];
        selected[0] = false;
        for node in (1..self.n_nodes).rev() {
            let subtree: f64 = children[node].iter().map(|&c| stability[c]).sum();
            if subtree > stability[node] {
                selected[node] = false;
                stability[node] = subtree;
            } else {
                let mut stack = children[node].clone();
                while let Some(c) = stack.pop() {
                    selected[c] = false;
                    stack.extend(&children[c]);
                }
            }
        }
        selected
    }

    /// Leaf selection: every cluster without child clusters (none at all = everything noise).
    fn select_leaf(&self) -> Vec<bool> {
        let children = self.children();
        let mut selected: Vec<bool> = children.iter().map(|c| c.is_empty()).collect();
        selected[0] = false;
        selected
    }

    /// Labels from the selected clusters: a point belongs to the nearest selected ancestor of
    /// the cluster it fell out of, or is noise. Labels follow ascending cluster id.
    /// Returns (labels, number of clusters, cluster id index for each label).
    fn labels(&self, selected: &[bool]) -> (Vec<Option<usize>>, usize, Vec<usize>) {
        let mut label_of = vec![None; self.n_nodes];
        let mut cluster_of_label = Vec::new();
        for (c, &s) in selected.iter().enumerate() {
            if s {
                label_of[c] = Some(cluster_of_label.len());
                cluster_of_label.push(c);
            }
        }
        // Parent clusters come before their children in row order, so one pass resolves
        // each cluster's nearest selected ancestor (itself included).
        let mut owner: Vec<Option<usize>> = vec![None; self.n_nodes];
        for r in self.cluster_rows() {
            let c = r.child - self.n;
            owner[c] = label_of[c].or(owner[r.parent - self.n]);
        }
        let mut labels = vec![None; self.n];
        for r in self.rows.iter().filter(|r| r.child < self.n) {
            labels[r.child] = owner[r.parent - self.n];
        }
        (labels, cluster_of_label.len(), cluster_of_label)
    }

    /// Membership probability: the point's lambda relative to the largest lambda among its
    /// selected cluster's direct rows (capped at 1); noise gets 0.
    fn probabilities(&self, labels: &[Option<usize>], cluster_of_label: &[usize]) -> Vec<f64> {
        let deaths = self.deaths();
        let mut probs = vec![0.0; self.n];
        for r in self.rows.iter().filter(|r| r.child < self.n) {
            if let Some(l) = labels[r.child] {
                let max_lambda = deaths[cluster_of_label[l]];
                probs[r.child] = if max_lambda == 0.0 || !r.lambda.is_finite() {
                    1.0
                } else {
                    r.lambda.min(max_lambda) / max_lambda
                };
            }
        }
        probs
    }

    /// GLOSH: 1 - lambda(point) / lambda_max, where lambda_max is the largest lambda anywhere
    /// in the subtree of the cluster the point fell out of (the densest point it could have
    /// joined). This reproduces Python's `outlier_scores_` on every reference case.
    fn glosh(&self) -> Vec<f64> {
        let mut deaths = self.deaths();
        let mut cluster_rows: Vec<&Row> = self.cluster_rows().collect();
        cluster_rows.sort_by_key(|r| std::cmp::Reverse(r.child));
        for r in cluster_rows {
            let (c, p) = (r.child - self.n, r.parent - self.n);
            if deaths[c] > deaths[p] {
                deaths[p] = deaths[c];
            }
        }
        let mut scores = vec![0.0; self.n];
        for r in self.rows.iter().filter(|r| r.child < self.n) {
            let lambda_max = deaths[r.parent - self.n];
            scores[r.child] = if lambda_max == 0.0 || !r.lambda.is_finite() {
                0.0
            } else {
                (lambda_max - r.lambda) / lambda_max
            };
        }
        scores
    }
}

/// Breadth-first node order of the dendrogram below `root` (scipy ids), as Python's
/// `bfs_from_hierarchy`.
fn bfs(merges: &[Merge], n: usize, root: usize) -> Vec<usize> {
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let node = out[i];
        if node >= n {
            let m = merges[node - n];
            out.push(m.left);
            out.push(m.right);
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::semantic::pairwise::tests::random_points;
    use crate::semantic::testdata;

    /// Labels equal up to renumbering of clusters (noise must match exactly).
    fn same_partition(ours: &[Option<usize>], reference: &[i64]) -> bool {
        let mut map = std::collections::HashMap::new();
        ours.len() == reference.len()
            && ours.iter().zip(reference).all(|(o, &r)| match (o, r) {
                (None, -1) => true,
                (Some(o), r) if r >= 0 => *map.entry(*o).or_insert(r) == r,
                _ => false,
            })
            && {
                let mut values: Vec<i64> = map.values().copied().collect();
                values.sort_unstable();
                values.dedup();
                values.len() == map.len()
            }
    }

    fn ref_labels(case: &serde_json::Value) -> Vec<i64> {
        case["labels"].as_array().unwrap().iter().map(|l| l.as_i64().unwrap()).collect()
    }

    #[test]
    fn glosh_matches_python_hdbscan_on_every_reference_case() {
        let data = testdata::load("glosh_reference.json");
        let mut max_error = 0.0f64;
        for case in data["cases"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let points = testdata::vectors(&case["embeddings_f32_b64"]);
            let params = HdbscanParams {
                min_cluster_size: case["min_cluster_size"].as_u64().unwrap() as usize,
                min_samples: Some(case["min_samples"].as_u64().unwrap() as usize),
                selection: ClusterMethod::Eom,
            };
            let got = hdbscan(&points, &params).unwrap();
            let want = testdata::f64s(&case["outlier_scores"]);
            for (i, (g, w)) in got.outlier_scores.iter().zip(&want).enumerate() {
                let err = (g - w).abs();
                max_error = max_error.max(err);
                assert!(err < 1e-3, "{name}: item {i} score {g} vs reference {w}");
            }
            for t in ["0.1", "0.2", "0.3"] {
                let threshold: f64 = t.parse().unwrap();
                let flagged: Vec<u64> = (0..points.len())
                    .filter(|&i| got.outlier_scores[i] > threshold)
                    .map(|i| i as u64)
                    .collect();
                let want: Vec<u64> = case["flagged"][t]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap())
                    .collect();
                assert_eq!(flagged, want, "{name}: flagged set at {t}");
            }
            assert!(same_partition(&got.labels, &ref_labels(case)), "{name}: labels differ");
            for (i, (g, w)) in
                got.probabilities.iter().zip(testdata::f64s(&case["probabilities"])).enumerate()
            {
                assert!((g - w).abs() < 1e-3, "{name}: item {i} probability {g} vs {w}");
            }
        }
        println!("GLOSH max abs error vs Python hdbscan over all cases: {max_error:.3e}");
    }

    #[test]
    fn eom_and_leaf_clusterings_match_python_hdbscan() {
        let data = testdata::load("glosh_reference.json");
        for case in data["arrange_cases"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let selection = match case["cluster_selection_method"].as_str().unwrap() {
                "leaf" => ClusterMethod::Leaf,
                _ => ClusterMethod::Eom,
            };
            let points = testdata::vectors(&case["embeddings_f32_b64"]);
            let params = HdbscanParams {
                min_cluster_size: case["min_cluster_size"].as_u64().unwrap() as usize,
                min_samples: Some(case["min_samples"].as_u64().unwrap() as usize),
                selection,
            };
            let got = hdbscan(&points, &params).unwrap();
            assert!(same_partition(&got.labels, &ref_labels(case)), "{name}: labels differ");
            for (i, (g, w)) in
                got.probabilities.iter().zip(testdata::f64s(&case["probabilities"])).enumerate()
            {
                assert!((g - w).abs() < 1e-6, "{name}: item {i} probability {g} vs {w}");
            }
        }
    }

    /// The former implementation, kept as the reference: the full n x n distance matrix, core
    /// distances selected from its rows, Prim's reading it.
    fn matrix_core_and_mst(points: &[Vec<f32>], k: usize) -> (Vec<f64>, Vec<(usize, usize, f64)>) {
        let n = points.len();
        let rows: Vec<Vec<f64>> =
            points.iter().map(|p| p.iter().map(|&v| f64::from(v)).collect()).collect();
        let mut d = vec![0.0; n * n];
        for i in 0..n {
            for j in (i + 1)..n {
                let mut acc = 0.0f64;
                for (a, b) in rows[i].iter().zip(&rows[j]) {
                    let t = a - b;
                    acc += t * t;
                }
                d[i * n + j] = acc.sqrt();
                d[j * n + i] = acc.sqrt();
            }
        }
        let core: Vec<f64> = (0..n)
            .map(|i| {
                let mut others: Vec<f64> =
                    (0..n).filter(|&j| j != i).map(|j| d[i * n + j]).collect();
                *others.select_nth_unstable_by(k - 1, |a, b| a.total_cmp(b)).1
            })
            .collect();
        let (mut in_tree, mut best, mut source) =
            (vec![false; n], vec![f64::INFINITY; n], vec![1; n]);
        let mut edges = Vec::new();
        let mut current = 0;
        for _ in 1..n {
            in_tree[current] = true;
            let (mut new_distance, mut new_node, mut new_source) = (f64::MAX, 0, 0);
            for j in (0..n).filter(|&j| !in_tree[j]) {
                let reach = d[current * n + j].max(core[current]).max(core[j]);
                if reach < best[j] {
                    best[j] = reach;
                    source[j] = current;
                }
                if best[j] < new_distance {
                    (new_distance, new_source, new_node) = (best[j], source[j], j);
                }
            }
            edges.push((new_source, new_node, new_distance));
            current = new_node;
        }
        (core, edges)
    }

    /// Core distances (both the shared and the by-row way) and the MST are bit-identical to
    /// the matrix version, on continuous data and on integer grids full of equal distances.
    #[test]
    fn streaming_distances_equal_the_matrix_version_on_random_data() {
        let mut checked = 0;
        for (n, dim) in [(2, 1), (3, 2), (9, 5), (20, 3), (41, 13), (64, 8), (150, 384)] {
            for grid in [false, true] {
                let points = random_points(n, dim, (n * 1000 + dim) as u64, grid);
                let blocks = Blocks::new(&points);
                for k in [1, 2, 5, SHARED_K, SHARED_K + 1, n - 1] {
                    let k = k.clamp(1, n - 1);
                    let (core, mst) = matrix_core_and_mst(&points, k);
                    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    let shared = core_distances_shared(&points, &blocks, k);
                    let by_row = core_distances_by_row(&points, &blocks, k);
                    assert_eq!(bits(&shared), bits(&core), "n {n} dim {dim} grid {grid} k {k}");
                    assert_eq!(bits(&by_row), bits(&core), "n {n} dim {dim} grid {grid} k {k}");
                    let got = prim_mst(&points, &core_distances(&points, &blocks, k));
                    let edge_bits = |e: &[(usize, usize, f64)]| {
                        e.iter().map(|&(a, b, w)| (a, b, w.to_bits())).collect::<Vec<_>>()
                    };
                    assert_eq!(
                        edge_bits(&got),
                        edge_bits(&mst),
                        "n {n} dim {dim} grid {grid} k {k}"
                    );
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 84);
    }

    #[test]
    fn a_list_above_the_limit_is_refused_with_a_clear_error() {
        let points = vec![vec![0.5f32]; MAX_POINTS + 1];
        let err = hdbscan(&points, &HdbscanParams::new(2, ClusterMethod::Eom)).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("a list of 50001 items"), "{msg}");
        assert!(msg.contains("limit of 50000 items"), "{msg}");
        assert!(msg.contains("split it into smaller lists"), "{msg}");
        assert!(check_list_size(MAX_POINTS).is_ok());
    }

    #[test]
    fn tiny_inputs_are_all_noise() {
        let params =
            HdbscanParams { min_samples: Some(2), ..HdbscanParams::new(2, ClusterMethod::Eom) };
        assert_eq!(hdbscan(&[], &params).unwrap().labels.len(), 0);
        let one = hdbscan(&[vec![1.0, 0.0]], &params).unwrap();
        assert_eq!(one.labels, vec![None]);
        assert_eq!(one.outlier_scores, vec![0.0]);
    }

    #[test]
    fn two_separated_blobs_are_two_clusters() {
        let mut points = Vec::new();
        for i in 0..6 {
            points.push(vec![0.0 + 0.01 * i as f32, 0.0]);
            points.push(vec![10.0 + 0.01 * i as f32, 10.0]);
        }
        let params = HdbscanParams::new(3, ClusterMethod::Eom);
        let got = hdbscan(&points, &params).unwrap();
        assert_eq!(got.n_clusters, 2);
        assert!(got.labels.iter().all(|l| l.is_some()));
        assert_ne!(got.labels[0], got.labels[1]);
    }

    #[test]
    fn mismatched_dimensions_are_an_error() {
        let params = HdbscanParams::new(2, ClusterMethod::Eom);
        let err = hdbscan(&[vec![0.0, 1.0], vec![0.0]], &params).unwrap_err();
        assert!(err.to_string().contains("dimensions"));
    }
}
