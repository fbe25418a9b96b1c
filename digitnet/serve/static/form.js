// The training form, built from GET /api/train/settings: the settings `digitnet train` derives its
// options from, so its defaults, ranges and names are the CLI's.  The server checks every value
// again and answers 400 with the CLI's messages.  Every run the page starts also looks inside its
// first epochs (the server's "page" settings: --peek-every), and "Slow (for a class)" adds its "slow"
// settings (--pause-ms), which a resume may switch on or off.

import { byId, element } from "./dom.js";

// Captions that are not just the option's name ("--batch-size" reads "Batch size").
const CAPTIONS = { learning_rate: "η (eta)", l2: "L2 λ" };

export class TrainingForm {
  // ``described``: the answer of /api/train/settings.
  constructor(described) {
    this.specs = Object.fromEntries(described.settings.map((s) => [s.name, s]));
    this.main = described.main;         // the settings the form shows, in order
    this.recipes = described.recipes;
    this.extras = {};                   // settings a recipe sets beyond the form (e.g. --patience-eta)
    this.page = described.page || {};   // what every run from the page adds (peeks within the first epochs)
    this.slow = described.slow || {};   // what "Slow (for a class)" adds (a pause between mini-batches)
    const pause = this.slow.pause_ms;
    byId("t-slow-row").title = `${this.specs.pause_ms.option} ${pause}: ${this.specs.pause_ms.help}`;
    byId("t-slow-note").textContent = pause ? `(${pause} ms between mini-batches)` : "";
    const fields = byId("t-fields");
    for (const name of this.main) fields.append(field(this.specs[name]));
    const select = byId("t-recipe");
    this.recipes.forEach((recipe, i) => select.append(new Option(recipe.name, String(i))));
    select.addEventListener("change", () => this.applyRecipe(this.recipes[Number(select.value)]));
    this.applyRecipe(this.recipes[0]);
  }

  // Fill the form with a recipe's settings (the rest at their defaults).
  applyRecipe(recipe) {
    this.extras = {};
    for (const name of this.main) setField(name, this.specs[name].default);
    for (const [name, value] of Object.entries(recipe.settings)) {
      if (this.main.includes(name)) setField(name, value); else this.extras[name] = value;
    }
    byId("t-recipe-command").textContent = `Same as: ${recipe.command}`;
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

  setEnabled(enabled) {
    for (const name of this.main) byId(`t-${name}`).disabled = !enabled;
    byId("t-recipe").disabled = !enabled;
    byId("t-slow").disabled = !enabled;
  }
}

// A labelled input (or a select, for a setting with choices); its tooltip is the option's help.
function field(spec) {
  const input = spec.choices ? element("select", {}, spec.choices.map((c) => new Option(c, c))) : textInput(spec);
  input.id = `t-${spec.name}`;
  input.name = spec.name;
  return element("label", {
    className: "field", title: `${spec.option}: ${spec.help}${spec.range ? ` (${spec.range})` : ""}`,
  }, [element("span", { textContent: caption(spec) }), input]);
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

function setField(name, value) {
  byId(`t-${name}`).value = Array.isArray(value) ? value.join(",") : String(value);
}
