//! The audit log: every entry is written here, whichever page, API call or background job
//! caused it, and old entries are pruned here.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use portal_store::{AuditEvent, AuditKind, Store};

use crate::net::client_addr::client_group;

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

/// How long one address's share of anonymous entries lasts.
pub const ANONYMOUS_WINDOW: Duration = Duration::from_secs(60);
/// Addresses whose shares are tracked; a flood from more addresses than this shares one
/// further share (and one "and N more" entry).
const MAX_ANONYMOUS_SOURCES: usize = 10_000;
/// The share that addresses beyond [`MAX_ANONYMOUS_SOURCES`] have in common.
const OVERFLOW: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

/// One address's entries in the current window.
struct Share {
    since: Instant,
    written: u32,
    /// Entries not written, and the kind of the last of them.
    held_back: u64,
    kind: AuditKind,
}

/// Entries caused by nobody signed in (failed or refused sign-ins, bogus IServ callbacks):
/// at most `per_window` per client address (IPv6: per /64) and minute are written; the rest
/// are counted and summed up in one entry, so anonymous requests cannot grow the log without
/// bound or bury the entries that matter.
pub struct AnonymousAudit {
    per_window: u32,
    shares: Mutex<HashMap<IpAddr, Share>>,
}

impl AnonymousAudit {
    pub fn new(per_window: u32) -> Self {
        Self {
            per_window,
            shares: Mutex::default(),
        }
    }

    /// Records `event`, caused from `ip`, unless that address used up its share.
    pub async fn record(&self, store: &Store, ip: IpAddr, event: AuditEvent) {
        let (write, summary) = {
            let mut shares = self.shares.lock().unwrap_or_else(|p| p.into_inner());
            let mut group = client_group(ip);
            let mut summaries = Vec::new();
            if !shares.contains_key(&group) && shares.len() >= MAX_ANONYMOUS_SOURCES {
                summaries = take_ended(&mut shares, ANONYMOUS_WINDOW);
                if shares.len() >= MAX_ANONYMOUS_SOURCES {
                    group = OVERFLOW;
                }
            }
            let share = shares.entry(group).or_insert_with(|| Share {
                since: Instant::now(),
                written: 0,
                held_back: 0,
                kind: event.kind,
            });
            if share.since.elapsed() >= ANONYMOUS_WINDOW {
                summaries.extend(summary_of(group, share));
                *share = Share {
                    since: Instant::now(),
                    written: 0,
                    held_back: 0,
                    kind: event.kind,
                };
            }
            let write = share.written < self.per_window;
            if write {
                share.written += 1;
            } else {
                share.held_back += 1;
                share.kind = event.kind;
            }
            (write, summaries)
        };
        for s in summary {
            record(store, s).await;
        }
        if write {
            record(store, event).await;
        }
    }

    /// Writes the "and N more" entries of every share older than `age`; the background task
    /// calls this each window so a flood that stopped is still summed up.
    pub async fn flush(&self, store: &Store, age: Duration) {
        let summaries = {
            let mut shares = self.shares.lock().unwrap_or_else(|p| p.into_inner());
            take_ended(&mut shares, age)
        };
        for s in summaries {
            record(store, s).await;
        }
    }

    /// [`AnonymousAudit::flush`] every window, forever.
    pub async fn flush_forever(self: std::sync::Arc<Self>, store: Store) {
        let mut tick = tokio::time::interval(ANONYMOUS_WINDOW);
        loop {
            tick.tick().await;
            self.flush(&store, ANONYMOUS_WINDOW).await;
        }
    }
}

/// Removes the shares older than `age`, returning the summaries of those that held back.
fn take_ended(shares: &mut HashMap<IpAddr, Share>, age: Duration) -> Vec<AuditEvent> {
    let mut out = Vec::new();
    shares.retain(|group, share| {
        if share.since.elapsed() < age {
            return true;
        }
        out.extend(summary_of(*group, share));
        false
    });
    out
}

fn summary_of(group: IpAddr, share: &Share) -> Option<AuditEvent> {
    (share.held_back > 0).then(|| {
        let from = if group == OVERFLOW {
            "from many other addresses".to_owned()
        } else {
            format!("from {group}")
        };
        let secs = share.since.elapsed().as_secs().max(1);
        AuditEvent::new(
            share.kind,
            format!(
                "and {} more like the entries before, {from} in {secs} seconds (not written one by one)",
                share.held_back
            ),
        )
    })
}

/// Records what happened to a desktop, with its owner; for the lifecycle's one-line hooks.
/// Never fails the caller: a lost log line must not undo a start or a stop.
pub async fn desktop(store: &Store, kind: AuditKind, id: &str, detail: &str) {
    desktop_by(store, kind, id, detail, None).await;
}

/// [`desktop`], caused by `actor` (a username) when someone other than the owner asked, such
/// as a teacher starting her class's desktops.
pub async fn desktop_by(store: &Store, kind: AuditKind, id: &str, detail: &str, actor: Option<&str>) {
    let owner = match store.desktop(id).await {
        Ok(Some(d)) => Some(d.username),
        _ => None,
    };
    let mut event = AuditEvent::new(kind, detail).target(id);
    event.username = owner;
    event.actor = actor.map(str::to_owned);
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
