"""`digitnet predict` through click's CliRunner: output formats, folders, failures, batching."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from helpers import run_cli

from digitnet import checkpoint, images, predict
from digitnet.network import Network

LINE = re.compile(r"^(?P<path>.+): (?P<digit>\d) \(confidence (?P<confidence>[01]\.\d{3})\)$")


@pytest.fixture(scope="module")
def network() -> Network:
    return Network([784, 16, 10], rng=np.random.default_rng(0))


@pytest.fixture(scope="module")
def model(tmp_path_factory, network) -> Path:
    """A random-weight 784-16-10 checkpoint: enough to exercise the command."""
    return checkpoint.save(tmp_path_factory.mktemp("model") / "model.npz", network, metadata={})


def draw(path: Path, shape: str, mode="L", size=(90, 120)) -> Path:
    """A few digit-like drawings, dark on light."""
    image = Image.new("L", size, 245)
    pen = ImageDraw.Draw(image)
    if shape == "seven":
        pen.line([(20, 25), (70, 25), (40, 100)], fill=10, width=9)
    elif shape == "one":
        pen.line([(45, 20), (45, 100)], fill=10, width=9)
    else:
        pen.ellipse([20, 20, 70, 100], outline=10, width=9)
    image.convert(mode).save(path)
    return path


@pytest.fixture
def folder(tmp_path) -> Path:
    """b.png, a.jpg, c.gif (deliberately out of order), and a notes.txt that is not an image."""
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    draw(pictures / "b.png", "seven")
    draw(pictures / "a.jpg", "one", mode="RGB")
    draw(pictures / "c.gif", "zero", mode="P")
    (pictures / "notes.txt").write_text("not a picture")
    return pictures


def run(*args, expect: int | None = 0):
    """`digitnet predict ARGS` through the shared run_cli (exit code and no-traceback checks)."""
    return run_cli("predict", *args, expect=expect)


def test_plain_output_one_line_per_image(model, folder):
    result = run(folder / "b.png", folder / "a.jpg", "--model", model)
    lines = result.stdout.splitlines()
    assert [LINE.match(line)["path"] for line in lines] == [str(folder / "b.png"), str(folder / "a.jpg")]
    assert result.stderr == ""


def test_folder_gives_its_images_sorted_and_skips_other_files(model, folder):
    lines = run(folder, "--model", model).stdout.splitlines()
    assert [Path(LINE.match(line)["path"]).name for line in lines] == ["a.jpg", "b.png", "c.gif"]


def test_top_k(model, folder):
    line = run(folder / "b.png", "--model", model, "--top-k", "3").stdout.strip()
    entries = re.findall(r"(\d) \(([01]\.\d{3})\)", line)
    assert len(entries) == 3 and len({d for d, _ in entries}) == 3
    shares = [float(s) for _, s in entries]
    assert shares == sorted(shares, reverse=True)
    run(folder / "b.png", "--model", model, "--top-k", "11", expect=2)


def test_json_lines(model, folder, network):
    lines = run(folder, "--model", model, "--json").stdout.splitlines()
    assert len(lines) == 3
    for line in lines:
        record = json.loads(line)
        assert set(record) == {"path", "digit", "confidence", "scores", "looks_like_a_digit"}
        assert len(record["scores"]) == 10 and all(0 <= s <= 1 for s in record["scores"])
        assert record["digit"] == int(np.argmax(record["scores"]))
        assert record["confidence"] == pytest.approx(record["scores"][record["digit"]] / sum(record["scores"]),
                                                     abs=1e-5)
        expected = network.feedforward(images.load_image(record["path"])[None, :])[0]
        assert record["scores"] == pytest.approx(expected.tolist(), abs=1e-5)


def test_show_prints_the_28x28_input(model, folder):
    output = run(folder / "b.png", "--model", model, "--show").stdout.splitlines()
    assert LINE.match(output[0])
    art = output[1:]
    assert len(art) == 28 and max(len(row) for row in art) <= 56
    assert any(set(row) & set("#%@") for row in art)
    run(folder / "b.png", "--model", model, "--show", "--json", expect=2)


def test_one_bad_image_does_not_stop_the_others(model, folder, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    blank = tmp_path / "blank.png"
    Image.new("L", (60, 60), 255).save(blank)
    result = run(folder / "b.png", bad, tmp_path / "missing.png", blank, folder / "a.jpg", "--model", model,
                 expect=1)
    assert [LINE.match(line)["path"] for line in result.stdout.splitlines()] == [
        str(folder / "b.png"), str(folder / "a.jpg")]
    errors = result.stderr.splitlines()
    assert errors[0].startswith(f"{bad}: error: ")
    assert errors[1] == f"{tmp_path / 'missing.png'}: error: no such file"
    assert errors[2].startswith(f"{blank}: error: no ink found")
    assert errors[-1] == "3 of 5 image(s) could not be used"
    assert "Traceback" not in result.output


def test_json_reports_errors_in_line(model, folder, tmp_path):
    (tmp_path / "bad.jpg").write_text("nope")
    result = run(folder / "b.png", tmp_path / "bad.jpg", "--model", model, "--json", expect=1)
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert set(first) == {"path", "digit", "confidence", "scores", "looks_like_a_digit"}
    assert second == {"path": str(tmp_path / "bad.jpg"), "error": "not an image (or not a format Pillow can read)"}


def test_empty_folder_is_an_error(model, tmp_path):
    (tmp_path / "empty").mkdir()
    result = run(tmp_path / "empty", "--model", model, expect=1)
    assert result.stderr == f"no image files in {tmp_path / 'empty'}\n"  # not "1 of 1 image(s) could not be used"
    (tmp_path / "empty" / "sub").mkdir()
    result = run(tmp_path / "empty", "--model", model, expect=1)
    assert result.stderr == f"no image files in {tmp_path / 'empty'} (--recursive reads its subfolders)\n"


def test_recursive_reads_subfolders_sorted_by_path(model, folder):
    nested = folder / "more" / "deeper"
    nested.mkdir(parents=True)
    draw(nested / "z.png", "one")
    draw(folder / "more" / "a.png", "seven")
    (folder / ".hidden").mkdir()
    draw(folder / ".hidden" / "x.png", "one")
    flat = [Path(LINE.match(line)["path"]) for line in run(folder, "--model", model).stdout.splitlines()]
    assert [p.name for p in flat] == ["a.jpg", "b.png", "c.gif"]
    deep = [Path(LINE.match(line)["path"]) for line in run(folder, "-r", "--model", model).stdout.splitlines()]
    assert [str(p.relative_to(folder)) for p in deep] == ["a.jpg", "b.png", "c.gif", "more/a.png",
                                                           "more/deeper/z.png"]


def test_forced_polarity_that_finds_nothing_suggests_the_other(model, tmp_path):
    picture = tmp_path / "white-on-black.png"
    image = Image.new("L", (90, 120), 0)
    ImageDraw.Draw(image).line([(20, 25), (70, 25), (40, 100)], fill=255, width=9)
    image.save(picture)
    result = run(picture, "--model", model, "--invert", "yes", expect=1)
    assert ("no ink found with --invert yes, but the picture looks like light ink on a dark background: "
            "try --invert no") in result.stderr
    run(picture, "--model", model, "--invert", "no")
    run(picture, "--model", model)


def test_noise_is_not_called_blank(model, tmp_path):
    noise = tmp_path / "noise.png"
    Image.fromarray((np.random.default_rng(0).random((120, 90)) * 255).astype(np.uint8)).save(noise)
    blank = tmp_path / "blank.png"
    Image.new("L", (90, 120), 200).save(blank)
    result = run(noise, blank, "--model", model, expect=1)
    assert f"{noise}: error: no digit found: nothing stands out from the picture's noise or texture" in result.stderr
    assert f"{blank}: error: no ink found: the image is blank" in result.stderr


def test_two_digits_side_by_side_get_a_warning(model, tmp_path):
    picture = tmp_path / "42.png"
    image = Image.new("L", (200, 120), 245)
    pen = ImageDraw.Draw(image)
    pen.line([(20, 20), (20, 60), (70, 60)], fill=10, width=9)
    pen.line([(60, 20), (60, 100)], fill=10, width=9)
    pen.line([(120, 25), (170, 25), (170, 60), (120, 60), (120, 100), (170, 100)], fill=10, width=9)
    image.save(picture)
    result = run(picture, "--model", model)
    assert LINE.match(result.stdout.strip())
    assert result.stderr == (f"{picture}: warning: the picture seems to hold 2 digits side by side; only one "
                             "answer is given (crop each digit into a picture of its own)\n")
    answer = json.loads(run(picture, "--model", model, "--json").stdout)
    assert answer["warnings"] == [result.stderr.split(": warning: ")[1].strip()]
    single = run(draw(tmp_path / "seven.png", "seven", size=(200, 120)), "--model", model)
    assert single.stderr == ""


def test_top_k_leaves_out_shares_that_round_to_zero():
    prediction = predict.Prediction("x.png", scores=np.array([0.9, 0.1, 1e-6] + [0.0] * 7))
    assert predict.plain_line(prediction, top_k=5) == "x.png: 0 (0.900), 1 (0.100)"


def test_missing_model(folder, tmp_path):
    result = run(folder / "b.png", "--model", tmp_path / "nope.npz", expect=1)
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert result.stderr.strip() == f"Error: {tmp_path / 'nope.npz'}: no such file"


def test_model_that_is_not_a_checkpoint(folder, tmp_path):
    (tmp_path / "model.npz").write_text("not a checkpoint")
    result = run(folder / "b.png", "--model", tmp_path / "model.npz", expect=1)
    assert result.stderr.startswith("Error: ") and "Traceback" not in result.output


def test_model_of_the_wrong_shape(folder, tmp_path):
    path = checkpoint.save(tmp_path / "small.npz", Network([10, 3, 10], rng=np.random.default_rng(0)), metadata={})
    result = run(folder / "b.png", "--model", path, expect=1)
    assert "784 inputs and 10 outputs" in result.stderr


def test_weights_and_invert_options(tmp_path, folder, network):
    best = Network([784, 16, 10], rng=np.random.default_rng(1))
    path = checkpoint.save(tmp_path / "two.npz", network, metadata={}, best_network=best)
    by_best = json.loads(run(folder / "b.png", "--model", path, "--json").stdout)
    by_last = json.loads(run(folder / "b.png", "--model", path, "--json", "--weights", "last").stdout)
    assert by_best["scores"] != by_last["scores"]
    run(folder / "b.png", "--model", path, "--invert", "yes")
    run(folder / "b.png", "--model", path, "--invert", "no", expect=1)  # no light ink on that picture


def test_batches_give_the_same_answers_as_one_at_a_time(network, folder, tmp_path):
    for i in range(5):
        draw(tmp_path / f"extra{i}.png", ["seven", "one", "zero"][i % 3], size=(90 + 7 * i, 120))
    inputs = [(str(p), None) for p in sorted(tmp_path.glob("extra*.png"))] + [(str(folder / "b.png"), None)]
    batched = list(predict.predict_files(network, inputs, batch_size=2))
    single = [next(predict.predict_files(network, [pair])) for pair in inputs]
    assert [p.path for p in batched] == [path for path, _ in inputs]
    for a, b in zip(batched, single):
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-6)


def test_confidence_is_the_share_of_the_activations():
    prediction = predict.Prediction("x", scores=np.array([0.1, 0.6, 0.3, 0, 0, 0, 0, 0, 0, 0.0]))
    assert prediction.digit == 1 and prediction.confidence == pytest.approx(0.6)
    assert prediction.top(2) == [(1, pytest.approx(0.6)), (2, pytest.approx(0.3))]
    # No output at all: equally unsure of every digit, as in `digitnet report` (metrics.normalised_outputs).
    assert predict.Prediction("x", scores=np.zeros(10)).confidence == pytest.approx(0.1)


def test_the_confidence_is_the_digits_share_to_the_bit():
    rng = np.random.default_rng(11)
    vectors = [rng.random(10), rng.random(10) * 1e-300, np.zeros(10), np.eye(10)[3],
               np.exp(rng.normal(size=10)) / np.exp(rng.normal(size=10)).sum()]
    vectors += [np.where(rng.random(10) < 0.5, 0.0, rng.random(10)) for _ in range(200)]
    for scores in vectors:
        answer = predict.Prediction("x", scores=scores)
        assert answer.confidence == float(answer.shares[answer.digit])


def _as_json(prediction: predict.Prediction, with_input: bool) -> str:
    return json.dumps(prediction.to_dict(with_input=with_input), separators=(",", ":"))


def test_to_json_is_json_dumps_of_to_dict_to_the_byte():
    """The server's fast text (a table of the four-decimal pixel values) against json.dumps itself."""
    rng = np.random.default_rng(3)
    every_value = np.arange(10001) / 10000  # each table entry, and the halfway points between them
    pictures = [rng.random(784, dtype=np.float32), np.zeros(784, np.float32), np.ones(784, np.float32),
                (rng.random(784) < 0.2).astype(np.float32) * rng.random(784, dtype=np.float32),
                np.resize(every_value, 784), np.resize(every_value + 0.00005, 784).clip(0, 1),
                np.resize(every_value[5000:], 784), np.resize(every_value[9216:] - 0.00004999, 784).clip(0, 1)]
    for picture in pictures:
        for warnings in ([], ["the picture seems to hold 2 digits side by side"]):
            answer = predict.Prediction(None, scores=rng.random(10), image=picture, warnings=warnings,
                                        verdict=images.Verdict(False, "a scribble"))
            assert answer.to_json(with_input=True) == _as_json(answer, True)
            assert answer.to_json() == _as_json(answer, False)
    # What the table does not hold is written by json.dumps: out of [0, 1], a negative zero, NaN.
    for odd in (np.float32(1.5), np.float32(-0.25), np.float32(-0.0), np.float32(-0.00001),
                np.float32("nan"), np.float32("inf")):
        picture = np.full(784, 0.5, np.float32)
        picture[17] = odd
        answer = predict.Prediction("a.png", scores=np.arange(10.0), image=picture)
        assert answer.to_json(with_input=True) == _as_json(answer, True)
    failed = predict.Prediction("bad.png", error="not an image")
    assert failed.to_json(with_input=True) == _as_json(failed, True) == '{"path":"bad.png","error":"not an image"}'


