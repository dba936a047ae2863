//! `GET /api/events`: each user's desktop states, live, on Docker: a snapshot first, then
//! every change (their own start, an admin's stop, a crash), never another user's.

use std::time::Duration;

use serde_json::Value;

use crate::docker::*;
use crate::helpers::*;

/// A server-sent event stream read event by event.
pub(crate) struct Events {
    resp: reqwest::Response,
    buf: String,
}

impl Events {
    pub(crate) async fn open(b: &Browser, path: &str) -> Events {
        let resp = b.get(path).header("accept-language", "en").send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        Events {
            resp,
            buf: String::new(),
        }
    }

    /// The next event as (name, data).
    pub(crate) async fn next(&mut self) -> (String, Value) {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let name = block.lines().find_map(|l| l.strip_prefix("event:")).map(str::trim);
                let data = block.lines().find_map(|l| l.strip_prefix("data:")).map(str::trim);
                if let (Some(name), Some(data)) = (name, data) {
                    return (name.to_owned(), serde_json::from_str(data).unwrap());
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(60), self.resp.chunk())
                .await
                .expect("an event in time")
                .unwrap()
                .expect("the stream stays open");
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Skips events until `id` is in `state`; returns that event. Changes of other desktops
    /// on the way fail the test.
    async fn until(&mut self, id: &str, state: &str) -> Value {
        loop {
            let (name, d) = self.next().await;
            if name == "desktop" && d["id"] == id && d["state"] == state {
                return d;
            }
            eprintln!("skipped {name} {d}");
            assert!(name != "desktop" || d["id"] == id, "another desktop's change: {d}");
        }
    }
}

#[tokio::test]
async fn each_user_sees_their_own_desktops_change_live() {
    if !docker_ready() {
        return;
    }
    let (app, scope) = docker_app("events", |_| {}).await;
    let alice = sign_in(&app, "alice").await;
    let bob = sign_in(&app, "bob").await;
    let root = sign_in(&app, "root").await;

    let mut mine = Events::open(&alice, "/api/events").await;
    let (name, snapshot) = mine.next().await;
    assert_eq!(name, "snapshot");
    assert_eq!(snapshot["desktops"], serde_json::json!([]));
    let mut bobs = Events::open(&bob, "/api/events").await;
    assert_eq!(bobs.next().await.0, "snapshot");
    // Students may not watch everyone; admins may.
    let refused = alice.get("/api/events?scope=all").send().await.unwrap();
    assert_eq!(refused.status(), 403);
    let mut all = Events::open(&root, "/api/events?scope=all").await;
    assert_eq!(all.next().await.0, "snapshot");

    let (status, _, _) = start_desktop(&alice, "fake").await;
    assert_eq!(status, 202);
    let (name, starting) = mine.next().await;
    assert_eq!(
        (name.as_str(), &starting["state"]),
        ("desktop", &Value::from("starting"))
    );
    assert_eq!(starting["state_text"], "Starting …");
    mine.until("alice-fake", "running").await;
    all.until("alice-fake", "running").await;

    // An admin's stop, in words.
    let csrf = root.csrf().await;
    let asked = std::time::Instant::now();
    root.post_json("/api/admin/desktops/alice-fake/stop", &csrf).await;
    mine.until("alice-fake", "stopping").await;
    let stopped = mine.until("alice-fake", "stopped").await;
    // Measured, not asserted: how soon the owner's page learns of an admin's stop.
    eprintln!("admin stop → owner's event: {} ms", asked.elapsed().as_millis());
    assert_eq!(stopped["reason"], "stopped by an administrator");
    assert!(
        stopped["reason_text"]
            .as_str()
            .unwrap()
            .starts_with("An administrator stopped it."),
        "{stopped}"
    );

    // A crash.
    start_desktop(&alice, "fake").await;
    mine.until("alice-fake", "running").await;
    let killed = std::time::Instant::now();
    docker(&["kill", &scope.container("alice-fake")]);
    let crashed = mine.until("alice-fake", "stopped").await;
    eprintln!("docker kill → owner's event: {} ms", killed.elapsed().as_millis());
    assert!(crashed["reason"].as_str().unwrap().starts_with("exited"), "{crashed}");
    assert!(
        crashed["reason_text"]
            .as_str()
            .unwrap()
            .contains("stopped unexpectedly"),
        "{crashed}"
    );

    // The dashboard's forms (for browsers without JavaScript) do the same, back to "/".
    let csrf = alice.csrf().await;
    let form = |path: &str| {
        alice
            .post(path)
            .form(&[("csrf_token", csrf.as_str()), ("type", "fake")])
    };
    let resp = form("/desktops/start").send().await.unwrap();
    assert_eq!(
        (resp.status().as_u16(), &resp.headers()["location"]),
        (303, &"/".parse().unwrap())
    );
    mine.until("alice-fake", "running").await;
    assert_eq!(form("/desktops/alice-fake/stop").send().await.unwrap().status(), 303);
    mine.until("alice-fake", "stopped").await;
    assert_eq!(form("/desktops/alice-fake/explode").send().await.unwrap().status(), 404);
    let forged = alice
        .post("/desktops/alice-fake/remove")
        .form(&[("csrf_token", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    // Removed: back to "not started".
    assert_eq!(form("/desktops/alice-fake/remove").send().await.unwrap().status(), 303);
    let removed = mine.until("alice-fake", "none").await;
    assert_eq!(removed["state_text"], "Not started yet");

    // bob saw none of it: his first change is his own.
    start_desktop(&bob, "fake").await;
    let (name, first) = bobs.next().await;
    assert_eq!(name, "desktop");
    assert_eq!(first["id"], "bob-fake", "bob sees only his own desktops");
}
