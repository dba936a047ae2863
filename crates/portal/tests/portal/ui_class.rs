//! The class actions in real Chromium on Docker: a student sees her teacher's message appear
//! and go while her dashboard is open; the teacher stops and restarts the student's desktop
//! from `/teacher`, ends the lesson through its confirmation page, and sends a message with
//! the form. Saves `target/test-artifacts/teacher-class.png`.

use fantoccini::Locator;
use portal_store::Role;

use crate::browser::{Chrome, browser_ready};
use crate::class_actions::{local_member, post_form};
use crate::docker::{docker, docker_app, docker_ready, start_desktop};
use crate::helpers::*;

/// Waits until the teacher page (`on_teacher_page`: and no other) shows sam's desktop in `state`.
async fn sam_shown(chrome: &Chrome, state: &str, on_teacher_page: bool) {
    let page = if on_teacher_page {
        "location.pathname === '/teacher' && "
    } else {
        ""
    };
    chrome
        .wait_until(
            &format!("sam's desktop shown {state}"),
            &format!(
                "const r = document.querySelector(\"tr[data-desktop-id='sam-fake']\");
                 return {page}!!r && r.dataset.state === '{state}';"
            ),
        )
        .await;
}

#[tokio::test]
async fn teachers_use_the_class_actions_and_students_see_the_message_live_in_chromium() {
    if !browser_ready() || !docker_ready() {
        return;
    }
    let (app, scope) = docker_app("uiclass", |_| {}).await;
    local_member(&app, "tina", Role::Teacher, &["5a"]).await;
    local_member(&app, "sam", Role::Student, &["5a"]).await;
    let sam = sign_in(&app, "sam").await;
    let (status, body, _) = start_desktop(&sam, "fake").await;
    assert_eq!(status, 202, "{body}");
    let tina = sign_in(&app, "tina").await;
    let running = || docker(&["inspect", "-f", "{{.State.Running}}", &scope.container("sam-fake")]) == "true";

    // sam's dashboard is open; tina's message appears without a reload, as text.
    let chrome = Chrome::start().await;
    let c = &chrome.client;
    chrome.sign_in(&app, "sam").await;
    chrome.goto(&app, "/?lang=en").await;
    c.execute("window.loadedOnce = true; return true;", vec![])
        .await
        .unwrap();
    let text = "Save your work, <b>now</b>!";
    let (status, _) = post_form(&tina, "/teacher/messages", &[("group", "5a"), ("text", text)]).await;
    assert_eq!(status, 303);
    chrome
        .wait_until(
            "the message on sam's open dashboard",
            "const m = document.querySelector('[data-role=class-message] [data-role=body]');
             return window.loadedOnce === true && !!m && m.textContent === 'Save your work, <b>now</b>!';",
        )
        .await;
    let from = chrome.text("[data-role=class-message] strong").await;
    assert_eq!(from, "Message from tina (Name) (5a):");
    let (status, _) = post_form(&tina, "/teacher/messages/clear", &[("group", "5a")]).await;
    assert_eq!(status, 303);
    chrome
        .wait_until(
            "the message gone from sam's dashboard",
            "return window.loadedOnce === true && !document.querySelector('[data-role=class-message]');",
        )
        .await;

    // tina on /teacher: stop, restart, each with one click and no script needed.
    c.delete_all_cookies().await.unwrap();
    chrome.sign_in(&app, "tina").await;
    chrome.goto(&app, "/teacher?lang=en").await;
    let row = "tr[data-desktop-id='sam-fake']";
    chrome.click(&format!("{row} button[data-action=class-stop]")).await;
    sam_shown(&chrome, "stopped", true).await;
    assert!(!running(), "stopped in Docker");
    chrome.click(&format!("{row} button[data-action=class-restart]")).await;
    // The list refreshes itself every few seconds (teacher.js) until the desktop runs.
    sam_shown(&chrome, "running", false).await;
    assert!(running(), "running again in Docker");

    // End the lesson: a confirmation page first, then the desktop stops.
    chrome.click("[data-group='5a'] button[data-action=end-lesson]").await;
    chrome
        .wait_until(
            "the confirmation naming sam",
            "return location.pathname === '/teacher/end-lesson'
                 && document.querySelector('[data-role=lesson-students]').textContent.includes('sam (Name) (sam)');",
        )
        .await;
    assert!(running(), "asking stops nothing");
    chrome.click("button[data-action=confirm-end-lesson]").await;
    sam_shown(&chrome, "stopped", true).await;
    assert!(!running(), "the lesson ended in Docker");

    // A message through the form: the panel shows it; sam gets it.
    let area = c
        .find(Locator::Css("[data-group='5a'] textarea[name=text]"))
        .await
        .unwrap();
    area.send_keys("Bis morgen!").await.unwrap();
    chrome.click("[data-group='5a'] button[data-action=send-message]").await;
    chrome
        .wait_until(
            "the message on the class panel",
            "const m = document.querySelector(\"[data-group='5a'] [data-role=current-message]\");
             return !!m && m.textContent.includes('Bis morgen!');",
        )
        .await;
    chrome.screenshot("teacher-class").await;
    let dashboard = sam.get("/").send().await.unwrap().text().await.unwrap();
    assert!(dashboard.contains("Bis morgen!"), "{dashboard}");
    chrome.close().await;
}
