//! Helping with consent: a student asks for help, one of her teachers offers to take control,
//! and only after she allows it does that teacher reach her desktop — on the desktop's own
//! origin, through a one-time ticket like the student's own. Ending (by her), declining and
//! the teacher's own end revoke it at once and close the teacher's open WebSocket. Another
//! group's teacher, a student and anonymous clients get the missing-desktop answer.
//!
//! The first test runs on a fake Kasm desktop (no Docker); the second on the real Debian
//! desktop image, where the helper's keystrokes, sent as RFB KeyEvents through the proxied
//! WebSocket, land in an xterm (checked inside the container).

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use portal_store::{AuditFilter, AuditKind, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

use crate::helpers::*;
use crate::ui_events::Events;
use crate::ui_teacher::add_member;

const DESK: &str = "sam-lab";

fn origin(app: &TestApp, id: &str) -> String {
    format!("http://{id}.localhost:{}", app.addr.port())
}

/// A client that reaches desktop `id`'s host on the portal's port, no redirects, no cookies
/// of its own (sent by hand, as a browser would per host).
fn desktop_client(app: &TestApp, id: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .resolve(&format!("{id}.localhost"), app.addr)
        .build()
        .unwrap()
}

/// A WebSocket to `/websockify` on desktop `id`'s host with `cookie`, from its own origin.
pub(crate) async fn desktop_ws(
    app: &TestApp,
    id: &str,
    cookie: Option<&str>,
) -> Result<(Ws, tokio_tungstenite::tungstenite::handshake::client::Response), tokio_tungstenite::tungstenite::Error> {
    let mut req = format!("ws://{id}.localhost:{}/websockify", app.addr.port())
        .into_client_request()
        .unwrap();
    let h = req.headers_mut();
    h.insert("Sec-WebSocket-Protocol", "binary".parse().unwrap());
    if let Some(cookie) = cookie {
        h.insert("Cookie", cookie.parse().unwrap());
    }
    h.insert("Origin", origin(app, id).parse().unwrap());
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(tokio::net::TcpStream::connect(app.addr).await.unwrap());
    tokio_tungstenite::client_async(req, stream).await
}

/// Posts one of the help forms as the page does (token as a field); the status and body.
pub(crate) async fn act(b: &Browser, path: &str) -> (u16, String) {
    let csrf = b.csrf().await;
    let resp = b
        .post(path)
        .header("accept", "application/json")
        .header("accept-language", "en")
        .form(&[("csrf_token", csrf.as_str()), ("back", "/")])
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// `GET path` in English, as text.
async fn text_of(b: &Browser, path: &str) -> String {
    let resp = b.get(path).header("accept-language", "en").send().await.unwrap();
    resp.text().await.unwrap()
}

/// The help entries of the audit log, newest first.
async fn help_audit(app: &TestApp) -> Vec<portal_store::AuditEntry> {
    let filter = AuditFilter {
        kind: Some(AuditKind::Help),
        limit: 100,
        ..Default::default()
    };
    app.state.store.audit_page(&filter).await.unwrap().0
}

/// The status of `GET path`.
async fn status_of(b: &Browser, path: &str) -> u16 {
    b.get(path).send().await.unwrap().status().as_u16()
}

/// The teacher's way in: `/teacher/help/{id}/open` sends her to the handover on the desktop's
/// origin; redeeming the ticket there gives that host's cookie. `None` if she was refused.
pub(crate) async fn enter_as_helper(app: &TestApp, teacher: &Browser, id: &str) -> Option<String> {
    let resp = teacher.get(&format!("/teacher/help/{id}/open")).send().await.unwrap();
    if resp.status() != 303 {
        assert_eq!(resp.status(), 404, "refused like a missing desktop");
        return None;
    }
    let to = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        to.starts_with(&format!("{}/.ird/enter?ticket=", origin(app, id))),
        "the desktop's own origin, never the portal's: {to}"
    );
    // A top-level navigation from the portal to the desktop's host.
    let entered = desktop_client(app, id)
        .get(&to)
        .header("Sec-Fetch-Site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(entered.status(), 200);
    let cookie = entered.headers()["set-cookie"].to_str().unwrap();
    Some(cookie.split(';').next().unwrap().to_owned())
}

/// The helper's WebSocket on desktop `id`, entered as [`enter_as_helper`] does; with the
/// desktop host's cookie.
pub(crate) async fn helper_ws(app: &TestApp, teacher: &Browser, id: &str) -> (String, Ws) {
    let cookie = enter_as_helper(app, teacher, id)
        .await
        .expect("the helper enters after consent");
    let (ws, _) = desktop_ws(app, id, Some(&cookie))
        .await
        .expect("the helper's WebSocket");
    (cookie, ws)
}

/// The whole consent: `student` asks, `teacher` offers, `student` allows.
pub(crate) async fn help_allowed(student: &Browser, teacher: &Browser, id: &str) {
    assert_eq!(act(student, &format!("/help/{id}/request")).await.0, 303);
    assert_eq!(act(teacher, &format!("/teacher/help/{id}/offer")).await.0, 303);
    assert_eq!(act(student, &format!("/help/{id}/accept")).await.0, 303);
}

/// Whether the server closes `ws` within `limit` (frames until then are read and dropped).
pub(crate) async fn closes_within(ws: &mut Ws, limit: Duration) -> bool {
    tokio::time::timeout(limit, async { while let Some(Ok(_)) = ws.next().await {} })
        .await
        .is_ok()
}

/// The JSON error code of a refusal.
fn code(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    v["error"]["code"].as_str().unwrap_or_default().to_owned()
}

/// Waits for the next `help` event whose cases satisfy `check`.
async fn help_event(events: &mut Events, check: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    loop {
        let (name, data) = events.next().await;
        if name == "help" && check(&data["cases"]) {
            return data;
        }
    }
}

/// Sam's desktop on its own origin; tina teaches her class (5a), theo another (6b), otto is
/// her classmate.
async fn class() -> (TestApp, testkit::FakeKasm) {
    let kasm = fake_desktop("pw-sam").await;
    let app = spawn_app_with(
        &[DesktopSpec::for_fake(DESK, &kasm, "pw-sam", &["sam"])],
        with_desktop_origins,
    )
    .await;
    add_member(&app, "tina", Role::Teacher, &["5a"]).await;
    add_member(&app, "theo", Role::Teacher, &["6b"]).await;
    add_member(&app, "sam", Role::Student, &["5a"]).await;
    add_member(&app, "otto", Role::Student, &["5a"]).await;
    (app, kasm)
}

#[tokio::test]
async fn a_teacher_takes_control_only_after_the_student_allows_it_and_loses_it_when_she_ends_it() {
    let (app, kasm) = class().await;
    let (tina, theo, sam, otto) = (
        sign_in(&app, "tina").await,
        sign_in(&app, "theo").await,
        sign_in(&app, "sam").await,
        sign_in(&app, "otto").await,
    );
    let anonymous = Browser::new(&app);
    let mut tina_live = Events::open(&tina, "/api/help/events").await;
    let first = help_event(&mut tina_live, |_| true).await;
    assert_eq!(first["cases"], serde_json::json!([]), "nothing asked yet");

    // Without a request nobody gets in: not the class's teacher, not another's.
    // Her teacher learns that she has not asked; another group's teacher learns nothing.
    let (status, body) = act(&tina, &format!("/teacher/help/{DESK}/offer")).await;
    assert_eq!((status, code(&body).as_str()), (409, "help_no_request"), "{body}");
    let (status, body) = act(&theo, &format!("/teacher/help/{DESK}/offer")).await;
    assert_eq!((status, code(&body).as_str()), (404, "desktop_not_found"), "{body}");
    for teacher in [&tina, &theo] {
        assert!(enter_as_helper(&app, teacher, DESK).await.is_none());
        assert_eq!(status_of(teacher, &format!("/view/{DESK}")).await, 404);
    }
    let refused = desktop_ws(&app, DESK, None).await.unwrap_err();
    assert_eq!(refused_status(refused), 404, "no cookie: the missing-desktop answer");

    // Sam asks for help (her view page shows the button; the form posts).
    let view = text_of(&sam, &format!("/view/{DESK}")).await;
    assert!(view.contains(&format!("action=\"/help/{DESK}/request\"")), "{view}");
    // Only for her own desktop.
    let (status, body) = act(&otto, &format!("/help/{DESK}/request")).await;
    assert_eq!((status, code(&body).as_str()), (404, "desktop_not_found"));
    assert_eq!(act(&sam, &format!("/help/{DESK}/request")).await.0, 303);
    let asked = help_event(&mut tina_live, |c| c.as_array().is_some_and(|c| !c.is_empty())).await;
    assert_eq!(asked["cases"][0]["desktop_id"], DESK, "{asked}");
    assert_eq!(asked["cases"][0]["student"], "sam");
    assert_eq!(asked["cases"][0]["stage"], "requested");

    // Her teacher sees it with a way to take control; another group's teacher does not, and
    // a student or anonymous gets nothing.
    let list = text_of(&tina, "/teacher/help").await;
    assert!(
        list.contains("sam (Name)") && list.contains(&format!("/teacher/help/{DESK}/offer")),
        "{list}"
    );
    let page = text_of(&tina, "/teacher").await;
    assert!(page.contains(&format!("/teacher/help/{DESK}/offer")), "on /teacher too");
    let theos = text_of(&theo, "/teacher/help").await;
    assert!(!theos.contains(DESK), "{theos}");
    assert_eq!(status_of(&otto, "/teacher/help").await, 404);
    assert_ne!(status_of(&anonymous, "/teacher/help").await, 200);
    let mut theo_live = Events::open(&theo, "/api/help/events").await;
    assert_eq!(
        help_event(&mut theo_live, |_| true).await["cases"],
        serde_json::json!([])
    );
    for outsider in [&theo, &otto] {
        let (status, body) = act(outsider, &format!("/teacher/help/{DESK}/offer")).await;
        assert_eq!((status, code(&body).as_str()), (404, "desktop_not_found"), "{body}");
    }

    // An offer is not consent: the teacher still cannot enter, and there is nothing to
    // accept before it.
    let (status, body) = act(&sam, &format!("/help/{DESK}/accept")).await;
    assert_eq!((status, code(&body).as_str()), (409, "help_no_offer"), "{body}");
    assert_eq!(act(&tina, &format!("/teacher/help/{DESK}/offer")).await.0, 303);
    assert!(
        enter_as_helper(&app, &tina, DESK).await.is_none(),
        "offered, not allowed"
    );
    let panel = text_of(&sam, &format!("/help/panel?desktop={DESK}")).await;
    assert!(
        panel.contains("tina (Name)") && panel.contains("wants to control your desktop"),
        "{panel}"
    );
    let (status, body) = act(&theo, &format!("/teacher/help/{DESK}/offer")).await;
    assert_eq!(status, 404, "still not his student: {body}");

    // She declines: nothing granted, the case is gone.
    assert_eq!(act(&sam, &format!("/help/{DESK}/close")).await.0, 303);
    assert!(enter_as_helper(&app, &tina, DESK).await.is_none(), "declined");
    assert_eq!(act(&tina, &format!("/teacher/help/{DESK}/offer")).await.0, 409);

    // Asked again, offered again, and this time allowed.
    help_allowed(&sam, &tina, DESK).await;
    let helping = help_event(&mut tina_live, |c| c[0]["stage"] == "helping").await;
    assert_eq!(helping["cases"][0]["helper"], "tina");
    let panel = text_of(&sam, &format!("/help/panel?desktop={DESK}")).await;
    assert!(panel.contains("is helping you and controls your desktop"), "{panel}");
    let (cookie, mut ws) = helper_ws(&app, &tina, DESK).await;
    expect_rfb_greeting(&mut ws).await;
    echo(&mut ws, b"helper input".to_vec()).await;
    // Other teachers still get nothing.
    assert!(enter_as_helper(&app, &theo, DESK).await.is_none());
    assert_eq!(
        status_of(&tina, &format!("/view/{DESK}")).await,
        404,
        "never the student's view page"
    );

    // She ends it: the WebSocket closes at once, the cookie no longer works.
    assert_eq!(act(&sam, &format!("/help/{DESK}/close")).await.0, 303);
    assert!(
        closes_within(&mut ws, Duration::from_secs(1)).await,
        "the helper's WebSocket closed when she ended the help"
    );
    let refused = desktop_ws(&app, DESK, Some(&cookie)).await.unwrap_err();
    assert_eq!(refused_status(refused), 404);
    let page = desktop_client(&app, DESK)
        .get(format!("{}/", origin(&app, DESK)))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 404);
    assert!(enter_as_helper(&app, &tina, DESK).await.is_none());
    help_event(&mut tina_live, |c| c.as_array().is_some_and(Vec::is_empty)).await;

    // The teacher can end it too, with the same effect.
    help_allowed(&sam, &tina, DESK).await;
    let (_, mut ws) = helper_ws(&app, &tina, DESK).await;
    expect_rfb_greeting(&mut ws).await;
    assert_eq!(
        act(&theo, &format!("/help/{DESK}/close")).await.0,
        404,
        "not his to end"
    );
    assert_eq!(act(&tina, &format!("/help/{DESK}/close")).await.0, 303);
    assert!(closes_within(&mut ws, Duration::from_secs(1)).await);

    // Everything is in the audit log: who, whom, what, from and to.
    let entries = help_audit(&app).await;
    let lines: Vec<String> = entries
        .iter()
        .rev()
        .map(|e| {
            format!(
                "{} → {}: {}",
                e.actor.as_deref().unwrap_or("-"),
                e.username.as_deref().unwrap_or("-"),
                e.detail
            )
        })
        .collect();
    let expect = [
        "sam → sam: asked for help",
        "tina → sam: offered to take control",
        "sam → sam: tina's offer to help was declined",
        "sam → sam: accepted tina's offer",
        "sam → sam: tina's help ended; tina controlled the desktop from ",
        "tina → sam: tina's help ended",
    ];
    let mut at = 0;
    for line in &lines {
        if at < expect.len() && line.starts_with(expect[at]) {
            at += 1;
        }
    }
    assert_eq!(at, expect.len(), "audit entries in order: {lines:#?}");
    assert!(entries.iter().all(|e| e.target.as_deref() == Some(DESK)));
    let _ = kasm;
}

#[tokio::test]
async fn without_desktop_origins_students_can_ask_but_nobody_takes_control() {
    let kasm = fake_desktop("pw-sam").await;
    let app = spawn_app(&[DesktopSpec::for_fake(DESK, &kasm, "pw-sam", &["sam"])]).await;
    add_member(&app, "tina", Role::Teacher, &["5a"]).await;
    add_member(&app, "sam", Role::Student, &["5a"]).await;
    let (tina, sam) = (sign_in(&app, "tina").await, sign_in(&app, "sam").await);
    assert_eq!(act(&sam, &format!("/help/{DESK}/request")).await.0, 303);
    let list = text_of(&tina, "/teacher/help").await;
    assert!(list.contains("sam (Name)") && !list.contains("/offer"), "{list}");
    assert!(list.contains("data-role=\"help-no-origins\""), "says why: {list}");
    let (status, body) = act(&tina, &format!("/teacher/help/{DESK}/offer")).await;
    assert_eq!(
        (status, code(&body).as_str()),
        (403, "desktop_origin_required"),
        "{body}"
    );
    assert_eq!(status_of(&tina, &format!("/teacher/help/{DESK}/open")).await, 404);
    let _ = kasm;
}

/// Sends `text` as RFB KeyEvents (press and release per character, Enter at the end).
pub(crate) async fn type_keys(ws: &mut Ws, text: &str) {
    let mut keys: Vec<u32> = text.chars().map(u32::from).collect();
    keys.push(0xff0d);
    let mut bytes = Vec::new();
    for key in keys {
        for down in [1u8, 0] {
            bytes.extend_from_slice(&[4, down, 0, 0]);
            bytes.extend_from_slice(&key.to_be_bytes());
        }
    }
    ws.send(Message::Binary(bytes.into())).await.unwrap();
}

/// An RFB client's handshake with a desktop without VNC authentication (the real image's
/// Xvnc: `SecurityTypes None`), as a shared client, up to the server's init message.
pub(crate) async fn rfb_handshake(ws: &mut Ws) {
    let mut buf: Vec<u8> = Vec::new();
    async fn need(ws: &mut Ws, buf: &mut Vec<u8>, n: usize) -> Vec<u8> {
        while buf.len() < n {
            let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
                .await
                .expect("the desktop answers in time")
                .expect("the WebSocket stays open")
                .unwrap();
            buf.extend_from_slice(&msg.into_data());
        }
        buf.drain(..n).collect()
    }
    assert_eq!(need(ws, &mut buf, 12).await, b"RFB 003.008\n");
    ws.send(Message::Binary(b"RFB 003.008\n".to_vec().into()))
        .await
        .unwrap();
    let count = need(ws, &mut buf, 1).await[0] as usize;
    let types = need(ws, &mut buf, count).await;
    assert!(types.contains(&1), "security type None offered: {types:?}");
    ws.send(Message::Binary(vec![1].into())).await.unwrap();
    assert_eq!(need(ws, &mut buf, 4).await, [0, 0, 0, 0], "security result OK");
    // Shared: the student's own connection stays.
    ws.send(Message::Binary(vec![1].into())).await.unwrap();
    let init = need(ws, &mut buf, 24).await;
    let name_len = u32::from_be_bytes([init[20], init[21], init[22], init[23]]) as usize;
    need(ws, &mut buf, name_len).await;
}

/// `docker exec` in the desktop's container with the X display set; stdout, trimmed.
fn in_desktop(container: &str, cmd: &str) -> String {
    crate::docker::docker(&["exec", "-e", "DISPLAY=:1", container, "sh", "-c", cmd])
}

/// Polls `check` for up to 20 s; the last complaint if it never holds.
async fn eventually(what: &str, mut check: impl FnMut() -> Result<(), String>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        match check() {
            Ok(()) => return,
            Err(why) if std::time::Instant::now() > deadline => panic!("{what}: {why}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Makes the window of X class `class` the active one (once it is mapped).
async fn focus(container: &str, class: &str) {
    eventually(&format!("{class} is mapped and focused"), || {
        in_desktop(
            container,
            &format!(
                "xdotool search --onlyvisible --class {class} windowactivate --sync 2>/dev/null || \
                 xdotool search --onlyvisible --class {class} windowfocus --sync"
            ),
        );
        let active = in_desktop(container, "xprop -id $(xdotool getactivewindow) WM_CLASS");
        if active.contains(class) {
            Ok(())
        } else {
            Err(format!("active window: {active:?}"))
        }
    })
    .await;
}

#[tokio::test]
async fn on_the_real_desktop_the_helpers_keystrokes_land_only_while_the_student_allows_it() {
    if !crate::browser_real::real_desktop_ready() {
        return;
    }
    let (app, scope) = crate::docker::docker_app("help-real", |c| {
        c.docker.start_timeout_secs = 90;
        // Dev mode: the portal offers the locally built image as `debian-local`.
        c.desktop_types = vec![];
        with_desktop_origins(c);
    })
    .await;
    add_member(&app, "tina", Role::Teacher, &["5a"]).await;
    add_member(&app, "theo", Role::Teacher, &["6b"]).await;
    add_member(&app, "sam", Role::Student, &["5a"]).await;
    let id = "sam-debian-local";
    let (tina, theo, sam) = (
        sign_in(&app, "tina").await,
        sign_in(&app, "theo").await,
        sign_in(&app, "sam").await,
    );
    let (status, body, events) = crate::docker::start_desktop(&sam, "debian-local").await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(events.last().map(|e| &e["step"]), Some(&"ready".into()), "{events:?}");
    let container = scope.container(id);
    // The image's openbox may leave its own xterm unmapped until an input event arrives
    // (see browser_real.rs), and would then focus it: wake it first, so it maps that one now.
    eventually("the image's own xterm is mapped", || {
        in_desktop(&container, "xdotool mousemove 5 5 click 1");
        let first = in_desktop(&container, "xdotool search --onlyvisible --class '^XTerm$'");
        if first.is_empty() {
            Err("not yet".into())
        } else {
            Ok(())
        }
    })
    .await;
    // A terminal whose shell writes what is typed into /tmp/typed, focused.
    crate::docker::docker(&[
        "exec",
        "-d",
        "-e",
        "DISPLAY=:1",
        &container,
        "xterm",
        "-class",
        "HelpTerm",
        "-e",
        "sh",
        "-c",
        "cat > /tmp/typed",
    ]);
    focus(&container, "HelpTerm").await;

    // Before consent: the missing-desktop answer for both teachers, everywhere.
    for teacher in [&tina, &theo] {
        assert!(enter_as_helper(&app, teacher, id).await.is_none());
        assert_eq!(status_of(teacher, &format!("/desktop/{id}/")).await, 404);
    }
    // Her teacher learns that she has not asked; another group's teacher learns nothing.
    let (status, body) = act(&tina, &format!("/teacher/help/{id}/offer")).await;
    assert_eq!((status, code(&body).as_str()), (409, "help_no_request"), "{body}");
    let (status, body) = act(&theo, &format!("/teacher/help/{id}/offer")).await;
    assert_eq!((status, code(&body).as_str()), (404, "desktop_not_found"), "{body}");
    assert_eq!(refused_status(desktop_ws(&app, id, None).await.unwrap_err()), 404);

    // Asked, offered, allowed: the helper's keystrokes reach the focused xterm.
    assert_eq!(act(&sam, &format!("/help/{id}/request")).await.0, 303);
    assert_eq!(
        act(&theo, &format!("/teacher/help/{id}/offer")).await.0,
        404,
        "not his student"
    );
    assert_eq!(act(&tina, &format!("/teacher/help/{id}/offer")).await.0, 303);
    assert!(
        enter_as_helper(&app, &tina, id).await.is_none(),
        "offered is not allowed"
    );
    assert_eq!(act(&sam, &format!("/help/{id}/accept")).await.0, 303);
    let (cookie, mut ws) = helper_ws(&app, &tina, id).await;
    rfb_handshake(&mut ws).await;
    // Typed again (focus first) only if nothing arrived: a window that took the focus on the
    // way got the keys, not the desktop's terminal.
    let mut typed = String::new();
    for _ in 0..3 {
        focus(&container, "HelpTerm").await;
        type_keys(&mut ws, "typed-by-tina").await;
        let deadline = std::time::Instant::now() + Duration::from_secs(8);
        while typed.is_empty() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            typed = in_desktop(&container, "cat /tmp/typed 2>/dev/null");
        }
        if !typed.is_empty() {
            break;
        }
    }
    assert_eq!(typed, "typed-by-tina", "the helper's keystrokes land in the desktop");

    // She ends it: the WebSocket closes at once; nothing typed afterwards arrives and the
    // cookie opens nothing.
    assert_eq!(act(&sam, &format!("/help/{id}/close")).await.0, 303);
    assert!(
        closes_within(&mut ws, Duration::from_secs(1)).await,
        "closed when she ended it"
    );
    let _ = ws.send(Message::Binary(vec![4, 1, 0, 0, 0, 0, 0, 0x41].into())).await;
    assert_eq!(
        refused_status(desktop_ws(&app, id, Some(&cookie)).await.unwrap_err()),
        404
    );
    assert!(enter_as_helper(&app, &tina, id).await.is_none());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        in_desktop(&container, "cat /tmp/typed"),
        "typed-by-tina",
        "nothing more arrived"
    );

    // Allowed again, then the desktop stops: the grant goes with it.
    help_allowed(&sam, &tina, id).await;
    let (_, mut ws) = helper_ws(&app, &tina, id).await;
    rfb_handshake(&mut ws).await;
    let csrf = sam.csrf().await;
    let stopped = sam
        .post(&format!("/api/desktops/{id}/stop"))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert!(stopped.status().is_success(), "{}", stopped.status());
    assert!(closes_within(&mut ws, Duration::from_secs(10)).await);
    let list = text_of(&tina, "/teacher/help").await;
    assert!(!list.contains(id), "the case ended with the desktop: {list}");
    let entries = help_audit(&app).await;
    assert!(
        entries
            .iter()
            .any(|e| e.actor.is_none() && e.detail.ends_with("(the desktop stopped)")),
        "{entries:#?}"
    );
}

/// Clicks the button of the help form `action` (`data-help-action`) on the current page.
async fn press(chrome: &crate::browser::Chrome, action: &str) {
    chrome
        .client
        .find(fantoccini::Locator::Css(&format!(
            "form[data-help-action={action}] button"
        )))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

#[tokio::test]
async fn in_chromium_the_student_allows_and_ends_the_help_live_while_her_desktop_stays_open() {
    if !crate::browser::browser_ready() {
        return;
    }
    let (app, kasm) = class().await;
    let student = crate::browser::Chrome::start().await;
    let teacher = crate::browser::Chrome::start().await;
    student.sign_in(&app, "sam").await;
    teacher.sign_in(&app, "tina").await;
    student.goto(&app, &format!("/view/{DESK}")).await;
    // Marks this page: if it reloaded (and the desktop with it), the mark would be gone.
    let mark = "window.__helpMark = 1; return true;";
    student.client.execute(mark, vec![]).await.unwrap();
    teacher.goto(&app, "/teacher").await;
    teacher
        .wait_until(
            "the empty list",
            "return !!document.querySelector('[data-role=help-none]');",
        )
        .await;

    // She asks; her teacher's page shows it without a reload, and she offers.
    press(&student, "request").await;
    student
        .wait_until(
            "the request on her page",
            "return !!document.querySelector('.help-row[data-stage=requested]');",
        )
        .await;
    teacher
        .wait_until(
            "the request on the teacher page, live",
            &format!("return !!document.querySelector('[data-role=help-requests] tr[data-desktop-id=\"{DESK}\"][data-stage=requested]');"),
        )
        .await;
    assert!(teacher.text("#help").await.contains("sam (Name)"));
    press(&teacher, "offer").await;

    // Her page asks her, live; she allows it.
    student
        .wait_until(
            "the offer on her page",
            "return !!document.querySelector('.help-row[data-stage=offered][role=alert]');",
        )
        .await;
    let asked = student.text(".help-row[data-stage=offered]").await;
    assert!(asked.contains("tina (Name) möchte deinen Desktop steuern"), "{asked}");
    student.screenshot("help-offer").await;
    press(&student, "accept").await;
    student
        .wait_until(
            "the help banner",
            "return !!document.querySelector('.help-row[data-stage=helping]');",
        )
        .await;
    assert!(
        student
            .text(".help-row[data-stage=helping]")
            .await
            .contains("tina (Name) hilft dir"),
        "the banner names the helper"
    );

    // The teacher opens the desktop on its own origin.
    teacher
        .wait_until(
            "the link into the desktop",
            "return !!document.querySelector('a[data-help-action=open]');",
        )
        .await;
    teacher.screenshot("help-teacher").await;
    let open = teacher
        .client
        .find(fantoccini::Locator::Css("a[data-help-action=open]"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    teacher.goto(&app, &open).await;
    teacher
        .wait_until(
            "the desktop's own origin",
            &format!(
                "return location.host === '{DESK}.localhost:{}' && document.readyState === 'complete';",
                app.addr.port()
            ),
        )
        .await;
    let served = teacher.client.source().await.unwrap();
    assert!(
        !served.contains("csrf"),
        "the desktop's page, nothing of the portal: {served}"
    );

    // She ends it: the teacher's desktop tab no longer gets anything.
    press(&student, "end").await;
    student
        .wait_until(
            "the button to ask again",
            "return !!document.querySelector('.help-row[data-stage=none]');",
        )
        .await;
    teacher.client.refresh().await.unwrap();
    teacher
        .wait_until(
            "the missing-desktop answer",
            "return document.body.innerText.includes('Öffne den Desktop über das Portal');",
        )
        .await;
    let refused = teacher.client.source().await.unwrap();
    assert!(!served.is_empty() && refused != served, "{refused}");
    let still = student
        .client
        .execute("return window.__helpMark === 1;", vec![])
        .await
        .unwrap();
    assert_eq!(still, serde_json::json!(true), "her page (and desktop) never reloaded");
    // The dashboard offers the same for each running desktop of hers.
    student.goto(&app, "/").await;
    student
        .wait_until(
            "the help card on the dashboard",
            &format!("return !!document.querySelector('.help-card:not([hidden]) .help-row[data-desktop-id=\"{DESK}\"] form[data-help-action=request]');"),
        )
        .await;
    student.close().await;
    teacher.close().await;
    let _ = kasm;
}
