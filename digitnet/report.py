"""`digitnet report`: a folder of pictures and one HTML page describing a trained model.

Files written into the report folder:

    curves.png     training cost, validation accuracy (and learning rate, when it
                   changed) per epoch, from the checkpoint history; best epoch marked
    confusion.png  the 10x10 confusion matrix as a heat map with counts
    mistakes.png   up to 100 misclassified images, most confident first
    hidden.png     the first layer's incoming weights of up to 100 units as 28x28 images
    report.json    the evaluation (same fields as `digitnet evaluate --json`) and notes
    index.html     one page with the metadata and the pictures (referenced relatively)

matplotlib draws on the Agg canvas, never pyplot (``digitnet.figures``), and the
CLI imports this module inside the `report` command, so the other commands
start without matplotlib.  Every file is written through
``digitnet.atomic.atomic_path``: a failure never leaves a half-written file under
its final name.  Text from the checkpoint is untrusted: it is escaped in the
HTML and never drawn into the pictures (matplotlib would parse ``$...$`` in it).
The page is the template ``digitnet/templates/report.html``, filled in by
``digitnet.report_page``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullLocator

from digitnet.atomic import atomic_path
from digitnet.checkpoint import Checkpoint
from digitnet.config import DEFAULT_VALIDATION_SIZE
from digitnet.data import Split
from digitnet.figures import new_figure, save_figure, tile_figure
from digitnet.network import Network
from digitnet.metrics import CHUNK, NUM_CLASSES, classification_report, confusion_matrix, predicted_digits
from digitnet.report_page import render_html
from digitnet.runs import COST_MEANING

IMAGE_SIDE = 28
MAX_MISTAKES = 100
MAX_UNITS = 100
PICTURES = ("curves.png", "confusion.png", "mistakes.png", "hidden.png")
CONFIDENCE_NOTE = ("confidence = the output activations normalised to sum 1 "
                   "(the sigmoid outputs are not a probability distribution on their own)")


class ReportError(Exception):
    """A model or output folder the report cannot be made for, explained for the user."""


@dataclass
class Analysis:
    """A network's answers on a split: predicted digit and normalised outputs per image."""

    predicted: np.ndarray        # (n,) int64
    confidence: np.ndarray       # (n, 10) output activations normalised to sum 1
    evaluation: dict             # metrics.classification_report of the confusion matrix


@dataclass
class ReportResult:
    out_dir: Path
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    evaluation: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------
# Inputs


def check_out_dir(out_dir: str | Path) -> Path:
    """The report folder: it may exist (its report files are overwritten) but must not be a file."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ReportError(f"{out_dir} exists and is not a folder; choose another --out")
    return out_dir


def validation_size(metadata: dict) -> int:
    """The validation size the model was trained with (its validation split), the default if not recorded."""
    hyper = metadata.get("hyperparameters")
    size = hyper.get("validation_size", DEFAULT_VALIDATION_SIZE) if isinstance(hyper, dict) else DEFAULT_VALIDATION_SIZE
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ReportError(f"the checkpoint's metadata has an invalid validation_size {size!r}")
    return size


def analyse(network: Network, split: Split, chunk: int = CHUNK) -> Analysis:
    """Feed the split through the network in chunks (``metrics.predicted_digits``).

    Predictions are the argmax of the outputs, exactly as in ``digitnet evaluate``,
    so the confusion matrix is the same.
    """
    confidence = np.empty((len(split), NUM_CLASSES), dtype=np.float64)
    predicted = predicted_digits(network, split.images, chunk, confidence=confidence)
    matrix = confusion_matrix(split.labels, predicted)
    return Analysis(predicted, confidence, classification_report(matrix))


def _number(value) -> float:
    """A finite float from untrusted metadata, else NaN."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    value = float(value)
    return value if math.isfinite(value) else math.nan


