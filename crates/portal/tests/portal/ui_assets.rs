//! Static assets: the right content type per file, an ETag that a browser can revalidate
//! with (304), the portal's security headers, and a 404 for anything not built in — including
//! paths that try to climb out of the asset folder.

use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::*;

#[tokio::test]
async fn assets_have_their_type_an_etag_and_a_cache_lifetime() {
    let app = spawn_app(&[]).await;
    let anonymous = Browser::new(&app);
    for (path, content_type, cache) in [
        ("/static/portal.css", "text/css; charset=utf-8", "public, max-age=3600"),
        (
            "/static/portal.js",
            "text/javascript; charset=utf-8",
            "public, max-age=300",
        ),
        (
            "/static/dashboard.js",
            "text/javascript; charset=utf-8",
            "public, max-age=300",
        ),
        (
            "/static/view.js",
            "text/javascript; charset=utf-8",
            "public, max-age=300",
        ),
        (
            "/static/admin.js",
            "text/javascript; charset=utf-8",
            "public, max-age=300",
        ),
        (
            "/static/teacher.js",
            "text/javascript; charset=utf-8",
            "public, max-age=300",
        ),
    ] {
        let resp = anonymous.get(path).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let h = resp.headers();
        assert_eq!(h[CONTENT_TYPE], content_type, "{path}");
        assert_eq!(h[CACHE_CONTROL], cache, "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        let etag = h[ETAG].to_str().unwrap().to_owned();
        assert!(
            etag.starts_with('"') && etag.len() > 10,
            "{path}: a strong ETag, not {etag:?}"
        );
        let file = path.trim_start_matches("/static/");
        let on_disk = std::fs::read(format!("{}/static/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        assert_eq!(resp.bytes().await.unwrap(), on_disk, "{path} serves the file as built");
    }
}

#[tokio::test]
async fn an_unchanged_asset_is_answered_with_304() {
    let app = spawn_app(&[]).await;
    let anonymous = Browser::new(&app);
    let first = anonymous.get("/static/portal.js").send().await.unwrap();
    let etag = first.headers()[ETAG].clone();
    let other = anonymous.get("/static/portal.css").send().await.unwrap();
    assert_ne!(other.headers()[ETAG], etag, "each file has its own ETag");

    let again = anonymous
        .get("/static/portal.js")
        .header(IF_NONE_MATCH, etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()[ETAG], etag);
    assert_eq!(again.headers()[CACHE_CONTROL], "public, max-age=300");
    assert!(again.bytes().await.unwrap().is_empty());

    // Another file's tag, or a stale one, gets the file.
    for stale in [other.headers()[ETAG].to_str().unwrap(), "\"0000\""] {
        let resp = anonymous
            .get("/static/portal.js")
            .header(IF_NONE_MATCH, stale)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "If-None-Match: {stale}");
    }
}

/// `GET path` exactly as written: clients (reqwest included) remove `..` and `%2e%2e`
/// segments before sending, an attacker's raw request does not.
async fn raw_get(app: &TestApp, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", app.addr);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, answer)
}

#[tokio::test]
async fn unknown_files_and_paths_out_of_the_folder_are_not_found() {
    let app = spawn_app(&[]).await;
    let anonymous = Browser::new(&app);
    let missing = anonymous.get("/static/nope.js").send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let missing_page = missing.text().await.unwrap();
    for path in ["/static/", "/static/portal", "/static/sub/portal.js"] {
        let resp = anonymous.get(path).send().await.unwrap();
        assert_eq!(resp.status(), 404, "{path}");
        assert_eq!(resp.text().await.unwrap(), missing_page, "{path}: the same 404 page");
    }

    let (status, _) = raw_get(&app, "/static/portal.js").await;
    assert_eq!(status, 200, "the raw client works");
    for path in [
        "/static/../Cargo.toml",
        "/static/%2e%2e/Cargo.toml",
        "/static/%2E%2E/src/lib.rs",
        "/static/..%2fCargo.toml",
        "/static/..%2F..%2FCargo.toml",
        "/static/..\\Cargo.toml",
        "/static/./portal.js/../../Cargo.toml",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
    ] {
        let (status, answer) = raw_get(&app, path).await;
        assert_eq!(status, 404, "{path}: {answer}");
        assert!(
            !answer.contains("[package]") && !answer.contains("root:"),
            "{path}: {answer}"
        );
    }
}
