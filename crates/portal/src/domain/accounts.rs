//! Accounts beyond sign-in: deleting one (desktops at once, files after the retention),
//! restoring it until then, the background job that removes expired homes, and allowing an
//! IServ sign-in to take over a local account.

use std::sync::Arc;
use std::time::Duration;

use desktop_runtime::ContainerRuntime;
use portal_store::{AuditEvent, AuditKind, DeletedUser, Store, StoreError, User};

use super::admin::AdminActions;
use super::lifecycle::LifecycleError;

/// The home volume of an account whose home is named `home_name`.
pub fn home_volume(prefix: &str, home_name: &str) -> String {
    // A valid Docker name whatever the prefix and home name (a readable part and a hash).
    desktop_runtime::safe_docker_name(&format!("{prefix}{home_name}"))
}

impl AdminActions<'_> {
    /// Deletes `user`: their desktops (containers stopped and removed) and the account at once;
    /// their home volume stays for `retention`, during which [`AdminActions::restore_user`]
    /// gives everything back.
    pub async fn delete_user(&self, user: &User, retention: Duration) -> Result<DeletedUser, LifecycleError> {
        for d in self.store.desktops_of_user(&user.id).await? {
            self.desktops.remove(&d.id).await?;
        }
        let retention = i64::try_from(retention.as_secs()).unwrap_or(i64::MAX);
        let purge_at = super::unix_now().saturating_add(retention);
        let deleted = self
            .store
            .delete_user_keeping_home(&user.id, &self.admin.username, purge_at)
            .await?;
        tracing::info!(admin = %self.admin.username, username = %user.username, purge_at, "deleted an account; its files are kept until the purge");
        let detail = format!(
            "account deleted by administrator {}, desktops removed; files (home {}) kept until {purge_at} \
             (unix time) unless restored",
            self.admin.username, deleted.home_name
        );
        let event = AuditEvent::new(AuditKind::UserDeleted, detail)
            .actor(&self.admin.username)
            .user(&user.username);
        super::audit::record(self.store, event).await;
        Ok(deleted)
    }

    /// Gives the deleted account `id` back with its files. `NotFound` if its files are gone
    /// (or it was restored already), `Conflict` if its name is someone else's now.
    pub async fn restore_user(&self, id: &str) -> Result<DeletedUser, StoreError> {
        let deleted = self.store.deleted_user(id).await?.ok_or(StoreError::NotFound)?;
        self.store.restore_user(id).await?;
        tracing::info!(admin = %self.admin.username, username = %deleted.username, "restored a deleted account");
        let event = AuditEvent::new(
            AuditKind::UserChanged,
            format!(
                "deleted account restored with its files by administrator {}",
                self.admin.username
            ),
        )
        .actor(&self.admin.username)
        .user(&deleted.username);
        super::audit::record(self.store, event).await;
        Ok(deleted)
    }

    /// Lets the next IServ sign-in with `user`'s username take over this local account; the
    /// sign-in then removes its password.
    pub async fn allow_link(&self, user: &User) -> Result<(), StoreError> {
        self.store.allow_link(&user.id, &self.admin.username).await?;
        let event = AuditEvent::new(
            AuditKind::UserChanged,
            format!(
                "administrator {} allowed the next IServ sign-in as {} to take over this local account \
                 (its password will be removed)",
                self.admin.username, user.username
            ),
        )
        .actor(&self.admin.username)
        .user(&user.username);
        super::audit::record(self.store, event).await;
        Ok(())
    }
}

/// Removes the homes of deleted accounts whose retention ended — the folder in the files root
/// with its trash, and a home volume left from before homes moved there — each audited;
/// returns how many went. A home that cannot be removed now (the engine is down) stays listed
/// and is tried again on the next run.
pub async fn purge_expired_homes(
    store: &Store,
    runtime: &dyn ContainerRuntime,
    prefix: &str,
    files_root: &std::path::Path,
) -> usize {
    let due = match store.deleted_users_due(super::unix_now()).await {
        Ok(due) => due,
        Err(e) => {
            tracing::warn!(error = %e, "listing deleted accounts to purge failed");
            return 0;
        }
    };
    let mut removed = 0;
    for d in due {
        let volume = home_volume(prefix, &d.home_name);
        if let Err(e) = remove_home_folders(files_root, &d.home_name).await {
            tracing::warn!(username = %d.username, error = %e, "removing a deleted account's home folder failed; trying again later");
            continue;
        }
        // Static desktops have no homes of the portal's making; only the record goes.
        if runtime.starts_desktops()
            && let Err(e) = runtime.remove_volume(&volume).await
        {
            tracing::warn!(username = %d.username, %volume, error = %e, "removing a deleted account's home failed; trying again later");
            continue;
        }
        if let Err(e) = store.forget_deleted_user(&d.id).await {
            tracing::warn!(username = %d.username, error = %e, "forgetting a purged account failed");
            continue;
        }
        removed += 1;
        tracing::info!(username = %d.username, %volume, "removed a deleted account's home after its retention");
        let event = AuditEvent::new(
            AuditKind::UserDeleted,
            format!(
                "files removed after the retention (home {}, volume {volume}); deleted by {}",
                d.home_name, d.deleted_by
            ),
        )
        .user(&d.username);
        super::audit::record(store, event).await;
    }
    removed
}

/// `files_root/homes/<home_name>` and its trash, for good.
async fn remove_home_folders(files_root: &std::path::Path, home_name: &str) -> Result<(), portal_files::FilesError> {
    let name = portal_files::RelPath::parse(home_name)?;
    if name.names().len() != 1 {
        return Err(portal_files::NameError::Slash.into());
    }
    let parents = [files_root.join("homes"), files_root.join("trash/homes")];
    tokio::task::spawn_blocking(move || {
        for parent in parents {
            if !parent.exists() {
                continue;
            }
            match portal_files::Tree::open(&parent, None).and_then(|t| t.remove(&name)) {
                Ok(()) | Err(portal_files::FilesError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    })
    .await
    .unwrap_or(Err(portal_files::FilesError::NotFound))
}

/// Runs [`purge_expired_homes`] every `interval`.
pub async fn run_purger(
    store: Store,
    runtime: Arc<dyn ContainerRuntime>,
    prefix: String,
    files_root: std::path::PathBuf,
    interval: Duration,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        purge_expired_homes(&store, runtime.as_ref(), &prefix, &files_root).await;
    }
}
