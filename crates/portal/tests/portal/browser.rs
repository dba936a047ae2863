//! The portal in a real browser: headless Chromium driven over WebDriver (Debian's `chromium`
//! and `chromium-driver`, installed by `scripts/test.sh`). A real browser sends its own
//! `Origin`, cookies and WebSocket handshake, so these tests prove that what the unit-level
//! clients do by hand is what browsers do. Under `CI=true` a missing browser fails these
//! tests; elsewhere they say why they did nothing.
//!
//! Screenshots go to `target/test-artifacts/`; `IRD_SCREENSHOTS=1` also refreshes the ones in
//! `docs/` (see `ui_browser.rs`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::helpers::*;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "chromedriver";
/// How long any one thing may take to show in the page (a container start included).
pub(crate) const WAIT: Duration = Duration::from_secs(15);

/// Whether Chromium and chromedriver are installed; fails under CI when they are not.
pub(crate) fn browser_ready() -> bool {
    let driver = Command::new(CHROMEDRIVER)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if Path::new(CHROMIUM).exists() && driver {
        return true;
    }
    let msg = format!(
        "browser tests need {CHROMIUM} and {CHROMEDRIVER} (Debian: apt-get install chromium chromium-driver; \
         scripts/test.sh does it)"
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{msg}");
    }
    eprintln!("skipped: {msg}");
    false
}

/// A chromedriver of this test's own, with a fresh Chromium profile. Dropping it kills the
/// driver's whole process group, so no browser outlives a failed test.
pub(crate) struct Chrome {
    pub(crate) client: Client,
    driver: Child,
    profile: tempfile::TempDir,
}

impl Chrome {
    pub(crate) async fn start() -> Chrome {
        Chrome::start_with(&[]).await
    }

