//! Open Images: the bounding-box class hierarchy, and optionally the full V7 label list.
//!
//! **Box mode** (`bbox_only`): `bbox_labels_600_hierarchy.json` names the boxable classes by
//! id and nests them with `Subcategory` lists; `class-descriptions-boxable.csv` gives their
//! display names. `Part` lists (wheel of a car, ...) are ignored, as the original tool does:
//! a part is not a kind of its parent. A class with sub-classes ("Animal") is a category that
//! keeps its own name as a direct item, so every boxable class ends up as an item.
//!
//! **Full mode** (default): the V7 image-level label list `oidv7-class-descriptions.csv`
//! (about 20k labels) when the data dir has it: labels of the box hierarchy stay there, the
//! others are placed by name through WordNet — under the nearest box category whose synset
//! is one of their hypernyms, else along their WordNet hypernym path under "More labels",
//! else (no synset) under "Unmatched labels". The file is large and optional, so it is not
//! downloaded; without it the loader falls back to the box hierarchy and says so in a note.
//!
//! Instructions are WordNet glosses found by name ([`primary_synset`]), else "Items related
//! to <name>".

use std::collections::{HashMap, HashSet};
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use super::download::{self, DataFile, Fetch, Published};
use crate::params::Config;
use crate::taxonomy::{NodeMeta, TaxonomyNode};
use crate::wordnet::{Synset, WordNet};

/// The box hierarchy.
pub const HIERARCHY: DataFile = DataFile {
    folder: "openimages",
    name: "bbox_labels_600_hierarchy.json",
    url: "https://storage.googleapis.com/openimages/2018_04/bbox_labels_600_hierarchy.json",
    published: None,
};

/// Display names of the boxable classes.
pub const BOXABLE: DataFile = DataFile {
    folder: "openimages",
    name: "class-descriptions-boxable.csv",
    url: "https://storage.googleapis.com/openimages/v5/class-descriptions-boxable.csv",
    published: Some(Published {
        bytes: 12011,
        sha256: "2fa47fb1b87e71c90b9fbee2dc1184eb8c59601bb811ea4424b200653cedff8e",
    }),
};

/// The V7 image-level label list (used when present; see the module docs).
pub const V7_LABELS: DataFile = DataFile {
    folder: "openimages",
    name: "oidv7-class-descriptions.csv",
    url: "https://storage.googleapis.com/openimages/v7/oidv7-class-descriptions.csv",
    published: None,
};

/// Name of the top node.
pub const ROOT_NAME: &str = "Open Images";
/// Category of full-mode labels placed by their WordNet hypernyms.
pub const MORE_LABELS: &str = "More labels";
/// Category of full-mode labels WordNet does not know.
pub const UNMATCHED_LABELS: &str = "Unmatched labels";

/// A loaded tree and what the user should know about how it was made.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub tree: TaxonomyNode,
    /// Human-readable notes (fallbacks taken, labels without names, ...).
    pub notes: Vec<String>,
}

/// One node of the hierarchy JSON.
#[derive(Debug, Deserialize)]
struct JsonNode {
    #[serde(rename = "LabelName")]
    label: String,
    #[serde(rename = "Subcategory", default)]
    subcategories: Vec<JsonNode>,
}

/// Loads the Open Images tree for `cfg.bbox_only`, fetching the box files when missing.
pub fn load(wn: &WordNet, cfg: &Config, data_dir: &Path, fetch: Fetch) -> Result<Loaded> {
    let mut notes = Vec::new();
    let hierarchy = download::ensure(data_dir, &HIERARCHY, fetch, &mut notes)?;
    let boxable = download::ensure(data_dir, &BOXABLE, fetch, &mut notes)?;
    let names = read_class_descriptions(&boxable)?;
    let mut tree = box_tree(wn, &read_hierarchy(&hierarchy)?, &names, &mut notes);
    if !cfg.bbox_only {
        let v7 = V7_LABELS.path_in(data_dir);
        if v7.is_file() {
            place_labels(wn, &mut tree, &read_class_descriptions(&v7)?, &mut notes);
        } else {
            notes.push(format!(
                "full label mode: {} is not in the data dir, so only the {} boxable classes are \
                 used (as with --bbox-only); for the ~20k V7 labels download {} to that path",
                v7.display(),
                names.len(),
                V7_LABELS.url
            ));
        }
    }
    for n in &notes {
        tracing::warn!("{n}");
    }
    Ok(Loaded { tree, notes })
}

