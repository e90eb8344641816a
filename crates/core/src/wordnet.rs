//! The WordNet 3.0 noun database: synsets by wnid or NLTK name, morphy, the hypernym graph,
//! minimum depths and hyponym-closure sizes.
//!
//! Hand-written parser, on purpose. The only maintained crate, `wordnet-db` (0.1.x), parses the
//! data and index files of all four parts of speech into structures that borrow from memory
//! maps; we need nouns only, and what we need on top (NLTK synset names, min depths, closure
//! sizes, lowest common hypernyms, NLTK morphy) it does not provide. Wrapping a self-borrowing
//! mmap view in a struct that worker threads share through an `Arc` would cost more code than
//! the ~100 lines that parse the two noun files, and loading the adjective/verb/adverb files
//! would cost load time for nothing. The noun files' format is fixed (WordNet 3.0 `wndb(5)`).
//!
//! Everything is loaded once into owned, compact structures (pointers as index arrays), so a
//! [`WordNet`] is `Send + Sync` and cheap to share. Min and max depths are computed at load in
//! one topological pass; closure sizes are memoised on first use.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};

/// One noun synset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synset {
    /// Byte offset in `data.noun`: the synset's identity in WordNet 3.0.
    pub offset: u32,
    /// NLTK-style name, e.g. `dog.n.01` (first lemma, lower case, and its sense number).
    pub name: String,
    /// Lemma names as in the database (case and underscores kept), e.g. `Canis_familiaris`.
    pub lemmas: Vec<String>,
    /// The definition, without the quoted usage examples (as NLTK's `definition()`).
    pub gloss: String,
    /// Lexicographer file, e.g. `noun.animal` (shared: 45 names for 82k synsets).
    pub lexname: Arc<str>,
    /// Position in [`WordNet::synsets`]; keys the relation and depth arrays.
    index: u32,
}

impl Synset {
    /// ImageNet-style id: `n` and the zero-padded offset, e.g. `n02084071`.
    pub fn wnid(&self) -> String {
        format!("n{:08}", self.offset)
    }

    /// The first lemma with underscores as spaces, e.g. `dog` (the usual display name).
    pub fn primary_lemma(&self) -> String {
        self.lemmas.first().map(|l| l.replace('_', " ")).unwrap_or_default()
    }

    /// True when this is the first noun sense of its first lemma (`dog.n.01`, not
    /// `crane.n.05`): what a reader takes the plain name to mean. The sense number of the
    /// NLTK name is the synset's place among that lemma's senses, so no lookup is needed.
    pub fn is_first_sense_of_its_name(&self) -> bool {
        self.name.ends_with(".n.01")
    }
}

/// The loaded noun database. Share it between threads with an `Arc`.
#[derive(Debug)]
pub struct WordNet {
    synsets: Vec<Synset>,
    /// `synsets[i].offset`, ascending: the wnid lookup table.
    offsets: Vec<u32>,
    /// `index.noun`: lemma (lower case, underscores) -> synset positions in sense order.
    lemma_index: LemmaIndex,
    /// `noun.exc`: inflected form -> base forms.
    exceptions: HashMap<String, Vec<String>>,
    /// Hypernyms then instance hypernyms of synset i: `hyper[hyper_start[i]..hyper_start[i+1]]`.
    hyper_start: Vec<u32>,
    hyper: Vec<u32>,
    /// Hyponyms then instance hyponyms, same layout.
    hypo_start: Vec<u32>,
    hypo: Vec<u32>,
    /// How many of a synset's hypernyms / hyponyms are class (not instance) links: they
    /// come first in its slice.
    class_hypernym_count: Vec<u16>,
    class_hyponym_count: Vec<u16>,
    min_depth: Vec<u16>,
    max_depth: Vec<u16>,
    /// Memoised hyponym-closure sizes; `u32::MAX` = not computed yet.
    closure_size: Vec<AtomicU32>,
}

/// The lexicographer files of WordNet 3.0, by number. Debian's `wordnet-base` does not ship the
/// `lexnames` file, so this table is the fallback when the directory has none.
const LEXNAMES: [&str; 45] = [
    "adj.all",
    "adj.pert",
    "adv.all",
    "noun.Tops",
    "noun.act",
    "noun.animal",
    "noun.artifact",
    "noun.attribute",
    "noun.body",
    "noun.cognition",
    "noun.communication",
    "noun.event",
    "noun.feeling",
    "noun.food",
    "noun.group",
    "noun.location",
    "noun.motive",
    "noun.object",
    "noun.person",
    "noun.phenomenon",
    "noun.plant",
    "noun.possession",
    "noun.process",
    "noun.quantity",
    "noun.relation",
    "noun.shape",
    "noun.state",
    "noun.substance",
    "noun.time",
    "verb.body",
    "verb.change",
    "verb.cognition",
    "verb.communication",
    "verb.competition",
    "verb.consumption",
    "verb.contact",
    "verb.creation",
    "verb.emotion",
    "verb.motion",
    "verb.perception",
    "verb.possession",
    "verb.social",
    "verb.stative",
    "verb.weather",
    "adj.ppl",
];

/// NLTK's morphological substitutions for nouns, applied in this order.
const NOUN_SUFFIX_RULES: [(&str, &str); 8] = [
    ("s", ""),
    ("ses", "s"),
    ("xes", "x"),
    ("zes", "z"),
    ("ches", "ch"),
    ("shes", "sh"),
    ("men", "man"),
    ("ies", "y"),
];

