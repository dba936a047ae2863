//! `/files`: the file manager — the user's home and the school's shared folder, browsed,
//! uploaded to and tidied with plain forms (every action works without JavaScript;
//! `static/files.js` adds drag and drop with progress through the JSON API).
//!
//! Files are user content: a download is always `attachment`, except previews of images and
//! plain text, which come with `Content-Security-Policy: sandbox` and `nosniff`, so nothing a
//! user stored ever runs as the portal.

use std::collections::HashMap;

use axum::body::Body;
use axum::body::Bytes;
use axum::extract::{FromRequest as _, FromRequestParts, Multipart, Path, Query, Request, State};
use axum::response::{IntoResponse, Redirect, Response};
use futures_util::{Stream, StreamExt as _, TryStreamExt as _};
use http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderValue, StatusCode};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use portal_files::{Entry, EntryKind, FilesError, LimitKind, Name, OnClash, RelPath};
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::domain::files::{PATH_SEGMENT, Renamer, Space, SpaceError, SpaceKind, Transfer, Usage};
use crate::domain::unix_now;
use crate::i18n::Lang;
use crate::state::AppState;
use crate::web::FORM_BODY_LIMIT;
use crate::web::error::AppError;
use crate::web::pages::{Me, html, js_texts};

impl SpaceError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            SpaceError::UnknownSpace(_) => StatusCode::NOT_FOUND,
            SpaceError::ReadOnly => StatusCode::FORBIDDEN,
            SpaceError::Interrupted => StatusCode::SERVICE_UNAVAILABLE,
            SpaceError::Files(e) => match e {
                FilesError::BadName(_) => StatusCode::BAD_REQUEST,
                FilesError::NotFound | FilesError::NotADirectory => StatusCode::NOT_FOUND,
                FilesError::Exists
                | FilesError::NotEmpty
                | FilesError::IntoItself
                | FilesError::IsADirectory
                | FilesError::Link
                | FilesError::NotAFile => StatusCode::CONFLICT,
                FilesError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                FilesError::CrossDevice | FilesError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    /// Machine code and catalogue key.
    pub(crate) fn code_and_key(&self) -> (&'static str, &'static str) {
        match self {
            SpaceError::UnknownSpace(_) => ("unknown_space", "err_files_unknown_space"),
            SpaceError::ReadOnly => ("read_only", "err_files_read_only"),
            SpaceError::Interrupted => ("unavailable", "err_unavailable"),
            SpaceError::Files(e) => match e {
                FilesError::BadName(_) => ("bad_name", "err_files_bad_name"),
                FilesError::NotFound | FilesError::NotADirectory => ("not_found", "err_not_found"),
                FilesError::Exists => ("exists", "err_files_exists"),
                FilesError::NotEmpty => ("not_empty", "err_files_exists"),
                FilesError::IntoItself => ("into_itself", "err_files_into_itself"),
                FilesError::IsADirectory | FilesError::NotAFile => ("not_a_file", "err_files_not_a_file"),
                FilesError::Link => ("link", "err_files_link"),
                FilesError::TooLarge { limit } => match limit.kind {
                    LimitKind::Quota => ("quota", "err_files_quota"),
                    LimitKind::Upload => ("too_large", "err_files_too_large"),
                    LimitKind::Disk => ("disk_full", "err_files_disk_full"),
                },
                FilesError::CrossDevice | FilesError::Io(_) => ("internal", "err_internal"),
            },
        }
    }

    /// What the person can act on (the limit, the rule a name broke); nothing about the host.
    pub(crate) fn detail(&self) -> Option<String> {
        match self {
            SpaceError::UnknownSpace(_) | SpaceError::Files(FilesError::BadName(_) | FilesError::TooLarge { .. }) => {
                Some(self.to_string())
            }
            _ => None,
        }
    }
}

/// The space and path a request addresses: `/…/{space}` or `/…/{space}/{*path}`.
pub(crate) struct FileTarget {
    pub kind: SpaceKind,
    pub path: RelPath,
}

impl<S: Send + Sync> FromRequestParts<S> for FileTarget {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| AppError::BadRequest(e.body_text()))?;
        let path = parse_path(params.get("path").map_or("", String::as_str))?;
        let (kind, path) = SpaceKind::parse(params.get("space").map_or("", String::as_str), path)?;
        Ok(FileTarget { kind, path })
    }
}

