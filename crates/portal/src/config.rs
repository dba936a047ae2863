//! Configuration: defaults, then a TOML file, then environment variables; validated at start.
//!
//! Environment: `IRD_<KEY>` with `__` for nesting (`IRD_PROXY__IDLE_TIMEOUT_SECS=600`), and the
//! seed project's names (`DATABASE_URI`, `KASM_VERIFY_SSL`, …) so an existing `.env` keeps
//! working. `IRD_` wins over a seed name, both win over the file.

use crate::net::desktop_origin::DesktopOrigin;
pub use iserv_oidc::{ClientAuthMethod, OidcConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use desktop_runtime::StaticDesktop;
use figment::Figment;
use figment::providers::{Env, Format as _, Serialized, Toml};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use url::Url;

/// A setting is wrong; the message names it and says what would be right.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("{0}")]
    Parse(Box<figment::Error>),
    #[error("setting `{setting}`: {message}")]
    Invalid { setting: &'static str, message: String },
    #[error("environment variable {name}: {message}")]
    Environment { name: String, message: String },
}

fn invalid(setting: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        message: message.into(),
    }
}

/// Everything the portal reads at start.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// The URL browsers use; its origin is the only one allowed to open WebSockets.
    /// Defaults to `http://{listen}`.
    pub public_url: Option<Url>,
    /// Where desktops are served: a URL template with `{id}` as the first label of the host,
    /// e.g. `https://{id}.desktops.school.example` (one wildcard DNS record and certificate).
    /// Unset: `http://{id}.localhost:<port>` when `public_url` is on loopback (dev), else
    /// desktops share the portal's origin and only their owners may load them. `off`: always
    /// share the origin (owner only).
    pub desktop_origin: Option<String>,
    /// Where the embedded database and other state live.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; defaults to SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// Accepted for compatibility with the seed's `SECRET_KEY`; sessions are server-side, so
    /// nothing is signed with it today.
    #[serde(skip_serializing)]
    pub secret_key: Option<SecretString>,
    /// How long a sign-in lasts.
    pub session_ttl_hours: u64,
    /// Minutes without any request after which a session ends; 0: only `session_ttl_hours`.
    pub session_idle_minutes: u64,
    /// Exact overrides of the two above in seconds (tests, special setups); unset normally.
    pub session_ttl_secs: Option<u64>,
    pub session_idle_secs: Option<u64>,
    /// Offer sign-in with a local username and password (the first admin, schools without
    /// IServ). Switch off in production once IServ sign-in works.
    pub local_login: bool,
    /// Sign-in with IServ (OpenID Connect); off unless `oidc.client_id` is set.
    pub oidc: OidcConfig,
    pub kasm: KasmSettings,
    pub proxy: ProxySettings,
    /// `docker` (desktops started per user on one engine), `swarm` (on a Docker Swarm; see
    /// `[swarm]`) or `static` (only `static_desktops`).
    pub runtime: RuntimeKind,
    /// The engine: with `runtime = "swarm"`, a manager node of the swarm.
    pub docker: DockerConfig,
    pub swarm: SwarmConfig,
    pub limits: Limits,
    /// What happens to deleted accounts' files.
    pub accounts: AccountSettings,
    /// Desktop types written to the database at every start (the database keeps others).
    pub desktop_types: Vec<DesktopTypeConfig>,
    pub static_desktops: Vec<StaticDesktop>,
    /// Prometheus metrics on their own listener.
    pub metrics: MetricsSettings,
    /// `text` (default) or `json`: one JSON object per log line (env `IRD_LOG_FORMAT`).
    pub log_format: LogFormat,
    /// Users' files: homes, the shared folder, the trash (`/files`).
    pub files: FilesSettings,
    /// The school's time zone (IANA name): due times are entered and shown in it.
    pub timezone: String,
    /// Teachers' views of students' screens: thumbnails and watching (`domain/screens`).
    pub screens: ScreensSettings,
}

/// Teachers' views of students' screens, read by the portal over RFB.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScreensSettings {
    /// Teachers may open a student's screen live (the student sees who watches). Off: only
    /// thumbnails on `/teacher`.
    pub watching: bool,
    /// Most desktops whose screens are read at once (each session holds the screen in memory).
    pub max_sessions: usize,
}

impl Default for ScreensSettings {
    fn default() -> Self {
        Self {
            watching: true,
            max_sessions: 128,
        }
    }
}

/// Prometheus metrics; on a separate listener so they are never public by accident.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    pub enabled: bool,
    /// Serves `GET /metrics`; loopback by default.
    pub listen: SocketAddr,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 9020)),
        }
    }
}

/// How log lines are written to standard error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    Docker,
    Swarm,
    Static,
}

impl RuntimeKind {
    /// Whether desktops run as containers of a Docker engine (one, or a swarm's nodes).
    pub fn is_docker(self) -> bool {
        matches!(self, RuntimeKind::Docker | RuntimeKind::Swarm)
    }
}

/// Desktops on a Docker Swarm (`runtime = "swarm"`): each a service with one task on an
/// attachable overlay network that the portal's container joins.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SwarmConfig {
    /// The attachable overlay network desktops and the portal share; created if missing.
    /// Desktop types without internet use `{network}-internal`, which the portal joins too.
    pub network: String,
    /// Placement constraints per desktop type key, e.g.
    /// `[swarm.placement]` `cad = ["node.labels.gpu == true"]`.
    pub placement: std::collections::BTreeMap<String, Vec<String>>,
    /// Spread desktops evenly over the values of a node label, e.g. `node.labels.rack`
    /// (the scheduler spreads over nodes by their number of tasks anyway).
    pub spread: Option<String>,
    /// Share of a desktop's memory and CPU limit reserved on its node, 1–100 %: what the
    /// scheduler counts when it decides whether a node has room.
    pub reserve_percent: u8,
}

