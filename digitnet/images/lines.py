"""The paper's own lines: ruled lines, a graph paper's grid and margin lines, found and taken out of the ink.

    remove_lines        the ink signal with every long, thin, straight line across the picture taken out

A digit written on ruled paper sits on lines that are as dark as faint ink: left in, they join
the digit and the network reads a different one (a 1 on three rules is an 8).  What tells them
apart is their shape: a printed line is long (it crosses the whole picture), thin (a few pixels)
and straight (skewed a few degrees at most in a photo); no stroke of a digit is all three.

ink.find_ink calls remove_lines on the ink signal, before the light is judged (light.py: rules
darken every block alike) and before the light blur.  It first looks at the
picture's left and right edges (top and bottom for vertical lines): unless ink reaches both,
nothing spans the picture and the signal is returned as it is, for a few microseconds.  Otherwise
the inked pixels are projected along each direction within MAX_SKEW degrees of the horizontal,
in steps that keep a line within about a pixel across the picture; at the sharpest direction, a
line is a peak of the profile holding ink along LINE_SPAN of its length inside the picture, at
most MAX_THICKNESS of the height thick (a digit's bar along a line adds less ink to its bins).
Its pixels (and its anti-aliased fringe) then keep no more signal than the fuller of the pixels
just above and just below it: paper on both sides, and the line goes; a stroke crossing it or
ending on it, and the stroke stays whole.  Pictures with no line pay only for the edge check
(the 1,000-PNG folder of scripts/bench_predict.py never gets past it).
"""

from __future__ import annotations

import numpy as np

from digitnet.images.paper import median

INKED = 0.08          # signal above this counts as a mark (paper.MIN_CONTRAST)
MAX_SKEW = 3.0        # degrees: how far from horizontal (or vertical) a photographed line may run
LINE_SPAN = 0.75      # a line holds ink along at least this share of the picture's width
MAX_THICKNESS = 0.02  # a line's core is at most this share of the picture's height thick (and >= 5 bins)
EDGE = 0.08           # the strips at the picture's sides that a line must reach


def remove_lines(signal: np.ndarray) -> np.ndarray:
    """``signal`` (H, W, >= 0: how far each pixel departs towards the ink) with the horizontal, then
    the vertical lines that span the picture taken out; the same array when there are none."""
    height, width = signal.shape
    if min(height, width) < 32:
        return signal
    if _reaches_both_sides(signal):
        signal = _remove_along_rows(signal)
    if _reaches_both_sides(signal.T):
        signal = _remove_along_rows(signal.T).T
    return signal


def _reaches_both_sides(signal: np.ndarray) -> bool:
    """Whether some rows hold ink in the left edge strip and some in the right one, near each other."""
    width = signal.shape[1]
    edge = max(2, int(EDGE * width))
    left = (signal[:, :edge] > INKED).any(axis=1)
    right = (signal[:, width - edge:] > INKED).any(axis=1)
    if not (left.any() and right.any()):
        return False
    drift = int(np.ceil(np.tan(np.radians(MAX_SKEW)) * width)) + 1
    near = np.convolve(right.astype(np.int8), np.ones(2 * drift + 1, np.int8), mode="same") > 0
    return bool((left & near).any())


