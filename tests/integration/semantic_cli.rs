//! `wildcards-gen lint`, `arrange` and `dataset --semantic-*` end to end: the real binaries and
//! the real embed-server on loopback.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use test_support::{binary, reference_dir, test_data_dir, EmbedServer};

fn wildcards_gen(args: &[&str]) -> Output {
    Command::new(binary("wildcards-gen")).args(args).output().expect("wildcards-gen runs")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Lists of `outlier_eval.json` where the reference flags exactly the planted outlier at 0.3.
const PLANTED: [(usize, &str, &str); 4] = [
    (1, "Dog", "fist"),
    (15, "Snake", "tweed"),
    (21, "Sport", "black bread"),
    (34, "Feline", "pitchfork"),
];

/// A skeleton with instruction comments whose four lists each hold one planted outlier.
fn planted_skeleton(path: &Path) -> Vec<String> {
    let data: Value = serde_json::from_str(
        &std::fs::read_to_string(reference_dir().join("outlier_eval.json")).unwrap(),
    )
    .unwrap();
    let mut yaml = String::from("Test Skeleton: # instruction: lists with planted outliers\n");
    let mut all = Vec::new();
    for (index, name, planted) in PLANTED {
        let list = &data["lists"][index];
        let terms: Vec<String> =
            list["terms"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().into()).collect();
        assert!(terms.iter().any(|t| t == planted));
        yaml.push_str(&format!("  {name}: # instruction: kinds of {}\n", name.to_lowercase()));
        for t in &terms {
            yaml.push_str(&format!("    - {t}\n"));
        }
        all.extend(terms);
    }
    std::fs::write(path, yaml).unwrap();
    all
}

fn instruction_comments(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split_once("# instruction:").map(|(_, c)| c.trim().into()))
        .collect()
}

#[test]
fn lint_finds_planted_outliers_and_clean_removes_exactly_them() {
    let server = EmbedServer::uncached().expect("embed-server starts");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("planted.yaml");
    let items = planted_skeleton(&file);
    let addr = server.address();
    let file_arg = file.to_str().unwrap();

    let report: Value = serde_json::from_str(&ok(&wildcards_gen(&[
        "lint",
        file_arg,
        "--outlier-method",
        "glosh",
        "--threshold",
        "0.3",
        "--format",
        "json",
        "--server",
        &addr,
    ])))
    .expect("JSON report");
    let found: Vec<(String, String)> = report["lists"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| {
            let list = l["path"].as_array().unwrap().last().unwrap().as_str().unwrap().to_string();
            l["outliers"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |o| (list.clone(), o["item"].as_str().unwrap().to_string()))
        })
        .collect();
    let expected: Vec<(String, String)> =
        PLANTED.iter().map(|(_, list, item)| (list.to_string(), item.to_string())).collect();
    assert_eq!(found, expected, "lint flags exactly the planted outliers");

    let glosh = ["--outlier-method", "glosh", "--threshold", "0.3", "--server", &addr];
    let markdown = ok(&wildcards_gen(&[&["lint", file_arg][..], &glosh[..]].concat()));
    assert!(markdown.contains("## Test Skeleton > Dog") && markdown.contains("| fist |"));

    let cleaned = dir.path().join("clean.yaml");
    let clean = ["lint", file_arg, "--clean", "-o", cleaned.to_str().unwrap()];
    ok(&wildcards_gen(&[&clean[..], &glosh[..]].concat()));
    let original = std::fs::read_to_string(&file).unwrap();
    let written = std::fs::read_to_string(&cleaned).unwrap();
    assert_eq!(instruction_comments(&written), instruction_comments(&original));
    let tree = wildcards_core::output::from_yaml(&written).unwrap();
    let mut kept = tree.all_items();
    kept.sort();
    let mut want: Vec<String> =
        items.into_iter().filter(|i| !PLANTED.iter().any(|(_, _, p)| p == i)).collect();
    want.sort();
    assert_eq!(kept, want, "--clean removes exactly the reported outliers");
}

