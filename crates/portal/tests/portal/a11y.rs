//! Accessibility (BITV 2.0 = WCAG 2.1 A and AA) in real Chromium: axe-core checks every page of
//! every role — sign-in (also with its error), the student's dashboard with desktops in every
//! state, the desktop view running and behind its stopped, failed and starting overlay, the
//! teacher page with its class actions and the end-of-lesson confirmation, every admin page, the error pages — in German and English, and expects no
//! finding. The view page's dialog is also checked by hand for what axe cannot see: it is
//! modal, keeps the keyboard inside while shown and gives focus back when it closes.
//!
//! axe-core comes from a registry package that `scripts/install-axe.sh` installs (PyPI's
//! `axe-playwright-python`, which ships `axe.min.js`); `AXE_JS` names the file. Without it
//! the axe checks fail under `CI=true` and are skipped with a note elsewhere (the focus checks
//! still run). The script is
//! injected over WebDriver, which the page's Content-Security-Policy (`script-src 'self'`) does
//! not govern; the page itself stays as served. The framed desktop is not the portal's page and
//! is left out (`iframes: false`); the frame element itself is checked.

use std::path::PathBuf;

use desktop_runtime::StaticDesktop;
use fantoccini::Locator;
use fantoccini::key::Key;
use portal_store::{DesktopState, Role};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::browser::{Chrome, browser_ready};
use crate::docker::{docker_app, docker_ready, fake_type, start_desktop};
use crate::helpers::*;
use crate::ui_teacher::add_member;

/// The rule sets of WCAG 2.0 and 2.1, levels A and AA (what BITV 2.0 asks for).
const AXE_RUN: &str = "const done = arguments[arguments.length - 1];
axe.run(document, {
  runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
  iframes: false,
  resultTypes: ['violations'],
}).then(r => done({
  violations: r.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help, url: v.helpUrl,
    nodes: v.nodes.map(n => ({ target: n.target, summary: n.failureSummary })),
  })),
  passes: r.passes.length,
  incomplete: r.incomplete.map(v => v.id),
}), e => done({ error: String(e && e.stack || e) }));";

/// `axe.min.js` from `AXE_JS`; `None` (with a note) when it is not there outside CI.
fn axe_source() -> Option<String> {
    let path = std::env::var_os("AXE_JS").map(PathBuf::from);
    if let Some(source) = path.as_ref().and_then(|p| std::fs::read_to_string(p).ok()) {
        assert!(source.starts_with("/*! axe v4."), "AXE_JS is not axe-core 4.x");
        return Some(source);
    }
    let msg = format!(
        "the accessibility tests need axe-core: export AXE_JS=$(scripts/install-axe.sh) \
         (scripts/test.sh does it); AXE_JS={path:?}"
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{msg}");
    }
    eprintln!("skipped: {msg}");
    None
}

/// Runs axe over pages and collects what it finds, so one run reports every page.
struct Axe {
    source: String,
    findings: Vec<String>,
    checked: Vec<String>,
}

impl Axe {
    fn new(source: String) -> Axe {
        Axe {
            source,
            findings: Vec::new(),
            checked: Vec::new(),
        }
    }

    /// Opens `path` in `lang` (the language switch's `?lang=`) and checks it.
    async fn page(&mut self, chrome: &Chrome, app: &TestApp, path: &str, lang: &str) {
        let sep = if path.contains('?') { '&' } else { '?' };
        chrome.goto(app, &format!("{path}{sep}lang={lang}")).await;
        self.current(chrome, &format!("{path} ({lang})"), lang).await;
    }

