"""The commands that look at a model: `evaluate` (accuracy), `info` (settings and history),
`report` (pictures and a page), and `gradcheck` (backprop against finite differences)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from digitnet.cli.data import load_data
from digitnet.cli.errors import stops_cleanly, user_errors
from digitnet.cli.options import FiniteFloatRange, data_dir_option, model_option, pick_digit_reader, weights_option
from digitnet.config import DEFAULT_VALIDATION_SIZE, TrainConfig, parse_sizes
from digitnet.settings import settings_of
from digitnet.text import percent, printable


@click.command(short_help="Accuracy and confusion matrix of a model.")
@model_option(positional=True)
@data_dir_option
@click.option("--split", type=click.Choice(["test", "validation"]), default="test", help="Which images to measure on.")
@weights_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@stops_cleanly  # it downloads missing data
@user_errors
def evaluate(model, data_dir, split, weights, as_json):
    """Accuracy, per-digit precision and recall, and the confusion matrix of MODEL.

    The test split needs only the two test files; the validation split the training files.
    """
    from digitnet import checkpoint, metrics

    ckpt = checkpoint.load(model)
    network, used = pick_digit_reader(ckpt, weights, model)
    validation_size = ckpt.metadata.get("hyperparameters", {}).get("validation_size", DEFAULT_VALIDATION_SIZE)
    if split == "validation" and not validation_size:
        raise click.UsageError(f"{model} was trained without a validation split (--validation-size 0): "
                               "use --split test")
    mnist = load_data(data_dir, validation_size if split == "validation" else 0, quiet=as_json,
                      parts=("t10k",) if split == "test" else ("train",))
    report = metrics.evaluate(network, mnist.split(split))
    epoch = ckpt.metadata.get("best_epoch" if used == "best" else "epochs_completed")
    report.update(model=str(model), split=split, weights=weights, weights_used=used, epoch=epoch)
    if as_json:
        click.echo(json.dumps(report))
        return
    click.echo(f"{model} ({_describe_weights(used, epoch, ckpt)}) on the {split} split ({report['total']:,} images): "
               f"accuracy {report['accuracy']:.2%} ({report['correct']:,}/{report['total']:,})\n")
    click.echo("digit  precision  recall  support")
    for row in report["per_class"]:
        fmt = lambda v: "     -" if v is None else f"{v:6.1%}"  # noqa: E731
        click.echo(f"{row['digit']:>5}     {fmt(row['precision'])}  {fmt(row['recall'])}  {row['support']:>7}")
    click.echo("\nconfusion matrix (rows: true digit, columns: predicted)")
    click.echo("true  " + "".join(f"{d:>6}" for d in range(10)))
    for digit, row in enumerate(report["confusion_matrix"]):
        click.echo(f"{digit:>4}  " + "".join(f"{v:>6}" for v in row))


def _describe_weights(used, epoch, ckpt) -> str:
    """Which weights were measured ("best" or "last", from ``ckpt.weights``), in words."""
    if used == "best":
        return f"best validation epoch {epoch}" if epoch else "best validation epoch"
    if epoch:
        return f"last epoch, {epoch}"
    return "its weights" if ckpt.best_network is None else "last epoch"


@click.command(short_help="A model's settings and training history.")
@model_option(positional=True)
@click.option("--json", "as_json", is_flag=True, help="Print the raw metadata as JSON.")
@user_errors
def info(model, as_json):
    """Print a checkpoint's settings (as train options), its run, library versions and per-epoch history."""
    from digitnet import checkpoint

    ckpt = checkpoint.load(model)
    meta = ckpt.metadata
    if as_json:
        click.echo(json.dumps(meta, indent=2))  # ensure_ascii: control characters stay escaped
        return

    def say(line: str) -> None:
        click.echo(printable(line))  # the metadata is the file's: no terminal escapes from it
    output = " with a softmax output layer" if meta["cost"] == "log-likelihood" else ""
    say(f"{model}: {'-'.join(map(str, meta['sizes']))} {meta.get('activation', 'sigmoid')} network{output}, "
               f"{meta['cost']} cost, {meta.get('dtype', 'float32')}")
    specs = settings_of(TrainConfig)
    hyperparameters = meta.get("hyperparameters") or {}
    rows = [(specs[k].option if k in specs else k, specs[k].format(v) if k in specs else str(v))
            for k, v in hyperparameters.items()]
    run = _run_rows(model, meta)
    width = max((len(key) for key, _ in rows + run), default=0)
    for title, block in (("settings (as train options)", rows), ("run", run)):
        if block:
            say(title)
        for key, value in block:
            say(f"  {key:<{width}}  {value}")
    if ckpt.history:
        say("\nepoch  training cost  validation  learning rate  seconds")
        for h in ckpt.history:
            say(f"{h.get('epoch', '?'):>5}  {h.get('training_cost', float('nan')):13.5f}  "
                       f"{percent(h.get('validation_accuracy')):>10}"
                       f"  {h.get('learning_rate', float('nan')):13g}  {h.get('seconds', float('nan')):7.2f}")
    else:
        say("\n(no training history in this checkpoint)")


