//! `/admin/users`: every user with role, groups, source (IServ or local) and last sign-in;
//! local accounts can be created, get a new password (shown once), change role, be deleted.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use http::header::CACHE_CONTROL;
use portal_store::{AuditKind, Role, User};
use secrecy::SecretString;

use axum::Json;

use crate::auth::CurrentUser;
use crate::domain::admin::AdminActions;
use crate::domain::local_groups;
use crate::i18n::Lang;
use crate::state::AppState;
use crate::web::admin::{Admin, AdminError, AdminForm, when};
use crate::web::api::types::{Csrf, EndedSessions, ErrorResponse};
use crate::web::error::AppError;
use crate::web::pages::{Me, html, role_key};

/// One user in the list.
pub(crate) struct UserRow {
    pub username: String,
    pub display_name: String,
    pub role: &'static str,
    pub role_key: &'static str,
    pub groups: String,
    pub local: bool,
    pub last_sign_in: String,
    pub is_me: bool,
    /// A local account that an IServ sign-in may take over only after an administrator allows
    /// it (it has a password or is an administrator's), and none has yet.
    pub may_allow_link: bool,
    /// The administrator who allowed the next IServ sign-in to take it over.
    pub link_allowed_by: Option<String>,
}

/// A deleted account whose files are still kept.
pub(crate) struct DeletedRow {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub deleted_at: String,
    pub deleted_by: String,
    pub purge_at: String,
    /// Still within the retention; afterwards the purge may be removing the files.
    pub restorable: bool,
}

#[derive(Template)]
#[template(path = "admin_users.html")]
pub(crate) struct UsersPage<'a> {
    pub lang: Lang,
    pub me: Me<'a>,
    pub section: &'static str,
    pub users: Vec<UserRow>,
    pub deleted: Vec<DeletedRow>,
    /// (value, translation key), least privileged first.
    pub roles: [(&'static str, &'static str); 3],
}

#[derive(Template)]
#[template(path = "admin_password.html")]
pub(crate) struct PasswordPage<'a> {
    pub lang: Lang,
    pub me: Me<'a>,
    pub section: &'static str,
    pub username: &'a str,
    pub password: &'a str,
}

/// A password for a new or reset account: 16 random bytes, URL-safe base64 (22 characters).
fn generate_password() -> String {
    portal_store::random_secret::<16>()
}

/// `GET /admin/users`.
pub(crate) async fn list_page(
    State(state): State<AppState>,
    admin: Admin,
    lang: Lang,
) -> Result<Html<String>, AppError> {
    let by_log: HashMap<String, i64> = state.store.last_sign_ins().await?.into_iter().collect();
    let by_session: HashMap<String, i64> = state.store.latest_session_starts().await?.into_iter().collect();
    let users = state
        .store
        .list_users()
        .await?
        .into_iter()
        .map(|u| {
            let last = by_log.get(&u.username).copied().max(by_session.get(&u.id).copied());
            let local = u.external_subject.is_none();
            UserRow {
                may_allow_link: local && (u.has_password || u.role == Role::Admin) && u.link_allowed_by.is_none(),
                link_allowed_by: u.link_allowed_by.filter(|_| local),
                role: u.role.as_str(),
                role_key: role_key(u.role),
                groups: u.groups.join(", "),
                local,
                last_sign_in: when(last),
                is_me: u.id == admin.0.user.id,
                display_name: u.display_name,
                username: u.username,
            }
        })
        .collect();
    let deleted = state
        .store
        .deleted_users()
        .await?
        .into_iter()
        .map(|d| DeletedRow {
            restorable: d.purge_at > crate::domain::unix_now(),
            deleted_at: when(Some(d.deleted_at)),
            purge_at: when(Some(d.purge_at)),
            id: d.id,
            username: d.username,
            display_name: d.display_name,
            deleted_by: d.deleted_by,
        })
        .collect();
    html(&UsersPage {
        lang,
        me: Me::new(&admin.0),
        section: "users",
        users,
        deleted,
        roles: [
            ("student", "role_student"),
            ("teacher", "role_teacher"),
            ("admin", "role_admin"),
        ],
    })
}