    /// A Chromium with extra command-line flags (e.g. `--ignore-certificate-errors` for the
    /// tests through a reverse proxy with a self-signed certificate).
    pub(crate) async fn start_with(extra_args: &[&str]) -> Chrome {
        let profile = tempfile::tempdir().unwrap();
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let log = profile.path().join("chromedriver.log");
        let driver = std::os::unix::process::CommandExt::process_group(
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
            0,
        )
        .spawn()
        .expect("chromedriver starts");
        let mut starting = ChromeStarting { driver: Some(driver) };
        let webdriver = format!("http://127.0.0.1:{port}");
        wait_for_driver(&webdriver).await;
        let user_data = profile.path().join("profile");
        let mut args: Vec<String> = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
            "--window-size=1280,800",
        ]
        .map(String::from)
        .into();
        args.push(format!("--user-data-dir={}", user_data.display()));
        args.extend(extra_args.iter().map(|a| (*a).to_owned()));
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": args,
                // A German school's browser: the portal's default language, asked for.
                "prefs": { "intl.accept_languages": "de-DE,de" },
            },
        });
        let Value::Object(caps) = caps else { unreachable!() };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&webdriver)
            .await
            .unwrap_or_else(|e| panic!("Chromium session: {e}\n{}", tail(&log)));
        Chrome {
            client,
            driver: starting.driver.take().unwrap(),
            profile,
        }
    }

    /// Opens `path` of the portal. Docker adding or removing a network interface (any test's
    /// containers) makes Chromium drop a navigation with `ERR_NETWORK_CHANGED` and show its own
    /// error page; such a navigation is tried again, a few times.
    pub(crate) async fn goto(&self, app: &TestApp, path: &str) {
        let url = format!("{}{path}", app.url);
        // Docker tests beside this one can change the host's networks for many seconds in a
        // row (thirty desktops starting, each with a network of its own): tried again for up
        // to a minute.
        for _ in 0..60 {
            self.client.goto(&url).await.unwrap();
            if !self.network_dropped().await {
                return;
            }
            eprintln!("{url}: Chromium dropped the navigation (ERR_NETWORK_CHANGED); trying again");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Whether the browser shows Chromium's error page for a load dropped by a network change
    /// (told by its source: it keeps the URL it failed on, and scripts may not run in it).
    async fn network_dropped(&self) -> bool {
        let source = self.client.source().await.unwrap_or_default();
        source.contains("\"errorCode\":\"ERR_NETWORK_CHANGED\"")
    }

    /// Runs `js` (a function body) until it returns `true`; on timeout, fails showing the page.
    pub(crate) async fn wait_until(&self, what: &str, js: &str) {
        let mut deadline = Instant::now() + WAIT;
        // Time lost to network changes does not count, up to a minute more (see `goto`).
        let latest = deadline + Duration::from_secs(60);
        loop {
            // Mid-navigation a script may fail; that only means "not yet".
            if let Ok(Value::Bool(true)) = self.client.execute(js, vec![]).await {
                return;
            }
            // A page's own reload (or a late navigation) dropped by a network change, as in
            // `goto`: load it again.
            if self.network_dropped().await {
                eprintln!("{what}: Chromium dropped the page (ERR_NETWORK_CHANGED); reloading");
                tokio::time::sleep(Duration::from_secs(1)).await;
                let _ = self.client.refresh().await;
                deadline = (deadline + Duration::from_secs(1)).min(latest);
            }
            if Instant::now() > deadline {
                let url = self
                    .client
                    .current_url()
                    .await
                    .map(|u| u.to_string())
                    .unwrap_or_default();
                let page = self.client.source().await.unwrap_or_default();
                panic!("timed out waiting for {what}; at {url}:\n{page}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks the element `css` finds.
    pub(crate) async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    pub(crate) async fn text(&self, css: &str) -> String {
        self.client.find(Locator::Css(css)).await.unwrap().text().await.unwrap()
    }

    /// Signs in through the login form as a person would, and waits for the dashboard.
    pub(crate) async fn sign_in(&self, app: &TestApp, username: &str) {
        self.goto(app, "/login").await;
        let c = &self.client;
        c.find(Locator::Css("input[name=username]"))
            .await
            .unwrap()
            .send_keys(username)
            .await
            .unwrap();
        c.find(Locator::Css("input[name=password]"))
            .await
            .unwrap()
            .send_keys(PASSWORD)
            .await
            .unwrap();
        c.find(Locator::Css("form[action='/login'] button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        self.wait_until(
            "the dashboard after signing in",
            "return location.pathname === '/' && document.readyState === 'complete' \
             && !!document.querySelector('meta[name=csrf-token]');",
        )
        .await;
    }

    /// Saves a PNG of the viewport as `target/test-artifacts/{name}.png`, and as
    /// `docs/screenshot-{name}.png` when `IRD_SCREENSHOTS=1` (the README shows those).
    pub(crate) async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts");
        std::fs::create_dir_all(&artifacts).unwrap();
        std::fs::write(artifacts.join(format!("{name}.png")), &png).unwrap();
        if std::env::var("IRD_SCREENSHOTS").as_deref() != Ok("1") {
            return;
        }
        let dir = docs_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("screenshot-{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        eprintln!("saved {}", path.display());
    }

    /// Ends the browser session cleanly (the driver closes Chromium).
    pub(crate) async fn close(self) {
        let Chrome { client, .. } = &self;
        let _ = client.clone().close().await;
    }
}

impl Drop for Chrome {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", tail(&self.profile.path().join("chromedriver.log")));
        }
        kill_group(&mut self.driver);
    }
}

/// The driver while the session is being made: killed if that fails.
struct ChromeStarting {
    driver: Option<Child>,
}

impl Drop for ChromeStarting {
    fn drop(&mut self) {
        if let Some(driver) = self.driver.as_mut() {
            kill_group(driver);
        }
    }
}

/// Kills the process group led by `child` (chromedriver and the Chromium it started).
fn kill_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

async fn wait_for_driver(webdriver: &str) {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ready = http
            .get(format!("{webdriver}/status"))
            .timeout(Duration::from_secs(1))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            return;
        }
        assert!(Instant::now() < deadline, "chromedriver did not come up on {webdriver}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The last lines of a log file, for a failure message.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(40);
    format!("--- {} (tail) ---\n{}", path.display(), lines[from..].join("\n"))
}

fn docs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs")
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// JS: whether the page shows the fake desktop's RFB greeting, received over its WebSocket.
pub(crate) const CONNECTED: &str = "return document.title === 'connected' \
    && (document.getElementById('rfb') || {}).textContent === 'RFB 003.008\\n';";

#[tokio::test]
async fn signing_in_through_the_form_and_opening_a_lab_desktop_connects_its_websocket() {
    if !browser_ready() {
        return;
    }
    let fake = fake_desktop("pw-a").await;
    let app = spawn_app(&[DesktopSpec::for_fake("lab-a", &fake, "pw-a", &["alice"])]).await;
    let chrome = Chrome::start().await;
    chrome.sign_in(&app, "alice").await;

    let open = chrome
        .client
        .find(Locator::Css(".desktop[data-desktop-id='lab-a'] a.button"))
        .await
        .unwrap();
    assert_eq!(
        open.attr("href").await.unwrap().as_deref(),
        Some("/desktop/lab-a/?path=desktop/lab-a/websockify")
    );
    open.click().await.unwrap();
    chrome.wait_until("the desktop's WebSocket to connect", CONNECTED).await;
    assert!(chrome.text("body").await.contains("Fake KasmVNC"));
    assert_eq!(chrome.text("#status").await, "connected");
    assert_eq!(fake.websocket_sessions(), 1, "one WebSocket reached the desktop");
    let upgrade = fake
        .requests()
        .into_iter()
        .find(|r| r.path == "/websockify")
        .expect("the relay reached the desktop's /websockify");
    assert!(
        !upgrade.head.to_lowercase().contains("\r\ncookie:"),
        "the browser's cookies stay at the portal: {}",
        upgrade.head
    );
    chrome.close().await;
}

#[tokio::test]
async fn a_student_cannot_open_another_students_desktop_in_the_browser() {
    if !browser_ready() {
        return;
    }
    let fake = fake_desktop("pw-a").await;
    let app = spawn_app(&[DesktopSpec::for_fake("lab-a", &fake, "pw-a", &["alice"])]).await;
    let chrome = Chrome::start().await;
    chrome.sign_in(&app, "bob").await;
    assert!(
        chrome
            .client
            .find_all(Locator::Css(".desktop[data-desktop-id='lab-a']"))
            .await
            .unwrap()
            .is_empty(),
        "bob's dashboard does not list alice's desktop"
    );

    chrome.goto(&app, "/desktop/lab-a/?path=desktop/lab-a/websockify").await;
    let body = chrome.text("body").await;
    // Someone else's desktop answers like one that does not exist.
    assert!(body.contains("Diesen Desktop gibt es nicht"), "{body}");
    assert!(body.contains("HTTP 404"), "{body}");
    assert!(!body.contains("Fake KasmVNC"), "{body}");
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
    chrome.close().await;
}
