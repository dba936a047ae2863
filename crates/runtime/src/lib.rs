//! Where desktops run: the [`ContainerRuntime`] trait and its backends.
//!
//! The runtime knows nothing of HTTP. It reports what runs and where it can be reached; the
//! portal turns that into proxy routes.

mod docker;
mod names;
mod static_hosts;
mod stats;
mod swarm;

use std::fmt;

use async_trait::async_trait;
use secrecy::SecretString;

pub use docker::{
    BRIDGE_PREFIX, CONTAINER_PREFIX, DockerRuntime, DockerSettings, DockerTls, LABEL_DESKTOP_ID, LABEL_HTTPS,
    LABEL_INSTANCE, LABEL_PORT, LABEL_ROLE, LABEL_SPEC, LABEL_TYPE, LABEL_USER, check_host as check_docker_host,
    disk_limit_support,
};
pub use names::{safe_docker_name, safe_id, valid_docker_name};
pub use static_hosts::{StaticDesktop, StaticRuntime, valid_id};
pub use stats::ResourceStats;
pub use swarm::{SwarmRuntime, SwarmSettings};

/// How a desktop is reached on the network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `http` or `https`.
    pub https: bool,
    pub host: String,
    pub port: u16,
    pub verify_tls: bool,
}

/// Credentials for the desktop's Basic Auth.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: SecretString,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Who may use a desktop: usernames and group names (admins always may).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Audience {
    pub users: Vec<String>,
    pub groups: Vec<String>,
}

/// A desktop the runtime knows to be running.
#[derive(Clone, Debug)]
pub struct RunningDesktop {
    /// URL id (`/desktop/{id}/`).
    pub id: String,
    pub name: String,
    pub endpoint: Endpoint,
    pub credentials: Option<Credentials>,
    pub audience: Audience,
}

/// A volume mounted into a desktop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeMount {
    /// Docker volume name (created with this portal's labels if missing).
    pub volume: String,
    /// Path inside the container.
    pub target: String,
    pub read_only: bool,
}

/// A directory of the engine's host mounted into a desktop (users' files under the files
/// root: the home, the shared folder, class folders). The source must exist; the portal
/// creates it first, owned by the desktop's user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindMount {
    /// Absolute path on the engine's host.
    pub source: std::path::PathBuf,
    /// Path inside the container.
    pub target: String,
    pub read_only: bool,
}

/// Everything needed to create (or restart) one user's desktop of one type.
#[derive(Clone, Debug)]
pub struct DesktopSpec {
    /// Desktop id (`{username}-{type}`); the container is named `ird-{id}`.
    pub id: String,
    pub username: String,
    pub type_key: String,
    pub image: String,
    /// Port the desktop serves on inside the container (Kasm: 6901).
    pub port: u16,
    pub https: bool,
    pub verify_tls: bool,
    /// Extra environment from the desktop type.
    pub env: Vec<(String, String)>,
    /// Set as `VNC_PW`; the Basic Auth password the proxy injects.
    pub credentials: Credentials,
    pub shm_size_bytes: i64,
    pub memory_bytes: Option<i64>,
    /// CPU limit in units of 10⁻⁹ CPUs (Docker's NanoCpus).
    pub nano_cpus: Option<i64>,
    /// A named volume as the user's home at `/home/kasm-user`; `None` when the home is a
    /// directory of the host in `binds` (the portal's files root: what `/files` shows).
    pub home: Option<VolumeMount>,
    /// Further named volumes.
    pub mounts: Vec<VolumeMount>,
    /// Host directories: the user's home, the shared folder, her class folders (read-only
    /// for students). Docker mounts a parent before what lies beneath it.
    pub binds: Vec<BindMount>,
    /// `false` (exam types): the desktop joins an internal network and reaches nothing outside.
    pub internet: bool,
    /// The owner's role (`student`, `teacher`, `admin`). Part of what the container was made
    /// from: a changed role re-creates it, so a demoted teacher loses write access at once.
    pub owner_role: String,
}

/// One step of starting a desktop, for live progress.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Progress {
    /// The image is not on this host and is being pulled.
    Pulling {
        image: String,
        layer: Option<String>,
        status: String,
        current: Option<u64>,
        total: Option<u64>,
    },
    Creating,
    Starting,
}

/// Receives progress; cheap to clone.
pub type ProgressSink = tokio::sync::mpsc::UnboundedSender<Progress>;

/// What the runtime sees of a desktop container carrying this portal's labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedDesktop {
    pub id: String,
    pub username: String,
    pub type_key: String,
    pub container_id: String,
    pub running: bool,
    /// Where to reach it, when running.
    pub endpoint: Option<Endpoint>,
    /// Why it stopped, when not running (exit code, OOM).
    pub stop_reason: Option<ExitReason>,
}

impl ObservedDesktop {
    /// The route the portal rebuilds for it, when it runs. The portal keeps the passwords
    /// (labels never carry them), and the owner is the one user its labels name.
    pub fn into_running(self) -> Option<RunningDesktop> {
        if !self.running {
            return None;
        }
        Some(RunningDesktop {
            name: self.id.clone(),
            id: self.id,
            endpoint: self.endpoint?,
            credentials: None,
            audience: Audience {
                users: vec![self.username],
                groups: Vec::new(),
            },
        })
    }
}

/// A change the runtime noticed by itself (a container died, was OOM-killed, removed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuntimeEvent {
    Stopped { id: String, reason: ExitReason },
    Removed { id: String },
}

