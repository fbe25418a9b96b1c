"""digitnet.images.decode: transparency flattened onto the background that shows the ink."""

from __future__ import annotations

import numpy as np

from digitnet.images.decode import composite


def test_composite_puts_dark_ink_on_white_and_light_ink_on_black():
    alpha = np.zeros((10, 10), np.float32)
    alpha[4:6, 2:8] = 1.0
    black = np.zeros((10, 10, 3), np.float32)
    flattened = composite(black, alpha)
    assert flattened[0, 0].tolist() == [1.0, 1.0, 1.0] and flattened[5, 5].tolist() == [0.0, 0.0, 0.0]
    white = np.ones((10, 10, 3), np.float32)
    flattened = composite(white, alpha)
    assert flattened[0, 0].tolist() == [0.0, 0.0, 0.0] and flattened[5, 5].tolist() == [1.0, 1.0, 1.0]


# ---------------------------------------------------------------------------
# Bad files: ImageError and nothing else, before the pixels are decoded (issue 21)

import struct  # noqa: E402
import warnings  # noqa: E402
import zlib  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from digitnet.images import ImageError, load_image, open_image  # noqa: E402
from digitnet.images.decode import MAX_DECODED_BYTES, WORK_SIDE, check_decoded_bytes  # noqa: E402
from digitnet.images.normalise import _disc_filter, _disc_filters  # noqa: E402

REGRESSIONS = Path(__file__).parent / "fuzz" / "regressions" / "image"


@pytest.mark.parametrize("name, message", [
    ("image-png-truncated-ihdr", "damaged one \\(Truncated IHDR chunk\\)"),
    ("image-tiff-invalid-dimensions", "damaged one \\(Invalid dimensions\\)"),
    ("image-bigtiff-bare-header", "damaged one"),
    ("image-png-16-bit-8000x8000", "8000x8000 pixels \\(I;16\\) would take 366 MB \\(the limit is 192 MB\\)"),
    ("image-webp-60-megapixels-rgb", "would take 229 MB"),
])
def test_damaged_headers_and_bombs_give_one_line_image_errors(name, message, monkeypatch):
    """Pillow raised ValueError from Image.open for the first three (a traceback on the command line);
    the 16-bit PNG of 124 KB took 900 MB and 17 s to decode."""
    def no_decoding(self):
        raise AssertionError("the pixels were decoded before the size was checked")

    if "would take" in message:
        Image.init()  # every format plugin imported first: one of them draws a picture as it loads
        monkeypatch.setattr(Image.Image, "load", no_decoding)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's warnings about a damaged file are not shown either
        with pytest.raises(ImageError, match=message) as refused:
            load_image(REGRESSIONS / name)
    assert str(refused.value).startswith(str(REGRESSIONS / name)) and "\n" not in str(refused.value)


def test_the_decoding_budget_counts_the_mode_and_a_full_size_conversion():
    """4 bytes a pixel for RGB, 2 for 16-bit grey plus the 32-bit copy it is reduced in, 1 for grey."""
    def header_only(mode, size):
        image = Image.new(mode, (8, 8))
        image._size = size  # what Image.open reports from a header, before any decoding
        return image

    check_decoded_bytes(header_only("L", (8000, 8000)))             # 61 MB
    check_decoded_bytes(header_only("RGB", (8000, 6000)))           # 183 MB: a 48 MP photo saved as PNG
    with pytest.raises(ImageError, match="RGB\\) would take 244 MB"):
        check_decoded_bytes(header_only("RGB", (8000, 8000)))
    with pytest.raises(ImageError, match="P\\) would take 229 MB"):  # a palette is converted before shrinking
        check_decoded_bytes(header_only("P", (8000, 6000)))
    assert MAX_DECODED_BYTES == 192 * 2**20