impl WordNet {
    /// Finds and loads the database. Looks, in order, in: `explicit` (`--wordnet-dir`; when
    /// given, only there), `$WNHOME` and `$WNHOME/dict`, `$WORDNET_DIR` and `$WORDNET_DIR/dict`,
    /// `/usr/share/wordnet`, then `corpora/wordnet` of the NLTK data dirs (`$NLTK_DATA`,
    /// `~/nltk_data`, `/usr/share/nltk_data`, `/usr/local/share/nltk_data`, `/usr/lib/nltk_data`,
    /// `/usr/local/lib/nltk_data`). When none holds `data.noun` and `index.noun`, the error is one
    /// line naming every place looked and the fix.
    pub fn locate(explicit: Option<&Path>) -> Result<WordNet> {
        let candidates = match explicit {
            Some(dir) => vec![dir.to_path_buf(), dir.join("dict")],
            None => default_candidates(|k| std::env::var_os(k).map(PathBuf::from)),
        };
        Self::load_first(&candidates)
    }

    /// Loads from the first of `candidates` that holds the noun files; see [`WordNet::locate`].
    pub fn load_first(candidates: &[PathBuf]) -> Result<WordNet> {
        match candidates.iter().find(|d| is_wordnet_dir(d)) {
            Some(dir) => Self::load(dir),
            None => {
                let looked: Vec<String> =
                    candidates.iter().map(|d| d.display().to_string()).collect();
                bail!(
                    "WordNet 3.0 database (data.noun, index.noun) not found; looked in: {}. \
                     Fix: `sudo apt-get install wordnet-base`, or point --wordnet-dir / WNHOME \
                     at a directory holding data.noun and index.noun",
                    looked.join(", ")
                )
            }
        }
    }

    /// Loads the noun database from `dir` (`data.noun`, `index.noun`, optional `noun.exc` and
    /// `lexnames`). The data and index files are parsed on two threads.
    pub fn load(dir: &Path) -> Result<WordNet> {
        let lexnames: Vec<Arc<str>> = read_lexnames(dir)?.into_iter().map(Arc::from).collect();
        let (raw, index) = std::thread::scope(|scope| {
            let index = scope.spawn(|| LemmaIndex::read(&dir.join("index.noun")));
            let raw = read_data(&dir.join("data.noun"), &lexnames);
            let index = index.join().unwrap_or_else(|_| Err(anyhow!("index.noun reader panicked")));
            (raw, index)
        });
        let (raw, index) = (raw?, index?);
        let exc_path = dir.join("noun.exc");
        let exceptions = match std::fs::read_to_string(&exc_path) {
            Ok(text) => parse_exceptions(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
            Err(e) => bail!("cannot read WordNet file {}: {e}", exc_path.display()),
        };
        Self::assemble(raw, index, exceptions)
    }

    /// Links the parsed files: pointer and index offsets become synset positions.
    fn assemble(
        data: NounData,
        mut lemma_index: LemmaIndex,
        exceptions: HashMap<String, Vec<String>>,
    ) -> Result<WordNet> {
        let NounData { mut synsets, mut hypernyms, mut hyponyms } = data;
        // A compact copy of the offsets: binary searches over it stay in cache.
        let offsets: Vec<u32> = synsets.iter().map(|s| s.offset).collect();
        if !offsets.is_sorted() {
            bail!("data.noun: synsets are not in offset order; the file is damaged, reinstall it");
        }
        let position = |offset: &mut u32, file: &str| -> Result<()> {
            match offsets.binary_search(offset) {
                Ok(i) => {
                    *offset = i as u32;
                    Ok(())
                }
                Err(_) => bail!(
                    "{file} refers to synset offset {offset:08}, which is not in data.noun; the \
                     database is damaged, reinstall it"
                ),
            }
        };
        for t in hypernyms.targets.iter_mut().chain(hyponyms.targets.iter_mut()) {
            position(t, "a data.noun pointer")?;
        }
        for t in lemma_index.senses.iter_mut() {
            position(t, "index.noun")?;
        }
        let n = synsets.len();
        name_synsets(&mut synsets, &lemma_index);
        let mut wn = WordNet {
            synsets,
            offsets,
            lemma_index,
            exceptions,
            hyper_start: hypernyms.start,
            hyper: hypernyms.targets,
            hypo_start: hyponyms.start,
            hypo: hyponyms.targets,
            class_hypernym_count: hypernyms.class_count,
            class_hyponym_count: hyponyms.class_count,
            min_depth: Vec::new(),
            max_depth: Vec::new(),
            closure_size: (0..n).map(|_| AtomicU32::new(u32::MAX)).collect(),
        };
        wn.compute_depths()?;
        Ok(wn)
    }

    /// Min depth (NLTK: 0 for a root, else 1 + min over hypernyms) and max depth (1 + max) of
    /// every synset, in one pass over a topological order from the roots down.
    fn compute_depths(&mut self) -> Result<()> {
        let n = self.synsets.len();
        let mut pending: Vec<u32> = (0..n).map(|i| self.hyper_ids(i).len() as u32).collect();
        let mut order: Vec<u32> = (0..n as u32).filter(|&i| pending[i as usize] == 0).collect();
        let mut min_depth = vec![u16::MAX; n];
        let mut max_depth = vec![0u16; n];
        for &r in &order {
            min_depth[r as usize] = 0;
        }
        let mut next = 0;
        while next < order.len() {
            let s = order[next] as usize;
            next += 1;
            for &c in self.hypo_ids(s) {
                let c = c as usize;
                min_depth[c] = min_depth[c].min(min_depth[s] + 1);
                max_depth[c] = max_depth[c].max(max_depth[s] + 1);
                pending[c] -= 1;
                if pending[c] == 0 {
                    order.push(c as u32);
                }
            }
        }
        if order.len() != n {
            bail!(
                "data.noun: the hypernym graph has a cycle; the database is damaged, reinstall it"
            );
        }
        self.min_depth = min_depth;
        self.max_depth = max_depth;
        Ok(())
    }

    fn hyper_ids(&self, i: usize) -> &[u32] {
        &self.hyper[self.hyper_start[i] as usize..self.hyper_start[i + 1] as usize]
    }

    fn hypo_ids(&self, i: usize) -> &[u32] {
        &self.hypo[self.hypo_start[i] as usize..self.hypo_start[i + 1] as usize]
    }

    /// Number of noun synsets.
    pub fn len(&self) -> usize {
        self.synsets.len()
    }

    /// Always false for a loaded database; here for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.synsets.is_empty()
    }

