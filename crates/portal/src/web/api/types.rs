//! The JSON API's vocabulary: every response body and server-sent event payload as a type,
//! the source of both the wire format and the OpenAPI schemas (`/api/openapi.json`).
//!
//! Fields are declared in alphabetical order on purpose: these bodies used to be built with
//! `serde_json::json!`, whose objects serialize their keys sorted, and the pages' scripts and
//! tests have only ever seen that order. Keeping it makes the typed bodies byte-identical.

use crate::domain::stop_reason::StopReason;
use std::collections::BTreeMap;

use desktop_runtime::{Progress, ResourceStats};
use portal_store::{Desktop, DesktopState, DesktopType};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::domain::lifecycle::{StartEvent, launch_url};

/// The session's CSRF token, required on every call that changes something.
// Documentation only: handlers read the header through `auth::check_csrf`.
#[derive(IntoParams)]
#[into_params(names("X-CSRF-Token"), parameter_in = Header)]
#[allow(dead_code)]
pub(crate) struct Csrf(
    /// The `csrf-token` meta tag of any portal page of this session.
    String,
);

/// A desktop's id.
// Documentation only, as are the other parameter types: handlers take `Path<String>`.
#[derive(IntoParams)]
#[into_params(names("id"), parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct DesktopId(
    /// `{username}-{type}`, as it was when the desktop was created.
    String,
);

/// A desktop type's key.
#[derive(IntoParams)]
#[into_params(names("key"), parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct TypeKey(
    /// As in `/api/desktop-types`.
    String,
);

/// The body of every failed API call.
// `web/error.rs` renders it.
#[derive(Serialize, ToSchema)]
pub(crate) struct ErrorResponse {
    pub(crate) error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ErrorDetail {
    /// Stable, for scripts: `unauthorized`, `csrf`, `admin_only`, `not_found`,
    /// `desktop_not_found`, `bad_request`, `limit_user`, …
    #[schema(example = "not_found")]
    pub(crate) code: &'static str,
    /// Technical detail (English), when there is any.
    pub(crate) detail: Option<String>,
    /// For people, in the request's language.
    pub(crate) message: String,
}

/// Where a desktop is in its life cycle.
// Its own type (not the store's) so the schema lives in the web layer; the exhaustive `From`
// makes a new store state a compile error here rather than an undocumented value.
#[derive(Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StateName {
    Starting,
    Running,
    Stopping,
    Stopped,
    Failed,
}

impl From<DesktopState> for StateName {
    fn from(s: DesktopState) -> Self {
        match s {
            DesktopState::Starting => StateName::Starting,
            DesktopState::Running => StateName::Running,
            DesktopState::Stopping => StateName::Stopping,
            DesktopState::Stopped => StateName::Stopped,
            DesktopState::Failed => StateName::Failed,
        }
    }
}

/// A desktop; never its password.
#[derive(Serialize, ToSchema)]
pub(crate) struct DesktopView {
    /// Unix seconds, like every timestamp here.
    created_at: i64,
    /// Server-sent events of this desktop: its state, then each start step.
    #[schema(example = "/api/desktops/anna-debian/events")]
    events_url: String,
    #[schema(example = "anna-debian")]
    id: String,
    /// Last keyboard or mouse input.
    last_activity_at: Option<i64>,
    /// Where the desktop's web client opens.
    launch_url: String,
    /// The owner's username.
    owner: String,
    started_at: Option<i64>,
    state: StateName,
    /// Why it stopped or failed, as the portal worded it (English, technical).
    state_reason: Option<String>,
    stopped_at: Option<i64>,
    /// The desktop type's key.
    #[serde(rename = "type")]
    #[schema(example = "debian")]
    type_key: String,
    /// The portal's page that shows the desktop.
    view_url: String,
}

