//! Dynamic batching: concurrent requests share forward passes on one inference thread.
//!
//! Every batch holds sequences of exactly one token length. That removes padding altogether
//! (less work) and makes each text's vector independent of its batch companions, so concurrent
//! clients get bit-identical vectors to a single client. Batches are bounded by
//! `max_batch_tokens` (sequences x length). Fairness: jobs take turns leading a batch
//! (round-robin), and the leader's batch is topped up with same-length sequences of the other
//! jobs, so a long request cannot starve small ones: a new request waits at most one batch per
//! job ahead of it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::sync::oneshot;

use crate::cache::{EmbeddingCache, Vector};
use crate::metrics::Metrics;
use crate::model::Encoder;

/// Texts of one request that need the model, already tokenized.
pub struct Work {
    pub texts: Vec<String>,
    pub token_ids: Vec<Vec<u32>>,
}

/// The result of one [`Work`]: a vector per text, in order.
pub type WorkResult = Result<Vec<Vector>, String>;

/// Handle to the inference thread.
pub struct Batcher {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    max_batch_tokens: usize,
    /// Recent forward time per text in nanoseconds (a moving average): how fast the queue
    /// drains, for the retry hint of a refused request.
    nanos_per_text: AtomicU64,
    metrics: Arc<Metrics>,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    next_id: u64,
    closed: bool,
    /// Batches run so far (for logs and tests).
    batches: u64,
}

struct Job {
    id: u64,
    texts: Vec<String>,
    token_ids: Vec<Vec<u32>>,
    /// Not yet scheduled slots, by token length.
    unscheduled: BTreeMap<usize, Vec<usize>>,
    results: Vec<Option<Vector>>,
    left: usize,
    reply: oneshot::Sender<WorkResult>,
    /// When the job was queued; `None` once its first forward pass started.
    queued_at: Option<Instant>,
}

/// One forward pass over `inputs` (distinct texts, all `len` tokens long); `members` maps
/// each (job id, slot) to its input, so a text several concurrent requests ask for is
/// computed once.
struct Batch {
    len: usize,
    members: Vec<(u64, usize, usize)>,
    inputs: Vec<(String, Vec<u32>)>,
    /// Queue waits of the jobs this batch starts.
    waits: Vec<Duration>,
}

