"""The `digitnet` command: parse, call the library, print.  No math here.

Heavy modules are imported inside the commands that need them, so that
`digitnet predict` and `digitnet --help` start fast.
"""

from __future__ import annotations

import errno
import functools
import io
import json
import math
import os
import re
import shlex
import sys
from pathlib import Path

import click
from click.core import ParameterSource

from digitnet import __version__

CONTEXT = {"help_option_names": ["-h", "--help"], "show_default": True, "max_content_width": 100}


def user_errors(command):
    """Turn the library's user-facing exceptions into one clean message and exit 1 (a file or data problem)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from digitnet.atomic import WriteError
        from digitnet.checkpoint import CheckpointError
        from digitnet.data import DataError
        from digitnet.runs import ResumeError, RunError

        try:
            return command(*args, **kwargs)
        except (DataError, CheckpointError, ResumeError, RunError, WriteError) as e:
            raise click.ClickException(str(e)) from None
        except MemoryError:
            raise click.ClickException("out of memory") from None
        except OSError as e:
            if e.errno == errno.EPIPE:  # the reader of our output has gone: see _Main
                raise
            where = f" {_users_path(e.filename)}" if e.filename else ""
            raise click.ClickException(f"cannot access{where}: {e.strerror or e}") from None

    return wrapper


def _users_path(filename) -> str:
    """The path the user named, not the hidden temporary file an atomic write was using beside it
    (atomic_path's ``.NAME.XXXX.part``)."""
    path = Path(os.fsdecode(filename))
    match = re.fullmatch(r"\.(.+)\.[^.]+\.part", path.name)
    return str(path.with_name(match.group(1)) if match else path)


def stops_cleanly(command):
    """SIGTERM and SIGHUP stop a command that writes as Ctrl-C does (see digitnet.signals):
    what was half-written is removed, and it exits with 128 + the signal number.
    The command may catch the interrupt itself to say more (train, download)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from digitnet import signals

        try:
            with signals.stop_requests():
                return command(*args, **kwargs)
        except KeyboardInterrupt as e:
            signum = signals.signal_number(e)
            click.echo(f"\ninterrupted ({signals.describe(signum)}): stopped before finishing; "
                       "no half-written file was left", err=True)
            sys.exit(128 + signum)

    return wrapper


class FiniteFloatRange(click.FloatRange):
    """A FloatRange that also refuses nan and inf, which pass its comparisons (nan > 0 is False,
    so nan is never below the minimum) and would reach the library as a number."""

    def convert(self, value, param, ctx):
        value = super().convert(value, param, ctx)
        if not math.isfinite(value):
            self.fail(f"{value} is not a finite number.", param, ctx)
        return value


class WebURL(click.ParamType):
    """An http:// or https:// address: anything else is a typing mistake (exit 2), not a mirror that failed."""

    name = "URL"

    def convert(self, value, param, ctx):
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 -- raises ValueError for a port out of range
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname \
                or any(c.isspace() for c in value):
            self.fail(f"{value!r} is not a web address (e.g. https://example.org/mnist/).", param, ctx)
        return value


def data_dir_option(command):
    return click.option("--data-dir", type=click.Path(file_okay=False), default=None,
                        help="Folder with the MNIST files [default: $DIGITNET_DATA_DIR, else ./data]")(command)


DEFAULT_MODEL = "model.npz"


def model_option(positional: bool, optional: bool = False):
    """The one rule for naming a model: ``-m/--model PATH`` in every command that reads one
    (default model.npz); where it reads naturally (evaluate, info, report) it may also be
    the first argument.  The command receives ``model``: the path, checked to exist (with
    ``optional``, None when the default model.npz is missing: `serve` then starts without one)."""

    def decorate(command):
        @functools.wraps(command)
        def wrapper(*args, model_argument=None, **kwargs):
            model = kwargs.pop("model")
            if model_argument is not None and model is not None and model_argument != model:
                raise click.UsageError(f"two models named: {model_argument} and --model {model}; give one")
            model = model_argument or model or DEFAULT_MODEL
            if optional and model == DEFAULT_MODEL and not Path(model).exists():
                return command(*args, model=None, **kwargs)
            if not Path(model).exists():
                hint = ("; train one with `digitnet train`, or name another with -m/--model PATH"
                        if model == DEFAULT_MODEL else "")
                raise click.ClickException(f"{model}: no such file{hint}")
            return command(*args, model=model, **kwargs)

        where = "; or give it as MODEL, the first argument" if positional else ""
        wrapper = click.option("-m", "--model", type=click.Path(), default=None, show_default=False,
                               help=f"Model (checkpoint) to use{where}.  [default: {DEFAULT_MODEL}]")(wrapper)
        if positional:
            wrapper = click.argument("model_argument", metavar="[MODEL]", required=False, type=click.Path())(wrapper)
        return wrapper

    return decorate


class _ReaderGone(Exception):
    """Whoever read our standard output has closed it (``digitnet evaluate | head -1``)."""


class _ReaderTolerantStdout:
    """sys.stdout that survives its reader leaving (EPIPE, as when ``head`` has seen enough).

    The first failed write points file descriptor 1 at /dev/null, so neither
    later writes nor Python's flush at exit complain; then it raises
    ``_ReaderGone`` (the command stops quietly, exit 0) unless ``keep_going`` is
    set: ``train`` goes on to the end of its run, saving every epoch as usual,
    its output dropped, because the checkpoint, not the text, is what it makes.
    """

    keep_going = False

    def __init__(self, stream):
        self._stream = stream
        self.reader_gone = False

    def write(self, text):
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            return self._gone(len(text))

    def flush(self):
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._gone(None)

    def _gone(self, result):
        if not self.reader_gone:
            self.reader_gone = True
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, self._stream.fileno())
                os.close(devnull)
            except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
                pass
        if not self.keep_going:
            raise _ReaderGone
        return result

    def __getattr__(self, name):
        return getattr(self._stream, name)


