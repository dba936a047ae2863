//! Class actions on `/teacher` and classes without IServ: teachers stop and restart their
//! students' desktops and end a group's lesson (real Docker, the fake-Kasm image), leave a
//! message their group's students see live; administrators set the groups of local accounts.
//! Everyone else gets the answers for a missing desktop or a group that is not theirs.

use std::time::{Duration, Instant};

use portal_store::{AuditFilter, AuditKind, Role, Store};
use secrecy::SecretString;
use serde_json::Value;

use crate::docker::*;
use crate::helpers::*;
use crate::ui_teacher::add_member;

/// A local account (no IServ) in `groups`, set the way an administrator sets them.
pub(crate) async fn local_member(app: &TestApp, name: &str, role: Role, groups: &[&str]) {
    let store = &app.state.store;
    let user = store
        .create_local_user(
            name,
            &format!("{name} (Name)"),
            role,
            &SecretString::from(PASSWORD.to_owned()),
        )
        .await
        .unwrap();
    let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
    store.set_local_groups(&user.id, &groups).await.unwrap();
}

/// Two classes of local accounts: teacher tina and student sam in 5a, tom and otto in 6b.
async fn two_classes(app: &TestApp) {
    for (name, role, group) in [
        ("tina", Role::Teacher, "5a"),
        ("tom", Role::Teacher, "6b"),
        ("sam", Role::Student, "5a"),
        ("otto", Role::Student, "6b"),
    ] {
        local_member(app, name, role, &[group]).await;
    }
}

