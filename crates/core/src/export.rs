//! A skeleton for Dynamic Prompts: as a folder of wildcard files (`wildcards-gen export
//! --format txt`, and a job's `export: txt`), or as YAML with wildcard-safe keys
//! (`--format dynamicprompts-yaml`).
//!
//! Many Dynamic Prompts users (the sd-dynamic-prompts extension of A1111 and ComfyUI, built
//! on the `dynamicprompts` library) keep wildcards as `.txt` files, one term a line, in
//! folders: `animals/frog.txt` is used as `__animals/frog__`. The export writes one folder per
//! category and one `<list>.txt` per item list, so `__Category/Sub/List__` in a prompt picks a
//! term of that list.
//!
//! - Names are made safe ([`safe_name`]) as file names (Windows included) and as wildcard
//!   paths in a prompt: Dynamic Prompts' template grammar ends a wildcard path at `(`, `$`,
//!   `{`, `}` or `#`, and its lookup globs `*`, `?`, `[`, `]`; so `Other (Fungus)` is written
//!   `Other - Fungus`. Siblings that then share a name (compared case-insensitively, for macOS
//!   and Windows) get ` - 2`, ` - 3`. Every change is reported, and listed in the folder's
//!   [`MARKER`] file (JSON).
//! - Written atomically as a whole: into a temporary folder beside the target, then renamed
//!   into place, so a reader sees the old export or the new one, never half of one.
//! - An existing non-empty folder is replaced only with `force`, and only when an earlier
//!   export wrote it (it holds [`MARKER`]): `--force` can never wipe an unrelated folder.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::taxonomy::TaxonomyNode;

/// The file that marks a folder as written by an export, with what was renamed (JSON; no
/// extension, so Dynamic Prompts, which reads `.txt`, `.yaml` and `.json` files, ignores it).
pub const MARKER: &str = ".wildcards-gen-export";

/// Longest file or folder name written, in bytes (file systems allow 255; room is left for
/// ` - 2` and `.txt`).
const MAX_NAME_BYTES: usize = 200;

/// A category written under another name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Renamed {
    /// Its keys from the top, as in the skeleton.
    pub key: Vec<String>,
    /// The names written instead, from the top.
    pub written: Vec<String>,
    pub why: &'static str,
}

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportReport {
    /// `.txt` files (one per item list).
    pub files: usize,
    pub items: usize,
    /// Categories whose name was changed.
    pub renamed: Vec<Renamed>,
    /// Items Dynamic Prompts would not read back as written (a line starting with `#` is a
    /// comment there; a line break splits an item).
    pub warnings: Vec<String>,
}

impl ExportReport {
    /// A few lines for the user: counts, then each renaming (the first `limit`).
    pub fn summary(&self, what: &str, limit: usize) -> String {
        let mut out = format!("exported {} lists ({} items) {what}", self.files, self.items);
        if !self.renamed.is_empty() {
            let n = self.renamed.len();
            let _ = write!(out, "\n{n} names changed to be safe as files and wildcard paths:");
            for r in self.renamed.iter().take(limit) {
                let _ =
                    write!(out, "\n  {} -> {} ({})", r.key.join(" > "), r.written.join("/"), r.why);
            }
            if n > limit {
                let _ =
                    write!(out, "\n  ... and {} more (all in {MARKER} of a txt export)", n - limit);
            }
        }
        for w in &self.warnings {
            let _ = write!(out, "\nwarning: {w}");
        }
        out
    }
}

/// The folder a job's `export: txt` writes beside its output: `<output stem>_wildcards`.
pub fn job_export_dir(output: &Path) -> PathBuf {
    let stem = output.file_stem().and_then(|s| s.to_str()).unwrap_or("skeleton");
    output.with_file_name(format!("{stem}_wildcards"))
}

