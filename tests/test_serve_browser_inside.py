"""The page's "Inside the network" panel in a real browser (headless Chromium driven by Selenium, as
test_serve_browser.py): units switched off answer as POST /api/explain does with them off, the saliency
overlay, teaching a taught copy, keeping it as a model, and a network of two hidden layers.

Skipped (with the reason) when Debian's chromium or chromium-driver is missing.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import requests

from digitnet import checkpoint
from digitnet.network import Network
from digitnet.serve import api
from digitnet.serve.models import Models
from test_serve_api import Running
from test_serve_browser import (CHROMEDRIVER, CHROMIUM, FOUR, SEVEN, draw, driver, exported_png,  # noqa: F401
                                requested_urls, severe_console_entries, shown_digit, wait)

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="headless Chromium is not installed (/usr/bin/chromium, /usr/bin/chromedriver)")

from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.actions import interaction  # noqa: E402
from selenium.webdriver.common.actions.action_builder import ActionBuilder  # noqa: E402
from selenium.webdriver.common.actions.pointer_input import PointerInput  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A 784-100-10 model (wide enough that the panel shows the units that matter) and a 784-16-12-10 one
    beside it in the working directory; taught copies are kept in an empty runs folder."""
    from helpers import write_mnist

    work = tmp_path_factory.mktemp("work")
    data_dir = write_mnist(tmp_path_factory.mktemp("data") / "mnist")
    meta = {"epochs_completed": 3, "hyperparameters": {"learning_rate": 3.0, "batch_size": 10, "epochs": 3}}
    path = checkpoint.save(work / "model.npz", Network([784, 100, 10], cost="cross-entropy",
                                                       rng=np.random.default_rng(5)), meta)
    checkpoint.save(work / "deep.npz", Network([784, 16, 12, 10], rng=np.random.default_rng(6)), meta)
    recogniser = api.Recogniser(checkpoint.load(path), str(path), "best", data_dir)
    running = Running(recogniser, models=Models(recogniser, runs_dir=work / "runs", workdir=work, data_dir=data_dir))
    running.work = work
    yield running
    running.stop()


def open_page(driver, server, width):
    driver.set_window_size(width, 900)
    driver.get_log("performance")
    driver.get(server.url + "/")
    wait(driver, lambda d: d.find_element(By.ID, "m-file").text == "model.npz")
    driver.get_log("browser")


def open_panel(driver):
    button = driver.find_element(By.ID, "inside-open")
    driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", button)
    button.click()
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#hidden-layers .unit"))


