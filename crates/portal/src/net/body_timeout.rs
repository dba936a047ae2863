//! A read timeout for request bodies: a body from which nothing arrives for a while, or that
//! trickles in slower than any real upload (slow-loris), ends with an error, and the flag it
//! sets lets the web layer answer 408 instead of whatever the handler made of the error.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use hyper::body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// A whole body may take this many times the idle timeout, however steadily it trickles.
pub const TOTAL_FACTOR: u32 = 15;

/// The body was too slow.
#[derive(Debug, thiserror::Error)]
#[error("the request body arrived too slowly")]
pub struct BodyTooSlow;

/// `inner` with an idle timeout between its parts and a deadline for all of it. The clocks
/// start when the handler first waits for the body, not when the request arrived.
pub struct TimedBody {
    inner: Body,
    idle: Duration,
    idle_sleep: Option<Pin<Box<Sleep>>>,
    total: Option<Pin<Box<Sleep>>>,
    tripped: Arc<AtomicBool>,
}

impl TimedBody {
    /// Wraps `inner`; `tripped` becomes true if it times out.
    pub fn new(inner: Body, idle: Duration, tripped: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            idle,
            idle_sleep: None,
            total: None,
            tripped,
        }
    }
}

impl hyper::body::Body for TimedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            // Something arrived: the idle clock starts again at the next wait.
            this.idle_sleep = None;
            return Poll::Ready(frame);
        }
        let now = Instant::now();
        let idle = this.idle;
        let idle_sleep = this
            .idle_sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(now + idle)));
        let total = this
            .total
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(now + idle * TOTAL_FACTOR)));
        if idle_sleep.as_mut().poll(cx).is_ready() || total.as_mut().poll(cx).is_ready() {
            this.tripped.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(axum::Error::new(BodyTooSlow))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
