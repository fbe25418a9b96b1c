// The training panel: start, stop and resume a run, follow it (curve, weight pictures), and switch the served model.
// One `digitnet train` runs at a time on the server; this page shows it and steers it.

import { getJSON, postJSON } from "./api.js";
import { byId, say } from "./dom.js";
import { follow } from "./events.js";
import { TrainingForm } from "./form.js";
import { ModelsList } from "./models.js";
import { RunView } from "./run.js";
import { TrainingWeights } from "./weights.js";

export class TrainingPanel {
  // ``modelPanel``: the served model's panel (reloaded when the model changes);
  // ``reask()``: ask again what the pad shows (the answering model changed).
  constructor(modelPanel, reask) {
    this.modelPanel = modelPanel;
    this.reask = reask;
    this.status = null;         // the newest status from the server
    this.lastEpochs = -1;       // epochs_completed last shown (to notice a new epoch)
    this.lastState = "";
    this.form = null;
    this.view = new RunView();
    this.weights = new TrainingWeights();
    this.models = new ModelsList({
      use: (id) => this.use(id), resume: (id) => this.resume(id), running: () => this.running,
    });
    byId("t-form").addEventListener("submit", (event) => this.trainOrStop(event));
    byId("t-resume").addEventListener("click", () => this.status && this.resume(this.status.run));
    byId("use-training").addEventListener("change", () => this.reask());
  }

  get running() {
    return Boolean(this.status && this.status.running);
  }

  async start() {
    if (await this.buildForm()) follow((status) => this.receive(status), () => this.running);
    this.models.load();
  }

  // The form, unless the server was started without training (then the panel is hidden).
  async buildForm() {
    let described;
    try {
      described = await getJSON("/api/train/settings");
    } catch {
      return false;
    }
    if (!described.available) {
      document.querySelector(".train-card").hidden = true;
      byId("use-training-row").hidden = true;
      return false;
    }
    this.form = new TrainingForm(described);
    return true;
  }

  // A status from the server (an event, a poll, or the answer to a button).
  receive(next) {
    if (this.status && next.version < this.status.version) return;   // older than what is shown
    this.status = next;
    this.view.show(next);
    if (next.state !== "idle") this.weights.show(next);
    this.form?.setEnabled(!next.running);
    this.showToggle();
    if (next.state !== "idle") this.noticeChanges();
  }

  // Once an epoch ends or the state changes: follow the answer and the list along.
  noticeChanges() {
    const done = this.status.epochs_completed || 0;
    const state = this.status.state;
    if (done === this.lastEpochs && state === this.lastState) return;
    const newEpoch = done !== this.lastEpochs && this.lastEpochs !== -1;
    this.lastEpochs = done;
    this.lastState = state;
    if (newEpoch && byId("use-training").checked) this.reask();   // watch the answer improve
    this.models.soon();
    if (state === "finished" && this.modelPanel.present === false) this.serveFirstModel();
  }

  // "Answer with the model being trained": possible once the run has saved an epoch.
  showToggle() {
    const available = this.status.saved_epoch;
    const toggle = byId("use-training");
    toggle.disabled = !available;
    if (!available) toggle.checked = false;
    byId("use-training-note").textContent = available
      ? `(${this.status.run}, epoch ${this.status.saved_epoch})` : "(no epoch saved yet)";
  }

  async trainOrStop(event) {
    event.preventDefault();
    await this.act(() => (this.running ? postJSON("/api/train/stop")
      : postJSON("/api/train/start", { settings: this.form.settings() })));
  }

  async resume(id) {
    await this.act(() => postJSON("/api/train/resume", { id, settings: this.form.resumeSettings() }));
  }

  // Send a request that answers with the new status; show the server's refusal if it says no.
  async act(request) {
    say(byId("t-error"), "");
    try {
      this.receive(await request());
    } catch (error) {
      say(byId("t-error"), error.message);
    }
  }

  // Serve a model chosen in the list, then show it and answer with it.
  async use(id) {
    say(byId("t-error"), "");
    try {
      await postJSON("/api/models/select", { id });
      await this.modelPanel.load();
      this.modelPanel.clearTestResult();
      this.reask();
      this.models.load();
    } catch (error) {
      say(byId("t-error"), error.message);
    }
  }

  // A server started without a model serves the first run that finishes.
  async serveFirstModel() {
    try {
      await postJSON("/api/models/select", { id: this.status.run });
      this.modelPanel.load();
      this.models.soon();
    } catch { /* the list still offers it */ }
  }
}