    /// All noun synsets in `data.noun` order.
    pub fn synsets(&self) -> &[Synset] {
        &self.synsets
    }

    /// Synset by wnid (`n02084071`; the `n` is optional).
    pub fn synset(&self, wnid: &str) -> Option<&Synset> {
        let digits = wnid.strip_prefix('n').unwrap_or(wnid);
        let offset: u32 = digits.parse().ok()?;
        let i = self.offsets.binary_search(&offset).ok()?;
        Some(&self.synsets[i])
    }

    /// Synset by NLTK name, resolved as NLTK's `wn.synset()` does: `lemma.n.NN` is the NN-th
    /// noun sense of the lemma in `index.noun`. Canonical names (`dog.n.01`) resolve to their
    /// synset; `bank.n.02` resolves to `depository_financial_institution.n.01`.
    pub fn synset_by_name(&self, name: &str) -> Option<&Synset> {
        let mut parts = name.rsplitn(3, '.');
        let (sense, pos, lemma) = (parts.next()?, parts.next()?, parts.next()?);
        if pos != "n" {
            return None;
        }
        let sense: usize = sense.parse().ok()?;
        let lemma = lemma.to_lowercase().replace(' ', "_");
        let i = *self.lemma_index.get(&lemma)?.get(sense.checked_sub(1)?)?;
        Some(&self.synsets[i as usize])
    }

    /// Base forms of a noun as NLTK's `morphy` finds them: the `noun.exc` exceptions when the
    /// word is one, else the word and its suffix-rule variants that are in `index.noun`
    /// (repeating the rules while nothing matches). Spaces are read as underscores; results use
    /// underscores as the database does.
    pub fn morphy(&self, word: &str) -> Vec<String> {
        let form = word.trim().to_lowercase().replace(' ', "_");
        if form.is_empty() {
            return Vec::new();
        }
        if let Some(bases) = self.exceptions.get(&form) {
            let all = std::iter::once(form.clone()).chain(bases.iter().cloned());
            return self.known_forms(all);
        }
        let mut forms = apply_suffix_rules(std::slice::from_ref(&form));
        let found = self.known_forms(std::iter::once(form).chain(forms.iter().cloned()));
        if !found.is_empty() {
            return found;
        }
        while !forms.is_empty() {
            forms = apply_suffix_rules(&forms);
            let found = self.known_forms(forms.iter().cloned());
            if !found.is_empty() {
                return found;
            }
        }
        Vec::new()
    }

    /// The forms that `index.noun` holds, de-duplicated, in order.
    fn known_forms(&self, forms: impl Iterator<Item = String>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for f in forms {
            if self.lemma_index.get(&f).is_some() && !out.contains(&f) {
                out.push(f);
            }
        }
        out
    }

    /// Noun senses of a word, through morphy, in `index.noun` sense order (like NLTK's
    /// `wn.synsets(word, 'n')`, without repeats).
    pub fn synsets_for(&self, word: &str) -> Vec<&Synset> {
        let mut out: Vec<&Synset> = Vec::new();
        for form in self.morphy(word) {
            for &i in self.lemma_index.get(&form).unwrap_or_default() {
                let s = &self.synsets[i as usize];
                if !out.iter().any(|o| o.index == s.index) {
                    out.push(s);
                }
            }
        }
        out
    }

    /// The noun senses of one lemma (any case, spaces or underscores), in sense order:
    /// `index.noun` alone, without the other forms morphy would add (`glass` for `glasses`).
    pub fn senses_of_lemma(&self, lemma: &str) -> Vec<&Synset> {
        let form = lemma.trim().to_lowercase().replace(' ', "_");
        let senses = self.lemma_index.get(&form).unwrap_or_default();
        senses.iter().map(|&i| &self.synsets[i as usize]).collect()
    }

    /// The first of [`WordNet::synsets_for`]`(word)` without building the list: when the
    /// word itself is in `index.noun` (every lemma is), morphy puts it first, so its first
    /// sense is the answer. Naming asks this for every synset of a tree.
    pub fn first_sense(&self, word: &str) -> Option<&Synset> {
        let form = word.trim().to_lowercase().replace(' ', "_");
        match self.lemma_index.get(&form) {
            Some(senses) => senses.first().map(|&i| &self.synsets[i as usize]),
            None => self.synsets_for(word).into_iter().next(),
        }
    }

    /// Direct hypernyms, then instance hypernyms.
    pub fn hypernyms(&self, s: &Synset) -> Vec<&Synset> {
        self.hyper_ids(s.index as usize).iter().map(|&i| &self.synsets[i as usize]).collect()
    }

    /// Direct hyponyms, then instance hyponyms.
    pub fn hyponyms(&self, s: &Synset) -> Vec<&Synset> {
        self.hypo_ids(s.index as usize).iter().map(|&i| &self.synsets[i as usize]).collect()
    }

