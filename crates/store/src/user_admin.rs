//! What admins do to accounts beyond sign-in: change a role, delete an account, see when each
//! user last signed in.

use sqlx::Row;

use crate::{Role, Store, StoreError, now};

impl Store {
    /// Sets a user's role. `NotFound` if there is no such user. For users from IServ the next
    /// sign-in sets the role from their groups again; the portal only offers this for local
    /// accounts.
    pub async fn set_user_role(&self, user_id: &str, role: Role) -> Result<(), StoreError> {
        let updated = sqlx::query("UPDATE users SET role = $1, updated_at = $2 WHERE id = $3")
            .bind(role.as_str())
            .bind(now())
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        self.sessions_changed().await;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Deletes a user with their sessions, groups and desktop records (the containers must be
    /// removed first; home volumes are the runtime's). `NotFound` if there is no such user.
    pub async fn delete_user(&self, user_id: &str) -> Result<(), StoreError> {
        let deleted = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        self.sessions_changed().await;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// When each user's newest session began, by user id: a sign-in time that exists even for
    /// users who signed in before the audit log did.
    pub async fn latest_session_starts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT user_id, MAX(created_at) AS last FROM sessions GROUP BY user_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("user_id")?, r.try_get("last")?)))
            .collect()
    }
}
