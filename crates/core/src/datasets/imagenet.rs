//! ImageNet: the WordNet noun hierarchy read top-down from a root synset (`root`, default
//! `entity.n.01`), following class hyponym links (ImageNet synsets are classes, so instance
//! links such as "Einstein" are not followed).
//!
//! Parameters (see [`crate::params::Config`]):
//! - `filter`: `1k` / `21k` keep only synsets of the ImageNet-1k / -21k class list and the
//!   categories above them; `none` keeps the whole hierarchy;
//! - `strict` (default on): every synset is named so that the name means it
//!   ([`crate::senses::unambiguous_name`]): "crane" the machine becomes `crane (lifting device)`,
//!   the corgi "Cardigan" `Cardigan Welsh corgi`. Off: plain first lemmas. A prompt reads a
//!   name in its first sense, which is why the original tool dropped every other sense with
//!   its subtree; naming keeps them (ImageNet-1k: all 1,000 classes instead of 10);
//! - `drop_secondary_senses`: that old pruning, for a skeleton of primary senses only;
//! - `blacklist`: drops the abstract top categories ([`ABSTRACT_CATEGORIES`]) below the root;
//! - `exclude_regex`: drops synsets whose plain or displayed name matches (with everything
//!   below), so `^crane$` drops both cranes however they are displayed;
//! - `exclude_subtree`: drops the given synsets (names like `dog.n.01` or wnids) and their
//!   subtrees.
//!
//! The root itself is never dropped.
//!
//! Like every loader this returns the full hierarchy; pruning and the depth cut come later.
//! A synset without (kept) hyponyms is a label node. With a class list, a listed synset that
//! also has listed synsets below it keeps its own name as a direct item, so no class is lost.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use regex::Regex;
use serde::Serialize;

use super::download::{self, DataFile, Fetch, Published};
use crate::params::{Config, ImagenetFilter};
use crate::senses::Namer;
use crate::taxonomy::{NodeMeta, TaxonomyNode};
use crate::wordnet::{Synset, WordNet};

/// The ImageNet-1k class list (1000 wnids, one a line) as timm ships it.
pub const FILE_1K: DataFile = DataFile {
    folder: "imagenet",
    name: "imagenet_synsets.txt",
    url: "https://raw.githubusercontent.com/huggingface/pytorch-image-models/main/timm/data/_info/imagenet_synsets.txt",
    published: Some(Published {
        bytes: 10000,
        sha256: "70002b0ff5de60a3a17a82dbfcff291931f96225ddf941ad2e182fc39e183d15",
    }),
};

/// The ImageNet-21k class list (21,843 wnids, Google's release order) as timm ships it; the
/// same ids are published at https://storage.googleapis.com/bit_models/imagenet21k_wordnet_ids.txt.
pub const FILE_21K: DataFile = DataFile {
    folder: "imagenet",
    name: "imagenet21k_goog_synsets.txt",
    url: "https://raw.githubusercontent.com/huggingface/pytorch-image-models/main/timm/data/_info/imagenet21k_goog_synsets.txt",
    published: Some(Published {
        bytes: 218430,
        sha256: "66362bdedf36d933382edca5493fc562dcc17128ce36403c9e730a75f48cb2f2",
    }),
};

/// Categories `blacklist` drops: WordNet's most abstract levels (by the synset's name lemma).
pub const ABSTRACT_CATEGORIES: &[&str] = &[
    "entity",
    "abstraction",
    "communication",
    "measure",
    "attribute",
    "state",
    "event",
    "act",
    "group",
    "relation",
    "possession",
    "phenomenon",
];

/// Loads the ImageNet hierarchy for `cfg`, fetching the class list `cfg.filter` names into the
/// data dir when it is missing (a present list that differs from the published one adds a note).
pub fn load(
    wn: &WordNet,
    cfg: &Config,
    data_dir: &Path,
    fetch: Fetch,
    notes: &mut Vec<String>,
) -> Result<TaxonomyNode> {
    let file = match cfg.filter {
        ImagenetFilter::None => None,
        ImagenetFilter::OneK => Some(&FILE_1K),
        ImagenetFilter::TwentyOneK => Some(&FILE_21K),
    };
    let classes = match file {
        Some(file) => Some(read_class_list(wn, &download::ensure(data_dir, file, fetch, notes)?)?),
        None => None,
    };
    build_tree(wn, cfg, classes.as_ref())
}

