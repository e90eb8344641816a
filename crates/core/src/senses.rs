//! Display names that mean one thing: a WordNet synset named so that a prompt reading the name
//! gets that synset, not another sense of the same word.
//!
//! WordNet's plain display name (the first lemma) is ambiguous for many synsets: "crane" the
//! machine and "crane" the bird share it, and a prompt reads it in its first (most frequent)
//! sense. [`unambiguous_name`] keeps the plain name when the synset *is* the first sense of
//! it. Otherwise it takes a longer lemma of the synset that contains the name and is that
//! lemma's own first sense ("mouse" the device becomes `computer mouse`, the corgi
//! "Cardigan" `Cardigan Welsh corgi`); otherwise it qualifies the name with the nearest
//! hypernym that no other sense of the word has above it: `crane (wading bird)`,
//! `crane (lifting device)` — the "name (qualifier)" form of image-prompt tag vocabularies,
//! which survives lower-casing and Title Case.
//!
//! Other lemmas that do not contain the name are not used, although many are their own first
//! sense: among ImageNet-1k's renamed classes they are scientific names (`Panthera tigris`
//! for "tiger"), rare variants (`jak`, `cuke`, `tup`) or misleading (`red hot` for "hotdog",
//! `polecat` for "skunk"), where `tiger (big cat)` reads as meant, and the name the dataset
//! gives its class stays in every renamed label.
//!
//! The names are distinct by construction: a plain or longer lemma is the first sense of its
//! word, so no other synset gets it; two qualified names `word (hint)` of different synsets
//! cannot agree, because a hint that tells a sense apart is, by the rule, no hypernym of
//! another sense, and the rarer hints that cannot (one sense of the word sits below another)
//! are handed out once per word, in sense order. The last resort, never needed in WordNet
//! 3.0, is the sense number: `word (sense 3)`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::wordnet::{Synset, WordNet};

/// How [`unambiguous_name`] chose a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// The first lemma: the synset is its first sense.
    Plain,
    /// A longer lemma of the synset that contains the first one, and whose first sense it is.
    LongerLemma,
    /// `word (hint)`, or in the last resort `word (sense N)`.
    Qualified,
}

/// A synset's unambiguous display name (underscores as spaces, case as in WordNet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenseName {
    pub text: String,
    pub kind: NameKind,
}

/// True when `s` is the first noun sense WordNet gives for `word` (through morphy, as
/// [`WordNet::synsets_for`] reads it; case does not matter).
pub fn is_first_sense(wn: &WordNet, word: &str, s: &Synset) -> bool {
    wn.first_sense(word).is_some_and(|first| first.offset == s.offset)
}

/// The name of `s` that a prompt reads in the sense of `s`; see the module doc for the rule.
/// To name many synsets, use one [`Namer`].
pub fn unambiguous_name(wn: &WordNet, s: &Synset) -> SenseName {
    Namer::new(wn).name(s)
}

/// Names synsets by the rule of the module doc, remembering what it worked out for the next
/// synset: naming one sense of a word reads the hypernyms of all the others, and a tree of
/// WordNet reaches many senses of one word, and many synsets through several parents.
pub struct Namer<'w> {
    wn: &'w WordNet,
    /// First lemmas of each synset's hypernyms, nearest first, by offset.
    hypernyms: RefCell<HashMap<u32, Rc<[&'w str]>>>,
    /// The names given to secondary senses, by offset.
    names: RefCell<HashMap<u32, SenseName>>,
}

impl<'w> Namer<'w> {
    pub fn new(wn: &'w WordNet) -> Self {
        Self { wn, hypernyms: RefCell::default(), names: RefCell::default() }
    }

    /// The unambiguous name of `s`.
    pub fn name(&self, s: &Synset) -> SenseName {
        let plain = s.primary_lemma();
        if s.is_first_sense_of_its_name() {
            return SenseName { text: plain, kind: NameKind::Plain };
        }
        if let Some(known) = self.names.borrow().get(&s.offset) {
            return known.clone();
        }
        let name = match longer_lemma(self.wn, s, &plain) {
            Some(lemma) => SenseName { text: lemma, kind: NameKind::LongerLemma },
            None => SenseName { text: self.qualified_name(s, &plain), kind: NameKind::Qualified },
        };
        self.names.borrow_mut().insert(s.offset, name.clone());
        name
    }