def test_importing_the_cli_loads_neither_numpy_nor_pillow():
    code = "import sys, digitnet.cli; print('numpy' in sys.modules, 'PIL' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.split() == ["False", "False"]


def run_with_stdin(data: bytes, *args, expect: int = 0):
    """`digitnet ARGS` in-process with ``data`` on standard input."""
    from click.testing import CliRunner

    from digitnet.cli import main

    result = CliRunner().invoke(main, [str(a) for a in args], input=data)
    assert "Traceback" not in result.output
    assert result.exit_code == expect, (result.exit_code, result.output, result.exception)
    return result


def test_a_dash_reads_the_picture_from_standard_input(model, tmp_path):
    """`digitnet predict - < seven.png` answers as `predict seven.png` does, naming the picture -,
    with --json, --top-k and --show too, and beside files."""
    seven = draw(tmp_path / "seven.png", "seven")
    piped = seven.read_bytes()
    from_file = run_cli("predict", seven, "--model", model).stdout
    assert run_with_stdin(piped, "predict", "-", "--model", model).stdout == from_file.replace(str(seven), "-")
    record = json.loads(run_with_stdin(piped, "predict", "-", "--model", model, "--json").stdout)
    assert record == dict(json.loads(run_cli("predict", seven, "--model", model, "--json").stdout), path="-")
    top = run_with_stdin(piped, "predict", "-", "--model", model, "--top-k", 3).stdout
    assert top == run_cli("predict", seven, "--model", model, "--top-k", 3).stdout.replace(str(seven), "-")
    shown = run_with_stdin(piped, "predict", "-", "--model", model, "--show").stdout
    assert shown.startswith("-: ") and len(shown.splitlines()) > 20
    both = run_with_stdin(piped, "predict", seven, "-", "--model", model).stdout.splitlines()
    assert [line.split(":")[0] for line in both] == [str(seven), "-"]


