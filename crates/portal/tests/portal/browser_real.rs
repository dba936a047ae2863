//! A real VNC desktop through the portal in real Chromium: `iserv-rd/real-desktop:test` (Xvnc,
//! openbox, xterm and websockify serving noVNC over HTTPS with Basic Auth, built by
//! `scripts/build-real-desktop-image.sh`) stands in for a kasmweb image. noVNC draws the X
//! screen it receives through the portal's WebSocket relay, and keys typed into the page reach
//! a shell in the container. Under `CI=true` a missing engine, image or browser fails this
//! test; elsewhere it says why it did nothing.
//!
//! Chromium aborts requests in flight (`ERR_NETWORK_CHANGED`) whenever the host's IP addresses
//! change, and every Docker network and container start adds some (bridge, veth, IPv6
//! link-local after DAD), this test's own and those of tests running alongside. So a page
//! load that lost requests that way, or a desktop connection that dropped, is retried
//! (at most [`ATTEMPTS`] times, each one named on stderr); anything else fails at once.
//!
//! `IRD_SCREENSHOTS=1` also saves `docs/screenshot-real-desktop.png`.

use std::process::Command;
use std::time::{Duration, Instant};

use fantoccini::Locator;
use fantoccini::actions::{InputSource as _, MOUSE_BUTTON_LEFT, MouseActions, PointerAction};
use fantoccini::key::Key;
use portal::config::DesktopTypeConfig;
use serde::Deserialize;
use serde_json::Value;

use crate::browser::{Chrome, browser_ready};
use crate::docker::{docker_app, fake_type, start_desktop};
use crate::helpers::*;

const REAL_IMAGE: &str = "iserv-rd/real-desktop:test";
const ID: &str = "alice-real";
/// The screen size Xvnc is started with (images/real-desktop/start.sh).
const SCREEN: (u32, u32) = (1280, 800);
const ATTEMPTS: usize = 3;
/// How long noVNC may take to load, connect and draw; and a typed command to run.
const DRAW_WAIT: Duration = Duration::from_secs(15);
const TYPED_WAIT: Duration = Duration::from_secs(10);

/// Whether the engine and the real-desktop image are there; fails under CI when they are not.
fn real_desktop_ready() -> bool {
    let ok = Command::new("docker")
        .args(["image", "inspect", REAL_IMAGE])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let msg = format!(
            "the real-desktop test needs a running Docker engine and the image {REAL_IMAGE}: \
             run scripts/build-real-desktop-image.sh"
        );
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{msg}");
        }
        eprintln!("skipped: {msg}");
    }
    ok
}

/// The real-desktop type: the fake type's settings with the image, memory and shm it needs.
fn real_type() -> DesktopTypeConfig {
    DesktopTypeConfig {
        name: "Real desktop".into(),
        image: REAL_IMAGE.into(),
        env: Default::default(),
        shm_size_mib: 256,
        memory_mib: Some(1024),
        cpus: Some(1.0),
        ..fake_type("real")
    }
}

/// What noVNC's page shows.
#[derive(Debug, Deserialize)]
struct Page {
    /// noVNC's modules have not all loaded (still `class="noVNC_loading"`).
    loading: bool,
    connected: bool,
    status: String,
    /// The canvas size, once there is one.
    canvas: Option<(u32, u32)>,
    /// Distinct colours on the canvas (counted up to 17).
    colours: usize,
    /// Where the xterm's white terminal area is: the box around the rows that hold a white run
    /// of at least 200 pixels (left, top, right, bottom).
    xterm: Option<(u32, u32, u32, u32)>,
    /// Requests that failed at the network level (`responseStatus` 0).
    failed: Vec<String>,
}

/// JS: the [`Page`] state; the canvas is same-origin, so its pixels can be read.
const PAGE: &str = "
    const html = document.documentElement.classList;
    const c = document.querySelector('#noVNC_container canvas');
    const page = {
        loading: html.contains('noVNC_loading'),
        connected: html.contains('noVNC_connected'),
        status: (document.getElementById('noVNC_status') || {}).textContent || '',
        canvas: c ? [c.width, c.height] : null,
        colours: 0,
        xterm: null,
        failed: performance.getEntriesByType('resource')
            .filter(e => e.responseStatus === 0).map(e => e.name),
    };
    if (page.connected && c && c.width > 0 && c.height > 0) {
        const w = c.width;
        const d = c.getContext('2d').getImageData(0, 0, w, c.height).data;
        const seen = new Set();
        for (let i = 0; i < d.length && seen.size <= 16; i += 4) {
            seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
        }
        page.colours = seen.size;
        for (let y = 0; y < c.height; y++) {
            let run = 0;
            for (let x = 0; x < w; x++) {
                const i = (y * w + x) * 4;
                run = d[i] === 255 && d[i + 1] === 255 && d[i + 2] === 255 ? run + 1 : 0;
                if (run >= 200) {
                    const b = page.xterm || [x, y, x, y];
                    page.xterm = [Math.min(b[0], x - run + 1), b[1], Math.max(b[2], x), y];
                }
            }
        }
    }
    return page;";

async fn page(chrome: &Chrome) -> Option<Page> {
    // Mid-navigation a script may fail; that only means "not yet".
    let v = chrome.client.execute(PAGE, vec![]).await.ok()?;
    serde_json::from_value(v).ok()
}

/// How one attempt ended, when it did not succeed.
enum Failed {
    /// Lost to a network change or a dropped connection: worth another attempt.
    Retry(String),
    /// Anything else.
    Fatal(String),
}

