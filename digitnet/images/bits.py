"""A boolean map as one Python integer of bits, for erosions done as shifts and ANDs.

Row r of an (H, W) map is bits r*stride .. r*stride + W - 1 (stride = W + 1): the last bit of
each row is background, so a shift by 1 never carries a pixel into the next row, and a shift by
``stride`` is the row above or below.  On a few thousand pixels, four shifts and four ANDs are
one erosion, far quicker than four numpy calls (normalise.stroke_width, verdict._depth).
"""

from __future__ import annotations

import numpy as np


def as_bits(mask: np.ndarray) -> tuple[int, int]:
    """The integer of ``mask``'s bits and its row stride (see the module's docstring)."""
    height, width = mask.shape
    stride = width + 1
    rows = np.zeros((height, stride), dtype=bool)
    rows[:, :width] = mask
    return int.from_bytes(np.packbits(rows, bitorder="little").tobytes(), "little"), stride
