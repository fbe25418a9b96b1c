"""The search space: which `train` settings a sweep varies, over which values, and which it fixes.

Written the way people say it, one setting per `--param`:

    eta=log:0.1..5        a float drawn log-uniformly from [0.1, 5]
    l2=0..5               uniform on [0, 5] (whole numbers when the setting is one, e.g. batch-size=10..50)
    hidden=30,100,100-30  one of these (100-30: two hidden layers)
    cost=quadratic,cross-entropy

and `--set NAME=VALUE` fixes any other setting for every trial.  NAME is the
`train` option without its dashes (`eta`, `batch-size`, `patience-eta`) or the
TrainConfig field (`learning_rate`); any TrainConfig field is accepted, so a
setting added to training can be swept without touching this module.  Every
value a range or list can produce at its ends is checked with
``TrainConfig.problems()`` before a single trial starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field as dataclass_field

from digitnet.config import TrainConfig
from digitnet.settings import by_option, default_of, settings_of
from digitnet.sweep import SweepUsageError

# Settings every trial shares, so that trials differ only in what is searched.
NOT_SEARCHABLE = {
    "seed": "every trial uses the sweep's --seed, so that trials differ only in the settings searched",
    "epochs": "every trial runs up to the sweep's --epochs (the pruner stops the hopeless ones earlier)",
    "validation_size": "all trials must be compared on the same validation images",
}
# The study a newcomer gets from a bare `digitnet sweep`: the textbook's chapter-3 questions.
DEFAULT_PARAMS = ("eta=log:0.1..5", "l2=0..5", "hidden=30,100", "cost=quadratic,cross-entropy")

SETTINGS = settings_of(TrainConfig)


def option_name(field: str) -> str:
    """The name a user types for a TrainConfig field, without dashes (`learning_rate` -> `eta`)."""
    return SETTINGS[field].option.lstrip("-")


def field_for(name: str) -> str:
    """The TrainConfig field for a setting name as typed: `eta`, `--eta`, `batch-size` or `batch_size`."""
    key = name.strip().lower()
    options = by_option(TrainConfig)
    field = options.get("--" + key.lstrip("-"), key.replace("-", "_"))
    if field not in SETTINGS:
        known = ", ".join(sorted(option_name(f) for f in SETTINGS))
        raise SweepUsageError(f"unknown setting {name!r}; the settings are: {known}")
    return field


def _default(field: str):
    return default_of(TrainConfig, field)


def _format(value) -> str:
    """A value as it would be typed back: 0.1, 5, 100-30 (in a list, commas separate the choices)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        short = f"{value:g}"
        return short if float(short) == value else repr(value)
    if isinstance(value, (tuple, list)):
        return "-".join(str(v) for v in value)
    return str(value)


def parse_value(field: str, text: str):
    """One value for a field, of the field's kind, parsed the way `train` parses its option."""
    spec = SETTINGS[field]
    text = text.strip()
    if not text:
        raise SweepUsageError(f"{option_name(field)}: empty value")
    if spec.kind is tuple:  # layer sizes: 100-30 here, since commas separate the choices of a list
        text = text.replace("-", ",")
    try:
        return spec.from_text(text)
    except ValueError as e:
        message = str(e)
        raise SweepUsageError(message if message.startswith(spec.option) else f"{spec.option}: {message}") from None


