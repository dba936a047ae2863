//! One behaviour suite for the store, run against SQLite and against PostgreSQL.
//!
//! Each case is an `async fn` taking a fresh, migrated [`Store`]. The `both_backends!` macro
//! turns every case into `sqlite::<case>` (a new database file in a temporary directory) and
//! `postgres::<case>` (a new database on the server named by `TEST_DATABASE_URL`, dropped
//! afterwards). Start a server with `export TEST_DATABASE_URL=$(scripts/start-postgres.sh)`.

use std::future::Future;
use std::panic::resume_unwind;
use std::time::Duration;

use portal_store::{
    Backend, DesktopState, DesktopType, ExternalUser, MAX_HANDOVERS_PER_SESSION, MAX_SIGN_INS_PER_SOURCE,
    PendingSignIn, Role, Seeded, Store, StoreError, User, handover_id,
};
use secrecy::{ExposeSecret, SecretString};
use sqlx::migrate::MigrateDatabase;

const HOUR: Duration = Duration::from_secs(3600);

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

async fn local(store: &Store, username: &str, role: Role) -> User {
    store
        .create_local_user(username, "Some One", role, &secret("correct horse"))
        .await
        .expect("create local user")
}

fn external(subject: &str, username: &str, groups: &[&str]) -> ExternalUser {
    ExternalUser {
        subject: subject.to_owned(),
        username: username.to_owned(),
        display_name: format!("Name of {username}"),
        email: Some(format!("{username}@school.example")),
        role: Role::Student,
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    }
}

fn desktop_type(key: &str, sort_order: i64) -> DesktopType {
    DesktopType {
        key: key.to_owned(),
        names: [
            ("de".to_owned(), format!("Typ {key}")),
            ("en".to_owned(), format!("Type {key}")),
        ]
        .into(),
        image: format!("kasmweb/{key}:1.16.0"),
        sort_order,
        ..DesktopType::default()
    }
}

/// A user without a password (hashing would only slow the desktop cases down).
async fn person(store: &Store, username: &str) -> User {
    store
        .upsert_external_user(&external(&format!("sub-{username}"), username, &[]))
        .await
        .expect("create user")
}

/// A user `username` with a desktop of type `key` (created if missing); returns the desktop id.
async fn user_with_desktop(store: &Store, username: &str, key: &str) -> (User, String) {
    let user = person(store, username).await;
    if store.desktop_type(key).await.expect("type").is_none() {
        store
            .upsert_desktop_type(&desktop_type(key, 0))
            .await
            .expect("upsert type");
    }
    let id = format!("{username}-{key}");
    store.ensure_desktop(&id, &user.id, key).await.expect("ensure desktop");
    (user, id)
}

async fn get_desktop(store: &Store, id: &str) -> portal_store::Desktop {
    store.desktop(id).await.expect("desktop").expect("desktop exists")
}

// ---------------------------------------------------------------------------------------------
// Harness

/// Runs `case` on a fresh SQLite file.
async fn on_sqlite<F, Fut>(case: F)
where
    F: FnOnce(Store, String) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/portal.db", dir.path().display());
    let store = Store::connect(&url).await.expect("connect sqlite");
    assert_eq!(store.backend(), Backend::Sqlite);
    case(store, url).await;
}

/// Runs `case` on a fresh PostgreSQL database, or skips (fails under CI) without a server.
async fn on_postgres<F, Fut>(case: F)
where
    F: FnOnce(Store, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("PostgreSQL tests need TEST_DATABASE_URL; run scripts/start-postgres.sh");
        }
        eprintln!(
            "note: skipping PostgreSQL variant: TEST_DATABASE_URL is unset \
             (export TEST_DATABASE_URL=$(scripts/start-postgres.sh))"
        );
        return;
    };
    sqlx::any::install_default_drivers();
    // A database per test, so cases run in parallel without seeing each other's rows.
    let name = format!("ird_test_{:032x}", rand::random::<u128>());
    let mut url = url::Url::parse(&admin_url).expect("TEST_DATABASE_URL is a URL");
    url.set_path(&name);
    let url = url.to_string();
    sqlx::Any::create_database(&url)
        .await
        .expect("create test database (does the role have CREATEDB?)");
    let store = Store::connect(&url).await.expect("connect postgres");
    assert_eq!(store.backend(), Backend::Postgres);
    // In its own task so a failing assertion still lets us drop the database afterwards.
    let outcome = tokio::spawn(case(store, url.clone())).await;
    if let Err(err) = sqlx::Any::force_drop_database(&url).await {
        eprintln!("warning: could not drop test database {name}: {err}");
    }
    if let Err(err) = outcome {
        match err.try_into_panic() {
            Ok(panic) => resume_unwind(panic),
            Err(err) => panic!("test task failed: {err}"),
        }
    }
}

/// Generates `sqlite::<case>` and `postgres::<case>` for each case. Cases listed under `store`
/// take a [`Store`]; those under `with_url` also get the URL, to connect again.
macro_rules! both_backends {
    (store: [$($case:ident),* $(,)?], with_url: [$($url_case:ident),* $(,)?]) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    crate::on_sqlite(|store, _url| crate::$case(store)).await;
                }
            )*
            $(
                #[tokio::test]
                async fn $url_case() {
                    crate::on_sqlite(crate::$url_case).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    crate::on_postgres(|store, _url| crate::$case(store)).await;
                }
            )*
            $(
                #[tokio::test]
                async fn $url_case() {
                    crate::on_postgres(crate::$url_case).await;
                }
            )*
        }
    };
}

both_backends!(
    store: [
        create_and_verify_user,
        duplicate_username_conflicts,
        invalid_input_is_rejected,
        set_password_replaces_password,
        session_lifecycle,
        expired_sessions_are_invisible_and_purged,
        delete_user_sessions_only_hits_that_user,
        session_for_unknown_user_is_not_found,
        external_user_is_created,
        external_user_is_updated_on_next_sign_in,
        external_user_links_local_user,
        a_pending_user_is_taken_over_by_its_subjects_first_sign_in,
        concurrent_first_sign_ins_make_one_user,
        list_users_is_ordered_by_username,
        user_language,
        desktop_type_round_trip,
        desktop_type_texts_in_any_language,
        invalid_desktop_types_are_rejected,
        desktop_types_are_listed_by_sort_order_then_key,
        desktop_type_update_keeps_created_at,
        configured_type_is_written_when_new_or_changed_and_admin_edits_are_kept,
        desktop_type_with_desktops_cannot_be_deleted,
        ensure_desktop_is_idempotent,
        concurrent_ensure_desktop_makes_one_row,
        claim_start_is_exclusive,
        desktop_state_transitions,
        stale_transitions_are_found,
        desktop_listings,
        count_desktops_for_limits,
        delete_desktop_clears_current_desktop,
        desktop_debug_hides_password,
        audit_log_pages_filters_and_prunes,
        settings_and_images_round_trip,
        admins_change_roles_and_delete_users,
        homes_are_named_by_account_not_by_name,
        deleted_users_are_kept_until_purged_and_can_be_restored,
        a_type_allowed_to_a_name_follows_the_person,
        assignments_are_sealed_once_due_and_a_new_due_time_voids_the_seal,
        administrators_set_the_groups_of_local_accounts_only,
        class_messages_replace_expire_and_reach_their_group_only,
        desktop_tickets_are_single_use_hashed_and_bounded,
        desktop_cookies_go_with_their_session_and_are_bounded,
        preview_tickets_are_reusable_until_they_expire,
        pending_sign_ins_are_single_use_hashed_and_a_flood_pushes_out_its_own,
    ],
    with_url: [
        migrations_are_idempotent,
        deleting_a_user_deletes_their_desktops,
        migration_0007_carries_de_en_texts_over,
        migration_0008_keeps_homes_and_splits_shared_ones,
        linking_a_guarded_account_needs_an_admin,
        one_leader_at_a_time_and_notifications_reach_every_store,
    ]
);

// ---------------------------------------------------------------------------------------------
// Cases

async fn desktop_tickets_are_single_use_hashed_and_bounded(store: Store) {
    let user = local(&store, "tara", Role::Student).await;
    let session = store.create_session(&user.id, HOUR).await.expect("session").session;
    let ticket = store
        .issue_desktop_ticket(&session.id, "tara-x", Duration::from_secs(60))
        .await
        .expect("ticket");
    assert!(ticket.len() >= 43, "{ticket}");
    let taken = store.take_desktop_ticket(&ticket).await.expect("take").expect("known");
    assert_eq!(taken.handover.session_id, session.id);
    assert_eq!(taken.handover.desktop_id, "tara-x");
    assert!(!taken.expired);
    assert_eq!(
        store.take_desktop_ticket(&ticket).await.expect("take"),
        None,
        "single use"
    );
    assert_eq!(store.take_desktop_ticket("made-up").await.expect("take"), None);

    // Expired tickets are still taken out, and say so.
    let short = store
        .issue_desktop_ticket(&session.id, "tara-x", Duration::from_millis(20))
        .await
        .expect("ticket");
    tokio::time::sleep(Duration::from_millis(40)).await;
    assert!(
        store
            .take_desktop_ticket(&short)
            .await
            .expect("take")
            .expect("known")
            .expired
    );

    // A session holds at most its bound; the oldest go first, other sessions keep theirs.
    let other = store.create_session(&user.id, HOUR).await.expect("session").session;
    let kept = store
        .issue_desktop_ticket(&other.id, "tara-x", Duration::from_secs(60))
        .await
        .expect("ticket");
    let first = store
        .issue_desktop_ticket(&session.id, "tara-x", Duration::from_secs(60))
        .await
        .expect("ticket");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut last = String::new();
    for _ in 0..MAX_HANDOVERS_PER_SESSION {
        last = store
            .issue_desktop_ticket(&session.id, "tara-x", Duration::from_secs(60))
            .await
            .expect("ticket");
    }
    assert_eq!(
        store.take_desktop_ticket(&first).await.expect("take"),
        None,
        "pushed out"
    );
    assert!(store.take_desktop_ticket(&last).await.expect("take").is_some());
    assert!(store.take_desktop_ticket(&kept).await.expect("take").is_some());

    // Expired ones are purged; a gone session's tickets go with it.
    let stale = store
        .issue_desktop_ticket(&session.id, "tara-x", Duration::from_millis(1))
        .await
        .expect("ticket");
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(store.purge_expired_tickets().await.expect("purge") >= 1);
    assert_eq!(store.take_desktop_ticket(&stale).await.expect("take"), None);
    store.delete_user_sessions(&user.id).await.expect("sign out");
    let gone = store
        .issue_desktop_ticket(&session.id, "tara-x", Duration::from_secs(60))
        .await;
    assert!(matches!(gone, Err(StoreError::NotFound)), "{gone:?}");
}

