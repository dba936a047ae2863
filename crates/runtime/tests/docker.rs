//! `DockerRuntime` against the real Docker engine, with the `iserv-rd/fake-kasm:test` stand-in
//! image (built by `scripts/build-test-images.sh`).
//!
//! Without an engine or the image the tests print a note and pass, except under `CI=true`,
//! where they fail: CI must not go green by testing nothing. Each test uses its own portal
//! instance, network and volumes, removed again by a guard even when the test fails.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::{DownloadFromContainerOptionsBuilder, KillContainerOptionsBuilder};
use desktop_runtime::{
    ContainerRuntime, Credentials, DesktopSpec, DockerRuntime, DockerSettings, Endpoint, ExitReason, LABEL_INSTANCE,
    Progress, RuntimeError, RuntimeEvent, VolumeMount,
};
use futures_util::StreamExt;
use secrecy::SecretString;
use tokio::sync::mpsc;

const IMAGE: &str = "iserv-rd/fake-kasm:test";

/// One test's engine objects, removed on drop with the docker CLI (blocking is fine there, and
/// it works even when the test panicked inside the async runtime).
struct Cleanup {
    instance: String,
    network: String,
    /// The engine, when not the default one.
    host: Option<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let docker_cli = |args: &[&str]| docker_cli_at(self.host.as_deref(), args);
        let label = format!("label={LABEL_INSTANCE}={}", self.instance);
        let containers = docker_cli(&["ps", "-aq", "--filter", &label]);
        if !containers.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(containers.iter().map(String::as_str));
            docker_cli(&args);
        }
        // Volumes are named after the instance; the label catches any the runtime named itself.
        let mut volumes = docker_cli(&["volume", "ls", "-q", "--filter", &label]);
        volumes.extend(docker_cli(&[
            "volume",
            "ls",
            "-q",
            "--filter",
            &format!("name={}", self.instance),
        ]));
        volumes.sort();
        volumes.dedup();
        if !volumes.is_empty() {
            let mut args = vec!["volume", "rm", "-f"];
            args.extend(volumes.iter().map(String::as_str));
            docker_cli(&args);
        }
        docker_cli(&["network", "rm", &self.network]);
        docker_cli(&["network", "rm", &format!("{}-internal", self.network)]);
    }
}

/// Runs the docker CLI, returning stdout lines; failures are ignored (cleanup is best effort).
fn docker_cli(args: &[&str]) -> Vec<String> {
    docker_cli_at(None, args)
}

/// [`docker_cli`] against the engine at `host` (`None`: the default one).
fn docker_cli_at(host: Option<&str>, args: &[&str]) -> Vec<String> {
    let mut command = std::process::Command::new("docker");
    if let Some(host) = host {
        command.args(["-H", host]);
    }
    match command.args(args).output() {
        Ok(out) => String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        Err(_) => Vec::new(),
    }
}

struct Harness {
    runtime: DockerRuntime,
    settings: DockerSettings,
    /// A separate client for checks the runtime does not offer (inspect, kill, archive).
    docker: Docker,
    /// Unique per test and process: container names are global on the engine.
    tag: String,
    _cleanup: Cleanup,
}

/// `None` (after a note) when Docker or the image is missing outside CI.
async fn harness(test: &str, publish_loopback: bool) -> Option<Harness> {
    harness_with(test, |s| s.publish_loopback = publish_loopback).await
}

/// [`harness`] with settings changed by `adjust`.
async fn harness_with(test: &str, adjust: impl FnOnce(&mut DockerSettings)) -> Option<Harness> {
    let tag = format!("{test}-{}", std::process::id());
    let mut settings = DockerSettings {
        instance: format!("t-{tag}"),
        network: format!("ird-t-{tag}"),
        ..DockerSettings::default()
    };
    adjust(&mut settings);
    let runtime = DockerRuntime::connect(settings.clone()).await.expect("valid settings");
    if let Err(err) = runtime.ping().await {
        return skip(&format!("{err}"));
    }
    let client = match settings.host.as_deref().and_then(|h| h.strip_prefix("unix://")) {
        Some(socket) => Docker::connect_with_unix(socket, 120, bollard::API_DEFAULT_VERSION),
        None => Docker::connect_with_defaults(),
    };
    let docker = match client {
        Ok(docker) => docker,
        Err(err) => return skip(&format!("cannot make a Docker client: {err}")),
    };
    if docker.inspect_image(IMAGE).await.is_err() {
        return skip(&format!("image {IMAGE} is missing: run scripts/build-test-images.sh"));
    }
    let cleanup = Cleanup {
        instance: settings.instance.clone(),
        network: settings.network.clone(),
        host: settings.host.clone(),
    };
    Some(Harness {
        runtime,
        settings,
        docker,
        tag,
        _cleanup: cleanup,
    })
}

fn skip<T>(reason: &str) -> Option<T> {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("Docker tests cannot run under CI=true: {reason}");
    }
    eprintln!("note: skipping Docker test: {reason}");
    None
}

/// The home volume of a spec made by [`Harness::spec`].
fn home_of(spec: &DesktopSpec) -> String {
    spec.home.as_ref().expect("a home volume").volume.clone()
}

