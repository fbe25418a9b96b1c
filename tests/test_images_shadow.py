"""Uneven light (digitnet.images.light through ink.find_ink_and_light): which side the ink is on in
a shadow, lines out before the light is evened, refine taking the copy's judgement, and the message
that names the cause when nothing is found."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from test_images import seven, similarity
from digitnet import images
from digitnet.images import ink as locate
from digitnet.images.decode import to_float_channels
from digitnet.images.ink import find_ink_and_light, shrink_for_detection

HEIGHT, WIDTH = 320, 260


def page(ink: int, paper: int) -> np.ndarray:
    """A '7' drawn in ``ink`` on ``paper`` (grey levels), as float pixels (H, W)."""
    drawn = Image.new("L", (WIDTH, HEIGHT), paper)
    ImageDraw.Draw(drawn).line([(70, 90), (180, 90), (115, 250)], fill=ink, width=14, joint="curve")
    return np.asarray(drawn, np.float32)


def photo(pixels: np.ndarray, light: np.ndarray, seed: int = 0) -> Image.Image:
    noisy = pixels * light + np.random.default_rng(seed).normal(0, 2, pixels.shape)
    return Image.fromarray(np.clip(noisy + 0.5, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return images.preprocess(seven())


@pytest.mark.parametrize("shadow", [0.3, 0.45])
@pytest.mark.parametrize("edge", [100, 160])
@pytest.mark.parametrize("ink, paper", [(30, 215), (235, 70)])
def test_either_ink_is_read_across_a_hard_shadow(reference, shadow, edge, ink, paper):
    """Dark ink on paper and light ink on a dark board, with a shadow's straight edge down the page:
    judged against the quadratic surface, the shade itself looked like the ink (similarity 0.3)."""
    cols = np.arange(WIDTH, dtype=np.float32)[None, :]
    result = images.preprocess(photo(page(ink, paper), np.where(cols > edge, 1.0, shadow)))
    assert similarity(result, reference) > 0.75


def _rules(shape, spacing, thickness, degrees, phase, vertical):
    """Coverage of parallel anti-aliased lines, as scripts/bench_paper_styles.py draws them."""
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    along, across = (rows, cols) if vertical else (cols, rows)
    position = across + np.tan(np.radians(degrees)) * along - phase
    return np.clip(thickness / 2 + 0.5 - np.abs(position - spacing * np.round(position / spacing)), 0, 1)


def on_graph_paper(digit: np.ndarray, scale=7, sheet=(297, 351), at=(62, 155), spacing=20.1) -> Image.Image:
    """An MNIST digit in pencil on grey graph paper, skewed 1.4 degrees (the benchmark's graph paper
    digit 9, whose grid makes the quadratic paper surface miss: the light is judged uneven)."""
    big = Image.fromarray((digit * 255).astype(np.uint8)).resize((28 * scale,) * 2, Image.BICUBIC)
    ink = np.zeros(sheet, np.float32)
    ink[at[0]:at[0] + 28 * scale, at[1]:at[1] + 28 * scale] = np.asarray(big, np.float32) / 255
    grid = np.maximum(_rules(sheet, spacing, 1.4, 1.44, 0.6, False), _rules(sheet, spacing, 1.4, -1.44, 7.8, True))
    pixels = np.full(sheet, 0.95, np.float32)
    pixels += (0.57 - pixels) * grid
    pixels += (0.12 - pixels) * ink
    pixels += np.random.default_rng(0).normal(0, 0.01, sheet).astype(np.float32)
    return Image.fromarray((np.clip(pixels, 0, 1) * 255 + 0.5).astype(np.uint8))


def test_the_light_is_evened_on_the_picture_without_its_lines(real_mnist_dir):
    """On graph paper the grid's small squares of paper looked like light marks to the light's
    judgement of the ink's side: evened with its lines in, the first test digit was refused."""
    from digitnet.data import load_mnist

    digits = load_mnist(real_mnist_dir).test.float_images()[:4].reshape(-1, 28, 28)
    for digit in digits[[0, 2, 3]]:
        picture = on_graph_paper(digit)
        small, _ = shrink_for_detection(to_float_channels(picture)[0])
        _, dark, uneven = find_ink_and_light(small)
        assert dark and uneven
        assert similarity(images.preprocess(picture), images.preprocess(digit)) > 0.9


