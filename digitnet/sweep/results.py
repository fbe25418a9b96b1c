"""A study's trials as ranked rows: the terminal table and results.csv, from the stored study alone.

Everything here comes out of the database (parameters, per-epoch validation
accuracy, times, what stopped a trial), so `digitnet sweep --show` on any
machine prints what the sweep itself printed.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

from optuna.trial import TrialState

from digitnet.atomic import atomic_path
from digitnet.sweep.liveness import counts
from digitnet.sweep.study import target
from digitnet.text import percent


@dataclass
class Row:
    """One finished trial (complete or pruned)."""

    number: int
    params: dict                       # option name -> value as Optuna stored it
    curve: list[tuple[int, float]]     # (epoch, validation accuracy)
    state: str                         # "complete" or "pruned"
    stopped: str = ""                  # why it ended before --epochs ("pruned after epoch 3", ...)
    seconds: float | None = None
    checkpoint: str = ""
    host: str = ""
    rank: int = 0
    best: float | None = field(init=False)
    best_epoch: int | None = field(init=False)

    def __post_init__(self):
        finite = [(acc, -epoch) for epoch, acc in self.curve if acc is not None and math.isfinite(acc)]
        best = max(finite) if finite else None
        self.best = best[0] if best else None
        self.best_epoch = -best[1] if best else None

    @property
    def epochs(self) -> int:
        return len(self.curve)

    @property
    def status(self) -> str:
        return self.stopped or self.state


def rows(study) -> list[Row]:
    """The finished trials, best validation accuracy first (ties: the earlier trial)."""
    out = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        seconds = ((t.datetime_complete - t.datetime_start).total_seconds()
                   if t.datetime_complete and t.datetime_start else None)
        out.append(Row(t.number, dict(t.params), sorted(t.intermediate_values.items()),
                       "complete" if t.state == TrialState.COMPLETE else "pruned",
                       t.user_attrs.get("stopped", ""), seconds, t.user_attrs.get("checkpoint", ""),
                       (t.user_attrs.get("worker") or {}).get("host", "")))
    out.sort(key=lambda r: (r.best is None, -(r.best or 0), r.number))
    for rank, row in enumerate(out, 1):
        row.rank = rank
    return out


def best_row(ranked: list[Row]) -> Row | None:
    """The best trial that ran to its end (a pruned trial is never the answer)."""
    return next((r for r in ranked if r.state == "complete" and r.best is not None), None)


def param_names(ranked: list[Row], definition=None) -> list[str]:
    if definition is not None:
        return [p.name for p in definition.space.params]
    return list(dict.fromkeys(name for r in ranked for name in r.params))


def format_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def _seconds(value) -> str:
    return "-" if value is None else f"{value:.1f} s"


def table(ranked: list[Row], names: list[str]) -> str:
    """The ranked table as fixed-width text."""
    header = ["rank", "trial", *names, "best val", "at epoch", "epochs", "status", "time"]
    lines = [[str(r.rank), str(r.number), *(format_value(r.params.get(n)) for n in names), percent(r.best),
              format_value(r.best_epoch), str(r.epochs), r.status, _seconds(r.seconds)] for r in ranked]
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)]
    text_columns = {len(header) - 2} | set(range(2, 2 + len(names)))  # left-aligned: parameters and status

    def fmt(cells):
        return "  ".join(c.ljust(w) if i in text_columns else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([fmt(header), *(fmt(line) for line in lines)])


def summary(study, ranked: list[Row]) -> str:
    """One line: how far the study is, and what was pruned or re-run."""
    count = counts(study)
    pruned = sum(1 for r in ranked if r.state == "pruned")
    complete = len(ranked) - pruned
    parts = [f"{count['done']} of {target(study)} trials done: {complete} complete, {pruned} pruned"]
    if count["running"]:
        parts.append(f"{count['running']} running")
    if count["interrupted"]:
        parts.append(f"{count['interrupted']} interrupted (failed; their budget went to new trials)")
    epochs = sum(r.epochs for r in ranked)
    parts.append(f"{epochs} epochs trained")
    return "; ".join(parts)


def value_widths(params) -> dict[str, int]:
    """Columns wide enough for any value of each searched setting (4 significant digits for ranges)."""
    return {p.name: max(len(format_value(c)) for c in p.choices) if p.kind == "choice" else 6 for p in params}


def trial_line(row: Row, widths: dict[str, int]) -> str:
    """The line printed as a trial finishes, its settings in aligned columns."""
    settings = "  ".join(f"{n} {format_value(row.params.get(n)):<{w}}" for n, w in widths.items())
    return (f"trial {row.number:3d}  {settings}  {percent(row.best):>7} (epoch {format_value(row.best_epoch)})"
            f"  {row.status}  {_seconds(row.seconds)}")


def to_csv(ranked: list[Row], names: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["rank", "trial", *names, "best_validation_accuracy", "best_epoch", "epochs_run", "state",
                     "stopped", "seconds", "checkpoint", "host"])
    for r in ranked:
        writer.writerow([r.rank, r.number, *(r.params.get(n, "") for n in names),
                         "" if r.best is None else f"{r.best:.6f}", r.best_epoch or "", r.epochs, r.state,
                         r.stopped, "" if r.seconds is None else f"{r.seconds:.2f}", r.checkpoint, r.host])
    return buffer.getvalue()


def write_csv(ranked: list[Row], names: list[str], path: Path) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(to_csv(ranked, names), encoding="utf-8")
    return path
