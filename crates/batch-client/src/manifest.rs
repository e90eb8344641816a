//! Batch manifests: the YAML file a researcher writes to describe a set of experiments
//! (`config`, `jobs`, `matrix`; see DESIGN.md "Batch manifest"), parsed, validated and expanded
//! into the list of [`JobSpec`]s a batch runs.
//!
//! Everything is checked before anything runs: unknown keys and parameters, wrong types, empty
//! axes, duplicate job names, unknown datasets, output names that would leave `output_dir`, and
//! parameter values out of their range. Every error names the manifest file, the field path
//! (`matrix[0].axes.min_leaf_size[2]`), the line, and the fix.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Component, Path, PathBuf};

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_norway::{Mapping, Value};

use crate::job::JobSpec;
use crate::slurm_options::SlurmOptions;
use wildcards_core::params::{self, Dataset, ExportFormat, Format, Params};

/// A manifest that parsed and validated, with its jobs expanded.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The manifest file as given.
    pub path: PathBuf,
    pub config: BatchConfig,
    /// Every job in run order: the `jobs` entries first, then each matrix's combinations.
    pub jobs: Vec<JobSpec>,
}

/// The `config` section with its defaults applied.
#[derive(Debug, Clone)]
pub struct BatchConfig {
    /// Where outputs and the report go (`output_dir` joined to the manifest's folder).
    pub output_dir: PathBuf,
    pub dataset: Dataset,
    pub analyze: bool,
    pub save_stats: bool,
    /// Write each job's skeleton viewer (`<output stem>.html`) beside its output.
    pub html: bool,
    pub default_params: Params,
    /// The job other jobs are compared against (`config.baseline`), when set.
    pub baseline: Option<String>,
    /// Dataset folder for every job (relative to the manifest), else the tool's default.
    pub data_dir: Option<PathBuf>,
    /// `config.slurm`: options of `--executor slurm` (flags win).
    pub slurm: SlurmOptions,
}

/// A manifest that cannot be run: where the problem is and how to fix it.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestError {
    pub file: PathBuf,
    /// Field path such as `jobs[2].params.min_leaf_size`, when the problem has one.
    pub field: Option<String>,
    /// One-based line (and column) in the manifest, when known.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
    pub fix: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        write!(f, ": ")?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        write!(f, "{}\n  fix: {}", self.message, self.fix)
    }
}

impl std::error::Error for ManifestError {}

/// Reads and validates a manifest file. Relative paths inside it are relative to its folder.
pub fn load(path: &Path) -> Result<Manifest, Box<ManifestError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Box::new(ManifestError {
            file: path.to_path_buf(),
            field: None,
            line: None,
            column: None,
            message: format!("cannot read the manifest: {e}"),
            fix: "check the path (and that the file is UTF-8 text)".into(),
        })
    })?;
    parse(&text, path)
}

/// Parses and validates manifest text; `path` names the file in errors and anchors relative
/// paths (its parent folder).
pub fn parse(text: &str, path: &Path) -> Result<Manifest, Box<ManifestError>> {
    let raw: RawManifest = if text.trim().is_empty() {
        return Err(error_at(path, text, &[], "the manifest is empty", EMPTY_FIX));
    } else {
        serde_norway::from_str(text).map_err(|e| from_serde(path, text, &e))?
    };
    if raw.config.is_none() && raw.jobs.is_none() && raw.matrix.is_none() {
        return Err(error_at(path, text, &[], "the manifest is empty", EMPTY_FIX));
    }
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let v = Validator { path, text };
    v.check(&raw)?;
    let config = raw.config.clone().unwrap_or_default();
    let mut default_params = config.default_params.unwrap_or_default();
    // `config.export: txt` is `export: txt` for every job (a job's own params still win).
    default_params.export = default_params.export.or(config.export);
    let config = BatchConfig {
        output_dir: base.join(config.output_dir.unwrap_or_else(|| default_output_dir(path))),
        dataset: config.dataset.unwrap_or(Dataset::Tencent),
        analyze: config.analyze.unwrap_or(false),
        save_stats: config.save_stats.unwrap_or(true),
        html: config.html.unwrap_or(true),
        default_params,
        baseline: config.baseline,
        data_dir: config.data_dir.map(|d| base.join(d)),
        slurm: config.slurm.unwrap_or_default(),
    };
    let jobs = expand(&raw, &config, &base);
    v.check_expanded(&raw, &config, &jobs)?;
    Ok(Manifest { path: path.to_path_buf(), config, jobs })
}

const EMPTY_FIX: &str =
    "write at least `jobs:` or `matrix:` (see the manifest example in the README)";

/// `experiments.yaml` -> `experiments_results`, next to the manifest.
fn default_output_dir(path: &Path) -> PathBuf {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("batch");
    PathBuf::from(format!("{stem}_results"))
}

