// The network's answer: the digit, its confidence and any doubt, the ten bars, the 28x28 input.
// One number is written: the confidence (as `digitnet predict` prints it); the bars' heights are the
// output activations, with no figures of their own.  A picture that does not look like a digit greys it all.
// The inside panel follows every answer, and paints the card itself while it alters the network.

import { byId, fromTemplate, say } from "./dom.js";

const CLOSE_SHARE = 0.6;        // runner-up at least this share of the winner: say it is unsure
const READY = "Draw a digit to start.";
const NO_MODEL = "No model yet: train one below, then draw.";

// The ten bars, one <li> per output neuron, from <template id="bar-template">.
export function buildBars() {
  const list = byId("bars");
  for (let d = 0; d < 10; d++) {
    const item = fromTemplate("bar-template");
    item.querySelector(".bar-digit").textContent = String(d);
    list.append(item);
  }
}

// Who follows the answers (the inside panel), and whether it paints the answer itself for now
// (while it shows the network with units switched off, or a taught copy).
const followers = [];
let held = () => false;

// ``follower(answer)`` hears every answer (null when the pad is empty or the server refused);
// while ``hold()`` is true, /api/predict's answers are not painted: the follower paints its own.
export function followAnswers(follower, hold) {
  followers.push(follower);
  held = hold;
}

function tell(answer) {
  for (const follower of followers) follower(answer);
}

export function showAnswer(answer) {
  if (held()) drawSeen(answer.input); else paintAnswer(answer);
  tell(answer);
}

// /api/predict's answer on the card, telling no follower (the inside panel restores it this way).
export function paintAnswer(answer) {
  byId("answer-card").classList.remove("altered");
  byId("answer-card").classList.toggle("doubtful", answer.looks_like_a_digit === false);
  showDigit(String(answer.digit), `confidence ${answer.confidence.toFixed(3)}`);
  byId("error").hidden = true;
  say(byId("doubt"), doubtOf(answer));
  showBars(answer.scores, answer.digit);
  drawSeen(answer.input);
}

// /api/explain's answer for an altered network (``note`` says how), in place of /api/predict's.
export function paintAltered({ answer, outputs, input }, note) {
  byId("answer-card").classList.add("altered");
  byId("answer-card").classList.remove("doubtful");
  showDigit(String(answer), note);
  byId("doubt").hidden = true;
  byId("error").hidden = true;
  showBars(outputs, answer);
  drawSeen(input);
}

export function showEmpty() {
  byId("answer-card").classList.remove("altered", "doubtful");
  showDigit("?", READY);
  byId("doubt").hidden = true;
  byId("error").hidden = true;
  showBars(null, null);
  drawSeen(null);
  tell(null);
}

export function showError(message) {
  paintError(message);
  tell(null);
}

// The refused picture's message, and nothing left of the previous picture's answer.
export function paintError(message) {
  byId("answer-card").classList.remove("altered", "doubtful");
  showDigit("?", "");
  byId("doubt").hidden = true;
  say(byId("error"), message);
  showBars(null, null);
  drawSeen(null);
}

// Whether there is a model to answer with changes what the empty answer invites the user to do.
export function showModelPresent(present) {
  const confidence = byId("confidence");
  if (!present) confidence.textContent = NO_MODEL;
  else if (confidence.textContent === NO_MODEL) confidence.textContent = READY;
}

function showDigit(digit, confidence) {
  byId("digit").textContent = digit;
  byId("digit").classList.toggle("empty", digit === "?");
  byId("confidence").textContent = confidence;
}

// Why the answer may be wrong, or "" when nothing suggests it.
function doubtOf({ confidence, scores, warnings, looks_like_a_digit: looks, doubt }) {
  const [first, second] = scores.map((s, d) => [s, d]).sort((a, b) => b[0] - a[0]);
  if (looks === false) return `This does not look like a digit: ${doubt}.`;   // judged from the picture
  if (warnings && warnings.length) return `Careful: ${warnings[0]}.`;   // e.g. several digits side by side
  if (first[0] > 0 && second[0] >= CLOSE_SHARE * first[0]) return `Not sure: it could be a ${second[1]}.`;
  if (confidence < 0.5) return "Not sure: nothing stands out.";
  return "";
}

// Each bar's height is its output activation (its figure only in the tooltip); no scores empties them.
function showBars(scores, winner) {
  [...byId("bars").children].forEach((item, d) => {
    const score = scores ? scores[d] : 0;
    item.querySelector(".bar-fill").style.height = `${Math.max(0, Math.min(1, score)) * 100}%`;
    item.classList.toggle("winner", d === winner);
    const label = scores ? `${d}: activation ${score.toFixed(3)}` : String(d);
    item.setAttribute("aria-label", label);
    item.title = scores ? label : "";
  });
}

// The 28x28 input (rows of numbers in 0..1, white ink on black) into the little canvas.
function drawSeen(rows) {
  const ctx = byId("seen").getContext("2d");
  const image = ctx.createImageData(28, 28);
  for (let r = 0; r < 28; r++) {
    for (let c = 0; c < 28; c++) {
      const v = rows ? Math.round(Math.max(0, Math.min(1, rows[r][c])) * 255) : 0;
      const i = 4 * (28 * r + c);
      image.data[i] = image.data[i + 1] = image.data[i + 2] = v;
      image.data[i + 3] = 255;
    }
  }
  ctx.putImageData(image, 0, 0);
}
