//! Desktops on a real two-node Docker Swarm (`runtime = "swarm"`): the machine's engine is
//! the manager, a second engine in a network namespace of this test's own is the worker.
//! The portal under test (this build's binary) runs as a container on the manager, attached
//! to the desktops' overlay network, as a deployment runs it.
//!
//! The swarm is made and taken down by [`Cluster`], also when the test fails, so the other
//! Docker tests see a plain engine again. Needs root (network namespaces, a second dockerd);
//! under `CI=true` a missing engine or image fails the test.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

use crate::container_image::{docker_ok, free_port};
use crate::docker::{IMAGE, docker, docker_ready, follow_events, post_start};
use crate::helpers::*;

/// Labels the manager's node, so a swarm left behind by a killed run is known as ours.
const NODE_LABEL: &str = "org.iserv-remote-desktop.test-swarm";
/// The Debian image the portal binary runs in (glibc, like the machine that built it).
const PORTAL_BASE_IMAGE: &str = "iserv-rd/real-desktop:test";

/// `cmd args…` that must succeed → stdout.
fn run_ok(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `cmd args…`, ignoring failure (cleanup).
fn run_quiet(cmd: &str, args: &[&str]) {
    let _ = Command::new(cmd).args(args).output();
}

/// A two-node swarm: the machine's engine (manager) and a worker engine in a network namespace.
struct Cluster {
    tag: String,
    netns: String,
    veth: String,
    dir: tempfile::TempDir,
    /// `unix://…` of the worker's engine.
    worker: String,
    /// The worker's dockerd (through nsenter), until it is stopped.
    worker_engine: Option<std::process::Child>,
    worker_node: String,
    manager_joined: bool,
}

impl Cluster {
    fn start(tag: &str) -> Cluster {
        let pid = std::process::id();
        let net = pid % 250 + 1;
        let dir = tempfile::tempdir().unwrap();
        let mut cluster = Cluster {
            tag: tag.to_owned(),
            netns: format!("{tag}-ns"),
            veth: format!("irdsw{net}"),
            worker: format!("unix://{}/docker.sock", dir.path().display()),
            dir,
            worker_engine: None,
            worker_node: String::new(),
            manager_joined: false,
        };
        leave_stale_swarm();
        // The worker's network: a veth pair, host side .1, namespace side .2.
        let (host_ip, worker_ip) = (format!("10.213.{net}.1"), format!("10.213.{net}.2"));
        let peer = format!("{}p", cluster.veth);
        run_quiet("ip", &["link", "del", &cluster.veth]);
        run_ok("ip", &["netns", "add", &cluster.netns]);
        run_ok(
            "ip",
            &["link", "add", &cluster.veth, "type", "veth", "peer", "name", &peer],
        );
        run_ok("ip", &["link", "set", &peer, "netns", &cluster.netns]);
        run_ok("ip", &["addr", "add", &format!("{host_ip}/24"), "dev", &cluster.veth]);
        run_ok("ip", &["link", "set", &cluster.veth, "up"]);
        let in_ns = |args: &[&str]| {
            let mut all = vec!["netns", "exec", cluster.netns.as_str()];
            all.extend_from_slice(args);
            run_ok("ip", &all);
        };
        in_ns(&["ip", "addr", "add", &format!("{worker_ip}/24"), "dev", &peer]);
        in_ns(&["ip", "link", "set", &peer, "up"]);
        in_ns(&["ip", "link", "set", "lo", "up"]);

        // The worker's engine: `nsenter`, not `ip netns exec` (which remounts /sys, so
        // dockerd finds no devices cgroup); its own roots and an empty config file (the
        // machine's daemon.json names a data root and driver of its own).
        let d = cluster.dir.path();
        std::fs::write(d.join("daemon.json"), "{}").unwrap();
        let log = std::fs::File::create(d.join("dockerd.log")).unwrap();
        let child = Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/{}", cluster.netns))
            .arg("dockerd")
            .arg(format!("--config-file={}", d.join("daemon.json").display()))
            .arg(format!("--data-root={}", d.join("data").display()))
            .arg(format!("--exec-root={}", d.join("exec").display()))
            .arg(format!("--pidfile={}", d.join("dockerd.pid").display()))
            .arg(format!("-H={}", cluster.worker))
            .arg("--storage-driver=vfs")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("dockerd starts");
        cluster.worker_engine = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !Command::new("docker")
            .args(["-H", &cluster.worker, "info"])
            .output()
            .is_ok_and(|o| o.status.success())
        {
            assert!(
                Instant::now() < deadline,
                "the worker engine did not start: {}",
                std::fs::read_to_string(d.join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        // The test images, copied as the issue's setup does (no registry here).
        let mut save = Command::new("docker")
            .args(["save", IMAGE])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let load = Command::new("docker")
            .args(["-H", &cluster.worker, "load"])
            .stdin(save.stdout.take().unwrap())
            .output()
            .unwrap();
        assert!(save.wait().unwrap().success(), "docker save {IMAGE}");
        assert!(load.status.success(), "{}", String::from_utf8_lossy(&load.stderr));

        docker_ok(&["swarm", "init", "--advertise-addr", &host_ip]);
        cluster.manager_joined = true;
        let manager = docker_ok(&["info", "--format", "{{.Swarm.NodeID}}"]);
        docker_ok(&["node", "update", "--label-add", &format!("{NODE_LABEL}=1"), &manager]);
        let token = docker_ok(&["swarm", "join-token", "-q", "worker"]);
        run_ok(
            "docker",
            &[
                "-H",
                &cluster.worker,
                "swarm",
                "join",
                "--advertise-addr",
                &worker_ip,
                "--token",
                &token,
                &format!("{host_ip}:2377"),
            ],
        );
        cluster.worker_node = run_ok(
            "docker",
            &["-H", &cluster.worker, "info", "--format", "{{.Swarm.NodeID}}"],
        );
        cluster
    }

    /// The manager's node id.
    fn manager_node(&self) -> String {
        docker_ok(&["info", "--format", "{{.Swarm.NodeID}}"])
    }

    /// The node the running task of desktop `id`'s service is on.
    fn node_of(&self, id: &str) -> String {
        let service = desktop_runtime::safe_docker_name(&format!("ird-{}-{id}", self.tag));
        let task = docker_ok(&["service", "ps", "-q", "--filter", "desired-state=running", &service]);
        let task = task.lines().next().unwrap_or_default().to_owned();
        docker_ok(&["inspect", "--format", "{{.NodeID}}", &task])
    }

    /// Stops the worker's engine, as a node that dies (its containers end with it).
    fn stop_worker(&mut self) {
        let Some(mut engine) = self.worker_engine.take() else {
            return;
        };
        // nsenter execs dockerd, so the child is the engine itself. SIGTERM: it stops its
        // containers and exits, as a node that is shut down.
        run_quiet("kill", &["-TERM", &engine.id().to_string()]);
        let deadline = Instant::now() + Duration::from_secs(30);
        while engine.try_wait().is_ok_and(|status| status.is_none()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = engine.kill();
        let _ = engine.wait();
    }
}

/// A swarm this test left behind in a killed run (its label on the manager's node) is left.
fn leave_stale_swarm() {
    let state = docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]);
    if state == "inactive" {
        return;
    }
    let labels = docker(&["node", "inspect", "self", "--format", "{{json .Spec.Labels}}"]);
    assert!(
        labels.contains(NODE_LABEL),
        "the machine's engine is in a swarm ({state}) this test did not make; the swarm test needs a plain engine"
    );
    docker(&["swarm", "leave", "--force"]);
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let label = format!("label=org.iserv-remote-desktop.instance={}", self.tag);
        for service in docker(&["service", "ls", "-q", "--filter", &label]).lines() {
            docker(&["service", "rm", service]);
        }
        docker(&["rm", "-f", &format!("{}-portal", self.tag)]);
        if self.worker_engine.is_some() {
            run_quiet("docker", &["-H", &self.worker, "swarm", "leave", "--force"]);
        }
        self.stop_worker();
        if self.manager_joined {
            // The overlay goes with the swarm; the tasks' containers take a moment to go.
            let deadline = Instant::now() + Duration::from_secs(20);
            while !docker(&["ps", "-aq", "--filter", &label]).is_empty() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(250));
            }
            docker(&["network", "rm", &self.tag]);
            docker(&["swarm", "leave", "--force"]);
        }
        run_quiet("ip", &["netns", "del", &self.netns]);
        run_quiet("ip", &["link", "del", &self.veth]);
        // vfs layers of the worker; a mount left by a killed engine would refuse removal.
        run_quiet("umount", &["-R", &self.dir.path().join("exec").display().to_string()]);
    }
}

