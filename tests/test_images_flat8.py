"""digitnet.images.flat8: an 8-bit drawing on flat paper read on its levels gives the float path's numbers."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digitnet.images import flat8, pipeline
from digitnet.images.decode import to_float_channels
from digitnet.images.errors import ImageError
from digitnet.images.ink import _ink_on_flat_paper
from digitnet.images.paper import MIN_PAPER_TOLERANCE, _flat_paper


def drawing(side: int, paper: int, ink: int, width: float, seed: int) -> Image.Image:
    """Strokes of level ``ink`` on paper of level ``paper`` (anti-aliased edges), 8-bit grey."""
    rng = np.random.default_rng(seed)
    big = Image.new("L", (4 * side, 4 * side), paper)
    pen = ImageDraw.Draw(big)
    points = [tuple(rng.uniform(0.2, 0.8, 2) * 4 * side) for _ in range(4)]
    pen.line(points, fill=ink, width=max(1, round(width * 4 * side)), joint="curve")
    return big.resize((side, side), Image.Resampling.BOX)


CASES = [(280, 255, 22, 0.072, 0), (280, 255, 22, 0.02, 1), (140, 240, 60, 0.1, 2), (50, 255, 0, 0.1, 3),
         (300, 0, 255, 0.08, 4), (512, 200, 30, 0.05, 5), (280, 128, 250, 0.06, 6)]


@pytest.mark.parametrize("side, paper, ink, width, seed", CASES)
@pytest.mark.parametrize("dark_ink", [None, True, False])
def test_the_window_made_float_gives_the_whole_pictures_numbers(side, paper, ink, width, seed, dark_ink):
    image = drawing(side, paper, ink, width, seed)
    levels = np.asarray(image)
    pixels = to_float_channels(image)[0]
    flat = _flat_paper(pixels)
    found = flat8.flat_levels(levels)
    assert (flat is None) == (found is None)
    assert flat is not None  # these drawings are all on flat paper
    np.testing.assert_array_equal(found[1], flat[1])
    try:
        expected = _ink_on_flat_paper(pixels, *flat, dark_ink)[:2]
    except ImageError as e:
        with pytest.raises(ImageError, match=str(e)[:30]):
            flat8.ink_on_levels(levels, *found, dark_ink)
        return
    window, dark = flat8.ink_on_levels(levels, *found, dark_ink)
    assert dark == expected[1]
    np.testing.assert_array_equal(window, expected[0])


def test_the_paper_levels_are_those_the_float_path_counts_as_paper():
    levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    pixels = to_float_channels(Image.fromarray(levels))[0]  # as decode makes floats of them
    for level in range(256):
        colour = pixels.reshape(-1, pixels.shape[-1])[level]
        expected = np.abs(pixels - colour)[..., 0] <= MIN_PAPER_TOLERANCE  # ink.ink_on_window's test
        low, high = flat8._paper_levels(level)
        np.testing.assert_array_equal((levels >= low) & (levels <= high), expected)


def test_ink_on_both_sides_of_the_paper_is_judged_on_the_whole_picture():
    image = drawing(280, 128, 20, 0.06, 7)
    ImageDraw.Draw(image).ellipse([20, 20, 40, 40], fill=250)  # a light mark too
    levels = np.asarray(image)
    pixels = to_float_channels(image)[0]
    window, dark = flat8.ink_on_levels(levels, *flat8.flat_levels(levels), None)
    expected, expected_dark, _ = _ink_on_flat_paper(pixels, *_flat_paper(pixels), None)
    assert dark == expected_dark
    np.testing.assert_array_equal(window, expected)


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("side, paper, ink, width, seed", CASES)
def test_the_pipeline_reads_a_drawing_alike_as_grey_levels_and_as_floats(side, paper, ink, width, seed):
    """The levels path (an L picture) and the float path (the same pixels as a float array) give the
    same 28x28 input, notes and verdict, to the bit."""
    image = drawing(side, paper, ink, width, seed)
    floats = np.asarray(image, dtype=np.float32) / np.float32(255)
    try:
        expected = pipeline.preprocess_with_verdict(floats)
    except ImageError as e:
        with pytest.raises(ImageError, match=str(e)[:30]):
            pipeline.preprocess_with_verdict(image)
        return
    seen, notes, verdict = pipeline.preprocess_with_verdict(Image.open(io.BytesIO(png(image))))
    np.testing.assert_array_equal(seen, expected[0])
    assert (notes, verdict) == expected[1:]


def test_a_forced_polarity_that_finds_nothing_says_which_would():
    image = drawing(280, 255, 22, 0.072, 0)  # dark ink
    with pytest.raises(ImageError, match="try --invert yes"):
        pipeline.preprocess(image, invert="no")
    assert pipeline.preprocess(image, invert="yes").max() == pytest.approx(1.0)
