//! A skeleton file without the items a lint flagged, as an edit of its text (`lint --clean`):
//! the lines of the flagged items are deleted and every other byte stays as it was, so a
//! hand-written file keeps its comments, quoting, anchors, number-like items and layout. A
//! re-render would lose all of that (the YAML reader keeps only the structure).
//!
//! Where a flagged item is not one whole line of a block list — a flow list (`[a, b]`), an
//! item that comes from an alias or a merge key, an anchored item an alias uses elsewhere, an
//! item spanning several lines — the edit is refused with the reason. Every edit is checked:
//! the edited text must read back as the original skeleton less exactly the flagged items.
//!
//! [`with_instructions`] then gives a key line that has no comment at all an `# instruction:`
//! (every key of a skeleton carries one), again as an edit that is checked by reading back.

use std::collections::HashSet;

use anyhow::{bail, Result};

use crate::output::{from_yaml, scalar_text, split_key};
use crate::params::Format;
use crate::semantic::lint::{remove_outliers, LintReport};
use crate::skeleton::{from_jsonl, parse_record, Skeleton};
use crate::taxonomy::TaxonomyNode;

/// The skeleton's text without the items `report` flags, and how many items that removes.
/// The error says why the text cannot be edited that way (nothing is to be written then).
pub fn without_flagged(skeleton: &Skeleton, report: &LintReport) -> Result<(String, usize)> {
    let flagged: Vec<(&[String], &str)> = report
        .lists
        .iter()
        .flat_map(|l| l.outliers.iter().map(move |f| (l.path.as_slice(), f.item.as_str())))
        .collect();
    if flagged.is_empty() {
        return Ok((skeleton.text.clone(), 0));
    }
    let lines: Vec<&str> = skeleton.text.split_inclusive('\n').collect();
    let doomed = match skeleton.format {
        Format::Yaml => yaml_lines_to_delete(&lines, &flagged)?,
        Format::Jsonl => jsonl_lines_to_delete(&lines, &flagged)?,
    };
    let edited: String =
        lines.iter().enumerate().filter(|(i, _)| !doomed.contains(i)).map(|(_, l)| *l).collect();
    let mut expected = skeleton.tree.clone();
    let removed = remove_outliers(&mut expected, report);
    let matches = match skeleton.format {
        Format::Yaml => from_yaml(&edited).is_ok_and(|t| t == expected),
        Format::Jsonl => from_jsonl(&edited).is_ok_and(|t| t == without_empty(expected)),
    };
    if !matches {
        bail!(
            "deleting the flagged items' lines would change more than those items (the file \
             uses YAML this edit does not follow, such as anchors or multi-line values)"
        );
    }
    Ok((edited, removed))
}

/// The YAML text with an `# instruction:` comment at the end of every key line that has no
/// comment at all and whose category has no instruction, made by
/// [`crate::instructions::describe`] (what a generated skeleton would say); every other byte
/// stays. Returns the text and how many comments were added; when the added comments would not
/// read back as exactly those instructions, the text is returned unchanged (0 added).
pub fn with_instructions(text: &str) -> Result<(String, usize)> {
    let tree = from_yaml(text)?;
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut expected = tree.clone();
    let mut added: Vec<(usize, String)> = Vec::new();
    for (line, path, commented) in scan_yaml(&lines).keys {
        if commented {
            continue;
        }
        let Some((node, parent)) = find(&tree, &path) else { continue };
        if node.metadata.gloss.is_some() {
            continue;
        }
        let gloss = crate::instructions::describe(node, parent);
        if let Some(slot) = find_mut(&mut expected, &path) {
            slot.metadata.gloss = Some(gloss.clone());
            added.push((line, gloss));
        }
    }
    if added.is_empty() {
        return Ok((text.to_string(), 0));
    }
    let mut out = String::with_capacity(text.len() + added.len() * 64);
    for (i, raw) in lines.iter().enumerate() {
        match added.iter().find(|(l, _)| *l == i) {
            Some((_, gloss)) => {
                let body = raw.trim_end_matches(['\n', '\r']);
                let end = &raw[body.len()..];
                let gloss = crate::output::clean_comment(gloss);
                out.push_str(&format!("{body} # instruction: {gloss}{end}"));
                if end.is_empty() {
                    out.push('\n');
                }
            }
            None => out.push_str(raw),
        }
    }
    match from_yaml(&out) {
        Ok(back) if back == expected => Ok((out, added.len())),
        _ => Ok((text.to_string(), 0)),
    }
}

