//! `iserv-remote-desktop import-flask`: a data folder in the Flask version's layout imported
//! into homes, the shared folder and class folders, twice; and a user created from her IServ
//! subject who then signs in and finds her files.

use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use testkit::oidc::{Layout, TestUser};

use crate::helpers::*;
use crate::oidc::{provider, signed_in, with_discovery};

const BIN: &str = env!("CARGO_BIN_EXE_iserv-remote-desktop");

/// Every path below `dir` with its content (links as `-> target`), to prove nothing changed.
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let key = p.strip_prefix(dir).unwrap().display().to_string();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let value = if meta.is_symlink() {
                format!("-> {}", std::fs::read_link(&p).unwrap().display())
            } else if meta.is_dir() {
                stack.push(p.clone());
                "dir".into()
            } else {
                String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned()
            };
            out.insert(key, value);
        }
    }
    out
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Runs the command against the portal's data folder; returns its standard output.
fn import(app: &TestApp, data: &Path, dry_run: bool) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("import.toml");
    std::fs::write(
        &config,
        format!("data_dir = \"{}\"\n", app.state.config.data_dir.display()),
    )
    .unwrap();
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("IRD_") || k.starts_with("KASM_") || k.starts_with("DATABASE_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(["import-flask", "--data"])
        .arg(data)
        .arg("--config")
        .arg(&config);
    if dry_run {
        cmd.arg("--dry-run");
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test]
async fn the_flask_data_is_imported_once_without_overwriting_and_found_at_first_sign_in() {
    let idp = provider(Layout::Auth).await;
    let app = spawn_app_with(&[], with_discovery(&idp)).await;
    // Ben has signed in before (so the portal knows class 7a) and has a notes.txt of his own.
    idp.set_user(TestUser::new("uuid-ben", "ben").groups(&["7a"]));
    signed_in(&app, "ben").await;
    let ben = app.state.store.user_by_username("ben").await.unwrap().unwrap();
    write(&app.state.files.home_dir(&ben).join("notes.txt"), "Bens neue Notizen");

    // The Flask version's data folder.
    let flask = tempfile::tempdir().unwrap();
    let d = flask.path();
    write(&d.join("users/uuid-anna/Übung 1.pdf"), "%PDF Übung");
    write(&d.join("users/uuid-anna/Mathe Hausaufgaben/Woche 1/Lösung.txt"), "42");
    symlink("/etc", d.join("users/uuid-anna/etc-link")).unwrap();
    symlink("/etc", d.join("users/uuid-eve")).unwrap();
    write(&d.join("users/uuid-ben/notes.txt"), "Bens alte Notizen");
    write(&d.join("users/uuid-ben/Referat.odt"), "Referat");
    write(&d.join("shared/public/Schulordnung.pdf"), "%PDF Ordnung");
    write(&d.join("shared/public/Ordner mit Leerzeichen/Ärger.txt"), "ä");
    write(&d.join("assignments/7a/Arbeitsblatt 1/Aufgabe.txt"), "Aufgabe");
    write(&d.join("assignments/9z/Geheim/x.txt"), "x");
    let before = snapshot(d);
    let shared = app.state.files.shared_dir();

    let dry = import(&app, d, true);
    assert!(dry.contains("dry run: nothing was written"), "{dry}");
    assert!(
        dry.contains("account would be created for IServ subject uuid-anna"),
        "{dry}"
    );
    assert!(dry.contains("6 files"), "{dry}");
    assert!(app.state.store.user_by_subject("uuid-anna").await.unwrap().is_none());
    assert!(!shared.join("Schulordnung.pdf").exists());
    assert!(!app.state.files.class_dir("7a").join("Arbeitsblatt 1").exists());

    let first = import(&app, d, false);
    assert!(first.contains("account created for IServ subject uuid-anna"), "{first}");
    assert!(
        first.contains("6 files (41 bytes) copied, 4 folders created, 0 files already there"),
        "{first}"
    );
    assert!(
        first.contains("conflict: users/uuid-ben/notes.txt → home of ben: notes.txt: exists with other content"),
        "{first}"
    );
    assert!(
        first.contains("skipped: users/uuid-anna/etc-link: a symbolic link, not followed"),
        "{first}"
    );
    assert!(
        first.contains("skipped: users/uuid-eve: a symbolic link, not followed"),
        "{first}"
    );
    assert!(first.contains("skipped: assignments/9z: unknown group"), "{first}");
    assert_eq!(
        std::fs::read_to_string(app.state.files.home_dir(&ben).join("notes.txt")).unwrap(),
        "Bens neue Notizen",
        "never overwritten"
    );
    assert!(app.state.files.home_dir(&ben).join("Referat.odt").exists());
    assert_eq!(
        std::fs::read_to_string(shared.join("Ordner mit Leerzeichen/Ärger.txt")).unwrap(),
        "ä"
    );
    assert_eq!(
        std::fs::read_to_string(app.state.files.class_dir("7a").join("Arbeitsblatt 1/Aufgabe.txt")).unwrap(),
        "Aufgabe"
    );
    assert!(!app.state.files.class_dir("9z").join("Geheim").exists());

    let second = import(&app, d, false);
    assert!(
        second.contains("0 files (0 bytes) copied, 0 folders created, 6 files already there"),
        "{second}"
    );
    assert!(
        second.contains("nothing to copy: everything is already there"),
        "{second}"
    );
    assert!(
        second.contains("conflict: users/uuid-ben/notes.txt"),
        "conflicts are reported again: {second}"
    );
    assert_eq!(snapshot(d), before, "the Flask data is left exactly as it was");

    // Anna signs in for the first time: the account made from her subject is hers.
    idp.set_user(TestUser::new("uuid-anna", "anna").groups(&["7a"]));
    let anna = signed_in(&app, "anna").await;
    let list: Value = anna.get("/api/files/home").send().await.unwrap().json().await.unwrap();
    let names: Vec<&str> = list["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("{list}"))
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Mathe Hausaufgaben", "Übung 1.pdf"]);
    let file = anna
        .get("/api/files/home/Mathe%20Hausaufgaben/Woche%201/L%C3%B6sung.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(file.text().await.unwrap(), "42");
    let user = app.state.store.user_by_username("anna").await.unwrap().unwrap();
    assert_eq!(user.external_subject.as_deref(), Some("uuid-anna"));
    assert!(
        app.state
            .store
            .user_by_username("flask-uuid-anna")
            .await
            .unwrap()
            .is_none()
    );
}
