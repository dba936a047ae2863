//! A real OpenID Connect provider that behaves like an IServ server, for sign-in tests.
//!
//! It speaks plain HTTP on `127.0.0.1` and is as strict as a careful real provider: the
//! authorization code flow only, PKCE S256, `state` and `nonce` required, single-use codes bound
//! to client, redirect URI, nonce, challenge and user, RS256 ID tokens with a `kid`, JWKS with
//! the current and the previous key, and RFC 6749 error answers. Tests steer it with
//! [`OidcProvider::set_user`], [`OidcProvider::set_fault`], [`OidcProvider::rotate_keys`] and
//! [`OidcProvider::set_available`], and read what clients sent with the `*_requests` methods.
//!
//! The two URL layouts of IServ installations are both served ([`Layout`]); discovery can be
//! switched off to test a client's fallback to configured endpoints.
//!
//! ```no_run
//! # async fn example() -> std::io::Result<()> {
//! use testkit::oidc::{Fault, Layout, OidcProvider, ProviderConfig, TestUser};
//! let iserv = OidcProvider::start(ProviderConfig::new(Layout::Auth)).await?;
//! // Point the client at iserv.issuer() with client "portal" / "portal-secret".
//! iserv.set_user(TestUser::teacher("tom").groups_as_object().prefixed());
//! iserv.set_fault(Fault::WrongNonce); // the next ID token carries another nonce
//! # Ok(()) }
//! ```
//!
//! Until [`OidcProvider::set_user`] is called, `TestUser::student("anna")` signs in. A fault
//! stays until it is set back to [`Fault::None`].

mod authorize;
mod discovery;
mod keys;
mod server;
mod state;
mod token;
mod user;
mod userinfo;

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use keys::KeyError;
pub use user::TestUser;

use state::Shared;

/// Which of IServ's two URL layouts the provider serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Older installations: `/iserv/oauth/v2/auth`, `/iserv/oauth/v2/token`,
    /// `/iserv/public/oauth/userinfo`, `/iserv/public/jwk`; scopes `groups roles uuid`.
    OauthV2,
    /// Newer installations: `/iserv/auth/auth`, `/iserv/auth/public/token`,
    /// `/iserv/auth/userinfo`, `/iserv/auth/public/jwk`; scopes `iserv:groups iserv:roles iserv:uuid`.
    Auth,
}

/// Paths of the four endpoints, relative to the issuer.
struct Paths {
    authorize: &'static str,
    token: &'static str,
    userinfo: &'static str,
    jwks: &'static str,
}

impl Layout {
    fn paths(self) -> Paths {
        match self {
            Layout::OauthV2 => Paths {
                authorize: "/iserv/oauth/v2/auth",
                token: "/iserv/oauth/v2/token",
                userinfo: "/iserv/public/oauth/userinfo",
                jwks: "/iserv/public/jwk",
            },
            Layout::Auth => Paths {
                authorize: "/iserv/auth/auth",
                token: "/iserv/auth/public/token",
                userinfo: "/iserv/auth/userinfo",
                jwks: "/iserv/auth/public/jwk",
            },
        }
    }

    /// The scopes an installation of this layout offers.
    pub fn default_scopes(self) -> Vec<String> {
        let names: &[&str] = match self {
            Layout::OauthV2 => &["openid", "profile", "email", "groups", "roles", "uuid"],
            Layout::Auth => &[
                "openid",
                "profile",
                "email",
                "iserv:groups",
                "iserv:roles",
                "iserv:uuid",
            ],
        };
        names.iter().map(|s| (*s).to_owned()).collect()
    }
}

/// Which client authentication the token endpoint accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_secret_post`: `client_id` and `client_secret` as form fields.
    Post,
    /// `client_secret_basic`: HTTP Basic with the form-urlencoded id and secret (RFC 6749 2.3.1).
    Basic,
    /// Either of the two (but never both in one request).
    Both,
}

impl ClientAuth {
    /// The discovery names of the accepted methods.
    fn discovery_names(self) -> Vec<&'static str> {
        match self {
            ClientAuth::Post => vec!["client_secret_post"],
            ClientAuth::Basic => vec!["client_secret_basic"],
            ClientAuth::Both => vec!["client_secret_basic", "client_secret_post"],
        }
    }
}

/// How the provider is set up; [`ProviderConfig::new`] gives an IServ-like default.
#[derive(Clone, Debug)]
pub struct ProviderConfig {
    /// The URL layout.
    pub layout: Layout,
    /// Serve `/.well-known/openid-configuration` (otherwise it answers 404).
    pub discovery: bool,
    /// The one registered client.
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
    /// Accepted token-endpoint client authentication.
    pub client_auth: ClientAuth,
    /// Announced in discovery; the authorize endpoint rejects any other scope (`invalid_scope`).
    pub scopes_supported: Vec<String>,
    /// Registered redirect URIs, compared exactly; empty: any absolute http(s) URL is accepted.
    pub redirect_uris: Vec<String>,
    /// `id_token_signing_alg_values_supported` in discovery (default `RS256`, IServ's). Only
    /// announced: what the tokens are signed with follows [`Fault`].
    pub id_token_algs_supported: Vec<String>,
}

