"""The pages `digitnet report` and a sweep write, opened from disk in headless Chromium at a phone's width.

Skipped (with the reason) when Debian's chromium or chromium-driver is missing; `.ci/run` installs them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from digitnet import checkpoint, report
from digitnet.data import load_mnist
from digitnet.network import Network
from helpers import write_mnist
from test_serve_browser import driver, pytestmark  # noqa: F401  (one headless Chromium; skipped without it)

PHONE = 390

# Every box a table sits in, and whether its table is wider than the box (it would scroll sideways).
LAYOUT = """
const boxes = [...document.querySelectorAll('.fit')];
return {page: document.documentElement.scrollWidth, screen: window.innerWidth,
        cut: boxes.filter(b => b.scrollWidth > b.clientWidth).map(b => b.previousElementSibling.textContent)};
"""


def open_as_phone(driver, page: Path, width: int = PHONE) -> dict:
    """The page laid out as a phone lays it out (mobile viewport rules), and what LAYOUT measures."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           dict(width=width, height=844, deviceScaleFactor=1, mobile=True))
    driver.get(page.resolve().as_uri())
    shots = os.environ.get("DIGITNET_SCREENSHOT_DIR")
    if shots:
        driver.save_screenshot(str(Path(shots) / f"{page.parent.name}-{width}.png"))
    return driver.execute_script(LAYOUT)


def test_the_report_fits_a_phone_without_sideways_scrolling(driver, tmp_path):
    """Long values (a path, an --augment spec) and the 11-column confusion matrix all fit 390 px: the
    page does not scroll sideways, and no table is cut off at the edge of its box."""
    data_dir = write_mnist(tmp_path / "mnist", n_train=300, n_test=1200)
    network = Network([784, 8, 10], rng=np.random.default_rng(0))
    metadata = {
        "dataset": "/home/student/" + "very-long-folder-name-without-spaces" * 3 + "/mnist",
        "hyperparameters": {"hidden_sizes": [100, 30], "learning_rate": 0.5,
                            "augment": "elastic=34:4,affine=15:0.15,shift=2", "exact_cost": True},
        "history": [{"epoch": 1, "training_cost": 0.5, "validation_accuracy": 0.5, "learning_rate": 0.5,
                     "cost_source": "exact"}],
        "epochs_completed": 1,
    }
    model = checkpoint.save(tmp_path / "a-model-with-a-rather-long-name-indeed.npz", network, metadata)
    out = tmp_path / "report"
    report.create_report(checkpoint.load(model), load_mnist(data_dir, 0).test, out, model_name=str(model))
    layout = open_as_phone(driver, out / "index.html")
    assert layout["screen"] == PHONE and layout["page"] <= PHONE, layout
    assert layout["cut"] == [], f"tables wider than the screen: {layout['cut']}"


def test_the_sweep_page_fits_a_phone(driver, tmp_path):
    from test_sweep_results import SPACE, made_study

    from digitnet.sweep import page, results

    study = made_study()
    (tmp_path / "sweep").mkdir()
    page.write_page(study, results.rows(study), SPACE.params, tmp_path / "sweep", study_name="s",
                    summary=[("storage", "sqlite:///" + "a-long-path/" * 8 + "study.db")], evaluate="e")
    layout = open_as_phone(driver, tmp_path / "sweep" / "index.html")
    assert layout["page"] <= PHONE, layout  # the trials table scrolls in its own box (.scroll), by design
