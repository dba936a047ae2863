//! WebSockets through the portal: the handshake a real KasmVNC accepts, byte-exact relay,
//! and every way to get into someone else's desktop, tried.

use futures_util::StreamExt as _;
use testkit::{Behaviour, FakeKasm, FakeKasmConfig};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::*;

async fn two_desktops() -> (FakeKasm, FakeKasm) {
    (fake_desktop("pw-alice").await, fake_desktop("pw-bob").await)
}

fn specs<'a>(a: &FakeKasm, b: &FakeKasm) -> Vec<DesktopSpec<'a>> {
    vec![
        DesktopSpec::for_fake("alice-ubuntu", a, "pw-alice", &["alice"]),
        DesktopSpec::for_fake("bob-ubuntu", b, "pw-bob", &["bob"]),
    ]
}

#[tokio::test]
async fn upgrade_gives_101_binary_and_relays_1_byte_to_1_mib_exactly() {
    let (a, b) = two_desktops().await;
    let app = spawn_app(&specs(&a, &b)).await;
    let alice = sign_in(&app, "alice").await;
    let (mut ws, resp) = ws_connect(&app, "/desktop/alice-ubuntu/websockify", WsOpts::as_user(&alice, &app))
        .await
        .expect("upgrade succeeds");
    assert_eq!(resp.status(), 101);
    assert_eq!(resp.headers()["sec-websocket-protocol"], "binary");
    expect_rfb_greeting(&mut ws).await;
    for size in [1usize, 6, 125, 126, 65_535, 65_536, 1 << 20] {
        let payload: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
        echo(&mut ws, payload).await;
    }
    ws.send(Message::Text("text frames too".into())).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::Text("text frames too".into())
    );
    // The handshake the desktop saw is one KasmVNC 1.3 accepts.
    let head = a.requests().into_iter().find(|r| r.path == "/websockify").unwrap().head;
    for needle in [
        "\r\nHost: ",
        "\r\nConnection: Upgrade",
        "Authorization: Basic ",
        "Sec-Websocket-Protocol: binary",
        "Origin: ",
    ] {
        assert!(
            head.to_lowercase().contains(&needle.to_lowercase()) && head.contains(needle.split(':').next().unwrap()),
            "{needle:?} in {head}"
        );
    }
    assert_eq!(b.websocket_sessions(), 0);
}

use futures_util::SinkExt as _;

