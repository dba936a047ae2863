//! Students' screens for their teachers: `GET /api/teacher/desktops/{id}/thumbnail` (a JPEG),
//! the watch page `/teacher/desktops/{id}/watch` and its live picture
//! `/teacher/desktops/{id}/watch/stream` (`multipart/x-mixed-replace` JPEGs, which an `<img>`
//! shows without any script). The picture is made by the portal from its own RFB session
//! (`domain::screens`); nothing goes from the teacher's browser to the desktop — the stream is a
//! plain GET with no channel back, so watching is view-only by construction.
//!
//! Who: administrators, and teachers of a group the desktop's owner (a student) is in.
//! Everyone else — another group's teacher, any student including the owner, nobody signed in —
//! and any desktop that is not running get the answer of a missing desktop (404).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use bytes::Bytes;
use desktop_proxy::{ProxyError, Target};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use portal_store::User;

use crate::auth::CurrentUser;
use crate::domain::screens::{ScreenError, WatchParties, Watching, may_watch};
use crate::domain::unix_now;
use crate::i18n::Lang;
use crate::state::AppState;
use crate::web::error::AppError;
use crate::web::pages::{Me, html};

impl From<ScreenError> for AppError {
    fn from(e: ScreenError) -> Self {
        match e {
            ScreenError::NotRunning => AppError::ForbiddenDesktop,
            ScreenError::TooMany(_) => AppError::Unavailable(e.to_string()),
            ScreenError::Unreadable(m) => AppError::Proxy(ProxyError::Protocol(m)),
            ScreenError::Encode(m) => AppError::Internal(anyhow::anyhow!(m)),
        }
    }
}

/// The running desktop `id` and its owner, if `user` may see its screen; otherwise the
/// missing-desktop answer, the same for every reason.
async fn viewable(state: &AppState, user: Option<&User>, id: &str) -> Result<(Arc<Target>, User), AppError> {
    let user = user.ok_or(AppError::ForbiddenDesktop)?;
    let target = state.routes.get(id).ok_or(AppError::ForbiddenDesktop)?;
    // Desktops of the per-user runtime have exactly one owner; shared lab machines have none
    // and are no student's screen.
    let owner_id = target.owner_ids.first().ok_or(AppError::ForbiddenDesktop)?;
    let owner = state
        .store
        .user_by_id(owner_id)
        .await?
        .ok_or(AppError::ForbiddenDesktop)?;
    if !may_watch(user, &owner) {
        return Err(AppError::ForbiddenDesktop);
    }
    Ok((target, owner))
}

/// `GET /api/teacher/desktops/{id}/thumbnail`: the screen, 320 pixels wide, as JPEG; at most
/// a few seconds old (one RFB session and one encoding per desktop, whoever asks).
#[utoipa::path(get, path = "/api/teacher/desktops/{id}/thumbnail", tag = "teacher",
    summary = "A student's screen as a small JPEG (teachers of her groups, administrators)",
    security(("session" = [])),
    params(("id" = String, Path, description = "Desktop id")),
    responses(
        (status = 200, description = "The screen, 320 px wide, at most a few seconds old; never stored", content_type = "image/jpeg"),
        (status = 404, description = "No such running desktop, or not one of your students' (the same answer)", body = crate::web::api::types::ErrorResponse),
        (status = 502, description = "The desktop's screen could not be read", body = crate::web::api::types::ErrorResponse),
        (status = 503, description = "Too many screens are being read at once", body = crate::web::api::types::ErrorResponse),
    ),
)]
pub(crate) async fn thumbnail(
    State(state): State<AppState>,
    user: Option<CurrentUser>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    viewable(&state, user.as_ref().map(|u| &u.user), &id).await?;
    let jpeg = state.screens.thumbnail(&id).await?;
    Ok(([(CONTENT_TYPE, "image/jpeg"), (CACHE_CONTROL, "no-store")], jpeg).into_response())
}

#[derive(askama::Template)]
#[template(path = "teacher_watch.html")]
pub(crate) struct WatchPage<'a> {
    pub lang: Lang,
    pub me: Me<'a>,
    pub id: &'a str,
    pub student: &'a str,
    pub js_texts: String,
}

/// `GET /teacher/desktops/{id}/watch`: one student's screen, large and live, view-only.
pub(crate) async fn watch_page(
    State(state): State<AppState>,
    user: CurrentUser,
    lang: Lang,
    Path(id): Path<String>,
) -> Result<Html<String>, AppError> {
    let (_, owner) = viewable(&state, Some(&user.user), &id).await?;
    if !state.config.screens.watching {
        return Err(AppError::WatchingOff);
    }
    html(&WatchPage {
        lang,
        me: Me::new(&user),
        id: &id,
        student: &owner.display_name,
        js_texts: crate::web::pages::js_texts(lang, &["watch_ended"]),
    })
}

/// The boundary between the JPEGs of the stream.
const BOUNDARY: &str = "frame";
/// An unchanged screen is sent again this often, so the picture stays and a closed browser
/// is noticed.
const RESEND: Duration = Duration::from_secs(2);
/// The teacher's access is checked again this often (group changes, role changes).
const RECHECK: Duration = Duration::from_secs(10);

