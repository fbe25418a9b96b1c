#!/usr/bin/env python3
"""How well `digitnet predict` reads digits drawn the way people draw them, and how fast it is.

    python scripts/bench_predict.py [--model model.npz] [--data-dir DIR] [--old DIR]
                                    [--count 1000] [--offset 0] [--examples DIR] [--skip-timings] [--folder-runs 3]

The first --count MNIST test digits are re-drawn at run time in several styles
(dark ink on paper at 4-10x size and off-centre, coloured ink, noisy JPEG,
shaded photo, transparent PNGs, white on a big black canvas, thick marker,
thin pen; and the paper kinds of bench_paper_styles.py: ruled paper, graph paper, a red
margin line, a hard shadow edge, a flash vignette), each written to a folder of files and read back by `digitnet predict FOLDER --json` itself.
Each style's accuracy is compared with the model's accuracy on the same digits
as plain 28x28 MNIST images; the bar is ratio >= 0.97 (0.95 for the paper kinds).  Printed digits
(matplotlib's bundled fonts) are reported as well, with no tuning of the model.
Then the command itself is timed: cold start on one PNG, a folder of 1,000
PNGs (bar: <= 1.5 s), and a 4000x3000 photo-like JPEG.  A table, then one JSON summary line.

With --old DIR (a checkout of the code before the change: `git worktree add /tmp/old HEAD`; repeatable),
every accuracy and time is measured with that code too (PYTHONPATH=DIR), on the same files, side by side.
Run it alone (under /tmp/digitnet-bench.lock): the times depend on what else the cores are doing.
"""

from __future__ import annotations

import argparse
import itertools
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
from PIL import Image, ImageDraw, ImageFilter, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from digitnet import checkpoint, images  # noqa: E402
from digitnet.data import load_mnist  # noqa: E402
from digitnet.metrics import predicted_digits  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_paper_styles import PAPER_STYLES  # noqa: E402
from bench_train import default_data_dir  # noqa: E402

BAR = 0.97
FOLDER_BAR = 1.5  # seconds for `digitnet predict` on the folder of 1,000 PNGs (issue 23)
PAPER_BAR = 0.95  # the paper kinds of bench_paper_styles.py (issue 19): ruled, graph, margin, shadow, vignette


# ---------------------------------------------------------------------------
# Drawing an MNIST digit the way people produce pictures


def enlarged(digit: np.ndarray, scale: int) -> np.ndarray:
    """The 28x28 digit (white ink in [0, 1]) enlarged `scale` times, smoothly: ink coverage in [0, 1]."""
    image = Image.fromarray((digit * 255).astype(np.uint8)).resize((28 * scale, 28 * scale), Image.BICUBIC)
    return np.asarray(image, dtype=np.float32) / 255


def on_canvas(coverage: np.ndarray, rng, grow=(1.2, 2.0)) -> np.ndarray:
    """Place the ink coverage off-centre on a larger blank canvas."""
    height, width = coverage.shape
    canvas_h = int(height * rng.uniform(*grow))
    canvas_w = int(width * rng.uniform(*grow))
    top = rng.integers(0, canvas_h - height + 1)
    left = rng.integers(0, canvas_w - width + 1)
    canvas = np.zeros((canvas_h, canvas_w), np.float32)
    canvas[top:top + height, left:left + width] = coverage
    return canvas


def max_filter(coverage: np.ndarray, radius: int, minimum: bool = False) -> np.ndarray:
    """Square grey dilation (or erosion) of the given radius, separably."""
    pick = np.minimum if minimum else np.maximum
    out = coverage
    for axis in (0, 1):
        padded = np.pad(out, [(radius, radius) if a == axis else (0, 0) for a in (0, 1)],
                        constant_values=1.0 if minimum else 0.0)
        result = out.copy()
        length = out.shape[axis]
        for shift in range(2 * radius + 1):
            window = padded[shift:shift + length] if axis == 0 else padded[:, shift:shift + length]
            result = pick(result, window)
        out = result
    return out


