//! Smoke run of every `wsbench` mode against the fake KasmVNC desktop, then `report` over the
//! results: the tool works end to end. Only shapes are checked, never timings.

use std::path::{Path, PathBuf};

use testkit::{FakeKasm, FakeKasmConfig};
use tokio::process::Command;

const PASSWORD: &str = "smoke-password";

/// Runs `wsbench ARGS`, expects success, stores stdout (the JSON result) in `dir/name`.
async fn wsbench(dir: &Path, name: &str, args: &[String]) -> PathBuf {
    let out = Command::new(env!("CARGO_BIN_EXE_wsbench"))
        .args(args)
        .output()
        .await
        .expect("wsbench runs");
    assert!(
        out.status.success(),
        "wsbench {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = dir.join(name);
    std::fs::write(&path, &out.stdout).expect("result written");
    path
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn every_mode_runs_against_the_fake_desktop_and_reports() {
    let fake = FakeKasm::start(FakeKasmConfig::new(PASSWORD))
        .await
        .expect("fake starts");
    let port = fake.addr().port();
    let dir = tempfile::tempdir().expect("temp dir");
    let ws_url = format!("wss://127.0.0.1:{port}/websockify");
    let auth = format!("kasm_user:{PASSWORD}");
    let me = format!("upstream={}", std::process::id());
    let common = [
        "--url",
        ws_url.as_str(),
        "--basic-auth",
        auth.as_str(),
        "--label",
        "direct",
    ];

    let mut ws = args(&common);
    ws.extend(args(&[
        "--latency-connections",
        "1,3",
        "--latency-rates",
        "0,50",
        "--messages",
        "20",
        "--latency-secs",
        "0.2",
        "--warmup",
        "2",
        "--throughput-connections",
        "1",
        "--throughput-bytes",
        "1024,70000",
        "--throughput-secs",
        "0.2",
        "--proc",
        &me,
    ]));
    let mut ws_cmd = vec!["ws".to_owned()];
    ws_cmd.extend(ws);
    let ws_out = wsbench(dir.path(), "ws.json", &ws_cmd).await;

    let mut connect = vec!["connect".to_owned()];
    connect.extend(args(&common));
    connect.extend(args(&["--connections", "10", "--warmup", "2", "--concurrency", "3"]));
    let connect_out = wsbench(dir.path(), "connect.json", &connect).await;

    let http_url = format!("https://127.0.0.1:{port}/app/ui.js");
    let http = args(&[
        "http",
        "--url",
        &http_url,
        "--basic-auth",
        &auth,
        "--label",
        "asset/direct",
        "--requests",
        "20",
        "--warmup",
        "2",
        "--concurrency",
        "2",
    ]);
    let http_out = wsbench(dir.path(), "http.json", &http).await;

    let mut idle = vec!["idle".to_owned()];
    idle.extend(args(&common));
    let rss = format!("proxy={}", std::process::id());
    idle.extend(args(&[
        "--levels",
        "3,5",
        "--rss",
        &rss,
        "--settle-ms",
        "10",
        "--frame-bytes",
        "1024",
        "--warmup",
        "1",
        "--cycles",
        "2",
    ]));
    let idle_out = wsbench(dir.path(), "idle.json", &idle).await;

    let mut bursts = vec!["bursts".to_owned()];
    bursts.extend(args(&common));
    bursts.extend(args(&[
        "--sessions",
        "3",
        "--echoes",
        "2",
        "--echo-bytes",
        "70000",
        "--bursts",
        "2",
        "--rss",
        &rss,
        "--settle-ms",
        "10",
    ]));
    let bursts_out = wsbench(dir.path(), "bursts.json", &bursts).await;

    let mut report = vec!["report".to_owned(), "--paths".to_owned(), "direct".to_owned()];
    for p in [&ws_out, &connect_out, &http_out, &idle_out, &bursts_out] {
        report.push(p.display().to_string());
    }
    let out = Command::new(env!("CARGO_BIN_EXE_wsbench"))
        .args(&report)
        .output()
        .await
        .expect("wsbench report runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let md = String::from_utf8_lossy(&out.stdout);
    for heading in [
        "Bulk echo throughput",
        "| 70000 B messages", // not a whole number of KiB: shown in bytes
        "WebSocket round trip",
        "WebSocket set-up",
        "HTTP GET rate",
        "Memory per open WebSocket",
        "Memory over repeated bursts",
    ] {
        assert!(md.contains(heading), "report lacks {heading:?}:\n{md}");
    }
    assert!(fake.websocket_sessions() > 0);
}
