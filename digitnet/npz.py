"""Reading an untrusted ``.npz``: the zip and each ``.npy`` header checked before numpy sees a byte.

``numpy.load`` trusts the archive: it inflates a member whole before looking at
it, allocates whatever shape a header declares, and lets zipfile, zlib and the
header parser raise what they like.  ``NpzReader`` opens the zip itself and
refuses, with one ``NpzError`` saying why, before reading:

- member names the caller does not accept (``names``), duplicates, encryption,
  zip features beyond stored and deflated members;
- stored members larger than the file together, deflated members that would
  inflate to more than ``INFLATE_FREE_BYTES`` + ``MAX_INFLATE_RATIO`` x the
  file's size together;

and at a member's ``.npy`` header (at most ~10 KB read, parsed by numpy's own
``read_array_header_1_0/2_0`` on a copy): no ``.npy`` magic, a malformed header,
pickled objects, a declared shape x itemsize that is not the member's size or
exceeds ``MAX_ARRAY_BYTES`` (``MAX_TEXT_BYTES`` for text).  Memory is then the
declared arrays, each allocated once and filled in 1 MiB pieces; time is linear
in the bytes inflated.  Used by ``checkpoint.load``.
"""

from __future__ import annotations

import io
import math
import os
import re
import struct
import tokenize
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib import format as npformat

MAX_ARRAY_BYTES = 1 << 30        # one array: 784-1000-10 in float64 is 6 MB; 1 GiB is far beyond any digitnet net
MAX_TEXT_BYTES = 64 << 20        # a text member as 4-byte unicode: a checkpoint's ~6 KB of history per epoch
INFLATE_FREE_BYTES = 8 << 20     # deflated members may inflate to this much in all without question ...
MAX_INFLATE_RATIO = 64           # ... and beyond it to 64x the file (float weights deflate to ~0.9x)
_NPY_PREFIX_MAX = 12 + 10_000    # magic, version, header length, and numpy's own max_header_size
_READ_CHUNK = 1 << 20
_ZIP_FLAGS_OK = 0x0002 | 0x0004 | 0x0008 | 0x0800   # deflate level hints, data descriptor, UTF-8 names
# What zipfile, zlib and the file system raise on a damaged or unsupported archive.
ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, zlib.error,
              EOFError, ValueError, OSError, struct.error, OverflowError)
# What numpy's .npy header parser (ast.literal_eval, tokenize, np.dtype) raises on a malformed header.
_HEADER_ERRORS = (ValueError, TypeError, SyntaxError, tokenize.TokenError, RecursionError, MemoryError,
                  OverflowError, KeyError, IndexError, AttributeError)
PICKLED = "contains pickled Python objects, which are refused (loading them could run code)"


class NpzError(Exception):
    """The file is not an ``.npz`` this reader accepts; the message says why (without the file's name)."""


def short(value, limit: int = 60) -> str:
    """repr(value) cut to ``limit`` characters: a message quotes the file, it does not reprint it."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def one_line(error: BaseException) -> str:
    """An exception's message on one line, at most 200 characters."""
    text = " ".join(str(error).split())
    return text if len(text) <= 200 else text[:197] + "..."


def _invalid(problem: str) -> NpzError:
    return NpzError(f"not a valid .npz checkpoint ({problem})")


@dataclass
class Member:
    info: zipfile.ZipInfo
    dtype: np.dtype
    shape: tuple[int, ...]
    fortran: bool
    header_bytes: int


