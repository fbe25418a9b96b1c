"""digitnet.images.ink: the ink's bounding box and the connected blobs of ink."""

from __future__ import annotations

import numpy as np

from digitnet.images.ink import _count_components, _label_components, _runs, crop_to_ink


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
        assert count == expected.max() == _count_components(_runs(mask)) and labels.dtype == np.int32
        np.testing.assert_array_equal(labels, expected)


def test_the_detection_copy_is_the_edge_padded_block_mean_to_the_bit():
    """shrink_for_detection sums without padding a copy, on channel planes, in the order an
    edge-padded copy would be summed: the same float32 numbers, whatever the shape and dtype."""
    from digitnet.images.ink import shrink_for_detection

    rng = np.random.default_rng(0)
    for shape in ((753, 1001, 3), (300, 1000, 1), (257, 260, 4), (999, 257, 2)):
        for dtype in (np.float32, np.float64):
            pixels = rng.random(shape).astype(dtype)
            small, factor = shrink_for_detection(pixels)
            rows, cols = -(-shape[0] // factor), -(-shape[1] // factor)
            padded = np.pad(pixels, ((0, rows * factor - shape[0]), (0, cols * factor - shape[1]), (0, 0)), mode="edge")
            expected = np.zeros((rows, cols, shape[2]), np.float32)
            for dy in range(factor):
                for dx in range(factor):
                    expected += padded[dy::factor, dx::factor]
            assert factor > 1 and small.flags.c_contiguous
            assert np.array_equal(small, expected / np.float32(factor * factor))
    pixels = rng.random((200, 100, 3)).astype(np.float32)
    assert shrink_for_detection(pixels)[0] is pixels  # small enough already: unchanged


def test_the_cells_holding_ink_are_those_whose_mass_is_positive():
    from digitnet.images.ink import _block_any, _block_sum

    rng = np.random.default_rng(1)
    for _ in range(300):
        height, width = rng.integers(1, 200, 2)
        cell = int(rng.integers(1, 12))
        ink = (rng.random((height, width)) * (rng.random((height, width)) < rng.choice([0.001, 0.05, 0.5]))).astype(np.float32)
        np.testing.assert_array_equal(_block_any(ink, cell), _block_sum(ink, cell) > 0)


def test_keep_digit_leaves_one_blob_as_it_is_and_drops_a_speck_beside_it():
    from digitnet.images.ink import keep_digit

    ink = np.zeros((120, 120), np.float32)
    ink[20:100, 50:60] = 1.0  # a 1
    assert keep_digit(ink) is ink
    specked = ink.copy()
    specked[5:7, 100:102] = 0.8  # far from the stroke: a blob of its own, well under 2% of the mass
    kept = keep_digit(specked)
    np.testing.assert_array_equal(kept, ink)


def test_one_group_of_columns_is_one_digit_and_two_side_by_side_are_two():
    from digitnet.images.ink import digit_groups

    one = np.zeros((100, 60), np.float32)
    one[:, 20:30] = 1.0
    assert digit_groups(one) == 1
    two = np.zeros((100, 140), np.float32)
    two[:, 10:40] = 1.0
    two[:, 100:130] = 1.0
    assert digit_groups(two) == 2


def test_one_blob_agrees_with_the_runs_components_on_random_grids():
    """keep_digit's shortcut (a flood on the grid's bits) says "one blob" exactly when the runs'
    union-find counts at most one component."""
    from digitnet.images.ink import _one_blob

    rng = np.random.default_rng(5)
    for _ in range(1500):
        height, width = rng.integers(1, 40, 2)
        mask = rng.random((height, width)) < rng.uniform(0.05, 0.7)
        assert _one_blob(mask) == (_count_components(_runs(mask)) <= 1)
    diagonal = np.eye(6, dtype=bool)  # 8-connected: one blob through the corners
    assert _one_blob(diagonal) and _one_blob(np.zeros((3, 3), bool))
    apart = np.zeros((4, 9), bool)
    apart[:, 0] = apart[:, 8] = True  # the row's last bit must not carry into the next row's first
    assert not _one_blob(apart)


def test_crop_with_columns_is_the_crop_and_its_columns_any():
    from digitnet.images.errors import ImageError
    from digitnet.images.ink import crop_with_columns, digit_groups

    rng = np.random.default_rng(2)
    for _ in range(200):
        ink = np.where(rng.random((30, 40)) < 0.03, rng.random((30, 40)), 0).astype(np.float32)
        if not ink.any():
            continue
        cropped, used = crop_with_columns(ink)
        np.testing.assert_array_equal(cropped, crop_to_ink(ink))
        np.testing.assert_array_equal(used, cropped.any(axis=0))
        assert digit_groups(cropped, used) == digit_groups(cropped)
    try:
        crop_with_columns(np.zeros((5, 5), np.float32))
    except ImageError as e:
        assert "blank" in str(e)
    else:
        raise AssertionError("a blank map has no crop")