async fn desktop_cookies_go_with_their_session_and_are_bounded(store: Store) {
    let user = local(&store, "uwe", Role::Student).await;
    let session = store.create_session(&user.id, HOUR).await.expect("session");
    let cookie = store
        .bind_desktop_cookie(&session.session.id, "uwe-x")
        .await
        .expect("cookie");
    let owner = store.desktop_cookie(&cookie).await.expect("read").expect("known");
    assert_eq!(
        (owner.session_id.as_str(), owner.desktop_id.as_str()),
        (session.session.id.as_str(), "uwe-x")
    );
    assert_eq!(
        store.desktop_cookie_ids(&session.session.id).await.expect("ids"),
        [handover_id(&cookie)]
    );
    assert_ne!(handover_id(&cookie), cookie, "only the hash is stored");

    let other = store
        .bind_desktop_cookie(&session.session.id, "uwe-y")
        .await
        .expect("cookie");
    assert_eq!(
        store
            .end_desktop_cookies(&session.session.id, Some("uwe-x"))
            .await
            .expect("end"),
        1
    );
    assert_eq!(store.desktop_cookie(&cookie).await.expect("read"), None);
    assert!(store.desktop_cookie(&other).await.expect("read").is_some());

    let first = store
        .bind_desktop_cookie(&session.session.id, "uwe-x")
        .await
        .expect("cookie");
    tokio::time::sleep(Duration::from_millis(5)).await;
    for _ in 0..MAX_HANDOVERS_PER_SESSION {
        store
            .bind_desktop_cookie(&session.session.id, "uwe-x")
            .await
            .expect("cookie");
    }
    assert_eq!(store.desktop_cookie(&first).await.expect("read"), None, "pushed out");
    let ids = store.desktop_cookie_ids(&session.session.id).await.expect("ids");
    assert_eq!(ids.len(), MAX_HANDOVERS_PER_SESSION);

    store.delete_session(&session.token).await.expect("sign out");
    assert_eq!(
        store.desktop_cookie(&other).await.expect("read"),
        None,
        "gone with the session"
    );
    assert!(
        store
            .desktop_cookie_ids(&session.session.id)
            .await
            .expect("ids")
            .is_empty()
    );
}

async fn preview_tickets_are_reusable_until_they_expire(store: Store) {
    let user = local(&store, "vera", Role::Student).await;
    let ticket = store
        .issue_preview_ticket(&user.id, "class", "5a/Blatt 1.pdf", Duration::from_secs(300))
        .await
        .expect("ticket");
    for _ in 0..2 {
        let read = store.preview_ticket(&ticket).await.expect("read").expect("valid");
        assert_eq!(read.user_id, user.id);
        assert_eq!((read.space.as_str(), read.path.as_str()), ("class", "5a/Blatt 1.pdf"));
    }
    assert_eq!(store.preview_ticket("guess").await.expect("read"), None);
    let short = store
        .issue_preview_ticket(&user.id, "home", "a.pdf", Duration::from_millis(1))
        .await
        .expect("ticket");
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(store.preview_ticket(&short).await.expect("read"), None, "expired");
    assert!(store.purge_expired_tickets().await.expect("purge") >= 1);
    assert!(
        store.preview_ticket(&ticket).await.expect("read").is_some(),
        "still valid"
    );
    let nobody = store
        .issue_preview_ticket("no-such-user", "home", "a.pdf", Duration::from_secs(1))
        .await;
    assert!(matches!(nobody, Err(StoreError::NotFound)), "{nobody:?}");
}

async fn groups_of(store: &Store, id: &str) -> Vec<String> {
    store.user_by_id(id).await.expect("read").expect("exists").groups
}

async fn administrators_set_the_groups_of_local_accounts_only(store: Store) {
    let lena = local(&store, "lena", Role::Teacher).await;
    let set = store
        .set_local_groups(&lena.id, &[" 5a ".into(), "Mathe 7".into(), "5a".into(), "".into()])
        .await
        .expect("local groups");
    assert_eq!(set, ["5a", "Mathe 7"]);
    let read = store.user_by_id(&lena.id).await.expect("read").expect("exists");
    assert_eq!(read.groups, ["5a", "Mathe 7"]);
    // Replaced, not added to.
    store.set_local_groups(&lena.id, &["6b".into()]).await.expect("replace");
    assert_eq!(
        store
            .user_by_username("lena")
            .await
            .expect("read")
            .expect("exists")
            .groups,
        ["6b"]
    );
    // Bad names: nothing changes.
    for bad in ["a\nb", &"x".repeat(257)] {
        let err = store.set_local_groups(&lena.id, &[bad.to_owned()]).await;
        assert!(matches!(err, Err(StoreError::Invalid(_))), "{bad:?}: {err:?}");
    }
    assert_eq!(groups_of(&store, &lena.id).await, ["6b"]);
    // IServ decides for its accounts.
    let iserv = store
        .upsert_external_user(&external("sub-1", "ida", &["5a"]))
        .await
        .expect("iserv user");
    let err = store.set_local_groups(&iserv.id, &["6b".into()]).await;
    assert!(
        matches!(&err, Err(StoreError::Conflict(m)) if m.contains("IServ")),
        "{err:?}"
    );
    assert_eq!(groups_of(&store, &iserv.id).await, ["5a"]);
    assert!(matches!(
        store.set_local_groups("nobody", &[]).await,
        Err(StoreError::NotFound)
    ));
    // Emptied: no groups.
    store.set_local_groups(&lena.id, &[]).await.expect("empty");
    assert!(groups_of(&store, &lena.id).await.is_empty());
}

async fn class_messages_replace_expire_and_reach_their_group_only(store: Store) {
    let tina = local(&store, "tina", Role::Teacher).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let groups = |g: &[&str]| g.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    store
        .set_class_message("5a", "  Bitte speichern  ", &tina.id, "Tina", now + 3600)
        .await
        .expect("set");
    let shown = store
        .class_messages_for(&groups(&["5a", "x"]), now)
        .await
        .expect("read");
    assert_eq!(shown.len(), 1);
    assert_eq!(
        (shown[0].body.as_str(), shown[0].author_name.as_str()),
        ("Bitte speichern", "Tina")
    );
    assert!(
        store
            .class_messages_for(&groups(&["6b"]), now)
            .await
            .expect("read")
            .is_empty()
    );
    assert!(store.class_messages_for(&[], now).await.expect("read").is_empty());
    // A new one replaces the old.
    store
        .set_class_message("5a", "<b>Pause</b>", &tina.id, "Tina", now + 60)
        .await
        .expect("replace");
    let shown = store.class_messages_for(&groups(&["5a"]), now).await.expect("read");
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].body, "<b>Pause</b>");
    // Expired: gone.
    assert!(
        store
            .class_messages_for(&groups(&["5a"]), now + 60)
            .await
            .expect("read")
            .is_empty()
    );
    // Limits.
    let long = "x".repeat(portal_store::MAX_MESSAGE_CHARS + 1);
    for bad in ["", "   ", long.as_str()] {
        let err = store.set_class_message("5a", bad, &tina.id, "Tina", now + 60).await;
        assert!(matches!(err, Err(StoreError::Invalid(_))), "{bad:?}");
    }
    let exact = "ä".repeat(portal_store::MAX_MESSAGE_CHARS);
    store
        .set_class_message("5a", &exact, &tina.id, "Tina", now + 60)
        .await
        .expect("500 characters");
    // Cleared by its teacher.
    assert!(store.clear_class_message("5a").await.expect("clear"));
    assert!(!store.clear_class_message("5a").await.expect("clear again"));
    assert!(
        store
            .class_messages_for(&groups(&["5a"]), now)
            .await
            .expect("read")
            .is_empty()
    );
    // The author's account going keeps no message from its students.
    store
        .set_class_message("5a", "Hi", &tina.id, "Tina", now + 60)
        .await
        .expect("set");
    store.delete_user(&tina.id).await.expect("delete");
    assert_eq!(
        store
            .class_messages_for(&groups(&["5a"]), now)
            .await
            .expect("read")
            .len(),
        1
    );
}

async fn assignments_are_sealed_once_due_and_a_new_due_time_voids_the_seal(store: Store) {
    let teacher = store
        .create_local_user("lehrerin", "Lehrerin", Role::Teacher, &secret("s3cret-pass"))
        .await
        .expect("works");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("works")
        .as_secs() as i64;
    let new = |title: &'static str, allow_late: bool| portal_store::NewAssignment {
        owner_id: &teacher.id,
        group_name: "5a",
        title,
        due_at: now + 3600,
        allow_late,
    };
    let strict = store.create_assignment(&new("Aufsatz", false)).await.expect("works");
    let late = store.create_assignment(&new("Nachzügler", true)).await.expect("works");
    assert_eq!(strict.sealed_at, None);
    assert_eq!(
        store.next_seal_due(now).await.expect("works"),
        Some(now + 3600),
        "late hand-ins are never sealed"
    );
    assert!(store.assignments_to_seal(now).await.expect("works").is_empty());

    store.set_assignment_due(&strict.id, now - 5).await.expect("works");
    store.set_assignment_due(&late.id, now - 5).await.expect("works");
    let due: Vec<String> = store
        .assignments_to_seal(now)
        .await
        .expect("works")
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(due, std::slice::from_ref(&strict.id));
    assert_eq!(store.next_seal_due(now).await.expect("works"), None);

    store.mark_assignment_sealed(&strict.id, now).await.expect("works");
    assert_eq!(
        store
            .assignment(&strict.id)
            .await
            .expect("works")
            .expect("works")
            .sealed_at,
        Some(now)
    );
    assert!(store.assignments_to_seal(now).await.expect("works").is_empty());
    store.set_assignment_due(&strict.id, now + 60).await.expect("works");
    assert_eq!(
        store
            .assignment(&strict.id)
            .await
            .expect("works")
            .expect("works")
            .sealed_at,
        None,
        "sealed again at the new due time"
    );
    assert!(matches!(
        store.mark_assignment_sealed("nope", now).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.all_assignments().await.expect("works").len(), 2);
}

async fn create_and_verify_user(store: Store) {
    store.ping().await.expect("ping");
    let anna = store
        .create_local_user("Anna.Schmidt", "Anna Schmidt", Role::Teacher, &secret("s3cret-pass"))
        .await
        .expect("create");
    assert_eq!(anna.username, "anna.schmidt");
    assert_eq!(anna.display_name, "Anna Schmidt");
    assert_eq!(anna.role, Role::Teacher);
    assert!(anna.has_password);
    assert_eq!(anna.external_subject, None);
    assert!(anna.groups.is_empty());
    assert_eq!(anna.id.len(), 32);

    let signed_in = store
        .verify_password("anna.schmidt", "s3cret-pass")
        .await
        .expect("verify");
    assert_eq!(signed_in.as_ref(), Some(&anna), "right password");
    let upper = store
        .verify_password("ANNA.Schmidt", "s3cret-pass")
        .await
        .expect("verify");
    assert_eq!(upper.as_ref(), Some(&anna), "usernames are case-insensitive");
    assert_eq!(
        store
            .verify_password("anna.schmidt", "wrong-pass")
            .await
            .expect("verify"),
        None
    );
    assert_eq!(
        store.verify_password("nobody", "s3cret-pass").await.expect("verify"),
        None
    );
    assert_eq!(
        store.verify_password("bad name!", "s3cret-pass").await.expect("verify"),
        None
    );
    let huge = "x".repeat(5000);
    assert_eq!(
        store.verify_password("anna.schmidt", &huge).await.expect("verify"),
        None
    );

    assert_eq!(store.user_by_id(&anna.id).await.expect("by id"), Some(anna.clone()));
    assert_eq!(
        store.user_by_username("ANNA.SCHMIDT").await.expect("by name"),
        Some(anna)
    );
    assert_eq!(store.user_by_id("missing").await.expect("by id"), None);
    assert_eq!(store.user_by_username("missing").await.expect("by name"), None);
}

async fn duplicate_username_conflicts(store: Store) {
    local(&store, "bob", Role::Student).await;
    let again = store
        .create_local_user("BOB", "Other Bob", Role::Admin, &secret("another password"))
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(store.list_users().await.expect("list").len(), 1);
}

