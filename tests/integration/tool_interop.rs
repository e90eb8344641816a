//! Our skeletons in the programs that read them, with the real packages (installed by
//! `scripts/setup.sh`; a missing one fails the test with that hint, never a silent skip):
//! - the wildcards-generator web app's import, replayed with its `yaml` npm package
//!   (`tests/js/import-check.mjs`): every category has its instruction, every item arrives;
//! - Dynamic Prompts' `dynamicprompts` library (`tests/py/dynamicprompts_check.py`): every list
//!   of the skeleton YAML and of its `export --format txt` folder is a wildcard with the same
//!   items, and a template with three wildcards renders.
//!
//! Skeletons: Tencent balanced, the semantic Tencent skeleton (the demo batch's `semantic` job:
//! cleaning and arrangement on the real model), COCO, ImageNet, Open Images, and an `arrange`
//! output of terms with bare numbers in them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use test_support::{binary, test_data_dir, workspace_root, EmbedServer};
use wildcards_core::output::read_yaml;
use wildcards_core::taxonomy::TaxonomyNode;

const SETUP_HINT: &str = "run scripts/setup.sh to install it";

/// Runs `program args` and returns its stdout; a program that cannot start fails with the
/// setup hint.
pub fn run_tool(program: &str, args: &[&str], what: &str) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} ({what}): {e}; {SETUP_HINT}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}): {}\n(a missing tool or package? {SETUP_HINT})",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn wildcards_gen(args: &[&str]) -> Output {
    Command::new(binary("wildcards-gen"))
        .args(args)
        .env("WILDCARDS_DATA_DIR", test_data_dir())
        .env("WILDCARDS_OFFLINE", "1")
        .output()
        .expect("wildcards-gen runs")
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Terms for `arrange` with a group of bare numbers (which used to be named `"012"`).
const ODD_TERMS: &str = "012\n034\n056\n078\n101\n202\n303\n404\n505\n606\n\
apple\npear\nplum\ncherry\napricot\npeach\nmango\nbanana\n\
hammer\nscrewdriver\nwrench\npliers\nchisel\nhandsaw\nmallet\nspanner\n";

/// The six skeletons, written into `dir` (the embed-server cache `cache` keeps later runs warm).
pub fn skeletons(dir: &Path, cache: &str) -> Vec<(&'static str, PathBuf)> {
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(cache);
    let server = EmbedServer::with_cache(&cache).expect("embed-server starts");
    let addr = server.address();
    let path = |name: &str| dir.join(name);
    let mut out = Vec::new();
    let jobs: [(&str, &str, &[&str]); 5] = [
        ("tencent balanced", "tencent.yaml", &["tencent", "--smart"]),
        (
            "tencent semantic",
            "tencent_semantic.yaml",
            &["tencent", "--smart", "--semantic-clean", "--semantic-arrange", "--server", &addr],
        ),
        ("coco", "coco.yaml", &["coco", "--smart"]),
        ("imagenet", "imagenet.yaml", &["imagenet", "--smart"]),
        ("openimages", "openimages.yaml", &["openimages", "--smart"]),
    ];
    for (label, file, args) in jobs {
        let p = path(file);
        let mut all = vec!["dataset", args[0], "-q", "-o", p.to_str().unwrap()];
        all.extend_from_slice(&args[1..]);
        ok(wildcards_gen(&all));
        out.push((label, p));
    }
    let terms = path("odd_terms.txt");
    std::fs::write(&terms, ODD_TERMS).unwrap();
    let arranged = path("arranged.yaml");
    ok(wildcards_gen(&[
        "arrange",
        terms.to_str().unwrap(),
        "-o",
        arranged.to_str().unwrap(),
        "--server",
        &addr,
    ]));
    out.push(("arrange", arranged));
    out
}

