"""Standard output that survives its reader leaving (``digitnet evaluate | head -1``).

digitnet.cli.main installs it around every command; `train` asks to keep going without a reader.
"""

from __future__ import annotations

import io
import os
import sys


class ReaderGone(Exception):
    """Whoever read our standard output has closed it (``digitnet evaluate | head -1``)."""


class ReaderTolerantStdout:
    """sys.stdout that survives its reader leaving (EPIPE, as when ``head`` has seen enough).

    The first failed write points file descriptor 1 at /dev/null, so neither
    later writes nor Python's flush at exit complain; then it raises
    ``ReaderGone`` (the command stops quietly, exit 0) unless ``keep_going`` is
    set: ``train`` goes on to the end of its run, saving every epoch as usual,
    its output dropped, because the checkpoint, not the text, is what it makes.
    """

    keep_going = False

    def __init__(self, stream):
        self._stream = stream
        self.reader_gone = False

    def write(self, text):
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            return self._gone(len(text))

    def flush(self):
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._gone(None)

    def _gone(self, result):
        if not self.reader_gone:
            self.reader_gone = True
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, self._stream.fileno())
                os.close(devnull)
            except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
                pass
        if not self.keep_going:
            raise ReaderGone
        return result

    def __getattr__(self, name):
        return getattr(self._stream, name)


def keep_going_without_reader():
    """For `train`: a closed standard output drops the output but does not stop the run."""
    if isinstance(sys.stdout, ReaderTolerantStdout):
        sys.stdout.keep_going = True
