//! Why a desktop stopped or failed, as one typed vocabulary: the lifecycle, the culler, the
//! runtime's events and the stop handlers name a [`StopReason`]; the store keeps its stable
//! code ([`StopReason::code`]); the web layer turns it into a translation key.
//!
//! The column `desktops.state_reason` stays text. Rows written before the codes existed hold
//! English sentences; [`StopReason::from_stored`] maps those once, here, so old databases
//! still show sensible reasons and nothing above the domain ever parses words.

use desktop_runtime::{ExitReason, RuntimeError};
use std::fmt;

use portal_store::{Desktop, User};

/// Why a desktop is stopped or failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// Its owner stopped it.
    ByUser,
    /// An administrator stopped someone else's desktop.
    ByAdmin,
    /// An administrator stopped every desktop at once.
    StopAll,
    /// A teacher of the owner's class stopped it (one desktop, or the end of the lesson).
    ByTeacher,
    /// No input for this long (the portal's culler).
    Idle { minutes: i64 },
    /// The desktop itself (Kasm's `idle_session_timeout`) reported its idle limit.
    IdleReported,
    /// Running longer than its type allows.
    MaxAge { hours: i64 },
    /// The kernel killed it for memory; `detail` is the runtime's account.
    OutOfMemory { detail: String },
    /// It exited by itself; `detail` is the runtime's account (exit code).
    Crashed { detail: String },
    /// The runtime no longer knows its container (found when reconciling).
    Gone,
    /// Its container was removed outside the portal.
    Removed,
    /// It started but its web server did not answer in time.
    StartTimeout { seconds: u64 },
    /// Its image could not be pulled or found.
    ImageUnavailable { detail: String },
    /// It was stopped while it was starting, with no reason recorded.
    StartCancelled,
    /// The runtime refused to stop it; its state is unknown.
    StopFailed { detail: String },
    /// Any other failure, as the runtime or store worded it.
    Failed { detail: String },
}

impl StopReason {
    /// Who stopped `desktop`, when `actor` did: the one rule for "by its user" versus "by an
    /// administrator". It compares accounts, not the desktop id, because ids keep the
    /// username a desktop was created under and survive a rename.
    pub fn stopped_by(actor: &User, desktop: &Desktop) -> StopReason {
        StopReason::stopped_by_account(&actor.id, &desktop.user_id)
    }

    fn stopped_by_account(actor_id: &str, owner_id: &str) -> StopReason {
        if actor_id == owner_id {
            StopReason::ByUser
        } else {
            StopReason::ByAdmin
        }
    }

    /// The recorded reason of `d`, if any.
    pub fn of(d: &Desktop) -> Option<StopReason> {
        d.state_reason.as_deref().map(StopReason::from_stored)
    }

    /// The stable stored form: a code word, with `:` and a number or the runtime's detail
    /// where there is one. Never translated, never reworded.
    pub fn code(&self) -> String {
        match self {
            StopReason::ByUser => "user".into(),
            StopReason::ByAdmin => "admin".into(),
            StopReason::StopAll => "admin:all".into(),
            StopReason::ByTeacher => "teacher".into(),
            StopReason::Idle { minutes } => format!("idle:{minutes}"),
            StopReason::IdleReported => "idle:desktop".into(),
            StopReason::MaxAge { hours } => format!("max_age:{hours}"),
            StopReason::OutOfMemory { detail } => format!("oom:{detail}"),
            StopReason::Crashed { detail } => format!("crashed:{detail}"),
            StopReason::Gone => "gone".into(),
            StopReason::Removed => "removed".into(),
            StopReason::StartTimeout { seconds } => format!("start_timeout:{seconds}"),
            StopReason::ImageUnavailable { detail } => format!("image:{detail}"),
            StopReason::StartCancelled => "cancelled".into(),
            StopReason::StopFailed { detail } => format!("stop_failed:{detail}"),
            StopReason::Failed { detail } => format!("failed:{detail}"),
        }
    }

    /// Reads a stored reason: a code, or else a sentence from before the codes (or from the
    /// runtime), classified by [`StopReason::from_text`].
    pub fn from_stored(stored: &str) -> StopReason {
        StopReason::from_code(stored).unwrap_or_else(|| StopReason::from_text(stored))
    }

