//! Spawning the portal and its desktops, signing in, opening WebSockets.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use desktop_runtime::StaticDesktop;
use futures_util::{SinkExt as _, StreamExt as _};
use portal::{AppState, Config};
use portal_store::Role;
use reqwest::cookie::CookieStore as _;
use secrecy::SecretString;
use testkit::{FakeKasm, FakeKasmConfig};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const PASSWORD: &str = "correct horse battery";

/// A desktop the test wires into the portal's configuration.
pub struct DesktopSpec<'a> {
    pub id: &'a str,
    pub url: String,
    pub password: &'a str,
    pub users: &'a [&'a str],
}

impl<'a> DesktopSpec<'a> {
    pub fn for_fake(id: &'a str, fake: &FakeKasm, password: &'a str, users: &'a [&'a str]) -> Self {
        Self {
            id,
            url: fake.url(),
            password,
            users,
        }
    }
}

/// A running portal with alice and bob (students) and root (admin).
pub struct TestApp {
    pub addr: SocketAddr,
    pub url: String,
    pub origin: String,
    pub state: AppState,
    dir: Arc<tempfile::TempDir>,
    config: Config,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A fake Kasm desktop with its own password.
pub async fn fake_desktop(password: &str) -> FakeKasm {
    FakeKasm::start(FakeKasmConfig::new(password))
        .await
        .expect("fake desktop starts")
}

pub async fn spawn_app(desktops: &[DesktopSpec<'_>]) -> TestApp {
    spawn_app_with(desktops, |_| {}).await
}

pub async fn spawn_app_with(desktops: &[DesktopSpec<'_>], tweak: impl FnOnce(&mut Config)) -> TestApp {
    portal::install_crypto_provider();
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut config = Config {
        data_dir: dir.path().to_owned(),
        // Docker tests switch this on; everything else must not depend on an engine.
        runtime: portal::config::RuntimeKind::Static,
        // Many portals run at once: each gets its own metrics port (`app.state.metrics_addr()`).
        metrics: portal::config::MetricsSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..Default::default()
        },
        // Most tests exercise the proxy on the portal's own origin (owner only); tests of
        // desktop origins ask for the product's default with [`with_desktop_origins`].
        desktop_origin: Some("off".into()),
        ..Config::default()
    };
    config.static_desktops = desktops
        .iter()
        .map(|d| StaticDesktop {
            id: d.id.into(),
            name: Some(format!("Desktop {}", d.id)),
            url: d.url.clone(),
            username: Some("kasm_user".into()),
            password: Some(SecretString::from(d.password.to_owned())),
            verify_tls: false,
            users: d.users.iter().map(|u| (*u).to_owned()).collect(),
            groups: vec![],
        })
        .collect();
    tweak(&mut config);
    let app = start(dir, config).await;
    for (name, role) in [("alice", Role::Student), ("bob", Role::Student), ("root", Role::Admin)] {
        app.state
            .store
            .create_local_user(name, name, role, &SecretString::from(PASSWORD.to_owned()))
            .await
            .unwrap();
    }
    app
}

/// The product's default for a loopback portal: desktops at `http://{id}.localhost:<port>`.
pub fn with_desktop_origins(config: &mut Config) {
    config.desktop_origin = None;
}

/// Starts the portal on a fresh port with `config` and the data in `dir`.
async fn start(dir: Arc<tempfile::TempDir>, config: Config) -> TestApp {
    launch(dir, config, true).await
}

/// Starts a portal on a port of its own; with `own_url`, a loopback public URL and redirect URI
/// are made its own (else they stay as configured, e.g. another replica's).
async fn launch(dir: Arc<tempfile::TempDir>, mut config: Config, own_url: bool) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    config.listen = addr;
    if own_url
        && config
            .public_url
            .as_ref()
            .is_none_or(|u| u.host_str() == Some("127.0.0.1"))
    {
        config.public_url = Some(format!("http://{addr}/").parse().unwrap());
    }
    // A redirect URI given as `http://127.0.0.1/path` gets the port the portal just got.
    if let Some(uri) = config.oidc.redirect_uri.as_mut()
        && uri.host_str() == Some("127.0.0.1")
        && uri.port().is_none()
    {
        uri.set_port(Some(addr.port())).unwrap();
    }
    config.validate().expect("test configuration is valid");
    let state = AppState::new(config.clone()).await.expect("portal state");
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(portal::run(state.clone(), listener, async {
        let _ = stopped.await;
    }));
    let url = format!("http://{addr}");
    TestApp {
        addr,
        origin: url.clone(),
        url,
        state,
        dir,
        config,
        stop: Some(stop),
        server: Some(server),
    }
}

impl TestApp {
    /// Stops this portal and starts a new one on the same data (a portal restart). The new
    /// one listens on another port; cookies still apply (they ignore ports).
    pub async fn restart(self) -> TestApp {
        self.restart_with(|_| {}).await
    }

