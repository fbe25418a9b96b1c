"""Uneven light: a shadow's edge or a flash's vignette told from the paper, and the picture evened out.

    light_is_uneven     the quadratic paper surface (paper.fit_paper) misses the paper by more than ink would
    even_light          the paper's brightness estimated locally, and the picture divided by it
    lighting_to_blame   whether what defeats the ink threshold is lighting (large patches) or grain (noise)

A photo lit from one side is a smooth gradient, which fit_paper's quadratic surface removes.  A
hard shadow across the page (paper grey 90-130 against 210) or a flash's bright centre fading
to dark corners is not: the surface cuts through the paper, and a whole region of it looks like
ink (or the noise level comes out so high that nothing stands out).  ink.find_ink asks
light_is_uneven on the small detection copy -- a few tenths of a millisecond, on a coarse grid --
and only then runs even_light.  Both rest on one observation: a grey closing (a running maximum,
then a running minimum, over a window wider than any pen stroke) removes the dark strokes and
keeps the light, because a shadow's straight edge and a vignette's fall-off from a bright centre
are left unchanged by it.  (For light ink on dark paper everything is mirrored: an opening.)
"""

from __future__ import annotations

import numpy as np

from digitnet.images.paper import median, percentile

UNEVEN_LIGHT = 0.08    # paper this far from the fitted surface (pixel range 0..1) is unevenly lit
COARSE_SIDE = 32       # light_is_uneven looks at the residual on a grid at most this many cells across
EVEN_SIDE = 64         # even_light estimates the paper on a grid at most this many cells across
WINDOW_SHARE = 0.25    # even_light's closing window, as a share of the grid's shorter side (wider than a stroke)
DETECT_SHARE = 0.45    # light_is_uneven's: wider, so that not even a marker's blob is taken for a shadow
POLARITY_SHARE = 0.08   # the window that picks out thin marks when deciding the ink's side


