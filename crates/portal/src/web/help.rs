//! Helping with consent, on the pages: the student's help panel (view page and dashboard: ask,
//! withdraw, allow or decline a teacher's offer, end the help), the teacher's list of open
//! requests on `/teacher` (take control, open the desktop on its own origin, end), both served
//! alone as fragments for `static/help.js`, and `GET /api/help/events`, which tells both pages
//! live when a case of theirs changed. The rules are in [`crate::domain::help`].

use std::convert::Infallible;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use futures_util::{Stream, StreamExt as _};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use utoipa::ToSchema;

use crate::auth::CurrentUser;
use crate::domain::access::owns_desktop;
use crate::domain::help::{Case, HELP_TIME_LIMIT, HelpError};
use crate::domain::unix_now;
use crate::i18n::Lang;
use crate::state::AppState;
use crate::web::api::types::ErrorResponse;
use crate::web::dashboard::CLIENT_PATH;
use crate::web::desktop::handover_url;
use crate::web::error::AppError;
use crate::web::events::{KEEP_ALIVE, ago, session_ended};
use crate::web::pages::{form_fields, html};
use crate::web::redirect::safe_path;

/// HTTP status of a refused help action.
pub(crate) fn status(e: &HelpError) -> StatusCode {
    match e {
        HelpError::NotFound => StatusCode::NOT_FOUND,
        HelpError::NoRequest | HelpError::Taken | HelpError::NoOffer => StatusCode::CONFLICT,
        HelpError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Machine code and catalogue key of a refused help action. `NotFound` answers exactly like
/// a missing desktop.
pub(crate) fn code_and_key(e: &HelpError) -> (&'static str, &'static str) {
    match e {
        HelpError::NotFound => ("desktop_not_found", "err_desktop_not_found"),
        HelpError::NoRequest => ("help_no_request", "err_help_no_request"),
        HelpError::Taken => ("help_taken", "err_help_taken"),
        HelpError::NoOffer => ("help_no_offer", "err_help_no_offer"),
        HelpError::Store(_) => ("unavailable", "err_unavailable"),
    }
}

/// A desktop's name as its user knows it: its type's name, a lab machine's name, or its id.
async fn desktop_name(state: &AppState, lang: Lang, id: &str) -> String {
    if let Ok(Some(d)) = state.store.desktop(id).await
        && let Ok(Some(t)) = state.store.desktop_type(&d.type_key).await
    {
        return t.name(lang.code()).to_owned();
    }
    state
        .routes
        .get(id)
        .map(|t| t.name.clone())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| id.to_owned())
}

/// "14:30" (or a date with it) in the school's zone.
fn clock(state: &AppState, lang: Lang, secs: i64) -> String {
    crate::web::time::show(&state.config.timezone, secs, lang)
}

/// One desktop in the student's panel.
pub(crate) struct StudentRow {
    pub desktop_id: String,
    pub desktop_name: String,
    /// `none` (nothing asked), `requested`, `offered`, `helping`.
    pub stage: &'static str,
    pub helper: String,
    pub until: String,
}

/// The student's help panel.
pub(crate) struct StudentPanel {
    pub lang: Lang,
    pub csrf_token: String,
    /// Where the panel is served alone, and where its forms send the browser back to.
    pub url: String,
    pub back: String,
    /// Name each desktop (the dashboard; the view page has one).
    pub named: bool,
    pub rows: Vec<StudentRow>,
}

#[derive(askama::Template)]
#[template(path = "help_student.html")]
pub(crate) struct StudentFragment<'a> {
    pub help: &'a StudentPanel,
}