// ---------------------------------------------------------------------------------------------
// The manifest as written.

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    config: Option<RawConfig>,
    jobs: Option<Vec<RawJob>>,
    matrix: Option<RawMatrices>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    output_dir: Option<PathBuf>,
    dataset: Option<Dataset>,
    analyze: Option<bool>,
    save_stats: Option<bool>,
    html: Option<bool>,
    default_params: Option<Params>,
    baseline: Option<String>,
    data_dir: Option<PathBuf>,
    slurm: Option<SlurmOptions>,
    /// Wildcard files beside every job's output (`txt`): the `export` parameter for all jobs.
    export: Option<ExportFormat>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJob {
    name: String,
    params: Option<Params>,
    dataset: Option<Dataset>,
    analyze: Option<bool>,
    output_filename: Option<String>,
    data_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatrix {
    /// Prefix of the generated job names (default `matrix`); lets two matrices coexist.
    name: Option<String>,
    base_params: Option<Params>,
    #[serde(deserialize_with = "unique_axes")]
    axes: BTreeMap<String, Vec<Value>>,
    dataset: Option<Dataset>,
    analyze: Option<bool>,
    include: Option<Vec<Mapping>>,
    exclude: Option<Vec<Mapping>>,
    data_dir: Option<PathBuf>,
}

/// The axes, refusing an axis named twice: a map would silently keep the last of the two.
fn unique_axes<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Vec<Value>>, D::Error> {
    struct Axes;
    impl<'de> Visitor<'de> for Axes {
        type Value = BTreeMap<String, Vec<Value>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a mapping of parameter names to lists of values")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut axes = BTreeMap::new();
            while let Some(name) = map.next_key::<String>()? {
                if axes.contains_key(&name) {
                    return Err(de::Error::custom(format!("duplicate entry with key \"{name}\"")));
                }
                let values = map.next_value()?;
                axes.insert(name, values);
            }
            Ok(axes)
        }
    }
    d.deserialize_map(Axes)
}

/// `matrix:` holds one mapping or a list of them. A hand-written visitor instead of
/// `#[serde(untagged)]` so that errors inside a matrix keep serde_norway's field path and line.
#[derive(Debug, Clone)]
struct RawMatrices {
    list: Vec<RawMatrix>,
    /// Written as a list (`matrix[0]...` paths) rather than one mapping (`matrix...`).
    is_list: bool,
}

impl<'de> Deserialize<'de> for RawMatrices {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawMatrices;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a matrix mapping (base_params, axes, ...) or a list of them")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawMatrices, A::Error> {
                let one = RawMatrix::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RawMatrices { list: vec![one], is_list: false })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<RawMatrices, A::Error> {
                let list = Vec::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                Ok(RawMatrices { list, is_list: true })
            }
        }
        d.deserialize_any(V)
    }
}

impl RawManifest {
    fn matrices(&self) -> &[RawMatrix] {
        self.matrix.as_ref().map(|m| m.list.as_slice()).unwrap_or_default()
    }

    fn matrix_path(&self, i: usize) -> Vec<Seg> {
        match &self.matrix {
            Some(m) if m.is_list => vec![key("matrix"), Seg::Index(i)],
            _ => vec![key("matrix")],
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Field paths and their lines.

/// One step of a field path: a mapping key or a list index.
#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn key(k: &str) -> Seg {
    Seg::Key(k.to_string())
}

fn with(path: &[Seg], more: impl IntoIterator<Item = Seg>) -> Vec<Seg> {
    path.iter().cloned().chain(more).collect()
}

fn path_string(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) if s.is_empty() => s.push_str(k),
            Seg::Key(k) => {
                s.push('.');
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// The (line, column) of the node at `path` in `text`, one-based.
///
/// serde_norway reports positions only through errors, and values keep none, so this walks the
/// document with a visitor that descends along `path` and fails on purpose at the target: the
/// error carries the target's position.
fn locate(text: &str, path: &[Seg]) -> Option<(usize, usize)> {
    let de = serde_norway::Deserializer::from_str(text);
    match Probe(path).deserialize(de) {
        Err(e) if e.to_string().contains(PROBE_HIT) => e.location().map(|l| (l.line(), l.column())),
        _ => None,
    }
}

const PROBE_HIT: &str = "\u{1}probe-target";

struct Probe<'a>(&'a [Seg]);

impl<'de> DeserializeSeed<'de> for Probe<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Probe<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((Seg::Key(want), rest)) = self.0.split_first() else {
            return Err(de::Error::custom(PROBE_HIT));
        };
        while let Some(k) = map.next_key::<Value>()? {
            if k.as_str() == Some(want.as_str()) {
                return map.next_value_seed(Probe(rest));
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((Seg::Index(want), rest)) = self.0.split_first() else {
            return Err(de::Error::custom(PROBE_HIT));
        };
        let mut i = 0;
        while i < *want {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
            i += 1;
        }
        seq.next_element_seed(Probe(rest)).map(|_| ())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.scalar()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.scalar()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.scalar()
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.scalar()
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        self.scalar()
    }
}

impl Probe<'_> {
    /// A scalar is the target when the path ends here; otherwise the path does not exist.
    fn scalar<E: de::Error>(&self) -> Result<(), E> {
        if self.0.is_empty() {
            Err(E::custom(PROBE_HIT))
        } else {
            Ok(())
        }
    }
}

/// An error about the node at `path`, with its line when the node exists in the text.
fn error_at(file: &Path, text: &str, path: &[Seg], message: &str, fix: &str) -> Box<ManifestError> {
    let (line, column) = match locate(text, path) {
        Some((l, c)) => (Some(l), Some(c)),
        None => (None, None),
    };
    Box::new(ManifestError {
        file: file.to_path_buf(),
        field: (!path.is_empty()).then(|| path_string(path)),
        line,
        column,
        message: message.to_string(),
        fix: fix.to_string(),
    })
}

/// Turns a serde_norway error (syntax, wrong type, unknown key) into a [`ManifestError`]: its
/// message already starts with the field path; the position moves to the front, a fix is added.
/// A duplicate key is reported at the mapping's start; the position is moved to the repeated key.
fn from_serde(file: &Path, text: &str, e: &serde_norway::Error) -> Box<ManifestError> {
    let mut message = e.to_string();
    let (line, column) = match e.location() {
        Some(l) => {
            let suffix = format!(" at line {} column {}", l.line(), l.column());
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_string();
            }
            let repeated = duplicate_key_name(&message)
                .and_then(|k| second_key_position(text, (l.line(), l.column()), k));
            let (line, column) = repeated.unwrap_or((l.line(), l.column()));
            (Some(line), Some(column))
        }
        None => (None, None),
    };
    let fix = serde_fix(&message);
    Box::new(ManifestError { file: file.to_path_buf(), field: None, line, column, message, fix })
}