impl Harness {
    fn spec(&self, user: &str, password: &str) -> DesktopSpec {
        DesktopSpec {
            id: format!("{user}-{}", self.tag),
            username: user.to_owned(),
            type_key: "fake".to_owned(),
            image: IMAGE.to_owned(),
            port: 6901,
            https: true,
            verify_tls: false,
            env: vec![("FAKE_KASM_HOME_CHECK".to_owned(), "1".to_owned())],
            credentials: Credentials {
                username: "kasm_user".to_owned(),
                password: SecretString::from(password.to_owned()),
            },
            shm_size_bytes: 64 << 20,
            memory_bytes: Some(256 << 20),
            nano_cpus: Some(500_000_000),
            home: Some(VolumeMount {
                volume: format!("{}-home-{user}", self.settings.instance),
                target: "/home/kasm-user".to_owned(),
                read_only: false,
            }),
            mounts: vec![VolumeMount {
                volume: format!("{}-shared", self.settings.instance),
                target: "/shared".to_owned(),
                read_only: true,
            }],
            binds: Vec::new(),
            internet: true,
            owner_role: "student".to_owned(),
        }
    }

    async fn start(&self, spec: &DesktopSpec) -> Result<Endpoint, RuntimeError> {
        let (tx, _rx) = mpsc::unbounded_channel();
        self.runtime.start(spec, tx).await
    }

    async fn inspect(&self, id: &str) -> Option<bollard::models::ContainerInspectResponse> {
        self.docker
            .inspect_container(&self.runtime.container_name(id), None)
            .await
            .ok()
    }

    async fn volume_exists(&self, name: &str) -> bool {
        self.docker.inspect_volume(name).await.is_ok()
    }

    /// Lines of the file fake-kasm appends to at each start, read through the engine's archive
    /// API: the image has no shell to `cat` with.
    async fn home_starts(&self, id: &str) -> Vec<String> {
        let options = DownloadFromContainerOptionsBuilder::new()
            .path("/home/kasm-user/.fake-kasm-starts")
            .build();
        let mut tar = Vec::new();
        let mut body = self
            .docker
            .download_from_container(&self.runtime.container_name(id), Some(options));
        while let Some(chunk) = body.next().await {
            tar.extend_from_slice(&chunk.expect("archive of the home check file"));
        }
        first_tar_file(&tar).lines().map(str::to_owned).collect()
    }
}

/// Contents of the first entry of a tar archive (512-byte header, size in octal at 124..136).
fn first_tar_file(tar: &[u8]) -> String {
    assert!(tar.len() >= 512, "archive too short");
    let size_field = String::from_utf8_lossy(&tar[124..136]);
    let size = usize::from_str_radix(size_field.trim_matches(|c: char| c == '\0' || c == ' '), 8).expect("tar size");
    String::from_utf8_lossy(&tar[512..512 + size]).into_owned()
}

async fn connect_ok(endpoint: &Endpoint) {
    let addr = format!("{}:{}", endpoint.host, endpoint.port);
    // The server binds a moment after the process starts.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::net::TcpStream::connect(&addr).await {
            Ok(_) => return,
            Err(err) if Instant::now() > deadline => panic!("cannot connect to the desktop at {addr}: {err}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
}

fn env_of(info: &bollard::models::ContainerInspectResponse, name: &str) -> Option<String> {
    let prefix = format!("{name}=");
    info.config
        .as_ref()?
        .env
        .as_ref()?
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix(&prefix).map(str::to_owned))
}

#[tokio::test]
async fn lifecycle_keeps_the_container_and_home_across_stop_and_start() {
    let Some(h) = harness("life", false).await else { return };
    let spec = h.spec("alice", "pw-alice-1");

    let (tx, mut rx) = mpsc::unbounded_channel();
    let endpoint = h.runtime.start(&spec, tx).await.expect("start");
    let mut steps = Vec::new();
    while let Ok(step) = rx.try_recv() {
        steps.push(step);
    }
    assert_eq!(
        steps,
        [Progress::Creating, Progress::Starting],
        "the image is local: no pull"
    );
    assert!(endpoint.https && !endpoint.verify_tls);
    assert_eq!(endpoint.port, 6901);
    connect_ok(&endpoint).await;

    let observed = h.runtime.observe().await.expect("observe");
    assert_eq!(observed.len(), 1, "{observed:?}");
    let desktop = &observed[0];
    assert_eq!(desktop.id, spec.id);
    assert_eq!(desktop.username, "alice");
    assert_eq!(desktop.type_key, "fake");
    assert!(desktop.running);
    assert_eq!(
        desktop.endpoint.as_ref().map(|e| (&e.host, e.port)),
        Some((&endpoint.host, endpoint.port))
    );
    let container_id = desktop.container_id.clone();

    // Starting a running desktop hands back the same one.
    let again = h.start(&spec).await.expect("start of a running desktop");
    assert_eq!(again, endpoint);
    assert_eq!(
        h.runtime.observe().await.expect("observe")[0].container_id,
        container_id
    );

    h.runtime.stop(&spec.id).await.expect("stop");
    h.runtime
        .stop(&spec.id)
        .await
        .expect("stopping a stopped desktop is fine");
    let observed = h.runtime.observe().await.expect("observe");
    assert_eq!(observed.len(), 1, "the container stays after stop");
    assert!(!observed[0].running);
    assert!(observed[0].endpoint.is_none());
    let reason = observed[0]
        .stop_reason
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(reason.starts_with("exited with code"), "{reason}");
    assert!(h.volume_exists(&home_of(&spec)).await);

    let endpoint = h.start(&spec).await.expect("start again");
    connect_ok(&endpoint).await;
    let observed = h.runtime.observe().await.expect("observe");
    assert_eq!(observed[0].container_id, container_id, "same container after a restart");
    assert!(observed[0].running);
    let starts = h.home_starts(&spec.id).await;
    assert_eq!(
        starts.len(),
        2,
        "the home volume kept the first start's line: {starts:?}"
    );

    h.runtime.remove(&spec.id).await.expect("remove");
    assert!(h.inspect(&spec.id).await.is_none(), "container gone");
    assert!(h.volume_exists(&home_of(&spec)).await, "home volume kept");
    assert!(h.runtime.observe().await.expect("observe").is_empty());
    h.runtime.remove(&spec.id).await.expect("remove is idempotent");
    assert!(matches!(h.runtime.stop(&spec.id).await, Err(RuntimeError::NotFound(_))));
}

