//! The portal's shared state: configuration, store, runtime, routes, proxy and the services
//! built on them. Built once at start ([`AppState::new`]); cheap to clone into every handler.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use desktop_proxy::{Proxy, ProxyConfig, RouteTable, Target};
use desktop_runtime::{ContainerRuntime, DockerRuntime, RunningDesktop, StaticRuntime, SwarmRuntime};
use portal_store::Store;

use crate::auth::desktop_sessions::DesktopSessions;
use crate::auth::{CookieNames, LoginLimiter, PasswordChecks};
use crate::config::{Config, RuntimeKind};
use crate::domain::{catalog, files, handins, lifecycle, pulls};
use crate::net::desktop_origin::DesktopOrigin;
use crate::net::keyed_slots::KeyedSlots;
use crate::telemetry::{metrics, metrics_listener};

/// Shared state of the portal; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Arc<Config>,
    pub store: Store,
    pub routes: Arc<RouteTable>,
    pub proxy: Proxy,
    /// Where per-user desktops run (Docker), or the static backend.
    pub runtime: Arc<dyn ContainerRuntime>,
    pub desktops: Arc<lifecycle::Lifecycle>,
    /// Lessons teachers prepared (their class's desktops started ahead of time), per group.
    pub lessons: Arc<crate::domain::lesson::Lessons>,
    /// Which groups' messages from their teachers changed, for the open event streams.
    pub class_messages: Arc<crate::domain::class_actions::ClassMessages>,
    /// Desktops on origins of their own (`desktop_origin`), or `None`: they share the portal's
    /// origin and only their owners may load them.
    pub desktop_origins: Option<DesktopOrigin>,
    /// Tickets and cookies of desktop origins, and the stop signals of every relay and event
    /// stream, tied to portal sessions.
    pub desktop_sessions: Arc<DesktopSessions>,
    /// Students' requests for help and the helpers' grants they accepted.
    pub help: Arc<crate::domain::help::Help>,
    /// Tickets of PDF previews on the preview origin (`web/preview.rs`).
    pub previews: Arc<crate::auth::preview_tickets::PreviewTickets>,
    /// The only origin allowed to open desktop WebSockets and to post forms.
    pub public_origin: String,
    /// The public URL is https (cookies get Secure and `__Host-`).
    pub https: bool,
    pub cookies: CookieNames,
    pub login_limiter: LoginLimiter,
    /// Live-update streams and desktop WebSockets open per user.
    pub event_streams: KeyedSlots<String>,
    pub websockets: KeyedSlots<String>,
    /// The bound on password checks running at once.
    pub password_checks: PasswordChecks,
    /// Audit entries of anonymous requests, at most a few per address and minute.
    pub anonymous_audit: Arc<crate::domain::audit::AnonymousAudit>,
    /// Image pulls admins started, with their live progress.
    pub pulls: Arc<pulls::Pulls>,
    /// Users' homes, the shared folder and the trash.
    pub files: Arc<files::FileSpaces>,
    /// Hand-ins sealed at their due time, and their folders in desktops.
    pub handins: Arc<handins::Handins>,
    /// Disk use per user and class for the administrators, walked at most once a minute.
    pub disk_use: crate::domain::disk_use::DiskUse,
    /// File changes per user and minute (`files.writes_per_minute`).
    pub file_writes: crate::net::rate_limit::RateLimit,
    /// Sign-in with IServ, when configured.
    pub oidc: Option<Arc<iserv_oidc::Oidc>>,
    /// Whether this portal runs the background work for all replicas (`domain::replicas`).
    pub leadership: crate::domain::replicas::Leadership,
    /// Prometheus metrics, served only on their own listener.
    pub metrics: Arc<metrics::Metrics>,
    pub(crate) metrics_listener: Option<metrics_listener::MetricsListener>,
    /// Students' screens read over RFB for their teachers, and who watches whom.
    pub screens: Arc<crate::domain::screens::Screens>,
    pub watchers: Arc<crate::domain::screens::Watchers>,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Where `/metrics` is served, when metrics are enabled.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics_listener.as_ref().map(|l| l.addr())
    }

    /// Connects the store (running migrations), sets up the runtime and the proxy, and
    /// loads the routes of desktops that already run.
    pub async fn new(config: Config) -> anyhow::Result<AppState> {
        if config.database_url.is_none() {
            std::fs::create_dir_all(&config.data_dir)
                .with_context(|| format!("creating data_dir {}", config.data_dir.display()))?;
        }
        let store = Store::connect(&config.database_url())
            .await
            .context("opening the database (setting `database_url`)")?;
        catalog::seed(&store, &config)
            .await
            .context("writing desktop types (setting `desktop_types`)")?;
        let static_runtime = StaticRuntime::new(&config.static_desktops)?;
        let runtime: Arc<dyn ContainerRuntime> = match config.runtime {
            RuntimeKind::Static => Arc::new(StaticRuntime::new(&config.static_desktops)?),
            RuntimeKind::Docker => {
                // Desktops mount homes from the files root: refuse a portal that could not
                // give them their files, rather than start desktops with unwritable homes.
                crate::domain::desktop_mounts::check_at_start(&config)
                    .context("checking that desktops can get their folders from files.root")?;
                Arc::new(
                    DockerRuntime::connect(config.docker.settings())
                        .await
                        .context("setting up the Docker runtime (section `docker`)")?,
                )
            }
            RuntimeKind::Swarm => {
                // Every node mounts the files root at the same path; the portal does not make
                // it (that would hide a missing mount on this node).
                crate::domain::desktop_mounts::check_shared_storage(&config)
                    .context("checking the files root desktops on the swarm mount (setting `files.root`)")?;
                crate::domain::desktop_mounts::check_at_start(&config)
                    .context("checking that desktops can get their folders from files.root")?;
                Arc::new(
                    SwarmRuntime::connect(config.docker_settings(), config.swarm.settings())
                        .await
                        .context("setting up the swarm runtime (sections `docker` and `swarm`)")?,
                )
            }
        };
        catalog::offer_local_desktop(&store, &config, runtime.as_ref())
            .await
            .context("offering the locally built desktop type")?;
        let p = &config.proxy;
        let proxy = Proxy::new(ProxyConfig {
            connect_timeout: Duration::from_secs(p.connect_timeout_secs),
            response_timeout: Duration::from_secs(p.response_timeout_secs),
            idle_timeout: Duration::from_secs(p.idle_timeout_secs),
            relay_buffer_size: p.relay_buffer_bytes,
        })?;
        let public_url = config.public_url();
        let https = public_url.scheme() == "https";
        let config = Arc::new(config);
        let routes = Arc::new(RouteTable::new());
        for desktop in static_runtime.running().await? {
            routes.insert(target_for(desktop));
        }
        let metrics = Arc::new(metrics::Metrics::new(proxy.relay_counters().clone()));
        let metrics_listener = metrics_listener::MetricsListener::bind(&config.metrics)?;
        let file_spaces = Arc::new(files::FileSpaces::new(&config));
        let handins = Arc::new(handins::Handins::new(store.clone(), file_spaces.clone()));
        let desktops = Arc::new(
            lifecycle::Lifecycle::new(
                store.clone(),
                runtime.clone(),
                routes.clone(),
                proxy.clone(),
                config.clone(),
            )
            .with_metrics(metrics.clone())
            .with_handins(handins.clone())
            .with_home_quotas(file_spaces.clone()),
        );
        // Routes of desktops that survived a portal restart work at once. An unreachable
        // engine is not fatal: the portal serves everything else, and the event follower
        // reconciles once the engine answers.
        if let Err(e) = desktops.reconcile().await {
            tracing::warn!(error = %e, "could not reconcile desktops with the runtime at start");
        }
        // Does not contact IServ: it may be down now and come up later.
        let oidc = iserv_oidc::Oidc::new(&config.oidc, &config.public_url(), store.clone())
            .context("setting up IServ sign-in (section `oidc`)")?;
        let desktop_origins = config.desktop_origins();
        match &desktop_origins {
            Some(o) => tracing::info!(desktop_origin = %o, "desktops are served on origins of their own"),
            None => tracing::warn!(
                "desktop_origin is not set: desktops share the portal's origin, so only their owners may \
                 open them (administrators and teachers get an explanation instead). Set desktop_origin, \
                 e.g. https://{{id}}.desktops.school.example — see docs/deployment.en.md"
            ),
        }
        let event_streams = KeyedSlots::new(config.limits.max_event_streams_per_user);
        let websockets = KeyedSlots::new(config.limits.max_websockets_per_user);
        let password_checks = PasswordChecks::new(
            config.limits.max_concurrent_password_checks,
            Duration::from_millis(config.limits.password_check_wait_ms),
        );
        let anonymous_audit = Arc::new(crate::domain::audit::AnonymousAudit::new(
            config.limits.max_anonymous_audit_per_minute,
        ));
        let file_writes = crate::net::rate_limit::RateLimit::new(config.files.writes_per_minute);
        let lessons = Arc::new(crate::domain::lesson::Lessons::new(store.clone(), desktops.clone()));
        let desktop_sessions = Arc::new(DesktopSessions::new(
            store.clone(),
            Duration::from_secs(config.proxy.ticket_ttl_secs),
        ));
        let help = Arc::new(crate::domain::help::Help::new(
            store.clone(),
            routes.clone(),
            crate::domain::help::HELP_TIME_LIMIT,
            close_helper_sessions(desktop_sessions.clone()),
        ));
        let screens = Arc::new(crate::domain::screens::Screens::new(
            proxy.clone(),
            routes.clone(),
            crate::domain::screens::ScreensConfig {
                max_sessions: config.screens.max_sessions,
                ..Default::default()
            },
        ));
        Ok(AppState(Arc::new(Inner {
            screens,
            watchers: Arc::default(),
            desktop_origins,
            desktop_sessions,
            help,
            previews: Arc::new(crate::auth::preview_tickets::PreviewTickets::new(store.clone())),
            public_origin: config.public_origin(),
            https,
            cookies: CookieNames::new(https),
            config,
            store,
            routes,
            proxy,
            runtime,
            lessons,
            desktops,
            class_messages: Arc::default(),
            login_limiter: LoginLimiter::default(),
            password_checks,
            anonymous_audit,
            event_streams,
            websockets,
            pulls: Arc::default(),
            files: file_spaces,
            handins,
            file_writes,
            disk_use: Default::default(),
            oidc,
            leadership: Default::default(),
            metrics,
            metrics_listener,
        })))
    }
}

/// Ends a helper's bindings to one desktop: its desktop-origin cookies stop working and its
/// relays close at once.
fn close_helper_sessions(sessions: Arc<DesktopSessions>) -> crate::domain::help::CloseSessions {
    Box::new(move |desktop, session_ids| {
        for session_id in session_ids {
            sessions.end(&crate::auth::desktop_sessions::Owner {
                session_id: session_id.clone(),
                desktop: Some(desktop.to_owned()),
            });
        }
    })
}

/// Turns a static desktop into a proxy route: like a container's, but shared by its
/// configured users and groups.
fn target_for(d: RunningDesktop) -> Target {
    let mut target = lifecycle::target_for(&d.id, "", d.endpoint, d.credentials);
    target.name = d.name;
    target.usernames = d.audience.users;
    target.groups = d.audience.groups;
    target
}