/// A fix for the kinds of error serde_norway reports.
fn serde_fix(message: &str) -> String {
    if let Some(name) = between(message, "unknown field `", "`") {
        let valid: Vec<&str> = message
            .split("expected one of ")
            .nth(1)
            .map(|l| l.split(", ").map(|s| s.trim_matches('`')).collect())
            .unwrap_or_default();
        return match closest(name, &valid) {
            Some(best) => format!("did you mean `{best}`? Otherwise remove `{name}`"),
            None => format!("remove `{name}`; the valid keys are listed above"),
        };
    }
    if let Some(name) = between(message, "unknown variant `", "`") {
        return format!("replace `{name}` with one of the values listed above");
    }
    if message.contains("missing field") {
        return "add the missing field".into();
    }
    if message.contains("invalid type") || message.contains("invalid value") {
        let expected = message.split("expected ").last().unwrap_or("the documented type");
        let expected = match expected {
            "usize" | "u64" | "u32" => "a whole number (0 or more)",
            "f64" | "f32" => "a number",
            "a boolean" => "true or false",
            other => other,
        };
        return format!("write {expected} here");
    }
    if message.contains("duplicate entry") || message.contains("duplicate field") {
        return "remove the repeated key (each key may appear once per mapping)".into();
    }
    "fix the YAML syntax near that line (indentation, a missing `:` or an unclosed quote)".into()
}

/// The key a "duplicate field `k`" / "duplicate entry with key \"k\"" message names.
fn duplicate_key_name(message: &str) -> Option<&str> {
    between(message, "duplicate field `", "`")
        .or_else(|| between(message, "duplicate entry with key \"", "\""))
}

/// Where `key` appears the second time in the mapping that starts at `start` (line, column,
/// one-based): a block mapping's keys are the lines at its column until the text dedents; a
/// flow mapping's are the `key:` entries at its top level. serde_norway only gives the
/// mapping's start, which is the first key, not the repeated one.
fn second_key_position(text: &str, start: (usize, usize), key: &str) -> Option<(usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let first = lines.get(start.0.checked_sub(1)?)?;
    let offset = first.char_indices().nth(start.1.checked_sub(1)?).map(|(i, _)| i)?;
    if first[offset..].starts_with('{') {
        let col = flow_keys(&first[offset..]).into_iter().filter(|(k, _)| k == key).nth(1)?.1;
        return Some((start.0, start.1 + first[offset..offset + col].chars().count()));
    }
    let indent = offset;
    let mut seen = 0;
    for (i, line) in lines.iter().enumerate().skip(start.0 - 1) {
        let trimmed = line.trim_start();
        let here = line.len() - trimmed.len();
        if trimmed.is_empty() || trimmed.starts_with('#') || (i == start.0 - 1 && here < indent) {
            continue;
        }
        let body = if i == start.0 - 1 { &line[indent..] } else { trimmed };
        if i != start.0 - 1 && here < indent {
            break;
        }
        if (here == indent || i == start.0 - 1) && plain_key(body) == Some(key) {
            seen += 1;
            if seen == 2 {
                return Some((i + 1, indent + 1));
            }
        }
    }
    None
}

/// The key of a `key: value` line (quotes removed), if it is one.
fn plain_key(line: &str) -> Option<&str> {
    let (k, _) = line.split_once(':')?;
    Some(k.trim().trim_matches(|c| c == '"' || c == '\''))
}

/// The top-level `key:` entries of a flow mapping `{a: 1, b: {c: 2}}`, with their byte offsets.
fn flow_keys(s: &str) -> Vec<(String, usize)> {
    let mut keys = Vec::new();
    let (mut depth, mut entry_start) = (0usize, None);
    for (i, c) in s.char_indices() {
        match c {
            '{' | '[' => {
                depth += 1;
                if depth == 1 {
                    entry_start = Some(i + 1);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    break;
                }
            }
            ',' if depth == 1 => entry_start = Some(i + 1),
            ':' if depth == 1 => {
                if let Some(from) = entry_start.take() {
                    let raw = &s[from..i];
                    let pos = from + raw.len() - raw.trim_start().len();
                    keys.push((
                        raw.trim().trim_matches(|c| c == '"' || c == '\'').to_string(),
                        pos,
                    ));
                }
            }
            _ => {}
        }
    }
    keys
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = s.find(start)? + start.len();
    let len = s[from..].find(end)?;
    Some(&s[from..from + len])
}