#[tokio::test]
async fn two_desktops_get_their_own_containers_passwords_and_nothing_published() {
    let Some(h) = harness("two", false).await else { return };
    let alice = h.spec("alice", "pw-alice-2");
    let mut bob = h.spec("bob", "pw-bob-2");
    // A type without a memory setting still gets a limit.
    bob.memory_bytes = None;
    let (a, b) = tokio::join!(h.start(&alice), h.start(&bob));
    let (a, b) = (a.expect("start alice"), b.expect("start bob"));
    assert_ne!(a.host, b.host, "each desktop has its own address");
    connect_ok(&a).await;
    connect_ok(&b).await;

    let ia = h.inspect(&alice.id).await.expect("alice's container");
    let ib = h.inspect(&bob.id).await.expect("bob's container");
    assert_ne!(ia.id, ib.id);
    assert_eq!(env_of(&ia, "VNC_PW").as_deref(), Some("pw-alice-2"));
    assert_eq!(env_of(&ib, "VNC_PW").as_deref(), Some("pw-bob-2"));

    let labels = ia.config.as_ref().and_then(|c| c.labels.clone()).unwrap_or_default();
    assert_eq!(labels.get(LABEL_INSTANCE), Some(&h.settings.instance));
    assert_eq!(labels.get("org.iserv-remote-desktop.desktop-id"), Some(&alice.id));
    assert_eq!(
        labels.get("org.iserv-remote-desktop.user").map(String::as_str),
        Some("alice")
    );
    assert_eq!(
        labels.get("org.iserv-remote-desktop.type").map(String::as_str),
        Some("fake")
    );

    let host_config = ia.host_config.clone().unwrap_or_default();
    assert_eq!(host_config.network_mode.as_deref(), Some(h.settings.network.as_str()));
    assert_eq!(host_config.shm_size, Some(64 << 20));
    assert_eq!(host_config.memory, Some(256 << 20));
    assert_eq!(host_config.nano_cpus, Some(500_000_000));
    assert_eq!(host_config.init, Some(false));
    // Contained: no capabilities, no new privileges, a bound on processes.
    assert_eq!(host_config.cap_drop, Some(vec!["ALL".to_owned()]));
    assert_eq!(host_config.cap_add.clone().unwrap_or_default(), Vec::<String>::new());
    assert_eq!(
        host_config.security_opt,
        Some(vec!["no-new-privileges:true".to_owned()])
    );
    assert!(
        host_config.pids_limit.is_some_and(|p| p > 0),
        "{:?}",
        host_config.pids_limit
    );
    let bob_memory = ib.host_config.as_ref().and_then(|c| c.memory);
    assert!(
        bob_memory.is_some_and(|m| m > 0),
        "a default memory limit: {bob_memory:?}"
    );
    assert!(
        host_config.port_bindings.unwrap_or_default().is_empty(),
        "nothing published by default"
    );
    let published: Vec<_> = ia
        .network_settings
        .as_ref()
        .and_then(|n| n.ports.clone())
        .unwrap_or_default()
        .into_values()
        .flatten()
        .flatten()
        .collect();
    assert!(published.is_empty(), "nothing published by default: {published:?}");

    let mounts = ia.mounts.clone().unwrap_or_default();
    let mount = |target: &str| {
        mounts
            .iter()
            .find(|m| m.destination.as_deref() == Some(target))
            .cloned()
    };
    assert_eq!(mount("/home/kasm-user").and_then(|m| m.rw), Some(true));
    assert_eq!(
        mount("/shared").and_then(|m| m.rw),
        Some(false),
        "read-only mount honoured"
    );
    let volume = h.docker.inspect_volume(&home_of(&alice)).await.expect("home volume");
    assert_eq!(volume.labels.get(LABEL_INSTANCE), Some(&h.settings.instance));
}

#[tokio::test]
async fn concurrent_starts_of_one_desktop_share_one_container() {
    let Some(h) = harness("race", false).await else { return };
    let spec = h.spec("carol", "pw-carol");
    let (a, b) = tokio::join!(h.start(&spec), h.start(&spec));
    assert_eq!(a.expect("first start"), b.expect("second start"));
    assert_eq!(h.runtime.observe().await.expect("observe").len(), 1);
}