impl From<&Desktop> for DesktopView {
    fn from(d: &Desktop) -> Self {
        DesktopView {
            created_at: d.created_at,
            events_url: format!("/api/desktops/{}/events", d.id),
            id: d.id.clone(),
            last_activity_at: d.last_activity_at,
            launch_url: launch_url(&d.id),
            owner: d.username.clone(),
            started_at: d.started_at,
            state: d.state.into(),
            // The reason in words, as before the reasons were stored as codes.
            state_reason: StopReason::of(d).map(|r| r.to_string()),
            stopped_at: d.stopped_at,
            type_key: d.type_key.clone(),
            view_url: format!("/view/{}", d.id),
        }
    }
}

/// A list of desktops.
#[derive(Serialize, ToSchema)]
pub(crate) struct DesktopList {
    pub(crate) desktops: Vec<DesktopView>,
}

/// A desktop type this user may start, texts in the request's language.
#[derive(Serialize, ToSchema)]
pub(crate) struct DesktopTypeView {
    description: String,
    /// An emoji or `/icons/{key}` for an uploaded icon; empty for none.
    icon: String,
    /// Seconds without input before the desktop stops; 0 = never.
    idle_timeout_secs: i64,
    #[schema(example = "debian")]
    key: String,
    name: String,
}

impl DesktopTypeView {
    pub(crate) fn new(t: &DesktopType, lang: &str) -> Self {
        DesktopTypeView {
            description: t.description(lang).to_owned(),
            icon: t.icon.clone(),
            idle_timeout_secs: t.idle_timeout_secs,
            key: t.key.clone(),
            name: t.name(lang).to_owned(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub(crate) struct DesktopTypeList {
    pub(crate) desktop_types: Vec<DesktopTypeView>,
}

/// The answer to "stop all".
#[derive(Serialize, ToSchema)]
pub(crate) struct StoppedCount {
    /// How many desktops were stopped.
    pub(crate) stopped: usize,
}

/// The answer to "remove stopped desktops".
#[derive(Serialize, ToSchema)]
pub(crate) struct RemovedCount {
    /// How many stopped desktops were removed (homes are kept).
    pub(crate) removed: usize,
}

/// The answer to ending a user's sessions.
#[derive(Serialize, ToSchema)]
pub(crate) struct EndedSessions {
    /// How many sessions were ended.
    pub(crate) ended: u64,
    pub(crate) username: String,
}

/// An image pull began (or was already running).
#[derive(Serialize, ToSchema)]
pub(crate) struct PullStarted {
    /// Server-sent events of the pull's progress.
    #[schema(example = "/api/admin/desktop-types/debian/pull/events")]
    pub(crate) events_url: String,
}

/// CPU and memory of one running desktop; fields the runtime does not report are null.
#[derive(Serialize, ToSchema)]
pub(crate) struct StatsView {
    /// Share of one CPU, in percent (200 = two CPUs busy).
    cpu_percent: Option<f64>,
    /// Memory in use, without the page cache.
    memory_bytes: Option<u64>,
    /// The container's memory limit (the host's memory when unlimited).
    memory_limit_bytes: Option<u64>,
}

impl From<ResourceStats> for StatsView {
    fn from(s: ResourceStats) -> Self {
        let ResourceStats {
            cpu_percent,
            memory_bytes,
            memory_limit_bytes,
        } = s;
        StatsView {
            cpu_percent,
            memory_bytes,
            memory_limit_bytes,
        }
    }
}

/// Resource use of the running desktops.
#[derive(Serialize, ToSchema)]
pub(crate) struct StatsResponse {
    /// By desktop id; a desktop whose runtime reports nothing is left out.
    // A `BTreeMap`: the ids come sorted, as they did before this was typed.
    pub(crate) stats: BTreeMap<String, StatsView>,
}

/// A desktop's state as the pages show it, texts in the request's language (event `desktop`
/// of `/api/events`, and each entry of its `snapshot`).
#[derive(Serialize, ToSchema)]
pub(crate) struct DesktopStatus {
    pub(crate) id: String,
    /// Last input, else start, else stop (unix seconds).
    pub(crate) last_used: Option<i64>,
    /// "5 minutes ago", …
    pub(crate) last_used_text: Option<String>,
    /// Why it stopped or failed, as the portal worded it (English, technical).
    pub(crate) reason: Option<String>,
    /// The reason in words a student understands, when the portal knows it.
    pub(crate) reason_text: Option<String>,
    /// A state name, or `none` when the desktop was removed.
    #[schema(example = "running")]
    pub(crate) state: &'static str,
    pub(crate) state_text: String,
    #[serde(rename = "type")]
    pub(crate) type_key: String,
    pub(crate) view_url: String,
}

/// Event `snapshot` of `/api/events`: every desktop the stream covers.
#[derive(Serialize, ToSchema)]
pub(crate) struct Snapshot {
    pub(crate) desktops: Vec<DesktopStatus>,
}

/// One step of a start (event `progress` of `/api/desktops/{id}/events`), or of an image pull
/// (the runtime's steps `pulling`, `creating`, `starting`).
// The web layer's copy of the lifecycle's and the runtime's step types: the `From` below
// names every variant and field, so a change there fails to compile until this (and the
// schema) follows. Field order is theirs, which is what the wire has always carried.
#[derive(Serialize, ToSchema)]
#[serde(tag = "step", rename_all = "snake_case")]
pub(crate) enum StartStep {
    /// More desktops start at once than `limits.max_concurrent_starts`: waiting for its turn,
    /// at `position` (from 1) of `of` waiting starts; sent again whenever that changes.
    Queued {
        position: usize,
        of: usize,
    },
    /// The image is not on this host and is being pulled.
    Pulling {
        image: String,
        layer: Option<String>,
        /// The engine's words ("Downloading", "Extracting", …).
        status: String,
        /// Bytes of this layer so far.
        current: Option<u64>,
        total: Option<u64>,
    },
    Creating,
    Starting,
    /// The container runs; waiting until its web server answers.
    Waiting {
        seconds: u64,
    },
    /// The desktop answers; the last step.
    Ready {
        launch_url: String,
    },
    /// The start failed; the last step.
    Failed {
        reason: String,
    },
}

impl From<&Progress> for StartStep {
    fn from(p: &Progress) -> Self {
        match p.clone() {
            Progress::Pulling {
                image,
                layer,
                status,
                current,
                total,
            } => StartStep::Pulling {
                image,
                layer,
                status,
                current,
                total,
            },
            Progress::Creating => StartStep::Creating,
            Progress::Starting => StartStep::Starting,
        }
    }
}

impl From<&StartEvent> for StartStep {
    fn from(e: &StartEvent) -> Self {
        match e {
            StartEvent::Queued { position, of } => StartStep::Queued {
                position: *position,
                of: *of,
            },
            StartEvent::Waiting { seconds } => StartStep::Waiting { seconds: *seconds },
            StartEvent::Ready { launch_url } => StartStep::Ready {
                launch_url: launch_url.clone(),
            },
            StartEvent::Failed { reason } => StartStep::Failed {
                reason: reason.to_string(),
            },
            StartEvent::Runtime(p) => p.into(),
        }
    }
}

/// Event `done` of a pull.
#[derive(Serialize, ToSchema)]
pub(crate) struct PullDone {
    pub(crate) image: String,
}

/// Event `failed` of a pull.
#[derive(Serialize, ToSchema)]
pub(crate) struct PullFailed {
    /// What the runtime said (English, technical).
    pub(crate) reason: String,
}

/// Event `idle`: no pull of this type runs; the stream ends.
#[derive(Serialize, ToSchema)]
pub(crate) struct PullIdle {}

/// The payloads of `/api/desktops/{id}/events`, told apart by the event's name: `state` (a
/// desktop) first, then `progress` steps until `ready` or `failed`.
// Documentation only, as are the other `…Event` unions: the handlers send each payload type
// under its event name. Untagged, so the schema is a plain `oneOf` of the payloads.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(crate) enum DesktopEvent {
    State(DesktopView),
    Progress(StartStep),
}

/// One teacher's message to one of the user's groups (event `class_messages`).
#[derive(Serialize, ToSchema)]
pub(crate) struct ClassMessageView {
    #[schema(example = "5a")]
    pub(crate) group: String,
    /// Plain text (at most 500 characters); pages show it as text, never as HTML.
    pub(crate) body: String,
    /// The teacher's display name.
    pub(crate) author: String,
    /// Unix seconds; not shown from then on.
    pub(crate) expires_at: i64,
}

/// Event `class_messages` of `/api/events`: every current message to the user's groups, sent
/// whenever one of them is set, replaced or cleared (and at the start, if there are any).
#[derive(Serialize, ToSchema)]
pub(crate) struct ClassMessages {
    pub(crate) messages: Vec<ClassMessageView>,
}

/// The payloads of `/api/events`, told apart by the event's name: a `snapshot`, then a
/// `desktop` (status) per change; `class_messages` when a teacher's message to one of the
/// user's groups changes.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(crate) enum LiveEvent {
    Snapshot(Snapshot),
    Desktop(DesktopStatus),
    ClassMessages(ClassMessages),
}

/// The payloads of a pull's events, told apart by the event's name: `progress` steps, then
/// `done` or `failed`; `idle` alone when no pull runs.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(crate) enum PullEvent {
    Progress(StartStep),
    Done(PullDone),
    Failed(PullFailed),
    Idle(PullIdle),
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;
    use serde_json::json;

    use super::*;

    fn desktop() -> Desktop {
        Desktop {
            id: "anna-debian".into(),
            user_id: "u1".into(),
            username: "anna".into(),
            type_key: "debian".into(),
            vnc_password: SecretString::from("secret"),
            state: DesktopState::Stopped,
            state_reason: Some("idle for 61 minutes".into()),
            container_id: Some("c1".into()),
            host: None,
            port: None,
            created_at: 100,
            started_at: Some(200),
            stopped_at: Some(300),
            last_activity_at: None,
        }
    }

    /// The typed body is the very bytes the `json!` it replaced produced.
    #[test]
    fn desktop_view_is_the_old_json_byte_for_byte() {
        let d = desktop();
        let old = json!({
            "id": d.id,
            "type": d.type_key,
            "owner": d.username,
            "state": d.state,
            "state_reason": StopReason::of(&d).map(|r| r.to_string()),
            "launch_url": launch_url(&d.id),
            "view_url": format!("/view/{}", d.id),
            "events_url": format!("/api/desktops/{}/events", d.id),
            "created_at": d.created_at,
            "started_at": d.started_at,
            "stopped_at": d.stopped_at,
            "last_activity_at": d.last_activity_at,
        });
        let new = serde_json::to_string(&DesktopView::from(&d)).expect("serializes");
        assert_eq!(new, old.to_string());
        assert!(!new.contains("secret"));
    }

    #[test]
    fn start_steps_serialize_as_the_lifecycle_does() {
        let events = [
            StartEvent::Queued { position: 2, of: 7 },
            StartEvent::Runtime(Progress::Pulling {
                image: "i".into(),
                layer: Some("l".into()),
                status: "Downloading".into(),
                current: Some(1),
                total: None,
            }),
            StartEvent::Runtime(Progress::Creating),
            StartEvent::Waiting { seconds: 3 },
            StartEvent::Ready {
                launch_url: "/desktop/x/".into(),
            },
            StartEvent::Failed {
                reason: StopReason::StartCancelled,
            },
        ];
        for e in &events {
            assert_eq!(
                serde_json::to_string(&StartStep::from(e)).expect("serializes"),
                serde_json::to_string(e).expect("serializes")
            );
        }
    }
}