/// The category at `path` (keys from the top) and its parent's name.
fn find<'t>(
    tree: &'t TaxonomyNode,
    path: &[String],
) -> Option<(&'t TaxonomyNode, Option<&'t str>)> {
    let (mut node, rest) = match tree.name.is_empty() {
        true => (tree.children.iter().find(|c| Some(&c.name) == path.first())?, &path[1..]),
        false if Some(&tree.name) == path.first() => (tree, &path[1..]),
        false => return None,
    };
    let mut parent = None;
    for key in rest {
        parent = Some(node.name.as_str());
        node = node.children.iter().find(|c| &c.name == key)?;
    }
    Some((node, parent))
}

fn find_mut<'t>(tree: &'t mut TaxonomyNode, path: &[String]) -> Option<&'t mut TaxonomyNode> {
    let (mut node, rest) = match tree.name.is_empty() {
        true => (tree.children.iter_mut().find(|c| Some(&c.name) == path.first())?, &path[1..]),
        false if Some(&tree.name) == path.first() => (tree, &path[1..]),
        false => return None,
    };
    for key in rest {
        node = node.children.iter_mut().find(|c| &c.name == key)?;
    }
    Some(node)
}

/// A JSONL skeleton has no empty categories: a category whose items all went is gone.
fn without_empty(mut node: TaxonomyNode) -> TaxonomyNode {
    node.children = node
        .children
        .into_iter()
        .map(without_empty)
        .filter(|c| !c.items.is_empty() || !c.children.is_empty())
        .collect();
    node
}

fn jsonl_lines_to_delete(lines: &[&str], flagged: &[(&[String], &str)]) -> Result<HashSet<usize>> {
    let mut doomed = HashSet::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let record = parse_record(line, i + 1)?;
        let path = record.path();
        if flagged.iter().any(|(p, item)| *p == path.as_slice() && *item == record.text) {
            doomed.insert(i);
        }
    }
    Ok(doomed)
}

/// One `- item` line of a block list.
#[derive(Debug)]
struct ItemLine {
    line: usize,
    /// Keys from the top of the document to the list's key.
    path: Vec<String>,
    /// The item as the reader sees it (`None` for an alias).
    value: Option<String>,
    anchor: Option<String>,
    /// More-indented lines follow (a block scalar or a continued plain or quoted scalar).
    multi_line: bool,
}

