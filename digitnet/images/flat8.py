"""Clean 8-bit drawings on flat paper, found on their stored levels: the page's canvas, a drawing-app export.

An opaque picture of one 8-bit grey band (what the page sends) is tested for flat paper
(``paper._flat_paper``) on its uint8 levels, and only the window around its ink
(``ink.window_of``) is made float for ``ink.ink_on_window``.  The same numbers as converting the
whole picture first: equality of levels is equality of level / 255, and the window's float pixels
are the whole picture's, cut out (a 280x280 canvas: 78,400 pixels made float, then compared,
where the window holds 20,000-40,000).  Anything else takes the float path from the start.
"""

from __future__ import annotations

import numpy as np

from digitnet.images.ink import ink_on_window, window_of
from digitnet.images.paper import _flat_paper

LEVELS = np.float32(255)  # an 8-bit level v is read as v / 255 in float32 (decode._scaled_to_unit)


def flat_levels(levels: np.ndarray) -> tuple[np.uint8, np.ndarray] | None:
    """``paper._flat_paper`` on (H, W) uint8 levels: the paper's level and the (H, W) mask of the
    pixels at exactly that level, or None when the paper is not provably flat (the same answer as
    on the float pixels)."""
    found = _flat_paper(levels[:, :, None])
    return None if found is None else (found[0][0], found[1])


def ink_on_levels(levels: np.ndarray, level: np.uint8, same: np.ndarray,
                  dark_ink: bool | None) -> tuple[np.ndarray, bool]:
    """``ink._ink_on_flat_paper``'s window ink map and polarity for (H, W) uint8 ``levels`` on paper
    of ``level`` (``same``: the pixels at that level), with only the window made float."""
    top, bottom, left, right, cell, step = window_of(same)
    region = np.divide(levels[top:bottom, left:right, None], LEVELS, dtype=np.float32)
    colour = np.divide(np.array([level]), LEVELS, dtype=np.float32)
    return ink_on_window(region, colour, same.shape, cell, step, dark_ink,
                         lambda: np.divide(levels[:, :, None], LEVELS, dtype=np.float32))
