//! Desktop lifecycle: start with live progress (waiting in the fair start queue beyond the
//! starts that may run at once), stop, remove, limits, reconciling with the runtime at start
//! and on its events, and stopping idle or old desktops.
//!
//! The store is the truth for who owns what; the runtime is the truth for what runs. Routes
//! (the proxy's in-memory table) follow the runtime.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use desktop_proxy::{BasicAuth, Proxy, RouteTable, Scheme, Target};
use desktop_runtime::{
    BindMount, ContainerRuntime, Credentials, DesktopSpec, Endpoint, Progress, RuntimeError, RuntimeEvent,
};
use futures_util::StreamExt as _;
use portal_store::{Desktop, DesktopState, DesktopType, Role, Store, StoreError, User};
use serde::Serialize;
use tokio::sync::{broadcast, watch};
use tracing::{info, warn};

use crate::config::Config;
use crate::domain::progress::{Progress as Steps, Step};
use crate::domain::start_queue::{Entry, Place, QueueError, StartQueue, Ticket};
use crate::domain::stop_reason::StopReason;

/// One step of a start, as sent to the browser over server-sent events.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum StartEvent {
    /// Waiting for its turn in the start queue: `position` (from 1) of `of` waiting starts.
    Queued {
        position: usize,
        of: usize,
    },
    /// The container runs; waiting until its web server answers.
    Waiting {
        seconds: u64,
    },
    Ready {
        launch_url: String,
    },
    Failed {
        /// Serialised as its English account, as the page shows it.
        reason: StopReason,
    },
    /// The runtime's own steps (`pulling`, `creating`, `starting`), which carry their `step` tag.
    #[serde(untagged)]
    Runtime(Progress),
}

impl Step for StartEvent {
    /// Every start step is one `progress` event; its `step` field tells them apart.
    fn name(&self) -> &'static str {
        "progress"
    }

    fn is_last(&self) -> bool {
        matches!(self, StartEvent::Ready { .. } | StartEvent::Failed { .. })
    }
}

/// The steps of one start so far, and the channel for the ones to come.
pub type StartProgress = Steps<StartEvent>;

/// Steps kept for late subscribers of a start.
const HISTORY: usize = 256;

/// Why a lifecycle action was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("unknown desktop type {0:?}")]
    UnknownType(String),
    #[error("desktop type {0:?} is disabled")]
    TypeDisabled(String),
    #[error("desktop type {0:?} is not available to this user")]
    TypeNotAllowed(String),
    #[error("at most {limit} running desktops per user")]
    LimitUser { limit: i64 },
    #[error("at most {limit} running desktops in total")]
    LimitTotal { limit: i64 },
    #[error("{waiting} desktop starts are waiting already; try again in a minute")]
    StartQueueFull { waiting: usize },
    #[error("another desktop of this user is starting; one start at a time")]
    StartInFlight,
    #[error("desktop {0:?} not found")]
    NotFound(String),
    #[error("desktop belongs to someone else")]
    Forbidden,
    #[error("this portal runs only pre-existing desktops")]
    Unsupported,
    #[error("the home folder holds {used_mib} MiB, more than its quota of {quota_mib} MiB")]
    HomeOverQuota { used_mib: u64, quota_mib: u64 },
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Starts, stops and watches desktops.
pub struct Lifecycle {
    store: Store,
    runtime: Arc<dyn ContainerRuntime>,
    routes: Arc<RouteTable>,
    proxy: Proxy,
    config: Arc<Config>,
    /// Places of the starts that run at once, and the line of those waiting for one.
    starts: StartQueue,
    /// Live progress of starts in flight, by desktop id.
    progress: Mutex<HashMap<String, Arc<StartProgress>>>,
    /// Starts in flight by desktop id: whose, and how to cancel them (a stop does).
    in_flight: Arc<Mutex<HashMap<String, InFlight>>>,
    /// Held while the limits are counted and a start is claimed, so that concurrent requests
    /// cannot all pass the count before any of them is recorded.
    claiming: tokio::sync::Mutex<()>,
    /// Start durations by outcome go here.
    metrics: Arc<crate::telemetry::metrics::Metrics>,
    /// Every state change, for the pages' live view (`GET /api/events`).
    pub(crate) changes: crate::domain::events::Changes,
    /// Students' hand-in folders for their desktops; none without it.
    handins: Option<Arc<super::handins::Handins>>,
    /// Users' homes, whose quota a start checks; none without it.
    files: Option<Arc<super::files::FileSpaces>>,
}

/// A start in flight.
struct InFlight {
    user_id: String,
    /// Set to `true` to cancel; closed once the start has ended and let go of its permit.
    cancel: Arc<watch::Sender<bool>>,
}

/// Removes a start from [`Lifecycle::in_flight`] when it ends, however it ends.
struct InFlightEntry {
    map: Arc<Mutex<HashMap<String, InFlight>>>,
    id: String,
}

impl Drop for InFlightEntry {
    fn drop(&mut self) {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.id);
    }
}

/// Someone other than the owner who asked for a start: a teacher preparing the lesson. The
/// audit entries of the start name them as its actor.
#[derive(Clone, Debug)]
pub struct OnBehalf {
    /// The username of whoever asked.
    pub actor: String,
    /// What for, in English, for the audit log ("prepared the lesson of group 5a").
    pub why: String,
}

