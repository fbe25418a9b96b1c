"""Writing a network in formats other programs read: ONNX (``onnx.py``) and the textbook's JSON (``json.py``).

    to_onnx(network, metadata=None, weights=None) -> onnx.ModelProto     (needs the ``onnx`` package)
    to_textbook_json(network) -> dict                                     (network2.py's save() format)

Both raise ``ExportError`` (one line, for the user) for a network the format cannot hold or a
missing optional package.  Importing this package imports neither numpy nor onnx: the two
functions are loaded when first used.
"""

from __future__ import annotations

__all__ = ["ExportError", "to_onnx", "to_textbook_json"]


class ExportError(ValueError):
    """A network cannot be written in the format asked for (or the package that writes it is missing)."""


def __getattr__(name: str):
    if name == "to_onnx":
        from digitnet.export.onnx import to_onnx

        return to_onnx
    if name == "to_textbook_json":
        from digitnet.export.json import to_textbook_json

        return to_textbook_json
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
