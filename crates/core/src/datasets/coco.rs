//! COCO: the 80 object categories of COCO 2017 under their 12 supercategories.
//!
//! The official list is the `categories` array of `instances_*2017.json` inside
//! [`OFFICIAL_URL`], a 241 MB zip of annotations; downloading that for 80 names would be
//! absurd, so the list is also a table in code ([`CATEGORIES`]). When the data dir holds
//! `coco/categories.json` (that array, or a whole `instances_*.json`), it is used instead, and
//! a test checks that the table equals the file.
//!
//! Each category and supercategory carries a hand-checked WordNet synset (COCO's names are
//! ambiguous: "mouse" is the computer mouse, "tie" the necktie) whose gloss becomes the
//! instruction; "stop sign" and "indoor" have no synset and get "Items related to <name>".
//! Tree: the virtual root "COCO", the supercategories as dataset roots, the categories as
//! labels.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;

use crate::taxonomy::{NodeMeta, TaxonomyNode};
use crate::wordnet::WordNet;

/// Where the official category list comes from (in `annotations/instances_train2017.json`).
pub const OFFICIAL_URL: &str =
    "http://images.cocodataset.org/annotations/annotations_trainval2017.zip";

/// The optional category file inside the data dir.
pub const FILE_FOLDER: &str = "coco";
pub const FILE_NAME: &str = "categories.json";

/// Name of the virtual root.
pub const VIRTUAL_ROOT: &str = "COCO";

/// (name, supercategory, wnid) of the 80 COCO 2017 categories, in id order.
pub const CATEGORIES: [(&str, &str, Option<&str>); 80] = [
    ("person", "person", Some("n00007846")),
    ("bicycle", "vehicle", Some("n02834778")),
    ("car", "vehicle", Some("n02958343")),
    ("motorcycle", "vehicle", Some("n03790512")),
    ("airplane", "vehicle", Some("n02691156")),
    ("bus", "vehicle", Some("n02924116")),
    ("train", "vehicle", Some("n04468005")),
    ("truck", "vehicle", Some("n04490091")),
    ("boat", "vehicle", Some("n02858304")),
    ("traffic light", "outdoor", Some("n06874185")),
    ("fire hydrant", "outdoor", Some("n03346898")),
    ("stop sign", "outdoor", None),
    ("parking meter", "outdoor", Some("n03891332")),
    ("bench", "outdoor", Some("n02828884")),
    ("bird", "animal", Some("n01503061")),
    ("cat", "animal", Some("n02121620")),
    ("dog", "animal", Some("n02084071")),
    ("horse", "animal", Some("n02374451")),
    ("sheep", "animal", Some("n02411705")),
    ("cow", "animal", Some("n02403454")),
    ("elephant", "animal", Some("n02503517")),
    ("bear", "animal", Some("n02131653")),
    ("zebra", "animal", Some("n02391049")),
    ("giraffe", "animal", Some("n02439033")),
    ("backpack", "accessory", Some("n02769748")),
    ("umbrella", "accessory", Some("n04507155")),
    ("handbag", "accessory", Some("n02774152")),
    ("tie", "accessory", Some("n03815615")),
    ("suitcase", "accessory", Some("n02773838")),
    ("frisbee", "sports", Some("n03397947")),
    ("skis", "sports", Some("n04228054")),
    ("snowboard", "sports", Some("n04251791")),
    ("sports ball", "sports", Some("n02778669")),
    ("kite", "sports", Some("n03621473")),
    ("baseball bat", "sports", Some("n02799175")),
    ("baseball glove", "sports", Some("n02800213")),
    ("skateboard", "sports", Some("n04225987")),
    ("surfboard", "sports", Some("n04363559")),
    ("tennis racket", "sports", Some("n04409806")),
    ("bottle", "kitchen", Some("n02876657")),
    ("wine glass", "kitchen", Some("n04592099")),
    ("cup", "kitchen", Some("n03147509")),
    ("fork", "kitchen", Some("n03383948")),
    ("knife", "kitchen", Some("n03623556")),
    ("spoon", "kitchen", Some("n04284002")),
    ("bowl", "kitchen", Some("n02881193")),
    ("banana", "food", Some("n07753592")),
    ("apple", "food", Some("n07739125")),
    ("sandwich", "food", Some("n07695965")),
    ("orange", "food", Some("n07747607")),
    ("broccoli", "food", Some("n07714990")),
    ("carrot", "food", Some("n07730207")),
    ("hot dog", "food", Some("n07697537")),
    ("pizza", "food", Some("n07873807")),
    ("donut", "food", Some("n07639069")),
    ("cake", "food", Some("n07628870")),
    ("chair", "furniture", Some("n03001627")),
    ("couch", "furniture", Some("n04256520")),
    ("potted plant", "furniture", Some("n11536230")),
    ("bed", "furniture", Some("n02818832")),
    ("dining table", "furniture", Some("n03201208")),
    ("toilet", "furniture", Some("n04446521")),
    ("tv", "electronic", Some("n04405907")),
    ("laptop", "electronic", Some("n03642806")),
    ("mouse", "electronic", Some("n03793489")),
    ("remote", "electronic", Some("n04074963")),
    ("keyboard", "electronic", Some("n03085013")),
    ("cell phone", "electronic", Some("n02992529")),
    ("microwave", "appliance", Some("n03761084")),
    ("oven", "appliance", Some("n03862676")),
    ("toaster", "appliance", Some("n04442312")),
    ("sink", "appliance", Some("n04223580")),
    ("refrigerator", "appliance", Some("n04070727")),
    ("book", "indoor", Some("n02870092")),
    ("clock", "indoor", Some("n03046257")),
    ("vase", "indoor", Some("n04522168")),
    ("scissors", "indoor", Some("n04148054")),
    ("teddy bear", "indoor", Some("n04399382")),
    ("hair drier", "indoor", Some("n03483316")),
    ("toothbrush", "indoor", Some("n04453156")),
];