/// How long a stop waits for the start it cancelled to let go (of Docker calls in flight).
const CANCEL_WAIT: Duration = Duration::from_secs(15);

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The id of `username`'s desktop of type `type_key` when it is first created. Only for
/// creating one (and naming one not created yet): an existing desktop keeps the id it was
/// created with, even after a rename, so look those up in the store. A username that is long
/// or has characters ids do not allow gives a readable id with a hash suffix.
pub fn desktop_id(username: &str, type_key: &str) -> String {
    desktop_runtime::safe_id(&format!("{username}-{type_key}"))
}

/// The launch URL of a desktop: the trailing slash and `path=` make the Kasm client connect
/// its WebSocket under the desktop's own prefix instead of the origin's `/websockify`.
pub fn launch_url(id: &str) -> String {
    format!("/desktop/{id}/?path=desktop/{id}/websockify")
}

impl Lifecycle {
    pub fn new(
        store: Store,
        runtime: Arc<dyn ContainerRuntime>,
        routes: Arc<RouteTable>,
        proxy: Proxy,
        config: Arc<Config>,
    ) -> Self {
        let starts = start_queue(&config, Arc::default());
        Self {
            store,
            runtime,
            routes,
            proxy,
            config,
            starts,
            progress: Mutex::new(HashMap::new()),
            in_flight: Arc::default(),
            claiming: tokio::sync::Mutex::new(()),
            metrics: Arc::default(),
            changes: crate::domain::events::Changes::default(),
            handins: None,
            files: None,
        }
    }

    /// Refuses starts while the user's home is over its quota (`home_over_quota`).
    pub fn with_home_quotas(mut self, files: Arc<super::files::FileSpaces>) -> Self {
        self.files = Some(files);
        self
    }

    /// Mounts students' hand-in folders into their desktops (`~/Abgaben`).
    pub fn with_handins(mut self, handins: Arc<super::handins::Handins>) -> Self {
        self.handins = Some(handins);
        self
    }

    /// Records start durations in the portal's metrics (instead of a private registry).
    pub fn with_metrics(mut self, metrics: Arc<crate::telemetry::metrics::Metrics>) -> Self {
        self.starts = start_queue(&self.config, metrics.clone());
        self.metrics = metrics;
        self
    }

    pub fn runtime(&self) -> &Arc<dyn ContainerRuntime> {
        &self.runtime
    }

    /// Starts `user`'s desktop of `type_key`, or returns it if it runs or is starting.
    /// Returns at once; progress follows on [`Lifecycle::subscribe`]. Beyond the starts that
    /// may run at once it waits in the start queue (its place is a `queued` step).
    pub async fn start(self: &Arc<Self>, user: &User, type_key: &str) -> Result<Desktop, LifecycleError> {
        self.start_for(user, type_key, None).await
    }

    /// A desktop writes into the home without the portal in between, so nothing stops it at
    /// the quota while it runs; its next start is refused until the user has made room (in
    /// `/files`, which still lists and deletes). A home that cannot be measured does not
    /// block a start: that is logged.
    async fn check_home_quota(&self, user: &User) -> Result<(), LifecycleError> {
        let Some(files) = &self.files else { return Ok(()) };
        match files.home_over_quota(user).await {
            Ok(None) => Ok(()),
            Ok(Some(usage)) => Err(LifecycleError::HomeOverQuota {
                used_mib: usage.used.div_ceil(super::files::MIB),
                quota_mib: usage.quota.unwrap_or_default() / super::files::MIB,
            }),
            Err(e) => {
                tracing::warn!(user = %user.username, error = %e, "could not measure the home for its quota");
                Ok(())
            }
        }
    }

    /// Where the start of desktop `id` waits in the start queue: its place (from 1) and how
    /// many wait; `None` when it does not wait.
    pub fn queue_place(&self, id: &str) -> Option<(usize, usize)> {
        self.starts.place_of(id)
    }

