//! *My files* is the desktop's home: on the real engine with the real Debian desktop image
//! (it has a shell; the fake-Kasm image is `FROM scratch`), an upload through the API is in
//! the running desktop at once, owned by its user and writable there; what the desktop makes
//! is listed and downloadable; links it makes are shown and never followed. And homes of an
//! older version, kept in Docker volumes, move into the files root once, with a report.

use std::os::unix::fs::MetadataExt as _;
use std::process::Command;

use portal::config::DesktopTypeConfig;
use serde_json::Value;

use crate::browser_real::{REAL_IMAGE, real_desktop_ready};
use crate::docker::{docker, docker_app, docker_ready, fake_type, start_desktop};
use crate::helpers::*;

fn real_type() -> DesktopTypeConfig {
    let mut t = fake_type("debian");
    t.image = REAL_IMAGE.into();
    t.env = Default::default();
    t.memory_mib = Some(1024);
    t.cpus = Some(1.0);
    t.shm_size_mib = 256;
    t
}

/// Runs `script` with `sh` as the desktop's user (uid 1000) in `container`: (success, stdout,
/// stderr).
fn as_desktop_user(container: &str, script: &str) -> (bool, String, String) {
    let out = Command::new("docker")
        .args(["exec", "-u", "1000:1000", container, "sh", "-c", script])
        .output()
        .expect("docker exec runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn put(b: &Browser, csrf: &str, path: &str, body: &[u8]) -> u16 {
    b.http
        .put(format!(
            "{}{path}",
            b.get("").build().unwrap().url().as_str().trim_end_matches('/')
        ))
        .header("x-csrf-token", csrf)
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn entry<'a>(list: &'a Value, name: &str) -> Option<&'a Value> {
    list["entries"].as_array().unwrap().iter().find(|e| e["name"] == name)
}

async fn home_dir(app: &TestApp, username: &str) -> std::path::PathBuf {
    let user = app.state.store.user_by_username(username).await.unwrap().unwrap();
    app.state.files.home_dir(&user)
}

