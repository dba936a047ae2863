//! Plain HTTP through `/desktop/{id}/…`: what reaches the desktop, what comes back, who may.

use std::time::{Duration, Instant};

use testkit::{Behaviour, FakeKasm, FakeKasmConfig, Outcome};

use crate::helpers::*;

#[tokio::test]
async fn owner_gets_the_desktop_page_with_coep_and_coop() {
    let fake = fake_desktop("pw-a").await;
    let app = spawn_app(&[DesktopSpec::for_fake("lab-a", &fake, "pw-a", &["alice"])]).await;
    let alice = sign_in(&app, "alice").await;
    let resp = alice
        .get("/desktop/lab-a/?path=desktop/lab-a/websockify")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cross-origin-embedder-policy"], "require-corp");
    assert_eq!(resp.headers()["cross-origin-opener-policy"], "same-origin");
    assert!(resp.text().await.unwrap().contains("Fake KasmVNC"));
    let js = alice.get("/desktop/lab-a/app/ui.js").send().await.unwrap();
    assert_eq!(js.status(), 200);
    let missing = alice.get("/desktop/lab-a/nope.js").send().await.unwrap();
    assert_eq!(missing.status(), 404, "the desktop's own 404 passes through");
}

#[tokio::test]
async fn upstream_request_is_title_case_with_injected_auth_and_no_portal_secrets() {
    let fake = fake_desktop("pw-a").await;
    let app = spawn_app(&[DesktopSpec::for_fake("lab-a", &fake, "pw-a", &["alice"])]).await;
    let alice = sign_in(&app, "alice").await;
    let resp = alice
        .get("/desktop/lab-a/index.html?x=1")
        .header("authorization", "Basic ZXZpbDpldmls")
        .header("x-forwarded-for", "6.6.6.6")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let req = fake.requests().pop().unwrap();
    assert_eq!(req.path, "/index.html?x=1", "prefix stripped, query kept");
    let head = req.head;
    assert!(head.contains("\r\nHost: 127.0.0.1:"), "{head}");
    assert!(
        head.contains("Authorization: Basic a2FzbV91c2VyOnB3LWE="),
        "injected kasm_user:pw-a: {head}"
    );
    assert!(
        !head.contains("ZXZpbDpldmls"),
        "the browser's Authorization must not pass: {head}"
    );
    assert!(
        !head.to_lowercase().contains("\r\ncookie:"),
        "portal cookies must not pass: {head}"
    );
    assert!(!head.contains("ird_session"), "{head}");
    assert!(
        head.contains("X-Forwarded-For: 127.0.0.1\r\n"),
        "the real client, not the spoofed one: {head}"
    );
    assert!(head.contains("X-Forwarded-Proto: http\r\n"), "{head}");
    assert!(head.contains(&format!("X-Forwarded-Host: {}\r\n", app.addr)), "{head}");
}

#[tokio::test]
async fn no_session_redirects_to_login_and_never_reaches_the_desktop() {
    let fake = fake_desktop("pw-a").await;
    let app = spawn_app(&[DesktopSpec::for_fake("lab-a", &fake, "pw-a", &["alice"])]).await;
    let anon = Browser::new(&app);
    let resp = anon
        .get("/desktop/lab-a/")
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert!(
        resp.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/login?next=%2Fdesktop%2Flab-a%2F")
    );
    let json = anon
        .get("/desktop/lab-a/app/ui.js")
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 401);
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn another_users_desktop_answers_like_a_missing_one_by_path() {
    let fake = fake_desktop("pw-a").await;
    let app = spawn_app(&[DesktopSpec::for_fake("lab-a", &fake, "pw-a", &["alice"])]).await;
    let bob = sign_in(&app, "bob").await;
    for path in [
        "/desktop/lab-a/",
        "/desktop/lab-a/app/ui.js",
        "/desktop/lab-a/../lab-a/",
        "/desktop/lab-a/api/get_screenshot",
    ] {
        let resp = bob.get(path).send().await.unwrap();
        // The same answer as a desktop that does not exist (no oracle).
        assert_eq!(resp.status(), 404, "{path}");
    }
    // Encoded ids do not alias real ones.
    assert_eq!(bob.get("/desktop/%6cab-a/").send().await.unwrap().status(), 404);
    assert!(fake.requests().is_empty(), "nothing of bob's reached alice's desktop");
    let dash = bob.get("/").send().await.unwrap().text().await.unwrap();
    assert!(!dash.contains("lab-a"), "bob's dashboard does not list alice's desktop");
}

