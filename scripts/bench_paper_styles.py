"""The paper kinds of scripts/bench_predict.py: ruled, graph, a margin line, a hard shadow edge, a vignette.

Each style takes an MNIST digit (28x28, white ink in [0, 1]) and a seeded numpy Generator and
returns (PIL image, kind) like the styles in bench_predict.py: the digit enlarged 4-10x, off-centre
on a larger sheet, drawn in pencil or pen over the paper's own marks or under its light.

    ruled paper        blue or grey rules, 6-10 per digit height, skewed up to 2 degrees (a photo)
    graph paper        a grid of thin lines, 4-8 cells per digit height
    red margin line    a red vertical rule near or through the digit (on ruled paper half the time)
    hard shadow edge   paper grey 90-130 against 210 across a random straight edge, through the page
    flash vignette     bright in the middle, falling to 25-50% towards the corners (steeper than a quadratic)
"""

from __future__ import annotations

import numpy as np
from PIL import Image

DIGIT_HEIGHT = 20        # an MNIST digit fills 20 of its 28 rows: at scale s it is 20 s pixels tall
PENCILS = [(0.12, 0.12, 0.13), (0.22, 0.22, 0.24), (0.05, 0.05, 0.08), (0.08, 0.12, 0.4)]  # the last: blue pen


def _enlarged(digit: np.ndarray, scale: int) -> np.ndarray:
    image = Image.fromarray((digit * 255).astype(np.uint8)).resize((28 * scale, 28 * scale), Image.BICUBIC)
    return np.asarray(image, dtype=np.float32) / 255


def _sheet(digit: np.ndarray, rng, grow=(1.3, 2.0)) -> tuple[np.ndarray, int, tuple[int, int]]:
    """The digit's ink coverage off-centre on a larger sheet, its scale and its (top, left)."""
    scale = int(rng.integers(4, 11))
    coverage = _enlarged(digit, scale)
    height, width = coverage.shape
    canvas = np.zeros((int(height * rng.uniform(*grow)), int(width * rng.uniform(*grow))), np.float32)
    top = int(rng.integers(0, canvas.shape[0] - height + 1))
    left = int(rng.integers(0, canvas.shape[1] - width + 1))
    canvas[top:top + height, left:left + width] = coverage
    return canvas, scale, (top, left)


def _rules(shape, spacing: float, thickness: float, angle_degrees: float, phase: float,
           vertical: bool = False) -> np.ndarray:
    """Coverage (H, W) in [0, 1] of parallel anti-aliased lines ``spacing`` px apart, slightly skewed."""
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    along, across = (rows, cols) if vertical else (cols, rows)
    position = across + np.tan(np.radians(angle_degrees)) * along - phase
    distance = np.abs(position - spacing * np.round(position / spacing))
    return np.clip(thickness / 2 + 0.5 - distance, 0.0, 1.0)


def _line_colour(rng) -> np.ndarray:
    if rng.random() < 0.6:  # a printed blue rule
        return np.array([rng.uniform(0.45, 0.65), rng.uniform(0.62, 0.8), rng.uniform(0.88, 1.0)], np.float32)
    return np.full(3, rng.uniform(0.5, 0.75), np.float32)  # grey (a photocopy, a pencil-ruled page)


def _compose(coverage: np.ndarray, marks: list[tuple[np.ndarray, np.ndarray]], rng, light=None) -> np.ndarray:
    """Paper, then the paper's printed marks (coverage, colour), then the digit's ink, all under ``light``."""
    paper = np.array([rng.uniform(0.9, 1.0), rng.uniform(0.9, 1.0), rng.uniform(0.86, 0.97)], np.float32)
    pixels = np.broadcast_to(paper, coverage.shape + (3,)).copy()
    for mark, colour in marks:
        pixels += (colour - pixels) * mark[:, :, None]
    ink = np.asarray(PENCILS[rng.integers(len(PENCILS))], np.float32)
    pixels += (ink - pixels) * coverage[:, :, None]
    if light is not None:
        pixels *= light[:, :, None]
    return pixels + rng.normal(0, rng.uniform(0.005, 0.02), pixels.shape).astype(np.float32)


