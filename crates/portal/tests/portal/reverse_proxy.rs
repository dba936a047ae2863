//! The portal behind the reverse-proxy configurations shipped for schools (`deploy/apache`,
//! `deploy/nginx`), run by Debian's apache2 and nginx with a self-signed certificate
//! (`scripts/start-reverse-proxies.sh`, one proxy per test on free ports), and who the portal
//! believes a request comes from (`proxy.trusted_proxies`).
//!
//! Through each proxy: the WebSocket upgrade answers 101 and carries bytes both ways, the
//! desktop learns the real client's address, and a client cannot pick its own address for the
//! sign-in brake by sending `X-Forwarded-For`. Directly: the header is ignored unless the peer
//! is a trusted proxy, and malformed or oversized values change nothing.
//!
//! Test clients come from 127.0.0.2 and 127.0.0.3 (loopback, but not the trusted 127.0.0.1), so
//! "the proxy" and "a user" are different addresses on one machine. Under `CI=true` a missing
//! apache2 or nginx fails these tests; elsewhere they say why they did nothing.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::*;

const SCRIPT: &str = "scripts/start-reverse-proxies.sh";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProxyKind {
    Apache,
    Nginx,
}

impl ProxyKind {
    fn name(self) -> &'static str {
        match self {
            ProxyKind::Apache => "apache",
            ProxyKind::Nginx => "nginx",
        }
    }
}

/// Whether apache2 and nginx are installed; fails under CI when they are not.
pub(crate) fn proxies_ready() -> bool {
    let ok = ["/usr/sbin/apache2", "/usr/sbin/nginx"]
        .iter()
        .all(|p| Path::new(p).exists());
    if !ok {
        let msg = format!(
            "reverse-proxy tests need Debian's apache2 and nginx: run {SCRIPT} install \
             (scripts/test.sh does it)"
        );
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{msg}");
        }
        eprintln!("skipped: {msg}");
    }
    ok
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A free port on 127.0.0.1 (free when asked; the proxy binds it right after).
pub(crate) fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().port()
}

/// One apache2 or nginx running the shipped site file in front of a portal; stopped on drop.
pub(crate) struct ReverseProxy {
    /// `https://localhost:{port}`, the portal's `public_url` without the slash.
    pub(crate) url: String,
    pub(crate) port: u16,
    pub(crate) http_port: u16,
    dir: tempfile::TempDir,
}

impl ReverseProxy {
    /// Starts `kind` on `port` (and the HTTP redirect on a free port) in front of `backend`.
    pub(crate) fn start(kind: ProxyKind, port: u16, backend: SocketAddr) -> ReverseProxy {
        Self::start_with(kind, port, backend, &[])
    }

    /// [`ReverseProxy::start`] with more of the script's options (e.g. `--desktop-domain`).
    pub(crate) fn start_with(kind: ProxyKind, port: u16, backend: SocketAddr, extra: &[&str]) -> ReverseProxy {
        let dir = tempfile::tempdir().unwrap();
        let http_port = free_port();
        let out = Command::new(repo_root().join(SCRIPT))
            .args(["start", kind.name(), "--dir"])
            .arg(dir.path())
            .args(["--port", &port.to_string(), "--http-port", &http_port.to_string()])
            .args(["--backend", &backend.to_string()])
            .args(extra)
            .output()
            .expect("the reverse-proxy script runs");
        assert!(
            out.status.success(),
            "{} did not start: {}",
            kind.name(),
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let url = stdout.lines().next().unwrap_or_default().trim().to_owned();
        assert_eq!(url, format!("https://localhost:{port}"));
        ReverseProxy {
            url,
            port,
            http_port,
            dir,
        }
    }

    /// The proxy's error log, for failure messages.
    pub(crate) fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("logs/error.log")).unwrap_or_default()
    }

    /// An HTTPS client to this proxy that connects from `from` (a loopback address), accepts
    /// its self-signed certificate, keeps cookies and speaks HTTP/1.1 (as WebSocket needs).
    pub(crate) fn client(&self, from: &str) -> reqwest::Client {
        portal::install_crypto_provider();
        reqwest::Client::builder()
            .tls_danger_accept_invalid_certs(true)
            .resolve("localhost", SocketAddr::from(([127, 0, 0, 1], self.port)))
            .local_address(from.parse::<IpAddr>().unwrap())
            .http1_only()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap()
    }
}

impl Drop for ReverseProxy {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join(SCRIPT))
            .args(["stop", "--dir"])
            .arg(self.dir.path())
            .status();
    }
}

/// A portal whose public URL is a proxy's, trusting 127.0.0.1 (where the proxy connects
/// from), with alice's lab desktop on a fake Kasm; and that proxy in front of it.
async fn behind(kind: ProxyKind) -> (TestApp, ReverseProxy, testkit::FakeKasm) {
    let fake = fake_desktop("pw-a").await;
    let port = free_port();
    let app = spawn_app_with(&[DesktopSpec::for_fake("lab-a", &fake, "pw-a", &["alice"])], |c| {
        c.public_url = Some(format!("https://localhost:{port}/").parse().unwrap());
        c.proxy.trusted_proxies = "127.0.0.1".parse().unwrap();
    })
    .await;
    let proxy = ReverseProxy::start(kind, port, app.addr);
    (app, proxy, fake)
}