    /// `plain (hint)`, the hint a hypernym's name: preferably one that alone tells `s` apart
    /// from the other senses of the word ([`Namer::distinguishing_hint`]), else
    /// [`Namer::shared_hint`]; with no hypernym left to use, the sense number.
    fn qualified_name(&self, s: &Synset, plain: &str) -> String {
        let senses = self.wn.senses_of_lemma(first_lemma(s));
        match self.distinguishing_hint(s, &senses).or_else(|| self.shared_hint(s, &senses)) {
            Some(hint) => format!("{plain} ({})", hint.replace('_', " ")),
            None => {
                let n = senses.iter().position(|r| r.offset == s.offset).unwrap_or(0) + 1;
                format!("{plain} (sense {n})")
            }
        }
    }

    /// The first lemmas of the hypernyms of `s`, nearest first (breadth first, class links
    /// before instance links).
    fn hypernyms(&self, s: &Synset) -> Rc<[&'w str]> {
        if let Some(known) = self.hypernyms.borrow().get(&s.offset) {
            return known.clone();
        }
        let names: Rc<[&'w str]> = self.wn.ancestors(s).into_iter().map(first_lemma).collect();
        self.hypernyms.borrow_mut().insert(s.offset, names.clone());
        names
    }

    /// The nearest hypernym of `s` whose name is not the name of any other of the word's
    /// `senses` (those `index.noun` lists for it) or of any of their hypernyms: "crane
    /// (wading bird)" can only be the bird. Such a hint is also never another sense's hint.
    fn distinguishing_hint(&self, s: &Synset, senses: &[&Synset]) -> Option<&'w str> {
        let rivals: Vec<&Synset> =
            senses.iter().copied().filter(|r| r.offset != s.offset).collect();
        let above_rivals: Vec<Rc<[&str]>> = rivals.iter().map(|r| self.hypernyms(r)).collect();
        let taken = |name: &str| {
            let same = |t: &&str| t.eq_ignore_ascii_case(name);
            same(&first_lemma(s))
                || rivals.iter().map(|r| first_lemma(r)).any(|t| same(&t))
                || above_rivals.iter().flat_map(|r| r.iter()).any(same)
        };
        self.hypernyms(s).iter().copied().find(|h| !taken(h))
    }

    /// For a sense whose every hypernym is shared with another sense of the word (one sense
    /// sits below another, or both below the same parents): the nearest hypernym name not
    /// already the hint of an earlier such sense of the same word, so that the names stay
    /// distinct. Earlier is `index.noun` sense order, which makes the choice independent of
    /// what else is named.
    fn shared_hint(&self, s: &Synset, senses: &[&Synset]) -> Option<&'w str> {
        let word = first_lemma(s);
        let plain = s.primary_lemma();
        let mut taken: Vec<&str> = vec![word];
        let nearest_free = |x: &Synset, taken: &[&str]| {
            let free = |h: &&str| !taken.iter().any(|t| t.eq_ignore_ascii_case(h));
            self.hypernyms(x).iter().copied().find(free)
        };
        for r in senses {
            if r.offset == s.offset {
                return nearest_free(s, &taken);
            }
            let also_shared = !r.is_first_sense_of_its_name()
                && first_lemma(r).eq_ignore_ascii_case(word)
                && longer_lemma(self.wn, r, &plain).is_none()
                && self.distinguishing_hint(r, senses).is_none();
            if let Some(h) = nearest_free(r, &taken).filter(|_| also_shared) {
                taken.push(h);
            }
        }
        None
    }
}

/// Another lemma of `s` that contains `plain` as whole words (`computer mouse` for "mouse")
/// and is its own word's first sense.
fn longer_lemma(wn: &WordNet, s: &Synset, plain: &str) -> Option<String> {
    let words = |t: &str| -> Vec<String> {
        t.split([' ', '_', '-']).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
    };
    let name = words(plain);
    if name.is_empty() {
        return None;
    }
    s.lemmas
        .iter()
        .skip(1)
        .filter(|l| l.len() > plain.len())
        .filter(|l| words(l).windows(name.len()).any(|w| w == name.as_slice()))
        .map(|l| l.replace('_', " "))
        .find(|l| is_first_sense(wn, l, s))
}

