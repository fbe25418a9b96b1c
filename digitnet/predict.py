"""What `digitnet predict` does: expand the arguments into image files, read them, run the
network on them in batches, and format one answer per image (plain text or JSON lines).

Kept apart from cli/predict.py so it can be tested without the command line, and imported
only when the command runs (it pulls in numpy and Pillow).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from digitnet import images
from digitnet.metrics import normalised_outputs
from digitnet.network import Network

# Files picked up from a folder (a file named on the command line is tried whatever its name).
IMAGE_SUFFIXES = frozenset({
    ".png", ".apng", ".jpg", ".jpeg", ".jpe", ".jfif", ".gif", ".bmp", ".dib", ".tif", ".tiff",
    ".webp", ".pgm", ".ppm", ".pbm", ".pnm", ".tga", ".ico", ".qoi", ".pcx",
})
BATCH_SIZE = 256
STDIN = "-"  # the argument that names standard input, as Unix tools take it (when ``run`` is given a reader)
DOUBT_NOTE = "this does not look like a digit: "  # then the verdict's doubt (predict's text output)
ART_RAMP = " .:-=+*#%@"  # dark to bright: the 28x28 input as terminal art


@dataclass
class Prediction:
    """One image's answer: the raw output activations and the input the network saw, or an error."""

    path: str | None
    scores: np.ndarray | None = None
    image: np.ndarray | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)  # read, but with a doubt (two digits side by side)
    verdict: images.Verdict = images.Verdict()  # whether the picture looks like a digit at all (images.verdict)

    @property
    def digit(self) -> int:
        return int(np.argmax(self.scores))

    @property
    def shares(self) -> np.ndarray:
        """The output activations normalised to sum to 1 (see ``confidence``)."""
        return normalised(self.scores)

    @property
    def confidence(self) -> float:
        """The predicted digit's share of the summed output activations.

        A sigmoid output layer gives ten independent activations in [0, 1],
        not probabilities: they need not sum to 1.  Their normalised share is
        1.0 when only one output is active, about 0.5 when two are equally
        active, and low when the network is unsure or nothing resembles a digit.
        It is not a calibrated probability.  A softmax output layer (a model
        trained with the log-likelihood cost) sums to 1 already, so there the
        confidence is the softmax probability of the digit.
        """
        return float(self.shares[self.digit])

    def to_dict(self, with_input: bool = False) -> dict:
        """The answer as JSON-ready data, shared by `predict --json` and the server's API.

        {"path"?, "digit", "confidence", "scores", "looks_like_a_digit"[, "doubt"][, "warnings"][, "input"]}
        or {"path"?, "error"}; "looks_like_a_digit" is judged from the picture, not from the scores (a dot,
        an X or a scribble is false, and "doubt" says why in a few words); "path"
        only when there is one (uploads have none), "input" (the 28x28 image the network saw,
        28 rows of 28 numbers in [0, 1]) only when asked for.  Numbers are rounded to 6
        decimals (4 for the input pixels) so both give the same text for the same picture.
        """
        record = {} if self.path is None else {"path": self.path}
        if self.error is not None:
            record["error"] = self.error
            return record
        record.update(digit=self.digit, confidence=round(self.confidence, 6),
                      scores=[round(float(s), 6) for s in self.scores],
                      looks_like_a_digit=self.verdict.looks_like_a_digit)
        if not self.verdict.looks_like_a_digit:
            record["doubt"] = self.verdict.doubt
        if self.warnings:
            record["warnings"] = list(self.warnings)
        if with_input:
            record["input"] = np.round(self.image.reshape(28, 28).astype(np.float64), 4).tolist()
        return record

    def top(self, k: int) -> list[tuple[int, float]]:
        """The k digits with the largest activations, with their shares, best first."""
        order = np.argsort(-self.scores, kind="stable")[:k]
        shares = self.shares
        return [(int(d), float(shares[d])) for d in order]


def normalised(scores: np.ndarray) -> np.ndarray:
    """Activations divided by their sum; uniform when they are all 0 (``metrics.normalised_outputs``)."""
    return normalised_outputs(scores)


NO_IMAGE_FILES = "no image files in the folder"


def expand_inputs(arguments: Iterable[str], recursive: bool = False) -> Iterator[tuple[str, str | None]]:
    """(path, error) per image to read: files as given, folders as their image files sorted by name
    (with ``recursive``, those of every subfolder too, sorted by path; hidden files and folders skipped).

    A folder without image files is yielded with the error ``NO_IMAGE_FILES``
    (it is not an image that failed); a missing file is reported when read.
    """
    for argument in arguments:
        path = Path(argument)
        if not path.is_dir():
            yield argument, None
            continue
        try:
            entries = _walk(path) if recursive else path.iterdir()
            files = sorted(entry for entry in entries
                           if entry.suffix.lower() in IMAGE_SUFFIXES and not entry.name.startswith(".")
                           and entry.is_file())
        except OSError as e:
            yield argument, f"cannot list the folder ({e.strerror or e})"
            continue
        if not files:
            yield argument, NO_IMAGE_FILES
        for file in files:
            yield str(file), None


def _walk(folder: Path) -> Iterator[Path]:
    """Every file under ``folder``, not entering hidden folders."""
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.name.startswith("."):
            yield from _walk(entry)
        else:
            yield entry


def predict_bytes(network: Network, data: bytes, invert: str = "auto") -> Prediction:
    """The answer for one picture given as the bytes of an image file (an upload), path None.

    Exactly the preprocessing ``predict_files`` applies to a file with the same bytes.
    """
    return _score(network, [_read(None, invert, source=io.BytesIO(data))])[0]


