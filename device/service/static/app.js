// The live preview page: plain JS, no build step, nothing from the network but this service.
"use strict";

const POLL_MS = 500;
const TOKEN_COOKIE = "digits_token";
const $ = (id) => document.getElementById(id);

function percent(part, whole) {
  return `${(100 * part) / whole}%`;
}

function formatConfidence(confidence) {
  return confidence == null ? "" : `${(100 * confidence).toFixed(1)} %`;
}

// Boxes in frame pixels, drawn over an image of any displayed size.
function drawBoxes(layer, digits, width, height) {
  layer.replaceChildren(
    ...digits.map((found) => {
      const box = document.createElement("div");
      box.className = "box";
      box.style.left = percent(found.box.x, width);
      box.style.top = percent(found.box.y, height);
      box.style.width = percent(found.box.w, width);
      box.style.height = percent(found.box.h, height);
      const label = document.createElement("span");
      label.textContent = `${found.digit} · ${Math.round(100 * found.confidence)}%`;
      box.append(label);
      return box;
    }),
  );
}

function showRoi(roi) {
  const layer = $("roi");
  if (!roi) {
    layer.hidden = true;
    document.querySelector(".hint").textContent =
      "The whole frame is searched (no DIGITS_ROI). The green boxes are the digits found.";
    return;
  }
  const [x, y, w, h] = roi;
  Object.assign(layer.style, {
    left: `${100 * x}%`, top: `${100 * y}%`, width: `${100 * w}%`, height: `${100 * h}%`,
  });
  layer.hidden = false;
}

function showReading(reading) {
  const number = reading && reading.number != null ? reading.number : "–";
  $("reading-number").textContent = number;
  $("reading-number").dataset.number = reading && reading.number != null ? reading.number : "";
  $("reading-confidence").textContent = formatConfidence(reading && reading.confidence);
  $("reading-reason").textContent = reading && reading.reason ? reading.reason : "";
  $("inputs").replaceChildren(
    ...(reading ? reading.inputs : []).map((src, i) => {
      const img = document.createElement("img");
      img.src = src;
      img.alt = `model input ${i + 1}`;
      return img;
    }),
  );
}

function showHistory(history) {
  $("history").replaceChildren(
    ...history.map((entry) => {
      const item = document.createElement("li");
      const when = new Date(entry.last_seen * 1000).toLocaleTimeString();
      const what = entry.number == null ? "no digit" : entry.number;
      item.dataset.number = entry.number == null ? "" : entry.number;
      item.textContent = `${what} ${formatConfidence(entry.confidence)} `;
      const time = document.createElement("span");
      time.className = "when";
      time.textContent = `${when} (${entry.frames} frame${entry.frames === 1 ? "" : "s"})`;
      item.append(time);
      return item;
    }),
  );
}

function showCamera(latest) {
  const status = $("camera-status");
  const ready = latest.camera.ready;
  status.textContent = ready
    ? `${latest.camera.name} · ≤ ${latest.fps} fps`
    : `no camera: ${latest.camera.reason}`;
  status.className = `status ${ready ? "ok" : "bad"}`;
}

// The stable reading (DIGITS_WATCH): pushed by /readings/stream, so the page does not poll it.
let stableEvents = null;

function showStable(reading) {
  const number = reading.number == null ? "nothing in view" : reading.number;
  $("stable-number").textContent = number;
  $("stable-number").dataset.number = reading.number == null ? "" : reading.number;
  const since = new Date(reading.since).toLocaleTimeString();
  $("stable-since").textContent = `${formatConfidence(reading.confidence)} since ${since}`;
}

