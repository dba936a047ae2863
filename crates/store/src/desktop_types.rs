//! Desktop types: the images the portal offers, their limits and who may use them.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

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
/// Longest language code accepted for a type's texts (`de`, `en`, `pt-BR`, `sr-Latn-RS`, …).
const MAX_LANG_CHARS: usize = 16;
/// The language every type must have a name in, and the fallback for all others.
pub const DEFAULT_LANG: &str = "de";
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
    /// Name per language code (`de`, `en`, …); the German one is required. Languages without
    /// a name fall back to German, see [`DesktopType::name`]. Stored trimmed, empty ones dropped.
    pub names: BTreeMap<String, String>,
    /// Description per language code; all optional, same fallback as `names`.
    pub descriptions: BTreeMap<String, String>,
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
    /// `false` (exams): desktops of this type reach nothing outside (an internal network).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub internet: bool,
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
            names: BTreeMap::new(),
            descriptions: BTreeMap::new(),
            icon: String::new(),
            image: String::new(),
            container_port: DEFAULT_CONTAINER_PORT,
            protocol: "https".to_owned(),
            env: Vec::new(),
            shm_size_bytes: DEFAULT_SHM_SIZE_BYTES,
            memory_bytes: None,
            nano_cpus: None,
            enabled: true,
            internet: true,
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
    /// The name in `lang` (`en-GB` also finds `en`) when one is set, else the German one, else
    /// the key.
    pub fn name(&self, lang: &str) -> &str {
        pick(&self.names, lang).unwrap_or(&self.key)
    }

    /// The description in `lang` when one is set, else the German one, else empty.
    pub fn description(&self, lang: &str) -> &str {
        pick(&self.descriptions, lang).unwrap_or_default()
    }

    /// Sets the name in `lang` (builder style, for callers and tests).
    pub fn with_name(mut self, lang: &str, name: impl Into<String>) -> Self {
        self.names.insert(lang.to_owned(), name.into());
        self
    }

    /// Sets the description in `lang` (builder style).
    pub fn with_description(mut self, lang: &str, description: impl Into<String>) -> Self {
        self.descriptions.insert(lang.to_owned(), description.into());
        self
    }

    /// Every language this type has a name or a description in.
    pub fn text_langs(&self) -> BTreeSet<&str> {
        self.names
            .keys()
            .chain(self.descriptions.keys())
            .map(String::as_str)
            .collect()
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

/// The non-empty text for `lang`, then for its primary subtag, then German.
fn pick<'a>(texts: &'a BTreeMap<String, String>, lang: &str) -> Option<&'a str> {
    let lang = lang.trim();
    let primary = lang.split(['-', '_']).next().unwrap_or_default();
    let find = |code: &str| {
        texts
            .iter()
            .find(|(k, v)| k.eq_ignore_ascii_case(code) && !v.is_empty())
            .map(|(_, v)| v.as_str())
    };
    find(lang).or_else(|| find(primary)).or_else(|| find(DEFAULT_LANG))
}

/// `^[a-z]{2,3}(-[A-Za-z0-9]{1,8})*$`, at most [`MAX_LANG_CHARS`]: a BCP 47 tag's shape.
fn check_lang(field: &str, lang: &str) -> Result<(), StoreError> {
    let mut parts = lang.split('-');
    let primary = parts.next().unwrap_or_default();
    let primary_ok = (2..=3).contains(&primary.len()) && primary.chars().all(|c| c.is_ascii_lowercase());
    let rest_ok = parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
    if primary_ok && rest_ok && lang.len() <= MAX_LANG_CHARS {
        Ok(())
    } else {
        Err(invalid(
            field,
            format_args!("{lang:?} is not a language code such as de, en or pt-BR"),
        ))
    }
}

