// IServ Remote Desktop, teacher page: keeps the parts of the page marked `data-refresh` (the
// students' desktops, the prepared lessons' progress) current by fetching each again from the
// server every few seconds while the page is visible. Without this script the page shows them
// as they were when loaded. Requests go through portal.js.
"use strict";

(() => {
  const everyMs = 5000;

  function keepCurrent(section) {
    const url = section.dataset.refresh;
    let timer = null;
    let stopped = false;

    async function refresh() {
      timer = null;
      if (stopped || document.hidden) return;
      try {
        // A redirect means the session has ended (to the sign-in page): stop, keep what is shown.
        const resp = await Portal.request(url, { redirect: "manual" });
        if (resp.type === "opaqueredirect" || resp.status === 401 || resp.status === 403) {
          stopped = true;
          return;
        }
        if (resp.ok) {
          // Server-rendered and escaped like the page itself.
          section.innerHTML = await resp.text();
          section.dataset.updated = String(Date.now());
        }
      } catch (_) {
        // Offline for a moment: try again at the next tick.
      }
      schedule();
    }

    function schedule() {
      if (!stopped && timer === null && !document.hidden) timer = window.setTimeout(refresh, everyMs);
    }

    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && timer === null) refresh();
    });
    schedule();
  }

  for (const section of document.querySelectorAll("[data-refresh]")) keepCurrent(section);
})();
