//! Quality of the semantic engine through the real embed-server (MiniLM on loopback), against
//! the reference implementation's numbers in `shared/reference/`:
//! - outlier detection on `outlier_eval.json` (lists with planted outliers): micro precision
//!   and recall at 0.1, 0.2, 0.3 and 0.5 at least the reference's;
//! - arrangement on `arrangement_eval.json` (mixed WordNet categories with the truth): mean
//!   adjusted Rand index at least the reference's 0.630, and the share of groups named by a
//!   WordNet hypernym of most of their members.
//!
//! Both print their numbers: `cargo test --release --test semantic_quality -- --nocapture`.

use test_support::{reference_dir, EmbedServer};
use wildcards_core::params::OutlierMethod;
use wildcards_core::semantic::arrange::ArrangeParams;
use wildcards_core::semantic::eval::{
    evaluate_arrangement, evaluate_method, evaluate_outliers, sweep_thresholds, MethodScore,
};
use wildcards_core::wordnet::WordNet;

fn print_sweep(name: &str, scores: &[MethodScore]) {
    println!("{name}\n| threshold | precision | recall | F1 | ordinary items flagged |");
    println!("|---:|---:|---:|---:|---:|");
    for s in scores {
        println!(
            "| {:.2} | {:.3} | {:.3} | {:.3} | {:.1} % |",
            s.threshold,
            s.precision,
            s.recall,
            s.f1,
            100.0 * s.ordinary_flagged
        );
    }
}

/// The default method on `outlier_eval.json`, each list under its category name as `lint`
/// sees it: at the default threshold 0.1, F1 >= 0.65 with <= 5 % of the ordinary items
/// flagged; embeddings only (no WordNet), still F1 >= 0.60 at <= 5 %. Prints the README's
/// tables (`-- --nocapture`), GLOSH beside them.
#[test]
fn typicality_meets_its_bar_on_the_evaluation_set() {
    let server = EmbedServer::uncached().expect("embed-server starts");
    let client = server.embedder().expect("client");
    let path = reference_dir().join("outlier_eval.json");
    let wn = WordNet::locate(None).expect("WordNet");
    let thresholds = sweep_thresholds();
    let run = |method, wordnet| evaluate_method(&path, &client, method, wordnet, &thresholds);
    let with_wn = run(OutlierMethod::Typicality, Some(&wn)).unwrap();
    let embeddings_only = run(OutlierMethod::Typicality, None).unwrap();
    let glosh = run(OutlierMethod::Glosh, None).unwrap();
    print_sweep("typicality (with WordNet)", &with_wn);
    print_sweep("typicality (embeddings only)", &embeddings_only);
    print_sweep("glosh", &glosh);
    let at_default = |scores: &[MethodScore]| {
        scores.iter().find(|s| (s.threshold - 0.1).abs() < 1e-9).cloned().expect("0.1 in sweep")
    };
    let d = at_default(&with_wn);
    assert!(d.f1 >= 0.65 && d.ordinary_flagged <= 0.05, "with WordNet at 0.1: {d:?}");
    let e = at_default(&embeddings_only);
    assert!(e.f1 >= 0.60 && e.ordinary_flagged <= 0.05, "embeddings only at 0.1: {e:?}");
    // Raising the threshold trades recall for precision: never more flags.
    for w in embeddings_only.windows(2) {
        assert!(w[1].tp + w[1].fp <= w[0].tp + w[0].fp, "{w:?}");
    }
}

#[test]
fn outlier_detection_is_at_least_as_good_as_the_reference() {
    let server = EmbedServer::uncached().expect("embed-server starts");
    let client = server.embedder().expect("client");
    let scores = evaluate_outliers(&reference_dir().join("outlier_eval.json"), &client).unwrap();
    println!("threshold  precision (reference)  recall (reference)  lists equal to reference");
    for s in &scores {
        println!(
            "{:>9}  {:.4} ({:.4})        {:.4} ({:.4})     {}/{}",
            s.threshold,
            s.precision,
            s.reference_precision,
            s.recall,
            s.reference_recall,
            s.lists_matching_reference,
            s.lists
        );
    }
    for s in &scores {
        // Counts, not the rounded ratios: tp >= and fp <= the reference's means precision and
        // recall are both at least the reference's.
        assert!(
            s.tp >= s.reference_tp,
            "threshold {}: tp {} < {}",
            s.threshold,
            s.tp,
            s.reference_tp
        );
        assert!(
            s.fp <= s.reference_fp,
            "threshold {}: fp {} > {}",
            s.threshold,
            s.fp,
            s.reference_fp
        );
        assert!(
            s.fn_ <= s.reference_fn,
            "threshold {}: fn {} > {}",
            s.threshold,
            s.fn_,
            s.reference_fn
        );
    }
}

#[test]
fn arrangement_beats_the_reference_ari_with_wordnet_names() {
    let server = EmbedServer::uncached().expect("embed-server starts");
    let client = server.embedder().expect("client");
    let wordnet = WordNet::locate(None).expect("WordNet 3.0");
    let quality = evaluate_arrangement(
        &reference_dir().join("arrangement_eval.json"),
        &client,
        &wordnet,
        &ArrangeParams::default(),
    )
    .unwrap();
    println!("items groups leftovers  ARI    names-are-hypernyms");
    for l in &quality.lists {
        println!(
            "{:>5} {:>6} {:>9}  {:.3}  {:.2}  {:?}",
            l.items, l.groups, l.leftovers, l.ari_singletons, l.name_is_hypernym, l.names
        );
    }
    println!(
        "mean ARI (leftovers as singletons) {:.4} (reference {:.4})",
        quality.mean_ari_singletons, quality.reference_mean_ari_singletons
    );
    println!(
        "name is a WordNet hypernym of most members: mean {:.4} (reference {:.4}), pooled {:.4} \
         (reference {:.4})",
        quality.mean_name_is_hypernym,
        quality.reference_mean_name_is_hypernym,
        quality.pooled_name_is_hypernym,
        quality.reference_pooled_name_is_hypernym
    );
    assert!(
        quality.mean_ari_singletons >= quality.reference_mean_ari_singletons,
        "mean ARI {:.4} below the reference {:.4}",
        quality.mean_ari_singletons,
        quality.reference_mean_ari_singletons
    );
    assert!(quality.lists.iter().all(|l| l.groups >= 2), "every list forms groups");
}
