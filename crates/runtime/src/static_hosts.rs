//! The `static` backend: desktops that already run somewhere (lab machines, a kasm container
//! started by hand), listed in the configuration.

use async_trait::async_trait;
use secrecy::SecretString;
use url::Url;

use crate::{Audience, ContainerRuntime, Credentials, Endpoint, RunningDesktop, RuntimeError};

/// One `[[static_desktops]]` entry, as configured.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct StaticDesktop {
    pub id: String,
    pub name: Option<String>,
    pub url: String,
    pub username: Option<String>,
    /// Never written out: serialising (e.g. `check-config`) shows a placeholder.
    #[serde(serialize_with = "hide_secret")]
    pub password: Option<SecretString>,
    #[serde(default)]
    pub verify_tls: bool,
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
}

fn hide_secret<S: serde::Serializer>(secret: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(_) => s.serialize_str("<hidden>"),
        None => s.serialize_none(),
    }
}

/// Serves the configured desktops; they are always "running".
pub struct StaticRuntime {
    desktops: Vec<RunningDesktop>,
}

impl StaticRuntime {
    /// Validates every entry; the error names the entry and what is wrong with it.
    pub fn new(entries: &[StaticDesktop]) -> Result<Self, RuntimeError> {
        let mut desktops = Vec::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            let at = format!("static_desktops[{i}] (id {:?})", e.id);
            if !valid_id(&e.id) {
                return Err(RuntimeError::Invalid(format!(
                    "{at}: id must be 1–64 characters of a-z, 0-9, '-', '_' or '.'"
                )));
            }
            if desktops.iter().any(|d: &RunningDesktop| d.id == e.id) {
                return Err(RuntimeError::Invalid(format!("{at}: the id is used twice")));
            }
            let url =
                Url::parse(&e.url).map_err(|err| RuntimeError::Invalid(format!("{at}: url {:?}: {err}", e.url)))?;
            let https = match url.scheme() {
                "https" => true,
                "http" => false,
                other => {
                    return Err(RuntimeError::Invalid(format!(
                        "{at}: url scheme must be http or https, not {other:?}"
                    )));
                }
            };
            let host = url
                .host_str()
                .ok_or_else(|| RuntimeError::Invalid(format!("{at}: url has no host")))?
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let port = url.port_or_known_default().unwrap_or(if https { 443 } else { 80 });
            if url.path() != "/" || url.query().is_some() {
                return Err(RuntimeError::Invalid(format!(
                    "{at}: url must not have a path or query (got {:?})",
                    e.url
                )));
            }
            let credentials = match (&e.username, &e.password) {
                (_, None) => None,
                (user, Some(password)) => Some(Credentials {
                    username: user.clone().unwrap_or_else(|| "kasm_user".to_owned()),
                    password: password.clone(),
                }),
            };
            desktops.push(RunningDesktop {
                id: e.id.clone(),
                name: e.name.clone().unwrap_or_else(|| e.id.clone()),
                endpoint: Endpoint {
                    https,
                    host,
                    port,
                    verify_tls: e.verify_tls,
                },
                credentials,
                audience: Audience {
                    users: e.users.iter().map(|u| u.to_lowercase()).collect(),
                    groups: e.groups.clone(),
                },
            });
        }
        Ok(Self { desktops })
    }
}

/// Desktop ids appear in URLs and container names; keep them boring.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.'))
        && !id.starts_with('.')
}

#[async_trait]
impl ContainerRuntime for StaticRuntime {
    fn kind(&self) -> &'static str {
        "static"
    }

    async fn ping(&self) -> Result<(), RuntimeError> {
        Ok(())
    }

    async fn running(&self) -> Result<Vec<RunningDesktop>, RuntimeError> {
        Ok(self.desktops.clone())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn entry(id: &str, url: &str) -> StaticDesktop {
        StaticDesktop {
            id: id.into(),
            name: None,
            url: url.into(),
            username: None,
            password: Some(SecretString::from("pw")),
            verify_tls: false,
            users: vec!["Alice".into()],
            groups: vec![],
        }
    }

    #[test]
    fn parses_a_lab_machine() {
        let rt = StaticRuntime::new(&[entry("lab-1", "https://127.0.0.1:16901")]).unwrap();
        let d = &rt.desktops[0];
        assert_eq!(
            (d.endpoint.host.as_str(), d.endpoint.port, d.endpoint.https),
            ("127.0.0.1", 16901, true)
        );
        assert_eq!(d.credentials.as_ref().unwrap().username, "kasm_user");
        assert_eq!(d.audience.users, ["alice"]);
    }

    #[test]
    fn bad_entries_name_the_problem() {
        for (e, needle) in [
            (entry("Lab 1", "https://x"), "id must be"),
            (entry("lab", "ftp://x"), "scheme"),
            (entry("lab", "not a url"), "url"),
            (entry("lab", "https://x/sub"), "path"),
        ] {
            let err = StaticRuntime::new(&[e]).err().unwrap().to_string();
            assert!(err.contains(needle), "{err}");
        }
        let twice = StaticRuntime::new(&[entry("a", "https://x"), entry("a", "https://y")])
            .err()
            .unwrap();
        assert!(twice.to_string().contains("twice"));
    }
}
