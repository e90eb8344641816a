//! Release timings of outlier scoring over the lists of the Tencent balanced skeleton, both
//! methods side by side in one run: `cargo bench -p wildcards-core --bench outliers`.
//!
//! Scoring only: the vectors come from an in-process stand-in (a deterministic pseudo-random
//! unit vector per text, 384 dimensions, like MiniLM's), so the timing excludes the server
//! and the numbers do not depend on a model. Set `WILDCARDS_DATA_DIR` to the dataset folder.
//! Prints the best thread CPU time and the best wall time of several runs of each.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wildcards_core::generate::{generate, GenerateContext};
use wildcards_core::params::{Dataset, OutlierMethod, Params, Preset};
use wildcards_core::semantic::embedder::{Embedder, Embeddings};
use wildcards_core::semantic::lint::lint_tree;
use wildcards_core::semantic::outliers::Scoring;
use wildcards_core::wordnet::WordNet;

const RUNS: usize = 5;
const DIM: usize = 384;

/// A unit vector per text, from a hash of the text (same text, same vector).
struct HashEmbedder;

impl Embedder for HashEmbedder {
    fn embed(&self, texts: &[String]) -> anyhow::Result<Embeddings> {
        let vectors = texts.iter().map(|t| vector(t)).collect();
        Ok(Embeddings { dim: DIM, vectors, cache_hits: 0 })
    }
}

fn vector(text: &str) -> Vec<f32> {
    let mut h = DefaultHasher::new();
    text.hash(&mut h);
    let mut state = h.finish() | 1;
    let mut v: Vec<f32> = (0..DIM)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

/// CPU time of this thread: on a shared machine it moves far less than wall time.
fn cpu_time() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}

/// Best wall time and best thread CPU time of several runs, and the last result.
fn best_of(mut f: impl FnMut() -> usize) -> (Duration, Duration, usize) {
    let (mut wall, mut cpu) = (Duration::MAX, Duration::MAX);
    let mut flagged = 0;
    for _ in 0..RUNS {
        let (start, start_cpu) = (Instant::now(), cpu_time());
        flagged = f();
        wall = wall.min(start.elapsed());
        cpu = cpu.min(cpu_time().saturating_sub(start_cpu));
    }
    (wall, cpu, flagged)
}

fn main() -> anyhow::Result<()> {
    let data_dir = std::env::var_os("WILDCARDS_DATA_DIR").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"))
    });
    let wn = Arc::new(WordNet::locate(None)?);
    let params = Params { smart: Some(true), preset: Some(Preset::Balanced), ..Default::default() };
    let ctx = GenerateContext::new(data_dir, Arc::clone(&wn));
    let tree = generate(&params.resolve(Dataset::Tencent), &ctx)?.tree;
    let cases = [
        ("glosh", Scoring::glosh(0.1)),
        (
            "typicality (with WordNet)",
            Scoring { method: OutlierMethod::Typicality, threshold: 0.1, wordnet: Some(&wn) },
        ),
        (
            "typicality (embeddings only)",
            Scoring { method: OutlierMethod::Typicality, threshold: 0.1, wordnet: None },
        ),
    ];
    println!("lint of the Tencent balanced skeleton (709 lists, 9,065 items), best of {RUNS}:");
    for (name, scoring) in cases {
        let run = || lint_tree(&tree, &HashEmbedder, &scoring).map(|r| r.items_checked);
        let (wall, cpu, items) = best_of(|| run().unwrap_or(0));
        println!(
            "{name:<32} {:>8.1} ms CPU {:>8.1} ms wall  ({items} items scored)",
            cpu.as_secs_f64() * 1e3,
            wall.as_secs_f64() * 1e3
        );
    }
    Ok(())
}
