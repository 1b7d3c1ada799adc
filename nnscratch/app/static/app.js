// Drawing page: strokes on a canvas, sent as PNG to /api/predict while drawing, or
// an uploaded picture, shown on the pad and sent as it is. The strokes are kept in the
// pixels of `paper`, the 280x280 picture sent, whatever the pad's size on screen; the
// pad has a canvas pixel per device pixel, so it shows them sharp on any screen. In
// number mode the pad is wider (the paper 700x280), the API is asked for the whole
// number (?number=1) and each digit's reading is shown under its box.
"use strict";

const pad = document.getElementById("pad");
const paper = document.createElement("canvas"); // never shown: what the server reads
paper.width = paper.height = 280;
const digitEl = document.getElementById("digit");
const statusEl = document.getElementById("status");
const barsEl = document.getElementById("bars");
const inputCanvas = document.getElementById("input");
const activationsEl = document.getElementById("activations");

const announceEl = document.getElementById("announce");
const uploadEl = document.getElementById("upload");
const modeEl = document.getElementById("number-mode");
const boxesEl = document.getElementById("boxes");
const drawCard = document.querySelector(".card.draw");
const inputFigure = document.querySelector(".inside figure");

const THROTTLE_MS = 100;
// A drawing is answered in well under a second: a server silent for 10 s is stuck
// (stopped with Ctrl+Z, say). An uploaded photo may take the server's 30 s to arrive.
const DRAWING_TIMEOUT_MS = 10000;
const UPLOAD_TIMEOUT_MS = 45000;
const SLOW_MS = 500; // an answer slower than this is said to be coming
const strokes = []; // each stroke: list of [x, y] in paper pixels
let drawing = null;
let drawingPointer = null; // the finger (mouse, pen) drawing it: others are ignored
let lastSent = 0;
let timer = null;
let sequence = 0; // answers to older requests are ignored
let shown = 0;
let inFlight = false; // one request at a time: a slow server is never flooded
let queued = null; // the request to send when the one in flight is answered
let version = 0; // bumped when the drawing is replaced or undone: drops its pending PNG
let uploaded = false; // the pad is showing an uploaded picture, not a drawing
let picture = null; // that picture, once decoded (an ImageBitmap)
let pictureId = 0; // bumped when the picture goes: one decoded late is not shown
// what the model tells apart: MNIST's digits, or other pictures (Fashion-MNIST's clothes)
let thing = "digit";
let numberMode = false;
let lastNumber = null; // the number answer on show, to place its boxes again
const PAD_LABELS = {
  digit: "Drawing canvas: draw one digit with your mouse or finger",
  picture: "Drawing canvas: draw with your mouse or finger",
  number: "Drawing canvas: write a number, its digits side by side, with your mouse or finger",
};

function redraw() {
  paint(pad);
}

// The drawing on `canvas` (the pad or the paper), scaled from the paper's pixels
function paint(canvas) {
  const ctx = canvas.getContext("2d");
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.setTransform(canvas.width / paper.width, 0, 0, canvas.height / paper.height, 0, 0);
  ctx.strokeStyle = "#fff";
  ctx.fillStyle = "#fff";
  ctx.lineWidth = paper.height / 14; // the wide pad keeps the square one's strokes
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  if (picture) {
    const [x, y, w, h] = pictureBox();
    ctx.drawImage(picture, x, y, w, h);
  }
  for (const stroke of strokes) {
    // a dot where the stroke starts: a tap (or a move that goes nowhere, whose
    // zero-length segments the canvas does not draw) still leaves a mark
    ctx.beginPath();
    ctx.arc(stroke[0][0], stroke[0][1], ctx.lineWidth / 2, 0, 2 * Math.PI);
    ctx.fill();
    if (stroke.length === 1) continue;
    ctx.beginPath();
    ctx.moveTo(stroke[0][0], stroke[0][1]);
    for (const [x, y] of stroke.slice(1)) ctx.lineTo(x, y);
    ctx.stroke();
  }
}

