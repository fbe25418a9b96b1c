// The run as the training panel shows it: the Train/Stop button, the state line, the progress bar,
// the times, the message (plain words when the network is only guessing) and the curve from epoch 0.
// Each function shows one part of a status from the server.

import { drawCurve } from "./curve.js";
import { byId, svgElement } from "./dom.js";

const STATE_WORDS = {
  starting: "Starting", running: "Training", stopping: "Stopping", finished: "Finished",
  interrupted: "Stopped", diverged: "Diverged", write_failed: "Could not save", killed: "Killed", failed: "Failed",
};
const FAILED = ["diverged", "write_failed", "killed", "failed"];

export class RunView {
  constructor() {
    this.drawnCurve = "";       // run, epochs shown and planned of the curve last drawn
    this.status = null;
    new ResizeObserver(() => this.status && this.redrawCurve()).observe(byId("t-curve"));
  }

  show(status) {
    this.status = status;
    showButtons(status);
    byId("t-run").hidden = status.state === "idle";
    if (status.state === "idle") return;
    showState(status);
    showProgress(status);
    showTimes(status);
    showMessage(status);
    // Progress events come several times a second, the curve changes once an epoch (or a peek): redraw then.
    const curveKey = `${status.run}|${status.history.length}|${status.epochs || 0}|${Boolean(status.untrained)}`
      + `|${(status.peeks || []).length}`;
    if (curveKey !== this.drawnCurve) {
      this.drawnCurve = curveKey;
      this.redrawCurve();
    }
  }

  redrawCurve() {
    const { history, epochs, untrained, peeks } = this.status;
    drawCurve(byId("t-curve"), history, epochs || 0, untrained || null, peeks || []);
    showSampleKey(peeks || []);
  }
}

// Train becomes Stop while a run goes; Resume is offered for a run that can continue.
function showButtons(status) {
  const go = byId("t-go");
  byId("t-go-label").textContent = status.running ? "Stop" : "Train";
  go.classList.toggle("stop", status.running);
  go.querySelector("svg").replaceChildren(status.running
    ? svgElement("rect", { x: 6, y: 6, width: 12, height: 12, rx: 1 })
    : svgElement("path", { d: "M7 4v16l13-8z" }));
  go.disabled = status.state === "stopping";
  byId("t-resume").hidden = status.running || !status.resumable;
}

// "Training · runs/2026-11-29_00-15-03.npz · epoch 3 of 30"
function showState(status) {
  const state = byId("t-state");
  const words = status.guessing ? "Guessing" : STATE_WORDS[status.state] || status.state;
  state.textContent = `${words} · ${status.run} · epoch ${status.epochs_completed || 0} of ${status.epochs || 0}`;
  state.className = `run-state ${status.state}${status.guessing ? " guessing" : ""}`;
}

// How far the epoch in progress is (full once the run has finished).
function showProgress(status) {
  const progress = status.progress;
  const share = progress && progress.total ? progress.images / progress.total : 0;
  byId("t-progress-fill").style.width = status.running ? `${(100 * share).toFixed(1)}%`
    : (status.state === "finished" ? "100%" : "0%");
  byId("t-progress").setAttribute("aria-valuenow", String(Math.round(100 * share)));
}

function showTimes(status) {
  const times = [];
  if (status.elapsed !== null) times.push(`elapsed ${duration(status.elapsed)}`);
  if (status.running && status.eta !== null) times.push(`about ${duration(status.eta)} left`);
  byId("t-time").textContent = times.join(" · ");
}

function showMessage(status) {
  const message = byId("t-message");
  message.textContent = status.message;
  message.className = `small ${FAILED.includes(status.state) ? "error" : status.guessing ? "guessing" : ""}`;
}

// The legend's key for the peeks, with the sample's size: "validation, 1,000-image sample".
function showSampleKey(peeks) {
  byId("t-sample-key").hidden = !peeks.length;
  if (peeks.length) byId("t-sample-size").textContent = peeks[0].sample_size.toLocaleString("en");
}

// "42 s", "3 min 05 s", "1 h 02 min".
function duration(seconds) {
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}
