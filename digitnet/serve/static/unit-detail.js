// One hidden unit up close: its weight picture large (first layer), its activation, its contribution
// w^L_jk a^{L-1}_k to the explained digit and, once asked for, to each digit; Switch off / on.

import { element } from "./dom.js";
import { signed, sym, tenBars } from "./numbers.js";

const HINT = "Hover, focus (Tab) or tap a unit to see it up close; press it again (Enter, a second tap) to switch it off.";

// ``unit``: null (the hint) or {key, layer, index, z, a, off, last, contributions (Map unit ->
// w^L_jk a_k for the explained digit), eachDigit (10 Maps; null while asked for; "failed"), digit, atlas,
// toggle(key)}.
export function showUnitDetail(root, unit) {
  if (!unit) {
    root.replaceChildren(element("p", { className: "small muted detail-hint", textContent: HINT }));
    return;
  }
  const picture = element("canvas", { width: 28, height: 28, className: "detail-picture" });
  picture.setAttribute("aria-hidden", "true");
  const drawn = unit.layer === 1 && unit.atlas.draw(picture, unit.index, 1);
  const side = drawn
    ? [picture, element("p", { className: "small muted", textContent: "its 784 incoming weights: light +, dark −" })]
    : [];
  const toggle = element("button", { type: "button", className: unit.off ? "primary" : "secondary",
    textContent: unit.off ? "Switch on" : "Switch off" });
  toggle.dataset.focus = "detail-toggle";
  toggle.addEventListener("click", () => unit.toggle(unit.key));
  const lines = [
    element("p", { className: "detail-title" }, [element("strong", { textContent: `Unit ${unit.index}` }),
      ` of hidden layer ${unit.layer}`, ...(unit.off ? [" ", element("span", { className: "badge", textContent: "off" })] : [])]),
    activationLine(unit),
    ...(unit.last ? contributionLines(unit) : [slot([element("p", { className: "small muted",
      textContent: "Its effect reaches the outputs through the next layer: switch it off to see what it does." })])]),
    element("div", { className: "detail-actions" }, [toggle]),
  ];
  root.replaceChildren(element("div", { className: "detail-side" }, side), element("div", { className: "detail-text" }, lines));
}

function activationLine({ layer, index, z, a, off }) {
  if (off) {
    return element("p", {}, ["switched off: ", sym("a", layer, index), " held at 0 (its ",
      sym("z", layer, index), ` = ${z.toFixed(3)}), so it adds nothing to the next layer`]);
  }
  return element("p", {}, ["activation ", sym("a", layer, index), " = σ(", sym("z", layer, index),
    `) = σ(${z.toFixed(3)}) = `, element("strong", { textContent: a.toFixed(3) })]);
}

// Its part in z^L_j: w^L_jk a_k for the digit explained (w^L_jk read back as c / a), then for every digit.
function contributionLines({ index, a, off, contributions, eachDigit, digit }) {
  const c = contributions.get(index) ?? 0;
  const product = a > 0 && !off
    ? [` = ${(c / a).toFixed(3)} × ${a.toFixed(3)} = `, element("strong", { textContent: signed(c, 3) })]
    : [" = ", element("strong", { textContent: signed(c, 3) })];
  const line = element("p", {}, [`contribution to ${digit}: `, sym("w", "L", `${digit},${index}`), sym("a", "", index), ...product]);
  const note = (text) => [element("p", { className: "small muted", textContent: text })];
  if (off) return [line, slot(note("while off it adds nothing to any digit's z"))];
  if (eachDigit === "failed") return [line, slot(note("its contribution to each digit: the server did not answer"))];
  if (!eachDigit) return [line, slot(note("asking for its contribution to each digit…"))];
  const values = eachDigit.map((byUnit) => byUnit.get(index) ?? 0);
  return [line, slot([tenBars(values, { label: `Unit ${index}'s contribution to each digit`, chosen: digit }),
    element("p", { className: "small muted" }, ["its contribution ", sym("w", "L", `j,${index}`), sym("a", "", index),
      " to each output ", sym("z", "L", "j")])])];
}

// The place of the ten bars, the same height whatever it holds: moving from unit to unit (or the
// mouse leaving them) must not shift the page under the pointer.
function slot(children) {
  return element("div", { className: "each-digit" }, children);
}