def explain(server, png, **query) -> dict:
    answer = requests.post(server.url + "/api/explain", params=query, data=png, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def panel_outputs(driver) -> list[float]:
    return [float(v) for v in driver.execute_script(
        "return [...document.querySelectorAll('#outputs .output')].map(b => b.dataset.value)")]


def card_bars(driver) -> list[float]:
    return driver.execute_script(
        "return [...document.querySelectorAll('#bars .bar-fill')].map(e => parseFloat(e.style.height))")


def tiles(driver, layer=None):
    selector = "#hidden-layers .unit" + (f'[data-layer="{layer}"]' if layer else "")
    return driver.find_elements(By.CSS_SELECTOR, selector)


def off_units(driver) -> int:
    return len(driver.find_elements(By.CSS_SELECTOR, "#off-list .chip"))


def shows(driver, server, expected_off: str) -> dict:
    """Wait until the answer card and the panel show /api/explain's answer for the pad with ``expected_off``."""
    def same(d):
        expected = explain(server, exported_png(d), off=expected_off)
        outputs = panel_outputs(d)
        if shown_digit(d) != str(expected["answer"]) or len(outputs) != 10:
            return False
        return expected if np.allclose(outputs, expected["outputs"], rtol=0, atol=1e-12) else False

    return wait(driver, same)


def touch_tap(driver, element):
    builder = ActionBuilder(driver, mouse=PointerInput(interaction.POINTER_TOUCH, "finger"), duration=10)
    builder.pointer_action.move_to(element).pointer_down().pointer_up()
    builder.perform()


# ---------------------------------------------------------------------------


def test_switch_a_unit_off_see_the_saliency_teach_twice_and_keep(driver, server):
    open_page(driver, server, 1280)
    model_hash = hashlib.sha256((server.work / "model.npz").read_bytes()).hexdigest()
    draw(driver, FOUR)
    wait(driver, lambda d: shown_digit(d) != "?")
    open_panel(driver)
    plain = shows(driver, server, "")
    assert "altered" not in driver.find_element(By.ID, "answer-card").get_attribute("class")
    # 100 units: the 12 strongest for the answer and the 4 strongest against, said so.
    assert len(tiles(driver)) == 16
    assert "showing 16 of 100 units" in driver.find_element(By.CSS_SELECTOR, "#hidden-layers figcaption").text
    assert [int(t.get_attribute("data-unit")) for t in tiles(driver)[:12]] == [c["unit"] for c in plain["contributions"][:12]]

    # Hovering shows a unit; clicking the unit shown switches it off: the card answers as /api/explain does.
    first = tiles(driver)[0]
    unit = int(first.get_attribute("data-unit"))
    ActionChains(driver).move_to_element(first).perform()
    wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, "#unit-detail .detail-title").text.startswith(f"Unit {unit} "))
    assert driver.find_element(By.CSS_SELECTOR, "#unit-detail canvas.detail-picture").is_displayed()
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#unit-detail .ten-bars li"))   # to each digit
    first.click()
    wait(driver, lambda d: off_units(d) == 1)
    off = shows(driver, server, f"1:{unit}")
    assert off["outputs"] != plain["outputs"]
    assert "altered" in driver.find_element(By.ID, "answer-card").get_attribute("class")
    np.testing.assert_allclose(card_bars(driver), np.clip(off["outputs"], 0, 1) * 100, atol=1e-3)  # CSS keeps 6 digits

    # The keyboard: a unit is a button; focus one, Enter switches it off.
    second = tiles(driver)[1]
    assert second.tag_name == "button"
    other = int(second.get_attribute("data-unit"))
    second.send_keys(Keys.ENTER)
    wait(driver, lambda d: off_units(d) == 2)
    shows(driver, server, f"1:{unit},1:{other}")
    assert driver.switch_to.active_element.get_attribute("data-unit") == str(other)   # focus kept across the redraw

    # Reset: every unit on, the card back to /api/predict's answer.
    driver.find_element(By.ID, "inside-reset").click()
    wait(driver, lambda d: off_units(d) == 0 and "altered" not in d.find_element(By.ID, "answer-card").get_attribute("class"))
    shows(driver, server, "")

    # The saliency: red where the ink pushed towards the digit explained, blue where against.
    driver.find_element(By.ID, "saliency").click()
    assert driver.find_element(By.ID, "saliency-legend").is_displayed()
    assert driver.find_element(By.ID, "saliency-towards").text == f"pushed towards {plain['answer']}"
    pixels = np.array(driver.execute_script(
        "return Array.from(document.getElementById('inside-input').getContext('2d').getImageData(0, 0, 28, 28).data)"))
    rgb = pixels.reshape(784, 4)[:, :3].astype(int)
    pushed = np.array(plain["saliency"]) * np.array(plain["input"]).ravel()
    assert rgb[np.argmax(pushed), 0] > rgb[np.argmax(pushed), 2]
    assert rgb[np.argmin(pushed), 2] > rgb[np.argmin(pushed), 0]

    # Teach a label twice: its output rises, each step's numbers are shown, the card shows the taught copy.
    label = (plain["answer"] + 1) % 10
    before = plain["outputs"][label]
    driver.find_element(By.CSS_SELECTOR, f'#teach-picker button[data-digit="{label}"]').click()
    for step in (1, 2):
        driver.find_element(By.ID, "teach-go").click()
        wait(driver, lambda d: d.find_element(By.ID, "teach-change").text.startswith(f"Step {step} "))
    assert len(driver.find_elements(By.CSS_SELECTOR, "#bp-rows tr")) == 2
    assert len(driver.find_elements(By.CSS_SELECTOR, "#bp1-bars .ten-bars li")) == 10
    wait(driver, lambda d: "taught copy, 2 steps" in d.find_element(By.ID, "confidence").text)
    assert panel_outputs(driver)[label] > before
    assert "taught copy" in driver.find_element(By.ID, "inside-status").text

    # Keep it: a new model in runs/, listed; the served model's file is unchanged.
    driver.find_element(By.ID, "teach-keep").click()
    wait(driver, lambda d: "taught-model-1.npz" in d.find_element(By.ID, "teach-saved").text)
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, 'li.model[data-id="runs/taught-model-1.npz"]'))
    assert (server.work / "runs" / "taught-model-1.npz").is_file()
    assert hashlib.sha256((server.work / "model.npz").read_bytes()).hexdigest() == model_hash

    # Forget it: the served model's answer again.
    driver.find_element(By.ID, "teach-forget").click()
    wait(driver, lambda d: "altered" not in d.find_element(By.ID, "answer-card").get_attribute("class"))
    shows(driver, server, "")
    assert server.served.inside.sessions() == []

    assert severe_console_entries(driver) == []
    outside = [url for url in requested_urls(driver)
               if not url.startswith(server.url + "/") and not url.startswith(("data:", "blob:"))]
    assert outside == []


