"""Sweeps on many machines: two `digitnet sweep` processes share one study in a real PostgreSQL server.

The test makes a throw-away PostgreSQL cluster (initdb) in a temporary folder,
starts it on a free loopback port (pg_ctl) and removes it afterwards.  It skips,
saying why, where the server binaries or the psycopg driver are missing; .ci/run
installs the Debian packages so that CI never skips it.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile

import optuna
import pytest
from helpers import run_cli, write_mnist
from optuna.trial import TrialState

from digitnet.sweep import storage as storages

SMALL = ["--set", "validation-size=200", "--param", "eta=log:0.02..8", "--param", "hidden=8,16"]


def server_binary(name: str) -> str | None:
    """initdb and pg_ctl: on PATH, or where Debian's postgresql package puts them."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    initdb, pg_ctl = server_binary("initdb"), server_binary("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql")
    pytest.importorskip("psycopg", reason="the psycopg driver is missing: pip install 'digitnet[postgres]'")
    run_as = None
    if os.geteuid() == 0:  # the server refuses to run as root: run it as Debian's postgres user
        try:
            run_as = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
    root = tempfile.mkdtemp(prefix="digitnet-pg-")
    if run_as:
        os.chown(root, run_as.pw_uid, run_as.pw_gid)
    user = {"user": run_as.pw_uid, "group": run_as.pw_gid} if run_as else {}
    data, port = os.path.join(root, "data"), free_port()
    try:
        subprocess.run([initdb, "-D", data, "-U", "digitnet", "--auth=trust", "-E", "UTF8", "--no-instructions"],
                       check=True, capture_output=True, cwd=root, **user)
        subprocess.run([pg_ctl, "-D", data, "-l", os.path.join(root, "log"), "-w", "-t", "60", "start",
                        "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"],
                       check=True, capture_output=True, cwd=root, **user)
        yield f"postgresql://digitnet@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([pg_ctl, "-D", data, "-m", "immediate", "-w", "stop"], capture_output=True, cwd=root, **user)
        shutil.rmtree(root, ignore_errors=True)


def test_two_machines_share_a_postgres_study(postgres_url, tmp_path):
    data_dir = write_mnist(tmp_path / "mnist", n_train=1200, n_test=200)
    # Two machines started at the same moment on a new study, each with its own output folder.
    command = [sys.executable, "-m", "digitnet", "sweep", "--storage", postgres_url, "--study", "shared",
               "--data-dir", str(data_dir), *SMALL, "--set", "batch-size=100", "--trials", "8", "--epochs", "12",
               "--jobs", "1", "--quiet"]
    both = [subprocess.Popen([*command, "--out", str(tmp_path / machine)], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True) for machine in ("a", "b")]
    outputs = [p.communicate(timeout=240)[0] for p in both]
    assert [p.returncode for p in both] == [0, 0], outputs
    assert all("8 of 8 trials done" in out and "Traceback" not in out for out in outputs), outputs

    study = optuna.load_study(study_name="shared", storage=storages.open_storage(postgres_url))
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(done) == 8
    settings = [tuple(sorted(t.params.items())) for t in done]
    assert len(set(settings)) == 8
    # Every trial's checkpoint is in the output folder of the process that ran it, and only there.
    for t in done:
        here = [(tmp_path / m / t.user_attrs["checkpoint"]).is_file() for m in ("a", "b")]
        assert sum(here) == 1, (t.number, here)

    # Any machine shows the whole study from the database.
    shown = subprocess.run([sys.executable, "-m", "digitnet", "sweep", "--show", str(tmp_path / "page"),
                            "--storage", postgres_url, "--study", "shared"], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert "8 of 8 trials done" in shown.stdout and (tmp_path / "page" / "index.html").is_file()


def test_an_unreachable_database_gets_one_message(tmp_path):
    pytest.importorskip("psycopg", reason="the psycopg driver is missing: pip install 'digitnet[postgres]'")
    result = run_cli("sweep", "--storage", f"postgresql://nobody:secret@127.0.0.1:{free_port()}/none",
                     "--out", tmp_path / "x", "--data-dir", write_mnist(tmp_path / "mnist"), expect=1)
    assert "cannot open the study database postgresql" in result.output
    assert "secret" not in result.output


def test_processes_creating_a_new_database_at_once_all_get_it(postgres_url):
    """The first start of a study on a new database: several machines create Optuna's tables at the
    same moment; the losers of that race (PostgreSQL: "relation already exists") retry and join."""
    import psycopg

    base = postgres_url.rsplit("/", 1)[0]
    for round_ in range(3):
        name = f"race{round_}"
        with psycopg.connect(postgres_url.replace("postgresql://", "postgresql://", 1), autocommit=True) as c:
            c.execute(f"CREATE DATABASE {name}")
        code = ("import sys; from digitnet.sweep import storage; storage.open_storage(sys.argv[1]); print('ok')")
        racers = [subprocess.Popen([sys.executable, "-c", code, f"{base}/{name}"], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True) for _ in range(4)]
        outputs = [p.communicate(timeout=120)[0] for p in racers]
        assert [p.returncode for p in racers] == [0] * 4, outputs


@pytest.mark.parametrize("error", ["ProgrammingError", "IntegrityError", "OperationalError"])
def test_losing_the_table_creation_race_retries(monkeypatch, error):
    """What PostgreSQL (DuplicateTable: ProgrammingError) and SQLite say to the loser of the race above."""
    import sqlalchemy

    made = []

    def storage(*args, **kwargs):
        made.append(args)
        if len(made) == 1:
            raise getattr(sqlalchemy.exc, error)("CREATE TABLE studies", {}, Exception('relation "studies" already exists'))
        return "storage"

    monkeypatch.setattr(storages.optuna.storages, "RDBStorage", storage)
    monkeypatch.setattr(storages.time, "sleep", lambda seconds: None)
    assert storages.open_storage("postgresql://nobody@127.0.0.1:1/none") == "storage"
    assert len(made) == 2
