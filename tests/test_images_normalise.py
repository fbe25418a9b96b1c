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
