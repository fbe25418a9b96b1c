"""Distortions: shifts, elastic and affine maps, the preview (the --augment language: test_augment_spec)."""

import numpy as np
import pytest

from digitnet import augment
from digitnet.augment import distort, shift_images
from digitnet.augment_spec import parse


def digit_images(n=6, seed=0):
    """A few uint8 28x28 images holding a bright block, so motion is easy to measure."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 28, 28), dtype=np.uint8)
    for i in range(n):
        top, left = rng.integers(8, 14, 2)
        images[i, top:top + 8, left:left + 6] = 255
    return images.reshape(n, -1)


def test_shift_moves_whole_pixels_and_keeps_the_ink():
    images = digit_images()
    shifted = shift_images(images.copy(), 2, np.random.default_rng(0))
    for before, after in zip(images, shifted):
        assert after.sum() == before.sum()  # the block stays inside the frame
        ys, xs = np.nonzero(before.reshape(28, 28))
        ys2, xs2 = np.nonzero(after.reshape(28, 28))
        assert abs(ys2.min() - ys.min()) <= 2 and abs(xs2.min() - xs.min()) <= 2


def test_no_resampling_term_gives_the_plain_floats():
    images = digit_images()
    out = np.empty(images.shape, np.float32)
    distort(images.copy(), parse("0"), np.random.default_rng(0), out)
    np.testing.assert_array_equal(out, images.astype(np.float32) / np.float32(255))


def test_identity_maps_resample_exactly():
    """alpha 0 + an affine range of 0 is the identity: bilinear interpolation at the pixel centres."""
    images = digit_images()
    out = np.empty(images.shape, np.float32)
    augment.resample(images, np.tile(augment._GRID[0], (len(images), 1)),
                     np.tile(augment._GRID[1], (len(images), 1)), out)
    np.testing.assert_allclose(out, images / 255, atol=1e-6)


def test_resampling_half_a_pixel_averages_neighbours_and_outside_is_background():
    image = np.zeros((1, 784), np.uint8)
    image[0, 28 * 10 + 10] = 200
    y = np.full((1, 784), 10.0, np.float32)
    x = np.full((1, 784), 9.5, np.float32)
    x[0, 1] = -5.0  # far outside: background
    out = np.empty((1, 784), np.float32)
    augment.resample(image, y, x, out)
    assert out[0, 0] == pytest.approx(100 / 255) and out[0, 1] == 0


@pytest.mark.parametrize("spec", ["elastic=34:4", "affine=15:0.15", "shift=1,elastic=20:5,affine=10:0.1"])
def test_distortions_are_new_per_image_bounded_and_seeded(spec):
    images = np.repeat(digit_images(1), 4, axis=0)
    out1, out2 = np.empty(images.shape, np.float32), np.empty(images.shape, np.float32)
    distort(images.copy(), parse(spec), np.random.default_rng(7), out1)
    distort(images.copy(), parse(spec), np.random.default_rng(7), out2)
    np.testing.assert_array_equal(out1, out2)  # same seed, same distortions
    assert out1.min() >= 0 and out1.max() <= 1
    assert not np.array_equal(out1[0], out1[1])  # each image its own field
    assert not np.allclose(out1[0], images[0] / 255)  # and it did move
    # The ink roughly stays: a distortion, not a different picture.
    assert 0.5 < out1.sum() / (len(images) * images[0].sum() / 255) < 1.5


def test_elastic_displacements_have_the_expected_size():
    """Uniform(-1, 1) smoothed by a normalised Gaussian of width sigma has standard deviation
    about sqrt(1/3) / (2 sqrt(pi) sigma) away from the border; alpha scales it."""
    field = augment.elastic_displacements(400, 34.0, 4.0, np.random.default_rng(0))
    centre = field[:, :, 10:18, 10:18]
    expected = 34 * np.sqrt(1 / 3) / (2 * np.sqrt(np.pi) * 4)
    assert centre.std() == pytest.approx(expected, rel=0.15)
    assert abs(centre.mean()) < 0.05 * expected


def test_gaussian_matrix_is_a_normalised_kernel_inside():
    g = augment.gaussian_matrix(2.0)
    assert g.shape == (28, 28)
    assert g[14].sum() == pytest.approx(1.0, abs=1e-5)  # a full kernel fits in the middle
    assert g[0].sum() < 1  # at the border part of it falls outside (zero padding)
    np.testing.assert_allclose(g, g.T, atol=1e-7)


def test_affine_matrices_within_their_ranges():
    m = augment.affine_matrices(2000, 15, 0.15, np.random.default_rng(0))
    det = np.linalg.det(m.astype(np.float64))
    assert det.min() > 0.85 ** 2 - 1e-6 and det.max() < 1.15 ** 2 + 1e-6
    assert np.allclose(augment.affine_matrices(3, 0, 0, np.random.default_rng(0)), np.eye(2))


def test_distortion_memory_is_bounded_by_sub_chunks():
    """A chunk larger than SUB_CHUNK is processed in pieces; results do not depend on it."""
    images = np.repeat(digit_images(1), augment.SUB_CHUNK + 5, axis=0)
    out = np.empty(images.shape, np.float32)
    distort(images.copy(), parse("affine=10:0.1"), np.random.default_rng(0), out)
    assert np.isfinite(out).all() and (out.sum(axis=1) > 0).all()


def test_preview_grid_has_one_row_per_image_and_the_original_first():
    images = digit_images(3)
    picture = augment.preview(images, parse("elastic=34:4"), np.random.default_rng(0), columns=4, scale=2)
    assert picture.size == (56 * 5 + 4 * 4 + 10, 3 * 56 + 2 * 4)
    first = np.asarray(picture)[:56, :56]
    np.testing.assert_array_equal(first[::2, ::2], images[0].reshape(28, 28))
