//! The fake KasmVNC over real sockets: KasmVNC 1.3's auth, handshake and HTTP rules hold.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::{SinkExt as _, StreamExt as _};
use rustls::pki_types::ServerName;
use sha1::{Digest as _, Sha1};
use testkit::{Behaviour, FakeKasm, FakeKasmConfig, Outcome};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

const PASSWORD: &str = "s3cret";
/// The RFC 6455 example key; its accept value is known.
const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const TIMEOUT: Duration = Duration::from_secs(10);

async fn start() -> FakeKasm {
    FakeKasm::start(FakeKasmConfig::new(PASSWORD))
        .await
        .expect("fake kasm starts")
}

async fn connect_tls(kasm: &FakeKasm) -> TlsStream<TcpStream> {
    // Kasm's certificate is self-signed and made at each start: accept it as the portal does.
    let config = desktop_proxy::unverified_tls_config().expect("TLS client config");
    let tcp = TcpStream::connect(kasm.addr()).await.expect("tcp connect");
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("tls handshake")
}

fn basic() -> String {
    format!("Basic {}", BASE64.encode(format!("kasm_user:{PASSWORD}")))
}

/// Sends one raw request and reads until the server closes (one request per connection).
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, request: &str) -> String {
    stream.write_all(request.as_bytes()).await.expect("write request");
    let mut response = Vec::new();
    tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut response))
        .await
        .expect("server closes in time")
        .expect("read response");
    String::from_utf8_lossy(&response).into_owned()
}

fn status(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code")
}

fn get(path: &str, extra_headers: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra_headers}\r\n")
}

/// A browser-like upgrade with title-case names, as KasmVNC 1.3 requires.
fn ws_request(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost:6901\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nOrigin: https://localhost:6901\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: {WS_KEY}\r\nSec-WebSocket-Protocol: binary, base64\r\n\
         Authorization: {}\r\n\r\n",
        basic()
    )
}

/// Reads the 101 head byte by byte, so no WebSocket bytes are swallowed.
async fn read_response_head<S: AsyncRead + Unpin>(stream: &mut S) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let byte = tokio::time::timeout(TIMEOUT, stream.read_u8())
            .await
            .expect("head in time")
            .expect("read head byte");
        head.push(byte);
    }
    String::from_utf8(head).expect("ascii head")
}

async fn open_ws(kasm: &FakeKasm) -> (String, WebSocketStream<TlsStream<TcpStream>>) {
    let mut tls = connect_tls(kasm).await;
    tls.write_all(ws_request("/websockify").as_bytes())
        .await
        .expect("write upgrade");
    let head = read_response_head(&mut tls).await;
    let config = WebSocketConfig::default()
        .max_message_size(Some(16 << 20))
        .max_frame_size(Some(16 << 20));
    let ws = WebSocketStream::from_raw_socket(tls, Role::Client, Some(config)).await;
    (head, ws)
}

async fn next_message(ws: &mut WebSocketStream<TlsStream<TcpStream>>) -> Message {
    tokio::time::timeout(TIMEOUT, ws.next())
        .await
        .expect("message in time")
        .expect("stream open")
        .expect("valid message")
}

#[tokio::test]
async fn no_auth_gets_401_with_websockify_realm() {
    let kasm = start().await;
    let response = exchange(connect_tls(&kasm).await, &get("/", "")).await;
    assert_eq!(status(&response), 401, "{response}");
    assert!(response.contains("WWW-Authenticate: Basic realm=\"Websockify\"\r\n"));
    assert!(response.contains("Connection: close\r\n"));
    let requests = kasm.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].outcome, Outcome::Unauthorized);
    assert_eq!((requests[0].method.as_str(), requests[0].path.as_str()), ("GET", "/"));
}

#[tokio::test]
async fn lowercase_authorization_header_gets_401() {
    let kasm = start().await;
    let header = format!("authorization: {}\r\n", basic());
    let response = exchange(connect_tls(&kasm).await, &get("/", &header)).await;
    assert_eq!(status(&response), 401, "{response}");
    assert_eq!(kasm.requests()[0].outcome, Outcome::Unauthorized);
}

#[tokio::test]
async fn wrong_password_gets_401() {
    let kasm = start().await;
    let header = format!("Authorization: Basic {}\r\n", BASE64.encode("kasm_user:wrong"));
    let response = exchange(connect_tls(&kasm).await, &get("/", &header)).await;
    assert_eq!(status(&response), 401, "{response}");
}