def _run_rows(model, meta) -> list[tuple[str, str]]:
    """How far the run got, its best epoch and test accuracy, in words; accuracies in percent."""
    rows = [("source", str(meta["source"]))] if meta.get("source") else []  # a textbook JSON network
    done = meta.get("epochs_completed")
    planned = (meta.get("hyperparameters") or {}).get("epochs")
    if done is not None:
        line = f"{done}" + (f" of {planned}" if planned else "")
        if meta.get("stopped"):
            line += f": stopped early ({meta['stopped']})"
        elif planned and done < planned and "state" in meta:
            line += f": interrupted; resume with `digitnet train --resume {model}`"
        rows.append(("epochs completed", line))
    if meta.get("best_epoch"):
        rows.append(("best epoch", f"{meta['best_epoch']} (validation {percent(meta.get('best_validation_accuracy'))})"))
    if meta.get("test_accuracy") is not None:
        last = meta.get("test_accuracy_last_epoch")
        rows.append(("test accuracy", percent(meta["test_accuracy"])
                     + (f" (last epoch {percent(last)})" if last is not None else "")))
    for key, label in (("dataset", "dataset"), ("saved_at", "saved at")):
        if meta.get(key):
            rows.append((label, str(meta[key])))
    if meta.get("versions"):
        rows.append(("versions", ", ".join(f"{k} {v}" for k, v in meta["versions"].items())))
    return rows


@click.command(short_help="Pictures and an HTML page about a model.")
@model_option(positional=True)
@data_dir_option
@click.option("--split", type=click.Choice(["test", "validation"]), default="test",
              help="Images for the confusion matrix and the mistakes.")
@weights_option
@click.option("--out", type=click.Path(), default=None,
              help="Report folder  [default: report-<model name>]; in an existing folder the report "
                   "files are overwritten, other files are left alone.")
@stops_cleanly
@user_errors
def report(model, data_dir, split, weights, out):
    """Write a folder of pictures and one HTML page about MODEL.

    curves.png (cost, validation accuracy and learning rate per epoch),
    confusion.png, mistakes.png (the most confident mistakes), hidden.png
    (the first layer's weights), report.json and index.html (open it in a
    browser; no server needed).
    """
    from digitnet import checkpoint
    from digitnet import report as reporting  # matplotlib: imported only by this command
    from digitnet.atomic import check_folder_writable

    ckpt = checkpoint.load(model)
    pick_digit_reader(ckpt, weights, model)  # the one check of the network's shape: before any data is loaded
    out_dir = Path(out or f"report-{Path(model).stem}")
    try:
        reporting.check_out_dir(out_dir)
        check_folder_writable(out_dir)  # before the pictures are drawn, not after
        validation_size = reporting.validation_size(ckpt.metadata) if split == "validation" else 0
        mnist = load_data(data_dir, validation_size, parts=("t10k",) if split == "test" else ("train",))
        result = reporting.create_report(ckpt, mnist.split(split), out_dir, model_name=str(model),
                                         weights=weights)
    except reporting.ReportError as e:
        raise click.ClickException(str(e)) from None
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    ev = result.evaluation
    click.echo(f"report on {model} ({split} split, accuracy {ev['accuracy']:.2%}) written to {out_dir}{os.sep}")
    for path in result.files:
        click.echo(f"  {path}")