def skeleton(mask: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning of a boolean mask to one-pixel-wide centre lines (vectorised)."""
    image = np.pad(mask.astype(bool), 1)
    while True:
        changed = False
        for step in (0, 1):
            p = image.astype(np.uint8)
            n, ne, e, se = p[:-2, 1:-1], p[:-2, 2:], p[1:-1, 2:], p[2:, 2:]
            s, sw, w, nw = p[2:, 1:-1], p[2:, :-2], p[1:-1, :-2], p[:-2, :-2]
            ring = [n, ne, e, se, s, sw, w, nw, n]
            neighbours = sum(ring[:8])
            transitions = sum(((a == 0) & (b == 1)).astype(np.uint8) for a, b in itertools.pairwise(ring))
            if step == 0:
                sides = (n * e * s == 0) & (e * s * w == 0)
            else:
                sides = (n * e * w == 0) & (n * s * w == 0)
            remove = image[1:-1, 1:-1] & (neighbours >= 2) & (neighbours <= 6) & (transitions == 1) & sides
            if remove.any():
                image[1:-1, 1:-1] &= ~remove
                changed = True
        if not changed:
            return image[1:-1, 1:-1]


def round_nib(coverage: np.ndarray, radius: int) -> np.ndarray:
    """Grey dilation with a disc: the trace of a round marker tip of that radius."""
    padded = np.pad(coverage, radius)
    height, width = coverage.shape
    out = coverage.copy()
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dy * dy + dx * dx <= radius * radius:
                np.maximum(out, padded[radius + dy:radius + dy + height, radius + dx:radius + dx + width], out=out)
    return out


def paint(coverage: np.ndarray, paper, ink) -> np.ndarray:
    """Mix paper and ink colours by the ink coverage: an (H, W, C) float image."""
    paper = np.asarray(paper, np.float32).reshape(1, 1, -1)
    ink = np.asarray(ink, np.float32).reshape(1, 1, -1)
    return paper * (1 - coverage[:, :, None]) + ink * coverage[:, :, None]


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    pixels = np.clip(pixels, 0, 1) * 255 + 0.5
    return pixels.astype(np.uint8).squeeze()


def shading(shape, rng, depth) -> np.ndarray:
    """An illumination field: a linear gradient in a random direction plus a vignette, in [1-depth, 1]."""
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    y, x = rows / shape[0] - 0.5, cols / shape[1] - 0.5
    angle = rng.uniform(0, 2 * np.pi)
    field = (np.cos(angle) * x + np.sin(angle) * y) + 0.6 * (x * x + y * y)
    field = (field - field.min()) / (field.max() - field.min() + 1e-9)
    return 1 - depth * field


INK_COLOURS = [(0.05, 0.1, 0.55), (0.7, 0.05, 0.05), (0.05, 0.45, 0.1), (0.4, 0.1, 0.5), (0.9, 0.45, 0.0)]


def style_ink_on_paper(digit, rng):
    coverage = on_canvas(enlarged(digit, rng.integers(4, 11)), rng)
    paper, ink = rng.uniform(0.8, 1.0), rng.uniform(0.0, 0.3)
    return Image.fromarray(to_uint8(paint(coverage, [paper], [ink]))), "png"


def style_coloured_ink(digit, rng):
    coverage = on_canvas(enlarged(digit, rng.integers(4, 11)), rng)
    paper = [rng.uniform(0.9, 1.0), rng.uniform(0.88, 1.0), rng.uniform(0.8, 0.95)]
    ink = INK_COLOURS[rng.integers(len(INK_COLOURS))]
    return Image.fromarray(to_uint8(paint(coverage, paper, ink))), "png"


def style_noisy_jpeg(digit, rng):
    coverage = on_canvas(enlarged(digit, rng.integers(4, 11)), rng)
    pixels = paint(coverage, [rng.uniform(0.8, 0.97)] * 3, [rng.uniform(0.05, 0.3)] * 3)
    pixels += rng.normal(0, rng.uniform(0.02, 0.06), pixels.shape).astype(np.float32)
    return Image.fromarray(to_uint8(pixels)), ("jpg", int(rng.integers(60, 91)))


def style_shaded_photo(digit, rng):
    coverage = on_canvas(enlarged(digit, rng.integers(4, 11)), rng, grow=(1.5, 2.5))
    light = shading(coverage.shape, rng, depth=rng.uniform(0.3, 0.55))[:, :, None]
    pixels = paint(coverage, [0.95, 0.93, 0.88], [0.12, 0.12, 0.18]) * light
    pixels += rng.normal(0, 0.025, pixels.shape).astype(np.float32)
    return Image.fromarray(to_uint8(pixels)), ("jpg", int(rng.integers(60, 91)))


def _rgba(coverage, ink_rgb, hidden_rgb):
    """Ink colour where drawn, `hidden_rgb` under the transparent pixels, alpha = coverage."""
    colour = paint((coverage > 0).astype(np.float32), hidden_rgb, ink_rgb)
    return Image.fromarray(np.dstack([to_uint8(colour), to_uint8(coverage)]), "RGBA")


def style_rgba_black_on_clear_black(digit, rng):
    coverage = on_canvas(enlarged(digit, rng.integers(4, 11)), rng)
    return _rgba(coverage, [0, 0, 0], [0, 0, 0]), "png"


def style_rgba_black_on_clear_white(digit, rng):
    coverage = on_canvas(enlarged(digit, rng.integers(4, 11)), rng)
    return _rgba(coverage, [0, 0, 0], [1, 1, 1]), "png"


def style_rgba_white_on_clear(digit, rng):
    coverage = on_canvas(enlarged(digit, rng.integers(4, 11)), rng)
    return _rgba(coverage, [1, 1, 1], [0, 0, 0] if rng.random() < 0.5 else [1, 1, 1]), "png"


def style_white_on_black(digit, rng):
    coverage = on_canvas(enlarged(digit, rng.integers(4, 11)), rng, grow=(1.5, 3.0))
    return Image.fromarray(to_uint8(paint(coverage, [0.0], [rng.uniform(0.85, 1.0)]))), "png"


def style_thick_marker(digit, rng):
    scale = int(rng.integers(4, 11))
    # MNIST strokes are about 2.4 px wide at the 20 px scale; a marker about doubles that.
    coverage = round_nib(enlarged(digit, scale), radius=max(1, round(1.1 * scale)))
    return Image.fromarray(to_uint8(paint(on_canvas(coverage, rng), [0.97], [0.05]))), "png"


def style_thin_pen(digit, rng):
    """The digit's centre line drawn with a pen 1-3 px wide: about a sixth of MNIST's stroke width."""
    scale = int(rng.integers(6, 11))
    lines = skeleton(enlarged(digit, scale) > 0.5).astype(np.float32)
    pen = Image.fromarray(to_uint8(max_filter(lines, radius=int(rng.integers(0, 2)))))
    coverage = np.asarray(pen.filter(ImageFilter.GaussianBlur(0.6)), np.float32) / 255
    coverage = np.clip(coverage * 1.6, 0, 1)
    return Image.fromarray(to_uint8(paint(on_canvas(coverage, rng), [0.97], [0.1]))), "png"


STYLES = {
    "dark ink on paper": style_ink_on_paper,
    "coloured ink": style_coloured_ink,
    "noisy JPEG": style_noisy_jpeg,
    "shaded photo JPEG": style_shaded_photo,
    "RGBA black on clear black": style_rgba_black_on_clear_black,
    "RGBA black on clear white": style_rgba_black_on_clear_white,
    "RGBA white on clear": style_rgba_white_on_clear,
    "white on big black": style_white_on_black,
    "thick marker": style_thick_marker,
    "thin pen": style_thin_pen,
}


def save(image: Image.Image, kind, path_stem: Path) -> Path:
    if isinstance(kind, tuple):
        path = path_stem.with_suffix(".jpg")
        image.convert("RGB").save(path, quality=kind[1])
    else:
        path = path_stem.with_suffix(".png")
        image.save(path)
    return path


# ---------------------------------------------------------------------------
# Measuring


def read_all(paths) -> tuple[np.ndarray, list[int]]:
    """The 784 inputs of every file (zeros for failures) and the indices that failed."""
    inputs = np.zeros((len(paths), 784), np.float32)
    failed = []
    for i, path in enumerate(paths):
        try:
            inputs[i] = images.load_image(path)
        except images.ImageError:
            failed.append(i)
    return inputs, failed


def save_examples(directory: Path, name: str, inputs: np.ndarray, labels, predicted, count=24):
    """A strip of the first `count` 28x28 inputs the network saw (x4), for eyeballing."""
    directory.mkdir(parents=True, exist_ok=True)
    strip = np.concatenate([inputs[i].reshape(28, 28) for i in range(min(count, len(inputs)))], axis=1)
    Image.fromarray(to_uint8(strip)).resize((strip.shape[1] * 4, 112), Image.NEAREST).save(
        directory / f"{name.replace(' ', '_')}.png")
    (directory / f"{name.replace(' ', '_')}.txt").write_text(
        "labels    " + " ".join(map(str, labels[:count])) + "\n"
        "predicted " + " ".join(map(str, predicted[:count])) + "\n")


def tree_root(tree: str | None) -> str:
    """The folder holding the code to run (None: this checkout): the children's PYTHONPATH and working
    directory (``python -m`` and ``-c`` put the working directory first on the path)."""
    return str(Path(tree).resolve()) if tree else str(Path(__file__).resolve().parents[1])


def tree_env(tree: str | None) -> dict:
    """The environment that runs the code in ``tree`` (None: this checkout)."""
    return dict(os.environ, PYTHONPATH=tree_root(tree))


def command_predictions(model: str, paths: list[Path], folder: Path, tree: str | None) -> tuple[np.ndarray, float]:
    """The digit `digitnet predict FOLDER --json` gives each of ``paths`` (-1 where it could not read
    the file), with the code in ``tree``; and the command's wall time."""
    started = time.perf_counter()
    done = subprocess.run(digitnet_command() + ["predict", str(folder), "--model", model, "--json"],
                          capture_output=True, text=True, check=False, env=tree_env(tree), cwd=tree_root(tree))
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1) or not done.stdout:
        sys.exit(f"`digitnet predict {folder}` failed{' with ' + tree if tree else ''}: {done.stderr.strip()[-300:]}")
    digits = {}
    for line in done.stdout.splitlines():
        record = json.loads(line)
        digits[record["path"]] = record.get("digit", -1)
    return np.array([digits[str(path)] for path in paths]), seconds


