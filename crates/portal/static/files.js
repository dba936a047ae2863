// The file manager's drag and drop: files and folders dropped on the page (or chosen in the
// upload forms: files, or a folder with its subfolders) go one by one through `PUT /api/files/…` with a progress bar each; a
// dropped folder is created first (`POST … {"op":"mkdir"}`) with its subfolders. A taken name
// gets a number, nothing is overwritten. Without this script the upload form posts as a plain
// form.
"use strict";

(() => {
  const section = document.querySelector('[data-role="upload"]');
  if (!section) return;
  const form = section.querySelector('[data-role="upload-form"]');
  const folderForm = section.querySelector('[data-role="folder-form"]');
  const drop = section.querySelector('[data-role="drop"]');
  const list = section.querySelector('[data-role="progress"]');
  const base = section.dataset.api;
  const dir = section.dataset.dir;
  drop.hidden = false;

  // `names`: the path below this folder, as a list of names.
  const apiPath = (names) =>
    base + [...(dir ? dir.split("/") : []), ...names].map(encodeURIComponent).join("/");

  function row(text) {
    const item = document.createElement("li");
    const label = document.createElement("span");
    label.textContent = text;
    item.append(label);
    list.append(item);
    return { item, label };
  }

  function failed(item, label, shown, text) {
    let message = Portal.t("files_upload_failed");
    try {
      const err = JSON.parse(text).error;
      message = err.message + (err.detail ? " (" + err.detail + ")" : "");
    } catch (_) {}
    label.textContent = shown + " – " + message;
    item.setAttribute("role", "alert");
  }

  // A dropped folder: created, or taken as it is when it exists already (its files then get
  // numbers where their names are taken).
  async function mkdir(names) {
    const shown = names.join("/");
    const resp = await Portal.request(apiPath(names), {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({ op: "mkdir" }),
    }).catch(() => null);
    if (resp && (resp.status === 201 || resp.status === 409)) return true;
    const { item, label } = row(shown);
    if (!resp) {
      label.textContent = shown + " – " + Portal.t("err_network");
      item.setAttribute("role", "alert");
    } else {
      failed(item, label, shown, await resp.text());
    }
    return false;
  }

  // XMLHttpRequest rather than fetch: only it reports upload progress.
  function upload(file, dirs) {
    const shown = [...dirs, file.name].join("/");
    const { item, label } = row(shown + " – " + Portal.t("files_uploading"));
    const bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", shown);
    item.append(" ", bar);
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open("PUT", apiPath([...dirs, file.name]) + "?rename=true");
      xhr.setRequestHeader("x-csrf-token", Portal.csrf());
      xhr.setRequestHeader("accept", "application/json");
      xhr.upload.onprogress = (e) => {
        if (e.lengthComputable) bar.value = Math.round((100 * e.loaded) / e.total);
      };
      xhr.onload = () => {
        if (xhr.status === 201) {
          bar.value = 100;
          label.textContent = shown + " – " + Portal.t("files_upload_done");
          resolve(true);
        } else {
          failed(item, label, shown, xhr.responseText);
          resolve(false);
        }
      };
      xhr.onerror = () => {
        label.textContent = shown + " – " + Portal.t("err_network");
        item.setAttribute("role", "alert");
        resolve(false);
      };
      xhr.send(file);
    });
  }

  // Everything in a dropped folder, depth first: folders before their files.
  async function walk(entry, dirs, out) {
    if (entry.isFile) {
      const file = await new Promise((res, rej) => entry.file(res, rej)).catch(() => null);
      if (file) out.push({ file, dirs });
      return;
    }
    if (!entry.isDirectory) return;
    const here = [...dirs, entry.name];
    out.push({ mkdir: here });
    const reader = entry.createReader();
    // readEntries gives a batch at a time (100 in Chromium) until an empty one.
    for (;;) {
      const batch = await new Promise((res, rej) => reader.readEntries(res, rej)).catch(() => []);
      if (!batch.length) break;
      for (const child of batch) await walk(child, here, out);
    }
  }

  // What a drop holds. Folders come only through `webkitGetAsEntry`; a drop without entries
  // (a DataTransfer made by a script, older browsers) gives its files.
  async function dropped(dt) {
    const entries = [...(dt.items || [])]
      .filter((i) => i.kind === "file")
      .map((i) => (i.webkitGetAsEntry ? i.webkitGetAsEntry() : null));
    if (entries.length && entries.every(Boolean)) {
      const out = [];
      for (const entry of entries) await walk(entry, [], out);
      return out;
    }
    return [...(dt.files || [])].map((file) => ({ file, dirs: [] }));
  }

  async function uploadAll(items) {
    let ok = true;
    for (const it of items) {
      ok = (it.mkdir ? await mkdir(it.mkdir) : await upload(it.file, it.dirs)) && ok;
    }
    if (ok) location.assign(location.pathname + "?done=uploaded");
  }

  form.addEventListener("submit", (e) => {
    const input = form.querySelector('input[type="file"]');
    if (!input.files.length) return;
    e.preventDefault();
    uploadAll([...input.files].map((file) => ({ file, dirs: [] })));
  });
  // A chosen folder: each file knows its path within it (`webkitRelativePath`, the folder's
  // own name first); its folders are created before their files, as for a dropped folder.
  function chosenFolder(files) {
    const out = [];
    const made = new Set();
    for (const file of files) {
      const dirs = (file.webkitRelativePath || file.name).split("/").slice(0, -1);
      for (let i = 1; i <= dirs.length; i++) {
        const key = dirs.slice(0, i).join("/");
        if (!made.has(key)) {
          made.add(key);
          out.push({ mkdir: dirs.slice(0, i) });
        }
      }
      out.push({ file, dirs });
    }
    return out;
  }

  if (folderForm) {
    folderForm.addEventListener("submit", (e) => {
      const input = folderForm.querySelector('input[type="file"]');
      if (!input.files.length) return;
      e.preventDefault();
      uploadAll(chosenFolder([...input.files]));
    });
  }
  document.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("active");
  });
  document.addEventListener("dragleave", () => drop.classList.remove("active"));
  document.addEventListener("drop", async (e) => {
    e.preventDefault();
    drop.classList.remove("active");
    if (!e.dataTransfer) return;
    const items = await dropped(e.dataTransfer);
    if (items.length) uploadAll(items);
  });
})();
