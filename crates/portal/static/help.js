// IServ Remote Desktop: helping with consent, live. On the view page and the dashboard (the
// student's help panel) and on the teacher page (open requests), this listens to
// /api/help/events and, whenever a case changes, fetches the server-rendered panel again.
// Its forms are sent in the background, so the student's desktop stays connected while she
// answers. Without this script the forms work as plain posts and the page shows the state
// as it was when loaded. Requests go through portal.js.
"use strict";

(() => {
  const { request, t } = Portal;
  // The student's panel carries its own URL; the teacher page's section names it.
  const find = () => document.querySelector('[data-role="help"][data-refresh]') || document.querySelector("[data-refresh-help]");
  if (!find()) return;
  const urlOf = (el) => el.dataset.refresh || el.dataset.refreshHelp;

  async function refresh() {
    const el = find();
    if (!el) return;
    try {
      const resp = await request(urlOf(el), { redirect: "manual" });
      if (!resp.ok) return;
      const html = await resp.text();
      // Server-rendered and escaped like the page itself. The student's panel replaces
      // itself; the teacher's section keeps its frame and gets new contents.
      if (el.dataset.refresh) el.outerHTML = html;
      else el.innerHTML = html;
      const now = find();
      if (!now) return;
      now.dataset.updated = String(Date.now());
      // The dashboard's card shows only while there is a running desktop to ask about.
      const card = now.closest(".help-card");
      if (card) card.hidden = !now.querySelector(".help-row");
    } catch (_) {
      // Offline for a moment: the next event brings the picture again.
    }
  }

  // Forms inside the panel: posted in the background, then the panel is fetched again.
  document.addEventListener("submit", async (e) => {
    const form = e.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.helpAction) return;
    e.preventDefault();
    const button = e.submitter || form.querySelector("button");
    Portal.busy(button, true);
    try {
      const resp = await request(form.action, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
        body: new URLSearchParams(new FormData(form)),
        redirect: "manual",
      });
      if (resp.type !== "opaqueredirect" && !resp.ok) {
        const data = await resp.json().catch(() => ({}));
        window.alert((data.error && data.error.message) || resp.statusText || t("err_network"));
      }
    } catch (_) {
      window.alert(t("err_network"));
    }
    Portal.busy(button, false);
    refresh();
  });

  // A desktop started or stopped (the view page's and the dashboard's scripts keep
  // `data-state` current): which desktops one can ask about changed.
  let pending = null;
  new MutationObserver(() => {
    if (pending === null) pending = setTimeout(() => { pending = null; refresh(); }, 300);
  }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ["data-state"] });

  let source = null, pause = 1000;
  const open = () => {
    source = new EventSource("/api/help/events");
    source.addEventListener("help", () => { pause = 1000; refresh(); });
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        setTimeout(open, pause);
        pause = Math.min(pause * 2, 30000);
      }
    };
  };
  open();
  window.addEventListener("pagehide", () => source && source.close());
})();
