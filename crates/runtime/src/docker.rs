//! The `docker` backend: one Kasm container per desktop on a Docker engine, driven with bollard.
//!
//! Everything the portal needs after a restart is written into the containers' labels (desktop
//! id, user, type, instance, port, scheme), so [`DockerRuntime::observe`] rebuilds the state from
//! the engine alone. Passwords are never labels: the portal keeps them in its store, and the
//! engine only sees them as `VNC_PW` in the container's environment.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerStateStatusEnum, ContainerSummary,
    ContainerSummaryStateEnum, EventMessage, HostConfig, Mount, MountType, NetworkCreateRequest, PortBinding,
    RestartPolicy, RestartPolicyNameEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, DownloadFromContainerOptionsBuilder,
    EventsOptionsBuilder, ListContainersOptionsBuilder, ListVolumesOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveVolumeOptions, StatsOptionsBuilder, StopContainerOptionsBuilder,
};
use futures_util::stream::{self, BoxStream, StreamExt};
use secrecy::ExposeSecret;

use crate::{
    ContainerRuntime, DesktopSpec, Endpoint, ExitReason, ObservedDesktop, Progress, ProgressSink, ResourceStats,
    RunningDesktop, RuntimeError, RuntimeEvent, VolumeMount, valid_id,
};

/// Portal instance that owns a container, volume or network.
pub const LABEL_INSTANCE: &str = "org.iserv-remote-desktop.instance";
/// Desktop id (`/desktop/{id}/`).
pub const LABEL_DESKTOP_ID: &str = "org.iserv-remote-desktop.desktop-id";
/// Username of the desktop's owner.
pub const LABEL_USER: &str = "org.iserv-remote-desktop.user";
/// Desktop type key.
pub const LABEL_TYPE: &str = "org.iserv-remote-desktop.type";
/// Port the desktop serves on inside the container, so `observe()` needs no spec.
pub const LABEL_PORT: &str = "org.iserv-remote-desktop.port";
/// The owner's role when the container was made (`student`, `teacher`, `admin`).
pub const LABEL_ROLE: &str = "org.iserv-remote-desktop.role";
/// Hash of everything the container was made from ([`DockerRuntime::fingerprint`]); a stopped
/// container whose hash differs from the current spec's is re-created on its next start.
pub const LABEL_SPEC: &str = "org.iserv-remote-desktop.spec";
/// Bumped whenever [`DockerRuntime::create_body`] changes what it asks of the engine (limits,
/// capabilities, networks), so containers made by an older portal are re-created with it.
const CREATE_VERSION: u32 = 2;
/// Docker's bridge option that, set to `false`, drops traffic between containers on the bridge.
const ICC_OPTION: &str = "com.docker.network.bridge.enable_icc";
/// Names the bridge's host interface, so the host's firewall can match desktops' traffic.
const BRIDGE_NAME_OPTION: &str = "com.docker.network.bridge.name";
/// Prefix of the desktop networks' host interfaces (`irdb-` + 10 hex digits; Linux allows 15
/// characters): one firewall rule `-i irdb-+` matches them all.
pub const BRIDGE_PREFIX: &str = "irdb-";
/// Memory for a desktop whose type sets none: enough for a browser and an IDE.
const DEFAULT_MEMORY_BYTES: i64 = 4 << 30;
/// Processes and threads one desktop may have (Chromium and VS Code together use a few
/// hundred threads).
const PIDS_LIMIT: i64 = 4096;

/// `true` when the desktop serves HTTPS (Kasm does), for the same reason.
pub const LABEL_HTTPS: &str = "org.iserv-remote-desktop.https";

/// Prefix of every desktop container's name: `ird-{id}`.
pub const CONTAINER_PREFIX: &str = "ird-";

const DEFAULT_SOCKET: &str = "unix:///var/run/docker.sock";
/// bollard's own default for each request to the engine.
const ENGINE_TIMEOUT_SECS: u64 = 120;
/// `/readyz` calls ping; an engine that does not answer within this is as good as down.
const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// Kasm images shut down cleanly within a few seconds; after this Docker sends SIGKILL.
const STOP_TIMEOUT_SECS: i32 = 10;
/// A container that dies this soon after start (bad image, bad env) is reported as a failed
/// start instead of handing the portal an endpoint that never answers. Later deaths come as
/// `die` events.
const START_SETTLE: Duration = Duration::from_millis(100);
/// The engine assigns an ephemeral host port asynchronously; how long to re-inspect for it.
const HOST_PORT_WAIT: Duration = Duration::from_secs(2);
/// How long a concurrent create of the same container may take to become visible.
const CONFLICT_WAIT: Duration = Duration::from_secs(10);

/// How to reach the Docker engine and where to put desktops.
#[derive(Clone, Debug)]
pub struct DockerSettings {
    /// `None`: `DOCKER_HOST`, else `/var/run/docker.sock`. Otherwise `unix:///…`, `tcp://…` or
    /// `http://…`.
    pub host: Option<String>,
    /// Portal instance name, written into every label so several portals can share an engine.
    pub instance: String,
    /// Dedicated bridge network for desktops; created (labelled) if missing.
    pub network: String,
    /// `false` (default): reach the container at its IP on `network`. `true`: publish the
    /// desktop port on 127.0.0.1 with an ephemeral host port. Never on 0.0.0.0.
    pub publish_loopback: bool,
    /// Limit for a whole image pull.
    pub pull_timeout: Duration,
    /// Container names are `{container_prefix}{desktop id}`; names are global per engine, so
    /// portals sharing one need different prefixes.
    pub container_prefix: String,
    /// Client certificate and CA for a `tcp://` engine; required for one unless
    /// `allow_insecure_tcp` (whoever reaches an engine's plain TCP port owns its host).
    pub tls: Option<DockerTls>,
    /// Allows `tcp://`/`http://` without TLS (a lab engine on a private network).
    pub allow_insecure_tcp: bool,
    /// Most a desktop may write into its container's own file system (outside its mounts),
    /// where the storage driver can enforce it (see [`disk_limit_support`]); `None`: no limit.
    pub disk_limit_bytes: Option<i64>,
}

/// PEM files for a TLS connection to the engine (`dockerd --tlsverify`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DockerTls {
    /// CA that signed the engine's server certificate.
    pub ca: std::path::PathBuf,
    /// This client's certificate, signed by a CA the engine trusts.
    pub cert: std::path::PathBuf,
    /// This client's private key.
    pub key: std::path::PathBuf,
}

impl Default for DockerSettings {
    fn default() -> Self {
        Self {
            host: None,
            instance: "default".to_owned(),
            network: "ird-desktops".to_owned(),
            publish_loopback: false,
            pull_timeout: Duration::from_secs(15 * 60),
            container_prefix: CONTAINER_PREFIX.to_owned(),
            tls: None,
            allow_insecure_tcp: false,
            disk_limit_bytes: None,
        }
    }
}

/// Whether the engine's storage driver enforces a container's `size` storage option: btrfs,
/// zfs and devicemapper do, overlay2 only on xfs (mounted with `pquota`, which the engine
/// checks when a container is created); others (fuse-overlayfs, vfs, overlay2 on ext4) do not.
/// `driver_status` is the engine's `docker info` list of label/value pairs.
pub fn disk_limit_support(driver: &str, driver_status: &[Vec<String>]) -> Result<(), String> {
    let backing = driver_status
        .iter()
        .find(|pair| pair.first().map(String::as_str) == Some("Backing Filesystem"))
        .and_then(|pair| pair.get(1))
        .map(String::as_str)
        .unwrap_or("unknown");
    match driver {
        "btrfs" | "zfs" | "devicemapper" | "windowsfilter" => Ok(()),
        "overlay2" if backing == "xfs" => Ok(()),
        "overlay2" => Err(format!("storage driver overlay2 on {backing} (needs xfs with pquota)")),
        other => Err(format!("storage driver {other}")),
    }
}

