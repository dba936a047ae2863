//! The `[oidc]` section: how the portal finds IServ and whom it makes teacher or admin.
//!
//! Seed names (`OAUTH_*`, `ROLE_ADMIN`, `ROLE_TEACHER`) map onto these keys in `config.rs`.

use openidconnect::core::CoreJwsSigningAlgorithm;
use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize};
use url::Url;

/// How the portal authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMethod {
    /// `client_id` and `client_secret` as form fields (what the seed did; IServ's default).
    #[default]
    ClientSecretPost,
    /// HTTP Basic with id and secret.
    ClientSecretBasic,
}

/// Sign-in with IServ. Configured when `client_id` is set together with `issuer` (discovery)
/// or the explicit endpoint URLs.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OidcConfig {
    /// `https://iserv.school.example`: discovery at `{issuer}/.well-known/openid-configuration`.
    /// With explicit URLs it is still the expected `iss` of ID tokens (default: the origin of
    /// `authorize_url`).
    pub issuer: Option<Url>,
    /// The client id IServ shows after registering the portal (`OAUTH_CLIENT_ID`).
    pub client_id: Option<String>,
    /// Its secret (`OAUTH_CLIENT_SECRET`).
    #[serde(skip_serializing)]
    pub client_secret: Option<SecretString>,
    /// Explicit endpoints, for installations without discovery (`OAUTH_AUTHORIZE_URL`, …).
    /// When `authorize_url` is set, discovery is not used.
    pub authorize_url: Option<Url>,
    pub token_url: Option<Url>,
    pub userinfo_url: Option<Url>,
    pub jwks_uri: Option<Url>,
    /// Where IServ sends the browser back; default `{public_url}auth/callback`
    /// (`OAUTH_REDIRECT_URI`). Must be on the portal's public origin.
    pub redirect_uri: Option<Url>,
    /// `client_secret_post` (default) or `client_secret_basic`.
    pub client_auth: ClientAuthMethod,
    /// Scopes to ask for; empty: `openid profile email` plus whichever of `groups roles uuid`
    /// (plain or `iserv:`-prefixed) the provider offers in discovery.
    #[serde(deserialize_with = "string_or_list")]
    pub scopes: Vec<String>,
    /// Members of these IServ groups (group accounts, e.g. `admins`) are portal admins
    /// (`ROLE_ADMIN`).
    #[serde(deserialize_with = "string_or_list")]
    pub admin_groups: Vec<String>,
    /// Members of these groups are teachers (`ROLE_TEACHER`).
    #[serde(deserialize_with = "string_or_list")]
    pub teacher_groups: Vec<String>,
    /// IServ role ids that make an admin (default `ROLE_ADMIN`).
    #[serde(deserialize_with = "string_or_list")]
    pub admin_roles: Vec<String>,
    /// IServ role ids that make a teacher (default `ROLE_TEACHER`).
    #[serde(deserialize_with = "string_or_list")]
    pub teacher_roles: Vec<String>,
    /// When not empty, only members of these groups may use the portal at all.
    #[serde(deserialize_with = "string_or_list")]
    pub allowed_groups: Vec<String>,
    /// Signature algorithms accepted on ID tokens (default `RS256`, IServ's). Whatever discovery
    /// lists does not widen this. Shared-secret (`HS256`, …) and unsigned (`none`) tokens are
    /// refused even here: with them anyone who knows the client secret could forge a sign-in.
    #[serde(deserialize_with = "string_or_list")]
    pub id_token_algorithms: Vec<String>,
    /// Timeout of every request to IServ.
    pub timeout_secs: u64,
}

/// The ID-token algorithms that may be configured: signatures by the provider's private key.
const ASYMMETRIC_ALGORITHMS: [(&str, CoreJwsSigningAlgorithm); 10] = [
    ("RS256", CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256),
    ("RS384", CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384),
    ("RS512", CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512),
    ("PS256", CoreJwsSigningAlgorithm::RsaSsaPssSha256),
    ("PS384", CoreJwsSigningAlgorithm::RsaSsaPssSha384),
    ("PS512", CoreJwsSigningAlgorithm::RsaSsaPssSha512),
    ("ES256", CoreJwsSigningAlgorithm::EcdsaP256Sha256),
    ("ES384", CoreJwsSigningAlgorithm::EcdsaP384Sha384),
    ("ES512", CoreJwsSigningAlgorithm::EcdsaP521Sha512),
    ("EdDSA", CoreJwsSigningAlgorithm::EdDsa),
];

