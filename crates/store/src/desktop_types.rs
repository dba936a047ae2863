//! Desktop types: the images the portal offers, their limits and who may use them.

use std::collections::{BTreeSet, HashSet};

use sha2::{Digest as _, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::is_foreign_key_violation;
use crate::password::normalize_username;
use crate::{Store, StoreError, now};

/// Kasm's port inside the container.
pub const DEFAULT_CONTAINER_PORT: u16 = 6901;
/// Kasm images want a large `/dev/shm` for the browser and the encoder.
pub const DEFAULT_SHM_SIZE_BYTES: i64 = 512 * 1024 * 1024;

const MAX_KEY_CHARS: usize = 32;
const MAX_NAME_CHARS: usize = 128;
const MAX_DESCRIPTION_CHARS: usize = 2000;
const MAX_ICON_CHARS: usize = 64;
const MAX_IMAGE_CHARS: usize = 255;
const MAX_GROUP_CHARS: usize = 256;
/// Docker refuses memory limits below 6 MiB.
const MIN_MEMORY_BYTES: i64 = 6 * 1024 * 1024;
/// Set by the runtime from the desktop's own password; a type must not override it.
const RESERVED_ENV: &str = "VNC_PW";

/// A kind of desktop users can start, e.g. "Ubuntu" or "VS Code".
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DesktopType {
    /// `^[a-z0-9][a-z0-9-]{0,31}$`; part of desktop ids and container names.
    pub key: String,
    /// Required.
    pub name_de: String,
    /// Empty falls back to `name_de`.
    pub name_en: String,
    pub description_de: String,
    /// Empty falls back to `description_de`.
    pub description_en: String,
    /// A short name such as `ubuntu`, `vscode`, `chromium`, or an emoji; at most 64 characters.
    pub icon: String,
    /// Docker image reference, at most 255 characters.
    pub image: String,
    /// Port the desktop serves on inside the container.
    pub container_port: u16,
    /// `https` (Kasm images) or `http`.
    pub protocol: String,
    /// Extra environment, in order; names `^[A-Za-z_][A-Za-z0-9_]*$`, unique, `VNC_PW` reserved.
    pub env: Vec<(String, String)>,
    /// Size of `/dev/shm`; 0 leaves Docker's default.
    pub shm_size_bytes: i64,
    /// Memory limit; `None` = unlimited.
    pub memory_bytes: Option<i64>,
    /// CPU limit in 10⁻⁹ CPUs (Docker's `NanoCpus`); `None` = unlimited.
    pub nano_cpus: Option<i64>,
    /// Disabled types stay in the database (and keep their desktops) but are not offered.
    pub enabled: bool,
    /// Seconds without input before a running desktop is stopped; 0 = never.
    pub idle_timeout_secs: i64,
    /// Seconds after its start a desktop is stopped regardless; 0 = never.
    pub max_age_secs: i64,
    /// Groups whose members may use the type. Both lists empty = every signed-in user.
    /// Stored trimmed, deduplicated and sorted.
    pub allowed_groups: Vec<String>,
    /// Usernames that may use the type; stored lowercased, deduplicated and sorted.
    pub allowed_users: Vec<String>,
    /// Listing order (then key).
    pub sort_order: i64,
    /// Unix seconds; set by the store.
    pub created_at: i64,
    /// Unix seconds; set by the store.
    pub updated_at: i64,
}

impl Default for DesktopType {
    /// An empty, enabled type with Kasm's defaults (port 6901, https, 512 MiB `/dev/shm`).
    fn default() -> Self {
        DesktopType {
            key: String::new(),
            name_de: String::new(),
            name_en: String::new(),
            description_de: String::new(),
            description_en: String::new(),
            icon: String::new(),
            image: String::new(),
            container_port: DEFAULT_CONTAINER_PORT,
            protocol: "https".to_owned(),
            env: Vec::new(),
            shm_size_bytes: DEFAULT_SHM_SIZE_BYTES,
            memory_bytes: None,
            nano_cpus: None,
            enabled: true,
            idle_timeout_secs: 0,
            max_age_secs: 0,
            allowed_groups: Vec::new(),
            allowed_users: Vec::new(),
            sort_order: 0,
            created_at: 0,
            updated_at: 0,
        }
    }
}

impl DesktopType {
    /// The English name for `en` (and `en-GB` etc.) when one is set, else the German one.
    pub fn name(&self, lang: &str) -> &str {
        pick(lang, &self.name_de, &self.name_en)
    }

    /// The English description for `en` (and `en-GB` etc.) when one is set, else the German one.
    pub fn description(&self, lang: &str) -> &str {
        pick(lang, &self.description_de, &self.description_en)
    }

    /// Whether a user may use this type: both lists empty, the username listed, or one of
    /// `groups` listed. Says nothing about `enabled`.
    pub fn allows(&self, username: &str, groups: &[String]) -> bool {
        if self.allowed_groups.is_empty() && self.allowed_users.is_empty() {
            return true;
        }
        let username = username.trim();
        self.allowed_users.iter().any(|u| u.eq_ignore_ascii_case(username))
            || groups
                .iter()
                .any(|g| self.allowed_groups.iter().any(|allowed| allowed == g.trim()))
    }
}

fn pick<'a>(lang: &str, de: &'a str, en: &'a str) -> &'a str {
    let primary = lang.trim().split(['-', '_']).next().unwrap_or_default();
    if primary.eq_ignore_ascii_case("en") && !en.is_empty() {
        en
    } else {
        de
    }
}

fn invalid(field: &str, why: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(format!("{field}: {why}"))
}

/// Trimmed `value`, at most `max` characters, not empty when `required`.
fn clean_text(field: &str, value: &str, max: usize, required: bool) -> Result<String, StoreError> {
    let value = value.trim();
    if required && value.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(invalid(field, format_args!("at most {max} characters")));
    }
    if value.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(value.to_owned())
}

