//! The file manager and its API against the real portal: round trips with German names,
//! clashes, the trash, who may see and change which space, limits, and homes a student's
//! desktop has filled with links out of her tree.

use std::os::unix::fs::symlink;
use std::path::PathBuf;

use serde_json::Value;

use portal_store::Role;

use crate::helpers::{Browser, TestApp, csrf_from, sign_in, spawn_app, spawn_app_with};
use crate::ui_teacher::add_member;

async fn home_of(app: &TestApp, username: &str) -> PathBuf {
    let user = app.state.store.user_by_username(username).await.unwrap().unwrap();
    app.state.files.home_dir(&user)
}

pub(crate) async fn put(b: &Browser, csrf: &str, path: &str, body: Vec<u8>) -> reqwest::Response {
    b.http
        .put(format!(
            "{}{path}",
            b.get("").build().unwrap().url().as_str().trim_end_matches('/')
        ))
        .header("x-csrf-token", csrf)
        .body(body)
        .send()
        .await
        .unwrap()
}

pub(crate) async fn put_status(b: &Browser, csrf: &str, path: &str, body: Vec<u8>) -> reqwest::StatusCode {
    put(b, csrf, path, body).await.status()
}

async fn op_status(b: &Browser, csrf: &str, path: &str, body: Value) -> reqwest::StatusCode {
    api(b, csrf, path, body).await.status()
}

async fn api(b: &Browser, csrf: &str, path: &str, body: Value) -> reqwest::Response {
    b.post(path)
        .header("x-csrf-token", csrf)
        .json(&body)
        .send()
        .await
        .unwrap()
}

pub(crate) async fn error_code(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    (status, body["error"]["code"].as_str().unwrap_or_default().to_owned())
}