    /// Direct hypernyms without instance links (NLTK `hypernyms()`).
    pub fn class_hypernyms(&self, s: &Synset) -> Vec<&Synset> {
        let i = s.index as usize;
        let ids = &self.hyper_ids(i)[..self.class_hypernym_count[i] as usize];
        ids.iter().map(|&i| &self.synsets[i as usize]).collect()
    }

    /// Direct hyponyms without instance links (NLTK `hyponyms()`): the class taxonomy that
    /// ImageNet follows.
    pub fn class_hyponyms(&self, s: &Synset) -> Vec<&Synset> {
        let i = s.index as usize;
        let ids = &self.hypo_ids(i)[..self.class_hyponym_count[i] as usize];
        ids.iter().map(|&i| &self.synsets[i as usize]).collect()
    }

    /// Length of the shortest hypernym path to a root (NLTK `min_depth`; `entity.n.01` is 0).
    pub fn min_depth(&self, s: &Synset) -> usize {
        self.min_depth[s.index as usize] as usize
    }

    /// Length of the longest hypernym path to a root (NLTK `max_depth`).
    pub fn max_depth(&self, s: &Synset) -> usize {
        self.max_depth[s.index as usize] as usize
    }

    /// Number of distinct synsets below `s` through hyponym and instance-hyponym links, `s`
    /// excluded (NLTK: `len(list(s.closure(hyponyms + instance_hyponyms)))`). Memoised.
    pub fn hyponym_closure_size(&self, s: &Synset) -> usize {
        let slot = &self.closure_size[s.index as usize];
        let cached = slot.load(Ordering::Relaxed);
        if cached != u32::MAX {
            return cached as usize;
        }
        let size = self.count_descendants(s.index as usize);
        slot.store(size as u32, Ordering::Relaxed);
        size
    }

    fn count_descendants(&self, root: usize) -> usize {
        let mut seen = vec![0u64; self.synsets.len().div_ceil(64)];
        let mut stack = vec![root];
        let mut count = 0;
        while let Some(i) = stack.pop() {
            for &c in self.hypo_ids(i) {
                let c = c as usize;
                let (word, bit) = (c / 64, 1u64 << (c % 64));
                if seen[word] & bit == 0 {
                    seen[word] |= bit;
                    count += 1;
                    stack.push(c);
                }
            }
        }
        count
    }

    /// `s` and all its ancestors (hypernym and instance-hypernym links), as indices.
    fn ancestors_and_self(&self, s: &Synset) -> Vec<u32> {
        let mut out = vec![s.index];
        let mut next = 0;
        while next < out.len() {
            let i = out[next] as usize;
            next += 1;
            for &h in self.hyper_ids(i) {
                if !out.contains(&h) {
                    out.push(h);
                }
            }
        }
        out
    }

    /// All proper hypernyms of `s` (class, then instance links), nearest first: breadth
    /// first, each once.
    pub fn ancestors(&self, s: &Synset) -> Vec<&Synset> {
        self.ancestors_and_self(s)[1..].iter().map(|&i| &self.synsets[i as usize]).collect()
    }

    /// NLTK `lowest_common_hypernyms`: among the common ancestors of `a` and `b` (each counts
    /// as its own ancestor), those with the greatest max depth, sorted by name.
    pub fn lowest_common_hypernyms(&self, a: &Synset, b: &Synset) -> Vec<&Synset> {
        let of_b = self.ancestors_and_self(b);
        let common: Vec<u32> =
            self.ancestors_and_self(a).into_iter().filter(|i| of_b.contains(i)).collect();
        let Some(deepest) = common.iter().map(|&i| self.max_depth[i as usize]).max() else {
            return Vec::new();
        };
        let mut out: Vec<&Synset> = common
            .into_iter()
            .filter(|&i| self.max_depth[i as usize] == deepest)
            .map(|i| &self.synsets[i as usize])
            .collect();
        out.sort_by(|x, y| x.name.cmp(&y.name));
        out
    }

    /// True when `ancestor` is a proper (transitive) hypernym of `s`, instance links included.
    /// A synset is not its own hypernym.
    pub fn is_hypernym_of(&self, ancestor: &Synset, s: &Synset) -> bool {
        ancestor.index != s.index && self.ancestors_and_self(s).contains(&ancestor.index)
    }

    /// True when `s` is one of `kinds` or a kind of one of them (hypernym and
    /// instance-hypernym links, transitively): one walk up from `s` for all of them.
    pub fn is_kind_of_any(&self, s: &Synset, kinds: &[&Synset]) -> bool {
        let up = self.ancestors_and_self(s);
        kinds.iter().any(|k| up.contains(&k.index))
    }

    /// The gloss of a wnid, if WordNet has that synset.
    pub fn gloss_of_wnid(&self, wnid: &str) -> Option<&str> {
        self.synset(wnid).map(|s| s.gloss.as_str())
    }
}

/// The places [`WordNet::locate`] looks when no directory is given, in order. `env` reads an
/// environment variable (a parameter so that tests need not change the process environment).
pub fn default_candidates(env: impl Fn(&str) -> Option<PathBuf>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for var in ["WNHOME", "WORDNET_DIR"] {
        if let Some(dir) = env(var) {
            let dict = dir.join("dict");
            out.push(dir);
            out.push(dict);
        }
    }
    out.push(PathBuf::from("/usr/share/wordnet"));
    let mut nltk_dirs: Vec<PathBuf> = Vec::new();
    if let Some(paths) = env("NLTK_DATA") {
        nltk_dirs.extend(std::env::split_paths(&paths));
    }
    if let Some(home) = env("HOME").or_else(dirs::home_dir) {
        nltk_dirs.push(home.join("nltk_data"));
    }
    for d in [
        "/usr/share/nltk_data",
        "/usr/local/share/nltk_data",
        "/usr/lib/nltk_data",
        "/usr/local/lib/nltk_data",
    ] {
        nltk_dirs.push(PathBuf::from(d));
    }
    out.extend(nltk_dirs.into_iter().map(|d| d.join("corpora").join("wordnet")));
    out
}

