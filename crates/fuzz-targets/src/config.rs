//! The configuration loader (`Config::load`): a TOML file, then the environment (`IRD_…` with
//! `__` for nesting, and the seed's names), then validation — exactly as at start.
//!
//! Input: the file's bytes, optionally followed by a line `%%env` and `NAME=value` lines, which
//! become the whole environment (inside a `figment::Jail`, which restores the real one).
//!
//! Invariants: loading never panics, whatever the file or variables hold; a loaded
//! configuration validates again; desktop origins, once set to a template, are on (never
//! silently off), never cover the portal's own host, and are https when the portal is; the
//! preview `check-config` prints can be made and holds no secret; durations are not zero.

use std::path::Path;

use figment::Jail;
use portal::Config;
use url::Url;

const ENV_MARKER: &[u8] = b"\n%%env\n";

// `Jail::try_with` wants a closure returning figment's (large) error type.
#[allow(clippy::result_large_err)]
pub fn run(data: &[u8]) {
    let (file, env) = match data.windows(ENV_MARKER.len()).position(|w| w == ENV_MARKER) {
        Some(at) => (&data[..at], &data[at + ENV_MARKER.len()..]),
        None => (data, &b""[..]),
    };
    let vars: Vec<(String, String)> = env
        .split(|b| *b == b'\n')
        .filter_map(|line| {
            let line = String::from_utf8_lossy(line);
            let (name, value) = line.split_once('=')?;
            // What an environment can hold at all.
            (!name.is_empty() && !name.contains('\0') && !value.contains('\0'))
                .then(|| (name.to_owned(), value.to_owned()))
        })
        .collect();
    let jailed = Jail::try_with(|jail| {
        jail.clear_env();
        for (name, value) in &vars {
            jail.set_env(name, value);
        }
        let path = jail.directory().join("portal.toml");
        std::fs::write(&path, file).map_err(|e| e.to_string())?;
        if let Ok(config) = Config::load(Some(Path::new(&path))) {
            check(&config);
        }
        Ok(())
    });
    // Only the jail itself (a temporary directory) can fail here.
    jailed.unwrap_or_else(|e| panic!("the jail failed: {e}"));
}

fn check(config: &Config) {
    config
        .validate()
        .unwrap_or_else(|e| panic!("a loaded configuration does not validate: {e}"));
    let public = config.public_url();
    assert!(matches!(public.scheme(), "http" | "https") && public.host_str().is_some());
    assert!(config.public_origin().starts_with(&format!("{}://", public.scheme())));
    let template = config
        .desktop_origin
        .as_deref()
        .filter(|t| !t.trim().is_empty() && !t.trim().eq_ignore_ascii_case("off"));
    let origins = config.desktop_origins();
    if template.is_some() {
        let o = origins
            .as_ref()
            .unwrap_or_else(|| panic!("desktop_origin {template:?} is set but off"));
        if public.scheme() == "https" {
            assert_eq!(o.scheme(), "https", "plain-http desktops under an https portal");
        }
    }
    if let (Some(o), Some(host)) = (&origins, public.host_str()) {
        // On any port: cookies do not keep ports apart. The portal's own and the desktops'.
        let desktop_port = Url::parse(&o.origin_of("a"))
            .ok()
            .and_then(|u| u.port_or_known_default());
        let ports = [public.port_or_known_default(), desktop_port];
        for host in ports
            .iter()
            .flatten()
            .map(|p| format!("{host}:{p}"))
            .chain([host.to_owned()])
        {
            assert_eq!(
                o.label_in_host(&host),
                None,
                "the portal's host {host} is a desktop host"
            );
        }
    }
    assert!(!config.session_ttl().is_zero());
    assert!(config.session_idle().is_none_or(|d| !d.is_zero()));
    // What `check-config` prints: it can be made, and secrets are not in it.
    let preview = serde_json::to_value(config).unwrap_or_else(|e| panic!("no preview: {e}"));
    assert!(preview.get("secret_key").is_none());
    assert!(preview.get("oidc").and_then(|o| o.get("client_secret")).is_none());
}
