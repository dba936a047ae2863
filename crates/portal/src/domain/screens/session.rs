//! One desktop's RFB session: connect through the desktop's VNC WebSocket, then ask for
//! changes and publish each new picture, until nobody wants it or the desktop goes.

use std::sync::Arc;
use std::time::Duration;

use desktop_proxy::Target;
use portal_rfb::{Client, Event, Limits};
use secrecy::ExposeSecret as _;
use tokio::sync::watch;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::ws_bytes::WsBytes;
use super::{Screen, ScreenError, Screens};

/// One picture of a screen: RGB, 3 bytes per pixel.
pub struct Frame {
    /// Grows by one with every published picture of a session.
    pub version: u64,
    pub width: u16,
    pub height: u16,
    pub rgb: Vec<u8>,
}

/// Where desktops serve their VNC WebSocket (Kasm and the local Debian image alike; the
/// portal's own `/websockify` routes there too).
const WEBSOCKET_PATH: &str = "/websockify";

/// How often the loop looks up from waiting for the server (idle, route gone, stop).
const TICK: Duration = Duration::from_millis(500);

/// A WebSocket message from a desktop is at most this large; RFB needs no large messages
/// (websockify and KasmVNC send a few KiB to 64 KiB each), so a bigger one is an attack.
const MAX_MESSAGE: usize = 4 * 1024 * 1024;

pub(super) async fn run(
    screens: &Screens,
    target: &Arc<Target>,
    screen: &Screen,
    tx: watch::Sender<Option<Arc<Frame>>>,
) -> Result<(), ScreenError> {
    let unreadable = |e: &dyn std::fmt::Display| ScreenError::Unreadable(e.to_string());
    let socket = screens
        .proxy
        .open_websocket(target, WEBSOCKET_PATH)
        .await
        .map_err(|e| unreadable(&e))?;
    let config = WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let ws = WebSocketStream::from_raw_socket(socket, Role::Client, Some(config)).await;
    // KasmVNC and the local image authenticate the WebSocket with Basic; a server that asks
    // for VNC Authentication gets the same per-desktop password (Kasm's VNC_PW).
    let password = target
        .basic_auth
        .as_ref()
        .map(|a| a.password.expose_secret().as_bytes().to_vec());
    let mut client = Client::connect(WsBytes::new(ws), password.as_deref(), Limits::default())
        .await
        .map_err(|e| unreadable(&e))?;
    client.request_update(false).await.map_err(|e| unreadable(&e))?;
    let mut version = 0u64;
    let mut last_publish = tokio::time::Instant::now() - screens.config.watch_interval;
    loop {
        if screen.stop.is_cancelled() || (!screen.watched() && screen.idle_for() > screens.config.idle) {
            return Ok(());
        }
        // A stopped or restarted desktop: its route is gone or points elsewhere. Compared by
        // what it leads to, not by identity: the route of a running desktop is written anew
        // now and then (reconcile, Docker events, other portals' notices) without any change.
        if !screens
            .routes
            .get(&target.desktop_id)
            .is_some_and(|t| same_desktop(&t, target))
        {
            return Ok(());
        }
        match client.next_event(TICK).await.map_err(|e| unreadable(&e))? {
            None | Some(Event::Ignored) => {}
            Some(Event::Resized) => client.request_update(false).await.map_err(|e| unreadable(&e))?,
            Some(Event::Updated) => {
                let fb = client.framebuffer();
                version += 1;
                tx.send_replace(Some(Arc::new(Frame {
                    version,
                    width: fb.width(),
                    height: fb.height(),
                    rgb: fb.rgb().to_vec(),
                })));
                // Pace the next request: the server answers an incremental request as soon
                // as anything changes, which would otherwise be a frame per keystroke.
                let pace = if screen.watched() {
                    screens.config.watch_interval
                } else {
                    screens.config.thumbnail_interval
                };
                tokio::time::sleep_until(last_publish + pace).await;
                last_publish = tokio::time::Instant::now();
                client.request_update(true).await.map_err(|e| unreadable(&e))?;
            }
        }
    }
}

/// Whether two routes lead to the same running desktop: the same address and the same
/// credentials (a re-created container gets a new password, and usually a new address).
fn same_desktop(a: &Target, b: &Target) -> bool {
    let secret = |t: &Target| {
        t.basic_auth
            .as_ref()
            .map(|a| (a.username.clone(), a.password.expose_secret().to_owned()))
    };
    a.authority() == b.authority() && a.scheme == b.scheme && secret(a) == secret(b)
}
