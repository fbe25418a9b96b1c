"""The models the page can switch between, and which one answers.

    GET  /api/models                 Models.listing()     checkpoints (and the textbook's JSON networks) in
                                                          --runs-dir and the working directory
    POST /api/models/select          Models.select(id)    serve another one (new requests use it)
    GET  /api/models/download?id=ID  Models.path_of(id)   the file, as an attachment
         ...&format=onnx             Models.onnx_of(id)   its best weights as ONNX (digitnet.export.onnx),
                                                          converted on request, kept while the file is unchanged

Networks kept from POST /api/teach/keep (``runs/taught-<model>-<n>.npz``) are listed like the others,
with "taught": what they were taught from and how many steps.

One bad file never breaks the listing: a file that reads but is not a usable model is listed with its
"error" (the page says why it cannot be used); one that cannot be read at all (a folder named x.npz, a
file that vanishes or cannot be opened, a loader failing outside ``CheckpointError``) and a ``.json`` that
is not a network are left out and named under "skipped": ``[{"file": "runs/x.npz", "reason": "..."}]``.

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
from digitnet.serve.api import ApiError, ModelError, Recogniser, _number_or_none

MAX_LISTED = 200  # files listed per folder (newest first): a folder of thousands stays quick
MAX_SKIPPED = 50  # files named under "skipped" per listing (a folder of junk stays a short answer)
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
        self._unreadable: dict[tuple[str, int, int], str] = {}  # (path, mtime_ns, size) -> why it is skipped
        self._onnx: dict[tuple[str, int, int], bytes] = {}  # (path, mtime_ns, size) -> ONNX file, newest first
        self._training_network: tuple[tuple, object] | None = None

    # -- listing --------------------------------------------------------------------------------

    def _files(self) -> dict[str, Path]:
        """id -> path for every checkpoint the page may name (listed, selected, downloaded)."""
        return self._scan()[0]

    def _scan(self) -> tuple[dict[str, Path], list[dict]]:
        """(id -> path of every listed file, [{"file": id, "reason": why}] of those left out)."""
        found: dict[str, Path] = {}
        skipped: list[dict] = []
        for folder, prefix in ((self.runs_dir, f"{self.runs_dir.name}/"), (self.workdir, "")):
            try:
                candidates = [p for p in folder.iterdir() if p.suffix in MODEL_SUFFIXES]
            except OSError:  # no such folder yet: list it next time
                continue
            entries = []
            for path in candidates:  # each file on its own: one that cannot be looked at hides no other
                try:
                    if not path.is_file():
                        why = "a folder, not a model file" if path.is_dir() else "not a regular file (a broken link?)"
                        skipped.append({"file": prefix + path.name, "reason": why})
                        continue
                    entries.append((path.stat().st_mtime, path))
                except OSError as e:  # removed while listing, a symlink to nowhere
                    skipped.append({"file": prefix + path.name, "reason": f"cannot read it: {e.strerror or e}"})
            entries.sort(key=lambda entry: entry[0], reverse=True)
            listed = 0
            for _, path in entries:
                if listed == MAX_LISTED:
                    break
                problem = self._unreadable_problem(path)
                if problem is not None:
                    skipped.append({"file": prefix + path.name, "reason": problem})
                    continue
                found.setdefault(prefix + path.name, path)
                listed += 1
        return found, skipped[:MAX_SKIPPED]

    def _unreadable_problem(self, path: Path) -> str | None:
        """Why ``path`` is left out of the listing, or None to list it: a ``.json`` that is not a network
        (report.json, settings, anything else: not a model, not downloadable), or a file whose reading
        failed outside ``CheckpointError`` (a ``.npz`` with a CheckpointError is listed with its "error")."""
        try:
            summary = self._summary(path)
        except OSError as e:  # removed since it was listed
            return f"cannot read it: {e.strerror or e}"
        if summary.get("unreadable"):
            return summary["unreadable"]
        if path.suffix == ".json" and "error" in summary:
            return f"not a network: {summary['error']}"[:300]
        return None

    def path_of(self, model_id) -> Path:
        if not isinstance(model_id, str):
            raise ApiError(400, 'name the model by its "id" from /api/models')
        path = self._files().get(model_id)
        if path is None:
            raise ApiError(404, f"no model {model_id[:100]!r} (see /api/models for the list)")
        return path

    def listing(self) -> dict:
        """{"models": [summary + "id", "served", "training"], "skipped": [{"file", "reason"}], "served",
        "runs_dir", "onnx"}: whatever is in the folders, a 200 (a file that breaks is named in "skipped")."""
        served = self.recogniser
        served_path = Path(served.model_name).resolve() if served is not None else None
        training_file = self.training.current_file() if self.training is not None else None
        training_path = training_file.resolve() if training_file is not None else None
        training_running = self.training is not None and self.training.running
        files, skipped = self._scan()
        models = []
        for model_id, path in files.items():
            try:
                summary = dict(self._summary(path), id=model_id)
                resolved = path.resolve()
            except OSError:  # removed since it was listed
                continue
            summary["served"] = served_path is not None and resolved == served_path
            summary["training"] = training_running and training_path is not None and resolved == training_path
            models.append(summary)
        return {"models": models, "skipped": skipped, "served": served.model_name if served is not None else None,
                "runs_dir": str(self.runs_dir), "onnx": importlib.util.find_spec("onnx") is not None}

    def _summary(self, path: Path) -> dict:
        """What the listing says of one file, made once per (path, mtime, size).  A CheckpointError gives
        {"name", "error", ...}; any other failure of the loader gives {"unreadable": why} (left out of
        the listing, named in "skipped"), so a loader bug costs one file, not the whole answer."""
        stat = path.stat()
        key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if key in self._summaries:
                return self._summaries[key]
        try:
            ckpt = checkpoint.load(path)
        except checkpoint.CheckpointError as e:
            summary = {"name": path.name, "error": str(e), "bytes": stat.st_size, "modified": stat.st_mtime}
        except Exception as e:  # noqa: BLE001 -- one file's loader bug must not answer 500 for the folder
            summary = {"unreadable": f"cannot be read as a model ({type(e).__name__}: {str(e)[:200]})"}
        else:
            summary = _summary_of(path, stat, ckpt)
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


def _summary_of(path: Path, stat: os.stat_result, ckpt: checkpoint.Checkpoint) -> dict:
    """A loaded checkpoint's line in the listing.  Metadata is untrusted: counts and accuracies are
    passed on only as plain numbers (else None)."""
    meta = ckpt.metadata
    hyper = meta.get("hyperparameters") if isinstance(meta.get("hyperparameters"), dict) else {}
    state = meta.get("state") if isinstance(meta.get("state"), dict) else None
    done, planned = _whole_or_none(meta.get("epochs_completed")), _whole_or_none(hyper.get("epochs"))
    return {
        "name": path.name, "bytes": stat.st_size, "modified": stat.st_mtime,
        "sizes": ckpt.network.sizes, "cost": ckpt.network.cost.name,
        "epochs_completed": done, "epochs": planned,
        "test_accuracy": _number_or_none(meta.get("test_accuracy")),
        "best_validation_accuracy": _number_or_none(meta.get("best_validation_accuracy")),
        "settings": {k: hyper[k] for k in ("learning_rate", "batch_size", "init", "l2", "augment", "seed")
                     if k in hyper},
        "resumable": state is not None and not meta.get("stopped") and done is not None,
        "complete": done is not None and planned is not None and done >= planned,
        "taught": _taught(meta.get("taught")),
    }


def _whole_or_none(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


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
