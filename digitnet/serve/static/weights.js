// The first hidden layer's weight pictures of the run training from the page, refreshed each time an
// epoch is saved (GET /api/train/weights.png, the atlas of its latest saved epoch), so a class watches
// the receptive fields form.  Tiles are cut from the atlas by atlas.js; at most MAX_UNITS are shown.

import { Atlas } from "./atlas.js";
import { byId, element } from "./dom.js";

const MAX_UNITS = 100;

export class TrainingWeights {
  constructor() {
    this.atlas = new Atlas();
    this.shown = "";            // run and epoch of the pictures drawn (or being fetched)
    this.canvases = [];
  }

  // A status from the server: fetch the pictures again once the run has saved a new epoch.
  show(status) {
    const epoch = status.saved_epoch;
    byId("t-weights").hidden = !epoch;
    if (!epoch) return;
    const key = `${status.run}|${epoch}`;
    if (key === this.shown) return;
    this.shown = key;
    this.load(status, key);
  }

  async load(status, key) {
    let response;
    try {
      response = await fetch("/api/train/weights.png", { cache: "no-store" });
    } catch {
      this.shown = "";            // the server is away: the next status tries again
      return;
    }
    if (!response.ok || key !== this.shown) return;
    const columns = Number(response.headers.get("X-Atlas-Columns"));
    const image = await createImageBitmap(await response.blob());
    if (key !== this.shown) return;   // a newer epoch came meanwhile: its fetch draws
    this.atlas.image = image;
    this.atlas.columns = columns;
    this.draw(status.settings?.hidden_sizes?.[0] || columns * columns, Number(response.headers.get("X-Epoch")));
  }

  // One small canvas per unit (the first MAX_UNITS), each its 784 incoming weights as 28x28.
  draw(units, epoch) {
    const count = Math.min(units, MAX_UNITS);
    const grid = byId("t-weights-grid");
    if (this.canvases.length !== count) {
      this.canvases = Array.from({ length: count }, (_, k) => element("canvas", {
        width: 28, height: 28, title: `unit ${k}`,
      }));
      grid.replaceChildren(...this.canvases);
    }
    this.canvases.forEach((canvas, k) => this.atlas.draw(canvas, k));
    grid.dataset.epoch = String(epoch);
    byId("t-weights-note").textContent = `epoch ${epoch}` + (units > count ? ` · the first ${count} of ${units} units` : "");
  }
}
