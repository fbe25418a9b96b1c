"""What the inside-the-network routes do, without any HTTP: bytes and query fields in, a dict out, or an ApiError.

    POST /api/explain?digit=D&off=1:4&session=S   Inside.explain(recogniser, body, query)
    GET  /api/explain/weights.png?session=S        Inside.atlas(recogniser, query) -> WeightAtlas
    POST /api/teach?label=L&eta=E&session=S        Inside.teach(recogniser, body, query)
    POST /api/teach/keep     {"session": S}         Inside.keep(recogniser, body) -> {"name", "id"}
    POST /api/teach/forget   {"session": S}         Inside.forget(body) -> {"forgotten"}

The numbers are ``digitnet.inside``'s (explain, teach, weight_atlas) on the input /api/predict
feeds the network for the same upload (``api.read_upload``), so the answer minus "input" and
"notes" is ``Explanation.to_dict()`` to the last digit, as `digitnet explain --json` prints it.

A taught network lives in a session (an unguessable id from ``secrets.token_urlsafe``) that holds
the copy and how it was taught.  Bounds: at most ``MAX_SESSIONS`` sessions and ``MAX_SESSION_BYTES``
of their weights and biases; a new session that does not fit drops the least recently used ones
first (the page in front of the user is the newest; a tab left open elsewhere loses its copy and is
told so when it comes back).  A session belongs to the model it was taught from: once the page
serves another model it answers 409 (and is dropped).  The served network and its file are never
written: ``inside.teach`` steps a scratch copy, and ``keep`` writes a new file in the runs folder.
"""

from __future__ import annotations

import hashlib
import io
import re
import secrets
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from digitnet import checkpoint, inside
from digitnet.atomic import WriteError
from digitnet.network import Network
from digitnet.serve.api import ApiError, Recogniser, read_upload

MB = 1024 * 1024
MAX_SESSIONS = 8
# Weights and biases of all sessions' networks (a 784-800-10 float32 copy is 2.5 MB, a 784-4096-10
# one, the largest the page trains, 13 MB).  inside.teach hands back copies without backprop's
# buffers; explaining a copy adds inside's float64 copy of it (twice its float32 bytes) while it lives.
MAX_SESSION_BYTES = 256 * MB
MAX_GONE = 64          # ids of dropped sessions remembered, to say why they are gone
MAX_ETA = 1000.0
DEFAULT_ETA = 3.0      # the textbook's chapter-1 eta, for models that do not record theirs
MAX_RECORDED = 1000    # labels and etas kept in a kept network's metadata (the newest; "steps" counts all)
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
TAUGHT_NAME = re.compile(r"taught-(.+)-\d+")
MODEL_CHANGED = "it was taught from a model the page no longer serves: teach again to start a new session"


def network_bytes(network: Network) -> int:
    """What a session's network counts towards MAX_SESSION_BYTES: its weights and biases."""
    return sum(w.nbytes + b.nbytes for w, b in zip(network.weights, network.biases))


def atlas_png(network: Network) -> tuple[bytes, int]:
    """(PNG bytes, columns): ``inside.weight_atlas`` as a grayscale PNG (mode "L", one byte a pixel)."""
    pixels, columns = inside.weight_atlas(network)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, "PNG")
    return buffer.getvalue(), columns


@dataclass
class Session:
    """One taught copy: the model it came from, the network after its last step, and its steps."""

    id: str
    recogniser: Recogniser
    network: Network
    labels: list[int] = field(default_factory=list)
    etas: list[float] = field(default_factory=list)
    steps: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)  # one step at a time on this copy


@dataclass(frozen=True)
class WeightAtlas:
    """GET /api/explain/weights.png: the atlas as a PNG, its column count and an ETag."""

    png: bytes
    columns: int
    etag: str