    /// [`Lifecycle::start`], asked for by someone else (`on_behalf`) where that is set: the
    /// desktop is the owner's, exactly as if she had started it, under her limits and rights.
    pub async fn start_for(
        self: &Arc<Self>,
        user: &User,
        type_key: &str,
        on_behalf: Option<OnBehalf>,
    ) -> Result<Desktop, LifecycleError> {
        if !self.runtime.starts_desktops() {
            return Err(LifecycleError::Unsupported);
        }
        let t = self
            .store
            .desktop_type(type_key)
            .await?
            .ok_or_else(|| LifecycleError::UnknownType(type_key.into()))?;
        let t = super::access::effective_type(&self.store, t).await?;
        if !t.enabled {
            return Err(LifecycleError::TypeDisabled(t.key));
        }
        if !super::access::may_use_type(user, &t) {
            return Err(LifecycleError::TypeNotAllowed(t.key));
        }
        let desktop = match self
            .store
            .ensure_desktop(&desktop_id(&user.username, &t.key), &user.id, &t.key)
            .await
        {
            // The name's former holder (renamed in IServ since) still has a desktop of that id.
            Err(StoreError::Conflict(_)) => {
                let id = format!(
                    "{}-{}",
                    desktop_id(&user.username, &t.key),
                    &user.id[..8.min(user.id.len())]
                );
                self.store.ensure_desktop(&id, &user.id, &t.key).await?
            }
            other => other?,
        };
        // An existing desktop keeps its id even if the username changed since.
        let id = desktop.id.clone();
        match desktop.state {
            DesktopState::Starting => return Ok(desktop),
            DesktopState::Running if self.routes.get(&id).is_some() => return Ok(desktop),
            _ => {}
        }
        // Only a new start: a running desktop is not taken away.
        self.check_home_quota(user).await?;
        // Refuse now, with a clear 503, rather than accept a start that cannot happen.
        self.runtime.ping().await?;
        let limits = &self.config.limits;
        let claiming = self.claiming.lock().await;
        let users_start = self
            .lock_in_flight()
            .iter()
            .find(|(_, f)| f.user_id == user.id)
            .map(|(other, _)| other.clone());
        if let Some(other) = users_start {
            if other == id {
                // Another tab started this very desktop a moment ago; follow that start.
                drop(claiming);
                return self.store.desktop(&id).await?.ok_or(LifecycleError::NotFound(id));
            }
            return Err(LifecycleError::StartInFlight);
        }
        let active = [DesktopState::Starting, DesktopState::Running];
        if self.store.count_desktops_in_states(Some(&user.id), &active).await? >= limits.max_running_per_user {
            return Err(LifecycleError::LimitUser {
                limit: limits.max_running_per_user,
            });
        }
        if self.store.count_desktops_in_states(None, &active).await? >= limits.max_running_total {
            return Err(LifecycleError::LimitTotal {
                limit: limits.max_running_total,
            });
        }
        // Beyond the starts that run at once: wait in line, unless the line is full.
        let turn = self.starts.enter(&id).map_err(|e| match e {
            QueueError::Full { waiting } => LifecycleError::StartQueueFull { waiting },
        })?;
        if !self.store.claim_start(&id).await? {
            // Someone else (another portal process) started it a moment ago; follow theirs.
            drop(claiming);
            return self.store.desktop(&id).await?.ok_or(LifecycleError::NotFound(id));
        }
        let (cancel, cancelled) = watch::channel(false);
        self.lock_in_flight().insert(
            id.clone(),
            InFlight {
                user_id: user.id.clone(),
                cancel: Arc::new(cancel),
            },
        );
        let entry = InFlightEntry {
            map: self.in_flight.clone(),
            id: id.clone(),
        };
        drop(claiming);
        self.changes.publish(&self.store, &id).await;
        let tx = Arc::new(StartProgress::new(HISTORY));
        self.lock_progress().insert(id.clone(), tx.clone());
        let mut spec = self.spec(&desktop, &t, user);
        spec.binds.extend(self.handin_binds(user).await);
        let this = self.clone();
        let owner_id = user.id.clone();
        tokio::spawn(async move {
            let _entry = entry;
            let mut cancelled = cancelled;
            let place = match turn {
                Entry::Now(place) => Some(place),
                Entry::Wait(ticket) => this.wait_for_turn(ticket, &tx, &mut cancelled).await,
            };
            match place {
                Some(place) => {
                    this.run_start(spec, &owner_id, tx, place, cancelled, on_behalf).await;
                }
                None => {
                    // Whoever cancelled it waits until this receiver is gone.
                    drop(cancelled);
                    this.end_cancelled(&spec.id, &tx, std::time::Instant::now()).await;
                }
            }
        });
        self.store.desktop(&id).await?.ok_or(LifecycleError::NotFound(id))
    }

    /// Waits in the start queue until this start's turn, telling the browser its place as it
    /// changes; `None` when a stop cancelled it meanwhile (it then left the line).
    async fn wait_for_turn(
        &self,
        ticket: Ticket,
        tx: &Arc<StartProgress>,
        cancelled: &mut watch::Receiver<bool>,
    ) -> Option<Place> {
        let waited = std::time::Instant::now();
        let turn = ticket.turn(|position, of| tx.emit(StartEvent::Queued { position, of }));
        let place = tokio::select! {
            place = turn => place,
            () = async { drop(cancelled.wait_for(|c| *c).await) } => None,
        };
        self.metrics.start_waited(waited.elapsed());
        place
    }

    fn lock_in_flight(&self) -> std::sync::MutexGuard<'_, HashMap<String, InFlight>> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Cancels the start of `id`, if one is in flight, and waits until it has let go of its
    /// permit and its Docker calls, so a stop really frees the start's place.
    async fn cancel_start(&self, id: &str) {
        let Some(cancel) = self.lock_in_flight().get(id).map(|f| f.cancel.clone()) else {
            return;
        };
        cancel.send_replace(true);
        if tokio::time::timeout(CANCEL_WAIT, cancel.closed()).await.is_err() {
            warn!(desktop = %id, "a cancelled start did not end in time");
        }
    }

