// The "Inside the network" panel for the current drawing: POST /api/explain's numbers as a picture of
// the layers (network-view.js, unit-detail.js), units switched off and on, the saliency overlay
// (saliency.js), and a taught copy (teach.js) that the panel then explains instead of the served model.
//
// While units are off or a taught copy exists, the answer card shows /api/explain's answer (with
// those units off, of that copy) rather than /api/predict's, and says so.

import { ServerRefused, getJSON, postImage, postJSON } from "./api.js";
import { followAnswers, paintAltered, paintAnswer, paintError } from "./answer.js";
import { Atlas } from "./atlas.js";
import { byId, element, say } from "./dom.js";
import { NetworkView, keyOf } from "./network-view.js";
import { signed, sym } from "./numbers.js";
import { drawInput } from "./saliency.js";
import { TeachView } from "./teach.js";
import { showUnitDetail } from "./unit-detail.js";

const UNREACHABLE = "cannot reach the server (is `digitnet serve` still running?)";

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

// "?digit=4&off=1%3A4" from the fields that have a value.
function query(fields) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(fields)) {
    if (value !== null && value !== undefined && value !== "") search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

export class InsidePanel {
  // ``image()``: the picture being answered (a Blob or File, or a Promise of one, or null);
  // ``useTraining``: the checkbox that sends answers to the run being trained (this panel explains
  // the served model); ``kept(name)``: a taught copy was saved as a model.
  constructor({ image, useTraining, kept }) {
    this.source = image;
    this.useTraining = useTraining;
    this.kept = kept;
    this.open = false;
    this.off = [];              // [layer, unit] pairs switched off, in the order switched
    this.digit = null;          // the digit explained (null: the answer)
    this.session = null;        // the taught copy's session, and its steps
    this.steps = 0;
    this.predicted = null;      // /api/predict's newest answer (null: nothing answered)
    this.explanation = null;    // /api/explain's answer shown, the image and URL it was asked with
    this.asked = null;
    this.eachDigit = null;      // the contributions to each digit (10 Maps), asked for on demand
    this.sequence = 0;          // answers to older requests are dropped
    this.model = null;          // /api/model as text, to notice that the served model changed
    this.notice = "";           // said once in the status line (the taught copy was dropped)
    this.ready = Promise.resolve();
    this.atlas = new Atlas();
    this.view = new NetworkView({ show: () => this.showDetail(), toggle: (key) => this.toggle(key),
      explain: (digit) => this.explainDigit(digit) });
    this.teacher = new TeachView({ teach: (label, eta) => this.teach(label, eta), keep: () => this.keep(),
      forget: () => this.forget() });
    followAnswers((answer) => this.answered(answer), () => this.holding);
    byId("inside-open").addEventListener("click", () => (this.open ? this.close() : this.show()));
    byId("inside-reset").addEventListener("click", () => this.reset());
    byId("saliency").addEventListener("change", () => this.explanation && this.drawInput());
    useTraining.addEventListener("change", () => this.trainingToggled());
  }

  get altered() {
    return this.off.length > 0 || this.session !== null;
  }

  get active() {
    return this.open && !this.useTraining.checked;
  }

  // Whether the answer card shows this panel's answer rather than /api/predict's.
  get holding() {
    return this.active && this.altered;
  }

  show() {
    this.open = true;
    byId("inside-open").textContent = "Hide";
    byId("inside-open").setAttribute("aria-expanded", "true");
    byId("inside-body").hidden = false;
    if (this.model === null) this.ready = this.readModel();
    this.trainingToggled();
  }

  close() {
    this.open = false;
    this.sequence++;
    byId("inside-open").textContent = "Look inside";
    byId("inside-open").setAttribute("aria-expanded", "false");
    byId("inside-body").hidden = true;
    if (this.predicted) paintAnswer(this.predicted);
  }

  // The answer card's question went to the run being trained, or back to the served model.
  trainingToggled() {
    if (!this.open) return;
    const paused = this.useTraining.checked;
    byId("inside-body").classList.toggle("paused", paused);
    if (paused) {
      this.sequence++;
      say(byId("inside-status"), "The answer above comes from the run being trained; this panel looks inside " +
        "the served model: untick “Answer with the model being trained” to see it.");
    } else if (this.predicted) {
      this.refresh();
    } else {
      this.clear();
    }
  }

  // Every answer the card gets (null: none): explain the same picture.
  answered(answer) {
    this.predicted = answer;
    if (!this.active) return;
    if (answer) this.refresh(); else this.clear();
  }

  clear() {
    this.sequence++;
    this.explanation = null;
    this.view.clear();
    drawInput(byId("inside-input"), null);
    byId("saliency-legend").hidden = true;
    showUnitDetail(byId("unit-detail"), null);
    say(byId("inside-status"), "Draw a digit to look inside.");
    byId("inside-sum").replaceChildren();
    this.showOff();
    this.teacher.ready(false);
  }

  // The served model may have changed (another one chosen): units and taught copy start afresh.
  modelMayHaveChanged() {
    if (this.model !== null) this.ready = this.readModel();
  }

  async readModel() {
    let model;
    try {
      model = JSON.stringify(await getJSON("/api/model"));
    } catch {
      return;
    }
    if (model === this.model) return;
    const first = this.model === null;
    this.model = model;
    if (!first) {
      this.explanation = null;  // its units are the old model's: nothing more is asked about them
      this.off = [];
      this.digit = null;
      this.view.forget();
      if (this.session) this.dropSession();
    }
    await this.atlas.load(this.session);
  }

  explainUrl(digit = this.digit) {
    return `/api/explain${query({ digit, off: this.off.map(([l, k]) => `${l}:${k}`).join(","), session: this.session })}`;
  }

  // Ask /api/explain about the picture answered, with the units off and the taught copy; show it.
  async refresh() {
    const sequence = ++this.sequence;
    await this.ready;
    const image = await this.source();
    if (!image || sequence !== this.sequence) return;
    let explanation;
    try {
      explanation = await postImage(this.explainUrl(), image);
    } catch (error) {
      if (sequence === this.sequence) this.failed(error);
      return;
    }
    if (sequence !== this.sequence || !this.active) return;
    this.explanation = explanation;
    this.asked = { image, off: this.off.slice(), session: this.session };
    this.eachDigit = null;
    this.render();
  }

  failed(error) {
    const message = error instanceof ServerRefused ? error.message : UNREACHABLE;
    if (this.session && error instanceof ServerRefused && /session/i.test(message)) {
      this.dropSession();       // the server no longer keeps it (at most 8 are kept, or the model changed)
      this.notice = `The taught copy is gone (${message}): this is the served model again.`;
      this.refresh();
      return;
    }
    say(byId("inside-error"), message);
    if (this.holding) paintError(message);
  }

  // Everything from this.explanation, at once (the answer card too when it is held).
  render() {
    const explanation = this.explanation;
    const focused = document.activeElement?.dataset?.focus;
    say(byId("inside-error"), "");
    this.view.render(explanation, { off: new Set(this.off.map(([l, k]) => keyOf(l, k))), atlas: this.atlas });
    this.drawInput();
    this.showStatus();
    this.showOff();
    this.showSum();
    this.showDetail();
    this.teacher.ready(true);
    if (this.holding) paintAltered(explanation, this.alteredNote());
    else if (this.predicted) paintAnswer(this.predicted);
    if (focused) byId("inside-card").querySelector(`[data-focus="${focused}"]`)?.focus({ preventScroll: true });
  }

  drawInput() {
    const { input, saliency, digit } = this.explanation;
    const on = byId("saliency").checked;
    drawInput(byId("inside-input"), input, on ? saliency : null);
    byId("saliency-legend").hidden = !on;
    byId("saliency-towards").textContent = `pushed towards ${digit}`;
    byId("saliency-what").replaceChildren("∂", sym("z", "L", digit), "/∂", sym("x"),
      " (BP2 carried to the pixels), strongest on the ink");
  }

  showStatus() {
    const { digit, answer } = this.explanation;
    const parts = [digit === answer ? `Why ${answer}: the network's answer.` : `Why ${digit}? (The answer is ${answer}.)`];
    if (this.session) parts.push(`This is the taught copy (${plural(this.steps, "step")}, not saved), not the served model.`);
    if (this.off.length) parts.push(`${plural(this.off.length, "unit")} switched off.`);
    if (this.notice) parts.push(this.notice);
    this.notice = "";
    say(byId("inside-status"), parts.join(" "));
  }

  alteredNote() {
    const parts = [];
    if (this.session) parts.push(`taught copy, ${plural(this.steps, "step")}`);
    if (this.off.length) parts.push(`${plural(this.off.length, "unit")} off`);
    return `${parts.join(", ")}: see Inside the network`;
  }

  // The units switched off, each a button that switches it on again, and Reset.
  showOff() {
    const chips = this.off.map(([l, k]) => {
      const chip = element("button", { type: "button", className: "chip", textContent: `unit ${k} (layer ${l}) ×` });
      chip.dataset.focus = `chip:${l}:${k}`;
      chip.setAttribute("aria-label", `Switch unit ${k} of layer ${l} on again`);
      chip.addEventListener("click", () => this.toggle(keyOf(l, k)));
      return chip;
    });
    byId("off-list").replaceChildren(...(chips.length ? ["Switched off: ", ...chips]
      : ["All units on. Press a unit twice (or its Switch off button) to switch it off."]));
    byId("inside-reset").disabled = chips.length === 0;
  }

  // z^L_j = Σ_k w^L_jk a_k + b^L_j: what the units shown add, what the others add, the bias.
  showSum() {
    const { contributions, bias, z, digit } = this.explanation;
    const shown = new Set([...byId("hidden-layers").lastElementChild.querySelectorAll(".unit")]
      .map((tile) => Number(tile.dataset.unit)));
    let inShown = 0, inOthers = 0;
    for (const c of contributions) if (shown.has(c.unit)) inShown += c.contribution; else inOthers += c.contribution;
    const added = shown.size === contributions.length
      ? [`the ${contributions.length} units add ${signed(inShown)}`]
      : [`the ${shown.size} units shown add ${signed(inShown)}, the other ${contributions.length - shown.size} ${signed(inOthers)}`];
    byId("inside-sum").replaceChildren(sym("z", "L", digit), " = Σ", element("sub", { textContent: "k" }), " ",
      sym("w", "L", `${digit}k`), sym("a", "", "k"), " + ", sym("b", "L", digit), ": ", ...added,
      `, the bias ${signed(bias)}, so `, sym("z", "L", digit), ` = ${z.toFixed(3)}.`);
  }

  // The unit shown in the detail (hovered, focused or tapped), with this explanation's numbers.
  showDetail() {
    const key = this.view.shown;
    const explanation = this.explanation;
    if (!key || !explanation) { showUnitDetail(byId("unit-detail"), null); return; }
    const [layer, index] = key.split(":").map(Number);
    const found = explanation.layers.find((entry) => entry.layer === layer);
    if (!found || index >= found.activation.length) { showUnitDetail(byId("unit-detail"), null); return; }
    const last = layer === explanation.layers.length;
    if (last && !this.eachDigit) this.askEachDigit();
    showUnitDetail(byId("unit-detail"), {
      key, layer, index, z: found.z[index], a: found.activation[index], last, digit: explanation.digit,
      off: this.off.some(([l, k]) => l === layer && k === index), atlas: this.atlas,
      contributions: new Map(explanation.contributions.map((c) => [c.unit, c.contribution])),
      eachDigit: this.eachDigit?.failed ? "failed" : this.eachDigit?.every(Boolean) ? this.eachDigit : null,
      toggle: (unitKey) => this.toggle(unitKey),
    });
  }

  // The contributions to each digit j: the other nine digits asked of /api/explain (digit=j), once
  // per explanation, one after the other.
  async askEachDigit() {
    const explanation = this.explanation;
    const { image, off, session } = this.asked;
    const each = Array(10).fill(null);
    this.eachDigit = each;
    const byUnit = (contributions) => new Map(contributions.map((c) => [c.unit, c.contribution]));
    each[explanation.digit] = byUnit(explanation.contributions);
    const offText = off.map(([l, k]) => `${l}:${k}`).join(",");
    for (let d = 0; d < 10; d++) {
      if (d === explanation.digit) continue;
      if (this.explanation !== explanation) return;
      try {
        each[d] = byUnit((await postImage(`/api/explain${query({ digit: d, off: offText, session })}`, image)).contributions);
      } catch {
        each.failed = true;     // said in the detail; the next explanation asks again
        break;
      }
    }
    if (this.explanation !== explanation) return;
    this.showDetail();
  }

  toggle(key) {
    const [layer, unit] = key.split(":").map(Number);
    const at = this.off.findIndex(([l, k]) => l === layer && k === unit);
    if (at >= 0) this.off.splice(at, 1); else this.off.push([layer, unit]);
    this.afterChange();
  }

  reset() {
    this.off = [];
    this.afterChange();
  }

  explainDigit(digit) {
    this.digit = digit === this.digit ? null : digit;
    this.refresh();
  }

  afterChange() {
    if (!this.altered && this.predicted) paintAnswer(this.predicted);
    this.showOff();
    this.refresh();
  }

  // One taught step (POST /api/teach): the copy's numbers shown, then the copy explained.
  async teach(label, eta) {
    const image = await this.source();
    if (!image) return;
    let step;
    try {
      step = await postImage(`/api/teach${query({ label, eta, session: this.session })}`, image);
    } catch (error) {
      throw error instanceof ServerRefused ? error : new Error(UNREACHABLE);
    }
    this.session = step.session;
    this.steps = step.steps;
    this.teacher.show(step);
    this.refresh();
    this.atlas.load(this.session).then(() => this.explanation && this.render());   // its weights moved too
  }

  async keep() {
    if (!this.session) return;
    const kept = await postJSON("/api/teach/keep", { session: this.session });
    this.teacher.saved(kept.id || kept.name);
    this.kept(kept.name);
  }

  async forget() {
    if (!this.session) return;
    this.dropSession();
    this.atlas.load(null).then(() => this.explanation && this.render());
    this.afterChange();
  }

  // Forget the taught copy here and on the server (a failure there only leaves it to be dropped).
  dropSession() {
    const session = this.session;
    this.session = null;
    this.steps = 0;
    this.teacher.reset();
    postJSON("/api/teach/forget", { session }).catch(() => {});
  }
}
