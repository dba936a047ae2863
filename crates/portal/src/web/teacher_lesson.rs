//! The teacher page's "prepare the lesson": `POST /teacher/lesson` (`group`, `type`) starts a
//! desktop of the type for every student of the group ([`crate::domain::lesson`]); `GET
//! /teacher/lesson` renders how far each prepared lesson got (queued, starting, running,
//! failed), which `static/teacher.js` refreshes. Teachers act for their own groups only,
//! administrators for any.

use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::response::{Html, IntoResponse, Redirect, Response};
use portal_store::{DesktopType, User};
use serde::Deserialize;

use crate::domain::lesson::{Counts, LessonError};
use crate::domain::unix_now;
use crate::i18n::Lang;
use crate::state::AppState;
use crate::web::error::AppError;
use crate::web::events::ago;
use crate::web::pages::{form_fields, html};
use crate::web::teacher::{Teacher, TeacherError, type_name};

impl From<LessonError> for AppError {
    fn from(e: LessonError) -> Self {
        // The same refusals as the rest of the teacher page.
        match e {
            LessonError::NotYourGroup(group) => TeacherError::NotYourGroup(group).into(),
            LessonError::UnknownType(key) => TeacherError::TypeNotGrantable(key).into(),
            LessonError::Store(e) => AppError::Store(e),
        }
    }
}

/// One prepared lesson on the page.
pub(crate) struct LessonRow {
    pub group: String,
    pub type_name: String,
    pub by: String,
    pub when: String,
    pub counts: Counts,
    pub skipped: Vec<SkippedRow>,
}

/// A student whose desktop the lesson did not start.
pub(crate) struct SkippedRow {
    pub student: String,
    pub username: String,
    /// The reason's translation key.
    pub reason: &'static str,
}

/// The prepared lessons of the groups `user` teaches (any, for an administrator).
pub(crate) async fn rows(
    state: &AppState,
    user: &User,
    lang: Lang,
    all_types: &[DesktopType],
) -> Result<Vec<LessonRow>, AppError> {
    let now = unix_now();
    Ok(state
        .lessons
        .status(user)
        .await?
        .into_iter()
        .map(|(l, counts)| LessonRow {
            type_name: type_name(all_types, lang, &l.type_key),
            when: ago(lang, l.at, now),
            counts,
            skipped: l
                .skipped
                .into_iter()
                .map(|(student, username, skip)| SkippedRow {
                    student,
                    username,
                    reason: skip.key(),
                })
                .collect(),
            group: l.group,
            by: l.by,
        })
        .collect())
}

/// The lessons' progress alone, for `static/teacher.js` to refresh the page with.
#[derive(askama::Template)]
#[template(path = "teacher_lesson_status.html")]
pub(crate) struct LessonStatus {
    pub lang: Lang,
    pub lessons: Vec<LessonRow>,
}

/// `GET /teacher/lesson`: the prepared lessons' progress as an HTML fragment.
pub(crate) async fn status(
    State(state): State<AppState>,
    Teacher(user): Teacher,
    lang: Lang,
) -> Result<Html<String>, AppError> {
    let all_types = state.store.list_desktop_types().await?;
    let lessons = rows(&state, &user.user, lang, &all_types).await?;
    html(&LessonStatus { lang, lessons })
}

#[derive(Deserialize)]
pub(crate) struct LessonForm {
    #[serde(default)]
    group: String,
    #[serde(rename = "type", default)]
    type_key: String,
}

/// `POST /teacher/lesson` (`group`, `type`): start the group's desktops; back to the page,
/// which shows how far they got and whom it skipped.
pub(crate) async fn prepare(
    State(state): State<AppState>,
    Teacher(user): Teacher,
    form: Result<Form<LessonForm>, FormRejection>,
) -> Result<Response, AppError> {
    let f = form_fields(form)?;
    state.lessons.prepare(&user.user, &f.group, &f.type_key).await?;
    Ok(Redirect::to("/teacher#lesson").into_response())
}
