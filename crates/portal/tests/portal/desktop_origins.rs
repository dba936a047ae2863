//! Desktop origins over HTTP and WebSocket (the browser-level attacks are in
//! `hostile_desktop`): tickets, the desktop host's cookie and its tie to the portal session,
//! requests from other sites, old URLs, and redirects that must never leave the portal.

use std::time::Duration;

use futures_util::StreamExt as _;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

use crate::helpers::*;

pub(crate) const DESK: &str = "alice-lab";

async fn world() -> (TestApp, testkit::FakeKasm, testkit::FakeKasm) {
    let a = fake_desktop("pw-a").await;
    let b = fake_desktop("pw-b").await;
    let app = spawn_app_with(
        &[
            DesktopSpec::for_fake(DESK, &a, "pw-a", &["alice"]),
            DesktopSpec::for_fake("bob-lab", &b, "pw-b", &["bob"]),
        ],
        with_desktop_origins,
    )
    .await;
    (app, a, b)
}

pub(crate) fn origin(app: &TestApp, id: &str) -> String {
    format!("http://{id}.localhost:{}", app.addr.port())
}

/// A client that reaches desktop hosts (`*.localhost`) on the portal's port; no redirects,
/// no cookie store (the tests send cookies by hand, as a browser would per host).
pub(crate) fn desktop_client(app: &TestApp) -> reqwest::Client {
    let mut b = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
    for id in [DESK, "bob-lab"] {
        b = b.resolve(&format!("{id}.localhost"), app.addr);
    }
    b.build().unwrap()
}

/// A WebSocket to `/websockify` on alice's desktop host with `cookie`, sent from `from`.
pub(crate) async fn desktop_ws(
    app: &TestApp,
    cookie: &str,
    from: &str,
) -> Result<(Ws, tokio_tungstenite::tungstenite::handshake::client::Response), tokio_tungstenite::tungstenite::Error> {
    let mut req = format!("ws://{DESK}.localhost:{}/websockify", app.addr.port())
        .into_client_request()
        .unwrap();
    let h = req.headers_mut();
    h.insert("Sec-WebSocket-Protocol", "binary".parse().unwrap());
    h.insert("Cookie", cookie.parse().unwrap());
    h.insert("Origin", from.parse().unwrap());
    // Connected by hand: the host name is the desktop's, the address the portal's.
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(tokio::net::TcpStream::connect(app.addr).await.unwrap());
    tokio_tungstenite::client_async(req, stream).await
}

/// The status of alice's desktop page on its host with `cookie`.
pub(crate) async fn desktop_page(client: &reqwest::Client, app: &TestApp, cookie: &str) -> u16 {
    let resp = client
        .get(format!("{}/", origin(app, DESK)))
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap();
    resp.status().as_u16()
}

/// Whether the server closes `ws` within `limit` (frames until then are read and dropped).
pub(crate) async fn closes_within(ws: &mut Ws, limit: Duration) -> bool {
    tokio::time::timeout(limit, async { while let Some(Ok(_)) = ws.next().await {} })
        .await
        .is_ok()
}

