//! The portal's own container image (Dockerfile, built by scripts/build-portal-image.sh), run
//! as deploy/compose.yaml runs it: non-root with the Docker socket's group, read-only root,
//! in the host's network namespace on loopback. It must become healthy, serve its pages, and
//! start a desktop it can reach and that cannot reach it. Under `CI=true` a missing image
//! fails the test.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::docker::{DockerScope, docker, docker_ready, follow_events, post_start};
use crate::helpers::*;

/// What scripts/build-portal-image.sh builds (and deploy/compose.yaml runs); `PORTAL_IMAGE`
/// names another tag (built with `IRD_IMAGE=… scripts/build-portal-image.sh`, beside the
/// shared one). Not an `IRD_` name: the portal would read that as a setting.
fn portal_image() -> String {
    std::env::var("PORTAL_IMAGE").unwrap_or_else(|_| "iserv-remote-desktop:latest".to_owned())
}

/// Whether the portal image is there; fails under CI when it is not.
fn image_ready() -> bool {
    let ok = Command::new("docker")
        .args(["image", "inspect", &portal_image()])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let msg = format!(
            "the container test needs {}: run scripts/build-portal-image.sh",
            portal_image()
        );
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{msg}");
        }
        eprintln!("skipped: {msg}");
    }
    ok
}

/// Removes the portal's container (and its anonymous /data volume), also when the test fails.
struct PortalContainer(String);

