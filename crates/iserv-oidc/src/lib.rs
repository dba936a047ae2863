//! Sign-in with IServ: OpenID Connect authorization code flow with PKCE, state and nonce.
//!
//! - [`config`]: the `[oidc]` section.
//! - [`provider`]: discovery or configured endpoints, keys with rotation, the token exchange,
//!   ID token verification and userinfo.
//! - [`claims`]: IServ's claim shapes → login name, stable id, groups, roles, portal role.
//! - [`pending`]: sign-ins on their way through IServ.
//!
//! The portal's web layer owns the two routes (`/auth/login`, the callback) and calls
//! [`Oidc::begin`] and [`Oidc::complete`]; this crate knows no web framework.
//!
//! IServ may be down when the portal starts: the provider is set up lazily, on first use and in
//! the background, with a growing pause between failed attempts, and sign-in answers 503 with
//! a clear page until it works.

mod claims;
mod config;
mod http_client;
mod pending;
mod provider;

use std::sync::Arc;
use std::time::{Duration, Instant};

use openidconnect::ClaimsVerificationError;
use tokio::sync::Mutex;
use url::Url;

pub use claims::{ClaimsError, Identity};
pub use config::{ClientAuthMethod, OidcConfig};
pub use pending::PENDING_TTL;
use pending::TakeError;
use portal_store::{PendingSignIn, Store};
use provider::Provider;

/// The path IServ sends the browser back to.
pub const CALLBACK_PATH: &str = "/auth/callback";

/// What is wrong with an ID token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    Missing,
    Malformed,
    Signature,
    Audience,
    Issuer,
    Expired,
    Nonce,
    Other,
}

impl From<&ClaimsVerificationError> for TokenProblem {
    fn from(e: &ClaimsVerificationError) -> Self {
        match e {
            ClaimsVerificationError::SignatureVerification(_) => TokenProblem::Signature,
            ClaimsVerificationError::InvalidAudience(_) => TokenProblem::Audience,
            ClaimsVerificationError::InvalidIssuer(_) => TokenProblem::Issuer,
            ClaimsVerificationError::Expired(_) => TokenProblem::Expired,
            ClaimsVerificationError::InvalidNonce(_) => TokenProblem::Nonce,
            _ => TokenProblem::Other,
        }
    }
}

impl TokenProblem {
    fn describe(self) -> &'static str {
        match self {
            TokenProblem::Missing => "IServ sent no ID token (is the scope `openid` allowed?)",
            TokenProblem::Malformed => "the ID token is malformed",
            TokenProblem::Signature => "the ID token's signature does not match IServ's keys",
            TokenProblem::Audience => "the ID token was issued for another application (aud)",
            TokenProblem::Issuer => "the ID token comes from another server (iss)",
            TokenProblem::Expired => "the ID token has expired (are the clocks of IServ and the portal right?)",
            TokenProblem::Nonce => "the ID token belongs to another sign-in (nonce)",
            TokenProblem::Other => "the ID token is invalid",
        }
    }
}

/// Everything that can stop a sign-in with IServ. Messages never contain codes or tokens.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("IServ sign-in is not configured")]
    NotConfigured,
    #[error("sign-in with a password is switched off (local_login = false)")]
    LocalLoginOff,
    #[error("IServ sign-in is misconfigured: {0}")]
    Config(String),
    #[error("IServ cannot be reached: {0}")]
    Unreachable(String),
    #[error("the sign-in is unknown, expired or already used (state)")]
    StateUnknown,
    #[error("the sign-in was started in another browser (state cookie)")]
    OtherBrowser,
    /// The portal's database, which holds sign-ins under way, did not answer.
    #[error("the portal's database did not answer: {0}")]
    Store(String),
    #[error("the user declined at IServ")]
    Denied,
    #[error("IServ reported an error: {0}")]
    ProviderError(String),
    #[error("IServ refused the code: {0}")]
    TokenRefused(String),
    #[error("IServ's token endpoint failed: {0}")]
    TokenEndpoint(String),
    #[error("{}", .0.describe())]
    Token(TokenProblem),
    #[error("IServ's userinfo failed: {0}")]
    Userinfo(String),
    #[error(transparent)]
    Claims(#[from] ClaimsError),
    #[error("the IServ account is in none of the groups allowed to use the portal")]
    NotAllowed,
    #[error("IServ's login name cannot be used here: {0}")]
    BadUsername(String),
    #[error("{0}")]
    UsernameTaken(String),
    /// The username is a local account with a password or an administrator's, which an IServ
    /// sign-in may take over only after an administrator allowed it.
    #[error("the local account {0:?} is linked to IServ only after an administrator allows it")]
    LinkNeedsAdmin(String),
    /// An administrator deleted the portal account of this IServ account; it signs in again
    /// only once restored (or, after the retention, as a new account).
    #[error("the account {0:?} was deleted by an administrator of the portal")]
    AccountDeleted(String),
}

