//! `GET /api/events`: the signed-in user's share of the desktop state changes (see
//! [`crate::domain::events`]) as server-sent events, with the texts in the page's language.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt as _};
use portal_store::{DesktopState, Store};
use serde::{Deserialize, Serialize};

use tokio::sync::broadcast;
use utoipa::IntoParams;

use crate::auth::CurrentUser;
use crate::auth::desktop_sessions::Owner;
use crate::domain::events::DesktopChange;
use crate::domain::progress::Step;
use crate::domain::stop_reason::StopReason;
use crate::domain::unix_now;
use crate::i18n::Lang;
use crate::state::AppState;
use crate::web::api::types::{DesktopStatus, ErrorResponse, LiveEvent, Snapshot};
use crate::web::error::AppError;

/// Proxies and browsers drop idle connections; a comment line every 15 s keeps them open.
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The translation key of a state (`None`: never started or removed).
pub(crate) fn state_key(state: Option<DesktopState>) -> &'static str {
    match state {
        None => "state_none",
        Some(DesktopState::Starting) => "state_starting",
        Some(DesktopState::Running) => "state_running",
        Some(DesktopState::Stopping) => "state_stopping",
        Some(DesktopState::Stopped) => "state_stopped",
        Some(DesktopState::Failed) => "state_failed",
    }
}

/// A stop or failure reason in words a student understands, with what to do: its translation
/// key. Reasons without their own text get the generic text of a failure, or none when the
/// desktop is merely stopped; the technical account stays available as detail.
pub(crate) fn reason_key(state: Option<DesktopState>, reason: &StopReason) -> Option<&'static str> {
    let key = match reason {
        StopReason::ByUser => "reason_user",
        StopReason::ByAdmin | StopReason::StopAll => "reason_admin",
        StopReason::ByTeacher => "reason_teacher",
        StopReason::Idle { .. } | StopReason::IdleReported => "reason_idle",
        StopReason::MaxAge { .. } => "reason_max_age",
        StopReason::OutOfMemory { .. } => "reason_oom",
        StopReason::StartTimeout { .. } => "reason_start_timeout",
        StopReason::ImageUnavailable { .. } => "reason_image",
        _ if state == Some(DesktopState::Failed) => "reason_failed",
        StopReason::Crashed { .. } | StopReason::Gone | StopReason::Removed => "reason_crashed",
        StopReason::StartCancelled | StopReason::StopFailed { .. } | StopReason::Failed { .. } => return None,
    };
    Some(key)
}

