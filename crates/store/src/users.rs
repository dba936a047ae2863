//! User accounts: local users with argon2id passwords and users from OpenID Connect.

use std::collections::HashMap;

use secrecy::SecretString;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::error::is_unique_violation;
use crate::groups::clean_group_names;
use crate::password::{self, MAX_PASSWORD_CHARS, normalize_username};
use crate::{ExternalUser, Role, Store, StoreError, User, new_id, now};

/// `SELECT` of every column [`user_from_row`] reads, followed by the given clause. A macro
/// rather than `format!` so each query stays a compile-time literal.
macro_rules! select_users {
    ($tail:literal) => {
        concat!(
            "SELECT id, username, display_name, email, role, external_subject, language, home_name, link_allowed_by, ",
            // An integer, not `password_hash IS NOT NULL`: PostgreSQL would return a boolean
            // and SQLite an integer, and the Any driver does not convert between the two.
            "CAST(CASE WHEN password_hash IS NULL THEN 0 ELSE 1 END AS BIGINT) AS has_password, ",
            "created_at FROM users ",
            $tail
        )
    };
}

/// Longest display name or e-mail address accepted from callers.
const MAX_TEXT_CHARS: usize = 256;

/// Builds a [`User`] from a row selected with [`select_users!`].
pub(crate) fn user_from_row(row: &AnyRow, groups: Vec<String>) -> Result<User, StoreError> {
    let role: String = row.try_get("role")?;
    let role = role
        .parse::<Role>()
        .map_err(|_| StoreError::corrupt(format!("unknown role {role:?} in users table")))?;
    let has_password: i64 = row.try_get("has_password")?;
    let username: String = row.try_get("username")?;
    Ok(User {
        id: row.try_get("id")?,
        home_name: row.try_get("home_name")?,
        username,
        display_name: row.try_get("display_name")?,
        email: row.try_get("email")?,
        role,
        external_subject: row.try_get("external_subject")?,
        groups,
        language: row.try_get("language")?,
        has_password: has_password != 0,
        link_allowed_by: row.try_get("link_allowed_by")?,
        created_at: row.try_get("created_at")?,
    })
}

/// The home volume name of a new account: its id, which no other account can ever get (a
/// username can be renamed away and taken by someone else). Accounts from before migration 0008
/// keep the name they have.
pub(crate) fn home_name_for(id: &str) -> String {
    format!("u-{id}")
}

/// Trims `display_name`; an empty one falls back to the username so every user has a label.
fn clean_display_name(display_name: &str, username: &str) -> Result<String, StoreError> {
    let trimmed = display_name.trim();
    if trimmed.chars().count() > MAX_TEXT_CHARS {
        return Err(StoreError::Invalid(format!(
            "display name too long: at most {MAX_TEXT_CHARS} characters"
        )));
    }
    Ok(if trimmed.is_empty() {
        username.to_owned()
    } else {
        trimmed.to_owned()
    })
}

fn clean_email(email: Option<&str>) -> Result<Option<String>, StoreError> {
    let Some(email) = email.map(str::trim).filter(|e| !e.is_empty()) else {
        return Ok(None);
    };
    if email.chars().count() > MAX_TEXT_CHARS || !email.contains('@') {
        return Err(StoreError::Invalid(format!("invalid e-mail address {email:?}")));
    }
    Ok(Some(email.to_owned()))
}

/// Accepts BCP 47-like tags such as `de`, `en-GB`, `zh-Hant-TW`.
fn clean_language(lang: &str) -> Result<String, StoreError> {
    let lang = lang.trim();
    let valid = (2..=35).contains(&lang.len())
        && lang
            .split('-')
            .all(|part| (1..=8).contains(&part.len()) && part.chars().all(|c| c.is_ascii_alphanumeric()))
        && lang.starts_with(|c: char| c.is_ascii_alphabetic());
    if valid {
        Ok(lang.to_owned())
    } else {
        Err(StoreError::Invalid(format!("invalid language tag {lang:?}")))
    }
}

fn taken(username: &str) -> StoreError {
    StoreError::Conflict(format!("username {username:?} is already taken"))
}