/// Whether this machine can make a swarm test: root, `ip`, `nsenter`, `dockerd`, the images.
fn swarm_ready() -> bool {
    if !docker_ready() {
        return false;
    }
    let tools = ["ip", "nsenter", "dockerd"].iter().all(|t| {
        Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let base = Command::new("docker")
        .args(["image", "inspect", PORTAL_BASE_IMAGE])
        .output()
        .is_ok_and(|o| o.status.success());
    let root = run_ok("id", &["-u"]) == "0";
    let ok = tools && base && root;
    if !ok {
        let msg = format!(
            "the swarm test needs root, ip (iproute2), nsenter, dockerd and {PORTAL_BASE_IMAGE} \
             (scripts/build-real-desktop-image.sh)"
        );
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{msg}");
        }
        eprintln!("skipped: {msg}");
    }
    ok
}

/// Runs this build's portal binary as a container on the manager, attached to the overlay,
/// its port published on loopback at `port`; waits until it answers.
async fn run_portal(cluster: &Cluster, config: &std::path::Path, files_root: &str, port: u16) -> String {
    let binary = env!("CARGO_BIN_EXE_iserv-remote-desktop");
    let name = format!("{}-portal", cluster.tag);
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &name,
        // As deploy/compose.yaml: root, which may give users' files to the desktop user.
        "--user",
        "0:0",
        "--network",
        &cluster.tag,
        "-p",
        &format!("127.0.0.1:{port}:5020"),
        "-v",
        "/var/run/docker.sock:/var/run/docker.sock",
        "-v",
        &format!("{binary}:/usr/local/bin/iserv-remote-desktop:ro"),
        "-v",
        &format!("{0}:{0}", config.parent().unwrap().display()),
        "-v",
        &format!("{files_root}:{files_root}"),
        "-e",
        &format!("IRD_CONFIG={}", config.display()),
        "--entrypoint",
        "/usr/local/bin/iserv-remote-desktop",
        PORTAL_BASE_IMAGE,
        "serve",
    ]);
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let client = reqwest::Client::new();
    loop {
        if let Ok(r) = client.get(format!("{url}/healthz")).send().await
            && r.status().is_success()
        {
            return url;
        }
        assert!(
            Instant::now() < deadline,
            "the portal container did not come up: {}",
            portal_log(cluster)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The end of the portal container's log (it logs to standard error).
fn portal_log(cluster: &Cluster) -> String {
    let out = Command::new("docker")
        .args(["logs", "--tail", "400", &format!("{}-portal", cluster.tag)])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Opens the desktop's WebSocket through the portal as its owner and checks the relay.
async fn websocket_works(url: &str, b: &Browser, id: &str) {
    let ws_url = format!("{}/desktop/{id}/websockify", url.replacen("http", "ws", 1));
    let mut req = ws_url.into_client_request().unwrap();
    let h = req.headers_mut();
    h.insert("Sec-WebSocket-Protocol", "binary".parse().unwrap());
    h.insert("Cookie", b.cookie_header().unwrap().parse().unwrap());
    h.insert("Origin", url.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .unwrap_or_else(|e| panic!("WebSocket to {id}: {e}"));
    expect_rfb_greeting(&mut ws).await;
    echo(&mut ws, vec![42u8; 50_000]).await;
}

/// The desktop's page through the portal, as its owner.
async fn page_works(b: &Browser, id: &str) {
    let page = b.get(&format!("/desktop/{id}/")).send().await.unwrap();
    assert_eq!(page.status(), 200, "{id}");
    assert!(page.text().await.unwrap().contains("Fake KasmVNC"), "{id}");
}

/// Starts the user's desktop and waits for `ready`.
async fn start_ready(b: &Browser, id: &str) {
    let (status, body) = post_start(b, "fake").await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["id"], id);
    let events = follow_events(b, body["events_url"].as_str().unwrap()).await;
    assert_eq!(
        events.last().and_then(|e| e["step"].as_str()),
        Some("ready"),
        "{id}: {events:?}"
    );
}

/// An admin's pull of type `key`'s image on every node: its events to the end.
async fn pull_events(admin: &Browser, key: &str) -> Vec<serde_json::Value> {
    let csrf = admin.csrf().await;
    let resp = admin
        .post(&format!("/api/admin/desktop-types/{key}/pull"))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202, "pull of {key}");
    let body: serde_json::Value = resp.json().await.unwrap();
    follow_events(admin, body["events_url"].as_str().unwrap()).await
}

/// Signs in through the real form of a portal this test did not spawn.
async fn sign_in_at(url: &str, user: &str) -> Browser {
    let b = Browser::at(url);
    let resp = submit_login(&b, user, PASSWORD, &[]).await;
    assert_eq!(resp.status(), 303, "sign-in as {user}");
    b
}

#[tokio::test(flavor = "multi_thread")]
async fn desktops_spread_over_two_nodes_and_a_lost_node_shows_them_stopped_then_startable() {
    if !swarm_ready() {
        return;
    }
    portal::install_crypto_provider();
    // Arrange: a two-node swarm, the overlay the portal joins, a configuration as an admin
    // writes it, four students, the portal as a container on the manager.
    let tag = format!("irdsw-{}", std::process::id());
    let mut cluster = tokio::task::spawn_blocking({
        let tag = tag.clone();
        move || Cluster::start(&tag)
    })
    .await
    .unwrap();
    docker_ok(&["network", "create", "--driver", "overlay", "--attachable", &tag]);
    let files = tempfile::tempdir().unwrap();
    let files_root = files.path().display().to_string();
    let conf_dir = tempfile::tempdir().unwrap();
    let config = conf_dir.path().join("portal.toml");
    let port = free_port();
    std::fs::write(
        &config,
        format!(
            r#"listen = "0.0.0.0:5020"
public_url = "http://127.0.0.1:{port}"
desktop_origin = "off"
data_dir = "{data}"
runtime = "swarm"
[metrics]
enabled = false
[files]
root = "{files_root}"
[docker]
instance = "{tag}"
start_timeout_secs = 90
[swarm]
network = "{tag}"
reserve_percent = 10
[[desktop_types]]
key = "fake"
name = "Fake"
image = "{IMAGE}"
shm_size_mib = 64
memory_mib = 256
env = {{ FAKE_KASM_HOME_CHECK = "1" }}
[[desktop_types]]
key = "ghost"
name = "Ghost"
image = "iserv-rd/not-on-any-node:test"
"#,
            data = conf_dir.path().join("data").display(),
        ),
    )
    .unwrap();
    let users = ["anna", "ben", "cem", "dora"];
    for (user, role) in users.iter().map(|u| (*u, "student")).chain([("root", "admin")]) {
        let mut add = Command::new(env!("CARGO_BIN_EXE_iserv-remote-desktop"))
            .args(["user", "add", user, "--role", role, "--password-stdin", "--config"])
            .arg(&config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(add.stdin.take().unwrap(), "{PASSWORD}").unwrap();
        let out = add.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let url = run_portal(&cluster, &config, &files_root, port).await;
    let mut browsers = Vec::new();
    for user in users {
        browsers.push(sign_in_at(&url, user).await);
    }

    // Act: each starts her desktop.
    for (user, b) in users.iter().zip(&browsers) {
        start_ready(b, &format!("{user}-fake")).await;
    }

    // Assert: spread over both nodes, each reachable through the portal (HTTP, WebSocket).
    let (manager, worker) = (cluster.manager_node(), cluster.worker_node.clone());
    let nodes: Vec<String> = users.iter().map(|u| cluster.node_of(&format!("{u}-fake"))).collect();
    assert!(
        nodes.contains(&manager) && nodes.contains(&worker),
        "desktops on both nodes: {nodes:?} (manager {manager}, worker {worker})"
    );
    for (user, b) in users.iter().zip(&browsers) {
        let id = format!("{user}-fake");
        page_works(b, &id).await;
        websocket_works(&url, b, &id).await;
    }

    // Contained as on one engine; where the engine drops "no new privileges" from services,
    // the portal says so.
    let service = desktop_runtime::safe_docker_name(&format!("ird-{tag}-{}-fake", users[0]));
    let spec = |field: &str| docker_ok(&["service", "inspect", "-f", field, &service]);
    assert_eq!(
        spec("{{json .Spec.TaskTemplate.ContainerSpec.CapabilityDrop}}"),
        r#"["ALL"]"#
    );
    assert_eq!(spec("{{json .Spec.EndpointSpec.Ports}}"), "null", "nothing published");
    let kept = spec("{{.Spec.TaskTemplate.ContainerSpec.Privileges.NoNewPrivileges}}") == "true";
    assert!(kept || portal_log(&cluster).contains("no new privileges"));

    // An admin's pre-pull runs on every node, with progress per node; an image that no node
    // can get fails naming the nodes.
    let root = sign_in_at(&url, "root").await;
    let pulled = pull_events(&root, "fake").await;
    assert_eq!(pulled.last().unwrap()["event"], "done", "{pulled:?}");
    let per_node: std::collections::BTreeSet<&str> = pulled.iter().filter_map(|e| e["layer"].as_str()).collect();
    assert_eq!(per_node.len(), 2, "progress from both nodes: {pulled:?}");
    let ghost = pull_events(&root, "ghost").await;
    let last = ghost.last().unwrap();
    assert_eq!(last["event"], "failed", "{ghost:?}");
    let reason = last["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("No such image") && reason.matches("node ").count() == 2,
        "{reason}"
    );

    // Act: the worker's engine stops (a node that dies).
    let lost: Vec<usize> = (0..users.len()).filter(|i| nodes[*i] == worker).collect();
    let stopped_at = Instant::now();
    cluster = tokio::task::spawn_blocking(move || {
        cluster.stop_worker();
        cluster
    })
    .await
    .unwrap();

    // Assert: its desktops show as stopped with the reason within 30 s; the others run on.
    for i in &lost {
        let id = format!("{}-fake", users[*i]);
        let d = crate::docker::wait_for_state(&browsers[*i], &id, "stopped", Duration::from_secs(30)).await;
        assert_eq!(d["state"], "stopped", "{id} after {:?}: {d}", stopped_at.elapsed());
        let reason = d["state_reason"].as_str().unwrap_or_default().to_owned();
        assert!(!reason.is_empty(), "{id} stopped without a reason: {d}");
        eprintln!("{id}: stopped after {:?}: {reason}", stopped_at.elapsed());
    }
    assert!(stopped_at.elapsed() < Duration::from_secs(35));
    for i in (0..users.len()).filter(|i| !lost.contains(i)) {
        let id = format!("{}-fake", users[i]);
        assert_eq!(
            crate::docker::desktop(&browsers[i], &id).await["state"],
            "running",
            "{id}"
        );
    }

    // Act + Assert: started again, they run on the node that is left and answer.
    for i in &lost {
        let id = format!("{}-fake", users[*i]);
        start_ready(&browsers[*i], &id).await;
        assert_eq!(cluster.node_of(&id), manager, "{id} placed on the healthy node");
        page_works(&browsers[*i], &id).await;
        websocket_works(&url, &browsers[*i], &id).await;
    }

    // A desktop that crashes is shown stopped with its exit code, and nobody restarts it.
    let id = format!("{}-fake", users[0]);
    let container = docker_ok(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=org.iserv-remote-desktop.desktop-id={id}"),
    ]);
    docker_ok(&["kill", &container]);
    let d = crate::docker::wait_for_state(&browsers[0], &id, "stopped", Duration::from_secs(15)).await;
    let service = desktop_runtime::safe_docker_name(&format!("ird-{tag}-{id}"));
    assert_eq!(
        d["state"],
        "stopped",
        "{d}\n{}\n{}",
        docker(&["service", "ps", "--no-trunc", &service]),
        portal_log(&cluster)
    );
    assert!(d["state_reason"].as_str().unwrap_or_default().contains("137"), "{d}");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let running = docker_ok(&["service", "ps", "-q", "--filter", "desired-state=running", &service]);
    assert!(running.is_empty(), "the crashed desktop was restarted: {running}");
    assert_eq!(crate::docker::desktop(&browsers[0], &id).await["state"], "stopped");
    drop(cluster);
}

/// A portal set to `runtime = "swarm"` refuses to start on an engine that is no swarm manager,
/// and on a files root that is not there, naming the setting each time. (In the swarm group:
/// while the test above runs, the machine's engine is a manager.)
#[tokio::test]
async fn a_swarm_portal_refuses_an_engine_that_is_no_manager_and_a_missing_files_root() {
    if !docker_ready() {
        return;
    }
    portal::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let config = |files_root: std::path::PathBuf| portal::Config {
        data_dir: dir.path().to_owned(),
        runtime: portal::config::RuntimeKind::Swarm,
        files: portal::config::FilesSettings {
            root: Some(files_root),
            ..Default::default()
        },
        metrics: portal::config::MetricsSettings {
            enabled: false,
            ..Default::default()
        },
        ..portal::Config::default()
    };

    let missing = dir.path().join("not-mounted");
    let err = format!(
        "{:#}",
        portal::AppState::new(config(missing.clone())).await.err().unwrap()
    );
    assert!(err.contains("files.root") && err.contains("not-mounted"), "{err}");
    assert!(!missing.exists(), "the portal must not make the files root on a swarm");

    let files = tempfile::tempdir().unwrap();
    let err = format!(
        "{:#}",
        portal::AppState::new(config(files.path().to_owned()))
            .await
            .err()
            .unwrap()
    );
    assert!(
        err.contains("docker.host") && err.contains("swarm") && err.contains("manager"),
        "{err}"
    );
}
