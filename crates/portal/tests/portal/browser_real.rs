//! A real VNC desktop through the portal in real Chromium: `iserv-rd/real-desktop:test` (Xvnc,
//! openbox, xterm and websockify serving noVNC over HTTPS with Basic Auth, built by
//! `scripts/build-real-desktop-image.sh`) stands in for a kasmweb image. noVNC draws the X
//! screen it receives through the portal's WebSocket relay, and keys typed into the page reach
//! a shell in the container. Under `CI=true` a missing engine, image or browser fails this
//! test; elsewhere it says why it did nothing.
//!
//! `IRD_SCREENSHOTS=1` also saves `docs/screenshot-real-desktop.png`.

use std::process::Command;
use std::time::{Duration, Instant};

use fantoccini::Locator;
use fantoccini::actions::{InputSource as _, MOUSE_BUTTON_LEFT, MouseActions, PointerAction};
use fantoccini::key::Key;
use portal::config::DesktopTypeConfig;
use serde_json::Value;

use crate::browser::{Chrome, browser_ready};
use crate::docker::{docker_app, fake_type, start_desktop};
use crate::helpers::*;

const REAL_IMAGE: &str = "iserv-rd/real-desktop:test";

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

/// JS: whether noVNC is connected and its 1280x800 canvas shows more than `min` colours.
fn drawn(min: usize) -> String {
    format!(
        "const c = document.querySelector('#noVNC_container canvas');
         if (!document.documentElement.classList.contains('noVNC_connected') || !c
             || c.width !== 1280 || c.height !== 800) return false;
         const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
         const seen = new Set();
         for (let i = 0; i < d.length; i += 4) {{
             seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
             if (seen.size > {min}) return true;
         }}
         return false;"
    )
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
    let chrome = Chrome::start().await;
    let c = &chrome.client;
    chrome.sign_in(&app, "alice").await;
    // The desktop is started through the API (a second session of alice's); the dashboard's
    // start button is covered by the browser tests.
    let api = sign_in(&app, "alice").await;
    let (status, body, events) = start_desktop(&api, "real").await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        events.last().map(|e| &e["step"]),
        Some(&Value::from("ready")),
        "{events:?}"
    );
    let started = began.elapsed();

    let id = "alice-real";
    chrome
        .goto(
            &app,
            &format!("/desktop/{id}/?path=desktop/{id}/websockify&autoconnect=1"),
        )
        .await;
    // Connected, and the X screen (black root window, white xterm with its prompt) drawn.
    chrome
        .wait_until("noVNC to connect and draw the X desktop", &drawn(2))
        .await;
    let status_text = c
        .execute("return document.getElementById('noVNC_status').textContent", vec![])
        .await
        .unwrap();
    let connected = began.elapsed();

    // Click into the xterm (top-left under openbox), then type a command and Enter.
    let canvas = c.find(Locator::Css("#noVNC_container canvas")).await.unwrap();
    let click = MouseActions::new("mouse".into())
        .then(PointerAction::MoveToElement {
            element: canvas.clone(),
            duration: None,
            x: 100.0 - 640.0,
            y: 100.0 - 400.0,
        })
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        })
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        });
    c.perform_actions(click).await.unwrap();
    canvas
        .send_keys(&format!("echo portal-ok > ~/typed.txt{}", char::from(Key::Enter)))
        .await
        .unwrap();

    let container = scope.container(id);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = Command::new("docker")
            .args(["cp", &format!("{container}:/home/kasm-user/typed.txt"), "-"])
            .output()
            .expect("docker CLI runs");
        if out.status.success() && out.stdout.windows(9).any(|w| w == b"portal-ok") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the typed command did not reach the desktop's shell: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let typed = began.elapsed();
    chrome.screenshot("real-desktop").await;
    eprintln!(
        "real desktop: started {started:?}, noVNC connected and drawn {connected:?} ({status_text}), \
         typed command ran {typed:?}"
    );
    chrome.close().await;
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
