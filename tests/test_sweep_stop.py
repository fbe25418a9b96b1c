"""A sweep started with SIGINT ignored (a script's background job) still stops on its SIGTERM, workers too.

The launcher keeps its workers ignoring a terminal's Ctrl-C (test_sweep.py checks that), but its own
stop, SIGTERM (`kill PID`, a scheduler's time limit), must reach them: the trial cut short is failed,
nothing is left running and every worker is gone.
"""

from __future__ import annotations

import signal
import subprocess
import time

from optuna.trial import TrialState

from digitnet.sweep import storage as storages
from test_serve_stop import alive, children, sigint_is_ignored
from test_sweep import SMALL, data_dir, load_study, sweep_command, wait_for_running_trial  # noqa: F401


def test_sigterm_stops_a_sweep_started_with_sigint_ignored_and_its_workers(data_dir, tmp_path):  # noqa: F811
    out = tmp_path / "sweep"
    args = [*SMALL, "--set", "batch-size=100", "--set", "pause-ms=20", "--trials", 2, "--epochs", 60,
            "--no-prune", "--jobs", 2, "--quiet"]
    launcher = subprocess.Popen(sweep_command(data_dir, out, *args), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    url = storages.default_storage(out)
    cut = wait_for_running_trial(launcher, url, out, epochs=1)
    assert cut is not None, launcher.communicate()[0]
    workers = children(launcher.pid)
    assert len(workers) == 2 and all(sigint_is_ignored(pid) for pid in workers)
    launcher.send_signal(signal.SIGTERM)
    output = launcher.communicate(timeout=60)[0]
    assert launcher.returncode == 128 + signal.SIGTERM, output
    assert "interrupted" in output and "Traceback" not in output
    time.sleep(0.5)
    assert not [pid for pid in workers if alive(pid)]
    study = load_study(url)
    assert study.trials[cut.number].state == TrialState.FAIL
    assert not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
