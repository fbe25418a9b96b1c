"""Ink versus paper: the paper's surface, which side the ink is on, and the ink signal above the noise.

    fit_paper           the background ("paper") as a smooth surface, which removes lighting gradients
                        (flat_paper: the one exact colour of a drawing made on a computer, no fit needed)
    ink_is_dark         ink darker or lighter than the paper, judged against the paper, not the mean
    ink_signal          how far each pixel departs from the paper towards the ink
    denoise             a light blur, so pixel noise averages out
    paper_noise         how far the paper itself reaches towards the ink (texture, JPEG noise, shading)
    threshold_ink       soft threshold above the noise: paper texture and JPEG noise become 0

``ink.find_ink`` runs these in order on a flattened picture.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from digitnet.images.errors import ImageError

MIN_CONTRAST = 0.08      # ink must differ from the paper by at least this much (pixel range 0..1)
MIN_PAPER_TOLERANCE = 0.02  # a pixel this close to the paper surface is paper, however clean the picture
# A drawing's strokes may run into the border ring (an MNIST digit drawn large reaches within
# 3 px of its 28 px edge): flat paper needs this share of the ring, not all of it, of the one colour.
FLAT_RING_SHARE = 0.9


# ---------------------------------------------------------------------------
# The paper


def fit_paper(pixels: np.ndarray, samples: int = 48, rounds: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """The paper as a smooth quadratic surface per channel (H, W, C), and a mask (H, W) of paper pixels.

    A photo of a page is lit unevenly, so "the background colour" varies
    across it; subtracting a fitted surface makes a shadowed corner as blank
    as a bright one.  The fit starts from the border ring (almost always
    paper, even when the digit is large) and is refined on every pixel whose
    residual is within a few noise deviations, so the ink -- an outlier on one
    side -- never pulls the surface.  Fitting uses a grid of at most
    ``samples`` x ``samples`` pixels, so it costs the same for any size.
    """
    height, width, channels = pixels.shape
    step = max(1, -(-max(height, width) // samples))
    targets = pixels[::step, ::step].reshape(-1, channels).astype(np.float64)
    rows, cols = np.mgrid[0:height:step, 0:width:step]
    design = _quadratic_design(rows.ravel(), cols.ravel(), height, width)
    ring = _border_ring(rows.ravel(), cols.ravel(), height, width)
    deviation = _channel_max(np.abs(targets - median(targets[ring], axis=0)))
    inliers = ring & (deviation <= _tolerance(deviation[ring]))
    for _ in range(rounds):
        coefficients = _least_squares(design, targets, inliers)
        residual = _channel_max(np.abs(targets - design @ coefficients))
        tolerance = _tolerance(residual[inliers])
        inliers = residual <= tolerance
    paper = _evaluate_quadratic(coefficients, height, width)
    is_paper = _channel_max(np.abs(pixels - paper)) <= tolerance
    return paper, is_paper


def _tolerance(deviations: np.ndarray) -> float:
    """How far from the surface a pixel may be and still count as paper: four robust standard
    deviations (1.4826 x the median absolute deviation), and never less than MIN_PAPER_TOLERANCE."""
    if not deviations.size:
        return MIN_PAPER_TOLERANCE
    return max(4 * 1.4826 * float(median(deviations)), MIN_PAPER_TOLERANCE)


def flat_paper(pixels: np.ndarray) -> np.ndarray | None:
    """The paper's colour (C,) when the paper is provably flat, else None (then fit_paper).

    A drawing made on a computer (the serve page's canvas, a drawing-app export) has paper
    of one exact colour: nine in ten pixels of the border ring (the outer 10%, where fit_paper
    starts; strokes may run into it) hold the same numbers, and so does at least half of the
    picture, and ink reaches no two opposite strips of the ring (a ruled line would).  No scan
    or photo does, because of noise.  On such paper fit_paper's surface is that colour and its
    tolerance its floor, MIN_PAPER_TOLERANCE, except that anti-aliased stroke edges within
    the tolerance pull the fitted surface by a hair; skipping the fit saves its cost (2 ms a
    call, a third of a canvas's preprocessing).
    """
    found = _flat_paper(pixels)
    return None if found is None else found[0]


def _flat_paper(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``flat_paper``'s colour, and the mask (H, W) of the pixels that have exactly that colour."""
    height, width, channels = pixels.shape
    colour = pixels[0, 0]
    same = pixels[:, :, 0] == colour[0]
    for channel in range(1, channels):
        same &= pixels[:, :, channel] == colour[channel]
    count = np.count_nonzero(same)
    if 2 * count < same.size:
        return None
    margin_y, margin_x = max(1, height // 10), max(1, width // 10)
    inner = same[margin_y:height - margin_y, margin_x:width - margin_x]
    ring_size = same.size - inner.size
    ring_same = count - np.count_nonzero(inner)
    if ring_same < FLAT_RING_SHARE * ring_size:
        return None
    if ring_same < ring_size and (_both_leave(same[:, :margin_x], same[:, width - margin_x:])
                                  or _both_leave(same[:margin_y], same[height - margin_y:])):
        return None  # maybe a ruled line, a grid or a margin line runs across: fit_paper's path removes them
    return colour.copy(), same


def _both_leave(one_strip: np.ndarray, opposite_strip: np.ndarray) -> bool:
    """Whether both of two opposite strips of the ring have pixels off the paper's colour."""
    return not one_strip.all() and not opposite_strip.all()


def _evaluate_quadratic(coefficients: np.ndarray, height: int, width: int) -> np.ndarray:
    """The fitted surfaces on every pixel, (H, W, C), by broadcasting a row and a column of coordinates."""
    y = np.linspace(-1.0, 1.0, height, dtype=np.float32)[:, None] if height > 1 else np.full((1, 1), -1.0, np.float32)
    x = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :] if width > 1 else np.full((1, 1), -1.0, np.float32)
    c = coefficients.astype(np.float32)
    surfaces = [c[0, k] + x * (c[1, k] + c[3, k] * x) + y * (c[2, k] + c[4, k] * x + c[5, k] * y)
                for k in range(c.shape[1])]
    return np.stack(surfaces, axis=2)


def _quadratic_design(rows: np.ndarray, cols: np.ndarray, height: int, width: int) -> np.ndarray:
    """Columns 1, x, y, x^2, xy, y^2 with x, y scaled to [-1, 1] (well conditioned)."""
    y = rows * (2.0 / max(height - 1, 1)) - 1.0
    x = cols * (2.0 / max(width - 1, 1)) - 1.0
    return np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=1)


def _border_ring(rows: np.ndarray, cols: np.ndarray, height: int, width: int) -> np.ndarray:
    """The outer 10% on every side (at least one pixel)."""
    margin_y, margin_x = max(1, height // 10), max(1, width // 10)
    return (rows < margin_y) | (rows >= height - margin_y) | (cols < margin_x) | (cols >= width - margin_x)


def _least_squares(design: np.ndarray, targets: np.ndarray, inliers: np.ndarray) -> np.ndarray:
    """Quadratic surface through the inliers; a flat one when too few to fit a curve."""
    if inliers.sum() < 4 * design.shape[1]:
        inliers = inliers if inliers.sum() > 0 else np.ones(len(targets), bool)
        flat = np.zeros((design.shape[1], targets.shape[1]))
        flat[0] = median(targets[inliers], axis=0)
        return flat
    chosen = design[inliers]
    try:  # the normal equations: a 6x6 solve, well conditioned with coordinates in [-1, 1]
        return np.linalg.solve(chosen.T @ chosen, chosen.T @ targets[inliers])
    except np.linalg.LinAlgError:  # inliers on a line (a one-pixel-wide picture): plain least squares
        return np.linalg.lstsq(chosen, targets[inliers], rcond=None)[0]


# ---------------------------------------------------------------------------
# The ink's side and signal


def ink_is_dark(residual: np.ndarray) -> bool:
    """True when the ink is darker than the paper (to be inverted to MNIST's white on black).

    Decided against the fitted paper rather than from the mean brightness: the
    pixels that depart most from the paper, after a light blur that removes
    single-pixel noise, are the ink, and we look at which side they are on.
    The extreme tails are compared (the mean of the top 0.05% on each side),
    so a small digit on a big page decides as clearly as a large one, and
    symmetric noise or paper texture cancels out.  (On large pictures every
    other row and column is enough: after the blur, neighbours are alike.)
    """
    lowest, highest = float(residual.min()), float(residual.max())
    one_side = ink_is_dark_one_sided(lowest, highest)
    if one_side is not None:
        return one_side
    darker = _smooth(_channel_max(-residual))
    lighter = _smooth(_channel_max(residual))
    if darker.size > 20000:
        darker, lighter = darker[::2, ::2], lighter[::2, ::2]
    count = max(8, darker.size // 2000)
    return _top_mean(darker, count) > _top_mean(lighter, count)


def ink_is_dark_one_sided(lowest: float, highest: float) -> bool | None:
    """``ink_is_dark`` from the residual's extremes when everything departs to one side of the paper
    (a clean drawing: no tails to compare); None when the residual has both sides.  Only their signs
    count, so the extremes of the 8-bit levels minus the paper's level give the same answer."""
    if highest <= 0 or lowest >= 0:
        return highest <= 0 < -lowest
    return None


def _top_mean(values: np.ndarray, count: int) -> float:
    flat = values.ravel()
    count = min(count, flat.size)
    return float(np.partition(flat, flat.size - count)[flat.size - count:].mean())


def _smooth(values: np.ndarray, blur: bool | None = None) -> np.ndarray:
    """A 3x3 binomial blur ([1 2 1] / 4 both ways), skipped for small images where it would blur the digit
    (``blur`` says whether to, for a window cut from a picture that decides; None: decide from ``values``)."""
    if not (min(values.shape) >= 64 if blur is None else blur) or min(values.shape) < 2:
        return values
    values = np.ascontiguousarray(values, dtype=np.float32)
    # ((before + 2 centre) + after) / 4 across, then down: the additions in that order, with the
    # edges repeating the outermost pixels (like np.pad(mode="edge")).  Each sum is left unscaled
    # and the result divided by 16 once: scaling by powers of two is exact (for numbers far from
    # float32's smallest), so these are the bits of dividing by 4 after each pass, in one pass fewer.
    # The pass across adds the neighbours along the flat rows, one call each rather than a call a
    # row (a window's 2D slices cost 2-3x as much), and then writes the two edge columns again,
    # where the flat neighbour was the next row's pixel: the same sums in the same order.
    across = np.add(values, values)
    flat, before = across.reshape(-1), values.reshape(-1)
    flat[1:] += before[:-1]
    flat[:-1] += before[1:]
    first, second, next_to_last, last = values[:, 0], values[:, 1], values[:, -2], values[:, -1]
    across[:, 0] = ((first + first) + first) + second
    across[:, -1] = ((last + last) + next_to_last) + last
    result = np.add(across, across)
    result[1:] += across[:-1]
    result[0] += across[0]
    result[:-1] += across[1:]
    result[-1] += across[-1]
    result *= np.float32(0.0625)
    return result


def _channel_max(pixels: np.ndarray) -> np.ndarray:
    """The largest channel of (..., C) pixels, shape (...): much faster than .max(axis=-1) for C = 3."""
    result = pixels[..., 0]
    for channel in range(1, pixels.shape[-1]):
        result = np.maximum(result, pixels[..., channel])
    return result


def ink_signal(residual: np.ndarray, dark_ink: bool) -> np.ndarray:
    """How far each pixel departs from the paper towards the ink, >= 0, in the largest channel.

    Taking the largest per-channel departure (rather than the luminance) keeps
    coloured ink strong: yellow ink on white paper barely changes the
    brightness but removes almost all of the blue.
    """
    towards_ink = -residual if dark_ink else residual
    return np.maximum(_channel_max(towards_ink), 0).astype(np.float32, copy=False)


def denoise(signal: np.ndarray) -> np.ndarray:
    """A light blur of the ink signal (3x3 binomial, images of 64 px and more): pixel noise and
    JPEG speckle average out while strokes, several pixels wide at that size, keep their strength."""
    return _smooth(signal)


def percentile(values: np.ndarray, q: float, zeros: int = 0) -> float:
    """``np.percentile(values, q)`` (linear interpolation) of a 1-D float32 array, to the same bits,
    with ``zeros`` more 0s counted in front of non-negative ``values`` (not built: most of a clean
    picture's paper is 0).  One partition at the two order statistics, not numpy's general path
    (0.08 -> 0.03 ms on 20,000 numbers); see ``_smallest`` for large arrays."""
    n = values.size + zeros
    if n == 0:
        raise ValueError("the percentile of nothing")
    virtual = (n - 1) * np.true_divide(q, 100)
    previous = min(int(np.floor(virtual)), n - 1)
    ranks = (previous, min(previous + 1, n - 1))  # in the whole: the zeros first, then ``values``
    wanted = [rank - zeros for rank in ranks if rank >= zeros]
    found = dict(zip(wanted, _smallest(values, wanted))) if wanted else {}
    a, b = (found[rank - zeros] if rank >= zeros else values.dtype.type(0) for rank in ranks)
    if virtual >= n - 1:
        return float(b)
    gamma = float(virtual - previous)
    difference = b - a
    return float(b - difference * (1 - gamma) if gamma >= 0.5 else a + difference * gamma)


def median(values: np.ndarray, axis: int | None = None) -> np.ndarray:
    """``np.median(values, axis)`` of NaN-free numbers, the same numbers: the middle one or the mean
    of the middle two, after a partition, as numpy computes it, without its check for NaNs, whose
    first use imports numpy.ma (10-25 ms of a fresh process's first picture: a photo's fit_paper)."""
    values = np.asarray(values)
    if axis is None:
        values, axis = values.ravel(), 0
    size = values.shape[axis]
    if size == 0:
        raise ValueError("the median of nothing")
    half = size // 2
    part = np.partition(values, [half - 1, half] if size % 2 == 0 else [half], axis=axis)
    indexer = [slice(None)] * part.ndim
    indexer[axis] = slice(half - 1, half + 1) if size % 2 == 0 else slice(half, half + 1)
    return np.mean(part[tuple(indexer)], axis=axis)


def _smallest(values: np.ndarray, ranks: list[int]) -> list:
    """The ``ranks``-th smallest of 1-D ``values`` (ascending ranks; np.partition's answer there).

    Above the median of a large array (the 90th and 95th percentiles here), only the numbers from a
    bound just below the lowest rank are partitioned: the bound is read off every 8th number, a few
    standard errors low, and checked, so the answer is exact whatever the sample.  The ink of an
    upscaled MNIST canvas (13,000 numbers, 5,000 distinct) took 75 us in one partition, 42 so.  When
    the largest number fills every wanted rank (a drawing's solid ink: 7,900 of a drawn 4's 10,000
    strokes' numbers), it is the answer, without a partition (46 -> 5 us)."""
    if ranks[0] >= values.size // 2 and values.size:
        peak = values.max()
        if values.size - np.count_nonzero(values == peak) <= ranks[0]:
            return [peak] * len(ranks)
    if values.size >= 4096 and ranks[0] >= values.size // 2:
        sample = values[::8]
        slack = 3 * int(np.sqrt(sample.size)) + 1
        position = ranks[0] * sample.size // values.size - slack
        if position > 0:
            bound = np.partition(sample, position)[position]
            above = values[values >= bound]
            below = values.size - above.size
            if below <= ranks[0]:  # every wanted rank is among ``above``
                ordered = np.partition(above, [rank - below for rank in ranks])
                return [ordered[rank - below] for rank in ranks]
    ordered = np.partition(values, ranks)
    return [ordered[rank] for rank in ranks]


def paper_noise(signal: np.ndarray, is_paper: np.ndarray) -> float:
    """How far paper pixels typically reach towards the ink: the 95th percentile of the signal
    over the paper.  This is the level of paper texture, JPEG noise and leftover shading."""
    step = 2 if signal.size > 20000 else 1  # a sample of the paper is enough for a percentile
    paper = signal[::step, ::step][is_paper[::step, ::step]]
    return percentile(paper, 95) if paper.size else 0.0


def threshold_ink(signal: np.ndarray, noise: float, lighting: Callable[[], bool] | None = None) -> np.ndarray:
    """Soft threshold: 0 up to the noise ceiling, rising to 1 at the strokes' typical strength.

    Paper texture, JPEG noise and what is left of the lighting sit below
    ``low`` (three times the paper's noise level ``noise``, and at least 10%
    of the ink's strength), so they become exactly 0 and cannot enlarge the
    bounding box.  Above it the ink is stretched to reach 1 at 85% of its
    typical strength, like MNIST's saturated strokes; the edges keep grey
    levels, which carry the anti-aliasing.
    """
    noise_ceiling = 3.0 * noise
    candidates = signal[signal > max(noise_ceiling, MIN_CONTRAST / 2)]
    strength = percentile(candidates, 90) if candidates.size else 0.0
    if strength < max(MIN_CONTRAST, 2 * noise_ceiling):
        if noise_ceiling >= MIN_CONTRAST / 2:  # the paper itself varies a lot: not blank
            if lighting is not None and lighting():
                raise ImageError("no digit found: the light varies too much across the picture (shadows or glare) "
                                 "to tell ink from paper; take it again in even light")
            raise ImageError("no digit found: nothing stands out from the picture's noise or texture")
        raise ImageError("no ink found: the image is blank (or its ink is too faint to tell from the paper)")
    low = max(noise_ceiling, 0.1 * strength)
    high = max(0.85 * strength, low + 0.05)
    ink = np.subtract(signal, low, dtype=np.float32)
    ink /= np.float32(high - low)
    return np.clip(ink, 0.0, 1.0, out=ink)