// Where the uploaded picture is drawn on the paper: whole, as large as fits, centred
function pictureBox() {
  const scale = Math.min(paper.width / picture.width, paper.height / picture.height);
  const [w, h] = [picture.width * scale, picture.height * scale];
  return [(paper.width - w) / 2, (paper.height - h) / 2, w, h];
}

function dropPicture() {
  uploaded = false;
  pictureId++;
  if (picture) picture.close();
  picture = null;
}

// The pointer's position in paper pixels (across the pad's box, border included: the
// mapping the page always had, so a stroke gives the picture it always gave)
function point(event) {
  const rect = pad.getBoundingClientRect();
  return [
    ((event.clientX - rect.left) * paper.width) / rect.width,
    ((event.clientY - rect.top) * paper.height) / rect.height,
  ];
}

// One canvas pixel per device pixel of the pad: its CSS size (inside the border) times
// devicePixelRatio, set again when the window, the zoom or the screen under it changes
function fitPad(entries) {
  const { width, height } = entries[0].contentRect;
  const [w, h] = [width, height].map((v) => Math.round(v * devicePixelRatio));
  if (w > 0 && h > 0 && (w !== pad.width || h !== pad.height)) {
    [pad.width, pad.height] = [w, h]; // (which clears it)
    redraw();
  }
  if (boxesEl.children.length) fitReadings();
}
const padObserver = new ResizeObserver(fitPad);
try {
  // told of a change of device pixels too: the window moved to a screen of another ratio
  padObserver.observe(pad, { box: "device-pixel-content-box" });
} catch {
  padObserver.observe(pad); // a browser without that box (Safari)
}

pad.addEventListener("pointerdown", (event) => {
  if (event.button !== 0) return; // main button, finger or pen tip only
  event.preventDefault();
  // a second finger (or a palm) on the pad while one draws is not a stroke; the same
  // pointer pressed again had its release missed, and starts a new one
  if (drawing && event.pointerId !== drawingPointer) return;
  pad.setPointerCapture(event.pointerId);
  if (uploaded) {
    // drawing starts a new picture: the uploaded one, and its answer, go
    dropPicture();
    queued = null;
    shown = ++sequence;
  }
  drawing = [point(event)];
  drawingPointer = event.pointerId;
  strokes.push(drawing);
  redraw();
});

pad.addEventListener("pointermove", (event) => {
  if (!drawing || event.pointerId !== drawingPointer) return;
  // coalesced events: every point the pointer passed, not one per frame
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
  for (const e of events.length ? events : [event]) drawing.push(point(e));
  redraw();
  schedule();
});

function endStroke(event) {
  if (!drawing || event.pointerId !== drawingPointer) return;
  drawing = null;
  send(true);
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);
// after pointerup, a no-op; without one (the capture taken away), the stroke ends
pad.addEventListener("lostpointercapture", endStroke);

function schedule() {
  const wait = THROTTLE_MS - (performance.now() - lastSent);
  if (wait <= 0) send();
  else if (!timer) timer = setTimeout(send, wait);
}

function clear() {
  version++;
  dropPicture();
  strokes.length = 0;
  drawing = null;
  queued = null;
  shown = ++sequence;
  redraw();
  showEmpty();
  announce("Drawing cleared.");
}

function undo() {
  if (!strokes.length) return clear(); // an uploaded picture goes as a whole
  version++; // a PNG still being made shows the stroke undone: it is not sent
  strokes.pop();
  drawing = null;
  redraw();
  if (strokes.length) send(true);
  else {
    queued = null;
    shown = ++sequence;
    showEmpty();
    announce("Drawing empty.");
  }
}

document.getElementById("clear").addEventListener("click", clear);
document.getElementById("undo").addEventListener("click", undo);
// anywhere on the page: the file button, which keeps the focus after a photo is
// picked, has no use for these keys
document.addEventListener("keydown", (event) => {
  // with Shift, the key of redo (which there is none of): not an undo
  if ((event.ctrlKey || event.metaKey) && !event.shiftKey && event.key.toLowerCase() === "z") {
    event.preventDefault();
    undo();
  } else if (event.key === "Escape") {
    clear();
  }
});