fn is_wordnet_dir(dir: &Path) -> bool {
    dir.join("data.noun").is_file() && dir.join("index.noun").is_file()
}

/// `data.noun` parsed: the synsets and their links, targets still as offsets.
#[derive(Debug, Default)]
struct NounData {
    synsets: Vec<Synset>,
    hypernyms: Links,
    hyponyms: Links,
}

/// One kind of link of every synset as flat arrays: synset i's targets are
/// `targets[start[i]..start[i + 1]]`, its `class_count[i]` class links before its instance links.
#[derive(Debug, Default)]
struct Links {
    start: Vec<u32>,
    targets: Vec<u32>,
    class_count: Vec<u16>,
}

impl Links {
    /// Appends one synset's links: `class` then `instance`.
    fn push(&mut self, class: &[u32], instance: &[u32]) {
        self.start.push(self.targets.len() as u32);
        self.targets.extend_from_slice(class);
        self.targets.extend_from_slice(instance);
        self.class_count.push(class.len() as u16);
    }

    /// Closes the arrays (the end of the last synset's slice).
    fn finish(&mut self) {
        self.start.push(self.targets.len() as u32);
    }
}

fn read_lexnames(dir: &Path) -> Result<Vec<String>> {
    let path = dir.join("lexnames");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(LEXNAMES.iter().map(|s| s.to_string()).collect())
        }
        Err(e) => bail!("cannot read WordNet file {}: {e}", path.display()),
    };
    let mut names = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut f = line.split_whitespace();
        let (Some(num), Some(name)) = (f.next(), f.next()) else { continue };
        let num: usize = num.parse().map_err(|_| {
            anyhow!("{} line {}: expected `NN name pos`, got {line:?}", path.display(), n + 1)
        })?;
        if names.len() <= num {
            names.resize(num + 1, String::new());
        }
        names[num] = name.to_string();
    }
    Ok(names)
}

/// Opens a WordNet file for reading line by line.
fn open_lines(path: &Path) -> Result<std::io::BufReader<std::fs::File>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot read WordNet file {}", path.display()))?;
    Ok(std::io::BufReader::with_capacity(1 << 16, file))
}

/// Calls `f` with each line of `reader` (without its newline) and its 1-based number. Reading
/// line by line, not the whole file, keeps a worker's peak memory ~20 MB lower: `data.noun`
/// alone is 15 MB.
fn for_each_line(
    mut reader: impl BufRead,
    path: &Path,
    mut f: impl FnMut(&str, usize) -> Result<()>,
) -> Result<()> {
    let mut line = String::new();
    for n in 1.. {
        line.clear();
        let read = reader
            .read_line(&mut line)
            .with_context(|| format!("cannot read WordNet file {} (line {n})", path.display()))?;
        if read == 0 {
            break;
        }
        f(line.trim_end_matches(['\n', '\r']), n)?;
    }
    Ok(())
}

fn read_data(path: &Path, lexnames: &[Arc<str>]) -> Result<NounData> {
    parse_data(open_lines(path)?, path, lexnames)
}

/// Parses `data.noun`: `offset lex_filenum ss_type w_cnt (word lex_id)* p_cnt (sym offset pos
/// st)* | gloss`. License lines start with spaces and are skipped.
fn parse_data(reader: impl BufRead, path: &Path, lexnames: &[Arc<str>]) -> Result<NounData> {
    let mut data = NounData::default();
    data.synsets.reserve(82_200);
    let mut scratch = LineLinks::default();
    for_each_line(reader, path, |line, n| {
        if line.starts_with(' ') || line.is_empty() {
            return Ok(());
        }
        let index = data.synsets.len() as u32;
        let synset = parse_data_line(line, index, lexnames, &mut scratch)
            .with_context(|| format!("{} line {n}: malformed synset line", path.display()))?;
        data.synsets.push(synset);
        data.hypernyms.push(&scratch.hyper, &scratch.inst_hyper);
        data.hyponyms.push(&scratch.hypo, &scratch.inst_hypo);
        Ok(())
    })?;
    data.hypernyms.finish();
    data.hyponyms.finish();
    Ok(data)
}

/// The links of the line being parsed (reused from line to line).
#[derive(Debug, Default)]
struct LineLinks {
    hyper: Vec<u32>,
    inst_hyper: Vec<u32>,
    hypo: Vec<u32>,
    inst_hypo: Vec<u32>,
}

