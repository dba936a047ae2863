//! "Prepare the lesson" on the real Docker engine: a teacher starts a desktop for every
//! student of her group through the start queue; each desktop is the student's, the audit log
//! names the teacher, students who may not have one now are skipped and reported; another
//! group's teacher and students are refused.

use std::time::{Duration, Instant};

use portal_store::{AuditFilter, Role};
use serde_json::Value;

use crate::docker::{docker_app, docker_ready, start_desktop, wait_for_state};
use crate::helpers::*;
use crate::ui_teacher::add_member;

/// Posts the lesson form as the page does; status and body.
async fn prepare(b: &Browser, group: &str, type_key: &str) -> (u16, String) {
    let csrf = b.csrf().await;
    let resp = b
        .post("/teacher/lesson")
        .header("accept-language", "en")
        .form(&[("csrf_token", csrf.as_str()), ("group", group), ("type", type_key)])
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// The count `what` (`running`, `queued`, …) of `group`'s lesson in the progress fragment.
fn count(fragment: &str, group: &str, what: &str) -> Option<u64> {
    let row = fragment
        .split("<tr data-lesson=\"")
        .find(|r| r.starts_with(&format!("{group}\"")))?;
    let at = row.find(&format!("data-{what}=\""))? + what.len() + 7;
    row[at..].split('"').next()?.parse().ok()
}

#[tokio::test]
async fn a_teacher_starts_her_groups_desktops_and_only_her_groups() {
    if !docker_ready() {
        return;
    }
    let (app, _scope) = docker_app("lesson", |c| {
        c.limits.max_concurrent_starts = 2;
        c.limits.max_running_per_user = 1;
    })
    .await;
    add_member(&app, "tina", Role::Teacher, &["5a"]).await;
    for s in ["sam", "sue", "sid", "sal"] {
        add_member(&app, s, Role::Student, &["5a"]).await;
    }
    add_member(&app, "otto", Role::Student, &["6b"]).await;
    // sid already runs a desktop: at her limit, she is skipped and reported.
    let sid = sign_in(&app, "sid").await;
    let (status, _, steps) = start_desktop(&sid, "other").await;
    assert_eq!(status, 202);
    assert_eq!(steps.last().unwrap()["step"], "ready", "{steps:?}");

    let tina = sign_in(&app, "tina").await;
    let page = tina.get_text_en("/teacher").await;
    assert!(page.contains("data-lesson-group=\"5a\""), "{page}");
    assert!(
        !page.contains("data-lesson-group=\"6b\""),
        "only her own groups: {page}"
    );
    let (status, body) = prepare(&tina, "5a", "fake").await;
    assert_eq!(status, 303, "{body}");

    // The page counts how far the lesson got, until every started desktop runs.
    let deadline = Instant::now() + Duration::from_secs(90);
    let fragment = loop {
        let fragment = tina.get_text_en("/teacher/lesson").await;
        if count(&fragment, "5a", "running") == Some(3) || Instant::now() > deadline {
            break fragment;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(count(&fragment, "5a", "running"), Some(3), "{fragment}");
    assert_eq!(count(&fragment, "5a", "failed"), Some(0), "{fragment}");
    assert_eq!(count(&fragment, "5a", "skipped"), Some(1), "{fragment}");
    assert!(
        fragment.contains("data-student=\"sid\">sid (Name) (sid): already runs as many desktops as allowed"),
        "{fragment}"
    );
    // Each desktop is the student's own; the audit log names the teacher.
    for s in ["sam", "sue", "sal"] {
        let student = sign_in(&app, s).await;
        let d: Value = student.get_json(&format!("/api/desktops/{s}-fake")).await;
        assert_eq!(d["state"], "running", "{d}");
    }
    let (entries, _) = app
        .state
        .store
        .audit_page(&AuditFilter {
            user: Some("sam".into()),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    let start = entries
        .iter()
        .find(|e| e.kind == "desktop_started" && e.target.as_deref() == Some("sam-fake"))
        .unwrap_or_else(|| panic!("{entries:?}"));
    assert_eq!(start.actor.as_deref(), Some("tina"), "{start:?}");
    assert_eq!(start.username.as_deref(), Some("sam"), "{start:?}");
    assert!(start.detail.contains("lesson of group 5a"), "{start:?}");

    // Another group's lesson: refused as on the rest of the teacher page; nothing starts.
    let (status, body) = prepare(&tina, "6b", "fake").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("groups you are in"), "{body}");
    // A student: refused.
    let sam = sign_in(&app, "sam").await;
    let (status, body) = prepare(&sam, "5a", "other").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("for teachers and administrators only"), "{body}");
    assert_eq!(sam.get("/teacher/lesson").send().await.unwrap().status(), 403);
    // Nobody signed in, and a forged form without the session's token: refused.
    let anonymous = Browser::new(&app)
        .post("/teacher/lesson")
        .form(&[("group", "5a"), ("type", "fake")])
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401, "not signed in");
    let forged = tina
        .post("/teacher/lesson")
        .form(&[("csrf_token", "x"), ("group", "5a"), ("type", "fake")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let otto = app
        .state
        .store
        .desktops_of_user(&user_id(&app, "otto").await)
        .await
        .unwrap();
    assert!(otto.is_empty(), "{otto:?}");
    // An unknown type: refused with the page's message.
    assert_eq!(prepare(&tina, "5a", "nope").await.0, 422);

    // An administrator may prepare any group's lesson.
    let root = sign_in(&app, "root").await;
    let (status, body) = prepare(&root, "6b", "fake").await;
    assert_eq!(status, 303, "{body}");
    let otto = sign_in(&app, "otto").await;
    let d = wait_for_state(&otto, "otto-fake", "running", Duration::from_secs(60)).await;
    assert_eq!(d["state"], "running", "{d}");
}

async fn user_id(app: &TestApp, name: &str) -> String {
    app.state
        .store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .find(|u| u.username == name)
        .unwrap()
        .id
}
