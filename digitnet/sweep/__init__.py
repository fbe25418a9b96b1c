"""`digitnet sweep`: a hyperparameter search over the `train` settings, run by Optuna.

One room, one job per module:

    space.py     `--param eta=log:0.1..5` and `--set cost=cross-entropy`: parsing, checking
                 against TrainConfig, and asking an Optuna trial for values
    storage.py   the study's database (SQLite in the output folder, or any database URL)
    study.py     the study: created or joined by name, with its definition stored in it
    liveness.py  the book-keeping that makes `--trials` exact across processes and machines
                 (interrupted trials are failed and their budget re-used)
    pruners.py   which trials stop early
    samplers.py  which settings a trial tries
    start.py     a sweep's start-up: its storage opened, --out claimed, the study created or joined
    worker.py    one worker process: loads the data once, then trains trial after trial with
                 the same Trainer as `digitnet train`, reporting each epoch to the pruner
    launch.py    starts `--jobs` worker processes and follows them with a progress bar
    results.py   the ranked table and results.csv, from the stored study alone
    page.py      the pictures and index.html (from the template digitnet/templates/sweep.html)

Optuna does the searching (TPE sampler, median pruner, or pruners.HalvingPruner: Optuna's
successive-halving rule asked again at every epoch, so parallel trials prune alike) and
keeps the study in a relational database, so any number of processes on any number
of machines can share one study.  Nothing here is a scheduler: every worker asks
the database for its next trial.
"""


class SweepError(Exception):
    """A sweep that cannot be started or shown (a database or file problem), in one message for the user."""


class SweepUsageError(SweepError):
    """A mistake on the command line: a search space, setting or --trials the sweep cannot use."""