class _Main(click.Group):
    """The `digitnet` group: the reader of standard output may leave early (see _ReaderTolerantStdout)."""

    def main(self, *args, **kwargs):
        stdout = sys.stdout
        sys.stdout = _ReaderTolerantStdout(stdout)
        try:
            return super().main(*args, **kwargs)
        except _ReaderGone:
            sys.exit(0)
        finally:
            sys.stdout = stdout

    def invoke(self, ctx):
        # Commands that only read (evaluate, predict, info, gradcheck) still owe Ctrl-C the documented
        # status 130; click itself would print "Aborted!" and exit 1.  Writers say more (stops_cleanly).
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo("\ninterrupted (Ctrl-C)", err=True)
            sys.exit(130)


def _keep_going_without_reader():
    """For `train`: a closed standard output drops the output but does not stop the run."""
    if isinstance(sys.stdout, _ReaderTolerantStdout):
        sys.stdout.keep_going = True


@click.group(cls=_Main, context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="digitnet")
def main():
    """Train, evaluate and use an MNIST digit recogniser: a sigmoid network
    trained by backpropagation (BP1-BP4) and mini-batch SGD.

    A model is named by -m/--model PATH (default model.npz) in every command
    that reads one.  Exit status: 0 done, 1 a problem with a file or the data,
    2 a mistake on the command line, 130/143/129 interrupted (Ctrl-C / SIGTERM / SIGHUP).
    """


# ---------------------------------------------------------------------------
# download


@main.command(short_help="Fetch and verify the four MNIST files.")
@data_dir_option
@click.option("--mirror", "mirrors", multiple=True, type=WebURL(),
              help="Base URL to fetch from; repeat for several, tried in order. Replaces the built-in list.")
@click.option("--checksums", type=click.Path(exists=True, dir_okay=False), default=None,
              help="sha256sum-format file replacing the official checksums (for private mirrors).")
@click.option("--from", "source", type=click.Path(exists=True, file_okay=False), default=None,
              help="Import the four files from a local folder instead of downloading.")
@click.option("--force", is_flag=True, help="Fetch (or import) again even if the files are present.")
@click.option("--timeout", type=FiniteFloatRange(min=0, min_open=True), default=15.0, metavar="SECONDS",
              help="Give up on a mirror that takes longer than this to connect or then sends nothing for "
                   "this long; it is tried last for the remaining files.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@stops_cleanly
@user_errors
def download(data_dir, mirrors, checksums, source, force, timeout, quiet):
    """Fetch the four MNIST files into the data folder, verifying their SHA-256."""
    from digitnet import data

    table = data.read_checksums(checksums) if checksums else None
    directory = data.resolve_data_dir(data_dir)
    try:
        if source:
            reports = data.import_files(source, directory, checksums=table, force=force)
        else:
            reports = data.download(directory, mirrors=mirrors or data.DEFAULT_MIRRORS, checksums=table,
                                    force=force, progress=not quiet, timeout=timeout)
    except KeyboardInterrupt as e:
        from digitnet.signals import describe, signal_number

        again = " ".join(["digitnet download", *(f"--mirror {shlex.quote(m)}" for m in mirrors),
                          *([f"--checksums {shlex.quote(checksums)}"] if checksums else []),
                          *([f"--from {shlex.quote(source)}"] if source else []),
                          *([f"--data-dir {shlex.quote(data_dir)}"] if data_dir else []),
                          *([f"--timeout {timeout:g}"] if timeout != 15.0 else [])])
        click.echo(f"\ninterrupted ({describe(signal_number(e))}): the files completed so far are kept in "
                   f"{directory}, no partial file is left; fetch the rest with `{again}`", err=True)
        sys.exit(128 + signal_number(e))
    for r in reports:
        for failure in r.failures:
            click.echo(f"note: {failure}", err=True)
        if r.action == "present":
            line = f"{r.name}: already present"
        elif r.action == "downloaded":
            line = f"{r.name}: downloaded from {r.source}, checksum verified"
        else:
            table_name = f"the checksum in {checksums}" if checksums else "the official checksum"
            verdict = {True: f"matches {table_name}",
                       False: f"does NOT match {table_name} (valid IDX, imported anyway)",
                       None: "decompressed copy (checksum not comparable)"}[r.official]
            line = f"{r.name}: imported from {r.source}; {verdict}"
        click.echo(line)
    click.echo(f"MNIST is ready in {directory}")


def _load_data(data_dir, validation_size, quiet=False, parts=("train", "t10k")):
    """The MNIST splits, downloading only the files ``parts`` needs (the test split needs no training file)."""
    from digitnet import data

    fetched = data.ensure_data(data_dir, names=data.part_files(parts), progress=not quiet)
    if fetched and not quiet:
        click.echo(f"downloaded {len(fetched)} MNIST file(s) into {data.resolve_data_dir(data_dir)}", err=True)
    return data.load_mnist(data_dir, validation_size, parts=parts)


# ---------------------------------------------------------------------------
# train


class _SettingText(click.ParamType):
    """A setting whose text is parsed by its own ``parse`` (e.g. ``--hidden 100,30``)."""

    def __init__(self, spec):
        self.spec = spec
        self.name = spec.metavar or "TEXT"

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value
        try:
            return self.spec.from_text(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)


def _setting_option(name, spec, default):
    """The click option for one TrainConfig setting, derived from its ``Setting``: type, range
    (shown in help), choices, metavar, help and default all come from the one declaration."""
    details = dict(help=spec.help, default=default, show_default=True, metavar=spec.metavar)
    if spec.kind is bool:
        details.update(is_flag=True)
    elif spec.parse is not None or spec.kind is tuple:
        # The default goes through the same parser as typed text, and shows as the user would type it.
        details.update(type=_SettingText(spec), multiple=spec.kind is tuple,
                       default=[spec.format(default)] if spec.kind is tuple else spec.format(default))
    elif spec.choices:
        details.update(type=click.Choice(spec.choices))
    elif spec.kind in (int, float):
        kind = click.IntRange if spec.kind is int else click.FloatRange
        details.update(type=kind(spec.min, spec.max, min_open=spec.min_open, max_open=spec.max_open)
                       if spec.min is not None or spec.max is not None else spec.kind)
    return click.Option([spec.option, name], **details)


class _TrainCommand(click.Command):
    """`train`, whose setting options are derived from TrainConfig when first needed: importing
    digitnet.training (numpy) at start-up would slow `digitnet --help` and every other command."""

    _settings_added = False

    def get_params(self, ctx):
        if not self._settings_added:
            from digitnet.settings import default_of, settings_of
            from digitnet.training import TrainConfig

            self.params[:0] = [_setting_option(name, spec, default_of(TrainConfig, name))
                               for name, spec in settings_of(TrainConfig).items()]
            self._settings_added = True
        return super().get_params(ctx)


def _settings(ctx, settings: dict) -> tuple[dict, dict]:
    """All settings (repeated list options joined: --hidden 100 --hidden 30 == --hidden 100,30),
    and those the user typed, which a resumed run must not change."""
    values = {}
    for name, value in settings.items():
        if isinstance(value, tuple) and value and isinstance(value[0], tuple):
            value = tuple(v for part in value for v in part)
        values[name] = value
    typed = {name: value for name, value in values.items()
             if ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)}
    return values, typed


