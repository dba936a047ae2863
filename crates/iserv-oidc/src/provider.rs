//! One IServ installation as the portal sees it: endpoints (from discovery or configuration),
//! signing keys with rotation, and the three steps of a sign-in.

use std::time::{Duration, Instant};

use base64::Engine as _;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AuthType, AuthUrl, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    EmptyAdditionalProviderMetadata, IssuerUrl, JsonWebKeySet, JsonWebKeySetUrl, Nonce, OAuth2TokenResponse as _,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, ResponseTypes, Scope,
    SignatureVerificationError, TokenResponse as _, TokenUrl,
};
use secrecy::ExposeSecret as _;
use serde_json::{Map, Value};
use tokio::sync::RwLock;
use url::Url;

use super::http_client::HttpClient;
use super::{ClientAuthMethod, OidcConfig, OidcError, TokenProblem};

/// Forced key refreshes (a token signed with a `kid` we do not know) at most this often, so a
/// misbehaving provider cannot make the portal fetch keys on every sign-in.
const MIN_KEY_REFRESH: Duration = Duration::from_secs(10);

/// The client of one sign-in, as [`Provider::client`] builds it.
type Client = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// The signing keys and when they were last fetched because of an unknown `kid`.
struct Keys {
    set: CoreJsonWebKeySet,
    last_forced: Option<Instant>,
}

/// A ready-to-use provider.
pub(crate) struct Provider {
    metadata: CoreProviderMetadata,
    keys: RwLock<Keys>,
    client_id: ClientId,
    client_secret: ClientSecret,
    redirect: RedirectUrl,
    auth_type: AuthType,
    scopes: Vec<String>,
    /// ID-token algorithms accepted, from the configuration; discovery does not widen them.
    algorithms: Vec<CoreJwsSigningAlgorithm>,
    http: HttpClient,
}

/// The first step: where to send the browser, and what to remember until it comes back.
pub(crate) struct Started {
    pub url: Url,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// Scopes asked for when none are configured: the basics, plus IServ's groups, roles and uuid
/// under whichever name (plain or `iserv:`) the provider offers. Without discovery the plain
/// names of older installations.
fn default_scopes(supported: Option<&[String]>) -> Vec<String> {
    let mut scopes: Vec<String> = ["openid", "profile", "email"].map(str::to_owned).to_vec();
    for extra in ["groups", "roles", "uuid"] {
        let prefixed = format!("iserv:{extra}");
        match supported {
            None => scopes.push(extra.to_owned()),
            Some(s) if s.contains(&prefixed) => scopes.push(prefixed),
            Some(s) if s.iter().any(|x| x == extra) => scopes.push(extra.to_owned()),
            Some(_) => {}
        }
    }
    if let Some(s) = supported {
        // Ask only for what is offered: IServ refuses unknown scopes (`invalid_scope`).
        scopes.retain(|x| x == "openid" || s.contains(x));
    }
    scopes
}

fn url_err(setting: &'static str) -> impl Fn(url::ParseError) -> OidcError {
    move |e| OidcError::Config(format!("{setting}: {e}"))
}

impl Provider {
    /// Discovers the provider (or takes the configured endpoints) and fetches its keys.
    pub(crate) async fn connect(cfg: &OidcConfig, redirect: &Url, http: HttpClient) -> Result<Provider, OidcError> {
        let issuer = cfg
            .expected_issuer()
            .ok_or_else(|| OidcError::Config("oidc.issuer is not set".into()))?;
        let issuer = IssuerUrl::new(issuer).map_err(url_err("oidc.issuer"))?;
        let metadata = match (&cfg.authorize_url, &cfg.token_url, &cfg.jwks_uri) {
            (Some(auth), Some(token), Some(jwks)) => {
                let mut m = CoreProviderMetadata::new(
                    issuer,
                    AuthUrl::from_url(auth.clone()),
                    JsonWebKeySetUrl::from_url(jwks.clone()),
                    vec![ResponseTypes::new(vec![CoreResponseType::Code])],
                    vec![CoreSubjectIdentifierType::Public],
                    vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256],
                    EmptyAdditionalProviderMetadata {},
                )
                .set_token_endpoint(Some(TokenUrl::from_url(token.clone())));
                if let Some(userinfo) = &cfg.userinfo_url {
                    m = m.set_userinfo_endpoint(Some(openidconnect::UserInfoUrl::from_url(userinfo.clone())));
                }
                let keys = JsonWebKeySet::fetch_async(m.jwks_uri(), &http)
                    .await
                    .map_err(|e| OidcError::Unreachable(e.to_string()))?;
                m.set_jwks(keys)
            }
            _ => CoreProviderMetadata::discover_async(issuer, &http)
                .await
                .map_err(|e| OidcError::Unreachable(e.to_string()))?,
        };
        if metadata.token_endpoint().is_none() {
            return Err(OidcError::Config("the provider names no token endpoint".into()));
        }
        let supported: Option<Vec<String>> = metadata
            .scopes_supported()
            .map(|s| s.iter().map(|x| x.as_str().to_owned()).collect());
        let scopes = if cfg.scopes.is_empty() {
            default_scopes(supported.as_deref())
        } else {
            cfg.scopes.clone()
        };
        let secret = cfg
            .client_secret
            .as_ref()
            .map(|s| s.expose_secret().to_owned())
            .unwrap_or_default();
        Ok(Provider {
            keys: RwLock::new(Keys {
                set: metadata.jwks().clone(),
                last_forced: None,
            }),
            metadata,
            client_id: ClientId::new(cfg.client_id.clone().unwrap_or_default()),
            client_secret: ClientSecret::new(secret),
            redirect: RedirectUrl::from_url(redirect.clone()),
            auth_type: match cfg.client_auth {
                ClientAuthMethod::ClientSecretPost => AuthType::RequestBody,
                ClientAuthMethod::ClientSecretBasic => AuthType::BasicAuth,
            },
            scopes,
            algorithms: cfg.id_token_algorithms().map_err(OidcError::Config)?,
            http,
        })
    }

