//! Names for arranged groups: WordNet first, then keywords.
//!
//! In order (the first that applies wins):
//! 1. `lca`: the most specific WordNet synset that is (or is a hypernym of) a sense of at least
//!    half of the members — the members' lowest common hypernym, made robust to a few strays —
//!    provided it agrees with the medoid (is one of the medoid's senses or their hypernyms), is
//!    not generic (`entity`, `artifact`, `organism`, ...) and is not the parent or above it.
//! 2. `medoid_hypernym`: the first acceptable hypernym of the medoid's senses.
//! 3. `keyword`: the word most distinctive of the group against the rest of the list (TF-IDF).
//! 4. `medoid`: the medoid item itself.
//!
//! A name already taken gets ` (<medoid>)`, then a counter.

use crate::wordnet::{Synset, WordNet};
use std::collections::{HashMap, HashSet};

/// Where a group's name came from (reported in the stats timeline).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NameSource {
    Lca,
    MedoidHypernym,
    Keyword,
    Medoid,
    /// The "Other (...)" bin of a sub-arrangement.
    Bin,
}

impl std::fmt::Display for NameSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NameSource::Lca => "lca",
            NameSource::MedoidHypernym => "medoid_hypernym",
            NameSource::Keyword => "keyword",
            NameSource::Medoid => "medoid",
            NameSource::Bin => "bin",
        })
    }
}

/// A chosen name and, when it came from WordNet, its synset.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupName {
    pub name: String,
    pub source: NameSource,
    pub wnid: Option<String>,
    pub gloss: Option<String>,
}

/// Synsets too general to name a group of wildcard terms.
const GENERIC: [&str; 22] = [
    "entity.n.01",
    "physical_entity.n.01",
    "abstraction.n.06",
    "thing.n.12",
    "object.n.01",
    "whole.n.02",
    "artifact.n.01",
    "living_thing.n.01",
    "organism.n.01",
    "causal_agent.n.01",
    "matter.n.03",
    "substance.n.01",
    "instrumentality.n.03",
    "psychological_feature.n.01",
    "attribute.n.02",
    "relation.n.01",
    "measure.n.02",
    "group.n.01",
    "event.n.01",
    "act.n.02",
    "part.n.01",
    "unit.n.03",
];

/// Words that never make a keyword name.
const STOPWORDS: [&str; 12] =
    ["the", "and", "for", "with", "from", "other", "type", "kind", "sort", "common", "like", "of"];

/// Naming context for one list: its texts, their WordNet senses and word statistics.
pub struct Namer<'w> {
    wordnet: Option<&'w WordNet>,
    texts: Vec<String>,
    /// Noun senses of each text (of its head word when the text itself is not in WordNet).
    senses: Vec<Vec<&'w Synset>>,
    /// Offsets of the senses and all their hypernyms, per text.
    ancestors: Vec<HashSet<u32>>,
    /// Distinct keyword tokens of each text.
    tokens: Vec<Vec<String>>,
}

impl<'w> Namer<'w> {
    pub fn new(wordnet: Option<&'w WordNet>, texts: &[String]) -> Self {
        let senses: Vec<Vec<&Synset>> =
            texts.iter().map(|t| wordnet.map(|wn| senses_of(wn, t)).unwrap_or_default()).collect();
        let ancestors = senses
            .iter()
            .map(|ss| match wordnet {
                Some(wn) => ss.iter().flat_map(|s| ancestors_and_self(wn, s)).collect(),
                None => HashSet::new(),
            })
            .collect();
        let tokens = texts.iter().map(|t| keyword_tokens(t)).collect();
        Self { wordnet, texts: texts.to_vec(), senses, ancestors, tokens }
    }

