//! Measures how long loading the WordNet noun database takes (run with `--release`):
//! `cargo run --release -p wildcards-core --example wordnet_load [-- DIR]`.

use std::time::Instant;

use wildcards_core::wordnet::WordNet;

fn main() -> anyhow::Result<()> {
    let dir = std::env::args().nth(1).map(std::path::PathBuf::from);
    let runs = 5;
    let mut best = f64::INFINITY;
    let mut wn = None;
    for _ in 0..runs {
        let start = Instant::now();
        let loaded = WordNet::locate(dir.as_deref())?;
        best = best.min(start.elapsed().as_secs_f64());
        wn = Some(loaded);
    }
    let wn = wn.expect("at least one run");
    let entity = wn.synset_by_name("entity.n.01").expect("entity.n.01");
    let start = Instant::now();
    let total: usize = wn.synsets().iter().map(|s| wn.hyponym_closure_size(s)).sum();
    let closures = start.elapsed().as_secs_f64();
    let dog = wn.synset("n02084071").expect("dog.n.01");
    println!("noun synsets: {}", wn.len());
    println!("dog.n.01: min depth {}, closure {}", wn.min_depth(dog), wn.hyponym_closure_size(dog));
    println!("load: best of {runs} runs {:.1} ms", best * 1000.0);
    println!(
        "all hyponym-closure sizes (first call, memoised after): {:.1} ms (sum {total}, entity {})",
        closures * 1000.0,
        wn.hyponym_closure_size(entity)
    );
    Ok(())
}
