//! "Prepare the lesson": a teacher starts desktops of one type for every student of one of her
//! groups ahead of time (administrators: of any group). Each start is the student's own, as if
//! she had pressed Start — her rights and limits, her desktop, the fair start queue — and its
//! audit entries name the teacher as the one who asked. The latest lesson of each group is
//! kept in memory, so the teacher page can count how far it got.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use portal_store::{DesktopState, Role, Store, StoreError, User};
use tracing::{info, warn};

use super::lifecycle::{Lifecycle, LifecycleError, OnBehalf};

/// Why a lesson could not be prepared at all.
#[derive(Debug, thiserror::Error)]
pub enum LessonError {
    #[error("not a member of group {0:?}")]
    NotYourGroup(String),
    #[error("desktop type {0:?} is unknown or disabled")]
    UnknownType(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why one student's desktop was not started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// The type is not available to her (or disabled for her).
    NotAllowed,
    /// She runs as many desktops as she may.
    AtLimit,
    /// Another desktop of hers is starting; one start at a time.
    OtherStart,
    /// The portal's total limit or the start queue is full.
    ServerFull,
    /// Her home is over its quota; she must make room first.
    HomeFull,
    /// Anything else (the engine, the database); the log says what.
    Failed,
}

impl Skip {
    /// The translation key of the reason.
    pub fn key(self) -> &'static str {
        match self {
            Skip::NotAllowed => "lesson_skip_not_allowed",
            Skip::AtLimit => "lesson_skip_limit",
            Skip::OtherStart => "lesson_skip_other_start",
            Skip::ServerFull => "lesson_skip_full",
            Skip::HomeFull => "lesson_skip_home_full",
            Skip::Failed => "lesson_skip_failed",
        }
    }

    fn of(e: &LifecycleError) -> Skip {
        match e {
            LifecycleError::TypeNotAllowed(_) | LifecycleError::TypeDisabled(_) => Skip::NotAllowed,
            LifecycleError::LimitUser { .. } => Skip::AtLimit,
            LifecycleError::StartInFlight => Skip::OtherStart,
            LifecycleError::LimitTotal { .. } | LifecycleError::StartQueueFull { .. } => Skip::ServerFull,
            LifecycleError::HomeOverQuota { .. } => Skip::HomeFull,
            _ => Skip::Failed,
        }
    }
}

/// One prepared lesson.
#[derive(Clone, Debug)]
pub struct Lesson {
    pub group: String,
    pub type_key: String,
    /// The username of the teacher (or administrator) who prepared it.
    pub by: String,
    /// Unix seconds.
    pub at: i64,
    /// The students' desktops it started or found starting or running.
    pub desktops: Vec<String>,
    /// Students whose desktop was not started (display name, username, why).
    pub skipped: Vec<(String, String, Skip)>,
}

/// How far a lesson's desktops got.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Waiting for their turn in the start queue.
    pub queued: usize,
    pub starting: usize,
    pub running: usize,
    pub failed: usize,
    /// Stopped (or removed) since.
    pub stopped: usize,
}

/// Whether `user` may act on `group`'s lesson: its teachers, and administrators.
pub fn may_teach(user: &User, group: &str) -> bool {
    user.role == Role::Admin || (user.role == Role::Teacher && user.groups.iter().any(|g| g == group))
}

/// Prepared lessons, the latest per group.
pub struct Lessons {
    store: Store,
    desktops: Arc<Lifecycle>,
    latest: Mutex<BTreeMap<String, Lesson>>,
}

impl Lessons {
    pub fn new(store: Store, desktops: Arc<Lifecycle>) -> Self {
        Lessons {
            store,
            desktops,
            latest: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Lesson>> {
        self.latest.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a desktop of `type_key` for every student of `group`, on `teacher`'s request;
    /// those who may not have one, or not now, are skipped and reported.
    pub async fn prepare(&self, teacher: &User, group: &str, type_key: &str) -> Result<Lesson, LessonError> {
        let group = group.trim();
        if !may_teach(teacher, group) {
            return Err(LessonError::NotYourGroup(group.to_owned()));
        }
        match self.store.desktop_type(type_key).await? {
            Some(t) if t.enabled => {}
            _ => return Err(LessonError::UnknownType(type_key.to_owned())),
        }
        let on_behalf = OnBehalf {
            actor: teacher.username.clone(),
            why: format!("{} prepared the lesson of group {group}", teacher.username),
        };
        let mut lesson = Lesson {
            group: group.to_owned(),
            type_key: type_key.to_owned(),
            by: teacher.username.clone(),
            at: super::unix_now(),
            desktops: Vec::new(),
            skipped: Vec::new(),
        };
        let mut students: Vec<User> = self
            .store
            .list_users()
            .await?
            .into_iter()
            .filter(|u| u.role == Role::Student && u.groups.iter().any(|g| g == group))
            .collect();
        students.sort_by(|a, b| a.username.cmp(&b.username));
        for student in &students {
            match self
                .desktops
                .start_for(student, type_key, Some(on_behalf.clone()))
                .await
            {
                Ok(d) => lesson.desktops.push(d.id),
                Err(e) => {
                    let skip = Skip::of(&e);
                    if skip == Skip::Failed {
                        warn!(student = %student.username, error = %e, "a lesson's start failed");
                    }
                    lesson
                        .skipped
                        .push((student.display_name.clone(), student.username.clone(), skip));
                }
            }
        }
        info!(
            teacher = %teacher.username,
            group,
            desktop_type = type_key,
            started = lesson.desktops.len(),
            skipped = lesson.skipped.len(),
            "lesson prepared"
        );
        self.lock().insert(group.to_owned(), lesson.clone());
        Ok(lesson)
    }

    /// The latest lesson of each group `user` teaches (any, for an administrator), with how
    /// far its desktops got.
    pub async fn status(&self, user: &User) -> Result<Vec<(Lesson, Counts)>, StoreError> {
        let lessons: Vec<Lesson> = self
            .lock()
            .values()
            .filter(|l| may_teach(user, &l.group))
            .cloned()
            .collect();
        let mut out = Vec::with_capacity(lessons.len());
        for lesson in lessons {
            let mut counts = Counts::default();
            for id in &lesson.desktops {
                match self.store.desktop(id).await?.map(|d| d.state) {
                    Some(DesktopState::Starting) if self.desktops.queue_place(id).is_some() => counts.queued += 1,
                    Some(DesktopState::Starting) => counts.starting += 1,
                    Some(DesktopState::Running) => counts.running += 1,
                    Some(DesktopState::Failed) => counts.failed += 1,
                    Some(DesktopState::Stopping | DesktopState::Stopped) | None => counts.stopped += 1,
                }
            }
            out.push((lesson, counts));
        }
        Ok(out)
    }
}