async fn invalid_input_is_rejected(store: Store) {
    let long_name = "a".repeat(65);
    for username in ["", ".anna", "-anna", "anna smith", "anna/../x", "jürgen", &long_name] {
        let created = store
            .create_local_user(username, "X", Role::Student, &secret("long enough"))
            .await;
        assert!(
            matches!(created, Err(StoreError::Invalid(_))),
            "{username:?}: {created:?}"
        );
    }
    let max_name = "a".repeat(64);
    local(&store, &max_name, Role::Student).await;
    for password in ["", "1234567".to_owned().as_str(), &"p".repeat(1025)] {
        let created = store
            .create_local_user("carl", "Carl", Role::Student, &secret(password))
            .await;
        assert!(matches!(created, Err(StoreError::Invalid(_))), "len {}", password.len());
    }
    local(&store, "carl", Role::Student).await;
    let users = store.list_users().await.expect("list");
    assert_eq!(users.len(), 2, "only the valid users exist");
}

async fn set_password_replaces_password(store: Store) {
    let user = local(&store, "dora", Role::Student).await;
    store.set_password("Dora", &secret("new password")).await.expect("set");
    assert_eq!(store.verify_password("dora", "correct horse").await.expect("old"), None);
    let signed_in = store.verify_password("dora", "new password").await.expect("new");
    assert_eq!(signed_in.map(|u| u.id), Some(user.id));

    let missing = store.set_password("nobody", &secret("new password")).await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
    let short = store.set_password("dora", &secret("short")).await;
    assert!(matches!(short, Err(StoreError::Invalid(_))), "{short:?}");
    assert!(
        store
            .verify_password("dora", "new password")
            .await
            .expect("still")
            .is_some()
    );
}

async fn session_lifecycle(store: Store) {
    let user = local(&store, "emil", Role::Student).await;
    let new = store.create_session(&user.id, HOUR).await.expect("create session");
    assert_eq!(new.token.len(), 43);
    assert_eq!(new.session.id.len(), 64, "sha256 hex");
    assert_ne!(new.session.id, new.token);
    assert_eq!(new.session.expires_at - new.session.created_at, 3600);

    let (session, session_user) = store
        .session_by_token(&new.token)
        .await
        .expect("lookup")
        .expect("live session");
    assert_eq!(session.id, new.session.id);
    assert_eq!(session.user_id, user.id);
    assert_eq!(session.csrf_token, new.session.csrf_token);
    assert_eq!(session.current_desktop, None);
    assert_eq!(session.created_at, new.session.created_at);
    assert_eq!(session.expires_at, new.session.expires_at);
    assert_eq!(session_user, user);

    store
        .set_current_desktop(&session.id, Some("emil-ubuntu"))
        .await
        .expect("set desktop");
    let (session, _) = store.session_by_token(&new.token).await.expect("lookup").expect("live");
    assert_eq!(session.current_desktop.as_deref(), Some("emil-ubuntu"));
    store
        .set_current_desktop(&session.id, None)
        .await
        .expect("clear desktop");
    let (session, _) = store.session_by_token(&new.token).await.expect("lookup").expect("live");
    assert_eq!(session.current_desktop, None);
    let missing = store.set_current_desktop("no-such-session", Some("x")).await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");

    // The stored id is not a valid token: knowing the database row does not sign anyone in.
    assert!(store.session_by_token(&session.id).await.expect("lookup").is_none());
    assert!(store.session_by_token("unknown").await.expect("lookup").is_none());

    store.delete_session(&new.token).await.expect("delete");
    assert!(store.session_by_token(&new.token).await.expect("lookup").is_none());
    store.delete_session(&new.token).await.expect("deleting twice is fine");
}

async fn expired_sessions_are_invisible_and_purged(store: Store) {
    let user = local(&store, "finn", Role::Student).await;
    let expired = store.create_session(&user.id, Duration::ZERO).await.expect("create");
    let live = store.create_session(&user.id, HOUR).await.expect("create");
    assert!(store.session_by_token(&expired.token).await.expect("lookup").is_none());
    assert_eq!(store.delete_expired_sessions().await.expect("purge"), 1);
    assert_eq!(store.delete_expired_sessions().await.expect("purge"), 0);
    assert!(store.session_by_token(&live.token).await.expect("lookup").is_some());
}

async fn delete_user_sessions_only_hits_that_user(store: Store) {
    let greta = local(&store, "greta", Role::Student).await;
    let hans = local(&store, "hans", Role::Teacher).await;
    let g1 = store.create_session(&greta.id, HOUR).await.expect("create");
    let g2 = store.create_session(&greta.id, HOUR).await.expect("create");
    let h1 = store.create_session(&hans.id, HOUR).await.expect("create");
    assert_ne!(g1.token, g2.token);
    assert_eq!(store.delete_user_sessions(&greta.id).await.expect("delete"), 2);
    assert!(store.session_by_token(&g1.token).await.expect("lookup").is_none());
    assert!(store.session_by_token(&g2.token).await.expect("lookup").is_none());
    assert!(store.session_by_token(&h1.token).await.expect("lookup").is_some());
    assert_eq!(store.delete_user_sessions(&greta.id).await.expect("delete"), 0);
}

async fn session_for_unknown_user_is_not_found(store: Store) {
    let created = store.create_session("no-such-user", HOUR).await;
    assert!(matches!(created, Err(StoreError::NotFound)), "foreign key enforced");
}

/// An account made ahead of the first sign-in (`import-flask`): found by subject, no password,
/// and the subject's first sign-in makes it hers with her real name, role and groups.
async fn a_pending_user_is_taken_over_by_its_subjects_first_sign_in(store: Store) {
    let pending = store
        .create_pending_external_user("uuid-1", "flask-uuid-1", "uuid-1")
        .await
        .expect("pending user");
    assert_eq!(pending.role, Role::Student);
    assert!(!pending.has_password);
    assert_eq!(
        store.user_by_subject("uuid-1").await.expect("query").expect("found").id,
        pending.id
    );
    assert!(store.user_by_subject("uuid-2").await.expect("query").is_none());
    assert!(matches!(
        store.create_pending_external_user("uuid-1", "flask-other", "x").await,
        Err(StoreError::Conflict(_))
    ));
    let mut ext = external("uuid-1", "anna", &["7a"]);
    ext.role = Role::Teacher;
    let user = store.upsert_external_user(&ext).await.expect("sign-in");
    assert_eq!(user.id, pending.id);
    assert_eq!(user.home_name, pending.home_name);
    assert_eq!((user.username.as_str(), user.role), ("anna", Role::Teacher));
    assert_eq!(user.groups, ["7a"]);
}

async fn external_user_is_created(store: Store) {
    let ext = external("sub-1", "Ida.Klein", &["klasse-7a", " ", "alle", "klasse-7a"]);
    let user = store.upsert_external_user(&ext).await.expect("upsert");
    assert_eq!(user.username, "ida.klein");
    assert_eq!(user.display_name, "Name of Ida.Klein");
    assert_eq!(user.email.as_deref(), Some("Ida.Klein@school.example"));
    assert_eq!(user.external_subject.as_deref(), Some("sub-1"));
    assert_eq!(user.groups, ["alle", "klasse-7a"], "trimmed, deduplicated, sorted");
    assert!(!user.has_password);
    assert_eq!(
        store.user_by_username("ida.klein").await.expect("lookup"),
        Some(user.clone())
    );
    // No local password: password sign-in must fail even with an empty-looking guess.
    assert_eq!(
        store
            .verify_password("ida.klein", "anything at all")
            .await
            .expect("verify"),
        None
    );
    let invalid = store.upsert_external_user(&external("sub-2", "not valid", &[])).await;
    assert!(matches!(invalid, Err(StoreError::Invalid(_))), "{invalid:?}");
    let no_subject = store.upsert_external_user(&external(" ", "jan", &[])).await;
    assert!(matches!(no_subject, Err(StoreError::Invalid(_))), "{no_subject:?}");
}

async fn external_user_is_updated_on_next_sign_in(store: Store) {
    let first = store
        .upsert_external_user(&external("sub-1", "jana", &["klasse-7a", "chor"]))
        .await
        .expect("first sign-in");
    let mut changed = external("sub-1", "jana.renamed", &["klasse-8a"]);
    changed.role = Role::Teacher;
    changed.email = None;
    changed.display_name = "Jana R.".to_owned();
    let second = store.upsert_external_user(&changed).await.expect("second sign-in");
    assert_eq!(second.id, first.id, "matched on subject despite the rename");
    assert_eq!(second.username, "jana.renamed");
    assert_eq!(second.display_name, "Jana R.");
    assert_eq!(second.email, None);
    assert_eq!(second.role, Role::Teacher);
    assert_eq!(second.groups, ["klasse-8a"], "groups replaced, not merged");
    assert_eq!(second.created_at, first.created_at);
    assert_eq!(first.home_name, format!("u-{}", first.id), "named by the account's id");
    assert_eq!(
        second.home_name, first.home_name,
        "the home volume does not follow a rename"
    );
    assert_eq!(store.user_by_username("jana").await.expect("lookup"), None);
    assert_eq!(store.list_users().await.expect("list"), [second]);
}

async fn external_user_links_local_user(store: Store) {
    let karla = local(&store, "karla", Role::Teacher).await;
    let password_session = store.create_session(&karla.id, HOUR).await.expect("session");
    store.allow_link(&karla.id, "root").await.expect("allow");
    let (linked, how) = store
        .sign_in_external(&external("sub-k", "Karla", &["lehrer"]))
        .await
        .expect("link");
    assert_eq!(
        how,
        Some(portal_store::Linked {
            allowed_by: Some("root".into())
        })
    );
    assert_eq!(linked.id, karla.id, "same account, so desktops and files stay");
    assert_eq!(linked.external_subject.as_deref(), Some("sub-k"));
    assert_eq!(linked.role, Role::Student, "the provider decides the role");
    assert_eq!(linked.groups, ["lehrer"]);
    assert!(!linked.has_password, "the local password is removed");
    assert_eq!(linked.link_allowed_by, None, "the permission is used up");
    assert!(
        store
            .session_by_token(&password_session.token)
            .await
            .expect("lookup")
            .is_none(),
        "sessions signed in with the password end"
    );
    assert!(
        store
            .verify_password("karla", "correct horse")
            .await
            .expect("verify")
            .is_none()
    );
    let (_, again) = store
        .sign_in_external(&external("sub-k", "karla", &[]))
        .await
        .expect("next sign-in");
    assert_eq!(again, None, "only the first sign-in links");

    // The username now belongs to subject sub-k; another subject cannot take it over.
    let other = store.upsert_external_user(&external("sub-other", "karla", &[])).await;
    assert!(matches!(other, Err(StoreError::Conflict(_))), "{other:?}");
    // Renaming into a local user's name is refused too, rather than merging two accounts.
    local(&store, "lena", Role::Student).await;
    let rename = store.upsert_external_user(&external("sub-k", "lena", &[])).await;
    assert!(matches!(rename, Err(StoreError::Conflict(_))), "{rename:?}");
    assert_eq!(store.list_users().await.expect("list").len(), 2);
}

