//! Sign-ins on their way through IServ: state, nonce and PKCE verifier, kept server-side in
//! the portal's store, so that IServ's redirect back may reach any portal replica.
//!
//! Each entry is found by its `state` and bound to the browser that started it by a random
//! value in a short-lived HttpOnly cookie, so a callback URL pushed to someone else's browser
//! (login CSRF) does not sign them in. Entries are taken out on first use (also by a wrong
//! browser, so the right one cannot replay it either) and expire after [`PENDING_TTL`]; the
//! store bounds them per client address and in total.

use std::time::Duration;

use portal_store::{PendingSignIn, Store, StoreError, TakenSignIn, handover_id};
use subtle::ConstantTimeEq as _;

/// How long a started sign-in may take.
pub const PENDING_TTL: Duration = Duration::from_secs(10 * 60);

/// Why a callback's `state` does not lead to a sign-in.
#[derive(Debug)]
pub(crate) enum TakeError {
    /// Never issued, already used, or expired.
    Unknown,
    /// Issued to another browser.
    OtherBrowser,
    /// The store did not answer.
    Store(StoreError),
}

/// Keeps `sign_in` until its callback or [`PENDING_TTL`].
pub(crate) async fn remember(store: &Store, sign_in: &PendingSignIn) -> Result<(), StoreError> {
    store.put_pending_sign_in(sign_in, PENDING_TTL).await
}

/// Takes the sign-in for `state` out (one use only) if `binding` is the browser's.
pub(crate) async fn take(store: &Store, state: &str, binding: Option<&str>) -> Result<TakenSignIn, TakeError> {
    let taken = store
        .take_pending_sign_in(state)
        .await
        .map_err(TakeError::Store)?
        .ok_or(TakeError::Unknown)?;
    if taken.expired {
        return Err(TakeError::Unknown);
    }
    let same_browser = binding
        .filter(|b| !b.is_empty())
        .is_some_and(|b| bool::from(handover_id(b).as_bytes().ct_eq(taken.binding_id.as_bytes())));
    if !same_browser {
        return Err(TakeError::OtherBrowser);
    }
    Ok(taken)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign_in(state: &str, binding: &str) -> PendingSignIn {
        PendingSignIn {
            state: state.into(),
            binding: binding.into(),
            nonce: "n".into(),
            pkce_verifier: "v".into(),
            return_to: "/".into(),
            source: "10.0.0.1".into(),
        }
    }

    #[tokio::test]
    async fn one_use_and_bound_to_the_browser() {
        let store = Store::connect("sqlite::memory:").await.expect("store");
        remember(&store, &sign_in("s1", "b1")).await.expect("remember");
        assert!(matches!(
            take(&store, "s1", Some("other")).await,
            Err(TakeError::OtherBrowser)
        ));
        // A wrong browser used it up: the right one cannot replay it either.
        assert!(matches!(take(&store, "s1", Some("b1")).await, Err(TakeError::Unknown)));
        remember(&store, &sign_in("s2", "b2")).await.expect("remember");
        assert!(matches!(take(&store, "s2", None).await, Err(TakeError::OtherBrowser)));
        remember(&store, &sign_in("s3", "b3")).await.expect("remember");
        let taken = take(&store, "s3", Some("b3")).await.expect("the right browser");
        assert_eq!((taken.nonce.as_str(), taken.pkce_verifier.as_str()), ("n", "v"));
        assert!(matches!(take(&store, "s3", Some("b3")).await, Err(TakeError::Unknown)));
        assert!(matches!(take(&store, "never", None).await, Err(TakeError::Unknown)));
    }
}
