#!/usr/bin/env python3
"""Predictions per second on the 10,000 MNIST test images: onnxruntime running `digitnet export`'s file
beside digitnet's own forward pass, for the same network, at batch 10,000 and batch 1.

    flock /tmp/digitnet-bench.lock python scripts/bench_export.py --model model.npz [--model other.npz]
                                   [--data-dir DIR] [--threads 1] [--repeats 5]

Both sides answer the digit (argmax included) for every test image; the answers are checked to
be the same (identical digits, max |activation difference|) before anything is timed.  --threads
caps numpy's BLAS (threadpoolctl) and onnxruntime's intra-op pool alike.  Each figure is the best
of --repeats runs; the load average is printed beside it (the cores may be shared).  A table,
then one JSON summary line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from digitnet import checkpoint  # noqa: E402
from digitnet.data import load_pair, to_float  # noqa: E402
from digitnet.export.onnx import to_onnx  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import default_data_dir  # noqa: E402


def best_seconds(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def runners(network, session, x: np.ndarray):
    """(digitnet, onnxruntime) functions answering every row of x, for batch 10,000 and batch 1."""
    def ours_all():
        return np.argmax(network.feedforward(x), axis=1)

    def theirs_all():
        return session.run(["digit"], {"pixels": x})[0]

    rows = [x[i:i + 1] for i in range(len(x))]

    def ours_one():
        return [int(np.argmax(network.feedforward(row))) for row in rows]

    def theirs_one():
        return [int(session.run(["digit"], {"pixels": row})[0][0]) for row in rows]

    return {len(x): (ours_all, theirs_all), 1: (ours_one, theirs_one)}


def measure(path: str, x: np.ndarray, threads: int, repeats: int) -> list[dict]:
    import onnxruntime as ort

    ckpt = checkpoint.load(path)
    network, used = ckpt.weights("best")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(to_onnx(network, ckpt.metadata, used).SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    activations, digits = session.run(None, {"pixels": x})
    ours = network.feedforward(x)
    same = bool(np.array_equal(digits, np.argmax(ours, axis=1)))
    difference = float(np.max(np.abs(activations - ours)))
    rows = []
    for batch, (ours_run, theirs_run) in runners(network, session, x).items():
        tries = repeats if batch > 1 else max(1, repeats // 2)
        ours_s, theirs_s = best_seconds(ours_run, tries), best_seconds(theirs_run, tries)
        rows.append({"model": Path(path).name, "sizes": network.sizes, "cost": network.cost.name, "batch": batch,
                     "digitnet_per_s": len(x) / ours_s, "onnxruntime_per_s": len(x) / theirs_s,
                     "same_digits": same, "max_abs_difference": difference,
                     "load_average": [round(v, 2) for v in os.getloadavg()]})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", default=None, help="checkpoint(s) [default: model.npz]")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits

    images, _ = load_pair(args.data_dir or default_data_dir(), "t10k")
    x = to_float(images)
    with threadpool_limits(args.threads):
        rows = [row for path in args.model or ["model.npz"] for row in measure(path, x, args.threads, args.repeats)]
    print(f"predictions per second on the {len(x):,} test images, {args.threads} thread(s), best of {args.repeats}")
    print(f"{'model':<16} {'sizes':<12} {'batch':>6} {'digitnet':>12} {'onnxruntime':>12} {'ratio':>6}  "
          f"{'same digits, max |diff|':<24} load average")
    for r in rows:
        print(f"{r['model']:<16} {'-'.join(map(str, r['sizes'])):<12} {r['batch']:>6} {r['digitnet_per_s']:>12,.0f} "
              f"{r['onnxruntime_per_s']:>12,.0f} {r['onnxruntime_per_s'] / r['digitnet_per_s']:>5.2f}x  "
              f"{str(r['same_digits']) + ', ' + format(r['max_abs_difference'], '.1e'):<24} "
              f"{' '.join(map(str, r['load_average']))}")
    print(json.dumps({"threads": args.threads, "rows": rows}))
    return 0 if all(r["same_digits"] and r["max_abs_difference"] <= 1e-5 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