def test_standard_input_that_is_empty_or_not_a_picture_or_asked_for_twice(model):
    empty = run_with_stdin(b"", "predict", "-", "--model", model, expect=1)
    assert "-: error: nothing came on standard input" in empty.output
    text = run_with_stdin(b"hello\n", "predict", "-", "--model", model, expect=1)
    assert "-: error: not an image" in text.output
    twice = run_with_stdin(b"", "predict", "-", "-", "--model", model, expect=2)
    assert "- (standard input) holds one picture: give it once" in twice.output


def test_a_dot_is_answered_with_a_doubt_and_a_digit_without_one(model, tmp_path):
    """A single dot gets its digit and confidence as before, and says it does not look like a digit:
    "looks_like_a_digit": false and "doubt" in --json, one warning line in the text output."""
    dot = tmp_path / "dot.png"
    picture = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(picture).ellipse([130, 130, 152, 152], fill=0)
    picture.save(dot)
    seven = draw(tmp_path / "seven.png", "seven")
    record = json.loads(run(dot, "--model", model, "--json").stdout)
    assert record["looks_like_a_digit"] is False and record["doubt"].startswith("almost no ink")
    assert {"path", "digit", "confidence", "scores"} <= set(record)
    fine = json.loads(run(seven, "--model", model, "--json").stdout)
    assert fine["looks_like_a_digit"] is True and "doubt" not in fine
    text = run(dot, seven, "--model", model)
    assert [LINE.match(line)["path"] for line in text.stdout.splitlines()] == [str(dot), str(seven)]
    assert text.stderr.splitlines() == [f"{dot}: warning: this does not look like a digit: {record['doubt']}"]