/// The tree with every category name made safe ([`safe_name`]) and unique among its siblings
/// (case-insensitively), and what was renamed. Items are left as they are.
pub fn wildcard_safe(root: &TaxonomyNode) -> (TaxonomyNode, Vec<Renamed>) {
    let mut renamed = Vec::new();
    let mut tree = root.clone();
    if tree.name.is_empty() {
        rename_siblings(&mut tree.children, &mut Vec::new(), &mut Vec::new(), &mut renamed);
    } else {
        rename_siblings(
            std::slice::from_mut(&mut tree),
            &mut Vec::new(),
            &mut Vec::new(),
            &mut renamed,
        );
    }
    (tree, renamed)
}

fn rename_siblings(
    nodes: &mut [TaxonomyNode],
    key: &mut Vec<String>,
    written: &mut Vec<String>,
    renamed: &mut Vec<Renamed>,
) {
    let mut used: HashSet<String> = HashSet::with_capacity(nodes.len());
    for node in nodes {
        let safe = safe_name(&node.name);
        let mut name = safe.clone();
        let mut k = 1;
        while !used.insert(name.to_lowercase()) {
            k += 1;
            name = format!("{safe} - {k}");
        }
        key.push(node.name.clone());
        written.push(name.clone());
        if name != node.name {
            let why = match name == safe {
                true => "not safe as a file name or wildcard path",
                false => "same name as a sibling",
            };
            renamed.push(Renamed { key: key.clone(), written: written.clone(), why });
        }
        node.name = name;
        rename_siblings(&mut node.children, key, written, renamed);
        key.pop();
        written.pop();
    }
}

/// Items Dynamic Prompts reads otherwise, as warnings: a `.txt` line starting with `#` is a
/// comment, a line break splits an item, and in YAML `2::x` is item `x` with weight 2.
fn item_warnings(root: &TaxonomyNode, txt: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut path = Vec::new();
    fn walk(n: &TaxonomyNode, txt: bool, path: &mut Vec<String>, out: &mut Vec<String>) {
        path.push(n.name.clone());
        for item in &n.items {
            let why = if item.contains(['\n', '\r']) && txt {
                "spans lines; written with spaces"
            } else if item.trim_start().starts_with('#') && txt {
                "starts with `#`, which Dynamic Prompts reads as a comment"
            } else if item.starts_with(|c: char| c.is_ascii_digit()) && item.contains("::") {
                "reads as a weighted item (`weight::text`) in Dynamic Prompts"
            } else {
                continue;
            };
            out.push(format!("`{}`: item {item:?} {why}", path.join(" > ")));
        }
        for c in &n.children {
            walk(c, txt, path, out);
        }
        path.pop();
    }
    walk(root, txt, &mut path, &mut out);
    out
}

/// The skeleton as YAML whose keys Dynamic Prompts can use in a prompt (`--format
/// dynamicprompts-yaml`): the same tree and instruction comments, names as [`wildcard_safe`]
/// makes them.
pub fn dynamicprompts_yaml(root: &TaxonomyNode) -> Result<(String, ExportReport)> {
    let (mut safe, renamed) = wildcard_safe(root);
    crate::instructions::fill_missing(&mut safe);
    let text = crate::output::to_yaml(&safe)?;
    let mut report =
        ExportReport { renamed, warnings: item_warnings(&safe, false), ..Default::default() };
    safe.walk(&mut |n, _| {
        if n.children.is_empty() {
            report.files += 1;
            report.items += n.items.len();
        }
    });
    Ok((text, report))
}

