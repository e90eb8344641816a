//! Tencent ML-Images: `dictionary_and_semantic_hierarchy.txt`, 11,166 WordNet categories.
//!
//! The file is tab-separated with a header line: `category_index`, `category_id` (a wnid),
//! `index_of_parent_category` (-1 for a root), `category name` (comma-separated synonyms).
//! Every category becomes a node named by its first name; its instruction is the WordNet gloss
//! of the wnid, else "Items related to <name>". Categories without children are the labels
//! that end up as items. The four roots go under a virtual root "Tencent ML-Images".

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::download::{DataFile, Published};
use crate::taxonomy::{NodeMeta, TaxonomyNode};

/// The hierarchy file in the data dir and its official URL.
pub const FILE: DataFile = DataFile {
    folder: "tencent",
    name: "dictionary_and_semantic_hierarchy.txt",
    url: "https://raw.githubusercontent.com/Tencent/tencent-ml-images/master/data/dictionary_and_semantic_hierarchy.txt",
    published: Some(Published {
        bytes: 488167,
        sha256: "4271c1bd49405c1453021a38039343bd810d8dc3a0fab23941fb286d528d45ce",
    }),
};

/// Name of the virtual root that holds the dataset's several roots.
pub const VIRTUAL_ROOT: &str = "Tencent ML-Images";

/// One category line of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    pub index: usize,
    pub wnid: String,
    pub parent: Option<usize>,
    /// First comma-separated name, trimmed.
    pub name: String,
    /// 1-based line number in the file (for error messages).
    pub line: usize,
}

/// Parses the file's text; `path` only names the file in errors.
pub fn parse(text: &str, path: &Path) -> Result<Vec<Category>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() || (line_no == 1 && line.starts_with("category_index")) {
            continue;
        }
        out.push(parse_line(line, line_no).map_err(|why| {
            anyhow::anyhow!(
                "{}:{line_no}: {why}; expected `index<TAB>wnid<TAB>parent index<TAB>names` — \
                 fix the line or delete the file so it is downloaded again",
                path.display()
            )
        })?);
    }
    if out.is_empty() {
        bail!("{}: no categories found; delete the file so it is downloaded again", path.display());
    }
    Ok(out)
}

fn parse_line(line: &str, line_no: usize) -> std::result::Result<Category, String> {
    let fields: Vec<&str> = line.split('\t').collect();
    if fields.len() != 4 {
        return Err(format!("found {} tab-separated fields instead of 4", fields.len()));
    }
    let index = fields[0]
        .trim()
        .parse::<usize>()
        .map_err(|_| format!("category index `{}` is not a number", fields[0]))?;
    let wnid = fields[1].trim();
    if wnid.is_empty() {
        return Err("the category id (wnid) is empty".into());
    }
    let parent = match fields[2].trim().parse::<i64>() {
        Ok(-1) => None,
        Ok(p) if p >= 0 => Some(p as usize),
        _ => return Err(format!("parent index `{}` is not a number >= -1", fields[2])),
    };
    let name = fields[3].split(',').next().unwrap_or("").trim();
    if name.is_empty() {
        return Err("the category name is empty".into());
    }
    Ok(Category { index, wnid: wnid.to_string(), parent, name: name.to_string(), line: line_no })
}

/// Reads and parses the file at `path`, then builds the tree (see [`build_tree`]).
pub fn load(path: &Path, gloss_of: &dyn Fn(&str) -> Option<String>) -> Result<TaxonomyNode> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the Tencent hierarchy {}; delete it so it is downloaded again, or point \
             --data-dir at a folder with tencent/{}",
            path.display(),
            FILE.name
        )
    })?;
    let cats = parse(&text, path)?;
    build_tree(&cats, path, gloss_of)
}

