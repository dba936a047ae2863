//! The one error type at the HTTP edge, and the middleware that renders it per request.
//!
//! Handlers return [`AppError`]; its response carries an [`ErrorBody`] marker. The
//! [`render_errors`] middleware, which knows the request's language and whether its sub-router
//! serves pages or the JSON API ([`ErrorFormat`]), turns the marker into a localised HTML page,
//! a JSON error, or a redirect to the sign-in page.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use desktop_proxy::{ProxyError, UpgradeError};
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderValue, Method, StatusCode};
use portal_store::StoreError;
use tracing::{error, warn};

use crate::domain::lifecycle::LifecycleError;
use crate::i18n::Lang;
use crate::web::api::types::{ErrorDetail, ErrorResponse};
use crate::web::pages;
use desktop_runtime::RuntimeError;

/// Everything that can go wrong in a request, from the user's point of view.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not signed in")]
    Unauthorized,
    #[error("wrong username or password")]
    BadCredentials,
    #[error("too many failed sign-in attempts")]
    TooManyAttempts,
    #[error("the desktop belongs to someone else")]
    ForbiddenDesktop,
    #[error("WebSocket from foreign origin {0:?}")]
    ForeignOrigin(String),
    #[error("missing or wrong CSRF token")]
    Csrf,
    #[error("no such page")]
    NotFound,
    #[error("desktop {0:?} is unknown or not running")]
    DesktopNotFound(String),
    #[error("no desktop selected for /websockify")]
    NoDesktopSelected,
    /// Desktops have origins of their own; this one lives at the given origin.
    #[error("this desktop is served at {0}")]
    DesktopOnOwnOrigin(String),
    /// Desktops share the portal's origin, where only their owners may load them.
    #[error("only the owner may open a desktop until desktop_origin is set")]
    OwnerOnly,
    #[error(transparent)]
    BadUpgrade(#[from] UpgradeError),
    #[error("{0}")]
    BadRequest(String),
    #[error("request larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("only administrators may do this")]
    AdminOnly,
    /// `screens.watching = false`: teachers see thumbnails only.
    #[error("watching students' screens is switched off on this installation")]
    WatchingOff,
    #[error("at most {0} live-update streams per user are open at once")]
    TooManyStreams(usize),
    #[error("at most {0} desktop WebSockets per user are open at once")]
    TooManyWebSockets(usize),

    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    #[error(transparent)]
    Teacher(#[from] crate::web::teacher::TeacherError),
    #[error(transparent)]
    Help(#[from] crate::domain::help::HelpError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
    #[error(transparent)]
    Oidc(#[from] iserv_oidc::OidcError),
    #[error(transparent)]
    Files(#[from] crate::domain::files::SpaceError),
    #[error("at most {per_minute} file changes per minute; the next is possible in {retry_after} s")]
    TooManyFileWrites { per_minute: u32, retry_after: u64 },
}

impl From<crate::domain::handins::HandinError> for AppError {
    fn from(e: crate::domain::handins::HandinError) -> Self {
        match e {
            crate::domain::handins::HandinError::Store(e) => AppError::Store(e),
            crate::domain::handins::HandinError::Files(e) => AppError::Files(e),
        }
    }
}

/// What the renderer needs: a stable code for machines, a catalogue key for people, and an
/// optional technical detail (always English, never secret).
#[derive(Debug, Clone)]
pub(crate) struct ErrorBody {
    pub code: &'static str,
    pub message_key: &'static str,
    pub detail: Option<String>,
    /// The message's variables (a limit, a wait), if it has any.
    pub args: Vec<(&'static str, i64)>,
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Unauthorized | AppError::BadCredentials => StatusCode::UNAUTHORIZED,
            AppError::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
            AppError::ForeignOrigin(_) | AppError::Csrf | AppError::DesktopOnOwnOrigin(_) | AppError::OwnerOnly => {
                StatusCode::FORBIDDEN
            }
            // Someone else's desktop answers like a missing one: no oracle for who has which.
            AppError::NotFound
            | AppError::DesktopNotFound(_)
            | AppError::ForbiddenDesktop
            | AppError::NoDesktopSelected => StatusCode::NOT_FOUND,
            AppError::BadUpgrade(_) | AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Proxy(e) => e.status(),
            AppError::Store(StoreError::NotFound) => StatusCode::NOT_FOUND,
            AppError::Store(StoreError::Conflict(_)) => StatusCode::CONFLICT,
            AppError::Store(StoreError::Invalid(_)) => StatusCode::BAD_REQUEST,
            AppError::Store(_) | AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            AppError::Oidc(e) => e.status(),
            AppError::AdminOnly | AppError::WatchingOff => StatusCode::FORBIDDEN,
            AppError::TooManyStreams(_) | AppError::TooManyWebSockets(_) | AppError::TooManyFileWrites { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            AppError::Teacher(e) => e.status(),
            AppError::Help(e) => crate::web::help::status(e),
            AppError::Files(e) => e.status(),
            AppError::Lifecycle(e) => match e {
                LifecycleError::UnknownType(_) | LifecycleError::NotFound(_) => StatusCode::NOT_FOUND,
                LifecycleError::TypeDisabled(_) | LifecycleError::Unsupported => StatusCode::CONFLICT,
                LifecycleError::HomeOverQuota { .. } => StatusCode::INSUFFICIENT_STORAGE,
                LifecycleError::TypeNotAllowed(_) => StatusCode::FORBIDDEN,
                LifecycleError::Forbidden => StatusCode::NOT_FOUND,
                LifecycleError::LimitUser { .. } | LifecycleError::StartInFlight => StatusCode::TOO_MANY_REQUESTS,
                LifecycleError::LimitTotal { .. } | LifecycleError::StartQueueFull { .. } => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                LifecycleError::Runtime(RuntimeError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
                LifecycleError::Runtime(RuntimeError::NotFound(_)) => StatusCode::NOT_FOUND,
                LifecycleError::Runtime(_) => StatusCode::BAD_GATEWAY,
                LifecycleError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            },
        }
    }

    /// The catalogue key of the message people see.
    pub(crate) fn message_key(&self) -> &'static str {
        self.body().message_key
    }

    fn body(&self) -> ErrorBody {
        let (code, message_key) = match self {
            AppError::Unauthorized => ("unauthorized", "err_unauthorized"),
            AppError::BadCredentials => ("bad_credentials", "err_bad_credentials"),
            AppError::TooManyAttempts => ("too_many_attempts", "err_too_many_attempts"),
            AppError::ForbiddenDesktop => ("desktop_not_found", "err_desktop_not_found"),
            AppError::ForeignOrigin(_) => ("foreign_origin", "err_foreign_origin"),
            AppError::Csrf => ("csrf", "err_csrf"),
            AppError::NotFound => ("not_found", "err_not_found"),
            AppError::DesktopNotFound(_) => ("desktop_not_found", "err_desktop_not_found"),
            AppError::NoDesktopSelected => ("no_desktop_selected", "err_no_desktop_selected"),
            AppError::DesktopOnOwnOrigin(_) => ("desktop_own_origin", "err_desktop_own_origin"),
            AppError::OwnerOnly => ("desktop_origin_required", "err_desktop_origin_required"),
            AppError::BadUpgrade(_) => ("bad_upgrade", "err_bad_upgrade"),
            AppError::BadRequest(_) => ("bad_request", "err_bad_request"),
            AppError::TooLarge { .. } => ("too_large", "err_too_large"),
            AppError::Proxy(ProxyError::Connect { .. }) => ("desktop_unreachable", "err_desktop_unreachable"),
            AppError::Proxy(ProxyError::Timeout(_)) => ("desktop_timeout", "err_desktop_timeout"),
            AppError::Proxy(ProxyError::Request(_)) => ("bad_request", "err_bad_request"),
            AppError::Proxy(_) => ("desktop_bad_response", "err_desktop_bad_response"),
            AppError::Store(StoreError::NotFound) => ("not_found", "err_not_found"),
            AppError::Store(StoreError::Conflict(_) | StoreError::Invalid(_)) => ("invalid", "err_bad_request"),
            AppError::Store(_) | AppError::Unavailable(_) => ("unavailable", "err_unavailable"),
            AppError::Internal(_) => ("internal", "err_internal"),
            AppError::Oidc(e) => e.code_and_key(),
            AppError::AdminOnly => ("admin_only", "err_admin_only"),
            AppError::WatchingOff => ("watching_off", "err_watching_off"),
            AppError::TooManyStreams(_) => ("too_many_streams", "err_too_many_streams"),
            AppError::TooManyWebSockets(_) => ("too_many_websockets", "err_too_many_websockets"),
            AppError::Teacher(e) => e.code_and_key(),
            AppError::Help(e) => crate::web::help::code_and_key(e),
            AppError::Files(e) => e.code_and_key(),
            AppError::TooManyFileWrites { .. } => ("too_many_file_changes", "err_too_many_file_changes"),
            AppError::Lifecycle(e) => match e {
                LifecycleError::UnknownType(_) => ("unknown_type", "err_unknown_type"),
                LifecycleError::TypeDisabled(_) => ("type_disabled", "err_type_disabled"),
                LifecycleError::TypeNotAllowed(_) => ("type_not_allowed", "err_type_not_allowed"),
                LifecycleError::LimitUser { .. } => ("limit_user", "err_limit_user"),
                LifecycleError::LimitTotal { .. } => ("limit_total", "err_limit_total"),
                LifecycleError::StartQueueFull { .. } => ("start_queue_full", "err_start_queue_full"),
                LifecycleError::StartInFlight => ("start_in_flight", "err_start_in_flight"),
                LifecycleError::NotFound(_) => ("desktop_not_found", "err_desktop_not_found"),
                LifecycleError::Forbidden => ("desktop_not_found", "err_desktop_not_found"),
                LifecycleError::Unsupported => ("unsupported", "err_unsupported"),
                LifecycleError::HomeOverQuota { .. } => ("home_over_quota", "err_home_over_quota"),
                LifecycleError::Runtime(RuntimeError::Unavailable(_)) => {
                    ("runtime_unavailable", "err_runtime_unavailable")
                }
                LifecycleError::Runtime(RuntimeError::NotFound(_)) => ("desktop_not_found", "err_desktop_not_found"),
                LifecycleError::Runtime(_) => ("runtime_error", "err_runtime_error"),
                LifecycleError::Store(_) => ("unavailable", "err_unavailable"),
            },
        };
        // Details that help the user act; internal causes stay in the log.
        let detail = match self {
            AppError::Oidc(e) => e.detail(),
            AppError::Files(e) => e.detail(),
            AppError::DesktopOnOwnOrigin(origin) => Some(origin.clone()),
            AppError::BadUpgrade(_)
            | AppError::TooManyStreams(_)
            | AppError::TooManyWebSockets(_)
            | AppError::TooManyFileWrites { .. }
            | AppError::BadRequest(_)
            | AppError::TooLarge { .. }
            // The desktop's address and the TLS or socket error stay in the log.
            | AppError::Proxy(ProxyError::Timeout(_))
            | AppError::Store(StoreError::Conflict(_) | StoreError::Invalid(_))
            | AppError::Lifecycle(
                LifecycleError::LimitUser { .. }
                | LifecycleError::LimitTotal { .. }
                | LifecycleError::StartQueueFull { .. }
                | LifecycleError::StartInFlight
                | LifecycleError::UnknownType(_)
                | LifecycleError::TypeDisabled(_)
                | LifecycleError::HomeOverQuota { .. }
                | LifecycleError::Runtime(_),
            ) => Some(self.to_string()),
            _ => None,
        };
        let args = match self {
            AppError::TooManyFileWrites {
                per_minute,
                retry_after,
            } => {
                vec![("limit", i64::from(*per_minute)), ("seconds", *retry_after as i64)]
            }
            AppError::Lifecycle(LifecycleError::HomeOverQuota { used_mib, quota_mib }) => {
                vec![("used_mib", *used_mib as i64), ("quota_mib", *quota_mib as i64)]
            }
            _ => Vec::new(),
        };
        ErrorBody {
            code,
            message_key,
            detail,
            args,
        }
    }
}

impl From<crate::auth::CsrfRejected> for AppError {
    fn from(_: crate::auth::CsrfRejected) -> Self {
        AppError::Csrf
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            error!(error = %ChainDisplay(&self), "request failed");
        } else if matches!(self, AppError::ForeignOrigin(_) | AppError::Csrf) {
            warn!(error = %self, "request refused");
        }
        let mut resp = status.into_response();
        if let AppError::TooManyFileWrites { retry_after, .. } = &self {
            resp.headers_mut()
                .insert(http::header::RETRY_AFTER, HeaderValue::from(*retry_after));
        }
        resp.extensions_mut().insert(Arc::new(self.body()));
        resp
    }
}

/// Shows an error with its causes on one line.
struct ChainDisplay<'a>(&'a dyn std::error::Error);

impl std::fmt::Display for ChainDisplay<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(e) = source {
            write!(f, ": {e}")?;
            source = e.source();
        }
        Ok(())
    }
}