impl OidcError {
    pub fn status(&self) -> ::http::StatusCode {
        use ::http::StatusCode as S;
        match self {
            OidcError::NotConfigured => S::NOT_FOUND,
            OidcError::LocalLoginOff | OidcError::Denied | OidcError::NotAllowed | OidcError::AccountDeleted(_) => {
                S::FORBIDDEN
            }
            OidcError::Config(_) => S::INTERNAL_SERVER_ERROR,
            OidcError::Unreachable(_) | OidcError::Store(_) => S::SERVICE_UNAVAILABLE,
            OidcError::StateUnknown | OidcError::OtherBrowser => S::BAD_REQUEST,
            OidcError::TokenRefused(e) if e == "invalid_grant" => S::BAD_REQUEST,
            OidcError::UsernameTaken(_) | OidcError::LinkNeedsAdmin(_) => S::CONFLICT,
            OidcError::ProviderError(_)
            | OidcError::TokenRefused(_)
            | OidcError::TokenEndpoint(_)
            | OidcError::Token(_)
            | OidcError::Userinfo(_)
            | OidcError::Claims(_)
            | OidcError::BadUsername(_) => S::BAD_GATEWAY,
        }
    }

    /// Stable code for the JSON API and tests, and the catalogue key for people.
    pub fn code_and_key(&self) -> (&'static str, &'static str) {
        match self {
            OidcError::NotConfigured => ("not_found", "err_not_found"),
            OidcError::LocalLoginOff => ("local_login_off", "err_local_login_off"),
            OidcError::Config(_) => ("oidc_config", "err_oidc_config"),
            OidcError::Unreachable(_) => ("oidc_unavailable", "err_oidc_unavailable"),
            OidcError::Store(_) => ("unavailable", "err_unavailable"),
            OidcError::StateUnknown | OidcError::OtherBrowser => ("oidc_state", "err_oidc_state"),
            OidcError::Denied => ("oidc_denied", "err_oidc_denied"),
            OidcError::TokenRefused(e) if e == "invalid_grant" => ("oidc_code_used", "err_oidc_code_used"),
            OidcError::ProviderError(_) | OidcError::TokenRefused(_) | OidcError::TokenEndpoint(_) => {
                ("oidc_provider_error", "err_oidc_provider_error")
            }
            OidcError::Token(TokenProblem::Expired) => ("oidc_token_expired", "err_oidc_token_expired"),
            OidcError::Token(TokenProblem::Nonce) => ("oidc_nonce", "err_oidc_state"),
            OidcError::Token(_) => ("oidc_token_invalid", "err_oidc_token_invalid"),
            OidcError::Userinfo(_) => ("oidc_userinfo", "err_oidc_provider_error"),
            OidcError::Claims(ClaimsError::MissingUsername) => ("oidc_no_username", "err_oidc_no_username"),
            OidcError::Claims(_) => ("oidc_token_invalid", "err_oidc_token_invalid"),
            OidcError::NotAllowed => ("oidc_not_allowed", "err_oidc_not_allowed"),
            OidcError::BadUsername(_) => ("oidc_bad_username", "err_oidc_bad_username"),
            OidcError::UsernameTaken(_) => ("oidc_username_taken", "err_oidc_username_taken"),
            OidcError::LinkNeedsAdmin(_) => ("oidc_link_needs_admin", "err_oidc_link_needs_admin"),
            OidcError::AccountDeleted(_) => ("oidc_account_deleted", "err_oidc_account_deleted"),
        }
    }

    /// A technical detail for the page (English, never secret).
    pub fn detail(&self) -> Option<String> {
        match self {
            OidcError::NotConfigured | OidcError::LocalLoginOff | OidcError::Denied | OidcError::NotAllowed => None,
            // Internal causes stay in the log; people get the message.
            OidcError::Config(_) | OidcError::Unreachable(_) | OidcError::Store(_) => None,
            other => Some(other.to_string()),
        }
    }
}

/// The longest pause between two attempts to reach an unreachable IServ.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(60);

/// Whether the provider is set up, or when to try again.
enum Setup {
    Ready(Arc<Provider>),
    Failed { next_try: Instant, pause: Duration },
    NotTried,
}

/// Sign-in with IServ for the whole portal; cheap to share behind an `Arc`.
pub struct Oidc {
    cfg: OidcConfig,
    redirect: Url,
    http: http_client::HttpClient,
    setup: Mutex<Setup>,
    /// Holds sign-ins under way (see [`pending`]).
    store: Store,
}

