"""The page at phone width (390 px) and on touch screens, in headless Chromium: selects whose every
choice fits, no keyboard hint where there is no keyboard, and each setting's help one tap away.

Headless Chromium has no pointer at all ((pointer: none)); touch emulation (CDP) gives it a phone's
(hover: none) and (pointer: coarse).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from test_serve_browser import driver, pytestmark, wait  # noqa: F401
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

# For every select on the page and every one of its choices: the width a select of the same style
# needs to show that choice whole (a copy sized to its content, arrow included) against its width.
CUT_CHOICES = """
const cut = [];
for (const select of document.querySelectorAll("select")) {
  if (!select.offsetParent) continue;
  for (const option of select.options) {
    const probe = select.cloneNode(false);
    probe.removeAttribute("id");
    probe.style.cssText = "position: absolute; visibility: hidden; width: auto; max-width: none; min-width: 0; flex: none";
    probe.append(new Option(option.text));
    select.parentNode.append(probe);
    const needed = probe.offsetWidth;
    probe.remove();
    if (needed > select.offsetWidth) cut.push([select.id, option.text, needed, select.offsetWidth]);
  }
}
return cut;
"""


@pytest.fixture
def server(tmp_path):
    from helpers import write_mnist
    from test_serve_train import TrainingServer

    running = TrainingServer(tmp_path, write_mnist(tmp_path / "mnist"))
    yield running
    running.stop()


def load(driver, server, width):
    driver.set_window_size(width, 900)
    driver.get(server.url + "/")
    wait(driver, lambda d: d.find_element(By.ID, "t-epochs").get_attribute("value") == "30")


@pytest.fixture
def touch(driver):
    driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5})
    yield driver
    driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": False})


@pytest.mark.parametrize("width", [390, 1280])
def test_every_choice_of_every_select_fits(driver, server, width, tmp_path):
    load(driver, server, width)
    selects = driver.execute_script("return [...document.querySelectorAll('select')].map((s) => s.id)")
    assert {"t-recipe", "t-cost", "t-init"} <= set(selects)
    assert driver.execute_script(CUT_CHOICES) == []
    inner = driver.execute_script("return document.documentElement.clientWidth")
    assert driver.execute_script("return document.documentElement.scrollWidth") <= inner
    shots = os.environ.get("DIGITNET_SCREENSHOT_DIR")
    driver.find_element(By.ID, "t-fields").location_once_scrolled_into_view
    driver.save_screenshot(str(Path(shots or tmp_path) / f"serve-form-{width}.png"))


def test_the_keyboard_hint_shows_with_a_keyboard_and_not_on_a_touch_screen(driver, server):
    hint = lambda: driver.find_element(By.CSS_SELECTOR, "#pad-card p.small").text  # noqa: E731 -- as shown
    load(driver, server, 390)
    assert hint() == "Or drop an image file on the pad. Escape clears, Ctrl+Z undoes."
    driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5})
    try:
        load(driver, server, 390)
        assert driver.execute_script("return matchMedia('(hover: none) and (pointer: coarse)').matches")
        assert hint() == "Or drop an image file on the pad."
    finally:
        driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": False})


def help_toggle(driver, name):
    return driver.find_element(By.CSS_SELECTOR, f'#t-fields .help-toggle[data-setting="{name}"]')


def test_each_settings_help_opens_with_a_tap_or_the_keyboard(touch, server):
    driver = touch
    load(driver, server, 390)
    toggles = driver.find_elements(By.CSS_SELECTOR, "#t-fields .help-toggle")
    fields = driver.find_elements(By.CSS_SELECTOR, "#t-fields .field")
    assert len(toggles) == len(fields) >= 9
    help_box = driver.find_element(By.ID, "t-help")
    assert not help_box.is_displayed()

    help_toggle(driver, "cost").click()  # a tap
    assert help_box.is_displayed() and help_box.text.startswith("Cost (--cost): ")
    assert help_toggle(driver, "cost").get_attribute("aria-expanded") == "true"
    help_toggle(driver, "epochs").click()  # another field's: that one's help instead
    assert help_box.text.startswith("Epochs (--epochs): ")
    assert help_toggle(driver, "cost").get_attribute("aria-expanded") == "false"
    help_toggle(driver, "epochs").click()  # again: closed
    assert not help_box.is_displayed()

    seed = help_toggle(driver, "seed")
    driver.execute_script("arguments[0].focus()", seed)
    seed.send_keys(Keys.ENTER)  # the keyboard
    assert help_box.is_displayed() and "--seed" in help_box.text
    seed.send_keys(" ")
    assert not help_box.is_displayed()
    box, inner = help_toggle(driver, "init").rect, driver.execute_script("return document.documentElement.clientWidth")
    assert box["x"] >= 0 and box["x"] + box["width"] <= inner
    # The caption still labels its input: a tap on it goes to the field.
    driver.find_element(By.CSS_SELECTOR, 'label[for="t-epochs"]').click()
    assert driver.switch_to.active_element.get_attribute("id") == "t-epochs"
