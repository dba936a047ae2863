//! `iserv-remote-desktop`: run the portal, manage local accounts, check a configuration.

use std::io::Read as _;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use portal::{AppState, Config};
use portal_store::{Role, Store};
use secrecy::SecretString;

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

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse().map_err(|e: portal_store::StoreError| e.to_string())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    portal::install_crypto_provider();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,hyper=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Serve { config } => serve(load(config)?).await,
        Command::CheckConfig { config } => {
            let config = load(config)?;
            println!("configuration OK\n\n{}", toml_preview(&config)?);
            Ok(())
        }
        Command::User { command } => user(command).await,
    }
}

fn load(path: Option<PathBuf>) -> anyhow::Result<Config> {
    let config = Config::load(path.as_deref()).context("invalid configuration")?;
    for name in Config::unused_seed_variables() {
        tracing::warn!(
            variable = name,
            "this seed setting is not used by this version; see README"
        );
    }
    Ok(config)
}

fn toml_preview(config: &Config) -> anyhow::Result<String> {
    // Secrets serialise as placeholders (see StaticDesktop) or not at all (secret_key).
    Ok(serde_json::to_string_pretty(config)?)
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

async fn open_store(config: Option<PathBuf>) -> anyhow::Result<Store> {
    let config = load(config)?;
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
            config,
            ..
        } => {
            let password = read_password()?;
            let store = open_store(config).await?;
            let display = display_name.unwrap_or_else(|| name.clone());
            let user = store.create_local_user(&name, &display, role, &password).await?;
            println!("created {} ({})", user.username, user.role);
        }
        UserCommand::Passwd { name, config, .. } => {
            let password = read_password()?;
            let store = open_store(config).await?;
            store.set_password(&name, &password).await?;
            println!("password of {name} changed");
        }
        UserCommand::List { config } => {
            let store = open_store(config).await?;
            for u in store.list_users().await? {
                println!("{}\t{}\t{}", u.username, u.role, u.display_name);
            }
        }
    }
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
    let url = state.config.public_url();
    println!(
        "IServ Remote Desktop listening on http://{} — open {url}",
        listener.local_addr()?
    );
    println!("WebSocket support enabled: desktops at {url}desktop/{{id}}/, relay at …/websockify");
    match bootstrap_admin(&state.store).await? {
        Some(password) => println!(
            "No accounts existed, so one was created. Sign in at {url}login as \"admin\" with password \"{password}\" \
             (change it: iserv-remote-desktop user passwd admin --password-stdin)"
        ),
        None => println!(
            "Sign in at {url}login (add accounts: iserv-remote-desktop user add NAME --role admin|teacher|student --password-stdin)"
        ),
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
    use rand::Rng as _;
    let password: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(16)
        .map(char::from)
        .collect();
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
