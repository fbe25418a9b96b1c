"""digitnet.figures: off-screen figures, written as PNG atomically, and the mosaic of tiles."""

import numpy as np
import pytest
from PIL import Image

from digitnet import figures


def test_save_figure_writes_a_png_at_the_figure_size(tmp_path):
    fig = figures.new_figure(4, 2)
    fig.text(0.5, 0.5, "hello")
    path = figures.save_figure(fig, tmp_path / "a.png")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (4 * figures.DPI, 2 * figures.DPI)
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]


@pytest.mark.parametrize("side", [28, 10])
def test_tiles_of_any_square_size_make_one_mosaic(side):
    tiles = np.random.default_rng(0).random((7, side, side))
    fig = figures.tile_figure(tiles, [f"t{k}" for k in range(7)], "seven tiles", cmap="gray_r", vmin=0, vmax=1,
                              cols=3, colorbar_label="value")
    mosaic_axes = fig.axes[0]
    (image,) = mosaic_axes.get_images()
    assert image.get_array().shape == (3 * (side + 12), 3 * (side + 6) - 6)
    assert [t.get_text() for t in mosaic_axes.texts] == [f"t{k}" for k in range(7)]
    assert len(fig.axes) == 2  # the mosaic and its colour bar
