"""`digitnet export`: write a model's network in a format other programs run (ONNX, the textbook's JSON)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import click

from digitnet.cli.errors import stops_cleanly, user_errors
from digitnet.cli.options import model_option, output_path, weights_option

FORMATS = {"onnx": ".onnx", "json": ".json"}


@click.command(short_help="Write a model as ONNX or in the textbook's JSON format.")
@model_option(positional=True)
@weights_option
@click.option("--to", "to", type=click.Choice(list(FORMATS)), default=None, show_default=False,
              help="onnx: for onnxruntime (C++, C#, Java, JavaScript, phones) and every program that reads "
                   "ONNX; json: network2.py's save() format, which the textbook's load() reads.  "
                   "[default: from --out's suffix, else onnx]")
@click.option("--out", type=click.Path(dir_okay=False), default=None, show_default=False,
              help="File to write, ending in .onnx or .json.  [default: MODEL with that suffix, model.onnx]")
@click.option("--force", is_flag=True, help="Overwrite --out if it already exists.")
@stops_cleanly  # it writes a file
@user_errors
def export(model, weights, to, out, force):
    """Write MODEL's network for other programs: ONNX, or the textbook's JSON.

    The ONNX file (opset 13, IR version 8) holds one Gemm (the book's
    (n_out, n_in) weights, transB=1) and one Sigmoid per layer, Softmax last for
    a log-likelihood network.  Input "pixels": float32 (batch, 784), 0 (black)
    to 1 (white ink); outputs "activations" (batch, 10) and "digit" (int64).
    Its metadata holds digitnet's version, the settings and the recorded test
    accuracy.  A float64 network is written as float32.

    The JSON file is what network2.py's save() writes (sizes, weights, biases,
    cost): `digitnet` and the book's load() read it back to the same weights.
    It has no softmax layer, so a log-likelihood network cannot go there, and
    no settings or history.
    """
    from digitnet import checkpoint
    from digitnet.export import ExportError

    to = to or ("json" if out is not None and Path(out).suffix.lower() == ".json" else "onnx")
    path = _destination(model, to, out, force)
    if to == "onnx" and importlib.util.find_spec("onnx") is None:
        raise click.ClickException("--to onnx needs the onnx package: pip install 'digitnet[onnx]'")
    ckpt = checkpoint.load(model)
    network, used = ckpt.weights(weights)
    try:
        data = _onnx_bytes(network, ckpt.metadata, used) if to == "onnx" else _json_bytes(network)
    except ExportError as e:
        raise click.ClickException(f"{model}: {e}" + (" (--to onnx)" if to == "json" else "")) from None
    from digitnet.atomic import atomic_path

    with atomic_path(path, expected_bytes=len(data)) as tmp:
        tmp.write_bytes(data)
    click.echo(_summary(path, to, model, network, ckpt, used))
    _warn_if_unreadable(path, to, data)


def _destination(model, to: str, out, force: bool) -> Path:
    """--out (default: MODEL with the format's suffix), checked before anything is read: never MODEL itself."""
    path = Path(out) if out is not None else Path(model).with_suffix(FORMATS[to])
    if path.resolve() == Path(model).resolve():
        raise click.UsageError(f"{path} is MODEL itself: name another file with --out")
    return output_path(path, force, "--out", FORMATS[to])


def _onnx_bytes(network, metadata: dict, used: str) -> bytes:
    from digitnet.export.onnx import to_onnx

    return to_onnx(network, metadata, used).SerializeToString()


def _json_bytes(network) -> bytes:
    from digitnet.export.json import to_textbook_json

    return json.dumps(to_textbook_json(network)).encode()  # as network2.py's json.dump writes it


def _summary(path: Path, to: str, model, network, ckpt, used: str) -> str:
    from digitnet.cli.model import _describe_weights

    sizes = network.sizes
    epoch = ckpt.metadata.get("best_epoch" if used == "best" else "epochs_completed")
    what = f"{model}'s {'-'.join(map(str, sizes))} network ({_describe_weights(used, epoch, ckpt)})"
    if to == "json":
        return (f"{path}: {what} in the textbook's JSON, which network2.py's load() reads "
                "(the settings and history stay in the checkpoint)")
    rounded = ", float64 weights rounded to float32" if network.dtype.name == "float64" else ""
    return (f"{path}: {what} as ONNX (opset 13{rounded}): input \"pixels\" (batch, {sizes[0]}) floats 0-1, "
            f"outputs \"activations\" (batch, {sizes[-1]}) and \"digit\" (batch,)")


def _warn_if_unreadable(path: Path, to: str, data: bytes) -> None:
    from digitnet import textbook_json

    if to == "json" and len(data) > textbook_json.MAX_BYTES:
        click.echo(f"{path}: warning: over the {textbook_json.MAX_BYTES // 2**20} MB digitnet reads in a JSON "
                   "network: the book's load() reads it, `digitnet` will refuse it (keep the .npz)", err=True)