/// How a sub-router's errors are shown; the router picks it per sub-router (`web/mod.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorFormat {
    /// The JSON API: always JSON.
    Json,
    /// Pages and everything else: JSON only for clients that ask for it, otherwise a page.
    Negotiate,
}

/// Renders [`AppError`] markers for the request that caused them.
pub(crate) async fn render_errors(State(format): State<ErrorFormat>, req: Request, next: Next) -> Response {
    let lang = Lang::from_headers(req.headers());
    let wants_json = format == ErrorFormat::Json
        || req
            .headers()
            .get(ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("application/json") && !a.contains("text/html"));
    let is_page_get = req.method() == Method::GET && req.headers().get(http::header::UPGRADE).is_none();
    let here = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());

    let resp = next.run(req).await;
    let Some(body) = resp.extensions().get::<Arc<ErrorBody>>().cloned() else {
        return resp;
    };
    let status = resp.status();
    if body.code == "unauthorized" && is_page_get && !wants_json {
        return Redirect::to(&format!("/login?next={}", urlencode(&here))).into_response();
    }
    let message = if body.args.is_empty() {
        lang.t(body.message_key).to_owned()
    } else {
        lang.t_with(body.message_key, &body.args)
    };
    let mut out = if wants_json {
        Json(ErrorResponse {
            error: ErrorDetail {
                code: body.code,
                detail: body.detail.clone(),
                message: message.clone(),
            },
        })
        .into_response()
    } else {
        let page = pages::ErrorPage::new(lang, status, &message, body.detail.as_deref());
        Html(page.render_html()).into_response()
    };
    *out.status_mut() = status;
    // Keep headers the handler set deliberately (e.g. WWW-Authenticate, Retry-After).
    for (name, value) in resp.headers() {
        if name != CONTENT_TYPE && name != http::header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    if !wants_json {
        out.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    }
    out
}

/// Percent-encodes a path for a `next=` parameter.
pub(crate) fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