/// Every list of a skeleton as our reader sees it: key path -> items.
pub fn lists_of(tree: &TaxonomyNode) -> BTreeMap<Vec<String>, Vec<String>> {
    fn walk(
        n: &TaxonomyNode,
        path: &mut Vec<String>,
        out: &mut BTreeMap<Vec<String>, Vec<String>>,
    ) {
        path.push(n.name.clone());
        if n.children.is_empty() {
            out.insert(path.clone(), n.items.clone());
        }
        for c in &n.children {
            walk(c, path, out);
        }
        path.pop();
    }
    let mut out = BTreeMap::new();
    walk(tree, &mut Vec::new(), &mut out);
    out
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

fn node_import(file: &Path) -> Value {
    let js = workspace_root().join("tests/js");
    assert!(
        js.join("node_modules/yaml").is_dir(),
        "tests/js/node_modules/yaml is missing; {SETUP_HINT} (npm ci in tests/js)"
    );
    let script = js.join("import-check.mjs");
    let text = run_tool("node", &[script.to_str().unwrap(), file.to_str().unwrap()], "Node.js");
    serde_json::from_str(&text).expect("the import check prints JSON")
}

#[test]
fn the_web_app_import_finds_every_instruction_and_item() {
    let dir = tempfile::tempdir().unwrap();
    for (label, file) in skeletons(dir.path(), "interop-js.sqlite") {
        let import = node_import(&file);
        assert!(import["yaml_version"].as_str().unwrap().starts_with("2.8."), "{import:?}");
        let categories = import["categories"].as_array().unwrap();
        let missing: Vec<String> = categories
            .iter()
            .filter(|c| c["instruction"].as_str().is_none_or(|i| i.trim().is_empty()))
            .map(|c| strings(&c["path"]).join(" > "))
            .collect();
        let tree = read_yaml(&file).unwrap();
        let ours = lists_of(&tree);
        let theirs: BTreeMap<Vec<String>, Vec<String>> = import["lists"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| (strings(&l["path"]), strings(&l["items"])))
            .collect();
        let items: usize = theirs.values().map(Vec::len).sum();
        println!(
            "{label}: {} categories, {} with an instruction, {} lists, {items} items",
            categories.len(),
            categories.len() - missing.len(),
            theirs.len()
        );
        assert!(missing.is_empty(), "{label}: categories without instruction: {missing:?}");
        assert_eq!(categories.len(), tree.count_categories(), "{label}: categories");
        assert_eq!(theirs, ours, "{label}: the imported lists differ from the skeleton's");
        assert_eq!(items, tree.all_items().len(), "{label}: items");
        if label == "arrange" {
            let keys: Vec<String> =
                categories.iter().map(|c| strings(&c["path"]).join(" > ")).collect();
            let unreadable = keys.iter().filter(|k| {
                let last = k.rsplit(" > ").next().unwrap();
                !last.chars().any(char::is_alphabetic)
                    || last.rsplit_once(' ').is_some_and(|(_, n)| n.parse::<u32>().is_ok())
            });
            assert_eq!(unreadable.count(), 0, "arranged group names: {keys:?}");
            assert!(keys.iter().any(|k| k.ends_with(" > Numbers")), "the numbers' group: {keys:?}");
        }
    }
}

/// `python3 tests/py/dynamicprompts_check.py ARGS` as JSON.
pub fn dynamicprompts(args: &[&str]) -> Value {
    let script = workspace_root().join("tests/py/dynamicprompts_check.py");
    let mut all = vec![script.to_str().unwrap()];
    all.extend_from_slice(args);
    let text = run_tool("python3", &all, "Python with dynamicprompts");
    serde_json::from_str(&text).expect("the Dynamic Prompts check prints JSON")
}

/// What Dynamic Prompts loaded from a folder: wildcard name -> values.
fn wildcards_in(dir: &Path) -> BTreeMap<String, Vec<String>> {
    let v = dynamicprompts(&["list", dir.to_str().unwrap()]);
    v["wildcards"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), strings(v))).collect()
}

#[test]
fn dynamicprompts_loads_every_list_from_the_yaml_and_the_txt_export() {
    let dir = tempfile::tempdir().unwrap();
    for (label, file) in skeletons(dir.path(), "interop-dp.sqlite") {
        let tree = read_yaml(&file).unwrap();
        let ours: BTreeMap<String, Vec<String>> =
            lists_of(&tree).into_iter().map(|(p, items)| (p.join("/"), items)).collect();

        // The YAML as it is, alone in a wildcards folder (Dynamic Prompts skips empty lists).
        let yaml_dir = dir.path().join(format!("{label}-yaml"));
        std::fs::create_dir(&yaml_dir).unwrap();
        std::fs::copy(&file, yaml_dir.join("skeleton.yaml")).unwrap();
        let from_yaml = wildcards_in(&yaml_dir);
        let non_empty: BTreeMap<String, Vec<String>> = ours
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(from_yaml, non_empty, "{label}: the YAML as Dynamic Prompts reads it");

        // The txt export: every list under its written name (the marker lists the renamed).
        let txt_dir = dir.path().join(format!("{label}-txt"));
        let args =
            ["export", file.to_str().unwrap(), "--format", "txt", "-o", txt_dir.to_str().unwrap()];
        let log = ok(wildcards_gen(&args));
        assert!(log.contains(&format!("({} items)", tree.all_items().len())), "{log}");
        let from_txt = wildcards_in(&txt_dir);
        let expected = exported_names(&lists_of(&tree), &txt_dir);
        assert_eq!(from_txt, expected, "{label}: the txt export as Dynamic Prompts reads it");
        let renamed = expected.keys().filter(|k| !ours.contains_key(*k)).count();
        println!(
            "{label}: {} wildcards from the YAML, {} from the txt export ({renamed} renamed), {} items",
            from_yaml.len(),
            from_txt.len(),
            tree.all_items().len()
        );
    }
}