/// The ticket URL in the view page's frame.
pub(crate) async fn ticket_url(browser: &Browser, id: &str) -> String {
    let page = browser
        .get(&format!("/view/{id}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let at = page.find("<iframe id=\"desktop\"").expect("the desktop frame");
    let src = page[at..].split(" src=\"").nth(1).unwrap().split('"').next().unwrap();
    src.replace("&amp;", "&")
}

/// Redeems `url` like a framed browser; the desktop host's cookie when it worked.
pub(crate) async fn redeem(client: &reqwest::Client, url: &str) -> (u16, Option<String>) {
    let resp = client
        .get(url)
        .header("Sec-Fetch-Site", "cross-site")
        .send()
        .await
        .unwrap();
    let cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .map(|c| c.split(';').next().unwrap().to_owned());
    (resp.status().as_u16(), cookie)
}

#[tokio::test]
async fn a_ticket_works_once_for_its_desktop_and_session_only() {
    let (app, a, _b) = world().await;
    let client = desktop_client(&app);
    let alice = sign_in(&app, "alice").await;
    let url = ticket_url(&alice, DESK).await;
    assert!(
        url.starts_with(&format!("{}/.ird/enter?ticket=", origin(&app, DESK))),
        "{url}"
    );

    // For another desktop's host: refused, and used up.
    let elsewhere = url.replace(&origin(&app, DESK), &origin(&app, "bob-lab"));
    assert_eq!(redeem(&client, &elsewhere).await, (403, None));
    assert_eq!(
        redeem(&client, &url).await,
        (403, None),
        "a ticket tried on another host is gone"
    );

    let url = ticket_url(&alice, DESK).await;
    let (status, cookie) = redeem(&client, &url).await;
    assert_eq!(status, 200);
    let cookie = cookie.expect("the desktop host's cookie");
    assert!(cookie.starts_with("ird_desktop="), "{cookie}");
    assert_eq!(redeem(&client, &url).await, (403, None), "single use");
    assert_eq!(redeem(&client, &url.replace("ticket=", "ticket=x")).await, (403, None));

    // The cookie opens this desktop, and nothing of the portal on its host.
    let page = client
        .get(format!("{}/", origin(&app, DESK)))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let ancestors = page
        .headers()
        .get_all("content-security-policy")
        .iter()
        .any(|v| v.to_str().unwrap() == format!("frame-ancestors {}", app.origin));
    assert!(ancestors, "only the portal may frame a desktop");
    for portal_path in ["/admin/users", "/api/desktops", "/login", "/.ird/anything"] {
        let resp = client
            .get(format!("{}{portal_path}", origin(&app, DESK)))
            .header("Cookie", &cookie)
            .send()
            .await
            .unwrap();
        // Forwarded to the desktop (which has no such file) or refused: never the portal's page.
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap();
        assert!(
            status == 404 && !body.contains("csrf"),
            "{portal_path}: {status} {body}"
        );
    }
    // The cookie is for this host only.
    let other = client
        .get(format!("{}/", origin(&app, "bob-lab")))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        other.status(),
        404,
        "no cookie for that host: the same answer as no desktop"
    );
    // An unknown desktop's host is a plain 404.
    let unknown = reqwest::Client::builder()
        .resolve("nobody-lab.localhost", app.addr)
        .build()
        .unwrap()
        .get(format!("{}/", origin(&app, "nobody-lab")))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let unknown_body = unknown.text().await.unwrap();
    let other_body = client
        .get(format!("{}/", origin(&app, "bob-lab")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(unknown_body, other_body, "a running desktop and none answer alike");
    // Bob's session cannot redeem a ticket for alice's desktop either: he gets no view.
    let bob = sign_in(&app, "bob").await;
    assert_eq!(bob.get(&format!("/view/{DESK}")).send().await.unwrap().status(), 404);
    let _ = a;
}

#[tokio::test]
async fn an_expired_ticket_is_refused() {
    let a = fake_desktop("pw-a").await;
    let app = spawn_app_with(&[DesktopSpec::for_fake(DESK, &a, "pw-a", &["alice"])], |c| {
        with_desktop_origins(c);
        c.proxy.ticket_ttl_secs = 1;
    })
    .await;
    let alice = sign_in(&app, "alice").await;
    let url = ticket_url(&alice, DESK).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(redeem(&desktop_client(&app), &url).await, (403, None));
    assert!(a.requests().is_empty(), "nothing reached the desktop");
}

#[tokio::test]
async fn other_sites_and_other_origins_are_refused_on_a_desktop_host() {
    let (app, a, _b) = world().await;
    let client = desktop_client(&app);
    let alice = sign_in(&app, "alice").await;
    let (_, cookie) = redeem(&client, &ticket_url(&alice, DESK).await).await;
    let cookie = cookie.unwrap();
    for site in ["cross-site", "same-site"] {
        let resp = client
            .get(format!("{}/", origin(&app, DESK)))
            .header("Cookie", &cookie)
            .header("Sec-Fetch-Site", site)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "{site}");
    }
    // A WebSocket must come from exactly this desktop's origin.
    for (from, expected) in [
        (app.origin.clone(), Some(403)),
        (origin(&app, "bob-lab"), Some(403)),
        (origin(&app, DESK), None),
    ] {
        let result = desktop_ws(&app, &cookie, &from).await;
        match expected {
            Some(status) => assert_eq!(refused_status(result.unwrap_err()), status, "from {from}"),
            None => {
                let (mut ws, _) = result.unwrap();
                expect_rfb_greeting(&mut ws).await;
            }
        }
    }
    assert_eq!(a.websocket_sessions(), 1, "only the desktop's own origin got through");
}

#[tokio::test]
async fn signing_out_closes_the_desktops_websockets_and_its_cookie() {
    let (app, a, _b) = world().await;
    let client = desktop_client(&app);
    let alice = sign_in(&app, "alice").await;
    let (_, cookie) = redeem(&client, &ticket_url(&alice, DESK).await).await;
    let cookie = cookie.unwrap();
    let (mut ws, _) = desktop_ws(&app, &cookie, &origin(&app, DESK)).await.unwrap();
    expect_rfb_greeting(&mut ws).await;

    let out = sign_out(&alice).await;
    assert_eq!(out.status(), 303);
    assert_eq!(out.headers()["clear-site-data"], "\"cache\", \"storage\"");
    // The relay closes within seconds (at once at sign-out; the sweep is the backstop).
    assert!(
        closes_within(&mut ws, Duration::from_secs(5)).await,
        "the WebSocket outlived the sign-out"
    );
    let after = desktop_page(&client, &app, &cookie).await;
    assert_eq!(after, 404, "the desktop cookie died with the session");
    assert_eq!(a.websocket_sessions(), 1);
}

#[tokio::test]
async fn an_administrator_ending_a_session_closes_its_desktop_within_seconds() {
    let (app, _a, _b) = world().await;
    let client = desktop_client(&app);
    let alice = sign_in(&app, "alice").await;
    let (_, cookie) = redeem(&client, &ticket_url(&alice, DESK).await).await;
    let cookie = cookie.unwrap();
    let root = sign_in(&app, "root").await;
    let csrf = root.csrf().await;
    let ended = root
        .post("/api/admin/users/alice/end-sessions")
        .header("X-CSRF-Token", csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 200);
    // The sweep runs every 2 s.
    let mut status = 0;
    for _ in 0..40 {
        status = desktop_page(&client, &app, &cookie).await;
        if status == 404 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status, 404);
}

#[tokio::test]
async fn old_urls_hand_over_to_the_desktop_origin_and_portal_websockets_are_refused() {
    let (app, a, _b) = world().await;
    let alice = sign_in(&app, "alice").await;
    let resp = alice
        .get(&format!("/desktop/{DESK}/vnc.html?x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&format!("{}/.ird/enter?ticket=", origin(&app, DESK))),
        "{location}"
    );
    assert!(location.ends_with("&to=%2Fvnc.html%3Fx%3D1"), "{location}");
    let (status, cookie) = redeem(&desktop_client(&app), &location).await;
    assert_eq!((status, cookie.is_some()), (200, true));
    // An administrator is handed over too (safely: the desktop runs on its own origin).
    let root = sign_in(&app, "root").await;
    assert_eq!(
        root.get(&format!("/desktop/{DESK}/")).send().await.unwrap().status(),
        303
    );
    assert_eq!(root.get(&format!("/view/{DESK}")).send().await.unwrap().status(), 200);
    // With desktop origins the admin page has no warning; without, it says what to set.
    let admin = root.get("/admin").send().await.unwrap().text().await.unwrap();
    assert!(!admin.contains("data-role=\"no-desktop-origin\""));
    let shared = spawn_app(&[]).await;
    let root = sign_in(&shared, "root").await;
    let admin = root.get("/admin").send().await.unwrap().text().await.unwrap();
    assert!(
        admin.contains("data-role=\"no-desktop-origin\""),
        "the admin page warns"
    );
    // WebSockets on the portal's origin: refused before any upstream connection.
    for path in [format!("/desktop/{DESK}/websockify"), "/websockify".to_owned()] {
        let err = ws_connect(&app, &path, WsOpts::as_user(&alice, &app))
            .await
            .unwrap_err();
        assert_eq!(refused_status(err), 403, "{path}");
    }
    assert_eq!(a.websocket_sessions(), 0);
}

#[tokio::test]
async fn redirects_never_leave_the_portal() {
    let (app, _a, _b) = world().await;
    let raw = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let lang = raw
        .get(format!("{}//evil.example/?lang=de", app.url.trim_end_matches('/')))
        .send()
        .await
        .unwrap();
    let location = lang.headers().get("location").map(|l| l.to_str().unwrap().to_owned());
    assert!(
        location
            .as_deref()
            .is_none_or(|l| l.starts_with('/') && !l.starts_with("//")),
        "{location:?}"
    );
    let alice = sign_in(&app, "alice").await;
    for evil in [
        "/%09/evil.example",
        "//evil.example",
        "/%5Cevil.example",
        "https://evil.example",
    ] {
        let resp = alice.get(&format!("/login?next={evil}")).send().await.unwrap();
        let to = resp.headers().get("location").map(|l| l.to_str().unwrap().to_owned());
        assert_eq!(to.as_deref(), Some("/"), "next={evil}");
    }
}

#[tokio::test]
async fn losing_access_closes_an_open_desktop_within_seconds() {
    let (app, a, _b) = world().await;
    let client = desktop_client(&app);
    // An administrator opens alice's desktop (allowed: it runs on its own origin)…
    let root = sign_in(&app, "root").await;
    let (_, cookie) = redeem(&client, &ticket_url(&root, DESK).await).await;
    let cookie = cookie.unwrap();
    let (mut ws, _) = desktop_ws(&app, &cookie, &origin(&app, DESK)).await.unwrap();
    expect_rfb_greeting(&mut ws).await;
    // …and is then made a student: the open relay closes at the next sweep (every 2 s).
    let user = app.state.store.user_by_username("root").await.unwrap().unwrap();
    app.state
        .store
        .set_user_role(&user.id, portal_store::Role::Student)
        .await
        .unwrap();
    assert!(
        closes_within(&mut ws, Duration::from_secs(6)).await,
        "the relay outlived the loss of access"
    );
    let after = desktop_page(&client, &app, &cookie).await;
    assert_eq!(after, 404);
    assert_eq!(a.websocket_sessions(), 1);
}

#[tokio::test]
async fn a_ticket_dies_with_the_session_that_asked_for_it() {
    let (app, a, _b) = world().await;
    let client = desktop_client(&app);
    let alice = sign_in(&app, "alice").await;
    let url = ticket_url(&alice, DESK).await;
    // Alice signs out before her frame redeemed the ticket: it is worth nothing now, to anyone.
    let csrf = alice.csrf().await;
    alice
        .post("/logout")
        .form(&[("csrf_token", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(redeem(&client, &url).await, (403, None));
    assert!(a.requests().is_empty(), "nothing reached the desktop");
    // A ticket of bob's session does not open alice's desktop's host, and is used up by trying.
    let bob = sign_in(&app, "bob").await;
    let bobs = ticket_url(&bob, "bob-lab").await;
    let on_alices_host = bobs.replace(&origin(&app, "bob-lab"), &origin(&app, DESK));
    assert_eq!(redeem(&client, &on_alices_host).await, (403, None));
    assert_eq!(redeem(&client, &bobs).await, (403, None));
}
