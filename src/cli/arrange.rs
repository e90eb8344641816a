//! `wildcards-gen arrange TERMS`: cluster a flat list of terms into named groups (no LLM).
//!
//! TERMS is a text file with one term per line (blank lines and `#` comments skipped) or a
//! YAML file holding a list of terms (or one key with a list, whose key names the context).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use wildcards_core::output::{read_text, scalar_text, to_yaml};
use wildcards_core::params::ClusterMethod;
use wildcards_core::semantic::arrange::{arrange_list, ArrangeParams};
use wildcards_core::semantic::hdbscan::check_list_size;
use wildcards_core::taxonomy::TaxonomyNode;
use wildcards_core::wordnet::WordNet;

use super::embedding::{ModelArg, ServerArgs};
use super::files::{check_output, write_output};

#[derive(Debug, Args)]
pub struct ArrangeArgs {
    /// Terms to arrange: a text file (one per line) or a YAML list.
    #[arg(value_name = "TERMS")]
    pub terms: PathBuf,

    /// Write the groups as a skeleton YAML here (default, or `-`: print it).
    #[arg(short, long, value_name = "OUT.yaml")]
    pub output: Option<PathBuf>,

    /// Smallest group of the first clustering pass.
    #[arg(long = "min-cluster", value_name = "N", default_value_t = 5,
          value_parser = clap::value_parser!(u16).range(2..))]
    pub min_cluster: u16,

    /// A group is kept when its mean membership probability is at least this (0..1).
    #[arg(long, value_name = "T", default_value_t = 0.15, value_parser = parse_probability)]
    pub threshold: f64,

    /// Cluster selection of the first pass: eom (fewer, larger groups) or leaf (more, smaller).
    #[arg(long, value_name = "eom|leaf", default_value = "eom", value_parser = parse_method)]
    pub method: ClusterMethod,

    /// Name of the top-level category (default: the YAML key, else the file name).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// WordNet 3.0 database folder for group names (default: $WNHOME, /usr/share/wordnet, ...).
    #[arg(long, value_name = "DIR")]
    pub wordnet_dir: Option<PathBuf>,

    #[command(flatten)]
    pub model: ModelArg,

    #[command(flatten)]
    pub server: ServerArgs,
}

impl ArrangeArgs {
    pub fn run(&self) -> Result<()> {
        if let Some(out) = &self.output {
            check_output(out)?;
        }
        let (terms, key) = read_terms(&self.terms)?;
        check_list_size(terms.len())?;
        let wordnet = match &self.wordnet_dir {
            Some(dir) => Some(WordNet::locate(Some(dir))?),
            None => WordNet::locate(None)
                .map_err(|e| eprintln!("warning: {e:#}; groups get keyword names"))
                .ok(),
        };
        let name = self.name.clone().or(key).unwrap_or_else(|| file_stem(&self.terms));
        let params = ArrangeParams {
            min_cluster: usize::from(self.min_cluster),
            threshold: self.threshold,
            method: self.method,
            ..ArrangeParams::default()
        };
        let embedder = self.server.connect(&self.model.semantic_model)?;
        let (arrangement, _) =
            arrange_list(&terms, &*embedder.embedder(), wordnet.as_ref(), Some(&name), &params)?;
        let mut root = TaxonomyNode::new(name);
        root.children = arrangement.to_nodes();
        if root.children.is_empty() {
            root.items = terms.clone();
        }
        // Every key carries an instruction, as in generated skeletons (WordNet glosses where
        // the names came from WordNet, else a sentence from the group's parent and members).
        wildcards_core::instructions::fill_missing(&mut root);
        let yaml = to_yaml(&root)?;
        eprintln!(
            "{} terms: {} groups, {} left over{}",
            terms.len(),
            arrangement.groups.len(),
            arrangement.leftovers.len(),
            names_in_brief(&arrangement.stats.names, SUMMARY_NAMES_CHARS)
        );
        match &self.output {
            Some(out) => write_output(out, &yaml)?,
            None => batch_client::out!("{yaml}"),
        }
        Ok(())
    }
}

/// How much of the group names the summary line shows: it stays one readable line however many
/// groups there are (all names are in the output file).
const SUMMARY_NAMES_CHARS: usize = 80;

/// ` (a, b, c)`, or ` (a, b, and 7 more)` once the names would pass `max_chars`; empty for none.
fn names_in_brief(names: &[String], max_chars: usize) -> String {
    if names.is_empty() {
        return String::new();
    }
    let mut shown: Vec<&str> = Vec::new();
    let mut used = 0;
    for name in names {
        let len = name.chars().count() + 2;
        if !shown.is_empty() && used + len > max_chars {
            break;
        }
        shown.push(name);
        used += len;
    }
    let rest = names.len() - shown.len();
    match rest {
        0 => format!(" ({})", shown.join(", ")),
        _ => format!(" ({}, and {rest} more)", shown.join(", ")),
    }
}

/// The terms of TERMS (trimmed, de-duplicated, in order) and, for a YAML `{key: [...]}`
/// file, the key.
pub fn read_terms(path: &Path) -> Result<(Vec<String>, Option<String>)> {
    let text = read_text(path)?;
    let is_yaml = matches!(
        path.extension().and_then(|e| e.to_str()).map(str::to_lowercase).as_deref(),
        Some("yaml" | "yml")
    );
    let (raw, key) = if is_yaml { yaml_terms(&text, path)? } else { (line_terms(&text), None) };
    let terms = unique_terms(raw);
    if terms.is_empty() {
        bail!("{} holds no terms: put one term per line (or a YAML list)", path.display());
    }
    Ok((terms, key))
}

