//! Several embed-servers behind one blocking client: `--server` (and `WILDCARDS_EMBED_SERVER`)
//! may name a comma-separated list, `gpu1:50051,gpu2:50051`.
//!
//! [`EmbedPool`] spreads a call's texts over the servers that answer (slices of a few
//! requests each, taken from one queue by one thread per server, so a faster server takes
//! more) and fails over when one dies mid-batch: the slice it was serving goes back to the
//! queue for the others, the server is left out (and said so through the failover notice),
//! and tried again a little later, so a restarted one rejoins. A grid survives losing any
//! server but the last; when none answers, the call keeps trying for the client's
//! `retry_for`, as a single server's client does.
//!
//! Why not tonic's balanced channel (`Channel::balance_list`): it balances requests but hides
//! which server failed, and a request in flight on a dying server fails with it; the batch
//! needs the failover said in its log and the lost slice served elsewhere. Embedding is
//! idempotent, so resending a slice is safe, and every server of a pool must serve the same
//! model (checked at connect: model id, weights fingerprint and dimension), so the vectors
//! do not depend on which server computed them.
//!
//! With one server the pool is exactly that server's [`EmbedClient`] (same retries).

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::client::{
    health_with_ca, server_uri, ClientOptions, ClientStats, EmbedClient, Embedded,
};
use crate::error::ClientError;
use crate::proto::InfoResponse;

/// How long a call to one server of a pool is retried before the pool fails over (its
/// client's `retry_for`): long enough for a dropped connection to be re-made, short enough
/// that a dead server costs the batch seconds, not the 90 s a lone server gets.
pub const MEMBER_RETRY_FOR: Duration = Duration::from_secs(3);
/// A server left out after a failure is tried again after this long.
pub const REJOIN_AFTER: Duration = Duration::from_secs(10);
/// Texts per slice of a call handed to one server at a time: a few requests' worth, so the
/// servers share a big call and a failure resends little.
pub const SLICE_TEXTS: usize = 1024;

/// What a failover notice is told: one line for the log.
pub type NoticeFn = dyn Fn(&str) + Send + Sync;

/// The servers of a `--server` value: comma-separated, each `host:port` or `http://host:port`,
/// in order, without repeats. An empty entry or a bad address is an error naming it.
pub fn split_servers(list: &str) -> Result<Vec<String>, ClientError> {
    let mut servers: Vec<String> = Vec::new();
    for entry in list.split(',') {
        let entry = entry.trim();
        if entry.is_empty() {
            return Err(ClientError::Address {
                server: list.to_string(),
                problem: "has an empty entry: separate servers by single commas, e.g. \
                          gpu1:50051,gpu2:50051"
                    .into(),
            });
        }
        server_uri(entry)?;
        if !servers.iter().any(|s| s == entry) {
            servers.push(entry.to_string());
        }
    }
    Ok(servers)
}

/// One server of a pool.
struct Member {
    server: String,
    /// The connected client; `None` while the server is left out.
    client: Mutex<Option<Arc<EmbedClient>>>,
    /// When it was left out (`None`: in use).
    down_since: Mutex<Option<Instant>>,
}

/// A blocking client of one or several embed-servers (see the module doc).
pub struct EmbedPool {
    members: Vec<Member>,
    options: ClientOptions,
    on_failover: Option<Arc<NoticeFn>>,
    /// The model every server must serve: (model id, fingerprint, dim) of the first one.
    model: Mutex<Option<(String, String, u32)>>,
    requests: AtomicU64,
    texts: AtomicU64,
    cache_hits: AtomicU64,
}