/// Reads a class-description CSV (`label id,display name`, an optional header row) into
/// (id, name) pairs in file order. A row without two fields is an error naming the line.
pub fn read_class_descriptions(path: &Path) -> Result<Vec<(String, String)>> {
    let mut reader =
        csv::ReaderBuilder::new().has_headers(false).flexible(true).from_path(path).with_context(
            || format!("cannot read the Open Images class list {}", path.display()),
        )?;
    let mut out = Vec::new();
    for (i, row) in reader.records().enumerate() {
        let row = row.with_context(|| {
            format!(
                "{}:{}: malformed CSV; delete the file so it is downloaded again",
                path.display(),
                i + 1
            )
        })?;
        let (Some(id), Some(name)) = (row.get(0), row.get(1)) else {
            bail!(
                "{}:{}: expected `label id,display name`; fix the line or delete the file so it is \
                 downloaded again",
                path.display(),
                i + 1
            );
        };
        let (id, name) = (id.trim(), name.trim());
        let is_header = i == 0 && !id.starts_with('/');
        if !is_header && !id.is_empty() && !name.is_empty() {
            out.push((id.to_string(), name.to_string()));
        }
    }
    if out.is_empty() {
        bail!("{}: no classes found; delete the file so it is downloaded again", path.display());
    }
    Ok(out)
}

fn read_hierarchy(path: &Path) -> Result<JsonNode> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the Open Images hierarchy {}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}: line {}: not an Open Images hierarchy ({e}); delete the file so it is downloaded \
             again",
            path.display(),
            e.line()
        )
    })
}

/// The synset a class name most likely means: the noun senses of the name (through morphy,
/// `/` read as a space) ranked as the original tool does — concrete lexicographer files
/// (food, animal, plant, artifact, object, body, substance) first, people last, WordNet's
/// sense order within a rank.
pub fn primary_synset<'w>(wn: &'w WordNet, name: &str) -> Option<&'w Synset> {
    const CONCRETE: [&str; 7] = [
        "noun.food",
        "noun.animal",
        "noun.plant",
        "noun.artifact",
        "noun.object",
        "noun.body",
        "noun.substance",
    ];
    let rank = |s: &Synset| match &*s.lexname {
        l if CONCRETE.contains(&l) => 0,
        "noun.person" => 2,
        _ => 1,
    };
    let query = name.to_lowercase().replace('/', " ");
    wn.synsets_for(&query).into_iter().min_by_key(|s| rank(s))
}

