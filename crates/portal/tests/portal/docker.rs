//! Desktops on the real Docker engine, with the `FROM scratch` fake-Kasm image built by
//! `scripts/build-test-images.sh`. Under `CI=true` a missing engine or image fails these
//! tests; elsewhere they say why they did nothing.

use std::process::Command;
use std::time::{Duration, Instant};

use portal::Config;
use portal::config::{DesktopTypeConfig, RuntimeKind};
use serde_json::Value;

use crate::helpers::*;

pub(crate) const IMAGE: &str = "iserv-rd/fake-kasm:test";

/// Whether the engine and the image are there; fails under CI when they are not.
pub(crate) fn docker_ready() -> bool {
    let ok = Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let msg = format!("Docker tests need a running engine and the image {IMAGE}: run scripts/build-test-images.sh");
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{msg}");
        }
        eprintln!("skipped: {msg}");
    }
    ok
}

/// `docker …` → stdout, trimmed.
pub(crate) fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("docker CLI runs");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Removes everything a test made in Docker, also when the test fails.
pub(crate) struct DockerScope {
    pub(crate) instance: String,
}

impl DockerScope {
    /// The container of desktop `id` (names carry the instance, see `DockerConfig`; one
    /// longer than Docker names go here gets a hash suffix).
    pub(crate) fn container(&self, id: &str) -> String {
        desktop_runtime::safe_docker_name(&format!("ird-{}-{id}", self.instance))
    }
}

impl Drop for DockerScope {
    fn drop(&mut self) {
        let ids = docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=org.iserv-remote-desktop.instance={}", self.instance),
        ]);
        for id in ids.lines() {
            docker(&["rm", "-f", id]);
        }
        for v in docker(&["volume", "ls", "-q", "--filter", &format!("name={}", self.instance)]).lines() {
            docker(&["volume", "rm", "-f", v]);
        }
        docker(&["network", "rm", &self.instance]);
        docker(&["network", "rm", &format!("{}-internal", self.instance)]);
    }
}

pub(crate) fn fake_type(key: &str) -> DesktopTypeConfig {
    DesktopTypeConfig {
        key: key.into(),
        name: format!("Fake {key}"),
        name_en: None,
        description: "Testdesktop".into(),
        description_en: Some("Test desktop".into()),
        names: Default::default(),
        descriptions: Default::default(),
        icon: "🧪".into(),
        image: IMAGE.into(),
        container_port: 6901,
        protocol: None,
        env: [("FAKE_KASM_HOME_CHECK".to_owned(), "1".to_owned())].into(),
        shm_size_mib: 64,
        memory_mib: Some(256),
        cpus: Some(0.5),
        enabled: true,
        internet: true,
        idle_timeout_minutes: 60,
        max_age_hours: 0,
        groups: vec![],
        users: vec![],
    }
}

/// A portal on Docker whose containers, volumes and network are this test's alone.
pub(crate) async fn docker_app(name: &str, tweak: impl FnOnce(&mut Config)) -> (TestApp, DockerScope) {
    let instance = format!("irdt-{name}-{}", std::process::id());
    let scope = DockerScope {
        instance: instance.clone(),
    };
    let app = spawn_app_with(&[], |c| {
        c.runtime = RuntimeKind::Docker;
        c.docker.instance = instance.clone();
        c.docker.network = instance.clone();
        c.docker.home_volume_prefix = format!("{instance}-home-");
        c.docker.shared_volume = format!("{instance}-shared");
        c.docker.start_timeout_secs = 60;
        c.desktop_types = vec![fake_type("fake"), fake_type("other")];
        tweak(c);
    })
    .await;
    (app, scope)
}

