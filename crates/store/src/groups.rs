//! Group names and the groups of local accounts.
//!
//! IServ accounts get their groups from every sign-in; local accounts (schools without IServ,
//! a local teacher account) get theirs from an administrator. Both follow one rule for names,
//! [`clean_group_name`], so a class made by hand looks like one from IServ.

use std::collections::BTreeSet;

use crate::{Store, StoreError, now};

/// Longest group name accepted, from IServ or an administrator.
pub const MAX_GROUP_CHARS: usize = 256;

/// A group name as stored: trimmed, 1 to [`MAX_GROUP_CHARS`] characters, no control
/// characters (a newline would break the audit log and the comma-separated lists of forms).
pub fn clean_group_name(name: &str) -> Result<String, StoreError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_GROUP_CHARS {
        return Err(StoreError::Invalid(format!(
            "group: 1 to {MAX_GROUP_CHARS} characters, not {name:?}"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(StoreError::Invalid(format!(
            "group: no control characters (line breaks, tabs) in {name:?}"
        )));
    }
    Ok(name.to_owned())
}

/// A list of group names as stored: each cleaned by [`clean_group_name`], empty entries
/// dropped, duplicates removed, sorted bytewise (the order the database returns).
pub fn clean_group_names(groups: &[String]) -> Result<Vec<String>, StoreError> {
    let mut set = BTreeSet::new();
    for group in groups.iter().filter(|g| !g.trim().is_empty()) {
        set.insert(clean_group_name(group)?);
    }
    Ok(set.into_iter().collect())
}

impl Store {
    /// Replaces the groups of the local account `user_id` and returns them as stored.
    /// `NotFound` if there is no such user; `Conflict` for an account that signs in with
    /// IServ, whose groups come from IServ at every sign-in.
    pub async fn set_local_groups(&self, user_id: &str, groups: &[String]) -> Result<Vec<String>, StoreError> {
        let groups = clean_group_names(groups)?;
        let mut tx = self.begin_write().await?;
        let row = sqlx::query("SELECT username, external_subject FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let subject: Option<String> = sqlx::Row::try_get(&row, "external_subject")?;
        if subject.is_some() {
            let username: String = sqlx::Row::try_get(&row, "username")?;
            return Err(StoreError::Conflict(format!(
                "{username} signs in with IServ, which sets the groups; change them in IServ"
            )));
        }
        crate::users::replace_groups(&mut tx, user_id, &groups).await?;
        sqlx::query("UPDATE users SET updated_at = $1 WHERE id = $2")
            .bind(now())
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        // Signed-in sessions carry the user with the groups: they see the change at once.
        self.sessions.clear();
        Ok(groups)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_bounded_and_free_of_control_characters() {
        assert_eq!(clean_group_name(" 5a ").ok().as_deref(), Some("5a"));
        assert_eq!(
            clean_group_name("Klasse 5a (Mathe)").ok().as_deref(),
            Some("Klasse 5a (Mathe)")
        );
        assert!(clean_group_name("").is_err());
        assert!(clean_group_name("   ").is_err());
        assert!(clean_group_name("a\nb").is_err());
        assert!(clean_group_name("a\tb").is_err());
        assert!(clean_group_name(&"x".repeat(MAX_GROUP_CHARS)).is_ok());
        assert!(clean_group_name(&"x".repeat(MAX_GROUP_CHARS + 1)).is_err());
    }

    #[test]
    fn lists_are_cleaned_deduplicated_and_sorted() {
        let groups = clean_group_names(&[" b ".into(), "a".into(), "".into(), "b".into()]);
        assert_eq!(groups.ok(), Some(vec!["a".to_owned(), "b".to_owned()]));
        assert!(clean_group_names(&["ok".into(), "bad\u{7}".into()]).is_err());
    }
}
