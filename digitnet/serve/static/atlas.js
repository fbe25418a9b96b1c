// The first hidden layer's weight pictures: GET /api/explain/weights.png (each unit's 784 incoming
// weights as a 28x28 tile, 128 = zero, brighter positive, darker negative; X-Atlas-Columns tiles a
// row), cut out onto small canvases with drawImage.

const TILE = 28;

export class Atlas {
  constructor() {
    this.image = null;          // an ImageBitmap of the whole atlas, or null (none, or not loaded yet)
    this.columns = 0;
    this.loading = null;        // the newest load: an older one finishing late is dropped
  }

  // Load the served model's atlas, or the taught copy's for ``session``; resolves once drawable
  // (true) or known to be missing (false: tiles are then plain squares).
  async load(session = null) {
    const url = session ? `/api/explain/weights.png?session=${encodeURIComponent(session)}` : "/api/explain/weights.png";
    const loading = (async () => {
      const response = await fetch(url);
      if (!response.ok) return null;
      const columns = Number(response.headers.get("X-Atlas-Columns"));
      return { columns, image: await createImageBitmap(await response.blob()) };
    })().catch(() => null);
    this.loading = loading;
    const loaded = await loading;
    if (this.loading !== loading) return Boolean(this.image);
    this.image = loaded && loaded.columns > 0 ? loaded.image : null;
    this.columns = loaded ? loaded.columns : 0;
    return Boolean(this.image);
  }

  // Unit ``unit``'s picture on ``canvas`` (28x28 pixels), over black, at ``alpha`` (its activation
  // shows as brightness); false when there is no atlas to draw from.
  draw(canvas, unit, alpha = 1) {
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    if (!this.image) return false;
    ctx.imageSmoothingEnabled = false;
    ctx.globalAlpha = Math.max(0, Math.min(1, alpha));
    const x = TILE * (unit % this.columns), y = TILE * Math.floor(unit / this.columns);
    ctx.drawImage(this.image, x, y, TILE, TILE, 0, 0, canvas.width, canvas.height);
    ctx.globalAlpha = 1;
    return true;
  }
}
