// The training curve: training cost (left scale, from 0) and validation accuracy (right scale, %) per epoch,
// from epoch 0 (the untrained network), with the peeks within the first epochs (--peek-every: the accuracy
// on a fixed validation sample, at fractional epochs) as small hollow markers.

const MARGIN = { left: 46, right: 52, top: 10, bottom: 24 };

// ``untrained``: epoch 0 (an epoch record, or null); ``peeks``: [{at, sample_accuracy, sample_size}].
export function drawCurve(canvas, history, epochs, untrained = null, peeks = []) {
  const width = canvas.clientWidth, height = canvas.clientHeight;
  if (!width || !height) return;
  const ctx = sizedContext(canvas, width, height);
  const points = untrained ? [untrained, ...history] : history;
  canvas.dataset.points = String(history.length);
  canvas.dataset.untrained = untrained ? "1" : "0";
  canvas.dataset.peeks = String(peeks.length);
  const colours = themeColours();
  const scales = scalesFor(points, peeks, epochs, width, height);
  ctx.font = "11px system-ui, sans-serif";
  drawGrid(ctx, scales, colours);
  drawEpochLabels(ctx, scales, height);
  const costs = points.filter((e) => Number.isFinite(e.training_cost));
  const accuracies = points.filter((e) => e.validation_accuracy !== null);
  drawSeries(ctx, costs.map((e) => [scales.x(e.epoch), scales.yCost(e.training_cost)]), colours.cost);
  drawSeries(ctx, accuracies.map((e) => [scales.x(e.epoch), scales.yAcc(e.validation_accuracy)]), colours.accent);
  drawMarkers(ctx, peeks.map((p) => [scales.x(p.at), scales.yAcc(p.sample_accuracy)]), colours.accent);
}

// The canvas's pixels matched to its size on screen; drawing is in CSS pixels.
function sizedContext(canvas, width, height) {
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  return ctx;
}

// The page's colours (light or dark theme), from its CSS variables.
function themeColours() {
  const style = getComputedStyle(document.documentElement);
  const colour = (name) => style.getPropertyValue(name).trim();
  return { muted: colour("--muted"), line: colour("--line"), accent: colour("--accent"), cost: colour("--cost") || "#2f6fed" };
}

// Epoch -> x (0 to the planned total), cost -> y (0 at the bottom), accuracy -> y (from a round floor
// below the lowest, peeks included).
function scalesFor(points, peeks, epochs, width, height) {
  const { left, top } = MARGIN;
  const w = width - MARGIN.left - MARGIN.right, h = height - MARGIN.top - MARGIN.bottom;
  const n = Math.max(epochs, ...points.map((e) => e.epoch), 1);
  const costs = points.map((e) => e.training_cost).filter(Number.isFinite);
  const maxCost = costs.length ? Math.max(...costs) * 1.1 : 1;
  const accuracies = [...points.map((e) => e.validation_accuracy), ...peeks.map((p) => p.sample_accuracy)]
    .filter((a) => a !== null && a !== undefined);
  const lowAcc = accuracies.length ? Math.max(0, Math.floor(Math.min(...accuracies) * 10) / 10) : 0;
  return {
    left, top, w, h, n, maxCost, lowAcc,
    x: (epoch) => left + (epoch / n) * w,
    yCost: (c) => top + h - (c / maxCost) * h,
    yAcc: (a) => top + h - ((a - lowAcc) / (1 - lowAcc || 1)) * h,
  };
}

// Five grid lines, the cost scale on the left and the accuracy scale on the right.
function drawGrid(ctx, { left, top, w, h, maxCost, lowAcc }, colours) {
  ctx.lineWidth = 1;
  ctx.strokeStyle = colours.line;
  ctx.fillStyle = colours.muted;
  for (let i = 0; i <= 4; i++) {
    const y = top + (h * i) / 4;
    ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(left + w, y); ctx.stroke();
    ctx.textAlign = "right";
    ctx.fillText((maxCost * (1 - i / 4)).toPrecision(2), left - 6, y + 4);
    ctx.textAlign = "left";
    ctx.fillText(`${(100 * (1 - (1 - lowAcc) * i / 4)).toFixed(lowAcc > 0.6 ? 1 : 0)}%`, left + w + 6, y + 4);
  }
}

// Epoch numbers along the bottom from 0, at most about ten of them.
function drawEpochLabels(ctx, { n, x }, height) {
  ctx.textAlign = "center";
  const step = Math.max(1, Math.ceil(n / 10));
  for (let e = 0; e <= n; e += step) ctx.fillText(String(e), x(e), height - 6);
}

// A line through the points with a dot on each.
function drawSeries(ctx, points, colour) {
  if (!points.length) return;
  ctx.strokeStyle = colour; ctx.fillStyle = colour; ctx.lineWidth = 2;
  ctx.beginPath();
  points.forEach(([px, py], i) => (i ? ctx.lineTo(px, py) : ctx.moveTo(px, py)));
  ctx.stroke();
  for (const [px, py] of points) { ctx.beginPath(); ctx.arc(px, py, 3, 0, 2 * Math.PI); ctx.fill(); }
}

// Small hollow circles, no line: each a look at a sample, not an epoch's measurement.
function drawMarkers(ctx, points, colour) {
  ctx.strokeStyle = colour; ctx.lineWidth = 1.5;
  for (const [px, py] of points) { ctx.beginPath(); ctx.arc(px, py, 2.5, 0, 2 * Math.PI); ctx.stroke(); }
}