def history_series(history: list[dict]) -> dict[str, np.ndarray]:
    """The per-epoch numbers of the history as float arrays (NaN where missing or not a number)."""
    epochs = []
    for i, h in enumerate(history):
        epoch = _number(h.get("epoch"))
        epochs.append(epoch if not math.isnan(epoch) else i + 1)
    return {
        "epoch": np.array(epochs, dtype=float),
        "training_cost": np.array([_number(h.get("training_cost")) for h in history], dtype=float),
        "validation_accuracy": np.array([_number(h.get("validation_accuracy")) for h in history], dtype=float),
        "learning_rate": np.array([_number(h.get("learning_rate")) for h in history], dtype=float),
    }


def has_curves(series: dict[str, np.ndarray]) -> bool:
    """Whether the history holds any training cost or validation accuracy to plot."""
    return bool(np.isfinite(series["training_cost"]).any() or np.isfinite(series["validation_accuracy"]).any())


def cost_words(history: list[dict], series: dict[str, np.ndarray]) -> str:
    """What the history's training cost is, in the words `digitnet train` prints (``runs.COST_MEANING``);
    with the epochs of each kind when a resumed run changed --exact-cost.

    A history from before ``cost_source`` was recorded came from an end-of-epoch pass: there was no other way.
    """
    spans: list[list] = []  # [meaning, first epoch, last epoch]
    for h, epoch, cost in zip(history, series["epoch"], series["training_cost"]):
        if not np.isfinite(cost):
            continue
        # Anything else in the file is untrusted text: never drawn (matplotlib parses $...$).
        meaning = COST_MEANING.get(h.get("cost_source", "exact"), "measured in a way this digitnet does not know")
        if spans and spans[-1][0] == meaning:
            spans[-1][2] = epoch
        else:
            spans.append([meaning, epoch, epoch])
    if len(spans) <= 1:
        return spans[0][0] if spans else COST_MEANING["exact"]
    return "; ".join(f"{meaning} (epoch{f' {a:g}' if a == b else f's {a:g}–{b:g}'})" for meaning, a, b in spans)


def best_epoch(metadata: dict, series: dict[str, np.ndarray]) -> int | None:
    """The checkpoint's best epoch if it is one of the history's epochs, else None."""
    best = metadata.get("best_epoch")
    if isinstance(best, int) and not isinstance(best, bool) and best in series["epoch"]:
        return best
    return None


# ---------------------------------------------------------------------------
# Pictures (each returns a matplotlib Figure; save_figure writes it)