impl Default for SwarmConfig {
    fn default() -> Self {
        Self {
            network: "ird-swarm".into(),
            placement: Default::default(),
            spread: None,
            reserve_percent: 50,
        }
    }
}

impl SwarmConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if !desktop_runtime::valid_docker_name(&self.network) {
            return Err(invalid(
                "swarm.network",
                format!(
                    "{:?} must be 1–64 characters of a-z, A-Z, 0-9, '-', '_' or '.'",
                    self.network
                ),
            ));
        }
        if !(1..=100).contains(&self.reserve_percent) {
            return Err(invalid(
                "swarm.reserve_percent",
                format!(
                    "must be 1–100 (percent of a desktop's limits), got {}",
                    self.reserve_percent
                ),
            ));
        }
        for (key, constraints) in &self.placement {
            for c in constraints {
                if !(c.contains("==") || c.contains("!=")) || c.trim().starts_with(['=', '!']) {
                    return Err(invalid(
                        "swarm.placement",
                        format!(
                            "type {key:?}: {c:?} is no swarm constraint; write e.g. \"node.labels.gpu == true\" or \"node.role != manager\""
                        ),
                    ));
                }
            }
        }
        if let Some(spread) = &self.spread
            && !(spread.starts_with("node.labels.") && spread.len() > "node.labels.".len())
        {
            return Err(invalid(
                "swarm.spread",
                format!("must name a node label such as node.labels.rack, got {spread:?}"),
            ));
        }
        Ok(())
    }

    /// What the swarm runtime is made with, besides the engine settings.
    pub fn settings(&self) -> desktop_runtime::SwarmSettings {
        desktop_runtime::SwarmSettings {
            placement: self.placement.clone().into_iter().collect(),
            spread: self.spread.clone(),
            reserve_percent: self.reserve_percent,
        }
    }
}

/// Where and how desktop containers run (seed: `DOCKER_HOST_URL`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DockerConfig {
    /// Docker engine; default: `DOCKER_HOST` or the local socket.
    pub host: Option<String>,
    /// Name of this portal in container labels; portals sharing an engine need different ones.
    pub instance: String,
    /// Dedicated network the desktops join; the portal reaches them at their address there.
    pub network: String,
    /// Publish each desktop on 127.0.0.1 with an ephemeral port instead (for portals that cannot
    /// reach container addresses). Never 0.0.0.0.
    pub publish_loopback: bool,
    /// From "start" until the desktop answers, including an image pull.
    pub start_timeout_secs: u64,
    /// The volume that held the school's shared folder before homes moved into the files root (now
    /// `files.root/shared`); read only by the migration (`migrate-volumes`). Empty: none.
    pub shared_volume: String,
    /// Where the shared folder (`files.root/shared`) appears in desktops, inside the home;
    /// teachers and admins write, students read. Empty: not in desktops.
    pub shared_mount: String,
    /// Prefix of the volumes that held homes before they moved into the files root (`{prefix}u-{account id}`,
    /// older accounts `{prefix}{username at creation}`); homes are now
    /// `files.root/homes/<home name>`. Read only by the migration, and by the purge of deleted
    /// accounts (a volume left from then goes with the account).
    pub home_volume_prefix: String,
    /// For a `tcp://` engine (`dockerd --tlsverify`): the CA that signed the engine's
    /// certificate, and this portal's client certificate and key (PEM files). All three or none.
    pub tls_ca: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Allows a `tcp://` engine without TLS. Only for a lab: whoever reaches an engine's plain
    /// TCP port controls its host.
    pub allow_insecure_tcp: bool,
    /// Most a desktop writes into its container outside its mounts (browser caches, installed
    /// packages), in MiB, where the engine's storage driver enforces it; 0: no limit.
    pub disk_limit_mib: u64,
}

/// Largest `docker.disk_limit_mib`: 1 TiB.
const MAX_DISK_LIMIT_MIB: u64 = 1024 * 1024;

impl DockerConfig {
    /// The TLS files, when all three are set (validation refuses some without the others).
    pub fn tls(&self) -> Option<desktop_runtime::DockerTls> {
        Some(desktop_runtime::DockerTls {
            ca: self.tls_ca.clone()?,
            cert: self.tls_cert.clone()?,
            key: self.tls_key.clone()?,
        })
    }

    /// `host` with TLS (all three files, readable) or a socket; plain TCP only when allowed.
    fn validate(&self) -> Result<(), ConfigError> {
        let files = [
            ("docker.tls_ca", &self.tls_ca),
            ("docker.tls_cert", &self.tls_cert),
            ("docker.tls_key", &self.tls_key),
        ];
        let set = files.iter().filter(|(_, path)| path.is_some()).count();
        if set != 0 && set != files.len() {
            let (missing, _) = files.iter().find(|(_, path)| path.is_none()).unwrap_or(&files[0]);
            return Err(invalid(
                missing,
                "must be set too: TLS to the engine needs docker.tls_ca, docker.tls_cert and docker.tls_key",
            ));
        }
        for (setting, path) in files {
            if let Some(path) = path
                && let Err(err) = std::fs::File::open(path)
            {
                return Err(invalid(setting, format!("cannot read {}: {err}", path.display())));
            }
        }
        if self.disk_limit_mib > MAX_DISK_LIMIT_MIB {
            return Err(invalid(
                "docker.disk_limit_mib",
                format!("must be at most {MAX_DISK_LIMIT_MIB} (1 TiB), or 0 for no limit"),
            ));
        }
        // The shared folder is mounted inside the home (the engine mounts nothing else).
        let m = &self.shared_mount;
        if !m.is_empty() && (!m.starts_with("/home/kasm-user/") || m.split('/').any(|c| c == ".." || c == ".")) {
            return Err(invalid(
                "docker.shared_mount",
                format!(
                    "must be a folder inside /home/kasm-user, such as /home/kasm-user/Shared (or empty: no shared folder in desktops), got {m:?}"
                ),
            ));
        }
        if let Some(host) = &self.host {
            desktop_runtime::check_docker_host(host.trim(), self.tls().as_ref(), self.allow_insecure_tcp)
                .map_err(|err| invalid("docker.host", err.to_string()))?;
        }
        Ok(())
    }

