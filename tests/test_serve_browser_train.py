"""Watching a run on the page in headless Chromium: the curve from epoch 0 with the peeks marked as a
sample, the first-layer weight pictures of the latest epoch, Slow mode stopped promptly, and a guessing
run told in plain words.  Skipped as test_serve_browser is (it provides the browser)."""

from __future__ import annotations

import pytest

from test_serve_browser import By, set_field, severe_console_entries, state_text, wait
from test_serve_browser import driver, pytestmark  # noqa: F401 -- a fixture; skipped without Chromium


@pytest.fixture
def training_server(tmp_path):
    """16,000 training images: the page keeps `train`'s --validation-size of 10,000, so 6,000 train,
    and its --peek-every 5000 looks once an epoch at the first 1,000 validation images."""
    from helpers import write_mnist
    from test_serve_train import TrainingServer

    running = TrainingServer(tmp_path, write_mnist(tmp_path / "mnist", n_train=16_000))
    yield running
    running.stop()


def curve(driver, what) -> str:
    return driver.find_element(By.ID, "t-curve").get_attribute(f"data-{what}") or ""


def test_the_curve_starts_at_epoch_0_peeks_are_marked_and_the_weight_pictures_follow(driver, training_server):
    driver.set_window_size(1200, 900)
    driver.get(training_server.url + "/")
    wait(driver, lambda d: d.find_element(By.ID, "t-epochs").get_attribute("value") == "30")
    driver.get_log("browser")
    set_field(driver, "hidden_sizes", 12)
    set_field(driver, "epochs", 2)
    driver.find_element(By.ID, "t-go").click()
    wait(driver, lambda d: curve(d, "points") == "2" and state_text(d).startswith("Finished"), seconds=90)
    assert curve(driver, "untrained") == "1" and curve(driver, "peeks") == "2"
    assert driver.find_element(By.ID, "t-sample-key").is_displayed()
    assert "validation, 1,000-image sample" in driver.find_element(By.ID, "t-sample-key").text
    grid = driver.find_element(By.ID, "t-weights-grid")
    wait(driver, lambda d: grid.get_attribute("data-epoch") == "2")
    assert len(grid.find_elements(By.TAG_NAME, "canvas")) == 12 and grid.is_displayed()
    greys = driver.execute_script("""
        return [...arguments[0].querySelectorAll('canvas')].map((c) => {
          const data = c.getContext('2d').getImageData(0, 0, 28, 28).data;
          return new Set(Array.from({length: 784}, (_, i) => data[4 * i])).size; });""", grid)
    assert min(greys) > 10  # every tile is a picture of its unit's weights, not a blank square
    assert severe_console_entries(driver) == []


def test_slow_mode_stops_promptly_and_a_guessing_run_says_so(driver, training_server):
    driver.set_window_size(390, 900)
    driver.get(training_server.url + "/")
    wait(driver, lambda d: d.find_element(By.ID, "t-epochs").get_attribute("value") == "30")
    driver.get_log("browser")
    slow = driver.find_element(By.ID, "t-slow")
    assert "ms between mini-batches" in driver.find_element(By.ID, "t-slow-row").text
    slow.click()
    set_field(driver, "hidden_sizes", 12)
    driver.find_element(By.ID, "t-go").click()
    wait(driver, lambda d: d.find_element(By.ID, "t-go-label").text == "Stop", seconds=30)
    assert training_server.status()["settings"]["pause_ms"] > 0 and not slow.is_enabled()
    wait(driver, lambda d: training_server.status()["progress"] is not None, seconds=30)
    driver.find_element(By.ID, "t-go").click()
    wait(driver, lambda d: state_text(d).startswith("Stopped"), seconds=10)

    slow.click()  # off again
    set_field(driver, "epochs", 2)
    set_field(driver, "learning_rate", "0.0001")
    driver.find_element(By.ID, "t-go").click()
    wait(driver, lambda d: state_text(d).startswith(("Guessing", "Finished")), seconds=90)
    assert training_server.status()["settings"]["pause_ms"] == 0
    assert state_text(driver).startswith("Guessing")
    message = driver.find_element(By.ID, "t-message").text
    assert "not learning" in message and "guessing" in message and "--eta" in message
    assert severe_console_entries(driver) == []
