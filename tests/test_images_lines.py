"""digitnet.images.lines: ruled lines, a graph paper's grid and a red margin line taken out before the cut."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from test_images import seven, similarity
from digitnet import images
from digitnet.images.lines import remove_lines


def on_paper(marks, size=(240, 300), skew=1.0) -> Image.Image:
    """A '7' (pencil grey) over printed marks: "rules" every 12 px, a "grid", a red "margin" line."""
    width, height = size
    page = Image.new("RGB", size, (246, 244, 236))
    draw = ImageDraw.Draw(page)
    slope = np.tan(np.radians(skew))
    if "rules" in marks or "grid" in marks:
        for y in range(7, height, 12):
            draw.line([(0, y), (width, y + slope * width)], fill=(90, 120, 190), width=2)
    if "grid" in marks:
        for x in range(5, width, 12):
            draw.line([(x, 0), (x - slope * height, height)], fill=(90, 120, 190), width=2)
    if "margin" in marks:
        draw.line([(62, 0), (62 + slope * height, height)], fill=(220, 80, 90), width=3)
    ImageDraw.Draw(page).line([(70, 80), (170, 80), (105, 230)], fill=(40, 40, 44), width=12, joint="curve")
    return page


def plain() -> np.ndarray:
    return images.preprocess(on_paper(()))


def line_rows(result: np.ndarray) -> int:
    """How many rows of the 28x28 are lit along most of its width (a line left in)."""
    return int(((result > 0.2).mean(axis=1) > 0.7).sum())


def test_a_digit_on_ruled_paper_comes_out_as_on_plain_paper():
    result = images.preprocess(on_paper(("rules",)))
    assert line_rows(result) == 0
    assert similarity(result, plain()) > 0.9


def test_graph_paper_grid_is_removed():
    result = images.preprocess(on_paper(("grid",)))
    assert line_rows(result) == 0 and line_rows(result.T) == 0
    assert similarity(result, plain()) > 0.9


def test_red_margin_line_beside_the_digit_is_not_a_stroke():
    result = images.preprocess(on_paper(("margin",)))
    assert similarity(result, plain()) > 0.9


def test_red_margin_line_on_ruled_paper():
    result = images.preprocess(on_paper(("rules", "margin")))
    assert line_rows(result) == 0
    assert similarity(result, plain()) > 0.9


def test_a_stroke_crossing_a_line_stays_whole():
    """The line goes where paper lies on both sides of it, and only there."""
    signal = np.zeros((100, 120), np.float32)
    signal[50:52, :] = 0.4          # a rule across the picture
    signal[20:90, 60:66] = 0.9      # a stroke crossing it
    cleaned = remove_lines(signal)
    assert cleaned[50:52, :50].max() == 0 and cleaned[50:52, 75:].max() == 0
    assert (cleaned[20:90, 60:66] == 0.9).all()


def test_a_plain_digit_is_left_alone():
    """No line spans the picture: the signal is returned untouched, and the 28x28 is as before."""
    signal = np.zeros((100, 120), np.float32)
    signal[20:80, 30:90] = 0.8  # a wide blob, but it reaches neither side
    assert remove_lines(signal) is signal
    assert similarity(images.preprocess(seven()), images.preprocess(seven(offset=(10, 5)))) > 0.95


def test_a_stroke_as_long_as_the_picture_is_wide_but_thick_stays():
    """A 7's bar across a tightly cropped picture is long and straight, but not thin."""
    signal = np.zeros((100, 120), np.float32)
    signal[10:24, :] = 0.9
    signal[24:95, 60:70] = 0.9
    assert (remove_lines(signal)[10:24] == 0.9).all()
