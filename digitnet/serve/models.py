"""The models the page can switch between, and which one answers.

    GET  /api/models                 Models.listing()     checkpoints (and the textbook's JSON networks) in
                                                          --runs-dir and the working directory
    POST /api/models/select          Models.select(id)    serve another one (new requests use it)
    GET  /api/models/download?id=ID  Models.path_of(id)   the file, as an attachment
         ...&format=onnx             Models.onnx_of(id)   its best weights as ONNX (digitnet.export.onnx),
                                                          converted on request, kept while the file is unchanged

Networks kept from POST /api/teach/keep (``runs/taught-<model>-<n>.npz``) are listed like the others,
with "taught": what they were taught from and how many steps.

A model is named by the id the listing gave it (``runs/2026-11-29_00-15-03.npz``, ``model.npz``);
an id is only ever looked up in a fresh listing, so the client cannot name a path of its own.
The served ``Recogniser`` is replaced whole: a request holds the one it started with and finishes
with it.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path

from digitnet import checkpoint
from digitnet.serve.api import ApiError, ModelError, Recogniser

MAX_LISTED = 200  # files listed per folder (newest first): a folder of thousands stays quick
MODEL_SUFFIXES = (".npz", ".json")  # .json: network2.py's save(), which textbook readers have
ONNX_CACHED = 4  # ONNX conversions kept (a 784-800-10 network is 2.5 MB of ONNX)


class Models:
    def __init__(self, recogniser: Recogniser | None, runs_dir: str | os.PathLike = "runs",
                 workdir: str | os.PathLike = ".", data_dir=None, training=None, workers: int = 0):
        self.recogniser = recogniser
        self.runs_dir = Path(runs_dir)
        self.workdir = Path(workdir)
        self.data_dir = data_dir
        self.training = training
        self.workers = workers  # serve --workers: each served model gets its own prediction processes
        self._lock = threading.Lock()
        self._summaries: dict[tuple[str, int, int], dict] = {}  # (path, mtime_ns, size) -> summary
        self._onnx: dict[tuple[str, int, int], bytes] = {}  # (path, mtime_ns, size) -> ONNX file, newest first
        self._training_network: tuple[tuple, object] | None = None

    # -- listing --------------------------------------------------------------------------------

    def _files(self) -> dict[str, Path]:
        """id -> path for every checkpoint the page may name (listed, selected, downloaded)."""
        found: dict[str, Path] = {}
        for folder, prefix in ((self.runs_dir, f"{self.runs_dir.name}/"), (self.workdir, "")):
            try:
                entries = [(p.stat().st_mtime, p) for p in folder.iterdir() if p.suffix in MODEL_SUFFIXES
                           and p.is_file()]
            except OSError:  # no such folder yet, or a file removed while listing: list it next time
                continue
            entries.sort(key=lambda entry: entry[0], reverse=True)
            listed = 0
            for _, path in entries:
                if listed == MAX_LISTED:
                    break
                if path.suffix == ".json" and not self._is_network(path):
                    continue  # report.json, settings, anything else: not a model, not downloadable
                found.setdefault(prefix + path.name, path)
                listed += 1
        return found

    def _is_network(self, path: Path) -> bool:
        try:
            return "error" not in self._summary(path)
        except OSError:
            return False

    def path_of(self, model_id) -> Path:
        if not isinstance(model_id, str):
            raise ApiError(400, 'name the model by its "id" from /api/models')
        path = self._files().get(model_id)
        if path is None:
            raise ApiError(404, f"no model {model_id[:100]!r} (see /api/models for the list)")
        return path

    def listing(self) -> dict:
        served = self.recogniser
        served_path = Path(served.model_name).resolve() if served is not None else None
        training_file = self.training.current_file() if self.training is not None else None
        training_running = self.training is not None and self.training.running
        models = []
        for model_id, path in self._files().items():
            try:
                summary = dict(self._summary(path), id=model_id)
            except OSError:  # removed since it was listed
                continue
            summary["served"] = served_path is not None and path.resolve() == served_path
            summary["training"] = (training_running and training_file is not None
                                   and path.resolve() == training_file.resolve())
            models.append(summary)
        return {"models": models, "served": served.model_name if served is not None else None,
                "runs_dir": str(self.runs_dir), "onnx": importlib.util.find_spec("onnx") is not None}

    def _summary(self, path: Path) -> dict:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if key in self._summaries:
                return self._summaries[key]
        try:
            ckpt = checkpoint.load(path)
        except checkpoint.CheckpointError as e:
            summary = {"name": path.name, "error": str(e), "bytes": stat.st_size, "modified": stat.st_mtime}
        else:
            meta = ckpt.metadata
            hyper = meta.get("hyperparameters") if isinstance(meta.get("hyperparameters"), dict) else {}
            state = meta.get("state") if isinstance(meta.get("state"), dict) else None
            done, planned = meta.get("epochs_completed"), hyper.get("epochs")
            summary = {
                "name": path.name, "bytes": stat.st_size, "modified": stat.st_mtime,
                "sizes": ckpt.network.sizes, "cost": ckpt.network.cost.name,
                "epochs_completed": done, "epochs": planned,
                "test_accuracy": meta.get("test_accuracy"),
                "best_validation_accuracy": meta.get("best_validation_accuracy"),
                "settings": {k: hyper[k] for k in ("learning_rate", "batch_size", "init", "l2", "augment", "seed")
                             if k in hyper},
                "resumable": state is not None and not meta.get("stopped") and isinstance(done, int),
                "complete": isinstance(done, int) and isinstance(planned, int) and done >= planned,
                "taught": _taught(meta.get("taught")),
            }
        with self._lock:
            self._summaries[key] = summary
        return summary

    def onnx_of(self, model_id) -> tuple[bytes, str]:
        """The model's best weights as an ONNX file, and the file's name (``model.onnx`` for ``model.npz``):
        400 for a file that is not a usable model, 501 when the onnx package is not installed."""
        from digitnet.export import ExportError
        from digitnet.export.onnx import to_onnx

        path = self.path_of(model_id)
        try:
            stat = path.stat()
        except OSError as e:  # removed since it was listed
            raise ApiError(404, f"cannot read {path.name}: {e.strerror or e}") from None
        key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
        with self._lock:
            cached = self._onnx.get(key)
        if cached is None:
            try:
                ckpt = checkpoint.load(path)
                network, used = ckpt.weights("best")
                cached = to_onnx(network, ckpt.metadata, used).SerializeToString()
            except checkpoint.CheckpointError as e:
                raise ApiError(400, str(e)) from None
            except ExportError as e:
                raise ApiError(501, str(e)) from None
            with self._lock:
                older = [item for item in self._onnx.items() if item[0] != key][:ONNX_CACHED - 1]
                self._onnx = dict([(key, cached), *older])
        return cached, path.stem + ".onnx"

    # -- switching ------------------------------------------------------------------------------

    def select(self, model_id, weights: str = "best") -> dict:
        if weights not in ("best", "last"):
            raise ApiError(400, f"weights must be best or last, got {str(weights)[:40]!r}")
        path = self.path_of(model_id)
        try:
            recogniser = Recogniser(checkpoint.load(path), str(path), weights, self.data_dir)
        except (checkpoint.CheckpointError, ModelError) as e:
            raise ApiError(400, str(e)) from None
        recogniser.start_workers(self.workers)
        old, self.recogniser = self.recogniser, recogniser  # requests in flight keep the one they hold
        if old is not None and old.pool is not None:
            # Its worker processes go once the requests that hold it are done (each has a 10 s timeout).
            closer = threading.Timer(30.0, old.close)
            closer.daemon = True
            closer.start()
        return recogniser.model_info()

    def training_network(self):
        """The newest complete epoch of the run going (or last run): its last weights, reloaded
        when the file changes.  409 before its first epoch is saved."""
        path = self.training.current_file() if self.training is not None else None
        if path is None:
            raise ApiError(409, "the run has not saved an epoch yet: wait for the first one to finish")
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        cached = self._training_network
        if cached is not None and cached[0] == key:
            return cached[1]
        try:
            network = checkpoint.load(path).network
        except checkpoint.CheckpointError as e:
            raise ApiError(409, f"the run's checkpoint cannot be read right now: {e}") from None
        self._training_network = (key, network)
        return network


def _taught(record) -> dict | None:
    """A network kept from POST /api/teach/keep: {"from": file, "steps": n, "labels": [...]} (metadata is
    untrusted: plain values only), or None for a trained one."""
    if not isinstance(record, dict):
        return None
    labels = record.get("labels") if isinstance(record.get("labels"), list) else []
    steps = record.get("steps")
    return {"from": str(record.get("from", ""))[:200],
            "steps": steps if isinstance(steps, int) and not isinstance(steps, bool) else None,
            "labels": [d for d in labels[-100:] if isinstance(d, int) and not isinstance(d, bool)]}
