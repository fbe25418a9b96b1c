// "Teach it: this is a __": pick the right digit, take one step of the textbook's learning on this
// drawing (POST /api/teach, on a taught copy), and see the numbers BP1–BP4 produced: δ^L (BP1),
// each layer's ‖δ^l‖ (BP2), the gradient norms (BP3, BP4), η, and the answer before → after.

import { byId, element, say } from "./dom.js";
import { short, sym, tenBars } from "./numbers.js";

const SLOW = 0.01;              // the label's output moved less than this: say why learning is slow

export class TeachView {
  // ``teach(label, eta)`` (eta null: the model's own) resolves with /api/teach's answer or throws;
  // ``keep()`` and ``forget()`` act on the taught copy.
  constructor({ teach, keep, forget }) {
    this.actions = { teach, keep, forget };
    this.label = null;          // the digit picked
    this.possible = false;      // whether there is a drawing to teach on
    this.busy = false;
    this.last = null;           // the previous step shown (its ‖δ^L‖ is shown beside the new one)
    this.first = null;          // the taught copy's first step (where its learning started)
    byId("teach-picker").replaceChildren(...Array.from({ length: 10 }, (_, d) => {
      const button = element("button", { type: "button", className: "pick", textContent: String(d) });
      button.dataset.digit = String(d);
      button.setAttribute("aria-pressed", "false");
      button.addEventListener("click", () => this.pick(d));
      return button;
    }));
    byId("teach-go").addEventListener("click", () => this.go());
    byId("teach-keep").addEventListener("click", () => this.act(keep));
    byId("teach-forget").addEventListener("click", () => this.act(forget));
  }

  pick(digit) {
    this.label = digit;
    for (const button of byId("teach-picker").children) {
      button.setAttribute("aria-pressed", String(Number(button.dataset.digit) === digit));
    }
    byId("teach-go").textContent = `Teach: this is a ${digit}`;
    this.update();
  }

  ready(possible) {
    this.possible = possible;
    this.update();
  }

  update() {
    byId("teach-go").disabled = !this.possible || this.label === null || this.busy;
  }

  async go() {
    const text = byId("teach-eta").value.trim();
    this.busy = true;
    this.update();
    byId("teach-go").classList.add("busy");
    say(byId("teach-error"), "");
    try {
      await this.actions.teach(this.label, text === "" ? null : text);
    } catch (error) {
      say(byId("teach-error"), error.message);
    } finally {
      this.busy = false;
      byId("teach-go").classList.remove("busy");
      this.update();
    }
  }

  async act(action) {
    say(byId("teach-error"), "");
    try {
      await action();
    } catch (error) {
      say(byId("teach-error"), error.message);
    }
  }

  // One step's numbers, as /api/teach answered them.
  show(step) {
    byId("teach-result").hidden = false;
    byId("teach-actions").hidden = false;
    byId("teach-saved").textContent = "";
    if (step.steps === 1 || !this.first) this.first = step;
    byId("teach-change").replaceChildren(...changeLine(step, this.first));
    byId("bp1-norm").replaceChildren("· ‖", sym("δ", "L"), "‖ = ", element("strong", { textContent: short(step.bp1.norm) }),
      this.last ? ` (was ${short(this.last.bp1.norm)})` : "");
    byId("bp1-bars").replaceChildren(
      tenBars(step.bp1.delta, { label: "δ^L, one component per output", chosen: step.label }),
      element("p", { className: "small muted" }, [sym("δ", "L", "j"), " = ∂", sym("C"), "/∂", sym("z", "L", "j"),
        ": the step moves the biases ", sym("b", "L", "j"), " by −", sym("η"), sym("δ", "L", "j"),
        ", so blue (negative) outputs are pushed up, red ones down."]));
    byId("bp-rows").replaceChildren(...bpRows(step));
    const moved = step.after.outputs[step.label] - step.before.outputs[step.label];
    byId("teach-slow").hidden = Math.abs(moved) >= SLOW || step.after.outputs[step.label] >= 0.5;   // slow, and still wrong
    this.last = step;
  }

  saved(name) {
    byId("teach-saved").textContent = `Kept as ${name}: it is in the models list below, like any other.`;
  }

  // The taught copy is gone (forgotten, or the served model changed): nothing to show.
  reset() {
    this.last = this.first = null;
    byId("teach-result").hidden = true;
    byId("teach-actions").hidden = true;
    byId("teach-saved").textContent = "";
    byId("teach-change").replaceChildren();
    byId("teach-slow").hidden = true;
  }
}

// "Step 2 · “this is a 9”, η = 3: answer 4 → 9, a^L_9 0.121 → 0.482, cost C_x 0.61 → 0.40
// (step 1 started from answer 4, a^L_9 0.003)."
function changeLine(step, first) {
  const { label, before, after } = step;
  const since = first !== step
    ? [` Step 1 started from answer ${first.before.answer}, `, sym("a", "L", label), ` ${first.before.outputs[label].toFixed(3)}.`]
    : [];
  return [element("strong", { textContent: `Step ${step.steps}` }), ` · “this is a ${label}”, η = ${step.eta}: `,
    "answer ", element("strong", { textContent: `${before.answer} → ${after.answer}` }),
    ", ", sym("a", "L", label), ` ${before.outputs[label].toFixed(3)} → `, element("strong", { textContent: after.outputs[label].toFixed(3) }),
    ", cost ", sym("C", "", "x"), ` ${short(step.cost_before)} → ${short(step.cost_after)}.`, ...since];
}

// One row per layer after the input: ‖δ^l‖ (BP2 for hidden layers, BP1 for the output), BP3, BP4.
function bpRows(step) {
  const layers = step.bp3.length;
  return step.bp3.map((bNorm, i) => {
    const output = i === layers - 1;
    const delta = output ? step.bp1.norm : step.bp2.find((entry) => entry.layer === i + 1).norm;
    const size = output ? step.bp1.delta.length : step.bp2.find((entry) => entry.layer === i + 1).delta.length;
    return element("tr", {}, [
      element("th", { scope: "row" }, [output ? "output " : `hidden ${i + 1} `,
        element("span", { className: "muted", textContent: `(${size})` })]),
      element("td", {}, [short(delta), " ", element("span", { className: "muted", textContent: output ? "BP1" : "BP2" })]),
      element("td", { textContent: short(bNorm) }),
      element("td", { textContent: short(step.bp4[i]) }),
    ]);
  });
}
