//! Writing and reading skeletons.
//!
//! - [`to_yaml`]: nested mapping of categories with `# instruction: <gloss>` end-of-line
//!   comments on the keys, lists of items at the leaves. Hand-written because serde_norway
//!   cannot emit comments; every scalar is written plain only when that is provably safe and
//!   double-quoted otherwise, so any name survives a round trip (see [`scalar`]).
//! - [`from_yaml`] / [`read_yaml`]: the reverse, keeping the instruction comments (serde_norway
//!   parses the structure; a line scan picks up the comments, since no well-kept YAML crate
//!   exposes comments).
//! - [`to_jsonl`]: one `{"text", "label", "hierarchy"}` object per item.
//! - [`write_atomic`]: temp file in the same folder, then rename.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_norway::Value;

use crate::params::Format;
use crate::taxonomy::{NodeMeta, TaxonomyNode};

/// Renders the tree in the given format.
pub fn render(root: &TaxonomyNode, format: Format) -> Result<String> {
    match format {
        Format::Yaml => to_yaml(root),
        Format::Jsonl => to_jsonl(root),
    }
}

// ---------------------------------------------------------------- YAML writer

/// Keys longer than this (in characters, as written) use the explicit `? key` form, since
/// YAML limits implicit keys to 1024 characters.
const IMPLICIT_KEY_MAX: usize = 1000;

/// Writes the tree as a YAML document whose single top-level key is the root.
/// A category must hold either sub-categories or items (the shaper guarantees this).
pub fn to_yaml(root: &TaxonomyNode) -> Result<String> {
    let mut out = String::with_capacity(64 * 1024);
    write_node(&mut out, root, 0, &mut Vec::new())?;
    Ok(out)
}

fn write_node(
    out: &mut String,
    node: &TaxonomyNode,
    indent: usize,
    path: &mut Vec<String>,
) -> Result<()> {
    path.push(node.name.clone());
    if !node.children.is_empty() && !node.items.is_empty() {
        bail!(
            "category `{}` has both sub-categories and items, which YAML cannot hold; put the items \
             in a sub-category",
            path.join(" > ")
        );
    }
    let pad = " ".repeat(indent);
    let key = scalar(&node.name);
    let empty = node.is_empty();
    let comment = node
        .metadata
        .gloss
        .as_deref()
        .map(|g| format!(" # instruction: {}", clean_comment(g)))
        .unwrap_or_default();
    let inline = if empty { " []" } else { "" };
    if key.chars().count() > IMPLICIT_KEY_MAX {
        let _ = writeln!(out, "{pad}? {key}");
        let _ = writeln!(out, "{pad}:{inline}{comment}");
    } else {
        let _ = writeln!(out, "{pad}{key}:{inline}{comment}");
    }
    for item in &node.items {
        let _ = writeln!(out, "{pad}  - {}", scalar(item));
    }
    let mut names = HashMap::with_capacity(node.children.len());
    for child in &node.children {
        if names.insert(child.name.as_str(), ()).is_some() {
            bail!(
                "category `{}` has two sub-categories named `{}`; YAML keys must be unique",
                path.join(" > "),
                child.name
            );
        }
        write_node(out, child, indent + 2, path)?;
    }
    path.pop();
    Ok(())
}

/// A comment must stay on one line and contain only printable characters.
pub fn clean_comment(text: &str) -> String {
    let replaced: String =
        text.chars().map(|c| if needs_escape(c) || c == '\t' { ' ' } else { c }).collect();
    replaced.trim().to_string()
}

/// The YAML form of a string: plain when that reads back as the same string under both
/// YAML 1.1 and 1.2 rules, else double-quoted with escapes.
pub fn scalar(s: &str) -> String {
    if is_plain_safe(s) {
        s.to_string()
    } else {
        double_quoted(s)
    }
}

/// Conservative: letters, digits, spaces and a few punctuation marks that have no meaning in
/// block context; the first character a letter, digit, `(` or `_`; nothing that a YAML
/// reader would turn into a null, bool or number.
fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else { return false };
    if !(first.is_alphanumeric() || first == '(' || first == '_') || s.ends_with(' ') {
        return false;
    }
    let ok_char = |c: char| c.is_alphanumeric() || c == ' ' || "._/()+'~$^=<>;-".contains(c);
    s.chars().all(ok_char) && !looks_reserved(s)
}