    /// What the Docker runtime is made with.
    pub fn settings(&self) -> desktop_runtime::DockerSettings {
        desktop_runtime::DockerSettings {
            host: self.host.clone(),
            instance: self.instance.clone(),
            network: self.network.clone(),
            publish_loopback: self.publish_loopback,
            pull_timeout: std::time::Duration::from_secs(self.start_timeout_secs),
            container_prefix: self.container_prefix(),
            tls: self.tls(),
            allow_insecure_tcp: self.allow_insecure_tcp,
            disk_limit_bytes: (self.disk_limit_mib > 0)
                .then(|| i64::try_from(self.disk_limit_mib << 20).unwrap_or(i64::MAX)),
        }
    }

    /// Container names are global per engine: `ird-{id}` for the default instance,
    /// `ird-{instance}-{id}` for others, so several portals can share an engine.
    pub fn container_prefix(&self) -> String {
        if self.instance == "default" {
            "ird-".into()
        } else {
            format!("ird-{}-", self.instance)
        }
    }
}

/// Limits on desktops; each refusal says which limit applied.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub max_running_per_user: i64,
    pub max_running_total: i64,
    pub max_concurrent_starts: usize,
    /// Starts that may wait for their turn beyond `max_concurrent_starts` (a whole class
    /// pressing Start at once); beyond, 503 "try again". 0: none wait.
    pub max_start_queue: usize,
    /// How often the idle and max-age culler looks.
    pub cull_interval_secs: u64,
    /// Password checks (argon2, ~19 MiB each) running at once; more sign-ins wait
    /// `password_check_wait_ms` for a slot, then get 503.
    pub max_concurrent_password_checks: usize,
    pub password_check_wait_ms: u64,
    /// Live-update streams (`/api/events`, `/api/desktops/{id}/events`) one user may hold
    /// open; 429 beyond.
    pub max_event_streams_per_user: usize,
    /// Desktop WebSockets one user may hold open; 429 beyond.
    pub max_websockets_per_user: usize,
    /// Audit entries written per client address (IPv6: per /64) and minute for things nobody
    /// signed in did (failed and refused sign-ins); beyond it they are counted, and one entry
    /// says how many more there were.
    pub max_anonymous_audit_per_minute: u32,
}

/// Deleted accounts: their desktops go at once, their files (the home volume) after a
/// retention during which an administrator can restore the account.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountSettings {
    /// Days a deleted account's home volume is kept (default 30); 0: removed by the next purge.
    pub home_retention_days: u64,
    /// Exact override of `home_retention_days` in seconds (tests, labs); unset normally.
    pub home_retention_secs: Option<u64>,
    /// How often the portal removes the homes whose retention ended.
    pub purge_interval_secs: u64,
}

impl Default for AccountSettings {
    fn default() -> Self {
        Self {
            home_retention_days: 30,
            home_retention_secs: None,
            purge_interval_secs: 3600,
        }
    }
}

/// At most ten years: longer is a typo, and the seconds must fit a timestamp.
const MAX_RETENTION_DAYS: u64 = 3650;

impl AccountSettings {
    /// How long a deleted account's files are kept.
    pub fn home_retention(&self) -> std::time::Duration {
        std::time::Duration::from_secs(
            self.home_retention_secs
                .unwrap_or(self.home_retention_days.saturating_mul(86_400)),
        )
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.home_retention_days > MAX_RETENTION_DAYS {
            return Err(invalid(
                "accounts.home_retention_days",
                format!(
                    "must be at most {MAX_RETENTION_DAYS} days, got {}",
                    self.home_retention_days
                ),
            ));
        }
        if self
            .home_retention_secs
            .is_some_and(|s| s > MAX_RETENTION_DAYS * 86_400)
        {
            return Err(invalid(
                "accounts.home_retention_secs",
                format!("must be at most {} seconds (ten years)", MAX_RETENTION_DAYS * 86_400),
            ));
        }
        if !(1..=86_400).contains(&self.purge_interval_secs) {
            return Err(invalid(
                "accounts.purge_interval_secs",
                format!("must be 1–86400 seconds, got {}", self.purge_interval_secs),
            ));
        }
        Ok(())
    }
}

/// A desktop type as written in the configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DesktopTypeConfig {
    pub key: String,
    /// The German name (required).
    pub name: String,
    /// The English name; without it English shows `name` (or `names.en`).
    pub name_en: Option<String>,
    #[serde(default)]
    pub description: String,
    pub description_en: Option<String>,
    /// Names in further languages, e.g. `names = { fr = "Bureau", uk = "…" }`. `name` and
    /// `name_en` win over `names.de` and `names.en`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub names: std::collections::BTreeMap<String, String>,
    /// Descriptions in further languages, as `names`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub descriptions: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub icon: String,
    pub image: String,
    #[serde(default = "default_port")]
    pub container_port: u16,
    pub protocol: Option<String>,
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
    #[serde(default = "default_shm")]
    pub shm_size_mib: i64,
    pub memory_mib: Option<i64>,
    pub cpus: Option<f64>,
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// `false` (exams): desktops of this type reach nothing outside; only the portal reaches them.
    #[serde(default = "default_true")]
    pub internet: bool,
    /// Minutes without keyboard or mouse input before the desktop is stopped; 0 = never.
    #[serde(default = "default_idle")]
    pub idle_timeout_minutes: i64,
    /// Hours after its start a desktop is stopped regardless; 0 = never.
    #[serde(default)]
    pub max_age_hours: i64,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub users: Vec<String>,
}

