"""The sweep's samplers: the settings each trial tries (TPE seeded per trial, or every setting once)."""

from __future__ import annotations

import numpy as np
import optuna

from digitnet.sweep.space import SearchSpace


def make_sampler(space: SearchSpace, seed: int):
    """TPE, seeded per trial; a space of lists only is tried exhaustively, each setting once."""
    if space.size() is not None:
        return optuna.samplers.BruteForceSampler(seed=seed)
    return TrialSeededTPE(seed)


def _trial_seed(seed: int, number: int) -> int:
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


class TrialSeededTPE(optuna.samplers.BaseSampler):
    """Optuna's TPE sampler, with its random numbers for trial n drawn from a seed made of
    (--seed, n).  One seed shared by every worker would make two workers draw the same
    first settings; a seed per worker would make `--jobs 1` runs differ from run to run.
    A fresh TPESampler per trial loses nothing: TPE reads the history from the study."""

    def __init__(self, seed: int):
        self._seed = seed
        self._current = optuna.samplers.TPESampler(seed=seed)

    def before_trial(self, study, trial):
        self._current = optuna.samplers.TPESampler(seed=_trial_seed(self._seed, trial.number))
        self._current.before_trial(study, trial)

    def infer_relative_search_space(self, study, trial):
        return self._current.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._current.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._current.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values):
        self._current.after_trial(study, trial, state, values)

    def reseed_rng(self):
        self._current.reseed_rng()
