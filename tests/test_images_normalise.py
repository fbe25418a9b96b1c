"""digitnet.images.normalise: the 20 px box, the centre of mass, the stroke width."""

from __future__ import annotations

import numpy as np
import pytest

from test_images import centre_of_mass
from digitnet.images.normalise import centre_by_mass, fit_to_box, stroke_width


def test_fit_to_box_keeps_aspect_ratio():
    boxed = fit_to_box(np.ones((100, 50), np.float32))
    assert boxed.shape == (20, 10)
    assert fit_to_box(np.ones((30, 90), np.float32)).shape == (7, 20)
    assert boxed.max() == pytest.approx(1.0)


def test_fit_to_box_antialiases_when_shrinking():
    stripes = np.zeros((200, 200), np.float32)
    stripes[:, ::10] = 1.0  # thin lines 10 px apart become grey, not lost or jagged
    boxed = fit_to_box(stripes)
    assert boxed.shape == (20, 20)
    assert np.ptp(boxed) < 0.1 and boxed.min() > 0


def test_centre_by_mass_puts_the_centre_of_mass_at_14_14():
    boxed = np.zeros((20, 12), np.float32)
    boxed[:4, :] = 1.0  # mass concentrated at the top right, like a '7'
    boxed[:, 9:] = 1.0
    field = centre_by_mass(boxed)
    assert field.shape == (28, 28)
    row, col = centre_of_mass(field)
    assert abs(row - 14) <= 0.5 and abs(col - 14) <= 0.5
    assert field.sum() == pytest.approx(boxed.sum())  # nothing cut off


def test_centre_by_mass_keeps_lopsided_ink_inside_the_field():
    boxed = np.zeros((20, 20), np.float32)
    boxed[0, 0] = 1.0
    boxed[19, 19] = 0.01
    assert centre_by_mass(boxed).sum() == pytest.approx(boxed.sum())


def test_stroke_width_measures_lines_and_ignores_blobs():
    ink = np.zeros((100, 100), np.float32)
    ink[20:80, 40:47] = 1.0
    assert stroke_width(ink) == 7
    ink[10:30, 10:30] = 1.0  # a blob (a loop filled in by a marker) does not make the strokes wider
    assert stroke_width(ink) == 7


def _peeled_depth_width(ink: np.ndarray, level: float = 0.5) -> float:
    """stroke_width as it was first written, on boolean arrays: the depth of every pixel, then the
    median depth over the pixels at least as deep as their eight neighbours (the specification)."""
    from digitnet.images.normalise import _median_of_counts
    inside = ink > level
    if not inside.any():
        return 0.0
    layer = np.pad(inside, 1)
    depth = np.zeros(layer.shape, np.int32)
    peeled = 0
    while layer.any():
        peeled += 1
        depth += layer
        c = layer[1:-1, 1:-1]
        if peeled % 2:
            inner = c & layer[:-2, 1:-1] & layer[2:, 1:-1] & layer[1:-1, :-2] & layer[1:-1, 2:]
        else:
            inner = np.ones_like(c)
            for dy in range(3):
                for dx in range(3):
                    inner &= layer[dy:dy + c.shape[0], dx:dx + c.shape[1]]
        layer = np.pad(inner, 1)
    around = np.max([np.pad(depth, 1)[dy:dy + depth.shape[0], dx:dx + depth.shape[1]]
                     for dy in range(3) for dx in range(3)], axis=0)
    centre = (depth > 0) & (depth >= around)
    return 2.0 * _median_of_counts(np.bincount(depth[centre])) - 1.0


def test_stroke_width_on_bits_is_the_peeled_depth_of_its_specification():
    from digitnet.images.normalise import stroke_width
    rng = np.random.default_rng(3)
    maps = [rng.random((int(rng.integers(1, 90)), int(rng.integers(1, 90)))) * rng.uniform(0.5, 1.5)
            for _ in range(150)]
    maps += [np.ones((int(rng.integers(1, 40)), int(rng.integers(1, 70)))) for _ in range(20)]
    disc = (np.hypot(*np.mgrid[-30:31, -30:31]) < 25).astype(float)
    for ink in maps + [disc, np.zeros((5, 5)), np.eye(40)]:
        assert stroke_width(ink) == _peeled_depth_width(ink)


def test_the_median_of_a_histogram_is_numpys_median_of_its_values():
    from digitnet.images.normalise import _median_of_counts
    rng = np.random.default_rng(5)
    for _ in range(2000):
        counts = rng.integers(0, int(rng.choice([2, 5, 50])), int(rng.integers(1, 15)))
        if counts.sum() == 0:
            continue
        assert _median_of_counts(counts) == np.median(np.repeat(np.arange(counts.size), counts))
        assert _median_of_counts(counts.tolist()) == _median_of_counts(counts)


def test_a_settled_median_is_the_median_whatever_the_deeper_layers_add():
    """stroke_width stops peeling once the deeper layers (at most ``deeper`` more centre-line pixels,
    all deeper than any counted) cannot move the median: every way of adding them agrees."""
    from digitnet.images.normalise import _median_of_counts, _settled_median
    rng = np.random.default_rng(11)
    settled = 0
    for _ in range(3000):
        counts = rng.integers(0, int(rng.choice([3, 20, 200])), int(rng.integers(1, 12))).tolist()
        counted, deeper = sum(counts), int(rng.integers(0, 40))
        if counted == 0:
            continue
        answer = _settled_median(counts, counted, deeper)
        if answer is None:
            continue
        settled += 1
        for _ in range(5):  # the deeper pixels spread over a few more depths, any of them
            more = rng.multinomial(int(rng.integers(0, deeper + 1)), np.ones(4) / 4).tolist()
            assert _median_of_counts(counts + more) == answer
    assert settled > 500


def test_stroke_width_stopping_early_on_thick_strokes_is_the_peeled_depth(monkeypatch):
    """Strokes as wide as a digit's at FINE_SIDE, with blobs where a marker closed a loop: the early
    stop is taken, and the width is the specification's."""
    from digitnet.images import normalise
    stops = []
    settle = normalise._settled_median
    monkeypatch.setattr(normalise, "_settled_median", lambda *a: stops.append(settle(*a)) or stops[-1])
    y, x = np.mgrid[0:160, 0:130]
    rng = np.random.default_rng(12)
    for _ in range(12):
        width, radius = rng.uniform(6, 24), rng.uniform(30, 55)
        ring = np.abs(np.hypot(y - 80, x - 65) - radius) < width / 2
        ring |= np.hypot(y - rng.uniform(30, 130), x - rng.uniform(30, 100)) < rng.uniform(5, 25)  # a blob
        ring |= (np.abs(x - rng.uniform(20, 110)) < width / 2) & (y > rng.uniform(0, 80))  # a stem
        ink = ring.astype(np.float32)
        assert normalise.stroke_width(ink) == _peeled_depth_width(ink)
    assert any(stop is not None for stop in stops)
