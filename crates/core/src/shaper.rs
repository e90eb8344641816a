//! Tidying a pruned tree into a clean skeleton, after [`crate::smart::prune`].
//!
//! Passes, in order:
//! 1. **Normalise** (top-down): categories Title Case (bins keep their label as written),
//!    items trimmed, lower case, de-duplicated and sorted; a child named like its parent is
//!    dissolved into it (tautology, `Wine: {Wine: ...}`); siblings whose names differ only in
//!    case are merged (case collision).
//! 2. **Restructure** (bottom-up): empty categories go; in smart mode lists smaller than
//!    `min_leaf_size` are merged into the node's bin ("Other", named by the bin's most
//!    distinctive keyword when it has one, e.g. `Other (Wine)`); items next to sub-categories
//!    move into the bin; a category whose only content is one sub-category takes that
//!    sub-category's content (single-child wrapper). Roots are never unwrapped.
//! 3. **Order**: sub-categories sorted case-insensitively, bins last.
//!
//! Afterwards every category holds either sub-categories or items, never both, and sibling
//! names are unique — what the YAML writer needs.

use std::collections::{BTreeMap, HashMap};

use crate::params::Config;
use crate::smart::{config_for, orphan_label};
use crate::taxonomy::TaxonomyNode;

/// Runs every pass over `root` with the job's configuration (smart overrides included).
pub fn shape(mut root: TaxonomyNode, cfg: &Config) -> TaxonomyNode {
    root.metadata.is_root = true;
    normalise(&mut root);
    restructure(&mut root, cfg, true);
    order(&mut root);
    root
}

/// `body of water` -> `Body Of Water`: upper-cases the first letter of every word (after a
/// space, hyphen, slash or parenthesis); other letters are left as they are.
pub fn title_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut word_start = true;
    for c in s.chars() {
        if word_start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        word_start = c.is_whitespace() || matches!(c, '-' | '/' | '(');
    }
    out
}

fn key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// Items trimmed, lower case, without empties and duplicates, sorted.
pub fn tidy_items(items: &mut Vec<String>) {
    for it in items.iter_mut() {
        let t = it.trim();
        if t.len() != it.len() || t.chars().any(char::is_uppercase) {
            *it = t.to_lowercase();
        }
    }
    items.retain(|s| !s.is_empty());
    items.sort_unstable();
    items.dedup();
}

// ---------------------------------------------------------------- pass 1

fn normalise(node: &mut TaxonomyNode) {
    if !node.metadata.is_bin {
        node.name = title_case(node.name.trim());
    }
    dissolve_tautologies(node);
    merge_case_collisions(node);
    tidy_items(&mut node.items);
    for c in &mut node.children {
        normalise(c);
    }
}

/// `Wine: {Wine: [a], Red: [b]}` -> `Wine: {Red: [b]}` plus `a` as Wine's own items: a child
/// named like its parent adds no level. Repeats until no such child is left.
fn dissolve_tautologies(node: &mut TaxonomyNode) {
    let own = key(&node.name);
    while let Some(i) = node.children.iter().position(|c| key(&c.name) == own) {
        let child = node.children.remove(i);
        node.items.extend(child.items);
        for (j, grandchild) in child.children.into_iter().enumerate() {
            node.children.insert(i + j, grandchild);
        }
        if node.metadata.gloss.is_none() {
            node.metadata.gloss = child.metadata.gloss;
        }
    }
}

/// Siblings `Dog` and `dog` become one category with the content of both.
fn merge_case_collisions(node: &mut TaxonomyNode) {
    if node.children.len() < 2 {
        return;
    }
    let mut merged: Vec<TaxonomyNode> = Vec::with_capacity(node.children.len());
    let mut index: HashMap<String, usize> = HashMap::with_capacity(node.children.len());
    for child in std::mem::take(&mut node.children) {
        match index.get(&key(&child.name)) {
            Some(&i) => absorb(&mut merged[i], child),
            None => {
                index.insert(key(&child.name), merged.len());
                merged.push(child);
            }
        }
    }
    node.children = merged;
}

/// Moves `other`'s content into `into`; a real category wins over a bin for the metadata.
fn absorb(into: &mut TaxonomyNode, other: TaxonomyNode) {
    into.items.extend(other.items);
    into.children.extend(other.children);
    if into.metadata.is_bin && !other.metadata.is_bin {
        into.name = other.name;
        into.metadata = other.metadata;
    } else {
        if into.metadata.gloss.is_none() {
            into.metadata.gloss = other.metadata.gloss;
        }
        if into.metadata.wnid.is_none() {
            into.metadata.wnid = other.metadata.wnid;
        }
    }
}

// ---------------------------------------------------------------- pass 2

