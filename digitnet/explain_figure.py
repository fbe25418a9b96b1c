"""The picture `digitnet explain --out` draws: the input, its saliency, the weight pictures of the units that mattered.

Every number comes from an ``inside.Explanation`` (and ``inside.weight_pictures``); this module
only arranges them on one off-screen figure (digitnet.figures): no math beyond scaling colours.

    the input        the 28x28 the network saw, white ink on black as in MNIST
    the saliency     dz^L_j/dx over the grey input: red where more ink raises z^L_j (towards j),
                     blue where it lowers it; the opacity is |dz^L_j/dx| over its 99th percentile
    the units        the weight pictures of the top units pushing towards j, then of those pushing
                     against it, each captioned with its activation a and contribution c = w^L_jk a_k
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib import colormaps
from matplotlib.collections import PatchCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from digitnet.figures import new_figure

SIDE = 28
PANEL = 2.2          # inches: the input and the saliency panels
TILE = 0.8           # inches: one unit's weight picture
PIXEL = TILE / SIDE  # inches per weight-picture pixel
COLUMNS = 10         # weight pictures per row at most
CAPTION, GAP = 12, 4  # pixels above each weight picture (its two caption lines) and between two of them
MARGIN = 0.25
WIDTH = 7.0          # inches at least: room for the two header lines
LEGEND = ("a: the unit's activation a_k;  c: its contribution w_jk a_k to z\n"
          "weight pictures (the unit's incoming weights): red positive, blue negative, "
          "each scaled to its own largest |w|")


def explanation_figure(explanation, pictures: np.ndarray | None, towards: list[int], against: list[int], *,
                       name: str, layer: int) -> Figure:
    """The whole picture for ``explanation``: header, the input and its saliency, and the weight
    pictures of the units ``towards`` (pushing towards the digit) and ``against`` (pushing against it).

    ``pictures`` is ``inside.weight_pictures(network)`` (one 28x28 per first-layer unit), or None
    when the units of the last hidden layer (``layer``) do not read the pixels: the figure then says
    so instead of drawing them.  ``name`` is the image as the user named it.
    """
    digit = explanation.digit
    rows = [] if pictures is None else [
        (label, units) for label, units in
        ((f"hidden layer {layer}: the {len(towards)} unit(s) pushing most towards {digit}", towards),
         (f"the {len(against)} unit(s) pushing most against {digit}", against)) if units]
    cols = max(1, min(COLUMNS, max((len(units) for _, units in rows), default=1)))
    section_h = [0.3 + math.ceil(len(units) / cols) * (SIDE + CAPTION) * PIXEL for _, units in rows]
    width = max(WIDTH, 2 * PANEL + 1.0 + 2 * MARGIN, cols * (SIDE + GAP) * PIXEL + 2 * MARGIN)
    header, panels, footer = 0.55 + 0.45, PANEL + 0.2, 0.6   # the header holds the panels' titles too
    height = header + panels + sum(section_h) + footer
    fig = new_figure(width, height)
    fig.text(0.5, 1 - 0.12 / height, header_text(explanation, name, layer), ha="center", va="top", fontsize=10)
    y = height - header - PANEL   # inches from the bottom to the panels' lower edge
    _panels(fig, explanation, width, height, y)
    y -= 0.2
    for (label, units), h in zip(rows, section_h):
        y -= h
        _unit_tiles(fig, pictures, explanation, units, label, cols, (width, height), y, h)
    if pictures is None:
        where = (f"the units of hidden layer {layer} read layer {layer - 1}, not the pixels" if layer
                 else "the network has no hidden layer")
        footnote = f"No weight pictures: {where}."
    else:
        footnote = LEGEND
    fig.text(0.5, 0.27 / height, footnote, ha="center", va="center", fontsize=8)
    return fig


def header_text(explanation, name: str, layer: int) -> str:
    """Two lines: the answer, and the sum that makes the explained digit's weighted input."""
    j, answer, outputs = explanation.digit, explanation.answer, explanation.outputs
    first = f"{name}: the answer is {answer} (output {outputs[answer]:.3f})"
    if j != answer:
        first += f"; explaining {j} (output {outputs[j]:.3f})"
    if explanation.off:
        first += "; switched off: " + ", ".join(f"{l}:{k}" for l, k in explanation.off)
    total, bias = explanation.contributions.sum(), explanation.bias
    second = (f"z, the weighted input of output {j}: {total + bias:.3f} = {total:.3f} from the "
              f"{len(explanation.contributions)} {'units' if layer else 'pixels'} (Σ w·a) "
              f"{'−' if bias < 0 else '+'} {abs(bias):.3f} bias")
    return f"{first}\n{second}"