pub(crate) fn names(list: &Value) -> Vec<String> {
    list["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn files_round_trip_with_names_as_typed_and_no_silent_overwrite() {
    let app = spawn_app(&[]).await;
    let alice = sign_in(&app, "alice").await;
    let csrf = alice.csrf().await;

    let resp = put(&alice, &csrf, "/api/files/home/%C3%9Cbung%201.pdf", b"%PDF-1".to_vec()).await;
    assert_eq!(resp.status(), 201);
    let written: Value = resp.json().await.unwrap();
    assert_eq!(written["name"], "Übung 1.pdf");
    assert!(
        home_of(&app, "alice").await.join("Übung 1.pdf").exists(),
        "stored under the exact name"
    );

    let (status, code) =
        error_code(put(&alice, &csrf, "/api/files/home/%C3%9Cbung%201.pdf", b"two".to_vec()).await).await;
    assert_eq!((status, code.as_str()), (409, "exists"));
    let numbered: Value = put(
        &alice,
        &csrf,
        "/api/files/home/%C3%9Cbung%201.pdf?rename=true",
        b"two".to_vec(),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(numbered["name"], "Übung 1 (2).pdf");

    assert_eq!(
        op_status(
            &alice,
            &csrf,
            "/api/files/home/Mathe",
            serde_json::json!({"op": "mkdir"})
        )
        .await,
        201
    );
    let moved = api(
        &alice,
        &csrf,
        "/api/files/home/%C3%9Cbung%201%20(2).pdf",
        serde_json::json!({"op": "move", "to": "Mathe/Blatt 2.pdf"}),
    )
    .await;
    assert_eq!(moved.status(), 201);
    let copied = api(
        &alice,
        &csrf,
        "/api/files/home/Mathe",
        serde_json::json!({"op": "copy", "to": "Mathe Kopie"}),
    )
    .await;
    assert_eq!(copied.status(), 201);
    assert_eq!(
        names(&alice.get_json("/api/files/home/Mathe%20Kopie").await),
        ["Blatt 2.pdf"]
    );

    let root = alice.get_json("/api/files/home").await;
    assert_eq!(names(&root), ["Mathe", "Mathe Kopie", "Übung 1.pdf"]);
    assert_eq!(root["writable"], true);
    assert_eq!(root["quota"], 2048 * 1024 * 1024_u64);

    let download = alice.get("/api/files/home/Mathe/Blatt%202.pdf").send().await.unwrap();
    assert_eq!(download.status(), 200);
    let h = download.headers();
    assert_eq!(h["content-type"], "application/octet-stream");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(h["content-security-policy"].to_str().unwrap().starts_with("sandbox"));
    assert!(h["content-disposition"].to_str().unwrap().starts_with("attachment;"));
    assert!(
        h["content-disposition"]
            .to_str()
            .unwrap()
            .contains("filename*=UTF-8''Blatt%202%2Epdf")
    );
    assert_eq!(download.bytes().await.unwrap().as_ref(), b"two");

    // Into the trash and back.
    let deleted = alice
        .delete("/api/files/home/Mathe/Blatt%202.pdf")
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert!(names(&alice.get_json("/api/files/home/Mathe").await).is_empty());
    let trash = alice.get_json("/api/trash/home").await;
    assert_eq!(trash["items"][0]["original"], "Mathe/Blatt 2.pdf");
    assert_eq!(trash["trash_days"], 30);
    let id = trash["items"][0]["id"].as_str().unwrap();
    let restored: Value = alice.post_json(&format!("/api/trash/home/{id}/restore"), &csrf).await;
    assert_eq!(restored["path"], "Mathe/Blatt 2.pdf");
    assert_eq!(names(&alice.get_json("/api/files/home/Mathe").await), ["Blatt 2.pdf"]);
}

#[tokio::test]
async fn homes_are_private_and_the_shared_folder_is_read_only_for_students() {
    let app = spawn_app(&[]).await;
    let (alice, root) = (sign_in(&app, "alice").await, sign_in(&app, "root").await);
    let (a_csrf, r_csrf) = (alice.csrf().await, root.csrf().await);
    assert_eq!(
        put_status(&alice, &a_csrf, "/api/files/home/mine.txt", b"alice".to_vec()).await,
        201
    );

    let bob = sign_in(&app, "bob").await;
    assert!(
        names(&bob.get_json("/api/files/home").await).is_empty(),
        "bob's home is his own"
    );
    assert_eq!(bob.get("/api/files/home/mine.txt").send().await.unwrap().status(), 404);

    assert_eq!(
        put_status(&root, &r_csrf, "/api/files/shared/Plan.txt", b"plan".to_vec()).await,
        201
    );
    let shared = alice.get_json("/api/files/shared").await;
    assert_eq!(
        (names(&shared), shared["writable"].clone()),
        (vec!["Plan.txt".to_owned()], Value::Bool(false))
    );
    assert_eq!(
        alice
            .get("/api/files/shared/Plan.txt")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "plan"
    );
    let (status, code) = error_code(put(&alice, &a_csrf, "/api/files/shared/x.txt", b"x".to_vec()).await).await;
    assert_eq!((status, code.as_str()), (403, "read_only"));
    let refused = alice
        .delete("/api/files/shared/Plan.txt")
        .header("x-csrf-token", &a_csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(
        names(&alice.get_json("/api/files/shared").await),
        ["Plan.txt"],
        "students cannot delete there"
    );

    // No token, no write; no session, nothing at all.
    assert_eq!(
        put_status(&alice, "", "/api/files/home/x.txt", b"x".to_vec()).await,
        403
    );
    assert_eq!(
        Browser::new(&app).get("/api/files/home").send().await.unwrap().status(),
        401
    );
    let (status, code) = error_code(alice.get("/api/files/other").send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (404, "unknown_space"));
}

#[tokio::test]
async fn links_a_desktop_put_into_a_home_are_shown_and_never_followed() {
    let app = spawn_app(&[]).await;
    let (alice, bob) = (sign_in(&app, "alice").await, sign_in(&app, "bob").await);
    let csrf = alice.csrf().await;
    let b_csrf = bob.csrf().await;
    assert_eq!(
        put_status(&bob, &b_csrf, "/api/files/home/secret.txt", b"bob's".to_vec()).await,
        201
    );
    alice.get_json("/api/files/home").await;
    let (a_home, b_home) = (home_of(&app, "alice").await, home_of(&app, "bob").await);
    // What a student can do inside her desktop: links to /etc, to another home, to a file there.
    symlink("/etc", a_home.join("etc")).unwrap();
    symlink(&b_home, a_home.join("bob")).unwrap();
    symlink(b_home.join("secret.txt"), a_home.join("secret.txt")).unwrap();

    let listed = alice.get_json("/api/files/home").await;
    let kinds: Vec<_> = listed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["link", "link", "link"]);
    for path in ["etc/passwd", "etc", "secret.txt", "bob", "bob/secret.txt"] {
        let (status, code) = error_code(alice.get(&format!("/api/files/home/{path}")).send().await.unwrap()).await;
        assert_eq!((status, code.as_str()), (409, "link"), "{path}");
    }
    let (status, _) = error_code(put(&alice, &csrf, "/api/files/home/bob/planted.txt", b"x".to_vec()).await).await;
    assert_eq!(status, 409);
    let copy = api(
        &alice,
        &csrf,
        "/api/files/home/bob",
        serde_json::json!({"op": "copy", "to": "loot"}),
    )
    .await;
    assert_eq!(copy.status(), 409);
    assert_eq!(
        std::fs::read_dir(&b_home).unwrap().count(),
        1,
        "nothing was written into bob's home"
    );
    // The page shows them as links, without a download link.
    let page = alice.get("/files/home/").send().await.unwrap().text().await.unwrap();
    assert!(page.contains("secret.txt <span class=\"muted\">"), "{page}");
    assert!(!page.contains("href=\"/files/home/secret.txt\""));
}

#[tokio::test]
async fn limits_are_named_and_leave_nothing_behind() {
    let app = spawn_app_with(&[], |c| {
        c.files.quota_student_mib = 1;
        c.files.max_upload_mib = 2;
    })
    .await;
    let (alice, root) = (sign_in(&app, "alice").await, sign_in(&app, "root").await);
    let (csrf, r_csrf) = (alice.csrf().await, root.csrf().await);
    let resp = put(&alice, &csrf, "/api/files/home/big.bin", vec![0; 1024 * 1024 + 1]).await;
    assert_eq!(resp.status(), 413);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "quota");
    assert!(
        body["error"]["detail"]
            .as_str()
            .unwrap()
            .contains("1048576 bytes of the quota are left"),
        "{body}"
    );
    let resp = put(&root, &r_csrf, "/api/files/home/big.bin", vec![0; 2 * 1024 * 1024 + 1]).await;
    let (status, code) = error_code(resp).await;
    assert_eq!((status, code.as_str()), (413, "too_large"));
    for user in ["alice", "root"] {
        let left: Vec<_> = std::fs::read_dir(home_of(&app, user).await).unwrap().collect();
        assert!(left.is_empty(), "{user}: nothing partial is kept: {left:?}");
    }
    assert_eq!(
        put_status(&alice, &csrf, "/api/files/home/fits.bin", vec![0; 1024 * 1024]).await,
        201
    );

    for (path, code) in [
        ("/api/files/home/line%0Abreak.txt", "bad_name"),
        ("/api/files/home/..%2F..%2Fetc%2Fpasswd", "bad_name"),
        ("/api/files/home/.ird-upload-1", "bad_name"),
    ] {
        let (status, got) = error_code(put(&alice, &csrf, path, b"x".to_vec()).await).await;
        assert_eq!((status, got.as_str()), (400, code), "{path}");
    }
    let german = alice
        .get("/api/files/other")
        .header("accept-language", "de")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert!(
        german["error"]["message"].as_str().unwrap().contains("Dateibereich"),
        "{german}"
    );
}

#[tokio::test]
async fn the_page_works_without_javascript() {
    let app = spawn_app(&[]).await;
    let alice = sign_in(&app, "alice").await;
    assert_eq!(
        alice.get("/files").send().await.unwrap().headers()["location"],
        "/files/home/"
    );
    let page = alice.get("/files/home/").send().await.unwrap().text().await.unwrap();
    let csrf = csrf_from(&page);

    let form = reqwest::multipart::Form::new()
        .text("csrf_token", csrf.clone())
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"hallo".to_vec()).file_name("Übung 1.txt"),
        )
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"again".to_vec()).file_name("Übung 1.txt"),
        );
    let resp = alice.post("/files/home/").multipart(form).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/files/home/?done=uploaded");
    let form_post = |fields: &[(&str, &str)]| {
        let mut all = vec![("csrf_token", csrf.as_str())];
        all.extend_from_slice(fields);
        alice.post("/files/home/").form(&all).send()
    };
    assert_eq!(
        form_post(&[("op", "mkdir"), ("name", "Hausaufgaben")])
            .await
            .unwrap()
            .status(),
        303
    );
    assert_eq!(
        form_post(&[("op", "rename"), ("entry", "Übung 1 (2).txt"), ("name", "Übung 2.txt")])
            .await
            .unwrap()
            .status(),
        303
    );
    assert_eq!(
        form_post(&[("op", "delete"), ("entry", "Übung 2.txt")])
            .await
            .unwrap()
            .status(),
        303
    );

    let page = alice
        .get("/files/home/?done=deleted")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Hausaufgaben") && page.contains("Übung 1.txt"), "{page}");
    assert!(page.contains("data-trash="), "the deleted file is listed in the trash");
    let id = page
        .split("data-trash=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let resp = form_post(&[("op", "restore"), ("id", &id)]).await.unwrap();
    assert_eq!(resp.headers()["location"], "/files/home/?done=restored");
    assert_eq!(
        std::fs::read(home_of(&app, "alice").await.join("Übung 2.txt")).unwrap(),
        b"again"
    );

    // A folder may be called anything, "upload" and "action" included.
    assert_eq!(
        form_post(&[("op", "mkdir"), ("name", "action")])
            .await
            .unwrap()
            .status(),
        303
    );
    assert_eq!(alice.get("/files/home/action").send().await.unwrap().status(), 200);

    // Previews: images and text inline, sandboxed; anything active is a download.
    std::fs::write(home_of(&app, "alice").await.join("x.html"), "<script>alert(1)</script>").unwrap();
    let html = alice.get("/files/home/x.html?preview=1").send().await.unwrap();
    assert!(
        html.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert_eq!(html.headers()["content-type"], "application/octet-stream");
    let text = alice
        .get("/files/home/%C3%9Cbung%201.txt?preview=1")
        .send()
        .await
        .unwrap();
    assert!(
        text.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("inline")
    );
    assert!(
        text.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("sandbox")
    );
}

#[tokio::test]
async fn folders_download_as_one_zip_without_what_links_point_to() {
    let app = spawn_app(&[]).await;
    let (alice, bob) = (sign_in(&app, "alice").await, sign_in(&app, "bob").await);
    let (csrf, b_csrf) = (alice.csrf().await, bob.csrf().await);
    assert_eq!(
        put_status(&bob, &b_csrf, "/api/files/home/secret.txt", b"bob's".to_vec()).await,
        201
    );
    assert_eq!(
        op_status(
            &alice,
            &csrf,
            "/api/files/home/Mathe",
            serde_json::json!({"op": "mkdir"})
        )
        .await,
        201
    );
    assert_eq!(
        put_status(&alice, &csrf, "/api/files/home/Mathe/%C3%9Cbung.txt", b"eins".to_vec()).await,
        201
    );
    let big = vec![7u8; 3 * 1024 * 1024];
    assert_eq!(
        put_status(&alice, &csrf, "/api/files/home/Mathe/big.bin", big.clone()).await,
        201
    );
    let a_home = home_of(&app, "alice").await;
    symlink(
        home_of(&app, "bob").await.join("secret.txt"),
        a_home.join("Mathe/bobs.txt"),
    )
    .unwrap();
    symlink("/etc", a_home.join("Mathe/etc")).unwrap();

    let resp = alice.get("/api/files/home/Mathe?zip=true").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/zip");
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("filename*=UTF-8''Mathe%2Ezip")
    );
    let bytes = resp.bytes().await.unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut names: Vec<_> = archive.file_names().map(|n| n.unwrap().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["Mathe/", "Mathe/big.bin", "Mathe/Übung.txt"]);
    let mut content = String::new();
    std::io::Read::read_to_string(&mut archive.by_name("Mathe/Übung.txt").unwrap(), &mut content).unwrap();
    assert_eq!(content, "eins");
    assert_eq!(archive.by_name("Mathe/big.bin").unwrap().size(), big.len() as u64);

    // The whole home, from the page (no JavaScript needed).
    let page_zip = alice.get("/files/home/?zip=1").send().await.unwrap();
    assert_eq!(page_zip.headers()["content-type"], "application/zip");
    let archive = zip::ZipArchive::new(std::io::Cursor::new(page_zip.bytes().await.unwrap().to_vec())).unwrap();
    assert!(archive.file_names().any(|n| n.unwrap() == "home/Mathe/big.bin"));
}