#[tokio::test]
async fn a_killed_desktop_is_reported_by_the_event_stream() {
    let Some(h) = harness("kill", false).await else { return };
    let (tx, mut events) = mpsc::unbounded_channel();
    let mut stream = h.runtime.events();
    let forward = tokio::spawn(async move {
        while let Some(event) = stream.next().await {
            if tx.send(event).is_err() {
                break;
            }
        }
    });
    // The subscription is made on the first poll, in the task; give it a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let spec = h.spec("dave", "pw-dave");
    h.start(&spec).await.expect("start");

    let killed = Instant::now();
    let options = KillContainerOptionsBuilder::new().signal("SIGKILL").build();
    h.docker
        .kill_container(&h.runtime.container_name(&spec.id), Some(options))
        .await
        .expect("kill");
    let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("an event within 5 s")
        .expect("stream open");
    assert_eq!(
        event,
        RuntimeEvent::Stopped {
            id: spec.id.clone(),
            reason: ExitReason::Exited { code: Some(137) }
        }
    );
    println!("die event {} ms after kill", killed.elapsed().as_millis());

    h.runtime.remove(&spec.id).await.expect("remove");
    let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("an event within 5 s")
        .expect("stream open");
    assert_eq!(event, RuntimeEvent::Removed { id: spec.id.clone() });
    forward.abort();
}

#[tokio::test]
async fn a_missing_image_is_an_image_error_with_the_engines_reason() {
    let Some(h) = harness("noimg", false).await else { return };
    let mut spec = h.spec("erin", "pw-erin");
    spec.image = format!("iserv-rd/no-such-image:{}", std::process::id());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let started = Instant::now();
    let err = h.runtime.start(&spec, tx).await.expect_err("no registry, no image");
    match &err {
        RuntimeError::Image { image, reason } => {
            assert_eq!(image, &spec.image);
            assert!(reason.starts_with("pull failed: ") && reason.len() > 20, "{reason}");
        }
        other => panic!("expected an image error, got {other:?}"),
    }
    while let Ok(step) = rx.try_recv() {
        assert!(matches!(step, Progress::Pulling { .. }), "nothing created: {step:?}");
    }
    assert!(h.inspect(&spec.id).await.is_none(), "no container left behind");
    println!("missing image reported in {} ms: {err}", started.elapsed().as_millis());
}

#[tokio::test]
async fn a_desktop_that_exits_at_once_is_a_start_error() {
    let Some(h) = harness("exits", false).await else { return };
    let mut spec = h.spec("frank", "pw-frank");
    // fake-kasm refuses a port it cannot parse and exits with code 2.
    spec.env.push(("FAKE_KASM_PORT".to_owned(), "not-a-port".to_owned()));
    let err = h.start(&spec).await.expect_err("the container dies at once");
    assert!(err.to_string().contains("exited with code 2"), "{err}");
    match err {
        RuntimeError::Exited {
            reason: ExitReason::Exited { code: Some(2) },
            ..
        } => {}
        other => panic!("expected the container's exit as a start error, got {other:?}"),
    }
}

#[tokio::test]
async fn loopback_mode_publishes_on_127_0_0_1_only() {
    let Some(h) = harness("loop", true).await else { return };
    let spec = h.spec("gina", "pw-gina");
    let endpoint = h.start(&spec).await.expect("start");
    assert_eq!(endpoint.host, "127.0.0.1");
    assert_ne!(endpoint.port, 0);
    connect_ok(&endpoint).await;

    let info = h.inspect(&spec.id).await.expect("container");
    let requested = info
        .host_config
        .and_then(|c| c.port_bindings)
        .unwrap_or_default()
        .into_iter()
        .collect::<HashMap<_, _>>();
    assert_eq!(requested.keys().collect::<Vec<_>>(), ["6901/tcp"]);
    let bound: Vec<_> = info
        .network_settings
        .and_then(|n| n.ports)
        .unwrap_or_default()
        .into_values()
        .flatten()
        .flatten()
        .collect();
    assert!(!bound.is_empty());
    for binding in requested.into_values().flatten().flatten().chain(bound.clone()) {
        assert_eq!(binding.host_ip.as_deref(), Some("127.0.0.1"), "{binding:?}");
    }
    assert!(
        bound
            .iter()
            .any(|b| b.host_port.as_deref() == Some(&endpoint.port.to_string()))
    );

    let observed = h.runtime.observe().await.expect("observe");
    assert_eq!(
        observed[0].endpoint.as_ref().map(|e| (e.host.as_str(), e.port)),
        Some(("127.0.0.1", endpoint.port))
    );
}

#[tokio::test]
async fn a_restarted_portal_finds_running_desktops_in_docker() {
    let Some(h) = harness("restart", false).await else {
        return;
    };
    let spec = h.spec("hank", "pw-hank");
    let endpoint = h.start(&spec).await.expect("start");

    // A new runtime with the same settings knows nothing but what Docker tells it.
    let fresh = DockerRuntime::connect(h.settings.clone()).await.expect("connect");
    let observed = fresh.observe().await.expect("observe");
    assert_eq!(observed.len(), 1);
    assert!(observed[0].running);
    assert_eq!(observed[0].id, spec.id);
    let running = fresh.running().await.expect("running");
    assert_eq!(running.len(), 1);
    let desktop = &running[0];
    assert_eq!(desktop.id, spec.id);
    assert_eq!(desktop.name, spec.id);
    assert_eq!(
        (&desktop.endpoint.host, desktop.endpoint.port),
        (&endpoint.host, endpoint.port)
    );
    assert!(desktop.endpoint.https);
    assert!(desktop.credentials.is_none(), "passwords live in the portal's store");
    assert_eq!(desktop.audience.users, ["hank"]);
}

