// Asking the server what the pad shows: one request at a time, the newest drawing next, stale answers dropped.

import { ServerRefused, postImage } from "./api.js";
import { showAnswer, showError } from "./answer.js";

const DEBOUNCE_MS = 120;        // while drawing, ask again this long after the pen last moved
const UNREACHABLE = "cannot reach the server (is `digitnet serve` still running?)";
// The server's refusal without a model names its API routes (for API clients): the page names its buttons.
const NO_MODEL = "No model yet: press Train under \u201cTrain a network\u201d below, " +
  "or Use beside a model under \u201cModels here\u201d.";

export class Asker {
  // ``useTraining``: the checkbox that sends the question to the model being trained instead;
  // ``noModel()``: whether the server is known to serve no model.
  constructor(pad, useTraining, noModel = () => false) {
    this.pad = pad;
    this.useTraining = useTraining;
    this.noModel = noModel;
    this.timer = 0;
    this.sequence = 0;          // answers to older requests than the newest shown one are dropped
    this.shown = 0;
    this.inFlight = false;
    this.pending = false;       // the pad changed while a request was running
  }

  // While the pen moves: ask once it has rested for DEBOUNCE_MS.
  soon() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.drawing(), DEBOUNCE_MS);
  }

  now() {
    clearTimeout(this.timer);
    this.drawing();
  }

  // The drawing is gone: answers still on their way are for nothing on the pad.
  forget() {
    clearTimeout(this.timer);
    this.sequence++;
  }

  file(file) {
    return this.ask(file, ++this.sequence);
  }

  drawing() {
    if (!this.pad.hasStrokes) return;
    if (this.inFlight) { this.pending = true; return; }
    this.inFlight = true;
    const sequence = ++this.sequence;
    this.pad.exportBlob()
      .then((blob) => this.ask(blob, sequence))
      .finally(() => {
        this.inFlight = false;
        if (this.pending) { this.pending = false; this.drawing(); }
      });
  }

  async ask(image, sequence) {
    const url = this.useTraining.checked ? "/api/predict?model=training" : "/api/predict";
    let answer = null, refusal = null;
    try {
      answer = await postImage(url, image);
    } catch (error) {
      if (!(error instanceof ServerRefused)) {
        if (sequence === this.sequence) showError(UNREACHABLE);
        return;
      }
      refusal = error.message;
    }
    if (sequence !== this.sequence || sequence < this.shown) return;   // the pad has changed since
    this.shown = sequence;
    if (refusal !== null) showError(this.noModel() && !url.includes("model=training") ? NO_MODEL : refusal);
    else showAnswer(answer);
    // Once it is on screen (the next frame): the end of pointer-up -> answer (pad.js marks the start).
    requestAnimationFrame(() => performance.mark("digitnet:answer-painted"));
  }
}
