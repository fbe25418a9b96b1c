"""Turn an arbitrary picture of one digit into a 28x28 MNIST-style input: pure numpy + Pillow.

MNIST's own recipe (LeCun et al.): the NIST digits were size-normalised to fit
a 20x20 box keeping their aspect ratio, anti-aliased (so edges are grey), and
placed in a 28x28 field so that their centre of mass sits at the centre.  The
ink is white (1.0) on black (0.0).  A user's picture is usually nothing like
that -- dark ink on paper, a photo with noise and uneven light, a transparent
drawing-app export -- so before MNIST's steps we first find the ink:

    open_image          refuse bombs from the header, decode (shrunk early), first frame, EXIF rotation
    to_float_channels   pixels as floats in [0, 1] plus the alpha channel, whatever the file's mode
    composite           flatten transparency onto the background that makes the ink visible
    shrink_for_detection  the digit is found on a copy at most 256 px across (then ``refine``)
    fit_paper           the background ("paper") as a smooth surface, which removes lighting gradients
    ink_is_dark         ink darker or lighter than the paper, judged against the paper, not the mean
    ink_signal          how far each pixel departs from the paper towards the ink
    denoise             a light blur, so pixel noise averages out
    threshold_ink       soft threshold above the noise: paper texture and JPEG noise become 0
    keep_digit          drop specks: keep the connected blobs that carry real ink mass
    crop_to_ink         the ink's bounding box
    refine              a small digit on a big picture is found again at full size around it
    normalise_strokes   thin pen lines thickened, marker strokes thinned, into MNIST's stroke widths
    fit_to_box          longer side to 20 px, keeping the aspect ratio, anti-aliased
    centre_by_mass      into 28x28 with the centre of mass at MNIST's centre

``preprocess`` runs them all (``find_ink`` groups the steps from fit_paper to
keep_digit); ``load_image`` opens a file and returns the 784 network inputs.
Anything wrong with the picture raises ``ImageError`` with a one-line message.
Nothing here prints.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

__all__ = [
    "BOX_SIZE",
    "FIELD_SIZE",
    "MAX_PIXELS",
    "ImageError",
    "centre_by_mass",
    "composite",
    "crop_to_ink",
    "denoise",
    "find_ink",
    "fit_paper",
    "flat_paper",
    "fit_to_box",
    "ink_bounds",
    "ink_is_dark",
    "ink_signal",
    "keep_digit",
    "load_image",
    "normalise_strokes",
    "open_image",
    "paper_noise",
    "preprocess",
    "refine",
    "require_digit_size",
    "shrink_early",
    "shrink_for_detection",
    "stroke_width",
    "threshold_ink",
    "to_float_channels",
]

FIELD_SIZE = 28          # MNIST images are 28x28 ...
BOX_SIZE = 20            # ... with the digit's longer side scaled to 20 px
MNIST_CENTRE = 14.0      # mean centre of mass of the MNIST test digits, (row, column), to 0.01 px
MAX_PIXELS = 64_000_000  # refused from the header, before any decoding (about 8000x8000)
WORK_SIDE = 1024         # large pictures are shrunk to about this longer side as they are decoded
DETECT_SIDE = 256        # the digit is found on a copy at most this big (see refine)
MIN_IMAGE_SIDE = 8       # smaller pictures cannot hold a recognisable digit
MIN_INK_SIDE = 6         # ink whose bounding box is smaller than this (in pixels) is a speck
MIN_CONTRAST = 0.08      # ink must differ from the paper by at least this much (pixel range 0..1)
MIN_PAPER_TOLERANCE = 0.02  # a pixel this close to the paper surface is paper, however clean the picture

# Stroke width of MNIST digits at the 20 px scale, measured as in normalise_strokes
# (stroke_width of the digit resampled to FINE_SIDE, divided by 8) on 5,000 training
# digits: median 2.1 px, 10th-90th percentile 1.6-3.1 px.  Widths outside that band
# are brought inside it, towards the median; the two targets were chosen on the first
# 2,000 test digits drawn in the thin-pen and thick-marker styles of
# scripts/bench_predict.py (and checked on test digits 4,000-6,999).
STROKE_BAND = (1.6, 3.2)
THIN_TARGET = 2.0
THICK_TARGET = 2.5
FINE_SIDE = 8 * BOX_SIZE  # strokes are measured and reshaped at 8x the final scale

_INVERT_CHOICES = {"auto": None, "yes": True, "no": False, None: None, True: True, False: False}
_EXIF_ORIENTATION = 0x0112
_TRANSPOSE_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class ImageError(Exception):
    """A picture that cannot be turned into a digit (unreadable, too big, blank, ...).

    ``reason`` is the one-line explanation and ``path`` the file, when known;
    ``str(error)`` is "path: reason".
    """

    def __init__(self, reason: str, path: str | os.PathLike | None = None):
        self.reason = reason
        self.path = None if path is None else str(path)
        super().__init__(reason if path is None else f"{path}: {reason}")


# ---------------------------------------------------------------------------
# Decoding


def open_image(path: str | os.PathLike | BinaryIO, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open and decode ``path`` (or a binary file object, e.g. an upload in ``io.BytesIO``),
    refusing decompression bombs before a single pixel is decoded.

    ``Image.open`` reads only the header, so the pixel count is checked there,
    before ``load()`` (Pillow's own DecompressionBombError, raised by ``open``
    itself beyond twice ``Image.MAX_IMAGE_PIXELS``, is reported the same way;
    that global setting is left alone).  JPEGs are decoded at a reduced DCT
    scale (``draft``) and everything else is box-reduced right after decoding,
    so the later steps see fewer than 2 x ``WORK_SIDE`` pixels on the longer
    side.  Animated images give their first frame; EXIF rotation (phone
    photos) is applied.
    """
    if hasattr(path, "read"):
        source, path = path, None  # errors then carry no file name
    else:
        source = path = Path(path)
        if path.is_dir():
            raise ImageError("is a folder, not an image file", path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(source)
    except FileNotFoundError:
        raise ImageError("no such file", path) from None
    except Image.DecompressionBombError:
        raise ImageError(f"refused: the image has too many pixels (the limit is {max_pixels:,})", path) from None
    except Image.UnidentifiedImageError:
        raise ImageError("not an image (or not a format Pillow can read)", path) from None
    except OSError as e:
        raise ImageError(f"cannot read the file ({e.strerror or e})", path) from None
    with image:
        try:
            check_size(image.size, max_pixels)
        except ImageError as e:
            raise ImageError(e.reason, path) from None
        orientation = _orientation(image)
        _request_draft(image)
        try:
            image.load()
            flat = _standard_mode(image)
            flat = flat.copy() if flat is image else flat  # closing the file invalidates `image`
        except Exception as e:  # noqa: BLE001 -- Pillow's decoders raise many types on corrupt data
            raise ImageError(f"cannot decode the image ({_describe(e)})", path) from None
    flat = shrink_early(flat)
    transpose = _TRANSPOSE_FOR_ORIENTATION.get(orientation)
    return flat.transpose(transpose) if transpose is not None else flat


def check_size(size: tuple[int, int], max_pixels: int = MAX_PIXELS) -> None:
    """Refuse pictures too small to hold a digit or too large to decode safely."""
    width, height = size
    if width * height > max_pixels:
        raise ImageError(f"refused: {width}x{height} is {width * height:,} pixels "
                         f"(the limit is {max_pixels:,})")
    if max(width, height) < MIN_IMAGE_SIDE or min(width, height) < 1:
        raise ImageError(f"the image is only {width}x{height} pixels, too small for a digit "
                         f"(need at least {MIN_IMAGE_SIDE} on the longer side)")


def _describe(error: Exception) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation tag (1 = upright) or 1 when there is none or it is unreadable."""
    try:
        return int(image.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 -- a broken EXIF block must not make the image unreadable
        return 1


def _request_draft(image: Image.Image) -> None:
    """Ask a JPEG decoder for a 1/2, 1/4 or 1/8 scale that still keeps WORK_SIDE pixels."""
    longest = max(image.size)
    if image.format == "JPEG" and longest > 2 * WORK_SIDE:
        scale = WORK_SIDE / longest
        image.draft(None, (max(1, int(image.size[0] * scale)), max(1, int(image.size[1] * scale))))


def _standard_mode(image: Image.Image) -> Image.Image:
    """Convert the many Pillow modes to one of L, LA, RGB, RGBA, F (16/32-bit and float data).

    Returns ``image`` itself when it is already in one of those modes.
    """
    mode = image.mode
    has_transparency = "transparency" in image.info
    if mode in ("L", "LA", "RGB", "RGBA", "F") and not has_transparency:
        return image
    if mode.startswith("I;16") or mode == "I":
        return _integer_to_float(image)
    if mode == "1" and not has_transparency:
        return image.convert("L")
    if mode == "La":
        return image.convert("LA")
    if "A" in mode or "a" in mode or has_transparency:
        return image.convert("RGBA")  # RGBa, PA, P/L/RGB with a transparent colour
    return image.convert("RGB")  # P, CMYK, YCbCr, LAB, HSV, ...


def _integer_to_float(image: Image.Image) -> Image.Image:
    """16- and 32-bit greyscale as a float image in [0, 1]."""
    pixels = np.asarray(image, dtype=np.float32)
    if image.mode.startswith("I;16"):
        full_scale = 65535.0
    else:
        full_scale = 255.0 if pixels.size and pixels.max() <= 255 else 65535.0
    return Image.fromarray(np.clip(pixels / full_scale, 0.0, 1.0).astype(np.float32), "F")


def shrink_early(image: Image.Image, work_side: int = WORK_SIDE) -> Image.Image:
    """Box-reduce by an integer factor so that the longer side is near ``work_side``.

    Averaging blocks of pixels keeps the ink's mass (a thin line becomes a
    fainter line, not a gap), and every later step runs on far fewer pixels:
    this is what makes a 4000x3000 photo as quick as a scan.
    """
    factor = max(image.size) // work_side
    return image.reduce(factor) if factor >= 2 else image


def to_float_channels(image) -> tuple[np.ndarray, np.ndarray | None]:
    """Pixels as float32 in [0, 1], shape (H, W, C) with C = 1 or 3, and alpha (H, W) or None.

    Accepts a PIL image or a numpy array (H, W), (H, W, 1|2|3|4) of uint8,
    uint16, bool or floats in [0, 1].  Colour images whose three channels are
    equal are returned as one channel.  Alpha is None when fully opaque.
    """
    if isinstance(image, Image.Image):
        array = np.asarray(image if image.mode in ("L", "LA", "RGB", "RGBA", "F") else _standard_mode(image))
    else:
        array = np.asarray(image)
    if array.dtype not in (np.uint8, np.uint16):
        return _float_channels(array)
    # 8- and 16-bit pictures (every decoded file): opacity and grey are decided on the stored
    # integers, and only the channels kept are converted -- for a canvas PNG (RGBA, opaque, grey)
    # one channel instead of four, which made this step 6x cheaper.
    pixels, alpha = _split_channels(array, array, opaque=0.999 * np.iinfo(array.dtype).max)
    return np.ascontiguousarray(_scaled_to_unit(pixels)), None if alpha is None else _scaled_to_unit(alpha)


def _split_channels(pixels: np.ndarray, original: np.ndarray, opaque: float):
    """(colour, alpha) of an (H, W[, C]) array: alpha is None when every value is at least
    ``opaque``, and three equal colour channels become one."""
    pixels = pixels[:, :, None] if pixels.ndim == 2 else pixels
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 2, 3, 4):
        raise ImageError(f"cannot use an array of shape {original.shape} as an image")
    alpha = None
    if pixels.shape[2] in (2, 4):
        alpha = pixels[:, :, -1]
        pixels = pixels[:, :, :-1]
        if alpha.min() >= opaque:
            alpha = None
    if pixels.shape[2] == 3 and np.array_equal(pixels[:, :, 0], pixels[:, :, 1]) \
            and np.array_equal(pixels[:, :, 1], pixels[:, :, 2]):
        pixels = pixels[:, :, :1]
    check_size((pixels.shape[1], pixels.shape[0]))
    return pixels, alpha


def _float_channels(array: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``to_float_channels`` for arrays of other types (floats, bool, wide integers), which are
    scaled as a whole (colour and alpha together) before being split."""
    pixels, alpha = _split_channels(_scaled_to_unit(array), array, opaque=0.999)
    return np.ascontiguousarray(pixels), alpha


