//! Test users and the claim shapes IServ installations send.
//!
//! IServ sends `groups` as a list of names, an object keyed by group account or a list of
//! `{act, name}` objects; `roles` as `[{id}]` or `[{uuid, id, displayName}]`; and the keys
//! `groups`, `roles`, `uuid` either plain or prefixed with `iserv:`. The helpers here build each
//! shape so a client can be tested against all of them:
//!
//! ```
//! use testkit::oidc::TestUser;
//! // groups ["5a"], roles [{"id": "ROLE_STUDENT"}]
//! let anna = TestUser::student("anna");
//! // groups {"lehrer": {"act": "lehrer", "name": "Lehrer"}} under "iserv:groups",
//! // roles [{"uuid": …, "id": "ROLE_TEACHER", "displayName": "Lehrer"}] under "iserv:roles"
//! let tom = TestUser::teacher("tom").groups_as_object().roles_detailed().prefixed();
//! ```

use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

/// Claims that may appear plain or with the `iserv:` prefix.
const PREFIXABLE: [&str; 3] = ["groups", "roles", "uuid"];

/// Who signs in: the `sub` and every other claim the ID token and userinfo carry.
#[derive(Clone, Debug, PartialEq)]
pub struct TestUser {
    /// The stable subject identifier (IServ uses a UUID).
    pub sub: String,
    /// All other claims, sent as they are in the ID token and from userinfo.
    pub claims: Map<String, Value>,
}

impl TestUser {
    /// A user with `preferred_username`, `name`, `email` and `uuid` (= `sub`), no groups or roles.
    pub fn new(sub: impl Into<String>, preferred_username: impl Into<String>) -> Self {
        let sub = sub.into();
        let login: String = preferred_username.into();
        let mut claims = Map::new();
        claims.insert("preferred_username".into(), json!(login));
        claims.insert("name".into(), json!(display_name(&login)));
        claims.insert("email".into(), json!(format!("{login}@school.example")));
        claims.insert("uuid".into(), json!(sub));
        TestUser { sub, claims }
    }

    /// A user whose `sub` is a UUID derived from the login, so it is the same in every test.
    pub fn named(login: &str) -> Self {
        TestUser::new(stable_uuid(login), login)
    }

    /// A student: groups `["5a"]`, roles `[{"id": "ROLE_STUDENT"}]`.
    pub fn student(login: &str) -> Self {
        TestUser::named(login).groups(&["5a"]).roles(&["ROLE_STUDENT"])
    }

    /// A teacher: groups `["lehrer"]`, roles `[{"id": "ROLE_TEACHER"}]`.
    pub fn teacher(login: &str) -> Self {
        TestUser::named(login).groups(&["lehrer"]).roles(&["ROLE_TEACHER"])
    }

    /// An administrator: groups `["admins"]`, roles `[{"id": "ROLE_ADMIN"}]`.
    pub fn admin(login: &str) -> Self {
        TestUser::named(login).groups(&["admins"]).roles(&["ROLE_ADMIN"])
    }

    /// Sets or replaces any claim (`"sub"` with a string replaces [`TestUser::sub`]).
    pub fn claim(mut self, key: impl Into<String>, value: Value) -> Self {
        let key = key.into();
        if key == "sub"
            && let Value::String(sub) = &value
        {
            self.sub = sub.clone();
            return self;
        }
        self.claims.insert(key, value);
        self
    }

    /// Removes a claim.
    pub fn without(mut self, key: &str) -> Self {
        self.claims.remove(key);
        self
    }

    /// `groups` as a list of names: `["5a", "lehrer"]`.
    pub fn groups(self, names: &[&str]) -> Self {
        self.claim("groups", json!(names))
    }

    /// `roles` as a list of `{id}`: `[{"id": "ROLE_TEACHER"}]`.
    pub fn roles(self, ids: &[&str]) -> Self {
        let roles: Vec<Value> = ids.iter().map(|id| json!({ "id": id })).collect();
        self.claim("roles", Value::Array(roles))
    }

    /// Rewrites `groups` (plain or prefixed) as an object keyed by group account:
    /// `{"5a": {"act": "5a", "name": "Klasse 5a"}}`.
    pub fn groups_as_object(mut self) -> Self {
        self.map_claim("groups", |acts| {
            Value::Object(acts.iter().map(|act| (act.clone(), group_object(act))).collect())
        });
        self
    }

    /// Rewrites `groups` (plain or prefixed) as a list of objects:
    /// `[{"act": "5a", "name": "Klasse 5a"}]`.
    pub fn groups_as_list_of_objects(mut self) -> Self {
        self.map_claim("groups", |acts| {
            Value::Array(acts.iter().map(|a| group_object(a)).collect())
        });
        self
    }

    /// Rewrites `roles` (plain or prefixed) in the detailed shape:
    /// `[{"uuid": "…", "id": "ROLE_TEACHER", "displayName": "Lehrer"}]`.
    pub fn roles_detailed(mut self) -> Self {
        self.map_claim("roles", |ids| {
            Value::Array(
                ids.iter()
                    .map(|id| json!({ "uuid": stable_uuid(id), "id": id, "displayName": role_display_name(id) }))
                    .collect(),
            )
        });
        self
    }

    /// Moves `groups`, `roles` and `uuid` to `iserv:groups`, `iserv:roles`, `iserv:uuid`, as
    /// newer IServ installations send them.
    pub fn prefixed(mut self) -> Self {
        for key in PREFIXABLE {
            if let Some(value) = self.claims.remove(key) {
                self.claims.insert(format!("iserv:{key}"), value);
            }
        }
        self
    }

    /// The login name, if set.
    pub fn login(&self) -> Option<&str> {
        self.claims.get("preferred_username").and_then(Value::as_str)
    }

    /// Replaces the claim `key` (plain or `iserv:` prefixed) by `shape(names)`, where `names` are
    /// the group accounts / role ids the claim holds in whichever shape it is now.
    fn map_claim(&mut self, key: &str, shape: impl Fn(&[String]) -> Value) {
        let prefixed = format!("iserv:{key}");
        for name in [key, prefixed.as_str()] {
            if let Some(value) = self.claims.get_mut(name) {
                *value = shape(&identifiers(value));
            }
        }
    }
}

/// The group accounts or role ids in any of the shapes: names, `{act|id}` objects, keyed object.
fn identifiers(value: &Value) -> Vec<String> {
    let of_item = |item: &Value| match item {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o
            .get("act")
            .or_else(|| o.get("id"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    };
    match value {
        Value::Array(items) => items.iter().filter_map(of_item).collect(),
        Value::Object(map) => map.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

fn group_object(act: &str) -> Value {
    json!({ "act": act, "name": group_display_name(act) })
}

/// IServ names class groups "Klasse 5a"; others by their capitalised account.
fn group_display_name(act: &str) -> String {
    if act.starts_with(|c: char| c.is_ascii_digit()) {
        format!("Klasse {act}")
    } else {
        display_name(act)
    }
}

fn role_display_name(id: &str) -> String {
    match id {
        "ROLE_TEACHER" => "Lehrer".to_owned(),
        "ROLE_STUDENT" => "Schüler".to_owned(),
        "ROLE_ADMIN" => "Administrator".to_owned(),
        other => other.trim_start_matches("ROLE_").to_lowercase(),
    }
}

/// "anna.schmidt" → "Anna Schmidt".
fn display_name(login: &str) -> String {
    login
        .split(['.', '_', '-'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A UUID-formatted digest of `seed`: stable across runs, distinct per seed.
fn stable_uuid(seed: &str) -> String {
    let digest = Sha256::digest(seed.as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}
