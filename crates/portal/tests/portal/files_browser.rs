//! The file manager in real Chromium: drag-and-drop upload with a progress bar per file
//! (files, and a folder dropped through DevTools' `Input.dispatchDragEvent`), the folder
//! picker with and without JavaScript, rename, delete and restore from the trash, moving
//! with the plain selection form, and previews — images and text on the portal
//! (sandboxed), PDFs on the preview origin, and hostile SVG/HTML that never runs with the
//! portal's origin or cookies.

use fantoccini::Locator;
use serde_json::Value;

use crate::browser::{Chrome, browser_ready};
use crate::helpers::*;

/// A 3×3 red PNG.
const PNG: &[u8] = &[
    137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 3, 0, 0, 0, 3, 8, 2, 0, 0, 0, 217, 74, 34,
    232, 0, 0, 0, 16, 73, 68, 65, 84, 120, 156, 99, 248, 207, 192, 0, 65, 12, 88, 88, 0, 143, 142, 8, 248, 145, 99,
    196, 185, 0, 0, 0, 0, 73, 69, 78, 68, 174, 66, 96, 130,
];

/// A one-page PDF saying "Hallo PDF" (offsets in its xref table are exact).
const PDF: &[u8] = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>\nendobj\n4 0 obj\n<< /Length 40 >>\nstream\nBT /F1 24 Tf 20 100 Td (Hallo PDF) Tj ET\nendstream\nendobj\n5 0 obj\n<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>\nendobj\nxref\n0 6\n0000000000 65535 f \n0000000009 00000 n \n0000000058 00000 n \n0000000115 00000 n \n0000000241 00000 n \n0000000331 00000 n \ntrailer\n<< /Size 6 /Root 1 0 R >>\nstartxref\n401\n%%EOF\n";

/// What a hostile file's script would do on the portal's origin: read the CSRF token from
/// the file manager and store a file with the user's session, and show the cookie.
const STEAL: &str = "document.title = 'PWNED ' + document.cookie; \
    fetch('/files/home/').then(r => r.text()).then(t => { \
      const token = /name=\"csrf-token\" content=\"([^\"]+)\"/.exec(t)[1]; \
      return fetch('/api/files/home/pwned.txt', {method: 'PUT', headers: {'x-csrf-token': token}, body: document.cookie}); \
    });";

/// Pure white pixels in a PNG screenshot.
fn white_pixels(png_bytes: &[u8]) -> usize {
    let mut reader = png::Decoder::new(std::io::Cursor::new(png_bytes)).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let step = info.color_type.samples();
    buf[..info.buffer_size()]
        .chunks(step)
        .filter(|p| p[..3] == [255, 255, 255])
        .count()
}

async fn js(chrome: &Chrome, code: &str) -> Value {
    chrome.client.execute(code, vec![]).await.unwrap()
}

async fn wait_done(chrome: &Chrome, done: &str) {
    chrome
        .wait_until(
            &format!("the page after '{done}'"),
            &format!("return location.search === '?done={done}' && document.readyState === 'complete';"),
        )
        .await;
}

