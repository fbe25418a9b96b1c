"""page_png: the page's grey PNG read at once, the same pixels as Pillow's, and everything else left to Pillow."""

from __future__ import annotations

import io
import re
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from digitnet import predict
from digitnet.images import ImageError, decode, open_image, open_picture, preprocess_with_verdict
from digitnet.images.decode import MIN_IMAGE_SIDE
from digitnet.images.ink import DETECT_SIDE
from digitnet.images.page_png import MAX_SIDE, read_page_png
from test_serve_api import drawing

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.fuzz.fuzz_page_png import with_crcs_fixed  # noqa: E402
from tests.fuzz.make_regressions import page_png, page_png_regressions, png_chunk  # noqa: E402


def pillow_pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as picture:
        picture.load()
        assert picture.mode == "L"
        return np.asarray(picture)


def drawn_grey(side: int = 280) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(drawing("four", side=side))).convert("L"))


@pytest.mark.parametrize("shape", [(280, 280), (1, 8), (8, 1), (9, 300), (512, 512), (7, 8), (3, 40)])
def test_the_pages_png_reads_as_pillow_reads_it(shape):
    grey = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    data = page_png(grey)
    picture = read_page_png(data, MIN_IMAGE_SIDE)
    assert picture is not None and picture.mode == "L" and picture.size == (shape[1], shape[0])
    assert np.array_equal(np.asarray(picture), grey) and np.array_equal(pillow_pixels(data), grey)


def test_a_png_of_several_idat_chunks_is_read():
    grey = drawn_grey()
    rows = np.zeros((280, 281), np.uint8)
    rows[:, 1:] = grey
    stream = zlib.compress(rows.tobytes(), 6)
    parts = b"".join(png_chunk(b"IDAT", stream[i:i + 500]) for i in range(0, len(stream), 500))
    plain = page_png(grey)
    data = plain[:33] + parts + plain[-12:]
    assert np.array_equal(np.asarray(read_page_png(data, MIN_IMAGE_SIDE)), pillow_pixels(data))


def test_its_bounds_are_the_pipelines():
    assert MAX_SIDE == 2 * DETECT_SIDE  # what pipeline._ink_of_drawing reads on its levels
    assert read_page_png(page_png(np.zeros((7, 7), np.uint8)), MIN_IMAGE_SIDE) is None  # open_image refuses it
    assert read_page_png(page_png(np.zeros((1, MAX_SIDE + 1), np.uint8)), MIN_IMAGE_SIDE) is None


@pytest.mark.parametrize("name", sorted(page_png_regressions()))
def test_anything_else_is_left_to_pillow(name):
    assert read_page_png(page_png_regressions()[name], MIN_IMAGE_SIDE) is None


@pytest.mark.parametrize("mode", ["LA", "RGB", "RGBA", "P", "1", "I;16"])
def test_pictures_pillow_writes_are_left_to_pillow(mode):
    buffer = io.BytesIO()
    Image.fromarray(drawn_grey(64)).convert(mode).save(buffer, "PNG")
    assert read_page_png(buffer.getvalue(), MIN_IMAGE_SIDE) is None  # another mode, or filtered rows


def test_a_deflate_bomb_is_not_inflated_beyond_the_rows():
    data = page_png_regressions()["page-png-deflate-bomb"]
    assert read_page_png(data, MIN_IMAGE_SIDE) is None  # (the fuzz replay bounds its memory and time)


def test_many_empty_chunks_cost_no_more_memory_than_their_bytes():
    import tracemalloc
    plain = page_png(np.full((20, 20), 255, np.uint8))
    data = plain[:33] + png_chunk(b"IDAT", b"") * 83_333 + plain[33:]  # 1 MB of empty chunks, then the rows
    tracemalloc.start()
    try:
        picture = read_page_png(data, MIN_IMAGE_SIDE)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert picture is not None and np.array_equal(np.asarray(picture), pillow_pixels(data))
    assert peak < 1 << 20  # each view of a chunk held until the end cost 190 bytes: 16 MB


def test_a_closed_upload_and_smaller_bounds_keep_open_images_answers():
    upload = io.BytesIO(page_png(drawn_grey()))
    upload.close()
    with pytest.raises(ImageError):
        open_image(upload)
    with pytest.raises(ImageError, match="refused"):  # 280 x 280 over 50,000 pixels: Pillow's path says so
        open_image(io.BytesIO(page_png(drawn_grey())), max_pixels=50_000)


