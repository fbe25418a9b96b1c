"""Finding the digit: its ink map, specks dropped, its bounding box, and a second look at full size.

    shrink_for_detection  the digit is found on a copy at most 256 px across (then ``refine``)
    find_ink            paper.py's steps and keep_digit: the clean ink map of a flattened picture
                        (find_ink_and_light: and whether light.py had to even out the light first)
    keep_digit          drop specks: keep the connected blobs that carry real ink mass
    crop_to_ink         the ink's bounding box
    refine              a small digit on a big picture is found again at full size around it
    digit_groups        how many digits stand side by side (a warning, not an error)
"""

from __future__ import annotations

import math

import numpy as np

from digitnet.images.bits import as_bits
from digitnet.images.errors import ImageError
from digitnet.images.light import even_light, light_is_uneven, lighting_to_blame
from digitnet.images.lines import remove_lines
from digitnet.images.paper import (MIN_PAPER_TOLERANCE, _channel_max, _flat_paper, _smooth, denoise, fit_paper,
                                   ink_is_dark, ink_is_dark_one_sided, ink_signal, paper_noise, percentile,
                                   threshold_ink)

DETECT_SIDE = 256        # the digit is found on a copy at most this big (see refine)
# (Of a 1-D mask, ``mask.nonzero()[0]`` is np.flatnonzero's answer without its two Python-level wrappers:
# 2 us a call, a dozen calls a picture.)
MIN_INK_SIDE = 6         # ink whose bounding box is smaller than this (in pixels) is a speck


# ---------------------------------------------------------------------------
# The ink map


