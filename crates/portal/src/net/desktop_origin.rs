//! Desktop origins: each desktop is served on a host of its own, `{label}.{suffix}`, made from
//! the `desktop_origin` template (e.g. `https://{id}.desktops.school.example`). A desktop's
//! page is hostile to everyone but its owner; on an origin of its own it can never act with
//! the portal's cookies or read the portal's pages.
//!
//! The host label is the desktop id itself when that is a valid DNS label (`alice-ubuntu`);
//! any other id (dots, capitals, over 63 characters — IServ names like `max.mustermann` are
//! common) gets a label derived from its hash, so one wildcard certificate covers every desktop.

use std::fmt;

use sha2::{Digest as _, Sha256};
use url::Url;

/// Marks a label that is a hash of the desktop id, not the id itself.
const HASHED_PREFIX: &str = "d0-";
/// Labels starting with this are the portal's own, never a desktop's (such ids get a hashed
/// label like any other id that is no plain label).
const RESERVED_PREFIX: &str = "p0-";
/// The host label of the preview origin: PDF previews of users' files are served there, apart
/// from the portal's origin and its cookies (`web/preview.rs`).
pub const PREVIEW_LABEL: &str = "p0-preview";
/// Hex digits of the hash in a hashed label (96 bits: collisions are not a practical concern,
/// and access never depends on the label anyway).
const HASH_HEX: usize = 24;

/// A parsed `desktop_origin` template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesktopOrigin {
    /// `http` or `https`.
    scheme: String,
    /// What follows `{id}` in the host, lowercase, with its leading dot.
    suffix: String,
    /// The port when it is not the scheme's default.
    port: Option<u16>,
}

/// Why a template is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(String);

impl DesktopOrigin {
    /// Parses a template like `https://{id}.desktops.school.example[:port]`: http(s), no path,
    /// `{id}` exactly once and as the whole first label of the host.
    pub fn parse(template: &str) -> Result<DesktopOrigin, TemplateError> {
        let err = |m: &str| {
            TemplateError(format!(
                "{m} (got {template:?}; example: https://{{id}}.desktops.school.example)"
            ))
        };
        if template.matches("{id}").count() != 1 {
            return Err(err("must contain {id} exactly once"));
        }
        let url =
            Url::parse(&template.replace("{id}", "placeholder-id")).map_err(|e| err(&format!("is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(err("must start with https:// (or http:// for a lab)"));
        }
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err(err("must not have a path, query or fragment"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(err("must not contain credentials"));
        }
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let Some(suffix) = host.strip_prefix("placeholder-id") else {
            return Err(err("{id} must be the first part of the host name"));
        };
        if !suffix.starts_with('.') || suffix.len() < 2 || suffix.contains("placeholder-id") {
            return Err(err(
                "{id} must be a whole label followed by a domain, like {id}.desktops.school.example",
            ));
        }
        // In a domain with a right-to-left label (Hebrew, Arabic), IDNA's bidi rule refuses
        // any label that starts with a digit, so a desktop id like `5a-ubuntu` would get an
        // origin browsers refuse (the fuzz target `desktop_host` found this). Such a domain
        // cannot carry every desktop label; say so now instead of failing per desktop.
        if Url::parse(&template.replace("{id}", "0placeholder-id")).is_err() {
            return Err(err(
                "its domain has a right-to-left label, where host names may not start with a digit; \
                 use a domain without right-to-left labels for the desktops",
            ));
        }
        Ok(DesktopOrigin {
            scheme: url.scheme().to_owned(),
            suffix: suffix.to_owned(),
            port: url.port(),
        })
    }

    /// The dev default for a loopback `public_url`: `http://{id}.localhost:<port>` (browsers
    /// resolve `*.localhost` to loopback by themselves). `None` for any other public URL.
    pub fn dev_default(public_url: &Url) -> Option<DesktopOrigin> {
        let loopback = match public_url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        };
        loopback.then(|| DesktopOrigin {
            scheme: "http".to_owned(),
            suffix: ".localhost".to_owned(),
            port: public_url.port_or_known_default().filter(|p| *p != 80),
        })
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// Desktop hosts under `localhost` (dev): browsers treat them as secure contexts.
    pub fn is_localhost(&self) -> bool {
        self.suffix == ".localhost"
    }

    /// `:port` when the port is not the scheme's default.
    fn port_suffix(&self) -> String {
        self.port.map(|p| format!(":{p}")).unwrap_or_default()
    }

    /// The origin of desktop `id`, e.g. `https://alice-ubuntu.desktops.school.example`.
    pub fn origin_of(&self, id: &str) -> String {
        format!(
            "{}://{}{}{}",
            self.scheme,
            host_label(id),
            self.suffix,
            self.port_suffix()
        )
    }

    /// The preview origin, e.g. `https://p0-preview.desktops.school.example`: a host under the
    /// same wildcard (certificate, DNS) that no desktop can ever get.
    pub fn preview_origin(&self) -> String {
        format!("{}://{PREVIEW_LABEL}{}{}", self.scheme, self.suffix, self.port_suffix())
    }

    /// The host label in a request's `Host` (port included, any case) when it names a host of
    /// this template; `None` for every other host (the portal's own, another site's).
    pub fn label_in_host<'a>(&self, host: &'a str) -> Option<&'a str> {
        let (name, port) = split_host_port(host)?;
        let default_port = if self.scheme == "https" { 443 } else { 80 };
        if port.unwrap_or(default_port) != self.port.unwrap_or(default_port) {
            return None;
        }
        let suffix_at = name.len().checked_sub(self.suffix.len())?;
        let (label, suffix) = (name.get(..suffix_at)?, name.get(suffix_at..)?);
        (suffix.eq_ignore_ascii_case(&self.suffix) && is_label(label)).then_some(label)
    }

    /// For `Content-Security-Policy: frame-src`: every desktop host, e.g.
    /// `https://*.desktops.school.example`.
    pub fn csp_source(&self) -> String {
        format!("{}://*{}{}", self.scheme, self.suffix, self.port_suffix())
    }

    /// Whether the portal at `public_url` would itself be one of the desktop hosts — on any
    /// port: cookies do not keep ports apart (RFC 6265 §8.5), so a desktop on the portal's host
    /// name could set or overwrite the portal's cookies even with the portal on another port.
    pub fn covers(&self, public_url: &Url) -> bool {
        let default_port = if self.scheme == "https" { 443 } else { 80 };
        public_url
            .host_str()
            .map(|h| {
                let host = format!("{h}:{}", self.port.unwrap_or(default_port));
                self.label_in_host(&host).is_some() || h.eq_ignore_ascii_case(self.suffix.trim_start_matches('.'))
            })
            .unwrap_or(false)
    }
}

impl fmt::Display for DesktopOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{{id}}{}{}", self.scheme, self.suffix, self.port_suffix())
    }
}