fn parse_data_line(
    line: &str,
    index: u32,
    lexnames: &[Arc<str>],
    links: &mut LineLinks,
) -> Result<Synset> {
    let (fields, gloss) = line.split_once(" | ").unwrap_or((line, ""));
    let mut f = fields.split_ascii_whitespace();
    let mut next = |what: &str| f.next().ok_or_else(|| anyhow!("missing {what}"));
    let offset: u32 = next("offset")?.parse().context("bad offset")?;
    let lexnum: usize = next("lex_filenum")?.parse().context("bad lex_filenum")?;
    let _ss_type = next("ss_type")?;
    let w_cnt = usize::from_str_radix(next("w_cnt")?, 16).context("bad w_cnt")?;
    let mut lemmas = Vec::with_capacity(w_cnt);
    for _ in 0..w_cnt {
        lemmas.push(next("word")?.to_string());
        next("lex_id")?;
    }
    let p_cnt: usize = next("p_cnt")?.parse().context("bad p_cnt")?;
    links.hyper.clear();
    links.inst_hyper.clear();
    links.hypo.clear();
    links.inst_hypo.clear();
    for _ in 0..p_cnt {
        let symbol = next("pointer symbol")?;
        let target: u32 = next("pointer offset")?.parse().context("bad pointer offset")?;
        let pos = next("pointer pos")?;
        next("pointer source/target")?;
        if pos != "n" {
            continue;
        }
        match symbol {
            "@" => links.hyper.push(target),
            "@i" => links.inst_hyper.push(target),
            "~" => links.hypo.push(target),
            "~i" => links.inst_hypo.push(target),
            _ => {}
        }
    }
    let lexname = lexnames
        .get(lexnum)
        .filter(|s| !s.is_empty())
        .cloned()
        .ok_or_else(|| anyhow!("unknown lex_filenum {lexnum}"))?;
    Ok(Synset { offset, name: String::new(), lemmas, gloss: definition_of(gloss), lexname, index })
}

/// The definition part of a gloss, as NLTK computes it: quoted examples removed, then `;` and
/// spaces trimmed from both ends.
fn definition_of(gloss: &str) -> String {
    let mut out = String::with_capacity(gloss.len());
    let mut in_quote = false;
    for ch in gloss.chars() {
        if ch == '"' {
            in_quote = !in_quote;
        } else if !in_quote {
            out.push(ch);
        }
    }
    let kept = out.trim().trim_matches(|c| c == ';' || c == ' ');
    let start = kept.as_ptr() as usize - out.as_ptr() as usize;
    let end = start + kept.len();
    out.truncate(end);
    out.drain(..start);
    // The examples are gone: give their bytes back (82k glosses, ~1 MB).
    out.shrink_to_fit();
    out
}

/// `index.noun` in flat arrays instead of a map of strings to vectors: the file is sorted, so
/// lookups are binary searches, and loading makes three allocations, not 240,000.
#[derive(Debug, Default)]
struct LemmaIndex {
    /// All lemmas, concatenated.
    text: String,
    entries: Vec<LemmaEntry>,
    /// Synset offsets while parsing, synset positions after [`WordNet::assemble`].
    senses: Vec<u32>,
}

/// One lemma: its text is `text[text.0..text.1]`, its senses `senses[senses.0..senses.1]`.
#[derive(Debug, Clone, Copy)]
struct LemmaEntry {
    text: (u32, u32),
    senses: (u32, u32),
}

impl LemmaIndex {
    fn read(path: &Path) -> Result<LemmaIndex> {
        let mut index = LemmaIndex {
            text: String::with_capacity(1 << 21),
            entries: Vec::with_capacity(120_000),
            senses: Vec::with_capacity(150_000),
        };
        for_each_line(open_lines(path)?, path, |line, n| {
            if line.starts_with(' ') || line.is_empty() {
                return Ok(());
            }
            index
                .push_line(line)
                .with_context(|| format!("{} line {n}: malformed index line", path.display()))
        })?;
        let sorted = index.entries.windows(2).all(|w| index.lemma(w[0]) < index.lemma(w[1]));
        if !sorted {
            bail!("{}: lemmas are not sorted; the file is damaged, reinstall it", path.display());
        }
        Ok(index)
    }

    /// Parses `lemma pos synset_cnt p_cnt (ptr)* sense_cnt tagsense_cnt (offset)*`.
    fn push_line(&mut self, line: &str) -> Result<()> {
        let mut f = line.split_ascii_whitespace();
        let mut next = |what: &str| f.next().ok_or_else(|| anyhow!("missing {what}"));
        let lemma = next("lemma")?;
        next("pos")?;
        let synset_cnt: usize = next("synset_cnt")?.parse().context("bad synset_cnt")?;
        let p_cnt: usize = next("p_cnt")?.parse().context("bad p_cnt")?;
        for _ in 0..p_cnt + 2 {
            next("pointer symbol or sense count")?;
        }
        let senses_start = self.senses.len() as u32;
        for _ in 0..synset_cnt {
            self.senses.push(next("synset offset")?.parse().context("bad synset offset")?);
        }
        let text_start = self.text.len() as u32;
        self.text.push_str(lemma);
        self.entries.push(LemmaEntry {
            text: (text_start, self.text.len() as u32),
            senses: (senses_start, self.senses.len() as u32),
        });
        Ok(())
    }

    fn lemma(&self, e: LemmaEntry) -> &str {
        &self.text[e.text.0 as usize..e.text.1 as usize]
    }

    /// Sense positions of a lemma (lower case, underscores), in sense order.
    fn get(&self, lemma: &str) -> Option<&[u32]> {
        let k = self.entries.binary_search_by(|e| self.lemma(*e).cmp(lemma)).ok()?;
        let (start, end) = self.entries[k].senses;
        Some(&self.senses[start as usize..end as usize])
    }
}

fn parse_exceptions(text: &str) -> HashMap<String, Vec<String>> {
    let mut out = HashMap::with_capacity(2_100);
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        if let Some(form) = f.next() {
            let bases: Vec<String> = f.map(str::to_string).collect();
            if !bases.is_empty() {
                out.insert(form.to_string(), bases);
            }
        }
    }
    out
}

