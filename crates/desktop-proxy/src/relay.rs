//! The WebSocket relay: after both handshakes, raw bytes both ways, no frame parsing.
//!
//! A frame-parsing relay costs hundreds of KiB per connection; a byte copy with bounded
//! buffers costs two buffers — and this one costs none while the connection is idle: each
//! read goes into a buffer on the polling thread's stack and is written on at once; only what
//! the writer does not accept right away is kept on the heap, and that spill buffer is freed
//! as soon as the direction has nothing more to read. The read size adapts: it starts at the
//! configured size and doubles while reads fill it (bulk transfers then need fewer syscalls
//! and give the upstream TLS full-size records), and drops back after the direction has been
//! quiet for [`SHRINK_AFTER`] (not at every pause: a desktop's stream pauses between frames).
//! Each read gathers all that is ready up to the read size before writing it in one go: the
//! upstream TLS stream hands out one record (≤ 16 KiB) per read, and what is ready of
//! several records leaves in one `sendto` to the browser (BENCHMARKS.md, issue 18).
//!
//! Idle is measured from bytes in either direction only to close dead connections — it is
//! *not* user activity (a desktop streams frames to nobody).

use std::future::Future;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use crate::RelayCounters;

/// Largest single read. 64 KiB is four full TLS records and KasmVNC's largest frame; it lives
/// on the stack only while a direction is being polled.
pub(crate) const MAX_READ: usize = 64 * 1024;
/// Smallest starting read size accepted from the configuration.
const MIN_READ: usize = 1024;
/// A direction quiet for this long starts again at the configured read size.
pub(crate) const SHRINK_AFTER: Duration = Duration::from_millis(250);

/// What a finished relay moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    pub client_to_desktop: u64,
    pub desktop_to_client: u64,
    pub idle_timeout: bool,
}

/// Copies both ways until both sides have closed, or nothing moved for `idle`.
/// `initial_read` is the first read size per direction (the `relay_buffer_bytes` setting).
pub(crate) async fn relay<C, U>(
    client: C,
    upstream: U,
    initial_read: usize,
    idle: Duration,
    counters: Arc<RelayCounters>,
) -> io::Result<RelayStats>
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let mut copy = Bidirectional {
        client,
        upstream,
        up: Half::new(initial_read, true),
        down: Half::new(initial_read, false),
        last: Instant::now(),
        counters,
    };
    loop {
        let wait = idle.saturating_sub(copy.last.elapsed());
        if wait.is_zero() {
            return Ok(RelayStats {
                client_to_desktop: copy.up.bytes,
                desktop_to_client: copy.down.bytes,
                idle_timeout: true,
            });
        }
        tokio::select! {
            done = &mut copy => {
                done?;
                return Ok(RelayStats {
                    client_to_desktop: copy.up.bytes,
                    desktop_to_client: copy.down.bytes,
                    idle_timeout: false,
                });
            }
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Both directions; ready when both are done.
struct Bidirectional<C, U> {
    client: C,
    upstream: U,
    /// Client → desktop.
    up: Half,
    /// Desktop → client.
    down: Half,
    /// When bytes last arrived from either side.
    last: Instant,
    /// The proxy's live totals (metrics).
    counters: Arc<RelayCounters>,
}

impl<C, U> Future for Bidirectional<C, U>
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut seen = Seen {
            last: &mut this.last,
            counters: &this.counters,
        };
        let up = this.up.poll_copy(cx, &mut this.client, &mut this.upstream, &mut seen)?;
        let down = this
            .down
            .poll_copy(cx, &mut this.upstream, &mut this.client, &mut seen)?;
        if up.is_ready() && down.is_ready() {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }
}

/// Where a direction reports the bytes it read.
struct Seen<'a> {
    last: &'a mut Instant,
    counters: &'a RelayCounters,
}

/// One direction of the copy.
struct Half {
    /// Client → desktop (for the counters).
    from_client: bool,
    /// Bytes read but not yet accepted by the writer; empty (no allocation) unless the
    /// writer pushed back.
    spill: Vec<u8>,
    /// How much of `spill` has been written.
    written: usize,
    /// Size of the next read.
    read_size: usize,
    /// When this direction last read data.
    last_data: Instant,
    initial_read: usize,
    /// Written since the last flush.
    need_flush: bool,
    /// The reader reached end of stream.
    eof: bool,
    /// A read failed after others had gathered data: reported once that data is written.
    failed: Option<io::Error>,
    done: bool,
    bytes: u64,
}

impl Half {
    fn new(initial_read: usize, from_client: bool) -> Half {
        let initial_read = initial_read.clamp(MIN_READ, MAX_READ);
        Half {
            from_client,
            spill: Vec::new(),
            written: 0,
            read_size: initial_read,
            last_data: Instant::now(),
            initial_read,
            need_flush: false,
            eof: false,
            failed: None,
            done: false,
            bytes: 0,
        }
    }

