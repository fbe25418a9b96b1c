#!/usr/bin/env python3
"""How often `digitnet predict` says a picture "does not look like a digit": on digits, and on things that are not.

    python scripts/bench_verdict.py [--data-dir DIR] [--count 2000] [--per-kind 40] [--seed 0] [--facts]

The first --count MNIST test digits are re-drawn as pictures (dark ink on paper at 4-10x size,
off-centre; and with a thick marker) and read by ``images.preprocess_with_verdict``, the path
`predict` takes; the bar is that at least 99.5% of them look like a digit.  Then --per-kind
pictures of each thing that is not a digit (a speck of almost no ink, a dot, an X, an X drawn
twice over, a zigzag scribble, a round filled blob, a line lying down), drawn as the page's pad
draws them (280 px, a pen 20 px wide), seeded; each kind's share that is flagged is printed (the tests ask for all of a few).
With --facts, the measured numbers (``verdict.measure``) at a few percentiles, for setting the
thresholds in digitnet/images/verdict.py.  A table, then one JSON summary line.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from digitnet import images  # noqa: E402
from digitnet.data import load_pair  # noqa: E402
from digitnet.images import pipeline, verdict  # noqa: E402

BAR = 0.995
PAD = 280      # the page's pad exports a 280 px square ...
PEN = 20       # ... drawn with a pen this wide (pad.js: STROKE 0.072 of the side)
INK, PAPER = 22, 255


# ---------------------------------------------------------------------------
# MNIST digits as pictures


def digit_picture(digit: np.ndarray, rng, marker: bool = False) -> Image.Image:
    """A 28x28 MNIST digit (0..255) enlarged 4-10x, dark on light, off-centre on a larger page;
    with ``marker`` its strokes about doubled (a thick marker)."""
    scale = int(rng.integers(4, 11))
    big = Image.fromarray(digit.astype(np.uint8)).resize((28 * scale, 28 * scale), Image.BICUBIC)
    coverage = np.asarray(big, np.float32) / 255
    if marker:
        radius = max(1, round(1.1 * scale))
        padded = np.pad(coverage, radius)
        grown = coverage.copy()
        for dy in range(-radius, radius + 1):
            for dx in range(-radius, radius + 1):
                if dy * dy + dx * dx <= radius * radius:
                    np.maximum(grown, padded[radius + dy:radius + dy + coverage.shape[0],
                                             radius + dx:radius + dx + coverage.shape[1]], out=grown)
        coverage = grown
    height, width = coverage.shape
    page_h, page_w = int(height * rng.uniform(1.2, 2.0)), int(width * rng.uniform(1.2, 2.0))
    top, left = rng.integers(0, page_h - height + 1), rng.integers(0, page_w - width + 1)
    page = np.zeros((page_h, page_w), np.float32)
    page[top:top + height, left:left + width] = coverage
    return Image.fromarray((PAPER - page * (PAPER - INK)).astype(np.uint8))


# ---------------------------------------------------------------------------
# Things that are not digits, drawn as on the pad


def _pad() -> tuple[Image.Image, ImageDraw.ImageDraw]:
    picture = Image.new("L", (PAD, PAD), PAPER)
    return picture, ImageDraw.Draw(picture)


def _stroke(pen: ImageDraw.ImageDraw, points, width: int = PEN) -> None:
    """A stroke through ``points`` with round ends, as the pad's pen draws it."""
    pen.line(points, fill=INK, width=width, joint="curve")
    for x, y in (points[0], points[-1]):
        pen.ellipse([x - width / 2, y - width / 2, x + width / 2, y + width / 2], fill=INK)


def dot(rng) -> Image.Image:
    """One tap of the pen (a dot 16-28 px across) anywhere on the pad."""
    picture, pen = _pad()
    (x, y), r = rng.uniform(40, PAD - 40, 2), rng.uniform(8, 14)
    pen.ellipse([x - r, y - r, x + r, y + r], fill=INK)
    return picture


def cross(rng, times: int = 1) -> Image.Image:
    """An X: two strokes crossing near the middle (``times`` over, slightly off each time)."""
    picture, pen = _pad()
    centre, size, turn = rng.uniform(110, 170, 2), rng.uniform(50, 110), rng.uniform(-0.3, 0.3)
    for _ in range(times):
        for angle in (np.pi / 4 + turn, 3 * np.pi / 4 + turn):
            arm = np.array([np.cos(angle), np.sin(angle)]) * size * rng.uniform(0.85, 1.1)
            shift = rng.normal(0, 4, 2)
            _stroke(pen, [tuple(centre - arm + shift), tuple(centre + arm + shift)])
    return picture


def cross_twice(rng) -> Image.Image:
    return cross(rng, times=2)


def scribble(rng) -> Image.Image:
    """Back and forth across a patch, 6-11 times (scratching something out)."""
    picture, pen = _pad()
    (x0, y0), (width, height) = rng.uniform(30, 90, 2), rng.uniform(120, 190, 2)
    turns = int(rng.integers(6, 12))
    points = []
    for i in range(turns):
        y = y0 + height * i / (turns - 1)
        points += [(x0 + rng.normal(0, 6), y + rng.normal(0, 4)),
                   (x0 + width + rng.normal(0, 6), y + height / (2 * (turns - 1)) + rng.normal(0, 4))]
    _stroke(pen, points, int(rng.integers(10, 22)))
    return picture


