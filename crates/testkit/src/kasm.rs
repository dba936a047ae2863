//! A fake KasmVNC 1.3.x desktop server: real sockets, real TLS, KasmVNC's exact handshake rules.
//!
//! The rules mirror `common/network/websocket.c` of KasmVNC up to 1.3.x (what the kasmweb
//! images ship), including its case-sensitive substring matches, so that a proxy test that
//! passes against this double would also pass against a real Kasm container. In particular:
//!
//! * auth needs the literal substring `Authorization: Basic ` (a lowercase `authorization:`
//!   header, as hyper and tungstenite write it, gets 401);
//! * a request is only a WebSocket upgrade if it contains `\r\nHost: ` and `\r\nConnection: `
//!   verbatim (lowercase names get a file or 404 instead of 101);
//! * one request per connection: every plain HTTP response ends with the server closing.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::{SinkExt as _, StreamExt as _};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha1::{Digest as _, Sha1};
use tokio::io::{AsyncBufRead, AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncWrite};
use tokio::io::{AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::hostile::{HostileSetup, SERVICE_WORKER_JS};

/// Largest request head accepted; a longer one gets 400 (a proxy must not send huge heads).
const MAX_HEAD: usize = 8 * 1024;
/// Large enough for any test message (1 MiB and more) yet bounded, so a runaway test fails.
const MAX_WS_MESSAGE: usize = 16 * 1024 * 1024;
/// The RFC 6455 GUID appended to the client key before hashing.
const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// What KasmVNC's Xvnc sends first on a fresh RFB connection.
const RFB_GREETING: &[u8] = b"RFB 003.008\n";

/// The client page (`/`, `/index.html`, `/vnc.html`). Like Kasm's noVNC client it opens its
/// WebSocket at `/{path}` (`path` from the query string, default `websockify`) offering the
/// `binary` subprotocol; the RFB greeting it receives goes into `#rfb` and the title becomes
/// `connected`, so a browser test can see the whole WebSocket path work. A connection that
/// errors or closes first shows `failed` in `#status`.
const INDEX_HTML: &str = r#"<!DOCTYPE html>
<html><head><meta charset="utf-8">
<title>Fake KasmVNC</title><script src="app/ui.js"></script></head>
<body><h1>Fake KasmVNC</h1><p>A test double for a KasmVNC 1.3 desktop.</p>
<p id="status">connecting</p>
<pre id="rfb"></pre>
<script>
"use strict";
(function () {
  var status = document.getElementById("status");
  var done = false;
  var path = new URLSearchParams(location.search).get("path") || "websockify";
  var ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/" + path, ["binary"]);
  ws.binaryType = "arraybuffer";
  ws.onmessage = function (e) {
    if (done) return;
    done = true;
    document.getElementById("rfb").textContent =
      typeof e.data === "string" ? e.data : new TextDecoder().decode(new Uint8Array(e.data));
    status.textContent = "connected";
    document.title = "connected";
  };
  var fail = function () {
    if (done) return;
    done = true;
    status.textContent = "failed";
  };
  ws.onerror = fail;
  ws.onclose = fail;
})();
</script>
</body></html>
"#;
const UI_JS: &str = "// Fake KasmVNC client script.\n\"use strict\";\n\
window.fakeKasm = { version: \"1.3.0-fake\" };\n";
/// A 1x1 transparent PNG; real enough for an `<img>` or an image decoder.
const SCREENSHOT_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49,
    0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0x64, 0x60, 0xf8, 0x5f, 0x0f, 0x00, 0x02, 0x87, 0x01, 0x80, 0xeb, 0x47, 0xba,
    0x92, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// How a [`FakeKasm`] is set up.
#[derive(Clone, Debug)]
pub struct FakeKasmConfig {
    /// Basic Auth user; Kasm's full-control user is `kasm_user`.
    pub username: String,
    /// Basic Auth password (Kasm's `VNC_PW`).
    pub password: String,
    /// HTTPS with a fresh self-signed certificate (like Kasm) when true, plain HTTP otherwise.
    pub tls: bool,
    /// Misbehaviour to inject, for timeout and limit tests.
    pub behaviour: Behaviour,
}

impl FakeKasmConfig {
    /// Kasm's defaults: user `kasm_user`, TLS on, normal behaviour.
    pub fn new(password: impl Into<String>) -> Self {
        Self {
            username: "kasm_user".to_owned(),
            password: password.into(),
            tls: true,
            behaviour: Behaviour::Normal,
        }
    }
}

/// Ways the fake can misbehave, to test the proxy's timeouts and limits.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// Behave like KasmVNC.
    Normal,
    /// Waits this long after accepting a connection before reading/answering anything
    /// (before the TLS handshake, too).
    Slow(Duration),
    /// Answers a valid WS upgrade with a 101 carrying at least this many extra header bytes
    /// (`X-Padding-i: xxxx` lines; exact unless the last line would be too short to fit).
    HugeHandshake(usize),
    /// A student's own web server turned against whoever opens it (see [`crate::hostile`]):
    /// the client page runs attacks, `/sw.js` is a service worker, every response (the 101
    /// included) carries hostile headers, and upgrades naming the other desktop get 404.
    /// Everything else, its own `/websockify` included, works as with `Normal`.
    Hostile(HostileSetup),
}

