//! Sign-ins on their way through IServ (state, nonce, PKCE verifier), shared by every portal
//! replica: IServ sends the browser back to whichever portal the load balancer picks.
//!
//! Found by the sha256 of the `state` in IServ's redirect, bound to the browser that started
//! the sign-in by the sha256 of a random value in its cookie, taken out on first use with one
//! `DELETE … RETURNING` (so a callback replayed to another replica finds nothing). Bounded per
//! source (the client's address) and in total: a flood pushes out its own sign-ins first.

use std::time::Duration;

use sqlx::Row;

use crate::handovers::{Bounded, make_room, ms, now_ms};
use crate::{Store, StoreError, handover_id};

/// Sign-ins kept per source; a source's oldest go first. A class signing in behind one
/// school router needs a few dozen at once.
pub const MAX_SIGN_INS_PER_SOURCE: usize = 100;
/// Sign-ins kept in all.
const MAX_SIGN_INS: i64 = 10_000;

/// When the table is full, the oldest of the source holding the most goes: a flood from many
/// addresses pushes out its own before a single real sign-in elsewhere.
const PENDING_SIGN_INS: Bounded = Bounded {
    trim_session: "DELETE FROM pending_sign_ins WHERE id IN (SELECT id FROM pending_sign_ins WHERE source = $1 \
                   ORDER BY created_ms DESC LIMIT $2 OFFSET $3)",
    per_owner: MAX_SIGN_INS_PER_SOURCE as i64,
    count: "SELECT COUNT(*) FROM pending_sign_ins",
    trim: "DELETE FROM pending_sign_ins WHERE id IN (SELECT id FROM pending_sign_ins WHERE source = \
           (SELECT source FROM pending_sign_ins GROUP BY source ORDER BY COUNT(*) DESC, MIN(created_ms) LIMIT 1) \
           ORDER BY created_ms LIMIT $1)",
    max: MAX_SIGN_INS,
};

/// A sign-in as the portal started it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingSignIn {
    /// The random `state` sent to IServ and back.
    pub state: String,
    /// The random value also in the browser's cookie.
    pub binding: String,
    pub nonce: String,
    pub pkce_verifier: String,
    /// Where to go afterwards (a path on the portal).
    pub return_to: String,
    /// Who started it (the client's address).
    pub source: String,
}

/// A sign-in as taken out for a callback (gone from the database, whatever the caller decides).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TakenSignIn {
    /// [`handover_id`] of the binding it was started with, to compare with the browser's.
    pub binding_id: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub return_to: String,
    /// Its time ran out before it was taken.
    pub expired: bool,
}

impl Store {
    /// Keeps `sign_in` for `ttl`, making room as the bounds above say.
    pub async fn put_pending_sign_in(&self, sign_in: &PendingSignIn, ttl: Duration) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        make_room(&mut tx, &PENDING_SIGN_INS, Some(&sign_in.source)).await?;
        sqlx::query(
            "INSERT INTO pending_sign_ins (id, binding, nonce, pkce_verifier, return_to, source, created_ms, expires_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(handover_id(&sign_in.state))
        .bind(handover_id(&sign_in.binding))
        .bind(&sign_in.nonce)
        .bind(&sign_in.pkce_verifier)
        .bind(&sign_in.return_to)
        .bind(&sign_in.source)
        .bind(now)
        .bind(now.saturating_add(ms(ttl)))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Takes the sign-in for `state` out, on whichever replica started it; `None` if unknown
    /// or already taken.
    pub async fn take_pending_sign_in(&self, state: &str) -> Result<Option<TakenSignIn>, StoreError> {
        let row = sqlx::query(
            "DELETE FROM pending_sign_ins WHERE id = $1 \
             RETURNING binding, nonce, pkce_verifier, return_to, expires_ms",
        )
        .bind(handover_id(state))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let expires_ms: i64 = row.try_get("expires_ms")?;
        Ok(Some(TakenSignIn {
            binding_id: row.try_get("binding")?,
            nonce: row.try_get("nonce")?,
            pkce_verifier: row.try_get("pkce_verifier")?,
            return_to: row.try_get("return_to")?,
            expired: expires_ms <= now_ms(),
        }))
    }
}
