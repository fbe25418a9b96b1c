"""Fuzz harness: ``page_png.read_page_png`` never raises, and whatever it reads, Pillow reads the same.

It returns None for anything that is not a PNG as the page writes it (Pillow's path then decides);
when it returns a picture, Pillow must decode the same bytes to the same mode, size and pixels.
Each input is tried as it is and with every chunk's CRC made right (``with_crcs_fixed``), so that
mutations reach the header's fields, the deflate stream and the rows' filters, not only the CRCs.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

from digitnet.images.decode import MIN_IMAGE_SIDE
from digitnet.images.page_png import read_page_png

EXPECTED = ()  # nothing may escape
LIBFUZZER_ARGS = ["-max_len=65536"]


def one_input(data: bytes) -> None:
    _check(data)
    fixed = with_crcs_fixed(data)
    if fixed != data:
        _check(fixed)


def with_crcs_fixed(data: bytes) -> bytes:
    """``data`` with the CRC of each whole chunk after the first 8 bytes recomputed (a partial last one kept)."""
    out, position = bytearray(data), 8
    while position + 12 <= len(data):
        length = struct.unpack_from(">I", data, position)[0]
        after = position + 12 + length
        if after > len(data):
            break
        struct.pack_into(">I", out, after - 4, zlib.crc32(data[position + 4:after - 4]))
        position = after
    return bytes(out)


def _check(data: bytes) -> None:
    picture = read_page_png(data, MIN_IMAGE_SIDE)
    if picture is None:
        return
    with Image.open(io.BytesIO(data)) as pillow:
        pillow.load()
        if pillow.mode != picture.mode or pillow.size != picture.size \
                or not np.array_equal(np.asarray(pillow), np.asarray(picture)):
            raise AssertionError(f"read {picture.mode} {picture.size}, Pillow {pillow.mode} {pillow.size}: "
                                 "the pixels differ")


if __name__ == "__main__":
    import sys

    from tests.fuzz.runner import main

    sys.exit(main(["page_png", *sys.argv[1:]]))
