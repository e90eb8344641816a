//! Back-pressure: how many Embed requests are decoded at once (`--max-inflight-requests`)
//! and how many texts may wait for the model (`--max-queued-texts`).
//!
//! The two bounds split the work: a request holds a decode permit from the moment its body
//! starts to be read until it is admitted to the queue (or refused), so a burst of large
//! requests costs at most a few requests' memory while they are decoded (the rest wait in
//! HTTP/2 flow control). Once admitted the permit is given back and the request's texts count
//! against the queue bound instead. A request that would take the queue past its bound is
//! refused at once with `RESOURCE_EXHAUSTED` and a retry hint (`grpc-retry-pushback-ms`, the
//! standard gRPC pushback header), so the server's memory stays bounded under any burst and
//! clients come back later instead of piling up.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use embed_api::client::PUSHBACK_HEADER;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::codegen::http;
use tonic::metadata::MetadataMap;
use tonic::{Code, Status};

/// Shortest and longest retry hint: short enough that an emptying queue is refilled soon,
/// long enough that a crowd of refused clients does not spend the CPU on retries.
const MIN_HINT: Duration = Duration::from_millis(100);
const MAX_HINT: Duration = Duration::from_secs(10);

/// A request's decode permit, put into its extensions by [`DecodeLimit`]; the service
/// releases it once the request is admitted (it is also released when the request is
/// dropped, e.g. refused).
#[derive(Clone)]
pub struct DecodePermit(Arc<Mutex<Option<OwnedSemaphorePermit>>>);

impl DecodePermit {
    /// Gives the permit back, so another request may be decoded.
    pub fn release(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

/// A service behind a bound on requests being decoded and admitted at once. Health and
/// reflection stay outside it, so a busy server still answers its health check.
#[derive(Clone)]
pub struct DecodeLimit<S> {
    inner: S,
    permits: Arc<Semaphore>,
}

impl<S> DecodeLimit<S> {
    pub fn new(inner: S, limit: usize) -> Self {
        Self { inner, permits: Arc::new(Semaphore::new(limit.max(1))) }
    }
}

impl<S: tonic::server::NamedService> tonic::server::NamedService for DecodeLimit<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> tower::Service<http::Request<B>> for DecodeLimit<S>
where
    S: tower::Service<http::Request<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    /// Always ready: the wait for a permit happens per request, in its own future.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let permits = Arc::clone(&self.permits);
        // The clone that was made ready is the one to call (tower's usual pattern).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            // The semaphore lives as long as this service and is never closed.
            let permit = permits.acquire_owned().await.expect("the semaphore is never closed");
            request.extensions_mut().insert(DecodePermit(Arc::new(Mutex::new(Some(permit)))));
            std::future::poll_fn(|cx| inner.poll_ready(cx)).await?;
            inner.call(request).await
        })
    }
}

/// The bound on texts admitted and not yet answered (`--max-queued-texts`).
pub struct QueueBound {
    queued: AtomicUsize,
    max: usize,
}

/// Texts of one admitted request; they leave the count when this is dropped.
pub struct Admitted<'a> {
    bound: &'a QueueBound,
    texts: usize,
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.bound.queued.fetch_sub(self.texts, Ordering::AcqRel);
    }
}

impl QueueBound {
    pub fn new(max: usize) -> Self {
        Self { queued: AtomicUsize::new(0), max: max.max(1) }
    }

    /// Texts admitted and not yet answered.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Admits `texts` when they fit under the bound (or the queue is empty, so a request
    /// larger than the bound still runs, alone); else `Err` with the texts queued now.
    pub fn admit(&self, texts: usize) -> Result<Admitted<'_>, usize> {
        let mut current = self.queued.load(Ordering::Acquire);
        loop {
            if current > 0 && current + texts > self.max {
                return Err(current);
            }
            match self.queued.compare_exchange_weak(
                current,
                current + texts,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(Admitted { bound: self, texts }),
                Err(now) => current = now,
            }
        }
    }

    /// The `RESOURCE_EXHAUSTED` answer for a request of `texts` refused with `queued` texts
    /// waiting; `per_text` is the model's recent time per text, so the hint is about the
    /// time the queue takes to drain.
    pub fn refusal(&self, texts: usize, queued: usize, per_text: Duration) -> Status {
        let hint = per_text.saturating_mul(queued as u32).clamp(MIN_HINT, MAX_HINT);
        let millis = hint.as_millis() as u64;
        let mut metadata = MetadataMap::new();
        metadata.insert(PUSHBACK_HEADER, millis.into());
        Status::with_metadata(
            Code::ResourceExhausted,
            format!(
                "server busy: {queued} texts are queued and this request adds {texts}, over \
                 the limit of {} (--max-queued-texts); retry in about {millis} ms (the \
                 wildcards clients wait and retry by themselves)",
                self.max
            ),
            metadata,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embed_api::client::pushback;

    #[test]
    fn the_bound_admits_until_full_then_refuses_until_texts_leave() {
        let bound = QueueBound::new(100);
        let a = bound.admit(60).unwrap();
        assert_eq!(bound.admit(41).err(), Some(60));
        let b = bound.admit(40).unwrap();
        assert_eq!(bound.queued(), 100);
        drop(a);
        assert_eq!(bound.queued(), 40);
        drop(b);
        // An empty queue takes even a request larger than the bound.
        let big = bound.admit(500).unwrap();
        assert_eq!(bound.admit(1).err(), Some(500));
        drop(big);
        assert_eq!(bound.queued(), 0);
    }

    #[test]
    fn the_refusal_carries_a_clamped_retry_hint() {
        let bound = QueueBound::new(10);
        let status = bound.refusal(5, 8, Duration::from_millis(50));
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(pushback(&status), Some(Duration::from_millis(400)));
        assert!(status.message().contains("--max-queued-texts"), "{}", status.message());
        let idle = bound.refusal(5, 8, Duration::ZERO);
        assert_eq!(pushback(&idle), Some(MIN_HINT));
        let slow = bound.refusal(5, 8, Duration::from_secs(60));
        assert_eq!(pushback(&slow), Some(MAX_HINT));
        assert_eq!(pushback(&Status::resource_exhausted("too big")), None);
    }
}
