// The model panel: the served model's facts, the upload limit, and the Test button.

import { ServerRefused, getJSON, postJSON } from "./api.js";
import { showModelPresent } from "./answer.js";
import { byId, element } from "./dom.js";

const FACTS = ["m-file", "m-sizes", "m-cost", "m-epochs", "m-recorded"];
const MB = 1048576;

export const percent = (x) => `${(100 * x).toFixed(2)}%`;

export class ModelPanel {
  constructor() {
    this.maxUpload = 0;         // bytes, from /api/model (0: not known yet)
    this.present = null;        // whether a model is served (null: not known yet)
    byId("test").addEventListener("click", () => this.test());
  }

  // Ask the server which model it serves and show it.
  async load() {
    let model;
    try {
      model = await getJSON("/api/model");
    } catch {
      byId("m-file").textContent = "cannot load the model's details";
      return;
    }
    this.maxUpload = model.max_upload || 0;
    this.present = model.file !== null;
    byId("test").disabled = !this.present;
    showModelPresent(this.present);
    if (this.present) showFacts(model); else showNoModel();
  }

  // Why the server would refuse this file, or "" when it would take it.
  uploadProblem(file) {
    if (!this.maxUpload || file.size <= this.maxUpload) return "";
    return `${file.name} is ${(file.size / MB).toFixed(1)} MB; this server accepts up to ` +
      `${(this.maxUpload / MB).toFixed(0)} MB (digitnet serve --max-upload)`;
  }

  clearTestResult() {
    byId("test-result").textContent = "";
  }

  // Accuracy on the MNIST test split, measured by the server.
  async test() {
    const button = byId("test");
    button.disabled = true;
    button.classList.add("busy");
    showTestResult("Testing…", false);
    try {
      const answer = await postJSON("/api/evaluate");
      showTestResult(accuracyLine(answer), false);
    } catch (error) {
      showTestResult(error instanceof ServerRefused ? error.message : "cannot reach the server", true);
    } finally {
      button.disabled = false;
      button.classList.remove("busy");
    }
  }
}

function showNoModel() {       // `digitnet serve` without a model: train one below
  byId("m-file").textContent = "none yet";
  for (const id of FACTS.slice(1)) byId(id).textContent = "–";
}

function showFacts(model) {
  byId("m-file").textContent = model.file;
  byId("m-file").title = model.format;
  byId("m-sizes").textContent = `${model.sizes.join("–")} ${model.activation}, ${model.dtype}`;
  byId("m-cost").textContent = model.cost;
  byId("m-epochs").textContent = trainedText(model);
  byId("m-recorded").textContent = model.test_accuracy !== null ? percent(model.test_accuracy) : "not recorded";
  if (!model.test_data) {
    showTestResult("The MNIST test files are not in the data folder: run `digitnet download` first.", true);
  }
}

// "30 epochs, weights of epoch 29, η 3, batch 10" (or the file's format when nothing is recorded).
function trainedText(model) {
  const trained = [];
  if (model.epochs !== null) trained.push(`${model.epochs} epoch${model.epochs === 1 ? "" : "s"}`);
  if (model.epochs !== null && model.epoch !== null && model.epoch !== model.epochs) {
    trained.push(`weights of epoch ${model.epoch}`);
  }
  if (model.learning_rate !== null) trained.push(`η ${model.learning_rate}`);
  if (model.batch_size !== null) trained.push(`batch ${model.batch_size}`);
  return trained.length ? trained.join(", ") : model.format;
}

// "97.50% correct (9,750 of 10,000 test digits, 0.12 s)", the accuracy in bold.
function accuracyLine(answer) {
  const count = (n) => n.toLocaleString("en");
  return [element("strong", { textContent: percent(answer.accuracy) }),
    ` correct (${count(answer.correct)} of ${count(answer.total)} test digits, ${answer.seconds.toFixed(2)} s)`];
}

// A line of text or a list of nodes; a note is shown as a remark rather than a result.
function showTestResult(content, note) {
  const result = byId("test-result");
  result.replaceChildren(...(typeof content === "string" ? [content] : content));
  result.className = note ? "test-result note" : "test-result";
}
