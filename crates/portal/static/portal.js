// IServ Remote Desktop: what every page's script shares (API calls with the CSRF token, texts,
// busy buttons, the live event stream), and the admin page's buttons. Plain JavaScript, no
// build step; page scripts (dashboard.js, view.js) load after this one.
"use strict";

const Portal = (() => {
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";
  let texts = null;
  const t = (k) => {
    if (texts === null) texts = JSON.parse(document.getElementById("i18n")?.textContent || "{}");
    return texts[k] || k;
  };

  // JSON API call; a failure throws an Error whose message is the portal's (translated) one.
  async function api(method, url, body) {
    let resp;
    try {
      resp = await fetch(url, {
        method,
        headers: { "content-type": "application/json", "x-csrf-token": csrf(), accept: "application/json" },
        body: body ? JSON.stringify(body) : undefined,
        credentials: "same-origin",
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
        handlers.snapshot?.(JSON.parse(e.data).desktops);
      });
      source.addEventListener("desktop", (e) => handlers.desktop?.(JSON.parse(e.data)));
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

  return { api, t, ago, busy, csrf, liveEvents };
})();
window.Portal = Portal;

function admin() {
  const result = document.querySelector('[data-role="admin-result"]');
  const act = async (button, method, url, confirmText) => {
    if (confirmText && !window.confirm(confirmText)) return;
    Portal.busy(button, true);
    try {
      await Portal.api(method, url);
      location.reload();
    } catch (err) {
      result.textContent = err.message;
      Portal.busy(button, false);
    }
  };
  for (const b of document.querySelectorAll("[data-admin-post]")) b.addEventListener("click", () => act(b, "POST", b.dataset.adminPost, b.dataset.confirm));
  for (const b of document.querySelectorAll("[data-admin-delete]")) b.addEventListener("click", () => act(b, "DELETE", b.dataset.adminDelete));
}

if (document.querySelector("[data-admin-post]")) admin();