/// The student's panel: for desktop `only` (the view page), or for every running desktop of
/// hers (the dashboard).
pub(crate) async fn student_panel(
    state: &AppState,
    user: &CurrentUser,
    lang: Lang,
    only: Option<&str>,
) -> StudentPanel {
    let mine: Vec<String> = state
        .routes
        .all()
        .into_iter()
        .filter(|t| only.is_none_or(|id| t.desktop_id == id) && owns_desktop(&user.user, t))
        .map(|t| t.desktop_id.clone())
        .collect();
    let mut rows = Vec::new();
    for id in mine {
        let case = state.help.case_of(&user.user, &id);
        rows.push(StudentRow {
            stage: case.as_ref().map_or("none", |c| c.stage.as_str()),
            helper: case
                .as_ref()
                .and_then(|c| c.helper.as_ref())
                .map(|h| h.display_name.clone())
                .unwrap_or_default(),
            until: case
                .as_ref()
                .and_then(|c| c.until)
                .map(|t| clock(state, lang, t))
                .unwrap_or_default(),
            desktop_name: desktop_name(state, lang, &id).await,
            desktop_id: id,
        });
    }
    let (url, back) = match only {
        Some(id) => (format!("/help/panel?desktop={}", urlencode(id)), format!("/view/{id}")),
        None => ("/help/panel".to_owned(), "/".to_owned()),
    };
    StudentPanel {
        lang,
        csrf_token: user.session.csrf_token.clone(),
        url,
        back,
        named: only.is_none(),
        rows,
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[derive(Deserialize, Default)]
pub(crate) struct PanelQuery {
    #[serde(default)]
    desktop: Option<String>,
}

/// `GET /help/panel[?desktop=ID]`: the student's panel alone, for `static/help.js`.
pub(crate) async fn panel(
    State(state): State<AppState>,
    user: CurrentUser,
    lang: Lang,
    Query(q): Query<PanelQuery>,
) -> Result<Html<String>, AppError> {
    let help = student_panel(&state, &user, lang, q.desktop.as_deref()).await;
    html(&StudentFragment { help: &help })
}

/// One open case on the teacher page.
pub(crate) struct TeacherRow {
    pub desktop_id: String,
    pub desktop_name: String,
    pub student: String,
    pub username: String,
    pub asked: String,
    pub stage: &'static str,
    pub helper: String,
    /// The viewer is the one who offered or helps.
    pub mine: bool,
    pub until: String,
}

/// The teacher's list of open cases.
pub(crate) struct TeacherPanel {
    pub lang: Lang,
    pub csrf_token: String,
    /// Taking control needs desktop origins: without them a desktop's page may run only for
    /// its owner.
    pub can_take_control: bool,
    /// The page's introduction, with the time limit.
    pub intro: String,
    pub rows: Vec<TeacherRow>,
}

#[derive(askama::Template)]
#[template(path = "help_teacher.html")]
pub(crate) struct TeacherFragment<'a> {
    pub help: &'a TeacherPanel,
}

/// The open cases of `user`'s students (every case, for an administrator).
pub(crate) async fn teacher_panel(state: &AppState, user: &CurrentUser, lang: Lang) -> TeacherPanel {
    let now = unix_now();
    let mut rows = Vec::new();
    for c in state.help.cases_for(&user.user) {
        if c.student.id == user.user.id {
            continue;
        }
        rows.push(teacher_row(state, user, lang, now, c).await);
    }
    TeacherPanel {
        lang,
        csrf_token: user.session.csrf_token.clone(),
        can_take_control: state.desktop_origins.is_some(),
        intro: lang.t_with("help_teacher_intro", &[("minutes", HELP_TIME_LIMIT.as_secs() / 60)]),
        rows,
    }
}

async fn teacher_row(state: &AppState, user: &CurrentUser, lang: Lang, now: i64, c: Case) -> TeacherRow {
    TeacherRow {
        desktop_name: desktop_name(state, lang, &c.desktop_id).await,
        student: c.student.display_name.clone(),
        username: c.student.username.clone(),
        asked: ago(lang, c.requested_at, now),
        stage: c.stage.as_str(),
        helper: c.helper.as_ref().map(|h| h.display_name.clone()).unwrap_or_default(),
        mine: c.helper.as_ref().is_some_and(|h| h.id == user.user.id),
        until: c.until.map(|t| clock(state, lang, t)).unwrap_or_default(),
        desktop_id: c.desktop_id,
    }
}

/// `GET /teacher/help`: the teacher's list alone, for `static/help.js`. Students get the
/// missing-desktop answer (there is nothing of theirs here).
pub(crate) async fn teacher_list(
    State(state): State<AppState>,
    user: CurrentUser,
    lang: Lang,
) -> Result<Html<String>, AppError> {
    if user.user.role == portal_store::Role::Student {
        return Err(AppError::ForbiddenDesktop);
    }
    let help = teacher_panel(&state, &user, lang).await;
    html(&TeacherFragment { help: &help })
}

#[derive(Deserialize)]
pub(crate) struct HelpForm {
    /// Where to go afterwards (a path on the portal).
    #[serde(default)]
    back: Option<String>,
}

fn back_to(form: Result<Form<HelpForm>, FormRejection>, default: &str) -> Result<Response, AppError> {
    let f = form_fields(form)?;
    let to = f.back.as_deref().map(|b| safe_path(Some(b))).unwrap_or(default);
    Ok(Redirect::to(to).into_response())
}

/// `POST /help/{id}/{action}`: `request` (the student asks for help with her running
/// desktop), `accept` (she lets the teacher who offered control it) or `close` (she withdraws
/// her request, declines an offer or ends the help; or a teacher of hers closes the case).
pub(crate) async fn act(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, action)): Path<(String, String)>,
    form: Result<Form<HelpForm>, FormRejection>,
) -> Result<Response, AppError> {
    match action.as_str() {
        "request" => state.help.request(&user.user, &id).await.map(|_| ())?,
        "accept" => state.help.accept(&user.user, &id).await.map(|_| ())?,
        "close" => state.help.close(&user.user, &id).await?,
        _ => return Err(AppError::NotFound),
    }
    back_to(form, "/")
}

