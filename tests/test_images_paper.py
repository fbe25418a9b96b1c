"""digitnet.images.paper: which side of the paper the ink is on."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from test_images import seven
from digitnet.images.paper import fit_paper, ink_is_dark


def test_ink_is_dark_for_dark_ink_on_light_paper():
    pixels = np.asarray(seven(), np.float32)[:, :, None] / 255
    paper, _ = fit_paper(pixels)
    assert ink_is_dark(pixels - paper)


def test_ink_is_light_for_white_on_black():
    pixels = np.asarray(seven(ink=255, paper=0), np.float32)[:, :, None] / 255
    paper, _ = fit_paper(pixels)
    assert not ink_is_dark(pixels - paper)


def test_inversion_follows_the_paper_not_the_mean():
    """Marker ink covering most of a white card: the mean is dark, but the paper (border) is white."""
    card = Image.new("L", (100, 100), 255)
    ImageDraw.Draw(card).rectangle([12, 12, 88, 88], fill=0)
    ImageDraw.Draw(card).rectangle([40, 30, 60, 70], fill=255)  # a fat '0'
    pixels = np.asarray(card, np.float32)[:, :, None] / 255
    assert pixels.mean() < 0.5
    paper, _ = fit_paper(pixels)
    assert ink_is_dark(pixels - paper)


def test_percentile_is_numpys_to_the_bit_with_or_without_the_zeros_in_front():
    from digitnet.images.paper import percentile
    rng = np.random.default_rng(0)
    for trial in range(3000):
        values = rng.random(int(rng.integers(1, 400))).astype(np.float32)
        if trial % 2:
            values = np.round(values * 8) / 8  # ties
        values = values.astype(np.float32)
        zeros = int(rng.integers(0, 600)) if trial % 3 else 0
        q = [95, 90, 5, 50, 100, 0][trial % 6]
        whole = np.concatenate([np.zeros(zeros, np.float32), values])
        assert percentile(values[values > 0], q, zeros + int((values == 0).sum())) == float(np.percentile(whole, q))
        assert percentile(values, q) == float(np.percentile(values, q))


def test_percentile_of_large_arrays_is_numpys_to_the_bit_whatever_the_sample():
    """Above 4,096 numbers the top percentiles partition only what lies above a bound read off a
    sample (every 8th number): exact when the sample is typical, and when it is not (every 8th
    number the largest), by falling back to the whole partition."""
    from digitnet.images.paper import percentile
    rng = np.random.default_rng(1)
    for trial in range(200):
        n = int(rng.integers(4096, 40000))
        values = rng.random(n, dtype=np.float32)
        if trial % 4 == 1:
            values = (np.round(values * 300) / 300).astype(np.float32)  # many ties, like an upscaled digit's ink
        elif trial % 4 == 2:
            values = np.sort(values)
        elif trial % 4 == 3:
            values[::8] = 1.0 + values[::8]  # the sample is all above the rest: its bound is too high
        zeros = int(rng.integers(0, 20000)) if trial % 3 else 0
        whole = np.concatenate([np.zeros(zeros, np.float32), values])
        for q in (95, 90, 50, 99.99, 100, 10):
            assert percentile(values, q, zeros) == float(np.percentile(whole, q)), (trial, q)


def test_percentile_with_the_largest_number_filling_the_top_is_numpys_to_the_bit():
    """A drawing's solid ink: most of the numbers are the largest, which is then the answer at once;
    and when the largest fills the top only in part, the partition still decides."""
    from digitnet.images.paper import percentile
    rng = np.random.default_rng(2)
    for trial in range(600):
        n = int(rng.integers(1, 20000))
        values = rng.random(n, dtype=np.float32)
        values[rng.random(n) < rng.uniform(0.0, 1.0)] = np.float32(0.9137255)  # above or below the rank
        values[rng.random(n) < 0.01] = values.max()
        zeros = int(rng.integers(0, 5000)) if trial % 3 else 0
        whole = np.concatenate([np.zeros(zeros, np.float32), values])
        for q in (95, 90, 50, 100, 75.5):
            assert percentile(values, q, zeros) == float(np.percentile(whole, q)), (trial, q)


def test_the_blur_is_the_binomial_filter_to_the_bit():
    """_smooth: ((before + 2 centre) + after) / 4 across, then down, in float32 and in that order, the
    edges repeated; computed with one division by 16 at the end, which gives the same bits."""
    from digitnet.images.paper import _smooth

    def binomial(before, centre, after):
        return ((centre + centre + before) + after) * np.float32(0.25)

    rng = np.random.default_rng(2)
    for shape in [(64, 64), (2, 2), (2, 90), (90, 2), (215, 135), (3, 70)]:
        for values in (rng.random(shape, dtype=np.float32),
                       (rng.integers(0, 256, shape) / np.float32(255)).astype(np.float32) * (rng.random(shape) < 0.3)):
            padded = np.pad(values, 1, mode="edge")
            across = binomial(padded[:, :-2], padded[:, 1:-1], padded[:, 2:])
            expected = binomial(across[:-2], across[1:-1], across[2:])
            assert _smooth(values, blur=True).tobytes() == expected.tobytes(), shape
            assert _smooth(np.asfortranarray(values), blur=True).tobytes() == expected.tobytes()
            framed = np.pad(values, ((3, 1), (2, 5)), constant_values=0.5)  # a window cut from a picture
            assert _smooth(framed[3:-1, 2:-5], blur=True).tobytes() == expected.tobytes(), shape
    small = rng.random((40, 40), dtype=np.float32)
    assert _smooth(small) is small  # under 64 px: no blur (it would blur the digit)


def test_median_is_numpys_to_the_bit():
    """paper.median: np.median's numbers (odd and even counts, 1-D and per column, float32 and 64)."""
    from digitnet.images.paper import median

    rng = np.random.default_rng(11)
    for size in (1, 2, 3, 10, 11, 500, 5001):
        for dtype in (np.float32, np.float64):
            values = rng.normal(size=size).astype(dtype)
            assert median(values) == np.median(values) and median(values).dtype == np.median(values).dtype
            columns = rng.random((size, 3)).astype(dtype)
            np.testing.assert_array_equal(median(columns, axis=0), np.median(columns, axis=0))
            grid = rng.random((size, 4)).astype(dtype)
            assert median(grid) == np.median(grid)


def test_percentile_of_float64_is_numpys_to_the_bit():
    from digitnet.images.paper import percentile

    rng = np.random.default_rng(12)
    for size in (1, 7, 100, 6000):
        values = rng.random(size)
        for q in (5, 50, 90, 95):
            assert percentile(values, q) == float(np.percentile(values, q))


def test_reading_a_photo_never_imports_numpy_ma(tmp_path):
    """np.median and np.percentile import numpy.ma on first use (10-25 ms of a fresh process):
    reading a photo, a ruled page or a shadowed one goes without them."""
    import subprocess
    import sys

    rng = np.random.default_rng(1)
    page = np.clip(0.85 + 0.05 * rng.normal(size=(900, 1200)), 0, 1)
    page[:, :600] *= 0.6  # a hard shadow's edge
    page[300:700, 500:560] = 0.1  # a stroke
    for y in range(50, 900, 60):
        page[y:y + 2] -= 0.3  # ruled lines
    path = tmp_path / "photo.jpg"
    Image.fromarray((np.clip(page, 0, 1) * 255).astype(np.uint8)).convert("RGB").save(path, quality=85)
    code = ("import sys; from digitnet import images\n"
            "try:\n    images.load_image(sys.argv[1])\nexcept images.ImageError:\n    pass\n"
            "print('numpy.ma' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
