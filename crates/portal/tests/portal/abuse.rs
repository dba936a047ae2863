//! Abuse and load: the sign-in brake, the bound on password checks, and what anonymous
//! requests may write to the audit log. Clients come from many addresses through a trusted
//! reverse proxy (127.0.0.1), as `X-Forwarded-For` tells the portal.

use std::time::Duration;

use portal_store::{AuditFilter, AuditKind};

use crate::helpers::*;

fn behind_proxy(c: &mut portal::Config) {
    c.proxy.trusted_proxies = "127.0.0.1".parse().unwrap();
}

/// Failed-sign-in entries of the audit log, newest first.
async fn failed_sign_ins(app: &TestApp) -> Vec<portal_store::AuditEntry> {
    let filter = AuditFilter {
        kind: Some(AuditKind::SignInFailed),
        limit: 500,
        ..Default::default()
    };
    app.state.store.audit_page(&filter).await.unwrap().0
}

#[tokio::test]
async fn guessing_from_many_addresses_cannot_lock_the_administrator_out() {
    let app = spawn_app_with(&[], behind_proxy).await;
    let own = "192.168.10.20";
    assert_eq!(sign_in_from(&app, "root", PASSWORD, own).await.status(), 303);
    let mut statuses = Vec::new();
    for i in 0..40 {
        let ip = format!("10.0.{}.{}", i / 200, i % 200 + 1);
        statuses.push(sign_in_from(&app, "root", "guess", &ip).await.status().as_u16());
    }
    assert!(statuses.iter().all(|s| *s == 401 || *s == 429), "{statuses:?}");
    assert!(
        statuses.iter().filter(|s| **s == 401).count() <= 10,
        "the attacker is slowed down: {statuses:?}"
    );
    assert_eq!(
        sign_in_from(&app, "root", PASSWORD, own).await.status(),
        303,
        "the administrator still signs in from her own address"
    );
}

#[tokio::test]
async fn ipv6_clients_count_per_64_network() {
    let app = spawn_app_with(&[], behind_proxy).await;
    for i in 1..=5 {
        let ip = format!("2001:db8:0:1::{i:x}");
        assert_eq!(sign_in_from(&app, "alice", "guess", &ip).await.status(), 401, "{ip}");
    }
    let same_64 = sign_in_from(&app, "alice", "guess", "2001:db8:0:1:ffff::99").await;
    assert_eq!(
        same_64.status(),
        429,
        "a new address in the same /64 is the same client"
    );
    assert_eq!(
        sign_in_from(&app, "alice", "guess", "2001:db8:0:2::1").await.status(),
        401,
        "another /64 is another client"
    );
}

#[tokio::test]
async fn a_full_brake_drops_its_oldest_entries_and_keeps_braking() {
    let app = spawn_app_with(&[], behind_proxy).await;
    // A flood of made-up names from many addresses fills the brake's table (30 000 keys).
    for i in 0..12_000u32 {
        let [_, a, b, c] = i.to_be_bytes();
        app.state
            .login_limiter
            .record_failure(&format!("made-up-{i}"), std::net::IpAddr::from([10, a, b, c]));
    }
    for _ in 0..5 {
        assert_eq!(sign_in_from(&app, "alice", "guess", "172.16.0.9").await.status(), 401);
    }
    assert_eq!(
        sign_in_from(&app, "alice", "guess", "172.16.0.9").await.status(),
        429,
        "the brake still counts when its table was full"
    );
}

#[tokio::test]
async fn concurrent_password_checks_are_bounded() {
    let app = spawn_app_with(&[], |c| {
        behind_proxy(c);
        c.limits.max_concurrent_password_checks = 1;
        c.limits.password_check_wait_ms = 1;
    })
    .await;
    let attempts = (0..24).map(|i| {
        let app = &app;
        async move {
            let resp = sign_in_from(app, &format!("someone{i}"), "guess", &format!("10.3.0.{i}")).await;
            let status = resp.status().as_u16();
            let retry = resp.headers().get("retry-after").cloned();
            (status, retry, resp.text().await.unwrap())
        }
    });
    let answers = futures_util::future::join_all(attempts).await;
    let busy: Vec<_> = answers.iter().filter(|(s, ..)| *s == 503).collect();
    assert!(
        !busy.is_empty(),
        "24 checks at once with one slot: some are turned away"
    );
    assert!(answers.iter().all(|(s, ..)| *s == 503 || *s == 401));
    for (_, retry, text) in busy {
        assert!(retry.is_some());
        assert!(text.contains("Very many people are signing in"), "{text}");
    }
    // Once the crowd is gone, sign-in works again.
    assert_eq!(sign_in_from(&app, "alice", PASSWORD, "10.3.1.1").await.status(), 303);
}

#[tokio::test]
async fn bogus_callbacks_write_a_few_audit_entries_per_address_and_a_count_of_the_rest() {
    let app = spawn_app_with(&[], behind_proxy).await;
    let b = Browser::new(&app);
    for _ in 0..40 {
        let resp = b
            .get("/auth/callback?state=forged&code=forged")
            .header("x-forwarded-for", "10.7.7.7")
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_client_error() || resp.status().is_server_error());
    }
    b.get("/auth/callback?state=forged")
        .header("x-forwarded-for", "10.7.7.8")
        .send()
        .await
        .unwrap();
    let from =
        |entries: &[portal_store::AuditEntry], ip: &str| entries.iter().filter(|e| e.detail.contains(ip)).count();
    let entries = failed_sign_ins(&app).await;
    assert_eq!(from(&entries, "10.7.7.7"), 10, "{entries:#?}");
    assert_eq!(from(&entries, "10.7.7.8"), 1, "other addresses keep their share");
    // At the end of the minute the rest is summed up in one entry.
    app.state.anonymous_audit.flush(&app.state.store, Duration::ZERO).await;
    let entries = failed_sign_ins(&app).await;
    assert_eq!(from(&entries, "10.7.7.7"), 11);
    assert!(entries[0].detail.contains("and 30 more"), "{:?}", entries[0]);
}

