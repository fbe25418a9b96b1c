"""Screenshots of the `digitnet serve` page for the README, taken with the browser tests' tooling
(headless Debian Chromium driven by Selenium): a 4 drawn with pointer actions, Test pressed.

    python scripts/screenshot_serve.py --model model.npz --data-dir ../shared/mnist --out docs/

writes serve-desktop.png (1100 px wide) and serve-phone.png (375 px wide), each the full page
(--desktop-width, --phone-width: other widths, e.g. 1280 and 390).

    python scripts/screenshot_serve.py --train --data-dir ../shared/mnist --out docs/

writes serve-train.png instead: a server started without a model (in a temporary folder), a run of the
textbook's settings started with Train, a 4 drawn and answered by the model being trained, taken
after --epochs-shown epochs; the run is then stopped.

    python scripts/screenshot_serve.py --inside --model elastic.npz --out /tmp/shots/

writes inside-desktop.png (1280 px: the page down to the "Inside the network" panel) and
inside-phone.png (390 px: the panel alone): a 4 drawn, the panel opened, the unit contributing
most switched off, the saliency overlay on, "this is a --label" taught --steps times, the next
unit shown in the detail.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.actions import interaction
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.actions.pointer_input import PointerInput
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

FOUR = [[(0.56, 0.17), (0.45, 0.35), (0.3, 0.6), (0.74, 0.6)], [(0.6, 0.34), (0.6, 0.6), (0.61, 0.84)]]
WIDTHS = {"desktop": 1100, "phone": 375}


def draw(driver, strokes):
    pad = driver.find_element(By.ID, "pad")
    width, height = pad.rect["width"], pad.rect["height"]
    for stroke in strokes:
        builder = ActionBuilder(driver, mouse=PointerInput(interaction.POINTER_PEN, "pen"), duration=10)
        pointer = builder.pointer_action
        pointer.move_to(pad, int((stroke[0][0] - 0.5) * width), int((stroke[0][1] - 0.5) * height))
        pointer.pointer_down()
        for (x0, y0), (x1, y1) in zip(stroke, stroke[1:]):
            for i in range(1, 9):
                x, y = x0 + (x1 - x0) * i / 8, y0 + (y1 - y0) * i / 8
                pointer.move_to(pad, int((x - 0.5) * width), int((y - 0.5) * height))
        pointer.pointer_up()
        builder.perform()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="model.npz")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default="docs", type=Path)
    parser.add_argument("--desktop-width", type=int, default=WIDTHS["desktop"], help="serve-desktop.png's width")
    parser.add_argument("--phone-width", type=int, default=WIDTHS["phone"], help="serve-phone.png's width")
    parser.add_argument("--train", action="store_true", help="the training panel instead (see above)")
    parser.add_argument("--epochs-shown", type=int, default=8, help="with --train: epochs on the curve")
    parser.add_argument("--inside", action="store_true", help="the inside-the-network panel instead (see above)")
    parser.add_argument("--label", type=int, default=9, help="with --inside: the digit taught")
    parser.add_argument("--steps", type=int, default=2, help="with --inside: the steps taught")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.train:
        train_screenshot(args)
        return
    if args.inside:
        inside_screenshots(args)
        return
    command = [sys.executable, "-m", "digitnet", "serve", "--model", args.model, "--port", "0"]
    server = subprocess.Popen(command + (["--data-dir", args.data_dir] if args.data_dir else []),
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = server.stdout.readline().split(" on ", 1)[1].split(" ", 1)[0]
    driver = browser()
    try:
        for name, width in {"desktop": args.desktop_width, "phone": args.phone_width}.items():
            wait = four_drawn(driver, url, width, 900, 20)
            driver.find_element(By.ID, "test").click()
            wait.until(lambda d: "%" in d.find_element(By.ID, "test-result").text)
            time.sleep(0.4)  # let the bars finish their transition
            whole_page(driver, width)
            path = args.out / f"serve-{name}.png"
            driver.save_screenshot(str(path))
            print(f"{path}: read as {driver.find_element(By.ID, 'digit').text}, "
                  f"{driver.find_element(By.ID, 'test-result').text}")
    finally:
        driver.quit()
        server.terminate()
        server.wait()


def four_drawn(driver, url, width, height, seconds):
    """The page at ``width``, a 4 drawn on it and answered; a wait of ``seconds`` for what comes next."""
    driver.set_window_size(width, height)
    driver.get(url)
    wait = WebDriverWait(driver, seconds)
    wait.until(lambda d: d.find_element(By.ID, "m-file").text not in ("", "…"))
    draw(driver, FOUR)
    wait.until(lambda d: d.find_element(By.ID, "digit").text != "?")
    return wait


def whole_page(driver, width):
    """Make the window as tall as the page, so the screenshot holds all of it."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    chrome = driver.execute_script("return window.outerHeight - window.innerHeight")
    driver.set_window_size(width, height + chrome)
    time.sleep(0.3)