def blob(rng) -> Image.Image:
    """A round patch filled in: a disc, an ellipse (at most 1.6:1) or a square, 80-200 px."""
    picture, pen = _pad()
    (x, y), r = rng.uniform(110, 170, 2), rng.uniform(40, 100)
    ry = r * rng.uniform(1 / 1.6, 1.6)
    shape = int(rng.integers(3))
    if shape == 2:
        pen.rectangle([x - r, y - r, x + r, y + r], fill=INK)
    else:
        pen.ellipse([x - r, y - (r if shape == 0 else ry), x + r, y + (r if shape == 0 else ry)], fill=INK)
    return picture


def line(rng) -> Image.Image:
    """A straight stroke lying down: within 30 degrees of level (a dash, an underline, a slash lying low)."""
    picture, pen = _pad()
    centre, half = rng.uniform(120, 160, 2), rng.uniform(60, 110)
    angle = np.radians(rng.uniform(-30, 30))
    along = np.array([np.cos(angle), np.sin(angle)]) * half
    _stroke(pen, [tuple(centre - along), tuple(centre + along)])
    return picture


def speck(rng) -> Image.Image:
    """Almost no ink: a speck or a short flick of a thin pen (3-12 px long, 4-8 px wide) anywhere on the pad."""
    picture, pen = _pad()
    start = rng.uniform(40, PAD - 40, 2)
    end = start + rng.uniform(-12, 12, 2)
    _stroke(pen, [tuple(start), tuple(end)], int(rng.integers(4, 9)))
    return picture


NOT_DIGITS = {"almost no ink": speck, "a dot": dot, "an X": cross, "an X drawn twice": cross_twice, "a scribble": scribble,
              "a filled blob": blob, "a line lying down": line}


# ---------------------------------------------------------------------------
# Measuring


def read(picture: Image.Image) -> tuple[images.Verdict | None, dict | None]:
    """The verdict on a picture and the numbers behind it (None, None when it cannot be read)."""
    try:
        seen, _, (cropped, shaped, share) = pipeline._preprocess(picture, "auto")
    except images.ImageError:
        return None, None
    facts = verdict.measure(cropped, shaped, seen, share)
    return verdict.verdict_of(facts), facts


def tally(pictures) -> dict:
    """How many pictures were read, how many flagged, and the doubts said."""
    read_count, doubts, facts = 0, Counter(), []
    for picture in pictures:
        verdict, measured = read(picture)
        if verdict is None:
            continue
        read_count += 1
        facts.append(measured)
        if not verdict.looks_like_a_digit:
            doubts[verdict.doubt] += 1
    flagged = sum(doubts.values())
    return {"read": read_count, "flagged": flagged, "share_flagged": flagged / max(read_count, 1),
            "doubts": dict(doubts), "facts": facts}


def print_facts(name: str, facts: list[dict]) -> None:
    numeric = [key for key in facts[0] if not isinstance(facts[0][key], bool)]
    print(f"  {name}: " + "  ".join(
        f"{key} {'/'.join(f'{v:.3g}' for v in np.percentile([f[key] for f in facts], [0, 50, 99.5, 100]))}"
        for key in numeric))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "mnist"))
    parser.add_argument("--count", type=int, default=2_000)
    parser.add_argument("--per-kind", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--facts", action="store_true", help="print the measured numbers' percentiles")
    args = parser.parse_args()
    digits, _ = load_pair(Path(args.data_dir), "t10k")
    digits = digits[:args.count].reshape(-1, 28, 28)
    results = {}
    for name, marker in (("MNIST digits, ink on paper", False), ("MNIST digits, thick marker", True)):
        rng = np.random.default_rng([args.seed, int(marker)])
        results[name] = tally(digit_picture(digit, rng, marker) for digit in digits)
    for number, (name, draw) in enumerate(NOT_DIGITS.items()):
        rng = np.random.default_rng([args.seed, 10 + number])
        results[name] = tally(draw(rng) for _ in range(args.per_kind))
    print(f"load average {open('/proc/loadavg').read().split()[0]}")
    print(f"{'pictures':30} {'read':>6} {'look like a digit':>18} {'flagged':>8}  doubts")
    for name, result in results.items():
        doubts = "; ".join(f"{count}x {doubt}" for doubt, count in result["doubts"].items())
        print(f"{name:30} {result['read']:6d} {1 - result['share_flagged']:18.4f} {result['share_flagged']:8.4f}  {doubts}")
        if args.facts and result["facts"]:
            print_facts(name, result["facts"])
    digit_rate = 1 - results["MNIST digits, ink on paper"]["share_flagged"]
    print(f"bar: >= {BAR} of the MNIST digits look like a digit: {'met' if digit_rate >= BAR else 'NOT MET'}")
    print(json.dumps({"digits_look_like_digits": round(digit_rate, 4),
                      **{name: round(1 - r["share_flagged"], 4) if name.startswith("MNIST") else round(r["share_flagged"], 4)
                         for name, r in results.items()}, "bar": BAR, "met": digit_rate >= BAR}))


if __name__ == "__main__":
    main()
