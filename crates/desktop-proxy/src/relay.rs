//! The WebSocket relay: after both handshakes, raw bytes both ways, no frame parsing.
//!
//! A frame-parsing relay costs hundreds of KiB per connection; a byte copy with bounded
//! buffers costs two buffers. Idle is measured from bytes in either direction only to close
//! dead connections — it is *not* user activity (a desktop streams frames to nobody).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::RelayCounters;

/// What a finished relay moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    pub client_to_desktop: u64,
    pub desktop_to_client: u64,
    pub idle_timeout: bool,
}

/// Copies both ways until either side closes or nothing moves for `idle`.
pub(crate) async fn relay<C, U>(
    client: C,
    upstream: U,
    buffer: usize,
    idle: Duration,
    counters: Arc<RelayCounters>,
) -> io::Result<RelayStats>
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let start = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let mut client = Tracked {
        inner: client,
        start,
        last: last.clone(),
        counters: counters.clone(),
        from_client: true,
    };
    let mut upstream = Tracked {
        inner: upstream,
        start,
        last: last.clone(),
        counters,
        from_client: false,
    };
    let copy = tokio::io::copy_bidirectional_with_sizes(&mut client, &mut upstream, buffer, buffer);
    tokio::pin!(copy);
    loop {
        let since_last = start
            .elapsed()
            .saturating_sub(Duration::from_millis(last.load(Ordering::Relaxed)));
        let wait = idle.saturating_sub(since_last);
        if wait.is_zero() {
            return Ok(RelayStats {
                idle_timeout: true,
                ..RelayStats::default()
            });
        }
        tokio::select! {
            done = &mut copy => {
                let (up, down) = done?;
                return Ok(RelayStats { client_to_desktop: up, desktop_to_client: down, idle_timeout: false });
            }
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Records when bytes last arrived on a stream.
struct Tracked<T> {
    inner: T,
    start: Instant,
    last: Arc<AtomicU64>,
    /// Live byte totals for metrics; reads on the browser's side count as client → desktop.
    counters: Arc<RelayCounters>,
    from_client: bool,
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let res = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.counters.add(this.from_client, buf.filled().len() - before);
            let ms = u64::try_from(this.start.elapsed().as_millis()).unwrap_or(u64::MAX);
            this.last.store(ms, Ordering::Relaxed);
        }
        res
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