/// `GET /teacher/desktops/{id}/watch/stream`: the live screen as `multipart/x-mixed-replace`
/// JPEGs, a new one whenever the screen changed (at most 5 per second). Ends when the desktop
/// stops, the teacher's session ends or she loses access; the student sees who watches while
/// it runs.
pub(crate) async fn watch_stream(
    State(state): State<AppState>,
    user: Option<CurrentUser>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let (_, owner) = viewable(&state, user.as_ref().map(|u| &u.user), &id).await?;
    let user = user.ok_or(AppError::ForbiddenDesktop)?;
    if !state.config.screens.watching {
        return Err(AppError::WatchingOff);
    }
    let slot = state
        .event_streams
        .take(&user.user.id)
        .ok_or(AppError::TooManyStreams(state.event_streams.max()))?;
    let watching = state.screens.watch(&id).await?;
    let mark = state
        .watchers
        .start(
            &state.store,
            WatchParties {
                desktop_id: &id,
                owner_id: &owner.id,
                owner_username: &owner.username,
                watcher_username: &user.user.username,
                watcher_name: &user.user.display_name,
            },
        )
        .await;
    let live = Live {
        state: state.clone(),
        id,
        user_id: user.user.id.clone(),
        watching,
        version: 0,
        next_check: tokio::time::Instant::now() + RECHECK,
    };
    // It ends with the session, or within seconds of a sign-out (as `/api/events` does).
    let ended = crate::web::events::session_ended(&state, &user);
    let stream = futures_util::stream::unfold(live, |mut live| async move {
        let part = live.next_part().await?;
        Some((Ok::<_, Infallible>(part), live))
    });
    let stream = futures_util::StreamExt::take_until(stream, ended);
    // The slot and the mark (the student's indicator, the audit entry) last as long as the
    // stream: dropping it when the browser goes or the stream ends releases both.
    let held = (slot, mark);
    let body = Body::from_stream(futures_util::StreamExt::map(stream, move |part| {
        let _held = &held;
        part
    }));
    Ok((
        [
            (CONTENT_TYPE, format!("multipart/x-mixed-replace; boundary={BOUNDARY}")),
            (CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response())
}

/// One teacher's live stream of one screen.
struct Live {
    state: AppState,
    id: String,
    user_id: String,
    watching: Watching,
    /// The frame last sent.
    version: u64,
    next_check: tokio::time::Instant,
}

impl Live {
    /// The next JPEG part, or `None` when the stream must end.
    async fn next_part(&mut self) -> Option<Bytes> {
        let first = self.version == 0;
        if !first {
            let ended = self.watching.ended();
            tokio::select! {
                changed = self.watching.frames.changed() => changed.ok()?,
                () = ended.cancelled() => return None,
                () = tokio::time::sleep(RESEND) => {}
            }
        }
        if tokio::time::Instant::now() >= self.next_check {
            self.next_check = tokio::time::Instant::now() + RECHECK;
            let me = self.state.store.user_by_id(&self.user_id).await.ok()??;
            viewable(&self.state, Some(&me), &self.id).await.ok()?;
        }
        let frame = self.watching.frames.borrow_and_update().clone()?;
        self.version = frame.version;
        let width = self.state.screens.config().watch_width;
        let jpeg = self.state.screens.encode(frame, width).await.ok()?;
        // Each part ends with the next boundary: browsers show a part only once they see the
        // boundary after it, which would otherwise hold every frame back until the next one.
        let mut part = Vec::with_capacity(jpeg.len() + 128);
        if first {
            part.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        }
        part.extend_from_slice(
            format!("Content-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n", jpeg.len()).as_bytes(),
        );
        part.extend_from_slice(&jpeg);
        part.extend_from_slice(format!("\r\n--{BOUNDARY}\r\n").as_bytes());
        Some(part.into())
    }
}

/// The class grids of `/teacher`: per group, its students' desktops with their screens.
pub(crate) struct Grid {
    pub classes: Vec<ClassGrid>,
    /// Watching is switched on (`screens.watching`).
    pub watching: bool,
    /// Changes with every render, so a refreshed list loads fresh thumbnails.
    pub stamp: i64,
}

/// One group's desktops.
pub(crate) struct ClassGrid {
    pub group: String,
    pub students: Vec<crate::web::teacher::StudentRow>,
}

impl Grid {
    /// Groups `rows` by class; a student in two of the teacher's classes is in both grids.
    /// An administrator's students outside any group of hers share one grid without a name.
    pub(crate) fn new(state: &AppState, rows: &[crate::web::teacher::StudentRow]) -> Self {
        let mut classes: Vec<ClassGrid> = Vec::new();
        for row in rows {
            let groups = if row.group_list.is_empty() {
                vec![String::new()]
            } else {
                row.group_list.clone()
            };
            for group in groups {
                match classes.iter_mut().find(|c| c.group == group) {
                    Some(c) => c.students.push(row.clone()),
                    None => classes.push(ClassGrid {
                        group,
                        students: vec![row.clone()],
                    }),
                }
            }
        }
        classes.sort_by(|a, b| a.group.cmp(&b.group));
        Grid {
            classes,
            watching: state.config.screens.watching,
            stamp: unix_now(),
        }
    }
}

/// What `/api/events` tells a student about who watches her screens: a `watching` event per
/// watched desktop at once, then one per change (`{"id", "watchers": [names]}`; an empty list
/// means nobody watches any more).
pub(crate) fn watching_events(
    state: &AppState,
    user_id: &str,
) -> impl futures_util::Stream<Item = axum::response::sse::Event> + Send + use<> {
    use futures_util::StreamExt as _;
    use tokio::sync::broadcast::error::RecvError;
    let rx = state.watchers.subscribe();
    let now = state.watchers.of_owner(user_id);
    let user_id = user_id.to_owned();
    let live = futures_util::stream::unfold(rx, move |mut rx| {
        let user_id = user_id.clone();
        async move {
            loop {
                match rx.recv().await {
                    Ok(c) if c.owner_id == user_id => return Some((c, rx)),
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    });
    futures_util::stream::iter(now).chain(live).map(|c| {
        axum::response::sse::Event::default()
            .event("watching")
            .json_data(serde_json::json!({ "id": c.desktop_id, "watchers": c.watchers }))
            .unwrap_or_default()
    })
}
