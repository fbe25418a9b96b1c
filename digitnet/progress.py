"""Progress bars that fit whatever terminal they are drawn in."""

from __future__ import annotations

import os
import sys

# Below this many columns the full tqdm line (bar, counts, elapsed, rate) does not fit: keep the essentials.
NARROW = 60
# A terminal that does not report its width (0 columns) gets a line this long: short enough not to wrap
# (a wrapped line cannot be redrawn in place, and would print one line per update).
UNKNOWN_WIDTH = 40
SHORT_FORMAT = "{desc} {percentage:3.0f}% {n_fmt}/{total_fmt}"


def terminal_columns(stream=None) -> int:
    """The width of the terminal ``stream`` (default stderr, where bars go) is shown in; 0 when unknown."""
    stream = sys.stderr if stream is None else stream
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 0


def progress_bar(**kwargs):
    """A tqdm bar (shown only in a terminal, as tqdm's ``disable=None`` does) that fits its terminal:
    the full line where there is room, a short one (description, percent, count) in narrow
    terminals and in terminals of unknown width."""
    from tqdm import tqdm

    columns = terminal_columns(kwargs.get("file"))
    if columns <= 0:
        kwargs.update(ncols=UNKNOWN_WIDTH, dynamic_ncols=False, bar_format=SHORT_FORMAT)
    elif columns < NARROW:
        kwargs.update(ncols=columns - 1, dynamic_ncols=False, bar_format=SHORT_FORMAT)
    else:
        kwargs.setdefault("dynamic_ncols", True)
    return tqdm(**kwargs)