#[tokio::test]
async fn files_are_dropped_renamed_trashed_restored_moved_and_previewed_in_chromium() {
    if !browser_ready() {
        return;
    }
    let app = spawn_app_with(&[], with_desktop_origins).await;
    let chrome = Chrome::start().await;
    chrome.sign_in(&app, "alice").await;
    chrome.goto(&app, "/files/home/").await;
    chrome
        .wait_until(
            "the drop zone",
            "return !document.querySelector('[data-role=drop]').hidden;",
        )
        .await;

    // Drag and drop of files: a synthetic DragEvent carrying a DataTransfer built in the page
    // (the browser's own type); files.js handles it exactly as a real drop. A drop made by
    // the browser itself, with a folder, is `a_folder_dropped_by_the_browser_itself_…`. The progress
    // list is recorded as it changes, since the page reloads when all uploads are done.
    js(
        &chrome,
        "const list = document.querySelector('[data-role=progress]'); \
         new MutationObserver(() => sessionStorage.setItem('progress', JSON.stringify( \
           [...list.querySelectorAll('li')].map(li => ({text: li.textContent, bar: li.querySelector('progress')?.value}))))) \
           .observe(list, {subtree: true, childList: true, attributes: true, characterData: true}); \
         const dt = new DataTransfer(); \
         dt.items.add(new File([new Uint8Array(3 * 1024 * 1024).fill(7)], 'Großes Video.bin')); \
         dt.items.add(new File(['Hallo Welt'], 'Übung 1.txt', {type: 'text/plain'})); \
         document.querySelector('[data-role=drop]').dispatchEvent( \
           new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true})); \
         return true;",
    )
    .await;
    wait_done(&chrome, "uploaded").await;
    let progress: Value = serde_json::from_str(
        js(&chrome, "return sessionStorage.getItem('progress');")
            .await
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let items = progress.as_array().unwrap();
    assert_eq!(items.len(), 2, "one progress bar per file: {progress}");
    for (item, name) in items.iter().zip(["Großes Video.bin", "Übung 1.txt"]) {
        assert_eq!(item["bar"], 100, "{progress}");
        assert!(item["text"].as_str().unwrap().starts_with(name), "{progress}");
    }
    let home = {
        let alice = app.state.store.user_by_username("alice").await.unwrap().unwrap();
        app.state.files.home_dir(&alice)
    };
    assert_eq!(
        std::fs::metadata(home.join("Großes Video.bin")).unwrap().len(),
        3 * 1024 * 1024
    );
    assert_eq!(std::fs::read(home.join("Übung 1.txt")).unwrap(), b"Hallo Welt");

    // Rename, as a person types it.
    let input = chrome
        .client
        .find(Locator::Css("tr[data-entry='Übung 1.txt'] input[name=name]"))
        .await
        .unwrap();
    input.clear().await.unwrap();
    input.send_keys("Übung 2.txt").await.unwrap();
    chrome.click("tr[data-entry='Übung 1.txt'] button.secondary").await;
    wait_done(&chrome, "renamed").await;
    assert!(home.join("Übung 2.txt").exists() && !home.join("Übung 1.txt").exists());

    // Delete into the trash, and back.
    chrome.click("tr[data-entry='Übung 2.txt'] button.danger").await;
    wait_done(&chrome, "deleted").await;
    assert!(!home.join("Übung 2.txt").exists());
    assert!(chrome.text("[data-role=trash]").await.contains("Übung 2.txt"));
    chrome.click("[data-role=trash] tr[data-trash] button").await;
    wait_done(&chrome, "restored").await;
    assert_eq!(std::fs::read(home.join("Übung 2.txt")).unwrap(), b"Hallo Welt");

    // A new folder, then the file moved there with the selection form (a plain form post).
    chrome
        .client
        .find(Locator::Css(
            "form input[name=op][value=mkdir] ~ label input[name=name]",
        ))
        .await
        .unwrap()
        .send_keys("Abgabe Mathe")
        .await
        .unwrap();
    chrome
        .click("form:has(input[name=op][value=mkdir]) button[type=submit]")
        .await;
    wait_done(&chrome, "created").await;
    chrome.click("tr[data-entry='Übung 2.txt'] input[type=checkbox]").await;
    chrome
        .client
        .find(Locator::Css("[data-role=target] option[value='home/Abgabe Mathe']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    chrome.click("#selection button[value=move]").await;
    wait_done(&chrome, "moved").await;
    assert!(home.join("Abgabe Mathe/Übung 2.txt").exists());
    chrome.goto(&app, "/files/home/Abgabe%20Mathe/").await;
    assert!(chrome.text("[data-role=entries]").await.contains("Übung 2.txt"));

    // Previews. The files arrive as a desktop would put them into the home.
    std::fs::write(home.join("Bild.png"), PNG).unwrap();
    std::fs::write(home.join("Notiz.txt"), "Hallo aus der Vorschau").unwrap();
    std::fs::write(home.join("Blatt.pdf"), PDF).unwrap();
    std::fs::write(
        home.join("böse.svg"),
        format!("<svg xmlns=\"http://www.w3.org/2000/svg\"><script>{STEAL}</script></svg>"),
    )
    .unwrap();
    std::fs::write(
        home.join("böse.html"),
        format!("<html><body><script>{STEAL}</script></body></html>"),
    )
    .unwrap();

    chrome.goto(&app, "/files/home/Bild.png?preview=1").await;
    chrome
        .wait_until(
            "the image",
            "const i = document.images[0]; return !!i && i.complete && i.naturalWidth === 3;",
        )
        .await;
    chrome.goto(&app, "/files/home/Notiz.txt?preview=1").await;
    chrome
        .wait_until(
            "the text",
            "return document.body.innerText.includes('Hallo aus der Vorschau');",
        )
        .await;

    // The PDF link leads to the preview origin, where Chromium's viewer renders it; that
    // origin has none of the portal's cookies. (Chromium 156 also renders a PDF served with
    // `Content-Security-Policy: sandbox`; older Chromium and other browsers' viewers did not,
    // and a PDF's own scripts and forms would still act on the portal's origin there — the
    // preview origin keeps them off it in every browser.)
    chrome.goto(&app, "/files/home/").await;
    let link = chrome
        .client
        .find(Locator::Css("tr[data-entry='Blatt.pdf'] a[href$='?preview=1']"))
        .await
        .unwrap();
    let href = link.attr("href").await.unwrap().unwrap();
    chrome.goto(&app, &href).await;
    chrome
        .wait_until(
            "the PDF on the preview origin",
            "return location.hostname === 'p0-preview.localhost' && document.contentType === 'application/pdf';",
        )
        .await;
    // Chromium's viewer draws in a frame of its own that scripts and WebDriver cannot see
    // into; the screenshot shows whether it rendered the page (white) on its dark background.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let white = white_pixels(&chrome.client.screenshot().await.unwrap());
        if white > 20_000 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the PDF viewer shows no page ({white} white pixels)"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    assert_eq!(js(&chrome, "return document.cookie;").await, "");

    // Hostile files opened through the preview link's URL: downloaded or sandboxed, their
    // script never runs with the portal's origin (it would have stored pwned.txt).
    for name in ["b%C3%B6se.svg", "b%C3%B6se.html"] {
        chrome.goto(&app, "/files/home/").await;
        js(
            &chrome,
            &format!("location.href = '/files/home/{name}?preview=1'; return true;"),
        )
        .await;
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let title = js(&chrome, "return document.title;").await;
        assert!(!title.as_str().unwrap_or("").starts_with("PWNED"), "{name}: {title}");
        js(
            &chrome,
            &format!("location.href = '/api/files/home/{name}'; return true;"),
        )
        .await;
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        assert!(!home.join("pwned.txt").exists(), "{name}'s script ran as the portal");
    }
    chrome.close().await;
}

/// A folder tree on the machine the browser runs on, as a user would pick it.
fn folder_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let top = dir.path().join("Projekt Ärger");
    std::fs::create_dir_all(top.join("Bilder Öl/tief unten")).unwrap();
    std::fs::write(top.join("Notiz.txt"), "oben").unwrap();
    std::fs::write(top.join("Bilder Öl/Übung ß.txt"), "mitte").unwrap();
    std::fs::write(top.join("Bilder Öl/tief unten/Grüße.bin"), vec![9u8; 300 * 1024]).unwrap();
    dir
}

/// A portal, Chromium signed in as alice, alice's home and a folder tree to upload.
async fn folder_upload_setup() -> (TestApp, Chrome, std::path::PathBuf, tempfile::TempDir) {
    let app = spawn_app(&[]).await;
    let chrome = Chrome::start().await;
    chrome.sign_in(&app, "alice").await;
    let home = {
        let alice = app.state.store.user_by_username("alice").await.unwrap().unwrap();
        app.state.files.home_dir(&alice)
    };
    (app, chrome, home, folder_tree())
}

/// The tree `folder_tree` made, as found under `dir` on the portal's side.
fn assert_tree(dir: &std::path::Path) {
    let top = dir.join("Projekt Ärger");
    assert_eq!(std::fs::read(top.join("Notiz.txt")).unwrap(), b"oben");
    assert_eq!(std::fs::read(top.join("Bilder Öl/Übung ß.txt")).unwrap(), b"mitte");
    assert_eq!(
        std::fs::read(top.join("Bilder Öl/tief unten/Grüße.bin")).unwrap(),
        vec![9u8; 300 * 1024]
    );
    let mut names: Vec<String> = walkdir(&top);
    names.sort();
    assert_eq!(
        names,
        [
            "Bilder Öl",
            "Bilder Öl/tief unten",
            "Bilder Öl/tief unten/Grüße.bin",
            "Bilder Öl/Übung ß.txt",
            "Notiz.txt"
        ],
        "nothing else (no temporary files, no flattened names)"
    );
}

fn walkdir(top: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![top.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(top).unwrap().to_string_lossy().into_owned();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
            out.push(rel);
        }
    }
    out
}

/// Gives the page's folder picker `folder`, as WebDriver gives a file input its files.
async fn choose_folder(chrome: &Chrome, folder: &std::path::Path) {
    chrome
        .client
        .find(Locator::Css("[data-role=folder-form] input[name=folder]"))
        .await
        .unwrap()
        .send_keys(folder.to_str().unwrap())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_folder_is_chosen_and_uploaded_with_its_tree_in_chromium() {
    if !browser_ready() {
        return;
    }
    let (app, chrome, home, picked) = folder_upload_setup().await;
    let folder = picked.path().join("Projekt Ärger");

    // The folder picker (`webkitdirectory`), given the folder as WebDriver gives a file input
    // its files (chromedriver: `DOM.setFileInputFiles`; Chromium lists a folder's files).
    chrome.goto(&app, "/files/home/").await;
    choose_folder(&chrome, &folder).await;
    let chosen = js(
        &chrome,
        "return [...document.querySelector('[data-role=folder-form] input[name=folder]').files] \
           .map(f => f.webkitRelativePath).sort();",
    )
    .await;
    assert_eq!(
        chosen,
        serde_json::json!([
            "Projekt Ärger/Bilder Öl/tief unten/Grüße.bin",
            "Projekt Ärger/Bilder Öl/Übung ß.txt",
            "Projekt Ärger/Notiz.txt"
        ])
    );
    // With JavaScript: folders created first, then each file with its progress bar.
    chrome.click("[data-role=folder-form] button[type=submit]").await;
    wait_done(&chrome, "uploaded").await;
    assert_tree(&home);

    // Without JavaScript: the form posted as it is (`form.submit()` skips files.js), each
    // file named by its path in the folder, as Chromium sends it.
    std::fs::create_dir(home.join("Ohne Skript")).unwrap();
    chrome.goto(&app, "/files/home/Ohne%20Skript/").await;
    choose_folder(&chrome, &folder).await;
    js(
        &chrome,
        "HTMLFormElement.prototype.submit.call(document.querySelector('[data-role=folder-form]')); return true;",
    )
    .await;
    wait_done(&chrome, "uploaded").await;
    assert_tree(&home.join("Ohne Skript"));
    chrome.close().await;
}

/// A DevTools command through chromedriver (`goog/cdp/execute`), for what WebDriver lacks.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/goog/cdp/execute", session_id.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = serde_json::json!({ "cmd": self.cmd, "params": self.params });
        (http::Method::POST, Some(body.to_string()))
    }
}

