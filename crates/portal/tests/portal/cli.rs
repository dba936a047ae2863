//! The binary as an admin uses it: first start, accounts, configuration errors.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::io::AsyncBufReadExt as _;

use crate::helpers::*;

const BIN: &str = env!("CARGO_BIN_EXE_iserv-remote-desktop");

fn write_config(dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
    let path = dir.join("portal.toml");
    let text = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\nmetrics = {{ listen = \"127.0.0.1:0\" }}\n{extra}",
        dir.join("data").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// A command with none of the developer's own settings leaking in.
fn portal_cmd() -> Command {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("IRD_") || k.starts_with("KASM_") || k.starts_with("DATABASE_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

#[test]
fn user_add_reads_the_password_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let mut child = portal_cmd()
        .args([
            "user",
            "add",
            "Teacher1",
            "--role",
            "teacher",
            "--password-stdin",
            "--config",
        ])
        .arg(&config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a long enough password\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("created teacher1 (teacher)"));

    let dup = portal_cmd()
        .args([
            "user",
            "add",
            "teacher1",
            "--role",
            "student",
            "--password-stdin",
            "--config",
        ])
        .arg(&config)
        .stdin(Stdio::piped())
        .output()
        .unwrap();
    assert!(!dup.status.success(), "a taken username is refused");

    let bad_role = portal_cmd()
        .args(["user", "add", "x", "--role", "janitor", "--password-stdin"])
        .output()
        .unwrap();
    assert!(!bad_role.status.success());
    assert!(String::from_utf8_lossy(&bad_role.stderr).contains("janitor"));
}

#[test]
fn config_errors_name_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "[proxy]\nidle_timeout_secs = 0\n");
    let out = portal_cmd()
        .arg("check-config")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("proxy.idle_timeout_secs"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let missing = portal_cmd()
        .args(["check-config", "--config", "/nonexistent.toml"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&missing.stderr).contains("does not exist"));
}

#[test]
fn check_config_masks_the_database_password() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let out = portal_cmd()
        .args(["check-config", "--config"])
        .arg(&config)
        .env("DATABASE_URL", "postgres://ird:s3cret-pw@db.school.example/ird")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!stdout.contains("s3cret-pw"), "{stdout}");
    assert!(stdout.contains("postgres://ird:***@db.school.example/ird"), "{stdout}");
}

#[test]
fn seed_environment_names_are_accepted_and_ird_names_win() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let out = portal_cmd()
        .args(["check-config", "--config"])
        .arg(&config)
        .env("KASM_VERIFY_SSL", "true")
        .env("KASM_CONTAINER_PROTOCOL", "http")
        .env("FRONTEND_URL", "https://desktop.school.example")
        .env("IRD_KASM__CONTAINER_PORT", "7000")
        .env("KASM_CONTAINER_PORT", "6000")
        .env("OAUTH_CLIENT_ID", "seed-client")
        // A client id turns IServ sign-in on, which then needs its secret and endpoints.
        .env("OAUTH_CLIENT_SECRET", "seed-secret")
        .env(
            "OAUTH_AUTHORIZE_URL",
            "https://iserv.school.example/iserv/oauth/v2/auth",
        )
        .env("OAUTH_TOKEN_URL", "https://iserv.school.example/iserv/oauth/v2/token")
        .env("OAUTH_JWKS_URI", "https://iserv.school.example/iserv/public/jwk")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("\"verify_ssl\": true"), "{stdout}");
    assert!(stdout.contains("\"protocol\": \"http\""), "{stdout}");
    assert!(stdout.contains("https://desktop.school.example"), "{stdout}");
    assert!(stdout.contains("\"container_port\": 7000"), "{stdout}");
    let bad = portal_cmd()
        .args(["check-config", "--config"])
        .arg(&config)
        .env("KASM_CONTAINER_PROTOCOL", "ftp")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&bad.stderr).contains("kasm.protocol"));
}

