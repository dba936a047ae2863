//! A small RFB (VNC, RFC 6143) client for the portal's view of a desktop's screen: it reads
//! the framebuffer and never sends input.
//!
//! The desktop at the other end is hostile (a student can replace her desktop's VNC server),
//! so every size the server announces is checked against [`Limits`] before anything is
//! allocated, every rectangle must lie inside the framebuffer, text the server sends is
//! skipped without being stored, and every read inside a message has a timeout. No input
//! message (KeyEvent, PointerEvent, ClientCutText) exists in this crate: a viewer built on it
//! cannot type into the desktop.
//!
//! The client speaks to any `AsyncRead + AsyncWrite` byte stream; the portal feeds it the
//! binary messages of the desktop's VNC WebSocket.

mod auth;
mod client;
mod error;
mod framebuffer;
mod handshake;
mod preview;
mod wire;

pub use client::{Client, Event};
pub use error::RfbError;
pub use framebuffer::Framebuffer;
pub use handshake::Limits;
pub use preview::{PreviewError, jpeg, scale_down};