@dataclass(frozen=True)
class Param:
    """One searched setting: a float or int range (uniform or log-uniform) or a list of choices."""

    field: str
    kind: str                      # "float", "int" or "choice"
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    choices: tuple = ()            # as stored by Optuna: int, float, str or bool ("100-30" for layers)

    @property
    def name(self) -> str:
        return option_name(self.field)

    @property
    def spec(self) -> str:
        """The setting as it is typed, normalised: `eta=log:0.1..5`."""
        if self.kind == "choice":
            return f"{self.name}=" + ",".join(_format(c) for c in self.choices)
        return f"{self.name}={'log:' if self.log else ''}{_format(self.low)}..{_format(self.high)}"

    def to_field(self, stored):
        """The TrainConfig value for a value Optuna stored."""
        if SETTINGS[self.field].kind is tuple:
            return parse_value(self.field, str(stored))
        return stored

    def candidates(self) -> list:
        """Field values to check before the sweep starts: the range's ends, or every choice."""
        values = self.choices if self.kind == "choice" else (self.low, self.high)
        return [self.to_field(v) for v in values]

    def suggest(self, trial):
        """Ask the Optuna trial for this setting's value (a TrainConfig value)."""
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high, log=self.log)
        if self.kind == "int":
            return trial.suggest_int(self.name, self.low, self.high, log=self.log)
        return self.to_field(trial.suggest_categorical(self.name, list(self.choices)))


def parse_param(text: str) -> Param | tuple[str, object]:
    """`NAME=SPEC` as a Param, or (field, value) when SPEC is a single value."""
    try:
        return _parse_param(text)
    except SweepUsageError as e:
        message = str(e)
        raise SweepUsageError(message if message.startswith("--param") else f"--param {text}: {message}") from None


def _parse_param(text: str) -> Param | tuple[str, object]:
    name, sep, spec = text.partition("=")
    if not sep or not name.strip() or not spec.strip():
        raise SweepUsageError(f"--param {text!r}: expected NAME=SPEC, e.g. eta=log:0.1..5, l2=0..5 or hidden=30,100")
    field = field_for(name)
    spec = spec.strip()
    log = spec.lower().startswith("log:")
    body = spec[4:] if log else spec
    kind = SETTINGS[field].kind
    if ".." in body:
        if kind not in (int, float):
            raise SweepUsageError(f"--param {text}: {option_name(field)} takes one of its values, not a range; "
                             f"list them, e.g. {option_name(field)}=a,b")
        low_text, _, high_text = body.partition("..")
        low, high = parse_value(field, low_text), parse_value(field, high_text)
        if not (math.isfinite(low) and math.isfinite(high)) or not low < high:
            raise SweepUsageError(f"--param {text}: a range needs two finite ends, the lower first")
        if log and low <= 0:
            raise SweepUsageError(f"--param {text}: a log range needs a positive lower end")
        return Param(field, "int" if kind is int else "float", low, high, log)
    if log:
        raise SweepUsageError(f"--param {text}: log: goes with a range, e.g. {option_name(field)}=log:0.1..5")
    values = []
    for part in body.split(","):
        value = parse_value(field, part)
        stored = _format(value) if isinstance(value, tuple) else value
        if stored not in values:
            values.append(stored)
    if len(values) == 1:
        return field, parse_value(field, body)
    if kind is tuple and all("-" not in v for v in values):
        values = [int(v) for v in values]  # one hidden layer each: numbers plot on a numeric axis
    return Param(field, "choice", choices=tuple(values))