/// An IServ sign-in never takes over a local account that has a password or is an
/// administrator's unless an administrator allowed it; a refused sign-in changes nothing.
async fn linking_a_guarded_account_needs_an_admin(store: Store, url: String) {
    let tester = local(&store, "tester", Role::Student).await;
    let refused = store.upsert_external_user(&external("sub-t", "tester", &[])).await;
    assert!(
        matches!(&refused, Err(StoreError::LinkNeedsAdmin(name)) if name == "tester"),
        "{refused:?}"
    );
    let unchanged = store.user_by_id(&tester.id).await.expect("get").expect("kept");
    assert_eq!(unchanged, tester, "nothing changed");
    assert!(
        store
            .verify_password("tester", "correct horse")
            .await
            .expect("verify")
            .is_some()
    );

    // An administrator's account without a password (as a setup script may make) is guarded
    // too; the store offers no way to drop a password, so SQL does.
    let boss = local(&store, "boss", Role::Admin).await;
    let pool = sqlx::AnyPool::connect(&url).await.expect("connect");
    sqlx::query("UPDATE users SET password_hash = NULL WHERE id = $1")
        .bind(&boss.id)
        .execute(&pool)
        .await
        .expect("drop password");
    // An account prepared without password, not an administrator's, is linked at once.
    let prepared = local(&store, "prepared", Role::Student).await;
    sqlx::query("UPDATE users SET password_hash = NULL WHERE id = $1")
        .bind(&prepared.id)
        .execute(&pool)
        .await
        .expect("drop password");
    pool.close().await;
    let (linked, how) = store
        .sign_in_external(&external("sub-p", "prepared", &[]))
        .await
        .expect("linked");
    assert_eq!(
        (linked.id, how),
        (prepared.id, Some(portal_store::Linked { allowed_by: None }))
    );
    let refused = store.upsert_external_user(&external("sub-b", "boss", &[])).await;
    assert!(matches!(refused, Err(StoreError::LinkNeedsAdmin(_))), "{refused:?}");
    store.allow_link(&boss.id, "root").await.expect("allow");
    let linked = store
        .upsert_external_user(&external("sub-b", "boss", &[]))
        .await
        .expect("link");
    assert_eq!(linked.id, boss.id);

    let missing = store.allow_link("nobody", "root").await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
    let linked = person(&store, "iserv.user").await;
    let already = store.allow_link(&linked.id, "root").await;
    assert!(matches!(already, Err(StoreError::Conflict(_))), "{already:?}");
}

/// New accounts get homes named by their id; deleting an account and creating the same name
/// again gives a fresh home.
async fn homes_are_named_by_account_not_by_name(store: Store) {
    let first = local(&store, "bob", Role::Student).await;
    assert_eq!(first.home_name, format!("u-{}", first.id));
    store.delete_user(&first.id).await.expect("delete");
    let second = local(&store, "bob", Role::Student).await;
    assert_ne!(second.id, first.id);
    assert_ne!(second.home_name, first.home_name, "a re-created name gets a fresh home");
    let external_user = person(&store, "carl").await;
    assert_eq!(external_user.home_name, format!("u-{}", external_user.id));
}

/// A deleted account leaves `users` (name free, no sign-in) and is listed with its home until
/// its purge time; restoring gives it back as it was; a taken name blocks the restore.
async fn deleted_users_are_kept_until_purged_and_can_be_restored(store: Store) {
    let (dora, desktop) = user_with_desktop(&store, "dora", "ubuntu").await;
    store
        .set_password("dora", &secret("dora's password"))
        .await
        .expect("password");
    let dora = store.user_by_id(&dora.id).await.expect("get").expect("dora");
    store.create_session(&dora.id, HOUR).await.expect("session");
    let deleted = store
        .delete_user_keeping_home(&dora.id, "root", 2_000_000_000)
        .await
        .expect("delete");
    assert_eq!(
        (
            deleted.username.as_str(),
            deleted.home_name.as_str(),
            deleted.deleted_by.as_str()
        ),
        ("dora", dora.home_name.as_str(), "root")
    );
    assert_eq!(deleted.purge_at, 2_000_000_000);
    assert!(store.user_by_id(&dora.id).await.expect("get").is_none());
    assert!(
        store.desktop(&desktop).await.expect("get").is_none(),
        "desktop records go"
    );
    assert!(
        store
            .verify_password("dora", "dora's password")
            .await
            .expect("verify")
            .is_none()
    );
    assert_eq!(
        store.deleted_users().await.expect("list"),
        std::slice::from_ref(&deleted)
    );
    assert!(store.deleted_users_due(1_999_999_999).await.expect("due").is_empty());
    assert_eq!(
        store.deleted_users_due(2_000_000_000).await.expect("due"),
        std::slice::from_ref(&deleted)
    );
    let again = store.delete_user_keeping_home(&dora.id, "root", 0).await;
    assert!(matches!(again, Err(StoreError::NotFound)), "{again:?}");

    store.restore_user(&dora.id).await.expect("restore");
    let back = store.user_by_id(&dora.id).await.expect("get").expect("restored");
    assert_eq!(back.home_name, dora.home_name);
    assert_eq!(back.groups, dora.groups);
    assert_eq!(back.role, dora.role);
    assert!(
        store
            .verify_password("dora", "dora's password")
            .await
            .expect("verify")
            .is_some()
    );
    assert!(store.deleted_users().await.expect("list").is_empty());
    let twice = store.restore_user(&dora.id).await;
    assert!(matches!(twice, Err(StoreError::NotFound)), "{twice:?}");

    // Deleted again, and meanwhile someone else got the name: no restore over them.
    store
        .delete_user_keeping_home(&dora.id, "root", 2_000_000_000)
        .await
        .expect("delete");
    let new_dora = local(&store, "dora", Role::Student).await;
    assert_ne!(new_dora.home_name, dora.home_name);
    let blocked = store.restore_user(&dora.id).await;
    assert!(matches!(blocked, Err(StoreError::Conflict(_))), "{blocked:?}");
    assert_eq!(store.deleted_users().await.expect("list").len(), 1, "still listed");
    // Once the retention has ended the files may be going: no restore any more.
    let (gone, _) = user_with_desktop(&store, "gone", "ubuntu").await;
    store
        .delete_user_keeping_home(&gone.id, "root", 0)
        .await
        .expect("delete");
    let late = store.restore_user(&gone.id).await;
    assert!(matches!(late, Err(StoreError::NotFound)), "{late:?}");
    store.forget_deleted_user(&gone.id).await.expect("forget");
    store.forget_deleted_user(&dora.id).await.expect("forget");
    assert!(store.deleted_users().await.expect("list").is_empty());
    assert!(matches!(
        store.forget_deleted_user(&dora.id).await,
        Err(StoreError::NotFound)
    ));
}

/// Migration 0008 on an older database: every existing account keeps the home it has (no one
/// loses files), and where two accounts shared one name (a rename at IServ, then a new holder
/// of the old name) the older keeps it and the newer gets a home of its own.
async fn migration_0008_keeps_homes_and_splits_shared_ones(store: Store, url: String) {
    store.close().await;
    let pool = sqlx::AnyPool::connect(&url).await.expect("connect");
    for statement in [
        "DROP TABLE deleted_users",
        "DROP INDEX users_home_name",
        "ALTER TABLE users DROP COLUMN link_allowed_by",
        "DELETE FROM _sqlx_migrations WHERE version = 8",
    ] {
        sqlx::query(statement).execute(&pool).await.expect(statement);
    }
    for (id, username, home_name, created_at) in [
        ("id-robert", "robert", "bob", 1),
        ("id-bob", "bob", "bob", 2),
        ("id-anna", "anna", "anna", 1),
        ("id-old", "old", "", 1),
    ] {
        sqlx::query(
            "INSERT INTO users (id, username, display_name, email, role, password_hash, external_subject, \
             language, home_name, created_at, updated_at) VALUES ($1, $2, $2, NULL, 'student', NULL, NULL, NULL, \
             $3, $4, $4)",
        )
        .bind(id)
        .bind(username)
        .bind(home_name)
        .bind(created_at)
        .execute(&pool)
        .await
        .expect("insert the old way");
    }
    pool.close().await;

    let store = Store::connect(&url).await.expect("migrate to 0008");
    let home = |name: &'static str| {
        let store = store.clone();
        async move { store.user_by_username(name).await.expect("get").expect(name).home_name }
    };
    assert_eq!(home("robert").await, "bob", "the older holder keeps the files");
    assert_eq!(home("bob").await, "u-id-bob", "the newer one gets its own home");
    assert_eq!(home("anna").await, "anna", "everyone else keeps theirs");
    assert_eq!(home("old").await, "old");
}

async fn concurrent_first_sign_ins_make_one_user(store: Store) {
    let ext = external("sub-race", "max", &["a", "b"]);
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            let ext = ext.clone();
            tokio::spawn(async move { store.upsert_external_user(&ext).await })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.expect("task").expect("upsert").id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "all sign-ins got the same user");
    let users = store.list_users().await.expect("list");
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].groups, ["a", "b"]);
}

async fn list_users_is_ordered_by_username(store: Store) {
    for name in ["b", "ab", "a_b", "a.b", "a-b", "a1"] {
        local(&store, name, Role::Student).await;
    }
    store
        .upsert_external_user(&external("sub-z", "z", &["g2", "g1"]))
        .await
        .expect("upsert");
    let users = store.list_users().await.expect("list");
    let names: Vec<&str> = users.iter().map(|u| u.username.as_str()).collect();
    // Bytewise order on both backends, whatever PostgreSQL's locale would say.
    assert_eq!(names, ["a-b", "a.b", "a1", "a_b", "ab", "b", "z"]);
    assert_eq!(users[6].groups, ["g1", "g2"]);
    assert!(users[..6].iter().all(|u| u.groups.is_empty() && u.has_password));
    assert!(!users[6].has_password);
}

async fn user_language(store: Store) {
    let user = local(&store, "mia", Role::Student).await;
    assert_eq!(user.language, None);
    store.set_user_language(&user.id, Some("de")).await.expect("set");
    let found = store.user_by_id(&user.id).await.expect("lookup").expect("user");
    assert_eq!(found.language.as_deref(), Some("de"));
    store.set_user_language(&user.id, Some("en-GB")).await.expect("set");
    let invalid = store.set_user_language(&user.id, Some("<script>")).await;
    assert!(matches!(invalid, Err(StoreError::Invalid(_))), "{invalid:?}");
    store.set_user_language(&user.id, None).await.expect("clear");
    let found = store.user_by_id(&user.id).await.expect("lookup").expect("user");
    assert_eq!(found.language, None);
    let missing = store.set_user_language("no-such-user", Some("de")).await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
}

/// PostgreSQL: the leader's lock is exclusive and frees when its holder goes; a session
/// change is announced to other stores on the same database. SQLite: one process, nothing
/// to lead or tell.
async fn one_leader_at_a_time_and_notifications_reach_every_store(store: Store, url: String) {
    if store.backend() == Backend::Sqlite {
        assert!(store.listen().await.expect("store call").is_none());
        assert!(matches!(store.try_lead().await, Err(StoreError::Invalid(_))));
        return;
    }
    let other = Store::connect(&url).await.expect("store call");
    let mut lock = store
        .try_lead()
        .await
        .expect("store call")
        .expect("the first one leads");
    lock.check().await.expect("store call");
    assert!(other.try_lead().await.expect("store call").is_none(), "a second leader");
    drop(lock);
    let mut taken = None;
    for _ in 0..50 {
        taken = other.try_lead().await.expect("store call");
        if taken.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(taken.is_some(), "the lock freed when its holder went");

    let mut notifications = other.listen().await.expect("store call").expect("PostgreSQL listens");
    let user = store
        .create_local_user("notified", "", Role::Student, &SecretString::from("pw-123456789"))
        .await
        .expect("store call");
    store.delete_user_sessions(&user.id).await.expect("store call");
    let notice = tokio::time::timeout(Duration::from_secs(5), notifications.next())
        .await
        .expect("a notice in time")
        .expect("store call");
    assert_eq!(
        notice,
        portal_store::Notice::Message {
            channel: portal_store::SESSIONS_CHANNEL.to_owned(),
            payload: String::new(),
        }
    );
}

async fn migrations_are_idempotent(store: Store, url: String) {
    let user = local(&store, "nora", Role::Admin).await;
    let again = Store::connect(&url).await.expect("second connect migrates nothing");
    assert_eq!(again.backend(), store.backend());
    again.ping().await.expect("ping");
    assert_eq!(again.user_by_id(&user.id).await.expect("lookup"), Some(user));
    again.close().await;
    store.close().await;
    let third = Store::connect(&url).await.expect("third connect");
    assert_eq!(third.list_users().await.expect("list").len(), 1);
}

fn unix_now() -> i64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    i64::try_from(secs).expect("fits")
}

