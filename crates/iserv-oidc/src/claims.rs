//! From IServ's claims to a portal user: login name, stable id, groups, roles, portal role.
//!
//! IServ versions differ (see ARCHITECTURE.md, "IServ sign-in"): `groups` is a list of names,
//! an object keyed by group account, or a list of `{act, name}`; `roles` is a list of `{id}` or
//! `{uuid, id, displayName}` (or plain ids); `groups`, `roles` and `uuid` may carry the
//! `iserv:` prefix. Every shape is read here, in one place.
//!
//! The login name comes from `preferred_username`, else a `username` claim. There is
//! deliberately no fallback to the e-mail address: its local part is not the IServ login, may
//! belong to another domain and could match someone else's account name.

use portal_store::{ExternalUser, Role};
use serde_json::{Map, Value};

use super::OidcConfig;

/// What the claims lack or break, in words an admin can act on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClaimsError {
    #[error("IServ sent no login name (claim preferred_username); does the portal get the scope `profile`?")]
    MissingUsername,
    #[error("IServ sent no subject (claim sub)")]
    MissingSubject,
}

/// A person as IServ describes them at one sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// IServ's `uuid` (plain or `iserv:`), else `sub`: stable across renames.
    pub external_id: String,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    /// Group accounts (`act`), e.g. `5a`, `lehrer`.
    pub groups: Vec<String>,
    /// Role ids, e.g. `ROLE_TEACHER`.
    pub roles: Vec<String>,
}

/// The string claim `key`, trimmed and non-empty.
fn text<'a>(claims: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    claims
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// The claim under its plain name, else under the `iserv:` prefix.
fn either<'a>(claims: &'a Map<String, Value>, key: &str) -> impl Iterator<Item = &'a Value> {
    [claims.get(key), claims.get(&format!("iserv:{key}"))]
        .into_iter()
        .flatten()
}

/// Names in any of the shapes: a string, a list of strings or objects, an object keyed by
/// name. For objects, the first of `fields` that is a string wins; a keyed object without
/// such a field uses its key.
fn names(value: &Value, fields: &[&str]) -> Vec<String> {
    let of_object = |o: &Map<String, Value>| {
        fields
            .iter()
            .find_map(|f| o.get(*f).and_then(Value::as_str))
            .map(str::to_owned)
    };
    let found: Vec<String> = match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(|item| match item {
                Value::String(s) => Some(s.clone()),
                Value::Object(o) => of_object(o),
                _ => None,
            })
            .collect(),
        Value::Object(map) => map
            .iter()
            .map(|(key, v)| match v {
                Value::Object(o) => of_object(o).unwrap_or_else(|| key.clone()),
                _ => key.clone(),
            })
            .collect(),
        _ => Vec::new(),
    };
    found
        .into_iter()
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .collect()
}

fn all_names(claims: &Map<String, Value>, key: &str, fields: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = either(claims, key).flat_map(|v| names(v, fields)).collect();
    out.sort();
    out.dedup();
    out
}

impl Identity {
    /// Reads the merged ID token and userinfo claims.
    pub fn from_claims(claims: &Map<String, Value>) -> Result<Identity, ClaimsError> {
        let sub = text(claims, "sub").ok_or(ClaimsError::MissingSubject)?;
        let external_id = either(claims, "uuid")
            .find_map(|v| v.as_str().map(str::trim).filter(|s| !s.is_empty()))
            .unwrap_or(sub)
            .to_owned();
        let username = text(claims, "preferred_username")
            .or_else(|| text(claims, "username"))
            .ok_or(ClaimsError::MissingUsername)?
            .to_lowercase();
        let display_name = text(claims, "name")
            .map(str::to_owned)
            .or_else(|| {
                let parts: Vec<&str> = ["given_name", "family_name"]
                    .iter()
                    .filter_map(|k| text(claims, k))
                    .collect();
                (!parts.is_empty()).then(|| parts.join(" "))
            })
            .unwrap_or_else(|| username.clone());
        let email = text(claims, "email").filter(|e| e.contains('@')).map(str::to_owned);
        Ok(Identity {
            external_id,
            username,
            display_name,
            email,
            // Group accounts (`act`) are what desktop types and class views refer to.
            groups: all_names(claims, "groups", &["act", "name"]),
            roles: all_names(claims, "roles", &["id", "name"]),
        })
    }

    fn in_any_group(&self, wanted: &[String]) -> bool {
        self.groups
            .iter()
            .any(|g| wanted.iter().any(|w| w.eq_ignore_ascii_case(g)))
    }

    fn has_any_role(&self, wanted: &[String]) -> bool {
        self.roles
            .iter()
            .any(|r| wanted.iter().any(|w| w.eq_ignore_ascii_case(r)))
    }

    /// Admin and teacher from configured group names or role ids; everyone else is a student.
    pub fn role(&self, cfg: &OidcConfig) -> Role {
        if self.in_any_group(&cfg.admin_groups) || self.has_any_role(&cfg.admin_roles) {
            Role::Admin
        } else if self.in_any_group(&cfg.teacher_groups) || self.has_any_role(&cfg.teacher_roles) {
            Role::Teacher
        } else {
            Role::Student
        }
    }

