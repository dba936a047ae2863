//! Assignments (Abgaben): a teacher asks one group to hand in files by a due time. The files
//! themselves live on disk; a row says whose folder it is, for which group, until when.

use sqlx::Row;

use crate::{Store, StoreError, now};

/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 120;
/// Longest group name accepted (as for grants).
const MAX_GROUP_CHARS: usize = 256;

/// One assignment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    /// 16 URL-safe characters.
    pub id: String,
    pub owner_id: String,
    /// The owner's username (for pages).
    pub owner: String,
    pub group_name: String,
    pub title: String,
    /// Unix seconds.
    pub due_at: i64,
    pub allow_late: bool,
    pub created_at: i64,
    /// When the hand-ins were copied to their sealed place after the due time (Unix
    /// seconds); `None` while open, or when late hand-ins are allowed.
    pub sealed_at: Option<i64>,
}

impl Assignment {
    /// Whether a student may still change her hand-in at `now`.
    pub fn open_at(&self, now: i64) -> bool {
        now < self.due_at || self.allow_late
    }
}

/// What a new assignment needs.
#[derive(Clone, Debug)]
pub struct NewAssignment<'a> {
    pub owner_id: &'a str,
    pub group_name: &'a str,
    pub title: &'a str,
    pub due_at: i64,
    pub allow_late: bool,
}

/// The one SELECT of this module with a clause appended, as a literal (no SQL built at run time).
macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT a.id, a.owner_id, u.username, a.group_name, a.title, a.due_at, a.allow_late, a.created_at, a.sealed_at \
             FROM assignments a JOIN users u ON u.id = a.owner_id ",
            $rest
        )
    };
}

fn from_row(row: &sqlx::any::AnyRow) -> Result<Assignment, StoreError> {
    Ok(Assignment {
        id: row.try_get("id")?,
        owner_id: row.try_get("owner_id")?,
        owner: row.try_get("username")?,
        group_name: row.try_get("group_name")?,
        title: row.try_get("title")?,
        due_at: row.try_get("due_at")?,
        allow_late: row.try_get::<i64, _>("allow_late")? == 1,
        created_at: row.try_get("created_at")?,
        sealed_at: row.try_get("sealed_at")?,
    })
}

/// An update of one assignment by id: `NotFound` when it changed none.
fn one_row(affected: u64) -> Result<(), StoreError> {
    if affected == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

impl Store {
    /// Creates an assignment. `Invalid` (naming the field) for an empty or over-long title or
    /// group, or a due time in the past.
    pub async fn create_assignment(&self, new: &NewAssignment<'_>) -> Result<Assignment, StoreError> {
        let title = new.title.trim();
        let group = new.group_name.trim();
        if title.is_empty() || title.chars().count() > MAX_TITLE_CHARS || title.chars().any(char::is_control) {
            return Err(StoreError::Invalid(format!(
                "title: 1 to {MAX_TITLE_CHARS} characters without line breaks"
            )));
        }
        if group.is_empty() || group.chars().count() > MAX_GROUP_CHARS {
            return Err(StoreError::Invalid(format!("group: 1 to {MAX_GROUP_CHARS} characters")));
        }
        let created = now();
        if new.due_at <= created {
            return Err(StoreError::Invalid("due: must be in the future".into()));
        }
        let id = crate::random_secret::<12>();
        sqlx::query(
            "INSERT INTO assignments (id, owner_id, group_name, title, due_at, allow_late, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(new.owner_id)
        .bind(group)
        .bind(title)
        .bind(new.due_at)
        .bind(i64::from(new.allow_late))
        .bind(created)
        .execute(&self.pool)
        .await?;
        self.assignment(&id).await?.ok_or(StoreError::NotFound)
    }

    pub async fn assignment(&self, id: &str) -> Result<Option<Assignment>, StoreError> {
        let row = sqlx::query(select!("WHERE a.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// The assignments of these groups, newest due first.
    pub async fn assignments_for_groups(&self, groups: &[String]) -> Result<Vec<Assignment>, StoreError> {
        let rows = sqlx::query(select!("ORDER BY a.due_at DESC, a.id"))
            .fetch_all(&self.pool)
            .await?;
        // Filtered here: a student is in a handful of groups, and the sqlx Any driver has no
        // array binding common to both backends.
        rows.iter()
            .map(from_row)
            .filter(|a| a.as_ref().map_or(true, |a| groups.contains(&a.group_name)))
            .collect()
    }

    /// Moves the due time (a teacher extends the deadline, or ends it now). A seal taken
    /// before is void: the hand-ins are sealed again at the new due time. `NotFound` for
    /// an unknown assignment.
    pub async fn set_assignment_due(&self, id: &str, due_at: i64) -> Result<(), StoreError> {
        let updated = sqlx::query("UPDATE assignments SET due_at = $1, sealed_at = NULL WHERE id = $2")
            .bind(due_at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        one_row(updated.rows_affected())
    }

    /// Records that the hand-ins of `id` were sealed at `at`.
    pub async fn mark_assignment_sealed(&self, id: &str, at: i64) -> Result<(), StoreError> {
        let updated = sqlx::query("UPDATE assignments SET sealed_at = $1 WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        one_row(updated.rows_affected())
    }

    /// Assignments past their due time at `now` whose hand-ins are not sealed yet (late
    /// hand-ins allowed: never sealed), soonest due first.
    pub async fn assignments_to_seal(&self, now: i64) -> Result<Vec<Assignment>, StoreError> {
        let rows = sqlx::query(select!(
            "WHERE a.sealed_at IS NULL AND a.allow_late = 0 AND a.due_at <= $1 ORDER BY a.due_at, a.id"
        ))
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// The soonest due time after `now` of an assignment still to be sealed, if any.
    pub async fn next_seal_due(&self, now: i64) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "SELECT MIN(due_at) AS due FROM assignments WHERE sealed_at IS NULL AND allow_late = 0 AND due_at > $1",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<Option<i64>, _>("due")?)
    }

    /// Every assignment (the administrators' disk use).
    pub async fn all_assignments(&self) -> Result<Vec<Assignment>, StoreError> {
        let rows = sqlx::query(select!("ORDER BY a.due_at DESC, a.id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// Deletes an assignment; `false` if there was none.
    pub async fn delete_assignment(&self, id: &str) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM assignments WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected() > 0)
    }
}