/// A password page that no cache keeps.
fn password_page(lang: Lang, admin: &Admin, username: &str, password: &str) -> Result<Response, AppError> {
    let page = html(&PasswordPage {
        lang,
        me: Me::new(&admin.0),
        section: "users",
        username,
        password,
    })?;
    Ok(([(CACHE_CONTROL, "no-store")], page).into_response())
}

/// A local user named in the URL; IServ users are managed in IServ.
async fn local_user(state: &AppState, username: &str) -> Result<User, AdminError> {
    let user = state
        .store
        .user_by_username(username)
        .await?
        .ok_or(AppError::NotFound)?;
    if user.external_subject.is_some() {
        return Err(AdminError::Conflict(format!(
            "{username} signs in with IServ; change the account there"
        )));
    }
    Ok(user)
}

/// `POST /admin/users`: a local account; without a password one is generated and shown once.
pub(crate) async fn create(
    State(state): State<AppState>,
    AdminForm { admin, form, lang }: AdminForm,
) -> Result<Response, AdminError> {
    let role: Role = form.get("role").parse()?;
    // Checked before the account is made, so a bad name leaves no account without its groups.
    let groups = portal_store::clean_group_names(&local_groups::parse_list(form.all("groups")))?;
    let typed = form.get("password");
    let password = if typed.is_empty() {
        generate_password()
    } else {
        typed.to_owned()
    };
    let user = state
        .store
        .create_local_user(
            form.get("username"),
            form.get("display_name"),
            role,
            &SecretString::from(password.clone()),
        )
        .await?;
    admin
        .on_user(
            &state,
            AuditKind::UserCreated,
            &user.username,
            format!("local account, role {role}"),
        )
        .await;
    if !groups.is_empty() {
        local_groups::set(&state.store, &user, &groups, Some(admin.username())).await?;
    }
    if typed.is_empty() {
        Ok(password_page(lang, &admin, &user.username, &password)?)
    } else {
        Ok(Redirect::to("/admin/users").into_response())
    }
}

/// `POST /admin/users/{username}/password`: a new generated password, shown once; the
/// user's sessions end.
pub(crate) async fn reset_password(
    State(state): State<AppState>,
    Path(username): Path<String>,
    AdminForm { admin, lang, .. }: AdminForm,
) -> Result<Response, AdminError> {
    let user = local_user(&state, &username).await?;
    let password = generate_password();
    state
        .store
        .set_password(&user.username, &SecretString::from(password.clone()))
        .await?;
    if user.id != admin.0.user.id {
        state.store.delete_user_sessions(&user.id).await?;
    }
    admin
        .on_user(&state, AuditKind::UserChanged, &user.username, "password reset")
        .await;
    Ok(password_page(lang, &admin, &user.username, &password)?)
}

/// `POST /admin/users/{username}/role` (`role`). Not for one's own account, so the last
/// admin cannot lock everyone out by accident.
pub(crate) async fn set_role(
    State(state): State<AppState>,
    Path(username): Path<String>,
    AdminForm { admin, form, .. }: AdminForm,
) -> Result<Redirect, AdminError> {
    let role: Role = form.get("role").parse()?;
    let user = local_user(&state, &username).await?;
    if user.id == admin.0.user.id {
        return Err(AdminError::Conflict(
            "role: you cannot change your own role; ask another administrator".into(),
        ));
    }
    state.store.set_user_role(&user.id, role).await?;
    admin
        .on_user(
            &state,
            AuditKind::UserChanged,
            &user.username,
            format!("role {} → {role}", user.role),
        )
        .await;
    Ok(Redirect::to("/admin/users"))
}

