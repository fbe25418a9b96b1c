"""The options several commands share, and the train settings as click options, each declared once.

The parameter types, --data-dir, the one rule for naming a model (-m/--model), --weights, and
the click option of every TrainConfig setting, derived from its ``Setting`` declaration.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import click
from click.core import ParameterSource

from digitnet.config import TrainConfig
from digitnet.settings import default_of, settings_of


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


def weights_option(command):
    return click.option("--weights", type=click.Choice(["best", "last"]), default="best",
                        help="The best validation epoch's weights (when the checkpoint has them) or the last epoch's.")(command)


def invert_option(command):
    return click.option("--invert", type=click.Choice(["auto", "yes", "no"]), default="auto",
                        help="Is the picture dark ink on a light background (yes: invert it to MNIST's white on "
                             "black) or light on dark (no)? auto decides from the picture.")(command)


def output_path(path, force: bool, option: str, suffix: str) -> Path:
    """``path`` (given as ``option``) as a file that can be written, checked before any work is done:
    it ends in ``suffix`` (".png"), its folder is writable, and it is only replaced with --force."""
    from digitnet.atomic import check_writable

    path = Path(path)
    if path.suffix.lower() != suffix:
        raise click.BadParameter(f"{path} does not end in {suffix}", param_hint=option)
    if path.is_dir():
        raise click.BadParameter(f"{path} is a folder", param_hint=option)
    check_writable(path)  # a missing folder, a file where the folder should be, a read-only disk
    if path.exists() and not force:
        raise click.ClickException(f"{path} already exists: choose another {option}, or pass --force to replace it")
    return path


def png_to_write(path, force: bool, option: str) -> Path:
    """``output_path`` for a PNG picture (explain --out, augment --preview)."""
    return output_path(path, force, option, ".png")


def pick_digit_reader(ckpt, weights, model):
    """The chosen weights (``ckpt.weights``: the network and "best" or "last"), refused (exit 1,
    naming the file) unless they map 28x28 pixels to 10 digits."""
    from digitnet.checkpoint import digit_reader_problem

    network, used = ckpt.weights(weights)
    problem = digit_reader_problem(network, model)
    if problem:
        raise click.ClickException(problem)
    return network, used


class SettingText(click.ParamType):
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


def setting_option(name, spec, default):
    """The click option for one TrainConfig setting, derived from its ``Setting``: type, range
    (shown in help), choices, metavar, help and default all come from the one declaration."""
    details = dict(help=spec.help, default=default, show_default=True, metavar=spec.metavar)
    if spec.kind is bool:
        details.update(is_flag=True)
    elif spec.parse is not None or spec.kind is tuple:
        # The default goes through the same parser as typed text, and shows as the user would type it.
        details.update(type=SettingText(spec), multiple=spec.kind is tuple,
                       default=[spec.format(default)] if spec.kind is tuple else spec.format(default))
    elif spec.choices:
        details.update(type=click.Choice(spec.choices))
    elif spec.kind in (int, float):
        kind = click.IntRange if spec.kind is int else click.FloatRange
        details.update(type=kind(spec.min, spec.max, min_open=spec.min_open, max_open=spec.max_open)
                       if spec.min is not None or spec.max is not None else spec.kind)
    return click.Option([spec.option, name], **details)


def train_settings(command: click.Command) -> click.Command:
    """Give ``command`` one option per TrainConfig setting, listed before its own options."""
    command.params[:0] = [setting_option(name, spec, default_of(TrainConfig, name))
                          for name, spec in settings_of(TrainConfig).items()]
    return command


def typed_settings(ctx, settings: dict) -> tuple[dict, dict]:
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
