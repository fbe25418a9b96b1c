"""The sweep's page: four pictures and index.html (the template digitnet/templates/sweep.html, filled in).

    history.png     each trial's best validation accuracy in the order trials were started,
                    with the best so far as a line: is the search still improving?
    params.png      best validation accuracy against each searched setting: where is it good?
    curves.png      every trial's validation accuracy per epoch, pruned trials faded:
                    what the pruner saw when it stopped them
    importance.png  how much of the variation in accuracy each setting explains beyond the
                    others (digitnet.sweep.importance), once there are enough complete trials;
                    before, the page says so in words

matplotlib draws with the Agg canvas, never pyplot (digitnet.figures, as in digitnet.report).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullFormatter

from digitnet import templates
from digitnet.figures import new_figure, save_figure
from digitnet.report import write_text
from digitnet.sweep import importance
from digitnet.sweep.results import Row, best_row, format_value
from digitnet.sweep.space import Param
from digitnet.text import escape_html, percent

COMPLETE_COLOUR = "tab:blue"
PRUNED_COLOUR = "0.6"
BEST_COLOUR = "tab:red"
CAPTIONS = {
    "history.png": "Best validation accuracy of each trial, in the order the trials started (pruned trials "
                   "faded); the line is the best complete trial so far.",
    "params.png": "Best validation accuracy against each searched setting (pruned trials faded; "
                  "lists are spread sideways a little so that points do not hide each other).",
    "curves.png": "Validation accuracy per epoch of every trial: pruned trials faded, the best trial in red.",
    "importance.png": "How much of the variation in best validation accuracy among the complete trials each "
                      "setting explains beyond the other searched settings: an analysis of variance of the "
                      "trials (a range split into three groups of as many trials), less what chance alone "
                      "would explain; the grey bar is what they explain together without telling which. The rest "
                      "is the trials' noise. Pruned trials are left out, so a setting the pruner already decided can show "
                      "little importance.",
}


def _figure(width: float, height: float, left: float = 0.8) -> Figure:
    """A figure with fixed margins (in inches): a layout engine would draw every figure twice, and the
    pictures are written at the end of every sweep run."""
    fig = new_figure(width, height)
    fig.subplots_adjust(left=left / width, right=1 - 0.25 / width, bottom=0.6 / height, top=1 - 0.4 / height,
                        wspace=0.3, hspace=0.35)
    return fig


def _floor(ranked: list[Row]) -> float:
    """The accuracy axis's lower end (in %): low enough for most trials, not for the hopeless ones,
    whose 10% would squash the differences that matter into a sliver."""
    values = np.array([r.best * 100 for r in ranked if r.best is not None])
    if not len(values):
        return 0.0
    return float(max(0.0, min(np.percentile(values, 20), values.max() - 2) - 2))


def _clipped(values: np.ndarray, floor: float) -> np.ndarray:
    return np.maximum(values, floor)


def _accuracy_axis(ax, floor: float) -> None:
    """From just below the floor (points clipped to it stay whole) to just above 100% or the best."""
    top = ax.get_ylim()[1]
    ax.set_ylim(floor - 0.03 * (top - floor), top)


def plot_history(ranked: list[Row]) -> Figure:
    fig = _figure(8, 4)
    ax = fig.subplots()
    floor = _floor(ranked)
    by_number = sorted((r for r in ranked if r.best is not None), key=lambda r: r.number)
    for state, colour, alpha, label in (("complete", COMPLETE_COLOUR, 1.0, "complete"),
                                        ("pruned", PRUNED_COLOUR, 0.6, "pruned")):
        chosen = [r for r in by_number if r.state == state]
        if chosen:
            ax.scatter([r.number for r in chosen], _clipped(np.array([r.best * 100 for r in chosen]), floor),
                       color=colour, alpha=alpha, s=30, label=label, zorder=3)
    complete = [r for r in by_number if r.state == "complete"]
    if complete:
        best_so_far = np.maximum.accumulate([r.best * 100 for r in complete])
        ax.step([r.number for r in complete], best_so_far, where="post", color=BEST_COLOUR, label="best so far")
    _finish(ax, floor, "trial", "best validation accuracy (%)",
            f"Optimisation history (points below {floor:.0f}% drawn on the axis)")
    return fig


def plot_params(ranked: list[Row], params: list[Param]) -> Figure:
    columns = min(2, len(params))
    rows = math.ceil(len(params) / columns)
    fig = _figure(4.2 * columns, 0.4 + 3.2 * rows)
    axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False).ravel())
    floor = _floor(ranked)
    rng = np.random.default_rng(0)
    for ax, param in zip(axes, params):
        shown = [r for r in ranked if r.best is not None and param.name in r.params]
        if param.kind == "choice":
            positions = {value: i for i, value in enumerate(param.choices)}
            x = np.array([positions.get(r.params[param.name], -1) for r in shown], dtype=float)
            x += rng.uniform(-0.12, 0.12, len(x))
            ax.set_xticks(range(len(param.choices)), [format_value(c) for c in param.choices])
            ax.set_xlim(-0.5, len(param.choices) - 0.5)
        else:
            x = np.array([r.params[param.name] for r in shown], dtype=float)
            if param.log:
                ax.set_xscale("log")
                ax.xaxis.set_major_formatter(lambda v, _pos: f"{v:g}")
                ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlim(param.low, param.high)
        y = _clipped(np.array([r.best * 100 for r in shown]), floor)
        pruned = np.array([r.state == "pruned" for r in shown], dtype=bool)
        if len(shown):
            ax.scatter(x[~pruned], y[~pruned], color=COMPLETE_COLOUR, s=25, zorder=3, label="complete")
            ax.scatter(x[pruned], y[pruned], color=PRUNED_COLOUR, alpha=0.6, s=25, zorder=2, label="pruned")
        _accuracy_axis(ax, floor)
        ax.set_xlabel(param.name + (" (log scale)" if param.log else ""))
        ax.set_ylabel("best val. accuracy (%)")
        ax.grid(True, alpha=0.3)
    for ax in axes[len(params):]:
        ax.set_visible(False)
    return fig


def plot_curves(ranked: list[Row], best: Row | None) -> Figure:
    fig = _figure(8, 4.5)
    ax = fig.subplots()
    floor = _floor(ranked)
    for row in sorted(ranked, key=lambda r: r.state == "complete"):  # complete curves on top
        if not row.curve:
            continue
        epochs = [e for e, _ in row.curve]
        accuracy = _clipped(np.array([a * 100 for _, a in row.curve], dtype=float), floor)
        if row.state == "pruned":
            ax.plot(epochs, accuracy, color=PRUNED_COLOUR, alpha=0.45, linewidth=1)
            ax.plot(epochs[-1:], accuracy[-1:], marker="x", color=PRUNED_COLOUR, alpha=0.8, linestyle="none")
        else:
            ax.plot(epochs, accuracy, color=COMPLETE_COLOUR, alpha=0.8, linewidth=1.2)
    if best is not None:
        ax.plot([e for e, _ in best.curve], [a * 100 for _, a in best.curve], color=BEST_COLOUR, linewidth=2.2,
                label=f"best: trial {best.number}")
    drawn = {row.state for row in ranked if row.curve}
    if "complete" in drawn:
        ax.plot([], [], color=COMPLETE_COLOUR, label="complete")
    if "pruned" in drawn:  # the legend lists only the kinds of trial there are
        ax.plot([], [], color=PRUNED_COLOUR, marker="x", label="pruned (x: where it stopped)")
    _finish(ax, floor, "epoch", "validation accuracy (%)", "Learning curves of all trials")
    return fig


def _finish(ax, floor: float, xlabel: str, ylabel: str, title: str) -> None:
    """Labels, the accuracy axis, whole-number ticks, grid, legend and title of a per-trial or per-epoch plot."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    _accuracy_axis(ax, floor)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=9)
    ax.set_title(title, fontsize=11)


