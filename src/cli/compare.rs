//! `wildcards-gen compare A.yaml B.yaml [--format markdown|json]`: how alike two skeletons
//! are — Jaccard of their item sets and adjusted Rand index of item -> category path over the
//! common items (see [`wildcards_core::compare`]).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};
use wildcards_core::compare::{compare_files, to_json, to_markdown};

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// First skeleton (YAML).
    #[arg(value_name = "A.yaml")]
    pub a: PathBuf,

    /// Second skeleton (YAML).
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
        let c = compare_files(&self.a, &self.b)?;
        let (a, b) = (self.a.display().to_string(), self.b.display().to_string());
        match self.format {
            ReportFormat::Markdown => batch_client::out!("{}", to_markdown(&c, &a, &b)),
            ReportFormat::Json => batch_client::outln!("{}", to_json(&c, &a, &b)?),
        }
        Ok(())
    }
}
