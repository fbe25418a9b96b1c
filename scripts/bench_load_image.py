#!/usr/bin/env python3
"""Reading pictures, old code beside new: a 4000x3000 JPEG photo, a served canvas, a folder of 1,000 PNGs.

    python scripts/bench_load_image.py [--old /tmp/old-tree ...] [--data-dir DIR] [--rounds 4]

The pictures are those of scripts/bench_predict.py (the photo-like JPEG and the folder of
1,000 "dark ink on paper" PNGs, from the first MNIST test digits) and scripts/bench_serve.py
(the 280x280 canvas of a drawn 4, as 8-bit grey, what the page sends, and as RGBA).  Each code tree is timed in a child process of its own
(``PYTHONPATH`` set to the tree), single process, the trees in turn (old, now, now, old, ...: the
order reversed every other round); the best round of each is printed.  ``--old`` is a checkout of
earlier code, e.g. ``git worktree add /tmp/old HEAD``, repeatable (each is a column named after its
folder, this checkout is "now"); without it only this tree is timed.

    photo      ``images.load_image`` of the JPEG, wall ms (median of 7 after a warm-up)
    canvas     ``open_image`` + ``preprocess_with_verdict`` of the PNG's bytes (what ``serve``
               runs per prediction), CPU ms (mean of 200 after a warm-up), grey and RGBA
    folder     ``open_image`` + ``preprocess_with_verdict`` of each of the 1,000 PNGs (what
               ``predict FOLDER`` runs per file, without the network), wall and CPU ms per image

Each figure is the best of --rounds: on 2 shared cores one child's run can be slowed by a third
by someone else's load, and the best round is the one least disturbed.

Take figures under the shared lock, with the load average (printed before and after).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(work: Path) -> None:
    """Time the digitnet found on sys.path (PYTHONPATH) on the pictures in ``work``; print JSON."""
    import digitnet
    from digitnet import images

    photo = work / "photo.jpg"
    images.load_image(photo)
    photo_times = []
    for _ in range(7):
        started = time.perf_counter()
        images.load_image(photo)
        photo_times.append(time.perf_counter() - started)
    canvas = {}
    for name in ("canvas.png", "canvas-rgba.png"):
        body = (work / name).read_bytes()
        for _ in range(20):
            images.preprocess_with_verdict(images.open_image(io.BytesIO(body)))
        started = time.process_time()
        for _ in range(200):
            images.preprocess_with_verdict(images.open_image(io.BytesIO(body)))
        canvas[name] = (time.process_time() - started) / 200
    files = sorted((work / "folder").iterdir())
    started, cpu = time.perf_counter(), time.process_time()
    for file in files:
        images.preprocess_with_verdict(images.open_image(file))
    folder, folder_cpu = (time.perf_counter() - started) / len(files), (time.process_time() - cpu) / len(files)
    print(json.dumps({"tree": str(Path(digitnet.__file__).parents[1]), "photo_ms": 1000 * statistics.median(photo_times),
                      "canvas_cpu_ms": 1000 * canvas["canvas.png"],
                      "canvas_rgba_cpu_ms": 1000 * canvas["canvas-rgba.png"], "folder_ms_per_image": 1000 * folder,
                      "folder_cpu_ms_per_image": 1000 * folder_cpu}))


def make_pictures(work: Path, data_dir: str | None) -> None:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "scripts"))
    import numpy as np

    from bench_predict import photo_jpeg, style_ink_on_paper
    from bench_serve import canvas_png
    from bench_train import default_data_dir
    from digitnet.data import load_mnist

    digits = load_mnist(data_dir or default_data_dir()).test.float_images()[:1000]
    folder = work / "folder"
    folder.mkdir()
    rng = np.random.default_rng(7)  # bench_predict.measure_timings's folder
    for i in range(1000):
        image, _ = style_ink_on_paper(digits[i % len(digits)].reshape(28, 28), rng)
        image.save(folder / f"{i:04d}.png")
    photo_jpeg(digits[0].reshape(28, 28), work / "photo.jpg", seed=3)
    (work / "canvas.png").write_bytes(canvas_png())
    (work / "canvas-rgba.png").write_bytes(canvas_png(mode="RGBA"))


def run_child(tree: Path, work: Path) -> dict:
    environment = dict(os.environ, PYTHONPATH=str(tree))
    done = subprocess.run([sys.executable, __file__, "--child", str(work)], env=environment,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"bench_load_image: timing {tree} failed: {done.stderr.strip()[-400:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", type=Path, action="append", default=[],
                        help="a checkout of earlier code to time beside this one (repeatable)")
    parser.add_argument("--data-dir", default=None, help="folder with the MNIST files")
    parser.add_argument("--rounds", type=int, default=4, help="rounds per tree, alternating (default: 4)")
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child)
        return
    for old in args.old:
        if not (old / "digitnet" / "__init__.py").is_file():
            sys.exit(f"bench_load_image: --old {old} holds no digitnet package")
    trees = []
    for old in args.old:  # named after their folders, made unique
        name = old.resolve().name or "old"
        while name in {taken for taken, _ in trees} | {"now"}:
            name += "'"
        trees.append((name, old))
    trees.append(("now", ROOT))
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="bench_load_image_") as tmp:
        work = Path(tmp)
        make_pictures(work, args.data_dir)
        best: dict[str, dict] = {}
        for round_ in range(args.rounds):
            for name, tree in (trees if round_ % 2 == 0 else trees[::-1]):
                result = run_child(tree, work)
                kept = best.setdefault(name, result)
                for key in ("photo_ms", "canvas_cpu_ms", "canvas_rgba_cpu_ms", "folder_ms_per_image",
                            "folder_cpu_ms_per_image"):
                    kept[key] = min(kept[key], result[key])
    print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows = [("4000x3000 JPEG photo, load_image (wall ms)", "photo_ms"),
            ("280x280 canvas, grey PNG, decode + preprocess (CPU ms)", "canvas_cpu_ms"),
            ("280x280 canvas, RGBA PNG, decode + preprocess (CPU ms)", "canvas_rgba_cpu_ms"),
            ("1,000-PNG folder, per image in-process (wall ms)", "folder_ms_per_image"),
            ("1,000-PNG folder, per image in-process (CPU ms)", "folder_cpu_ms_per_image")]
    print(f"\n{'':<56}" + "".join(f"{name:>10}" for name, _ in trees))
    for label, key in rows:
        print(f"{label:<56}" + "".join(f"{best[name][key]:>10.2f}" for name, _ in trees))
    print(json.dumps({name: best[name] for name, _ in trees}))


if __name__ == "__main__":
    main()
