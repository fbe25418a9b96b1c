"""Distortions of the training images, new ones every epoch: shifts, elastic and affine maps.

Expanding the training data with distorted copies (textbook ch. 6, after Simard,
Steinkraus & Platt 2003, "Best practices for convolutional neural networks
applied to visual document analysis") teaches the network that a digit moved,
tilted or wobbled a little is still the same digit.

``--augment`` is a small language (``shift=2``, ``elastic=34:4``,
``affine=15:0.15``, comma-separated), read by ``augment_spec``, which needs no
numpy; ``parse`` and ``Augmentation`` are imported here for the callers that
distort.

Elastic (Simard et al., section 2): draw a displacement field whose every
component is uniform in [-1, 1], smooth it with a Gaussian of width sigma
pixels (which makes neighbouring pixels move together), scale it by alpha, and
read each output pixel from the displaced position by bilinear interpolation.
A Gaussian smoothing of a 28x28 field is G F G^T for a 28x28 matrix G, so a
chunk of fields is smoothed by two matrix products.  Affine maps use the same
resampling, and both compose into one displacement, so the image is
interpolated once.
"""

from __future__ import annotations

import numpy as np

from digitnet.augment_spec import Augmentation

SIDE = 28
# Images resampled at a time: bounds the temporaries (about 20 float32 arrays of
# SUB_CHUNK x 784, 3 MB each) whatever the chunk the caller passes.
SUB_CHUNK = 1000