/// Gives every synset its NLTK name: the first lemma in lower case, `.n.`, and the position of
/// the synset among that lemma's senses in `index.noun`.
fn name_synsets(synsets: &mut [Synset], lemma_index: &LemmaIndex) {
    // One pass over the index instead of a lookup per synset: where a lemma lists a synset
    // whose first lemma it is, that position is the synset's sense number (WordNet 3.0 is
    // ASCII, so an ASCII case-insensitive match is the lower-case match).
    let mut sense = vec![0usize; synsets.len()];
    for entry in &lemma_index.entries {
        let lemma = lemma_index.lemma(*entry);
        let senses = &lemma_index.senses[entry.senses.0 as usize..entry.senses.1 as usize];
        for (k, &i) in senses.iter().enumerate() {
            let first = synsets[i as usize].lemmas.first().map_or("", String::as_str);
            if sense[i as usize] == 0 && first.eq_ignore_ascii_case(lemma) {
                sense[i as usize] = k + 1;
            }
        }
    }
    for (s, sense) in synsets.iter_mut().zip(sense) {
        let lemma = s.lemmas.first().map_or("", String::as_str);
        let mut name = String::with_capacity(lemma.len() + 6);
        name.extend(lemma.chars().flat_map(char::to_lowercase));
        let _ = write!(name, ".n.{sense:02}");
        s.name = name;
    }
}