impl Oidc {
    /// `None` when the section is not configured. Does not contact IServ. Sign-ins under way
    /// are kept in `store`, which every portal replica shares.
    pub fn new(cfg: &OidcConfig, public_url: &Url, store: Store) -> anyhow::Result<Option<Arc<Oidc>>> {
        if !cfg.is_configured() {
            return Ok(None);
        }
        Ok(Some(Arc::new(Oidc {
            redirect: cfg.redirect_uri(public_url),
            http: http_client::HttpClient::new(Duration::from_secs(cfg.timeout_secs))?,
            cfg: cfg.clone(),
            setup: Mutex::new(Setup::NotTried),
            store,
        })))
    }

    /// The path IServ sends the browser back to (`/auth/callback` unless configured).
    pub fn callback_path(&self) -> &str {
        self.redirect.path()
    }

    pub fn config(&self) -> &OidcConfig {
        &self.cfg
    }

    /// Step 1: remembers a sign-in for the browser holding `binding` (a random value also in
    /// its cookie) and returns IServ's authorization URL to send it to. `source` is who asked
    /// (the client's address): a flood from one source only pushes out its own sign-ins.
    pub async fn begin(&self, binding: String, return_to: String, source: String) -> Result<Url, OidcError> {
        let started = self.provider().await?.start().await;
        let sign_in = PendingSignIn {
            state: started.state,
            binding,
            nonce: started.nonce,
            pkce_verifier: started.pkce_verifier,
            return_to,
            source,
        };
        pending::remember(&self.store, &sign_in)
            .await
            .map_err(|e| OidcError::Store(e.to_string()))?;
        Ok(started.url)
    }

    /// Steps 2 and 3, the callback: takes the pending sign-in for `state` (one use, same
    /// browser), then exchanges `code` and checks the tokens and the allowed groups. Returns who
    /// signed in and where they wanted to go.
    pub async fn complete(
        &self,
        state: &str,
        binding: Option<&str>,
        error: Option<&str>,
        code: Option<&str>,
    ) -> Result<(Identity, String), OidcError> {
        let pending = pending::take(&self.store, state, binding).await.map_err(|e| match e {
            TakeError::Unknown => OidcError::StateUnknown,
            TakeError::OtherBrowser => OidcError::OtherBrowser,
            TakeError::Store(e) => OidcError::Store(e.to_string()),
        })?;
        match error {
            Some("access_denied") => return Err(OidcError::Denied),
            Some(other) => return Err(OidcError::ProviderError(other.chars().take(64).collect())),
            None => {}
        }
        let code = code
            .filter(|c| !c.is_empty() && c.len() <= 4096)
            .ok_or_else(|| OidcError::ProviderError("no code in the answer".into()))?;
        let provider = self.provider().await?;
        let claims = provider.finish(code, &pending.nonce, &pending.pkce_verifier).await?;
        let identity = Identity::from_claims(&claims)?;
        if !identity.allowed(&self.cfg) {
            tracing::info!(username = %identity.username, "IServ account not in an allowed group");
            return Err(OidcError::NotAllowed);
        }
        Ok((identity, pending.return_to))
    }

    /// The provider, setting it up if needed; while IServ is unreachable, attempts are spaced
    /// out (1 s, 2 s, 4 s, … up to a minute) and callers in between get `Unreachable` at once.
    async fn provider(&self) -> Result<Arc<Provider>, OidcError> {
        let mut setup = self.setup.lock().await;
        let pause = match &*setup {
            Setup::Ready(p) => return Ok(p.clone()),
            Setup::Failed { next_try, pause } if Instant::now() < *next_try => {
                return Err(OidcError::Unreachable(format!(
                    "still unreachable; next attempt in {} s",
                    next_try.saturating_duration_since(Instant::now()).as_secs() + 1
                )));
            }
            Setup::Failed { pause, .. } => (*pause * 2).min(MAX_RETRY_PAUSE),
            Setup::NotTried => Duration::from_secs(1),
        };
        match Provider::connect(&self.cfg, &self.redirect, self.http.clone()).await {
            Ok(p) => {
                let p = Arc::new(p);
                tracing::info!(scopes = %p.scopes().join(" "), "IServ sign-in is ready");
                *setup = Setup::Ready(p.clone());
                Ok(p)
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_secs = pause.as_secs(), "IServ sign-in is not available yet");
                *setup = Setup::Failed {
                    next_try: Instant::now() + pause,
                    pause,
                };
                Err(e)
            }
        }
    }

    /// Tries to set the provider up until it works, so the first sign-in does not wait for
    /// discovery. Never blocks the portal's start.
    pub async fn warm_up(self: Arc<Self>) {
        loop {
            let wait = match self.provider().await {
                Ok(_) => return,
                Err(_) => match &*self.setup.lock().await {
                    Setup::Failed { next_try, .. } => next_try.saturating_duration_since(Instant::now()),
                    _ => MAX_RETRY_PAUSE,
                },
            };
            tokio::time::sleep(wait.max(Duration::from_millis(100))).await;
        }
    }
}
