"""`digitnet explain` through click's CliRunner: parity with digitnet.inside and POST /api/explain,
--off, --digit, --top, the picture, and one clear message for every mistake."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from helpers import run_cli

from digitnet import checkpoint, inside, predict
from digitnet.network import Network


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """Random-weight checkpoints: 784-16-10 (sigmoid outputs) and 784-12-8-10 (softmax, two hidden layers)."""
    folder = tmp_path_factory.mktemp("models")
    return {
        "one": checkpoint.save(folder / "one.npz", Network([784, 16, 10], rng=np.random.default_rng(0)), metadata={}),
        "two": checkpoint.save(folder / "two.npz", Network([784, 12, 8, 10], cost="log-likelihood",
                                                           rng=np.random.default_rng(1)), metadata={}),
        "wrong": checkpoint.save(folder / "wrong.npz", Network([784, 6, 3], rng=np.random.default_rng(2)),
                                 metadata={}),
    }


@pytest.fixture(scope="module")
def seven(tmp_path_factory) -> Path:
    """A dark 7 on light paper, as a user would draw it."""
    path = tmp_path_factory.mktemp("pictures") / "seven.png"
    image = Image.new("L", (90, 120), 245)
    ImageDraw.Draw(image).line([(20, 25), (70, 25), (40, 100)], fill=10, width=9)
    image.save(path)
    return path


def run(*args, expect: int | None = 0):
    return run_cli("explain", *args, expect=expect)


def network_and_input(model: Path, image: Path):
    """The network and the 784 inputs exactly as `digitnet predict` reads them, with the prediction."""
    network, _ = checkpoint.load(model).weights("best")
    prediction = next(predict.predict_files(network, [(str(image), None)]))
    return network, prediction.image.reshape(-1), prediction


def expected_json(model: Path, image: Path, top=None, **options) -> dict:
    """What --json must print: inside.explain's to_dict on the same input, with "image", "input", "notes"."""
    network, x, prediction = network_and_input(model, image)
    record = {"image": str(image), **inside.explain(network, x, **options).to_dict(top=top),
              "input": prediction.to_dict(with_input=True)["input"], "notes": list(prediction.warnings)}
    return json.loads(json.dumps(record))   # floats as JSON carries them (repr: exact)


# ---------------------------------------------------------------------------
# The same numbers as the library and as the API


@pytest.mark.parametrize("name", ["one", "two"])
def test_json_is_inside_explain_to_dict_to_the_last_digit(models, seven, name):
    printed = json.loads(run(seven, "-m", models[name], "--json").stdout)
    assert printed == expected_json(models[name], seven)
    assert len(printed["contributions"]) == (16 if name == "one" else 8)   # every unit, as /api/explain
    assert len(printed["layers"]) == (1 if name == "one" else 2) and len(printed["saliency"]) == 784


@pytest.mark.parametrize("args, query", [([], {}),
                                         (["--digit", "2", "--off", "1:3,1:7"], {"digit": "2", "off": "1:3,1:7"})])
def test_json_equals_what_post_api_explain_answers(models, seven, args, query):
    from digitnet.serve.api import Recogniser
    from digitnet.serve.inside import Inside

    model = models["two"]
    printed = json.loads(run(seven, "-m", model, "--json", *args).stdout)
    served = Inside().explain(Recogniser(checkpoint.load(model), str(model)), seven.read_bytes(), query)
    assert printed.pop("image") == str(seven)
    assert printed == json.loads(json.dumps(served))


def test_off_changes_the_outputs_as_inside_says(models, seven):
    network, x, _ = network_and_input(models["one"], seven)
    printed = json.loads(run(seven, "-m", models["one"], "--json", "--off", "1:3,1:7").stdout)
    assert printed == expected_json(models["one"], seven, off=((1, 3), (1, 7)))
    assert printed["off"] == [[1, 3], [1, 7]]
    assert printed["outputs"] != inside.explain(network, x).outputs.tolist()
    bare = json.loads(run(seven, "-m", models["one"], "--json", "--off", "7,3").stdout)
    assert bare == printed   # bare units are the last hidden layer's
    text = run(seven, "-m", models["one"], "--off", "1:3,1:7").stdout
    everything_on = inside.explain(network, x)
    assert f"switched off: 1:3, 1:7; with every unit on the answer is {everything_on.answer}" in text


def test_digit_explains_another_digit(models, seven):
    network, x, _ = network_and_input(models["one"], seven)
    answer = inside.explain(network, x).answer
    other = (answer + 1) % 10
    printed = json.loads(run(seven, "-m", models["one"], "--json", "--digit", other).stdout)
    assert printed == expected_json(models["one"], seven, digit=other)
    assert printed["digit"] == other and printed["answer"] == answer
    text = run(seven, "-m", models["one"], "--digit", other).stdout
    assert f"explaining {other} (output" in text and f"z^L_{other} = " in text


def test_top_keeps_the_k_largest_contributions(models, seven):
    printed = json.loads(run(seven, "-m", models["one"], "--json", "--top", "3").stdout)
    assert printed == expected_json(models["one"], seven, top=3)
    assert len(printed["contributions"]) == 3


