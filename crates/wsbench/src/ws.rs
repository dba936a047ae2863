//! Opens a WebSocket with a hand-written upgrade request, then waits for the RFB greeting.
//!
//! The request is written by hand because KasmVNC (and the fake) match `Authorization: Basic `,
//! `Host: ` and `Connection: ` case-sensitively, and tungstenite writes extra headers in
//! lowercase.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use rustls::pki_types::ServerName;
use sha1::{Digest as _, Sha1};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::target::Target;

/// What KasmVNC's Xvnc sends first.
pub(crate) const RFB_GREETING: &[u8] = b"RFB 003.008\n";
/// TCP connect, TLS, upgrade and greeting together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Any single awaited message.
pub(crate) const RECV_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_RESPONSE_HEAD: usize = 16 * 1024;
/// Largest message accepted back (the fake's own limit).
const MAX_MESSAGE: usize = 16 * 1024 * 1024;
const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A plain or TLS byte stream.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub(crate) type Ws = WebSocketStream<Box<dyn Io>>;

/// Opens WebSockets to one target.
pub(crate) struct Connector {
    target: Target,
    tls: Option<TlsConnector>,
    config: WebSocketConfig,
}

impl Connector {
    pub(crate) fn new(target: Target) -> anyhow::Result<Connector> {
        let tls = if target.tls {
            Some(TlsConnector::from(Arc::new(desktop_proxy::unverified_tls_config()?)))
        } else {
            None
        };
        Ok(Connector {
            target,
            tls,
            config: WebSocketConfig::default()
                .max_message_size(Some(MAX_MESSAGE))
                .max_frame_size(Some(MAX_MESSAGE)),
        })
    }

    /// Sets the client's WebSocket read buffer (tungstenite's default is 128 KiB per connection).
    pub(crate) fn with_read_buffer(mut self, bytes: usize) -> Connector {
        self.config = self.config.read_buffer_size(bytes);
        self
    }

    pub(crate) fn target(&self) -> &Target {
        &self.target
    }

    /// A WebSocket whose RFB greeting has been read.
    pub(crate) async fn connect(&self) -> anyhow::Result<Ws> {
        tokio::time::timeout(CONNECT_TIMEOUT, self.connect_inner())
            .await
            .with_context(|| format!("opening {} took over {CONNECT_TIMEOUT:?}", self.target.url))?
    }

    async fn connect_inner(&self) -> anyhow::Result<Ws> {
        let tcp = TcpStream::connect(("127.0.0.1", self.target.port))
            .await
            .with_context(|| format!("connecting to 127.0.0.1:{}", self.target.port))?;
        // RFB input events are a few bytes; Nagle would add delay on both paths alike.
        tcp.set_nodelay(true)?;
        let mut io: Box<dyn Io> = match &self.tls {
            Some(tls) => {
                let name = ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
                Box::new(tls.connect(name, tcp).await.context("TLS handshake")?)
            }
            None => Box::new(tcp),
        };
        let key = BASE64.encode(rand::random::<[u8; 16]>());
        io.write_all(self.request_head(&key).as_bytes()).await?;
        io.flush().await?;

        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 1024];
        let end = loop {
            let n = io.read(&mut chunk).await?;
            if n == 0 {
                bail!("the server closed the connection during the upgrade");
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos + 4;
            }
            if buf.len() > MAX_RESPONSE_HEAD {
                bail!("upgrade response head over {MAX_RESPONSE_HEAD} bytes");
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let status = head.lines().next().unwrap_or_default();
        if !status.starts_with("HTTP/1.1 101") {
            bail!("upgrade refused by {}: {status}", self.target.url);
        }
        if accept_value(&head).as_deref() != Some(expected_accept(&key).as_str()) {
            bail!("wrong or missing Sec-WebSocket-Accept");
        }
        // Frames that arrived together with the head (the greeting, usually) stay in `rest`.
        let rest = buf[end..].to_vec();
        let mut ws = WebSocketStream::from_partially_read(io, rest, Role::Client, Some(self.config)).await;
        let greeting = recv_binary(&mut ws).await.context("waiting for the RFB greeting")?;
        if greeting.as_ref() != RFB_GREETING {
            bail!(
                "expected the RFB greeting, got {:?}",
                String::from_utf8_lossy(&greeting)
            );
        }
        Ok(ws)
    }

    fn request_head(&self, key: &str) -> String {
        let t = &self.target;
        let mut head = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Protocol: binary\r\n\
             Origin: {}\r\nUser-Agent: wsbench\r\n",
            t.path_and_query, t.host, t.origin
        );
        if let Some(auth) = &t.authorization {
            head.push_str(&format!("Authorization: {auth}\r\n"));
        }
        if let Some(cookie) = &t.cookie {
            head.push_str(&format!("Cookie: {cookie}\r\n"));
        }
        head.push_str("\r\n");
        head
    }
}

fn expected_accept(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(WS_GUID.as_bytes());
    BASE64.encode(sha.finalize())
}

fn accept_value(head: &str) -> Option<String> {
    head.lines().skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("sec-websocket-accept")
            .then(|| value.trim().to_owned())
    })
}

/// The next binary message, skipping control frames; errors on close, text or timeout.
pub(crate) async fn recv_binary<S>(ws: &mut S) -> anyhow::Result<Bytes>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let next = tokio::time::timeout(RECV_TIMEOUT, ws.next())
            .await
            .with_context(|| format!("no message within {RECV_TIMEOUT:?}"))?;
        match next {
            Some(Ok(Message::Binary(data))) => return Ok(data),
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
            Some(Ok(Message::Text(text))) => bail!("unexpected text message {text:?}"),
            Some(Ok(Message::Close(frame))) => bail!("closed by the server: {frame:?}"),
            Some(Err(err)) => return Err(err.into()),
            None => bail!("the connection ended"),
        }
    }
}

/// Sends a close frame, best effort and briefly.
pub(crate) async fn close(mut ws: Ws) {
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
}

/// Sends one binary message.
pub(crate) async fn send_binary<S>(ws: &mut S, data: Bytes) -> anyhow::Result<()>
where
    S: futures_util::Sink<Message, Error = tokio_tungstenite::tungstenite::Error> + Unpin,
{
    tokio::time::timeout(RECV_TIMEOUT, ws.send(Message::Binary(data)))
        .await
        .with_context(|| format!("send blocked for {RECV_TIMEOUT:?}"))??;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_matches_rfc_example() {
        assert_eq!(
            expected_accept("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        let head = "HTTP/1.1 101 Switching\r\nsec-websocket-accept:  abc \r\n\r\n";
        assert_eq!(accept_value(head).as_deref(), Some("abc"));
    }
}