/// Asks for the user's desktop of `type_key` through the API; the status and the body.
pub(crate) async fn post_start(b: &Browser, type_key: &str) -> (u16, Value) {
    let csrf = b.csrf().await;
    let resp = b
        .post("/api/desktops")
        .header("x-csrf-token", &csrf)
        .json(&serde_json::json!({ "type": type_key }))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

/// Starts the user's desktop of `type_key` through the API and follows its events to the end.
pub(crate) async fn start_desktop(b: &Browser, type_key: &str) -> (u16, Value, Vec<Value>) {
    let (status, body) = post_start(b, type_key).await;
    if status >= 300 {
        return (status, body, Vec::new());
    }
    let events = follow_events(b, body["events_url"].as_str().unwrap()).await;
    (status, body, events)
}

/// Reads a server-sent event stream until it ends; returns each event's JSON with its name
/// under `"event"`.
pub(crate) async fn follow_events(b: &Browser, url: &str) -> Vec<Value> {
    let resp = b.get(url).send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut resp = resp;
    let mut text = String::new();
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let chunk = tokio::time::timeout_at(deadline.into(), resp.chunk())
            .await
            .expect("events end in time");
        let Some(chunk) = chunk.unwrap() else { break };
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let name = block.lines().find_map(|l| l.strip_prefix("event:")).map(str::trim);
            let data = block.lines().find_map(|l| l.strip_prefix("data:")).map(str::trim);
            if let (Some(name), Some(data)) = (name, data) {
                let mut v: Value = serde_json::from_str(data).unwrap();
                v["event"] = name.into();
                events.push(v);
            }
        }
    }
    events
}