class NpzReader:
    """The members of an ``.npz`` (``names``: without ``.npy``), checked as the module says."""

    def __init__(self, path: str | os.PathLike, names: re.Pattern):
        path = Path(path)
        with open(path, "rb") as f:
            head = f.read(6)
        if head == npformat.MAGIC_PREFIX:
            raise NpzError("not a digitnet checkpoint (a bare .npy array, not an .npz)")
        if head[:1] == b"\x80":  # pickle protocol 2+
            raise NpzError(PICKLED)
        if head[:4] not in (b"PK\x03\x04", b"PK\x05\x06"):  # what numpy.load takes for a zip
            raise _invalid("unrecognised file format")
        self.zip = zipfile.ZipFile(path)
        try:
            self.names = self._check_members(os.fstat(self.zip.fp.fileno()).st_size, names)
        except BaseException:
            self.zip.close()
            raise
        self._headers: dict[str, Member] = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.zip.close()

    def _check_members(self, on_disk: int, accepted: re.Pattern) -> set[str]:
        infos = self.zip.infolist()
        names = [info.filename for info in infos]
        if len(set(names)) != len(names):
            raise _invalid("a member name appears twice")
        inflated = stored = 0
        for info in infos:
            name = info.filename
            if not (name.endswith(".npy") and accepted.fullmatch(name[:-4])):
                raise NpzError(f"not a digitnet checkpoint (unexpected member {short(name)})")
            if info.flag_bits & 0x1:
                raise _invalid(f"member {name} is encrypted")
            if info.flag_bits & ~_ZIP_FLAGS_OK:
                raise _invalid(f"member {name} uses unsupported zip features (flags 0x{info.flag_bits:04x})")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise _invalid(f"member {name} uses compression method {info.compress_type}; "
                               "only stored and deflated are read")
            if info.compress_size > on_disk or (info.compress_type == zipfile.ZIP_STORED
                                                and info.file_size != info.compress_size):
                raise _invalid(f"member {name} declares {info.file_size:,} bytes in a {on_disk:,}-byte file")
            if info.compress_type == zipfile.ZIP_DEFLATED:
                inflated += info.file_size
            else:
                stored += info.file_size
        if stored > on_disk:  # members nested inside each other's data
            raise _invalid(f"its stored members declare {stored:,} bytes in a {on_disk:,}-byte file")
        if inflated > INFLATE_FREE_BYTES + MAX_INFLATE_RATIO * on_disk:
            raise _invalid(f"its deflated members would inflate to {inflated:,} bytes from a {on_disk:,}-byte "
                           f"file, more than {MAX_INFLATE_RATIO}x: refused unread")
        return {name[:-4] for name in names}

    def header(self, key: str) -> Member:
        """The member's dtype and shape from its ``.npy`` header, checked against its size."""
        if key not in self._headers:
            info = self.zip.getinfo(key + ".npy")
            with self.zip.open(info) as f:
                prefix = f.read(min(_NPY_PREFIX_MAX, info.file_size))
            self._headers[key] = _parse_header(key, info, prefix)
        return self._headers[key]

    def raw(self, key: str) -> np.ndarray:
        """The member's data bytes (exactly the size its header declared), as a writable uint8 array."""
        member = self.header(key)
        data = np.empty(member.info.file_size - member.header_bytes, np.uint8)
        view, filled = memoryview(data), 0
        with self.zip.open(member.info) as f:
            f.read(member.header_bytes)
            while filled < len(data):
                n = f.readinto(view[filled:filled + _READ_CHUNK])
                if not n:
                    raise _invalid(f"member {key!r} is truncated")
                filled += n
            f.read(1)  # the end of the member: zipfile checks its CRC there
        return data

    def array(self, key: str) -> np.ndarray:
        """The member as an array of its header's dtype and shape (check the dtype first: any is read)."""
        member = self.header(key)
        return self.raw(key).view(member.dtype).reshape(member.shape, order="F" if member.fortran else "C")

    def text(self, key: str) -> str:
        """A scalar unicode member, decoded strictly: a code point above U+10FFFF or a surrogate is an
        ``NpzError``, not a ``SystemError`` from numpy's ``str()``."""
        member = self.header(key)
        if member.dtype.kind != "U" or member.shape != ():
            raise NpzError(f"{key!r} must be a JSON string")
        codec = "utf-32-be" if member.dtype.str.startswith(">") else "utf-32-le"
        try:
            return self.raw(key).tobytes().decode(codec).rstrip("\x00")  # numpy pads with NULs
        except UnicodeDecodeError as e:
            raise NpzError(f"{key} is not valid unicode text ({e.reason})") from None


def _parse_header(key: str, info: zipfile.ZipInfo, prefix: bytes) -> Member:
    """numpy's parser on a copy of the header bytes, every error it can raise made an ``NpzError``."""
    stream = io.BytesIO(prefix)
    try:
        version = npformat.read_magic(stream)
        reader = {(1, 0): npformat.read_array_header_1_0, (2, 0): npformat.read_array_header_2_0}.get(version)
        if reader is None:
            raise ValueError(f".npy format version {version[0]}.{version[1]} (1.0 and 2.0 are read)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numpy's note about Python 2 headers is not for the user
            shape, fortran, dtype = reader(stream)
    except _HEADER_ERRORS as e:
        if prefix[:6] != npformat.MAGIC_PREFIX:
            raise _invalid(f"member {key!r} is not a .npy array (no .npy magic)") from None
        raise _invalid(f"member {key!r} has a malformed .npy header: {one_line(e)}") from None
    if dtype.hasobject:
        raise NpzError(PICKLED)
    if any(n < 0 for n in shape):
        raise _invalid(f"member {key!r} declares the negative shape {short(shape)}")
    nbytes = math.prod(shape) * dtype.itemsize  # Python ints: a declared 2^62 x 2^62 does not wrap
    if nbytes > (MAX_TEXT_BYTES if dtype.kind == "U" else MAX_ARRAY_BYTES):
        raise _invalid(f"member {key!r} declares {short(shape)} x {dtype.itemsize} = {nbytes:,} bytes, "
                       "more than this reader accepts")
    header_bytes = stream.tell()
    if header_bytes + nbytes != info.file_size:
        raise _invalid(f"member {key!r} declares {short(shape)} x {dtype.itemsize} = {nbytes:,} bytes of data "
                       f"but holds {info.file_size - header_bytes:,}")
    return Member(info, dtype, tuple(shape), fortran, header_bytes)