/// Keys that name pages rather than types in the admin's URLs (`/admin/types/new` creates one),
/// so a type with such a key could never be opened for editing.
const RESERVED_KEYS: &[&str] = &["new"];

fn check_key(key: &str) -> Result<(), StoreError> {
    if RESERVED_KEYS.contains(&key) {
        return Err(invalid(
            "key",
            format_args!("{key:?} is reserved (it names the admin's page for a new type); choose another key"),
        ));
    }
    let mut chars = key.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if first_ok && rest_ok && key.len() <= MAX_KEY_CHARS {
        Ok(())
    } else {
        Err(invalid(
            "key",
            format_args!(
                "{key:?} is invalid: use 1 to {MAX_KEY_CHARS} characters a-z, 0-9 or '-', starting with a letter or \
                 digit"
            ),
        ))
    }
}

/// A loose check of Docker's reference grammar: the characters it allows, no spaces or quotes.
fn check_image(image: &str) -> Result<(), StoreError> {
    if image.is_empty() {
        return Err(invalid("image", "must not be empty"));
    }
    if image.len() > MAX_IMAGE_CHARS {
        return Err(invalid("image", format_args!("at most {MAX_IMAGE_CHARS} characters")));
    }
    let first_ok = image.starts_with(|c: char| c.is_ascii_alphanumeric());
    let chars_ok = image.chars().all(|c| c.is_ascii_alphanumeric() || "._-/:@".contains(c));
    if first_ok && chars_ok {
        Ok(())
    } else {
        Err(invalid(
            "image",
            format_args!("{image:?} is not a Docker image reference"),
        ))
    }
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_env(env: &[(String, String)]) -> Result<(), StoreError> {
    let mut seen = HashSet::new();
    for (name, value) in env {
        if !is_env_name(name) {
            return Err(invalid(
                "env",
                format_args!("{name:?} is not a variable name (^[A-Za-z_][A-Za-z0-9_]*$)"),
            ));
        }
        if name.eq_ignore_ascii_case(RESERVED_ENV) {
            return Err(invalid(
                "env",
                "VNC_PW is set by the portal (a random password per desktop)",
            ));
        }
        if !seen.insert(name.as_str()) {
            return Err(invalid("env", format_args!("{name} is set twice")));
        }
        if value.contains('\0') {
            return Err(invalid("env", format_args!("the value of {name} contains a NUL byte")));
        }
    }
    Ok(())
}

fn clean_groups(groups: &[String]) -> Result<Vec<String>, StoreError> {
    let set: BTreeSet<&str> = groups.iter().map(|g| g.trim()).filter(|g| !g.is_empty()).collect();
    if let Some(long) = set.iter().find(|g| g.chars().count() > MAX_GROUP_CHARS) {
        return Err(invalid("allowed_groups", format_args!("group name too long: {long:?}")));
    }
    Ok(set.into_iter().map(str::to_owned).collect())
}

fn clean_users(users: &[String]) -> Result<Vec<String>, StoreError> {
    let mut set = BTreeSet::new();
    for user in users.iter().filter(|u| !u.trim().is_empty()) {
        let name = normalize_username(user)
            .map_err(|_| invalid("allowed_users", format_args!("{user:?} is not a valid username")))?;
        set.insert(name);
    }
    Ok(set.into_iter().collect())
}

/// Checks `t` and returns it as it will be stored (trimmed, lists normalised).
fn validate(t: &DesktopType) -> Result<DesktopType, StoreError> {
    check_key(&t.key)?;
    let image = t.image.trim().to_owned();
    check_image(&image)?;
    if t.container_port == 0 {
        return Err(invalid("container_port", "must be between 1 and 65535"));
    }
    let protocol = t.protocol.trim().to_ascii_lowercase();
    if protocol != "https" && protocol != "http" {
        return Err(invalid(
            "protocol",
            format_args!("{:?} is not supported: use https or http", t.protocol),
        ));
    }
    check_env(&t.env)?;
    if t.shm_size_bytes < 0 {
        return Err(invalid("shm_size_bytes", "must not be negative"));
    }
    if t.memory_bytes.is_some_and(|m| m < MIN_MEMORY_BYTES) {
        return Err(invalid("memory_bytes", "at least 6 MiB (or none for no limit)"));
    }
    if t.nano_cpus.is_some_and(|n| n <= 0) {
        return Err(invalid("nano_cpus", "must be positive (or none for no limit)"));
    }
    if t.idle_timeout_secs < 0 {
        return Err(invalid("idle_timeout_secs", "must not be negative (0 = never)"));
    }
    if t.max_age_secs < 0 {
        return Err(invalid("max_age_secs", "must not be negative (0 = never)"));
    }
    Ok(DesktopType {
        key: t.key.clone(),
        name_de: clean_text("name_de", &t.name_de, MAX_NAME_CHARS, true)?,
        name_en: clean_text("name_en", &t.name_en, MAX_NAME_CHARS, false)?,
        description_de: clean_text("description_de", &t.description_de, MAX_DESCRIPTION_CHARS, false)?,
        description_en: clean_text("description_en", &t.description_en, MAX_DESCRIPTION_CHARS, false)?,
        icon: clean_text("icon", &t.icon, MAX_ICON_CHARS, false)?,
        image,
        container_port: t.container_port,
        protocol,
        env: t.env.clone(),
        shm_size_bytes: t.shm_size_bytes,
        memory_bytes: t.memory_bytes,
        nano_cpus: t.nano_cpus,
        enabled: t.enabled,
        idle_timeout_secs: t.idle_timeout_secs,
        max_age_secs: t.max_age_secs,
        allowed_groups: clean_groups(&t.allowed_groups)?,
        allowed_users: clean_users(&t.allowed_users)?,
        sort_order: t.sort_order,
        created_at: t.created_at,
        updated_at: t.updated_at,
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|err| StoreError::Invalid(format!("cannot encode as JSON: {err}")))
}

fn from_json<T: serde::de::DeserializeOwned>(row: &AnyRow, column: &str) -> Result<T, StoreError> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text)
        .map_err(|err| StoreError::corrupt(format!("desktop_types.{column} is not the expected JSON: {err}")))
}