/// The offsets of a class-list file's wnids (`n01440764`, one a line; blank lines and `#`
/// comments skipped). A line that is not a wnid is an error naming the line; a wnid that
/// WordNet 3.0 lacks is skipped with a warning (it cannot be placed in the hierarchy).
pub fn read_class_list(wn: &WordNet, path: &Path) -> Result<HashSet<u32>> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the ImageNet class list {}; delete it so it is downloaded again, or \
             point --data-dir at a folder that has it",
            path.display()
        )
    })?;
    let mut out = HashSet::new();
    let mut unknown = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let wnid = line.split_whitespace().next().unwrap_or(line);
        let offset = wnid
            .strip_prefix('n')
            .filter(|d| d.len() == 8)
            .and_then(|d| d.parse::<u32>().ok())
            .ok_or_else(|| {
                anyhow!(
                    "{}:{}: `{wnid}` is not a noun wnid like n01440764; fix the line or delete \
                     the file so it is downloaded again",
                    path.display(),
                    i + 1
                )
            })?;
        match wn.synset(wnid) {
            Some(_) => {
                out.insert(offset);
            }
            None => unknown.push(wnid.to_string()),
        }
    }
    if out.is_empty() {
        bail!("{}: no wnids found; delete the file so it is downloaded again", path.display());
    }
    if !unknown.is_empty() {
        tracing::warn!(
            "{}: {} wnids are not WordNet 3.0 noun synsets and are left out: {}",
            path.display(),
            unknown.len(),
            unknown.join(", ")
        );
    }
    Ok(out)
}

/// Builds the hierarchy below `cfg.root`; `classes` is the class list of `cfg.filter`
/// (`None` keeps every synset).
pub fn build_tree(
    wn: &WordNet,
    cfg: &Config,
    classes: Option<&HashSet<u32>>,
) -> Result<TaxonomyNode> {
    let root = resolve(wn, &cfg.root).ok_or_else(|| {
        anyhow!(
            "root `{}` is not a WordNet noun synset; give a synset name like animal.n.01 or a \
             wnid like n00015388",
            cfg.root
        )
    })?;
    let exclude_regex =
        match cfg.exclude_regex.as_deref().filter(|r| !r.is_empty()) {
            Some(r) => Some(Regex::new(r).map_err(|e| {
                anyhow!("exclude_regex `{r}` is not a valid regular expression: {e}")
            })?),
            None => None,
        };
    let mut excluded = HashSet::new();
    for s in &cfg.exclude_subtree {
        let synset = resolve(wn, s).ok_or_else(|| {
            anyhow!(
                "exclude_subtree: `{s}` is not a WordNet noun synset; give a synset name like \
                 dog.n.01 or a wnid like n02084071"
            )
        })?;
        excluded.insert(synset.offset);
    }
    let builder = Builder {
        wn,
        classes,
        relevant: classes.map(|c| ancestors_of_classes(wn, c)),
        strict: cfg.strict,
        drop_secondary: cfg.drop_secondary_senses,
        blacklist: cfg.blacklist,
        exclude_regex,
        excluded,
        namer: Namer::new(wn),
    };
    let mut tree =
        builder.node(root, 0).unwrap_or_else(|| builder.header(root, builder.name_of(root), 0));
    tree.metadata.is_root = true;
    Ok(tree)
}

/// A synset by name (`dog.n.01`) or wnid (`n02084071`).
fn resolve<'w>(wn: &'w WordNet, name_or_wnid: &str) -> Option<&'w Synset> {
    let s = name_or_wnid.trim();
    let looks_like_wnid =
        s.len() == 9 && s.starts_with('n') && s[1..].bytes().all(|b| b.is_ascii_digit());
    if looks_like_wnid {
        wn.synset(s)
    } else {
        wn.synset_by_name(s)
    }
}