fn default_port() -> u16 {
    6901
}
fn default_shm() -> i64 {
    512
}
fn default_true() -> bool {
    true
}
fn default_idle() -> i64 {
    60
}

impl Default for DockerConfig {
    fn default() -> Self {
        Self {
            host: None,
            instance: "default".into(),
            network: "ird-desktops".into(),
            publish_loopback: false,
            start_timeout_secs: 300,
            shared_volume: "ird-shared".into(),
            shared_mount: "/home/kasm-user/Shared".into(),
            home_volume_prefix: "ird-home-".into(),
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            allow_insecure_tcp: false,
            disk_limit_mib: 20 * 1024,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_running_per_user: 2,
            max_running_total: 50,
            max_concurrent_starts: 4,
            max_start_queue: 200,
            cull_interval_secs: 60,
            max_concurrent_password_checks: 4,
            password_check_wait_ms: 2_000,
            max_event_streams_per_user: 16,
            max_websockets_per_user: 16,
            max_anonymous_audit_per_minute: 10,
        }
    }
}

/// Facts about Kasm containers (seed names `KASM_*`, `VNC_USER`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KasmSettings {
    /// `https` (Kasm's default) or `http`.
    pub protocol: String,
    /// Verify the container's TLS certificate; Kasm's are self-signed, so off by default.
    pub verify_ssl: bool,
    pub container_port: u16,
    pub vnc_user: String,
    /// The seed's single desktop image, if set.
    pub image: Option<String>,
}

/// Limits and timeouts of the desktop proxy.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxySettings {
    pub connect_timeout_secs: u64,
    pub response_timeout_secs: u64,
    /// A WebSocket on which no byte moved for this long is closed.
    pub idle_timeout_secs: u64,
    /// Largest request header block accepted from a browser.
    pub max_header_bytes: usize,
    /// Largest request body forwarded to a desktop or accepted by a form.
    pub max_body_bytes: usize,
    pub relay_buffer_bytes: usize,
    /// Reverse proxies (IPs or CIDR networks) whose `X-Forwarded-For` is believed; empty:
    /// none, the TCP peer is the client (see `client_addr`).
    pub trusted_proxies: crate::net::client_addr::TrustedProxies,
    /// How long a ticket handing a browser over to a desktop origin is valid (1–60 s).
    pub ticket_ttl_secs: u64,
    /// A request body from which no byte arrived for this long is cut off with 408.
    pub body_timeout_secs: u64,
    /// Browser connections open at once, in total and per client address (the TCP peer;
    /// connections from `trusted_proxies` only count toward the total).
    pub max_connections: usize,
    pub max_connections_per_address: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 5020)),
            public_url: None,
            desktop_origin: None,
            data_dir: PathBuf::from("data"),
            database_url: None,
            secret_key: None,
            session_ttl_hours: 12,
            session_idle_minutes: 120,
            session_ttl_secs: None,
            session_idle_secs: None,
            local_login: true,
            oidc: OidcConfig::default(),
            kasm: KasmSettings::default(),
            proxy: ProxySettings::default(),
            runtime: RuntimeKind::Docker,
            docker: DockerConfig::default(),
            swarm: SwarmConfig::default(),
            limits: Limits::default(),
            accounts: AccountSettings::default(),
            desktop_types: Vec::new(),
            static_desktops: Vec::new(),
            metrics: MetricsSettings::default(),
            log_format: LogFormat::default(),
            files: FilesSettings::default(),
            timezone: "Europe/Berlin".into(),
            screens: ScreensSettings::default(),
        }
    }
}

impl Default for KasmSettings {
    fn default() -> Self {
        Self {
            protocol: "https".into(),
            verify_ssl: false,
            container_port: 6901,
            vnc_user: "kasm_user".into(),
            image: None,
        }
    }
}

impl Default for ProxySettings {
    fn default() -> Self {
        Self {
            connect_timeout_secs: 5,
            response_timeout_secs: 30,
            idle_timeout_secs: 300,
            max_header_bytes: 16 * 1024,
            max_body_bytes: 16 * 1024 * 1024,
            // 8 KiB per direction keeps an active relay near 30 KiB (BENCHMARKS.md).
            relay_buffer_bytes: 8 * 1024,
            trusted_proxies: Default::default(),
            ticket_ttl_secs: 60,
            body_timeout_secs: 20,
            max_connections: 4096,
            // A school's whole lab may come through one router address.
            max_connections_per_address: 512,
        }
    }
}

/// `desktop_origin = "off"` (or empty): desktops share the portal's origin, owner only.
fn is_off(template: &str) -> bool {
    template.trim().is_empty() || template.trim().eq_ignore_ascii_case("off")
}

/// Seed variable → our key.
const SEED_NAMES: &[(&str, &str)] = &[
    ("DATABASE_URI", "database_url"),
    ("DATABASE_URL", "database_url"),
    ("SECRET_KEY", "secret_key"),
    ("FRONTEND_URL", "public_url"),
    ("KASM_IMAGE", "kasm.image"),
    ("KASM_CONTAINER_PORT", "kasm.container_port"),
    ("KASM_CONTAINER_PROTOCOL", "kasm.protocol"),
    ("KASM_VERIFY_SSL", "kasm.verify_ssl"),
    ("VNC_USER", "kasm.vnc_user"),
    ("DOCKER_HOST_URL", "docker.host"),
    ("OAUTH_CLIENT_ID", "oidc.client_id"),
    ("OAUTH_CLIENT_SECRET", "oidc.client_secret"),
    ("OAUTH_AUTHORIZE_URL", "oidc.authorize_url"),
    ("OAUTH_TOKEN_URL", "oidc.token_url"),
    ("OAUTH_USERINFO_URL", "oidc.userinfo_url"),
    ("OAUTH_JWKS_URI", "oidc.jwks_uri"),
    ("OAUTH_REDIRECT_URI", "oidc.redirect_uri"),
    ("ROLE_ADMIN", "oidc.admin_groups"),
    ("ROLE_TEACHER", "oidc.teacher_groups"),
];