    /// A restart on the same data after `tweak` changed the configuration (an edited file).
    pub async fn restart_with(mut self, tweak: impl FnOnce(&mut Config)) -> TestApp {
        self.stop().await;
        let mut config = self.config.clone();
        tweak(&mut config);
        start(self.dir.clone(), config).await
    }

    /// Another portal on the same configuration and data (the same database and files root)
    /// on a port of its own: a second replica behind a load balancer.
    pub async fn peer(&self) -> TestApp {
        start(self.dir.clone(), self.config.clone()).await
    }

    /// A replica behind the same address as this portal, as behind one load balancer: the
    /// same public URL and IServ redirect URI (requests to it go to its own port).
    pub async fn replica(&self) -> TestApp {
        launch(self.dir.clone(), self.config.clone(), false).await
    }

    /// Stops the server and its background work, and waits until it has stopped.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    /// A browser bound to this portal instance (after a restart, the port differs).
    pub fn rebind(&self, browser: &Browser) -> Browser {
        Browser {
            http: browser.http.clone(),
            jar: browser.jar.clone(),
            base: self.url.parse().unwrap(),
        }
    }
}

/// A browser-like client: keeps cookies, does not follow redirects.
pub struct Browser {
    pub http: reqwest::Client,
    jar: Arc<reqwest::cookie::Jar>,
    base: url::Url,
}

impl Browser {
    pub fn new(app: &TestApp) -> Browser {
        Browser::at(&app.url)
    }

    /// A browser for a portal this test did not spawn in-process (the binary, a container).
    pub fn at(url: &str) -> Browser {
        portal::install_crypto_provider();
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        Browser {
            http,
            jar,
            base: url.parse().unwrap(),
        }
    }

    /// The `Cookie` header this browser would send to the portal.
    pub fn cookie_header(&self) -> Option<String> {
        self.jar.cookies(&self.base).map(|v| v.to_str().unwrap().to_owned())
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{path}", self.base.as_str().trim_end_matches('/')))
    }

    /// `GET path` as JSON.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        self.get(path).send().await.unwrap().json().await.unwrap()
    }

    /// `GET path` in English, the body as text (a page or fragment to look into).
    pub async fn get_text_en(&self, path: &str) -> String {
        let resp = self.get(path).header("accept-language", "en").send().await.unwrap();
        resp.text().await.unwrap()
    }

    /// `POST path` with the session's CSRF token, answer as JSON.
    pub async fn post_json(&self, path: &str, csrf: &str) -> serde_json::Value {
        self.post(path)
            .header("x-csrf-token", csrf)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The page at `path` in English, as text.
    pub async fn english_page(&self, path: &str) -> String {
        let resp = self.get(path).header("accept-language", "en").send().await.unwrap();
        resp.text().await.unwrap()
    }

    /// The session's CSRF token, as the dashboard hands it to its script.
    pub async fn csrf(&self) -> String {
        let page = self.get("/").send().await.unwrap().text().await.unwrap();
        csrf_from(&page.replace("name=\"csrf-token\" content=", "name=\"csrf_token\" value="))
    }

    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .delete(format!("{}{path}", self.base.as_str().trim_end_matches('/')))
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", self.base.as_str().trim_end_matches('/')))
    }
}

