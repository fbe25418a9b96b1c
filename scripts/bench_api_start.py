"""Issue 20's start-up bar: `python -c "import digitnet; digitnet.load('model.npz').predict(...)"` in <= 0.5 s.

Runs that command in fresh processes (numpy's import included, as a user
pays it) and prints the median wall time, the range, what `import numpy` alone
costs on the same machine, and the load average beside the figures; then checks
that loading and predicting imported neither Pillow, click, tqdm nor matplotlib.

    flock /tmp/digitnet-bench.lock .venv/bin/python scripts/bench_api_start.py [--model model.npz] [--runs 10]

The batch is the first --batch test images of MNIST when the data folder has
them (else random uint8 pixels: the time does not depend on what the pixels
show); without --model, a random-weight 784-30-10 checkpoint (the textbook's
size) is written to a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BAR_SECONDS = 0.5


def timed(code: str, runs: int) -> list[float]:
    """Wall seconds of ``python -c code`` in ``runs`` fresh processes."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - started)
    return times


def inputs(folder: Path, model: str | None, data_dir: str | None, batch: int) -> tuple[Path, Path, str]:
    """The model, the batch (.npy) and where the batch came from."""
    import numpy as np

    from digitnet import checkpoint, data
    from digitnet.network import Network

    if model is None:
        model = checkpoint.save(folder / "model.npz", Network([784, 30, 10], rng=np.random.default_rng(0)), {})
    try:
        images = data.load_mnist(data_dir, 0, parts=("t10k",)).test.images[:batch]
        source = f"the first {len(images):,} MNIST test images"
    except data.DataError:
        images = np.random.default_rng(0).integers(0, 256, (batch, 784), dtype=np.uint8)
        source = f"{batch:,} random uint8 images (no MNIST test files found)"
    np.save(folder / "batch.npy", images)
    return Path(model), folder / "batch.npy", source


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="checkpoint to load (default: a random 784-30-10 one)")
    parser.add_argument("--data-dir", default=None, help="MNIST folder for the batch (default: as --data-dir)")
    parser.add_argument("--batch", type=int, default=1000, help="images to predict")
    parser.add_argument("--runs", type=int, default=10, help="fresh processes per figure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model, batch, source = inputs(Path(tmp), args.model, args.data_dir, args.batch)
        code = f"import numpy, digitnet; digitnet.load({str(model)!r}).predict(numpy.load({str(batch)!r}))"
        check = code + ("; import sys; print(' '.join(m for m in ('PIL', 'click', 'tqdm', 'matplotlib') "
                        "if m in sys.modules))")
        heavy = subprocess.run([sys.executable, "-c", check], check=True, capture_output=True, text=True).stdout
        api = timed(code, args.runs)
        numpy_alone = timed("import numpy", args.runs)
    median = statistics.median(api)
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"model {model}, batch: {source}")
    print(f"load + predict in a fresh process: median {median:.3f} s (min {min(api):.3f}, max {max(api):.3f}) "
          f"over {args.runs} runs; `import numpy` alone: median {statistics.median(numpy_alone):.3f} s; "
          f"load average {load}")
    print(f"bar {BAR_SECONDS} s: {'met' if median <= BAR_SECONDS else 'MISSED'}; "
          f"heavy modules imported: {heavy.strip() or 'none'}")
    return 0 if median <= BAR_SECONDS and not heavy.strip() else 1


if __name__ == "__main__":
    sys.exit(main())