pub(crate) fn parse_path(s: &str) -> Result<RelPath, AppError> {
    RelPath::parse(s).map_err(|e| SpaceError::Files(FilesError::BadName(e)).into())
}

/// Opens the addressed space for the signed-in user.
pub(crate) async fn open(state: &AppState, user: &CurrentUser, kind: &SpaceKind) -> Result<Space, AppError> {
    open_as(state, &user.user, kind).await
}

/// Opens the addressed space for `user` (also for a preview, which has no session).
pub(crate) async fn open_as(state: &AppState, user: &portal_store::User, kind: &SpaceKind) -> Result<Space, AppError> {
    let space = match kind {
        SpaceKind::Handin(id) | SpaceKind::Handins(id) | SpaceKind::Feedback(id) | SpaceKind::Feedbacks(id) => {
            let missing = || SpaceError::Files(FilesError::NotFound);
            // Sealed first when due: after it, everyone reads the sealed copy.
            let a = state.handins.current(id).await?.ok_or_else(missing)?;
            match kind {
                SpaceKind::Handin(_) => state.files.open_handin(user, &a, unix_now()).await?,
                SpaceKind::Handins(_) => state.files.open_handins(user, &a).await?,
                SpaceKind::Feedback(_) => state.files.open_feedback(user, &a).await?,
                _ => state.files.open_feedbacks(user, &a).await?,
            }
        }
        other => state.files.open(user, other.clone()).await?,
    };
    Ok(space)
}

/// Counts one file change of `user` against `files.writes_per_minute`, before anything is
/// done: a refused request has changed nothing.
pub(crate) fn count_write(state: &AppState, user: &CurrentUser) -> Result<(), AppError> {
    state
        .file_writes
        .take(&user.user.id)
        .map_err(|wait| AppError::TooManyFileWrites {
            per_minute: state.file_writes.per_minute(),
            retry_after: wait.as_secs_f64().ceil().max(1.0) as u64,
        })
}

/// A folder as a zip download; an assignment's hand-ins get a folder per student named by
/// username (they are stored by the students' stable home names).
pub(crate) async fn zip_download(state: &AppState, space: Space, path: RelPath) -> Result<Response, AppError> {
    let names: HashMap<String, String> = match &space.kind {
        SpaceKind::Handins(_) | SpaceKind::Feedbacks(_) if path.is_root() => state
            .store
            .list_users()
            .await?
            .into_iter()
            .map(|u| (u.home_name, u.username))
            .collect(),
        _ => HashMap::new(),
    };
    Ok(zip_response(
        space,
        path,
        Box::new(move |home| names.get(home).cloned()),
    ))
}

/// Types shown inline as a preview; everything else is downloaded. Never HTML, SVG or
/// anything else that can run script.
fn preview_type(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase())?;
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "txt" | "md" | "csv" | "log" | "py" | "java" | "c" | "rs" | "sh" => "text/plain; charset=utf-8",
        _ => return None,
    })
}

