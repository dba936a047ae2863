//! Students' screens for their teachers, read by the portal itself: one RFB session per
//! desktop over the desktop's own VNC WebSocket (with the desktop's credentials), shared by
//! every thumbnail request and every watching teacher, and closed when nobody looked for a
//! while. Nothing a desktop serves reaches a teacher's browser but pixels re-encoded here, and
//! the session has no way to send input (`portal-rfb` has no input messages).
//!
//! Who may see which screen is decided by the caller (`web/screens.rs`, with [`may_watch`]).

mod jpeg;
mod session;
mod watchers;
mod ws_bytes;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use desktop_proxy::{Proxy, RouteTable};
use portal_store::{Role, User};
use tokio::sync::watch;

pub use session::Frame;
pub use watchers::{WatchChange, WatchMark, WatchParties, Watchers};

/// Why a screen could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ScreenError {
    #[error("the desktop is not running")]
    NotRunning,
    #[error("too many screens are being read at once ({0})")]
    TooMany(usize),
    #[error("the desktop's screen could not be read: {0}")]
    Unreadable(String),
    #[error("encoding the image failed: {0}")]
    Encode(String),
}

/// Tuning of screen reading.
#[derive(Clone, Debug)]
pub struct ScreensConfig {
    /// Thumbnail width in pixels.
    pub thumbnail_width: u32,
    /// A thumbnail is re-encoded at most this often, however many tabs ask.
    pub thumbnail_ttl: Duration,
    /// Widest frame sent to a watching teacher.
    pub watch_width: u32,
    /// An RFB session nobody asked for this long is closed.
    pub idle: Duration,
    /// Most RFB sessions at once (each holds a framebuffer of up to 31 MiB).
    pub max_sessions: usize,
    /// Shortest time between two frames while someone watches (5 per second).
    pub watch_interval: Duration,
    /// Shortest time between two frames for thumbnails only.
    pub thumbnail_interval: Duration,
}

impl Default for ScreensConfig {
    fn default() -> Self {
        Self {
            thumbnail_width: 320,
            thumbnail_ttl: Duration::from_secs(2),
            watch_width: 1280,
            idle: Duration::from_secs(30),
            max_sessions: 128,
            watch_interval: Duration::from_millis(200),
            thumbnail_interval: Duration::from_secs(1),
        }
    }
}

/// Whether `viewer` may see the screen of `owner`'s desktop: administrators always; a teacher
/// when the owner is a student in one of the teacher's groups. Nobody else — not even the
/// owner, who has her desktop itself.
pub fn may_watch(viewer: &User, owner: &User) -> bool {
    match viewer.role {
        Role::Admin => true,
        Role::Teacher => owner.role == Role::Student && owner.groups.iter().any(|g| viewer.groups.contains(g)),
        Role::Student => false,
    }
}

/// The last thumbnail of a screen.
struct Thumbnail {
    at: Instant,
    version: u64,
    jpeg: bytes::Bytes,
}

/// One desktop's live RFB session, as its readers see it.
pub(crate) struct Screen {
    frames: watch::Receiver<Option<Arc<Frame>>>,
    /// When a reader last asked; the session ends after `idle` without one.
    wanted: Mutex<Instant>,
    /// Teachers watching right now: the session keeps the faster pace while there are any.
    watchers: std::sync::atomic::AtomicUsize,
    /// One encoder at a time per screen; the others wait and take its result.
    thumbnail: tokio::sync::Mutex<Option<Thumbnail>>,
    stop: tokio_util::sync::CancellationToken,
    /// When and why the session failed, if it did.
    failed: Mutex<Option<(Instant, String)>>,
}

/// How long a failed session's error is the answer before the screen is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(5);

impl Screen {
    fn recently_failed(&self) -> bool {
        self.failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < RETRY_AFTER)
    }

    fn touch(&self) {
        *self.wanted.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    fn idle_for(&self) -> Duration {
        self.wanted.lock().unwrap_or_else(|p| p.into_inner()).elapsed()
    }

    fn watched(&self) -> bool {
        self.watchers.load(std::sync::atomic::Ordering::Relaxed) > 0
    }
}

/// Every screen being read, by desktop id.
pub struct Screens {
    proxy: Proxy,
    routes: Arc<RouteTable>,
    config: ScreensConfig,
    sessions: Mutex<HashMap<String, Arc<Screen>>>,
}

/// A watching teacher's hold on a screen: while it lives, the session keeps the fast pace.
pub struct Watching {
    screen: Arc<Screen>,
    /// Changes when a new frame arrived.
    pub frames: watch::Receiver<Option<Arc<Frame>>>,
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.screen.watchers.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        self.screen.touch();
    }
}

impl Watching {
    /// Cancelled when the session ends (desktop stopped, unreadable, or gone from the routes).
    pub fn ended(&self) -> tokio_util::sync::CancellationToken {
        self.screen.stop.clone()
    }
}

/// How long a reader waits for a session's first frame.
const FIRST_FRAME: Duration = Duration::from_secs(15);

impl Screens {
    pub fn new(proxy: Proxy, routes: Arc<RouteTable>, config: ScreensConfig) -> Self {
        Self {
            proxy,
            routes,
            config,
            sessions: Mutex::default(),
        }
    }

