//! ImageNet, COCO and Open Images through the whole pipeline (load, prune, shape, render) on
//! their real files, with and without smart mode for every preset: no label is lost, and the
//! structure is the dataset's.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use wildcards_core::compare::{compare_files, compare_trees};
use wildcards_core::datasets::{coco, imagenet, openimages};
use wildcards_core::generate::{generate, load_dataset, GenerateContext, Generated};
use wildcards_core::output::{from_yaml, write_atomic};
use wildcards_core::params::{Dataset, ImagenetFilter, Params, Preset};
use wildcards_core::stats::EventKind;
use wildcards_core::taxonomy::TaxonomyNode;
use wildcards_core::wordnet::{Synset, WordNet};

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
    let plain: BTreeSet<String> = list
        .iter()
        .map(|o| wordnet().synset(&format!("n{o:08}")).unwrap().primary_lemma().to_lowercase())
        .collect();
    // Three pairs of classes share a plain lower-cased name: "crane" (bird, machine),
    // "maillot" (two garments), "cardigan" (the sweater and the corgi "Cardigan").
    assert_eq!(plain.len(), 997);
    for mode in modes() {
        // Strict naming (the default) tells them apart: 1,000 classes, 1,000 items.
        let params = Params { filter: Some(ImagenetFilter::OneK), ..mode.clone() };
        let g = run(Dataset::Imagenet, params.clone());
        assert_eq!(items(&g).len(), 1000, "{params:?}");
        for twin in ["crane (wading bird)", "crane (lifting device)", "maillot", "maillot (tights)"]
        {
            assert!(items(&g).contains(twin), "{params:?}: {twin}");
        }
        assert!(items(&g).contains("cardigan") && items(&g).contains("cardigan welsh corgi"));
        assert_eq!(g.tree.name.to_lowercase(), "entity");
        check_round_trip(&g);
        check_names_mean_their_synsets(&g, &params);

        let params = Params { strict: Some(false), ..params };
        let g = run(Dataset::Imagenet, params.clone());
        assert_same_set(&items(&g), &plain, &format!("{params:?}"));
    }
}

/// The synsets each name of a loader's tree stands for (names lower-cased, as in a skeleton).
fn synsets_by_name(tree: &TaxonomyNode) -> HashMap<String, BTreeSet<String>> {
    let mut out: HashMap<String, BTreeSet<String>> = HashMap::new();
    tree.walk(&mut |n, _| {
        if let Some(wnid) = &n.metadata.wnid {
            out.entry(n.name.to_lowercase()).or_default().insert(wnid.clone());
        }
    });
    out
}

/// Checks the strict naming of an ImageNet skeleton: no two synsets share an item or key
/// name, and every renamed item means its synset — a lemma whose first sense it is, or the
/// documented `name (hint)` with its plain name and the name of one of its hypernyms.
fn check_names_mean_their_synsets(g: &Generated, params: &Params) {
    let ctx = GenerateContext::new(data_dir(), wordnet());
    let source = load_dataset(&params.resolve(Dataset::Imagenet), &ctx).unwrap();
    let by_name = synsets_by_name(&source);
    let wn = wordnet();
    let mut renamed = 0;
    g.tree.walk(&mut |n, _| {
        if let Some(wnids) = by_name.get(&n.name.to_lowercase()) {
            assert_eq!(wnids.len(), 1, "{params:?}: key {} names {wnids:?}", n.name);
        }
        for item in &n.items {
            let wnids = &by_name[item];
            assert_eq!(wnids.len(), 1, "{params:?}: {item} names {wnids:?}");
            let s = wn.synset(wnids.first().unwrap()).unwrap();
            let plain = s.primary_lemma().to_lowercase();
            if *item == plain {
                continue;
            }
            renamed += 1;
            match item.strip_suffix(')').and_then(|t| t.split_once(" (")) {
                None => assert_eq!(wn.synsets_for(item)[0].offset, s.offset, "{item}"),
                Some((word, hint)) => {
                    assert_eq!(word, plain, "{item}");
                    let hypernyms: Vec<String> =
                        wn.ancestors(s).iter().map(|a| a.primary_lemma().to_lowercase()).collect();
                    assert!(hypernyms.iter().any(|h| h == hint), "{item}: {hypernyms:?}");
                }
            }
        }
    });
    assert!(renamed > 0, "{params:?}");
}

#[test]
fn imagenet_21k_smart_keeps_every_class_reachable_from_the_root() {
    let wn = wordnet();
    let list = imagenet::read_class_list(&wn, &imagenet::FILE_21K.path_in(&data_dir())).unwrap();
    let entity = wn.synset_by_name("entity.n.01").unwrap();
    // Reachable through class links (ImageNet follows no instance links): all but 4 of the
    // 21,843: the sun, Munro (Saki), Genet and Stoker are WordNet instances.
    let below_class_links = |s: &Synset| {
        let mut todo = vec![s];
        let mut seen = HashSet::new();
        while let Some(x) = todo.pop() {
            if x.offset == entity.offset {
                return true;
            }
            todo.extend(wn.class_hypernyms(x).into_iter().filter(|h| seen.insert(h.offset)));
        }
        false
    };
    let reachable =
        list.iter().filter(|o| below_class_links(wn.synset(&format!("n{o:08}")).unwrap())).count();
    assert_eq!((list.len(), reachable), (21_843, 21_839));
    let params = Params {
        filter: Some(ImagenetFilter::TwentyOneK),
        smart: Some(true),
        ..Default::default()
    };
    let g = run(Dataset::Imagenet, params.clone());
    assert_eq!(items(&g).len(), reachable);
    check_names_mean_their_synsets(&g, &params);
}