#[tokio::test]
async fn a_folder_dropped_by_the_browser_itself_is_uploaded_with_its_tree() {
    if !browser_ready() {
        return;
    }
    let (app, chrome, home, picked) = folder_upload_setup().await;
    let folder = picked.path().join("Projekt Ärger");
    chrome.goto(&app, "/files/home/").await;
    js(
        &chrome,
        "document.addEventListener('drop', (e) => sessionStorage.setItem('dropped', JSON.stringify( \
           [...e.dataTransfer.items].map(i => { const en = i.webkitGetAsEntry(); \
             return {kind: i.kind, dir: !!en && en.isDirectory, name: en && en.name}; }))), true); \
         return true;",
    )
    .await;
    // A drag from outside the page as the browser gets it from the desktop: the folder's path
    // in the drag data (`Input.dispatchDragEvent`), not a DataTransfer built by a script.
    for kind in ["dragEnter", "dragOver", "drop"] {
        let data = serde_json::json!({
            "items": [],
            "files": [folder.to_str().unwrap()],
            "dragOperationsMask": 1,
        });
        chrome
            .client
            .issue_cmd(Cdp {
                cmd: "Input.dispatchDragEvent",
                params: serde_json::json!({ "type": kind, "x": 300, "y": 300, "data": data }),
            })
            .await
            .unwrap();
    }
    // The page saw one dropped item, a directory entry (`webkitGetAsEntry`), which files.js
    // walks: folders created first, then each file with its progress bar.
    let dropped: Value = serde_json::from_str(
        js(&chrome, "return sessionStorage.getItem('dropped');")
            .await
            .as_str()
            .expect("the drop reached the page"),
    )
    .unwrap();
    assert_eq!(
        dropped,
        serde_json::json!([{"kind": "file", "dir": true, "name": "Projekt Ärger"}])
    );
    wait_done(&chrome, "uploaded").await;
    assert_tree(&home);
    chrome.close().await;
}