impl Drop for PortalContainer {
    fn drop(&mut self) {
        docker(&["rm", "-f", "-v", &self.0]);
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `docker …` that must succeed → stdout.
pub(crate) fn docker_ok(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test]
async fn the_portal_image_runs_healthy_and_starts_a_desktop_it_can_reach() {
    if !docker_ready() || !image_ready() {
        return;
    }
    // Arrange: names of this test's own (the portal creates the network), a config file as an
    // admin writes it.
    let instance = format!("irdc-{}", std::process::id());
    // Dropped last: the portal container is gone before the network is removed.
    let scope = DockerScope {
        instance: instance.clone(),
    };
    let (port, metrics_port) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("portal.toml");
    std::fs::write(
        &config,
        format!(
            r#"public_url = "http://127.0.0.1:{port}"
# The image's wiring is what is tested here; desktop origins have their own tests.
desktop_origin = "off"
[docker]
instance = "{instance}"
network = "{instance}"
home_volume_prefix = "{instance}-home-"
shared_volume = "{instance}-shared"
start_timeout_secs = 60

[[desktop_types]]
key = "fake"
name = "Fake"
image = "{image}"
shm_size_mib = 64
memory_mib = 256
env = {{ FAKE_KASM_HOME_CHECK = "1" }}
"#,
            image = crate::docker::IMAGE
        ),
    )
    .unwrap();
    // The container's user (10001) reads it through the bind mount.
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let socket_gid = std::fs::metadata("/var/run/docker.sock")
        .map(|m| std::os::unix::fs::MetadataExt::gid(&m))
        .unwrap()
        .to_string();

    // Users' files: a host directory, mounted at the same path (the engine mounts homes into
    // desktops from host paths).
    let files = tempfile::tempdir().unwrap();
    let files_root = files.path().display().to_string();
    let files_mount = format!("{files_root}:{files_root}");
    let files_env = format!("IRD_FILES__ROOT={files_root}");

    // Without the two capabilities (the image's own user, nothing added) the portal refuses
    // to start, saying what to grant.
    let mount = format!("{}:/etc/ird/portal.toml:ro", config.display());
    let refused = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--group-add",
            &socket_gid,
            "-v",
            "/var/run/docker.sock:/var/run/docker.sock",
            "-v",
            &mount,
            "-v",
            &files_mount,
            "-e",
            "IRD_CONFIG=/etc/ird/portal.toml",
            "-e",
            &files_env,
            "-e",
            "IRD_LISTEN=127.0.0.1:0",
            "-e",
            "IRD_METRICS__LISTEN=127.0.0.1:0",
            "--network",
            "host",
            "--read-only",
            "--tmpfs",
            "/tmp:mode=1777",
            "--cap-drop",
            "ALL",
            &portal_image(),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "started without CAP_CHOWN: {stderr}");
    assert!(
        stderr.contains("files.uid") && stderr.contains("CAP_CHOWN"),
        "the refusal names the setting and the capability: {stderr}"
    );

    // Act: run it like deploy/compose.yaml does.
    let name = format!("{instance}-portal");
    let listen = format!("IRD_LISTEN=127.0.0.1:{port}");
    let metrics_listen = format!("IRD_METRICS__LISTEN=127.0.0.1:{metrics_port}");
    let id = docker_ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--group-add",
        &socket_gid,
        "-v",
        "/var/run/docker.sock:/var/run/docker.sock",
        "-v",
        &mount,
        "-v",
        &files_mount,
        "-e",
        "IRD_CONFIG=/etc/ird/portal.toml",
        "-e",
        &files_env,
        "-e",
        &listen,
        "-e",
        &metrics_listen,
        "--network",
        "host",
        "--read-only",
        "--tmpfs",
        "/tmp:mode=1777",
        "--user",
        "0:0",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "CHOWN",
        "--cap-add",
        "DAC_OVERRIDE",
        "--security-opt",
        "no-new-privileges",
        // The image's own HEALTHCHECK command, asked every second instead of every 30.
        "--health-interval",
        "1s",
        "--health-start-period",
        "30s",
        &portal_image(),
    ]);
    let _portal = PortalContainer(id.clone());

    // Assert: healthy by its own check, pages up.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let health = docker(&["inspect", "-f", "{{.State.Health.Status}}", &id]);
        if health == "healthy" {
            break;
        }
        assert!(
            Instant::now() < deadline && health != "unhealthy",
            "container health {health:?}; logs:\n{}",
            docker_logs(&id)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(docker(&["inspect", "-f", "{{.Config.User}}", &id]), "0:0");
    // Engines write capabilities with or without the `CAP_` prefix.
    assert_eq!(
        docker(&["inspect", "-f", "{{.HostConfig.CapAdd}} {{.HostConfig.CapDrop}}", &id]).replace("CAP_", ""),
        "[CHOWN DAC_OVERRIDE] [ALL]"
    );
    let url = format!("http://127.0.0.1:{port}");
    let browser = Browser::at(&url);
    for path in ["/healthz", "/readyz"] {
        let resp = browser.get(path).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}: {}", resp.text().await.unwrap());
    }
    let login = browser.get("/login").send().await.unwrap().text().await.unwrap();
    assert!(login.contains("name=\"csrf_token\""), "{login}");

    // An account made with the binary inside the container, as an admin would.
    let mut add = Command::new("docker")
        .args([
            "exec",
            "-i",
            &id,
            "iserv-remote-desktop",
            "user",
            "add",
            "alice",
            "--role",
            "student",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(add.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let out = add.wait_with_output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("created alice"),
        "{out:?}"
    );
    let resp = browser
        .post("/login")
        .form(&[
            ("username", "alice"),
            ("password", PASSWORD),
            ("csrf_token", &csrf_from(&login)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);

    // A desktop started by the containerised portal on the socket's engine, reached over
    // the shared network.
    let (status, body) = post_start(&browser, "fake").await;
    assert_eq!(status, 202, "{body}");
    let events = follow_events(&browser, body["events_url"].as_str().unwrap()).await;
    assert_eq!(
        events.last().unwrap()["step"],
        "ready",
        "{events:?}\n{}",
        docker_logs(&id)
    );
    let page = browser.get("/desktop/alice-fake/").send().await.unwrap();
    assert_eq!(page.status(), 200, "the portal reaches the desktop at its address");

    // The desktop's home is alice's folder in the host's files root, owned by the desktop
    // user; an upload lands there, the desktop user's too.
    let desktop = scope.container("alice-fake");
    let mounts = docker(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{.Type}} {{.Destination}} {{.Source}}\n{{end}}",
        &desktop,
    ]);
    let home = mounts
        .lines()
        .find_map(|l| l.strip_prefix("bind /home/kasm-user "))
        .unwrap_or_else(|| panic!("{mounts}"))
        .to_owned();
    assert!(home.starts_with(&format!("{files_root}/homes/")), "{mounts}");
    let csrf = browser.csrf().await;
    let resp = browser
        .http
        .put(format!("{url}/api/files/home/Hallo.txt"))
        .header("x-csrf-token", &csrf)
        .body("aus dem Container-Portal")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let meta = std::fs::metadata(format!("{home}/Hallo.txt")).unwrap();
    use std::os::unix::fs::MetadataExt as _;
    assert_eq!((meta.uid(), meta.gid()), (1000, 1000));
    // The fake desktop noted its start in its home: written by uid 1000 inside.
    assert!(
        std::path::Path::new(&format!("{home}/.fake-kasm-starts")).exists(),
        "{mounts}"
    );

    // The desktop reaches neither of the portal's ports: not at its own 127.0.0.1, not at the
    // host's address on its network, not at any address of the portal's container.
    let gateway = docker(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.Gateway}}{{end}}",
        &desktop,
    ]);
    // The portal container's own addresses too (none with host networking; on a shared
    // desktop network, as before, a desktop reached its metrics port there).
    let mut addresses = vec!["127.0.0.1".to_owned(), gateway];
    addresses.extend(
        docker(&[
            "inspect",
            "-f",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
            &id,
        ])
        .split_whitespace()
        .map(str::to_owned),
    );
    for target in addresses
        .iter()
        .flat_map(|a| [port, metrics_port].map(|p| format!("{a}:{p}")))
    {
        let out = Command::new("docker")
            .args(["exec", &desktop, "/fake-kasm", "--connect", &target])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "the desktop must not reach the portal at {target}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

fn docker_logs(id: &str) -> String {
    let out = Command::new("docker").args(["logs", id]).output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `docker compose` (v2) or `docker-compose` (v1), whichever is installed.
fn compose_command() -> Option<Vec<&'static str>> {
    let works = |cmd: &[&str]| {
        Command::new(cmd[0])
            .args(&cmd[1..])
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    [vec!["docker", "compose"], vec!["docker-compose"]]
        .into_iter()
        .find(|c| works(c))
}

/// Brings a compose project down (containers and its volume), also when the test fails.
struct ComposeProject {
    command: Vec<&'static str>,
    dir: std::path::PathBuf,
    name: String,
}

impl ComposeProject {
    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new(self.command[0])
            .args(&self.command[1..])
            .args(["-p", &self.name, "-f"])
            .arg(self.dir.join("compose.yaml"))
            .args(args)
            .current_dir(&self.dir)
            .output()
            .unwrap()
    }
}

impl Drop for ComposeProject {
    fn drop(&mut self) {
        self.run(&["down", "-v", "--timeout", "5"]);
    }
}

/// deploy/compose.yaml itself, with a Flask-style `.env`: the portal comes up on the Docker
/// socket in the host's network namespace, non-root, and reads the seed names from the file.
#[tokio::test]
async fn deploy_compose_yaml_runs_the_portal_with_a_flask_env_file() {
    if !docker_ready() || !image_ready() {
        return;
    }
    let Some(command) = compose_command() else {
        let msg = "docker compose / docker-compose is not installed";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{msg}");
        }
        eprintln!("skipped: {msg}");
        return;
    };
    let instance = format!("irdcc-{}", std::process::id());
    let _scope = DockerScope {
        instance: instance.clone(),
    };
    let (port, metrics_port) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let compose = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/compose.yaml")).unwrap();
    let compose = compose.replace(
        "image: iserv-remote-desktop:latest",
        &format!("image: {}", portal_image()),
    );
    std::fs::write(dir.path().join("compose.yaml"), compose).unwrap();
    let socket_gid = std::fs::metadata("/var/run/docker.sock")
        .map(|m| std::os::unix::fs::MetadataExt::gid(&m))
        .unwrap();
    // The Flask version's names, plus what compose reads for this test's ports and network.
    std::fs::write(
        dir.path().join(".env"),
        format!(
            "SECRET_KEY=flask-secret\nFRONTEND_URL=http://127.0.0.1:{port}\nKASM_VERIFY_SSL=false\n\
             VNC_PASSWORD=ignored-on-purpose\nIRD_DOCKER__INSTANCE={instance}\n\
             IRD_DOCKER__HOME_VOLUME_PREFIX={instance}-home-\nIRD_DOCKER__SHARED_VOLUME={instance}-shared\n\
             DESKTOP_NETWORK={instance}\nPORTAL_HTTP_PORT={port}\nPORTAL_METRICS_PORT={metrics_port}\n\
             DOCKER_GID={socket_gid}\nFILES_ROOT={files_root}\n",
            files_root = files.path().display()
        ),
    )
    .unwrap();
    let project = ComposeProject {
        command,
        dir: dir.path().to_owned(),
        name: instance.clone(),
    };
    let up = project.run(&["up", "-d"]);
    assert!(up.status.success(), "{}", String::from_utf8_lossy(&up.stderr));

    let url = format!("http://127.0.0.1:{port}");
    let browser = Browser::at(&url);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match browser.get("/readyz").send().await {
            Ok(r) if r.status() == 200 => break,
            other => assert!(
                Instant::now() < deadline,
                "not ready: {other:?}\n{}",
                String::from_utf8_lossy(&project.run(&["logs"]).stdout)
            ),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let metrics = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    let health = project.run(&["exec", "-T", "portal", "iserv-remote-desktop", "healthcheck"]);
    assert!(health.status.success(), "{health:?}");
    let effective = project.run(&["exec", "-T", "portal", "iserv-remote-desktop", "check-config"]);
    let effective = String::from_utf8_lossy(&effective.stdout);
    assert!(
        effective.contains(&format!("\"public_url\": \"http://127.0.0.1:{port}/\"")),
        "FRONTEND_URL from the .env: {effective}"
    );
    assert!(
        effective.contains(&format!("\"network\": \"{instance}\"")),
        "{effective}"
    );
    assert!(!effective.contains("flask-secret"), "secrets stay hidden: {effective}");
    assert!(
        effective.contains(&format!("\"root\": \"{}\"", files.path().display())),
        "users' files in the host directory FILES_ROOT names: {effective}"
    );
}
