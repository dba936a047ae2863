//! The files API: `/api/files/{space}/{path}` lists, downloads, uploads (streamed, never
//! buffered), creates folders, moves, copies and deletes into the trash; `/api/trash/{space}`
//! lists and restores. Same session, CSRF header and Origin rules as the rest of the API.

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt as _;
use http::StatusCode;
use portal_files::{EntryKind, OnClash, RelPath};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::CurrentUser;
use crate::domain::files::SpaceKind;
use crate::domain::unix_now;
use crate::state::AppState;
use crate::web::api::types::{Csrf, ErrorResponse};
use crate::web::error::AppError;
use crate::web::files::{
    FileTarget, audit_change, count_write, file_response, open, parse_path, write_stream, zip_download,
};

/// One entry of a folder. Links are shown as links and never followed.
#[derive(Serialize, ToSchema)]
pub(crate) struct FileEntry {
    #[schema(example = "Übung 1.pdf")]
    name: String,
    /// `file`, `dir`, `link` or `other` (pipes, sockets: listed, never opened).
    #[schema(example = "file")]
    kind: &'static str,
    /// Bytes (files only).
    size: u64,
    /// Unix seconds.
    modified: i64,
}

/// A folder's entries, whether this user may change it, and the quota.
#[derive(Serialize, ToSchema)]
pub(crate) struct FileList {
    entries: Vec<FileEntry>,
    writable: bool,
    /// Bytes in this space (its files only).
    used: u64,
    /// Bytes allowed; absent: no quota.
    quota: Option<u64>,
}

/// What was written, under which name (a taken name may have got a number).
#[derive(Serialize, ToSchema)]
pub(crate) struct Written {
    #[schema(example = "Übung 1 (2).pdf")]
    name: String,
    size: u64,
}

#[derive(Deserialize, IntoParams)]
pub(crate) struct GetQuery {
    /// `true` on a folder: the folder as one zip, built while it downloads.
    #[serde(default)]
    zip: bool,
}

#[derive(Deserialize, IntoParams)]
pub(crate) struct PutQuery {
    /// `true`: replace an existing file (never a folder).
    #[serde(default)]
    overwrite: bool,
    /// `true`: take "name (2).ext" when the name is taken.
    #[serde(default)]
    rename: bool,
}

/// `mkdir` (at the path), `move` or `copy` (to `to`, a path in the same space).
#[derive(Deserialize, ToSchema)]
#[serde(tag = "op", rename_all = "lowercase")]
pub(crate) enum FileOp {
    Mkdir,
    Move { to: String },
    Copy { to: String },
}

/// One deleted entry, restorable until `trash_days` after `deleted_at`.
#[derive(Serialize, ToSchema)]
pub(crate) struct TrashEntry {
    id: String,
    original: String,
    deleted_at: i64,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct TrashList {
    items: Vec<TrashEntry>,
    trash_days: u64,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct Restored {
    /// Where it went (a taken name gets a number).
    path: String,
}

fn kind_str(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::File => "file",
        EntryKind::Dir => "dir",
        EntryKind::Link => "link",
        EntryKind::Other => "other",
    }
}

/// `GET /api/files/{space}/{path}`: a folder's entries as JSON, a file's bytes.
#[utoipa::path(get, path = "/api/files/{space}/{path}", tag = "files",
    summary = "List a folder or download a file",
    security(("session" = [])),
    params(GetQuery, ("space" = String, Path, description = "`home` or `shared`"), ("path" = String, Path, description = "Path in the space")),
    responses(
        (status = 200, description = "A folder's entries (or, with `zip=true`, the folder as `application/zip`), or a file's bytes (`application/octet-stream`, as an attachment)", body = FileList),
        (status = 400, description = "A path component is not a name", body = ErrorResponse),
        (status = 401, description = "Not signed in", body = ErrorResponse),
        (status = 404, description = "No such space, file or folder", body = ErrorResponse),
        (status = 409, description = "A link or a pipe: shown, never opened", body = ErrorResponse),
    ),
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    user: CurrentUser,
    target: FileTarget,
    Query(q): Query<GetQuery>,
) -> Result<Response, AppError> {
    let space = open(&state, &user, &target.kind).await?;
    if space.stat(target.path.clone()).await?.kind != EntryKind::Dir {
        let (file, entry) = space.open_read(target.path).await?;
        return Ok(file_response(file, &entry, false));
    }
    if q.zip {
        return zip_download(&state, space, target.path).await;
    }
    let entries = space
        .list(target.path)
        .await?
        .into_iter()
        .map(|e| FileEntry {
            kind: kind_str(e.kind),
            name: e.name,
            size: e.size,
            modified: e.modified,
        })
        .collect();
    let usage = space.usage().await?;
    Ok(Json(FileList {
        entries,
        writable: space.writable,
        used: usage.used,
        quota: usage.quota,
    })
    .into_response())
}