async fn desktop_type_round_trip(store: Store) {
    assert_eq!(store.desktop_type("ubuntu").await.expect("get"), None);
    let wanted = DesktopType {
        key: "ubuntu".to_owned(),
        names: [("de", "  Ubuntu-Desktop "), ("en", "Ubuntu desktop")]
            .map(|(l, n)| (l.to_owned(), n.to_owned()))
            .into(),
        descriptions: [("de", "Ein vollständiger Desktop."), ("en", "")]
            .map(|(l, n)| (l.to_owned(), n.to_owned()))
            .into(),
        icon: "🐧".to_owned(),
        image: "kasmweb/ubuntu-focal-desktop:1.16.0".to_owned(),
        container_port: 6901,
        protocol: "HTTPS".to_owned(),
        env: vec![
            ("TZ".to_owned(), "Europe/Berlin".to_owned()),
            ("A_B".to_owned(), String::new()),
        ],
        shm_size_bytes: 512 * 1024 * 1024,
        memory_bytes: Some(4 << 30),
        nano_cpus: Some(2_000_000_000),
        enabled: false,
        internet: false,
        idle_timeout_secs: 3600,
        max_age_secs: 36_000,
        allowed_groups: vec!["klasse-7b".to_owned(), " klasse-7a".to_owned(), "klasse-7b".to_owned()],
        allowed_users: vec!["Lehrer.Eins".to_owned()],
        sort_order: 5,
        created_at: 1,
        updated_at: 1,
    };
    let stored = store.upsert_desktop_type(&wanted).await.expect("upsert");
    assert_eq!(stored.name("de"), "Ubuntu-Desktop", "trimmed");
    assert!(!stored.descriptions.contains_key("en"), "empty texts are not kept");
    assert_eq!(stored.protocol, "https", "lowercased");
    assert_eq!(
        stored.allowed_groups,
        ["klasse-7a", "klasse-7b"],
        "trimmed, deduplicated, sorted"
    );
    assert_eq!(stored.allowed_users, ["lehrer.eins"], "lowercased");
    assert_eq!(stored.env, wanted.env, "order kept");
    assert!(stored.created_at > 1_600_000_000, "set by the store, not the caller");
    assert_eq!(stored.updated_at, stored.created_at);
    assert_eq!(
        stored.description("en"),
        "Ein vollständiger Desktop.",
        "English falls back to German"
    );
    assert_eq!(stored.name("en"), "Ubuntu desktop");
    assert!(stored.allows("lehrer.eins", &[]));
    assert!(stored.allows("someone", &["klasse-7a".to_owned()]));
    assert!(!stored.allows("someone", &["klasse-8a".to_owned()]));
    assert_eq!(store.desktop_type("ubuntu").await.expect("get"), Some(stored.clone()));
    assert!(!stored.internet, "an exam type keeps its setting");

    // Limits unset, defaults otherwise.
    let plain = store
        .upsert_desktop_type(&desktop_type("chromium", 0))
        .await
        .expect("upsert");
    let read = store.desktop_type("chromium").await.expect("get").expect("exists");
    assert_eq!(read, plain);
    assert_eq!(read.memory_bytes, None);
    assert_eq!(read.nano_cpus, None);
    assert_eq!(read.container_port, 6901);
    assert_eq!(read.shm_size_bytes, 512 * 1024 * 1024);
    assert!(read.enabled);
    assert!(read.internet, "types reach the internet unless set otherwise");
    assert!(read.env.is_empty() && read.allowed_groups.is_empty() && read.allowed_users.is_empty());
}

/// Texts in languages other than German and English are stored and read back, replaced as a
/// whole on update, and gone with the type.
async fn desktop_type_texts_in_any_language(store: Store) {
    let t = desktop_type("ubuntu", 0)
        .with_name("fr", "Bureau Ubuntu")
        .with_description("fr", "Un bureau complet.")
        .with_name("pt-BR", "Área de trabalho")
        .with_description("uk", "Повний робочий стіл.");
    let stored = store.upsert_desktop_type(&t).await.expect("upsert");
    let read = store.desktop_type("ubuntu").await.expect("get").expect("exists");
    assert_eq!(read, stored);
    assert_eq!(read.name("fr"), "Bureau Ubuntu");
    assert_eq!(read.name("fr-CH"), "Bureau Ubuntu", "primary subtag");
    assert_eq!(read.description("fr"), "Un bureau complet.");
    assert_eq!(read.name("pt-BR"), "Área de trabalho");
    assert_eq!(
        read.name("uk"),
        "Typ ubuntu",
        "description only: the name falls back to German"
    );
    assert_eq!(read.description("uk"), "Повний робочий стіл.");
    assert_eq!(read.description("de"), "");
    assert_eq!(
        store.list_desktop_types().await.expect("list"),
        std::slice::from_ref(&read)
    );

    // An update replaces the texts: French is gone, Italian is new.
    let mut edited = read.clone().with_name("it", "Desktop Ubuntu");
    edited.names.remove("fr");
    edited.descriptions.remove("fr");
    let stored = store.upsert_desktop_type(&edited).await.expect("update");
    let read = store.desktop_type("ubuntu").await.expect("get").expect("exists");
    assert_eq!(read, stored);
    assert_eq!(read.name("fr"), "Typ ubuntu");
    assert_eq!(read.name("it"), "Desktop Ubuntu");

    // Deleting the type deletes its texts: a new type with the key starts without them.
    store.delete_desktop_type("ubuntu").await.expect("delete");
    let fresh = store
        .upsert_desktop_type(&desktop_type("ubuntu", 0))
        .await
        .expect("recreate");
    assert_eq!(fresh.text_langs().into_iter().collect::<Vec<_>>(), ["de", "en"]);
    assert_eq!(store.desktop_type("ubuntu").await.expect("get"), Some(fresh));
}

/// Migration 0007 copies the old `name_de`/`name_en`/`description_*` columns into
/// `desktop_type_texts`. The database is put back to version 6 (0007's table dropped and its
/// row removed from `_sqlx_migrations`), a type is written the old way, and connecting again
/// runs the real migration.
async fn migration_0007_carries_de_en_texts_over(store: Store, url: String) {
    store.close().await;
    let pool = sqlx::AnyPool::connect(&url).await.expect("connect");
    sqlx::query("DROP TABLE desktop_type_texts")
        .execute(&pool)
        .await
        .expect("drop");
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 7")
        .execute(&pool)
        .await
        .expect("forget 0007");
    for (key, name_de, name_en, description_de, description_en) in [
        (
            "ubuntu",
            "Ubuntu-Desktop",
            "Ubuntu desktop",
            "Ein Desktop.",
            "A desktop.",
        ),
        ("vscode", "VS Code", "", "Programmieren.", ""),
    ] {
        sqlx::query(
            "INSERT INTO desktop_types (key, name_de, name_en, description_de, description_en, icon, image, \
             container_port, protocol, env, shm_size_bytes, memory_bytes, nano_cpus, enabled, idle_timeout_secs, \
             max_age_secs, allowed_groups, allowed_users, sort_order, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, '', 'kasmweb/x:1', 6901, 'https', '[]', 0, NULL, NULL, 1, 0, 0, '[]', '[]', \
             0, 1, 1)",
        )
        .bind(key)
        .bind(name_de)
        .bind(name_en)
        .bind(description_de)
        .bind(description_en)
        .execute(&pool)
        .await
        .expect("insert the old way");
    }
    pool.close().await;

    let store = Store::connect(&url).await.expect("migrate to 0007");
    let ubuntu = store.desktop_type("ubuntu").await.expect("get").expect("kept");
    assert_eq!(
        (
            ubuntu.name("de"),
            ubuntu.name("en"),
            ubuntu.description("de"),
            ubuntu.description("en")
        ),
        ("Ubuntu-Desktop", "Ubuntu desktop", "Ein Desktop.", "A desktop.")
    );
    let vscode = store.desktop_type("vscode").await.expect("get").expect("kept");
    assert_eq!(
        vscode.text_langs().into_iter().collect::<Vec<_>>(),
        ["de"],
        "no empty English row"
    );
    assert_eq!(
        (vscode.name("en"), vscode.description("en")),
        ("VS Code", "Programmieren.")
    );

    // Written through the new store, the old columns still get German and English (for a
    // portal of the previous version), and other languages live only in the new table.
    store
        .upsert_desktop_type(&vscode.with_name("en", "VS Code (en)").with_name("fr", "VS Code (fr)"))
        .await
        .expect("update");
    store.close().await;
    let pool = sqlx::AnyPool::connect(&url).await.expect("connect");
    let row: (String, String) = sqlx::query_as("SELECT name_de, name_en FROM desktop_types WHERE key = 'vscode'")
        .fetch_one(&pool)
        .await
        .expect("old columns");
    assert_eq!(row, ("VS Code".to_owned(), "VS Code (en)".to_owned()));
    pool.close().await;
}

async fn invalid_desktop_types_are_rejected(store: Store) {
    let cases: Vec<(&str, DesktopType)> = vec![
        ("key", desktop_type("Ubuntu", 0)),
        ("key", desktop_type("a_b", 0)),
        ("key", desktop_type(&"k".repeat(33), 0)),
        (
            "name.de",
            DesktopType {
                names: [("de".to_owned(), " ".to_owned())].into(),
                ..desktop_type("a", 0)
            },
        ),
        (
            "name.de",
            desktop_type("a", 0).with_name("de", "").with_name("fr", "Bureau"),
        ),
        ("name.fr", desktop_type("a", 0).with_name("fr", "x".repeat(129))),
        (
            "description.Deutsch",
            desktop_type("a", 0).with_description("Deutsch", "Ein Desktop"),
        ),
        (
            "icon",
            DesktopType {
                icon: "x".repeat(65),
                ..desktop_type("a", 0)
            },
        ),
        (
            "image",
            DesktopType {
                image: String::new(),
                ..desktop_type("a", 0)
            },
        ),
        (
            "image",
            DesktopType {
                image: "img; rm -rf /".to_owned(),
                ..desktop_type("a", 0)
            },
        ),
        (
            "container_port",
            DesktopType {
                container_port: 0,
                ..desktop_type("a", 0)
            },
        ),
        (
            "protocol",
            DesktopType {
                protocol: "vnc".to_owned(),
                ..desktop_type("a", 0)
            },
        ),
        (
            "env",
            DesktopType {
                env: vec![("VNC_PW".to_owned(), "x".to_owned())],
                ..desktop_type("a", 0)
            },
        ),
        (
            "env",
            DesktopType {
                env: vec![("1X".to_owned(), "x".to_owned())],
                ..desktop_type("a", 0)
            },
        ),
        (
            "env",
            DesktopType {
                env: vec![("A-B".to_owned(), "x".to_owned())],
                ..desktop_type("a", 0)
            },
        ),
        (
            "shm_size_bytes",
            DesktopType {
                shm_size_bytes: -1,
                ..desktop_type("a", 0)
            },
        ),
        (
            "memory_bytes",
            DesktopType {
                memory_bytes: Some(1024),
                ..desktop_type("a", 0)
            },
        ),
        (
            "nano_cpus",
            DesktopType {
                nano_cpus: Some(0),
                ..desktop_type("a", 0)
            },
        ),
        (
            "idle_timeout_secs",
            DesktopType {
                idle_timeout_secs: -1,
                ..desktop_type("a", 0)
            },
        ),
        (
            "max_age_secs",
            DesktopType {
                max_age_secs: -5,
                ..desktop_type("a", 0)
            },
        ),
        (
            "allowed_users",
            DesktopType {
                allowed_users: vec!["no spaces".to_owned()],
                ..desktop_type("a", 0)
            },
        ),
    ];
    for (field, t) in cases {
        match store.upsert_desktop_type(&t).await {
            Err(StoreError::Invalid(message)) => assert!(message.contains(field), "{field}: {message}"),
            other => panic!("{field}: expected Invalid, got {other:?}"),
        }
    }
    assert!(
        store.list_desktop_types().await.expect("list").is_empty(),
        "nothing stored"
    );
}