def plot_curves(series: dict[str, np.ndarray], best: int | None, cost_is: str = COST_MEANING["exact"]) -> Figure:
    """Training cost, validation accuracy and (when it changed) learning rate per epoch.

    One panel each, sharing the epoch axis; the best epoch is a dashed line
    across all panels and a star on the accuracy curve.  ``cost_is`` says what
    the cost is (``cost_words``), in the cost panel's title.
    """
    epochs = series["epoch"]
    cost = series["training_cost"]
    accuracy = series["validation_accuracy"] * 100
    rates = series["learning_rate"]
    finite_rates = rates[np.isfinite(rates)]
    panels = []
    if np.isfinite(cost).any():
        panels.append("cost")
    if np.isfinite(accuracy).any():
        panels.append("accuracy")
    if len(np.unique(finite_rates)) > 1:
        panels.append("rate")
    if not panels:
        raise ValueError("the history has no training cost or validation accuracy to plot")

    fig = new_figure(8, 1.0 + 2.4 * len(panels), layout="constrained")
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    marker = "o" if len(epochs) <= 40 else None
    for ax, panel in zip(axes, panels):
        if panel == "cost":
            ax.plot(epochs, cost, marker=marker, markersize=3, color="tab:blue")
            ax.set_ylabel("training cost C")
            ax.set_title(f"Training cost: {cost_is} (incl. any L1/L2 term)" if "; " not in cost_is
                         else "Training cost (incl. any L1/L2 term):\n" + cost_is.replace("; ", ";\n"), fontsize=11)
        elif panel == "accuracy":
            ax.plot(epochs, accuracy, marker=marker, markersize=3, color="tab:green")
            ax.set_ylabel("validation accuracy (%)")
            ax.set_title("Validation accuracy", fontsize=11)
            if best is not None:
                k = int(np.flatnonzero(epochs == best)[0])
                if np.isfinite(accuracy[k]):
                    ax.plot([best], [accuracy[k]], marker="*", markersize=14, color="tab:red", zorder=5,
                            linestyle="none", label=f"best epoch {best}: {accuracy[k]:.2f}%")
                    ax.legend(loc="lower right", fontsize=9)
        else:
            ax.step(epochs, rates, where="mid", color="tab:purple", marker=marker, markersize=3)
            ax.set_yscale("log", base=2)
            ax.set_ylabel("learning rate η")
            ax.set_title("Learning rate used in each epoch (reduced on plateaus)", fontsize=11)
            levels = np.unique(finite_rates)
            if len(levels) <= 8:
                ax.set_yticks(levels)
            ax.yaxis.set_major_formatter(lambda v, _pos: f"{v:g}")
            ax.yaxis.set_minor_locator(NullLocator())
            ax.margins(y=0.15)
        if best is not None:
            ax.axvline(best, color="tab:red", linestyle="--", linewidth=1, alpha=0.7)
        ax.grid(True, alpha=0.3)
    axes[-1].set_xlabel("epoch")
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    if len(epochs) == 1:
        axes[-1].set_xlim(epochs[0] - 1, epochs[0] + 1)
    suffix = f"; dashed line: best validation epoch ({best})" if best is not None else ""
    if "accuracy" not in panels:
        suffix += "; no validation accuracy recorded"
    fig.suptitle(f"Training history, {len(epochs)} epoch{'s' if len(epochs) != 1 else ''}{suffix}",
                 fontsize=12)
    return fig


def plot_confusion(matrix: np.ndarray, split_name: str) -> Figure:
    """The 10x10 confusion matrix: rows the true digit, columns the predicted one.

    Colour is the count on a log scale (the diagonal is ~100x the rest, so a
    linear scale would hide every mistake); empty cells stay white.  Every
    non-empty cell also shows its count.
    """
    matrix = np.asarray(matrix)
    total = int(matrix.sum())
    correct = int(np.trace(matrix))
    fig = new_figure(8, 7, layout="constrained")
    ax = fig.subplots()
    cmap = colormaps["Blues"].with_extremes(bad="white")
    vmax = max(int(matrix.max()), 2)
    norm = LogNorm(vmin=0.5, vmax=vmax)   # below 1, so that a count of 1 is visibly tinted
    image = ax.imshow(np.ma.masked_equal(matrix, 0), cmap=cmap, norm=norm)
    for true in range(matrix.shape[0]):
        for pred in range(matrix.shape[1]):
            count = int(matrix[true, pred])
            if count == 0:
                continue
            dark = norm(count) > 0.6
            ax.text(pred, true, f"{count}", ha="center", va="center", fontsize=10,
                    color="white" if dark else "black", fontweight="bold" if true == pred else "normal")
    ax.set_xticks(range(NUM_CLASSES))
    ax.set_yticks(range(NUM_CLASSES))
    ax.set_xlabel("predicted digit", fontsize=11)
    ax.set_ylabel("true digit", fontsize=11)
    ax.tick_params(length=0, labelsize=11)
    ax.set_xticks(np.arange(-0.5, NUM_CLASSES), minor=True)
    ax.set_yticks(np.arange(-0.5, NUM_CLASSES), minor=True)
    ax.grid(which="minor", color="0.85", linewidth=0.8)
    ax.tick_params(which="minor", length=0)
    accuracy = f"{correct / total:.2%}" if total else "n/a"
    ax.set_title(f"Confusion matrix, {split_name} split: {total:,} images, "
                 f"{correct:,} correct ({accuracy})\nrows: true digit, columns: predicted digit",
                 fontsize=12)
    bar = fig.colorbar(image, ax=ax, shrink=0.8)
    bar.set_ticks([t for t in (1, 3, 10, 30, 100, 300, 1000, 3000, 10000, 30000) if t <= vmax])
    bar.ax.minorticks_off()
    bar.ax.yaxis.set_major_formatter(lambda v, _pos: f"{v:,.0f}")
    bar.set_label("images (log scale; empty cells: 0)")
    return fig


