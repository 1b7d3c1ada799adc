// Drawing page: strokes on a canvas, sent as PNG to /api/predict while drawing.
"use strict";

const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
const digitEl = document.getElementById("digit");
const statusEl = document.getElementById("status");
const barsEl = document.getElementById("bars");
const inputCanvas = document.getElementById("input");
const activationsEl = document.getElementById("activations");

const THROTTLE_MS = 100;
const strokes = []; // each stroke: list of [x, y] in canvas pixels
let drawing = null;
let lastSent = 0;
let timer = null;
let sequence = 0; // answers to older requests are ignored
let shown = 0;

function redraw() {
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, pad.width, pad.height);
  ctx.strokeStyle = "#fff";
  ctx.fillStyle = "#fff";
  ctx.lineWidth = pad.width / 14;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  for (const stroke of strokes) {
    ctx.beginPath();
    ctx.moveTo(stroke[0][0], stroke[0][1]);
    if (stroke.length === 1) {
      ctx.arc(stroke[0][0], stroke[0][1], ctx.lineWidth / 2, 0, 2 * Math.PI);
      ctx.fill();
      continue;
    }
    for (const [x, y] of stroke.slice(1)) ctx.lineTo(x, y);
    ctx.stroke();
  }
}

function point(event) {
  const rect = pad.getBoundingClientRect();
  return [
    ((event.clientX - rect.left) * pad.width) / rect.width,
    ((event.clientY - rect.top) * pad.height) / rect.height,
  ];
}

pad.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  pad.setPointerCapture(event.pointerId);
  drawing = [point(event)];
  strokes.push(drawing);
  redraw();
});

pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  drawing.push(point(event));
  redraw();
  schedule();
});

function endStroke() {
  if (!drawing) return;
  drawing = null;
  send();
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

function schedule() {
  const wait = THROTTLE_MS - (performance.now() - lastSent);
  if (wait <= 0) send();
  else if (!timer) timer = setTimeout(send, wait);
}

document.getElementById("clear").addEventListener("click", () => {
  strokes.length = 0;
  shown = ++sequence;
  redraw();
  showEmpty();
});

document.getElementById("undo").addEventListener("click", () => {
  strokes.pop();
  redraw();
  if (strokes.length) send();
  else {
    shown = ++sequence;
    showEmpty();
  }
});

function send() {
  clearTimeout(timer);
  timer = null;
  lastSent = performance.now();
  const id = ++sequence;
  if (!strokes.length) return showEmpty();
  pad.toBlob(async (blob) => {
    try {
      const response = await fetch("/api/predict", {
        method: "POST",
        headers: { "Content-Type": "image/png" },
        body: blob,
      });
      const data = await response.json();
      if (id < shown) return;
      shown = id;
      if (!response.ok) statusEl.textContent = data.error || "Something went wrong.";
      else if (data.digit === null) showEmpty("No digit found yet: keep drawing.");
      else show(data);
    } catch (error) {
      statusEl.textContent = "Cannot reach the server.";
    }
  }, "image/png");
}

function buildBars(labels) {
  barsEl.replaceChildren();
  for (const label of labels) {
    const li = document.createElement("li");
    li.innerHTML =
      '<span class="label"></span><span class="track"><span class="fill"></span></span>' +
      '<span class="pct">0%</span>';
    li.querySelector(".label").textContent = label;
    li.dataset.probability = "0";
    li.setAttribute("aria-label", `${label}: 0%`);
    barsEl.appendChild(li);
  }
}

function show(data) {
  digitEl.textContent = data.label;
  digitEl.dataset.digit = String(data.digit);
  const best = data.top[0];
  const others = data.top.slice(1).map((t) => `${t.label} ${(100 * t.probability).toFixed(1)}%`);
  statusEl.textContent = `${(100 * best.probability).toFixed(1)}% sure` +
    (others.length ? ` (then ${others.join(", ")})` : "");
  if (barsEl.children.length !== data.probabilities.length) {
    buildBars(data.probabilities.map((_, i) => (data.top.find((t) => t.digit === i) || {}).label ?? String(i)));
  }
  data.probabilities.forEach((p, i) => {
    const li = barsEl.children[i];
    const pct = `${(100 * p).toFixed(1)}%`;
    li.dataset.probability = String(p);
    li.classList.toggle("best", i === data.digit);
    li.querySelector(".fill").style.width = pct;
    li.querySelector(".pct").textContent = pct;
    li.setAttribute("aria-label", `${li.querySelector(".label").textContent}: ${pct}`);
  });
  drawGrid(inputCanvas, data.input.flat(), 28, 1);
  showActivations(data.activations);
}

function showEmpty(message = "Draw a digit on the black square.") {
  digitEl.textContent = "?";
  delete digitEl.dataset.digit;
  statusEl.textContent = message;
  for (const li of barsEl.children) {
    li.dataset.probability = "0";
    li.classList.remove("best");
    li.querySelector(".fill").style.width = "0";
    li.querySelector(".pct").textContent = "0%";
  }
  inputCanvas.getContext("2d").clearRect(0, 0, 28, 28);
  activationsEl.replaceChildren();
}

// Values >= 0 as cells on a canvas, one pixel per cell (CSS scales it up, pixelated)
function drawGrid(canvas, values, cols, top) {
  const rows = Math.ceil(values.length / cols);
  canvas.width = cols;
  canvas.height = rows;
  const g = canvas.getContext("2d");
  const img = g.createImageData(cols, rows);
  values.forEach((v, i) => {
    const t = Math.max(0, Math.min(1, v / top));
    // black -> blue -> white, so weak and strong cells read apart
    img.data[4 * i] = Math.round(255 * Math.max(0, 2 * t - 1) + 60 * Math.min(1, 2 * t) * (1 - t));
    img.data[4 * i + 1] = Math.round(255 * Math.max(0, 2 * t - 1) + 150 * Math.min(1, 2 * t) * (1 - t));
    img.data[4 * i + 2] = Math.round(255 * Math.min(1, 2 * t));
    img.data[4 * i + 3] = 255;
  });
  g.putImageData(img, 0, 0);
}

function showActivations(layers) {
  if (activationsEl.children.length !== layers.length) {
    activationsEl.replaceChildren();
    for (const layer of layers) {
      const div = document.createElement("div");
      div.className = "layer";
      const canvas = document.createElement("canvas");
      canvas.setAttribute("role", "img");
      const name = document.createElement("div");
      name.className = "layer-name";
      div.append(canvas, name);
      activationsEl.appendChild(div);
    }
  }
  layers.forEach((layer, i) => {
    const div = activationsEl.children[i];
    const values = layer.values;
    const top = Math.max(...values.map(Math.abs), 1e-6);
    const cols = Math.min(values.length, 32);
    const canvas = div.querySelector("canvas");
    drawGrid(canvas, values.map(Math.abs), cols, top);
    const active = values.filter((v) => v > 0).length;
    const label = `${layer.name}: ${active} of ${values.length} units active`;
    div.querySelector(".layer-name").textContent = label;
    canvas.setAttribute("aria-label", label);
  });
}

fetch("/health")
  .then((r) => r.json())
  .then((h) => buildBars(h.classes))
  .catch(() => buildBars([..."0123456789"]));
redraw();