#[tokio::test]
async fn index_is_served_with_coep_coop_and_connection_close() {
    let kasm = start().await;
    let header = format!("Authorization: {}\r\n", basic());
    for path in ["/", "/index.html?autoconnect=1", "/vnc.html"] {
        let response = exchange(connect_tls(&kasm).await, &get(path, &header)).await;
        assert_eq!(status(&response), 200, "{path}: {response}");
        assert!(response.contains("Connection: close\r\n"));
        assert!(response.contains("Cross-Origin-Embedder-Policy: require-corp\r\n"));
        assert!(response.contains("Cross-Origin-Opener-Policy: same-origin\r\n"));
        assert!(response.contains("Content-Type: text/html\r\n"));
        let (head, body) = response.split_once("\r\n\r\n").expect("head and body");
        assert!(head.contains(&format!("Content-Length: {}\r\n", body.len())));
        assert!(body.contains("Fake KasmVNC"));
    }
    let outcomes: Vec<_> = kasm.requests().iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes, vec![Outcome::File(200); 3]);
}

#[tokio::test]
async fn other_files_screenshot_headers_and_404() {
    let kasm = start().await;
    let header = format!("Authorization: {}\r\nX-Probe: seen\r\n", basic());
    let js = exchange(connect_tls(&kasm).await, &get("/app/ui.js", &header)).await;
    assert_eq!(status(&js), 200);
    assert!(js.contains("Content-Type: application/javascript\r\n"));

    let png = exchange(connect_tls(&kasm).await, &get("/api/get_screenshot", &header)).await;
    assert_eq!(status(&png), 200);
    assert!(png.contains("Content-Type: image/png\r\n"));
    assert!(png.contains("\r\n\r\n\u{fffd}PNG"), "PNG signature follows the head");

    let echoed = exchange(connect_tls(&kasm).await, &get("/__headers", &header)).await;
    assert_eq!(status(&echoed), 200);
    assert!(echoed.ends_with(&get("/__headers", &header)), "{echoed}");

    let missing = exchange(connect_tls(&kasm).await, &get("/nope", &header)).await;
    assert_eq!(status(&missing), 404);
    assert!(missing.contains("Cross-Origin-Opener-Policy: same-origin\r\n"));
}

#[tokio::test]
async fn title_case_upgrade_gets_101_greeting_and_echo() {
    let kasm = start().await;
    let (head, mut ws) = open_ws(&kasm).await;
    assert!(head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"), "{head}");
    assert!(head.contains("Sec-WebSocket-Protocol: binary\r\n"), "{head}");
    assert!(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));

    let greeting = next_message(&mut ws).await;
    assert_eq!(greeting, Message::Binary(b"RFB 003.008\n".to_vec().into()));

    for message in [
        Message::Binary(vec![7u8].into()),
        Message::Text("hello".into()),
        Message::Binary(b"RFB 003.008\n".to_vec().into()),
    ] {
        ws.send(message.clone()).await.expect("send");
        assert_eq!(next_message(&mut ws).await, message);
    }
    ws.send(Message::Ping(b"p".to_vec().into())).await.expect("ping");
    assert_eq!(next_message(&mut ws).await, Message::Pong(b"p".to_vec().into()));
    ws.close(None).await.expect("close");

    assert_eq!(kasm.websocket_sessions(), 1);
    let request = &kasm.requests()[0];
    assert_eq!(request.outcome, Outcome::WebSocket);
    assert_eq!(request.path, "/websockify");
}

#[tokio::test]
async fn one_mebibyte_message_echoes_byte_exact() {
    let kasm = start().await;
    let (_, mut ws) = open_ws(&kasm).await;
    let _greeting = next_message(&mut ws).await;
    let payload: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 31 % 251) as u8).collect();
    ws.send(Message::Binary(payload.clone().into()))
        .await
        .expect("send 1 MiB");
    match next_message(&mut ws).await {
        Message::Binary(echo) => assert!(echo.as_ref() == payload.as_slice(), "echo differs"),
        other => panic!("expected binary echo, got {other:?}"),
    }
}

#[tokio::test]
async fn lowercase_host_is_not_a_websocket() {
    let kasm = start().await;
    let request = ws_request("/websockify").replace("\r\nHost: ", "\r\nhost: ");
    let response = exchange(connect_tls(&kasm).await, &request).await;
    assert_eq!(status(&response), 404, "{response}");
    assert_eq!(kasm.websocket_sessions(), 0);
    assert_eq!(kasm.requests()[0].outcome, Outcome::File(404));

    // The WS path is not checked, so on `/` the same mistake looks like a working page.
    let request = ws_request("/").replace("\r\nConnection: ", "\r\nconnection: ");
    let response = exchange(connect_tls(&kasm).await, &request).await;
    assert_eq!(status(&response), 200, "{response}");
    assert_eq!(kasm.websocket_sessions(), 0);
}

