//! Where desktops run: the [`ContainerRuntime`] trait and its backends.
//!
//! The runtime knows nothing of HTTP. It reports what runs and where it can be reached; the
//! portal turns that into proxy routes.

mod static_hosts;

use std::fmt;

use async_trait::async_trait;
use secrecy::SecretString;

pub use static_hosts::{StaticDesktop, StaticRuntime, valid_id};

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
}