/// What a scan of a YAML skeleton finds.
#[derive(Debug, Default)]
struct Scan {
    items: Vec<ItemLine>,
    /// Keys whose value is not a block list, with what it is instead (flow style, an alias,
    /// a merge key in the mapping).
    other_forms: Vec<(Vec<String>, &'static str)>,
    /// Anchor names some alias (`*name`) uses.
    aliased: HashSet<String>,
    /// Key lines: (line, keys from the top down to this one, whether a comment follows).
    keys: Vec<(usize, Vec<String>, bool)>,
}

fn yaml_lines_to_delete(lines: &[&str], flagged: &[(&[String], &str)]) -> Result<HashSet<usize>> {
    let scan = scan_yaml(lines);
    let mut doomed = HashSet::new();
    for (path, item) in flagged {
        let shown = path.join(" > ");
        let found: Vec<&ItemLine> = scan
            .items
            .iter()
            .filter(|l| l.path == *path && l.value.as_deref() == Some(*item))
            .collect();
        if found.is_empty() {
            let multi = scan.items.iter().any(|l| l.path == *path && l.multi_line);
            let why = match multi {
                true => "not on a line of its own: an item of the list spans several lines".into(),
                false => why_not_a_line(&scan, path),
            };
            bail!("the flagged item {item:?} of `{shown}` is {why}");
        }
        for l in found {
            if l.multi_line {
                bail!("the flagged item {item:?} of `{shown}` spans several lines");
            }
            if let Some(anchor) = l.anchor.as_ref().filter(|a| scan.aliased.contains(*a)) {
                bail!(
                    "the flagged item {item:?} of `{shown}` is anchored (&{anchor}) and an alias \
                     (*{anchor}) uses it elsewhere"
                );
            }
            doomed.insert(l.line);
        }
    }
    Ok(doomed)
}

/// Why a flagged item has no line of its own: the list's (or an enclosing mapping's) form.
fn why_not_a_line(scan: &Scan, path: &[String]) -> String {
    let form = scan
        .other_forms
        .iter()
        .filter(|(p, _)| path.starts_with(p))
        .max_by_key(|(p, _)| p.len())
        .map(|(_, what)| *what);
    let alias_items = scan.items.iter().any(|l| l.path == path && l.value.is_none());
    match form {
        Some(what) => format!("not on a line of its own: {what}"),
        None if alias_items => {
            "not on a line of its own: the list holds aliases (`- *name`)".into()
        }
        None => "not on a line of its own (the list is not written one `- item` per line)".into(),
    }
}

/// Walks the lines tracking the keys above each one (by indentation, like
/// [`crate::output`]'s comment reader) and records every block-list item line.
fn scan_yaml(lines: &[&str]) -> Scan {
    let mut scan = Scan::default();
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut explicit_key: Option<(usize, String)> = None;
    let mut inside_deeper_than: Option<usize> = None;
    for (i, raw) in lines.iter().enumerate() {
        let line = raw.trim_end_matches(['\n', '\r']);
        let trimmed = line.trim_start_matches(' ');
        let indent = line.len() - trimmed.len();
        scan.aliased.extend(aliases_in(trimmed));
        if let Some(limit) = inside_deeper_than {
            if trimmed.is_empty() || indent > limit {
                continue;
            }
            inside_deeper_than = None;
        }
        if trimmed.is_empty() || trimmed.starts_with('#') || is_document_marker(trimmed) {
            continue;
        }
        if trimmed == "-" || trimmed.starts_with("- ") {
            stack.retain(|(k, _)| *k <= indent);
            let rest = trimmed[1..].trim_start();
            let path = stack.iter().map(|(_, k)| k.clone()).collect();
            scan.items.push(item_line(i, path, rest, indent, lines));
            if is_block_scalar(after_properties(rest)) {
                inside_deeper_than = Some(indent);
            }
            continue;
        }
        let (key, rest) = if let Some(k) = trimmed.strip_prefix("? ") {
            explicit_key = split_key(k.trim_end(), true).map(|(key, _)| (indent, key));
            continue;
        } else if let Some(rest) = trimmed.strip_prefix(':') {
            match explicit_key.take() {
                Some((at, k)) if at == indent => (k, rest),
                _ => continue,
            }
        } else {
            match split_key(trimmed, false) {
                Some(kr) => kr,
                None => continue,
            }
        };
        while stack.last().is_some_and(|(at, _)| *at >= indent) {
            stack.pop();
        }
        let parent: Vec<String> = stack.iter().map(|(_, k)| k.clone()).collect();
        let is_merge = key == "<<";
        stack.push((indent, key));
        let commented = rest.trim_start().starts_with('#') || rest.contains(" #");
        scan.keys.push((i, stack.iter().map(|(_, k)| k.clone()).collect(), commented));
        let value = after_properties(rest.trim_start());
        if is_merge {
            scan.other_forms.push((parent, "its mapping takes entries from a merge key (`<<`)"));
        } else if let Some(what) = value_form(value) {
            scan.other_forms.push((stack.iter().map(|(_, k)| k.clone()).collect(), what));
        }
        if is_block_scalar(value) {
            inside_deeper_than = Some(indent);
        }
    }
    scan
}

fn is_document_marker(line: &str) -> bool {
    line == "---" || line == "..." || line.starts_with("--- ") || line.starts_with("... ")
}

/// What a key's value is when it is not a block list or mapping below the key.
fn value_form(value: &str) -> Option<&'static str> {
    match value.chars().next() {
        Some('[') => Some("the list is in flow style (`[a, b]`)"),
        Some('{') => Some("the mapping is in flow style (`{A: [a, b]}`)"),
        Some('*') => Some("the list comes from an alias (`*name`)"),
        _ => None,
    }
}