@click.command(short_help="Check backprop against finite differences.")
@click.option("--sizes", default="6,5,4,3", help="Layer sizes of the small random network.")
@click.option("--batch-size", type=click.IntRange(min=1), default=4, help="Examples in the random batch.")
@click.option("--cost", type=click.Choice(["all", "quadratic", "cross-entropy", "log-likelihood"]), default="all",
              help="Which cost's BP1 to check.")
@click.option("--options/--no-options", "with_options", default=True,
              help="Also check each cost with dropout 0.5, with L2 and with L1 (the regularised gradient "
                   "as the optimiser applies it).")
@click.option("--epsilon", type=FiniteFloatRange(min=0, min_open=True), default=1e-3,
              help="Step of the central difference.")
@click.option("--seed", type=click.IntRange(min=0), default=0, help="Seed for the random network and batch.")
@click.option("--mnist", is_flag=True,
              help="Also check a 784-30-10 network (scaled init) on a real MNIST mini-batch, on a sample of weights.")
@click.option("--samples", type=click.IntRange(min=1), default=50, help="With --mnist: entries checked per array.")
@data_dir_option
@stops_cleanly  # with --mnist it downloads missing data
@user_errors
def gradcheck(sizes, batch_size, cost, epsilon, seed, with_options, mnist, samples, data_dir):
    """Compare backprop's gradients (BP1-BP4) with central finite differences, in float64.

    Exits 1 if any parameter array's relative error ||backprop - numeric|| / ||backprop|| exceeds 1e-6.
    """
    import numpy as np

    from digitnet import gradcheck as gc

    try:
        layer_sizes = list(parse_sizes(sizes))
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="'--sizes'") from None
    if len(layer_sizes) < 2:
        raise click.BadParameter("need at least two layer sizes (inputs and outputs)", param_hint="'--sizes'")
    costs = ["quadratic", "cross-entropy", "log-likelihood"] if cost == "all" else [cost]
    variants = [gc.Options()]
    if with_options:
        variants += [gc.Options(dropout=0.5), gc.Options(l2=5.0, n=100), gc.Options(l1=5.0, n=100)]
    problems = []
    for name in costs:
        for options in variants:
            network, x, y = gc.random_problem(layer_sizes, batch_size, name, seed)
            problems.append((f"random {'-'.join(map(str, layer_sizes))}", network, x, y, None, options))
    if mnist:
        training = load_data(data_dir, DEFAULT_VALIDATION_SIZE).training
        for name in costs:
            network, x, y = gc.mnist_problem(training.images, training.labels, name, seed)
            problems.append(("MNIST batch of 10", network, x, y, samples, gc.Options()))
    click.echo(f"{'problem':<20} {'cost, options':<30} {'parameters':<12} {'checked':>8}  relative error")
    failed = False
    for label, network, x, y, max_entries, options in problems:
        for check in gc.check_network(network, x, y, epsilon, max_entries, np.random.default_rng(seed), options):
            failed |= not check.ok
            kind = "weights" if check.parameter == "w" else "biases"
            click.echo(f"{label:<20} {check.cost:<30} {check.parameter}{check.layer} ({kind})".ljust(65)
                       + f"{check.checked:>8}  {check.relative_error:.2e}  {'ok' if check.ok else 'FAIL'}")
    if failed:
        raise click.ClickException(f"some gradients differ from finite differences by more than {gc.TOLERANCE:g}")
    click.echo(f"all gradients agree with finite differences (relative error <= {gc.TOLERANCE:g} for every array)")