def worst_mistakes(labels: np.ndarray, analysis: Analysis, limit: int = MAX_MISTAKES) -> np.ndarray:
    """Indices of the misclassified images, most confident (worst) first, at most ``limit``."""
    wrong = np.flatnonzero(analysis.predicted != labels)
    confidence = analysis.confidence[wrong, analysis.predicted[wrong]]
    order = np.argsort(-confidence, kind="stable")
    return wrong[order[:limit]]


def plot_mistakes(split: Split, analysis: Analysis, limit: int = MAX_MISTAKES) -> Figure:
    """A grid of misclassified images, most confident first, captioned "true → predicted  confidence"."""
    labels = split.labels
    n_wrong = int(np.sum(analysis.predicted != labels))
    shown = worst_mistakes(labels, analysis, limit)
    if len(shown) == 0:
        fig = new_figure(8.4, 1.5)
        fig.text(0.5, 0.5, f"No misclassified images: all {len(labels):,} images of the "
                 f"{split.name} split are classified correctly.", ha="center", va="center", fontsize=12)
        return fig
    tiles = split.images[shown].reshape(-1, IMAGE_SIDE, IMAGE_SIDE).astype(np.float64)
    captions = [f"{int(labels[i])} → {int(analysis.predicted[i])}  "
                f"{_percent_floor(analysis.confidence[i, analysis.predicted[i]])}" for i in shown]
    which = (f"all {n_wrong:,}" if len(shown) == n_wrong
             else f"the {len(shown)} most confident of {n_wrong:,}")
    title = (f"Misclassified {split.name} images: {which} (of {len(labels):,} images)\n"
             f"caption: true digit → predicted digit, confidence;\n{CONFIDENCE_NOTE.split(' (')[0]}")
    return tile_figure(tiles, captions, title, cmap="gray_r", vmin=0, vmax=255, cols=min(10, len(shown)))


def _percent_floor(fraction: float) -> str:
    """A confidence as a percentage rounded down, so 99.97% reads 99.9%, never 100%."""
    return f"{math.floor(fraction * 1000) / 10:.1f}%"


def plot_hidden(network: Network, limit: int = MAX_UNITS) -> Figure:
    """The first layer's incoming weights of up to ``limit`` units, each as a 28x28 image.

    One diverging colour scale, symmetric around 0 and shared by all units
    (red: positive weight, blue: negative), clipped at the 99th percentile
    of |w| so that a few large weights do not wash out the rest.
    """
    weights = np.asarray(network.weights[0], dtype=np.float64)
    n_units = weights.shape[0]
    shown = weights[:limit]
    bound = float(np.percentile(np.abs(shown), 99)) or float(np.abs(shown).max()) or 1.0
    hidden = network.sizes[1:-1]
    if not hidden:
        layer = "Output layer (the network has no hidden layer)"
    elif len(hidden) == 1:
        layer = "Hidden layer"
    else:
        layer = f"First of {len(hidden)} hidden layers ({'-'.join(map(str, hidden))})"
    if n_units == 1:
        count = "its only unit"
    elif len(shown) == n_units:
        count = f"all {n_units} units"
    else:
        count = f"the first {len(shown)} of {n_units} units"
    title = (f"{layer}: incoming weights from the 28×28 pixels, {count}\n"
             "red: positive weight (ink there excites the unit), blue: negative (inhibits)")
    return tile_figure(shown.reshape(-1, IMAGE_SIDE, IMAGE_SIDE), [f"unit {k}" for k in range(len(shown))],
                        title, cmap="RdBu_r", vmin=-bound, vmax=bound, caption_size=9,
                        cols=min(10, max(1, math.ceil(math.sqrt(len(shown))))),
                        colorbar_label=f"weight, clipped at ±{bound:.2g}\n(the 99th percentile of |w|)")


