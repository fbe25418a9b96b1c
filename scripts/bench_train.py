#!/usr/bin/env python3
"""Speed and memory of the default training run, printed as one JSON object.

    python scripts/bench_train.py [--data-dir DIR] [--epochs-timed 5] [--skip-full-run] [--skip-widths]
                                  [--floor-only] [--blas-only]

Figures (the bars in brackets):
  sgd_epoch_seconds       one SGD pass over 50,000 images, batch 10, 784-30-10 (<= 0.5 s);
                          median over --epochs-timed epochs
  epoch_seconds           a whole epoch as `digitnet train` runs it by default: SGD, the training
                          cost (mean over the epoch's mini-batches, from SGD's own forward passes)
                          and the validation accuracy
  monitoring_overhead     epoch_seconds / sgd_epoch_seconds - 1 (<= 10%)
  exact_cost_epoch_seconds  the same epoch with --exact-cost (an extra pass over the training set)
  floor                   784-800-10, batch 100 (the 99% recipe without distortions): digitnet's whole
                          epoch beside the floor, the same matrix products alone in a bare numpy loop
                          (float32, preallocated, one BLAS thread: BP1-BP4's seven products per
                          mini-batch and the validation pass's two), and their ratio (<= 1.3)
  blas_threads            784-N-10 with --augment elastic=34:4 (the distortions on the second core),
                          N = 800, 1600, batch 100 and 200: s per SGD pass with BLAS on 1 and on 2 threads
                          and the number training.blas_threads chooses (--blas-only: just this)
  widths                  s/epoch of SGD for 784-N-10, N = 30, 100, 300, 800, at batch 10 and 100,
                          with BLAS on 1 and on 2 threads (training: see training.blas_threads)
  elastic_epoch_seconds   784-800-10, batch 100, --augment elastic=34:4: SGD with the distortions made
                          on a second thread, and inline, and the distortions alone
  textbook_epoch_seconds  a per-example loop in the style of the textbook's network.py,
                          timed on 5,000 images and scaled to 50,000, for comparison
  full_run_seconds        `digitnet train` with the defaults, end to end: start-up, loading
                          MNIST, 30 epochs with validation, checkpoints, test accuracy (<= 20 s)
  peak_memory_mb          the peak resident memory of that run (< 400 MB)
  test_accuracy           what that run reached (>= 95.0%)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from threadpoolctl import threadpool_limits

from digitnet import augment, augment_spec, checkpoint
from digitnet.data import load_mnist, resolve_data_dir, to_float
from digitnet.config import TrainConfig
from digitnet.training import Trainer


def default_data_dir() -> Path:
    """$DIGITNET_DATA_DIR or ./data, else the offline copy in ../shared/mnist."""
    chosen = resolve_data_dir(None)
    shared = Path(__file__).resolve().parents[2] / "shared" / "mnist"
    if not (chosen / "train-images-idx3-ubyte.gz").exists() and shared.is_dir():
        return shared
    return chosen


def time_epochs(data, epochs: int, **settings) -> tuple[float, float]:
    """Median seconds of SGD alone and of whole epochs (as `digitnet train` runs them), interleaved
    so that both see the same machine load."""
    trainer = Trainer(data, TrainConfig(epochs=2 * epochs, **settings))
    sgd, whole = [], []
    for _ in range(epochs):
        started = time.perf_counter()
        trainer.sgd_epoch(trainer.state.learning_rate)
        sgd.append(time.perf_counter() - started)
        whole.append(trainer.epoch().seconds)
    return statistics.median(sgd), statistics.median(whole)


def time_sgd(data, epochs: int, threads: int, **settings) -> float:
    """Median seconds of one SGD pass with BLAS on ``threads`` threads."""
    trainer = Trainer(data, TrainConfig(**{"init": "scaled", **settings}))  # FLOOR_SETTINGS names init too
    times = []
    for _ in range(epochs):
        with threadpool_limits(limits=threads, user_api="blas"):
            started = time.perf_counter()
            trainer.sgd_epoch(trainer.state.learning_rate, one_blas_thread=False)
            times.append(time.perf_counter() - started)
    return round(statistics.median(times), 2)


def widths(data, epochs: int) -> list[dict]:
    rows = []
    for hidden in (30, 100, 300, 800):
        for batch in (10, 100):
            for threads in (1, 2):
                rows.append({"hidden": hidden, "batch_size": batch, "blas_threads": threads,
                             "sgd_epoch_seconds": time_sgd(data, epochs, threads, hidden_sizes=(hidden,),
                                                           batch_size=batch, learning_rate=0.1)})
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def elastic(data, epochs: int) -> dict:
    settings = dict(hidden_sizes=(800,), batch_size=100, learning_rate=0.1, augment="elastic=34:4",
                    cost="log-likelihood", momentum=0.9)
    background = time_sgd(data, epochs, 1, **settings)
    inline = time_sgd(data, epochs, 1, augment_inline=True, **settings)
    images = data.training.images
    out = np.empty((2000, images.shape[1]), np.float32)
    rng = np.random.default_rng(0)
    with threadpool_limits(limits=1, user_api="blas"):
        started = time.perf_counter()
        for start in range(0, len(images), 2000):
            augment.distort(images[start:start + 2000].copy(), augment_spec.parse("elastic=34:4"), rng, out)
        alone = time.perf_counter() - started
    no_augment = time_sgd(data, epochs, 1, **dict(settings, augment=""))
    return {"sgd_background": background, "sgd_inline": inline, "distortions_alone": round(alone, 2),
            "sgd_without_distortions": no_augment}


FLOOR_SETTINGS = dict(hidden_sizes=(800,), batch_size=100, learning_rate=0.1, cost="log-likelihood",
                      init="scaled", momentum=0.9)


def matmul_floor(n: int, m: int, hidden: int, n_validation: int) -> float:
    """Seconds of the matrix products of one epoch of 784-hidden-10 at batch m, and nothing else.

    Per mini-batch: the forward pass's two products, BP3's two (a row of ones times delta), BP4's two
    and BP2's one, with every array preallocated (no sigmoid, no update, no data); then the
    validation pass's two.  The data are random: the speed of a product does not depend on its numbers.
    """
    rng = np.random.default_rng(0)
    f = np.float32
    x, w1, w2 = (rng.random(shape, dtype=f) for shape in ((m, 784), (hidden, 784), (10, hidden)))
    a1, a2, d1 = np.empty((m, hidden), f), np.empty((m, 10), f), np.empty((m, hidden), f)
    d2 = rng.random((m, 10), dtype=f)
    g1, g2, b1, b2 = np.empty((hidden, 784), f), np.empty((10, hidden), f), np.empty(hidden, f), np.empty(10, f)
    ones = np.ones(m, f)
    xv = rng.random((n_validation, 784), dtype=f)
    av, ov = np.empty((n_validation, hidden), f), np.empty((n_validation, 10), f)
    with threadpool_limits(limits=1, user_api="blas"):
        started = time.perf_counter()
        for _ in range(n // m):
            np.matmul(x, w1.T, out=a1)
            np.matmul(a1, w2.T, out=a2)
            np.matmul(ones, d2, out=b2)
            np.matmul(d2.T, a1, out=g2)
            np.matmul(d2, w2, out=d1)
            np.matmul(ones, d1, out=b1)
            np.matmul(d1.T, x, out=g1)
        np.matmul(xv, w1.T, out=av)
        np.matmul(av, w2.T, out=ov)
        return time.perf_counter() - started


def floor(data, epochs: int) -> dict:
    """digitnet's epoch for 784-800-10 at batch 100 beside the bare-matmul floor, interleaved (same load)."""
    trainer = Trainer(data, TrainConfig(epochs=epochs + 1, **FLOOR_SETTINGS))
    trainer.epoch()  # the first epoch allocates the workspaces
    ours, bare = [], []
    for _ in range(epochs):
        ours.append(trainer.epoch().seconds)
        bare.append(matmul_floor(len(data.training), 100, 800, len(data.validation)))
    ours_s, bare_s = statistics.median(ours), statistics.median(bare)
    return {"network": "784-800-10", "batch_size": 100, "digitnet_epoch_seconds": round(ours_s, 3),
            "floor_seconds": round(bare_s, 3), "ratio": round(ours_s / bare_s, 3), "bar": 1.3}


