"""images.verdict: a dot, an X, a blob, a line lying down or a scribble does not look like a digit; digits do."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digitnet import images
from digitnet.data import load_pair

SIDE, PEN = 280, 20  # the page's pad: a 280 px square, a pen 20 px wide


def pad_drawing(*strokes, width: int = PEN, fills=()) -> Image.Image:
    """Dark strokes (lists of points, round ends) and filled shapes (("ellipse"|"rectangle", box)) on white."""
    picture = Image.new("L", (SIDE, SIDE), 255)
    pen = ImageDraw.Draw(picture)
    for points in strokes:
        pen.line(points, fill=0, width=width, joint="curve")
        for x, y in (points[0], points[-1]):
            pen.ellipse([x - width / 2, y - width / 2, x + width / 2, y + width / 2], fill=0)
    for shape, box in fills:
        getattr(pen, shape)(box, fill=0)
    return picture


def verdict_of(picture) -> images.Verdict:
    return images.preprocess_with_verdict(picture)[2]


NOT_DIGITS = {
    "a dot": (pad_drawing(fills=[("ellipse", [130, 130, 152, 152])]), "almost no ink"),
    "a dot near a corner": (pad_drawing(fills=[("ellipse", [40, 200, 64, 224])]), "almost no ink"),
    "a short dash": (pad_drawing([(120, 140), (136, 146)]), "a straight line lying down"),
    "a speck": (pad_drawing([(200, 60), (206, 66)], width=6), "almost no ink"),
    "a flick": (pad_drawing([(60, 200), (70, 205)], width=8), "almost no ink"),
    "an X": (pad_drawing([(70, 70), (210, 210)], [(210, 70), (70, 210)]), "two crossing strokes"),
    "a small X": (pad_drawing([(110, 100), (170, 170)], [(170, 100), (110, 170)]), "two crossing strokes"),
    "a filled disc": (pad_drawing(fills=[("ellipse", [60, 60, 220, 220])]), "a filled blob"),
    "a filled square": (pad_drawing(fills=[("rectangle", [80, 80, 200, 200])]), "a filled blob"),
    "a level line": (pad_drawing([(50, 140), (230, 140)]), "a straight line lying down"),
    "a line lying low": (pad_drawing([(50, 170), (230, 110)]), "a straight line lying down"),
    "a scribble": (pad_drawing([(p, 60 + 16 * i) for i, p in enumerate([60, 220] * 5)], width=14),
                   "a scribble"),
}


@pytest.mark.parametrize("name", list(NOT_DIGITS))
def test_things_that_are_not_digits_are_flagged_and_say_why(name):
    picture, doubt = NOT_DIGITS[name]
    verdict = verdict_of(picture)
    assert not verdict.looks_like_a_digit, name
    assert verdict.doubt.startswith(doubt), (name, verdict.doubt)


DRAWN_DIGITS = {
    "a 1": pad_drawing([(140, 50), (140, 230)]),
    "a slanted 1": pad_drawing([(160, 50), (120, 230)]),
    "a 7": pad_drawing([(80, 60), (200, 60), (120, 230)]),
    "a 0": pad_drawing([(140 + 60 * np.cos(a), 140 + 90 * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 40)]),
    "a 4": pad_drawing([(170, 230), (170, 50), (80, 170), (210, 170)]),
    "a small 2 in a corner": pad_drawing([(30, 40), (50, 28), (70, 40), (30, 90), (75, 90)], width=10),
}


@pytest.mark.parametrize("name", list(DRAWN_DIGITS))
def test_digits_drawn_on_the_pad_look_like_digits(name):
    verdict = verdict_of(DRAWN_DIGITS[name])
    assert verdict.looks_like_a_digit, (name, verdict.doubt)
    assert verdict.doubt == ""


def mnist_picture(digit: np.ndarray, scale: int, rng) -> Image.Image:
    """An MNIST digit enlarged ``scale`` times, dark on light, off-centre on a larger page."""
    big = np.asarray(Image.fromarray(digit.astype(np.uint8)).resize((28 * scale, 28 * scale), Image.BICUBIC),
                     np.float32) / 255
    page = np.zeros((int(big.shape[0] * rng.uniform(1.2, 2)), int(big.shape[1] * rng.uniform(1.2, 2))), np.float32)
    top, left = rng.integers(0, page.shape[0] - big.shape[0] + 1), rng.integers(0, page.shape[1] - big.shape[1] + 1)
    page[top:top + big.shape[0], left:left + big.shape[1]] = big
    return Image.fromarray((255 - page * 233).astype(np.uint8))


def test_mnist_test_digits_drawn_as_pictures_look_like_digits(real_mnist_dir):
    """48 MNIST test digits (every 200th), 4-10x size: all look like a digit
    (scripts/bench_verdict.py measures the rate on thousands: the bar is 99.5%)."""
    digits, labels = load_pair(real_mnist_dir, "t10k")
    rng = np.random.default_rng(19)
    flagged = []
    for index in range(0, 9600, 200):
        verdict = verdict_of(mnist_picture(digits[index].reshape(28, 28), int(rng.integers(4, 11)), rng))
        if not verdict.looks_like_a_digit:
            flagged.append((index, int(labels[index]), verdict.doubt))
    assert flagged == []


def test_the_verdict_is_from_the_picture_and_preprocess_is_unchanged():
    """preprocess_with_verdict gives the same 28x28 and notes as preprocess_with_notes."""
    picture = DRAWN_DIGITS["a 7"]
    seen, notes, _ = images.preprocess_with_verdict(picture)
    plain, plain_notes = images.preprocess_with_notes(picture)
    assert np.array_equal(seen, plain) and notes == plain_notes


def test_depth_counts_the_3x3_erosions_a_blob_survives():
    from digitnet.images.verdict import _depth
    square = np.zeros((12, 15), bool)
    square[2:9, 3:10] = True  # 7x7: 5x5, 3x3, 1x1, then nothing
    assert _depth(square) == 4
    assert _depth(np.ones((3, 40), bool)) == 2 and _depth(np.zeros((4, 4), bool)) == 0
    assert _depth(np.eye(9, dtype=bool)) == 1  # a diagonal line: no 3x3 fits


def test_runs_and_edges_are_their_definitions_on_random_maps():
    """verdict._runs and _edge_length in few calls (bits, strokes counted along rows as they lie):
    the numbers of the plain definitions (per scan line the strokes started; ink with a paper
    4-neighbour, the border's ink all edge)."""
    from digitnet.images.verdict import _edge_length, _runs

    def starts(mask):  # per column, the strokes that start on it
        return (mask[1:] & ~mask[:-1]).sum(axis=0) + mask[0]

    def runs(box):
        columns, rows = starts(box), starts(box.T)
        def middle(c):
            n = len(c)
            return float(c[int(0.2 * n):max(int(0.8 * n), int(0.2 * n) + 1)].mean())
        def high(c):
            return float(np.sort(c)[int(0.9 * (len(c) - 1))])
        return max(middle(columns), middle(rows)), max(high(columns), high(rows))

    def edge(box):
        padded = np.pad(box, 1)
        inner = box & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
        return int(box.sum()) - int(inner.sum())

    rng = np.random.default_rng(8)
    for _ in range(600):
        box = rng.random((int(rng.integers(1, 40)), int(rng.integers(1, 40)))) < rng.random()
        assert _runs(box) == runs(box)
        assert _edge_length(box) == edge(box)