    /// The scopes sign-ins ask for.
    pub(crate) fn scopes(&self) -> &[String] {
        &self.scopes
    }

    fn client(&self, keys: CoreJsonWebKeySet) -> Client {
        CoreClient::from_provider_metadata(
            self.metadata.clone().set_jwks(keys),
            self.client_id.clone(),
            Some(self.client_secret.clone()),
        )
        .set_redirect_uri(self.redirect.clone())
        .set_auth_type(self.auth_type.clone())
    }

    /// The ID-token verifier of `client`, limited to the configured algorithms: the client's
    /// own accepts whatever discovery lists, HS256 (checked with the client secret) included.
    fn verifier<'c>(&self, client: &'c Client) -> CoreIdTokenVerifier<'c> {
        client.id_token_verifier().set_allowed_algs(self.algorithms.clone())
    }

    /// Step 1: the authorization URL with a fresh state, nonce and PKCE S256 challenge.
    pub(crate) async fn start(&self) -> Started {
        let client = self.client(CoreJsonWebKeySet::new(Vec::new()));
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        // The library adds `openid` itself.
        for scope in self.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        Started {
            url,
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        }
    }

    /// Steps 2 and 3: exchanges the code, verifies the ID token, reads userinfo. Returns the
    /// claims of both, userinfo winning where both have a claim.
    pub(crate) async fn finish(
        &self,
        code: &str,
        nonce: &str,
        pkce_verifier: &str,
    ) -> Result<Map<String, Value>, OidcError> {
        let client = self.client(self.keys.read().await.set.clone());
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| OidcError::Config(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(token_error)?;
        let id_token = token.id_token().ok_or(OidcError::Token(TokenProblem::Missing))?;
        let nonce = Nonce::new(nonce.to_owned());
        let verified = match id_token.claims(&self.verifier(&client), &nonce) {
            Err(ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey)) => {
                // The provider may have rotated its keys since we fetched them.
                let client = self.client(self.refresh_keys().await?);
                id_token
                    .claims(&self.verifier(&client), &nonce)
                    .map(|c| c.subject().as_str().to_owned())
            }
            other => other.map(|c| c.subject().as_str().to_owned()),
        };
        let subject = verified.map_err(|e| OidcError::Token(TokenProblem::from(&e)))?;
        // The signature covers exactly this text, so its claims can be read as JSON.
        let mut claims = jwt_claims(&id_token.to_string())?;
        if let Some(userinfo_url) = self.metadata.userinfo_endpoint() {
            let info = self.userinfo(userinfo_url.url(), token.access_token().secret()).await?;
            if info.get("sub").and_then(Value::as_str) != Some(subject.as_str()) {
                return Err(OidcError::Userinfo("its `sub` is not the ID token's".into()));
            }
            claims.extend(info);
        }
        Ok(claims)
    }

    /// Fetches the keys again, at most once per [`MIN_KEY_REFRESH`].
    async fn refresh_keys(&self) -> Result<CoreJsonWebKeySet, OidcError> {
        let mut keys = self.keys.write().await;
        if keys.last_forced.is_some_and(|t| t.elapsed() < MIN_KEY_REFRESH) {
            return Ok(keys.set.clone());
        }
        keys.last_forced = Some(Instant::now());
        let fresh = JsonWebKeySet::fetch_async(self.metadata.jwks_uri(), &self.http)
            .await
            .map_err(|e| OidcError::Unreachable(e.to_string()))?;
        tracing::info!(
            keys = fresh.keys().len(),
            "fetched IServ's signing keys again (unknown key id)"
        );
        keys.set = fresh;
        Ok(keys.set.clone())
    }

    async fn userinfo(&self, url: &Url, access_token: &str) -> Result<Map<String, Value>, OidcError> {
        let request = http::Request::get(url.as_str())
            .header(http::header::AUTHORIZATION, format!("Bearer {access_token}"))
            .header(http::header::ACCEPT, "application/json")
            .body(Vec::new())
            .map_err(|e| OidcError::Userinfo(e.to_string()))?;
        let response = self
            .http
            .send(request)
            .await
            .map_err(|e| OidcError::Userinfo(e.to_string()))?;
        if !response.status().is_success() {
            return Err(OidcError::Userinfo(format!("HTTP {}", response.status())));
        }
        serde_json::from_slice(response.body())
            .map_err(|_| OidcError::Userinfo("the answer is not a JSON object".into()))
    }
}