    fn spec(&self, d: &Desktop, t: &DesktopType, user: &User) -> DesktopSpec {
        // The home and the shared folder are folders of the files root, the very ones `/files`
        // shows; the Docker volumes of older versions are only read by the migration.
        let mut binds = super::desktop_mounts::home_and_shared(&self.config, user);
        binds.extend(self.class_binds(user));
        DesktopSpec {
            id: d.id.clone(),
            username: user.username.clone(),
            type_key: t.key.clone(),
            image: t.image.clone(),
            port: t.container_port,
            https: t.protocol == "https",
            verify_tls: self.config.kasm.verify_ssl,
            env: t.env.clone(),
            credentials: Credentials {
                username: self.config.kasm.vnc_user.clone(),
                password: d.vnc_password.clone(),
            },
            shm_size_bytes: t.shm_size_bytes,
            memory_bytes: t.memory_bytes,
            nano_cpus: t.nano_cpus,
            home: None,
            mounts: Vec::new(),
            binds,
            internet: t.internet,
            owner_role: user.role.as_str().to_owned(),
        }
    }

    /// The user's class folders at `~/Klassen/<group>`: handouts, read-only for students.
    fn class_binds(&self, user: &User) -> Vec<BindMount> {
        if !self.config.files.mount_classes {
            return Vec::new();
        }
        let root = super::desktop_mounts::files_root(&self.config);
        let groups: std::collections::BTreeSet<&String> = user.groups.iter().collect();
        groups
            .into_iter()
            .map(|g| BindMount {
                source: super::files::class_dir_in(&root, g),
                target: super::files::class_mount_target(g),
                read_only: user.role == Role::Student,
            })
            .collect()
    }

    /// A student's hand-in and feedback folders (`domain::handins`), where class folders are
    /// mounted too.
    async fn handin_binds(&self, user: &User) -> Vec<BindMount> {
        match &self.handins {
            Some(h) if self.config.files.mount_classes => h.desktop_binds(user).await,
            _ => Vec::new(),
        }
    }

    async fn run_start(
        &self,
        spec: DesktopSpec,
        owner_id: &str,
        tx: Arc<StartProgress>,
        place: Place,
        mut cancelled: watch::Receiver<bool>,
        on_behalf: Option<OnBehalf>,
    ) {
        let id = spec.id.clone();
        let started = std::time::Instant::now();
        let timeout = Duration::from_secs(self.config.docker.start_timeout_secs);
        let outcome = tokio::time::timeout(timeout, self.start_and_wait(&spec, owner_id, &tx, &mut cancelled)).await;
        // A stop cancelled it: the place and the stop's wait are released here.
        if matches!(outcome, Ok(Ok(None))) {
            drop(place);
            drop(cancelled);
            self.end_cancelled(&id, &tx, started).await;
            return;
        }
        drop(place);
        let timed_out = outcome.is_err();
        let result = match outcome {
            Ok(Ok(Some(target))) => Ok(target),
            Ok(Ok(None)) => Err(StopReason::StartCancelled),
            Ok(Err(reason)) => Err(reason),
            Err(_) => Err(StopReason::StartTimeout {
                seconds: timeout.as_secs(),
            }),
        };
        // Stopped (by its user, an admin or stop-all) while it was starting: keep it stopped,
        // and leave the state `stop` recorded.
        if result.is_ok()
            && let Ok(Some(d)) = self.store.desktop(&id).await
            && d.state != DesktopState::Starting
        {
            if let Err(e) = self.runtime.stop(&id).await {
                warn!(desktop = %id, error = %e, "stopping a desktop stopped during its start failed");
            }
            tx.emit(StartEvent::Failed {
                reason: StopReason::of(&d).unwrap_or(StopReason::StartCancelled),
            });
            self.metrics
                .start_finished(crate::telemetry::metrics::StartOutcome::Cancelled, started.elapsed());
            self.lock_progress().remove(&id);
            return;
        }
        let event = match result {
            Ok(target) => {
                let (host, port) = (target.host.clone(), target.port);
                let container =
                    desktop_runtime::safe_docker_name(&format!("{}{id}", self.config.docker.container_prefix()));
                match self.store.mark_running(&id, &container, &host, port).await {
                    Ok(()) => {
                        self.routes.insert(target);
                        info!(desktop = %id, ms = started.elapsed().as_millis() as u64, "desktop ready");
                        let detail = match &on_behalf {
                            Some(b) => format!("started: {}", b.why),
                            None => "started".to_owned(),
                        };
                        crate::domain::audit::desktop_by(
                            &self.store,
                            portal_store::AuditKind::DesktopStarted,
                            &id,
                            &detail,
                            on_behalf.as_ref().map(|b| b.actor.as_str()),
                        )
                        .await;
                        StartEvent::Ready {
                            launch_url: launch_url(&id),
                        }
                    }
                    Err(e) => StartEvent::Failed {
                        reason: StopReason::Failed {
                            detail: format!("saving the desktop's state failed: {e}"),
                        },
                    },
                }
            }
            Err(reason) => {
                warn!(desktop = %id, %reason, "desktop start failed");
                crate::domain::audit::desktop_by(
                    &self.store,
                    portal_store::AuditKind::DesktopFailed,
                    &id,
                    &reason.to_string(),
                    on_behalf.as_ref().map(|b| b.actor.as_str()),
                )
                .await;
                if let Err(e) = self
                    .store
                    .mark_state(&id, DesktopState::Failed, Some(&reason.code()))
                    .await
                {
                    warn!(desktop = %id, error = %e, "could not record the failed start");
                }
                StartEvent::Failed { reason }
            }
        };
        self.changes.publish(&self.store, &id).await;
        let measured = match (&event, timed_out) {
            (StartEvent::Ready { .. }, _) => crate::telemetry::metrics::StartOutcome::Ready,
            (_, true) => crate::telemetry::metrics::StartOutcome::Timeout,
            _ => crate::telemetry::metrics::StartOutcome::Failed,
        };
        self.metrics.start_finished(measured, started.elapsed());
        tx.emit(event);
        self.lock_progress().remove(&id);
    }