# ---------------------------------------------------------------------------
# --jobs: many files read by a pool of processes, with the same output


@pytest.fixture
def mixed_folder(tmp_path) -> Path:
    """Good pictures of several kinds and sizes, and bad files of several kinds, in one folder."""
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for i in range(9):
        draw(mixed / f"{i:02d}-good.{['png', 'jpg', 'gif'][i % 3]}", ["seven", "one", "zero"][i % 3],
             mode=["L", "RGB", "P"][i % 3], size=(90 + 9 * i, 120))
    (mixed / "03-text.png").write_text("not a picture")
    (mixed / "05-empty.jpg").write_bytes(b"")
    (mixed / "07-cut.png").write_bytes((mixed / "00-good.png").read_bytes()[:60])
    Image.new("L", (60, 60), 250).save(mixed / "08-blank.png")
    return mixed


def test_jobs_give_the_same_output_as_one_process(model, mixed_folder, monkeypatch):
    """Text and --json, answers and errors: the same bytes with --jobs 1 and 2 (the pool really used)."""
    pools = []
    real_pool = predict._reading_pool

    def counted(*args):
        pools.append(args)
        return real_pool(*args)

    monkeypatch.setattr(predict, "POOL_THRESHOLD", 4)  # this small folder is "many files"
    monkeypatch.setattr(predict, "_reading_pool", counted)
    for extra in ([], ["--json"]):
        alone = run(mixed_folder, "--model", model, "--jobs", "1", *extra, expect=1)
        assert not pools
        side_by_side = run(mixed_folder, "--model", model, "--jobs", "2", *extra, expect=1)
        assert [args[0] for args in pools] == [2]
        pools.clear()
        assert side_by_side.stdout == alone.stdout and side_by_side.stderr == alone.stderr
    assert "4 of 13 image(s) could not be used" in alone.stderr
    assert run(mixed_folder, "--model", model, "--jobs", "0", expect=2).stderr.endswith(
        "'0' is not a number of processes: give 1 or more, or auto\n")