def test_big_pictures_shrink_before_they_are_converted(tmp_path):
    """A 16-bit scan and a 32-bit one are reduced in 32-bit integers, then made floats in [0, 1]."""
    deep = np.zeros((2400, 3000), np.uint16)
    deep[600:1800, 1300:1500] = 60000
    Image.fromarray(deep).save(tmp_path / "deep.png")
    image = open_image(tmp_path / "deep.png")
    assert image.mode == "F" and image.size == (3000 // 2, 2400 // 2)
    pixels = np.asarray(image)
    assert pixels.max() == pytest.approx(60000 / 65535) and pixels.min() == 0.0


def test_a_jpeg_photo_is_decoded_at_the_smallest_scale_that_keeps_the_work_side(tmp_path):
    Image.new("RGB", (4000, 3000), (200, 200, 200)).save(tmp_path / "photo.jpg", quality=60)
    assert open_image(tmp_path / "photo.jpg").size == (1000, 750)  # 1/4: at least 3/4 of WORK_SIDE = 1024
    Image.new("RGB", (2100, 1400), (200, 200, 200)).save(tmp_path / "smaller.jpg", quality=60)
    assert open_image(tmp_path / "smaller.jpg").size == (1050, 700)
    assert WORK_SIDE == 1024
    # A phone's JPEG with a second (MPF) frame opens as MPO: decoded reduced all the same.
    Image.new("RGB", (4000, 3000), (200, 200, 200)).save(
        tmp_path / "phone.jpg", "MPO", quality=60, save_all=True, append_images=[Image.new("RGB", (40, 30))])
    assert Image.open(tmp_path / "phone.jpg").format == "MPO"
    assert open_image(tmp_path / "phone.jpg").size == (1000, 750)


def test_a_decoded_picture_outlives_its_file(tmp_path):
    """Single-frame pictures are not copied after decoding (Pillow closed the file); animated
    ones and memory-mapped ones are copied and their file closed."""
    frames = [Image.new("L", (40, 40), 255) for _ in range(2)]
    ImageDraw.Draw(frames[0]).line([(20, 5), (20, 35)], fill=0, width=5)
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    frames[0].save(tmp_path / "plain.png")
    frames[0].save(tmp_path / "raw.ppm")  # uncompressed: Pillow may map the file
    for name in ("anim.gif", "plain.png", "raw.ppm"):
        image = open_image(tmp_path / name)
        (tmp_path / name).unlink()
        assert np.asarray(image.convert("L"))[20, 20] < 128, name


@pytest.mark.parametrize("reach", [0, 1, 2, 3, 5, 8])
@pytest.mark.parametrize("thicken", [True, False])
def test_the_disc_filter_by_rows_is_the_disc_filter(reach, thicken):
    """normalise._disc_filter combines row runs: the same numbers as combining every disc offset."""
    image = np.random.default_rng(reach).random((23, 31)).astype(np.float32)
    padded = np.pad(image, reach)
    expected = image.copy()
    combine = np.maximum if thicken else np.minimum
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            if dy * dy + dx * dx <= reach * reach:
                combine(expected, padded[reach + dy:reach + dy + 23, reach + dx:reach + dx + 31], out=expected)
    assert np.array_equal(_disc_filter(image, reach, thicken), expected)


@pytest.mark.parametrize("reach", [0, 1, 4])
@pytest.mark.parametrize("thicken", [True, False])
def test_two_discs_sharing_their_runs_are_each_disc_alone(reach, thicken):
    """_disc_filters builds the row runs once for radii r and r + 1 (a fractional radius's two
    discs): each result is, to the bit, that disc filtered on its own."""
    image = np.random.default_rng(10 + reach).random((19, 26)).astype(np.float32)
    inner, outer = _disc_filters(image, (reach, reach + 1), thicken)
    assert np.array_equal(inner, _disc_filter(image, reach, thicken))
    assert np.array_equal(outer, _disc_filter(image, reach + 1, thicken))


def test_a_zlib_bomb_png_in_the_regressions_is_what_it_says():
    data = (REGRESSIONS / "image-png-16-bit-8000x8000").read_bytes()
    width, height, depth = struct.unpack(">IIB", data[16:25])
    assert (width, height, depth) == (8000, 8000, 16) and len(data) < 150_000
    assert zlib.crc32(data[12:29]) == struct.unpack(">I", data[29:33])[0]
