//! Desktop origins (`net::desktop_origin`): the `desktop_origin` template, the host label of a
//! desktop id, and which desktop a request's `Host` names.
//!
//! Input: up to four lines — a template, a `Host` value, a desktop id, a portal `public_url`.
//!
//! Invariants: a template prints back to itself; every id gets a lowercase DNS label, and the
//! host of its origin names exactly that label again (formats back to the same host); a host
//! names a desktop only when it is `{label}{suffix}` on the template's port, and a label that
//! looks like an id names that id; a made-up id never gets another id's hashed label
//! (`d0-…`) nor a label reserved for the portal (`p0-…`, the preview origin); a portal the
//! template does not `cover` is never taken for a desktop host.

use portal::net::desktop_origin::{DesktopOrigin, host_label};
use url::Url;

/// Used when the input's template does not parse, so hosts and ids are still exercised.
const TEMPLATES: [&str; 3] = [
    "https://{id}.desktops.school.example",
    "http://{id}.localhost:5020",
    "https://{id}.school.example:8443",
];

pub fn run(data: &[u8]) {
    let parts = crate::lines(data, 4);
    let text = |i: usize| parts.get(i).map(|l| String::from_utf8_lossy(l).into_owned());
    let template = text(0).unwrap_or_default();
    let host = text(1).unwrap_or_default();
    let id = text(2).unwrap_or_default();
    let public_url = text(3).and_then(|u| Url::parse(&u).ok());

    check_label(&id);
    let mut origins: Vec<DesktopOrigin> = TEMPLATES.iter().filter_map(|t| DesktopOrigin::parse(t).ok()).collect();
    assert_eq!(origins.len(), TEMPLATES.len());
    if let Ok(o) = DesktopOrigin::parse(&template) {
        assert_eq!(
            DesktopOrigin::parse(&o.to_string()).as_ref(),
            Ok(&o),
            "{template:?} prints back"
        );
        origins.push(o);
    }
    if let Some(dev) = public_url.as_ref().and_then(DesktopOrigin::dev_default) {
        origins.push(dev);
    }
    for o in &origins {
        check_origin_of(o, &id);
        check_host(o, &host);
        if let Some(url) = &public_url {
            check_portal(o, url);
        }
    }
}

/// A lowercase DNS label: `a-z`, `0-9`, `-` inside, 1–63 characters, no punycode `xn--`
/// (written again here, so the portal's own check is checked too).
fn is_dns_label(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.starts_with("xn--")
}

fn check_label(id: &str) {
    let label = host_label(id);
    assert!(is_dns_label(&label), "{id:?} → {label:?}");
    if label == id {
        assert!(!id.starts_with("d0-"), "{id:?} poses as a hashed label");
        assert!(!id.starts_with("p0-"), "{id:?} poses as the portal's own host");
    } else {
        assert!(label.starts_with("d0-") && label.len() == 27, "{id:?} → {label:?}");
    }
    // Stable: the same id always gets the same label.
    assert_eq!(host_label(id), label);
}

fn check_origin_of(o: &DesktopOrigin, id: &str) {
    let origin = o.origin_of(id);
    let url = Url::parse(&origin).unwrap_or_else(|e| panic!("{origin:?} is no URL: {e}"));
    assert_eq!(
        url.origin().ascii_serialization(),
        origin,
        "an origin, as browsers write it"
    );
    let host = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_owned(),
    };
    let label = host_label(id);
    assert_eq!(o.label_in_host(&host), Some(label.as_str()), "{origin:?}");
    // The default port written out names the same desktop.
    if url.port().is_none() {
        let with_port = format!("{host}:{}", url.port_or_known_default().unwrap_or_default());
        assert_eq!(o.label_in_host(&with_port), Some(label.as_str()), "{with_port:?}");
    }
}

fn check_host(o: &DesktopOrigin, host: &str) {
    let Some(label) = o.label_in_host(host) else {
        return;
    };
    assert!(is_dns_label(label), "{host:?} → {label:?}");
    // The host is `{label}{suffix}` (any case, port optional): it formats back to itself.
    let probe = o.origin_of("a");
    let suffix = probe
        .split_once("://a")
        .and_then(|(_, rest)| rest.split(':').next())
        .unwrap_or_default();
    let name = host.rsplit_once(':').map_or(host, |(n, _)| n);
    assert!(
        name.eq_ignore_ascii_case(&format!("{label}{suffix}")),
        "{host:?} vs {probe:?}"
    );
    if !label.starts_with("d0-") && !label.starts_with("p0-") {
        // An id that is a label is served on exactly that label.
        assert_eq!(host_label(label), label);
        let origin = o.origin_of(label);
        assert!(
            origin.contains(&format!("://{}", name.to_ascii_lowercase())),
            "{host:?} vs {origin:?}"
        );
    }
}

fn check_portal(o: &DesktopOrigin, public_url: &Url) {
    if o.covers(public_url) {
        return;
    }
    let Some(h) = public_url.host_str() else {
        return;
    };
    // On any port: cookies do not keep ports apart.
    let desktop_port = Url::parse(&o.origin_of("a"))
        .ok()
        .and_then(|u| u.port_or_known_default());
    let ports = [public_url.port_or_known_default(), desktop_port];
    for host in ports.iter().flatten().map(|p| format!("{h}:{p}")).chain([h.to_owned()]) {
        assert_eq!(
            o.label_in_host(&host),
            None,
            "portal {public_url} is served as a desktop host {host:?}"
        );
    }
}