def shift_images(images: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Move each 28x28 image (a row of ``images``, in place) by a random whole-pixel
    offset of at most ``max_shift`` in each direction, filling with background.

    Images sharing an offset are moved with one slice copy.
    """
    k = len(images)
    side = SIDE
    square = images.reshape(k, side, side)
    padded = np.zeros((k, side + 2 * max_shift, side + 2 * max_shift), dtype=images.dtype)
    padded[:, max_shift:max_shift + side, max_shift:max_shift + side] = square
    offsets = rng.integers(-max_shift, max_shift + 1, size=(k, 2))
    width = 2 * max_shift + 1
    groups = (offsets[:, 0] + max_shift) * width + (offsets[:, 1] + max_shift)
    for group in np.unique(groups):
        members = np.flatnonzero(groups == group)
        row, col = divmod(int(group), width)
        dy, dx = row - max_shift, col - max_shift
        # An image moved down by dy is read from dy rows higher in the padded copy.
        top, left = max_shift - dy, max_shift - dx
        square[members] = padded[members, top:top + side, left:left + side]
    return images


def gaussian_matrix(sigma: float, side: int = SIDE, dtype=np.float32) -> np.ndarray:
    """G with (G f)_i = sum_j g(i - j) f_j: 1-D Gaussian smoothing of width sigma, as a matrix.

    The kernel is truncated at 4 sigma and normalised to sum 1; beyond the image
    the field counts as 0 (so displacements fade towards the border).
    """
    radius = int(4 * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    i = np.arange(side)
    distance = i[None, :] - i[:, None]
    inside = np.abs(distance) <= radius
    return np.where(inside, kernel[np.clip(distance + radius, 0, 2 * radius)], 0).astype(dtype)


def elastic_displacements(k: int, alpha: float, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """(k, 2, 28, 28) displacements (dy, dx) in pixels: alpha * Gaussian_sigma * U(-1, 1)."""
    fields = rng.random(size=(k * 2, SIDE, SIDE), dtype=np.float32)
    fields *= 2
    fields -= 1
    g = gaussian_matrix(sigma)
    # G F G^T for every field, with alpha folded into G^T.
    smoothed = np.matmul(np.matmul(g, fields), g.T * np.float32(alpha))
    return smoothed.reshape(k, 2, SIDE, SIDE)


def affine_matrices(k: int, degrees: float, scale: float, rng: np.random.Generator) -> np.ndarray:
    """(k, 2, 2) random maps: rotation by U(-degrees, degrees), then x/y scales 1 + U(-scale, scale)
    and a shear U(-scale, scale)."""
    theta = np.deg2rad(rng.uniform(-degrees, degrees, k))
    sy, sx, shear = (1 + rng.uniform(-scale, scale, k), 1 + rng.uniform(-scale, scale, k),
                     rng.uniform(-scale, scale, k))
    cos, sin = np.cos(theta), np.sin(theta)
    # (y, x) coordinates: rotation [[cos, -sin], [sin, cos]] times [[sy, 0], [shear, sx]].
    m = np.empty((k, 2, 2))
    m[:, 0, 0] = cos * sy - sin * shear
    m[:, 0, 1] = -sin * sx
    m[:, 1, 0] = sin * sy + cos * shear
    m[:, 1, 1] = cos * sx
    return m.astype(np.float32)


_GRID = np.stack(np.meshgrid(np.arange(SIDE), np.arange(SIDE), indexing="ij")).reshape(2, -1).astype(np.float32)
_CENTRE = (SIDE - 1) / 2
_CENTRED = _GRID - _CENTRE  # the grid about the image's centre, where affine maps turn and scale


def resample(images: np.ndarray, source_y: np.ndarray, source_x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out[i, p] = bilinear interpolation of uint8 image i at (source_y[i, p], source_x[i, p]), / 255.

    Positions outside the image read background (0).
    """
    k = len(images)
    width = SIDE + 2
    padded = np.zeros((k, width, width), dtype=np.float32)  # a border of background all round
    padded[:, 1:-1, 1:-1] = images.reshape(k, SIDE, SIDE)
    flat = padded.reshape(-1)
    np.clip(source_y, -1, SIDE, out=source_y)
    np.clip(source_x, -1, SIDE, out=source_x)
    y0 = np.floor(source_y)
    np.minimum(y0, SIDE - 1, out=y0)
    x0 = np.floor(source_x)
    np.minimum(x0, SIDE - 1, out=x0)
    wy = np.subtract(source_y, y0, out=source_y)
    wx = np.subtract(source_x, x0, out=source_x)
    # Index of the top-left neighbour in the flattened stack of padded images.
    y0 += 1
    y0 *= width
    x0 += 1
    y0 += x0
    index = y0.astype(np.intp)
    index += (np.arange(k, dtype=np.intp) * width * width)[:, None]
    top = flat.take(index)
    right = flat.take(index + 1)
    right -= top
    right *= wx
    top += right
    index += width
    bottom = flat.take(index)
    index += 1
    right = flat.take(index, out=right)
    right -= bottom
    right *= wx
    bottom += right
    bottom -= top
    bottom *= wy
    top += bottom
    np.multiply(top, np.float32(1 / 255), out=out, casting="unsafe")
    return out


def distort(pixels: np.ndarray, augmentation: Augmentation, rng: np.random.Generator,
            out: np.ndarray) -> np.ndarray:
    """Distort a chunk of uint8 images (rows of 784) and write them as floats in [0, 1] to ``out``.

    Shifts are applied to ``pixels`` in place; then, for elastic and affine
    terms, one resampling.  Random numbers are drawn from ``rng`` in a fixed
    order, so a seed fixes the distortions whatever thread runs this.
    """
    from digitnet.data import to_float

    if augmentation.shift:
        shift_images(pixels, augmentation.shift, rng)
    if not augmentation.resamples:
        return to_float(pixels, out.dtype, out=out)
    for start in range(0, len(pixels), SUB_CHUNK):
        chunk = pixels[start:start + SUB_CHUNK]
        k = len(chunk)
        # Output pixel p reads the source at p + displacement(p).
        if augmentation.affine_degrees or augmentation.affine_scale:
            m = affine_matrices(k, augmentation.affine_degrees, augmentation.affine_scale, rng)
            source = m @ _CENTRED
            source += _CENTRE
        else:
            source = np.broadcast_to(_GRID, (k, 2, SIDE * SIDE)).copy()
        if augmentation.elastic_alpha:
            source += elastic_displacements(k, augmentation.elastic_alpha, augmentation.elastic_sigma,
                                            rng).reshape(k, 2, -1)
        resample(chunk, source[:, 0], source[:, 1], out[start:start + k])
    return out


def preview(images: np.ndarray, augmentation: Augmentation, rng: np.random.Generator,
            columns: int = 6, scale: int = 3):
    """A Pillow image: one row per original, the original first, then ``columns`` distortions of it.

    Lets people choose alpha and sigma by eye before spending minutes on training.
    """
    from PIL import Image

    rows = len(images)
    cell = SIDE * scale
    gap = 4
    separator = 10  # a wider gap after the original column
    width = cell * (columns + 1) + gap * columns + separator
    canvas = Image.new("L", (width, rows * cell + gap * (rows - 1)), 48)
    distorted = np.empty((columns, SIDE * SIDE), dtype=np.float32)
    for r, image in enumerate(images):
        distort(np.repeat(image[None, :], columns, axis=0), augmentation, rng, distorted)
        tiles = [image.astype(np.float32) / 255] + list(distorted)
        for c, tile in enumerate(tiles):
            picture = Image.fromarray(np.round(tile.reshape(SIDE, SIDE) * 255).astype(np.uint8))
            x = c * (cell + gap) + (separator - gap if c else 0)
            canvas.paste(picture.resize((cell, cell), Image.NEAREST), (x, r * (cell + gap)))
    return canvas