/// (supercategory, wnid) of the 12 supercategories, in order of first appearance.
pub const SUPERCATEGORIES: [(&str, Option<&str>); 12] = [
    ("person", Some("n00007846")),
    ("vehicle", Some("n04524313")),
    ("outdoor", Some("n08613733")),
    ("animal", Some("n00015388")),
    ("accessory", Some("n02671780")),
    ("sports", Some("n04285146")),
    ("kitchen", Some("n03621377")),
    ("food", Some("n00021265")),
    ("furniture", Some("n03405725")),
    ("electronic", Some("n03277771")),
    ("appliance", Some("n02729837")),
    ("indoor", None),
];

/// One category as the official JSON has it (other fields, such as `id`, are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Category {
    pub name: String,
    pub supercategory: String,
}

/// The category list: `coco/categories.json` in the data dir when present, else the table.
pub fn categories(data_dir: &Path) -> Result<Vec<Category>> {
    let path = data_dir.join(FILE_FOLDER).join(FILE_NAME);
    if path.is_file() {
        return read_categories(&path);
    }
    Ok(CATEGORIES
        .iter()
        .map(|(n, s, _)| Category { name: n.to_string(), supercategory: s.to_string() })
        .collect())
}

/// Reads a category file: a JSON array of `{"name", "supercategory", ...}` or an object with
/// such a `categories` array (a whole `instances_*.json`).
pub fn read_categories(path: &Path) -> Result<Vec<Category>> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum File {
        List(Vec<Category>),
        Instances { categories: Vec<Category> },
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the COCO category file {}", path.display()))?;
    let cats = match serde_json::from_str::<File>(&text) {
        Ok(File::List(c)) | Ok(File::Instances { categories: c }) => c,
        Err(e) => bail!(
            "{}: line {}: not a COCO category list ({e}); expected a JSON array of \
             {{\"name\", \"supercategory\"}} objects or an instances file with `categories`; fix \
             or delete the file (the built-in table is used without it)",
            path.display(),
            e.line()
        ),
    };
    if cats.is_empty() {
        bail!("{}: the category list is empty; fix or delete the file", path.display());
    }
    Ok(cats)
}

/// Loads the COCO tree (see the module docs).
pub fn load(wn: &WordNet, data_dir: &Path) -> Result<TaxonomyNode> {
    build_tree(wn, &categories(data_dir)?)
}