    fn poll_copy<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        reader: &mut R,
        writer: &mut W,
        seen: &mut Seen<'_>,
    ) -> Poll<io::Result<()>>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        if self.done {
            return Poll::Ready(Ok(()));
        }
        loop {
            // What the writer refused last time goes first, in order.
            while self.written < self.spill.len() {
                let n = ready!(Pin::new(&mut *writer).poll_write(cx, &self.spill[self.written..]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.written += n;
                self.need_flush = true;
            }
            self.spill.clear();
            self.written = 0;
            if let Some(e) = self.failed.take() {
                return Poll::Ready(Err(e));
            }
            if self.eof {
                ready!(Pin::new(&mut *writer).poll_shutdown(cx))?;
                self.done = true;
                return Poll::Ready(Ok(()));
            }

            let mut stack = [MaybeUninit::<u8>::uninit(); MAX_READ];
            let mut buf = ReadBuf::uninit(&mut stack[..self.read_size]);
            match Pin::new(&mut *reader).poll_read(cx, &mut buf) {
                Poll::Pending => {
                    // Nothing to read for now: give back the spill buffer and push out
                    // whatever the writer still holds (TLS records). The read size stays: a
                    // bulk stream pauses between frames far more often than it ends, and
                    // starting over at the small size cost every frame its ramp-up reads.
                    self.spill = Vec::new();
                    if self.need_flush {
                        ready!(Pin::new(&mut *writer).poll_flush(cx))?;
                        self.need_flush = false;
                    }
                    return Poll::Pending;
                }
                Poll::Ready(res) => res?,
            }
            if buf.filled().is_empty() {
                self.eof = true;
                continue;
            }
            // Gather what else is ready before writing: the TLS reader hands out one record
            // (at most 16 KiB) per read, so without this every record cost its own `sendto`
            // to the browser. A TCP reader has usually given all it had in the first read, and
            // its second read costs no syscall (tokio knows the socket is drained).
            while buf.remaining() > 0 {
                let before = buf.filled().len();
                match Pin::new(&mut *reader).poll_read(cx, &mut buf) {
                    // What was gathered goes out first; the next read finds the end of stream.
                    Poll::Ready(Ok(())) if buf.filled().len() == before => break,
                    Poll::Ready(Ok(())) => {}
                    // What was gathered goes out first, then the error ends the relay.
                    Poll::Ready(Err(e)) => {
                        self.failed = Some(e);
                        break;
                    }
                    Poll::Pending => break,
                }
            }
            let data = buf.filled();
            let now = Instant::now();
            // After a quiet spell the direction starts small again.
            if now.duration_since(self.last_data) >= SHRINK_AFTER {
                self.read_size = self.initial_read;
            }
            self.last_data = now;
            *seen.last = now;
            seen.counters.add(self.from_client, data.len());
            self.bytes += data.len() as u64;
            if data.len() == self.read_size {
                self.read_size = (self.read_size * 2).min(MAX_READ);
            }
            let mut off = 0;
            while off < data.len() {
                match Pin::new(&mut *writer).poll_write(cx, &data[off..]) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) => {
                        off += n;
                        self.need_flush = true;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {
                        // The writer is full: keep the rest; we are woken when it drains.
                        self.spill.extend_from_slice(&data[off..]);
                        return Poll::Pending;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, duplex};

    /// Bytes cross in both directions unchanged, also through a writer that accepts only a
    /// little at a time, and end of stream is passed on.
    #[tokio::test]
    async fn copies_both_ways_through_small_pipes() {
        let (mut browser, client_side) = duplex(1000);
        let (upstream_side, mut desktop) = duplex(777);
        let counters = Arc::new(RelayCounters::default());
        let task = tokio::spawn(relay(
            client_side,
            upstream_side,
            1024,
            Duration::from_secs(30),
            counters.clone(),
        ));
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let send = big.clone();
        let writer = tokio::spawn(async move {
            browser.write_all(&send).await.unwrap();
            browser.shutdown().await.unwrap();
            let mut back = Vec::new();
            browser.read_to_end(&mut back).await.unwrap();
            back
        });
        let mut got = Vec::new();
        desktop.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, big);
        desktop.write_all(b"RFB 003.008\n").await.unwrap();
        desktop.shutdown().await.unwrap();
        drop(desktop);
        assert_eq!(writer.await.unwrap(), b"RFB 003.008\n");
        let stats = task.await.unwrap().unwrap();
        assert_eq!(stats.client_to_desktop, 300_000);
        assert_eq!(stats.desktop_to_client, 12);
        assert!(!stats.idle_timeout);
        assert_eq!(
            (counters.client_to_desktop(), counters.desktop_to_client()),
            (300_000, 12)
        );
    }

    #[tokio::test]
    async fn closes_after_idle() {
        let (_browser, client_side) = duplex(64);
        let (upstream_side, _desktop) = duplex(64);
        let counters = Arc::new(RelayCounters::default());
        let stats = relay(client_side, upstream_side, 8192, Duration::from_millis(200), counters)
            .await
            .unwrap();
        assert!(stats.idle_timeout);
    }
}
