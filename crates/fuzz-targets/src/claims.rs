//! IServ's claims (the merged ID token and userinfo JSON) as `iserv_oidc::Identity` reads
//! them, and the portal role and store record made from them.
//!
//! Invariants: a sign-in has a subject and a lowercase, trimmed login name; groups and roles
//! are trimmed, sorted and without duplicates, and each is a name some `groups`/`roles`
//! claim really carries (any shape, plain or `iserv:`); admin or teacher comes only from a
//! configured group or role among those — never from a name, e-mail, username or another
//! claim, so a student-shaped claim set is a student; `allowed_groups` admits only members.

use iserv_oidc::{ClaimsError, Identity, OidcConfig};
use portal_store::Role;
use serde_json::{Map, Value};

pub fn run(data: &[u8]) {
    let Ok(Value::Object(claims)) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let identity = match Identity::from_claims(&claims) {
        Ok(identity) => identity,
        Err(ClaimsError::MissingSubject) => {
            assert!(nonblank(&claims, "sub").is_none());
            return;
        }
        Err(ClaimsError::MissingUsername) => {
            assert!(nonblank(&claims, "preferred_username").is_none() && nonblank(&claims, "username").is_none());
            return;
        }
    };
    check_identity(&claims, &identity);
    for cfg in configs() {
        check_role(&claims, &identity, &cfg);
    }
}

fn nonblank<'a>(claims: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    claims.get(key).and_then(Value::as_str).filter(|s| !s.trim().is_empty())
}

/// The default settings, a school's usual ones, and one with an allow-list.
fn configs() -> Vec<OidcConfig> {
    let names = |n: &[&str]| n.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    vec![
        OidcConfig::default(),
        OidcConfig {
            admin_groups: names(&["admins"]),
            teacher_groups: names(&["lehrer", "Lehrkräfte"]),
            allowed_groups: names(&["5a", "lehrer", "admins"]),
            ..OidcConfig::default()
        },
    ]
}

/// Every string anywhere inside a claim: its values and, in objects, its keys.
fn strings_in(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.trim().to_owned()),
        Value::Array(items) => items.iter().for_each(|v| strings_in(v, out)),
        Value::Object(map) => {
            for (k, v) in map {
                out.push(k.trim().to_owned());
                strings_in(v, out);
            }
        }
        _ => {}
    }
}

/// What the `key` claims (plain and `iserv:`) could possibly name.
fn mentioned(claims: &Map<String, Value>, key: &str) -> Vec<String> {
    let mut out = Vec::new();
    for k in [key.to_owned(), format!("iserv:{key}")] {
        if let Some(v) = claims.get(&k) {
            strings_in(v, &mut out);
        }
    }
    out
}

fn check_identity(claims: &Map<String, Value>, id: &Identity) {
    assert!(!id.username.is_empty() && id.username.trim() == id.username);
    assert_eq!(id.username, id.username.to_lowercase(), "login names are lowercase");
    assert!(!id.external_id.is_empty() && id.external_id.trim() == id.external_id);
    assert!(!id.display_name.is_empty());
    if let Some(email) = &id.email {
        assert!(email.contains('@'));
    }
    for (list, key) in [(&id.groups, "groups"), (&id.roles, "roles")] {
        let mut sorted = list.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(&sorted, list, "{key} sorted and unique");
        let mentioned = mentioned(claims, key);
        for name in list {
            assert!(!name.is_empty() && name.trim() == name, "{key}: {name:?}");
            assert!(mentioned.contains(name), "{key}: {name:?} is in no {key} claim");
        }
    }
}

fn check_role(claims: &Map<String, Value>, id: &Identity, cfg: &OidcConfig) {
    let role = id.role(cfg);
    let matches =
        |names: &[String], wanted: &[String]| names.iter().any(|n| wanted.iter().any(|w| w.eq_ignore_ascii_case(n)));
    let groups = mentioned(claims, "groups");
    let roles = mentioned(claims, "roles");
    let may_admin = matches(&groups, &cfg.admin_groups) || matches(&roles, &cfg.admin_roles);
    let may_teach = matches(&groups, &cfg.teacher_groups) || matches(&roles, &cfg.teacher_roles);
    match role {
        Role::Admin => assert!(may_admin, "admin from a claim set without an admin group or role"),
        Role::Teacher => assert!(may_teach, "teacher from a claim set without a teacher group or role"),
        Role::Student => {
            // A configured group or role the identity holds is never ignored.
            assert!(!matches(&id.groups, &cfg.admin_groups) && !matches(&id.roles, &cfg.admin_roles));
            assert!(!matches(&id.groups, &cfg.teacher_groups) && !matches(&id.roles, &cfg.teacher_roles));
        }
    }
    if !cfg.allowed_groups.is_empty() && id.allowed(cfg) {
        assert!(matches(&groups, &cfg.allowed_groups), "let in without an allowed group");
    }
    let user = id.to_external_user(cfg);
    assert_eq!(user.role, role);
    assert_eq!(user.subject, id.external_id);
    assert_eq!(user.username, id.username);
    assert_eq!(user.groups, id.groups);
}
