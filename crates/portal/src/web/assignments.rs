//! Hand-ins (Abgaben): a teacher sets an assignment for one of her groups with a due time;
//! each student of the group hands files in through `/files/handin/<id>/` (hers to change
//! until due, read-only after, unless late hand-ins are allowed — then marked late); the
//! teacher sees per student what came in and when, and downloads all as one zip.

use std::collections::BTreeSet;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use portal_store::{Assignment, AuditEvent, AuditKind, NewAssignment, Role};
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::domain::files::SpaceKind;
use crate::domain::unix_now;
use crate::i18n::Lang;
use crate::state::AppState;
use crate::web::error::AppError;
use crate::web::files::{human_size, open};
use crate::web::pages::{Me, form_fields, html};
use crate::web::teacher::{Teacher, TeacherError};
use crate::web::time;

/// One assignment in a list.
pub(crate) struct AssignmentRow {
    pub id: String,
    pub title: String,
    pub group: String,
    pub due: String,
    pub closed: bool,
    pub allow_late: bool,
}

impl AssignmentRow {
    pub(crate) fn new(state: &AppState, a: &Assignment, lang: Lang, now: i64) -> AssignmentRow {
        AssignmentRow {
            id: a.id.clone(),
            title: a.title.clone(),
            group: a.group_name.clone(),
            due: time::show(&state.config.timezone, a.due_at, lang),
            closed: !a.open_at(now),
            allow_late: a.allow_late,
        }
    }
}

/// The assignments of `groups` (for the teacher page and the students' file tabs).
pub(crate) async fn rows(
    state: &AppState,
    groups: &BTreeSet<String>,
    lang: Lang,
) -> Result<Vec<AssignmentRow>, AppError> {
    let groups: Vec<String> = groups.iter().cloned().collect();
    let now = unix_now();
    Ok(state
        .store
        .assignments_for_groups(&groups)
        .await?
        .iter()
        .map(|a| AssignmentRow::new(state, a, lang, now))
        .collect())
}

#[derive(Deserialize)]
pub(crate) struct NewForm {
    title: String,
    group: String,
    /// `datetime-local`: "2026-12-05T14:30", in the school's time zone.
    due: String,
    #[serde(default)]
    allow_late: Option<String>,
}

/// `POST /teacher/assignments`: a new assignment for one of the teacher's groups.
pub(crate) async fn create(
    State(state): State<AppState>,
    Teacher(user): Teacher,
    form: Result<Form<NewForm>, FormRejection>,
) -> Result<Response, AppError> {
    let f = form_fields(form)?;
    if user.user.role != Role::Admin && !user.user.groups.contains(&f.group) {
        return Err(TeacherError::NotYourGroup(f.group).into());
    }
    let due_at = time::parse_local(&state.config.timezone, &f.due)?;
    let a = state
        .store
        .create_assignment(&NewAssignment {
            owner_id: &user.user.id,
            group_name: &f.group,
            title: &f.title,
            due_at,
            allow_late: f.allow_late.is_some(),
        })
        .await?;
    crate::domain::audit::record(
        &state.store,
        AuditEvent::new(AuditKind::FilesChanged, "assignment set")
            .actor(user.user.username.clone())
            .target(format!("class {}: {} ({})", a.group_name, a.title, a.id)),
    )
    .await;
    Ok(Redirect::to(&format!("/teacher/assignments/{}", a.id)).into_response())
}

/// One student's hand-in on the overview.
pub(crate) struct HandinRow {
    pub student: String,
    pub username: String,
    pub files: u64,
    pub size: String,
    pub last_change: String,
    pub late: bool,
    pub href: String,
}

#[derive(askama::Template)]
#[template(path = "teacher_assignment.html")]
pub(crate) struct AssignmentPage<'a> {
    pub lang: Lang,
    pub me: Me<'a>,
    pub a: AssignmentRow,
    pub rows: Vec<HandinRow>,
    pub zip_href: String,
}

/// `GET /teacher/assignments/{id}`: per student of the group, what came in and when.
pub(crate) async fn show(
    State(state): State<AppState>,
    Teacher(user): Teacher,
    lang: Lang,
    Path(id): Path<String>,
) -> Result<Html<String>, AppError> {
    let kind = SpaceKind::Handins(id.clone());
    // Opening checks that this teacher may see them (owner, teacher of the group, admin).
    let space = open(&state, &user, &kind).await?;
    let a = state.store.assignment(&id).await?.ok_or(AppError::NotFound)?;
    let mut rows = Vec::new();
    for student in state.store.list_users().await? {
        if student.role != Role::Student || !student.groups.contains(&a.group_name) {
            continue;
        }
        let path = portal_files::RelPath::parse(&student.home_name)
            .map_err(|e| crate::domain::files::SpaceError::Files(e.into()))?;
        let sum = match space.summary(path.clone()).await {
            Ok(sum) => sum,
            // Nothing handed in yet: the folder appears with the first file.
            Err(crate::domain::files::SpaceError::Files(portal_files::FilesError::NotFound)) => Default::default(),
            Err(e) => return Err(e.into()),
        };
        rows.push(HandinRow {
            student: student.display_name.clone(),
            username: student.username.clone(),
            files: sum.files,
            size: if sum.files > 0 {
                human_size(sum.bytes, lang)
            } else {
                String::new()
            },
            last_change: if sum.newest > 0 {
                time::show(&state.config.timezone, sum.newest, lang)
            } else {
                String::new()
            },
            late: sum.newest > a.due_at,
            href: format!("{}{}/", kind.url_base("/files"), student.home_name),
        });
    }
    rows.sort_by(|x, y| x.username.cmp(&y.username));
    html(&AssignmentPage {
        lang,
        me: Me::new(&user),
        a: AssignmentRow::new(&state, &a, lang, unix_now()),
        rows,
        zip_href: format!("{}?zip=1", kind.url_base("/files")),
    })
}

/// `POST /teacher/assignments/{id}/delete`: the assignment and its hand-ins (owner or admin).
pub(crate) async fn delete(
    State(state): State<AppState>,
    Teacher(user): Teacher,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let a = state.store.assignment(&id).await?.ok_or(AppError::NotFound)?;
    if a.owner_id != user.user.id && !user.is_admin() {
        return Err(AppError::NotFound);
    }
    state.store.delete_assignment(&id).await?;
    state.files.remove_handins(&id).await?;
    crate::domain::audit::record(
        &state.store,
        AuditEvent::new(AuditKind::FilesChanged, "assignment deleted with its hand-ins")
            .actor(user.user.username.clone())
            .target(format!("class {}: {} ({})", a.group_name, a.title, a.id)),
    )
    .await;
    Ok(Redirect::to("/teacher#assignments").into_response())
}

/// The student's view of a current user: which assignments she has (for the files tabs).
pub(crate) async fn of_student(
    state: &AppState,
    user: &CurrentUser,
    lang: Lang,
) -> Result<Vec<AssignmentRow>, AppError> {
    let groups: BTreeSet<String> = user.user.groups.iter().cloned().collect();
    rows(state, &groups, lang).await
}