#[tokio::test]
async fn my_files_is_the_desktops_home_both_ways() {
    if !docker_ready() || !real_desktop_ready() {
        return;
    }
    let (app, scope) = docker_app("homes", |c| c.desktop_types = vec![real_type()]).await;
    let alice = sign_in(&app, "alice").await;
    let csrf = alice.csrf().await;
    let bob = sign_in(&app, "bob").await;
    let b_csrf = bob.csrf().await;
    assert_eq!(put(&bob, &b_csrf, "/api/files/home/secret.txt", b"bob's").await, 201);

    let (status, body, events) = start_desktop(&alice, "debian").await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(events.last().unwrap()["step"], "ready", "{events:?}");
    let container = scope.container(body["id"].as_str().unwrap());
    let home = home_dir(&app, "alice").await;
    let mounts = docker(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{.Type}} {{.Destination}} {{.RW}} {{.Source}}\n{{end}}",
        &container,
    ]);
    let root = std::path::absolute(app.state.config.files_root()).unwrap();
    assert!(
        mounts.contains(&format!(
            "bind /home/kasm-user true {}",
            root.join("homes").join(home.file_name().unwrap()).display()
        )),
        "the home is the files root's folder: {mounts}"
    );
    assert!(
        mounts.contains(&format!(
            "bind /home/kasm-user/Shared false {}",
            root.join("shared").display()
        )),
        "the shared folder, read-only for a student: {mounts}"
    );
    assert!(!mounts.contains("volume"), "no Docker volumes any more: {mounts}");

    // (a) An upload through the API: in the running desktop at once, the desktop user's, and
    // writable there.
    assert_eq!(
        put(&alice, &csrf, "/api/files/home/%C3%9Cbung%201.txt", b"aus dem Portal").await,
        201
    );
    let (ok, out, err) = as_desktop_user(
        &container,
        "cd ~ && stat -c '%u:%g' 'Übung 1.txt' && cat 'Übung 1.txt' && echo && printf ' und aus dem Desktop' >> 'Übung 1.txt'",
    );
    assert!(ok, "{out}{err}");
    assert_eq!(out, "1000:1000\naus dem Portal\n");
    let meta = std::fs::metadata(home.join("Übung 1.txt")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1000, 1000), "on the host too");
    let text = alice.get("/api/files/home/%C3%9Cbung%201.txt").send().await.unwrap();
    assert_eq!(text.text().await.unwrap(), "aus dem Portal und aus dem Desktop");
    // A folder made in the portal is the desktop user's to write into.
    let made = alice
        .post("/api/files/home/Mathe")
        .header("x-csrf-token", &csrf)
        .json(&serde_json::json!({"op": "mkdir"}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201);
    let (ok, out, err) = as_desktop_user(&container, "printf 1 > ~/Mathe/aufgabe.txt && stat -c '%u' ~/Mathe");
    assert!(ok, "{out}{err}");
    assert_eq!(out.trim(), "1000");

    // (b) Made in the desktop: listed and downloadable.
    let (ok, out, err) = as_desktop_user(
        &container,
        "mkdir -p ~/'Neuer Ordner' && printf 'vom Desktop' > ~/'Neuer Ordner/notiz.txt'",
    );
    assert!(ok, "{out}{err}");
    let listed = alice.get_json("/api/files/home/Neuer%20Ordner").await;
    let note = entry(&listed, "notiz.txt").unwrap_or_else(|| panic!("{listed}"));
    assert_eq!((note["kind"].as_str(), note["size"].as_u64()), (Some("file"), Some(11)));
    let download = alice
        .get("/api/files/home/Neuer%20Ordner/notiz.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), 200);
    assert_eq!(download.bytes().await.unwrap().as_ref(), b"vom Desktop");
    assert!(entry(&alice.get_json("/api/files/home").await, "Mathe").is_some());

    // (c) Links made in the desktop, to /etc and to bob's home on the host: shown as links,
    // never followed, nothing of bob's read or written.
    let bob_home = home_dir(&app, "bob").await;
    let (ok, out, err) = as_desktop_user(
        &container,
        &format!(
            "ln -s /etc ~/etc && ln -s /etc/passwd ~/passwd && ln -s '{}' ~/bob",
            bob_home.display()
        ),
    );
    assert!(ok, "{out}{err}");
    let listed = alice.get_json("/api/files/home").await;
    for name in ["etc", "passwd", "bob"] {
        assert_eq!(entry(&listed, name).unwrap()["kind"], "link", "{name}: {listed}");
    }
    for path in ["etc/passwd", "passwd", "bob/secret.txt", "bob"] {
        let resp = alice.get(&format!("/api/files/home/{path}")).send().await.unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            (status.as_u16(), body["error"]["code"].as_str()),
            (409, Some("link")),
            "{path}"
        );
    }
    assert_eq!(put(&alice, &csrf, "/api/files/home/bob/planted.txt", b"x").await, 409);
    assert_eq!(std::fs::read_dir(&bob_home).unwrap().count(), 1, "bob's home untouched");

    // The shared folder: what an administrator puts there through /files is in the student's
    // desktop at once, and read-only there.
    let admin = sign_in(&app, "root").await;
    let a_csrf = admin.csrf().await;
    assert_eq!(
        put(&admin, &a_csrf, "/api/files/shared/Plan.txt", b"Stundenplan").await,
        201
    );
    let (ok, out, err) = as_desktop_user(&container, "cat ~/Shared/Plan.txt");
    assert!(ok, "{out}{err}");
    assert_eq!(out, "Stundenplan");
    let (ok, _, _) = as_desktop_user(&container, "printf x > ~/Shared/von-schueler.txt");
    assert!(!ok, "a student cannot write the shared folder in her desktop");
}

