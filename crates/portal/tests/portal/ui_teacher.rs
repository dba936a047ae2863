//! The teacher page: teachers enable desktop types for their own groups only, and see the
//! desktops of their own students only. Runs without Docker: grants and desktops are rows in
//! the real store, the type listing is the real API.

use portal::Config;
use portal_store::{DesktopState, ExternalUser, Role};
use secrecy::SecretString;

use crate::docker::fake_type;
use crate::helpers::*;

/// A user with a password and IServ-style groups.
pub(crate) async fn add_member(app: &TestApp, name: &str, role: Role, groups: &[&str]) {
    let store = &app.state.store;
    // Groups come from the identity provider; the password (which a real IServ account does
    // not have) lets the tests sign in through the form.
    store
        .upsert_external_user(&ExternalUser {
            subject: format!("sub-{name}"),
            username: name.into(),
            display_name: format!("{name} (Name)"),
            email: None,
            role,
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        })
        .await
        .unwrap();
    store
        .set_password(name, &SecretString::from(PASSWORD.to_owned()))
        .await
        .unwrap();
}

/// Types: `code` restricted to teachers, `secret` to root alone, `open` for everyone.
pub(crate) fn school(c: &mut Config) {
    let mut code = fake_type("code");
    code.groups = vec!["lehrer".into()];
    let mut secret = fake_type("secret");
    secret.users = vec!["root".into()];
    c.desktop_types = vec![code, secret, fake_type("open")];
}

/// The class: teacher tina (5a, lehrer), students sam (5a) and otto (6b).
async fn class() -> TestApp {
    let app = spawn_app_with(&[], school).await;
    add_member(&app, "tina", Role::Teacher, &["5a", "lehrer"]).await;
    add_member(&app, "sam", Role::Student, &["5a"]).await;
    add_member(&app, "otto", Role::Student, &["6b"]).await;
    app
}

async fn type_keys(b: &Browser) -> Vec<String> {
    let v = b.get_json("/api/desktop-types").await;
    v["desktop_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["key"].as_str().unwrap().to_owned())
        .collect()
}

/// Posts a grant form as the page does; returns status and body.
async fn grant_form(b: &Browser, path: &str, type_key: &str, group: &str) -> (u16, String) {
    let csrf = b.csrf().await;
    let resp = b
        .post(path)
        .header("accept-language", "en")
        .form(&[("csrf_token", csrf.as_str()), ("type", type_key), ("group", group)])
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test]
async fn teachers_enable_desktops_only_for_their_own_groups() {
    let app = class().await;
    let tina = sign_in(&app, "tina").await;
    let sam = sign_in(&app, "sam").await;
    let otto = sign_in(&app, "otto").await;
    assert_eq!(type_keys(&sam).await, ["open"], "before any grant");

    let page = tina.get("/teacher").send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("<option value=\"5a\">") && page.contains("<option value=\"lehrer\">"),
        "{page}"
    );
    assert!(!page.contains("6b"), "only her own groups are offered: {page}");
    assert!(
        !page.contains("value=\"secret\""),
        "a type she may not use is not offered"
    );

    // Another class's group: refused, nothing changes.
    let (status, body) = grant_form(&tina, "/teacher/grants", "code", "6b").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("only enable desktops for groups you are in"), "{body}");
    assert!(type_keys(&otto).await == ["open"]);
    // A type she may not use herself: refused.
    let (status, body) = grant_form(&tina, "/teacher/grants", "secret", "5a").await;
    assert_eq!(status, 422, "{body}");
    // Unknown type: refused the same way.
    assert_eq!(grant_form(&tina, "/teacher/grants", "nope", "5a").await.0, 422);
    // Without the session's CSRF token: refused.
    let forged = tina
        .post("/teacher/grants")
        .form(&[("csrf_token", "x"), ("type", "code"), ("group", "5a")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert!(app.state.store.type_grants().await.unwrap().is_empty());

    // Her own class: the students get the type, the other class does not.
    let (status, _) = grant_form(&tina, "/teacher/grants", "code", "5a").await;
    assert_eq!(status, 303);
    assert_eq!(type_keys(&sam).await, ["code", "open"]);
    assert_eq!(type_keys(&otto).await, ["open"]);
    let page = tina.get("/teacher").send().await.unwrap().text().await.unwrap();
    assert!(page.contains("data-grant=\"code:5a\""), "{page}");

    // Withdrawn: gone again.
    let (status, _) = grant_form(&tina, "/teacher/grants/remove", "code", "5a").await;
    assert_eq!(status, 303);
    assert_eq!(type_keys(&sam).await, ["open"]);

    // Students have no teacher page and cannot grant.
    let refused = sam
        .get("/teacher")
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("for teachers and administrators only")
    );
    assert_eq!(grant_form(&sam, "/teacher/grants", "open", "5a").await.0, 403);
    // Admins may grant to any group.
    let root = sign_in(&app, "root").await;
    assert_eq!(grant_form(&root, "/teacher/grants", "code", "6b").await.0, 303);
    assert_eq!(type_keys(&otto).await, ["code", "open"]);
}