#[tokio::test]
async fn on_the_portals_origin_only_owners_open_a_desktop_and_unknown_ids_are_404() {
    let fake = fake_desktop("pw-a").await;
    let app = spawn_app(&[DesktopSpec::for_fake("lab-a", &fake, "pw-a", &["alice"])]).await;
    let alice = sign_in(&app, "alice").await;
    assert_eq!(alice.get("/desktop/lab-a/").send().await.unwrap().status(), 200);
    // Without desktop origins an administrator gets the explanation, not the desktop's page
    // (it would run with the administrator's session).
    let root = sign_in(&app, "root").await;
    let refused = root.get("/desktop/lab-a/").send().await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains("desktop_origin"));
    assert_eq!(root.get("/view/lab-a").send().await.unwrap().status(), 403);
    assert_eq!(fake.requests().len(), 1, "only alice's request reached the desktop");
    assert_eq!(root.get("/desktop/nope/").send().await.unwrap().status(), 404);
    let bare = root.get("/desktop/lab-a").send().await.unwrap();
    assert_eq!(bare.status(), 308);
    assert_eq!(
        bare.headers()["location"],
        "/desktop/lab-a/?path=desktop/lab-a/websockify"
    );
}

#[tokio::test]
async fn desktop_down_gives_502_with_an_actionable_message() {
    // A port that was just free: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let spec = DesktopSpec {
        id: "gone",
        url: format!("https://{closed}"),
        password: "x",
        users: &["alice"],
    };
    let app = spawn_app(&[spec]).await;
    let alice = sign_in(&app, "alice").await;
    let page = alice
        .get("/desktop/gone/")
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 502);
    let text = page.text().await.unwrap();
    assert!(text.contains("cannot be reached right now"));
    // The desktop's address stays in the log.
    assert!(!text.contains(&closed.to_string()), "{text}");
    let api = alice
        .get("/desktop/gone/app/ui.js")
        .header("accept", "application/json")
        .header("accept-language", "de")
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 502);
    let body: serde_json::Value = api.json().await.unwrap();
    assert_eq!(body["error"]["code"], "desktop_unreachable");
    assert!(body["error"]["message"].as_str().unwrap().contains("nicht erreichbar"));
    assert!(!body.to_string().contains(&closed.port().to_string()), "{body}");
}

#[tokio::test]
async fn slow_desktop_times_out_with_504() {
    let fake = FakeKasm::start(FakeKasmConfig {
        behaviour: Behaviour::Slow(Duration::from_secs(30)),
        ..FakeKasmConfig::new("pw")
    })
    .await
    .unwrap();
    let app = spawn_app_with(&[DesktopSpec::for_fake("slow", &fake, "pw", &["alice"])], |c| {
        c.proxy.response_timeout_secs = 1
    })
    .await;
    let alice = sign_in(&app, "alice").await;
    let started = Instant::now();
    let resp = alice.get("/desktop/slow/").send().await.unwrap();
    assert_eq!(resp.status(), 504);
    assert!(started.elapsed() < Duration::from_secs(15), "the timeout applies");
}

#[tokio::test]
async fn oversized_request_bodies_are_refused_with_the_limit() {
    let fake = fake_desktop("pw").await;
    let app = spawn_app_with(&[DesktopSpec::for_fake("lab", &fake, "pw", &["alice"])], |c| {
        c.proxy.max_body_bytes = 1024
    })
    .await;
    let alice = sign_in(&app, "alice").await;
    let resp = alice
        .post("/desktop/lab/upload")
        .header("accept", "application/json")
        .body(vec![b'x'; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["error"]["detail"].as_str().unwrap().contains("1024 bytes"));
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn oversized_request_heads_are_refused_with_431() {
    let fake = fake_desktop("pw").await;
    let app = spawn_app(&[DesktopSpec::for_fake("lab", &fake, "pw", &["alice"])]).await;
    let alice = sign_in(&app, "alice").await;
    let resp = alice
        .get("/desktop/lab/")
        .header("x-big", "a".repeat(40 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 431);
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn the_desktops_method_rules_pass_through() {
    let fake = fake_desktop("pw").await;
    let app = spawn_app(&[DesktopSpec::for_fake("lab", &fake, "pw", &["alice"])]).await;
    let alice = sign_in(&app, "alice").await;
    let resp = alice.post("/desktop/lab/").body("x").send().await.unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(fake.requests().pop().unwrap().outcome, Outcome::MethodNotAllowed);
}

/// KasmVNC closes the connection after every HTTP answer, so each asset the desktop's page
/// loads costs the portal a new TLS connection. After the first, they must resume the TLS
/// session (no certificate, key exchange or signature): a full handshake per asset is what
/// made the portal half as fast as nginx at serving desktop assets.
#[tokio::test]
async fn upstream_tls_sessions_are_resumed_across_requests() {
    let fake = fake_desktop("pw-a").await;
    let app = spawn_app(&[DesktopSpec::for_fake("lab-a", &fake, "pw-a", &["alice"])]).await;
    let alice = sign_in(&app, "alice").await;
    for _ in 0..4 {
        let resp = alice.get("/desktop/lab-a/app/ui.js").send().await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.bytes().await.unwrap();
    }
    let handshakes = fake.tls_handshakes();
    assert_eq!(
        handshakes.full + handshakes.resumed,
        4,
        "one connection per request: {handshakes:?}"
    );
    assert!(
        handshakes.resumed >= 3,
        "only the first handshake may be full: {handshakes:?}"
    );
}