    pub fn config(&self) -> &ScreensConfig {
        &self.config
    }

    /// The live session of `desktop_id`, started if there is none.
    fn screen(self: &Arc<Self>, desktop_id: &str) -> Result<Arc<Screen>, ScreenError> {
        let target = self.routes.get(desktop_id).ok_or(ScreenError::NotRunning)?;
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = sessions.get(desktop_id) {
            if !s.stop.is_cancelled() {
                s.touch();
                return Ok(s.clone());
            }
            // A desktop whose screen could not be read is not tried again at once: thirty
            // tabs refreshing would otherwise open thirty sessions to it.
            if let Some((at, why)) = s.failed.lock().unwrap_or_else(|p| p.into_inner()).as_ref()
                && at.elapsed() < RETRY_AFTER
            {
                return Err(ScreenError::Unreadable(why.clone()));
            }
        }
        sessions.retain(|_, s| !s.stop.is_cancelled() || s.recently_failed());
        if sessions.len() >= self.config.max_sessions {
            return Err(ScreenError::TooMany(self.config.max_sessions));
        }
        let (tx, rx) = watch::channel(None);
        let screen = Arc::new(Screen {
            frames: rx,
            wanted: Mutex::new(Instant::now()),
            watchers: Default::default(),
            thumbnail: tokio::sync::Mutex::new(None),
            stop: tokio_util::sync::CancellationToken::new(),
            failed: Mutex::new(None),
        });
        sessions.insert(desktop_id.to_owned(), screen.clone());
        let me = self.clone();
        let s = screen.clone();
        let id = desktop_id.to_owned();
        tokio::spawn(async move {
            let result = session::run(&me, &target, &s, tx).await;
            match result {
                Ok(()) => tracing::debug!(desktop = %id, "screen session closed"),
                Err(e) => {
                    tracing::info!(desktop = %id, error = %e, "screen session ended");
                    *s.failed.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), e.to_string()));
                }
            }
            s.stop.cancel();
            let mut sessions = me.sessions.lock().unwrap_or_else(|p| p.into_inner());
            if !s.recently_failed() && sessions.get(&id).is_some_and(|cur| Arc::ptr_eq(cur, &s)) {
                sessions.remove(&id);
            }
        });
        Ok(screen)
    }

    /// The current frame of `desktop_id`, waiting for the first one of a new session.
    async fn frame(self: &Arc<Self>, screen: &Arc<Screen>) -> Result<Arc<Frame>, ScreenError> {
        let mut rx = screen.frames.clone();
        let first = tokio::time::timeout(FIRST_FRAME, rx.wait_for(Option::is_some)).await;
        match first {
            Ok(Ok(frame)) => frame.clone().ok_or(ScreenError::NotRunning),
            Ok(Err(_)) => Err(ScreenError::Unreadable(
                "the session ended before the first frame".into(),
            )),
            Err(_) => Err(ScreenError::Unreadable("no frame within 15 s".into())),
        }
    }

    /// A thumbnail of `desktop_id`'s screen as JPEG: the cached one while it is younger than
    /// the TTL or the screen has not changed, else encoded once for all who ask meanwhile.
    pub async fn thumbnail(self: &Arc<Self>, desktop_id: &str) -> Result<bytes::Bytes, ScreenError> {
        let screen = self.screen(desktop_id)?;
        let frame = self.frame(&screen).await?;
        let mut cached = screen.thumbnail.lock().await;
        if let Some(t) = cached.as_ref()
            && (t.version == frame.version || t.at.elapsed() < self.config.thumbnail_ttl)
        {
            return Ok(t.jpeg.clone());
        }
        // The newest frame, which may have moved on while this request waited for the lock.
        let frame = screen.frames.borrow().clone().unwrap_or(frame);
        let jpeg = self.encode(frame.clone(), self.config.thumbnail_width).await?;
        *cached = Some(Thumbnail {
            at: Instant::now(),
            version: frame.version,
            jpeg: jpeg.clone(),
        });
        Ok(jpeg)
    }

    /// Starts watching `desktop_id`: frames as they change, at the watching pace.
    pub async fn watch(self: &Arc<Self>, desktop_id: &str) -> Result<Watching, ScreenError> {
        let screen = self.screen(desktop_id)?;
        screen.watchers.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let watching = Watching {
            frames: screen.frames.clone(),
            screen: screen.clone(),
        };
        self.frame(&screen).await?;
        Ok(watching)
    }

    /// `frame` as a JPEG at most `width` wide, on a blocking thread.
    pub async fn encode(&self, frame: Arc<Frame>, width: u32) -> Result<bytes::Bytes, ScreenError> {
        tokio::task::spawn_blocking(move || jpeg::encode(&frame, width))
            .await
            .map_err(|e| ScreenError::Encode(e.to_string()))?
            .map(bytes::Bytes::from)
            .map_err(|e| ScreenError::Encode(e.to_string()))
    }

    /// Sessions open now (for metrics and tests).
    pub fn open_sessions(&self) -> usize {
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.values().filter(|s| !s.stop.is_cancelled()).count()
    }
}
