// The training form, built from GET /api/train/settings: the settings `digitnet train` derives its
// options from, so its defaults, ranges and names are the CLI's.  The server checks every value
// again and answers 400 with the CLI's messages.  Every run the page starts also looks inside its
// first epochs (the server's "page" settings: --peek-every), and "Slow (for a class)" adds its "slow"
// settings (--pause-ms), which a resume may switch on or off.

import { byId, element } from "./dom.js";

// Captions that are not just the option's name ("--batch-size" reads "Batch size").
const CAPTIONS = { learning_rate: "η (eta)", l2: "L2 λ" };
const CUSTOM = "custom";  // the recipe selector's word once a field differs from the recipe

export class TrainingForm {
  // ``described``: the answer of /api/train/settings.
  constructor(described) {
    this.specs = Object.fromEntries(described.settings.map((s) => [s.name, s]));
    this.main = described.main;         // the settings the form shows, in order
    this.recipes = described.recipes;
    this.extras = {};                   // settings a recipe sets beyond the form (e.g. --patience-eta)
    this.page = described.page || {};   // what every run from the page adds (peeks within the first epochs)
    this.slow = described.slow || {};   // what "Slow (for a class)" adds (a pause between mini-batches)
    this.order = described.settings.map((s) => s.name);  // train_arguments' order (the settings' own)
    this.recipe = null;                 // the recipe last chosen
    const pause = this.slow.pause_ms;
    byId("t-slow-row").title = `${this.specs.pause_ms.option} ${pause}: ${this.specs.pause_ms.help}`;
    byId("t-slow-note").textContent = pause ? `(${pause} ms between mini-batches)` : "";
    const fields = byId("t-fields");
    for (const name of this.main) fields.append(field(this.specs[name], (spec) => this.toggleHelp(spec)));
    const select = byId("t-recipe");
    this.recipes.forEach((recipe, i) => select.append(new Option(recipe.name, String(i))));
    const custom = new Option(CUSTOM, CUSTOM);
    custom.disabled = custom.hidden = true;  // chosen by editing a field, never from the list
    select.append(custom);
    select.addEventListener("change", () => this.applyRecipe(this.recipes[Number(select.value)]));
    fields.addEventListener("input", () => this.showCommand());
    fields.addEventListener("change", () => this.showCommand());
    this.applyRecipe(this.recipes[0]);
  }

  // Fill the form with a recipe's settings (the rest at their defaults).
  applyRecipe(recipe) {
    this.extras = {};
    for (const name of this.main) setField(name, this.specs[name].default);
    for (const [name, value] of Object.entries(recipe.settings)) {
      if (this.main.includes(name)) setField(name, value); else this.extras[name] = value;
    }
    this.recipe = recipe;
    this.showCommand();
  }

  // "Same as: digitnet train ...": the command that gives the run the form would start, as the
  // server's train_arguments writes it (defaults left out, in the settings' order; what the page
  // adds to watch the run, --peek-every and Slow's --pause-ms, left out), and the recipe chosen
  // or "custom" once a field differs from it.
  showCommand() {
    const typed = { ...this.extras };
    for (const name of this.main) typed[name] = byId(`t-${name}`).value;
    const words = ["digitnet train"];
    for (const name of this.order) {
      const spec = this.specs[name];
      if (!(name in typed) || name in this.page || name in this.slow) continue;
      const text = asTyped(spec, typed[name]);
      if (text === asTyped(spec, spec.default)) continue;
      if (spec.type !== "bool") words.push(spec.option, text); else if (text === "true") words.push(spec.option);
    }
    byId("t-recipe-command").textContent = `Same as: ${words.join(" ")}`;
    const wanted = { ...Object.fromEntries(this.main.map((n) => [n, this.specs[n].default])), ...this.recipe.settings };
    const same = this.main.every((n) => asTyped(this.specs[n], typed[n]) === asTyped(this.specs[n], wanted[n]));
    byId("t-recipe").value = same ? String(this.recipes.indexOf(this.recipe)) : CUSTOM;
  }

  // The settings to send: the form's text as typed, the recipe's extras, the page's own and Slow's.
  settings() {
    const settings = { ...this.page, ...this.extras };
    for (const name of this.main) settings[name] = byId(`t-${name}`).value.trim();
    if (Number(settings.validation_size) === 0 && !("peek_every" in this.extras)) delete settings.peek_every;
    return { ...settings, ...this.resumeSettings() };
  }

