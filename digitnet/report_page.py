"""The report's page: the template report.html filled in with the checkpoint's metadata and the evaluation.

``digitnet.report`` draws the pictures and calls ``render_html`` for index.html.
Everything from the checkpoint is untrusted and escaped here; the settings are
shown as the options of `digitnet train` (``--eta 3``), derived from their
``settings`` declaration, never as the names the file stores them under.
"""

from __future__ import annotations

import json
import math

from digitnet import templates
from digitnet.config import TrainConfig
from digitnet.runs import COST_MEANING
from digitnet.settings import settings_of
from digitnet.text import escape_html, percent


def _recorded_percent(value) -> str:
    """A fraction from the checkpoint's metadata as a percentage; anything else there is shown as it is, escaped."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return percent(value)
    return "—" if value is None else escape_html(value)


def _summary(metadata: dict, seed, evaluation: dict, split_name: str, weights_used: str) -> list[tuple[str, str]]:
    """The summary table's rows: the network, this report's accuracy, what the checkpoint recorded (as HTML)."""
    sizes = metadata.get("sizes")
    sizes_text = "-".join(map(str, sizes)) if isinstance(sizes, list) else sizes
    summary = [
        ("network", escape_html(f"{sizes_text} {metadata.get('activation', 'sigmoid')}, {metadata.get('cost')} "
                                f"cost, {metadata.get('dtype', 'float32')}")),
        (f"accuracy on the {split_name} split (this report)",
         f"{percent(evaluation['accuracy'])} ({evaluation['correct']:,} of {evaluation['total']:,})"),
        ("weights in this report", escape_html(weights_used)),
        ("test accuracy recorded in the checkpoint", _recorded_percent(metadata.get("test_accuracy"))),
        ("best validation accuracy", _recorded_percent(metadata.get("best_validation_accuracy"))),
        ("best epoch", escape_html(metadata.get("best_epoch", "—"))),
        ("epochs completed", escape_html(metadata.get("epochs_completed", "—"))),
        ("seed", escape_html(metadata.get("seed", seed))),
        ("dataset", escape_html(metadata.get("dataset") or "—")),
        ("saved at", escape_html(metadata.get("saved_at") or "—")),
    ]
    if metadata.get("stopped"):
        summary.append(("stopped early", escape_html(metadata["stopped"])))
    return summary


def _captions(split_name: str, mistakes_caption: str, cost_is: str) -> dict[str, str]:
    return {
        "curves.png": f"Training cost ({cost_is}) and validation accuracy per epoch (and the learning rate "
                      "when it changed), from the checkpoint history; the dashed line marks the best "
                      "validation epoch.",
        "confusion.png": f"Confusion matrix on the {split_name} split: rows are the true digit, columns the "
                         "predicted digit; colour is the count on a log scale.",
        "mistakes.png": mistakes_caption,
        "hidden.png": "Incoming weights of the first layer's units as 28×28 images, on one colour scale "
                      "symmetric around 0 (red positive, blue negative). Pixels that are blank in every "
                      "training image get no gradient, so there the weights keep their random initial values.",
    }


def _per_class_rows(per_class: list[dict]) -> str:
    def cell(v):
        return "—" if v is None else f"{v:.1%}"

    return "\n".join(
        f"<tr><th>{r['digit']}</th><td>{cell(r['precision'])}</td><td>{cell(r['recall'])}</td>"
        f"<td>{r['support']:,}</td></tr>" for r in per_class)


def _confusion_rows(matrix: list[list[int]]) -> str:
    """One row per true digit, the diagonal (the correct answers) marked."""
    return "\n".join(
        f"<tr><th>{d}</th>" + "".join(
            f'<td class="diag">{v}</td>' if p == d else f"<td>{v}</td>" for p, v in enumerate(row)) + "</tr>"
        for d, row in enumerate(matrix))


def _record_rows(pairs) -> str:
    """(name, value) pairs from the metadata as table rows, or one row saying none were recorded."""
    return templates.rows((k, escape_html(v)) for k, v in pairs) or "<tr><td>(none recorded)</td></tr>"


def settings_rows(hyper: dict) -> list[tuple[str, str]]:
    """The run's settings as `digitnet train` takes them: (``--eta``, ``3``) for every recorded value,
    from the ``settings`` declaration; a name this digitnet does not know is shown as the file has it."""
    specs = settings_of(TrainConfig)
    rows = []
    for name, value in hyper.items():
        spec = specs.get(name)
        if spec is None:
            rows.append((name, json.dumps(value) if isinstance(value, (list, dict)) else value))
        elif spec.kind is bool and isinstance(value, bool):
            rows.append((spec.option, "yes" if value else "no"))
        else:
            try:
                rows.append((spec.option, spec.format(value)))
            except (ValueError, TypeError, AttributeError):  # a value no digitnet wrote: shown as it is
                rows.append((spec.option, value))
    return rows


def render_html(*, model_name: str, metadata: dict, evaluation: dict, split_name: str, weights_used: str,
                pictures: list[str], notes: list[str], mistakes_caption: str,
                cost_is: str = COST_MEANING["exact"]) -> str:
    """The report page: metadata tables, the pictures (relative links), per-digit numbers.

    ``model_name``, ``metadata`` and ``notes`` may hold anything: all of it is escaped.
    """
    hyper = metadata.get("hyperparameters")
    hyper = hyper if isinstance(hyper, dict) else {}
    versions = metadata.get("versions")
    versions = versions if isinstance(versions, dict) else {}
    return templates.fill(
        "report.html",
        model=escape_html(model_name),
        notes=templates.notes(notes),
        summary=templates.rows(_summary(metadata, hyper.get("seed", "—"), evaluation, split_name, weights_used)),
        settings=_record_rows(settings_rows(hyper)),
        figures=templates.figures(pictures, _captions(split_name, mistakes_caption, cost_is)),
        split=escape_html(split_name),
        per_class=_per_class_rows(evaluation["per_class"]),
        confusion=_confusion_rows(evaluation["confusion_matrix"]),
        versions=_record_rows(versions.items()))
