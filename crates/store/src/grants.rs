//! Teachers' grants: desktop types a teacher enabled for one of their groups.
//!
//! Kept apart from a type's own `allowed_groups` (the admin's setting), so a grant never
//! rewrites what an admin configured and can be withdrawn on its own.

use sqlx::Row;

use crate::error::is_foreign_key_violation;
use crate::{Store, StoreError, now};

/// One desktop type enabled for one group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeGrant {
    pub type_key: String,
    pub group_name: String,
    /// Username of whoever enabled it; `None` once that account is gone.
    pub granted_by: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
}

impl Store {
    /// Enables type `type_key` for `group`, recorded as done by user `by`. Granting again
    /// keeps the first record. `Invalid` for an empty or over-long group, `NotFound` for an
    /// unknown type.
    pub async fn grant_type(&self, type_key: &str, group: &str, by: &str) -> Result<(), StoreError> {
        let group = crate::groups::clean_group_name(group)?;
        let inserted = sqlx::query(
            "INSERT INTO type_grants (type_key, group_name, granted_by, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (type_key, group_name) DO NOTHING",
        )
        .bind(type_key)
        .bind(&group)
        .bind(by)
        .bind(now())
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(e) if is_foreign_key_violation(&e) => Err(StoreError::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// Withdraws a grant; `false` if there was none.
    pub async fn revoke_type(&self, type_key: &str, group: &str) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM type_grants WHERE type_key = $1 AND group_name = $2")
            .bind(type_key)
            .bind(group.trim())
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected() > 0)
    }

    /// Every grant, by type and then group (bytewise).
    pub async fn type_grants(&self) -> Result<Vec<TypeGrant>, StoreError> {
        let rows = sqlx::query(
            "SELECT g.type_key, g.group_name, u.username, g.created_at FROM type_grants g \
             LEFT JOIN users u ON u.id = g.granted_by ORDER BY g.type_key, g.group_name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(TypeGrant {
                    type_key: row.try_get("type_key")?,
                    group_name: row.try_get("group_name")?,
                    granted_by: row.try_get("username")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }
}
