//! The provider's signing keys: fixed test-only RSA keys, rotation, JWKS and compact JWS.
//!
//! Generating 2048-bit keys takes seconds in a debug build, so the keys are checked in under
//! `crates/testkit/keys/` (TEST-ONLY, never use them anywhere else). Rotation cycles through
//! the pool with a fresh `kid` each time; the pool is larger than two, so the current and the
//! previous key (the two in the JWKS) always differ.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use rsa::RsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::signature::{SignatureEncoding as _, Signer as _};
use rsa::traits::PublicKeyParts as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// Keys that may be published and rotated to.
const POOL_PEMS: [&str; 4] = [
    include_str!("../../keys/test-only-rsa-1.pem"),
    include_str!("../../keys/test-only-rsa-2.pem"),
    include_str!("../../keys/test-only-rsa-3.pem"),
    include_str!("../../keys/test-only-rsa-4.pem"),
];
/// A key never published: signs for [`super::Fault::BadSignature`].
const IMPOSTOR_PEM: &str = include_str!("../../keys/test-only-rsa-5.pem");

/// Why a key could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("test key {index} is not a PKCS#8 RSA key: {source}")]
    Pem { index: usize, source: rsa::pkcs8::Error },
    #[error("RS256 signing failed: {0}")]
    Sign(#[from] rsa::signature::Error),
    #[error("JWT part is not serialisable JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Which key signs an ID token and under which `kid`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Signer {
    /// The current key, honestly labelled.
    Current,
    /// The impostor key, labelled with the current `kid`.
    Impostor,
    /// The current key, labelled with a `kid` that is in no JWKS.
    UnknownKid,
}

/// One published key.
struct Published {
    pool_index: usize,
    kid: String,
}

/// The pool, the current key and the previous one.
pub(super) struct KeyRing {
    pool: Vec<RsaPrivateKey>,
    impostor: RsaPrivateKey,
    /// Distinguishes this provider's kids from another instance's (clients may cache by kid).
    kid_prefix: String,
    generation: usize,
    current: Published,
    previous: Option<Published>,
}

impl KeyRing {
    pub(super) fn load(kid_prefix: String) -> Result<KeyRing, KeyError> {
        let parse = |index: usize, pem: &str| {
            RsaPrivateKey::from_pkcs8_pem(pem).map_err(|source| KeyError::Pem { index, source })
        };
        let pool = POOL_PEMS
            .iter()
            .enumerate()
            .map(|(i, pem)| parse(i + 1, pem))
            .collect::<Result<Vec<_>, _>>()?;
        let impostor = parse(POOL_PEMS.len() + 1, IMPOSTOR_PEM)?;
        let current = Published {
            pool_index: 0,
            kid: format!("{kid_prefix}-1"),
        };
        Ok(KeyRing {
            pool,
            impostor,
            kid_prefix,
            generation: 1,
            current,
            previous: None,
        })
    }

    pub(super) fn rotate(&mut self) {
        self.generation += 1;
        let next = Published {
            pool_index: (self.current.pool_index + 1) % self.pool.len(),
            kid: format!("{}-{}", self.kid_prefix, self.generation),
        };
        self.previous = Some(std::mem::replace(&mut self.current, next));
    }

    pub(super) fn current_kid(&self) -> &str {
        &self.current.kid
    }

    /// The JWKS document: the current key first, then the previous one.
    pub(super) fn jwks(&self) -> Value {
        let keys: Vec<Value> = std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .map(|p| {
                let key = &self.pool[p.pool_index];
                json!({
                    "kty": "RSA",
                    "use": "sig",
                    "alg": "RS256",
                    "kid": p.kid,
                    "n": B64URL.encode(key.n().to_bytes_be()),
                    "e": B64URL.encode(key.e().to_bytes_be()),
                })
            })
            .collect();
        json!({ "keys": keys })
    }

    /// A compact JWS (RS256) over `claims`.
    pub(super) fn sign(&self, claims: &Value, signer: Signer) -> Result<String, KeyError> {
        let (key, kid) = match signer {
            Signer::Current => (&self.pool[self.current.pool_index], self.current.kid.clone()),
            Signer::Impostor => (&self.impostor, self.current.kid.clone()),
            Signer::UnknownKid => (
                &self.pool[self.current.pool_index],
                format!("{}-unknown", self.kid_prefix),
            ),
        };
        let signing_input = compact_input(&json!({ "alg": "RS256", "typ": "JWT", "kid": kid }), claims)?;
        let signature = SigningKey::<Sha256>::new(key.clone()).try_sign(signing_input.as_bytes())?;
        Ok(format!("{signing_input}.{}", B64URL.encode(signature.to_bytes())))
    }
}

/// A compact JWS (HS256) over `claims`, keyed with `secret`: HMAC-SHA256 (RFC 2104) written out,
/// so the test double needs no MAC crate.
pub(super) fn sign_hs256(claims: &Value, secret: &[u8]) -> Result<String, KeyError> {
    let signing_input = compact_input(&json!({ "alg": "HS256", "typ": "JWT" }), claims)?;
    const BLOCK: usize = 64;
    let mut key = [0u8; BLOCK];
    if secret.len() > BLOCK {
        key[..32].copy_from_slice(&Sha256::digest(secret));
    } else {
        key[..secret.len()].copy_from_slice(secret);
    }
    let pad = |byte: u8| key.map(|k| k ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(signing_input.as_bytes())
        .finalize();
    let mac = Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize();
    Ok(format!("{signing_input}.{}", B64URL.encode(mac)))
}

/// An unsigned JWT (`alg` `none`, empty signature) over `claims`.
pub(super) fn unsigned(claims: &Value) -> Result<String, KeyError> {
    Ok(format!(
        "{}.",
        compact_input(&json!({ "alg": "none", "typ": "JWT" }), claims)?
    ))
}

/// `base64url(header).base64url(claims)`.
fn compact_input(header: &Value, claims: &Value) -> Result<String, KeyError> {
    Ok(format!(
        "{}.{}",
        B64URL.encode(serde_json::to_vec(header)?),
        B64URL.encode(serde_json::to_vec(claims)?)
    ))
}
