//! `wsbench start`: time from "start" (the dashboard's `POST /api/desktops`) to an open
//! desktop WebSocket through the portal, broken down by the steps the start's server-sent
//! events report; the desktop is removed after each run so the next one starts afresh.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use bytes::Bytes;
use clap::Args;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};

use crate::target::{Endpoint, Target};
use crate::ws::{Connector, close};

/// A start of the tiny test image takes well under a second; a pull could take minutes.
const START_TIMEOUT: Duration = Duration::from_secs(300);
const MAX_RUNS: usize = 1000;

#[derive(Args, Debug)]
pub(crate) struct StartArgs {
    /// The portal's base URL, `http://127.0.0.1:PORT`.
    #[arg(long)]
    portal: String,
    /// `Cookie` header value of a signed-in session.
    #[arg(long)]
    cookie: String,
    /// The session's CSRF token (the dashboard's `csrf-token` meta tag).
    #[arg(long)]
    csrf: String,
    /// The desktop type to start.
    #[arg(long = "type", value_name = "KEY")]
    type_key: String,
    /// Starts measured.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Unmeasured starts first (the image's first start, page cache).
    #[arg(long, default_value_t = 1)]
    warmup: usize,
}

/// Output of `wsbench start`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StartResult {
    pub(crate) mode: String,
    pub(crate) label: String,
    pub(crate) type_key: String,
    pub(crate) runs: Vec<StartRun>,
}

/// Milliseconds after the `POST` was sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StartRun {
    /// The `202 Accepted` arrived.
    pub(crate) accepted_ms: f64,
    /// First time each progress step was seen on the event stream (steps that happened
    /// before the stream was opened arrive together with it, replayed).
    pub(crate) steps_ms: BTreeMap<String, f64>,
    /// The `ready` event arrived.
    pub(crate) ready_ms: f64,
    /// With desktop origins: the handover alone — `GET /view/{id}`, the ticket's redemption on
    /// the desktop's host, and the desktop page's first byte (ms for those three requests).
    #[serde(default)]
    pub(crate) handover_ms: Option<f64>,
    /// The WebSocket through the portal carried the desktop's RFB greeting.
    pub(crate) websocket_ms: f64,
}

/// Plain HTTP to the portal (the benchmark's portal listens on 127.0.0.1 without TLS).
type PortalClient = Client<HttpConnector, Full<Bytes>>;

pub(crate) async fn run(args: &StartArgs) -> anyhow::Result<()> {
    ensure!((1..=MAX_RUNS).contains(&args.runs), "--runs must be 1–{MAX_RUNS}");
    ensure!(args.warmup <= MAX_RUNS, "--warmup must be at most {MAX_RUNS}");
    // Checks the address (127.0.0.1 only) and the header values once.
    let base = Target::parse(&endpoint(args, &args.portal), false)?;
    ensure!(
        !base.tls,
        "--portal must be http:// (the benchmark's portal has no TLS)"
    );
    let origin = base.origin.clone();
    let client: PortalClient = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let portal = Portal {
        client,
        base: format!("http://127.0.0.1:{}", base.port),
        origin,
        args,
    };
    let mut runs = Vec::with_capacity(args.runs);
    for i in 0..args.warmup + args.runs {
        let run = tokio::time::timeout(START_TIMEOUT, portal.start_once())
            .await
            .with_context(|| format!("start {i} took over {START_TIMEOUT:?}"))??;
        eprintln!(
            "[start] run {i}: accepted {:.0} ms, steps {:?}, ready {:.0} ms, WebSocket open {:.0} ms{}",
            run.accepted_ms,
            run.steps_ms,
            run.ready_ms,
            run.websocket_ms,
            if i < args.warmup { " (warm-up)" } else { "" }
        );
        if i >= args.warmup {
            runs.push(run);
        }
    }
    crate::emit(&StartResult {
        mode: "start".into(),
        label: "portal".into(),
        type_key: args.type_key.clone(),
        runs,
    })
}

fn endpoint(args: &StartArgs, url: &str) -> Endpoint {
    Endpoint {
        url: url.to_owned(),
        cookie: Some(args.cookie.clone()),
        origin: None,
        host: None,
        basic_auth: None,
        label: "start".into(),
    }
}

