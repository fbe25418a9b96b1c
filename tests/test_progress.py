"""Progress bars fit narrow terminals and terminals that do not report their width (real ptys)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import sys
import termios

import pytest

from helpers import TRAIN_SHORT


def run_in_terminal(columns: int, args: list) -> str:
    """Run `python -m digitnet ARGS` in a pseudo-terminal ``columns`` wide (0: width unknown)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: its stdin, stdout and stderr are the terminal
        os.environ.pop("COLUMNS", None)
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
        os.execv(sys.executable, [sys.executable, "-m", "digitnet", *map(str, args)])
    output = b""
    while select.select([fd], [], [], 120)[0]:
        try:
            data = os.read(fd, 65536)
        except OSError:  # the child has gone
            break
        if not data:
            break
        output += data
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, output
    return output.decode()


@pytest.mark.parametrize("columns", [0, 30, 45, 100])
def test_the_training_bar_fits_the_terminal(columns, synthetic_data_dir, tmp_path):
    output = run_in_terminal(columns, ["train", "--hidden", "8", *TRAIN_SHORT, "--data-dir", synthetic_data_dir,
                                       "--out", tmp_path / "m.npz"])
    bars = [piece for line in output.split("\n") for piece in line.split("\r") if re.match(r"epoch \d/2\b", piece)]
    assert bars, output  # the bar was drawn
    limit = columns or 40
    assert all(len(bar) <= limit for bar in bars), bars
    assert re.search(r"epoch\s+2/2\s+cost", output)
