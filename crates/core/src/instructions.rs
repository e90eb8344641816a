//! An `# instruction:` for every category key.
//!
//! Programs that read skeletons take a category's meaning from its instruction comment (the
//! wildcards-generator web app imports each key's comment as the category's instruction; a key
//! without one arrives blank). Loaders give WordNet glosses, bins say "Miscellaneous ... items";
//! what is left — groups named by a keyword or a member, keys of hand-made trees, the root of
//! an `arrange` output — gets a sentence made from what the category is: its parent and its
//! members ([`describe`]).

use crate::taxonomy::TaxonomyNode;

/// Members named in a made-up instruction.
const NAMED_MEMBERS: usize = 3;
/// Longest member text quoted in it (characters); longer ones are cut with `...`.
const MEMBER_CHARS: usize = 40;

/// Gives every category without an instruction one made by [`describe`]; returns how many
/// it filled.
pub fn fill_missing(root: &mut TaxonomyNode) -> usize {
    let mut filled = 0;
    fill(root, None, &mut filled);
    filled
}

fn fill(node: &mut TaxonomyNode, parent: Option<&str>, filled: &mut usize) {
    let has = node.metadata.gloss.as_deref().is_some_and(|g| !g.trim().is_empty());
    if !has {
        node.metadata.gloss = Some(describe(node, parent));
        *filled += 1;
    }
    let name = node.name.clone();
    let own = Some(name.as_str()).filter(|n| !n.trim().is_empty());
    for child in &mut node.children {
        fill(child, own, filled);
    }
}

/// A one-line instruction for a category from what it is: a bin is "Miscellaneous <parent>
/// items" (as smart pruning's orphan bins say it); a list is "<parent> items such as a, b and
/// c"; a category of categories is "<parent> groups such as A, B and C"; without a parent
/// the sentence starts with "Items" or "Groups".
pub fn describe(node: &TaxonomyNode, parent: Option<&str>) -> String {
    let parent = parent.map(str::trim).filter(|p| !p.is_empty());
    if node.metadata.is_bin {
        return match parent {
            Some(p) => format!("Miscellaneous {p} items"),
            None => "Miscellaneous items".to_string(),
        };
    }
    let (kind, members): (&str, Vec<&str>) = if node.children.is_empty() {
        ("items", node.items.iter().map(String::as_str).collect())
    } else {
        ("groups", node.children.iter().map(|c| c.name.as_str()).collect())
    };
    let head = match parent {
        Some(p) => format!("{} {kind}", capitalise(p)),
        None => capitalise(kind),
    };
    if members.is_empty() {
        return match parent {
            Some(p) => format!("{} category with no {kind} yet", capitalise(p)),
            None => format!("Category with no {kind} yet"),
        };
    }
    format!("{head} such as {}", member_list(&members))
}

/// `a`, `a and b`, `a, b and c`, `a, b, c and others`.
fn member_list(members: &[&str]) -> String {
    let shown: Vec<String> = members.iter().take(NAMED_MEMBERS).map(|m| short(m)).collect();
    match (shown.len(), members.len() > NAMED_MEMBERS) {
        (_, true) => format!("{} and others", shown.join(", ")),
        (1, false) => shown[0].clone(),
        (n, false) => format!("{} and {}", shown[..n - 1].join(", "), shown[n - 1]),
    }
}

fn short(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() <= MEMBER_CHARS {
        return text.to_string();
    }
    let cut: String = text.chars().take(MEMBER_CHARS).collect();
    format!("{}...", cut.trim_end())
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_category_gets_an_instruction_and_glosses_stay() {
        let mut root = TaxonomyNode::new("terms");
        let mut fungus = TaxonomyNode::with_gloss("Fungus", "an organism of the kingdom Fungi");
        fungus
            .children
            .push(TaxonomyNode::list("Pholiota", ["pholiota aurea", "pholiota flammans"]));
        let mut bin = TaxonomyNode::list("Other (Fungus)", ["yeast"]);
        bin.metadata.is_bin = true;
        fungus.children.push(bin);
        root.children.push(fungus);
        root.children.push(TaxonomyNode::list("Numbers", ["1", "2", "3", "4", "5"]));
        root.children.push(TaxonomyNode::new("Nothing"));
        assert_eq!(fill_missing(&mut root), 5);
        let gloss = |n: &TaxonomyNode| n.metadata.gloss.clone().unwrap();
        assert_eq!(gloss(&root), "Groups such as Fungus, Numbers and Nothing");
        assert_eq!(gloss(&root.children[0]), "an organism of the kingdom Fungi");
        assert_eq!(
            gloss(&root.children[0].children[0]),
            "Fungus items such as pholiota aurea and pholiota flammans"
        );
        assert_eq!(gloss(&root.children[0].children[1]), "Miscellaneous Fungus items");
        assert_eq!(gloss(&root.children[1]), "Terms items such as 1, 2, 3 and others");
        assert_eq!(gloss(&root.children[2]), "Terms category with no items yet");
        assert_eq!(fill_missing(&mut root), 0, "nothing left to fill");
    }

    #[test]
    fn long_members_are_cut() {
        let node = TaxonomyNode::list("X", ["a".repeat(100)]);
        let text = describe(&node, None);
        assert!(text.ends_with("...") && text.chars().count() < 70, "{text}");
    }
}
