//! `wildcards-gen lint FILE`: semantic outliers of every item list of a skeleton, and
//! `--clean -o OUT` to write the skeleton without them (instruction comments kept).

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use wildcards_core::output::{read_yaml, to_yaml, write_atomic};
use wildcards_core::semantic::lint::{check_list_sizes, lint_tree, remove_outliers};
use wildcards_core::taxonomy::TaxonomyNode;

use super::embedding::ServerArgs;

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Skeleton YAML file to check.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// An item whose GLOSH outlier score is above this is an outlier (0..1; lower flags more).
    #[arg(long, value_name = "T", default_value_t = 0.1, value_parser = parse_threshold)]
    pub threshold: f64,

    /// Report format on stdout.
    #[arg(long, value_enum, default_value_t = ReportFormat::Markdown)]
    pub format: ReportFormat,

    /// Write the skeleton without the outliers to --output (comments and order kept).
    #[arg(long, requires = "output")]
    pub clean: bool,

    /// Where --clean writes the cleaned skeleton.
    #[arg(short, long, value_name = "OUT")]
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
        if self.output.is_some() && !self.clean {
            bail!("--output is only used with --clean; add --clean to write a cleaned copy");
        }
        let mut tree = read_yaml(&self.file)?;
        check_list_sizes(&tree)?;
        let embedder = self.server.connect()?;
        let report = lint_tree(&tree, &*embedder.embedder(), self.threshold)?;
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

fn parse_threshold(s: &str) -> std::result::Result<f64, String> {
    let t: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&t) {
        Ok(t)
    } else {
        Err(format!("{t} is outside 0..1 (GLOSH scores lie in 0..1)"))
    }
}
