//! What the unit tests share: the real WordNet loaded once, the shared data folder, and the
//! labels of a loader's raw tree. One copy here so every module's tests find the same files
//! the same way.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::OnceLock;

use crate::taxonomy::TaxonomyNode;
use crate::wordnet::WordNet;

/// The installed WordNet 3.0, loaded once per test process (loading takes a while).
pub(crate) fn wn() -> &'static WordNet {
    static WN: OnceLock<WordNet> = OnceLock::new();
    WN.get_or_init(|| WordNet::locate(None).expect("WordNet 3.0 is installed (wordnet-base)"))
}

/// The dataset folder: `WILDCARDS_DATA_DIR`, else `../shared/data` beside the checkout.
pub(crate) fn data_dir() -> PathBuf {
    std::env::var_os("WILDCARDS_DATA_DIR").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"))
    })
}

/// Labels of a raw tree: leaf node names and direct items.
pub(crate) fn labels(tree: &TaxonomyNode) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = tree.leaf_names().into_iter().collect();
    out.extend(tree.all_items());
    out
}
