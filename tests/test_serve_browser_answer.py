"""The answer card and the training form's command in headless Chromium: a refused picture leaves nothing
of the previous answer, a dot is said not to look like a digit (greyed, one number), and "Same as:
digitnet train ..." follows the form as train_arguments writes it.  Skipped as test_serve_browser is."""

from __future__ import annotations

import re

import numpy as np
import pytest

from test_serve_browser import SEVEN, By, answer_settled, draw, set_field, severe_console_entries, wait
from test_serve_browser import driver, page, pytestmark, server, training_server  # noqa: F401 -- fixtures; skipped without Chromium

from digitnet.config import TrainConfig
from digitnet.serve.training import RECIPES, train_arguments

BROKEN = """
    const transfer = new DataTransfer();
    transfer.items.add(new File([new Uint8Array([1, 2, 3])], "broken.png", {type: "image/png"}));
    document.getElementById("pad-frame").dispatchEvent(
        new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true}));
"""
DOT = [[(0.5, 0.5), (0.51, 0.505)]]


def bar_heights(driver) -> list[float]:
    return driver.execute_script(
        "return [...document.querySelectorAll('#bars .bar-fill')].map(e => parseFloat(e.style.height) || 0)")


def seen_pixels(driver) -> np.ndarray:
    return np.array(driver.execute_script(
        "const d = document.getElementById('seen').getContext('2d').getImageData(0, 0, 28, 28).data;"
        "return Array.from({length: 784}, (_, i) => d[4 * i]);"))


def test_a_refused_picture_leaves_nothing_of_the_previous_answer(page, server):
    draw(page, SEVEN)
    answer_settled(page, server)
    assert max(bar_heights(page)) > 0 and seen_pixels(page).max() > 0
    page.execute_script(BROKEN)
    wait(page, lambda d: d.find_element(By.ID, "error").is_displayed())
    assert page.find_element(By.ID, "digit").text == "?"
    assert bar_heights(page) == [0] * 10
    assert page.find_elements(By.CSS_SELECTOR, "#bars li.winner") == []
    assert seen_pixels(page).max() == 0
    assert page.find_element(By.ID, "confidence").text == ""
    assert [e for e in severe_console_entries(page) if e["source"] != "network"] == []  # the 400 is expected


def test_a_dot_does_not_look_like_a_digit_and_the_card_shows_one_number(page, server):
    draw(page, DOT)
    answer = answer_settled(page, server)
    assert answer["looks_like_a_digit"] is False
    doubt = page.find_element(By.ID, "doubt")
    wait(page, lambda d: doubt.is_displayed())
    assert doubt.text == f"This does not look like a digit: {answer['doubt']}."
    card = page.find_element(By.ID, "answer-card")
    assert "doubtful" in card.get_attribute("class").split()
    grey = page.execute_script("return getComputedStyle(document.querySelector('.muted')).color")
    assert page.execute_script("return getComputedStyle(document.getElementById('digit')).color") == grey
    # One number: the confidence, as `digitnet predict` prints it; the bars have heights, no figures.
    numbers = re.findall(r"\d\.\d+", page.find_element(By.CSS_SELECTOR, "#answer-card .answer").text
                         + page.find_element(By.ID, "bars").text)
    assert numbers == [f"{answer['confidence']:.3f}"]
    assert "share of their sum" in card.text and "output activations" in card.text
    # A digit afterwards is not greyed.
    page.find_element(By.ID, "clear").click()
    draw(page, SEVEN)
    sevens = answer_settled(page, server)
    if sevens["looks_like_a_digit"]:
        wait(page, lambda d: "doubtful" not in card.get_attribute("class").split())
        assert not page.find_element(By.ID, "doubt").text.startswith("This does not look like a digit")


# ---------------------------------------------------------------------------
# The training form's command


@pytest.fixture
def training_page(driver, training_server):  # noqa: F811 -- the modules' fixtures
    """The page of a server that can train, its form filled in."""
    driver.set_window_size(1200, 900)
    driver.get(training_server.url + "/")
    wait(driver, lambda d: d.find_element(By.ID, "t-epochs").get_attribute("value") == "30")
    return driver


def command(driver) -> str:
    return driver.find_element(By.ID, "t-recipe-command").text


def recipe_shown(driver) -> str:
    return driver.execute_script("const s = document.getElementById('t-recipe');"
                                 "return s.options[s.selectedIndex].text")


def expected(**settings) -> str:
    return "Same as: " + " ".join(["digitnet train", *train_arguments(TrainConfig(**settings))])


def test_the_command_follows_the_form_and_the_recipe_says_custom(training_page):
    from selenium.webdriver.support.ui import Select

    driver = training_page
    assert command(driver) == "Same as: digitnet train" and recipe_shown(driver) == RECIPES[0]["name"]
    set_field(driver, "epochs", 5)
    wait(driver, lambda d: command(d) == expected(epochs=5))
    assert recipe_shown(driver) == "custom"
    set_field(driver, "learning_rate", "0.50")
    set_field(driver, "hidden_sizes", "100, 30")
    Select(driver.find_element(By.ID, "t-cost")).select_by_value("cross-entropy")
    wait(driver, lambda d: command(d) == expected(hidden_sizes=(100, 30), epochs=5, learning_rate=0.5,
                                                  cost="cross-entropy"))
    set_field(driver, "epochs", 30)  # back to the default: left out again
    wait(driver, lambda d: command(d) == expected(hidden_sizes=(100, 30), learning_rate=0.5, cost="cross-entropy"))
    # A recipe: its command as train_arguments writes it (the options in the settings' order).
    Select(driver.find_element(By.ID, "t-recipe")).select_by_index(1)
    settings = {k: tuple(v) if isinstance(v, list) else v for k, v in RECIPES[1]["settings"].items()}
    wait(driver, lambda d: command(d) == expected(**settings))
    assert recipe_shown(driver) == RECIPES[1]["name"]
    set_field(driver, "l2", 2)
    wait(driver, lambda d: command(d) == expected(**dict(settings, l2=2.0)) and recipe_shown(d) == "custom")
    set_field(driver, "l2", "1.0")  # the recipe's value again: the recipe's name again
    wait(driver, lambda d: recipe_shown(d) == RECIPES[1]["name"] and command(d) == expected(**settings))
    assert severe_console_entries(driver) == []