def parse_setting(text: str) -> tuple[str, object]:
    """`--set NAME=VALUE` as (field, value)."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise SweepUsageError(f"--set {text!r}: expected NAME=VALUE, e.g. cost=cross-entropy or batch-size=20")
    field = field_for(name)
    try:
        return field, parse_value(field, value)
    except SweepUsageError as e:
        raise SweepUsageError(f"--set {text}: {e}") from None


@dataclass
class SearchSpace:
    """The searched settings and the fixed ones (every TrainConfig field not searched keeps its value)."""

    params: list[Param]
    fixed: dict  # TrainConfig field -> value, including epochs and seed
    # TrainConfig field -> what the user typed for it ("--set cost=bar"), so messages name it
    typed: dict = dataclass_field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def parse(cls, param_texts, set_texts, epochs: int, seed: int) -> "SearchSpace":
        params, fixed, given = [], {"epochs": epochs, "seed": seed}, {}
        for text in set_texts:
            field, value = parse_setting(text)
            if field in NOT_SEARCHABLE and field != "validation_size":
                raise SweepUsageError(f"--set {text}: use --{option_name(field)} instead")
            given.setdefault(field, []).append(f"--set {text}")
            fixed[field] = value
        for text in param_texts or DEFAULT_PARAMS:
            parsed = parse_param(text)
            field = parsed.field if isinstance(parsed, Param) else parsed[0]
            if not param_texts and field in fixed:
                continue  # --set eta=3 without --param: fix eta and search the other default settings
            if field in NOT_SEARCHABLE:
                raise SweepUsageError(f"--param {text}: {option_name(field)} cannot be searched: {NOT_SEARCHABLE[field]}")
            given.setdefault(field, []).append(f"--param {text}")
            if isinstance(parsed, Param):
                params.append(parsed)
            else:
                fixed[field] = parsed[1]
        twice = [" and ".join(where) for where in given.values() if len(where) > 1]
        if twice:
            raise SweepUsageError(f"a setting is given twice: {'; '.join(twice)}")
        space = cls(params, fixed, {f: where[0] for f, where in given.items() if f in fixed})
        space.check()
        return space

    def check(self, training_file_size: int | None = None) -> None:
        """Every value the sweep could try, checked by TrainConfig.problems() (one message for all)."""
        seen = list(self.base().problems(training_file_size))  # each problem once, however many values show it
        messages = [self._with_typed(m) for m in seen]
        for param in self.params:
            for value in param.candidates():
                found = self.config({param.field: value}).problems(training_file_size)
                messages.extend(f"--param {param.spec}: {m}" for m in found if m not in seen)
                seen.extend(found)
        if self.fixed.get("validation_size", _default("validation_size")) < 1:
            messages.append("a sweep chooses on the validation split: --validation-size must be at least 1")
        if messages:
            raise SweepUsageError("; ".join(dict.fromkeys(messages)))

    def _with_typed(self, message: str) -> str:
        """A message about a fixed setting, led by what the user typed for it (`--set cost=bar: ...`)."""
        for field, text in self.typed.items():
            if message.startswith(f"--{option_name(field)} "):
                return f"{text}: {message}"
        return message

    def base(self) -> TrainConfig:
        """The fixed settings, with the searched ones at TrainConfig's defaults."""
        return TrainConfig(**self.fixed)

    def config(self, values: dict) -> TrainConfig:
        """The TrainConfig of one trial: fixed settings plus the searched values (field -> value)."""
        return TrainConfig(**{**self.fixed, **values})

    def suggest(self, trial) -> TrainConfig:
        return self.config({p.field: p.suggest(trial) for p in self.params})

    def size(self) -> int | None:
        """How many distinct trials the space holds, when every searched setting is a list."""
        if any(p.kind != "choice" for p in self.params):
            return None
        return math.prod(len(p.choices) for p in self.params)

    # Stored in the study, so that every worker (on any machine) runs the same sweep.
    def to_dict(self) -> dict:
        fixed = {k: list(v) if isinstance(v, tuple) else v for k, v in self.fixed.items()}
        return {"params": [p.spec for p in self.params], "fixed": fixed}

    @classmethod
    def from_dict(cls, d: dict) -> "SearchSpace":
        fixed = {k: tuple(v) if SETTINGS[k].kind is tuple else v for k, v in d["fixed"].items()}
        return cls([parse_param(spec) for spec in d["params"]], fixed)

    def describe(self) -> str:
        """The space as options to type: `--param eta=log:0.1..5 ... --set cost=quadratic`."""
        parts = [f"--param {p.spec}" for p in self.params]
        for field, value in self.fixed.items():
            if field in ("epochs", "seed"):
                parts.append(f"--{field} {value}")
            elif value != _default(field):
                parts.append(f"--set {option_name(field)}={_format(value)}")
        return " ".join(parts)