#[tokio::test]
async fn foreign_origin_is_refused_before_any_upstream_connection() {
    let (a, b) = two_desktops().await;
    let app = spawn_app(&specs(&a, &b)).await;
    let alice = sign_in(&app, "alice").await;
    for origin in ["https://evil.example", "http://127.0.0.1", "null"] {
        let err = ws_connect(
            &app,
            "/desktop/alice-ubuntu/websockify",
            WsOpts {
                cookie: alice.cookie_header(),
                origin: Some(origin),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
        assert_eq!(refused_status(err), 403, "{origin}");
    }
    let missing = ws_connect(
        &app,
        "/desktop/alice-ubuntu/websockify",
        WsOpts {
            cookie: alice.cookie_header(),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(refused_status(missing), 400, "no Origin at all is a malformed upgrade");
    assert!(a.requests().is_empty(), "no upstream connection was made");
}

#[tokio::test]
async fn websocket_without_session_is_401() {
    let (a, b) = two_desktops().await;
    let app = spawn_app(&specs(&a, &b)).await;
    let err = ws_connect(
        &app,
        "/desktop/alice-ubuntu/websockify",
        WsOpts {
            origin: Some(&app.origin),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(refused_status(err), 401);
    let root = ws_connect(
        &app,
        "/websockify",
        WsOpts {
            origin: Some(&app.origin),
            referer: Some(format!("{}/desktop/alice-ubuntu/", app.url)),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(refused_status(root), 401);
    assert!(a.requests().is_empty());
}

#[tokio::test]
async fn another_users_desktop_answers_like_a_missing_one_by_path_referer_and_session() {
    let (a, b) = two_desktops().await;
    let app = spawn_app(&specs(&a, &b)).await;
    let bob = sign_in(&app, "bob").await;
    let opts = |referer: Option<String>| WsOpts {
        cookie: bob.cookie_header(),
        origin: Some(&app.origin),
        referer,
    };
    // By path.
    let by_path = ws_connect(&app, "/desktop/alice-ubuntu/websockify", opts(None))
        .await
        .unwrap_err();
    assert_eq!(refused_status(by_path), 404);
    // By Referer on the root endpoint.
    let by_referer = ws_connect(
        &app,
        "/websockify",
        opts(Some(format!("{}/desktop/alice-ubuntu/", app.url))),
    )
    .await
    .unwrap_err();
    assert_eq!(refused_status(by_referer), 404);
    // By session: loading alice's page must not make it bob's current desktop.
    assert_eq!(bob.get("/desktop/alice-ubuntu/").send().await.unwrap().status(), 404);
    let by_session = ws_connect(&app, "/websockify", opts(None)).await.unwrap_err();
    assert_eq!(refused_status(by_session), 404, "bob has no current desktop");
    // A query string naming alice's desktop grants nothing either.
    let by_query = ws_connect(&app, "/desktop/alice-ubuntu/websockify?token=x&owner=bob", opts(None))
        .await
        .unwrap_err();
    assert_eq!(refused_status(by_query), 404);
    assert!(a.requests().is_empty(), "nothing reached alice's desktop");
    assert_eq!(a.websocket_sessions(), 0);
}

#[tokio::test]
async fn root_websockify_picks_referer_then_session_then_404() {
    let (a, b) = two_desktops().await;
    // Desktops shared with root, so both are root's own (on the portal's origin, only owners
    // may open a desktop).
    let app = spawn_app(&[
        DesktopSpec::for_fake("alice-ubuntu", &a, "pw-alice", &["alice", "root"]),
        DesktopSpec::for_fake("bob-ubuntu", &b, "pw-bob", &["bob", "root"]),
    ])
    .await;
    let root = sign_in(&app, "root").await;
    let opts = |referer: Option<String>| WsOpts {
        cookie: root.cookie_header(),
        origin: Some(&app.origin),
        referer,
    };
    // No referer and no current desktop: 404.
    let none = ws_connect(&app, "/websockify", opts(None)).await.unwrap_err();
    assert_eq!(refused_status(none), 404);
    // Referer picks bob's desktop.
    let (mut ws, _) = ws_connect(
        &app,
        "/websockify",
        opts(Some(format!("{}/desktop/bob-ubuntu/vnc.html", app.url))),
    )
    .await
    .unwrap();
    expect_rfb_greeting(&mut ws).await;
    assert_eq!((a.websocket_sessions(), b.websocket_sessions()), (0, 1));
    // Loading alice's page makes it the session's current desktop.
    assert_eq!(root.get("/desktop/alice-ubuntu/").send().await.unwrap().status(), 200);
    let (mut ws, _) = ws_connect(&app, "/websockify", opts(None)).await.unwrap();
    expect_rfb_greeting(&mut ws).await;
    echo(&mut ws, b"hello".to_vec()).await;
    assert_eq!((a.websocket_sessions(), b.websocket_sessions()), (1, 1));
}

#[tokio::test]
async fn plain_request_to_root_websockify_without_desktop_is_404() {
    let (a, b) = two_desktops().await;
    let app = spawn_app(&specs(&a, &b)).await;
    let alice = sign_in(&app, "alice").await;
    assert_eq!(alice.get("/websockify").send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn malformed_upgrades_are_400_and_never_reach_the_desktop() {
    let (a, b) = two_desktops().await;
    let app = spawn_app(&specs(&a, &b)).await;
    let alice = sign_in(&app, "alice").await;
    let base = || {
        alice
            .get("/desktop/alice-ubuntu/websockify")
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("origin", &app.origin)
            .header("sec-websocket-version", "13")
            .header("sec-websocket-protocol", "binary")
    };
    let no_key = base().send().await.unwrap();
    assert_eq!(no_key.status(), 400);
    let bad_version = base()
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-version", "99")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_version.status(), 400);
    let not_ws = alice
        .get("/desktop/alice-ubuntu/websockify")
        .header("connection", "Upgrade")
        .header("upgrade", "h2c")
        .send()
        .await
        .unwrap();
    assert_eq!(not_ws.status(), 400);
    let body: serde_json::Value = alice
        .get("/desktop/alice-ubuntu/websockify")
        .header("accept", "application/json")
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["error"]["code"], "bad_upgrade");
    assert!(a.requests().is_empty());
}

#[tokio::test]
async fn oversized_upstream_handshake_is_refused_with_502() {
    let fake = FakeKasm::start(FakeKasmConfig {
        behaviour: Behaviour::HugeHandshake(16 * 1024),
        ..FakeKasmConfig::new("pw")
    })
    .await
    .unwrap();
    let app = spawn_app(&[DesktopSpec::for_fake("huge", &fake, "pw", &["alice"])]).await;
    let alice = sign_in(&app, "alice").await;
    let err = ws_connect(&app, "/desktop/huge/websockify", WsOpts::as_user(&alice, &app))
        .await
        .unwrap_err();
    assert_eq!(refused_status(err), 502);
}

#[tokio::test]
async fn a_handshake_just_under_the_limit_still_works() {
    let fake = FakeKasm::start(FakeKasmConfig {
        behaviour: Behaviour::HugeHandshake(6 * 1024),
        ..FakeKasmConfig::new("pw")
    })
    .await
    .unwrap();
    let app = spawn_app(&[DesktopSpec::for_fake("big", &fake, "pw", &["alice"])]).await;
    let alice = sign_in(&app, "alice").await;
    let (mut ws, _) = ws_connect(&app, "/desktop/big/websockify", WsOpts::as_user(&alice, &app))
        .await
        .unwrap();
    expect_rfb_greeting(&mut ws).await;
}

#[tokio::test]
async fn desktop_down_refuses_the_upgrade_with_502() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let app = spawn_app(&[DesktopSpec {
        id: "gone",
        url: format!("https://{closed}"),
        password: "x",
        users: &["alice"],
    }])
    .await;
    let alice = sign_in(&app, "alice").await;
    let err = ws_connect(&app, "/desktop/gone/websockify", WsOpts::as_user(&alice, &app))
        .await
        .unwrap_err();
    assert_eq!(refused_status(err), 502);
}

#[tokio::test]
async fn idle_relays_are_closed() {
    let fake = fake_desktop("pw").await;
    let app = spawn_app_with(&[DesktopSpec::for_fake("lab", &fake, "pw", &["alice"])], |c| {
        c.proxy.idle_timeout_secs = 10
    })
    .await;
    let alice = sign_in(&app, "alice").await;
    let (mut ws, _) = ws_connect(&app, "/desktop/lab/websockify", WsOpts::as_user(&alice, &app))
        .await
        .unwrap();
    expect_rfb_greeting(&mut ws).await;
    let end = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(end.is_ok(), "the relay closed an idle connection");
}