/// `POST /admin/users/{username}/groups` (`groups`, comma-separated): the groups (classes) of a
/// local account; IServ accounts get theirs from IServ (409).
pub(crate) async fn set_groups(
    State(state): State<AppState>,
    Path(username): Path<String>,
    AdminForm { admin, form, .. }: AdminForm,
) -> Result<Redirect, AdminError> {
    let user = local_user(&state, &username).await?;
    let groups = local_groups::parse_list(form.all("groups"));
    local_groups::set(&state.store, &user, &groups, Some(admin.username())).await?;
    Ok(Redirect::to("/admin/users"))
}

/// The administrator's actions on accounts, with their audit entries.
fn actions<'a>(state: &'a AppState, admin: &'a Admin) -> AdminActions<'a> {
    AdminActions {
        desktops: &state.desktops,
        store: &state.store,
        admin: &admin.0.user,
    }
}

/// `POST /admin/users/{username}/delete`: the account, its sessions and desktops (containers
/// stopped and removed) at once; the home volume after `accounts.home_retention_days`, until
/// then listed on this page and restorable. Local and IServ accounts alike: an IServ account
/// cannot sign in here again until restored (or, after the retention, starts anew).
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(username): Path<String>,
    AdminForm { admin, .. }: AdminForm,
) -> Result<Redirect, AdminError> {
    let user = state
        .store
        .user_by_username(&username)
        .await?
        .ok_or(AppError::NotFound)?;
    if user.id == admin.0.user.id {
        return Err(AdminError::Conflict(
            "username: you cannot delete your own account".into(),
        ));
    }
    actions(&state, &admin)
        .delete_user(&user, state.config.accounts.home_retention())
        .await?;
    Ok(Redirect::to("/admin/users"))
}

/// `POST /admin/deleted-users/{id}/restore`: a deleted account back, with its files, while
/// they are kept. 404 once they are gone; 409 if its username is someone else's now.
pub(crate) async fn restore(
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminForm { admin, .. }: AdminForm,
) -> Result<Redirect, AdminError> {
    actions(&state, &admin).restore_user(&id).await.map_err(|e| match e {
        portal_store::StoreError::NotFound => AdminError::App(AppError::NotFound),
        other => other.into(),
    })?;
    Ok(Redirect::to("/admin/users"))
}

/// `POST /admin/users/{username}/link`: the next IServ sign-in with this username may take
/// over the local account (which then loses its password). Without this, an account with a
/// password or an administrator's is never linked.
pub(crate) async fn allow_link(
    State(state): State<AppState>,
    Path(username): Path<String>,
    AdminForm { admin, .. }: AdminForm,
) -> Result<Redirect, AdminError> {
    let user = local_user(&state, &username).await?;
    actions(&state, &admin).allow_link(&user).await?;
    Ok(Redirect::to("/admin/users"))
}

/// `POST /api/admin/users/{username}/end-sessions`: signs a user out everywhere (admins only). Answers `{"ended": n}`; 404 for an unknown user.
#[utoipa::path(post, path = "/api/admin/users/{username}/end-sessions", tag = "admin",
    summary = "Sign a user out everywhere",
    security(("session" = [])),
    params(("username" = String, Path, description = "The user's username"), Csrf),
    responses(
        (status = 200, description = "The user is signed out everywhere", body = EndedSessions),
        (status = 401, description = "Not signed in", body = ErrorResponse),
        (status = 403, description = "Not an administrator, or CSRF token missing or wrong", body = ErrorResponse),
        (status = 404, description = "No such user", body = ErrorResponse),
    ),
)]
pub(crate) async fn end_user_sessions(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(username): Path<String>,
) -> Result<Json<EndedSessions>, AppError> {
    if !me.is_admin() {
        return Err(AppError::AdminOnly);
    }
    let user = state
        .store
        .user_by_username(&username)
        .await?
        .ok_or(AppError::NotFound)?;
    let ended = AdminActions {
        desktops: &state.desktops,
        store: &state.store,
        admin: &me.user,
    }
    .end_sessions(&user)
    .await?;
    Ok(Json(EndedSessions {
        ended,
        username: user.username,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_long_and_differ() {
        let (a, b) = (generate_password(), generate_password());
        assert_eq!(a.len(), 22);
        assert_ne!(a, b);
    }
}
