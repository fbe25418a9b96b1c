"""The pages' HTML templates and their one stylesheet (package data), filled in; and the pieces both pages share.

    report.html  the page `digitnet report` writes (digitnet.report)
    sweep.html   the page a sweep writes (digitnet.sweep.page)
    page.css     the stylesheet of both, with the narrow-screen rules for the viewport tag

A user opens these pages from disk, without a server, and may copy the folder
anywhere: so ``fill`` inlines the stylesheet into each page (a ``<style>``
element) instead of linking a file that could be left behind.  The templates
are ``string.Template`` text: ``$name`` is filled in, ``$$`` is a dollar sign.
Values are filled in as HTML: the callers escape untrusted text
(``digitnet.text.escape_html``) before it gets here.
"""

from __future__ import annotations

import string
from importlib import resources

from digitnet.text import escape_html

STYLESHEET = "page.css"


def read(name: str) -> str:
    """The text of one file shipped in this folder."""
    return resources.files(__name__).joinpath(name).read_text("utf-8")


def fill(name: str, **values: str) -> str:
    """The page ``name`` with every ``$placeholder`` filled in and the stylesheet inlined as ``$style``."""
    return string.Template(read(name)).substitute(values, style=read(STYLESHEET))


def rows(pairs) -> str:
    """Table rows of (heading, cell) pairs; the heading is escaped, the cell is HTML already."""
    return "\n".join(f"<tr><th>{escape_html(k)}</th><td>{v}</td></tr>" for k, v in pairs)


def figures(names, captions: dict[str, str]) -> str:
    """Each picture linked to itself, its caption below it and as its alt text."""
    return "\n".join(
        f'<figure><a href="{escape_html(name)}"><img src="{escape_html(name)}" alt="{escape_html(captions[name])}">'
        f"</a><figcaption>{escape_html(captions[name])}</figcaption></figure>" for name in names)


def notes(lines) -> str:
    """The notes as a highlighted list, or nothing when there are none."""
    if not lines:
        return ""
    return '<ul class="notes">' + "".join(f"<li>{escape_html(n)}</li>" for n in lines) + "</ul>"