#[tokio::test]
async fn a_password_typed_as_username_is_not_written_to_the_audit_log() {
    let app = spawn_app_with(&[], behind_proxy).await;
    let typed = "Tr0ub4dor&3-secret";
    assert_eq!(sign_in_from(&app, typed, "guess", "10.8.8.8").await.status(), 401);
    assert_eq!(sign_in_from(&app, "bob", "guess", "10.8.8.8").await.status(), 401);
    let entries = failed_sign_ins(&app).await;
    let all = format!("{entries:?}").to_lowercase();
    assert!(!all.contains("tr0ub4dor"), "{all}");
    let unknown = entries
        .iter()
        .find(|e| e.detail.contains("unknown username"))
        .expect("{all}");
    assert_eq!(unknown.username, None);
    assert!(
        entries.iter().any(|e| e.username.as_deref() == Some("bob")),
        "an account's name is kept: {all}"
    );
}

/// Sends `head` (and whatever else) on a fresh connection and reads the answer until the
/// portal closes it or `within` passes.
async fn raw_exchange(stream: &mut tokio::net::TcpStream, send: &str, within: Duration) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    stream.write_all(send.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(within, stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_request_body_that_stops_arriving_is_cut_off_with_408() {
    let app = spawn_app_with(&[], |c| c.proxy.body_timeout_secs = 1).await;
    let page = Browser::new(&app).get("/login").send().await.unwrap();
    let cookie = page.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let token = cookie.split('=').nth(1).unwrap().to_owned();
    let body_start = format!("csrf_token={token}&username=alice&password=");
    let head = format!(
        "POST /login HTTP/1.1\r\nHost: {}\r\nOrigin: {}\r\nCookie: {cookie}\r\nAccept-Language: en\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body_start}",
        app.addr,
        app.origin,
        body_start.len() + 100
    );
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let started = std::time::Instant::now();
    let answer = raw_exchange(&mut stream, &head, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("arrived too slowly"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

#[tokio::test]
async fn connections_are_bounded_per_address_and_in_total() {
    let app = spawn_app_with(&[], |c| c.proxy.max_connections_per_address = 3).await;
    let get = format!(
        "GET /healthz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        app.addr
    );
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(tokio::net::TcpStream::connect(app.addr).await.unwrap());
    }
    let mut fourth = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let answer = raw_exchange(&mut fourth, &get, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(answer.contains("Too many connections to the portal"), "{answer}");
    assert!(answer.contains("Verbindungen"), "both languages: {answer}");
    held.pop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let answer = raw_exchange(&mut again, &get, Duration::from_secs(5)).await;
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "a freed place is used again: {answer}"
    );

    // Behind a trusted reverse proxy only the total counts.
    let app = spawn_app_with(&[], |c| {
        behind_proxy(c);
        c.proxy.max_connections_per_address = 1;
        c.proxy.max_connections = 2;
    })
    .await;
    let get = format!(
        "GET /healthz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        app.addr
    );
    let _held = [
        tokio::net::TcpStream::connect(app.addr).await.unwrap(),
        tokio::net::TcpStream::connect(app.addr).await.unwrap(),
    ];
    let mut third = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let answer = raw_exchange(&mut third, &get, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
}

#[tokio::test]
async fn live_update_streams_per_user_are_bounded() {
    let app = spawn_app_with(&[], |c| c.limits.max_event_streams_per_user = 2).await;
    let alice = sign_in(&app, "alice").await;
    let first = alice.get("/api/events").send().await.unwrap();
    let second = alice.get("/api/events").send().await.unwrap();
    assert_eq!((first.status().as_u16(), second.status().as_u16()), (200, 200));
    let third = alice
        .get("/api/events")
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    assert_eq!(third.status(), 429);
    let body: serde_json::Value = third.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_streams", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("too many portal windows")
    );
    let bob = sign_in(&app, "bob").await;
    assert_eq!(bob.get("/api/events").send().await.unwrap().status(), 200, "per user");
    drop(first);
    let mut reopened = 0;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        reopened = alice.get("/api/events").send().await.unwrap().status().as_u16();
        if reopened == 200 {
            break;
        }
    }
    assert_eq!(reopened, 200, "a closed stream gives its place back");
    drop(second);
}

#[tokio::test]
async fn desktop_websockets_per_user_are_bounded() {
    let fake = fake_desktop("pw-alice").await;
    let app = spawn_app_with(
        &[DesktopSpec::for_fake("alice-ubuntu", &fake, "pw-alice", &["alice"])],
        |c| c.limits.max_websockets_per_user = 1,
    )
    .await;
    let alice = sign_in(&app, "alice").await;
    let path = "/desktop/alice-ubuntu/websockify";
    let (mut ws, _) = ws_connect(&app, path, WsOpts::as_user(&alice, &app)).await.unwrap();
    expect_rfb_greeting(&mut ws).await;
    let refused = ws_connect(&app, path, WsOpts::as_user(&alice, &app)).await.unwrap_err();
    assert_eq!(refused_status(refused), 429);
    drop(ws);
    let mut reopened = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Ok((ws, _)) = ws_connect(&app, path, WsOpts::as_user(&alice, &app)).await {
            reopened = Some(ws);
            break;
        }
    }
    expect_rfb_greeting(reopened.as_mut().expect("a closed WebSocket gives its place back")).await;
}