def plot_importance(values: dict[str, float], trials: int) -> Figure:
    """A bar per setting (``importance.importances``), and a grey one for the part they explain together."""
    fig = _figure(8, 1.2 + 0.5 * len(values), left=0.3 + 0.08 * max(len(name) for name in values))
    ax = fig.subplots()
    names = list(values)[::-1]
    ax.barh(names, [values[n] for n in names],
            color=[PRUNED_COLOUR if n == importance.SHARED else COMPLETE_COLOUR for n in names])
    for y, name in enumerate(names):
        ax.text(values[name], y, f" {values[name]:.2f}", va="center", fontsize=9)
    ax.set_xlim(0, min(1.0, max(values.values()) * 1.15))
    ax.set_xlabel("share of the variation in best validation accuracy it explains beyond the others")
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_title(f"Parameter importances, from {trials} complete trials", fontsize=11)
    return fig


# ---------------------------------------------------------------------------
# The page


def render(*, study_name: str, summary: list[tuple[str, str]], ranked: list[Row], names: list[str],
           pictures: list[str], notes: list[str], evaluate: str) -> str:
    """index.html from the template; every value from the study is escaped."""
    best = best_row(ranked)
    head = ["rank", "trial", *names, "best val", "at epoch", "epochs", "status", "time (s)"]
    lines = ["<tr>" + "".join(f"<th>{escape_html(h)}</th>" for h in head) + "</tr>"]
    for r in ranked:
        css = "best" if r is best else r.state
        cells = [str(r.rank), str(r.number), *(format_value(r.params.get(n)) for n in names),
                 percent(r.best, missing="—"),
                 format_value(r.best_epoch), str(r.epochs), r.status,
                 "—" if r.seconds is None else f"{r.seconds:.1f}"]
        numeric = {0, 1, len(cells) - 1, len(cells) - 3, len(cells) - 4, len(cells) - 5}
        lines.append(f'<tr class="{css}">' + "".join(
            f'<td class="number">{escape_html(c)}</td>' if i in numeric else f"<td>{escape_html(c)}</td>"
            for i, c in enumerate(cells)) + "</tr>")
    return templates.fill(
        "sweep.html",
        study=escape_html(study_name),
        notes=templates.notes(notes),
        summary=templates.rows((k, escape_html(v)) for k, v in summary),
        figures=templates.figures(pictures, CAPTIONS) or "<p>(no finished trials yet)</p>",
        trials="\n".join(lines),
        evaluate=escape_html(evaluate))