#[tokio::test]
async fn a_bogus_engine_address_is_unavailable_quickly() {
    for host in ["unix:///nonexistent.sock", "tcp://127.0.0.1:1"] {
        let settings = DockerSettings {
            host: Some(host.to_owned()),
            allow_insecure_tcp: true,
            ..DockerSettings::default()
        };
        let runtime = DockerRuntime::connect(settings)
            .await
            .expect("connect does not need the engine");
        let started = Instant::now();
        let err = runtime.ping().await.expect_err("nothing listens there");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{host}: took {:?}",
            started.elapsed()
        );
        match err {
            RuntimeError::Unavailable(message) => {
                assert!(message.contains("cannot reach the Docker engine at"), "{message}");
                assert!(message.contains(host), "{message}");
            }
            other => panic!("{host}: expected Unavailable, got {other:?}"),
        }
        assert!(matches!(runtime.observe().await, Err(RuntimeError::Unavailable(_))));
        let (tx, _rx) = mpsc::unbounded_channel();
        let spec = DesktopSpec {
            id: "x-y".to_owned(),
            username: "x".to_owned(),
            type_key: "y".to_owned(),
            image: IMAGE.to_owned(),
            port: 6901,
            https: true,
            verify_tls: false,
            env: Vec::new(),
            credentials: Credentials {
                username: "kasm_user".to_owned(),
                password: SecretString::from("pw".to_owned()),
            },
            shm_size_bytes: 1 << 20,
            memory_bytes: None,
            nano_cpus: None,
            home: Some(VolumeMount {
                volume: "ird-home-x".to_owned(),
                target: "/home/kasm-user".to_owned(),
                read_only: false,
            }),
            mounts: Vec::new(),
            binds: Vec::new(),
            internet: true,
            owner_role: "student".to_owned(),
        };
        assert!(matches!(
            runtime.start(&spec, tx).await,
            Err(RuntimeError::Unavailable(_))
        ));
        assert!(runtime.events().next().await.is_none(), "the event stream ends");
    }
    let malformed = DockerSettings {
        host: Some("ftp://docker".to_owned()),
        ..DockerSettings::default()
    };
    assert!(matches!(
        DockerRuntime::connect(malformed).await,
        Err(RuntimeError::Invalid(_))
    ));
}

