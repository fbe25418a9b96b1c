#!/usr/bin/env python3
"""Train the documented recipes end to end and print their wall time and accuracies as JSON.

    python scripts/bench_recipes.py [--data-dir DIR] [--only NAME ...]

Bars: textbook >= 95.0% in <= 20 s; quadratic >= 98.57%, cross-entropy >= 98.46% (the
figures before the chapter-3 toolbox); elastic (one hidden layer of sigmoid neurons,
softmax output) >= 99.0% in <= 20 minutes; record (issue 22) >= 99.3%, each run <= 20
minutes (its three seeds: scripts/bench_record.py).

Each recipe is run exactly as a user would, `digitnet train ...` in a fresh
process, and timed from start to finish (loading MNIST, every epoch with its
validation pass, checkpoints, the final test).  Hyperparameters were chosen on
the validation split (the last 10,000 training images); the test split is only
read at the end of each run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling script, not the package

from bench_train import default_data_dir  # noqa: E402

from digitnet import checkpoint  # noqa: E402

RECIPES = {
    # The textbook's first network, unchanged: the default of `digitnet train`.
    "textbook": [],
    # Sigmoid + quadratic cost, one hidden layer (bar: >= 98.0%).
    "quadratic": ["--hidden", "300", "--init", "scaled", "--eta", "3", "--l2", "1", "--augment", "1",
                  "--epochs", "60", "--patience-eta", "4", "--eta-min-factor", "16"],
    # Sigmoid + cross-entropy, one hidden layer (bar: >= 98.3%).
    "cross-entropy": ["--hidden", "300", "--cost", "cross-entropy", "--init", "scaled", "--eta", "0.5",
                      "--l2", "5", "--augment", "2", "--epochs", "60", "--patience-eta", "4",
                      "--eta-min-factor", "16"],
    # Sigmoid hidden layer of 800 units, softmax output, momentum, Simard's elastic distortions made on
    # the second core (bar: >= 99.0% in <= 20 minutes). Every setting and the number of epochs were chosen
    # on the validation split ("elastic-validation": the same run on 50,000 images); this final run trains
    # on all 60,000 training images, and the test split is read once, at the end.
    "elastic": ["--hidden", "800", "--cost", "log-likelihood", "--init", "scaled", "--batch-size", "100",
                "--eta", "0.1", "--momentum", "0.9", "--augment", "elastic=34:6", "--eta-epoch-factor", "0.97",
                "--epochs", "120", "--validation-size", "0"],
    # Issue 22's record recipe, chosen on the validation split ("record-validation" is its screening run:
    # 50,000 images, 150 epochs; the search is in docs/results.md): mini-batches of 100 at eta 0.8 (the
    # old recipes' 0.1 was far too small), a 3-epoch warm-up, Simard's elastic=34:4, eta decayed to
    # 0.024 over 350 epochs, the mean of the last 50 epochs' weights.
    "record": ["--hidden", "800", "--cost", "log-likelihood", "--init", "scaled", "--batch-size", "100",
               "--eta", "0.8", "--warmup-epochs", "3", "--momentum", "0.9", "--augment", "elastic=34:4",
               "--eta-epoch-factor", "0.99", "--epochs", "350", "--average-from", "300", "--validation-size", "0"],
    "record-validation": ["--hidden", "800", "--cost", "log-likelihood", "--init", "scaled", "--batch-size", "100",
                          "--eta", "0.8", "--warmup-epochs", "3", "--momentum", "0.9", "--augment", "elastic=34:4",
                          "--eta-epoch-factor", "0.977", "--epochs", "150", "--average-from", "120"],
    "elastic-validation": ["--hidden", "800", "--cost", "log-likelihood", "--init", "scaled", "--batch-size",
                           "100", "--eta", "0.1", "--momentum", "0.9", "--augment", "elastic=34:6",
                           "--eta-epoch-factor", "0.97", "--epochs", "120"],
}


def run_recipe(name: str, args: list[str], data_dir: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{name}.npz"
        command = [sys.executable, "-m", "digitnet", "train", *args, "--data-dir", str(data_dir),
                   "--out", str(out), "--quiet"]
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - started
        meta = checkpoint.load(out).metadata
    return {
        "recipe": name,
        "command": " ".join(["digitnet", "train", *args]),
        "seed": meta["seed"],
        "wall_seconds": round(seconds, 1),
        "epochs_run": meta["epochs_completed"],
        "best_epoch": meta["best_epoch"],
        "validation_accuracy": meta["best_validation_accuracy"],
        "test_accuracy": meta["test_accuracy"],
        "test_accuracy_last_epoch": meta["test_accuracy_last_epoch"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--only", nargs="*", choices=sorted(RECIPES), default=None,
                        help="Recipes to run (default: all but the -validation ones, which chose the settings).")
    args = parser.parse_args()
    data_dir = args.data_dir or default_data_dir()
    results = []
    for name in args.only or [name for name in RECIPES if not name.endswith("-validation")]:
        results.append(run_recipe(name, RECIPES[name], data_dir))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