def _remove_along_rows(signal: np.ndarray) -> np.ndarray:
    """The lines within MAX_SKEW of the horizontal taken out of ``signal`` (H, W)."""
    height, width = signal.shape
    ys, xs = np.nonzero(signal > INKED)
    if ys.size < LINE_SPAN * width:
        return signal
    steps = int(np.ceil(np.tan(np.radians(MAX_SKEW)) * width)) * 2 + 1  # about a pixel apart at the far side
    slopes = np.linspace(-np.tan(np.radians(MAX_SKEW)), np.tan(np.radians(MAX_SKEW)), steps, dtype=np.float32)
    shift = int(np.ceil(abs(slopes[0]) * width)) + 1
    best, best_peak, best_profile = 0.0, -1, None
    for slope in slopes:
        bins = np.rint(ys - slope * xs).astype(np.int64) + shift
        profile = np.bincount(bins, minlength=height + 2 * shift + 1)
        peak = int(profile.max())
        if peak > best_peak:
            best, best_peak, best_profile = float(slope), peak, profile
    if best_peak < LINE_SPAN * width / 2:
        return signal
    # A line that drifts from one bin to the next across the picture (the slopes are steps apart)
    # holds its ink in two neighbouring bins: each bin is judged with the fuller of its neighbours.
    # A line that leaves the picture at the top or the bottom is judged on its part inside.
    neighbour = np.maximum(np.concatenate([[0], best_profile[:-1]]), np.concatenate([best_profile[1:], [0]]))
    inside = np.maximum(_length_inside(len(best_profile), best, shift, height, width), width / 2)
    core = (best_profile + neighbour >= LINE_SPAN * inside) & (best_profile >= 0.2 * inside)
    bands = _line_bands(core, best_profile, max(5, int(MAX_THICKNESS * height)))
    if not bands:
        return signal
    return _erase(signal, bands, best, shift)


def _length_inside(count: int, slope: float, shift: int, height: int, width: int) -> np.ndarray:
    """For each of ``count`` bins, how many columns its line (row = bin - shift + slope * column) has
    inside the picture's rows."""
    starts = np.arange(count, dtype=np.float64) - shift
    if abs(slope) < 1e-9:
        return np.where((starts >= -0.5) & (starts < height - 0.5), width, 0).astype(np.float64)
    ends = starts + slope * (width - 1)
    low, high = np.minimum(starts, ends), np.maximum(starts, ends)
    covered = np.clip(np.minimum(high, height - 0.5) - np.maximum(low, -0.5), 0, None)
    return np.minimum(covered / abs(slope), width)


def _line_bands(core: np.ndarray, profile: np.ndarray, thickest: int) -> list[tuple[int, int]]:
    """A line around each bin of ``core`` that holds more ink than its neighbours: the bins around it
    holding most of its ink above the baseline (a stroke lying along the line holds less), kept
    when no thicker than ``thickest`` and widened each side for the anti-aliased fringe."""
    padded = np.concatenate([[0], profile, [0]])
    peaks = np.flatnonzero(core & (profile >= padded[:-2]) & (profile > padded[2:]))
    baseline = float(median(profile))  # what crossing lines (a grid) and the digit add to every bin
    bands = []
    for peak in peaks:
        first = last = int(peak)
        level = baseline + 0.6 * (profile[peak] - baseline)
        while first > 0 and profile[first - 1] >= level and peak - first < thickest:
            first -= 1
        while last < len(profile) - 1 and profile[last + 1] >= level and last - peak < thickest:
            last += 1
        if last - first < thickest:
            fringe = 1 + (last - first + 1) // 3  # anti-aliasing: wider for a line drawn wider
            bands.append((first - fringe, last + fringe))
    return bands


def _erase(signal: np.ndarray, bands: list[tuple[int, int]], slope: float, shift: int) -> np.ndarray:
    """Each band's pixels keep no more signal than the fuller of the pixel just above the band and the
    one just below it (same column): paper on both sides wipes the line, a crossing stroke stays."""
    height, width = signal.shape
    rows, cols = np.mgrid[0:height, 0:width]
    bins = np.rint(rows - np.float32(slope) * cols).astype(np.int64) + shift
    first = np.full(height + 2 * shift + 2, -1, np.int64)
    last = np.full_like(first, -1)
    for start, end in bands:
        first[max(start, 0):end + 1] = start
        last[max(start, 0):end + 1] = end
    on = first[bins] >= 0
    y, x, b = rows[on], cols[on], bins[on]
    above = y - (b - first[b]) - 1
    below = y + (last[b] - b) + 1
    # Past the picture's edge there is nothing beside the line: only the other side counts.
    beside_above = np.where(above >= 0, signal[np.clip(above, 0, height - 1), x], 0)
    beside_below = np.where(below < height, signal[np.clip(below, 0, height - 1), x], 0)
    kept = np.maximum(beside_above, beside_below)
    result = signal.copy()
    result[y, x] = np.minimum(signal[y, x], kept)
    return result