fn apply_suffix_rules(forms: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for form in forms {
        for (suffix, replacement) in NOUN_SUFFIX_RULES {
            if let Some(stem) = form.strip_suffix(suffix) {
                out.push(format!("{stem}{replacement}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::wn;

    fn by_name(name: &str) -> &'static Synset {
        wn().synset_by_name(name).unwrap_or_else(|| panic!("{name} in WordNet"))
    }

    #[test]
    fn shared_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<WordNet>();
    }

    #[test]
    fn dog_by_wnid() {
        let dog = wn().synset("n02084071").unwrap();
        assert_eq!(dog.name, "dog.n.01");
        assert_eq!(dog.wnid(), "n02084071");
        assert_eq!(dog.lemmas, ["dog", "domestic_dog", "Canis_familiaris"]);
        assert_eq!(&*dog.lexname, "noun.animal");
        assert!(dog.gloss.starts_with("a member of the genus Canis"), "{}", dog.gloss);
        assert!(!dog.gloss.contains('"') && !dog.gloss.contains("barked"), "{}", dog.gloss);
        assert!(dog.gloss.ends_with("occurs in many breeds"), "{}", dog.gloss);
        assert_eq!(wn().gloss_of_wnid("02084071"), Some(dog.gloss.as_str()));
        assert!(wn().synset("n99999999").is_none());
        assert!(wn().synset("dog").is_none());
    }

    #[test]
    fn names_follow_nltk_sense_numbers() {
        assert_eq!(by_name("dog.n.01").offset, 2084071);
        // "frump, dog" (dog.n.02 in NLTK) has frump first, so it is frump.n.01.
        assert_eq!(by_name("entity.n.01").wnid(), "n00001740");
        assert_eq!(by_name("cat.n.01").wnid(), "n02121620");
        // As in NLTK, `lemma.n.NN` is the NN-th sense of the lemma, canonical name or not.
        let bank = by_name("bank.n.02");
        assert_eq!(bank.name, "depository_financial_institution.n.01");
        assert_eq!(bank.gloss, "a financial institution that accepts deposits and channels the money into lending activities");
        assert_eq!(by_name("Dog.n.01").offset, 2084071);
        assert!(wn().synset_by_name("dog.n.99").is_none());
        assert!(wn().synset_by_name("dog.n.00").is_none());
        assert!(wn().synset_by_name("dog.v.01").is_none());
        assert!(wn().synset_by_name("dog").is_none());
        assert_eq!(wn().len(), 82115);
        // Every canonical name resolves to its own synset.
        for s in wn().synsets() {
            assert_eq!(
                wn().synset_by_name(&s.name).map(|x| x.offset),
                Some(s.offset),
                "{}",
                s.name
            );
        }
    }

    #[test]
    fn morphy_like_nltk() {
        assert_eq!(wn().morphy("dogs"), ["dog"]);
        assert_eq!(wn().morphy("geese"), ["goose"]);
        assert_eq!(wn().morphy("boxes"), ["box"]);
        assert_eq!(wn().morphy("churches"), ["church"]);
        assert_eq!(wn().morphy("women"), ["woman"]);
        assert_eq!(wn().morphy("ponies"), ["pony"]);
        assert_eq!(wn().morphy("dog"), ["dog"]);
        assert_eq!(wn().morphy("Ice Creams"), ["ice_cream"]);
        assert_eq!(wn().morphy("hot dog"), ["hot_dog"]);
        assert!(wn().morphy("xqzzy").is_empty());
        assert!(wn().morphy("").is_empty());
    }

    #[test]
    fn synsets_in_sense_order() {
        let names: Vec<&str> = wn().synsets_for("dogs").iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names[0], "dog.n.01");
        assert_eq!(names.len(), 7);
        assert_eq!(wn().synsets_for("hot dog")[0].lemmas[0], "hotdog");
        assert!(wn().synsets_for("xqzzy").is_empty());
    }

    #[test]
    fn hypernyms_and_hyponyms() {
        let dog = by_name("dog.n.01");
        let hyper: Vec<&str> = wn().hypernyms(dog).iter().map(|s| s.name.as_str()).collect();
        assert_eq!(hyper, ["canine.n.02", "domestic_animal.n.01"]);
        assert!(wn().hyponyms(dog).iter().any(|s| s.name == "puppy.n.01"));
        // Instance links count: Einstein is an instance of physicist.
        let einstein = wn().synsets_for("Einstein")[0];
        assert!(wn().hypernyms(einstein).iter().any(|s| s.name == "physicist.n.01"));
        assert!(wn().hyponyms(by_name("physicist.n.01")).iter().any(|s| s == &einstein));
        assert!(wn().class_hypernyms(einstein).is_empty());
        assert!(!wn().class_hyponyms(by_name("physicist.n.01")).iter().any(|s| s == &einstein));
        assert_eq!(wn().class_hypernyms(dog), wn().hypernyms(dog));
        assert_eq!(wn().class_hyponyms(dog), wn().hyponyms(dog));
        assert!(wn().is_hypernym_of(by_name("animal.n.01"), dog));
        assert!(wn().is_hypernym_of(by_name("entity.n.01"), einstein));
        assert!(!wn().is_hypernym_of(dog, by_name("animal.n.01")));
        assert!(!wn().is_hypernym_of(dog, dog));
    }

    #[test]
    fn depths_like_nltk() {
        assert_eq!(wn().min_depth(by_name("entity.n.01")), 0);
        assert_eq!(wn().min_depth(by_name("dog.n.01")), 8);
        assert_eq!(wn().max_depth(by_name("dog.n.01")), 13);
        assert_eq!(wn().min_depth(by_name("physical_entity.n.01")), 1);
        let roots: Vec<&Synset> =
            wn().synsets().iter().filter(|s| wn().hypernyms(s).is_empty()).collect();
        assert_eq!(roots.len(), 1, "entity.n.01 is the only noun root");
    }

    #[test]
    fn lowest_common_hypernyms_like_nltk() {
        let lch = |a: &str, b: &str| -> Vec<String> {
            wn().lowest_common_hypernyms(by_name(a), by_name(b))
                .iter()
                .map(|s| s.name.clone())
                .collect()
        };
        assert_eq!(lch("dog.n.01", "cat.n.01"), ["carnivore.n.01"]);
        assert_eq!(lch("dog.n.01", "dog.n.01"), ["dog.n.01"]);
        assert_eq!(lch("dog.n.01", "canine.n.02"), ["canine.n.02"]);
        assert_eq!(lch("car.n.01", "dog.n.01"), ["whole.n.02"]);
    }

    #[test]
    fn closure_sizes() {
        let entity = by_name("entity.n.01");
        assert_eq!(wn().hyponym_closure_size(entity), wn().len() - 1, "everything is below entity");
        // Memoised value is stable.
        assert_eq!(wn().hyponym_closure_size(entity), wn().len() - 1);
        let dog = by_name("dog.n.01");
        let size = wn().hyponym_closure_size(dog);
        assert_eq!(size, 189);
        // Cross-check with a plain set-based walk through the public hyponyms().
        for name in ["dog.n.01", "animal.n.01", "physicist.n.01", "food.n.01"] {
            let s = by_name(name);
            let mut seen = std::collections::BTreeSet::new();
            let mut todo = vec![s];
            while let Some(x) = todo.pop() {
                for h in wn().hyponyms(x) {
                    if seen.insert(h.offset) {
                        todo.push(h);
                    }
                }
            }
            assert_eq!(wn().hyponym_closure_size(s), seen.len(), "{name}");
        }
        let puppy = by_name("puppy.n.01");
        assert_eq!(wn().hyponym_closure_size(puppy), 0);
        assert!(wn().hyponym_closure_size(by_name("animal.n.01")) > size);
    }

    #[test]
    fn missing_database_names_every_place() {
        let places = [PathBuf::from("/nonexistent/a"), PathBuf::from("/nonexistent/b")];
        let err = WordNet::load_first(&places).unwrap_err().to_string();
        assert!(!err.contains('\n'), "one line: {err}");
        assert!(err.contains("/nonexistent/a") && err.contains("/nonexistent/b"), "{err}");
        assert!(err.contains("sudo apt-get install wordnet-base"), "{err}");
        assert!(err.contains("--wordnet-dir") && err.contains("WNHOME"), "{err}");
        let err = WordNet::locate(Some(Path::new("/nonexistent/wn"))).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/wn, /nonexistent/wn/dict"), "{err}");
    }

    #[test]
    fn default_places_in_order() {
        let env = |k: &str| match k {
            "WNHOME" => Some(PathBuf::from("/wnhome")),
            "NLTK_DATA" => Some(PathBuf::from("/nltk")),
            "HOME" => Some(PathBuf::from("/home/u")),
            _ => None,
        };
        let places = default_candidates(env);
        let shown: Vec<String> = places.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            shown,
            [
                "/wnhome",
                "/wnhome/dict",
                "/usr/share/wordnet",
                "/nltk/corpora/wordnet",
                "/home/u/nltk_data/corpora/wordnet",
                "/usr/share/nltk_data/corpora/wordnet",
                "/usr/local/share/nltk_data/corpora/wordnet",
                "/usr/lib/nltk_data/corpora/wordnet",
                "/usr/local/lib/nltk_data/corpora/wordnet",
            ]
        );
    }

    #[test]
    fn malformed_data_line_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("data.noun"), "  licence\n00001740 03 n zz entity\n")
            .unwrap();
        std::fs::write(dir.path().join("index.noun"), "").unwrap();
        let err = format!("{:#}", WordNet::load(dir.path()).unwrap_err());
        assert!(err.contains("data.noun line 2"), "{err}");
    }

    #[test]
    fn definition_strips_examples() {
        assert_eq!(definition_of("a thing; \"an example\"  "), "a thing");
        assert_eq!(definition_of("one; two; \"ex one\"; \"ex two\""), "one; two");
        assert_eq!(definition_of("plain"), "plain");
    }
}
