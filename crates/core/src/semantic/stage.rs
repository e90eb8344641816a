//! The semantic steps of smart pruning: one embedding batch for the whole tree, then cleaning
//! and arrangement of the flattened lists, each logged to the job's timeline.

use std::collections::VecDeque;
use std::time::Instant;

use anyhow::Result;
use serde_json::json;

use super::arrange::{arrange_items, ArrangeParams, Arrangement};
use super::embedder::Embedder;
use super::outliers::{Scored, Scoring, MIN_ITEMS};
use super::reuse::{Claim, Key, ReuseStore};
use super::typicality;
use super::vectors::VectorTable;
use crate::params::Config;
use crate::stats::{EventKind, Timeline};
use crate::wordnet::WordNet;

/// The texts typicality cleaning embeds for a tree whose item texts are `texts` and whose
/// category names are `keys`: every item and key in the template, and the background.
pub fn typicality_texts(texts: &[String], keys: &[String]) -> Vec<String> {
    let mut out: Vec<String> = texts.iter().map(|t| typicality::item_text(t)).collect();
    out.extend(
        keys.iter().filter_map(|k| typicality::category_text(k)).map(|c| typicality::item_text(&c)),
    );
    out.extend(typicality::background_texts());
    out
}

/// How many lists a job with a reuse store embeds on demand, one list at a time, before it
/// embeds the rest of the tree's texts in one batch: a job whose lists are (nearly) all in the
/// store makes a few small calls or none, a job that computes many makes one big call as
/// without a store.
pub const ON_DEMAND_LISTS: usize = 8;

/// Embeddings and WordNet for the semantic steps of one job.
pub struct SemanticStage<'a> {
    embedder: &'a dyn Embedder,
    wordnet: Option<&'a WordNet>,
    table: VectorTable,
    /// Typicality's background mean, computed at the first cleaning (the texts never change).
    background: Option<Vec<f64>>,
    /// Results of earlier jobs, reused instead of computed.
    reuse: Option<&'a ReuseStore>,
    /// With a reuse store: the tree's texts from [`Self::prefetch`], not embedded yet.
    pending: Vec<String>,
    /// Lists computed (not found in the store) so far.
    computed: usize,
}

impl<'a> SemanticStage<'a> {
    pub fn new(embedder: &'a dyn Embedder, wordnet: Option<&'a WordNet>) -> Self {
        Self {
            embedder,
            wordnet,
            table: VectorTable::default(),
            background: None,
            reuse: None,
            pending: Vec::new(),
            computed: 0,
        }
    }

    /// Looks up each list's scores and arrangement in `store` first (and stores what it
    /// computes); the tree's texts are then embedded only when needed.
    pub fn with_reuse(mut self, store: Option<&'a ReuseStore>) -> Self {
        self.reuse = store;
        self
    }

    /// Embeds every text the walk can meet in one batch (the server call of the job), so the
    /// per-list steps only read the table. Logs an `embedding` event. With a reuse store the
    /// texts wait until a list has to be computed (see [`ON_DEMAND_LISTS`]).
    pub fn prefetch(
        &mut self,
        texts: impl IntoIterator<Item = String>,
        timeline: &mut Timeline,
    ) -> Result<()> {
        match self.reuse {
            Some(_) => {
                self.pending = texts.into_iter().collect();
                Ok(())
            }
            None => self.embed_batch(texts, timeline),
        }
    }

    fn embed_batch(
        &mut self,
        texts: impl IntoIterator<Item = String>,
        timeline: &mut Timeline,
    ) -> Result<()> {
        let start = Instant::now();
        let before = self.counters();
        self.table.add(self.embedder, texts)?;
        let (texts, hits, calls) = self.delta(before);
        timeline.log(
            EventKind::Embedding,
            None,
            format!("embedded {texts} texts ({hits} from the server cache) in {calls} call(s)"),
            json!({
                "texts": texts,
                "cache_hits": hits,
                "calls": calls,
                "duration_s": start.elapsed().as_secs_f64(),
            }),
        );
        Ok(())
    }

