"""Clean 8-bit drawings on flat paper, found on their stored levels: the page's canvas, a drawing-app export.

An opaque picture of one 8-bit grey band (what the page sends) is tested for flat paper
(``paper._flat_paper``) on its uint8 levels, and only the window around its ink
(``ink.window_of``) is made float for ``ink.ink_of_signal``.  The same numbers as converting the
whole picture first: equality of levels is equality of level / 255, and the window's float pixels
are the whole picture's, cut out (a 280x280 canvas: 78,400 pixels made float, then compared,
where the window holds 20,000-40,000).  Anything else takes the float path from the start.
"""

from __future__ import annotations

import functools

import numpy as np

from digitnet.images.ink import ink_of_signal, window_of
from digitnet.images.paper import MIN_PAPER_TOLERANCE, _flat_paper, ink_is_dark, ink_is_dark_one_sided

LEVELS = np.float32(255)  # an 8-bit level v is read as v / 255 in float32 (decode._scaled_to_unit)


def flat_levels(levels: np.ndarray) -> tuple[np.uint8, np.ndarray] | None:
    """``paper._flat_paper`` on (H, W) uint8 levels: the paper's level and the (H, W) mask of the
    pixels at exactly that level, or None when the paper is not provably flat (the same answer as
    on the float pixels)."""
    found = _flat_paper(levels[:, :, None])
    return None if found is None else (found[0][0], found[1])


def ink_on_levels(levels: np.ndarray, level: np.uint8, same: np.ndarray,
                  dark_ink: bool | None) -> tuple[np.ndarray, bool]:
    """``ink.ink_on_window``'s window ink map and polarity for (H, W) uint8 ``levels`` on paper of
    ``level`` (``same``: the pixels at that level), with only the window made float, and the side of
    the ink and which pixels are paper read off the levels: level / 255 is increasing, so the
    residual's extremes have the signs of the levels' minus the paper's, and the levels close enough
    to the paper's are one range (``_paper_levels``), four uint8 reductions and compares where the
    floats took eight; the ink signal is made from the levels clipped at the paper's."""
    top, bottom, left, right, cell, step = window_of(same)
    window = levels[top:bottom, left:right]
    colour = np.divide(np.array([level]), LEVELS, dtype=np.float32)
    if dark_ink is None:
        dark_ink = ink_is_dark_one_sided(int(window.min()) - int(level), int(window.max()) - int(level))
        if dark_ink is None:
            dark_ink = ink_is_dark(np.divide(levels[:, :, None], LEVELS, dtype=np.float32) - colour)
    # paper.ink_signal, max(+-(v / 255 - paper), 0), as the levels clipped at the paper's first: the
    # same numbers, made float once, two calls fewer (a zero's sign may differ: thresholding subtracts
    # a positive level from every pixel, so no later step reads it).
    if dark_ink:
        signal = np.subtract(colour[0], np.divide(np.minimum(window, level), LEVELS, dtype=np.float32))
    else:
        signal = np.subtract(np.divide(np.maximum(window, level), LEVELS, dtype=np.float32), colour[0])
    low, high = _paper_levels(int(level))
    sampled = window[::step, ::step]
    sampled_paper = (sampled >= low) & (sampled <= high)
    return ink_of_signal(signal, sampled_paper, same.shape, cell, step), dark_ink


@functools.lru_cache(maxsize=256)
def _paper_levels(level: int) -> tuple[int, int]:
    """The lowest and highest 8-bit levels that ``ink.ink_on_window`` counts as paper of ``level``
    (|v / 255 - level / 255| <= MIN_PAPER_TOLERANCE, in its float32 arithmetic): one range, as the
    distance grows on both sides."""
    every = np.arange(256, dtype=np.uint8)[:, None]
    colour = np.divide(np.array([level], dtype=np.uint8), LEVELS, dtype=np.float32)
    near = (np.abs(np.divide(every, LEVELS, dtype=np.float32) - colour) <= MIN_PAPER_TOLERANCE)[:, 0]
    found = near.nonzero()[0]
    low, high = int(found[0]), int(found[-1])
    if not near[low:high + 1].all():  # never: the distance only grows away from the paper's level
        raise AssertionError(f"the paper levels of {level} are not one range")
    return low, high