    /// Checks the page the browser shows now, once its scripts have run.
    async fn current(&mut self, chrome: &Chrome, what: &str, lang: &str) {
        let started = std::time::Instant::now();
        chrome
            .wait_until(
                &format!("{what} loaded"),
                &format!("return document.readyState === 'complete' && document.documentElement.lang === '{lang}';"),
            )
            .await;
        // The pages' own scripts are deferred and may still add to the page: a moment for them.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let c = &chrome.client;
        c.execute(&self.source, vec![]).await.unwrap();
        let ready = c.execute("return typeof axe === 'object';", vec![]).await.unwrap();
        assert_eq!(ready, Value::Bool(true), "axe-core did not load into {what}");
        let result = c.execute_async(AXE_RUN, vec![]).await.unwrap();
        assert!(result.get("error").is_none(), "axe failed on {what}: {result}");
        let violations = result["violations"].as_array().unwrap();
        assert!(result["passes"].as_u64().unwrap() > 0, "axe checked nothing on {what}");
        for v in violations {
            let mut text = format!(
                "{what}: {} ({}): {}\n    {}",
                v["id"].as_str().unwrap_or(""),
                v["impact"].as_str().unwrap_or("?"),
                v["help"].as_str().unwrap_or(""),
                v["url"].as_str().unwrap_or(""),
            );
            for n in v["nodes"].as_array().into_iter().flatten() {
                text.push_str(&format!(
                    "\n    - {}\n      {}",
                    n["target"],
                    n["summary"].as_str().unwrap_or("").replace('\n', "\n      ")
                ));
            }
            self.findings.push(text);
        }
        let incomplete = &result["incomplete"];
        if incomplete.as_array().is_some_and(|a| !a.is_empty()) {
            eprintln!("{what}: for a person to review (axe could not decide): {incomplete}");
        }
        self.checked
            .push(format!("{what} {:.1}s", started.elapsed().as_secs_f64()));
    }

    fn assert_clean(&self) {
        eprintln!("axe checked {} pages: {:?}", self.checked.len(), self.checked);
        assert!(
            self.findings.is_empty(),
            "{} WCAG 2.1 A/AA findings:\n{}",
            self.findings.len(),
            self.findings.join("\n")
        );
    }
}

const LANGS: [&str; 2] = ["de", "en"];

/// Signs out whoever is signed in (the cookies go), then signs `username` in.
async fn switch_user(chrome: &Chrome, app: &TestApp, username: &str) {
    chrome.client.delete_all_cookies().await.unwrap();
    chrome.sign_in(app, username).await;
}

/// Sets desktop `id` of `username` (type `type_key`) to `state` in the store, as the lifecycle
/// records it.
async fn desktop_in_state(app: &TestApp, username: &str, type_key: &str, state: DesktopState, reason: Option<&str>) {
    let store = &app.state.store;
    let user = store.user_by_username(username).await.unwrap().unwrap();
    let id = format!("{username}-{type_key}");
    store.ensure_desktop(&id, &user.id, type_key).await.unwrap();
    store.mark_state(&id, state, reason).await.unwrap();
}