class Inside:
    """The sessions of taught networks (thread-safe: a lock around the table, one per session)."""

    def __init__(self, runs_dir: str | Path = "runs", max_sessions: int = MAX_SESSIONS,
                 max_bytes: int = MAX_SESSION_BYTES):
        self.runs_dir = Path(runs_dir)
        self.max_sessions = max_sessions
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._sessions: OrderedDict[str, Session] = OrderedDict()  # least recently used first
        self._gone: OrderedDict[str, tuple[int, str]] = OrderedDict()  # dropped id -> (status, why)
        self._atlases: weakref.WeakKeyDictionary[Network, WeightAtlas] = weakref.WeakKeyDictionary()
        self._keeping = threading.Lock()  # choosing a free name and writing it, one keep at a time

    # -- the routes -----------------------------------------------------------------------------

    def explain(self, recogniser: Recogniser, body: bytes, query: dict[str, str]) -> dict:
        """Explanation.to_dict() for the upload, plus "input" and "notes" as /api/predict gives them."""
        network = self._network(recogniser, query)
        upload = read_upload(recogniser.network, body)
        try:  # inside checks digit (0-9) and off (units the network has) and names them
            explanation = inside.explain(network, upload.image, digit=query.get("digit") or None,
                                         off=query.get("off", ""))
        except inside.InsideError as e:
            raise _bad_field(e) from None
        return dict(explanation.to_dict(), **_seen(upload))

    def atlas(self, recogniser: Recogniser, query: dict[str, str]) -> WeightAtlas:
        """The first layer's weight atlas of the served model (or the session's copy), cached per network."""
        network = self._network(recogniser, query)
        with self._lock:
            cached = self._atlases.get(network)
        if cached is None:
            try:
                png, columns = atlas_png(network)
            except inside.InsideError as e:  # a 784-10 network: no hidden layer to draw
                raise ApiError(409, str(e)) from None
            cached = WeightAtlas(png, columns, '"' + hashlib.sha256(png).hexdigest()[:24] + '"')
            with self._lock:
                self._atlases[network] = cached
        return cached

    def teach(self, recogniser: Recogniser, body: bytes, query: dict[str, str]) -> dict:
        """One step of gradient descent on the upload with ``label``, on the session's copy (a new session
        from the served model when ``session`` is absent or unknown): TaughtStep.to_dict() plus
        "session", "steps", "input", "notes"."""
        label = query.get("label")
        if not label:
            raise ApiError(400, "label is required: the digit 0-9 the drawing shows")
        eta = _eta(query.get("eta"), recogniser)
        wanted = _session_id(query)
        upload = read_upload(recogniser.network, body)
        session = self._session(recogniser, wanted, required=False) if wanted else None
        new = session is None
        if new:
            self._refuse_if_too_big(recogniser.network)
            session = Session(secrets.token_urlsafe(16), recogniser, recogniser.network)
        with session.lock:
            try:
                step = inside.teach(session.network, upload.image, label, eta)
            except inside.InsideError as e:  # label (0-9), eta (a number > 0), named as typed
                raise _bad_field(e) from None
            session.network = step.network
            session.steps += 1
            session.labels = (session.labels + [step.label])[-MAX_RECORDED:]
            session.etas = (session.etas + [step.eta])[-MAX_RECORDED:]
            steps = session.steps
        self._store(session, new)
        return dict(step.to_dict(), session=session.id, steps=steps, **_seen(upload))

    def keep(self, recogniser: Recogniser, body: dict) -> dict:
        """Write the session's copy into the runs folder as ``taught-<model stem>-<n>.npz`` (n the next
        free number), atomically; the served model's file is not touched."""
        session = self._session(recogniser, _session_id(body), required=True)
        with session.lock:
            network, metadata = session.network, _metadata(session)
        stem = Path(recogniser.model_name).stem
        stem = _safe_stem(TAUGHT_NAME.fullmatch(stem).group(1) if TAUGHT_NAME.fullmatch(stem) else stem)
        with self._keeping:
            try:
                self.runs_dir.mkdir(parents=True, exist_ok=True)
                path = _next_free(self.runs_dir, stem)
                checkpoint.save(path, network, metadata)
            except WriteError as e:
                raise ApiError(507, str(e)) from None
            except OSError as e:
                raise ApiError(507, f"cannot write into the runs folder {self.runs_dir}: {e.strerror or e}") from None
        return {"name": path.name, "id": f"{self.runs_dir.name}/{path.name}", "steps": metadata["taught"]["steps"]}

    def forget(self, body: dict) -> dict:
        """Drop the session's copy; {"forgotten": false} when there was none (already dropped)."""
        wanted = _session_id(body, required=True)
        with self._lock:
            session = self._sessions.pop(wanted, None)
            if session is not None:
                self._remember(wanted, "it was forgotten")
        return {"forgotten": session is not None}

    def sessions(self) -> list[str]:
        """The ids of the sessions alive, least recently used first (for tests and the benchmark)."""
        with self._lock:
            return list(self._sessions)

    # -- the table ------------------------------------------------------------------------------

    def _network(self, recogniser: Recogniser, query: dict) -> Network:
        """The session's copy when the query names one, else the served model's network."""
        wanted = _session_id(query)
        return self._session(recogniser, wanted, required=True).network if wanted else recogniser.network

    def _session(self, recogniser: Recogniser, wanted: str | None, required: bool) -> Session | None:
        """The session ``wanted`` (marked as just used); 409 when taught from a model no longer served,
        400 when unknown (or dropped) and ``required``, else None: the caller starts a new one."""
        with self._lock:
            session = self._sessions.get(wanted)
            if session is not None and session.recogniser is not recogniser:
                del self._sessions[wanted]
                self._remember(wanted, MODEL_CHANGED)
                raise ApiError(409, f"session: {wanted!r} was taught from {Path(session.recogniser.model_name).name}, "
                                    "which the page no longer serves: teach again to start a new session")
            if session is not None:
                self._sessions.move_to_end(wanted)
                return session
            status, why = self._gone.get(wanted, (400, "it was never started, or the server restarted"))
            if required or status == 409:  # a model switch is said, even where a new session could start
                raise ApiError(status, f"session: no taught network {wanted!r} ({why})")
            return None

    def _refuse_if_too_big(self, network: Network) -> None:
        """507 when a copy of ``network`` would not fit in MAX_SESSION_BYTES even alone."""
        if network_bytes(network) > self.max_bytes:
            raise ApiError(507, f"this network's weights are {network_bytes(network) / MB:.0f} MB, over the "
                                f"{self.max_bytes / MB:.0f} MB the server keeps for taught networks")

    def _store(self, session: Session, new: bool) -> None:
        """Put a session taught one more step back in the table, as the most recently used.  A new one
        first makes room: sessions of models no longer served go, then the least recently used, until
        it fits both bounds (dropping, not refusing: the newest session is the one a user is looking at)."""
        with self._lock:
            if session.id in self._gone:
                return  # dropped while it was being taught: it stays dropped
            if new:
                for sid, other in list(self._sessions.items()):
                    if other.recogniser is not session.recogniser:
                        del self._sessions[sid]
                        self._remember(sid, MODEL_CHANGED)
                total = sum(network_bytes(s.network) for s in self._sessions.values())
                needed = network_bytes(session.network)
                while self._sessions and (len(self._sessions) >= self.max_sessions
                                          or total + needed > self.max_bytes):
                    sid, dropped = self._sessions.popitem(last=False)
                    total -= network_bytes(dropped.network)
                    self._remember(sid, f"at most {self.max_sessions} taught networks are kept and it was "
                                        "the least recently used")
            self._sessions[session.id] = session
            self._sessions.move_to_end(session.id)

    def _remember(self, sid: str, why: str) -> None:
        """Note why ``sid`` was dropped, for the answer to its next request (409 after a model switch)."""
        self._gone[sid] = (409 if why == MODEL_CHANGED else 400, why)
        while len(self._gone) > MAX_GONE:
            self._gone.popitem(last=False)


