//! `GET /api/openapi.json`: the JSON API described as OpenAPI, generated from the handlers'
//! `#[utoipa::path]` annotations and the response types in [`super::types`]. Public: it
//! describes the API and grants nothing (every call still needs a session).

use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::web::{admin, events, help};

/// The document. A new `/api/…` route needs its handler listed here; the end-to-end test
/// `openapi` compares this list with the router's and fails otherwise.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "IServ Remote Desktop",
        description = "The portal's JSON API. Calls use the session cookie of a signed-in \
            browser; calls that change something also need the session's CSRF token in \
            `X-CSRF-Token`. Errors answer `{\"error\": {\"code\", \"message\", \"detail\"}}`.",
    ),
    paths(
        serve,
        super::desktop_types,
        super::list,
        super::start,
        super::show,
        super::stop,
        super::remove,
        super::activity,
        super::events,
        super::admin_list,
        super::admin_stop_all,
        super::admin_cleanup,
        events::stream,
        help::events,
        admin::stats,
        admin::types::pull_api,
        admin::types::pull_events,
        admin::users::end_user_sessions,
        super::files::root,
        super::files::get,
        super::files::put,
        super::files::post,
        super::files::delete,
        super::files::trash,
        super::files::restore,
        crate::web::screens::thumbnail,
    ),
    modifiers(&SessionCookie, &AdminAliases),
    tags(
        (name = "desktops", description = "The signed-in user's desktops"),
        (name = "files", description = "The user's files and the shared folder"),
        (name = "help", description = "Students asking their teachers for help, with consent"),
        (name = "admin", description = "Administrators only"),
        (name = "teacher", description = "Teachers (their own groups) and administrators"),
        (name = "meta", description = "This document"),
    ),
)]
pub(crate) struct ApiDoc;

/// `GET /api/openapi.json`.
#[utoipa::path(get, path = "/api/openapi.json", tag = "meta",
    summary = "This document",
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json")),
)]
pub(crate) async fn serve() -> Json<utoipa::openapi::OpenApi> {
    // Built per request: it is small, rarely fetched, and a static would be global state.
    Json(ApiDoc::openapi())
}

/// The `session` security scheme the paths refer to.
struct SessionCookie;

impl Modify for SessionCookie {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "ird_session",
                "The portal's session cookie, set at sign-in (`__Host-ird_session` when the \
                 portal runs on https)",
            ))),
        );
    }
}

/// Routes the router serves with a user's handler for admins too (`owned` lets admins act on
/// any desktop): one handler can carry only one `#[utoipa::path]`, so their entries are
/// copied here under the admin path.
const ADMIN_ALIASES: [(&str, &str); 2] = [
    ("/api/admin/desktops/{id}", "/api/desktops/{id}"),
    ("/api/admin/desktops/{id}/stop", "/api/desktops/{id}/stop"),
];

struct AdminAliases;

impl Modify for AdminAliases {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (alias, of) in ADMIN_ALIASES {
            let Some(mut item) = openapi.paths.paths.get(of).cloned() else {
                continue;
            };
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                // Operation ids must be unique in a document.
                op.operation_id = op.operation_id.as_ref().map(|id| format!("admin_{id}"));
                op.tags = Some(vec!["admin".to_owned()]);
                op.summary = op.summary.as_ref().map(|s| format!("{s} (any user's)"));
            }
            openapi.paths.paths.insert(alias.to_owned(), item);
        }
    }
}
