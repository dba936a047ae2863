//! What the portal does, without the web: desktop lifecycle, who may use what, the audit log,
//! the desktop-type catalogue, live state changes, image pulls, progress streams, why desktops
//! stop, the administrators' and teachers' actions, deleted accounts with their files, and
//! teachers helping students with consent.
//!
//! Nothing here knows axum, askama or HTTP; handlers in [`crate::web`] call into it and turn
//! results into pages and JSON. Texts are translation keys at most: words are chosen at the edge.

pub mod access;
pub mod accounts;
pub mod admin;
pub mod audit;
pub mod catalog;
pub mod class_actions;
pub mod desktop_mounts;
pub mod disk_use;
pub mod events;
pub mod files;
pub mod flask_import;
pub mod handins;
pub mod help;
pub mod help_peers;
pub mod lesson;
pub mod lifecycle;
pub mod local_groups;
pub mod progress;
pub mod pulls;
pub mod replicas;
pub mod screens;
pub mod start_queue;
pub mod stop_reason;
pub mod volume_migration;

/// Now in unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