/// Words and number-like strings that YAML 1.1 or 1.2 resolve to something other than a string.
fn looks_reserved(s: &str) -> bool {
    const WORDS: &[&str] =
        &["null", "true", "false", "yes", "no", "on", "off", "y", "n", "~", "nan", "inf"];
    let lower = s.to_lowercase();
    if WORDS.contains(&lower.as_str()) {
        return true;
    }
    let body = lower.trim_start_matches(['+', '-']);
    let starts_numeric = body.starts_with(|c: char| c.is_ascii_digit() || c == '.');
    starts_numeric && body.chars().all(|c| "0123456789abcdefxo_.:+-".contains(c))
}

fn needs_escape(c: char) -> bool {
    (c < ' ' && c != '\t')
        || ('\u{7f}'..='\u{9f}').contains(&c)
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}')
}

fn double_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if needs_escape(c) => {
                let n = c as u32;
                if n <= 0xff {
                    let _ = write!(out, "\\x{n:02X}");
                } else {
                    let _ = write!(out, "\\u{n:04X}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------- YAML reader

/// Reads a skeleton file (see [`from_yaml`]); errors name the file.
pub fn read_yaml(path: &Path) -> Result<TaxonomyNode> {
    let text = read_text(path)?;
    from_yaml(&text).with_context(|| format!("{} is not a skeleton YAML", path.display()))
}

/// A text file's contents; a folder, a missing file and a binary (or non-UTF-8) file are
/// errors that say which.
pub fn read_text(path: &Path) -> Result<String> {
    if path.is_dir() {
        bail!("{} is a folder; give a file", path.display());
    }
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read {}: check the path", path.display()))?;
    match String::from_utf8(bytes) {
        Ok(text) if !text.contains('\0') => Ok(text),
        _ => bail!(
            "{} is not a text file (binary, or not UTF-8); give a skeleton YAML or JSONL file",
            path.display()
        ),
    }
}

/// Parses a skeleton: a mapping of categories (nested mappings) and item lists. A document
/// with one top-level key gives that category as the root; several top-level keys go under a
/// root with an empty name. `# instruction:` comments become the categories' glosses.
pub fn from_yaml(text: &str) -> Result<TaxonomyNode> {
    from_yaml_noted(text).map(|(tree, _)| tree)
}

/// [`from_yaml`], and notes on what was read other than as written: items that are numbers,
/// booleans or null (read as their text), categories holding one plain value (read as a list
/// of one item). Merge keys (`<<: *base`) are applied, not read as a category named `<<`.
pub fn from_yaml_noted(text: &str) -> Result<(TaxonomyNode, Vec<String>)> {
    let mut value: Value = serde_norway::from_str(text).context("invalid YAML")?;
    merge_keys(&mut value)?;
    let glosses = instruction_comments(text);
    let Value::Mapping(map) = strip_tags(value) else {
        bail!("the document must be a mapping of categories at the top level");
    };
    let mut reader = Reader { path: Vec::new(), glosses: &glosses, notes: Vec::new() };
    let mut root = if map.len() == 1 {
        let (k, v) = map.into_iter().next().expect("one entry");
        reader.node(key_string(&k), v)?
    } else {
        let mut root = TaxonomyNode::new("");
        for (k, v) in map {
            root.children.push(reader.node(key_string(&k), v)?);
        }
        root
    };
    root.metadata.is_root = true;
    Ok((root, reader.notes))
}

/// Applies YAML merge keys (`<<: *base`) in place, keeping the order: the merged entries
/// take the place of the `<<` key, and keys the mapping sets itself win. (serde_norway's
/// `apply_merge` moves the mapping's last entry into the `<<` key's place.)
fn merge_keys(value: &mut Value) -> Result<()> {
    match value {
        Value::Mapping(map) => {
            if map.contains_key("<<") {
                let old = std::mem::take(map);
                let own: Vec<Value> =
                    old.keys().filter(|k| k.as_str() != Some("<<")).cloned().collect();
                for (k, v) in old {
                    if k.as_str() != Some("<<") {
                        map.insert(k, v);
                        continue;
                    }
                    for (mk, mv) in merge_sources(v)? {
                        if !own.contains(&mk) && !map.contains_key(&mk) {
                            map.insert(mk, mv);
                        }
                    }
                }
            }
            for v in map.values_mut() {
                merge_keys(v)?;
            }
        }
        Value::Sequence(seq) => seq.iter_mut().try_for_each(merge_keys)?,
        Value::Tagged(t) => merge_keys(&mut t.value)?,
        _ => {}
    }
    Ok(())
}

/// The entries a merge key brings: a mapping, or a list of mappings (earlier ones win).
fn merge_sources(v: Value) -> Result<Vec<(Value, Value)>> {
    let problem = "a merge key (`<<`) takes a mapping (`<<: *base`) or a list of them";
    match strip_tags(v) {
        Value::Mapping(m) => Ok(m.into_iter().collect()),
        Value::Sequence(seq) => {
            let mut entries = Vec::new();
            for item in seq {
                match strip_tags(item) {
                    Value::Mapping(m) => entries.extend(m),
                    _ => bail!(problem),
                }
            }
            Ok(entries)
        }
        _ => bail!(problem),
    }
}

/// The text of a scalar item or key: strings as they are; numbers, booleans and null as YAML
/// writes them (`42`, `true`, `null`). `None` for a mapping or a list.
pub fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some("null".to_string()),
        Value::Tagged(t) => scalar_text(&t.value),
        Value::Sequence(_) | Value::Mapping(_) => None,
    }
}

fn strip_tags(v: Value) -> Value {
    match v {
        Value::Tagged(t) => strip_tags(t.value),
        other => other,
    }
}

fn key_string(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_string(),
        other => serde_norway::to_string(other).unwrap_or_default().trim().to_string(),
    }
}

