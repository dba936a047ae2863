//! Reads and writes on the desktop's byte stream, each read bounded in time.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, BufStream};

use crate::RfbError;

/// Buffered stream with a timeout on every read and write.
pub(crate) struct Wire<S> {
    io: BufStream<S>,
    timeout: Duration,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire<S> {
    pub(crate) fn new(stream: S, timeout: Duration) -> Self {
        Self {
            // Small messages (headers, one pixel row at a time) need not each reach the socket.
            io: BufStream::with_capacity(16 * 1024, 4 * 1024, stream),
            timeout,
        }
    }

    /// Fills `buf` completely, or fails after the read timeout.
    pub(crate) async fn exact(&mut self, buf: &mut [u8]) -> Result<(), RfbError> {
        match tokio::time::timeout(self.timeout, self.io.read_exact(buf)).await {
            Ok(r) => r.map(|_| ()).map_err(RfbError::from),
            Err(_) => Err(RfbError::Timeout(self.timeout)),
        }
    }

    pub(crate) async fn u8(&mut self) -> Result<u8, RfbError> {
        let mut b = [0; 1];
        self.exact(&mut b).await?;
        Ok(b[0])
    }

    /// The first byte of the next message, waiting as long as the caller's own timeout lets
    /// it: a server answers an incremental update request only when the screen changes.
    /// Cancel-safe: a one-byte read either completes or consumes nothing (the buffer keeps
    /// whatever arrived).
    pub(crate) async fn first_byte(&mut self) -> Result<u8, RfbError> {
        Ok(self.io.read_u8().await?)
    }

    pub(crate) async fn u16(&mut self) -> Result<u16, RfbError> {
        let mut b = [0; 2];
        self.exact(&mut b).await?;
        Ok(u16::from_be_bytes(b))
    }

    pub(crate) async fn u32(&mut self) -> Result<u32, RfbError> {
        let mut b = [0; 4];
        self.exact(&mut b).await?;
        Ok(u32::from_be_bytes(b))
    }

    pub(crate) async fn i32(&mut self) -> Result<i32, RfbError> {
        let mut b = [0; 4];
        self.exact(&mut b).await?;
        Ok(i32::from_be_bytes(b))
    }

    /// Reads and drops `n` bytes through a small stack buffer: whatever a server announces,
    /// nothing of its size is allocated.
    pub(crate) async fn skip(&mut self, mut n: u64) -> Result<(), RfbError> {
        let mut scratch = [0u8; 1024];
        while n > 0 {
            let k = usize::try_from(n.min(scratch.len() as u64)).unwrap_or(scratch.len());
            self.exact(&mut scratch[..k]).await?;
            n -= k as u64;
        }
        Ok(())
    }

    /// Writes `bytes` and flushes them to the stream.
    pub(crate) async fn send(&mut self, bytes: &[u8]) -> Result<(), RfbError> {
        let write = async {
            self.io.write_all(bytes).await?;
            self.io.flush().await
        };
        match tokio::time::timeout(self.timeout, write).await {
            Ok(r) => r.map_err(RfbError::from),
            Err(_) => Err(RfbError::Timeout(self.timeout)),
        }
    }
}
