//! Hand-ins beyond the file manager, against the real portal: sealed at the due time (what a
//! still running desktop writes afterwards changes nothing the teacher sees), in real desktops
//! (writable before, read-only in a desktop started after), late marks, feedback, the
//! administrators' disk use, the rate limit on file changes and "my data".

use std::io::Read as _;
use std::process::Command;
use std::time::Duration;

use portal_store::{Assignment, AuditFilter, NewAssignment, Role};
use serde_json::Value;

use crate::files::{error_code, names, put, put_status};
use crate::helpers::{Browser, TestApp, sign_in, spawn_app, spawn_app_with};
use crate::ui_teacher::add_member;

/// An assignment of `teacher` for `group`, due in an hour.
async fn assignment(app: &TestApp, teacher: &str, group: &str, title: &str, allow_late: bool) -> Assignment {
    let owner = app.state.store.user_by_username(teacher).await.unwrap().unwrap();
    app.state
        .store
        .create_assignment(&NewAssignment {
            owner_id: &owner.id,
            group_name: group,
            title,
            due_at: portal::domain::unix_now() + 3600,
            allow_late,
        })
        .await
        .unwrap()
}

async fn due_at(app: &TestApp, id: &str, at: i64) {
    app.state.store.set_assignment_due(id, at).await.unwrap();
}

async fn home_name(app: &TestApp, username: &str) -> String {
    app.state
        .store
        .user_by_username(username)
        .await
        .unwrap()
        .unwrap()
        .home_name
}