/// `GET /api/files/{space}`: the space's top folder.
#[utoipa::path(get, path = "/api/files/{space}", tag = "files",
    summary = "List a space's top folder",
    security(("session" = [])),
    params(GetQuery, ("space" = String, Path, description = "`home` or `shared`")),
    responses(
        (status = 200, description = "The entries, whether this user may change them, and the quota (or, with `zip=true`, everything as `application/zip`)", body = FileList),
        (status = 401, description = "Not signed in", body = ErrorResponse),
        (status = 404, description = "No such space", body = ErrorResponse),
    ),
)]
pub(crate) async fn root(
    state: State<AppState>,
    user: CurrentUser,
    target: FileTarget,
    q: Query<GetQuery>,
) -> Result<Response, AppError> {
    get(state, user, target, q).await
}

/// `PUT /api/files/{space}/{path}` with the file as the raw body: 201.
#[utoipa::path(put, path = "/api/files/{space}/{path}", tag = "files",
    summary = "Upload a file",
    security(("session" = [])),
    params(Csrf, PutQuery, ("space" = String, Path, description = "`home` or `shared`"), ("path" = String, Path, description = "The new file's path; its folder must exist")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 201, description = "Stored (complete: a broken-off upload leaves nothing)", body = Written),
        (status = 400, description = "Not a name a file may get (control characters, too long, reserved)", body = ErrorResponse),
        (status = 403, description = "Read-only for this user, or CSRF token missing", body = ErrorResponse),
        (status = 404, description = "The folder does not exist", body = ErrorResponse),
        (status = 409, description = "The name is taken (use `overwrite` or `rename`) or is a folder", body = ErrorResponse),
        (status = 413, description = "Larger than the upload limit or what is left of the quota; `detail` names the limit", body = ErrorResponse),
        (status = 429, description = "More file changes than `files.writes_per_minute`; `Retry-After` says when to try again, nothing was changed", body = ErrorResponse),
    ),
)]
pub(crate) async fn put(
    State(state): State<AppState>,
    user: CurrentUser,
    target: FileTarget,
    Query(q): Query<PutQuery>,
    body: Body,
) -> Result<Response, AppError> {
    count_write(&state, &user)?;
    let space = open(&state, &user, &target.kind).await?;
    let on_clash = match (q.overwrite, q.rename) {
        (true, _) => OnClash::Replace,
        (false, true) => OnClash::Number,
        (false, false) => OnClash::Fail,
    };
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let (name, size) = write_stream(&space, target.path, stream, on_clash).await?;
    Ok((
        StatusCode::CREATED,
        Json(Written {
            name: name.to_string(),
            size,
        }),
    )
        .into_response())
}

/// `POST /api/files/{space}/{path}` `{"op": "mkdir" | "move" | "copy", "to": PATH}`.
#[utoipa::path(post, path = "/api/files/{space}/{path}", tag = "files",
    summary = "Create a folder, move or copy",
    security(("session" = [])),
    params(Csrf, ("space" = String, Path, description = "`home` or `shared`"), ("path" = String, Path, description = "The folder to create, or what to move or copy")),
    request_body = FileOp,
    responses(
        (status = 201, description = "Done", body = Written),
        (status = 400, description = "No such op, or a name that is not allowed", body = ErrorResponse),
        (status = 403, description = "Read-only for this user, or CSRF token missing", body = ErrorResponse),
        (status = 404, description = "Not found", body = ErrorResponse),
        (status = 409, description = "The target exists, or a folder into itself", body = ErrorResponse),
        (status = 413, description = "A copy larger than what is left of the quota", body = ErrorResponse),
        (status = 429, description = "More file changes than `files.writes_per_minute`; `Retry-After` says when to try again, nothing was changed", body = ErrorResponse),
    ),
)]
pub(crate) async fn post(
    State(state): State<AppState>,
    user: CurrentUser,
    target: FileTarget,
    body: Result<Json<FileOp>, JsonRejection>,
) -> Result<Response, AppError> {
    let Json(op) = body.map_err(|e| {
        AppError::BadRequest(format!(
            "{}; send {{\"op\": \"mkdir\"}}, {{\"op\": \"move\", \"to\": PATH}} or {{\"op\": \"copy\", \"to\": PATH}}",
            e.body_text()
        ))
    })?;
    count_write(&state, &user)?;
    let space = open(&state, &user, &target.kind).await?;
    let last = |p: &portal_files::RelPath| p.split_last().map(|(_, n)| n.to_string()).unwrap_or_default();
    let written = match op {
        FileOp::Mkdir => {
            let name = last(&target.path);
            space.mkdir(target.path).await?;
            Written { name, size: 0 }
        }
        FileOp::Move { to } => {
            let name = space.rename(target.path, parse_path(&to)?).await?;
            Written {
                name: name.to_string(),
                size: 0,
            }
        }
        FileOp::Copy { to } => {
            let (name, size) = space.copy(target.path, parse_path(&to)?).await?;
            Written {
                name: name.to_string(),
                size,
            }
        }
    };
    Ok((StatusCode::CREATED, Json(written)).into_response())
}

