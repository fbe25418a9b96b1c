"""Screenshots of the `digitnet serve` page for the README, taken with the browser tests' tooling
(headless Debian Chromium driven by Selenium): a 4 drawn with pointer actions, Test pressed.

    python scripts/screenshot_serve.py --model model.npz --data-dir ../shared/mnist --out docs/

writes serve-desktop.png (1100 px wide) and serve-phone.png (375 px wide), each the full page.

    python scripts/screenshot_serve.py --train --data-dir ../shared/mnist --out docs/

writes serve-train.png instead: a server started without a model (in a temporary folder), a run of the
textbook's settings started with Train, a 4 drawn and answered by the model being trained, taken
after --epochs-shown epochs; the run is then stopped.
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
    parser.add_argument("--train", action="store_true", help="the training panel instead (see above)")
    parser.add_argument("--epochs-shown", type=int, default=8, help="with --train: epochs on the curve")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.train:
        train_screenshot(args)
        return
    command = [sys.executable, "-m", "digitnet", "serve", "--model", args.model, "--port", "0"]
    server = subprocess.Popen(command + (["--data-dir", args.data_dir] if args.data_dir else []),
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = server.stdout.readline().split(" on ", 1)[1].split(" ", 1)[0]
    driver = browser()
    try:
        for name, width in WIDTHS.items():
            driver.set_window_size(width, 900)
            driver.get(url)
            wait = WebDriverWait(driver, 20)
            wait.until(lambda d: d.find_element(By.ID, "m-file").text not in ("", "…"))
            draw(driver, FOUR)
            wait.until(lambda d: d.find_element(By.ID, "digit").text != "?")
            driver.find_element(By.ID, "test").click()
            wait.until(lambda d: "%" in d.find_element(By.ID, "test-result").text)
            time.sleep(0.4)  # let the bars finish their transition
            height = driver.execute_script("return document.documentElement.scrollHeight")
            chrome = driver.execute_script("return window.outerHeight - window.innerHeight")
            driver.set_window_size(width, height + chrome)
            time.sleep(0.2)
            path = args.out / f"serve-{name}.png"
            driver.save_screenshot(str(path))
            print(f"{path}: read as {driver.find_element(By.ID, 'digit').text}, "
                  f"{driver.find_element(By.ID, 'test-result').text}")
    finally:
        driver.quit()
        server.terminate()
        server.wait()


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


if __name__ == "__main__":
    main()
