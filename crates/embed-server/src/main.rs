//! embed-server: loads MiniLM once and serves sentence embeddings over gRPC.
//!
//! `embed-server` serves; `embed-server info` and `embed-server health` ask a running server.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use embed_api::client::{self, ClientOptions, EmbedClient};
use embed_server::models::ModelSpec;
use embed_server::server::{run, CacheChoice, ServerConfig};
use embed_server::service::Limits;

#[derive(Parser)]
#[command(
    name = "embed-server",
    version,
    about = "gRPC sentence-embedding server (all-MiniLM-L6-v2, or several BERT-family models) with dynamic batching and a SQLite cache",
    args_conflicts_with_subcommands = true,
    after_help = EXIT_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

/// The end of `--help`: what each exit status means.
const EXIT_HELP: &str = "Exit status: 0 stopped cleanly (SIGINT or SIGTERM: in-flight requests \
finished, cache flushed; `health`: SERVING), 1 runtime failure (address in use, model files \
missing, unreadable key file; `health`: not serving or unreachable), 2 usage error (unknown flag, \
bad value).";

#[derive(Subcommand)]
enum Command {
    /// Print a running server's Info (model, dim, cache counters) as JSON.
    Info(ClientArgs),
    /// Check a running server's grpc.health.v1 status; exit 0 when SERVING.
    Health(ClientArgs),
}

#[derive(Args)]
struct ClientArgs {
    /// Server address, host:port, http://host:port, or https://host:port for a server
    /// started with --tls-cert [env: WILDCARDS_EMBED_SERVER; default 127.0.0.1:50051]
    #[arg(long)]
    server: Option<String>,
    /// PEM CA certificate to trust for an https:// server whose certificate a private CA
    /// signed (the public web roots are always trusted)
    #[arg(long, value_name = "FILE", env = "WILDCARDS_EMBED_CA")]
    ca_cert: Option<PathBuf>,
    /// File with the bearer token [else env WILDCARDS_EMBED_TOKEN]
    #[arg(long)]
    token_file: Option<PathBuf>,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on, HOST:PORT (a name such as localhost:50051 is resolved; loopback
    /// by default; use 0.0.0.0:PORT to serve other machines, with --api-key-file).
    #[arg(long, default_value = "127.0.0.1:50051", value_parser = parse_addr)]
    addr: String,
    /// The all-MiniLM-L6-v2 folder (config.json, tokenizer.json, model.safetensors) when no
    /// --model is given: the one model, named after the folder, answering also to `minilm`
    /// [default: ~/.cache/wildcards-gen/models/all-MiniLM-L6-v2]
    #[arg(long, env = "WILDCARDS_MODEL_DIR")]
    model_dir: Option<PathBuf>,
    /// A model to serve, NAME=SOURCE; repeat for several (the first is the default, used by
    /// requests that name none). SOURCE is a sentence-transformers folder (config.json,
    /// tokenizer.json, model.safetensors; 1_Pooling/config.json and
    /// sentence_bert_config.json when present) or hf:ORG/ID, downloaded from the Hugging Face
    /// hub. Any BERT-family model loads (all-MiniLM-L6-v2 / L12, bge-small, e5-small ...).
    /// Requests and `semantic_model` pick a model by NAME; a model also answers to its hub id
    /// or folder name, and all-MiniLM-L6-v2 to `minilm`. A bare ORG/ID means hf:ORG/ID named
    /// after ID. With --model, --model-dir and WILDCARDS_MODEL_DIR are not used.
    /// Example: --model minilm=hf:sentence-transformers/all-MiniLM-L6-v2 --model bge=DIR
    #[arg(long, value_name = "NAME=SOURCE", value_parser = embed_server::models::parse_spec)]
    model: Vec<ModelSpec>,
    /// SQLite cache file [default: ~/.cache/wildcards-gen/embeddings.sqlite]
    #[arg(long, conflicts_with = "no_cache")]
    cache: Option<PathBuf>,
    /// Compute every vector; no memory or SQLite cache.
    #[arg(long)]
    no_cache: bool,
    /// Size of the in-memory cache layer in MiB.
    #[arg(long, default_value_t = 64)]
    memory_cache_mb: usize,
    /// Most texts in one request (larger requests get INVALID_ARGUMENT).
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u32).range(1..))]
    max_texts: u32,
    /// Longest text in bytes (longer ones get INVALID_ARGUMENT).
    #[arg(long, default_value_t = 16384, value_parser = clap::value_parser!(u32).range(1..))]
    max_text_bytes: u32,
    /// Embed requests being decoded at once, over all connections; more wait (in the
    /// connection's flow control) until one is decoded and admitted to the queue. Bounds the
    /// memory a burst of large requests takes while decoding to about this many times the
    /// largest request.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    max_inflight_requests: u32,
    /// Most texts admitted and not yet answered, over all requests (back-pressure). A request
    /// that would go past it is refused at once with RESOURCE_EXHAUSTED and a retry hint
    /// (grpc-retry-pushback-ms, about the time the queue takes to drain); the wildcards
    /// clients wait that long (with jitter) and retry. Bounds the memory of any burst.
    #[arg(long, default_value_t = 16384, value_parser = clap::value_parser!(u32).range(1..))]
    max_queued_texts: u32,
    /// Most tokens (sequences x length) in one forward pass of the model.
    #[arg(long, default_value_t = 4096)]
    max_batch_tokens: usize,
    /// Serve Prometheus metrics (requests and texts by method, status and client; cache hits
    /// and misses; forward passes; batch, queue-wait, forward and latency histograms; queue
    /// depth; model load time; RSS) at http://HOST:PORT/metrics. Off by default.
    #[arg(long, value_parser = parse_addr)]
    metrics_addr: Option<String>,
    /// Serve gRPC over TLS with this PEM certificate (chain); needs --tls-key. Clients then
    /// use https://HOST:PORT, with --ca-cert FILE (or env WILDCARDS_EMBED_CA) when a private
    /// CA signed it. The --metrics-addr port stays plain HTTP.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// File holding a token; clients must then send `authorization: Bearer <token>`.
    #[arg(long)]
    api_key_file: Option<PathBuf>,
    /// Stop (gracefully) when standard input reaches its end: a tool that starts a private
    /// server holds the other end of the pipe, so the server ends with it however it ends.
    #[arg(long, hide = true)]
    exit_on_stdin_eof: bool,
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Some(Command::Info(args)) => print_info(&args),
        Some(Command::Health(args)) => print_health(&args),
        None => serve(cli.serve),
    };
    match outcome {
        Ok(code) => code,
        // Runtime failures (port in use, missing model, ...) are 1; clap's usage errors exit
        // 2 from `Cli::parse` above.
        Err(err) => {
            eprintln!("embed-server: error: {err:#}");
            ExitCode::from(1)
        }
    }
}