#[tokio::test]
async fn home_volumes_of_an_older_version_move_into_the_files_root_once() {
    if !docker_ready() || !real_desktop_ready() {
        return;
    }
    use portal::domain::volume_migration;
    // The reader container is made from the type's image: the FROM scratch one, no shell.
    let (app, scope) = docker_app("migrate", |_| {}).await;
    let alice = app.state.store.user_by_username("alice").await.unwrap().unwrap();
    let prefix = app.state.config.docker.home_volume_prefix.clone();
    let volume = portal::domain::accounts::home_volume(&prefix, &alice.home_name);
    let shared = app.state.config.docker.shared_volume.clone();
    let orphan = format!("{prefix}nobody");
    // What an older version's desktop left in the volumes (made with the real image's shell).
    let fill = |v: &str, script: &str| {
        let mount = format!("{v}:/v");
        let out = Command::new("docker")
            .args([
                "run",
                "--rm",
                "-u",
                "0",
                "--entrypoint",
                "sh",
                "-v",
                &mount,
                REAL_IMAGE,
                "-c",
                script,
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    fill(
        &volume,
        "mkdir -p '/v/Mathe/Blatt 1' && printf A > '/v/Übung ä.txt' && printf B > '/v/Mathe/Blatt 1/b.txt' \
         && ln -s /etc /v/etc && printf alt > /v/Konflikt.txt && chown -R 1000:1000 /v",
    );
    fill(&shared, "printf S > /v/Aushang.txt");
    fill(&orphan, "printf O > /v/o.txt");
    // Something the user has in her new home already under a name the volume has too.
    let home = home_dir(&app, "alice").await;
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("Konflikt.txt"), "neu").unwrap();

    let dry = volume_migration::migrate(&app.state.store, app.state.runtime.as_ref(), &app.state.config, true)
        .await
        .unwrap();
    assert!(!home.join("Übung ä.txt").exists(), "a dry run writes nothing");
    assert!(dry.render().contains("dry run"), "{}", dry.render());

    let first = volume_migration::migrate(&app.state.store, app.state.runtime.as_ref(), &app.state.config, false)
        .await
        .unwrap();
    let text = first.render();
    let alices = first
        .volumes
        .iter()
        .find(|v| v.volume == volume)
        .unwrap_or_else(|| panic!("{text}"));
    let copied = alices.copied.as_ref().unwrap_or_else(|| panic!("{text}"));
    assert_eq!((copied.files, copied.dirs, copied.links), (2, 2, 1), "{text}");
    assert_eq!(copied.conflicts, ["Konflikt.txt"], "{text}");
    assert_eq!(first.skipped, std::slice::from_ref(&orphan), "{text}");
    assert!(text.contains(&format!("docker volume rm {volume}")), "{text}");
    assert!(text.contains("conflict: Konflikt.txt"), "{text}");

    assert_eq!(std::fs::read(home.join("Übung ä.txt")).unwrap(), b"A");
    assert_eq!(std::fs::read(home.join("Mathe/Blatt 1/b.txt")).unwrap(), b"B");
    let meta = std::fs::metadata(home.join("Mathe/Blatt 1/b.txt")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1000, 1000));
    assert_eq!(
        std::fs::read_link(home.join("etc")).unwrap(),
        std::path::Path::new("/etc")
    );
    assert_eq!(
        std::fs::read_to_string(home.join("Konflikt.txt")).unwrap(),
        "neu",
        "not overwritten"
    );
    assert_eq!(
        std::fs::read(app.state.files.shared_dir().join("Aushang.txt")).unwrap(),
        b"S"
    );
    // Through the API: the link is a link, never followed.
    let browser = sign_in(&app, "alice").await;
    let listed = browser.get_json("/api/files/home").await;
    assert_eq!(entry(&listed, "etc").unwrap()["kind"], "link", "{listed}");
    assert_eq!(
        browser.get("/api/files/home/etc/passwd").send().await.unwrap().status(),
        409
    );

    let second = volume_migration::migrate(&app.state.store, app.state.runtime.as_ref(), &app.state.config, false)
        .await
        .unwrap();
    assert!(second.nothing_to_do(), "{}", second.render());
    assert!(second.render().contains("Nothing to do"), "{}", second.render());
    assert_eq!(std::fs::read_to_string(home.join("Konflikt.txt")).unwrap(), "neu");
    // Volumes are never deleted.
    for v in [&volume, &shared, &orphan] {
        assert_eq!(docker(&["volume", "inspect", "-f", "{{.Name}}", v]), *v);
    }
    // No reader container left behind.
    let left = docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("name={}", app.state.config.docker.container_prefix()),
        "--filter",
        "label=org.iserv-remote-desktop.instance",
    ]);
    assert!(left.is_empty(), "reader containers left: {left}");

    // At start: once, then the marker says it is done.
    let ran = volume_migration::migrate_once(&app.state.store, app.state.runtime.as_ref(), &app.state.config)
        .await
        .unwrap();
    assert!(ran.is_some_and(|r| r.nothing_to_do()));
    assert!(app.state.config.files_root().join(volume_migration::MARKER).exists());
    let again = volume_migration::migrate_once(&app.state.store, app.state.runtime.as_ref(), &app.state.config)
        .await
        .unwrap();
    assert!(again.is_none(), "the marker stops a second start-up run");

    // The command an administrator runs: on another database, where nobody has these homes.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("portal.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\n[docker]\ninstance = \"{}\"\nnetwork = \"{}\"\nhome_volume_prefix = \"{prefix}\"\nshared_volume = \"\"\n",
            dir.path().join("data").display(),
            scope.instance,
            scope.instance,
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_iserv-remote-desktop"))
        .args(["migrate-volumes", "--dry-run", "--config"])
        .arg(&config)
        .env_remove("IRD_CONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("(dry run: nothing is written)"), "{stdout}");
    assert!(
        stdout.contains(&format!("{orphan}: skipped, no account has this home")),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("{volume}: skipped")), "{stdout}");
}
