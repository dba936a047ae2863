//! `/teacher`: teachers enable desktop types for their own groups and see which of their
//! students' desktops run. Admins see every group and every student.
//!
//! A teacher's grant adds a group to a *restricted* type (one limited to some groups or
//! users); a type open to everyone stays open. Grants live in their own table, so they never
//! rewrite an admin's settings. The page is plain forms: it works without JavaScript.

use axum::extract::FromRequestParts;
use http::request::Parts;
use std::collections::BTreeSet;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use http::StatusCode;
use portal_store::{DesktopType, Role, User};
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::domain::access::{effective_type, may_use_type, with_grants};
use crate::domain::unix_now;
use crate::i18n::Lang;
use crate::state::AppState;
use crate::web::error::AppError;
use crate::web::events::{ago, state_key};
use crate::web::pages::{Me, form_fields, html};

/// Why a teacher's request was refused.
#[derive(Debug, thiserror::Error)]
pub enum TeacherError {
    #[error("only teachers and administrators may do this")]
    TeacherOnly,
    #[error("not a member of group {0:?}")]
    NotYourGroup(String),
    /// A class action on a group the teacher is not in.
    #[error("not a teacher of group {0:?}")]
    NotYourClass(String),
    #[error("desktop type {0:?} is unknown, disabled or not available to you")]
    TypeNotGrantable(String),
}

impl TeacherError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            TeacherError::TeacherOnly | TeacherError::NotYourGroup(_) | TeacherError::NotYourClass(_) => {
                StatusCode::FORBIDDEN
            }
            TeacherError::TypeNotGrantable(_) => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    /// Machine code and catalogue key.
    pub(crate) fn code_and_key(&self) -> (&'static str, &'static str) {
        match self {
            TeacherError::TeacherOnly => ("teacher_only", "err_teacher_only"),
            TeacherError::NotYourGroup(_) => ("not_your_group", "err_not_your_group"),
            TeacherError::NotYourClass(_) => ("not_your_group", "err_not_your_class"),
            TeacherError::TypeNotGrantable(_) => ("type_not_grantable", "err_type_not_grantable"),
        }
    }
}

/// A signed-in teacher or administrator; students get 403, nobody signed in the sign-in page.
pub(crate) struct Teacher(pub CurrentUser);

impl FromRequestParts<AppState> for Teacher {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let user = CurrentUser::from_request_parts(parts, state).await?;
        match user.user.role {
            Role::Teacher | Role::Admin => Ok(Teacher(user)),
            Role::Student => Err(TeacherError::TeacherOnly.into()),
        }
    }
}

/// The groups `user` may grant to and whose students they see: their own; admins all.
fn my_groups(user: &User, everyone: &[User]) -> BTreeSet<String> {
    if user.role == Role::Admin {
        everyone.iter().flat_map(|u| u.groups.iter().cloned()).collect()
    } else {
        user.groups.iter().cloned().collect()
    }
}

/// One grant row on the page.
pub(crate) struct GrantRow {
    pub type_key: String,
    pub type_name: String,
    pub group: String,
    pub granted_by: String,
}

/// One student desktop on the page.
#[derive(Clone)]
pub(crate) struct StudentRow {
    pub student: String,
    pub username: String,
    pub groups: String,
    /// The groups of `groups`, one by one (the class grids).
    pub group_list: Vec<String>,
    pub desktop_id: String,
    pub type_name: String,
    pub state: &'static str,
    pub state_key: &'static str,
    pub started: String,
    pub last_input: String,
}

/// An option in a select.
pub(crate) struct Choice {
    pub value: String,
    pub label: String,
}

#[derive(askama::Template)]
#[template(path = "teacher.html")]
pub(crate) struct TeacherPage<'a> {
    pub lang: Lang,
    pub me: Me<'a>,
    pub groups: Vec<String>,
    pub types: Vec<Choice>,
    pub grants: Vec<GrantRow>,
    pub students: Vec<StudentRow>,
    pub grid: crate::web::screens::Grid,
    pub saved: bool,
    pub assignments: Vec<crate::web::assignments::AssignmentRow>,
    /// Prepared lessons and how far they got (`web/teacher_lesson.rs`).
    pub lessons: Vec<crate::web::teacher_lesson::LessonRow>,
    pub classes: Vec<crate::web::teacher_class::ClassPanel>,
    /// Open requests for help (`web/help.rs`).
    pub help: crate::web::help::TeacherPanel,
}

