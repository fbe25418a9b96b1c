"""`digitnet report`: the files it writes, their agreement with `evaluate`, and its error messages."""

import json
import subprocess
import sys
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from helpers import TRAIN_SHORT, run_cli as run, write_mnist
from digitnet import checkpoint, metrics, report
from digitnet.network import Network

PICTURES = ["curves.png", "confusion.png", "mistakes.png", "hidden.png"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Synthetic MNIST and a tiny model trained on it through the CLI.

    The training file has 10,100 images because `evaluate --split test` loads
    the data with a validation size of 10,000 whatever the model used.
    """
    root = tmp_path_factory.mktemp("report")
    data_dir = write_mnist(root / "mnist", n_train=10100, n_test=200)
    model = root / "tiny.npz"
    run("train", "--hidden", "5", *TRAIN_SHORT, "--data-dir", data_dir, "--out", model, "--quiet")
    return data_dir, model


@pytest.fixture(scope="module")
def made(trained):
    """One report on the test split, shared by the tests that only read it."""
    data_dir, model = trained
    out = model.parent / "made"
    result = run("report", model, "--data-dir", data_dir, "--out", out)
    return out, result


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links = []

    def handle_starttag(self, tag, attrs):
        self.links += [value for name, value in attrs if name in ("src", "href")]


def test_writes_every_file_and_says_where(made):
    out, result = made
    assert str(out) in result.output
    for name in PICTURES + ["report.json", "index.html"]:
        assert (out / name).is_file() and str(out / name) in result.output
    assert not list(out.glob("*.part")) and not list(out.glob(".*"))


@pytest.mark.parametrize("name", PICTURES)
def test_pictures_are_pngs_of_a_sensible_size(made, name):
    out, _ = made
    with Image.open(out / name) as image:
        assert image.format == "PNG"
        width, height = image.size
        image.verify()
    assert 400 <= width <= 2500 and 150 <= height <= 2500, (width, height)


def test_html_references_exist_and_are_relative(made):
    out, _ = made
    parser = _Links()
    parser.feed((out / "index.html").read_text(encoding="utf-8"))
    assert set(PICTURES) | {"report.json"} <= set(parser.links)
    for link in parser.links:
        assert "://" not in link and not link.startswith("/")
        assert (out / link).is_file(), link


@pytest.mark.parametrize("split, weights", [("test", "best"), ("validation", "last")])
def test_confusion_matrix_equals_evaluate(trained, tmp_path, split, weights):
    data_dir, model = trained
    run("report", model, "--data-dir", data_dir, "--split", split, "--weights", weights, "--out", tmp_path / "r")
    evaluated = json.loads(run("evaluate", model, "--data-dir", data_dir, "--split", split,
                               "--weights", weights, "--json").output)
    reported = json.loads((tmp_path / "r" / "report.json").read_text())
    assert reported["confusion_matrix"] == evaluated["confusion_matrix"]
    assert reported["accuracy"] == evaluated["accuracy"] and reported["per_class"] == evaluated["per_class"]
    assert reported["split"] == split and reported["total"] == (200 if split == "test" else 100)
    assert reported["mistakes_shown"] == min(100, reported["total"] - reported["correct"])


def test_several_hidden_layers(trained, tmp_path):
    data_dir, _ = trained
    model = tmp_path / "deep.npz"
    run("train", "--hidden", "6,4", *TRAIN_SHORT, "--data-dir", data_dir, "--out", model, "--quiet")
    run("report", model, "--data-dir", data_dir, "--out", tmp_path / "r")
    with Image.open(tmp_path / "r" / "hidden.png") as image:
        assert image.size[0] >= 400


def test_default_folder_is_named_after_the_model(trained, tmp_path, monkeypatch):
    data_dir, model = trained
    monkeypatch.chdir(tmp_path)
    result = run("report", model, "--data-dir", data_dir)
    assert "report-tiny" in result.output and (tmp_path / "report-tiny" / "index.html").is_file()


def test_checkpoint_without_history_gets_a_report_without_curves(trained, tmp_path):
    data_dir, _ = trained
    model = tmp_path / "bare.npz"
    checkpoint.save(model, Network([784, 7, 10], rng=np.random.default_rng(0)), metadata={})
    out = tmp_path / "r"
    out.mkdir()
    (out / "curves.png").write_bytes(b"an earlier report's curves")
    result = run("report", model, "--data-dir", data_dir, "--out", out)
    assert "no training history" in result.output and "no curves.png" in result.output
    assert not (out / "curves.png").exists()
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "no training history" in page and 'src="curves.png"' not in page
    assert all((out / name).is_file() for name in PICTURES[1:])


def test_bad_checkpoint_is_a_clear_error(trained, tmp_path):
    data_dir, _ = trained
    model = tmp_path / "garbage.npz"
    model.write_bytes(bytes(range(256)) * 4)
    result = run("report", model, "--data-dir", data_dir, "--out", tmp_path / "r", expect=None)
    assert result.exit_code == 1 and "Error:" in result.output and "garbage.npz" in result.output
    assert not (tmp_path / "r").exists()


def test_a_network_that_cannot_read_digits_is_refused_naming_the_file(trained, tmp_path):
    data_dir, _ = trained
    model = checkpoint.save(tmp_path / "small.npz", Network([10, 3, 10], rng=np.random.default_rng(0)), metadata={})
    result = run("report", model, "--data-dir", data_dir, "--out", tmp_path / "r", expect=1)
    assert result.output.strip() == (f"Error: {model}: a 10-3-10 network cannot read 28x28 digits "
                                      "(it needs 784 inputs and 10 outputs)")
    assert not (tmp_path / "r").exists()


def test_out_that_is_a_file_is_refused(trained, tmp_path):
    data_dir, model = trained
    (tmp_path / "taken").write_text("mine")
    result = run("report", model, "--data-dir", data_dir, "--out", tmp_path / "taken", expect=None)
    assert result.exit_code == 1 and "not a folder" in result.output
    assert (tmp_path / "taken").read_text() == "mine"


def test_existing_folder_report_files_replaced_others_kept(trained, tmp_path):
    data_dir, model = trained
    out = tmp_path / "r"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    (out / "hidden.png").write_bytes(b"old")
    run("report", model, "--data-dir", data_dir, "--out", out)
    assert (out / "notes.txt").read_text() == "keep me"
    assert (out / "hidden.png").read_bytes().startswith(b"\x89PNG")


def test_empty_validation_split_is_a_clear_error(trained, tmp_path):
    data_dir, _ = trained
    model = tmp_path / "noval.npz"
    run("train", "--hidden", "5", "--epochs", "1", "--validation-size", "0", "--data-dir", data_dir,
        "--out", model, "--quiet")
    result = run("report", model, "--data-dir", data_dir, "--split", "validation", "--out", tmp_path / "r", expect=None)
    assert result.exit_code == 1 and "validation split is empty" in result.output


def test_untrusted_metadata_is_escaped(trained, tmp_path):
    data_dir, _ = trained
    model = tmp_path / "evil.npz"
    evil = '<script>alert("x")</script>'
    checkpoint.save(model, Network([784, 5, 10], rng=np.random.default_rng(0)), metadata={
        "dataset": evil, "hyperparameters": {evil: evil}, "stopped": evil, "saved_at": "$\\frac{1}{0}$",
        "versions": {evil: evil}, "history": [{"epoch": 1, "training_cost": 0.1, "validation_accuracy": None,
                                               "learning_rate": 3.0, "cost_source": evil}]})
    run("report", model, "--data-dir", data_dir, "--out", tmp_path / "r")
    page = (tmp_path / "r" / "index.html").read_text(encoding="utf-8")
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_metadata_of_the_wrong_type_is_refused_in_one_line(trained, tmp_path):
    """A field a reader does arithmetic on (``best_epoch``) holding text is refused at load, in one line."""
    data_dir, _ = trained
    model = tmp_path / "typed.npz"
    checkpoint.save(model, Network([784, 5, 10], rng=np.random.default_rng(0)), metadata={"best_epoch": "$x$"})
    result = run("report", model, "--data-dir", data_dir, "--out", tmp_path / "r", expect=1)
    assert "'best_epoch' must be a whole number" in result.output


def test_a_failed_write_leaves_no_partial_picture(trained, tmp_path, monkeypatch):
    data_dir, model = trained
    from digitnet.data import load_mnist

    def broken_savefig(self, f, **kwargs):
        f.write(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report.Figure, "savefig", broken_savefig)
    out = tmp_path / "r"
    with pytest.raises(OSError):
        report.create_report(checkpoint.load(model), load_mnist(data_dir, 0).test, out, model_name="tiny")
    assert list(out.iterdir()) == []


def test_confidence_is_outputs_normalised_to_sum_one():
    confidence = metrics.normalised_outputs(np.array([[0.5, 0.25, 0.25], [0.0, 0.0, 0.0]]))
    np.testing.assert_allclose(confidence, [[0.5, 0.25, 0.25], [1 / 3, 1 / 3, 1 / 3]])


def test_other_commands_do_not_import_matplotlib():
    code = "import sys, digitnet.cli; assert 'matplotlib' not in sys.modules and 'digitnet.report' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_an_unwritable_out_fails_before_any_work(trained, tmp_path, read_only_folder):
    """A read-only --out (or one under /proc) is refused before the data is read or a picture drawn."""
    data_dir, model = trained
    missing_data = tmp_path / "no-data"  # had the data been loaded first, this would try to download it
    result = run("report", model, "--data-dir", missing_data, "--out", read_only_folder, expect=1)
    assert f"Error: cannot write into {read_only_folder}: " in result.output
    assert list(read_only_folder.iterdir()) == [] and not missing_data.exists()
    result = run("report", model, "--data-dir", missing_data, "--out", read_only_folder / "new", expect=1)
    assert f"Error: cannot create {read_only_folder / 'new'}: " in result.output
    if sys.platform.startswith("linux"):
        result = run("report", model, "--data-dir", missing_data, "--out", "/proc/self/r", expect=1)
        assert "cannot create /proc/self/r: folder /proc/self does not accept new files" in result.output


def test_the_weights_used_are_named_and_a_missing_best_is_noted(trained, tmp_path):
    data_dir, model = trained
    from digitnet.data import load_mnist

    test = load_mnist(data_dir, 0, parts=("t10k",)).test
    ckpt = checkpoint.load(model)
    result = report.create_report(ckpt, test, tmp_path / "best", model_name="tiny")
    summary = json.loads((tmp_path / "best" / "report.json").read_text())
    assert result.notes == [] and summary["weights_used"] == f"best validation epoch ({ckpt.metadata['best_epoch']})"
    report.create_report(ckpt, test, tmp_path / "last", model_name="tiny", weights="last")
    summary = json.loads((tmp_path / "last" / "report.json").read_text())
    assert summary["weights_used"] == f"last epoch ({ckpt.metadata['epochs_completed']})"
    bare = checkpoint.save(tmp_path / "bare.npz", Network([784, 7, 10], rng=np.random.default_rng(0)), metadata={})
    result = report.create_report(checkpoint.load(bare), test, tmp_path / "bare", model_name="bare")
    summary = json.loads((tmp_path / "bare" / "report.json").read_text())
    assert summary["weights_used"] == "last epoch" and summary["weights"] == "best"
    assert "the checkpoint has no best-epoch weights; the report uses the last epoch's" in result.notes


def test_the_page_fits_a_phone(made):
    """The viewport tag and the shared stylesheet's narrow-screen rules, inlined; every table in a box that
    scrolls sideways on a narrow screen."""
    out, _ = made
    page = (out / "index.html").read_text(encoding="utf-8")
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "@media (max-width: 600px)" in page and "<link" not in page
    assert page.count('<div class="fit">\n<table') == page.count("<table") == 5


def test_the_cost_is_named_in_the_words_train_prints(trained, tmp_path):
    """curves.png, its caption and report.json say what the history's cost is, as `train` said it: the
    mean over the epoch's mini-batches by default, an end-of-epoch pass with --exact-cost."""
    from html import escape

    from digitnet.runs import COST_MEANING

    data_dir, model = trained
    exact = tmp_path / "exact.npz"
    printed = run("train", "--hidden", "5", *TRAIN_SHORT, "--exact-cost", "--data-dir", data_dir, "--out", exact)
    assert f"cost: {COST_MEANING['exact']}\n" in printed.output
    for path, source in ((model, "sgd"), (exact, "exact")):
        out = tmp_path / source
        run("report", path, "--data-dir", data_dir, "--out", out)
        assert json.loads((out / "report.json").read_text())["training_cost"] == COST_MEANING[source]
        assert f"Training cost ({escape(COST_MEANING[source])})" in (out / "index.html").read_text(encoding="utf-8")
        ckpt = checkpoint.load(path)
        series = report.history_series(ckpt.history)
        title = report.plot_curves(series, None, report.cost_words(ckpt.history, series)).axes[0].get_title()
        assert title == f"Training cost: {COST_MEANING[source]} (incl. any L1/L2 term)"
        assert "training set (" not in title


def test_a_history_that_changed_how_the_cost_was_measured_says_which_epochs():
    from digitnet.runs import COST_MEANING

    history = [{"epoch": e, "training_cost": 0.1, "cost_source": "sgd" if e <= 2 else "exact"} for e in (1, 2, 3)]
    assert report.cost_words(history, report.history_series(history)) == (
        f"{COST_MEANING['sgd']} (epochs 1–2); {COST_MEANING['exact']} (epoch 3)")
    old = [{"epoch": 1, "training_cost": 0.1}]  # before cost_source was recorded: always an end-of-epoch pass
    assert report.cost_words(old, report.history_series(old)) == COST_MEANING["exact"]
    evil = [{"epoch": 1, "training_cost": 0.1, "cost_source": "$x$"}]
    assert "$" not in report.cost_words(evil, report.history_series(evil))


def test_the_settings_table_names_the_options_of_train(made):
    """--eta and --patience-eta as the user types them, never the names the checkpoint stores them under."""
    out, _ = made
    page = (out / "index.html").read_text(encoding="utf-8")
    for option, value in (("--eta", "3"), ("--patience-eta", "0"), ("--hidden", "5"), ("--exact-cost", "no"),
                          ("--validation-size", "100")):
        assert f"<tr><th>{option}</th><td>{value}</td></tr>" in page
    for field in ("learning_rate", "eta_patience", "hidden_sizes", "Hyperparameters"):
        assert field not in page
