//! Teachers see students' screens: thumbnails and watching, read by the portal over RFB from
//! the real Debian desktop (Xvnc behind websockify, `browser_real::REAL_IMAGE`).
//!
//! - a window of a known colour, drawn inside the container, is in the thumbnail's pixels;
//!   another class's teacher, students (the owner too) and anonymous clients get the
//!   missing-desktop answer, like an unknown id;
//! - watching sends ≥ 2 frames per second of a changing screen; the student's live events name
//!   the watching teacher and drop the name when watching ends; the audit log has both;
//! - nothing a watching teacher sends reaches the desktop (an xterm running `cat` stays
//!   empty), while the owner's keystrokes through the normal proxy path arrive;
//! - in Chromium: the class grid shows the thumbnail, the watch page the live picture, and the
//!   student's view page the indicator while she is watched;
//! - a desktop that speaks no RFB (the fake Kasm desktop) gives 502, remembered for a moment;
//!   `screens.watching = false` turns the watch pages into a 403 that names the setting.

use std::process::Command;
use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use portal_store::Role;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::browser::{Chrome, browser_ready};
use crate::browser_real::real_desktop_ready;
use crate::docker::{docker_app, start_desktop};
use crate::helpers::*;
use crate::ui_teacher::add_member;

const ID: &str = "sam-debian-local";

/// `docker exec -d` in the desktop as its user, with the X display set.
fn in_desktop_detached(container: &str, cmd: &str) {
    let status = Command::new("docker")
        .args(["exec", "-d", "-e", "DISPLAY=:1", container, "sh", "-c", cmd])
        .status()
        .expect("docker CLI runs");
    assert!(status.success(), "docker exec {cmd}");
}

fn in_desktop(container: &str, cmd: &str) -> String {
    let out = Command::new("docker")
        .args(["exec", "-e", "DISPLAY=:1", container, "sh", "-c", cmd])
        .output()
        .expect("docker CLI runs");
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The class on the real desktop: teacher tina (5a), teacher tom (6b), students sam (5a, owner
/// of the running desktop) and alice; root is an administrator.
async fn class() -> (TestApp, crate::docker::DockerScope, String) {
    let (app, scope) = docker_app("screens", |c| {
        c.docker.start_timeout_secs = 90;
        // Dev mode: the portal offers the locally built image.
        c.desktop_types = vec![];
    })
    .await;
    add_member(&app, "tina", Role::Teacher, &["5a"]).await;
    add_member(&app, "tom", Role::Teacher, &["6b"]).await;
    add_member(&app, "sam", Role::Student, &["5a"]).await;
    let sam = sign_in(&app, "sam").await;
    let (status, body, events) = start_desktop(&sam, "debian-local").await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        events.last().map(|e| &e["step"]),
        Some(&Value::from("ready")),
        "{events:?}"
    );
    let container = scope.container(ID);
    (app, scope, container)
}

async fn thumbnail(b: &Browser, id: &str) -> (u16, Option<String>, Vec<u8>) {
    let resp = b
        .get(&format!("/api/teacher/desktops/{id}/thumbnail"))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let kind = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, kind, resp.bytes().await.unwrap().to_vec())
}

/// Pixels of `jpeg` that are clearly red.
fn red_pixels(jpeg: &[u8]) -> (usize, (u32, u32)) {
    let img = image::load_from_memory(jpeg).expect("a JPEG").to_rgb8();
    let red = img.pixels().filter(|p| p[0] > 200 && p[1] < 60 && p[2] < 60).count();
    (red, img.dimensions())
}

