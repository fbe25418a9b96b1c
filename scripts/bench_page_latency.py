"""From the pen lifting to the answer on the page: p50 over --strokes strokes in headless Chromium.

Starts `digitnet serve --model MODEL --port 0` for each code tree given (this checkout, and with
--old PATH the code at PATH as well, e.g. a `git worktree` of the previous commit: same model, same
browser, one after the other in one run), then for each stroke: clears the pad (Escape), draws one
stroke with pointer actions and waits for its answer.  The figure is pointer-up -> the first animation
frame after the answer reached the card (what the user sees), measured by a script the benchmark
adds to the page before it loads (a capture-phase pointerup listener and a MutationObserver on the
answer), so old and new pages are measured alike; for a page that marks it itself
(performance.mark "digitnet:pointerup" / "digitnet:answer-painted") its own figure is printed too.
The server's round trip is printed beside it: the rest is the page.

    flock /tmp/digitnet-bench.lock python scripts/bench_page_latency.py --model model.npz --old /tmp/old19

The load average is printed with the figures: they depend on what else the cores are doing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from selenium.webdriver.common.actions import interaction
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.actions.pointer_input import PointerInput
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

HERE = Path(__file__).resolve().parent.parent
# One stroke each, in pad units: a 1, a 7, an L, a 0-ish loop.
STROKES = [[(0.5, 0.15), (0.5, 0.85)], [(0.28, 0.2), (0.74, 0.2), (0.46, 0.84)],
           [(0.3, 0.15), (0.3, 0.8), (0.7, 0.8)], [(0.5, 0.15), (0.25, 0.5), (0.5, 0.85), (0.75, 0.5), (0.5, 0.17)]]

# Added before the page's own scripts: times every pointer-up, every /api/predict request and its
# answer, and the first animation frame after the answer card changed.
INSTRUMENT = """
window.__latency = {ups: [], requests: [], painted: []};
addEventListener("pointerup", () => __latency.ups.push(performance.now()), true);
const originalFetch = window.fetch;
window.fetch = function (url, options) {
  const result = originalFetch.apply(this, arguments);
  if (String(url).includes("/api/predict")) {
    const request = {sent: performance.now(), answered: null};
    __latency.requests.push(request);
    result.then(() => { request.answered = performance.now(); }, () => {});
  }
  return result;
};
addEventListener("DOMContentLoaded", () => {
  const observer = new MutationObserver(() => requestAnimationFrame(() => __latency.painted.push(performance.now())));
  for (const id of ["digit", "confidence", "bars"]) {
    observer.observe(document.getElementById(id), {subtree: true, childList: true, characterData: true, attributes: true});
  }
});
"""


# [pointer-up, that request sent, answered, the first frame painted after it], once all four happened.
AFTER_UP = """
const l = __latency, up = l.ups.at(-1);
const request = l.requests.find((r) => r.sent >= up);
if (up === undefined || !request || request.answered === null) return false;
const painted = l.painted.find((t) => t >= request.answered);
return painted === undefined ? false : [up, request.sent, request.answered, painted];
"""


def browser(width: int = 1280, height: int = 900):
    """screenshot_serve's headless Chromium, with the page's timings added to every page it loads."""
    from screenshot_serve import browser as headless

    driver = headless()
    driver.set_window_size(width, height)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": INSTRUMENT})
    return driver


def stroke(driver, points, steps: int = 12) -> None:
    pad = driver.find_element(By.ID, "pad")
    width, height = pad.rect["width"], pad.rect["height"]
    builder = ActionBuilder(driver, mouse=PointerInput(interaction.POINTER_MOUSE, "mouse"), duration=5)
    pointer = builder.pointer_action
    pointer.move_to(pad, int((points[0][0] - 0.5) * width), int((points[0][1] - 0.5) * height))
    pointer.pointer_down()
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        for i in range(1, steps + 1):
            x, y = x0 + (x1 - x0) * i / steps, y0 + (y1 - y0) * i / steps
            pointer.move_to(pad, int((x - 0.5) * width), int((y - 0.5) * height))
    pointer.pointer_up()
    builder.perform()


def measure(driver, url: str, strokes: int) -> dict[str, list[float]]:
    """Per stroke (ms): pointer-up -> painted, pointer-up -> request sent, the request's round trip,
    and the page's own marks when it has them."""
    driver.get(url)
    WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "m-file").text not in ("", "…"))
    figures = {"painted": [], "sent": [], "round trip": [], "page's marks": []}
    for n in range(strokes):
        driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
        WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, "digit").text == "?")
        time.sleep(0.15)  # the clear's own repaint is over
        stroke(driver, STROKES[n % len(STROKES)])
        # The first request sent after the pen lifted (one sent mid-stroke may answer before or after it).
        up, sent, answered, painted = WebDriverWait(driver, 10, poll_frequency=0.02).until(
            lambda d: d.execute_script(AFTER_UP))
        figures["painted"].append(painted - up)
        figures["sent"].append(sent - up)
        figures["round trip"].append(answered - sent)
        marks = driver.execute_script(
            "const m = performance.getEntriesByType('mark');"
            "const ups = m.filter((e) => e.name === 'digitnet:pointerup');"
            "if (!ups.length) return null; const up = ups.at(-1).startTime;"
            "const p = m.find((e) => e.name === 'digitnet:answer-painted' && e.startTime >= up);"
            "return p ? p.startTime - up : null")
        if marks is not None:
            figures["page's marks"].append(marks)
    return figures


def serve(tree: Path, model: str) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, PYTHONPATH=str(tree))
    server = subprocess.Popen([sys.executable, "-m", "digitnet", "serve", "--model", model, "--port", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=tree)
    return server, server.stdout.readline().split(" on ", 1)[1].split(" ", 1)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="model.npz", help="model to serve (default: model.npz)")
    parser.add_argument("--strokes", type=int, default=20, help="strokes measured per page (default: 20)")
    parser.add_argument("--old", type=Path, default=None, help="a second code tree to measure in the same run")
    parser.add_argument("--old-first", action="store_true", help="measure --old before this checkout")
    args = parser.parse_args()
    model = str(Path(args.model).resolve())
    trees = [("this checkout", HERE)] + ([("--old " + str(args.old), args.old.resolve())] if args.old else [])
    if args.old_first:
        trees.reverse()
    for name, tree in trees:
        # A fresh browser for each: in one that has already loaded a page, toBlob's wait was gone.
        server, url = serve(tree, model)
        driver = browser()
        try:
            figures = measure(driver, url, args.strokes)
        finally:
            driver.quit()
            server.terminate()
            server.wait()
        load = open("/proc/loadavg").read().split()[:3]
        print(f"{name}: pointer-up -> answer painted, over {args.strokes} strokes (load average {' '.join(load)})")
        for label, values in figures.items():
            if values:
                print(f"  {label:>14}: p50 {statistics.median(values):7.1f} ms   max {max(values):7.1f} ms")


if __name__ == "__main__":
    main()
