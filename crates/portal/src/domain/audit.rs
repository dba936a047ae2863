//! The audit log: every entry is written here, whichever page, API call or background job
//! caused it, and old entries are pruned here.

use std::time::Duration;

use portal_store::{AuditEvent, AuditKind, Store};

/// Setting: days audit entries are kept.
pub const RETENTION_DAYS_SETTING: &str = "audit_retention_days";
/// Kept this long unless an administrator chose otherwise.
pub const DEFAULT_RETENTION_DAYS: i64 = 90;

/// Records an audit event; a failure is logged, never shown: the action itself happened.
pub async fn record(store: &Store, event: AuditEvent) {
    if let Err(e) = store.audit(&event).await {
        tracing::warn!(kind = %event.kind, error = %e, "recording an audit event failed");
    }
}

/// Records what happened to a desktop, with its owner; for the lifecycle's one-line hooks.
/// Never fails the caller: a lost log line must not undo a start or a stop.
pub async fn desktop(store: &Store, kind: AuditKind, id: &str, detail: &str) {
    let owner = match store.desktop(id).await {
        Ok(Some(d)) => Some(d.username),
        _ => None,
    };
    let mut event = AuditEvent::new(kind, detail).target(id);
    event.username = owner;
    record(store, event).await;
}

/// The retention setting, or its default.
pub async fn retention_days(store: &Store) -> Result<i64, portal_store::StoreError> {
    Ok(store
        .settings()
        .await?
        .into_iter()
        .find(|(key, _, _)| key == RETENTION_DAYS_SETTING)
        .and_then(|(_, value, _)| value.parse().ok())
        .unwrap_or(DEFAULT_RETENTION_DAYS))
}

/// Deletes entries older than the retention setting, hourly.
pub async fn prune_hourly(store: Store) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let days = match retention_days(&store).await {
            Ok(days) => days,
            Err(e) => {
                tracing::warn!(error = %e, "reading the audit retention failed");
                continue;
            }
        };
        let before = super::unix_now() - days * 86_400;
        match store.prune_audit(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(entries = n, days, "pruned the audit log"),
            Err(e) => tracing::warn!(error = %e, "pruning the audit log failed"),
        }
    }
}
