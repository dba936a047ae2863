// IServ Remote Desktop, admin pages: confirmations before actions that lose data, select-all
// for the desktops table, live CPU and memory, image pulls with live progress, and buttons
// that call the JSON API (through portal.js, loaded first). Every form also works without
// this script.
"use strict";

(() => {
  const { api, t, errorText } = Portal;

  // A button with data-confirm asks first; the form is sent only on "OK".
  document.addEventListener("submit", (ev) => {
    const text = ev.submitter?.dataset.confirm || ev.target.dataset.confirm;
    if (text && !window.confirm(text)) ev.preventDefault();
  });

  for (const all of document.querySelectorAll("[data-select-all]")) {
    const boxes = () => all.form.querySelectorAll(`input[type=checkbox][name="${all.dataset.selectAll}"]`);
    all.addEventListener("change", () => boxes().forEach((b) => { b.checked = all.checked; }));
  }

  const result = document.querySelector('[data-role="admin-result"]');
  for (const b of document.querySelectorAll("[data-api-post]")) {
    b.addEventListener("click", async () => {
      if (b.dataset.confirm && !window.confirm(b.dataset.confirm)) return;
      b.disabled = true;
      try {
        await api("POST", b.dataset.apiPost);
        if (result) result.textContent = t("admin_sessions_ended");
      } catch (err) {
        if (result) result.textContent = errorText(err);
      } finally {
        b.disabled = false;
      }
    });
  }

  // Resource use takes the engine about a second per reading, so it comes after the page.
  const statsTable = document.querySelector("[data-stats-url]");
  if (statsTable && statsTable.querySelector("tr[data-desktop-id]")) {
    const mib = (b) => (b / 1048576).toFixed(0) + " MiB";
    api("GET", statsTable.dataset.statsUrl)
      .then(({ stats }) => {
        for (const row of statsTable.querySelectorAll("tr[data-desktop-id]")) {
          const s = stats[row.dataset.desktopId];
          if (!s) continue;
          if (s.cpu_percent != null) row.querySelector("[data-cpu]").textContent = s.cpu_percent.toFixed(1) + " %";
          if (s.memory_bytes != null) {
            row.querySelector("[data-memory]").textContent =
              mib(s.memory_bytes) + (s.memory_limit_bytes ? " / " + mib(s.memory_limit_bytes) : "");
          }
        }
      })
      .catch(() => {});
  }

  // Image pulls: start over the JSON API and show each layer's progress as it arrives.
  for (const form of document.querySelectorAll("form[data-pull]")) {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const key = form.closest("tr").dataset.typeKey;
      const box = document.querySelector(`[data-pull-for="${key}"]`);
      const bar = box.querySelector("progress");
      const step = box.querySelector('[data-role="pull-step"]');
      const button = form.querySelector("button");
      box.hidden = false;
      button.disabled = true;
      bar.removeAttribute("value");
      const layers = new Map();
      try {
        const { events_url } = await api("POST", form.dataset.pull);
        const source = new EventSource(events_url);
        const finish = (text) => {
          source.close();
          button.disabled = false;
          bar.hidden = true;
          step.textContent = text;
        };
        source.addEventListener("progress", (e) => {
          const p = JSON.parse(e.data);
          if (p.step !== "pulling") return;
          if (p.layer && p.total) layers.set(p.layer, [p.current || 0, p.total]);
          let done = 0, total = 0;
          for (const [c, n] of layers.values()) { done += c; total += n; }
          if (total) { bar.max = total; bar.value = done; }
          step.textContent = t("step_pulling") + (p.layer ? " " + p.layer : "") + ": " + p.status;
        });
        source.addEventListener("done", () => finish(t("admin_pull_done")));
        source.addEventListener("failed", (e) => finish(t("admin_pull_failed") + " " + JSON.parse(e.data).reason));
        source.addEventListener("idle", () => finish(""));
        source.onerror = () => finish(step.textContent);
      } catch (err) {
        button.disabled = false;
        bar.hidden = true;
        step.textContent = errorText(err);
      }
    });
  }
})();
