//! Hand-ins (Abgaben): a teacher sets an assignment for one of her groups with a due time;
//! each student of the group hands files in through `/files/handin/<id>/` (hers to change
//! until due, read-only after, unless late hand-ins are allowed — then marked late); the
//! teacher sees per student what came in and when, downloads all as one zip, and gives each
//! student feedback files back. After the due time the page shows the sealed copy
//! (`domain::handins`).

use std::collections::BTreeSet;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{FromRequest as _, Multipart, Path, Query, Request, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use percent_encoding::utf8_percent_encode;
use portal_files::FilesError;
use portal_store::{Assignment, AuditEvent, AuditKind, NewAssignment, Role};
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::domain::files::{PATH_SEGMENT, SpaceError, SpaceKind};
use crate::domain::unix_now;
use crate::i18n::Lang;
use crate::state::AppState;
use crate::web::error::AppError;
use crate::web::files::{count_write, human_size, open, write_parts};
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
    /// Changed after the due time (late hand-ins allowed): when, in the school's zone.
    pub late: Option<String>,
    pub href: String,
    /// The feedback given so far: its folder and the names in it.
    pub feedback: Vec<String>,
    pub feedback_href: String,
    /// Where the feedback upload form posts.
    pub feedback_action: String,
}

#[derive(askama::Template)]
#[template(path = "teacher_assignment.html")]
pub(crate) struct AssignmentPage<'a> {
    pub lang: Lang,
    pub me: Me<'a>,
    pub a: AssignmentRow,
    pub rows: Vec<HandinRow>,
    pub zip_href: String,
    /// When the hand-ins were sealed (the copy shown here), if they were.
    pub sealed: Option<String>,
    pub notice: Option<&'static str>,
    /// The due time as the form's `datetime-local` value, in the school's zone.
    pub due_value: String,
    /// Whether this teacher may move the due time (its owner, an administrator).
    pub may_move_due: bool,
}

#[derive(Deserialize)]
pub(crate) struct ShowQuery {
    #[serde(default)]
    done: Option<String>,
}

/// A path of one component (a student's home name) in a space.
fn one(name: &str) -> Result<portal_files::RelPath, AppError> {
    portal_files::RelPath::parse(name).map_err(|e| SpaceError::Files(e.into()).into())
}

/// `GET /teacher/assignments/{id}`: per student of the group, what came in and when, and the
/// feedback given back.
pub(crate) async fn show(
    State(state): State<AppState>,
    Teacher(user): Teacher,
    lang: Lang,
    Path(id): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Result<Html<String>, AppError> {
    let kind = SpaceKind::Handins(id.clone());
    // Opening checks that this teacher may see them (owner, teacher of the group, admin), and
    // seals them first once they are due.
    let space = open(&state, &user, &kind).await?;
    let feedback = open(&state, &user, &SpaceKind::Feedbacks(id.clone())).await?;
    let a = state.store.assignment(&id).await?.ok_or(AppError::NotFound)?;
    let mut rows = Vec::new();
    for student in state.store.list_users().await? {
        if student.role != Role::Student || !student.groups.contains(&a.group_name) {
            continue;
        }
        let path = one(&student.home_name)?;
        let sum = match space.summary(path.clone()).await {
            Ok(sum) => sum,
            // Nothing handed in yet: the folder appears with the first file.
            Err(SpaceError::Files(FilesError::NotFound)) => Default::default(),
            Err(e) => return Err(e.into()),
        };
        let given = match feedback.list(path.clone()).await {
            Ok(entries) => entries.into_iter().map(|e| e.name).collect(),
            Err(SpaceError::Files(FilesError::NotFound)) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        // Only an open folder can change after the due time (a sealed copy is as it was
        // then). The kernel's change time, not the file's own time, which a desktop can set.
        let late = (a.sealed_at.is_none() && sum.changed > a.due_at)
            .then(|| time::show(&state.config.timezone, sum.changed, lang));
        let home = utf8_percent_encode(&student.home_name, PATH_SEGMENT);
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
            late,
            href: format!("{}{home}/", kind.url_base("/files")),
            feedback: given,
            feedback_href: format!("{}{home}/", feedback.kind.url_base("/files")),
            feedback_action: format!("/teacher/assignments/{}/feedback/{home}", a.id),
        });
    }
    rows.sort_by(|x, y| x.username.cmp(&y.username));
    html(&AssignmentPage {
        lang,
        me: Me::new(&user),
        a: AssignmentRow::new(&state, &a, lang, unix_now()),
        rows,
        zip_href: format!("{}?zip=1", kind.url_base("/files")),
        sealed: a.sealed_at.map(|t| time::show(&state.config.timezone, t, lang)),
        notice: match q.done.as_deref() {
            Some("feedback") => Some(lang.t("assign_feedback_done")),
            Some("due") => Some(lang.t("assign_due_moved")),
            _ => None,
        },
        due_value: time::input_value(&state.config.timezone, a.due_at),
        may_move_due: a.owner_id == user.user.id || user.is_admin(),
    })
}