impl Default for OidcConfig {
    fn default() -> Self {
        Self {
            issuer: None,
            client_id: None,
            client_secret: None,
            authorize_url: None,
            token_url: None,
            userinfo_url: None,
            jwks_uri: None,
            redirect_uri: None,
            client_auth: ClientAuthMethod::default(),
            scopes: Vec::new(),
            admin_groups: Vec::new(),
            teacher_groups: Vec::new(),
            admin_roles: vec!["ROLE_ADMIN".into()],
            teacher_roles: vec!["ROLE_TEACHER".into()],
            allowed_groups: Vec::new(),
            id_token_algorithms: vec!["RS256".into()],
            timeout_secs: 10,
        }
    }
}

/// Seed variables hold one name or a comma-separated list (`ROLE_TEACHER=lehrer`); TOML may
/// use a real list.
fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let names = match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s.split([',', ' ']).map(str::to_owned).collect(),
        OneOrMany::Many(v) => v,
    };
    Ok(names
        .into_iter()
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .collect())
}

impl OidcConfig {
    /// Sign-in with IServ is offered.
    pub fn is_configured(&self) -> bool {
        self.client_id.as_deref().is_some_and(|id| !id.trim().is_empty())
    }

    /// Explicit endpoints instead of discovery.
    pub fn uses_explicit_urls(&self) -> bool {
        self.authorize_url.is_some()
    }

    /// The redirect URI registered in IServ.
    pub fn redirect_uri(&self, public_url: &Url) -> Url {
        self.redirect_uri
            .clone()
            .unwrap_or_else(|| public_url.join("auth/callback").unwrap_or_else(|_| public_url.clone()))
    }

    /// The `iss` every ID token must carry.
    pub fn expected_issuer(&self) -> Option<String> {
        match (&self.issuer, &self.authorize_url) {
            (Some(issuer), _) => Some(issuer.as_str().trim_end_matches('/').to_owned()),
            (None, Some(auth)) => Some(auth.origin().ascii_serialization()),
            (None, None) => None,
        }
    }

    /// The configured ID-token algorithms; the error says which one is refused and why.
    pub fn id_token_algorithms(&self) -> Result<Vec<CoreJwsSigningAlgorithm>, String> {
        if self.id_token_algorithms.is_empty() {
            return Err("must name at least one algorithm, e.g. [\"RS256\"]".into());
        }
        self.id_token_algorithms
            .iter()
            .map(|name| {
                if let Some((_, alg)) = ASYMMETRIC_ALGORITHMS.iter().find(|(n, _)| n == name) {
                    Ok(alg.clone())
                } else if name.to_ascii_uppercase().starts_with("HS") || name.eq_ignore_ascii_case("none") {
                    Err(format!(
                        "{name:?} is refused: with a shared-secret or unsigned ID token anyone who knows the \
                         client secret (or nobody at all) could forge a sign-in; use IServ's RS256"
                    ))
                } else {
                    let known: Vec<&str> = ASYMMETRIC_ALGORITHMS.iter().map(|(n, _)| *n).collect();
                    Err(format!("unknown algorithm {name:?}; known: {}", known.join(", ")))
                }
            })
            .collect()
    }

