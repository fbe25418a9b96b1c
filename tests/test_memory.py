"""digitnet.memory: a process reading pictures one after another reuses its freed memory."""

import platform
import subprocess
import sys
import textwrap

import pytest

from digitnet import memory

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"

READ_CANVASES = textwrap.dedent("""
    import io, resource, sys
    import numpy as np
    from PIL import Image, ImageDraw
    from digitnet import predict
    from digitnet.memory import keep_freed_memory
    from digitnet.network import Network

    if sys.argv[1] == "keep":
        assert keep_freed_memory()
    image = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(image).line([(160, 45), (75, 175), (215, 175)], fill=22, width=20)
    ImageDraw.Draw(image).line([(175, 100), (175, 240)], fill=22, width=20)
    buffer = io.BytesIO(); image.save(buffer, "PNG"); body = buffer.getvalue()
    network = Network([784, 30, 10], rng=np.random.default_rng(0))
    for _ in range(30):
        predict.predict_bytes(network, body)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(50):
        predict.predict_bytes(network, body)
    print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 50)
""")


REUSE_A_BLOCK = textwrap.dedent("""
    import resource, sys
    import numpy as np
    from digitnet.memory import keep_freed_memory

    if sys.argv[1] == "keep":
        assert keep_freed_memory()
    np.ones(1 << 17)  # 1 MB, freed: glibc now trims the heap's top past 2 MB free
    for rounds in (1, 10):  # the first round grows the heap: not counted
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(rounds):
            blocks = [np.ones(115_000) for _ in range(3)]  # 0.9 MB each, on the heap: 2.7 MB, then freed
            del blocks
    print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
""")


def _faults(script: str, mode: str) -> float:
    return float(subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True,
                                check=True).stdout)


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
def test_freed_memory_is_taken_again_without_page_faults():
    """The mechanism, deterministically: with glibc's defaults three freed blocks of 0.9 MB at the
    heap's top are handed back, and the next three fault their 642 pages in again."""
    assert _faults(REUSE_A_BLOCK, "default") > 300
    assert _faults(REUSE_A_BLOCK, "keep") < 10


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
def test_a_reader_takes_no_new_pages_for_each_picture():
    """Without it, glibc handed the heap's free top back after each canvas and faulted it in again
    for the next (about 190 page faults a canvas, a third of its CPU time).  Whether a process
    without it falls into that depends on what it allocated before (0 or 172 faults a canvas in
    this very script, from one run to the next), so only this side is asserted; the mechanism
    is the test above."""
    assert _faults(READ_CANVASES, "keep") < 10


def test_it_says_whether_it_took_effect():
    assert memory.keep_freed_memory() is GLIBC
    assert memory.keep_freed_memory() is GLIBC  # again: still fine


def test_the_workers_that_read_pictures_use_it(monkeypatch):
    from digitnet import predict
    from digitnet.serve import workers

    called = []
    monkeypatch.setattr(predict, "keep_freed_memory", lambda: called.append("predict FOLDER's reader"))
    monkeypatch.setattr(workers, "keep_freed_memory", lambda: called.append("serve's worker"))
    monkeypatch.setattr(predict.signal, "signal", lambda *a: None)
    monkeypatch.setattr(predict.sys, "platform", "elsewhere")  # no prctl, no parent check in this process

    class Closed:
        def recv_bytes(self):
            raise EOFError

    predict._start_reader("auto", parent=-1, limit_blas=False)
    workers._work(Closed(), None)
    assert called == ["predict FOLDER's reader", "serve's worker"]
