"""MNIST's normalisation of the cropped ink: strokes of MNIST's width, the 20 px box, the centre of mass.

    normalise_strokes   thin pen lines thickened, marker strokes thinned, into MNIST's stroke widths
    fit_to_box          longer side to 20 px, keeping the aspect ratio, anti-aliased
    centre_by_mass      into 28x28 with the centre of mass at MNIST's centre
"""

from __future__ import annotations

import functools
import math

import numpy as np
from PIL import Image

from digitnet.images.bits import as_bits
from digitnet.images.errors import ImageError
from digitnet.images.ink import crop_to_ink
from digitnet.images.paper import percentile

FIELD_SIZE = 28          # MNIST images are 28x28 ...
BOX_SIZE = 20            # ... with the digit's longer side scaled to 20 px
MNIST_CENTRE = 14.0      # mean centre of mass of the MNIST test digits, (row, column), to 0.01 px

# Stroke width of MNIST digits at the 20 px scale, measured as in normalise_strokes
# (stroke_width of the digit resampled to FINE_SIDE, divided by 8) on 5,000 training
# digits: median 2.1 px, 10th-90th percentile 1.6-3.1 px.  Widths outside that band
# are brought inside it, towards the median; the two targets were chosen on the first
# 2,000 test digits drawn in the thin-pen and thick-marker styles of
# scripts/bench_predict.py (and checked on test digits 4,000-6,999).
STROKE_BAND = (1.6, 3.2)
THIN_TARGET = 2.0
THICK_TARGET = 2.5
FINE_SIDE = 8 * BOX_SIZE  # strokes are measured and reshaped at 8x the final scale


# ---------------------------------------------------------------------------
# Strokes


def stroke_width(ink: np.ndarray, level: float = 0.5) -> float:
    """Typical stroke width in pixels: twice the depth of the strokes' centre lines.

    The ink (above ``level``) is peeled one layer of pixels at a time
    (alternating 4- and 8-neighbour erosions, close to peeling by a disc); the
    number of layers a pixel survives is its depth, its distance from the
    nearest edge.  On a stroke's centre line -- the pixels at least as deep as
    all their neighbours -- the depth is half the stroke's width, so the
    median over centre lines gives the typical width (2 x depth - 1: exact
    for odd whole widths, one pixel short for even ones).  Unlike an
    area-based measure, this is not fooled by blobs where a thick pen closed a
    loop.
    """
    # A peel is four shifts and four ANDs on the map's bits (bits.py): 0.61 -> 0.16 ms a digit.
    layer, stride = as_bits(ink > level)
    if not layer:
        return 0.0
    # A pixel of depth d (in layer d, not in d + 1) is on a centre line when no pixel of its 3x3
    # neighbourhood is in layer d + 1: counted layer by layer, that is the histogram of the depths
    # on the centre lines, without the depths themselves.
    counts, counted = [0], 0
    square = False  # the first peel is the cross, then they alternate
    beside = (layer << 1, layer >> 1)  # a layer's shifts across, made once for its peel and its growth
    while layer:
        left, right = beside
        if square:  # all eight neighbours
            across = layer & left & right
            inner = across & (across << stride) & (across >> stride)
        else:  # the four neighbours
            inner = layer & left & right & (layer << stride) & (layer >> stride)
        beside = (inner << 1, inner >> 1)
        grown = inner | beside[0] | beside[1]
        near = grown | (grown << stride) | (grown >> stride)
        counts.append((layer ^ (layer & near)).bit_count())  # layer & ~near, without the inversion's 0.5 us
        counted += counts[-1]
        layer, square = inner, not square
        # The deeper layers add at most their pixels to the histogram, all at larger depths: once so
        # few that the median stays where it is, they need not be peeled (the thick middle of a
        # loop a marker closed costs 2-3 of a digit's 13 peels at FINE_SIDE).  Looked at once the
        # histogram falls (counting the layer costs 1 us: not at every peel).
        if layer and counts[-1] < counts[-2] and 2 * (deeper := layer.bit_count()) < counted:
            settled = _settled_median(counts, counted, deeper)
            if settled is not None:
                return 2.0 * settled - 1.0
    return 2.0 * _median_of_counts(counts) - 1.0


def _settled_median(counts: list[int], counted: int, deeper: int) -> int | None:
    """The median ``_median_of_counts`` gives once ``counts`` (summing to ``counted``) is followed by
    at most ``deeper`` more values, all larger than any counted: the value holding every middle rank
    of every total from ``counted`` to ``counted + deeper``, or None when more values could move it."""
    lowest, highest = (counted - 1) // 2 + 1, (counted + deeper) // 2 + 1  # the ranks that could be middle
    running = 0
    for value, count in enumerate(counts):
        running += count
        if running >= lowest:
            return value if running >= highest else None
    return None