uploadEl.addEventListener("change", () => {
  const file = uploadEl.files[0];
  if (!file) return;
  version++;
  strokes.length = 0;
  drawing = null;
  dropPicture();
  redraw();
  // answers for the drawing it replaces (one may be on its way) are not shown under it
  queued = null;
  shown = ++sequence;
  showEmpty(`${file.name}: reading…`);
  // shown on the pad if the browser can decode it (if not, the server says why)
  uploaded = true;
  const id = pictureId;
  createImageBitmap(file)
    .then((bitmap) => {
      if (id !== pictureId) return bitmap.close();
      picture = bitmap;
      redraw();
      if (lastNumber) drawBoxes(lastNumber); // now placed on the picture as shown
    })
    .catch(() => {});
  const form = new FormData();
  form.append("file", file);
  request(form, true, `${file.name}: `);
  uploadEl.value = "";
});

// The drawing as PNG; `final` answers (stroke ended, undo) are also announced
function send(final = false) {
  clearTimeout(timer);
  timer = null;
  lastSent = performance.now();
  if (!strokes.length) return showEmpty();
  const at = version;
  paint(paper);
  paper.toBlob((blob) => {
    if (at === version) request(blob, final, "");
  }, "image/png");
}

async function request(body, final, prefix) {
  if (inFlight) {
    // keep only the newest; a final request stays final
    queued = { body, final: final || (queued !== null && queued.final), prefix };
    return;
  }
  inFlight = true;
  const id = ++sequence;
  const drawn = body instanceof Blob;
  const headers = drawn ? { "Content-Type": "image/png" } : {};
  // a slow server: the page says it is reading, not "Draw a digit" under a drawing
  // (a prediction or an error on show stays until this answer replaces it)
  const waiting = setTimeout(() => {
    const showing = digitEl.dataset.digit !== undefined || statusEl.classList.contains("error");
    if (id > shown && !showing) statusEl.textContent = prefix ? prefix + "reading…" : "Reading…";
  }, SLOW_MS);
  try {
    const url = numberMode ? "/api/predict?number=1" : "/api/predict";
    const answer = await post(url, body, headers, drawn ? DRAWING_TIMEOUT_MS : UPLOAD_TIMEOUT_MS);
    if (answer.failure) {
      if (id > shown) {
        shown = id;
        showError(answer.failure);
      }
      return;
    }
    const { response, data } = answer;
    if (id > shown) {
      shown = id;
      // the server may have been restarted with another model since the page loaded
      if (response.ok && data !== null && Array.isArray(data.classes)) useClasses(data.classes);
      if (!response.ok || data === null) {
        const answer = `The server answered ${response.status} ${response.statusText}`;
        showError(prefix + ((data && data.error) || answer.trim() + "."));
      } else if (data.digits !== undefined && data.number === null) {
        showEmpty(prefix ? prefix + "no digit found." : "No digit found yet: keep writing.");
        if (final) announce(statusEl.textContent);
      } else if (data.digits !== undefined) {
        showNumber(data, prefix);
        if (final) announce(`Reads ${data.number}. ${statusEl.textContent}`);
      } else if (data.digit === null) {
        showEmpty(prefix ? prefix + `no ${thing} found.` : `No ${thing} found yet: keep drawing.`);
        if (final) announce(statusEl.textContent);
      } else {
        show(data, prefix);
        if (final) announce(`Looks like ${data.label}. ${statusEl.textContent}`);
      }
    }
  } catch (error) {
    // a fault of this page, not of the connection: say so, and keep its details
    console.error(error);
    showError(`Could not show the answer (${error.message}).`);
  } finally {
    clearTimeout(waiting);
    inFlight = false;
    if (queued) {
      const next = queued;
      queued = null;
      request(next.body, next.final, next.prefix);
    }
  }
}

// The server's answer as {response, data} (data null if not JSON: a proxy's error
// page, say), or {failure} saying why there is none: no connection, or none in time
async function post(url, body, headers, timeoutMs) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    const response = await fetch(url, { method: "POST", headers, body, signal: controller.signal });
    const data = await response.json().catch(() => null);
    if (!controller.signal.aborted) return { response, data };
  } catch (error) {
    if (!controller.signal.aborted) return { failure: "Cannot reach the server." };
  } finally {
    clearTimeout(timer);
  }
  return { failure: `The server did not answer within ${timeoutMs / 1000} s.` };
}

