"""digitnet.images.paper: which side of the paper the ink is on."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from test_images import seven
from digitnet.images.paper import fit_paper, ink_is_dark


def test_ink_is_dark_for_dark_ink_on_light_paper():
    pixels = np.asarray(seven(), np.float32)[:, :, None] / 255
    paper, _ = fit_paper(pixels)
    assert ink_is_dark(pixels - paper)


def test_ink_is_light_for_white_on_black():
    pixels = np.asarray(seven(ink=255, paper=0), np.float32)[:, :, None] / 255
    paper, _ = fit_paper(pixels)
    assert not ink_is_dark(pixels - paper)


def test_inversion_follows_the_paper_not_the_mean():
    """Marker ink covering most of a white card: the mean is dark, but the paper (border) is white."""
    card = Image.new("L", (100, 100), 255)
    ImageDraw.Draw(card).rectangle([12, 12, 88, 88], fill=0)
    ImageDraw.Draw(card).rectangle([40, 30, 60, 70], fill=255)  # a fat '0'
    pixels = np.asarray(card, np.float32)[:, :, None] / 255
    assert pixels.mean() < 0.5
    paper, _ = fit_paper(pixels)
    assert ink_is_dark(pixels - paper)


def test_percentile_is_numpys_to_the_bit_with_or_without_the_zeros_in_front():
    from digitnet.images.paper import percentile
    rng = np.random.default_rng(0)
    for trial in range(3000):
        values = rng.random(int(rng.integers(1, 400))).astype(np.float32)
        if trial % 2:
            values = np.round(values * 8) / 8  # ties
        values = values.astype(np.float32)
        zeros = int(rng.integers(0, 600)) if trial % 3 else 0
        q = [95, 90, 5, 50, 100, 0][trial % 6]
        whole = np.concatenate([np.zeros(zeros, np.float32), values])
        assert percentile(values[values > 0], q, zeros + int((values == 0).sum())) == float(np.percentile(whole, q))
        assert percentile(values, q) == float(np.percentile(values, q))
