//! `fake-iserv`: the test OpenID provider as a process, to try the portal's sign-in by hand.
//!
//! `cargo run -p testkit --bin fake-iserv -- --port 5021 --layout auth --user anna --teacher`
//! prints the issuer and the client credentials to put into the portal's configuration; every
//! sign-in then succeeds as the chosen user (no password prompt, like a "trusted" IServ client).

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use testkit::oidc::{ClientAuth, Layout, OidcProvider, ProviderConfig, TestUser};
use tokio::net::TcpListener;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LayoutArg {
    /// `/iserv/auth/...` (newer IServ)
    Auth,
    /// `/iserv/oauth/v2/...` (older IServ)
    OauthV2,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ClientAuthArg {
    Post,
    Basic,
    Both,
}

/// A fake IServ OpenID Connect provider on 127.0.0.1 (plain HTTP, test keys: never expose it).
#[derive(Debug, Parser)]
#[command(name = "fake-iserv")]
struct Args {
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 5021)]
    port: u16,
    #[arg(long, value_enum, default_value_t = LayoutArg::Auth)]
    layout: LayoutArg,
    /// Login name of the user who signs in.
    #[arg(long, default_value = "anna")]
    user: String,
    /// The user is a teacher (role ROLE_TEACHER, group lehrer); default: a student of 5a.
    #[arg(long, conflicts_with = "admin")]
    teacher: bool,
    /// The user is an administrator (role ROLE_ADMIN, group admins).
    #[arg(long)]
    admin: bool,
    /// Send groups as an object keyed by group account instead of a list of names.
    #[arg(long)]
    groups_object: bool,
    /// Send groups, roles and uuid as iserv:groups, iserv:roles, iserv:uuid.
    #[arg(long)]
    prefixed: bool,
    /// Answer 404 for /.well-known/openid-configuration.
    #[arg(long)]
    no_discovery: bool,
    #[arg(long, default_value = "portal")]
    client_id: String,
    #[arg(long, default_value = "portal-secret")]
    client_secret: String,
    #[arg(long, value_enum, default_value_t = ClientAuthArg::Both)]
    client_auth: ClientAuthArg,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let layout = match args.layout {
        LayoutArg::Auth => Layout::Auth,
        LayoutArg::OauthV2 => Layout::OauthV2,
    };
    let mut cfg = ProviderConfig::new(layout);
    cfg.discovery = !args.no_discovery;
    cfg.client_id = args.client_id;
    cfg.client_secret = args.client_secret;
    cfg.client_auth = match args.client_auth {
        ClientAuthArg::Post => ClientAuth::Post,
        ClientAuthArg::Basic => ClientAuth::Basic,
        ClientAuthArg::Both => ClientAuth::Both,
    };

    let mut user = if args.teacher {
        TestUser::teacher(&args.user)
    } else if args.admin {
        TestUser::admin(&args.user)
    } else {
        TestUser::student(&args.user)
    };
    if args.groups_object {
        user = user.groups_as_object();
    }
    if args.prefixed {
        user = user.prefixed();
    }

    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    let listener = match TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("fake-iserv: cannot listen on {addr}: {err} (choose another --port)");
            return ExitCode::FAILURE;
        }
    };
    let provider = match OidcProvider::start_on(listener, cfg).await {
        Ok(provider) => provider,
        Err(err) => {
            eprintln!("fake-iserv: cannot start: {err}");
            return ExitCode::FAILURE;
        }
    };
    provider.set_user(user.clone());
    let endpoints = provider.endpoints();
    let cfg = provider.config();
    println!("fake-iserv: issuer        {}", endpoints.issuer);
    println!("fake-iserv: client id     {}", cfg.client_id);
    println!("fake-iserv: client secret {}", cfg.client_secret);
    println!("fake-iserv: scopes        {}", cfg.scopes_supported.join(" "));
    println!("fake-iserv: authorize     {}", endpoints.authorize);
    println!("fake-iserv: token         {}", endpoints.token);
    println!("fake-iserv: userinfo      {}", endpoints.userinfo);
    println!("fake-iserv: jwks          {}", endpoints.jwks);
    println!(
        "fake-iserv: signs everyone in as {} (sub {}); Ctrl-C stops",
        user.login().unwrap_or_default(),
        user.sub
    );
    println!(
        "fake-iserv: for the portal: IRD_OIDC__ISSUER={} IRD_OIDC__CLIENT_ID={} IRD_OIDC__CLIENT_SECRET={}",
        endpoints.issuer, cfg.client_id, cfg.client_secret
    );
    if let Err(err) = tokio::signal::ctrl_c().await {
        eprintln!("fake-iserv: cannot wait for Ctrl-C: {err}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