/// The terms trimmed, without empty ones and repeats, in first-seen order. A set of the terms
/// seen keeps this linear (a list of 20,000 terms is common).
fn unique_terms(raw: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::with_capacity(raw.len());
    raw.into_iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty() && seen.insert(t.clone()))
        .collect()
}

fn line_terms(text: &str) -> Vec<String> {
    text.lines().filter(|l| !l.trim_start().starts_with('#')).map(str::to_string).collect()
}

fn yaml_terms(text: &str, path: &Path) -> Result<(Vec<String>, Option<String>)> {
    use serde_norway::Value;
    let value: Value = serde_norway::from_str(text)
        .with_context(|| format!("{} is not valid YAML", path.display()))?;
    let shape = "expected a list of terms, or one key holding a list of terms";
    let (list, key) = match value {
        Value::Sequence(s) => (s, None),
        Value::Mapping(m) if m.len() == 1 => {
            let (k, v) = m.into_iter().next().expect("one entry");
            let k = scalar_text(&k).unwrap_or_default();
            match v {
                Value::Sequence(s) => (s, Some(k)),
                Value::Mapping(_) => bail!("{}: `{k}` holds categories; {shape}", path.display()),
                other => bail!(
                    "{}: `{k}` holds one value ({:?}), not a list; {shape}",
                    path.display(),
                    scalar_text(&other).unwrap_or_default()
                ),
            }
        }
        _ => bail!("{}: {shape}", path.display()),
    };
    let mut terms = Vec::with_capacity(list.len());
    let mut not_strings = Vec::new();
    for (i, v) in list.into_iter().enumerate() {
        let Some(text) = scalar_text(&v) else {
            bail!(
                "{}: entry {} of the list is a nested list or mapping, not a term; use plain \
                 strings",
                path.display(),
                i + 1
            );
        };
        if !v.is_string() {
            not_strings.push(text.clone());
        }
        terms.push(text);
    }
    if !not_strings.is_empty() {
        // Read as their text, as `lint` reads such items (`42`, `true`, `null`).
        eprintln!(
            "note: {}: {} of the terms are not strings ({}); read as their text",
            path.display(),
            not_strings.len(),
            not_strings.join(", ")
        );
    }
    Ok((terms, key))
}

fn file_stem(path: &Path) -> String {
    path.file_stem().and_then(|s| s.to_str()).unwrap_or("Terms").replace(['_', '-'], " ")
}

/// `--threshold`: checked by clap, so a bad value (NaN included) is a usage error (exit 2).
fn parse_probability(s: &str) -> std::result::Result<f64, String> {
    let t: f64 = s.trim().parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&t) {
        Ok(t)
    } else {
        Err(format!("{t} is outside 0..1 (it is a mean probability)"))
    }
}

fn parse_method(s: &str) -> std::result::Result<ClusterMethod, String> {
    match s.to_lowercase().as_str() {
        "eom" => Ok(ClusterMethod::Eom),
        "leaf" => Ok(ClusterMethod::Leaf),
        _ => Err(format!("`{s}` is not a method; use eom or leaf")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_dropped_keeping_first_seen_order() {
        let raw = ["b", " a", "b ", "", "c", "a", "  "].map(String::from).to_vec();
        assert_eq!(unique_terms(raw), ["b", "a", "c"]);
        // Many terms, each repeated: every distinct term once, in order of first appearance.
        let raw: Vec<String> = (0..60_000).map(|i| format!("term {}", (i * 7) % 20_000)).collect();
        let want: Vec<String> = (0..20_000).map(|i| format!("term {}", (i * 7) % 20_000)).collect();
        assert_eq!(unique_terms(raw), want);
    }

    #[test]
    fn the_summary_names_stay_short() {
        let names: Vec<String> = (0..200).map(|i| format!("Group number {i}")).collect();
        let brief = names_in_brief(&names, SUMMARY_NAMES_CHARS);
        assert!(brief.chars().count() < 120, "{brief}");
        assert!(brief.starts_with(" (Group number 0, Group number 1, "), "{brief}");
        assert!(brief.ends_with(" more)"), "{brief}");
        let few = ["Birds".to_string(), "Fish".to_string()];
        assert_eq!(names_in_brief(&few, SUMMARY_NAMES_CHARS), " (Birds, Fish)");
        assert_eq!(names_in_brief(&[], SUMMARY_NAMES_CHARS), "");
    }

    #[test]
    fn terms_from_lines_and_yaml() {
        let dir = tempfile::tempdir().unwrap();
        let txt = dir.path().join("birds.txt");
        std::fs::write(&txt, "# birds\nrobin\n\n sparrow \nrobin\n").unwrap();
        assert_eq!(read_terms(&txt).unwrap(), (vec!["robin".into(), "sparrow".into()], None));
        let yaml = dir.path().join("b.yaml");
        std::fs::write(&yaml, "Birds:\n  - robin\n  - owl\n").unwrap();
        assert_eq!(
            read_terms(&yaml).unwrap(),
            (vec!["robin".into(), "owl".into()], Some("Birds".into()))
        );
        std::fs::write(&yaml, "a: 1\nb: 2\n").unwrap();
        assert!(read_terms(&yaml).unwrap_err().to_string().contains("list of terms"));
        std::fs::write(&yaml, "Birds: robin\n").unwrap();
        let one = read_terms(&yaml).unwrap_err().to_string();
        assert!(one.contains("`Birds` holds one value (\"robin\"), not a list"), "{one}");
        std::fs::write(&yaml, "- robin\n- 42\n- true\n- ~\n- 1.5\n").unwrap();
        let terms = read_terms(&yaml).unwrap().0;
        assert_eq!(terms, ["robin", "42", "true", "null", "1.5"], "as lint reads them");
        std::fs::write(&txt, "\n# nothing\n").unwrap();
        assert!(read_terms(&txt).unwrap_err().to_string().contains("holds no terms"));
    }
}