/// A node for a class name with its WordNet wnid and gloss (when WordNet knows the name).
fn class_node(wn: &WordNet, name: &str, depth: usize) -> TaxonomyNode {
    let synset = primary_synset(wn, name);
    TaxonomyNode {
        name: name.to_string(),
        metadata: NodeMeta {
            wnid: synset.map(|s| s.wnid()),
            gloss: Some(
                synset
                    .map(|s| s.gloss.clone())
                    .unwrap_or_else(|| format!("Items related to {name}")),
            ),
            depth,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Builds the box tree below [`ROOT_NAME`]. A label id without a display name keeps its id as
/// name (noted).
fn box_tree(
    wn: &WordNet,
    json: &JsonNode,
    names: &[(String, String)],
    notes: &mut Vec<String>,
) -> TaxonomyNode {
    let names: HashMap<&str, &str> = names.iter().map(|(i, n)| (i.as_str(), n.as_str())).collect();
    let mut nameless = Vec::new();
    let mut root = TaxonomyNode::new(ROOT_NAME);
    root.metadata.gloss = Some("object classes of the Open Images dataset".into());
    root.metadata.is_root = true;
    root.children =
        json.subcategories.iter().map(|c| box_node(wn, c, 0, &names, &mut nameless)).collect();
    if !nameless.is_empty() {
        nameless.sort();
        nameless.dedup();
        notes.push(format!(
            "{} hierarchy labels have no display name in {} and are named by their id: {}",
            nameless.len(),
            BOXABLE.name,
            nameless.join(", ")
        ));
    }
    root
}

fn box_node(
    wn: &WordNet,
    json: &JsonNode,
    depth: usize,
    names: &HashMap<&str, &str>,
    nameless: &mut Vec<String>,
) -> TaxonomyNode {
    let name = names.get(json.label.as_str()).copied().unwrap_or_else(|| {
        nameless.push(json.label.clone());
        &json.label
    });
    let mut node = class_node(wn, name, depth);
    node.children =
        json.subcategories.iter().map(|c| box_node(wn, c, depth + 1, names, nameless)).collect();
    if !node.children.is_empty() {
        node.items.push(name.to_string());
    }
    node
}

/// Full mode: adds the labels that are not in the box tree (by name, case-insensitive).
fn place_labels(
    wn: &WordNet,
    tree: &mut TaxonomyNode,
    labels: &[(String, String)],
    notes: &mut Vec<String>,
) {
    let mut present: HashSet<String> = HashSet::new();
    tree.walk(&mut |n, _| {
        present.insert(n.name.to_lowercase());
    });
    // Box categories by wnid, as child-index paths from the root (first occurrence wins).
    let mut box_paths: HashMap<String, Vec<usize>> = HashMap::new();
    collect_box_paths(tree, &mut Vec::new(), &mut box_paths);

    let (mut in_box, mut by_hypernym, mut unmatched) = (0usize, 0usize, Vec::new());
    let mut more = TaxonomyNode::new(MORE_LABELS);
    more.metadata.gloss =
        Some("Open Images labels outside the box hierarchy, by WordNet hypernym".into());
    more.metadata.is_root = true;
    for (_, name) in labels {
        if !present.insert(name.to_lowercase()) {
            continue;
        }
        let Some(synset) = primary_synset(wn, name) else {
            unmatched.push(name.clone());
            continue;
        };
        let mut leaf = class_node(wn, name, 0);
        leaf.metadata.wnid = Some(synset.wnid());
        match nearest_box_ancestor(wn, synset, &box_paths) {
            Some(path) => {
                let parent = node_at(tree, path);
                if parent.children.is_empty() {
                    // The label it was becomes a direct item of the new category.
                    parent.items.push(parent.name.clone());
                }
                leaf.metadata.depth = parent.metadata.depth + 1;
                parent.children.push(leaf);
                in_box += 1;
            }
            None => {
                add_by_hypernym_path(wn, &mut more, synset, leaf);
                by_hypernym += 1;
            }
        }
    }
    if !more.children.is_empty() {
        tree.children.push(more);
    }
    if !unmatched.is_empty() {
        let mut node = TaxonomyNode::new(UNMATCHED_LABELS);
        node.metadata.gloss = Some("Open Images labels that WordNet does not know".into());
        node.metadata.is_root = true;
        node.children = unmatched.iter().map(|n| TaxonomyNode::new(n.clone())).collect();
        for c in &mut node.children {
            c.metadata.depth = 1;
            c.metadata.gloss = Some(format!("Items related to {}", c.name));
        }
        tree.children.push(node);
    }
    notes.push(format!(
        "full label mode: {} labels added to the box hierarchy: {in_box} under a box category, \
         {by_hypernym} by WordNet hypernyms under \"{MORE_LABELS}\", {} without a WordNet synset \
         under \"{UNMATCHED_LABELS}\"",
        in_box + by_hypernym + unmatched.len(),
        unmatched.len()
    ));
}

fn collect_box_paths(
    node: &TaxonomyNode,
    path: &mut Vec<usize>,
    out: &mut HashMap<String, Vec<usize>>,
) {
    for (i, c) in node.children.iter().enumerate() {
        path.push(i);
        if let Some(w) = &c.metadata.wnid {
            out.entry(w.clone()).or_insert_with(|| path.clone());
        }
        collect_box_paths(c, path, out);
        path.pop();
    }
}

fn node_at<'t>(mut node: &'t mut TaxonomyNode, path: &[usize]) -> &'t mut TaxonomyNode {
    for &i in path {
        node = &mut node.children[i];
    }
    node
}

/// The box category whose synset is the closest hypernym of `s` (breadth first).
fn nearest_box_ancestor<'p>(
    wn: &WordNet,
    s: &Synset,
    box_paths: &'p HashMap<String, Vec<usize>>,
) -> Option<&'p Vec<usize>> {
    let mut frontier = wn.hypernyms(s);
    let mut seen = HashSet::new();
    while !frontier.is_empty() {
        if let Some(p) = frontier.iter().find_map(|h| box_paths.get(&h.wnid())) {
            return Some(p);
        }
        let next: Vec<&Synset> = frontier
            .iter()
            .flat_map(|h| wn.hypernyms(h))
            .filter(|h| seen.insert(h.offset))
            .collect();
        frontier = next;
    }
    None
}