/// `Content-Disposition` for a stored name: an ASCII fallback and the exact UTF-8 name.
pub(crate) fn disposition(name: &str, inline: bool) -> Option<HeaderValue> {
    let ascii: String = name
        .chars()
        .map(|c| {
            if (c.is_ascii_graphic() && c != '"' && c != '\\') || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let kind = if inline { "inline" } else { "attachment" };
    let exact = utf8_percent_encode(name, NON_ALPHANUMERIC);
    HeaderValue::from_str(&format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{exact}")).ok()
}

/// Headers every response with user content gets: it never runs as the portal, is never
/// sniffed into something active, and is not cached by shared caches.
fn user_content_headers(resp: &mut Response, content_type: &'static str, disposition: Option<HeaderValue>) {
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(v) = disposition {
        h.insert(CONTENT_DISPOSITION, v);
    }
    h.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"),
    );
    h.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
}

/// A stored file as a response: streamed from disk, `attachment` unless a safe preview was
/// asked for, and never interpreted by the browser as the portal's own content.
pub(crate) fn file_response(file: std::fs::File, entry: &Entry, preview: bool) -> Response {
    let inline = preview.then(|| preview_type(&entry.name)).flatten();
    // 256 KiB reads: ReaderStream's default of 4 KiB made a 1 GiB download 14× slower than
    // `cp` (scripts/bench-files.sh).
    let reader = tokio_util::io::ReaderStream::with_capacity(tokio::fs::File::from_std(file), 256 * 1024);
    let body = Body::from_stream(reader);
    let mut resp = body.into_response();
    resp.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from(entry.size));
    user_content_headers(
        &mut resp,
        inline.unwrap_or("application/octet-stream"),
        disposition(&entry.name, inline.is_some()),
    );
    resp
}

/// A folder as a zip download, built while it is sent.
fn zip_response(space: Space, path: RelPath, rename: Renamer) -> Response {
    let name = path
        .split_last()
        .map_or_else(|| space.kind.folder_name(), |(_, n)| n.to_string());
    zip_stream(&name, move |writer| async move {
        space.zip(path, rename, writer).await.map(drop)
    })
}

/// A zip download named `name`.zip, written by `job` while it is sent: at most four 64 KiB
/// chunks wait in memory. A failure half-way ends the download early, so the browser reports
/// it broken rather than saving a truncated archive as complete.
pub(crate) fn zip_stream<F, Fut>(name: &str, job: F) -> Response
where
    F: FnOnce(ChannelWriter) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), SpaceError>> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    let writer = ChannelWriter {
        tx: tx.clone(),
        buf: Vec::with_capacity(ZIP_CHUNK),
    };
    tokio::spawn(async move {
        if let Err(e) = job(writer).await {
            tracing::warn!(error = %e, "a zip download broke off");
            let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    let mut resp = Body::from_stream(stream).into_response();
    user_content_headers(&mut resp, "application/zip", disposition(&format!("{name}.zip"), false));
    resp
}

const ZIP_CHUNK: usize = 64 * 1024;

/// The blocking side of [`zip_stream`]: bytes in 64 KiB chunks into the channel.
pub(crate) struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(ZIP_CHUNK)));
        // The download was cancelled: stop building the archive.
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "download cancelled"))
    }
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= ZIP_CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        let _ = self.send();
    }
}

/// Texts `static/files.js` shows.
const JS_TEXT_KEYS: &[&str] = &[
    "files_uploading",
    "files_upload_done",
    "files_upload_failed",
    "err_network",
];

/// One row of the listing.
pub(crate) struct Row {
    pub name: String,
    pub is_dir: bool,
    pub is_link: bool,
    pub is_other: bool,
    /// The entry's path for links and forms (`space/path`, percent-encoded per component).
    pub href: String,
    pub size: String,
    pub modified: String,
    pub previewable: bool,
}

/// A class tab.
pub(crate) struct Tab {
    pub label: String,
    pub href: String,
    pub current: bool,
}

/// One step of the breadcrumbs.
pub(crate) struct Crumb {
    pub label: String,
    pub href: String,
}

/// One item of the trash.
pub(crate) struct TrashRow {
    pub id: String,
    pub original: String,
    pub deleted: String,
}

#[derive(askama::Template)]
#[template(path = "files.html")]
pub(crate) struct FilesPage<'a> {
    pub lang: Lang,
    pub me: Me<'a>,
    pub space: &'static str,
    /// Where `static/files.js` uploads to (this space's API prefix).
    pub api_base: String,
    /// The user's classes, as tabs.
    pub classes: Vec<Tab>,
    /// A student's hand-ins, as tabs.
    pub handins: Vec<Tab>,
    /// On a hand-in: its due time.
    pub handin_due: Option<String>,
    /// On a hand-in: where the teacher's feedback on it is.
    pub feedback_href: Option<String>,
    /// Groups a folder here can be handed out to (teachers, in their home).
    pub publish_to: Vec<String>,
    pub here: String,
    pub crumbs: Vec<Crumb>,
    pub rows: Vec<Row>,
    pub writable: bool,
    pub usage: Option<(String, String, u64)>,
    /// More is kept here than the quota allows (a desktop wrote past it): said above the bar.
    pub over_quota: bool,
    pub trash: Vec<TrashRow>,
    pub trash_days: u64,
    pub max_upload: String,
    pub notice: Option<String>,
    pub js_texts: String,
    /// Folders a selection can be moved or copied to (`space/path` values for the form).
    pub targets: Vec<TargetFolder>,
}

/// A folder offered as the target of a move or copy.
pub(crate) struct TargetFolder {
    /// `home/Hausaufgaben`, `class/7a/`: what [`parse_target`] reads back.
    pub value: String,
    pub label: String,
}

/// At most this many folders of the current space are offered as targets (a huge home would
/// make every page heavy; deeper folders are reached by moving in steps).
const MAX_TARGETS: usize = 200;
const TARGET_DEPTH: usize = 3;