/// Trimmed texts per language, empty ones dropped; `field` is `name` or `description`, and
/// errors name `field.lang`.
fn clean_texts(
    field: &str,
    texts: &BTreeMap<String, String>,
    max: usize,
) -> Result<BTreeMap<String, String>, StoreError> {
    let mut out = BTreeMap::new();
    for (lang, text) in texts {
        let lang = lang.trim();
        let name = format!("{field}.{lang}");
        check_lang(&name, lang)?;
        let text = clean_text(&name, text, max, false)?;
        if !text.is_empty() && out.insert(lang.to_owned(), text).is_some() {
            return Err(invalid(&name, "given twice"));
        }
    }
    Ok(out)
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
    let names = clean_texts("name", &t.names, MAX_NAME_CHARS)?;
    if !names.contains_key(DEFAULT_LANG) {
        return Err(invalid(&format!("name.{DEFAULT_LANG}"), "must not be empty"));
    }
    Ok(DesktopType {
        key: t.key.clone(),
        names,
        descriptions: clean_texts("description", &t.descriptions, MAX_DESCRIPTION_CHARS)?,
        icon: clean_text("icon", &t.icon, MAX_ICON_CHARS, false)?,
        image,
        container_port: t.container_port,
        protocol,
        env: t.env.clone(),
        shm_size_bytes: t.shm_size_bytes,
        memory_bytes: t.memory_bytes,
        nano_cpus: t.nano_cpus,
        enabled: t.enabled,
        internet: t.internet,
        idle_timeout_secs: t.idle_timeout_secs,
        max_age_secs: t.max_age_secs,
        allowed_groups: clean_groups(&t.allowed_groups)?,
        allowed_users: clean_users(&t.allowed_users)?,
        sort_order: t.sort_order,
        created_at: t.created_at,
        updated_at: t.updated_at,
    })
}

/// serde's default for [`DesktopType::internet`].
fn yes() -> bool {
    true
}

/// Leaves `internet = true` out of the JSON that fingerprints a type.
#[allow(clippy::trivially_copy_pass_by_ref)] // serde passes a reference
fn is_true(value: &bool) -> bool {
    *value
}

/// Moves a user's place in every type's `allowed_users` from `old` to `new` (`None`: takes
/// it away), inside the caller's transaction; returns the keys of the types changed. A type
/// allowed to "bob" is allowed to a person: when IServ renames bob, the grant goes with him,
/// and whoever holds "bob" next, or a local "bob" created after the account was deleted, does
/// not inherit it.
pub(crate) async fn move_allowed_user(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    old: &str,
    new: Option<&str>,
) -> Result<Vec<String>, StoreError> {
    let mut changed = Vec::new();
    let rows = sqlx::query("SELECT key, allowed_users FROM desktop_types")
        .fetch_all(&mut **tx)
        .await?;
    for row in &rows {
        let users: Vec<String> = from_json(row, "allowed_users")?;
        if !users.iter().any(|u| u.eq_ignore_ascii_case(old)) {
            continue;
        }
        let moved: BTreeSet<String> = users
            .into_iter()
            .filter(|u| !u.eq_ignore_ascii_case(old))
            .chain(new.map(str::to_owned))
            .collect();
        let key: String = row.try_get("key")?;
        sqlx::query("UPDATE desktop_types SET allowed_users = $1 WHERE key = $2")
            .bind(to_json(&moved)?)
            .bind(&key)
            .execute(&mut **tx)
            .await?;
        changed.push(key);
    }
    Ok(changed)
}

