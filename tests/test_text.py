"""digitnet.text: percentages and HTML escaping, written once for the terminal and the pages."""

import subprocess
import sys

import pytest

from digitnet.text import escape_html, percent


@pytest.mark.parametrize("value, written", [(0.9522, "95.22%"), (1, "100.00%"), (0.0, "0.00%"),
                                            (0.12345, "12.35%"), (-0.5, "-50.00%")])
def test_percent_has_two_decimals(value, written):
    assert percent(value) == written


def test_a_missing_value_is_a_dash_in_the_terminal_and_what_the_page_asks_for():
    assert percent(None) == "-"
    assert percent(None, missing="—") == "—"
    assert percent(0.5, missing="—") == "50.00%"


def test_escape_html_makes_any_value_safe_in_text_and_quoted_attributes():
    assert escape_html('<script>alert("x")</script>') == "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"
    assert escape_html("it's a & b") == "it&#x27;s a &amp; b"
    assert escape_html(None) == ""
    assert escape_html(3) == "3" and escape_html([1, "<"]) == "[1, &#x27;&lt;&#x27;]"


def test_imports_neither_numpy_nor_click():
    code = "import sys, digitnet.text; assert not {'numpy', 'click'} & set(sys.modules), sys.modules.keys()"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_printable_escapes_what_a_terminal_would_act_on_and_keeps_line_breaks():
    from digitnet.text import printable

    assert printable("95.22% (epoch 3)") == "95.22% (epoch 3)"
    assert printable("\x1b[2Jgone\r") == "\\x1b[2Jgone\\r"
    assert printable("\nepoch  cost") == "\nepoch  cost"
    assert printable("a\u202eb") == "a\\u202eb"  # right-to-left override