def _read(path: str | None, invert: str, source=None) -> Prediction:
    """The 28x28 input for one file (or the file object ``source``), or the reason it cannot be used."""
    try:
        image, notes, verdict = images.preprocess_with_verdict(
            images.open_image(path if source is None else source), invert)
        return Prediction(path, image=image, warnings=notes, verdict=verdict)
    except images.ImageError as e:
        return Prediction(path, error=e.reason)
    except MemoryError:
        return Prediction(path, error="out of memory while reading the image")


def predict_files(network: Network, inputs: Iterable[tuple[str, str | None]], invert: str = "auto",
                  batch_size: int = BATCH_SIZE, stdin: Callable[[], bytes] | None = None) -> Iterator[Prediction]:
    """Predictions in input order; the images of each batch go through the network in one call.
    With ``stdin`` (it returns the bytes of standard input), the path ``-`` is the picture read from it."""
    batch: list[Prediction] = []
    for path, error in inputs:
        if error:
            batch.append(Prediction(path, error=error))
        elif path == STDIN and stdin is not None:
            batch.append(_read_bytes(stdin(), invert))
        else:
            batch.append(_read(path, invert))
        if len(batch) == batch_size:
            yield from _score(network, batch)
            batch = []
    yield from _score(network, batch)


def _read_bytes(data: bytes, invert: str) -> Prediction:
    """The picture that came on standard input, named ``-``."""
    if not data:
        return Prediction(STDIN, error="nothing came on standard input (pipe a picture in: - < digit.png)")
    return _read(STDIN, invert, source=io.BytesIO(data))


def _score(network: Network, batch: list[Prediction]) -> list[Prediction]:
    """Fill in the scores of the batch's usable images with one feedforward call (rows = images)."""
    usable = [p for p in batch if p.error is None]
    if usable:
        inputs = np.stack([p.image.reshape(-1) for p in usable])
        for prediction, scores in zip(usable, network.feedforward(inputs)):
            prediction.scores = np.asarray(scores, dtype=np.float64)
    return batch


# ---------------------------------------------------------------------------
# Formatting


def plain_line(prediction: Prediction, top_k: int = 1) -> str:
    """'path: 7 (confidence 0.912)', or with top_k > 1 'path: 7 (0.912), 1 (0.050), ...'."""
    if top_k <= 1:
        return f"{prediction.path}: {prediction.digit} (confidence {prediction.confidence:.3f})"
    # Digits whose share rounds to 0.000 say nothing; the best one is always shown.
    shown = [(d, share) for i, (d, share) in enumerate(prediction.top(top_k)) if i == 0 or round(share, 3) > 0]
    return f"{prediction.path}: " + ", ".join(f"{d} ({share:.3f})" for d, share in shown)


def json_line(prediction: Prediction) -> str:
    """{"path", "digit", "confidence", "scores"} or {"path", "error"}, on one line."""
    return json.dumps(prediction.to_dict())


def terminal_art(image: np.ndarray) -> str:
    """The 28x28 input as 28 lines of characters, two per pixel so the digit is not squashed."""
    levels = np.clip((np.asarray(image).reshape(28, 28) * len(ART_RAMP)).astype(int), 0, len(ART_RAMP) - 1)
    return "\n".join("".join(ART_RAMP[v] * 2 for v in row).rstrip() for row in levels)


def run(network: Network, arguments: Iterable[str], *, invert: str = "auto", as_json: bool = False,
        top_k: int = 1, show: bool = False, recursive: bool = False, out: Callable[[str], None] = print,
        err: Callable[[str], None] = print, stdin: Callable[[], bytes] | None = None) -> tuple[int, int, int]:
    """Predict every image and print one answer per image; return (images, failures, empty folders).
    With ``stdin``, the argument ``-`` is the picture on standard input (``predict_files``).

    Answers go to ``out`` as they are ready (a batch at a time).  In JSON mode
    an image that cannot be used is a {"path", "error"} line on ``out``; in
    plain mode its message, and any warning, goes to ``err``.  A folder with
    no image files is reported (``no image files in DIR``) but is not an image.
    """
    count = failures = empty = 0
    for prediction in predict_files(network, expand_inputs(arguments, recursive), invert, stdin=stdin):
        if prediction.error == NO_IMAGE_FILES:
            empty += 1
            if as_json:
                out(json_line(prediction))
            else:
                hint = "" if recursive else " (--recursive reads its subfolders)"
                err(f"no image files in {prediction.path}{hint if _has_subfolders(prediction.path) else ''}")
            continue
        count += 1
        if prediction.error is not None:
            failures += 1
            if as_json:
                out(json_line(prediction))
            else:
                err(f"{prediction.path}: error: {prediction.error}")
            continue
        out(json_line(prediction) if as_json else plain_line(prediction, top_k))
        if not as_json:
            for warning in prediction.warnings:
                err(f"{prediction.path}: warning: {warning}")
            if not prediction.verdict.looks_like_a_digit:
                err(f"{prediction.path}: warning: {DOUBT_NOTE}{prediction.verdict.doubt}")
        if show:
            out(terminal_art(prediction.image))
    return count, failures, empty


def _has_subfolders(folder: str) -> bool:
    try:
        return any(entry.is_dir() and not entry.name.startswith(".") for entry in Path(folder).iterdir())
    except OSError:
        return False
