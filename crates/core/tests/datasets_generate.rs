//! ImageNet, COCO and Open Images through the whole pipeline (load, prune, shape, render) on
//! their real files, with and without smart mode for every preset: no label is lost, and the
//! structure is the dataset's.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use wildcards_core::compare::{compare_files, compare_trees};
use wildcards_core::datasets::{coco, imagenet, openimages};
use wildcards_core::generate::{generate, GenerateContext, Generated};
use wildcards_core::output::{from_yaml, write_atomic};
use wildcards_core::params::{Dataset, ImagenetFilter, Params, Preset};
use wildcards_core::wordnet::WordNet;

fn wordnet() -> Arc<WordNet> {
    static WN: OnceLock<Arc<WordNet>> = OnceLock::new();
    WN.get_or_init(|| Arc::new(WordNet::locate(None).expect("WordNet 3.0 (wordnet-base)"))).clone()
}

fn data_dir() -> PathBuf {
    std::env::var_os("WILDCARDS_DATA_DIR").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"))
    })
}

fn run(dataset: Dataset, params: Params) -> Generated {
    let cfg = params.resolve(dataset);
    let ctx = GenerateContext::new(data_dir(), wordnet());
    generate(&cfg, &ctx).unwrap_or_else(|e| panic!("{dataset} {params:?}: {e:#}"))
}

/// The modes every dataset must generate in: depth mode, and smart mode with each preset.
fn modes() -> Vec<Params> {
    let mut out = vec![Params::default()];
    out.extend(Preset::ALL.iter().map(|p| Params {
        smart: Some(true),
        preset: Some(*p),
        ..Default::default()
    }));
    out
}

fn items(g: &Generated) -> BTreeSet<String> {
    g.tree.all_items().into_iter().collect()
}

/// Checks that the output is YAML the reader takes back with the same items.
fn check_round_trip(g: &Generated) {
    let back = from_yaml(&g.text).expect("output parses");
    let back_items: BTreeSet<String> = back.all_items().into_iter().collect();
    assert_eq!(back_items, items(g));
}

fn assert_same_set(got: &BTreeSet<String>, expected: &BTreeSet<String>, what: &str) {
    let missing: Vec<_> = expected.difference(got).collect();
    let extra: Vec<_> = got.difference(expected).collect();
    assert!(missing.is_empty() && extra.is_empty(), "{what}: missing {missing:?}, extra {extra:?}");
}

#[test]
fn imagenet_1k_yields_exactly_the_1000_classes_in_every_mode() {
    let list =
        imagenet::read_class_list(&wordnet(), &imagenet::FILE_1K.path_in(&data_dir())).unwrap();
    assert_eq!(list.len(), 1000);
    let expected: BTreeSet<String> = list
        .iter()
        .map(|o| wordnet().synset(&format!("n{o:08}")).unwrap().primary_lemma().to_lowercase())
        .collect();
    // Three pairs of classes share a lower-cased name: "crane" (bird, machine), "maillot"
    // (two garments), "cardigan" (the sweater and the corgi "Cardigan").
    assert_eq!(expected.len(), 997);
    for mode in modes() {
        let params = Params { filter: Some(ImagenetFilter::OneK), strict: Some(false), ..mode };
        let g = run(Dataset::Imagenet, params.clone());
        assert_same_set(&items(&g), &expected, &format!("{params:?}"));
        assert_eq!(g.tree.name.to_lowercase(), "entity");
        check_round_trip(&g);
    }
}

