//! Skeleton files as the tools read them (`lint`, `compare`): the YAML skeletons, and the
//! JSONL the tool writes (`dataset --format jsonl`: one `{"text", "label", "hierarchy"}` per
//! item). A [`Skeleton`] keeps the file's text, so a cleaned copy can be an edit of it
//! ([`crate::edit`]), and notes on what was read other than as written.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::output::{from_yaml_noted, read_text};
use crate::params::Format;
use crate::taxonomy::TaxonomyNode;

/// A skeleton file, read.
#[derive(Debug, Clone)]
pub struct Skeleton {
    pub tree: TaxonomyNode,
    pub format: Format,
    /// The file's text as it is.
    pub text: String,
    /// What was read other than as written (items that are not strings, ...), to tell the user.
    pub notes: Vec<String>,
}

/// Reads a YAML or JSONL skeleton (see [`format_of`]); errors name the file.
pub fn read_skeleton(path: &Path) -> Result<Skeleton> {
    let text = read_text(path)?;
    let format = format_of(path, &text);
    let (tree, notes) = match format {
        Format::Yaml => from_yaml_noted(&text)
            .with_context(|| format!("{} is not a skeleton YAML", path.display()))?,
        Format::Jsonl => (
            from_jsonl(&text)
                .with_context(|| format!("{} is not a skeleton JSONL", path.display()))?,
            Vec::new(),
        ),
    };
    Ok(Skeleton { tree, format, text, notes })
}

/// JSONL for a `.jsonl` / `.ndjson` file, YAML for `.yaml` / `.yml`; otherwise JSONL when the
/// first line is a JSON object with a `text` field (a YAML flow mapping is not JSON), else YAML.
pub fn format_of(path: &Path, text: &str) -> Format {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("jsonl" | "ndjson") => Format::Jsonl,
        Some("yaml" | "yml") => Format::Yaml,
        _ => {
            let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            let value = serde_json::from_str::<serde_json::Value>(first);
            match value {
                Ok(v) if v.get("text").is_some() => Format::Jsonl,
                _ => Format::Yaml,
            }
        }
    }
}

/// One line of the JSONL format.
#[derive(Debug, Deserialize)]
pub struct Record {
    pub text: String,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub hierarchy: Vec<String>,
}

impl Record {
    /// The category path of the record's item: its hierarchy, else its label.
    pub fn path(&self) -> Vec<String> {
        match (&self.hierarchy[..], &self.label) {
            ([], Some(label)) => vec![label.clone()],
            (h, _) => h.to_vec(),
        }
    }
}

/// Parses one non-blank JSONL line (`number` is one-based, for the message).
pub fn parse_record(line: &str, number: usize) -> Result<Record> {
    let record: Record = serde_json::from_str(line).with_context(|| {
        format!("line {number} is not a {{\"text\", \"label\", \"hierarchy\"}} record")
    })?;
    if record.path().is_empty() {
        bail!("line {number}: the record has neither a hierarchy nor a label");
    }
    Ok(record)
}

/// The tree of a JSONL skeleton: every record's item under its hierarchy, in file order. One
/// common first name is the root; several go under a root with an empty name (as in YAML).
pub fn from_jsonl(text: &str) -> Result<TaxonomyNode> {
    let mut root = TaxonomyNode::new("");
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let record = parse_record(line, i + 1)?;
        insert(&mut root, &record.path(), record.text);
    }
    if root.children.is_empty() {
        bail!("no records: expected one {{\"text\", \"label\", \"hierarchy\"}} object per line");
    }
    let mut root = match (root.children.len(), root.items.is_empty()) {
        (1, true) => root.children.pop().expect("one child"),
        _ => root,
    };
    root.metadata.is_root = true;
    Ok(root)
}

fn insert(node: &mut TaxonomyNode, path: &[String], item: String) {
    match path.split_first() {
        None => node.items.push(item),
        Some((first, rest)) => {
            let index = match node.children.iter().position(|c| &c.name == first) {
                Some(i) => i,
                None => {
                    node.children.push(TaxonomyNode::new(first.clone()));
                    node.children.len() - 1
                }
            };
            insert(&mut node.children[index], rest, item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::to_jsonl;

    #[test]
    fn jsonl_reads_back_the_written_tree() {
        let mut root = TaxonomyNode::new("Animal");
        root.children.push(TaxonomyNode::list("Dog", ["pug", "beagle"]));
        let mut cat = TaxonomyNode::new("Cat");
        cat.children.push(TaxonomyNode::list("Big Cat", ["lion"]));
        root.children.push(cat);
        let back = from_jsonl(&to_jsonl(&root).unwrap()).unwrap();
        assert_eq!(back.name, "Animal");
        assert_eq!(back.children[0].items, vec!["pug", "beagle"]);
        assert_eq!(back.children[1].children[0].items, vec!["lion"]);
        assert_eq!(back.all_items(), root.all_items());
    }

    #[test]
    fn jsonl_errors_name_the_line_and_formats_are_told_apart() {
        let err = from_jsonl("{\"text\": \"a\", \"hierarchy\": [\"A\"]}\nnope\n").unwrap_err();
        assert!(format!("{err:#}").contains("line 2"), "{err:#}");
        let jsonl = "{\"text\": \"a\", \"label\": \"A\", \"hierarchy\": [\"A\"]}\n";
        assert_eq!(format_of(Path::new("x.txt"), jsonl), Format::Jsonl);
        assert_eq!(format_of(Path::new("x"), "{A: [a, b]}\n"), Format::Yaml);
        assert_eq!(format_of(Path::new("x.jsonl"), ""), Format::Jsonl);
    }
}