/// The value of header `name` in a recorded request head.
fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}

/// The desktop's view of the last request that reached it at `path`.
fn last_head(fake: &testkit::FakeKasm, path: &str) -> String {
    fake.requests()
        .into_iter()
        .rev()
        .find(|r| r.path == path)
        .unwrap_or_else(|| panic!("no request reached the desktop at {path}: {:?}", fake.requests()))
        .head
}

/// Reads one unmasked WebSocket frame with a short payload (< 126 bytes).
async fn read_frame(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut head))
        .await
        .expect("a frame in time")
        .unwrap();
    assert_eq!(head[1] & 0x80, 0, "server frames are not masked");
    let mut payload = vec![0u8; usize::from(head[1] & 0x7f)];
    stream.read_exact(&mut payload).await.unwrap();
    (head[0], payload)
}

/// A masked binary frame, as a browser sends it.
fn client_frame(payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x82, 0x80 | u8::try_from(payload.len()).unwrap()];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// Through the proxy: 101, the RFB greeting, an echo; the desktop sees the real client
/// (127.0.0.2), not the address the client made up, and the public Host and scheme.
async fn websocket_through(kind: ProxyKind) {
    let (app, proxy, fake) = behind(kind).await;
    let cookie = sign_in(&app, "alice").await.cookie_header().unwrap();
    let client = proxy.client("127.0.0.2");

    let page = client
        .get(format!("{}/desktop/lab-a/", proxy.url))
        .header("cookie", &cookie)
        .header("x-forwarded-for", "203.0.113.77")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200, "{}", proxy.error_log());
    assert!(page.text().await.unwrap().contains("Fake KasmVNC"));
    let head = last_head(&fake, "/");
    assert_eq!(header(&head, "x-forwarded-for").as_deref(), Some("127.0.0.2"), "{head}");
    assert_eq!(header(&head, "x-forwarded-proto").as_deref(), Some("https"), "{head}");
    assert_eq!(
        header(&head, "x-forwarded-host").as_deref(),
        Some(format!("localhost:{}", proxy.port).as_str()),
        "{head}"
    );

    let resp = client
        .get(format!("{}/desktop/lab-a/websockify", proxy.url))
        .header("cookie", &cookie)
        .header("origin", &proxy.url)
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-protocol", "binary")
        .header("x-forwarded-for", "203.0.113.78")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        101,
        "{:?} upgrade through {}: {:?}\n{}",
        kind,
        kind.name(),
        resp.headers(),
        proxy.error_log()
    );
    assert_eq!(resp.headers()["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    let mut ws = resp.upgrade().await.unwrap();
    assert_eq!(read_frame(&mut ws).await, (0x82, b"RFB 003.008\n".to_vec()));
    ws.write_all(&client_frame(b"key and mouse events")).await.unwrap();
    assert_eq!(read_frame(&mut ws).await, (0x82, b"key and mouse events".to_vec()));
    let head = last_head(&fake, "/websockify");
    assert_eq!(header(&head, "x-forwarded-for").as_deref(), Some("127.0.0.2"), "{head}");

    // Plain HTTP only redirects to the HTTPS site.
    let redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{}/view/lab-a", proxy.http_port))
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), 301);
    assert_eq!(
        redirect.headers()["location"],
        format!("https://localhost:{}/view/lab-a", proxy.port).as_str()
    );
}

#[tokio::test]
async fn apache_passes_the_websocket_upgrade_with_101_and_the_real_client_address() {
    if proxies_ready() {
        websocket_through(ProxyKind::Apache).await;
    }
}

#[tokio::test]
async fn nginx_passes_the_websocket_upgrade_with_101_and_the_real_client_address() {
    if proxies_ready() {
        websocket_through(ProxyKind::Nginx).await;
    }
}

