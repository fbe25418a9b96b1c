// The drawing pad: strokes drawn with a mouse, a pen or a finger, or an image file shown on it.
//
// Strokes are kept as lists of points in pad units (0..1), so the pad can be redrawn at any screen
// size (crisp on high-DPI screens), Undo is "drop the last stroke and redraw", and what goes to
// the server is always the same EXPORT_SIDE x EXPORT_SIDE PNG, whatever the screen: the server
// prepares it exactly as `digitnet predict` prepares a file.

import { byId } from "./dom.js";
import { greyPng } from "./png.js";

const EXPORT_SIDE = 280;        // pixels of the PNG sent to /api/predict
const STROKE = 0.072;           // pen width as a share of the pad's side: a digit 70% of the pad tall gets MNIST's median 2.1 px strokes at 20 px
const INK = "#161616";          // neutral grey: the server then reads one channel instead of three
const PAPER = "#ffffff";

export class Pad {
  constructor(canvas) {
    this.canvas = canvas;
    this.hint = byId("pad-hint");
    this.fileLabel = byId("pad-file");
    this.drawn = { moving() {}, finished() {} };
    this.strokes = [];          // finished and current strokes: arrays of [x, y] in 0..1
    this.current = null;        // the stroke being drawn, or null
    this.pointer = null;        // the id of the pointer drawing it
    this.image = null;          // the bitmap of a dropped or chosen file shown on the pad
    canvas.addEventListener("pointerdown", (event) => this.penDown(event));
    canvas.addEventListener("pointermove", (event) => this.penMove(event));
    canvas.addEventListener("pointerup", (event) => this.penUp(event));
    canvas.addEventListener("pointercancel", (event) => this.penUp(event));
    new ResizeObserver(() => this.resize()).observe(canvas);
    this.resize();
  }

  // ``moving()``: the pen moved (the drawing is changing); ``finished()``: a stroke was finished.
  onDraw({ moving, finished }) {
    this.drawn = { moving, finished };
  }

  get hasStrokes() {
    return this.strokes.length > 0;
  }

  // Match the canvas's pixels to its size on screen.
  resize() {
    const side = this.canvas.clientWidth;
    const ratio = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(side * ratio);
    this.canvas.height = Math.round(side * ratio);
    this.redraw();
  }

  redraw() {
    paint(this.canvas.getContext("2d"), this.canvas.width, this.strokes, this.image);
    this.hint.hidden = this.hasStrokes || this.image !== null;
  }

  // Drop the last stroke; false when there was none.
  undoStroke() {
    if (!this.hasStrokes) return false;
    this.strokes.pop();
    this.redraw();
    return true;
  }

  clear() {
    this.strokes = [];
    this.current = null;
    this.pointer = null;
    this.image = null;
    this.fileLabel.hidden = true;
    this.redraw();
  }

  // Show an image file on the pad in place of the strokes (a format the browser cannot show,
  // such as TIFF, leaves the pad blank: the server may still read it).
  async showFile(file) {
    this.strokes = [];
    this.current = null;
    this.image = null;
    try {
      this.image = await createImageBitmap(file);
    } catch {
      this.image = null;
    }
    this.fileLabel.textContent = file.name;
    this.fileLabel.hidden = false;
    this.redraw();
    this.hint.hidden = true;
  }

  get showsImage() {
    return this.image !== null;
  }

  // The pad as the PNG the server reads: EXPORT_SIDE square, ink on white (a promise of a Blob):
  // greyscale when nothing on it has colour (png.js), else the browser's RGBA PNG.
  async exportBlob() {
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = EXPORT_SIDE;
    const context = canvas.getContext("2d", { willReadFrequently: true });
    paint(context, EXPORT_SIDE, this.strokes, this.image);
    try {
      const grey = await greyPng(context.getImageData(0, 0, EXPORT_SIDE, EXPORT_SIDE));
      if (grey) return grey;
    } catch (error) {
      // a canvas tainted by a cross-origin picture cannot be read back: the browser's PNG it is
    }
    return pngBlob(canvas);
  }

  penDown(event) {
    if (this.pointer !== null || (event.pointerType === "mouse" && event.button !== 0)) return;
    event.preventDefault();
    this.pointer = event.pointerId;
    this.canvas.setPointerCapture(event.pointerId);
    if (this.image) { this.image = null; this.fileLabel.hidden = true; }
    this.current = [this.padPoint(event)];
    this.strokes.push(this.current);
    this.redraw();
  }

  penMove(event) {
    if (event.pointerId !== this.pointer || !this.current) return;
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    for (const e of (events.length ? events : [event])) this.current.push(this.padPoint(e));
    this.redraw();
    this.drawn.moving();
  }

  penUp(event) {
    if (event.pointerId !== this.pointer) return;
    performance.mark("digitnet:pointerup");   // the answer's latency is measured from here (asker.js)
    this.pointer = null;
    this.current = null;
    this.drawn.finished();
  }

  padPoint(event) {
    const box = this.canvas.getBoundingClientRect();
    return [(event.clientX - box.left) / box.width, (event.clientY - box.top) / box.height];
  }
}

// The canvas as a PNG Blob, encoded at once.  Not canvas.toBlob: Chromium encodes for it (and for
// OffscreenCanvas.convertToBlob) only when the page is idle, which after pointer input came a full
// second later (its idle deadline; measured in headless Chromium), while toDataURL takes ~3 ms here.
function pngBlob(canvas) {
  const url = canvas.toDataURL("image/png");
  const text = atob(url.slice(url.indexOf(",") + 1));
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return new Blob([bytes], { type: "image/png" });
}

// Draw the strokes (over the image, if any) onto a context of side x side pixels.
function paint(ctx, side, strokes, image) {
  ctx.save();
  ctx.fillStyle = PAPER;
  ctx.fillRect(0, 0, side, side);
  if (image) {
    const scale = Math.min(side / image.width, side / image.height);
    const w = image.width * scale, h = image.height * scale;
    ctx.drawImage(image, (side - w) / 2, (side - h) / 2, w, h);
  }
  ctx.strokeStyle = INK;
  ctx.fillStyle = INK;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.lineWidth = STROKE * side;
  for (const stroke of strokes) drawStroke(ctx, stroke, side);
  ctx.restore();
}

// A smooth curve through the points: quadratic segments between midpoints.
function drawStroke(ctx, points, side) {
  if (points.length === 1) {
    ctx.beginPath();
    ctx.arc(points[0][0] * side, points[0][1] * side, ctx.lineWidth / 2, 0, 2 * Math.PI);
    ctx.fill();
    return;
  }
  ctx.beginPath();
  ctx.moveTo(points[0][0] * side, points[0][1] * side);
  for (let i = 1; i < points.length - 1; i++) {
    const mx = (points[i][0] + points[i + 1][0]) / 2;
    const my = (points[i][1] + points[i + 1][1]) / 2;
    ctx.quadraticCurveTo(points[i][0] * side, points[i][1] * side, mx * side, my * side);
  }
  const last = points[points.length - 1];
  ctx.lineTo(last[0] * side, last[1] * side);
  ctx.stroke();
}
