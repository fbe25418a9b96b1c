#!/usr/bin/env python3
"""The sweep's bars, measured with the real command on real MNIST.

    python scripts/bench_sweep.py [--data-dir DIR] [--pruner halving|median] [--keep DIR] [--jobs-only] [--repeat N]

One study, run three times from scratch with `digitnet sweep` (each in a new folder):

    A  pruning, --jobs 2     bar: <= 8 minutes and >= 97.5% best validation accuracy
    B  --no-prune, --jobs 2  bar: A trains >= 40% fewer epochs, its best no more than 0.2 points lower
    C  pruning, --jobs 1     bar: A's wall time <= 0.6x C's

The study: 24 trials of 784-H-10, H in {30, 100}, eta log-uniform in [0.1, 5],
lambda in [0, 5], both costs, 10 epochs, scaled initialisation, seed 0.  Wall
time is the whole command (start-up, data, workers, table, pictures).  On a
shared machine the times are noisy: run it under `flock /tmp/digitnet-bench.lock`.
With --jobs 2 the history TPE samples from depends on which trial finished first,
so A varies from run to run (C does not): --repeat N runs A N times and judges
the median.
A table, then one JSON summary line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import default_data_dir  # noqa: E402

from digitnet.sweep import storage as storages  # noqa: E402

STUDY = ["--param", "eta=log:0.1..5", "--param", "l2=0..5", "--param", "hidden=30,100",
         "--param", "cost=quadratic,cross-entropy", "--set", "init=scaled",
         "--trials", "24", "--epochs", "10", "--seed", "0"]


def run(name: str, out: Path, data_dir: Path, extra: list[str]) -> dict:
    command = [sys.executable, "-m", "digitnet", "sweep", "--data-dir", str(data_dir), "--out", str(out),
               "--quiet", *STUDY, *extra]
    load_before = os.getloadavg()[0]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the launcher and its workers
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    study = optuna.load_study(study_name="default", storage=storages.open_storage(storages.default_storage(out)))
    finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    complete = [t for t in finished if t.state == TrialState.COMPLETE]
    best = max(complete, key=lambda t: t.value)
    return {"run": name, "options": " ".join(extra), "seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1),
            "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2),
            "trials": len(finished), "pruned": len(finished) - len(complete),
            "epochs": sum(len(t.intermediate_values) for t in finished),
            "best_validation_accuracy": best.value, "best_trial": best.number, "best_params": best.params}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=None, help="MNIST folder [default: data, or ../shared/mnist]")
    parser.add_argument("--pruner", choices=["halving", "median"], default="halving")
    parser.add_argument("--keep", type=Path, default=None, help="Keep the three sweep folders here.")
    parser.add_argument("--jobs-only", action="store_true", help="Only A and C: another sample of the --jobs ratio.")
    parser.add_argument("--repeat", type=int, default=1, help="Run A this many times; the bars use the median run.")
    args = parser.parse_args()
    data_dir = args.data_dir or default_data_dir()
    root = Path(tempfile.mkdtemp(prefix="bench-sweep-")) if args.keep is None else args.keep
    root.mkdir(parents=True, exist_ok=True)
    try:
        samples = [run("A" if args.repeat == 1 else f"A{i + 1}", root / f"A{i + 1}-pruned-jobs2", data_dir,
                       ["--pruner", args.pruner, "--jobs", "2"]) for i in range(args.repeat)]
        a = sorted(samples, key=lambda r: r["seconds"])[(len(samples) - 1) // 2]  # the median (lower, if even)
        c = run("C", root / "C-pruned-jobs1", data_dir, ["--pruner", args.pruner, "--jobs", "1"])
        if args.jobs_only:
            print(json.dumps({"runs": [*samples, c], "jobs_ratios": [round(r["seconds"] / c["seconds"], 3) for r in samples],
                              "median_jobs_ratio": round(a["seconds"] / c["seconds"], 3),
                              "epochs_per_second_ratio": round(a["epochs"] / a["seconds"] / (c["epochs"] / c["seconds"]), 3)}))
            return
        b = run("B", root / "B-no-prune-jobs2", data_dir, ["--no-prune", "--jobs", "2"])
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)

    print(f"{'run':<4} {'options':<28} {'wall':>8} {'cores':>5} {'load':>9} {'trials':>6} {'pruned':>6} "
          f"{'epochs':>6} {'epochs/s':>8}  best val  (trial: settings)")
    for r in (*samples, b, c):
        settings = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in r["best_params"].items())
        print(f"{r['run']:<4} {r['options']:<28} {r['seconds']:>7.1f}s {r['cpu_seconds'] / r['seconds']:>5.2f} "
              f"{r['load_before']:>4.1f}-{r['load_after']:<4.1f} {r['trials']:>6} {r['pruned']:>6} "
              f"{r['epochs']:>6} {r['epochs'] / r['seconds']:>8.2f}  {r['best_validation_accuracy']:.2%}  "
              f"({r['best_trial']}: {settings})")
    print("cores: CPU seconds of the command and its workers per wall second (2.0 = both cores all the time); "
          "load: the 1-minute load average before and after (other users of the machine show here)")
    fewer = 1 - a["epochs"] / b["epochs"]
    lower = (b["best_validation_accuracy"] - a["best_validation_accuracy"]) * 100
    ratio = a["seconds"] / c["seconds"]
    bars = [
        ("A: pruned --jobs 2 wall time", f"{a['seconds'] / 60:.1f} min", "<= 8 min", a["seconds"] <= 480),
        ("A: best validation accuracy", f"{a['best_validation_accuracy']:.2%}", ">= 97.5%",
         a["best_validation_accuracy"] >= 0.975),
        ("pruning: fewer epochs than B", f"{fewer:.0%}", ">= 40%", fewer >= 0.40),
        ("pruning: best val. below B's by", f"{lower:+.2f} points", "<= 0.2", lower <= 0.2),
        ("--jobs 2 / --jobs 1 wall time", f"{ratio:.2f}x", "<= 0.6x", ratio <= 0.6),
    ]
    # The pruner decides as one worker would, but TPE samples from the trials finished so far, and
    # with two workers one fewer has finished: the runs may train different settings, and different
    # epochs.  The rate of epochs is what the second process adds, whatever was sampled.
    rate = (a["epochs"] / a["seconds"]) / (c["epochs"] / c["seconds"])
    print(f"\nepochs per second, --jobs 2 / --jobs 1: {rate:.2f}x; at C's {c['epochs']} epochs, A would take "
          f"{1 / rate:.2f}x C's wall time")
    print()
    for name, value, bar, ok in bars:
        print(f"{name:<34} {value:>12}   bar {bar:<9} {'ok' if ok else 'MISSED'}")
    if len(samples) > 1:
        print(f"A is the median of {len(samples)} runs: {a['run']}")
    print(json.dumps({"runs": [*samples, b, c], "fewer_epochs": round(fewer, 3), "best_lower_points": round(lower, 3),
                      "jobs_ratio": round(ratio, 3), "all_bars_met": all(ok for *_, ok in bars)}))


if __name__ == "__main__":
    main()
