//! The class actions on `/teacher` (plain forms, no JavaScript needed): stop or restart one
//! student's desktop, end the lesson of a group (after a confirmation page), and a short
//! message to a group. The rules and the audit entries are in
//! [`crate::domain::class_actions`]; this module translates forms to calls and back.
//!
//! Desktop actions answer a desktop of someone the user does not teach exactly like a missing
//! one (404), for students too; group actions refuse students (`teacher_only`) and another
//! teacher's group (`not_your_group`) with 403.

use std::collections::BTreeSet;

use askama::Template;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::response::sse::Event;
use axum::response::{Html, Redirect};
use portal_store::ClassMessage;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use crate::auth::CurrentUser;
use crate::domain::class_actions::{ClassActions, ClassError, lesson_desktops, up_in_group};
use crate::domain::unix_now;
use crate::i18n::Lang;
use crate::state::AppState;
use crate::web::api::types::{ClassMessageView, ClassMessages};
use crate::web::error::AppError;
use crate::web::pages::{Me, form_fields, html};
use crate::web::teacher::{Teacher, TeacherError};

/// Where every action returns to: the teacher page's class section, with "Saved".
const BACK: &str = "/teacher?saved=1#class-actions";

impl From<ClassError> for AppError {
    fn from(e: ClassError) -> Self {
        match e {
            // The same answer as for a desktop that does not exist.
            ClassError::DesktopNotFound(_) => AppError::ForbiddenDesktop,
            ClassError::TeacherOnly => TeacherError::TeacherOnly.into(),
            ClassError::NotYourGroup(group) => TeacherError::NotYourClass(group).into(),
            ClassError::Lifecycle(e) => e.into(),
            ClassError::Store(e) => e.into(),
        }
    }
}

fn actions<'a>(state: &'a AppState, user: &'a CurrentUser) -> ClassActions<'a> {
    ClassActions {
        desktops: &state.desktops,
        store: &state.store,
        messages: &state.class_messages,
        actor: &user.user,
    }
}

/// A group's message as the teacher page shows it.
pub(crate) struct MessageRow {
    pub body: String,
    pub author: String,
    pub until: String,
}

/// One of the teacher's groups with its actions.
pub(crate) struct ClassPanel {
    pub group: String,
    /// "3 desktops running", in the page's language.
    pub running: String,
    pub message: Option<MessageRow>,
}

/// The panels of `groups` (every group, for an administrator) for `/teacher`.
pub(crate) async fn panels(
    state: &AppState,
    groups: &BTreeSet<String>,
    lang: Lang,
) -> Result<Vec<ClassPanel>, AppError> {
    let groups: Vec<String> = groups.iter().cloned().collect();
    let messages = state.store.class_messages_for(&groups, unix_now()).await?;
    let users = state.store.list_users().await?;
    let desktops = state.store.all_desktops().await?;
    Ok(groups
        .into_iter()
        .map(|group| {
            let running = up_in_group(&group, &users, &desktops).count();
            let message = messages.iter().find(|m| m.group_name == group).map(|m| MessageRow {
                body: m.body.clone(),
                author: m.author_name.clone(),
                until: crate::web::time::show(&state.config.timezone, m.expires_at, lang),
            });
            ClassPanel {
                running: lang.t_with("class_running", &[("n", running as i64)]),
                group,
                message,
            }
        })
        .collect())
}