/// `SELECT` of every column [`type_from_row`] reads, followed by the given clause.
macro_rules! select_types {
    ($tail:literal) => {
        concat!(
            "SELECT key, name_de, name_en, description_de, description_en, icon, image, container_port, ",
            "protocol, env, shm_size_bytes, memory_bytes, nano_cpus, enabled, idle_timeout_secs, ",
            "max_age_secs, allowed_groups, allowed_users, sort_order, created_at, updated_at ",
            "FROM desktop_types ",
            $tail
        )
    };
}

fn type_from_row(row: &AnyRow) -> Result<DesktopType, StoreError> {
    let port: i64 = row.try_get("container_port")?;
    let container_port =
        u16::try_from(port).map_err(|_| StoreError::corrupt(format!("container port {port} out of range")))?;
    let enabled: i64 = row.try_get("enabled")?;
    Ok(DesktopType {
        key: row.try_get("key")?,
        name_de: row.try_get("name_de")?,
        name_en: row.try_get("name_en")?,
        description_de: row.try_get("description_de")?,
        description_en: row.try_get("description_en")?,
        icon: row.try_get("icon")?,
        image: row.try_get("image")?,
        container_port,
        protocol: row.try_get("protocol")?,
        env: from_json(row, "env")?,
        shm_size_bytes: row.try_get("shm_size_bytes")?,
        memory_bytes: row.try_get("memory_bytes")?,
        nano_cpus: row.try_get("nano_cpus")?,
        enabled: enabled != 0,
        idle_timeout_secs: row.try_get("idle_timeout_secs")?,
        max_age_secs: row.try_get("max_age_secs")?,
        allowed_groups: from_json(row, "allowed_groups")?,
        allowed_users: from_json(row, "allowed_users")?,
        sort_order: row.try_get("sort_order")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// What [`Store::seed_desktop_type`] did with a type from the configuration file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seeded {
    /// The file's definition was new or changed since the last start, and is now stored.
    Written,
    /// The file's definition is the one seen before: what is stored (possibly edited, or
    /// deleted, by an admin since) stays.
    Kept,
}

/// The settings key under which the fingerprint of a configured type's definition is kept.
fn seed_setting(key: &str) -> String {
    format!("config_desktop_type:{key}")
}

impl Store {
    /// Writes a desktop type defined in the configuration file, if its definition there is new
    /// or has changed since the last time it was written. A definition seen before is left
    /// alone, so changes an admin made in the web UI survive restarts until someone edits that
    /// entry of the file (then the file wins). The order in the file does not count as a change.
    ///
    /// `Invalid` as for [`Store::upsert_desktop_type`].
    pub async fn seed_desktop_type(&self, t: &DesktopType) -> Result<Seeded, StoreError> {
        let definition = DesktopType {
            sort_order: 0,
            created_at: 0,
            updated_at: 0,
            ..validate(t)?
        };
        let json = serde_json::to_vec(&definition).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let fingerprint = crate::hex(&Sha256::digest(&json));
        let setting = seed_setting(&t.key);
        if self.setting(&setting).await?.as_deref() == Some(fingerprint.as_str()) {
            return Ok(Seeded::Kept);
        }
        self.upsert_desktop_type(t).await?;
        self.set_setting(&setting, Some(&fingerprint)).await?;
        Ok(Seeded::Written)
    }

    /// Validates `t` and inserts it, or replaces the type with the same key (keeping its
    /// `created_at`). Returns the type as stored: text trimmed, protocol lowercased, group and
    /// user lists sorted and deduplicated, timestamps set.
    ///
    /// `Invalid` with a message starting with the offending field's name.
    pub async fn upsert_desktop_type(&self, t: &DesktopType) -> Result<DesktopType, StoreError> {
        let mut t = validate(t)?;
        let now = now();
        let row = sqlx::query(
            "INSERT INTO desktop_types (key, name_de, name_en, description_de, description_en, icon, image, \
             container_port, protocol, env, shm_size_bytes, memory_bytes, nano_cpus, enabled, idle_timeout_secs, \
             max_age_secs, allowed_groups, allowed_users, sort_order, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $20) \
             ON CONFLICT (key) DO UPDATE SET name_de = excluded.name_de, name_en = excluded.name_en, \
             description_de = excluded.description_de, description_en = excluded.description_en, \
             icon = excluded.icon, image = excluded.image, container_port = excluded.container_port, \
             protocol = excluded.protocol, env = excluded.env, shm_size_bytes = excluded.shm_size_bytes, \
             memory_bytes = excluded.memory_bytes, nano_cpus = excluded.nano_cpus, enabled = excluded.enabled, \
             idle_timeout_secs = excluded.idle_timeout_secs, max_age_secs = excluded.max_age_secs, \
             allowed_groups = excluded.allowed_groups, allowed_users = excluded.allowed_users, \
             sort_order = excluded.sort_order, updated_at = excluded.updated_at \
             RETURNING created_at",
        )
        .bind(&t.key)
        .bind(&t.name_de)
        .bind(&t.name_en)
        .bind(&t.description_de)
        .bind(&t.description_en)
        .bind(&t.icon)
        .bind(&t.image)
        .bind(i64::from(t.container_port))
        .bind(&t.protocol)
        .bind(to_json(&t.env)?)
        .bind(t.shm_size_bytes)
        .bind(t.memory_bytes)
        .bind(t.nano_cpus)
        .bind(i64::from(t.enabled))
        .bind(t.idle_timeout_secs)
        .bind(t.max_age_secs)
        .bind(to_json(&t.allowed_groups)?)
        .bind(to_json(&t.allowed_users)?)
        .bind(t.sort_order)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        t.created_at = row.try_get("created_at")?;
        t.updated_at = now;
        Ok(t)
    }

    /// Like [`Store::upsert_desktop_type`], but `Conflict` if a type with this key exists, so
    /// an admin creating a type never overwrites another by accident.
    pub async fn create_desktop_type(&self, t: &DesktopType) -> Result<DesktopType, StoreError> {
        let t = validate(t)?;
        if self.desktop_type(&t.key).await?.is_some() {
            return Err(StoreError::Conflict(format!(
                "key: a desktop type {:?} exists already",
                t.key
            )));
        }
        self.upsert_desktop_type(&t).await
    }

    /// Checks `t` as [`Store::upsert_desktop_type`] would, without writing; `Invalid` names the
    /// field.
    pub fn validate_desktop_type(t: &DesktopType) -> Result<DesktopType, StoreError> {
        validate(t)
    }

    pub async fn desktop_type(&self, key: &str) -> Result<Option<DesktopType>, StoreError> {
        let row = sqlx::query(select_types!("WHERE key = $1"))
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(type_from_row).transpose()
    }

    /// Every type, enabled or not, by `sort_order` and then key (bytewise).
    pub async fn list_desktop_types(&self) -> Result<Vec<DesktopType>, StoreError> {
        let rows = sqlx::query(select_types!("ORDER BY sort_order, key"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(type_from_row).collect()
    }

    /// Removes a type. `Conflict` while desktops of the type exist (delete those first, or
    /// disable the type instead). Succeeds if there is no such type.
    pub async fn delete_desktop_type(&self, key: &str) -> Result<(), StoreError> {
        let deleted = sqlx::query("DELETE FROM desktop_types WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await;
        match deleted {
            Ok(_) => Ok(()),
            Err(err) if is_foreign_key_violation(&err) => Err(StoreError::Conflict(format!(
                "desktop type {key:?} still has desktops; delete them first or disable the type"
            ))),
            Err(err) => Err(err.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> DesktopType {
        DesktopType {
            key: "ubuntu".to_owned(),
            name_de: "Ubuntu".to_owned(),
            image: "kasmweb/ubuntu-focal-desktop:1.16.0".to_owned(),
            ..DesktopType::default()
        }
    }

    #[test]
    fn keys() {
        for ok in ["a", "0", "vs-code", "a-", "new-room", &"k".repeat(32)] {
            assert!(check_key(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "A", "vs_code", "vs code", "ä", "new", &"k".repeat(33)] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn images() {
        for ok in [
            "kasmweb/chromium:1.16.0",
            "registry.example:5000/team/img@sha256:0123abcd",
            "ubuntu",
        ] {
            assert!(check_image(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-x", "a b", "a;rm", "x\"", &"a".repeat(256)] {
            assert!(check_image(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_names() {
        assert!(check_env(&[("A_1".into(), "x".into()), ("_b".into(), String::new())]).is_ok());
        for bad in ["", "1A", "A-B", "A=B", "VNC_PW", "vnc_pw"] {
            assert!(check_env(&[(bad.into(), "x".into())]).is_err(), "{bad}");
        }
        assert!(check_env(&[("A".into(), "1".into()), ("A".into(), "2".into())]).is_err());
        assert!(check_env(&[("A".into(), "a\0b".into())]).is_err());
    }

    type Breakage = fn(&mut DesktopType);

    #[test]
    fn validation_names_the_field() {
        let cases: [(&str, Breakage); 11] = [
            ("key", |t| t.key = "Bad".into()),
            ("name_de", |t| t.name_de = "  ".into()),
            ("icon", |t| t.icon = "i".repeat(65)),
            ("image", |t| t.image = "a b".into()),
            ("container_port", |t| t.container_port = 0),
            ("protocol", |t| t.protocol = "vnc".into()),
            ("env", |t| t.env = vec![("VNC_PW".into(), "x".into())]),
            ("memory_bytes", |t| t.memory_bytes = Some(1)),
            ("nano_cpus", |t| t.nano_cpus = Some(0)),
            ("idle_timeout_secs", |t| t.idle_timeout_secs = -1),
            ("allowed_users", |t| t.allowed_users = vec!["not valid".into()]),
        ];
        for (field, break_it) in cases {
            let mut t = valid();
            break_it(&mut t);
            match validate(&t) {
                Err(StoreError::Invalid(message)) => assert!(message.starts_with(field), "{field}: {message}"),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn names_and_permissions() {
        let mut t = valid();
        assert_eq!(t.name("en"), "Ubuntu", "no English name: German");
        t.name_en = "Ubuntu (en)".into();
        t.description_de = "Beschreibung".into();
        assert_eq!(t.name("en"), "Ubuntu (en)");
        assert_eq!(t.name("en-GB"), "Ubuntu (en)");
        assert_eq!(t.name("de"), "Ubuntu");
        assert_eq!(t.name("fr"), "Ubuntu");
        assert_eq!(t.description("en"), "Beschreibung");

        let groups = ["klasse-7a".to_owned()];
        assert!(t.allows("anyone", &[]), "no lists: everyone");
        t.allowed_groups = vec!["klasse-7a".into()];
        assert!(t.allows("anyone", &groups));
        assert!(!t.allows("anyone", &[]));
        t.allowed_users = vec!["lehrer".into()];
        assert!(t.allows("Lehrer", &[]));
        assert!(!t.allows("other", &["klasse-7b".to_owned()]));
    }
}
