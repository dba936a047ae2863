//! Stable identities: homes and desktops belong to an account, never to a name that someone
//! else can hold later; deleted accounts keep their files for the retention and can be
//! restored until then; an IServ sign-in takes over a local account only with an
//! administrator's permission; ID tokens signed with a shared secret or not at all are refused.

use std::time::{Duration, Instant};

use portal_store::AuditKind;
use secrecy::SecretString;
use testkit::oidc::{Fault, Layout, OidcProvider, ProviderConfig, TestUser};

use crate::admin_pages::{page, post_form, sign_in_with};
use crate::docker::{docker, docker_app, docker_ready, start_desktop};
use crate::helpers::*;
use crate::oidc::{error_code, open_in, provider, sign_in_iserv, signed_in, to_callback, with_discovery};

/// The host folder mounted as the home of `container`.
fn mounted_home(container: &str) -> String {
    docker(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{if eq .Destination \"/home/kasm-user\"}}{{.Source}}{{end}}{{end}}",
        container,
    ])
}

/// Whether any container (running or not) carries `name`.
fn container_exists(name: &str) -> bool {
    !docker(&["ps", "-aq", "--filter", &format!("name=^{name}$")]).is_empty()
}

/// The IServ user the provider has now is refused with `status` and `code` (JSON), and with a
/// page saying `words` in each language; nobody is signed in.
async fn assert_sign_in_refused(app: &TestApp, status: u16, code: &str, words: [(&str, &str); 2]) {
    let resp = sign_in_iserv(&Browser::new(app)).await;
    assert_eq!(error_code(resp).await, (status, code.to_owned()));
    for (lang, words) in words {
        let b = Browser::new(app);
        let callback = to_callback(&b).await;
        let page = open_in(&b, &callback, lang).await;
        assert_eq!(page.status(), status);
        let text = page.text().await.unwrap();
        assert!(text.contains(words), "{lang}: {text}");
        assert_eq!(b.get("/").send().await.unwrap().status(), 303, "not signed in");
    }
}

/// IServ renames ben to benjamin and a new IServ user "ben" arrives: the newcomer gets a home
/// of their own and cannot reach benjamin's running desktop (which was started as "ben").
#[tokio::test]
async fn a_new_holder_of_a_renamed_name_gets_a_new_home_and_not_the_old_desktop() {
    if !docker_ready() {
        return;
    }
    let idp = provider(Layout::Auth).await;
    let (app, scope) = docker_app("rename", with_discovery(&idp)).await;
    idp.set_user(TestUser::new("uuid-ben-1", "ben"));
    let first = signed_in(&app, "ben").await;
    let (status, body, _) = start_desktop(&first, "fake").await;
    assert_eq!(status, 202, "{body}");
    let old_id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(old_id, "ben-fake");
    let old_home = mounted_home(&scope.container(&old_id));

    idp.set_user(TestUser::new("uuid-ben-1", "benjamin"));
    let renamed = signed_in(&app, "benjamin").await;
    idp.set_user(TestUser::new("uuid-ben-2", "ben"));
    let newcomer = signed_in(&app, "ben").await;

    // The running desktop answers nobody else, and still its owner under the new name.
    let path = format!("/desktop/{old_id}/");
    assert_eq!(newcomer.get(&path).send().await.unwrap().status(), 404);
    assert_eq!(renamed.get(&path).send().await.unwrap().status(), 200);
    let ws = ws_connect(
        &app,
        &format!("/desktop/{old_id}/websockify"),
        WsOpts::as_user(&newcomer, &app),
    )
    .await;
    assert_eq!(refused_status(ws.expect_err("refused")), 404);

    // The newcomer's own desktop: another id, another container, another home.
    let (status, body, _) = start_desktop(&newcomer, "fake").await;
    assert_eq!(status, 202, "{body}");
    let new_id = body["id"].as_str().unwrap().to_owned();
    assert_ne!(new_id, old_id);
    let new_home = mounted_home(&scope.container(&new_id));
    assert!(!new_home.is_empty() && !old_home.is_empty());
    assert_ne!(new_home, old_home, "no home in common");
    let ben = app.state.store.user_by_username("ben").await.unwrap().unwrap();
    let benjamin = app.state.store.user_by_username("benjamin").await.unwrap().unwrap();
    assert_ne!(ben.home_name, benjamin.home_name);
    assert_eq!(ben.home_name, format!("u-{}", ben.id));
}