def write_text(path: Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------
# The whole report


def create_report(ckpt: Checkpoint, split: Split, out_dir: str | Path, *, model_name: str,
                  weights: str = "best") -> ReportResult:
    """Evaluate ``ckpt`` on ``split`` and write the pictures, report.json and index.html into out_dir.

    ``weights`` is "best" (the best validation epoch's weights, when the
    checkpoint has them) or "last".  Existing report files in out_dir are
    replaced; other files there are left alone.  A checkpoint without history
    gets a report without curves.png, and a note saying so.
    """
    out_dir = check_out_dir(out_dir)
    if len(split) == 0:
        raise ReportError(f"the {split.name} split is empty for this model (validation size 0)")
    notes: list[str] = []
    metadata = ckpt.metadata
    network, used = ckpt.weights(weights)
    if used == "best":
        epoch = metadata.get("best_epoch")
        weights_used = f"best validation epoch ({epoch})" if epoch else "best validation epoch"
    else:
        if weights == "best":
            notes.append("the checkpoint has no best-epoch weights; the report uses the last epoch's")
        epoch = metadata.get("epochs_completed")
        weights_used = f"last epoch ({epoch})" if epoch else "last epoch"

    analysis = analyse(network, split)
    series = history_series(ckpt.history)
    best = best_epoch(metadata, series)
    cost_is = cost_words(ckpt.history, series)
    n_wrong = int(analysis.evaluation["total"] - analysis.evaluation["correct"])
    n_shown = min(n_wrong, MAX_MISTAKES)

    figures = {}
    if has_curves(series):
        figures["curves.png"] = plot_curves(series, best, cost_is)
    elif not len(series["epoch"]):
        notes.append("the checkpoint has no training history, so there is no curves.png")
    else:
        notes.append("the checkpoint's training history holds no numbers to plot, so there is no curves.png")
    figures["confusion.png"] = plot_confusion(np.array(analysis.evaluation["confusion_matrix"]), split.name)
    figures["mistakes.png"] = plot_mistakes(split, analysis)
    figures["hidden.png"] = plot_hidden(network)

    out_dir.mkdir(parents=True, exist_ok=True)
    result = ReportResult(out_dir, notes=notes, evaluation=analysis.evaluation)
    for name, fig in figures.items():
        result.files.append(save_figure(fig, out_dir / name))
    stale = out_dir / "curves.png"
    if "curves.png" not in figures and stale.is_file():
        stale.unlink()
        notes.append(f"removed the curves.png of an earlier report in {out_dir}")

    mistakes_caption = (f"Misclassified images, most confident first: {n_shown} shown of {n_wrong:,}. "
                        f"Caption: true digit → predicted digit, confidence; {CONFIDENCE_NOTE}.")
    summary = dict(analysis.evaluation, model=model_name, split=split.name, weights=weights,
                   weights_used=weights_used, mistakes_shown=n_shown, confidence=CONFIDENCE_NOTE,
                   training_cost=cost_is,
                   files=[p.name for p in result.files] + ["report.json", "index.html"], notes=notes)
    result.files.append(write_text(out_dir / "report.json", json.dumps(summary, indent=2) + "\n"))
    page = render_html(model_name=model_name, metadata=metadata, evaluation=analysis.evaluation,
                       split_name=split.name, weights_used=weights_used,
                       pictures=[name for name in PICTURES if name in figures], notes=notes,
                       mistakes_caption=mistakes_caption, cost_is=cost_is)
    result.files.append(write_text(out_dir / "index.html", page))
    return result
