//! `/`: a card per desktop type the signed-in user may use, with its state, live; the
//! form actions behind the cards (they work without JavaScript; the script does the same
//! through the JSON API with live progress); and `/view/{id}` (alias `/desktops/{id}`): one
//! desktop, full-window, with input heartbeats for idle detection.

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use portal_store::{Desktop, DesktopState};
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::domain::access::owns_desktop;
use crate::domain::access::usable_types;
use crate::domain::events::last_used;
use crate::domain::lifecycle::{LifecycleError, desktop_id};
use crate::domain::stop_reason::StopReason;
use crate::domain::unix_now;
use crate::i18n::Lang;
use crate::state::AppState;
use crate::web::desktop::{handover_url, launch_url, may_use};
use crate::web::error::AppError;
pub(crate) use crate::web::events::state_key;
use crate::web::events::{ago, reason_key};
use crate::web::pages::{DashboardPage, DesktopTile, Me, TypeTile, ViewPage, form_fields, html, js_texts};
use crate::web::teacher_class::messages_for;

/// Texts the dashboard's and the view's scripts need, in the page's language.
const JS_TEXT_KEYS: &[&str] = &[
    "watched_by",
    "state_none",
    "state_starting",
    "state_running",
    "state_stopping",
    "state_stopped",
    "state_failed",
    "step_pulling",
    "step_creating",
    "step_starting",
    "step_waiting",
    "step_queued",
    "step_ready",
    "step_requested",
    "never_used",
    "last_used",
    "ago_now",
    "ago_minute",
    "ago_minutes",
    "ago_hour",
    "ago_hours",
    "ago_day",
    "ago_days",
    "stop_confirm_text",
    "live_offline",
    "err_network",
    "view_stopped",
    "view_starting",
    "view_disconnected",
    "view_reconnect_hint",
    "idle_stopped",
];

/// The reason of a stopped or failed desktop in words; none while it runs.
fn reason_of(d: &Desktop) -> Option<&'static str> {
    if matches!(d.state, DesktopState::Stopped | DesktopState::Failed) {
        StopReason::of(d).and_then(|r| reason_key(Some(d.state), &r))
    } else {
        None
    }
}

