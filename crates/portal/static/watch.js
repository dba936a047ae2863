// IServ Remote Desktop, watch page: the screen itself is an <img> fed by the portal's stream
// and needs no script. This says so when the stream has ended (desktop stopped, access or
// session ended) instead of leaving the last picture without comment, and ends the stream
// when the page is left: a page kept in the back/forward cache would otherwise keep watching
// (and the student would keep seeing the teacher's name).
"use strict";

(() => {
  const img = document.querySelector("[data-role=watch]");
  const status = document.querySelector("[data-role=watch-status]");
  if (!img || !status) return;
  const src = img.getAttribute("src");
  let leaving = false;
  img.addEventListener("error", () => {
    if (leaving) return;
    status.textContent = Portal.t("watch_ended");
    img.classList.add("ended");
  });
  window.addEventListener("pagehide", () => {
    leaving = true;
    img.removeAttribute("src");
  });
  window.addEventListener("pageshow", (e) => {
    if (!e.persisted) return;
    leaving = false;
    img.setAttribute("src", src);
  });
})();
