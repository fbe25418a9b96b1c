#!/usr/bin/env python3
"""How long the "Inside the network" panel takes to show an answer once it has arrived (issue 18's bar:
within one animation frame, 16.7 ms at 60 Hz), in headless Chromium.

    python scripts/bench_inside_frame.py --model model.npz [--clicks 20]

A 4 is drawn, the panel opened, then each of the ten outputs is pressed in turn (``--clicks`` in all):
every press asks POST /api/explain and redraws the panel.  Before the page loads, a wrapper around
``fetch`` notes the moment each /api/explain answer's JSON is parsed (t0); a MutationObserver on the
panel notes the first change of the DOM after it (t1), and a requestAnimationFrame callback queued at
t0 notes whether that change came before the next frame.  Printed: p50 and max of t1 - t0, and how
many answers were on screen by the next frame, with the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from screenshot_serve import browser, four_drawn  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

PROBE = """
window.__answers = [];
const parsedAt = [];
const original = window.fetch;
window.fetch = async (...args) => {
  const response = await original(...args);
  const url = String(args[0] && args[0].url || args[0]);
  if (url.includes("/api/explain") && !url.includes("weights")) {
    const json = response.json.bind(response);
    response.json = async () => {
      const value = await json();
      const record = {t0: performance.now(), t1: null, inFrame: null};
      window.__answers.push(record);
      parsedAt.push(record);
      requestAnimationFrame(() => { record.inFrame = record.t1 !== null; });
      return value;
    };
  }
  return response;
};
document.addEventListener("DOMContentLoaded", () => {
  const panel = document.getElementById("inside-body") || document.body;
  new MutationObserver(() => {
    const now = performance.now();
    while (parsedAt.length) { const r = parsedAt.shift(); if (r.t1 === null) r.t1 = now; }
  }).observe(panel, {subtree: true, childList: true, attributes: true, characterData: true});
});
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="model.npz")
    parser.add_argument("--clicks", type=int, default=20)
    args = parser.parse_args()
    command = [sys.executable, "-m", "digitnet", "serve", "--model", args.model, "--port", "0"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = server.stdout.readline().split(" on ", 1)[1].split(" ", 1)[0]
    driver = browser()
    try:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": PROBE})
        four_drawn(driver, url, 1280, 1000, 20)
        driver.find_element(By.ID, "inside-open").click()
        time.sleep(1.0)
        driver.execute_script("window.__answers.length = 0")
        for i in range(args.clicks):
            outputs = driver.find_elements(By.CSS_SELECTOR, "#outputs .output")
            driver.execute_script("arguments[0].click()", outputs[i % len(outputs)])
            time.sleep(0.4)
        answers = driver.execute_script("return window.__answers")
    finally:
        driver.quit()
        server.terminate()
        server.wait()
    shown = [a["t1"] - a["t0"] for a in answers if a["t1"] is not None]
    if not shown:
        sys.exit("no /api/explain answer was seen: is the panel there?")
    in_frame = sum(1 for a in answers if a["inFrame"])
    print(f"{len(answers)} /api/explain answers: on screen after p50 {statistics.median(shown):.2f} ms, "
          f"max {max(shown):.2f} ms; {in_frame} of {len(answers)} before the next animation frame "
          f"(bar: within one frame); load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