impl Batcher {
    /// Starts the inference thread, which owns the encoder. Computed vectors go into `cache`.
    pub fn start(
        encoder: Encoder,
        cache: Option<Arc<EmbeddingCache>>,
        max_batch_tokens: usize,
        metrics: Arc<Metrics>,
    ) -> Self {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            max_batch_tokens: max_batch_tokens.max(1),
            nanos_per_text: AtomicU64::new(0),
            metrics,
        });
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("inference".into())
            .spawn(move || run(&thread_shared, &encoder, cache.as_deref()))
            .expect("spawning a thread only fails when the OS is out of resources");
        Self { shared, thread: Mutex::new(Some(thread)) }
    }

    /// Queues work; the receiver yields its vectors once every text was computed.
    pub fn submit(&self, work: Work) -> oneshot::Receiver<WorkResult> {
        let (reply, receiver) = oneshot::channel();
        let mut queue = lock(&self.shared.queue);
        if queue.closed {
            let _ = reply.send(Err("the server is shutting down".into()));
            return receiver;
        }
        let id = queue.next_id;
        queue.next_id += 1;
        let mut unscheduled: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (slot, ids) in work.token_ids.iter().enumerate() {
            unscheduled.entry(ids.len()).or_default().push(slot);
        }
        let n = work.texts.len();
        if n == 0 {
            let _ = reply.send(Ok(Vec::new()));
            return receiver;
        }
        queue.jobs.push_back(Job {
            id,
            texts: work.texts,
            token_ids: work.token_ids,
            unscheduled,
            results: vec![None; n],
            left: n,
            reply,
            queued_at: Some(Instant::now()),
        });
        drop(queue);
        self.shared.wake.notify_one();
        receiver
    }

    /// Forward passes run so far.
    pub fn batches(&self) -> u64 {
        lock(&self.shared.queue).batches
    }

    /// Recent model time per text (zero before the first forward pass).
    pub fn time_per_text(&self) -> Duration {
        Duration::from_nanos(self.shared.nanos_per_text.load(Ordering::Relaxed))
    }

    /// Finishes queued work, then stops the inference thread.
    pub fn shutdown(&self) {
        lock(&self.shared.queue).closed = true;
        self.shared.wake.notify_all();
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The inference loop: take a batch, run it without holding the lock, hand out the vectors.
fn run(shared: &Shared, encoder: &Encoder, cache: Option<&EmbeddingCache>) {
    loop {
        let batch = {
            let mut queue = lock(&shared.queue);
            loop {
                drop_cancelled(&mut queue);
                if let Some(batch) = next_batch(&mut queue, shared.max_batch_tokens) {
                    break batch;
                }
                if queue.closed {
                    return;
                }
                queue = shared.wake.wait(queue).unwrap_or_else(|poisoned| poisoned.into_inner());
            }
        };
        let seq_refs: Vec<&[u32]> = batch.inputs.iter().map(|(_, ids)| ids.as_slice()).collect();
        debug_assert!(seq_refs.iter().all(|s| s.len() == batch.len));
        let started = Instant::now();
        let outcome = encoder.embed_same_length(&seq_refs);
        note_speed(shared, started.elapsed(), seq_refs.len());
        shared.metrics.forward(seq_refs.len(), batch.len, started.elapsed());
        for &waited in &batch.waits {
            shared.metrics.queue_wait(waited);
        }
        match outcome {
            Ok(vectors) => {
                let vectors: Vec<Vector> = vectors.into_iter().map(Vector::from).collect();
                // Cache first: a request that arrives right after this one's answer must hit.
                if let Some(cache) = cache {
                    let entries = batch.inputs.iter().map(|(text, _)| text.clone());
                    cache.put_many(entries.zip(vectors.iter().cloned()).collect());
                }
                let mut queue = lock(&shared.queue);
                queue.batches += 1;
                deliver(&mut queue, &batch, &vectors);
            }
            Err(err) => {
                tracing::error!("inference failed: {err:#}");
                let mut queue = lock(&shared.queue);
                queue.batches += 1;
                fail(&mut queue, &batch, &format!("inference failed: {err:#}"));
            }
        }
    }
}

/// Folds one forward pass into the moving average of time per text (weight 1/8).
fn note_speed(shared: &Shared, elapsed: Duration, texts: usize) {
    let sample = (elapsed.as_nanos() / texts.max(1) as u128).min(u64::MAX as u128) as u64;
    let old = shared.nanos_per_text.load(Ordering::Relaxed);
    let new = if old == 0 { sample } else { old - old / 8 + sample / 8 };
    shared.nanos_per_text.store(new, Ordering::Relaxed);
}

/// Drops jobs whose caller went away (client cancelled or disconnected).
fn drop_cancelled(queue: &mut Queue) {
    queue.jobs.retain(|job| !job.reply.is_closed());
}

/// Picks the next batch: the front job with unscheduled work leads with its shortest sequences,
/// other jobs top the batch up with sequences of the same length (a text already in the batch
/// costs nothing more); the leader then moves to the back of the queue.
fn next_batch(queue: &mut Queue, max_batch_tokens: usize) -> Option<Batch> {
    let lead = queue.jobs.iter().position(|j| !j.unscheduled.is_empty())?;
    let len = *queue.jobs[lead].unscheduled.keys().next()?;
    let capacity = (max_batch_tokens / len).max(1);
    let mut batch = Batch { len, members: Vec::new(), inputs: Vec::new(), waits: Vec::new() };
    let mut input_of: HashMap<String, usize> = HashMap::new();
    let order: Vec<usize> = (lead..queue.jobs.len()).chain(0..lead).collect();
    for index in order {
        let job = &mut queue.jobs[index];
        let Some(slots) = job.unscheduled.get_mut(&len) else {
            continue;
        };
        let mut taken = 0;
        for &slot in slots.iter() {
            let text = &job.texts[slot];
            let input = match input_of.get(text) {
                Some(&input) => input,
                None if batch.inputs.len() < capacity => {
                    batch.inputs.push((text.clone(), job.token_ids[slot].clone()));
                    input_of.insert(text.clone(), batch.inputs.len() - 1);
                    batch.inputs.len() - 1
                }
                None => break,
            };
            batch.members.push((job.id, slot, input));
            taken += 1;
        }
        slots.drain(..taken);
        if taken > 0 {
            if let Some(queued_at) = job.queued_at.take() {
                batch.waits.push(queued_at.elapsed());
            }
        }
        if slots.is_empty() {
            job.unscheduled.remove(&len);
        }
    }
    // Round-robin: the leader goes behind everyone else.
    if let Some(job) = queue.jobs.remove(lead) {
        queue.jobs.push_back(job);
    }
    Some(batch)
}

fn deliver(queue: &mut Queue, batch: &Batch, vectors: &[Vector]) {
    for &(id, slot, input) in &batch.members {
        if let Some(job) = queue.jobs.iter_mut().find(|j| j.id == id) {
            job.results[slot] = Some(Vector::clone(&vectors[input]));
            job.left -= 1;
        }
    }
    finish_done(queue);
}

fn fail(queue: &mut Queue, batch: &Batch, message: &str) {
    let failed: Vec<u64> = batch.members.iter().map(|&(id, _, _)| id).collect();
    let mut kept = VecDeque::new();
    for job in queue.jobs.drain(..) {
        if failed.contains(&job.id) {
            let _ = job.reply.send(Err(message.to_string()));
        } else {
            kept.push_back(job);
        }
    }
    queue.jobs = kept;
}

fn finish_done(queue: &mut Queue) {
    let mut kept = VecDeque::new();
    for job in queue.jobs.drain(..) {
        if job.left == 0 {
            let vectors = job.results.into_iter().flatten().collect();
            // The caller may have gone away meanwhile; nothing to do then.
            let _ = job.reply.send(Ok(vectors));
        } else {
            kept.push_back(job);
        }
    }
    queue.jobs = kept;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adds a job of `texts` whose token ids all have `len` tokens.
    fn push(queue: &mut Queue, texts: &[&str], len: usize) -> oneshot::Receiver<WorkResult> {
        let (reply, receiver) = oneshot::channel();
        let id = queue.next_id;
        queue.next_id += 1;
        let mut unscheduled = BTreeMap::new();
        unscheduled.insert(len, (0..texts.len()).collect());
        queue.jobs.push_back(Job {
            id,
            texts: texts.iter().map(|t| t.to_string()).collect(),
            token_ids: vec![vec![1; len]; texts.len()],
            unscheduled,
            results: vec![None; texts.len()],
            left: texts.len(),
            reply,
            queued_at: Some(Instant::now()),
        });
        receiver
    }

    fn names(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i}")).collect()
    }

    #[test]
    fn a_small_request_is_not_starved_by_a_long_one() {
        let mut queue = Queue::default();
        let long = names("long", 1000);
        let long: Vec<&str> = long.iter().map(String::as_str).collect();
        let _a = push(&mut queue, &long, 5);
        let _b = push(&mut queue, &["x", "y", "z"], 5);
        // 50 tokens of length 5: room for 10 sequences per batch.
        let first = next_batch(&mut queue, 50).unwrap();
        assert_eq!(first.inputs.len(), 10);
        assert!(first.members.iter().all(|&(id, _, _)| id == 0));
        let second = next_batch(&mut queue, 50).unwrap();
        let small: Vec<_> = second.members.iter().filter(|m| m.0 == 1).collect();
        assert_eq!(small.len(), 3, "the small job leads the second batch");
        assert_eq!(second.inputs.len(), 10, "the long job tops it up");
    }

    #[test]
    fn batches_hold_one_length_and_respect_the_token_budget() {
        let mut queue = Queue::default();
        let _a = push(&mut queue, &["a", "b", "c"], 3);
        let _b = push(&mut queue, &["d", "e"], 7);
        let batch = next_batch(&mut queue, 6).unwrap();
        assert_eq!((batch.len, batch.inputs.len()), (3, 2));
        let batch = next_batch(&mut queue, 6).unwrap();
        // Longer than the budget: still one sequence at a time.
        assert_eq!((batch.len, batch.inputs.len()), (7, 1));
    }

    #[test]
    fn a_text_several_requests_ask_for_is_computed_once() {
        let mut queue = Queue::default();
        let _a = push(&mut queue, &["dog", "cat"], 3);
        let _b = push(&mut queue, &["cat", "dog", "cow"], 3);
        let batch = next_batch(&mut queue, 1000).unwrap();
        assert_eq!(batch.inputs.len(), 3);
        assert_eq!(batch.waits.len(), 2, "the batch starts both jobs");
        assert_eq!(batch.members.len(), 5);
        let vectors: Vec<Vector> = (0..3).map(|i| Vector::from(vec![i as f32])).collect();
        deliver(&mut queue, &batch, &vectors);
        assert!(queue.jobs.is_empty(), "both jobs answered");
    }
}
