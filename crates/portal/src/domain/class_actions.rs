//! What teachers do to their classes, without the web: stop or restart a student's desktop,
//! end the lesson (stop every desktop of a group's students), and a short message to a group.
//! Each action is checked here (teachers their own groups' students, administrators anyone)
//! and written to the audit log here, so every page and API that offers it leaves one trace.

use std::sync::Arc;

use portal_store::{AuditEvent, AuditKind, ClassMessage, Desktop, DesktopState, Role, Store, StoreError, User};
use tokio::sync::broadcast;

use super::access::teaches;
use super::lifecycle::{Lifecycle, LifecycleError};
use super::stop_reason::StopReason;
use super::unix_now;

/// How long a message to a group is shown unless its teacher clears it sooner: a lesson.
pub const MESSAGE_SECONDS: i64 = 3600;

/// Why a class action was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ClassError {
    /// Unknown, or not a desktop of the actor's students: the same answer either way, so
    /// nobody learns who has which desktop.
    #[error("desktop {0:?} is unknown or not one of your students'")]
    DesktopNotFound(String),
    #[error("only teachers and administrators may do this")]
    TeacherOnly,
    #[error("not a teacher of group {0:?}")]
    NotYourGroup(String),
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Tells open event streams which groups' messages changed; each stream re-reads its user's.
#[derive(Debug)]
pub struct ClassMessages {
    tx: broadcast::Sender<String>,
}

impl Default for ClassMessages {
    fn default() -> Self {
        ClassMessages {
            tx: broadcast::channel(64).0,
        }
    }
}

impl ClassMessages {
    /// Group names whose message changed, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.tx.subscribe()
    }

    fn changed(&self, group: &str) {
        // Nobody listening is fine: pages read the message when they load.
        let _ = self.tx.send(group.to_owned());
    }
}

/// A teacher or administrator acting on a class.
pub struct ClassActions<'a> {
    pub desktops: &'a Arc<Lifecycle>,
    pub store: &'a Store,
    pub messages: &'a ClassMessages,
    pub actor: &'a User,
}

impl ClassActions<'_> {
    /// Desktop `id` with its owner, if the actor teaches the owner; else `DesktopNotFound`,
    /// exactly as for a desktop that does not exist.
    async fn student_desktop(&self, id: &str) -> Result<(Desktop, User), ClassError> {
        let missing = || ClassError::DesktopNotFound(id.to_owned());
        let d = self.store.desktop(id).await?.ok_or_else(missing)?;
        let owner = self.store.user_by_id(&d.user_id).await?.ok_or_else(missing)?;
        if !teaches(self.actor, &owner) {
            return Err(missing());
        }
        Ok((d, owner))
    }

    /// Refuses a group the actor does not teach: students always, teachers groups they are
    /// not in; administrators may act on any group.
    fn check_group(&self, group: &str) -> Result<(), ClassError> {
        match self.actor.role {
            Role::Admin => Ok(()),
            Role::Teacher if self.actor.groups.iter().any(|g| g == group) => Ok(()),
            Role::Teacher => Err(ClassError::NotYourGroup(group.to_owned())),
            Role::Student => Err(ClassError::TeacherOnly),
        }
    }

    /// The stop reason the student's page shows.
    fn reason(&self) -> StopReason {
        if self.actor.role == Role::Admin {
            StopReason::ByAdmin
        } else {
            StopReason::ByTeacher
        }
    }

    async fn audit(&self, detail: String, student: Option<&str>, target: Option<&str>) {
        let mut event = AuditEvent::new(AuditKind::ClassAction, detail).actor(&self.actor.username);
        if let Some(student) = student {
            event = event.user(student);
        }
        if let Some(target) = target {
            event = event.target(target);
        }
        super::audit::record(self.store, event).await;
    }

    /// Stops a student's desktop (nothing to do if it does not run).
    pub async fn stop(&self, id: &str) -> Result<(), ClassError> {
        self.stopped_student_desktop(id, "stopped").await?;
        Ok(())
    }

    /// Stops a student's desktop if it runs and starts it again, as its owner would (the
    /// owner's types and limits apply). The start goes on in the background.
    pub async fn restart(&self, id: &str) -> Result<Desktop, ClassError> {
        let (d, owner) = self.stopped_student_desktop(id, "restarted").await?;
        Ok(self.desktops.start(&owner, &d.type_key).await?)
    }

    /// Stops desktop `id` of one of the actor's students if it is up, and logs and audits
    /// `what` (stopped, restarted) was done to it.
    async fn stopped_student_desktop(&self, id: &str, what: &str) -> Result<(Desktop, User), ClassError> {
        let (d, owner) = self.student_desktop(id).await?;
        if is_up(&d) {
            self.desktops.stop(id, &self.reason()).await?;
        }
        tracing::info!(actor = %self.actor.username, student = %owner.username, desktop = %id, "class action: desktop {what}");
        let detail = format!("{what} the desktop of {}", owner.username);
        self.audit(detail, Some(&owner.username), Some(id)).await;
        Ok((d, owner))
    }

    /// Ends the lesson of `group`: stops every running or starting desktop of its students
    /// (not its teachers'); how many. One desktop that cannot be stopped does not keep the
    /// others running: the first error is returned after all were tried.
    pub async fn end_lesson(&self, group: &str) -> Result<usize, ClassError> {
        let group = group.trim();
        self.check_group(group)?;
        let reason = self.reason();
        let (mut stopped, mut first_error) = (0, None);
        for (d, _) in lesson_desktops(self.store, group).await? {
            match self.desktops.stop(&d.id, &reason).await {
                Ok(()) => stopped += 1,
                Err(e) => {
                    tracing::warn!(desktop = %d.id, error = %e, "ending the lesson: a desktop did not stop");
                    first_error.get_or_insert(e);
                }
            }
        }
        tracing::info!(actor = %self.actor.username, %group, stopped, "class action: lesson ended");
        self.audit(
            format!("ended the lesson of {group}: {stopped} desktops stopped"),
            None,
            Some(group),
        )
        .await;
        match first_error {
            Some(e) => Err(e.into()),
            None => Ok(stopped),
        }
    }

    /// Shows `text` to `group`'s students for [`MESSAGE_SECONDS`], replacing its message.
    pub async fn set_message(&self, group: &str, text: &str) -> Result<ClassMessage, ClassError> {
        let group = group.trim();
        self.check_group(group)?;
        let message = self
            .store
            .set_class_message(
                group,
                text,
                &self.actor.id,
                &self.actor.display_name,
                unix_now() + MESSAGE_SECONDS,
            )
            .await?;
        self.messages.changed(group);
        self.audit(format!("message to {group}: {}", message.body), None, Some(group))
            .await;
        Ok(message)
    }

    /// Removes `group`'s message.
    pub async fn clear_message(&self, group: &str) -> Result<(), ClassError> {
        let group = group.trim();
        self.check_group(group)?;
        if self.store.clear_class_message(group).await? {
            self.messages.changed(group);
            self.audit(format!("message to {group} cleared"), None, Some(group))
                .await;
        }
        Ok(())
    }
}

