//! Language: the browser's Accept-Language decides (German by default), the switch sets a
//! cookie for anyone and is remembered per user, so a signed-in user's next browser speaks
//! their language too.

use crate::helpers::*;

async fn page(b: &Browser, path: &str, accept: &str) -> String {
    b.get(path)
        .header("accept-language", accept)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn accept_language_decides_until_the_user_switches_and_the_choice_follows_them() {
    let app = spawn_app(&[]).await;
    let visitor = Browser::new(&app);
    assert!(
        page(&visitor, "/login", "de-DE,de;q=0.9,en;q=0.8")
            .await
            .contains("<html lang=\"de\">")
    );
    assert!(
        page(&visitor, "/login", "en-GB,en")
            .await
            .contains("<html lang=\"en\">")
    );
    assert!(
        page(&visitor, "/login", "fr").await.contains("<html lang=\"de\">"),
        "German by default"
    );

    // A signed-out visitor's switch: a cookie, and back to the same page without the parameter.
    let switched = visitor
        .get("/login?next=%2F&lang=en")
        .header("accept-language", "de")
        .send()
        .await
        .unwrap();
    assert_eq!(switched.status(), 303);
    assert_eq!(switched.headers()["location"], "/login?next=%2F");
    let cookie = switched.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.starts_with("lang=en;") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(page(&visitor, "/login", "de").await.contains("<html lang=\"en\">"));

    // A signed-in user's switch is remembered for them.
    let alice = sign_in(&app, "alice").await;
    assert!(page(&alice, "/", "de").await.contains("Deine Desktops"));
    let resp = alice.get("/?lang=en").send().await.unwrap();
    assert_eq!(resp.status(), 303);
    let stored = app.state.store.user_by_username("alice").await.unwrap().unwrap();
    assert_eq!(stored.language.as_deref(), Some("en"));
    assert!(page(&alice, "/", "de").await.contains("Your desktops"));

    // Another browser, German by its settings, no cookie yet: alice's choice applies, and
    // the browser keeps it from then on.
    let elsewhere = sign_in(&app, "alice").await;
    let resp = elsewhere.get("/").header("accept-language", "de").send().await.unwrap();
    assert!(
        resp.headers()["set-cookie"].to_str().unwrap().starts_with("lang=en;"),
        "the remembered language is handed to the new browser"
    );
    assert!(resp.text().await.unwrap().contains("Your desktops"));
    // Errors speak it too.
    let missing = page(&elsewhere, "/nope", "de").await;
    assert!(missing.contains("This page does not exist."), "{missing}");
    // bob never chose: his browser decides.
    let bob = sign_in(&app, "bob").await;
    assert!(page(&bob, "/", "de").await.contains("Deine Desktops"));
}

#[tokio::test]
async fn the_switch_offers_every_language_file_under_its_own_name() {
    let app = spawn_app(&[]).await;
    let visitor = Browser::new(&app);
    let html = page(&visitor, "/login", "en").await;
    // One link per folder in crates/portal/locales, named by that file's `language_name`.
    let locales = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("locales");
    let mut codes: Vec<String> = std::fs::read_dir(locales)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    codes.sort();
    assert!(codes.len() >= 2, "{codes:?}");
    for code in &codes {
        assert!(
            html.contains(&format!("href=\"?lang={code}\" hreflang=\"{code}\"")),
            "{code}: {html}"
        );
    }
    assert!(html.contains("title=\"Deutsch\""), "{html}");
    assert!(
        html.contains("title=\"English\" aria-current=\"true\">EN</a>"),
        "the page's own language is marked: {html}"
    );
}