    /// Whether `allowed_groups` (if any) lets this person in.
    pub fn allowed(&self, cfg: &OidcConfig) -> bool {
        cfg.allowed_groups.is_empty() || self.in_any_group(&cfg.allowed_groups)
    }

    /// The store's view: matched by the stable id first, so a rename keeps the account.
    pub fn to_external_user(&self, cfg: &OidcConfig) -> ExternalUser {
        ExternalUser {
            subject: self.external_id.clone(),
            username: self.username.clone(),
            display_name: self.display_name.clone(),
            email: self.email.clone(),
            role: self.role(cfg),
            groups: self.groups.clone(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn identity(v: Value) -> Result<Identity, ClaimsError> {
        Identity::from_claims(v.as_object().unwrap())
    }

    fn base() -> Value {
        json!({"sub": "s-1", "preferred_username": "Anna.Schmidt", "name": "Anna Schmidt", "email": "anna@school.example"})
    }

    fn with(mut v: Value, key: &str, value: Value) -> Value {
        v.as_object_mut().unwrap().insert(key.into(), value);
        v
    }

    #[test]
    fn every_group_shape_gives_the_group_accounts() {
        let shapes = [
            json!(["5a", "lehrer"]),
            json!({"5a": {"act": "5a", "name": "Klasse 5a"}, "lehrer": {"act": "lehrer", "name": "Lehrer"}}),
            json!([{"act": "5a", "name": "Klasse 5a"}, {"act": "lehrer", "name": "Lehrer"}]),
            json!({"5a": "Klasse 5a", "lehrer": "Lehrer"}),
        ];
        for shape in shapes {
            for key in ["groups", "iserv:groups"] {
                let id = identity(with(base(), key, shape.clone())).unwrap();
                assert_eq!(id.groups, ["5a", "lehrer"], "{key}: {shape}");
            }
        }
    }

    #[test]
    fn every_role_shape_gives_the_role_ids() {
        let shapes = [
            json!([{"id": "ROLE_TEACHER"}]),
            json!([{"uuid": "u-1", "id": "ROLE_TEACHER", "displayName": "Lehrer"}]),
            json!(["ROLE_TEACHER"]),
            json!({"u-1": {"uuid": "u-1", "id": "ROLE_TEACHER"}}),
        ];
        let cfg = OidcConfig::default();
        for shape in shapes {
            for key in ["roles", "iserv:roles"] {
                let id = identity(with(base(), key, shape.clone())).unwrap();
                assert_eq!(id.roles, ["ROLE_TEACHER"], "{key}: {shape}");
                assert_eq!(id.role(&cfg), Role::Teacher);
            }
        }
    }

    #[test]
    fn uuid_beats_sub_and_username_is_lowercased() {
        let id = identity(with(base(), "iserv:uuid", json!("abc-uuid"))).unwrap();
        assert_eq!(id.external_id, "abc-uuid");
        assert_eq!(id.username, "anna.schmidt");
        assert_eq!(identity(base()).unwrap().external_id, "s-1");
    }

    #[test]
    fn username_fallbacks_and_missing_username() {
        let mut v = base();
        v.as_object_mut().unwrap().remove("preferred_username");
        assert_eq!(identity(v.clone()), Err(ClaimsError::MissingUsername));
        let id = identity(with(v, "username", json!("anna"))).unwrap();
        assert_eq!(id.username, "anna");
    }

    #[test]
    fn roles_from_groups_or_role_ids() {
        let cfg = OidcConfig {
            admin_groups: vec!["admins".into()],
            teacher_groups: vec!["lehrer".into()],
            ..OidcConfig::default()
        };
        let role = |groups: Value, roles: Value| {
            identity(with(with(base(), "groups", groups), "roles", roles))
                .unwrap()
                .role(&cfg)
        };
        assert_eq!(role(json!(["admins"]), json!([])), Role::Admin);
        assert_eq!(role(json!([]), json!([{"id": "ROLE_ADMIN"}])), Role::Admin);
        assert_eq!(role(json!(["Lehrer"]), json!([])), Role::Teacher);
        assert_eq!(role(json!(["5a"]), json!([{"id": "ROLE_STUDENT"}])), Role::Student);
    }

    #[test]
    fn allowed_groups_filter() {
        let cfg = OidcConfig {
            allowed_groups: vec!["5a".into()],
            ..OidcConfig::default()
        };
        assert!(identity(with(base(), "groups", json!(["5a"]))).unwrap().allowed(&cfg));
        assert!(!identity(with(base(), "groups", json!(["6b"]))).unwrap().allowed(&cfg));
        assert!(identity(base()).unwrap().allowed(&OidcConfig::default()));
    }

    #[test]
    fn display_name_falls_back() {
        let mut v = base();
        v.as_object_mut().unwrap().remove("name");
        assert_eq!(identity(v.clone()).unwrap().display_name, "anna.schmidt");
        let v = with(with(v, "given_name", json!("Anna")), "family_name", json!("Schmidt"));
        assert_eq!(identity(v).unwrap().display_name, "Anna Schmidt");
    }
}
