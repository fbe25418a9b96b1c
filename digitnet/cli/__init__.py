"""The `digitnet` command: the group, its exit rules, and where each command lives.

Each command parses its options, calls the library and prints; no math here.

    errors.py    exit status 1 for the library's errors, 128 + N for signals
    output.py    standard output that survives its reader leaving (``| head``)
    options.py   the options several commands share; the train settings as click options
    data.py      download, augment (and the MNIST loading every command shares)
    train.py     train
    model.py     evaluate, info, report, gradcheck
    predict.py   predict
    explain.py   explain (why the network answers: digitnet.inside)
    export.py    export (ONNX, the textbook's JSON: digitnet.export)
    serve.py     serve
    sweep.py     sweep

A new command goes in the module of its family (or a new one) and is added below.  Heavy
modules are imported inside the commands that need them, so that `digitnet predict` and
`digitnet --help` start fast.
"""

from __future__ import annotations

import sys

import click

from digitnet import __version__
from digitnet.cli import data, explain, export, model, predict, serve, sweep, train
from digitnet.cli.output import ReaderGone, ReaderTolerantStdout

CONTEXT = {"help_option_names": ["-h", "--help"], "show_default": True, "max_content_width": 100}


class _Main(click.Group):
    """The `digitnet` group: the reader of standard output may leave early (see digitnet.cli.output)."""

    def main(self, *args, **kwargs):
        stdout = sys.stdout
        sys.stdout = ReaderTolerantStdout(stdout)
        try:
            return super().main(*args, **kwargs)
        except ReaderGone:
            sys.exit(0)
        finally:
            sys.stdout = stdout

    def invoke(self, ctx):
        # Commands that only read (evaluate, predict, info, gradcheck) still owe Ctrl-C the documented
        # status 130; click itself would print "Aborted!" and exit 1.  Writers say more (errors.stops_cleanly).
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo("\ninterrupted (Ctrl-C)", err=True)
            sys.exit(130)


@click.group(cls=_Main, context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="digitnet")
def main():
    """Train, evaluate and use an MNIST digit recogniser: a sigmoid network
    trained by backpropagation (BP1-BP4) and mini-batch SGD.

    A model is named by -m/--model PATH (default model.npz) in every command
    that reads one.  Exit status: 0 done, 1 a problem with a file or the data,
    2 a mistake on the command line, 130/143/129 interrupted (Ctrl-C / SIGTERM / SIGHUP).
    """


for command in (data.download, data.augment, train.train, model.evaluate, model.info, model.report,
                model.gradcheck, predict.predict, explain.explain, export.export, serve.serve, sweep.sweep):
    main.add_command(command)
del command
