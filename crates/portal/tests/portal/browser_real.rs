//! A real VNC desktop through the portal in real Chromium: `iserv-rd/real-desktop:test` (Xvnc,
//! openbox, xterm and websockify serving noVNC over HTTPS with Basic Auth, built by
//! `scripts/build-real-desktop-image.sh`) stands in for a kasmweb image. The same flow runs
//! directly, behind Apache and behind nginx (the shipped `deploy/` configurations, see
//! `reverse_proxy.rs`):
//!
//! 1. display: noVNC draws the X screen it receives through the portal's WebSocket relay, and
//!    the drawing changes when the desktop does (a second xterm, started inside the container,
//!    appears on the canvas where X put it);
//! 2. mouse: a click on the first xterm through the page makes it X's active window, with the
//!    pointer where the click was (both asked from inside the container with xdotool);
//! 3. keyboard: a command typed into the page runs in that xterm's shell and names which
//!    window it ran in;
//! 4. reconnect: the tab is closed and the desktop's view page opened again; it connects to the
//!    same container, the second xterm is still there, and typed text lands again.
//!
//! Screenshots of each step go to `target/test-artifacts/`; `IRD_SCREENSHOTS=1` also saves
//! `docs/screenshot-real-desktop.png`. Under `CI=true` a missing engine, image, browser or
//! proxy fails these tests; elsewhere they say why they did nothing.
//!
//! Chromium aborts requests in flight (`ERR_NETWORK_CHANGED`) whenever the host's IP addresses
//! change, and every Docker network and container start adds some (bridge, veth, IPv6
//! link-local after DAD), this test's own and those of tests running alongside. So a page
//! load that lost requests that way, or a desktop connection that dropped, is retried (at most
//! [`ATTEMPTS`] times, each one named on stderr); anything else fails at once.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fantoccini::Locator;
use fantoccini::actions::{InputSource as _, MOUSE_BUTTON_LEFT, MouseActions, PointerAction};
use fantoccini::key::Key;
use serde::Deserialize;
use serde_json::Value;

use crate::browser::{Chrome, browser_ready};
use crate::docker::{docker_app, start_desktop};
use crate::helpers::*;
use crate::reverse_proxy::{ProxyKind, ReverseProxy, free_port, proxies_ready};

/// What `scripts/build-real-desktop-image.sh` builds (`catalog::LOCAL_DEBIAN_IMAGE`).
pub(crate) const REAL_IMAGE: &str = "iserv-rd/real-desktop:test";
/// Alice's desktop of the type dev mode offers for the locally built image.
const ID: &str = "alice-debian-local";
/// The screen size Xvnc is started with (images/real-desktop/start.sh).
const SCREEN: (u32, u32) = (1280, 800);
const ATTEMPTS: usize = 3;
/// How long noVNC may take to load, connect and draw; and anything the desktop does after an
/// input (a window to appear, focus to move, a typed command to run). Generous: three of these
/// tests and everything else share two cores.
const DRAW_WAIT: Duration = Duration::from_secs(30);
const STEP_WAIT: Duration = Duration::from_secs(15);
/// Where the test puts the second xterm (X geometry, pixels): clear of the first one, which
/// openbox centres.
const SECOND_AT: (u32, u32) = (900, 420);
/// A point inside the second xterm once it is mapped (its size is about 244×110 pixels).
const SECOND_PROBE: (u32, u32) = (SECOND_AT.0 + 60, SECOND_AT.1 + 60);

/// Whether the engine and the real-desktop image are there; fails under CI when they are not.
pub(crate) fn real_desktop_ready() -> bool {
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
    /// The canvas pixel at [`SECOND_PROBE`] is white (the second xterm is drawn there).
    second_drawn: bool,
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
        second_drawn: false,
    };
    if (page.connected && c && c.width > 0 && c.height > 0) {
        const w = c.width;
        const d = c.getContext('2d').getImageData(0, 0, w, c.height).data;
        const white = i => d[i] === 255 && d[i + 1] === 255 && d[i + 2] === 255;
        const seen = new Set();
        for (let i = 0; i < d.length && seen.size <= 16; i += 4) {
            seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
        }
        page.colours = seen.size;
        for (let y = 0; y < c.height; y++) {
            let run = 0;
            for (let x = 0; x < w; x++) {
                run = white((y * w + x) * 4) ? run + 1 : 0;
                if (run >= 200) {
                    const b = page.xterm || [x, y, x, y];
                    page.xterm = [Math.min(b[0], x - run + 1), b[1], Math.max(b[2], x), y];
                }
            }
        }
        page.second_drawn = white((arguments[1] * w + arguments[0]) * 4);
    }
    return page;";