/// How deep brackets may nest in a variable's value. figment parses environment values with a
/// recursive parser that a value like `[[[[…` drives into a stack overflow (found by the
/// `config` fuzz target); no setting nests more than two levels.
const MAX_ENV_NESTING: usize = 32;

/// Refuses a variable the loader reads (`IRD_…` or a seed name) whose value nests too deep.
fn check_env_nesting() -> Result<(), ConfigError> {
    for (name, value) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let name = name.trim();
        let read = name.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("IRD_"))
            || SEED_NAMES.iter().any(|(seed, _)| seed.eq_ignore_ascii_case(name));
        if !read {
            continue;
        }
        let mut depth = 0usize;
        for c in value.to_string_lossy().chars() {
            match c {
                '[' | '{' => depth += 1,
                ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            }
            if depth > MAX_ENV_NESTING {
                return Err(ConfigError::Environment {
                    name: name.to_owned(),
                    message: format!("brackets nest more than {MAX_ENV_NESTING} deep; no setting needs that"),
                });
            }
        }
    }
    Ok(())
}

/// Seed variables that are read by later features or deliberately not used; accepted so that
/// an existing `.env` does not stop the portal, with a note in the log.
pub const SEED_NAMES_NOT_YET_USED: &[&str] = &["VNC_PASSWORD", "DOCKER_HOST_PROTOCOL"];