    /// Makes sure `texts` (one list's) are in the table before a list is computed: past
    /// [`ON_DEMAND_LISTS`] computed lists, the pending tree texts go in one batch first.
    fn need(&mut self, texts: Vec<String>, timeline: &mut Timeline) -> Result<()> {
        self.computed += 1;
        if self.computed > ON_DEMAND_LISTS && !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            self.embed_batch(pending, timeline)?;
        }
        self.table.add(self.embedder, texts)
    }

    /// `semantic_clean` of one list (under key `context`): drops the items whose outlier score
    /// (`cfg.outlier_method`) exceeds
    /// `cfg.semantic_threshold` (lists of 3+ items). Logs a `cleaning` event.
    pub fn clean(
        &mut self,
        context: &str,
        items: Vec<String>,
        cfg: &Config,
        timeline: &mut Timeline,
    ) -> Result<Vec<String>> {
        if items.len() < MIN_ITEMS {
            return Ok(items);
        }
        let start = Instant::now();
        let before = self.counters();
        let scoring = Scoring {
            method: cfg.outlier_method,
            threshold: cfg.semantic_threshold,
            wordnet: self.wordnet,
        };
        let key = self.reuse.map(|store| (store, scoring.reuse_key(store, &items, Some(context))));
        let stored = key.as_ref().and_then(|(store, key)| store.get::<Scored>(key));
        let reused = stored.is_some();
        let scored = match stored {
            Some(scored) => scored,
            None => {
                let scored = self.score(&scoring, context, &items, timeline)?;
                if let Some((store, key)) = &key {
                    store.put(key, &scored);
                }
                scored
            }
        };
        let analysis = scored.at(cfg.semantic_threshold);
        let (texts, hits, _) = self.delta(before);
        let removed: Vec<&String> = analysis.outliers.iter().map(|&i| &items[i]).collect();
        timeline.log(
            EventKind::Cleaning,
            Some(context),
            format!("removed {} of {} items as outliers", removed.len(), items.len()),
            json!({
                "items": items.len(),
                "removed": removed,
                "method": cfg.outlier_method,
                "threshold": cfg.semantic_threshold,
                "clusters": analysis.n_clusters,
                "noise_ratio": analysis.noise_ratio,
                "duration_s": start.elapsed().as_secs_f64(),
                "embedded_texts": texts,
                "cache_hits": hits,
                "reused": reused,
            }),
        );
        let flagged: std::collections::HashSet<usize> = analysis.outliers.into_iter().collect();
        Ok(items
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !flagged.contains(i))
            .map(|(_, t)| t)
            .collect())
    }

    /// Computes the scores of one list (embedding what it needs).
    fn score(
        &mut self,
        scoring: &Scoring,
        context: &str,
        items: &[String],
        timeline: &mut Timeline,
    ) -> Result<Scored> {
        self.need(scoring.texts(items, Some(context)), timeline)?;
        if self.background.is_none() {
            self.table.add(self.embedder, scoring.shared_texts())?;
            self.background = scoring.background(&self.table)?;
        }
        let analysis =
            scoring.analyze_with(items, Some(context), &self.table, self.background.as_deref())?;
        Ok(analysis.into())
    }

    /// `semantic_arrange` of one list (named `context`): the arrangement when at least two
    /// groups formed, else `None` (the list stays flat). Logs an `arrangement` event.
    pub fn arrange(
        &mut self,
        context: &str,
        items: &[String],
        cfg: &Config,
        timeline: &mut Timeline,
    ) -> Result<Option<Arrangement>> {
        let params = ArrangeParams::from_config(cfg);
        if items.len() < params.min_items() {
            return Ok(None);
        }
        let start = Instant::now();
        let before = self.counters();
        let key = self.reuse.map(|store| (store, self.arrange_key(store, context, items, &params)));
        let stored = key.as_ref().and_then(|(store, key)| store.get::<Arrangement>(key));
        let reused = stored.is_some();
        let arrangement = match stored {
            Some(arrangement) => arrangement,
            None => {
                let arrangement = self.compute_arrangement(context, items, &params, timeline)?;
                if let Some((store, key)) = &key {
                    store.put(key, &arrangement);
                }
                arrangement
            }
        };
        let work = Work { seconds: start.elapsed().as_secs_f64(), counters: self.delta(before) };
        Ok(log_arrangement(context, arrangement, reused, work, timeline))
    }

    /// Whether arrangements may wait until the pruning walk is over ([`Self::arrange_deferred`]):
    /// with a reuse store, so the jobs that run at once share the lists they have in common.
    pub fn defers_arrangement(&self) -> bool {
        self.reuse.is_some()
    }

    /// `semantic_arrange` of every list a pruning walk deferred, in the walk's order, results
    /// as [`Self::arrange`] gives them. With the reuse store, each list is looked up, else
    /// claimed ([`ReuseStore::claim`]) and computed; a list another worker is computing at
    /// this moment is put back in the queue and looked up again after this worker's other
    /// lists. Why: the jobs of a grid that run at the same time meet the same lists in the
    /// same order, and without claims both computed each one (a quarter to a third of a
    /// semantic grid's arrangements were such duplicates); now they split them.
    pub fn arrange_deferred(
        &mut self,
        lists: &[DeferredList],
        timeline: &mut Timeline,
    ) -> Result<Vec<Option<Arrangement>>> {
        let Some(store) = self.reuse else {
            let each = lists.iter().map(|l| self.arrange(&l.context, &l.items, &l.cfg, timeline));
            return each.collect();
        };
        let keys: Vec<Key> = lists
            .iter()
            .map(|l| {
                let params = ArrangeParams::from_config(&l.cfg);
                self.arrange_key(store, &l.context, &l.items, &params)
            })
            .collect();
        let mut done: Vec<Option<(Arrangement, bool, Work)>> = vec![None; lists.len()];
        let mut queue: VecDeque<usize> = (0..lists.len()).collect();
        let mut turns_waiting = 0;
        while let Some(i) = queue.pop_front() {
            let start = Instant::now();
            if let Some(stored) = store.peek::<Arrangement>(&keys[i]) {
                done[i] = Some((stored, true, Work::since(start, (0, 0, 0))));
                turns_waiting = 0;
                continue;
            }
            match store.claim(&keys[i]) {
                Claim::Mine(_claim) => {
                    // Another worker may have stored it and released its claim between the
                    // look-up above and this claim.
                    if let Some(stored) = store.peek::<Arrangement>(&keys[i]) {
                        done[i] = Some((stored, true, Work::since(start, (0, 0, 0))));
                        turns_waiting = 0;
                        continue;
                    }
                    let before = self.counters();
                    let list = &lists[i];
                    let params = ArrangeParams::from_config(&list.cfg);
                    let computed =
                        self.compute_arrangement(&list.context, &list.items, &params, timeline)?;
                    store.put(&keys[i], &computed);
                    done[i] = Some((computed, false, Work::since(start, self.delta(before))));
                    turns_waiting = 0;
                }
                Claim::Theirs => {
                    queue.push_back(i);
                    turns_waiting += 1;
                    if turns_waiting >= queue.len() {
                        // Every list left is being computed elsewhere: wait a little.
                        std::thread::sleep(CLAIM_POLL);
                        turns_waiting = 0;
                    }
                }
            }
        }
        let results = done.into_iter().zip(lists).zip(&keys).map(|((d, list), key)| {
            let (arrangement, reused, work) = d.expect("every deferred list was resolved");
            store.count(key, reused);
            log_arrangement(&list.context, arrangement, reused, work, timeline)
        });
        Ok(results.collect())
    }

    fn arrange_key(
        &self,
        store: &ReuseStore,
        context: &str,
        items: &[String],
        params: &ArrangeParams,
    ) -> Key {
        super::arrange::reuse_key(store, items, self.wordnet, Some(context), params)
    }

    /// Embeds the list's texts (when not yet in the table) and arranges it.
    fn compute_arrangement(
        &mut self,
        context: &str,
        items: &[String],
        params: &ArrangeParams,
        timeline: &mut Timeline,
    ) -> Result<Arrangement> {
        let texts: Vec<String> = items.iter().map(|i| super::arrange::arrange_text(i)).collect();
        self.need(texts, timeline)?;
        arrange_items(items, &self.table, self.wordnet, Some(context), params)
    }

    fn counters(&self) -> (usize, usize, usize) {
        (self.table.texts_embedded, self.table.cache_hits, self.table.calls)
    }

    fn delta(&self, before: (usize, usize, usize)) -> (usize, usize, usize) {
        let now = self.counters();
        (now.0 - before.0, now.1 - before.1, now.2 - before.2)
    }
}