/// `POST /teacher/assignments/{id}/feedback/{student}` (multipart, no JavaScript needed): files
/// given back to one student of the group (by her home name), into her feedback folder,
/// which she reads in `/files/feedback/<id>/` and in her desktop. A name taken gets a number.
pub(crate) async fn give_feedback(
    State(state): State<AppState>,
    Teacher(user): Teacher,
    Path((id, home)): Path<(String, String)>,
    req: Request,
) -> Result<Response, AppError> {
    count_write(&state, &user)?;
    // Opening checks that this teacher may give it (owner, teacher of the group, admin).
    let space = open(&state, &user, &SpaceKind::Feedbacks(id.clone())).await?;
    let a = state.store.assignment(&id).await?.ok_or(AppError::NotFound)?;
    let student = state
        .store
        .list_users()
        .await?
        .into_iter()
        .find(|u| u.home_name == home && u.role == Role::Student && u.groups.contains(&a.group_name))
        .ok_or(AppError::NotFound)?;
    let folder = one(&student.home_name)?;
    match space.mkdir(folder.clone()).await {
        Ok(()) | Err(SpaceError::Files(FilesError::Exists)) => {}
        Err(e) => return Err(e.into()),
    }
    let form = Multipart::from_request(req, &state)
        .await
        .map_err(|e| AppError::BadRequest(e.body_text()))?;
    let given: Vec<String> = write_parts(&space, &folder, form)
        .await?
        .iter()
        .map(ToString::to_string)
        .collect();
    if given.is_empty() {
        return Err(AppError::BadRequest(
            "choose at least one file (form field `file`)".into(),
        ));
    }
    crate::domain::audit::record(
        &state.store,
        AuditEvent::new(AuditKind::FilesChanged, "feedback given")
            .actor(user.user.username.clone())
            .target(format!(
                "{} on {} ({}): {}",
                student.username,
                a.title,
                a.id,
                given.join(", ")
            )),
    )
    .await;
    Ok(Redirect::to(&format!("/teacher/assignments/{}?done=feedback", a.id)).into_response())
}

/// The due-time form.
#[derive(Deserialize)]
pub(crate) struct DueForm {
    #[serde(default)]
    due: String,
}

/// `POST /teacher/assignments/{id}/due`: a new due time (its owner or an administrator; to
/// anyone else the assignment does not exist). A seal taken at the old time is void: a later
/// time opens the hand-ins again (from the live folders), and they are sealed anew when the
/// new time comes.
pub(crate) async fn set_due(
    State(state): State<AppState>,
    Teacher(user): Teacher,
    Path(id): Path<String>,
    form: Result<Form<DueForm>, FormRejection>,
) -> Result<Response, AppError> {
    let f = form_fields(form)?;
    let a = state.store.assignment(&id).await?.ok_or(AppError::NotFound)?;
    if a.owner_id != user.user.id && !user.is_admin() {
        return Err(AppError::NotFound);
    }
    let due_at = time::parse_local(&state.config.timezone, &f.due)?;
    state.store.set_assignment_due(&id, due_at).await?;
    crate::domain::audit::record(
        &state.store,
        AuditEvent::new(
            AuditKind::FilesChanged,
            format!("due time moved from {} to {due_at} (unix time)", a.due_at),
        )
        .actor(user.user.username.clone())
        .target(format!("class {}: {} ({})", a.group_name, a.title, a.id)),
    )
    .await;
    Ok(Redirect::to(&format!("/teacher/assignments/{id}?done=due")).into_response())
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
