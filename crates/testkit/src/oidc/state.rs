//! The provider's mutable state: current user and fault, issued codes and tokens, request logs.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use rand::Rng as _;

use super::keys::{KeyError, KeyRing};
use super::{Endpoints, Fault, ProviderConfig, TestUser, TokenRequest};

/// How long an authorization code may be redeemed.
pub(super) const CODE_LIFETIME: Duration = Duration::from_secs(60);
/// `expires_in` of access tokens, in seconds.
pub(super) const ACCESS_TOKEN_SECS: u64 = 3600;
/// Lifetime of ID tokens, in seconds.
pub(super) const ID_TOKEN_SECS: u64 = 300;

/// Everything an authorization code was bound to when it was issued.
#[derive(Clone, Debug)]
pub(super) struct Grant {
    pub(super) client_id: String,
    pub(super) redirect_uri: String,
    pub(super) nonce: String,
    pub(super) code_challenge: String,
    pub(super) scope: String,
    pub(super) user: TestUser,
    /// Unix seconds of the (automatic) sign-in.
    pub(super) auth_time: u64,
    pub(super) expires_at: Instant,
    /// Set once redeemed: the access token issued for it, revoked if the code comes back.
    pub(super) redeemed: Option<String>,
}

/// Configuration plus the lock-protected state, shared by all handlers.
pub(super) struct Shared {
    pub(super) cfg: ProviderConfig,
    pub(super) issuer: String,
    inner: Mutex<Inner>,
}

/// What changes while the provider runs.
pub(super) struct Inner {
    pub(super) user: TestUser,
    pub(super) fault: Fault,
    pub(super) available: bool,
    pub(super) keys: KeyRing,
    pub(super) codes: HashMap<String, Grant>,
    /// Valid access tokens and the user (as of sign-in) they stand for.
    pub(super) access_tokens: HashMap<String, TestUser>,
    pub(super) authorize_log: Vec<BTreeMap<String, String>>,
    pub(super) token_log: Vec<TokenRequest>,
    pub(super) userinfo_count: usize,
}

impl Shared {
    pub(super) fn new(cfg: ProviderConfig, issuer: String) -> Result<Shared, KeyError> {
        let kid_prefix = random_token(6);
        let inner = Inner {
            user: TestUser::student("anna"),
            fault: Fault::None,
            available: true,
            keys: KeyRing::load(kid_prefix)?,
            codes: HashMap::new(),
            access_tokens: HashMap::new(),
            authorize_log: Vec::new(),
            token_log: Vec::new(),
            userinfo_count: 0,
        };
        Ok(Shared {
            cfg,
            issuer,
            inner: Mutex::new(inner),
        })
    }

    /// The state; a panic in another handler must not wedge the provider for the whole test.
    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn endpoints(&self) -> Endpoints {
        let paths = self.cfg.layout.paths();
        let url = |path: &str| format!("{}{path}", self.issuer);
        Endpoints {
            issuer: self.issuer.clone(),
            authorize: url(paths.authorize),
            token: url(paths.token),
            userinfo: url(paths.userinfo),
            jwks: url(paths.jwks),
        }
    }
}

impl Inner {
    pub(super) fn expire_codes(&mut self) {
        let now = Instant::now();
        for grant in self.codes.values_mut() {
            grant.expires_at = now;
        }
    }
}

/// `bytes` random bytes, base64url without padding.
pub(super) fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill(buf.as_mut_slice());
    B64URL.encode(buf)
}

/// Seconds since the Unix epoch.
pub(super) fn unix_now() -> u64 {
    // A clock before 1970 is a broken test machine; 0 then makes every token look expired.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}
