//! The `swarm` backend: each desktop a Docker Swarm service with one task, on an attachable
//! overlay network that the portal (a container on a manager node) shares.
//!
//! A service carries the same labels a desktop container carries on one engine, so
//! [`SwarmRuntime::observe`] rebuilds everything from the swarm alone. Crashed desktops are
//! not restarted behind the user's back (restart condition `none`); a start of a desktop that
//! does not run replaces its service, so the scheduler places it on a healthy node. The swarm
//! has no event for "this node's tasks are gone", so [`SwarmRuntime::events`] polls services,
//! tasks and nodes.
//!
//! The endpoint is the service's name: with `endpoint_mode = dnsrr` (no IPVS needed) Docker's
//! DNS on the overlay answers it with the task's address, and keeps answering right when the
//! task moves to another node.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use bollard::models::{
    EndpointSpec, EndpointSpecModeEnum, Limit, Mount, MountTmpfsOptions, MountType, NetworkAttachmentConfig,
    NetworkCreateRequest, Node, NodeState, ResourceObject, Service, ServiceSpec, ServiceSpecMode,
    ServiceSpecModeReplicated, Task, TaskSpec, TaskSpecContainerSpec, TaskSpecContainerSpecPrivileges,
    TaskSpecPlacement, TaskSpecPlacementPreferences, TaskSpecPlacementSpread, TaskSpecResources, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum, TaskState,
};
use bollard::query_parameters::{
    ListNodesOptions, ListServicesOptionsBuilder, ListTasksOptionsBuilder, UpdateServiceOptionsBuilder,
};
use futures_util::stream::{self, BoxStream, StreamExt};
use secrecy::ExposeSecret;

use crate::docker::{describe, status_of, validate_spec};
use crate::{
    ContainerRuntime, DesktopSpec, DockerRuntime, DockerSettings, Endpoint, ExitReason, LABEL_DESKTOP_ID, LABEL_HTTPS,
    LABEL_INSTANCE, LABEL_PORT, LABEL_ROLE, LABEL_SPEC, LABEL_TYPE, LABEL_USER, ObservedDesktop, Progress,
    ProgressSink, RunningDesktop, RuntimeError, RuntimeEvent,
};

/// How often [`SwarmRuntime::events`] looks at the swarm. A node is declared down by the
/// managers after its heartbeats stop (about 15 s); with this poll its desktops show as
/// stopped well within 30 s.
const POLL: Duration = Duration::from_secs(3);
/// How often a start looks at its task.
const TASK_POLL: Duration = Duration::from_millis(100);
/// How long a task may wait for a node (none suitable: resources, constraints) before the
/// start fails with the scheduler's words.
const NO_NODE_WAIT: Duration = Duration::from_secs(30);
/// How long the overlay's DNS may take to learn a new task's address (gossip between nodes).
const DNS_WAIT: Duration = Duration::from_secs(15);
/// How long a stop waits for the task to end, as a stop on one engine does.
const STOP_WAIT: Duration = Duration::from_secs(20);
/// Kasm images shut down cleanly within a few seconds; after this the node kills them.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// Memory for a desktop whose type sets none (as on one engine).
const DEFAULT_MEMORY_BYTES: i64 = 4 << 30;
/// Processes and threads one desktop may have (as on one engine).
const PIDS_LIMIT: i64 = 4096;

/// Where desktops run on the swarm, besides the engine settings (`docker.host`, instance,
/// prefix) of [`DockerSettings`].
#[derive(Clone, Debug, Default)]
pub struct SwarmSettings {
    /// Placement constraints per desktop type key, e.g. `["node.labels.gpu == true"]`.
    pub placement: HashMap<String, Vec<String>>,
    /// Spread desktops evenly over the values of this node label or attribute (e.g.
    /// `node.labels.rack`); the scheduler spreads over nodes by their task count anyway.
    pub spread: Option<String>,
    /// Share of a desktop's memory and CPU limit reserved on its node (1–100 %): what the
    /// scheduler counts when it decides whether a node has room.
    pub reserve_percent: u8,
}

/// Starts, stops and watches desktops as services of a Docker Swarm.
#[derive(Debug)]
pub struct SwarmRuntime {
    /// The manager's engine; `settings().network` is the attachable overlay.
    docker: DockerRuntime,
    swarm: SwarmSettings,
    network_lock: tokio::sync::Mutex<()>,
    /// The engine dropped "no new privileges" from a service (older engines do): said once.
    privileges_warned: std::sync::atomic::AtomicBool,
}

/// What the swarm knows of one desktop's service.
struct Seen {
    desktop: ObservedDesktop,
    /// Node the newest task was given to, by hostname.
    node: Option<String>,
}

impl SwarmRuntime {
    /// Checks the settings and that `docker.host` is a manager of an active swarm: only a
    /// manager can create services. Unlike one engine, an unreachable engine fails here.
    pub async fn connect(docker: DockerSettings, swarm: SwarmSettings) -> Result<Self, RuntimeError> {
        if !(1..=100).contains(&swarm.reserve_percent) {
            return Err(RuntimeError::Invalid(format!(
                "swarm.reserve_percent must be 1–100, got {}",
                swarm.reserve_percent
            )));
        }
        let docker = DockerRuntime::connect(docker).await?;
        let runtime = Self {
            docker,
            swarm,
            network_lock: tokio::sync::Mutex::new(()),
            privileges_warned: std::sync::atomic::AtomicBool::new(false),
        };
        runtime.check_manager().await?;
        Ok(runtime)
    }