def shrink_for_detection(pixels: np.ndarray, side: int = DETECT_SIDE) -> tuple[np.ndarray, int]:
    """Block-average (H, W, C) pixels by the integer factor that brings the longer side to ``side``
    or below; returns the small picture and the factor (1: unchanged).

    The digit is found on this small copy, which is quick whatever the
    picture's size, and averaging lowers pixel noise as well.
    """
    height, width, channels = pixels.shape
    factor = -(-max(height, width) // side)
    if factor <= 1:
        return pixels, 1
    # The blocks past the edges are completed by repeating the last row and column (np.pad's
    # mode="edge"), without padding a copy: each offset's rows are a strided view, and only the
    # last block row (and column) may need the edge instead.  The sums run in one fixed order (row
    # offsets outer, column offsets inner: the numbers are those of an edge-padded copy summed so),
    # on channel planes: strided views of (H, W, C) pixels have 3-element inner runs, and took
    # 9.8 ms, not 3.3, for a photo decoded at 1000x750.
    rows, cols = -(-height // factor), -(-width // factor)
    planes = np.ascontiguousarray(np.moveaxis(pixels, 2, 0))  # (C, H, W)
    total = np.zeros((channels, rows, cols), np.float32)
    for dy in range(factor):
        last_row = min((rows - 1) * factor + dy, height - 1)
        body = planes[:, dy:dy + (rows - 1) * factor:factor]
        edge = planes[:, last_row]
        for dx in range(factor):
            last_col = min((cols - 1) * factor + dx, width - 1)
            total[:, :rows - 1, :cols - 1] += body[:, :, dx:dx + (cols - 1) * factor:factor]
            total[:, :rows - 1, cols - 1] += body[:, :, last_col]
            total[:, rows - 1, :cols - 1] += edge[:, dx:dx + (cols - 1) * factor:factor]
            total[:, rows - 1, cols - 1] += edge[:, last_col]
    return np.ascontiguousarray(np.moveaxis(total, 0, 2)) / np.float32(factor * factor), factor


def find_ink(flattened: np.ndarray, dark_ink: bool | None = None) -> tuple[np.ndarray, bool]:
    """The clean ink map (H, W) in [0, 1] of a flattened picture, and whether the ink was dark.

    Paper surface, ink polarity (unless given), ink signal, denoising, soft
    threshold and speck removal, at the picture's own resolution.
    """
    return find_ink_and_light(flattened, dark_ink)[:2]


def find_ink_and_light(flattened: np.ndarray, dark_ink: bool | None = None,
                       uneven: bool | None = None) -> tuple[np.ndarray, bool, bool]:
    """``find_ink``, and whether the light was uneven (a shadow's edge, a vignette: light.even_light
    ran).  ``uneven`` None judges it here; True or False takes the detection copy's judgement
    (refine: around a digit that fills the window, a marker's blob looks like a patch of shade)."""
    flat = _flat_paper(flattened)
    if flat is not None:
        window, dark_ink, (top, left) = _ink_on_flat_paper(flattened, *flat, dark_ink)
        ink = np.zeros(flattened.shape[:2], dtype=np.float32)
        ink[top:top + window.shape[0], left:left + window.shape[1]] = window
        return ink, dark_ink, False
    paper, is_paper = fit_paper(flattened)
    residual = flattened - paper
    told = dark_ink
    if dark_ink is None:
        dark_ink = ink_is_dark(residual)
    signal = ink_signal(residual, dark_ink)
    unlined = remove_lines(signal)  # ruled lines, a grid, a margin line: before the light is judged
    if unlined is not signal:
        moved = (signal - unlined)[:, :, None]
        residual = residual + moved if dark_ink else residual - moved
    if uneven is None:
        uneven = light_is_uneven(residual, dark_ink)
    if uneven:  # a shadow's edge, a vignette: the surface misses the paper
        # Judged against a surface that misses the paper, the ink's side may be wrong too: judged again.
        # And evened without the lines: a grid's thin squares of paper would look like light marks.
        evened, dark_ink = even_light(flattened if unlined is signal else paper + residual, told)
        paper, is_paper = fit_paper(evened)
        residual = evened - paper
        unlined = remove_lines(ink_signal(residual, dark_ink))
    signal = denoise(unlined)
    noise = paper_noise(signal, is_paper)
    return keep_digit(threshold_ink(signal, noise, lambda: lighting_to_blame(residual, noise))), dark_ink, uneven


def _ink_on_flat_paper(flattened: np.ndarray, colour: np.ndarray, same: np.ndarray, dark_ink: bool | None,
                       grid: int = 48) -> tuple[np.ndarray, bool, tuple[int, int]]:
    """find_ink's ink map on flat paper (``flat_paper``), computed only on the window around the
    pixels that are not exactly the paper's ``colour`` (``same`` is False): the window's part of the
    very numbers find_ink computes for the whole picture, the window's (top, left) and the polarity.

    Outside the window the residual is exactly 0, so the signal, the blur (2 pixels of margin)
    and the thresholded ink are 0 there and every pixel is paper: those zeros are counted into the
    paper's noise percentile, the window starts at a multiple of keep_digit's cell and of
    paper_noise's sampling step so that both see the same grid, and the blur is decided by the
    whole picture's size.  A drawn digit covers a third to a half of its canvas, so about half
    the work is skipped.  (Pixels that differ from the paper in both directions, which no clean
    drawing has, are given to ink_is_dark whole.)
    """
    top, bottom, left, right, cell, step = window_of(same, grid)
    ink, dark_ink = ink_on_window(flattened[top:bottom, left:right], colour, same.shape, cell, step, dark_ink,
                                  lambda: flattened)
    return ink, dark_ink, (top, left)


def ink_on_window(region: np.ndarray, colour: np.ndarray, shape: tuple[int, int], cell: int, step: int,
                  dark_ink: bool | None, whole) -> tuple[np.ndarray, bool]:
    """``_ink_on_flat_paper``'s work on the window ``region`` (H', W', C) of a picture of ``shape``
    (``window_of``'s cell and step); ``whole()`` gives the whole flattened picture, needed only
    when the ink lies on both sides of the paper's colour and its side is to be judged."""
    residual = region - colour
    if dark_ink is None:
        dark_ink = ink_is_dark_one_sided(float(residual.min()), float(residual.max()))
        if dark_ink is None:
            dark_ink = ink_is_dark(whole() - colour)
    # Paper is judged only where the noise is sampled (every step-th pixel both ways).
    sampled_paper = _channel_max(np.abs(residual[::step, ::step])) <= MIN_PAPER_TOLERANCE
    return ink_of_signal(ink_signal(residual, dark_ink), sampled_paper, shape, cell, step), dark_ink


def ink_of_signal(signal: np.ndarray, sampled_paper: np.ndarray, shape: tuple[int, int], cell: int,
                  step: int) -> np.ndarray:
    """``ink_on_window``'s ink map from the window's ink signal (``paper.ink_signal``) and which of its
    every step-th pixels (both ways) are paper: blurred as the whole picture would be, thresholded above
    the paper's noise (its zeros outside the window counted in), specks dropped on keep_digit's grid."""
    height, width = shape
    signal = _smooth(signal, blur=min(height, width) >= 64)
    sample = signal[::step, ::step][sampled_paper]
    paper = sample[sample > 0]  # the signal is >= 0: its zeros, and those outside, are counted
    zeros = -(-height // step) * -(-width // step) - paper.size
    noise = percentile(paper, 95, zeros=zeros)
    return keep_digit(threshold_ink(signal, noise), cell=cell)


def window_of(same: np.ndarray, grid: int = 48) -> tuple[int, int, int, int, int, int]:
    """``_ink_on_flat_paper``'s window: (top, bottom, left, right) around the pixels that are not
    paper (``same`` False) with 2 pixels of margin, its top and left at a multiple of keep_digit's
    cell and paper_noise's step; and that cell and step.  The whole picture when it is blank."""
    height, width = same.shape
    rows = (~same.all(axis=1)).nonzero()[0]
    if rows.size == 0:  # blank: let find_ink's steps say so, on the whole (tiny cost)
        rows, cols = np.array([0, height - 1]), np.array([0, width - 1])
    else:  # the columns' test on the rows that hold ink only (the others are all paper)
        cols = (~same[rows[0]:rows[-1] + 1].all(axis=0)).nonzero()[0]
    cell = max(1, -(-max(height, width) // grid))                    # keep_digit's cells
    step = 2 if height * width > 20000 else 1                        # paper_noise's sample
    align = cell * step // math.gcd(cell, step)
    top, left = max(0, int(rows[0]) - 2) // align * align, max(0, int(cols[0]) - 2) // align * align
    return top, min(height, int(rows[-1]) + 3), left, min(width, int(cols[-1]) + 3), cell, step


# ---------------------------------------------------------------------------
# Specks


def keep_digit(ink: np.ndarray, grid: int = 48, min_share: float = 0.02, cell: int | None = None) -> np.ndarray:
    """Zero every blob of ink that is a speck next to the digit (dust, noise, a stray dot).

    Blobs are the 8-connected components of the inked cells of a grid of at
    most ``grid`` x ``grid`` cells (so nearby pieces of a broken stroke join);
    a blob is kept when its ink mass is at least ``min_share`` of the largest.  (``cell``: the
    cells' size in pixels, given for a window cut from a bigger picture at a multiple of it.)
    """
    height, width = ink.shape
    cell = cell or max(1, -(-max(height, width) // grid))
    inked = _block_any(ink, cell)  # the cells whose mass is > 0 (ink >= 0: any pixel > 0)
    if _one_blob(inked):  # the usual case: nothing to drop, no labels, no masses
        return ink
    runs = _runs(inked)
    mass = _block_sum(ink, cell)
    labels, count = _labels_of_runs(runs, mass.shape)
    blob_mass = np.bincount(labels.ravel(), weights=mass.ravel(), minlength=count + 1)
    blob_mass[0] = 0.0
    keep = blob_mass >= min_share * blob_mass.max()
    keep[0] = False
    kept_cells = keep[labels]
    mask = np.repeat(np.repeat(kept_cells, cell, axis=0), cell, axis=1)[:height, :width]
    return np.multiply(ink, mask, dtype=np.float32)  # ink >= 0: the same numbers as np.where(mask, ink, 0)


def _block_any(values: np.ndarray, cell: int) -> np.ndarray:
    """Whether each cell x cell block (the last partial blocks included) holds a value > 0: what
    ``_block_sum(values, cell) > 0`` says for values >= 0, in a third of its time."""
    height, width = values.shape
    if cell == 1:
        return values > 0
    rows, cols = -(-height // cell), -(-width // cell)
    positive = np.zeros((rows * cell, cols * cell), dtype=bool)
    np.greater(values, 0, out=positive[:height, :width])
    down = positive.reshape(rows, cell, cols * cell).any(axis=1).reshape(rows, cols, cell)
    # Across each cell's columns by ORs of strided slices: .any(axis=2) over so short an axis cost 19 us, these 6.
    inked = down[:, :, 0].copy()
    for column in range(1, cell):
        np.logical_or(inked, down[:, :, column], out=inked)
    return inked


def _one_blob(mask: np.ndarray) -> bool:
    """Whether the True cells of ``mask`` form at most one 8-connected blob: grown from the first
    cell, on the grid's bits (bits.py: a 3x3 dilation is four shifts), until it stops; the blob
    is everything when nothing is left.  A digit's grid takes a few dozen rounds, 30-60 us,
    where the runs' union-find took 0.15 ms."""
    cells, stride = as_bits(mask)
    reached = cells & -cells  # the lowest set bit: the first cell in raster order
    while True:
        grown = reached | (reached << 1) | (reached >> 1)
        grown = (grown | (grown << stride) | (grown >> stride)) & cells
        if grown == reached:
            return reached == cells
        reached = grown


def _block_sum(values: np.ndarray, cell: int) -> np.ndarray:
    """Sum over cell x cell blocks (the last partial blocks included)."""
    if cell == 1:
        return values
    height, width = values.shape
    rows = np.add.reduceat(values, np.arange(0, height, cell), axis=0)
    return np.add.reduceat(rows, np.arange(0, width, cell), axis=1)


Runs = tuple[list[int], list[int], list[int], list[int]]  # rows, starts, ends (exclusive), roots


def _label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected component labels 1..count of a small boolean grid, numbered in the raster
    order of each component's first cell.

    The grid is cut into runs (horizontal stretches of True); a run joins every run of the row
    above that it overlaps or touches diagonally, with union-find over the runs.  A digit's
    grid of at most 48 x 48 cells has a few hundred runs: on the 47 x 47 grid of a drawn digit
    this takes 0.4 ms, where propagating labels over the whole array took 2.1 ms (a drawn
    280 x 280 digit's preprocessing went from 18.0 to 14.6 ms of CPU; scripts/bench_serve.py).
    """
    return _labels_of_runs(_runs(mask), mask.shape)


def _runs(mask: np.ndarray) -> Runs:
    """The runs of ``mask`` in raster order, as (rows, starts, ends exclusive, roots): each run's
    root is the first run of its 8-connected component (union-find, see _label_components)."""
    height, width = mask.shape
    bounded = np.zeros((height, width + 2), dtype=np.int8)  # a False column each side (np.pad: 4x slower)
    bounded[:, 1:-1] = mask
    edges = bounded[:, 1:] - bounded[:, :-1]
    run_rows, run_starts = np.nonzero(edges == 1)
    run_ends = np.nonzero(edges == -1)[1]  # exclusive; nonzero lists both in raster order
    rows, starts, ends = run_rows.tolist(), run_starts.tolist(), run_ends.tolist()
    parent = list(range(len(rows)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    above = 0  # first run of the previous row still worth comparing with
    for i, row in enumerate(rows):
        while above < i and rows[above] < row - 1:
            above += 1
        j = above
        while j < i and rows[j] == row - 1:
            if starts[j] <= ends[i] and starts[i] <= ends[j]:  # overlap, or touch at a corner
                a, b = root(i), root(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)  # the root is the component's first run
            j += 1
    return rows, starts, ends, [root(i) for i in range(len(rows))]


def _count_components(runs: Runs) -> int:
    """How many components: the runs that are their own root."""
    return sum(1 for i, root in enumerate(runs[3]) if root == i)


def _labels_of_runs(runs: Runs, shape: tuple[int, int]) -> tuple[np.ndarray, int]:
    """``_label_components``'s labels and count, from the grid's runs."""
    rows, starts, ends, roots = runs
    labels = np.zeros(shape, dtype=np.int32)
    numbers: dict[int, int] = {}
    for row, start, end, root in zip(rows, starts, ends, roots):  # raster order: numbered at its first run
        labels[row, start:end] = numbers.setdefault(root, len(numbers) + 1)
    return labels, len(numbers)


# ---------------------------------------------------------------------------
# The digit's box


def ink_bounds(ink: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the ink, bottom and right exclusive; ImageError when blank."""
    rows = ink.any(axis=1).nonzero()[0]
    cols = ink.any(axis=0).nonzero()[0]
    if rows.size == 0:
        raise ImageError("no ink found: the image is blank")
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def crop_to_ink(ink: np.ndarray) -> np.ndarray:
    """The smallest rectangle holding all the ink (MNIST normalised this box, not the page)."""
    top, bottom, left, right = ink_bounds(ink)
    return ink[top:bottom, left:right]


def crop_with_columns(ink: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``crop_to_ink``, and which of the crop's columns hold ink (``digit_groups``' ``used``),
    from the one pass over the columns that finding the box makes."""
    rows = ink.any(axis=1).nonzero()[0]
    if rows.size == 0:
        raise ImageError("no ink found: the image is blank")
    used = ink[rows[0]:rows[-1] + 1].any(axis=0)
    cols = used.nonzero()[0]
    return ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1], used[cols[0]:cols[-1] + 1]


def require_digit_size(cropped: np.ndarray) -> np.ndarray:
    """Refuse ink too small to be a digit (a dot or a speck of dust on an otherwise blank page)."""
    if max(cropped.shape) < MIN_INK_SIDE:
        raise ImageError(f"no digit found: the only ink is a speck of {cropped.shape[1]}x{cropped.shape[0]} pixels")
    return cropped


def refine(flattened: np.ndarray, small_ink: np.ndarray, factor: int, dark_ink: bool,
           uneven: bool | None = None) -> np.ndarray:
    """The digit's ink at full resolution, when it was small on the detection copy.

    The region around the digit found on the small copy (plus a margin of
    paper) is cut from the full-size picture and its ink found again there,
    with the same polarity (and ``uneven``: the copy's judgement of the light,
    see find_ink_and_light): a small digit on a big page keeps its detail.
    """
    top, bottom, left, right = ink_bounds(small_ink)
    margin = max(2, (max(bottom - top, right - left) + 3) // 4)
    height, width = flattened.shape[:2]
    region = flattened[max(0, (top - margin) * factor):min(height, (bottom + margin) * factor),
                       max(0, (left - margin) * factor):min(width, (right + margin) * factor)]
    ink = find_ink_and_light(region, dark_ink, uneven)[0]
    return crop_to_ink(ink)


def digit_groups(ink: np.ndarray, used: np.ndarray | None = None) -> int:
    """How many digit-sized groups of ink stand side by side (1 for a single digit).

    The columns holding ink are split where a gap of empty columns at least
    1/12 of the ink's height separates them (a broken stroke's gap is
    narrower); a group counts as a digit when its ink spans at least 60% of
    the height and carries at least 10% of the mass.  A "1" is narrow but
    tall, so it counts; a stray mark or an underline does not.
    """
    if used is None:  # else ``ink`` is cropped to its box and ``used`` its columns' any (crop_with_columns)
        rows = ink.any(axis=1).nonzero()[0]
        if rows.size == 0:
            return 0
        height = rows[-1] - rows[0] + 1
        used = ink.any(axis=0)
    else:
        height = ink.shape[0]
    cols = used.nonzero()[0]
    min_gap = max(2, height // 12)
    breaks = (np.diff(cols) > min_gap).nonzero()[0]
    if breaks.size == 0:  # one group: one digit, whatever its share (the answer is at least 1)
        return 1
    starts = np.concatenate([[cols[0]], cols[breaks + 1]])
    ends = np.concatenate([cols[breaks], [cols[-1]]]) + 1
    total = float(ink.sum())
    digits = 0
    for start, end in zip(starts, ends):
        part = ink[:, start:end]
        part_rows = part.any(axis=1).nonzero()[0]
        if part_rows[-1] - part_rows[0] + 1 >= 0.6 * height and float(part.sum()) >= 0.1 * total:
            digits += 1
    return max(digits, 1)
