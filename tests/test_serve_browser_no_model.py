"""Without a model, drawing tells the user what to click on the page (the API keeps its own words)."""

from __future__ import annotations

import pytest
import requests

from test_serve_browser import SEVEN, draw, driver, pytestmark, wait  # noqa: F401
from test_serve_api import drawing
from selenium.webdriver.common.by import By  # noqa: E402

PAGE_WORDS = "No model yet: press Train under \u201cTrain a network\u201d below, or Use beside a model under \u201cModels here\u201d."


@pytest.fixture
def server(tmp_path):
    from helpers import write_mnist
    from test_serve_train import TrainingServer

    running = TrainingServer(tmp_path, write_mnist(tmp_path / "mnist"))
    yield running
    running.stop()


def test_drawing_without_a_model_names_the_pages_buttons_not_the_api(driver, server):
    driver.set_window_size(1200, 900)
    driver.get(server.url + "/")
    wait(driver, lambda d: d.find_element(By.ID, "m-file").text == "none yet")
    draw(driver, SEVEN)
    wait(driver, lambda d: d.find_element(By.ID, "error").is_displayed())
    shown = driver.find_element(By.ID, "error").text
    assert shown == PAGE_WORDS and "POST" not in shown and "/api/" not in shown
    assert driver.find_element(By.ID, "t-go-label").text == "Train"  # the button it names is there
    # An API client still gets the routes it can use.
    answer = requests.post(server.url + "/api/predict", data=drawing("four"), timeout=10)
    assert answer.status_code == 503 and "POST /api/train/start" in answer.json()["error"]