/// The valid name closest to a misspelt one, if any is close.
fn closest<'a>(name: &str, valid: &[&'a str]) -> Option<&'a str> {
    valid
        .iter()
        .map(|v| (strsim::jaro_winkler(name, v), *v))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, v)| v)
}

// ---------------------------------------------------------------------------------------------
// Validation.

struct Validator<'a> {
    path: &'a Path,
    text: &'a str,
}

type Check = Result<(), Box<ManifestError>>;

impl Validator<'_> {
    fn err(&self, at: &[Seg], message: &str, fix: &str) -> Box<ManifestError> {
        error_at(self.path, self.text, at, message, fix)
    }

    /// Checks of the manifest as written (before expansion).
    fn check(&self, raw: &RawManifest) -> Check {
        let no_jobs = raw.jobs.as_ref().is_none_or(|j| j.is_empty());
        if no_jobs && raw.matrices().is_empty() {
            return Err(self.err(&[], "the manifest defines no jobs", EMPTY_FIX));
        }
        if let Some(cfg) = &raw.config {
            let at = [key("config")];
            if let Some(p) = &cfg.default_params {
                self.check_params(p, &with(&at, [key("default_params")]))?;
            }
            if let Some((field, problem, fix)) = cfg.slurm.as_ref().and_then(|s| s.problem()) {
                return Err(self.err(&with(&at, [key("slurm"), key(field)]), &problem, &fix));
            }
            if let Some(dir) = &cfg.output_dir {
                if dir.as_os_str().is_empty() {
                    let fix = "give a folder, e.g. `output_dir: results/tuning`";
                    return Err(self.err(&with(&at, [key("output_dir")]), "is empty", fix));
                }
            }
        }
        for (i, job) in raw.jobs.iter().flatten().enumerate() {
            let at = [key("jobs"), Seg::Index(i)];
            self.check_name(&job.name, &with(&at, [key("name")]))?;
            if let Some(p) = &job.params {
                self.check_params(p, &with(&at, [key("params")]))?;
            }
            if let Some(f) = &job.output_filename {
                self.check_output_filename(f, &with(&at, [key("output_filename")]))?;
            }
        }
        for (i, m) in raw.matrices().iter().enumerate() {
            self.check_matrix(m, &raw.matrix_path(i))?;
        }
        Ok(())
    }

    fn check_name(&self, name: &str, at: &[Seg]) -> Check {
        if name.trim().is_empty() {
            return Err(self.err(at, "a job name cannot be empty", "give the job a name"));
        }
        if name.contains(['\n', '\r']) {
            return Err(self.err(
                at,
                &format!("job name {name:?} has a line break; a job name is one line"),
                "write the name on one line (a `|` or `>` block, or a quoted \\n, makes several)",
            ));
        }
        let bad = name.chars().find(|c| matches!(c, '/' | '\\' | ':') || c.is_control());
        if bad.is_some() || name.contains("..") || name.starts_with('.') {
            return Err(self.err(
                at,
                &format!("job name {name:?} would place its output outside output_dir"),
                "use letters, digits, spaces, '-', '_' and '.' (not '..', '/', '\\' or ':')",
            ));
        }
        Ok(())
    }

    fn check_output_filename(&self, f: &str, at: &[Seg]) -> Check {
        let p = Path::new(f);
        let escapes = p.components().any(|c| !matches!(c, Component::Normal(_)));
        if f.is_empty() || escapes || f.ends_with('/') {
            return Err(self.err(
                at,
                &format!("output file {f:?} is not a file name inside output_dir"),
                "use a relative file name without '..' or a leading '/', e.g. `baseline.yaml`",
            ));
        }
        Ok(())
    }

    fn check_matrix(&self, m: &RawMatrix, at: &[Seg]) -> Check {
        if let Some(name) = &m.name {
            self.check_name(name, &with(at, [key("name")]))?;
        }
        if let Some(p) = &m.base_params {
            self.check_params(p, &with(at, [key("base_params")]))?;
        }
        let axes_at = with(at, [key("axes")]);
        if m.axes.is_empty() {
            let fix = "add at least one axis, e.g. `min_leaf_size: [20, 50]`";
            return Err(self.err(&axes_at, "the matrix has no axes", fix));
        }
        for (name, values) in &m.axes {
            let axis_at = with(&axes_at, [key(name)]);
            if params::param(name).is_none() {
                return Err(self.unknown_param(name, &axis_at));
            }
            if values.is_empty() {
                let fix = format!("give `{name}` at least one value, or remove the axis");
                return Err(self.err(&axis_at, "the axis is empty", &fix));
            }
            let mut seen = Vec::new();
            for (j, v) in values.iter().enumerate() {
                let value_at = with(&axis_at, [Seg::Index(j)]);
                self.param_from_value(name, v, &value_at)?;
                if seen.contains(&v) {
                    let fix = "remove the repeated value";
                    return Err(self.err(&value_at, "the value appears twice in the axis", fix));
                }
                seen.push(v);
            }
        }
        for (list, entries) in [("include", &m.include), ("exclude", &m.exclude)] {
            for (j, entry) in entries.iter().flatten().enumerate() {
                let entry_at = with(at, [key(list), Seg::Index(j)]);
                if entry.is_empty() {
                    let fix = "give parameter: value pairs, or remove the entry";
                    return Err(self.err(&entry_at, "the entry is empty", fix));
                }
                for (k, v) in entry {
                    let Some(name) = k.as_str() else {
                        return Err(self.err(&entry_at, "keys must be parameter names", ""));
                    };
                    let value_at = with(&entry_at, [key(name)]);
                    if params::param(name).is_none() {
                        return Err(self.unknown_param(name, &value_at));
                    }
                    if list == "exclude" && !m.axes.contains_key(name) {
                        let fix = "exclude entries may only name the matrix's axes";
                        return Err(self.err(&value_at, "is not an axis of this matrix", fix));
                    }
                    self.param_from_value(name, v, &value_at)?;
                }
            }
        }
        Ok(())
    }

    fn unknown_param(&self, name: &str, at: &[Seg]) -> Box<ManifestError> {
        let names: Vec<&str> = params::param_names().collect();
        let message = format!("unknown parameter `{name}`; valid: {}", names.join(", "));
        let fix = match closest(name, &names) {
            Some(best) => format!("did you mean `{best}`?"),
            None => format!("remove `{name}` or use one of the valid parameters"),
        };
        self.err(at, &message, &fix)
    }

    /// Type-checks one parameter value (an axis value or an include/exclude value) by reading
    /// it as that field of [`Params`], then checks its range.
    fn param_from_value(
        &self,
        name: &str,
        v: &Value,
        at: &[Seg],
    ) -> Result<Params, Box<ManifestError>> {
        let mut one = Mapping::new();
        one.insert(Value::String(name.to_string()), v.clone());
        let p: Params = serde_norway::from_value(Value::Mapping(one)).map_err(|e| {
            let msg = e.to_string();
            let fix = serde_fix(&msg);
            self.err(at, &format!("not a valid `{name}`: {msg}"), &fix)
        })?;
        // The range check reports `<at>.<name>`; for a single value the path is `at` itself.
        if let Err((_, problem, fix)) = p.problems().into_iter().next().map_or(Ok(()), Err) {
            return Err(self.err(at, &problem, &fix));
        }
        Ok(p)
    }

    fn check_params(&self, p: &Params, at: &[Seg]) -> Check {
        match p.problems().into_iter().next() {
            Some((field, problem, fix)) => {
                let segs: Vec<Seg> = field.split('.').map(key).collect();
                Err(self.err(&with(at, segs), &problem, &fix))
            }
            None => Ok(()),
        }
    }

    /// Checks that need the expanded jobs: names unique, output files unique, dataset-specific
    /// parameters on the right dataset, the baseline exists.
    fn check_expanded(&self, raw: &RawManifest, cfg: &BatchConfig, jobs: &[JobSpec]) -> Check {
        let mut names: HashMap<&str, &JobSpec> = HashMap::new();
        let mut files: HashMap<PathBuf, &JobSpec> = HashMap::new();
        for job in jobs {
            let at = origin_path(raw, job);
            if let Some(first) = names.insert(&job.name, job) {
                return Err(self.err(
                    &at,
                    &format!(
                        "duplicate job name {:?} (first defined at {})",
                        job.name, first.origin
                    ),
                    "give every job a unique name (for matrices: set `name:` to a prefix)",
                ));
            }
            if let Some(first) = files.insert(job.output.clone(), job) {
                return Err(self.err(
                    &at,
                    &format!(
                        "job {:?} writes the same file as job {:?}: {}",
                        job.name,
                        first.name,
                        job.output.display()
                    ),
                    "give one of them a different name or output_filename",
                ));
            }
            if let Some(def) = job.params.wrong_dataset_param(job.dataset) {
                let field = def.name;
                let needed = def.datasets.first().copied().unwrap_or(job.dataset);
                let fix = format!("remove it, or set `dataset: {needed}` for this job");
                let written = [
                    with(&at[..at.len() - 1], [key("params"), key(field)]),
                    with(&at[..at.len() - 1], [key("base_params"), key(field)]),
                    with(&at[..at.len() - 1], [key("axes"), key(field)]),
                    vec![key("config"), key("default_params"), key(field)],
                ];
                let at = written.into_iter().find(|p| locate(self.text, p).is_some()).unwrap_or(at);
                return Err(self.err(
                    &at,
                    &format!("parameter `{field}` does nothing for dataset {}", job.dataset),
                    &fix,
                ));
            }
        }
        if let Some(b) = &cfg.baseline {
            if !names.contains_key(b.as_str()) {
                let mut all: Vec<&str> = names.keys().copied().collect();
                all.sort();
                return Err(self.err(
                    &[key("config"), key("baseline")],
                    &format!("no job is named {b:?}"),
                    &format!("use one of: {}", all.join(", ")),
                ));
            }
        }
        Ok(())
    }
}