/// Posts the sign-in form through `client` (which holds the form's CSRF cookie).
async fn try_sign_in(client: &reqwest::Client, base: &str, password: &str, xff: &str) -> u16 {
    let page = client
        .get(format!("{base}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    client
        .post(format!("{base}/login"))
        .header("x-forwarded-for", xff)
        .form(&[
            ("username", "alice"),
            ("password", password),
            ("csrf_token", &csrf_from(&page)),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Five wrong passwords, each with a different made-up `X-Forwarded-For`, still count
/// against the one real client: its right password is then refused (429); another client's
/// is not.
async fn brake_through(kind: ProxyKind) {
    let (_app, proxy, _fake) = behind(kind).await;
    let guesser = proxy.client("127.0.0.2");
    for i in 0..5 {
        let status = try_sign_in(&guesser, &proxy.url, "wrong", &format!("198.51.100.{i}")).await;
        assert_eq!(status, 401, "guess {i}: {}", proxy.error_log());
    }
    assert_eq!(
        try_sign_in(&guesser, &proxy.url, PASSWORD, "198.51.100.99").await,
        429,
        "a new made-up address does not lift the brake"
    );
    let other = proxy.client("127.0.0.3");
    assert_eq!(try_sign_in(&other, &proxy.url, PASSWORD, "198.51.100.0").await, 303);
}

#[tokio::test]
async fn behind_apache_a_made_up_forwarded_for_does_not_escape_the_sign_in_brake() {
    if proxies_ready() {
        brake_through(ProxyKind::Apache).await;
    }
}

#[tokio::test]
async fn behind_nginx_a_made_up_forwarded_for_does_not_escape_the_sign_in_brake() {
    if proxies_ready() {
        brake_through(ProxyKind::Nginx).await;
    }
}

/// The `X-Forwarded-For` the lab desktop receives for a page request sent with `xff`.
async fn desktop_sees(app: &TestApp, browser: &Browser, fake: &testkit::FakeKasm, xff: &str) -> Option<String> {
    let resp = browser
        .get("/desktop/lab-a/")
        .header("x-forwarded-for", xff)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{xff:?} at {}", app.url);
    header(&last_head(fake, "/"), "x-forwarded-for")
}

#[tokio::test]
async fn forwarded_for_counts_only_from_a_trusted_peer_and_only_when_well_formed() {
    let fake = fake_desktop("pw-a").await;
    let desktops = [DesktopSpec::for_fake("lab-a", &fake, "pw-a", &["alice"])];

    // Nobody trusted (the default), or only a network the peer is not in: the header is noise.
    for trusted in ["", "10.0.0.0/8, fd00::/8"] {
        let app = spawn_app_with(&desktops, |c| c.proxy.trusted_proxies = trusted.parse().unwrap()).await;
        let alice = sign_in(&app, "alice").await;
        assert_eq!(
            desktop_sees(&app, &alice, &fake, "203.0.113.5").await.as_deref(),
            Some("127.0.0.1"),
            "trusted = {trusted:?}"
        );
    }

    // The peer (127.0.0.1) is a trusted proxy: the right-most address that is not one counts.
    let app = spawn_app_with(&desktops, |c| c.proxy.trusted_proxies = "127.0.0.1".parse().unwrap()).await;
    let alice = sign_in(&app, "alice").await;
    let many_hops = vec!["127.0.0.1"; 1000].join(", ");
    for (xff, seen) in [
        ("203.0.113.5", "203.0.113.5"),
        ("1.1.1.1, 203.0.113.5, 127.0.0.1", "203.0.113.5"),
        ("[2001:db8::7]:4711", "2001:db8::7"),
        // Malformed: nothing left of the garbage is believed; the trusted peer is what is known.
        ("nonsense", "127.0.0.1"),
        ("203.0.113.5, 999.1.1.1", "127.0.0.1"),
        ("203.0.113.5,,", "127.0.0.1"),
        // A thousand trusted hops: only the last few are looked at.
        (&format!("203.0.113.5, {many_hops}"), "127.0.0.1"),
    ] {
        assert_eq!(
            desktop_sees(&app, &alice, &fake, xff).await.as_deref(),
            Some(seen),
            "{xff:.60}"
        );
    }

    // Larger than the portal's head limit: refused before any of it is read.
    let huge = vec!["203.0.113.5"; 2000].join(",");
    let resp = alice
        .get("/desktop/lab-a/")
        .header("x-forwarded-for", huge)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 431);
}

#[tokio::test]
async fn a_directly_exposed_portal_ignores_forwarded_for_in_the_sign_in_brake() {
    let app = spawn_app(&[]).await;
    let browser = Browser::new(&app);
    for i in 0..5 {
        let status = try_sign_in(&browser.http, &app.url, "wrong", &format!("198.51.100.{i}")).await;
        assert_eq!(status, 401, "guess {i}");
    }
    assert_eq!(
        try_sign_in(&browser.http, &app.url, PASSWORD, "198.51.100.99").await,
        429
    );
}

/// `check-config` with `IRD_PROXY__TRUSTED_PROXIES=value` and nothing else from the caller's
/// environment: (success, stdout + stderr).
fn check_config_with_trusted(value: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_iserv-remote-desktop"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("IRD_DATA_DIR", dir.path())
        .env("IRD_PROXY__TRUSTED_PROXIES", value)
        .arg("check-config");
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn trusted_proxies_come_from_the_environment_and_bad_entries_name_the_setting() {
    let (ok, text) = check_config_with_trusted("127.0.0.1, 10.0.0.0/8");
    assert!(ok, "{text}");
    assert!(
        text.contains("\"127.0.0.1/32\"") && text.contains("\"10.0.0.0/8\""),
        "{text}"
    );

    for bad in ["10.0.0.5/8", "proxy.school.example", "127.0.0.1, 300.0.0.1"] {
        let (ok, text) = check_config_with_trusted(bad);
        assert!(!ok, "{bad:?} accepted: {text}");
        assert!(text.to_lowercase().contains("proxy.trusted_proxies"), "{bad:?}: {text}");
    }
}
