"""Fuzz harness: training settings from JSON (the API) and from text (the CLI) get one clear refusal.

Each input is used two ways:
- as the JSON body of ``POST /api/train/start`` (``config_from_json``) and its ``settings`` as a resume's
  changes (``_resume_changes``): only ``ApiError(400)`` may escape;
- as the text typed after every option (``Setting.from_text``: ``parse_sizes`` for --hidden, the
  ``--augment`` parser, numbers, yes/no): only ``ValueError`` may escape;
- as the text after one option of `digitnet train` (chosen by a checksum of the input), parsed by click
  exactly as the command line is: only click's usage errors may escape, and what click accepts
  ``TrainConfig.problems()`` judges without raising.
Whatever is accepted must survive the trip to the child process: ``Setting.format`` (the text the server
passes to `digitnet train`) parses back to the same value, and ``Setting.problem`` answers without raising.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import click

from digitnet.cli import main as cli_main
from digitnet.cli.options import typed_settings
from digitnet.config import TrainConfig
from digitnet.serve.api import ApiError
from digitnet.serve.training import _resume_changes, config_from_json
from digitnet.settings import settings_of

EXPECTED = (ApiError,)
LIBFUZZER_ARGS = ["-max_len=4096", f"-dict={Path(__file__).with_name('json.dict')}"]
SPECS = settings_of(TrainConfig)
TRAIN = cli_main.commands["train"]


def _api(call, argument) -> object | None:
    try:
        return call(argument)
    except ApiError as e:
        if e.status != 400 or not e.message or "\n" in e.message:
            raise AssertionError(f"ApiError({e.status}, {e.message!r}): a settings refusal is one line, 400")
        return None


def _round_trip(name: str, value) -> None:
    """What the server passes to the child (``format``) reads back as the same setting (``from_text``)."""
    spec = SPECS[name]
    if spec.kind is bool:
        return  # passed as a bare flag
    text = spec.format(value)
    again = spec.from_text(text)  # a ValueError here is a finding: the child would refuse the run
    if spec.format(again) != text or (spec.parse is None and again != value):
        raise AssertionError(f"{spec.option}: {value!r} is passed as {text!r}, which reads back as {again!r}")


def _command_line(text: str) -> None:
    """`digitnet train OPTION TEXT` up to the settings check (click parses; nothing trains)."""
    spec = list(SPECS.values())[zlib.crc32(text.encode("utf-8", "surrogateescape")) % len(SPECS)]
    try:
        ctx = TRAIN.make_context("train", [spec.option] if spec.kind is bool else [spec.option, text])
    except (click.exceptions.ClickException, click.exceptions.Exit):
        return  # a usage error: one line and exit 2 on the command line
    values, _ = typed_settings(ctx, {name: ctx.params[name] for name in SPECS})
    TrainConfig(**values).problems()


def one_input(data: bytes) -> None:
    try:
        body = json.loads(data or b"{}")
    except (ValueError, RecursionError):  # the server's body reader answers 400 for these
        body = None
    if body is not None:
        config = _api(config_from_json, body)
        if config is not None:
            for name in SPECS:
                _round_trip(name, getattr(config, name))
        if isinstance(body, dict):
            changes = _api(_resume_changes, body.get("settings"))
            for name, value in (changes or {}).items():
                _round_trip(name, value)
    text = data.decode("utf-8", "surrogateescape")  # as click gets argv on Linux
    for name, spec in SPECS.items():
        try:
            value = spec.from_text(text)
        except ValueError:
            continue
        if spec.problem(value) is None:
            _round_trip(name, value)
    _command_line(text)


if __name__ == "__main__":
    import sys

    from tests.fuzz.runner import main

    sys.exit(main(["settings", *sys.argv[1:]]))
