"""What the server's JSON routes do, without any HTTP: bytes in, a dict out, or an ApiError.

    POST /api/predict    Recogniser.predict(body)   the same preprocessing and numbers as `predict --json`
                         (predict_json(body): that answer as the bytes the route sends)
    GET  /api/model      Recogniser.model_info()    what the model panel shows
    POST /api/evaluate   Recogniser.evaluate()      accuracy on the MNIST test split, one run at a time
    (read_upload: the upload as /api/predict reads it, for /api/explain and /api/teach in inside.py)

The network is only read after loading (``Network.feedforward`` allocates its
own arrays), so any number of request threads may call ``predict`` at once.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from digitnet import data, metrics, predict
from digitnet.checkpoint import Checkpoint, digit_reader_problem
from digitnet.network import Network
from digitnet.serve.workers import PredictionPool

TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


class ApiError(Exception):
    """A request the API answers with an error: ``status`` and a one-line ``message`` for the user."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class ModelError(Exception):
    """The model cannot be served (wrong shape); raised before the server starts."""


class Recogniser:
    """One loaded model and the data folder its Test button measures on."""

    def __init__(self, ckpt: Checkpoint, model_name: str, weights: str = "best", data_dir=None):
        network, used = ckpt.weights(weights)
        problem = digit_reader_problem(network, model_name)
        if problem:
            raise ModelError(problem)
        self.network = network
        self.checkpoint = ckpt
        self.model_name = model_name
        self.weights = used
        self.data_dir = data.resolve_data_dir(data_dir)
        self._evaluating = threading.Lock()
        self._test_split: data.Split | None = None  # read once, on the first Test
        self.pool: PredictionPool | None = None  # predictions run in the request's thread until start_workers

    def start_workers(self, processes: int) -> None:
        """Compute predictions in ``processes`` worker processes (serve --workers), once they have started."""
        if processes > 0 and self.pool is None:
            self.pool = PredictionPool(self.network, processes)

    def close(self) -> None:
        """Stop the worker processes, if any."""
        if self.pool is not None:
            self.pool.close()

    # -- POST /api/predict ------------------------------------------------------------------

    def predict(self, body: bytes) -> dict:
        """{"digit", "confidence", "scores", "looks_like_a_digit"[, "doubt"], "input"} for an image file's bytes
        (``predict.Prediction.to_dict``); 400 when unusable."""
        return predict_image(self.network, body, self.pool)

    def predict_json(self, body: bytes) -> bytes:
        """``predict``'s answer as the JSON the route sends (``Prediction.to_json``: the same bytes as
        json.dumps of the dict, written faster)."""
        if self.pool is None:
            return read_upload(self.network, body).to_json(with_input=True).encode()
        text, error = self.pool.predict_json(body)
        if error is not None:
            raise ApiError(400, error)
        return text

    @property
    def learning_rate(self) -> float | None:
        """The training --eta the checkpoint records (None for a textbook JSON network): /api/teach's default."""
        hyper = self.checkpoint.metadata.get("hyperparameters")
        return _number_or_none(hyper.get("learning_rate")) if isinstance(hyper, dict) else None

    # -- GET /api/model ---------------------------------------------------------------------

    def model_info(self) -> dict:
        """What the model panel shows: architecture, cost, training, recorded test accuracy."""
        meta = self.checkpoint.metadata
        hyper = meta.get("hyperparameters") if isinstance(meta.get("hyperparameters"), dict) else {}
        if self.weights == "best" and self.checkpoint.best_network is not None:
            recorded, epoch = meta.get("test_accuracy"), meta.get("best_epoch")
        else:
            recorded = meta.get("test_accuracy_last_epoch", meta.get("test_accuracy"))
            epoch = meta.get("epochs_completed")
        return {
            "file": Path(self.model_name).name,
            "format": meta.get("source") or "digitnet checkpoint (.npz)",
            "sizes": self.network.sizes,
            "activation": "sigmoid",
            "cost": self.network.cost.name,
            "dtype": self.network.dtype.name,
            "weights": self.weights,
            "epoch": _number_or_none(epoch),
            "epochs": _number_or_none(meta.get("epochs_completed")),
            "learning_rate": self.learning_rate,
            "batch_size": _number_or_none(hyper.get("batch_size")),
            "test_accuracy": _number_or_none(recorded),
            "test_data": self.test_data_present(),
        }

    # -- POST /api/evaluate -----------------------------------------------------------------

    def test_data_present(self) -> bool:
        return all(data.find_file(self.data_dir, name) is not None for name in TEST_FILES)

    def evaluate(self) -> dict:
        """Accuracy of the served network on the 10,000 MNIST test images; one run at a time (409)."""
        if not self._evaluating.acquire(blocking=False):
            raise ApiError(409, "a test is already running; wait for its result")
        try:
            if self._test_split is None:
                if not self.test_data_present():
                    raise ApiError(503, f"the MNIST test files are not in {self.data_dir}: run "
                                        "`digitnet download` (or start the server with --data-dir DIR)")
                try:
                    images, labels = data.load_pair(self.data_dir, "t10k")
                except data.DataError as e:
                    raise ApiError(503, str(e)) from None
                self._test_split = data.Split("test", images, labels)
            split = self._test_split
            start = time.perf_counter()
            correct = int(np.sum(metrics.predictions(self.network, split) == split.labels))
            return {"split": "test", "accuracy": correct / len(split), "correct": correct,
                    "total": len(split), "seconds": round(time.perf_counter() - start, 3)}
        finally:
            self._evaluating.release()


def predict_image(network: Network, body: bytes, pool=None) -> dict:
    """What /api/predict answers for an image file's bytes with ``network`` (in ``pool``'s worker
    processes if given, else in this thread); 400 when unusable."""
    return read_upload(network, body, pool).to_dict(with_input=True)


def read_upload(network: Network, body: bytes, pool=None) -> predict.Prediction:
    """An upload read as /api/predict reads it (the routes that look inside the network use the same):
    ``.image`` is the 784 inputs fed to ``network``, ``.warnings`` the notes, and
    ``.to_dict(with_input=True)["input"]`` the 28x28 it answers with; 400 with predict's message when unusable."""
    if not body:
        raise ApiError(400, "empty body: send the bytes of an image file (PNG, JPEG, ...)")
    prediction = pool.predict(body) if pool is not None else predict.predict_bytes(network, body)
    if prediction.error is not None:
        raise ApiError(400, prediction.error)
    return prediction


def _number_or_none(value):
    """Metadata is untrusted: pass on plain numbers only."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