/// The payload of a compact JWT as a JSON object.
fn jwt_claims(jwt: &str) -> Result<Map<String, Value>, OidcError> {
    let payload = jwt.split('.').nth(1).ok_or(OidcError::Token(TokenProblem::Malformed))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| OidcError::Token(TokenProblem::Malformed))?;
    serde_json::from_slice(&bytes).map_err(|_| OidcError::Token(TokenProblem::Malformed))
}

/// Token endpoint failures, without anything the answer may have carried.
fn token_error<RE: std::error::Error + 'static>(
    e: RequestTokenError<RE, openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>>,
) -> OidcError {
    match e {
        RequestTokenError::ServerResponse(r) => OidcError::TokenRefused(r.error().as_ref().to_owned()),
        RequestTokenError::Request(e) => OidcError::Unreachable(e.to_string()),
        RequestTokenError::Parse(e, _body) => OidcError::TokenEndpoint(format!("unreadable answer at {}", e.path())),
        RequestTokenError::Other(message) => OidcError::TokenEndpoint(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_scopes_follow_discovery() {
        let old: Vec<String> = ["openid", "profile", "email", "groups", "roles", "uuid"]
            .map(str::to_owned)
            .to_vec();
        assert_eq!(default_scopes(Some(&old)), old);
        let new: Vec<String> = [
            "openid",
            "profile",
            "email",
            "iserv:groups",
            "iserv:roles",
            "iserv:uuid",
        ]
        .map(str::to_owned)
        .to_vec();
        assert_eq!(default_scopes(Some(&new)), new);
        assert_eq!(default_scopes(None), old);
        let minimal = vec!["openid".to_owned()];
        assert_eq!(default_scopes(Some(&minimal)), minimal);
    }
}