def test_refine_takes_the_detection_copys_judgement_of_the_light(monkeypatch):
    """The light is judged once, on the small copy; around the digit (refine) the window is the
    digit's, where a marker's blob can pass for a patch of shade."""
    judged = []
    real = locate.light_is_uneven

    def counting(residual, dark_ink):
        judged.append(residual.shape[:2])
        return real(residual, dark_ink)

    monkeypatch.setattr(locate, "light_is_uneven", counting)
    sheet = np.full((700, 900), 255, np.float32)
    sheet[300:460, 400:520] = np.asarray(seven(), np.float32)  # 120x160 of 900x700: refined at full size
    images.preprocess(photo(sheet, np.full(sheet.shape, 0.9)))
    assert len(judged) == 1 and max(judged[0]) <= locate.DETECT_SIDE


def test_a_shadow_edge_is_evened_in_the_refined_window_too(reference):
    sheet = np.full((700, 900), 215, np.float32)
    sheet[300:460, 400:520] = np.asarray(seven(ink=30, paper=215), np.float32)
    cols = np.arange(900, dtype=np.float32)[None, :]
    result = images.preprocess(photo(sheet, np.where(cols > 470, 1.0, 0.45)))
    assert similarity(result, reference) > 0.85


def test_no_digit_in_patches_of_light_and_shade_says_so():
    """A page under a lattice's shadow: the light is to blame, not noise, and the message says so."""
    rows, cols = np.mgrid[0:300, 0:240]
    lattice = np.where(((rows // 30) + (cols // 30)) % 2, 1.0, 0.5)
    with pytest.raises(images.ImageError, match="the light varies too much across the picture"):
        images.preprocess(photo(np.full((300, 240), 215, np.float32), lattice))


@pytest.mark.parametrize("seed", [0, 1])
def test_grain_keeps_the_noise_message(seed):
    grain = (np.random.default_rng(seed).random((120, 90)) * 255).astype(np.uint8)
    with pytest.raises(images.ImageError, match="nothing stands out from the picture's noise or texture"):
        images.preprocess(grain)


def test_blank_ruled_paper_is_blank_not_noise():
    ruled = Image.new("L", (240, 300), 240)
    for y in range(6, 300, 14):
        ImageDraw.Draw(ruled).line([(0, y), (240, y)], fill=150, width=2)
    with pytest.raises(images.ImageError, match="the image is blank"):
        images.preprocess(ruled)


def test_evenly_lit_pictures_never_take_the_new_path(monkeypatch, reference):
    """The pictures of the older tests and benchmark styles are judged evenly lit, so their 28x28
    is the one from before (byte for byte: scripts/bench_predict.py's ten older styles, 300 each)."""
    def refuse(*args):
        raise AssertionError("even_light ran on an evenly lit picture")

    monkeypatch.setattr(locate, "even_light", refuse)
    rng = np.random.default_rng(0)
    shaded = np.asarray(seven(size=(240, 320), offset=(60, 80)), np.float32) / 255  # test_images' lit photo
    light = np.linspace(1.0, 0.45, shaded.shape[1])[None, :] * np.linspace(1.0, 0.8, shaded.shape[0])[:, None]
    shaded = (np.clip(shaded * light * 0.9 + 0.05 + rng.normal(0, 0.04, shaded.shape), 0, 1) * 255).astype(np.uint8)
    for picture in (seven(), photo(np.asarray(seven(), np.float32), np.ones((160, 120))), seven(width=34),
                    Image.fromarray(shaded)):
        assert similarity(images.preprocess(picture), reference) > 0.8
