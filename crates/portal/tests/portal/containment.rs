//! Desktops contained on the real Docker engine: they cannot reach each other, an exam type
//! reaches nothing outside, a changed type or role re-creates a stopped desktop's container,
//! and long usernames still start. The portal (this process, in the host's network namespace,
//! as in development and as deploy/compose.yaml runs it) reaches and proxies every desktop.

use std::process::Command;

use portal_store::Role;
use serde_json::Value;

use crate::docker::{DockerScope, docker, docker_app, docker_ready, fake_type, open_ws, start_desktop};
use crate::helpers::*;

/// Whether the desktop in `container` can open a TCP connection to `target` (`host:port`):
/// `fake-kasm --connect` run inside it (the image has no shell or other client).
fn desktop_reaches(container: &str, target: &str) -> bool {
    let out = Command::new("docker")
        .args(["exec", container, "/fake-kasm", "--connect", target])
        .output()
        .expect("docker exec runs");
    match out.status.code() {
        Some(0) => true,
        Some(1) => false,
        _ => panic!(
            "fake-kasm --connect in {container} failed (image older than --connect? run \
             scripts/build-test-images.sh): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// The container's address on its (only) network.
fn address_of(container: &str) -> String {
    docker(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        container,
    ])
}

/// The network a container joins, and whether it is internal (no way out).
fn network_of(container: &str) -> (String, bool) {
    let network = docker(&["inspect", "-f", "{{.HostConfig.NetworkMode}}", container]);
    let internal = docker(&["network", "inspect", "-f", "{{.Internal}}", &network]) == "true";
    (network, internal)
}

/// Stops desktop `id` through the API.
async fn stop(browser: &Browser, id: &str) {
    let csrf = browser.csrf().await;
    let stopped: Value = browser.post_json(&format!("/api/desktops/{id}/stop"), &csrf).await;
    assert_eq!(stopped["state"], "stopped", "{stopped}");
}

fn container_id(scope: &DockerScope, id: &str) -> String {
    docker(&["inspect", "-f", "{{.Id}}", &scope.container(id)])
}

#[tokio::test]
async fn one_users_desktop_cannot_reach_anothers_while_the_portal_proxies_both() {
    if !docker_ready() {
        return;
    }
    let (app, scope) = docker_app("icc", |_| {}).await;
    let (alice, bob) = (sign_in(&app, "alice").await, sign_in(&app, "bob").await);
    let (a, b) = tokio::join!(start_desktop(&alice, "fake"), start_desktop(&bob, "fake"));
    assert_eq!(a.2.last().unwrap()["step"], "ready", "{:?}", a.2);
    assert_eq!(b.2.last().unwrap()["step"], "ready", "{:?}", b.2);
    let (alices, bobs) = (scope.container("alice-fake"), scope.container("bob-fake"));

    assert!(
        !desktop_reaches(&alices, &format!("{}:6901", address_of(&bobs))),
        "alice's desktop must not open bob's port 6901"
    );
    assert!(!desktop_reaches(&bobs, &format!("{}:6901", address_of(&alices))));
    // The portal listens on the host's loopback: out of a desktop's reach.
    assert!(!desktop_reaches(&alices, &format!("127.0.0.1:{}", app.addr.port())));
    let gateway = docker(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.Gateway}}{{end}}",
        &alices,
    ]);
    assert!(!desktop_reaches(&alices, &format!("{gateway}:{}", app.addr.port())));

    open_ws(&app, &alice, "alice-fake").await;
    open_ws(&app, &bob, "bob-fake").await;
}

#[tokio::test]
async fn an_exam_type_runs_on_an_internal_network_and_is_still_proxied() {
    if !docker_ready() {
        return;
    }
    let (app, scope) = docker_app("exam", |c| {
        let mut exam = fake_type("exam");
        exam.internet = false;
        c.desktop_types.push(exam);
    })
    .await;
    let alice = sign_in(&app, "alice").await;
    let (_, _, events) = start_desktop(&alice, "exam").await;
    assert_eq!(events.last().unwrap()["step"], "ready", "{events:?}");
    let (network, internal) = network_of(&scope.container("alice-exam"));
    assert_eq!(network, format!("{}-internal", scope.instance));
    assert!(internal);
    open_ws(&app, &alice, "alice-exam").await;

    // A normal type of the same portal keeps its internet access.
    let (_, _, events) = start_desktop(&alice, "fake").await;
    assert_eq!(events.last().unwrap()["step"], "ready", "{events:?}");
    assert!(!network_of(&scope.container("alice-fake")).1);
}