/// Posts a form with the session's token; status and body.
pub(crate) async fn post_form(b: &Browser, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let csrf = b.csrf().await;
    let mut all = vec![("csrf_token", csrf.as_str())];
    all.extend_from_slice(fields);
    let resp = b
        .post(path)
        .header("accept", "application/json")
        .header("accept-language", "en")
        .form(&all)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

fn running_in_docker(scope: &DockerScope, id: &str) -> bool {
    docker(&["inspect", "-f", "{{.State.Running}}", &scope.container(id)]) == "true"
}

async fn class_entries(store: &Store, actor: &str) -> Vec<portal_store::AuditEntry> {
    let filter = AuditFilter {
        kind: Some(AuditKind::ClassAction),
        user: Some(actor.into()),
        offset: 0,
        limit: 100,
    };
    store.audit_page(&filter).await.unwrap().0
}

/// The error code of a JSON error answer.
fn code(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("JSON error: {body}"));
    v["error"]["code"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn teachers_stop_and_restart_their_students_desktops_and_nobody_else_can() {
    if !docker_ready() {
        return;
    }
    let (app, scope) = docker_app("classdesk", |_| {}).await;
    // A school without IServ: every account local, its groups set by the administrator.
    two_classes(&app).await;
    let (sam, otto) = (sign_in(&app, "sam").await, sign_in(&app, "otto").await);
    let (a, b) = tokio::join!(start_desktop(&sam, "fake"), start_desktop(&otto, "fake"));
    assert_eq!((a.0, b.0), (202, 202));
    assert!(running_in_docker(&scope, "sam-fake"));
    let tina = sign_in(&app, "tina").await;

    // Her students' desktops are on her page, with their actions.
    let page = tina.get("/teacher").send().await.unwrap().text().await.unwrap();
    assert!(page.contains("action=\"/teacher/desktops/sam-fake/stop\""), "{page}");
    assert!(!page.contains("otto-fake"), "{page}");

    // Another class's teacher, a student (even for her own desktop) and a desktop nobody has:
    // one answer, the missing desktop's.
    let tom = sign_in(&app, "tom").await;
    let missing = post_form(&tina, "/teacher/desktops/nobody-fake/stop", &[]).await;
    assert_eq!(
        (missing.0, code(&missing.1).as_str()),
        (404, "desktop_not_found"),
        "{}",
        missing.1
    );
    for (who, b, id) in [
        ("tom", &tom, "sam-fake"),
        ("otto", &otto, "sam-fake"),
        ("sam", &sam, "sam-fake"),
    ] {
        for action in ["stop", "restart"] {
            let (status, body) = post_form(b, &format!("/teacher/desktops/{id}/{action}"), &[]).await;
            assert_eq!(
                (status, code(&body)),
                (missing.0, code(&missing.1)),
                "{who} {action}: {body}"
            );
        }
    }
    // Nobody signed in: the same for an existing and a missing desktop.
    let nobody = Browser::new(&app);
    let anon = |id: &'static str| {
        nobody
            .post(&format!("/teacher/desktops/{id}/stop"))
            .header("accept", "application/json")
            .form(&[("csrf_token", "x")])
            .send()
    };
    let (real, none) = (anon("sam-fake").await.unwrap(), anon("nobody-fake").await.unwrap());
    assert_eq!(real.status(), none.status());
    assert_eq!(real.text().await.unwrap(), none.text().await.unwrap());
    // Without the session's token: refused.
    let forged = tina
        .post("/teacher/desktops/sam-fake/stop")
        .form(&[("csrf_token", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert!(running_in_docker(&scope, "sam-fake"), "nothing stopped so far");

    // Her student's: stopped for real, and sam's page says who.
    let (status, body) = post_form(&tina, "/teacher/desktops/sam-fake/stop", &[]).await;
    assert_eq!(status, 303, "{body}");
    assert!(!running_in_docker(&scope, "sam-fake"), "the container stopped");
    let d = desktop(&sam, "sam-fake").await;
    assert_eq!(d["state"], "stopped");
    assert_eq!(d["state_reason"], "stopped by a teacher");
    let dashboard = sam.english_page("/").await;
    assert!(dashboard.contains("Your teacher stopped it."), "{dashboard}");
    assert!(
        running_in_docker(&scope, "otto-fake"),
        "another class's desktop runs on"
    );

    // Restarted: running again in Docker, started as sam's own.
    let (status, body) = post_form(&tina, "/teacher/desktops/sam-fake/restart", &[]).await;
    assert_eq!(status, 303, "{body}");
    let d = wait_for_state(&sam, "sam-fake", "running", Duration::from_secs(60)).await;
    assert_eq!(d["state"], "running", "{d}");
    assert!(running_in_docker(&scope, "sam-fake"));
    // A restart of a running desktop stops it first, then starts it again.
    let started = |d: &Value| d["started_at"].as_i64();
    let before = started(&desktop(&sam, "sam-fake").await);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _) = post_form(&tina, "/teacher/desktops/sam-fake/restart", &[]).await;
    assert_eq!(status, 303);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let d = desktop(&sam, "sam-fake").await;
        if d["state"] == "running" && started(&d) != before {
            break;
        }
        assert!(Instant::now() < deadline, "restarted: {d}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // In the audit log: who did what to whom.
    let entries = class_entries(&app.state.store, "tina").await;
    let said = |what: &str| {
        entries.iter().any(|e| {
            e.actor.as_deref() == Some("tina") && e.username.as_deref() == Some("sam") && e.detail.contains(what)
        })
    };
    assert!(
        said("stopped the desktop of sam") && said("restarted the desktop of sam"),
        "{entries:?}"
    );
    assert!(class_entries(&app.state.store, "tom").await.is_empty());
}

#[tokio::test]
async fn ending_the_lesson_stops_the_groups_students_and_nothing_else() {
    if !docker_ready() {
        return;
    }
    let (app, scope) = docker_app("classend", |_| {}).await;
    // IServ groups work the same as local ones.
    add_member(&app, "tina", Role::Teacher, &["5a"]).await;
    add_member(&app, "tom", Role::Teacher, &["6b"]).await;
    local_member(&app, "sam", Role::Student, &["5a"]).await;
    add_member(&app, "sara", Role::Student, &["5a", "chor"]).await;
    local_member(&app, "otto", Role::Student, &["6b"]).await;
    let people = ["sam", "sara", "otto", "tina"];
    let mut browsers = Vec::new();
    for name in people {
        browsers.push(sign_in(&app, name).await);
    }
    let starts = futures_util::future::join_all(browsers.iter().map(|b| start_desktop(b, "fake"))).await;
    assert!(starts.iter().all(|s| s.0 == 202), "{starts:?}");
    let tina = &browsers[3];

    // The confirmation page (works without JavaScript) names whose desktops stop.
    let confirm = tina
        .get("/teacher/end-lesson?group=5a")
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    assert_eq!(confirm.status(), 200);
    let confirm = confirm.text().await.unwrap();
    let list = confirm
        .split("<ul data-role=\"lesson-students\">")
        .nth(1)
        .and_then(|rest| rest.split("</ul>").next())
        .unwrap_or_else(|| panic!("{confirm}"));
    assert!(
        list.contains("sam (Name) (sam)") && list.contains("sara (Name) (sara)"),
        "{list}"
    );
    assert!(!list.contains("otto") && !list.contains("tina"), "{list}");
    assert!(confirm.contains("action=\"/teacher/end-lesson\""), "{confirm}");
    assert!(running_in_docker(&scope, "sam-fake"));

    // Another group's teacher and a student: the codebase's refusals for a group action.
    let tom = sign_in(&app, "tom").await;
    let sam = &browsers[0];
    let (status, body) = post_form(&tom, "/teacher/end-lesson", &[("group", "5a")]).await;
    assert_eq!((status, code(&body).as_str()), (403, "not_your_group"), "{body}");
    assert!(body.contains("groups you are in yourself"), "{body}");
    let (status, body) = post_form(sam, "/teacher/end-lesson", &[("group", "5a")]).await;
    assert_eq!((status, code(&body).as_str()), (403, "teacher_only"), "{body}");
    let page = tom.get("/teacher/end-lesson?group=5a").send().await.unwrap();
    assert_eq!(page.status(), 403);
    let page = sam.get("/teacher/end-lesson?group=5a").send().await.unwrap();
    assert_eq!(page.status(), 403);
    let forged = tina
        .post("/teacher/end-lesson")
        .form(&[("csrf_token", "forged"), ("group", "5a")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    for id in ["sam-fake", "sara-fake", "otto-fake", "tina-fake"] {
        assert!(running_in_docker(&scope, id), "{id} still runs after the refusals");
    }

    // Her own group: its students' desktops stop, her own and the other class's run on.
    let (status, body) = post_form(tina, "/teacher/end-lesson", &[("group", "5a")]).await;
    assert_eq!(status, 303, "{body}");
    for id in ["sam-fake", "sara-fake"] {
        assert!(!running_in_docker(&scope, id), "{id} stopped");
        assert_eq!(
            app.state
                .store
                .desktop(id)
                .await
                .unwrap()
                .unwrap()
                .state_reason
                .as_deref(),
            Some("teacher")
        );
    }
    for id in ["otto-fake", "tina-fake"] {
        assert!(running_in_docker(&scope, id), "{id} runs on");
    }
    let entries = class_entries(&app.state.store, "tina").await;
    assert!(
        entries
            .iter()
            .any(|e| e.detail == "ended the lesson of 5a: 2 desktops stopped" && e.target.as_deref() == Some("5a")),
        "{entries:?}"
    );
    // The panel counts what runs.
    let page = tina.english_page("/teacher").await;
    assert!(page.contains("0 desktops running"), "{page}");
}

/// Reads `/api/events` until an event named `name` arrives; its data.
async fn next_event(resp: &mut reqwest::Response, buffer: &mut String, name: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let event = block.lines().find_map(|l| l.strip_prefix("event:")).map(str::trim);
            let data = block.lines().find_map(|l| l.strip_prefix("data:")).map(str::trim);
            if let (Some(event), Some(data)) = (event, data)
                && event == name
            {
                return serde_json::from_str(data).unwrap();
            }
        }
        let chunk = tokio::time::timeout_at(deadline.into(), resp.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {name} event in time"))
            .unwrap()
            .expect("the stream stays open");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn a_message_reaches_the_groups_students_live_and_goes_when_cleared() {
    let app = spawn_app_with(&[], crate::ui_teacher::school).await;
    two_classes(&app).await;
    let (tina, tom) = (sign_in(&app, "tina").await, sign_in(&app, "tom").await);
    let (sam, otto) = (sign_in(&app, "sam").await, sign_in(&app, "otto").await);
    // sam's desktop page, for the message there too.
    let store = &app.state.store;
    let sam_id = store.user_by_username("sam").await.unwrap().unwrap().id;
    store.ensure_desktop("sam-open", &sam_id, "open").await.unwrap();

    let mut events = sam.get("/api/events").send().await.unwrap();
    let mut buffer = String::new();
    next_event(&mut events, &mut buffer, "snapshot").await;

    // Refused: too long (with the limit named), another group's teacher, a student.
    let long = "x".repeat(501);
    let (status, body) = post_form(&tina, "/teacher/messages", &[("group", "5a"), ("text", &long)]).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("1 to 500 characters"), "{body}");
    let (status, body) = post_form(&tina, "/teacher/messages", &[("group", "5a"), ("text", "  ")]).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = post_form(&tom, "/teacher/messages", &[("group", "5a"), ("text", "Hallo")]).await;
    assert_eq!((status, code(&body).as_str()), (403, "not_your_group"), "{body}");
    let (status, body) = post_form(&sam, "/teacher/messages", &[("group", "5a"), ("text", "Hallo")]).await;
    assert_eq!((status, code(&body).as_str()), (403, "teacher_only"), "{body}");
    let (status, _) = post_form(&sam, "/teacher/messages/clear", &[("group", "5a")]).await;
    assert_eq!(status, 403);

    // Sent: sam's open page gets it at once.
    let text = "Bitte jetzt speichern! <script>alert(1)</script>";
    let (status, body) = post_form(&tina, "/teacher/messages", &[("group", "5a"), ("text", text)]).await;
    assert_eq!(status, 303, "{body}");
    let live = next_event(&mut events, &mut buffer, "class_messages").await;
    assert_eq!(live["messages"][0]["body"], text, "{live}");
    assert_eq!(live["messages"][0]["group"], "5a");
    assert_eq!(live["messages"][0]["author"], "tina (Name)");

    // A reload shows it, as text; another class does not see it.
    let escaped = "Bitte jetzt speichern! &#60;script&#62;alert(1)&#60;/script&#62;";
    for path in ["/", "/view/sam-open"] {
        let page = sam.get(path).send().await.unwrap().text().await.unwrap();
        assert!(page.contains(escaped), "{path}: {page}");
        assert!(!page.contains("<script>alert(1)"), "{path}");
        assert!(page.contains("/static/class_messages.js"), "{path}");
    }
    let other = otto.get("/").send().await.unwrap().text().await.unwrap();
    assert!(!other.contains("Bitte jetzt speichern"), "{other}");
    // Her page shows what is shown, with a way to remove it.
    let page = tina.get("/teacher").send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains(escaped) && page.contains("action=\"/teacher/messages/clear\""),
        "{page}"
    );

    // Cleared: gone live and on reload.
    let (status, _) = post_form(&tina, "/teacher/messages/clear", &[("group", "5a")]).await;
    assert_eq!(status, 303);
    let live = next_event(&mut events, &mut buffer, "class_messages").await;
    assert_eq!(live["messages"], serde_json::json!([]), "{live}");
    let page = sam.get("/").send().await.unwrap().text().await.unwrap();
    assert!(!page.contains("Bitte jetzt speichern"));

    // Expired after an hour: a message from the past is not shown.
    store
        .set_class_message("5a", "von gestern", &sam_id, "Tina", crate::browser::unix_now() - 1)
        .await
        .unwrap();
    let page = sam.get("/").send().await.unwrap().text().await.unwrap();
    assert!(!page.contains("von gestern"));

    let entries = class_entries(store, "tina").await;
    assert!(
        entries
            .iter()
            .any(|e| e.detail.starts_with("message to 5a: Bitte jetzt speichern")),
        "{entries:?}"
    );
    assert!(
        entries.iter().any(|e| e.detail == "message to 5a cleared"),
        "{entries:?}"
    );
}

#[tokio::test]
async fn administrators_set_the_groups_of_local_accounts_and_iserv_keeps_its_own() {
    let app = spawn_app_with(&[], crate::ui_teacher::school).await;
    local_member(&app, "lena", Role::Teacher, &[]).await;
    local_member(&app, "lisa", Role::Student, &[]).await;
    add_member(&app, "ida", Role::Student, &["5a"]).await;
    let store = &app.state.store;
    let lisa = store.user_by_username("lisa").await.unwrap().unwrap();
    store.ensure_desktop("lisa-open", &lisa.id, "open").await.unwrap();
    store.mark_running("lisa-open", "c1", "127.0.0.1", 1).await.unwrap();
    let root = sign_in(&app, "root").await;
    let lena = sign_in(&app, "lena").await;
    let teacher_page = async || lena.get("/teacher").send().await.unwrap().text().await.unwrap();
    assert!(!teacher_page().await.contains("lisa-open"), "no common group yet");

    // The page: a form for local accounts, IServ's groups read-only.
    let page = root.english_page("/admin/users").await;
    assert!(page.contains("action=\"/admin/users/lisa/groups\""), "{page}");
    assert!(!page.contains("action=\"/admin/users/ida/groups\""), "{page}");
    assert!(page.contains("Set by IServ at every sign-in"), "{page}");

    let (status, body) = post_form(&root, "/admin/users/lisa/groups", &[("groups", "5a, Mathe 7")]).await;
    assert_eq!(status, 303, "{body}");
    let (status, _) = post_form(&root, "/admin/users/lena/groups", &[("groups", "Mathe 7")]).await;
    assert_eq!(status, 303);
    assert_eq!(
        store.user_by_username("lisa").await.unwrap().unwrap().groups,
        ["5a", "Mathe 7"]
    );
    // lena is signed in already and sees her new student at once.
    let page = teacher_page().await;
    assert!(page.contains("data-desktop-id=\"lisa-open\""), "{page}");
    assert!(page.contains("data-group=\"Mathe 7\""), "her class panel: {page}");

    // Refused: IServ's groups, a bad name (nothing changes), a student, a forged form.
    let (status, body) = post_form(&root, "/admin/users/ida/groups", &[("groups", "6b")]).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("signs in with IServ"), "{body}");
    assert_eq!(store.user_by_username("ida").await.unwrap().unwrap().groups, ["5a"]);
    let (status, body) = post_form(&root, "/admin/users/lisa/groups", &[("groups", "ok, bad\u{1}")]).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("control characters"), "{body}");
    let (status, _) = post_form(&root, "/admin/users/lisa/groups", &[("groups", &"x".repeat(257))]).await;
    assert_eq!(status, 400);
    assert_eq!(
        store.user_by_username("lisa").await.unwrap().unwrap().groups,
        ["5a", "Mathe 7"]
    );
    let (status, _) = post_form(&lena, "/admin/users/lisa/groups", &[("groups", "x")]).await;
    assert_eq!(status, 403);

    // A new local account gets its groups with it.
    let (status, _) = post_form(
        &root,
        "/admin/users",
        &[
            ("username", "leo"),
            ("role", "student"),
            ("password", "a long password"),
            ("groups", "Mathe 7,5a"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(
        store.user_by_username("leo").await.unwrap().unwrap().groups,
        ["5a", "Mathe 7"]
    );
    let (status, _) = post_form(
        &root,
        "/admin/users",
        &[
            ("username", "lars"),
            ("role", "student"),
            ("password", "a long password"),
            ("groups", "a\tb"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        store.user_by_username("lars").await.unwrap().is_none(),
        "no account without its groups"
    );

    // Emptied.
    let (status, _) = post_form(&root, "/admin/users/lisa/groups", &[("groups", "")]).await;
    assert_eq!(status, 303);
    assert!(store.user_by_username("lisa").await.unwrap().unwrap().groups.is_empty());
    assert!(!teacher_page().await.contains("lisa-open"));

    let filter = AuditFilter {
        kind: Some(AuditKind::UserChanged),
        user: Some("lisa".into()),
        offset: 0,
        limit: 100,
    };
    let entries = store.audit_page(&filter).await.unwrap().0;
    assert!(
        entries
            .iter()
            .any(|e| e.actor.as_deref() == Some("root") && e.detail == "groups none → 5a, Mathe 7"),
        "{entries:?}"
    );
}