/// The running or starting desktops of `group`'s students with their owners: what ending the
/// lesson stops.
pub async fn lesson_desktops(store: &Store, group: &str) -> Result<Vec<(Desktop, User)>, StoreError> {
    let users = store.list_users().await?;
    let desktops = store.all_desktops().await?;
    Ok(up_in_group(group, &users, &desktops)
        .map(|(d, u)| (d.clone(), u.clone()))
        .collect())
}

/// [`lesson_desktops`] over lists already read (a page showing several groups reads once).
pub fn up_in_group<'a>(
    group: &'a str,
    users: &'a [User],
    desktops: &'a [Desktop],
) -> impl Iterator<Item = (&'a Desktop, &'a User)> + 'a {
    desktops.iter().filter(|d| is_up(d)).filter_map(move |d| {
        users
            .iter()
            .find(|u| u.id == d.user_id && u.role == Role::Student && u.groups.iter().any(|g| g == group))
            .map(|u| (d, u))
    })
}

/// Whether a desktop runs or is on its way: what a stop acts on.
fn is_up(d: &Desktop) -> bool {
    matches!(d.state, DesktopState::Running | DesktopState::Starting)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, role: Role, groups: &[&str]) -> User {
        User {
            id: format!("id-{name}"),
            username: name.into(),
            display_name: name.into(),
            email: None,
            role,
            external_subject: None,
            home_name: format!("u-{name}"),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            language: None,
            has_password: true,
            link_allowed_by: None,
            created_at: 0,
        }
    }

    #[test]
    fn teachers_teach_the_students_of_their_groups_only() {
        let tina = user("tina", Role::Teacher, &["5a", "lehrer"]);
        let sam = user("sam", Role::Student, &["5a"]);
        let otto = user("otto", Role::Student, &["6b"]);
        let tom = user("tom", Role::Teacher, &["5a"]);
        let root = user("root", Role::Admin, &[]);
        assert!(teaches(&tina, &sam));
        assert!(!teaches(&tina, &otto), "another class");
        assert!(!teaches(&tina, &tom), "a colleague is no student");
        assert!(!teaches(&sam, &sam), "students teach nobody, not even themselves");
        assert!(
            teaches(&root, &otto) && !teaches(&root, &tom),
            "administrators: every student"
        );
    }
}