/// The steps of a job ([`crate::domain::progress`]) as server-sent events: `first`, then the
/// steps so far, then live ones until the last. Each step is an event named by its kind with
/// the step as JSON data.
pub(crate) fn progress_sse<S: Step + Serialize>(
    first: Vec<Event>,
    (history, follow): (Vec<S>, Option<broadcast::Receiver<S>>),
    slot: crate::net::keyed_slots::Slot<String>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    fn event<S: Step + Serialize>(step: &S) -> Event {
        Event::default().event(step.name()).json_data(step).unwrap_or_default()
    }
    let initial: Vec<Event> = first.into_iter().chain(history.iter().map(event)).collect();
    let live = futures_util::stream::unfold(follow, |rx| async move {
        let mut rx = rx?;
        loop {
            match rx.recv().await {
                Ok(step) => {
                    let next = (!step.is_last()).then_some(rx);
                    return Some((event(&step), next));
                }
                // Lost steps are progress only; the last one still arrives.
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    // The user's stream slot frees when the stream is dropped.
    let stream = futures_util::stream::iter(initial).chain(live).map(move |event| {
        let _held = &slot;
        Ok::<_, Infallible>(event)
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

/// "just now", "5 minutes ago", … for `ts`, in `lang`.
pub(crate) fn ago(lang: Lang, ts: i64, now: i64) -> String {
    let secs = (now - ts).max(0);
    let (n, key) = match secs {
        0..60 => return lang.t("ago_now").to_owned(),
        60..3600 => (secs / 60, "ago_minutes"),
        3600..86_400 => (secs / 3600, "ago_hours"),
        _ => (secs / 86_400, "ago_days"),
    };
    lang.t_with(key, &[("n", n)])
}

/// A desktop's state as the pages show it, texts in `lang`.
pub(crate) fn state_json(lang: Lang, c: &DesktopChange) -> DesktopStatus {
    let reason_text = c
        .reason
        .as_ref()
        .and_then(|r| reason_key(c.state, r))
        .map(|k| lang.t(k).to_owned());
    DesktopStatus {
        id: c.desktop_id.clone(),
        last_used: c.last_used,
        last_used_text: c.last_used.map(|t| ago(lang, t, unix_now())),
        reason: c.reason.as_ref().map(ToString::to_string),
        reason_text,
        state: c.state.map(|s| s.as_str()).unwrap_or("none"),
        state_text: lang.t(state_key(c.state)).to_owned(),
        type_key: c.type_key.clone(),
        view_url: format!("/view/{}", c.desktop_id),
    }
}

#[derive(Deserialize, Default, IntoParams)]
pub(crate) struct EventsQuery {
    /// `mine` (the default): the user's own desktops; `all`: every desktop (admins only).
    #[serde(default)]
    #[param(example = "all")]
    scope: Option<String>,
}

/// `GET /api/events`: first a `snapshot` of the user's desktops, then a `desktop` event per
/// state change. `?scope=all` gives admins every desktop.
#[utoipa::path(get, path = "/api/events", tag = "desktops",
    summary = "State changes of the user's desktops (or all, for admins), live",
    security(("session" = [])),
    params(EventsQuery),
    responses(
        (status = 200, description = "Server-sent events: `snapshot` (every desktop the stream covers) first, then `desktop` per state change; a new `snapshot` after missed changes; `class_messages` (every current message from a teacher to the user's groups) whenever one changes. Ends with the session.", content_type = "text/event-stream", body = LiveEvent),
        (status = 400, description = "Unknown scope", body = ErrorResponse),
        (status = 401, description = "Not signed in", body = ErrorResponse),
        (status = 403, description = "`scope=all` by someone who is no administrator", body = ErrorResponse),
    ),
)]
pub(crate) async fn stream(
    State(state): State<AppState>,
    user: CurrentUser,
    lang: Lang,
    Query(q): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    let all = match q.scope.as_deref() {
        None | Some("mine") => false,
        Some("all") if user.is_admin() => true,
        Some("all") => return Err(AppError::AdminOnly),
        Some(other) => {
            return Err(AppError::BadRequest(format!(
                "unknown scope {other:?}; use mine or all"
            )));
        }
    };
    let slot = state
        .event_streams
        .take(&user.user.id)
        .ok_or(AppError::TooManyStreams(state.event_streams.max()))?;
    // Subscribe before the snapshot, so no change falls between the two.
    let rx = state.desktops.changes.subscribe();
    let store = state.store.clone();
    let user_id = user.user.id.clone();
    let first = snapshot(&store, &user_id, all, lang).await?;
    let follow = futures_util::stream::unfold(rx, move |mut rx| {
        let (store, user_id) = (store.clone(), user_id.clone());
        async move {
            loop {
                match rx.recv().await {
                    Ok(c) if all || c.user_id == user_id => {
                        let event = Event::default().event("desktop").json_data(state_json(lang, &c));
                        return Some((event.unwrap_or_default(), rx));
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Missed changes: the whole picture again instead.
                        if let Ok(event) = snapshot(&store, &user_id, all, lang).await {
                            return Some((event, rx));
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    });
    // The stream ends with the session (or within seconds of a sign-out or an administrator
    // ending it); the browser's reconnect then needs a new sign-in.
    // Teachers' messages to the user's groups and who watches the user's screens
    // (`web/screens.rs`: now, then every change) ride on the same stream.
    let messages = crate::web::teacher_class::live_messages(&state, user.user.groups.clone());
    let watched = crate::web::screens::watching_events(&state, &user.user.id);
    let follow = futures_util::stream::select(futures_util::stream::select(follow, messages), watched)
        .take_until(session_ended(&state, &user));
    // The slot frees when the browser goes and the stream is dropped.
    let stream = futures_util::stream::iter([first]).chain(follow).map(move |event| {
        let _held = &slot;
        Ok::<_, Infallible>(event)
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// Completes when `user`'s session ends: at its expiry (the browser's reconnect then needs a
/// new sign-in), or within seconds of a sign-out or an administrator ending it. Live streams
/// end with it.
pub(crate) fn session_ended(state: &AppState, user: &CurrentUser) -> impl std::future::Future<Output = ()> + use<> {
    let left = u64::try_from(user.session.expires_at - unix_now()).unwrap_or(0);
    let stop = state.desktop_sessions.stop_signal(Owner {
        session_id: user.session.id.clone(),
        desktop: None,
    });
    async move {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(left)) => {}
            () = stop.cancelled() => {}
        }
    }
}

async fn snapshot(store: &Store, user_id: &str, all: bool, lang: Lang) -> Result<Event, AppError> {
    let desktops = if all {
        store.all_desktops().await?
    } else {
        store.desktops_of_user(user_id).await?
    };
    let desktops = desktops
        .iter()
        .map(|d| state_json(lang, &DesktopChange::of(d)))
        .collect();
    Ok(Event::default()
        .event("snapshot")
        .json_data(Snapshot { desktops })
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reason as stored (a code, or a sentence from before the codes) to its text's key.
    fn reason_key(state: Option<DesktopState>, stored: &str) -> Option<&'static str> {
        super::reason_key(state, &StopReason::from_stored(stored))
    }

    #[test]
    fn reasons_get_friendly_texts() {
        let stopped = Some(DesktopState::Stopped);
        let failed = Some(DesktopState::Failed);
        assert_eq!(reason_key(stopped, "stopped by its user"), Some("reason_user"));
        assert_eq!(
            reason_key(stopped, "stopped by an administrator (stop all)"),
            Some("reason_admin")
        );
        assert_eq!(reason_key(stopped, "idle for 61 minutes"), Some("reason_idle"));
        assert_eq!(reason_key(stopped, "exited with code 137"), Some("reason_crashed"));
        assert_eq!(
            reason_key(stopped, "exited with code 137 (out of memory)"),
            Some("reason_oom")
        );
        assert_eq!(
            reason_key(failed, "the desktop did not answer within 300 seconds"),
            Some("reason_start_timeout")
        );
        assert_eq!(reason_key(failed, "something odd"), Some("reason_failed"));
        assert_eq!(reason_key(stopped, "something odd"), None);
    }

    #[test]
    fn stored_codes_get_the_same_texts() {
        let stopped = Some(DesktopState::Stopped);
        let failed = Some(DesktopState::Failed);
        assert_eq!(reason_key(stopped, "user"), Some("reason_user"));
        assert_eq!(reason_key(stopped, "admin:all"), Some("reason_admin"));
        assert_eq!(reason_key(stopped, "idle:desktop"), Some("reason_idle"));
        assert_eq!(reason_key(stopped, "max_age:8"), Some("reason_max_age"));
        assert_eq!(
            reason_key(stopped, "crashed:exited with code 2"),
            Some("reason_crashed")
        );
        assert_eq!(reason_key(failed, "crashed:exited with code 2"), Some("reason_failed"));
        assert_eq!(reason_key(stopped, "gone"), Some("reason_crashed"));
        assert_eq!(
            reason_key(failed, "image:image x is not available: 404"),
            Some("reason_image")
        );
        assert_eq!(reason_key(failed, "stop_failed:busy"), Some("reason_failed"));
        assert_eq!(reason_key(stopped, "failed:odd"), None);
    }

    #[test]
    fn ago_counts_in_words() {
        let (de, en) = (Lang::parse("de").expect("German"), Lang::parse("en").expect("English"));
        assert_eq!(ago(en, 100, 130), "just now");
        assert_eq!(ago(en, 0, 60), "1 minute ago");
        assert_eq!(ago(de, 0, 7200), "vor 2 Stunden");
        assert_eq!(ago(en, 0, 3 * 86_400), "3 days ago");
    }
}
