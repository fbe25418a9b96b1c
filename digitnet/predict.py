"""What `digitnet predict` does: expand the arguments into image files, read them, run the
network on them in batches, and format one answer per image (plain text or JSON lines).

Kept apart from cli/predict.py so it can be tested without the command line, and imported
only when the command runs (it pulls in numpy and Pillow).  With ``jobs`` > 1 and many files,
the files are read in worker processes (``_reading_pool``) and scored here, in the same batches.
"""

from __future__ import annotations

import ctypes
import functools
import io
import itertools
import json
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from digitnet import images
from digitnet.memory import keep_freed_memory
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
        # shares[digit], without the ten shares: the same sum (numpy's, over the ten) and division.
        total = float(self.scores.sum())
        return float(self.scores[self.digit]) / total if total > 0 else 1.0 / self.scores.size

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
                      scores=[round(s, 6) for s in self.scores.tolist()],
                      looks_like_a_digit=self.verdict.looks_like_a_digit)
        if not self.verdict.looks_like_a_digit:
            record["doubt"] = self.verdict.doubt
        if self.warnings:
            record["warnings"] = list(self.warnings)
        if with_input:
            record["input"] = np.round(self.image.reshape(28, 28).astype(np.float64), 4).tolist()
        return record

    def to_json(self, with_input: bool = False) -> str:
        """``json.dumps(self.to_dict(with_input), separators=(",", ":"))``, the same text, with the
        input's 784 numbers written from a table of the 10,001 four-decimal values rather than
        one float repr each (what the server answers: 0.24 -> 0.12 ms)."""
        pixels = _pixels_json(self.image) if with_input and self.error is None else None
        if with_input and self.error is None and pixels is None:  # a value the table does not hold
            return _COMPACT.encode(self.to_dict(with_input=True))
        text = _COMPACT.encode(self.to_dict())
        if pixels is None:
            return text
        return f'{text[:-1]},"input":{pixels}}}'  # "input" is the record's last key

    def top(self, k: int) -> list[tuple[int, float]]:
        """The k digits with the largest activations, with their shares, best first."""
        order = np.argsort(-self.scores, kind="stable")[:k]
        shares = self.shares
        return [(int(d), float(shares[d])) for d in order]


_COMPACT = json.JSONEncoder(separators=(",", ":"))  # json.dumps(..., separators=...) makes one a call


@functools.cache
def _pixel_texts() -> np.ndarray:
    """The JSON text of a pixel ``k / 10000`` (``repr``, as json.dumps writes a float) and what follows it in
    the 28x28 list, for k = 0 .. 10,000 at 10,001 x column's place (0: within a row, 1: a row's first,
    2: its last): "0.25,", "[0.25,", "0.25],", NUL-padded to 8 bytes, one uint64 each.  Built on first
    use (whole, then cached: two request threads at once may both build it, never see it half-built)."""
    table = bytearray(3 * 10001 * 8)  # written in place: a list of the 30,003 texts raised a server's peak by 5 MB
    for place, form in enumerate(("{},", "[{},", "{}],")):
        for k in range(10001):
            entry = form.format(repr(k / 10000)).encode()
            start = (place * 10001 + k) * 8
            table[start:start + len(entry)] = entry
    return np.frombuffer(bytes(table), np.uint64)


_PIXEL_PLACE = np.zeros(784, dtype=np.intp)  # each pixel's table of _pixel_texts: a row's first, last, else
_PIXEL_PLACE[0::28], _PIXEL_PLACE[27::28] = 10001, 20002


def _pixels_json(image: np.ndarray) -> str | None:
    """The JSON of ``np.round(image.reshape(28, 28).astype(np.float64), 4).tolist()``, or None when a
    value is outside [0, 1] or a negative zero (then json.dumps writes it).  np.round(x, 4) is
    rint(x * 10**4) / 10**4, and that double's repr is the shortest text that reads back as it:
    ``repr(k / 10000)``.  The 784 texts are looked up at once and their padding dropped (a Python
    string each, joined row by row, took 50 us; this 23)."""
    scaled = np.rint(image.astype(np.float64).ravel() * 10000)
    if scaled.size != 784 or not (0 <= scaled.min() and scaled.max() <= 10000) or np.signbit(scaled).any():
        return None
    index = scaled.astype(np.intp)
    index += _PIXEL_PLACE
    characters = _pixel_texts().take(index).view(np.uint8)
    return "[" + characters[characters != 0].tobytes()[:-1].decode("ascii") + "]"  # the last row's "," dropped


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
            images.open_picture(path if source is None else source), invert)
        return Prediction(path, image=image, warnings=notes, verdict=verdict)
    except images.ImageError as e:
        return Prediction(path, error=e.reason)
    except MemoryError:
        return Prediction(path, error="out of memory while reading the image")


