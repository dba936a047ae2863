//! Argon2id password hashing and the input rules for usernames and passwords.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use secrecy::{ExposeSecret, SecretString};

use crate::StoreError;

/// Shortest accepted password; IServ and most school policies ask for at least 8.
pub(crate) const MIN_PASSWORD_CHARS: usize = 8;
/// Longest accepted password: generous for passphrases, small enough to not be a hashing DoS.
pub(crate) const MAX_PASSWORD_CHARS: usize = 1024;

/// A hash of a random password nobody knows, made with the same parameters as [`hash`]
/// (argon2id, m=19456 KiB, t=2, p=1, the `argon2` crate's defaults). Verifying against it costs
/// as much as verifying a real password, so a sign-in attempt for an unknown user takes as long
/// as one for a known user. If the parameters in [`hasher`] change, regenerate this (the test
/// `dummy_hash_matches_parameters` fails until then).
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$\
    c29tZXNhbHRmb3JkdW1teQ$\
    5hFPoVp0K1nqlYB+VfL+fWq7lUTYTDpIg6HY6Q0v7AY";

/// The one place the hashing parameters are chosen: the crate defaults follow OWASP's argon2id
/// recommendation (19 MiB, 2 passes) and cost tens of milliseconds in a release build.
fn hasher() -> Argon2<'static> {
    Argon2::default()
}

/// Lowercases `username` and checks it against `^[a-z0-9][a-z0-9._-]{0,63}$`.
///
/// The rule keeps usernames safe inside URLs, container names and desktop ids
/// (`{username}-{type}`) without escaping.
pub(crate) fn normalize_username(username: &str) -> Result<String, StoreError> {
    let name = username.trim().to_ascii_lowercase();
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if first_ok && rest_ok && name.len() <= 64 {
        Ok(name)
    } else {
        Err(StoreError::Invalid(format!(
            "invalid username {username:?}: use 1 to 64 characters a-z, 0-9, '.', '_' or '-', \
             starting with a letter or digit"
        )))
    }
}

fn check_password(password: &str) -> Result<(), StoreError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(StoreError::Invalid(format!(
            "password too short: at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(StoreError::Invalid(format!(
            "password too long: at most {MAX_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

/// Validates and hashes a new password on the blocking pool (argon2 is deliberately slow and
/// would otherwise stall the async workers).
pub(crate) async fn hash(password: &SecretString) -> Result<String, StoreError> {
    check_password(password.expose_secret())?;
    let password = password.clone();
    tokio::task::spawn_blocking(move || {
        let salt_bytes: [u8; 16] = rand::random();
        let salt = SaltString::encode_b64(&salt_bytes).map_err(|_| StoreError::Hash)?;
        hasher()
            .hash_password(password.expose_secret().as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|_| StoreError::Hash)
    })
    .await
    .map_err(|_| StoreError::Hash)?
}

/// Checks `password` against a stored PHC hash, or against [`DUMMY_HASH`] when there is none,
/// so the time taken does not tell whether the user exists. Returns false for the dummy.
pub(crate) async fn verify(password: &str, stored: Option<String>) -> Result<bool, StoreError> {
    let password = SecretString::from(password.to_owned());
    tokio::task::spawn_blocking(move || {
        let is_real = stored.is_some();
        let phc = stored.as_deref().unwrap_or(DUMMY_HASH);
        // A corrupt stored hash must not become a sign-in; treat it like a wrong password.
        let Ok(parsed) = PasswordHash::new(phc) else {
            tracing::warn!("stored password hash cannot be parsed; refusing sign-in");
            return Ok(false);
        };
        let matches = hasher()
            .verify_password(password.expose_secret().as_bytes(), &parsed)
            .is_ok();
        Ok(is_real && matches)
    })
    .await
    .map_err(|_| StoreError::Hash)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert_eq!(
            normalize_username(" Anna.Schmidt ").ok().as_deref(),
            Some("anna.schmidt")
        );
        assert!(normalize_username("0-a_b.c").is_ok());
        assert!(normalize_username(&"a".repeat(64)).is_ok());
        for bad in [
            "",
            ".anna",
            "_a",
            "-a",
            "anna smith",
            "anna/x",
            "jürgen",
            &"a".repeat(65),
        ] {
            assert!(
                matches!(normalize_username(bad), Err(StoreError::Invalid(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn password_lengths() {
        assert!(check_password("1234567").is_err());
        assert!(check_password("12345678").is_ok());
        // Counted in characters, not bytes.
        assert!(check_password(&"ä".repeat(1024)).is_ok());
        assert!(check_password(&"a".repeat(1025)).is_err());
    }

    #[test]
    fn dummy_hash_matches_parameters() {
        let dummy = PasswordHash::new(DUMMY_HASH).expect("dummy hash parses");
        let salt = SaltString::encode_b64(b"0123456789abcdef").expect("salt");
        let real = hasher().hash_password(b"x", &salt).expect("hash");
        assert_eq!(dummy.algorithm, real.algorithm);
        assert_eq!(dummy.version, real.version);
        assert_eq!(dummy.params, real.params);
        assert_eq!(dummy.hash.map(|h| h.len()), real.hash.map(|h| h.len()));
    }
}
