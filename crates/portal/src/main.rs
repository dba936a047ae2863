//! `iserv-remote-desktop`: run the portal, manage local accounts, check a configuration.

use std::io::Read as _;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use portal::config::LogFormat;
use portal::domain::local_groups;
use portal::{AppState, Config};
use portal_store::{Role, Store};
use secrecy::SecretString;

mod healthcheck;

#[derive(Parser)]
#[command(
    name = "iserv-remote-desktop",
    version,
    about = "Linux desktops in the browser for IServ schools"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the portal.
    Serve {
        /// TOML configuration file; environment variables override it.
        #[arg(long, env = "IRD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Manage local accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Check the configuration and print the effective settings (secrets hidden).
    CheckConfig {
        #[arg(long, env = "IRD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Copy homes out of the Docker volumes of older versions (`docker.home_volume_prefix`,
    /// `docker.shared_volume`) into the files root. Never overwrites, never deletes; safe to run
    /// again. The portal does this once by itself at its first start.
    MigrateVolumes {
        /// Only report what would be copied and what conflicts.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, env = "IRD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Import the Flask version's files: `DIR/users/<IServ subject>` into homes,
    /// `DIR/shared/public` into the shared folder, `DIR/assignments/<group>/<folder>` into
    /// class folders. Safe to run again; never overwrites, never changes DIR.
    ImportFlask {
        /// The Flask version's data folder (with users/, shared/, assignments/).
        #[arg(long)]
        data: PathBuf,
        /// Report what would be done, write nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, env = "IRD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Exit 0 when the running portal answers `GET /healthz` (for container health checks,
    /// which have no curl in a `FROM scratch` image).
    Healthcheck {
        /// Default: the configured `listen` address (0.0.0.0 → 127.0.0.1).
        #[arg(long)]
        url: Option<String>,
        #[arg(long, env = "IRD_CONFIG")]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a local account; the password is read from standard input.
    Add {
        name: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Read the password from standard input (one line).
        #[arg(long, required = true)]
        password_stdin: bool,
        #[arg(long)]
        display_name: Option<String>,
        /// A group (class) the account is in; repeat for several, or separate by commas.
        #[arg(long = "group", value_name = "NAME")]
        groups: Vec<String>,
        #[arg(long, env = "IRD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Set the groups (classes) of a local account, replacing its current ones. IServ
    /// accounts get their groups from IServ.
    Groups {
        name: String,
        /// The groups: `--set 5a,6b` or `--set 5a --set 6b`; `--set ""` removes all.
        #[arg(long = "set", value_name = "NAMES", required = true)]
        set: Vec<String>,
        #[arg(long, env = "IRD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Set a local account's password from standard input.
    Passwd {
        name: String,
        #[arg(long, required = true)]
        password_stdin: bool,
        #[arg(long, env = "IRD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// List accounts.
    List {
        #[arg(long, env = "IRD_CONFIG")]
        config: Option<PathBuf>,
    },
}

/// ` in 5a, 6b` after "created …", or nothing.
fn groups_suffix(groups: &[String]) -> String {
    if groups.is_empty() {
        String::new()
    } else {
        format!(" in {}", groups.join(", "))
    }
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse().map_err(|e: portal_store::StoreError| e.to_string())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    portal::install_crypto_provider();
    match Cli::parse().command {
        Command::Serve { config } => serve(load(config)?).await,
        Command::CheckConfig { config } => {
            let config = load(config)?;
            println!("configuration OK\n\n{}", toml_preview(&config)?);
            Ok(())
        }
        Command::User { command } => user(command).await,
        Command::Healthcheck { url, config } => healthcheck::run(url, load(config)?).await,
        Command::MigrateVolumes { dry_run, config } => migrate_volumes(load(config)?, dry_run).await,
        Command::ImportFlask { data, dry_run, config } => import_flask(&data, dry_run, config).await,
    }
}

/// Logs go to standard error, as text or (`log_format = "json"`) one JSON object per line.
/// Set up once the configuration is read, since it chooses the format.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,hyper=warn"));
    // Colour codes only for a person at a terminal, not in the journal or `docker logs`.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        // Control characters in logged values (a newline in a username) are escaped.
        .with_writer(portal::telemetry::log_lines::EscapedLines::new(std::io::stderr, ansi));
    // A second call (a command that loads the configuration twice) keeps the first setup.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

fn load(path: Option<PathBuf>) -> anyhow::Result<Config> {
    let config = match Config::load(path.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            // The file could not say which format it wants; the environment still can.
            let json = std::env::var("IRD_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
            init_logging(if json { LogFormat::Json } else { LogFormat::Text });
            return Err(anyhow::Error::new(e).context("invalid configuration"));
        }
    };
    init_logging(config.log_format);
    for name in Config::unused_seed_variables() {
        tracing::warn!(
            variable = name,
            "this seed setting is not used by this version; see README"
        );
    }
    Ok(config)
}

fn toml_preview(config: &Config) -> anyhow::Result<String> {
    // Secrets serialise as placeholders (see StaticDesktop) or not at all (secret_key); the
    // database URL may carry a password, which is masked here.
    let mut value = serde_json::to_value(config)?;
    if let Some(url) = value.get_mut("database_url").and_then(|u| u.as_str().map(redact_url)) {
        value["database_url"] = url.into();
    }
    Ok(serde_json::to_string_pretty(&value)?)
}

/// `postgres://user:secret@db/ird` → `postgres://user:***@db/ird`; anything else unchanged.
fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => raw.to_owned(),
    }
}

fn read_password() -> anyhow::Result<SecretString> {
    let mut input = String::new();
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut input)
        .context("reading the password from standard input")?;
    let password = input.lines().next().unwrap_or("").to_owned();
    if password.is_empty() {
        bail!("no password on standard input (give it as the first line)");
    }
    Ok(SecretString::from(password))
}

async fn open_store_of(config: Option<PathBuf>) -> anyhow::Result<Store> {
    open_store(&load(config)?).await
}

async fn open_store(config: &Config) -> anyhow::Result<Store> {
    if config.database_url.is_none() {
        std::fs::create_dir_all(&config.data_dir).with_context(|| format!("creating {}", config.data_dir.display()))?;
    }
    Ok(Store::connect(&config.database_url()).await?)
}

async fn user(command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            name,
            role,
            display_name,
            groups,
            config,
            ..
        } => {
            // Checked before anything is created, so a bad name leaves no half-made account.
            let groups = portal_store::clean_group_names(&local_groups::parse_list(groups.iter().map(String::as_str)))?;
            let password = read_password()?;
            let store = open_store_of(config).await?;
            let display = display_name.unwrap_or_else(|| name.clone());
            let user = store.create_local_user(&name, &display, role, &password).await?;
            if !groups.is_empty() {
                local_groups::set(&store, &user, &groups, None).await?;
            }
            println!("created {} ({}){}", user.username, user.role, groups_suffix(&groups));
        }
        UserCommand::Groups { name, set, config } => {
            let store = open_store_of(config).await?;
            let Some(user) = store.user_by_username(&name).await? else {
                bail!("there is no account {name:?} (see: user list)");
            };
            if user.external_subject.is_some() {
                bail!(
                    "{} signs in with IServ, which sets its groups at every sign-in; change them in IServ",
                    user.username
                );
            }
            let groups = local_groups::parse_list(set.iter().map(String::as_str));
            let groups = local_groups::set(&store, &user, &groups, None).await?;
            println!(
                "groups of {}: {}",
                user.username,
                if groups.is_empty() {
                    "none".to_owned()
                } else {
                    groups.join(", ")
                }
            );
        }
        UserCommand::Passwd { name, config, .. } => {
            let password = read_password()?;
            let store = open_store_of(config).await?;
            store.set_password(&name, &password).await?;
            println!("password of {name} changed");
        }
        UserCommand::List { config } => {
            let store = open_store_of(config).await?;
            for u in store.list_users().await? {
                println!("{}\t{}\t{}\t{}", u.username, u.role, u.display_name, u.groups.join(","));
            }
        }
    }
    Ok(())
}

/// `migrate-volumes`: the same copy the first start makes, on demand, with its report.
async fn migrate_volumes(config: Config, dry_run: bool) -> anyhow::Result<()> {
    use portal::domain::volume_migration;
    if config.runtime != portal::config::RuntimeKind::Docker {
        bail!("runtime is not \"docker\": there are no home volumes to move");
    }
    let store = open_store(&config).await?;
    let runtime = desktop_runtime::DockerRuntime::connect(config.docker.settings())
        .await
        .context("setting up the Docker runtime (section `docker`)")?;
    let report = volume_migration::migrate(&store, &runtime, &config, dry_run).await?;
    print!("{}", report.render());
    if !dry_run && !report.failed() {
        // The start-up run need not do it again.
        let marker = config.files_root().join(volume_migration::MARKER);
        std::fs::write(&marker, report.render()).with_context(|| format!("writing {}", marker.display()))?;
    }
    if report.failed() {
        bail!("some volumes could not be copied (see above); run the command again once the cause is fixed");
    }
    Ok(())
}

/// `import-flask`: the Flask version's files into homes, the shared folder and class folders.
async fn import_flask(data: &std::path::Path, dry_run: bool, config: Option<PathBuf>) -> anyhow::Result<()> {
    let config = load(config)?;
    let store = open_store(&config).await?;
    let spaces = portal::domain::files::FileSpaces::new(&config);
    let report = portal::domain::flask_import::import(&store, &spaces, data, dry_run)
        .await
        .with_context(|| format!("importing {}", data.display()))?;
    print!("{report}");
    Ok(())
}

async fn serve(mut config: Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {} (setting `listen`)", config.listen))?;
    // With `listen = "…:0"` the real port is known only now.
    if config.public_url.is_none() {
        config.public_url = Some(format!("http://{}/", listener.local_addr()?).parse()?);
    }
    let state = AppState::new(config).await?;
    // Homes of an older version in Docker volumes: into the files root before anyone can
    // start a desktop on an empty home. Once (a marker records it); a failure is reported and
    // tried again at the next start, the portal serves anyway.
    match portal::domain::volume_migration::migrate_once(&state.store, state.runtime.as_ref(), &state.config).await {
        Ok(Some(report)) if !report.volumes.is_empty() || !report.skipped.is_empty() => {
            for line in report.render().lines() {
                tracing::info!("{line}");
            }
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %e, "moving homes out of Docker volumes failed; run `iserv-remote-desktop migrate-volumes` to see why")
        }
    }
    let url = state.config.public_url();
    let addr = listener.local_addr()?;
    let metrics = state.metrics_addr().map(|a| format!("http://{a}/metrics"));
    tracing::info!(listen = %addr, %url, metrics = metrics.as_deref().unwrap_or("disabled"), "IServ Remote Desktop listening");
    // With JSON logs every output line must be JSON for the collector: no console banner, and
    // the first admin password goes to a file instead of into the log.
    let json = state.config.log_format == LogFormat::Json;
    if !json {
        println!("IServ Remote Desktop listening on http://{addr} — open {url}");
        match &state.desktop_origins {
            Some(origins) => println!("WebSocket support enabled; each desktop on its own origin: {origins}"),
            None => println!(
                "WebSocket support enabled; desktop_origin is not set, so desktops share the portal's origin and only \
                 their owners may open them (set desktop_origin, e.g. https://{{id}}.desktops.school.example)"
            ),
        }
    }
    // With the password form off, a bootstrap admin could never sign in: admins come from
    // IServ groups or roles (`oidc.admin_groups`, `oidc.admin_roles`).
    let bootstrap = if state.config.local_login {
        bootstrap_admin(&state.store).await?
    } else {
        tracing::info!("password sign-in is off (local_login = false); everyone signs in with IServ");
        if !json {
            println!("Password sign-in is off (local_login = false): everyone signs in with IServ at {url}auth/login");
        }
        None
    };
    match bootstrap {
        Some(password) if json => {
            let file = write_initial_password(&state.config.data_dir, &password)?;
            tracing::warn!(
                file = %file.display(),
                "no accounts existed, so \"admin\" was created; its password is in this file (read it, delete it, change the password)"
            );
        }
        Some(password) => println!(
            "No accounts existed, so one was created. Sign in at {url}login as \"admin\" with password \"{password}\" \
             (change it: iserv-remote-desktop user passwd admin --password-stdin)"
        ),
        None if json => {}
        None => println!(
            "Sign in at {url}login (add accounts: iserv-remote-desktop user add NAME --role admin|teacher|student --password-stdin)"
        ),
    }
    if let (false, Some(metrics)) = (json, &metrics) {
        println!("Prometheus metrics at {metrics} (a separate listener, not the public port)");
    }
    portal::run(state, listener, shutdown_signal()).await?;
    Ok(())
}

/// On the very first start there is nobody to sign in as: create `admin` with a random
/// password, shown once on the console.
async fn bootstrap_admin(store: &Store) -> anyhow::Result<Option<String>> {
    if !store.list_users().await?.is_empty() {
        return Ok(None);
    }
    let password = portal_store::random_secret::<16>();
    store
        .create_local_user(
            "admin",
            "Administrator",
            Role::Admin,
            &SecretString::from(password.clone()),
        )
        .await?;
    Ok(Some(password))
}

/// Writes the generated admin password to `data_dir/initial-admin-password`, readable by the
/// portal's user only.
fn write_initial_password(data_dir: &std::path::Path, password: &str) -> anyhow::Result<PathBuf> {
    use std::io::Write as _;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let path = data_dir.join("initial-admin-password");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    writeln!(file, "{password}").with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}
