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
//!
//! `fake-kasm --fill PATH BYTES` writes zeros to PATH until BYTES are written or a write
//! fails, and prints `filled N` with the error if one stopped it: in a desktop it shows how much
//! the desktop may write into its container (a disk limit).

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
            "--fill" => return fill(args.next().as_deref(), args.next().as_deref()),
            other => {
                eprintln!(
                    "fake-kasm: unknown argument {other:?} (only --plain, --connect HOST:PORT and --fill PATH BYTES are accepted)"
                );
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

/// `--fill PATH BYTES`: 0 after printing how much was written (whatever stopped it), 2 for bad
/// arguments or a file that cannot be created.
fn fill(path: Option<&str>, bytes: Option<&str>) -> ExitCode {
    use std::io::Write as _;
    let (Some(path), Some(Ok(max))) = (path, bytes.map(str::parse::<u64>)) else {
        eprintln!("fake-kasm: --fill needs PATH BYTES, got {path:?} {bytes:?}");
        return ExitCode::from(2);
    };
    let mut file = match std::fs::File::create(path) {
        Ok(file) => file,
        Err(err) => {
            eprintln!("fake-kasm: cannot create {path}: {err}");
            return ExitCode::from(2);
        }
    };
    let chunk = vec![0u8; 1 << 20];
    let mut written: u64 = 0;
    let mut stopped = None;
    while written < max {
        let n = usize::try_from((max - written).min(chunk.len() as u64)).unwrap_or(chunk.len());
        if let Err(err) = file.write_all(&chunk[..n]).and_then(|()| file.sync_data()) {
            stopped = Some(err);
            break;
        }
        written += n as u64;
    }
    match stopped {
        Some(err) => println!("filled {written} ({err})"),
        None => println!("filled {written}"),
    }
    ExitCode::SUCCESS
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
