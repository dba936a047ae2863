//! `/admin/types`: desktop types — create, edit, enable or disable, delete (refused while
//! desktops of the type exist), who may use each, an icon upload, and pulling the image with
//! live progress.

use std::collections::HashMap;
use std::convert::Infallible;

use askama::Template;
use axum::Json;
use axum::extract::{Multipart, Path, State};
use axum::response::sse::{Event, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use futures_util::Stream;
use http::StatusCode;
use portal_store::{AuditKind, DesktopType, Store};

use crate::i18n::Lang;
use crate::state::AppState;
use crate::web::admin::{Admin, AdminError, AdminForm, Form};
use crate::web::api::types::{Csrf, ErrorResponse, PullEvent, PullIdle, PullStarted, TypeKey};
use crate::web::error::AppError;
use crate::web::pages::{Me, html};
use crate::web::uploads::icon_key;

/// One type in the list.
pub(crate) struct TypeRow {
    pub key: String,
    pub name: String,
    pub image: String,
    pub icon: String,
    pub has_icon: bool,
    pub enabled: bool,
    pub desktops: usize,
    pub who: String,
}

#[derive(Template)]
#[template(path = "admin_types.html")]
pub(crate) struct TypesPage<'a> {
    pub lang: Lang,
    pub me: Me<'a>,
    pub section: &'static str,
    pub types: Vec<TypeRow>,
    pub can_pull: bool,
}

/// A type's name and description in one language, for the form's `name.{code}` and
/// `description.{code}` fields.
pub(crate) struct TypeText {
    pub code: String,
    /// The language's name in itself, or the code for a language the UI does not speak.
    pub label: String,
    /// German: the one required name.
    pub required: bool,
    pub name: String,
    pub description: String,
}

/// The edit form's values, as text (what the admin typed, or the stored type).
pub(crate) struct TypeForm {
    pub key: String,
    /// Every UI language, German first, then languages only the type has texts in.
    pub texts: Vec<TypeText>,
    pub icon: String,
    pub image: String,
    pub container_port: String,
    pub protocol: String,
    pub memory_mib: String,
    pub cpus: String,
    pub shm_mib: String,
    pub idle_timeout_minutes: String,
    pub max_age_hours: String,
    pub allowed_groups: String,
    pub allowed_users: String,
    pub env: String,
    pub sort_order: String,
    pub enabled: bool,
    /// Shown inverted, as "no internet": a form without the box keeps the usual access.
    pub internet: bool,
}

const MIB: i64 = 1024 * 1024;

/// One [`TypeText`] per UI language, then one per further language `t` has texts in (e.g.
/// from the configuration's `names`), so saving the form keeps those.
fn type_texts(t: &DesktopType) -> Vec<TypeText> {
    let ui = Lang::all().map(|l| (l.code().to_owned(), l.name().to_owned()));
    let langs = t.text_langs();
    let extra = langs
        .iter()
        .filter(|code| Lang::all().all(|l| l.code() != **code))
        .map(|code| ((*code).to_owned(), (*code).to_owned()));
    ui.chain(extra)
        .map(|(code, label)| TypeText {
            required: code == portal_store::DEFAULT_LANG,
            name: t.names.get(&code).cloned().unwrap_or_default(),
            description: t.descriptions.get(&code).cloned().unwrap_or_default(),
            code,
            label,
        })
        .collect()
}

impl TypeForm {
    fn of(t: &DesktopType) -> TypeForm {
        TypeForm {
            key: t.key.clone(),
            texts: type_texts(t),
            icon: t.icon.clone(),
            image: t.image.clone(),
            container_port: t.container_port.to_string(),
            protocol: t.protocol.clone(),
            memory_mib: t.memory_bytes.map(|b| (b / MIB).to_string()).unwrap_or_default(),
            cpus: t.nano_cpus.map(|n| (n as f64 / 1e9).to_string()).unwrap_or_default(),
            shm_mib: (t.shm_size_bytes / MIB).to_string(),
            idle_timeout_minutes: (t.idle_timeout_secs / 60).to_string(),
            max_age_hours: (t.max_age_secs / 3600).to_string(),
            allowed_groups: t.allowed_groups.join(", "),
            allowed_users: t.allowed_users.join(", "),
            env: t.env.iter().map(|(k, v)| format!("{k}={v}\n")).collect(),
            sort_order: t.sort_order.to_string(),
            enabled: t.enabled,
            internet: t.internet,
        }
    }
}

#[derive(Template)]
#[template(path = "admin_type.html")]
pub(crate) struct TypePage<'a> {
    pub lang: Lang,
    pub me: Me<'a>,
    pub section: &'static str,
    pub is_new: bool,
    pub f: TypeForm,
    pub has_icon: bool,
    pub max_kib: usize,
}