    fn from_code(code: &str) -> Option<StopReason> {
        let (word, rest) = match code.split_once(':') {
            Some((word, rest)) => (word, Some(rest)),
            None => (code, None),
        };
        let detail = || rest.map(str::to_owned);
        Some(match (word, rest) {
            ("user", None) => StopReason::ByUser,
            ("admin", None) => StopReason::ByAdmin,
            ("admin", Some("all")) => StopReason::StopAll,
            ("teacher", None) => StopReason::ByTeacher,
            ("idle", Some("desktop")) => StopReason::IdleReported,
            ("idle", Some(n)) => StopReason::Idle {
                minutes: n.parse().ok()?,
            },
            ("max_age", Some(n)) => StopReason::MaxAge { hours: n.parse().ok()? },
            ("oom", Some(_)) => StopReason::OutOfMemory { detail: detail()? },
            ("crashed", Some(_)) => StopReason::Crashed { detail: detail()? },
            ("gone", None) => StopReason::Gone,
            ("removed", None) => StopReason::Removed,
            ("start_timeout", Some(n)) => StopReason::StartTimeout {
                seconds: n.parse().ok()?,
            },
            ("image", Some(_)) => StopReason::ImageUnavailable { detail: detail()? },
            ("cancelled", None) => StopReason::StartCancelled,
            ("stop_failed", Some(_)) => StopReason::StopFailed { detail: detail()? },
            ("failed", Some(_)) => StopReason::Failed { detail: detail()? },
            _ => return None,
        })
    }

    /// Why the runtime says a container stopped (typed there; the words stay as detail).
    pub fn from_exit(exit: &ExitReason) -> StopReason {
        let detail = exit.to_string();
        match exit {
            ExitReason::OutOfMemory { .. } => StopReason::OutOfMemory { detail },
            ExitReason::Exited { .. } => StopReason::Crashed { detail },
            ExitReason::Failed(_) | ExitReason::NeverStarted | ExitReason::Paused => StopReason::Failed { detail },
        }
    }

    /// Why a start failed in the runtime.
    pub fn from_start_error(error: &RuntimeError) -> StopReason {
        let detail = error.to_string();
        match error {
            RuntimeError::Image { .. } => StopReason::ImageUnavailable { detail },
            RuntimeError::Exited {
                reason: ExitReason::OutOfMemory { .. },
                ..
            } => StopReason::OutOfMemory { detail },
            _ => StopReason::Failed { detail },
        }
    }

    /// Classifies an English sentence: a row written before the codes existed. The original
    /// words are kept as detail wherever a variant has one.
    pub fn from_text(text: &str) -> StopReason {
        let text = text.trim();
        let r = text.to_ascii_lowercase();
        let number = |s: &str| -> Option<i64> {
            s.split(|c: char| !c.is_ascii_digit())
                .find(|part| !part.is_empty())
                .and_then(|n| n.parse().ok())
        };
        let detail = text.to_owned();
        if r.starts_with("stopped by its user") {
            StopReason::ByUser
        } else if r.starts_with("stopped by an administrator (stop all)") {
            StopReason::StopAll
        } else if r.starts_with("stopped by an administrator") {
            StopReason::ByAdmin
        } else if r.starts_with("stopped by a teacher") {
            StopReason::ByTeacher
        } else if r.starts_with("idle") {
            match number(&r) {
                Some(minutes) => StopReason::Idle { minutes },
                None => StopReason::IdleReported,
            }
        } else if r.starts_with("reached the maximum age") {
            StopReason::MaxAge {
                hours: number(&r).unwrap_or(0),
            }
        } else if r.contains("out of memory") {
            StopReason::OutOfMemory { detail }
        } else if r.contains("did not answer within") {
            StopReason::StartTimeout {
                seconds: number(&r).and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
            }
        } else if r.contains("is not available") || r.contains("pull") {
            StopReason::ImageUnavailable { detail }
        } else if r == "stopped while starting" {
            StopReason::StartCancelled
        } else if let Some(rest) = text.strip_prefix("stopping failed: ") {
            StopReason::StopFailed { detail: rest.into() }
        } else if r == "the container is gone" {
            StopReason::Gone
        } else if r == "the container was removed" {
            StopReason::Removed
        } else if r.starts_with("exited") || r.contains("container is gone") || r.contains("container was removed") {
            StopReason::Crashed { detail }
        } else {
            StopReason::Failed { detail }
        }
    }
}

/// The technical English account, as logs, the audit log and the API's `state_reason` /
/// `reason` fields have always shown it (tests and scripts read these words).
impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::ByUser => f.write_str("stopped by its user"),
            StopReason::ByAdmin => f.write_str("stopped by an administrator"),
            StopReason::StopAll => f.write_str("stopped by an administrator (stop all)"),
            StopReason::ByTeacher => f.write_str("stopped by a teacher"),
            StopReason::Idle { minutes } => write!(f, "idle for {minutes} minutes"),
            StopReason::IdleReported => f.write_str("idle (reported by the desktop)"),
            StopReason::MaxAge { hours } => write!(f, "reached the maximum age of {hours} hours"),
            StopReason::StartTimeout { seconds } => {
                write!(f, "the desktop did not answer within {seconds} seconds")
            }
            StopReason::Gone => f.write_str("the container is gone"),
            StopReason::Removed => f.write_str("the container was removed"),
            StopReason::StartCancelled => f.write_str("stopped while starting"),
            StopReason::StopFailed { detail } => write!(f, "stopping failed: {detail}"),
            StopReason::OutOfMemory { detail }
            | StopReason::Crashed { detail }
            | StopReason::ImageUnavailable { detail }
            | StopReason::Failed { detail } => f.write_str(detail),
        }
    }
}