/// Why a desktop's container is not running, as the runtime saw it. Typed, so the portal
/// never has to read it back from words; `Display` gives the technical English account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExitReason {
    /// The kernel's OOM killer ended it (exit code if known).
    OutOfMemory { code: Option<i64> },
    /// Its main process exited (exit code if known).
    Exited { code: Option<i64> },
    /// The runtime reports an error for it (e.g. a failed mount).
    Failed(String),
    /// Created but never started.
    NeverStarted,
    /// Paused.
    Paused,
}

impl std::fmt::Display for ExitReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitReason::OutOfMemory { code: Some(code) } => write!(f, "exited with code {code} (out of memory)"),
            ExitReason::OutOfMemory { code: None } => f.write_str("out of memory"),
            ExitReason::Exited { code: Some(code) } => write!(f, "exited with code {code}"),
            ExitReason::Exited { code: None } => f.write_str("exited"),
            ExitReason::Failed(error) => write!(f, "failed: {error}"),
            ExitReason::NeverStarted => f.write_str("created, never started"),
            ExitReason::Paused => f.write_str("paused"),
        }
    }
}

/// Errors from a runtime backend.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("the container runtime is unreachable: {0}")]
    Unavailable(String),
    #[error("desktop {0} is not known to this runtime")]
    NotFound(String),
    #[error("this runtime cannot {0}")]
    Unsupported(&'static str),
    #[error("invalid desktop definition: {0}")]
    Invalid(String),
    #[error("image {image} is not available: {reason}")]
    Image { image: String, reason: String },
    #[error("the desktop could not be started: {0}")]
    Start(String),
    /// The container stopped right after its start.
    #[error("the desktop could not be started: container {name} {reason}")]
    Exited { name: String, reason: ExitReason },
    #[error("container runtime error: {0}")]
    Other(String),
}

/// A place desktops run: pre-existing hosts, Docker, later Swarm or Kubernetes.
#[async_trait]
pub trait ContainerRuntime: Send + Sync {
    /// Short name for logs and `/readyz`.
    fn kind(&self) -> &'static str;
    /// Is the backend reachable?
    async fn ping(&self) -> Result<(), RuntimeError>;
    /// Every desktop that runs now, to rebuild routes after a restart.
    async fn running(&self) -> Result<Vec<RunningDesktop>, RuntimeError>;

    /// Whether desktops are started on demand (Docker) or exist already (static).
    fn starts_desktops(&self) -> bool {
        false
    }

    /// Creates and starts the desktop, or starts the stopped container of the same id, or
    /// returns the running one. Pulls the image first if it is missing. Does not wait for
    /// the desktop's web server: the portal probes that over HTTP.
    async fn start(&self, spec: &DesktopSpec, progress: ProgressSink) -> Result<Endpoint, RuntimeError> {
        let _ = (spec, progress);
        Err(RuntimeError::Unsupported("start desktops"))
    }

    /// Stops the container, keeping it and its files.
    async fn stop(&self, id: &str) -> Result<(), RuntimeError> {
        let _ = id;
        Err(RuntimeError::Unsupported("stop desktops"))
    }

    /// Removes the container; the user's home volume stays.
    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        let _ = id;
        Err(RuntimeError::Unsupported("remove desktops"))
    }

    /// Removes the named volume (a deleted user's home, after its retention). `Ok` if it is
    /// gone already; refused for a volume this portal instance did not create, or one still in
    /// use by a container.
    async fn remove_volume(&self, name: &str) -> Result<(), RuntimeError> {
        let _ = name;
        Err(RuntimeError::Unsupported("remove volumes"))
    }

    /// Names of the engine's volumes that start with `prefix` (home volumes of an older
    /// version, to be moved into the files root), sorted. Runtimes without volumes have none.
    async fn volumes(&self, prefix: &str) -> Result<Vec<String>, RuntimeError> {
        let _ = prefix;
        Ok(Vec::new())
    }

    /// Sends the content of volume `volume` to `out` as a tar stream, read through a container
    /// created (never started) from `image` with the volume mounted and removed afterwards.
    /// Entries are named `volume/…`. Stops early, without error, when `out` is closed.
    async fn read_volume(
        &self,
        volume: &str,
        image: &str,
        out: tokio::sync::mpsc::Sender<bytes::Bytes>,
    ) -> Result<(), RuntimeError> {
        let _ = (volume, image, out);
        Err(RuntimeError::Unsupported("read volumes"))
    }

    /// All containers carrying this portal instance's labels, running or not.
    async fn observe(&self) -> Result<Vec<ObservedDesktop>, RuntimeError> {
        Ok(Vec::new())
    }

    /// CPU and memory use of a running desktop, read once. `Ok(None)` when this runtime does not
    /// report resource use (static desktops) or the desktop does not run.
    async fn stats(&self, id: &str) -> Result<Option<ResourceStats>, RuntimeError> {
        let _ = id;
        Ok(None)
    }

    /// Pulls `image` (again, even if present, to fetch a newer build of its tag), reporting
    /// progress as starts do.
    async fn pull(&self, image: &str, progress: ProgressSink) -> Result<(), RuntimeError> {
        let _ = (image, progress);
        Err(RuntimeError::Unsupported("pull images"))
    }

    /// Whether `image` is there without pulling (a locally built desktop image, say).
    /// Runtimes without images of their own have none.
    async fn has_image(&self, image: &str) -> Result<bool, RuntimeError> {
        let _ = image;
        Ok(false)
    }

    /// Changes noticed by the runtime; the stream ends when the runtime connection is lost
    /// (the caller re-subscribes after a pause).
    fn events(&self) -> futures_util::stream::BoxStream<'static, RuntimeEvent> {
        Box::pin(futures_util::stream::empty())
    }
}