pub(crate) async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    lang: Lang,
) -> Result<Html<String>, AppError> {
    let mine = state.store.desktops_of_user(&user.user.id).await?;
    let starts = state.runtime.starts_desktops();
    let now = unix_now();
    let types = if starts {
        usable_types(&state.store, &user.user)
            .await?
            .into_iter()
            .map(|t| {
                let d = mine.iter().find(|d| d.type_key == t.key);
                let used = d.and_then(last_used);
                TypeTile {
                    name: t.name(lang.code()).to_owned(),
                    description: t.description(lang.code()).to_owned(),
                    icon: t.icon.clone(),
                    desktop_id: d
                        .map(|d| d.id.clone())
                        .unwrap_or_else(|| desktop_id(&user.user.username, &t.key)),
                    state: d.map(|d| d.state.as_str()).unwrap_or("none"),
                    state_key: state_key(d.map(|d| d.state)),
                    reason_text: d.and_then(reason_of).map(|k| lang.t(k)),
                    reason: d
                        .filter(|d| reason_of(d).is_some() || d.state == DesktopState::Failed)
                        .and_then(StopReason::of)
                        .map(|r| r.to_string()),
                    queued_text: d.and_then(|d| state.desktops.queue_place(&d.id)).map(|(n, m)| {
                        let count = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
                        lang.t_with("step_queued", &[("n", count(n)), ("m", count(m))])
                    }),
                    last_used: used,
                    last_used_text: used
                        .map(|t| ago(lang, t, now))
                        .unwrap_or_else(|| lang.t("never_used").to_owned()),
                    key: t.key,
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    // Desktops that are not per-user containers: lab machines and other static hosts.
    let desktops = state
        .routes
        .all()
        .into_iter()
        .filter(|t| !mine.iter().any(|d| d.id == t.desktop_id) && may_use(&user, t))
        .filter(|t| !starts || state.config.static_desktops.iter().any(|s| s.id == t.desktop_id))
        .map(|t| DesktopTile {
            name: t.name.clone(),
            launch_url: launch_url(&t.desktop_id),
            id: t.desktop_id.clone(),
        })
        .collect();
    let runtime_ok = !starts || state.runtime.ping().await.is_ok();
    let handins_note = starts
        && state.config.files.mount_classes
        && user.user.role == portal_store::Role::Student
        && !types.is_empty()
        && !state.store.assignments_for_groups(&user.user.groups).await?.is_empty();
    html(&DashboardPage {
        lang,
        me: Me::new(&user),
        types,
        desktops,
        runtime_ok,
        handins_note,
        help: crate::web::help::student_panel(&state, &user, lang, None).await,
        js_texts: js_texts(lang, JS_TEXT_KEYS),
        class_messages: messages_for(&state, &user).await?,
    })
}

/// `GET /view/{id}` and `/desktops/{id}`: the desktop in a full-window frame. A container
/// desktop that does not run (yet) shows its state and a way to start it.
pub(crate) async fn view(
    State(state): State<AppState>,
    user: CurrentUser,
    lang: Lang,
    Path(id): Path<String>,
) -> Result<Html<String>, AppError> {
    let texts = js_texts(lang, JS_TEXT_KEYS);
    if state.store.desktop(&id).await?.is_some() {
        let d = state.desktops.owned(&user.user, &id).await.map_err(|e| match e {
            // Someone else's desktop: the same answer as the proxy gives.
            LifecycleError::Forbidden => AppError::ForbiddenDesktop,
            other => other.into(),
        })?;
        if state.desktop_origins.is_none() && d.user_id != user.user.id {
            return Err(AppError::OwnerOnly);
        }
        let frame = Frame::new(&state, &user, &id).await?;
        let t = state.store.desktop_type(&d.type_key).await?;
        let name = t
            .as_ref()
            .map(|t| t.name(lang.code()).to_owned())
            .unwrap_or_else(|| d.id.clone());
        // Running in the store but no route (a moment after a crash): show it as stopped.
        let running = d.state == DesktopState::Running && state.routes.get(&id).is_some();
        let shown = if running || d.state != DesktopState::Running {
            Some(d.state)
        } else {
            Some(DesktopState::Stopped)
        };
        return html(&ViewPage {
            lang,
            csrf_token: &user.session.csrf_token,
            name: &name,
            launch_url: frame.reload,
            frame_src: frame.src,
            desktop_origin: frame.origin,
            id: &id,
            type_key: &d.type_key,
            state: shown.map(|s| s.as_str()).unwrap_or("none"),
            state_key: state_key(shown),
            reason_text: reason_of(&d).map(|k| lang.t(k)),
            help: crate::web::help::student_panel(&state, &user, lang, Some(&id)).await,
            js_texts: texts,
            class_messages: messages_for(&state, &user).await?,
        });
    }
    let target = state
        .routes
        .get(&id)
        .ok_or_else(|| AppError::DesktopNotFound(id.clone()))?;
    if !may_use(&user, &target) {
        return Err(AppError::ForbiddenDesktop);
    }
    if state.desktop_origins.is_none() && !owns_desktop(&user.user, &target) {
        return Err(AppError::OwnerOnly);
    }
    let frame = Frame::new(&state, &user, &id).await?;
    html(&ViewPage {
        lang,
        csrf_token: &user.session.csrf_token,
        name: &target.name,
        launch_url: frame.reload,
        frame_src: frame.src,
        desktop_origin: frame.origin,
        id: &id,
        type_key: "",
        state: "running",
        state_key: state_key(Some(DesktopState::Running)),
        reason_text: None,
        help: crate::web::help::student_panel(&state, &user, lang, Some(&id)).await,
        js_texts: texts,
        class_messages: messages_for(&state, &user).await?,
    })
}

/// Where a desktop's own client starts on its origin (Kasm's client and noVNC take the
/// WebSocket's path from `path`).
pub(crate) const CLIENT_PATH: &str = "/?path=websockify";

/// What the view page's frame loads.
struct Frame {
    /// The first load: with desktop origins, straight to the handover with a ticket.
    src: String,
    /// Every later load (reconnect, started again): a portal URL that hands over with a
    /// fresh ticket each time (tickets are single use).
    reload: String,
    /// The origin the desktop's messages come from.
    origin: String,
}

impl Frame {
    async fn new(state: &AppState, user: &CurrentUser, id: &str) -> Result<Frame, AppError> {
        Ok(match &state.desktop_origins {
            Some(origins) => Frame {
                src: handover_url(state, &user.session.id, id, CLIENT_PATH).await?,
                reload: format!("/desktop/{id}{CLIENT_PATH}"),
                origin: origins.origin_of(id),
            },
            None => Frame {
                src: launch_url(id),
                reload: launch_url(id),
                origin: state.public_origin.clone(),
            },
        })
    }
}

#[derive(Deserialize)]
pub(crate) struct ActionForm {
    /// The type to start (start only).
    #[serde(rename = "type", default)]
    type_key: String,
}

/// `POST /desktops/start` (`type`): the form behind the Start button, for browsers without
/// JavaScript; back to the dashboard, which shows the desktop starting.
pub(crate) async fn start_form(
    State(state): State<AppState>,
    user: CurrentUser,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Result<Response, AppError> {
    let f = form_fields(form)?;
    state.desktops.start(&user.user, &f.type_key).await?;
    Ok(Redirect::to("/").into_response())
}

/// `POST /desktops/{id}/stop` and `/desktops/{id}/remove` (the container goes, the files
/// stay): the forms behind the Stop and Remove buttons.
pub(crate) async fn desktop_form(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, action)): Path<(String, String)>,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Result<Response, AppError> {
    form_fields(form)?;
    state.desktops.owned(&user.user, &id).await?;
    match action.as_str() {
        // The audit log and the owner's page tell an admin's stop from the owner's own.
        "stop" => state.desktops.stop_by(&user.user, &id).await?,
        "remove" => state.desktops.remove(&id).await?,
        _ => return Err(AppError::NotFound),
    }
    Ok(Redirect::to("/").into_response())
}