/// Builds the tree: virtual root, supercategories (dataset roots) in order of first
/// appearance, categories in list order.
pub fn build_tree(wn: &WordNet, cats: &[Category]) -> Result<TaxonomyNode> {
    let known: HashMap<&str, Option<&str>> =
        CATEGORIES.iter().map(|(n, _, w)| (*n, *w)).chain(SUPERCATEGORIES).collect();
    let node = |name: &str, depth: usize| -> TaxonomyNode {
        let wnid = match known.get(name) {
            Some(w) => w.map(str::to_string),
            None => wn.synsets_for(name).first().map(|s| s.wnid()),
        };
        let gloss = wnid
            .as_deref()
            .and_then(|w| wn.gloss_of_wnid(w))
            .map(str::to_string)
            .unwrap_or_else(|| format!("Items related to {name}"));
        TaxonomyNode {
            name: name.to_string(),
            metadata: NodeMeta { wnid, gloss: Some(gloss), depth, ..Default::default() },
            ..Default::default()
        }
    };
    let mut root = TaxonomyNode::new(VIRTUAL_ROOT);
    root.metadata.gloss = Some("object categories of the COCO dataset".into());
    root.metadata.is_root = true;
    for c in cats {
        let (name, sup) = (c.name.trim(), c.supercategory.trim());
        if name.is_empty() || sup.is_empty() {
            return Err(anyhow!("COCO category {c:?} has an empty name or supercategory"));
        }
        let pos = match root.children.iter().position(|s| s.name == sup) {
            Some(p) => p,
            None => {
                let mut s = node(sup, 0);
                s.metadata.is_root = true;
                root.children.push(s);
                root.children.len() - 1
            }
        };
        root.children[pos].children.push(node(name, 1));
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{data_dir, wn};

    #[test]
    fn eighty_labels_under_twelve_supercategories() {
        let tree = load(wn(), &data_dir()).unwrap();
        assert_eq!(tree.name, "COCO");
        assert_eq!(tree.children.len(), 12);
        assert!(tree.children.iter().all(|s| s.metadata.is_root && !s.children.is_empty()));
        let labels = tree.leaf_names();
        assert_eq!(labels.len(), 80);
        let animal = tree.children.iter().find(|s| s.name == "animal").unwrap();
        assert_eq!(animal.children.len(), 10);
        assert_eq!(
            animal.metadata.gloss.as_deref(),
            Some("a living organism characterized by voluntary movement")
        );
    }

    #[test]
    fn table_equals_the_official_list() {
        let file = read_categories(&data_dir().join(FILE_FOLDER).join(FILE_NAME)).unwrap();
        let table: Vec<Category> = CATEGORIES
            .iter()
            .map(|(n, s, _)| Category { name: n.to_string(), supercategory: s.to_string() })
            .collect();
        assert_eq!(file, table);
        let supers: Vec<&str> = SUPERCATEGORIES.iter().map(|s| s.0).collect();
        let mut seen: Vec<&str> = Vec::new();
        for (_, s, _) in CATEGORIES {
            if !seen.contains(&s) {
                seen.push(s);
            }
        }
        assert_eq!(seen, supers);
    }

    #[test]
    fn every_wnid_exists_and_glosses_disambiguate() {
        let all = CATEGORIES.iter().map(|(n, _, w)| (*n, *w)).chain(SUPERCATEGORIES);
        for (name, wnid) in all {
            if let Some(w) = wnid {
                assert!(wn().synset(w).is_some(), "{name}: {w}");
            }
        }
        let tree = build_tree(wn(), &categories(Path::new("/nonexistent")).unwrap()).unwrap();
        let find = |sup: &str, name: &str| {
            let s = tree.children.iter().find(|s| s.name == sup).unwrap();
            s.children.iter().find(|c| c.name == name).unwrap().metadata.gloss.clone().unwrap()
        };
        assert!(find("electronic", "mouse").contains("cursor"));
        assert!(find("accessory", "tie").starts_with("neckwear"));
        assert_eq!(find("outdoor", "stop sign"), "Items related to stop sign");
    }

    #[test]
    fn bad_file_names_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        std::fs::write(&path, "[{\"name\": \"x\"}]").unwrap();
        let err = read_categories(&path).unwrap_err().to_string();
        assert!(err.contains("c.json") && err.contains("supercategory"), "{err}");
        std::fs::write(&path, "{\"info\": {}, \"categories\": [{\"id\": 1, \"name\": \"x\", \"supercategory\": \"y\"}]}").unwrap();
        assert_eq!(read_categories(&path).unwrap()[0].supercategory, "y");
    }
}