/// What the fake did with one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 401: missing or wrong `Authorization: Basic ` (checked before anything else).
    Unauthorized,
    /// 101 and a WebSocket session.
    WebSocket,
    /// A plain GET answered with this status (200 or 404).
    File(u16),
    /// 405: a plain request other than GET.
    MethodNotAllowed,
    /// 400: the head was larger than 8 KiB.
    BadRequest,
}

/// One request head as received, and what was done with it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// Raw bytes up to and including `\r\n\r\n` (lossy UTF-8); for an oversized head, the
    /// bytes read before giving up.
    pub head: String,
    /// First word of the request line.
    pub method: String,
    /// Second word of the request line, query string included.
    pub path: String,
    /// What the fake answered.
    pub outcome: Outcome,
}

/// Completed TLS handshakes of a [`FakeKasm`], by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlsHandshakes {
    /// Full handshakes.
    pub full: usize,
    /// Handshakes that resumed an earlier session.
    pub resumed: usize,
}

/// State shared between the handle and the connection tasks.
#[derive(Default)]
struct Shared {
    requests: Mutex<Vec<RecordedRequest>>,
    websocket_sessions: AtomicUsize,
    full_handshakes: AtomicUsize,
    resumed_handshakes: AtomicUsize,
    /// The portal's origin, for a hostile page that cannot discover it.
    portal_origin_hint: Mutex<Option<String>>,
}

impl Shared {
    fn record(&self, req: RecordedRequest) {
        // A panicking test thread must not hide the remaining requests from other assertions.
        self.requests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(req);
    }
}

/// Per-server settings every connection needs.
struct ConnCtx {
    /// `Basic ` credentials exactly as KasmVNC compares them after base64 decoding.
    credentials: Vec<u8>,
    behaviour: Behaviour,
    shared: Arc<Shared>,
}

