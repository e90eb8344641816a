//! Release timings of balanced smart generation per dataset (and of loading WordNet):
//! `cargo bench -p wildcards-core --bench datasets`. Set `WILDCARDS_DATA_DIR` to the dataset
//! folder (default `../shared/data` beside the checkout). Prints the best of several runs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wildcards_core::generate::{generate, GenerateContext};
use wildcards_core::params::{Dataset, ImagenetFilter, Params, Preset};
use wildcards_core::wordnet::WordNet;

const RUNS: usize = 5;

fn best_of<T>(mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..RUNS {
        let start = Instant::now();
        let out = f();
        best = best.min(start.elapsed());
        last = Some(out);
    }
    (best, last.expect("RUNS > 0"))
}

fn main() -> anyhow::Result<()> {
    let data_dir = std::env::var_os("WILDCARDS_DATA_DIR").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"))
    });
    let (t, wn) = best_of(|| WordNet::locate(None));
    let wn = Arc::new(wn?);
    println!("{:<44} {:>8.1} ms", "WordNet load (noun database)", t.as_secs_f64() * 1e3);

    let balanced =
        Params { smart: Some(true), preset: Some(Preset::Balanced), ..Default::default() };
    let with_filter =
        |filter, strict| Params { filter: Some(filter), strict: Some(strict), ..balanced.clone() };
    let cases: Vec<(&str, Dataset, Params)> = vec![
        ("tencent", Dataset::Tencent, balanced.clone()),
        (
            "imagenet --drop-secondary-senses",
            Dataset::Imagenet,
            Params { drop_secondary_senses: Some(true), ..balanced.clone() },
        ),
        ("imagenet (entity.n.01)", Dataset::Imagenet, balanced.clone()),
        (
            "imagenet --no-strict",
            Dataset::Imagenet,
            Params { strict: Some(false), ..balanced.clone() },
        ),
        ("imagenet --filter 1k", Dataset::Imagenet, with_filter(ImagenetFilter::OneK, true)),
        (
            "imagenet --filter 1k --no-strict",
            Dataset::Imagenet,
            with_filter(ImagenetFilter::OneK, false),
        ),
        ("imagenet --filter 21k", Dataset::Imagenet, with_filter(ImagenetFilter::TwentyOneK, true)),
        (
            "imagenet --filter 21k --no-strict",
            Dataset::Imagenet,
            with_filter(ImagenetFilter::TwentyOneK, false),
        ),
        ("coco", Dataset::Coco, balanced.clone()),
        (
            "openimages --bbox-only",
            Dataset::Openimages,
            Params { bbox_only: Some(true), ..balanced },
        ),
    ];
    let ctx = GenerateContext::new(data_dir, wn);
    for (name, dataset, params) in cases {
        let cfg = params.resolve(dataset);
        let (t, g) = best_of(|| generate(&cfg, &ctx));
        let g = g?;
        println!(
            "{:<44} {:>8.1} ms  ({} categories, {} items)",
            format!("{name}, balanced"),
            t.as_secs_f64() * 1e3,
            g.stats.categories,
            g.stats.items
        );
    }
    Ok(())
}