/// A list whose arrangement the pruning walk left for after the walk
/// ([`SemanticStage::arrange_deferred`]).
#[derive(Debug, Clone)]
pub struct DeferredList {
    pub context: String,
    pub items: Vec<String>,
    /// The configuration in force at the list (smart overrides may differ per subtree).
    pub cfg: Config,
}

/// How long a worker waits before looking again for lists other workers are computing.
const CLAIM_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// What one arrangement cost: wall time and the embedding counters' change.
#[derive(Debug, Clone, Copy)]
struct Work {
    seconds: f64,
    counters: (usize, usize, usize),
}

impl Work {
    fn since(start: Instant, counters: (usize, usize, usize)) -> Self {
        Self { seconds: start.elapsed().as_secs_f64(), counters }
    }
}

/// Logs the `arrangement` event of one list; the arrangement when it formed groups.
fn log_arrangement(
    context: &str,
    arrangement: Arrangement,
    reused: bool,
    work: Work,
    timeline: &mut Timeline,
) -> Option<Arrangement> {
    let (texts, hits, _) = work.counters;
    let s = &arrangement.stats;
    let useful = arrangement.is_useful();
    timeline.log(
        EventKind::Arrangement,
        Some(context),
        if useful {
            format!(
                "{} items into {} groups, {} left over",
                s.items,
                s.groups,
                arrangement.leftovers.len()
            )
        } else {
            format!("{} items: no groups formed, list kept flat", s.items)
        },
        json!({
            "items": s.items,
            "clusters": s.clusters_found,
            "rejected": s.clusters_rejected,
            "second_pass": s.second_pass_ran,
            "groups": s.groups,
            "noise_ratio": s.noise_ratio,
            "names": s.names,
            "applied": useful,
            "duration_s": work.seconds,
            "embedded_texts": texts,
            "cache_hits": hits,
            "reused": reused,
        }),
    );
    useful.then_some(arrangement)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::{Dataset, Params};
    use crate::semantic::testdata;
    use crate::semantic::vectors::tests::FixedEmbedder;

    /// The 45-term arrange case of the reference file (three Tencent sibling groups).
    fn case() -> (Vec<String>, FixedEmbedder) {
        let data = testdata::load("glosh_reference.json");
        let case = data["arrange_cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "arrange_045_eom")
            .unwrap()
            .clone();
        let terms: Vec<String> =
            case["terms"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().into()).collect();
        let vectors = testdata::vectors(&case["embeddings_f32_b64"]);
        (terms.clone(), FixedEmbedder::new(terms.into_iter().zip(vectors)))
    }

    /// GLOSH cleaning: the fixed vectors cover the terms as written only.
    fn config() -> Config {
        Params {
            semantic_clean: Some(true),
            semantic_arrange: Some(true),
            outlier_method: Some(crate::params::OutlierMethod::Glosh),
            ..Default::default()
        }
        .resolve(Dataset::Tencent)
    }

    #[test]
    fn prefetched_texts_are_not_embedded_again_and_events_say_what_happened() {
        let (terms, embedder) = case();
        let mut timeline = Timeline::new();
        let mut stage = SemanticStage::new(&embedder, None);
        stage.prefetch(terms.clone(), &mut timeline).unwrap();
        let cfg = config();
        let kept = stage.clean("Things", terms.clone(), &cfg, &mut timeline).unwrap();
        assert!(kept.len() < terms.len(), "GLOSH at 0.1 removes something here");
        let arranged = stage.arrange("Things", &terms, &cfg, &mut timeline).unwrap();
        assert!(arranged.is_some());
        assert_eq!(embedder.calls(), 1, "one embedding call for the whole job");

        let kinds: Vec<EventKind> = timeline.events().iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EventKind::Embedding, EventKind::Cleaning, EventKind::Arrangement]);
        let embedding = &timeline.events()[0].data;
        assert_eq!(embedding["texts"], terms.len());
        let cleaning = &timeline.events()[1];
        assert_eq!(cleaning.context.as_deref(), Some("Things"));
        assert_eq!(cleaning.data["items"], terms.len());
        assert_eq!(cleaning.data["removed"].as_array().unwrap().len(), terms.len() - kept.len());
        assert_eq!(cleaning.data["embedded_texts"], 0);
        for key in ["clusters", "noise_ratio", "duration_s", "cache_hits"] {
            assert!(!cleaning.data[key].is_null(), "cleaning event lacks {key}");
        }
        let arrangement = &timeline.events()[2].data;
        for key in ["items", "clusters", "groups", "noise_ratio", "names", "duration_s"] {
            assert!(!arrangement[key].is_null(), "arrangement event lacks {key}");
        }
        assert_eq!(arrangement["applied"], true);
    }

    #[test]
    fn short_lists_are_neither_cleaned_nor_arranged() {
        let (terms, embedder) = case();
        let mut timeline = Timeline::new();
        let mut stage = SemanticStage::new(&embedder, None);
        let cfg = config();
        let two = terms[..2].to_vec();
        assert_eq!(stage.clean("X", two.clone(), &cfg, &mut timeline).unwrap(), two);
        assert!(stage.arrange("X", &terms[..9], &cfg, &mut timeline).unwrap().is_none());
        assert_eq!(embedder.calls(), 0);
        assert!(timeline.events().is_empty());
    }
}
