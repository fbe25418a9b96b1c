"""How many cores this process may run on: the default of `predict --jobs` and `sweep --jobs`.

No numpy, no click: the CLI reads it when its options are built.
"""

from __future__ import annotations

import os


def usable_cores() -> int:
    """The cores this process may use (its CPU affinity, where the system has one), at least 1."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