async fn page(chrome: &Chrome) -> Option<Page> {
    // Mid-navigation a script may fail; that only means "not yet".
    let v = chrome
        .client
        .execute(PAGE, vec![SECOND_PROBE.0.into(), SECOND_PROBE.1.into()])
        .await
        .ok()?;
    serde_json::from_value(v).ok()
}

/// How one attempt ended, when it did not succeed.
enum Failed {
    /// Lost to a network change or a dropped connection: worth another attempt.
    Retry(String),
    /// Anything else.
    Fatal(String),
}

/// A step timed out: worth retrying only if the page lost its connection meanwhile.
async fn timed_out(chrome: &Chrome, what: String) -> Failed {
    let now = page(chrome).await;
    let msg = format!("{what}; the page: {now:?}");
    match now {
        Some(p) if p.connected => Failed::Fatal(msg),
        _ => Failed::Retry(msg),
    }
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
                point_at(chrome, (60 + clicks % 2 * 20, 60), true).await;
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

/// Types `text` and Enter into the noVNC canvas (WebDriver focuses it first).
async fn type_line(chrome: &Chrome, text: &str) {
    let canvas = chrome
        .client
        .find(Locator::Css("#noVNC_container canvas"))
        .await
        .unwrap();
    canvas
        .send_keys(&format!("{text}{}", char::from(Key::Enter)))
        .await
        .unwrap();
}

/// `docker exec` in the desktop's container as its user, with the X display set.
fn in_desktop(container: &str, cmd: &str) -> String {
    let out = Command::new("docker")
        .args(["exec", "-e", "DISPLAY=:1", container, "sh", "-c", cmd])
        .output()
        .expect("docker CLI runs");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn container_id(container: &str) -> String {
    let out = Command::new("docker")
        .args(["inspect", "-f", "{{.Id}}", container])
        .output()
        .expect("docker CLI runs");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `KEY=value` lines (xdotool's `--shell` output) → the value of `key`.
fn shell_var(out: &str, key: &str) -> Option<u32> {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
}

/// Polls `check` until it gives a value; after [`STEP_WAIT`], fails with its last complaint.
async fn poll<T>(chrome: &Chrome, mut check: impl AsyncFnMut() -> Result<T, String>) -> Result<T, Failed> {
    let deadline = Instant::now() + STEP_WAIT;
    loop {
        match check().await {
            Ok(v) => return Ok(v),
            Err(why) if Instant::now() > deadline => return Err(timed_out(chrome, why).await),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// One browser flow against one portal, directly or through a proxy.
struct Flow<'a> {
    chrome: &'a Chrome,
    app: &'a TestApp,
    container: String,
    /// `direct`, `apache` or `nginx`: names the artifacts.
    label: &'static str,
    shots: u32,
}

impl Flow<'_> {
    /// Opens noVNC through the portal until it shows the desktop; retries lost page loads.
    async fn open(&self, path: &str, in_view_page: bool) -> Page {
        let mut attempt = 1;
        loop {
            self.chrome.goto(self.app, path).await;
            if in_view_page {
                // The view page frames the desktop's own client; its scripts run in there.
                self.chrome
                    .wait_until(
                        "the view page's frame",
                        "return !!document.querySelector('iframe#desktop');",
                    )
                    .await;
                let frame = self.chrome.client.find(Locator::Css("iframe#desktop")).await.unwrap();
                frame.enter_frame().await.unwrap();
            }
            match wait_until_drawn(self.chrome).await {
                Ok(p) => return p,
                Err(Failed::Retry(why)) if attempt < ATTEMPTS => {
                    eprintln!(
                        "{}: opening {path}, attempt {attempt} of {ATTEMPTS} lost, retrying: {why}",
                        self.label
                    );
                    attempt += 1;
                    let _ = self.chrome.client.enter_parent_frame().await;
                }
                Err(Failed::Retry(why) | Failed::Fatal(why)) => {
                    panic!("{}: opening {path}, attempt {attempt}: {why}", self.label)
                }
            }
        }
    }

    /// A screenshot of the browser window as `target/test-artifacts/real-desktop-{label}-{n}-{name}.png`.
    async fn artifact(&mut self, name: &str) {
        self.shots += 1;
        let png = self.chrome.client.screenshot().await.unwrap();
        let dir = artifacts_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("real-desktop-{}-{}-{name}.png", self.label, self.shots));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    /// Starts the second xterm inside the container (unless it runs) and waits until the
    /// canvas shows it where X put it.
    async fn second_window_appears(&self) -> Result<(), Failed> {
        if in_desktop(&self.container, "xdotool search --class SecondTerm").is_empty() {
            // Its shell knows which window it is: the typed commands print $WHICH.
            let geometry = format!("40x8+{}+{}", SECOND_AT.0, SECOND_AT.1);
            let status = Command::new("docker")
                .args(["exec", "-d", "-e", "DISPLAY=:1", "-e", "WHICH=second", &self.container])
                .args(["xterm", "-class", "SecondTerm", "-geometry", &geometry])
                .status()
                .expect("docker CLI runs");
            assert!(status.success(), "docker exec xterm");
        }
        poll(self.chrome, async || {
            let mapped = !in_desktop(&self.container, "xdotool search --onlyvisible --class SecondTerm").is_empty();
            if mapped && page(self.chrome).await.is_some_and(|p| p.connected && p.second_drawn) {
                return Ok(());
            }
            Err(format!(
                "the second xterm (mapped: {mapped}) was not drawn at {SECOND_PROBE:?}"
            ))
        })
        .await
    }

    /// Clicks into the middle of the first xterm through the page; returns where, once X
    /// reports that xterm as the active window and the pointer there.
    async fn click_first_xterm(&self) -> Result<(u32, u32), Failed> {
        let geometry = in_desktop(
            &self.container,
            "xdotool getwindowgeometry --shell $(xdotool search --onlyvisible --class '^XTerm$' | head -n1)",
        );
        let (Some(x), Some(y), Some(w), Some(h)) = (
            shell_var(&geometry, "X"),
            shell_var(&geometry, "Y"),
            shell_var(&geometry, "WIDTH"),
            shell_var(&geometry, "HEIGHT"),
        ) else {
            return Err(Failed::Fatal(format!("no geometry for the first xterm: {geometry:?}")));
        };
        let target = (x + w / 2, y + h / 2);
        point_at(self.chrome, target, true).await;
        poll(self.chrome, async || {
            let active = in_desktop(&self.container, "xprop -id $(xdotool getactivewindow) WM_CLASS");
            let mouse = in_desktop(&self.container, "xdotool getmouselocation --shell");
            let at = (shell_var(&mouse, "X"), shell_var(&mouse, "Y"));
            if active.ends_with("\"XTerm\"") && at == (Some(target.0), Some(target.1)) {
                return Ok(target);
            }
            Err(format!(
                "after a click at {target:?}: active window {active:?}, pointer {mouse:?}"
            ))
        })
        .await
    }

    /// Types a command that writes `~/{file}` naming its window; waits for `expected` there.
    async fn typed_command_runs(&self, file: &str, tag: &str, expected: &str) -> Result<(), Failed> {
        type_line(self.chrome, &format!("echo {tag}-${{WHICH:-first}} > ~/{file}")).await;
        poll(self.chrome, async || {
            let content = in_desktop(&self.container, &format!("cat ~/{file} 2>/dev/null"));
            if content == expected {
                return Ok(());
            }
            Err(format!("~/{file} holds {content:?}, not {expected:?}"))
        })
        .await
    }
}

/// Runs one step; when it fails for a lost connection, reopens the page and runs it again.
macro_rules! step {
    ($flow:expr, $path:expr, $in_view:expr, $what:literal, $call:expr) => {{
        let mut attempt = 1;
        loop {
            match $call.await {
                Ok(v) => break v,
                Err(Failed::Retry(why)) if attempt < ATTEMPTS => {
                    eprintln!(
                        "{}: {}, attempt {attempt} of {ATTEMPTS} lost, retrying: {why}",
                        $flow.label, $what
                    );
                    attempt += 1;
                    let _ = $flow.chrome.client.enter_parent_frame().await;
                    $flow.open($path, $in_view).await;
                }
                Err(Failed::Retry(why) | Failed::Fatal(why)) => {
                    panic!("{}: {}, attempt {attempt}: {why}", $flow.label, $what)
                }
            }
        }
    }};
}

fn artifacts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts")
}

/// The whole flow (see the module comment), directly or through `via`.
async fn real_desktop_flow(via: Option<ProxyKind>) {
    let began = Instant::now();
    let label = match via {
        None => "direct",
        Some(ProxyKind::Apache) => "apache",
        Some(ProxyKind::Nginx) => "nginx",
    };
    let proxy_port = via.map(|_| free_port());
    let (mut app, scope) = docker_app(&format!("real-{label}"), |c| {
        c.docker.start_timeout_secs = 90;
        // Dev mode: no types configured, so the portal offers the locally built image itself.
        c.desktop_types = vec![];
        if let Some(port) = proxy_port {
            c.public_url = Some(format!("https://localhost:{port}/").parse().unwrap());
            c.proxy.trusted_proxies = "127.0.0.1".parse().unwrap();
        }
    })
    .await;
    // Started through the API before Chromium runs, so that the host's address changes of
    // this start are mostly over by the time the page loads.
    let api = sign_in(&app, "alice").await;
    let types = api.get_json("/api/desktop-types").await;
    let local = types["desktop_types"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["key"] == "debian-local"))
        .unwrap_or_else(|| panic!("dev mode offers the local image: {types}"));
    assert_eq!(local["name"], "Debian-Desktop (lokal gebaut)", "{local}");
    let (status, body, events) = start_desktop(&api, "debian-local").await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        events.last().map(|e| &e["step"]),
        Some(&Value::from("ready")),
        "{events:?}"
    );
    let started = began.elapsed();
    let container = scope.container(ID);
    let container_before = container_id(&container);

    // Behind a proxy the browser only ever talks to the proxy.
    let proxy = via
        .zip(proxy_port)
        .map(|(kind, port)| ReverseProxy::start(kind, port, app.addr));
    if let Some(p) = &proxy {
        app.url = p.url.clone();
        app.origin = p.url.clone();
    }
    let flags: &[&str] = if proxy.is_some() {
        // Only here: the proxy's certificate is self-signed.
        &["--ignore-certificate-errors"]
    } else {
        &[]
    };
    let chrome = Chrome::start_with(flags).await;
    chrome.sign_in(&app, "alice").await;
    let mut flow = Flow {
        chrome: &chrome,
        app: &app,
        container: container.clone(),
        label,
        shots: 0,
    };

    // 1. Display: drawn, and redrawn when the desktop changes.
    let desktop = format!("/desktop/{ID}/?path=desktop/{ID}/websockify&autoconnect=1");
    let drawn = flow.open(&desktop, false).await;
    assert!(
        !drawn.second_drawn,
        "nothing white at {SECOND_PROBE:?} before the second xterm"
    );
    flow.artifact("drawn").await;
    step!(
        flow,
        &desktop,
        false,
        "the second xterm appears on the canvas",
        flow.second_window_appears()
    );
    flow.artifact("second-window").await;

    // 2. Mouse: the second xterm has the focus (openbox focuses new windows); a click moves it.
    let clicked = step!(
        flow,
        &desktop,
        false,
        "a click focuses the first xterm",
        flow.click_first_xterm()
    );

    // 3. Keyboard: the command runs in the clicked window's shell.
    step!(
        flow,
        &desktop,
        false,
        "a typed command runs in the first xterm",
        flow.typed_command_runs("typed.txt", "portal-ok", "portal-ok-first")
    );
    flow.artifact("typed").await;
    if via.is_none() {
        // The README's picture: both xterms and the command typed through the portal.
        chrome.screenshot("real-desktop").await;
    }

    // 4. Reconnect: close the tab, open the view page in a new one.
    let c = &chrome.client;
    let fresh = c.new_window(true).await.unwrap();
    c.close_window().await.unwrap();
    c.switch_to_window(fresh.handle).await.unwrap();
    let view = format!("/view/{ID}");
    flow.open(&view, true).await;
    assert_eq!(container_id(&container), container_before, "the same container");
    assert!(
        !in_desktop(&container, "xdotool search --onlyvisible --class SecondTerm").is_empty(),
        "the second xterm, started before, is still on the desktop"
    );
    assert!(
        page(&chrome).await.is_some_and(|p| p.second_drawn),
        "and drawn after reconnecting"
    );
    step!(
        flow,
        &view,
        true,
        "typed text lands after reconnecting",
        flow.typed_command_runs("again.txt", "reconnected", "reconnected-first")
    );
    c.enter_parent_frame().await.unwrap();
    flow.artifact("reconnected").await;

    eprintln!(
        "real desktop {label}: ready after {started:?}; noVNC {:?} with {} colours; clicked at {clicked:?}; \
         whole flow {:?}",
        drawn.status,
        drawn.colours,
        began.elapsed()
    );
    chrome.close().await;
    drop(proxy);
}

#[tokio::test]
async fn a_real_vnc_desktop_draws_and_takes_mouse_and_keyboard_and_reconnects_through_the_portal() {
    if browser_ready() && real_desktop_ready() {
        real_desktop_flow(None).await;
    }
}

#[tokio::test]
async fn a_real_vnc_desktop_works_the_same_behind_apache() {
    if browser_ready() && real_desktop_ready() && proxies_ready() {
        real_desktop_flow(Some(ProxyKind::Apache)).await;
    }
}

#[tokio::test]
async fn a_real_vnc_desktop_works_the_same_behind_nginx() {
    if browser_ready() && real_desktop_ready() && proxies_ready() {
        real_desktop_flow(Some(ProxyKind::Nginx)).await;
    }
}