/// Builds nodes from parsed YAML, keeping the path (for glosses and messages) and the notes.
struct Reader<'g> {
    path: Vec<String>,
    glosses: &'g HashMap<Vec<String>, String>,
    notes: Vec<String>,
}

impl Reader<'_> {
    fn node(&mut self, name: String, value: Value) -> Result<TaxonomyNode> {
        self.path.push(name.clone());
        let mut node = TaxonomyNode::new(name);
        let gloss = self.glosses.get(self.path.as_slice()).cloned();
        node.metadata = NodeMeta { gloss, ..Default::default() };
        match strip_tags(value) {
            Value::Mapping(map) => {
                for (k, v) in map {
                    node.children.push(self.node(key_string(&k), v)?);
                }
            }
            Value::Sequence(seq) => node.items = self.items(seq)?,
            Value::Null => {}
            scalar => {
                let text = scalar_text(&scalar).unwrap_or_default();
                self.notes.push(format!(
                    "`{}` holds one value ({text:?}), not a list of items or categories; read \
                     as a list of one item",
                    self.path.join(" > ")
                ));
                node.items.push(text);
            }
        }
        self.path.pop();
        Ok(node)
    }

    /// The entries of a list as items; those that are not strings are read as their text,
    /// with a note naming them.
    fn items(&mut self, seq: Vec<Value>) -> Result<Vec<String>> {
        let mut items = Vec::with_capacity(seq.len());
        let mut not_strings = Vec::new();
        for v in seq {
            let v = strip_tags(v);
            let Some(text) = scalar_text(&v) else {
                bail!(
                    "`{}`: list entries must be terms, found a nested mapping or list",
                    self.path.join(" > ")
                );
            };
            if !v.is_string() {
                not_strings.push(text.clone());
            }
            items.push(text);
        }
        if !not_strings.is_empty() {
            self.notes.push(format!(
                "`{}`: {} not strings ({}); read as their text",
                self.path.join(" > "),
                match not_strings.len() {
                    1 => "1 item is".to_string(),
                    n => format!("{n} items are"),
                },
                not_strings.join(", ")
            ));
        }
        Ok(items)
    }
}