/// What the threads of one call share.
struct Call<'a> {
    texts: &'a [String],
    queue: Mutex<VecDeque<(usize, Range<usize>)>>,
    answers: Mutex<Vec<Option<Embedded>>>,
    fatal: Mutex<Option<ClientError>>,
    last_failure: Mutex<Option<ClientError>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl EmbedPool {
    /// Connects to the server or servers of `options.server` (a comma-separated list).
    /// One server: [`EmbedClient::connect`]. Several: those that answer now are used (at
    /// least one must, within `options.retry_for`), the others join when they answer; all
    /// must serve the same model. `on_failover` hears when a server is left out or rejoins.
    pub fn connect(
        options: ClientOptions,
        on_failover: Option<Arc<NoticeFn>>,
    ) -> Result<Self, ClientError> {
        let servers = split_servers(&options.server)?;
        let members: Vec<Member> = servers
            .into_iter()
            .map(|server| Member { server, client: Mutex::new(None), down_since: Mutex::new(None) })
            .collect();
        let pool = Self {
            members,
            options,
            on_failover,
            model: Mutex::new(None),
            requests: AtomicU64::new(0),
            texts: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
        };
        if pool.members.len() == 1 {
            let client = EmbedClient::connect(pool.member_options(&pool.members[0]))?;
            *lock(&pool.members[0].client) = Some(Arc::new(client));
            return Ok(pool);
        }
        pool.connect_all()?;
        Ok(pool)
    }

    /// A pool of one already connected client (tests: clients with short retries).
    pub fn single(client: EmbedClient) -> Self {
        let options = ClientOptions::new(client.uri());
        let member = Member {
            server: client.uri().to_string(),
            client: Mutex::new(Some(Arc::new(client))),
            down_since: Mutex::new(None),
        };
        Self {
            members: vec![member],
            options,
            on_failover: None,
            model: Mutex::new(None),
            requests: AtomicU64::new(0),
            texts: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
        }
    }

    /// The servers, as given.
    pub fn servers(&self) -> Vec<&str> {
        self.members.iter().map(|m| m.server.as_str()).collect()
    }

    /// The options of one member's client: the pool's, for its address; in a pool of
    /// several, a short retry window (the pool fails over instead of waiting).
    fn member_options(&self, member: &Member) -> ClientOptions {
        let mut options = self.options.clone();
        options.server = member.server.clone();
        if self.members.len() > 1 {
            options.retry_for = options.retry_for.min(MEMBER_RETRY_FOR);
        }
        options
    }

    /// Connects every server that answers (in parallel); fails when none does within
    /// `retry_for`.
    fn connect_all(&self) -> Result<(), ClientError> {
        let started = Instant::now();
        loop {
            let results: Vec<Result<(), ClientError>> = std::thread::scope(|s| {
                let handles: Vec<_> =
                    self.members.iter().map(|m| s.spawn(move || self.join(m))).collect();
                handles.into_iter().map(|h| h.join().unwrap_or(Ok(()))).collect()
            });
            // A server of another model, without the model asked for, or a TLS mismatch is a
            // set-up error: say it, whatever else answered.
            if let Some(i) = results.iter().position(|r| {
                matches!(
                    r,
                    Err(ClientError::Local(_)
                        | ClientError::UnknownModel { .. }
                        | ClientError::Tls { .. })
                )
            }) {
                return results.into_iter().nth(i).unwrap_or(Ok(()));
            }
            if self.members.iter().any(|m| lock(&m.client).is_some()) {
                return Ok(());
            }
            if started.elapsed() >= self.options.retry_for {
                let last = results.into_iter().find_map(Result::err);
                return Err(last.unwrap_or_else(|| self.none_answers(started)));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn none_answers(&self, started: Instant) -> ClientError {
        ClientError::Unreachable {
            uri: self.options.server.clone(),
            what: "every embed-server of the list",
            attempts: 0,
            elapsed: started.elapsed(),
            message: "none answers".into(),
        }
    }

    /// Connects one member when its health check answers; checks its model against the
    /// pool's. Leaves it out (down) otherwise.
    fn join(&self, member: &Member) -> Result<(), ClientError> {
        let connected = match health_with_ca(&member.server, self.options.ca_cert.as_deref()) {
            Ok(true) => EmbedClient::connect(self.member_options(member)),
            Ok(false) => Err(ClientError::Unreachable {
                uri: member.server.clone(),
                what: "the health check",
                attempts: 1,
                elapsed: Duration::ZERO,
                message: "not serving yet".into(),
            }),
            Err(e) => Err(e),
        };
        let client = match connected.and_then(|c| self.check_model(member, c)) {
            Ok(client) => client,
            Err(e) => {
                *lock(&member.down_since) = Some(Instant::now());
                return Err(e);
            }
        };
        *lock(&member.client) = Some(Arc::new(client));
        *lock(&member.down_since) = None;
        Ok(())
    }

    /// The client when its server serves the pool's model (the first server's, else this
    /// one's becomes it); a server of another model is an error ([`ClientError::Local`]).
    fn check_model(
        &self,
        member: &Member,
        client: EmbedClient,
    ) -> Result<EmbedClient, ClientError> {
        client.info()?;
        // The model the requests name (`ClientOptions::model`), not just the default.
        let used = client.model_info().unwrap_or_default();
        let this = (used.model_id, used.fingerprint, used.dim);
        let mut model = lock(&self.model);
        match &*model {
            Some(expected) if *expected != this => Err(ClientError::Local(format!(
                "the embed-servers of --server {} serve different models: {} has {} \
                 (fingerprint {}, dim {}), another has {} (fingerprint {}, dim {}); every server \
                 of a list must serve the same model",
                self.options.server,
                member.server,
                this.0,
                this.1,
                this.2,
                expected.0,
                expected.1,
                expected.2
            ))),
            Some(_) => Ok(client),
            None => {
                *model = Some(this);
                Ok(client)
            }
        }
    }

    fn notice(&self, line: &str) {
        match &self.on_failover {
            Some(f) => f(line),
            None => tracing::warn!("{line}"),
        }
    }

    /// The members in use, after trying again those left out long enough ago.
    fn usable(&self) -> Vec<(&Member, Arc<EmbedClient>)> {
        let due = |m: &Member| {
            lock(&m.client).is_none()
                && lock(&m.down_since).is_none_or(|t| t.elapsed() >= REJOIN_AFTER)
        };
        let rejoining: Vec<&Member> = self.members.iter().filter(|m| due(m)).collect();
        for m in rejoining {
            if self.join(m).is_ok() {
                self.notice(&format!("embed-server at {} answers again; using it", m.server));
            }
        }
        self.members.iter().filter_map(|m| lock(&m.client).clone().map(|c| (m, c))).collect()
    }

    /// Leaves `member` out after `error`, and says where its work goes.
    fn fail_over(&self, member: &Member, error: &ClientError) {
        *lock(&member.client) = None;
        *lock(&member.down_since) = Some(Instant::now());
        let others: Vec<&str> = self
            .members
            .iter()
            .filter(|m| lock(&m.client).is_some())
            .map(|m| m.server.as_str())
            .collect();
        let next = match others.is_empty() {
            true => format!(
                "no other embed-server answers; retrying for up to {:.0} s",
                self.options.retry_for.as_secs_f64()
            ),
            false => format!("failing over to {}", others.join(", ")),
        };
        self.notice(&format!("embed-server at {} failed ({error}); {next}", member.server));
    }

    /// Embeds `texts` (any number), in input order, spread over the servers in use.
    pub fn embed(&self, texts: &[String]) -> Result<Embedded, ClientError> {
        if self.members.len() == 1 || texts.is_empty() {
            return self.any_client()?.embed(texts);
        }
        let slices: Vec<Range<usize>> = (0..texts.len())
            .step_by(SLICE_TEXTS)
            .map(|s| s..(s + SLICE_TEXTS).min(texts.len()))
            .collect();
        let call = Call {
            texts,
            queue: Mutex::new(slices.iter().cloned().enumerate().collect()),
            answers: Mutex::new(vec![None; slices.len()]),
            fatal: Mutex::new(None),
            last_failure: Mutex::new(None),
        };
        let mut failing_since: Option<Instant> = None;
        while !lock(&call.queue).is_empty() {
            let usable = self.usable();
            if usable.is_empty() {
                let since = *failing_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= self.options.retry_for {
                    let last = lock(&call.last_failure).take();
                    return Err(last.unwrap_or_else(|| self.none_answers(since)));
                }
                std::thread::sleep(Duration::from_millis(500));
                continue;
            }
            failing_since = None;
            std::thread::scope(|s| {
                for (member, client) in &usable {
                    let call = &call;
                    s.spawn(move || self.serve(member, client, call));
                }
            });
            if let Some(e) = lock(&call.fatal).take() {
                return Err(e);
            }
        }
        self.merge(call.answers.into_inner().unwrap_or_else(|e| e.into_inner()))
    }

    /// One server's share of a call: slices from the queue until it is empty, the call
    /// failed, or this server failed (its slice goes back for the others).
    fn serve(&self, member: &Member, client: &EmbedClient, call: &Call) {
        loop {
            if lock(&call.fatal).is_some() {
                return;
            }
            let Some((index, range)) = lock(&call.queue).pop_front() else { return };
            let before = client.stats().requests;
            match client.embed(&call.texts[range.clone()]) {
                Ok(answer) => {
                    let requests = client.stats().requests.saturating_sub(before);
                    self.count(answer.vectors.len(), answer.cache_hits, requests as usize);
                    lock(&call.answers)[index] = Some(answer);
                }
                Err(e) if e.is_retryable() => {
                    lock(&call.queue).push_front((index, range));
                    self.fail_over(member, &e);
                    *lock(&call.last_failure) = Some(e);
                    return;
                }
                Err(e) => {
                    *lock(&call.fatal) = Some(e);
                    return;
                }
            }
        }
    }

    fn merge(&self, answers: Vec<Option<Embedded>>) -> Result<Embedded, ClientError> {
        let mut out = Embedded::default();
        for answer in answers {
            let answer = answer.ok_or_else(|| {
                ClientError::Local("an embed slice was left without an answer".into())
            })?;
            out.dim = answer.dim;
            out.cache_hits += answer.cache_hits;
            out.vectors.extend(answer.vectors);
        }
        Ok(out)
    }

    fn count(&self, texts: usize, hits: usize, requests: usize) {
        self.texts.fetch_add(texts as u64, Ordering::Relaxed);
        self.cache_hits.fetch_add(hits as u64, Ordering::Relaxed);
        self.requests.fetch_add(requests as u64, Ordering::Relaxed);
    }

    /// A connected client: the lone server's, or the first in use (rejoining those due).
    fn any_client(&self) -> Result<Arc<EmbedClient>, ClientError> {
        if self.members.len() == 1 {
            if let Some(c) = lock(&self.members[0].client).clone() {
                return Ok(c);
            }
        }
        let started = Instant::now();
        loop {
            if let Some((_, client)) = self.usable().into_iter().next() {
                return Ok(client);
            }
            if started.elapsed() >= self.options.retry_for {
                return Err(self.none_answers(started));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The server's description of the model the requests use ([`ClientOptions::model`],
    /// else the default), from a server in use.
    pub fn model_info(&self) -> Result<crate::proto::ModelInfo, ClientError> {
        let client = self.any_client()?;
        client.info()?;
        client.model_info().ok_or_else(|| {
            ClientError::Local(format!(
                "embed-server at {} no longer serves the model {:?}",
                client.uri(),
                self.options.model.as_deref().unwrap_or("(default)")
            ))
        })
    }

    /// The model, limits and cache counters of a server in use (fresh from it); fails over
    /// like [`Self::embed`].
    pub fn info(&self) -> Result<InfoResponse, ClientError> {
        loop {
            let client = self.any_client()?;
            match client.info() {
                Ok(info) => return Ok(info),
                Err(e) if e.is_retryable() && self.members.len() > 1 => {
                    if let Some(m) = self
                        .members
                        .iter()
                        .find(|m| lock(&m.client).as_ref().is_some_and(|c| Arc::ptr_eq(c, &client)))
                    {
                        self.fail_over(m, &e);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Counters since this pool was created, over all its servers (a lone server's: its
    /// client's).
    pub fn stats(&self) -> ClientStats {
        if let [member] = self.members.as_slice() {
            return lock(&member.client).as_ref().map(|c| c.stats()).unwrap_or_default();
        }
        ClientStats {
            requests: self.requests.load(Ordering::Relaxed),
            texts: self.texts.load(Ordering::Relaxed),
            cache_hits: self.cache_hits.load(Ordering::Relaxed),
            // Busy answers are retried inside each member's client: their sum.
            pushbacks: self
                .members
                .iter()
                .filter_map(|m| lock(&m.client).as_ref().map(|c| c.stats().pushbacks))
                .sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_lists_split_on_commas_and_name_a_bad_entry() {
        assert_eq!(split_servers("a:1").unwrap(), ["a:1"]);
        assert_eq!(
            split_servers(" a:1, http://b:2 ,a:1").unwrap(),
            ["a:1", "http://b:2"],
            "trimmed, in order, without repeats"
        );
        let err = split_servers("a:1,,b:2").unwrap_err().to_string();
        assert!(err.contains("empty entry") && err.contains("gpu1:50051,gpu2:50051"), "{err}");
        let err = split_servers("a:1,b").unwrap_err().to_string();
        assert!(err.contains("\"b\"") && err.contains("needs a port"), "{err}");
    }

    #[test]
    fn a_list_where_nothing_answers_is_a_clean_error() {
        let mut options = ClientOptions::new("127.0.0.1:9,127.0.0.1:7");
        options.retry_for = Duration::from_millis(300);
        let err = EmbedPool::connect(options, None).err().expect("nothing answers");
        assert!(err.is_retryable(), "{err:?}");
        assert!(err.to_string().contains("not reachable"), "{err}");
    }
}
