//! The admin pages over HTTP against the real portal: who may use them, desktop types with
//! every validation rule, icon and logo uploads that try to smuggle in other content, local
//! accounts, the audit log, branding shown (escaped) everywhere, and — on Docker — resource
//! use, bulk actions and image pulls with live progress.

use portal_store::{AuditEvent, AuditKind, DesktopType, ExternalUser, Role};
use serde_json::Value;

use crate::docker::{docker_app, docker_ready, follow_events, start_desktop, wait_for_state};
use crate::helpers::*;

/// Text as askama escapes it in HTML.
pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&#38;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
}

/// A PNG signature and a little more: the portal decides by the first bytes.
pub(crate) const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

/// A `multipart/form-data` body with the CSRF token and one file; (content type, body).
pub(crate) fn multipart(csrf: &str, filename: &str, content_type: &str, data: &[u8]) -> (String, Vec<u8>) {
    let b = "irdtestboundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{b}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{csrf}\r\n").as_bytes(),
    );
    body.extend_from_slice(
        format!(
            "--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
             Content-Type: {content_type}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={b}"), body)
}

/// Posts an upload form; (status, body text).
async fn upload(b: &Browser, path: &str, csrf: &str, filename: &str, content_type: &str, data: &[u8]) -> (u16, String) {
    let (ct, body) = multipart(csrf, filename, content_type, data);
    let resp = b
        .post(path)
        .header("content-type", ct)
        .header("accept-language", "en")
        .body(body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// Posts a form with the CSRF token; (status, Location or body text).
pub(crate) async fn post_form(b: &Browser, path: &str, csrf: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let mut all = vec![("csrf_token", csrf)];
    all.extend_from_slice(fields);
    let resp = b
        .post(path)
        .header("accept-language", "en")
        .form(&all)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let location = resp.headers().get("location").map(|l| l.to_str().unwrap().to_owned());
    let text = resp.text().await.unwrap();
    (status, location.unwrap_or(text))
}

pub(crate) async fn page(b: &Browser, path: &str) -> (u16, String) {
    let resp = b.get(path).header("accept-language", "en").send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// The fields of a valid new desktop type, with `changes` applied.
fn type_fields<'a>(changes: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut fields = vec![
        ("key", "lab"),
        ("name.de", "Labor"),
        ("name.en", "Lab"),
        ("description.de", "Ein Testdesktop"),
        ("description.en", "A test desktop"),
        ("icon", "🧪"),
        ("image", "kasmweb/ubuntu-focal-desktop:1.16.0"),
        ("container_port", "6901"),
        ("protocol", "https"),
        ("memory_mib", "2048"),
        ("cpus", "1.5"),
        ("shm_mib", "512"),
        ("idle_timeout_minutes", "30"),
        ("max_age_hours", "8"),
        ("allowed_groups", "klasse-7a, lehrer"),
        ("allowed_users", "alice"),
        ("env", "LANG=de_DE.UTF-8"),
        ("sort_order", "5"),
        ("enabled", "1"),
    ];
    for (k, v) in changes {
        match fields.iter_mut().find(|(name, _)| name == k) {
            Some(f) => f.1 = v,
            None => fields.push((k, v)),
        }
    }
    fields.retain(|(_, v)| *v != "<omit>");
    fields
}

#[tokio::test]
async fn students_and_teachers_get_403_on_every_admin_page_and_endpoint() {
    let app = spawn_app(&[]).await;
    app.state
        .store
        .create_local_user("tina", "Tina", Role::Teacher, &PASSWORD.to_owned().into())
        .await
        .unwrap();
    let pages = [
        "/admin",
        "/admin/types",
        "/admin/types/new",
        "/admin/types/ubuntu",
        "/admin/users",
        "/admin/audit",
        "/admin/branding",
        "/api/admin/desktops/stats",
        "/api/admin/desktop-types/ubuntu/pull/events",
    ];
    let posts = [
        "/admin/desktops",
        "/admin/types",
        "/admin/types/ubuntu",
        "/admin/types/ubuntu/enabled",
        "/admin/types/ubuntu/delete",
        "/admin/types/ubuntu/icon",
        "/admin/types/ubuntu/icon/delete",
        "/admin/types/ubuntu/pull",
        "/admin/users",
        "/admin/users/bob/password",
        "/admin/users/bob/role",
        "/admin/users/bob/delete",
        "/admin/users/bob/link",
        "/admin/deleted-users/0123/restore",
        "/admin/branding",
        "/admin/branding/logo",
        "/admin/branding/logo/delete",
        "/api/admin/desktop-types/ubuntu/pull",
    ];
    for who in ["alice", "tina"] {
        let b = sign_in(&app, who).await;
        let csrf = b.csrf().await;
        for path in pages {
            assert_eq!(page(&b, path).await.0, 403, "{who} GET {path}");
        }
        for path in posts {
            let resp = b
                .post(path)
                .header("x-csrf-token", &csrf)
                .form(&[("csrf_token", csrf.as_str()), ("role", "admin"), ("enabled", "1")])
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 403, "{who} POST {path}");
        }
    }
    // Nothing changed: bob is still a student with his password.
    let bob = app.state.store.user_by_username("bob").await.unwrap().unwrap();
    assert_eq!(bob.role, Role::Student);
    sign_in(&app, "bob").await;
    // Signed out: pages send to the sign-in page, the API says 401.
    let anon = Browser::new(&app);
    let resp = anon.get("/admin/types").send().await.unwrap();
    assert_eq!(resp.status(), 303);
    assert!(resp.headers()["location"].to_str().unwrap().starts_with("/login?next="));
    assert_eq!(
        anon.get("/api/admin/desktops/stats").send().await.unwrap().status(),
        401
    );
}

#[tokio::test]
async fn admin_forms_need_the_csrf_token() {
    let app = spawn_app(&[]).await;
    let root = sign_in(&app, "root").await;
    for path in ["/admin/desktops", "/admin/types", "/admin/users", "/admin/branding"] {
        let resp = root
            .post(path)
            .form(&[("csrf_token", "wrong"), ("action", "stop_all")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "{path}");
    }
    let (ct, body) = multipart("wrong", "a.png", "image/png", PNG);
    let resp = root
        .post("/admin/branding/logo")
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(app.state.store.image("logo").await.unwrap().is_none());
    let resp = root.post("/api/admin/desktop-types/ubuntu/pull").send().await.unwrap();
    assert_eq!(resp.status(), 403, "the JSON API wants X-CSRF-Token");
}

#[tokio::test]
async fn desktop_types_are_created_edited_switched_and_deleted_with_precise_messages() {
    let app = spawn_app(&[]).await;
    let root = sign_in(&app, "root").await;
    let csrf = root.csrf().await;

    // Every rule, broken once: 400 and a message naming the field and what is allowed.
    let broken: [(&str, &str, &str); 20] = [
        ("key", "Bad Key", "key: \"Bad Key\" is invalid"),
        ("key", "new", "key: \"new\" is reserved"),
        ("key", "-lab", "use 1 to 32 characters a-z, 0-9 or '-'"),
        ("key", &"k".repeat(33), "key:"),
        ("name.de", " ", "name.de: must not be empty"),
        ("name.fr", &"x".repeat(129), "name.fr: at most 128 characters"),
        (
            "description.en",
            &"x".repeat(2001),
            "description.en: at most 2000 characters",
        ),
        (
            "name.Français",
            "Labo",
            "name.Français: \"Français\" is not a language code",
        ),
        ("image", "evil image; rm -rf /", "image:"),
        ("image", "", "image: must not be empty"),
        (
            "container_port",
            "0",
            "container_port: \"0\" is not a whole number from 1 to 65535",
        ),
        ("container_port", "70000", "from 1 to 65535"),
        ("container_port", "http", "container_port: \"http\""),
        ("protocol", "vnc", "protocol: \"vnc\" is not supported"),
        (
            "memory_mib",
            "1",
            "memory_mib: \"1\" is not a whole number from 6 to 1048576 MiB",
        ),
        ("cpus", "0", "cpus: \"0\" is not a number of CPUs greater than 0"),
        ("cpus", "many", "cpus: \"many\""),
        ("idle_timeout_minutes", "-5", "idle_timeout_minutes: \"-5\""),
        ("env", "VNC_PW=stolen", "env: VNC_PW is set by the portal"),
        (
            "allowed_users",
            "not a user!",
            "allowed_users: \"not a user!\" is not a valid username",
        ),
    ];
    for (field, value, message) in broken {
        let (status, body) = post_form(&root, "/admin/types", &csrf, &type_fields(&[(field, value)])).await;
        assert_eq!(status, 400, "{field}={value:?}: {body}");
        assert!(body.contains(&esc(message)), "{field}={value:?}: {body}");
        assert!(body.contains("The input is not valid."), "{body}");
    }
    let (status, body) = post_form(&root, "/admin/types", &csrf, &type_fields(&[("env", "NOEQUALS")])).await;
    assert_eq!(status, 400);
    assert!(body.contains(&esc("env: \"NOEQUALS\" is not NAME=value")), "{body}");
    assert!(app.state.store.desktop_type("lab").await.unwrap().is_none());

    // Created as typed.
    let (status, location) = post_form(&root, "/admin/types", &csrf, &type_fields(&[])).await;
    assert_eq!((status, location.as_str()), (303, "/admin/types/lab"));
    let t = app.state.store.desktop_type("lab").await.unwrap().unwrap();
    assert_eq!(
        (t.name("de"), t.name("en"), t.description("en")),
        ("Labor", "Lab", "A test desktop")
    );
    assert_eq!(t.memory_bytes, Some(2048 * 1024 * 1024));
    assert_eq!(t.nano_cpus, Some(1_500_000_000));
    assert_eq!(t.idle_timeout_secs, 1800);
    assert_eq!(t.max_age_secs, 8 * 3600);
    assert_eq!(t.allowed_groups, ["klasse-7a", "lehrer"]);
    assert_eq!(t.allowed_users, ["alice"]);
    assert_eq!(t.env, [("LANG".to_owned(), "de_DE.UTF-8".to_owned())]);
    // The same key again is a conflict, not an overwrite.
    let (status, body) = post_form(&root, "/admin/types", &csrf, &type_fields(&[("name.de", "Anders")])).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains(&esc("a desktop type \"lab\" exists already")), "{body}");

    // The edit form shows it; saving changes it (without a key field: the URL names it).
    let (status, form) = page(&root, "/admin/types/lab").await;
    assert_eq!(status, 200);
    assert!(
        form.contains("value=\"klasse-7a, lehrer\"") || form.contains(">klasse-7a, lehrer<"),
        "{form}"
    );
    let edit = type_fields(&[
        ("key", "<omit>"),
        ("cpus", ""),
        ("memory_mib", ""),
        ("enabled", "<omit>"),
    ]);
    let (status, location) = post_form(&root, "/admin/types/lab", &csrf, &edit).await;
    assert_eq!((status, location.as_str()), (303, "/admin/types/lab"));
    let t = app.state.store.desktop_type("lab").await.unwrap().unwrap();
    assert_eq!((t.nano_cpus, t.memory_bytes, t.enabled), (None, None, false));
    assert!(t.internet, "a form without the exam box keeps internet access");

    // Exam mode: the box turns internet access off, and the form shows it ticked.
    let exam = type_fields(&[("key", "<omit>"), ("no_internet", "1")]);
    let (status, _) = post_form(&root, "/admin/types/lab", &csrf, &exam).await;
    assert_eq!(status, 303);
    assert!(!app.state.store.desktop_type("lab").await.unwrap().unwrap().internet);
    let (_, exam_form) = page(&root, "/admin/types/lab").await;
    assert!(
        exam_form.contains("name=\"no_internet\" value=\"1\" checked"),
        "{exam_form}"
    );

    // One name and description field per UI language, German required; a language the UI
    // does not speak (here French, as from the configuration's `names`) is kept and shown too.
    for l in portal::i18n::Lang::all() {
        let code = l.code();
        assert!(form.contains(&format!("name=\"name.{code}\"")), "{code}: {form}");
        assert!(form.contains(&format!("name=\"description.{code}\"")), "{code}: {form}");
    }
    assert!(
        form.contains("name=\"name.de\" lang=\"de\" value=\"Labor\" required"),
        "{form}"
    );
    let edit = type_fields(&[
        ("key", "<omit>"),
        ("name.fr", " Labo "),
        ("description.fr", "Un bureau"),
    ]);
    let (status, _) = post_form(&root, "/admin/types/lab", &csrf, &edit).await;
    assert_eq!(status, 303);
    let t = app.state.store.desktop_type("lab").await.unwrap().unwrap();
    assert_eq!(
        (t.name("fr"), t.description("fr"), t.name("en")),
        ("Labo", "Un bureau", "Lab")
    );
    let (_, form) = page(&root, "/admin/types/lab").await;
    assert!(form.contains("name=\"name.fr\" lang=\"fr\" value=\"Labo\""), "{form}");
    // Emptied, a language's texts go; German then stands in for it.
    let edit = type_fields(&[("key", "<omit>"), ("name.en", ""), ("enabled", "<omit>")]);
    assert_eq!(post_form(&root, "/admin/types/lab", &csrf, &edit).await.0, 303);
    let t = app.state.store.desktop_type("lab").await.unwrap().unwrap();
    assert_eq!((t.name("en"), t.names.contains_key("fr")), ("Labor", false));
    assert_eq!(post_form(&root, "/admin/types/nope", &csrf, &edit).await.0, 404);

    // Enable from the list.
    let (status, _) = post_form(&root, "/admin/types/lab/enabled", &csrf, &[("enabled", "1")]).await;
    assert_eq!(status, 303);
    assert!(app.state.store.desktop_type("lab").await.unwrap().unwrap().enabled);
    let (status, body) = post_form(&root, "/admin/types/lab/enabled", &csrf, &[("enabled", "yes")]).await;
    assert_eq!(status, 400, "{body}");
    let (_, list) = page(&root, "/admin/types").await;
    assert!(list.contains("data-type-key=\"lab\""), "{list}");
    assert!(list.contains("klasse-7a, lehrer, alice"), "{list}");

    // Not deleted while a desktop of the type exists.
    let alice = app.state.store.user_by_username("alice").await.unwrap().unwrap();
    app.state
        .store
        .ensure_desktop("alice-lab", &alice.id, "lab")
        .await
        .unwrap();
    let (status, body) = post_form(&root, "/admin/types/lab/delete", &csrf, &[]).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body.contains("still has desktops; delete them first or disable the type"),
        "{body}"
    );
    app.state.store.delete_desktop("alice-lab").await.unwrap();
    let (status, _) = post_form(&root, "/admin/types/lab/delete", &csrf, &[]).await;
    assert_eq!(status, 303);
    assert!(app.state.store.desktop_type("lab").await.unwrap().is_none());

    // Each change is in the audit log, by whom.
    let (_, audit) = page(&root, "/admin/audit?kind=type_changed").await;
    assert!(
        audit.contains("Desktop type changed") && audit.contains("root"),
        "{audit}"
    );
    for kind in ["type_created", "type_deleted"] {
        let (_, audit) = page(&root, &format!("/admin/audit?kind={kind}")).await;
        assert!(audit.contains("<td>lab</td>"), "{kind}: {audit}");
    }
}

