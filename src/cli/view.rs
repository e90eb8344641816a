//! `wildcards-gen view SKELETON.yaml [-o OUT.html] [--stats FILE]`: writes the skeleton viewer,
//! a self-contained HTML page (collapsible tree, item counts, glosses on hover, search, lint
//! flags) that opens from disk in any browser (see [`batch_client::viewer`]).

use std::path::PathBuf;

use anyhow::Result;
use batch_client::viewer::{read_lint, viewer_path_for, write_viewer};
use clap::Args;
use wildcards_core::stats::stats_path;

#[derive(Debug, Args)]
pub struct ViewArgs {
    /// The skeleton (YAML) to show.
    #[arg(value_name = "SKELETON.yaml")]
    pub skeleton: PathBuf,

    /// Where to write the page (default: the skeleton's path with `.html`).
    #[arg(short, long, value_name = "OUT.html")]
    pub output: Option<PathBuf>,

    /// Stats file whose lint flags to mark (default: `<stem>.stats.json` beside the skeleton,
    /// when it exists).
    #[arg(long, value_name = "FILE")]
    pub stats: Option<PathBuf>,
}

impl ViewArgs {
    /// Writes the viewer and says what it holds.
    pub fn run(&self) -> Result<()> {
        let out = self.output.clone().unwrap_or_else(|| viewer_path_for(&self.skeleton));
        if let Some(stats) = &self.stats {
            anyhow::ensure!(stats.is_file(), "{}: no such stats file", stats.display());
        }
        let stats = self.stats.clone().unwrap_or_else(|| stats_path(&self.skeleton));
        let lint = match stats.is_file() {
            true => read_lint(&stats)?,
            false => None,
        };
        let v = write_viewer(&self.skeleton, lint.as_ref(), &out)?;
        let flagged = match v.flagged {
            0 => String::new(),
            n => format!(", {n} flagged items marked"),
        };
        batch_client::outln!(
            "wrote {} ({} categories, {} items{flagged}; {} bytes)",
            v.path.display(),
            v.structure.categories,
            v.structure.items,
            v.bytes
        );
        Ok(())
    }
}