/// `DELETE /api/files/{space}/{path}`: into the trash, 204.
#[utoipa::path(delete, path = "/api/files/{space}/{path}", tag = "files",
    summary = "Delete into the trash",
    security(("session" = [])),
    params(Csrf, ("space" = String, Path, description = "`home` or `shared`"), ("path" = String, Path, description = "What to delete")),
    responses(
        (status = 204, description = "In the trash, restorable for `trash_days`"),
        (status = 403, description = "Read-only for this user, the space's root, or CSRF token missing", body = ErrorResponse),
        (status = 404, description = "Not found", body = ErrorResponse),
        (status = 429, description = "More file changes than `files.writes_per_minute`; `Retry-After` says when to try again, nothing was changed", body = ErrorResponse),
    ),
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    user: CurrentUser,
    target: FileTarget,
) -> Result<StatusCode, AppError> {
    count_write(&state, &user)?;
    let space = open(&state, &user, &target.kind).await?;
    let what = target.path.to_string();
    space.delete(target.path, unix_now()).await?;
    audit_change(&state, &user, &space.kind, "deleted", &what).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/trash/{space}`: what was deleted there and can be restored.
#[utoipa::path(get, path = "/api/trash/{space}", tag = "files",
    summary = "The trash of a space",
    security(("session" = [])),
    params(("space" = String, Path, description = "`home` or `shared`")),
    responses(
        (status = 200, description = "Deleted entries, newest first", body = TrashList),
        (status = 401, description = "Not signed in", body = ErrorResponse),
        (status = 404, description = "No such space", body = ErrorResponse),
    ),
)]
pub(crate) async fn trash(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(space): Path<String>,
) -> Result<Json<TrashList>, AppError> {
    let space = open(&state, &user, &SpaceKind::parse(&space, RelPath::root())?.0).await?;
    let items = space
        .trash(unix_now())
        .await?
        .into_iter()
        .map(|i| TrashEntry {
            id: i.id,
            original: i.original,
            deleted_at: i.deleted_at,
        })
        .collect();
    Ok(Json(TrashList {
        items,
        trash_days: state.files.trash_days(),
    }))
}

/// `POST /api/trash/{space}/{id}/restore`: back where it was.
#[utoipa::path(post, path = "/api/trash/{space}/{id}/restore", tag = "files",
    summary = "Restore from the trash",
    security(("session" = [])),
    params(Csrf, ("space" = String, Path, description = "`home` or `shared`"), ("id" = String, Path, description = "The item's id from the trash list")),
    responses(
        (status = 200, description = "Restored; a name taken meanwhile got a number", body = Restored),
        (status = 403, description = "Read-only for this user, or CSRF token missing", body = ErrorResponse),
        (status = 404, description = "No such item (or already purged)", body = ErrorResponse),
        (status = 429, description = "More file changes than `files.writes_per_minute`; `Retry-After` says when to try again, nothing was changed", body = ErrorResponse),
    ),
)]
pub(crate) async fn restore(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((space, id)): Path<(String, String)>,
) -> Result<Json<Restored>, AppError> {
    count_write(&state, &user)?;
    let space = open(&state, &user, &SpaceKind::parse(&space, RelPath::root())?.0).await?;
    let path = space.restore(id).await?;
    Ok(Json(Restored { path: path.to_string() }))
}
