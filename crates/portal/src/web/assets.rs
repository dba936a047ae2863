//! `GET /static/{*file}`: the stylesheet and page scripts, built into the binary and served
//! from memory with a content type by extension, an ETag of the content, and `304 Not
//! Modified` for a browser that already has it. `nosniff` comes with every portal response
//! (see [`super::security_headers`]).

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use http::{HeaderMap, HeaderValue, StatusCode};

use crate::web::error::AppError;

/// Everything under `crates/portal/static/`. The embedded set is the whole list of servable
/// names: a request is a lookup in it, never a path on disk, so `..` cannot lead anywhere.
#[derive(rust_embed::Embed)]
#[folder = "static/"]
struct Files;

/// The content type and cache lifetime for a file name, by extension; `None`: not served.
fn kind(file: &str) -> Option<(&'static str, &'static str)> {
    // Scripts short: a new portal version must reach open browsers soon. After the lifetime a
    // browser asks again with the ETag, which costs a 304 when nothing changed.
    const SCRIPT: &str = "public, max-age=300";
    const OTHER: &str = "public, max-age=3600";
    let ext = file.rsplit_once('.')?.1;
    Some(match ext {
        "js" => ("text/javascript; charset=utf-8", SCRIPT),
        "css" => ("text/css; charset=utf-8", OTHER),
        "svg" => ("image/svg+xml", OTHER),
        "png" => ("image/png", OTHER),
        "woff2" => ("font/woff2", OTHER),
        _ => return None,
    })
}

/// The strong validator of a file: the first half of its SHA-256 (computed at build time).
fn etag(hash: &[u8; 32]) -> String {
    let hex: String = hash[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// Whether `If-None-Match` names `etag` (or is `*`). GET compares weakly (RFC 9110 13.1.2),
/// so a `W/` prefix a proxy added still matches.
fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

pub(crate) async fn serve(Path(file): Path<String>, headers: HeaderMap) -> Result<Response, AppError> {
    let (content_type, cache) = kind(&file).ok_or(AppError::NotFound)?;
    let asset = Files::get(&file).ok_or(AppError::NotFound)?;
    let etag = etag(&asset.metadata.sha256_hash());
    let validators = [
        (
            ETAG,
            HeaderValue::from_str(&etag).map_err(|e| AppError::Internal(e.into()))?,
        ),
        (CACHE_CONTROL, HeaderValue::from_static(cache)),
    ];
    if not_modified(&headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, validators).into_response());
    }
    Ok((
        validators,
        [(CONTENT_TYPE, HeaderValue::from_static(content_type))],
        asset.data,
    )
        .into_response())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A file dropped into `static/` with a type the handler does not know would silently 404.
    #[test]
    fn every_embedded_file_has_a_type() {
        let names: Vec<_> = Files::iter().collect();
        assert!(names.iter().any(|n| n == "portal.js"), "{names:?}");
        for name in names {
            assert!(
                kind(&name).is_some(),
                "static/{name} has no content type in assets::kind"
            );
        }
    }

    #[test]
    fn if_none_match_lists_and_weak_tags_match() {
        let mut h = HeaderMap::new();
        h.insert(IF_NONE_MATCH, HeaderValue::from_static("\"x\", W/\"abc\""));
        assert!(not_modified(&h, "\"abc\""));
        assert!(!not_modified(&h, "\"abcd\""));
        assert!(!not_modified(&HeaderMap::new(), "\"abc\""));
    }
}
