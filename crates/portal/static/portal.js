// IServ Remote Desktop: dashboard actions with live start progress, and the desktop view's
// input heartbeats. Plain JavaScript, no build step.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

async function api(method, url, body) {
  const resp = await fetch(url, {
    method,
    headers: { "content-type": "application/json", "x-csrf-token": csrf(), accept: "application/json" },
    body: body ? JSON.stringify(body) : undefined,
    credentials: "same-origin",
  });
  const data = resp.status === 204 ? {} : await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error((data.error && (data.error.message + (data.error.detail ? " (" + data.error.detail + ")" : ""))) || resp.statusText);
  return data;
}

function dashboard() {
  const texts = JSON.parse(document.getElementById("i18n")?.textContent || "{}");
  const t = (k) => texts[k] || k;
  for (const card of document.querySelectorAll(".desktop[data-type]")) {
    const q = (role) => card.querySelector(`[data-role="${role}"]`);
    const setState = (state, extra) => {
      card.dataset.state = state;
      q("state").textContent = t("state_" + state) + (extra ? " · " + extra : "");
    };
    const follow = (eventsUrl) => {
      const bar = q("progress"), step = q("step");
      bar.hidden = false;
      bar.removeAttribute("value");
      const source = new EventSource(eventsUrl);
      source.addEventListener("state", (e) => {
        const d = JSON.parse(e.data);
        if (d.state !== "starting") { source.close(); bar.hidden = true; setState(d.state, d.state_reason); }
      });
      source.addEventListener("progress", (e) => {
        const p = JSON.parse(e.data);
        if (p.step === "pulling") {
          step.textContent = t("step_pulling") + (p.layer ? " " + p.layer : "") + ": " + p.status;
          if (p.total) { bar.max = p.total; bar.value = p.current || 0; }
        } else if (p.step === "ready") {
          source.close(); bar.hidden = true; step.textContent = ""; setState("running");
        } else if (p.step === "failed") {
          source.close(); bar.hidden = true; step.textContent = ""; setState("failed", p.reason);
        } else {
          step.textContent = t("step_" + p.step) + (p.seconds ? " (" + p.seconds + " s)" : "");
        }
      });
      source.onerror = () => { source.close(); bar.hidden = true; };
    };
    card.querySelector('[data-action="start"]').addEventListener("click", async () => {
      try {
        setState("starting");
        const d = await api("POST", "/api/desktops", { type: card.dataset.type });
        card.dataset.desktopId = d.id;
        card.querySelector('[data-action="open"]').href = d.view_url;
        if (d.state === "running") setState("running"); else follow(d.events_url);
      } catch (err) { setState("failed", err.message); }
    });
    card.querySelector('[data-action="stop"]').addEventListener("click", async () => {
      try {
        const d = await api("POST", `/api/desktops/${card.dataset.desktopId}/stop`);
        setState(d.state, d.state_reason);
      } catch (err) { q("step").textContent = err.message; }
    });
    if (card.dataset.state === "starting") follow(`/api/desktops/${card.dataset.desktopId}/events`);
  }
}

function view() {
  const id = document.body.dataset.desktopId;
  const frame = document.getElementById("desktop");
  let lastSent = 0, pending = false;
  // Idle means no keyboard or mouse input: streamed frames are not activity. Send at most
  // one heartbeat per 30 s while the user works.
  const input = () => {
    const now = Date.now();
    if (now - lastSent < 30000 || pending) return;
    pending = true;
    api("POST", `/api/desktops/${id}/activity`, {}).catch(() => {}).finally(() => { lastSent = Date.now(); pending = false; });
  };
  const watch = (doc) => {
    for (const ev of ["keydown", "mousedown", "mousemove", "wheel", "touchstart"]) doc.addEventListener(ev, input, { passive: true, capture: true });
  };
  watch(document);
  // The desktop's page is on the portal's origin, so its input events can be observed.
  frame.addEventListener("load", () => { try { watch(frame.contentDocument); } catch (_) {} });
  // The desktop may have finished loading before this deferred script ran.
  try {
    if (frame.contentDocument && frame.contentDocument.readyState === "complete" && frame.contentWindow.location.href !== "about:blank") watch(frame.contentDocument);
  } catch (_) {}
  // Kasm's client posts this to its parent after its own idle limit.
  window.addEventListener("message", (e) => {
    if (e.origin !== location.origin || !e.data || e.data.action !== "idle_session_timeout") return;
    api("POST", `/api/desktops/${id}/activity`, { idle_session_timeout: true }).catch(() => {});
    document.getElementById("idle").hidden = false;
  });
  input();
}

function admin() {
  const result = document.querySelector('[data-role="admin-result"]');
  const act = async (method, url, confirmText) => {
    if (confirmText && !window.confirm(confirmText)) return;
    try {
      await api(method, url);
      location.reload();
    } catch (err) { result.textContent = err.message; }
  };
  for (const b of document.querySelectorAll("[data-admin-post]")) b.addEventListener("click", () => act("POST", b.dataset.adminPost, b.dataset.confirm));
  for (const b of document.querySelectorAll("[data-admin-delete]")) b.addEventListener("click", () => act("DELETE", b.dataset.adminDelete));
}

if (document.body.classList.contains("view")) view();
else if (document.querySelector("[data-admin-post]")) admin();
else dashboard();
