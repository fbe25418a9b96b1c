"""The page's upload read without Pillow's PNG decoder: an 8-bit grey PNG whose rows are all unfiltered.

``static/png.js`` sends the pad as exactly such a file (IHDR, IDAT, IEND; every row with PNG filter
0, "none"; deflated by the browser).  Pillow inflates a PNG a row at a time and runs each row
through its unfilter and unpack steps: 0.1-0.2 ms of a 280x280 canvas's 1.5.  Here the rows are
inflated in one call (zlib-ng, which Pillow's own wheels link) and used in place.

``read_page_png`` promises: it never raises, and it returns either None (the file is anything else:
colour, another bit depth, interlaced, filtered rows, any other chunk, a bad CRC, a damaged or
short or long deflate stream, bytes after IEND, a longer side outside ``min_side``..``MAX_SIDE``) or the
picture Pillow decodes from the same bytes, pixel for pixel.  None leaves the file to
``decode.open_image``'s Pillow path, whose answer (or error) stands.  Bounds: only the chunks' bytes
are held, the inflated rows are at most MAX_SIDE x (MAX_SIDE + 1) bytes and inflating stops there
(a deflate bomb costs one buffer of that size), and no more than ``height x (width + 1)`` bytes are
ever asked of the inflater.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
from PIL import Image

try:  # zlib-ng inflates these rows in half zlib's time (69 vs 120 us for an upscaled MNIST canvas)
    from zlib_ng import zlib_ng as inflating
except ImportError:  # pragma: no cover -- a platform without its wheel: the same bytes, a little slower
    inflating = zlib

from digitnet.images.ink import DETECT_SIDE

SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_SIDE = 2 * DETECT_SIDE  # the largest picture read on its levels (pipeline._ink_of_drawing)
_IHDR_GREY8 = (8, 0, 0, 0, 0)  # bit depth 8, colour type 0 (grey), deflate, filter method 0, not interlaced
_FIRST_ROWS = 8  # inflated first, so that a PNG with filtered rows is given back after a few rows


def read_page_png(data: bytes | memoryview, min_side: int) -> Image.Image | None:
    """The 8-bit grey picture (mode "L") of ``data`` when it is a PNG as the page writes it, with its
    longer side from ``min_side`` (``decode.MIN_IMAGE_SIDE``: smaller pictures get open_image's refusal)
    to MAX_SIDE, else None (see the module's docstring for what is accepted and what is promised)."""
    levels = read_page_levels(data, min_side)
    return None if levels is None else picture_of_levels(levels)


def read_page_levels(data: bytes | memoryview, min_side: int) -> np.ndarray | None:
    """``read_page_png``'s pixels as they come, (height, width) uint8 levels, C-contiguous, or None."""
    try:
        found = _chunks(memoryview(data), min_side)
        if found is None:
            return None
        width, height, deflated = found
        rows = _inflated_rows(deflated, width, height)
    except (ValueError, struct.error, zlib.error, inflating.error, MemoryError):
        return None
    if rows is None:
        return None
    return np.ascontiguousarray(rows[:, 1:])  # the filter bytes left out


def picture_of_levels(levels: np.ndarray) -> Image.Image:
    """The mode "L" picture of (height, width) C-contiguous uint8 ``levels``, on their memory (read-only)."""
    height, width = levels.shape
    return Image.frombuffer("L", (width, height), levels, "raw", "L", 0, 1)


def _chunks(data: memoryview, min_side: int) -> tuple[int, int, bytes] | None:
    """(width, height, the IDAT chunks' bytes joined) when ``data`` is a signature, IHDR of an 8-bit grey
    picture within the sides, IDAT chunks and IEND, each chunk's CRC right, and nothing else; else None."""
    if bytes(data[:8]) != SIGNATURE:
        return None
    position, end = 8, len(data)
    size, deflated = None, bytearray()  # the bodies' bytes, not a view each (80,000 empty chunks: 1 MB)
    while True:
        if position + 12 > end:
            return None
        length, kind = struct.unpack_from(">I4s", data, position)
        after = position + 12 + length
        if after > end:
            return None
        body = data[position + 8:after - 4]
        if zlib.crc32(body, zlib.crc32(kind)) != struct.unpack_from(">I", data, after - 4)[0]:
            return None
        if size is None:
            if kind != b"IHDR" or length != 13:
                return None
            width, height, *rest = struct.unpack(">IIBBBBB", body)
            if tuple(rest) != _IHDR_GREY8 or not min_side <= max(width, height) <= MAX_SIDE or min(width, height) < 1:
                return None
            size = width, height
        elif kind == b"IDAT":
            deflated += body
        elif kind == b"IEND" and length == 0 and deflated and after == end:
            return (*size, bytes(deflated))
        else:
            return None
        position = after


def _inflated_rows(deflated: bytes, width: int, height: int) -> np.ndarray | None:
    """The (height, width + 1) rows, each its filter byte and its pixels, when the stream holds exactly
    that many bytes, ends there (its checksum read) and every filter byte is 0; else None."""
    stride = width + 1
    inflater = inflating.decompressobj()
    first = inflater.decompress(deflated, stride * min(_FIRST_ROWS, height))
    if len(first) != stride * min(_FIRST_ROWS, height) or any(first[::stride]):
        return None
    rest = inflater.decompress(inflater.unconsumed_tail, stride * (height - _FIRST_ROWS)) \
        if height > _FIRST_ROWS else b""
    if len(rest) != stride * max(0, height - _FIRST_ROWS):
        return None
    # The stream must end here: nothing more comes out, its end and checksum are read, nothing follows.
    if inflater.decompress(inflater.unconsumed_tail, 1) or not inflater.eof or inflater.unused_data:
        return None
    rows = np.frombuffer(first + rest, np.uint8).reshape(height, stride)
    return None if rows[:, 0].any() else rows