impl Config {
    /// Loads defaults, then `file` (which must exist when given), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.is_file() {
                return Err(ConfigError::MissingFile(file.to_owned()));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        check_env_nesting()?;
        let seed = Env::raw().filter_map(|key| {
            SEED_NAMES
                .iter()
                .find(|(name, _)| key.as_str().eq_ignore_ascii_case(name))
                .map(|(_, ours)| (*ours).into())
        });
        // IRD_CONFIG names the file (read by the command line), it is not a setting.
        figment = figment
            .merge(seed)
            .merge(Env::prefixed("IRD_").ignore(&["config"]).split("__"));
        let config: Config = figment.extract().map_err(|e| ConfigError::Parse(Box::new(e)))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot: URLs, ranges, relations between settings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.public_url {
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(invalid(
                    "public_url",
                    format!("must be an http(s) URL like https://desktop.school.example, got {url}"),
                ));
            }
            if url.path() != "/" || url.query().is_some() {
                return Err(invalid(
                    "public_url",
                    "must not have a path or query: the portal serves from the origin's root",
                ));
            }
        }
        self.validate_desktop_origin()?;
        if let Some(db) = &self.database_url
            && !(db.starts_with("sqlite:") || db.starts_with("postgres://") || db.starts_with("postgresql://"))
        {
            return Err(invalid(
                "database_url",
                "must start with sqlite:, postgres:// or postgresql://",
            ));
        }
        if !matches!(self.kasm.protocol.as_str(), "http" | "https") {
            return Err(invalid(
                "kasm.protocol",
                format!("must be http or https, got {:?}", self.kasm.protocol),
            ));
        }
        if self.kasm.container_port == 0 {
            return Err(invalid("kasm.container_port", "must be 1–65535"));
        }
        if !(1..=24 * 90).contains(&self.session_ttl_hours) {
            return Err(invalid("session_ttl_hours", "must be between 1 and 2160 (90 days)"));
        }
        if self.session_idle_minutes > 24 * 60 * 90 {
            return Err(invalid(
                "session_idle_minutes",
                "must be at most 129600 (90 days); 0 = off",
            ));
        }
        if !(1..=10_000).contains(&self.screens.max_sessions) {
            return Err(invalid("screens.max_sessions", "must be between 1 and 10000"));
        }
        if self.session_ttl_secs == Some(0) {
            return Err(invalid("session_ttl_secs", "must be at least 1 second"));
        }
        self.oidc
            .validate(&self.public_url())
            .map_err(|(setting, message)| invalid(setting, message))?;
        if self.oidc.is_configured() {
            let path = self.oidc.redirect_uri(&self.public_url()).path().to_owned();
            if path != iserv_oidc::CALLBACK_PATH && taken_by_the_portal(&path) {
                return Err(invalid(
                    "oidc.redirect_uri",
                    format!(
                        "{path} is a page of the portal itself; use {} (and register that URL in \
                         IServ), or the Flask version's /authorize",
                        iserv_oidc::CALLBACK_PATH
                    ),
                ));
            }
        }
        if !self.local_login && !self.oidc.is_configured() {
            return Err(invalid(
                "local_login",
                "is off, but IServ sign-in is not configured (set oidc.client_id and oidc.issuer \
                 or the oidc.*_url settings): nobody could sign in",
            ));
        }
        let p = &self.proxy;
        if !(1..=60).contains(&p.ticket_ttl_secs) {
            return Err(invalid(
                "proxy.ticket_ttl_secs",
                format!(
                    "must be 1–60 seconds (a ticket is used at once), got {}",
                    p.ticket_ttl_secs
                ),
            ));
        }
        for (setting, value, range) in [
            ("proxy.connect_timeout_secs", p.connect_timeout_secs, 1..=120),
            ("proxy.response_timeout_secs", p.response_timeout_secs, 1..=600),
            ("proxy.idle_timeout_secs", p.idle_timeout_secs, 10..=86_400),
            ("proxy.body_timeout_secs", p.body_timeout_secs, 1..=600),
        ] {
            if !range.contains(&value) {
                return Err(invalid(
                    setting,
                    format!(
                        "must be between {} and {} seconds, got {value}",
                        range.start(),
                        range.end()
                    ),
                ));
            }
        }
        for (setting, value, range) in [
            ("proxy.max_header_bytes", p.max_header_bytes, 8 * 1024..=1024 * 1024),
            ("proxy.max_body_bytes", p.max_body_bytes, 1024..=1024 * 1024 * 1024),
            ("proxy.relay_buffer_bytes", p.relay_buffer_bytes, 1024..=1024 * 1024),
        ] {
            if !range.contains(&value) {
                return Err(invalid(
                    setting,
                    format!(
                        "must be between {} and {} bytes, got {value}",
                        range.start(),
                        range.end()
                    ),
                ));
            }
        }
        let l = &self.limits;
        for (setting, value) in [
            ("proxy.max_connections", p.max_connections),
            ("proxy.max_connections_per_address", p.max_connections_per_address),
            // 0 would leave every start waiting in the queue forever.
            ("limits.max_concurrent_starts", l.max_concurrent_starts),
            (
                "limits.max_concurrent_password_checks",
                l.max_concurrent_password_checks,
            ),
            ("limits.max_event_streams_per_user", l.max_event_streams_per_user),
            ("limits.max_websockets_per_user", l.max_websockets_per_user),
        ] {
            if value == 0 {
                return Err(invalid(setting, "must be at least 1: 0 would refuse everyone"));
            }
        }
        desktop_runtime::StaticRuntime::new(&self.static_desktops)
            .map_err(|e| invalid("static_desktops", e.to_string()))?;
        if self.runtime.is_docker() {
            self.docker.validate()?;
        }
        if self.runtime == RuntimeKind::Swarm {
            self.swarm.validate()?;
        }
        self.accounts.validate()?;
        self.files.validate()?;
        if jiff::tz::TimeZone::get(&self.timezone).is_err() {
            return Err(invalid(
                "timezone",
                format!(
                    "{:?} is no IANA time zone; use a name like Europe/Berlin",
                    self.timezone
                ),
            ));
        }
        Ok(())
    }

    /// The engine settings for the runtime in use: with a swarm, desktops join its overlay.
    pub fn docker_settings(&self) -> desktop_runtime::DockerSettings {
        let mut settings = self.docker.settings();
        if self.runtime == RuntimeKind::Swarm {
            settings.network = self.swarm.network.clone();
        }
        settings
    }

    /// Where users' files live: `files.root`, or `files` in `data_dir`.
    pub fn files_root(&self) -> PathBuf {
        self.files.root.clone().unwrap_or_else(|| self.data_dir.join("files"))
    }

    /// The public URL, defaulting to the listen address.
    pub fn public_url(&self) -> Url {
        self.public_url.clone().unwrap_or_else(|| {
            // Without an IPv6 scope id (`[fe80::1%2]` is no URL; the config fuzz target found
            // that it panicked here), a socket address always formats as a valid authority.
            let addr = SocketAddr::new(self.listen.ip(), self.listen.port());
            Url::parse(&format!("http://{addr}/")).unwrap_or_else(|_| unreachable!())
        })
    }

    /// `desktop_origin`: a usable template, not covering the portal, https with an https portal.
    fn validate_desktop_origin(&self) -> Result<(), ConfigError> {
        if let Some(template) = self.desktop_origin.as_deref().filter(|t| !is_off(t)) {
            let origin = DesktopOrigin::parse(template).map_err(|e| invalid("desktop_origin", e.to_string()))?;
            if origin.covers(&self.public_url()) {
                return Err(invalid(
                    "desktop_origin",
                    format!(
                        "{template} would include the portal's own host ({}); use a domain of its own \
                         for desktops, e.g. https://{{id}}.desktops.school.example",
                        self.public_origin()
                    ),
                ));
            }
            if origin.scheme() == "http" && self.public_url().scheme() == "https" {
                return Err(invalid(
                    "desktop_origin",
                    "must be https:// when public_url is https (a desktop over plain http would be \
                     blocked as mixed content and its cookie would travel unencrypted)",
                ));
            }
        }
        Ok(())
    }

    /// Where desktops are served, if they have origins of their own (see `desktop_origin`).
    pub fn desktop_origins(&self) -> Option<DesktopOrigin> {
        match self.desktop_origin.as_deref() {
            Some(t) if is_off(t) => None,
            // Validated at load; a template that does not parse here means isolation is off.
            Some(t) => DesktopOrigin::parse(t).ok(),
            None => DesktopOrigin::dev_default(&self.public_url()),
        }
    }

    /// The one origin allowed to open WebSockets, e.g. `https://desktop.school.example`.
    pub fn public_origin(&self) -> String {
        self.public_url().origin().ascii_serialization()
    }

    /// How long a session lasts at most (`session_ttl_secs`, else `session_ttl_hours`).
    pub fn session_ttl(&self) -> std::time::Duration {
        std::time::Duration::from_secs(
            self.session_ttl_secs
                .unwrap_or(self.session_ttl_hours.saturating_mul(3600)),
        )
    }

    /// How long an unused session lives (`session_idle_secs`, else `session_idle_minutes`);
    /// `None`: no idle expiry.
    pub fn session_idle(&self) -> Option<std::time::Duration> {
        let secs = self
            .session_idle_secs
            .unwrap_or(self.session_idle_minutes.saturating_mul(60));
        (secs > 0).then(|| std::time::Duration::from_secs(secs))
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("portal.db").display()))
    }

    /// Seed variables present in the environment that nothing reads yet.
    pub fn unused_seed_variables() -> Vec<&'static str> {
        SEED_NAMES_NOT_YET_USED
            .iter()
            .copied()
            .filter(|n| std::env::var_os(n).is_some())
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn load_toml(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(Some(&path))
    }

    #[test]
    fn deleted_homes_are_kept_30_days_unless_configured() {
        let c = load_toml("").unwrap();
        assert_eq!(c.accounts.home_retention().as_secs(), 30 * 86_400);
        let c = load_toml("[accounts]\nhome_retention_days = 7").unwrap();
        assert_eq!(c.accounts.home_retention().as_secs(), 7 * 86_400);
        let c = load_toml("[accounts]\nhome_retention_secs = 2").unwrap();
        assert_eq!(c.accounts.home_retention().as_secs(), 2);
    }

    #[test]
    fn defaults_listen_on_loopback_5020() {
        let c = load_toml("").unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:5020");
        assert_eq!(c.public_origin(), "http://127.0.0.1:5020");
        assert!(!c.kasm.verify_ssl);
    }

    #[test]
    fn errors_name_the_setting() {
        for (toml, needle) in [
            ("listen = \"nope\"", "listen"),
            ("public_url = \"https://x.example/sub\"", "public_url"),
            ("[kasm]\nprotocol = \"ftp\"", "kasm.protocol"),
            ("[proxy]\nidle_timeout_secs = 1", "proxy.idle_timeout_secs"),
            ("[screens]\nmax_sessions = 0", "screens.max_sessions"),
            ("[proxy]\ntrusted_proxies = [\"10.0.0.5/8\"]", "proxy.trusted_proxies"),
            (
                "[proxy]\ntrusted_proxies = \"127.0.0.1, nope\"",
                "proxy.trusted_proxies",
            ),
            ("unknown_key = 1", "unknown_key"),
            ("desktop_origin = \"https://desktops.example\"", "desktop_origin"),
            ("desktop_origin = \"https://x-{id}.example\"", "desktop_origin"),
            (
                "public_url = \"https://portal.school.example\"\ndesktop_origin = \"https://{id}.school.example\"",
                "desktop_origin",
            ),
            (
                "public_url = \"https://portal.school.example\"\ndesktop_origin = \"http://{id}.desktops.school.example\"",
                "desktop_origin",
            ),
            ("[proxy]\nticket_ttl_secs = 61", "proxy.ticket_ttl_secs"),
            (
                "[accounts]\nhome_retention_days = 36500",
                "accounts.home_retention_days",
            ),
            ("[accounts]\nhome_retention_days = -1", "home_retention_days"),
            ("[accounts]\npurge_interval_secs = 0", "accounts.purge_interval_secs"),
            (
                "[oidc]\nid_token_algorithms = [\"RS256\", \"HS256\"]",
                "oidc.id_token_algorithms",
            ),
            ("[oidc]\nid_token_algorithms = \"none\"", "oidc.id_token_algorithms"),
            (
                "[[static_desktops]]\nid = \"x\"\nurl = \"gopher://a\"",
                "static_desktops",
            ),
            ("runtime = \"swarm\"\n[swarm]\nnetwork = \"a b\"", "swarm.network"),
            (
                "runtime = \"swarm\"\n[swarm]\nreserve_percent = 0",
                "swarm.reserve_percent",
            ),
            (
                "runtime = \"swarm\"\n[swarm.placement]\ncad = [\"gpu\"]",
                "swarm.placement",
            ),
            ("runtime = \"swarm\"\n[swarm]\nspread = \"node.id\"", "swarm.spread"),
        ] {
            let err = load_toml(toml).unwrap_err().to_string();
            assert!(err.contains(needle), "{toml:?} → {err}");
        }
    }

    #[test]
    fn a_swarm_puts_desktops_on_its_overlay_with_placement_per_type() {
        let c = load_toml(
            "runtime = \"swarm\"\n[swarm]\nnetwork = \"school-desktops\"\nspread = \"node.labels.rack\"\n\
             [swarm.placement]\ncad = [\"node.labels.gpu == true\"]",
        )
        .unwrap();
        assert_eq!(c.docker_settings().network, "school-desktops");
        let s = c.swarm.settings();
        assert_eq!(s.placement["cad"], ["node.labels.gpu == true"]);
        assert_eq!((s.spread.as_deref(), s.reserve_percent), (Some("node.labels.rack"), 50));
        let one_engine = load_toml("[swarm]\nnetwork = \"school-desktops\"").unwrap();
        assert_eq!(one_engine.docker_settings().network, "ird-desktops");
    }

    #[test]
    fn desktop_origins_default_to_localhost_on_loopback_only() {
        let dev = load_toml("").unwrap();
        assert_eq!(
            dev.desktop_origins().map(|o| o.to_string()).as_deref(),
            Some("http://{id}.localhost:5020")
        );
        let prod = load_toml("public_url = \"https://portal.school.example\"").unwrap();
        assert!(prod.desktop_origins().is_none(), "no guess for a real host name");
        let off = load_toml("desktop_origin = \"off\"").unwrap();
        assert!(off.desktop_origins().is_none());
        let set = load_toml(
            "public_url = \"https://portal.school.example\"\ndesktop_origin = \"https://{id}.desktops.school.example\"",
        )
        .unwrap();
        assert_eq!(
            set.desktop_origins().map(|o| o.origin_of("alice-ubuntu")).as_deref(),
            Some("https://alice-ubuntu.desktops.school.example")
        );
    }

    /// The shared folder is a bind mount inside the home, where the engine mounts nothing but
    /// users' folders.
    #[test]
    fn the_shared_folder_is_mounted_inside_the_home_or_not_at_all() {
        for bad in ["/shared", "/home/kasm-user", "/home/kasm-user/../etc", "Shared"] {
            let err = load_toml(&format!("[docker]\nshared_mount = \"{bad}\""))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("docker.shared_mount") && err.contains("/home/kasm-user"),
                "{bad}: {err}"
            );
        }
        for good in ["/home/kasm-user/Shared", "/home/kasm-user/Gemeinsam/Schule", ""] {
            assert!(
                load_toml(&format!("[docker]\nshared_mount = \"{good}\"")).is_ok(),
                "{good}"
            );
        }
    }

    #[test]
    fn a_tcp_engine_needs_tls_client_certificates_or_an_explicit_lab_switch() {
        let err = load_toml("[docker]\nhost = \"tcp://10.0.0.5:2375\"")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("docker.host") && err.contains("plain TCP") && err.contains("allow_insecure_tcp"),
            "{err}"
        );
        let lab = load_toml("[docker]\nhost = \"tcp://10.0.0.5:2375\"\nallow_insecure_tcp = true").unwrap();
        assert!(lab.docker.tls().is_none());

        let dir = tempfile::tempdir().unwrap();
        for name in ["ca.pem", "cert.pem", "key.pem"] {
            std::fs::write(dir.path().join(name), "PEM").unwrap();
        }
        let file = |name: &str| dir.path().join(name).display().to_string();
        let tls = format!(
            "[docker]\nhost = \"tcp://docker.school.example:2376\"\ntls_ca = \"{}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"",
            file("ca.pem"),
            file("cert.pem"),
            file("key.pem")
        );
        let c = load_toml(&tls).unwrap();
        assert_eq!(c.docker.tls().map(|t| t.key), Some(dir.path().join("key.pem")));

        let partial = format!("[docker]\nhost = \"tcp://d:2376\"\ntls_ca = \"{}\"", file("ca.pem"));
        let err = load_toml(&partial).unwrap_err().to_string();
        assert!(err.contains("docker.tls_cert"), "{err}");
        let unreadable = tls.replace("key.pem", "missing.pem");
        let err = load_toml(&unreadable).unwrap_err().to_string();
        assert!(err.contains("docker.tls_key") && err.contains("missing.pem"), "{err}");
        let socket_with_tls = tls.replace("tcp://docker.school.example:2376", "unix:///var/run/docker.sock");
        assert!(load_toml(&socket_with_tls).is_err());
    }

    #[test]
    fn a_listen_address_with_an_ipv6_scope_gives_a_public_url() {
        let c = load_toml("listen = \"[fe80::1%2]:5020\"").unwrap();
        assert_eq!(c.public_origin(), "http://[fe80::1]:5020");
    }

    #[test]
    fn missing_file_is_an_error() {
        let err = Config::load(Some(Path::new("/nonexistent/ird.toml"))).unwrap_err();
        assert!(err.to_string().contains("does not exist"));
    }
}

