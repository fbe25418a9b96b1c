"""Keeping `--trials` exact across workers: counting trials, and failing those whose worker died.

Exactly `--trials` trials complete, however many workers share the study:
a worker starts a trial only while finished + running trials are fewer than
the target, and a trial that finds, once created, that enough trials with
lower numbers are already running or finished gives way (it is failed at once,
marked `surplus`, before any training).  A trial whose worker died (Ctrl-C,
`kill -9`, a crash, a lost machine) is failed, so its budget goes to a new
trial: at once when the dead worker was on this machine (its process id is
gone), and after GRACE_SECONDS without a heartbeat when it was elsewhere.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import os
import socket
from pathlib import Path

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

# A running trial's worker writes a heartbeat this often; one silent for GRACE_SECONDS is taken for
# dead.  The grace is generous because a false alarm fails a healthy trial on a busy machine.
HEARTBEAT_SECONDS = 10
GRACE_SECONDS = 60


@functools.cache  # asked on every poll of an idle worker; a process does not change machines
def machine() -> str:
    """This machine, as a name that a restarted or different machine will not share."""
    with contextlib.suppress(OSError):
        return f"{socket.gethostname()}/{Path('/proc/sys/kernel/random/boot_id').read_text().strip()[:8]}"
    return socket.gethostname()


def worker_identity() -> dict:
    return {"machine": machine(), "host": socket.gethostname(), "pid": os.getpid()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):  # a killed child not yet reaped by its parent is a zombie: dead
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def counts(study) -> dict:
    """Trials by what they mean for the budget: done (complete or pruned), running, interrupted."""
    out = {"done": 0, "running": 0, "interrupted": 0}
    for t in study.get_trials(deepcopy=False):
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED):
            out["done"] += 1
        elif t.state == TrialState.RUNNING:
            out["running"] += 1
        elif t.state == TrialState.FAIL and not t.user_attrs.get("surplus"):
            out["interrupted"] += 1
    return out


def fail_interrupted(study, storage) -> None:
    """Fail the running trials whose worker is gone.

    On this machine a dead process id tells at once; elsewhere Optuna's
    heartbeat does, GRACE_SECONDS after the worker fell silent.
    """
    here = machine()
    now = datetime.datetime.now()
    study_id = None
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = t.user_attrs.get("worker")
        if worker is None:
            # Killed between its creation and its first line: no worker, no heartbeat to go stale.
            if t.datetime_start is None or (now - t.datetime_start).total_seconds() < GRACE_SECONDS:
                continue
            worker = {"pid": "unknown"}
        elif worker.get("machine") != here or worker.get("pid") == os.getpid() or _alive(worker.get("pid", 0)):
            continue
        if study_id is None:  # looked up only when a trial is to be failed: idle workers call this every poll
            study_id = storage.get_study_id_from_name(study.study_name)
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
        with contextlib.suppress(UpdateFinishedTrialError):
            epochs = len(t.intermediate_values)
            storage.set_trial_user_attr(trial_id, "stopped",
                                        f"interrupted after epoch {epochs} (worker {worker['pid']} ended)")
            storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
    optuna.storages.fail_stale_trials(study)


def is_surplus(study, number: int, wanted: int) -> bool:
    """Whether enough trials numbered below ``number`` are running or done to reach ``wanted``."""
    ahead = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING))
    return sum(1 for t in ahead if t.number < number) >= wanted
