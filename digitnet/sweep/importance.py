"""How much each searched setting matters: its share of the variation in accuracy among the complete trials.

An analysis of variance of the trials: the best validation accuracy is fitted by
least squares on every searched setting at once (a list's values as groups, a
range split at its thirds into RANGE_GROUPS groups of about as many trials).  A
setting's share is how much worse the fit gets without it, less what chance
alone would explain with as many groups (as omega squared corrects), so a setting
that does nothing comes out near 0 rather than at a random height.  What the
settings explain only together (they moved together in the trials the sampler
chose) is one more share, ``SHARED``: the data cannot say which of them it was.

Optuna's default evaluator (PED-ANOVA) compares the top tenth of the trials with
the rest.  With the tens of trials a class runs that tenth is one or two trials:
on made-up studies of 6 to 10 trials where the hidden size alone decided, it
ranked eta first in all 20 (``tests/test_sweep_results.py`` keeps this one right).
With too few complete trials nothing is drawn; the page says why in words.
"""

from __future__ import annotations

import numpy as np

from digitnet.sweep.results import Row, format_value
from digitnet.sweep.space import Param

# Fewer complete trials than this, and any importance chart would be noise drawn as a finding; and at
# least this many trials more than the quantities the fit estimates, to measure the trials' noise with.
MIN_TRIALS = 8
MIN_NOISE_TRIALS = 4
RANGE_GROUPS = 3
SHARED = "shared by several"
SHOWN_FROM = 0.005  # a share that rounds to 0.00 is not drawn as a bar of its own


def importances(ranked: list[Row], params: list[Param]) -> tuple[dict[str, float], list[str]]:
    """Each searched setting's share (largest first, then ``SHARED``), and in words what could not be told
    and why (too few trials, a setting that never changed).  No shares: there is nothing to draw."""
    complete = [r for r in ranked if r.state == "complete" and r.best is not None
                and all(p.name in r.params for p in params)]
    if len(complete) < MIN_TRIALS:
        return {}, [f"parameter importances need at least {MIN_TRIALS} complete trials and there "
                    f"{'is' if len(complete) == 1 else 'are'} {len(complete)}: too few to tell which setting "
                    "matters, so importance.png is left out"]
    columns, notes = {}, []
    for param in params:
        distinct = {r.params[param.name] for r in complete}
        if len(distinct) < 2:
            notes.append(f"{param.name} had one value ({format_value(distinct.pop())}) in every complete trial, "
                         "so its importance cannot be told; it is left out of importance.png")
            continue
        columns[param.name] = _indicators([r.params[param.name] for r in complete], param.kind == "choice")
    needed = 1 + sum(c.shape[1] for c in columns.values()) + MIN_NOISE_TRIALS
    if columns and len(complete) < needed:
        notes.append(f"parameter importances for these settings need at least {needed} complete trials and "
                     f"there are {len(complete)}: importance.png is left out")
        return {}, notes
    shares, together = variance_shares(columns, [r.best for r in complete]) if columns else ({}, 0.0)
    if shares and max(shares.values()) < SHOWN_FROM and together < SHOWN_FROM:
        notes.append(f"no searched setting explains more of the variation in accuracy among the {len(complete)} "
                     "complete trials than chance would: importance.png is left out")
        return {}, notes
    values = dict(sorted(shares.items(), key=lambda item: -item[1]))
    if together >= SHOWN_FROM:
        values[SHARED] = together
    return values, notes


def variance_shares(columns: dict[str, np.ndarray], accuracy: list[float]) -> tuple[dict[str, float], float]:
    """Each setting's share of the variance of ``accuracy`` beyond the other settings, chance removed
    (at least 0); and the share they explain together that none explains alone."""
    y = np.asarray(accuracy, dtype=float)
    total = float(np.sum((y - y.mean()) ** 2))
    full, rank = _residual(list(columns.values()), y)
    noise_df = len(y) - rank
    if total == 0 or noise_df < 1:
        return dict.fromkeys(columns, 0.0), 0.0
    noise = full / noise_df  # the variance a group explains by chance alone, per degree of freedom
    shares = {}
    for name in columns:
        without, rank_without = _residual([c for other, c in columns.items() if other != name], y)
        shares[name] = max(0.0, (without - full - (rank - rank_without) * noise) / total)
    explained = max(0.0, 1 - noise * (len(y) - 1) / total)  # the whole fit's share, chance removed
    return shares, max(0.0, explained - sum(shares.values()))


def _indicators(settings: list, grouped: bool) -> np.ndarray:
    """One 0/1 column per group of trials but the first: a list's values are the groups; a range is
    split at its thirds into RANGE_GROUPS groups of about as many trials."""
    if grouped:
        keys = np.unique(np.array([str(v) for v in settings]), return_inverse=True)[1]
    else:
        x = np.asarray(settings, dtype=float)
        keys = np.searchsorted(np.quantile(x, np.arange(1, RANGE_GROUPS) / RANGE_GROUPS), x, side="right")
    return np.stack([keys == k for k in np.unique(keys)[1:]], axis=1).astype(float)


def _residual(columns: list[np.ndarray], y: np.ndarray) -> tuple[float, int]:
    """The residual sum of squares of ``y`` fitted by least squares on the columns and a constant, and
    how many independent quantities the fit estimated."""
    x = np.column_stack([np.ones(len(y)), *columns])
    coefficients, *_ = np.linalg.lstsq(x, y, rcond=None)
    residual = y - x @ coefficients
    return float(residual @ residual), int(np.linalg.matrix_rank(x))
