"""`digitnet train` beyond the defaults (layers, costs, schedules, resume), `info` and `gradcheck`."""

import json
import re

import numpy as np
import pytest

from helpers import TRAIN_SHORT, run_cli as run
from digitnet import checkpoint


def arrays(path, prefix=""):
    ckpt = checkpoint.load(path)
    net = ckpt.best_network if prefix else ckpt.network
    return net.weights + net.biases


def test_several_hidden_layers_both_spellings(synthetic_data_dir, tmp_path):
    run("train", "--hidden", "16,8", *TRAIN_SHORT, "--data-dir", synthetic_data_dir, "--out", tmp_path / "a.npz")
    run("train", "--hidden", "16", "--hidden", "8", *TRAIN_SHORT, "--data-dir", synthetic_data_dir, "--out", tmp_path / "b.npz")
    assert checkpoint.load(tmp_path / "a.npz").network.sizes == [784, 16, 8, 10]
    for a, b in zip(arrays(tmp_path / "a.npz"), arrays(tmp_path / "b.npz")):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bad", ["0", "x", "10,-1"])
def test_bad_hidden_sizes_are_usage_errors(synthetic_data_dir, tmp_path, bad):
    result = run("train", "--hidden", bad, "--data-dir", synthetic_data_dir, "--out", tmp_path / "m.npz", expect=None)
    assert result.exit_code == 2 and not (tmp_path / "m.npz").exists()


def test_resume_continues_to_the_same_weights(synthetic_data_dir, tmp_path):
    options = ["--hidden", "12", "--cost", "cross-entropy", "--init", "scaled", "--l2", "0.5", "--augment", "1",
               "--patience-eta", "1", "--batch-size", "10", "--validation-size", "100",
               "--data-dir", synthetic_data_dir]
    run("train", *options, "--epochs", "4", "--out", tmp_path / "whole.npz")
    run("train", *options, "--epochs", "2", "--out", tmp_path / "half.npz")
    result = run("train", "--resume", tmp_path / "half.npz", "--epochs", "4", "--data-dir", synthetic_data_dir)
    assert "resuming after epoch 2" in result.output and "epoch   3/4" in result.output
    for prefix in ("", "best_"):
        for a, b in zip(arrays(tmp_path / "whole.npz", prefix), arrays(tmp_path / "half.npz", prefix)):
            np.testing.assert_array_equal(a, b)
    whole, resumed = (checkpoint.load(tmp_path / f).metadata for f in ("whole.npz", "half.npz"))
    assert [h["validation_accuracy"] for h in whole["history"]] == [h["validation_accuracy"] for h in resumed["history"]]
    assert resumed["epochs_completed"] == 4 and resumed["test_accuracy"] == whole["test_accuracy"]


CHAPTER_3 = ["--cost", "log-likelihood", "--init", "scaled", "--eta", "0.2", "--momentum", "0.9", "--dropout", "0.2",
             "--l1", "0.1", "--l2", "0.5", "--augment", "shift=1,elastic=20:4,affine=10:0.1", "--eta-epoch-factor", "0.9"]


def test_chapter_3_options_train_and_resume_bit_exact(synthetic_data_dir, tmp_path):
    options = ["--hidden", "12", *CHAPTER_3, "--batch-size", "10", "--validation-size", "100",
               "--data-dir", synthetic_data_dir]
    first = run("train", *options, "--epochs", "3", "--out", tmp_path / "whole.npz")
    assert "log-likelihood cost" in first.output and "mean over the epoch's mini-batches" in first.output
    run("train", *options, "--epochs", "1", "--out", tmp_path / "half.npz")
    run("train", "--resume", tmp_path / "half.npz", "--epochs", "3", "--data-dir", synthetic_data_dir,
        "--augment-inline")  # where the distortions are made does not change the results
    for prefix in ("", "best_"):
        for a, b in zip(arrays(tmp_path / "whole.npz", prefix), arrays(tmp_path / "half.npz", prefix)):
            np.testing.assert_array_equal(a, b)
    whole, half = checkpoint.load(tmp_path / "whole.npz"), checkpoint.load(tmp_path / "half.npz")
    for a, b in zip(whole.velocities[0] + whole.velocities[1], half.velocities[0] + half.velocities[1]):
        np.testing.assert_array_equal(a, b)
    assert whole.metadata["format_version"] == 2
    hyper = whole.metadata["hyperparameters"]
    assert hyper["augment"] == "shift=1,elastic=20:4,affine=10:0.1" and hyper["momentum"] == 0.9
    assert hyper["dropout"] == 0.2 and hyper["l1"] == 0.1 and whole.network.cost.name == "log-likelihood"


