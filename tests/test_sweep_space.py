"""The search space: `--param NAME=SPEC` and `--set NAME=VALUE`, checked against TrainConfig."""

from __future__ import annotations

import optuna
import pytest

from digitnet.config import TrainConfig
from digitnet.sweep import SweepError
from digitnet.sweep.space import DEFAULT_PARAMS, Param, SearchSpace, field_for, parse_param, parse_setting


def space(*params, sets=(), epochs=10, seed=0):
    return SearchSpace.parse(params, sets, epochs, seed)


def test_the_forms_of_a_param():
    assert parse_param("eta=log:0.1..5") == Param("learning_rate", "float", 0.1, 5.0, log=True)
    assert parse_param("l2=0..5") == Param("l2", "float", 0.0, 5.0)
    assert parse_param("patience=0..2") == Param("patience", "int", 0, 2)
    assert parse_param("batch-size=log:5..50") == Param("batch_size", "int", 5, 50, log=True)
    assert parse_param("hidden=30,100") == Param("hidden_sizes", "choice", choices=(30, 100))
    assert parse_param("hidden=30,100-30") == Param("hidden_sizes", "choice", choices=("30", "100-30"))
    assert parse_param("cost=quadratic,cross-entropy").choices == ("quadratic", "cross-entropy")
    assert parse_param("eta=0.5") == ("learning_rate", 0.5)  # one value: fixed, like --set


def test_option_names_and_field_names_are_both_accepted():
    assert field_for("eta") == field_for("--eta") == field_for("learning_rate") == "learning_rate"
    assert field_for("batch-size") == field_for("batch_size") == "batch_size"
    assert field_for("patience-eta") == "eta_patience"
    # Any TrainConfig field, so settings added to training can be swept without touching the sweep.
    assert field_for("eta-min-factor") == "eta_min_factor"


def test_specs_are_typed_back_as_given():
    s = space("eta=log:0.1..5", "hidden=30,100-30", sets=["init=scaled"])
    assert [p.spec for p in s.params] == ["eta=log:0.1..5", "hidden=30,100-30"]
    assert s.describe() == "--param eta=log:0.1..5 --param hidden=30,100-30 --epochs 10 --seed 0 --set init=scaled"
    assert SearchSpace.from_dict(s.to_dict()).to_dict() == s.to_dict()


def test_defaults_are_the_textbook_questions():
    assert [p.spec for p in space().params] == list(DEFAULT_PARAMS)


def test_set_fixes_a_default_question_and_the_others_are_still_searched():
    s = space(sets=["eta=3", "cost=cross-entropy"])
    assert [p.spec for p in s.params] == ["l2=0..5", "hidden=30,100"]
    assert s.base().learning_rate == 3 and s.base().cost == "cross-entropy"
    with pytest.raises(SweepError, match="given twice"):  # but a typed --param and --set still clash
        space("eta=log:0.1..5", sets=["eta=3"])


def test_a_trial_gets_a_train_config():
    s = space("eta=log:0.1..5", "hidden=30,100-30", "cost=quadratic,cross-entropy",
              sets=["init=scaled", "batch-size=20"], epochs=3, seed=7)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(10):
        config = s.suggest(study.ask())
        assert isinstance(config, TrainConfig) and not config.problems()
        assert 0.1 <= config.learning_rate <= 5
        assert config.hidden_sizes in ((30,), (100, 30))
        assert (config.init, config.batch_size, config.epochs, config.seed) == ("scaled", 20, 3, 7)


def test_finite_spaces_know_their_size():
    assert space("hidden=30,100", "cost=quadratic,cross-entropy").size() == 4
    assert space("hidden=30,100", "eta=1..2").size() is None


@pytest.mark.parametrize("params, sets, message", [
    (["colour=1..2"], [], "unknown setting 'colour'"),
    (["eta"], [], "expected NAME=SPEC"),
    (["--eta=1..2", "eta=3"], [], "a setting is given twice"),
    (["eta=5..1"], [], "the lower first"),
    (["eta=log:0..5"], [], "positive lower end"),
    (["cost=1..2"], [], "takes one of its values, not a range"),
    (["eta=log:0.5"], [], "log: goes with a range"),
    (["hidden=30,abc"], [], "--param hidden=30,abc: --hidden: 'abc' is not a whole number"),
    (["hidden=0,5"], [], "--hidden: hidden layer sizes must be at least 1, got 0"),
    (["patience=0..1.5"], [], "--param patience=0..1.5: --patience: '1.5' is not a whole number"),
    (["batch-size=0..9"], [], "--param batch-size=0..9: --batch-size must be at least 1, got 0"),
    (["seed=0,1"], [], "seed cannot be searched"),
    (["epochs=5..10"], [], "epochs cannot be searched"),
    (["eta=-1..2"], [], "--param eta=-1..2: --eta must be above 0, got -1"),
    (["cost=quadratic,squared"], [], "--param cost=quadratic,squared: --cost must be one of quadratic"),
    (["eta=1..2", "eta=3..4"], [], "a setting is given twice: --param eta=1..2 and --param eta=3..4"),
    (["eta=1..2"], ["eta=3"], "--set eta=3 and --param eta=1..2"),
    ([], ["seed=3"], "use --seed instead"),
    ([], ["validation-size=0"], "--validation-size must be at least 1"),
    ([], ["batch-size"], "expected NAME=VALUE"),
    ([], ["cost=bar"], "--set cost=bar: --cost must be one of"),
    (["cost=foo"], [], "--param cost=foo: --cost must be one of"),
])
def test_bad_spaces_get_one_clear_message(params, sets, message):
    with pytest.raises(SweepError, match=None) as error:
        space(*params, sets=sets)
    assert message in str(error.value)


def test_batch_sizes_are_checked_against_the_data():
    s = space("batch-size=10,5000", sets=["validation-size=100"])
    s.check()
    with pytest.raises(SweepError, match="--batch-size 5000 is larger than the 500 training images"):
        s.check(training_file_size=600)


def test_set_takes_train_syntax_for_layers():
    assert parse_setting("hidden=100,30") == ("hidden_sizes", (100, 30))
    assert parse_setting("hidden=100-30") == ("hidden_sizes", (100, 30))


def test_watching_settings_are_not_searched_and_stay_off_in_a_trial():
    space = SearchSpace.parse([], [], epochs=3, seed=0)
    assert {p.field for p in space.params}.isdisjoint({"peek_every", "pause_ms"})
    assert (space.base().peek_every, space.base().pause_ms) == (0, 0)
    assert "peek" not in space.describe() and "pause" not in space.describe()