function showLive(latest) {
  $("stable").hidden = !latest.watch;
  if (!latest.watch) return;
  if (!stableEvents) {
    // EventSource reconnects by itself when the stream breaks (the server says after 2 s).
    stableEvents = new EventSource("/readings/stream");
    stableEvents.addEventListener("reading", (event) => showStable(JSON.parse(event.data)));
  }
  if (!latest.watch.has_reading) $("stable-number").textContent = "…";
  $("publishers").replaceChildren(
    ...latest.publishers.map((publisher) => {
      const item = document.createElement("li");
      item.className = publisher.connected ? "ok" : "bad";
      item.textContent = publisher.connected
        ? `${publisher.publisher}: publishing to ${publisher.broker} (${publisher.state_topic})`
        : `${publisher.publisher}: ${publisher.reason || publisher.state}`;
      return item;
    }),
  );
}

let roiShown = false;

async function poll() {
  try {
    const answer = await fetch("/preview/latest", { cache: "no-store" });
    if (answer.status === 401) {
      location.reload(); // the token changed: the server answers with its login box
      return;
    }
    if (answer.ok) {
      const latest = await answer.json();
      if (!roiShown) {
        showRoi(latest.roi);
        roiShown = true;
      }
      showCamera(latest);
      showLive(latest);
      showReading(latest.reading);
      showHistory(latest.history);
      const frame = latest.frame;
      const digits = latest.reading ? latest.reading.digits : [];
      if (frame && frame.width) drawBoxes($("boxes"), digits, frame.width, frame.height);
      else drawBoxes($("boxes"), [], 1, 1);
    }
  } catch (error) {
    $("camera-status").textContent = "service unreachable";
    $("camera-status").className = "status bad";
  }
  setTimeout(poll, POLL_MS);
}

// A stream that broke (service restarted, network hiccup) is reopened.
function keepStreamAlive() {
  const img = $("stream");
  img.addEventListener("error", () => {
    setTimeout(() => { img.src = `/stream.mjpg?retry=${Date.now()}`; }, 2000);
  });
}

async function upload(file) {
  const result = $("upload-result");
  result.hidden = false;
  const image = $("upload-image");
  if (image.src) URL.revokeObjectURL(image.src);
  image.src = URL.createObjectURL(file);
  $("upload-number").textContent = "…";
  $("upload-number").dataset.number = "";
  $("upload-confidence").textContent = "";
  $("upload-reason").textContent = "";
  drawBoxes($("upload-boxes"), [], 1, 1);
  const form = new FormData();
  form.append("file", file, file.name);
  try {
    const answer = await fetch("/predict", { method: "POST", body: form });
    const body = await answer.json();
    if (!answer.ok) {
      $("upload-number").textContent = "–";
      $("upload-reason").textContent = `${body.detail || answer.statusText}`;
      return;
    }
    $("upload-number").textContent = body.number == null ? "–" : body.number;
    $("upload-number").dataset.number = body.number == null ? "" : body.number;
    $("upload-confidence").textContent = formatConfidence(body.confidence);
    $("upload-reason").textContent = body.reason || "";
    await image.decode().catch(() => {});
    if (image.naturalWidth) {
      drawBoxes($("upload-boxes"), body.digits, image.naturalWidth, image.naturalHeight);
    }
  } catch (error) {
    $("upload-number").textContent = "–";
    $("upload-reason").textContent = `upload failed: ${error}`;
  }
}

function setUpUpload() {
  const zone = $("drop-zone");
  const input = $("upload-input");
  input.addEventListener("change", () => {
    if (input.files.length) upload(input.files[0]);
  });
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    if (event.dataTransfer.files.length) upload(event.dataTransfer.files[0]);
  });
}

function setUpLogout() {
  const button = $("logout");
  if (!document.cookie.split("; ").some((c) => c.startsWith(`${TOKEN_COOKIE}=`))) return;
  button.hidden = false;
  button.addEventListener("click", () => {
    document.cookie = `${TOKEN_COOKIE}=; path=/; SameSite=Strict; max-age=0`;
    location.reload();
  });
}

keepStreamAlive();
setUpUpload();
setUpLogout();
poll();