def write_page(study, ranked: list[Row], params: list[Param], out_dir: Path, *, study_name: str,
               summary: list[tuple[str, str]], evaluate: str) -> list[Path]:
    """The pictures and index.html in out_dir; returns the files written.  Everything drawn comes from
    ``ranked`` (``results.rows(study)``): ``study`` itself is no longer read."""
    notes, figures = [], {}
    if any(r.best is not None for r in ranked):
        best = best_row(ranked)
        figures["history.png"] = plot_history(ranked)
        if params:
            figures["params.png"] = plot_params(ranked, params)
        figures["curves.png"] = plot_curves(ranked, best)
        if len(params) > 1:
            values, notes = importance.importances(ranked, params)
            if values:
                figures["importance.png"] = plot_importance(values, sum(r.state == "complete" for r in ranked))
    written = [save_figure(fig, out_dir / name) for name, fig in figures.items()]
    for name in CAPTIONS:  # a picture from an earlier, larger state of the study would mislead
        if name not in figures and (out_dir / name).is_file():
            (out_dir / name).unlink()
    page = render(study_name=study_name, summary=summary, ranked=ranked, names=[p.name for p in params],
                  pictures=list(figures), notes=notes, evaluate=evaluate)
    written.append(write_text(out_dir / "index.html", page))
    return written
