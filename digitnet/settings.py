"""The training settings described once: option name, help, range, resume rule.

A ``TrainConfig`` field (``config.py``) is declared with ``setting(default,
"--option", "help", ...)``; everything a user-facing front end needs is derived
from that one declaration: the ``train`` command's click options
(``cli/options.py``), the checks in ``TrainConfig.problems()``, the resume check
(``runs.conflicts``, called by ``runs.resumed_config``), and the JSON
description a form or a sweep reads (``describe``).  Messages always name
the option as the user typed it (``--eta``), never the field (``learning_rate``).

Adding a setting is one field::

    momentum: float = setting(0.0, "--momentum", "Momentum coefficient mu.", min=0, max=1, max_open=True)

An option whose text is not a plain number or choice (a list, a little
language) passes ``parse`` (text -> value, raising ``ValueError`` with the
message) and ``show`` (value -> the text the user would type).

This module knows nothing of click or of the network; it imports nothing from digitnet.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any, Callable


@dataclass(frozen=True)
class Setting:
    """How one training setting meets the user."""

    option: str                      # "--eta": the name in help, messages and resume refusals
    help: str
    kind: type                       # int, float, str, bool or tuple; inferred from the default
    choices: tuple[str, ...] = ()    # allowed values of a str setting
    min: float | None = None         # inclusive unless min_open
    max: float | None = None
    min_open: bool = False
    max_open: bool = False
    resume_may_change: bool = False  # may `train --resume` give a new value (only the planned total so far)?
    metavar: str | None = None
    parse: Callable[[str], Any] | None = None  # text -> value, for values that are not a number or a choice
    show: Callable[[Any], str] | None = None   # value -> text as the user would type it

    @property
    def keyword(self) -> str:
        """The name in Python (``digitnet.train``, the scikit-learn estimator): ``--batch-size`` -> ``batch_size``."""
        return self.option.removeprefix("--").replace("-", "_")

    def range_text(self) -> str:
        """The range the way click shows it in help: ``x>=1``, ``0<x<1``."""
        if self.min is None and self.max is None:
            return ""
        low = "" if self.min is None else f"{_number(self.min)}{'<' if self.min_open else '<='}"
        high = "" if self.max is None else f"{'<' if self.max_open else '<='}{_number(self.max)}"
        if self.min is not None and self.max is None:
            return f"x{'>' if self.min_open else '>='}{_number(self.min)}"
        return f"{low}x{high}"

    def format(self, value) -> str:
        """``value`` written the way the user would type it after the option."""
        if self.show is not None:
            return self.show(value)
        if isinstance(value, float):
            return f"{value:g}"
        if isinstance(value, (list, tuple)):
            return ",".join(str(v) for v in value)
        return str(value)

    def from_text(self, text: str):
        """Parse a value typed as text (a form field, a command line); ``ValueError`` with the message."""
        if self.parse is not None:
            return self.parse(text)
        if self.kind is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"{self.option}: {text!r} is not yes or no")
        if self.kind in (int, float):
            try:
                return self.kind(text)
            except ValueError:
                what = "a whole number" if self.kind is int else "a number"
                raise ValueError(f"{self.option}: {text!r} is not {what}") from None
        return text

    def problem(self, value) -> str | None:
        """What is wrong with ``value`` for this setting, naming the option; None when it is fine."""
        if isinstance(value, (list, tuple)):
            shown = self.format(value)
        else:
            shown = repr(value) if isinstance(value, str) else value
        if self.kind is bool:
            return None if isinstance(value, bool) else f"{self.option} must be true or false, got {shown}"
        if self.kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            return f"{self.option} must be a whole number, got {shown}"
        if self.kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return f"{self.option} must be a number, got {shown}"
            if not math.isfinite(value):
                return f"{self.option} must be a finite number, got {value}"
        if self.kind is str:
            if not isinstance(value, str):
                return f"{self.option} must be text, got {shown}"
            if self.choices and value not in self.choices:
                return f"{self.option} must be one of {', '.join(self.choices)}, got {shown}"
            if self.parse is not None:  # text in a little language of its own: valid when it parses
                try:
                    self.parse(value)
                except ValueError as e:
                    return f"{self.option}: {e}"
        if self.kind is tuple:  # a list of whole numbers, each within the range
            if not isinstance(value, (list, tuple)) or not value or any(
                    isinstance(v, bool) or not isinstance(v, int) for v in value):
                return f"{self.option} must be one or more whole numbers, got {shown}"
            if not all(self._in_range(v) for v in value):
                return f"{self.option}: every value must be {self._range_words()}, got {shown}"
        if self.kind in (int, float) and not self._in_range(value):
            return f"{self.option} must be {self._range_words()}, got {self.format(value)}"
        return None

    def _in_range(self, value) -> bool:
        if self.min is not None and (value <= self.min if self.min_open else value < self.min):
            return False
        if self.max is not None and (value >= self.max if self.max_open else value > self.max):
            return False
        return True

    def _range_words(self) -> str:
        low = None if self.min is None else f"{'above' if self.min_open else 'at least'} {_number(self.min)}"
        high = None if self.max is None else f"{'below' if self.max_open else 'at most'} {_number(self.max)}"
        if low and high:
            return f"{low} and {high}"
        return low or high


def setting(default, option: str, help: str, **details) -> Any:
    """A dataclass field whose metadata is the ``Setting`` for ``option``.  The value
    kind (int, float, str, bool, tuple) comes from the default unless ``kind=`` says it."""
    details.setdefault("kind", type(default))
    if details["kind"] is str and details.get("choices") and default not in details["choices"]:
        raise ValueError(f"{option}: default {default!r} is not one of its choices")
    return field(default=default, metadata={"setting": Setting(option, help, **details)})


def settings_of(config_class) -> dict[str, Setting]:
    """Field name -> Setting, in declaration order, for every field declared with ``setting``."""
    return {f.name: f.metadata["setting"] for f in fields(config_class) if "setting" in f.metadata}


def default_of(config_class, name: str):
    f: Field = next(f for f in fields(config_class) if f.name == name)
    return f.default_factory() if f.default is MISSING else f.default


def describe(config_class) -> list[dict]:
    """A JSON-ready description of every setting: for a form's validation or a sweep's search space."""
    out = []
    for name, s in settings_of(config_class).items():
        default = default_of(config_class, name)
        out.append({
            "name": name, "option": s.option, "help": s.help,
            "type": {int: "int", float: "float", str: "str", bool: "bool"}.get(s.kind, "text"),
            "default": list(default) if isinstance(default, tuple) else default,
            "default_text": s.format(default), "choices": list(s.choices) or None,
            "min": s.min, "max": s.max, "min_open": s.min_open, "max_open": s.max_open,
            "range": s.range_text() or None, "resume_may_change": s.resume_may_change,
        })
    return out


def by_option(config_class) -> dict[str, str]:
    """``"--eta"`` -> ``"learning_rate"``: the field behind each option."""
    return {s.option: name for name, s in settings_of(config_class).items()}


def _number(x: float) -> str:
    return f"{x:g}"
