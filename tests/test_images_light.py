"""digitnet.images.light: a hard shadow's edge and a flash's vignette evened out before the ink is found."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from test_images import seven, similarity
from digitnet import images
from digitnet.images import ImageError
from digitnet.images.light import light_is_uneven
from digitnet.images.paper import fit_paper, ink_is_dark


def lit(image: Image.Image, light: np.ndarray, seed: int = 0) -> Image.Image:
    """``image`` (L) multiplied by ``light`` (H, W), with a little sensor noise."""
    pixels = np.asarray(image, np.float32) * light
    pixels += np.random.default_rng(seed).normal(0, 2.0, pixels.shape)
    return Image.fromarray(np.clip(pixels + 0.5, 0, 255).astype(np.uint8))


def shadowed(angle_degrees: float, shadow: float, through=(0.5, 0.5), size=(240, 300)) -> Image.Image:
    """A '7' (ink 30 on paper 210) with a sharp shadow across the page: paper ``shadow`` on one side."""
    width, height = size
    page = Image.new("L", size, 210)
    ImageDraw.Draw(page).line([(60, 80), (170, 80), (105, 240)], fill=30, width=14, joint="curve")
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = np.radians(angle_degrees)
    distance = (rows - through[1] * height) * np.cos(angle) + (cols - through[0] * width) * np.sin(angle)
    light = shadow / 210 + (1 - shadow / 210) * np.clip(distance / 1.5 + 0.5, 0, 1)
    return lit(page, light)


def vignetted(depth: float, power: float, size=(260, 320)) -> Image.Image:
    width, height = size
    page = Image.new("L", size, 235)
    ImageDraw.Draw(page).line([(70, 90), (180, 90), (115, 250)], fill=30, width=14, joint="curve")
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    radius = np.hypot((rows - height / 2) / height, (cols - width / 2) / width) / 0.55
    return lit(page, 1 - depth * np.clip(radius, 0, 1) ** power)


@pytest.fixture(scope="module")
def evenly_lit() -> np.ndarray:
    return images.preprocess(shadowed(0, 210))


@pytest.mark.parametrize("angle", [0, 35, 90, 160, 250, 300])
@pytest.mark.parametrize("shadow", [90, 130])
def test_a_hard_shadow_edge_is_read_not_refused(evenly_lit, angle, shadow):
    result = images.preprocess(shadowed(angle, shadow, through=(0.45, 0.6)))
    assert similarity(result, evenly_lit) > 0.85


@pytest.mark.parametrize("depth, power", [(0.6, 3.0), (0.85, 6.0)])
def test_a_flash_vignette_is_read(evenly_lit, depth, power):
    assert similarity(images.preprocess(vignetted(depth, power)), evenly_lit) > 0.85


def test_shadow_is_uneven_light_and_ruled_paper_is_not():
    def uneven(image):
        pixels = np.asarray(image.convert("RGB"), np.float32) / 255
        residual = pixels - fit_paper(pixels)[0]
        return light_is_uneven(residual, ink_is_dark(residual))

    assert uneven(shadowed(30, 100))
    assert not uneven(shadowed(0, 210))
    ruled = Image.new("L", (240, 300), 240)
    for y in range(6, 300, 12):
        ImageDraw.Draw(ruled).line([(0, y), (240, y)], fill=150, width=2)
    assert not uneven(lit(ruled, np.ones((300, 240), np.float32)))


def test_a_plain_digit_is_unchanged():
    """Evenly lit pictures never take the new path: the same 28x28 as before, to the bit."""
    clean = seven()
    assert not light_is_uneven(*_residual_and_side(clean))
    noisy = lit(seven(), np.ones((160, 120), np.float32), seed=3)
    assert not light_is_uneven(*_residual_and_side(noisy))


def _residual_and_side(image):
    pixels = np.asarray(image, np.float32)[:, :, None] / 255
    residual = pixels - fit_paper(pixels)[0]
    return residual, ink_is_dark(residual)


@pytest.mark.parametrize("shadow", [90, 130])
def test_a_blank_page_with_a_shadow_edge_has_no_digit(shadow):
    """The shadow's edge is not a stroke, and the message says the page is blank, not 'noise or texture'."""
    rows, cols = np.mgrid[0:300, 0:240].astype(np.float32)
    light = shadow / 210 + (1 - shadow / 210) * np.clip((cols - 100) / 1.5 + 0.5, 0, 1)
    with pytest.raises(ImageError, match="blank") as raised:
        images.preprocess(lit(Image.new("L", (240, 300), 210), light))
    assert "noise or texture" not in str(raised.value)


def test_grainy_picture_keeps_the_noise_message():
    noise = np.random.default_rng(1).normal(128, 40, (200, 260))
    with pytest.raises(ImageError, match="noise or texture"):
        images.preprocess(Image.fromarray(np.clip(noise, 0, 255).astype(np.uint8)))
