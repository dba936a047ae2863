// IServ Remote Desktop, watch page: the screen itself is an <img> fed by the portal's stream
// and needs no script; this only says so when the stream has ended (desktop stopped, access
// or session ended), instead of leaving the last picture without comment.
"use strict";

(() => {
  const img = document.querySelector("[data-role=watch]");
  const status = document.querySelector("[data-role=watch-status]");
  if (!img || !status) return;
  img.addEventListener("error", () => {
    status.textContent = Portal.t("watch_ended");
    img.classList.add("ended");
  });
})();