/// Our lists under the names the export wrote (its marker file lists the renamed keys).
fn exported_names(
    ours: &BTreeMap<Vec<String>, Vec<String>>,
    export_dir: &Path,
) -> BTreeMap<String, Vec<String>> {
    let marker: Value = serde_json::from_str(
        &std::fs::read_to_string(export_dir.join(wildcards_core::export::MARKER)).unwrap(),
    )
    .unwrap();
    let renamed: BTreeMap<Vec<String>, Vec<String>> = marker["renamed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (strings(&r["key"]), strings(&r["written"])))
        .collect();
    // A renamed category renames every path below it.
    let written = |path: &[String]| -> String {
        let mut out = path.to_vec();
        for depth in (1..=path.len()).rev() {
            if let Some(w) = renamed.get(&path[..depth]) {
                out.splice(..depth, w.iter().cloned());
                break;
            }
        }
        out.join("/")
    };
    ours.iter().map(|(path, items)| (written(path), items.clone())).collect()
}

/// Three wildcards in one template: a list whose key had parentheses (`Abstraction (Entity)`,
/// which Dynamic Prompts' grammar could not name), one with a space in its path, and one more.
#[test]
fn a_template_with_three_wildcards_renders_from_the_txt_export() {
    let dir = tempfile::tempdir().unwrap();
    let skeleton = dir.path().join("imagenet1k.yaml");
    let args = ["dataset", "imagenet", "--filter", "1k", "--smart", "-q", "-o"];
    ok(wildcards_gen(&[&args[..], &[skeleton.to_str().unwrap()]].concat()));
    let wild = dir.path().join("wildcards");
    ok(wildcards_gen(&["export", skeleton.to_str().unwrap(), "-o", wild.to_str().unwrap()]));
    let ours = lists_of(&read_yaml(&skeleton).unwrap());
    let written = exported_names(&ours, &wild);
    // (key path in the skeleton, written wildcard name, items), lists with items only.
    type List<'a> = (&'a Vec<String>, &'a String, &'a Vec<String>);
    let lists: Vec<List> = ours
        .keys()
        .zip(written.iter())
        .filter(|(_, (_, v))| !v.is_empty())
        .map(|(key, (name, items))| (key, name, items))
        .collect();
    let renamed = lists.iter().find(|(key, _, _)| key.iter().any(|k| k.contains('('))).unwrap();
    let spaced = lists.iter().find(|(_, n, _)| n.contains(' ') && *n != renamed.1).unwrap();
    let other = lists.iter().find(|(_, n, _)| *n != renamed.1 && *n != spaced.1).unwrap();
    let names = [(renamed.1, renamed.2), (spaced.1, spaced.2), (other.1, other.2)];
    let template = format!(
        "a photo of a __{}__ next to a __{}__ and a __{}__",
        names[0].0, names[1].0, names[2].0
    );
    let rendered = dynamicprompts(&["render", wild.to_str().unwrap(), &template]);
    let prompts = strings(&rendered["prompts"]);
    assert_eq!(prompts.len(), 5, "{rendered:?}");
    for prompt in &prompts {
        let rest = prompt.strip_prefix("a photo of a ").unwrap_or_else(|| panic!("{prompt}"));
        let (a, rest) = rest.split_once(" next to a ").unwrap_or_else(|| panic!("{prompt}"));
        let (b, c) = rest.split_once(" and a ").unwrap_or_else(|| panic!("{prompt}"));
        for (value, (name, items)) in [a, b, c].iter().zip(&names) {
            assert!(items.iter().any(|i| i == value), "{value:?} is not an item of {name}");
        }
    }
    println!("{template}\n -> {prompts:?}");
}