/// glibc gives every thread that allocates its own malloc arena (up to 8 per core); with
/// tokio, rayon and blocking-pool threads all handling large activation buffers, freed memory
/// stays spread over many arenas and the resident size creeps up. Two arenas keep the peak
/// RSS close to what is really in use.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

fn serve(args: ServeArgs) -> Result<ExitCode> {
    let cache = match (args.no_cache, args.cache) {
        (true, _) => CacheChoice::Disabled,
        (false, Some(path)) => CacheChoice::Path(path),
        (false, None) => CacheChoice::Default,
    };
    let config = ServerConfig {
        addr: args.addr,
        model_dir: args.model_dir,
        models: args.model,
        cache,
        memory_cache_bytes: args.memory_cache_mb << 20,
        limits: Limits {
            max_texts: args.max_texts as usize,
            max_text_bytes: args.max_text_bytes as usize,
            max_queued_texts: args.max_queued_texts as usize,
        },
        max_batch_tokens: args.max_batch_tokens,
        api_key_file: args.api_key_file,
        metrics_addr: args.metrics_addr,
        exit_on_stdin_eof: args.exit_on_stdin_eof,
        max_inflight_requests: args.max_inflight_requests as usize,
        tls: args
            .tls_cert
            .zip(args.tls_key)
            .map(|(cert, key)| embed_server::tls::TlsFiles { cert, key }),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(config))?;
    Ok(ExitCode::SUCCESS)
}

/// `--addr` must have the HOST:PORT shape (a usage error, exit 2, when not); the host is
/// resolved when the server starts.
fn parse_addr(s: &str) -> std::result::Result<String, String> {
    let hint = "use HOST:PORT such as 127.0.0.1:50051 or localhost:50051";
    let (host, port) = s.rsplit_once(':').ok_or_else(|| format!("no port in `{s}`; {hint}"))?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(format!("`{s}` is not an address; {hint}"));
    }
    Ok(s.to_string())
}

fn client_options(args: &ClientArgs) -> Result<ClientOptions> {
    let token = match &args.token_file {
        Some(path) => Some(client::read_token_file(path)?),
        None => None,
    };
    let mut options = ClientOptions::from_env(args.server.as_deref(), token.as_deref());
    options.ca_cert = args.ca_cert.clone();
    options.retry_for = std::time::Duration::from_secs(2);
    Ok(options)
}

fn print_info(args: &ClientArgs) -> Result<ExitCode> {
    let info = EmbedClient::connect(client_options(args)?)?.info()?;
    let json = serde_json::json!({
        "model_id": info.model_id,
        "dim": info.dim,
        "max_seq_length": info.max_seq_length,
        "model_fingerprint": info.model_fingerprint,
        "models": info.models.iter().map(|m| serde_json::json!({
            "name": m.name,
            "model_id": m.model_id,
            "dim": m.dim,
            "fingerprint": m.fingerprint,
            "max_seq_length": m.max_seq_length,
            "aliases": m.aliases,
            "source": m.source,
            "cache_entries": m.cache_entries,
        })).collect::<Vec<_>>(),
        "cache_path": info.cache_path,
        "cache_persistent": info.cache_persistent,
        "cache_entries": info.cache_entries,
        "cache_hits": info.cache_hits,
        "cache_misses": info.cache_misses,
        "requests": info.requests,
        "batches": info.batches,
        "max_texts": info.max_texts,
        "max_text_bytes": info.max_text_bytes,
        "version": info.version,
    });
    println!("{}", serde_json::to_string_pretty(&json)?);
    Ok(ExitCode::SUCCESS)
}

fn print_health(args: &ClientArgs) -> Result<ExitCode> {
    let server = client::resolve_server(args.server.as_deref());
    if client::health_with_ca(&server, args.ca_cert.as_deref())? {
        println!("SERVING");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("NOT_SERVING");
        Ok(ExitCode::from(1))
    }
}
