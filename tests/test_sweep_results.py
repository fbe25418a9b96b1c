"""The ranked rows, table, CSV and page, from a study made by hand (no training)."""

from __future__ import annotations

import csv
import io

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from digitnet.sweep import page, results
from digitnet.sweep.space import SearchSpace
from digitnet.sweep.study import DEFINITION_KEY, Definition, quiet_optuna

SPACE = SearchSpace.parse(["eta=log:0.1..5", "cost=quadratic,cross-entropy"], [], 3, 0)
DISTRIBUTIONS = {"eta": FloatDistribution(0.1, 5, log=True), "cost": CategoricalDistribution(SPACE.params[1].choices)}


def made_study():
    quiet_optuna()
    study = optuna.create_study(direction="maximize")
    study.set_user_attr(DEFINITION_KEY, Definition(SPACE, 4, "median").to_dict())
    for params, curve, state, stopped in [
        ({"eta": 0.5, "cost": "cross-entropy"}, [0.90, 0.95, 0.96], TrialState.COMPLETE, ""),
        ({"eta": 3.0, "cost": "quadratic"}, [0.85, 0.97, 0.93], TrialState.COMPLETE, ""),
        ({"eta": 0.1, "cost": "quadratic"}, [0.40], TrialState.PRUNED, "pruned after epoch 1"),
        # Text from a shared database is untrusted: escaped in the page.
        ({"eta": 1.0, "cost": "quadratic"}, [0.5, 0.6], TrialState.PRUNED, "<script>alert(1)</script>"),
    ]:
        study.add_trial(create_trial(
            params=params, distributions=DISTRIBUTIONS, state=state,
            value=max(curve) if state == TrialState.COMPLETE else None,
            intermediate_values=dict(enumerate(curve, 1)),
            user_attrs={"stopped": stopped, "checkpoint": "trial-000.npz", "worker": {"host": "here", "pid": 1}}))
    return study


def test_rows_rank_by_best_validation_accuracy_with_its_epoch():
    ranked = results.rows(made_study())
    assert [(r.rank, r.number, r.best, r.best_epoch, r.epochs) for r in ranked] == [
        (1, 1, 0.97, 2, 3), (2, 0, 0.96, 3, 3), (3, 3, 0.6, 2, 2), (4, 2, 0.40, 1, 1)]
    assert results.best_row(ranked).number == 1
    assert [r.status for r in ranked][-1] == "pruned after epoch 1"


def test_a_pruned_trial_is_never_the_best():
    study = made_study()
    study.add_trial(create_trial(params={"eta": 2.0, "cost": "quadratic"}, distributions=DISTRIBUTIONS,
                                 state=TrialState.PRUNED, intermediate_values={1: 0.99}))
    ranked = results.rows(study)
    assert ranked[0].state == "pruned" and results.best_row(ranked).number == 1


def test_table_and_csv():
    study = made_study()
    ranked = results.rows(study)
    text = results.table(ranked, ["eta", "cost"])
    assert text.splitlines()[0].split() == ["rank", "trial", "eta", "cost", "best", "val", "at", "epoch", "epochs",
                                            "status", "time"]
    assert "97.00%" in text and "pruned after epoch 1" in text
    rows = list(csv.DictReader(io.StringIO(results.to_csv(ranked, ["eta", "cost"]))))
    assert [r["trial"] for r in rows] == ["1", "0", "3", "2"]
    assert rows[0]["best_validation_accuracy"] == "0.970000" and rows[0]["host"] == "here"
    assert results.summary(study, ranked).startswith("4 of 4 trials done: 2 complete, 2 pruned")


def test_page_pictures_and_escaping(tmp_path):
    study = made_study()
    ranked = results.rows(study)
    files = page.write_page(study, ranked, SPACE.params, tmp_path, study_name="<b>study</b>",
                            summary=[("storage", "sqlite:///x")], evaluate="digitnet evaluate trial-001.npz")
    names = {f.name for f in files}
    assert {"history.png", "params.png", "curves.png", "index.html"} <= names
    html = (tmp_path / "index.html").read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;study&lt;/b&gt;" in html
    assert '<tr class="best">' in html and '<img src="curves.png"' in html


def test_a_page_before_any_trial_finished(tmp_path):
    quiet_optuna()
    study = optuna.create_study(direction="maximize")
    study.set_user_attr(DEFINITION_KEY, Definition(SPACE, 4, "median").to_dict())
    (tmp_path / "curves.png").write_bytes(b"stale")
    files = page.write_page(study, [], SPACE.params, tmp_path, study_name="s", summary=[], evaluate="")
    assert [f.name for f in files] == ["index.html"]
    assert not (tmp_path / "curves.png").exists(), "a picture of an earlier state would mislead"
    assert "no finished trials yet" in (tmp_path / "index.html").read_text()


