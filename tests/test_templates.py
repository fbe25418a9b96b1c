"""digitnet.templates: the pages' templates and their one stylesheet, shipped as package data and filled in."""

import configparser
from importlib import resources
from pathlib import Path

import pytest

from digitnet import templates

PAGES = ["report.html", "sweep.html"]


@pytest.mark.parametrize("name", PAGES + [templates.STYLESHEET])
def test_the_files_are_package_data(name):
    assert resources.files("digitnet.templates").joinpath(name).is_file()


def test_setup_cfg_ships_them():
    """The wheel gets what setup.cfg names: every file in the folder but the module itself must match."""
    config = configparser.ConfigParser()
    config.read(Path(__file__).parents[1] / "setup.cfg")
    patterns = [p.strip() for p in config["options.package_data"]["digitnet.templates"].split(",")]
    folder = resources.files("digitnet.templates")
    shipped = {f.name for f in folder.iterdir() if any(Path(f.name).match(p) for p in patterns)}
    assert set(PAGES) | {templates.STYLESHEET} <= shipped


@pytest.mark.parametrize("name", PAGES)
def test_every_page_has_the_viewport_tag_and_the_inlined_stylesheet(name):
    """Opened from disk on a phone: laid out at the phone's width, with the narrow-screen rules in the page."""
    placeholders = {"study", "notes", "summary", "figures", "trials", "evaluate", "model", "settings",
                    "split", "per_class", "confusion", "versions"}
    page = templates.fill(name, **dict.fromkeys(placeholders, ""))
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert templates.read(templates.STYLESHEET) in page and "@media (max-width: 600px)" in page
    assert "$" not in page and "<link" not in page  # nothing left unfilled, no file it could lose


def test_a_missing_value_is_an_error_not_a_blank():
    with pytest.raises(KeyError):
        templates.fill("sweep.html", study="s")


def test_the_shared_pieces_escape_what_they_are_given():
    evil = "<b>&</b>"
    assert templates.rows([(evil, "<i>cell</i>")]) == "<tr><th>&lt;b&gt;&amp;&lt;/b&gt;</th><td><i>cell</i></td></tr>"
    assert templates.notes([]) == ""
    assert templates.notes([evil]) == '<ul class="notes"><li>&lt;b&gt;&amp;&lt;/b&gt;</li></ul>'
    figure = templates.figures(["a.png"], {"a.png": evil})
    assert figure == ('<figure><a href="a.png"><img src="a.png" alt="&lt;b&gt;&amp;&lt;/b&gt;"></a>'
                      "<figcaption>&lt;b&gt;&amp;&lt;/b&gt;</figcaption></figure>")