  // What a resume may change: Slow on (its settings) or off (their defaults).
  resumeSettings() {
    const slow = byId("t-slow").checked;
    return Object.fromEntries(Object.entries(this.slow).map(([name, value]) => [name, slow ? value : this.specs[name].default]));
  }

  // A field's "?": show its setting's help under the fields (a tooltip never shows on a touch screen),
  // or hide it when it is the one shown.
  toggleHelp(spec) {
    const help = byId("t-help");
    const open = help.hidden || help.dataset.setting !== spec.name;
    help.dataset.setting = open ? spec.name : "";
    const range = spec.range ? ` (${spec.range})` : "";
    help.replaceChildren(...(open ? [element("strong", { textContent: caption(spec) }),
      ` (${spec.option}): ${spec.help}${range}`] : []));
    help.hidden = !open;
    for (const toggle of byId("t-fields").querySelectorAll(".help-toggle")) {
      toggle.setAttribute("aria-expanded", String(open && toggle.dataset.setting === spec.name));
    }
  }

  setEnabled(enabled) {
    for (const name of this.main) byId(`t-${name}`).disabled = !enabled;
    byId("t-recipe").disabled = !enabled;
    byId("t-slow").disabled = !enabled;
  }
}

// A labelled input (or a select, for a setting with choices) and a "?" button that shows the
// option's help (``showHelp(spec)``), which is also the field's tooltip for a mouse.
function field(spec, showHelp) {
  const input = spec.choices ? element("select", {}, spec.choices.map((c) => new Option(c, c))) : textInput(spec);
  input.id = `t-${spec.name}`;
  input.name = spec.name;
  const toggle = element("button", { type: "button", className: "help-toggle", textContent: "?" });
  toggle.dataset.setting = spec.name;
  toggle.setAttribute("aria-label", `What ${caption(spec)} is`);
  toggle.setAttribute("aria-controls", "t-help");
  toggle.setAttribute("aria-expanded", "false");
  toggle.addEventListener("click", () => showHelp(spec));
  const label = element("label", { htmlFor: input.id, textContent: caption(spec) });
  const head = element("span", { className: "field-head" }, [label, toggle]);
  return element("div", { className: "field", title: helpText(spec) }, [head, input]);
}

// "--epochs: ... (1 or more)": the option, its help and its range.
function helpText(spec) {
  return `${spec.option}: ${spec.help}${spec.range ? ` (${spec.range})` : ""}`;
}

function textInput(spec) {
  const inputMode = spec.type === "int" ? "numeric" : spec.type === "float" ? "decimal" : "text";
  return element("input", { type: "text", inputMode, autocomplete: "off", spellcheck: false });
}

// "--batch-size" -> "Batch size".
function caption(spec) {
  if (CAPTIONS[spec.name]) return CAPTIONS[spec.name];
  const words = spec.option.replace(/^-+/, "").replaceAll("-", " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

// A value (typed text, or a recipe's or default's value) as the server's Setting.format writes it
// after the option: numbers as Python prints them (floats with %g), lists "300,100", yes/no as "true"
// or "false", an empty augment as "0"; text that is not a number is kept as typed (the server says why).
function asTyped(spec, value) {
  const text = Array.isArray(value) ? value.join(",") : String(value).trim();
  if (spec.type === "bool") return ["1", "true", "yes", "on"].includes(text.toLowerCase()) ? "true" : "false";
  if (spec.name === "augment" && (text === "" || text === "0" || text === "none")) return "0";
  if (spec.type === "text") return text.split(",").map((part) => part.trim()).join(",");
  if (spec.type !== "int" && spec.type !== "float") return text;
  const number = Number(text);
  if (text === "" || !Number.isFinite(number) || (spec.type === "int" && !Number.isInteger(number))) return text;
  return spec.type === "int" ? String(number) : formatG(number);
}

// Python's f"{x:g}": six significant digits, trailing zeros dropped, an exponent below 1e-4 or from 1e6.
function formatG(x) {
  if (x === 0) return "0";
  const [mantissa, exponent] = x.toExponential(5).split("e");
  const power = Number(exponent);
  if (power >= -4 && power < 6) return String(Number(x.toPrecision(6)));
  const digits = mantissa.includes(".") ? mantissa.replace(/0+$/, "").replace(/\.$/, "") : mantissa;
  return `${digits}e${power < 0 ? "-" : "+"}${String(Math.abs(power)).padStart(2, "0")}`;
}

function setField(name, value) {
  byId(`t-${name}`).value = Array.isArray(value) ? value.join(",") : String(value);
}