/// The DNS label that stands for desktop `id` in its host name.
pub fn host_label(id: &str) -> String {
    if is_label(id) && !id.starts_with(HASHED_PREFIX) && !id.starts_with(RESERVED_PREFIX) {
        return id.to_owned();
    }
    let digest = Sha256::digest(id.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{HASHED_PREFIX}{}", &hex[..HASH_HEX])
}

/// Whether `label` is a lowercase DNS label: `a-z`, `0-9`, `-` inside, 1–63 characters, and
/// no `xn--` label (browsers decode those as punycode and refuse the URL when that fails; the
/// fuzz target `desktop_host` found a desktop id `xn--…` whose origin was no URL).
fn is_label(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
        && !label.starts_with("xn--")
}

/// `name[:port]` → (name lowercased is up to the caller, port). `None` for a malformed value
/// (IPv6 literals never name a desktop, so they need no parsing here).
fn split_host_port(host: &str) -> Option<(&str, Option<u16>)> {
    if host.starts_with('[') {
        return None;
    }
    match host.rsplit_once(':') {
        Some((name, port)) => Some((name, Some(port.parse().ok()?))),
        None => Some((host, None)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_checked() {
        let o = DesktopOrigin::parse("https://{id}.desktops.school.example").unwrap();
        assert_eq!(
            o.origin_of("alice-ubuntu"),
            "https://alice-ubuntu.desktops.school.example"
        );
        assert_eq!(o.csp_source(), "https://*.desktops.school.example");
        assert_eq!(o.to_string(), "https://{id}.desktops.school.example");
        let dev = DesktopOrigin::parse("http://{id}.localhost:5020").unwrap();
        assert_eq!(dev.origin_of("a"), "http://a.localhost:5020");
        for bad in [
            "https://desktops.school.example",
            "https://{id}.{id}.example",
            "ftp://{id}.example",
            "https://{id}.example/path",
            "https://x-{id}.example",
            "https://{id}",
            "https://example/{id}",
            "https://u:p@{id}.example",
            // Hebrew: a digit-first label (`5a-ubuntu`) would be no valid host there.
            "https://{id}.xn--4db.example",
        ] {
            assert!(DesktopOrigin::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn hosts_name_a_desktop_only_under_the_template() {
        let o = DesktopOrigin::parse("https://{id}.desktops.school.example").unwrap();
        assert_eq!(
            o.label_in_host("alice-ubuntu.desktops.school.example"),
            Some("alice-ubuntu")
        );
        assert_eq!(
            o.label_in_host("alice-ubuntu.desktops.school.example:443"),
            Some("alice-ubuntu")
        );
        assert_eq!(
            o.label_in_host("ALICE.Desktops.School.Example"),
            None,
            "labels are lowercase"
        );
        for other in [
            "desktop.school.example",
            "desktops.school.example",
            "a.b.desktops.school.example",
            "alice.desktops.school.example:8443",
            "alice.desktops.school.example.evil",
            "evil-desktops.school.example",
            "[::1]:443",
            "alice.desktops.school.example:x",
            "",
        ] {
            assert_eq!(o.label_in_host(other), None, "{other}");
        }
        let dev = DesktopOrigin::dev_default(&Url::parse("http://127.0.0.1:5020/").unwrap()).unwrap();
        assert_eq!(dev.label_in_host("bob-code.localhost:5020"), Some("bob-code"));
        assert_eq!(dev.label_in_host("bob-code.localhost:5021"), None);
        assert_eq!(dev.label_in_host("127.0.0.1:5020"), None);
        assert!(DesktopOrigin::dev_default(&Url::parse("https://desktop.school.example/").unwrap()).is_none());
    }

    #[test]
    fn ids_that_are_no_dns_label_get_a_hashed_one() {
        assert_eq!(host_label("alice-ubuntu"), "alice-ubuntu");
        let dotted = host_label("max.mustermann-ubuntu");
        assert!(
            dotted.starts_with(HASHED_PREFIX) && dotted.len() == 27 && is_label(&dotted),
            "{dotted}"
        );
        assert_ne!(host_label("Max-ubuntu"), "Max-ubuntu");
        assert!(is_label(&host_label(&"x".repeat(100))));
        // A made-up id that looks like a hashed label is hashed too, so it can't pose as another.
        assert_ne!(host_label(&dotted), dotted);
        // Punycode labels are hashed: `xn--abc` is no valid punycode, and browsers refuse it.
        let puny = host_label("xn--abc");
        assert!(puny.starts_with(HASHED_PREFIX), "{puny}");
        let o = DesktopOrigin::parse("https://{id}.desktops.school.example").unwrap();
        assert!(Url::parse(&o.origin_of("xn--abc")).is_ok());
        assert_eq!(o.label_in_host("xn--abc.desktops.school.example"), None);
        // The preview origin's label is never a desktop's, not even of a desktop named so.
        assert_ne!(host_label(PREVIEW_LABEL), PREVIEW_LABEL);
        assert!(host_label("p0-anything").starts_with(HASHED_PREFIX));
        assert_eq!(o.preview_origin(), "https://p0-preview.desktops.school.example");
        assert_eq!(
            o.label_in_host("p0-preview.desktops.school.example"),
            Some(PREVIEW_LABEL)
        );
    }

    #[test]
    fn the_portal_host_must_not_be_a_desktop_host() {
        let o = DesktopOrigin::parse("https://{id}.school.example").unwrap();
        assert!(o.covers(&Url::parse("https://desktop.school.example/").unwrap()));
        assert!(o.covers(&Url::parse("https://school.example/").unwrap()));
        assert!(!o.covers(&Url::parse("https://portal.other.example/").unwrap()));
        // Found by the config fuzz target: the portal on another port shares its cookies with
        // a desktop on its host name.
        assert!(o.covers(&Url::parse("https://desktop.school.example:8443/").unwrap()));
        let on_port = DesktopOrigin::parse("https://{id}.school.example:8443").unwrap();
        assert!(on_port.covers(&Url::parse("https://desktop.school.example/").unwrap()));
        assert!(on_port.covers(&Url::parse("https://desktop.school.example:8443/").unwrap()));
    }
}