/// Offsets of the listed synsets and all their class hypernyms: the synsets worth visiting.
fn ancestors_of_classes(wn: &WordNet, classes: &HashSet<u32>) -> HashSet<u32> {
    let mut seen: HashSet<u32> = HashSet::with_capacity(classes.len() * 2);
    let mut todo: Vec<&Synset> =
        classes.iter().filter_map(|&o| wn.synset(&format!("n{o:08}"))).collect();
    while let Some(s) = todo.pop() {
        if seen.insert(s.offset) {
            todo.extend(wn.class_hypernyms(s));
        }
    }
    seen
}

/// How many names of a skeleton strict mode disambiguated: the analysis reports it, so that
/// a reader of the skeleton knows how many names are not WordNet's plain first lemma.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RenameCount {
    /// Distinct items whose name is a disambiguated one.
    pub labels: usize,
    /// Distinct category keys whose name is a disambiguated one.
    pub categories: usize,
    /// Up to [`RenameCount::EXAMPLES`] renamed items, as (plain name, name), sorted.
    pub examples: Vec<(String, String)>,
}

impl RenameCount {
    pub const EXAMPLES: usize = 10;

    /// Counts the names of `skeleton` (made from the loader's tree `source`) that the loader
    /// disambiguated ([`NodeMeta::plain_name`]). Items and keys are compared
    /// case-insensitively, as the shaper changes their case.
    pub fn of(source: &TaxonomyNode, skeleton: &TaxonomyNode) -> RenameCount {
        fn collect<'t>(n: &'t TaxonomyNode, out: &mut HashMap<String, &'t str>) {
            if let Some(plain) = &n.metadata.plain_name {
                out.entry(n.name.to_lowercase()).or_insert(plain);
            }
            n.children.iter().for_each(|c| collect(c, out));
        }
        let mut plain_of = HashMap::new();
        collect(source, &mut plain_of);
        let mut items: HashMap<&str, &str> = HashMap::new();
        let mut keys = HashSet::new();
        skeleton.walk(&mut |n, _| {
            if plain_of.contains_key(&n.name.to_lowercase()) {
                keys.insert(n.name.to_lowercase());
            }
            for it in &n.items {
                // Items are lower case after the shaper.
                if let Some((name, plain)) = plain_of.get_key_value(it.as_str()) {
                    items.insert(name, plain);
                }
            }
        });
        let mut renamed: Vec<(&str, &str)> = items.iter().map(|(n, p)| (*n, *p)).collect();
        renamed.sort_unstable();
        let examples = renamed.iter().take(Self::EXAMPLES);
        let examples = examples.map(|(n, p)| (p.to_string(), n.to_string())).collect();
        RenameCount { labels: items.len(), categories: keys.len(), examples }
    }

    /// One line for the analysis and the timeline.
    pub fn message(&self) -> String {
        format!("renamed for ambiguity: {} labels, {} category keys", self.labels, self.categories)
    }
}

struct Builder<'a> {
    wn: &'a WordNet,
    classes: Option<&'a HashSet<u32>>,
    /// With a class list: the synsets that are listed or have a listed synset below them.
    relevant: Option<HashSet<u32>>,
    strict: bool,
    drop_secondary: bool,
    blacklist: bool,
    exclude_regex: Option<Regex>,
    excluded: HashSet<u32>,
    /// Strict naming, with what it learnt about the synsets named so far.
    namer: Namer<'a>,
}