#[tokio::test]
async fn teachers_see_the_desktops_of_their_own_students_only() {
    let app = class().await;
    add_member(&app, "tom", Role::Teacher, &["5a"]).await;
    let store = &app.state.store;
    for user in ["sam", "otto", "tom", "alice"] {
        let u = store.user_by_username(user).await.unwrap().unwrap();
        let d = store
            .ensure_desktop(&format!("{user}-open"), &u.id, "open")
            .await
            .unwrap();
        store.mark_running(&d.id, "c1", "127.0.0.1", 1).await.unwrap();
    }
    let stopped = store.user_by_username("sam").await.unwrap().unwrap();
    let d = store.ensure_desktop("sam-code", &stopped.id, "code").await.unwrap();
    store
        .mark_state(&d.id, DesktopState::Stopped, Some("idle for 61 minutes"))
        .await
        .unwrap();
    let tina = sign_in(&app, "tina").await;
    let page = tina
        .get("/teacher")
        .header("accept-language", "en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("data-desktop-id=\"sam-open\" data-state=\"running\""),
        "{page}"
    );
    assert!(!page.contains("otto-open"), "another class's student: {page}");
    assert!(!page.contains("tom-open"), "a colleague is not a student: {page}");
    assert!(!page.contains("alice-open"), "a student in no group of hers: {page}");
    assert!(
        page.contains("data-desktop-id=\"sam-code\" data-state=\"stopped\""),
        "{page}"
    );
    assert!(page.contains("Running"), "{page}");

    // The list alone (what the page refreshes itself with) follows the same rules and shows
    // changes at once.
    store.mark_running(&d.id, "c2", "127.0.0.1", 2).await.unwrap();
    let list = tina.get("/teacher/students").send().await.unwrap();
    assert_eq!(list.status(), 200);
    let list = list.text().await.unwrap();
    assert!(
        list.contains("data-desktop-id=\"sam-code\" data-state=\"running\""),
        "{list}"
    );
    assert!(list.contains("sam-open") && !list.contains("otto-open") && !list.contains("tom-open"));
    assert!(!list.contains("<html"), "a fragment, not a page: {list}");
    let sam = sign_in(&app, "sam").await;
    assert_eq!(sam.get("/teacher/students").send().await.unwrap().status(), 403);
    let nobody = Browser::new(&app);
    let resp = nobody.get("/teacher/students").send().await.unwrap();
    assert!(
        resp.status().is_redirection() || resp.status() == 401,
        "{}",
        resp.status()
    );

    let root = sign_in(&app, "root").await;
    let page = root.get("/teacher").send().await.unwrap().text().await.unwrap();
    assert!(page.contains("sam-open") && page.contains("otto-open"), "{page}");
}