/// Writes `root` as `.txt` wildcard files under `dir` (see the module doc). The root category
/// is the top folder (`dir/<root>/...`), as it is the top key of the YAML; a tree read from a
/// document with several top-level keys (an unnamed root) puts them directly in `dir`.
pub fn export_txt(root: &TaxonomyNode, dir: &Path, force: bool) -> Result<ExportReport> {
    check_target(dir, force)?;
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !parent.is_dir() {
        bail!("the folder {} does not exist: create it first", parent.display());
    }
    let tmp = tempfile::Builder::new()
        .prefix(".wildcards-export-")
        .tempdir_in(parent)
        .with_context(|| format!("cannot write in {}: check permissions", parent.display()))?;
    let (safe, renamed) = wildcard_safe(root);
    let mut report =
        ExportReport { renamed, warnings: item_warnings(&safe, true), ..Default::default() };
    match safe.name.is_empty() {
        true => write_children(&safe, tmp.path(), &mut report)?,
        false => write_node(&safe, tmp.path(), &mut report)?,
    }
    let marker = serde_json::json!({
        "written_by": "wildcards-gen export",
        "note": "one .txt wildcard file per list of a skeleton; `wildcards-gen export --force` may replace this folder",
        "lists": report.files,
        "items": report.items,
        "renamed": report.renamed,
    });
    std::fs::write(tmp.path().join(MARKER), serde_json::to_string_pretty(&marker)?)
        .with_context(|| format!("cannot write in {}", tmp.path().display()))?;
    swap_into_place(tmp, dir)?;
    Ok(report)
}

fn write_children(node: &TaxonomyNode, dir: &Path, report: &mut ExportReport) -> Result<()> {
    node.children.iter().try_for_each(|c| write_node(c, dir, report))
}

/// A category: a folder of its sub-categories, or a `.txt` of its items (one a line, UTF-8).
fn write_node(node: &TaxonomyNode, dir: &Path, report: &mut ExportReport) -> Result<()> {
    if node.children.is_empty() {
        let path = dir.join(format!("{}.txt", node.name));
        let mut text = String::with_capacity(node.items.len() * 16);
        for item in &node.items {
            text.push_str(&item.replace(['\n', '\r'], " "));
            text.push('\n');
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        report.files += 1;
        report.items += node.items.len();
        return Ok(());
    }
    let path = dir.join(&node.name);
    std::fs::create_dir(&path).with_context(|| format!("cannot create {}", path.display()))?;
    write_children(node, &path, report)
}

/// Refuses a target that is a file, or a non-empty folder without `force` or not written by
/// an export.
fn check_target(dir: &Path, force: bool) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    if !dir.is_dir() {
        bail!("{} is a file; give a folder to export into", dir.display());
    }
    let non_empty = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .next()
        .is_some();
    if non_empty && !force {
        bail!(
            "{} exists and is not empty; add --force to replace an earlier export there, or \
             choose a new folder",
            dir.display()
        );
    }
    if non_empty && !dir.join(MARKER).is_file() {
        bail!(
            "{} was not written by `wildcards-gen export` (it has no {MARKER}), so --force does \
             not replace it; choose a new folder or remove it yourself",
            dir.display()
        );
    }
    Ok(())
}

/// Moves the finished temporary folder to `dir`, replacing what is there (checked before).
fn swap_into_place(tmp: tempfile::TempDir, dir: &Path) -> Result<()> {
    let fresh = tmp.keep();
    let cannot = |e: std::io::Error, what: &str| {
        let _ = std::fs::remove_dir_all(&fresh);
        anyhow::Error::new(e).context(format!("cannot {what} {}", dir.display()))
    };
    if !dir.exists() {
        return std::fs::rename(&fresh, dir).map_err(|e| cannot(e, "create"));
    }
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("export");
    let old = dir.with_file_name(format!(".{name}.old-{}", std::process::id()));
    std::fs::rename(dir, &old).map_err(|e| cannot(e, "replace"))?;
    if let Err(e) = std::fs::rename(&fresh, dir) {
        let _ = std::fs::rename(&old, dir);
        return Err(cannot(e, "replace"));
    }
    std::fs::remove_dir_all(&old)
        .with_context(|| format!("exported, but cannot remove the old copy {}", old.display()))
}

