// digitnet serve: the training panel and the models list.  Plain modern JS, no build step.
//
// The form is built from GET /api/train/settings (the same declarations `digitnet train` derives
// its options from), so its defaults, ranges and names are the CLI's.  The server checks every
// value again and answers 400 with the CLI's messages.  The run's status arrives as Server-Sent
// Events (GET /api/train/events): the current status at once, then each change, so a page opened
// mid-run shows it where it is.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const LABELS = {
    hidden_sizes: "Hidden", epochs: "Epochs", learning_rate: "η (eta)", batch_size: "Batch size",
    cost: "Cost", init: "Init", l2: "L2 λ", augment: "Augment (px)", seed: "Seed",
  };
  let specs = {};               // name -> description from the server
  let main = [];
  let recipes = [];
  let extras = {};              // settings a recipe sets beyond the form (e.g. --patience-eta)
  let status = null;            // the newest status from the server
  let lastEpochs = -1;          // epochs_completed last rendered (to notice a new epoch)
  let lastState = "";
  let drawnCurve = "";          // run, epochs shown and planned of the curve last drawn
  let modelsTimer = 0;

  // -------------------------------------------------------------------------------------------
  // The form

  async function buildForm() {
    const response = await fetch("/api/train/settings");
    if (!response.ok) return false;
    const described = await response.json();
    if (!described.available) {            // a server started without training: no panel
      document.querySelector(".train-card").hidden = true;
      $("use-training-row").hidden = true;
      return false;
    }
    specs = Object.fromEntries(described.settings.map((s) => [s.name, s]));
    main = described.main;
    recipes = described.recipes;
    const fields = $("t-fields");
    for (const name of main) {
      const spec = specs[name];
      const label = document.createElement("label");
      label.className = "field";
      label.title = `${spec.option}: ${spec.help}${spec.range ? ` (${spec.range})` : ""}`;
      const caption = document.createElement("span");
      caption.textContent = LABELS[name] || spec.option;
      let input;
      if (spec.choices) {
        input = document.createElement("select");
        for (const choice of spec.choices) input.append(new Option(choice, choice));
      } else {
        input = document.createElement("input");
        input.type = "text";
        input.inputMode = spec.type === "int" ? "numeric" : spec.type === "float" ? "decimal" : "text";
        input.autocomplete = "off";
        input.spellcheck = false;
      }
      input.id = `t-${name}`;
      input.name = name;
      label.append(caption, input);
      fields.append(label);
    }
    const select = $("t-recipe");
    recipes.forEach((recipe, i) => select.append(new Option(recipe.name, String(i))));
    select.addEventListener("change", () => applyRecipe(recipes[Number(select.value)]));
    applyRecipe(recipes[0]);
    return true;
  }

  function applyRecipe(recipe) {
    extras = {};
    for (const name of main) setField(name, specs[name].default);
    for (const [name, value] of Object.entries(recipe.settings)) {
      if (main.includes(name)) setField(name, value); else extras[name] = value;
    }
    $("t-recipe-command").textContent = `Same as: ${recipe.command}`;
  }

  function setField(name, value) {
    $(`t-${name}`).value = Array.isArray(value) ? value.join(",") : String(value);
  }

  function formSettings() {
    const settings = { ...extras };
    for (const name of main) settings[name] = $(`t-${name}`).value.trim();
    return settings;
  }

  function setFormEnabled(enabled) {
    for (const name of main) $(`t-${name}`).disabled = !enabled;
    $("t-recipe").disabled = !enabled;
  }

  // -------------------------------------------------------------------------------------------
  // Talking to the server

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}),
    });
    let answer = {};
    try { answer = await response.json(); } catch (error) { /* an empty or broken answer */ }
    if (!response.ok) throw new Error(answer.error || `the server answered ${response.status}`);
    return answer;
  }

  function showError(message) {
    $("t-error").textContent = message;
    $("t-error").hidden = !message;
  }

  async function trainOrStop(event) {
    event.preventDefault();
    showError("");
    try {
      if (status && status.running) render(await post("/api/train/stop"));
      else render(await post("/api/train/start", { settings: formSettings() }));
    } catch (error) {
      showError(error.message);
    }
  }

  async function resume(id) {
    showError("");
    try {
      render(await post("/api/train/resume", { id }));
    } catch (error) {
      showError(error.message);
    }
  }

  // A proxy that buffers the event stream, or a browser without EventSource, would leave the panel
  // frozen: while nothing has been heard for POLL_MS (before the first event, or during a run),
  // ask GET /api/train for the same status.  render() drops answers older than what it shows.
  const POLL_MS = 3000;
  let lastHeard = 0;

  function listen() {
    if ("EventSource" in window) {
      const source = new EventSource("/api/train/events");
      source.onmessage = (event) => { lastHeard = Date.now(); render(JSON.parse(event.data)); };
      // EventSource reconnects by itself after a dropped connection; the first message is the status.
    }
    setInterval(poll, POLL_MS);
  }

  let polling = false;

  async function poll() {
    const heard = lastHeard > 0;
    if (polling || Date.now() - lastHeard < POLL_MS || (heard && !(status && status.running))) return;
    polling = true;                        // one request at a time, however slow the server is
    try {
      const response = await fetch("/api/train");
      if (response.ok) render(await response.json());
    } catch {
      // the server is gone for now: the next poll tries again
    } finally {
      polling = false;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Showing the run

  const STATE_WORDS = {
    starting: "Starting", running: "Training", stopping: "Stopping", finished: "Finished",
    interrupted: "Stopped", diverged: "Diverged", write_failed: "Could not save", killed: "Killed", failed: "Failed",
  };

  function render(next) {
    if (status && next.version < status.version) return;   // an older answer than what is shown
    status = next;
    const running = status.running;
    $("t-go-label").textContent = running ? "Stop" : "Train";
    $("t-go").classList.toggle("stop", running);
    $("t-go").querySelector("svg").innerHTML = running ? '<rect x="6" y="6" width="12" height="12" rx="1"/>'
      : '<path d="M7 4v16l13-8z"/>';
    $("t-go").disabled = status.state === "stopping";
    setFormEnabled(!running);
    $("t-resume").hidden = running || !status.resumable;
    if (status.state === "idle") { $("t-run").hidden = true; updateToggle(); return; }
    $("t-run").hidden = false;
    const epochs = status.epochs || 0;
    const done = status.epochs_completed || 0;
    const state = $("t-state");
    state.textContent = `${STATE_WORDS[status.state] || status.state} · ${status.run} · epoch ${done} of ${epochs}`;
    state.className = `run-state ${status.state}`;
    const progress = status.progress;
    const share = progress && progress.total ? progress.images / progress.total : 0;
    $("t-progress-fill").style.width = running ? `${(100 * share).toFixed(1)}%` : (status.state === "finished" ? "100%" : "0%");
    $("t-progress").setAttribute("aria-valuenow", String(Math.round(100 * share)));
    const times = [];
    if (status.elapsed !== null) times.push(`elapsed ${duration(status.elapsed)}`);
    if (running && status.eta !== null) times.push(`about ${duration(status.eta)} left`);
    $("t-time").textContent = times.join(" · ");
    $("t-message").textContent = status.message;
    $("t-message").className = `small ${["diverged", "write_failed", "killed", "failed"].includes(status.state) ? "error" : ""}`;
    // Progress events come several times a second, the curve changes once an epoch: redraw then.
    const curveKey = `${status.run}|${status.history.length}|${epochs}`;
    if (curveKey !== drawnCurve) {
      drawnCurve = curveKey;
      drawCurve(status.history, epochs);
    }
    updateToggle();
    if (done !== lastEpochs || status.state !== lastState) {
      const newEpoch = done !== lastEpochs && lastEpochs !== -1;
      lastEpochs = done;
      lastState = status.state;
      if (newEpoch && $("use-training").checked) window.digitnet.reask();   // watch the answer improve
      scheduleModels();
      if (status.state === "finished" && $("m-file").textContent === "none yet") serveFirstModel();
    }
  }

  function updateToggle() {
    const available = status && status.saved_epoch;
    const toggle = $("use-training");
    toggle.disabled = !available;
    if (!available) toggle.checked = false;
    $("use-training-note").textContent = available ? `(${status.run}, epoch ${status.saved_epoch})` : "(no epoch saved yet)";
  }

  async function serveFirstModel() {
    try {
      await post("/api/models/select", { id: status.run });
      window.digitnet.loadModel();
      scheduleModels();
    } catch (error) { /* the list still offers it */ }
  }

  function duration(seconds) {
    const s = Math.round(seconds);
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ${String(s % 60).padStart(2, "0")} s`;
    return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
  }

  // Training cost (left scale, from 0) and validation accuracy (right scale, %) per epoch.
  function drawCurve(history, epochs) {
    const canvas = $("t-curve");
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth, height = canvas.clientHeight;
    if (!width || !height) return;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    canvas.dataset.points = String(history.length);
    const ctx = canvas.getContext("2d");
    ctx.scale(ratio, ratio);
    const style = getComputedStyle(document.documentElement);
    const muted = style.getPropertyValue("--muted").trim();
    const line = style.getPropertyValue("--line").trim();
    const accent = style.getPropertyValue("--accent").trim();
    const costColour = style.getPropertyValue("--cost").trim() || "#2f6fed";
    const left = 46, right = 52, top = 10, bottom = 24;
    const w = width - left - right, h = height - top - bottom;
    const n = Math.max(epochs, history.length, 2);
    const x = (epoch) => left + (n === 1 ? w / 2 : ((epoch - 1) / (n - 1)) * w);
    const costs = history.map((e) => e.training_cost).filter(Number.isFinite);
    const maxCost = costs.length ? Math.max(...costs) * 1.1 : 1;
    const accuracies = history.map((e) => e.validation_accuracy).filter((a) => a !== null);
    const lowAcc = accuracies.length ? Math.max(0, Math.floor(Math.min(...accuracies) * 10) / 10) : 0;
    const yCost = (c) => top + h - (c / maxCost) * h;
    const yAcc = (a) => top + h - ((a - lowAcc) / (1 - lowAcc || 1)) * h;
    ctx.font = "11px system-ui, sans-serif";
    ctx.lineWidth = 1;
    ctx.strokeStyle = line;
    ctx.fillStyle = muted;
    for (let i = 0; i <= 4; i++) {
      const y = top + (h * i) / 4;
      ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(left + w, y); ctx.stroke();
      ctx.textAlign = "right";
      ctx.fillText((maxCost * (1 - i / 4)).toPrecision(2), left - 6, y + 4);
      ctx.textAlign = "left";
      ctx.fillText(`${(100 * (1 - (1 - lowAcc) * i / 4)).toFixed(lowAcc > 0.6 ? 1 : 0)}%`, left + w + 6, y + 4);
    }
    ctx.textAlign = "center";
    const step = Math.max(1, Math.ceil(n / 10));
    for (let e = 1; e <= n; e += step) ctx.fillText(String(e), x(e), height - 6);
    const series = (points, colour) => {
      if (!points.length) return;
      ctx.strokeStyle = colour; ctx.fillStyle = colour; ctx.lineWidth = 2;
      ctx.beginPath();
      points.forEach(([px, py], i) => (i ? ctx.lineTo(px, py) : ctx.moveTo(px, py)));
      ctx.stroke();
      for (const [px, py] of points) { ctx.beginPath(); ctx.arc(px, py, 3, 0, 2 * Math.PI); ctx.fill(); }
    };
    series(history.filter((e) => Number.isFinite(e.training_cost)).map((e) => [x(e.epoch), yCost(e.training_cost)]),
      costColour);
    series(history.filter((e) => e.validation_accuracy !== null).map((e) => [x(e.epoch), yAcc(e.validation_accuracy)]),
      accent);
  }

  // -------------------------------------------------------------------------------------------
  // The models list

  function scheduleModels() {
    clearTimeout(modelsTimer);
    modelsTimer = setTimeout(loadModels, 150);
  }

  async function loadModels() {
    let listing;
    try {
      const response = await fetch("/api/models");
      listing = await response.json();
      if (!response.ok) throw new Error(listing.error);
    } catch (error) {
      $("models-note").textContent = "cannot list the models";
      return;
    }
    const list = $("models");
    list.innerHTML = "";
    $("models-note").textContent = listing.models.length
      ? `Runs from this page are saved in ${listing.runs_dir}/; checkpoints in the working directory are listed too.`
      : `No checkpoints yet: runs from this page are saved in ${listing.runs_dir}/.`;
    for (const model of listing.models) list.append(modelItem(model));
  }

  function modelItem(model) {
    const item = document.createElement("li");
    item.className = "model";
    item.dataset.id = model.id;
    if (model.served) item.classList.add("served");
    const name = document.createElement("div");
    name.className = "model-name";
    const title = document.createElement("strong");
    title.textContent = model.id;
    name.append(title);
    const facts = document.createElement("span");
    facts.className = "small muted";
    if (model.error) {
      facts.textContent = model.error;
    } else {
      const parts = [model.sizes.join("–"), model.cost];
      if (model.epochs_completed !== null && model.epochs_completed !== undefined) {
        parts.push(`${model.epochs_completed}${model.epochs ? ` of ${model.epochs}` : ""} epochs`);
      }
      if (model.settings.learning_rate !== undefined) parts.push(`η ${model.settings.learning_rate}`);
      if (typeof model.test_accuracy === "number") parts.push(`test ${(100 * model.test_accuracy).toFixed(2)}%`);
      else if (typeof model.best_validation_accuracy === "number") {
        parts.push(`validation ${(100 * model.best_validation_accuracy).toFixed(2)}%`);
      }
      facts.textContent = parts.join(" · ");
    }
    name.append(facts);
    const actions = document.createElement("div");
    actions.className = "model-actions";
    const badge = (text, className) => {
      const span = document.createElement("span");
      span.className = className;
      span.textContent = text;
      return span;
    };
    const button = (text, className, onClick) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = className;
      b.textContent = text;
      b.addEventListener("click", onClick);
      return b;
    };
    if (model.served) {
      actions.append(badge("serving", "badge"));
    } else if (!model.error) {
      actions.append(button("Use", "use", () => selectModel(model.id)));
    }
    if (model.training) {
      actions.append(badge("training", "badge training"));
    } else if (model.resumable && !model.complete && !(status && status.running)) {
      actions.append(button("Resume", "secondary resume", () => resume(model.id)));
    }
    const download = document.createElement("a");
    download.className = "button-link";
    download.href = `/api/models/download?id=${encodeURIComponent(model.id)}`;
    download.download = model.name;
    download.textContent = "Download";
    actions.append(download);
    item.append(name, actions);
    return item;
  }

  async function selectModel(id) {
    showError("");
    try {
      await post("/api/models/select", { id });
      await window.digitnet.loadModel();
      $("test-result").textContent = "";
      window.digitnet.reask();
      loadModels();
    } catch (error) {
      showError(error.message);
    }
  }

  // -------------------------------------------------------------------------------------------

  async function setUp() {
    $("t-form").addEventListener("submit", trainOrStop);
    $("t-resume").addEventListener("click", () => status && resume(status.run));
    $("use-training").addEventListener("change", () => window.digitnet.reask());
    new ResizeObserver(() => status && drawCurve(status.history, status.epochs || 0)).observe($("t-curve"));
    if (await buildForm()) listen();
    loadModels();
  }

  setUp();
})();
