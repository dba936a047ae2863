//! Uploaded images (desktop type icons, the school's logo): reading them from a multipart
//! form with a size limit, deciding their type from their first bytes, and serving them.
//!
//! Only PNG, JPEG and WebP are accepted. SVG is refused: it can carry script, and served from
//! the portal's origin that script would run with the admin's session. The type comes from
//! the magic bytes, never from the file name or the browser's claim, so an HTML page renamed
//! to `.png` is refused too.

use axum::extract::multipart::{Multipart, MultipartError, MultipartRejection};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, X_CONTENT_TYPE_OPTIONS};
use http::{HeaderMap, StatusCode};

use crate::state::AppState;
use crate::web::admin::AdminError;
use crate::web::error::AppError;

/// Largest image accepted.
pub(crate) const MAX_IMAGE_BYTES: usize = 256 * 1024;
/// Body limit of an upload request: the image plus the form's other fields and boundaries.
pub(crate) const UPLOAD_BODY_LIMIT: usize = MAX_IMAGE_BYTES + 16 * 1024;

/// The image's content type from its first bytes, if it is one the portal serves.
pub(crate) fn sniff(data: &[u8]) -> Option<&'static str> {
    if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if data.len() >= 12 && &data[..4] == b"RIFF" && &data[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// Checks an uploaded file and returns its content type.
pub(crate) fn check_image(data: &[u8]) -> Result<&'static str, AdminError> {
    if data.len() > MAX_IMAGE_BYTES {
        return Err(too_large());
    }
    if data.is_empty() {
        return Err(AdminError::Invalid("file: choose an image file".into()));
    }
    sniff(data).ok_or_else(|| {
        AdminError::UnsupportedImage(
            "the file is not a PNG, JPEG or WebP image (SVG and other formats are not accepted)".into(),
        )
    })
}

fn too_large() -> AdminError {
    AdminError::TooLarge {
        limit_kib: MAX_IMAGE_BYTES / 1024,
    }
}

fn multipart_error(e: MultipartError) -> AdminError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large()
    } else {
        AdminError::Invalid(format!("file: the upload could not be read: {}", e.body_text()))
    }
}

/// The one file (`file`) of an upload form; its other fields (the CSRF token) were read by
/// `web::csrf`.
pub(crate) struct Upload {
    pub file: Vec<u8>,
}

/// Reads a multipart form, stopping as soon as the file passes the limit.
pub(crate) async fn read_upload(mut multipart: Multipart) -> Result<Upload, AdminError> {
    let mut upload = Upload { file: Vec::new() };
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                if upload.file.len() + chunk.len() > MAX_IMAGE_BYTES {
                    return Err(too_large());
                }
                upload.file.extend_from_slice(&chunk);
            }
        }
    }
    Ok(upload)
}

/// Reads an upload form and checks its image; the image and its type. (Its CSRF token, the
/// first field, was checked before the handler ran, by `web::csrf`.)
pub(crate) async fn read_image_form(
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(Vec<u8>, &'static str), AdminError> {
    let multipart = multipart.map_err(|e| AdminError::Invalid(format!("file: {}", e.body_text())))?;
    let upload = read_upload(multipart).await?;
    let content_type = check_image(&upload.file)?;
    Ok((upload.file, content_type))
}

/// An image response: its own type, no sniffing, a sandbox in case a browser ever renders it
/// as a document, and revalidation by version.
pub(crate) fn image_response(headers: &HeaderMap, content_type: String, data: Vec<u8>, version: i64) -> Response {
    let etag = format!("\"{version}\"");
    let mut resp = if headers
        .get(IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(CONTENT_TYPE, content_type)], data).into_response()
    };
    let h = resp.headers_mut();
    h.insert(X_CONTENT_TYPE_OPTIONS, http::HeaderValue::from_static("nosniff"));
    h.insert(
        CONTENT_SECURITY_POLICY,
        http::HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    // An hour without asking; after that a cheap 304 until an admin replaces it.
    h.insert(CACHE_CONTROL, http::HeaderValue::from_static("public, max-age=3600"));
    if let Ok(v) = http::HeaderValue::from_str(&etag) {
        h.insert(ETAG, v);
    }
    resp
}

/// The store key of a desktop type's icon.
pub(crate) fn icon_key(type_key: &str) -> String {
    format!("icon:{type_key}")
}

/// `GET /icons/{key}`: a desktop type's uploaded icon; 404 when it has none (the page then
/// shows the type's emoji).
pub(crate) async fn icon(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let image = state.store.image(&icon_key(&key)).await?.ok_or(AppError::NotFound)?;
    Ok(image_response(
        &headers,
        image.content_type,
        image.data,
        image.updated_at,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_magic_bytes() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\nrest"), Some("image/png"));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff(b"<svg xmlns='http://www.w3.org/2000/svg'/>"), None);
        assert_eq!(sniff(b"<html><script>alert(1)</script>"), None);
        assert_eq!(sniff(b"RIFF\0\0\0\0WAVE"), None);
    }

    #[test]
    fn limits() {
        assert!(matches!(
            check_image(&vec![0; MAX_IMAGE_BYTES + 1]),
            Err(AdminError::TooLarge { limit_kib: 256 })
        ));
        assert!(matches!(check_image(b""), Err(AdminError::Invalid(_))));
        assert!(matches!(check_image(b"GIF89a"), Err(AdminError::UnsupportedImage(_))));
    }
}
