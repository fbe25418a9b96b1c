"""Run a sweep from this machine: start `--jobs` worker processes, follow the study, write the results.

The launcher trains nothing itself.  It starts the workers, then reads the
study from the database every two seconds to move a tqdm bar over trials and print
a line per finished trial (the same lines whichever process, or machine, ran
the trial).  At the end it prints the ranked table and writes results.csv and
the page.  Ctrl-C reaches the workers too (one process group); a trial cut
short is failed, and the next run of the same command re-runs its budget.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from digitnet import signals
from digitnet.sweep import results
from digitnet.sweep.liveness import counts, fail_interrupted
from digitnet.sweep.storage import shown_url
from digitnet.sweep.study import target
from digitnet.sweep.worker import WorkerSpec, checkpoint_name, spec_argument

# Reading every trial from the database twice a second took 7% of a core from the workers (measured).
FOLLOW_SECONDS = 2.0
# After Ctrl-C: how long workers get to mark their trial failed before they are killed.
STOP_SECONDS = 20


@dataclass
class Outcome:
    exit_codes: list[int] = field(default_factory=list)
    interrupted: int = 0  # the signal that stopped the sweep (SIGINT or SIGTERM), 0 if none did


def start_workers(spec: WorkerSpec, jobs: int) -> list[subprocess.Popen]:
    # One BLAS thread per process (training.single_threaded_blas holds it to one around the epochs; the
    # variables keep OpenBLAS from starting idle threads at import, J processes times over).
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    # The spec goes through stdin, not the command line: its storage URL may hold a password, and
    # every user on the machine can read command lines.
    spec = dataclasses.replace(spec, launcher=os.getpid())
    command = [sys.executable, "-m", "digitnet.sweep.worker"]
    workers = []
    for _ in range(jobs):
        worker = subprocess.Popen(command, env=env, stdin=subprocess.PIPE, text=True)
        worker.stdin.write(spec_argument(spec))
        worker.stdin.close()
        workers.append(worker)
    return workers


def stop_workers(workers: list[subprocess.Popen], signal_number: int) -> None:
    """Pass Ctrl-C or SIGTERM on to every worker (a terminal's Ctrl-C reached them already; asking twice
    is harmless: a worker stops after its current epoch either way), then wait for them."""
    for w in workers:
        if w.poll() is None:
            w.send_signal(signal_number)
    deadline = time.monotonic() + STOP_SECONDS
    for w in workers:
        try:
            w.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            w.kill()  # its trial stays RUNNING with a dead process id: failed below, at once
            w.wait()


class StopSignals:
    """Notes the first Ctrl-C (SIGINT) or SIGTERM instead of raising from the signal handler.

    An exception raised by a handler lands wherever the main thread happens to be, and inside a
    weakref callback or a finaliser (SQLAlchemy's connection pool has both) Python prints
    "Exception ignored" and swallows it: the sweep then ran on as if nothing had been pressed
    (seen once in four Ctrl-C test runs).  ``follow`` looks at ``signum`` between polls instead,
    and the workers are told at once (``workers``): a trial must not run on for the launcher's poll.
    A signal the launcher was started ignoring (a script's background job) stays ignored.
    """

    def __init__(self, workers: list[subprocess.Popen]):
        self.signum = 0
        self._previous = {}
        self._workers = workers

    def __enter__(self) -> "StopSignals":
        for signum in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(signum) is not signal.SIG_IGN:
                self._previous[signum] = signal.signal(signum, self._note)
        return self

    def _note(self, signum, frame) -> None:
        if not self.signum:
            self.signum = signum
            for w in self._workers:  # os.kill only: nothing here waits or allocates much
                if w.returncode is None:
                    w.send_signal(signum)

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def wait(self, seconds: float) -> None:
        """Sleep up to ``seconds``, waking within 0.1 s of a stop signal."""
        deadline = time.monotonic() + seconds
        while not self.signum and time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))


def follow(study, widths: dict[str, int], workers: list[subprocess.Popen], quiet: bool,
           stop: StopSignals) -> None:
    """A bar over the study's trials and one line per finished trial, until every worker has ended
    or a stop signal came."""
    from tqdm import tqdm

    from digitnet.progress import progress_bar

    seen = {r.number for r in results.rows(study)}
    with progress_bar(total=target(study), initial=len(seen), unit="trial", desc="trials",
                      disable=quiet or None) as bar:
        while True:
            running = any(w.poll() is None for w in workers)
            ranked = results.rows(study)
            for row in sorted((r for r in ranked if r.number not in seen), key=lambda r: r.number):
                seen.add(row.number)
                bar.update(1)
                if not quiet:
                    tqdm.write(results.trial_line(row, widths))
            best = results.best_row(ranked)
            count = counts(study)
            bar.total = max(target(study), len(seen))
            bar.set_postfix_str((f"best {best.best:.2%} (trial {best.number}), " if best else "")
                                + f"{count['running']} running", refresh=True)
            if not running:
                return
            stop.wait(FOLLOW_SECONDS)
            if stop.signum:
                return


def run(study, storage, spec: WorkerSpec, jobs: int, params: list, quiet: bool) -> Outcome:
    """Start the workers and follow them to the end (or to Ctrl-C)."""
    outcome = Outcome()
    fail_interrupted(study, storage)  # trials left RUNNING by a killed run on this machine
    if counts(study)["done"] >= target(study):
        return outcome  # nothing left to train (e.g. `--final` on a finished study)
    workers = start_workers(spec, jobs)
    with StopSignals(workers) as stop:
        follow(study, results.value_widths(params), workers, quiet, stop)
    outcome.interrupted = stop.signum
    if outcome.interrupted:
        stop_workers(workers, outcome.interrupted)
    outcome.exit_codes = [w.wait() for w in workers]
    fail_interrupted(study, storage)
    return outcome


def describe_exit(code: int) -> str:
    if code < 0:
        return f"was killed by {signals.name(-code)}"
    return f"exited with status {code}"


@dataclass(frozen=True)
class CheckpointPlace:
    """Where a trial's checkpoint is: ``path`` in the --out folder, of this machine or of ``host``."""

    path: Path
    host: str | None = None

    def __str__(self) -> str:
        """Its path if it is here, else its name and the machine that ran the trial."""
        if self.path.is_file():
            return str(self.path)
        return (f"{self.path.name}, in the --out folder of the machine that ran it"
                + (f" ({self.host})" if self.host else ""))


def checkpoint_place(row, out_dir: Path) -> CheckpointPlace:
    """The one definition of where a trial's checkpoint is (its name is recorded in the trial)."""
    return CheckpointPlace(out_dir / (row.checkpoint or checkpoint_name(row.number)), row.host)


def write_results(study, definition, out_dir: Path, study_name: str, storage_url: str):
    """The ranked rows, results.csv and the page in out_dir; returns (rows, files written)."""
    from digitnet.sweep import page  # matplotlib: only once there is something to draw

    ranked = results.rows(study)
    names = results.param_names(ranked, definition)
    best = results.best_row(ranked)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = [results.write_csv(ranked, names, out_dir / "results.csv")]
    summary = [("study", study_name), ("storage", shown_url(storage_url)),
               ("progress", results.summary(study, ranked)),
               ("searched", definition.space.describe()),
               ("pruner", definition.pruner)]
    evaluate = "digitnet evaluate CHECKPOINT"
    if best is not None:
        settings = ", ".join(f"{n} {results.format_value(best.params.get(n))}" for n in names)
        summary.append(("best trial", f"trial {best.number}: {best.best:.2%} validation accuracy at epoch "
                                      f"{best.best_epoch} ({settings})"))
        place = checkpoint_place(best, out_dir)
        summary.append(("its checkpoint", str(place)))
        evaluate = f"digitnet evaluate {place.path}"
    files += page.write_page(study, ranked, definition.space.params, out_dir, study_name=study_name,
                             summary=summary, evaluate=evaluate)
    return ranked, files