def test_open_image_reads_an_upload_of_the_pages_png_without_pillows_decoder(monkeypatch):
    data = page_png(drawn_grey())
    expected = np.asarray(open_image(io.BytesIO(data)))
    monkeypatch.setattr(Image, "open", lambda *a, **k: pytest.fail("Pillow's decoder was used"))
    assert np.array_equal(np.asarray(open_image(io.BytesIO(data))), expected)


def test_a_file_and_another_file_object_take_pillows_path(tmp_path, monkeypatch):
    data = page_png(drawn_grey())
    used = []
    monkeypatch.setattr(decode, "read_page_levels", lambda *a: used.append(a) or None)
    path = tmp_path / "four.png"
    path.write_bytes(data)
    with open(path, "rb") as stream:
        assert np.array_equal(np.asarray(open_image(stream)), np.asarray(open_image(path)))
    assert used == []


def test_an_orientation_next_to_the_pages_rows_is_still_applied():
    grey = drawn_grey(40)[:, :30]  # 30 wide, 40 tall: turned, 40 wide
    exif = png_chunk(b"eXIf", b"MM\0*\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0")
    assert open_image(io.BytesIO(page_png(grey, extra=exif))).size == (40, 30)


def test_the_answer_is_the_same_to_the_bit(monkeypatch):
    bodies = [page_png(drawn_grey()), page_png(drawn_grey(200))]
    network = predict_network()
    fast = [predict.predict_bytes(network, body).to_json(with_input=True) for body in bodies]
    monkeypatch.setattr(decode, "read_page_levels", lambda *a: None)
    assert [predict.predict_bytes(network, body).to_json(with_input=True) for body in bodies] == fast


def test_open_picture_gives_the_pages_png_as_its_levels_and_anything_else_as_open_image_does(tmp_path):
    data = page_png(drawn_grey())
    levels = open_picture(io.BytesIO(data))
    assert isinstance(levels, np.ndarray) and levels.dtype == np.uint8 and levels.flags.c_contiguous
    assert np.array_equal(levels, np.asarray(open_image(io.BytesIO(data))))
    path = tmp_path / "four.png"
    path.write_bytes(data)
    rgba = io.BytesIO()
    Image.fromarray(drawn_grey()).convert("RGBA").save(rgba, format="PNG")
    for other in (path, io.BytesIO(rgba.getvalue())):
        opened = open_picture(other)
        assert isinstance(opened, Image.Image) and opened.mode == open_image(other).mode
    with pytest.raises(ImageError, match="refused"):  # the bounds asked for are kept, as open_image keeps them
        open_picture(io.BytesIO(data), max_pixels=50_000)


def test_levels_are_preprocessed_as_their_grey_picture_to_the_bit():
    rng = np.random.default_rng(4)
    noisy = np.clip(drawn_grey().astype(int) + rng.integers(-9, 9, (280, 280)), 0, 255).astype(np.uint8)
    large = np.asarray(Image.fromarray(drawn_grey()).resize((2 * DETECT_SIDE + 40,) * 2))  # the float path
    light = 255 - drawn_grey(120)
    for levels in (drawn_grey(), drawn_grey(64), noisy, large, light):
        for invert in ("auto", "yes", "no"):
            try:
                expected = preprocess_with_verdict(Image.fromarray(levels), invert)
            except ImageError as refused:
                with pytest.raises(ImageError, match=re.escape(refused.reason)):
                    preprocess_with_verdict(levels, invert)
                continue
            seen, notes, verdict = preprocess_with_verdict(levels, invert)
            assert np.array_equal(seen, expected[0]) and notes == expected[1] and verdict == expected[2]


def predict_network():
    from digitnet.network import Network
    return Network([784, 12, 10], rng=np.random.default_rng(3))


SEED = page_png(np.where(np.random.default_rng(0).random((12, 16)) < 0.3, 22, 255).astype(np.uint8))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(SEED) - 1), st.integers(0, 255)), max_size=4),
       st.integers(0, len(SEED)), st.binary(max_size=8))
def test_damaged_pngs_never_raise_and_what_is_read_is_pillows(changes, cut, tail):
    data = bytearray(SEED)
    for position, value in changes:
        data[position] = value
    data = bytes(data[:cut]) + tail
    for tried in (data, with_crcs_fixed(data)):  # the CRCs made right: the changes reach the fields
        picture = read_page_png(tried, MIN_IMAGE_SIDE)
        if picture is not None:
            assert np.array_equal(np.asarray(picture), pillow_pixels(tried))
