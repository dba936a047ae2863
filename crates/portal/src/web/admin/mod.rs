//! `/admin`: every desktop with its state, resource use and the admin's controls (stop or
//! remove one or many, stop all, clean up), and what the other admin pages share: the
//! [`Admin`] extractor, form parsing, the error type and dates. (CSRF tokens are checked
//! before a handler runs, by `web::csrf`.)
//!
//! The admin pages are plain HTML forms (they work without JavaScript); `static/admin.js`
//! adds confirmations, select-all, live resource use and image pull progress.

pub mod audit;
pub mod disk;
pub mod types;
pub mod users;

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use http::StatusCode;
use http::request::Parts;
use portal_store::{AuditEntry, AuditEvent, AuditFilter, AuditKind, DesktopState, StoreError};

use crate::auth::CurrentUser;
use crate::domain::admin::AdminActions;
use crate::domain::audit as audit_log;
use crate::domain::lifecycle::LifecycleError;
use crate::domain::stop_reason::StopReason;
use crate::i18n::Lang;
use crate::state::AppState;
use crate::web::api::types::{ErrorResponse, StatsResponse, StatsView};
use crate::web::dashboard::state_key;
use crate::web::error::AppError;
use crate::web::error::ErrorBody;
use crate::web::pages::{Me, html};

/// A signed-in administrator; everyone else gets 403 (or the sign-in page).
pub(crate) struct Admin(pub CurrentUser);

impl FromRequestParts<AppState> for Admin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let user = CurrentUser::from_request_parts(parts, state).await?;
        if user.is_admin() {
            Ok(Admin(user))
        } else {
            Err(AppError::AdminOnly)
        }
    }
}

impl Admin {
    pub(crate) fn username(&self) -> &str {
        &self.0.user.username
    }

    /// Records that this admin did `kind` to `target` (a desktop, type or setting).
    pub(crate) async fn on_target(&self, state: &AppState, kind: AuditKind, target: &str, detail: impl Into<String>) {
        let event = AuditEvent::new(kind, detail).actor(self.username()).target(target);
        audit_log::record(&state.store, event).await;
    }

    /// Records that this admin did `kind` to `username`'s account.
    pub(crate) async fn on_user(&self, state: &AppState, kind: AuditKind, username: &str, detail: impl Into<String>) {
        let event = AuditEvent::new(kind, detail).actor(self.username()).user(username);
        audit_log::record(&state.store, event).await;
    }
}

/// What an admin action can fail with, beyond the portal's common errors.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AdminError {
    /// A field is wrong; the text names it and says what is allowed.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the file is larger than the limit of {limit_kib} KiB")]
    TooLarge { limit_kib: usize },
    #[error("{0}")]
    UnsupportedImage(String),
    #[error(transparent)]
    App(#[from] AppError),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(m) => AdminError::Invalid(m),
            StoreError::Conflict(m) => AdminError::Conflict(m),
            other => AdminError::App(AppError::Store(other)),
        }
    }
}

impl From<LifecycleError> for AdminError {
    fn from(e: LifecycleError) -> Self {
        AdminError::App(AppError::Lifecycle(e))
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let detail = self.to_string();
        let (status, code, message_key) = match self {
            AdminError::App(e) => return e.into_response(),
            AdminError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid", "err_admin_invalid"),
            AdminError::Conflict(_) => (StatusCode::CONFLICT, "conflict", "err_admin_conflict"),
            AdminError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large", "err_upload_too_large"),
            AdminError::UnsupportedImage(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_image",
                "err_upload_type",
            ),
        };
        let mut resp = status.into_response();
        // The error renderer turns this into a page or JSON in the user's language.
        resp.extensions_mut().insert(Arc::new(ErrorBody {
            code,
            message_key,
            detail: Some(detail),
            args: Vec::new(),
        }));
        resp
    }
}

/// A submitted `application/x-www-form-urlencoded` form. Repeated names (checkboxes) keep
/// every value.
pub(crate) struct Form(pub(crate) Vec<(String, String)>);

impl Form {
    pub(crate) fn parse(body: &Bytes) -> Form {
        Form(
            url::form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `name`, or "".
    pub(crate) fn get(&self, name: &str) -> &str {
        self.0.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
    }

    pub(crate) fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.0.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub(crate) fn checked(&self, name: &str) -> bool {
        !self.get(name).is_empty()
    }
}

/// A form an admin submitted: who, the fields, and the page language.
pub(crate) struct AdminForm {
    pub admin: Admin,
    pub form: Form,
    pub lang: Lang,
}

impl FromRequest<AppState> for AdminForm {
    type Rejection = AdminError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let admin = Admin::from_request_parts(&mut parts, state).await?;
        let headers = parts.headers.clone();
        let body = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|e| match e.status() {
                StatusCode::PAYLOAD_TOO_LARGE => AdminError::App(AppError::TooLarge {
                    limit: crate::web::FORM_BODY_LIMIT,
                }),
                _ => AdminError::Invalid(e.body_text()),
            })?;
        let form = Form::parse(&body);
        Ok(AdminForm {
            admin,
            form,
            lang: Lang::from_headers(&headers),
        })
    }
}

/// Unix seconds as `YYYY-MM-DD HH:MM` UTC, or an empty string.
pub(crate) fn when(ts: Option<i64>) -> String {
    let Some(ts) = ts else { return String::new() };
    let days = ts.div_euclid(86_400);
    let secs = ts.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60
    )
}

/// One desktop in the admin overview.
pub(crate) struct AdminRow {
    pub id: String,
    pub owner: String,
    pub type_key: String,
    pub running: bool,
    pub state_key: &'static str,
    pub reason: Option<String>,
    pub started: String,
    pub last_input: String,
}

