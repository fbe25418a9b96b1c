"""Whether the ink looks like a digit at all: a verdict from the picture, never from the network.

A sigmoid network answers every input, and is often sure of itself on things that are no digit
(a dot read as a 4 at 0.995, an X as an 8).  So the picture is judged on its own, from what the
pipeline already holds: the ink cropped to its box (``cropped``), the same ink with its strokes
brought to MNIST's width (``shaped``), the 28x28 input (``seen``) and how big the ink's box is
beside the picture (``box_share``).  Each rule names a thing that is not a digit:

    a dot or a blob    the ink is thicker than it is long: no strokes, a patch (a short mark too,
                       when it is small on the picture, and a single short stroke when it is tiny:
                       almost no ink)
    an X               ink in the four corners of its box and the middle, none half-way along the sides
    a straight line    long, thin, straight and lying down (a 1 stands upright)
    a scribble         more stroke than a digit has (edge length, strokes crossed by a scan line),
                       or a box filled solid

The thresholds were set on the MNIST test digits re-drawn as pictures (and the thick-marker,
thin-pen and photo styles of scripts/bench_predict.py): scripts/bench_verdict.py prints the rates
(bar: at least 99.5% of 2,000 digits look like one; it measured 100%, and 99.75% with a thick marker).  Pure numpy; nothing here prints.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digitnet.images.bits import as_bits

THICK_SIDE = 48           # ``cropped`` is measured with its longer side at most this many pixels ...
STROKES_SIDE = 96         # ... and ``shaped`` at most this many
THICK_BLOB = 0.55         # the thickest part over the longer side: a disc is 1, MNIST's digits at most 0.48
THICK_MARK = 0.45         # ... and a short mark, when its box is under SMALL_SHARE of the picture
SMALL_SHARE = 0.2         # the box's longer side over the picture's shorter side: below this, the ink is small
TINY_SHARE = 0.08         # ... below this it is tiny, and one short stroke (edge under TINY_EDGE) is a speck
TINY_EDGE = 1.3           # (a flick of the pen: 20 px on the page's 280 px pad; a 1 that small reads as one too)
LINE_STRAIGHT = 0.2       # the ink's spread across its main axis over the spread along it
LINE_TILT = 48.0          # degrees from upright beyond which a straight line is not a 1 (MNIST's 1s: at most 46)
SCRIBBLE_EDGE = 3.3       # the ink's edge over twice its box's longer side (strokes' length in box sides; MNIST <= 3.25)
SCRIBBLE_RUNS = 3.75      # strokes a middle scan line crosses, on average (MNIST <= 3.6)
SCRIBBLE_RUNS_MOST = 5.0  # ... at the 90th percentile of the scan lines (MNIST <= 4.4)
FILLED = 0.65             # share of a box that is not narrow (aspect >= FILLED_ASPECT) filled with ink
FILLED_ASPECT = 0.6


@dataclass(frozen=True)
class Verdict:
    """Whether the picture looks like a digit; when not, ``doubt`` says why in a few words."""

    looks_like_a_digit: bool = True
    doubt: str = ""


LOOKS_LIKE_A_DIGIT = Verdict()


def judge(cropped: np.ndarray, shaped: np.ndarray, seen: np.ndarray, box_share: float) -> Verdict:
    """The verdict on one picture's ink (see the module's docstring for the four arrays)."""
    return verdict_of(measure(cropped, shaped, seen, box_share))


def verdict_of(facts: dict) -> Verdict:
    """The first rule that the measured ``facts`` (``measure``) break, as a Verdict."""
    small = facts["box_share"] < SMALL_SHARE
    speck = facts["box_share"] < TINY_SHARE and facts["edge"] < TINY_EDGE
    if speck or facts["thick"] >= THICK_BLOB or (small and facts["thick"] >= THICK_MARK):
        return Verdict(False, "almost no ink (a dot or a speck)" if small
                       else "a filled blob, not the strokes of a digit")
    if facts["x"]:
        return Verdict(False, "two crossing strokes (an X)")
    if facts["straight"] <= LINE_STRAIGHT and facts["tilt"] >= LINE_TILT:
        return Verdict(False, "a straight line lying down (a 1 stands upright)")
    if (facts["edge"] >= SCRIBBLE_EDGE or facts["runs"] >= SCRIBBLE_RUNS or facts["runs_most"] >= SCRIBBLE_RUNS_MOST
            or (facts["fill"] >= FILLED and facts["aspect"] >= FILLED_ASPECT)):
        return Verdict(False, "a scribble: far more strokes than a digit has")
    return LOOKS_LIKE_A_DIGIT


def measure(cropped: np.ndarray, shaped: np.ndarray, seen: np.ndarray, box_share: float) -> dict:
    """The numbers the rules read: thick, x, straight, tilt, edge, runs, runs_most, fill, aspect, box_share."""
    facts = {"box_share": float(box_share)}
    patch = _box(_sampled(cropped, THICK_SIDE))
    facts["thick"] = (2 * _depth(patch) - 1) / max(patch.shape)
    strong = seen > 0.5
    bounds = _bounds(strong)
    ink = _box(strong, bounds)
    facts["aspect"] = min(ink.shape) / max(ink.shape)
    facts["x"] = _is_x(seen, ink, strong, bounds)
    facts["straight"], facts["tilt"] = _line(seen)
    strokes = _box(_sampled(shaped, STROKES_SIDE))
    facts["edge"] = _edge_length(strokes) / (2 * max(strokes.shape))
    facts["runs"], facts["runs_most"] = _runs(strokes)
    facts["fill"] = np.count_nonzero(strokes) / strokes.size  # strokes.mean(): the count over the size
    return facts


def _sampled(ink: np.ndarray, side: int) -> np.ndarray:
    """The ink (above half its strongest) as booleans, every k-th pixel so the longer side is at most
    ``side``: safe for strokes of MNIST's width (a tenth of the box) and for blobs, which are all there is to see."""
    step = -(-max(ink.shape) // side)
    sample = ink[::step, ::step]
    return sample > 0.5 * max(float(sample.max()), 1e-6)


def _bounds(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The numbers of the rows and of the columns of ``mask`` that hold a True pixel."""
    return mask.any(axis=1).nonzero()[0], mask.any(axis=0).nonzero()[0]


def _box(mask: np.ndarray, bounds: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """The smallest rectangle of ``mask`` holding all its True pixels (a 1x1 False when none).
    (``bounds``: ``_bounds(mask)``, when already known.)"""
    rows, cols = _bounds(mask) if bounds is None else bounds
    if rows.size == 0:
        return np.zeros((1, 1), dtype=bool)
    return mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def _depth(mask: np.ndarray) -> int:
    """How many 3x3 erosions the thickest part of ``mask`` survives, plus one (0 when empty),
    peeled on its bits (bits.py)."""
    layer, stride = as_bits(mask)
    depth = 0
    while layer:
        depth += 1
        across = layer & (layer << 1) & (layer >> 1)
        layer = across & (across << stride) & (across >> stride)
    return depth


def _is_x(seen: np.ndarray, ink: np.ndarray, strong: np.ndarray | None = None,
          bounds: tuple[np.ndarray, np.ndarray] | None = None) -> bool:
    """Two crossing strokes: the box cut 3x3, ink in each corner and the middle, little half-way
    along the sides, and scan lines crossing at most two strokes.  (``strong``: ``seen > 0.5``;
    ``bounds``: ``_bounds(strong)``.)"""
    strong = seen > 0.5 if strong is None else strong
    rows, cols = _bounds(strong) if bounds is None else bounds
    if rows.size < 3 or cols.size < 3:
        return False
    box = seen[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].astype(np.float64)
    # The thirds' first rows and columns: np.linspace(0, n, 4)[:3] rounded (k n / 3 is never half-way).
    ys = [round(k * (box.shape[0] / 3)) for k in range(3)]
    xs = [round(k * (box.shape[1] / 3)) for k in range(3)]
    cells = np.add.reduceat(np.add.reduceat(box, ys, axis=0), xs, axis=1)
    cells /= max(float(cells.sum()), 1e-9)
    corners = min(cells[0, 0], cells[0, 2], cells[2, 0], cells[2, 2])
    sides = cells[0, 1] + cells[1, 0] + cells[1, 2] + cells[2, 1]
    if not (corners >= 0.02 and sides <= 0.33 and cells[1, 1] >= 0.17):
        return False
    runs, most = _runs(ink)
    return runs <= 1.85 and most <= 2


def _line(seen: np.ndarray) -> tuple[float, float]:
    """(spread across the ink's main axis over the spread along it, the axis's degrees from upright)."""
    weights = np.where(seen > 0.3, seen, 0.0).astype(np.float64)
    by_row, by_column = weights.sum(axis=1), weights.sum(axis=0)
    total = float(by_row.sum())
    if total <= 0:
        return 1.0, 0.0
    ys, xs = (np.arange(size, dtype=np.float64) for size in seen.shape)  # the row and column numbers
    # The weighted moments from the row and column sums (and one product for yx): a few calls on
    # 28 numbers rather than a dozen on 784 (the same sums, added in another order).
    my, mx = float(by_row @ ys) / total, float(by_column @ xs) / total
    dy, dx = ys - my, xs - mx
    yy, xx = float(by_row @ (dy * dy)) / total, float(by_column @ (dx * dx)) / total
    yx = float(dy @ weights @ dx) / total
    # The 2x2 covariance's eigenvalues and main axis in closed form (np.linalg.eigh cost 10 us of
    # the verdict's 250): lambda = mean +- sqrt(half-difference^2 + yx^2), the axis (lambda - xx, yx).
    mean, spread = (yy + xx) / 2, float(np.hypot((yy - xx) / 2, yx))
    low, high = mean - spread, mean + spread
    if high <= 0:
        return 1.0, 0.0
    along_y, along_x = high - xx, yx
    if along_y == 0 and along_x == 0:  # round (equal spreads, no correlation): no main axis
        along_y, along_x = 0.0, 1.0
    tilt = float(np.degrees(np.arccos(min(1.0, abs(along_y) / float(np.hypot(along_y, along_x))))))
    return float(np.sqrt(max(low, 0.0) / high)), tilt


def _runs(box: np.ndarray) -> tuple[float, float]:
    """Strokes crossed by the scan lines of the middle 60% (the mean, in the busier direction) and
    by all of them (the 90th percentile, in the busier direction)."""
    def middle(counts: np.ndarray) -> float:
        n = len(counts)
        low, high = int(0.2 * n), max(int(0.8 * n), int(0.2 * n) + 1)
        return float(counts[low:high].sum()) / (high - low)  # .mean()'s number, without its Python layer

    def high(counts: np.ndarray) -> float:
        rank = int(0.9 * (len(counts) - 1))
        return float(np.partition(counts, rank)[rank])

    # A stroke starts where ink follows paper (True > False), down each column and along each row:
    # the row counts on the map as it lies, not on its transpose.
    columns = np.greater(box[1:], box[:-1]).sum(axis=0) + box[0]
    rows = np.greater(box[:, 1:], box[:, :-1]).sum(axis=1) + box[:, 0]
    return max(middle(columns), middle(rows)), max(high(columns), high(rows))


def _edge_length(box: np.ndarray) -> int:
    """Ink pixels with a paper pixel above, below or beside them: about twice the strokes' length."""
    # The pixels whose four neighbours are ink, on the map's bits (bits.py), where nothing lies
    # beyond the border: the border's ink is all edge.
    ink, stride = as_bits(box)
    inner = ink & (ink << 1) & (ink >> 1) & (ink << stride) & (ink >> stride)
    return ink.bit_count() - inner.bit_count()
