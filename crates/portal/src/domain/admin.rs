//! What administrators do to desktops and sessions, each in one function with its audit
//! entry, so the admin page's forms and the admin JSON API leave the same trace.

use portal_store::{AuditEvent, AuditKind, Store, StoreError, User};

use super::lifecycle::{Lifecycle, LifecycleError};

/// An administrator acting; the caller checked the role.
pub struct AdminActions<'a> {
    pub desktops: &'a Lifecycle,
    pub store: &'a Store,
    pub admin: &'a User,
}

impl AdminActions<'_> {
    fn by(&self) -> String {
        format!("by administrator {}", self.admin.username)
    }

    async fn record(&self, detail: String) {
        let event = AuditEvent::new(AuditKind::AdminAction, detail).actor(&self.admin.username);
        super::audit::record(self.store, event).await;
    }

    /// Stops the desktops `ids`; each owner's page says who stopped it.
    pub async fn stop(&self, ids: &[&str]) -> Result<(), LifecycleError> {
        for id in ids {
            self.desktops.stop_by(self.admin, id).await?;
        }
        self.record(format!("stopped {} {}", ids.join(", "), self.by())).await;
        Ok(())
    }

    /// Removes the desktops `ids` (containers; homes stay).
    pub async fn remove(&self, ids: &[&str]) -> Result<(), LifecycleError> {
        for id in ids {
            self.desktops.remove(id).await?;
        }
        self.record(format!("removed {} {}", ids.join(", "), self.by())).await;
        Ok(())
    }

    /// Stops every running desktop; how many.
    pub async fn stop_all(&self) -> Result<usize, LifecycleError> {
        let n = self.desktops.stop_all().await?;
        self.record(format!("stop all: {n} desktops {}", self.by())).await;
        Ok(n)
    }

    /// Removes the containers of all stopped or failed desktops; how many.
    pub async fn cleanup(&self) -> Result<usize, LifecycleError> {
        let n = self.desktops.cleanup_stopped().await?;
        self.record(format!("clean up: removed {n} stopped desktops {}", self.by()))
            .await;
        Ok(n)
    }

    /// Signs `user` out everywhere; how many sessions ended.
    pub async fn end_sessions(&self, user: &User) -> Result<u64, StoreError> {
        let ended = self.store.delete_user_sessions(&user.id).await?;
        tracing::info!(admin = %self.admin.username, username = %user.username, ended, "ended a user's sessions");
        let event = AuditEvent::new(AuditKind::AdminAction, format!("ended {ended} sessions"))
            .actor(&self.admin.username)
            .user(&user.username);
        super::audit::record(self.store, event).await;
        Ok(ended)
    }
}