/// Starts, stops and watches desktop containers on one Docker engine.
pub struct DockerRuntime {
    settings: DockerSettings,
    /// Effective engine address, for error messages.
    host: String,
    /// bollard refuses to build a Unix-socket client while the socket file is missing, so the
    /// client is made lazily: a portal started before the engine recovers once it is up.
    client: Mutex<Option<Docker>>,
    /// The engine (API < 1.44) does not refuse a second network of the same name, so this
    /// process creates the network only under a lock.
    network_lock: tokio::sync::Mutex<()>,
    /// The disk limit the engine enforces (`None`: none asked, or the engine cannot), learned
    /// from the engine at the first create.
    disk_limit: tokio::sync::OnceCell<Option<i64>>,
    /// The engine refused the limit at a create (overlay2 on xfs without `pquota`): no more.
    disk_limit_refused: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for DockerRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerRuntime")
            .field("host", &self.host)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl DockerRuntime {
    /// Checks the settings and prepares a client. Does not contact the engine: an engine that is
    /// down is reported by [`ContainerRuntime::ping`], not here. Only a malformed setting fails.
    pub async fn connect(settings: DockerSettings) -> Result<Self, RuntimeError> {
        let host = match &settings.host {
            Some(host) => host.trim().to_owned(),
            None => std::env::var("DOCKER_HOST")
                .ok()
                .filter(|h| !h.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_SOCKET.to_owned()),
        };
        check_host(&host, settings.tls.as_ref(), settings.allow_insecure_tcp)?;
        if !valid_name(&settings.instance) {
            return Err(RuntimeError::Invalid(format!(
                "docker instance {:?} must be 1–64 characters of a-z, A-Z, 0-9, '-', '_' or '.'",
                settings.instance
            )));
        }
        if !valid_name(&settings.network) {
            return Err(RuntimeError::Invalid(format!(
                "docker network {:?} must be 1–64 characters of a-z, A-Z, 0-9, '-', '_' or '.'",
                settings.network
            )));
        }
        let runtime = Self {
            settings,
            host,
            client: Mutex::new(None),
            network_lock: tokio::sync::Mutex::new(()),
            disk_limit: tokio::sync::OnceCell::new(),
            disk_limit_refused: std::sync::atomic::AtomicBool::new(false),
        };
        match runtime.client() {
            Ok(_) | Err(RuntimeError::Unavailable(_)) => Ok(runtime),
            Err(err) => Err(err),
        }
    }

    /// Name of a desktop's container: the prefix and the id, made valid should an id from an
    /// older portal not be.
    pub fn container_name(&self, id: &str) -> String {
        crate::safe_docker_name(&format!("{}{id}", self.settings.container_prefix))
    }

    /// The network a desktop joins: the desktop network, or its internal twin for desktops
    /// without internet access.
    pub fn network_of(&self, spec: &DesktopSpec) -> String {
        if spec.internet {
            self.settings.network.clone()
        } else {
            format!("{}-internal", self.settings.network)
        }
    }

    /// Hash of everything a container is made from, except the desktop password (never in
    /// labels, and stable per desktop anyway): image, environment, mounts, limits, network,
    /// the owner's role and [`CREATE_VERSION`].
    pub fn fingerprint(&self, spec: &DesktopSpec) -> String {
        let mounts: Vec<String> = spec
            .home
            .iter()
            .chain(&spec.mounts)
            .map(|m| format!("{}:{}:{}", m.volume, m.target, if m.read_only { "ro" } else { "rw" }))
            .chain(spec.binds.iter().map(|b| {
                format!(
                    "bind {:?}:{}:{}",
                    b.source,
                    b.target,
                    if b.read_only { "ro" } else { "rw" }
                )
            }))
            .collect();
        // Debug output quotes and escapes every string, so no two specs write the same text.
        let text = format!(
            "{CREATE_VERSION}\n{:?}\n{}\n{}\n{:?}\n{}\n{}\n{:?}\n{:?}\n{:?}\n{:?}\n{}",
            spec.image,
            spec.port,
            spec.https,
            spec.env,
            spec.shm_size_bytes,
            spec.memory_bytes.unwrap_or(DEFAULT_MEMORY_BYTES),
            spec.nano_cpus,
            mounts,
            self.network_of(spec),
            spec.owner_role,
            self.settings.publish_loopback,
        );
        crate::names::sha256_hex(&text)
    }

    /// The settings this runtime was made with.
    pub fn settings(&self) -> &DockerSettings {
        &self.settings
    }

    /// The engine address in use (`unix:///var/run/docker.sock`, `tcp://…`).
    pub fn host(&self) -> &str {
        &self.host
    }

    pub(crate) fn client(&self) -> Result<Docker, RuntimeError> {
        let mut slot = self.client.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(docker) = slot.as_ref() {
            return Ok(docker.clone());
        }
        let connected = match &self.settings.tls {
            Some(tls) => Docker::connect_with_ssl(
                &self.host,
                &tls.key,
                &tls.cert,
                &tls.ca,
                ENGINE_TIMEOUT_SECS,
                bollard::API_DEFAULT_VERSION,
            ),
            None => Docker::connect_with_host(&self.host),
        };
        match connected {
            Ok(docker) => {
                *slot = Some(docker.clone());
                Ok(docker)
            }
            Err(BollardError::SocketNotFoundError(path)) => Err(RuntimeError::Unavailable(format!(
                "cannot reach the Docker engine at {}: socket {path} does not exist",
                self.host
            ))),
            Err(err) => Err(RuntimeError::Invalid(format!(
                "docker host {:?}: {}",
                self.host,
                describe(&err)
            ))),
        }
    }

    /// Maps an engine error: connection trouble is `Unavailable`, anything else `Other`.
    pub(crate) fn engine_error(&self, err: &BollardError) -> RuntimeError {
        if is_connection_error(err) {
            RuntimeError::Unavailable(format!(
                "cannot reach the Docker engine at {}: {}",
                self.host,
                describe(err)
            ))
        } else {
            RuntimeError::Other(describe(err))
        }
    }

    /// Like [`Self::engine_error`], but engine refusals become `Start` errors.
    pub(crate) fn start_error(&self, err: &BollardError) -> RuntimeError {
        if is_connection_error(err) {
            self.engine_error(err)
        } else {
            RuntimeError::Start(describe(err))
        }
    }

    async fn inspect(&self, docker: &Docker, name: &str) -> Result<Option<ContainerInspectResponse>, RuntimeError> {
        match docker.inspect_container(name, None).await {
            Ok(info) => Ok(Some(info)),
            Err(err) if status_of(&err) == Some(404) => Ok(None),
            Err(err) => Err(self.engine_error(&err)),
        }
    }

    /// The container another request is creating under `name`. The engine reserves the name
    /// (409 for us) before the container can be inspected, so wait briefly for it.
    async fn inspect_created_elsewhere(
        &self,
        docker: &Docker,
        name: &str,
    ) -> Result<ContainerInspectResponse, RuntimeError> {
        let deadline = tokio::time::Instant::now() + CONFLICT_WAIT;
        loop {
            if let Some(info) = self.inspect(docker, name).await? {
                return Ok(info);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(RuntimeError::Start(format!(
                    "container {name} is being created by another request but did not appear within {} s",
                    CONFLICT_WAIT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Pulls `spec.image` unless the engine has it.
    async fn ensure_image(&self, docker: &Docker, image: &str, progress: &ProgressSink) -> Result<(), RuntimeError> {
        match docker.inspect_image(image).await {
            Ok(_) => return Ok(()),
            Err(err) if status_of(&err) == Some(404) => {}
            Err(err) if is_connection_error(&err) => return Err(self.engine_error(&err)),
            Err(err) => {
                return Err(RuntimeError::Image {
                    image: image.to_owned(),
                    reason: describe(&err),
                });
            }
        }
        tracing::info!(image, "image missing on the Docker engine, pulling it");
        self.pull_image(docker, image, progress).await
    }

    /// Pulls `image` with progress, within the pull timeout.
    async fn pull_image(&self, docker: &Docker, image: &str, progress: &ProgressSink) -> Result<(), RuntimeError> {
        let reference = with_default_tag(image);
        let options = CreateImageOptionsBuilder::new().from_image(&reference).build();
        let mut pull = docker.create_image(Some(options), None, None);
        let image_error = |reason: String| RuntimeError::Image {
            image: image.to_owned(),
            reason,
        };
        let pulled = tokio::time::timeout(self.settings.pull_timeout, async {
            while let Some(item) = pull.next().await {
                match item {
                    Ok(info) => {
                        let _ = progress.send(Progress::Pulling {
                            image: image.to_owned(),
                            layer: info.id,
                            status: info.status.unwrap_or_default(),
                            current: info
                                .progress_detail
                                .as_ref()
                                .and_then(|d| d.current)
                                .and_then(|n| u64::try_from(n).ok()),
                            total: info
                                .progress_detail
                                .as_ref()
                                .and_then(|d| d.total)
                                .and_then(|n| u64::try_from(n).ok()),
                        });
                    }
                    Err(err) if is_connection_error(&err) => return Err(self.engine_error(&err)),
                    Err(err) => return Err(image_error(format!("pull failed: {}", describe(&err)))),
                }
            }
            Ok(())
        })
        .await;
        match pulled {
            Ok(result) => result,
            Err(_) => Err(image_error(format!(
                "pull failed: not finished within {} s",
                self.settings.pull_timeout.as_secs()
            ))),
        }
    }

    /// Creates a desktop's network unless it exists, isolated: no traffic between the
    /// containers on it (ICC off), and for desktops without internet an internal network (no
    /// route out). The portal reaches desktops from the host's network namespace, which ICC
    /// does not restrict. An existing network that is not isolated is re-created if it is this
    /// instance's and no container runs on it (its stopped containers predate fingerprints, so
    /// they are re-created on their next start anyway), else refused: desktops must never
    /// share an open bridge.
    async fn ensure_network(&self, docker: &Docker, name: &str, internal: bool) -> Result<(), RuntimeError> {
        let _guard = self.network_lock.lock().await;
        match docker.inspect_network(name, None).await {
            Ok(network) => {
                let isolated = network
                    .options
                    .as_ref()
                    .and_then(|o| o.get(ICC_OPTION))
                    .map(String::as_str)
                    == Some("false")
                    && network.internal.unwrap_or(false) == internal;
                if isolated {
                    return Ok(());
                }
                let ours = network.labels.as_ref().and_then(|l| l.get(LABEL_INSTANCE)) == Some(&self.settings.instance);
                let unused = network.containers.as_ref().is_none_or(HashMap::is_empty);
                if !(ours && unused) {
                    return Err(RuntimeError::Start(format!(
                        "Docker network {name:?} is not isolated (it lets containers reach each other{}); \
                         desktops are not started on it. Stop its containers and remove it \
                         (`docker network rm {name}`); the portal then creates it isolated",
                        if internal { ", or is not internal" } else { "" }
                    )));
                }
                tracing::warn!(network = %name, "re-creating a desktop network made without isolation");
                match docker.remove_network(name).await {
                    Ok(()) => {}
                    Err(err) if status_of(&err) == Some(404) => {}
                    Err(err) => return Err(self.engine_error(&err)),
                }
            }
            Err(err) if status_of(&err) == Some(404) => {}
            Err(err) => return Err(self.engine_error(&err)),
        }
        tracing::info!(network = %name, internal, "creating a desktop network");
        let request = NetworkCreateRequest {
            name: name.to_owned(),
            driver: Some("bridge".to_owned()),
            internal: Some(internal),
            options: Some(HashMap::from([
                (ICC_OPTION.to_owned(), "false".to_owned()),
                (BRIDGE_NAME_OPTION.to_owned(), bridge_name(name)),
            ])),
            labels: Some(HashMap::from([(
                LABEL_INSTANCE.to_owned(),
                self.settings.instance.clone(),
            )])),
            ..Default::default()
        };
        match docker.create_network(request).await {
            Ok(_) => Ok(()),
            // Another portal on the same engine created it meanwhile.
            Err(err) if status_of(&err) == Some(409) => Ok(()),
            Err(err) => Err(self.engine_error(&err)),
        }
    }

    /// Creates a named volume with this portal's labels unless it exists.
    async fn ensure_volume(
        &self,
        docker: &Docker,
        mount: &VolumeMount,
        labels: &[(&str, &str)],
    ) -> Result<(), RuntimeError> {
        match docker.inspect_volume(&mount.volume).await {
            Ok(_) => return Ok(()),
            Err(err) if status_of(&err) == Some(404) => {}
            Err(err) => return Err(self.engine_error(&err)),
        }
        let mut all = HashMap::from([(LABEL_INSTANCE.to_owned(), self.settings.instance.clone())]);
        all.extend(labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let request = VolumeCreateRequest {
            name: Some(mount.volume.clone()),
            labels: Some(all),
            ..Default::default()
        };
        // Creating an existing volume is not an error for the engine, so a race is harmless.
        docker
            .create_volume(request)
            .await
            .map(|_| ())
            .map_err(|err| self.engine_error(&err))
    }

    /// The disk limit to ask the engine for, if the settings want one and its storage driver
    /// enforces it; said once in the log when it cannot.
    pub async fn effective_disk_limit(&self, docker: &Docker) -> Option<i64> {
        let wanted = self.settings.disk_limit_bytes?;
        if self.disk_limit_refused.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        *self
            .disk_limit
            .get_or_init(|| async {
                let info = match docker.info().await {
                    Ok(info) => info,
                    Err(err) => {
                        tracing::warn!(error = %describe(&err), "cannot ask the engine about its storage driver; desktops get no disk limit");
                        return None;
                    }
                };
                let driver = info.driver.unwrap_or_default();
                match disk_limit_support(&driver, &info.driver_status.unwrap_or_default()) {
                    Ok(()) => Some(wanted),
                    Err(why) => {
                        tracing::warn!(%why, "desktops' disk use (outside their mounts) is not limited: the engine cannot enforce it");
                        None
                    }
                }
            })
            .await
    }

    fn create_body(&self, spec: &DesktopSpec, disk_limit: Option<i64>) -> ContainerCreateBody {
        let labels = HashMap::from([
            (LABEL_INSTANCE.to_owned(), self.settings.instance.clone()),
            (LABEL_DESKTOP_ID.to_owned(), spec.id.clone()),
            (LABEL_USER.to_owned(), spec.username.clone()),
            (LABEL_TYPE.to_owned(), spec.type_key.clone()),
            (LABEL_PORT.to_owned(), spec.port.to_string()),
            (LABEL_HTTPS.to_owned(), spec.https.to_string()),
            (LABEL_ROLE.to_owned(), spec.owner_role.clone()),
            (LABEL_SPEC.to_owned(), self.fingerprint(spec)),
        ]);
        // VNC_PW last: the engine keeps the last of duplicate names, and validation already
        // refuses a type that sets it, so the password is always the portal's.
        let mut env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        env.push(format!("VNC_PW={}", spec.credentials.password.expose_secret()));
        let mounts = spec
            .home
            .iter()
            .chain(&spec.mounts)
            .map(|m| Mount {
                typ: Some(MountType::VOLUME),
                source: Some(m.volume.clone()),
                target: Some(m.target.clone()),
                read_only: Some(m.read_only),
                ..Default::default()
            })
            .chain(spec.binds.iter().map(|b| Mount {
                typ: Some(MountType::BIND),
                source: Some(b.source.display().to_string()),
                target: Some(b.target.clone()),
                read_only: Some(b.read_only),
                ..Default::default()
            }))
            .collect();
        let port_key = format!("{}/tcp", spec.port);
        // Security rule 4: never 0.0.0.0. Nothing is published by default; the compatible mode
        // binds loopback only, with a port the engine picks.
        let port_bindings = self.settings.publish_loopback.then(|| {
            HashMap::from([(
                port_key.clone(),
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".to_owned()),
                    host_port: Some(String::new()),
                }]),
            )])
        });
        ContainerCreateBody {
            image: Some(spec.image.clone()),
            env: Some(env),
            labels: Some(labels),
            exposed_ports: self.settings.publish_loopback.then(|| vec![port_key]),
            host_config: Some(HostConfig {
                shm_size: Some(spec.shm_size_bytes),
                // Contained: a memory limit always, a bound on processes and threads (a fork
                // bomb stays inside), no capabilities (Kasm images run KasmVNC as their own
                // user, uid 1000, and need none), and no way to gain privileges (setuid).
                memory: Some(spec.memory_bytes.unwrap_or(DEFAULT_MEMORY_BYTES)),
                pids_limit: Some(PIDS_LIMIT),
                cap_drop: Some(vec!["ALL".to_owned()]),
                security_opt: Some(vec!["no-new-privileges:true".to_owned()]),
                nano_cpus: spec.nano_cpus,
                mounts: Some(mounts),
                network_mode: Some(self.network_of(spec)),
                port_bindings,
                publish_all_ports: Some(false),
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::NO),
                    maximum_retry_count: None,
                }),
                init: Some(false),
                storage_opt: disk_limit.map(|bytes| HashMap::from([("size".to_owned(), bytes.to_string())])),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Continues with a container that already exists under the desktop's name.
    async fn start_existing(
        &self,
        docker: &Docker,
        spec: &DesktopSpec,
        info: ContainerInspectResponse,
        progress: &ProgressSink,
    ) -> Result<Endpoint, RuntimeError> {
        let name = self.container_name(&spec.id);
        let labels = info.config.as_ref().and_then(|c| c.labels.clone()).unwrap_or_default();
        let owner = labels.get(LABEL_INSTANCE).map(String::as_str).unwrap_or("");
        if owner != self.settings.instance {
            return Err(RuntimeError::Start(format!(
                "container {name} exists but belongs to portal instance {owner:?}, not {:?}",
                self.settings.instance
            )));
        }
        let target = Target::from_labels(&labels, spec);
        let status = info.state.as_ref().and_then(|s| s.status);
        match status {
            Some(ContainerStateStatusEnum::RUNNING) => self.endpoint_of(docker, &name, info, target).await,
            Some(ContainerStateStatusEnum::PAUSED) => {
                docker
                    .unpause_container(&name)
                    .await
                    .map_err(|err| self.start_error(&err))?;
                self.endpoint_of(docker, &name, info, target).await
            }
            Some(ContainerStateStatusEnum::CREATED | ContainerStateStatusEnum::EXITED) | None => {
                // The network may have been pruned while no desktop ran.
                self.ensure_network(docker, &self.network_of(spec), !spec.internet)
                    .await?;
                let _ = progress.send(Progress::Starting);
                self.start_and_check(docker, &name, target).await
            }
            Some(other) => Err(RuntimeError::Start(format!(
                "container {name} is {other}; try again shortly"
            ))),
        }
    }

    /// Whether `info` is this portal's stopped container made from something other than `spec`
    /// (or by a portal before fingerprints). A running one is left alone until it stops.
    fn outdated(&self, info: &ContainerInspectResponse, spec: &DesktopSpec) -> bool {
        let labels = info.config.as_ref().and_then(|c| c.labels.as_ref());
        let label = |key: &str| labels.and_then(|l| l.get(key)).map(String::as_str);
        let stopped = matches!(
            info.state.as_ref().and_then(|s| s.status),
            Some(ContainerStateStatusEnum::CREATED | ContainerStateStatusEnum::EXITED)
        );
        stopped
            && label(LABEL_INSTANCE) == Some(self.settings.instance.as_str())
            && label(LABEL_SPEC) != Some(self.fingerprint(spec).as_str())
    }

    /// Removes an outdated stopped container (its volumes stay). `Some(info)` when it cannot
    /// be removed because a concurrent start started it meanwhile: then that one is used.
    async fn remove_outdated(
        &self,
        docker: &Docker,
        name: &str,
    ) -> Result<Option<ContainerInspectResponse>, RuntimeError> {
        tracing::info!(container = %name, "re-creating a desktop container: its spec changed since it was made");
        let options = RemoveContainerOptionsBuilder::new().force(false).v(false).build();
        match docker.remove_container(name, Some(options)).await {
            Ok(()) => Ok(None),
            Err(err) if status_of(&err) == Some(404) => Ok(None),
            Err(err) if status_of(&err) == Some(409) => Ok(self.inspect(docker, name).await?),
            Err(err) => Err(self.engine_error(&err)),
        }
    }

    /// Starts the container and returns its endpoint, unless it dies at once.
    async fn start_and_check(&self, docker: &Docker, name: &str, target: Target) -> Result<Endpoint, RuntimeError> {
        match docker.start_container(name, None).await {
            Ok(()) => {}
            Err(err) if status_of(&err) == Some(404) => return Err(RuntimeError::NotFound(name.to_owned())),
            Err(err) => return Err(self.start_error(&err)),
        }
        tokio::time::sleep(START_SETTLE).await;
        let info = self
            .inspect(docker, name)
            .await?
            .ok_or_else(|| RuntimeError::Start(format!("container {name} vanished right after start")))?;
        let running = info.state.as_ref().and_then(|s| s.running).unwrap_or(false);
        if !running {
            let reason = info
                .state
                .as_ref()
                .map(stop_reason_of_state)
                .unwrap_or(ExitReason::Exited { code: None });
            return Err(RuntimeError::Exited {
                name: name.to_owned(),
                reason,
            });
        }
        self.endpoint_of(docker, name, info, target).await
    }

    /// Reads the endpoint from an inspect result, re-inspecting while the host port is pending.
    async fn endpoint_of(
        &self,
        docker: &Docker,
        name: &str,
        mut info: ContainerInspectResponse,
        target: Target,
    ) -> Result<Endpoint, RuntimeError> {
        let deadline = tokio::time::Instant::now() + HOST_PORT_WAIT;
        loop {
            if let Some(endpoint) = self.endpoint_from_inspect(&info, target) {
                return Ok(endpoint);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(RuntimeError::Start(format!(
                    "container {name} runs but has no address on network {:?}{}",
                    self.settings.network,
                    if self.settings.publish_loopback {
                        " and no port published on 127.0.0.1"
                    } else {
                        ""
                    }
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            info = self
                .inspect(docker, name)
                .await?
                .ok_or_else(|| RuntimeError::Start(format!("container {name} vanished right after start")))?;
        }
    }

    fn endpoint_from_inspect(&self, info: &ContainerInspectResponse, target: Target) -> Option<Endpoint> {
        let settings = info.network_settings.as_ref();
        let loopback = settings
            .and_then(|s| s.ports.as_ref())
            .and_then(|ports| ports.get(&format!("{}/tcp", target.port)))
            .and_then(|bindings| bindings.as_ref())
            .and_then(|bindings| {
                bindings.iter().find_map(|b| {
                    (b.host_ip.as_deref() == Some("127.0.0.1"))
                        .then(|| b.host_port.as_deref().and_then(|p| p.parse::<u16>().ok()))
                        .flatten()
                        .filter(|p| *p != 0)
                })
            });
        let ip = settings
            .and_then(|s| s.networks.as_ref())
            .and_then(|nets| self.pick_ip(nets.iter().map(|(k, v)| (k.as_str(), v.ip_address.as_deref()))));
        self.endpoint(target, ip, loopback)
    }

    fn endpoint_from_summary(&self, summary: &ContainerSummary, target: Target) -> Option<Endpoint> {
        let loopback = summary.ports.as_ref().and_then(|ports| {
            ports.iter().find_map(|p| {
                (p.private_port == target.port && p.ip.as_deref() == Some("127.0.0.1"))
                    .then_some(p.public_port)
                    .flatten()
                    .filter(|p| *p != 0)
            })
        });
        let ip = summary
            .network_settings
            .as_ref()
            .and_then(|s| s.networks.as_ref())
            .and_then(|nets| self.pick_ip(nets.iter().map(|(k, v)| (k.as_str(), v.ip_address.as_deref()))));
        self.endpoint(target, ip, loopback)
    }

    /// The IP on a desktop network, else on any network (a container made under another
    /// network setting keeps working until it is removed).
    fn pick_ip<'a>(&self, nets: impl Iterator<Item = (&'a str, Option<&'a str>)> + Clone) -> Option<String> {
        let usable = |ip: Option<&'a str>| ip.filter(|ip| !ip.is_empty()).map(str::to_owned);
        let internal = format!("{}-internal", self.settings.network);
        nets.clone()
            .find(|(name, _)| *name == self.settings.network || *name == internal)
            .and_then(|(_, ip)| usable(ip))
            .or_else(|| nets.filter_map(|(_, ip)| usable(ip)).next())
    }

    /// Prefers what the mode asks for, falls back to the other way of reaching the container.
    fn endpoint(&self, target: Target, ip: Option<String>, loopback: Option<u16>) -> Option<Endpoint> {
        let by_ip = || ip.clone().map(|host| (host, target.port));
        let by_loopback = || loopback.map(|port| ("127.0.0.1".to_owned(), port));
        let (host, port) = if self.settings.publish_loopback {
            by_loopback().or_else(by_ip)?
        } else {
            by_ip().or_else(by_loopback)?
        };
        Some(Endpoint {
            https: target.https,
            host,
            port,
            verify_tls: target.verify_tls,
        })
    }

    fn instance_filter(&self) -> HashMap<String, Vec<String>> {
        HashMap::from([(
            "label".to_owned(),
            vec![format!("{LABEL_INSTANCE}={}", self.settings.instance)],
        )])
    }
}

/// Port and scheme of a desktop, from its labels (what the container was made with) or, for
/// containers without them, from the spec.
#[derive(Clone, Copy, Debug)]
struct Target {
    port: u16,
    https: bool,
    verify_tls: bool,
}

impl Target {
    fn of_spec(spec: &DesktopSpec) -> Self {
        Self {
            port: spec.port,
            https: spec.https,
            verify_tls: spec.verify_tls,
        }
    }

    fn from_labels(labels: &HashMap<String, String>, spec: &DesktopSpec) -> Self {
        Self {
            port: labels.get(LABEL_PORT).and_then(|p| p.parse().ok()).unwrap_or(spec.port),
            https: labels
                .get(LABEL_HTTPS)
                .and_then(|p| p.parse().ok())
                .unwrap_or(spec.https),
            // TLS verification is the portal's policy, not a property of the container.
            verify_tls: spec.verify_tls,
        }
    }
}

#[async_trait]
impl ContainerRuntime for DockerRuntime {
    fn kind(&self) -> &'static str {
        "docker"
    }

    fn starts_desktops(&self) -> bool {
        true
    }

    async fn ping(&self) -> Result<(), RuntimeError> {
        let docker = self.client()?;
        match tokio::time::timeout(PING_TIMEOUT, docker.ping()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(err)) => Err(RuntimeError::Unavailable(format!(
                "cannot reach the Docker engine at {}: {}",
                self.host,
                describe(&err)
            ))),
            Err(_) => Err(RuntimeError::Unavailable(format!(
                "cannot reach the Docker engine at {}: no answer within {} s",
                self.host,
                PING_TIMEOUT.as_secs()
            ))),
        }
    }

    async fn running(&self) -> Result<Vec<RunningDesktop>, RuntimeError> {
        Ok(self
            .observe()
            .await?
            .into_iter()
            .filter_map(ObservedDesktop::into_running)
            .collect())
    }

    async fn start(&self, spec: &DesktopSpec, progress: ProgressSink) -> Result<Endpoint, RuntimeError> {
        validate_spec(spec)?;
        let docker = self.client()?;
        let name = self.container_name(&spec.id);
        if let Some(info) = self.inspect(&docker, &name).await? {
            if !self.outdated(&info, spec) {
                return self.start_existing(&docker, spec, info, &progress).await;
            }
            if let Some(info) = self.remove_outdated(&docker, &name).await? {
                return self.start_existing(&docker, spec, info, &progress).await;
            }
        }
        self.ensure_image(&docker, &spec.image, &progress).await?;
        self.ensure_network(&docker, &self.network_of(spec), !spec.internet)
            .await?;
        let owner = [
            (LABEL_DESKTOP_ID, spec.id.as_str()),
            (LABEL_USER, spec.username.as_str()),
            (LABEL_TYPE, spec.type_key.as_str()),
        ];
        if let Some(home) = &spec.home {
            self.ensure_volume(&docker, home, &owner).await?;
        }
        for mount in &spec.mounts {
            // Further mounts are shared (the school's folder): no owner labels.
            self.ensure_volume(&docker, mount, &[]).await?;
        }
        let _ = progress.send(Progress::Creating);
        tracing::info!(id = %spec.id, image = %spec.image, container = %name, "creating desktop container");
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        let disk_limit = self.effective_disk_limit(&docker).await;
        let mut created = docker
            .create_container(Some(options.clone()), self.create_body(spec, disk_limit))
            .await;
        if let Err(err) = &created
            && disk_limit.is_some()
            && describe(err).contains("storage-opt")
        {
            // overlay2 on xfs mounted without pquota: the driver says so only now.
            tracing::warn!(error = %describe(err), "the engine refused the desktops' disk limit; starting without it");
            self.disk_limit_refused
                .store(true, std::sync::atomic::Ordering::Relaxed);
            created = docker
                .create_container(Some(options), self.create_body(spec, None))
                .await;
        }
        match created {
            Ok(_) => {}
            Err(err) if status_of(&err) == Some(409) => {
                // A concurrent start of the same desktop created it first: use that one.
                let info = self.inspect_created_elsewhere(&docker, &name).await?;
                return self.start_existing(&docker, spec, info, &progress).await;
            }
            Err(err) if status_of(&err) == Some(404) => {
                return Err(RuntimeError::Image {
                    image: spec.image.clone(),
                    reason: describe(&err),
                });
            }
            Err(err) => return Err(self.start_error(&err)),
        }
        let _ = progress.send(Progress::Starting);
        self.start_and_check(&docker, &name, Target::of_spec(spec)).await
    }

    async fn stop(&self, id: &str) -> Result<(), RuntimeError> {
        let docker = self.client()?;
        let options = StopContainerOptionsBuilder::new().t(STOP_TIMEOUT_SECS).build();
        match docker.stop_container(&self.container_name(id), Some(options)).await {
            // 304 (already stopped) arrives as Ok.
            Ok(()) => Ok(()),
            Err(err) if status_of(&err) == Some(404) => Err(RuntimeError::NotFound(id.to_owned())),
            Err(err) => Err(self.engine_error(&err)),
        }
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        let docker = self.client()?;
        // Volumes stay (v=false): they are the user's files.
        let options = RemoveContainerOptionsBuilder::new().force(true).v(false).build();
        match docker.remove_container(&self.container_name(id), Some(options)).await {
            Ok(()) => Ok(()),
            // Gone already, or a concurrent removal is under way: either way it will be gone.
            Err(err) if matches!(status_of(&err), Some(404 | 409)) => Ok(()),
            Err(err) => Err(self.engine_error(&err)),
        }
    }

    async fn remove_volume(&self, name: &str) -> Result<(), RuntimeError> {
        if !valid_name(name) {
            return Err(RuntimeError::Invalid(format!("volume name {name:?} is not valid")));
        }
        let docker = self.client()?;
        let volume = match docker.inspect_volume(name).await {
            Ok(v) => v,
            Err(err) if status_of(&err) == Some(404) => return Ok(()),
            Err(err) => return Err(self.engine_error(&err)),
        };
        // Only what this portal made: a volume of the same name from elsewhere is not ours.
        if volume.labels.get(LABEL_INSTANCE) != Some(&self.settings.instance) {
            return Err(RuntimeError::Invalid(format!(
                "volume {name} was not created by this portal (label {LABEL_INSTANCE}); left alone"
            )));
        }
        match docker.remove_volume(name, None::<RemoveVolumeOptions>).await {
            Ok(()) => Ok(()),
            Err(err) if status_of(&err) == Some(404) => Ok(()),
            Err(err) => Err(self.engine_error(&err)),
        }
    }

    async fn volumes(&self, prefix: &str) -> Result<Vec<String>, RuntimeError> {
        let docker = self.client()?;
        let filters = HashMap::from([("name".to_owned(), vec![prefix.to_owned()])]);
        let options = ListVolumesOptionsBuilder::new().filters(&filters).build();
        let listed = docker
            .list_volumes(Some(options))
            .await
            .map_err(|err| self.engine_error(&err))?;
        // The engine's name filter matches anywhere in the name; a prefix is asked for.
        let mut names: Vec<String> = listed
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.name)
            .filter(|n| n.starts_with(prefix))
            .collect();
        names.sort();
        Ok(names)
    }

    async fn read_volume(
        &self,
        volume: &str,
        image: &str,
        out: tokio::sync::mpsc::Sender<bytes::Bytes>,
    ) -> Result<(), RuntimeError> {
        if !valid_name(volume) {
            return Err(RuntimeError::Invalid(format!("volume name {volume:?} is not valid")));
        }
        let docker = self.client()?;
        match docker.inspect_volume(volume).await {
            Ok(_) => {}
            Err(err) if status_of(&err) == Some(404) => return Err(RuntimeError::NotFound(volume.to_owned())),
            Err(err) => return Err(self.engine_error(&err)),
        }
        // The engine mounts a created container's volumes for archive requests; the
        // container never runs, so the image needs no shell (a kasmweb or FROM scratch one).
        let name = crate::safe_docker_name(&format!("{}volume-reader-{volume}", self.settings.container_prefix));
        let body = ContainerCreateBody {
            image: Some(image.to_owned()),
            entrypoint: Some(vec!["/ird-volume-reader-never-runs".to_owned()]),
            labels: Some(HashMap::from([(
                LABEL_INSTANCE.to_owned(),
                self.settings.instance.clone(),
            )])),
            host_config: Some(HostConfig {
                mounts: Some(vec![Mount {
                    typ: Some(MountType::VOLUME),
                    source: Some(volume.to_owned()),
                    target: Some(format!("/{volume}")),
                    read_only: Some(true),
                    ..Default::default()
                }]),
                network_mode: Some("none".to_owned()),
                cap_drop: Some(vec!["ALL".to_owned()]),
                ..Default::default()
            }),
            ..Default::default()
        };
        // A reader left behind by an interrupted run is in the way; it holds nothing.
        let remove = RemoveContainerOptionsBuilder::new().force(true).v(false).build();
        let _ = docker.remove_container(&name, Some(remove.clone())).await;
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        docker
            .create_container(Some(options), body)
            .await
            .map_err(|err| match status_of(&err) {
                Some(404) => RuntimeError::Image {
                    image: image.to_owned(),
                    reason: describe(&err),
                },
                _ => self.engine_error(&err),
            })?;
        let archive = DownloadFromContainerOptionsBuilder::new()
            .path(&format!("/{volume}"))
            .build();
        let mut chunks = Box::pin(docker.download_from_container(&name, Some(archive)));
        let mut result = Ok(());
        while let Some(chunk) = chunks.next().await {
            match chunk {
                Ok(bytes) => {
                    if out.send(bytes).await.is_err() {
                        break;
                    }
                }
                Err(err) => {
                    result = Err(self.engine_error(&err));
                    break;
                }
            }
        }
        drop(chunks);
        if let Err(err) = docker.remove_container(&name, Some(remove)).await
            && status_of(&err) != Some(404)
        {
            tracing::warn!(container = %name, error = %describe(&err), "removing a volume reader failed");
        }
        result
    }

    async fn stats(&self, id: &str) -> Result<Option<ResourceStats>, RuntimeError> {
        let docker = self.client()?;
        // Not one-shot: the engine then samples twice, about a second apart, so the reading
        // carries the previous CPU counters a percentage needs.
        let options = StatsOptionsBuilder::new().stream(false).one_shot(false).build();
        let mut readings = docker.stats(&self.container_name(id), Some(options));
        let reading = match readings.next().await {
            Some(Ok(r)) => r,
            Some(Err(err)) if status_of(&err) == Some(404) => return Ok(None),
            Some(Err(err)) => return Err(self.engine_error(&err)),
            None => return Ok(None),
        };
        let cpu = reading.cpu_stats.as_ref();
        let pre = reading.precpu_stats.as_ref();
        let total = |c: Option<&bollard::models::ContainerCpuStats>| {
            c.and_then(|c| c.cpu_usage.as_ref()).and_then(|u| u.total_usage)
        };
        let cpu_percent = match (total(cpu), total(pre), cpu.and_then(|c| c.system_cpu_usage)) {
            (Some(now), Some(before), Some(system)) => crate::stats::cpu_percent(
                now,
                before,
                system,
                pre.and_then(|p| p.system_cpu_usage).unwrap_or(0),
                cpu.and_then(|c| c.online_cpus).unwrap_or(1),
            ),
            _ => None,
        };
        let memory = reading.memory_stats.as_ref();
        Ok(Some(ResourceStats {
            cpu_percent,
            memory_bytes: memory.and_then(|m| m.usage.map(|u| crate::stats::memory_without_cache(u, m.stats.as_ref()))),
            memory_limit_bytes: memory.and_then(|m| m.limit),
        }))
    }

    async fn pull(&self, image: &str, progress: ProgressSink) -> Result<(), RuntimeError> {
        let docker = self.client()?;
        self.pull_image(&docker, image, &progress).await
    }

    async fn has_image(&self, image: &str) -> Result<bool, RuntimeError> {
        let docker = self.client()?;
        match docker.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(err) if status_of(&err) == Some(404) => Ok(false),
            Err(err) => Err(self.engine_error(&err)),
        }
    }

    async fn observe(&self) -> Result<Vec<ObservedDesktop>, RuntimeError> {
        let docker = self.client()?;
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&self.instance_filter())
            .build();
        let summaries = docker
            .list_containers(Some(options))
            .await
            .map_err(|err| self.engine_error(&err))?;
        // Only stopped containers need an inspect (exit code, OOM); a few at a time.
        let observed = stream::iter(summaries)
            .map(|summary| self.observe_one(&docker, summary))
            .buffer_unordered(8)
            .collect::<Vec<_>>()
            .await;
        let mut desktops: Vec<ObservedDesktop> = observed.into_iter().flatten().collect();
        desktops.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(desktops)
    }

    fn events(&self) -> BoxStream<'static, RuntimeEvent> {
        let Ok(docker) = self.client() else {
            // The caller re-subscribes after a pause, by which time the engine may be back.
            return Box::pin(stream::empty());
        };
        let mut filters = self.instance_filter();
        filters.insert("type".to_owned(), vec!["container".to_owned()]);
        filters.insert(
            "event".to_owned(),
            vec!["die".to_owned(), "oom".to_owned(), "destroy".to_owned()],
        );
        let options = EventsOptionsBuilder::new().filters(&filters).build();
        let host = self.host.clone();
        Box::pin(
            docker
                .events(Some(options))
                .take_while(move |item| {
                    if let Err(err) = item {
                        tracing::warn!(host = %host, error = %describe(err), "Docker event stream ended");
                    }
                    std::future::ready(item.is_ok())
                })
                .filter_map(|item| std::future::ready(item.ok().and_then(event_of))),
        )
    }
}

impl DockerRuntime {
    async fn observe_one(&self, docker: &Docker, summary: ContainerSummary) -> Option<ObservedDesktop> {
        let labels = summary.labels.clone().unwrap_or_default();
        let id = labels.get(LABEL_DESKTOP_ID)?.clone();
        let container_id = summary.id.clone()?;
        let target = Target {
            port: labels.get(LABEL_PORT).and_then(|p| p.parse().ok()).unwrap_or(6901),
            https: labels.get(LABEL_HTTPS).and_then(|p| p.parse().ok()).unwrap_or(true),
            // Not known to Docker; the portal applies its own policy (KASM_VERIFY_SSL).
            verify_tls: false,
        };
        let running = summary.state == Some(ContainerSummaryStateEnum::RUNNING);
        let (endpoint, stop_reason) = if running {
            (self.endpoint_from_summary(&summary, target), None)
        } else {
            let reason = match docker.inspect_container(&container_id, None).await {
                Ok(info) => info.state.as_ref().map(stop_reason_of_state),
                // Removed between list and inspect: it is gone, leave it out.
                Err(err) if status_of(&err) == Some(404) => return None,
                Err(_) => None,
            };
            // Docker's own summary ("Exited (1) 2 minutes ago") when inspect failed.
            (None, reason.or_else(|| summary.status.clone().map(ExitReason::Failed)))
        };
        Some(ObservedDesktop {
            id,
            username: labels.get(LABEL_USER).cloned().unwrap_or_default(),
            type_key: labels.get(LABEL_TYPE).cloned().unwrap_or_default(),
            container_id,
            running,
            endpoint,
            stop_reason,
        })
    }
}

/// `die`/`oom` → `Stopped`, `destroy` → `Removed`; the id comes from the container's label.
fn event_of(message: EventMessage) -> Option<RuntimeEvent> {
    let attributes = message.actor?.attributes.unwrap_or_default();
    let id = attributes.get(LABEL_DESKTOP_ID)?.clone();
    match message.action.as_deref()? {
        "die" => {
            let code = attributes.get("exitCode").and_then(|c| c.parse().ok());
            Some(RuntimeEvent::Stopped {
                id,
                reason: ExitReason::Exited { code },
            })
        }
        "oom" => Some(RuntimeEvent::Stopped {
            id,
            reason: ExitReason::OutOfMemory { code: None },
        }),
        "destroy" => Some(RuntimeEvent::Removed { id }),
        _ => None,
    }
}

fn stop_reason_of_state(state: &bollard::models::ContainerState) -> ExitReason {
    let code = Some(state.exit_code.unwrap_or_default());
    if state.oom_killed == Some(true) {
        return ExitReason::OutOfMemory { code };
    }
    if let Some(error) = state.error.as_deref().filter(|e| !e.is_empty()) {
        return ExitReason::Failed(error.to_owned());
    }
    match state.status {
        Some(ContainerStateStatusEnum::CREATED) => ExitReason::NeverStarted,
        Some(ContainerStateStatusEnum::PAUSED) => ExitReason::Paused,
        _ => ExitReason::Exited { code },
    }
}

pub(crate) fn validate_spec(spec: &DesktopSpec) -> Result<(), RuntimeError> {
    let invalid = |what: String| Err(RuntimeError::Invalid(format!("desktop {:?}: {what}", spec.id)));
    if !valid_id(&spec.id) {
        return invalid("id must be 1–64 characters of a-z, 0-9, '-', '_' or '.'".to_owned());
    }
    if spec.image.trim().is_empty() {
        return invalid("image is empty".to_owned());
    }
    if spec.port == 0 {
        return invalid("port 0".to_owned());
    }
    if spec.credentials.password.expose_secret().is_empty() {
        return invalid("the desktop password is empty".to_owned());
    }
    for (key, _) in &spec.env {
        if key.is_empty() || key.contains('=') || key.contains('\0') {
            return invalid(format!("environment name {key:?} is not valid"));
        }
        if key == "VNC_PW" {
            return invalid("VNC_PW is set by the portal (per-desktop password), not by the desktop type".to_owned());
        }
    }
    for mount in spec.home.iter().chain(&spec.mounts) {
        if !valid_name(&mount.volume) {
            return invalid(format!("volume name {:?} is not valid", mount.volume));
        }
        if !mount.target.starts_with('/') {
            return invalid(format!("mount target {:?} is not an absolute path", mount.target));
        }
    }
    for bind in &spec.binds {
        let source = bind.source.to_str().unwrap_or_default();
        // Docker's mount syntax would misread a comma or colon; a relative path is the
        // engine's working directory, never meant.
        if !bind.source.is_absolute() || source.is_empty() || source.contains([',', ':', '\n']) {
            return invalid(format!(
                "bind source {:?} is not an absolute path Docker can mount",
                bind.source
            ));
        }
        let in_home = bind.target == HOME || bind.target.strip_prefix(HOME).is_some_and(|t| t.starts_with('/'));
        if !in_home || bind.target.contains("/../") || bind.target.ends_with("/..") || bind.target.contains([',', ':'])
        {
            return invalid(format!("bind target {:?} is not a path inside the home", bind.target));
        }
    }
    Ok(())
}

use crate::valid_docker_name as valid_name;

/// The desktop user's home in Kasm images; every mount goes there or beneath it.
const HOME: &str = "/home/kasm-user";

/// The host interface of desktop network `network`: [`BRIDGE_PREFIX`] and a hash of the name.
fn bridge_name(network: &str) -> String {
    format!("{BRIDGE_PREFIX}{}", &crate::names::sha256_hex(network)[..10])
}

/// The engine address must be a Unix socket, or TCP with TLS client certificates: an engine's
/// plain TCP port gives root on its host to anyone who reaches it, so that needs
/// `allow_insecure_tcp` (a lab).
pub fn check_host(host: &str, tls: Option<&DockerTls>, allow_insecure_tcp: bool) -> Result<(), RuntimeError> {
    let (scheme, rest) = ["unix://", "tcp://", "http://"]
        .iter()
        .find_map(|scheme| host.strip_prefix(scheme).map(|rest| (*scheme, rest)))
        .ok_or_else(|| RuntimeError::Invalid(format!("docker host {host:?} must start with unix:// or tcp://")))?;
    if rest.is_empty() {
        return Err(RuntimeError::Invalid(format!("docker host {host:?} has no address")));
    }
    match (scheme, tls) {
        ("unix://", Some(_)) => Err(RuntimeError::Invalid(format!(
            "docker host {host:?} is a Unix socket; TLS certificates (docker.tls_ca, tls_cert, tls_key) are only for tcp://"
        ))),
        ("http://", Some(_)) => Err(RuntimeError::Invalid(format!(
            "docker host {host:?}: use tcp:// with TLS certificates, not http://"
        ))),
        ("tcp://" | "http://", None) if !allow_insecure_tcp => Err(RuntimeError::Invalid(format!(
            "docker host {host:?} is plain TCP: anyone who reaches that port controls the Docker host. \
             Set docker.tls_ca, docker.tls_cert and docker.tls_key (the engine runs with --tlsverify), \
             or docker.allow_insecure_tcp = true for a lab engine on a private network"
        ))),
        _ => Ok(()),
    }
}

/// The engine pulls every tag of a repository when none is given, so name `latest` explicitly.
fn with_default_tag(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || last.contains(':') {
        image.to_owned()
    } else {
        format!("{image}:latest")
    }
}

pub(crate) fn status_of(err: &BollardError) -> Option<u16> {
    match err {
        BollardError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

fn is_connection_error(err: &BollardError) -> bool {
    matches!(
        err,
        BollardError::HyperLegacyError { .. }
            | BollardError::HyperResponseError { .. }
            | BollardError::IOError { .. }
            | BollardError::RequestTimeoutError
            | BollardError::SocketNotFoundError(_)
    )
}

/// The engine's own message for refusals; the whole cause chain for transport errors, whose
/// top-level text ("client error (Connect)") says little.
pub(crate) fn describe(err: &BollardError) -> String {
    match err {
        BollardError::DockerResponseServerError { message, .. } => message.trim().to_owned(),
        BollardError::DockerStreamError { error } => error.trim().to_owned(),
        BollardError::RequestTimeoutError => "the engine did not answer in time".to_owned(),
        _ => {
            let mut text = err.to_string();
            let mut source = std::error::Error::source(err);
            while let Some(cause) = source {
                let cause_text = cause.to_string();
                if !text.contains(&cause_text) {
                    text.push_str(": ");
                    text.push_str(&cause_text);
                }
                source = cause.source();
            }
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_tag_is_added_only_when_missing() {
        assert_eq!(with_default_tag("kasmweb/ubuntu"), "kasmweb/ubuntu:latest");
        assert_eq!(with_default_tag("kasmweb/ubuntu:1.16"), "kasmweb/ubuntu:1.16");
        assert_eq!(with_default_tag("registry:5000/kasm"), "registry:5000/kasm:latest");
        assert_eq!(with_default_tag("a/b@sha256:00"), "a/b@sha256:00");
    }

    #[test]
    fn host_schemes() {
        let tls = DockerTls {
            ca: "/etc/ird/ca.pem".into(),
            cert: "/etc/ird/cert.pem".into(),
            key: "/etc/ird/key.pem".into(),
        };
        assert!(check_host("unix:///var/run/docker.sock", None, false).is_ok());
        assert!(check_host("tcp://docker:2376", Some(&tls), false).is_ok());
        assert!(check_host("tcp://127.0.0.1:2375", None, true).is_ok());
        assert!(check_host("http://docker:2375", None, true).is_ok());
        for (host, tls, insecure) in [
            ("tcp://127.0.0.1:2375", None, false),
            ("http://docker:2375", None, false),
            ("http://docker:2375", Some(&tls), false),
            ("unix:///var/run/docker.sock", Some(&tls), false),
            ("https://docker", None, true),
            ("unix://", None, false),
            ("/var/run/docker.sock", None, false),
        ] {
            assert!(
                matches!(check_host(host, tls, insecure), Err(RuntimeError::Invalid(_))),
                "{host} tls={} insecure={insecure}",
                tls.is_some()
            );
        }
        let Err(RuntimeError::Invalid(message)) = check_host("tcp://10.0.0.5:2375", None, false) else {
            panic!("plain tcp:// accepted");
        };
        assert!(
            message.contains("docker.tls_ca") && message.contains("allow_insecure_tcp"),
            "{message}"
        );
    }

    #[test]
    fn disk_limits_only_where_the_storage_driver_enforces_them() {
        let status = |fs: &str| vec![vec!["Backing Filesystem".to_owned(), fs.to_owned()]];
        assert_eq!(disk_limit_support("overlay2", &status("xfs")), Ok(()));
        assert_eq!(disk_limit_support("btrfs", &[]), Ok(()));
        assert_eq!(disk_limit_support("zfs", &[]), Ok(()));
        let ext4 = disk_limit_support("overlay2", &status("extfs")).expect_err("ext4 cannot");
        assert!(ext4.contains("extfs") && ext4.contains("xfs"), "{ext4}");
        let fuse = disk_limit_support("fuse-overlayfs", &status("extfs")).expect_err("fuse cannot");
        assert!(fuse.contains("fuse-overlayfs"), "{fuse}");
        assert!(
            disk_limit_support("overlay2", &[]).is_err(),
            "unknown backing: no limit claimed"
        );
    }

    #[test]
    fn bridge_names_fit_a_linux_interface_name() {
        let name = bridge_name("ird-desktops-internal");
        assert!(name.len() <= 15 && name.starts_with(BRIDGE_PREFIX), "{name}");
        assert_ne!(name, bridge_name("ird-desktops"));
    }

    #[test]
    fn events_map_to_runtime_events() {
        let event = |action: &str, attrs: &[(&str, &str)]| EventMessage {
            action: Some(action.to_owned()),
            actor: Some(bollard::models::EventActor {
                id: Some("c0ffee".to_owned()),
                attributes: Some(attrs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()),
            }),
            ..Default::default()
        };
        assert_eq!(
            event_of(event("die", &[(LABEL_DESKTOP_ID, "alice-ubuntu"), ("exitCode", "137")])),
            Some(RuntimeEvent::Stopped {
                id: "alice-ubuntu".to_owned(),
                reason: ExitReason::Exited { code: Some(137) }
            })
        );
        assert_eq!(
            event_of(event("oom", &[(LABEL_DESKTOP_ID, "a")])),
            Some(RuntimeEvent::Stopped {
                id: "a".to_owned(),
                reason: ExitReason::OutOfMemory { code: None }
            })
        );
        assert_eq!(
            event_of(event("destroy", &[(LABEL_DESKTOP_ID, "a")])),
            Some(RuntimeEvent::Removed { id: "a".to_owned() })
        );
        assert_eq!(event_of(event("die", &[("exitCode", "0")])), None);
        assert_eq!(event_of(event("start", &[(LABEL_DESKTOP_ID, "a")])), None);
    }

    #[test]
    fn oom_stop_reason_names_the_cause() {
        let state = bollard::models::ContainerState {
            status: Some(ContainerStateStatusEnum::EXITED),
            exit_code: Some(137),
            oom_killed: Some(true),
            ..Default::default()
        };
        assert_eq!(
            stop_reason_of_state(&state).to_string(),
            "exited with code 137 (out of memory)"
        );
        let state = bollard::models::ContainerState {
            oom_killed: Some(false),
            exit_code: Some(2),
            status: Some(ContainerStateStatusEnum::EXITED),
            ..Default::default()
        };
        assert_eq!(stop_reason_of_state(&state).to_string(), "exited with code 2");
    }
}