def test_exact_cost_says_so(synthetic_data_dir, tmp_path):
    result = run("train", "--hidden", "12", *TRAIN_SHORT, "--exact-cost", "--data-dir", synthetic_data_dir,
                 "--out", tmp_path / "m.npz")
    assert "from a pass at the end of each epoch" in result.output
    history = checkpoint.load(tmp_path / "m.npz").history
    assert {h["cost_source"] for h in history} == {"exact"}


@pytest.mark.parametrize("option, value, words", [
    ("--augment", "elastic=34", "'--augment': elastic takes ALPHA:SIGMA"),
    ("--augment", "blur=2", "unknown distortion 'blur'"),
    ("--dropout", "1", "'--dropout'"), ("--momentum", "-0.5", "'--momentum'"),
    ("--l1", "-1", "'--l1'"), ("--eta-epoch-factor", "0", "'--eta-epoch-factor'"),
])
def test_bad_chapter_3_values_are_usage_errors(synthetic_data_dir, tmp_path, option, value, words):
    result = run("train", option, value, "--data-dir", synthetic_data_dir, "--out", tmp_path / "m.npz", expect=2)
    assert words in result.output and not (tmp_path / "m.npz").exists()


def test_resume_refuses_a_changed_augment_but_accepts_its_old_spelling(synthetic_data_dir, tmp_path):
    model = tmp_path / "m.npz"
    run("train", "--hidden", "12", *TRAIN_SHORT, "--augment", "2", "--data-dir", synthetic_data_dir, "--out", model)
    result = run("train", "--resume", model, "--epochs", "3", "--augment", "elastic=34:4",
                 "--data-dir", synthetic_data_dir, expect=2)
    assert "--augment was shift=2, you gave elastic=34:4" in result.output
    run("train", "--resume", model, "--epochs", "3", "--augment", "shift=2", "--data-dir", synthetic_data_dir)


def test_augment_preview_draws_originals_beside_distortions(synthetic_data_dir, tmp_path):
    from PIL import Image

    out = tmp_path / "augment.png"
    result = run("augment", "--augment", "elastic=34:4,affine=10:0.1", "--preview", out, "--rows", "3",
                 "--columns", "4", "--scale", "2", "--data-dir", synthetic_data_dir)
    assert "3 training images" in result.output and "elastic=34:4,affine=10:0.1" in result.output
    with Image.open(out) as picture:
        assert picture.size == (5 * 56 + 4 * 4 + 10, 3 * 56 + 2 * 4)
    again = tmp_path / "again.png"
    run("augment", "--augment", "elastic=34:4,affine=10:0.1", "--preview", again, "--rows", "3",
        "--columns", "4", "--scale", "2", "--data-dir", synthetic_data_dir)
    assert again.read_bytes() == out.read_bytes()  # the seed fixes images and distortions
    out.write_bytes(b"someone's picture")
    refused = run("augment", "--preview", out, "--data-dir", synthetic_data_dir, expect=1)
    assert "already exists" in refused.output and out.read_bytes() == b"someone's picture"
    run("augment", "--preview", out, "--force", "--data-dir", synthetic_data_dir)
    assert out.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("args, words", [
    (["--augment", "elastic=1:100"], "sigma"), (["--preview", "x.jpg"], ".png"),
    (["--preview", "no/such/dir/x.png"], "does not exist"), (["--rows", "0"], "--rows"),
])
def test_augment_preview_bad_input(synthetic_data_dir, tmp_path, monkeypatch, args, words):
    monkeypatch.chdir(tmp_path)
    result = run("augment", *args, "--data-dir", synthetic_data_dir, expect=None)
    assert result.exit_code in (1, 2) and words in result.output
    assert not list(tmp_path.glob("*.png"))