def _scaled_to_unit(array: np.ndarray) -> np.ndarray:
    """uint8 / uint16 / bool arrays as float32 in [0, 1]; other numbers are taken to be in
    [0, 1] already, or in [0, 255], or else scaled by their maximum (float TIFFs vary)."""
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    if array.dtype == np.uint8:
        return array.astype(np.float32) / np.float32(255)
    if array.dtype == np.uint16:
        return array.astype(np.float32) / np.float32(65535)
    if array.dtype.kind in "iuf":
        pixels = array.astype(np.float32)
        if not np.all(np.isfinite(pixels)):
            raise ImageError("the image holds NaN or infinite values")
        peak = float(pixels.max()) if pixels.size else 0.0
        if peak > 1.0:
            pixels /= np.float32(max(255.0, peak))
        return np.clip(pixels, 0.0, 1.0)
    raise ImageError(f"cannot use an array of dtype {array.dtype} as an image")


# ---------------------------------------------------------------------------
# Finding the ink


def composite(pixels: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """Flatten transparency onto the background that makes the ink visible.

    Two kinds of picture have an alpha channel.  A drawing-app export has ink
    strokes on a mostly transparent canvas: the opaque pixels *are* the ink,
    and the colour stored under transparent pixels means nothing (often it is
    black, like black ink).  Such a picture goes onto white when its opaque
    pixels are dark and onto black when they are light, so alpha carries the
    ink.  A picture that is mostly opaque (a scan with transparent corners)
    goes onto its own typical opaque colour, so the transparent parts look
    like paper.
    """
    if alpha is None:
        return pixels
    weights = alpha[:, :, None]
    opaque = alpha > 0.5
    if opaque.mean() >= 0.5:
        background = np.median(pixels[opaque], axis=0)
    else:
        total = float(alpha.sum())
        mean_opaque = (pixels * weights).sum(axis=(0, 1)) / total if total > 0 else np.zeros(pixels.shape[2])
        background = np.full(pixels.shape[2], 1.0 if _luminance(mean_opaque) < 0.5 else 0.0)
    return (pixels * weights + background.astype(np.float32) * (1.0 - weights)).astype(np.float32)


def _channel_max(pixels: np.ndarray) -> np.ndarray:
    """The largest channel of (..., C) pixels, shape (...): much faster than .max(axis=-1) for C = 3."""
    result = pixels[..., 0]
    for channel in range(1, pixels.shape[-1]):
        result = np.maximum(result, pixels[..., channel])
    return result


def _luminance(colour: np.ndarray) -> float:
    colour = np.asarray(colour, dtype=np.float64).reshape(-1)
    return float(colour[0]) if colour.size == 1 else float(colour[:3] @ np.array([0.299, 0.587, 0.114]))


def fit_paper(pixels: np.ndarray, samples: int = 48, rounds: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """The paper as a smooth quadratic surface per channel (H, W, C), and a mask (H, W) of paper pixels.

    A photo of a page is lit unevenly, so "the background colour" varies
    across it; subtracting a fitted surface makes a shadowed corner as blank
    as a bright one.  The fit starts from the border ring (almost always
    paper, even when the digit is large) and is refined on every pixel whose
    residual is within a few noise deviations, so the ink -- an outlier on one
    side -- never pulls the surface.  Fitting uses a grid of at most
    ``samples`` x ``samples`` pixels, so it costs the same for any size.
    """
    height, width, channels = pixels.shape
    step = max(1, -(-max(height, width) // samples))
    targets = pixels[::step, ::step].reshape(-1, channels).astype(np.float64)
    rows, cols = np.mgrid[0:height:step, 0:width:step]
    design = _quadratic_design(rows.ravel(), cols.ravel(), height, width)
    ring = _border_ring(rows.ravel(), cols.ravel(), height, width)
    deviation = _channel_max(np.abs(targets - np.median(targets[ring], axis=0)))
    inliers = ring & (deviation <= _tolerance(deviation[ring]))
    for _ in range(rounds):
        coefficients = _least_squares(design, targets, inliers)
        residual = _channel_max(np.abs(targets - design @ coefficients))
        tolerance = _tolerance(residual[inliers])
        inliers = residual <= tolerance
    paper = _evaluate_quadratic(coefficients, height, width)
    is_paper = _channel_max(np.abs(pixels - paper)) <= tolerance
    return paper, is_paper


def _tolerance(deviations: np.ndarray) -> float:
    """How far from the surface a pixel may be and still count as paper: four robust standard
    deviations (1.4826 x the median absolute deviation), and never less than MIN_PAPER_TOLERANCE."""
    if not deviations.size:
        return MIN_PAPER_TOLERANCE
    return max(4 * 1.4826 * float(np.median(deviations)), MIN_PAPER_TOLERANCE)


def flat_paper(pixels: np.ndarray) -> np.ndarray | None:
    """The paper's colour (C,) when the paper is provably flat, else None (then fit_paper).

    A drawing made on a computer (the serve page's canvas, a drawing-app export) has paper
    of one exact colour: every pixel of the border ring (the outer 10%, where fit_paper
    starts) holds the same numbers, and so does at least half of the picture.  No scan or
    photo does, because of noise.  On such paper fit_paper's surface is that colour and its
    tolerance its floor, MIN_PAPER_TOLERANCE, except that anti-aliased stroke edges within
    the tolerance pull the fitted surface by a hair; skipping the fit saves its cost (2 ms a
    call, a third of a canvas's preprocessing).
    """
    found = _flat_paper(pixels)
    return None if found is None else found[0]


def _flat_paper(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``flat_paper``'s colour, and the mask (H, W) of the pixels that have exactly that colour."""
    height, width, channels = pixels.shape
    colour = pixels[0, 0]
    margin_y, margin_x = max(1, height // 10), max(1, width // 10)
    for strip in (pixels[:margin_y], pixels[height - margin_y:], pixels[:, :margin_x], pixels[:, width - margin_x:]):
        if not np.array_equal(strip, np.broadcast_to(colour, strip.shape)):
            return None
    same = pixels[:, :, 0] == colour[0]
    for channel in range(1, channels):
        same &= pixels[:, :, channel] == colour[channel]
    return (colour.copy(), same) if 2 * np.count_nonzero(same) >= same.size else None


def _evaluate_quadratic(coefficients: np.ndarray, height: int, width: int) -> np.ndarray:
    """The fitted surfaces on every pixel, (H, W, C), by broadcasting a row and a column of coordinates."""
    y = np.linspace(-1.0, 1.0, height, dtype=np.float32)[:, None] if height > 1 else np.full((1, 1), -1.0, np.float32)
    x = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :] if width > 1 else np.full((1, 1), -1.0, np.float32)
    c = coefficients.astype(np.float32)
    surfaces = [c[0, k] + x * (c[1, k] + c[3, k] * x) + y * (c[2, k] + c[4, k] * x + c[5, k] * y)
                for k in range(c.shape[1])]
    return np.stack(surfaces, axis=2)


def _quadratic_design(rows: np.ndarray, cols: np.ndarray, height: int, width: int) -> np.ndarray:
    """Columns 1, x, y, x^2, xy, y^2 with x, y scaled to [-1, 1] (well conditioned)."""
    y = rows * (2.0 / max(height - 1, 1)) - 1.0
    x = cols * (2.0 / max(width - 1, 1)) - 1.0
    return np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=1)


def _border_ring(rows: np.ndarray, cols: np.ndarray, height: int, width: int) -> np.ndarray:
    """The outer 10% on every side (at least one pixel)."""
    margin_y, margin_x = max(1, height // 10), max(1, width // 10)
    return (rows < margin_y) | (rows >= height - margin_y) | (cols < margin_x) | (cols >= width - margin_x)


def _least_squares(design: np.ndarray, targets: np.ndarray, inliers: np.ndarray) -> np.ndarray:
    """Quadratic surface through the inliers; a flat one when too few to fit a curve."""
    if inliers.sum() < 4 * design.shape[1]:
        inliers = inliers if inliers.sum() > 0 else np.ones(len(targets), bool)
        flat = np.zeros((design.shape[1], targets.shape[1]))
        flat[0] = np.median(targets[inliers], axis=0)
        return flat
    chosen = design[inliers]
    try:  # the normal equations: a 6x6 solve, well conditioned with coordinates in [-1, 1]
        return np.linalg.solve(chosen.T @ chosen, chosen.T @ targets[inliers])
    except np.linalg.LinAlgError:  # inliers on a line (a one-pixel-wide picture): plain least squares
        return np.linalg.lstsq(chosen, targets[inliers], rcond=None)[0]


def ink_is_dark(residual: np.ndarray) -> bool:
    """True when the ink is darker than the paper (to be inverted to MNIST's white on black).

    Decided against the fitted paper rather than from the mean brightness: the
    pixels that depart most from the paper, after a light blur that removes
    single-pixel noise, are the ink, and we look at which side they are on.
    The extreme tails are compared (the mean of the top 0.05% on each side),
    so a small digit on a big page decides as clearly as a large one, and
    symmetric noise or paper texture cancels out.  (On large pictures every
    other row and column is enough: after the blur, neighbours are alike.)
    """
    lowest, highest = float(residual.min()), float(residual.max())
    if highest <= 0 or lowest >= 0:  # everything departs to one side (a clean drawing): no tails to compare
        return highest <= 0 < -lowest
    darker = _smooth(_channel_max(-residual))
    lighter = _smooth(_channel_max(residual))
    if darker.size > 20000:
        darker, lighter = darker[::2, ::2], lighter[::2, ::2]
    count = max(8, darker.size // 2000)
    return _top_mean(darker, count) > _top_mean(lighter, count)


def _top_mean(values: np.ndarray, count: int) -> float:
    flat = values.ravel()
    count = min(count, flat.size)
    return float(np.partition(flat, flat.size - count)[flat.size - count:].mean())


def _smooth(values: np.ndarray, blur: bool | None = None) -> np.ndarray:
    """A 3x3 binomial blur ([1 2 1] / 4 both ways), skipped for small images where it would blur the digit
    (``blur`` says whether to, for a window cut from a picture that decides; None: decide from ``values``)."""
    if not (min(values.shape) >= 64 if blur is None else blur) or min(values.shape) < 2:
        return values
    values = values.astype(np.float32, copy=False)
    across = np.empty_like(values)  # edges repeat the outermost pixels, like np.pad(mode="edge")
    _binomial(values[:, :-2], values[:, 1:-1], values[:, 2:], across[:, 1:-1])
    _binomial(values[:, :1], values[:, :1], values[:, 1:2], across[:, :1])
    _binomial(values[:, -2:-1], values[:, -1:], values[:, -1:], across[:, -1:])
    result = np.empty_like(values)
    _binomial(across[:-2], across[1:-1], across[2:], result[1:-1])
    _binomial(across[:1], across[:1], across[1:2], result[:1])
    _binomial(across[-2:-1], across[-1:], across[-1:], result[-1:])
    return result


def _binomial(before: np.ndarray, centre: np.ndarray, after: np.ndarray, out: np.ndarray) -> None:
    """out = before / 4 + centre / 2 + after / 4, in that order (float32), with no temporaries but one."""
    np.multiply(before, np.float32(0.25), out=out)
    half = centre * np.float32(0.5)
    out += half
    np.multiply(after, np.float32(0.25), out=half)
    out += half


def ink_signal(residual: np.ndarray, dark_ink: bool) -> np.ndarray:
    """How far each pixel departs from the paper towards the ink, >= 0, in the largest channel.

    Taking the largest per-channel departure (rather than the luminance) keeps
    coloured ink strong: yellow ink on white paper barely changes the
    brightness but removes almost all of the blue.
    """
    towards_ink = -residual if dark_ink else residual
    return np.maximum(_channel_max(towards_ink), 0).astype(np.float32)


def denoise(signal: np.ndarray) -> np.ndarray:
    """A light blur of the ink signal (3x3 binomial, images of 64 px and more): pixel noise and
    JPEG speckle average out while strokes, several pixels wide at that size, keep their strength."""
    return _smooth(signal)


def paper_noise(signal: np.ndarray, is_paper: np.ndarray) -> float:
    """How far paper pixels typically reach towards the ink: the 95th percentile of the signal
    over the paper.  This is the level of paper texture, JPEG noise and leftover shading."""
    step = 2 if signal.size > 20000 else 1  # a sample of the paper is enough for a percentile
    paper = signal[::step, ::step][is_paper[::step, ::step]]
    return float(np.percentile(paper, 95)) if paper.size else 0.0


def threshold_ink(signal: np.ndarray, noise: float) -> np.ndarray:
    """Soft threshold: 0 up to the noise ceiling, rising to 1 at the strokes' typical strength.

    Paper texture, JPEG noise and what is left of the lighting sit below
    ``low`` (three times the paper's noise level ``noise``, and at least 10%
    of the ink's strength), so they become exactly 0 and cannot enlarge the
    bounding box.  Above it the ink is stretched to reach 1 at 85% of its
    typical strength, like MNIST's saturated strokes; the edges keep grey
    levels, which carry the anti-aliasing.
    """
    noise_ceiling = 3.0 * noise
    candidates = signal[signal > max(noise_ceiling, MIN_CONTRAST / 2)]
    strength = float(np.percentile(candidates, 90)) if candidates.size else 0.0
    if strength < max(MIN_CONTRAST, 2 * noise_ceiling):
        if noise_ceiling >= MIN_CONTRAST / 2:  # the paper itself varies a lot: noise or texture, not blank
            raise ImageError("no digit found: nothing stands out from the picture's noise or texture")
        raise ImageError("no ink found: the image is blank (or its ink is too faint to tell from the paper)")
    low = max(noise_ceiling, 0.1 * strength)
    high = max(0.85 * strength, low + 0.05)
    return np.clip((signal - low) / (high - low), 0.0, 1.0).astype(np.float32)


def keep_digit(ink: np.ndarray, grid: int = 48, min_share: float = 0.02, cell: int | None = None) -> np.ndarray:
    """Zero every blob of ink that is a speck next to the digit (dust, noise, a stray dot).

    Blobs are the 8-connected components of the inked cells of a grid of at
    most ``grid`` x ``grid`` cells (so nearby pieces of a broken stroke join);
    a blob is kept when its ink mass is at least ``min_share`` of the largest.  (``cell``: the
    cells' size in pixels, given for a window cut from a bigger picture at a multiple of it.)
    """
    height, width = ink.shape
    cell = cell or max(1, -(-max(height, width) // grid))
    mass = _block_sum(ink, cell)
    labels, count = _label_components(mass > 0)
    if count <= 1:
        return ink
    blob_mass = np.bincount(labels.ravel(), weights=mass.ravel(), minlength=count + 1)
    blob_mass[0] = 0.0
    keep = blob_mass >= min_share * blob_mass.max()
    keep[0] = False
    kept_cells = keep[labels]
    mask = np.repeat(np.repeat(kept_cells, cell, axis=0), cell, axis=1)[:height, :width]
    return np.where(mask, ink, 0.0).astype(np.float32)


def _block_sum(values: np.ndarray, cell: int) -> np.ndarray:
    """Sum over cell x cell blocks (the last partial blocks included)."""
    if cell == 1:
        return values
    height, width = values.shape
    rows = np.add.reduceat(values, np.arange(0, height, cell), axis=0)
    return np.add.reduceat(rows, np.arange(0, width, cell), axis=1)


def _label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected component labels 1..count of a small boolean grid, numbered in the raster
    order of each component's first cell.

    The grid is cut into runs (horizontal stretches of True); a run joins every run of the row
    above that it overlaps or touches diagonally, with union-find over the runs.  A digit's
    grid of at most 48 x 48 cells has a few hundred runs: on the 47 x 47 grid of a drawn digit
    this takes 0.4 ms, where propagating labels over the whole array took 2.1 ms (a drawn
    280 x 280 digit's preprocessing went from 18.0 to 14.6 ms of CPU; scripts/bench_serve.py).
    """
    height, width = mask.shape
    edges = np.diff(np.pad(mask, ((0, 0), (1, 1))).astype(np.int8), axis=1)
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
    for i in range(len(rows)):
        row = rows[i]
        while above < i and rows[above] < row - 1:
            above += 1
        j = above
        while j < i and rows[j] == row - 1:
            if starts[j] <= ends[i] and starts[i] <= ends[j]:  # overlap, or touch at a corner
                a, b = root(i), root(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)  # the root is the component's first run
            j += 1
    labels = np.zeros((height, width), dtype=np.int32)
    numbers: dict[int, int] = {}
    for i in range(len(rows)):  # runs in raster order: a component is numbered at its first run
        labels[rows[i], starts[i]:ends[i]] = numbers.setdefault(root(i), len(numbers) + 1)
    return labels, len(numbers)


def ink_bounds(ink: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the ink, bottom and right exclusive; ImageError when blank."""
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        raise ImageError("no ink found: the image is blank")
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def crop_to_ink(ink: np.ndarray) -> np.ndarray:
    """The smallest rectangle holding all the ink (MNIST normalised this box, not the page)."""
    top, bottom, left, right = ink_bounds(ink)
    return ink[top:bottom, left:right]


def require_digit_size(cropped: np.ndarray) -> np.ndarray:
    """Refuse ink too small to be a digit (a dot or a speck of dust on an otherwise blank page)."""
    if max(cropped.shape) < MIN_INK_SIDE:
        raise ImageError(f"no digit found: the only ink is a speck of {cropped.shape[1]}x{cropped.shape[0]} pixels")
    return cropped


# ---------------------------------------------------------------------------
# MNIST's normalisation


def stroke_width(ink: np.ndarray, level: float = 0.5) -> float:
    """Typical stroke width in pixels: twice the depth of the strokes' centre lines.

    The ink (above ``level``) is peeled one layer of pixels at a time
    (alternating 4- and 8-neighbour erosions, close to peeling by a disc); the
    number of layers a pixel survives is its depth, its distance from the
    nearest edge.  On a stroke's centre line -- the pixels at least as deep as
    all their neighbours -- the depth is half the stroke's width, so the
    median over centre lines gives the typical width (2 x depth - 1: exact
    for odd whole widths, one pixel short for even ones).  Unlike an
    area-based measure, this is not fooled by blobs where a thick pen closed a
    loop.
    """
    inside = ink > level
    if not inside.any():
        return 0.0
    height, width = inside.shape
    # Two layers with a border of background (outside the array is not ink), written in turn,
    # and the erosions done separably: a 3x3 square is a 1x3 then a 3x1 erosion, a cross is a
    # 3x1 one and the left and right neighbours -- four operations a layer (2.5x quicker).
    layer, peeled_layer = np.zeros((2, height + 2, width + 2), dtype=bool)
    layer[1:-1, 1:-1] = inside
    across = np.zeros_like(layer)
    depth = np.zeros((height, width), dtype=np.int16)
    peeled = 0
    while True:
        core = layer[1:-1, 1:-1]
        if not core.any():
            break
        peeled += 1
        depth += core
        out = peeled_layer[1:-1, 1:-1]
        if peeled % 2 == 0:  # the square: all eight neighbours
            np.logical_and(layer[:, :-2], layer[:, 2:], out=across[:, 1:-1])
            across[:, 1:-1] &= layer[:, 1:-1]
            np.logical_and(across[:-2, 1:-1], across[2:, 1:-1], out=out)
            out &= across[1:-1, 1:-1]
        else:  # the cross: four neighbours
            np.logical_and(layer[:-2, 1:-1], layer[2:, 1:-1], out=out)
            out &= core
            out &= layer[1:-1, :-2]
            out &= layer[1:-1, 2:]
        layer, peeled_layer = peeled_layer, layer
    padded = np.zeros((height + 2, width + 2), dtype=np.int16)
    padded[1:-1, 1:-1] = depth
    rows_max = np.maximum(np.maximum(padded[:, :-2], padded[:, 1:-1]), padded[:, 2:])
    deepest_around = np.maximum(np.maximum(rows_max[:-2], rows_max[1:-1]), rows_max[2:])
    centre_lines = inside & (depth >= deepest_around)
    return 2.0 * float(np.median(depth[centre_lines])) - 1.0


def normalise_strokes(cropped: np.ndarray, rounds: int = 3) -> np.ndarray | None:
    """Bring strokes outside MNIST's usual widths (STROKE_BAND) inside them; None when already typical.

    The digit is resampled so its longer side is FINE_SIDE (8x the final
    20 px), its stroke width measured there, and the strokes thickened (grey
    dilation) or thinned (grey erosion) with a disc of the missing or excess
    half-width, to THIN_TARGET or THICK_TARGET.  Pen lines a pixel wide would otherwise vanish when shrunk to
    20 px, and marker strokes would fill the digit.  Thinning also shrinks
    the bounding box (and thickening grows it), which changes the scale, so
    the result is re-cropped, measured again and corrected in a few rounds.
    Returns the digit at FINE_SIDE, ready for fit_to_box.
    """
    scale = FINE_SIDE / BOX_SIZE
    fine = _resample_longer_side(cropped, FINE_SIDE)
    if STROKE_BAND[0] <= stroke_width(fine) / scale <= STROKE_BAND[1]:
        return None
    fine = _full_strength(fine)
    target = THIN_TARGET if stroke_width(fine) / scale < STROKE_BAND[0] else THICK_TARGET
    for _ in range(rounds):
        width = stroke_width(fine) / scale
        if abs(width - target) < 0.2:
            break
        # The box changes by 2r with the strokes, and fit_to_box undoes that: hence 1 - w/20.
        radius = abs(target - width) * scale / (2 * (1 - target / BOX_SIZE))
        reshaped = _grey_morphology(fine, radius, thicken=width < target)
        reshaped[reshaped < 0.02] = 0.0
        if not reshaped.any() or max(crop_to_ink(reshaped).shape) < FINE_SIDE // 4:
            break  # thinning would erase the digit: keep what we have
        fine = _resample_longer_side(crop_to_ink(reshaped), FINE_SIDE)
    return fine


def _full_strength(fine: np.ndarray) -> np.ndarray:
    """Stretch ink that shrinking made faint (a thin line averaged with paper) back to 1."""
    strength = float(np.percentile(fine[fine > 0.05], 95)) if (fine > 0.05).any() else 1.0
    return np.clip(fine / max(strength, 1e-3), 0.0, 1.0) if strength < 0.95 else fine


def _grey_morphology(image: np.ndarray, radius: float, thicken: bool) -> np.ndarray:
    """Grey dilation (max) or erosion (min) with a disc of ``radius`` pixels.

    A fractional radius blends the results for the two nearest whole radii,
    so the stroke width changes smoothly with ``radius``.
    """
    whole = int(np.floor(radius))
    fraction = radius - whole
    inner = _disc_filter(image, whole, thicken)
    if fraction < 0.05:
        return inner
    return inner * (1 - fraction) + _disc_filter(image, whole + 1, thicken) * fraction


def _disc_filter(image: np.ndarray, reach: int, thicken: bool) -> np.ndarray:
    """Max (or min) over the disc of whole radius ``reach`` around each pixel (outside is 0)."""
    if reach < 1:
        return image
    padded = np.pad(image, reach)
    height, width = image.shape
    result = image.copy()
    combine = np.maximum if thicken else np.minimum
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            if (dy or dx) and dy * dy + dx * dx <= reach * reach:
                combine(result, padded[reach + dy:reach + dy + height, reach + dx:reach + dx + width], out=result)
    return result


def _resample_longer_side(image: np.ndarray, side: int) -> np.ndarray:
    """Resize so the longer side is ``side``, keeping the aspect ratio (box filter when shrinking)."""
    height, width = image.shape
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BICUBIC
    resized = Image.fromarray(np.ascontiguousarray(image, dtype=np.float32), "F").resize(size, resample)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def fit_to_box(cropped: np.ndarray, box: int = BOX_SIZE) -> np.ndarray:
    """Scale the ink so its longer side is ``box`` pixels (20 in MNIST), keeping the aspect ratio.

    Shrinking averages areas (a box filter), which is the anti-aliasing that
    gives MNIST its grey edges; the result is scaled so the strongest pixel is 1.
    """
    fitted = _resample_longer_side(cropped, box)
    peak = float(fitted.max())
    return fitted / peak if peak > 0 else fitted


def centre_by_mass(boxed: np.ndarray, field: int = FIELD_SIZE, centre: float = MNIST_CENTRE) -> np.ndarray:
    """Paste into a ``field`` x ``field`` image so the centre of mass lands on ``centre``.

    This is MNIST's last step: translate by whole pixels so the centre of mass
    is at the centre of the field (the MNIST test digits' centres of mass
    average (14.0, 14.0) in 0-based pixel coordinates).  The box is kept
    inside the field, so no ink is cut off.
    """
    height, width = boxed.shape
    mass = float(boxed.sum())
    if mass <= 0:
        raise ImageError("no ink found: the image is blank")
    rows, cols = np.indices(boxed.shape)
    top = int(np.clip(round(centre - float((rows * boxed).sum()) / mass), 0, field - height))
    left = int(np.clip(round(centre - float((cols * boxed).sum()) / mass), 0, field - width))
    result = np.zeros((field, field), dtype=np.float32)
    result[top:top + height, left:left + width] = boxed
    return result


# ---------------------------------------------------------------------------
# The whole pipeline


def find_ink(flattened: np.ndarray, dark_ink: bool | None = None) -> tuple[np.ndarray, bool]:
    """The clean ink map (H, W) in [0, 1] of a flattened picture, and whether the ink was dark.

    Paper surface, ink polarity (unless given), ink signal, denoising, soft
    threshold and speck removal, at the picture's own resolution.
    """
    flat = _flat_paper(flattened)
    if flat is not None:
        window, dark_ink, (top, left) = _ink_on_flat_paper(flattened, *flat, dark_ink)
        ink = np.zeros(flattened.shape[:2], dtype=np.float32)
        ink[top:top + window.shape[0], left:left + window.shape[1]] = window
        return ink, dark_ink
    paper, is_paper = fit_paper(flattened)
    residual = flattened - paper
    if dark_ink is None:
        dark_ink = ink_is_dark(residual)
    signal = denoise(ink_signal(residual, dark_ink))
    return keep_digit(threshold_ink(signal, paper_noise(signal, is_paper))), dark_ink


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
    height, width = same.shape
    rows = np.flatnonzero(~same.all(axis=1))
    if rows.size == 0:  # blank: let find_ink's steps say so, on the whole (tiny cost)
        rows, cols = np.array([0, height - 1]), np.array([0, width - 1])
    else:
        cols = np.flatnonzero(~same.all(axis=0))
    cell = max(1, -(-max(height, width) // grid))                    # keep_digit's cells
    step = 2 if height * width > 20000 else 1                        # paper_noise's sample
    align = cell * step // np.gcd(cell, step)
    top, left = max(0, rows[0] - 2) // align * align, max(0, cols[0] - 2) // align * align
    bottom, right = min(height, rows[-1] + 3), min(width, cols[-1] + 3)
    region = flattened[top:bottom, left:right]
    residual = region - colour
    is_paper = _channel_max(np.abs(residual)) <= MIN_PAPER_TOLERANCE
    if dark_ink is None:
        one_sided = float(residual.max()) <= 0 or float(residual.min()) >= 0
        dark_ink = ink_is_dark(residual if one_sided else flattened - colour)
    signal = _smooth(ink_signal(residual, dark_ink), blur=min(height, width) >= 64)
    sample = signal[::step, ::step][is_paper[::step, ::step]]
    outside = -(-height // step) * -(-width // step) - is_paper[::step, ::step].size
    paper = np.concatenate([sample, np.zeros(outside, dtype=signal.dtype)])
    noise = float(np.percentile(paper, 95)) if paper.size else 0.0
    return keep_digit(threshold_ink(signal, noise), cell=cell), dark_ink, (int(top), int(left))


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
    padded = np.pad(pixels, ((0, -height % factor), (0, -width % factor), (0, 0)), mode="edge")
    total = np.zeros((padded.shape[0] // factor, padded.shape[1] // factor, channels), np.float32)
    for dy in range(factor):
        for dx in range(factor):
            total += padded[dy::factor, dx::factor]
    return total / np.float32(factor * factor), factor


def refine(flattened: np.ndarray, small_ink: np.ndarray, factor: int, dark_ink: bool) -> np.ndarray:
    """The digit's ink at full resolution, when it was small on the detection copy.

    The region around the digit found on the small copy (plus a margin of
    paper) is cut from the full-size picture and its ink found again there,
    with the same polarity: a small digit on a big page keeps its detail.
    """
    top, bottom, left, right = ink_bounds(small_ink)
    margin = max(2, (max(bottom - top, right - left) + 3) // 4)
    height, width = flattened.shape[:2]
    region = flattened[max(0, (top - margin) * factor):min(height, (bottom + margin) * factor),
                       max(0, (left - margin) * factor):min(width, (right + margin) * factor)]
    ink, _ = find_ink(region, dark_ink)
    return crop_to_ink(ink)


def preprocess(image, invert: str | bool | None = "auto") -> np.ndarray:
    """A 28x28 float32 MNIST-style image (white ink on black, in [0, 1]) from a PIL image or an array.

    ``invert`` is "auto" (decide from the picture), "yes" (the picture is dark
    ink on a light background) or "no" (light ink on a dark background, like
    MNIST).  Raises ImageError when there is no usable digit.
    """
    return preprocess_with_notes(image, invert)[0]


def preprocess_with_notes(image, invert: str | bool | None = "auto") -> tuple[np.ndarray, list[str]]:
    """``preprocess``, and warnings about the picture that do not stop it being read
    (it seems to hold several digits side by side: only one answer is given)."""
    if invert not in _INVERT_CHOICES:
        raise ValueError(f"invert must be 'auto', 'yes' or 'no', got {invert!r}")
    if isinstance(image, Image.Image):
        image = shrink_early(_standard_mode(image))
    pixels, alpha = to_float_channels(image)
    flattened = composite(pixels, alpha)
    flat = _flat_paper(flattened) if max(flattened.shape[:2]) <= 2 * DETECT_SIDE else None
    if flat is not None:
        # A clean drawing has no noise for the detection copy to average away, and finding the
        # ink once at full size (on the window around it) is cheaper than finding it on the
        # copy and again at full size (refine).  The window holds all the ink.
        small, factor = flattened, 1
        ink, dark_ink = _find_ink_as_told(small, _INVERT_CHOICES[invert], flat)
    else:
        small, factor = shrink_for_detection(flattened)
        ink, dark_ink = _find_ink_as_told(small, _INVERT_CHOICES[invert])
    notes = []
    groups = digit_groups(ink)
    if groups > 1:
        notes.append(f"the picture seems to hold {groups} digits side by side; only one answer is given "
                     "(crop each digit into a picture of its own)")
    cropped = crop_to_ink(ink)
    if factor > 1 and max(cropped.shape) < FINE_SIDE:  # the full-size picture has detail the copy lost
        try:
            cropped = refine(flattened, ink, factor, dark_ink)
        except ImageError:
            pass  # the small copy's answer stands
    reshaped = normalise_strokes(require_digit_size(cropped))
    return centre_by_mass(fit_to_box(cropped if reshaped is None else reshaped)), notes


def _find_ink_as_told(small: np.ndarray, dark_ink: bool | None,
                      flat: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, bool]:
    """``find_ink``; when a forced polarity finds nothing but the other would, say so.
    With ``flat`` (``_flat_paper(small)``), the ink of the window around the digit only."""

    def find(dark: bool | None) -> tuple[np.ndarray, bool]:
        return find_ink(small, dark) if flat is None else _ink_on_flat_paper(small, *flat, dark)[:2]

    try:
        return find(dark_ink)
    except ImageError as nothing:
        if dark_ink is None:
            raise
        try:
            find(not dark_ink)
        except ImageError:
            raise nothing from None
        told, other = ("yes", "no") if dark_ink else ("no", "yes")
        looks = "light ink on a dark background" if dark_ink else "dark ink on a light background"
        raise ImageError(f"no ink found with --invert {told}, but the picture looks like {looks}: "
                         f"try --invert {other} (or auto)") from None


def digit_groups(ink: np.ndarray) -> int:
    """How many digit-sized groups of ink stand side by side (1 for a single digit).

    The columns holding ink are split where a gap of empty columns at least
    1/12 of the ink's height separates them (a broken stroke's gap is
    narrower); a group counts as a digit when its ink spans at least 60% of
    the height and carries at least 10% of the mass.  A "1" is narrow but
    tall, so it counts; a stray mark or an underline does not.
    """
    rows = np.flatnonzero(ink.any(axis=1))
    if rows.size == 0:
        return 0
    height = rows[-1] - rows[0] + 1
    used = ink.any(axis=0)
    cols = np.flatnonzero(used)
    min_gap = max(2, height // 12)
    breaks = np.flatnonzero(np.diff(cols) > min_gap)
    starts = np.concatenate([[cols[0]], cols[breaks + 1]])
    ends = np.concatenate([cols[breaks], [cols[-1]]]) + 1
    total = float(ink.sum())
    digits = 0
    for start, end in zip(starts, ends):
        part = ink[:, start:end]
        part_rows = np.flatnonzero(part.any(axis=1))
        if part_rows[-1] - part_rows[0] + 1 >= 0.6 * height and float(part.sum()) >= 0.1 * total:
            digits += 1
    return max(digits, 1)


def load_image(path: str | os.PathLike, invert: str | bool | None = "auto") -> np.ndarray:
    """The 784 network inputs (float32, white ink on black, in [0, 1]) for the picture at ``path``.

    Raises ImageError (one line, naming the file) for anything that cannot be used.
    """
    image = open_image(path)
    try:
        return preprocess(image, invert).reshape(FIELD_SIZE * FIELD_SIZE)
    except ImageError as e:
        raise ImageError(e.reason, path) from None