/// A running fake KasmVNC server; dropping it stops the server and all its connections.
pub struct FakeKasm {
    addr: SocketAddr,
    tls: bool,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl FakeKasm {
    /// Starts on `127.0.0.1` with an OS-chosen port.
    pub async fn start(cfg: FakeKasmConfig) -> io::Result<FakeKasm> {
        Self::start_on(cfg, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// Starts on `addr` (e.g. `0.0.0.0:6901` inside a container).
    pub async fn start_on(cfg: FakeKasmConfig, addr: SocketAddr) -> io::Result<FakeKasm> {
        // Build the TLS config before binding, so a failure leaves no listener behind.
        let acceptor = if cfg.tls {
            Some(TlsAcceptor::from(Arc::new(self_signed_server_config()?)))
        } else {
            None
        };
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let ctx = Arc::new(ConnCtx {
            credentials: format!("{}:{}", cfg.username, cfg.password).into_bytes(),
            behaviour: cfg.behaviour,
            shared: shared.clone(),
        });
        let task = tokio::spawn(accept_loop(listener, acceptor, ctx));
        Ok(FakeKasm {
            addr,
            tls: cfg.tls,
            shared,
            task,
        })
    }

    /// The bound address (with the real port when started on port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://IP:PORT` (or `http://` when TLS is off), without a trailing slash.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Every request head received so far, in order of arrival.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// How many WebSocket upgrades were accepted (101 sent).
    pub fn websocket_sessions(&self) -> usize {
        self.shared.websocket_sessions.load(Ordering::SeqCst)
    }

    /// Tells a hostile fake's page the portal's origin, in case it cannot discover it
    /// (a framing page that hides `ancestorOrigins` and the referrer). No effect otherwise.
    pub fn set_portal_origin_hint(&self, origin: &str) {
        *self
            .shared
            .portal_origin_hint
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(origin.to_owned());
    }

    /// Completed TLS handshakes so far: how many were full (certificate, key exchange,
    /// signature) and how many resumed an earlier session — a proxy that opens a connection
    /// per request should resume, as KasmVNC's OpenSSL allows.
    pub fn tls_handshakes(&self) -> TlsHandshakes {
        TlsHandshakes {
            full: self.shared.full_handshakes.load(Ordering::SeqCst),
            resumed: self.shared.resumed_handshakes.load(Ordering::SeqCst),
        }
    }
}

impl Drop for FakeKasm {
    fn drop(&mut self) {
        // The accept task owns the listener and the JoinSet of connections, so aborting it
        // closes the port and every open session (a proxy test can watch the upstream die).
        self.task.abort();
    }
}

/// Runs a fake on `addr` until SIGTERM or SIGINT, printing `fake-kasm listening on URL`.
///
/// Made for the `fake-kasm` binary, which is PID 1 in its container and so gets no default
/// signal handling from the kernel: without this, `docker stop` would wait for SIGKILL.
pub async fn run_fake_kasm_until_signal(cfg: FakeKasmConfig, addr: SocketAddr) -> io::Result<()> {
    let server = FakeKasm::start_on(cfg, addr).await?;
    println!("fake-kasm listening on {}", server.url());
    wait_for_shutdown_signal().await?;
    drop(server);
    Ok(())
}

#[cfg(unix)]
async fn wait_for_shutdown_signal() -> io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

#[cfg(not(unix))]
async fn wait_for_shutdown_signal() -> io::Result<()> {
    tokio::signal::ctrl_c().await
}

/// Kasm makes a self-signed certificate at each start; so does the fake.
fn self_signed_server_config() -> io::Result<rustls::ServerConfig> {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .map_err(io::Error::other)?;
    let cert = CertificateDer::from(certified.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
    // An explicit provider: tests must not depend on (or fight over) a process-wide default.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .map_err(io::Error::other)
}

async fn accept_loop(listener: TcpListener, acceptor: Option<TlsAcceptor>, ctx: Arc<ConnCtx>) {
    // Owning the connections here means aborting this task ends them all.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let acceptor = acceptor.clone();
                    let ctx = ctx.clone();
                    connections.spawn(async move {
                        if let Err(err) = serve_connection(tcp, acceptor, &ctx).await {
                            tracing::debug!(%peer, %err, "fake-kasm connection ended with an error");
                        }
                    });
                }
                Err(err) => {
                    // E.g. EMFILE: back off instead of spinning, then keep serving.
                    tracing::warn!(%err, "fake-kasm accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            // Reap finished connections so the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(tcp: TcpStream, acceptor: Option<TlsAcceptor>, ctx: &ConnCtx) -> io::Result<()> {
    if let Behaviour::Slow(delay) = ctx.behaviour {
        tokio::time::sleep(delay).await;
    }
    // Small writes (handshake, RFB greeting) should leave at once, as KasmVNC's do.
    tcp.set_nodelay(true)?;
    match acceptor {
        Some(acceptor) => {
            let tls = acceptor.accept(tcp).await?;
            let counter = match tls.get_ref().1.handshake_kind() {
                Some(rustls::HandshakeKind::Resumed) => &ctx.shared.resumed_handshakes,
                _ => &ctx.shared.full_handshakes,
            };
            counter.fetch_add(1, Ordering::SeqCst);
            serve_stream(tls, ctx).await
        }
        None => serve_stream(tcp, ctx).await,
    }
}

/// Outcome of reading a request head.
enum Head {
    Complete(Vec<u8>),
    TooLarge(Vec<u8>),
    /// The peer closed (or sent a partial head and closed); KasmVNC answers nothing.
    Eof,
}

async fn read_head<R: AsyncBufRead + Unpin>(reader: &mut R) -> io::Result<Head> {
    let mut head = Vec::new();
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(Head::Eof);
        }
        let before = head.len();
        head.extend_from_slice(available);
        // The terminator may straddle two reads.
        let search_from = before.saturating_sub(3);
        if let Some(pos) = find(&head[search_from..], b"\r\n\r\n") {
            let end = search_from + pos + 4;
            // Leave bytes after the head (e.g. an early WS frame) in the reader.
            reader.consume(end - before);
            head.truncate(end);
            if end > MAX_HEAD {
                return Ok(Head::TooLarge(head));
            }
            return Ok(Head::Complete(head));
        }
        let taken = head.len() - before;
        reader.consume(taken);
        if head.len() > MAX_HEAD {
            return Ok(Head::TooLarge(head));
        }
    }
}

async fn serve_stream<S>(stream: S, ctx: &ConnCtx) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // Buffered reads find the end of the head cheaply; BufReader also passes writes through,
    // so the same value later carries the WebSocket without losing already-buffered bytes.
    let mut stream = BufReader::new(stream);
    let hostile = match &ctx.behaviour {
        Behaviour::Hostile(setup) => Some(setup),
        _ => None,
    };
    // Every plain response carries a hostile fake's headers.
    let extra_headers = hostile.map(HostileSetup::headers).unwrap_or_default();
    let plain_response = |status: u16, content_type: &str, body: &[u8], extra: &[(&str, &str)]| {
        let all: Vec<(&str, &str)> = extra.iter().chain(&extra_headers).copied().collect();
        plain_response(status, content_type, body, &all)
    };
    let raw = match read_head(&mut stream).await? {
        Head::Eof => return Ok(()),
        Head::TooLarge(raw) => {
            record(ctx, &raw, Outcome::BadRequest);
            let response = plain_response(400, "text/plain", b"400 Bad Request, too large", &[]);
            return finish_plain(stream, &response).await;
        }
        Head::Complete(raw) => raw,
    };

    if !authorized(&raw, &ctx.credentials) {
        record(ctx, &raw, Outcome::Unauthorized);
        let response = plain_response(
            401,
            "text/plain",
            b"401 Unauthorized",
            &[("WWW-Authenticate", "Basic realm=\"Websockify\"")],
        );
        return finish_plain(stream, &response).await;
    }

    if let Some(upgrade) = parse_ws_upgrade(&raw) {
        let (_, path) = request_line(&raw);
        if hostile.is_some_and(|h| h.refuses_websocket(&path)) {
            // So that a WebSocket the page opens there can only be the other desktop's.
            record(ctx, &raw, Outcome::File(404));
            return finish_plain(stream, &plain_response(404, "text/plain", b"404", &[])).await;
        }
        record(ctx, &raw, Outcome::WebSocket);
        let response = switching_protocols(&upgrade, &ctx.behaviour);
        stream.write_all(&response).await?;
        stream.flush().await?;
        ctx.shared.websocket_sessions.fetch_add(1, Ordering::SeqCst);
        return echo_websocket(stream).await;
    }

    let (method, path) = request_line(&raw);
    let response = if method != "GET" {
        record(ctx, &raw, Outcome::MethodNotAllowed);
        plain_response(405, "text/plain", b"405 Method Not Allowed", &[("Allow", "GET")])
    } else {
        // KasmVNC ignores the query string when looking up a file; `/` is the index.
        let file = path.split('?').next().unwrap_or_default();
        let found: Option<(&str, Vec<u8>)> = match (file, hostile) {
            ("/" | "/index.html" | "/vnc.html", Some(setup)) => {
                let hint = ctx
                    .shared
                    .portal_origin_hint
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .clone();
                Some(("text/html", setup.page(hint.as_deref()).into_bytes()))
            }
            ("/sw.js", Some(_)) => Some(("application/javascript", SERVICE_WORKER_JS.as_bytes().to_vec())),
            _ => match file {
                "/" | "/index.html" | "/vnc.html" => Some(("text/html", INDEX_HTML.as_bytes().to_vec())),
                "/app/ui.js" => Some(("application/javascript", UI_JS.as_bytes().to_vec())),
                "/api/get_screenshot" => Some(("image/png", SCREENSHOT_PNG.to_vec())),
                // Shows what actually arrived, e.g. through a proxy into a container.
                "/__headers" => Some(("text/plain", raw.clone())),
                _ => None,
            },
        };
        match found {
            Some((content_type, body)) => {
                record(ctx, &raw, Outcome::File(200));
                plain_response(200, content_type, &body, &[])
            }
            None => {
                record(ctx, &raw, Outcome::File(404));
                plain_response(404, "text/plain", b"404", &[])
            }
        }
    };
    finish_plain(stream, &response).await
}

/// Writes a plain response, then closes like KasmVNC (one request per connection).
async fn finish_plain<S>(mut stream: BufReader<S>, response: &[u8]) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    stream.write_all(response).await?;
    stream.flush().await?;
    // Sends TLS close_notify and a FIN, so clients reading to EOF see a clean end.
    stream.shutdown().await?;
    // Closing with unread bytes (e.g. a POST body) would make the kernel send RST, which can
    // destroy the response before the client reads it; drain briefly instead.
    let mut sink = [0u8; 4096];
    let drain = async { while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {} };
    let _ = tokio::time::timeout(Duration::from_millis(200), drain).await;
    Ok(())
}

fn record(ctx: &ConnCtx, raw: &[u8], outcome: Outcome) {
    let (method, path) = request_line(raw);
    ctx.shared.record(RecordedRequest {
        head: String::from_utf8_lossy(raw).into_owned(),
        method,
        path,
        outcome,
    });
}

fn request_line(raw: &[u8]) -> (String, String) {
    let head = String::from_utf8_lossy(raw);
    let line = head.split("\r\n").next().unwrap_or_default();
    let mut words = line.split(' ');
    let method = words.next().unwrap_or_default().to_owned();
    let path = words.next().unwrap_or_default().to_owned();
    (method, path)
}

/// KasmVNC 1.3: `strstr(handshake, "Authorization: Basic ")` (case-sensitive), value up to
/// `\r`, base64-decoded and compared with `user:password`.
fn authorized(raw: &[u8], credentials: &[u8]) -> bool {
    let marker = b"Authorization: Basic ";
    let Some(pos) = find(raw, marker) else {
        return false;
    };
    let value = &raw[pos + marker.len()..];
    let end = value.iter().position(|&b| b == b'\r').unwrap_or(value.len());
    BASE64.decode(&value[..end]).is_ok_and(|decoded| decoded == credentials)
}

/// What the 101 answer needs from a valid upgrade request.
struct WsUpgrade {
    key: String,
    protocol: String,
}

/// KasmVNC 1.3's `parse_handshake`: `GET … HTTP/1.1`, `Upgrade: websocket`, and the headers
/// below, each found as a `\r\nName: ` substring (colon and one space, as the C code does).
/// `\r\nHost: ` and `\r\nConnection: ` are case-sensitive there; the rest are not.
fn parse_ws_upgrade(raw: &[u8]) -> Option<WsUpgrade> {
    let line_end = find(raw, b"\r\n")?;
    let line = &raw[..line_end];
    if !(line.starts_with(b"GET ") && line.ends_with(b" HTTP/1.1")) || raw.len() < 92 {
        return None;
    }
    if find(raw, b"\r\nHost: ").is_none() || find(raw, b"\r\nConnection: ").is_none() {
        return None;
    }
    find_ci(raw, b"Upgrade: websocket")?;
    header_ci(raw, "Origin").or_else(|| header_ci(raw, "Sec-WebSocket-Origin"))?;
    header_ci(raw, "Sec-WebSocket-Version")?;
    let key = header_ci(raw, "Sec-WebSocket-Key")?;
    let offered = header_ci(raw, "Sec-WebSocket-Protocol")?;
    // KasmVNC takes strtok(protocols, ",") — the first offer — and says "null" if empty.
    let first = offered.split(',').next().unwrap_or_default().trim();
    let protocol = if first.is_empty() { "null" } else { first }.to_owned();
    Some(WsUpgrade { key, protocol })
}

/// Value of the first `\r\nName: ` (name matched case-insensitively, like C `strcasestr`),
/// up to the next `\r\n`, untrimmed.
fn header_ci(raw: &[u8], name: &str) -> Option<String> {
    let marker = format!("\r\n{name}: ");
    let start = find_ci(raw, marker.as_bytes())? + marker.len();
    let rest = &raw[start..];
    let end = find(rest, b"\r\n").unwrap_or(rest.len());
    Some(String::from_utf8_lossy(&rest[..end]).into_owned())
}

fn find_ci(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

fn switching_protocols(upgrade: &WsUpgrade, behaviour: &Behaviour) -> Vec<u8> {
    let mut sha = Sha1::new();
    sha.update(upgrade.key.as_bytes());
    sha.update(WS_GUID.as_bytes());
    let accept = BASE64.encode(sha.finalize());
    let mut response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: {}\r\n",
        upgrade.protocol
    );
    match behaviour {
        Behaviour::HugeHandshake(extra) => response.push_str(&padding_headers(*extra)),
        // Browsers take cookies from a 101 too.
        Behaviour::Hostile(setup) => {
            for (name, value) in setup.headers() {
                response.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        Behaviour::Normal | Behaviour::Slow(_) => {}
    }
    response.push_str("\r\n");
    response.into_bytes()
}

/// `X-Padding-i: xxx…` lines totalling at least `extra` bytes (exactly, where possible).
fn padding_headers(extra: usize) -> String {
    let mut out = String::with_capacity(extra + 64);
    let mut remaining = extra;
    let mut index = 0usize;
    while remaining > 0 {
        let prefix = format!("X-Padding-{index}: ");
        let overhead = prefix.len() + 2;
        // ~1 KiB lines: realistic header sizes, so limits on single lines are not what trips.
        // The last line takes up any remainder too short to make a line of its own.
        let rest = remaining.saturating_sub(overhead);
        let value_len = if rest > 1000 + 64 { 1000 } else { rest.max(1) };
        out.push_str(&prefix);
        out.extend(std::iter::repeat_n('x', value_len));
        out.push_str("\r\n");
        remaining = remaining.saturating_sub(overhead + value_len);
        index += 1;
    }
    out
}

async fn echo_websocket<S>(stream: BufReader<S>) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_WS_MESSAGE))
        .max_frame_size(Some(MAX_WS_MESSAGE));
    let mut ws = WebSocketStream::from_raw_socket(stream, Role::Server, Some(config)).await;
    ws.send(Message::Binary(RFB_GREETING.to_vec().into()))
        .await
        .map_err(io::Error::other)?;
    while let Some(message) = ws.next().await {
        match message.map_err(io::Error::other)? {
            echo @ (Message::Binary(_) | Message::Text(_)) => {
                ws.send(echo).await.map_err(io::Error::other)?;
            }
            // tungstenite answers pings and close frames itself.
            Message::Close(_) => break,
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
    }
    Ok(())
}

/// Plain HTTP response with the headers KasmVNC puts on every one.
fn plain_response(status: u16, content_type: &str, body: &[u8], extra: &[(&str, &str)]) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Unknown",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nServer: KasmVNC/4.0 (fake)\r\nConnection: close\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cross-Origin-Embedder-Policy: require-corp\r\nCross-Origin-Opener-Policy: same-origin\r\n",
        body.len()
    );
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut response = head.into_bytes();
    response.extend_from_slice(body);
    response
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_is_exact_for_reasonable_sizes() {
        for n in [20, 100, 999, 1000, 1017, 1080, 5000, 65_536] {
            assert_eq!(padding_headers(n).len(), n, "padding for {n}");
        }
        assert!(padding_headers(3).len() >= 3);
    }

    #[test]
    fn title_case_upgrade_parses_and_picks_first_protocol() {
        let raw = b"GET /websockify HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n\
upgrade: websocket\r\norigin: https://x\r\nsec-websocket-version: 13\r\n\
sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-protocol: binary, base64\r\n\r\n";
        let upgrade = parse_ws_upgrade(raw).expect("valid upgrade");
        assert_eq!(upgrade.protocol, "binary");
        let response = String::from_utf8(switching_protocols(&upgrade, &Behaviour::Normal)).expect("ascii response");
        // The RFC 6455 example key and accept value.
        assert!(response.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    }

    #[test]
    fn lowercase_connection_is_not_an_upgrade() {
        let raw = b"GET /websockify HTTP/1.1\r\nHost: x\r\nconnection: Upgrade\r\n\
Upgrade: websocket\r\nOrigin: https://x\r\nSec-WebSocket-Version: 13\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: binary\r\n\r\n";
        assert!(parse_ws_upgrade(raw).is_none());
    }
}
