//! Worker mode (`batch-client --worker`, hidden): a light process that runs jobs one at a
//! time for batch-client. Jobs arrive as JSON lines on stdin; stage events and the outcome go
//! back as JSON lines on stdout (see [`super::protocol`]); logs go to stderr.
//!
//! A worker never loads the sentence model: embeddings come from the embed-server over gRPC.
//! WordNet is loaded once, at the first job, and kept for the next ones.

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result};
use wildcards_core::datasets::download::{self, Progress};
use wildcards_core::generate::{generate, GenerateContext, Stage};
use wildcards_core::job::{BatchStats, JobMetrics, JobOutcome, JobSpec, JobStatus};
use wildcards_core::output::write_atomic;
use wildcards_core::semantic::embedder::{Embedder, Embeddings};
use wildcards_core::stats::{Execution, LintStats};
use wildcards_core::wordnet::WordNet;

use super::protocol::{self, Event, Request};

/// What every job of this worker shares (from batch-client's command line).
#[derive(Debug, Clone, Default)]
pub struct WorkerOptions {
    /// The embed-server to use; `None` when no job of the batch needs embeddings.
    pub server: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub wordnet_dir: Option<PathBuf>,
}

/// The worker's main loop; returns when stdin closes.
pub fn run(opts: WorkerOptions) -> ExitCode {
    install_panic_hook();
    let out = Mutex::new(std::io::stdout());
    let send = |ev: &Event| {
        let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
        // A closed stdout means batch-client is gone; the read below then ends too.
        let _ = protocol::send(&mut *o, ev);
    };
    send(&Event::Ready { pid: std::process::id() });
    let mut env = WorkerEnv { opts, wordnet: None, embedder: None };
    let mut input = std::io::stdin().lock();
    loop {
        let req = match protocol::receive::<Request>(&mut input) {
            Ok(Some(r)) => r,
            Ok(None) => return ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("worker: unreadable request: {e}");
                return ExitCode::from(2);
            }
        };
        let job = req.job;
        let on_stage = |stage: &str| send(&Event::Stage { job: job.index, stage: stage.into() });
        let start = Instant::now();
        let result = panic::catch_unwind(AssertUnwindSafe(|| env.execute(&job, &on_stage)));
        let (outcome, retire) = match result {
            Ok(Ok(outcome)) => (outcome, false),
            Ok(Err(e)) => (JobOutcome::failed(format!("{e:#}"), secs(start)), false),
            Err(payload) => {
                let msg = format!("panicked: {}", panic_message(payload.as_ref()));
                (JobOutcome::failed(msg, secs(start)), true)
            }
        };
        let peak_rss_kb = protocol::peak_rss_kb("self");
        send(&Event::Finished { job: job.index, outcome, retire, peak_rss_kb });
        if retire {
            return ExitCode::from(3);
        }
    }
}

fn secs(start: Instant) -> f64 {
    (start.elapsed().as_secs_f64() * 1000.0).round() / 1000.0
}

struct WorkerEnv {
    opts: WorkerOptions,
    wordnet: Option<Arc<WordNet>>,
    embedder: Option<Arc<dyn Embedder>>,
}

impl WorkerEnv {
    fn wordnet(&mut self) -> Result<Arc<WordNet>> {
        if let Some(wn) = &self.wordnet {
            return Ok(Arc::clone(wn));
        }
        let wn = Arc::new(WordNet::locate(self.opts.wordnet_dir.as_deref())?);
        self.wordnet = Some(Arc::clone(&wn));
        Ok(wn)
    }

    fn embedder(&mut self) -> Result<Arc<dyn Embedder>> {
        if let Some(e) = &self.embedder {
            return Ok(Arc::clone(e));
        }
        let addr = self.opts.server.clone().context(
            "this job needs sentence embeddings but the batch has no embed-server address",
        )?;
        // Calls that fail because the server is down or restarting are retried for a while.
        let e: Arc<dyn Embedder> = Arc::new(super::embed_client::GrpcEmbedder::connect(&addr)?);
        self.embedder = Some(Arc::clone(&e));
        Ok(e)
    }