#[test]
fn imagenet_analysis_counts_the_renamed_labels() {
    let params =
        Params { filter: Some(ImagenetFilter::OneK), smart: Some(true), ..Default::default() };
    let g = run(Dataset::Imagenet, params);
    let event = g.events.iter().find(|e| e.kind == EventKind::Renaming).expect("a renaming event");
    let labels = event.data["labels"].as_u64().unwrap();
    assert!(labels > 100 && labels < 300, "{labels}");
    assert!(event.message.starts_with(&format!("renamed for ambiguity: {labels} labels")));
    let examples = event.data["examples"].as_array().unwrap();
    assert_eq!(examples.len(), imagenet::RenameCount::EXAMPLES);
    // Plain names are not renamed, nor is anything with --strict false.
    let lax =
        Params { filter: Some(ImagenetFilter::OneK), strict: Some(false), ..Default::default() };
    assert!(!run(Dataset::Imagenet, lax).events.iter().any(|e| e.kind == EventKind::Renaming));
}

#[test]
fn imagenet_default_hierarchy_generates_in_every_mode() {
    let mut counts = Vec::new();
    for mode in modes() {
        let params = Params { root: Some("animal.n.01".into()), ..mode.clone() };
        let g = run(Dataset::Imagenet, params.clone());
        // Strict naming keeps every synset below animal: 2,943 distinct labels (the
        // pruning that strict did before kept 1,763).
        assert_eq!(items(&g).len(), 2943, "{mode:?}");
        assert!(items(&g).contains("golden retriever"), "{mode:?}");
        check_round_trip(&g);
        check_names_mean_their_synsets(&g, &params);
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
        // The one note: the test data's boxable list is not the published v5 file.
        let notes: Vec<&str> = g
            .events
            .iter()
            .filter(|e| e.kind == EventKind::Note)
            .map(|e| e.message.as_str())
            .collect();
        let [note] = &notes[..] else { panic!("{notes:?}") };
        assert!(note.contains("not the published class-descriptions-boxable.csv"), "{note}");
    }
}

/// FNV-1a (64 bit) of a text: a stable digest to pin outputs with (std's hasher may change
/// between Rust releases).
fn fnv1a(s: &str) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// COCO's and Open Images' labels are curated, so strict naming leaves them as they are: the
/// rendered outputs in every mode are byte for byte those of the commit before strict naming
/// (digests taken there). A deliberate change to these outputs updates the digests.
#[test]
fn coco_and_openimages_outputs_are_unchanged_by_strict_naming() {
    const COCO: [u64; 7] = [
        0x40c6e8251f30b6ed,
        0x40c6e8251f30b6ed,
        0x40c6e8251f30b6ed,
        0x40c6e8251f30b6ed,
        0x56bf5a2721e86485,
        0xedf284911863daf7,
        0xcb147baf4713a5da,
    ];
    const OPENIMAGES_BBOX: [u64; 7] = [
        0x9044503dac9915f4,
        0x4cd4b90c9ce048a6,
        0x7b0a2ac45f09e7af,
        0xd1240d7a904ed5de,
        0x4af46f5bcd82ed51,
        0xbaf3c95b6a23dbe9,
        0x4d4fdb27efeb60f9,
    ];
    for (i, mode) in modes().into_iter().enumerate() {
        let coco = run(Dataset::Coco, mode.clone());
        assert_eq!(fnv1a(&coco.text), COCO[i], "coco {mode:?}:\n{}", coco.text);
        let oi = run(Dataset::Openimages, Params { bbox_only: Some(true), ..mode.clone() });
        assert_eq!(fnv1a(&oi.text), OPENIMAGES_BBOX[i], "openimages {mode:?}");
        for g in [&coco, &oi] {
            assert!(!g.events.iter().any(|e| e.kind == EventKind::Renaming));
        }
    }
}

/// `--drop-secondary-senses` is what strict mode did before it named secondary senses: the
/// outputs are byte for byte those of that commit (digests taken there).
#[test]
fn drop_secondary_senses_reproduces_the_old_strict_mode() {
    let smart = Params { smart: Some(true), ..Default::default() };
    let cases = [
        (Params::default(), 0xe035a3841c80ac72, 3923),
        (smart.clone(), 0x78b1d1174005112b, 3918),
        (
            Params { filter: Some(ImagenetFilter::OneK), ..Default::default() },
            0x02afade5b2134142,
            11,
        ),
        (Params { root: Some("animal.n.01".into()), ..smart }, 0x40fedb18757e78a4, 1790),
    ];
    for (params, digest, items) in cases {
        let params = Params { drop_secondary_senses: Some(true), ..params };
        let g = run(Dataset::Imagenet, params.clone());
        assert_eq!((fnv1a(&g.text), g.stats.items), (digest, items), "{params:?}");
    }
}

#[test]
fn openimages_full_mode_without_v7_notes_the_fallback() {
    let g = run(Dataset::Openimages, Params::default());
    let notes = g.events.iter().filter(|e| e.kind == EventKind::Note);
    let note = notes.map(|e| &e.message).find(|m| m.contains("full label mode"));
    let note = note.expect("a note event on the fallback");
    assert!(note.contains("oidv7-class-descriptions.csv"), "{note}");
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
