//! PDF previews on the preview origin (`p0-preview` under the desktop hosts, see
//! `net/desktop_origin.rs`). Chromium's PDF viewer does not run in a document with
//! `Content-Security-Policy: sandbox`, so a PDF cannot be previewed on the portal's origin the
//! way images and text are. Here it gets an origin of its own that holds no portal cookie and
//! serves nothing but the one file a short-lived ticket names: whatever the PDF does, it does
//! as nobody. Only files ending in `.pdf` are served, always as `application/pdf` with
//! `nosniff`, so no HTML or SVG ever renders here either.

use axum::extract::Request;
use axum::response::{IntoResponse, Redirect, Response};
use http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY};
use http::{HeaderName, HeaderValue, Method, StatusCode};
use percent_encoding::utf8_percent_encode;
use portal_files::{EntryKind, RelPath};

use crate::auth::CurrentUser;
use crate::domain::files::{PATH_SEGMENT, SpaceKind};
use crate::state::AppState;
use crate::web::error::AppError;
use crate::web::files::{file_response, open_as};

/// Paths on the preview origin: `/.ird/preview/{ticket}/{name}` (the name only for the
/// viewer's title and a download's file name).
const PREVIEW_PATH: &str = "/.ird/preview/";

/// Whether `name` is previewed through the preview origin.
pub(crate) fn is_pdf(name: &str) -> bool {
    name.rsplit_once('.')
        .is_some_and(|(_, ext)| ext.eq_ignore_ascii_case("pdf"))
}

/// From the file manager: a redirect to the PDF's preview URL on the preview origin, or
/// `None` when the portal has no desktop origins (then the PDF is downloaded instead).
pub(crate) async fn redirect(
    state: &AppState,
    user: &CurrentUser,
    kind: &SpaceKind,
    path: &RelPath,
) -> Result<Option<Response>, AppError> {
    let Some(origins) = state.desktop_origins.as_ref() else {
        return Ok(None);
    };
    let name = path.split_last().map(|(_, n)| n.to_string()).unwrap_or_default();
    let ticket = state.previews.issue(&user.user.id, kind, path).await?;
    let url = format!(
        "{}{PREVIEW_PATH}{ticket}/{}",
        origins.preview_origin(),
        utf8_percent_encode(&name, PATH_SEGMENT)
    );
    Ok(Some(Redirect::to(&url).into_response()))
}

/// A request on the preview origin. Every refusal is one plain 404: the origin tells a prober
/// nothing about which tickets or files exist.
pub(crate) async fn serve(state: &AppState, req: Request) -> Response {
    // Only the method and path matter; the request (whose body is not `Sync`) is not held
    // across the reads below.
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    drop(req);
    let mut resp = match serve_file(state, &method, &path).await {
        Ok(resp) => resp,
        Err(e) => {
            if e.status().is_server_error() {
                tracing::warn!(error = %e, "a PDF preview failed");
            }
            (StatusCode::NOT_FOUND, "not found\n").into_response()
        }
    };
    let h = resp.headers_mut();
    h.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // Nothing but the viewer's own loads of this file: no other site embeds it, no script or
    // connection goes anywhere (`object-src 'self'` is the viewer's embed of the file itself).
    h.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; object-src 'self'; frame-ancestors 'none'"),
    );
    h.insert(
        HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
    resp
}

async fn serve_file(state: &AppState, method: &Method, path: &str) -> Result<Response, AppError> {
    if method != Method::GET && method != Method::HEAD {
        return Err(AppError::NotFound);
    }
    let rest = path.strip_prefix(PREVIEW_PATH).ok_or(AppError::NotFound)?;
    let token = rest.split('/').next().unwrap_or_default();
    let ticket = state.previews.get(token).await?.ok_or(AppError::NotFound)?;
    // The user's access now, not when the ticket was made (a class left, an account deleted).
    let user = state
        .store
        .user_by_id(&ticket.user_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let space = open_as(state, &user, &ticket.kind).await?;
    let (file, entry) = space.open_read(ticket.path).await?;
    if entry.kind != EntryKind::File || !is_pdf(&entry.name) {
        return Err(AppError::NotFound);
    }
    let mut resp = file_response(file, &entry, false);
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/pdf"));
    if let Some(v) = crate::web::files::disposition(&entry.name, true) {
        resp.headers_mut().insert(http::header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}
