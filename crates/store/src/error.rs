//! The crate's single error type.

/// Everything a store operation can fail with.
///
/// `NotFound`, `Conflict` and `Invalid` are caller mistakes the portal can turn into 404, 409
/// and 400/422; the rest are server faults.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The user, session or other record named in the call does not exist.
    #[error("not found")]
    NotFound,
    /// A unique value (username, external subject) is already taken.
    #[error("{0}")]
    Conflict(String),
    /// An IServ sign-in would take over the local account of this username, which has a
    /// password or is an administrator's, and no administrator allowed that.
    #[error("the local account {0:?} may be linked to IServ only after an administrator allowed it")]
    LinkNeedsAdmin(String),
    /// An IServ sign-in of an account an administrator deleted, while its files are kept
    /// (until the Unix time given): only a restore gives it back, a new account would not get
    /// its files.
    #[error("the account {0:?} was deleted by an administrator; it can be restored until its files are purged")]
    AccountDeleted(String, i64),
    /// An argument failed validation; the message says which and why.
    #[error("{0}")]
    Invalid(String),
    /// The database failed or returned something unexpected.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying the schema migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Argon2 failed (or its worker thread died); the cause is not shown so nothing about the
    /// secret can leak into logs.
    #[error("password hashing failed")]
    Hash,
}

impl StoreError {
    /// A value read from the database that the code cannot interpret (e.g. an unknown role).
    pub(crate) fn corrupt(message: String) -> Self {
        StoreError::Database(sqlx::Error::Decode(message.into()))
    }
}

/// What a failed write tells us about constraints, so callers can map it to a meaningful error.
pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

pub(crate) fn is_foreign_key_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_foreign_key_violation())
}