def test_phone_width_and_touch(driver, server):
    open_page(driver, server, 390)
    draw(driver, SEVEN, interaction.POINTER_TOUCH)
    wait(driver, lambda d: shown_digit(d) != "?")
    open_panel(driver)
    shows(driver, server, "")
    tile = tiles(driver)[0]
    unit = tile.get_attribute("data-unit")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", tile)
    def detail_shows_it(d):
        return d.find_element(By.CSS_SELECTOR, "#unit-detail .detail-title").text.startswith(f"Unit {unit} ")

    touch_tap(driver, tile)          # the first tap shows it...
    try:
        wait(driver, detail_shows_it, seconds=3)
    except AssertionError:  # on a loaded machine Chromium's gesture detector can drop a synthetic tap: once more
        assert off_units(driver) == 0
        touch_tap(driver, tiles(driver)[0])
        wait(driver, detail_shows_it)
    assert off_units(driver) == 0
    touch_tap(driver, tiles(driver)[0])   # ...the second switches it off
    wait(driver, lambda d: off_units(d) == 1)
    shows(driver, server, f"1:{unit}")
    inner = driver.execute_script("return document.documentElement.clientWidth")
    assert driver.execute_script("return document.documentElement.scrollWidth") <= inner   # no sideways scrolling
    for element in tiles(driver) + driver.find_elements(By.CSS_SELECTOR, "#outputs .output, #teach-picker button"):
        rect = element.rect
        assert rect["x"] >= 0 and rect["x"] + rect["width"] <= inner
    driver.find_element(By.ID, "inside-reset").click()
    wait(driver, lambda d: off_units(d) == 0)
    assert severe_console_entries(driver) == []


def test_two_hidden_layers_after_switching_models(driver, server):
    open_page(driver, server, 1280)
    draw(driver, FOUR)
    wait(driver, lambda d: shown_digit(d) != "?")
    open_panel(driver)
    unit = tiles(driver)[0].get_attribute("data-unit")
    tiles(driver)[0].click()
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, f'#hidden-layers .unit.off[data-unit="{unit}"]'))
    ActionChains(driver).move_to_element(tiles(driver)[0]).perform()   # a unit on: its contribution to each digit
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#unit-detail .ten-bars li"))   # asked: nothing in flight
    # Serve the other model: the units switched off belong to the old one and are all on again.
    wait(driver, lambda d: d.execute_script(
        "const b = document.querySelector('li.model[data-id=\"deep.npz\"] button.use'); if (b) b.click(); return !!b;"))
    wait(driver, lambda d: d.find_element(By.ID, "m-file").text == "deep.npz")
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#hidden-layers figure")) == 2 and off_units(d) == 0)
    assert len(tiles(driver, 1)) == 16 and len(tiles(driver, 2)) == 12
    shows(driver, server, "")
    first = tiles(driver, 1)[0]
    unit = first.get_attribute("data-unit")
    first.click()
    wait(driver, lambda d: off_units(d) == 1)
    shows(driver, server, f"1:{unit}")
    assert "through the next layer" in driver.find_element(By.ID, "unit-detail").text
    requests.post(server.url + "/api/models/select", json={"id": "model.npz"}, timeout=10)
    assert severe_console_entries(driver) == []
