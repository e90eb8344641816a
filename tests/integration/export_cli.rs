//! `wildcards-gen export` and the `export: txt` job parameter, end to end.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use test_support::{binary, test_data_dir};
use wildcards_core::output::read_yaml;

use crate::batch_support::Batch;

fn wildcards_gen(args: &[&str]) -> Output {
    Command::new(binary("wildcards-gen"))
        .args(args)
        .env("WILDCARDS_DATA_DIR", test_data_dir())
        .env("WILDCARDS_OFFLINE", "1")
        .output()
        .expect("wildcards-gen runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every `.txt` file below `dir` (relative path) with its lines.
fn txt_files(dir: &Path) -> Vec<(String, Vec<String>)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, Vec<String>)>) {
        let mut entries: Vec<_> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(base, &p, out);
            } else if p.extension().is_some_and(|e| e == "txt") {
                let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
                let text = std::fs::read_to_string(&p).unwrap();
                out.push((rel, text.lines().map(str::to_string).collect()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out
}

const HAND_MADE: &str = "\
Things: # instruction: odd names
  Tools/Hardware: # instruction: a slash in a key
    - hammer
    - wrench
  Tools_Hardware: [saw]
  \"Mixed: case\":
    Ünïcode ok:
      - café au lait
      - 犬
  con: [a device name on Windows]
";

#[test]
fn export_writes_one_txt_per_list_and_reports_every_renamed_key() {
    let dir = tempfile::tempdir().unwrap();
    let skeleton = dir.path().join("things.yaml");
    std::fs::write(&skeleton, HAND_MADE).unwrap();
    let out_dir = dir.path().join("wildcards");
    let o = wildcards_gen(&[
        "export",
        skeleton.to_str().unwrap(),
        "--format",
        "txt",
        "-o",
        out_dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let files = txt_files(&out_dir);
    let want = vec![
        (
            "Things/Mixed_ case/Ünïcode ok.txt".to_string(),
            vec!["café au lait".to_string(), "犬".into()],
        ),
        ("Things/Tools_Hardware - 2.txt".into(), vec!["saw".into()]),
        ("Things/Tools_Hardware.txt".into(), vec!["hammer".into(), "wrench".into()]),
        ("Things/con_.txt".into(), vec!["a device name on Windows".into()]),
    ];
    assert_eq!(files, want);
    let log = stderr(&o);
    assert!(log.contains("exported 4 lists (6 items)"), "{log}");
    assert!(log.contains("4 names changed"), "{log}");
    let why = "not safe as a file name or wildcard path";
    assert!(
        log.contains(&format!("Things > Tools/Hardware -> Things/Tools_Hardware ({why})")),
        "{log}"
    );
    assert!(
        log.contains(
            "Things > Tools_Hardware -> Things/Tools_Hardware - 2 (same name as a sibling)"
        ),
        "{log}"
    );

    // A second export into the same folder needs --force; --force replaces it whole.
    let again =
        wildcards_gen(&["export", skeleton.to_str().unwrap(), "-o", out_dir.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("exists and is not empty; add --force"), "{}", stderr(&again));
    std::fs::write(out_dir.join("Things/stale.txt"), "old\n").unwrap();
    let forced = wildcards_gen(&[
        "export",
        skeleton.to_str().unwrap(),
        "-o",
        out_dir.to_str().unwrap(),
        "--force",
        "-q",
    ]);
    assert!(forced.status.success() && forced.stderr.is_empty(), "{}", stderr(&forced));
    assert!(!out_dir.join("Things/stale.txt").exists(), "the old export is replaced whole");

    // --force never replaces a folder an export did not write.
    let mine = dir.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("keep.txt"), "precious\n").unwrap();
    let refused = wildcards_gen(&[
        "export",
        skeleton.to_str().unwrap(),
        "-o",
        mine.to_str().unwrap(),
        "--force",
    ]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("was not written by `wildcards-gen export`"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(std::fs::read_to_string(mine.join("keep.txt")).unwrap(), "precious\n");

    // The YAML for Dynamic Prompts: the same safe names, instructions kept.
    let dp = dir.path().join("dp.yaml");
    let o = wildcards_gen(&[
        "export",
        skeleton.to_str().unwrap(),
        "--format",
        "dynamicprompts-yaml",
        "-o",
        dp.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&dp).unwrap();
    assert!(text.contains("  Tools_Hardware: # instruction: a slash in a key\n"), "{text}");
    assert!(
        text.contains("  Tools_Hardware - 2: # instruction: Things items such as saw\n"),
        "{text}"
    );

    let bad = wildcards_gen(&["export", skeleton.to_str().unwrap(), "--format", "csv", "-o", "x"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    let help = String::from_utf8_lossy(&wildcards_gen(&["export", "--help"]).stdout).into_owned();
    for part in [
        "Dynamic Prompts",
        "__tencent/Tencent ML-Images/Animal/",
        "--force",
        "export: txt",
        "dynamicprompts-yaml",
        "Exit status:",
    ] {
        assert!(help.contains(part), "export --help lacks {part:?}:\n{help}");
    }
}

#[test]
fn the_export_parameter_writes_wildcards_beside_a_jobs_output() {
    // On the command line...
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("coco.yaml");
    let o = wildcards_gen(&[
        "dataset",
        "coco",
        "--smart",
        "--export",
        "txt",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let items: BTreeSet<String> = read_yaml(&out).unwrap().all_items().into_iter().collect();
    let exported: BTreeSet<String> =
        txt_files(&dir.path().join("coco_wildcards")).into_iter().flat_map(|(_, l)| l).collect();
    assert_eq!(exported, items);
    assert_eq!(items.len(), 80);
    let stdout_export = wildcards_gen(&["dataset", "coco", "--export", "txt", "-o", "-"]);
    assert_eq!(stdout_export.status.code(), Some(2));
    assert!(stderr(&stdout_export).contains("--export writes"), "{}", stderr(&stdout_export));

    // ...and in a batch, twice (a re-run replaces its own export).
    let batch = Batch::new(
        "config:\n  output_dir: out\n  dataset: coco\n  default_params: {smart: true, export: txt}\n\
         jobs:\n  - name: base\n  - name: flat\n    params: {preset: flat}\n",
    );
    for _ in 0..2 {
        let run = batch.run(&["--workers", "1"]);
        assert!(run.status.success(), "{}", stderr(&run));
    }
    for job in ["coco_base", "coco_flat"] {
        let skeleton = read_yaml(&batch.out().join(format!("{job}.yaml"))).unwrap();
        let lists = txt_files(&batch.out().join(format!("{job}_wildcards")));
        let items: usize = lists.iter().map(|(_, l)| l.len()).sum();
        assert_eq!(items, skeleton.all_items().len(), "{job}");
        let mut bare = Vec::new();
        skeleton.walk(&mut |n, _| {
            if n.metadata.gloss.is_none() {
                bare.push(n.name.clone());
            }
        });
        assert!(bare.is_empty(), "{job}: keys without instruction: {bare:?}");
        let root = format!("{}/", skeleton.name);
        assert!(lists.iter().all(|(p, _)| p.starts_with(&root)), "{root}: {lists:?}");
    }
    let bad = Batch::new("config:\n  output_dir: out\n  dataset: coco\njobs:\n  - name: x\n    params: {export: csv}\n");
    let refused = bad.run(&[]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    let text = format!("{}{}", stderr(&refused), String::from_utf8_lossy(&refused.stdout));
    assert!(text.contains("export") && text.contains("txt"), "{text}");
}