impl Store {
    /// Creates a user who signs in with a password.
    ///
    /// The username is lowercased; `Invalid` if it or the password break the rules, `Conflict`
    /// if the username exists.
    pub async fn create_local_user(
        &self,
        username: &str,
        display_name: &str,
        role: Role,
        password: &SecretString,
    ) -> Result<User, StoreError> {
        let username = normalize_username(username)?;
        let display_name = clean_display_name(display_name, &username)?;
        let hash = password::hash(password).await?;
        let id = new_id();
        let now = now();
        let inserted = sqlx::query(
            "INSERT INTO users (id, username, display_name, email, role, password_hash, \
             external_subject, language, home_name, created_at, updated_at) \
             VALUES ($1, $2, $3, NULL, $4, $5, NULL, NULL, $6, $7, $7)",
        )
        .bind(&id)
        .bind(&username)
        .bind(&display_name)
        .bind(role.as_str())
        .bind(&hash)
        .bind(home_name_for(&id))
        .bind(now)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => Ok(User {
                home_name: home_name_for(&id),
                id,
                username,
                display_name,
                email: None,
                role,
                external_subject: None,
                groups: Vec::new(),
                language: None,
                has_password: true,
                link_allowed_by: None,
                created_at: now,
            }),
            Err(err) if is_unique_violation(&err) => Err(taken(&username)),
            Err(err) => Err(err.into()),
        }
    }

    /// The user linked to the provider's subject `subject`, if any.
    pub async fn user_by_subject(&self, subject: &str) -> Result<Option<User>, StoreError> {
        let row = sqlx::query("SELECT id FROM users WHERE external_subject = $1")
            .bind(subject)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => self.user_by_id(&row.try_get::<String, _>("id")?).await,
            None => Ok(None),
        }
    }

    /// Creates an account for a provider subject who has not signed in yet (files imported
    /// for her ahead of her first sign-in): a student without a password, so nobody can sign
    /// in to it but the provider's `subject`, whose first sign-in finds it by subject and sets
    /// the real username, role and groups ([`Store::sign_in_external`]). `Conflict` if the
    /// subject or the username is taken.
    pub async fn create_pending_external_user(
        &self,
        subject: &str,
        username: &str,
        display_name: &str,
    ) -> Result<User, StoreError> {
        let subject = subject.trim();
        if subject.is_empty() || subject.len() > MAX_TEXT_CHARS {
            return Err(StoreError::Invalid("invalid external subject".to_owned()));
        }
        let username = normalize_username(username)?;
        let display_name = clean_display_name(display_name, &username)?;
        let id = new_id();
        let inserted = sqlx::query(
            "INSERT INTO users (id, username, display_name, email, role, password_hash, \
             external_subject, language, home_name, created_at, updated_at) \
             VALUES ($1, $2, $3, NULL, $4, NULL, $5, NULL, $6, $7, $7)",
        )
        .bind(&id)
        .bind(&username)
        .bind(&display_name)
        .bind(Role::Student.as_str())
        .bind(subject)
        .bind(home_name_for(&id))
        .bind(now())
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => self.user_by_id(&id).await?.ok_or(StoreError::NotFound),
            Err(err) if is_unique_violation(&err) => Err(StoreError::Conflict(format!(
                "subject {subject:?} or username {username:?} is already taken"
            ))),
            Err(err) => Err(err.into()),
        }
    }

    /// Sets (or replaces) a user's local password. `NotFound` if there is no such user.
    ///
    /// Existing sessions stay valid; call [`Store::delete_user_sessions`] to end them.
    pub async fn set_password(&self, username: &str, password: &SecretString) -> Result<(), StoreError> {
        let Ok(username) = normalize_username(username) else {
            return Err(StoreError::NotFound);
        };
        let hash = password::hash(password).await?;
        let updated = sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE username = $3")
            .bind(&hash)
            .bind(now())
            .bind(&username)
            .execute(&self.pool)
            .await?;
        self.sessions_changed().await;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Checks a password sign-in. `None` for a wrong password, an unknown user or a user
    /// without a local password; all three take about as long, so the answer time does not
    /// reveal which usernames exist.
    pub async fn verify_password(&self, username: &str, password: &str) -> Result<Option<User>, StoreError> {
        // Such a password can never have been set; refusing it early also bounds the work an
        // anonymous caller can cause. Its timing depends only on the input, not on the user.
        if password.chars().count() > MAX_PASSWORD_CHARS {
            return Ok(None);
        }
        let found = match normalize_username(username) {
            Ok(username) => {
                sqlx::query("SELECT id, password_hash FROM users WHERE username = $1")
                    .bind(username)
                    .fetch_optional(&self.pool)
                    .await?
            }
            Err(_) => None,
        };
        let (id, stored): (Option<String>, Option<String>) = match found {
            Some(row) => (Some(row.try_get("id")?), row.try_get("password_hash")?),
            None => (None, None),
        };
        if !password::verify(password, stored).await? {
            return Ok(None);
        }
        match id {
            Some(id) => self.user_by_id(&id).await,
            None => Ok(None),
        }
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(select_users!("WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => {
                let groups = self.groups_of(id).await?;
                Ok(Some(user_from_row(&row, groups)?))
            }
            None => Ok(None),
        }
    }

    /// Looks a user up by login name, case-insensitively.
    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        let Ok(username) = normalize_username(username) else {
            return Ok(None);
        };
        let row = sqlx::query(select_users!("WHERE username = $1"))
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => {
                let id: String = row.try_get("id")?;
                let groups = self.groups_of(&id).await?;
                Ok(Some(user_from_row(&row, groups)?))
            }
            None => Ok(None),
        }
    }

    /// All users, ordered by username (bytewise on both backends).
    pub async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query(select_users!("ORDER BY username"))
            .fetch_all(&self.pool)
            .await?;
        // Two queries in total instead of one per user.
        let group_rows = sqlx::query("SELECT user_id, group_name FROM user_groups ORDER BY user_id, group_name")
            .fetch_all(&self.pool)
            .await?;
        let mut groups: HashMap<String, Vec<String>> = HashMap::new();
        for row in &group_rows {
            groups
                .entry(row.try_get("user_id")?)
                .or_default()
                .push(row.try_get("group_name")?);
        }
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("id")?;
                user_from_row(row, groups.remove(&id).unwrap_or_default())
            })
            .collect()
    }

    /// Creates or updates the user behind an OpenID Connect sign-in and returns them.
    ///
    /// Matching: first by `subject` (the provider's `sub`, stable across renames), then by
    /// username. The provider is the source of truth, so username, display name, e-mail, role
    /// and groups are overwritten on every sign-in.
    ///
    /// Linking: a *local* user (no external subject yet) with the same username becomes this
    /// external user, keeping id, desktops and files; its local password is removed and the
    /// sessions signed in with it end. That lets
    /// an admin create an account ahead of the first sign-in, and lets a school move from local
    /// accounts to IServ without losing data. Whoever holds `name` at the provider would get
    /// the local account `name`, so an account with a password or an administrator's is linked
    /// only after an administrator allowed it ([`Store::allow_link`]); otherwise the sign-in is
    /// `LinkNeedsAdmin`. A username held by a user *linked to another subject* is a `Conflict`
    /// (e.g. an account renamed at the provider whose old holder has not signed in since); an
    /// admin has to resolve it.
    pub async fn upsert_external_user(&self, ext: &ExternalUser) -> Result<User, StoreError> {
        self.sign_in_external(ext).await.map(|(user, _)| user)
    }

    /// [`Store::upsert_external_user`], also telling whether this sign-in linked a local
    /// account (for the audit log).
    pub async fn sign_in_external(&self, ext: &ExternalUser) -> Result<(User, Option<Linked>), StoreError> {
        let subject = ext.subject.trim();
        if subject.is_empty() || subject.len() > MAX_TEXT_CHARS {
            return Err(StoreError::Invalid("invalid external subject".to_owned()));
        }
        let username = normalize_username(&ext.username)?;
        let fields = ExternalFields {
            subject,
            display_name: clean_display_name(&ext.display_name, &username)?,
            username,
            email: clean_email(ext.email.as_deref())?,
            role: ext.role,
            groups: clean_group_names(&ext.groups)?,
        };
        // Two first sign-ins of the same person at once (two tabs) can both miss the SELECT and
        // race to INSERT; the loser retries once and then finds the winner's row.
        let (id, linked) = match self.upsert_external_once(&fields).await {
            Err(StoreError::Conflict(_)) => self.upsert_external_once(&fields).await?,
            other => other?,
        };
        self.sessions_changed().await;
        let user = self.user_by_id(&id).await?.ok_or(StoreError::NotFound)?;
        Ok((user, linked))
    }

    async fn upsert_external_once(&self, f: &ExternalFields<'_>) -> Result<(String, Option<Linked>), StoreError> {
        let mut tx = self.begin_write().await?;
        let now = now();
        let mut linked_now = None;
        let by_subject = sqlx::query("SELECT id, username FROM users WHERE external_subject = $1")
            .bind(f.subject)
            .fetch_optional(&mut *tx)
            .await?;
        let id = if let Some(row) = by_subject {
            let id: String = row.try_get("id")?;
            let previous: String = row.try_get("username")?;
            let updated = sqlx::query(
                "UPDATE users SET username = $1, display_name = $2, email = $3, role = $4, \
                 updated_at = $5 WHERE id = $6",
            )
            .bind(&f.username)
            .bind(&f.display_name)
            .bind(f.email.as_deref())
            .bind(f.role.as_str())
            .bind(now)
            .bind(&id)
            .execute(&mut *tx)
            .await;
            match updated {
                Ok(_) => {}
                Err(err) if is_unique_violation(&err) => return Err(taken(&f.username)),
                Err(err) => return Err(err.into()),
            }
            if previous != f.username {
                crate::desktop_types::move_allowed_user(&mut tx, &previous, Some(&f.username)).await?;
            }
            id
        } else {
            // An account an administrator deleted stays deleted while its files are kept: a
            // fresh account for the same person would look like lost files, and a restore
            // would then collide with it. After the purge the subject starts anew.
            let deleted = sqlx::query("SELECT username, purge_at FROM deleted_users WHERE external_subject = $1")
                .bind(f.subject)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(row) = deleted {
                return Err(StoreError::AccountDeleted(
                    row.try_get("username")?,
                    row.try_get("purge_at")?,
                ));
            }
            let by_name = sqlx::query(
                "SELECT id, external_subject, role, link_allowed_by, \
                 CAST(CASE WHEN password_hash IS NULL THEN 0 ELSE 1 END AS BIGINT) AS has_password \
                 FROM users WHERE username = $1",
            )
            .bind(&f.username)
            .fetch_optional(&mut *tx)
            .await?;
            match by_name {
                Some(row) => {
                    let linked: Option<String> = row.try_get("external_subject")?;
                    if linked.is_some() {
                        return Err(taken(&f.username));
                    }
                    let role: String = row.try_get("role")?;
                    let has_password: i64 = row.try_get("has_password")?;
                    let allowed_by: Option<String> = row.try_get("link_allowed_by")?;
                    // Whoever holds the name at IServ would otherwise take over an account
                    // someone can sign in to with a password, or an administrator's.
                    let guarded = has_password != 0 || role == Role::Admin.as_str();
                    if guarded && allowed_by.is_none() {
                        return Err(StoreError::LinkNeedsAdmin(f.username.clone()));
                    }
                    let id: String = row.try_get("id")?;
                    // The local password goes: from now on IServ decides who this is.
                    sqlx::query(
                        "UPDATE users SET external_subject = $1, display_name = $2, email = $3, \
                         role = $4, password_hash = NULL, link_allowed_by = NULL, updated_at = $5 \
                         WHERE id = $6",
                    )
                    .bind(f.subject)
                    .bind(&f.display_name)
                    .bind(f.email.as_deref())
                    .bind(f.role.as_str())
                    .bind(now)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                    // Whoever signed in with the password so far is signed out with it.
                    sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                        .bind(&id)
                        .execute(&mut *tx)
                        .await?;
                    linked_now = Some(Linked { allowed_by });
                    id
                }
                None => {
                    let id = new_id();
                    let inserted = sqlx::query(
                        "INSERT INTO users (id, username, display_name, email, role, \
                         password_hash, external_subject, language, home_name, created_at, \
                         updated_at) VALUES ($1, $2, $3, $4, $5, NULL, $6, NULL, $7, $8, $8)",
                    )
                    .bind(&id)
                    .bind(&f.username)
                    .bind(&f.display_name)
                    .bind(f.email.as_deref())
                    .bind(f.role.as_str())
                    .bind(f.subject)
                    .bind(home_name_for(&id))
                    .bind(now)
                    .execute(&mut *tx)
                    .await;
                    match inserted {
                        Ok(_) => id,
                        Err(err) if is_unique_violation(&err) => return Err(taken(&f.username)),
                        Err(err) => return Err(err.into()),
                    }
                }
            }
        };
        replace_groups(&mut tx, &id, &f.groups).await?;
        tx.commit().await?;
        Ok((id, linked_now))
    }

    /// Lets the next IServ sign-in with `user_id`'s username take over that local account
    /// (which then loses its password), recording `admin` as the one who allowed it. `NotFound`
    /// if there is no such user, `Conflict` if it is linked to IServ already.
    pub async fn allow_link(&self, user_id: &str, admin: &str) -> Result<(), StoreError> {
        let updated = sqlx::query(
            "UPDATE users SET link_allowed_by = $1, updated_at = $2 WHERE id = $3 AND external_subject IS NULL",
        )
        .bind(admin)
        .bind(now())
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        if updated.rows_affected() == 0 {
            return match self.user_by_id(user_id).await? {
                None => Err(StoreError::NotFound),
                Some(u) => Err(StoreError::Conflict(format!(
                    "{} signs in with IServ already",
                    u.username
                ))),
            };
        }
        self.sessions_changed().await;
        Ok(())
    }

    /// Sets the preferred UI language; `None` follows the browser again. `NotFound` if there is
    /// no such user.
    pub async fn set_user_language(&self, user_id: &str, lang: Option<&str>) -> Result<(), StoreError> {
        let lang = lang.map(clean_language).transpose()?;
        let updated = sqlx::query("UPDATE users SET language = $1, updated_at = $2 WHERE id = $3")
            .bind(lang)
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

    pub(crate) async fn groups_of(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT group_name FROM user_groups WHERE user_id = $1 ORDER BY group_name")
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| row.try_get("group_name").map_err(StoreError::from))
            .collect()
    }
}

