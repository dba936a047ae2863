//! `fake-kasm`: the fake KasmVNC desktop as a process, for a `FROM scratch` stand-in image.
//!
//! Configured like a kasmweb image: `VNC_PW` (required), `VNC_USER` (default `kasm_user`),
//! `FAKE_KASM_PORT` (default 6901, HTTPS only like Kasm; `--plain` for HTTP). If
//! `FAKE_KASM_HOME_CHECK` is set, each start appends a line to
//! `/home/kasm-user/.fake-kasm-starts`, so lifecycle tests can prove a home volume persists.
//!
//! `fake-kasm --connect HOST:PORT` instead tries one TCP connection (3 s) and exits 0 when it
//! was accepted, 1 when not: run with `docker exec` in a desktop, it shows what that desktop
//! can reach (the image has no shell or other client).

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use testkit::{FakeKasmConfig, run_fake_kasm_until_signal};

const HOME_CHECK_DIR: &str = "/home/kasm-user";
const HOME_CHECK_FILE: &str = "/home/kasm-user/.fake-kasm-starts";

/// How long `--connect` waits: a dropped SYN (firewalled) never gets an answer.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

fn main() -> ExitCode {
    let mut tls = true;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--plain" => tls = false,
            "--connect" => return connect(args.next().as_deref()),
            other => {
                eprintln!("fake-kasm: unknown argument {other:?} (only --plain and --connect HOST:PORT are accepted)");
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

/// `--connect HOST:PORT`: 0 when a TCP connection is accepted, 1 when it is refused or times
/// out, 2 for a bad address.
fn connect(target: Option<&str>) -> ExitCode {
    use std::net::ToSocketAddrs as _;
    let Some(addr) = target.and_then(|t| t.to_socket_addrs().ok()).and_then(|mut a| a.next()) else {
        eprintln!("fake-kasm: --connect needs HOST:PORT, got {target:?}");
        return ExitCode::from(2);
    };
    match std::net::TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
        Ok(_) => {
            println!("connected to {addr}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            println!("cannot connect to {addr}: {err}");
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