/// Files `leaf` under `more` along the shortest hypernym path from the root to `s`.
fn add_by_hypernym_path(wn: &WordNet, more: &mut TaxonomyNode, s: &Synset, mut leaf: TaxonomyNode) {
    let mut path = Vec::new();
    let mut cur = s;
    while let Some(up) = wn.hypernyms(cur).into_iter().min_by_key(|h| wn.min_depth(h)) {
        path.push(up);
        cur = up;
    }
    path.reverse();
    let mut node = more;
    for (depth, h) in path.into_iter().enumerate() {
        let wnid = h.wnid();
        let pos = match node.children.iter().position(|c| c.metadata.wnid.as_deref() == Some(&wnid))
        {
            Some(p) => p,
            None => {
                node.children.push(TaxonomyNode {
                    name: h.primary_lemma(),
                    metadata: NodeMeta {
                        wnid: Some(wnid),
                        gloss: Some(h.gloss.clone()),
                        depth: depth + 1,
                        ..Default::default()
                    },
                    ..Default::default()
                });
                node.children.len() - 1
            }
        };
        node = &mut node.children[pos];
    }
    leaf.metadata.depth = node.metadata.depth + 1;
    if node.children.iter().all(|c| c.name != leaf.name) {
        node.children.push(leaf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::{Dataset, Params};
    use crate::test_support::{data_dir, labels, wn};
    use std::collections::BTreeSet;

    fn cfg(bbox_only: bool) -> Config {
        Params { bbox_only: Some(bbox_only), ..Default::default() }.resolve(Dataset::Openimages)
    }

    fn find<'t>(tree: &'t TaxonomyNode, name: &str) -> Option<&'t TaxonomyNode> {
        if tree.name == name {
            return Some(tree);
        }
        tree.children.iter().find_map(|c| find(c, name))
    }

    #[test]
    fn bbox_mode_yields_every_boxable_class() {
        let loaded = load(wn(), &cfg(true), &data_dir(), None).unwrap();
        // The test data's boxable list is a third-party copy of an earlier release (11,255
        // bytes), not the published v5 file the URL names (12,011 bytes): said, and used.
        let [note] = &loaded.notes[..] else { panic!("one note: {:?}", loaded.notes) };
        assert!(note.contains("is not the published class-descriptions-boxable.csv"), "{note}");
        assert!(note.contains("11255 bytes where the published file has 12011"), "{note}");
        let names = read_class_descriptions(&BOXABLE.path_in(&data_dir())).unwrap();
        // Our copy of the boxable list has 601 rows (the "600 classes" of the release + 1).
        assert_eq!(names.len(), 601);
        let expected: BTreeSet<String> = names.iter().map(|(_, n)| n.clone()).collect();
        assert_eq!(labels(&loaded.tree), expected);
        let tree = &loaded.tree;
        assert_eq!(tree.name, ROOT_NAME);
        let animal = find(tree, "Animal").unwrap();
        assert_eq!(animal.items, ["Animal"], "a class with sub-classes keeps itself");
        assert_eq!(animal.metadata.depth, 0);
        assert_eq!(
            animal.metadata.gloss.as_deref(),
            Some("a living organism characterized by voluntary movement")
        );
        let carnivore = find(animal, "Carnivore").unwrap();
        assert!(find(carnivore, "Dog").is_some());
        assert_eq!(find(tree, "Dog").unwrap().metadata.wnid.as_deref(), Some("n02084071"));
        // Parts are ignored: "Bicycle wheel" is a Part of Bicycle, not a kind of bicycle.
        let bicycle = find(tree, "Bicycle").unwrap();
        assert!(bicycle.children.is_empty() && bicycle.items.is_empty(), "{bicycle:?}");
        assert!(find(tree, "Bicycle wheel").is_some(), "listed as a subcategory elsewhere");
    }

    #[test]
    fn full_mode_without_v7_falls_back_with_a_note() {
        let loaded = load(wn(), &cfg(false), &data_dir(), None).unwrap();
        let notes = own_notes(&loaded);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("oidv7-class-descriptions.csv"), "{}", notes[0]);
        assert!(notes[0].contains(V7_LABELS.url));
        assert_eq!(labels(&loaded.tree).len(), 601);
    }

    #[test]
    fn full_mode_places_v7_labels() {
        let dir = tempfile::tempdir().unwrap();
        let oi = dir.path().join("openimages");
        std::fs::create_dir_all(&oi).unwrap();
        for f in [&HIERARCHY, &BOXABLE] {
            std::fs::copy(f.path_in(&data_dir()), oi.join(f.name)).unwrap();
        }
        std::fs::write(
            oi.join(V7_LABELS.name),
            "LabelName,DisplayName\n/m/0bt9lr,Dog\n/m/x1,Beagle\n/m/x2,Quasar\n/m/x3,Zzzqx widget\n\
             /m/x4,\"Poodle, toy\"\n",
        )
        .unwrap();
        let loaded = load(wn(), &cfg(false), dir.path(), None).unwrap();
        let tree = &loaded.tree;
        // Beagle goes under the box category Dog (its nearest box hypernym).
        let dog = find(tree, "Dog").unwrap();
        assert!(dog.children.iter().any(|c| c.name == "Beagle"), "{:?}", dog.children);
        // Quasar has no box ancestor: filed along its WordNet hypernyms under "More labels".
        let more = find(tree, MORE_LABELS).unwrap();
        let quasar = find(more, "Quasar").unwrap();
        assert!(quasar.metadata.depth > 2);
        assert!(find(tree, UNMATCHED_LABELS)
            .unwrap()
            .children
            .iter()
            .any(|c| c.name == "Zzzqx widget"));
        assert_eq!(labels(tree).len(), 601 + 4, "Dog is not added twice");
        let notes = own_notes(&loaded);
        assert!(notes[0].contains("4 labels added"), "{notes:?}");
    }

    /// The loader's notes but the one on the test data's boxable file (not the published v5).
    fn own_notes(loaded: &Loaded) -> Vec<&str> {
        let published = |n: &&str| n.contains("not the published class-descriptions-boxable");
        loaded.notes.iter().map(String::as_str).filter(|n| !published(n)).collect()
    }

    #[test]
    fn primary_synset_prefers_concrete_senses() {
        assert_eq!(&*primary_synset(wn(), "Orange").unwrap().lexname, "noun.food");
        assert_eq!(primary_synset(wn(), "Dog").unwrap().wnid(), "n02084071");
        assert!(primary_synset(wn(), "Zzzqx").is_none());
    }

    #[test]
    fn malformed_files_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.csv");
        std::fs::write(&path, "/m/1,One\n/m/2\n").unwrap();
        let err = read_class_descriptions(&path).unwrap_err().to_string();
        assert!(err.contains("c.csv:2"), "{err}");
        let path = dir.path().join("h.json");
        std::fs::write(&path, "{\"LabelName\": \"/m/0bl9f\",\n \"Subcategory\": 3}").unwrap();
        let err = read_hierarchy(&path).unwrap_err().to_string();
        assert!(err.contains("h.json: line 2"), "{err}");
    }
}