/// The folders a selection here can go to: the folders of this space (if the user may change
/// it, a few levels deep), and the top folders of the other spaces she may change.
async fn transfer_targets(user: &CurrentUser, here: &Space, lang: Lang) -> Result<Vec<TargetFolder>, AppError> {
    let label_of = |kind: &SpaceKind| match kind {
        SpaceKind::Home => lang.t("files_home").to_owned(),
        SpaceKind::Shared => lang.t("files_shared").to_owned(),
        SpaceKind::Class(g) => format!("{} {g}", lang.t("files_class")),
        SpaceKind::Handin(_) | SpaceKind::Handins(_) => lang.t("files_handin").to_owned(),
        SpaceKind::Feedback(_) | SpaceKind::Feedbacks(_) => lang.t("files_feedback").to_owned(),
    };
    // Names as they are (the form encodes them), the group as the path's first component.
    let value_of = |kind: &SpaceKind, path: &RelPath| match kind {
        SpaceKind::Class(g)
        | SpaceKind::Handin(g)
        | SpaceKind::Handins(g)
        | SpaceKind::Feedback(g)
        | SpaceKind::Feedbacks(g) => format!("{}/{g}/{path}", kind.as_str()),
        other => format!("{}/{path}", other.as_str()),
    };
    let mut out = Vec::new();
    if here.writable {
        let mut queue = std::collections::VecDeque::from([(RelPath::root(), 0)]);
        while let Some((dir, depth)) = queue.pop_front() {
            if out.len() >= MAX_TARGETS {
                break;
            }
            let label = if dir.is_root() {
                label_of(&here.kind)
            } else {
                format!(
                    "{} / {}",
                    label_of(&here.kind),
                    dir.names().iter().map(Name::as_str).collect::<Vec<_>>().join(" / ")
                )
            };
            out.push(TargetFolder {
                value: value_of(&here.kind, &dir),
                label,
            });
            if depth >= TARGET_DEPTH {
                continue;
            }
            for e in here.list(dir.clone()).await.unwrap_or_default() {
                if e.kind == EntryKind::Dir
                    && let Ok(child) = Name::existing(&e.name).and_then(|n| dir.join(n))
                {
                    queue.push_back((child, depth + 1));
                }
            }
        }
    }
    let mut others = vec![SpaceKind::Home];
    if user.user.role != portal_store::Role::Student {
        others.push(SpaceKind::Shared);
        let mut groups = user.user.groups.clone();
        groups.sort();
        others.extend(groups.into_iter().map(SpaceKind::Class));
    }
    for kind in others.into_iter().filter(|k| *k != here.kind) {
        out.push(TargetFolder {
            value: value_of(&kind, &RelPath::root()),
            label: label_of(&kind),
        });
    }
    Ok(out)
}

/// A target folder from the selection form: `home/`, `home/a/b`, `class/<group>/a`.
fn parse_target(value: &str) -> Result<(SpaceKind, RelPath), AppError> {
    let (space, rest) = value.split_once('/').unwrap_or((value, ""));
    let path = parse_path(rest.trim_end_matches('/'))?;
    Ok(SpaceKind::parse(space, path)?)
}

/// The path as a URL: each component percent-encoded, joined with `/`.
fn href(kind: &SpaceKind, path: &RelPath) -> String {
    let mut out = kind.url_base("/files");
    for (i, n) in path.names().iter().enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.extend(utf8_percent_encode(n.as_str(), PATH_SEGMENT));
    }
    out
}

/// Sizes as people read them.
pub(crate) fn human_size(bytes: u64, lang: Lang) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    let text = if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    };
    if lang.code() == "de" {
        text.replace('.', ",")
    } else {
        text
    }
}

#[derive(Deserialize)]
pub(crate) struct PageQuery {
    #[serde(default)]
    preview: Option<String>,
    #[serde(default)]
    done: Option<String>,
    #[serde(default)]
    zip: Option<String>,
}

/// `GET /files`: the user's home.
pub(crate) async fn index() -> Redirect {
    Redirect::to("/files/home/")
}