struct Portal<'a> {
    client: PortalClient,
    base: String,
    origin: String,
    args: &'a StartArgs,
}

#[derive(Deserialize)]
struct Started {
    id: String,
    events_url: String,
}

impl Portal<'_> {
    fn request(&self, method: Method, path: &str, body: Bytes) -> anyhow::Result<Request<Full<Bytes>>> {
        Ok(Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("Cookie", &self.args.cookie)
            .header("Origin", &self.origin)
            .header("X-CSRF-Token", &self.args.csrf)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json, text/event-stream")
            .body(Full::new(body))?)
    }

    async fn start_once(&self) -> anyhow::Result<StartRun> {
        let t0 = Instant::now();
        let ms = |t: Instant| t.duration_since(t0).as_secs_f64() * 1000.0;
        let body = serde_json::to_vec(&serde_json::json!({ "type": self.args.type_key }))?;
        let resp = self
            .client
            .request(self.request(Method::POST, "/api/desktops", body.into())?)
            .await
            .context("POST /api/desktops")?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        if !matches!(status, StatusCode::ACCEPTED | StatusCode::OK) {
            bail!(
                "POST /api/desktops answered {status}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        let accepted_ms = ms(Instant::now());
        let started: Started = serde_json::from_slice(&bytes).context("the start response")?;

        let steps_ms = self
            .wait_until_ready(&started.events_url, t0, status == StatusCode::OK)
            .await?;
        let ready_ms = ms(Instant::now());

        let port = self.base.rsplit(':').next().unwrap_or_default().to_owned();
        let handover_started = Instant::now();
        let desktop = self.handover(&started.id).await?;
        let handover_ms = desktop
            .as_ref()
            .map(|_| handover_started.elapsed().as_secs_f64() * 1000.0);
        let mut ws_endpoint = match &desktop {
            // Each desktop on its own origin: its host, its origin, its cookie.
            Some(d) => {
                let mut e = endpoint(self.args, &format!("ws://127.0.0.1:{port}/websockify"));
                e.host = Some(d.host.clone());
                e.origin = Some(format!("http://{}", d.host));
                e.cookie = Some(d.cookie.clone());
                e
            }
            None => {
                let mut e = endpoint(
                    self.args,
                    &format!("ws://127.0.0.1:{port}/desktop/{}/websockify", started.id),
                );
                e.origin = Some(self.origin.clone());
                e
            }
        };
        ws_endpoint.label = "start".into();
        let connector = Connector::new(Target::parse(&ws_endpoint, true)?)?.with_read_buffer(4096);
        let ws = connector.connect().await.context("the desktop's WebSocket")?;
        let websocket_ms = ms(Instant::now());
        close(ws).await;

        let path = format!("/api/desktops/{}", started.id);
        let resp = self
            .client
            .request(self.request(Method::DELETE, &path, Bytes::new())?)
            .await?;
        ensure!(
            resp.status() == StatusCode::NO_CONTENT,
            "DELETE {path} answered {}",
            resp.status()
        );
        Ok(StartRun {
            accepted_ms,
            steps_ms,
            ready_ms,
            handover_ms,
            websocket_ms,
        })
    }

    /// Follows the start's events until `ready`; the first time each step was seen, in ms
    /// after `t0`. An already running desktop has no steps to wait for.
    async fn wait_until_ready(
        &self,
        events_url: &str,
        t0: Instant,
        already_running: bool,
    ) -> anyhow::Result<BTreeMap<String, f64>> {
        let ms = |t: Instant| t.duration_since(t0).as_secs_f64() * 1000.0;
        let mut steps_ms = BTreeMap::new();
        let resp = self
            .client
            .request(self.request(Method::GET, events_url, Bytes::new())?)
            .await
            .context("GET the start's events")?;
        ensure!(resp.status() == StatusCode::OK, "events answered {}", resp.status());
        let mut body = resp.into_body();
        let mut pending = Vec::new();
        let mut ready = false;
        // An already running desktop (200) has no steps to wait for.
        if already_running {
            ready = true;
        }
        while !ready {
            let frame = body.frame().await.context("the event stream ended before `ready`")??;
            let Some(data) = frame.data_ref() else { continue };
            pending.extend_from_slice(data);
            while let Some(end) = find(&pending, b"\n\n") {
                let event: Vec<u8> = pending.drain(..end + 2).collect();
                if let Some(step) = progress_step(&event)? {
                    steps_ms.entry(step.clone()).or_insert_with(|| ms(Instant::now()));
                    match step.as_str() {
                        "ready" => ready = true,
                        "failed" => bail!("the start failed: {}", String::from_utf8_lossy(&event)),
                        _ => {}
                    }
                }
            }
        }
        drop(body);
        Ok(steps_ms)
    }

    /// Opens `/view/{id}` as the browser does and, when its frame is on a desktop origin,
    /// redeems the ticket there and reads the desktop page's first byte. `None` when the
    /// desktop shares the portal's origin.
    async fn handover(&self, id: &str) -> anyhow::Result<Option<DesktopHost>> {
        let resp = self
            .client
            .request(self.request(Method::GET, &format!("/view/{id}"), Bytes::new())?)
            .await
            .context("GET the view page")?;
        ensure!(
            resp.status() == StatusCode::OK,
            "the view page answered {}",
            resp.status()
        );
        let page = resp.into_body().collect().await?.to_bytes();
        let page = String::from_utf8_lossy(&page);
        let src = frame_src(&page).context("the view page has no desktop frame")?;
        let Some(rest) = src.strip_prefix("http://") else {
            return Ok(None);
        };
        let (host, path) = rest.split_once('/').context("the frame's URL has no path")?;
        let get = |path: &str, cookie: Option<&str>| {
            let mut req = Request::builder()
                .method(Method::GET)
                .uri(format!("{}/{path}", self.base))
                .header("Host", host);
            if let Some(c) = cookie {
                req = req.header("Cookie", c);
            }
            req.body(Full::new(Bytes::new()))
        };
        let resp = self
            .client
            .request(get(path, None)?)
            .await
            .context("redeeming the ticket")?;
        ensure!(
            resp.status() == StatusCode::OK,
            "the ticket's redemption answered {}",
            resp.status()
        );
        let cookie = resp
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .context("no cookie from the ticket's redemption")?
            .to_owned();
        let resp = self
            .client
            .request(get("?path=websockify", Some(&cookie))?)
            .await
            .context("the desktop's page")?;
        ensure!(
            resp.status() == StatusCode::OK,
            "the desktop's page answered {}",
            resp.status()
        );
        // The first byte of the page is what the measurement ends with.
        let mut body = resp.into_body();
        let _ = body.frame().await;
        Ok(Some(DesktopHost {
            host: host.to_owned(),
            cookie,
        }))
    }
}

/// A desktop's own origin, entered.
struct DesktopHost {
    /// `{label}.localhost:PORT`.
    host: String,
    /// The desktop host's cookie, `name=value`.
    cookie: String,
}

/// The `src` of the view page's desktop frame, HTML entities decoded.
fn frame_src(page: &str) -> Option<String> {
    let tag = &page[page.find("<iframe id=\"desktop\"")?..];
    let tag = &tag[..tag.find('>')?];
    let src = tag.split(" src=\"").nth(1)?.split('"').next()?;
    Some(src.replace("&amp;", "&"))
}

/// The `step` of a `progress` event, `None` for other events.
fn progress_step(event: &[u8]) -> anyhow::Result<Option<String>> {
    let text = String::from_utf8_lossy(event);
    let mut name = "message";
    let mut data = String::new();
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("event:") {
            name = v.trim();
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push_str(v.trim());
        }
    }
    if name != "progress" {
        return Ok(None);
    }
    let value: serde_json::Value = serde_json::from_str(&data).with_context(|| format!("progress data {data:?}"))?;
    Ok(value.get("step").and_then(|s| s.as_str()).map(str::to_owned))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_events_give_their_step() -> anyhow::Result<()> {
        let ev = b"event: progress\ndata: {\"step\":\"creating\"}\n\n";
        assert_eq!(progress_step(ev)?.as_deref(), Some("creating"));
        assert_eq!(
            progress_step(b"event: state\ndata: {\"state\":\"starting\"}\n\n")?,
            None
        );
        assert_eq!(progress_step(b": keep-alive\n\n")?, None);
        Ok(())
    }
}