/// Users' files. Sizes in MiB so a TOML file stays readable; 0 as a quota means none.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilesSettings {
    /// Where homes, the shared folder and the trash live; default `data_dir/files`. On a
    /// cluster: storage every node mounts at the same path.
    pub root: Option<PathBuf>,
    /// Owner of everything the portal writes: the desktop's user (uid 1000 in Kasm images), so
    /// it stays editable inside the desktop.
    pub uid: u32,
    pub gid: u32,
    /// Largest single upload.
    pub max_upload_mib: u64,
    pub quota_student_mib: u64,
    pub quota_teacher_mib: u64,
    pub quota_admin_mib: u64,
    /// How long deleted files stay restorable.
    pub trash_days: u64,
    /// Mount the user's class folders into her desktops (`~/Klassen/<group>`). The engine
    /// mounts them (like homes) from its own host, so the files root must be a path of that
    /// host (the container deployment mounts a host directory at the same path).
    pub mount_classes: bool,
    /// File changes (uploads, new folders, moves, copies, deletes, restores) one user may make
    /// per minute, in bursts of up to as many; more answer 429 with `Retry-After`. 0: no limit.
    pub writes_per_minute: u32,
}

impl Default for FilesSettings {
    fn default() -> Self {
        Self {
            root: None,
            uid: 1000,
            gid: 1000,
            max_upload_mib: 1024,
            quota_student_mib: 2 * 1024,
            quota_teacher_mib: 10 * 1024,
            quota_admin_mib: 10 * 1024,
            trash_days: 30,
            mount_classes: true,
            // A folder of 1,200 files uploads in one go; a class working normally makes a few
            // changes a minute each.
            writes_per_minute: 1200,
        }
    }
}