async fn desktop_types_are_listed_by_sort_order_then_key(store: Store) {
    for (key, order) in [("b", 10), ("a-b", 20), ("ab", 10), ("a1", 10), ("z", -5), ("a", 20)] {
        store
            .upsert_desktop_type(&desktop_type(key, order))
            .await
            .expect("upsert");
    }
    let keys: Vec<String> = store
        .list_desktop_types()
        .await
        .expect("list")
        .into_iter()
        .map(|t| t.key)
        .collect();
    assert_eq!(keys, ["z", "a1", "ab", "b", "a", "a-b"]);
}

async fn desktop_type_update_keeps_created_at(store: Store) {
    let first = store
        .upsert_desktop_type(&desktop_type("vscode", 1))
        .await
        .expect("insert");
    // Timestamps are whole seconds; wait for the next one so a reset would show.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let changed = DesktopType {
        image: "kasmweb/vs-code:1.17.0".to_owned(),
        enabled: false,
        memory_bytes: Some(1 << 30),
        created_at: 0,
        ..first.clone()
    };
    let second = store.upsert_desktop_type(&changed).await.expect("update");
    assert_eq!(second.created_at, first.created_at);
    assert!(second.updated_at > first.updated_at);
    let read = store.desktop_type("vscode").await.expect("get").expect("exists");
    assert_eq!(read, second);
    assert_eq!(read.image, "kasmweb/vs-code:1.17.0");
    assert!(!read.enabled);
    assert_eq!(read.memory_bytes, Some(1 << 30));
    // Clearing a limit again is an update too.
    let cleared = store
        .upsert_desktop_type(&DesktopType {
            memory_bytes: None,
            ..read
        })
        .await
        .expect("update");
    assert_eq!(cleared.memory_bytes, None);
    assert_eq!(store.desktop_type("vscode").await.expect("get"), Some(cleared));
    assert_eq!(store.list_desktop_types().await.expect("list").len(), 1);
}

/// A type from the configuration file is written when its definition is new or changed; a
/// restart with the same file keeps an admin's edits and deletions.
async fn configured_type_is_written_when_new_or_changed_and_admin_edits_are_kept(store: Store) {
    let from_file = desktop_type("vscode", 10);
    assert_eq!(
        store.seed_desktop_type(&from_file).await.expect("seed"),
        Seeded::Written
    );
    // A restart with the same file.
    assert_eq!(store.seed_desktop_type(&from_file).await.expect("seed"), Seeded::Kept);
    // Moving the entry in the file is not a change of its definition.
    let moved = DesktopType {
        sort_order: 30,
        ..from_file.clone()
    };
    assert_eq!(store.seed_desktop_type(&moved).await.expect("seed"), Seeded::Kept);

    // An admin edits it in the web UI; restarts with the same file keep the edit.
    let stored = store.desktop_type("vscode").await.expect("get").expect("exists");
    store
        .upsert_desktop_type(&DesktopType {
            enabled: false,
            ..stored.with_name("de", "Programmieren")
        })
        .await
        .expect("edit");
    assert_eq!(store.seed_desktop_type(&from_file).await.expect("seed"), Seeded::Kept);
    let kept = store.desktop_type("vscode").await.expect("get").expect("exists");
    assert_eq!((kept.name("de"), kept.enabled), ("Programmieren", false));

    // The file's entry changes: the file wins.
    let changed = DesktopType {
        image: "kasmweb/vs-code:1.17.0".to_owned(),
        ..from_file.clone()
    };
    assert_eq!(store.seed_desktop_type(&changed).await.expect("seed"), Seeded::Written);
    let now = store.desktop_type("vscode").await.expect("get").expect("exists");
    assert_eq!(now.image, "kasmweb/vs-code:1.17.0");
    assert_eq!((now.name("de"), now.enabled), (from_file.name("de"), true));

    // Deleted by an admin: stays deleted while the file is unchanged, returns when it changes.
    store.delete_desktop_type("vscode").await.expect("delete");
    assert_eq!(store.seed_desktop_type(&changed).await.expect("seed"), Seeded::Kept);
    assert!(store.desktop_type("vscode").await.expect("get").is_none());
    assert_eq!(
        store.seed_desktop_type(&from_file).await.expect("seed"),
        Seeded::Written
    );
    assert!(store.desktop_type("vscode").await.expect("get").is_some());

    // Turning internet access off in the file is a change (and is stored).
    let exam = DesktopType {
        internet: false,
        ..from_file.clone()
    };
    assert_eq!(store.seed_desktop_type(&exam).await.expect("seed"), Seeded::Written);
    assert!(
        !store
            .desktop_type("vscode")
            .await
            .expect("get")
            .expect("exists")
            .internet
    );

    // An invalid definition is refused and leaves no fingerprint behind.
    let invalid = DesktopType {
        key: "bad".to_owned(),
        image: String::new(),
        ..from_file
    };
    assert!(matches!(
        store.seed_desktop_type(&invalid).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(store.setting("config_desktop_type:bad").await.expect("setting"), None);
}

async fn desktop_type_with_desktops_cannot_be_deleted(store: Store) {
    let (_, id) = user_with_desktop(&store, "anna", "ubuntu").await;
    store
        .upsert_desktop_type(&desktop_type("unused", 0))
        .await
        .expect("upsert");
    let refused = store.delete_desktop_type("ubuntu").await;
    assert!(matches!(refused, Err(StoreError::Conflict(_))), "{refused:?}");
    assert!(store.desktop_type("ubuntu").await.expect("get").is_some());

    store.delete_desktop_type("unused").await.expect("delete unused");
    store
        .delete_desktop_type("unused")
        .await
        .expect("deleting twice is fine");
    store.delete_desktop(&id).await.expect("delete desktop");
    store.delete_desktop_type("ubuntu").await.expect("delete now");
    assert!(store.list_desktop_types().await.expect("list").is_empty());
}

async fn ensure_desktop_is_idempotent(store: Store) {
    let anna = person(&store, "anna").await;
    store
        .upsert_desktop_type(&desktop_type("ubuntu", 0))
        .await
        .expect("upsert");
    let first = store
        .ensure_desktop("anna-ubuntu", &anna.id, "ubuntu")
        .await
        .expect("ensure");
    assert_eq!(first.id, "anna-ubuntu");
    assert_eq!(first.user_id, anna.id);
    assert_eq!(first.username, "anna");
    assert_eq!(first.type_key, "ubuntu");
    assert_eq!(first.state, DesktopState::Stopped);
    assert_eq!(first.state_reason, None);
    assert_eq!(
        (first.container_id.as_deref(), first.host.as_deref(), first.port),
        (None, None, None)
    );
    assert_eq!(
        (first.started_at, first.stopped_at, first.last_activity_at),
        (None, None, None)
    );
    let password = first.vnc_password.expose_secret();
    assert_eq!(password.len(), 32);
    assert!(
        password
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    );

    let again = store
        .ensure_desktop("anna-ubuntu", &anna.id, "ubuntu")
        .await
        .expect("ensure");
    assert_eq!(
        again.vnc_password.expose_secret(),
        password,
        "same desktop, same password"
    );
    assert_eq!(again.created_at, first.created_at);
    // The existing desktop wins over a differently named request (e.g. after a rename).
    let renamed = store
        .ensure_desktop("other-id", &anna.id, "ubuntu")
        .await
        .expect("ensure");
    assert_eq!(renamed.id, "anna-ubuntu");
    assert!(store.desktop("other-id").await.expect("get").is_none());
    // The join shows the current username.
    store
        .upsert_external_user(&external("sub-anna", "anna.neu", &[]))
        .await
        .expect("rename");
    assert_eq!(get_desktop(&store, "anna-ubuntu").await.username, "anna.neu");

    // Another user's desktop with a colliding id.
    let bert = person(&store, "bert").await;
    let taken = store.ensure_desktop("anna-ubuntu", &bert.id, "ubuntu").await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    let missing_user = store.ensure_desktop("x-ubuntu", "no-such-user", "ubuntu").await;
    assert!(matches!(missing_user, Err(StoreError::NotFound)), "{missing_user:?}");
    let missing_type = store.ensure_desktop("bert-nope", &bert.id, "nope").await;
    assert!(matches!(missing_type, Err(StoreError::NotFound)), "{missing_type:?}");
    let bad_id = store.ensure_desktop("Bert Ubuntu", &bert.id, "ubuntu").await;
    assert!(matches!(bad_id, Err(StoreError::Invalid(_))), "{bad_id:?}");
    assert_eq!(store.all_desktops().await.expect("all").len(), 1);
}

async fn concurrent_ensure_desktop_makes_one_row(store: Store) {
    let user = person(&store, "carla").await;
    store
        .upsert_desktop_type(&desktop_type("ubuntu", 0))
        .await
        .expect("upsert");
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            let user_id = user.id.clone();
            tokio::spawn(async move { store.ensure_desktop("carla-ubuntu", &user_id, "ubuntu").await })
        })
        .collect();
    let mut passwords = Vec::new();
    for task in tasks {
        let desktop = task.await.expect("task").expect("ensure");
        assert_eq!(desktop.id, "carla-ubuntu");
        passwords.push(desktop.vnc_password.expose_secret().to_owned());
    }
    passwords.dedup();
    assert_eq!(passwords.len(), 1, "every caller got the same password");
    assert_eq!(store.all_desktops().await.expect("all").len(), 1);
}

async fn claim_start_is_exclusive(store: Store) {
    let (_, id) = user_with_desktop(&store, "dora", "ubuntu").await;
    assert!(store.claim_start(&id).await.expect("claim"), "Stopped → Starting");
    let desktop = get_desktop(&store, &id).await;
    assert_eq!(desktop.state, DesktopState::Starting);
    assert!(!store.claim_start(&id).await.expect("claim"), "already Starting");
    store.mark_running(&id, "c1", "10.0.0.2", 6901).await.expect("running");
    assert!(!store.claim_start(&id).await.expect("claim"), "Running");
    store
        .mark_state(&id, DesktopState::Stopping, None)
        .await
        .expect("stopping");
    assert!(!store.claim_start(&id).await.expect("claim"), "Stopping");
    store
        .mark_state(&id, DesktopState::Failed, Some("out of memory"))
        .await
        .expect("failed");
    assert!(store.claim_start(&id).await.expect("claim"), "Failed → Starting");
    let desktop = get_desktop(&store, &id).await;
    assert_eq!(desktop.state, DesktopState::Starting);
    assert_eq!(desktop.state_reason, None, "a new start clears the old reason");
    let missing = store.claim_start("no-such-desktop").await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");

    // Concurrent claims: exactly one wins.
    store
        .mark_state(&id, DesktopState::Stopped, None)
        .await
        .expect("stopped");
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            let id = id.clone();
            tokio::spawn(async move { store.claim_start(&id).await })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        if task.await.expect("task").expect("claim") {
            won += 1;
        }
    }
    assert_eq!(won, 1);
}