    /// Runs one job: generate, write the skeleton, analyse, write the stats file.
    fn execute(&mut self, job: &JobSpec, on_stage: &(dyn Fn(&str) + Sync)) -> Result<JobOutcome> {
        let start = Instant::now();
        let cfg = job.config();
        on_stage("starting");
        let wordnet = self.wordnet()?;
        let data_dir =
            download::data_dir(job.data_dir.as_deref().or(self.opts.data_dir.as_deref()))?;
        let counting = match job.needs_embeddings() {
            true => Some(Counting::new(self.embedder()?)),
            false => None,
        };
        let stage_cb = |s: Stage| on_stage(s.as_str());
        let mut ctx = GenerateContext::new(data_dir, wordnet);
        ctx.embedder = counting.as_ref().map(|c| c as &dyn Embedder);
        ctx.on_stage = Some(&stage_cb);
        ctx.download_progress = Progress::Hidden;
        let generated = generate(&cfg, &ctx)?;

        on_stage("writing");
        if let Some(dir) = job.output.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        write_atomic(&job.output, generated.text.as_bytes())?;

        let lint = match (job.analyze, &counting) {
            (true, Some(embedder)) => {
                on_stage("analyzing");
                Some(lint(&generated.tree, cfg.semantic_threshold, embedder)?)
            }
            _ => None,
        };
        let (embed_texts, embed_cache_hits) =
            counting.as_ref().map(Counting::totals).unwrap_or_default();
        let metrics = JobMetrics {
            structure: generated.stats.clone(),
            outliers: lint.as_ref().map(|l| l.outliers),
            embed_texts,
            embed_cache_hits,
        };
        let duration_s = secs(start);
        if job.save_stats {
            let mut stats = generated.stats_file(&cfg, Some(&job.output));
            stats.lint = lint;
            stats.execution = Execution::now(duration_s);
            let batch = BatchStats {
                job: job.name.clone(),
                param_hash: job.param_hash(),
                embed_texts,
                embed_cache_hits,
            };
            write_stats(&job.stats_path(), &stats, &batch)?;
        }
        Ok(JobOutcome {
            status: JobStatus::Succeeded,
            error: None,
            duration_s,
            metrics: Some(metrics),
        })
    }
}

/// Writes the `.stats.json` of `wildcards-gen --analyze` plus batch-client's `batch` section.
fn write_stats(
    path: &Path,
    stats: &wildcards_core::stats::StatsFile,
    batch: &BatchStats,
) -> Result<()> {
    let mut value = serde_json::to_value(stats)?;
    if let Some(obj) = value.as_object_mut() {
        obj.insert("batch".into(), serde_json::to_value(batch)?);
    }
    write_atomic(path, serde_json::to_string_pretty(&value)?.as_bytes())
}

/// The lint of the analysis: outliers over every list at the job's threshold.
fn lint(
    tree: &wildcards_core::taxonomy::TaxonomyNode,
    threshold: f64,
    embedder: &dyn Embedder,
) -> Result<LintStats> {
    let report = wildcards_core::semantic::lint::lint_tree(tree, embedder, threshold)?;
    Ok(LintStats {
        outliers: report.outliers_total,
        threshold,
        lists_checked: report.lists_checked,
    })
}

/// Counts the texts a job embeds and the server's cache hits among them.
struct Counting {
    inner: Arc<dyn Embedder>,
    texts: AtomicU64,
    hits: AtomicU64,
}

impl Counting {
    fn new(inner: Arc<dyn Embedder>) -> Self {
        Self { inner, texts: AtomicU64::new(0), hits: AtomicU64::new(0) }
    }

    fn totals(&self) -> (u64, u64) {
        (self.texts.load(Ordering::Relaxed), self.hits.load(Ordering::Relaxed))
    }
}

impl Embedder for Counting {
    fn embed(&self, texts: &[String]) -> Result<Embeddings> {
        let e = self.inner.embed(texts)?;
        self.texts.fetch_add(texts.len() as u64, Ordering::Relaxed);
        self.hits.fetch_add(e.cache_hits as u64, Ordering::Relaxed);
        Ok(e)
    }
}

static PANIC_LOCATION: Mutex<Option<String>> = Mutex::new(None);

/// Keeps the default panic output (stderr) and remembers where the panic happened, for the
/// job's failure reason.
fn install_panic_hook() {
    let default = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if let Some(loc) = info.location() {
            *PANIC_LOCATION.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(format!("{}:{}", loc.file(), loc.line()));
        }
        default(info);
    }));
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    match PANIC_LOCATION.lock().unwrap_or_else(|e| e.into_inner()).take() {
        Some(loc) => format!("{msg} (at {loc})"),
        None => msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Answers every call; one cache hit per call.
    struct Fixed {
        calls: AtomicUsize,
    }

    impl Embedder for Fixed {
        fn embed(&self, texts: &[String]) -> Result<Embeddings> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(Embeddings { dim: 1, vectors: vec![vec![1.0]; texts.len()], cache_hits: 1 })
        }
    }

    #[test]
    fn counting_adds_up_texts_and_cache_hits() {
        let c = Counting::new(Arc::new(Fixed { calls: AtomicUsize::new(0) }));
        c.embed(&["a".to_string(), "b".to_string()]).unwrap();
        c.embed(&["c".to_string()]).unwrap();
        assert_eq!(c.totals(), (3, 2));
    }
}
