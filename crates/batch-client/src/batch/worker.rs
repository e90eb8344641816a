//! Worker mode (`batch-client --worker` with env `WILDCARDS_BATCH_WORKER=1`, hidden): a light process that runs jobs one at a
//! time for batch-client. Jobs arrive as JSON lines on stdin; stage events and the outcome go
//! back as JSON lines on stdout (see [`super::protocol`]); logs go to stderr.
//!
//! A worker never loads the sentence model: embeddings come from the embed-server over gRPC.
//! WordNet is loaded once, at the first job, and kept for the next ones.

use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result};
use wildcards_core::datasets::download;
use wildcards_core::generate::{GenerateContext, SourceCache, Stage};
use wildcards_core::run::{run_job, JobRequest, JobResult};
use wildcards_core::semantic::embedder::Embedder;
use wildcards_core::semantic::reuse::ReuseStore;
use wildcards_core::wordnet::WordNet;

use crate::embedder::Counting;
use crate::fetch::HttpFetcher;
use crate::job::{BatchStats, JobMetrics, JobOutcome, JobSpec, JobStatus};

use super::protocol::{self, Event, Request};

/// What every job of this worker shares (from batch-client's command line).
#[derive(Debug, Clone, Default)]
pub struct WorkerOptions {
    /// The embed-server to use; `None` when no job of the batch needs embeddings.
    pub server: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub wordnet_dir: Option<PathBuf>,
    /// The batch's `--token-file`, when it has one.
    pub token_file: Option<PathBuf>,
}

/// The worker's main loop; returns when stdin closes.
pub fn run(opts: WorkerOptions) -> ExitCode {
    install_panic_hook();
    let send = emit;
    send(&Event::Ready { pid: std::process::id() });
    let mut env = WorkerEnv {
        opts,
        wordnet: None,
        embedders: Default::default(),
        sources: SourceCache::default(),
    };
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
        let peak_rss_kb = embed_api::process::own_peak_rss_kib();
        send(&Event::Finished { job: job.index, outcome, retire, peak_rss_kb });
        if retire {
            return ExitCode::from(3);
        }
    }
}

/// Sends one event to batch-client: a whole line under stdout's lock, so the events of the
/// job's thread and of the embed client's threads (failover notes) never interleave.
fn emit(ev: &Event) {
    // A closed stdout means batch-client is gone; the read of the next job then ends too.
    let _ = protocol::send(&mut std::io::stdout().lock(), ev);
}

fn secs(start: Instant) -> f64 {
    (start.elapsed().as_secs_f64() * 1000.0).round() / 1000.0
}

struct WorkerEnv {
    opts: WorkerOptions,
    wordnet: Option<Arc<WordNet>>,
    embedders: std::collections::HashMap<String, Arc<dyn Embedder>>,
    /// The dataset hierarchy of the last job, for the next ones (a grid's jobs share it).
    sources: SourceCache,
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

    /// The embedder of `model` (a job's `semantic_model`): one connection per model, kept for
    /// the worker's later jobs.
    fn embedder(&mut self, model: &str) -> Result<Arc<dyn Embedder>> {
        if let Some(e) = self.embedders.get(model) {
            return Ok(Arc::clone(e));
        }
        let addr = self.opts.server.clone().context(
            "this job needs sentence embeddings but the batch has no embed-server address",
        )?;
        // Calls that fail because the server is down or restarting are retried for a while.
        let access = crate::embedder::Access {
            timeout: None,
            token_file: self.opts.token_file.clone(),
            model: Some(model.to_string()),
        };
        // A server of a list that fails is said in the batch's log (it fails over).
        let notice = Arc::new(|line: &str| emit(&Event::Note { message: line.to_string() }));
        let e: Arc<dyn Embedder> =
            Arc::new(crate::embedder::GrpcEmbedder::connect_noticing(&addr, &access, notice)?);
        self.embedders.insert(model.to_string(), Arc::clone(&e));
        Ok(e)
    }