/// `rest` without a leading anchor (`&name`) and tag (`!tag`).
fn after_properties(mut rest: &str) -> &str {
    while rest.starts_with(['&', '!']) {
        rest = rest.split_once([' ', '\t']).map_or("", |(_, r)| r.trim_start());
    }
    rest
}

/// A block scalar header: `|` or `>` with optional indicators, then nothing but a comment.
fn is_block_scalar(value: &str) -> bool {
    let head = value.split(" #").next().unwrap_or("").trim_end();
    head.starts_with(['|', '>'])
        && head[1..].chars().all(|c| c.is_ascii_digit() || "+-".contains(c))
}

/// Anchor names used by aliases on a line (`*name` after a space, `[`, `,` or the start).
fn aliases_in(line: &str) -> Vec<String> {
    let code = line.split(" #").next().unwrap_or("");
    let mut found = Vec::new();
    let mut previous = ' ';
    for (i, c) in code.char_indices() {
        if c == '*' && matches!(previous, ' ' | '[' | ',' | '{' | ':') {
            let name: String =
                code[i + 1..].chars().take_while(|c| !" ,]}\t".contains(*c)).collect();
            if !name.is_empty() {
                found.push(name);
            }
        }
        previous = c;
    }
    found
}

/// An item line's facts; `rest` is what follows the `-`.
fn item_line(i: usize, path: Vec<String>, rest: &str, indent: usize, lines: &[&str]) -> ItemLine {
    let anchor = rest
        .strip_prefix('&')
        .map(|a| a.chars().take_while(|c| !c.is_whitespace()).collect::<String>());
    let value = match rest.starts_with('*') {
        true => None,
        false => {
            serde_norway::from_str::<serde_norway::Value>(rest).ok().and_then(|v| scalar_text(&v))
        }
    };
    let next = lines[i + 1..]
        .iter()
        .map(|l| l.trim_end_matches(['\n', '\r']))
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let multi_line = next.is_some_and(|l| l.len() - l.trim_start_matches(' ').len() > indent);
    ItemLine { line: i, path, value, anchor, multi_line }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::OutlierMethod;
    use crate::semantic::lint::{Flagged, ListReport};

    fn report(flags: &[(&[&str], &str)]) -> LintReport {
        let mut lists: Vec<ListReport> = Vec::new();
        for (path, item) in flags {
            let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
            let flagged = Flagged {
                item: item.to_string(),
                score: 1.0,
                similarity_own: 0.0,
                fits_better: None,
            };
            match lists.iter_mut().find(|l| l.path == path) {
                Some(l) => l.outliers.push(flagged),
                None => lists.push(ListReport { path, items: 3, outliers: vec![flagged] }),
            }
        }
        LintReport {
            method: OutlierMethod::Glosh,
            threshold: 0.1,
            lists_checked: lists.len(),
            items_checked: 0,
            outliers_total: flags.len(),
            lists,
            embedded_texts: 0,
            cache_hits: 0,
        }
    }

    fn yaml(text: &str) -> Skeleton {
        let (tree, notes) = crate::output::from_yaml_noted(text).unwrap();
        Skeleton { tree, format: Format::Yaml, text: text.into(), notes }
    }

    /// A hand-written file: comments, anchors, quoting, numbers, null, a plain value, an empty
    /// mapping, a merge key, a list at its key's indentation, CRLF on one line.
    const HAND: &str = "\
# my pets, by hand
base: &base
  Fish: [goldfish, koi]   # flow list, untouched
Pets: # instruction: animals kept at home
  <<: *base
  Dogs:
    # the good ones
    - pug
    - 'beagle'   # quoted
    - fist
    - 42
  Cats:
  - tabby
  - ~
  - true\r
  - manx
  Odd: text
  Empty: {}
";

    #[test]
    fn only_the_flagged_lines_go() {
        let s = yaml(HAND);
        let r = report(&[
            (&["Pets", "Dogs"], "fist"),
            (&["Pets", "Dogs"], "42"),
            (&["Pets", "Cats"], "true"),
        ]);
        let (edited, removed) = without_flagged(&s, &r).unwrap();
        assert_eq!(removed, 3);
        let want =
            HAND.replace("    - fist\n", "").replace("    - 42\n", "").replace("  - true\r\n", "");
        assert_eq!(edited, want);
        let (_, none) = without_flagged(&s, &report(&[])).unwrap();
        assert_eq!(none, 0);
    }

    #[test]
    fn what_cannot_be_an_edit_is_refused_with_the_reason() {
        let s = yaml(HAND);
        let flow = without_flagged(&s, &report(&[(&["base", "Fish"], "koi")])).unwrap_err();
        assert!(flow.to_string().contains("flow style"), "{flow}");
        let merged = without_flagged(&s, &report(&[(&["Pets", "Fish"], "koi")])).unwrap_err();
        assert!(merged.to_string().contains("merge key"), "{merged}");
        let anchored = yaml("A:\n  B:\n    - &x pug\n    - beagle\n  C:\n    - *x\n    - tabby\n");
        let e = without_flagged(&anchored, &report(&[(&["A", "B"], "pug")])).unwrap_err();
        assert!(e.to_string().contains("alias (*x) uses it"), "{e}");
        let multi = yaml("A:\n  B:\n    - a long\n      name\n    - pug\n");
        let e = without_flagged(&multi, &report(&[(&["A", "B"], "a long name")])).unwrap_err();
        assert!(e.to_string().contains("several lines"), "{e}");
        let aliased = yaml("A:\n  B: &b\n    - pug\n    - fist\n  C: *b\n");
        let e = without_flagged(&aliased, &report(&[(&["A", "C"], "fist")])).unwrap_err();
        assert!(e.to_string().contains("alias"), "{e}");
    }

    #[test]
    fn keys_without_a_comment_get_an_instruction_and_nothing_else_changes() {
        let text = "Root: # instruction: the top\n  Odd:\n    - \"012\"\n    - x\n  Kept: # a note\n    - y\n  Flow: [a, b]\n";
        let (out, added) = with_instructions(text).unwrap();
        assert_eq!(added, 2, "{out}");
        assert_eq!(
            out,
            "Root: # instruction: the top\n  Odd: # instruction: Root items such as 012 and x\n    - \"012\"\n    - x\n  Kept: # a note\n    - y\n  Flow: [a, b] # instruction: Root items such as a and b\n"
        );
        assert_eq!(with_instructions(&out).unwrap(), (out.clone(), 0));
    }

    #[test]
    fn jsonl_loses_exactly_the_flagged_records() {
        let text = "{\"text\":\"pug\",\"label\":\"Dog\",\"hierarchy\":[\"A\",\"Dog\"]}\n\
                    {\"text\":\"fist\",\"label\":\"Dog\",\"hierarchy\":[\"A\",\"Dog\"]}\n\
                    {\"text\":\"lion\",\"label\":\"Cat\",\"hierarchy\":[\"A\",\"Cat\"]}\n";
        let s = Skeleton {
            tree: from_jsonl(text).unwrap(),
            format: Format::Jsonl,
            text: text.into(),
            notes: vec![],
        };
        let (edited, removed) =
            without_flagged(&s, &report(&[(&["A", "Dog"], "fist"), (&["A", "Cat"], "lion")]))
                .unwrap();
        assert_eq!(removed, 2);
        assert_eq!(edited, text.lines().next().unwrap().to_string() + "\n");
    }
}