def _image(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray((np.clip(pixels, 0, 1) * 255 + 0.5).astype(np.uint8))


def _ruling(shape, scale: int, rng, per_digit=(6, 10)) -> np.ndarray:
    spacing = DIGIT_HEIGHT * scale / rng.uniform(*per_digit)
    thickness = rng.uniform(1.0, 2.5)
    return _rules(shape, spacing, thickness, rng.uniform(-2, 2), rng.uniform(0, spacing))


def style_ruled(digit, rng):
    coverage, scale, _ = _sheet(digit, rng)
    marks = [(_ruling(coverage.shape, scale, rng), _line_colour(rng))]
    return _image(_compose(coverage, marks, rng)), "png"


def style_graph(digit, rng):
    coverage, scale, _ = _sheet(digit, rng)
    spacing = DIGIT_HEIGHT * scale / rng.uniform(4, 8)
    thickness, angle, colour = rng.uniform(0.8, 1.8), rng.uniform(-2, 2), _line_colour(rng)
    grid = np.maximum(_rules(coverage.shape, spacing, thickness, angle, rng.uniform(0, spacing)),
                      _rules(coverage.shape, spacing, thickness, -angle, rng.uniform(0, spacing), vertical=True))
    return _image(_compose(coverage, [(grid, colour)], rng)), "png"


def style_margin(digit, rng):
    coverage, scale, (top, left) = _sheet(digit, rng)
    # Through the digit's box, or up to a third of its width beside it.
    x = left + 28 * scale * rng.uniform(0.1 - 0.33, 0.9 + 0.33)
    red = np.array([rng.uniform(0.8, 0.95), rng.uniform(0.2, 0.45), rng.uniform(0.25, 0.5)], np.float32)
    margin = _rules(coverage.shape, 1e6, rng.uniform(1.5, 4.0), rng.uniform(-2, 2), x, vertical=True)
    marks = [(margin, red)]
    if rng.random() < 0.5:
        marks.insert(0, (_ruling(coverage.shape, scale, rng, per_digit=(1.5, 3)), _line_colour(rng)))
    return _image(_compose(coverage, marks, rng)), "png"


def style_shadow(digit, rng):
    coverage, _, _ = _sheet(digit, rng, grow=(1.4, 2.2))
    height, width = coverage.shape
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    y0, x0 = rng.uniform(0.2, 0.8) * height, rng.uniform(0.2, 0.8) * width
    distance = (rows - y0) * np.cos(angle) + (cols - x0) * np.sin(angle)
    blur = rng.uniform(0.5, 3.0)  # a sharp edge: a penumbra of a pixel or three
    lit = np.clip(distance / blur + 0.5, 0.0, 1.0)
    shadow = rng.uniform(90, 130) / 210
    light = (shadow + (1 - shadow) * lit) * (210 / 255) / 0.95
    pixels = _compose(coverage, [], rng, light=light.astype(np.float32))
    if rng.random() < 0.5:
        return _image(pixels), ("jpg", int(rng.integers(75, 95)))
    return _image(pixels), "png"


def style_vignette(digit, rng):
    coverage, _, _ = _sheet(digit, rng, grow=(1.5, 2.5))
    height, width = coverage.shape
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    cy, cx = height * rng.uniform(0.35, 0.65), width * rng.uniform(0.35, 0.65)
    radius = np.hypot((rows - cy) / height, (cols - cx) / width) / rng.uniform(0.45, 0.7)
    depth, power = rng.uniform(0.5, 0.75), rng.uniform(3.0, 6.0)
    light = 1 - depth * np.clip(radius, 0, 1) ** power
    pixels = _compose(coverage, [], rng, light=light.astype(np.float32))
    return _image(pixels), ("jpg", int(rng.integers(75, 95)))


PAPER_STYLES = {
    "ruled paper": style_ruled,
    "graph paper": style_graph,
    "red margin line": style_margin,
    "hard shadow edge": style_shadow,
    "flash vignette": style_vignette,
}