def test_augment_preview_inside_a_file_says_it_is_not_a_folder(synthetic_data_dir, tmp_path):
    # it used to say "folder notes.txt does not exist", which sends the user looking for the wrong thing
    (tmp_path / "notes.txt").write_text("mine")
    result = run("augment", "--preview", tmp_path / "notes.txt" / "x.png", "--data-dir", synthetic_data_dir, expect=1)
    assert f"Error: cannot write {tmp_path / 'notes.txt' / 'x.png'}: {tmp_path / 'notes.txt'} is not a folder" \
        in result.output
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_resume_with_different_settings_is_refused_and_names_them(synthetic_data_dir, tmp_path):
    model = tmp_path / "m.npz"
    run("train", "--hidden", "12", *TRAIN_SHORT, "--data-dir", synthetic_data_dir, "--out", model)
    before = model.read_bytes()
    result = run("train", "--resume", model, "--epochs", "4", "--eta", "0.5", "--hidden", "20",
                 "--data-dir", synthetic_data_dir, expect=None)
    assert result.exit_code == 2
    assert "--eta was 3, you gave 0.5" in result.output and "--hidden was 12, you gave 20" in result.output
    assert model.read_bytes() == before
    result = run("train", "--resume", model, "--epochs", "2", "--data-dir", synthetic_data_dir, expect=None)
    assert result.exit_code == 2 and "already completed 2 epochs" in result.output


def interrupt_after(epochs_to_run):
    """A Trainer._sgd_epoch that raises KeyboardInterrupt (Ctrl-C) once ``epochs_to_run`` epochs are done."""
    from digitnet.training import Trainer

    original = Trainer._sgd_epoch

    def sgd_epoch(self, *args, **kwargs):
        if self.state.epochs_completed >= epochs_to_run:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)
    return sgd_epoch


def test_resume_without_epochs_continues_to_the_runs_own_plan(synthetic_data_dir, tmp_path, monkeypatch):
    """An 8-epoch run interrupted after epoch 3 resumes as epoch 4/8, not 4/30, and keeps its plan."""
    from digitnet.training import Trainer

    model = tmp_path / "m.npz"
    options = ["--hidden", "8", "--batch-size", "50", "--validation-size", "100", "--data-dir", synthetic_data_dir]
    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "_sgd_epoch", interrupt_after(3))
        result = run("train", *options, "--epochs", "8", "--out", model, expect=130)
    assert f"digitnet train --resume {model}" in result.output
    meta = checkpoint.load(model).metadata
    assert meta["epochs_completed"] == 3 and meta["hyperparameters"]["epochs"] == 8
    info = run("info", model).output
    assert re.search(r"^  epochs completed +3 of 8: interrupted; resume with `digitnet train --resume "
                     + re.escape(str(model)) + "`$", info, re.M), info
    headline = run("evaluate", model, "--data-dir", synthetic_data_dir).output.splitlines()[0]
    assert headline.startswith(f"{model} (best validation epoch {meta['best_epoch']}) on the test split")
    headline = run("evaluate", model, "--weights", "last", "--data-dir", synthetic_data_dir).output.splitlines()[0]
    assert headline.startswith(f"{model} (last epoch, 3) on the test split")
    result = run("train", "--resume", model, "--data-dir", synthetic_data_dir)
    assert "epoch   4/8" in result.output and "epoch   8/8" in result.output and "/30" not in result.output
    meta = checkpoint.load(model).metadata
    assert meta["epochs_completed"] == 8 and meta["hyperparameters"]["epochs"] == 8