/// Why a proxy must write its upstream handshake itself: tungstenite writes `Host:` and
/// `Connection:` title-case but extra headers in lowercase, so `authorization:` gets 401.
#[tokio::test]
async fn tungstenite_client_request_is_refused_for_lowercase_authorization() {
    let kasm = start().await;
    let tls = connect_tls(&kasm).await;
    let mut request = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
        "wss://localhost:{}/websockify",
        kasm.addr().port()
    ))
    .expect("request");
    let headers = request.headers_mut();
    headers.insert("Authorization", basic().parse().expect("header value"));
    headers.insert("Origin", "https://localhost".parse().expect("header value"));
    headers.insert("Sec-WebSocket-Protocol", "binary".parse().expect("header value"));
    let result = tokio_tungstenite::client_async(request, tls).await;
    assert!(result.is_err(), "KasmVNC 1.3 would not upgrade this");
    let recorded = &kasm.requests()[0];
    assert!(recorded.head.contains("\r\nHost: "), "{}", recorded.head);
    assert!(recorded.head.contains("\r\nConnection: "), "{}", recorded.head);
    assert!(recorded.head.contains("\r\nauthorization: "), "{}", recorded.head);
    assert_eq!(recorded.outcome, Outcome::Unauthorized);
}

#[tokio::test]
async fn plain_mode_rejects_post_and_oversized_heads() {
    let mut cfg = FakeKasmConfig::new(PASSWORD);
    cfg.tls = false;
    let kasm = FakeKasm::start(cfg).await.expect("start");
    assert!(kasm.url().starts_with("http://127.0.0.1:"));
    let auth = format!("Authorization: {}\r\n", basic());

    let post = format!("POST / HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 5\r\n\r\nhello");
    let response = exchange(TcpStream::connect(kasm.addr()).await.expect("tcp"), &post).await;
    assert_eq!(status(&response), 405, "{response}");

    let padding = format!("X-Big: {}\r\n", "a".repeat(9000));
    let big = get("/", &format!("{auth}{padding}"));
    let response = exchange(TcpStream::connect(kasm.addr()).await.expect("tcp"), &big).await;
    assert_eq!(status(&response), 400, "{response}");

    let outcomes: Vec<_> = kasm.requests().iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes, vec![Outcome::MethodNotAllowed, Outcome::BadRequest]);
}

#[tokio::test]
async fn huge_handshake_pads_the_101() {
    let mut cfg = FakeKasmConfig::new(PASSWORD);
    cfg.behaviour = Behaviour::HugeHandshake(20_000);
    let kasm = FakeKasm::start(cfg).await.expect("start");
    let (head, mut ws) = open_ws(&kasm).await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(head.len() > 20_000, "head is {} bytes", head.len());
    assert!(head.contains("\r\nX-Padding-0: x"));
    assert_eq!(
        next_message(&mut ws).await,
        Message::Binary(b"RFB 003.008\n".to_vec().into())
    );
}

#[tokio::test]
async fn slow_server_delays_the_tls_handshake() {
    let mut cfg = FakeKasmConfig::new(PASSWORD);
    cfg.behaviour = Behaviour::Slow(Duration::from_millis(300));
    let kasm = FakeKasm::start(cfg).await.expect("start");
    let started = std::time::Instant::now();
    let _tls = connect_tls(&kasm).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[test]
fn accept_key_matches_rfc_example() {
    // Guards the constant used above against a typo.
    let mut sha = Sha1::new();
    sha.update(format!("{WS_KEY}258EAFA5-E914-47DA-95CA-C5AB0DC85B11").as_bytes());
    assert_eq!(BASE64.encode(sha.finalize()), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

#[tokio::test]
async fn dropping_the_server_ends_open_sessions() {
    let kasm = start().await;
    let (_, mut ws) = open_ws(&kasm).await;
    let _greeting = next_message(&mut ws).await;
    drop(kasm);
    let after = tokio::time::timeout(TIMEOUT, ws.next())
        .await
        .expect("session ends in time");
    assert!(
        !matches!(after, Some(Ok(Message::Binary(_) | Message::Text(_)))),
        "no data after the server is gone: {after:?}"
    );
}