def measure_styles(network, model, digits, labels, work: Path, seed: int, examples: Path | None,
                   trees: dict) -> dict:
    plain = float((predicted_digits(network, digits) == labels).mean())
    results = {"plain 28x28 MNIST": {label: {"accuracy": plain, "ratio": 1.0, "failed": 0} for label in trees}}
    kinds = [(number, name, draw) for number, (name, draw) in enumerate(STYLES.items())]
    kinds += [(100 + number, name, draw) for number, (name, draw) in enumerate(PAPER_STYLES.items())]
    for number, name, draw in kinds:
        rng = np.random.default_rng([seed, number])
        folder = work / f"style{number}"
        folder.mkdir()
        paths = [save(*draw(digit.reshape(28, 28), rng), folder / f"{i:05d}") for i, digit in enumerate(digits)]
        results[name] = {}
        for label, tree in trees.items():
            predicted, seconds = command_predictions(model, paths, folder, tree)
            accuracy = float((predicted == labels).mean())
            results[name][label] = {"accuracy": accuracy, "ratio": accuracy / plain, "seconds": seconds,
                                    "failed": int((predicted < 0).sum()),
                                    "bar": PAPER_BAR if name in PAPER_STYLES else BAR}
        if examples:
            inputs, failed = read_all(paths)
            predicted = predicted_digits(network, inputs)
            predicted[failed] = -1
            save_examples(examples, name, inputs, labels, predicted)
    return results