fn restructure(node: &mut TaxonomyNode, cfg: &Config, is_top: bool) {
    let cfg = &*config_for(cfg, node);
    for c in &mut node.children {
        restructure(c, cfg, false);
    }
    node.children.retain(|c| !c.is_empty());
    if cfg.smart {
        merge_small_lists(node, cfg);
    }
    if !node.items.is_empty() && !node.children.is_empty() {
        let items = std::mem::take(&mut node.items);
        let label = orphan_label(&cfg.orphans_label_template, &node.name);
        bin_of(node, label).items.extend(items);
    }
    let unwrap = !is_top && !node.metadata.is_root && node.items.is_empty();
    if unwrap && node.children.len() == 1 {
        let only = node.children.remove(0);
        node.children = only.children;
        node.items = only.items;
    }
    tidy_items(&mut node.items);
    for c in &mut node.children {
        if c.metadata.is_bin {
            tidy_items(&mut c.items);
        }
    }
}

/// Lists below `min_leaf_size` join the node's bin. A lone small list with no bin to join
/// stays as it is: moving it would only rename it.
fn merge_small_lists(node: &mut TaxonomyNode, cfg: &Config) {
    let is_small = |c: &TaxonomyNode| {
        !c.metadata.is_bin && c.children.is_empty() && c.items.len() < cfg.min_leaf_size
    };
    let small = node.children.iter().filter(|c| is_small(c)).count();
    let has_bin = node.children.iter().any(|c| c.metadata.is_bin);
    if small == 0 || (small == 1 && !has_bin) {
        return;
    }
    let (small, keep): (Vec<_>, Vec<_>) =
        std::mem::take(&mut node.children).into_iter().partition(|c| is_small(c));
    node.children = keep;
    let moved: Vec<String> = small.into_iter().flat_map(|c| c.items).collect();
    let rest: Vec<String> =
        node.children.iter().filter(|c| !c.metadata.is_bin).flat_map(|c| c.all_items()).collect();
    let label = if has_bin {
        String::new()
    } else {
        match distinctive_keyword(&moved, &rest, &node.name) {
            Some(k) => format!("Other ({})", title_case(&k)),
            None => "Other".to_string(),
        }
    };
    bin_of(node, label).items.extend(moved);
}

/// The node's bin, created with `label` when it has none.
fn bin_of(node: &mut TaxonomyNode, label: String) -> &mut TaxonomyNode {
    let i = match node.children.iter().position(|c| c.metadata.is_bin) {
        Some(i) => i,
        None => {
            let parent = node.name.clone();
            node.children.push(crate::smart::bin(label, &parent, Vec::new()));
            node.children.len() - 1
        }
    };
    &mut node.children[i]
}

const STOPWORDS: &[&str] = &["and", "for", "the", "with", "other", "from", "type", "kind"];

/// A word most of the bin's items share and the rest of the category mostly lacks: the
/// word with the largest difference between its share of `bin` items and its share of
/// `rest` items, used by at least two bin items. Ties go to the more frequent, then the
/// alphabetically first word, so the result is deterministic.
pub fn distinctive_keyword(bin: &[String], rest: &[String], parent: &str) -> Option<String> {
    let parent_words: Vec<String> = words(parent).collect();
    let mut in_bin: BTreeMap<String, usize> = BTreeMap::new();
    for item in bin {
        let mut seen: Vec<String> = words(item).collect();
        seen.sort();
        seen.dedup();
        for w in seen {
            *in_bin.entry(w).or_default() += 1;
        }
    }
    let share_rest = |w: &str| {
        if rest.is_empty() {
            0.0
        } else {
            rest.iter().filter(|r| words(r).any(|x| x == w)).count() as f64 / rest.len() as f64
        }
    };
    in_bin
        .into_iter()
        .filter(|(w, n)| *n >= 2 && !parent_words.contains(w))
        .map(|(w, n)| {
            let score = n as f64 / bin.len() as f64 - share_rest(&w);
            (w, n, score)
        })
        .filter(|(_, _, score)| *score > 0.0)
        .max_by(|a, b| a.2.total_cmp(&b.2).then(a.1.cmp(&b.1)).then_with(|| b.0.cmp(&a.0)))
        .map(|(w, _, _)| w)
}

fn words(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3)
        .map(str::to_lowercase)
        .filter(|w| !STOPWORDS.contains(&w.as_str()))
}

// ---------------------------------------------------------------- pass 3