/// The first lemma as the database has it (`wading_bird`): names compare in this form,
/// ignoring ASCII case (WordNet 3.0 is ASCII), without building display strings.
fn first_lemma(s: &Synset) -> &str {
    s.lemmas.first().map_or("", String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::wn;
    use std::collections::HashMap;

    fn name(wnid: &str) -> SenseName {
        unambiguous_name(wn(), wn().synset(wnid).unwrap())
    }

    #[test]
    fn first_senses_keep_their_plain_name() {
        let dog = name("n02084071");
        assert_eq!((dog.text.as_str(), dog.kind), ("dog", NameKind::Plain));
        // The sweater is the first sense of "cardigan", the swimsuit of "maillot".
        assert_eq!(name("n02963159").text, "cardigan");
        assert_eq!(name("n03710721").text, "maillot");
    }

    #[test]
    fn a_longer_lemma_that_contains_the_name() {
        let corgi = name("n02113186");
        assert_eq!(corgi.text, "Cardigan Welsh corgi");
        assert_eq!(corgi.kind, NameKind::LongerLemma);
        assert_eq!(name("n03793489").text, "computer mouse");
    }

    #[test]
    fn otherwise_the_nearest_distinguishing_hypernym() {
        let bird = name("n02012849");
        assert_eq!((bird.text.as_str(), bird.kind), ("crane (wading bird)", NameKind::Qualified));
        assert_eq!(name("n03126707").text, "crane (lifting device)");
        assert_eq!(name("n03710637").text, "maillot (tights)", "the dancers' tights");
        // Not "Panthera tigris": other lemmas that do not contain the name are not used.
        assert_eq!(name("n02129604").text, "tiger (big cat)");
    }

    /// What a displayed name can stand for: the first sense of a plain or longer lemma; for
    /// `word (hint)`, the senses of the word that have a hypernym named `hint`.
    fn meanings<'w>(text: &str) -> Vec<&'w Synset> {
        let Some((word, hint)) = text.strip_suffix(')').and_then(|t| t.split_once(" (")) else {
            return wn().synsets_for(text).into_iter().take(1).collect();
        };
        let is_word = |s: &&Synset| s.primary_lemma().eq_ignore_ascii_case(word);
        let below_hint = |s: &&Synset| wn().ancestors(s).iter().any(|a| a.primary_lemma() == hint);
        wn().synsets_for(word).into_iter().filter(is_word).filter(below_hint).collect()
    }

    #[test]
    fn every_noun_synset_gets_a_name_of_its_own_that_means_it() {
        let mut seen: HashMap<String, &str> = HashMap::new();
        let mut shared_hints = 0;
        let namer = Namer::new(wn());
        for (i, s) in wn().synsets().iter().enumerate() {
            let n = namer.name(s);
            if i % 50 == 0 {
                assert_eq!(
                    n,
                    unambiguous_name(wn(), s),
                    "what the namer remembers changes nothing"
                );
            }
            assert!(!n.text.contains("(sense "), "{}: {}", s.name, n.text);
            if let Some(other) = seen.insert(n.text.to_lowercase(), &s.name) {
                panic!("{other} and {} are both named {:?}", s.name, n.text);
            }
            let means = meanings(&n.text);
            assert!(means.iter().any(|m| m.offset == s.offset), "{}: {}", s.name, n.text);
            match n.kind {
                NameKind::Plain => assert_eq!(n.text, s.primary_lemma()),
                NameKind::LongerLemma => assert!(n.text.len() > s.primary_lemma().len()),
                NameKind::Qualified => {
                    assert!(n.text.starts_with(&format!("{} (", s.primary_lemma())));
                    shared_hints += usize::from(means.len() > 1);
                }
            }
        }
        // Where no hypernym tells the senses apart (one sits below another), the hint is
        // shared with a sense that has its own, different hint: 1,523 of the 15,450
        // qualified names of WordNet 3.0.
        assert!(shared_hints < 1_600, "{shared_hints}");
    }
}
