// digitnet serve: the drawing pad, the answer and the model panel.  Plain modern JS, no build step.
//
// Strokes are kept as lists of points in pad units (0..1), so the pad can be redrawn at any screen
// size (crisp on high-DPI screens), Undo is "drop the last stroke and redraw", and what goes to
// the server is always the same EXPORT_SIDE x EXPORT_SIDE PNG, whatever the screen: the server
// prepares it exactly as `digitnet predict` prepares a file.
"use strict";

const EXPORT_SIDE = 280;        // pixels of the PNG sent to /api/predict
const STROKE = 0.072;           // pen width as a share of the pad's side: a digit 70% of the pad tall gets MNIST's median 2.1 px strokes at 20 px
const INK = "#161616";           // neutral grey: the server then reads one channel instead of three
const PAPER = "#ffffff";
const DEBOUNCE_MS = 120;        // while drawing, ask again this long after the pen last moved
const CLOSE_SHARE = 0.6;        // runner-up at least this share of the winner: say it is unsure

const $ = (id) => document.getElementById(id);
const pad = $("pad");
const padFrame = $("pad-frame");
const seen = $("seen");
const bars = [];

let strokes = [];               // finished and current strokes: arrays of [x, y] in 0..1
let current = null;             // the stroke being drawn, or null
let activePointer = null;
let shownImage = null;          // {bitmap, name} when a dropped/chosen file is on the pad
let debounceTimer = 0;
let requestSeq = 0;             // answers to older requests than the newest shown one are dropped
let shownSeq = 0;
let inFlight = false;
let pending = false;            // the pad changed while a request was running
let maxUpload = 0;              // bytes, from /api/model (0: not known yet)

// ---------------------------------------------------------------------------------------------
// Drawing

function resizePad() {
  const side = pad.clientWidth;
  const ratio = window.devicePixelRatio || 1;
  pad.width = Math.round(side * ratio);
  pad.height = Math.round(side * ratio);
  render(pad.getContext("2d"), pad.width, true);
}

// Draw the strokes (or the shown image) onto a context of side x side pixels.
function render(ctx, side, onScreen) {
  ctx.save();
  ctx.fillStyle = PAPER;
  ctx.fillRect(0, 0, side, side);
  if (shownImage) {
    const { bitmap } = shownImage;
    const scale = Math.min(side / bitmap.width, side / bitmap.height);
    const w = bitmap.width * scale, h = bitmap.height * scale;
    ctx.drawImage(bitmap, (side - w) / 2, (side - h) / 2, w, h);
  }
  ctx.strokeStyle = INK;
  ctx.fillStyle = INK;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.lineWidth = STROKE * side;
  for (const stroke of strokes) drawStroke(ctx, stroke, side);
  ctx.restore();
  if (onScreen) {
    $("pad-hint").hidden = strokes.length > 0 || shownImage !== null;
  }
}

// A smooth curve through the points: quadratic segments between midpoints.
function drawStroke(ctx, points, side) {
  if (points.length === 1) {
    ctx.beginPath();
    ctx.arc(points[0][0] * side, points[0][1] * side, ctx.lineWidth / 2, 0, 2 * Math.PI);
    ctx.fill();
    return;
  }
  ctx.beginPath();
  ctx.moveTo(points[0][0] * side, points[0][1] * side);
  for (let i = 1; i < points.length - 1; i++) {
    const mx = (points[i][0] + points[i + 1][0]) / 2;
    const my = (points[i][1] + points[i + 1][1]) / 2;
    ctx.quadraticCurveTo(points[i][0] * side, points[i][1] * side, mx * side, my * side);
  }
  const last = points[points.length - 1];
  ctx.lineTo(last[0] * side, last[1] * side);
  ctx.stroke();
}

function padPoint(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) / box.width, (event.clientY - box.top) / box.height];
}

pad.addEventListener("pointerdown", (event) => {
  if (activePointer !== null || (event.pointerType === "mouse" && event.button !== 0)) return;
  event.preventDefault();
  activePointer = event.pointerId;
  pad.setPointerCapture(event.pointerId);
  if (shownImage) { shownImage = null; $("pad-file").hidden = true; }
  current = [padPoint(event)];
  strokes.push(current);
  render(pad.getContext("2d"), pad.width, true);
});

pad.addEventListener("pointermove", (event) => {
  if (event.pointerId !== activePointer || !current) return;
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
  for (const e of (events.length ? events : [event])) current.push(padPoint(e));
  render(pad.getContext("2d"), pad.width, true);
  clearTimeout(debounceTimer);
  debounceTimer = setTimeout(askForDrawing, DEBOUNCE_MS);
});

