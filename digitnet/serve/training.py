"""Training from the page: one `digitnet train --progress json` child process at a time, watched.

The run is the CLI's own run (``runs.prepare`` / ``runs.run`` inside `digitnet train`), started as a
separate process so that it has a core of its own and the server's request threads stay responsive
(numpy would otherwise hold the GIL for whole matrix products).  The same settings and seed give the
same weights as `digitnet train` by construction.  The child writes one JSON object per line
(`train --progress json`); a reader thread turns them into the status the page shows and wakes
everyone waiting for a change (the Server-Sent Events stream).

- **Stop** sends the child SIGTERM, which `digitnet train` handles exactly as Ctrl-C (the epoch in
  progress is abandoned, every complete one is in the checkpoint).  Not SIGINT: a server started as a
  script's background job (`digitnet serve &`, nohup, a notebook's `!digitnet serve &`) ignores SIGINT,
  its child inherits that, and Stop would do nothing.  **Resume** runs `train --resume`.
- A child that dies without its final line (``kill -9``, out of memory) is reported as killed; its
  checkpoint holds the last complete epoch (every save is atomic), so the run can be resumed.
- The client never sends a path: run files are named here, under ``--runs-dir``.
- For a class: the page's runs look inside the first epochs (``PAGE_SETTINGS``: --peek-every), its
  "Slow" toggle pauses between mini-batches (``SLOW_SETTINGS``: --pause-ms), the status carries epoch 0
  (``untrained``), the peeks and the run's ``guessing`` verdict, and ``weights_png`` is the first
  layer's weight atlas of the latest saved epoch (GET /api/train/weights.png).
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

from digitnet import checkpoint, runs, signals
from digitnet.config import TrainConfig
from digitnet.serve.api import ApiError
from digitnet.serve.inside import atlas_png
from digitnet.settings import default_of, settings_of
from digitnet.settings import describe as describe_settings

# Caps on what a request may ask for, so that a runaway (or hostile) request cannot exhaust the
# machine: the CLI has none (a user at the terminal can always press Ctrl-C), the page has these.
MAX_HIDDEN_UNITS = 4096      # per hidden layer (784-4096-10 is 13 MB of float32 weights)
MAX_HIDDEN_LAYERS = 4
MAX_EPOCHS = 1000
NICE = 19                    # the child yields the CPU to the class's predictions (see _yield_the_cpu)
STOP_GRACE = 30.0            # seconds the child gets after Stop (or the server's shutdown) before it is killed
# How Stop reaches the child: SIGTERM is a clean stop in `digitnet train` (digitnet.signals) and, unlike
# SIGINT, is not ignored when the server was started in the background (SIG_IGN is inherited).
STOP_SIGNAL = signal.SIGTERM

# The main settings shown on the page (the rest keep their defaults unless a recipe sets them).
MAIN_SETTINGS = ("hidden_sizes", "epochs", "learning_rate", "batch_size", "cost", "init", "l2", "augment", "seed")
# What the page adds to every run it starts: validation peeks within the first epochs (the jump from
# 10% to 90% happens in the first few thousand images), and with "Slow (for a class)" a pause between
# mini-batches (50 ms: an epoch of 5,000 mini-batches takes about 4 minutes, a peek every 25 s).
PAGE_SETTINGS = {"peek_every": 5000}
SLOW_SETTINGS = {"pause_ms": 50}


def train_arguments(config: TrainConfig) -> list[str]:
    """The `digitnet train` options that give ``config`` (defaults left out)."""
    return _options({name: getattr(config, name) for name in settings_of(TrainConfig)
                     if getattr(config, name) != default_of(TrainConfig, name)})


def _options(settings: dict) -> list[str]:
    """``{field: value}`` as `digitnet train` options, in the order given: each option's name and
    its value as a user would type it (``Setting.format``); a yes/no option alone, when yes."""
    specs = settings_of(TrainConfig)
    arguments = []
    for name, value in settings.items():
        spec = specs[name]
        if spec.kind is not bool:
            arguments += [spec.option, spec.format(value)]
        elif value:
            arguments.append(spec.option)
    return arguments


def _recipe(name: str, **settings) -> dict:
    """A recipe for the page: its settings and the `digitnet train` command that gives the same run."""
    return {"name": name, "command": " ".join(["digitnet train", *_options(settings)]), "settings": settings}


# The README's recipes ("Results"), one click away on the page.
RECIPES = [
    _recipe("textbook ch. 1 (the default)"),
    _recipe("quadratic cost, 98.6%", hidden_sizes=[300], init="scaled", learning_rate=3.0, l2=1.0,
            augment="shift=1", epochs=60, eta_patience=4, eta_min_factor=16.0),
    _recipe("cross-entropy, 98.5%", hidden_sizes=[300], cost="cross-entropy", init="scaled", learning_rate=0.5,
            l2=5.0, augment="shift=2", epochs=60, eta_patience=4, eta_min_factor=16.0),
]


def describe() -> dict:
    """What the page's form needs: every setting (option, help, default, range), the main ones,
    the recipes and the caps."""
    return {"settings": describe_settings(TrainConfig), "main": list(MAIN_SETTINGS), "recipes": RECIPES,
            "page": PAGE_SETTINGS, "slow": SLOW_SETTINGS,
            "caps": {"hidden_units": MAX_HIDDEN_UNITS, "hidden_layers": MAX_HIDDEN_LAYERS, "epochs": MAX_EPOCHS}}


def config_from_json(body: object):
    """A TrainConfig from the client's ``{"settings": {field: value}}`` (missing fields keep their
    defaults); ``ApiError(400)`` naming the options as the CLI does (``TrainConfig.problems()``)
    for unknown fields, wrong types, values out of range and the page's caps.  Any JSON at all gets
    a 400 or a config, never another exception (tests/fuzz/fuzz_settings.py)."""
    settings = body.get("settings", {}) if isinstance(body, dict) else None
    if not isinstance(settings, dict) or (isinstance(body, dict) and set(body) - {"settings"}):
        raise ApiError(400, 'send {"settings": {"hidden_sizes": [30], "epochs": 30, ...}}')
    specs = settings_of(TrainConfig)
    unknown = sorted(set(settings) - set(specs))
    if unknown:
        shown = ", ".join(repr(name)[1:-1] for name in unknown)  # escaped: one line whatever the keys hold
        raise ApiError(400, f"unknown setting(s): {shown[:200]} "
                            f"(known: {', '.join(specs)})")
    try:
        config = TrainConfig(**{name: specs[name].from_json(value) for name, value in settings.items()})
    except ValueError as e:  # text a form sent that does not parse
        raise ApiError(400, str(e)) from None
    problems = config.problems()
    if not problems:
        hidden = config.hidden_sizes
        if len(hidden) > MAX_HIDDEN_LAYERS:
            problems.append(f"--hidden: at most {MAX_HIDDEN_LAYERS} hidden layers from the page, got {len(hidden)}")
        if any(size > MAX_HIDDEN_UNITS for size in hidden):
            problems.append(f"--hidden: at most {MAX_HIDDEN_UNITS} units per layer from the page, "
                            f"got {specs['hidden_sizes'].format(hidden)[:80]}")
        if config.epochs > MAX_EPOCHS:
            problems.append(f"--epochs: at most {MAX_EPOCHS} from the page, got {config.epochs}")
    if problems:
        raise ApiError(400, "; ".join(problems))
    return config


class TrainingRuns:
    """The one training process the server may run, and what the page sees of it."""

    def __init__(self, runs_dir: str | os.PathLike = "runs", data_dir=None, log=None,
                 python: str = sys.executable):
        self.runs_dir = Path(runs_dir)
        self.data_dir = data_dir
        self.log = log or sys.stderr
        self.python = python
        self.stop_grace = STOP_GRACE
        self._changed = threading.Condition()
        # Versions grow across restarts too (milliseconds since 1970 to start with), so a page that
        # outlived a restarted server takes the new server's answers as newer, not as stale.
        self._version = time.time_ns() // 1_000_000
        self._process: subprocess.Popen | None = None
        self._stderr: deque[str] = deque(maxlen=20)
        self._status = self._idle()
        self.closed = False
        self._reader: threading.Thread | None = None
        self._atlas_lock = threading.Lock()
        self._atlas: tuple[tuple, tuple[bytes, int, int]] | None = None  # (file key, weights_png's answer)

    # -- what the page sees ---------------------------------------------------------------------

    @staticmethod
    def _idle() -> dict:
        return {"state": "idle", "running": False, "run": None, "message": "", "settings": None,
                "epochs": None, "epochs_completed": 0, "start_epoch": 0, "history": [], "progress": None,
                "started": None, "finished": None, "test_accuracy": None, "resumable": False,
                "command": None, "saved_epoch": None, "untrained": None, "peeks": [], "guessing": ""}

    def status(self) -> dict:
        with self._changed:
            return self._snapshot()

    def _snapshot(self) -> dict:
        status = dict(self._status, version=self._version)
        now = time.time()
        started, finished = status["started"], status["finished"]
        status["elapsed"] = None if started is None else round((finished or now) - started, 1)
        status["eta"] = self._eta(status, now) if status["running"] else None
        return status

    @staticmethod
    def _eta(status: dict, now: float) -> float | None:
        """Seconds left, from the pace of this session's epochs (and the epoch in progress)."""
        began = status.get("training_began")
        if began is None or not status["epochs"]:
            return None
        done = status["epochs_completed"] - status["start_epoch"]
        progress = status["progress"]
        if progress and progress["epoch"] == status["epochs_completed"] + 1 and progress["total"]:
            done += progress["images"] / progress["total"]
        if done <= 0:
            return None
        left = status["epochs"] - status["start_epoch"] - done
        return round(max(0.0, (now - began) / done * left), 1)

    def wait_for_change(self, seen_version: int, timeout: float) -> dict | None:
        """The status once its version differs from ``seen_version``; None after ``timeout`` seconds."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._version != seen_version or self.closed, timeout):
                return None
            return self._snapshot()

    def _update(self, **changes) -> None:
        with self._changed:
            self._status.update(changes)
            self._version += 1
            self._changed.notify_all()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def current_file(self) -> Path | None:
        """The checkpoint of the run shown (running or last), if it has saved an epoch."""
        with self._changed:
            out = self._status.get("out")
        return Path(out) if out and Path(out).is_file() else None

    def weights_png(self) -> tuple[bytes, int, int]:
        """(PNG bytes, columns, epoch): ``inside.weight_atlas`` of the latest saved epoch of the run shown
        (its last weights), grey levels (mode "L"); made once per saved file.  404 before a first epoch."""
        path = self.current_file()
        if path is None:
            raise ApiError(404, "no run has saved an epoch yet: the weight pictures come once the first ends")
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        with self._atlas_lock:
            if self._atlas is not None and self._atlas[0] == key:
                return self._atlas[1]
            try:
                saved = checkpoint.load(path)
            except checkpoint.CheckpointError as e:
                raise ApiError(409, f"the run's checkpoint cannot be read right now: {e}") from None
            png, columns = atlas_png(saved.network)
            self._atlas = (key, (png, columns, int(saved.metadata.get("epochs_completed") or 0)))
            return self._atlas[1]

    # -- start, stop, resume --------------------------------------------------------------------

    def new_run_path(self) -> Path:
        """runs/2026-11-29_00-15-03.npz (with -2, -3 when two starts share a second)."""
        stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        for n in range(1, 1000):
            path = self.runs_dir / (f"{stamp}.npz" if n == 1 else f"{stamp}-{n}.npz")
            if not path.exists():
                return path
        raise ApiError(500, "cannot choose a new run name")

    def start(self, config) -> dict:
        """Start a new run with ``config`` (checked by ``config_from_json``); 409 while one runs."""
        with self._changed:
            self._refuse_if_running()
            try:
                self.runs_dir.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise ApiError(507, f"cannot create the runs folder {self.runs_dir}: {e.strerror or e}") from None
            out = self.new_run_path()
            arguments = ["--out", str(out), *train_arguments(config)]
            self._launch(arguments, out, settings=config.to_dict(), epochs=config.epochs, start_epoch=0)
            return self._snapshot()

    def resume(self, path: Path, epochs: int | None = None, settings: dict | None = None) -> dict:
        """Continue the run in ``path`` (a file the server listed), to ``epochs`` or its own plan;
        ``settings`` may change those a resumed run may (--pause-ms: Slow on or off, --peek-every)."""
        if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs > MAX_EPOCHS):
            raise ApiError(400, f"--epochs must be a whole number of at most {MAX_EPOCHS}, got {epochs!r}")
        changes = _resume_changes(settings)
        with self._changed:
            self._refuse_if_running()
            try:
                config, state = runs.resumed_config(checkpoint.load(path), epochs, changes)
            except runs.ResumeError as e:
                raise ApiError(400, str(e)) from None
            except checkpoint.CheckpointError as e:
                raise ApiError(400, str(e)) from None
            problems = config.problems()
            if problems:
                raise ApiError(400, "; ".join(problems))
            arguments = ["--resume", str(path), "--out", str(path), *_options(changes)]
            if epochs is not None:
                arguments += ["--epochs", str(epochs)]
            self._launch(arguments, path, settings=config.to_dict(), epochs=config.epochs,
                         start_epoch=state.epochs_completed, history=list(state.history))
            self._status.update(untrained=state.untrained, peeks=list(state.peeks))
            return self._snapshot()

    def stop(self) -> dict:
        """Ctrl-C for the run (``STOP_SIGNAL``); the child keeps every complete epoch and says so.
        A child still going ``stop_grace`` seconds later (one started with SIGTERM ignored too) is
        killed: every save is atomic, so its checkpoint holds the last complete epoch either way."""
        with self._changed:
            if not self.running:
                raise ApiError(409, "no training run is going")
            process = self._process
            process.send_signal(STOP_SIGNAL)
            threading.Thread(target=self._kill_unless_gone, args=(process,), daemon=True).start()
            self._update(state="stopping", message="stopping: the epoch in progress is abandoned")  # an RLock
            return self._snapshot()

    def _kill_unless_gone(self, process: subprocess.Popen) -> None:
        try:
            process.wait(self.stop_grace)
        except subprocess.TimeoutExpired:
            process.kill()

    def shutdown(self) -> dict | None:
        """On server exit: stop a running child as Ctrl-C would, wait for it, return the final status."""
        process = self._process
        if process is None or process.poll() is not None:
            self.close()
            return None
        try:
            process.send_signal(STOP_SIGNAL)
            process.wait(self.stop_grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if self._reader is not None:
            self._reader.join(5)
        self.close()
        return self.status()

    def close(self) -> None:
        with self._changed:
            self.closed = True
            self._changed.notify_all()

    def _refuse_if_running(self) -> None:
        if self.running or self._status["state"] in ("starting", "running", "stopping"):
            raise ApiError(409, f"a training run is already going ({self._status['run']}); stop it first "
                                "(one run at a time)")

    def _launch(self, arguments: list[str], out: Path, settings: dict, epochs: int, start_epoch: int,
                history: list | None = None) -> None:
        command = [self.python, "-m", "digitnet", "train", "--progress", "json", *arguments]
        if self.data_dir is not None:
            command += ["--data-dir", str(self.data_dir)]
        self._stderr.clear()
        try:
            self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE, text=True, bufsize=1,
                                             start_new_session=True)  # the terminal's Ctrl-C is ours to pass on
        except OSError as e:
            raise ApiError(500, f"cannot start the training process: {e.strerror or e}") from None
        _yield_the_cpu(self._process.pid)
        self._status = dict(self._idle(), state="starting", running=True, run=self.run_name(out), out=str(out),
                            settings=settings, epochs=epochs, epochs_completed=start_epoch, start_epoch=start_epoch,
                            history=history or [], started=time.time(), pid=self._process.pid,
                            message="loading the data", training_began=None,
                            command="digitnet train " + " ".join(command[6:]))
        self._version += 1
        self._changed.notify_all()
        print(f"digitnet serve: training started: {self._status['command']} (pid {self._process.pid})",
              file=self.log, flush=True)
        process = self._process
        threading.Thread(target=self._read_stderr, args=(process,), daemon=True).start()
        self._reader = threading.Thread(target=self._read_progress, args=(process,), daemon=True)
        self._reader.start()

    def run_name(self, out: Path) -> str:
        """The id /api/models gives the file: ``runs/NAME.npz`` in the runs folder, else ``NAME.npz``."""
        out = Path(out)
        if out.parent.resolve() == self.runs_dir.resolve():
            return f"{self.runs_dir.name}/{out.name}"
        return out.name

    # -- the child's output ---------------------------------------------------------------------

    def _read_stderr(self, process: subprocess.Popen) -> None:
        for line in process.stderr:
            line = line.rstrip()
            if line and "\r" not in line:
                self._stderr.append(line)
                print(f"digitnet serve: trainer: {line}", file=self.log, flush=True)

    def _read_progress(self, process: subprocess.Popen) -> None:
        end = None
        for line in process.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            kind = event.get("event")
            if kind == "start":
                self._update(state="running", message="training", training_began=time.time(),
                             epochs=event["epochs"], epochs_completed=event["epochs_completed"],
                             start_epoch=event["epochs_completed"], history=event["history"],
                             settings=event["settings"], untrained=event.get("untrained"),
                             peeks=event.get("peeks") or [])
            elif kind == "untrained":
                self._update(untrained={k: v for k, v in event.items() if k != "event"})
            elif kind == "peek":
                with self._changed:
                    peeks = self._status["peeks"] + [{k: v for k, v in event.items() if k != "event"}]
                self._update(peeks=peeks)
            elif kind == "progress":
                self._update(progress={k: event[k] for k in ("epoch", "images", "total")})
            elif kind == "epoch":
                with self._changed:
                    history = self._status["history"] + [{k: v for k, v in event.items() if k != "event"}]
                self._update(history=history, epochs_completed=event["epoch"], saved_epoch=event["epoch"],
                             progress=None)
            elif kind == "end":
                end = event
        code = process.wait()
        self._finish(end, code)

    def _finish(self, end: dict | None, code: int) -> None:
        with self._changed:
            status = self._status
            done = status["epochs_completed"]
            name = status["run"]
        if end is not None:
            outcome = end["outcome"]
            saved = end.get("saved_epoch") or 0
            if outcome == "finished" and end.get("guessing"):  # not "finished: 10.95%" as if it were fine
                message = f"finished, but not learning: test accuracy {end['test_accuracy']:.2%}. {end['guessing']}"
            elif outcome == "finished":
                message = (f"finished: test accuracy {end['test_accuracy']:.2%}"
                           + (f" ({end['stopped']})" if end.get("stopped") else ""))
            elif outcome == "interrupted":
                message = (f"stopped; epoch {saved} is saved in {name}: Resume continues it" if saved
                           else "stopped before the first epoch finished: nothing was saved")
            else:  # diverged or write_failed: told as the CLI tells it
                message = runs.failure_message(outcome, end["error"], saved, name if saved else None,
                                               end.get("learning_rate"))
            if outcome == "interrupted" and end.get("guessing"):
                message += f". {end['guessing']}"
            changes = dict(state=outcome, test_accuracy=end.get("test_accuracy"), saved_epoch=saved or None,
                           resumable=bool(saved) and outcome in ("interrupted", "write_failed"),
                           guessing=end.get("guessing") or "")
        elif code == -STOP_SIGNAL and status["state"] == "stopping":  # Stop came before train's handlers were set
            kept = _epochs_saved_in(status.get("out")) or 0  # a resumed run's file keeps its epochs
            message = (f"stopped; epoch {kept} is saved in {name}: Resume continues it" if kept
                       else "stopped before the first epoch finished: nothing was saved")
            changes = dict(state="interrupted", resumable=bool(kept), saved_epoch=kept or None)
        elif code < 0:
            # The file is the truth: a kill between a save and its event leaves one epoch more on disk.
            kept = _epochs_saved_in(status.get("out")) or 0  # a resumed run's file keeps its epochs
            message = (f"the training process was killed ({signals.name(-code)}); " +
                       (f"epoch {kept} is intact in {name}: Resume continues it" if kept
                        else "no epoch had been saved"))
            changes = dict(state="killed", resumable=bool(kept), saved_epoch=kept or None,
                           epochs_completed=max(done, kept))
        else:
            said = [line for line in self._stderr if line.strip()]
            reason = said[-1] if said else f"exit status {code}"
            message = f"the run could not start: {reason.removeprefix('Error: ')}"
            changes = dict(state="failed", resumable=False)
        print(f"digitnet serve: training ended: {message}", file=self.log, flush=True)
        self._update(running=False, finished=time.time(), progress=None, message=message, **changes)


def _yield_the_cpu(pid: int) -> None:
    """Let the training process run only on CPU the server leaves idle (Linux's SCHED_IDLE; its
    threads inherit it), or at least at nice ``NICE``: a class's answers come before the run's epochs."""
    try:
        os.setpriority(os.PRIO_PROCESS, pid, NICE)
        os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))
    except (OSError, AttributeError):  # not Linux, or the process is already gone
        pass


def _epochs_saved_in(out: str | None) -> int | None:
    """The epochs the checkpoint at ``out`` holds, or None when it cannot be read (none was saved)."""
    if not out:
        return None
    try:
        return int(checkpoint.load(out).metadata.get("epochs_completed") or 0)
    except (checkpoint.CheckpointError, OSError):
        return None


def _resume_changes(settings: object) -> dict:
    """The settings a resume from the page may change (those marked ``resume_may_change``, but the
    planned total, which is ``epochs``); ApiError(400) naming them for any other, and for a value the
    CLI would refuse (read by ``Setting.from_json``, checked by ``Setting.problem``).  The
    run's other settings are checked with them (``TrainConfig.problems``) by ``resume``."""
    if settings is None:
        return {}
    specs = settings_of(TrainConfig)
    allowed = [name for name, spec in specs.items() if spec.resume_may_change and name != "epochs"]
    if not isinstance(settings, dict) or set(settings) - set(allowed):
        raise ApiError(400, f"a resumed run may change only {', '.join(specs[n].option for n in allowed)}")
    try:
        changes = {name: specs[name].from_json(value) for name, value in settings.items()}
    except ValueError as e:
        raise ApiError(400, str(e)) from None
    problems = [p for name, value in changes.items() if (p := specs[name].problem(value)) is not None]
    if problems:
        raise ApiError(400, "; ".join(problems))
    return changes
