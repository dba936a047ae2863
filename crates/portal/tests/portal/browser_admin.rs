//! The admin page in real Chromium on Docker: branding set through the form shows in the
//! header, resource use arrives after the page, select-all, and a stop that asks first (and
//! does nothing when the admin says no), and a button that calls the JSON API. Saves `target/test-artifacts/admin.png` (and
//! `docs/screenshot-admin.png` with `IRD_SCREENSHOTS=1`).

use fantoccini::Locator;

use crate::browser::{Chrome, browser_ready};
use crate::docker::{docker_app, docker_ready, start_desktop};
use crate::helpers::*;

#[tokio::test]
async fn the_admin_page_brands_the_portal_shows_resource_use_and_confirms_before_stopping() {
    if !browser_ready() || !docker_ready() {
        return;
    }
    let (app, _scope) = docker_app("browseradmin", |_| {}).await;
    let (alice, bob) = (sign_in(&app, "alice").await, sign_in(&app, "bob").await);
    let (a, b) = tokio::join!(start_desktop(&alice, "fake"), start_desktop(&bob, "other"));
    assert_eq!((a.0, b.0), (202, 202));
    let chrome = Chrome::start().await;
    let c = &chrome.client;
    chrome.goto(&app, "/login?lang=en").await;
    chrome.sign_in(&app, "root").await;

    // Branding through the form, as an admin would.
    chrome.goto(&app, "/admin/branding").await;
    let name = c.find(Locator::Css("input[name=school_name]")).await.unwrap();
    name.send_keys("Gesamtschule Am Park").await.unwrap();
    c.execute(
        "document.querySelector('input[name=primary_color]').value = '#2e7d32';",
        vec![],
    )
    .await
    .unwrap();
    c.find(Locator::Css("form[action='/admin/branding'] button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    chrome
        .wait_until(
            "the header to show the school",
            "return (document.querySelector('[data-role=school-name]') || {}).textContent === 'Gesamtschule Am Park';",
        )
        .await;
    chrome
        .wait_until(
            "the school's colour on the header",
            "return getComputedStyle(document.querySelector('header.bar')).backgroundColor === 'rgb(46, 125, 50)';",
        )
        .await;

    // The overview: both desktops, then their CPU and memory once the engine has measured.
    chrome.goto(&app, "/admin").await;
    chrome
        .wait_until(
            "CPU and memory of both desktops",
            "const rows = [...document.querySelectorAll('tr[data-desktop-id]')];
             return rows.length === 2 && rows.every(r => r.querySelector('[data-memory]').textContent.includes('MiB')
                 && r.querySelector('[data-cpu]').textContent.includes('%'));",
        )
        .await;
    let title = c.title().await.unwrap();
    assert_eq!(title, "Administration · IServ Remote Desktop · Gesamtschule Am Park");
    chrome.screenshot("admin").await;

    // Select all checks every row.
    c.find(Locator::Css("input[data-select-all]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let checked = c
        .execute(
            "return [...document.querySelectorAll('input[name=id]')].every(b => b.checked);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(checked, true);

    // Stop asks first: "cancel" leaves the desktop running, "OK" stops it.
    let stop = "tr[data-desktop-id='alice-fake'] button[value='stop:alice-fake']";
    c.find(Locator::Css(stop)).await.unwrap().click().await.unwrap();
    let question = c.get_alert_text().await.unwrap();
    assert!(question.contains("Unsaved work"), "{question}");
    c.dismiss_alert().await.unwrap();
    let state = async || app.state.store.desktop("alice-fake").await.unwrap().unwrap().state;
    assert_eq!(state().await, portal_store::DesktopState::Running);
    c.find(Locator::Css(stop)).await.unwrap().click().await.unwrap();
    c.accept_alert().await.unwrap();
    chrome
        .wait_until(
            "the overview to show alice's desktop stopped",
            "const row = document.querySelector(\"tr[data-desktop-id='alice-fake']\");
             return location.pathname === '/admin' && !!row && row.textContent.includes('Stopped');",
        )
        .await;
    assert_eq!(state().await, portal_store::DesktopState::Stopped);

    // A button that calls the JSON API (through portal.js, with the CSRF token): alice's
    // sessions end, and the page says so.
    chrome.goto(&app, "/admin/users").await;
    c.execute("window.confirm = () => true; return true;", vec![])
        .await
        .unwrap();
    c.find(Locator::Css(
        "button[data-api-post='/api/admin/users/alice/end-sessions']",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    chrome
        .wait_until(
            "the users page to confirm the ended sessions",
            "return document.querySelector('[data-role=admin-result]').textContent === 'Sessions ended.';",
        )
        .await;
    assert_eq!(
        alice.get("/").send().await.unwrap().status(),
        303,
        "alice is signed out"
    );
    chrome.close().await;
}
