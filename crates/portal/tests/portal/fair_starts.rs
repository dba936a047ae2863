//! Fair starts on the real Docker engine: a stop cancels a start and frees its place, one
//! start at a time per user, and the per-user limit holds under concurrent requests. Starts
//! beyond `limits.max_concurrent_starts` wait their turn in the start queue, which reports
//! their place; the total limit and a full queue still refuse at once.

use std::time::Duration;

use portal_store::Role;
use secrecy::SecretString;
use serde_json::Value;

use crate::docker::{docker_app, docker_ready, fake_type, follow_events, wait_for_state};
use crate::helpers::*;

/// A desktop type whose container runs but never answers on its port, so its start stays in
/// flight (holding a start permit) until it is stopped or times out.
fn never_ready(c: &mut portal::Config) {
    let mut slow = fake_type("slow");
    slow.env.insert("FAKE_KASM_PORT".into(), "7001".into());
    c.desktop_types.push(slow);
}

/// Asks for a start; the status and the JSON answer (messages in English).
async fn request_start(b: &Browser, type_key: &str) -> (u16, Value) {
    let resp = b
        .post("/api/desktops")
        .header("x-csrf-token", b.csrf().await)
        .header("accept-language", "en")
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

/// Students `prefix`01, `prefix`02, … signed in.
async fn students(app: &TestApp, prefix: &str, n: usize) -> Vec<(String, Browser)> {
    let mut out = Vec::new();
    for i in 1..=n {
        let name = format!("{prefix}{i:02}");
        app.state
            .store
            .create_local_user(&name, &name, Role::Student, &SecretString::from(PASSWORD.to_owned()))
            .await
            .unwrap();
        let b = sign_in(app, &name).await;
        out.push((name, b));
    }
    out
}

#[tokio::test]
async fn a_whole_class_starting_at_once_waits_its_turn_and_every_desktop_runs() {
    if !docker_ready() {
        return;
    }
    let (app, _scope) = docker_app("fairclass", |c| {
        c.limits.max_concurrent_starts = 4;
        c.limits.max_running_total = 40;
    })
    .await;
    let class = students(&app, "s", 30).await;
    // Thirty students press Start within the same moment.
    let starts = class.iter().map(|(_, b)| request_start(b, "fake"));
    let answers = futures_util::future::join_all(starts).await;
    for (status, body) in &answers {
        assert_eq!(*status, 202, "no start is refused: {body}");
    }
    // Each start's steps to its end: a place in line for those that waited, then ready.
    let follow = class
        .iter()
        .zip(&answers)
        .map(|((_, b), (_, body))| follow_events(b, body["events_url"].as_str().unwrap()));
    let steps = futures_util::future::join_all(follow).await;
    let mut waited = 0;
    for (events, (name, _)) in steps.iter().zip(&class) {
        let progress: Vec<&Value> = events.iter().filter(|e| e["event"] == "progress").collect();
        assert_eq!(
            progress.last().map(|e| &e["step"]),
            Some(&Value::from("ready")),
            "{name}: {events:?}"
        );
        let places: Vec<(u64, u64)> = progress
            .iter()
            .filter(|e| e["step"] == "queued")
            .map(|e| (e["position"].as_u64().unwrap(), e["of"].as_u64().unwrap()))
            .collect();
        if !places.is_empty() {
            waited += 1;
        }
        for (place, of) in &places {
            assert!(1 <= *place && place <= of && *of <= 26, "{name}: {places:?}");
        }
        // A place only ever moves up.
        assert!(places.windows(2).all(|w| w[1].0 <= w[0].0), "{name}: {places:?}");
    }
    assert!(
        waited >= 10,
        "most of the class waited in line and was told its place: {waited}"
    );
    for (name, b) in &class {
        let d = b.get_json(&format!("/api/desktops/{name}-fake")).await;
        assert_eq!(d["state"], "running", "{d}");
    }
    // The queue is empty again, and the metrics saw the waits.
    assert_eq!(app.state.desktops.queue_place("s30-fake"), None);
    let metrics = app.state.metrics_addr().unwrap();
    let text = reqwest::get(format!("http://{metrics}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("ird_start_queue_length 0"), "{text}");
    let waits: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("ird_start_queue_wait_seconds_count "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(waits >= waited, "every wait in line was measured: {waits} < {waited}");
}

#[tokio::test]
async fn the_total_limit_still_refuses_at_once_and_queued_starts_count_towards_it() {
    if !docker_ready() {
        return;
    }
    let (app, _scope) = docker_app("fairtotal", |c| {
        c.limits.max_concurrent_starts = 1;
        c.limits.max_running_total = 2;
        never_ready(c);
    })
    .await;
    let class = students(&app, "t", 3).await;
    assert!(request_start(&class[0].1, "slow").await.0 < 300);
    // The second waits in line; it counts as starting.
    let (status, body) = request_start(&class[1].1, "fake").await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["state"], "starting", "{body}");
    assert_eq!(app.state.desktops.queue_place("t02-fake"), Some((1, 1)));
    let (status, body) = request_start(&class[2].1, "fake").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "limit_total", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("as many desktops as it can"),
        "{body}"
    );
    let csrf = class[0].1.csrf().await;
    class[0].1.post_json("/api/desktops/t01-slow/stop", &csrf).await;
}

#[tokio::test]
async fn a_queued_start_shows_its_place_and_a_stop_takes_it_out_of_line() {
    if !docker_ready() {
        return;
    }
    let (app, scope) = docker_app("fairqueue", |c| {
        c.limits.max_concurrent_starts = 1;
        c.limits.max_start_queue = 1;
        never_ready(c);
    })
    .await;
    let class = students(&app, "q", 3).await;
    let [(_, first), (_, second), (_, third)] = &class[..] else {
        unreachable!()
    };
    assert!(request_start(first, "slow").await.0 < 300);
    assert_eq!(request_start(second, "fake").await.0, 202);
    // The place shows on the dashboard, also without JavaScript.
    let page = second.get_text_en("/").await;
    assert!(page.contains("Waiting for its turn: 1 of 1"), "{page}");
    // The line is full: a clear 503 that says to try again.
    let (status, body) = request_start(third, "fake").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "start_queue_full", "{body}");
    // Stopping the waiting start takes it out of line and frees its place in it.
    let stopped: Value = second
        .post_json("/api/desktops/q02-fake/stop", &second.csrf().await)
        .await;
    assert_eq!(stopped["state"], "stopped", "{stopped}");
    let events = follow_events(second, "/api/desktops/q02-fake/events").await;
    assert!(
        events.iter().all(|e| e["event"] == "state"),
        "nothing is left to follow: {events:?}"
    );
    assert_eq!(app.state.desktops.queue_place("q02-fake"), None);
    let (status, body) = request_start(third, "fake").await;
    assert_eq!(status, 202, "the freed place in line is taken: {body}");
    assert_eq!(app.state.desktops.queue_place("q03-fake"), Some((1, 1)));
    // Once the first start ends, the waiting one has its turn and runs.
    first
        .post_json("/api/desktops/q01-slow/stop", &first.csrf().await)
        .await;
    let running = wait_for_state(third, "q03-fake", "running", Duration::from_secs(60)).await;
    assert_eq!(running["state"], "running", "{running}");
    // The stopped start was never created in Docker.
    assert!(
        crate::docker::docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("name={}", scope.container("q02-fake"))
        ])
        .is_empty()
    );
}

