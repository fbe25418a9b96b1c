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
