//! The hostile fake over real sockets: its page, service worker and headers, and that its own
//! WebSocket still works like KasmVNC's while one naming the other desktop is refused.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::{SinkExt as _, StreamExt as _};
use testkit::hostile::{CLEAR_SITE_DATA, HOSTILE_HEADERS};
use testkit::{Behaviour, FakeKasm, FakeKasmConfig, HostileSetup, Outcome};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

const PASSWORD: &str = "s3cret";
const TIMEOUT: Duration = Duration::from_secs(10);

/// Plain HTTP keeps these tests about the behaviour; TLS is the same code path as the
/// normal fake's, tested in `fake_kasm.rs`.
async fn start_hostile() -> FakeKasm {
    let cfg = FakeKasmConfig {
        tls: false,
        behaviour: Behaviour::Hostile(HostileSetup::new("mallory", "bob-desk")),
        ..FakeKasmConfig::new(PASSWORD)
    };
    FakeKasm::start(cfg).await.expect("hostile fake starts")
}

fn auth() -> String {
    format!(
        "Authorization: Basic {}\r\n",
        BASE64.encode(format!("kasm_user:{PASSWORD}"))
    )
}

/// One request, read until the fake closes (one request per connection, as KasmVNC).
async fn exchange(kasm: &FakeKasm, request: &str) -> String {
    let mut tcp = TcpStream::connect(kasm.addr()).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(TIMEOUT, tcp.read_to_end(&mut response))
        .await
        .expect("fake closes in time")
        .unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

fn get(path: &str, headers: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{headers}\r\n")
}

fn upgrade(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Origin: http://localhost\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: binary\r\n{}\r\n",
        auth()
    )
}

fn assert_hostile_headers(response: &str) {
    // Each header line with its CRLF, the last one included.
    let head = format!("{}\r\n", response.split("\r\n\r\n").next().unwrap());
    for (name, value) in HOSTILE_HEADERS.iter().chain([&CLEAR_SITE_DATA]) {
        assert!(
            head.contains(&format!("\r\n{name}: {value}\r\n")),
            "{name} missing:\n{head}"
        );
    }
}

#[tokio::test]
async fn every_page_and_error_carries_the_hostile_headers() {
    let kasm = start_hostile().await;
    kasm.set_portal_origin_hint("http://127.0.0.1:5020");
    let page = exchange(&kasm, &get("/vnc.html?autoconnect=1", &auth())).await;
    assert!(page.starts_with("HTTP/1.1 200 "), "{page}");
    assert_hostile_headers(&page);
    // Still what KasmVNC sends on every response.
    assert!(page.contains("Cross-Origin-Embedder-Policy: require-corp\r\n"));
    assert!(page.contains("<pre id=\"results\">"));
    assert!(page.contains("attacks-done"));
    assert!(page.contains(r#""attacker":"mallory""#));
    assert!(page.contains(r#""portalHint":"http://127.0.0.1:5020""#));
    assert!(!page.contains("src="), "no external resources");

    for (request, status) in [(get("/", ""), "401"), (get("/nope", &auth()), "404")] {
        let response = exchange(&kasm, &request).await;
        assert!(response.starts_with(&format!("HTTP/1.1 {status} ")), "{response}");
        assert_hostile_headers(&response);
    }
}

#[tokio::test]
async fn serves_a_service_worker_at_sw_js() {
    let kasm = start_hostile().await;
    let sw = exchange(&kasm, &get("/sw.js", &auth())).await;
    assert!(sw.starts_with("HTTP/1.1 200 "), "{sw}");
    assert!(sw.contains("Content-Type: application/javascript\r\n"));
    assert!(sw.contains("Service-Worker-Allowed: /\r\n"));
    assert!(sw.contains("self.registration.scope"));
    // A normal fake has no service worker.
    let normal = FakeKasm::start(FakeKasmConfig {
        tls: false,
        ..FakeKasmConfig::new(PASSWORD)
    })
    .await
    .unwrap();
    let none = exchange(&normal, &get("/sw.js", &auth())).await;
    assert!(none.starts_with("HTTP/1.1 404 "), "{none}");
    assert!(!none.contains("Service-Worker-Allowed"));
}

#[tokio::test]
async fn its_own_websocket_greets_and_echoes_with_hostile_headers_on_the_101() {
    let kasm = start_hostile().await;
    let mut tcp = TcpStream::connect(kasm.addr()).await.unwrap();
    tcp.write_all(upgrade("/websockify").as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tokio::time::timeout(TIMEOUT, tcp.read_u8()).await.unwrap().unwrap());
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(head.contains("Set-Cookie: evil=1; Path=/\r\n"), "{head}");
    let mut ws = WebSocketStream::from_raw_socket(tcp, Role::Client, None).await;
    let greeting = tokio::time::timeout(TIMEOUT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(greeting, Message::Binary(b"RFB 003.008\n".to_vec().into()));
    ws.send(Message::Binary(vec![1, 2, 3].into())).await.unwrap();
    let echo = tokio::time::timeout(TIMEOUT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(echo, Message::Binary(vec![1, 2, 3].into()));
    assert_eq!(kasm.websocket_sessions(), 1);
}

#[tokio::test]
async fn an_upgrade_naming_the_other_desktop_is_refused() {
    let kasm = start_hostile().await;
    let response = exchange(&kasm, &upgrade("/desktop/bob-desk/websockify")).await;
    assert!(response.starts_with("HTTP/1.1 404 "), "{response}");
    assert_eq!(kasm.websocket_sessions(), 0);
    assert_eq!(kasm.requests()[0].outcome, Outcome::File(404));
}
