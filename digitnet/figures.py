"""Pictures drawn off-screen and written as PNG files, for the report and the sweep's page.

Figures are made on matplotlib's Agg canvas, never through pyplot: no window
and no global list of figures to leak into.  Only the commands that draw
import this module, so the others start without matplotlib.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PatchCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from digitnet.atomic import atomic_path

DPI = 100


def new_figure(width: float, height: float, **options) -> Figure:
    """A figure of ``width`` x ``height`` inches at DPI on the Agg canvas (``options`` go to Figure)."""
    fig = Figure(figsize=(width, height), dpi=DPI, **options)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: Path) -> Path:
    """Write the figure as PNG atomically (a temporary file, renamed when complete)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            fig.savefig(f, format="png", dpi=DPI, facecolor="white")
    return path


def tile_figure(tiles: np.ndarray, captions: list[str], title: str, *, cmap, vmin: float, vmax: float,
                cols: int, caption_size: float = 10, colorbar_label: str | None = None) -> Figure:
    """Square images (tiles) in a grid, each captioned above, drawn as ONE mosaic image.

    One image and a few texts render in a fraction of a second, where 100 small
    axes take seconds.  The layout is fixed in inches (a tile is about 1 inch),
    so captions and titles never overlap or get clipped; gaps between tiles are
    white and each tile has a thin grey frame.
    """
    n = len(tiles)
    rows = math.ceil(n / cols)
    side, gap_x, gap_y = tiles.shape[-1], 6, 12     # pixels of mosaic; gap_y holds the caption
    pitch_x, pitch_y = side + gap_x, side + gap_y
    mosaic = np.full((rows * pitch_y, cols * pitch_x - gap_x), np.nan)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, cols)
        mosaic[r * pitch_y + gap_y: (r + 1) * pitch_y, c * pitch_x: c * pitch_x + side] = tile

    inch_per_px = 0.036
    margin, header = 0.2, 0.15 + 0.22 * (title.count("\n") + 1)
    bar_room = 1.3 if colorbar_label else 0.0
    grid_w, grid_h = mosaic.shape[1] * inch_per_px, mosaic.shape[0] * inch_per_px
    bar_h = min(max(grid_h, 3.0), 5.0) if colorbar_label else 0.0   # room for the colour bar's label
    body_h = max(grid_h, bar_h)
    width = max(grid_w + 2 * margin + bar_room, 8.4)
    height = body_h + header + margin
    fig = new_figure(width, height)
    left = (width - bar_room - grid_w) / 2
    bottom = margin + (body_h - grid_h) / 2
    ax = fig.add_axes((left / width, bottom / height, grid_w / width, grid_h / height))
    ax.set_axis_off()
    colours = colormaps[cmap].with_extremes(bad="white") if isinstance(cmap, str) else cmap
    image = ax.imshow(mosaic, cmap=colours, vmin=vmin, vmax=vmax, interpolation="nearest", aspect="equal")
    frames = [Rectangle((c * pitch_x - 0.5, r * pitch_y + gap_y - 0.5), side, side)
              for r, c in (divmod(k, cols) for k in range(n))]
    ax.add_collection(PatchCollection(frames, facecolor="none", edgecolor="0.6", linewidth=0.6, clip_on=False))
    for k, caption in enumerate(captions):
        r, c = divmod(k, cols)
        ax.text(c * pitch_x + side / 2 - 0.5, r * pitch_y + gap_y - 2, caption, ha="center", va="bottom",
                fontsize=caption_size)
    fig.suptitle(title, fontsize=11, y=1 - 0.12 / height, va="top")
    if colorbar_label:
        cax = fig.add_axes(((left + grid_w + 0.3) / width, (margin + (body_h - bar_h) / 2) / height,
                            0.18 / width, bar_h / height))
        bar = fig.colorbar(image, cax=cax)
        bar.set_label(colorbar_label, fontsize=10)
    return fig
