"""digitnet.images.ink: the ink's bounding box and the connected blobs of ink."""

from __future__ import annotations

import numpy as np

from digitnet.images.ink import _label_components, crop_to_ink


def test_crop_to_ink_is_the_bounding_box():
    ink = np.zeros((50, 60), np.float32)
    ink[10:20, 5:40] = 0.5
    assert crop_to_ink(ink).shape == (10, 35)


def _components_by_flood_fill(mask: np.ndarray) -> np.ndarray:
    """Reference 8-connected labelling, numbered in raster order of each component's first cell."""
    labels = np.zeros(mask.shape, dtype=np.int32)
    count = 0
    for start in zip(*np.nonzero(mask)):
        if labels[start]:
            continue
        count += 1
        labels[start] = count
        stack = [start]
        while stack:
            r, c = stack.pop()
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    rr, cc = r + dr, c + dc
                    if 0 <= rr < mask.shape[0] and 0 <= cc < mask.shape[1] and mask[rr, cc] and not labels[rr, cc]:
                        labels[rr, cc] = count
                        stack.append((rr, cc))
    return labels


def test_component_labels_match_a_flood_fill():
    rng = np.random.default_rng(0)
    masks = [rng.random(rng.integers(1, 49, 2)) < density for density in (0.05, 0.3, 0.5, 0.7, 0.95) * 40]
    masks += [np.ones((48, 48), bool), np.zeros((5, 7), bool), np.indices((48, 48)).sum(axis=0) % 2 == 0]
    for mask in masks:
        labels, count = _label_components(mask)
        expected = _components_by_flood_fill(mask)
        assert count == expected.max() and labels.dtype == np.int32
        np.testing.assert_array_equal(labels, expected)