def test_resume_of_a_finished_run_says_how_to_extend_it(synthetic_data_dir, tmp_path):
    model = tmp_path / "m.npz"
    run("train", "--hidden", "8", *TRAIN_SHORT, "--data-dir", synthetic_data_dir, "--out", model)
    before = model.read_bytes()
    result = run("train", "--resume", model, "--data-dir", synthetic_data_dir, expect=2)
    assert f"has completed all 2 epochs of its plan; to train further give a larger total: " \
           f"--resume {model} --epochs 12" in result.output
    assert model.read_bytes() == before
    result = run("train", "--resume", model, "--epochs", "3", "--data-dir", synthetic_data_dir)
    assert "epoch   3/3" in result.output


def test_resume_of_a_missing_file_exits_1_like_evaluate(tmp_path):
    missing = tmp_path / "nope.npz"
    for command in (["train", "--resume", missing], ["evaluate", missing], ["info", missing],
                    ["report", missing], ["predict", "--model", missing, tmp_path]):
        result = run(*command, expect=1)
        assert f"Error: {missing}: no such file\n" == result.output, (command, result.output)


def test_early_stopping_reports_best_epoch(synthetic_data_dir, tmp_path):
    model = tmp_path / "m.npz"
    result = run("train", "--hidden", "12", "--epochs", "60", "--patience", "2", "--batch-size", "10",
                 "--validation-size", "100", "--data-dir", synthetic_data_dir, "--out", model)
    meta = checkpoint.load(model).metadata
    assert "early stopping" in result.output and meta["stopped"]
    assert meta["epochs_completed"] < 60 and meta["epochs_completed"] - meta["best_epoch"] == 2
    assert f"best validation epoch {meta['best_epoch']}" in result.output


def test_float64_run_and_metadata_for_reproduction(synthetic_data_dir, tmp_path):
    model = tmp_path / "m.npz"
    run("train", "--hidden", "12", *TRAIN_SHORT, "--dtype", "float64", "--seed", "7",
        "--data-dir", synthetic_data_dir, "--out", model)
    ckpt = checkpoint.load(model)
    assert ckpt.network.weights[0].dtype == np.float64
    meta = ckpt.metadata
    assert meta["seed"] == 7 and meta["hyperparameters"]["dtype"] == "float64"
    assert {"digitnet", "numpy", "python"} <= set(meta["versions"])
    assert meta["state"]["rng_state"]["bit_generator"] == "PCG64"


def test_info_prints_settings_and_history(synthetic_data_dir, tmp_path):
    model = tmp_path / "m.npz"
    run("train", "--hidden", "12", *TRAIN_SHORT, "--data-dir", synthetic_data_dir, "--out", model)
    out = run("info", model).output
    assert "784-12-10" in out and "--eta" in out and "learning_rate" not in out and "numpy" in out
    assert "epoch  training cost  validation" in out and len([l for l in out.splitlines() if l.strip().startswith(("1 ", "2 "))]) == 2
    meta = json.loads(run("info", model, "--json").output)
    assert meta["epochs_completed"] == 2


def test_info_of_a_bare_checkpoint_and_of_garbage(tmp_path):
    from digitnet.network import Network

    checkpoint.save(tmp_path / "bare.npz", Network([4, 2], rng=np.random.default_rng(0)), {})
    assert "no training history" in run("info", tmp_path / "bare.npz").output
    (tmp_path / "junk.npz").write_bytes(b"not a checkpoint")
    result = run("info", tmp_path / "junk.npz", expect=None)
    assert result.exit_code == 1 and "junk.npz" in result.output