/// A name safe as a file or folder name and as a Dynamic Prompts wildcard path:
/// `X (Y)` becomes `X - Y` (the template grammar ends a path at `(`); path separators,
/// `<>:"|` (refused by Windows), `*?[]` (globbing), `$`, `{`, `}`, `#` (template syntax) and
/// control characters become `_`, `__` (the wildcard wrap) becomes `_`; no leading `.`
/// (hidden) or trailing `.`/space (Windows drops them); Windows' device names get a `_`; long
/// names are cut to [`MAX_NAME_BYTES`].
pub fn safe_name(name: &str) -> String {
    let unbracketed = name.replace(" (", " - ").replace('(', " - ").replace(')', " ");
    let replaced: String = unbracketed
        .chars()
        .map(|c| if c.is_control() || "/\\<>:\"|?*[]${}#".contains(c) { '_' } else { c })
        .collect();
    let mut s = replaced.split_whitespace().collect::<Vec<_>>().join(" ");
    while s.contains("__") {
        s = s.replace("__", "_");
    }
    let mut s = s.trim_end_matches(['.', ' ']).to_string();
    if s.starts_with('.') {
        s.replace_range(..1, "_");
    }
    if s.len() > MAX_NAME_BYTES {
        let mut end = MAX_NAME_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s = s.trim_end_matches(['.', ' ']).to_string();
    }
    if s.is_empty() {
        return "_".to_string();
    }
    let stem = s.split('.').next().unwrap_or("").trim().to_ascii_uppercase();
    let reserved = matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || (stem.len() == 4
            && (stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.as_bytes()[3].is_ascii_digit());
    if reserved {
        s.push('_');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TaxonomyNode {
        let mut root = TaxonomyNode::new("Animals");
        let mut frog = TaxonomyNode::new("Frog");
        frog.children.push(TaxonomyNode::list("True Frog", ["bullfrog", "wood-frog"]));
        frog.children.push(TaxonomyNode::list("a/b", ["x"]));
        frog.children.push(TaxonomyNode::list("a_b", ["y"]));
        frog.children.push(TaxonomyNode::list("A_B", ["z"]));
        root.children.push(frog);
        root.children.push(TaxonomyNode::list("Crème brûlée", ["dessert ü"]));
        root.children.push(TaxonomyNode::list("Other (Frog)", ["toad"]));
        root.children.push(TaxonomyNode::list("Empty", Vec::<String>::new()));
        root
    }

    fn read(p: &Path) -> String {
        std::fs::read_to_string(p).unwrap()
    }

    #[test]
    fn writes_one_file_per_list_and_reports_renames() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("wild");
        let report = export_txt(&sample(), &out, false).unwrap();
        assert_eq!((report.files, report.items), (7, 7));
        assert_eq!(read(&out.join("Animals/Frog/True Frog.txt")), "bullfrog\nwood-frog\n");
        assert_eq!(read(&out.join("Animals/Frog/a_b.txt")), "x\n");
        assert_eq!(read(&out.join("Animals/Frog/a_b - 2.txt")), "y\n");
        assert_eq!(read(&out.join("Animals/Frog/A_B - 3.txt")), "z\n");
        assert_eq!(read(&out.join("Animals/Crème brûlée.txt")), "dessert ü\n");
        assert_eq!(read(&out.join("Animals/Other - Frog.txt")), "toad\n");
        assert_eq!(read(&out.join("Animals/Empty.txt")), "");
        let renamed: Vec<String> = report.renamed.iter().map(|r| r.written.join("/")).collect();
        assert_eq!(
            renamed,
            [
                "Animals/Frog/a_b",
                "Animals/Frog/a_b - 2",
                "Animals/Frog/A_B - 3",
                "Animals/Other - Frog"
            ]
        );
        assert_eq!(report.renamed[1].why, "same name as a sibling");
        let summary = report.summary("to wild", 10);
        assert!(summary.contains("Animals > Frog > a/b -> Animals/Frog/a_b ("), "{summary}");
        let marker: serde_json::Value = serde_json::from_str(&read(&out.join(MARKER))).unwrap();
        assert_eq!(marker["renamed"][3]["key"], serde_json::json!(["Animals", "Other (Frog)"]));
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary folder is left behind");
    }

    #[test]
    fn a_full_folder_needs_force_and_must_be_an_earlier_export() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("wild");
        export_txt(&sample(), &out, false).unwrap();
        let err = export_txt(&sample(), &out, false).unwrap_err().to_string();
        assert!(err.contains("add --force"), "{err}");
        let mut other = TaxonomyNode::new("Other");
        other.children.push(TaxonomyNode::list("L", ["q"]));
        export_txt(&other, &out, true).unwrap();
        assert!(!out.join("Animals").exists(), "the old export is replaced whole");
        assert_eq!(read(&out.join("Other/L.txt")), "q\n");

        let foreign = dir.path().join("mine");
        std::fs::create_dir(&foreign).unwrap();
        std::fs::write(foreign.join("notes.txt"), "keep me").unwrap();
        let err = export_txt(&sample(), &foreign, true).unwrap_err().to_string();
        assert!(err.contains("was not written by `wildcards-gen export`"), "{err}");
        assert_eq!(read(&foreign.join("notes.txt")), "keep me");

        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        assert!(export_txt(&sample(), &file, true).unwrap_err().to_string().contains("is a file"));
        let missing = dir.path().join("no/such/dir");
        let err = export_txt(&sample(), &missing, false).unwrap_err().to_string();
        assert!(err.contains("does not exist"), "{err}");
    }

    #[test]
    fn names_are_safe_as_files_and_wildcard_paths() {
        assert_eq!(safe_name("a/b\\c"), "a_b_c");
        assert_eq!(
            safe_name("what? *now* [x] <y> \"q\" a|b c:d"),
            "what_ _now_ _x_ _y_ _q_ a_b c_d"
        );
        assert_eq!(safe_name("crane (wading bird)"), "crane - wading bird");
        assert_eq!(safe_name("Other (Fungus)"), "Other - Fungus");
        assert_eq!(safe_name("#1 ${x} a__b"), "_1 _x_ a_b");
        assert_eq!(safe_name(".hidden"), "_hidden");
        assert_eq!(safe_name("dots..."), "dots");
        assert_eq!(safe_name("  "), "_");
        assert_eq!(safe_name("con"), "con_");
        assert_eq!(safe_name("COM1.txt"), "COM1.txt_");
        assert_eq!(safe_name("Console"), "Console");
        assert_eq!(safe_name("tab\there"), "tab_here");
        let long = "é".repeat(300);
        assert!(safe_name(&long).len() <= MAX_NAME_BYTES);
        assert_eq!(safe_name("True Frog"), "True Frog");
    }

    #[test]
    fn unnamed_roots_put_their_children_at_the_top_and_odd_items_warn() {
        let mut root = TaxonomyNode::new("");
        root.children.push(TaxonomyNode::list("A", ["#tag", "two\nlines", "2::x"]));
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("w");
        let report = export_txt(&root, &out, false).unwrap();
        assert_eq!(read(&out.join("A.txt")), "#tag\ntwo lines\n2::x\n");
        assert_eq!(report.warnings.len(), 3, "{:?}", report.warnings);
        let job = job_export_dir(Path::new("out/tencent_x.yaml"));
        assert_eq!(job, Path::new("out/tencent_x_wildcards"));
    }

    #[test]
    fn dynamicprompts_yaml_renames_keys_and_keeps_instructions() {
        let mut root = sample();
        root.metadata.gloss = Some("animals".into());
        let (text, report) = dynamicprompts_yaml(&root).unwrap();
        assert!(text.starts_with("Animals: # instruction: animals\n"), "{text}");
        assert!(
            text.contains("  Other - Frog: # instruction: Animals items such as toad\n"),
            "{text}"
        );
        assert_eq!((report.files, report.renamed.len()), (7, 4));
    }
}
