// How the inside panel writes its numbers and symbols, and its ten small signed bars (one per digit).

import { element } from "./dom.js";

const MINUS = "\u2212";

// "+2.31" / "−0.40": a sign that means something (a contribution, a component of δ).
export function signed(x, digits = 2) {
  return `${x < 0 ? MINUS : "+"}${Math.abs(x).toFixed(digits)}`;
}

// A contribution on a unit's tile: "+3.6", "+0.42", "−12".
export function compact(x) {
  const size = Math.abs(x);
  return signed(x, size >= 10 ? 0 : size >= 1 ? 1 : 2);
}

// Three significant figures, for norms that span orders of magnitude ("0.0213", "3.10", "2.4e−5").
export function short(x) {
  const size = Math.abs(x);
  if (size === 0) return "0";
  if (size < 1e-3 || size >= 1e4) return x.toExponential(1).replace("-", MINUS);
  return x.toPrecision(3).replace("-", MINUS);
}

// <var>a</var><sup>l</sup><sub>k</sub>: a symbol with an upper and a lower index (stacked when both).
export function sym(base, upper = "", lower = "") {
  const indices = [];
  if (upper !== "") indices.push(element("sup", { textContent: String(upper) }));
  if (lower !== "") indices.push(element("sub", { textContent: String(lower) }));
  const stacked = indices.length === 2 ? [element("span", { className: "indices" }, indices)] : indices;
  return element("span", { className: "sym" }, [element("var", { textContent: base }), ...stacked]);
}

// Ten bars, one per digit: up (red) for positive values, down (blue) for negative, all on one
// scale (the largest magnitude unless ``scale`` is given); ``chosen`` marks one digit.
export function tenBars(values, { label, chosen = null, scale = null } = {}) {
  const top = scale ?? Math.max(1e-12, ...values.map(Math.abs));
  const items = values.map((value, digit) => {
    const fill = element("span", { className: value < 0 ? "tb-fill down" : "tb-fill up" });
    fill.style.height = `${50 * Math.min(1, Math.abs(value) / top)}%`;
    const item = element("li", { className: digit === chosen ? "chosen" : "", title: `${digit}: ${signed(value, 4)}` },
      [element("span", { className: "tb-track" }, [fill]), element("span", { className: "tb-digit", textContent: String(digit) })]);
    item.dataset.value = String(value);
    return item;
  });
  const list = element("ol", { className: "ten-bars" }, items);
  list.setAttribute("aria-label", label);
  return list;
}