def test_text_shows_the_sum_and_the_top_units_either_way(models, seven):
    network, x, _ = network_and_input(models["one"], seven)
    e = inside.explain(network, x)
    text = run(seven, "-m", models["one"], "--top", "4").stdout
    assert text.startswith(f"{seven}: {e.answer} (output {e.outputs[e.answer]:.4f})\n")
    z = re.search(r"z\^L_\d = (\S+) = (\S+) \(.*\) ([+-]) (\S+) \(b\^L_\d\)", text)
    assert float(z[1]) == pytest.approx(float(z[2]) + float(z[3] + z[4]), abs=2e-4)
    assert float(z[1]) == pytest.approx(e.zs[-1][e.digit], abs=1e-4)
    rows = re.findall(r"^  (towards|against) +(\d+) +([\d.]+) +([+-][\d.]+)$", text, re.M)
    c = e.contributions
    towards = [int(k) for k in e.order if c[k] > 0][:4]
    against = [int(k) for k in e.order[::-1] if c[k] < 0][:4]
    expected = [("towards", k) for k in towards] + [("against", k) for k in against]
    assert [(side, int(k)) for side, k, _, _ in rows] == expected
    for _, k, a, contribution in rows:
        assert float(a) == pytest.approx(e.activations[-2][int(k)], abs=1e-4)
        assert float(contribution) == pytest.approx(c[int(k)], abs=1e-4)


# ---------------------------------------------------------------------------
# The picture


@pytest.mark.parametrize("name", ["one", "two"])
def test_out_writes_a_png_of_sensible_size(models, seven, tmp_path, name):
    out = tmp_path / "explain.png"
    result = run(seven, "-m", models[name], "--out", out)
    assert f"picture: {out}" in result.stdout
    with Image.open(out) as picture:
        assert picture.format == "PNG"
        assert 600 <= picture.width <= 2000 and 400 <= picture.height <= 2000, picture.size
    assert [p.name for p in tmp_path.iterdir()] == ["explain.png"]   # no temporary file left beside it


def test_no_picture_unless_asked_and_no_overwrite_without_force(models, seven, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run(seven, "-m", models["one"])
    assert list(tmp_path.iterdir()) == []
    out = tmp_path / "explain.png"
    out.write_bytes(b"keep me")
    result = run(seven, "-m", models["one"], "--out", out, expect=1)
    assert result.output == f"Error: {out} already exists: choose another --out, or pass --force to replace it\n"
    assert out.read_bytes() == b"keep me"
    run(seven, "-m", models["one"], "--out", out, "--force", "--json")
    assert out.read_bytes().startswith(b"\x89PNG")


# ---------------------------------------------------------------------------
# Mistakes: one line, exit 2 for what was typed, exit 1 for files


@pytest.mark.parametrize("args, message", [
    (["--digit", "10"], "Invalid value for '--digit': 10 is not in the range 0<=x<=9."),
    (["--digit", "x"], "Invalid value for '--digit'"),
    (["--off", "1:99"], "--off 1:99: hidden layer 1 has 16 units (0..15)"),
    (["--off", "2:1"], "--off 2:1: the network has 1 hidden layer (1..1)"),
    (["--off", "16"], "--off 16: hidden layer 1 has 16 units (0..15)"),
    (["--off", "a:b"], "--off: 'a:b' is not a unit"),
    (["--top", "0"], "Invalid value for '--top': 0 is not in the range x>=1."),
    (["--top", "-3"], "Invalid value for '--top'"),
    (["--out", "picture.jpg"], "picture.jpg does not end in .png"),
])
def test_typing_mistakes_exit_2_with_one_error_line(models, seven, args, message):
    result = run(seven, "-m", models["one"], *args, expect=2)
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], result.output


def test_a_model_given_as_the_image_is_a_typing_mistake(models):
    result = run(models["one"], "-m", models["two"], expect=2)
    assert f"{models['one']} looks like a model, not an image: did you mean --model {models['one']}?" in result.output


def test_file_problems_exit_1_with_one_line(models, seven, tmp_path):
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("not a picture")
    cases = [
        ([tmp_path / "absent.png", "-m", models["one"]], f"{tmp_path / 'absent.png'}: no such file"),
        ([not_an_image, "-m", models["one"]], f"{not_an_image}: not an image"),
        ([seven, "-m", models["wrong"]], f"{models['wrong']}: a 784-6-3 network cannot read 28x28 digits"),
        ([seven, "-m", tmp_path / "absent.npz"], f"{tmp_path / 'absent.npz'}: no such file"),
        ([seven, "-m", models["one"], "--out", tmp_path / "no" / "folder.png"], "cannot write"),
    ]
    for args, message in cases:
        result = run(*args, expect=1)
        assert len(result.output.splitlines()) == 1 and result.output.startswith("Error: "), result.output
        assert message in result.output, result.output


# ---------------------------------------------------------------------------
# Help


def test_help_documents_every_option_with_its_default():
    text = " ".join(run("--help").output.split())
    for shown in ("-m, --model PATH", "[default: model.npz]", "--weights [best|last]", "[default: best]",
                  "[default: the answer]", "[0<=x<=9]", "--off UNITS", "[default: none]", "--top K",
                  "[default: 5; x>=1]", "--out FILE", "[default: no picture]", "--force", "--json",
                  "POST /api/explain", "--invert [auto|yes|no]", "[default: auto]"):
        assert shown in text, shown
    assert re.search(r"^\s+explain\s+Show why the network", run_cli("--help").output, re.M)
