"""Run a fuzz harness with atheris, or replay its corpus and regressions deterministically.

    python -m tests.fuzz.runner NAME [--minutes N]      coverage-guided fuzzing of tests/fuzz/fuzz_NAME.py
    python -m tests.fuzz.runner all [--minutes N]       each harness in turn (``make fuzz``)
    python -m tests.fuzz.runner --replay NAME [FILE..]  every corpus/NAME and regressions/NAME file, once

A harness module ``tests/fuzz/fuzz_NAME.py`` defines ``EXPECTED`` (a tuple of the loader's documented
exception classes) and ``one_input(data: bytes)``.  An input *passes* when ``one_input`` returns or raises
one of ``EXPECTED``, spends under ``MAX_CPU_S`` of CPU, and its peak memory (VmHWM, reset before each
input) is under ``MAX_GROWTH_MB`` above the RSS just before it.  Anything else is a *finding*.  CPU time, not wall time, so that two shared cores under load do not fail a correct loader.

While fuzzing, findings are saved (deduplicated by root cause: exception class and the innermost digitnet
frame) under ``tests/fuzz/findings/NAME/`` and the fuzzer keeps going; libFuzzer's own hard stops (a hang
past ``--timeout`` or RSS past ``--rss-limit-mb``) end one run, which is then restarted until the minutes
are spent.  New interesting inputs go to ``findings/NAME/corpus/``; the seeds in ``corpus/NAME`` are read-only.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import resource
import subprocess
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MAX_CPU_S = 2.0
MAX_GROWTH_MB = 300.0
REPLAY_TAG = "REPLAY "


def harness_names() -> list[str]:
    """Every harness, by name: tests/fuzz/fuzz_NAME.py."""
    return sorted(p.stem[len("fuzz_"):] for p in HERE.glob("fuzz_*.py"))


def load_harness(name: str, instrument: bool = False):
    """Import tests.fuzz.fuzz_NAME; with ``instrument``, its digitnet imports get atheris coverage."""
    if name not in harness_names():
        raise SystemExit(f"no harness {name!r}: choose from {', '.join(harness_names())} (tests/fuzz/fuzz_NAME.py)")
    module_name = f"tests.fuzz.fuzz_{name}"
    if not instrument:
        return importlib.import_module(module_name)
    import atheris
    # Only digitnet is instrumented: numpy and PIL under coverage would be slow and are not ours to fix.
    with atheris.instrument_imports(include=["digitnet"]):
        return importlib.import_module(module_name)


def _status_mb(field: str) -> float | None:
    """VmHWM (peak) or VmRSS (now) of this process from /proc, in MB; None where there is no /proc."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    """This process's peak resident set since the last ``reset_peak``.

    VmHWM, not ``ru_maxrss``: Linux carries a parent's RSS at fork into the child's ru_maxrss across
    exec, so a replay started by a 300 MB pytest worker would seem to start at 300 MB and hide growth."""
    peak = _status_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def rss_mb() -> float:
    now = _status_mb("VmRSS")
    return now if now is not None else peak_rss_mb()


def reset_peak() -> bool:
    """Start a new peak (``5`` in /proc/self/clear_refs, Linux 4.0+), so each input's own peak is seen."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _innermost_frame(exc: BaseException) -> str:
    """module:line of the deepest digitnet frame of a traceback (or the deepest frame at all)."""
    frames = traceback.extract_tb(exc.__traceback__)
    # the package's own frames (the checkout's path may itself contain "digitnet")
    ours = [f for f in frames if f"{os.sep}digitnet{os.sep}" in f.filename.replace(str(ROOT), "", 1)] or frames
    if not ours:
        return "unknown"
    f = ours[-1]
    return f"{Path(f.filename).stem}-{f.lineno}"