    /// Ends a start that a stop cancelled (waiting in line or under way): its last step says
    /// why, in the words of the stop's reason.
    async fn end_cancelled(&self, id: &str, tx: &StartProgress, started: std::time::Instant) {
        let reason = match self.store.desktop(id).await {
            Ok(Some(d)) => StopReason::of(&d),
            _ => None,
        };
        tx.emit(StartEvent::Failed {
            reason: reason.unwrap_or(StopReason::StartCancelled),
        });
        self.metrics
            .start_finished(crate::telemetry::metrics::StartOutcome::Cancelled, started.elapsed());
        self.lock_progress().remove(id);
        info!(desktop = %id, "start cancelled by a stop");
    }

    /// Creates and starts the container, then waits until it answers; `None` when a stop
    /// cancelled it. The engine's own steps are not interrupted (a half-sent create would
    /// leave duplicates behind); the wait for the desktop to answer is.
    async fn start_and_wait(
        &self,
        spec: &DesktopSpec,
        owner_id: &str,
        tx: &Arc<StartProgress>,
        cancelled: &mut watch::Receiver<bool>,
    ) -> Result<Option<Target>, StopReason> {
        // Docker refuses to mount a missing folder: create the home, the shared, the class and
        // the hand-in folders first, owned by the desktop's user.
        let owner = portal_files::Owner {
            uid: self.config.files.uid,
            gid: self.config.files.gid,
        };
        if let Err(e) = super::desktop_mounts::prepare(&spec.binds, owner).await {
            return Err(StopReason::Failed { detail: e.to_string() });
        }
        let (ptx, mut prx) = tokio::sync::mpsc::unbounded_channel();
        let forward_tx = tx.clone();
        let forward = tokio::spawn(async move {
            while let Some(p) = prx.recv().await {
                forward_tx.emit(StartEvent::Runtime(p));
            }
        });
        let endpoint = self
            .runtime
            .start(spec, ptx)
            .await
            .map_err(|e| StopReason::from_start_error(&e));
        let _ = forward.await;
        let was_cancelled = *cancelled.borrow();
        if was_cancelled {
            self.stop_cancelled(&spec.id).await;
            return Ok(None);
        }
        let target = target_for(&spec.id, owner_id, endpoint?, Some(spec.credentials.clone()));
        let waited = std::time::Instant::now();
        let mut last_report = 0;
        loop {
            match self.proxy.probe(&target).await {
                Ok(status) if status.is_success() || status == http::StatusCode::UNAUTHORIZED => {
                    return Ok(Some(target));
                }
                _ => {}
            }
            let seconds = waited.elapsed().as_secs();
            if seconds > last_report {
                last_report = seconds;
                tx.emit(StartEvent::Waiting { seconds });
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
                // The guard `wait_for` returns must not live across the stop below.
                () = async { drop(cancelled.wait_for(|c| *c).await) } => {
                    self.stop_cancelled(&spec.id).await;
                    return Ok(None);
                }
            }
        }
    }

    /// Stops what a cancelled start got running; the stop that cancelled it may have given up
    /// waiting for it (a long pull) and found nothing to stop yet.
    async fn stop_cancelled(&self, id: &str) {
        match self.runtime.stop(id).await {
            Ok(()) | Err(RuntimeError::NotFound(_)) => {}
            Err(e) => warn!(desktop = %id, error = %e, "stopping a cancelled start failed"),
        }
    }

    /// Progress of a start in flight, if one is: the steps so far and, unless it ended, the
    /// channel for the rest.
    pub fn subscribe(&self, id: &str) -> Option<(Vec<StartEvent>, Option<broadcast::Receiver<StartEvent>>)> {
        self.lock_progress().get(id).map(|p| p.follow())
    }

    /// How a start another portal runs ends, for this portal's pages: the store's `starting`
    /// until a change (from the other portal, through `NOTIFY`) says `ready` or why it failed.
    /// The other portal's step-by-step progress is not sent across.
    pub fn follow_peer_start(&self, id: &str) -> (Vec<StartEvent>, Option<broadcast::Receiver<StartEvent>>) {
        let progress = Arc::new(StartProgress::new(2));
        let mut changes = self.changes.subscribe();
        let (store, id, tx) = (self.store.clone(), id.to_owned(), progress.clone());
        let limit = Duration::from_secs(self.config.docker.start_timeout_secs.saturating_add(30));
        tokio::spawn(async move {
            let ended = async {
                // Subscribed first: a change between the read and the wait is not missed.
                if let Ok(Some(d)) = store.desktop(&id).await
                    && d.state != DesktopState::Starting
                {
                    return (Some(d.state), StopReason::of(&d));
                }
                loop {
                    match changes.recv().await {
                        Ok(c) if c.desktop_id == id && c.state != Some(DesktopState::Starting) => {
                            return (c.state, c.reason);
                        }
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => return (None, None),
                    }
                }
            };
            let Ok((state, reason)) = tokio::time::timeout(limit, ended).await else {
                return;
            };
            tx.emit(match state {
                Some(DesktopState::Running) => StartEvent::Ready {
                    launch_url: launch_url(&id),
                },
                _ => StartEvent::Failed {
                    reason: reason.unwrap_or(StopReason::StartCancelled),
                },
            });
        });
        progress.follow()
    }