def _panels(fig: Figure, explanation, width: float, height: float, y: float) -> None:
    """The input (as the network saw it) and the saliency overlay on the grey input, side by side."""
    x = np.asarray(explanation.activations[0], dtype=np.float64).reshape(SIDE, SIDE)
    left = (width - 2 * PANEL - 1.0) / 2
    ax = fig.add_axes((left / width, y / height, PANEL / width, PANEL / height))
    ax.imshow(x, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title("the input the network saw", fontsize=9)
    ax.set_axis_off()
    ax = fig.add_axes(((left + PANEL + 1.0) / width, y / height, PANEL / width, PANEL / height))
    ax.imshow(x, cmap="gray_r", vmin=0, vmax=1.8, interpolation="nearest")  # the ink in grey
    ax.imshow(saliency_overlay(explanation.saliency), interpolation="nearest")
    ax.set_title(f"saliency ∂z/∂x: ink here pushes\ntowards {explanation.digit} (red) or against it (blue)",
                 fontsize=9)
    ax.set_axis_off()


def saliency_overlay(saliency: np.ndarray) -> np.ndarray:
    """RGBA 28x28: red where the saliency is positive, blue where negative, opaque in proportion
    to its size (clipped at the 99th percentile of |saliency|, so a few pixels do not hide the rest)."""
    s = np.asarray(saliency, dtype=np.float64).reshape(SIDE, SIDE)
    bound = float(np.percentile(np.abs(s), 99)) or float(np.abs(s).max()) or 1.0
    scaled = np.clip(s / bound, -1, 1)
    rgba = colormaps["RdBu_r"](0.5 + 0.5 * np.sign(scaled) * 0.85)   # a clear red or blue, never white
    rgba[..., 3] = 0.8 * np.abs(scaled)                              # the grey ink shows through
    return rgba


def _unit_tiles(fig: Figure, pictures: np.ndarray, explanation, units: list[int], label: str, cols: int,
                size: tuple[float, float], y: float, h: float) -> None:
    """One row block of weight pictures (each scaled to its own largest |w|, red positive, blue
    negative), drawn as ONE mosaic image, with the caption of each unit above it."""
    width, height = size
    rows = math.ceil(len(units) / cols)
    pitch_y, pitch_x = SIDE + CAPTION, SIDE + GAP
    tiles = np.asarray(pictures[units], dtype=np.float64)
    peaks = np.abs(tiles).reshape(len(units), -1).max(axis=1)
    tiles = tiles / np.where(peaks > 0, peaks, 1.0)[:, None, None]
    padded = np.pad(tiles, ((0, rows * cols - len(units)), (CAPTION, 0), (GAP // 2, GAP - GAP // 2)),
                    constant_values=np.nan)
    mosaic = padded.reshape(rows, cols, pitch_y, pitch_x).transpose(0, 2, 1, 3).reshape(rows * pitch_y, -1)
    grid_w, grid_h = mosaic.shape[1] * PIXEL, mosaic.shape[0] * PIXEL
    ax = fig.add_axes((((width - grid_w) / 2) / width, y / height, grid_w / width, grid_h / height))
    ax.imshow(mosaic, cmap=colormaps["RdBu_r"].with_extremes(bad="white"), vmin=-1, vmax=1,
              interpolation="nearest", aspect="equal")
    ax.set_axis_off()
    frames = [Rectangle((c * pitch_x + GAP // 2 - 0.5, r * pitch_y + CAPTION - 0.5), SIDE, SIDE)
              for r, c in (divmod(i, cols) for i in range(len(units)))]
    ax.add_collection(PatchCollection(frames, facecolor="none", edgecolor="0.6", linewidth=0.6, clip_on=False))
    for i, k in enumerate(units):
        r, c = divmod(i, cols)
        ax.text(c * pitch_x + pitch_x / 2 - 0.5, r * pitch_y + CAPTION - 1.5,
                f"unit {k}\na {explanation.activations[-2][k]:.2f}  c {_two_places(explanation.contributions[k])}",
                ha="center", va="bottom", fontsize=7, linespacing=1.1)
    fig.text(0.5, (y + h - 0.12) / height, label, ha="center", va="top", fontsize=9)


def _two_places(value: float) -> str:
    """+1.23 or -0.45; a value that rounds to zero is "≈ 0", never "-0.00"."""
    return f"{value:+.2f}" if round(value, 2) != 0 else "≈ 0"