/// The field path a job came from: `jobs[3]`, or the matrix it was expanded from.
fn origin_path(raw: &RawManifest, job: &JobSpec) -> Vec<Seg> {
    match job.origin_index {
        Origin::Job(i) => vec![key("jobs"), Seg::Index(i), key("name")],
        // The matrix's `name` when written (job names come from it), else the matrix itself.
        Origin::Matrix(i) => match raw.matrices()[i].name {
            Some(_) => with(&raw.matrix_path(i), [key("name")]),
            None => raw.matrix_path(i),
        },
    }
}

pub use crate::job::Origin;

// ---------------------------------------------------------------------------------------------
// Expansion.

/// The jobs of a (validated) manifest in run order.
fn expand(raw: &RawManifest, cfg: &BatchConfig, base: &Path) -> Vec<JobSpec> {
    let mut jobs = Vec::new();
    for (i, j) in raw.jobs.iter().flatten().enumerate() {
        let dataset = j.dataset.unwrap_or(cfg.dataset);
        let params = cfg.default_params.merged_with(&j.params.clone().unwrap_or_default());
        let file =
            j.output_filename.clone().unwrap_or_else(|| output_name(dataset, &j.name, &params));
        jobs.push(JobSpec {
            index: jobs.len(),
            name: j.name.clone(),
            dataset,
            analyze: j.analyze.unwrap_or(cfg.analyze),
            save_stats: cfg.save_stats,
            html: cfg.html,
            output: cfg.output_dir.join(file),
            data_dir: j.data_dir.as_ref().map(|d| base.join(d)).or_else(|| cfg.data_dir.clone()),
            origin: format!("jobs[{i}]"),
            origin_index: Origin::Job(i),
            axes: BTreeMap::new(),
            reuse_dir: Some(cfg.output_dir.join(crate::job::REUSE_DIR)),
            params,
        });
    }
    for (i, m) in raw.matrices().iter().enumerate() {
        let dataset = m.dataset.unwrap_or(cfg.dataset);
        let base_params =
            cfg.default_params.merged_with(&m.base_params.clone().unwrap_or_default());
        let origin = path_string(&raw.matrix_path(i));
        for combo in combinations(m) {
            let mut params = base_params.clone();
            for (k, v) in &combo {
                params = params.merged_with(&single_param(k, v));
            }
            let prefix = m.name.as_deref().unwrap_or("matrix");
            let name = matrix_job_name(prefix, &combo);
            jobs.push(JobSpec {
                index: jobs.len(),
                output: cfg.output_dir.join(output_name(dataset, &name, &params)),
                name,
                dataset,
                analyze: m.analyze.unwrap_or(cfg.analyze),
                save_stats: cfg.save_stats,
                html: cfg.html,
                data_dir: m
                    .data_dir
                    .as_ref()
                    .map(|d| base.join(d))
                    .or_else(|| cfg.data_dir.clone()),
                origin: origin.clone(),
                origin_index: Origin::Matrix(i),
                axes: combo.iter().map(|(k, v)| (k.clone(), value_text(v))).collect(),
                reuse_dir: Some(cfg.output_dir.join(crate::job::REUSE_DIR)),
                params,
            });
        }
    }
    jobs
}