def browser():
    os.environ.setdefault("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--force-device-scale-factor=1", "--hide-scrollbars"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def train_screenshot(args) -> None:
    import tempfile

    folder = tempfile.mkdtemp(prefix="digitnet-shot-")
    data_dir = str(Path(args.data_dir).resolve()) if args.data_dir else None
    command = [sys.executable, "-m", "digitnet", "serve", "--port", "0"] + (["--data-dir", data_dir] if data_dir else [])
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=folder)
    url = server.stdout.readline().split(" on ", 1)[1].split(" ", 1)[0]
    driver = browser()
    try:
        width = WIDTHS["desktop"]
        driver.set_window_size(width, 900)
        driver.get(url)
        wait = WebDriverWait(driver, 300)
        wait.until(lambda d: d.find_element(By.ID, "t-epochs").get_attribute("value") == "30")
        driver.find_element(By.ID, "t-go").click()
        points = lambda d: int(d.find_element(By.ID, "t-curve").get_attribute("data-points") or 0)  # noqa: E731
        wait.until(lambda d: points(d) >= 2 and d.find_element(By.ID, "use-training").is_enabled())
        driver.find_element(By.ID, "use-training").click()
        driver.execute_script("window.scrollTo(0, 0)")
        draw(driver, FOUR)
        wait.until(lambda d: points(d) >= args.epochs_shown)
        time.sleep(0.5)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        chrome = driver.execute_script("return window.outerHeight - window.innerHeight")
        driver.set_window_size(width, height + chrome)
        time.sleep(0.3)
        path = args.out / "serve-train.png"
        driver.save_screenshot(str(path))
        print(f"{path}: {driver.find_element(By.ID, 't-state').text}; drawn 4 read as "
              f"{driver.find_element(By.ID, 'digit').text}")
    finally:
        driver.quit()
        server.send_signal(2)
        server.wait(60)


INSIDE_WIDTHS = {"desktop": 1280, "phone": 390}


def inside_screenshots(args) -> None:
    import tempfile

    from PIL import Image

    folder = tempfile.mkdtemp(prefix="digitnet-shot-")  # its runs/ would hold a kept copy: none is kept
    command = [sys.executable, "-m", "digitnet", "serve", "--model", str(Path(args.model).resolve()), "--port", "0"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=folder)
    url = server.stdout.readline().split(" on ", 1)[1].split(" ", 1)[0]
    driver = browser()
    try:
        for name, width in INSIDE_WIDTHS.items():
            wait = four_drawn(driver, url, width, 1000, 30)
            time.sleep(1.5)  # the answer to the last stroke (the first answers wait for the workers to start)
            drawn = driver.find_element(By.ID, "digit").text
            driver.find_element(By.ID, "inside-open").click()
            units = lambda d: d.find_elements(By.CSS_SELECTOR, "#hidden-layers .unit")  # noqa: E731
            wait.until(units)
            driver.find_element(By.ID, "saliency").click()
            driver.find_element(By.CSS_SELECTOR, f'#teach-picker button[data-digit="{args.label}"]').click()
            for step in range(1, args.steps + 1):
                driver.find_element(By.ID, "teach-go").click()
                wait.until(lambda d: d.find_element(By.ID, "teach-change").text.startswith(f"Step {step} "))
            time.sleep(0.5)  # the taught copy explained and its weight pictures drawn
            tile = units(driver)[0]
            switched = tile.get_attribute("data-unit")
            driver.execute_script("arguments[0].focus()", tile)
            tile.send_keys(" ")   # Space: the unit focused is switched off
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f'#hidden-layers .unit.off[data-unit="{switched}"]'))
            driver.execute_script("arguments[0].focus()", units(driver)[0])
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#unit-detail .ten-bars li"))
            time.sleep(0.5)  # the bars' transitions
            whole_page(driver, width)
            path = args.out / f"inside-{name}.png"
            driver.save_screenshot(str(path))
            box = driver.find_element(By.ID, "inside-card").rect
            top = 0 if name == "desktop" else max(0, int(box["y"]) - 12)
            with Image.open(path) as shot:
                shot.crop((0, top, shot.width, min(shot.height, int(box["y"] + box["height"]) + 12))).save(path)
            print(f"{path}: drawn {drawn}, now {driver.find_element(By.ID, 'digit').text} "
                  f"({driver.find_element(By.ID, 'confidence').text}); {driver.find_element(By.ID, 'teach-change').text}")
    finally:
        driver.quit()
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
