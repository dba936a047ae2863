//! One behaviour suite for the store, run against SQLite and against PostgreSQL.
//!
//! Each case is an `async fn` taking a fresh, migrated [`Store`]. The `both_backends!` macro
//! turns every case into `sqlite::<case>` (a new database file in a temporary directory) and
//! `postgres::<case>` (a new database on the server named by `TEST_DATABASE_URL`, dropped
//! afterwards). Start a server with `export TEST_DATABASE_URL=$(scripts/start-postgres.sh)`.

use std::future::Future;
use std::panic::resume_unwind;
use std::time::Duration;

use portal_store::{Backend, ExternalUser, Role, Store, StoreError, User};
use secrecy::SecretString;
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
        concurrent_first_sign_ins_make_one_user,
        list_users_is_ordered_by_username,
        user_language,
    ],
    with_url: [migrations_are_idempotent]
);

// ---------------------------------------------------------------------------------------------
// Cases

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
    assert_eq!(store.user_by_username("jana").await.expect("lookup"), None);
    assert_eq!(store.list_users().await.expect("list"), [second]);
}

async fn external_user_links_local_user(store: Store) {
    let local_user = local(&store, "karla", Role::Teacher).await;
    let linked = store
        .upsert_external_user(&external("sub-k", "Karla", &["lehrer"]))
        .await
        .expect("link");
    assert_eq!(linked.id, local_user.id, "same account, so desktops and files stay");
    assert_eq!(linked.external_subject.as_deref(), Some("sub-k"));
    assert_eq!(linked.role, Role::Student, "the provider decides the role");
    assert_eq!(linked.groups, ["lehrer"]);
    assert!(linked.has_password, "the local password is kept");
    assert!(
        store
            .verify_password("karla", "correct horse")
            .await
            .expect("verify")
            .is_some()
    );

    // The username now belongs to subject sub-k; another subject cannot take it over.
    let other = store.upsert_external_user(&external("sub-other", "karla", &[])).await;
    assert!(matches!(other, Err(StoreError::Conflict(_))), "{other:?}");
    // Renaming into a local user's name is refused too, rather than merging two accounts.
    local(&store, "lena", Role::Student).await;
    let rename = store.upsert_external_user(&external("sub-k", "lena", &[])).await;
    assert!(matches!(rename, Err(StoreError::Conflict(_))), "{rename:?}");
    assert_eq!(store.list_users().await.expect("list").len(), 2);
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