#[tokio::test]
async fn teachers_hand_out_folders_that_only_their_class_reads() {
    let app = spawn_app(&[]).await;
    add_member(&app, "lehrerin", Role::Teacher, &["5a"]).await;
    add_member(&app, "schueler", Role::Student, &["5a"]).await;
    add_member(&app, "fremd", Role::Student, &["5b"]).await;
    let teacher = sign_in(&app, "lehrerin").await;
    let t_csrf = teacher.csrf().await;
    assert_eq!(
        op_status(
            &teacher,
            &t_csrf,
            "/api/files/home/Arbeitsblatt",
            serde_json::json!({"op": "mkdir"})
        )
        .await,
        201
    );
    assert_eq!(
        put_status(
            &teacher,
            &t_csrf,
            "/api/files/home/Arbeitsblatt/Aufgabe%201.txt",
            b"Rechne!".to_vec()
        )
        .await,
        201
    );

    let page = teacher.get("/files/home/").send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains("data-role=\"publish\""),
        "teachers get a hand-out form on folders"
    );
    let publish = |group: &'static str| {
        teacher
            .post("/files/home/")
            .form(&[
                ("csrf_token", t_csrf.as_str()),
                ("op", "publish"),
                ("entry", "Arbeitsblatt"),
                ("group", group),
            ])
            .send()
    };
    let resp = publish("5a").await.unwrap();
    assert_eq!(resp.headers()["location"], "/files/home/?done=published");
    assert_eq!(publish("5b").await.unwrap().status(), 404, "only to her own classes");

    let student = sign_in(&app, "schueler").await;
    let s_csrf = student.csrf().await;
    let class = student.get_json("/api/files/class/5a").await;
    assert_eq!(
        (names(&class), class["writable"].clone()),
        (vec!["Arbeitsblatt".to_owned()], Value::Bool(false))
    );
    let text = student
        .get("/api/files/class/5a/Arbeitsblatt/Aufgabe%201.txt")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, "Rechne!");
    let (status, code) = error_code(
        put(
            &student,
            &s_csrf,
            "/api/files/class/5a/Arbeitsblatt/mine.txt",
            b"x".to_vec(),
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (403, "read_only"));
    let student_page = student
        .get("/files/class/5a/")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(student_page.contains("data-role=\"read-only\"") && !student_page.contains("data-role=\"publish\""));

    let other = sign_in(&app, "fremd").await;
    assert_eq!(
        other.get("/api/files/class/5a").send().await.unwrap().status(),
        404,
        "another class's folder does not exist for her"
    );
    assert_eq!(
        other
            .get("/api/files/class/5a/Arbeitsblatt/Aufgabe%201.txt")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    // Withdrawn: deleted in the class folder (into its trash), audited.
    let gone = teacher
        .delete("/api/files/class/5a/Arbeitsblatt")
        .header("x-csrf-token", &t_csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 204);
    assert!(names(&student.get_json("/api/files/class/5a").await).is_empty());
    let filter = portal_store::AuditFilter {
        kind: Some(portal_store::AuditKind::FilesChanged),
        limit: 50,
        ..Default::default()
    };
    let (audit, _) = app.state.store.audit_page(&filter).await.unwrap();
    let changes: Vec<_> = audit.iter().map(|e| (e.detail.clone(), e.target.clone())).collect();
    assert_eq!(changes.len(), 2, "{changes:?}");
}

#[tokio::test]
async fn hand_ins_are_private_until_due_read_only_after_and_collected_per_student() {
    let app = spawn_app(&[]).await;
    add_member(&app, "lehrerin", Role::Teacher, &["5a"]).await;
    add_member(&app, "kollege", Role::Teacher, &["5b"]).await;
    add_member(&app, "schueler", Role::Student, &["5a"]).await;
    add_member(&app, "zweite", Role::Student, &["5a"]).await;
    add_member(&app, "fremd", Role::Student, &["5b"]).await;
    let teacher = sign_in(&app, "lehrerin").await;
    let t_csrf = teacher.csrf().await;
    // An hour from now, as the teacher's browser enters it (school time zone).
    let due = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(1))
        .unwrap()
        .to_zoned_datetime(jiff::tz::TimeZone::get("Europe/Berlin").unwrap())
        .strftime("%Y-%m-%dT%H:%M")
        .to_string();
    let created = teacher
        .post("/teacher/assignments")
        .form(&[
            ("csrf_token", t_csrf.as_str()),
            ("title", "Aufsatz"),
            ("group", "5a"),
            ("due", due.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 303, "{}", created.text().await.unwrap());
    let overview = created.headers()["location"].to_str().unwrap().to_owned();
    let id = overview.rsplit('/').next().unwrap().to_owned();
    let refused = teacher
        .post("/teacher/assignments")
        .form(&[
            ("csrf_token", t_csrf.as_str()),
            ("title", "X"),
            ("group", "5b"),
            ("due", due.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403, "only for her own groups");

    let student = sign_in(&app, "schueler").await;
    let s_csrf = student.csrf().await;
    let files_page = student.get("/files/home/").send().await.unwrap().text().await.unwrap();
    assert!(
        files_page.contains(&format!("/files/handin/{id}/")) && files_page.contains("Aufsatz"),
        "{files_page}"
    );
    let handin = format!("/api/files/handin/{id}");
    assert_eq!(
        put_status(
            &student,
            &s_csrf,
            &format!("{handin}/L%C3%B6sung.txt"),
            b"Mein Aufsatz".to_vec()
        )
        .await,
        201
    );
    let other = sign_in(&app, "fremd").await;
    assert_eq!(
        other.get(&handin).send().await.unwrap().status(),
        404,
        "another class has no hand-in here"
    );
    let second = sign_in(&app, "zweite").await;
    assert!(
        names(&second.get_json(&handin).await).is_empty(),
        "each student sees only her own hand-in"
    );

    let page = teacher.get(&overview).send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains("data-student=\"schueler\"") && page.contains("data-student=\"zweite\""),
        "{page}"
    );
    assert!(!page.contains("data-role=\"late\""));
    let colleague = sign_in(&app, "kollege").await;
    assert_eq!(
        colleague.get(&overview).send().await.unwrap().status(),
        404,
        "another group's teacher sees nothing"
    );

    let zip = teacher
        .get(&format!("/files/handins/{id}/?zip=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(zip.headers()["content-type"], "application/zip");
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip.bytes().await.unwrap().to_vec())).unwrap();
    let mut content = String::new();
    std::io::Read::read_to_string(
        &mut archive.by_name(&format!("{id}/schueler/Lösung.txt")).unwrap(),
        &mut content,
    )
    .unwrap();
    assert_eq!(content, "Mein Aufsatz", "a folder per student, named by username");

    // Due passed: read-only, still readable.
    app.state
        .store
        .set_assignment_due(&id, portal::domain::unix_now() - 1)
        .await
        .unwrap();
    let (status, code) =
        error_code(put(&student, &s_csrf, &format!("{handin}/nachher.txt"), b"x".to_vec()).await).await;
    assert_eq!((status, code.as_str()), (403, "read_only"));
    assert_eq!(
        student
            .get(&format!("{handin}/L%C3%B6sung.txt"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "Mein Aufsatz"
    );
    let closed = student
        .get(&format!("/files/handin/{id}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(closed.contains("data-role=\"read-only\""), "{closed}");

    // Late hand-ins allowed: accepted after the due time, and marked late.
    let late = app
        .state
        .store
        .create_assignment(&portal_store::NewAssignment {
            owner_id: &app.state.store.user_by_username("lehrerin").await.unwrap().unwrap().id,
            group_name: "5a",
            title: "Nachzügler",
            due_at: portal::domain::unix_now() + 3600,
            allow_late: true,
        })
        .await
        .unwrap();
    app.state
        .store
        .set_assignment_due(&late.id, portal::domain::unix_now() - 10)
        .await
        .unwrap();
    assert_eq!(
        put_status(
            &student,
            &s_csrf,
            &format!("/api/files/handin/{}/x.txt", late.id),
            b"x".to_vec()
        )
        .await,
        201
    );
    let page = teacher
        .get(&format!("/teacher/assignments/{}", late.id))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("data-role=\"late\""), "{page}");
}

#[tokio::test]
async fn class_folders_are_mounted_into_desktops_read_only_for_students() {
    if !crate::docker::docker_ready() {
        return;
    }
    let (app, scope) = crate::docker::docker_app("classes", |_| {}).await;
    add_member(&app, "lehrerin", Role::Teacher, &["5a"]).await;
    add_member(&app, "schueler", Role::Student, &["5a", "Mathe/AG"]).await;
    let mounts_of = |id: &str| {
        crate::docker::docker(&[
            "inspect",
            "-f",
            "{{range .Mounts}}{{if eq .Type \"bind\"}}{{.Destination}} {{.RW}} {{.Source}}\n{{end}}{{end}}",
            &scope.container(id),
        ])
    };
    let class_dir = |g: &str| app.state.files.class_dir(g).display().to_string();

    let student = sign_in(&app, "schueler").await;
    let (status, body, events) = crate::docker::start_desktop(&student, "fake").await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(events.last().unwrap()["step"], "ready", "{events:?}");
    let mounts = mounts_of(body["id"].as_str().unwrap());
    assert!(
        mounts.contains(&format!("/home/kasm-user/Klassen/5a false {}", class_dir("5a"))),
        "{mounts}"
    );
    assert!(
        mounts.contains(&format!(
            "/home/kasm-user/Klassen/Mathe_AG false {}",
            class_dir("Mathe/AG")
        )),
        "{mounts}"
    );

    let teacher = sign_in(&app, "lehrerin").await;
    let (_, body, events) = crate::docker::start_desktop(&teacher, "fake").await;
    assert_eq!(events.last().unwrap()["step"], "ready", "{events:?}");
    let mounts = mounts_of(body["id"].as_str().unwrap());
    assert!(
        mounts.contains(&format!("/home/kasm-user/Klassen/5a true {}", class_dir("5a"))),
        "{mounts}"
    );
    assert!(!mounts.contains("Mathe"), "only her own classes: {mounts}");

    // The folder exists before the engine mounts it, and belongs to the desktop's user.
    // `/proc/self` belongs to this process's user: giving files away needs root.
    let root = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    if root.unwrap_or(false) {
        let meta = std::fs::metadata(class_dir("5a")).unwrap();
        assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 1000);
    }
}

/// The selection form without JavaScript: ticked entries moved or copied to a folder of this
/// space or another one the user may change, a taken name numbered (never overwritten), and
/// downloaded as one zip.
#[tokio::test]
async fn a_selection_is_moved_copied_and_zipped_with_plain_forms() {
    let app = spawn_app(&[]).await;
    add_member(&app, "lehrerin", Role::Teacher, &["5a"]).await;
    let alice = sign_in(&app, "alice").await;
    let csrf = alice.csrf().await;
    for (path, body) in [
        ("/api/files/home/%C3%9Cbung%201.pdf", b"eins".to_vec()),
        ("/api/files/home/Notizen.txt", b"zwei".to_vec()),
    ] {
        assert_eq!(put_status(&alice, &csrf, path, body).await, 201);
    }
    for dir in ["Ziel", "Ziel/Unterordner"] {
        let path = format!("/api/files/home/{dir}");
        assert_eq!(
            op_status(&alice, &csrf, &path, serde_json::json!({"op": "mkdir"})).await,
            201
        );
    }
    let page = alice.get("/files/home/").send().await.unwrap().text().await.unwrap();
    assert!(page.contains(r#"form="selection""#), "rows carry checkboxes");
    assert!(page.contains(r#"<option value="home/Ziel/Unterordner">"#), "{page}");
    assert!(
        !page.contains(r#"<option value="shared/">"#),
        "a student cannot move into the shared folder"
    );
    // The selection form of the folder page `folder`.
    let select_in = |folder: &str, op: &str, entries: &[&str], to: &str| {
        let mut form = vec![
            ("csrf_token", csrf.clone()),
            ("op", op.to_owned()),
            ("to", to.to_owned()),
        ];
        form.extend(entries.iter().map(|e| ("entry", (*e).to_owned())));
        alice.post(folder).form(&form).send()
    };
    let select = |op: &str, entries: &[&str], to: &str| select_in("/files/home/", op, entries, to);

    let resp = select("move", &["Übung 1.pdf", "Notizen.txt"], "home/Ziel")
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/files/home/?done=moved");
    let home = home_of(&app, "alice").await;
    assert!(home.join("Ziel/Übung 1.pdf").exists() && home.join("Ziel/Notizen.txt").exists());
    assert!(!home.join("Übung 1.pdf").exists());

    // Copied into the folder where the name is taken: a number, the original untouched.
    let resp = select_in("/files/home/Ziel/", "copy", &["Übung 1.pdf"], "home/Ziel")
        .await
        .unwrap();
    assert_eq!(resp.headers()["location"], "/files/home/Ziel?done=numbered");
    assert_eq!(std::fs::read(home.join("Ziel/Übung 1 (2).pdf")).unwrap(), b"eins");
    assert_eq!(std::fs::read(home.join("Ziel/Übung 1.pdf")).unwrap(), b"eins");
    let notice = alice
        .get("/files/home/Ziel/?done=numbered")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(notice.contains("Übung 1 (2).pdf"), "the page says what happened");

    // A folder into itself, a student into the shared folder: refused, nothing moved.
    let resp = select("move", &["Ziel"], "home/Ziel/Unterordner").await.unwrap();
    assert_eq!(resp.status(), 409);
    let resp = select_in("/files/home/Ziel/", "move", &["Notizen.txt"], "shared/")
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(home.join("Ziel/Notizen.txt").exists());
    let resp = select("move", &[], "home/Ziel").await.unwrap();
    assert_eq!(resp.status(), 400, "nothing ticked");

    // The selection as one zip.
    let resp = select_in("/files/home/Ziel/", "zip", &["Übung 1.pdf", "Unterordner"], "")
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/zip");
    let archive = zip::ZipArchive::new(std::io::Cursor::new(resp.bytes().await.unwrap().to_vec())).unwrap();
    let mut names: Vec<_> = archive.file_names().map(|n| n.unwrap().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["Ziel/", "Ziel/Unterordner/", "Ziel/Übung 1.pdf"]);

    // A teacher moves from her home into the shared folder and copies into her class's.
    let teacher = sign_in(&app, "lehrerin").await;
    let t_csrf = teacher.csrf().await;
    assert_eq!(
        put_status(&teacher, &t_csrf, "/api/files/home/Blatt.txt", b"b".to_vec()).await,
        201
    );
    let page = teacher.get("/files/home/").send().await.unwrap().text().await.unwrap();
    assert!(page.contains(r#"<option value="shared/">"#) && page.contains(r#"<option value="class/5a/">"#));
    for (op, to) in [("copy", "class/5a/"), ("move", "shared/")] {
        let resp = teacher
            .post("/files/home/")
            .form(&[
                ("csrf_token", t_csrf.as_str()),
                ("op", op),
                ("to", to),
                ("entry", "Blatt.txt"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303, "{op} to {to}");
    }
    assert!(app.state.files.shared_dir().join("Blatt.txt").exists());
    assert!(app.state.files.class_dir("5a").join("Blatt.txt").exists());
    assert!(!home_of(&app, "lehrerin").await.join("Blatt.txt").exists());
}

/// PDFs preview on the preview origin (Chromium's viewer does not run in a sandboxed
/// document): a short-lived ticket URL without the portal's cookie, always `application/pdf`
/// with `nosniff`. Without desktop origins a PDF is downloaded instead.
#[tokio::test]
async fn pdf_previews_come_from_the_preview_origin_with_a_ticket_and_no_cookie() {
    let app = spawn_app_with(&[], crate::helpers::with_desktop_origins).await;
    let alice = sign_in(&app, "alice").await;
    let csrf = alice.csrf().await;
    assert_eq!(
        put_status(
            &alice,
            &csrf,
            "/api/files/home/Blatt%201.pdf",
            b"%PDF-1.4 hallo".to_vec()
        )
        .await,
        201
    );
    // HTML named .pdf: still served as a PDF, never sniffed into a page.
    assert_eq!(
        put_status(
            &alice,
            &csrf,
            "/api/files/home/b%C3%B6se.pdf",
            b"<html><script>alert(1)</script>".to_vec()
        )
        .await,
        201
    );
    let page = alice.get("/files/home/").send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Blatt%201.pdf?preview=1"), "PDFs get a preview link");

    let resp = alice.get("/files/home/Blatt%201.pdf?preview=1").send().await.unwrap();
    assert_eq!(resp.status(), 303);
    let to = resp.headers()["location"].to_str().unwrap().to_owned();
    let prefix = format!("http://p0-preview.localhost:{}/.ird/preview/", app.addr.port());
    assert!(to.starts_with(&prefix) && to.ends_with("/Blatt%201.pdf"), "{to}");

    // Fetched as a browser would: by host name, with no cookie for that host.
    let plain = reqwest::Client::builder()
        .resolve("p0-preview.localhost", app.addr)
        .build()
        .unwrap();
    let blatt = to.clone();
    let resp = plain.get(&to).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    assert_eq!(h["content-type"], "application/pdf");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["cross-origin-resource-policy"], "same-origin");
    assert!(h["content-disposition"].to_str().unwrap().starts_with("inline"));
    assert!(h.get("set-cookie").is_none());
    assert_eq!(resp.bytes().await.unwrap().as_ref(), b"%PDF-1.4 hallo");
    // Reusable while it lasts (the viewer asks again); a guessed ticket is nothing.
    assert_eq!(plain.get(&to).send().await.unwrap().status(), 200);
    let guessed = format!("{prefix}AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/Blatt%201.pdf");
    assert_eq!(plain.get(&guessed).send().await.unwrap().status(), 404);
    // Only GET: nothing on the preview origin changes anything.
    assert_eq!(plain.put(&to).body("x").send().await.unwrap().status(), 404);

    let resp = alice.get("/files/home/b%C3%B6se.pdf?preview=1").send().await.unwrap();
    let to = resp.headers()["location"].to_str().unwrap().to_owned();
    let resp = plain.get(&to).send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], "application/pdf");

    // The ticket holds the user's access, checked again: a file gone is a 404.
    std::fs::remove_file(home_of(&app, "alice").await.join("Blatt 1.pdf")).unwrap();
    assert_eq!(plain.get(&blatt).send().await.unwrap().status(), 404);

    // Without desktop origins there is no preview origin: the PDF is an attachment.
    let app = spawn_app(&[]).await;
    let alice = sign_in(&app, "alice").await;
    let csrf = alice.csrf().await;
    assert_eq!(
        put_status(&alice, &csrf, "/api/files/home/a.pdf", b"%PDF".to_vec()).await,
        201
    );
    let page = alice.get("/files/home/").send().await.unwrap().text().await.unwrap();
    assert!(!page.contains("a.pdf?preview=1"));
    let resp = alice.get("/files/home/a.pdf?preview=1").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert!(
        resp.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("sandbox")
    );
}

#[tokio::test]
async fn a_posted_folder_keeps_its_tree_and_its_names_stay_inside() {
    let app = spawn_app(&[]).await;
    let alice = sign_in(&app, "alice").await;
    let page = alice.get("/files/home/").send().await.unwrap().text().await.unwrap();
    let csrf = csrf_from(&page);
    assert!(page.contains("name=\"folder\" webkitdirectory"), "the folder picker");
    let home = home_of(&app, "alice").await;
    std::fs::create_dir_all(home.join("Kurs/Alt")).unwrap();
    std::fs::write(home.join("Kurs/Alt/a.txt"), "vorher").unwrap();

    let folder = |parts: &[(&str, &str)]| {
        let mut form = reqwest::multipart::Form::new().text("csrf_token", csrf.clone());
        for (name, data) in parts {
            form = form.part(
                "folder",
                reqwest::multipart::Part::bytes(data.as_bytes().to_vec()).file_name(name.to_string()),
            );
        }
        alice.post("/files/home/").multipart(form).send()
    };
    // As browsers post a chosen folder: each file named by its path in it. An existing
    // folder is used as it is; a taken name gets a number.
    let resp = folder(&[
        ("Kurs/Alt/a.txt", "neu"),
        ("Kurs/Bilder Öl/tief/Grüße.txt", "tief"),
        ("Kurs/Übung 1.txt", "eins"),
    ])
    .await
    .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(std::fs::read(home.join("Kurs/Alt/a.txt")).unwrap(), b"vorher");
    assert_eq!(std::fs::read(home.join("Kurs/Alt/a (2).txt")).unwrap(), b"neu");
    assert_eq!(
        std::fs::read(home.join("Kurs/Bilder Öl/tief/Grüße.txt")).unwrap(),
        b"tief"
    );
    assert_eq!(std::fs::read(home.join("Kurs/Übung 1.txt")).unwrap(), b"eins");

    // A path that would leave the folder is a bad name, and nothing of it is written.
    for bad in ["Kurs/../../../x.txt", "Kurs/./x.txt", "Kurs/.ird-upload-1/x.txt"] {
        let resp = folder(&[(bad, "böse")]).await.unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
    }
    assert!(!home.join("x.txt").exists() && !home.join("Kurs/x.txt").exists());
    assert!(!home.parent().unwrap().join("x.txt").exists());
}

#[tokio::test]
async fn a_home_a_desktop_filled_past_its_quota_says_so_and_takes_no_uploads() {
    let app = spawn_app_with(&[], |c| c.files.quota_student_mib = 1).await;
    let alice = sign_in(&app, "alice").await;
    // Written past the portal, as a desktop writes into its home.
    let home = home_of(&app, "alice").await;
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("Film.mp4"), vec![1u8; 2 * 1024 * 1024]).unwrap();
    let alice = &alice;
    let page = |lang: &'static str| async move {
        let resp = alice.get("/files/home/").header("accept-language", lang).send();
        resp.await.unwrap().text().await.unwrap()
    };
    let english = page("en").await;
    assert!(
        english.contains("data-role=\"over-quota\"") && english.contains("no new desktop starts"),
        "{english}"
    );
    assert!(page("de").await.contains("kein neuer Desktop starten"));
    let csrf = csrf_from(&english);
    let (status, code) = error_code(put(alice, &csrf, "/api/files/home/x.txt", b"x".to_vec()).await).await;
    assert_eq!((status, code.as_str()), (413, "quota"));
    assert!(!home.join("x.txt").exists());

    // Deleted (into the trash, which does not count): the warning goes at once.
    let delete = alice
        .delete("/api/files/home/Film.mp4")
        .header("x-csrf-token", &csrf)
        .send();
    assert_eq!(delete.await.unwrap().status(), 204);
    assert!(!page("en").await.contains("data-role=\"over-quota\""));
}