/// Maps each category path (keys from the top) to the text of its `# instruction:` comment.
/// Works on block-style YAML by tracking key indentation; lines of lists are skipped.
fn instruction_comments(text: &str) -> HashMap<Vec<String>, String> {
    let mut found = HashMap::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut explicit_key: Option<(usize, String)> = None;
    for line in text.lines() {
        let trimmed = line.trim_start_matches(' ');
        let indent = line.len() - trimmed.len();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("- ") {
            continue;
        }
        if trimmed == "-" || trimmed.starts_with("---") || trimmed.starts_with("...") {
            continue;
        }
        let (key, rest) = if let Some(k) = trimmed.strip_prefix("? ") {
            if let Some((key, _)) = split_key(k.trim_end(), true) {
                explicit_key = Some((indent, key));
            }
            continue;
        } else if let Some(rest) = trimmed.strip_prefix(':') {
            match explicit_key.take() {
                Some((i, k)) if i == indent => (k, rest),
                _ => continue,
            }
        } else {
            match split_key(trimmed, false) {
                Some(kr) => kr,
                None => continue,
            }
        };
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        stack.push((indent, key));
        if let Some(gloss) = instruction_in(rest) {
            let path: Vec<String> = stack.iter().map(|(_, k)| k.clone()).collect();
            found.insert(path, gloss);
        }
    }
    found
}

/// Splits `key: rest` into the decoded key and the text after the colon. With `whole`, the
/// entire text is the key (explicit `? key` form).
pub(crate) fn split_key(s: &str, whole: bool) -> Option<(String, &str)> {
    let (raw_key, after) = match s.chars().next()? {
        '"' => {
            let end = closing_double_quote(s)?;
            (&s[..=end], &s[end + 1..])
        }
        '\'' => {
            let end = closing_single_quote(s)?;
            (&s[..=end], &s[end + 1..])
        }
        _ if whole => (s, ""),
        _ => {
            let colon = plain_key_end(s)?;
            (&s[..colon], &s[colon..])
        }
    };
    let rest = if whole { after } else { after.trim_start().strip_prefix(':')? };
    let key = if raw_key.starts_with(['"', '\'']) {
        serde_norway::from_str::<String>(raw_key).ok()?
    } else {
        raw_key.trim_end().to_string()
    };
    Some((key, rest))
}

fn closing_double_quote(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(i),
            _ => {}
        }
    }
    None
}

fn closing_single_quote(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 1;
    while i < bytes.len() {
        if bytes[i] == b'\'' {
            if bytes.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Position of the `:` that ends a plain key (followed by a space, a tab or the line end).
fn plain_key_end(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    (0..bytes.len())
        .find(|&i| bytes[i] == b':' && matches!(bytes.get(i + 1), None | Some(b' ') | Some(b'\t')))
}

/// The text of an `# instruction:` comment in what follows a key's colon, if any.
fn instruction_in(rest: &str) -> Option<String> {
    let rest = rest.trim_start();
    let after_value = match rest.chars().next() {
        Some('"') => &rest[closing_double_quote(rest)? + 1..],
        Some('\'') => &rest[closing_single_quote(rest)? + 1..],
        _ => rest,
    };
    let hash =
        if after_value.starts_with('#') { 0 } else { after_value.find(" #").map(|i| i + 1)? };
    let comment = after_value[hash + 1..].trim_start();
    let text = comment.strip_prefix("instruction:")?;
    Some(text.trim().to_string())
}

// ---------------------------------------------------------------- JSONL

#[derive(Serialize)]
struct JsonlRecord<'a> {
    text: &'a str,
    label: &'a str,
    hierarchy: &'a [&'a str],
}

/// One JSON object per item: the item, its category, and the category path from the root.
pub fn to_jsonl(root: &TaxonomyNode) -> Result<String> {
    let mut out = String::with_capacity(64 * 1024);
    let mut path = Vec::new();
    jsonl_node(root, &mut path, &mut out)?;
    Ok(out)
}

fn jsonl_node<'a>(node: &'a TaxonomyNode, path: &mut Vec<&'a str>, out: &mut String) -> Result<()> {
    path.push(&node.name);
    for item in &node.items {
        let rec = JsonlRecord { text: item, label: &node.name, hierarchy: path };
        out.push_str(&serde_json::to_string(&rec)?);
        out.push('\n');
    }
    for c in &node.children {
        jsonl_node(c, path, out)?;
    }
    path.pop();
    Ok(())
}

