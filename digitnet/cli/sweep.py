"""`digitnet sweep`: a search over the train settings, started, run and shown from the command line.

The work is in digitnet.sweep (start.py opens the study, launch.py runs the workers);
here the options are read, the calls made, and the results printed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from digitnet.cli.data import load_data
from digitnet.cli.errors import user_errors
from digitnet.cli.options import data_dir_option
from digitnet.cores import usable_cores


@click.command(short_help="Search the train settings with Optuna, pruning hopeless trials.")
@click.option("--param", "params", multiple=True, metavar="NAME=SPEC",
              help="A train setting to search; repeat for several: eta=log:0.1..5 (log-uniform), l2=0..5 "
                   "(uniform), hidden=30,100,100-30 (one of a list; 100-30 is two layers).  "
                   "[default: eta=log:0.1..5 l2=0..5 hidden=30,100 cost=quadratic,cross-entropy]")
@click.option("--set", "settings", multiple=True, metavar="NAME=VALUE",
              help="Fix any other train setting for every trial, e.g. --set init=scaled --set batch-size=20.")
@click.option("--trials", type=click.IntRange(min=1), default=None,
              help="Trials to finish, pruned ones included (on an existing study: its new target).  "
                   "[default: 24, or the study's]")
@click.option("--epochs", type=click.IntRange(min=1), default=10, help="Epochs per trial, unless pruned.")
@click.option("--seed", type=int, default=0,
              help="Seed of every trial's weights and shuffling (the same for all, so trials differ only in "
                   "the settings searched), and of the sampler.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=usable_cores(),
              help="Trials at once on this machine, each in its own process (the default is the number of "
                   "cores).")
@click.option("--pruner", type=click.Choice(["halving", "median"]), default="halving",
              help="halving: successive halving, a trial goes on after epochs 1, 3 and 9 only if it is in the best "
                   "third there of itself and the trials before it (asked again every epoch, so trials side by "
                   "side prune as one after another); "
                   "median: after 5 complete trials, stop a trial whose best validation accuracy is below the "
                   "median of the complete trials at the same epoch (gentler: fewer epochs saved).")
@click.option("--no-prune", is_flag=True, help="Run every trial for all its epochs.")
@click.option("--study", "study_name", default="default", help="Name of the study in the storage.")
@click.option("--storage", metavar="URL", default=None,
              help="Database holding the study, shared by every machine working on it, e.g. "
                   "postgresql://user:password@host/db  [default: sqlite, study.db in --out]")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder for the trials' checkpoints (trial-NNN.npz), results.csv and index.html  "
                   "[default: sweep-<study>]")
@data_dir_option
@click.option("--final", is_flag=True, help="At the end, measure the best trial on the test set.")
@click.option("--show", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Train nothing: print the table of the sweep in DIR (or in --storage) and rewrite "
                   "DIR/results.csv and DIR/index.html.")
@click.option("--quiet", "-q", is_flag=True, help="Only the table at the end; no progress bar or trial lines.")
@click.pass_context
@user_errors
def sweep(ctx, params, settings, trials, epochs, seed, jobs, pruner, no_prune, study_name, storage, out, data_dir,
          final, show, quiet):
    """Search the train settings with Optuna: trials in parallel processes, hopeless ones pruned.

    Each trial is `digitnet train` with the trial's settings (same seed, same
    weights), judged on the validation split; the test set is not touched
    unless you ask (--final).  The study is kept in a database, by default
    study.db in the output folder: run the same command again to continue it.
    Other machines join with `digitnet sweep --storage URL --study NAME`.
    """
    from digitnet.sweep import SweepError, SweepUsageError
    from digitnet.sweep import space as spaces
    from digitnet.sweep import start
    from digitnet.sweep.storage import sqlite_file
    from digitnet.sweep.study import Definition, check_study_name

    try:
        typed = {name for name in ctx.params if ctx.get_parameter_source(name).name == "COMMANDLINE"}
        check_study_name(study_name)
        if storage is not None:
            sqlite_file(storage)  # refuses an in-memory database
        if show:
            ignored = typed - {"show", "storage", "study_name", "quiet"}
            if ignored:
                raise SweepUsageError("--show only reads a sweep (it takes --storage and --study); it does not "
                                      f"take {', '.join(sorted(_option_of(ctx, name) for name in ignored))}")
            return _show_sweep(start.existing(Path(show), storage, study_name, "study_name" in typed), Path(show))
        given = {part for part, names in {"space": {"params", "settings", "epochs", "seed"},
                                          "pruner": {"pruner", "no_prune"}, "trials": {"trials"}}.items()
                 if typed & names}
        out_dir = Path(out or f"sweep-{study_name}")
        if out_dir.exists() and not out_dir.is_dir():
            raise click.UsageError(f"--out {out_dir} is a file, not a folder")
        requested = Definition(spaces.SearchSpace.parse(params, settings, epochs, seed), trials or 24,
                               "none" if no_prune else pruner)
        # The whole training file: the checks of the search space need its size.
        started = start.start(study_name, requested, given, out_dir, storage, lambda: load_data(data_dir, 0, quiet))
        _run_sweep(started, study_name, out_dir, data_dir, jobs, final, quiet)
    except SweepUsageError as e:
        raise click.UsageError(str(e)) from None
    except SweepError as e:
        raise click.ClickException(str(e)) from None


def _run_sweep(started, study_name: str, out_dir: Path, data_dir, jobs: int, final: bool, quiet: bool) -> None:
    """Run the workers on a started study, then print the table and how the sweep ended."""
    from digitnet.data import resolve_data_dir
    from digitnet.sweep import launch, results
    from digitnet.sweep.liveness import counts
    from digitnet.sweep.storage import shown_url
    from digitnet.sweep.study import target

    study, definition = started.study, started.definition
    if not quiet:
        click.echo(f"{'new' if started.created else 'continuing'} study {study_name!r} in {shown_url(started.url)}: "
                   f"{counts(study)['done']} of {definition.trials} trials done; {definition.space.describe()}; "
                   f"pruner {definition.pruner}; {jobs} worker process{'es' if jobs > 1 else ''}")
    data_path = resolve_data_dir(data_dir)
    spec = launch.WorkerSpec(started.url, study_name, str(out_dir.resolve()), str(data_path.resolve()),
                             str(data_path))
    outcome = launch.run(study, started.store, spec, jobs, definition.space.params, quiet)
    ranked, _ = launch.write_results(study, definition, out_dir, study_name, started.url)
    click.echo(("\n" if not quiet else "") + results.table(ranked, [p.name for p in definition.space.params]))
    click.echo(results.summary(study, ranked))
    click.echo(f"results.csv and index.html (open it in a browser) are in {out_dir}{os.sep}")
    done = counts(study)["done"]
    if outcome.interrupted:
        click.echo(f"interrupted: {done} of {target(study)} trials done; trials cut short "
                   f"are marked failed and run again when you repeat the command", err=True)
        sys.exit(128 + outcome.interrupted)
    failures = [f"worker {i + 1} {launch.describe_exit(code)}" for i, code in enumerate(outcome.exit_codes) if code]
    if done < target(study):
        raise click.ClickException(f"{'; '.join(failures) or 'the workers stopped'}: {done} of "
                                   f"{target(study)} trials done; run the same command to continue")
    for failure in failures:
        click.echo(f"note: {failure}; the other workers finished the study", err=True)
    best = results.best_row(ranked)
    if best is not None:
        place = launch.checkpoint_place(best, out_dir)
        click.echo(_best_line(best, place))
        if final:
            _final_test(place, best.number, started.mnist)


def _option_of(ctx, name: str) -> str:
    """The option a user typed for click parameter ``name`` (e.g. study_name -> --study)."""
    param = next((p for p in ctx.command.params if p.name == name), None)
    return max(param.opts, key=len) if param is not None else name


def _final_test(place, number: int, mnist) -> None:
    """The best trial's test accuracy: the one look at the test set, after the choice is made."""
    from digitnet import checkpoint, metrics

    if not place.path.is_file():
        where = f" on {place.host}" if place.host else ""
        click.echo(f"trial {number} ran{where}: its checkpoint is in that machine's --out folder; "
                   f"run `digitnet evaluate {place.path.name}` there", err=True)
        return
    ckpt = checkpoint.load(place.path)
    network, _ = ckpt.weights("best")
    click.echo(f"test accuracy of trial {number} (weights of its best validation epoch, "
               f"{ckpt.metadata.get('best_epoch')}): {metrics.accuracy(network, mnist.test):.2%}")


def _show_sweep(shown, directory: Path) -> None:
    """`sweep --show`: rewrite the sweep's results in ``directory`` and print its table."""
    from digitnet.sweep import launch, results
    from digitnet.sweep.storage import shown_url

    ranked, _ = launch.write_results(shown.study, shown.definition, directory, shown.name, shown.url)
    click.echo(f"study {shown.name!r} in {shown_url(shown.url)}: {shown.definition.space.describe()}; "
               f"pruner {shown.definition.pruner}\n")
    click.echo(results.table(ranked, [p.name for p in shown.definition.space.params]))
    click.echo(results.summary(shown.study, ranked))
    best = results.best_row(ranked)
    if best is not None:
        click.echo(_best_line(best, launch.checkpoint_place(best, directory)))


def _best_line(best, place) -> str:
    return (f"best: trial {best.number}, {best.best:.2%} validation accuracy at epoch {best.best_epoch}; "
            f"checkpoint {place}")
