//! What students and teachers see, in real headless Chromium against the real portal on
//! Docker with the tiny fake-Kasm image: the dashboard with only permitted desktops, a start
//! by keyboard with live progress that opens the desktop by itself, the desktop's WebSocket
//! through the proxy, an admin's stop and a `docker kill` showing live, removing, the teacher
//! page, and the language switch leaving no German word in the English pages.
//!
//! Screenshots of each page go to `target/test-artifacts/`; with `IRD_SCREENSHOTS=1` the
//! README's `docs/screenshot-*.png` are refreshed too.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use fantoccini::Locator;
use fantoccini::key::Key;
use serde_json::Value;

use crate::browser::{CONNECTED, Chrome, WAIT, browser_ready, unix_now};
use crate::docker::{docker, docker_app, docker_ready, fake_type};
use crate::helpers::*;
use crate::ui_teacher::{add_member, school};

/// Words that are the same in both languages: names, data and the language codes.
const NEUTRAL: &[&str] = &[
    "IServ", "Remote", "Desktop", "DE", "EN", "alice", "tina", "sam", "Name", "Fake", "fake", "other", "code", "open",
    "lehrer", "a", "s", "Linux", "Desktops", "in",
];

/// The words the page shows (visible text only).
async fn visible_words(chrome: &Chrome) -> BTreeSet<String> {
    let text = chrome
        .client
        .execute("return document.body.innerText;", vec![])
        .await
        .unwrap();
    text.as_str()
        .unwrap()
        .split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Switches the page to English and back with the header's switcher, and fails on any word
/// both versions show that is not a name or data: an untranslated text.
async fn assert_switch_translates_everything(chrome: &Chrome, what: &str) {
    chrome.click("a[hreflang=en]").await;
    chrome
        .wait_until("the English page", "return document.documentElement.lang === 'en';")
        .await;
    let en = visible_words(chrome).await;
    chrome.click("a[hreflang=de]").await;
    chrome
        .wait_until("the German page", "return document.documentElement.lang === 'de';")
        .await;
    let de = visible_words(chrome).await;
    let untranslated: Vec<&String> = en
        .intersection(&de)
        .filter(|w| !NEUTRAL.contains(&w.as_str()))
        .collect();
    assert!(
        untranslated.is_empty(),
        "{what}: the same words in German and English: {untranslated:?}\nen: {en:?}\nde: {de:?}"
    );
    assert!(
        en.contains("Sign") || en.contains("desktops") || en.contains("classes"),
        "{what}: {en:?}"
    );
}

async fn js(chrome: &Chrome, code: &str) -> Value {
    chrome.client.execute(code, vec![]).await.unwrap()
}

/// Picks `value` in the select at `css`.
async fn select(chrome: &Chrome, css: &str, value: &str) {
    let el = chrome.client.find(Locator::Css(css)).await.unwrap();
    el.select_by_value(value).await.unwrap();
}

const CARD: &str = ".desktop[data-type='fake']";

#[tokio::test]
async fn a_student_starts_a_desktop_and_sees_stops_and_crashes_live() {
    if !browser_ready() || !docker_ready() {
        return;
    }
    let (app, scope) = docker_app("ui", |c| {
        let mut staff = fake_type("staff");
        staff.groups = vec!["staff".into()];
        c.desktop_types.push(staff);
    })
    .await;
    let chrome = Chrome::start().await;
    let c = &chrome.client;

    // Sign-in page: German for this German browser, everything translated.
    chrome.goto(&app, "/login").await;
    assert_switch_translates_everything(&chrome, "the sign-in page").await;
    chrome.goto(&app, "/login?lang=en").await;
    chrome
        .wait_until(
            "the English sign-in page",
            "return document.documentElement.lang === 'en';",
        )
        .await;
    chrome.screenshot("login").await;
    chrome.sign_in(&app, "alice").await;

    // Only the types alice may use.
    let cards = js(
        &chrome,
        "return [...document.querySelectorAll('.desktop[data-type]')].map(c => c.dataset.type);",
    )
    .await;
    assert_eq!(cards, serde_json::json!(["fake", "other"]));
    assert_eq!(
        chrome.text(&format!("{CARD} [data-role=state]")).await,
        "Not started yet"
    );

    // Every state and step the card shows, kept across the page change that follows.
    js(
        &chrome,
        &format!(
            "const card = document.querySelector(\"{CARD}\");
             window.confirm = () => true;
             new MutationObserver(() => {{
               const seen = JSON.parse(sessionStorage.getItem('seen') || '[]');
               seen.push(card.dataset.state + ' ' + card.querySelector('[data-role=step]').textContent);
               sessionStorage.setItem('seen', JSON.stringify(seen));
             }}).observe(card, {{ attributes: true, childList: true, subtree: true, characterData: true }});
             return true;"
        ),
    )
    .await;

    // By keyboard: Tab to the Start button (its focus is visible), Enter starts.
    let start_button = format!("{CARD} [data-action=start] button");
    let mut tabs = 0;
    loop {
        c.active_element()
            .await
            .unwrap()
            .send_keys(&Key::Tab.to_string())
            .await
            .unwrap();
        let focused = js(
            &chrome,
            &format!("return document.activeElement === document.querySelector(\"{start_button}\");"),
        )
        .await;
        if focused == Value::Bool(true) {
            break;
        }
        tabs += 1;
        assert!(tabs < 30, "Tab never reached the Start button");
    }
    let outline = js(&chrome, "return getComputedStyle(document.activeElement).outlineStyle;").await;
    assert_ne!(outline, "none", "the focused button shows a focus ring");
    c.active_element()
        .await
        .unwrap()
        .send_keys(&Key::Enter.to_string())
        .await
        .unwrap();

    // The desktop opens by itself when it is ready.
    chrome
        .wait_until(
            "the desktop view to open by itself",
            "return location.pathname === '/view/alice-fake';",
        )
        .await;
    let seen: Vec<String> =
        serde_json::from_value(js(&chrome, "return JSON.parse(sessionStorage.getItem('seen') || '[]');").await)
            .unwrap();
    assert!(
        seen.first().is_some_and(|s| s.starts_with("starting")),
        "the card answers at once: {seen:?}"
    );
    assert!(
        seen.iter()
            .any(|s| s.starts_with("starting ") && s.len() > "starting ".len()),
        "progress steps shown live while starting: {seen:?}"
    );
    let frame = c.find(Locator::Css("iframe#desktop")).await.unwrap();
    assert_eq!(
        frame.attr("src").await.unwrap().as_deref(),
        Some("/desktop/alice-fake/?path=desktop/alice-fake/websockify")
    );
    frame.clone().enter_frame().await.unwrap();
    chrome
        .wait_until("the framed desktop's WebSocket to connect", CONNECTED)
        .await;
    c.enter_parent_frame().await.unwrap();
    chrome.screenshot("desktop").await;

    heartbeats_count_as_input(&app, &chrome).await;

    // An admin stops it: the view says so at once and offers to start it again.
    let root = sign_in(&app, "root").await;
    let csrf = root.csrf().await;
    let stopped = root.post_json("/api/admin/desktops/alice-fake/stop", &csrf).await;
    assert_eq!(stopped["state"], "stopped", "{stopped}");
    chrome
        .wait_until(
            "the view to show the admin's stop",
            "return document.body.dataset.state === 'stopped' && !document.getElementById('overlay').hidden \
             && document.querySelector('[data-role=overlay-reason]').textContent.includes('administrator');",
        )
        .await;
    chrome.screenshot("desktop-stopped").await;
    chrome.click("#overlay [data-action=start] button").await;
    chrome
        .wait_until(
            "the desktop to run and load again",
            "return document.body.dataset.state === 'running' && document.getElementById('overlay').hidden \
             && (document.getElementById('desktop').getAttribute('src') || '').startsWith('/desktop/');",
        )
        .await;
    c.find(Locator::Css("iframe#desktop"))
        .await
        .unwrap()
        .enter_frame()
        .await
        .unwrap();
    chrome.wait_until("the desktop to connect again", CONNECTED).await;

    // Kasm's client reports its own idle limit to the page: the desktop stops, the page says why.
    js(
        &chrome,
        "window.parent.postMessage({ action: 'idle_session_timeout' }, location.origin); return true;",
    )
    .await;
    c.enter_parent_frame().await.unwrap();
    chrome
        .wait_until(
            "the view to show the idle stop",
            "return document.body.dataset.state === 'stopped' && !document.getElementById('overlay').hidden \
             && document.querySelector('[data-role=overlay-reason]').textContent.includes('idle');",
        )
        .await;
    let d = wait_for_stopped(&app, "alice-fake").await;
    assert_eq!(d.as_deref(), Some("idle (reported by the desktop)"));
    chrome.click("#overlay [data-action=start] button").await;
    chrome
        .wait_until(
            "the desktop to run after the idle stop",
            "return document.body.dataset.state === 'running' && document.getElementById('overlay').hidden;",
        )
        .await;

    // Back on the dashboard: running, and the other desktop ready to start.
    chrome.click("a[data-action=back]").await;
    chrome
        .wait_until(
            "the dashboard with the desktop running",
            &format!("return document.querySelector(\"{CARD}\")?.dataset.state === 'running';"),
        )
        .await;
    chrome.screenshot("dashboard").await;

    // A crash (docker kill) shows live, with what to do.
    docker(&["kill", &scope.container("alice-fake")]);
    chrome
        .wait_until(
            "the card to show the crash",
            &format!(
                "const card = document.querySelector(\"{CARD}\");
                 return card.dataset.state === 'stopped'
                   && card.querySelector('[data-role=reason]').textContent.includes('stopped unexpectedly');"
            ),
        )
        .await;
    chrome.screenshot("dashboard-stopped").await;

    // Remove asks first, then the card is back to "not started"; the files stay (home volume).
    chrome.click(&format!("{CARD} [data-action=remove] summary")).await;
    let confirm = chrome.text(&format!("{CARD} .confirm-box p")).await;
    assert_eq!(confirm, "Your desktop's container is deleted; your files stay.");
    chrome.click(&format!("{CARD} .confirm-box button")).await;
    chrome
        .wait_until(
            "the card to show the removal",
            &format!("return document.querySelector(\"{CARD}\").dataset.state === 'none';"),
        )
        .await;
    assert!(app.state.store.desktop("alice-fake").await.unwrap().is_none());

    assert_switch_translates_everything(&chrome, "the dashboard").await;
    // From a small school laptop's window to a large screen: nothing wider than the window.
    for (width, name) in [(420, "dashboard-narrow"), (1920, "dashboard-wide")] {
        c.set_window_size(width, 900).await.unwrap();
        let fits = js(
            &chrome,
            "return document.documentElement.scrollWidth <= window.innerWidth;",
        )
        .await;
        assert_eq!(fits, Value::Bool(true), "the dashboard scrolls sideways at {width} px");
        chrome.screenshot(name).await;
    }
    chrome.close().await;
}

/// Waits until the store has the desktop stopped; returns the recorded reason (its English
/// account; the store keeps a code).
async fn wait_for_stopped(app: &TestApp, id: &str) -> Option<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let d = app.state.store.desktop(id).await.unwrap().unwrap();
        if d.state == portal_store::DesktopState::Stopped {
            return portal::domain::stop_reason::StopReason::of(&d).map(|r| r.to_string());
        }
        assert!(Instant::now() < deadline, "{id} did not stop: {d:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Input in the view page and inside the framed desktop each send a heartbeat. The page
/// sends at most one per 30 s, so its clock is moved on before each input.
async fn heartbeats_count_as_input(app: &TestApp, chrome: &Chrome) {
    let c = &chrome.client;
    let id = "alice-fake";
    for (what, in_frame) in [
        ("a key press in the view page", false),
        ("a mouse move in the desktop", true),
    ] {
        let mark = unix_now() - 600;
        app.state.store.touch_activity(id, mark).await.unwrap();
        js(
            chrome,
            "window.skew = (window.skew || 0) + 60000;
             window.realNow = window.realNow || Date.now.bind(Date);
             Date.now = () => window.realNow() + window.skew;",
        )
        .await;
        let deadline = Instant::now() + WAIT;
        loop {
            // Repeated until seen: a heartbeat still in flight makes the page skip input.
            if in_frame {
                c.enter_frame(0).await.unwrap();
                js(
                    chrome,
                    "document.dispatchEvent(new MouseEvent('mousemove', { bubbles: true }));",
                )
                .await;
                c.enter_parent_frame().await.unwrap();
            } else {
                js(
                    chrome,
                    "document.dispatchEvent(new KeyboardEvent('keydown', { key: 'a', bubbles: true }));",
                )
                .await;
            }
            let last = app.state.store.desktop(id).await.unwrap().unwrap().last_activity_at;
            if last.is_some_and(|t| t > mark) {
                break;
            }
            assert!(Instant::now() < deadline, "no heartbeat after {what}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test]
async fn a_teacher_enables_a_desktop_for_her_class_in_the_browser() {
    if !browser_ready() {
        return;
    }
    let app = spawn_app_with(&[], school).await;
    add_member(&app, "tina", portal_store::Role::Teacher, &["5a", "lehrer"]).await;
    let chrome = Chrome::start().await;
    chrome.sign_in(&app, "tina").await;
    chrome.click("a[href='/teacher']").await;
    chrome
        .wait_until("the teacher page", "return location.pathname === '/teacher';")
        .await;
    select(&chrome, "select[name=type]", "code").await;
    select(&chrome, "select[name=group]", "5a").await;
    chrome.click("form[action='/teacher/grants'] button").await;
    chrome
        .wait_until(
            "the grant to show",
            "return !!document.querySelector(\"[data-grant='code:5a']\");",
        )
        .await;
    assert_eq!(app.state.store.type_grants().await.unwrap().len(), 1);

    // The students' desktops stay current without a reload: a student of 5a starts one, then
    // it stops (rows in the store, as the lifecycle writes them).
    add_member(&app, "sam", portal_store::Role::Student, &["5a"]).await;
    let sam = app.state.store.user_by_username("sam").await.unwrap().unwrap();
    let d = app
        .state
        .store
        .ensure_desktop("sam-code", &sam.id, "code")
        .await
        .unwrap();
    app.state.store.mark_running(&d.id, "c1", "127.0.0.1", 1).await.unwrap();
    chrome
        .wait_until(
            "sam's running desktop on the open teacher page",
            "return !!document.querySelector(\"tr[data-desktop-id='sam-code'][data-state='running']\");",
        )
        .await;
    app.state
        .store
        .mark_state(&d.id, portal_store::DesktopState::Stopped, Some("idle"))
        .await
        .unwrap();
    chrome
        .wait_until(
            "sam's desktop shown as stopped",
            "return !!document.querySelector(\"tr[data-desktop-id='sam-code'][data-state='stopped']\");",
        )
        .await;
    assert_switch_translates_everything(&chrome, "the teacher page").await;
    chrome.goto(&app, "/teacher?lang=en").await;
    chrome
        .wait_until(
            "the English teacher page",
            "return document.documentElement.lang === 'en';",
        )
        .await;
    chrome.screenshot("teacher").await;
    chrome.close().await;
}
