"""`digitnet serve`: start the web page and its JSON API, say where, and stop cleanly."""

from __future__ import annotations

import sys

import click

from digitnet.cli.errors import user_errors
from digitnet.cli.options import DEFAULT_MODEL, FiniteFloatRange, data_dir_option, model_option, weights_option


@click.command(short_help="A web page to draw digits on, train networks and watch them learn; a JSON API.")
@model_option(positional=False, optional=True)
@weights_option
@click.option("--host", default="127.0.0.1",
              help="Address to listen on. Anything but a loopback address lets other machines use the page.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, help="Port to listen on; 0 picks a free one.")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in the default web browser.")
@click.option("--max-upload", type=FiniteFloatRange(min=0, min_open=True), default=10.0, metavar="MB",
              help="Largest image upload accepted, in MB (refused from its Content-Length).")
@click.option("--workers", type=click.IntRange(0, 64), default=2, show_default=True,
              help="Processes that compute predictions side by side (0: all in the server's own process).")
@click.option("--runs-dir", type=click.Path(file_okay=False), default="runs", show_default=True,
              help="Folder where runs started from the page are saved (created when the first one starts).")
@data_dir_option
@user_errors
def serve(model, weights, host, port, open_browser, max_upload, workers, runs_dir, data_dir):
    """A local web page to draw a digit and watch the network answer, and a JSON API.

    Routes: GET / (the page), POST /api/predict (body: an image file's bytes; answers like
    `predict --json`, plus the 28x28 input), GET /api/model, POST /api/evaluate (accuracy on the
    MNIST test split of --data-dir). Training from the page: /api/train/... and /api/models/...
    (see docs/serve.md). Without a model (no model.npz here) the page offers to train one.
    Ctrl-C (exit status 130) or SIGTERM (143) stops it, and a run going stops as on Ctrl-C.
    """
    from digitnet import checkpoint
    from digitnet.serve import api, guards
    from digitnet.serve import server as serving
    from digitnet.serve.models import Models
    from digitnet.serve.training import TrainingRuns

    try:
        recogniser = api.Recogniser(checkpoint.load(model), str(model), weights, data_dir) if model else None
        training = TrainingRuns(runs_dir, data_dir)
        models = Models(recogniser, runs_dir, ".", data_dir, training, workers=workers)
        httpd = serving.make_server(recogniser, host, port, max_upload=int(max_upload * guards.MB),
                                    models=models, training=training)
    except (api.ModelError, serving.ServerError) as e:
        raise click.ClickException(str(e)) from None
    if recogniser is not None:
        recogniser.start_workers(workers)
    if not guards.is_loopback(host):
        click.echo(f"warning: listening on {host}: anyone who can reach this machine on the network can use "
                   "the page and the API (there is no login)", err=True)
    address = serving.url(httpd, host)
    if model is None:
        click.echo(f"no model yet ({DEFAULT_MODEL} not found): the page offers to train one", err=True)
    click.echo(f"Serving {model or 'no model yet'} on {address} (Ctrl-C to stop)")
    if open_browser:
        import webbrowser

        webbrowser.open(address)
    try:
        signum = serving.serve_until_stopped(httpd)
    finally:
        if models.recogniser is not None:
            models.recogniser.close()
    final = training.shutdown()
    if final is not None:
        hint = (f"; continue it from the page or with `digitnet train --resume {final['run']}`"
                if final.get("resumable") else "")
        click.echo(f"the training run was stopped: {final['message']}{hint}", err=True)
    click.echo("stopped", err=True)
    sys.exit(128 + signum)  # the house's status for an interrupted command: 130 (Ctrl-C), 143 (SIGTERM)
