"""Progress bars that fit whatever terminal they are drawn in."""

from __future__ import annotations

import os
import sys

# Below this many columns the full tqdm line (bar, counts, elapsed, rate) does not fit: keep the essentials.
NARROW = 60
# A terminal that does not report its width (0 columns) gets a line this long: short enough not to wrap
# (a wrapped line cannot be redrawn in place, and would print one line per update).
UNKNOWN_WIDTH = 40
SHORT_FORMAT = "{desc} {percentage:3.0f}% {n_fmt}/{total_fmt}"


def terminal_columns(stream=None) -> int:
    """The width of the terminal ``stream`` (default stderr, where bars go) is shown in; 0 when unknown."""
    stream = sys.stderr if stream is None else stream
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 0


def progress_bar(**kwargs):
    """A tqdm bar (shown only in a terminal, as tqdm's ``disable=None`` does) that fits its terminal:
    the full line where there is room, a short one (description, percent, count) in narrow
    terminals and in terminals of unknown width."""
    from tqdm import tqdm

    columns = terminal_columns(kwargs.get("file"))
    if columns <= 0:
        kwargs.update(ncols=UNKNOWN_WIDTH, dynamic_ncols=False, bar_format=SHORT_FORMAT)
    elif columns < NARROW:
        kwargs.update(ncols=columns - 1, dynamic_ncols=False, bar_format=SHORT_FORMAT)
    else:
        kwargs.setdefault("dynamic_ncols", True)
    return tqdm(**kwargs)


class JsonProgress:
    """`train --progress json`: one JSON object per line on stdout, flushed at once, for programs
    (the serve page's trainer) rather than people.  Events, each with ``"event"``:

    - ``start``: ``out``, ``resumed_from``, ``epochs_completed`` (0 unless resuming), ``epochs`` (the
      planned total), ``settings`` (the run's TrainConfig fields), ``training_images``, ``history``,
      ``untrained`` (epoch 0, when the run measured it: the fields of an ``epoch`` event) and ``peeks``
      (the ``peek`` events so far: a resumed run's curve keeps them);
    - ``untrained``: ``epoch`` 0, ``training_cost`` (an exact pass), ``validation_accuracy``, ``seconds``,
      ``learning_rate``: the network before any training, the curve's first point (a fresh run only);
    - ``progress``: ``epoch``, ``images``, ``total`` within the epoch running (at most every 0.2 s);
    - ``peek`` (with --peek-every): ``epoch``, ``images``, ``total``, ``at`` (epochs on the curve's
      axis, 0.1 = a tenth into epoch 1), ``sample_accuracy`` on the first ``sample_size`` validation images;
    - ``epoch``: ``epoch``, ``epochs``, ``training_cost``, ``validation_accuracy``, ``learning_rate``,
      ``seconds``, written once that epoch is saved;
    - ``end``: the RunResult: ``outcome`` (finished, interrupted, diverged, write_failed), ``saved_epoch``,
      ``resume_from``, ``resume_command``, ``test_accuracy``, ``error``, ``guessing`` (why the network is
      only guessing and what to try, or ""), ... (see ``runs.RunResult``).
    """

    INTERVAL = 0.2  # seconds between progress lines: enough for a smooth bar, little to parse

    def __init__(self, plan, stream=None):
        import time

        self.stream = stream or sys.stdout
        self.epochs = plan.trainer.config.epochs
        self._clock = time.monotonic
        self._last = 0.0
        trainer = plan.trainer
        self.emit("start", out=str(plan.out),
                  resumed_from=None if plan.resumed_from is None else str(plan.resumed_from),
                  epochs_completed=trainer.state.epochs_completed, epochs=self.epochs,
                  settings=trainer.config.to_dict(), training_images=len(trainer.data.training),
                  history=list(trainer.state.history), untrained=trainer.state.untrained,
                  peeks=list(trainer.state.peeks))

    def emit(self, event: str, **fields) -> None:
        import json

        self.stream.write(json.dumps({"event": event, **fields}, separators=(",", ":")) + "\n")
        self.stream.flush()

    def progress(self, epoch: int, images: int, total: int) -> None:
        now = self._clock()
        if now - self._last >= self.INTERVAL:
            self._last = now
            self.emit("progress", epoch=epoch, images=images, total=total)

    def untrained(self, stats) -> None:
        self.emit("untrained", **stats.to_dict())

    def peek(self, peek) -> None:
        self.emit("peek", **peek.to_dict())

    def epoch_done(self, stats) -> None:
        self.emit("epoch", epochs=self.epochs, **stats.to_dict())

    def end(self, result) -> None:
        self.emit("end", **result.to_dict())
