//! The TCP connection under the upstream TLS: reads ahead in large chunks while data flows,
//! and holds no buffer while the connection is idle.
//!
//! rustls asks its transport for at most 4 KiB per read, so a 16 KiB TLS record costs four
//! or five `recvfrom` calls; at desktop frame rates that was a large share of the relay's CPU
//! time. This layer reads up to [`READ_AHEAD`] bytes per syscall into a buffer that exists only
//! while there is something in it — an idle WebSocket (the common case: a desktop nobody is
//! looking at) keeps nothing here.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf as _, BytesMut};
use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Bytes read from the socket at once: four full TLS records.
pub(crate) const READ_AHEAD: usize = 64 * 1024;

/// Connects like [`HttpConnector`], then wraps the stream in [`ReadAhead`].
#[derive(Clone)]
pub(crate) struct ReadAheadConnector {
    http: HttpConnector,
}

impl ReadAheadConnector {
    pub(crate) fn new(http: HttpConnector) -> Self {
        Self { http }
    }
}

impl tower_service::Service<Uri> for ReadAheadConnector {
    type Response = ReadAhead;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<ReadAhead, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.http.call(uri);
        Box::pin(async move {
            let tcp = connecting.await?.into_inner();
            Ok(ReadAhead {
                tcp,
                buf: BytesMut::new(),
            })
        })
    }
}

/// A TCP stream with a read-ahead buffer that is freed whenever it runs empty and the
/// socket has nothing more.
pub(crate) struct ReadAhead {
    tcp: TcpStream,
    /// Read from the socket, not yet handed out.
    buf: BytesMut,
}

impl Read for ReadAhead {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, mut out: ReadBufCursor<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.buf.is_empty() {
                let n = out.remaining().min(this.buf.len());
                out.put_slice(&this.buf[..n]);
                this.buf.advance(n);
                return Poll::Ready(Ok(()));
            }
            match this.tcp.poll_read_ready(cx) {
                Poll::Pending => {
                    // Idle: nothing buffered and nothing to read, so hold no memory.
                    this.buf = BytesMut::new();
                    return Poll::Pending;
                }
                Poll::Ready(ready) => ready?,
            }
            // Reuses the allocation while data flows (the buffer is empty, so `reserve`
            // reclaims it instead of allocating).
            this.buf.reserve(READ_AHEAD);
            // Through tokio's `AsyncRead` rather than `try_read_buf`: a read that returns less
            // than asked for marks the socket drained, so the next poll does not spend a
            // `recvfrom` on EAGAIN (one of seven syscalls per small-message round trip).
            match tokio_util::io::poll_read_buf(Pin::new(&mut this.tcp), cx, &mut this.buf) {
                Poll::Pending => {
                    this.buf = BytesMut::new();
                    return Poll::Pending;
                }
                // End of stream: hand out nothing, which the reader sees as EOF.
                Poll::Ready(Ok(0)) => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl Write for ReadAhead {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

impl Connection for ReadAhead {
    fn connected(&self) -> Connected {
        self.tcp.connected()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use hyper_util::rt::TokioIo;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    /// Everything arrives in order through small reads, the buffer is gone once drained,
    /// and end of stream is passed on.
    #[tokio::test]
    async fn hands_out_everything_and_frees_the_buffer_when_idle() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
        let sent = data.clone();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            s.write_all(&sent).await.unwrap();
            let mut ack = [0u8; 1];
            s.read_exact(&mut ack).await.unwrap();
        });
        let mut conn = ReadAheadConnector::new(HttpConnector::new());
        let uri: Uri = format!("http://{addr}/").parse().unwrap();
        let stream = tower_service::Service::call(&mut conn, uri).await.unwrap();
        let mut io = TokioIo::new(stream);
        let mut got = vec![0u8; data.len()];
        let mut small = [0u8; 4096];
        let mut at = 0;
        while at < got.len() {
            let n = io.read(&mut small).await.unwrap();
            assert!(n > 0);
            got[at..at + n].copy_from_slice(&small[..n]);
            at += n;
        }
        assert_eq!(got, data);
        // Poll once more with nothing sent: pending, and the buffer is released.
        let idle = tokio::time::timeout(std::time::Duration::from_millis(50), io.read(&mut small)).await;
        assert!(idle.is_err());
        assert_eq!(io.inner().buf.capacity(), 0);
        io.write_all(b"k").await.unwrap();
        server.await.unwrap();
        assert_eq!(io.read(&mut small).await.unwrap(), 0);
    }
}