#[tokio::test]
async fn icons_and_logos_are_checked_by_their_bytes_and_size() {
    let app = spawn_app(&[]).await;
    let root = sign_in(&app, "root").await;
    let csrf = root.csrf().await;

    let (status, body) = upload(&root, "/admin/types/ubuntu/icon", &csrf, "u.png", "image/png", PNG).await;
    assert_eq!(status, 303, "{body}");
    let icon = root.get("/icons/ubuntu").send().await.unwrap();
    assert_eq!(icon.status(), 200);
    let h = icon.headers().clone();
    assert_eq!(h["content-type"], "image/png");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(h["cache-control"].to_str().unwrap().contains("max-age="), "{h:?}");
    assert!(
        h["content-security-policy"].to_str().unwrap().contains("sandbox"),
        "{h:?}"
    );
    assert_eq!(icon.bytes().await.unwrap().as_ref(), PNG);
    // Revalidation is cheap.
    let again = root
        .get("/icons/ubuntu")
        .header("if-none-match", h["etag"].clone())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    // Anyone may load icons (the dashboard shows them), but only existing ones.
    assert_eq!(
        Browser::new(&app).get("/icons/ubuntu").send().await.unwrap().status(),
        200
    );
    assert_eq!(root.get("/icons/vscode").send().await.unwrap().status(), 404);

    // JPEG and WebP by their bytes.
    let jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F'];
    assert_eq!(
        upload(&root, "/admin/types/vscode/icon", &csrf, "v.jpg", "image/jpeg", &jpeg)
            .await
            .0,
        303
    );
    let icon = root.get("/icons/vscode").send().await.unwrap();
    assert_eq!(icon.headers()["content-type"], "image/jpeg");
    let webp = b"RIFF\x24\0\0\0WEBPVP8 \x18\0\0\0";
    assert_eq!(
        upload(&root, "/admin/types/chromium/icon", &csrf, "c.webp", "image/webp", webp)
            .await
            .0,
        303
    );
    assert_eq!(
        root.get("/icons/chromium").send().await.unwrap().headers()["content-type"],
        "image/webp"
    );

    // Disguises are refused by what the bytes are, whatever the name and type say.
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>";
    let html = b"<!doctype html><script>alert(document.cookie)</script>";
    let gif = b"GIF89a\x01\0\x01\0";
    for (name, ct, data) in [
        ("x.svg", "image/svg+xml", &svg[..]),
        ("x.png", "image/png", &svg[..]),
        ("x.png", "image/png", &html[..]),
        ("x.gif", "image/gif", &gif[..]),
    ] {
        for path in ["/admin/types/ubuntu/icon", "/admin/branding/logo"] {
            let (status, body) = upload(&root, path, &csrf, name, ct, data).await;
            assert_eq!(status, 415, "{path} {name} {ct}: {body}");
            assert!(body.contains("Only PNG, JPEG or WebP images are allowed"), "{body}");
        }
    }
    assert_eq!(
        root.get("/icons/ubuntu")
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .as_ref(),
        PNG,
        "the refused uploads left the icon alone"
    );

    // Over the limit: 413 naming it, both just over and far over (the body limit).
    let mut just_over = PNG.to_vec();
    just_over.resize(256 * 1024 + 1, 0);
    let mut far_over = PNG.to_vec();
    far_over.resize(2 * 1024 * 1024, 0);
    for data in [&just_over, &far_over] {
        for path in ["/admin/types/ubuntu/icon", "/admin/branding/logo"] {
            let (status, body) = upload(&root, path, &csrf, "big.png", "image/png", data).await;
            assert_eq!(status, 413, "{path} {} bytes: {body}", data.len());
            assert!(body.contains("256 KiB"), "{body}");
        }
    }
    let mut at_limit = PNG.to_vec();
    at_limit.resize(256 * 1024, 0);
    assert_eq!(
        upload(&root, "/admin/branding/logo", &csrf, "ok.png", "image/png", &at_limit)
            .await
            .0,
        303
    );
    let logo = root.get("/branding/logo").send().await.unwrap();
    assert_eq!(logo.headers()["content-type"], "image/png");
    assert_eq!(logo.bytes().await.unwrap().len(), 256 * 1024);
    // Empty, and not multipart at all.
    assert_eq!(
        upload(&root, "/admin/branding/logo", &csrf, "e.png", "image/png", b"")
            .await
            .0,
        400
    );
    let resp = root
        .post("/admin/branding/logo")
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // Unknown type: 404; removing works.
    assert_eq!(
        upload(&root, "/admin/types/nope/icon", &csrf, "u.png", "image/png", PNG)
            .await
            .0,
        404
    );
    assert_eq!(
        post_form(&root, "/admin/types/ubuntu/icon/delete", &csrf, &[]).await.0,
        303
    );
    assert_eq!(root.get("/icons/ubuntu").send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn branding_is_validated_and_shown_escaped_on_every_page() {
    let app = spawn_app(&[]).await;
    let root = sign_in(&app, "root").await;
    let csrf = root.csrf().await;
    let save = |name: &'static str, color: &'static str, days: &'static str| {
        let (root, csrf) = (&root, &csrf);
        async move {
            post_form(
                root,
                "/admin/branding",
                csrf,
                &[
                    ("school_name", name),
                    ("primary_color", color),
                    ("audit_retention_days", days),
                ],
            )
            .await
        }
    };
    for bad in ["red", "#12345", "#1234567", "#gg0000", "#000000;}body{display:none"] {
        let (status, body) = save("Schule", bad, "90").await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(
            body.contains("primary_color:") && body.contains("# and six hex digits"),
            "{body}"
        );
    }
    for bad in ["0", "3651", "ninety", ""] {
        let (status, body) = save("Schule", "#123456", bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body.contains("audit_retention_days:"), "{body}");
    }
    let long: &'static str = Box::leak("S".repeat(101).into_boxed_str());
    assert_eq!(save(long, "#123456", "90").await.0, 400);
    assert!(app.state.store.setting("primary_color").await.unwrap().is_none());

    let xss = "<script>alert('x')</script> & \"Schule\"";
    assert_eq!(save(xss, "#FFCC00", "30").await, (303, "/admin/branding".to_owned()));
    let escaped = esc(xss);
    // Every page shows it in the header and title, escaped; the sign-in page too.
    for (who, path) in [
        ("root", "/"),
        ("root", "/admin"),
        ("root", "/admin/branding"),
        ("anon", "/login"),
    ] {
        let b = if who == "root" { &root } else { &Browser::new(&app) };
        let (status, html) = page(b, path).await;
        assert_eq!(status, 200, "{path}");
        assert!(!html.contains("<script>alert"), "{path}: {html}");
        assert!(
            html.contains(&format!("data-role=\"school-name\">{escaped}<")),
            "{path}: {html}"
        );
        assert!(html.contains(&format!(" · {escaped}</title>")), "{path}: {html}");
        assert!(html.contains("href=\"/branding.css?v=ffcc00\""), "{path}: {html}");
    }
    let css = root.get("/branding.css").send().await.unwrap();
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    let css = css.text().await.unwrap();
    assert!(css.contains("--accent: #ffcc00;"), "{css}");
    assert!(css.contains("color: #1d2433"), "a light colour gets dark text: {css}");
    // The error pages are branded too.
    let (status, html) = page(&root, "/no-such-page").await;
    assert_eq!(status, 404);
    assert!(html.contains("data-role=\"school-name\""), "{html}");
    // The logo shows in the header once uploaded.
    assert!(!page(&root, "/").await.1.contains("class=\"brand-logo\""));
    upload(&root, "/admin/branding/logo", &csrf, "l.png", "image/png", PNG).await;
    let (_, html) = page(&root, "/").await;
    assert!(
        html.contains("<img class=\"brand-logo\" src=\"/branding/logo?v="),
        "{html}"
    );
    assert_eq!(post_form(&root, "/admin/branding/logo/delete", &csrf, &[]).await.0, 303);
    assert_eq!(root.get("/branding/logo").send().await.unwrap().status(), 404);
    // Settings changes are audited.
    let (_, audit) = page(&root, "/admin/audit?kind=settings_changed").await;
    assert!(
        audit.contains("audit retention 30 days") && audit.contains("logo removed"),
        "{audit}"
    );
}

/// Signs in with a password through the form; the status of the answer (303 = signed in).
pub(crate) async fn sign_in_with(app: &TestApp, username: &str, password: &str) -> u16 {
    let b = Browser::new(app);
    let login = b.get("/login").send().await.unwrap().text().await.unwrap();
    let resp = b
        .post("/login")
        .form(&[
            ("username", username),
            ("password", password),
            ("csrf_token", &csrf_from(&login)),
        ])
        .send()
        .await
        .unwrap();
    resp.status().as_u16()
}

fn shown_password(html: &str) -> String {
    let marker = "data-role=\"new-password\">";
    let start = html.find(marker).unwrap_or_else(|| panic!("no password shown: {html}")) + marker.len();
    html[start..].split('<').next().unwrap().to_owned()
}

#[tokio::test]
async fn local_accounts_are_created_reset_changed_and_deleted() {
    let app = spawn_app(&[]).await;
    let root = sign_in(&app, "root").await;
    let csrf = root.csrf().await;
    // An IServ user, and a sign-in on record for alice.
    app.state
        .store
        .upsert_external_user(&ExternalUser {
            subject: "sub-1".into(),
            username: "ida".into(),
            display_name: "Ida IServ".into(),
            email: None,
            role: Role::Student,
            groups: vec!["klasse-7a".into()],
        })
        .await
        .unwrap();
    sign_in(&app, "alice").await;

    let (status, html) = page(&root, "/admin/users").await;
    assert_eq!(status, 200);
    let row = |name: &str| {
        let start = html.find(&format!("data-username=\"{name}\"")).unwrap();
        html[start..start + html[start..].find("</tr>").unwrap()].to_owned()
    };
    assert!(
        row("ida").contains("IServ") && row("ida").contains("klasse-7a"),
        "{}",
        row("ida")
    );
    assert!(
        !row("ida").contains("/admin/users/ida/password"),
        "IServ accounts are managed in IServ"
    );
    assert!(
        row("alice").contains("Local") && row("alice").contains(" UTC"),
        "{}",
        row("alice")
    );
    assert!(
        row("alice").contains("/api/admin/users/alice/end-sessions"),
        "{}",
        row("alice")
    );
    assert!(!row("root").contains("/admin/users/root/delete"), "no deleting oneself");

    // A new account with a generated password, shown once and never cached.
    let resp = root
        .post("/admin/users")
        .header("accept-language", "en")
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("username", "Carla"),
            ("display_name", "Carla C."),
            ("role", "teacher"),
            ("password", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let password = shown_password(&resp.text().await.unwrap());
    assert_eq!(password.len(), 22);
    assert_eq!(sign_in_with(&app, "carla", &password).await, 303);
    let carla = app.state.store.user_by_username("carla").await.unwrap().unwrap();
    assert_eq!(carla.role, Role::Teacher);
    // Taken names, bad names, short passwords and unknown roles are refused with the reason.
    for (fields, status, message) in [
        (vec![("username", "carla"), ("role", "student")], 409, "already taken"),
        (vec![("username", "no spaces"), ("role", "student")], 400, "username"),
        (
            vec![("username", "dora"), ("role", "student"), ("password", "short")],
            400,
            "at least 8",
        ),
        (
            vec![("username", "dora"), ("role", "king")],
            400,
            "valid roles are admin, teacher, student",
        ),
    ] {
        let (got, body) = post_form(&root, "/admin/users", &csrf, &fields).await;
        assert_eq!(got, status, "{fields:?}: {body}");
        assert!(body.contains(message), "{fields:?}: {body}");
    }

    // Reset: a new password works, the old one and the old sessions do not.
    let carla_browser = {
        let b = Browser::new(&app);
        let login = b.get("/login").send().await.unwrap().text().await.unwrap();
        b.post("/login")
            .form(&[
                ("username", "carla"),
                ("password", password.as_str()),
                ("csrf_token", &csrf_from(&login)),
            ])
            .send()
            .await
            .unwrap();
        b
    };
    assert_eq!(carla_browser.get("/").send().await.unwrap().status(), 200);
    let resp = root
        .post("/admin/users/carla/password")
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    let new_password = shown_password(&resp.text().await.unwrap());
    assert_ne!(new_password, password);
    assert_eq!(sign_in_with(&app, "carla", &password).await, 401);
    assert_eq!(sign_in_with(&app, "carla", &new_password).await, 303);
    assert_eq!(
        carla_browser.get("/").send().await.unwrap().status(),
        303,
        "old sessions ended"
    );
    let (status, body) = post_form(&root, "/admin/users/ida/password", &csrf, &[]).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("ida signs in with IServ"), "{body}");

    // Roles: local users yes, oneself no, IServ users no.
    assert_eq!(
        post_form(&root, "/admin/users/carla/role", &csrf, &[("role", "admin")])
            .await
            .0,
        303
    );
    assert_eq!(
        app.state.store.user_by_username("carla").await.unwrap().unwrap().role,
        Role::Admin
    );
    let (status, body) = post_form(&root, "/admin/users/root/role", &csrf, &[("role", "student")]).await;
    assert_eq!(status, 409);
    assert!(body.contains("you cannot change your own role"), "{body}");
    assert_eq!(
        post_form(&root, "/admin/users/ida/role", &csrf, &[("role", "admin")])
            .await
            .0,
        409
    );
    assert_eq!(
        post_form(&root, "/admin/users/nobody/role", &csrf, &[("role", "admin")])
            .await
            .0,
        404
    );

    // Delete: gone, cannot sign in; oneself refused.
    assert_eq!(post_form(&root, "/admin/users/carla/delete", &csrf, &[]).await.0, 303);
    assert!(app.state.store.user_by_username("carla").await.unwrap().is_none());
    assert_eq!(sign_in_with(&app, "carla", &new_password).await, 401);
    assert_eq!(post_form(&root, "/admin/users/root/delete", &csrf, &[]).await.0, 409);

    let (_, audit) = page(&root, "/admin/audit?user=carla").await;
    for text in [
        "Account created",
        "password reset",
        "role teacher → admin",
        "Account deleted",
    ] {
        assert!(audit.contains(text), "{text}: {audit}");
    }
}

#[tokio::test]
async fn the_audit_log_is_paged_newest_first_filtered_and_pruned() {
    let app = spawn_app(&[]).await;
    let store = &app.state.store;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for i in 0..120 {
        let (kind, user) = if i % 3 == 0 {
            (AuditKind::SignIn, "alice")
        } else {
            (AuditKind::DesktopStopped, "bob")
        };
        let event = AuditEvent::new(kind, format!("event {i:03}")).user(user);
        // Later than any sign-in the portal itself records during the test.
        store.audit_at(&event, now + 1 + i).await.unwrap();
    }
    // Two old entries, past a 90-day retention.
    store
        .audit_at(
            &AuditEvent::new(AuditKind::SignIn, "ancient").user("alice"),
            now - 100 * 86_400,
        )
        .await
        .unwrap();
    let root = sign_in(&app, "root").await;
    let (status, first) = page(&root, "/admin/audit").await;
    assert_eq!(status, 200);
    let order = |html: &str| -> Vec<String> { html.split("<td>event ").skip(1).map(|p| p[..3].to_owned()).collect() };
    let shown = order(&first);
    assert_eq!(shown.len(), 50, "{first}");
    assert_eq!(shown[0], "119", "newest first");
    assert!(
        first.contains("href=\"/admin/audit?kind=&#38;user=&#38;page=2\""),
        "{first}"
    );
    assert!(!first.contains("rel=\"prev\""));
    let (_, third) = page(&root, "/admin/audit?page=3").await;
    let shown = order(&third);
    // Entries 19..0 and the ancient one (and root's sign-in is not in the log: local sign-in
    // auditing belongs to the sign-in code).
    assert_eq!(shown.first().map(String::as_str), Some("019"));
    assert!(!third.contains("rel=\"next\""), "{third}");

    let (_, alice) = page(&root, "/admin/audit?user=alice&kind=sign_in").await;
    assert!(order(&alice).iter().all(|n| n.parse::<i64>().unwrap() % 3 == 0));
    let (_, bob) = page(&root, "/admin/audit?kind=desktop_stopped").await;
    assert!(!bob.contains("<td>alice</td>"), "{bob}");
    assert!(bob.contains("Desktop stopped"));
    // Bad filters are 400 with the reason.
    let (status, body) = page(&root, "/admin/audit?kind=nonsense").await;
    assert_eq!(status, 400);
    assert!(body.contains("unknown audit event kind"), "{body}");
    assert_eq!(page(&root, "/admin/audit?page=0").await.0, 400);
    assert_eq!(page(&root, "/admin/audit?page=x").await.0, 400);

    // Retention: the store prunes what the hourly task would.
    assert_eq!(store.prune_audit(now - 90 * 86_400).await.unwrap(), 1);
    let (_, third) = page(&root, "/admin/audit?page=3").await;
    assert!(!third.contains("ancient"));
    // The overview shows the latest ten.
    let (_, overview) = page(&root, "/admin").await;
    assert_eq!(order(&overview).len(), 10);
    assert!(overview.contains("href=\"/admin/audit\""));
}

#[tokio::test]
async fn desktop_actions_say_what_is_wrong() {
    let app = spawn_app(&[]).await;
    let root = sign_in(&app, "root").await;
    let csrf = root.csrf().await;
    let (status, body) = post_form(&root, "/admin/desktops", &csrf, &[("action", "stop")]).await;
    assert_eq!(status, 400);
    assert!(body.contains("id: choose at least one desktop"), "{body}");
    let (status, body) = post_form(&root, "/admin/desktops", &csrf, &[("action", "explode")]).await;
    assert_eq!(status, 400);
    assert!(body.contains("is not one of stop, remove, stop_all, cleanup"), "{body}");
    // A static portal pulls no images and reports no resource use.
    let resp = root
        .post("/api/admin/desktop-types/ubuntu/pull")
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    let stats: Value = root.get_json("/api/admin/desktops/stats").await;
    assert_eq!(stats["stats"], serde_json::json!({}));
    let (_, html) = page(&root, "/admin").await;
    assert!(!html.contains("data-stats-url"), "{html}");
    let (_, types) = page(&root, "/admin/types").await;
    assert!(!types.contains("data-pull="), "no pull buttons without Docker");
    // German by default.
    let html = root.get("/admin").send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Desktop-Arten") && html.contains("Protokoll"), "{html}");
}

#[tokio::test]
async fn on_docker_admins_see_resource_use_stop_many_and_pull_images_live() {
    if !docker_ready() {
        return;
    }
    let (app, _scope) = docker_app("adminpages", |_| {}).await;
    let alice = sign_in(&app, "alice").await;
    let bob = sign_in(&app, "bob").await;
    let root = sign_in(&app, "root").await;
    let (a, b) = tokio::join!(start_desktop(&alice, "fake"), start_desktop(&bob, "fake"));
    assert_eq!((a.0, b.0), (202, 202));
    assert_eq!(a.2.last().unwrap()["step"], "ready", "{:?}", a.2);
    let csrf = root.csrf().await;

    let (_, html) = page(&root, "/admin").await;
    assert!(html.contains("data-stats-url=\"/api/admin/desktops/stats\""), "{html}");
    assert!(
        html.contains("value=\"alice-fake\"") && html.contains("value=\"bob-fake\""),
        "{html}"
    );
    let asked = std::time::Instant::now();
    let stats: Value = root.get_json("/api/admin/desktops/stats").await;
    // Informational: the engine samples each container twice, about a second apart, in parallel.
    eprintln!("resource use of 2 desktops read in {} ms", asked.elapsed().as_millis());
    for id in ["alice-fake", "bob-fake"] {
        let s = &stats["stats"][id];
        assert!(s["memory_bytes"].as_u64().unwrap() > 0, "{stats}");
        assert_eq!(s["memory_limit_bytes"], 256 * 1024 * 1024, "the type's limit: {stats}");
        assert!(s["cpu_percent"].as_f64().is_some(), "{stats}");
    }

    // Both checked, one bulk stop.
    let (status, location) = post_form(
        &root,
        "/admin/desktops",
        &csrf,
        &[("action", "stop"), ("id", "alice-fake"), ("id", "bob-fake")],
    )
    .await;
    assert_eq!((status, location.as_str()), (303, "/admin"));
    for (b, id) in [(&alice, "alice-fake"), (&bob, "bob-fake")] {
        let d = wait_for_state(b, id, "stopped", std::time::Duration::from_secs(20)).await;
        assert!(d["state_reason"].as_str().unwrap().contains("administrator"), "{d}");
    }
    // A row's own button removes one.
    let (status, _) = post_form(&root, "/admin/desktops", &csrf, &[("row", "remove:bob-fake")]).await;
    assert_eq!(status, 303);
    assert!(app.state.store.desktop("bob-fake").await.unwrap().is_none());

    // Starts, stops (by whom) and removals are in the log.
    let (_, audit) = page(&root, "/admin/audit?user=alice").await;
    assert!(
        audit.contains("Desktop started") && audit.contains("stopped by an administrator"),
        "{audit}"
    );
    let (_, audit) = page(&root, "/admin/audit?kind=admin_action").await;
    assert!(
        audit.contains("stopped alice-fake, bob-fake by administrator root"),
        "{audit}"
    );
    let (_, audit) = page(&root, "/admin/audit?kind=desktop_removed").await;
    assert!(audit.contains("bob-fake"), "{audit}");

    // A pull that cannot succeed (nothing listens on port 1) reports its failure live.
    let broken = DesktopType {
        key: "broken".into(),
        image: "127.0.0.1:1/nothing/here:1".into(),
        ..DesktopType::default()
    }
    .with_name("de", "Kaputt");
    app.state.store.upsert_desktop_type(&broken).await.unwrap();
    let resp = root
        .post("/api/admin/desktop-types/broken/pull")
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let body: Value = resp.json().await.unwrap();
    let events = follow_events(&root, body["events_url"].as_str().unwrap()).await;
    let last = events.last().unwrap();
    assert!(
        last["event"] == "failed" || last["event"] == "idle",
        "the pull ends in failure (or had ended already): {events:?}"
    );
    let (_, audit) = page(&root, "/admin/audit?kind=admin_action").await;
    assert!(
        audit.contains("pulling image 127.0.0.1:1/nothing/here:1 failed"),
        "{audit}"
    );
}

#[tokio::test]
async fn an_admin_pulls_a_types_image_from_a_registry_with_layer_progress() {
    use crate::docker_pull::{LocalImages, build_with_random_layer, docker_ok, image_exists, test_registry};
    if !docker_ready() {
        return;
    }
    let Some(registry) = test_registry() else {
        return;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let image = format!("{registry}/iserv-rd/fake-kasm:adminpull-{}-{nanos}", std::process::id());
    let _images = LocalImages(vec![image.clone()]);
    const LAYER_BYTES: usize = 2 << 20;
    build_with_random_layer(&image, LAYER_BYTES);
    docker_ok(&["push", "--quiet", &image]);
    docker_ok(&["rmi", &image]);
    assert!(!image_exists(&image));

    let (app, _scope) = docker_app("adminpull", |_| {}).await;
    let t = DesktopType {
        key: "pulled".into(),
        image: image.clone(),
        ..DesktopType::default()
    }
    .with_name("de", "Geladen");
    app.state.store.upsert_desktop_type(&t).await.unwrap();
    let root = sign_in(&app, "root").await;
    let csrf = root.csrf().await;
    let (_, list) = page(&root, "/admin/types").await;
    assert!(
        list.contains("data-pull=\"/api/admin/desktop-types/pulled/pull\""),
        "{list}"
    );
    let resp = root
        .post("/api/admin/desktop-types/pulled/pull")
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let body: Value = resp.json().await.unwrap();
    // Steps before this subscription are replayed, so the whole pull is seen.
    let events = follow_events(&root, body["events_url"].as_str().unwrap()).await;
    let last = events.last().unwrap();
    assert_eq!(last["event"], "done", "{events:#?}");
    let progress: Vec<&Value> = events.iter().filter(|e| e["event"] == "progress").collect();
    assert!(
        progress
            .iter()
            .all(|e| e["step"] == "pulling" && e["image"] == image.as_str())
    );
    let counted = progress
        .iter()
        .filter(|e| e["current"].as_u64().is_some_and(|n| n > 0))
        .filter_map(|e| e["total"].as_u64())
        .max();
    assert!(
        counted.is_some_and(|n| n >= LAYER_BYTES as u64),
        "the new layer's bytes are counted: {progress:#?}"
    );
    assert!(image_exists(&image));
    // A second subscriber after the end hears that nothing runs.
    let after = follow_events(&root, body["events_url"].as_str().unwrap()).await;
    assert_eq!(after.last().unwrap()["event"], "idle", "{after:?}");
    let (_, audit) = page(&root, "/admin/audit?kind=admin_action").await;
    assert!(audit.contains(&format!("pulled image {image}")), "{audit}");
}

/// A type from the configuration file that an admin edited keeps the edit across restarts with
/// the same file; when its entry in the file changes, the file's version applies again.
#[tokio::test]
async fn admin_edits_of_configured_types_survive_restarts_until_the_file_changes() {
    let app = spawn_app_with(&[], |c| c.desktop_types = vec![crate::docker::fake_type("lab")]).await;
    let root = sign_in(&app, "root").await;
    let csrf = root.csrf().await;
    let edit = type_fields(&[("name.de", "Informatikraum"), ("image", "kasmweb/vs-code:1.16.0")]);
    let (status, body) = post_form(&root, "/admin/types/lab", &csrf, &edit).await;
    assert_eq!(status, 303, "{body}");

    let app = app.restart().await;
    let t = app.state.store.desktop_type("lab").await.unwrap().unwrap();
    assert_eq!(
        (t.name("de"), t.image.as_str()),
        ("Informatikraum", "kasmweb/vs-code:1.16.0")
    );

    let app = app
        .restart_with(|c| c.desktop_types[0].image = "iserv-rd/fake-kasm:next".into())
        .await;
    let t = app.state.store.desktop_type("lab").await.unwrap().unwrap();
    assert_eq!(
        (t.name("de"), t.image.as_str()),
        ("Fake lab", "iserv-rd/fake-kasm:next")
    );
}

/// Stop all and clean up through the admin JSON API leave the same audit entries as the admin
/// page's buttons (one domain function each writes them).
#[tokio::test]
async fn json_and_form_admin_actions_leave_the_same_audit_entries() {
    use portal_store::AuditFilter;
    let app = spawn_app(&[]).await;
    let root = sign_in(&app, "root").await;
    let csrf = root.csrf().await;
    let latest = || {
        let store = app.state.store.clone();
        async move {
            let filter = AuditFilter {
                kind: Some(AuditKind::AdminAction),
                user: None,
                offset: 0,
                limit: 1,
            };
            let entry = store.audit_page(&filter).await.unwrap().0.remove(0);
            (entry.kind, entry.actor, entry.detail)
        }
    };
    for (api, action) in [
        ("/api/admin/stop-all", "stop_all"),
        ("/api/admin/cleanup-stopped", "cleanup"),
    ] {
        let answer = root.post_json(api, &csrf).await;
        assert!(answer.is_object(), "{answer}");
        let by_json = latest().await;
        let (status, _) = post_form(&root, "/admin/desktops", &csrf, &[("action", action)]).await;
        assert_eq!(status, 303);
        assert_eq!(latest().await, by_json, "{action}");
    }
    assert_eq!(
        latest().await.2,
        "clean up: removed 0 stopped desktops by administrator root"
    );
}