async fn desktop_state_transitions(store: Store) {
    let (_, id) = user_with_desktop(&store, "emil", "ubuntu").await;
    let before = unix_now();
    assert!(store.claim_start(&id).await.expect("claim"));
    store
        .mark_running(&id, "abc123", "10.0.0.7", 6901)
        .await
        .expect("running");
    let running = get_desktop(&store, &id).await;
    assert_eq!(running.state, DesktopState::Running);
    assert_eq!(running.container_id.as_deref(), Some("abc123"));
    assert_eq!(running.host.as_deref(), Some("10.0.0.7"));
    assert_eq!(running.port, Some(6901));
    let started = running.started_at.expect("started_at");
    assert!(started >= before && started <= unix_now());
    assert_eq!(running.last_activity_at, Some(started));
    assert_eq!(running.stopped_at, None);

    store.touch_activity(&id, started + 100).await.expect("touch");
    assert_eq!(get_desktop(&store, &id).await.last_activity_at, Some(started + 100));
    store.touch_activity(&id, started - 7200).await.expect("backdate");
    assert_eq!(get_desktop(&store, &id).await.last_activity_at, Some(started - 7200));
    store.touch_activity(&id, started + 100).await.expect("touch");
    let missing = store.touch_activity("no-such-desktop", started).await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");

    store
        .mark_state(&id, DesktopState::Stopping, Some("idle for 30 min"))
        .await
        .expect("stopping");
    let stopping = get_desktop(&store, &id).await;
    assert_eq!(stopping.state, DesktopState::Stopping);
    assert_eq!(stopping.state_reason.as_deref(), Some("idle for 30 min"));
    assert_eq!(
        stopping.host.as_deref(),
        Some("10.0.0.7"),
        "still reachable while stopping"
    );

    store
        .mark_state(&id, DesktopState::Stopped, Some("idle for 30 min"))
        .await
        .expect("stopped");
    let stopped = get_desktop(&store, &id).await;
    assert_eq!(stopped.state, DesktopState::Stopped);
    assert_eq!(stopped.state_reason.as_deref(), Some("idle for 30 min"));
    assert_eq!((stopped.host, stopped.port), (None, None), "no address while stopped");
    assert_eq!(
        stopped.container_id.as_deref(),
        Some("abc123"),
        "container kept for restart or removal"
    );
    let stopped_at = stopped.stopped_at.expect("stopped_at");
    assert!(stopped_at >= started);
    assert_eq!(stopped.started_at, Some(started));
    assert_eq!(stopped.last_activity_at, Some(started + 100));

    // Failed after Stopped keeps the time it stopped running.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    store
        .mark_state(&id, DesktopState::Failed, Some("image gone"))
        .await
        .expect("failed");
    let failed = get_desktop(&store, &id).await;
    assert_eq!(failed.state, DesktopState::Failed);
    assert_eq!(failed.state_reason.as_deref(), Some("image gone"));
    assert_eq!(failed.stopped_at, Some(stopped_at));

    // Running again: reason and stop time cleared, new address.
    assert!(store.claim_start(&id).await.expect("claim"));
    store
        .mark_running(&id, "def456", "10.0.0.8", 6902)
        .await
        .expect("running");
    let again = get_desktop(&store, &id).await;
    assert_eq!(again.state_reason, None);
    assert_eq!(again.stopped_at, None);
    assert_eq!(again.container_id.as_deref(), Some("def456"));
    assert_eq!((again.host.as_deref(), again.port), (Some("10.0.0.8"), Some(6902)));

    // A start that fails before running.
    store
        .mark_state(&id, DesktopState::Stopped, None)
        .await
        .expect("stopped");
    assert_eq!(
        get_desktop(&store, &id).await.state_reason,
        None,
        "None clears the reason"
    );
    let long = "x".repeat(5000);
    store
        .mark_state(&id, DesktopState::Failed, Some(&long))
        .await
        .expect("long reason");
    assert_eq!(get_desktop(&store, &id).await.state_reason.map(|r| r.len()), Some(1000));

    let missing = store.mark_state("no-such-desktop", DesktopState::Stopped, None).await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
    let missing = store.mark_running("no-such-desktop", "c", "h", 1).await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
    let bad_port = store.mark_running(&id, "c", "h", 0).await;
    assert!(matches!(bad_port, Err(StoreError::Invalid(_))), "{bad_port:?}");
}

async fn stale_transitions_are_found(store: Store) {
    let (_, starting) = user_with_desktop(&store, "finn", "ubuntu").await;
    let (_, stopping) = user_with_desktop(&store, "gina", "ubuntu").await;
    let (_, running) = user_with_desktop(&store, "hugo", "ubuntu").await;
    let (_, stopped) = user_with_desktop(&store, "ines", "ubuntu").await;
    for id in [&starting, &stopping, &running] {
        assert!(store.claim_start(id).await.expect("claim"));
    }
    store
        .mark_state(&stopping, DesktopState::Stopping, None)
        .await
        .expect("stopping");
    store.mark_running(&running, "c", "h", 6901).await.expect("running");
    let now = unix_now();
    assert!(
        store.stale_transitions(now - 60).await.expect("stale").is_empty(),
        "all fresh"
    );
    let stale: Vec<String> = store
        .stale_transitions(now + 2)
        .await
        .expect("stale")
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(stale, [starting, stopping]);
    assert!(!stale.contains(&stopped));
}

async fn desktop_listings(store: Store) {
    store
        .upsert_desktop_type(&desktop_type("zz-first", 1))
        .await
        .expect("upsert");
    store
        .upsert_desktop_type(&desktop_type("aa-second", 2))
        .await
        .expect("upsert");
    let jan = person(&store, "jan").await;
    let kim = person(&store, "kim").await;
    for (user, key) in [(&jan, "aa-second"), (&kim, "zz-first"), (&jan, "zz-first")] {
        let id = format!("{}-{key}", user.username);
        store.ensure_desktop(&id, &user.id, key).await.expect("ensure");
    }
    let of_jan: Vec<String> = store
        .desktops_of_user(&jan.id)
        .await
        .expect("of user")
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(of_jan, ["jan-zz-first", "jan-aa-second"], "in the order of the types");
    let all: Vec<String> = store
        .all_desktops()
        .await
        .expect("all")
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(all, ["jan-aa-second", "jan-zz-first", "kim-zz-first"]);
    assert!(store.desktops_of_user("nobody").await.expect("of user").is_empty());
}

async fn count_desktops_for_limits(store: Store) {
    let (lea, a) = user_with_desktop(&store, "lea", "ubuntu").await;
    store
        .upsert_desktop_type(&desktop_type("vscode", 0))
        .await
        .expect("upsert");
    let b = store
        .ensure_desktop("lea-vscode", &lea.id, "vscode")
        .await
        .expect("ensure")
        .id;
    let (max, c) = user_with_desktop(&store, "max", "ubuntu").await;
    let (_, _idle) = user_with_desktop(&store, "nils", "ubuntu").await;
    for id in [&a, &b, &c] {
        assert!(store.claim_start(id).await.expect("claim"));
    }
    store.mark_running(&a, "c1", "h", 6901).await.expect("running");
    store.mark_running(&c, "c3", "h", 6901).await.expect("running");
    let active = [DesktopState::Starting, DesktopState::Running];
    let count = |user: Option<&str>, states: &[DesktopState]| {
        let store = store.clone();
        let user = user.map(str::to_owned);
        let states = states.to_vec();
        async move {
            store
                .count_desktops_in_states(user.as_deref(), &states)
                .await
                .expect("count")
        }
    };
    assert_eq!(count(Some(&lea.id), &active).await, 2);
    assert_eq!(count(Some(&max.id), &active).await, 1);
    assert_eq!(count(None, &active).await, 3);
    assert_eq!(count(None, &[DesktopState::Running]).await, 2);
    assert_eq!(count(None, &[DesktopState::Stopped]).await, 1);
    assert_eq!(count(None, &DesktopState::ALL).await, 4);
    assert_eq!(count(None, &[]).await, 0);
    assert_eq!(count(Some("nobody"), &active).await, 0);
    store
        .mark_state(&a, DesktopState::Stopped, Some("user"))
        .await
        .expect("stop");
    assert_eq!(count(Some(&lea.id), &active).await, 1);
}

async fn delete_desktop_clears_current_desktop(store: Store) {
    let (user, id) = user_with_desktop(&store, "olga", "ubuntu").await;
    let new = store.create_session(&user.id, HOUR).await.expect("session");
    store
        .set_current_desktop(&new.session.id, Some(&id))
        .await
        .expect("set");
    store.delete_desktop(&id).await.expect("delete");
    assert!(store.desktop(&id).await.expect("get").is_none());
    let (session, _) = store.session_by_token(&new.token).await.expect("lookup").expect("live");
    assert_eq!(session.current_desktop, None);
    store.delete_desktop(&id).await.expect("deleting twice is fine");
    // A new desktop of the same (user, type) gets a new password.
    let again = store.ensure_desktop(&id, &user.id, "ubuntu").await.expect("ensure");
    assert_eq!(again.state, DesktopState::Stopped);
}

async fn desktop_debug_hides_password(store: Store) {
    let (_, id) = user_with_desktop(&store, "paula", "ubuntu").await;
    let desktop = get_desktop(&store, &id).await;
    let debug = format!("{desktop:?}");
    assert!(!debug.contains(desktop.vnc_password.expose_secret()), "{debug}");
    assert!(debug.contains("REDACTED"), "{debug}");
    assert!(debug.contains(&id), "{debug}");
}

async fn deleting_a_user_deletes_their_desktops(store: Store, url: String) {
    // The store has no user deletion yet; the foreign key is what matters, so delete in SQL.
    let (quinn, id) = user_with_desktop(&store, "quinn", "ubuntu").await;
    let (_, other) = user_with_desktop(&store, "rosa", "ubuntu").await;
    let pool = sqlx::AnyPool::connect(&url).await.expect("connect");
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(&quinn.id)
        .execute(&pool)
        .await
        .expect("delete user");
    pool.close().await;
    assert!(store.desktop(&id).await.expect("get").is_none(), "cascaded");
    assert!(store.desktop(&other).await.expect("get").is_some());
    assert_eq!(
        store
            .count_desktops_in_states(None, &DesktopState::ALL)
            .await
            .expect("count"),
        1
    );
}

// ---------------------------------------------------------------------------------------------
// SQLite-only behaviour

#[tokio::test]
async fn sqlite_memory_url_works() {
    let store = Store::connect("sqlite::memory:").await.expect("connect");
    let user = local(&store, "olga", Role::Student).await;
    let new = store.create_session(&user.id, HOUR).await.expect("session");
    // The single pooled connection keeps the in-memory database alive between calls.
    assert!(store.session_by_token(&new.token).await.expect("lookup").is_some());
    assert_eq!(store.list_users().await.expect("list"), [user]);
}