impl FilesSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.uid == 0 || self.gid == 0 {
            return Err(invalid(
                "files.uid",
                "files.uid and files.gid must not be 0: users' files would belong to root inside \
                 the desktop and could not be edited there (Kasm images use 1000)",
            ));
        }
        if !(1..=1024 * 1024).contains(&self.max_upload_mib) {
            return Err(invalid(
                "files.max_upload_mib",
                format!("must be between 1 and 1048576 MiB (1 TiB), got {}", self.max_upload_mib),
            ));
        }
        if self.writes_per_minute > 1_000_000 {
            return Err(invalid(
                "files.writes_per_minute",
                format!("must be at most 1000000 (0: no limit), got {}", self.writes_per_minute),
            ));
        }
        if !(1..=3650).contains(&self.trash_days) {
            return Err(invalid(
                "files.trash_days",
                format!("must be between 1 and 3650 days, got {}", self.trash_days),
            ));
        }
        Ok(())
    }
}

/// Whether the portal serves something at `path` already (so it cannot be the callback).
fn taken_by_the_portal(path: &str) -> bool {
    const PAGES: [&str; 18] = [
        "/login",
        "/logout",
        "/teacher",
        "/admin",
        "/files",
        "/healthz",
        "/readyz",
        "/websockify",
        "/branding.css",
        "/branding",
        "/api",
        "/static",
        "/desktop",
        "/desktops",
        "/view",
        "/icons",
        "/auth/login",
        "/.ird",
    ];
    let path = path.trim_end_matches('/');
    path.is_empty() || PAGES.iter().any(|p| path == *p || path.starts_with(&format!("{p}/")))
}