#[derive(Deserialize, Default)]
pub(crate) struct ShowQuery {
    #[serde(default)]
    saved: Option<String>,
}

/// `GET /teacher`.
pub(crate) async fn show(
    State(state): State<AppState>,
    Teacher(user): Teacher,
    lang: Lang,
    Query(q): Query<ShowQuery>,
) -> Result<Html<String>, AppError> {
    let view = View::load(&state, &user, lang).await?;
    let lang = view.lang;
    let type_name = |key: &str| type_name(&view.all_types, lang, key);
    let grants = state.store.type_grants().await?;
    let types = view
        .all_types
        .iter()
        .map(|t| with_grants(t.clone(), &grants))
        .filter(|t| t.enabled && may_use_type(&user.user, t))
        .map(|t| Choice {
            label: t.name(lang.code()).to_owned(),
            value: t.key,
        })
        .collect();
    let grant_rows = grants
        .iter()
        .filter(|g| view.groups.contains(&g.group_name))
        .map(|g| GrantRow {
            type_name: type_name(&g.type_key),
            type_key: g.type_key.clone(),
            group: g.group_name.clone(),
            granted_by: g.granted_by.clone().unwrap_or_default(),
        })
        .collect();
    let students = student_rows(&state, &user, &view).await?;
    let assignments = crate::web::assignments::rows(&state, &view.groups, lang).await?;
    let lessons = crate::web::teacher_lesson::rows(&state, &user.user, lang, &view.all_types).await?;
    let classes = crate::web::teacher_class::panels(&state, &view.groups, lang).await?;
    let help = crate::web::help::teacher_panel(&state, &user, lang).await;
    html(&TeacherPage {
        lessons,
        help,
        grid: crate::web::screens::Grid::new(&state, &students),
        assignments,
        classes,
        lang,
        me: Me::new(&user),
        groups: view.groups.iter().cloned().collect(),
        types,
        grants: grant_rows,
        students,
        saved: q.saved.is_some(),
    })
}

/// What both the page and its student list start from.
struct View {
    lang: Lang,
    everyone: Vec<User>,
    /// The groups the user teaches (all groups, for an admin).
    groups: BTreeSet<String>,
    all_types: Vec<DesktopType>,
}

impl View {
    /// Reads users and types (the [`Teacher`] extractor already refused everyone else).
    async fn load(state: &AppState, user: &CurrentUser, lang: Lang) -> Result<View, AppError> {
        let everyone = state.store.list_users().await?;
        Ok(View {
            lang,
            groups: my_groups(&user.user, &everyone),
            everyone,
            all_types: state.store.list_desktop_types().await?,
        })
    }
}

/// A type's name in `lang`, or its key when the type is gone.
pub(crate) fn type_name(all_types: &[DesktopType], lang: Lang, key: &str) -> String {
    all_types
        .iter()
        .find(|t| t.key == key)
        .map(|t| t.name(lang.code()).to_owned())
        .unwrap_or_else(|| key.to_owned())
}