/// A whole number in `range`, or a message naming the field and the range.
fn number(field: &str, value: &str, range: std::ops::RangeInclusive<i64>, unit: &str) -> Result<i64, AdminError> {
    let v = value.trim();
    match v.parse::<i64>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(AdminError::Invalid(format!(
            "{field}: {v:?} is not a whole number from {} to {}{unit}",
            range.start(),
            range.end()
        ))),
    }
}

/// An optional number: empty means "no limit".
fn optional(
    field: &str,
    value: &str,
    range: std::ops::RangeInclusive<i64>,
    unit: &str,
) -> Result<Option<i64>, AdminError> {
    if value.trim().is_empty() {
        Ok(None)
    } else {
        number(field, value, range, unit).map(Some)
    }
}

fn list(value: &str) -> Vec<String> {
    value
        .split([',', '\n', ';'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn env(value: &str) -> Result<Vec<(String, String)>, AdminError> {
    value
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|line| {
            line.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
                .ok_or_else(|| AdminError::Invalid(format!("env: {line:?} is not NAME=value")))
        })
        .collect()
}

/// The type a submitted form describes; `key` is the URL's for an edit.
fn parse_type(form: &Form, key: &str) -> Result<DesktopType, AdminError> {
    let port = number("container_port", form.get("container_port"), 1..=65535, "")?;
    let cpus = form.get("cpus").trim();
    let nano_cpus = if cpus.is_empty() {
        None
    } else {
        match cpus.replace(',', ".").parse::<f64>() {
            Ok(c) if c > 0.0 && c <= 256.0 => Some((c * 1e9).round() as i64),
            _ => {
                return Err(AdminError::Invalid(format!(
                    "cpus: {cpus:?} is not a number of CPUs greater than 0 and at most 256 (e.g. 1.5)"
                )));
            }
        }
    };
    // `name.{code}` and `description.{code}` for each language; the store checks the codes.
    let texts = |prefix: &str| {
        form.0
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.to_owned(), v.clone())))
            .collect()
    };
    let t = DesktopType {
        key: key.trim().to_owned(),
        names: texts("name."),
        descriptions: texts("description."),
        icon: form.get("icon").to_owned(),
        image: form.get("image").to_owned(),
        container_port: u16::try_from(port).unwrap_or(0),
        protocol: form.get("protocol").to_owned(),
        env: env(form.get("env"))?,
        shm_size_bytes: number("shm_mib", form.get("shm_mib"), 0..=65536, " MiB")? * MIB,
        memory_bytes: optional("memory_mib", form.get("memory_mib"), 6..=1_048_576, " MiB")?.map(|m| m * MIB),
        nano_cpus,
        enabled: form.checked("enabled"),
        internet: !form.checked("no_internet"),
        idle_timeout_secs: number(
            "idle_timeout_minutes",
            form.get("idle_timeout_minutes"),
            0..=10_080,
            " minutes",
        )? * 60,
        max_age_secs: number("max_age_hours", form.get("max_age_hours"), 0..=8_760, " hours")? * 3600,
        allowed_groups: list(form.get("allowed_groups")),
        allowed_users: list(form.get("allowed_users")),
        sort_order: optional("sort_order", form.get("sort_order"), -1_000_000..=1_000_000, "")?.unwrap_or(0),
        ..DesktopType::default()
    };
    Ok(Store::validate_desktop_type(&t)?)
}

/// Who may use a type, in words for the list.
fn who(lang: Lang, t: &DesktopType) -> String {
    if t.allowed_groups.is_empty() && t.allowed_users.is_empty() {
        return lang.t("admin_types_everyone").to_owned();
    }
    t.allowed_groups
        .iter()
        .chain(&t.allowed_users)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ")
}

/// `GET /admin/types`.
pub(crate) async fn list_page(
    State(state): State<AppState>,
    admin: Admin,
    lang: Lang,
) -> Result<Html<String>, AppError> {
    let mut per_type: HashMap<String, usize> = HashMap::new();
    for d in state.store.all_desktops().await? {
        *per_type.entry(d.type_key).or_default() += 1;
    }
    let icons: Vec<String> = state
        .store
        .image_versions()
        .await?
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let types = state
        .store
        .list_desktop_types()
        .await?
        .into_iter()
        .map(|t| TypeRow {
            name: t.name(lang.code()).to_owned(),
            has_icon: icons.contains(&icon_key(&t.key)),
            desktops: per_type.get(&t.key).copied().unwrap_or(0),
            who: who(lang, &t),
            image: t.image,
            icon: t.icon,
            enabled: t.enabled,
            key: t.key,
        })
        .collect();
    html(&TypesPage {
        lang,
        me: Me::new(&admin.0),
        section: "types",
        types,
        can_pull: state.runtime.starts_desktops(),
    })
}

