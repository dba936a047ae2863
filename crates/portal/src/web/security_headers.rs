//! Security headers on the portal's own responses: a Content Security Policy without inline
//! script or style, framing only by the portal itself, no MIME sniffing, no referrer to
//! other sites.
//!
//! Responses proxied from a desktop (`/desktop/…`, `/websockify`) pass through untouched: the
//! router leaves this layer off their sub-router (`web/mod.rs`), since the Kasm client brings
//! its own headers (and inline code the portal's policy would break).
//! The view page may frame the portal itself and the desktop hosts (`desktop_origin`);
//! desktop hosts get their own headers in `desktop_host`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;
use http::header::{CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS};

/// Why the policy could not be built.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SecurityHeadersError {
    #[error("form-action origin {0:?} cannot go into a header")]
    BadOrigin(String),
}

/// The header values, built once at start.
#[derive(Clone, Debug)]
pub(crate) struct SecurityHeaders {
    csp: HeaderValue,
}

impl SecurityHeaders {
    /// `form_origins`: origins forms may submit or redirect to besides the portal itself,
    /// e.g. the identity provider's (a sign-in form that redirects there needs it).
    /// `frame_origins`: sources the view page may frame besides the portal (desktop hosts).
    pub(crate) fn new(form_origins: &[String], frame_origins: &[String]) -> Result<Self, SecurityHeadersError> {
        let mut form_action = String::from("'self'");
        for origin in form_origins {
            // An origin is scheme://host[:port]; anything else could smuggle in directives.
            if origin.is_empty() || origin.contains([';', ',', ' ', '\'', '"']) {
                return Err(SecurityHeadersError::BadOrigin(origin.clone()));
            }
            form_action.push(' ');
            form_action.push_str(origin);
        }
        let mut frame_src = String::from("'self'");
        for origin in frame_origins {
            if origin.is_empty() || origin.contains([';', ',', ' ', '\'', '"']) {
                return Err(SecurityHeadersError::BadOrigin(origin.clone()));
            }
            frame_src.push(' ');
            frame_src.push_str(origin);
        }
        let policy = format!(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             frame-src {frame_src}; frame-ancestors 'self'; object-src 'none'; base-uri 'self'; \
             form-action {form_action}"
        );
        let csp = HeaderValue::from_str(&policy).map_err(|_| SecurityHeadersError::BadOrigin(form_action))?;
        Ok(SecurityHeaders { csp })
    }
}

/// The headers for `config`. With sign-in through IServ configured, the identity provider's
/// origin joins `form-action`: the sign-in form's redirect goes there.
pub(crate) fn for_config(config: &crate::config::Config) -> Arc<SecurityHeaders> {
    let oidc = &config.oidc;
    let mut origins: Vec<String> = [&oidc.issuer, &oidc.authorize_url]
        .into_iter()
        .filter(|_| oidc.is_configured())
        .flatten()
        .map(|u| u.origin().ascii_serialization())
        .filter(|o| o != "null")
        .collect();
    origins.sort();
    origins.dedup();
    let frames: Vec<String> = config.desktop_origins().map(|o| o.csp_source()).into_iter().collect();
    let headers = SecurityHeaders::new(&origins, &frames).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "form-action limited to the portal itself");
        SecurityHeaders::strict()
    });
    Arc::new(headers)
}

impl SecurityHeaders {
    /// The policy with forms to the portal only.
    fn strict() -> Self {
        SecurityHeaders {
            csp: HeaderValue::from_static(
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                 frame-src 'self'; frame-ancestors 'self'; object-src 'none'; base-uri 'self'; form-action 'self'",
            ),
        }
    }
}

/// Adds the headers to every response of its sub-router that does not set its own.
pub(crate) async fn apply(State(headers): State<Arc<SecurityHeaders>>, req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.entry(CONTENT_SECURITY_POLICY).or_insert_with(|| headers.csp.clone());
    h.entry(X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    h.entry(REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("same-origin"));
    // For browsers that predate frame-ancestors.
    h.entry(X_FRAME_OPTIONS)
        .or_insert(HeaderValue::from_static("SAMEORIGIN"));
    resp
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn policy_lists_the_identity_provider_for_forms_only() {
        let h = SecurityHeaders::new(
            &["https://iserv.example".into()],
            &["https://*.desktops.example".into()],
        )
        .unwrap();
        let csp = h.csp.to_str().unwrap();
        assert!(csp.contains("form-action 'self' https://iserv.example"), "{csp}");
        assert!(csp.contains("script-src 'self';"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert!(csp.contains("frame-src 'self' https://*.desktops.example;"), "{csp}");
        assert!(SecurityHeaders::new(&["https://x; script-src *".into()], &[]).is_err());
        assert!(SecurityHeaders::new(&[], &["https://x; script-src *".into()]).is_err());
    }
}