/// One combination: parameter name -> value, in name order.
type Combo = BTreeMap<String, Value>;

/// The matrix's combinations with CI-matrix semantics: the cartesian product of the axes,
/// minus every combination that matches an `exclude` entry on all its keys; then each
/// `include` entry extends every combination whose axis values it does not contradict, or,
/// when it fits none, is added as a combination of its own.
fn combinations(m: &RawMatrix) -> Vec<Combo> {
    let mut combos: Vec<Combo> = vec![Combo::new()];
    for (name, values) in &m.axes {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.insert(name.clone(), v.clone());
                    c
                })
            })
            .collect();
    }
    let matches = |c: &Combo, entry: &Mapping| {
        entry.iter().all(|(k, v)| k.as_str().is_some_and(|k| c.get(k) == Some(v)))
    };
    combos.retain(|c| !m.exclude.iter().flatten().any(|e| matches(c, e)));
    let original: Vec<Combo> = combos.clone();
    for entry in m.include.iter().flatten() {
        let entry: Combo =
            entry.iter().filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.clone()))).collect();
        let mut fitted = false;
        for (c, orig) in combos.iter_mut().zip(&original) {
            let contradicts = entry
                .iter()
                .any(|(k, v)| m.axes.contains_key(k) && orig.get(k).is_some_and(|o| o != v));
            if !contradicts {
                c.extend(entry.clone());
                fitted = true;
            }
        }
        if !fitted {
            combos.push(entry);
        }
    }
    combos
}

/// `Params` with one field set from a YAML value (already type-checked by validation).
fn single_param(name: &str, v: &Value) -> Params {
    let mut one = Mapping::new();
    one.insert(Value::String(name.to_string()), v.clone());
    serde_norway::from_value(Value::Mapping(one)).unwrap_or_default()
}

/// Short axis names used in matrix job names (DESIGN.md; the parameter table's `abbrev`).
pub fn axis_abbreviation(param: &str) -> &str {
    params::param(param).map_or(param, |d| d.abbreviation())
}