/// Prints start and restart times; run alone for clean numbers:
/// `cargo test -p desktop-runtime --test docker timings -- --nocapture`.
#[tokio::test]
async fn timings_of_start_and_restart() {
    let Some(h) = harness("time", false).await else { return };
    const ROUNDS: usize = 3;
    let mut create = Vec::new();
    let mut restart = Vec::new();
    let mut running = Vec::new();
    for round in 0..ROUNDS {
        let spec = h.spec(&format!("t{round}"), "pw-time");
        let started = Instant::now();
        h.start(&spec).await.expect("create and start");
        create.push(started.elapsed());
        let started = Instant::now();
        h.start(&spec).await.expect("start of a running desktop");
        running.push(started.elapsed());
        h.runtime.stop(&spec.id).await.expect("stop");
        let started = Instant::now();
        h.start(&spec).await.expect("restart");
        restart.push(started.elapsed());
    }
    let show = |d: &[Duration]| {
        d.iter()
            .map(|d| format!("{} ms", d.as_millis()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("create+start until endpoint: {}", show(&create));
    println!("start of a stopped container: {}", show(&restart));
    println!("start of a running container: {}", show(&running));
}

impl Harness {
    /// Whether desktop `id` can open a TCP connection to `target` (`host:port`), tried from
    /// inside its container with `fake-kasm --connect` (the image has no other client).
    async fn desktop_reaches(&self, id: &str, target: &str) -> bool {
        let name = self.runtime.container_name(id);
        let target = target.to_owned();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new("docker")
                .args(["exec", &name, "/fake-kasm", "--connect", &target])
                .output()
        })
        .await
        .expect("docker exec task")
        .expect("docker exec runs");
        match out.status.code() {
            Some(0) => true,
            Some(1) => false,
            _ => panic!(
                "docker exec of fake-kasm --connect failed (image older than --connect? run \
                 scripts/build-test-images.sh): {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }

    /// The gateway of desktop `id`'s network: the host's address on that bridge.
    async fn gateway_of(&self, id: &str) -> Option<String> {
        let info = self.inspect(id).await?;
        info.network_settings?
            .networks?
            .into_values()
            .find_map(|n| n.gateway.filter(|g| !g.is_empty()))
    }
}

/// The host's address on its default route (not a Docker bridge): "outside" for a desktop.
/// Another machine for the desktops to reach: a network namespace joined to the host by a
/// veth pair, with a TCP listener on its own address, removed on drop. Desktops reach it as
/// they would a server in the school's network: routed and NATed by the host.
struct OutsideHost {
    netns: String,
    veth: String,
    listener: std::process::Child,
    /// `ADDRESS:PORT` of the listener.
    address: String,
}

impl OutsideHost {
    fn start(tag: &str) -> OutsideHost {
        let id = std::process::id() % 250 + 1;
        let netns = format!("ird-t-out-{tag}");
        let (veth, peer) = (format!("irdo{id}"), format!("irdp{id}"));
        let (host_ip, its_ip) = (format!("10.251.{id}.1"), format!("10.251.{id}.2"));
        let ip = |args: &[&str]| {
            let out = std::process::Command::new("ip")
                .args(args)
                .output()
                .expect("run ip (iproute2)");
            assert!(
                out.status.success(),
                "ip {args:?}: {} (the test needs root and iproute2)",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let _ = std::process::Command::new("ip").args(["netns", "del", &netns]).output();
        let _ = std::process::Command::new("ip").args(["link", "del", &veth]).output();
        ip(&["netns", "add", &netns]);
        ip(&["link", "add", &veth, "type", "veth", "peer", "name", &peer]);
        ip(&["link", "set", &peer, "netns", &netns]);
        ip(&["addr", "add", &format!("{host_ip}/30"), "dev", &veth]);
        ip(&["link", "set", &veth, "up"]);
        for args in [
            vec!["addr", "add", &*format!("{its_ip}/30"), "dev", &*peer],
            vec!["link", "set", &*peer, "up"],
            vec!["link", "set", "lo", "up"],
            vec!["route", "add", "default", "via", &*host_ip],
        ] {
            let mut full = vec!["netns", "exec", &netns, "ip"];
            full.extend(args);
            ip(&full);
        }
        let port = 18_000 + id;
        let listener = std::process::Command::new("ip")
            .args(["netns", "exec", &netns, "python3", "-c"])
            .arg(format!(
                "import socket\ns = socket.create_server(('{its_ip}', {port}))\nwhile True: s.accept()[0].close()"
            ))
            .spawn()
            .expect("start a listener in the namespace (python3)");
        let address = format!("{its_ip}:{port}");
        let host = OutsideHost {
            netns,
            veth,
            listener,
            address,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect_timeout(
            &host.address.parse().expect("socket address"),
            Duration::from_millis(200),
        )
        .is_err()
        {
            assert!(Instant::now() < deadline, "the outside host's listener did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        host
    }
}

impl Drop for OutsideHost {
    fn drop(&mut self) {
        let _ = self.listener.kill();
        let _ = self.listener.wait();
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.veth])
            .output();
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.netns])
            .output();
    }
}

#[tokio::test]
async fn desktops_cannot_reach_each_other_while_the_host_reaches_both() {
    let Some(h) = harness("icc", false).await else { return };
    let (alice, bob) = (h.spec("alice", "pw-alice-icc"), h.spec("bob", "pw-bob-icc"));
    let (a, b) = tokio::join!(h.start(&alice), h.start(&bob));
    let (a, b) = (a.expect("start alice"), b.expect("start bob"));
    // The portal (here: this test process in the host's network namespace) reaches both.
    connect_ok(&a).await;
    connect_ok(&b).await;

    assert!(
        !h.desktop_reaches(&alice.id, &format!("{}:6901", b.host)).await,
        "alice's desktop must not reach bob's port 6901"
    );
    assert!(
        !h.desktop_reaches(&bob.id, &format!("{}:6901", a.host)).await,
        "bob's desktop must not reach alice's"
    );
    // Sanity: the probe itself works (a desktop reaches its own server).
    assert!(h.desktop_reaches(&alice.id, "127.0.0.1:6901").await);

    // A portal listening on the host's loopback (as deploy/compose.yaml runs it) is out of
    // reach: the desktop's 127.0.0.1 is its own, and the gateway does not route to loopback.
    let portal = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = portal.local_addr().expect("local address").port();
    let gateway = h.gateway_of(&alice.id).await.expect("a gateway");
    assert!(!h.desktop_reaches(&alice.id, &format!("{gateway}:{port}")).await);
    assert!(!h.desktop_reaches(&alice.id, &format!("127.0.0.1:{port}")).await);

    let network = h
        .docker
        .inspect_network(&h.settings.network, None)
        .await
        .expect("the desktop network");
    let options = network.options.unwrap_or_default();
    assert_eq!(
        options.get("com.docker.network.bridge.enable_icc").map(String::as_str),
        Some("false")
    );
    let bridge = options
        .get("com.docker.network.bridge.name")
        .cloned()
        .unwrap_or_default();
    assert!(bridge.starts_with(desktop_runtime::BRIDGE_PREFIX), "{bridge}");
}

#[tokio::test]
async fn an_open_network_left_by_an_older_portal_is_recreated_isolated_or_refused() {
    let Some(h) = harness("oldnet", false).await else {
        return;
    };
    // As an older portal (or `docker network create`) made it: inter-container traffic on.
    docker_cli(&[
        "network",
        "create",
        "--label",
        &format!("{LABEL_INSTANCE}={}", h.settings.instance),
        &h.settings.network,
    ]);
    let alice = h.spec("alice", "pw-alice-old");
    h.start(&alice).await.expect("an unused open network is re-created");
    let network = h
        .docker
        .inspect_network(&h.settings.network, None)
        .await
        .expect("network");
    assert_eq!(
        network
            .options
            .unwrap_or_default()
            .get("com.docker.network.bridge.enable_icc")
            .map(String::as_str),
        Some("false")
    );

    // One in use by a container the portal does not own is refused, with what to do.
    h.runtime.remove(&alice.id).await.expect("remove");
    docker_cli(&["network", "rm", &h.settings.network]);
    docker_cli(&["network", "create", &h.settings.network]);
    let bystander = format!("ird-t-bystander-{}", h.tag);
    docker_cli(&[
        "create",
        "--name",
        &bystander,
        "--label",
        &format!("{LABEL_INSTANCE}={}", h.settings.instance),
        "--network",
        &h.settings.network,
        IMAGE,
    ]);
    let err = h.start(&alice).await.expect_err("an open network in use");
    docker_cli(&["rm", "-f", &bystander]);
    let message = err.to_string();
    assert!(
        message.contains("not isolated") && message.contains("docker network rm"),
        "{message}"
    );
}

#[tokio::test]
async fn a_desktop_without_internet_reaches_nothing_outside_a_normal_one_does() {
    let Some(h) = harness("exam", false).await else { return };
    let open = h.spec("olga", "pw-olga");
    let mut exam = h.spec("erik", "pw-erik");
    exam.internet = false;
    let (o, e) = tokio::join!(h.start(&open), h.start(&exam));
    let (o, e) = (o.expect("start the normal desktop"), e.expect("start the exam desktop"));
    // The portal reaches both, the exam desktop on its internal network too.
    connect_ok(&o).await;
    connect_ok(&e).await;
    let info = h.inspect(&exam.id).await.expect("exam container");
    let internal = format!("{}-internal", h.settings.network);
    assert_eq!(
        info.host_config.and_then(|c| c.network_mode).as_deref(),
        Some(internal.as_str())
    );
    let network = h
        .docker
        .inspect_network(&internal, None)
        .await
        .expect("internal network");
    assert_eq!(network.internal, Some(true));

    // "Outside": another machine, as a server in the school's network or on the internet is
    // one — here a network namespace with its own address, routed through the host. (A port
    // published on the host's own address is the host, not outside: Docker's userland proxy
    // listens there, and what a desktop reaches on the host is the host firewall's business,
    // README "What a desktop can reach".)
    let host = OutsideHost::start(&h.tag);
    let outside = host.address.clone();
    assert!(
        h.desktop_reaches(&open.id, &outside).await,
        "a normal desktop reaches a service outside its network"
    );
    assert!(
        !h.desktop_reaches(&exam.id, &outside).await,
        "an exam desktop reaches nothing outside"
    );
    assert!(
        !h.desktop_reaches(&exam.id, &format!("{}:6901", o.host)).await,
        "nor other desktops"
    );
}

#[tokio::test]
async fn a_stopped_desktop_is_recreated_when_its_spec_changed_and_reused_when_not() {
    let Some(h) = harness("respec", false).await else {
        return;
    };
    let mut spec = h.spec("tina", "pw-tina");
    spec.owner_role = "teacher".to_owned();
    spec.mounts[0].read_only = false;
    h.start(&spec).await.expect("start");
    let first = h.inspect(&spec.id).await.and_then(|i| i.id).expect("container id");

    // A changed spec does not touch a running desktop.
    let mut changed = spec.clone();
    changed.env.push(("GREETING".to_owned(), "hallo".to_owned()));
    h.start(&changed).await.expect("start of a running desktop");
    assert_eq!(h.inspect(&spec.id).await.and_then(|i| i.id), Some(first.clone()));

    // Unchanged: the stopped container is started again.
    h.runtime.stop(&spec.id).await.expect("stop");
    h.start(&spec).await.expect("start unchanged");
    assert_eq!(h.inspect(&spec.id).await.and_then(|i| i.id), Some(first.clone()));

    // Changed environment: a new container with it, the home kept.
    h.runtime.stop(&spec.id).await.expect("stop");
    let endpoint = h.start(&changed).await.expect("start with new env");
    connect_ok(&endpoint).await;
    let info = h.inspect(&spec.id).await.expect("container");
    let second = info.id.clone().expect("container id");
    assert_ne!(second, first, "re-created");
    assert_eq!(env_of(&info, "GREETING").as_deref(), Some("hallo"));
    assert_eq!(h.home_starts(&spec.id).await.len(), 3, "the home volume stays");

    // The teacher is demoted: the next start re-creates the container with the shared folder
    // read-only.
    h.runtime.stop(&spec.id).await.expect("stop");
    let mut demoted = changed.clone();
    demoted.owner_role = "student".to_owned();
    demoted.mounts[0].read_only = true;
    h.start(&demoted).await.expect("start as student");
    let info = h.inspect(&spec.id).await.expect("container");
    assert_ne!(info.id.as_deref(), Some(second.as_str()));
    let shared = info
        .mounts
        .unwrap_or_default()
        .into_iter()
        .find(|m| m.destination.as_deref() == Some("/shared"))
        .expect("shared mount");
    assert_eq!(shared.rw, Some(false));
    let labels = info.config.and_then(|c| c.labels).unwrap_or_default();
    assert_eq!(
        labels.get(desktop_runtime::LABEL_ROLE).map(String::as_str),
        Some("student")
    );

    // The role alone is part of what a container was made from.
    h.runtime.stop(&spec.id).await.expect("stop");
    let before = h.inspect(&spec.id).await.and_then(|i| i.id);
    let mut role_only = demoted.clone();
    role_only.owner_role = "admin".to_owned();
    h.start(&role_only).await.expect("start as admin");
    assert_ne!(h.inspect(&spec.id).await.and_then(|i| i.id), before);
}

#[tokio::test]
async fn long_and_unusual_usernames_get_valid_container_and_volume_names() {
    let Some(h) = harness("names", false).await else { return };
    for user in ["u".repeat(64), format!("Anna.Müller o'Brien@{}", h.tag)] {
        let mut spec = h.spec(&user, "pw-names");
        spec.id = desktop_runtime::safe_id(&format!("{user}-fake-{}", h.tag));
        spec.home.as_mut().expect("a home volume").volume =
            desktop_runtime::safe_docker_name(&format!("{}-home-{user}", h.settings.instance));
        let endpoint = h
            .start(&spec)
            .await
            .unwrap_or_else(|e| panic!("start for {user:?}: {e}"));
        connect_ok(&endpoint).await;
        assert!(desktop_runtime::valid_id(&spec.id), "{}", spec.id);
        let info = h.inspect(&spec.id).await.expect("container");
        let labels = info.config.and_then(|c| c.labels).unwrap_or_default();
        assert_eq!(
            labels.get("org.iserv-remote-desktop.user"),
            Some(&user),
            "the label keeps the real name"
        );
        assert!(h.volume_exists(&home_of(&spec)).await);
        h.runtime.remove(&spec.id).await.expect("remove");
    }
}

/// A disk limit is asked for exactly where the engine's storage driver enforces it; elsewhere
/// (this machine: fuse-overlayfs) the desktop starts without one rather than failing.
#[tokio::test]
async fn a_disk_limit_is_set_where_the_storage_driver_enforces_it() {
    const LIMIT: i64 = 2 << 30;
    let Some(h) = harness_with("disk", |s| s.disk_limit_bytes = Some(LIMIT)).await else {
        return;
    };
    let spec = h.spec("dana", "pw-dana");
    h.start(&spec).await.expect("a desktop starts whatever the driver");
    let info = h.docker.info().await.expect("docker info");
    let supported = desktop_runtime::disk_limit_support(
        info.driver.as_deref().unwrap_or(""),
        &info.driver_status.unwrap_or_default(),
    )
    .is_ok();
    let storage = h
        .inspect(&spec.id)
        .await
        .and_then(|i| i.host_config)
        .and_then(|c| c.storage_opt)
        .unwrap_or_default();
    if supported {
        assert_eq!(storage.get("size"), Some(&LIMIT.to_string()), "{storage:?}");
    } else {
        assert!(storage.is_empty(), "no limit the driver would refuse: {storage:?}");
    }
}

/// A desktop made when homes were volumes gets, at its next start, a new container with the
/// home as a host folder (what `/files` shows), and the desktop user writes there.
#[tokio::test]
async fn a_desktop_made_with_a_home_volume_is_recreated_with_a_bind_mounted_home() {
    let Some(h) = harness("bindhome", false).await else {
        return;
    };
    let old = h.spec("vera", "pw-vera");
    h.start(&old).await.expect("start with a home volume");
    let first = h.inspect(&old.id).await.and_then(|i| i.id).expect("container id");
    h.runtime.stop(&old.id).await.expect("stop");

    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("homes/vera");
    std::fs::create_dir_all(&home).expect("home");
    // The desktop's user (uid 1000) owns her home, as the portal makes it.
    std::os::unix::fs::chown(&home, Some(1000), Some(1000)).expect("chown (the tests run as root)");
    let mut new = old.clone();
    new.home = None;
    new.binds = vec![desktop_runtime::BindMount {
        source: home.clone(),
        target: "/home/kasm-user".to_owned(),
        read_only: false,
    }];
    let endpoint = h.start(&new).await.expect("start with a bind-mounted home");
    connect_ok(&endpoint).await;
    let info = h.inspect(&new.id).await.expect("container");
    assert_ne!(info.id.as_deref(), Some(first.as_str()), "re-created");
    let mount = info
        .mounts
        .unwrap_or_default()
        .into_iter()
        .find(|m| m.destination.as_deref() == Some("/home/kasm-user"))
        .expect("home mount");
    assert_eq!(mount.typ.as_deref(), Some("bind"));
    assert_eq!(mount.source.as_deref(), home.to_str());
    // fake-kasm notes each start in its home: written by uid 1000 into the host folder.
    let note = home.join(".fake-kasm-starts");
    assert!(note.exists(), "the desktop wrote into its bind-mounted home");
}

/// On an engine whose storage driver enforces it (a btrfs engine of the test's own,
/// `scripts/start-btrfs-engine.sh`), a desktop that writes into its container stops at the
/// disk limit: a student cannot fill the server's disk from inside her desktop.
#[tokio::test]
async fn a_disk_limit_stops_a_desktop_that_fills_its_container() {
    const LIMIT: i64 = 64 << 20;
    let Some(host) = std::env::var("TEST_BTRFS_DOCKER_HOST").ok().filter(|h| !h.is_empty()) else {
        skip::<()>("TEST_BTRFS_DOCKER_HOST is not set: run scripts/start-btrfs-engine.sh (scripts/test.sh does)");
        return;
    };
    let Some(h) = harness_with("fill", |s| {
        s.host = Some(host.clone());
        s.disk_limit_bytes = Some(LIMIT);
    })
    .await
    else {
        return;
    };
    let mut spec = h.spec("fiona", "pw-fiona");
    // Only the container's own file system counts here: no volumes (the test engine has the
    // image and nothing else).
    spec.home = None;
    spec.mounts.clear();
    h.start(&spec).await.expect("start on the btrfs engine");
    let name = h.runtime.container_name(&spec.id);
    let four_times = (4 * LIMIT).to_string();
    let out = docker_cli_at(
        Some(&host),
        &["exec", &name, "/fake-kasm", "--fill", "/tmp/fill", &four_times],
    );
    let line = out
        .iter()
        .find(|l| l.starts_with("filled "))
        .cloned()
        .unwrap_or_default();
    let written: i64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("fake-kasm --fill printed {out:?}"));
    assert!(
        written <= LIMIT,
        "wrote {written} bytes past the {LIMIT}-byte limit: {line}"
    );
    assert!(
        written >= LIMIT / 4,
        "the limit stopped it far too early ({written} bytes): {line}"
    );
    assert!(line.contains('('), "a write failed at the limit: {line}");
}