#[tokio::test]
async fn the_dashboard_shows_a_queued_starts_place_live_in_the_browser() {
    if !crate::browser::browser_ready() || !docker_ready() {
        return;
    }
    let (app, _scope) = docker_app("fairbrowser", |c| {
        c.limits.max_concurrent_starts = 1;
        never_ready(c);
    })
    .await;
    let alice = sign_in(&app, "alice").await;
    assert!(request_start(&alice, "slow").await.0 < 300);
    let chrome = crate::browser::Chrome::start().await;
    chrome.sign_in(&app, "bob").await;
    chrome.goto(&app, "/?lang=en").await;
    let start = chrome
        .client
        .find(fantoccini::Locator::Css(
            ".desktop[data-type=fake] [data-action=start] button",
        ))
        .await
        .unwrap();
    start.click().await.unwrap();
    chrome
        .wait_until(
            "the card to show its place in the start queue",
            "const step = document.querySelector('.desktop[data-type=fake] [data-role=step]');
             return step.textContent === 'Waiting for its turn: 1 of 1'
               && getComputedStyle(step).visibility === 'visible';",
        )
        .await;
    // Alice's start ends: bob's has its turn, runs, and opens by itself.
    alice
        .post_json("/api/desktops/alice-slow/stop", &alice.csrf().await)
        .await;
    chrome
        .wait_until(
            "the desktop to open once its turn came",
            "return location.pathname === '/view/bob-fake';",
        )
        .await;
    chrome.close().await;
}
