// The layers as a picture: each hidden layer's units as buttons (first-layer units drawn as their
// weight pictures, the brighter the more active), then the ten outputs as buttons.  A wide layer
// shows the units that matter (the strongest contributions for and against the explained digit,
// or the most active units of an earlier layer), never hundreds of tiny tiles.
//
// Hovering a unit with the mouse, focusing it (Tab) or tapping it shows it in the detail; pressing
// the unit already shown (a second tap, a click after hovering, Enter or Space) switches it off or on.

import { byId, element, fromTemplate } from "./dom.js";
import { compact, signed } from "./numbers.js";

const WHOLE_UP_TO = 36;         // a layer this small is shown whole
const TOP_FOR = 12;             // otherwise: the last hidden layer's strongest pushes towards the digit...
const TOP_AGAINST = 4;          // ...and against it
const TOP_ACTIVE = 16;          // an earlier hidden layer: its most active units

export const keyOf = (layer, unit) => `${layer}:${unit}`;

const unitOf = (event) => event.target.closest?.(".unit")?.dataset.key ?? null;

export class NetworkView {
  // ``show()``: the unit to detail changed (read ``shown``); ``toggle(key)``: switch that unit off
  // or on; ``explain(digit)``: an output was pressed.
  constructor({ show, toggle, explain }) {
    this.actions = { show, toggle, explain };
    this.hovered = null;        // the unit under the mouse
    this.pinned = null;         // the unit last focused or tapped
    this.pressedShown = false;  // whether the unit being pressed was already shown when pressed
    const layers = byId("hidden-layers");
    layers.addEventListener("pointerover", (event) => {
      if (event.pointerType === "mouse") this.hover(unitOf(event));
    });
    layers.addEventListener("pointerleave", () => this.hover(null));
    layers.addEventListener("pointerdown", (event) => {
      const key = unitOf(event);
      this.pressedShown = key !== null && key === this.shown;
    });
    layers.addEventListener("focusin", (event) => { const key = unitOf(event); if (key) this.focused(key); });
    layers.addEventListener("click", (event) => this.press(event));
    byId("outputs").addEventListener("click", (event) => {
      const output = event.target.closest(".output");
      if (output) explain(Number(output.dataset.digit));
    });
  }

  // The unit the detail shows: the one under the mouse, else the one last focused or tapped.
  get shown() {
    return this.hovered ?? this.pinned;
  }

  hover(key) {
    if (key === this.hovered) return;
    this.hovered = key;
    this.showChanged();
  }

  pin(key) {
    if (key === this.pinned) return;
    this.pinned = key;
    this.showChanged();
  }

  // Focus (Tab, a click, a tap) shows the unit focused, whatever the mouse rests on.
  focused(key) {
    const before = this.shown;
    this.hovered = null;
    this.pinned = key;
    if (this.shown !== before) this.showChanged();
  }

  forget() {
    this.hovered = this.pinned = null;
  }

  // A click, a tap, Enter or Space on a unit: show it, or switch it if it was shown already (a key
  // press, event.detail 0, always was: the unit has the focus).
  press(event) {
    const key = unitOf(event);
    if (!key) return;
    const wasShown = event.detail === 0 || this.pressedShown;
    this.pressedShown = false;
    this.pin(key);
    if (wasShown) this.actions.toggle(key);
  }

  showChanged() {
    for (const tile of byId("hidden-layers").querySelectorAll(".unit")) {
      tile.classList.toggle("current", tile.dataset.key === this.shown);
    }
    this.actions.show();
  }

  // Draw /api/explain's answer; ``off``: a Set of the keys switched off; ``atlas``: the weight pictures.
  render(explanation, { off, atlas }) {
    const layers = explanation.layers;
    const figures = [];
    layers.forEach((layer, i) => {
      if (i > 0) figures.push(element("span", { className: "flow", textContent: "→", ariaHidden: "true" }));
      figures.push(this.layerFigure(explanation, layer, { last: i === layers.length - 1, off, atlas }));
    });
    byId("hidden-layers").replaceChildren(...figures);
    showOutputs(explanation);
  }

  layerFigure(explanation, layer, { last, off, atlas }) {
    const { units, caption } = chosenUnits(explanation, layer, last, off);
    const contributions = last ? contributionsByUnit(explanation) : null;
    const tiles = units.map((unit) => {
      const key = keyOf(layer.layer, unit);
      const a = layer.activation[unit];
      const c = contributions ? contributions.get(unit) : null;
      return unitTile({ key, layer: layer.layer, unit, a, c, digit: explanation.digit, off: off.has(key),
        current: key === this.shown, picture: layer.layer === 1 ? atlas : null });
    });
    const grid = element("div", { className: "units" }, tiles);
    grid.setAttribute("role", "group");
    grid.setAttribute("aria-label", `Hidden layer ${layer.layer}: ${caption}`);
    return element("figure", { className: "layer layer-hidden" }, [grid, element("figcaption", {}, [
      `hidden layer ${layer.layer} `, element("span", { className: "muted", textContent: `· ${caption}` })])]);
  }

