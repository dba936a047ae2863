// IServ Remote Desktop: the dashboard. Cards follow the user's desktop states live (another
// tab, an admin, a crash, the idle culler); Start shows the start's progress on the card and
// opens the desktop when it is ready; Stop and Remove act through the JSON API. Without this
// script the cards' forms do the same with a page reload.
"use strict";

(() => {
  const { api, t, ago, busy, liveEvents, followStart, errorText } = Portal;
  const cards = new Map();
  for (const card of document.querySelectorAll(".desktop[data-type]")) cards.set(card.dataset.type, card);
  const q = (card, role) => card.querySelector(`[data-role="${role}"]`);
  /** Starts whose progress is being shown, by type (each value stops following). */
  const following = new Map();
  /** Types this tab started: their desktop opens by itself when ready. */
  const opening = new Set();
  let online = true;

  function setUrls(card, id) {
    card.dataset.desktopId = id;
    card.querySelector('[data-action="open"]').href = `/view/${id}`;
    card.querySelector('[data-action="stop"]').action = `/desktops/${id}/stop`;
    card.querySelector('[data-action="remove"] form').action = `/desktops/${id}/remove`;
  }

  function showProgress(card, text) {
    card.classList.add("in-progress");
    const bar = q(card, "progress");
    bar.removeAttribute("value");
    q(card, "step").textContent = text || "";
  }

  function hideProgress(card) {
    card.classList.remove("in-progress");
    q(card, "step").textContent = "";
  }

  function setError(card, err) {
    q(card, "error").textContent = errorText(err);
  }

  // Shows desktop `d` (as the live stream sends it) on its card; `null`: no desktop (removed).
  function render(card, d) {
    const state = d ? d.state : "none";
    const changed = card.dataset.state !== state;
    card.dataset.state = state;
    q(card, "state").textContent = d ? d.state_text : t("state_none");
    const ended = state === "stopped" || state === "failed";
    q(card, "reason").textContent = ended && d.reason_text ? d.reason_text : "";
    const detail = ended && d.reason && (state === "failed" || d.reason_text) ? d.reason : "";
    q(card, "detail").textContent = detail;
    q(card, "detail-box").hidden = !detail;
    const used = q(card, "last-used");
    if (d && d.last_used) used.dataset.ts = d.last_used;
    else if (!d) delete used.dataset.ts;
    used.textContent = ago(Number(used.dataset.ts || 0));
    if (d) setUrls(card, d.id);
    if (changed) {
      for (const b of card.querySelectorAll("button")) busy(b, false);
      if (state !== "none") setError(card, null);
    }
    if (state === "starting") follow(card, `/api/desktops/${card.dataset.desktopId}/events`);
    else if (!following.has(card.dataset.type) || state !== "running") hideProgress(card);
    if (state === "none") card.querySelector('[data-action="remove"]').open = false;
  }

  // Follows one start's steps on its card until it is ready or failed.
  function follow(card, url) {
    const key = card.dataset.type;
    if (following.has(key)) return;
    card.classList.add("in-progress");
    const bar = q(card, "progress"), step = q(card, "step");
    following.set(key, followStart(url, {
      step(text, percent) {
        if (percent === null) bar.removeAttribute("value");
        else bar.value = percent;
        step.textContent = text;
      },
      end(how) {
        following.delete(key);
        // A failure arrives on the live stream too, with its reason in words.
        if (how === "state" || how === "failed") hideProgress(card);
        if (how === "failed") opening.delete(key);
        if (how === "ready" && opening.has(key)) location.assign(`/view/${card.dataset.desktopId}`);
      },
    }));
  }

  for (const [key, card] of cards) {
    card.querySelector('[data-action="start"]').addEventListener("submit", async (e) => {
      e.preventDefault();
      const button = e.submitter || card.querySelector('[data-action="start"] button');
      const before = card.dataset.state;
      busy(button, true);
      setError(card, null);
      opening.add(key);
      card.dataset.state = "starting";
      q(card, "state").textContent = t("state_starting");
      showProgress(card, t("step_requested"));
      try {
        const d = await api("POST", "/api/desktops", { type: key });
        setUrls(card, d.id);
        if (d.state === "running") location.assign(d.view_url);
        else follow(card, d.events_url);
      } catch (err) {
        opening.delete(key);
        card.dataset.state = before;
        q(card, "state").textContent = t(`state_${before}`);
        hideProgress(card);
        busy(button, false);
        setError(card, err);
      }
    });
    card.querySelector('[data-action="stop"]').addEventListener("submit", async (e) => {
      e.preventDefault();
      if (!window.confirm(t("stop_confirm_text"))) return;
      const button = e.submitter || e.target.querySelector("button");
      busy(button, true);
      setError(card, null);
      try {
        const d = await api("POST", `/api/desktops/${card.dataset.desktopId}/stop`);
        // The live stream shows the new state; without it, the answer does.
        if (!online) render(card, { ...d, state_text: t(`state_${d.state}`), last_used: null });
      } catch (err) {
        busy(button, false);
        setError(card, err);
      }
    });
    card.querySelector('[data-action="remove"] form').addEventListener("submit", async (e) => {
      e.preventDefault();
      const button = e.submitter || e.target.querySelector("button");
      busy(button, true);
      setError(card, null);
      try {
        await api("DELETE", `/api/desktops/${card.dataset.desktopId}`);
        card.querySelector('[data-action="remove"]').open = false;
        if (!online) render(card, null);
      } catch (err) {
        setError(card, err);
      } finally {
        busy(button, false);
      }
    });
    // An uploaded icon replaces the built-in one once it has loaded.
    const img = card.querySelector(".icon-img");
    const showIcon = () => { if (img.naturalWidth > 0) { img.hidden = false; card.querySelector(".icon-text").hidden = true; } };
    if (img) {
      img.addEventListener("load", showIcon);
      if (img.complete) showIcon();
    }
    if (card.dataset.state === "starting") follow(card, `/api/desktops/${card.dataset.desktopId}/events`);
  }

  // Live states; a short outage is not worth a banner, a longer one is.
  const banner = document.querySelector('[data-role="live"]');
  let leaving = false, bannerTimer = null;
  window.addEventListener("pagehide", () => { leaving = true; });
  liveEvents({
    snapshot(list) {
      for (const [key, card] of cards) render(card, list.find((d) => d.type === key) || null);
    },
    desktop(d) {
      const card = cards.get(d.type);
      if (card) render(card, d.state === "none" ? null : d);
    },
    status(up) {
      online = up;
      clearTimeout(bannerTimer);
      if (up) banner.hidden = true;
      else if (!leaving) bannerTimer = setTimeout(() => { if (!online && !leaving) { banner.textContent = t("live_offline"); banner.hidden = false; } }, 2000);
    },
  });
  setInterval(() => {
    for (const el of document.querySelectorAll("time[data-ts]")) el.textContent = ago(Number(el.dataset.ts));
  }, 30000);
})();
