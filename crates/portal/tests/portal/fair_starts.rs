//! Fair starts on the real Docker engine: a stop cancels a start and frees its place, one
//! start at a time per user, and the per-user limit holds under concurrent requests.

use std::time::Duration;

use serde_json::Value;

use crate::docker::{docker_app, docker_ready, fake_type, wait_for_state};
use crate::helpers::*;

/// A desktop type whose container runs but never answers on its port, so its start stays in
/// flight (holding a start permit) until it is stopped or times out.
fn never_ready(c: &mut portal::Config) {
    let mut slow = fake_type("slow");
    slow.env.insert("FAKE_KASM_PORT".into(), "7001".into());
    c.desktop_types.push(slow);
}

/// Asks for a start; the status and the JSON answer.
async fn request_start(b: &Browser, type_key: &str) -> (u16, Value) {
    let resp = b
        .post("/api/desktops")
        .header("x-csrf-token", b.csrf().await)
        .json(&serde_json::json!({ "type": type_key }))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn stopping_a_starting_desktop_frees_its_start_for_others() {
    if !docker_ready() {
        return;
    }
    let (app, _scope) = docker_app("fairstop", |c| {
        c.limits.max_concurrent_starts = 1;
        never_ready(c);
    })
    .await;
    let alice = sign_in(&app, "alice").await;
    let csrf = alice.csrf().await;
    // A student looping start and stop never keeps the only start place.
    for round in 0..3 {
        let (status, body) = request_start(&alice, "slow").await;
        assert!(status < 300, "round {round}: {body}");
        let stopped: Value = alice.post_json("/api/desktops/alice-slow/stop", &csrf).await;
        assert_eq!(stopped["state"], "stopped", "round {round}: {stopped}");
    }
    let bob = sign_in(&app, "bob").await;
    let (status, body) = request_start(&bob, "fake").await;
    assert!(
        status < 300,
        "bob's start is not refused for alice's cancelled ones: {body}"
    );
    let running = wait_for_state(&bob, "bob-fake", "running", Duration::from_secs(60)).await;
    assert_eq!(running["state"], "running", "{running}");
}

#[tokio::test]
async fn one_start_at_a_time_per_user() {
    if !docker_ready() {
        return;
    }
    let (app, _scope) = docker_app("fairone", never_ready).await;
    let alice = sign_in(&app, "alice").await;
    let (status, body) = request_start(&alice, "slow").await;
    assert!(status < 300, "{body}");
    let (status, body) = request_start(&alice, "fake").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "start_in_flight", "{body}");
    // The same desktop again (a second tab) follows the start in flight.
    let (status, body) = request_start(&alice, "slow").await;
    assert!(status < 300, "{body}");
    assert_eq!(body["state"], "starting", "{body}");
    // Someone else is not held up by alice's start.
    let bob = sign_in(&app, "bob").await;
    assert!(request_start(&bob, "fake").await.0 < 300);
    alice
        .post_json("/api/desktops/alice-slow/stop", &alice.csrf().await)
        .await;
}

#[tokio::test]
async fn concurrent_starts_cannot_pass_the_per_user_limit() {
    if !docker_ready() {
        return;
    }
    let (app, _scope) = docker_app("fairlimit", |c| {
        c.limits.max_running_per_user = 1;
        c.desktop_types.push(fake_type("third"));
    })
    .await;
    let alice = sign_in(&app, "alice").await;
    let starts = ["fake", "other", "third"].map(|key| {
        let alice = &alice;
        async move { request_start(alice, key).await.0 }
    });
    let statuses = futures_util::future::join_all(starts).await;
    assert_eq!(
        statuses.iter().filter(|s| **s < 300).count(),
        1,
        "one desktop allowed, whatever arrives at once: {statuses:?}"
    );
    assert!(statuses.iter().all(|s| *s < 300 || *s == 429), "{statuses:?}");
}