    /// The naming context of a sub-list (positions `members` of this one).
    pub fn subset(&self, members: &[usize]) -> Namer<'w> {
        Namer {
            wordnet: self.wordnet,
            texts: members.iter().map(|&i| self.texts[i].clone()).collect(),
            senses: members.iter().map(|&i| self.senses[i].clone()).collect(),
            ancestors: members.iter().map(|&i| self.ancestors[i].clone()).collect(),
            tokens: members.iter().map(|&i| self.tokens[i].clone()).collect(),
        }
    }

    /// Names the group `members` (positions in this list) with medoid `medoid`; `taken` holds
    /// the lower-cased names already used at this level.
    pub fn name_group(
        &self,
        members: &[usize],
        medoid: usize,
        parent: Option<&str>,
        taken: &[String],
    ) -> GroupName {
        let blocked = self.parent_and_above(parent);
        let base = self
            .shared_hypernym(members, medoid, &blocked)
            .map(|s| synset_name(s, NameSource::Lca))
            .or_else(|| {
                self.medoid_hypernym(medoid, &blocked)
                    .map(|s| synset_name(s, NameSource::MedoidHypernym))
            })
            .or_else(|| self.keyword(members, parent).map(|k| plain(k, NameSource::Keyword)))
            .unwrap_or_else(|| plain(self.readable_member(members, medoid), NameSource::Medoid));
        let mut name = base.clone();
        name.name = unique_name(&base.name, &self.distinguishers(members, medoid), taken);
        name
    }

    /// The medoid's text when it has a letter; else the first member's that has one; else
    /// `numbers` (all members number-like) or `symbols`. A bare `012` names nothing a reader
    /// (or a prompt) can use.
    fn readable_member(&self, members: &[usize], medoid: usize) -> String {
        let has_letter = |i: &usize| self.texts[*i].chars().any(char::is_alphabetic);
        if let Some(&i) = std::iter::once(&medoid).chain(members).find(|i| has_letter(i)) {
            return self.texts[i].clone();
        }
        let number_like =
            |t: &str| t.chars().all(|c| c.is_ascii_digit() || " .,:/+-_%".contains(c));
        match members.iter().all(|&i| number_like(&self.texts[i])) {
            true => "numbers".to_string(),
            false => "symbols".to_string(),
        }
    }

    /// What tells a group from a namesake: its readable members, medoid first.
    fn distinguishers(&self, members: &[usize], medoid: usize) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for &i in std::iter::once(&medoid).chain(members) {
            let t = &self.texts[i];
            if t.chars().any(char::is_alphanumeric) && !out.contains(t) {
                out.push(t.clone());
            }
        }
        out
    }

    /// The leftovers bin: `Other (<parent>)`, else `Other (<keyword of the leftovers>)`, else
    /// `Other`; made unique against `taken`.
    pub fn other_bin_name(
        &self,
        parent: Option<&str>,
        leftovers: &[usize],
        taken: &[String],
    ) -> String {
        let context = match parent.map(str::trim).filter(|p| !p.is_empty()) {
            Some(p) => Some(p.to_string()),
            None => self.keyword(leftovers, None),
        };
        let base = match context {
            Some(c) => format!("Other ({c})"),
            None => "Other".to_string(),
        };
        unique_name(&base, &["leftovers".to_string()], taken)
    }

    /// Offsets of the parent's senses and everything above them (never good sub-group names).
    fn parent_and_above(&self, parent: Option<&str>) -> HashSet<u32> {
        match (self.wordnet, parent) {
            (Some(wn), Some(p)) => {
                senses_of(wn, p).iter().flat_map(|s| ancestors_and_self(wn, s)).collect()
            }
            _ => HashSet::new(),
        }
    }

    fn acceptable(&self, s: &Synset, blocked: &HashSet<u32>) -> bool {
        !GENERIC.contains(&s.name.as_str()) && !blocked.contains(&s.offset)
    }

    /// The most specific synset covering (as sense or hypernym of a sense) at least half of the
    /// members and within 0.15 of the best coverage, agreeing with the medoid.
    fn shared_hypernym(
        &self,
        members: &[usize],
        medoid: usize,
        blocked: &HashSet<u32>,
    ) -> Option<&'w Synset> {
        let wn = self.wordnet?;
        let mut coverage: HashMap<u32, usize> = HashMap::new();
        for &m in members {
            for &offset in &self.ancestors[m] {
                *coverage.entry(offset).or_default() += 1;
            }
        }
        let total = members.len() as f64;
        let candidates: Vec<(&Synset, f64)> = self.ancestors[medoid]
            .iter()
            .filter_map(|&offset| {
                let s = wn.synset(&format!("n{offset:08}"))?;
                let share = coverage.get(&offset).copied().unwrap_or(0) as f64 / total;
                (share >= 0.5 && self.acceptable(s, blocked)).then_some((s, share))
            })
            .collect();
        let best = candidates.iter().map(|c| c.1).fold(0.0, f64::max);
        candidates
            .into_iter()
            .filter(|c| c.1 >= best - 0.15)
            .max_by(|a, b| {
                wn.min_depth(a.0)
                    .cmp(&wn.min_depth(b.0))
                    .then(a.1.total_cmp(&b.1))
                    .then(b.0.name.cmp(&a.0.name))
            })
            .map(|c| c.0)
    }

    /// First acceptable direct hypernym of the medoid's senses (sense order); for a medoid
    /// known only by its head word, the head word's sense itself.
    fn medoid_hypernym(&self, medoid: usize, blocked: &HashSet<u32>) -> Option<&'w Synset> {
        let wn = self.wordnet?;
        let own = !wn.synsets_for(&self.texts[medoid]).is_empty();
        self.senses[medoid].iter().find_map(|&s| {
            if own {
                wn.hypernyms(s).into_iter().find(|h| self.acceptable(h, blocked))
            } else {
                Some(s).filter(|s| self.acceptable(s, blocked))
            }
        })
    }

    /// The token with the highest TF-IDF in `members` against the whole list; it must occur in
    /// at least two members (or the only one) and differ from the parent.
    fn keyword(&self, members: &[usize], parent: Option<&str>) -> Option<String> {
        if members.is_empty() {
            return None;
        }
        let parent = parent.map(str::to_lowercase);
        let mut in_group: HashMap<&str, usize> = HashMap::new();
        for &m in members {
            for t in &self.tokens[m] {
                *in_group.entry(t.as_str()).or_default() += 1;
            }
        }
        let n = self.texts.len() as f64;
        let mut best: Option<(f64, &str)> = None;
        for (token, count) in in_group {
            if count < 2.min(members.len()) || parent.as_deref() == Some(token) {
                continue;
            }
            let df = self.tokens.iter().filter(|ts| ts.iter().any(|t| t == token)).count();
            let score = (count as f64 / members.len() as f64) * ((n + 1.0) / df as f64).ln();
            let better = match best {
                None => true,
                Some((s, t)) => score > s || (score == s && token < t),
            };
            if better && score > 0.0 {
                best = Some((score, token));
            }
        }
        best.map(|(_, t)| t.to_string())
    }
}