// ---------------------------------------------------------------- files

/// Writes `contents` to `path` atomically: into a temp file in the same folder (fsynced), then
/// renamed over `path`, so a reader never sees half a file. The file gets the mode a plain
/// create would give it (0666 less the umask), or, when it replaces a file, that file's mode.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    if is_special_file(path) {
        return write_in_place(path, contents);
    }
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the output folder {}", dir.display()))?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(".wildcards-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Opened with 0666, so the umask applies as for any new file.
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder
        .tempfile_in(dir)
        .with_context(|| format!("cannot write in {}: check permissions", dir.display()))?;
    tmp.write_all(contents)
        .and_then(|_| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    if let Ok(old) = std::fs::metadata(path) {
        // Replacing a file keeps its mode (a shared 0664 output stays 0664).
        let _ = tmp.as_file().set_permissions(old.permissions());
    }
    // The persist error's message is its io error's: say it once.
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Whether `path` exists and is not a regular file or a folder: a device (`/dev/null`), a FIFO
/// or a socket. Renaming a temp file over one would replace it — as root, `-o /dev/null` once
/// turned the machine's `/dev/null` into a plain file that then held whatever was written to
/// it — so such a path is written in place (there is no half-written file to protect anyway).
fn is_special_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

fn write_in_place(path: &Path, contents: &[u8]) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(contents).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A FIFO (as `/dev/null`, a device) is written into, never replaced by a renamed file.
    #[cfg(unix)]
    #[test]
    fn a_fifo_or_device_output_is_written_in_place_not_replaced() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read(fifo).unwrap())
        };
        write_atomic(&fifo, b"through the pipe").unwrap();
        assert_eq!(reader.join().unwrap(), b"through the pipe");
        assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo(), "still a FIFO");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temp file left");

        write_atomic(Path::new("/dev/null"), b"nothing").unwrap();
        let null = std::fs::metadata("/dev/null").unwrap();
        assert!(null.file_type().is_char_device(), "/dev/null is still the device");
    }

    fn sample() -> TaxonomyNode {
        let mut root = TaxonomyNode::with_gloss("Animal", "a living organism");
        let mut dog = TaxonomyNode::with_gloss("Dog", "a member of the genus Canis");
        dog.items = vec!["pug".into(), "yes".into(), "1900".into()];
        root.children.push(dog);
        root.children
            .push(TaxonomyNode::list("a: b", ["#x", "-dash", "say \"hi\"", "back\\slash"]));
        root.children.push(TaxonomyNode::new("null"));
        root.metadata.is_root = true;
        root
    }

    #[cfg(unix)]
    #[test]
    fn written_files_follow_the_umask_and_replacements_keep_their_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.yaml");
        write_atomic(&path, b"a").unwrap();
        let probe = dir.path().join("probe");
        std::fs::write(&probe, b"").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), mode(&probe), "a new file gets what a plain create gets");
        if mode(&probe) != 0o600 {
            assert_ne!(mode(&path), 0o600, "not the temp file's private mode");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o664)).unwrap();
        write_atomic(&path, b"b").unwrap();
        assert_eq!(mode(&path), 0o664, "an overwrite keeps the old mode");
        assert_eq!(std::fs::read(&path).unwrap(), b"b");
    }

    #[test]
    fn writes_comments_and_lists() {
        let y = to_yaml(&sample()).unwrap();
        assert!(y.starts_with("Animal: # instruction: a living organism\n"), "{y}");
        assert!(
            y.contains("  Dog: # instruction: a member of the genus Canis\n    - pug\n"),
            "{y}"
        );
        assert!(y.contains("    - \"yes\"\n    - \"1900\"\n"), "{y}");
        assert!(y.contains("  \"a: b\":\n    - \"#x\"\n    - \"-dash\"\n"), "{y}");
        assert!(y.contains("  \"null\": []\n"), "{y}");
    }

    #[test]
    fn reads_back_structure_and_comments() {
        let tree = sample();
        let back = from_yaml(&to_yaml(&tree).unwrap()).unwrap();
        assert_eq!(shape(&back), shape(&tree));
        assert_eq!(back.children[0].metadata.gloss.as_deref(), Some("a member of the genus Canis"));
    }

    #[test]
    fn hard_strings_are_quoted() {
        for s in [
            "yes",
            "No",
            "null",
            "~",
            "1900",
            "-1",
            "0x1F",
            "1e5",
            ".inf",
            "2001-12-14",
            "a: b",
            "#x",
            "a #b",
            "-x",
            "*x",
            "&x",
            "!x",
            "?x",
            "'q'",
            "\"q\"",
            "b\\s",
            "",
            " lead",
            "trail ",
            "[x]",
            "{x}",
            "x,y",
            "%x",
            "@x",
            "`x",
            "|x",
            ">x",
            "tab\tx",
            "nl\nx",
            "\u{2028}",
            "\u{feff}bom",
        ] {
            let q = scalar(s);
            assert!(q.starts_with('"'), "{s:?} written as {q}");
            assert_eq!(serde_norway::from_str::<String>(&q).unwrap(), s, "{q}");
        }
        for s in ["dog", "hot dog", "jack-o'-lantern", "Crème brûlée", "犬", "3 musketeers"] {
            assert_eq!(scalar(s), s);
        }
    }

    #[test]
    fn a_very_long_key_uses_the_explicit_form() {
        let mut root = TaxonomyNode::with_gloss("r", "root");
        root.children.push(TaxonomyNode::list("k".repeat(1500), ["x"]));
        root.children[0].metadata.gloss = Some("long one".into());
        let y = to_yaml(&root).unwrap();
        assert!(y.contains("  ? kkk"), "{y}");
        let back = from_yaml(&y).unwrap();
        assert_eq!(shape(&back), shape(&root));
        assert_eq!(back.children[0].metadata.gloss.as_deref(), Some("long one"));
    }

    #[test]
    fn reads_a_document_with_several_top_keys() {
        let t = from_yaml("A: # instruction: first\n  - x\nB:\n  C: [y, z]\n").unwrap();
        assert_eq!(t.name, "");
        assert_eq!(t.children[0].metadata.gloss.as_deref(), Some("first"));
        assert_eq!(t.children[1].children[0].items, vec!["y", "z"]);
    }

    #[test]
    fn reads_other_writers_styles() {
        // ruamel/PyYAML style: lists at the key's indentation, single quotes, flow lists,
        // comments after values, a full-line comment, a document marker.
        let text = "---\n# generated\nAnimal:   # instruction: a living organism\n  Dog: # instruction: a canine\n  - pug\n  - 'beagle'\n  'yes': [a, b]  # instruction: quoted key\n  Cat: tabby # instruction: one item\n  Bird:\n";
        let t = from_yaml(text).unwrap();
        assert_eq!(t.metadata.gloss.as_deref(), Some("a living organism"));
        let names: Vec<_> = t.children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, vec!["Dog", "yes", "Cat", "Bird"]);
        assert_eq!(t.children[0].items, vec!["pug", "beagle"]);
        assert_eq!(t.children[0].metadata.gloss.as_deref(), Some("a canine"));
        assert_eq!(t.children[1].metadata.gloss.as_deref(), Some("quoted key"));
        assert_eq!(t.children[2].items, vec!["tabby"]);
        assert_eq!(t.children[2].metadata.gloss.as_deref(), Some("one item"));
        assert!(t.children[3].is_empty() && t.children[3].metadata.gloss.is_none());
    }

    #[test]
    fn non_strings_and_plain_values_are_read_as_text_with_notes() {
        let text =
            "base: &b\n  Fish: [koi]\nPets:\n  <<: *b\n  Dogs: [pug, 42, true, ~]\n  Odd: text\n";
        let (tree, notes) = from_yaml_noted(text).unwrap();
        let pets = &tree.children[1];
        let names: Vec<&str> = pets.children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["Fish", "Dogs", "Odd"], "the merge key merges, not a category `<<`");
        assert_eq!(pets.children[1].items, ["pug", "42", "true", "null"]);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(
            notes[0].contains("`Pets > Dogs`: 3 items are not strings (42, true, null)"),
            "{notes:?}"
        );
        assert!(notes[1].contains("`Pets > Odd` holds one value (\"text\")"), "{notes:?}");
    }

    #[test]
    fn invalid_documents_are_errors() {
        assert!(from_yaml("- a\n- b\n").unwrap_err().to_string().contains("mapping"));
        assert!(from_yaml("A: [\n").is_err());
        let err = from_yaml("A:\n  B:\n    - {x: 1}\n").unwrap_err().to_string();
        assert!(err.contains("A > B"), "{err}");
    }

    #[test]
    fn mixed_nodes_are_refused() {
        let mut n = TaxonomyNode::list("A", ["x"]);
        n.children.push(TaxonomyNode::list("B", ["y"]));
        assert!(to_yaml(&n).unwrap_err().to_string().contains("both sub-categories and items"));
    }

    #[test]
    fn jsonl_has_one_record_per_item() {
        let j = to_jsonl(&sample()).unwrap();
        let first: serde_json::Value = serde_json::from_str(j.lines().next().unwrap()).unwrap();
        assert_eq!(first["text"], "pug");
        assert_eq!(first["label"], "Dog");
        assert_eq!(first["hierarchy"], serde_json::json!(["Animal", "Dog"]));
        assert_eq!(j.lines().count(), 7);
    }

    #[test]
    fn atomic_write_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/out.yaml");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two");
        assert_eq!(std::fs::read_dir(dir.path().join("sub")).unwrap().count(), 1);
    }

    /// (name, gloss, items, children) — what a round trip must keep.
    #[derive(Debug, PartialEq)]
    struct Shape(String, Option<String>, Vec<String>, Vec<Shape>);

    fn shape(n: &TaxonomyNode) -> Shape {
        Shape(
            n.name.clone(),
            n.metadata.gloss.clone(),
            n.items.clone(),
            n.children.iter().map(shape).collect(),
        )
    }

    fn arb_tree() -> impl Strategy<Value = TaxonomyNode> {
        let gloss = proptest::option::of("[^\\p{Cc}\\p{Zl}\\p{Zp}]{0,30}")
            .prop_map(|g| g.map(|g| clean_comment(&g)));
        let leaf = (any::<String>(), gloss.clone(), prop::collection::vec(any::<String>(), 0..5))
            .prop_map(|(name, gloss, items)| {
                let mut n = TaxonomyNode::list(name, items);
                n.metadata.gloss = gloss;
                n
            });
        leaf.prop_recursive(3, 40, 5, move |inner| {
            (any::<String>(), gloss.clone(), prop::collection::vec(inner, 1..5)).prop_map(
                |(name, gloss, children)| {
                    let mut n = TaxonomyNode::new(name);
                    n.metadata.gloss = gloss;
                    let mut seen = std::collections::HashSet::new();
                    n.children =
                        children.into_iter().filter(|c| seen.insert(c.name.clone())).collect();
                    n
                },
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn any_tree_round_trips_through_serde_norway(tree in arb_tree()) {
            let text = to_yaml(&tree).unwrap();
            // Plain serde_norway sees the same structure...
            let value: Value = serde_norway::from_str(&text).unwrap();
            prop_assert!(value.as_mapping().is_some_and(|m| m.len() == 1));
            // ...and the reader gives back the same tree, glosses included.
            let back = from_yaml(&text).unwrap();
            prop_assert_eq!(shape(&back), shape(&tree));
        }

        #[test]
        fn any_string_survives_as_a_scalar(s in any::<String>()) {
            let text = format!("k: {}\n", scalar(&s));
            let m: std::collections::BTreeMap<String, String> = serde_norway::from_str(&text).unwrap();
            prop_assert_eq!(&m["k"], &s);
        }
    }
}
