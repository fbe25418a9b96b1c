"""Every fuzz seed and every regression input, replayed through its harness: no fuzzing, deterministic.

One subprocess per harness (tests/fuzz/fuzz_*.py, found by name, so a new harness needs no edit here)
runs ``python -m tests.fuzz.runner --replay NAME``: only the harness's EXPECTED errors may escape, and
each input must stay under the runner's bounds, measured inside that process (CPU seconds, not wall
time, and each input's peak RSS over the harness's baseline).  See docs/fuzzing.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `pytest` (not `python -m pytest`) puts only tests/ on the path
    sys.path.insert(0, str(ROOT))
from tests.fuzz import runner  # noqa: E402
HANG = 120  # seconds: far beyond the 2 s per input, only to name the input of a hang


def _lines(out: str) -> list[dict]:
    return [json.loads(l[len(runner.REPLAY_TAG):]) for l in out.splitlines() if l.startswith(runner.REPLAY_TAG)]


def _replay(name: str) -> tuple[subprocess.CompletedProcess | None, list[dict], str]:
    try:
        proc = subprocess.run([sys.executable, "-m", "tests.fuzz.runner", "--replay", name], cwd=ROOT,
                              capture_output=True, text=True, timeout=HANG)
    except subprocess.TimeoutExpired as e:
        return None, _lines(e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")), ""
    return proc, _lines(proc.stdout), proc.stderr


@pytest.mark.parametrize("name", runner.harness_names())
def test_corpus_and_regressions_replay_within_bounds(name):
    files = runner.replay_files(name)
    assert any("/corpus/" in str(p) for p in files), f"tests/fuzz/corpus/{name}/ has no seed files"
    proc, lines, stderr = _replay(name)
    started = [l["start"] for l in lines if "start" in l]
    if proc is None:
        pytest.fail(f"{name}: the replay did not finish in {HANG} s; last input started: {started[-1:]}")
    results = [l for l in lines if "outcome" in l]
    assert proc.returncode in (0, 1) and len(results) == len(files), f"{name}: the replay broke:\n{stderr[-3000:]}"
    bad = [r for r in results if r["outcome"] not in ("ok", "expected")]
    assert not bad, "\n\n".join(
        f"{r['file']}: {r['outcome']} {r.get('error', '')} {r.get('where', '')} "
        f"(cpu {r['cpu_s']} s, +{r['growth_mb']} MB)\n{r.get('traceback', '')}" for r in bad)


def test_every_harness_keeps_regressions():
    for name in runner.harness_names():
        folder = runner.HERE / "regressions" / name
        assert folder.is_dir() and any(folder.iterdir()), f"tests/fuzz/regressions/{name}/ is empty"


# ---------------------------------------------------------------------------
# The judge itself: each kind of finding is seen (fake harnesses, in this process).

def _checker(one_input, expected=(ValueError,)):
    return runner.Checker(SimpleNamespace(one_input=one_input, EXPECTED=expected))


def _fails_on(marker: bytes, error: type[BaseException]):
    def one_input(data):
        if data == marker:
            raise error("found")
    return one_input


def test_an_undocumented_error_is_a_finding():
    checker = _checker(_fails_on(b"x", KeyError))
    assert checker.check(b"y")["outcome"] == "ok"
    found = checker.check(b"x")
    assert found["outcome"] == "unexpected" and found["error"] == "KeyError" and "found" in found["traceback"]
    assert _checker(_fails_on(b"x", ValueError)).check(b"x") | {"cpu_s": 0, "growth_mb": 0} == {
        "outcome": "expected", "error": "ValueError", "cpu_s": 0, "growth_mb": 0}


def test_cpu_time_over_the_bound_is_a_finding(monkeypatch):
    monkeypatch.setattr(runner, "MAX_CPU_S", 0.02)

    def burn(data):
        end = time.process_time() + (0.1 if data else 0)
        while time.process_time() < end:
            pass

    assert _checker(burn).check(b"spin")["outcome"] == "slow"


def test_memory_growth_over_the_bound_is_a_finding():
    # In a fresh process, as the replay runs (where /proc/self/clear_refs cannot reset the peak, this
    # process's earlier tests may have left it above anything added here).
    code = """if True:
        from types import SimpleNamespace
        from tests.fuzz import runner
        runner.MAX_GROWTH_MB = 20
        kept = []
        def grow(data):
            if data:
                kept.append(b"\\x01" * (80 * 2**20))  # written, so resident (calloc'd zeros might not be)
        checker = runner.Checker(SimpleNamespace(one_input=grow, EXPECTED=()))
        print(checker.check(b"grow")["outcome"])
    """
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["memory"], out.stdout + out.stderr