/// Deleting an account stops and removes its desktops at once, keeps its home folder for the
/// retention (listed on the admin page, restorable), and the purge job removes it afterwards;
/// the same name created again gets a fresh home.
#[tokio::test]
async fn a_deleted_account_keeps_its_files_until_the_retention_ends() {
    if !docker_ready() {
        return;
    }
    let (app, scope) = docker_app("delete", |c| {
        // Long enough for the restore below on a busy machine, short enough to wait for.
        c.accounts.home_retention_secs = Some(15);
        c.accounts.purge_interval_secs = 1;
    })
    .await;
    let store = &app.state.store;
    store
        .create_local_user(
            "dora",
            "Dora",
            portal_store::Role::Student,
            &SecretString::from(PASSWORD),
        )
        .await
        .unwrap();
    let dora = sign_in(&app, "dora").await;
    let (status, body, _) = start_desktop(&dora, "fake").await;
    assert_eq!(status, 202, "{body}");
    let container = scope.container(body["id"].as_str().unwrap());
    let account = store.user_by_username("dora").await.unwrap().unwrap();
    let home = app.state.files.home_dir(&account);
    assert!(container_exists(&container) && home.is_dir());

    let root = sign_in(&app, "root").await;
    let csrf = root.csrf().await;
    assert_eq!(post_form(&root, "/admin/users/dora/delete", &csrf, &[]).await.0, 303);
    assert!(!container_exists(&container), "the desktop's container is gone");
    assert!(home.is_dir(), "the files are kept");
    assert_eq!(dora.get("/").send().await.unwrap().status(), 303, "signed out");
    let (_, users) = page(&root, "/admin/users").await;
    assert!(users.contains("data-deleted-username=\"dora\""), "{users}");
    let restore = format!("/admin/deleted-users/{}/restore", account.id);
    assert!(users.contains(&restore), "{users}");

    // Restored within the retention: the same account with the same home.
    assert_eq!(post_form(&root, &restore, &csrf, &[]).await.0, 303);
    let back = store.user_by_username("dora").await.unwrap().unwrap();
    assert_eq!(
        (back.id.as_str(), back.home_name.as_str()),
        (account.id.as_str(), account.home_name.as_str())
    );
    assert_eq!(sign_in_with(&app, "dora", PASSWORD).await, 303);
    assert_eq!(
        post_form(&root, &restore, &csrf, &[]).await.0,
        404,
        "nothing left to restore"
    );

    // Deleted again and left alone: the purge removes the files after the retention.
    assert_eq!(post_form(&root, "/admin/users/dora/delete", &csrf, &[]).await.0, 303);
    let deadline = Instant::now() + Duration::from_secs(60);
    while home.exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(!home.exists(), "home folder removed after the retention");
    // The purge writes its audit entry after removing the files: wait for it too.
    let mut audit = String::new();
    while Instant::now() < deadline {
        audit = page(&root, "/admin/audit?user=dora").await.1;
        if audit.contains("files removed after the retention") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(store.deleted_users().await.unwrap().is_empty());
    assert_eq!(post_form(&root, &restore, &csrf, &[]).await.0, 404);
    for text in [
        "kept until",
        "restored with its files",
        "files removed after the retention",
    ] {
        assert!(audit.contains(text), "{text}: {audit}");
    }

    // The same name again: a new account with a fresh, empty home.
    store
        .create_local_user(
            "dora",
            "Dora",
            portal_store::Role::Student,
            &SecretString::from(PASSWORD),
        )
        .await
        .unwrap();
    let again = store.user_by_username("dora").await.unwrap().unwrap();
    assert_ne!(again.home_name, account.home_name);
}

/// A local account with a password is not taken over by the IServ user of the same name: the
/// sign-in is refused with a page in the person's language, until an administrator allows the
/// link; then the account is linked, its password removed, and the audit log says who allowed it.
#[tokio::test]
async fn an_iserv_sign_in_takes_over_a_local_account_only_when_an_admin_allowed_it() {
    let idp = provider(Layout::Auth).await;
    let app = spawn_app_with(&[], with_discovery(&idp)).await;
    let bob = app.state.store.user_by_username("bob").await.unwrap().unwrap();
    idp.set_user(TestUser::teacher("bob"));

    assert_sign_in_refused(
        &app,
        409,
        "oidc_link_needs_admin",
        [("de", "Schul-IT"), ("en", "ask the IT admin")],
    )
    .await;
    let unchanged = app.state.store.user_by_id(&bob.id).await.unwrap().unwrap();
    assert_eq!(unchanged, bob, "the refused sign-in changed nothing");
    assert_eq!(
        sign_in_with(&app, "bob", PASSWORD).await,
        303,
        "the password still works"
    );
    // The administrator account is guarded the same way.
    idp.set_user(TestUser::admin("root"));
    let resp = sign_in_iserv(&Browser::new(&app)).await;
    assert_eq!(error_code(resp).await.1, "oidc_link_needs_admin");

    let root = sign_in(&app, "root").await;
    let (_, users) = page(&root, "/admin/users").await;
    assert!(users.contains("/admin/users/bob/link"), "{users}");
    let csrf = root.csrf().await;
    assert_eq!(post_form(&root, "/admin/users/bob/link", &csrf, &[]).await.0, 303);
    let (_, users) = page(&root, "/admin/users").await;
    assert!(users.contains("data-role=\"link-allowed\""), "{users}");

    idp.set_user(TestUser::teacher("bob"));
    signed_in(&app, "bob").await;
    let linked = app.state.store.user_by_username("bob").await.unwrap().unwrap();
    assert_eq!(linked.id, bob.id, "the same account, with its desktops and files");
    assert!(linked.external_subject.is_some());
    assert!(!linked.has_password, "the local password is removed");
    assert_eq!(sign_in_with(&app, "bob", PASSWORD).await, 401);

    let (entries, _) = app
        .state
        .store
        .audit_page(&portal_store::AuditFilter {
            kind: Some(AuditKind::UserChanged),
            user: Some("bob".into()),
            offset: 0,
            limit: 100,
        })
        .await
        .unwrap();
    let details: Vec<&str> = entries.iter().map(|e| e.detail.as_str()).collect();
    assert!(
        details
            .iter()
            .any(|d| d.contains("administrator root allowed the next IServ sign-in")),
        "{details:?}"
    );
    assert!(
        details
            .iter()
            .any(|d| d.contains("linked to IServ account") && d.contains("allowed by administrator root")),
        "{details:?}"
    );
}

/// With an empty client secret, an HS256 ID token "signed" with it, or an unsigned one, would
/// be anyone's to forge; both are refused even though discovery lists them.
#[tokio::test]
async fn shared_secret_and_unsigned_id_tokens_are_refused_even_if_discovery_lists_them() {
    let idp = OidcProvider::start(ProviderConfig {
        client_secret: String::new(),
        id_token_algs_supported: vec!["RS256".into(), "HS256".into(), "none".into()],
        ..ProviderConfig::new(Layout::Auth)
    })
    .await
    .unwrap();
    idp.set_user(TestUser::student("anna"));
    let discovery = with_discovery(&idp);
    let app = spawn_app_with(&[], |c| {
        discovery(c);
        c.oidc.client_secret = Some(SecretString::from(String::new()));
    })
    .await;
    for fault in [Fault::Hs256, Fault::Unsigned] {
        idp.set_fault(fault);
        let b = Browser::new(&app);
        let resp = sign_in_iserv(&b).await;
        assert_eq!(
            error_code(resp).await,
            (502, "oidc_token_invalid".to_owned()),
            "{fault:?}"
        );
        assert_eq!(
            b.get("/").send().await.unwrap().status(),
            303,
            "{fault:?}: not signed in"
        );
    }
    assert!(app.state.store.user_by_username("anna").await.unwrap().is_none());
    idp.set_fault(Fault::None);
    signed_in(&app, "anna").await;
}

/// An administrator deletes an IServ account here (someone who left the school, or who must
/// not use the portal any more): it cannot sign in again with IServ while its files are kept
/// — a fresh empty account would look like lost files — until it is restored, then it is the
/// same account again; after the purge the IServ account starts anew.
#[tokio::test]
async fn an_iserv_account_deleted_by_an_admin_cannot_sign_in_until_restored() {
    let idp = provider(Layout::Auth).await;
    let app = spawn_app_with(&[], with_discovery(&idp)).await;
    let store = &app.state.store;
    idp.set_user(TestUser::student("ida"));
    let ida = signed_in(&app, "ida").await;
    let account = store.user_by_username("ida").await.unwrap().unwrap();
    assert!(account.external_subject.is_some());

    let root = sign_in(&app, "root").await;
    let (_, users) = page(&root, "/admin/users").await;
    assert!(
        users.contains("/admin/users/ida/delete"),
        "IServ accounts can be deleted: {users}"
    );
    let csrf = root.csrf().await;
    assert_eq!(post_form(&root, "/admin/users/ida/delete", &csrf, &[]).await.0, 303);
    assert_eq!(ida.get("/").send().await.unwrap().status(), 303, "signed out at once");
    assert!(store.user_by_username("ida").await.unwrap().is_none());

    let words = [("de", "wiederherstellt"), ("en", "ask the IT admin to restore")];
    assert_sign_in_refused(&app, 403, "oidc_account_deleted", words).await;
    assert!(
        store.user_by_username("ida").await.unwrap().is_none(),
        "no second account was made for the same person"
    );

    // Restored: the same account (id, home) signs in with IServ again.
    let restore = format!("/admin/deleted-users/{}/restore", account.id);
    assert_eq!(post_form(&root, &restore, &csrf, &[]).await.0, 303);
    signed_in(&app, "ida").await;
    let back = store.user_by_username("ida").await.unwrap().unwrap();
    assert_eq!(
        (back.id, back.home_name),
        (account.id.clone(), account.home_name.clone())
    );

    // Deleted again and purged: the IServ account then gets a new account with a new home.
    assert_eq!(post_form(&root, "/admin/users/ida/delete", &csrf, &[]).await.0, 303);
    store.forget_deleted_user(&account.id).await.unwrap();
    signed_in(&app, "ida").await;
    let fresh = store.user_by_username("ida").await.unwrap().unwrap();
    assert_ne!(fresh.id, account.id);
    assert_ne!(fresh.home_name, account.home_name);
}