/// In JSON (start progress) a reason is its English account, as before the enum existed.
impl serde::Serialize for StopReason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_kind() -> Vec<StopReason> {
        vec![
            StopReason::ByUser,
            StopReason::ByAdmin,
            StopReason::StopAll,
            StopReason::ByTeacher,
            StopReason::Idle { minutes: 61 },
            StopReason::IdleReported,
            StopReason::MaxAge { hours: 8 },
            StopReason::OutOfMemory {
                detail: "exited with code 137 (out of memory)".into(),
            },
            StopReason::Crashed {
                detail: "exited with code 2".into(),
            },
            StopReason::Gone,
            StopReason::Removed,
            StopReason::StartTimeout { seconds: 300 },
            StopReason::ImageUnavailable {
                detail: "image a:b is not available: manifest unknown".into(),
            },
            StopReason::StartCancelled,
            StopReason::StopFailed {
                detail: "container runtime error: busy".into(),
            },
            StopReason::Failed {
                detail: "the desktop could not be started: no: colons: here".into(),
            },
        ]
    }

    #[test]
    fn the_stored_form_reads_back_as_the_same_reason() {
        for reason in every_kind() {
            assert_eq!(StopReason::from_stored(&reason.code()), reason, "{}", reason.code());
        }
        assert_eq!(StopReason::ByUser.code(), "user");
        assert_eq!(StopReason::StopAll.code(), "admin:all");
        assert_eq!(StopReason::Idle { minutes: 61 }.code(), "idle:61");
    }

    /// The English account is the technical text; read as an old row it is the same reason,
    /// so a database written before the codes reads as if it had codes.
    #[test]
    fn old_free_text_rows_map_to_their_reason() {
        for reason in every_kind() {
            assert_eq!(StopReason::from_stored(&reason.to_string()), reason, "{reason}");
        }
        let cases = [
            ("stopped by its user", StopReason::ByUser),
            ("stopped by an administrator", StopReason::ByAdmin),
            ("stopped by an administrator (stop all)", StopReason::StopAll),
            ("idle for 61 minutes", StopReason::Idle { minutes: 61 }),
            ("idle (reported by the desktop)", StopReason::IdleReported),
            ("reached the maximum age of 8 hours", StopReason::MaxAge { hours: 8 }),
            (
                "the desktop did not answer within 300 seconds",
                StopReason::StartTimeout { seconds: 300 },
            ),
            ("the container is gone", StopReason::Gone),
            ("the container was removed", StopReason::Removed),
            (
                "Exited (137) 2 minutes ago",
                StopReason::Crashed {
                    detail: "Exited (137) 2 minutes ago".into(),
                },
            ),
            (
                "out of memory",
                StopReason::OutOfMemory {
                    detail: "out of memory".into(),
                },
            ),
            (
                "something odd",
                StopReason::Failed {
                    detail: "something odd".into(),
                },
            ),
        ];
        for (text, reason) in cases {
            assert_eq!(StopReason::from_stored(text), reason, "{text}");
        }
    }

    #[test]
    fn the_english_account_is_unchanged() {
        assert_eq!(StopReason::ByAdmin.to_string(), "stopped by an administrator");
        assert_eq!(
            StopReason::MaxAge { hours: 8 }.to_string(),
            "reached the maximum age of 8 hours"
        );
        assert_eq!(
            serde_json::to_value(StopReason::IdleReported).ok(),
            Some(serde_json::json!("idle (reported by the desktop)"))
        );
    }

    #[test]
    fn the_owner_stops_by_user_anyone_else_by_admin() {
        // Accounts, not ids: "alice-fake" stays alice's after a rename.
        assert_eq!(StopReason::stopped_by_account("u1", "u1"), StopReason::ByUser);
        assert_eq!(StopReason::stopped_by_account("u2", "u1"), StopReason::ByAdmin);
    }

    #[test]
    fn the_runtimes_typed_exits_keep_their_words_as_detail() {
        let oom = StopReason::from_exit(&ExitReason::OutOfMemory { code: Some(137) });
        assert!(matches!(&oom, StopReason::OutOfMemory { detail } if detail == "exited with code 137 (out of memory)"));
        let crash = StopReason::from_exit(&ExitReason::Exited { code: Some(2) });
        assert!(matches!(&crash, StopReason::Crashed { detail } if detail == "exited with code 2"));
        assert!(matches!(
            StopReason::from_exit(&ExitReason::NeverStarted),
            StopReason::Failed { .. }
        ));
        let start = RuntimeError::Exited {
            name: "c".into(),
            reason: ExitReason::OutOfMemory { code: Some(137) },
        };
        assert!(matches!(
            StopReason::from_start_error(&start),
            StopReason::OutOfMemory { .. }
        ));
        let image = RuntimeError::Image {
            image: "i".into(),
            reason: "no".into(),
        };
        assert!(matches!(
            StopReason::from_start_error(&image),
            StopReason::ImageUnavailable { .. }
        ));
    }
}