// An error leaves no earlier prediction on show, which would read as this input's
function showError(message) {
  showEmpty(message);
  statusEl.classList.add("error");
  announce(message);
}

// Screen readers hear finished results only, not every update made while drawing
function announce(message) {
  announceEl.textContent = message;
}

function buildBars(labels) {
  barsEl.replaceChildren();
  for (const label of labels) {
    const li = document.createElement("li");
    li.innerHTML =
      '<span class="label"></span><span class="track"><span class="fill"></span></span>' +
      '<span class="pct">0%</span>';
    li.querySelector(".label").textContent = label;
    li.querySelector(".label").title = label; // in full, should it be cut short
    setBar(li, 0, "0%");
    barsEl.appendChild(li);
  }
}

// One bar at probability p, its figure `pct`; a screen reader reads the bar by its
// label, so that says the same ("7: 96.6%")
function setBar(li, p, pct = `${(100 * p).toFixed(1)}%`) {
  li.dataset.probability = String(p);
  li.querySelector(".fill").style.width = pct;
  li.querySelector(".pct").textContent = pct;
  li.setAttribute("aria-label", `${li.querySelector(".label").textContent}: ${pct}`);
}

function span(className, text) {
  const element = document.createElement("span");
  element.className = className;
  element.textContent = text;
  return element;
}

// The label's length sets its size (style.css): "T-shirt/top" fits where "7" does
function showLabel(label) {
  digitEl.textContent = label;
  digitEl.style.setProperty("--chars", String(Math.max(1, [...label].length)));
}

function show(data, prefix = "") {
  showLabel(data.label);
  statusEl.classList.remove("error");
  digitEl.dataset.digit = String(data.digit);
  const best = data.top[0];
  const others = data.top.slice(1).map((t) => `${t.label} ${(100 * t.probability).toFixed(1)}%`);
  // the photo's name and the runners-up in spans: where room is short, style.css
  // cuts the name to a line and leaves the runners-up to the bars
  statusEl.replaceChildren(`${(100 * best.probability).toFixed(1)}% sure`);
  if (prefix) statusEl.prepend(Object.assign(span("file", prefix), { title: prefix.trim() }));
  if (others.length) statusEl.append(span("then", ` (then ${others.join(", ")})`));
  data.probabilities.forEach((p, i) => {
    setBar(barsEl.children[i], p);
    barsEl.children[i].classList.toggle("best", i === data.digit);
  });
  drawGrid(inputCanvas, data.input.flat(), 28, 1);
  showActivations(data.activations);
}

// The bars and prompts for the model's classes (its answers carry them): MNIST's
// digits, or other pictures (Fashion-MNIST's clothes)
function useClasses(classes) {
  const labels = [...barsEl.querySelectorAll(".label")].map((l) => l.textContent);
  if (labels.length === classes.length && labels.every((l, i) => l === classes[i])) return;
  buildBars(classes);
  const digits = classes.length === 10 && classes.every((c, i) => c === String(i));
  thing = digits ? "digit" : "picture";
  document.body.dataset.thing = thing; // style.css gives short labels' bars less room
  // a number is read by a model of digits only (the server refuses the others)
  modeEl.closest(".mode").hidden = !digits;
  showPrompts();
  if (digitEl.dataset.digit === undefined && !statusEl.classList.contains("error")) showEmpty();
}

// The titles, labels and the upload's prompt, for the mode and what the model tells apart
function showPrompts() {
  const title = numberMode ? "Write a number" : `Draw a ${thing}`;
  document.getElementById("title").textContent = title;
  document.title = `nnscratch: ${title.toLowerCase()}`;
  digitEl.title = numberMode ? "Number read" : thing === "digit" ? "Predicted digit" : "Predicted class";
  pad.setAttribute("aria-label", PAD_LABELS[numberMode ? "number" : thing]);
  document.getElementById("upload-text").textContent = numberMode
    ? "Or read a picture of a number"
    : thing === "digit" ? "Or read a picture of a digit" : "Or read a picture";
}

