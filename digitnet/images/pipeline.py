"""The whole preprocessing, step after step: a picture in, MNIST's 28x28 input out.

``preprocess`` takes a PIL image or an array; ``load_image`` opens a file and returns
the 784 network inputs.  Anything wrong with the picture raises ``ImageError`` with a
one-line message.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from digitnet.images.decode import _kept_bands, _standard_mode, composite, open_image, shrink_early, to_float_channels
from digitnet.images.flat8 import flat_levels, ink_on_levels
from digitnet.images.errors import ImageError
from digitnet.images.ink import (DETECT_SIDE, _ink_on_flat_paper, crop_with_columns, digit_groups, find_ink_and_light,
                                 refine, require_digit_size, shrink_for_detection)
from digitnet.images.normalise import (FIELD_SIZE, FINE_SIDE, centre_by_mass, fit_to_box, float_picture,
                                      normalise_strokes)
from digitnet.images.paper import _flat_paper
from digitnet.images.verdict import Verdict, judge

_INVERT_CHOICES = {"auto": None, "yes": True, "no": False, None: None, True: True, False: False}


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
    seen, notes, _ = _preprocess(image, invert)
    return seen, notes


def preprocess_with_verdict(image, invert: str | bool | None = "auto") -> tuple[np.ndarray, list[str], Verdict]:
    """``preprocess_with_notes``, and whether the ink looks like a digit at all (``verdict.judge``:
    a dot, an X, a line lying down or a scribble does not)."""
    seen, notes, (cropped, shaped, box_share) = _preprocess(image, invert)
    return seen, notes, judge(cropped, shaped, seen, box_share)


def _preprocess(image, invert) -> tuple[np.ndarray, list[str], tuple[np.ndarray, np.ndarray, float]]:
    """The stages in order: the input, the notes, and what ``verdict.judge`` reads (the ink cropped
    to its box, the same with its strokes reshaped, the box's longer side over the picture's shorter)."""
    if invert not in _INVERT_CHOICES:
        raise ValueError(f"invert must be 'auto', 'yes' or 'no', got {invert!r}")
    if isinstance(image, Image.Image):
        image = shrink_early(_standard_mode(image))
        if image.mode in ("LA", "RGB", "RGBA"):
            image = _kept_bands(image)  # once: to_float_channels is told (kept=True)
    found = _ink_of_drawing(image, _INVERT_CHOICES[invert])
    if found is not None:  # a clean 8-bit drawing, read on its levels (flat8.py)
        (ink, dark_ink, small), factor, flattened, uneven = found, 1, None, False
    else:
        pixels, alpha = to_float_channels(image, kept=True)
        flattened = composite(pixels, alpha)
        flat = _flat_paper(flattened) if max(flattened.shape[:2]) <= 2 * DETECT_SIDE else None
        if flat is not None:
            # A clean drawing has no noise for the detection copy to average away, and finding the
            # ink once at full size (on the window around it) is cheaper than finding it on the
            # copy and again at full size (refine).  The window holds all the ink.
            small, factor = flattened, 1
            ink, dark_ink, uneven = _find_ink_as_told(small, _INVERT_CHOICES[invert], flat)
        else:
            small, factor = shrink_for_detection(flattened)
            ink, dark_ink, uneven = _find_ink_as_told(small, _INVERT_CHOICES[invert])
    notes = []
    cropped, used = crop_with_columns(ink)
    groups = digit_groups(cropped, used)  # the same count as on the whole map, on a fraction of its pixels
    if groups > 1:
        notes.append(f"the picture seems to hold {groups} digits side by side; only one answer is given "
                     "(crop each digit into a picture of its own)")
    box_share = max(cropped.shape) / min(small.shape[:2])
    if factor > 1 and max(cropped.shape) < FINE_SIDE:  # the full-size picture has detail the copy lost
        try:
            cropped = refine(flattened, ink, factor, dark_ink, uneven)
        except ImageError:
            pass  # the small copy's answer stands
    picture = float_picture(require_digit_size(cropped))  # resampled twice when the strokes are kept
    reshaped = normalise_strokes(cropped, picture=picture)
    shaped, picture = (cropped, picture) if reshaped is None else (reshaped, None)
    return centre_by_mass(fit_to_box(shaped, picture=picture)), notes, (cropped, shaped, box_share)


def _ink_of_drawing(image, dark_ink: bool | None) -> tuple[np.ndarray, bool, np.ndarray] | None:
    """The window's ink map and polarity of an opaque 8-bit grey picture on flat paper (a mode "L"
    Image, or its (H, W) uint8 levels as ``decode.open_picture`` gives the page's PNG), found on its
    levels (flat8.py: the same numbers as the float path), and the levels; None for any other
    picture, which takes the float path."""
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 2 or max(image.shape) > 2 * DETECT_SIDE:
            return None
        levels = image
    elif not isinstance(image, Image.Image) or image.mode != "L" or max(image.size) > 2 * DETECT_SIDE:
        return None
    else:
        levels = np.asarray(image)
    flat = flat_levels(levels)
    if flat is None:
        return None
    return (*_find_ink_as_told(levels, dark_ink, find=lambda dark: ink_on_levels(levels, *flat, dark)), levels)


def _find_ink_as_told(small: np.ndarray, dark_ink: bool | None,
                      flat: tuple[np.ndarray, np.ndarray] | None = None, find=None) -> tuple:
    """``find_ink_and_light``; when a forced polarity finds nothing but the other would, say so.
    With ``flat`` (``_flat_paper(small)``), the ink of the window around the digit only; with
    ``find`` (a function of the polarity), what it finds."""

    if find is None:
        def find(dark: bool | None) -> tuple[np.ndarray, bool, bool]:
            if flat is None:
                return find_ink_and_light(small, dark)
            return (*_ink_on_flat_paper(small, *flat, dark)[:2], False)

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


def load_image(path: str | os.PathLike, invert: str | bool | None = "auto") -> np.ndarray:
    """The 784 network inputs (float32, white ink on black, in [0, 1]) for the picture at ``path``.

    Raises ImageError (one line, naming the file) for anything that cannot be used.
    """
    image = open_image(path)
    try:
        return preprocess(image, invert).reshape(FIELD_SIZE * FIELD_SIZE)
    except ImageError as e:
        raise ImageError(e.reason, path) from None