    /// Runs one job through the shared runner (generate, write, lint, stats) and adds
    /// batch-client's `batch` section to its stats file.
    fn execute(&mut self, job: &JobSpec, on_stage: &(dyn Fn(&str) + Sync)) -> Result<JobOutcome> {
        let start = Instant::now();
        let cfg = job.config();
        on_stage("starting");
        let wordnet = self.wordnet()?;
        let data_dir =
            download::data_dir(job.data_dir.as_deref().or(self.opts.data_dir.as_deref()))?;
        let counting = match job.needs_embeddings() {
            true => Some(Counting::new(self.embedder(&cfg.semantic_model)?)),
            false => None,
        };
        let totals = || counting.as_ref().map(Counting::totals).unwrap_or_default();
        let stage_cb = |s: Stage| on_stage(s.as_str());
        let fetcher = HttpFetcher::new(false);
        let reuse = reuse_store(job, counting.as_ref())?;
        let mut ctx = GenerateContext::new(data_dir, wordnet);
        ctx.embedder = counting.as_ref().map(|c| c as &dyn Embedder);
        ctx.reuse = reuse.as_ref();
        ctx.sources = Some(&self.sources);
        ctx.on_stage = Some(&stage_cb);
        ctx.fetcher = Some(&fetcher);
        let batch_section = |result: &JobResult| {
            let (embed_texts, embed_cache_hits) = totals();
            let text = result.generated.text.as_bytes();
            let batch = BatchStats {
                job: job.name.clone(),
                param_hash: job.param_hash(),
                embed_texts,
                embed_cache_hits,
                output_bytes: Some(text.len() as u64),
                output_sha256: Some(crate::job::sha256_hex(text)),
            };
            Ok(("batch".to_string(), serde_json::to_value(batch)?))
        };
        let request = JobRequest {
            config: &cfg,
            output: &job.output,
            lint: job.analyze,
            save_stats: job.save_stats,
            started: start,
            stats_extra: Some(&batch_section),
        };
        let result = run_job(&request, &ctx, on_stage)?;
        if job.wants_viewer() {
            on_stage("viewer");
            crate::viewer::write_viewer(&job.output, result.lint.as_ref(), &job.viewer_path())?;
        }
        let (embed_texts, embed_cache_hits) = totals();
        let reuse = result.reuse.unwrap_or_default();
        let metrics = JobMetrics {
            structure: result.generated.stats.clone(),
            outliers: result.lint.as_ref().map(|l| l.outliers),
            outlier_rate: result.lint.as_ref().map(|l| l.outlier_rate),
            lint_method: result.lint.as_ref().map(|l| l.method_used()),
            embed_texts,
            embed_cache_hits,
            reuse_hits: reuse.hits,
            reuse_misses: reuse.misses,
        };
        Ok(JobOutcome {
            status: JobStatus::Succeeded,
            error: None,
            duration_s: result.duration_s,
            metrics: Some(metrics),
        })
    }
}

/// The job's reuse store: the batch's (`job.reuse_dir`) for the model the server serves, when
/// the job embeds and the server names its model.
fn reuse_store(job: &JobSpec, embedder: Option<&Counting>) -> Result<Option<ReuseStore>> {
    let (Some(dir), Some(embedder)) = (&job.reuse_dir, embedder) else { return Ok(None) };
    let Some(model) = embedder.model_id() else { return Ok(None) };
    Ok(Some(ReuseStore::open(dir, &model)?.with_code(build_id())))
}

/// This executable's size and modification time: part of every reuse key, so a rebuilt tool
/// never reads what another build computed (Slurm tasks on several nodes run the one shared
/// binary, so they agree).
fn build_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let meta = std::env::current_exe().and_then(std::fs::metadata);
        let modified = meta
            .as_ref()
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        format!("{} bytes, modified {modified}", meta.map_or(0, |m| m.len()))
    })
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