/// Builds the tree under the virtual root. Checks that indices are unique, that every parent
/// exists and that there is no cycle; errors name the file and line.
pub fn build_tree(
    cats: &[Category],
    path: &Path,
    gloss_of: &dyn Fn(&str) -> Option<String>,
) -> Result<TaxonomyNode> {
    let mut pos_of: HashMap<usize, usize> = HashMap::with_capacity(cats.len());
    for (pos, c) in cats.iter().enumerate() {
        if let Some(&first) = pos_of.get(&c.index) {
            bail!(
                "{}:{}: category index {} already used on line {}; fix the file or delete it so it \
                 is downloaded again",
                path.display(),
                c.line,
                c.index,
                cats[first].line
            );
        }
        pos_of.insert(c.index, pos);
    }
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); cats.len()];
    let mut roots = Vec::new();
    for (pos, c) in cats.iter().enumerate() {
        match c.parent {
            None => roots.push(pos),
            Some(p) => match pos_of.get(&p) {
                Some(&pp) => children[pp].push(pos),
                None => bail!(
                    "{}:{}: parent index {p} of `{}` is not a category in the file; fix the line or \
                     delete the file so it is downloaded again",
                    path.display(),
                    c.line,
                    c.name
                ),
            },
        }
    }

    let mut visited = vec![false; cats.len()];
    let mut root = TaxonomyNode::new(VIRTUAL_ROOT);
    root.metadata = NodeMeta {
        gloss: Some("categories of the Tencent ML-Images label hierarchy".into()),
        is_root: true,
        ..Default::default()
    };
    for &r in &roots {
        let mut node = build_node(r, 0, cats, &children, &mut visited, gloss_of);
        node.metadata.is_root = true;
        root.children.push(node);
    }
    if let Some(pos) = visited.iter().position(|v| !v) {
        bail!(
            "{}:{}: `{}` is not reachable from a root (its parents form a cycle); fix the file or \
             delete it so it is downloaded again",
            path.display(),
            cats[pos].line,
            cats[pos].name
        );
    }
    Ok(root)
}

/// Builds one node and its subtree. Iterative over an explicit stack would avoid deep
/// recursion, but WordNet-derived trees are at most ~20 levels deep.
fn build_node(
    pos: usize,
    depth: usize,
    cats: &[Category],
    children: &[Vec<usize>],
    visited: &mut [bool],
    gloss_of: &dyn Fn(&str) -> Option<String>,
) -> TaxonomyNode {
    visited[pos] = true;
    let c = &cats[pos];
    let gloss = gloss_of(&c.wnid).unwrap_or_else(|| format!("Items related to {}", c.name));
    TaxonomyNode {
        name: c.name.clone(),
        children: children[pos]
            .iter()
            .map(|&ch| build_node(ch, depth + 1, cats, children, visited, gloss_of))
            .collect(),
        items: Vec::new(),
        metadata: NodeMeta {
            wnid: Some(c.wnid.clone()),
            gloss: Some(gloss),
            depth,
            is_root: false,
            is_bin: false,
            plain_name: None,
            pending_arrangement: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "category_index\tcategory_id\tindex_of_parent_category\tcategory name\n\
        0\tn00002452\t-1\tthing\n\
        1\tn00020827\t-1\tmatter\n\
        2\tn05220461\t0\tbody part\n\
        3\tn05538625\t2\thead, caput\n";

    fn no_gloss(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn builds_the_tree_under_a_virtual_root() {
        let cats = parse(SAMPLE, Path::new("t.txt")).unwrap();
        let tree = build_tree(&cats, Path::new("t.txt"), &no_gloss).unwrap();
        assert_eq!(tree.name, VIRTUAL_ROOT);
        assert_eq!(tree.children.len(), 2);
        let thing = &tree.children[0];
        assert!(thing.metadata.is_root);
        assert_eq!(thing.children[0].children[0].name, "head");
        assert_eq!(thing.children[0].children[0].metadata.depth, 2);
        assert_eq!(
            thing.children[0].children[0].metadata.gloss.as_deref(),
            Some("Items related to head")
        );
        assert_eq!(thing.metadata.wnid.as_deref(), Some("n00002452"));
    }

    #[test]
    fn a_malformed_line_names_file_and_line() {
        let bad = SAMPLE.replace("2\tn05220461\t0\tbody part", "2 n05220461 0 body part");
        let err = parse(&bad, Path::new("dir/h.txt")).unwrap_err().to_string();
        assert!(err.starts_with("dir/h.txt:4: found 1 tab-separated fields"), "{err}");
    }

    #[test]
    fn a_missing_parent_names_the_line() {
        let bad = SAMPLE.replace("3\tn05538625\t2\t", "3\tn05538625\t7\t");
        let cats = parse(&bad, Path::new("h.txt")).unwrap();
        let err = build_tree(&cats, Path::new("h.txt"), &no_gloss).unwrap_err().to_string();
        assert!(err.starts_with("h.txt:5: parent index 7"), "{err}");
    }

    #[test]
    fn a_cycle_is_reported() {
        let text = "0\tn1\t1\ta\n1\tn2\t0\tb\n2\tn3\t-1\tc\n";
        let cats = parse(text, Path::new("h.txt")).unwrap();
        let err = build_tree(&cats, Path::new("h.txt"), &no_gloss).unwrap_err().to_string();
        assert!(err.contains("cycle"), "{err}");
    }

    #[test]
    fn loads_the_full_shared_file() {
        let path = FILE.path_in(&crate::test_support::data_dir());
        let tree = load(&path, &no_gloss).unwrap();
        // 11,166 categories plus the virtual root.
        assert_eq!(tree.count_nodes(), 11_167);
        assert_eq!(tree.children.len(), 4);
    }
}