@main.command(cls=_TrainCommand, short_help="Train a network by mini-batch SGD, saving every epoch.")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Checkpoint to write after every epoch  [default: model.npz, or the --resume file]")
@click.option("--resume", type=click.Path(dir_okay=False), default=None,
              help="Continue this checkpoint from its last complete epoch, to its planned total or --epochs.")
@click.option("--force", is_flag=True, help="Overwrite --out if it already exists.")
@data_dir_option
@click.option("--quiet", "-q", is_flag=True, help="Only the final result; no progress bar or epoch lines.")
@click.option("--progress", type=click.Choice(["bar", "json"]), default="bar", show_default=True,
              help="json: instead of the bar and epoch lines, one JSON object per line on stdout "
                   "(start, progress within an epoch, each epoch, end), for other programs.")
@click.pass_context
@stops_cleanly
@user_errors
def train(ctx, out, resume, force, data_dir, quiet, progress, **settings):
    """Train a 784-hidden-10 sigmoid network by mini-batch SGD, saving a checkpoint every epoch.

    The defaults are the textbook's first network (784-30-10, quadratic cost,
    N(0,1) weights, eta 3.0, batch 10, 30 epochs).
    """
    from digitnet import data, runs, training

    _keep_going_without_reader()
    values, given = _settings(ctx, settings)
    config = training.TrainConfig(**values)
    problems = config.problems()
    if problems:
        raise click.UsageError("; ".join(problems))
    try:
        plan = runs.prepare(config, out, lambda: _load_data(data_dir, 0, quiet), resume_from=resume,
                            force=force, requested=given)
    except (runs.SettingsError, runs.ResumeConflict) as e:  # mistakes on the command line: exit 2
        raise click.UsageError(str(e)) from None
    if progress == "json":
        from digitnet.progress import JsonProgress

        output = JsonProgress(plan)
        result = runs.run(plan.trainer, plan.out, resumed_from=plan.resumed_from,
                          dataset=str(data.resolve_data_dir(data_dir)),
                          on_epoch=output.epoch_done, on_progress=output.progress)
        output.end(result)
        sys.exit(result.exit_code)
    with _TrainOutput(plan, quiet) as output:
        result = runs.run(plan.trainer, plan.out, resumed_from=plan.resumed_from,
                          dataset=str(data.resolve_data_dir(data_dir)),
                          on_epoch=output.epoch_done, on_progress=output.progress)
    _print_result(result, quiet)


def _print_result(result, quiet):
    """The last words of `train`: the test accuracy, or why the run ended early and how to go on."""
    if result.outcome == "interrupted":
        import signal

        from digitnet.signals import describe

        why = f"interrupted ({describe(result.signal or signal.SIGINT)})"
        if result.resume_from:
            click.echo(f"\n{why}: the last complete epoch ({result.saved_epoch}) is saved in "
                       f"{result.resume_from}; continue with `{result.resume_command}`", err=True)
        else:
            click.echo(f"\n{why} before the first epoch finished: nothing was saved", err=True)
        sys.exit(result.exit_code)
    if result.outcome == "diverged":
        kept = f"the last good epoch is kept in {result.resume_from}" if result.resume_from else "nothing was saved"
        raise click.ClickException(f"{result.error}; {kept}. Try a smaller --eta (it was {result.learning_rate:g}).")
    if result.outcome == "write_failed":
        kept = (f"the last complete epoch ({result.saved_epoch}) is kept in {result.resume_from}"
                if result.resume_from else "nothing was saved")
        raise click.ClickException(f"{result.error}; {kept}")
    if result.stopped and not quiet:
        click.echo(result.stopped)
    which = (f"best validation epoch {result.best_epoch} of {result.epochs_completed}" if result.tested_best
             else f"epoch {result.epochs_completed}")
    click.echo(f"test accuracy {result.test_accuracy:.2%} ({which}; last epoch "
               f"{result.test_accuracy_last_epoch:.2%}); saved {result.out}")


