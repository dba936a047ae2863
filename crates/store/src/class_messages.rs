//! Teachers' short messages to their groups: one per group, replaced by the next, gone when
//! it expires or its teacher clears it. Stored so a reload (or a student arriving later in the
//! lesson) still shows it.

use sqlx::Row;

use crate::groups::clean_group_name;
use crate::{Store, StoreError, now};

/// Longest message accepted: a short note, not a document.
pub const MAX_MESSAGE_CHARS: usize = 500;

/// A message to one group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassMessage {
    pub group_name: String,
    /// Plain text as the teacher typed it (trimmed); pages escape it.
    pub body: String,
    /// Display name of the teacher who wrote it.
    pub author_name: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; not shown from then on.
    pub expires_at: i64,
}

impl Store {
    /// Sets `group`'s message (replacing any), written by `author_id` (shown as
    /// `author_name`), shown until `expires_at`. `Invalid` for an empty or over-long body or a
    /// bad group name. Returns the message as stored.
    pub async fn set_class_message(
        &self,
        group: &str,
        body: &str,
        author_id: &str,
        author_name: &str,
        expires_at: i64,
    ) -> Result<ClassMessage, StoreError> {
        let group_name = clean_group_name(group)?;
        let body = body.trim();
        let chars = body.chars().count();
        if chars == 0 || chars > MAX_MESSAGE_CHARS {
            return Err(StoreError::Invalid(format!(
                "message: 1 to {MAX_MESSAGE_CHARS} characters, not {chars}"
            )));
        }
        let created_at = now();
        // Expired rows go here, on a teacher's write, not on the students' many reads.
        sqlx::query("DELETE FROM class_messages WHERE expires_at <= $1")
            .bind(created_at)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO class_messages (group_name, body, author_id, author_name, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (group_name) DO UPDATE SET body = excluded.body, \
             author_id = excluded.author_id, author_name = excluded.author_name, \
             created_at = excluded.created_at, expires_at = excluded.expires_at",
        )
        .bind(&group_name)
        .bind(body)
        .bind(author_id)
        .bind(author_name)
        .bind(created_at)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(ClassMessage {
            group_name,
            body: body.to_owned(),
            author_name: author_name.to_owned(),
            created_at,
            expires_at,
        })
    }

    /// Removes `group`'s message; `false` if it had none.
    pub async fn clear_class_message(&self, group: &str) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM class_messages WHERE group_name = $1")
            .bind(group.trim())
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected() > 0)
    }

    /// The messages of `groups` that have not expired at `at`, newest first. A read only (every
    /// student's page load asks); [`Store::set_class_message`] removes expired rows, so the
    /// table holds at most one row per group.
    pub async fn class_messages_for(&self, groups: &[String], at: i64) -> Result<Vec<ClassMessage>, StoreError> {
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        // One row per group that has a message: read the live ones, keep the user's.
        let rows = sqlx::query(
            "SELECT group_name, body, author_name, created_at, expires_at FROM class_messages \
             WHERE expires_at > $1 ORDER BY created_at DESC, group_name",
        )
        .bind(at)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for row in &rows {
            let group_name: String = row.try_get("group_name")?;
            if groups.contains(&group_name) {
                out.push(ClassMessage {
                    group_name,
                    body: row.try_get("body")?,
                    author_name: row.try_get("author_name")?,
                    created_at: row.try_get("created_at")?,
                    expires_at: row.try_get("expires_at")?,
                });
            }
        }
        Ok(out)
    }
}
