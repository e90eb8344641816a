//! `wildcards-gen lint FILE`: semantic outliers of every item list of a skeleton (YAML, or the
//! tool's JSONL), and `--clean -o OUT` to write the file without them: an edit of its text
//! that deletes the flagged items' lines and keeps every other byte (see
//! [`wildcards_core::edit`]); where that cannot be done, an error and nothing written.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use wildcards_core::edit::{with_instructions, without_flagged};
use wildcards_core::params::Format;
use wildcards_core::params::OutlierMethod;
use wildcards_core::semantic::lint::{check_list_sizes, lint_tree, LintReport};
use wildcards_core::semantic::outliers::Scoring;
use wildcards_core::skeleton::{read_skeleton, Skeleton};
use wildcards_core::wordnet::WordNet;

use super::embedding::{ModelArg, ServerArgs};
use super::files::{check_output, is_stdout, shown, write_output};

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Skeleton file to check: YAML, or the JSONL `dataset --format jsonl` writes.
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

    /// Write the file without the outliers to --output: their lines are deleted, every other
    /// byte is kept (comments, quoting, order), except that a key line with no comment gets an
    /// `# instruction:` (as every generated key has one); refused where an item is not a line
    /// of its own.
    #[arg(long, requires = "output")]
    pub clean: bool,

    /// Where --clean writes the cleaned file (`-`: stdout, and the report goes to stderr).
    #[arg(short, long, value_name = "OUT", requires = "clean")]
    pub output: Option<PathBuf>,

    #[command(flatten)]
    pub model: ModelArg,

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
        if let Some(out) = &self.output {
            check_output(out)?;
        }
        let skeleton = read_skeleton(&self.file)?;
        check_list_sizes(&skeleton.tree, self.outlier_method)?;
        for note in &skeleton.notes {
            eprintln!("note: {}: {note}", self.file.display());
        }
        let wordnet = match self.outlier_method {
            OutlierMethod::Typicality => load_wordnet(self.wordnet_dir.as_deref()),
            OutlierMethod::Glosh => None,
        };
        let scoring = Scoring {
            method: self.outlier_method,
            threshold: self.threshold,
            wordnet: wordnet.as_ref(),
        };
        let embedder = self.server.connect(&self.model.semantic_model)?;
        let report = lint_tree(&skeleton.tree, &*embedder.embedder(), &scoring)?;
        let to_stderr = self.output.as_deref().is_some_and(is_stdout);
        let text = match self.format {
            ReportFormat::Markdown => report.to_markdown(),
            ReportFormat::Json => format!("{}\n", report.to_json()),
        };
        match to_stderr {
            true => eprint!("{text}"),
            false => batch_client::out!("{text}"),
        }
        if let (true, Some(out)) = (self.clean, &self.output) {
            self.write_cleaned(&skeleton, &report, out)?;
        }
        Ok(())
    }

    /// `--clean`: the file less the flagged items' lines, or an error saying why it cannot be
    /// done (nothing written).
    fn write_cleaned(&self, skeleton: &Skeleton, report: &LintReport, out: &Path) -> Result<()> {
        let (text, removed) = without_flagged(skeleton, report).with_context(|| {
            format!(
                "--clean: cannot remove the flagged items from {} by deleting their lines; \
                 nothing was written (remove them by hand: they are in the report)",
                self.file.display()
            )
        })?;
        // Keys without any comment get an instruction, as every generated key has one.
        let (text, added) = match skeleton.format {
            Format::Yaml => with_instructions(&text)?,
            Format::Jsonl => (text, 0),
        };
        write_output(out, &text)?;
        let added = match added {
            0 => String::new(),
            n => format!(", {n} instructions added"),
        };
        eprintln!("wrote {} ({removed} outliers removed{added})", shown(out));
        Ok(())
    }
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