def _median_of_counts(counts) -> float:
    """np.median of the small whole numbers whose histogram is ``counts`` (the mean of the two
    middle values when there are an even number), without sorting them; in Python, as the
    histogram has a dozen entries (3 us; numpy's cumsum and searchsorted took 30)."""
    counts = [int(count) for count in counts]
    total = sum(counts)
    low_rank, high_rank = (total - 1) // 2 + 1, total // 2 + 1  # 1-based ranks of the middle
    low = high = len(counts)  # np.searchsorted's answer when no value reaches the rank
    running = 0
    for value, count in enumerate(counts):
        running += count
        if low == len(counts) and running >= low_rank:
            low = value
        if running >= high_rank:
            high = value
            break
    return (low + high) / 2


def normalise_strokes(cropped: np.ndarray, rounds: int = 3, picture: Image.Image | None = None) -> np.ndarray | None:
    """Bring strokes outside MNIST's usual widths (STROKE_BAND) inside them; None when already typical.

    The digit is resampled so its longer side is FINE_SIDE (8x the final
    20 px), its stroke width measured there, and the strokes thickened (grey
    dilation) or thinned (grey erosion) with a disc of the missing or excess
    half-width, to THIN_TARGET or THICK_TARGET.  Pen lines a pixel wide would otherwise vanish when shrunk to
    20 px, and marker strokes would fill the digit.  Thinning also shrinks
    the bounding box (and thickening grows it), which changes the scale, so
    the result is re-cropped, measured again and corrected in a few rounds.
    Returns the digit at FINE_SIDE, ready for fit_to_box.  (``picture``: ``float_picture(cropped)``,
    when it is made for fit_to_box too.)
    """
    scale = FINE_SIDE / BOX_SIZE
    # Clipped to [0, 1] only when kept: stroke_width's "> 0.5" is the same on the values before it.
    fine = _resampled(cropped, FINE_SIDE, picture)
    width = stroke_width(fine) / scale
    if STROKE_BAND[0] <= width <= STROKE_BAND[1]:
        return None
    fine = np.clip(fine, 0.0, 1.0)
    strong = _full_strength(fine)
    if strong is not fine:  # measured again only when the ink changed (each measure: 0.5 ms)
        fine, width = strong, stroke_width(strong) / scale
    target = THIN_TARGET if width < STROKE_BAND[0] else THICK_TARGET
    for round_ in range(rounds):
        if round_:
            width = stroke_width(fine) / scale
        if abs(width - target) < 0.2:
            break
        # The box changes by 2r with the strokes, and fit_to_box undoes that: hence 1 - w/20.
        radius = abs(target - width) * scale / (2 * (1 - target / BOX_SIZE))
        reshaped = _grey_morphology(fine, radius, thicken=width < target)
        reshaped[reshaped < 0.02] = 0.0
        if not reshaped.any():
            break  # thinning would erase the digit: keep what we have
        kept = crop_to_ink(reshaped)
        if max(kept.shape) < FINE_SIDE // 4:
            break  # ... or leave too little of it
        fine = _resample_longer_side(kept, FINE_SIDE)
    return fine


def _full_strength(fine: np.ndarray) -> np.ndarray:
    """Stretch ink that shrinking made faint (a thin line averaged with paper) back to 1."""
    strong = fine[fine > 0.05]
    strength = percentile(strong, 95) if strong.size else 1.0
    return np.clip(fine / max(strength, 1e-3), 0.0, 1.0) if strength < 0.95 else fine


def _grey_morphology(image: np.ndarray, radius: float, thicken: bool) -> np.ndarray:
    """Grey dilation (max) or erosion (min) with a disc of ``radius`` pixels.

    A fractional radius blends the results for the two nearest whole radii,
    so the stroke width changes smoothly with ``radius``.
    """
    whole = int(np.floor(radius))
    fraction = radius - whole
    if fraction < 0.05:
        return _disc_filters(image, (whole,), thicken)[0]
    inner, outer = _disc_filters(image, (whole, whole + 1), thicken)  # the row runs built once for both
    return inner * (1 - fraction) + outer * fraction


def _disc_filter(image: np.ndarray, reach: int, thicken: bool) -> np.ndarray:
    """Max (or min) over the disc of whole radius ``reach`` around each pixel (outside is 0)."""
    return _disc_filters(image, (reach,), thicken)[0]