def blas_threads(data, epochs: int) -> list[dict]:
    """SGD passes of the elastic recipe with BLAS on 1 and 2 threads while the distortions use the other core."""
    from digitnet.training import blas_threads as chosen

    rows = []
    for hidden in (800, 1600):
        for batch in (100, 200):
            settings = dict(FLOOR_SETTINGS, hidden_sizes=(hidden,), batch_size=batch, augment="elastic=34:4")
            row = {"hidden": hidden, "batch_size": batch,
                   **{f"seconds_{t}_thread{'s' if t > 1 else ''}": time_sgd(data, epochs, t, **settings)
                      for t in (1, 2)},
                   "chosen_threads": chosen([784, hidden, 10], batch)}
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def textbook_epoch(data, n: int = 5000) -> float:
    """One epoch of the textbook's per-example backprop loop (column vectors, float64), scaled to 50,000."""
    rng = np.random.default_rng(0)
    sizes = [784, 30, 10]
    weights = [rng.standard_normal((y, x)) for x, y in zip(sizes[:-1], sizes[1:])]
    biases = [rng.standard_normal((y, 1)) for y in sizes[1:]]
    xs = to_float(data.training.images[:n], np.float64)
    ys = np.eye(10)[data.training.labels[:n]]
    sigmoid = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731
    started = time.perf_counter()
    for start in range(0, n, 10):
        nabla_b = [np.zeros(b.shape) for b in biases]
        nabla_w = [np.zeros(w.shape) for w in weights]
        for x, y in zip(xs[start:start + 10], ys[start:start + 10]):
            activation = x.reshape(-1, 1)
            activations, zs = [activation], []
            for b, w in zip(biases, weights):
                z = w @ activation + b
                zs.append(z)
                activation = sigmoid(z)
                activations.append(activation)
            delta = (activations[-1] - y.reshape(-1, 1)) * sigmoid(zs[-1]) * (1 - sigmoid(zs[-1]))
            nabla_b[-1] += delta
            nabla_w[-1] += delta @ activations[-2].T
            sp = sigmoid(zs[-2]) * (1 - sigmoid(zs[-2]))
            delta = (weights[-1].T @ delta) * sp
            nabla_b[-2] += delta
            nabla_w[-2] += delta @ activations[-3].T
        weights = [w - 0.3 * nw for w, nw in zip(weights, nabla_w)]
        biases = [b - 0.3 * nb for b, nb in zip(biases, nabla_b)]
    return (time.perf_counter() - started) * 50000 / n