def test_jobs_answers_are_scored_as_in_one_process(network, mixed_folder, monkeypatch):
    """The network still runs here on the same batches: the scores are equal to the bit."""
    monkeypatch.setattr(predict, "POOL_THRESHOLD", 4)
    inputs = list(predict.expand_inputs([str(mixed_folder)]))
    alone = list(predict.predict_files(network, inputs, batch_size=4, jobs=1))
    pooled = list(predict.predict_files(network, inputs, batch_size=4, jobs=3))
    assert [(p.path, p.error) for p in pooled] == [(p.path, p.error) for p in alone]
    for a, b in zip(alone, pooled):
        assert (a.scores is None and b.scores is None) or np.array_equal(a.scores, b.scores)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the workers must be forked to inherit the patch")
def test_a_worker_that_dies_leaves_the_files_left_to_this_process(network, mixed_folder, monkeypatch):
    """A worker killed mid-run (as by the out-of-memory killer): the files not yet answered are read here,
    and the answers are those of one process."""
    monkeypatch.setattr(predict, "POOL_THRESHOLD", 4)
    parent, real = os.getpid(), predict._prepare

    def dying(task, invert):
        if os.getpid() != parent and task[0].endswith("04-good.jpg"):
            os._exit(1)
        return real(task, invert)

    monkeypatch.setattr(predict, "_prepare", dying)
    inputs = list(predict.expand_inputs([str(mixed_folder)]))
    alone = [predict.json_line(p) for p in predict.predict_files(network, inputs, jobs=1)]
    assert [predict.json_line(p) for p in predict.predict_files(network, inputs, jobs=2)] == alone


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:  # zombies not yet reaped still count as a group member for killpg(0)
        return True


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def start_stuck_predict(model, tmp_path) -> subprocess.Popen:
    """`digitnet predict` on a FIFO nobody writes to, then 64 small pictures: the worker given the FIFO
    waits in open() for ever (the others wait for the first answer), so the command is reliably mid-run,
    with its pool of 2 started, when the test signals it."""
    folder = tmp_path / "many"
    folder.mkdir()
    picture = draw(tmp_path / "seven.png", "seven", size=(40, 50)).read_bytes()
    for i in range(predict.POOL_THRESHOLD):
        (folder / f"{i:03d}.png").write_bytes(picture)
    fifo = tmp_path / "stuck.png"
    os.mkfifo(fifo)
    process = subprocess.Popen([sys.executable, "-m", "digitnet", "predict", fifo, folder, "--model", model,
                                "--jobs", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while len(children_of(process.pid)) < 2:
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.02)
    time.sleep(0.3)  # the first chunk, the FIFO's, handed to a worker
    return process


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; signals the process group")
def test_ctrl_c_stops_the_pool_exits_130_and_leaves_no_process(model, tmp_path):
    process = start_stuck_predict(model, tmp_path)
    try:
        os.killpg(process.pid, signal.SIGINT)  # as the terminal sends Ctrl-C: to the whole group
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert err.strip() == "interrupted (Ctrl-C)"
    deadline = time.monotonic() + 10
    while group_alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not group_alive(process.pid)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; the death signal is Linux's")
def test_workers_die_with_a_killed_command(model, tmp_path):
    process = start_stuck_predict(model, tmp_path)
    workers = children_of(process.pid)
    process.kill()  # SIGKILL: the command cannot stop its pool itself
    process.communicate(timeout=30)
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)


def test_predict_starts_without_the_training_modules(model, tmp_path):
    """`digitnet predict` imports neither digitnet.runs nor digitnet.training (25 ms of its cold start,
    needed only to name their errors, which user_errors imports once one is raised)."""
    import subprocess
    import sys

    picture = draw(tmp_path / "one.png", "one")
    code = ("import sys; from digitnet.cli import main\n"
            "try:\n    main(['predict', '--model', sys.argv[1], sys.argv[2]])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('digitnet.runs', 'digitnet.training') if m in sys.modules), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code, str(model), str(picture)], capture_output=True, text=True)
    assert done.stderr.strip().splitlines()[-1] == "[]", done.stderr
    assert "one.png" in done.stdout
