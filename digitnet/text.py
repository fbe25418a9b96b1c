"""How values are written for people: percentages, and text made safe for an HTML page.

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