pub(crate) async fn desktop(b: &Browser, id: &str) -> Value {
    b.get(&format!("/api/desktops/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub(crate) async fn wait_for_state(b: &Browser, id: &str, state: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let d = desktop(b, id).await;
        if d["state"] == state || Instant::now() > deadline {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub(crate) async fn open_ws(app: &TestApp, b: &Browser, id: &str) -> Ws {
    let path = format!("/desktop/{id}/websockify");
    let (mut ws, _) = ws_connect(app, &path, WsOpts::as_user(b, app))
        .await
        .expect("WebSocket to the container");
    expect_rfb_greeting(&mut ws).await;
    ws
}

#[tokio::test]
async fn start_shows_progress_then_proxies_http_and_websocket_to_the_container() {
    if !docker_ready() {
        return;
    }
    let (app, _scope) = docker_app("start", |_| {}).await;
    let alice = sign_in(&app, "alice").await;
    let types: Value = alice.get_json("/api/desktop-types").await;
    assert_eq!(types["desktop_types"][0]["key"], "fake");
    let (status, body, events) = start_desktop(&alice, "fake").await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["id"], "alice-fake");
    let steps: Vec<&str> = events.iter().filter_map(|e| e["step"].as_str()).collect();
    assert!(steps.contains(&"creating") && steps.contains(&"starting"), "{steps:?}");
    assert_eq!(steps.last(), Some(&"ready"), "{events:?}");
    assert_eq!(desktop(&alice, "alice-fake").await["state"], "running");

    let page = alice.get("/desktop/alice-fake/").send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Fake KasmVNC"));
    let mut ws = open_ws(&app, &alice, "alice-fake").await;
    echo(&mut ws, vec![7u8; 100_000]).await;

    // Starting a running desktop returns it.
    let again = alice
        .post("/api/desktops")
        .header("x-csrf-token", alice.csrf().await)
        .json(&serde_json::json!({"type": "fake"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    // The dashboard lists it as running; the view page frames it.
    let dash = alice.get("/").send().await.unwrap().text().await.unwrap();
    assert!(
        dash.contains("data-desktop-id=\"alice-fake\" data-state=\"running\""),
        "{dash}"
    );
    let view = alice
        .get("/view/alice-fake")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(view.contains("/desktop/alice-fake/?path=desktop/alice-fake/websockify"));
}

#[tokio::test]
async fn two_users_get_their_own_containers_passwords_and_no_published_ports() {
    if !docker_ready() {
        return;
    }
    let (app, scope) = docker_app("two", |_| {}).await;
    let alice = sign_in(&app, "alice").await;
    let bob = sign_in(&app, "bob").await;
    let (a, b) = tokio::join!(start_desktop(&alice, "fake"), start_desktop(&bob, "fake"));
    assert_eq!(a.2.last().unwrap()["step"], "ready");
    assert_eq!(b.2.last().unwrap()["step"], "ready");
    let env = |name: &str| docker(&["inspect", "-f", "{{range .Config.Env}}{{println .}}{{end}}", name]);
    let pw = |env: String| env.lines().find_map(|l| l.strip_prefix("VNC_PW=")).unwrap().to_owned();
    let (pa, pb) = (
        pw(env(&scope.container("alice-fake"))),
        pw(env(&scope.container("bob-fake"))),
    );
    assert_ne!(pa, pb, "every desktop has its own password");
    assert!(pa.len() >= 24);
    for name in [scope.container("alice-fake"), scope.container("bob-fake")] {
        let bindings = docker(&["inspect", "-f", "{{json .HostConfig.PortBindings}}", &name]);
        assert!(
            matches!(bindings.as_str(), "null" | "{}"),
            "{name} publishes nothing: {bindings}"
        );
    }
    // The API never shows the password.
    let listed = alice.get("/api/desktops").send().await.unwrap().text().await.unwrap();
    assert!(!listed.contains(&pa));
    // Each reaches only their own.
    // Someone else's desktop answers like a missing one.
    assert_eq!(bob.get("/desktop/alice-fake/").send().await.unwrap().status(), 404);
    assert_eq!(bob.get("/api/desktops/alice-fake").send().await.unwrap().status(), 404);
    open_ws(&app, &bob, "bob-fake").await;
}

#[tokio::test]
async fn loopback_mode_publishes_on_127_0_0_1_only() {
    if !docker_ready() {
        return;
    }
    let (app, scope) = docker_app("loop", |c| c.docker.publish_loopback = true).await;
    let alice = sign_in(&app, "alice").await;
    let (_, _, events) = start_desktop(&alice, "fake").await;
    assert_eq!(events.last().unwrap()["step"], "ready", "{events:?}");
    let ports = docker(&[
        "inspect",
        "-f",
        "{{json .NetworkSettings.Ports}}",
        &scope.container("alice-fake"),
    ]);
    assert!(ports.contains("\"HostIp\":\"127.0.0.1\""), "{ports}");
    assert!(!ports.contains("0.0.0.0") && !ports.contains("\"::\""), "{ports}");
    open_ws(&app, &alice, "alice-fake").await;
}

#[tokio::test]
async fn stop_and_start_keep_the_container_and_remove_keeps_the_home() {
    if !docker_ready() {
        return;
    }
    let (app, scope) = docker_app("stop", |_| {}).await;
    let alice = sign_in(&app, "alice").await;
    start_desktop(&alice, "fake").await;
    let id_before = docker(&["inspect", "-f", "{{.Id}}", &scope.container("alice-fake")]);
    let csrf = alice.csrf().await;
    let stopped: Value = alice.post_json("/api/desktops/alice-fake/stop", &csrf).await;
    assert_eq!(stopped["state"], "stopped", "{stopped}");
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Running}}", &scope.container("alice-fake")]),
        "false"
    );
    assert_eq!(
        alice.get("/desktop/alice-fake/").send().await.unwrap().status(),
        404,
        "no route while stopped"
    );
    let (_, _, events) = start_desktop(&alice, "fake").await;
    assert_eq!(events.last().unwrap()["step"], "ready");
    assert_eq!(
        docker(&["inspect", "-f", "{{.Id}}", &scope.container("alice-fake")]),
        id_before,
        "the same container restarted"
    );

    // Remove: container gone, home volume kept; a new desktop sees the old files.
    let del = alice
        .delete("/api/desktops/alice-fake")
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    assert_eq!(
        docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("name=^{}$", scope.container("alice-fake"))
        ]),
        ""
    );
    start_desktop(&alice, "fake").await;
    // The image has no shell; read the file as the tar stream `docker cp` gives.
    let out = Command::new("docker")
        .args([
            "cp",
            &format!("{}:/home/kasm-user/.fake-kasm-starts", scope.container("alice-fake")),
            "-",
        ])
        .output()
        .unwrap();
    let lines = String::from_utf8_lossy(&out.stdout).matches("start 1").count();
    assert!(lines >= 3, "three starts recorded in the kept home, saw {lines}");
}

#[tokio::test]
async fn portal_restart_readopts_running_desktops_without_stopping_them() {
    if !docker_ready() {
        return;
    }
    let (app, scope) = docker_app("restart", |_| {}).await;
    let alice = sign_in(&app, "alice").await;
    start_desktop(&alice, "fake").await;
    let app = app.restart().await;
    let alice = app.rebind(&alice);
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Running}}", &scope.container("alice-fake")]),
        "true",
        "restart never stops desktops"
    );
    let page = alice.get("/desktop/alice-fake/").send().await.unwrap();
    assert_eq!(page.status(), 200, "the route works at once, with no user action");
    open_ws(&app, &alice, "alice-fake").await;
}