fn type_page<'a>(lang: Lang, admin: &'a Admin, is_new: bool, f: TypeForm, has_icon: bool) -> TypePage<'a> {
    TypePage {
        lang,
        me: Me::new(&admin.0),
        section: "types",
        is_new,
        f,
        has_icon,
        max_kib: crate::web::uploads::MAX_IMAGE_BYTES / 1024,
    }
}

/// `GET /admin/types/new`.
pub(crate) async fn new_page(admin: Admin, lang: Lang) -> Result<Html<String>, AppError> {
    let f = TypeForm::of(&DesktopType {
        idle_timeout_secs: 3600,
        max_age_secs: 10 * 3600,
        ..DesktopType::default()
    });
    html(&type_page(lang, &admin, true, f, false))
}

/// `GET /admin/types/{key}`.
pub(crate) async fn edit_page(
    State(state): State<AppState>,
    admin: Admin,
    lang: Lang,
    Path(key): Path<String>,
) -> Result<Html<String>, AppError> {
    let t = state.store.desktop_type(&key).await?.ok_or(AppError::NotFound)?;
    let has_icon = state.store.image(&icon_key(&key)).await?.is_some();
    html(&type_page(lang, &admin, false, TypeForm::of(&t), has_icon))
}

/// `POST /admin/types`: a new type.
pub(crate) async fn create(
    State(state): State<AppState>,
    AdminForm { admin, form, .. }: AdminForm,
) -> Result<Redirect, AdminError> {
    let t = parse_type(&form, form.get("key"))?;
    let t = state.store.create_desktop_type(&t).await?;
    let detail = format!("created: image {}, enabled {}", t.image, t.enabled);
    admin.on_target(&state, AuditKind::TypeCreated, &t.key, detail).await;
    Ok(Redirect::to(&format!("/admin/types/{}", t.key)))
}

/// `POST /admin/types/{key}`: save the edit form.
pub(crate) async fn update(
    State(state): State<AppState>,
    Path(key): Path<String>,
    AdminForm { admin, form, .. }: AdminForm,
) -> Result<Redirect, AdminError> {
    let old = state.store.desktop_type(&key).await?.ok_or(AppError::NotFound)?;
    let t = parse_type(&form, &key)?;
    let t = state
        .store
        .upsert_desktop_type(&DesktopType {
            created_at: old.created_at,
            ..t
        })
        .await?;
    let detail = format!(
        "saved: image {}, enabled {}, groups [{}], users [{}]",
        t.image,
        t.enabled,
        t.allowed_groups.join(", "),
        t.allowed_users.join(", ")
    );
    admin.on_target(&state, AuditKind::TypeChanged, &key, detail).await;
    Ok(Redirect::to(&format!("/admin/types/{key}")))
}

/// `POST /admin/types/{key}/enabled` (`enabled` = 1 or 0).
pub(crate) async fn set_enabled(
    State(state): State<AppState>,
    Path(key): Path<String>,
    AdminForm { admin, form, .. }: AdminForm,
) -> Result<Redirect, AdminError> {
    let enabled = match form.get("enabled") {
        "1" => true,
        "0" => false,
        other => return Err(AdminError::Invalid(format!("enabled: {other:?} is not 1 or 0"))),
    };
    let t = state.store.desktop_type(&key).await?.ok_or(AppError::NotFound)?;
    state.store.upsert_desktop_type(&DesktopType { enabled, ..t }).await?;
    let detail = if enabled { "enabled" } else { "disabled" };
    admin.on_target(&state, AuditKind::TypeChanged, &key, detail).await;
    Ok(Redirect::to("/admin/types"))
}

/// `POST /admin/types/{key}/delete`: refused (409) while desktops of the type exist.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(key): Path<String>,
    AdminForm { admin, .. }: AdminForm,
) -> Result<Redirect, AdminError> {
    state.store.desktop_type(&key).await?.ok_or(AppError::NotFound)?;
    state.store.delete_desktop_type(&key).await?;
    state.store.delete_image(&icon_key(&key)).await?;
    admin.on_target(&state, AuditKind::TypeDeleted, &key, "deleted").await;
    Ok(Redirect::to("/admin/types"))
}

