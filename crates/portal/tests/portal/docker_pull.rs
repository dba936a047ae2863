//! A desktop whose image the engine lacks: the start pulls it from the local registry of
//! `scripts/start-registry.sh` (`TEST_REGISTRY`), reports per-layer `pulling` progress with byte
//! counts, then runs the desktop. Under `CI=true` a missing registry fails the test; elsewhere it
//! says why it did nothing.

use std::io::Read as _;
use std::process::Command;
use std::time::Instant;

use serde_json::Value;

use crate::docker::{IMAGE, docker_app, docker_ready, follow_events};
use crate::helpers::*;

/// The registry's address, e.g. `127.0.0.1:5555`; fails under CI when it is not set.
pub(crate) fn test_registry() -> Option<String> {
    match std::env::var("TEST_REGISTRY") {
        Ok(r) if !r.trim().is_empty() => Some(r.trim().to_owned()),
        _ => {
            let msg = "the pull test needs a registry: export TEST_REGISTRY=$(scripts/start-registry.sh)";
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{msg}");
            }
            eprintln!("skipped: {msg}");
            None
        }
    }
}

/// Runs `docker args…` and fails the test with its output unless it succeeds.
pub(crate) fn docker_ok(args: &[&str]) {
    let out = Command::new("docker").args(args).output().expect("docker CLI runs");
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub(crate) fn image_exists(reference: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", reference])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Removes the test's local image references, also when the test fails.
pub(crate) struct LocalImages(pub(crate) Vec<String>);

impl Drop for LocalImages {
    fn drop(&mut self) {
        for reference in &self.0 {
            let _ = Command::new("docker").args(["rmi", "-f", reference]).output();
        }
    }
}

/// Builds `reference` as the fake-Kasm image plus one layer of `bytes` random bytes, so that
/// layer exists nowhere else and a pull must really download it.
pub(crate) fn build_with_random_layer(reference: &str, bytes: usize) {
    let context = tempfile::tempdir().unwrap();
    let mut blob = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut blob)
        .unwrap();
    std::fs::write(context.path().join("random.bin"), &blob).unwrap();
    std::fs::write(
        context.path().join("Dockerfile"),
        format!("FROM {IMAGE}\nCOPY random.bin /random.bin\n"),
    )
    .unwrap();
    docker_ok(&["build", "--quiet", "-t", reference, context.path().to_str().unwrap()]);
}

/// Follows a server-sent event stream to its end, opening `gate` once the portal has
/// subscribed (its response headers are sent after the subscription). Returns each event's JSON
/// with its name under `"event"` and the time since the gate opened under `"ms"`.
#[tokio::test]
async fn a_missing_image_is_pulled_with_layer_progress_then_starts() {
    if !docker_ready() {
        return;
    }
    let Some(registry) = test_registry() else {
        return;
    };
    // Unique per process (nextest runs each test in its own) and per run (the registry keeps
    // what earlier runs pushed, so a repeated tag could match a stale manifest).
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let tag = format!("pull-{}-{nanos}", std::process::id());
    let pushed = format!("{registry}/iserv-rd/fake-kasm:{tag}");
    let pulled = pushed.clone();
    // Declared before the portal's scope, so its containers are gone before the images.
    let _images = LocalImages(vec![pushed.clone()]);

    const LAYER_BYTES: usize = 3 << 20;
    build_with_random_layer(&pushed, LAYER_BYTES);
    docker_ok(&["push", "--quiet", &pushed]);
    docker_ok(&["rmi", &pushed]);
    assert!(!image_exists(&pulled), "{pulled} must be missing before the start");

    let image = pulled.clone();
    let (app, _scope) = docker_app("pull", move |c| c.desktop_types[0].image = image).await;
    let alice = sign_in(&app, "alice").await;
    let started = Instant::now();
    let resp = alice
        .post("/api/desktops")
        .header("x-csrf-token", alice.csrf().await)
        .json(&serde_json::json!({ "type": "fake" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let body: Value = resp.json().await.unwrap();
    // Steps sent before this subscription are replayed, so the whole pull is seen.
    let events = follow_events(&alice, body["events_url"].as_str().unwrap()).await;
    let total = started.elapsed();

    let pulling: Vec<&Value> = events.iter().filter(|e| e["step"] == "pulling").collect();
    for e in &pulling {
        eprintln!("{e}");
    }
    eprintln!(
        "{} pulling events; ready after {} ms in all",
        pulling.len(),
        total.as_millis()
    );
    let steps: Vec<&str> = events.iter().filter_map(|e| e["step"].as_str()).collect();
    assert_eq!(steps.last(), Some(&"ready"), "{events:#?}");
    assert!(pulling.iter().all(|e| e["image"] == pulled.as_str()), "{pulling:#?}");
    let last_pull = steps.iter().rposition(|s| *s == "pulling");
    let creating = steps.iter().position(|s| *s == "creating");
    assert!(
        last_pull.is_some() && creating.is_some() && last_pull < creating,
        "pulling, then creating: {steps:?}"
    );
    let with_status = |status: &str| {
        pulling
            .iter()
            .filter(|e| e["status"] == status && e["layer"].is_string())
            .count()
    };
    // The fake-Kasm layers are local already; the random one is fetched and unpacked.
    assert!(with_status("Already exists") >= 1, "{pulling:#?}");
    assert_eq!(with_status("Pulling fs layer"), 1, "{pulling:#?}");
    assert_eq!(with_status("Pull complete"), 1, "{pulling:#?}");
    let bytes = pulling
        .iter()
        .filter(|e| e["current"].as_u64().is_some_and(|n| n > 0))
        .filter_map(|e| e["total"].as_u64())
        .max();
    assert!(
        bytes.is_some_and(|n| n >= LAYER_BYTES as u64),
        "some pulling step counts the random layer's bytes: {pulling:#?}"
    );
    assert!(
        pulling.last().unwrap()["status"]
            .as_str()
            .unwrap()
            .starts_with("Status: Downloaded newer image"),
        "{pulling:#?}"
    );

    assert!(image_exists(&pulled), "{pulled} is local after the start");
    let page = alice.get("/desktop/alice-fake/").send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Fake KasmVNC"));
}
