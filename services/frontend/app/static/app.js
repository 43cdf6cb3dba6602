// Progressive enhancement of the page: without this script every form still works (full page loads).
// With it, "Random sample", uploads and drawings update their result box in place from the JSON endpoints,
// whose answers carry the same server-rendered HTML fragment the full page uses.
"use strict";

(() => {
  const TIMEOUT_MS = 15000;
  const OFFLINE = "The page could not reach the server. Check your connection and try again.";

  async function requestJson(url, options = {}) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
    try {
      const response = await fetch(url, {
        ...options,
        headers: { Accept: "application/json" },
        signal: controller.signal,
      });
      let body = null;
      try {
        body = await response.json();
      } catch (_) {
        body = { detail: `The server answered ${response.status} without details. Please try again.` };
      }
      return { ok: response.ok, body };
    } catch (_) {
      return { ok: false, body: { detail: OFFLINE } };
    } finally {
      clearTimeout(timer);
    }
  }

  function showMessage(slot, message) {
    const note = document.createElement("p");
    note.className = "notice notice-error";
    note.setAttribute("role", "alert");
    note.textContent = message;
    slot.replaceChildren(note);
  }

  // A tiny picture (a 28x28 image, say) is shown with crisp square pixels instead of a blur.
  function sharpenSmall(img) {
    const apply = () => img.classList.toggle("pixelated", img.naturalWidth > 0 && img.naturalWidth <= 96);
    if (img.complete) apply(); else img.addEventListener("load", apply, { once: true });
  }
  document.querySelectorAll("img.upload-preview").forEach(sharpenSmall);

  // Run `work` with the slot marked busy and the buttons disabled, then show its HTML or its error.
  async function update(slot, buttons, work) {
    slot.setAttribute("aria-busy", "true");
    buttons.forEach((button) => { button.disabled = true; });
    try {
      const { ok, body } = await work();
      if (ok && body.html) {
        slot.innerHTML = body.html;
        slot.querySelectorAll("img.upload-preview").forEach(sharpenSmall);
      } else {
        showMessage(slot, (body && body.detail) || "Something went wrong. Please try again.");
      }
    } finally {
      slot.setAttribute("aria-busy", "false");
      buttons.forEach((button) => { button.disabled = false; });
    }
  }

  // "Random sample", and a strip of the samples shown so far (click one to see it again).
  const sampleForm = document.getElementById("sample-form");
  const sampleSlot = document.getElementById("sample-result");
  const historyBox = document.getElementById("sample-history");
  const historyList = document.getElementById("history-list");
  const HISTORY_SIZE = 12;

  function remember() {
    const figure = sampleSlot.querySelector("figure[data-index]");
    if (!figure || !historyList) return;
    const index = figure.dataset.index;
    historyList.querySelector(`[data-index="${index}"]`)?.remove();
    const correct = figure.classList.contains("is-correct");
    const item = document.createElement("li");
    item.dataset.index = index;
    const link = document.createElement("a");
    link.href = `/?sample=${encodeURIComponent(index)}`;
    link.className = correct ? "is-correct" : "is-wrong";
    const summary = `Test image ${index}: ${figure.dataset.trueLabel}, predicted ${figure.dataset.predictedLabel}` +
      (correct ? " (correct)" : " (wrong)");
    link.title = summary;
    const thumb = document.createElement("img");
    thumb.src = figure.querySelector("img").src;
    thumb.alt = summary;
    thumb.className = "pixelated";
    link.append(thumb);
    item.append(link);
    historyList.prepend(item);
    while (historyList.children.length > HISTORY_SIZE) historyList.lastElementChild.remove();
    historyBox.hidden = historyList.children.length < 2;  // the first one is just what is on show
  }

  async function showSample(url, buttons) {
    await update(sampleSlot, buttons, () => requestJson(url));
    remember();
  }

  if (sampleForm && sampleSlot) {
    remember();
    sampleForm.addEventListener("submit", (event) => {
      event.preventDefault();
      showSample("/sample", [document.getElementById("sample-button")]);
    });
    historyList?.addEventListener("click", (event) => {
      const link = event.target.closest("a");
      if (!link) return;
      event.preventDefault();
      const index = link.closest("li").dataset.index;
      showSample(`/sample?index=${encodeURIComponent(index)}`, [document.getElementById("sample-button")]);
    });
  }

  // Uploads
  const uploadForm = document.getElementById("upload-form");
  const uploadSlot = document.getElementById("upload-result");
  const maxBytes = uploadForm ? Number(uploadForm.dataset.maxBytes) : 0;

  function classify(file, filename, buttons) {
    if (file.size > maxBytes) {
      const limit = (maxBytes / 1024 / 1024).toFixed(1);
      showMessage(uploadSlot, `That picture is too big: the limit is ${limit} MiB. A small picture is plenty.`);
      return;
    }
    const data = new FormData();
    data.append("file", file, filename);
    update(uploadSlot, buttons, () => requestJson("/predict", { method: "POST", body: data }));
  }

  if (uploadForm && uploadSlot) {
    uploadForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const input = document.getElementById("file-input");
      const file = input.files && input.files[0];
      if (!file) {
        showMessage(uploadSlot, "Choose a picture first.");
        return;
      }
      classify(file, file.name, [document.getElementById("upload-button")]);
    });
  }

  // Drawing: a canvas sent as a PNG upload.
  const panel = document.getElementById("draw-panel");
  const canvas = document.getElementById("draw-canvas");
  if (panel && canvas && uploadSlot) {
    panel.hidden = false;
    const context = canvas.getContext("2d");
    const invert = document.getElementById("draw-invert");
    let drawing = false;
    let dirty = false;

    const colors = () => (invert.checked ? ["#ffffff", "#000000"] : ["#000000", "#ffffff"]);
    const clear = () => {
      const [background] = colors();
      context.fillStyle = background;
      context.fillRect(0, 0, canvas.width, canvas.height);
      canvas.classList.toggle("is-inverted", invert.checked);
      dirty = false;
    };
    const point = (event) => {
      const box = canvas.getBoundingClientRect();
      return [(event.clientX - box.left) * (canvas.width / box.width),
        (event.clientY - box.top) * (canvas.height / box.height)];
    };
    clear();

    canvas.addEventListener("pointerdown", (event) => {
      drawing = true;
      canvas.setPointerCapture(event.pointerId);
      const [x, y] = point(event);
      context.strokeStyle = colors()[1];
      context.lineWidth = 24;
      context.lineCap = "round";
      context.lineJoin = "round";
      context.beginPath();
      context.moveTo(x, y);
      context.lineTo(x + 0.1, y + 0.1);
      context.stroke();
      dirty = true;
    });
    canvas.addEventListener("pointermove", (event) => {
      if (!drawing) return;
      const [x, y] = point(event);
      context.lineTo(x, y);
      context.stroke();
    });
    const stop = () => { drawing = false; };
    canvas.addEventListener("pointerup", stop);
    canvas.addEventListener("pointercancel", stop);

    invert.addEventListener("change", clear);
    document.getElementById("draw-clear").addEventListener("click", clear);
    const submit = document.getElementById("draw-submit");
    submit.addEventListener("click", () => {
      if (!dirty) {
        showMessage(uploadSlot, "Draw something first.");
        return;
      }
      canvas.toBlob((blob) => classify(blob, "drawing.png", [submit]), "image/png");
    });
  }

  // Training: while a run goes on (data-poll="true"), ask /training every few seconds and swap in the body the
  // server rendered: the bar, the time left and the curves move, then the new model's arrival shows. A failed
  // request is tried again at the next tick; a hidden tab skips its ticks.
  const trainingBox = document.getElementById("training");
  if (trainingBox) {
    const pollMs = Number(trainingBox.dataset.pollMs) || 3000;
    const refreshTraining = async () => {
      if (!document.hidden) {
        const shown = encodeURIComponent(trainingBox.dataset.shownVersion || "");
        const { ok, body } = await requestJson(`/training?shown=${shown}`);
        if (ok && !body.html) {
          trainingBox.remove();  // the progress file is gone
          return;
        }
        if (ok) {
          trainingBox.innerHTML = body.html;
          trainingBox.dataset.state = body.state;
          trainingBox.dataset.poll = String(body.poll);
        }
      }
      if (trainingBox.dataset.poll === "true") setTimeout(refreshTraining, pollMs);
    };
    if (trainingBox.dataset.poll === "true") setTimeout(refreshTraining, pollMs);
  }
})();
