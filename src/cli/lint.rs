//! `wildcards-gen lint FILE`: semantic outliers of every item list of a skeleton, and
//! `--clean -o OUT` to write the skeleton without them (instruction comments kept).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};
use wildcards_core::output::{read_yaml, to_yaml, write_atomic};
use wildcards_core::params::OutlierMethod;
use wildcards_core::semantic::lint::{lint_tree, remove_outliers};
use wildcards_core::semantic::outliers::Scoring;
use wildcards_core::taxonomy::TaxonomyNode;
use wildcards_core::wordnet::WordNet;

use super::embedding::ServerArgs;

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Skeleton YAML file to check.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// An item whose outlier score is above this is an outlier (0..1; lower flags more). With
    /// typicality, t flags about 10^-(1.4+2t) of a list's ordinary items: 0.1 about 2.5 %.
    #[arg(long, value_name = "T", default_value_t = 0.1, value_parser = parse_threshold)]
    pub threshold: f64,

    /// How outliers are scored: typicality (calibrated; uses the list's key and WordNet) or
    /// glosh (the Python original's HDBSCAN GLOSH scores; flags about half of all items at 0.1).
    #[arg(long, value_name = "METHOD", default_value = "typicality", value_parser = parse_method)]
    pub outlier_method: OutlierMethod,

    /// WordNet 3.0 database folder for typicality's membership check (default: WNHOME,
    /// WORDNET_DIR, /usr/share/wordnet, NLTK data dirs; without one, embeddings only).
    #[arg(long, value_name = "DIR")]
    pub wordnet_dir: Option<PathBuf>,

    /// Report format on stdout.
    #[arg(long, value_enum, default_value_t = ReportFormat::Markdown)]
    pub format: ReportFormat,

    /// Write the skeleton without the outliers to --output (comments and order kept).
    #[arg(long, requires = "output")]
    pub clean: bool,

    /// Where --clean writes the cleaned skeleton.
    #[arg(short, long, value_name = "OUT", requires = "clean")]
    pub output: Option<PathBuf>,

    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Markdown,
    Json,
}

impl LintArgs {
    pub fn run(&self) -> Result<()> {
        let mut tree = read_yaml(&self.file)?;
        let wordnet = match self.outlier_method {
            OutlierMethod::Typicality => load_wordnet(self.wordnet_dir.as_deref()),
            OutlierMethod::Glosh => None,
        };
        let scoring = Scoring {
            method: self.outlier_method,
            threshold: self.threshold,
            wordnet: wordnet.as_ref(),
        };
        let embedder = self.server.connect()?;
        let report = lint_tree(&tree, &*embedder.embedder(), &scoring)?;
        match self.format {
            ReportFormat::Markdown => batch_client::out!("{}", report.to_markdown()),
            ReportFormat::Json => batch_client::outln!("{}", report.to_json()),
        }
        if let (true, Some(out)) = (self.clean, &self.output) {
            let removed = remove_outliers(&mut tree, &report);
            write_atomic(out, skeleton_yaml(&tree)?.as_bytes())?;
            eprintln!("wrote {} ({removed} outliers removed)", out.display());
        }
        Ok(())
    }
}

/// The skeleton as YAML; a root without a name (a file with several top-level keys) is
/// written as those keys.
fn skeleton_yaml(tree: &TaxonomyNode) -> Result<String> {
    if !tree.name.is_empty() {
        return to_yaml(tree);
    }
    let mut out = String::new();
    for child in &tree.children {
        out.push_str(&to_yaml(child)?);
    }
    Ok(out)
}

/// WordNet for the membership check; a note (not an error) when there is none.
fn load_wordnet(dir: Option<&std::path::Path>) -> Option<WordNet> {
    match WordNet::locate(dir) {
        Ok(wn) => Some(wn),
        Err(e) => {
            eprintln!("note: scoring without WordNet ({e:#})");
            None
        }
    }
}

fn parse_method(s: &str) -> std::result::Result<OutlierMethod, String> {
    serde_json::from_value(serde_json::Value::from(s.trim().to_ascii_lowercase()))
        .map_err(|_| format!("unknown outlier method '{s}': use typicality or glosh"))
}

fn parse_threshold(s: &str) -> std::result::Result<f64, String> {
    let t: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&t) {
        Ok(t)
    } else {
        Err(format!("{t} is outside 0..1 (outlier scores lie in 0..1)"))
    }
}
