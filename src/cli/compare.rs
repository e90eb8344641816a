//! `wildcards-gen compare A.yaml B.yaml [--format markdown|json]`: how alike two skeletons
//! are — Jaccard of their item sets and adjusted Rand index of item -> category path over the
//! common items (see [`wildcards_core::compare`]).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};
use wildcards_core::compare::{compare_trees, to_json, to_markdown};
use wildcards_core::skeleton::read_skeleton;

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// First skeleton (YAML, or the JSONL `dataset --format jsonl` writes).
    #[arg(value_name = "A.yaml")]
    pub a: PathBuf,

    /// Second skeleton (YAML or JSONL).
    #[arg(value_name = "B.yaml")]
    pub b: PathBuf,

    /// Report format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Markdown)]
    pub format: ReportFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Markdown,
    Json,
}

impl CompareArgs {
    /// Prints the comparison to stdout.
    pub fn run(&self) -> Result<()> {
        let (a, b) = (read_skeleton(&self.a)?, read_skeleton(&self.b)?);
        for (path, skeleton) in [(&self.a, &a), (&self.b, &b)] {
            for note in &skeleton.notes {
                eprintln!("note: {}: {note}", path.display());
            }
        }
        let c = compare_trees(&a.tree, &b.tree);
        let (a, b) = (self.a.display().to_string(), self.b.display().to_string());
        match self.format {
            ReportFormat::Markdown => batch_client::out!("{}", to_markdown(&c, &a, &b)),
            ReportFormat::Json => batch_client::outln!("{}", to_json(&c, &a, &b)?),
        }
        Ok(())
    }
}