/// `GET /files/{space}/{*path}`: a folder as a page, a file as a download (or preview).
pub(crate) async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    lang: Lang,
    target: FileTarget,
    Query(q): Query<PageQuery>,
) -> Result<Response, AppError> {
    let space = open(&state, &user, &target.kind).await?;
    let entry = space.stat(target.path.clone()).await?;
    if entry.kind != EntryKind::Dir {
        if q.preview.is_some()
            && entry.kind == EntryKind::File
            && crate::web::preview::is_pdf(&entry.name)
            && let Some(resp) = crate::web::preview::redirect(&state, &user, &target.kind, &target.path).await?
        {
            return Ok(resp);
        }
        let (file, entry) = space.open_read(target.path).await?;
        return Ok(file_response(file, &entry, q.preview.is_some()));
    }
    if q.zip.is_some() {
        return zip_download(&state, space, target.path).await;
    }
    let entries = space.list(target.path.clone()).await?;
    let pdf_previews = state.desktop_origins.is_some();
    let mut crumbs = vec![Crumb {
        label: match &target.kind {
            SpaceKind::Home => lang.t("files_home").to_owned(),
            SpaceKind::Shared => lang.t("files_shared").to_owned(),
            SpaceKind::Class(group) => group.clone(),
            SpaceKind::Handin(_) | SpaceKind::Handins(_) => lang.t("files_handin").to_owned(),
            SpaceKind::Feedback(_) | SpaceKind::Feedbacks(_) => lang.t("files_feedback").to_owned(),
        },
        href: href(&target.kind, &RelPath::root()),
    }];
    let mut walked = RelPath::root();
    for name in target.path.names() {
        walked = walked.join(name.clone()).map_err(|e| SpaceError::Files(e.into()))?;
        crumbs.push(Crumb {
            label: name.to_string(),
            href: href(&target.kind, &walked),
        });
    }
    let rows = entries
        .into_iter()
        .filter_map(|e| {
            let name = Name::existing(&e.name).ok()?;
            let path = target.path.join(name).ok()?;
            Some(Row {
                href: href(&target.kind, &path),
                is_dir: e.kind == EntryKind::Dir,
                is_link: e.kind == EntryKind::Link,
                is_other: e.kind == EntryKind::Other,
                size: if e.kind == EntryKind::File {
                    human_size(e.size, lang)
                } else {
                    String::new()
                },
                modified: crate::web::time::show(&state.config.timezone, e.modified, lang),
                previewable: e.kind == EntryKind::File
                    && (preview_type(&e.name).is_some() || (pdf_previews && crate::web::preview::is_pdf(&e.name))),
                name: e.name,
            })
        })
        .collect();
    let (usage, over_quota) = match space.usage().await? {
        Usage { used, quota: Some(q) } => (
            Some((
                human_size(used, lang),
                human_size(q, lang),
                (used.saturating_mul(100) / q.max(1)).min(100),
            )),
            used > q,
        ),
        _ => (None, false),
    };
    let trash = space
        .trash(unix_now())
        .await?
        .into_iter()
        .map(|i| TrashRow {
            id: i.id,
            original: i.original,
            deleted: crate::web::time::show(&state.config.timezone, i.deleted_at, lang),
        })
        .collect();
    let notice = q.done.as_deref().and_then(|d| match d {
        "uploaded" => Some(lang.t("files_done_uploaded").to_owned()),
        "created" => Some(lang.t("files_done_created").to_owned()),
        "renamed" => Some(lang.t("files_done_renamed").to_owned()),
        "deleted" => Some(lang.t("files_done_deleted").to_owned()),
        "restored" => Some(lang.t("files_done_restored").to_owned()),
        "published" => Some(lang.t("files_done_published").to_owned()),
        "moved" => Some(lang.t("files_done_moved").to_owned()),
        "copied" => Some(lang.t("files_done_copied").to_owned()),
        "numbered" => Some(lang.t("files_done_numbered").to_owned()),
        _ => None,
    });
    let mut classes: Vec<Tab> = user
        .user
        .groups
        .iter()
        .map(|g| {
            let kind = SpaceKind::Class(g.clone());
            Tab {
                current: kind == target.kind,
                href: href(&kind, &RelPath::root()),
                label: g.clone(),
            }
        })
        .collect();
    classes.sort_by(|a, b| a.label.cmp(&b.label));
    // A student's hand-ins: one tab per assignment of her groups.
    let mut handin_due = None;
    let handins = if user.user.role == portal_store::Role::Student {
        crate::web::assignments::of_student(&state, &user, lang)
            .await?
            .into_iter()
            .map(|a| {
                let kind = SpaceKind::Handin(a.id.clone());
                if kind == target.kind {
                    handin_due = Some(a.due.clone());
                }
                Tab {
                    current: kind == target.kind,
                    href: href(&kind, &RelPath::root()),
                    label: format!("{} ({})", a.title, a.due),
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    // Teachers hand out folders of their own home to their classes.
    let publish_to = if target.kind == SpaceKind::Home && user.user.role != portal_store::Role::Student {
        classes.iter().map(|t| t.label.clone()).collect()
    } else {
        Vec::new()
    };
    let targets = transfer_targets(&user, &space, lang).await?;
    let page = FilesPage {
        lang,
        me: Me::new(&user),
        space: target.kind.as_str(),
        api_base: target.kind.url_base("/api/files"),
        classes,
        handins,
        feedback_href: match &target.kind {
            SpaceKind::Handin(id) => Some(SpaceKind::Feedback(id.clone()).url_base("/files")),
            _ => None,
        },
        handin_due,
        publish_to,
        here: target.path.to_string(),
        crumbs,
        rows,
        writable: space.writable,
        usage,
        over_quota,
        trash,
        trash_days: state.files.trash_days(),
        max_upload: human_size(state.config.files.max_upload_mib * 1024 * 1024, lang),
        notice,
        js_texts: js_texts(lang, JS_TEXT_KEYS),
        targets,
    };
    Ok(html(&page)?.into_response())
}

/// Where a form action returns to: the folder it acted in, with what was done.
fn back(kind: &SpaceKind, dir: &RelPath, done: &str) -> Response {
    Redirect::to(&format!("{}?done={done}", href(kind, dir))).into_response()
}

/// `POST /files/{space}/{*path}` (the folder's own URL): a multipart upload into the folder,
/// or one of the folder's small forms (`op` = `mkdir`, `rename`, `delete`, `restore`).
pub(crate) async fn submit(
    State(state): State<AppState>,
    user: CurrentUser,
    target: FileTarget,
    req: Request,
) -> Result<Response, AppError> {
    count_write(&state, &user)?;
    let space = open(&state, &user, &target.kind).await?;
    let multipart = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if multipart {
        let form = Multipart::from_request(req, &state)
            .await
            .map_err(|e| AppError::BadRequest(e.body_text()))?;
        return upload(&space, target, form).await;
    }
    // Folder forms are small; this route has no body limit of its own (uploads).
    let body = axum::body::to_bytes(req.into_body(), FORM_BODY_LIMIT)
        .await
        .map_err(|_| AppError::TooLarge { limit: FORM_BODY_LIMIT })?;
    // The selection's checkboxes send one `entry` per ticked name, which a struct cannot take
    // (a repeated field): they are collected apart, the other fields read as usual.
    let (entries, fields): (Vec<_>, Vec<_>) = url::form_urlencoded::parse(&body)
        .into_owned()
        .partition(|(k, _)| k == "entry");
    let entries: Vec<String> = entries.into_iter().map(|(_, v)| v).collect();
    let mut f: ActionForm = serde_urlencoded::from_str(
        &serde_urlencoded::to_string(&fields).map_err(|e| AppError::BadRequest(e.to_string()))?,
    )
    .map_err(|e| AppError::BadRequest(e.to_string()))?;
    if matches!(f.op.as_str(), "move" | "copy" | "zip") {
        return selection(&state, &user, space, target, &f, entries).await;
    }
    f.entry = entries.into_iter().next().unwrap_or_default();
    let dir = target.path;
    let named = |field: &str| {
        Name::existing(field.trim())
            .and_then(|n| dir.join(n))
            .map_err(|e| AppError::from(SpaceError::Files(e.into())))
    };
    let new_name = || Name::new(f.name.trim()).map_err(|e| AppError::from(SpaceError::Files(e.into())));
    let done = match f.op.as_str() {
        "mkdir" => {
            space
                .mkdir(dir.join(new_name()?).map_err(|e| SpaceError::Files(e.into()))?)
                .await?;
            "created"
        }
        "rename" => {
            let to = dir.join(new_name()?).map_err(|e| SpaceError::Files(e.into()))?;
            space.rename(named(&f.entry)?, to).await?;
            "renamed"
        }
        "delete" => {
            let entry = named(&f.entry)?;
            let what = entry.to_string();
            space.delete(entry, unix_now()).await?;
            audit_change(&state, &user, &space.kind, "deleted", &what).await;
            "deleted"
        }
        "publish" => {
            let class = open(&state, &user, &SpaceKind::Class(f.group.clone())).await?;
            let entry = named(&f.entry)?;
            let published = space.publish_to(entry, &class).await?;
            audit_change(&state, &user, &class.kind, "handed out", &published.to_string()).await;
            "published"
        }
        "restore" => {
            let restored = space.restore(f.id).await?;
            let dir = restored.split_last().map(|(d, _)| d).unwrap_or_default();
            return Ok(back(&target.kind, &dir, "restored"));
        }
        other => {
            return Err(AppError::BadRequest(format!(
                "unknown op {:?}: use mkdir, rename, delete, publish, restore, move, copy or zip",
                other.chars().take(32).collect::<String>()
            )));
        }
    };
    Ok(back(&target.kind, &dir, done))
}

/// The selection form: the checked entries of this folder moved or copied to a folder (of
/// this space or another one the user may change), or downloaded as one zip.
async fn selection(
    state: &AppState,
    user: &CurrentUser,
    space: Space,
    target: FileTarget,
    f: &ActionForm,
    entries: Vec<String>,
) -> Result<Response, AppError> {
    let names = entries
        .iter()
        .map(|e| Name::existing(e.trim()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SpaceError::Files(e.into()))?;
    if names.is_empty() {
        return Err(AppError::BadRequest(
            "nothing selected: tick the files and folders to move, copy or download".into(),
        ));
    }
    if f.op == "zip" {
        let name = target
            .path
            .split_last()
            .map_or_else(|| space.kind.folder_name(), |(_, n)| n.to_string());
        let dir = target.path;
        return Ok(zip_stream(&name, move |out| async move {
            space.zip_selection(dir, names, out).await.map(drop)
        }));
    }
    let (kind, to_dir) = parse_target(&f.to)?;
    let dest = open(state, user, &kind).await?;
    let mode = if f.op == "move" { Transfer::Move } else { Transfer::Copy };
    let mut numbered = false;
    for name in names {
        let from = target
            .path
            .join(name.clone())
            .map_err(|e| SpaceError::Files(e.into()))?;
        let got = space.transfer(from.clone(), &dest, to_dir.clone(), mode).await?;
        numbered |= got != name;
        let what = if mode == Transfer::Move { "moved" } else { "copied" };
        let to = to_dir.join(got).map_err(|e| SpaceError::Files(e.into()))?;
        audit_change(state, user, &space.kind, what, &from.to_string()).await;
        audit_change(state, user, &dest.kind, what, &to.to_string()).await;
    }
    let done = match (numbered, mode) {
        (true, _) => "numbered",
        (false, Transfer::Move) => "moved",
        (false, Transfer::Copy) => "copied",
    };
    Ok(back(&target.kind, &target.path, done))
}

/// An upload form's files into `target`'s folder.
async fn upload(space: &Space, target: FileTarget, form: Multipart) -> Result<Response, AppError> {
    write_parts(space, &target.path, form).await?;
    Ok(back(&target.kind, &target.path, "uploaded"))
}

/// Streams each `file` part of an upload form into the folder `dir` of `space`; returns the
/// names used. A name that is taken gets a number; nothing is overwritten. A `folder` part
/// (the folder picker, `webkitdirectory`) is named by its path within the chosen folder
/// ("Projekt/Bilder/Übung.png", as browsers send it): its folders are created on the way, or
/// used as they are when they exist (as for a dropped folder).
pub(crate) async fn write_parts(space: &Space, dir: &RelPath, mut form: Multipart) -> Result<Vec<Name>, AppError> {
    let mut written = Vec::new();
    let mut created: std::collections::HashSet<RelPath> = std::collections::HashSet::new();
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| AppError::BadRequest(e.body_text()))?
    {
        let in_folder = match field.name() {
            Some("file") => false,
            Some("folder") => true,
            _ => continue,
        };
        let Some(file_name) = field.file_name().map(str::to_owned).filter(|n| !n.is_empty()) else {
            continue;
        };
        let bad = |e: portal_files::NameError| AppError::from(SpaceError::Files(e.into()));
        let mut path = dir.clone();
        if in_folder {
            let names: Vec<Name> = file_name
                .split('/')
                .filter(|n| !n.is_empty())
                .map(Name::new)
                .collect::<Result<_, _>>()
                .map_err(bad)?;
            let last = names.len().saturating_sub(1);
            for (i, name) in names.into_iter().enumerate() {
                path = path.join(name).map_err(bad)?;
                if i < last && !created.contains(&path) {
                    match space.mkdir(path.clone()).await {
                        Ok(()) | Err(SpaceError::Files(FilesError::Exists)) => {}
                        Err(e) => return Err(e.into()),
                    }
                    created.insert(path.clone());
                }
            }
        } else {
            // Browsers send a bare name; some older ones a whole client path.
            let base = file_name.rsplit(['/', '\\']).next().unwrap_or(&file_name);
            path = path.join(Name::new(base).map_err(bad)?).map_err(bad)?;
        }
        if path == *dir {
            continue;
        }
        let (name, _) = write_stream(space, path, field.map_err(std::io::Error::other), OnClash::Number).await?;
        written.push(name);
    }
    Ok(written)
}

/// The fields of a folder's small forms.
#[derive(Deserialize)]
pub(crate) struct ActionForm {
    op: String,
    /// The entry of this folder a rename or delete acts on.
    #[serde(default)]
    entry: String,
    /// The new name (mkdir, rename).
    #[serde(default)]
    name: String,
    /// The trash item to restore.
    #[serde(default)]
    id: String,
    /// The class a folder is handed out to.
    #[serde(default)]
    group: String,
    /// Where a selection is moved or copied to (`space/path`).
    #[serde(default)]
    to: String,
}

/// Writes an upload arriving as an async stream through the blocking file layer. At most
/// four chunks wait in memory: the upload goes at the disk's pace, whatever its size.
pub(crate) async fn write_stream(
    space: &Space,
    path: RelPath,
    mut stream: impl Stream<Item = std::io::Result<Bytes>> + Unpin,
    on_clash: OnClash,
) -> Result<(Name, u64), AppError> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let pump = async move {
        while let Some(chunk) = stream.next().await {
            let failed = chunk.is_err();
            // The writer stopped (a limit, a clash): stop reading the upload too.
            if tx.send(chunk).await.is_err() || failed {
                break;
            }
        }
    };
    let (written, ()) = tokio::join!(space.write(path, ChannelSource { rx }, on_clash), pump);
    Ok(written?)
}

/// The blocking side of [`write_stream`]: the end of the upload is the channel closing, a
/// broken upload an error in it. Each piece is every chunk already waiting, written as hyper
/// received them in one `writev`: no copy through a buffer, and not one `write` per network
/// read (which cost a 1 GiB upload a third of its speed).
struct ChannelSource {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
}

/// Chunks gathered into one piece at most (the channel holds four, so this is never reached
/// while the channel keeps its size).
const MAX_GATHERED: usize = 16;

impl portal_files::Source for ChannelSource {
    fn write_next(&mut self, out: &mut dyn std::io::Write) -> std::io::Result<u64> {
        let mut chunks: Vec<Bytes> = Vec::with_capacity(MAX_GATHERED);
        // Wait only while nothing is gathered; otherwise take what is there. An error ends
        // the upload at once: the file is removed, so the chunks before it need no writing.
        while chunks.len() < MAX_GATHERED {
            let next = if chunks.is_empty() {
                self.rx.blocking_recv()
            } else {
                match self.rx.try_recv() {
                    Ok(next) => Some(next),
                    Err(_) => break,
                }
            };
            match next {
                Some(Ok(chunk)) if chunk.is_empty() => {}
                Some(Ok(chunk)) => chunks.push(chunk),
                Some(Err(e)) => return Err(e),
                None => break,
            }
        }
        let mut pieces: Vec<std::io::IoSlice<'_>> = chunks.iter().map(|c| std::io::IoSlice::new(c)).collect();
        portal_files::write_all_vectored(out, &mut pieces)
    }
}

/// Records a change to a folder others see (the shared folder, a class folder); a user's own
/// home is hers and not audited.
pub(crate) async fn audit_change(state: &AppState, user: &CurrentUser, kind: &SpaceKind, what: &str, path: &str) {
    let place = match kind {
        SpaceKind::Home => return,
        SpaceKind::Shared => "shared folder".to_owned(),
        SpaceKind::Class(group) => format!("class {group}"),
        SpaceKind::Handin(id) | SpaceKind::Handins(id) => format!("hand-in {id}"),
        SpaceKind::Feedback(id) | SpaceKind::Feedbacks(id) => format!("feedback on {id}"),
    };
    crate::domain::audit::record(
        &state.store,
        portal_store::AuditEvent::new(portal_store::AuditKind::FilesChanged, what)
            .actor(user.user.username.clone())
            .target(format!("{place}: {path}")),
    )
    .await;
}
