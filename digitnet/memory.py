"""Keep freed memory for the next picture: glibc's malloc tuned for a process that reads pictures
one after another (a `serve` prediction worker, a `predict FOLDER` reader).

Each picture allocates a few arrays of a few hundred kilobytes and frees them.  With glibc's
defaults the heap's free top is handed back to the system after every picture and taken again
for the next, and every page taken again is a page fault: 190-250 faults a 280x280 canvas, a
third of its CPU time (1.8 ms instead of 1.25 in scripts/bench_serve.py's breakdown).  Setting
the thresholds keeps up to TRIM_THRESHOLD of freed memory in the process (and turns off glibc's
own adjustment of them, which is what let the trimming happen).  The cost: a process keeps what
it freed, about 4 MB more after canvases (peak unchanged), 6-7 MB more after a 4000x3000 photo
(idle and peak), and never more than TRIM_THRESHOLD.  It overrides MALLOC_TRIM_THRESHOLD_ and
the like, and does nothing under another allocator (jemalloc preloaded, macOS, musl).

No numpy: importing this costs nothing.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1  # glibc's malloc.h
M_MMAP_THRESHOLD = -3
TRIM_THRESHOLD = 64 << 20  # free memory kept at the heap's top before it is handed back
MMAP_THRESHOLD = 16 << 20  # blocks this big or more get pages of their own (freed at once)


def keep_freed_memory() -> bool:
    """Tune this process's malloc as the module says; True when it took effect (glibc only)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # this process's C library (find_library would run ldconfig)
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    mapped = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)  # both, even if one is refused (a 32-bit glibc's
    trimmed = mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)  # mmap threshold tops out at 512 KB)
    return bool(mapped) and bool(trimmed)