/// The default method on a fruit list with planted sports terms beside a sport list: the
/// planted terms are flagged with their score and told they fit "Sport" better (both
/// similarities given), in JSON and in the markdown table; nothing else in either list is.
#[test]
fn lint_explains_where_a_flagged_item_fits_better() {
    let server = EmbedServer::uncached().expect("embed-server starts");
    let data: Value = serde_json::from_str(
        &std::fs::read_to_string(reference_dir().join("outlier_eval.json")).unwrap(),
    )
    .unwrap();
    let terms = |i: usize| -> Vec<String> {
        data["lists"][i]["terms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().into())
            .collect()
    };
    let fruit = terms(0);
    let sport: Vec<String> = terms(21).into_iter().filter(|t| t != "black bread").collect();
    let planted = ["water sport", "no-hit game", "football"];
    let mut yaml =
        String::from("Things: # instruction: test\n  Edible Fruit: # instruction: fruit\n");
    fruit.iter().for_each(|t| yaml.push_str(&format!("    - {t}\n")));
    yaml.push_str("  Sport: # instruction: sports\n");
    sport.iter().for_each(|t| yaml.push_str(&format!("    - {t}\n")));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fruit.yaml");
    std::fs::write(&file, yaml).unwrap();
    let file_arg = file.to_str().unwrap();
    let addr = server.address();

    let json = ok(&wildcards_gen(&["lint", file_arg, "--format", "json", "--server", &addr]));
    let report: Value = serde_json::from_str(&json).expect("JSON report");
    assert_eq!(report["method"], "typicality");
    assert_eq!(report["items_checked"], fruit.len() + sport.len());
    let flagged = report["lists"].as_array().unwrap();
    assert_eq!(flagged.len(), 1, "only the fruit list has outliers: {json}");
    let outliers = flagged[0]["outliers"].as_array().unwrap();
    let items: Vec<&str> = outliers.iter().map(|o| o["item"].as_str().unwrap()).collect();
    let mut want = planted.to_vec();
    want.sort();
    let mut got = items.clone();
    got.sort();
    assert_eq!(got, want, "{json}");
    assert_eq!(report["outliers_total"], planted.len());
    for o in outliers {
        assert!(o["score"].as_f64().unwrap() > 0.1);
        let better = &o["fits_better"];
        assert_eq!(better["path"].as_array().unwrap().last().unwrap(), "Sport", "{o}");
        assert!(better["similarity"].as_f64().unwrap() > o["similarity_own"].as_f64().unwrap());
    }

    let markdown = ok(&wildcards_gen(&["lint", file_arg, "--server", &addr]));
    assert!(markdown.contains("| item | score | fits better in |"), "{markdown}");
    let line = markdown.lines().find(|l| l.starts_with("| football |")).expect("football row");
    assert!(line.contains("\"Sport\" ("), "{line}");
}

#[test]
fn lint_clean_needs_an_output_file() {
    let out = wildcards_gen(&["lint", "x.yaml", "--clean"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A list above the 50,000-item limit of the clustering methods (arrange; lint with glosh)
/// fails at once with exit 1 and an error that says what to do, before any embedding server is
/// contacted (the address here has none, and no private server may be started for a list that
/// would be refused).
#[test]
fn lint_and_arrange_refuse_a_list_above_the_limit_before_contacting_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let terms: Vec<String> = (0..=50_000).map(|i| format!("term {i}")).collect();
    let txt = dir.path().join("big.txt");
    std::fs::write(&txt, terms.join("\n")).unwrap();
    let yaml = dir.path().join("big.yaml");
    let items: String = terms.iter().map(|t| format!("    - {t}\n")).collect();
    std::fs::write(&yaml, format!("Things:\n  Big:\n{items}")).unwrap();
    let cases = [
        (["arrange", txt.to_str().unwrap(), "--server", "127.0.0.1:9", ""], ""),
        (
            ["lint", yaml.to_str().unwrap(), "--server", "127.0.0.1:9", "--outlier-method=glosh"],
            "list `Things > Big`: ",
        ),
    ];
    for (args, path) in cases {
        let command = args[0];
        let args: Vec<&str> = args.into_iter().filter(|a| !a.is_empty()).collect();
        let out = wildcards_gen(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{command}: {stderr}");
        let want = format!("error: {path}a list of 50001 items is longer than the semantic engine's limit of 50000 items");
        assert!(stderr.starts_with(&want), "{command}: {stderr}");
        assert!(stderr.contains("split it into smaller lists"), "{command}: {stderr}");
    }
}

#[test]
fn arrange_groups_terms_deterministically() {
    let server = EmbedServer::uncached().expect("embed-server starts");
    let dir = tempfile::tempdir().unwrap();
    let data: Value = serde_json::from_str(
        &std::fs::read_to_string(reference_dir().join("arrangement_eval.json")).unwrap(),
    )
    .unwrap();
    let terms: Vec<&str> =
        data["lists"][2]["terms"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    let input = dir.path().join("terms.txt");
    std::fs::write(&input, terms.join("\n")).unwrap();
    let run = |out: &Path| {
        ok(&wildcards_gen(&[
            "arrange",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--server",
            &server.address(),
        ]));
        std::fs::read_to_string(out).unwrap()
    };
    let a = run(&dir.path().join("a.yaml"));
    let b = run(&dir.path().join("b.yaml"));
    assert_eq!(a, b, "same input, same output");
    let tree = wildcards_core::output::from_yaml(&a).unwrap();
    assert!(tree.children.len() >= 3, "groups formed:\n{a}");
    let mut got = tree.all_items();
    got.sort();
    let mut want: Vec<String> = terms.iter().map(|t| t.to_string()).collect();
    want.sort();
    assert_eq!(got, want, "every term placed exactly once");
    assert!(a.contains("# instruction:"), "WordNet-named groups carry their gloss:\n{a}");
}

/// Full Tencent, balanced, with cleaning and arrangement: two runs (cold, then warm cache)
/// write byte-identical files, and the stats timeline records the semantic work.
#[test]
fn tencent_semantic_generation_and_lint_are_byte_identical_across_runs_and_flag_few() {
    let dir = tempfile::tempdir().unwrap();
    let server = EmbedServer::with_cache(&dir.path().join("cache.sqlite")).expect("server");
    let addr = server.address();
    let run = |name: &str| {
        let out = dir.path().join(name);
        let o = Command::new(binary("wildcards-gen"))
            .args(["dataset", "tencent", "--smart", "--preset", "balanced"])
            .args(["--semantic-clean", "--semantic-arrange", "--analyze", "-q"])
            .args(["--server", &addr, "-o", out.to_str().unwrap()])
            .env("WILDCARDS_DATA_DIR", test_data_dir())
            .output()
            .unwrap();
        ok(&o);
        out
    };
    let first = run("a.yaml");
    let second = run("b.yaml");
    let (a, b) = (std::fs::read(&first).unwrap(), std::fs::read(&second).unwrap());
    assert!(a == b, "two runs differ");
    let stats: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("b.stats.json")).unwrap())
            .unwrap();
    let events = stats["events"].as_array().unwrap();
    let count = |kind: &str| events.iter().filter(|e| e["kind"] == kind).count();
    assert_eq!(count("embedding"), 1, "one embedding batch per job");
    assert!(count("cleaning") > 100 && count("arrangement") > 10);
    let embedding = events.iter().find(|e| e["kind"] == "embedding").unwrap();
    assert_eq!(embedding["data"]["cache_hits"], embedding["data"]["texts"], "warm run: all cached");
    let applied = events
        .iter()
        .filter(|e| e["kind"] == "arrangement" && e["data"]["applied"] == true)
        .count();
    assert!(applied > 0, "some lists were arranged into groups");

    // The plain balanced skeleton: the default lint flags at most 5 % of its items, twice
    // byte for byte the same JSON (cache counters aside), and --semantic-clean above removed
    // at most 5 % of them.
    let plain = dir.path().join("plain.yaml");
    let o = Command::new(binary("wildcards-gen"))
        .args(["dataset", "tencent", "--smart", "--preset", "balanced", "-q"])
        .args(["-o", plain.to_str().unwrap()])
        .env("WILDCARDS_DATA_DIR", test_data_dir())
        .output()
        .unwrap();
    ok(&o);
    let lint = || {
        let json = ok(&wildcards_gen(&[
            "lint",
            plain.to_str().unwrap(),
            "--format",
            "json",
            "--server",
            &addr,
        ]));
        let mut report: Value = serde_json::from_str(&json).expect("JSON report");
        let counters = report.as_object_mut().unwrap();
        assert!(
            counters.remove("embedded_texts").is_some() && counters.remove("cache_hits").is_some()
        );
        (serde_json::to_string_pretty(&report).unwrap(), report)
    };
    let ((first_json, report), (second_json, _)) = (lint(), lint());
    assert_eq!(first_json, second_json, "lint --format json differs between runs");
    assert_eq!(report["method"], "typicality");
    let checked = report["items_checked"].as_u64().unwrap() as f64;
    let flagged = report["outliers_total"].as_u64().unwrap() as f64;
    assert!(
        checked > 9000.0 && flagged > 0.0 && flagged <= 0.05 * checked,
        "{flagged} of {checked}"
    );
    let items = |file: &Path| {
        wildcards_core::output::from_yaml(&std::fs::read_to_string(file).unwrap())
            .unwrap()
            .all_items()
            .len() as f64
    };
    let (before, after) = (items(&plain), items(&first));
    assert!(after < before && after >= 0.95 * before, "--semantic-clean kept {after} of {before}");
}

/// The planted skeleton rewritten by hand: comments, a merge key, an anchor, quoting, a list
/// at its key's indentation, number-like and null items, a plain value, an empty mapping.
fn hand_written(planted: &str) -> String {
    let mut text = String::from(
        "# hand-written; keep this comment\nextra: &extra\n  Spare:\n    - 42\n    - ~\n",
    );
    for line in planted.lines() {
        text.push_str(line);
        text.push('\n');
        if line.starts_with("Test Skeleton:") {
            text.push_str("  <<: *extra   # merged in\n  Odd: text\n  Empty: {}\n");
        }
        if line.starts_with("  Dog:") {
            text.push_str("    # dogs, by hand\n    - 'golden retriever'   # quoted\n");
        }
    }
    text
}

/// Lint, then `--clean` with the glosh method at 0.3 (flags exactly the planted items).
fn lint_clean(file: &Path, out: &str, addr: &str) -> Output {
    wildcards_gen(&[
        "lint",
        file.to_str().unwrap(),
        "--clean",
        "-o",
        out,
        "--outlier-method",
        "glosh",
        "--threshold",
        "0.3",
        "--server",
        addr,
    ])
}

#[test]
fn lint_clean_deletes_only_the_flagged_lines_of_a_hand_written_file() {
    let server = EmbedServer::uncached().expect("embed-server starts");
    let dir = tempfile::tempdir().unwrap();
    let generated = dir.path().join("generated.yaml");
    planted_skeleton(&generated);
    let original = hand_written(&std::fs::read_to_string(&generated).unwrap());
    let file = dir.path().join("hand.yaml");
    std::fs::write(&file, &original).unwrap();

    let cleaned = dir.path().join("clean.yaml");
    let out = lint_clean(&file, cleaned.to_str().unwrap(), &server.address());
    ok(&out);
    let mut want = original.clone();
    for (_, _, item) in PLANTED {
        want = want.replacen(&format!("    - {item}\n"), "", 1);
    }
    // Keys without any comment (extra, Spare, Odd, Empty) get an instruction appended.
    let (want, added) = wildcards_core::edit::with_instructions(&want).unwrap();
    assert_eq!(added, 4, "{want}");
    assert!(
        want.contains("\n  Odd: text # instruction: Test Skeleton items such as text\n"),
        "{want}"
    );
    assert_eq!(std::fs::read_to_string(&cleaned).unwrap(), want, "every other byte kept");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("`extra > Spare`: 2 items are not strings (42, null)"), "{stderr}");
    assert!(stderr.contains("`Test Skeleton > Odd` holds one value (\"text\")"), "{stderr}");
    assert!(stderr.contains("4 outliers removed, 4 instructions added"), "{stderr}");

    // `-o -`: the cleaned file on stdout, the report on stderr.
    let out = lint_clean(&file, "-", &server.address());
    assert_eq!(ok(&out), want);
    assert!(String::from_utf8_lossy(&out.stderr).contains("# Semantic lint"));

    // A planted item in a flow list cannot be deleted as a line: exit 1, nothing written.
    let tree = wildcards_core::output::from_yaml(&original).unwrap();
    let mut snake = None;
    tree.walk(&mut |n, _| {
        if n.name == "Snake" {
            snake = Some(n.items.clone());
        }
    });
    let quoted: Vec<String> = snake.unwrap().iter().map(|t| format!("{t:?}")).collect();
    let flow = format!("Test Skeleton:\n  Snake: [{}]\n", quoted.join(", "));
    std::fs::write(&file, flow).unwrap();
    let refused = dir.path().join("refused.yaml");
    let out = lint_clean(&file, refused.to_str().unwrap(), &server.address());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("flow style") && stderr.contains("nothing was written"), "{stderr}");
    assert!(!refused.exists());
}

#[test]
fn lint_reads_and_cleans_the_tools_jsonl() {
    let server = EmbedServer::uncached().expect("embed-server starts");
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("planted.yaml");
    planted_skeleton(&yaml);
    let tree = wildcards_core::output::read_yaml(&yaml).unwrap();
    let jsonl = wildcards_core::output::to_jsonl(&tree).unwrap();
    let file = dir.path().join("planted.jsonl");
    std::fs::write(&file, &jsonl).unwrap();
    let cleaned = dir.path().join("clean.jsonl");
    ok(&lint_clean(&file, cleaned.to_str().unwrap(), &server.address()));
    let want: String = jsonl
        .lines()
        .filter(|l| !PLANTED.iter().any(|(_, _, p)| l.contains(&format!("\"text\":\"{p}\""))))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(jsonl.lines().count() - want.lines().count(), PLANTED.len());
    assert_eq!(std::fs::read_to_string(&cleaned).unwrap(), want);
}
