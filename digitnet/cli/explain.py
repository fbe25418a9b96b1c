"""`digitnet explain`: why the network gives its answer for one picture (the numbers from digitnet.inside)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from click.core import ParameterSource

from digitnet.cli.errors import stops_cleanly, user_errors
from digitnet.cli.options import invert_option, model_option, pick_digit_reader, png_to_write, weights_option

DEFAULT_TOP = 5


@click.command(short_help="Show why the network gives its answer for one picture.")
@click.argument("image", type=click.Path())
@model_option(positional=False)
@weights_option
@click.option("--digit", type=click.IntRange(0, 9), default=None, show_default=False,
              help="The digit to explain: which units and pixels push its output up or down.  "
                   "[default: the answer]")
@click.option("--off", "off_text", default="", metavar="UNITS", show_default=False,
              help="Hidden units to switch off (their activations held at 0) before answering: "
                   "LAYER:UNIT pairs, layers counted from 1 and units from 0 (1:4,1:17), or bare "
                   "units of the last hidden layer (4,17).  [default: none]")
@click.option("--top", type=click.IntRange(min=1), default=DEFAULT_TOP, metavar="K",
              help="Show the K units pushing most towards the digit and the K pushing most against it.  "
                   "With --json the default is every unit, as POST /api/explain answers; "
                   "--top K keeps the K largest contributions.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, show_default=False,
              help="Also draw a PNG: the input, the saliency (red pixels push towards the digit, "
                   "blue against) and the top units' weight pictures.  [default: no picture]")
@click.option("--force", is_flag=True, help="Overwrite --out if it already exists.")
@click.option("--json", "as_json", is_flag=True,
              help='One JSON object: {"image"} and what POST /api/explain answers for the same picture '
                   '("digit", "answer", "outputs", "z", "bias", "off", "contributions", "layers", '
                   '"saliency", "input", "notes").')
@invert_option
@stops_cleanly  # with --out it writes a picture
@user_errors
@click.pass_context
def explain(ctx, image, model, weights, digit, off_text, top, out, force, as_json, invert):
    """Explain the network's answer for IMAGE (a picture of one digit, read as `digitnet predict` reads it).

    The chosen output's weighted input is a sum over the last hidden layer,
    z^L_j = sum_k w^L_jk a^(L-1)_k + b^L_j: each unit's term w^L_jk a^(L-1)_k is
    its contribution.  The units with the largest contributions either way are
    listed; the saliency dz^L_j/dx (backpropagation carried to the pixels)
    shows which pixels push towards the digit and which against it.
    """
    from digitnet import checkpoint, inside
    from digitnet import predict as predicting  # numpy and Pillow: imported only by this command

    if Path(image).suffix.lower() in (".npz", ".json") and not Path(image).is_dir():
        raise click.UsageError(f"{image} looks like a model, not an image: did you mean --model {image}?")
    picture = _checked_out(out, force)
    network, _ = pick_digit_reader(checkpoint.load(model), weights, model)
    try:
        off = inside.check_off(network, inside.parse_off(off_text))
    except inside.InsideError as e:  # its message names --off and what was typed
        raise click.UsageError(str(e)) from None
    prediction = next(predicting.predict_files(network, [(image, None)], invert))
    if prediction.error is not None:
        raise click.ClickException(f"{image}: {prediction.error}")
    x = prediction.image.reshape(-1)
    try:
        explanation = inside.explain(network, x, digit, off)
    except inside.InsideError as e:
        raise click.UsageError(str(e)) from None
    if as_json:
        typed = ctx.get_parameter_source("top") not in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)
        record = {"image": image, **explanation.to_dict(top=top if typed else None),
                  "input": prediction.to_dict(with_input=True)["input"], "notes": list(prediction.warnings)}
        click.echo(json.dumps(record))
    else:
        for note in prediction.warnings:
            click.echo(f"{image}: warning: {note}", err=True)
        everything_on = inside.explain(network, x, digit) if off else None
        click.echo(summary(image, explanation, network.sizes, top, everything_on))
    if picture is not None:
        _draw(picture, explanation, network, image, top)
        if not as_json:
            click.echo(f"picture: {picture}")


def _checked_out(out, force) -> Path | None:
    """--out as a path that can be written (checked before anything is computed), or None."""
    return None if out is None else png_to_write(out, force, "--out")


def units_by_side(explanation, top: int) -> tuple[list[int], list[int]]:
    """The ``top`` units with the largest positive contributions (largest first) and the ``top``
    with the most negative ones (most negative first); a unit contributing 0 is on neither side."""
    c = explanation.contributions
    order = [int(k) for k in explanation.order]
    return [k for k in order if c[k] > 0][:top], [k for k in reversed(order) if c[k] < 0][:top]


def _draw(path: Path, explanation, network, image: str, top: int) -> None:
    from digitnet import inside
    from digitnet.explain_figure import explanation_figure  # matplotlib: only when a picture is asked for
    from digitnet.figures import save_figure

    layer = len(network.sizes) - 2
    pictures = inside.weight_pictures(network) if layer == 1 else None
    towards, against = units_by_side(explanation, top)
    save_figure(explanation_figure(explanation, pictures, towards, against, name=Path(image).name,
                                   layer=layer), path)


def summary(image: str, explanation, sizes, top: int, everything_on=None) -> str:
    """The answer, the sum z^L_j = contributions + bias, and the top units either way as one aligned table."""
    j, answer, outputs = explanation.digit, explanation.answer, explanation.outputs
    layer = len(sizes) - 2
    lines = [f"{image}: {answer} (output {outputs[answer]:.4f})"]
    if explanation.off:
        lines.append(f"switched off: {', '.join(f'{l}:{k}' for l, k in explanation.off)}; with every unit on "
                     f"the answer is {everything_on.answer} (output {everything_on.outputs[everything_on.answer]:.4f})")
    if j != answer:
        lines.append(f"explaining {j} (output {outputs[j]:.4f})")
    total, bias = explanation.contributions.sum(), explanation.bias
    what = f"units of hidden layer {layer}" if layer else "pixels of the input: no hidden layer"
    lines.append(f"z^L_{j} = {total + bias:.4f} = {total:.4f} (sum_k w^L_{j}k a^{layer}_k over the "
                 f"{len(explanation.contributions)} {what}) {'-' if bias < 0 else '+'} {abs(bias):.4f} (b^L_{j})")
    towards, against = units_by_side(explanation, top)
    unit = "unit" if layer else "pixel"
    lines += ["", f"the {unit}s pushing most towards {j} (largest contribution first) "
                  "and against it (most negative first):",
              f"  {'':<8} {unit:>5}  {'activation':>10}  {'contribution':>12}"]
    for side, chosen in (("towards", towards), ("against", against)):
        if not chosen:
            lines.append(f"  {side:<8} {'none':>5}")
        for k in chosen:
            lines.append(f"  {side:<8} {k:>5}  {explanation.activations[-2][k]:>10.4f}  "
                         f"{explanation.contributions[k]:>+12.4f}")
    return "\n".join(lines)
