"""The sweep's pruner: Optuna's successive halving, asked again at every epoch so that --jobs 2 prunes like --jobs 1."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from digitnet.sweep.pruners import HalvingPruner
from digitnet.sweep.study import quiet_optuna

EPOCHS = 10


def curves(seed: int, trials: int = 30) -> list[list[float]]:
    """Learning curves of made-up trials: each rises towards its own level, with noise."""
    rng = np.random.default_rng(seed)
    levels = rng.uniform(0.5, 0.98, trials)
    rates = rng.uniform(0.2, 1.5, trials)
    return [[float(level * (1 - math.exp(-rate * epoch)) + rng.normal(0, 0.01)) for epoch in range(1, EPOCHS + 1)]
            for level, rate in zip(levels, rates)]


def one_after_another(pruner, trial_curves, every: int = 1, direction: str = "maximize") -> list[int]:
    """Run the trials one at a time (like --jobs 1), reporting every ``every``-th epoch; return the
    epochs each one trained."""
    quiet_optuna()
    study = optuna.create_study(direction=direction, pruner=pruner)
    trained = []
    for curve in trial_curves:
        trial = study.ask()
        for epoch, value in enumerate(curve, 1):
            if epoch % every:
                continue
            trial.report(value, epoch)
            if epoch < EPOCHS and trial.should_prune():
                study.tell(trial, state=TrialState.PRUNED)
                break
        else:
            study.tell(trial, max(curve))
        trained.append(epoch)
    return trained


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("every, direction", [(1, "maximize"), (2, "maximize"), (1, "minimize")])
def test_one_worker_gets_exactly_optunas_successive_halving(seed, every, direction):
    trial_curves = curves(seed)
    ours = one_after_another(HalvingPruner(min_resource=1, reduction_factor=3), trial_curves, every, direction)
    optunas = one_after_another(optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3),
                                trial_curves, every, direction)
    assert ours == optunas
    assert len(set(ours)) > 1  # the check means something: some trials were pruned early, some ran longer


def side_by_side(pruner, late: int) -> bool:
    """Three trials run at once.  Trial ``late`` reaches epoch 1 first, alone, with 0.80; then the
    other two reach it with 0.90; then trial ``late`` finishes its epoch 2.  Is it pruned then?"""
    quiet_optuna()
    study = optuna.create_study(direction="maximize", pruner=pruner)
    trials = [study.ask() for _ in range(3)]
    trials[late].report(0.80, 1)
    assert not trials[late].should_prune()  # alone at the rung: it goes on
    for trial in trials:
        if trial is not trials[late]:
            trial.report(0.90, 1)
    trials[late].report(0.85, 2)
    return trials[late].should_prune()


def test_a_trial_that_passed_a_rung_early_stops_once_better_predecessors_reach_it():
    # With one worker, trial 2 would have met trials 0 and 1 at the rung, and stopped there.
    assert side_by_side(HalvingPruner(min_resource=1, reduction_factor=3), late=2)
    # Optuna's pruner decides once, at the rung, so it lets the trial train on.
    assert not side_by_side(optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3), late=2)


def test_trials_numbered_after_it_do_not_count_as_with_one_worker_they_come_later():
    assert not side_by_side(HalvingPruner(min_resource=1, reduction_factor=3), late=0)


def test_nan_is_pruned_and_nothing_is_pruned_before_the_first_rung():
    quiet_optuna()
    study = optuna.create_study(direction="maximize", pruner=HalvingPruner(min_resource=2, reduction_factor=3))
    trial = study.ask()
    trial.report(0.1, 1)
    assert not trial.should_prune()
    trial.report(float("nan"), 2)
    assert trial.should_prune()


def test_the_rungs():
    assert HalvingPruner(1, 3).rungs(10) == [1, 3, 9]
    assert HalvingPruner(2, 2).rungs(9) == [2, 4, 8]
    assert HalvingPruner(1, 3).rungs(0) == []
