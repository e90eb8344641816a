//! What a batch prints and writes about its jobs: the `--dry-run` job table, and (after a run)
//! `report.md` for people and `summary.csv` for spreadsheets and scripts.

use std::path::Path;

use crate::job::JobSpec;
use crate::manifest::varying_params;

/// A parameter's effective value as table text (scalars plain, lists joined by `+`).
pub fn param_value(job: &JobSpec, name: &str) -> String {
    if name == "dataset" {
        return job.dataset.to_string();
    }
    let config = serde_json::to_value(job.config()).unwrap_or_default();
    json_text(config.get(name).unwrap_or(&serde_json::Value::Null))
}

fn json_text(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(json_text).collect::<Vec<_>>().join("+"),
        other => other.to_string(),
    }
}

/// The expanded jobs as an aligned text table: number, name, dataset, the parameters that vary
/// between jobs, whether the job needs the embedding server, and its output file.
pub fn job_table(jobs: &[JobSpec], output_dir: &Path) -> String {
    let varying = varying_params(jobs);
    let mut header = vec!["#".to_string(), "name".into()];
    if !varying.iter().any(|v| v == "dataset") {
        header.push("dataset".into());
    }
    header.extend(varying.iter().cloned());
    header.extend(["embeddings".into(), "output".into()]);
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|j| {
            let mut row = vec![(j.index + 1).to_string(), j.name.clone()];
            if !varying.iter().any(|v| v == "dataset") {
                row.push(j.dataset.to_string());
            }
            row.extend(varying.iter().map(|p| param_value(j, p)));
            row.push(if j.needs_embeddings() { "yes" } else { "no" }.into());
            let out = j.output.strip_prefix(output_dir).unwrap_or(&j.output);
            row.push(out.display().to_string());
            row
        })
        .collect();
    aligned(&header, &rows)
}

/// Left-aligned columns separated by two spaces.
fn aligned(header: &[String], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> =
            cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut out = line(header);
    out.push('\n');
    for row in rows {
        out.push_str(&line(row));
        out.push('\n');
    }
    out
}
