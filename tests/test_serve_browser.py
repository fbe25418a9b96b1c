"""The page in a real browser: headless Chromium driven by Selenium, one browser for the module.

Skipped (with the reason) when Debian's chromium or chromium-driver is missing; `.ci/run` installs
them, so CI always runs these.
"""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import requests

from digitnet import checkpoint
from digitnet.network import Network
from digitnet.serve import api
from test_serve_api import Running, drawing

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="headless Chromium is not installed (/usr/bin/chromium, /usr/bin/chromedriver): "
           "apt-get install chromium chromium-driver (.ci/run does this)")

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.actions import interaction  # noqa: E402
from selenium.webdriver.common.actions.action_builder import ActionBuilder  # noqa: E402
from selenium.webdriver.common.actions.pointer_input import PointerInput  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

# Strokes in pad units (0..1): a 4 in two strokes, a 7 in one.
FOUR = [[(0.58, 0.16), (0.42, 0.4), (0.26, 0.62), (0.76, 0.62)], [(0.62, 0.36), (0.62, 0.6), (0.62, 0.86)]]
SEVEN = [[(0.28, 0.2), (0.5, 0.2), (0.74, 0.2), (0.6, 0.5), (0.46, 0.84)]]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from helpers import write_mnist

    data_dir = write_mnist(tmp_path_factory.mktemp("data") / "mnist")
    path = checkpoint.save(tmp_path_factory.mktemp("model") / "model.npz",
                           Network([784, 20, 10], rng=np.random.default_rng(5)), {"epochs_completed": 3})
    running = Running(api.Recogniser(checkpoint.load(path), str(path), "best", data_dir))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def driver():
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not try to download a driver
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--force-device-scale-factor=1", "--hide-scrollbars", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    browser = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    browser.set_window_size(1200, 900)
    yield browser
    browser.quit()


@pytest.fixture
def page(driver, server):
    """The page freshly loaded, its model panel filled in; logs emptied."""
    driver.set_window_size(1200, 900)
    driver.get(server.url + "/")
    wait(driver, lambda d: d.find_element(By.ID, "m-file").text == "model.npz")
    driver.get_log("browser")
    return driver


def wait(driver, condition, seconds=15):
    try:
        return WebDriverWait(driver, seconds, poll_frequency=0.05).until(condition)
    except TimeoutException:
        raise AssertionError(f"timed out; browser log: {driver.get_log('browser')}") from None


def draw(driver, strokes, kind=interaction.POINTER_MOUSE):
    """Draw the strokes on the pad with pointer actions (mouse, pen or touch)."""
    pad = driver.find_element(By.ID, "pad")
    width, height = pad.rect["width"], pad.rect["height"]
    for stroke in strokes:
        builder = ActionBuilder(driver, mouse=PointerInput(kind, f"{kind}-pointer"), duration=10)
        pointer = builder.pointer_action
        points = _dense(stroke)
        x, y = points[0]
        pointer.move_to(pad, int((x - 0.5) * width), int((y - 0.5) * height))
        pointer.pointer_down()
        for x, y in points[1:]:
            pointer.move_to(pad, int((x - 0.5) * width), int((y - 0.5) * height))
        pointer.pointer_up()
        builder.perform()


def _dense(stroke, step=0.04):
    """Points along the polyline about ``step`` apart, so the pad gets many move events."""
    points = [stroke[0]]
    for (x0, y0), (x1, y1) in zip(stroke, stroke[1:]):
        n = max(1, int(np.hypot(x1 - x0, y1 - y0) / step))
        points += [(x0 + (x1 - x0) * i / n, y0 + (y1 - y0) * i / n) for i in range(1, n + 1)]
    return points


def shown_digit(driver) -> str:
    return driver.find_element(By.ID, "digit").text


def exported_png(driver) -> bytes:
    """The PNG the page sends for what is on the pad now."""
    url = driver.execute_async_script("const done = arguments[0]; window.digitnet.exportDataURL().then(done);")
    assert url.startswith("data:image/png;base64,")
    return base64.b64decode(url.split(",", 1)[1])


def drop_file(driver, body: bytes, name: str) -> None:
    """Drag a PNG file of ``body`` onto the pad and drop it, as a file manager would."""
    driver.execute_script("""
        const bytes = Uint8Array.from(atob(arguments[0]), c => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], arguments[1], {type: "image/png"}));
        const frame = document.getElementById("pad-frame");
        frame.dispatchEvent(new DragEvent("dragover", {dataTransfer: transfer, bubbles: true, cancelable: true}));
        frame.dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true}));
    """, base64.b64encode(body).decode(), name)


def answer_settled(driver, server):
    """Wait until the page shows the server's answer for the pad as it is now; return that answer."""
    def settled(d):
        answer = requests.post(server.url + "/api/predict", data=exported_png(d)).json()
        return answer if shown_digit(d) == str(answer.get("digit")) else False

    return wait(driver, settled)