function endStroke(event) {
  if (event.pointerId !== activePointer) return;
  activePointer = null;
  current = null;
  clearTimeout(debounceTimer);
  askForDrawing();
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

function undo() {
  if (shownImage) { clearPad(); return; }
  if (!strokes.length) return;
  strokes.pop();
  render(pad.getContext("2d"), pad.width, true);
  if (strokes.length) askForDrawing(); else showEmpty();
}

function clearPad() {
  strokes = [];
  current = null;
  activePointer = null;
  shownImage = null;
  $("pad-file").hidden = true;
  clearTimeout(debounceTimer);
  requestSeq++;                 // answers still on their way are for a drawing that is gone
  render(pad.getContext("2d"), pad.width, true);
  showEmpty();
}

// The pad as the PNG the server reads: EXPORT_SIDE square, ink on white.
function exportBlob() {
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = EXPORT_SIDE;
  render(canvas.getContext("2d"), EXPORT_SIDE, false);
  return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
}

// ---------------------------------------------------------------------------------------------
// Asking the server

function askForDrawing() {
  if (!strokes.length) return;
  if (inFlight) { pending = true; return; }   // one request at a time; the newest drawing goes next
  inFlight = true;
  const seq = ++requestSeq;
  exportBlob()
    .then((blob) => ask(blob, seq))
    .finally(() => {
      inFlight = false;
      if (pending) { pending = false; askForDrawing(); }
    });
}

async function ask(body, seq) {
  try {
    const response = await fetch("/api/predict", {
      method: "POST", body, headers: { "Content-Type": body.type || "application/octet-stream" },
    });
    const answer = await response.json();
    if (seq !== requestSeq || seq < shownSeq) return;   // the pad has changed since
    shownSeq = seq;
    if (!response.ok) showError(answer.error || `the server answered ${response.status}`);
    else showAnswer(answer);
  } catch (error) {
    if (seq === requestSeq) showError("cannot reach the server (is `digitnet serve` still running?)");
  }
}

async function openFile(file) {
  if (!file) return;
  strokes = [];
  current = null;
  shownImage = null;
  try {
    shownImage = { bitmap: await createImageBitmap(file), name: file.name };
  } catch (error) {
    shownImage = null;          // a format the browser cannot show (TIFF, ...): the server may still read it
  }
  const label = $("pad-file");
  label.textContent = file.name;
  label.hidden = false;
  render(pad.getContext("2d"), pad.width, true);
  $("pad-hint").hidden = true;
  if (maxUpload && file.size > maxUpload) {
    showError(`${file.name} is ${(file.size / 1048576).toFixed(1)} MB; this server accepts up to ` +
      `${(maxUpload / 1048576).toFixed(0)} MB (digitnet serve --max-upload)`);
    return;
  }
  await ask(file, ++requestSeq);
}

// ---------------------------------------------------------------------------------------------
// Showing the answer

function buildBars() {
  const list = $("bars");
  for (let d = 0; d < 10; d++) {
    const item = document.createElement("li");
    item.innerHTML = '<span class="bar-value"></span><span class="bar-track"><span class="bar-fill"></span></span>' +
      `<span class="bar-digit">${d}</span>`;
    list.appendChild(item);
    bars.push(item);
  }
}

function showAnswer(answer) {
  const { digit, confidence, scores } = answer;
  $("digit").textContent = String(digit);
  $("digit").classList.remove("empty");
  $("confidence").textContent = `confidence ${confidence.toFixed(3)}`;
  $("error").hidden = true;
  const order = scores.map((s, d) => [s, d]).sort((a, b) => b[0] - a[0]);
  const [first, second] = order;
  const doubt = $("doubt");
  if (answer.warnings && answer.warnings.length) {
    doubt.textContent = `Careful: ${answer.warnings[0]}.`;   // e.g. several digits side by side
    doubt.hidden = false;
  } else if (first[0] > 0 && second[0] >= CLOSE_SHARE * first[0]) {
    doubt.textContent = `Not sure: it could be a ${second[1]}.`;
    doubt.hidden = false;
  } else if (confidence < 0.5) {
    doubt.textContent = "Not sure: nothing stands out.";
    doubt.hidden = false;
  } else {
    doubt.hidden = true;
  }
  scores.forEach((score, d) => {
    const item = bars[d];
    item.querySelector(".bar-fill").style.height = `${Math.max(0, Math.min(1, score)) * 100}%`;
    item.querySelector(".bar-value").textContent = score >= 0.01 ? score.toFixed(2) : "";
    item.classList.toggle("winner", d === digit);
    item.setAttribute("aria-label", `${d}: ${score.toFixed(3)}`);
  });
  drawSeen(answer.input);
}

function showEmpty() {
  $("digit").textContent = "?";
  $("digit").classList.add("empty");
  $("confidence").textContent = "Draw a digit to start.";
  $("doubt").hidden = true;
  $("error").hidden = true;
  for (const item of bars) {
    item.querySelector(".bar-fill").style.height = "0%";
    item.querySelector(".bar-value").textContent = "";
    item.classList.remove("winner");
  }
  drawSeen(null);
}

function showError(message) {
  $("digit").textContent = "?";
  $("digit").classList.add("empty");
  $("confidence").textContent = "";
  $("doubt").hidden = true;
  const error = $("error");
  error.textContent = message;
  error.hidden = false;
  drawSeen(null);
}

// The 28x28 input (rows of numbers in 0..1, white ink on black) into the little canvas.
function drawSeen(rows) {
  const ctx = seen.getContext("2d");
  const image = ctx.createImageData(28, 28);
  for (let r = 0; r < 28; r++) {
    for (let c = 0; c < 28; c++) {
      const v = rows ? Math.round(Math.max(0, Math.min(1, rows[r][c])) * 255) : 0;
      const i = 4 * (28 * r + c);
      image.data[i] = image.data[i + 1] = image.data[i + 2] = v;
      image.data[i + 3] = 255;
    }
  }
  ctx.putImageData(image, 0, 0);
}

// ---------------------------------------------------------------------------------------------
// The model panel

const percent = (x) => `${(100 * x).toFixed(2)}%`;

async function loadModel() {
  try {
    const response = await fetch("/api/model");
    const model = await response.json();
    if (!response.ok) throw new Error(model.error);
    maxUpload = model.max_upload || 0;
    $("m-file").textContent = model.file;
    $("m-file").title = model.format;
    $("m-sizes").textContent = `${model.sizes.join("–")} ${model.activation}, ${model.dtype}`;
    $("m-cost").textContent = model.cost;
    const trained = [];
    if (model.epochs !== null) trained.push(`${model.epochs} epoch${model.epochs === 1 ? "" : "s"}`);
    if (model.epochs !== null && model.epoch !== null && model.epoch !== model.epochs) {
      trained.push(`weights of epoch ${model.epoch}`);
    }
    if (model.learning_rate !== null) trained.push(`η ${model.learning_rate}`);
    if (model.batch_size !== null) trained.push(`batch ${model.batch_size}`);
    $("m-epochs").textContent = trained.length ? trained.join(", ") : model.format;
    $("m-recorded").textContent = model.test_accuracy !== null ? percent(model.test_accuracy) : "not recorded";
    if (!model.test_data) {
      $("test-result").textContent = "The MNIST test files are not in the data folder: run `digitnet download` first.";
      $("test-result").className = "test-result note";
    }
  } catch (error) {
    $("m-file").textContent = "cannot load the model's details";
  }
}

async function runTest() {
  const button = $("test");
  const result = $("test-result");
  button.disabled = true;
  button.classList.add("busy");
  result.className = "test-result";
  result.textContent = "Testing…";
  try {
    const response = await fetch("/api/evaluate", { method: "POST" });
    const answer = await response.json();
    if (!response.ok) {
      result.textContent = answer.error || `the server answered ${response.status}`;
      result.className = "test-result note";
    } else {
      result.innerHTML = "";
      const strong = document.createElement("strong");
      strong.textContent = percent(answer.accuracy);
      result.append(strong, ` correct (${answer.correct.toLocaleString("en")} of ${answer.total.toLocaleString("en")}` +
        ` test digits, ${answer.seconds.toFixed(2)} s)`);
    }
  } catch (error) {
    result.textContent = "cannot reach the server";
    result.className = "test-result note";
  } finally {
    button.disabled = false;
    button.classList.remove("busy");
  }
}

// ---------------------------------------------------------------------------------------------
// Wiring

function setUp() {
  buildBars();
  showEmpty();
  resizePad();
  new ResizeObserver(resizePad).observe(pad);
  $("undo").addEventListener("click", undo);
  $("clear").addEventListener("click", clearPad);
  $("choose").addEventListener("click", () => $("file").click());
  $("file").addEventListener("change", (event) => {
    openFile(event.target.files[0]);
    event.target.value = "";
  });
  $("test").addEventListener("click", runTest);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") { clearPad(); event.preventDefault(); }
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") { undo(); event.preventDefault(); }
  });
  for (const type of ["dragenter", "dragover"]) {
    padFrame.addEventListener(type, (event) => { event.preventDefault(); padFrame.classList.add("dropping"); });
  }
  for (const type of ["dragleave", "drop"]) {
    padFrame.addEventListener(type, () => padFrame.classList.remove("dropping"));
  }
  padFrame.addEventListener("drop", (event) => {
    event.preventDefault();
    openFile(event.dataTransfer.files[0]);
  });
  // A file dropped beside the pad must not make the browser navigate away from the page.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());
  loadModel();
}

// For tests and the curious: the exact PNG the next answer will be computed from.
window.digitnet = {
  exportDataURL: () => exportBlob().then((blob) => new Promise((resolve) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.readAsDataURL(blob);
  })),
  strokes: () => strokes.length,
};

setUp();
