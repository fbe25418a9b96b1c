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

SHOWN = 80  # characters of a user's value quoted in a message


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
        """``value`` written the way the user would type it after the option.

        Never raises: a value the setting cannot take (``[]`` for ``--augment``, whose display parses
        it; an int of over 4300 digits) is shown as given, so a message about it is always a message."""
        try:
            if self.show is not None:
                return self.show(value)
            if isinstance(value, float):
                short = f"{value:g}"  # 0.5, 1e-05; but never a different number (0.1234567 is not 0.123457)
                return short if not math.isfinite(value) or float(short) == value else repr(value)
            if isinstance(value, (list, tuple)):
                return ",".join(str(v) for v in value)
            return str(value)
        except (ValueError, TypeError, OverflowError, RecursionError):
            return _given(value)

    def from_text(self, text: str):
        """Parse a value typed as text (a form field, a command line); ``ValueError`` with the message.

        The message quotes at most ``SHOWN`` characters of the text (a form may send a megabyte)."""
        if self.parse is not None:
            try:
                return self.parse(text)
            except ValueError as e:
                if len(str(e)) <= 2 * SHOWN:
                    raise
                raise ValueError(_cut(str(e), 2 * SHOWN)) from None
        if self.kind is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"{self.option}: {_given(text)} is not yes or no")
        if self.kind in (int, float):
            try:
                return self.kind(text)
            except ValueError:  # also an int of over 4300 digits (sys.int_info.default_max_str_digits)
                what = "a whole number" if self.kind is int else "a number"
                raise ValueError(f"{self.option}: {_given(text)} is not {what}") from None
        return text

    def from_json(self, value):
        """A value as JSON carries it (a page, an API) -> the value as the command line would give it.

        Text where the setting is not text is parsed as if typed (``"100,30"`` for --hidden, ``"3.0"``
        for --eta: a form sends text), a whole number for a float setting becomes a float and a list
        for --hidden a tuple; the rest is passed on as it is, for ``problem`` to judge with the same
        words as for the CLI.  ``ValueError`` naming the option when the text does not parse."""
        if isinstance(value, str) and self.kind is not str:
            try:
                value = self.from_text(value)
            except ValueError as e:
                message = str(e)
                raise ValueError(message if message.startswith(self.option) else f"{self.option}: {message}") from None
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            try:
                return float(value)  # as click gives it: 311111111111111111110 trains as 3.111111111111111e+20
            except OverflowError:
                return value  # beyond float (1e308): problem() says it is not a finite number
        return tuple(value) if isinstance(value, list) and self.kind is tuple else value

    def fits(self, value) -> bool:
        """Whether ``value`` is of this setting's kind (bool is not an int here, whatever Python says)."""
        if self.kind is bool:
            return isinstance(value, bool)
        if isinstance(value, bool):
            return False
        if self.kind is int:
            return isinstance(value, int)
        if self.kind is float:
            return isinstance(value, (int, float))
        if self.kind is tuple:
            return isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool)
                                                             for v in value)
        return isinstance(value, self.kind)

    def problem(self, value) -> str | None:
        """What is wrong with ``value`` for this setting, naming the option; None when it is fine.

        Any value at all (JSON from a page: lists, objects, null, huge integers) gets a message, never
        an exception; the value is quoted in at most ``SHOWN`` characters."""
        shown = _cut(self.format(value)) if self.fits(value) else _given(value)
        if self.kind is bool:
            return None if isinstance(value, bool) else f"{self.option} must be true or false, got {shown}"
        if self.kind is int and not self.fits(value):
            return f"{self.option} must be a whole number, got {shown}"
        if self.kind is float:
            if not self.fits(value):
                return f"{self.option} must be a number, got {shown}"
            try:
                finite = math.isfinite(value)  # an int beyond float's range (1e308) overflows here
            except OverflowError:
                finite = False
            if not finite:
                return f"{self.option} must be a finite number, got {shown}"
        if self.kind is str:
            if not isinstance(value, str):
                return f"{self.option} must be text, got {shown}"
            if self.choices and value not in self.choices:
                return f"{self.option} must be one of {', '.join(self.choices)}, got {_given(value)}"
            if self.parse is not None:  # text in a little language of its own: valid when it parses
                try:
                    self.parse(value)
                except ValueError as e:
                    return f"{self.option}: {_cut(str(e), 2 * SHOWN)}"
        if self.kind is tuple:  # a list of whole numbers, each within the range
            if not self.fits(value) or not value:
                return f"{self.option} must be one or more whole numbers, got {shown}"
            if not all(self._in_range(v) for v in value):
                return f"{self.option}: every value must be {self._range_words()}, got {shown}"
        if self.kind in (int, float) and not self._in_range(value):
            return f"{self.option} must be {self._range_words()}, got {shown}"
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


def _cut(text: str, limit: int | None = None) -> str:
    """``text`` in at most ``limit`` (default SHOWN) characters: a message is one line, not the input."""
    limit = SHOWN if limit is None else limit
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _given(value) -> str:
    """A value as the user gave it, for a message: text quoted, anything else as Python shows it, cut."""
    if isinstance(value, tuple):
        value = list(value)  # JSON sent a list; say so
    try:
        return _cut(repr(value) if isinstance(value, str) else str(value))
    except (ValueError, RecursionError):  # an int of over 4300 digits (sys.int_info), lists in lists in...
        return f"a {type(value).__name__} too large to show"