/// `POST /teacher/help/{id}/offer`: a teacher of the student offers to take control. Needs
/// desktop origins (the helper uses the desktop on its own origin).
pub(crate) async fn offer(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    form: Result<Form<HelpForm>, FormRejection>,
) -> Result<Response, AppError> {
    if state.desktop_origins.is_none() {
        // Say why only to those who see the case; everyone else gets the missing-desktop answer.
        let sees = state
            .help
            .case_of(&user.user, &id)
            .is_some_and(|c| c.student.id != user.user.id);
        return Err(if sees {
            AppError::OwnerOnly
        } else {
            AppError::ForbiddenDesktop
        });
    }
    state.help.offer(&user.user, &id).await?;
    back_to(form, "/teacher#help")
}

/// `GET /teacher/help/{id}/open`: the accepted helper enters the desktop on its own origin
/// (a one-time ticket, as the view page's frame gets); everyone else gets the missing-desktop
/// answer.
pub(crate) async fn open(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    if state.desktop_origins.is_none() || !state.help.is_helping(&user.user, &id) {
        return Err(AppError::ForbiddenDesktop);
    }
    Ok(Redirect::to(&handover_url(&state, &user.session.id, &id, CLIENT_PATH).await?).into_response())
}

/// One case as the live stream describes it.
#[derive(Serialize, ToSchema)]
pub(crate) struct HelpCaseView {
    /// The desktop it is about.
    desktop_id: String,
    /// The student's username.
    student: String,
    /// `requested`, `offered` or `helping`.
    #[schema(example = "offered")]
    stage: &'static str,
    /// Who offered or helps (a username).
    helper: Option<String>,
    /// Unix seconds.
    requested_at: i64,
    /// When the helper's access ends by itself (unix seconds).
    until: Option<i64>,
}

/// Event `help` of `/api/help/events`: every open case the user sees, after any change.
#[derive(Serialize, ToSchema)]
pub(crate) struct HelpCases {
    cases: Vec<HelpCaseView>,
}

fn cases_event(state: &AppState, user: &portal_store::User) -> Event {
    let cases = state
        .help
        .cases_for(user)
        .into_iter()
        .map(|c| HelpCaseView {
            stage: c.stage.as_str(),
            helper: c.helper.map(|h| h.username),
            requested_at: c.requested_at,
            until: c.until,
            student: c.student.username,
            desktop_id: c.desktop_id,
        })
        .collect();
    Event::default()
        .event("help")
        .json_data(HelpCases { cases })
        .unwrap_or_default()
}

/// `GET /api/help/events`: the cases the user sees (her own; her students'), at once and
/// again after every change of one of them.
#[utoipa::path(get, path = "/api/help/events", tag = "help",
    summary = "Requests for help and help sessions the user takes part in, live",
    security(("session" = [])),
    responses(
        (status = 200, description = "Server-sent events: `help` with every open case the user sees (her own desktops'; a teacher's students'; all for administrators), first at once, then after each change. Ends with the session.", content_type = "text/event-stream", body = HelpCases),
        (status = 401, description = "Not signed in", body = ErrorResponse),
        (status = 429, description = "Too many live-update streams open", body = ErrorResponse),
    ),
)]
pub(crate) async fn events(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    let slot = state
        .event_streams
        .take(&user.user.id)
        .ok_or(AppError::TooManyStreams(state.event_streams.max()))?;
    // Subscribe before the first picture, so no change falls between the two.
    let rx = state.help.subscribe();
    let first = cases_event(&state, &user.user);
    let (st, who) = (state.clone(), user.user.clone());
    let follow = futures_util::stream::unfold(rx, move |mut rx| {
        let (st, who) = (st.clone(), who.clone());
        async move {
            loop {
                match rx.recv().await {
                    Ok(c) if c.concerns(&who) => return Some((cases_event(&st, &who), rx)),
                    Ok(_) => {}
                    // Missed changes: the whole picture again.
                    Err(broadcast::error::RecvError::Lagged(_)) => return Some((cases_event(&st, &who), rx)),
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    });
    let stream = futures_util::stream::iter([first])
        .chain(follow.take_until(session_ended(&state, &user)))
        .map(move |event| {
            let _held = &slot;
            Ok::<_, Infallible>(event)
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}