    fn lock_progress(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<StartProgress>>> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A desktop that `user` may act on (owner or admin).
    pub async fn owned(&self, user: &User, id: &str) -> Result<Desktop, LifecycleError> {
        let d = self
            .store
            .desktop(id)
            .await?
            .ok_or_else(|| LifecycleError::NotFound(id.into()))?;
        if d.user_id != user.id && user.role != Role::Admin {
            return Err(LifecycleError::Forbidden);
        }
        Ok(d)
    }

    /// Stops desktop `id` because `actor` asked: its owner, or an administrator (the reason
    /// says which, by [`StopReason::stopped_by`]).
    pub async fn stop_by(&self, actor: &User, id: &str) -> Result<(), LifecycleError> {
        let d = self.owned(actor, id).await?;
        self.stop(id, &StopReason::stopped_by(actor, &d)).await
    }

    /// Stops the desktop; container and files stay.
    pub async fn stop(&self, id: &str, reason: &StopReason) -> Result<(), LifecycleError> {
        let code = reason.code();
        self.store.mark_state(id, DesktopState::Stopping, Some(&code)).await?;
        self.changes.publish(&self.store, id).await;
        self.routes.remove(id);
        self.cancel_start(id).await;
        match self.runtime.stop(id).await {
            Ok(()) | Err(RuntimeError::NotFound(_)) => {}
            Err(e) => {
                // Still stopping in Docker's eyes is unknown; say so rather than lie "stopped".
                let failed = StopReason::StopFailed { detail: e.to_string() };
                self.store
                    .mark_state(id, DesktopState::Failed, Some(&failed.code()))
                    .await?;
                self.changes.publish(&self.store, id).await;
                return Err(e.into());
            }
        }
        self.store.mark_state(id, DesktopState::Stopped, Some(&code)).await?;
        self.changes.publish(&self.store, id).await;
        info!(desktop = %id, %reason, "desktop stopped");
        crate::domain::audit::desktop(
            &self.store,
            portal_store::AuditKind::DesktopStopped,
            id,
            &reason.to_string(),
        )
        .await;
        Ok(())
    }

    /// Removes the container and the desktop's record; the user's home volume stays.
    pub async fn remove(&self, id: &str) -> Result<(), LifecycleError> {
        self.routes.remove(id);
        let gone = self.store.desktop(id).await?;
        self.runtime.remove(id).await?;
        crate::domain::audit::desktop(
            &self.store,
            portal_store::AuditKind::DesktopRemoved,
            id,
            "container removed, home kept",
        )
        .await;
        self.store.delete_desktop(id).await?;
        if let Some(d) = &gone {
            self.changes.removed(&self.store, d).await;
        }
        info!(desktop = %id, "desktop removed");
        Ok(())
    }

    /// Stops every running desktop (admin).
    pub async fn stop_all(&self) -> Result<usize, LifecycleError> {
        let mut n = 0;
        for d in self.store.all_desktops().await? {
            if matches!(d.state, DesktopState::Running | DesktopState::Starting) {
                self.stop(&d.id, &StopReason::StopAll).await?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Removes the containers of all stopped or failed desktops (admin); homes stay.
    pub async fn cleanup_stopped(&self) -> Result<usize, LifecycleError> {
        let mut n = 0;
        for d in self.store.all_desktops().await? {
            if matches!(d.state, DesktopState::Stopped | DesktopState::Failed) {
                self.remove(&d.id).await?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Records user input (keyboard or mouse) on a desktop.
    pub async fn touch(&self, id: &str) -> Result<(), LifecycleError> {
        Ok(self.store.touch_activity(id, now()).await?)
    }

    /// Brings the store in line with the runtime: re-adopts running desktops (their routes
    /// work at once), marks vanished ones stopped, reports containers nobody knows.
    pub async fn reconcile(&self) -> Result<ReconcileReport, LifecycleError> {
        let mut report = ReconcileReport::default();
        if !self.runtime.starts_desktops() {
            return Ok(report);
        }
        let observed = self.runtime.observe().await?;
        let by_id: HashMap<&str, _> = observed.iter().map(|o| (o.id.as_str(), o)).collect();
        let known = self.store.all_desktops().await?;
        for d in &known {
            let seen = by_id.get(d.id.as_str());
            match seen {
                Some(o) if o.running && o.endpoint.is_some() => {
                    let Some(endpoint) = o.endpoint.clone() else { continue };
                    let creds = Credentials {
                        username: self.config.kasm.vnc_user.clone(),
                        password: d.vnc_password.clone(),
                    };
                    let target = target_for(&d.id, &d.user_id, endpoint, Some(creds));
                    if d.state != DesktopState::Running
                        || d.host.as_deref() != Some(&target.host)
                        || d.port != Some(target.port)
                    {
                        self.store
                            .mark_running(&d.id, &o.container_id, &target.host, target.port)
                            .await?;
                        self.changes.publish(&self.store, &d.id).await;
                    }
                    self.routes.insert(target);
                    report.adopted.push(d.id.clone());
                }
                _ if matches!(
                    d.state,
                    DesktopState::Running | DesktopState::Starting | DesktopState::Stopping
                ) && !self.lock_progress().contains_key(&d.id) =>
                {
                    let reason = seen
                        .and_then(|o| o.stop_reason.as_ref())
                        .map_or(StopReason::Gone, StopReason::from_exit);
                    self.routes.remove(&d.id);
                    self.store
                        .mark_state(&d.id, DesktopState::Stopped, Some(&reason.code()))
                        .await?;
                    self.changes.publish(&self.store, &d.id).await;
                    report.marked_stopped.push(d.id.clone());
                }
                _ => {}
            }
        }
        for o in &observed {
            if !known.iter().any(|d| d.id == o.id) {
                warn!(desktop = %o.id, container = %o.container_id, "container carries this portal's labels but is not in the database; leaving it alone");
                report.unknown.push(o.id.clone());
            }
        }
        info!(
            adopted = report.adopted.len(),
            stopped = report.marked_stopped.len(),
            unknown = report.unknown.len(),
            "reconciled desktops with the runtime"
        );
        Ok(report)
    }

    /// Applies a change another portal made (through PostgreSQL's `NOTIFY`): the route as the
    /// store now has the desktop, and the change to this portal's live pages.
    pub async fn apply_peer_change(&self, change: &crate::domain::events::PeerChange) {
        if self.changes.is_own(change) {
            return;
        }
        if change.removed {
            self.routes.remove(&change.id);
            self.changes.send_local(crate::domain::events::DesktopChange {
                user_id: change.user_id.clone(),
                desktop_id: change.id.clone(),
                type_key: change.type_key.clone(),
                state: None,
                reason: None,
                last_used: None,
            });
            return;
        }
        match self.store.desktop(&change.id).await {
            Ok(Some(d)) => {
                self.sync_route(&d).await;
                self.changes.send_local(crate::domain::events::DesktopChange::of(&d));
            }
            Ok(None) => {
                self.routes.remove(&change.id);
            }
            Err(e) => warn!(desktop = %change.id, error = %e, "reading a desktop another portal changed failed"),
        }
    }

    /// Sets every desktop's route from the store: after the notifications of the other
    /// portals may have been missed (the listener's connection broke).
    /// A desktop whose route came or went meanwhile is also told to this portal's live pages;
    /// the route of a desktop deleted meanwhile goes.
    pub async fn resync_routes(&self) -> Result<(), LifecycleError> {
        if !self.runtime.starts_desktops() {
            return Ok(());
        }
        let desktops = self.store.all_desktops().await?;
        let known: std::collections::HashSet<&str> = desktops.iter().map(|d| d.id.as_str()).collect();
        for target in self.routes.all() {
            let id = &target.desktop_id;
            if !known.contains(id.as_str()) && !self.lock_progress().contains_key(id) {
                self.routes.remove(id);
            }
        }
        for d in &desktops {
            let had = self.routes.get(&d.id).is_some();
            self.sync_route(d).await;
            if had != self.routes.get(&d.id).is_some() {
                self.changes.send_local(crate::domain::events::DesktopChange::of(d));
            }
        }
        Ok(())
    }

    /// The route of `d` as the store has it: a running desktop with an address is reachable,
    /// anything else is not. A start under way here sets its own route when it is ready.
    async fn sync_route(&self, d: &Desktop) {
        if !self.runtime.starts_desktops() || self.lock_progress().contains_key(&d.id) {
            return;
        }
        let (DesktopState::Running, Some(host), Some(port)) = (d.state, d.host.clone(), d.port) else {
            self.routes.remove(&d.id);
            return;
        };
        let https = match self.store.desktop_type(&d.type_key).await {
            Ok(Some(t)) => t.protocol == "https",
            Ok(None) => return,
            Err(e) => {
                warn!(desktop = %d.id, error = %e, "reading a desktop's type for its route failed");
                return;
            }
        };
        let endpoint = Endpoint {
            https,
            host,
            port,
            verify_tls: self.config.kasm.verify_ssl,
        };
        let creds = Credentials {
            username: self.config.kasm.vnc_user.clone(),
            password: d.vnc_password.clone(),
        };
        self.routes.insert(target_for(&d.id, &d.user_id, endpoint, Some(creds)));
    }

    /// Follows the runtime's events forever: a container that dies or is OOM-killed shows as
    /// stopped with the reason. Re-subscribes (and reconciles what it missed) after a break.
    pub async fn follow_events(self: Arc<Self>) {
        loop {
            let mut events = self.runtime.events();
            while let Some(event) = events.next().await {
                if let Err(e) = self.on_event(event).await {
                    warn!(error = %e, "handling a runtime event failed");
                }
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            if let Err(e) = self.reconcile().await {
                warn!(error = %e, "reconcile after the event stream broke failed");
            }
        }
    }

    async fn on_event(&self, event: RuntimeEvent) -> Result<(), LifecycleError> {
        let (id, reason) = match event {
            RuntimeEvent::Stopped { id, reason } => (id, StopReason::from_exit(&reason)),
            RuntimeEvent::Removed { id } => (id, StopReason::Removed),
        };
        let Some(d) = self.store.desktop(&id).await? else {
            return Ok(());
        };
        // Our own stops are recorded by `stop`; a start in flight handles its own failure.
        if matches!(d.state, DesktopState::Running) {
            self.routes.remove(&id);
            self.store
                .mark_state(&id, DesktopState::Stopped, Some(&reason.code()))
                .await?;
            self.changes.publish(&self.store, &id).await;
            info!(desktop = %id, %reason, "desktop stopped by itself");
            crate::domain::audit::desktop(
                &self.store,
                portal_store::AuditKind::DesktopStopped,
                &id,
                &reason.to_string(),
            )
            .await;
        }
        Ok(())
    }

    /// Stops desktops idle longer than their type allows, and ones older than its maximum age.
    pub async fn cull(&self) -> Result<Vec<String>, LifecycleError> {
        let types: HashMap<String, DesktopType> = self
            .store
            .list_desktop_types()
            .await?
            .into_iter()
            .map(|t| (t.key.clone(), t))
            .collect();
        let now = now();
        let mut stopped = Vec::new();
        for d in self.store.all_desktops().await? {
            if d.state != DesktopState::Running {
                continue;
            }
            let Some(t) = types.get(&d.type_key) else { continue };
            let since_input = now - d.last_activity_at.or(d.started_at).unwrap_or(now);
            let age = now - d.started_at.unwrap_or(now);
            let reason = if t.idle_timeout_secs > 0 && since_input >= t.idle_timeout_secs {
                StopReason::Idle {
                    minutes: since_input / 60,
                }
            } else if t.max_age_secs > 0 && age >= t.max_age_secs {
                StopReason::MaxAge {
                    hours: t.max_age_secs / 3600,
                }
            } else {
                continue;
            };
            info!(desktop = %d.id, %reason, "culling desktop");
            self.stop(&d.id, &reason).await?;
            stopped.push(d.id);
        }
        Ok(stopped)
    }

    /// Runs [`Lifecycle::cull`] every `limits.cull_interval_secs`.
    pub async fn run_culler(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(self.config.limits.cull_interval_secs));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = self.cull().await {
                warn!(error = %e, "culling idle desktops failed");
            }
        }
    }
}

/// The start queue `config` asks for, reporting to `metrics`.
fn start_queue(config: &Config, metrics: Arc<crate::telemetry::metrics::Metrics>) -> StartQueue {
    StartQueue::new(
        config.limits.max_concurrent_starts,
        config.limits.max_start_queue,
        metrics,
    )
}

/// What [`Lifecycle::reconcile`] did.
#[derive(Debug, Default, Clone)]
pub struct ReconcileReport {
    pub adopted: Vec<String>,
    pub marked_stopped: Vec<String>,
    pub unknown: Vec<String>,
}

/// A proxy route for a desktop at `endpoint`, owned by the user with id `owner_id` (none for
/// a static desktop: `""`).
pub fn target_for(id: &str, owner_id: &str, endpoint: Endpoint, creds: Option<Credentials>) -> Target {
    Target {
        desktop_id: id.to_owned(),
        name: id.to_owned(),
        scheme: if endpoint.https { Scheme::Https } else { Scheme::Http },
        host: endpoint.host,
        port: endpoint.port,
        verify_tls: endpoint.verify_tls,
        basic_auth: creds.map(|c| BasicAuth {
            username: c.username,
            password: c.password,
        }),
        owner_ids: [owner_id]
            .into_iter()
            .filter(|o| !o.is_empty())
            .map(str::to_owned)
            .collect(),
        usernames: Vec::new(),
        groups: Vec::new(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The browser sees one flat `step` tag, whether the step came from the runtime or not.
    #[test]
    fn start_events_serialise_with_a_flat_step_tag() {
        let json = |e: &StartEvent| serde_json::to_value(e).unwrap();
        assert_eq!(
            json(&StartEvent::Runtime(Progress::Creating)),
            serde_json::json!({"step": "creating"})
        );
        let pulling = StartEvent::Runtime(Progress::Pulling {
            image: "i".into(),
            layer: Some("l".into()),
            status: "Downloading".into(),
            current: Some(1),
            total: Some(2),
        });
        assert_eq!(
            json(&pulling),
            serde_json::json!({"step": "pulling", "image": "i", "layer": "l", "status": "Downloading", "current": 1, "total": 2})
        );
        assert_eq!(
            json(&StartEvent::Waiting { seconds: 3 }),
            serde_json::json!({"step": "waiting", "seconds": 3})
        );
        // A failure's reason is its English account, as before reasons were typed.
        assert_eq!(
            json(&StartEvent::Failed {
                reason: StopReason::StartTimeout { seconds: 300 }
            }),
            serde_json::json!({"step": "failed", "reason": "the desktop did not answer within 300 seconds"})
        );
    }
}
