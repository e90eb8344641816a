//! `wildcards-gen export SKELETON --format txt -o DIR`: a skeleton as a folder of Dynamic
//! Prompts wildcard files (see [`wildcards_core::export`]).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};
use wildcards_core::export::{dynamicprompts_yaml, export_txt};
use wildcards_core::skeleton::read_skeleton;

use super::files::{check_output, is_stdout, write_output};

/// The teaching part of `export --help`.
const EXPORT_HELP: &str = "\
Dynamic Prompts (the sd-dynamic-prompts extension of A1111 / ComfyUI, and the dynamicprompts \
library behind it) reads wildcards from a folder: every .txt file is one wildcard, one term a \
line, named by its path. `--format txt` writes one folder per category and one .txt per list:

  wildcards-gen dataset tencent --smart -o tencent.yaml
  wildcards-gen export tencent.yaml --format txt -o wildcards/tencent
  # wildcards/tencent/Tencent ML-Images/Animal/Chordate/Vertebrate/Amphibian/Frog/True Frog.txt

With `wildcards/` as the extension's wildcards folder, a prompt uses that list as
  a photo of a __tencent/Tencent ML-Images/Animal/Chordate/Vertebrate/Amphibian/Frog/True Frog__
and `__tencent/Tencent ML-Images/Animal/*__` picks from every list below Animal.

Names are made safe as file names and as wildcard paths: Dynamic Prompts' prompt syntax ends a \
wildcard name at `(`, so `Other (Fungus)` is written `Other - Fungus`; / \\ : * ? \" < > | [ ] \
$ { } # become _. Siblings that then share a name (case-insensitively) get \" - 2\". Every \
change is printed and listed in DIR/.wildcards-gen-export (JSON). The folder is written whole \
and atomically (a temporary folder renamed into place). An existing non-empty DIR is an \
error; --force replaces it, but only when an earlier export wrote it.

Dynamic Prompts also reads the skeleton YAML itself (a .yaml file in the wildcards folder; it \
skips .yml: every list is a wildcard named by its key path), but a key with `(` cannot be named in a \
prompt. `--format dynamicprompts-yaml -o OUT.yaml` writes the YAML with the same safe names.

In a batch, `export: txt` in a job's params (or default_params; `dataset --export txt` on the \
command line) writes <output stem>_wildcards/ beside each job's skeleton.";

#[derive(Debug, Args)]
#[command(after_long_help = EXPORT_HELP)]
pub struct ExportArgs {
    /// Skeleton to export: YAML, or the JSONL `dataset --format jsonl` writes.
    #[arg(value_name = "SKELETON")]
    pub skeleton: PathBuf,

    /// What to write: txt = a folder of .txt wildcard files, one per list (Dynamic Prompts
    /// `__Category/Sub/List__`); dynamicprompts-yaml = the YAML with keys a prompt can name.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = ExportFormatArg::Txt)]
    pub format: ExportFormatArg,

    /// The folder to write (its parent must exist; see --force); for dynamicprompts-yaml the
    /// file (`-`: stdout).
    #[arg(short, long, value_name = "DIR|FILE")]
    pub output: PathBuf,

    /// Replace DIR when it holds an earlier export (a folder export did not write is never
    /// replaced).
    #[arg(long)]
    pub force: bool,

    /// Print nothing on success.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `--format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormatArg {
    /// A folder of .txt wildcard files.
    Txt,
    /// The YAML with wildcard-safe keys (a file).
    #[value(name = "dynamicprompts-yaml")]
    DynamicpromptsYaml,
}

impl ExportArgs {
    pub fn run(&self) -> Result<()> {
        let skeleton = read_skeleton(&self.skeleton)?;
        for note in &skeleton.notes {
            eprintln!("note: {}: {note}", self.skeleton.display());
        }
        let (report, what) = match self.format {
            ExportFormatArg::Txt => {
                let report = export_txt(&skeleton.tree, &self.output, self.force)?;
                (report, format!("as .txt wildcard files to {}", self.output.display()))
            }
            ExportFormatArg::DynamicpromptsYaml => {
                check_output(&self.output)?;
                let (text, report) = dynamicprompts_yaml(&skeleton.tree)?;
                write_output(&self.output, &text)?;
                let to = match is_stdout(&self.output) {
                    true => "to stdout".to_string(),
                    false => format!("to {}", self.output.display()),
                };
                (report, format!("as Dynamic Prompts YAML {to}"))
            }
        };
        if !self.quiet {
            eprintln!("{}", report.summary(&what, 20));
        }
        Ok(())
    }
}