/// Adds `username` back to the `allowed_users` of the types `keys` that still exist (a
/// restored account gets back what its deletion took).
pub(crate) async fn readd_allowed_user(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    username: &str,
    keys: &[String],
) -> Result<(), StoreError> {
    for key in keys {
        let Some(row) = sqlx::query("SELECT allowed_users FROM desktop_types WHERE key = $1")
            .bind(key)
            .fetch_optional(&mut **tx)
            .await?
        else {
            continue;
        };
        let mut users: BTreeSet<String> = from_json::<Vec<String>>(&row, "allowed_users")?.into_iter().collect();
        users.insert(username.to_owned());
        sqlx::query("UPDATE desktop_types SET allowed_users = $1 WHERE key = $2")
            .bind(to_json(&users)?)
            .bind(key)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
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
            "SELECT key, icon, image, container_port, ",
            "protocol, env, shm_size_bytes, memory_bytes, nano_cpus, enabled, idle_timeout_secs, ",
            "max_age_secs, allowed_groups, allowed_users, sort_order, created_at, updated_at, internet ",
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
    let internet: i64 = row.try_get("internet")?;
    Ok(DesktopType {
        key: row.try_get("key")?,
        names: BTreeMap::new(),
        descriptions: BTreeMap::new(),
        icon: row.try_get("icon")?,
        image: row.try_get("image")?,
        container_port,
        protocol: row.try_get("protocol")?,
        env: from_json(row, "env")?,
        shm_size_bytes: row.try_get("shm_size_bytes")?,
        memory_bytes: row.try_get("memory_bytes")?,
        nano_cpus: row.try_get("nano_cpus")?,
        enabled: enabled != 0,
        internet: internet != 0,
        idle_timeout_secs: row.try_get("idle_timeout_secs")?,
        max_age_secs: row.try_get("max_age_secs")?,
        allowed_groups: from_json(row, "allowed_groups")?,
        allowed_users: from_json(row, "allowed_users")?,
        sort_order: row.try_get("sort_order")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Adds one `desktop_type_texts` row to `t`; empty texts are left out.
fn add_text(t: &mut DesktopType, row: &AnyRow) -> Result<(), StoreError> {
    let lang: String = row.try_get("lang")?;
    let name: String = row.try_get("name")?;
    let description: String = row.try_get("description")?;
    if !name.is_empty() {
        t.names.insert(lang.clone(), name);
    }
    if !description.is_empty() {
        t.descriptions.insert(lang, description);
    }
    Ok(())
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

/// The JSON whose hash fingerprints a configured type. Types with German and English texts
/// only hash as they did when those were columns of their own (`name_de`, `name_en`, …), so
/// upgrading does not count as a change of the file (which would overwrite an admin's edits).
fn definition_json(t: &DesktopType) -> Result<Vec<u8>, StoreError> {
    #[derive(serde::Serialize)]
    struct Legacy<'a> {
        key: &'a str,
        name_de: &'a str,
        name_en: &'a str,
        description_de: &'a str,
        description_en: &'a str,
        icon: &'a str,
        image: &'a str,
        container_port: u16,
        protocol: &'a str,
        env: &'a [(String, String)],
        shm_size_bytes: i64,
        memory_bytes: Option<i64>,
        nano_cpus: Option<i64>,
        enabled: bool,
        // Left out while true, so types from before the setting keep their fingerprint.
        #[serde(skip_serializing_if = "is_true")]
        internet: bool,
        idle_timeout_secs: i64,
        max_age_secs: i64,
        allowed_groups: &'a [String],
        allowed_users: &'a [String],
        sort_order: i64,
        created_at: i64,
        updated_at: i64,
    }
    let encode = |r: serde_json::Result<Vec<u8>>| r.map_err(|e| StoreError::Invalid(e.to_string()));
    if !t.text_langs().iter().all(|l| *l == "de" || *l == "en") {
        return encode(serde_json::to_vec(t));
    }
    let text = |texts: &BTreeMap<String, String>, lang: &str| texts.get(lang).cloned().unwrap_or_default();
    let (name_de, name_en) = (text(&t.names, "de"), text(&t.names, "en"));
    let (description_de, description_en) = (text(&t.descriptions, "de"), text(&t.descriptions, "en"));
    encode(serde_json::to_vec(&Legacy {
        key: &t.key,
        name_de: &name_de,
        name_en: &name_en,
        description_de: &description_de,
        description_en: &description_en,
        icon: &t.icon,
        image: &t.image,
        container_port: t.container_port,
        protocol: &t.protocol,
        env: &t.env,
        shm_size_bytes: t.shm_size_bytes,
        memory_bytes: t.memory_bytes,
        nano_cpus: t.nano_cpus,
        enabled: t.enabled,
        internet: t.internet,
        idle_timeout_secs: t.idle_timeout_secs,
        max_age_secs: t.max_age_secs,
        allowed_groups: &t.allowed_groups,
        allowed_users: &t.allowed_users,
        sort_order: t.sort_order,
        created_at: t.created_at,
        updated_at: t.updated_at,
    }))
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
        let json = definition_json(&definition)?;
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
        // The old per-language columns are not read any more (see migration 0007) but are
        // NOT NULL; they get the German and English texts, for a portal of the previous version.
        let legacy = |texts: &BTreeMap<String, String>, lang: &str| texts.get(lang).cloned().unwrap_or_default();
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "INSERT INTO desktop_types (key, name_de, name_en, description_de, description_en, icon, image, \
             container_port, protocol, env, shm_size_bytes, memory_bytes, nano_cpus, enabled, idle_timeout_secs, \
             max_age_secs, allowed_groups, allowed_users, sort_order, created_at, updated_at, internet) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $20, $21) \
             ON CONFLICT (key) DO UPDATE SET name_de = excluded.name_de, name_en = excluded.name_en, \
             description_de = excluded.description_de, description_en = excluded.description_en, \
             icon = excluded.icon, image = excluded.image, container_port = excluded.container_port, \
             protocol = excluded.protocol, env = excluded.env, shm_size_bytes = excluded.shm_size_bytes, \
             memory_bytes = excluded.memory_bytes, nano_cpus = excluded.nano_cpus, enabled = excluded.enabled, \
             idle_timeout_secs = excluded.idle_timeout_secs, max_age_secs = excluded.max_age_secs, \
             allowed_groups = excluded.allowed_groups, allowed_users = excluded.allowed_users, \
             sort_order = excluded.sort_order, updated_at = excluded.updated_at, internet = excluded.internet \
             RETURNING created_at",
        )
        .bind(&t.key)
        .bind(legacy(&t.names, "de"))
        .bind(legacy(&t.names, "en"))
        .bind(legacy(&t.descriptions, "de"))
        .bind(legacy(&t.descriptions, "en"))
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
        .bind(i64::from(t.internet))
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM desktop_type_texts WHERE type_key = $1")
            .bind(&t.key)
            .execute(&mut *tx)
            .await?;
        for lang in t.text_langs() {
            sqlx::query("INSERT INTO desktop_type_texts (type_key, lang, name, description) VALUES ($1, $2, $3, $4)")
                .bind(&t.key)
                .bind(lang)
                .bind(t.names.get(lang).map(String::as_str).unwrap_or_default())
                .bind(t.descriptions.get(lang).map(String::as_str).unwrap_or_default())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
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
        let Some(mut t) = row.as_ref().map(type_from_row).transpose()? else {
            return Ok(None);
        };
        let texts = sqlx::query("SELECT type_key, lang, name, description FROM desktop_type_texts WHERE type_key = $1")
            .bind(key)
            .fetch_all(&self.pool)
            .await?;
        for row in &texts {
            add_text(&mut t, row)?;
        }
        Ok(Some(t))
    }

    /// Every type, enabled or not, by `sort_order` and then key (bytewise).
    pub async fn list_desktop_types(&self) -> Result<Vec<DesktopType>, StoreError> {
        let rows = sqlx::query(select_types!("ORDER BY sort_order, key"))
            .fetch_all(&self.pool)
            .await?;
        let mut types = rows.iter().map(type_from_row).collect::<Result<Vec<_>, _>>()?;
        let texts = sqlx::query("SELECT type_key, lang, name, description FROM desktop_type_texts")
            .fetch_all(&self.pool)
            .await?;
        let index: HashMap<String, usize> = types.iter().enumerate().map(|(i, t)| (t.key.clone(), i)).collect();
        for row in &texts {
            let key: String = row.try_get("type_key")?;
            // A type added between the two reads has texts but no row here: skip them.
            if let Some(&i) = index.get(&key) {
                add_text(&mut types[i], row)?;
            }
        }
        Ok(types)
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
            names: [("de".to_owned(), "Ubuntu".to_owned())].into(),
            image: "kasmweb/ubuntu-focal-desktop:1.16.0".to_owned(),
            ..DesktopType::default()
        }
    }

    #[test]
    fn langs() {
        for ok in ["de", "en", "fr", "pt-BR", "sr-Latn-RS", "gsw"] {
            assert!(check_lang("l", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "d",
            "DE",
            "deutsch",
            "de_DE",
            "de-",
            "e1",
            "de-toolongsubtag",
            "de-Latn-RS-x-abcdef",
        ] {
            assert!(check_lang("l", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn validation_trims_texts_and_drops_empty_ones() {
        let t = valid()
            .with_name("fr", "  Bureau ")
            .with_name("en", " ")
            .with_description("fr", " Un bureau. ");
        let v = validate(&t).expect("valid");
        assert_eq!(v.names.get("fr").map(String::as_str), Some("Bureau"));
        assert!(!v.names.contains_key("en"));
        assert_eq!(v.descriptions.get("fr").map(String::as_str), Some("Un bureau."));
    }

    /// A type defined with German and English texts fingerprints as it did before texts were
    /// per language, so the upgrade does not re-apply the configuration file over admins' edits.
    #[test]
    fn fingerprint_of_de_en_types_is_unchanged() {
        let t = valid()
            .with_name("en", "Ubuntu (en)")
            .with_description("de", "Beschreibung");
        let json = String::from_utf8(definition_json(&t).expect("json")).expect("utf-8");
        let legacy = r#"{"key":"ubuntu","name_de":"Ubuntu","name_en":"Ubuntu (en)","description_de":"Beschreibung","description_en":"","#;
        assert!(json.starts_with(legacy), "{json}");
        let json = String::from_utf8(definition_json(&t.with_name("fr", "Bureau")).expect("json")).expect("utf-8");
        assert!(
            json.contains(r#""names":{"de":"Ubuntu","en":"Ubuntu (en)","fr":"Bureau"}"#),
            "{json}"
        );
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
        let cases: [(&str, Breakage); 13] = [
            ("key", |t| t.key = "Bad".into()),
            ("name.de", |t| {
                t.names = [("de".into(), "  ".into()), ("en".into(), "x".into())].into()
            }),
            ("name.EN", |t| {
                t.names = [("de".into(), "x".into()), ("EN".into(), "x".into())].into()
            }),
            ("description.fr", |t| {
                t.descriptions = [("fr".into(), "d".repeat(2001))].into()
            }),
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
        let t = valid();
        assert_eq!(t.name("en"), "Ubuntu", "no English name: German");
        let mut t = t.with_name("en", "Ubuntu (en)").with_description("de", "Beschreibung");
        t = t.with_name("pt-BR", "Ubuntu (pt-BR)").with_name("fr", "");
        assert_eq!(t.name("en"), "Ubuntu (en)");
        assert_eq!(t.name("en-GB"), "Ubuntu (en)");
        assert_eq!(t.name("de"), "Ubuntu");
        assert_eq!(t.name("fr"), "Ubuntu", "empty French name: German");
        assert_eq!(t.name("pt-BR"), "Ubuntu (pt-BR)");
        assert_eq!(t.name("pt"), "Ubuntu");
        assert_eq!(t.description("en"), "Beschreibung");
        t.names.clear();
        assert_eq!(t.name("de"), "ubuntu", "no names at all: the key");
        t.names.insert("de".into(), "Ubuntu".into());

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
