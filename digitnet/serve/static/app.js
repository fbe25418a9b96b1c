// digitnet serve: the page's entry module.  It makes the parts (the pad, the answer, the model
// panel, the inside panel, the training panel) and wires them to the page's buttons, keys and drops.
// Plain modern JavaScript as ES modules, no build step.

import { buildBars, showEmpty, showError } from "./answer.js";
import { Asker } from "./asker.js";
import { byId } from "./dom.js";
import { InsidePanel } from "./inside.js";
import { ModelPanel } from "./model.js";
import { Pad } from "./pad.js";
import { TrainingPanel } from "./train.js";

function setUp() {
  buildBars();
  showEmpty();
  const modelPanel = new ModelPanel();
  const pad = new Pad(byId("pad"));
  const asker = new Asker(pad, byId("use-training"), () => modelPanel.present === false);
  pad.onDraw({ moving: () => asker.soon(), finished: () => asker.now() });
  const page = { pad, asker, modelPanel, file: null };
  let training = null;
  page.inside = new InsidePanel({
    image: () => answeredImage(page), useTraining: byId("use-training"), kept: () => training.models.load(),
  });
  wireTools(page);
  wireKeys(page);
  wireDrops(page);
  modelPanel.load();
  training = new TrainingPanel(modelPanel, () => { page.inside.modelMayHaveChanged(); reask(page); });
  training.start();
  publish(page);
}

// The picture the answer is about: the strokes on the pad, else the file opened (null: nothing).
function answeredImage({ pad, file }) {
  if (pad.hasStrokes) return pad.exportBlob();
  return file;
}

// Drop the last stroke (or the image shown) and ask again, or show the empty answer.
function undo(page) {
  const { pad, asker } = page;
  if (pad.showsImage) { clear(page); return; }
  if (!pad.undoStroke()) return;
  if (pad.hasStrokes) asker.now(); else showEmpty();
}

function clear(page) {
  const { pad, asker } = page;
  page.file = null;
  asker.forget();
  pad.clear();
  showEmpty();
}

// Ask again for what is on the pad: the answering model changed.
function reask({ pad, asker }) {
  if (pad.hasStrokes) asker.now();
}

async function openFile(page, file) {
  const { pad, asker, modelPanel } = page;
  if (!file) return;
  page.file = file;
  await pad.showFile(file);
  const problem = modelPanel.uploadProblem(file);
  if (problem) showError(problem); else await asker.file(file);
}

function wireTools(page) {
  byId("undo").addEventListener("click", () => undo(page));
  byId("clear").addEventListener("click", () => clear(page));
  byId("choose").addEventListener("click", () => byId("file").click());
  byId("file").addEventListener("change", (event) => {
    openFile(page, event.target.files[0]);
    event.target.value = "";
  });
}

// Escape clears, Ctrl+Z (Cmd+Z) undoes.
function wireKeys(page) {
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") { clear(page); event.preventDefault(); }
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") { undo(page); event.preventDefault(); }
  });
}

// An image file dropped on the pad is read; one dropped beside it must not make the browser
// navigate away from the page.
function wireDrops(page) {
  const frame = byId("pad-frame");
  for (const type of ["dragenter", "dragover"]) {
    frame.addEventListener(type, (event) => { event.preventDefault(); frame.classList.add("dropping"); });
  }
  for (const type of ["dragleave", "drop"]) {
    frame.addEventListener(type, () => frame.classList.remove("dropping"));
  }
  frame.addEventListener("drop", (event) => {
    event.preventDefault();
    openFile(page, event.dataTransfer.files[0]);
  });
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());
}

// The one name the page publishes, read-only, for tests and the curious (no module uses it):
// the exact PNG the next answer will be computed from, and how many strokes are on the pad.
function publish({ pad }) {
  window.digitnet = Object.freeze({
    exportDataURL: () => pad.exportBlob().then((blob) => new Promise((resolve) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.readAsDataURL(blob);
    })),
    strokes: () => pad.strokes.length,
  });
}

setUp();
