//! The one generator of secrets in the workspace: session tokens, desktop passwords, sign-in
//! bindings, generated account passwords.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// `N` random bytes from the OS-seeded CSPRNG, URL-safe base64 without padding (fits a cookie,
/// a URL and an environment variable as is): 16 bytes → 22 characters, 32 → 43.
pub fn random_secret<const N: usize>() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; N]>())
}