    /// Checks the section; the error names the setting.
    pub fn validate(&self, public_url: &Url) -> Result<(), (&'static str, String)> {
        // Checked even when sign-in is off, so a wrong value is noticed before it matters.
        self.id_token_algorithms()
            .map_err(|e| ("oidc.id_token_algorithms", e))?;
        if !self.is_configured() {
            return Ok(());
        }
        if self.issuer.is_none() && self.authorize_url.is_none() {
            return Err((
                "oidc.issuer",
                "is needed for IServ sign-in (e.g. https://iserv.school.example), or set \
                 oidc.authorize_url, oidc.token_url and oidc.jwks_uri"
                    .into(),
            ));
        }
        if self.uses_explicit_urls() {
            for (setting, value) in [("oidc.token_url", &self.token_url), ("oidc.jwks_uri", &self.jwks_uri)] {
                if value.is_none() {
                    return Err((setting, "is needed when oidc.authorize_url is set".into()));
                }
            }
        }
        for (setting, value) in [
            ("oidc.issuer", &self.issuer),
            ("oidc.authorize_url", &self.authorize_url),
            ("oidc.token_url", &self.token_url),
            ("oidc.userinfo_url", &self.userinfo_url),
            ("oidc.jwks_uri", &self.jwks_uri),
            ("oidc.redirect_uri", &self.redirect_uri),
        ] {
            if let Some(url) = value
                && !matches!(url.scheme(), "http" | "https")
            {
                return Err((setting, format!("must be an http(s) URL, got {url}")));
            }
        }
        let redirect = self.redirect_uri(public_url);
        if redirect.origin() != public_url.origin() {
            return Err((
                "oidc.redirect_uri",
                format!(
                    "must be on the portal's public origin {} (the sign-in cookie is only sent there), got {redirect}",
                    public_url.origin().ascii_serialization()
                ),
            ));
        }
        // Any path of the portal may be the callback: a school moving over from the Flask
        // version keeps the redirect URI registered in IServ (`/authorize`). The portal checks
        // that no page of its own lives there (`Config::validate`).
        let path = redirect.path();
        if path == "/" || path.contains(['{', '}', '*']) || path.contains("//") || redirect.query().is_some() {
            return Err((
                "oidc.redirect_uri",
                format!(
                    "must be a path of its own on the portal, without query, like {}{} (the URL \
                     registered in IServ), got {redirect}",
                    public_url.origin().ascii_serialization(),
                    super::CALLBACK_PATH
                ),
            ));
        }
        if self.client_secret.is_none() {
            return Err(("oidc.client_secret", "is needed with oidc.client_id".into()));
        }
        if !(1..=120).contains(&self.timeout_secs) {
            return Err(("oidc.timeout_secs", "must be between 1 and 120".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn seed_values_may_be_comma_separated() {
        let c: OidcConfig = serde_json::from_value(serde_json::json!({
            "admin_groups": "admins, it",
            "teacher_groups": ["lehrer"],
        }))
        .unwrap();
        assert_eq!(c.admin_groups, ["admins", "it"]);
        assert_eq!(c.teacher_groups, ["lehrer"]);
        assert_eq!(c.teacher_roles, ["ROLE_TEACHER"]);
    }

    #[test]
    fn only_asymmetric_id_token_algorithms_may_be_configured() {
        let with = |algs: &[&str]| OidcConfig {
            id_token_algorithms: algs.iter().map(|a| (*a).to_owned()).collect(),
            ..OidcConfig::default()
        };
        let public: Url = "https://desk.example/".parse().unwrap();
        assert_eq!(
            OidcConfig::default().id_token_algorithms().unwrap(),
            [CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256]
        );
        assert_eq!(with(&["RS256", "ES256"]).id_token_algorithms().unwrap().len(), 2);
        for bad in [&["RS256", "HS256"][..], &["none"], &["hs512"], &[]] {
            let (setting, message) = with(bad).validate(&public).unwrap_err();
            assert_eq!(setting, "oidc.id_token_algorithms", "{bad:?}");
            assert!(
                message.contains("refused") || message.contains("at least one"),
                "{message}"
            );
        }
        assert!(with(&["RS257"]).id_token_algorithms().unwrap_err().contains("unknown"));
    }

    #[test]
    fn issuer_defaults_to_the_authorize_origin() {
        let c = OidcConfig {
            authorize_url: Some("https://iserv.example/iserv/oauth/v2/auth".parse().unwrap()),
            ..OidcConfig::default()
        };
        assert_eq!(c.expected_issuer().as_deref(), Some("https://iserv.example"));
    }

    #[test]
    fn redirect_must_be_a_path_of_its_own_on_our_origin() {
        let public: Url = "https://desk.example/".parse().unwrap();
        let mut c = OidcConfig {
            client_id: Some("portal".into()),
            client_secret: Some(SecretString::from("s")),
            issuer: Some("https://iserv.example".parse().unwrap()),
            ..OidcConfig::default()
        };
        assert!(c.validate(&public).is_ok());
        assert_eq!(c.redirect_uri(&public).as_str(), "https://desk.example/auth/callback");
        c.redirect_uri = Some("https://evil.example/auth/callback".parse().unwrap());
        assert_eq!(c.validate(&public).unwrap_err().0, "oidc.redirect_uri");
        // The Flask version's callbacks stay valid.
        for flask in [
            "https://desk.example/authorize",
            "https://desk.example/api/auth/authorize",
        ] {
            c.redirect_uri = Some(flask.parse().unwrap());
            assert!(c.validate(&public).is_ok(), "{flask}");
        }
        for bad in [
            "https://desk.example/",
            "https://desk.example/a?b=c",
            "https://desk.example//x",
        ] {
            c.redirect_uri = Some(bad.parse().unwrap());
            assert_eq!(c.validate(&public).unwrap_err().0, "oidc.redirect_uri", "{bad}");
        }
    }
}