#[tokio::test]
async fn a_killed_container_shows_as_stopped_within_seconds() {
    if !docker_ready() {
        return;
    }
    let (app, scope) = docker_app("kill", |_| {}).await;
    let alice = sign_in(&app, "alice").await;
    start_desktop(&alice, "fake").await;
    docker(&["kill", &scope.container("alice-fake")]);
    let d = wait_for_state(&alice, "alice-fake", "stopped", Duration::from_secs(10)).await;
    assert_eq!(d["state"], "stopped", "{d}");
    assert!(
        d["state_reason"].as_str().unwrap().contains("137") || d["state_reason"].as_str().unwrap().contains("exit"),
        "{d}"
    );
    assert_eq!(alice.get("/desktop/alice-fake/").send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn idle_and_old_desktops_are_culled_but_input_keeps_them() {
    if !docker_ready() {
        return;
    }
    let (app, scope) = docker_app("idle", |c| {
        c.limits.cull_interval_secs = 1;
        c.limits.max_running_per_user = 5;
        c.desktop_types[1].max_age_hours = 1;
    })
    .await;
    let alice = sign_in(&app, "alice").await;
    start_desktop(&alice, "fake").await;
    start_desktop(&alice, "other").await;
    let csrf = alice.csrf().await;
    // A heartbeat counts as input.
    let beat = alice
        .post("/api/desktops/alice-fake/activity")
        .header("x-csrf-token", &csrf)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(beat.status(), 204);
    assert!(
        desktop(&alice, "alice-fake").await["last_activity_at"]
            .as_i64()
            .is_some()
    );
    // Pretend the last input was two hours ago: the background culler stops it.
    let two_hours_ago = desktop(&alice, "alice-fake").await["last_activity_at"]
        .as_i64()
        .unwrap()
        - 7200;
    app.state
        .store
        .touch_activity("alice-fake", two_hours_ago)
        .await
        .unwrap();
    let d = wait_for_state(&alice, "alice-fake", "stopped", Duration::from_secs(10)).await;
    assert!(d["state_reason"].as_str().unwrap().starts_with("idle for"), "{d}");
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Running}}", &scope.container("alice-fake")]),
        "false"
    );
    // "other" had input just now but is older than its maximum age of one hour.
    assert_eq!(desktop(&alice, "alice-other").await["state"], "running");
    let mut t = app.state.store.desktop_type("other").await.unwrap().unwrap();
    t.max_age_secs = 1;
    app.state.store.upsert_desktop_type(&t).await.unwrap();
    let d = wait_for_state(&alice, "alice-other", "stopped", Duration::from_secs(10)).await;
    assert!(d["state_reason"].as_str().unwrap().contains("maximum age"), "{d}");
}

#[tokio::test]
async fn limits_refuse_with_a_clear_message() {
    if !docker_ready() {
        return;
    }
    let (app, _scope) = docker_app("limits", |c| c.limits.max_running_per_user = 1).await;
    let alice = sign_in(&app, "alice").await;
    start_desktop(&alice, "fake").await;
    let (status, body, _) = start_desktop(&alice, "other").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "limit_user");
    assert!(
        body["error"]["detail"].as_str().unwrap().contains("at most 1"),
        "{body}"
    );
    let (status, body, _) = start_desktop(&alice, "nope").await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("unknown_type")));
    // Writes need the CSRF token.
    let no_token = alice
        .post("/api/desktops")
        .json(&serde_json::json!({"type": "fake"}))
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 403);
    let bad_json = alice
        .post("/api/desktops")
        .header("x-csrf-token", alice.csrf().await)
        .header("content-type", "application/json")
        .body("{\"typ\": 1}")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_json.status(), 400);
}