/// The desktops of the students in `groups` (every student's, for an admin): running ones
/// first, then by student.
async fn student_rows(state: &AppState, user: &CurrentUser, view: &View) -> Result<Vec<StudentRow>, AppError> {
    let View {
        lang,
        everyone,
        groups,
        all_types,
    } = view;
    let lang = *lang;
    let type_name = |key: &str| type_name(all_types, lang, key);
    let now = unix_now();
    let when = |ts: Option<i64>| ts.map(|t| ago(lang, t, now)).unwrap_or_default();
    let mut students = Vec::new();
    for d in state.store.all_desktops().await? {
        let Some(owner) = everyone.iter().find(|u| u.id == d.user_id) else {
            continue;
        };
        let shared: Vec<&str> = owner
            .groups
            .iter()
            .filter(|g| groups.contains(*g))
            .map(String::as_str)
            .collect();
        // Students of one of my groups; admins see every student.
        if !crate::domain::access::teaches(&user.user, owner) {
            continue;
        }
        students.push(StudentRow {
            student: owner.display_name.clone(),
            username: owner.username.clone(),
            groups: shared.join(", "),
            group_list: shared.iter().map(|g| (*g).to_owned()).collect(),
            type_name: type_name(&d.type_key),
            state: d.state.as_str(),
            state_key: state_key(Some(d.state)),
            started: when(d.started_at),
            last_input: when(d.last_activity_at),
            desktop_id: d.id,
        });
    }
    students.sort_by(|a, b| (a.state != "running", &a.username).cmp(&(b.state != "running", &b.username)));
    Ok(students)
}

/// The student list alone, for `static/teacher.js` to refresh the page with.
#[derive(askama::Template)]
#[template(path = "teacher_students.html")]
pub(crate) struct StudentList<'a> {
    pub lang: Lang,
    pub me: Me<'a>,
    pub students: Vec<StudentRow>,
    pub grid: crate::web::screens::Grid,
}

/// `GET /teacher/students`: the student list of `/teacher` as an HTML fragment, under the
/// same rules (teachers and admins; a teacher sees the students of her own groups only).
pub(crate) async fn students(
    State(state): State<AppState>,
    Teacher(user): Teacher,
    lang: Lang,
) -> Result<Html<String>, AppError> {
    let view = View::load(&state, &user, lang).await?;
    let students = student_rows(&state, &user, &view).await?;
    html(&StudentList {
        lang: view.lang,
        me: Me::new(&user),
        grid: crate::web::screens::Grid::new(&state, &students),
        students,
    })
}

#[derive(Deserialize)]
pub(crate) struct GrantForm {
    #[serde(rename = "type", default)]
    type_key: String,
    #[serde(default)]
    group: String,
}

/// The form, once the user may change grants of its group: teachers their own groups, admins
/// any.
fn authorized(user: &CurrentUser, form: Result<Form<GrantForm>, FormRejection>) -> Result<GrantForm, AppError> {
    let f = form_fields(form)?;
    let group = f.group.trim();
    if !user.is_admin() && !user.user.groups.iter().any(|g| g == group) {
        return Err(TeacherError::NotYourGroup(group.to_owned()).into());
    }
    Ok(f)
}

/// `POST /teacher/grants` (`type`, `group`): enable a type for one of my groups.
pub(crate) async fn grant(
    State(state): State<AppState>,
    Teacher(user): Teacher,
    form: Result<Form<GrantForm>, FormRejection>,
) -> Result<Response, AppError> {
    let f = authorized(&user, form)?;
    let not_grantable = || TeacherError::TypeNotGrantable(f.type_key.clone());
    let t = state.store.desktop_type(&f.type_key).await?.ok_or_else(not_grantable)?;
    // A teacher passes on only what they may use themselves.
    let t = effective_type(&state.store, t).await?;
    if !t.enabled || !may_use_type(&user.user, &t) {
        return Err(not_grantable().into());
    }
    state.store.grant_type(&t.key, &f.group, &user.user.id).await?;
    tracing::info!(teacher = %user.user.username, desktop_type = %t.key, group = %f.group.trim(), "desktop type enabled for a group");
    Ok(Redirect::to("/teacher?saved=1").into_response())
}

/// `POST /teacher/grants/remove` (`type`, `group`): withdraw a grant of one of my groups.
pub(crate) async fn revoke(
    State(state): State<AppState>,
    Teacher(user): Teacher,
    form: Result<Form<GrantForm>, FormRejection>,
) -> Result<Response, AppError> {
    let f = authorized(&user, form)?;
    state.store.revoke_type(&f.type_key, &f.group).await?;
    tracing::info!(teacher = %user.user.username, desktop_type = %f.type_key, group = %f.group.trim(), "desktop type grant withdrawn");
    Ok(Redirect::to("/teacher?saved=1").into_response())
}