class _TrainOutput:
    """What `train` shows while it runs: the settings, a bar over each epoch's mini-batches
    (hidden when not a terminal) and one line per epoch."""

    def __init__(self, plan, quiet):
        self.config, self.quiet, self.bar, self.epoch = plan.trainer.config, quiet, None, 0
        if not quiet:
            trainer, config = plan.trainer, plan.trainer.config
            start = (f", resuming after epoch {trainer.state.epochs_completed}" if plan.resumed_from else "")
            click.echo(f"training {'-'.join(map(str, trainer.network.sizes))} ({config.cost} cost, {config.init} "
                       f"init, eta {config.learning_rate:g}, batch {config.batch_size}, seed {config.seed}) on "
                       f"{len(trainer.data.training):,} images{start}; checkpoint: {plan.out}")
            click.echo("cost: " + ("the training set's, from a pass at the end of each epoch" if config.exact_cost
                                   else "mean over the epoch's mini-batches, as SGD saw them (--exact-cost for "
                                        "an end-of-epoch pass)"))

    def progress(self, epoch, images, total):
        from digitnet.progress import progress_bar

        batch_size = self.config.batch_size
        if self.bar is None or epoch != self.epoch:
            self.close()
            self.epoch = epoch
            self.bar = progress_bar(total=-(-total // batch_size), desc=f"epoch {epoch}/{self.config.epochs}",
                                    unit="batch", leave=False, disable=True if self.quiet else None)
        self.bar.update(-(-images // batch_size) - self.bar.n)  # a partial last batch counts as one

    def epoch_done(self, stats):
        from tqdm import tqdm

        self.close()
        if not self.quiet:
            validation = "" if stats.validation_accuracy is None else f"  validation {stats.validation_accuracy:7.2%}"
            tqdm.write(f"epoch {stats.epoch:3d}/{self.config.epochs}  cost {stats.training_cost:.5f}"
                       f"{validation}  eta {stats.learning_rate:g}  {stats.seconds:5.2f} s")

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------------------
# gradcheck


@main.command(short_help="Check backprop against finite differences.")
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

    from digitnet.training import parse_sizes

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
        training = _load_data(data_dir, 10000).training
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


# ---------------------------------------------------------------------------
# augment


@main.command(short_help="Preview the training distortions (--augment) as a picture.")
@click.option("--augment", "spec", default="elastic=34:4", metavar="SPEC",
              help="Distortions, as for `digitnet train --augment`: shift=PIXELS, elastic=ALPHA:SIGMA, "
                   "affine=DEGREES:SCALE, comma-separated.")
@click.option("--preview", type=click.Path(dir_okay=False), default="augment.png",
              help="PNG to write: each row an original training image, then distorted versions of it.")
@click.option("--rows", type=click.IntRange(1, 50), default=8, help="Training images shown.")
@click.option("--columns", type=click.IntRange(1, 20), default=8, help="Distortions per image.")
@click.option("--scale", type=click.IntRange(1, 10), default=3, help="Screen pixels per image pixel.")
@click.option("--seed", type=click.IntRange(min=0), default=0, help="Seed for the choice of images and the distortions.")
@click.option("--force", is_flag=True, help="Overwrite --preview if it already exists.")
@data_dir_option
@user_errors
def augment(spec, preview, rows, columns, scale, seed, force, data_dir):
    """Draw a grid of training images beside their distortions, to choose --augment by eye."""
    import numpy as np

    from digitnet import augment as augmenting
    from digitnet.atomic import atomic_path, check_writable

    try:
        augmentation = augmenting.parse(spec)
    except augmenting.AugmentError as e:
        raise click.BadParameter(str(e), param_hint="--augment") from None
    preview = Path(preview)
    if preview.suffix.lower() != ".png":
        raise click.BadParameter(f"{preview} does not end in .png", param_hint="--preview")
    check_writable(preview)  # a missing folder, a file where the folder should be, a read-only disk
    if preview.exists() and not force:
        raise click.ClickException(f"{preview} already exists: choose another --preview, or pass --force to replace it")
    training = _load_data(data_dir, 0, parts=("train",)).training
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(training), size=min(rows, len(training)), replace=False)
    picture = augmenting.preview(training.images[chosen], augmentation, rng, columns=columns, scale=scale)
    with atomic_path(preview) as tmp:
        picture.save(tmp, format="PNG")
    click.echo(f"{preview}: {len(chosen)} training images (left column) and {columns} distortions of each "
               f"with --augment {augmentation or 'none'}")


# ---------------------------------------------------------------------------
# evaluate / info


def _weights_option(command):
    return click.option("--weights", type=click.Choice(["best", "last"]), default="best",
                        help="The best validation epoch's weights (when the checkpoint has them) or the last epoch's.")(command)


def _pick_digit_reader(ckpt, weights, model):
    """The chosen weights, refused (exit 1, naming the file) unless they map 28x28 pixels to 10 digits."""
    from digitnet.checkpoint import digit_reader_problem

    network, _ = ckpt.weights(weights)
    problem = digit_reader_problem(network, model)
    if problem:
        raise click.ClickException(problem)
    return network


@main.command(short_help="Accuracy and confusion matrix of a model.")
@model_option(positional=True)
@data_dir_option
@click.option("--split", type=click.Choice(["test", "validation"]), default="test", help="Which images to measure on.")
@_weights_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@stops_cleanly  # it downloads missing data
@user_errors
def evaluate(model, data_dir, split, weights, as_json):
    """Accuracy, per-digit precision and recall, and the confusion matrix of MODEL.

    The test split needs only the two test files; the validation split the training files.
    """
    from digitnet import checkpoint, training

    ckpt = checkpoint.load(model)
    network = _pick_digit_reader(ckpt, weights, model)
    validation_size = ckpt.metadata.get("hyperparameters", {}).get("validation_size", 10000)
    if split == "validation" and not validation_size:
        raise click.UsageError(f"{model} was trained without a validation split (--validation-size 0): "
                               "use --split test")
    mnist = _load_data(data_dir, validation_size if split == "validation" else 0, quiet=as_json,
                       parts=("t10k",) if split == "test" else ("train",))
    data_split = mnist.split(split)
    report = training.evaluate(network, data_split)
    used, epoch = _weights_used(ckpt, weights)
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


def _weights_used(ckpt, weights) -> tuple[str, int | None]:
    """Which weights ``ckpt.weights`` takes ("best" or "last") and from which epoch (None when unknown)."""
    used = ckpt.weights(weights)[1]
    return used, ckpt.metadata.get("best_epoch" if used == "best" else "epochs_completed")


def _describe_weights(used, epoch, ckpt) -> str:
    if used == "best":
        return f"best validation epoch {epoch}" if epoch else "best validation epoch"
    if epoch:
        return f"last epoch, {epoch}"
    return "its weights" if ckpt.best_network is None else "last epoch"


def _percent(value) -> str:
    return "-" if value is None else f"{value:.2%}"


@main.command(short_help="A model's settings and training history.")
@model_option(positional=True)
@click.option("--json", "as_json", is_flag=True, help="Print the raw metadata as JSON.")
@user_errors
def info(model, as_json):
    """Print a checkpoint's settings (as train options), its run, library versions and per-epoch history."""
    from digitnet import checkpoint
    from digitnet.settings import settings_of
    from digitnet.training import TrainConfig

    ckpt = checkpoint.load(model)
    meta = ckpt.metadata
    if as_json:
        click.echo(json.dumps(meta, indent=2))
        return
    output = " with a softmax output layer" if meta["cost"] == "log-likelihood" else ""
    click.echo(f"{model}: {'-'.join(map(str, meta['sizes']))} {meta.get('activation', 'sigmoid')} network{output}, "
               f"{meta['cost']} cost, {meta.get('dtype', 'float32')}")
    specs = settings_of(TrainConfig)
    hyperparameters = meta.get("hyperparameters") or {}
    rows = [(specs[k].option if k in specs else k, specs[k].format(v) if k in specs else str(v))
            for k, v in hyperparameters.items()]
    run = _run_rows(model, meta)
    width = max((len(key) for key, _ in rows + run), default=0)
    for title, block in (("settings (as train options)", rows), ("run", run)):
        if block:
            click.echo(title)
        for key, value in block:
            click.echo(f"  {key:<{width}}  {value}")
    if ckpt.history:
        click.echo("\nepoch  training cost  validation  learning rate  seconds")
        for h in ckpt.history:
            click.echo(f"{h.get('epoch', '?'):>5}  {h.get('training_cost', float('nan')):13.5f}  "
                       f"{_percent(h.get('validation_accuracy')):>10}"
                       f"  {h.get('learning_rate', float('nan')):13g}  {h.get('seconds', float('nan')):7.2f}")
    else:
        click.echo("\n(no training history in this checkpoint)")


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
        rows.append(("best epoch", f"{meta['best_epoch']} (validation {_percent(meta.get('best_validation_accuracy'))})"))
    if meta.get("test_accuracy") is not None:
        last = meta.get("test_accuracy_last_epoch")
        rows.append(("test accuracy", _percent(meta["test_accuracy"])
                     + (f" (last epoch {_percent(last)})" if last is not None else "")))
    for key, label in (("dataset", "dataset"), ("saved_at", "saved at")):
        if meta.get(key):
            rows.append((label, str(meta[key])))
    if meta.get("versions"):
        rows.append(("versions", ", ".join(f"{k} {v}" for k, v in meta["versions"].items())))
    return rows


# ---------------------------------------------------------------------------
# report


@main.command(short_help="Pictures and an HTML page about a model.")
@model_option(positional=True)
@data_dir_option
@click.option("--split", type=click.Choice(["test", "validation"]), default="test",
              help="Images for the confusion matrix and the mistakes.")
@_weights_option
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
    _pick_digit_reader(ckpt, weights, model)  # before any data is loaded, naming the file
    out_dir = Path(out or f"report-{Path(model).stem}")
    try:
        reporting.check_out_dir(out_dir)
        check_folder_writable(out_dir)  # before the pictures are drawn, not after
        validation_size = reporting.validation_size(ckpt.metadata) if split == "validation" else 0
        mnist = _load_data(data_dir, validation_size, parts=("t10k",) if split == "test" else ("train",))
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


# ---------------------------------------------------------------------------
# predict


@main.command(short_help="Recognise the digits in your own pictures.")
@click.argument("images", nargs=-1, required=True, type=click.Path())
@model_option(positional=False)
@_weights_option
@click.option("--json", "as_json", is_flag=True,
              help='One JSON object per image and line: {"path", "digit", "confidence", "scores"} '
                   'or {"path", "error"}.')
@click.option("--top-k", type=click.IntRange(1, 10), default=1, help="Show the K most likely digits.")
@click.option("--show", is_flag=True, help="Also print the 28x28 image the network saw, as terminal art.")
@click.option("--invert", type=click.Choice(["auto", "yes", "no"]), default="auto",
              help="Is the picture dark ink on a light background (yes: invert it to MNIST's white on "
                   "black) or light on dark (no)? auto decides from the picture.")
@click.option("--recursive", "-r", is_flag=True, help="Also read the image files in the folders' subfolders.")
@user_errors
def predict(images, model, weights, as_json, top_k, show, invert, recursive):
    """Recognise the digit in each IMAGE: image files, or folders of them (their image files, sorted).

    Any picture Pillow reads, of one digit in any colours: it is flattened,
    cleaned, cropped, scaled and centred the way MNIST's digits were.  Exits
    with status 1 if any image could not be used (the others are still answered).
    """
    from digitnet import checkpoint
    from digitnet import predict as predicting  # numpy and Pillow: imported only by this command

    if show and as_json:
        raise click.UsageError("--show prints terminal art, which would break the JSON lines; use one or the other")
    for image in images:
        if Path(image).suffix.lower() in (".npz", ".json") and not Path(image).is_dir():
            raise click.UsageError(f"{image} looks like a model, not an image: did you mean --model {image}?")
    network = _pick_digit_reader(checkpoint.load(model), weights, model)
    count, failures, empty = predicting.run(network, images, invert=invert, as_json=as_json, top_k=top_k,
                                            show=show, recursive=recursive, out=click.echo,
                                            err=lambda line: click.echo(line, err=True))
    if failures:
        click.echo(f"{failures} of {count} image(s) could not be used", err=True)
    if failures or empty:
        sys.exit(1)


# ---------------------------------------------------------------------------
# serve


@main.command(short_help="A web page to draw digits on, train networks and watch them learn; a JSON API.")
@model_option(positional=False, optional=True)
@_weights_option
@click.option("--host", default="127.0.0.1",
              help="Address to listen on. Anything but a loopback address lets other machines use the page.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, help="Port to listen on; 0 picks a free one.")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in the default web browser.")
@click.option("--max-upload", type=FiniteFloatRange(min=0, min_open=True), default=10.0, metavar="MB",
              help="Largest image upload accepted, in MB (refused from its Content-Length).")
@click.option("--workers", type=click.IntRange(0, 64), default=2, show_default=True,
              help="Processes that compute predictions side by side (0: all in the server's own process).")
@click.option("--runs-dir", type=click.Path(file_okay=False), default="runs", show_default=True,
              help="Folder where runs started from the page are saved (created when the first one starts).")
@data_dir_option
@user_errors
def serve(model, weights, host, port, open_browser, max_upload, workers, runs_dir, data_dir):
    """A local web page to draw a digit and watch the network answer, and a JSON API.

    Routes: GET / (the page), POST /api/predict (body: an image file's bytes; answers like
    `predict --json`, plus the 28x28 input), GET /api/model, POST /api/evaluate (accuracy on the
    MNIST test split of --data-dir). Training from the page: /api/train/... and /api/models/...
    (see the README). Without a model (no model.npz here) the page offers to train one.
    Ctrl-C (exit status 130) or SIGTERM (143) stops it, and a run going stops as on Ctrl-C.
    """
    from digitnet import checkpoint
    from digitnet.serve import api
    from digitnet.serve import server as serving
    from digitnet.serve.models import Models
    from digitnet.serve.training import TrainingRuns

    try:
        recogniser = api.Recogniser(checkpoint.load(model), str(model), weights, data_dir) if model else None
        training = TrainingRuns(runs_dir, data_dir)
        models = Models(recogniser, runs_dir, ".", data_dir, training, workers=workers)
        httpd = serving.make_server(recogniser, host, port, max_upload=int(max_upload * serving.MB),
                                    models=models, training=training)
    except (api.ModelError, serving.ServerError) as e:
        raise click.ClickException(str(e)) from None
    if recogniser is not None:
        recogniser.start_workers(workers)
    if not serving.is_loopback(host):
        click.echo(f"warning: listening on {host}: anyone who can reach this machine on the network can use "
                   "the page and the API (there is no login)", err=True)
    address = serving.url(httpd, host)
    if model is None:
        click.echo(f"no model yet ({DEFAULT_MODEL} not found): the page offers to train one", err=True)
    click.echo(f"Serving {model or 'no model yet'} on {address} (Ctrl-C to stop)")
    if open_browser:
        import webbrowser

        webbrowser.open(address)
    try:
        signum = serving.serve_until_stopped(httpd)
    finally:
        if models.recogniser is not None:
            models.recogniser.close()
    final = training.shutdown()
    if final is not None:
        hint = (f"; continue it from the page or with `digitnet train --resume {final['run']}`"
                if final.get("resumable") else "")
        click.echo(f"the training run was stopped: {final['message']}{hint}", err=True)
    click.echo("stopped", err=True)
    sys.exit(128 + signum)  # the house's status for an interrupted command: 130 (Ctrl-C), 143 (SIGTERM)


# ---------------------------------------------------------------------------
# sweep


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@main.command(short_help="Search the train settings with Optuna, pruning hopeless trials.")
@click.option("--param", "params", multiple=True, metavar="NAME=SPEC",
              help="A train setting to search; repeat for several: eta=log:0.1..5 (log-uniform), l2=0..5 "
                   "(uniform), hidden=30,100,100-30 (one of a list; 100-30 is two layers).  "
                   "[default: eta=log:0.1..5 l2=0..5 hidden=30,100 cost=quadratic,cross-entropy]")
@click.option("--set", "settings", multiple=True, metavar="NAME=VALUE",
              help="Fix any other train setting for every trial, e.g. --set init=scaled --set batch-size=20.")
@click.option("--trials", type=click.IntRange(min=1), default=None,
              help="Trials to finish, pruned ones included (on an existing study: its new target).  "
                   "[default: 24, or the study's]")
@click.option("--epochs", type=click.IntRange(min=1), default=10, help="Epochs per trial, unless pruned.")
@click.option("--seed", type=int, default=0,
              help="Seed of every trial's weights and shuffling (the same for all, so trials differ only in "
                   "the settings searched), and of the sampler.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=_cores(),
              help="Trials at once on this machine, each in its own process (the default is the number of "
                   "cores).")
@click.option("--pruner", type=click.Choice(["halving", "median"]), default="halving",
              help="halving: successive halving, a trial goes on after epochs 1, 3 and 9 only if it is in the best "
                   "third there of itself and the trials before it (asked again every epoch, so trials side by "
                   "side prune as one after another); "
                   "median: after 5 complete trials, stop a trial whose best validation accuracy is below the "
                   "median of the complete trials at the same epoch (gentler: fewer epochs saved).")
@click.option("--no-prune", is_flag=True, help="Run every trial for all its epochs.")
@click.option("--study", "study_name", default="default", help="Name of the study in the storage.")
@click.option("--storage", metavar="URL", default=None,
              help="Database holding the study, shared by every machine working on it, e.g. "
                   "postgresql://user:password@host/db  [default: sqlite, study.db in --out]")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder for the trials' checkpoints (trial-NNN.npz), results.csv and index.html  "
                   "[default: sweep-<study>]")
@data_dir_option
@click.option("--final", is_flag=True, help="At the end, measure the best trial on the test set.")
@click.option("--show", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Train nothing: print the table of the sweep in DIR (or in --storage) and rewrite "
                   "DIR/results.csv and DIR/index.html.")
@click.option("--quiet", "-q", is_flag=True, help="Only the table at the end; no progress bar or trial lines.")
@click.pass_context
@user_errors
def sweep(ctx, params, settings, trials, epochs, seed, jobs, pruner, no_prune, study_name, storage, out, data_dir,
          final, show, quiet):
    """Search the train settings with Optuna: trials in parallel processes, hopeless ones pruned.

    Each trial is `digitnet train` with the trial's settings (same seed, same
    weights), judged on the validation split; the test set is not touched
    unless you ask (--final).  The study is kept in a database, by default
    study.db in the output folder: run the same command again to continue it.
    Other machines join with `digitnet sweep --storage URL --study NAME`.
    """
    from digitnet import atomic
    from digitnet.sweep import SweepError, SweepUsageError, launch, results
    from digitnet.sweep import space as spaces
    from digitnet.sweep import study as studies

    try:
        typed = {name for name in ctx.params if ctx.get_parameter_source(name).name == "COMMANDLINE"}
        studies.check_study_name(study_name)
        if storage is not None:
            studies.sqlite_file(storage)  # refuses an in-memory database
        if show:
            ignored = typed - {"show", "storage", "study_name", "quiet"}
            if ignored:
                raise SweepUsageError("--show only reads a sweep (it takes --storage and --study); it does not "
                                      f"take {', '.join(sorted(_option_of(ctx, name) for name in ignored))}")
            return _show_sweep(Path(show), storage, study_name, "study_name" in typed)
        given = {part for part, names in {"space": {"params", "settings", "epochs", "seed"},
                                          "pruner": {"pruner", "no_prune"}, "trials": {"trials"}}.items()
                 if typed & names}
        out_dir = Path(out or f"sweep-{study_name}")
        if out_dir.exists() and not out_dir.is_dir():
            raise click.UsageError(f"--out {out_dir} is a file, not a folder")
        requested = studies.Definition(spaces.SearchSpace.parse(params, settings, epochs, seed), trials or 24,
                                       "none" if no_prune else pruner)
        # A failed start leaves no new --out folder behind, and no empty study.db: the default database
        # is made only after every check, unless it exists already (it may hold the study to continue).
        with atomic.folders_removed_on_failure(out_dir):
            atomic.check_folder_writable(out_dir)  # a read-only disk, /proc: said now, naming --out
            url = storage or studies.default_storage(out_dir)
            store = None
            if storage is not None or (out_dir / studies.STUDY_FILE).exists():
                out_dir.mkdir(parents=True, exist_ok=True)
                store = studies.open_storage(url)
            definition = (store is not None and studies.stored_definition(store, study_name)) or requested
            mnist = _load_data(data_dir, 0, quiet)  # the whole training file: the checks need its size
            definition.space.check(training_file_size=len(mnist.training))
            mnist = mnist.with_validation_size(definition.space.base().validation_size)
            size = definition.space.size()
            if size is not None and (trials or definition.trials) > size:
                raise SweepUsageError(f"the search space holds only {size} different settings (every --param is "
                                      f"a list); ask for --trials {size} or fewer")
            owner = studies.out_dir_owner(out_dir, store if storage is None else None)
            if owner is not None and owner != study_name:
                raise SweepUsageError(f"--out {out_dir} holds the trials of study {owner!r}, whose checkpoints "
                                      f"study {study_name!r} would overwrite: give it its own --out (without "
                                      f"--out it gets sweep-{study_name})")
            if store is None:
                out_dir.mkdir(parents=True, exist_ok=True)
                store = studies.open_storage(url)
            study, definition, created = studies.create_or_join(store, study_name, requested, given)
            studies.claim_out_dir(out_dir, study_name)
        names = [p.name for p in definition.space.params]
        done = studies.counts(study)["done"]
        if not quiet:
            click.echo(f"{'new' if created else 'continuing'} study {study_name!r} in {studies.shown_url(url)}: "
                       f"{done} of {definition.trials} trials done; {definition.space.describe()}; "
                       f"pruner {definition.pruner}; {jobs} worker process{'es' if jobs > 1 else ''}")
        data_path = _data_path(data_dir)
        spec = launch.WorkerSpec(url, study_name, str(out_dir.resolve()), str(data_path.resolve()), str(data_path))
        outcome = launch.run(study, store, spec, jobs, definition.space.params, quiet)
        ranked, files = launch.write_results(study, definition, out_dir, study_name, url)
        click.echo(("\n" if not quiet else "") + results.table(ranked, names))
        click.echo(results.summary(study, ranked))
        click.echo(f"results.csv and index.html (open it in a browser) are in {out_dir}{os.sep}")
        count = studies.counts(study)
        if outcome.interrupted:
            click.echo(f"interrupted: {count['done']} of {studies.target(study)} trials done; trials cut short "
                       f"are marked failed and run again when you repeat the command", err=True)
            sys.exit(128 + outcome.interrupted)
        failures = [f"worker {i + 1} {launch.describe_exit(code)}" for i, code in enumerate(outcome.exit_codes)
                    if code]
        if count["done"] < studies.target(study):
            raise click.ClickException(f"{'; '.join(failures) or 'the workers stopped'}: {count['done']} of "
                                       f"{studies.target(study)} trials done; run the same command to continue")
        for failure in failures:
            click.echo(f"note: {failure}; the other workers finished the study", err=True)
        best = results.best_row(ranked)
        if best is not None:
            path = out_dir / (best.checkpoint or launch.checkpoint_name(best.number))
            click.echo(_best_line(best, out_dir))
            if final:
                _final_test(path, best, mnist)
    except SweepUsageError as e:
        raise click.UsageError(str(e)) from None
    except SweepError as e:
        raise click.ClickException(str(e)) from None


def _option_of(ctx, name: str) -> str:
    """The option a user typed for click parameter ``name`` (e.g. study_name -> --study)."""
    param = next((p for p in ctx.command.params if p.name == name), None)
    return max(param.opts, key=len) if param is not None else name


def _data_path(data_dir) -> Path:
    from digitnet.data import resolve_data_dir

    return resolve_data_dir(data_dir)


def _final_test(path: Path, best, mnist) -> None:
    """The best trial's test accuracy: the one look at the test set, after the choice is made."""
    from digitnet import checkpoint, training

    if not path.is_file():
        where = f" on {best.host}" if best.host else ""
        click.echo(f"trial {best.number} ran{where}: its checkpoint is in that machine's --out folder; "
                   f"run `digitnet evaluate {path.name}` there", err=True)
        return
    ckpt = checkpoint.load(path)
    network = ckpt.best_network or ckpt.network
    click.echo(f"test accuracy of trial {best.number} (weights of its best validation epoch, "
               f"{ckpt.metadata.get('best_epoch')}): {training.accuracy(network, mnist.test):.2%}")


def _show_sweep(directory: Path, storage, study_name: str, study_typed: bool) -> None:
    from digitnet.sweep import SweepError, launch, results
    from digitnet.sweep import study as studies

    if storage is None:
        if not (directory / studies.STUDY_FILE).is_file():
            raise SweepError(f"{directory} holds no sweep ({studies.STUDY_FILE} is missing); for a study in a "
                             "shared database add --storage URL --study NAME")
        storage = studies.default_storage(directory)
    database = studies.sqlite_file(storage)
    if database is not None and not database.is_file():  # opening it would create it: --show only reads
        raise SweepError(f"--storage {storage}: there is no database file {database}")
    store = studies.open_storage(storage)
    if not study_typed:
        names = studies.study_names(store)
        if len(names) > 1:
            raise SweepError(f"the storage holds several studies ({', '.join(names)}): choose one with --study")
        study_name = names[0] if names else study_name
    study, definition = studies.load(store, study_name)
    ranked, _ = launch.write_results(study, definition, directory, study_name, storage)
    names = [p.name for p in definition.space.params]
    click.echo(f"study {study_name!r} in {studies.shown_url(storage)}: {definition.space.describe()}; "
               f"pruner {definition.pruner}\n")
    click.echo(results.table(ranked, names))
    click.echo(results.summary(study, ranked))
    best = results.best_row(ranked)
    if best is not None:
        click.echo(_best_line(best, directory))


def _best_line(best, out_dir: Path) -> str:
    from digitnet.sweep.launch import checkpoint_place

    return (f"best: trial {best.number}, {best.best:.2%} validation accuracy at epoch {best.best_epoch}; "
            f"checkpoint {checkpoint_place(best, out_dir)}")
