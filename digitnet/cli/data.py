"""The data commands: `download` (fetch and verify MNIST) and `augment` (preview the distortions);
and ``load_data``, the splits every command that reads MNIST loads."""

from __future__ import annotations

import shlex
import sys

import click

from digitnet.cli.errors import stops_cleanly, user_errors
from digitnet import augment_spec
from digitnet.cli.options import FiniteFloatRange, WebURL, data_dir_option, png_to_write


def load_data(data_dir, validation_size, quiet=False, parts=("train", "t10k")):
    """The MNIST splits, downloading only the files ``parts`` needs (the test split needs no training file)."""
    from digitnet import data
    from digitnet.download import ensure_data

    fetched = ensure_data(data_dir, names=data.part_files(parts), progress=not quiet)
    if fetched and not quiet:
        click.echo(f"downloaded {len(fetched)} MNIST file(s) into {data.resolve_data_dir(data_dir)}", err=True)
    return data.load_mnist(data_dir, validation_size, parts=parts)


@click.command(short_help="Fetch and verify the four MNIST files.")
@data_dir_option
@click.option("--mirror", "mirrors", multiple=True, type=WebURL(),
              help="Base URL to fetch from; repeat for several, tried in order. Replaces the built-in list.")
@click.option("--checksums", type=click.Path(exists=True, dir_okay=False), default=None,
              help="sha256sum-format file replacing the official checksums (for private mirrors).")
@click.option("--from", "source", type=click.Path(exists=True, file_okay=False), default=None,
              help="Import the four files from a local folder instead of downloading.")
@click.option("--force", is_flag=True, help="Fetch (or import) again even if the files are present.")
# --timeout's default is download.DEFAULT_TIMEOUT, written out: importing digitnet.download would load numpy.
@click.option("--timeout", type=FiniteFloatRange(min=0, min_open=True), default=15.0, metavar="SECONDS",
              help="Give up on a mirror that takes longer than this to connect or then sends nothing for "
                   "this long; it is tried last for the remaining files.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@stops_cleanly
@user_errors
def download(data_dir, mirrors, checksums, source, force, timeout, quiet):
    """Fetch the four MNIST files into the data folder, verifying their SHA-256."""
    from digitnet import download as fetching
    from digitnet.data import resolve_data_dir

    table = fetching.read_checksums(checksums) if checksums else None
    directory = resolve_data_dir(data_dir)
    try:
        if source:
            reports = fetching.import_files(source, directory, checksums=table, force=force)
        else:
            reports = fetching.download(directory, mirrors=mirrors or fetching.DEFAULT_MIRRORS, checksums=table,
                                        force=force, progress=not quiet, timeout=timeout)
    except KeyboardInterrupt as e:
        from digitnet.signals import describe, signal_number

        again = " ".join(["digitnet download", *(f"--mirror {shlex.quote(m)}" for m in mirrors),
                          *([f"--checksums {shlex.quote(checksums)}"] if checksums else []),
                          *([f"--from {shlex.quote(source)}"] if source else []),
                          *([f"--data-dir {shlex.quote(data_dir)}"] if data_dir else []),
                          *([f"--timeout {timeout:g}"] if timeout != fetching.DEFAULT_TIMEOUT else [])])
        click.echo(f"\ninterrupted ({describe(signal_number(e))}): the files completed so far are kept in "
                   f"{directory}, no partial file is left; fetch the rest with `{again}`", err=True)
        sys.exit(128 + signal_number(e))
    for r in reports:
        for failure in r.failures:
            click.echo(f"note: {failure}", err=True)
        click.echo(_report_line(r, checksums))
    click.echo(f"MNIST is ready in {directory}")


def _report_line(r, checksums) -> str:
    """What happened to one file: present, downloaded, or imported (and whether its checksum matches)."""
    if r.action == "present":
        return f"{r.name}: already present"
    if r.action == "downloaded":
        return f"{r.name}: downloaded from {r.source}, checksum verified"
    table_name = f"the checksum in {checksums}" if checksums else "the official checksum"
    verdict = {True: f"matches {table_name}",
               False: f"does NOT match {table_name} (valid IDX, imported anyway)",
               None: "decompressed copy (checksum not comparable)"}[r.official]
    return f"{r.name}: imported from {r.source}; {verdict}"


@click.command(short_help="Preview the training distortions (--augment) as a picture.")
@click.option("--augment", "spec", default="elastic=34:4", metavar="SPEC",
              help="Distortions, as for `digitnet train --augment`: shift=PIXELS, elastic=ALPHA:SIGMA, "
                   "affine=DEGREES:SCALE, comma-separated.")
@click.option("--preview", type=click.Path(dir_okay=False), default="augment.png",
              help="PNG to write: each row an original training image, then distorted versions of it.")
@click.option("--rows", type=click.IntRange(1, 50), default=8, help="Training images shown.")
@click.option("--columns", type=click.IntRange(1, 20), default=8, help="Distortions per image.")
@click.option("--scale", type=click.IntRange(1, 10), default=3, help="Screen pixels per image pixel.")
@click.option("--seed", type=click.IntRange(min=0), default=0, help="Seed for the choice of images and the distortions.")
@click.option("--force", is_flag=True, help="Overwrite --preview if it already exists.")
@data_dir_option
@user_errors
def augment(spec, preview, rows, columns, scale, seed, force, data_dir):
    """Draw a grid of training images beside their distortions, to choose --augment by eye."""
    import numpy as np

    from digitnet import augment as augmenting
    from digitnet.atomic import atomic_path

    try:
        augmentation = augment_spec.parse(spec)
    except augment_spec.AugmentError as e:
        raise click.BadParameter(str(e), param_hint="--augment") from None
    preview = png_to_write(preview, force, "--preview")
    training = load_data(data_dir, 0, parts=("train",)).training
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(training), size=min(rows, len(training)), replace=False)
    picture = augmenting.preview(training.images[chosen], augmentation, rng, columns=columns, scale=scale)
    with atomic_path(preview) as tmp:
        picture.save(tmp, format="PNG")
    click.echo(f"{preview}: {len(chosen)} training images (left column) and {columns} distortions of each "
               f"with --augment {augmentation or 'none'}")