# -- the fields ---------------------------------------------------------------------------------


def _bad_field(error: inside.InsideError) -> ApiError:
    """inside's one-line message, naming the query field (digit, off) where the CLI's says --digit, --off."""
    message = str(error)
    for option in ("--digit", "--off"):
        if message.startswith(option):
            message = option[2:] + message[len(option):]
    return ApiError(400, message)


def _eta(text: str | None, recogniser: Recogniser):
    """``eta``: by default the model's training --eta, else DEFAULT_ETA; at most MAX_ETA (inside.teach
    checks the rest: a finite number above 0)."""
    if text is None or text == "":
        return recogniser.learning_rate or DEFAULT_ETA
    try:
        too_big = float(text) > MAX_ETA
    except ValueError:
        too_big = False
    if too_big:
        raise ApiError(400, f"eta must be at most {MAX_ETA:g}, got {text[:40]!r}")
    return text


def _session_id(fields: dict, required: bool = False) -> str | None:
    """``session``: an id /api/teach gave (None when absent and not required); 400 naming the field."""
    value = fields.get("session")
    if value is None or value == "":
        if required:
            raise ApiError(400, 'session is required: the "session" /api/teach answered with')
        return None
    if not isinstance(value, str) or not SESSION_ID.fullmatch(value):
        raise ApiError(400, f"session must be an id /api/teach gave, got {str(value)[:40]!r}")
    return value


# -- answers and files --------------------------------------------------------------------------


def _seen(upload) -> dict:
    """"input" (the 28x28 the network saw, rounded as /api/predict gives it) and "notes" (its warnings)."""
    return {"input": upload.to_dict(with_input=True)["input"], "notes": list(upload.warnings)}


def _metadata(session: Session) -> dict:
    """A kept network's checkpoint metadata: what it was taught from and how.  The origin's training
    settings come along (the listing shows them, and they give the next session's default eta);
    its accuracies and its resumable state do not (they describe the origin, not this copy)."""
    origin = session.recogniser
    meta = origin.checkpoint.metadata
    hyper = meta.get("hyperparameters") if isinstance(meta.get("hyperparameters"), dict) else {}
    metadata = {"hyperparameters": hyper,
                "taught": {"from": Path(origin.model_name).name, "weights": origin.weights, "steps": session.steps,
                           "labels": list(session.labels), "etas": list(session.etas)}}
    if isinstance(meta.get("epochs_completed"), int):
        metadata["epochs_completed"] = meta["epochs_completed"]
    return metadata


def _safe_stem(stem: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in stem)[:100] or "model"


def _next_free(folder: Path, stem: str) -> Path:
    """folder/taught-STEM-N.npz with N one more than the largest there (1 for the first)."""
    pattern = re.compile(re.escape(f"taught-{stem}-") + r"(\d+)\.npz")
    numbers = [int(m.group(1)) for p in folder.iterdir() if (m := pattern.fullmatch(p.name))]
    return folder / f"taught-{stem}-{max(numbers, default=0) + 1}.npz"