class Checker:
    """Runs one input through a harness and judges it against the bounds; one per process."""

    def __init__(self, harness):
        self.one_input = harness.one_input
        self.expected = tuple(harness.EXPECTED)
        self.baseline_mb = None
        self.check(b"")  # lazy imports and first-call caches belong to the baseline
        self.baseline_mb = rss_mb()

    def check(self, data: bytes) -> dict:
        """Outcome of one input: {"outcome": "ok" | "expected" | "unexpected" | "slow" | "memory", ...}.

        ``growth_mb`` is the input's own cost: its peak RSS over the RSS just before it (so a fuzzing
        process that grows slowly over hours does not blame a small input).  Where the peak cannot be
        reset it only rises: then it is measured over the baseline, and only the input that raised it
        past the bound is blamed."""
        resets = reset_peak()
        peak_before = peak_rss_mb()
        start_mb = rss_mb() if resets else self.baseline_mb
        start = time.process_time()
        result = {"outcome": "ok"}
        try:
            self.one_input(data)
        except self.expected as exc:
            result = {"outcome": "expected", "error": type(exc).__name__}
        except Exception as exc:  # noqa: BLE001 - anything undocumented is exactly what we look for
            result = {"outcome": "unexpected", "error": type(exc).__name__, "where": _innermost_frame(exc),
                      "traceback": "".join(traceback.format_exception(exc))[-4000:]}
        cpu = time.process_time() - start
        peak_after = peak_rss_mb()
        result["cpu_s"] = round(cpu, 3)
        result["growth_mb"] = round(peak_after - (start_mb or peak_after), 1)
        if result["outcome"] in ("ok", "expected") and self.baseline_mb is not None:
            if cpu > MAX_CPU_S:
                result.update(outcome="slow", where=f"{cpu:.1f}s")
            elif result["growth_mb"] > MAX_GROWTH_MB and (resets or peak_after > peak_before):
                result.update(outcome="memory", where=f"{result['growth_mb']:.0f}MB")
        return result


def replay_files(name: str, paths: list[Path] | None = None) -> list[Path]:
    """The files replayed for a harness: the given ones, or all of corpus/NAME and regressions/NAME."""
    if paths:
        return paths
    found = []
    for kind in ("corpus", "regressions"):
        folder = HERE / kind / name
        if folder.is_dir():
            found += sorted(p for p in folder.rglob("*") if p.is_file())
    return found


def replay(name: str, paths: list[Path] | None = None) -> int:
    """Replay each file once; print one ``REPLAY {json}`` line per file; exit 1 if any is a finding."""
    checker = Checker(load_harness(name))
    bad = 0
    for path in replay_files(name, paths):
        print(REPLAY_TAG + json.dumps({"start": str(path)}), flush=True)  # names the culprit of a hang
        result = checker.check(path.read_bytes())
        result["file"] = str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
        bad += result["outcome"] not in ("ok", "expected")
        print(REPLAY_TAG + json.dumps(result), flush=True)
    return 1 if bad else 0


def _fuzz_child(name: str, libfuzzer_args: list[str]) -> None:
    """One atheris run in this process (libFuzzer ends it with exit(); it never returns)."""
    import atheris

    findings = HERE / "findings" / name
    findings.mkdir(parents=True, exist_ok=True)
    checker = Checker(load_harness(name, instrument=True))
    seen = {p.name.rsplit("-", 1)[0] for p in findings.iterdir() if p.is_file()}

    def test_one_input(data: bytes) -> None:
        result = checker.check(data)
        if result["outcome"] in ("ok", "expected"):
            return
        signature = f"{result['outcome']}-{result.get('error', 'bound')}-{result.get('where', '')}"
        if result["outcome"] in ("slow", "memory"):
            signature = f"{result['outcome']}-bound"  # one file per kind; the replay re-measures it
        if signature in seen:
            return
        seen.add(signature)
        path = findings / f"{signature}-{hashlib.sha1(data).hexdigest()[:10]}"
        path.write_bytes(data)
        print(f"\n=== finding: {path.relative_to(ROOT)}\n{result.get('traceback', result)}",
              file=sys.stderr, flush=True)

    harness_args = list(getattr(sys.modules[f"tests.fuzz.fuzz_{name}"], "LIBFUZZER_ARGS", []))
    atheris.Setup([sys.argv[0], *harness_args, *libfuzzer_args], test_one_input)
    atheris.Fuzz()


