#!/usr/bin/env python3
"""How often `digitnet predict`'s "several digits side by side" warning is right.

    python scripts/bench_two_digits.py [--data-dir DIR] [--count 1000]

MNIST test digits are drawn as dark ink on paper (6x size): alone (the warning
must stay quiet: false alarms) and as pairs side by side with a gap of 0-12
pixels at 28x28 scale, like "42" written on a line (the warning should fire).
The ink is found by the same code `predict` uses (``images.preprocess_with_notes``).
Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from PIL import Image

from digitnet import images
from digitnet.data import load_mnist

SCALE = 6


def on_paper(digits: np.ndarray) -> Image.Image:
    """White-on-black 28-pixel-high ink (any width) as dark ink on light paper, SCALE times larger, with margins."""
    ink = Image.fromarray((digits * 255).astype(np.uint8))
    ink = ink.resize((ink.width * SCALE, ink.height * SCALE), Image.BICUBIC)
    paper = Image.new("L", (ink.width + 40 * SCALE, ink.height + 20 * SCALE), 0)
    paper.paste(ink, (20 * SCALE, 10 * SCALE))
    return Image.fromarray(245 - (np.asarray(paper, dtype=np.float32) * 235 / 255).astype(np.uint8))


def warns(picture: Image.Image) -> bool:
    try:
        return bool(images.preprocess_with_notes(picture, "auto")[1])
    except images.ImageError:
        return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/mnist")
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()
    test = load_mnist(args.data_dir, 0, parts=("t10k",)).test
    digits = test.images[:args.count].reshape(-1, 28, 28).astype(np.float32) / 255
    single = sum(warns(on_paper(d)) for d in digits)
    rows = {"single digits (false alarms)": single / len(digits)}
    for gap in (0, 2, 4, 8):
        fired = 0
        for i in range(len(digits) // 2):
            a, b = digits[2 * i], digits[2 * i + 1]
            # Trim each digit's empty columns so `gap` is the real space between the inks.
            a = a[:, a.any(axis=0)]
            b = b[:, b.any(axis=0)]
            pair = np.concatenate([a, np.zeros((28, gap), np.float32), b], axis=1)
            fired += warns(on_paper(pair))
        rows[f"pairs, gap {gap} px (detected)"] = fired / (len(digits) // 2)
    for name, share in rows.items():
        print(f"{name:<34} {share:7.1%}")
    print(json.dumps({k: round(v, 4) for k, v in rows.items()}))


if __name__ == "__main__":
    main()
