// IServ Remote Desktop: the desktop view. Sends keyboard/mouse heartbeats (idle is measured
// from input, never from streamed frames), follows the desktop's state live (stopped by an
// admin, idle, crashed: an overlay says so and offers to start it again), shows a reconnect
// state when the portal connection drops, and has fullscreen and stop in its toolbar.
"use strict";

(() => {
  const { api, t, busy, liveEvents, followStart, errorText } = Portal;
  const body = document.body;
  const id = body.dataset.desktopId;
  const frame = document.getElementById("desktop");
  const overlay = document.getElementById("overlay");
  const notice = document.querySelector('[data-role="notice"]');
  const reconnectButton = document.querySelector('[data-action="reconnect"]');
  const q = (role) => overlay.querySelector(`[data-role="${role}"]`);
  const managed = body.dataset.type !== "";

  // --- input heartbeats -------------------------------------------------------------------
  let lastSent = 0, pending = false;
  // At most one heartbeat per 30 s while the user works.
  const input = () => {
    const now = Date.now();
    if (now - lastSent < 30000 || pending || body.dataset.state !== "running") return;
    pending = true;
    api("POST", `/api/desktops/${id}/activity`, {}).catch(() => {}).finally(() => { lastSent = Date.now(); pending = false; });
  };
  const watch = (doc) => {
    for (const ev of ["keydown", "mousedown", "mousemove", "wheel", "touchstart"]) doc.addEventListener(ev, input, { passive: true, capture: true });
  };
  watch(document);
  // Where the desktop shares the portal's origin (owner only), its input events can be
  // observed; on a desktop origin of its own they cannot, so time spent with the desktop
  // focused (and the page visible) counts as input instead.
  const watchFrame = () => { try { if (frame.contentDocument && frame.contentWindow.location.href !== "about:blank") watch(frame.contentDocument); } catch (_) {} };
  setInterval(() => { if (document.activeElement === frame && document.visibilityState === "visible") input(); }, 10000);
  frame.addEventListener("load", watchFrame);
  // The desktop may have finished loading before this deferred script ran.
  try { if (frame.contentDocument && frame.contentDocument.readyState === "complete") watchFrame(); } catch (_) {}

  // --- the overlay: a modal dialog -------------------------------------------------------------
  // While it is shown, what is behind it is inert and Tab goes round inside it; when it closes,
  // the focus goes back to where it was before (or to the desktop).
  const dialog = overlay.querySelector('[role="alertdialog"]');
  const behind = [document.querySelector(".viewbar"), document.getElementById("main")];
  let returnTo = null;
  const focusables = () => [...dialog.querySelectorAll("a[href], button, input:not([type=hidden]), select, textarea")]
    .filter((e) => !e.disabled && e.getClientRects().length);

  function openOverlay() {
    if (!overlay.hidden) return;
    const active = document.activeElement;
    returnTo = active && active !== document.body ? active : null;
    overlay.hidden = false;
    for (const e of behind) e.inert = true;
  }

  function closeOverlay() {
    if (overlay.hidden) return;
    const hadFocus = dialog.contains(document.activeElement) || document.activeElement === document.body;
    overlay.hidden = true;
    for (const e of behind) e.inert = false;
    const back = returnTo && returnTo.isConnected && returnTo.getClientRects().length ? returnTo : frame;
    returnTo = null;
    if (hadFocus) back.focus();
  }

  document.addEventListener("keydown", (e) => {
    if (e.key !== "Tab" || overlay.hidden) return;
    const list = focusables();
    const at = list.indexOf(document.activeElement);
    e.preventDefault();
    if (!list.length) dialog.focus();
    else if (at < 0) (e.shiftKey ? list[list.length - 1] : list[0]).focus();
    else list[(at + (e.shiftKey ? list.length - 1 : 1)) % list.length].focus();
  });

  // --- states -----------------------------------------------------------------------------
  function load() {
    frame.src = body.dataset.launchUrl;
  }

  function show(state, stateText, reasonText) {
    const was = body.dataset.state;
    body.dataset.state = state;
    document.querySelector('[data-role="state"]').textContent = stateText;
    if (state === "running") {
      closeOverlay();
      q("error").textContent = "";
      // Freshly running (started again): load the client; still running: keep it.
      if (was !== "running" || !frame.getAttribute("src")) load();
      return;
    }
    q("overlay-title").textContent = state === "starting" ? t("view_starting") : t("view_stopped");
    q("overlay-reason").textContent = reasonText || "";
    overlay.classList.toggle("in-progress", state === "starting");
    openOverlay();
    reconnectButton.hidden = true;
    if (state !== "starting") {
      // Nothing to show behind the overlay: drop the client and its WebSocket.
      frame.removeAttribute("src");
      frame.src = "about:blank";
      for (const b of document.querySelectorAll("button")) busy(b, false);
    }
    // Into the dialog, unless the user is already in it: on Start again when it can start.
    if (!dialog.contains(document.activeElement) || document.activeElement === dialog) {
      const start = state !== "starting" && overlay.querySelector('[data-action="start"] button');
      (start || dialog).focus();
    }
  }

  const fromLive = (d) => show(d.state, d.state_text, d.reason_text);

  // Progress of a start, on the overlay.
  function follow(url) {
    const bar = q("progress"), step = q("step");
    followStart(url, {
      step(text, percent) {
        if (percent === null) bar.removeAttribute("value");
        else bar.value = percent;
        step.textContent = text;
      },
      end(how) { if (how === "ready" || how === "failed") step.textContent = ""; },
    });
  }

  const startForm = overlay.querySelector('[data-action="start"]');
  startForm?.addEventListener("submit", async (e) => {
    e.preventDefault();
    const button = e.submitter || startForm.querySelector("button");
    busy(button, true);
    q("error").textContent = "";
    try {
      const d = await api("POST", "/api/desktops", { type: body.dataset.type });
      if (d.state === "running") show("running", t("state_running"));
      else { show("starting", t("state_starting")); follow(d.events_url); }
    } catch (err) {
      busy(button, false);
      q("error").textContent = errorText(err);
    }
  });

  const stopForm = document.querySelector('[data-action="stop"]');
  stopForm?.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!window.confirm(t("stop_confirm_text"))) return;
    const button = e.submitter || stopForm.querySelector("button");
    busy(button, true);
    try {
      const d = await api("POST", `/api/desktops/${id}/stop`);
      show(d.state, t(`state_${d.state}`), "");
    } catch (err) {
      busy(button, false);
      notice.textContent = err.message;
      notice.hidden = false;
    }
  });

  document.querySelector('[data-action="fullscreen"]').addEventListener("click", () => {
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    else document.documentElement.requestFullscreen().catch(() => {});
    frame.focus();
  });

  reconnectButton.addEventListener("click", () => {
    reconnectButton.hidden = true;
    notice.hidden = true;
    load();
    frame.focus();
  });

  // Kasm's client posts this to its parent after its own idle limit.
  window.addEventListener("message", (e) => {
    if (e.origin !== (body.dataset.desktopOrigin || location.origin) || e.source !== frame.contentWindow || !e.data || e.data.action !== "idle_session_timeout") return;
    api("POST", `/api/desktops/${id}/activity`, { idle_session_timeout: true }).catch(() => {});
    show("stopped", t("state_stopped"), t("idle_stopped"));
  });

  if (managed) {
    let leaving = false;
    window.addEventListener("pagehide", () => { leaving = true; });
    liveEvents({
      snapshot(list) {
        const d = list.find((x) => x.id === id);
        if (d) fromLive(d);
        else show("none", t("state_none"), "");
      },
      desktop(d) {
        if (d.id === id) fromLive(d);
      },
      status(up, afterOutage) {
        if (leaving) return;
        if (!up) {
          notice.textContent = t("view_disconnected");
          notice.hidden = false;
        } else if (afterOutage && body.dataset.state === "running") {
          // Back online: the desktop may have dropped its connection meanwhile.
          notice.textContent = t("view_reconnect_hint");
          notice.hidden = false;
          reconnectButton.hidden = false;
        } else {
          notice.hidden = true;
        }
      },
    });
    if (body.dataset.state === "starting") follow(`/api/desktops/${id}/events`);
  }
  input();
})();