  clear() {
    byId("hidden-layers").replaceChildren();
    byId("outputs").replaceChildren();
  }
}

// The units of one hidden layer to draw, in order, and the caption that says which they are.
function chosenUnits(explanation, layer, last, off) {
  const n = layer.activation.length;
  let units, caption;
  if (last) {
    const order = explanation.contributions;                          // largest first
    if (n <= WHOLE_UP_TO) {
      units = order.map((c) => c.unit);
      caption = `${n} units, by contribution to ${explanation.digit}`;
    } else {
      const towards = order.filter((c) => c.contribution > 0).slice(0, TOP_FOR);
      const against = order.filter((c) => c.contribution < 0).slice(-TOP_AGAINST).reverse();
      units = [...towards, ...against].map((c) => c.unit);
      caption = `showing ${units.length} of ${n} units: the ${towards.length} pushing hardest towards ` +
        `${explanation.digit}, the ${against.length} hardest against`;
    }
  } else {
    const byActivity = [...layer.activation.keys()].sort((i, j) => layer.activation[j] - layer.activation[i]);
    units = n <= WHOLE_UP_TO ? byActivity : byActivity.slice(0, TOP_ACTIVE);
    caption = n <= WHOLE_UP_TO ? `${n} units, most active first` : `showing the ${units.length} most active of ${n} units`;
  }
  const extra = [...off].map((key) => key.split(":").map(Number))
    .filter(([l, k]) => l === layer.layer && !units.includes(k)).map(([, k]) => k);
  if (extra.length) caption += ` (and ${extra.length} switched off)`;
  return { units: [...units, ...extra], caption };
}

function contributionsByUnit(explanation) {
  return new Map(explanation.contributions.map((c) => [c.unit, c.contribution]));
}

// One unit as a button: its weight picture (first layer) or a square, brighter the more active;
// the border says whether it pushes towards the explained digit or against it.
function unitTile({ key, layer, unit, a, c, digit, off, current, picture }) {
  const tile = fromTemplate("unit-template");
  tile.dataset.key = key;
  tile.dataset.focus = `unit:${key}`;
  tile.dataset.layer = String(layer);
  tile.dataset.unit = String(unit);
  tile.classList.toggle("off", off);
  tile.classList.toggle("current", current);
  if (c !== null && !off) tile.classList.add(c > 0 ? "towards" : c < 0 ? "against" : "neutral");
  const canvas = tile.querySelector("canvas");
  const brightness = off ? 0.3 : 0.15 + 0.85 * a;
  if (!picture || !picture.draw(canvas, unit, brightness)) paintSquare(canvas, off ? 0 : a);
  tile.querySelector(".unit-value").textContent = off ? "off" : c !== null ? compact(c) : a.toFixed(2);
  const said = c !== null ? `, contribution ${signed(c, 3)} to ${digit}` : "";
  tile.setAttribute("aria-label", `Unit ${unit} of hidden layer ${layer}: ${off ? "switched off" : `activation ${a.toFixed(3)}`}${said}`);
  tile.title = `unit ${unit}: a = ${a.toFixed(3)}${c !== null ? `, w·a = ${signed(c, 3)}` : ""}`;
  return tile;
}

function paintSquare(canvas, a) {
  const ctx = canvas.getContext("2d");
  const grey = Math.round(255 * Math.max(0, Math.min(1, a)));
  ctx.fillStyle = `rgb(${grey}, ${grey}, ${grey})`;
  ctx.fillRect(0, 0, canvas.width, canvas.height);
}

// The ten outputs a^L as buttons: press one to explain that digit.
function showOutputs({ outputs, answer, digit }) {
  byId("outputs").replaceChildren(...outputs.map((value, d) => {
    const item = fromTemplate("output-template");
    const button = item.querySelector(".output");
    button.dataset.digit = String(d);
    button.dataset.value = String(value);
    button.dataset.focus = `output:${d}`;
    button.classList.toggle("answer", d === answer);
    button.classList.toggle("explained", d === digit);
    button.setAttribute("aria-pressed", String(d === digit));
    button.setAttribute("aria-label", `${d}: output ${value.toFixed(3)}${d === answer ? ", the answer" : ""}`);
    button.querySelector(".output-fill").style.height = `${100 * Math.max(0, Math.min(1, value))}%`;
    button.querySelector(".output-value").textContent = value >= 0.005 ? value.toFixed(2) : "";
    button.querySelector(".output-digit").textContent = String(d);
    return item;
  }));
}