HIDDEN_SPACE = SearchSpace.parse(["eta=log:0.1..5", "hidden=30,100", "cost=quadratic,cross-entropy"], [], 3, 0)
HIDDEN_DISTRIBUTIONS = dict(DISTRIBUTIONS, hidden=CategoricalDistribution((30, 100)))


def hidden_decides(n: int, seed: int = 0, pruned: int = 0, hidden=(30, 100)):
    """A study of ``n`` complete trials (and ``pruned`` pruned ones) in which the hidden size alone decides:
    100 hidden units reach about 95%, 30 about 90%, whatever eta and the cost."""
    import numpy as np

    quiet_optuna()
    rng = np.random.default_rng(seed)
    study = optuna.create_study(direction="maximize")
    study.set_user_attr(DEFINITION_KEY, Definition(HIDDEN_SPACE, n + pruned, "median").to_dict())
    for i in range(n + pruned):
        params = {"eta": float(np.exp(rng.uniform(np.log(0.1), np.log(5)))), "hidden": hidden[i % len(hidden)],
                  "cost": str(rng.choice(["quadratic", "cross-entropy"]))}
        top = (0.95 if params["hidden"] == 100 else 0.90) + rng.normal(0, 0.004)
        state = TrialState.PRUNED if i >= n else TrialState.COMPLETE
        curve = [top - 0.04, top] if state == TrialState.COMPLETE else [0.5]
        study.add_trial(create_trial(params=params, distributions=HIDDEN_DISTRIBUTIONS, state=state,
                                     value=max(curve) if state == TrialState.COMPLETE else None,
                                     intermediate_values=dict(enumerate(curve, 1))))
    return study


def test_too_few_complete_trials_get_words_not_an_importance_chart(tmp_path):
    """4 complete trials, the top two sharing hidden 100: Optuna drew hidden 0.00 and cost 0.00; the page now
    says there are too few trials to tell, and leaves importance.png out."""
    study = hidden_decides(4, pruned=3)
    ranked = results.rows(study)
    assert {r.params["hidden"] for r in ranked[:2]} == {100}
    (tmp_path / "importance.png").write_bytes(b"from an earlier state")
    files = page.write_page(study, ranked, HIDDEN_SPACE.params, tmp_path, study_name="s", summary=[], evaluate="")
    assert "importance.png" not in {f.name for f in files} and not (tmp_path / "importance.png").exists()
    html = (tmp_path / "index.html").read_text()
    assert ("parameter importances need at least 8 complete trials and there are 4: too few to tell which "
            "setting matters, so importance.png is left out") in html


def test_the_setting_that_decided_comes_first_with_the_tens_of_trials_a_class_runs(tmp_path):
    """Optuna's PED-ANOVA put eta first in every one of these studies; the page's analysis of variance
    finds the hidden size, and gives the settings that did nothing next to nothing."""
    from digitnet.sweep import importance

    for seed in range(10):
        values, notes = importance.importances(results.rows(hidden_decides(10, seed)), HIDDEN_SPACE.params)
        assert next(iter(values)) == "hidden" and notes == [], (seed, values)
        assert max(values["cost"], values["eta"]) < 0.05 and values["hidden"] > 0.3, (seed, values)
    study = hidden_decides(10, pruned=2)
    files = page.write_page(study, results.rows(study), HIDDEN_SPACE.params, tmp_path, study_name="s", summary=[],
                            evaluate="")
    assert "importance.png" in {f.name for f in files}


def test_a_setting_that_never_changed_is_named_and_left_out():
    from digitnet.sweep import importance

    values, notes = importance.importances(results.rows(hidden_decides(12, hidden=(100,))), HIDDEN_SPACE.params)
    assert "hidden" not in values and set(values) <= {"eta", "cost", importance.SHARED}
    assert notes == ["hidden had one value (100) in every complete trial, so its importance cannot be told; "
                     "it is left out of importance.png",
                     "no searched setting explains more of the variation in accuracy among the 12 complete "
                     "trials than chance would: importance.png is left out"]  # eta and cost did nothing


def test_the_curves_legend_lists_only_the_kinds_of_trial_there_are():
    def legend(study):
        ranked = results.rows(study)
        figure = page.plot_curves(ranked, results.best_row(ranked))
        return [t.get_text() for t in figure.axes[0].get_legend().get_texts()]

    assert legend(hidden_decides(4)) == ["best: trial 1", "complete"]
    assert legend(made_study()) == ["best: trial 1", "complete", "pruned (x: where it stopped)"]
