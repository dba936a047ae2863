//! `fake-kasm`: the fake KasmVNC desktop as a process, for a `FROM scratch` stand-in image.
//!
//! Configured like a kasmweb image: `VNC_PW` (required), `VNC_USER` (default `kasm_user`),
//! `FAKE_KASM_PORT` (default 6901, HTTPS only like Kasm; `--plain` for HTTP). If
//! `FAKE_KASM_HOME_CHECK` is set, each start appends a line to
//! `/home/kasm-user/.fake-kasm-starts`, so lifecycle tests can prove a home volume persists.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use testkit::{FakeKasmConfig, run_fake_kasm_until_signal};

const HOME_CHECK_DIR: &str = "/home/kasm-user";
const HOME_CHECK_FILE: &str = "/home/kasm-user/.fake-kasm-starts";

fn main() -> ExitCode {
    let mut tls = true;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--plain" => tls = false,
            other => {
                eprintln!("fake-kasm: unknown argument {other:?} (only --plain is accepted)");
                return ExitCode::from(2);
            }
        }
    }
    let Some(password) = std::env::var("VNC_PW").ok().filter(|pw| !pw.is_empty()) else {
        eprintln!("fake-kasm: VNC_PW must be set (the Basic Auth password, as for kasmweb images)");
        return ExitCode::from(2);
    };
    let port = match std::env::var("FAKE_KASM_PORT") {
        Ok(raw) => match raw.parse::<u16>() {
            Ok(port) => port,
            Err(err) => {
                eprintln!("fake-kasm: FAKE_KASM_PORT={raw:?} is not a port: {err}");
                return ExitCode::from(2);
            }
        },
        Err(_) => 6901,
    };
    let mut cfg = FakeKasmConfig::new(password);
    if let Ok(user) = std::env::var("VNC_USER")
        && !user.is_empty()
    {
        cfg.username = user;
    }
    cfg.tls = tls;
    if std::env::var_os("FAKE_KASM_HOME_CHECK").is_some() {
        note_start_in_home();
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("fake-kasm: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    match runtime.block_on(run_fake_kasm_until_signal(cfg, addr)) {
        Ok(()) => {
            println!("fake-kasm stopped");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("fake-kasm: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Best effort: a missing or read-only home must not stop the desktop from starting.
fn note_start_in_home() {
    use std::io::Write as _;
    let _ = std::fs::create_dir_all(HOME_CHECK_DIR);
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let appended = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(HOME_CHECK_FILE)
        .and_then(|mut file| writeln!(file, "start {seconds}"));
    if let Err(err) = appended {
        eprintln!("fake-kasm: could not note the start in {HOME_CHECK_FILE}: {err}");
    }
}