fn synset_name(s: &Synset, source: NameSource) -> GroupName {
    GroupName {
        name: s.primary_lemma(),
        source,
        wnid: Some(s.wnid()),
        gloss: Some(s.gloss.clone()),
    }
}

fn plain(name: String, source: NameSource) -> GroupName {
    GroupName { name, source, wnid: None, gloss: None }
}

/// `base`, else `base (<member>)` for the members in order (medoid first), else `base (<a>,
/// <b>)` for pairs of them — the first not in `taken` (compared lower-cased). Never a bare
/// counter (`fruit 2`): a reader cannot tell two such groups apart. Only when every such name
/// is taken (members repeated across groups) does `base (<medoid>, group <k>)` end the search.
fn unique_name(base: &str, members: &[String], taken: &[String]) -> String {
    let free = |n: &str| !taken.contains(&n.to_lowercase());
    if free(base) {
        return base.to_string();
    }
    let lower = base.to_lowercase();
    let usable: Vec<&String> = members.iter().filter(|m| m.to_lowercase() != lower).collect();
    if let Some(n) = usable.iter().map(|m| format!("{base} ({m})")).find(|n| free(n)) {
        return n;
    }
    for (i, a) in usable.iter().enumerate() {
        if let Some(n) =
            usable[i + 1..].iter().map(|b| format!("{base} ({a}, {b})")).find(|n| free(n))
        {
            return n;
        }
    }
    let first = usable.first().map_or("group".to_string(), |m| m.to_string());
    (2..).map(|k| format!("{base} ({first}, group {k})")).find(|n| free(n)).unwrap_or_default()
}

/// Noun senses of a term; when it has none, those of its last word ("black-headed snake" ->
/// "snake").
fn senses_of<'w>(wn: &'w WordNet, text: &str) -> Vec<&'w Synset> {
    let own = wn.synsets_for(text);
    if !own.is_empty() {
        return own;
    }
    text.rsplit(|c: char| c.is_whitespace() || c == '-')
        .find(|w| !w.is_empty())
        .filter(|head| *head != text)
        .map(|head| wn.synsets_for(head))
        .unwrap_or_default()
}

