"""How values are written for people: percentages, text made safe for an HTML page or a terminal.

The one definition of each, shared by the terminal (``percent(v)`` -> "-" when
a value is missing) and the pages (``percent(v, missing="—")``).  No numpy: the
CLI imports this before any command runs.
"""

from __future__ import annotations

import html


def percent(value, missing: str = "-") -> str:
    """A fraction as a percentage with two decimals (0.9522 -> "95.22%"); ``missing`` for None."""
    return missing if value is None else f"{value:.2%}"


def escape_html(value) -> str:
    """Any value as text safe in HTML text and in quoted attributes (None -> "")."""
    return html.escape("" if value is None else str(value), quote=True)


def printable(text: str) -> str:
    """``text`` with every character a terminal would act on (escape sequences, carriage returns,
    other control and format characters) written as its Python escape, so a crafted checkpoint's
    metadata cannot redraw or recolour the terminal that ``digitnet info`` prints it on.  Line breaks
    are kept: the callers' own text has them between blocks."""
    if text.replace("\n", "").isprintable():
        return text
    return "".join(ch if ch == "\n" or ch.isprintable() else ascii(ch)[1:-1] for ch in text)