def requested_urls(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def severe_console_entries(driver) -> list[dict]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


# ---------------------------------------------------------------------------


def test_page_loads_without_console_errors_or_outside_requests(driver, server):
    driver.get_log("performance")
    driver.get(server.url + "/")
    wait(driver, lambda d: d.find_element(By.ID, "m-sizes").text.startswith("784–20–10"))
    assert severe_console_entries(driver) == []
    urls = requested_urls(driver)
    assert any(url.endswith("/app.js") for url in urls) and any(url.endswith("/api/model") for url in urls)
    outside = [url for url in urls if not url.startswith(server.url + "/") and not url.startswith(("data:", "blob:"))]
    assert outside == []
    assert shown_digit(driver) == "?"
    assert driver.find_element(By.ID, "m-epochs").text.startswith("3 epochs")


def test_drawing_shows_the_servers_answer_for_the_canvas(page, server):
    draw(page, FOUR)
    answer = answer_settled(page, server)
    assert page.execute_script("return window.digitnet.strokes()") == 2
    assert page.find_element(By.ID, "confidence").text == f"confidence {answer['confidence']:.3f}"
    winners = page.find_elements(By.CSS_SELECTOR, "#bars li.winner .bar-digit")
    assert [w.text for w in winners] == [str(answer["digit"])]
    heights = page.execute_script(
        "return [...document.querySelectorAll('#bars .bar-fill')].map(e => parseFloat(e.style.height))")
    np.testing.assert_allclose(heights, np.clip(answer["scores"], 0, 1) * 100, atol=0.01)
    # The 28x28 view shows the server's input.
    seen = page.execute_script(
        "const d = document.getElementById('seen').getContext('2d').getImageData(0, 0, 28, 28).data;"
        "return Array.from({length: 784}, (_, i) => d[4 * i]);")
    np.testing.assert_allclose(np.array(seen).reshape(28, 28) / 255, answer["input"], atol=1 / 255 + 1e-6)
    assert severe_console_entries(page) == []


def test_a_drawing_is_sent_as_a_greyscale_png_that_reads_as_the_rgba_one(page, server):
    """png.js: the pad goes out as 8-bit grey (a quarter of the pixels to inflate), and the server's
    answer is the one it gives the same picture as RGBA, to the bit."""
    from PIL import Image
    draw(page, FOUR)
    answer_settled(page, server)
    sent = exported_png(page)
    picture = Image.open(io.BytesIO(sent))
    assert picture.format == "PNG" and picture.mode == "L" and picture.size == (280, 280)
    rgba = io.BytesIO()
    picture.convert("RGBA").save(rgba, "PNG")
    grey_answer = requests.post(server.url + "/api/predict", data=sent).json()
    rgba_answer = requests.post(server.url + "/api/predict", data=rgba.getvalue()).json()
    assert grey_answer == rgba_answer


def test_the_benchmark_sends_the_bytes_the_page_sends(page, server):
    """scripts/bench_serve.py measures the server on what the page uploads: its ``page_png`` (filter 0,
    zlib level 6) writes, for the pad's grey levels, the very bytes png.js writes in Chromium."""
    import sys

    from PIL import Image
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    try:
        import bench_serve
    finally:
        sys.path.pop(0)
    draw(page, FOUR)
    answer_settled(page, server)
    sent = exported_png(page)
    assert bench_serve.page_png(np.asarray(Image.open(io.BytesIO(sent)))) == sent


def test_a_colour_picture_on_the_pad_is_sent_in_colour(page, server):
    body = drawing("four", side=200, mode="RGB")
    coloured = red_ink(body)
    drop_file(page, coloured, "red.png")
    wait(page, lambda d: d.find_element(By.ID, "pad-file").text == "red.png")
    from PIL import Image
    assert Image.open(io.BytesIO(exported_png(page))).mode in ("RGB", "RGBA")


def red_ink(body: bytes) -> bytes:
    """The picture with its dark ink made red (so that no channel alone is grey)."""
    from PIL import Image
    grey = np.asarray(Image.open(io.BytesIO(body)).convert("L"), dtype=np.uint8)
    rgb = np.stack([np.full_like(grey, 255), grey, grey], axis=2)
    out = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize("kind", [interaction.POINTER_PEN, interaction.POINTER_TOUCH])
def test_pen_and_touch_draw_too(page, server, kind):
    draw(page, SEVEN, kind)
    assert page.execute_script("return window.digitnet.strokes()") == 1
    answer_settled(page, server)


def test_undo_clear_and_keys(page, server):
    draw(page, FOUR)
    answer_settled(page, server)
    page.find_element(By.ID, "undo").click()
    assert page.execute_script("return window.digitnet.strokes()") == 1
    answer_settled(page, server)  # the answer follows the undo
    page.find_element(By.TAG_NAME, "body").send_keys(Keys.CONTROL, "z")
    assert page.execute_script("return window.digitnet.strokes()") == 0
    assert shown_digit(page) == "?"
    draw(page, SEVEN)
    answer_settled(page, server)
    page.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    assert page.execute_script("return window.digitnet.strokes()") == 0
    assert shown_digit(page) == "?" and page.find_element(By.ID, "pad-hint").is_displayed()
    draw(page, SEVEN)
    answer_settled(page, server)
    page.find_element(By.ID, "clear").click()
    assert shown_digit(page) == "?"


def test_buttons_are_reachable_with_the_keyboard(page):
    focused = []
    body = page.find_element(By.TAG_NAME, "body")
    for _ in range(6):
        body.send_keys(Keys.TAB) if not focused else page.switch_to.active_element.send_keys(Keys.TAB)
        focused.append(page.switch_to.active_element.get_attribute("id"))
    assert {"undo", "clear", "choose", "test"} <= set(focused)


def test_chosen_file_is_read(page, server, tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(drawing("four", side=600, mode="RGB", fmt="JPEG"))
    expected = requests.post(server.url + "/api/predict", data=path.read_bytes()).json()
    file_input = page.find_element(By.ID, "file")
    page.execute_script("arguments[0].hidden = false", file_input)  # as the Open image button would
    file_input.send_keys(str(path))
    wait(page, lambda d: shown_digit(d) == str(expected["digit"])
         and d.find_element(By.ID, "confidence").text == f"confidence {expected['confidence']:.3f}")
    assert page.find_element(By.ID, "pad-file").text == "photo.jpg"
    page.find_element(By.ID, "clear").click()
    assert shown_digit(page) == "?" and not page.find_element(By.ID, "pad-file").is_displayed()


def test_dropped_file_is_read(page, server):
    body = drawing("one", side=200, mode="L")
    expected = requests.post(server.url + "/api/predict", data=body).json()
    drop_file(page, body, "one.png")
    wait(page, lambda d: d.find_element(By.ID, "pad-file").text == "one.png"
         and d.find_element(By.ID, "confidence").text == f"confidence {expected['confidence']:.3f}")
    assert shown_digit(page) == str(expected["digit"])


def test_unusable_picture_shows_the_servers_message(page):
    page.execute_script("""
        const transfer = new DataTransfer();
        transfer.items.add(new File([new Uint8Array([1, 2, 3])], "broken.png", {type: "image/png"}));
        document.getElementById("pad-frame").dispatchEvent(
            new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true}));
    """)
    wait(page, lambda d: d.find_element(By.ID, "error").is_displayed())
    assert page.find_element(By.ID, "error").text == "not an image (or not a format Pillow can read)"
    assert shown_digit(page) == "?"


def test_test_button_measures_accuracy(page):
    page.find_element(By.ID, "test").click()
    wait(page, lambda d: "of 200 test digits" in d.find_element(By.ID, "test-result").text)
    assert page.find_element(By.ID, "test-result").text.split()[0].endswith("%")


@pytest.mark.parametrize("width", [375, 1200])
def test_layout_fits_phone_and_desktop_widths(driver, server, width, tmp_path):
    driver.set_window_size(width, 900)
    driver.get(server.url + "/")
    wait(driver, lambda d: d.find_element(By.ID, "m-file").text == "model.npz")
    draw(driver, FOUR)
    answer_settled(driver, server)
    inner = driver.execute_script("return document.documentElement.clientWidth")
    assert driver.execute_script("return document.documentElement.scrollWidth") <= inner  # no sideways scrolling
    pad = driver.find_element(By.ID, "pad").rect
    assert abs(pad["width"] - pad["height"]) <= 1 and pad["width"] >= min(300, inner - 60)
    for button in ("undo", "clear", "choose", "test"):
        rect = driver.find_element(By.ID, button).rect
        assert rect["x"] >= 0 and rect["x"] + rect["width"] <= inner and rect["height"] >= 36  # touch-sized
    assert severe_console_entries(driver) == []
    shots = os.environ.get("DIGITNET_SCREENSHOT_DIR")
    driver.save_screenshot(str(Path(shots or tmp_path) / f"serve-{width}.png"))


# ---------------------------------------------------------------------------------------------
# Training from the page (issue 9): a server without a model, with training enabled.

@pytest.fixture
def training_server(tmp_path):
    from helpers import write_mnist
    from test_serve_train import TrainingServer

    # 10,600 training images: the form keeps `train`'s default --validation-size of 10,000.
    running = TrainingServer(tmp_path, write_mnist(tmp_path / "mnist", n_train=10_600))
    yield running
    running.stop()


def set_field(driver, name, value):
    field = driver.find_element(By.ID, f"t-{name}")
    field.clear()
    field.send_keys(str(value))


def curve_points(driver) -> int:
    return int(driver.find_element(By.ID, "t-curve").get_attribute("data-points") or 0)


def state_text(driver) -> str:
    return driver.find_element(By.ID, "t-state").text


def test_train_watch_stop_resume_switch_and_draw_against_the_run(driver, training_server):
    server = training_server
    driver.set_window_size(1200, 900)
    driver.get(server.url + "/")
    wait(driver, lambda d: d.find_element(By.ID, "m-file").text == "none yet")
    wait(driver, lambda d: d.find_element(By.ID, "t-epochs").get_attribute("value") == "30")  # the CLI's defaults
    assert driver.find_element(By.ID, "t-learning_rate").get_attribute("value") == "3"
    driver.get_log("browser")

    # A 2-epoch run: the curve gets two points, and the finished run becomes the served model.
    set_field(driver, "hidden_sizes", 12)
    set_field(driver, "epochs", 2)
    driver.find_element(By.ID, "t-go").click()
    wait(driver, lambda d: curve_points(d) == 2 and state_text(d).startswith("Finished"), seconds=60)
    first_run = server.status()["run"]
    wait(driver, lambda d: d.find_element(By.ID, "m-file").text == first_run.split("/", 1)[1])

    # A bad setting: the server's message, nothing started.
    set_field(driver, "epochs", -3)
    driver.find_element(By.ID, "t-go").click()
    wait(driver, lambda d: "--epochs must be at least 1" in d.find_element(By.ID, "t-error").text)
    assert [e for e in severe_console_entries(driver) if "/api/train/start" not in e["message"]] == []  # the 400

    # A long run: Train becomes Stop; draw against the model being trained.
    set_field(driver, "epochs", 1000)
    set_field(driver, "batch_size", 1)
    driver.find_element(By.ID, "t-go").click()
    wait(driver, lambda d: d.find_element(By.ID, "t-go-label").text == "Stop")
    wait(driver, lambda d: curve_points(d) >= 1 and d.find_element(By.ID, "use-training").is_enabled(), seconds=60)
    driver.find_element(By.ID, "use-training").click()
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", driver.find_element(By.ID, "pad"))
    draw(driver, FOUR)
    wait(driver, lambda d: shown_digit(d) in "0123456789")
    assert driver.find_element(By.ID, "error").get_attribute("hidden") is not None

    # Stop mid-way, then resume: the curve carries on from the kept epochs.
    driver.find_element(By.ID, "t-go").click()
    wait(driver, lambda d: state_text(d).startswith("Stopped"), seconds=30)
    kept = curve_points(driver)
    assert 1 <= kept < 1000 and driver.find_element(By.ID, "t-go-label").text == "Train"
    resume = driver.find_element(By.ID, "t-resume")
    assert resume.is_displayed()
    resume.click()
    wait(driver, lambda d: state_text(d).startswith("Training") and curve_points(d) > kept, seconds=60)
    driver.find_element(By.ID, "t-go").click()
    wait(driver, lambda d: state_text(d).startswith("Stopped"), seconds=30)

    # Switch models: the first run is served; use the second one, then back.
    def use(model_id):
        selector = f'li.model[data-id="{model_id}"] button.use'
        # The list is redrawn as runs change: find and press the button in one step.
        wait(driver, lambda d: d.execute_script(
            "const b = document.querySelector(arguments[0]); if (b) b.click(); return !!b;", selector))
        wait(driver, lambda d: d.find_element(By.ID, "m-file").text == model_id.split("/", 1)[1])

    second_run = server.status()["run"]
    use(second_run)
    assert server.models.recogniser.model_name.endswith(second_run.split("/", 1)[1])
    use(first_run)
    assert severe_console_entries(driver) == []


def test_without_server_sent_events_the_panel_follows_the_run_by_polling(driver, training_server):
    # A proxy that buffers the event stream, or a browser without EventSource: the page asks GET /api/train.
    script = driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                                    {"source": "delete window.EventSource;"})
    try:
        driver.set_window_size(1200, 900)
        driver.get(training_server.url + "/")
        assert driver.execute_script("return 'EventSource' in window") is False
        wait(driver, lambda d: d.find_element(By.ID, "t-epochs").get_attribute("value") == "30")
        set_field(driver, "hidden_sizes", 12)
        set_field(driver, "epochs", 2)
        driver.find_element(By.ID, "t-go").click()
        wait(driver, lambda d: curve_points(d) == 2 and state_text(d).startswith("Finished"), seconds=60)
        assert severe_console_entries(driver) == []
    finally:
        driver.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": script["identifier"]})