/// One audit entry as the pages show it.
pub(crate) struct AuditRow {
    pub at: String,
    pub kind_key: String,
    pub actor: String,
    pub username: String,
    pub target: String,
    pub detail: String,
}

impl AuditRow {
    pub(crate) fn new(e: AuditEntry) -> Self {
        AuditRow {
            at: when(Some(e.at)),
            kind_key: format!("audit_{}", e.kind),
            actor: e.actor.unwrap_or_default(),
            username: e.username.unwrap_or_default(),
            target: e.target.unwrap_or_default(),
            detail: e.detail,
        }
    }
}

#[derive(Template)]
#[template(path = "admin.html")]
pub(crate) struct AdminPage<'a> {
    pub lang: Lang,
    pub me: Me<'a>,
    pub section: &'static str,
    pub runtime_ok: bool,
    pub reports_stats: bool,
    pub running: usize,
    /// Desktops have origins of their own, so administrators may open them.
    pub desktop_origins: bool,
    pub desktops: Vec<AdminRow>,
    /// The latest audit entries.
    pub entries: Vec<AuditRow>,
}

/// `GET /admin`.
pub(crate) async fn show(State(state): State<AppState>, admin: Admin, lang: Lang) -> Result<Html<String>, AppError> {
    let desktops: Vec<AdminRow> = state
        .store
        .all_desktops()
        .await?
        .into_iter()
        .map(|d| AdminRow {
            running: matches!(d.state, DesktopState::Running | DesktopState::Starting),
            state_key: state_key(Some(d.state)),
            reason: StopReason::of(&d).map(|r| r.to_string()),
            started: when(d.started_at),
            last_input: when(d.last_activity_at),
            owner: d.username,
            type_key: d.type_key,
            id: d.id,
        })
        .collect();
    let running = desktops.iter().filter(|d| d.running).count();
    let (recent, _) = state
        .store
        .audit_page(&AuditFilter {
            limit: 10,
            ..AuditFilter::default()
        })
        .await?;
    html(&AdminPage {
        lang,
        me: Me::new(&admin.0),
        section: "desktops",
        runtime_ok: state.runtime.ping().await.is_ok(),
        reports_stats: state.runtime.starts_desktops(),
        running,
        desktop_origins: state.desktop_origins.is_some(),
        desktops,
        entries: recent.into_iter().map(AuditRow::new).collect(),
    })
}

/// `POST /admin/desktops`: `action` = `stop` | `remove` | `stop_all` | `cleanup` on the
/// checked `id`s (the first two). Back to the overview.
pub(crate) async fn act(
    State(state): State<AppState>,
    AdminForm { admin, form, .. }: AdminForm,
) -> Result<Redirect, AdminError> {
    // A row's own button sends `row=ACTION:ID`; the bulk buttons send `action` and the
    // checked `id`s.
    let (action, ids): (&str, Vec<&str>) = match form.get("row").split_once(':') {
        Some((action, id)) => (action, vec![id]),
        None => (form.get("action"), form.all("id").collect()),
    };
    let actions = AdminActions {
        desktops: &state.desktops,
        store: &state.store,
        admin: &admin.0.user,
    };
    match action {
        "stop" | "remove" if ids.is_empty() => {
            return Err(AdminError::Invalid("id: choose at least one desktop".into()));
        }
        "stop" => actions.stop(&ids).await?,
        "remove" => actions.remove(&ids).await?,
        "stop_all" => {
            actions.stop_all().await?;
        }
        "cleanup" => {
            actions.cleanup().await?;
        }
        other => {
            return Err(AdminError::Invalid(format!(
                "action: {other:?} is not one of stop, remove, stop_all, cleanup"
            )));
        }
    }
    Ok(Redirect::to("/admin"))
}

/// `GET /api/admin/desktops/stats`: CPU and memory of each running desktop, read in
/// parallel (each reading takes the engine about a second). Left out where the runtime reports none.
#[utoipa::path(get, path = "/api/admin/desktops/stats", tag = "admin",
    summary = "CPU and memory of the running desktops",
    security(("session" = [])),
    responses(
        (status = 200, description = "CPU and memory of each running desktop, by id", body = StatsResponse),
        (status = 401, description = "Not signed in", body = ErrorResponse),
        (status = 403, description = "Not an administrator", body = ErrorResponse),
    ),
)]
pub(crate) async fn stats(State(state): State<AppState>, _admin: Admin) -> Result<Json<StatsResponse>, AppError> {
    let running: Vec<String> = state
        .store
        .all_desktops()
        .await?
        .into_iter()
        .filter(|d| d.state == DesktopState::Running)
        .map(|d| d.id)
        .collect();
    let readings = futures_util::future::join_all(running.iter().map(|id| {
        let runtime = state.runtime.clone();
        async move {
            let reading = tokio::time::timeout(std::time::Duration::from_secs(5), runtime.stats(id)).await;
            (id.clone(), reading)
        }
    }))
    .await;
    let mut stats = BTreeMap::new();
    for (id, reading) in readings {
        match reading {
            Ok(Ok(Some(s))) => {
                stats.insert(id, StatsView::from(s));
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => tracing::debug!(desktop = %id, error = %e, "no resource stats"),
            Err(_) => tracing::debug!(desktop = %id, "resource stats timed out"),
        }
    }
    Ok(Json(StatsResponse { stats }))
}

#[cfg(test)]
mod tests {
    use super::when;

    #[test]
    fn timestamps_render_as_utc_dates() {
        assert_eq!(when(Some(0)), "1970-01-01 00:00 UTC");
        assert_eq!(when(Some(1_795_668_878)), "2026-11-26 04:54 UTC");
        assert_eq!(when(Some(951_782_400)), "2000-02-29 00:00 UTC");
        assert_eq!(when(None), "");
    }
}