#[tokio::test]
async fn every_page_of_every_role_passes_axe_wcag_21_aa_in_german_and_english() {
    if !browser_ready() || !docker_ready() {
        return;
    }
    let Some(source) = axe_source() else { return };
    let lab = fake_desktop("pw-lab").await;
    let lab_url = lab.url();
    let (app, _scope) = docker_app("a11y", |c| {
        with_desktop_origins(c);
        let mut code = fake_type("code");
        code.groups = vec!["lehrer".into()];
        c.desktop_types = ["fake", "other", "web", "calc", "open"]
            .into_iter()
            .map(fake_type)
            .chain([code])
            .collect();
        c.static_desktops = vec![StaticDesktop {
            id: "lab-a".into(),
            name: Some("Lab A".into()),
            url: lab_url,
            username: Some("kasm_user".into()),
            password: Some(SecretString::from("pw-lab".to_owned())),
            verify_tls: false,
            users: vec!["alice".into()],
            groups: vec![],
        }];
    })
    .await;
    // alice's desktops: one runs (a real container), one failed, one stopped for being idle,
    // one is starting, one was never started.
    let alice = sign_in(&app, "alice").await;
    let (status, body, _) = start_desktop(&alice, "fake").await;
    assert_eq!(status, 202, "{body}");
    desktop_in_state(
        &app,
        "alice",
        "other",
        DesktopState::Failed,
        Some("image pull failed: manifest unknown"),
    )
    .await;
    desktop_in_state(&app, "alice", "web", DesktopState::Stopped, Some("idle")).await;
    desktop_in_state(&app, "alice", "calc", DesktopState::Starting, None).await;
    // A teacher with a class, a grant and a student's desktop.
    add_member(&app, "tina", Role::Teacher, &["5a", "lehrer"]).await;
    add_member(&app, "sam", Role::Student, &["5a"]).await;
    let tina = app.state.store.user_by_username("tina").await.unwrap().unwrap();
    app.state.store.grant_type("code", "5a", &tina.id).await.unwrap();
    // An assignment with a late hand-in, for its page (feedback forms, late marks).
    let essay = app
        .state
        .store
        .create_assignment(&portal_store::NewAssignment {
            owner_id: &tina.id,
            group_name: "5a",
            title: "Aufsatz",
            due_at: portal::domain::unix_now() + 3600,
            allow_late: true,
        })
        .await
        .unwrap();
    desktop_in_state(&app, "sam", "code", DesktopState::Stopped, Some("idle")).await;
    // A prepared lesson: sam's desktop starts, sid (at her limit) is listed as skipped.
    add_member(&app, "sid", Role::Student, &["5a"]).await;
    desktop_in_state(&app, "sid", "web", DesktopState::Starting, None).await;
    desktop_in_state(&app, "sid", "open", DesktopState::Starting, None).await;
    let lesson = app.state.lessons.prepare(&tina, "5a", "code").await.unwrap();
    assert_eq!(lesson.skipped.len(), 1, "{lesson:?}");
    // tina's message to 5a, which alice (a local account, its group set here) is in too: on
    // alice's dashboard and view pages, and on tina's class panel.
    let store = &app.state.store;
    let alice_id = store.user_by_username("alice").await.unwrap().unwrap().id;
    store.set_local_groups(&alice_id, &["5a".into()]).await.unwrap();
    store
        .set_class_message(
            "5a",
            "Bitte speichert eure Arbeit.",
            &tina.id,
            "tina (Name)",
            portal::domain::unix_now() + 3600,
        )
        .await
        .unwrap();
    // A running desktop for the class grid and the watch page (the fake desktop speaks no RFB
    // beyond its greeting, so the picture fails and the page says so). Sue's, who joins 5a
    // after the lesson was prepared: sam's prepared start is still under way, one at a time.
    add_member(&app, "sue", Role::Student, &["5a"]).await;
    let sue = sign_in(&app, "sue").await;
    let (status, body, _) = start_desktop(&sue, "fake").await;
    assert_eq!(status, 202, "{body}");

    let chrome = Chrome::start().await;
    let mut axe = Axe::new(source);

    // Signed out: the sign-in page, its error, a page that does not exist.
    for lang in LANGS {
        axe.page(&chrome, &app, "/login", lang).await;
        let c = &chrome.client;
        c.find(Locator::Css("input[name=username]"))
            .await
            .unwrap()
            .send_keys("alice")
            .await
            .unwrap();
        c.find(Locator::Css("input[name=password]"))
            .await
            .unwrap()
            .send_keys("wrong password")
            .await
            .unwrap();
        c.find(Locator::Css("form[action='/login'] button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        chrome
            .wait_until(
                "the sign-in error",
                "return !!document.querySelector('.card .error[role=alert]');",
            )
            .await;
        axe.current(&chrome, &format!("/login with a wrong password ({lang})"), lang)
            .await;
        axe.page(&chrome, &app, "/no-such-page", lang).await;
    }

    // alice asked for help with her running desktop and an administrator offered it: her
    // dashboard and that view show the offer, lab-a's view the button to ask.
    let user = |name: &'static str| {
        let store = app.state.store.clone();
        async move { store.user_by_username(name).await.unwrap().unwrap() }
    };
    let (alice_user, root_user) = (user("alice").await, user("root").await);
    app.state.help.request(&alice_user, "alice-fake").await.unwrap();
    app.state.help.offer(&root_user, "alice-fake").await.unwrap();

    // A student: the dashboard with every state, each view, the error pages.
    switch_user(&chrome, &app, "alice").await;
    for lang in LANGS {
        axe.page(&chrome, &app, "/", lang).await;
        for (id, state) in [
            ("alice-fake", "running"),
            ("alice-other", "failed"),
            ("alice-web", "stopped"),
            ("alice-calc", "starting"),
            ("lab-a", "running"),
        ] {
            axe.page(&chrome, &app, &format!("/view/{id}"), lang).await;
            let shown = chrome
                .client
                .execute("return document.body.dataset.state;", vec![])
                .await;
            assert_eq!(shown.unwrap(), json!(state), "/view/{id}");
        }
        axe.page(&chrome, &app, "/no-such-page", lang).await;
        axe.page(&chrome, &app, "/admin", lang).await;
        assert!(chrome.text("main").await.contains("HTTP 403"));
        axe.page(&chrome, &app, "/view/sam-code", lang).await;
        assert!(chrome.text("main").await.contains("HTTP 404"));
    }
    chrome.goto(&app, "/?lang=en").await;
    chrome.screenshot("a11y-dashboard").await;
    chrome.goto(&app, "/view/alice-other?lang=en").await;
    chrome.screenshot("a11y-view-failed").await;

    // A teacher.
    switch_user(&chrome, &app, "tina").await;
    for lang in LANGS {
        axe.page(&chrome, &app, "/teacher", lang).await;
        axe.page(&chrome, &app, "/teacher/end-lesson?group=5a", lang).await;
        axe.page(&chrome, &app, "/teacher/desktops/sue-fake/watch", lang).await;
        axe.page(&chrome, &app, &format!("/teacher/assignments/{}", essay.id), lang)
            .await;
        axe.page(&chrome, &app, "/", lang).await;
    }

    // An admin: every admin page, and the one-time password after a reset. alice allowed
    // the help, so the teacher page shows it with the link into her desktop.
    app.state.help.accept(&alice_user, "alice-fake").await.unwrap();
    switch_user(&chrome, &app, "root").await;
    for lang in LANGS {
        for path in [
            "/admin",
            "/admin/types",
            "/admin/types/new",
            "/admin/types/fake",
            "/admin/users",
            "/admin/audit",
            "/admin/disk",
            "/admin/audit?kind=sign_in&user=alice",
            "/admin/branding",
            "/teacher",
        ] {
            axe.page(&chrome, &app, path, lang).await;
        }
        chrome.goto(&app, "/admin/users").await;
        chrome
            .client
            .execute("window.confirm = () => true; return true;", vec![])
            .await
            .unwrap();
        chrome
            .client
            .find(Locator::Css("form[action='/admin/users/bob/password'] button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        chrome
            .wait_until(
                "the new password",
                "return !!document.querySelector('[data-role=new-password]');",
            )
            .await;
        axe.current(&chrome, &format!("the one-time password ({lang})"), lang)
            .await;
    }
    chrome.goto(&app, "/admin?lang=en").await;
    chrome.screenshot("a11y-admin").await;
    chrome.close().await;
    axe.assert_clean();
}

/// JS: whether the focused element is inside the view page's dialog.
const FOCUS_IN_DIALOG: &str =
    "return !!document.activeElement && !!document.activeElement.closest('#overlay [role=alertdialog]');";

#[tokio::test]
async fn the_view_pages_dialog_is_modal_keeps_focus_and_gives_it_back() {
    if !browser_ready() || !docker_ready() {
        return;
    }
    // The focus checks need no axe-core; its checks of the dialog run when it is there.
    let mut axe = axe_source().map(Axe::new);
    let (app, _scope) = docker_app("a11yfocus", with_desktop_origins).await;
    let alice = sign_in(&app, "alice").await;
    let (status, body, _) = start_desktop(&alice, "fake").await;
    assert_eq!(status, 202, "{body}");
    let chrome = Chrome::start().await;
    let c = &chrome.client;
    chrome.sign_in(&app, "alice").await;
    chrome.goto(&app, "/view/alice-fake?lang=en").await;
    chrome
        .wait_until(
            "the running desktop",
            "return document.body.dataset.state === 'running' && document.getElementById('overlay').hidden;",
        )
        .await;
    let inert = "return ['.viewbar', '#main'].map(s => document.querySelector(s).inert);";
    assert_eq!(c.execute(inert, vec![]).await.unwrap(), json!([false, false]));

    // The keyboard user is on the toolbar's Stop button when an admin stops the desktop.
    c.execute(
        "document.querySelector('[data-action=stop] button').focus(); return true;",
        vec![],
    )
    .await
    .unwrap();
    let root = sign_in(&app, "root").await;
    let csrf = root.csrf().await;
    let stopped = root.post_json("/api/admin/desktops/alice-fake/stop", &csrf).await;
    assert_eq!(stopped["state"], "stopped", "{stopped}");
    chrome
        .wait_until(
            "the overlay",
            "return document.body.dataset.state === 'stopped' && !document.getElementById('overlay').hidden;",
        )
        .await;

    // A modal dialog, named, with the focus inside and everything behind it out of reach.
    let dialog = c
        .execute(
            "const d = document.querySelector('#overlay [role=alertdialog]');
             return [d.getAttribute('aria-modal'), document.getElementById(d.getAttribute('aria-labelledby')).textContent,
                     !!d.getAttribute('aria-describedby')];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(dialog, json!(["true", "Your desktop has stopped.", true]));
    chrome.wait_until("the focus in the dialog", FOCUS_IN_DIALOG).await;
    assert_eq!(c.execute(inert, vec![]).await.unwrap(), json!([true, true]));

    // Tab and Shift+Tab go round inside the dialog.
    let focusables: Value = c
        .execute(
            "return [...document.querySelectorAll('#overlay [role=alertdialog] :is(a[href], button, input:not([type=hidden]))')]
               .filter(e => !e.disabled && e.getClientRects().length).length;",
            vec![],
        )
        .await
        .unwrap();
    let n = focusables.as_u64().unwrap();
    assert!(n >= 2, "the dialog offers start and back: {n}");
    for (keys, what) in [
        (Key::Tab.to_string(), "Tab"),
        (format!("{}{}", Key::Shift, Key::Tab), "Shift+Tab"),
    ] {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..(2 * n + 1) {
            c.active_element().await.unwrap().send_keys(&keys).await.unwrap();
            let inside = c.execute(FOCUS_IN_DIALOG, vec![]).await.unwrap();
            let label = c
                .execute("return document.activeElement.textContent.trim();", vec![])
                .await
                .unwrap();
            assert_eq!(inside, Value::Bool(true), "{what} left the dialog (to {label})");
            seen.insert(label.to_string());
        }
        assert_eq!(
            seen.len() as u64,
            n,
            "{what} reaches every control of the dialog: {seen:?}"
        );
    }

    // The stopped overlay passes axe too.
    if let Some(axe) = axe.as_mut() {
        axe.current(&chrome, "the view's stopped dialog, focus kept", "en")
            .await;
    }
    chrome.screenshot("a11y-view-stopped-dialog").await;

    // Started again from the dialog: it closes, the page behind comes back, and the focus returns
    // to where it was.
    c.execute(
        "document.querySelector('#overlay [data-action=start] button').focus(); return true;",
        vec![],
    )
    .await
    .unwrap();
    c.active_element()
        .await
        .unwrap()
        .send_keys(&Key::Enter.to_string())
        .await
        .unwrap();
    chrome
        .wait_until(
            "the desktop to run again and the focus to return to the Stop button",
            "return document.body.dataset.state === 'running' && document.getElementById('overlay').hidden
               && document.activeElement === document.querySelector('[data-action=stop] button');",
        )
        .await;
    assert_eq!(c.execute(inert, vec![]).await.unwrap(), json!([false, false]));
    if let Some(axe) = axe.as_mut() {
        axe.current(&chrome, "the view running again", "en").await;
    }
    chrome.screenshot("a11y-view-running").await;
    chrome.close().await;
    if let Some(axe) = axe {
        axe.assert_clean();
    }
}
