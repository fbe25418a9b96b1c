"""A sweep started with SIGINT ignored (a script's background job) still stops on its SIGTERM, workers too.

The launcher keeps its workers ignoring a terminal's Ctrl-C (test_sweep.py checks that), but its own
stop, SIGTERM (`kill PID`, a scheduler's time limit), must reach them: the trial cut short is failed,
nothing is left running and every worker is gone.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from optuna.trial import TrialState

from digitnet.sweep import storage as storages
from test_sweep import SMALL, data_dir, load_study, sweep_command, wait_for_running_trial  # noqa: F401


def workers_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split() if entry.name.isdigit() else None
        except OSError:
            continue
        if fields and int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def ignores(pid: int, signum: int) -> bool:
    line = next(l for l in Path(f"/proc/{pid}/status").read_text().splitlines() if l.startswith("SigIgn:"))
    return bool(int(line.split()[1], 16) & (1 << (signum - 1)))


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
    workers = workers_of(launcher.pid)
    assert len(workers) == 2 and all(ignores(pid, signal.SIGINT) for pid in workers)
    launcher.send_signal(signal.SIGTERM)
    output = launcher.communicate(timeout=60)[0]
    assert launcher.returncode == 128 + signal.SIGTERM, output
    assert "interrupted" in output and "Traceback" not in output
    time.sleep(0.5)
    assert not workers_of(launcher.pid) and not [p for p in workers if Path(f"/proc/{p}").exists()
                                                 and Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"]
    study = load_study(url)
    assert study.trials[cut.number].state == TrialState.FAIL
    assert not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
