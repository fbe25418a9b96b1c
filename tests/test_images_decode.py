"""digitnet.images.decode: transparency flattened onto the background that shows the ink."""

from __future__ import annotations

import numpy as np

from digitnet.images.decode import composite


def test_composite_puts_dark_ink_on_white_and_light_ink_on_black():
    alpha = np.zeros((10, 10), np.float32)
    alpha[4:6, 2:8] = 1.0
    black = np.zeros((10, 10, 3), np.float32)
    flattened = composite(black, alpha)
    assert flattened[0, 0].tolist() == [1.0, 1.0, 1.0] and flattened[5, 5].tolist() == [0.0, 0.0, 0.0]
    white = np.ones((10, 10, 3), np.float32)
    flattened = composite(white, alpha)
    assert flattened[0, 0].tolist() == [0.0, 0.0, 0.0] and flattened[5, 5].tolist() == [1.0, 1.0, 1.0]