#[tokio::test]
async fn first_start_prints_url_websocket_support_and_how_to_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let mut child = tokio::process::Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut collected = Vec::new();
    for _ in 0..3 {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("start-up output in time")
            .unwrap();
        collected.push(line.expect("portal printed three lines"));
    }
    let all = collected.join("\n");
    assert!(all.contains("listening on http://127.0.0.1:"), "{all}");
    assert!(all.contains("WebSocket support enabled"), "{all}");
    assert!(
        all.contains("each desktop on its own origin: http://{id}.localhost:"),
        "{all}"
    );
    let password = all
        .split("with password \"")
        .nth(1)
        .expect("a generated admin password")
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let url = all
        .split("open ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_owned();

    // The printed credentials work.
    portal::install_crypto_provider();
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http
        .get(format!("{url}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let resp = http
        .post(format!("{url}/login"))
        .form(&[
            ("username", "admin"),
            ("password", password.as_str()),
            ("csrf_token", &csrf_from(&page)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    child.kill().await.unwrap();
}

/// `user …` with the password on standard input; returns success, stdout and stderr.
fn user_cmd(config: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let mut child = portal_cmd()
        .arg("user")
        .args(args)
        .arg("--config")
        .arg(config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(b"a long enough password\n");
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn groups_of_local_accounts_are_set_on_the_command_line_and_iserv_accounts_keep_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let add = ["add", "lisa", "--role", "student", "--password-stdin"];
    let (ok, out, err) = user_cmd(&config, &[&add[..], &["--group", "5a", "--group", "Mathe 7"]].concat());
    assert!(ok, "{err}");
    assert!(out.contains("created lisa (student) in 5a, Mathe 7"), "{out}");

    // `--set A,B` and `--set A --set B` alike; the old groups go.
    let (ok, out, err) = user_cmd(&config, &["groups", "lisa", "--set", "6b,7c"]);
    assert!(ok, "{err}");
    assert!(out.contains("groups of lisa: 6b, 7c"), "{out}");
    let (ok, out, _) = user_cmd(&config, &["groups", "lisa", "--set", "8d", "--set", "9e"]);
    assert!(ok && out.contains("groups of lisa: 8d, 9e"), "{out}");
    let (_, list, _) = user_cmd(&config, &["list"]);
    assert!(list.contains("lisa\tstudent\tlisa\t8d,9e"), "{list}");

    // A bad name: refused with the rule, nothing changes, no account half made.
    let (ok, _, err) = user_cmd(&config, &["groups", "lisa", "--set", "a\tb"]);
    assert!(!ok && err.contains("control characters"), "{err}");
    let long = "x".repeat(300);
    let add_lutz = ["add", "lutz", "--role", "student", "--password-stdin", "--group", &long];
    let (ok, _, err) = user_cmd(&config, &add_lutz);
    assert!(!ok && err.contains("1 to 256 characters"), "{err}");
    let (_, list, _) = user_cmd(&config, &["list"]);
    assert!(list.contains("8d,9e") && !list.contains("lutz"), "{list}");
    let (ok, _, err) = user_cmd(&config, &["groups", "nobody", "--set", "5a"]);
    assert!(!ok && err.contains("no account \"nobody\""), "{err}");

    // An IServ account: its groups come from IServ.
    let store = portal_store::Store::connect(&format!("sqlite://{}", dir.path().join("data/portal.db").display()))
        .await
        .unwrap();
    store
        .upsert_external_user(&portal_store::ExternalUser {
            subject: "sub-ida".into(),
            username: "ida".into(),
            display_name: "Ida".into(),
            email: None,
            role: portal_store::Role::Student,
            groups: vec!["5a".into()],
        })
        .await
        .unwrap();
    let (ok, _, err) = user_cmd(&config, &["groups", "ida", "--set", "6b"]);
    assert!(!ok && err.contains("signs in with IServ"), "{err}");
    let ida = store.user_by_username("ida").await.unwrap().unwrap();
    assert_eq!(ida.groups, ["5a"]);
    // Each change is in the audit log.
    let (lisa_changes, _) = store
        .audit_page(&portal_store::AuditFilter {
            kind: None,
            user: Some("lisa".into()),
            offset: 0,
            limit: 100,
        })
        .await
        .unwrap();
    assert!(
        lisa_changes
            .iter()
            .any(|e| e.detail.contains("groups 6b, 7c → 8d, 9e (command line)")),
        "{lisa_changes:?}"
    );
    store.close().await;
}