FONTS = ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSerif.ttf",
         "DejaVuSerif-Bold.ttf", "DejaVuSansMono.ttf", "STIXGeneral.ttf", "cmr10.ttf"]


def font_directory() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def measure_fonts(network, model, work: Path, seed: int, examples: Path | None, trees: dict) -> dict:
    """Each digit in each font at three sizes, dark on white, off-centre: accuracy overall and per font,
    read by `digitnet predict FOLDER` with each code tree."""
    rng = np.random.default_rng(seed)
    folder = work / "fonts"
    folder.mkdir()
    paths, labels, fonts = [], [], []
    for font_name in FONTS:
        path = font_directory() / font_name
        if not path.exists():
            continue
        for size in (48, 96, 160):
            font = ImageFont.truetype(str(path), size)
            for digit in range(10):
                canvas = Image.new("L", (size * 2, size * 2), 250)
                offset = (int(rng.integers(0, size // 2)), int(rng.integers(0, size // 3)))
                ImageDraw.Draw(canvas).text(offset, str(digit), fill=20, font=font)
                file = folder / f"font_{font_name}_{size}_{digit}.png"
                canvas.save(file)
                paths.append(file)
                labels.append(digit)
                fonts.append(font_name.removesuffix(".ttf"))
    labels, fonts = np.array(labels), np.array(fonts)
    results = {}
    for label, tree in trees.items():
        predicted, _ = command_predictions(model, paths, folder, tree)
        right = predicted == labels
        results[label] = {"accuracy": float(right.mean()), "images": len(labels),
                          "per_font": {name: float(right[fonts == name].mean()) for name in dict.fromkeys(fonts)}}
    if examples:
        inputs, failed = read_all(paths)
        predicted = predicted_digits(network, inputs)
        predicted[failed] = -1
        order = np.argsort(labels, kind="stable")[::8]
        save_examples(examples, "fonts", inputs[order], labels[order], predicted[order], count=40)
    return results


# ---------------------------------------------------------------------------
# Timing the command


def digitnet_command() -> list[str]:
    script = Path(sys.executable).parent / "digitnet"
    return [str(script)] if script.exists() else [sys.executable, "-m", "digitnet"]


def run_seconds(args, repeat: int, tree: str | None = None, cpu: list | None = None) -> float | None:
    """Median wall time of `digitnet ARGS` over `repeat` runs with the code in ``tree``
    (None when the command fails); with ``cpu``, each run's CPU seconds (user + system, its worker
    processes included) are appended to it: less hostage to the load than the wall time."""
    times = []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(digitnet_command() + args, capture_output=True, text=True, check=False,
                              env=tree_env(tree), cwd=tree_root(tree))
        times.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if cpu is not None:
            cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        if done.returncode != 0:
            print(f"`digitnet {' '.join(args)}` failed: {done.stderr.strip()[-300:]}", file=sys.stderr)
            return None
    return statistics.median(times)


LOAD_IMAGE = ("import sys, time; from digitnet import images; t = time.perf_counter(); "
              "images.load_image(sys.argv[1]); print(time.perf_counter() - t)")


def load_image_seconds(path: Path, tree: str | None, repeat: int = 3) -> float:
    """Median seconds of ``images.load_image(path)`` in a fresh process with the code in ``tree``."""
    times = []
    for _ in range(repeat):
        done = subprocess.run([sys.executable, "-c", LOAD_IMAGE, str(path)], capture_output=True, text=True,
                              check=True, env=tree_env(tree), cwd=tree_root(tree))
        times.append(float(done.stdout))
    return statistics.median(times)


def photo_jpeg(digit: np.ndarray, path: Path, seed: int) -> Path:
    """A 4000x3000 'phone photo' of a page with one digit about 900 px tall, shading, noise, JPEG q85."""
    rng = np.random.default_rng(seed)
    coverage = np.asarray(Image.fromarray((digit * 255).astype(np.uint8)).resize((1260, 1260), Image.BICUBIC),
                          np.float32) / 255
    page = np.zeros((3000, 4000), np.float32)
    page[700:1960, 1500:2760] = coverage
    pixels = paint(page, [0.92, 0.9, 0.85], [0.1, 0.1, 0.15]) * shading(page.shape, rng, 0.4)[:, :, None]
    pixels += rng.normal(0, 0.02, pixels.shape).astype(np.float32)
    Image.fromarray(to_uint8(pixels)).save(path, quality=85)
    return path


def has_jobs(tree: str | None) -> bool:
    """Whether the code in ``tree`` has `predict --jobs` (the code before issue 23 has not)."""
    root = Path(tree) if tree else Path(__file__).resolve().parents[1]
    return "--jobs" in (root / "digitnet" / "cli" / "predict.py").read_text()


def measure_timings(model: str, digits, work: Path, trees: dict, folder_runs: int = 3) -> dict:
    """Each timing for each code tree, the trees taking turns so that a change in load hits both."""
    folder = work / "timing_folder"
    folder.mkdir()
    rng = np.random.default_rng(7)
    for i in range(1000):
        image, _ = style_ink_on_paper(digits[i % len(digits)].reshape(28, 28), rng)
        image.save(folder / f"{i:04d}.png")
    one = folder / "0000.png"
    photo = photo_jpeg(digits[0].reshape(28, 28), work / "photo.jpg", seed=3)
    jobs = {"one process": ["--jobs", "1"]}  # the code before the change has no --jobs
    timings = {label: {} for label in trees}
    for label, tree in trees.items():
        timings[label]["cold_start_one_png_seconds"] = run_seconds(["predict", str(one), "--model", model], 5, tree)
    runs = {label: [] for label in trees}
    cpu = {label: [] for label in trees}
    for repeat in range(folder_runs):  # the trees in turn, the order reversed every other round
        for label, tree in (trees.items() if repeat % 2 == 0 else reversed(trees.items())):
            runs[label].append(run_seconds(["predict", str(folder), "--model", model, "--json"], 1, tree, cpu[label]))
    for label, tree in trees.items():
        timings[label]["folder_1000_png_seconds"] = None if None in runs[label] else statistics.median(runs[label])
        timings[label]["folder_1000_png_cpu_seconds"] = statistics.median(cpu[label])
        if folder_runs > 3 and None not in runs[label]:  # how often the bar held: the host drifts
            timings[label]["folder_1000_png_seconds_best"] = min(runs[label])
            timings[label]["folder_1000_png_seconds_worst"] = max(runs[label])
            timings[label]["folder_1000_png_runs_within_bar"] = sum(run <= FOLDER_BAR for run in runs[label])
        if has_jobs(tree):
            for name, extra in jobs.items():
                one_cpu = []
                timings[label][f"folder_1000_png_seconds_{name.replace(' ', '_')}"] = run_seconds(
                    ["predict", str(folder), "--model", model, "--json", *extra], 3, tree, one_cpu)
                timings[label][f"folder_1000_png_cpu_seconds_{name.replace(' ', '_')}"] = statistics.median(one_cpu)
        timings[label]["photo_4000x3000_jpeg_seconds"] = run_seconds(["predict", str(photo), "--model", model], 3, tree)
        timings[label]["photo_4000x3000_load_image_seconds"] = load_image_seconds(photo, tree)
    return timings


# ---------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="model.npz", help="checkpoint from `digitnet train` (default: model.npz)")
    parser.add_argument("--data-dir", default=None, help="folder with the MNIST files")
    parser.add_argument("--count", type=int, default=1000, help="how many MNIST test digits to redraw")
    parser.add_argument("--offset", type=int, default=0,
                        help="start at this test digit (the stroke-width targets were chosen on the first 2,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--old", metavar="DIR", action="append", default=[],
                        help="also measure the code in DIR (a checkout before the change), side by side; "
                             "repeat for several (each is named by its folder's name)")
    parser.add_argument("--examples", type=Path, default=None,
                        help="save strips of the 28x28 images the network saw, per style, in this folder")
    parser.add_argument("--skip-timings", action="store_true")
    parser.add_argument("--folder-runs", type=lambda text: max(1, int(text)), default=3,
                        help="runs of `predict` on the 1,000-PNG folder per tree, the trees in turn; the median "
                             "is printed, and with more than 3 the best, the worst and how many held the bar "
                             "(default: 3)")
    parser.add_argument("--skip-styles", action="store_true",
                        help="timings only (the accuracies need no lock on the machine; the timings do)")
    args = parser.parse_args()
    args.model = str(Path(args.model).resolve())  # the commands run in the code's folder (tree_root)

    try:
        ckpt = checkpoint.load(args.model)
    except checkpoint.CheckpointError as e:
        sys.exit(f"bench_predict: {e} (train one first: digitnet train)")
    network = ckpt.best_network or ckpt.network
    test = load_mnist(args.data_dir or default_data_dir()).test
    digits = test.float_images()[args.offset:args.offset + args.count]
    labels = test.labels[args.offset:args.offset + args.count]
    trees = {Path(tree).name: tree for tree in args.old} | {"now": None}
    with tempfile.TemporaryDirectory(prefix="bench_predict_") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        styles, fonts = {}, {}
        if not args.skip_styles:
            styles = measure_styles(network, args.model, digits, labels, work, args.seed, args.examples, trees)
            fonts = measure_fonts(network, args.model, work, args.seed, args.examples, trees)
        accuracy_seconds = time.perf_counter() - started
        timings = {} if args.skip_timings else measure_timings(args.model, digits, work, trees, args.folder_runs)
    report(args, digits, trees, styles, fonts, timings, accuracy_seconds)


def report(args, digits, trees, styles, fonts, timings, accuracy_seconds) -> None:
    labels = list(trees)
    print(f"MNIST test digits {args.offset}-{args.offset + len(digits) - 1}, model {args.model}; "
          f"bar: accuracy >= {BAR:.0%} of plain MNIST ({PAPER_BAR:.0%} for the paper kinds)")
    for tree in args.old:
        print(f"{Path(tree).name}: the code in {tree}; now: this checkout; all read the same files")
    print("load average (1, 5, 15 min) at the end: " + ", ".join(f"{x:.1f}" for x in os.getloadavg())
          + f" on {os.cpu_count()} cores\n")
    if styles:
        print(f"{'style':<28} " + " ".join(f"{label + ' acc':>11} {'ratio':>6} {'failed':>6} {'secs':>6}"
                                           for label in labels) + "  pass")
    for name, row in styles.items():
        now = row["now"]
        verdict = "yes" if now["ratio"] >= now.get("bar", BAR) else "NO"
        cells = [f"{row[label]['accuracy']:>11.1%} {row[label]['ratio']:>6.3f} {row[label]['failed']:>6} "
                 + (f"{row[label]['seconds']:>6.2f}" if "seconds" in row[label] else f"{'':>6}") for label in labels]
        print(f"{name:<28} " + " ".join(cells) + f"  {verdict}")
    for label in labels if fonts else []:
        print(f"\nprinted digits ({label}), {len(fonts[label]['per_font'])} fonts x 10 digits x 3 sizes: "
              f"{fonts[label]['accuracy']:.1%} ("
              + ", ".join(f"{k} {v:.0%}" for k, v in fonts[label]["per_font"].items()) + ")")
    if timings:
        keys = list(dict.fromkeys(key for label in labels for key in timings[label]))
        print(f"\n{'timing (seconds, median)':<48} " + " ".join(f"{label:>8}" for label in labels) + "  bar")
        for key in keys:
            values = [timings[label].get(key, "-") for label in labels]
            bar = f"<= {FOLDER_BAR:g}" if key == "folder_1000_png_seconds" else ""
            if key == "folder_1000_png_runs_within_bar":
                print(f"{'folder_1000_png_runs_within_bar (of ' + str(args.folder_runs) + ')':<48} "
                      + " ".join(f"{v:>8}" for v in values))
                continue
            print(f"{key:<48} " + " ".join(f"{'-' if v == '-' else 'failed' if v is None else f'{v:.3f}':>8}"
                                          for v in values) + f"  {bar}")
    summary = {"model": args.model, "digits": len(digits), "offset": args.offset, "bar": BAR, "styles": styles,
               "all_styles_pass": all(row["now"]["ratio"] >= row["now"].get("bar", BAR) for row in styles.values())
               if styles else None,
               "fonts": fonts, "timings": timings, "accuracy_seconds": accuracy_seconds, "trees": trees,
               "load_average": os.getloadavg()}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
