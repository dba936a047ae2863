// IServ Remote Desktop, messages from teachers on the dashboard and the view page: shows the
// current list whenever the live events (portal.js) bring one, and hides a message when it
// expires. Without this script the page shows the messages as they were when it loaded.
// Message texts are set as text, never as HTML.
"use strict";

(() => {
  const box = document.querySelector('[data-role="class-messages"]');
  if (!box) return;
  const from = box.dataset.from || "";

  function render(messages) {
    box.replaceChildren(...messages.map((m) => {
      const p = document.createElement("p");
      p.className = "card notice";
      p.dataset.role = "class-message";
      p.dataset.group = m.group;
      p.dataset.expires = String(m.expires_at);
      const head = document.createElement("strong");
      head.textContent = `${from} ${m.author} (${m.group}):`;
      const body = document.createElement("span");
      body.dataset.role = "body";
      body.textContent = m.body;
      p.append(head, " ", body);
      return p;
    }));
  }

  // Expired messages go without a reload; the server no longer sends them either.
  function dropExpired() {
    const now = Date.now() / 1000;
    box.querySelectorAll('[data-role="class-message"]').forEach((p) => {
      if (Number(p.dataset.expires) <= now) p.remove();
    });
  }

  document.addEventListener("portal:class-messages", (e) => render(e.detail.messages || []));
  window.setInterval(dropExpired, 30000);
})();
