"""TrainConfig: the settings table without numpy, its checks, and how a checkpoint's copy is read back."""

import subprocess
import sys

import pytest

from digitnet import __version__, checkpoint, runs
from digitnet.config import COST_NAMES, INIT_NAMES, ConfigError, TrainConfig
from digitnet.data import load_mnist
from digitnet.network import COSTS, INITIALISERS
from digitnet.training import Trainer


def small_config(**overrides):
    values = dict(hidden_sizes=(12,), epochs=3, batch_size=10, learning_rate=3.0, seed=0, validation_size=100)
    values.update(overrides)
    return TrainConfig(**values)


def test_importing_the_settings_costs_neither_numpy_nor_click():
    code = "import sys, digitnet.config; print(sorted({'numpy', 'click'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "[]"


def test_the_choices_are_the_networks_costs_and_initialisers():
    assert COST_NAMES == tuple(COSTS) and INIT_NAMES == tuple(INITIALISERS)


@pytest.mark.parametrize("overrides, message", [
    (dict(epochs=0), "--epochs must be at least 1, got 0"),
    (dict(batch_size=0), "--batch-size must be at least 1, got 0"),
    (dict(hidden_sizes=(0,)), "--hidden: every value must be at least 1, got 0"),
    (dict(hidden_sizes=()), "--hidden must be one or more whole numbers"),
    (dict(learning_rate=-1.0), "--eta must be above 0, got -1"),
    (dict(learning_rate=float("nan")), "--eta must be a finite number, got nan"),
    (dict(l2=-1.0), "--l2 must be at least 0, got -1"),
    (dict(seed=-1), "--seed must be at least 0, got -1"),
    (dict(patience=-1), "--patience must be at least 0, got -1"),
    (dict(eta_patience=-2), "--patience-eta must be at least 0, got -2"),
    (dict(eta_decay=1.0), "--eta-decay must be above 0 and below 1, got 1"),
    (dict(augment=5), "--augment: shift must be a whole number of pixels from 0 to 4, got '5'"),
    (dict(augment="elastic=34"), "--augment: elastic takes ALPHA:SIGMA"),
    (dict(cost="hinge"), "--cost must be one of quadratic, cross-entropy, log-likelihood, got 'hinge'"),
    (dict(dropout=1.0), "--dropout must be at least 0 and below 1, got 1"),
    (dict(dropout=-0.1), "--dropout must be at least 0 and below 1, got -0.1"),
    (dict(l1=-1.0), "--l1 must be at least 0, got -1"),
    (dict(momentum=1.0), "--momentum must be at least 0 and below 1, got 1"),
    (dict(momentum=float("nan")), "--momentum must be a finite number"),
    (dict(eta_epoch_factor=1.5), "--eta-epoch-factor must be above 0 and at most 1, got 1.5"),
    (dict(batch_size="10"), "--batch-size must be a whole number, got '10'"),
    (dict(patience=3, validation_size=0), "--validation-size above 0"),
    (dict(peek_every=-1), "--peek-every must be at least 0, got -1"),
    (dict(peek_every=10), "--peek-every must be 0 (off) or at least 100, got 10"),
    (dict(peek_every=5000, validation_size=0), "--peek-every needs a validation split"),
    (dict(pause_ms=-5), "--pause-ms must be at least 0 and at most 10000, got -5"),
    (dict(pause_ms=60_000), "--pause-ms must be at least 0 and at most 10000, got 60000"),
])
def test_config_problems(overrides, message):
    problems = small_config(**overrides).problems()
    assert problems and message in problems[0], problems


def test_batch_larger_than_data_is_a_problem():
    assert small_config(batch_size=600).problems(training_file_size=600) == [
        "--batch-size 600 is larger than the 500 training images"]
    assert "--validation-size 60000 leaves no training images" in \
        small_config(validation_size=60000).problems(training_file_size=60000)[0]
    assert small_config(batch_size=500).problems(training_file_size=600) == []


def test_old_configs_with_a_shift_in_pixels_still_load():
    assert TrainConfig.from_dict({"augment": 2}).augment == "shift=2"
    assert TrainConfig.from_dict({"augment": 0}).augment == ""
    assert TrainConfig.from_dict({}).augment == ""



def test_a_setting_this_digitnet_does_not_know_is_refused_naming_it_and_the_writer():
    with pytest.raises(ConfigError) as refused:
        TrainConfig.from_dict({"hidden_sizes": [12], "lookahead_steps": 3}, written_by="0.9.0")
    message = str(refused.value)
    assert "'lookahead_steps'" in message and "digitnet 0.9.0" in message and f"digitnet {__version__}" in message
    assert "\n" not in message
    with pytest.raises(ConfigError, match="'a', 'b'.*version not recorded"):
        TrainConfig.from_dict({"a": 1, "b": 2})
    with pytest.raises(ConfigError, match="not an object"):
        TrainConfig.from_dict([1, 2])


def test_to_dict_reads_back_whole():
    config = small_config(augment="elastic=34:4", momentum=0.5, eta_min_factor=16.0)
    assert TrainConfig.from_dict(config.to_dict()) == config


def test_resuming_a_checkpoint_with_an_unknown_setting_is_a_one_line_resume_error(synthetic_data_dir, tmp_path):
    data = load_mnist(synthetic_data_dir, validation_size=100)
    trainer = Trainer(data, small_config(epochs=1))
    list(trainer.epochs())
    saved = checkpoint.load(runs.save_run(tmp_path / "m.npz", trainer))
    newer = dict(saved.metadata, versions=dict(saved.metadata["versions"], digitnet="9.0.0"))
    newer["hyperparameters"] = dict(newer["hyperparameters"], lookahead_steps=3)
    checkpoint.save(tmp_path / "newer.npz", saved.network, newer, saved.best_network)
    with pytest.raises(runs.ResumeError) as refused:
        runs.prepare(TrainConfig(), None, lambda: data, resume_from=tmp_path / "newer.npz",
                     requested={"epochs": 2})
    assert str(refused.value) == (f"{tmp_path / 'newer.npz'}: unknown setting 'lookahead_steps' "
                                  f"(written by digitnet 9.0.0; this is digitnet {__version__})")


def test_peeks_and_pauses_are_off_by_default_documented_and_may_change_on_resume():
    from digitnet.settings import settings_of

    from helpers import run_cli

    config, specs = TrainConfig(), settings_of(TrainConfig)
    assert (config.peek_every, config.pause_ms) == (0, 0)
    assert specs["peek_every"].resume_may_change and specs["pause_ms"].resume_may_change
    shown = " ".join(run_cli("train", "--help").output.split())
    assert "--peek-every IMAGES" in shown and "--pause-ms MS" in shown
    assert "1,000 validation images" in shown and "Ctrl-C still stops at once" in shown
    assert "(at least 100), to show the early jump (same weights; 0: off). [default: 0; x>=0]" in shown
    assert "stops at once. [default: 0; 0<=x<=10000]" in shown