#[tokio::test]
async fn thumbnails_show_the_screen_to_the_class_teacher_only() {
    if !real_desktop_ready() {
        return;
    }
    let (app, _scope, container) = class().await;
    // A red window in the top left corner, drawn inside the desktop.
    in_desktop_detached(&container, "xterm -bg '#ff0000' -fg '#ff0000' -geometry 60x20+0+0");

    let tina = sign_in(&app, "tina").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let (red, size) = loop {
        let (status, kind, body) = thumbnail(&tina, ID).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert_eq!(kind.as_deref(), Some("image/jpeg"));
        let (red, size) = red_pixels(&body);
        // 60×20 characters are about 370×270 pixels: at 320/1280 about 90×65 thumbnail pixels.
        if red > 2000 || Instant::now() > deadline {
            break (red, size);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(size, (320, 200), "320 wide, the screen's aspect");
    assert!(red > 2000, "the red window is in the thumbnail: {red} red pixels");
    let resp = tina
        .get(&format!("/api/teacher/desktops/{ID}/thumbnail"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["cache-control"], "no-store");
    // Thirty tabs at once share one RFB session.
    let many = futures_util::future::join_all((0..30).map(|_| thumbnail(&tina, ID))).await;
    assert!(many.iter().all(|(s, _, _)| *s == 200));
    assert_eq!(app.state.screens.open_sessions(), 1, "one RFB session per desktop");

    // Administrators may; everyone else gets exactly the answer of an unknown desktop.
    let root = sign_in(&app, "root").await;
    assert_eq!(thumbnail(&root, ID).await.0, 200);
    let (missing_status, _, missing_body) = thumbnail(&tina, "nobody-debian-local").await;
    assert_eq!(missing_status, 404);
    let tom = sign_in(&app, "tom").await;
    let sam = sign_in(&app, "sam").await;
    let alice = sign_in(&app, "alice").await;
    let anonymous = Browser::new(&app);
    for (who, b) in [
        ("tom", &tom),
        ("sam", &sam),
        ("alice", &alice),
        ("anonymous", &anonymous),
    ] {
        let (status, _, body) = thumbnail(b, ID).await;
        assert_eq!(
            (status, body.as_slice()),
            (404, missing_body.as_slice()),
            "{who}: the missing-desktop answer"
        );
        let watch = b
            .get(&format!("/teacher/desktops/{ID}/watch/stream"))
            .send()
            .await
            .unwrap();
        assert_eq!(watch.status(), 404, "{who} may not watch");
    }
}

/// Reads the watch stream for `secs` seconds; returns the JPEG parts seen.
/// The watch stream of the class's desktop, as `b` (a teacher allowed to watch it).
async fn watch_stream(b: &Browser) -> reqwest::Response {
    let stream = b
        .get(&format!("/teacher/desktops/{ID}/watch/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    stream
}

async fn frames_for(resp: &mut reqwest::Response, secs: u64) -> Vec<Vec<u8>> {
    timed_frames(resp, secs).await.into_iter().map(|(_, f)| f).collect()
}

/// As [`frames_for`], each frame with the (wall clock) time it had fully arrived.
async fn timed_frames(resp: &mut reqwest::Response, secs: u64) -> Vec<(std::time::SystemTime, Vec<u8>)> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut buf = Vec::new();
    let mut frames = Vec::new();
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline.into(), resp.chunk()).await {
        buf.extend_from_slice(&chunk);
        // Parts: headers, blank line, JPEG of Content-Length bytes, then the next boundary.
        while let Some(head_end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
            let Some(len) = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|v| v.trim().parse::<usize>().ok())
            else {
                break;
            };
            if buf.len() < head_end + 4 + len {
                break;
            }
            frames.push((
                std::time::SystemTime::now(),
                buf[head_end + 4..head_end + 4 + len].to_vec(),
            ));
            buf.drain(..head_end + 4 + len);
        }
    }
    frames
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads server-sent events from `resp` until `want` matches one (or `within` passes).
async fn event_until(resp: &mut reqwest::Response, within: Duration, want: impl Fn(&Value) -> bool) -> Option<Value> {
    let deadline = Instant::now() + within;
    let mut text = String::new();
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline.into(), resp.chunk()).await {
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let name = block.lines().find_map(|l| l.strip_prefix("event:")).map(str::trim);
            let data = block.lines().find_map(|l| l.strip_prefix("data:")).map(str::trim);
            if let (Some("watching"), Some(data)) = (name, data) {
                let v: Value = serde_json::from_str(data).unwrap();
                if want(&v) {
                    return Some(v);
                }
            }
        }
    }
    None
}

/// The RFB handshake of a viewer (security None, shared) on a WebSocket through the portal.
async fn rfb_viewer(ws: &mut Ws) {
    let mut got = Vec::new();
    async fn more(ws: &mut Ws, got: &mut Vec<u8>) {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("the desktop answers")
            .unwrap()
            .unwrap();
        got.extend_from_slice(&m.into_data());
    }
    while got.len() < 12 {
        more(ws, &mut got).await;
    }
    assert_eq!(&got[..12], b"RFB 003.008\n");
    got.drain(..12);
    ws.send(Message::Binary(b"RFB 003.008\n".to_vec().into()))
        .await
        .unwrap();
    while got.is_empty() || got.len() < 1 + usize::from(got[0]) {
        more(ws, &mut got).await;
    }
    let n = usize::from(got[0]);
    assert!(got[1..=n].contains(&1), "security None offered");
    got.drain(..=n);
    ws.send(Message::Binary(vec![1].into())).await.unwrap();
    while got.len() < 4 {
        more(ws, &mut got).await;
    }
    assert_eq!(&got[..4], &[0, 0, 0, 0], "security result OK");
    got.drain(..4);
    ws.send(Message::Binary(vec![1].into())).await.unwrap();
    while got.len() < 24 {
        more(ws, &mut got).await;
    }
}

/// RFB KeyEvents (press and release) for `text` and Return.
fn key_events(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let keys = text.chars().map(u32::from).chain([0xff0d]);
    for k in keys {
        for down in [1u8, 0] {
            out.extend_from_slice(&[4, down, 0, 0]);
            out.extend_from_slice(&k.to_be_bytes());
        }
    }
    out
}

#[tokio::test]
async fn watching_is_live_view_only_and_shown_to_the_student() {
    if !real_desktop_ready() {
        return;
    }
    let (app, _scope, container) = class().await;
    // A window that changes ten times a second, and one that writes what it is typed.
    in_desktop_detached(
        &container,
        "xterm -geometry 40x5+600+0 -e sh -c 'while true; do date +%s%N; sleep 0.1; done'",
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    in_desktop_detached(
        &container,
        "rm -f /tmp/typed; xterm -T typedwin -geometry 40x5+0+300 -e sh -c 'cat > /tmp/typed'",
    );
    // The keyboard goes to that window, whichever was mapped last.
    let focused = in_desktop(
        &container,
        "xdotool search --sync --onlyvisible --name typedwin windowactivate --sync && \
         xdotool getactivewindow getwindowname",
    );
    assert_eq!(focused.trim(), "typedwin", "the cat window has the focus");
    let deadline = Instant::now() + Duration::from_secs(15);
    while in_desktop(&container, "test -e /tmp/typed && echo yes").trim() != "yes" && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let sam = sign_in(&app, "sam").await;
    let mut sam_events = sam.get("/api/events").send().await.unwrap();
    let tina = sign_in(&app, "tina").await;
    let page = tina.get(&format!("/teacher/desktops/{ID}/watch")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let mut stream = watch_stream(&tina).await;
    assert_eq!(
        stream.headers()["content-type"],
        "multipart/x-mixed-replace; boundary=frame"
    );

    // The student is told, by name.
    let told = event_until(&mut sam_events, Duration::from_secs(10), |v| {
        v["id"] == ID && v["watchers"].as_array().is_some_and(|w| !w.is_empty())
    })
    .await
    .expect("a watching event for the student");
    assert_eq!(told["watchers"], serde_json::json!(["tina (Name)"]));

    // Live: at least 2 frames per second of the changing screen.
    let began = Instant::now();
    let frames = frames_for(&mut stream, 4).await;
    let per_second = frames.len() as f64 / began.elapsed().as_secs_f64();
    eprintln!("watching: {} frames in {:?}", frames.len(), began.elapsed());
    assert!(per_second >= 2.0, "{} frames in {:?}", frames.len(), began.elapsed());
    let first = image::load_from_memory(&frames[0]).unwrap();
    assert_eq!(
        (first.width(), first.height()),
        (1280, 800),
        "full size up to 1280 wide"
    );

    // View-only: whatever the teacher sends goes nowhere. The stream has no channel back; a
    // WebSocket on its URL, a POST to it and the desktop's own socket are all refused.
    let keys = key_events("teacher");
    let upgrade = ws_connect(
        &app,
        &format!("/teacher/desktops/{ID}/watch/stream"),
        WsOpts::as_user(&tina, &app),
    )
    .await;
    assert!(upgrade.is_err(), "no WebSocket on the watch stream");
    let csrf = tina.csrf().await;
    let posted = tina
        .post(&format!("/teacher/desktops/{ID}/watch/stream"))
        .header("x-csrf-token", &csrf)
        .body(keys.clone())
        .send()
        .await
        .unwrap();
    assert!(posted.status().is_client_error(), "{}", posted.status());
    let direct = ws_connect(&app, &format!("/desktop/{ID}/websockify"), WsOpts::as_user(&tina, &app)).await;
    assert_eq!(refused_status(direct.unwrap_err()), 404);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        in_desktop(&container, "cat /tmp/typed"),
        "",
        "nothing typed by the teacher"
    );

    // The owner's keystrokes through her own WebSocket do arrive.
    let (mut ws, _) = ws_connect(&app, &format!("/desktop/{ID}/websockify"), WsOpts::as_user(&sam, &app))
        .await
        .expect("the owner's WebSocket");
    rfb_viewer(&mut ws).await;
    ws.send(Message::Binary(key_events("owner").into())).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while in_desktop(&container, "cat /tmp/typed").trim() != "owner" && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(in_desktop(&container, "cat /tmp/typed").trim(), "owner");

    // Watching ends with the stream; the student's indicator goes, the audit log has both.
    drop(stream);
    let gone = event_until(&mut sam_events, Duration::from_secs(10), |v| {
        v["id"] == ID && v["watchers"].as_array().is_some_and(Vec::is_empty)
    })
    .await;
    assert!(gone.is_some(), "the indicator goes when watching ends");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (entries, _) = app
        .state
        .store
        .audit_page(&portal_store::AuditFilter {
            kind: Some(portal_store::AuditKind::ScreenWatched),
            user: None,
            offset: 0,
            limit: 10,
        })
        .await
        .unwrap();
    let details: Vec<(&str, Option<&str>, Option<&str>)> = entries
        .iter()
        .map(|e| {
            (
                e.detail.split(' ').next().unwrap_or(""),
                e.actor.as_deref(),
                e.username.as_deref(),
            )
        })
        .collect();
    assert!(details.contains(&("started", Some("tina"), Some("sam"))), "{details:?}");
    assert!(details.contains(&("ended", Some("tina"), Some("sam"))), "{details:?}");
}

#[tokio::test]
async fn browser_grid_and_watch_page_and_the_students_indicator() {
    if !real_desktop_ready() || !browser_ready() {
        return;
    }
    let (app, _scope, _container) = class().await;
    let teacher = Chrome::start().await;
    teacher.sign_in(&app, "tina").await;
    teacher.goto(&app, "/teacher").await;
    teacher
        .wait_until(
            "the class grid shows sam's screen",
            // The thumbnails load lazily: the grid sits below the help requests, lessons and
            // class panels, so it is brought into view first.
            "const g = document.querySelector('.screens'); if (g) g.scrollIntoView(); \
             const i = document.querySelector('.screens img.thumb'); return !!i && i.complete && i.naturalWidth === 320;",
        )
        .await;
    assert!(teacher.text(".screens").await.contains("sam (Name)"));
    teacher
        .client
        .find(fantoccini::Locator::Css(".screens a[href$='/watch']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    teacher
        .wait_until(
            "the watch page shows the live screen",
            "const i = document.querySelector('img[data-role=watch]'); return !!i && i.naturalWidth === 1280;",
        )
        .await;

    // The student sees who watches, on her view page.
    let student = Chrome::start().await;
    student.sign_in(&app, "sam").await;
    student.goto(&app, &format!("/view/{ID}")).await;
    student
        .wait_until(
            "the view page names the watching teacher",
            "const e = document.querySelector('[data-role=watched]'); return !!e && !e.hidden && e.textContent.includes('tina (Name)');",
        )
        .await;
    // The teacher leaves: the indicator goes.
    teacher.goto(&app, "/teacher").await;
    student
        .wait_until(
            "the indicator goes when watching ends",
            "const e = document.querySelector('[data-role=watched]'); return !!e && e.hidden;",
        )
        .await;
    teacher.close().await;
    student.close().await;
}

/// CPU seconds (user + system) this process has used: the portal runs in it, and the test's
/// own HTTP client is a small share.
fn process_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name in parentheses; utime and stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// The benchmark behind `scripts/bench-screens.sh`: `SCREENS_BENCH_N` real desktops (10), each
/// with a clock changing its screen every second, and a teacher's class grid refreshing all
/// their thumbnails every 5 s for `SCREENS_BENCH_ROUNDS` rounds (6). Prints the portal's CPU
/// time per round and the process's memory.
#[tokio::test]
#[ignore = "a benchmark: scripts/bench-screens.sh"]
async fn bench_thumbnails_of_a_class() {
    if !real_desktop_ready() {
        return;
    }
    let n: usize = std::env::var("SCREENS_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let rounds: usize = std::env::var("SCREENS_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let (app, scope) = docker_app("screens-bench", |c| {
        c.docker.start_timeout_secs = 120;
        c.desktop_types = vec![];
        c.limits.max_running_total = 200;
    })
    .await;
    add_member(&app, "tina", Role::Teacher, &["5a"]).await;
    let mut ids = Vec::new();
    for i in 0..n {
        let name = format!("s{i:02}");
        add_member(&app, &name, Role::Student, &["5a"]).await;
        let b = sign_in(&app, &name).await;
        let (status, body, _) = start_desktop(&b, "debian-local").await;
        assert_eq!(status, 202, "{body}");
        let id = format!("{name}-debian-local");
        in_desktop_detached(
            &scope.container(&id),
            "xterm -geometry 30x3+0+0 -e sh -c 'while true; do date; sleep 1; done'",
        );
        ids.push(id);
    }
    let tina = sign_in(&app, "tina").await;
    // The first round opens the sessions; it is measured apart.
    let fetch_all = async || {
        let all = futures_util::future::join_all(ids.iter().map(|id| thumbnail(&tina, id))).await;
        assert!(all.iter().all(|(s, _, _)| *s == 200));
    };
    let (cpu0, t0) = (process_cpu_secs(), Instant::now());
    fetch_all().await;
    let first = (process_cpu_secs() - cpu0, t0.elapsed());
    let cpu1 = process_cpu_secs();
    let t1 = Instant::now();
    for _ in 0..rounds {
        let round = Instant::now();
        fetch_all().await;
        tokio::time::sleep(Duration::from_secs(5).saturating_sub(round.elapsed())).await;
    }
    let cpu = process_cpu_secs() - cpu1;
    let wall = t1.elapsed().as_secs_f64();
    let rss = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:").map(|v| v.trim().to_owned()))
        .unwrap_or_default();
    println!(
        "SCREENS-BENCH desktops={n} rounds={rounds} first_round_cpu_s={:.2} first_round_wall_s={:.2} \
         cpu_per_round_s={:.3} cpu_share_of_one_core={:.1}% sessions={} rss={rss}",
        first.0,
        first.1.as_secs_f64(),
        cpu / rounds as f64,
        100.0 * cpu / wall,
        app.state.screens.open_sessions(),
    );
}

/// The benchmark behind `scripts/bench-screens.sh latency`: how long a change on a student's
/// screen takes to reach a watching teacher. A red window inside the real desktop jumps
/// between the left and the right half every 2 s (`xdotool windowmove`, the time taken
/// inside the container just before, on the same kernel clock as the test's); each move's
/// latency is the time until the first frame of the watch stream that shows the window on
/// its new side. Prints the latencies' median, 90th percentile and maximum, and the frames
/// per second of the stream.
#[tokio::test]
#[ignore = "a benchmark: scripts/bench-screens.sh latency"]
async fn bench_watching_latency() {
    if !real_desktop_ready() {
        return;
    }
    // Eight moves 2 s apart: the stream is read for 19 s, within the test client's 20 s
    // request timeout.
    const MOVES: usize = 8;
    let (app, _scope, container) = class().await;
    in_desktop_detached(&container, "xterm -T redwin -bg red -geometry 40x12+100+100");
    let window = in_desktop(&container, "xdotool search --sync --name redwin | head -1");
    let window = window.trim().to_owned();
    assert!(!window.is_empty(), "the red window is there");
    let tina = sign_in(&app, "tina").await;
    let mut stream = watch_stream(&tina).await;
    // The stream is read by a task of its own while the test moves the window.
    let began = Instant::now();
    let reader = tokio::spawn(async move { timed_frames(&mut stream, 2 * MOVES as u64 + 3).await });
    // Left (x 100) and right (x 800) in turn; the side is told by the red pixels' centre.
    let mut moves = String::new();
    for i in 0..MOVES {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let x = if i % 2 == 0 { 800 } else { 100 };
        let (c, w) = (container.clone(), window.clone());
        let t =
            tokio::task::spawn_blocking(move || in_desktop(&c, &format!("date +%s%N; xdotool windowmove {w} {x} 100")))
                .await
                .unwrap();
        moves.push_str(&format!("{} {x}\n", t.trim()));
    }
    let frames = reader.await.unwrap();
    let fps = frames.len() as f64 / began.elapsed().as_secs_f64();
    let sides: Vec<(std::time::SystemTime, Option<bool>)> = frames
        .iter()
        .map(|(at, jpeg)| {
            let img = image::load_from_memory(jpeg).expect("a JPEG").to_rgb8();
            let xs: Vec<u32> = img
                .enumerate_pixels()
                .filter(|(_, _, p)| p[0] > 200 && p[1] < 60 && p[2] < 60)
                .map(|(x, _, _)| x)
                .collect();
            let right = (!xs.is_empty()).then(|| xs.iter().map(|&x| u64::from(x)).sum::<u64>() / xs.len() as u64 > 640);
            (*at, right)
        })
        .collect();
    let mut latencies: Vec<f64> = moves
        .lines()
        .filter_map(|l| {
            let (t, x) = l.split_once(' ')?;
            let at = std::time::UNIX_EPOCH + Duration::from_nanos(t.parse().ok()?);
            let right = x.trim() == "800";
            let seen = sides.iter().find(|(f, side)| *f >= at && *side == Some(right))?;
            Some(seen.0.duration_since(at).ok()?.as_secs_f64() * 1000.0)
        })
        .collect();
    let last_frame = frames
        .last()
        .map(|(at, _)| at.duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
    assert_eq!(
        latencies.len(),
        moves.lines().count(),
        "every move was seen: {moves}; seen {latencies:?}; last frame at {last_frame:?}; sides {:?}",
        sides.iter().map(|(_, s)| *s).collect::<Vec<_>>()
    );
    let n = latencies.len();
    latencies.sort_by(f64::total_cmp);
    println!(
        "WATCH-LATENCY moves={n} median_ms={:.0} p90_ms={:.0} max_ms={:.0} fps={fps:.1} all_ms={:?}",
        latencies[n / 2],
        latencies[n * 9 / 10],
        latencies[n - 1],
        latencies.iter().map(|l| l.round() as u64).collect::<Vec<_>>()
    );
}

/// A desktop that is no VNC server (the fake Kasm desktop answers RFB's greeting and then
/// echoes): its thumbnail is a 502 within the read timeout, and is not tried again at once.
/// With `screens.watching = false` the watch page and stream say that watching is off.
#[tokio::test]
async fn an_unreadable_screen_is_a_502_and_watching_can_be_switched_off() {
    if !crate::docker::docker_ready() {
        return;
    }
    let (app, _scope) = docker_app("screens-off", |c| c.screens.watching = false).await;
    add_member(&app, "tina", Role::Teacher, &["5a"]).await;
    add_member(&app, "sam", Role::Student, &["5a"]).await;
    let sam = sign_in(&app, "sam").await;
    let (status, body, _) = start_desktop(&sam, "fake").await;
    assert_eq!(status, 202, "{body}");
    let tina = sign_in(&app, "tina").await;
    let (status, _, body) = thumbnail(&tina, "sam-fake").await;
    assert_eq!(status, 502, "{}", String::from_utf8_lossy(&body));
    let began = Instant::now();
    assert_eq!(thumbnail(&tina, "sam-fake").await.0, 502);
    assert!(
        began.elapsed() < Duration::from_secs(1),
        "the failure is remembered for a moment"
    );
    for path in [
        "/teacher/desktops/sam-fake/watch",
        "/teacher/desktops/sam-fake/watch/stream",
    ] {
        let resp = tina.get(path).send().await.unwrap();
        assert_eq!(resp.status(), 403, "{path}");
        let text = resp.text().await.unwrap();
        assert!(text.contains("screens.watching"), "{path}: {text}");
    }
    // The teacher page offers no "Watch" link then.
    let page = tina.get("/teacher").send().await.unwrap().text().await.unwrap();
    assert!(page.contains("/api/teacher/desktops/sam-fake/thumbnail"));
    assert!(!page.contains("/teacher/desktops/sam-fake/watch"));
}
