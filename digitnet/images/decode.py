"""Reading a picture: refuse bombs from the header, decode it small, and make float pixels of it.

    open_image          refuse bombs and damaged headers (ImageError only), decode (shrunk early), first
                        frame, EXIF rotation; check_decoded_bytes: the memory a decoding would take
    to_float_channels   pixels as floats in [0, 1] plus the alpha channel, whatever the file's mode
    composite           flatten transparency onto the background that makes the ink visible

The result, (H, W, C) floats with C = 1 or 3, is what ``paper`` and ``ink`` look for the digit in.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageChops

from digitnet.images.errors import ImageError
from digitnet.images.page_png import MAX_SIDE as PAGE_PNG_MAX_SIDE, picture_of_levels, read_page_levels
from digitnet.images.paper import median

MAX_PIXELS = 64_000_000  # refused from the header, before any decoding (8000x8000 of grey)
# ... and so is a picture whose decoding would allocate more: 48 MP of colour (about 7000x7000; a
# JPEG counts at its reduced decoding scale), so any picture's decoding stays within the fuzz bound
# of +300 MB (a 60 MP RGB WebP the fuzzer sent cost more).
MAX_DECODED_BYTES = 192 * 2**20
WORK_SIDE = 1024         # large pictures are shrunk to about this longer side as they are decoded
MIN_IMAGE_SIDE = 8       # smaller pictures cannot hold a recognisable digit

_EXIF_ORIENTATION = 0x0112
_TRANSPOSE_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


# ---------------------------------------------------------------------------
# Decoding


def open_image(path: str | os.PathLike | BinaryIO, max_pixels: int = MAX_PIXELS,
               max_bytes: int = MAX_DECODED_BYTES) -> Image.Image:
    """Open and decode ``path`` (or a binary file object, e.g. an upload in ``io.BytesIO``),
    refusing decompression bombs before a single pixel is decoded.

    Raises ImageError, and nothing else, for any file (one line, naming the file).  Bounds:
    ``Image.open`` reads only the header, so the picture's pixels are counted there, before
    ``load()``: more than ``max_pixels`` is refused, and so is a picture whose decoding would
    allocate more than ``max_bytes`` (Pillow's storage for its mode -- 4 bytes a pixel for RGB,
    2 for 16-bit grey -- plus a full-size conversion where one is needed before shrinking: an
    8000x8000 16-bit PNG of 141 KB would have cost 1 GB).  JPEGs are decoded at a reduced DCT
    scale (``draft``) and counted at that scale; everything else is box-reduced right after
    decoding, before any conversion where ``Image.reduce`` takes the mode, so the later steps
    see fewer than 2 x ``WORK_SIDE`` pixels on the longer side.  Pillow's DecompressionBombError
    (raised by ``open`` itself beyond twice ``Image.MAX_IMAGE_PIXELS``; that global setting is
    left alone), its other errors on a damaged header (ValueError, struct.error, EOFError, ...)
    and its warnings become ImageError or are silenced.  Animated images give their first
    frame; EXIF rotation (phone photos) is applied.  An upload (``io.BytesIO``) that is a PNG as the
    page writes it is read by ``page_png`` instead of Pillow: the same pixels, in half the time.
    """
    return _opened(path, max_pixels, max_bytes, as_levels=False)


def open_picture(path: str | os.PathLike | BinaryIO, max_pixels: int = MAX_PIXELS,
                 max_bytes: int = MAX_DECODED_BYTES) -> Image.Image | np.ndarray:
    """``open_image``, except that an upload that is the page's own PNG comes back as its (H, W) uint8
    levels: what ``preprocess`` reads such a picture as (pipeline._ink_of_drawing, the same numbers),
    without making an Image of them and an array of the Image again (18 us of a canvas's 1.3 ms)."""
    return _opened(path, max_pixels, max_bytes, as_levels=True)


def _opened(path, max_pixels: int, max_bytes: int, as_levels: bool) -> Image.Image | np.ndarray:
    """``open_image``; with ``as_levels``, ``open_picture``."""
    if hasattr(path, "read"):
        source, path = path, None  # errors then carry no file name
        # An upload: the page's PNG, read at once, when the bounds asked for admit the largest it
        # reads (MAX_SIDE x MAX_SIDE grey pixels, a byte each); tighter bounds are Pillow's to enforce.
        if isinstance(source, io.BytesIO) and not source.closed and source.tell() == 0 \
                and min(max_pixels, max_bytes) >= PAGE_PNG_MAX_SIDE ** 2:
            with source.getbuffer() as data:
                levels = read_page_levels(data, MIN_IMAGE_SIDE)
            if levels is not None:
                source.seek(0, io.SEEK_END)  # read, as Pillow leaves it
                return levels if as_levels else picture_of_levels(levels)
    else:
        source = path = Path(path)
        if path.is_dir():
            raise ImageError("is a folder, not an image file", path)
    with warnings.catch_warnings():
        # A damaged EXIF block or an odd chunk makes Pillow warn; the CLI would print it.
        warnings.simplefilter("ignore")
        image = _open(source, path, max_pixels)
        flat = None
        try:
            try:
                check_size(image.size, max_pixels)
                _request_draft(image)
                check_decoded_bytes(image, max_bytes)
                orientation = _orientation(image)  # after the checks: a PNG's EXIF may follow its pixels
            except ImageError as e:
                raise ImageError(e.reason, path) from None
            except Exception as e:  # noqa: BLE001 -- a header Pillow opened but cannot describe
                raise ImageError(f"cannot decode the image ({_describe(e)})", path) from None
            try:
                image.load()
                flat = _decoded_small(image)
            except Exception as e:  # noqa: BLE001 -- Pillow's decoders raise many types on corrupt data
                raise ImageError(f"cannot decode the image ({_describe(e)})", path) from None
        finally:
            # load() has closed a single-frame file and the pixels are in memory: kept as they are
            # (a copy of a canvas cost 0.1 ms).  Else (a file still open, memory-mapped pixels)
            # the picture is copied and the file closed.
            still_open = getattr(image, "fp", None) is not None and getattr(image, "_exclusive_fp", False)
            if still_open or getattr(image, "map", None) is not None:
                if flat is image:
                    flat = image.copy()
                image.close()
    transpose = _TRANSPOSE_FOR_ORIENTATION.get(orientation)
    return flat.transpose(transpose) if transpose is not None else flat


def _open(source, path: Path | None, max_pixels: int) -> Image.Image:
    """``Image.open`` (the header only), every failure as ImageError."""
    try:
        return Image.open(source)
    except FileNotFoundError:
        raise ImageError("no such file", path) from None
    except Image.DecompressionBombError:
        raise ImageError(f"refused: the image has too many pixels (the limit is {max_pixels:,})", path) from None
    except Image.UnidentifiedImageError:
        raise ImageError("not an image (or not a format Pillow can read)", path) from None
    except OSError as e:
        raise ImageError(f"cannot read the file ({e.strerror or _describe(e)})", path) from None
    except Exception as e:  # noqa: BLE001 -- a damaged header: Pillow's plugins raise ValueError, EOFError, ...
        raise ImageError(f"not an image, or a damaged one ({_describe(e)})", path) from None


# Bytes a pixel in Pillow's storage (every other mode: 4), and the modes Image.reduce takes.
_STORED_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
_REDUCIBLE = {"L", "LA", "RGB", "RGBA", "F", "I"}


def check_decoded_bytes(image: Image.Image, max_bytes: int = MAX_DECODED_BYTES) -> None:
    """Refuse a picture whose decoding would allocate more than ``max_bytes`` (see open_image)."""
    width, height = image.size
    mode = image.mode
    per_pixel = _STORED_BYTES.get(mode, 4)
    if _shrinks_first(image) != mode and max(width, height) // WORK_SIDE >= 2:
        per_pixel += 4  # converted at full size (a palette to RGB, 16-bit grey to 32-bit) before shrinking
    needed = width * height * per_pixel
    if needed > max_bytes:
        raise ImageError(f"refused: decoding {width}x{height} pixels ({mode}) would take "
                         f"{needed / 2**20:,.0f} MB (the limit is {max_bytes / 2**20:,.0f} MB); "
                         "save it smaller or as a JPEG")


def _shrinks_first(image: Image.Image) -> str | None:
    """The mode in which a big decoded picture can be box-reduced before any other conversion
    (16-bit grey as 32-bit integers), or None when it must be converted at full size first."""
    if "transparency" in image.info:
        return None
    if image.mode.startswith("I;16"):
        return "I"
    return image.mode if image.mode in _REDUCIBLE else None


def _decoded_small(image: Image.Image) -> Image.Image:
    """The decoded picture shrunk (``shrink_early``) and in one of ``_standard_mode``'s modes:
    reduced first where the mode allows (fewer pixels to convert), else converted first."""
    reducible = _shrinks_first(image)
    if reducible is None or max(image.size) // WORK_SIDE < 2:
        return shrink_early(_standard_mode(image))
    if reducible != image.mode:
        image = image.convert(reducible)
        reduced = shrink_early(image)
        return _integer_to_float(reduced, full_scale=65535.0)
    return _standard_mode(shrink_early(image))


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


# Where Pillow's getexif looks for the orientation of a PNG: its EXIF chunk, ImageMagick's hex text
# of one, and the XMP packet's tiff:Orientation.
_PNG_ORIENTATION_SOURCES = ("exif", "Raw profile type exif", "XML:com.adobe.xmp", "xmp")


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation tag (1 = upright) or 1 when there is none or it is unreadable.
    A PNG is decoded first (its EXIF chunk may follow its pixels, as getexif does); one with none
    of the chunks getexif reads is upright without building its Exif (0.05 ms of a canvas's 1.5)."""
    try:
        if image.format == "PNG":
            if "exif" not in image.info:
                image.load()
            if not any(source in image.info for source in _PNG_ORIENTATION_SOURCES):
                return 1
        return int(image.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 -- a broken EXIF block must not make the image unreadable
        return 1


def _request_draft(image: Image.Image) -> None:
    """Ask a JPEG decoder for the smallest 1/2, 1/4 or 1/8 scale that keeps 3/4 of WORK_SIDE on the
    longer side: the picture comes out 768-1535 pixels across, as shrink_early would leave it.
    (A 4000x3000 photo is decoded at 1000x750, not 2000x1500: 87 -> 32 ms for load_image.)"""
    longest = max(image.size)
    # Pillow opens a JPEG carrying a second (MPF) frame, as phone cameras write, as "MPO".
    if image.format in ("JPEG", "MPO") and longest > 2 * WORK_SIDE:
        scale = 0.75 * WORK_SIDE / longest
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


def _integer_to_float(image: Image.Image, full_scale: float | None = None) -> Image.Image:
    """16- and 32-bit greyscale as a float image in [0, 1] (``full_scale``: what 1 is; None:
    65535 for 16-bit, and for 32-bit 255 when no value exceeds it, else 65535)."""
    pixels = np.asarray(image, dtype=np.float32)
    if full_scale is None and image.mode.startswith("I;16"):
        full_scale = 65535.0
    elif full_scale is None:
        full_scale = 255.0 if pixels.size and pixels.max() <= 255 else 65535.0
    pixels /= np.float32(full_scale)
    return Image.fromarray(np.clip(pixels, 0.0, 1.0, out=pixels), "F")


def shrink_early(image: Image.Image, work_side: int = WORK_SIDE) -> Image.Image:
    """Box-reduce by an integer factor so that the longer side is near ``work_side``.

    Averaging blocks of pixels keeps the ink's mass (a thin line becomes a
    fainter line, not a gap), and every later step runs on far fewer pixels:
    this is what makes a 4000x3000 photo as quick as a scan.
    """
    factor = max(image.size) // work_side
    return image.reduce(factor) if factor >= 2 else image


# ---------------------------------------------------------------------------
# Float channels


def to_float_channels(image, kept: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Pixels as float32 in [0, 1], shape (H, W, C) with C = 1 or 3, and alpha (H, W) or None.

    Accepts a PIL image or a numpy array (H, W), (H, W, 1|2|3|4) of uint8,
    uint16, bool or floats in [0, 1].  Colour images whose three channels are
    equal are returned as one channel.  Alpha is None when fully opaque.  (``kept``: a PIL image
    has been through ``_kept_bands`` already.)
    """
    if isinstance(image, Image.Image):
        if image.mode in ("LA", "RGB", "RGBA") and not kept:
            image = _kept_bands(image)
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


def _kept_bands(image: Image.Image) -> Image.Image:
    """The bands of an LA, RGB or RGBA picture that ``_split_channels`` would keep, chosen in
    Pillow: an alpha band that is 255 everywhere is dropped, and three equal colour bands become
    one.  The same numbers, but only what is kept is copied out of Pillow (a canvas PNG: one band
    of four, 0.47 -> 0.18 ms)."""
    with_alpha = image.mode in ("LA", "RGBA")
    opaque = with_alpha and image.getchannel(image.mode[-1]).getextrema()[0] == 255
    first = image.getchannel(0)
    grey = image.mode != "LA" and all(ImageChops.difference(first, image.getchannel(band)).getbbox() is None
                                      for band in (1, 2))
    if not (opaque or grey):
        return image
    if grey:
        return first if opaque or not with_alpha else Image.merge("LA", (first, image.getchannel("A")))
    return image.convert("RGB") if image.mode == "RGBA" else first  # opaque: the alpha band dropped


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
    if pixels.shape[2] == 3 and _grey(pixels):
        pixels = pixels[:, :, :1]
    check_size((pixels.shape[1], pixels.shape[0]))
    return pixels, alpha


def _grey(pixels: np.ndarray) -> bool:
    """Whether the three channels of (H, W, 3) pixels are equal everywhere: a few rows first, so
    that a colour photo is told in microseconds, not in two passes over it."""
    sample = pixels[::max(1, pixels.shape[0] // 8)]
    if not (np.array_equal(sample[:, :, 0], sample[:, :, 1]) and np.array_equal(sample[:, :, 1], sample[:, :, 2])):
        return False
    return np.array_equal(pixels[:, :, 0], pixels[:, :, 1]) and np.array_equal(pixels[:, :, 1], pixels[:, :, 2])


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
    if array.dtype == np.uint8:  # one pass: converted as divided (the same numbers as astype, then /)
        return np.divide(array, np.float32(255), dtype=np.float32)
    if array.dtype == np.uint16:
        return np.divide(array, np.float32(65535), dtype=np.float32)
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
# Transparency


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
        background = median(pixels[opaque], axis=0)
    else:
        total = float(alpha.sum())
        mean_opaque = (pixels * weights).sum(axis=(0, 1)) / total if total > 0 else np.zeros(pixels.shape[2])
        background = np.full(pixels.shape[2], 1.0 if _luminance(mean_opaque) < 0.5 else 0.0)
    return (pixels * weights + background.astype(np.float32) * (1.0 - weights)).astype(np.float32)


def _luminance(colour: np.ndarray) -> float:
    colour = np.asarray(colour, dtype=np.float64).reshape(-1)
    return float(colour[0]) if colour.size == 1 else float(colour[:3] @ np.array([0.299, 0.587, 0.114]))