#[tokio::test]
async fn a_changed_type_or_role_re_creates_the_stopped_desktop_on_its_next_start() {
    if !docker_ready() {
        return;
    }
    let (app, scope) = docker_app("respec", |_| {}).await;
    let store = &app.state.store;
    let tina = store
        .create_local_user(
            "tina",
            "tina",
            Role::Teacher,
            &secrecy::SecretString::from(PASSWORD.to_owned()),
        )
        .await
        .unwrap();
    let browser = sign_in(&app, "tina").await;
    let rw_of_shared = || {
        docker(&[
            "inspect",
            "-f",
            "{{range .Mounts}}{{if eq .Destination \"/home/kasm-user/Shared\"}}{{.RW}}{{end}}{{end}}",
            &scope.container("tina-fake"),
        ])
    };
    start_desktop(&browser, "fake").await;
    let first = container_id(&scope, "tina-fake");
    assert_eq!(rw_of_shared(), "true", "a teacher writes to the shared folder");

    // Unchanged: the same container starts again.
    stop(&browser, "tina-fake").await;
    start_desktop(&browser, "fake").await;
    assert_eq!(container_id(&scope, "tina-fake"), first);

    // The type's environment changes: a new container with it.
    stop(&browser, "tina-fake").await;
    let mut t = store.desktop_type("fake").await.unwrap().unwrap();
    t.env.push(("GREETING".to_owned(), "hallo".to_owned()));
    store.upsert_desktop_type(&t).await.unwrap();
    let (_, _, events) = start_desktop(&browser, "fake").await;
    assert_eq!(events.last().unwrap()["step"], "ready", "{events:?}");
    let second = container_id(&scope, "tina-fake");
    assert_ne!(second, first, "re-created");
    let env = docker(&[
        "inspect",
        "-f",
        "{{range .Config.Env}}{{println .}}{{end}}",
        &scope.container("tina-fake"),
    ]);
    assert!(env.lines().any(|l| l == "GREETING=hallo"), "{env}");

    // Demoted to student: the next start takes away write access to the shared folder.
    stop(&browser, "tina-fake").await;
    store.set_user_role(&tina.id, Role::Student).await.unwrap();
    let browser = sign_in(&app, "tina").await;
    let (_, _, events) = start_desktop(&browser, "fake").await;
    assert_eq!(events.last().unwrap()["step"], "ready", "{events:?}");
    assert_ne!(container_id(&scope, "tina-fake"), second);
    assert_eq!(rw_of_shared(), "false", "a student only reads the shared folder");
    open_ws(&app, &browser, "tina-fake").await;
}

#[tokio::test]
async fn a_64_character_username_gets_a_desktop() {
    if !docker_ready() {
        return;
    }
    let (app, scope) = docker_app("long", |_| {}).await;
    let name = format!("{}.x_9", "l".repeat(60));
    assert_eq!(name.len(), 64);
    app.state
        .store
        .create_local_user(
            &name,
            &name,
            Role::Student,
            &secrecy::SecretString::from(PASSWORD.to_owned()),
        )
        .await
        .unwrap();
    let browser = sign_in(&app, &name).await;
    let (status, body, events) = start_desktop(&browser, "fake").await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(events.last().unwrap()["step"], "ready", "{events:?}");
    let id = body["id"].as_str().unwrap().to_owned();
    assert!(id.len() <= 64 && id.starts_with("llll"), "{id}");
    assert!(!docker(&["inspect", "-f", "{{.Id}}", &scope.container(&id)]).is_empty());
    let home = docker(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{if eq .Destination \"/home/kasm-user\"}}{{.Source}}{{end}}{{end}}",
        &scope.container(&id),
    ]);
    // Homes are named by the account (u-{id}), never by the username.
    let user = app.state.store.user_by_username(&name).await.unwrap().unwrap();
    assert!(home.ends_with(&format!("/homes/{}", user.home_name)), "{home}");
    open_ws(&app, &browser, &id).await;
}