def fuzz(name: str, minutes: float, timeout_s: int, rss_limit_mb: int, extra: list[str]) -> int:
    """Fuzz one harness for ``minutes``, restarting libFuzzer after a hard stop; 1 if anything was found."""
    findings = HERE / "findings" / name
    work_corpus = findings / "corpus"
    work_corpus.mkdir(parents=True, exist_ok=True)
    before = {p.name for p in findings.iterdir() if p.is_file()}
    deadline = time.monotonic() + minutes * 60
    runs = 0
    while (left := deadline - time.monotonic()) > 5 and runs < 20:
        runs += 1
        args = [f"-max_total_time={int(left)}", f"-timeout={timeout_s}", f"-rss_limit_mb={rss_limit_mb}",
                f"-artifact_prefix={findings}/", "-print_final_stats=1", *extra,
                str(work_corpus), str(HERE / "corpus" / name)]
        started = time.monotonic()
        try:
            proc = subprocess.run([sys.executable, "-m", "tests.fuzz.runner", "--child", name, "--", *args], cwd=ROOT)
        except KeyboardInterrupt:  # Ctrl-C reached the child too; what it found is saved
            print(f"{name}: interrupted")
            return 130
        if proc.returncode == 0:
            break
        if time.monotonic() - started < 5 and not _new_files(findings, before):
            print(f"{name}: the fuzzer stopped at once (exit {proc.returncode}): see above", file=sys.stderr)
            return 2
    new = _new_files(findings, before)
    for n in new:
        print(f"{name}: new finding tests/fuzz/findings/{name}/{n}")
    print(f"{name}: {len(new)} new finding(s) in {minutes:g} min ({runs} run(s))")
    return 1 if new else 0


def _new_files(folder: Path, before: set[str]) -> list[str]:
    return sorted({p.name for p in folder.iterdir() if p.is_file()} - before)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:  # internal: python -m tests.fuzz.runner --child NAME -- LIBFUZZER_ARGS
        _fuzz_child(argv[1], argv[3:])
        return 0
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.runner", description=__doc__.split("\n")[0])
    parser.add_argument("name", help=f"a harness ({', '.join(harness_names())}) or 'all'")
    parser.add_argument("files", nargs="*", type=Path, help="with --replay: only these files")
    parser.add_argument("--replay", action="store_true", help="replay the corpus and regressions, no fuzzing")
    parser.add_argument("--minutes", type=float, default=10.0, help="fuzzing time per harness (default 10)")
    parser.add_argument("--timeout", type=int, default=20, help="libFuzzer's hang limit per input, s (default 20)")
    parser.add_argument("--rss-limit-mb", type=int, default=1500, help="libFuzzer's hard memory stop (default 1500)")
    parser.add_argument("--libfuzzer", action="append", default=[], metavar="FLAG",
                        help="an extra libFuzzer flag, written with '=': --libfuzzer=-max_len=4096")
    args = parser.parse_args(argv)
    if args.minutes <= 0:
        parser.error("--minutes must be positive")
    names = harness_names() if args.name == "all" else [args.name]
    if any(n not in harness_names() for n in names):
        parser.error(f"no harness {args.name!r}: choose from {', '.join(harness_names())} or 'all'")
    if args.files and (not args.replay or args.name == "all"):
        parser.error("FILE arguments go with --replay and one harness: --replay NAME FILE...")
    missing = [str(f) for f in args.files if not f.is_file()]
    if missing:
        parser.error(f"no such file: {', '.join(missing)}")
    if args.replay:
        return max(replay(n, args.files or None) for n in names)
    status = 0
    for n in names:
        found = fuzz(n, args.minutes, args.timeout, args.rss_limit_mb, args.libfuzzer)
        if found == 130:
            return found  # Ctrl-C stops `make fuzz`, not just the harness in progress
        status = max(status, found)
    return status


if __name__ == "__main__":
    sys.exit(main())