impl Builder<'_> {
    /// The node of `s` at `depth`, or `None` when it is dropped or has nothing to offer.
    fn node(&self, s: &Synset, depth: usize) -> Option<TaxonomyNode> {
        let name = match depth {
            0 => self.name_of(s),
            _ => self.kept_name(s)?,
        };
        let mut node = self.header(s, name, depth);
        node.children = self
            .wn
            .class_hyponyms(s)
            .into_iter()
            .filter(|h| self.relevant.as_ref().is_none_or(|r| r.contains(&h.offset)))
            .filter_map(|h| self.node(h, depth + 1))
            .collect();
        let listed = self.classes.is_none_or(|c| c.contains(&s.offset));
        if node.children.is_empty() {
            return listed.then_some(node);
        }
        if listed && self.classes.is_some() {
            node.items.push(node.name.clone());
        }
        Some(node)
    }

    /// The display name of `s`, or `None` when the parameters drop it. The cheap tests come
    /// first, so that a dropped synset is never named.
    fn kept_name(&self, s: &Synset) -> Option<String> {
        if self.excluded.contains(&s.offset) || self.is_abstract(s) {
            return None;
        }
        if self.drop_secondary && !s.is_first_sense_of_its_name() {
            return None;
        }
        let name = self.name_of(s);
        if let Some(r) = &self.exclude_regex {
            if r.is_match(&name) || r.is_match(&s.primary_lemma()) {
                return None;
            }
        }
        Some(name)
    }

    /// The display name: unambiguous in strict mode, else the plain first lemma.
    fn name_of(&self, s: &Synset) -> String {
        match self.strict {
            true => self.namer.name(s).text,
            false => s.primary_lemma(),
        }
    }

    fn is_abstract(&self, s: &Synset) -> bool {
        let lemma = s.name.rsplitn(3, '.').last().unwrap_or("");
        self.blacklist && ABSTRACT_CATEGORIES.contains(&lemma)
    }

    fn header(&self, s: &Synset, name: String, depth: usize) -> TaxonomyNode {
        // Strict naming renames exactly the secondary senses.
        let renamed = self.strict && !s.is_first_sense_of_its_name();
        TaxonomyNode {
            name,
            children: Vec::new(),
            items: Vec::new(),
            metadata: NodeMeta {
                wnid: Some(s.wnid()),
                gloss: Some(s.gloss.clone()),
                depth,
                plain_name: renamed.then(|| s.primary_lemma()),
                ..Default::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Params;
    use crate::test_support::{data_dir, labels, wn};
    use std::collections::{BTreeMap, BTreeSet};

    fn cfg(params: Params) -> Config {
        params.resolve(crate::params::Dataset::Imagenet)
    }

    fn find<'t>(tree: &'t TaxonomyNode, name: &str) -> Option<&'t TaxonomyNode> {
        if tree.name == name {
            return Some(tree);
        }
        tree.children.iter().find_map(|c| find(c, name))
    }

    #[test]
    fn imagenet_1k_strict_names_the_1000_classes_apart() {
        let config = cfg(Params { filter: Some(ImagenetFilter::OneK), ..Default::default() });
        let tree = load(wn(), &config, &data_dir(), None, &mut Vec::new()).unwrap();
        let mut wnid_of: BTreeMap<String, String> = BTreeMap::new();
        tree.walk(&mut |n, _| {
            if n.children.is_empty() {
                let wnid = n.metadata.wnid.clone().unwrap();
                let before = wnid_of.insert(n.name.to_lowercase(), wnid.clone());
                assert!(
                    before.as_ref().is_none_or(|b| *b == wnid),
                    "{}: {wnid}, {before:?}",
                    n.name
                );
            }
        });
        assert_eq!(wnid_of.len(), 1000, "1,000 classes, 1,000 names (lower-cased)");
        for name in ["crane (wading bird)", "crane (lifting device)", "maillot", "maillot (tights)"]
        {
            assert!(wnid_of.contains_key(name), "{name}");
        }
        assert!(wnid_of.contains_key("cardigan") && wnid_of.contains_key("cardigan welsh corgi"));
    }

    #[test]
    fn imagenet_1k_non_strict_yields_exactly_the_1000_classes() {
        let config = cfg(Params {
            filter: Some(ImagenetFilter::OneK),
            strict: Some(false),
            ..Default::default()
        });
        let tree = load(wn(), &config, &data_dir(), None, &mut Vec::new()).unwrap();
        assert_eq!(tree.name, "entity");
        assert!(tree.metadata.is_root);
        let list = read_class_list(wn(), &FILE_1K.path_in(&data_dir())).unwrap();
        assert_eq!(list.len(), 1000);
        let expected: BTreeSet<String> = list
            .iter()
            .map(|o| wn().synset(&format!("n{o:08}")).unwrap().primary_lemma())
            .collect();
        assert_eq!(labels(&tree), expected);
        // Every class is a label node (none of the 1k classes is above another).
        let mut wnids = BTreeSet::new();
        tree.walk(&mut |n, _| {
            if n.children.is_empty() {
                wnids.insert(n.metadata.wnid.clone().unwrap());
            }
        });
        assert_eq!(wnids.len(), 1000);
    }

    #[test]
    fn nodes_carry_wordnet_metadata() {
        let config = cfg(Params { root: Some("n02084071".into()), ..Default::default() });
        let tree = build_tree(wn(), &config, None).unwrap();
        assert_eq!(tree.name, "dog");
        assert_eq!(tree.metadata.wnid.as_deref(), Some("n02084071"));
        assert!(tree.metadata.gloss.as_deref().unwrap().starts_with("a member of the genus Canis"));
        let puppy = find(&tree, "puppy").unwrap();
        assert_eq!(puppy.metadata.depth, 1);
        assert!(puppy.children.is_empty() && puppy.items.is_empty(), "a label node");
        let corgi = find(&tree, "corgi").unwrap();
        assert_eq!(corgi.metadata.depth, 1);
        let breeds: Vec<&str> = corgi.children.iter().map(|c| c.name.as_str()).collect();
        // Strict (the default) names Cardigan by its longer lemma: the first sense of
        // "cardigan" is the sweater.
        assert_eq!(breeds, ["Pembroke", "Cardigan Welsh corgi"]);
        assert_eq!(corgi.children[0].metadata.depth, 2);
        assert_eq!(corgi.children[1].metadata.wnid.as_deref(), Some("n02113186"));
    }

    #[test]
    fn filter_21k_keeps_listed_internal_classes_as_items() {
        let list = read_class_list(wn(), &FILE_21K.path_in(&data_dir())).unwrap();
        assert!(list.len() > 21_000, "{}", list.len());
        let config = cfg(Params {
            root: Some("dog.n.01".into()),
            strict: Some(false),
            ..Default::default()
        });
        let tree = build_tree(wn(), &config, Some(&list)).unwrap();
        // "hunting dog" is a 21k class with 21k classes below it: a category that keeps itself.
        let hunting = find(&tree, "hunting dog").unwrap();
        assert!(!hunting.children.is_empty());
        assert_eq!(hunting.items, ["hunting dog"]);
        let mut all = BTreeSet::new();
        tree.walk(&mut |n, _| {
            all.insert(n.metadata.wnid.clone().unwrap());
        });
        let below_dog: BTreeSet<String> = list
            .iter()
            .map(|o| wn().synset(&format!("n{o:08}")).unwrap())
            .filter(|s| {
                s.offset == 2084071 || wn().is_hypernym_of(wn().synset("n02084071").unwrap(), s)
            })
            .map(|s| s.wnid())
            .collect();
        assert!(below_dog.is_subset(&all), "every 21k class below dog is in the tree");
    }

    #[test]
    fn strict_names_secondary_senses_and_dropping_them_is_explicit() {
        let lax = cfg(Params { strict: Some(false), ..Default::default() });
        let strict = cfg(Params::default());
        let drop = cfg(Params { drop_secondary_senses: Some(true), ..Default::default() });
        assert!(strict.strict && !strict.drop_secondary_senses, "the defaults");
        let lax_tree = build_tree(wn(), &lax, None).unwrap();
        let strict_tree = build_tree(wn(), &strict, None).unwrap();
        let drop_tree = build_tree(wn(), &drop, None).unwrap();
        // abstraction.n.06 is not the first sense of "abstraction", and its other lemma
        // ("abstract entity") does not contain the name: the hint names it.
        assert!(lax_tree.children.iter().any(|c| c.name == "abstraction"));
        let names: Vec<&str> = strict_tree.children.iter().map(|c| c.name.as_str()).collect();
        assert!(names.contains(&"abstraction (entity)"), "{names:?}");
        assert!(!drop_tree.children.iter().any(|c| c.name.starts_with("abstract")));
        // Naming keeps every synset in place; dropping cuts subtrees.
        assert_eq!(strict_tree.count_nodes(), lax_tree.count_nodes());
        assert!(drop_tree.count_nodes() * 10 < lax_tree.count_nodes());
        assert!(find(&strict_tree, "crane (wading bird)").is_some());
        assert!(find(&strict_tree, "crane (lifting device)").is_some());
        assert!(find(&drop_tree, "crane (wading bird)").is_none());
        // The regex sees the plain name too, so `^crane$` still finds both cranes.
        let no_cranes = cfg(Params { exclude_regex: Some("^crane$".into()), ..Default::default() });
        let tree = build_tree(wn(), &no_cranes, None).unwrap();
        assert!(find(&tree, "crane (wading bird)").is_none());
        assert!(find(&tree, "crane (lifting device)").is_none());
    }

    #[test]
    fn rename_count_reads_the_skeleton() {
        let config = cfg(Params { root: Some("corgi.n.01".into()), ..Default::default() });
        let source = build_tree(wn(), &config, None).unwrap();
        let mut skeleton = TaxonomyNode::new("Corgi");
        skeleton.items = vec!["cardigan welsh corgi".into(), "pembroke".into()];
        let count = RenameCount::of(&source, &skeleton);
        assert_eq!((count.labels, count.categories), (1, 0));
        let example = ("Cardigan".to_string(), "cardigan welsh corgi".to_string());
        assert_eq!(count.examples, [example]);
        assert_eq!(count.message(), "renamed for ambiguity: 1 labels, 0 category keys");
    }

    #[test]
    fn exclusions_and_blacklist() {
        let config = cfg(Params {
            root: Some("animal.n.01".into()),
            exclude_subtree: Some(vec!["dog.n.01".into(), "n02121620".into()]),
            exclude_regex: Some("^horse$".into()),
            strict: Some(false),
            ..Default::default()
        });
        let tree = build_tree(wn(), &config, None).unwrap();
        // Dropped wherever they occur (dog and cat also sit under "domestic animal").
        let mut wnids = BTreeSet::new();
        tree.walk(&mut |n, _| {
            wnids.insert(n.metadata.wnid.clone().unwrap());
        });
        assert!(!wnids.contains("n02084071") && !wnids.contains("n02121620"));
        for gone in ["dog", "poodle", "corgi", "cat", "horse"] {
            assert!(find(&tree, gone).is_none(), "{gone} excluded");
        }
        assert!(find(&tree, "domestic cat").is_some(), "also under domestic animal");
        assert!(find(&tree, "wolf").is_some());

        let config =
            cfg(Params { blacklist: Some(true), strict: Some(false), ..Default::default() });
        let tree = build_tree(wn(), &config, None).unwrap();
        assert_eq!(tree.name, "entity", "the root is never dropped");
        assert!(find(&tree, "abstraction").is_none());
        assert!(find(&tree, "physical entity").is_some());
    }

    #[test]
    fn bad_parameters_are_clear_errors() {
        let err = build_tree(
            wn(),
            &cfg(Params { root: Some("nope.n.01".into()), ..Default::default() }),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("nope.n.01") && err.contains("animal.n.01"), "{err}");
        let bad = Params { exclude_regex: Some("(".into()), ..Default::default() };
        let err = build_tree(wn(), &cfg(bad), None).unwrap_err().to_string();
        assert!(err.contains("exclude_regex"), "{err}");
        let bad = Params { exclude_subtree: Some(vec!["n99999999".into()]), ..Default::default() };
        let err = build_tree(wn(), &cfg(bad), None).unwrap_err().to_string();
        assert!(err.contains("exclude_subtree") && err.contains("n99999999"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("list.txt");
        std::fs::write(&path, "n02084071\nnot-a-wnid\n").unwrap();
        let err = read_class_list(wn(), &path).unwrap_err().to_string();
        assert!(err.contains("list.txt:2") && err.contains("not-a-wnid"), "{err}");
    }
}
