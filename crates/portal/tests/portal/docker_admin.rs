//! Admin control and keeping truth on Docker: stop-all, clean-up, the total limit, shared
//! folder permissions, and desktops whose containers vanished while the portal was down.

use std::time::Duration;

use serde_json::Value;

use crate::docker::*;
use crate::helpers::*;

#[tokio::test]
async fn admins_stop_all_and_clean_up_while_students_may_not() {
    if !docker_ready() {
        return;
    }
    let (app, scope) = docker_app("admin", |_| {}).await;
    let alice = sign_in(&app, "alice").await;
    let bob = sign_in(&app, "bob").await;
    let root = sign_in(&app, "root").await;
    let (a, b) = tokio::join!(start_desktop(&alice, "fake"), start_desktop(&bob, "fake"));
    assert_eq!((a.0, b.0), (202, 202));
    let alice_csrf = alice.csrf().await;
    let refused = alice
        .post("/api/admin/stop-all")
        .header("x-csrf-token", &alice_csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(alice.get("/api/admin/desktops").send().await.unwrap().status(), 403);

    // The admin page lists every desktop; students don't get it.
    assert_eq!(alice.get("/admin").send().await.unwrap().status(), 403);
    let page = root
        .get("/admin")
        .header("accept-language", "en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("data-desktop-id=\"alice-fake\"") && page.contains("data-desktop-id=\"bob-fake\""),
        "{page}"
    );
    assert!(page.contains("2 desktops running"), "{page}");
    assert!(
        root.get("/")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .contains("href=\"/admin\"")
    );
    let root_csrf = root.csrf().await;
    let all: Value = root.get_json("/api/admin/desktops").await;
    assert_eq!(all["desktops"].as_array().unwrap().len(), 2);
    let stopped: Value = root.post_json("/api/admin/stop-all", &root_csrf).await;
    assert_eq!(stopped["stopped"], 2);
    let d = desktop(&alice, "alice-fake").await;
    assert_eq!(d["state"], "stopped");
    assert!(d["state_reason"].as_str().unwrap().contains("administrator"), "{d}");
    let cleaned: Value = root.post_json("/api/admin/cleanup-stopped", &root_csrf).await;
    assert_eq!(cleaned["removed"], 2);
    assert_eq!(
        docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("name=^{}$", scope.container("alice-fake"))
        ]),
        ""
    );
    // The homes stay.
    for name in ["alice", "bob"] {
        let user = app.state.store.user_by_username(name).await.unwrap().unwrap();
        assert!(app.state.files.home_dir(&user).is_dir(), "{name}'s home kept");
    }
}

#[tokio::test]
async fn the_total_limit_refuses_the_next_start_with_503() {
    if !docker_ready() {
        return;
    }
    let (app, _scope) = docker_app("total", |c| c.limits.max_running_total = 1).await;
    let alice = sign_in(&app, "alice").await;
    let bob = sign_in(&app, "bob").await;
    start_desktop(&alice, "fake").await;
    let (status, body, _) = start_desktop(&bob, "fake").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "limit_total");
    assert!(body["error"]["detail"].as_str().unwrap().contains("at most 1"));
}

