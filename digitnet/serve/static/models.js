// The models list: the checkpoints in the runs folder and the working directory, each with its
// facts and what can be done with it (Use, Resume, Download, Download as ONNX).

import { getJSON } from "./api.js";
import { byId, element, fromTemplate } from "./dom.js";

const RELOAD_MS = 150;          // changes come in bursts (a run ends, a model is chosen): list once

export class ModelsList {
  // ``use(id)`` and ``resume(id)`` answer the buttons; ``running()`` says whether a run is going
  // (no Resume is offered meanwhile).
  constructor({ use, resume, running }) {
    this.actions = { use, resume, running };
    this.timer = 0;
    this.onnx = false;            // the server can convert to ONNX (its onnx package is installed)
  }

  soon() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.load(), RELOAD_MS);
  }

  async load() {
    let listing;
    try {
      listing = await getJSON("/api/models");
    } catch {
      byId("models-note").textContent = "cannot list the models";
      return;
    }
    byId("models-note").textContent = listing.models.length
      ? `Runs from this page are saved in ${listing.runs_dir}/; checkpoints in the working directory are listed too.`
      : `No checkpoints yet: runs from this page are saved in ${listing.runs_dir}/.`;
    this.onnx = Boolean(listing.onnx);
    byId("models").replaceChildren(...listing.models.map((model) => this.item(model)));
  }

  // One model's row, from <template id="model-template">.
  item(model) {
    const item = fromTemplate("model-template");
    item.dataset.id = model.id;
    item.classList.toggle("served", Boolean(model.served));
    item.querySelector("strong").textContent = model.id;
    item.querySelector(".model-facts").textContent = model.error || factsOf(model);
    const download = item.querySelector(".button-link");
    download.href = `/api/models/download?id=${encodeURIComponent(model.id)}`;
    download.download = model.name;
    download.before(...this.buttons(model));
    if (this.onnx && !model.error) download.after(onnxLink(model));
    return item;
  }

  // What the row offers before Download: serving or Use, then training or Resume.
  buttons(model) {
    const made = [];
    if (model.served) made.push(badge("serving", "badge"));
    else if (!model.error) made.push(button("Use", "use", () => this.actions.use(model.id)));
    if (model.training) made.push(badge("training", "badge training"));
    else if (model.resumable && !model.complete && !this.actions.running()) {
      made.push(button("Resume", "secondary resume", () => this.actions.resume(model.id)));
    }
    return made;
  }
}

// "784–30–10 · quadratic · 9 of 30 epochs · η 3 · validation 94.99%"
function factsOf(model) {
  const parts = [model.sizes.join("–"), model.cost];
  if (model.epochs_completed !== null && model.epochs_completed !== undefined) {
    parts.push(`${model.epochs_completed}${model.epochs ? ` of ${model.epochs}` : ""} epochs`);
  }
  if (model.settings.learning_rate !== undefined) parts.push(`η ${model.settings.learning_rate}`);
  if (typeof model.test_accuracy === "number") parts.push(`test ${(100 * model.test_accuracy).toFixed(2)}%`);
  else if (typeof model.best_validation_accuracy === "number") {
    parts.push(`validation ${(100 * model.best_validation_accuracy).toFixed(2)}%`);
  }
  return parts.join(" · ");
}

// "Download as ONNX": the server converts the file's best weights (digitnet.export.onnx).
function onnxLink(model) {
  const stem = model.name.replace(/\.[^.]*$/, "");
  return element("a", {
    className: "button-link onnx", textContent: "Download as ONNX", download: `${stem}.onnx`,
    href: `/api/models/download?id=${encodeURIComponent(model.id)}&format=onnx`,
    title: "The network as an ONNX file, for onnxruntime and the programs that read ONNX",
  });
}

function badge(text, className) {
  return element("span", { className, textContent: text });
}

function button(text, className, onClick) {
  const made = element("button", { type: "button", className, textContent: text });
  made.addEventListener("click", onClick);
  return made;
}
