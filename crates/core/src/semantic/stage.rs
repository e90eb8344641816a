//! The semantic steps of smart pruning: one embedding batch for the whole tree, then cleaning
//! and arrangement of the flattened lists, each logged to the job's timeline.

use std::time::Instant;

use anyhow::Result;
use serde_json::json;

use super::arrange::{arrange_items, ArrangeParams, Arrangement};
use super::embedder::Embedder;
use super::outliers::{analyze_items, MIN_ITEMS};
use super::vectors::VectorTable;
use crate::params::Config;
use crate::stats::Timeline;
use crate::wordnet::WordNet;

/// Embeddings and WordNet for the semantic steps of one job.
pub struct SemanticStage<'a> {
    embedder: &'a dyn Embedder,
    wordnet: Option<&'a WordNet>,
    table: VectorTable,
}

impl<'a> SemanticStage<'a> {
    pub fn new(embedder: &'a dyn Embedder, wordnet: Option<&'a WordNet>) -> Self {
        Self { embedder, wordnet, table: VectorTable::default() }
    }

    /// Embeds every text the walk can meet in one batch (the server call of the job), so the
    /// per-list steps only read the table. Logs an `embedding` event.
    pub fn prefetch(
        &mut self,
        texts: impl IntoIterator<Item = String>,
        timeline: &mut Timeline,
    ) -> Result<()> {
        let start = Instant::now();
        let before = self.counters();
        self.table.add(self.embedder, texts)?;
        let (texts, hits, calls) = self.delta(before);
        timeline.log(
            "embedding",
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

    /// `semantic_clean` of one list: drops the items whose GLOSH score exceeds
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
        self.table.add(self.embedder, items.iter().cloned())?;
        let analysis = analyze_items(&items, &self.table, cfg.semantic_threshold)?;
        let (texts, hits, _) = self.delta(before);
        let removed: Vec<&String> = analysis.outliers.iter().map(|&i| &items[i]).collect();
        timeline.log(
            "cleaning",
            Some(context),
            format!("removed {} of {} items as outliers", removed.len(), items.len()),
            json!({
                "items": items.len(),
                "removed": removed,
                "threshold": cfg.semantic_threshold,
                "clusters": analysis.n_clusters,
                "noise_ratio": analysis.noise_ratio,
                "duration_s": start.elapsed().as_secs_f64(),
                "embedded_texts": texts,
                "cache_hits": hits,
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
        let texts: Vec<String> = items.iter().map(|i| super::arrange::arrange_text(i)).collect();
        self.table.add(self.embedder, texts)?;
        let arrangement = arrange_items(items, &self.table, self.wordnet, Some(context), &params)?;
        let (texts, hits, _) = self.delta(before);
        let s = &arrangement.stats;
        let useful = arrangement.is_useful();
        timeline.log(
            "arrangement",
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
                "duration_s": start.elapsed().as_secs_f64(),
                "embedded_texts": texts,
                "cache_hits": hits,
            }),
        );
        Ok(useful.then_some(arrangement))
    }

    fn counters(&self) -> (usize, usize, usize) {
        (self.table.texts_embedded, self.table.cache_hits, self.table.calls)
    }

    fn delta(&self, before: (usize, usize, usize)) -> (usize, usize, usize) {
        let now = self.counters();
        (now.0 - before.0, now.1 - before.1, now.2 - before.2)
    }
}