#[test]
fn imagenet_default_hierarchy_generates_in_every_mode() {
    let mut counts = Vec::new();
    for mode in modes() {
        let g = run(Dataset::Imagenet, Params { root: Some("animal.n.01".into()), ..mode.clone() });
        // Strict mode (the default) keeps only primary senses: 1,790 labels below animal.
        assert!(g.stats.items > 1500, "{mode:?}: {} items", g.stats.items);
        assert!(items(&g).contains("golden retriever"), "{mode:?}");
        check_round_trip(&g);
        counts.push(g.stats.categories);
    }
    // Smart presets from ultra-detailed to ultra-flat keep ever fewer categories.
    let smart = &counts[1..];
    assert!(smart.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");
    assert!(smart[0] > smart[5], "{counts:?}");
}

#[test]
fn coco_yields_80_items_under_12_categories() {
    let expected: BTreeSet<String> = coco::CATEGORIES.iter().map(|c| c.0.to_string()).collect();
    let g = run(Dataset::Coco, Params::default());
    assert_eq!(
        g.tree.children.len(),
        12,
        "{:?}",
        g.tree.children.iter().map(|c| &c.name).collect::<Vec<_>>()
    );
    assert!(g.tree.children.iter().all(|c| c.children.is_empty() && !c.items.is_empty()));
    assert_eq!(g.stats.items, 80);
    assert_same_set(&items(&g), &expected, "depth mode");
    let animal = g.tree.children.iter().find(|c| c.name == "Animal").expect("Title Case category");
    assert_eq!(
        animal.metadata.gloss.as_deref(),
        Some("a living organism characterized by voluntary movement")
    );
    assert!(
        g.text.contains(
            "Animal: # instruction: a living organism characterized by voluntary movement"
        ),
        "{}",
        g.text
    );
    for mode in modes() {
        let g = run(Dataset::Coco, mode.clone());
        assert_same_set(&items(&g), &expected, &format!("{mode:?}"));
        check_round_trip(&g);
    }
}

#[test]
fn openimages_bbox_yields_every_boxable_class_in_every_mode() {
    let names =
        openimages::read_class_descriptions(&openimages::BOXABLE.path_in(&data_dir())).unwrap();
    let expected: BTreeSet<String> = names.iter().map(|(_, n)| n.to_lowercase()).collect();
    assert_eq!(expected.len(), 601);
    for mode in modes() {
        let g = run(Dataset::Openimages, Params { bbox_only: Some(true), ..mode.clone() });
        assert_same_set(&items(&g), &expected, &format!("{mode:?}"));
        check_round_trip(&g);
        assert!(
            !g.events.iter().any(|e| e.kind == wildcards_core::stats::EventKind::Note),
            "{:?}",
            g.events
        );
    }
}

#[test]
fn openimages_full_mode_without_v7_notes_the_fallback() {
    let g = run(Dataset::Openimages, Params::default());
    let note = g
        .events
        .iter()
        .find(|e| e.kind == wildcards_core::stats::EventKind::Note)
        .expect("a note event");
    assert!(note.message.contains("oidv7-class-descriptions.csv"), "{}", note.message);
    assert_eq!(items(&g).len(), 601);
}

#[test]
fn compare_a_file_with_itself_and_across_presets() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, g: &Generated| {
        let path = dir.path().join(name);
        write_atomic(&path, g.text.as_bytes()).unwrap();
        path
    };
    let smart = |p: Preset| Params {
        smart: Some(true),
        preset: Some(p),
        bbox_only: Some(true),
        ..Default::default()
    };
    let detailed = run(Dataset::Openimages, smart(Preset::Detailed));
    let flat = run(Dataset::Openimages, smart(Preset::UltraFlat));
    let a = write("a.yaml", &detailed);
    let b = write("b.yaml", &flat);
    let same = compare_files(&a, &a).unwrap();
    assert_eq!((same.jaccard, same.ari), (1.0, Some(1.0)));
    assert_eq!(same.common_items, 601);
    let c = compare_files(&a, &b).unwrap();
    assert_eq!(c.jaccard, 1.0, "same labels, different grouping");
    assert!(c.ari.is_some_and(|ari| ari < 1.0 && ari > 0.0), "{c:?}");
    assert_eq!(compare_trees(&detailed.tree, &flat.tree), c, "the reader keeps what compare needs");
}
