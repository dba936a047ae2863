//! An RFB session after the handshake: update requests out, server messages in.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::handshake::{Limits, handshake};
use crate::wire::Wire;
use crate::{Framebuffer, RfbError};

/// What one server message did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A framebuffer update was applied.
    Updated,
    /// The screen changed size (and the update was applied); request a full update.
    Resized,
    /// Bell, clipboard text or colour map entries: read and dropped.
    Ignored,
}

/// A read-only RFB client. It has no way to send keys, pointer moves or clipboard text.
pub struct Client<S> {
    wire: Wire<S>,
    fb: Framebuffer,
    limits: Limits,
    /// Pixel rows read from the server before conversion; reused, at most 64 KiB.
    scratch: Vec<u8>,
}

/// Bytes of raw pixels read at once.
const CHUNK: usize = 64 * 1024;

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    /// Runs the handshake on `stream` (within `limits.message_timeout`). `password` is used
    /// only if the server asks for VNC Authentication.
    pub async fn connect(stream: S, password: Option<&[u8]>, limits: Limits) -> Result<Self, RfbError> {
        let mut wire = Wire::new(stream, limits.read_timeout);
        let init = tokio::time::timeout(limits.message_timeout, handshake(&mut wire, password, &limits))
            .await
            .map_err(|_| RfbError::Timeout(limits.message_timeout))??;
        Ok(Self {
            wire,
            fb: Framebuffer::new(init.width, init.height),
            limits,
            scratch: Vec::new(),
        })
    }

    pub fn framebuffer(&self) -> &Framebuffer {
        &self.fb
    }

    /// FramebufferUpdateRequest for the whole screen; `incremental` asks only for changes
    /// (the server then answers when something changed).
    pub async fn request_update(&mut self, incremental: bool) -> Result<(), RfbError> {
        let mut msg = [3, u8::from(incremental), 0, 0, 0, 0, 0, 0, 0, 0];
        msg[6..8].copy_from_slice(&self.fb.width().to_be_bytes());
        msg[8..10].copy_from_slice(&self.fb.height().to_be_bytes());
        self.wire.send(&msg).await
    }

    /// Reads and applies the next server message; `Ok(None)` if none began within `wait`.
    /// Once a message has begun it must arrive completely within the limits' timeouts.
    /// Cancelling this future is safe while it waits for a message to begin.
    pub async fn next_event(&mut self, wait: Duration) -> Result<Option<Event>, RfbError> {
        let kind = match tokio::time::timeout(wait, self.wire.first_byte()).await {
            Err(_) => return Ok(None),
            Ok(kind) => kind?,
        };
        let limit = self.limits.message_timeout;
        tokio::time::timeout(limit, self.message(kind))
            .await
            .map_err(|_| RfbError::Timeout(limit))?
            .map(Some)
    }

    async fn message(&mut self, kind: u8) -> Result<Event, RfbError> {
        match kind {
            0 => self.framebuffer_update().await,
            1 => {
                // SetColourMapEntries: not used in true colour; skip its entries.
                let mut head = [0u8; 5];
                self.wire.exact(&mut head).await?;
                let count = u16::from_be_bytes([head[3], head[4]]);
                self.wire.skip(u64::from(count) * 6).await?;
                Ok(Event::Ignored)
            }
            2 => Ok(Event::Ignored),
            3 => {
                // ServerCutText: the student's clipboard is not the portal's business.
                let mut pad = [0u8; 3];
                self.wire.exact(&mut pad).await?;
                // The extended clipboard sends a negative length; its size is the magnitude.
                let len = self.wire.i32().await?.unsigned_abs();
                if len > self.limits.max_cut_text {
                    return Err(RfbError::Protocol("clipboard text too long"));
                }
                self.wire.skip(len.into()).await?;
                Ok(Event::Ignored)
            }
            _ => Err(RfbError::Protocol("unknown server message")),
        }
    }

    async fn framebuffer_update(&mut self) -> Result<Event, RfbError> {
        let _pad = self.wire.u8().await?;
        let rects = self.wire.u16().await?;
        let mut event = Event::Updated;
        for _ in 0..rects {
            let (x, y) = (self.wire.u16().await?, self.wire.u16().await?);
            let (w, h) = (self.wire.u16().await?, self.wire.u16().await?);
            match self.wire.i32().await? {
                0 => self.raw(x, y, w, h).await?,
                1 => {
                    let (sx, sy) = (self.wire.u16().await?, self.wire.u16().await?);
                    if !self.fb.contains(x, y, w, h) || !self.fb.contains(sx, sy, w, h) {
                        return Err(RfbError::Protocol("rectangle outside the screen"));
                    }
                    self.fb.copy_rect(sx, sy, x, y, w, h);
                }
                -223 => {
                    self.limits.check(w, h)?;
                    self.fb = Framebuffer::new(w, h);
                    event = Event::Resized;
                }
                _ => return Err(RfbError::Protocol("encoding not negotiated")),
            }
        }
        Ok(event)
    }

    /// Raw pixels, read in chunks of whole rows (one row of the widest screen is 32 KiB).
    async fn raw(&mut self, x: u16, y: u16, w: u16, h: u16) -> Result<(), RfbError> {
        if !self.fb.contains(x, y, w, h) {
            return Err(RfbError::Protocol("rectangle outside the screen"));
        }
        if w == 0 || h == 0 {
            return Ok(());
        }
        let row = usize::from(w) * 4;
        let rows_per_chunk = (CHUNK / row).max(1);
        let mut buf = std::mem::take(&mut self.scratch);
        let mut done = 0u16;
        while done < h {
            let n = usize::from(h - done).min(rows_per_chunk);
            buf.resize(n * row, 0);
            if let Err(e) = self.wire.exact(&mut buf).await {
                self.scratch = buf;
                return Err(e);
            }
            for (i, pixels) in buf.chunks_exact(row).enumerate() {
                // n ≤ h - done, so this stays below h.
                self.fb.put_row(x, y + done + i as u16, pixels);
            }
            done += n as u16;
        }
        self.scratch = buf;
        Ok(())
    }
}