#[tokio::test]
async fn sqlite_file_and_directory_are_created_in_wal_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("nested/dir/portal.db");
    let store = Store::connect(&format!("sqlite:{}", db.display()))
        .await
        .expect("connect");
    local(&store, "paul", Role::Student).await;
    assert!(db.exists(), "database file created");
    let wal = dir.path().join("nested/dir/portal.db-wal");
    assert!(wal.exists(), "journal_mode=WAL");
}

#[tokio::test]
async fn unsupported_url_is_invalid() {
    let result = Store::connect("mysql://root@localhost/portal").await;
    assert!(matches!(result, Err(StoreError::Invalid(_))), "{result:?}");
}

async fn audit_log_pages_filters_and_prunes(store: Store) {
    use portal_store::{AuditEvent, AuditFilter, AuditKind};
    for i in 0..7 {
        let kind = if i % 2 == 0 {
            AuditKind::SignIn
        } else {
            AuditKind::DesktopStopped
        };
        let event = AuditEvent::new(kind, format!("e{i}"))
            .actor(if i == 6 { "root" } else { "alice" })
            .user("alice")
            .target("alice-ubuntu");
        store.audit_at(&event, 1_000 + i).await.expect("store call");
    }
    store
        .audit_at(&AuditEvent::new(AuditKind::SignIn, "bob's").user("bob"), 2_000)
        .await
        .expect("store call");
    let page = |kind, user: Option<&str>, offset, limit| AuditFilter {
        kind,
        user: user.map(str::to_owned),
        offset,
        limit,
    };
    let (first, more) = store.audit_page(&page(None, None, 0, 3)).await.expect("store call");
    assert!(more);
    let details: Vec<&str> = first.iter().map(|e| e.detail.as_str()).collect();
    assert_eq!(details, ["bob's", "e6", "e5"], "newest first");
    assert_eq!(first[1].actor.as_deref(), Some("root"));
    let (last, more) = store.audit_page(&page(None, None, 6, 3)).await.expect("store call");
    assert!(!more);
    assert_eq!(last.len(), 2);
    let (sign_ins, _) = store
        .audit_page(&page(Some(AuditKind::SignIn), Some("alice"), 0, 100))
        .await
        .expect("store call");
    assert_eq!(sign_ins.len(), 4);
    assert!(sign_ins.iter().all(|e| e.kind == "sign_in"));
    let (by_root, _) = store
        .audit_page(&page(None, Some("root"), 0, 100))
        .await
        .expect("store call");
    assert_eq!(by_root.len(), 1, "the actor matches too");
    assert!(matches!(
        store.audit_page(&page(None, None, 0, 0)).await,
        Err(StoreError::Invalid(_))
    ));
    let mut last_sign_ins = store.last_sign_ins().await.expect("store call");
    last_sign_ins.sort();
    assert_eq!(last_sign_ins, [("alice".to_owned(), 1_006), ("bob".to_owned(), 2_000)]);
    assert_eq!(store.prune_audit(1_004).await.expect("store call"), 4);
    let (rest, _) = store.audit_page(&page(None, None, 0, 100)).await.expect("store call");
    assert_eq!(rest.len(), 4);
}

async fn settings_and_images_round_trip(store: Store) {
    assert_eq!(store.setting("school_name").await.expect("store call"), None);
    store
        .set_setting("school_name", Some("Schule"))
        .await
        .expect("store call");
    store
        .set_setting("school_name", Some("Schule am See"))
        .await
        .expect("store call");
    store
        .set_setting("primary_color", Some("#0b62c4"))
        .await
        .expect("store call");
    assert_eq!(
        store.setting("school_name").await.expect("store call").as_deref(),
        Some("Schule am See")
    );
    let all: Vec<String> = store
        .settings()
        .await
        .expect("store call")
        .into_iter()
        .map(|(k, _, _)| k)
        .collect();
    assert_eq!(all, ["primary_color", "school_name"]);
    store.set_setting("school_name", None).await.expect("store call");
    assert_eq!(store.setting("school_name").await.expect("store call"), None);
    assert!(matches!(
        store.set_setting("x", Some(&"y".repeat(5000))).await,
        Err(StoreError::Invalid(_))
    ));

    let png = b"\x89PNG\r\n\x1a\n\0\xff binary";
    store.put_image("logo", "image/png", png).await.expect("store call");
    let image = store.image("logo").await.expect("store call").expect("store call");
    assert_eq!(
        (image.content_type.as_str(), image.data.as_slice()),
        ("image/png", &png[..])
    );
    store
        .put_image("logo", "image/webp", b"RIFF....WEBP")
        .await
        .expect("store call");
    assert_eq!(
        store
            .image("logo")
            .await
            .expect("store call")
            .expect("store call")
            .content_type,
        "image/webp"
    );
    assert!(matches!(
        store.put_image("logo", "image/svg+xml", b"<svg/>").await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(store.image_versions().await.expect("store call").len(), 1);
    store.delete_image("logo").await.expect("store call");
    assert_eq!(store.image("logo").await.expect("store call"), None);
}

async fn admins_change_roles_and_delete_users(store: Store) {
    let (alice, _) = user_with_desktop(&store, "alice", "ubuntu").await;
    store.set_user_role(&alice.id, Role::Teacher).await.expect("store call");
    assert_eq!(
        store
            .user_by_id(&alice.id)
            .await
            .expect("store call")
            .expect("store call")
            .role,
        Role::Teacher
    );
    assert!(matches!(
        store.set_user_role("nope", Role::Admin).await,
        Err(StoreError::NotFound)
    ));
    store
        .create_session(&alice.id, Duration::from_secs(60))
        .await
        .expect("store call");
    let starts = store.latest_session_starts().await.expect("store call");
    assert_eq!(starts.len(), 1);
    assert_eq!(starts[0].0, alice.id);
    store.delete_user(&alice.id).await.expect("store call");
    assert!(store.user_by_id(&alice.id).await.expect("store call").is_none());
    assert!(store.desktops_of_user(&alice.id).await.expect("store call").is_empty());
    assert!(matches!(store.delete_user(&alice.id).await, Err(StoreError::NotFound)));
}

/// A type allowed to "ben" by name is allowed to that person: IServ renaming ben moves the
/// grant with him, a newcomer holding "ben" does not get it; deleting an account takes it away
/// (a re-created name does not inherit it) and a restore gives it back. A deleted IServ
/// account cannot sign in again until restored or forgotten.
async fn a_type_allowed_to_a_name_follows_the_person(store: Store) {
    let mut t = desktop_type("code", 1);
    t.allowed_users = vec!["ben".into(), "dora".into()];
    store.upsert_desktop_type(&t).await.expect("type");
    let allowed = |store: &Store| {
        let store = store.clone();
        async move {
            store
                .desktop_type("code")
                .await
                .expect("get")
                .expect("type")
                .allowed_users
        }
    };

    let ben = store
        .upsert_external_user(&external("uuid-1", "ben", &[]))
        .await
        .expect("ben");
    store
        .upsert_external_user(&external("uuid-1", "benjamin", &[]))
        .await
        .expect("rename");
    assert_eq!(allowed(&store).await, ["benjamin", "dora"]);
    store
        .upsert_external_user(&external("uuid-2", "ben", &[]))
        .await
        .expect("newcomer");
    assert_eq!(allowed(&store).await, ["benjamin", "dora"], "the newcomer gets nothing");

    let dora = local(&store, "dora", Role::Student).await;
    store
        .delete_user_keeping_home(&dora.id, "root", 2_000_000_000)
        .await
        .expect("delete");
    assert_eq!(allowed(&store).await, ["benjamin"]);
    store.restore_user(&dora.id).await.expect("restore");
    assert_eq!(allowed(&store).await, ["benjamin", "dora"]);

    store
        .delete_user_keeping_home(&ben.id, "root", 2_000_000_000)
        .await
        .expect("delete ben");
    let refused = store.upsert_external_user(&external("uuid-1", "benjamin", &[])).await;
    assert!(
        matches!(&refused, Err(StoreError::AccountDeleted(name, 2_000_000_000)) if name == "benjamin"),
        "{refused:?}"
    );
    assert!(store.user_by_username("benjamin").await.expect("get").is_none());
    store.forget_deleted_user(&ben.id).await.expect("forget");
    let fresh = store
        .upsert_external_user(&external("uuid-1", "benjamin", &[]))
        .await
        .expect("anew");
    assert_ne!(fresh.id, ben.id);
    assert_eq!(allowed(&store).await, ["dora"], "a purged account's grant stays gone");
}

fn sign_in(state: &str, source: &str) -> PendingSignIn {
    PendingSignIn {
        state: state.to_owned(),
        binding: format!("binding-{state}"),
        nonce: "nonce".to_owned(),
        pkce_verifier: "verifier".to_owned(),
        return_to: "/files".to_owned(),
        source: source.to_owned(),
    }
}

async fn pending_sign_ins_are_single_use_hashed_and_a_flood_pushes_out_its_own(store: Store) {
    store
        .put_pending_sign_in(&sign_in("real", "10.0.0.1"), HOUR)
        .await
        .expect("put");
    // One source far beyond its share keeps only its newest.
    for i in 0..MAX_SIGN_INS_PER_SOURCE + 20 {
        store
            .put_pending_sign_in(&sign_in(&format!("flood{i}"), "10.6.6.6"), HOUR)
            .await
            .expect("put");
    }
    assert_eq!(store.take_pending_sign_in("flood0").await.expect("take"), None);
    let newest = format!("flood{}", MAX_SIGN_INS_PER_SOURCE + 19);
    assert!(store.take_pending_sign_in(&newest).await.expect("take").is_some());
    // The real sign-in survived, once, with what the callback needs.
    let taken = store.take_pending_sign_in("real").await.expect("take").expect("kept");
    assert_eq!(taken.binding_id, handover_id("binding-real"));
    assert_eq!(
        (taken.nonce.as_str(), taken.return_to.as_str(), taken.expired),
        ("nonce", "/files", false)
    );
    assert_eq!(store.take_pending_sign_in("real").await.expect("take"), None);
    // Expired: taken out, and said so; purged by the leader's sweep otherwise.
    store
        .put_pending_sign_in(&sign_in("short", "10.0.0.2"), Duration::from_millis(1))
        .await
        .expect("put");
    store
        .put_pending_sign_in(&sign_in("stale", "10.0.0.2"), Duration::from_millis(1))
        .await
        .expect("put");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        store
            .take_pending_sign_in("short")
            .await
            .expect("take")
            .expect("there")
            .expired
    );
    assert!(store.purge_expired_tickets().await.expect("purge") >= 1);
    assert_eq!(store.take_pending_sign_in("stale").await.expect("take"), None);
}

/// Two processes opening one new SQLite file at once (the service starting while an admin runs
/// `iserv-remote-desktop user add`) both migrate it: neither may fail with "table … already
/// exists". Separate runtimes on separate threads, as separate processes would be.
#[test]
fn two_stores_opening_one_new_sqlite_file_at_once_both_migrate_it() {
    for round in 0..5 {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/portal.db", dir.path().display());
        let openers: Vec<_> = (0..2)
            .map(|_| {
                let url = url.clone();
                std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("runtime");
                    rt.block_on(async { Store::connect(&url).await.map(|_| ()).map_err(|e| e.to_string()) })
                })
            })
            .collect();
        for opener in openers {
            let opened = opener.join().expect("thread");
            assert!(opened.is_ok(), "round {round}: {opened:?}");
        }
    }
}