#[tokio::test]
async fn a_missing_image_fails_the_start_with_the_reason() {
    if !docker_ready() {
        return;
    }
    let (app, _scope) = docker_app("pull", |c| {
        c.desktop_types[1].image = "iserv-rd/does-not-exist:1".into()
    })
    .await;
    let alice = sign_in(&app, "alice").await;
    let (_, _, events) = start_desktop(&alice, "other").await;
    let last = events.last().unwrap();
    assert_eq!(last["step"], "failed", "{events:?}");
    assert!(
        last["reason"].as_str().unwrap().contains("iserv-rd/does-not-exist:1"),
        "{last}"
    );
    let d = desktop(&alice, "alice-other").await;
    assert_eq!(d["state"], "failed");
}

#[tokio::test]
async fn docker_unreachable_gives_503_and_the_rest_keeps_working() {
    let app = spawn_app_with(&[], |c| {
        c.runtime = RuntimeKind::Docker;
        c.docker.host = Some("unix:///nonexistent/docker.sock".into());
        c.desktop_types = vec![fake_type("fake")];
    })
    .await;
    let alice = sign_in(&app, "alice").await;
    let ready = alice.get("/readyz").send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["runtime"]["status"]["ok"], false);
    // Why is for the log and administrators: the socket path is no one else's business.
    assert!(body["runtime"]["status"].get("error").is_none(), "{body}");
    let root = sign_in(&app, "root").await;
    let detailed: Value = root.get("/readyz").send().await.unwrap().json().await.unwrap();
    assert!(
        detailed["runtime"]["status"]["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{detailed}"
    );
    let dash = alice.get("/").header("accept-language", "en").send().await.unwrap();
    assert_eq!(dash.status(), 200);
    assert!(dash.text().await.unwrap().contains("container service is unreachable"));
    let (status, body, _) = start_desktop(&alice, "fake").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "runtime_unavailable");
}

#[tokio::test]
async fn a_home_over_its_quota_refuses_new_starts_until_there_is_room() {
    if !docker_ready() {
        return;
    }
    let (app, _scope) = docker_app("quota", |c| c.files.quota_student_mib = 1).await;
    let alice = sign_in(&app, "alice").await;
    let home = {
        let user = app.state.store.user_by_username("alice").await.unwrap().unwrap();
        app.state.files.home_dir(&user)
    };
    // Written past the portal, as a desktop writes into its home.
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("Film.mp4"), vec![1u8; 2 * 1024 * 1024 + 1]).unwrap();
    let (status, body) = post_start(&alice, "fake").await;
    assert_eq!(status, 507, "{body}");
    assert_eq!(body["error"]["code"], "home_over_quota");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("3 MiB") && message.contains("1 MiB"), "{body}");
    assert!(
        docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("name={}", _scope.container("alice-fake"))
        ])
        .is_empty(),
        "no container for a refused start"
    );

    // Deleted through the portal (into the trash, which does not count): the start goes on.
    let csrf = alice.csrf().await;
    let deleted = alice
        .delete("/api/files/home/Film.mp4")
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let (status, _, events) = start_desktop(&alice, "fake").await;
    assert!(status < 300, "{status}");
    assert_eq!(events.last().unwrap()["step"], "ready");

    // A running desktop is not taken away when its home fills; the next new start is refused
    // at once (measured then, not taken from the usage cache).
    std::fs::write(home.join("Film 2.mp4"), vec![1u8; 2 * 1024 * 1024 + 1]).unwrap();
    let (status, body) = post_start(&alice, "fake").await;
    assert!(status < 300, "the running desktop is kept: {status} {body}");
    let (status, body) = post_start(&alice, "other").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (507, Some("home_over_quota")),
        "{body}"
    );
}