/// `matrix_leaf50_thresh0.1`: the prefix, then every value in parameter-name order.
pub fn matrix_job_name(prefix: &str, combo: &BTreeMap<String, Value>) -> String {
    let mut name = prefix.to_string();
    for (k, v) in combo {
        name.push('_');
        name.push_str(axis_abbreviation(k));
        name.push_str(&value_text(v));
    }
    name
}

/// A parameter value as text for names and tables: scalars as written, lists joined by `+`.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Sequence(items) => items.iter().map(value_text).collect::<Vec<_>>().join("+"),
        Value::Mapping(_) | Value::Tagged(_) => {
            serde_json::to_string(v).unwrap_or_else(|_| "?".into())
        }
    }
}

/// `<dataset>_<name>.yaml` (or `.jsonl`), lower case, spaces to `_`.
pub fn output_name(dataset: Dataset, name: &str, params: &Params) -> String {
    let ext = match params.format {
        Some(Format::Jsonl) => "jsonl",
        _ => "yaml",
    };
    let stem = format!("{dataset}_{name}").to_lowercase().replace(' ', "_");
    format!("{stem}.{ext}")
}

/// The parameter names whose effective values differ between jobs (in the table's order),
/// plus `dataset` first when jobs use several datasets.
pub fn varying_params(jobs: &[JobSpec]) -> Vec<String> {
    let mut out = Vec::new();
    let datasets: BTreeSet<Dataset> = jobs.iter().map(|j| j.dataset).collect();
    if datasets.len() > 1 {
        out.push("dataset".to_string());
    }
    let values: Vec<serde_json::Value> = jobs
        .iter()
        .map(|j| serde_json::to_value(j.config()).unwrap_or(serde_json::Value::Null))
        .collect();
    for name in params::param_names() {
        let first = values.first().and_then(|v| v.get(name));
        if values.iter().any(|v| v.get(name) != first) {
            out.push(name.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = "\
config:
  output_dir: experiments/tuning
  dataset: tencent
  analyze: true
  save_stats: true
  default_params: {preset: balanced}
jobs:
  - name: baseline
    params: {smart: true, min_leaf_size: 20, semantic_threshold: 0.1}
  - name: Compact Run
    params: {smart: true, preset: compact}
matrix:
  base_params: {smart: true}
  axes:
    semantic_threshold: [0.1, 0.2, 0.3]
    min_leaf_size: [20, 50, 100]
";

    fn parse_ok(text: &str) -> Manifest {
        parse(text, Path::new("dir/m.yaml")).unwrap_or_else(|e| panic!("{e}"))
    }

    fn parse_err(text: &str) -> Box<ManifestError> {
        match parse(text, Path::new("dir/m.yaml")) {
            Ok(_) => panic!("parsed but should not:\n{text}"),
            Err(e) => e,
        }
    }

    #[test]
    fn html_viewers_are_on_unless_turned_off() {
        let on = parse_ok("jobs:\n  - {name: a}\n");
        assert!(on.config.html && on.jobs[0].html && on.jobs[0].wants_viewer());
        let off = parse_ok("config: {html: false}\njobs:\n  - {name: a}\n");
        assert!(!off.config.html && !off.jobs[0].wants_viewer());
        let jsonl = parse_ok("jobs:\n  - {name: a, params: {format: jsonl}}\n");
        assert!(jsonl.jobs[0].html && !jsonl.jobs[0].wants_viewer(), "no viewer for JSONL");
    }

    #[test]
    fn config_export_applies_to_every_job_unless_a_job_says_otherwise() {
        let m = parse_ok(
            "config: {export: txt}\njobs:\n  - {name: a}\n  - {name: b, params: {export: txt}}\n",
        );
        assert!(m.jobs.iter().all(|j| j.params.export == Some(ExportFormat::Txt)));
        let none = parse_ok("jobs:\n  - {name: a}\n");
        assert_eq!(none.jobs[0].params.export, None);
        let e = parse_err("config: {export: zip}\njobs:\n  - {name: a}\n");
        assert!(e.to_string().contains("export"), "{e}");
    }

    #[test]
    fn a_duplicate_key_is_reported_at_its_second_line() {
        let e = parse_err("config:\n  output_dir: out\n  dataset: coco\n  # x\n  dataset: tencent\njobs:\n  - name: a\n");
        assert_eq!((e.line, e.column), (Some(5), Some(3)), "{e}");
        assert!(e.message.contains("duplicate field `dataset`"), "{e}");
        let e = parse_err("jobs:\n  - name: a\n    params:\n      smart: true\n      depth: 3\n      smart: false\n");
        assert_eq!((e.line, e.column), (Some(6), Some(7)), "{e}");
        let e =
            parse_err("jobs:\n  - name: a\n    params: {smart: true, depth: 3, smart: false}\n");
        assert_eq!((e.line, e.column), (Some(3), Some(37)), "{e}");
        let e = parse_err("matrix:\n  axes:\n    min_leaf_size: [1]\n    min_depth: [3]\n    min_leaf_size: [2]\n");
        assert!(e.message.contains("duplicate entry with key \"min_leaf_size\""), "{e}");
        assert_eq!(e.line, Some(5), "{e}");
    }

    #[test]
    fn a_job_name_with_a_line_break_has_its_own_message() {
        let e = parse_err("jobs:\n  - name: \"base\\nline\"\n    params: {}\n");
        assert!(e.message.contains("has a line break"), "{e}");
        assert!(!e.message.contains("outside output_dir"), "{e}");
        let e = parse_err("jobs:\n  - name: |\n      two\n      lines\n");
        assert!(e.message.contains("has a line break"), "{e}");
    }

    #[test]
    fn seed_manifest_expands_to_eleven_jobs() {
        let m = parse_ok(SEED);
        assert_eq!(m.jobs.len(), 11);
        assert_eq!(m.config.output_dir, Path::new("dir/experiments/tuning"));
        let names: Vec<&str> = m.jobs.iter().map(|j| j.name.as_str()).collect();
        assert_eq!(
            &names[..4],
            ["baseline", "Compact Run", "matrix_leaf20_thresh0.1", "matrix_leaf20_thresh0.2"]
        );
        assert_eq!(names[10], "matrix_leaf100_thresh0.3");
        assert_eq!(m.jobs[1].output, Path::new("dir/experiments/tuning/tencent_compact_run.yaml"));
        let leaf50 = m.jobs.iter().find(|j| j.name == "matrix_leaf50_thresh0.2").unwrap();
        assert_eq!(leaf50.params.min_leaf_size, Some(50));
        assert_eq!(leaf50.params.semantic_threshold, Some(0.2));
        assert_eq!(leaf50.params.smart, Some(true));
        assert_eq!(leaf50.params.preset, Some(wildcards_core::params::Preset::Balanced));
        assert!(leaf50.analyze && leaf50.save_stats && leaf50.html);
        assert_eq!(
            varying_params(&m.jobs),
            ["preset", "min_depth", "min_hyponyms", "min_leaf_size", "semantic_threshold"]
        );
    }

    #[test]
    fn include_and_exclude_follow_ci_semantics() {
        let m = parse_ok(
            "matrix:
  axes: {min_leaf_size: [5, 10], min_depth: [2, 3]}
  exclude: [{min_leaf_size: 10, min_depth: 3}]
  include:
    - {min_leaf_size: 5, semantic_clean: true}
    - {min_leaf_size: 99}
",
        );
        let names: Vec<&str> = m.jobs.iter().map(|j| j.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "matrix_depth2_leaf5_semantic_cleantrue",
                "matrix_depth2_leaf10",
                "matrix_depth3_leaf5_semantic_cleantrue",
                "matrix_leaf99"
            ]
        );
        assert_eq!(m.jobs[0].params.semantic_clean, Some(true));
        assert_eq!(m.jobs[1].params.semantic_clean, None);
    }

    #[test]
    fn a_list_of_matrices_with_prefixes() {
        let m = parse_ok(
            "matrix:
  - {name: plain, axes: {min_leaf_size: [5]}}
  - {name: sem, base_params: {semantic_clean: true}, axes: {min_leaf_size: [5]}, dataset: coco}
",
        );
        assert_eq!(m.jobs[0].name, "plain_leaf5");
        assert_eq!(m.jobs[1].output.file_name().unwrap(), "coco_sem_leaf5.yaml");
        assert!(m.jobs[1].params.needs_embeddings());
        assert_eq!(m.jobs[1].origin, "matrix[1]");
    }

    #[test]
    fn errors_name_field_line_and_fix() {
        let e = parse_err("jobs:\n  - name: a\n    params: {min_leaf: 3}\n");
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.message.starts_with("jobs[0].params: unknown field `min_leaf`"), "{e}");
        assert!(e.fix.contains("min_leaf_size"), "{e}");

        let e = parse_err("matrix:\n  axes:\n    min_leaf_size: [5, 10, x]\n");
        assert_eq!(e.field.as_deref(), Some("matrix.axes.min_leaf_size[2]"), "{e}");
        assert_eq!(e.line, Some(3), "{e}");

        let e = parse_err("matrix:\n  - axes:\n      min_leaf_size: []\n");
        assert_eq!(e.field.as_deref(), Some("matrix[0].axes.min_leaf_size"), "{e}");
        assert_eq!(e.line, Some(3), "{e}");

        let e = parse_err("jobs:\n  - name: a\n  - name: b\n  - name: a\n");
        assert_eq!(e.field.as_deref(), Some("jobs[2].name"), "{e}");
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.message.contains("jobs[0]"), "{e}");
    }

    #[test]
    fn locate_finds_nested_nodes() {
        let text = "a:\n  b:\n    - x\n    - {c: 1, d: [5, 6]}\n";
        let at = [key("a"), key("b"), Seg::Index(1), key("d"), Seg::Index(1)];
        assert_eq!(locate(text, &at), Some((4, 21)));
        assert_eq!(locate(text, &[key("a"), key("zz")]), None);
    }

    #[test]
    fn param_ranges() {
        let p = Params { semantic_threshold: Some(1.5), ..Default::default() };
        assert_eq!(p.problems()[0].0, "semantic_threshold");
        let e = parse_err("matrix:\n  axes:\n    semantic_threshold: [0.1, -0.2]\n");
        assert_eq!(e.field.as_deref(), Some("matrix.axes.semantic_threshold[1]"), "{e}");
    }
}