/// Offsets of `s` and all its hypernyms (instance hypernyms included).
fn ancestors_and_self(wn: &WordNet, s: &Synset) -> Vec<u32> {
    let mut out = vec![s.offset];
    let mut queue = vec![s];
    while let Some(cur) = queue.pop() {
        for h in wn.hypernyms(cur) {
            if !out.contains(&h.offset) {
                out.push(h.offset);
                queue.push(h);
            }
        }
    }
    out
}

/// Lower-case alphabetic words of at least 3 letters, minus stopwords, distinct.
fn keyword_tokens(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in text.split(|c: char| !c.is_alphanumeric()) {
        let w = w.to_lowercase();
        if w.chars().count() >= 3
            && w.chars().all(char::is_alphabetic)
            && !STOPWORDS.contains(&w.as_str())
            && !out.contains(&w)
        {
            out.push(w);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::wn;

    fn texts(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn snakes_are_named_snake_not_a_generic_ancestor() {
        let wn = wn();
        let t = texts(&["python", "rock python", "tiger snake", "ribbon snake", "horned viper"]);
        let namer = Namer::new(Some(wn), &t);
        let name = namer.name_group(&[0, 1, 2, 3, 4], 2, None, &[]);
        assert_eq!(name.source, NameSource::Lca);
        assert_eq!(name.name, "snake");
        assert!(name.gloss.is_some() && name.wnid.is_some());
    }

    #[test]
    fn the_parent_and_its_ancestors_are_not_names() {
        let wn = wn();
        let t = texts(&["python", "rock python", "tiger snake", "ribbon snake", "horned viper"]);
        let namer = Namer::new(Some(wn), &t);
        let name = namer.name_group(&[0, 1, 2, 3, 4], 2, Some("snake"), &[]);
        assert_ne!(name.name, "snake");
        assert_ne!(name.name, "reptile");
    }

    #[test]
    fn collisions_get_a_member_never_a_counter() {
        let members = texts(&["merlot", "shiraz"]);
        assert_eq!(unique_name("wine", &members, &[]), "wine");
        assert_eq!(unique_name("wine", &members, &["wine".into()]), "wine (merlot)");
        let taken = texts(&["wine", "wine (merlot)"]);
        assert_eq!(unique_name("wine", &members, &taken), "wine (shiraz)");
        let taken = texts(&["wine", "wine (merlot)", "wine (shiraz)"]);
        assert_eq!(unique_name("wine", &members, &taken), "wine (merlot, shiraz)");
        let taken = texts(&["wine", "wine (merlot)", "wine (shiraz)", "wine (merlot, shiraz)"]);
        assert_eq!(unique_name("wine", &members, &taken), "wine (merlot, group 2)");
    }

    #[test]
    fn number_medoids_get_a_readable_name() {
        let t = texts(&["012", "345", "678", "zebra"]);
        let namer = Namer::new(None, &t);
        assert_eq!(namer.name_group(&[0, 1, 2], 0, None, &[]).name, "numbers");
        assert_eq!(namer.name_group(&[0, 3], 0, None, &[]).name, "zebra");
        let t = texts(&["#1", "@2", "&3"]);
        assert_eq!(Namer::new(None, &t).name_group(&[0, 1, 2], 0, None, &[]).name, "symbols");
        let t = texts(&["012", "345", "678", "901"]);
        let namer = Namer::new(None, &t);
        let taken = vec!["numbers".to_string()];
        assert_eq!(namer.name_group(&[2, 3], 2, None, &taken).name, "numbers (678)");
    }

    #[test]
    fn keyword_naming_without_wordnet() {
        let t = texts(&["red wine", "white wine", "rose wine", "oak table", "pine table"]);
        let namer = Namer::new(None, &t);
        let name = namer.name_group(&[0, 1, 2], 1, None, &[]);
        assert_eq!((name.name.as_str(), name.source), ("wine", NameSource::Keyword));
        assert_eq!(namer.other_bin_name(None, &[3, 4], &[]), "Other (table)");
        assert_eq!(namer.other_bin_name(Some("Furniture"), &[3, 4], &[]), "Other (Furniture)");
    }
}
