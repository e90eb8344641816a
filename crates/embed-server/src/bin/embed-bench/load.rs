//! The load mode of embed-bench (`--clients 1,4,16,64 --texts M --batch B`): N clients at
//! once, each its own connection and thread, each sending its M texts in requests of B texts
//! one after another. One row per N, each against a fresh server with a fresh cache file
//! (cold: a warm server would mostly measure its cache). Reported: total throughput (texts
//! over the wall time from the common start to the last answer), p50 / p99 request latency
//! (a request's latency includes any busy-server retries, as a user waits for them), busy
//! answers (`RESOURCE_EXHAUSTED`, retried by the client after the server's hint), failed
//! requests by kind, and the server's peak RSS (VmHWM).

use std::collections::BTreeMap;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use embed_api::client::EmbedClient;

use crate::{fmt_mib, Server, Setup};

/// What to run.
pub struct Plan {
    pub clients: Vec<usize>,
    pub texts: usize,
    pub batch: usize,
}

/// One table row.
struct Row {
    clients: usize,
    texts: usize,
    seconds: f64,
    latencies: Vec<Duration>,
    busy: u64,
    failures: BTreeMap<String, usize>,
    peak_rss: Option<f64>,
}

/// Runs every row of `plan` over the distinct names of `names` and prints the table.
pub fn run(plan: &Plan, names: &[String], setup: &Setup) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    let distinct: Vec<String> = names.iter().filter(|n| seen.insert(n.as_str())).cloned().collect();
    if distinct.is_empty() {
        bail!("no names to send");
    }
    println!(
        "load: {} texts per client in requests of {}, {}; a fresh server and cache per row",
        plan.texts,
        plan.batch,
        if setup.ca.is_some() { "over TLS" } else { "plain" }
    );
    let dir = tempfile::tempdir()?;
    let mut rows = Vec::new();
    for &clients in &plan.clients {
        if clients * plan.texts > distinct.len() {
            eprintln!(
                "  note: {clients} x {} texts is more than the {} distinct names: the slices \
                 wrap around, and repeated texts are cache hits",
                plan.texts,
                distinct.len()
            );
        }
        let cache = dir.path().join(format!("load-{clients}.sqlite"));
        let server = Server::start(&cache, setup)?;
        let row = run_row(&server, clients, plan, &distinct)?;
        eprintln!("  {clients} clients: {} texts in {:.2}s", row.texts, row.seconds);
        rows.push(row);
    }
    print_table(&rows);
    Ok(())
}

/// Client `i`'s texts: the `i`-th slice of `texts` names, wrapping around the list.
fn slice(distinct: &[String], i: usize, texts: usize) -> Vec<String> {
    (0..texts).map(|j| distinct[(i * texts + j) % distinct.len()].clone()).collect()
}

/// What one client saw.
#[derive(Default)]
struct ClientRun {
    latencies: Vec<Duration>,
    texts: usize,
    failures: Vec<String>,
}

/// `clients` clients at once against `server`; all connect first, then start together.
fn run_row(server: &Server, clients: usize, plan: &Plan, distinct: &[String]) -> Result<Row> {
    let connected: Vec<EmbedClient> = (0..clients)
        .map(|_| server.client_with(|o| o.chunk_texts = plan.batch))
        .collect::<Result<_>>()?;
    let start = Barrier::new(clients + 1);
    let (runs, seconds) = std::thread::scope(|scope| {
        let handles: Vec<_> = connected
            .iter()
            .enumerate()
            .map(|(i, client)| {
                let texts = slice(distinct, i, plan.texts);
                let start = &start;
                scope.spawn(move || {
                    start.wait();
                    one_client(client, &texts, plan.batch)
                })
            })
            .collect();
        start.wait();
        let began = Instant::now();
        let runs: Vec<ClientRun> =
            handles.into_iter().map(|h| h.join().unwrap_or_default()).collect();
        (runs, began.elapsed().as_secs_f64())
    });
    let mut row = Row {
        clients,
        texts: 0,
        seconds,
        latencies: Vec::new(),
        busy: connected.iter().map(|c| c.stats().pushbacks).sum(),
        failures: BTreeMap::new(),
        peak_rss: server.peak_rss_mib(),
    };
    for run in runs {
        row.texts += run.texts;
        row.latencies.extend(run.latencies);
        for kind in run.failures {
            *row.failures.entry(kind).or_default() += 1;
        }
    }
    Ok(row)
}

/// Sends `texts` in requests of `batch`, one after another, timing each.
fn one_client(client: &EmbedClient, texts: &[String], batch: usize) -> ClientRun {
    let mut run = ClientRun::default();
    for request in texts.chunks(batch) {
        let sent = Instant::now();
        match client.embed(request) {
            Ok(answer) if answer.vectors.len() == request.len() => {
                run.latencies.push(sent.elapsed());
                run.texts += request.len();
            }
            Ok(_) => run.failures.push("wrong number of vectors".into()),
            Err(err) => run.failures.push(kind(&err)),
        }
    }
    run
}

/// The kind of a failed request, for the errors column.
fn kind(err: &embed_api::ClientError) -> String {
    let debug = format!("{err:?}");
    debug.split([' ', '(', '{']).next().unwrap_or("error").to_string()
}

/// The `p`-th percentile (nearest rank) of sorted latencies, in milliseconds.
fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "| clients | texts | seconds | texts/s | p50 ms | p99 ms | requests | busy (retried) | failed | server peak RSS MiB |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|");
    for row in rows {
        let mut sorted = row.latencies.clone();
        sorted.sort();
        let failed = if row.failures.is_empty() {
            "0".to_string()
        } else {
            row.failures.iter().map(|(k, n)| format!("{n} {k}")).collect::<Vec<_>>().join(", ")
        };
        println!(
            "| {} | {} | {:.2} | {:.0} | {:.0} | {:.0} | {} | {} | {} | {} |",
            row.clients,
            row.texts,
            row.seconds,
            row.texts as f64 / row.seconds,
            percentile(&sorted, 50.0),
            percentile(&sorted, 99.0),
            sorted.len(),
            row.busy,
            failed,
            fmt_mib(row.peak_rss)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let ms: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&ms, 50.0), 50.0);
        assert_eq!(percentile(&ms, 99.0), 99.0);
        assert_eq!(percentile(&ms[..1], 99.0), 1.0);
    }

    #[test]
    fn client_slices_are_disjoint_until_they_wrap() {
        let names: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        assert_eq!(slice(&names, 1, 3), ["3", "4", "5"]);
        assert_eq!(slice(&names, 3, 3), ["9", "0", "1"]);
    }
}