def full_run(data_dir: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "model.npz"
        command = [sys.executable, "-m", "digitnet", "train", "--data-dir", str(data_dir), "--out", str(out), "--quiet"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - started
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        meta = checkpoint.load(out).metadata
    return {
        "full_run_seconds": round(seconds, 2),
        "full_run_training_seconds": round(sum(h["seconds"] for h in meta["history"]), 2),
        "peak_memory_mb": round(max(peak_kb, before) / 1024, 1),
        "test_accuracy": meta["test_accuracy"],
        "test_accuracy_last_epoch": meta["test_accuracy_last_epoch"],
        "command": " ".join(["digitnet", "train", "--data-dir", str(data_dir)]),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--epochs-timed", type=int, default=5)
    parser.add_argument("--skip-full-run", action="store_true")
    parser.add_argument("--skip-widths", action="store_true")
    parser.add_argument("--floor-only", action="store_true", help="only the 784-800-10 floor and ratio")
    parser.add_argument("--blas-only", action="store_true", help="only the one-or-two BLAS threads table")
    args = parser.parse_args()
    data_dir = args.data_dir or default_data_dir()
    data = load_mnist(data_dir)
    if args.floor_only or args.blas_only:
        result = {"cores": os.cpu_count(), "load_average": os.getloadavg()}
        if args.floor_only:
            result["floor"] = floor(data, args.epochs_timed)
        if args.blas_only:
            result["blas_threads"] = blas_threads(data, 2)
        print(json.dumps(result, indent=2))
        return
    sgd, whole = time_epochs(data, args.epochs_timed)
    _, exact = time_epochs(data, args.epochs_timed, exact_cost=True)
    result = {
        "sgd_epoch_seconds": round(sgd, 3),
        "epoch_seconds": round(whole, 3),
        "monitoring_overhead": round(whole / sgd - 1, 3),
        "monitoring": "training cost = mean over the epoch's mini-batches from SGD's forward passes",
        "exact_cost_epoch_seconds": round(exact, 3),
        "textbook_epoch_seconds": round(textbook_epoch(data), 2),
        "cores": os.cpu_count(),
        "numpy": np.__version__,
    }
    result["speedup_vs_textbook"] = round(result["textbook_epoch_seconds"] / sgd, 1)
    result["floor"] = floor(data, args.epochs_timed)
    if not args.skip_widths:
        result["widths"] = widths(data, 2)
        result["elastic_epoch_seconds"] = elastic(data, 2)
    if not args.skip_full_run:
        result.update(full_run(data_dir))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
