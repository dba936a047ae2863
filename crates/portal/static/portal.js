// IServ Remote Desktop: what every page's script shares, as one namespace `Portal`: requests
// with the session's CSRF token, the portal's JSON errors in words, texts, busy buttons, the
// live event stream and the progress of a desktop start. Plain JavaScript, no build step;
// every page that has a script loads this one first (both `defer`, so in order).
"use strict";

const Portal = (() => {
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";
  let texts = null;
  const t = (k) => {
    if (texts === null) texts = JSON.parse(document.getElementById("i18n")?.textContent || "{}");
    return texts[k] || k;
  };

  // `fetch` on the portal itself: the session cookie and the CSRF token go with every request,
  // so a page never has to remember which methods need the token.
  function request(url, options = {}) {
    const token = csrf();
    return fetch(url, {
      credentials: "same-origin",
      ...options,
      headers: { ...(token ? { "x-csrf-token": token } : {}), ...options.headers },
    });
  }

  // JSON API call; a failure throws an Error whose message is the portal's (translated) one
  // and whose `detail` is the technical cause, if the portal gave one.
  async function api(method, url, body) {
    let resp;
    try {
      resp = await request(url, {
        method,
        headers: { "content-type": "application/json", accept: "application/json" },
        body: body ? JSON.stringify(body) : undefined,
      });
    } catch (_) {
      throw new Error(t("err_network"));
    }
    const data = resp.status === 204 ? {} : await resp.json().catch(() => ({}));
    if (!resp.ok) {
      const e = data.error || {};
      const err = new Error(e.message || resp.statusText);
      err.detail = e.detail || "";
      throw err;
    }
    return data;
  }

  // An error from `api` as the pages show it: the message, then the detail in brackets.
  const errorText = (err) => (err ? err.message + (err.detail ? ` (${err.detail})` : "") : "");

  // "5 minutes ago" from unix seconds, in the page's words (the same rules as the server).
  function ago(ts) {
    if (!ts) return t("never_used");
    const secs = Math.max(0, Math.floor(Date.now() / 1000) - ts);
    let n, one, many;
    if (secs < 60) return t("ago_now");
    if (secs < 3600) [n, one, many] = [Math.floor(secs / 60), "ago_minute", "ago_minutes"];
    else if (secs < 86400) [n, one, many] = [Math.floor(secs / 3600), "ago_hour", "ago_hours"];
    else [n, one, many] = [Math.floor(secs / 86400), "ago_day", "ago_days"];
    return t(n === 1 ? one : many).replace("{n}", n);
  }

  // Feedback at once: the button is disabled and spins until the action is done.
  function busy(button, on) {
    if (!button) return;
    button.disabled = on;
    button.classList.toggle("busy", on);
    if (on) button.setAttribute("aria-busy", "true");
    else button.removeAttribute("aria-busy");
  }

  // Who watches the user's screens right now (teachers, `/teacher`): named in the page's
  // `[data-role="watched"]`, on a view page for its own desktop only. `w`: one desktop's
  // change as the stream sends it (`{id, watchers}`), or null to redraw.
  const watchers = new Map();
  function watched(w) {
    if (w && w.watchers.length) watchers.set(w.id, w.watchers);
    else if (w) watchers.delete(w.id);
    const el = document.querySelector('[data-role="watched"]');
    if (!el) return;
    const only = document.body.dataset.desktopId;
    const names = new Set();
    for (const [id, list] of watchers) if (!only || id === only) list.forEach((n) => names.add(n));
    el.textContent = names.size ? `${t("watched_by")} ${[...names].join(", ")}` : "";
    el.hidden = names.size === 0;
  }

  // The user's desktop states, live. `handlers.snapshot(list)` gets the whole picture (at
  // the start and after every reconnect), `handlers.desktop(d)` each change, and
  // `handlers.status(online)` whether the stream is up. The browser retries by itself after
  // a network error; a stream the server closed is reopened with a growing pause.
  function liveEvents(handlers) {
    let source = null, pause = 1000, wasDown = false;
    const open = () => {
      source = new EventSource("/api/events");
      source.addEventListener("snapshot", (e) => {
        pause = 1000;
        handlers.status?.(true, wasDown);
        wasDown = false;
        // The watchers follow the snapshot anew.
        watchers.clear();
        watched(null);
        handlers.snapshot?.(JSON.parse(e.data).desktops);
      });
      source.addEventListener("desktop", (e) => handlers.desktop?.(JSON.parse(e.data)));
      // Teachers' messages to the user's groups: for class_messages.js, whichever page runs.
      source.addEventListener("class_messages", (e) => {
        document.dispatchEvent(new CustomEvent("portal:class-messages", { detail: JSON.parse(e.data) }));
      });
      source.addEventListener("watching", (e) => watched(JSON.parse(e.data)));
      source.onerror = () => {
        wasDown = true;
        handlers.status?.(false, true);
        if (source.readyState === EventSource.CLOSED) {
          setTimeout(open, pause);
          pause = Math.min(pause * 2, 30000);
        }
      };
    };
    open();
    return () => source && source.close();
  }

  // Pull progress as one percentage: each layer counts by its size, downloading as the
  // first half and extracting as the second.
  function pullPercent(layers, p) {
    if (p.layer && p.total) {
      const half = p.status === "Extracting" ? 0.5 : 0;
      layers.set(p.layer, { size: layers.get(p.layer)?.size || p.total, done: half + 0.5 * Math.min(1, (p.current || 0) / p.total) });
    } else if (p.layer && /complete/i.test(p.status || "") && layers.has(p.layer)) {
      layers.get(p.layer).done = 1;
    }
    let size = 0, done = 0;
    for (const l of layers.values()) { size += l.size; done += l.size * l.done; }
    return size ? Math.floor((done * 100) / size) : null;
  }

  // Follows one desktop start's progress stream (`events_url` of the start's answer) until the
  // desktop is ready, failed or no longer starting. `on.step(text, percent)` gets every step
  // in words (percent: 0–100, or null while there is no measure); `on.end(how)` is called once
  // with "ready", "failed", "state" (the desktop left `starting` otherwise) or "error" (the
  // stream broke). Returns a function that stops following without calling `on.end`.
  function followStart(url, on) {
    const source = new EventSource(url);
    const layers = new Map();
    let over = false;
    const end = (how) => {
      if (over) return;
      over = true;
      source.close();
      on.end?.(how);
    };
    on.step?.(t("step_requested"), null);
    source.addEventListener("state", (e) => {
      if (JSON.parse(e.data).state !== "starting") end("state");
    });
    source.addEventListener("progress", (e) => {
      if (over) return;
      const p = JSON.parse(e.data);
      if (p.step === "pulling") {
        const pct = pullPercent(layers, p);
        on.step?.(pct === null ? t("step_pulling") : `${t("step_pulling")} – ${pct} %`, pct);
      } else if (p.step === "ready") {
        on.step?.(t("step_ready"), 100);
        end("ready");
      } else if (p.step === "failed") {
        end("failed");
      } else if (p.step === "queued") {
        // Waiting in the start queue: its place, live, until the start's turn comes.
        on.step?.(t("step_queued").replace("{n}", p.position).replace("{m}", p.of), null);
      } else {
        on.step?.(t(`step_${p.step}`) + (p.seconds ? ` (${p.seconds} s)` : ""), null);
      }
    });
    source.onerror = () => end("error");
    return () => { over = true; source.close(); };
  }

  return { api, request, errorText, t, ago, busy, csrf, liveEvents, followStart };
})();
window.Portal = Portal;