def predict_files(network: Network, inputs: Iterable[tuple[str, str | None]], invert: str = "auto",
                  batch_size: int = BATCH_SIZE, stdin: Callable[[], bytes] | None = None,
                  jobs: int = 1) -> Iterator[Prediction]:
    """Predictions in input order; the images of each batch go through the network in one call.
    With ``stdin`` (it returns the bytes of standard input), the path ``-`` is the picture read from it.
    With ``jobs`` > 1 and at least ``POOL_THRESHOLD`` files, ``jobs`` processes read them (``read_inputs``):
    the answers are the same, to the bit (the network still runs here, on the same batches)."""
    batch: list[Prediction] = []
    with closing(read_inputs(inputs, invert, stdin, jobs)) as read:
        for prediction in read:
            batch.append(prediction)
            if len(batch) == batch_size:
                yield from _score(network, batch)
                batch = []
    yield from _score(network, batch)


# Measured (docs/predict.md, "Speed"): starting and stopping a pool of 2 costs 10-14 ms and handing a
# file's answer back 30-60 us; on 2 quiet cores two processes took 1.03x the time of one on 8 files,
# 0.89x on 16, 0.81x on 32, 0.64x on 64, 0.55x on 256 (2.5-4.5 ms a file).
POOL_THRESHOLD = 32