function showEmpty(message = numberMode ? "Write a number on the black pad, its digits side by side." : `Draw a ${thing} on the black square.`) {
  showLabel("?");
  delete digitEl.dataset.digit;
  statusEl.textContent = message;
  statusEl.classList.remove("error");
  for (const li of barsEl.children) {
    setBar(li, 0, "0%");
    li.classList.remove("best");
  }
  inputCanvas.getContext("2d").clearRect(0, 0, 28, 28);
  activationsEl.replaceChildren();
  boxesEl.replaceChildren();
  lastNumber = null;
}

// Number mode: the number large, each digit's reading in the status, boxes on the pad
function showNumber(data, prefix = "") {
  showEmpty();
  showLabel(data.number);
  digitEl.dataset.digit = data.number;
  const parts = data.digits.map((d) => `${d.label} ${(100 * d.probability).toFixed(1)}%`);
  const n = data.digits.length;
  statusEl.textContent = prefix + `${n} digit${n === 1 ? "" : "s"}: ${parts.join(", ")}` +
    (data.lines > 1 ? ` (the first of ${data.lines} lines)` : "");
  lastNumber = data;
  drawBoxes(data);
  const row = document.createElement("div");
  row.className = "digits";
  for (const d of data.digits) {
    const figure = document.createElement("figure");
    const canvas = document.createElement("canvas");
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", `28 by 28 input read as ${d.label}`);
    drawGrid(canvas, d.input.flat(), 28, 1);
    const caption = document.createElement("figcaption");
    caption.textContent = d.label;
    figure.append(canvas, caption);
    row.appendChild(figure);
  }
  activationsEl.appendChild(row);
}

// Each digit's box over the pad, in percent of the pad, with its reading under it.
// Boxes are in the pixels of the picture the server read (data.size), which is the
// pad for a drawing, or the uploaded picture as drawn (scaled, centred) on the pad.
function drawBoxes(data) {
  boxesEl.replaceChildren();
  const [x0, y0, w, h] = uploaded && picture ? pictureBox() : [0, 0, paper.width, paper.height];
  const [sw, sh] = data.size;
  const pct = (v, side) => `${(100 * v) / side}%`;
  for (const d of data.digits) {
    const [l, t, r, b] = d.box;
    const div = document.createElement("div");
    div.className = "box";
    div.style.left = pct(x0 + (l / sw) * w, paper.width);
    div.style.top = pct(y0 + (t / sh) * h, paper.height);
    div.style.width = pct(((r - l) / sw) * w, paper.width);
    div.style.height = pct(((b - t) / sh) * h, paper.height);
    const reading = document.createElement("span");
    reading.className = "reading";
    const label = document.createElement("b");
    label.textContent = d.label;
    const percent = document.createElement("span");
    percent.className = "pct";
    percent.textContent = ` ${Math.round(100 * d.probability)}%`;
    reading.append(label, percent);
    div.appendChild(reading);
    boxesEl.appendChild(div);
  }
  fitReadings();
}

// Readings that would overlap (narrow digits on a small screen) show the digit only;
// the status line under the answer has every percentage
function fitReadings() {
  boxesEl.classList.remove("compact");
  const rects = [...boxesEl.querySelectorAll(".reading")].map((r) => r.getBoundingClientRect());
  const overlap = (a, b) =>
    a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  const crowded = rects.some((r, i) => rects.slice(i + 1).some((o) => overlap(r, o)));
  boxesEl.classList.toggle("compact", crowded);
}

modeEl.addEventListener("change", () => {
  numberMode = modeEl.checked;
  drawCard.classList.toggle("wide", numberMode);
  paper.width = numberMode ? 700 : 280; // 5:2, as style.css shows the pad
  barsEl.hidden = numberMode;
  inputFigure.hidden = numberMode;
  showPrompts();
  clear();
  announce(numberMode ? "Number mode: write several digits side by side." : "Digit mode.");
});

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
  .then((h) => useClasses(h.classes))
  .catch(() => buildBars([..."0123456789"]));
redraw();
