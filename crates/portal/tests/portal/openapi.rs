//! `GET /api/openapi.json`: public, valid OpenAPI 3, and in step with the router — every
//! `/api/…` route registered in `web/mod.rs` is documented with its methods, and nothing
//! documented is missing from the router.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::helpers::*;

/// HTTP methods as axum's routing functions and OpenAPI's path items name them.
const METHODS: [&str; 8] = ["get", "post", "put", "delete", "patch", "head", "options", "trace"];

/// Routes as path → methods.
type Routes = BTreeMap<String, BTreeSet<String>>;

/// The `/api/…` routes of a router's source: every `.route("/api/…", get(..).post(..))`,
/// however it is wrapped over lines. Only top-level method calls count (a handler's own calls
/// are nested deeper). `any(..)` is kept as `any`, which no document can match: only the JSON
/// 404 catch-all (`/api/{*…}`) may use it, and it is left out.
fn api_routes(src: &str) -> Routes {
    let mut routes = Routes::new();
    let mut rest = src;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        // The call's arguments: up to the parenthesis that closes `.route(`.
        let mut depth = 0usize;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' if depth == 0 => return true,
                    ')' => depth -= 1,
                    _ => {}
                }
                false
            })
            .map(|(i, _)| i)
            .expect("a .route( call closes");
        let args = rest[..end].trim_start();
        // A path given as a constant is no API route (`iserv_oidc::CALLBACK_PATH`).
        let Some(literal) = args.strip_prefix('"') else {
            continue;
        };
        let (path, methods) = literal.split_once('"').expect("the path literal closes");
        // The JSON 404 catch-all is no API route; other wildcards (`{*path}`) are documented
        // as a plain parameter (`{path}`).
        if !path.starts_with("/api/") || path.starts_with("/api/{*") {
            continue;
        }
        let entry = routes.entry(path.replace("{*", "{")).or_default();
        let (mut depth, mut word) = (0usize, String::new());
        for c in methods.chars() {
            match c {
                '(' => {
                    if depth == 0 && (METHODS.contains(&word.as_str()) || word == "any") {
                        entry.insert(word.clone());
                    }
                    depth += 1;
                }
                ')' => depth = depth.saturating_sub(1),
                _ => {}
            }
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                word.push(c);
            } else {
                word.clear();
            }
        }
    }
    routes
}

/// The documented paths with their methods.
fn documented(doc: &Value) -> Routes {
    doc["paths"]
        .as_object()
        .expect("`paths` is an object")
        .iter()
        .map(|(path, item)| {
            let methods = METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(|m| (*m).to_owned())
                .collect();
            (path.clone(), methods)
        })
        .collect()
}

/// Every `$ref` in `v`.
fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn the_route_parser_reads_chained_and_wrapped_routes() {
    let src = r#"
        .route("/login", get(a::form).post(a::submit))
        .route(iserv_oidc::CALLBACK_PATH, get(b::callback))
        .route("/api/x/{id}", get(api::show).delete(api::remove))
        .route(
            "/api/y/{key}/pull",
            post(admin::types::pull_api),
        )
        .route("/api/z", get(handler(with::post(nested))))
        .route("/api/f/{space}/{*path}", get(f::get).put(f::put))
        .route("/api/{*rest}", any(|| async { AppError::NotFound }))
    "#;
    let set = |ms: &[&str]| ms.iter().map(|m| (*m).to_owned()).collect::<BTreeSet<_>>();
    let expected = Routes::from([
        ("/api/x/{id}".to_owned(), set(&["get", "delete"])),
        ("/api/y/{key}/pull".to_owned(), set(&["post"])),
        ("/api/z".to_owned(), set(&["get"])),
        ("/api/f/{space}/{path}".to_owned(), set(&["get", "put"])),
    ]);
    assert_eq!(api_routes(src), expected);
}

#[tokio::test]
async fn openapi_document_is_public_and_covers_every_api_route() {
    let app = spawn_app(&[]).await;
    // No session: the document describes the API and grants nothing.
    let resp = Browser::new(&app).get("/api/openapi.json").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("application/json"), "{content_type}");
    let doc: Value = serde_json::from_str(&resp.text().await.unwrap()).expect("the document is JSON");

    let version = doc["openapi"].as_str().expect("an `openapi` version");
    assert!(version.starts_with("3."), "OpenAPI 3, not {version}");
    assert!(doc["info"]["title"].is_string());

    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/web/mod.rs")).unwrap();
    assert!(
        !src.contains(".nest(") && !src.contains(".route_service("),
        "web/mod.rs nests routers or services now: teach `api_routes` to read them"
    );
    let routed = api_routes(&src);
    // A parser that found nothing would pass everything below.
    assert!(
        routed.len() >= 15,
        "only {} /api routes parsed: {routed:?}",
        routed.len()
    );
    assert_eq!(
        routed["/api/desktops/{id}"],
        BTreeSet::from(["get".to_owned(), "delete".to_owned()])
    );

    let docs = documented(&doc);
    for (path, methods) in &routed {
        assert_eq!(
            docs.get(path),
            Some(methods),
            "route {path} ({methods:?}) is not documented with these methods; add #[utoipa::path] \
             to its handler and list it in web/api/openapi.rs"
        );
    }
    for path in docs.keys() {
        assert!(
            routed.contains_key(path),
            "{path} is documented but no route of web/mod.rs"
        );
    }

    // Every schema a path refers to is in the document.
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(!found.is_empty());
    for r in found {
        let name = r.strip_prefix("#/components/schemas/").expect("refs point at schemas");
        assert!(doc["components"]["schemas"][name].is_object(), "{r} is missing");
    }
}

/// The documented error shape is the one the portal sends.
#[tokio::test]
async fn documented_error_shape_matches_the_wire() {
    let app = spawn_app(&[]).await;
    let anonymous = Browser::new(&app);
    let doc = anonymous.get_json("/api/openapi.json").await;

    let resp = anonymous.get("/api/desktops").send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    let sent: BTreeSet<&str> = body["error"].as_object().unwrap().keys().map(String::as_str).collect();
    let schema = &doc["components"]["schemas"]["ErrorDetail"]["properties"];
    let described: BTreeSet<&str> = schema.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(sent, described);
    assert_eq!(
        doc["paths"]["/api/desktops"]["get"]["responses"]["401"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ErrorResponse"
    );
}