def test_gradcheck_passes_and_fails_loudly(monkeypatch):
    out = run("gradcheck", "--sizes", "5,4,3").output
    assert "quadratic" in out and "cross-entropy" in out and "log-likelihood" in out and "FAIL" not in out
    # w and b of two layers, for three costs, each plain, with dropout, with L2 and with L1
    assert out.count(" ok") == 4 * 3 * 4
    assert "dropout 0.5" in out and "l2 5" in out and "l1 5" in out

    from digitnet.network import Network

    original = Network.backprop

    def wrong(self, x, y, *args):
        nabla_b, nabla_w = original(self, x, y, *args)
        nabla_b[-1] *= 1.001
        return nabla_b, nabla_w

    monkeypatch.setattr(Network, "backprop", wrong)
    result = run("gradcheck", "--sizes", "5,4,3", "--cost", "quadratic", expect=None)
    assert result.exit_code == 1 and "FAIL" in result.output


def test_gradcheck_on_real_mnist(real_mnist_dir):
    out = run("gradcheck", "--mnist", "--data-dir", real_mnist_dir, "--samples", "10").output
    assert "MNIST batch of 10" in out and "FAIL" not in out


def test_gradcheck_bad_sizes():
    assert run("gradcheck", "--sizes", "5,x", expect=None).exit_code == 2


def test_resume_into_another_existing_file_needs_force(synthetic_data_dir, tmp_path):
    model, other = tmp_path / "m.npz", tmp_path / "other.npz"
    run("train", "--hidden", "12", *TRAIN_SHORT, "--data-dir", synthetic_data_dir, "--out", model)
    other.write_bytes(b"someone's work")
    result = run("train", "--resume", model, "--epochs", "3", "--out", other, "--data-dir", synthetic_data_dir,
                 expect=1)
    assert "already exists" in result.output and other.read_bytes() == b"someone's work"
    run("train", "--resume", model, "--epochs", "3", "--out", other, "--force", "--data-dir", synthetic_data_dir)
    assert checkpoint.load(other).metadata["epochs_completed"] == 3


def test_after_training_one_line_says_what_to_do_next(synthetic_data_dir, tmp_path, monkeypatch):
    """The real --out in the line; only model.npz, the default, goes without a name. Not with --quiet."""
    out = tmp_path / "my model.npz"
    result = run("train", "--hidden", "5", *TRAIN_SHORT, "--data-dir", synthetic_data_dir, "--out", out)
    quoted = f"'{out}'"
    assert result.output.splitlines()[-1] == (f"next: digitnet predict IMAGE -m {quoted} · digitnet serve --open "
                                              f"-m {quoted} · digitnet report {quoted}")
    quiet = run("train", "--hidden", "5", *TRAIN_SHORT, "--data-dir", synthetic_data_dir, "--out", out, "--force",
                "--quiet")
    assert "next:" not in quiet.output
    monkeypatch.chdir(tmp_path)
    result = run("train", "--hidden", "5", *TRAIN_SHORT, "--data-dir", synthetic_data_dir)
    assert result.output.splitlines()[-1] == ("next: digitnet predict IMAGE · digitnet serve --open · "
                                              "digitnet report")


@pytest.mark.parametrize("option, value, words", [
    ("--validation-size", "60000", "--validation-size 60000 leaves no training images (the training file has "
                                   "60,000); it must be below 60000"),
    ("--batch-size", "50001", "--batch-size 50001 is larger than the 50000 training images"),
])
def test_a_mistake_in_what_was_typed_comes_before_a_file_in_the_way(tmp_path, option, value, words):
    """With model.npz already there, a value MNIST's 60,000 training images can never take is the
    mistake told (exit 2), before "model.npz already exists" (exit 1), and before any data is read."""
    out = tmp_path / "model.npz"
    out.write_bytes(b"someone's model")
    missing = tmp_path / "no-data"  # had the data been loaded first, this would try to download it
    result = run("train", option, value, "--data-dir", missing, "--out", out, expect=2)
    assert words in result.output and "already exists" not in result.output
    assert out.read_bytes() == b"someone's model" and not missing.exists()