async fn text(b: &Browser, path: &str) -> (u16, String) {
    let resp = b.get(path).send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

fn zip_names(bytes: &[u8]) -> Vec<String> {
    let archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    archive.file_names().map(|n| n.unwrap().into_owned()).collect()
}

#[tokio::test]
async fn after_the_due_time_the_teacher_sees_what_was_there_then() {
    let app = spawn_app(&[]).await;
    add_member(&app, "lehrerin", Role::Teacher, &["5a"]).await;
    add_member(&app, "schueler", Role::Student, &["5a"]).await;
    let a = assignment(&app, "lehrerin", "5a", "Aufsatz", false).await;
    let home = home_name(&app, "schueler").await;
    let student = sign_in(&app, "schueler").await;
    let s_csrf = student.csrf().await;
    let teacher = sign_in(&app, "lehrerin").await;
    let handin = format!("/api/files/handin/{}", a.id);
    let handins = format!("/api/files/handins/{}/{home}", a.id);
    assert_eq!(
        put_status(&student, &s_csrf, &format!("{handin}/Aufsatz.txt"), b"vorher".to_vec()).await,
        201
    );
    assert_eq!(names(&teacher.get_json(&handins).await), ["Aufsatz.txt"]);

    due_at(&app, &a.id, portal::domain::unix_now() - 1).await;
    let overview = text(&teacher, &format!("/teacher/assignments/{}", a.id)).await.1;
    assert!(overview.contains("data-role=\"sealed\""), "{overview}");
    // A desktop started before the due time still has the live folder mounted writable:
    // what it writes there now must change nothing the teacher (or the student) sees.
    let live = app.state.files.handins_dir(&a.id).unwrap().join(&home);
    std::fs::write(live.join("nachher.txt"), "zu spät").unwrap();
    std::fs::write(live.join("Aufsatz.txt"), "geändert").unwrap();
    assert_eq!(names(&teacher.get_json(&handins).await), ["Aufsatz.txt"]);
    assert_eq!(
        text(&teacher, &format!("{handins}/Aufsatz.txt")).await,
        (200, "vorher".to_owned())
    );
    assert_eq!(
        text(&student, &format!("{handin}/Aufsatz.txt")).await,
        (200, "vorher".to_owned()),
        "she sees what her teacher sees"
    );
    let zip = teacher
        .get(&format!("/files/handins/{}/?zip=1", a.id))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let in_zip = zip_names(&zip);
    assert!(
        in_zip.contains(&format!("{}/schueler/Aufsatz.txt", a.id)) && !in_zip.iter().any(|n| n.contains("nachher")),
        "{in_zip:?}"
    );
    let (status, code) = error_code(put(&student, &s_csrf, &format!("{handin}/neu.txt"), b"x".to_vec()).await).await;
    assert_eq!((status, code.as_str()), (403, "read_only"));

    // A new due time voids the seal: open again, sealed anew when it comes.
    due_at(&app, &a.id, portal::domain::unix_now() + 3600).await;
    assert_eq!(
        put_status(&student, &s_csrf, &format!("{handin}/neu.txt"), b"x".to_vec()).await,
        201
    );
    due_at(&app, &a.id, portal::domain::unix_now() - 1).await;
    let mut sealed = names(&teacher.get_json(&handins).await);
    sealed.sort();
    assert_eq!(
        sealed,
        ["Aufsatz.txt", "nachher.txt", "neu.txt"],
        "the live folder as it is now"
    );
}

#[tokio::test]
async fn the_sealer_seals_at_the_due_time_without_anyone_asking() {
    let app = spawn_app(&[]).await;
    add_member(&app, "lehrerin", Role::Teacher, &["5a"]).await;
    add_member(&app, "schueler", Role::Student, &["5a"]).await;
    let a = assignment(&app, "lehrerin", "5a", "Aufsatz", false).await;
    // Due in two seconds: the sealer, asleep for a few seconds at most, wakes for it.
    due_at(&app, &a.id, portal::domain::unix_now() + 2).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let now = app.state.store.assignment(&a.id).await.unwrap().unwrap();
        if let Some(at) = now.sealed_at {
            assert!(
                at >= now.due_at && at <= now.due_at + 5,
                "sealed at {at}, due {}",
                now.due_at
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not sealed in time");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(app.state.files.sealed_dir(&a.id).unwrap().is_dir());
}

#[tokio::test]
async fn late_hand_ins_are_marked_late_with_their_time() {
    let app = spawn_app(&[]).await;
    add_member(&app, "lehrerin", Role::Teacher, &["5a"]).await;
    add_member(&app, "puenktlich", Role::Student, &["5a"]).await;
    add_member(&app, "spaet", Role::Student, &["5a"]).await;
    let a = assignment(&app, "lehrerin", "5a", "Nachzügler", true).await;
    let handin = format!("/api/files/handin/{}", a.id);
    let on_time = sign_in(&app, "puenktlich").await;
    let late = sign_in(&app, "spaet").await;
    let (on_csrf, late_csrf) = (on_time.csrf().await, late.csrf().await);
    assert_eq!(
        put_status(&on_time, &on_csrf, &format!("{handin}/a.txt"), b"a".to_vec()).await,
        201
    );
    // Due a second from now, then past: the change time of the next write is after it.
    due_at(&app, &a.id, portal::domain::unix_now() + 1).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        put_status(&late, &late_csrf, &format!("{handin}/b.txt"), b"b".to_vec()).await,
        201,
        "late hand-ins are allowed"
    );
    // Setting the file's time back (as `touch -d` in a desktop could) hides nothing.
    let live = app
        .state
        .files
        .handins_dir(&a.id)
        .unwrap()
        .join(home_name(&app, "spaet").await)
        .join("b.txt");
    let old = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    std::fs::File::options()
        .write(true)
        .open(&live)
        .unwrap()
        .set_modified(old)
        .unwrap();

    let teacher = sign_in(&app, "lehrerin").await;
    let page = text(&teacher, &format!("/teacher/assignments/{}", a.id)).await.1;
    let row = |who: &str| {
        let start = page.find(&format!("data-student=\"{who}\"")).unwrap();
        page[start..start + page[start..].find("</tr>").unwrap()].to_owned()
    };
    assert!(
        !row("puenktlich").contains("data-role=\"late\""),
        "{}",
        row("puenktlich")
    );
    let year = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .year()
        .to_string();
    let marked = row("spaet");
    assert!(
        marked.contains("data-role=\"late\">verspätet (")
            && marked[marked.find("verspätet").unwrap()..].contains(&year),
        "marked late with the time: {marked}"
    );
    assert!(!page.contains("data-role=\"sealed\""), "late hand-ins are never sealed");
}

#[tokio::test]
async fn feedback_reaches_its_student_only() {
    let app = spawn_app(&[]).await;
    add_member(&app, "lehrerin", Role::Teacher, &["5a"]).await;
    add_member(&app, "kollege", Role::Teacher, &["5b"]).await;
    add_member(&app, "schueler", Role::Student, &["5a"]).await;
    add_member(&app, "zweite", Role::Student, &["5a"]).await;
    let a = assignment(&app, "lehrerin", "5a", "Aufsatz", false).await;
    let home = home_name(&app, "schueler").await;
    let action = format!("/teacher/assignments/{}/feedback/{home}", a.id);

    let teacher = sign_in(&app, "lehrerin").await;
    let page = text(&teacher, &format!("/teacher/assignments/{}", a.id)).await.1;
    assert!(
        page.contains(&format!("action=\"{action}\"")),
        "a form per student: {page}"
    );
    let csrf = crate::helpers::csrf_from(&page);
    let form = reqwest::multipart::Form::new().text("csrf_token", csrf.clone()).part(
        "file",
        reqwest::multipart::Part::bytes("Gut gemacht".as_bytes().to_vec()).file_name("Bewertung.txt"),
    );
    let given = teacher.post(&action).multipart(form).send().await.unwrap();
    assert_eq!(given.status(), 303, "{}", given.text().await.unwrap());
    let page = text(&teacher, &format!("/teacher/assignments/{}?done=feedback", a.id))
        .await
        .1;
    assert!(page.contains("Bewertung.txt"), "{page}");

    let student = sign_in(&app, "schueler").await;
    let file = format!("/api/files/feedback/{}/Bewertung.txt", a.id);
    assert_eq!(text(&student, &file).await, (200, "Gut gemacht".to_owned()));
    let s_csrf = student.csrf().await;
    let (status, code) = error_code(
        put(
            &student,
            &s_csrf,
            &format!("/api/files/feedback/{}/x.txt", a.id),
            b"x".to_vec(),
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (403, "read_only"), "read-only for her");
    let handin_page = text(&student, &format!("/files/handin/{}/", a.id)).await.1;
    assert!(
        handin_page.contains(&format!("href=\"/files/feedback/{}/\"", a.id)),
        "linked from her hand-in"
    );

    let other = sign_in(&app, "zweite").await;
    assert_eq!(text(&other, &file).await.0, 404, "another student");
    assert_eq!(
        text(&other, &format!("/api/files/feedbacks/{}/{home}/Bewertung.txt", a.id))
            .await
            .0,
        404
    );
    let colleague = sign_in(&app, "kollege").await;
    assert_eq!(
        text(
            &colleague,
            &format!("/api/files/feedbacks/{}/{home}/Bewertung.txt", a.id)
        )
        .await
        .0,
        404,
        "another group's teacher"
    );
    assert_eq!(text(&colleague, &file).await.0, 404);
    let c_csrf = colleague.csrf().await;
    let form = reqwest::multipart::Form::new().text("csrf_token", c_csrf).part(
        "file",
        reqwest::multipart::Part::bytes(b"x".to_vec()).file_name("fremd.txt"),
    );
    assert_eq!(
        colleague.post(&action).multipart(form).send().await.unwrap().status(),
        404
    );
    assert!(
        !app.state
            .files
            .feedback_dir(&a.id)
            .unwrap()
            .join(&home)
            .join("fremd.txt")
            .exists()
    );

    let (entries, _) = app
        .state
        .store
        .audit_page(&AuditFilter {
            user: Some("lehrerin".into()),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        entries.iter().any(|e| e.detail == "feedback given"
            && e.target
                .as_deref()
                .is_some_and(|t| t.contains("schueler") && t.contains("Bewertung.txt"))),
        "{entries:?}"
    );
}

#[tokio::test]
async fn disk_use_per_user_and_class_matches_what_was_written() {
    let app = spawn_app(&[]).await;
    add_member(&app, "chefin", Role::Admin, &[]).await;
    add_member(&app, "lehrerin", Role::Teacher, &["5a"]).await;
    add_member(&app, "schueler", Role::Student, &["5a"]).await;
    add_member(&app, "leer", Role::Student, &["5a"]).await;
    let a = assignment(&app, "lehrerin", "5a", "Aufsatz", false).await;
    let student = sign_in(&app, "schueler").await;
    let csrf = student.csrf().await;
    assert_eq!(
        put_status(&student, &csrf, "/api/files/home/a.bin", vec![1; 1000]).await,
        201
    );
    assert_eq!(
        put_status(&student, &csrf, "/api/files/home/b.bin", vec![2; 234]).await,
        201
    );
    assert_eq!(
        put_status(
            &student,
            &csrf,
            &format!("/api/files/handin/{}/h.bin", a.id),
            vec![3; 500]
        )
        .await,
        201
    );
    let teacher = sign_in(&app, "lehrerin").await;
    let t_csrf = teacher.csrf().await;
    assert_eq!(
        put_status(&teacher, &t_csrf, "/api/files/class/5a/blatt.bin", vec![4; 300]).await,
        201
    );

    let admin = sign_in(&app, "chefin").await;
    let page = text(&admin, "/admin/disk").await;
    assert_eq!(page.0, 200, "{}", page.1);
    let page = page.1;
    let row = |attr: &str| {
        let start = page.find(attr).unwrap_or_else(|| panic!("{attr} in {page}"));
        page[start..start + page[start..].find("</tr>").unwrap()].to_owned()
    };
    let s = row("data-user=\"schueler\"");
    assert!(s.contains("data-bytes=\"1234\" data-role=\"home\""), "{s}");
    assert!(s.contains("data-bytes=\"500\" data-role=\"handins\""), "{s}");
    assert!(s.contains("data-bytes=\"1734\" data-role=\"total\""), "{s}");
    assert!(s.contains("2,1 GB"), "the student quota (2048 MiB): {s}");
    let c = row("data-class=\"5a\"");
    assert!(c.contains("data-bytes=\"300\" data-role=\"folder\""), "{c}");
    assert!(c.contains("data-bytes=\"500\" data-role=\"handins\""), "{c}");
    let first_user = page.find("data-user=").unwrap();
    assert_eq!(page.find("data-user=\"schueler\""), Some(first_user), "largest first");
    assert_eq!(text(&student, "/admin/disk").await.0, 403, "administrators only");
}

#[tokio::test]
async fn file_changes_are_limited_per_user_with_retry_after_and_nothing_half_done() {
    let app = spawn_app_with(&[], |c| c.files.writes_per_minute = 3).await;
    add_member(&app, "schueler", Role::Student, &["5a"]).await;
    add_member(&app, "zweite", Role::Student, &["5a"]).await;
    let student = sign_in(&app, "schueler").await;
    let csrf = student.csrf().await;
    for i in 0..3 {
        assert_eq!(
            put_status(&student, &csrf, &format!("/api/files/home/{i}.txt"), b"x".to_vec()).await,
            201
        );
    }
    let refused = put(&student, &csrf, "/api/files/home/zu-viel.txt", b"x".to_vec()).await;
    assert_eq!(refused.status(), 429);
    let retry: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(
        (1..=20).contains(&retry),
        "one of three a minute comes back within 20 s: {retry}"
    );
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_file_changes", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("höchstens 3 pro Minute"),
        "{body}"
    );
    let home = {
        let user = app.state.store.user_by_username("schueler").await.unwrap().unwrap();
        app.state.files.home_dir(&user)
    };
    assert!(!home.join("zu-viel.txt").exists(), "nothing half-done");

    // The page's forms too, in the page's language.
    let page = student
        .post("/files/home/")
        .header("accept-language", "en")
        .form(&[("csrf_token", csrf.as_str()), ("op", "mkdir"), ("name", "Neu")])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 429);
    assert!(page.headers().contains_key("retry-after"));
    assert!(page.text().await.unwrap().contains("at most 3 per minute"));
    assert!(!home.join("Neu").exists());
    assert_eq!(
        student.get("/api/files/home/0.txt").send().await.unwrap().status(),
        200,
        "reading is not limited"
    );
    let other = sign_in(&app, "zweite").await;
    let o_csrf = other.csrf().await;
    assert_eq!(
        put_status(&other, &o_csrf, "/api/files/home/a.txt", b"x".to_vec()).await,
        201,
        "per user"
    );
}

#[tokio::test]
async fn my_data_holds_the_home_the_hand_ins_and_the_feedback() {
    let app = spawn_app(&[]).await;
    add_member(&app, "lehrerin", Role::Teacher, &["5a"]).await;
    add_member(&app, "schueler", Role::Student, &["5a"]).await;
    let a = assignment(&app, "lehrerin", "5a", "Aufsatz 1", false).await;
    let student = sign_in(&app, "schueler").await;
    let csrf = student.csrf().await;
    assert_eq!(
        put_status(&student, &csrf, "/api/files/home/Notiz.txt", b"n".to_vec()).await,
        201
    );
    assert_eq!(
        put_status(
            &student,
            &csrf,
            &format!("/api/files/handin/{}/L%C3%B6sung.txt", a.id),
            b"l".to_vec()
        )
        .await,
        201
    );
    let feedback = app
        .state
        .files
        .feedback_dir(&a.id)
        .unwrap()
        .join(home_name(&app, "schueler").await);
    std::fs::create_dir_all(&feedback).unwrap();
    std::fs::write(feedback.join("Bewertung.txt"), "gut").unwrap();

    let page = text(&student, "/files/home/").await.1;
    assert!(page.contains("href=\"/files/my-data.zip\""), "linked on her files");
    let resp = student.get("/files/my-data.zip").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/zip");
    let bytes = resp.bytes().await.unwrap();
    let in_zip = zip_names(&bytes);
    for expected in [
        "home/Notiz.txt",
        "Abgaben/Aufsatz 1/Lösung.txt",
        "Rückmeldungen/Aufsatz 1/Bewertung.txt",
    ] {
        assert!(in_zip.iter().any(|n| n == expected), "{expected} in {in_zip:?}");
    }
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut content = String::new();
    archive
        .by_name("Rückmeldungen/Aufsatz 1/Bewertung.txt")
        .unwrap()
        .read_to_string(&mut content)
        .unwrap();
    assert_eq!(content, "gut");
}

/// What `scripts/build-real-desktop-image.sh` builds: a desktop with a shell.
const REAL_IMAGE: &str = "iserv-rd/real-desktop:test";

fn real_desktop_ready() -> bool {
    let present = Command::new("docker")
        .args(["image", "inspect", REAL_IMAGE])
        .output()
        .is_ok_and(|o| o.status.success());
    if !present && std::env::var_os("CI").is_some() {
        panic!("the hand-in desktop test needs the image {REAL_IMAGE}: run scripts/build-real-desktop-image.sh");
    }
    if !present {
        eprintln!("skipped: no {REAL_IMAGE}");
    }
    present
}

/// `sh -c cmd` in the container as the desktop's user (uid 1000); its output, or `Err` with it.
fn as_desktop_user(container: &str, cmd: &str) -> Result<String, String> {
    let out = Command::new("docker")
        .args(["exec", "-u", "1000", container, "sh", "-c", cmd])
        .output()
        .expect("docker exec runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() { Ok(text) } else { Err(text) }
}

#[tokio::test]
async fn a_hand_in_is_written_in_the_desktop_sealed_at_the_due_time_and_read_only_in_a_later_desktop() {
    if !crate::docker::docker_ready() || !real_desktop_ready() {
        return;
    }
    let (app, scope) = crate::docker::docker_app("handins", |c| {
        let mut t = crate::docker::fake_type("debian");
        t.image = REAL_IMAGE.into();
        t.env = Default::default();
        t.memory_mib = Some(1024);
        t.cpus = Some(1.0);
        t.shm_size_mib = 256;
        c.desktop_types = vec![t];
    })
    .await;
    add_member(&app, "lehrerin", Role::Teacher, &["5a"]).await;
    add_member(&app, "schueler", Role::Student, &["5a"]).await;
    let a = assignment(&app, "lehrerin", "5a", "Aufsatz: Herbst", false).await;
    let home = home_name(&app, "schueler").await;
    let folder = "/home/kasm-user/Abgaben/Aufsatz_ Herbst";
    let student = sign_in(&app, "schueler").await;
    let dashboard = text(&student, "/").await.1;
    assert!(
        dashboard.contains("data-role=\"handins-note\""),
        "new hand-in folders need a restart, and she is told"
    );
    let (status, body, events) = crate::docker::start_desktop(&student, "debian").await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(events.last().unwrap()["step"], "ready", "{events:?}");
    let id = body["id"].as_str().unwrap().to_owned();
    let container = scope.container(&id);

    as_desktop_user(&container, &format!("echo vorher > '{folder}/text.txt'")).expect("writable before the due time");
    let teacher = sign_in(&app, "lehrerin").await;
    let handins = format!("/api/files/handins/{}/{home}", a.id);
    assert_eq!(names(&teacher.get_json(&handins).await), ["text.txt"]);
    assert_eq!(
        as_desktop_user(&container, "ls ~/Rückmeldungen").unwrap().trim(),
        "Aufsatz_ Herbst",
        "her feedback folder is there too"
    );

    due_at(&app, &a.id, portal::domain::unix_now() - 1).await;
    assert_eq!(names(&teacher.get_json(&handins).await), ["text.txt"]);
    // The running desktop keeps its writable mount; what it writes now does not count.
    as_desktop_user(
        &container,
        &format!("echo nachher > '{folder}/spaet.txt' && echo geändert > '{folder}/text.txt'"),
    )
    .expect("the running desktop's mount is still writable");
    assert_eq!(names(&teacher.get_json(&handins).await), ["text.txt"]);
    assert_eq!(
        text(&teacher, &format!("{handins}/text.txt")).await,
        (200, "vorher\n".to_owned())
    );

    // Restarted after the due time: the sealed copy, read-only.
    let csrf = student.csrf().await;
    let stopped: Value = student.post_json(&format!("/api/desktops/{id}/stop"), &csrf).await;
    assert_eq!(stopped["state"], "stopped", "{stopped}");
    let (_, _, events) = crate::docker::start_desktop(&student, "debian").await;
    assert_eq!(events.last().unwrap()["step"], "ready", "{events:?}");
    assert_eq!(
        as_desktop_user(&container, &format!("cat '{folder}/text.txt'")).unwrap(),
        "vorher\n",
        "the sealed copy"
    );
    let refused = as_desktop_user(&container, &format!("echo x > '{folder}/neu.txt'"));
    assert!(refused.as_ref().is_err_and(|e| e.contains("Read-only")), "{refused:?}");
    let mounts = crate::docker::docker(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{if eq .Type \"bind\"}}{{.Destination}} {{.RW}}\n{{end}}{{end}}",
        &container,
    ]);
    assert!(mounts.contains(&format!("{folder} false")), "{mounts}");
}

/// The assignment's teacher moves its due time on its page: into the past it closes (and is
/// sealed), later again it opens; a wrong value is a 400 naming the format; another group's
/// teacher does not see the assignment at all.
#[tokio::test]
async fn the_teacher_moves_the_due_time_on_the_page() {
    let app = spawn_app(&[]).await;
    add_member(&app, "lehrerin", Role::Teacher, &["5a"]).await;
    add_member(&app, "fremd", Role::Teacher, &["6b"]).await;
    add_member(&app, "schueler", Role::Student, &["5a"]).await;
    let a = assignment(&app, "lehrerin", "5a", "Referat", false).await;
    let teacher = sign_in(&app, "lehrerin").await;
    let csrf = teacher.csrf().await;
    let page = format!("/teacher/assignments/{}", a.id);
    let action = format!("{page}/due");
    assert!(text(&teacher, &page).await.1.contains("data-role=\"move-due\""));
    let post =
        |b: &Browser, csrf: String, due: String| b.post(&action).form(&[("csrf_token", csrf), ("due", due)]).send();

    let zone = |secs: i64| {
        jiff::Timestamp::from_second(secs)
            .unwrap()
            .to_zoned_datetime(jiff::tz::TimeZone::get("Europe/Berlin").unwrap())
            .strftime("%Y-%m-%dT%H:%M")
            .to_string()
    };
    let past = portal::domain::unix_now() - 120;
    let resp = post(&teacher, csrf.clone(), zone(past)).await.unwrap();
    assert_eq!(resp.status(), 303);
    let closed = app.state.store.assignment(&a.id).await.unwrap().unwrap();
    assert!(
        !closed.open_at(portal::domain::unix_now()),
        "closed at the earlier time"
    );
    let shown = text(&teacher, &format!("{page}?done=due")).await.1;
    assert!(
        shown.contains("data-role=\"sealed\""),
        "sealed once the page is opened: {shown}"
    );

    let later = portal::domain::unix_now() + 7200;
    assert_eq!(post(&teacher, csrf.clone(), zone(later)).await.unwrap().status(), 303);
    let open = app.state.store.assignment(&a.id).await.unwrap().unwrap();
    assert!(
        open.open_at(portal::domain::unix_now()) && open.sealed_at.is_none(),
        "open again, seal void"
    );

    let bad = post(&teacher, csrf.clone(), "morgen früh".into()).await.unwrap();
    assert_eq!(bad.status(), 400);
    assert!(
        bad.text().await.unwrap().contains("2026-12-05T14:30"),
        "names the format"
    );

    let other = sign_in(&app, "fremd").await;
    let other_csrf = other.csrf().await;
    assert_eq!(post(&other, other_csrf, zone(past)).await.unwrap().status(), 404);
    let student = sign_in(&app, "schueler").await;
    let s_csrf = student.csrf().await;
    assert_ne!(post(&student, s_csrf, zone(past)).await.unwrap().status(), 303);
    let unchanged = app.state.store.assignment(&a.id).await.unwrap().unwrap();
    assert_eq!(unchanged.due_at, open.due_at, "only its teacher moved it");
}

/// A student can fill her live hand-in folder from inside a desktop, where no portal limit
/// applies; the sealed copy takes at most her quota, and the cut is in the audit log.
#[tokio::test]
async fn a_hand_in_over_the_student_quota_is_sealed_only_up_to_it() {
    let app = spawn_app_with(&[], |c| c.files.quota_student_mib = 1).await;
    add_member(&app, "lehrerin", Role::Teacher, &["5a"]).await;
    add_member(&app, "viel", Role::Student, &["5a"]).await;
    add_member(&app, "wenig", Role::Student, &["5a"]).await;
    let a = assignment(&app, "lehrerin", "5a", "Projekt", false).await;
    let handins = app.state.files.handins_dir(&a.id).unwrap();
    // Written as a desktop would: straight into the bind-mounted folders.
    let (viel, wenig) = (home_name(&app, "viel").await, home_name(&app, "wenig").await);
    for (home, files) in [(&viel, 4), (&wenig, 1)] {
        std::fs::create_dir_all(handins.join(home)).unwrap();
        for i in 0..files {
            std::fs::write(handins.join(home).join(format!("teil{i}.bin")), vec![7u8; 400 << 10]).unwrap();
        }
    }
    due_at(&app, &a.id, portal::domain::unix_now() - 1).await;
    let teacher = sign_in(&app, "lehrerin").await;
    let overview = text(&teacher, &format!("/teacher/assignments/{}", a.id)).await.1;
    assert!(overview.contains("data-role=\"sealed\""), "{overview}");

    let sealed = app.state.files.sealed_dir(&a.id).unwrap();
    let bytes = |home: &str| -> u64 {
        std::fs::read_dir(sealed.join(home))
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum()
    };
    assert!(bytes(&viel) <= 1 << 20, "cut at the quota: {} bytes", bytes(&viel));
    assert!(bytes(&viel) >= 800 << 10, "what fits is kept: {} bytes", bytes(&viel));
    assert_eq!(bytes(&wenig), 400 << 10, "a hand-in within the quota is whole");
    let (entries, _) = app
        .state
        .store
        .audit_page(&AuditFilter {
            user: Some("viel".into()),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e.detail.contains("sealed only up to the student quota (1 MiB)")),
        "{entries:?}"
    );
}
