"""The ``--augment`` language: text such as ``shift=2,elastic=34:4`` read into an ``Augmentation``.

Comma-separated terms, each ``name=value``

    shift=2            move each image by a whole number of pixels, up to 2 in x and in y
    elastic=34:4       Simard's elastic distortion, alpha:sigma (see ``augment``)
    affine=15:0.15     rotate by up to +-15 degrees, scale x and y and shear by up to +-15%

e.g. ``--augment shift=1,elastic=34:4``.  A bare number N means ``shift=N``
(the option's earlier form); ``0``, ``none`` or nothing means no distortion.

Pure text, no numpy: the settings (``config``) check an ``--augment`` value
with it, and ``augment`` applies what it describes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


class AugmentError(ValueError):
    """An --augment specification that cannot be understood."""


@dataclass(frozen=True)
class Augmentation:
    shift: int = 0
    elastic_alpha: float = 0.0
    elastic_sigma: float = 0.0
    affine_degrees: float = 0.0
    affine_scale: float = 0.0

    @property
    def resamples(self) -> bool:
        """Whether any term needs interpolation (shifts alone move whole pixels)."""
        return bool(self.elastic_alpha or self.affine_degrees or self.affine_scale)

    def __bool__(self) -> bool:
        return bool(self.shift) or self.resamples

    def __str__(self) -> str:
        terms = []
        if self.shift:
            terms.append(f"shift={self.shift}")
        if self.elastic_alpha:
            terms.append(f"elastic={self.elastic_alpha:g}:{self.elastic_sigma:g}")
        if self.affine_degrees or self.affine_scale:
            terms.append(f"affine={self.affine_degrees:g}:{self.affine_scale:g}")
        return ",".join(terms)


# The distortions that take two numbers: how to write them, then each number's field, name and range.
_PAIRS = {
    "elastic": ("ALPHA:SIGMA (e.g. elastic=34:4)",
                ("elastic_alpha", "elastic alpha", 0, 200, ""),
                ("elastic_sigma", "elastic sigma", 0.5, 20, " pixels")),
    "affine": ("DEGREES:SCALE (e.g. affine=15:0.15)",
               ("affine_degrees", "affine degrees", 0, 90, ""),
               ("affine_scale", "affine scale/shear", 0, 0.5, "")),
}


def parse(spec) -> Augmentation:
    """An ``Augmentation`` from ``"shift=2,elastic=34:4"`` (or an int, the old shift-only form)."""
    if spec is None or isinstance(spec, Augmentation):
        return spec or Augmentation()
    if isinstance(spec, int) and not isinstance(spec, bool):
        spec = str(spec)
    text = str(spec).strip()
    if text.lower() in ("", "0", "none", "off"):
        return Augmentation()
    values, seen = {}, set()
    for term in text.split(","):
        term = term.strip()
        if not term:
            continue
        if "=" not in term:
            if term.isdigit():
                term = f"shift={term}"
            else:
                raise AugmentError(f"{term!r} is not NAME=VALUE (e.g. shift=2, elastic=34:4, affine=15:0.15)")
        name, _, value = (part.strip() for part in term.partition("="))
        if name in seen:
            raise AugmentError(f"{name} is given twice")
        seen.add(name)
        try:
            numbers = [float(v) for v in value.split(":")]
        except ValueError:
            raise AugmentError(f"{term!r}: {value!r} is not a number (or numbers separated by ':')") from None
        if not all(math.isfinite(v) for v in numbers):
            raise AugmentError(f"{term!r}: values must be finite")
        if name == "shift":
            if len(numbers) != 1 or numbers[0] != int(numbers[0]) or not 0 <= numbers[0] <= 4:
                raise AugmentError(f"shift must be a whole number of pixels from 0 to 4, got {value!r}")
            values["shift"] = int(numbers[0])
        elif name in _PAIRS:
            usage, *bounds = _PAIRS[name]
            if len(numbers) != 2:
                raise AugmentError(f"{name} takes {usage}, got {value!r}")
            for number, (field, label, low, high, unit) in zip(numbers, bounds):
                if not low <= number <= high:
                    raise AugmentError(f"{label} must be between {low:g} and {high:g}{unit}, got {number:g}")
                values[field] = number
        else:
            raise AugmentError(f"unknown distortion {name!r}; choose from shift, elastic, affine")
    return Augmentation(**values)