/// Pulls `name="csrf_token" value="…"` out of a page.
pub fn csrf_from(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).expect("page has a csrf_token field") + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// Posts the real sign-in form (after loading it for its token) with extra `headers`.
pub async fn submit_login(b: &Browser, username: &str, password: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let page = b.get("/login").send().await.unwrap().text().await.unwrap();
    let mut req = b.post("/login").form(&[
        ("username", username),
        ("password", password),
        ("csrf_token", &csrf_from(&page)),
    ]);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.send().await.unwrap()
}

/// Signs in through the real form and returns the signed-in browser.
pub async fn sign_in(app: &TestApp, username: &str) -> Browser {
    let browser = Browser::new(app);
    let resp = submit_login(&browser, username, PASSWORD, &[]).await;
    let status = resp.status();
    assert_eq!(
        status,
        303,
        "sign-in as {username} should redirect: {}",
        resp.text().await.unwrap_or_default()
    );
    browser
}

/// Signs out through the real form (with the session's CSRF token); the portal's answer.
pub async fn sign_out(b: &Browser) -> reqwest::Response {
    let csrf = b.csrf().await;
    b.post("/logout").form(&[("csrf_token", csrf)]).send().await.unwrap()
}

/// Signs in through the real form as if from `ip` (the portal must trust 127.0.0.1 as its
/// reverse proxy) and returns the answer.
pub async fn sign_in_from(app: &TestApp, username: &str, password: &str, ip: &str) -> reqwest::Response {
    let headers = [("x-forwarded-for", ip), ("accept-language", "en")];
    submit_login(&Browser::new(app), username, password, &headers).await
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Options for a WebSocket handshake against the portal.
#[derive(Default)]
pub struct WsOpts<'a> {
    pub cookie: Option<String>,
    pub origin: Option<&'a str>,
    pub referer: Option<String>,
}

impl<'a> WsOpts<'a> {
    /// What a signed-in browser on the portal's own page sends: its cookies and the portal's origin.
    pub fn as_user(browser: &Browser, app: &'a TestApp) -> Self {
        WsOpts {
            cookie: browser.cookie_header(),
            origin: Some(&app.origin),
            referer: None,
        }
    }
}

/// Opens a WebSocket to `path` on the portal, offering the `binary` subprotocol as the Kasm
/// client does.
pub async fn ws_connect(
    app: &TestApp,
    path: &str,
    opts: WsOpts<'_>,
) -> Result<(Ws, tungstenite::handshake::client::Response), tungstenite::Error> {
    let mut req = format!("ws://{}{path}", app.addr).into_client_request().unwrap();
    let h = req.headers_mut();
    h.insert("Sec-WebSocket-Protocol", "binary".parse().unwrap());
    if let Some(c) = opts.cookie {
        h.insert("Cookie", c.parse().unwrap());
    }
    if let Some(o) = opts.origin {
        h.insert("Origin", o.parse().unwrap());
    }
    if let Some(r) = opts.referer {
        h.insert("Referer", r.parse().unwrap());
    }
    tokio_tungstenite::connect_async(req).await
}

/// The HTTP status of a refused handshake.
pub fn refused_status(err: tungstenite::Error) -> u16 {
    match err {
        tungstenite::Error::Http(resp) => resp.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other}"),
    }
}

/// Reads the RFB greeting a Kasm desktop sends first.
pub async fn expect_rfb_greeting(ws: &mut Ws) {
    let first = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("greeting in time")
        .unwrap()
        .unwrap();
    assert_eq!(first, Message::Binary(b"RFB 003.008\n".to_vec().into()));
}

/// Sends `payload` and expects it back byte-exact.
pub async fn echo(ws: &mut Ws, payload: Vec<u8>) {
    ws.send(Message::Binary(payload.clone().into())).await.unwrap();
    let back = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("echo in time")
        .unwrap()
        .unwrap();
    assert_eq!(
        back.into_data().as_ref(),
        payload.as_slice(),
        "echo of {} bytes differs",
        payload.len()
    );
}