/// An IServ sign-in that took over a local account of the same username.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Linked {
    /// The administrator who allowed it; `None` for an account without password that was not
    /// an administrator's (linked automatically, as an account prepared ahead of the first
    /// sign-in).
    pub allowed_by: Option<String>,
}

/// Validated input of [`Store::upsert_external_user`].
struct ExternalFields<'a> {
    subject: &'a str,
    username: String,
    display_name: String,
    email: Option<String>,
    role: Role,
    groups: Vec<String>,
}

pub(crate) async fn replace_groups(
    tx: &mut Transaction<'static, Any>,
    user_id: &str,
    groups: &[String],
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM user_groups WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    for group in groups {
        sqlx::query("INSERT INTO user_groups (user_id, group_name) VALUES ($1, $2)")
            .bind(user_id)
            .bind(group)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages() {
        for ok in ["de", "en-GB", "zh-Hant-TW"] {
            assert!(clean_language(ok).is_ok(), "{ok}");
        }
        for bad in ["", "d", "1de", "de_DE", "de--x", "en-toolongsubtag"] {
            assert!(clean_language(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails() {
        assert_eq!(clean_email(Some("  ")).ok(), Some(None));
        assert!(clean_email(Some("nope")).is_err());
        assert_eq!(clean_email(Some(" a@b.de ")).ok().flatten().as_deref(), Some("a@b.de"));
    }
}
