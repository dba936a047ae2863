// The file manager's drag and drop: files dropped on the page (or chosen in the upload form)
// go one by one through `PUT /api/files/…` with a progress bar each; a taken name gets a
// number, nothing is overwritten. Without this script the upload form posts as a plain form.
"use strict";

(() => {
  const section = document.querySelector('[data-role="upload"]');
  if (!section) return;
  const form = section.querySelector('[data-role="upload-form"]');
  const drop = section.querySelector('[data-role="drop"]');
  const list = section.querySelector('[data-role="progress"]');
  const base = section.dataset.api;
  const dir = section.dataset.dir;
  drop.hidden = false;

  const apiPath = (name) =>
    base + [...(dir ? dir.split("/") : []), name].map(encodeURIComponent).join("/");

  // XMLHttpRequest rather than fetch: only it reports upload progress.
  function upload(file) {
    const item = document.createElement("li");
    const label = document.createElement("span");
    label.textContent = file.name + " – " + Portal.t("files_uploading");
    const bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    item.append(label, " ", bar);
    list.append(item);
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open("PUT", apiPath(file.name) + "?rename=true");
      xhr.setRequestHeader("x-csrf-token", Portal.csrf());
      xhr.setRequestHeader("accept", "application/json");
      xhr.upload.onprogress = (e) => {
        if (e.lengthComputable) bar.value = Math.round((100 * e.loaded) / e.total);
      };
      xhr.onload = () => {
        if (xhr.status === 201) {
          bar.value = 100;
          label.textContent = file.name + " – " + Portal.t("files_upload_done");
          resolve(true);
        } else {
          let message = Portal.t("files_upload_failed");
          try {
            const err = JSON.parse(xhr.responseText).error;
            message = err.message + (err.detail ? " (" + err.detail + ")" : "");
          } catch (_) {}
          label.textContent = file.name + " – " + message;
          item.setAttribute("role", "alert");
          resolve(false);
        }
      };
      xhr.onerror = () => {
        label.textContent = file.name + " – " + Portal.t("err_network");
        item.setAttribute("role", "alert");
        resolve(false);
      };
      xhr.send(file);
    });
  }

  async function uploadAll(files) {
    let ok = true;
    for (const file of files) ok = (await upload(file)) && ok;
    if (ok) location.assign(location.pathname + "?done=uploaded");
  }

  form.addEventListener("submit", (e) => {
    const input = form.querySelector('input[type="file"]');
    if (!input.files.length) return;
    e.preventDefault();
    uploadAll([...input.files]);
  });
  document.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("active");
  });
  document.addEventListener("dragleave", () => drop.classList.remove("active"));
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("active");
    const files = [...(e.dataTransfer?.files || [])];
    if (files.length) uploadAll(files);
  });
})();