    /// Refuses an engine that is not a swarm manager, naming the setting and the fix.
    async fn check_manager(&self) -> Result<(), RuntimeError> {
        let client = self.docker.client()?;
        let info = client.info().await.map_err(|err| self.docker.engine_error(&err))?;
        let swarm = info.swarm.unwrap_or_default();
        let state = swarm
            .local_node_state
            .map(|s| s.to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown".to_owned());
        if state != "active" || swarm.control_available != Some(true) {
            return Err(RuntimeError::Invalid(format!(
                "runtime = \"swarm\" needs a Docker engine that is a manager of an active swarm, but the engine at {} \
                 (setting docker.host) is {}: run `docker swarm init` there, or set docker.host to a manager node",
                self.docker.host(),
                if state == "active" {
                    "a worker, not a manager".to_owned()
                } else {
                    format!("in swarm state {state:?}")
                }
            )));
        }
        Ok(())
    }

    fn settings(&self) -> &DockerSettings {
        self.docker.settings()
    }

    /// Name of a desktop's service (as a container's on one engine); also its DNS name on the
    /// overlay.
    pub fn service_name(&self, id: &str) -> String {
        self.docker.container_name(id)
    }

    /// Creates the attachable overlay network unless it exists; refuses a network of that
    /// name that is not one (desktops and the portal could not share it).
    async fn ensure_network(&self, docker: &Docker, name: &str, internal: bool) -> Result<(), RuntimeError> {
        let _guard = self.network_lock.lock().await;
        match docker.inspect_network(name, None).await {
            Ok(network) => {
                let overlay = network.driver.as_deref() == Some("overlay")
                    && network.attachable == Some(true)
                    && network.internal.unwrap_or(false) == internal;
                if overlay {
                    return Ok(());
                }
                return Err(RuntimeError::Start(format!(
                    "Docker network {name:?} is not an attachable{} overlay network (driver {:?}); desktops on a swarm \
                     need one the portal can join. Remove it (`docker network rm {name}`) or set swarm.network to \
                     another name; the portal creates it",
                    if internal { " internal" } else { "" },
                    network.driver.unwrap_or_default()
                )));
            }
            Err(err) if status_of(&err) == Some(404) => {}
            Err(err) => return Err(self.docker.engine_error(&err)),
        }
        tracing::info!(network = %name, internal, "creating the desktops' overlay network");
        let request = NetworkCreateRequest {
            name: name.to_owned(),
            driver: Some("overlay".to_owned()),
            attachable: Some(true),
            internal: Some(internal),
            labels: Some(HashMap::from([(
                LABEL_INSTANCE.to_owned(),
                self.settings().instance.clone(),
            )])),
            ..Default::default()
        };
        match docker.create_network(request).await {
            Ok(_) => Ok(()),
            Err(err) if status_of(&err) == Some(409) => Ok(()),
            Err(err) => Err(self.docker.engine_error(&err)),
        }
    }

    /// The service for `spec`: one replica, labelled, contained and limited as a container on
    /// one engine, restarted by nobody, published nowhere.
    fn service_spec(&self, spec: &DesktopSpec) -> ServiceSpec {
        let labels = HashMap::from([
            (LABEL_INSTANCE.to_owned(), self.settings().instance.clone()),
            (LABEL_DESKTOP_ID.to_owned(), spec.id.clone()),
            (LABEL_USER.to_owned(), spec.username.clone()),
            (LABEL_TYPE.to_owned(), spec.type_key.clone()),
            (LABEL_PORT.to_owned(), spec.port.to_string()),
            (LABEL_HTTPS.to_owned(), spec.https.to_string()),
            (LABEL_ROLE.to_owned(), spec.owner_role.clone()),
            (LABEL_SPEC.to_owned(), self.docker.fingerprint(spec)),
        ]);
        let mut env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        env.push(format!("VNC_PW={}", spec.credentials.password.expose_secret()));
        // Swarm has no shm size: a tmpfs on /dev/shm of that size is the same thing.
        let shm = Mount {
            typ: Some(MountType::TMPFS),
            target: Some("/dev/shm".to_owned()),
            tmpfs_options: Some(MountTmpfsOptions {
                size_bytes: Some(spec.shm_size_bytes),
                ..Default::default()
            }),
            ..Default::default()
        };
        // Bind sources are paths of the files root, which every node mounts at the same path.
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
            .chain([shm])
            .collect();
        let memory = spec.memory_bytes.unwrap_or(DEFAULT_MEMORY_BYTES);
        let reserve = |value: i64| value / 100 * i64::from(self.swarm.reserve_percent);
        let constraints = self.swarm.placement.get(&spec.type_key).cloned().unwrap_or_default();
        let preferences = self.swarm.spread.as_ref().map(|descriptor| {
            vec![TaskSpecPlacementPreferences {
                spread: Some(TaskSpecPlacementSpread {
                    spread_descriptor: Some(descriptor.clone()),
                }),
            }]
        });
        ServiceSpec {
            name: Some(self.service_name(&spec.id)),
            labels: Some(labels.clone()),
            task_template: Some(TaskSpec {
                container_spec: Some(TaskSpecContainerSpec {
                    image: Some(spec.image.clone()),
                    labels: Some(labels),
                    env: Some(env),
                    mounts: Some(mounts),
                    capability_drop: Some(vec!["ALL".to_owned()]),
                    privileges: Some(TaskSpecContainerSpecPrivileges {
                        no_new_privileges: Some(true),
                        ..Default::default()
                    }),
                    init: Some(false),
                    stop_grace_period: i64::try_from(STOP_GRACE.as_nanos()).ok(),
                    ..Default::default()
                }),
                resources: Some(TaskSpecResources {
                    limits: Some(Limit {
                        nano_cpus: spec.nano_cpus,
                        memory_bytes: Some(memory),
                        pids: Some(PIDS_LIMIT),
                    }),
                    reservations: Some(ResourceObject {
                        nano_cpus: spec.nano_cpus.map(reserve),
                        memory_bytes: Some(reserve(memory)),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                // A crashed desktop stays down and is shown stopped with its reason; the
                // user starts it again (and loses nothing: her files are on shared storage).
                restart_policy: Some(TaskSpecRestartPolicy {
                    condition: Some(TaskSpecRestartPolicyConditionEnum::NONE),
                    ..Default::default()
                }),
                placement: Some(TaskSpecPlacement {
                    constraints: Some(constraints),
                    preferences,
                    ..Default::default()
                }),
                networks: Some(vec![NetworkAttachmentConfig {
                    target: Some(self.docker.network_of(spec)),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            mode: Some(ServiceSpecMode {
                replicated: Some(ServiceSpecModeReplicated { replicas: Some(1) }),
                ..Default::default()
            }),
            // Security rule 4: nothing published; DNS round robin, as the kernel may lack IPVS.
            endpoint_spec: Some(EndpointSpec {
                mode: Some(EndpointSpecModeEnum::DNSRR),
                ports: None,
            }),
            ..Default::default()
        }
    }

    async fn inspect_service(&self, docker: &Docker, name: &str) -> Result<Option<Service>, RuntimeError> {
        match docker.inspect_service(name, None).await {
            Ok(service) => Ok(Some(service)),
            Err(err) if status_of(&err) == Some(404) => Ok(None),
            Err(err) => Err(self.docker.engine_error(&err)),
        }
    }

    /// The tasks of service `name`, newest first.
    async fn tasks_of(&self, docker: &Docker, name: &str) -> Result<Vec<Task>, RuntimeError> {
        let filters = HashMap::from([("service", vec![name])]);
        let options = ListTasksOptionsBuilder::new().filters(&filters).build();
        let mut tasks = docker
            .list_tasks(Some(options))
            .await
            .map_err(|err| self.docker.engine_error(&err))?;
        sort_newest_first(&mut tasks);
        Ok(tasks)
    }

    async fn nodes(&self, docker: &Docker) -> Result<HashMap<String, Node>, RuntimeError> {
        let nodes = docker
            .list_nodes(None::<ListNodesOptions>)
            .await
            .map_err(|err| self.docker.engine_error(&err))?;
        Ok(nodes.into_iter().filter_map(|n| Some((n.id.clone()?, n))).collect())
    }

    /// Waits until the service's task runs; fails with the swarm's words when it cannot.
    async fn wait_running(
        &self,
        docker: &Docker,
        name: &str,
        spec: &DesktopSpec,
        progress: &ProgressSink,
    ) -> Result<(), RuntimeError> {
        let deadline = tokio::time::Instant::now() + self.settings().pull_timeout;
        let mut unplaced_since: Option<tokio::time::Instant> = None;
        let mut last_state = None;
        loop {
            let tasks = self.tasks_of(docker, name).await?;
            if let Some(task) = tasks.first() {
                let status = task.status.clone().unwrap_or_default();
                let state = status.state;
                if state != last_state {
                    last_state = state;
                    match state {
                        Some(TaskState::PREPARING) => {
                            let _ = progress.send(Progress::Pulling {
                                image: spec.image.clone(),
                                layer: None,
                                status: "preparing the image on its node".to_owned(),
                                current: None,
                                total: None,
                            });
                        }
                        Some(TaskState::STARTING) => {
                            let _ = progress.send(Progress::Starting);
                        }
                        _ => {}
                    }
                }
                match state {
                    Some(TaskState::RUNNING) => return Ok(()),
                    Some(
                        TaskState::FAILED
                        | TaskState::REJECTED
                        | TaskState::COMPLETE
                        | TaskState::SHUTDOWN
                        | TaskState::ORPHANED
                        | TaskState::REMOVE,
                    ) => {
                        return Err(RuntimeError::Exited {
                            name: name.to_owned(),
                            reason: exit_reason_of(task),
                        });
                    }
                    Some(TaskState::PENDING) if status.err.as_deref().is_some_and(|e| !e.is_empty()) => {
                        let since = *unplaced_since.get_or_insert_with(tokio::time::Instant::now);
                        if since.elapsed() >= NO_NODE_WAIT {
                            return Err(RuntimeError::Start(format!(
                                "the swarm found no node for desktop service {name} within {} s: {}",
                                NO_NODE_WAIT.as_secs(),
                                status.err.unwrap_or_default()
                            )));
                        }
                    }
                    _ => unplaced_since = None,
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(RuntimeError::Start(format!(
                    "desktop service {name} did not run within {} s",
                    self.settings().pull_timeout.as_secs()
                )));
            }
            // One task list of one service: cheap for a manager, and a start is waited on.
            tokio::time::sleep(TASK_POLL).await;
        }
    }

    /// Waits until the overlay's DNS answers the service's name here: the portal reaches the
    /// desktop by it. A portal outside the overlay never gets an answer, and is told so.
    async fn wait_resolvable(&self, name: &str, port: u16) -> Result<(), RuntimeError> {
        let deadline = tokio::time::Instant::now() + DNS_WAIT;
        loop {
            if let Ok(mut addrs) = tokio::net::lookup_host((name, port)).await
                && addrs.next().is_some()
            {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(RuntimeError::Start(format!(
                    "desktop service {name} runs, but its name does not resolve where the portal runs: \
                     the portal must be a container attached to the overlay network {:?} (swarm.network)",
                    self.settings().network
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn endpoint(&self, name: &str, port: u16, https: bool, verify_tls: bool) -> Endpoint {
        Endpoint {
            https,
            host: name.to_owned(),
            port,
            verify_tls,
        }
    }

    /// Every service of this portal instance with what its newest task and node say.
    async fn seen(&self, docker: &Docker) -> Result<Vec<Seen>, RuntimeError> {
        look_at(docker, &self.settings().instance)
            .await
            .map_err(|err| self.docker.engine_error(&err))
    }

    /// The node (hostname) each running desktop's task is on, by desktop id: where the
    /// scheduler put them (tests, the admin's view).
    pub async fn placement(&self) -> Result<HashMap<String, String>, RuntimeError> {
        let docker = self.docker.client()?;
        Ok(self
            .seen(&docker)
            .await?
            .into_iter()
            .filter(|s| s.desktop.running)
            .filter_map(|s| Some((s.desktop.id, s.node?)))
            .collect())
    }

    /// Says once in the log when the engine kept a service without "no new privileges":
    /// engines older than the setting in services drop it silently.
    async fn check_privileges(&self, docker: &Docker, name: &str) {
        if self.privileges_warned.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let Ok(Some(service)) = self.inspect_service(docker, name).await else {
            return;
        };
        let kept = service
            .spec
            .and_then(|s| s.task_template)
            .and_then(|t| t.container_spec)
            .and_then(|c| c.privileges)
            .and_then(|p| p.no_new_privileges)
            == Some(true);
        if !kept && !self.privileges_warned.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::warn!(
                service = %name,
                "the swarm's engine does not apply \"no new privileges\" to services (it is older than the setting); \
                 desktops still run without capabilities, but a setuid program in one can change its user"
            );
        }
    }

    /// Reports each node's pull until every node that is up has its outcome.
    async fn follow_pull(
        &self,
        docker: &Docker,
        name: &str,
        image: &str,
        progress: &ProgressSink,
    ) -> Result<(), RuntimeError> {
        let deadline = tokio::time::Instant::now() + self.settings().pull_timeout;
        let mut said: HashMap<String, String> = HashMap::new();
        loop {
            let tasks = self.tasks_of(docker, name).await?;
            let nodes = self.nodes(docker).await?;
            let up: Vec<&String> = nodes
                .iter()
                .filter(|(_, n)| n.status.as_ref().and_then(|s| s.state) == Some(NodeState::READY))
                .map(|(id, _)| id)
                .collect();
            let mut outcomes: HashMap<&String, Result<(), String>> = HashMap::new();
            for task in &tasks {
                let (Some(node_id), Some(status)) = (task.node_id.as_ref(), task.status.as_ref()) else {
                    continue;
                };
                let node = nodes.get(node_id).map(node_name).unwrap_or_else(|| node_id.clone());
                let outcome = pull_outcome(status);
                let text = match &outcome {
                    None => status.state.map(|s| s.to_string()).unwrap_or_default(),
                    Some(Ok(())) => "image present".to_owned(),
                    Some(Err(e)) => format!("failed: {e}"),
                };
                if said.get(&node) != Some(&text) {
                    let _ = progress.send(Progress::Pulling {
                        image: image.to_owned(),
                        layer: Some(node.clone()),
                        status: text.clone(),
                        current: None,
                        total: None,
                    });
                    said.insert(node.clone(), text);
                }
                if let Some(outcome) = outcome {
                    outcomes.insert(node_id, outcome.map_err(|e| format!("node {node}: {e}")));
                }
            }
            if !up.is_empty() && up.iter().all(|id| outcomes.contains_key(id)) {
                let failed: Vec<String> = outcomes.into_values().filter_map(Result::err).collect();
                return if failed.is_empty() {
                    Ok(())
                } else {
                    Err(RuntimeError::Image {
                        image: image.to_owned(),
                        reason: failed.join("; "),
                    })
                };
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(RuntimeError::Image {
                    image: image.to_owned(),
                    reason: format!("not on every node within {} s", self.settings().pull_timeout.as_secs()),
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Scales the service to no task, waiting until its task ended.
    async fn scale_to_zero(&self, docker: &Docker, name: &str, service: Service) -> Result<(), RuntimeError> {
        let replicas = service
            .spec
            .as_ref()
            .and_then(|s| s.mode.as_ref())
            .and_then(|m| m.replicated.as_ref())
            .and_then(|r| r.replicas);
        if replicas != Some(0) {
            let mut spec = service.spec.clone().unwrap_or_default();
            spec.mode = Some(ServiceSpecMode {
                replicated: Some(ServiceSpecModeReplicated { replicas: Some(0) }),
                ..Default::default()
            });
            let version = service.version.as_ref().and_then(|v| v.index).unwrap_or_default();
            let options = UpdateServiceOptionsBuilder::new()
                .version(i32::try_from(version).unwrap_or(i32::MAX))
                .build();
            match docker.update_service(name, spec, options, None).await {
                Ok(_) => {}
                Err(err) if status_of(&err) == Some(404) => return Ok(()),
                Err(err) => return Err(self.docker.engine_error(&err)),
            }
        }
        let deadline = tokio::time::Instant::now() + STOP_WAIT;
        loop {
            let tasks = self.tasks_of(docker, name).await?;
            let nodes = self.nodes(docker).await?;
            let live = tasks.iter().any(|t| task_runs(t, &nodes));
            if !live {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(service = %name, "a desktop's task did not end within the stop wait");
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// A pull job's task: `None` while the node is still at it, `Ok` once the node has the image
/// (the container then fails to start, as meant: its entry point does not exist), `Err` with
/// the node's words when it could not get the image.
fn pull_outcome(status: &bollard::models::TaskStatus) -> Option<Result<(), String>> {
    let err = status.err.clone().unwrap_or_default();
    match status.state? {
        TaskState::NEW
        | TaskState::ALLOCATED
        | TaskState::PENDING
        | TaskState::ASSIGNED
        | TaskState::ACCEPTED
        | TaskState::PREPARING => None,
        // The image is there once the container could be made; failing to run is the point.
        TaskState::READY | TaskState::STARTING | TaskState::RUNNING | TaskState::COMPLETE => Some(Ok(())),
        TaskState::FAILED | TaskState::REJECTED | TaskState::SHUTDOWN | TaskState::ORPHANED | TaskState::REMOVE => {
            let lower = err.to_ascii_lowercase();
            let no_image = lower.contains("no such image")
                || lower.contains("pull access denied")
                || lower.contains("manifest unknown")
                || lower.contains("not found: manifest");
            if no_image || err.is_empty() {
                Some(Err(if err.is_empty() { "no image".to_owned() } else { err }))
            } else {
                Some(Ok(()))
            }
        }
    }
}

/// Newest task first: the swarm keeps a few old tasks of each slot.
fn sort_newest_first(tasks: &mut [Task]) {
    tasks.sort_by_key(|t| std::cmp::Reverse(t.version.as_ref().and_then(|v| v.index).unwrap_or(0)));
}

/// Whether the task runs on a node the managers see as up.
fn task_runs(task: &Task, nodes: &HashMap<String, Node>) -> bool {
    let running = task.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING);
    running && node_down(task, nodes).is_none()
}

/// `Some(why)` when the task's node is not up (down, disconnected, gone from the swarm).
fn node_down(task: &Task, nodes: &HashMap<String, Node>) -> Option<String> {
    let node_id = task.node_id.as_deref()?;
    let Some(node) = nodes.get(node_id) else {
        return Some(format!("its swarm node {node_id} left the swarm"));
    };
    let status = node.status.clone().unwrap_or_default();
    match status.state {
        Some(NodeState::READY) => None,
        state => Some(format!(
            "its swarm node {} is {}{}",
            node_name(node),
            state.map(|s| s.to_string()).unwrap_or_else(|| "unknown".to_owned()),
            status
                .message
                .filter(|m| !m.is_empty())
                .map(|m| format!(" ({m})"))
                .unwrap_or_default()
        )),
    }
}

/// A node's hostname and the start of its id (nodes of one machine share a hostname).
fn node_name(node: &Node) -> String {
    let id = node.id.as_deref().unwrap_or_default();
    let short = &id[..id.len().min(12)];
    match node.description.as_ref().and_then(|d| d.hostname.as_deref()) {
        Some(host) => format!("{host} ({short})"),
        None => short.to_owned(),
    }
}

/// Why a task is not running, from its status: the exit code of its container, or the
/// swarm's error.
fn exit_reason_of(task: &Task) -> ExitReason {
    let status = task.status.clone().unwrap_or_default();
    let code = status.container_status.as_ref().and_then(|c| c.exit_code);
    let err = status.err.filter(|e| !e.is_empty());
    match (status.state, code, err) {
        (Some(TaskState::FAILED), Some(code), Some(err)) if err.contains("non-zero exit") => {
            ExitReason::Exited { code: Some(code) }
        }
        (_, _, Some(err)) => ExitReason::Failed(err),
        (Some(TaskState::COMPLETE), code, None) => ExitReason::Exited { code: code.or(Some(0)) },
        (state, _, None) => ExitReason::Failed(format!(
            "its task is {}",
            state.map(|s| s.to_string()).unwrap_or_else(|| "unknown".to_owned())
        )),
    }
}

/// What one service of this portal says about its desktop.
fn observe_service(service: &Service, newest: Option<&Task>, nodes: &HashMap<String, Node>) -> Option<Seen> {
    let spec = service.spec.as_ref()?;
    let labels = spec.labels.clone().unwrap_or_default();
    let id = labels.get(LABEL_DESKTOP_ID)?.clone();
    let name = spec.name.clone()?;
    let replicas = spec
        .mode
        .as_ref()
        .and_then(|m| m.replicated.as_ref())
        .and_then(|r| r.replicas)
        .unwrap_or(0);
    let running = replicas > 0 && newest.is_some_and(|t| task_runs(t, nodes));
    let stop_reason = match newest {
        // Scaled to no task: stopped by the portal; the store has the reason.
        _ if replicas == 0 || running => None,
        Some(task) => Some(match node_down(task, nodes) {
            Some(why) => ExitReason::Failed(why),
            None => match task.status.as_ref().and_then(|s| s.state) {
                // Not yet placed or started: a start is under way.
                Some(
                    TaskState::NEW
                    | TaskState::ALLOCATED
                    | TaskState::PENDING
                    | TaskState::ASSIGNED
                    | TaskState::ACCEPTED
                    | TaskState::PREPARING
                    | TaskState::READY
                    | TaskState::STARTING,
                ) => ExitReason::NeverStarted,
                _ => exit_reason_of(task),
            },
        }),
        None => Some(ExitReason::NeverStarted),
    };
    let port = labels.get(LABEL_PORT).and_then(|p| p.parse().ok()).unwrap_or(6901);
    let https = labels.get(LABEL_HTTPS).and_then(|p| p.parse().ok()).unwrap_or(true);
    let node = newest
        .and_then(|t| t.node_id.as_deref())
        .and_then(|n| nodes.get(n))
        .map(node_name);
    Some(Seen {
        desktop: ObservedDesktop {
            id,
            username: labels.get(LABEL_USER).cloned().unwrap_or_default(),
            type_key: labels.get(LABEL_TYPE).cloned().unwrap_or_default(),
            // The task: what runs now, so a desktop restarted and crashed between two looks
            // is told from the one seen before.
            container_id: newest
                .and_then(|t| t.id.clone())
                .or_else(|| service.id.clone())
                .unwrap_or_default(),
            running,
            endpoint: running.then_some(Endpoint {
                https,
                host: name,
                port,
                // The portal applies its own policy (KASM_VERIFY_SSL).
                verify_tls: false,
            }),
            stop_reason,
        },
        node,
    })
}

/// What one look saw of a desktop: its task and whether it ran.
type Look = (String, bool);

/// What changed between two looks at the swarm: desktops that stopped running, or whose task
/// is another one that does not run (started and ended between the looks), or that were not
/// seen before; and services that are gone.
fn changes(before: &HashMap<String, Look>, now: &[ObservedDesktop]) -> Vec<RuntimeEvent> {
    let mut events: Vec<RuntimeEvent> = now
        .iter()
        .filter(|d| !d.running && before.get(&d.id) != Some(&(d.container_id.clone(), false)))
        .map(|d| RuntimeEvent::Stopped {
            id: d.id.clone(),
            reason: d
                .stop_reason
                .clone()
                .unwrap_or_else(|| ExitReason::Failed("its service has no task".to_owned())),
        })
        .collect();
    events.extend(
        before
            .keys()
            .filter(|id| !now.iter().any(|d| &d.id == *id))
            .map(|id| RuntimeEvent::Removed { id: id.clone() }),
    );
    events
}

#[async_trait]
impl ContainerRuntime for SwarmRuntime {
    fn kind(&self) -> &'static str {
        "swarm"
    }

    fn starts_desktops(&self) -> bool {
        true
    }

    async fn ping(&self) -> Result<(), RuntimeError> {
        self.docker.ping().await
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
        let docker = self.docker.client()?;
        let name = self.service_name(&spec.id);
        if let Some(service) = self.inspect_service(&docker, &name).await? {
            let labels = service.spec.as_ref().and_then(|s| s.labels.clone()).unwrap_or_default();
            let owner = labels.get(LABEL_INSTANCE).map(String::as_str).unwrap_or("");
            if owner != self.settings().instance {
                return Err(RuntimeError::Start(format!(
                    "swarm service {name} exists but belongs to portal instance {owner:?}, not {:?}",
                    self.settings().instance
                )));
            }
            let tasks = self.tasks_of(&docker, &name).await?;
            let nodes = self.nodes(&docker).await?;
            if tasks.first().is_some_and(|t| task_runs(t, &nodes)) {
                self.wait_resolvable(&name, spec.port).await?;
                return Ok(self.endpoint(&name, spec.port, spec.https, spec.verify_tls));
            }
            // Stopped, crashed or on a lost node: a new service is placed afresh, on a healthy
            // node, from the current spec.
            tracing::info!(service = %name, "replacing a desktop service that does not run");
            match docker.delete_service(&name).await {
                Ok(()) => {}
                Err(err) if status_of(&err) == Some(404) => {}
                Err(err) => return Err(self.docker.engine_error(&err)),
            }
        }
        self.ensure_network(&docker, &self.docker.network_of(spec), !spec.internet)
            .await?;
        let _ = progress.send(Progress::Creating);
        tracing::info!(id = %spec.id, image = %spec.image, service = %name, "creating desktop service");
        match docker.create_service(self.service_spec(spec), None).await {
            Ok(_) => {}
            // A concurrent start of the same desktop created it first: wait for that one.
            Err(err) if status_of(&err) == Some(409) => {}
            Err(err) => return Err(self.docker.start_error(&err)),
        }
        self.check_privileges(&docker, &name).await;
        self.wait_running(&docker, &name, spec, &progress).await?;
        self.wait_resolvable(&name, spec.port).await?;
        Ok(self.endpoint(&name, spec.port, spec.https, spec.verify_tls))
    }

    async fn stop(&self, id: &str) -> Result<(), RuntimeError> {
        let docker = self.docker.client()?;
        let name = self.service_name(id);
        let Some(service) = self.inspect_service(&docker, &name).await? else {
            return Err(RuntimeError::NotFound(id.to_owned()));
        };
        self.scale_to_zero(&docker, &name, service).await
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        let docker = self.docker.client()?;
        let name = self.service_name(id);
        // Its task ends first: a deleted service's container lingers for its grace period,
        // and the overlay's DNS would hand a new desktop of the same name its address.
        if let Some(service) = self.inspect_service(&docker, &name).await? {
            self.scale_to_zero(&docker, &name, service).await?;
        }
        match docker.delete_service(&name).await {
            Ok(()) => Ok(()),
            Err(err) if status_of(&err) == Some(404) => Ok(()),
            Err(err) => Err(self.docker.engine_error(&err)),
        }
    }

    /// On every node: a global job of the image whose entry point does not exist, so each
    /// node pulls the image (its task's `preparing`) and the container never runs. Progress
    /// per node (as the layer); fails naming the nodes that could not get it.
    async fn pull(&self, image: &str, progress: ProgressSink) -> Result<(), RuntimeError> {
        let docker = self.docker.client()?;
        let name = crate::safe_docker_name(&format!(
            "{}pull-{}",
            self.settings().container_prefix,
            &crate::names::sha256_hex(image)[..12]
        ));
        // One left by an interrupted pull is in the way; it holds nothing.
        let _ = docker.delete_service(&name).await;
        let spec = ServiceSpec {
            name: Some(name.clone()),
            labels: Some(HashMap::from([(
                LABEL_INSTANCE.to_owned(),
                self.settings().instance.clone(),
            )])),
            task_template: Some(TaskSpec {
                container_spec: Some(TaskSpecContainerSpec {
                    image: Some(image.to_owned()),
                    command: Some(vec!["/ird-pull-only-never-runs".to_owned()]),
                    capability_drop: Some(vec!["ALL".to_owned()]),
                    ..Default::default()
                }),
                restart_policy: Some(TaskSpecRestartPolicy {
                    condition: Some(TaskSpecRestartPolicyConditionEnum::NONE),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            mode: Some(ServiceSpecMode {
                global_job: Some(HashMap::new()),
                ..Default::default()
            }),
            ..Default::default()
        };
        docker
            .create_service(spec, None)
            .await
            .map_err(|err| self.docker.start_error(&err))?;
        let result = self.follow_pull(&docker, &name, image, &progress).await;
        if let Err(err) = docker.delete_service(&name).await
            && status_of(&err) != Some(404)
        {
            tracing::warn!(service = %name, error = %describe(&err), "removing an image pull job failed");
        }
        result
    }

    /// Images and volumes of the manager's own engine. Home volumes from before homes moved
    /// into the files root are moved on one engine (`migrate-volumes`) before a school goes to
    /// a swarm, so none are listed here; a deleted account's left-over one is still removed.
    async fn has_image(&self, image: &str) -> Result<bool, RuntimeError> {
        self.docker.has_image(image).await
    }

    async fn remove_volume(&self, name: &str) -> Result<(), RuntimeError> {
        self.docker.remove_volume(name).await
    }

    async fn observe(&self) -> Result<Vec<ObservedDesktop>, RuntimeError> {
        let docker = self.docker.client()?;
        Ok(self.seen(&docker).await?.into_iter().map(|s| s.desktop).collect())
    }

    fn events(&self) -> BoxStream<'static, RuntimeEvent> {
        let Ok(docker) = self.docker.client() else {
            return Box::pin(stream::empty());
        };
        let runtime = Poller {
            docker,
            settings: self.settings().clone(),
        };
        let polls = stream::unfold(
            (runtime, None::<HashMap<String, Look>>),
            |(poller, before)| async move {
                if before.is_some() {
                    tokio::time::sleep(POLL).await;
                }
                match poller.observe().await {
                    Ok(now) => {
                        let events = changes(&before.unwrap_or_default(), &now);
                        let state = now
                            .iter()
                            .map(|d| (d.id.clone(), (d.container_id.clone(), d.running)))
                            .collect();
                        Some((events, (poller, Some(state))))
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "looking at the swarm failed; following it again shortly");
                        None
                    }
                }
            },
        );
        Box::pin(polls.flat_map(stream::iter))
    }
}

/// What the event stream needs of the runtime, owned (the stream outlives the borrow).
struct Poller {
    docker: Docker,
    settings: DockerSettings,
}

impl Poller {
    async fn observe(&self) -> Result<Vec<ObservedDesktop>, String> {
        let seen = look_at(&self.docker, &self.settings.instance)
            .await
            .map_err(|err| describe(&err))?;
        Ok(seen.into_iter().map(|s| s.desktop).collect())
    }
}

/// Services of portal instance `instance`, each with its newest task and that task's node.
async fn look_at(docker: &Docker, instance: &str) -> Result<Vec<Seen>, bollard::errors::Error> {
    let label = format!("{LABEL_INSTANCE}={instance}");
    let filters = HashMap::from([("label", vec![label.as_str()])]);
    let services = docker
        .list_services(Some(ListServicesOptionsBuilder::new().filters(&filters).build()))
        .await?;
    if services.is_empty() {
        return Ok(Vec::new());
    }
    let mut tasks = docker
        .list_tasks(None::<bollard::query_parameters::ListTasksOptions>)
        .await?;
    sort_newest_first(&mut tasks);
    let nodes: HashMap<String, Node> = docker
        .list_nodes(None::<ListNodesOptions>)
        .await?
        .into_iter()
        .filter_map(|n| Some((n.id.clone()?, n)))
        .collect();
    let mut seen: Vec<Seen> = services
        .iter()
        .filter_map(|service| {
            let service_id = service.id.as_deref()?;
            let newest = tasks.iter().find(|t| t.service_id.as_deref() == Some(service_id));
            observe_service(service, newest, &nodes)
        })
        .collect();
    seen.sort_by(|a, b| a.desktop.id.cmp(&b.desktop.id));
    Ok(seen)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bollard::models::{ContainerStatus, NodeDescription, NodeStatus, ObjectVersion, TaskStatus};

    fn node(id: &str, state: NodeState) -> (String, Node) {
        (
            id.to_owned(),
            Node {
                id: Some(id.to_owned()),
                description: Some(NodeDescription {
                    hostname: Some(format!("host-{id}")),
                    ..Default::default()
                }),
                status: Some(NodeStatus {
                    state: Some(state),
                    message: Some("heartbeat failure".to_owned()),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
    }

    fn task(node: &str, state: TaskState, index: u64) -> Task {
        Task {
            service_id: Some("svc".to_owned()),
            node_id: Some(node.to_owned()),
            version: Some(ObjectVersion { index: Some(index) }),
            status: Some(TaskStatus {
                state: Some(state),
                err: (state == TaskState::FAILED).then(|| "task: non-zero exit (3)".to_owned()),
                container_status: Some(ContainerStatus {
                    exit_code: Some(3),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn service(replicas: i64) -> Service {
        Service {
            id: Some("svc".to_owned()),
            spec: Some(ServiceSpec {
                name: Some("ird-alice-ubuntu".to_owned()),
                labels: Some(HashMap::from([
                    (LABEL_DESKTOP_ID.to_owned(), "alice-ubuntu".to_owned()),
                    (LABEL_USER.to_owned(), "alice".to_owned()),
                    (LABEL_PORT.to_owned(), "6901".to_owned()),
                ])),
                mode: Some(ServiceSpecMode {
                    replicated: Some(ServiceSpecModeReplicated {
                        replicas: Some(replicas),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_task_on_a_node_that_is_down_is_a_stopped_desktop_with_the_reason() {
        let nodes = HashMap::from([node("n1", NodeState::READY), node("n2", NodeState::DOWN)]);
        let up = observe_service(&service(1), Some(&task("n1", TaskState::RUNNING, 5)), &nodes).unwrap();
        assert!(up.desktop.running);
        assert_eq!(up.desktop.endpoint.unwrap().host, "ird-alice-ubuntu");
        assert_eq!(up.node.as_deref(), Some("host-n1 (n1)"));
        let lost = observe_service(&service(1), Some(&task("n2", TaskState::RUNNING, 5)), &nodes).unwrap();
        assert!(!lost.desktop.running);
        let reason = lost.desktop.stop_reason.unwrap().to_string();
        assert!(
            reason.contains("host-n2 (n2) is down") && reason.contains("heartbeat"),
            "{reason}"
        );
    }

    #[test]
    fn crashes_keep_their_exit_code_and_own_stops_have_no_reason() {
        let nodes = HashMap::from([node("n1", NodeState::READY)]);
        let crashed = observe_service(&service(1), Some(&task("n1", TaskState::FAILED, 9)), &nodes).unwrap();
        assert_eq!(crashed.desktop.stop_reason, Some(ExitReason::Exited { code: Some(3) }));
        let stopped = observe_service(&service(0), Some(&task("n1", TaskState::SHUTDOWN, 9)), &nodes).unwrap();
        assert!(!stopped.desktop.running);
        assert_eq!(stopped.desktop.stop_reason, None);
    }

    #[test]
    fn the_newest_task_counts() {
        let mut tasks = vec![task("n1", TaskState::FAILED, 3), task("n1", TaskState::RUNNING, 7)];
        sort_newest_first(&mut tasks);
        assert_eq!(tasks[0].status.as_ref().unwrap().state, Some(TaskState::RUNNING));
    }

    #[test]
    fn changes_report_each_stop_once_and_removals() {
        let desktop = |id: &str, running: bool| ObservedDesktop {
            id: id.to_owned(),
            username: String::new(),
            type_key: String::new(),
            container_id: format!("task-{id}"),
            running,
            endpoint: None,
            stop_reason: (!running).then(|| ExitReason::Failed("node down".to_owned())),
        };
        let look = |id: &str, running: bool| (id.to_owned(), (format!("task-{id}"), running));
        let before = HashMap::from([look("a", true), look("b", false), look("c", true)]);
        let events = changes(&before, &[desktop("a", false), desktop("b", false)]);
        assert_eq!(
            events,
            vec![
                RuntimeEvent::Stopped {
                    id: "a".to_owned(),
                    reason: ExitReason::Failed("node down".to_owned())
                },
                RuntimeEvent::Removed { id: "c".to_owned() },
            ]
        );
    }

    /// Stopped (seen), started again and crashed between two looks: another task that does
    /// not run is a stop too.
    #[test]
    fn a_new_task_that_ended_between_two_looks_is_a_stop() {
        let before = HashMap::from([("a".to_owned(), ("task-old".to_owned(), false))]);
        let crashed = ObservedDesktop {
            id: "a".to_owned(),
            username: String::new(),
            type_key: String::new(),
            container_id: "task-new".to_owned(),
            running: false,
            endpoint: None,
            stop_reason: Some(ExitReason::Exited { code: Some(137) }),
        };
        assert_eq!(
            changes(&before, std::slice::from_ref(&crashed)),
            vec![RuntimeEvent::Stopped {
                id: "a".to_owned(),
                reason: ExitReason::Exited { code: Some(137) }
            }]
        );
        let seen = HashMap::from([("a".to_owned(), ("task-new".to_owned(), false))]);
        assert_eq!(changes(&seen, &[crashed]), vec![]);
    }
}