def read_inputs(inputs: Iterable[tuple[str, str | None]], invert: str = "auto",
                stdin: Callable[[], bytes] | None = None, jobs: int = 1) -> Iterator[Prediction]:
    """The unscored Prediction of every input, in order: read here, or in ``jobs`` worker processes
    when there are at least ``POOL_THRESHOLD`` files to read (standard input is read here either way).
    If a worker dies (killed, out of memory, a decoder crashing), the files not yet answered are read
    here, one after the other, as with ``jobs`` 1: the same answers, or the same fate."""
    tasks = ((path, error, _stdin_bytes(path, error, stdin)) for path, error in inputs)  # stdin read in turn
    if jobs > 1:
        tasks = list(tasks)
    files = sum(1 for _, error, _ in tasks if not error) if jobs > 1 else 0
    done = 0
    if files >= POOL_THRESHOLD:
        try:
            # Chunks of a few files: each hand-over costs a pickled message, and several chunks per
            # worker keep the last ones from leaving one worker alone at the end.
            with _reading_pool(min(jobs, files), invert, tasks, max(1, min(16, files // (jobs * 8)))) as answers:
                for answer in answers:
                    yield answer
                    done += 1
            return
        except (BrokenProcessPool, OSError):  # a worker died, or none could start (fork refused)
            pass
    for task in itertools.islice(tasks, done, None):
        yield _prepare(task, invert)


def _stdin_bytes(path: str, error: str | None, stdin: Callable[[], bytes] | None) -> bytes | None:
    return stdin() if path == STDIN and stdin is not None and not error else None


def _prepare(task: tuple[str, str | None, bytes | None], invert: str) -> Prediction:
    """One input's unscored Prediction: its error, the picture from standard input, or the file read."""
    path, error, data = task
    if error:
        return Prediction(path, error=error)
    if data is not None:
        return _read_bytes(data, invert)
    return _read(path, invert)


_worker_invert = "auto"  # in a reading worker: predict --invert
_worker_blas = None  # in a spawned reading worker: its BLAS thread limit, kept


def _prepare_in_worker(task: tuple[str, str | None, bytes | None]) -> Prediction:
    return _prepare(task, _worker_invert)


def _start_reader(invert: str, parent: int, limit_blas: bool) -> None:
    """A reading worker's set-up: --invert; Ctrl-C is the parent's to handle (it stops the pool);
    one BLAS thread (when not inherited, ``_reading_pool``); and on Linux the worker dies with the
    parent (a SIGKILL or SIGTERM to ``predict`` leaves no orphan)."""
    global _worker_invert, _worker_blas
    _worker_invert = invert
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    keep_freed_memory()  # forked workers inherit it; spawned ones need it (memory.py)
    if limit_blas:
        from threadpoolctl import threadpool_limits

        _worker_blas = threadpool_limits(limits=1, user_api="blas")
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
        if os.getppid() != parent:  # the parent died before the line above
            os._exit(1)


@contextmanager
def _reading_pool(jobs: int, invert: str, tasks: list, chunksize: int) -> Iterator[Iterator[Prediction]]:
    """``_prepare_in_worker`` of every task, in order, from ``jobs`` reading processes, which are
    stopped (terminated) when the block ends, however it ends (Ctrl-C, the reader of the output gone).

    Forked on Linux (a fork costs ~10 ms; a spawned worker would import numpy and Pillow again, ~0.3 s),
    spawned elsewhere.  The workers are born ignoring Ctrl-C (they are forked in ``map``), so that
    only this process sees it; concurrent.futures, not multiprocessing.Pool, because a Pool whose
    worker dies waits for ever for the lost task, where an executor raises BrokenProcessPool.
    BLAS runs on one thread meanwhile, here and in the workers (forked with the limit): the
    paper fit's small products do not need more, and OpenBLAS's spinning threads took the other
    worker's core (the pool used 0.7-0.8 s more CPU on the 1,000 PNGs without the limit; see
    training.single_threaded_blas for the same effect in training)."""
    from threadpoolctl import threadpool_limits  # imported here: `predict` on a few files does without

    method = "fork" if sys.platform.startswith("linux") else "spawn"
    with threadpool_limits(limits=1, user_api="blas"):
        executor = ProcessPoolExecutor(jobs, multiprocessing.get_context(method), _start_reader,
                                       (invert, os.getpid(), method != "fork"))
        try:
            main = threading.current_thread() is threading.main_thread()  # signal.signal works only there
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
            try:
                answers = executor.map(_prepare_in_worker, tasks, chunksize=chunksize)
            finally:
                if main:
                    signal.signal(signal.SIGINT, previous)
            yield answers
        finally:
            _stop_readers(executor)


def _stop_readers(executor: ProcessPoolExecutor) -> None:
    """Terminate the workers now (shutdown alone would let them finish every file first)."""
    processes = list((getattr(executor, "_processes", None) or {}).values())  # terminate_workers() from 3.14
    manager = getattr(executor, "_executor_manager_thread", None)
    executor.shutdown(wait=False, cancel_futures=True)  # (which forgets the processes and the thread)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join()
    # The executor's thread closes its wake-up pipe as it ends; if it were still ending at exit,
    # Python's exit hook could write to that pipe as it closed ("Exception ignored ... Bad file
    # descriptor", seen once in about 50 runs on Python 3.11).  With its workers gone it ends at once.
    if manager is not None:
        manager.join(timeout=5)


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
        err: Callable[[str], None] = print, stdin: Callable[[], bytes] | None = None,
        jobs: int = 1) -> tuple[int, int, int]:
    """Predict every image and print one answer per image; return (images, failures, empty folders).
    With ``stdin``, the argument ``-`` is the picture on standard input; with ``jobs`` > 1, many
    files are read by that many processes (``predict_files``): the output is the same.

    Answers go to ``out`` as they are ready (a batch at a time).  In JSON mode
    an image that cannot be used is a {"path", "error"} line on ``out``; in
    plain mode its message, and any warning, goes to ``err``.  A folder with
    no image files is reported (``no image files in DIR``) but is not an image.
    """
    answers = predict_files(network, expand_inputs(arguments, recursive), invert, stdin=stdin, jobs=jobs)
    with closing(answers):  # a reader gone or Ctrl-C: the pool stops now, not when garbage is collected
        count, failures, empty = _print_all(answers, as_json, top_k, show, recursive, out, err)
    return count, failures, empty


def _print_all(answers: Iterable[Prediction], as_json: bool, top_k: int, show: bool, recursive: bool,
               out: Callable[[str], None], err: Callable[[str], None]) -> tuple[int, int, int]:
    """``run``'s printing: each answer as it comes; (images, failures, empty folders)."""
    count = failures = empty = 0
    for prediction in answers:
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