/// `POST /admin/types/{key}/icon` (multipart: `csrf_token` first, then `file`).
pub(crate) async fn upload_icon(
    State(state): State<AppState>,
    admin: Admin,
    Path(key): Path<String>,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Redirect, AdminError> {
    state.store.desktop_type(&key).await?.ok_or(AppError::NotFound)?;
    let (file, content_type) = crate::web::uploads::read_image_form(multipart).await?;
    state.store.put_image(&icon_key(&key), content_type, &file).await?;
    let detail = format!("icon uploaded ({content_type}, {} bytes)", file.len());
    admin.on_target(&state, AuditKind::TypeChanged, &key, detail).await;
    Ok(Redirect::to(&format!("/admin/types/{key}")))
}

/// `POST /admin/types/{key}/icon/delete`.
pub(crate) async fn delete_icon(
    State(state): State<AppState>,
    Path(key): Path<String>,
    AdminForm { admin, .. }: AdminForm,
) -> Result<Redirect, AdminError> {
    state.store.delete_image(&icon_key(&key)).await?;
    admin
        .on_target(&state, AuditKind::TypeChanged, &key, "icon removed")
        .await;
    Ok(Redirect::to(&format!("/admin/types/{key}")))
}

/// Starts pulling `key`'s image unless a pull runs; the events URL either way.
async fn begin_pull(state: &AppState, admin: &Admin, key: &str) -> Result<String, AdminError> {
    let t = state.store.desktop_type(key).await?.ok_or(AppError::NotFound)?;
    if !state.runtime.starts_desktops() {
        return Err(AdminError::Conflict(
            "this portal runs only pre-configured desktops and pulls no images".into(),
        ));
    }
    state.pulls.begin(
        state.runtime.clone(),
        state.store.clone(),
        key,
        t.image,
        admin.username().to_owned(),
    );
    Ok(format!("/api/admin/desktop-types/{key}/pull/events"))
}

/// `POST /api/admin/desktop-types/{key}/pull`: 202 with `events_url`.
#[utoipa::path(post, path = "/api/admin/desktop-types/{key}/pull", tag = "admin",
    summary = "Pull a desktop type's image again",
    security(("session" = [])),
    params(TypeKey, Csrf),
    responses(
        (status = 202, description = "Pulling (or already pulling); follow `events_url`", body = PullStarted),
        (status = 401, description = "Not signed in", body = ErrorResponse),
        (status = 403, description = "Not an administrator, or CSRF token missing or wrong", body = ErrorResponse),
        (status = 404, description = "No such desktop type", body = ErrorResponse),
        (status = 409, description = "This portal runs only pre-configured desktops and pulls no images", body = ErrorResponse),
    ),
)]
pub(crate) async fn pull_api(
    State(state): State<AppState>,
    admin: Admin,
    Path(key): Path<String>,
) -> Result<Response, AdminError> {
    let events_url = begin_pull(&state, &admin, &key).await?;
    Ok((StatusCode::ACCEPTED, Json(PullStarted { events_url })).into_response())
}

/// `POST /admin/types/{key}/pull`: the same without JavaScript; the result lands in the log.
pub(crate) async fn pull_form(
    State(state): State<AppState>,
    Path(key): Path<String>,
    AdminForm { admin, .. }: AdminForm,
) -> Result<Redirect, AdminError> {
    begin_pull(&state, &admin, &key).await?;
    Ok(Redirect::to("/admin/types"))
}

/// `GET /api/admin/desktop-types/{key}/pull/events`: server-sent `progress` events, then
/// `done` or `failed`. A pull that is not running sends `idle` and ends.
#[utoipa::path(get, path = "/api/admin/desktop-types/{key}/pull/events", tag = "admin",
    summary = "An image pull's progress, live",
    security(("session" = [])),
    params(TypeKey),
    responses(
        (status = 200, description = "Server-sent events: the pull's `progress` steps so far and to come, then `done` or `failed`; `idle` alone when no pull of this type runs", content_type = "text/event-stream", body = PullEvent),
        (status = 401, description = "Not signed in", body = ErrorResponse),
        (status = 403, description = "Not an administrator", body = ErrorResponse),
    ),
)]
pub(crate) async fn pull_events(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(key): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    let slot = state
        .event_streams
        .take(&admin.user.id)
        .ok_or(AppError::TooManyStreams(state.event_streams.max()))?;
    Ok(match state.pulls.follow(&key) {
        Some(steps) => crate::web::events::progress_sse(Vec::new(), steps, slot),
        // Nothing runs (never began, or ended and forgotten): say so, and end.
        None => crate::web::events::progress_sse(
            vec![
                Event::default()
                    .event("idle")
                    .json_data(PullIdle {})
                    .unwrap_or_default(),
            ],
            (Vec::<crate::domain::pulls::PullStep>::new(), None),
            slot,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_name_field_and_range() {
        let err = number("container_port", "70000", 1..=65535, "")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("container_port: \"70000\" is not a whole number from 1 to 65535")
        );
        assert_eq!(optional("memory_mib", " ", 6..=10, " MiB").ok(), Some(None));
        assert_eq!(list("a, b\nc;;"), ["a", "b", "c"]);
        assert!(env("A=1\nB").is_err());
    }
}
