//! Deleted accounts whose files are kept for a while: the account leaves `users` at once (it
//! can no longer sign in, its name is free), its home volume stays until `purge_at`, and until
//! then an administrator can restore the account as it was (with its place in desktop types'
//! `allowed_users`, which the deletion takes away so that a new holder of the name does not
//! inherit it).

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::is_unique_violation;
use crate::users::replace_groups;
use crate::{Role, Store, StoreError, now};

/// An account deleted with its files kept until [`DeletedUser::purge_at`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletedUser {
    /// The account's id; a restore gives it back.
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    /// Whether it signed in with IServ.
    pub external: bool,
    /// Names the home volume that is kept.
    pub home_name: String,
    /// Unix seconds.
    pub deleted_at: i64,
    /// Username of the administrator who deleted it.
    pub deleted_by: String,
    /// Unix seconds; from then on the home volume is removed.
    pub purge_at: i64,
}

fn deleted_from_row(row: &AnyRow) -> Result<DeletedUser, StoreError> {
    let role: String = row.try_get("role")?;
    let external: Option<String> = row.try_get("external_subject")?;
    Ok(DeletedUser {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        display_name: row.try_get("display_name")?,
        role: role
            .parse()
            .map_err(|_| StoreError::corrupt(format!("unknown role {role:?} in deleted_users")))?,
        external: external.is_some(),
        home_name: row.try_get("home_name")?,
        deleted_at: row.try_get("deleted_at")?,
        deleted_by: row.try_get("deleted_by")?,
        purge_at: row.try_get("purge_at")?,
    })
}

/// `SELECT` of every column [`deleted_from_row`] reads, followed by the given clause (a
/// macro so each query stays a compile-time literal).
macro_rules! select_deleted {
    ($tail:literal) => {
        concat!(
            "SELECT id, username, display_name, role, external_subject, home_name, deleted_at, ",
            "deleted_by, purge_at FROM deleted_users ",
            $tail
        )
    };
}

impl Store {
    /// Deletes the account `user_id` with its sessions, groups and desktop records (remove the
    /// containers first) and keeps what a restore needs until `purge_at`. `NotFound` if there
    /// is no such user.
    pub async fn delete_user_keeping_home(
        &self,
        user_id: &str,
        deleted_by: &str,
        purge_at: i64,
    ) -> Result<DeletedUser, StoreError> {
        let groups = self.groups_of(user_id).await?;
        let groups = serde_json::to_string(&groups).map_err(|e| StoreError::corrupt(e.to_string()))?;
        let mut tx = self.begin_write().await?;
        // One statement copies the row, so nothing read here can go stale before the delete.
        let copied = sqlx::query(
            "INSERT INTO deleted_users (id, username, display_name, email, role, password_hash, \
             external_subject, language, home_name, group_names, created_at, deleted_at, deleted_by, purge_at) \
             SELECT id, username, display_name, email, role, password_hash, external_subject, language, \
             home_name, $1, created_at, $2, $3, $4 FROM users WHERE id = $5",
        )
        .bind(&groups)
        .bind(now())
        .bind(deleted_by)
        .bind(purge_at)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        if copied.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let username: String = sqlx::query("SELECT username FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("username")?;
        let types = crate::desktop_types::move_allowed_user(&mut tx, &username, None).await?;
        sqlx::query("UPDATE deleted_users SET allowed_types = $1 WHERE id = $2")
            .bind(serde_json::to_string(&types).map_err(|e| StoreError::corrupt(e.to_string()))?)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.sessions_changed().await;
        self.deleted_user(user_id).await?.ok_or(StoreError::NotFound)
    }

    pub async fn deleted_user(&self, id: &str) -> Result<Option<DeletedUser>, StoreError> {
        let row = sqlx::query(select_deleted!("WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(deleted_from_row).transpose()
    }

    /// Every deleted account whose files are still kept, soonest purge first.
    pub async fn deleted_users(&self) -> Result<Vec<DeletedUser>, StoreError> {
        let rows = sqlx::query(select_deleted!("ORDER BY purge_at, id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(deleted_from_row).collect()
    }

    /// Deleted accounts whose retention ended at `at`: their home volumes may go.
    pub async fn deleted_users_due(&self, at: i64) -> Result<Vec<DeletedUser>, StoreError> {
        let rows = sqlx::query(select_deleted!("WHERE purge_at <= $1 ORDER BY purge_at, id"))
            .bind(at)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(deleted_from_row).collect()
    }

    /// Forgets a deleted account once its files are gone. `NotFound` if there is no such row
    /// (restored or forgotten meanwhile).
    pub async fn forget_deleted_user(&self, id: &str) -> Result<(), StoreError> {
        let deleted = sqlx::query("DELETE FROM deleted_users WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Gives a deleted account back, with its id, password, groups and home, as it was.
    /// `NotFound` if it is not (or no longer) among the deleted, or its retention has ended (its
    /// files may be going at this moment: a restore must never hand out an emptied home);
    /// `Conflict` if its username or IServ account is in use by another account now.
    pub async fn restore_user(&self, id: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let Some(row) = sqlx::query(
            "SELECT username, group_names, allowed_types FROM deleted_users WHERE id = $1 AND purge_at > $2",
        )
        .bind(id)
        .bind(now())
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Err(StoreError::NotFound);
        };
        let username: String = row.try_get("username")?;
        let groups: String = row.try_get("group_names")?;
        let groups: Vec<String> =
            serde_json::from_str(&groups).map_err(|e| StoreError::corrupt(format!("group_names: {e}")))?;
        let types: String = row.try_get("allowed_types")?;
        let types: Vec<String> =
            serde_json::from_str(&types).map_err(|e| StoreError::corrupt(format!("allowed_types: {e}")))?;
        let restored = sqlx::query(
            "INSERT INTO users (id, username, display_name, email, role, password_hash, external_subject, \
             language, home_name, created_at, updated_at) \
             SELECT id, username, display_name, email, role, password_hash, external_subject, language, \
             home_name, created_at, $1 FROM deleted_users WHERE id = $2",
        )
        .bind(now())
        .bind(id)
        .execute(&mut *tx)
        .await;
        match restored {
            Ok(_) => {}
            Err(err) if is_unique_violation(&err) => {
                return Err(StoreError::Conflict(format!(
                    "{username}: the username or its IServ account belongs to another account now; \
                     rename or delete that one first"
                )));
            }
            Err(err) => return Err(err.into()),
        }
        replace_groups(&mut tx, id, &groups).await?;
        crate::desktop_types::readd_allowed_user(&mut tx, &username, &types).await?;
        sqlx::query("DELETE FROM deleted_users WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.sessions_changed().await;
        Ok(())
    }
}
