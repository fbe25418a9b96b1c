// The input as the network saw it (28x28, white ink on black), and over it the saliency
// ∂z^L_j/∂x from /api/explain: red where more ink raises z^L_j (pushes towards j), blue where it
// lowers it (against), the colour as strong as |∂z^L_j/∂x| (on one scale, the largest = full), and
// brightest where there is ink, the pixels that did push: an empty pixel only shows what ink would do.

const TOWARDS = [235, 52, 52];
const AGAINST = [45, 115, 245];
const EMPTY = 0.3;              // an empty pixel's colour at this share of an inked one's

// ``rows``: 28 rows of 28 numbers in [0, 1] (or null: black); ``saliency``: 784 numbers or null.
export function drawInput(canvas, rows, saliency = null) {
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(28, 28);
  let largest = 1e-12;
  if (saliency) for (const s of saliency) largest = Math.max(largest, Math.abs(s));
  for (let i = 0; i < 784; i++) {
    const x = rows ? Math.max(0, Math.min(1, rows[Math.floor(i / 28)][i % 28])) : 0;
    let rgb = [255 * x, 255 * x, 255 * x];
    if (saliency) {
      const strength = (Math.abs(saliency[i]) / largest) * (EMPTY + (1 - EMPTY) * x);
      const colour = saliency[i] > 0 ? TOWARDS : AGAINST;
      rgb = colour.map((c) => 0.35 * 255 * x * (1 - strength) + c * Math.min(1, 1.6 * strength));
    }
    image.data.set([...rgb.map((v) => Math.round(Math.min(255, v))), 255], 4 * i);
  }
  ctx.putImageData(image, 0, 0);
}
