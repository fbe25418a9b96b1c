"""`digitnet predict`: recognise the digits in the user's own pictures."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from digitnet.cli.errors import user_errors
from digitnet.cli.options import invert_option, model_option, pick_digit_reader, weights_option
from digitnet.cores import usable_cores
from digitnet.memory import keep_freed_memory


class Jobs(click.ParamType):
    """--jobs: a number of processes (1 or more), or auto (None: one per core, decided when run)."""

    name = "jobs"

    def convert(self, value, param, ctx):
        if value is None or isinstance(value, int) or value == "auto":
            return None if value == "auto" else value
        try:
            number = int(str(value).strip())
        except ValueError:
            number = 0
        if number < 1:
            self.fail(f"{value!r} is not a number of processes: give 1 or more, or auto", param, ctx)
        return number


@click.command(short_help="Recognise the digits in your own pictures.")
@click.argument("images", nargs=-1, required=True, type=click.Path())
@model_option(positional=False)
@weights_option
@click.option("--json", "as_json", is_flag=True,
              help='One JSON object per image and line: {"path", "digit", "confidence", "scores"} '
                   'or {"path", "error"}.')
@click.option("--top-k", type=click.IntRange(1, 10), default=1, help="Show the K most likely digits.")
@click.option("--show", is_flag=True, help="Also print the 28x28 image the network saw, as terminal art.")
@invert_option
@click.option("--recursive", "-r", is_flag=True, help="Also read the image files in the folders' subfolders.")
@click.option("--jobs", "-j", type=Jobs(), default="auto", show_default=True, metavar="N|auto",
              help="Processes that read the pictures side by side when there are many (32 or more); "
                   "auto: one per core, 1: all in this process. The output is the same either way.")
@user_errors
def predict(images, model, weights, as_json, top_k, show, invert, recursive, jobs):
    """Recognise the digit in each IMAGE: image files, or folders of them (their image files, sorted);
    - reads one picture from standard input (`digitnet predict - < digit.png`), named - in the answer.

    Any picture Pillow reads, of one digit in any colours: it is flattened,
    cleaned, cropped, scaled and centred the way MNIST's digits were.  Exits
    with status 1 if any image could not be used (the others are still answered).
    """
    from digitnet import checkpoint
    from digitnet import predict as predicting  # numpy and Pillow: imported only by this command

    if show and as_json:
        raise click.UsageError("--show prints terminal art, which would break the JSON lines; use one or the other")
    for image in images:
        if Path(image).suffix.lower() in (".npz", ".json") and not Path(image).is_dir():
            raise click.UsageError(f"{image} looks like a model, not an image: did you mean --model {image}?")
    stdin = getattr(sys.stdin, "buffer", None)  # the bytes under the text; None when there is no stdin at all
    if images.count(predicting.STDIN) > 1:
        raise click.UsageError("- (standard input) holds one picture: give it once")
    if predicting.STDIN in images and (stdin is None or stdin.isatty()):
        where = "there is none" if stdin is None else "which is this terminal"
        raise click.UsageError(f"- reads the picture from standard input, {where}: pipe one in, "
                               "e.g. digitnet predict - < digit.png")
    network, _ = pick_digit_reader(checkpoint.load(model), weights, model)
    keep_freed_memory()  # this process reads the pictures one after another (digitnet/memory.py)
    count, failures, empty = predicting.run(network, images, invert=invert, as_json=as_json, top_k=top_k,
                                            show=show, recursive=recursive, out=click.echo,
                                            err=lambda line: click.echo(line, err=True),
                                            stdin=None if stdin is None else stdin.read,
                                            jobs=usable_cores() if jobs is None else jobs)
    if failures:
        click.echo(f"{failures} of {count} image(s) could not be used", err=True)
    if failures or empty:
        sys.exit(1)