/// `POST /teacher/desktops/{id}/stop`: stops a student's desktop.
pub(crate) async fn stop(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Redirect, AppError> {
    actions(&state, &user).stop(&id).await?;
    Ok(Redirect::to(BACK))
}

/// `POST /teacher/desktops/{id}/restart`: stops a student's desktop and starts it again.
pub(crate) async fn restart(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Redirect, AppError> {
    actions(&state, &user).restart(&id).await?;
    Ok(Redirect::to(BACK))
}

#[derive(Deserialize)]
pub(crate) struct GroupQuery {
    #[serde(default)]
    group: String,
}

/// The confirmation before a lesson ends.
#[derive(Template)]
#[template(path = "teacher_end_lesson.html")]
pub(crate) struct EndLessonPage<'a> {
    pub lang: Lang,
    pub me: Me<'a>,
    pub group: String,
    /// The students whose desktops run or start now.
    pub students: Vec<String>,
}

/// `GET /teacher/end-lesson?group=…`: which desktops would stop, and the button that does it.
pub(crate) async fn confirm_end_lesson(
    State(state): State<AppState>,
    Teacher(user): Teacher,
    lang: Lang,
    Query(q): Query<GroupQuery>,
) -> Result<Html<String>, AppError> {
    let group = q.group.trim().to_owned();
    if !user.is_admin() && !user.user.groups.contains(&group) {
        return Err(TeacherError::NotYourClass(group).into());
    }
    let mut students: Vec<String> = lesson_desktops(&state.store, &group)
        .await?
        .iter()
        .map(|(_, u)| format!("{} ({})", u.display_name, u.username))
        .collect();
    students.sort();
    students.dedup();
    html(&EndLessonPage {
        lang,
        me: Me::new(&user),
        group,
        students,
    })
}

#[derive(Deserialize)]
pub(crate) struct GroupForm {
    #[serde(default)]
    group: String,
}

/// `POST /teacher/end-lesson` (`group`): stops every desktop of the group's students.
pub(crate) async fn end_lesson(
    State(state): State<AppState>,
    Teacher(user): Teacher,
    form: Result<Form<GroupForm>, FormRejection>,
) -> Result<Redirect, AppError> {
    let f = form_fields(form)?;
    actions(&state, &user).end_lesson(&f.group).await?;
    Ok(Redirect::to(BACK))
}

#[derive(Deserialize)]
pub(crate) struct MessageForm {
    #[serde(default)]
    group: String,
    #[serde(default)]
    text: String,
}

/// `POST /teacher/messages` (`group`, `text`): the group's students see `text` for an hour.
pub(crate) async fn send_message(
    State(state): State<AppState>,
    Teacher(user): Teacher,
    form: Result<Form<MessageForm>, FormRejection>,
) -> Result<Redirect, AppError> {
    let f = form_fields(form)?;
    actions(&state, &user).set_message(&f.group, &f.text).await?;
    Ok(Redirect::to(BACK))
}

/// `POST /teacher/messages/clear` (`group`): the group's message goes at once.
pub(crate) async fn clear_message(
    State(state): State<AppState>,
    Teacher(user): Teacher,
    form: Result<Form<GroupForm>, FormRejection>,
) -> Result<Redirect, AppError> {
    let f = form_fields(form)?;
    actions(&state, &user).clear_message(&f.group).await?;
    Ok(Redirect::to(BACK))
}

/// The messages `user`'s teachers left for her groups, for her dashboard and view page.
pub(crate) async fn messages_for(state: &AppState, user: &CurrentUser) -> Result<Vec<ClassMessage>, AppError> {
    Ok(state.store.class_messages_for(&user.user.groups, unix_now()).await?)
}

/// `class_messages` events for `/api/events`: the user's current messages whenever one of
/// her groups' changes (set, replaced, cleared), and once at the start if she has any (a
/// reconnecting page catches up). `groups` are the user's groups when the stream opened.
pub(crate) fn live_messages(
    state: &AppState,
    groups: Vec<String>,
) -> impl futures_util::Stream<Item = Event> + Send + use<> {
    let rx = state.class_messages.subscribe();
    let store = state.store.clone();
    futures_util::stream::unfold((rx, true), move |(mut rx, mut first)| {
        let (store, groups) = (store.clone(), groups.clone());
        async move {
            loop {
                if !first {
                    match rx.recv().await {
                        Ok(group) if groups.contains(&group) => {}
                        Ok(_) => continue,
                        // Missed changes: the whole list again is all the page needs.
                        Err(RecvError::Lagged(_)) => {}
                        Err(RecvError::Closed) => return None,
                    }
                }
                let messages = match store.class_messages_for(&groups, unix_now()).await {
                    Ok(m) => m,
                    Err(e) => {
                        // The page keeps what it shows; the next change tries again.
                        tracing::warn!(error = %e, "reading class messages for a live update failed");
                        first = false;
                        continue;
                    }
                };
                if first && messages.is_empty() {
                    first = false;
                    continue;
                }
                let live = ClassMessages {
                    messages: messages
                        .into_iter()
                        .map(|m| ClassMessageView {
                            group: m.group_name,
                            body: m.body,
                            author: m.author_name,
                            expires_at: m.expires_at,
                        })
                        .collect(),
                };
                let event = Event::default()
                    .event("class_messages")
                    .json_data(live)
                    .unwrap_or_default();
                return Some((event, (rx, false)));
            }
        }
    })
}