fn order(node: &mut TaxonomyNode) {
    node.children.sort_by_cached_key(|c| (c.metadata.is_bin, key(&c.name), c.name.clone()));
    for c in &mut node.children {
        order(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::{Dataset, Params};

    fn cfg(min_leaf: usize) -> Config {
        Params { smart: Some(true), min_leaf_size: Some(min_leaf), ..Default::default() }
            .resolve(Dataset::Imagenet)
    }

    fn names(n: &TaxonomyNode) -> Vec<&str> {
        n.children.iter().map(|c| c.name.as_str()).collect()
    }

    fn root(children: Vec<TaxonomyNode>) -> TaxonomyNode {
        let mut r = TaxonomyNode::new("Root");
        r.children = children;
        r
    }

    #[test]
    fn case_is_normalised_and_collisions_merge() {
        let mut body = TaxonomyNode::new("body of water");
        body.children.push(TaxonomyNode::list("Dog", ["Pug", " beagle", "pug"]));
        body.children.push(TaxonomyNode::list("dog", ["HOUND", "beagle"]));
        body.children.push(TaxonomyNode::list("cat", ["tabby"]));
        let out = shape(root(vec![body]), &cfg(1));
        let body = &out.children[0];
        assert_eq!(body.name, "Body Of Water");
        assert_eq!(names(body), vec!["Cat", "Dog"]);
        assert_eq!(body.children[1].items, vec!["beagle", "hound", "pug"]);
    }

    #[test]
    fn tautology_is_dissolved() {
        let mut wine = TaxonomyNode::new("Wine");
        let mut inner = TaxonomyNode::new("wine");
        inner.children.push(TaxonomyNode::list("Red", ["merlot", "shiraz"]));
        inner.children.push(TaxonomyNode::list("White", ["riesling", "chablis"]));
        wine.children.push(inner);
        wine.children.push(TaxonomyNode::list("Sparkling", ["cava", "prosecco"]));
        let out = shape(root(vec![wine]), &cfg(1));
        assert_eq!(names(&out.children[0]), vec!["Red", "Sparkling", "White"]);
    }

    #[test]
    fn single_child_wrappers_are_flattened() {
        let mut a = TaxonomyNode::with_gloss("Canine", "a dog-like animal");
        let mut b = TaxonomyNode::new("Dog");
        b.children.push(TaxonomyNode::list("Hound", ["beagle", "basset"]));
        b.children.push(TaxonomyNode::list("Toy", ["pug", "chihuahua"]));
        a.children.push(b);
        let mut only_list = TaxonomyNode::new("Cat");
        only_list.children.push(TaxonomyNode::list("Kitten", ["tabby", "manx"]));
        let out = shape(root(vec![a, only_list]), &cfg(1));
        let canine = &out.children[0];
        assert_eq!(canine.name, "Canine");
        assert_eq!(canine.metadata.gloss.as_deref(), Some("a dog-like animal"));
        assert_eq!(names(canine), vec!["Hound", "Toy"]);
        assert_eq!(out.children[1].items, vec!["manx", "tabby"]);
        // The root keeps its single child.
        let out = shape(root(vec![TaxonomyNode::list("X", ["a"])]), &cfg(1));
        assert_eq!(names(&out), vec!["X"]);
    }

    #[test]
    fn small_lists_merge_into_a_named_other_bin() {
        let mut wine = TaxonomyNode::new("Drink");
        wine.children.push(TaxonomyNode::list("Red", ["red wine", "port wine"]));
        wine.children.push(TaxonomyNode::list("White", ["white wine"]));
        wine.children.push(TaxonomyNode::list("Beer", ["ale", "lager", "stout", "porter", "bock"]));
        wine.children
            .push(TaxonomyNode::list("Tea", ["green tea", "black tea", "oolong", "chai", "mate"]));
        let out = shape(root(vec![wine]), &cfg(3));
        let drink = &out.children[0];
        assert_eq!(names(drink), vec!["Beer", "Tea", "Other (Wine)"]);
        assert_eq!(drink.children[2].items, vec!["port wine", "red wine", "white wine"]);
        // Without smart mode lists are left alone.
        let mut plain = cfg(3);
        plain.smart = false;
        let out = shape(root(vec![out.children[0].clone()]), &plain);
        assert_eq!(out.children[0].children.len(), 3);
    }

    #[test]
    fn small_lists_join_an_existing_orphan_bin_and_mixed_items_move_there() {
        let mut bird = TaxonomyNode::new("bird");
        bird.items.push("dodo".into());
        bird.children.push(TaxonomyNode::list("finch", ["goldfinch"]));
        bird.children.push(TaxonomyNode::list("duck", ["mallard", "teal", "eider"]));
        bird.children.push(crate::smart::bin("other_bird".into(), "bird", vec!["kiwi".into()]));
        let out = shape(root(vec![bird]), &cfg(2));
        let bird = &out.children[0];
        assert_eq!(names(bird), vec!["Duck", "other_bird"]);
        assert_eq!(bird.children[1].items, vec!["dodo", "goldfinch", "kiwi"]);
    }

    #[test]
    fn a_lone_small_list_keeps_its_name_and_empty_categories_go() {
        let mut cat = TaxonomyNode::new("cat");
        cat.children.push(TaxonomyNode::list("lion", ["lion"]));
        cat.children.push(TaxonomyNode::list("house cat", ["tabby", "manx", "persian"]));
        cat.children.push(TaxonomyNode::new("empty"));
        let out = shape(root(vec![cat]), &cfg(2));
        assert_eq!(names(&out.children[0]), vec!["House Cat", "Lion"]);
    }

    #[test]
    fn title_case_keeps_inner_letters() {
        assert_eq!(title_case("jack-o'-lantern"), "Jack-O'-Lantern");
        assert_eq!(title_case("3d printer"), "3d Printer");
        assert_eq!(title_case("TV set"), "TV Set");
    }
}