/// Waits until noVNC is connected and shows the X desktop (more than two colours: the root
/// window, the xterm and its text) with the xterm on it. Until then it clicks on the desktop:
/// the image's openbox, started alongside the xterm, may leave the xterm unmapped until an
/// event of its own arrives (see `images/real-desktop/start.sh`); a click on the root window,
/// sent through the portal, is one.
async fn wait_until_drawn(chrome: &Chrome) -> Result<Page, Failed> {
    let deadline = Instant::now() + DRAW_WAIT;
    let mut last = None;
    let mut clicks = 0u32;
    loop {
        if let Some(p) = page(chrome).await {
            if p.connected && p.canvas == Some(SCREEN) && p.colours > 2 && p.xterm.is_some() {
                return Ok(p);
            }
            if !p.failed.is_empty() && (p.loading || !p.connected) {
                return Err(Failed::Retry(format!("requests failed in the browser: {p:?}")));
            }
            if p.connected && p.canvas == Some(SCREEN) {
                clicks += 1;
                point_at(chrome, (600 + clicks % 2 * 20, 400), true).await;
            }
            last = Some(p);
        }
        if Instant::now() > deadline {
            return Err(Failed::Fatal(format!(
                "noVNC did not connect and draw the desktop with its xterm within {DRAW_WAIT:?}: \
                 {last:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Moves the pointer to `(x, y)` on the noVNC canvas, and clicks there if `click`.
async fn point_at(chrome: &Chrome, (x, y): (u32, u32), click: bool) {
    let c = &chrome.client;
    // Viewport coordinates: the canvas may be larger than the window, and WebDriver's
    // element-relative offsets count from the centre of its visible part.
    let at = c
        .execute(
            "const r = document.querySelector('#noVNC_container canvas').getBoundingClientRect();
             return [r.left + arguments[0], r.top + arguments[1]];",
            vec![x.into(), y.into()],
        )
        .await
        .unwrap();
    let (vx, vy): (f64, f64) = serde_json::from_value(at).unwrap();
    let mut mouse = MouseActions::new("mouse".into()).then(PointerAction::MoveTo {
        duration: None,
        x: vx,
        y: vy,
    });
    if click {
        mouse = mouse
            .then(PointerAction::Down {
                button: MOUSE_BUTTON_LEFT,
            })
            .then(PointerAction::Up {
                button: MOUSE_BUTTON_LEFT,
            });
    }
    c.perform_actions(mouse).await.unwrap();
}

/// `~/typed.txt` in the desktop's container, when it is there.
fn typed_file(container: &str) -> Option<Vec<u8>> {
    let out = Command::new("docker")
        .args(["cp", &format!("{container}:/home/kasm-user/typed.txt"), "-"])
        .output()
        .expect("docker CLI runs");
    out.status.success().then_some(out.stdout)
}

/// One go: open noVNC through the portal, wait for the desktop, click into the xterm, type a
/// command and wait for the file it writes.
async fn open_and_type(app: &TestApp, chrome: &Chrome, container: &str) -> Result<Page, Failed> {
    let c = &chrome.client;
    chrome
        .goto(
            app,
            &format!("/desktop/{ID}/?path=desktop/{ID}/websockify&autoconnect=1"),
        )
        .await;
    let drawn = wait_until_drawn(chrome).await?;
    let (left, top, right, bottom) = drawn.xterm.unwrap();

    // Into the middle of the xterm, then the command and Enter.
    point_at(chrome, ((left + right) / 2, (top + bottom) / 2), true).await;
    let canvas = c.find(Locator::Css("#noVNC_container canvas")).await.unwrap();
    canvas
        .send_keys(&format!("echo portal-ok > ~/typed.txt{}", char::from(Key::Enter)))
        .await
        .unwrap();

    let deadline = Instant::now() + TYPED_WAIT;
    loop {
        if typed_file(container).is_some_and(|tar| tar.windows(9).any(|w| w == b"portal-ok")) {
            return Ok(drawn);
        }
        if Instant::now() > deadline {
            let now = page(chrome).await;
            let msg = format!("the typed command did not run within {TYPED_WAIT:?}; the page: {now:?}");
            return Err(match now {
                Some(p) if p.connected => Failed::Fatal(msg),
                _ => Failed::Retry(msg),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_real_vnc_desktop_draws_and_takes_keyboard_input_through_the_portal() {
    if !browser_ready() || !real_desktop_ready() {
        return;
    }
    let began = Instant::now();
    let (app, scope) = docker_app("real", |c| {
        c.docker.start_timeout_secs = 90;
        c.desktop_types = vec![real_type()];
    })
    .await;
    // Started through the API before Chromium runs, so that the host's address changes of
    // this start are mostly over by the time the page loads.
    let api = sign_in(&app, "alice").await;
    let (status, body, events) = start_desktop(&api, "real").await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        events.last().map(|e| &e["step"]),
        Some(&Value::from("ready")),
        "{events:?}"
    );
    let started = began.elapsed();

    let chrome = Chrome::start().await;
    chrome.sign_in(&app, "alice").await;
    let container = scope.container(ID);
    let mut attempt = 1;
    let drawn = loop {
        match open_and_type(&app, &chrome, &container).await {
            Ok(drawn) => break drawn,
            Err(Failed::Retry(why)) if attempt < ATTEMPTS => {
                eprintln!("attempt {attempt} of {ATTEMPTS} lost, retrying: {why}");
                attempt += 1;
            }
            Err(Failed::Retry(why) | Failed::Fatal(why)) => panic!("attempt {attempt}: {why}"),
        }
    };
    chrome.screenshot("real-desktop").await;
    eprintln!(
        "real desktop: ready after {started:?}; noVNC {:?} with {} colours, xterm's terminal at {:?}; \
         typed command ran after {:?} (attempt {attempt})",
        drawn.status,
        drawn.colours,
        drawn.xterm,
        began.elapsed()
    );
    chrome.close().await;
}