#[tokio::test]
async fn students_read_the_shared_folder_and_teachers_write_it() {
    if !docker_ready() {
        return;
    }
    let (app, scope) = docker_app("shared", |_| {}).await;
    let alice = sign_in(&app, "alice").await;
    let root = sign_in(&app, "root").await;
    start_desktop(&alice, "fake").await;
    start_desktop(&root, "fake").await;
    let mounts = |id: &str| docker(&["inspect", "-f", "{{json .Mounts}}", &scope.container(id)]);
    let shared = |m: String| -> Value {
        let all: Value = serde_json::from_str(&m).unwrap();
        all.as_array()
            .unwrap()
            .iter()
            .find(|m| m["Destination"] == "/home/kasm-user/Shared")
            .cloned()
            .unwrap()
    };
    assert_eq!(shared(mounts("alice-fake"))["RW"], false, "students read");
    assert_eq!(shared(mounts("root-fake"))["RW"], true, "admins and teachers write");
    let home: Value = serde_json::from_str(&mounts("alice-fake")).unwrap();
    let home = home
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Destination"] == "/home/kasm-user")
        .cloned()
        .unwrap();
    // Named by the account, not the username (which someone else may hold one day): the
    // folder `/files` shows as her home.
    let alice = app.state.store.user_by_username("alice").await.unwrap().unwrap();
    assert_eq!(home["Type"], "bind");
    assert!(
        home["Source"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/homes/u-{}", alice.id)),
        "{home}"
    );
    assert_eq!(
        std::path::Path::new(home["Source"].as_str().unwrap()),
        std::path::absolute(app.state.files.home_dir(&alice)).unwrap()
    );
}

#[tokio::test]
async fn a_container_that_vanished_while_the_portal_was_down_shows_as_stopped() {
    if !docker_ready() {
        return;
    }
    let (app, scope) = docker_app("vanish", |_| {}).await;
    let alice = sign_in(&app, "alice").await;
    start_desktop(&alice, "fake").await;
    let container = scope.container("alice-fake");
    // Stop the portal, remove the container behind its back, start the portal again.
    let mut app = app;
    app.stop().await;
    docker(&["rm", "-f", &container]);
    let app = app.restart().await;
    let alice = app.rebind(&alice);
    let d = wait_for_state(&alice, "alice-fake", "stopped", Duration::from_secs(5)).await;
    assert_eq!(d["state"], "stopped", "{d}");
    assert!(
        d["state_reason"].as_str().unwrap().contains("gone") || d["state_reason"].as_str().unwrap().contains("removed"),
        "{d}"
    );
    assert_eq!(alice.get("/desktop/alice-fake/").send().await.unwrap().status(), 404);
    // Starting again creates a fresh container on the kept home.
    let (_, _, events) = start_desktop(&alice, "fake").await;
    assert_eq!(events.last().unwrap()["step"], "ready", "{events:?}");
}

#[tokio::test]
async fn a_desktop_stopped_while_starting_stays_stopped() {
    if !docker_ready() {
        return;
    }
    let (app, scope) = docker_app("stopstart", |_| {}).await;
    let alice = sign_in(&app, "alice").await;
    let csrf = alice.csrf().await;
    let started = alice
        .post("/api/desktops")
        .header("x-csrf-token", &csrf)
        .json(&serde_json::json!({"type": "fake"}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202);
    let stopped = alice
        .post("/api/desktops/alice-fake/stop")
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(stopped.status(), 200);
    // Give the start in flight time to finish; it must not bring the desktop back.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let d = desktop(&alice, "alice-fake").await;
    assert_eq!(d["state"], "stopped", "{d}");
    let running = docker(&["inspect", "-f", "{{.State.Running}}", &scope.container("alice-fake")]);
    assert_ne!(running, "true", "the container does not run");
    assert_eq!(alice.get("/desktop/alice-fake/").send().await.unwrap().status(), 404);
}

/// The admin JSON API and the admin page's form leave the same trace: a stop through either
/// records one admin action with the same kind, actor and words.
#[tokio::test]
async fn a_json_stop_and_a_form_stop_leave_the_same_audit_entry() {
    use portal_store::{AuditFilter, AuditKind};
    if !docker_ready() {
        return;
    }
    let (app, _scope) = docker_app("auditstop", |_| {}).await;
    let alice = sign_in(&app, "alice").await;
    let root = sign_in(&app, "root").await;
    let csrf = root.csrf().await;
    let admin_actions = || {
        let store = app.state.store.clone();
        async move {
            let filter = AuditFilter {
                kind: Some(AuditKind::AdminAction),
                user: None,
                offset: 0,
                limit: 10,
            };
            store.audit_page(&filter).await.unwrap().0
        }
    };

    let (status, _, _) = start_desktop(&alice, "fake").await;
    assert_eq!(status, 202);
    let stopped = root.post_json("/api/admin/desktops/alice-fake/stop", &csrf).await;
    assert_eq!(stopped["state"], "stopped", "{stopped}");
    assert_eq!(stopped["state_reason"], "stopped by an administrator");
    let by_json = admin_actions().await;
    assert_eq!(by_json.len(), 1, "{by_json:?}");

    start_desktop(&alice, "fake").await;
    let resp = root
        .post("/admin/desktops")
        .form(&[("csrf_token", csrf.as_str()), ("row", "stop:alice-fake")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let d = wait_for_state(&alice, "alice-fake", "stopped", Duration::from_secs(20)).await;
    assert_eq!(d["state_reason"], "stopped by an administrator");
    let both = admin_actions().await;
    assert_eq!(both.len(), 2, "{both:?}");
    let (form, json) = (&both[0], &both[1]);
    assert_eq!(
        (&form.kind, &form.actor, &form.detail),
        (&json.kind, &json.actor, &json.detail)
    );
    assert_eq!(json.detail, "stopped alice-fake by administrator root");
}