def _disc_filters(image: np.ndarray, reaches: tuple[int, ...], thicken: bool) -> list[np.ndarray]:
    """``_disc_filter`` for each whole radius of ``reaches``, sharing their work.

    The disc is cut into rows: row dy holds the pixels |dx| <= isqrt(reach^2 - dy^2).  The
    running max (min) of every such half-width is built along the rows once, each from the one
    before, and the rows of the disc are then combined (one call a row): about 3 reach calls
    instead of pi reach^2 -- the same numbers, as max and min are exact (a radius-5 thinning at
    FINE_SIDE: 81 calls -> 17).  The runs serve every radius: a second disc one pixel wider costs
    its rows and one run (the same numbers again: the wider padding is more zeros outside, which
    no smaller disc reaches).
    """
    pad = max(reaches)
    if pad < 1:
        return [image for _ in reaches]
    height, width = image.shape
    padded = np.zeros((height + 2 * pad, width + 2 * pad), dtype=image.dtype)  # np.pad's zeros, in a third of its time
    padded[pad:pad + height, pad:pad + width] = image
    combine = np.maximum if thicken else np.minimum
    # spans[w][Y, c - w]: over padded[Y, c - w .. c + w], for every column c at least w from the sides.
    # Width 1 takes two calls; a wider one is the next narrower one at c - 1 and at c + 1 (one call:
    # [c - w, c + w - 2] and [c - w + 2, c + w] overlap from w = 2).
    spans = [padded, combine(combine(padded[:, :-2], padded[:, 1:-1]), padded[:, 2:])]
    for _ in range(2, pad + 1):
        spans.append(combine(spans[-1][:, :-2], spans[-1][:, 2:]))
    runs = [span[:, pad - w:pad - w + width] for w, span in enumerate(spans)]  # runs[w][Y, x]: at c = pad + x
    results = []
    for reach in reaches:
        if reach < 1:
            results.append(image)
            continue
        result = runs[reach][pad:pad + height].copy()  # the disc's middle row, dy = 0
        for dy in range(1, reach + 1):
            half = math.isqrt(reach * reach - dy * dy)
            combine(result, runs[half][pad + dy:pad + dy + height], out=result)
            combine(result, runs[half][pad - dy:pad - dy + height], out=result)
        results.append(result)
    return results


def _resample_longer_side(image: np.ndarray, side: int, picture: Image.Image | None = None) -> np.ndarray:
    """Resize so the longer side is ``side``, keeping the aspect ratio (box filter when shrinking).
    (``picture``: ``float_picture(image)``, when already made.)"""
    return np.clip(_resampled(image, side, picture), 0.0, 1.0)


def _resampled(image: np.ndarray, side: int, picture: Image.Image | None = None) -> np.ndarray:
    """``_resample_longer_side`` before its clipping to [0, 1] (bicubic overshoots a little), read-only."""
    height, width = image.shape
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BICUBIC
    resized = (float_picture(image) if picture is None else picture).resize(size, resample)
    return np.asarray(resized, dtype=np.float32)


def float_picture(image: np.ndarray) -> Image.Image:
    """2-D ``image`` as a Pillow "F" picture to resample; the pipeline makes the crop's once for both of
    its resamplings (to FINE_SIDE, then to the box: a copy and a conversion, 25 us, not made twice)."""
    height, width = image.shape
    return Image.frombytes("F", (width, height), image.astype(np.float32, copy=False).tobytes())


# ---------------------------------------------------------------------------
# The box and the field


def fit_to_box(cropped: np.ndarray, box: int = BOX_SIZE, picture: Image.Image | None = None) -> np.ndarray:
    """Scale the ink so its longer side is ``box`` pixels (20 in MNIST), keeping the aspect ratio.

    Shrinking averages areas (a box filter), which is the anti-aliasing that
    gives MNIST its grey edges; the result is scaled so the strongest pixel is 1.
    (``picture``: ``float_picture(cropped)``, when already made.)
    """
    fitted = _resample_longer_side(cropped, box, picture)
    peak = float(fitted.max())
    return fitted / peak if peak > 0 else fitted


@functools.lru_cache(maxsize=64)
def _indices(shape: tuple[int, int]) -> np.ndarray:
    """``np.indices(shape)``, kept for the few shapes a 20 px box comes in (read-only)."""
    grid = np.indices(shape)
    grid.flags.writeable = False
    return grid


def centre_by_mass(boxed: np.ndarray, field: int = FIELD_SIZE, centre: float = MNIST_CENTRE) -> np.ndarray:
    """Paste into a ``field`` x ``field`` image so the centre of mass lands on ``centre``.

    This is MNIST's last step: translate by whole pixels so the centre of mass
    is at the centre of the field (the MNIST test digits' centres of mass
    average (14.0, 14.0) in 0-based pixel coordinates).  The box is kept
    inside the field, so no ink is cut off.
    """
    height, width = boxed.shape
    mass = float(boxed.sum())
    if mass <= 0:
        raise ImageError("no ink found: the image is blank")
    rows, cols = _indices(boxed.shape)
    # Whole numbers clipped in Python: np.clip on a scalar cost 6 us, a tenth of this function.
    top = min(max(round(centre - float((rows * boxed).sum()) / mass), 0), field - height)
    left = min(max(round(centre - float((cols * boxed).sum()) / mass), 0), field - width)
    result = np.zeros((field, field), dtype=np.float32)
    result[top:top + height, left:left + width] = boxed
    return result
