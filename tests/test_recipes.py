"""Every recipe the benchmarks run (scripts/bench_recipes.py, docs/results.md) is a `digitnet train` command
that the CLI accepts as typed, with the settings it names: a recipe that drifted from the options would
otherwise fail only after a make bench-record of an hour."""

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from digitnet import runs
from digitnet.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from bench_recipes import RECIPES  # noqa: E402


class _Accepted(Exception):
    pass


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_benchmarked_recipe_is_a_train_command_the_cli_accepts(name, monkeypatch, tmp_path):
    seen = {}

    def prepare(config, *args, **kwargs):
        seen["config"] = config
        raise _Accepted

    monkeypatch.setattr(runs, "prepare", prepare)
    result = CliRunner().invoke(main, ["train", *RECIPES[name], "--out", str(tmp_path / "m.npz")])
    assert isinstance(result.exception, _Accepted), result.output
    config = seen["config"]
    assert config.problems() == []
    flags = RECIPES[name]
    if "--eta" in flags:
        assert config.learning_rate == float(flags[flags.index("--eta") + 1])
    if "--batch-size" in flags:
        assert config.batch_size == int(flags[flags.index("--batch-size") + 1])


def test_the_record_recipe_is_the_one_the_results_page_gives():
    page = (Path(__file__).resolve().parents[1] / "docs" / "results.md").read_text()
    command = " ".join(RECIPES["record"])
    assert command in " ".join(page.replace("\\\n", " ").split())