def light_is_uneven(residual: np.ndarray, dark_ink: bool, threshold: float = UNEVEN_LIGHT) -> bool:
    """True when the paper departs from fit_paper's surface by more than ``threshold`` somewhere.

    ``residual`` is the picture minus the fitted paper, (H, W, C).  Its block means on a grid of at
    most COARSE_SIDE cells (every other pixel, so noise averages out) are closed (opened for
    light ink): the strokes go, and what is left is where the paper itself is not where the
    surface says.  On the ten older styles of scripts/bench_predict.py (ink on paper, noisy JPEGs,
    shaded photos, markers, pens; 300 digits each) the largest departure is 0.065; across the hard
    shadows 0.31-0.49, and 0.1-0.64 for the vignettes (95% above 0.095).
    """
    coarse = _coarse_means(residual)
    if min(coarse.shape) < 3:
        return False
    paper = close_strokes(coarse, dark_ink, DETECT_SHARE).ravel()
    # Against the paper's typical level, not the surface itself: ruled lines or a grid darken every
    # block alike, and that is no unevenness of the light.  (The median by partition: np.median
    # costs 30 microseconds on so few numbers.)
    typical = float(np.partition(paper, paper.size // 2)[paper.size // 2])
    return max(float(paper.max()) - typical, typical - float(paper.min())) > threshold


def _coarse_means(residual: np.ndarray) -> np.ndarray:
    """light_is_uneven's grid: means over the channels and over blocks of every other pixel (of
    all pixels below 64 px), at most COARSE_SIDE blocks across, the partial blocks at the ends
    left out.  Summed from strided views -- 30-50 microseconds on the detection copy, where
    np.pad and .mean(axis=...) took 400."""
    height, width, channels = residual.shape
    step = 2 if min(height, width) >= 64 else 1
    cell = max(1, -(-max(height, width) // (step * COARSE_SIDE)))
    stride = step * cell
    rows, cols = height // stride, width // stride
    sample = residual[:rows * stride:step, :cols * stride:step]
    grey = sample[:, :, 0] if channels == 1 else sample[:, :, 0] + sample[:, :, 1] + sample[:, :, 2]
    total = np.zeros((rows, cols), np.float32)
    for dy in range(cell):
        for dx in range(cell):
            total += grey[dy::cell, dx::cell]
    return total / np.float32(cell * cell * channels)


def even_light(pixels: np.ndarray, dark_ink: bool | None) -> tuple[np.ndarray, bool]:
    """The picture (H, W, C) with the paper's local brightness divided out (dark ink), or
    subtracted (light ink on dark paper) -- the paper comes out as even as a scan's -- and
    whether the ink is dark (decided here when ``dark_ink`` is None, see _ink_is_dark_by_envelope).

    The paper's brightness is the closing of the picture's block means (a grid of at most
    EVEN_SIDE cells, so noise barely biases the running maximum).  Brought back to full size
    it would blur a sharp shadow edge over a cell, and the dark side of that blur would look
    like ink; so each pixel's paper is its own value clipped to the range of the paper estimates
    of the cells around it: a paper pixel next to the edge is its own paper, and ink (darker
    than every paper around it) is measured against the darker paper.
    """
    height, width, channels = pixels.shape
    grey = pixels[:, :, 0] if channels == 1 else pixels.mean(axis=2)
    cell = max(1, -(-max(height, width) // EVEN_SIDE))
    means = block_mean(grey, cell)
    if dark_ink is None:
        dark_ink = _ink_is_dark_by_envelope(means)
    paper = close_strokes(means, dark_ink)
    around_low, around_high = _extremes_3x3(paper)
    low = np.repeat(np.repeat(around_low, cell, axis=0), cell, axis=1)[:height, :width]
    high = np.repeat(np.repeat(around_high, cell, axis=0), cell, axis=1)[:height, :width]
    local = np.clip(grey, low, high)
    if dark_ink:  # light times reflectance: divide, so ink in the shadow keeps its contrast
        level = percentile(paper.ravel(), 95)
        gain = (level / np.maximum(local, 0.02)).astype(np.float32)
        return np.clip(pixels * gain[:, :, None], 0.0, 1.0), True
    level = percentile(paper.ravel(), 5)
    return np.clip(pixels - (local - level).astype(np.float32)[:, :, None], 0.0, 1.0), False


def _ink_is_dark_by_envelope(means: np.ndarray) -> bool:
    """Which side the ink is on when no smooth surface fits the paper (paper.ink_is_dark then judges
    against the wrong paper): the side with more thin marks (top-hats, window POLARITY_SHARE).

    Dark marks narrower than the window (a few cells: about a stroke) stand below the closing,
    light ones above the opening, and a shadow's edge or a vignette's slope is left by both.
    Dark ink makes dark marks and leaves, at most, narrow gaps of paper between strokes; light
    ink the other way round.  (With a window as wide as even_light's, a band of shadow narrower
    than it counts as dark marks and a vignette's bright dome as light ones: on the benchmark's
    shadows and vignettes (600 pictures) the small window chose the right side for 99%, the wide
    one, either way round, for at most 65%.)
    """
    dark = float(np.sum(close_strokes(means, True, POLARITY_SHARE) - means))
    light = float(np.sum(means - close_strokes(means, False, POLARITY_SHARE)))
    return dark >= light


def lighting_to_blame(residual: np.ndarray, noise: float) -> bool:
    """Whether the paper's spread towards the ink (``noise``: paper.paper_noise) comes from large
    patches of light and shade rather than from grain, texture or the lines of a grid.

    Block means on a 16-cell grid keep patches of light and average the rest away: grain of the
    pixels' own deviation (estimated from neighbours' differences) leaves their spread about
    cell times smaller, a grid's lines darken every block alike.
    """
    grey = residual[:, :, 0] if residual.shape[2] == 1 else residual.mean(axis=2)
    if min(grey.shape) < 16:
        return False
    cell = max(1, min(grey.shape) // 16)
    patches = block_mean(grey, cell)
    spread = percentile(np.abs(patches - median(patches)).ravel(), 90)
    grain = 1.4826 * float(median(np.abs(np.diff(grey, axis=1)))) / np.sqrt(2)
    return spread >= max(0.5 * noise, 3 * 1.645 * grain / cell)


# ---------------------------------------------------------------------------
# Grey morphology on a small grid


def block_mean(values: np.ndarray, cell: int) -> np.ndarray:
    """Means over cell x cell blocks of a 2-D array (the last blocks padded by repeating the edge)."""
    if cell == 1:
        return values.astype(np.float32, copy=False)
    height, width = values.shape
    padded = np.pad(values, ((0, -height % cell), (0, -width % cell)), mode="edge")
    blocks = padded.reshape(padded.shape[0] // cell, cell, padded.shape[1] // cell, cell)
    return blocks.mean(axis=(1, 3), dtype=np.float32)


def close_strokes(grid: np.ndarray, dark_ink: bool, share: float = WINDOW_SHARE) -> np.ndarray:
    """Grey closing (dark ink) or opening (light ink) with a square window ``share`` of the grid's
    shorter side: every stroke narrower than that goes, steps and monotone slopes stay."""
    window = max(3, round(share * min(grid.shape))) | 1
    # The picture is extended past its edges once, by repeating them, and closed as a whole: a dark
    # corner then stays dark, where padding each pass anew would let the bright middle into it.
    # Each pass keeps only the positions whose window lies inside, so the result (window - 1 smaller
    # each time, 2 * window larger to begin with) is the picture's size plus a cell each side.
    grid = _pad_edges(grid, window)
    first, second = (np.maximum, np.minimum) if dark_ink else (np.minimum, np.maximum)
    for combine in (first, second):
        grid = _running(_running(grid, window, combine).T, window, combine).T
    return grid[1:-1, 1:-1]


def _running(values: np.ndarray, window: int, combine) -> np.ndarray:
    """``combine`` (np.maximum or np.minimum) over every run of ``window`` rows, the runs inside only
    (window - 1 rows fewer): by doubling, runs of 1, 2, 4, ... rows, so a few calls whatever the
    window (on the detector's grid of 32 cells, 4x quicker than van Herk's method in numpy)."""
    length = values.shape[0] - window + 1
    result, start, span, runs = None, 0, 1, values   # runs[i] combines rows i .. i + span - 1
    remaining = window
    while True:
        if remaining & 1:
            part = runs[start:start + length]
            result = part if result is None else combine(result, part)
            start += span
        remaining >>= 1
        if not remaining:
            return result
        runs = combine(runs[:-span], runs[span:])
        span *= 2


def _extremes_3x3(grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The smallest and the largest value of each cell's 3x3 neighbourhood (edges repeated)."""
    padded = _pad_edges(grid, 1)
    return (_running(_running(padded, 3, np.minimum).T, 3, np.minimum).T,
            _running(_running(padded, 3, np.maximum).T, 3, np.maximum).T)


def _pad_edges(grid: np.ndarray, width: int) -> np.ndarray:
    """``np.pad(grid, width, mode="edge")`` for a small 2-D grid, in a third of its time."""
    rows = np.concatenate([np.repeat(grid[:1], width, axis=0), grid, np.repeat(grid[-1:], width, axis=0)])
    return np.concatenate([np.repeat(rows[:, :1], width, axis=1), rows, np.repeat(rows[:, -1:], width, axis=1)],
                          axis=1)
