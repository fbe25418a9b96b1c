"""One source of truth for the training settings: TrainConfig's field metadata drives the CLI,
the checks, the resume rule and the JSON description."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields

import click
from click.testing import CliRunner
import pytest

from helpers import run_cli as run
from digitnet import cli, runs, settings
from digitnet.cli.options import setting_option
from digitnet.settings import Setting, setting, settings_of
from digitnet.config import TrainConfig


def test_every_train_config_field_is_a_setting_with_a_unique_option():
    specs = settings_of(TrainConfig)
    assert list(specs) == [f.name for f in fields(TrainConfig)]
    options = [s.option for s in specs.values()]
    assert len(set(options)) == len(options) and all(o.startswith("--") for o in options)
    assert specs["learning_rate"].option == "--eta" and specs["eta_patience"].option == "--patience-eta"


def test_train_help_lists_every_setting_with_its_range():
    help_text = " ".join(run("train", "--help").output.split())
    for name, spec in settings_of(TrainConfig).items():
        assert spec.option in help_text, spec.option
        if spec.range_text() and spec.kind is not tuple:
            assert spec.range_text() in help_text, (spec.option, spec.range_text())


def test_only_the_planned_total_may_change_on_resume():
    # ... and the settings that change how a run is watched, its pace or where its work is done, never its weights.
    assert [name for name, s in settings_of(TrainConfig).items() if s.resume_may_change] == [
        "epochs", "exact_cost", "augment_inline", "peek_every", "pause_ms"]
    config = TrainConfig(hidden_sizes=(10,), learning_rate=3.0)
    assert runs.conflicts(config, {"hidden_sizes": (20,), "learning_rate": 3, "epochs": 99}) == [
        "--hidden was 10, you gave 20"]
    assert runs.conflicts(config, {"eta_patience": 2}) == ["--patience-eta was 0, you gave 2"]


def test_describe_is_json_for_a_form_or_a_sweep():
    described = {d["option"]: d for d in settings.describe(TrainConfig)}
    json.dumps(described)
    eta = described["--eta"]
    assert (eta["name"], eta["type"], eta["default"], eta["min"], eta["min_open"]) == (
        "learning_rate", "float", 3.0, 0, True)
    assert described["--cost"]["choices"] == ["quadratic", "cross-entropy", "log-likelihood"]
    assert described["--hidden"]["default"] == [30] and described["--hidden"]["default_text"] == "30"
    assert described["--epochs"]["resume_may_change"] is True


@pytest.mark.parametrize("option, text, value", [
    ("--eta", "0.5", 0.5), ("--hidden", "100, 30", (100, 30)), ("--batch-size", "7", 7), ("--cost", "quadratic",
                                                                                             "quadratic")])
def test_from_text_parses_what_a_form_would_send(option, text, value):
    spec = next(s for s in settings_of(TrainConfig).values() if s.option == option)
    assert spec.from_text(text) == value


@pytest.mark.parametrize("option, text, message", [
    ("--eta", "fast", "--eta: 'fast' is not a number"), ("--hidden", "10,,5", "'10,,5' has an empty part"),
    ("--batch-size", "1.5", "--batch-size: '1.5' is not a whole number")])
def test_from_text_refuses_with_the_option_name(option, text, message):
    spec = next(s for s in settings_of(TrainConfig).values() if s.option == option)
    with pytest.raises(ValueError, match=message):
        spec.from_text(text)


def test_range_text_matches_click():
    assert Setting("--x", "", float, min=0, max=1, min_open=True, max_open=True).range_text() == "0<x<1"
    assert Setting("--x", "", int, min=1).range_text() == "x>=1"
    assert Setting("--x", "", int, max=4).range_text() == "x<=4"
    assert Setting("--x", "", str).range_text() == ""


def test_a_new_field_is_one_declaration():
    """What issue-style additions (--momentum, a flag) get for free: option, range in help, check, parse."""

    @dataclass
    class Config:
        momentum: float = setting(0.0, "--momentum", "Momentum coefficient mu.", min=0, max=1, max_open=True)
        nesterov: bool = setting(False, "--nesterov", "Look ahead before the gradient.")

    specs = settings_of(Config)
    assert specs["momentum"].problem(1.0) == "--momentum must be at least 0 and below 1, got 1"
    assert specs["momentum"].problem(float("inf")) == "--momentum must be a finite number, got inf"
    assert specs["momentum"].problem(0.9) is None and specs["nesterov"].problem(True) is None

    @click.command()
    @click.pass_context
    def command(ctx, **values):
        click.echo(json.dumps(values))

    for name, spec in specs.items():
        command.params.append(setting_option(name, spec, settings.default_of(Config, name)))
    runner = CliRunner()
    assert json.loads(runner.invoke(command, ["--momentum", "0.9", "--nesterov"]).output) == {
        "momentum": 0.9, "nesterov": True}
    refused = runner.invoke(command, ["--momentum", "1"])
    assert refused.exit_code == 2 and "'--momentum': 1.0 is not in the range 0<=x<1" in refused.output
    assert "[default: 0.0; 0<=x<1]" in " ".join(runner.invoke(command, ["--help"]).output.split())


def test_setting_refuses_a_default_outside_its_choices():
    with pytest.raises(ValueError, match="--cost"):
        setting("hinge", "--cost", "", choices=("quadratic",))


def test_the_docs_list_every_train_option():
    from pathlib import Path

    # The README links docs/training.md for the full table ("Every option").
    page = (Path(__file__).resolve().parents[1] / "docs" / "training.md").read_text()
    table = page.split("## Every option")[1].split("\n## ")[0]
    train = cli.main.commands["train"]
    options = {opt for param in train.get_params(click.Context(train)) for opt in param.opts
               if opt.startswith("--") and opt != "--help"}
    missing = sorted(o for o in options if f"`{o}" not in table and f", `{o}`" not in table and f"{o}`" not in table)
    assert not missing, f"docs/training.md's table of train options lacks {missing}"


def test_a_text_setting_with_its_own_language_is_checked_by_its_parser():
    def parse(text):
        if not all(part in ("shift", "elastic") for part in text.split("+")):
            raise ValueError(f"{text!r}: use shift, elastic or shift+elastic")
        return text

    @dataclass
    class Config:
        augment: str = setting("shift", "--augment", "Distortions.", parse=parse, show=str)

    spec = settings_of(Config)["augment"]
    assert spec.problem("shift+elastic") is None
    assert spec.problem("rotate") == "--augment: 'rotate': use shift, elastic or shift+elastic"


# ---------------------------------------------------------------------------
# Any value at all gets a message, never an exception (settings from JSON, issue 21).  The fuzz harness
# (tests/fuzz/fuzz_settings.py) replays the raw API bodies in tests/fuzz/regressions/settings/.

@pytest.mark.parametrize("name, value, message", [
    ("augment", [], "--augment must be text, got []"),
    ("augment", {}, "--augment must be text, got {}"),
    ("l2", 10 ** 400, "--l2 must be a finite number, got 1000000"),
    ("learning_rate", -10 ** 400, "--eta must be a finite number"),
    ("hidden_sizes", ([30], [[10]]), "--hidden must be one or more whole numbers, got [[30], [[10]]]"),
    ("hidden_sizes", (30, -1), "--hidden: every value must be at least 1, got 30,-1"),
    ("hidden_sizes", (True,), "--hidden must be one or more whole numbers, got [True]"),
    ("epochs", True, "--epochs must be a whole number, got True"),
    ("epochs", "30", "--epochs must be a whole number, got '30'"),
    ("exact_cost", 1, "--exact-cost must be true or false, got 1"),
    ("cost", None, "--cost must be text, got None"),
])
def test_problem_answers_any_value(name, value, message):
    problem = settings_of(TrainConfig)[name].problem(value)
    assert problem.startswith(message) and len(problem) < 200, problem


def test_from_text_quotes_a_bounded_part_of_the_text():
    specs = settings_of(TrainConfig)
    for name, text in [("epochs", "1" * 5000), ("hidden_sizes", "1" * 5000), ("augment", "x" * 5000)]:
        with pytest.raises(ValueError) as caught:
            specs[name].from_text(text)
        assert str(caught.value) and len(str(caught.value)) < 200


@pytest.mark.parametrize("value", [0.1234567, 1e-05, 3.0, 0.5, 2 / 3])
def test_format_gives_text_that_reads_back_as_the_same_number(value):
    # The server passes a page's settings to `digitnet train` as text: 0.1234567 must not become 0.123457.
    spec = settings_of(TrainConfig)["learning_rate"]
    assert spec.from_text(spec.format(value)) == value
    assert spec.format(3.0) == "3" and spec.format(1e-05) == "1e-05"


def test_from_json_types_text_as_the_cli_does():
    specs = settings_of(TrainConfig)
    assert specs["hidden_sizes"].from_json("100,30") == (100, 30) and specs["hidden_sizes"].from_json([1]) == (1,)
    assert specs["exact_cost"].from_json("yes") is True and specs["learning_rate"].from_json("0.5") == 0.5
    assert specs["augment"].from_json([]) == []  # left for problem() to refuse, with the value as sent
    with pytest.raises(ValueError, match="^--eta: 'fast' is not a number"):
        specs["learning_rate"].from_json("fast")


@pytest.mark.parametrize("option, field, text", [
    ("--l2", "l2", "1" + "0" * 400), ("--eta", "learning_rate", "nan"), ("--epochs", "epochs", "0"),
    ("--hidden", "hidden_sizes", "10,,5"), ("--augment", "augment", "shift=9"), ("--pause-ms", "pause_ms", "60000"),
    ("--batch-size", "batch_size", "1.5"), ("--cost", "cost", "hinge")])
def test_the_api_refuses_what_the_cli_refuses(option, field, text):
    from digitnet.serve.api import ApiError
    from digitnet.serve.training import config_from_json

    cli = run("train", option, text, "--epochs", "1", expect=2) if option != "--epochs" else run("train", option, text,
                                                                                                  expect=2)
    with pytest.raises(ApiError) as caught:
        config_from_json({"settings": {field: text}})
    assert caught.value.status == 400 and option in caught.value.message
    if f"{option} must" in cli.output:  # refused by TrainConfig.problems(), not by click's own type: same words
        assert caught.value.message in " ".join(cli.output.split())