impl ProviderConfig {
    /// Discovery on, client `portal` / `portal-secret`, Basic and post both accepted, the
    /// layout's scopes.
    pub fn new(layout: Layout) -> Self {
        ProviderConfig {
            layout,
            discovery: true,
            client_id: "portal".to_owned(),
            client_secret: "portal-secret".to_owned(),
            client_auth: ClientAuth::Both,
            scopes_supported: layout.default_scopes(),
            redirect_uris: Vec::new(),
            id_token_algs_supported: vec!["RS256".to_owned()],
        }
    }
}

/// Full URLs of the provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    /// `http://127.0.0.1:PORT`, no trailing slash; also the `iss` of every ID token.
    pub issuer: String,
    pub authorize: String,
    pub token: String,
    pub userinfo: String,
    pub jwks: String,
}

/// One thing going wrong, for testing that a client notices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    /// Everything correct.
    #[default]
    None,
    /// The ID token is signed by a key that is not in the JWKS, under the current key's `kid`.
    BadSignature,
    /// The ID token's `aud` is another client.
    WrongAudience,
    /// The ID token's `iss` is another server.
    WrongIssuer,
    /// The ID token expired 10 minutes ago.
    Expired,
    /// The ID token's `nonce` is not the one from the authorization request.
    WrongNonce,
    /// The ID token's `kid` is in no JWKS.
    UnknownKid,
    /// The user declines: the authorize endpoint redirects with `error=access_denied`.
    DenyConsent,
    /// The token endpoint answers 500.
    ServerError,
    /// The ID token is signed with HS256, keyed with the client secret (what a provider, or
    /// anyone who knows the secret, could send if the client accepted shared-secret tokens).
    Hs256,
    /// The ID token is unsigned (`alg` `none`, empty signature).
    Unsigned,
}

/// One request to the token endpoint, as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    /// `"basic"`, `"post"` (a `client_secret` form field) or `"none"`.
    pub auth_method: String,
    /// The form fields as sent (including any `client_secret`: this is a test double).
    pub form: BTreeMap<String, String>,
}

/// A running provider; dropping it closes the port and every open connection.
pub struct OidcProvider {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl OidcProvider {
    /// Starts on `127.0.0.1` with an OS-chosen port.
    pub async fn start(cfg: ProviderConfig) -> io::Result<OidcProvider> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        Self::start_on(listener, cfg).await
    }

    /// Starts on an already bound listener, so a test can hand out the URL before the provider
    /// answers ("IServ comes up later").
    pub async fn start_on(listener: TcpListener, cfg: ProviderConfig) -> io::Result<OidcProvider> {
        let addr = listener.local_addr()?;
        let issuer = format!("http://{addr}");
        let shared = Arc::new(Shared::new(cfg, issuer).map_err(io::Error::other)?);
        let task = tokio::spawn(server::serve(listener, server::router(shared.clone())));
        Ok(OidcProvider { addr, shared, task })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn issuer(&self) -> String {
        self.shared.issuer.clone()
    }

    /// Full URLs of all endpoints.
    pub fn endpoints(&self) -> Endpoints {
        self.shared.endpoints()
    }

    /// The configuration the provider runs with.
    pub fn config(&self) -> &ProviderConfig {
        &self.shared.cfg
    }

    /// Who "signs in" at the authorize endpoint from now on.
    pub fn set_user(&self, user: TestUser) {
        self.shared.lock().user = user;
    }

    /// Sets the fault for all following requests ([`Fault::None`] to heal).
    pub fn set_fault(&self, fault: Fault) {
        self.shared.lock().fault = fault;
    }

    /// A new RSA key with a new `kid` signs from now on; the JWKS lists the new and the
    /// previous key (older ones drop out).
    pub fn rotate_keys(&self) {
        self.shared.lock().keys.rotate();
    }

    /// The `kid` currently signing ID tokens.
    pub fn current_kid(&self) -> String {
        self.shared.lock().keys.current_kid().to_owned()
    }

    /// `false`: every endpoint answers 503 (IServ down for maintenance).
    pub fn set_available(&self, up: bool) {
        self.shared.lock().available = up;
    }

    /// Makes every authorization code issued so far expired, as if its 60 s had passed.
    pub fn expire_codes(&self) {
        self.shared.lock().expire_codes();
    }

    /// Revokes every access token issued so far (userinfo then answers `invalid_token`).
    pub fn revoke_access_tokens(&self) {
        self.shared.lock().access_tokens.clear();
    }

    /// Query parameters of every authorize request received, in order.
    pub fn authorize_requests(&self) -> Vec<BTreeMap<String, String>> {
        self.shared.lock().authorize_log.clone()
    }

    /// Every token request received, in order.
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.shared.lock().token_log.clone()
    }

    /// How many userinfo requests arrived (answered or rejected).
    pub fn userinfo_requests(&self) -> usize {
        self.shared.lock().userinfo_count
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        // The serve task owns the listener and a JoinSet of connections: aborting it closes all.
        self.task.abort();
    }
}
