"""`digitnet train`: the settings from the command line, a run of the library, and what it shows meanwhile."""

from __future__ import annotations

import contextlib
import sys

import click

from digitnet.cli.data import load_data
from digitnet.cli.errors import stops_cleanly, user_errors
from digitnet.cli.options import DEFAULT_MODEL, data_dir_option, train_settings, typed_settings
from digitnet.cli.output import keep_going_without_reader
from digitnet.config import TrainConfig


@train_settings
@click.command(short_help="Train a network by mini-batch SGD, saving every epoch.")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Checkpoint to write after every epoch  [default: model.npz, or the --resume file]")
@click.option("--resume", type=click.Path(dir_okay=False), default=None,
              help="Continue this checkpoint from its last complete epoch, to its planned total or --epochs.")
@click.option("--force", is_flag=True, help="Overwrite --out if it already exists.")
@data_dir_option
@click.option("--quiet", "-q", is_flag=True, help="Only the final result; no progress bar or epoch lines.")
@click.option("--progress", type=click.Choice(["bar", "json"]), default="bar", show_default=True,
              help="json: instead of the bar and epoch lines, one JSON object per line on stdout "
                   "(start, the untrained network, progress within an epoch, --peek-every looks, each "
                   "epoch, end), for other programs.")
@click.pass_context
@stops_cleanly
@user_errors
def train(ctx, out, resume, force, data_dir, quiet, progress, **settings):
    """Train a 784-hidden-10 sigmoid network by mini-batch SGD, saving a checkpoint every epoch.

    The defaults are the textbook's first network (784-30-10, quadratic cost,
    N(0,1) weights, eta 3.0, batch 10, 30 epochs).
    """
    from digitnet import runs
    from digitnet.data import resolve_data_dir

    keep_going_without_reader()
    values, given = typed_settings(ctx, settings)
    config = TrainConfig(**values)
    try:  # what was typed is checked first, then the files, then the data (runs.prepare)
        plan = runs.prepare(config, out, lambda: load_data(data_dir, 0, quiet), resume_from=resume,
                            force=force, requested=given)
    except (runs.SettingsError, runs.ResumeConflict) as e:  # mistakes on the command line: exit 2
        raise click.UsageError(str(e)) from None
    with contextlib.ExitStack() as stack:
        if progress == "json":
            from digitnet.progress import JsonProgress

            output = JsonProgress(plan)
        else:
            output = stack.enter_context(_TrainOutput(plan, quiet))
        result = runs.run(plan.trainer, plan.out, resumed_from=plan.resumed_from,
                          dataset=str(resolve_data_dir(data_dir)),
                          on_epoch=output.epoch_done, on_progress=output.progress,
                          on_untrained=output.untrained, on_peek=output.peek)
    if progress == "json":
        output.end(result)
        sys.exit(result.exit_code)
    _print_result(result, quiet)


def _print_result(result, quiet):
    """The last words of `train`: the test accuracy, or why the run ended early and how to go on."""
    from digitnet.runs import failure_message  # loaded already: train imported runs

    if result.outcome == "interrupted":
        import signal

        from digitnet.signals import describe

        why = f"interrupted ({describe(result.signal or signal.SIGINT)})"
        if result.resume_from:
            click.echo(f"\n{why}: the last complete epoch ({result.saved_epoch}) is saved in "
                       f"{result.resume_from}; continue with `{result.resume_command}`", err=True)
        else:
            click.echo(f"\n{why} before the first epoch finished: nothing was saved", err=True)
        if result.guessing:
            click.echo(result.guessing, err=True)
        sys.exit(result.exit_code)
    if result.outcome in ("diverged", "write_failed"):
        raise click.ClickException(failure_message(result.outcome, result.error, result.saved_epoch,
                                                   result.resume_from, result.learning_rate))
    if result.stopped and not quiet:
        click.echo(result.stopped)
    which = (f"mean of epochs {result.averaged_from}-{result.epochs_completed}" if result.averaged_from
             else f"best validation epoch {result.best_epoch} of {result.epochs_completed}" if result.tested_best
             else f"epoch {result.epochs_completed}")
    click.echo(f"test accuracy {result.test_accuracy:.2%} ({which}; last epoch "
               f"{result.test_accuracy_last_epoch:.2%}); saved {result.out}")
    if result.guessing:
        click.echo(result.guessing)
    elif not quiet:
        click.echo(next_steps(result.out))


def next_steps(model) -> str:
    """The line after a finished run: what to do with the model (its own name only when not the default)."""
    import shlex

    name = shlex.quote(str(model))
    use = "" if str(model) == DEFAULT_MODEL else f" -m {name}"
    report = "" if str(model) == DEFAULT_MODEL else f" {name}"
    return f"next: digitnet predict IMAGE{use} · digitnet serve --open{use} · digitnet report{report}"


class _TrainOutput:
    """What `train` shows while it runs: the settings, a bar over each epoch's mini-batches
    (hidden when not a terminal) and one line per epoch."""

    def __init__(self, plan, quiet):
        self.config, self.quiet, self.bar, self.epoch = plan.trainer.config, quiet, None, 0
        if not quiet:
            trainer, config = plan.trainer, plan.trainer.config
            start = (f", resuming after epoch {trainer.state.epochs_completed}" if plan.resumed_from else "")
            late = (f" ({config.late_batch_size} from epoch {config.late_batch_from})" if config.late_batch_size else "")
            click.echo(f"training {'-'.join(map(str, trainer.network.sizes))} ({config.cost} cost, {config.init} "
                       f"init, eta {config.learning_rate:g}, batch {config.batch_size}{late}, seed {config.seed}) on "
                       f"{len(trainer.data.training):,} images{start}; checkpoint: {plan.out}")
            from digitnet.runs import COST_MEANING

            click.echo("cost: " + (COST_MEANING["exact"] if config.exact_cost
                                   else f"{COST_MEANING['sgd']} (--exact-cost for an end-of-epoch pass)"))

    def progress(self, epoch, images, total):
        from digitnet import schedules
        from digitnet.progress import progress_bar

        batch_size = schedules.batch_size(self.config, epoch)
        if self.bar is None or epoch != self.epoch:
            self.close()
            self.epoch = epoch
            self.bar = progress_bar(total=-(-total // batch_size), desc=f"epoch {epoch}/{self.config.epochs}",
                                    unit="batch", leave=False, disable=True if self.quiet else None)
        self.bar.update(-(-images // batch_size) - self.bar.n)  # a partial last batch counts as one

    def epoch_done(self, stats):
        self.close()
        self._line(stats, f"eta {stats.learning_rate:g}  {stats.seconds:5.2f} s")

    def untrained(self, stats):
        """Epoch 0: the network as drawn, before any training."""
        self._line(stats, "untrained")

    def _line(self, stats, end):
        from tqdm import tqdm

        if not self.quiet:
            cost = "" if stats.training_cost is None else f"  cost {stats.training_cost:.5f}"
            validation = "" if stats.validation_accuracy is None else f"  validation {stats.validation_accuracy:7.2%}"
            tqdm.write(f"epoch {stats.epoch:3d}/{self.config.epochs}{cost}{validation}  {end}")

    def peek(self, peek):
        from tqdm import tqdm

        if not self.quiet:
            tqdm.write(f"  epoch {peek.epoch} at {peek.images:,} images: validation {peek.sample_accuracy:7.2%} "
                       f"on a {peek.sample_size:,}-image sample")

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
