//! Operations: Prometheus metrics on their own listener after real actions (sign-ins, proxied
//! requests, a WebSocket relay, a Docker start), and the binary's JSON logs.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::SinkExt as _;
use portal::Config;
use reqwest::cookie::CookieStore as _;
use tokio::io::AsyncBufReadExt as _;
use tokio_tungstenite::tungstenite::Message;

use crate::docker::{docker_app, docker_ready, start_desktop};
use crate::helpers::*;

/// `GET /metrics` on the metrics listener; checks the exposition format's content type.
async fn scrape(addr: std::net::SocketAddr) -> String {
    let resp = reqwest::get(format!("http://{addr}/metrics")).await.unwrap();
    assert_eq!(resp.status(), 200);
    let ctype = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
    resp.text().await.unwrap()
}

/// The value of the first sample of `name` carrying all `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| labels.iter().all(|(k, v)| l.contains(&format!("{k}=\"{v}\""))))
        .and_then(|l| l.rsplit(' ').next())
        .map(|v| v.parse().unwrap())
}

/// Scrapes until `check` holds; for values that settle after a background task (a relay
/// ending after its socket closed). Fails with the last scrape after 20 s.
async fn scrape_until(addr: std::net::SocketAddr, what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = scrape(addr).await;
        if check(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "{what} never showed in:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn metrics_default_to_a_loopback_listener() {
    let defaults = Config::default().metrics;
    assert!(defaults.enabled);
    assert!(defaults.listen.ip().is_loopback(), "{}", defaults.listen);
    assert_eq!(defaults.listen.port(), 9020);
}

#[tokio::test]
async fn metrics_count_sign_ins_routes_and_relayed_bytes_on_their_own_listener() {
    let fake = fake_desktop("pw-metrics").await;
    let app = spawn_app(&[DesktopSpec::for_fake("lab", &fake, "pw-metrics", &["alice"])]).await;
    let metrics = app.state.metrics_addr().expect("metrics are on by default");
    assert!(metrics.ip().is_loopback());
    assert_ne!(metrics.port(), app.addr.port());

    // The public port never serves them.
    let public = Browser::new(&app);
    assert_eq!(public.get("/metrics").send().await.unwrap().status(), 404);

    // One failed and one good sign-in.
    let page = public.get("/login").send().await.unwrap().text().await.unwrap();
    let wrong = public
        .post("/login")
        .form(&[
            ("username", "alice"),
            ("password", "not her password"),
            ("csrf_token", &csrf_from(&page)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let alice = sign_in(&app, "alice").await;

    // A proxied page and a relayed WebSocket.
    assert_eq!(alice.get("/desktop/lab/").send().await.unwrap().status(), 200);
    let (mut ws, _) = ws_connect(&app, "/desktop/lab/websockify", WsOpts::as_user(&alice, &app))
        .await
        .unwrap();
    expect_rfb_greeting(&mut ws).await;
    echo(&mut ws, vec![7u8; 100_000]).await;

    let text = scrape(metrics).await;
    let local = |outcome| {
        sample(
            &text,
            "ird_sign_ins_total",
            &[("method", "local"), ("outcome", outcome)],
        )
    };
    assert_eq!(local("success"), Some(1.0), "{text}");
    assert_eq!(local("failure"), Some(1.0), "{text}");
    // Routes as written in the router, never the raw path.
    let count = |route, method, status| {
        sample(
            &text,
            "ird_http_request_duration_seconds_count",
            &[("route", route), ("method", method), ("status", status)],
        )
    };
    assert_eq!(count("/desktop/{id}/", "GET", "2xx"), Some(1.0), "{text}");
    assert_eq!(count("/desktop/{id}/{*rest}", "GET", "1xx"), Some(1.0), "{text}");
    assert_eq!(count("/login", "POST", "4xx"), Some(1.0), "{text}");
    assert_eq!(
        count("unmatched", "GET", "4xx"),
        Some(1.0),
        "the public /metrics 404: {text}"
    );
    assert!(
        !text.contains("route=\"/desktop/lab"),
        "raw paths leak into labels: {text}"
    );
    assert_eq!(sample(&text, "ird_proxy_websockets_open", &[]), Some(1.0), "{text}");
    let bytes = |direction| sample(&text, "ird_proxy_websocket_bytes_total", &[("direction", direction)]).unwrap();
    assert!(bytes("client_to_desktop") >= 100_000.0, "{text}");
    assert!(bytes("desktop_to_client") >= 100_000.0 + 12.0, "{text}");

    // Closing the socket ends the relay, and the gauge follows.
    ws.send(Message::Close(None)).await.unwrap();
    drop(ws);
    scrape_until(metrics, "no open WebSocket", |t| {
        sample(t, "ird_proxy_websockets_open", &[]) == Some(0.0)
    })
    .await;
}

#[tokio::test]
async fn metrics_show_desktops_by_state_and_type_and_start_durations() {
    if !docker_ready() {
        return;
    }
    let (app, _scope) = docker_app("metrics", |_| {}).await;
    let metrics = app.state.metrics_addr().unwrap();
    let before = scrape(metrics).await;
    assert_eq!(
        sample(&before, "ird_desktops", &[("state", "running"), ("type", "fake")]),
        Some(0.0),
        "every state and type is there from the start, zeros included: {before}"
    );

    let alice = sign_in(&app, "alice").await;
    let (status, _, events) = start_desktop(&alice, "fake").await;
    assert_eq!(status, 202);
    assert_eq!(events.last().unwrap()["step"], "ready", "{events:?}");

    let text = scrape(metrics).await;
    assert_eq!(
        sample(&text, "ird_desktops", &[("state", "running"), ("type", "fake")]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "ird_desktops", &[("state", "running"), ("type", "other")]),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "ird_desktop_start_duration_seconds_count",
            &[("outcome", "ready")]
        ),
        Some(1.0),
        "{text}"
    );
    assert!(sample(&text, "ird_desktop_start_duration_seconds_sum", &[("outcome", "ready")]).unwrap() > 0.0);
}

/// The binary with `IRD_LOG_FORMAT=json`: every line on standard error is a JSON object,
/// standard output stays empty, and no password, cookie or secret shows up anywhere.
#[tokio::test]
async fn json_logs_are_one_object_per_line_without_secrets() {
    const SECRET_KEY: &str = "flask-era-secret-key-4711";
    const WRONG: &str = "wrong-password-0815";
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("portal.toml");
    std::fs::write(&config, "runtime = \"static\"\n").unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_iserv-remote-desktop"));
    for (k, _) in std::env::vars() {
        if k.starts_with("IRD_") || k.starts_with("KASM_") || k.starts_with("DATABASE_") || k.starts_with("OAUTH_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd
        .arg("serve")
        .env("IRD_LOG_FORMAT", "json")
        .env("IRD_LISTEN", "127.0.0.1:0")
        .env("IRD_METRICS__LISTEN", "127.0.0.1:0")
        .env("IRD_DATA_DIR", &data)
        // The file named by IRD_CONFIG (as the systemd unit's env file may do) adds to the rest.
        .env("IRD_CONFIG", &config)
        .env("SECRET_KEY", SECRET_KEY)
        // Our own crates at debug: secrets must not show up there either.
        .env(
            "RUST_LOG",
            "info,iserv_remote_desktop=debug,portal=debug,desktop_proxy=debug,portal_store=debug",
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel::<serde_json::Value>();
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let collected = lines.clone();
    let reader = tokio::spawn(async move {
        while let Ok(Some(line)) = stderr.next_line().await {
            if let Ok(v) = serde_json::from_str(&line) {
                let _ = events_tx.send(v);
            }
            collected.lock().unwrap().push(line);
        }
    });
    // The start-up events, in order: listening, then the first admin's password file.
    let mut next_event = async |message: &str| loop {
        let v = tokio::time::timeout(Duration::from_secs(60), events.recv())
            .await
            .unwrap_or_else(|_| panic!("no {message:?} event in time"))
            .unwrap_or_else(|| panic!("the portal exited before {message:?}"));
        if v["message"].as_str().is_some_and(|m| m.starts_with(message)) {
            break v;
        }
    };
    let listening = next_event("IServ Remote Desktop listening").await;
    let created = next_event("no accounts existed").await;
    let url = format!("http://{}", listening["listen"].as_str().unwrap());
    let metrics = listening["metrics"].as_str().unwrap().to_owned();
    assert!(metrics.starts_with("http://127.0.0.1:"), "{listening}");

    // The first admin's password went to a file, not into the log.
    let file = created["file"].as_str().unwrap();
    assert_eq!(std::path::Path::new(file), data.join("initial-admin-password"));
    let password = std::fs::read_to_string(file).unwrap();
    let password = password.trim().to_owned();
    portal::install_crypto_provider();
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let http = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (pw, status) in [(WRONG, 401), (password.as_str(), 303)] {
        let page = http
            .get(format!("{url}/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let resp = http
            .post(format!("{url}/login"))
            .form(&[
                ("username", "admin"),
                ("password", pw),
                ("csrf_token", &csrf_from(&page)),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), status);
    }
    let cookies = jar
        .cookies(&url.parse().unwrap())
        .map(|c| c.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let cookie_values: Vec<String> = cookies
        .split("; ")
        .filter_map(|c| c.split_once('=').map(|(_, v)| v.to_owned()))
        .filter(|v| v.len() >= 16)
        .collect();
    assert!(!cookie_values.is_empty(), "signed in: {cookies}");
    assert_eq!(http.get(format!("{url}/")).send().await.unwrap().status(), 200);

    // The binary's metrics listener answers too.
    let text = reqwest::get(&metrics).await.unwrap().text().await.unwrap();
    assert!(
        text.contains("ird_sign_ins_total{method=\"local\",outcome=\"success\"} 1"),
        "{text}"
    );

    // A clean stop (SIGTERM) logs as well.
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").arg(&pid).status().unwrap().success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the portal stops on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
    reader.await.unwrap();
    let mut stdout = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout)
        .await
        .unwrap();
    assert_eq!(stdout, "", "with JSON logs nothing but JSON is written");

    let lines = lines.lock().unwrap().clone();
    assert!(lines.len() >= 3, "{lines:?}");
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["timestamp"].is_string() && v["level"].is_string(), "{line}");
        for secret in [password.as_str(), WRONG, SECRET_KEY]
            .into_iter()
            .chain(cookie_values.iter().map(String::as_str))
        {
            assert!(!line.contains(secret), "a secret in the log: {line}");
        }
    }
    assert!(
        lines.iter().any(|l| l.contains("initial-admin-password")),
        "the log says where the first password is: {lines:?}"
    );
}
