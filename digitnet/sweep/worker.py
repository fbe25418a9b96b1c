"""One sweep worker: a process that trains trial after trial until the study has its `--trials`.

Started by `digitnet sweep` as `python -m digitnet.sweep.worker`, with its
WorkerSpec as JSON on stdin (storage URL, study name, output and data folders).
Separate processes, not threads: training runs BLAS on one thread (training.single_threaded_blas),
so two processes are what keeps two cores busy.  The data are loaded once per
process.  A trial is what `digitnet train` does (the same Trainer, and the same
run policy, ``runs.run``) with the trial's settings and the sweep's seed, so its
weights are exactly those of `digitnet train` with the same options; its
checkpoint, written after every epoch, is `trial-NNN.npz` in the output folder.  The worker prints nothing but
errors: the launching process follows the study in the database.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import optuna

from digitnet import runs, training
from digitnet.data import load_mnist
from digitnet.sweep import SweepError
from digitnet.sweep import study as studies
from digitnet.sweep.liveness import counts, fail_interrupted, is_surplus, worker_identity
from digitnet.sweep.pruners import make_pruner
from digitnet.sweep.samplers import make_sampler
from digitnet.sweep.storage import open_storage

# How often an idle worker looks again while the last trials run elsewhere.
POLL_SECONDS = 1.0
PR_SET_PDEATHSIG = 1  # prctl(2): the signal this process gets when its parent dies


@dataclass
class WorkerSpec:
    storage: str
    study: str
    out_dir: str
    data_dir: str | None
    dataset: str  # the data folder as the user named it, recorded in each checkpoint
    launcher: int = 0  # the process id of the `digitnet sweep` that started this worker


class SurplusTrial(Exception):
    """Enough trials are already running or done: this one gives way before training."""


class StopRequested(Exception):
    """Ctrl-C or SIGTERM: the running trial is failed after its current epoch, so its budget is re-used."""


class StopSignal:
    """Turn SIGINT and SIGTERM into a request that the worker honours between epochs.

    A KeyboardInterrupt could land anywhere, e.g. between Optuna creating a
    trial in the database and the trial's first line, leaving a RUNNING trial
    that nothing marks failed; a flag read at safe points cannot.
    """

    def __init__(self):
        self.requested = False
        for number in (signal.SIGINT, signal.SIGTERM):
            # A signal ignored by the launcher (a script's background job ignores Ctrl-C) stays ignored
            # here too, so the workers never stop on a signal the launcher does not see.
            if signal.getsignal(number) is not signal.SIG_IGN:
                signal.signal(number, self._request)

    def _request(self, number, frame):
        self.requested = True

    def check(self) -> None:
        if self.requested:
            raise StopRequested()

    def with_launcher(self, launcher: int) -> None:
        """Stop, like on SIGTERM, when the launching `digitnet sweep` dies (even by kill -9): a worker
        nobody can see should not train on.  Linux's PR_SET_PDEATHSIG; elsewhere the launcher's own
        Ctrl-C and SIGTERM handling still stop the workers."""
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if launcher and os.getppid() != launcher:  # it died before the line above took effect
            self.requested = True


def checkpoint_name(number: int) -> str:
    return f"trial-{number:03d}.npz"


class Objective:
    """What Optuna calls for each trial: train, report every epoch's validation accuracy, obey the pruner.

    Returns the best validation accuracy.  A trial that diverges is pruned (it
    counts as a tried setting, and TPE learns to avoid its neighbourhood).
    """

    def __init__(self, study, definition: studies.Definition, mnist, spec: WorkerSpec, stop: StopSignal):
        self.study = study
        self.stop = stop
        self.definition = definition
        self.mnist = mnist
        self.out_dir = Path(spec.out_dir)
        self.dataset = spec.dataset

    def __call__(self, trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", worker_identity())
        if is_surplus(self.study, trial.number, studies.target(self.study)):
            trial.set_user_attr("surplus", True)
            raise SurplusTrial()
        config = self.definition.space.suggest(trial)
        path = self.out_dir / checkpoint_name(trial.number)
        trial.set_user_attr("checkpoint", path.name)
        trainer = training.Trainer(self.mnist, config)
        pruned = []

        def on_epoch(stats):
            trial.report(stats.validation_accuracy, stats.epoch)
            if not trainer.finished and trial.should_prune():  # after the last epoch it is complete
                pruned.append(stats.epoch)

        # The run policy of `digitnet train` (a checkpoint saved atomically after every epoch,
        # divergence, stop requests), without its test pass: the sweep never looks at the test set.
        result = runs.run(trainer, path, dataset=self.dataset, on_epoch=on_epoch, test=False,
                          should_stop=lambda: bool(pruned) or self.stop.requested)
        if pruned:
            trial.set_user_attr("stopped", f"pruned after epoch {pruned[0]}")
            raise optuna.TrialPruned()
        if result.outcome == "interrupted":
            self.stop.requested = True
            trial.set_user_attr("stopped", f"interrupted after epoch {result.saved_epoch}")
            raise StopRequested()
        if result.outcome == "diverged":
            trial.set_user_attr("stopped", f"diverged in epoch {result.epochs_completed + 1}")
            raise optuna.TrialPruned()
        if result.outcome != "finished":  # a write failed (disk full, folder gone): stop this worker
            raise SweepError(f"trial {trial.number}: {result.error}")
        if result.stopped:
            trial.set_user_attr("stopped", result.stopped)
        return result.best_validation_accuracy


def work(spec: WorkerSpec, stop: StopSignal) -> None:
    """Run trials until the study's target is reached (waiting while the last ones run elsewhere)."""
    storage = open_storage(spec.storage)
    _, definition = studies.load(storage, spec.study)
    mnist = load_mnist(spec.data_dir, definition.space.base().validation_size)
    seed = definition.space.base().seed
    study = optuna.load_study(study_name=spec.study, storage=storage,
                              sampler=make_sampler(definition.space, seed),
                              pruner=make_pruner(definition.pruner))
    objective = Objective(study, definition, mnist, spec, stop)
    while True:
        stop.check()
        fail_interrupted(study, storage)
        wanted = studies.target(study)
        count = counts(study)
        if count["done"] >= wanted:
            return
        if count["done"] + count["running"] >= wanted:
            time.sleep(POLL_SECONDS)
            continue
        study.optimize(objective, n_trials=1, catch=(SurplusTrial,))


def main() -> int:
    from digitnet.checkpoint import CheckpointError
    from digitnet.data import DataError

    stop = StopSignal()
    try:
        spec = WorkerSpec(**json.loads(sys.stdin.read()))
        stop.with_launcher(spec.launcher)
        work(spec, stop)
    except (StopRequested, KeyboardInterrupt):
        return 130  # Optuna has marked the running trial failed; the launcher says what to do
    except (SweepError, DataError, CheckpointError) as e:
        print(f"sweep worker {os.getpid()}: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        where = f" {e.filename}" if e.filename else ""
        print(f"sweep worker {os.getpid()}: cannot access{where}: {e.strerror or e}", file=sys.stderr)
        return 1
    except Exception as e:  # a bug or a lost database: one line, and the launcher reports the exit status
        print(f"sweep worker {os.getpid()} stopped: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


def spec_argument(spec: WorkerSpec) -> str:
    return json.dumps(asdict(spec))


if __name__ == "__main__":
    sys.exit(main())
