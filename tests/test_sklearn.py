"""digitnet.sklearn.SigmoidNetClassifier: scikit-learn's own checks, its tools, and the same weights as `digitnet train`."""

from __future__ import annotations

import importlib
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sklearn")

from helpers import run_cli, synthetic_digits, write_mnist  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import MinMaxScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from digitnet import sklearn as digitnet_sklearn  # noqa: E402
from digitnet.checkpoint import load as load_checkpoint  # noqa: E402
from digitnet.config import TrainConfig  # noqa: E402
from digitnet.settings import default_of, settings_of  # noqa: E402
from digitnet.sklearn import SigmoidNetClassifier  # noqa: E402
from digitnet.training import TrainingDiverged  # noqa: E402

# Checks expected to fail, with the reason (passed to scikit-learn as expected_failed_checks): none.
EXPECTED_FAILED_CHECKS: dict[str, str] = {}


@parametrize_with_checks([SigmoidNetClassifier()], expected_failed_checks=lambda _: EXPECTED_FAILED_CHECKS)
def test_scikit_learn_checks(estimator, check):
    check(estimator)


def weights(network) -> list[np.ndarray]:
    return [*network.weights, *network.biases]


def assert_same_weights(a, b):
    assert a.sizes == b.sizes
    for x, y in zip(weights(a), weights(b)):
        assert x.dtype == y.dtype and np.array_equal(x, y)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16, y


# ---------------------------------------------------------------------------
# The same run as `digitnet train`


@pytest.mark.parametrize("options, params", [
    ([], {}),  # the textbook's 784-30-10, quadratic, eta 3, batch 10
    (["--hidden", "20,10", "--cost", "cross-entropy", "--init", "scaled", "--eta", "0.5", "--batch-size", "7",
      "--l2", "1", "--l1", "0.001", "--momentum", "0.5", "--dropout", "0.2", "--augment", "1"],
     {"hidden": (20, 10), "cost": "cross-entropy", "init": "scaled", "eta": 0.5, "batch_size": 7,
      "l2": 1.0, "l1": 0.001, "momentum": 0.5, "dropout": 0.2, "augment": "1"}),
])
@pytest.mark.parametrize("validation", [0, 100])
def test_same_weights_as_digitnet_train(tmp_path, options, params, validation):
    data_dir = write_mnist(tmp_path / "mnist")
    out = tmp_path / "model.npz"
    run_cli("train", "--data-dir", data_dir, "--out", out, "--epochs", "2", "--seed", "5",
            "--validation-size", validation, "--quiet", *options)
    saved = load_checkpoint(out)
    images, labels = synthetic_digits(600, seed=1)  # what write_mnist wrote as the training file
    split = {"early_stopping": True, "validation_fraction": validation / 600, "n_iter_no_change": 0}
    clf = SigmoidNetClassifier(epochs=2, random_state=5, **(split if validation else {}), **params)
    clf.fit(images.reshape(600, 784), labels)
    assert clf.classes_.tolist() == list(range(10))
    # With a validation split both predict with the best epoch's weights, as `digitnet train` tests them.
    assert_same_weights(clf.network_, saved.best_network if validation else saved.network)
    assert [e["validation_accuracy"] for e in clf.history_] == [e["validation_accuracy"] for e in saved.history]


def test_uint8_rows_are_pixels_scaled_like_mnist():
    images, labels = synthetic_digits(200, seed=3)
    pixels = images.reshape(200, 784)
    floats = np.multiply(pixels, np.float32(1 / 255), dtype=np.float32)  # data.to_float's numbers
    a = SigmoidNetClassifier(epochs=1, random_state=0).fit(pixels, labels)
    b = SigmoidNetClassifier(epochs=1, random_state=0).fit(floats, labels)
    assert_same_weights(a.network_, b.network_)
    assert np.array_equal(a.predict_proba(pixels), b.predict_proba(floats))


# ---------------------------------------------------------------------------
# Parameters: the settings table


def test_parameters_are_the_settings_table():
    specs = settings_of(TrainConfig)
    params = SigmoidNetClassifier().get_params()
    for name, spec in specs.items():
        covered = name in digitnet_sklearn.REPLACED or name in digitnet_sklearn.LEFT_OUT
        param = spec.option.lstrip("-").replace("-", "_")
        assert covered != (param in params), f"{spec.option}: a parameter, or replaced or left out with a reason"
        if param in params:
            assert params[param] == default_of(TrainConfig, name)
            assert f"\n    {param} : " in SigmoidNetClassifier.__doc__
    assert {"hidden", "epochs", "batch_size", "eta", "cost", "init", "l2", "l1", "momentum", "dropout",
            "augment"} <= set(params)
    assert set(SigmoidNetClassifier._parameter_constraints) == set(params)
    defaults = SigmoidNetClassifier()
    assert (defaults.hidden, defaults.epochs, defaults.batch_size, defaults.eta, defaults.cost) == (
        (30,), 30, 10, 3.0, "quadratic")


@pytest.mark.parametrize("params, words", [
    ({"eta": -1.0}, "'eta' parameter"),
    ({"cost": "hinge"}, "'cost' parameter"),
    ({"hidden": (30, 0)}, "hidden: every value must be at least 1, got 30,0"),
    ({"l2": float("inf")}, "'l2' parameter of SigmoidNetClassifier must be a float in the range [0.0, inf)"),
    ({"augment": "twist=3"}, "augment: unknown distortion 'twist'"),
    ({"patience_eta": 2}, "patience_eta=2 needs a validation split: set early_stopping=True"),
    ({"early_stopping": True, "validation_fraction": 0.01}, "validation_fraction=0.01 of 30 samples holds out 0"),
])
def test_bad_settings_are_refused_naming_the_parameter(params, words):
    X, y = np.random.default_rng(0).random((30, 4)), np.arange(30) % 3
    clf = SigmoidNetClassifier(epochs=1, **params)
    with pytest.raises(ValueError) as refused:
        clf.fit(X, y)
    assert words in str(refused.value)
    assert not hasattr(clf, "classes_") and not hasattr(clf, "network_")  # nothing half-fitted
    assert "--" not in str(refused.value)  # the option names of the command line are not what was typed here


def test_numpy_numbers_from_a_grid_are_taken():
    X, y = np.random.default_rng(0).random((40, 3)), np.arange(40) % 2
    clf = SigmoidNetClassifier(epochs=np.int64(2), batch_size=np.int64(8), eta=np.float32(1.0),
                               hidden=np.array([5, 4]), random_state=np.int64(1)).fit(X, y)
    assert clf.network_.sizes == [3, 5, 4, 2] and clf.n_iter_ == 2


def test_augment_refuses_anything_but_784_uint8_pixels(digits):
    X, y = digits
    with pytest.raises(ValueError, match=r"augment='1' distorts 28x28 images: it needs rows of 784 uint8 "
                                         r"pixels \(0-255\), got 64 float64 features"):
        SigmoidNetClassifier(augment="1", epochs=1).fit(X, y)
    images, labels = synthetic_digits(100, seed=4)
    with pytest.raises(ValueError, match="got 784 float32 features"):
        SigmoidNetClassifier(augment="1", epochs=1).fit(images.reshape(100, 784).astype(np.float32), labels)


# ---------------------------------------------------------------------------
# Labels, probabilities, continuing a run


def test_any_labels_and_any_number_of_features():
    rng = np.random.default_rng(0)
    X = rng.random((90, 7))
    names = np.array(["cat", "dog", "emu"])[np.arange(90) % 3]
    clf = SigmoidNetClassifier(epochs=2, random_state=0).fit(X, names)
    assert clf.classes_.tolist() == ["cat", "dog", "emu"] and clf.network_.sizes == [7, 30, 3]
    assert set(clf.predict(X)) <= set(names)
    odd = np.where(np.arange(90) % 2, 7, -40)  # binary, not 0..k-1: still one output per class
    clf = SigmoidNetClassifier(epochs=2, random_state=0).fit(X, odd)
    assert clf.classes_.tolist() == [-40, 7] and clf.predict_proba(X).shape == (90, 2)


@pytest.mark.parametrize("cost", ["quadratic", "log-likelihood"])
def test_predict_proba_rows_sum_to_one_and_softmax_comes_as_it_is(digits, cost):
    X, y = digits
    clf = SigmoidNetClassifier(epochs=2, cost=cost, eta=0.5, random_state=0).fit(X[:300], y[:300])
    proba = clf.predict_proba(X[300:400])
    assert np.allclose(proba.sum(axis=1), 1)
    assert np.array_equal(clf.predict(X[300:400]), clf.classes_[np.argmax(proba, axis=1)])
    if cost == "log-likelihood":
        assert np.allclose(proba, clf.network_.feedforward(X[300:400]), atol=1e-6)


def test_partial_fit_continues_the_run_exactly(digits):
    X, y = digits[0][:200], digits[1][:200]
    with pytest.raises(ValueError, match="classes must be passed on the first call to partial_fit"):
        SigmoidNetClassifier().partial_fit(X, y)
    clf = SigmoidNetClassifier(random_state=3, momentum=0.5)
    clf.partial_fit(X, y, classes=np.arange(10))
    clf.partial_fit(X, y)
    assert clf.n_iter_ == 2
    assert_same_weights(clf.network_, SigmoidNetClassifier(random_state=3, momentum=0.5, epochs=2).fit(X, y).network_)
    with pytest.raises(ValueError, match=r"y has labels that are not in classes_ .*: \[10\]"):
        clf.partial_fit(X[:5], np.full(5, 10))


def test_warm_start_continues_the_run_exactly(digits):
    X, y = digits[0][:200], digits[1][:200]
    clf = SigmoidNetClassifier(epochs=2, random_state=4, eta_epoch_factor=0.9).fit(X, y)
    clf.set_params(warm_start=True).fit(X, y)
    assert clf.n_iter_ == 4
    assert_same_weights(clf.network_, SigmoidNetClassifier(epochs=4, random_state=4, eta_epoch_factor=0.9)
                        .fit(X, y).network_)
    with pytest.raises(ValueError, match=r"hidden=\(10,\) would change the fitted 64-30-10 network"):
        clf.set_params(hidden=10).fit(X, y)
    fresh = clf.set_params(warm_start=False).fit(X, y)
    assert fresh.n_iter_ == 2 and fresh.network_.sizes == [64, 10, 10]


def test_early_stopping_stops_and_predicts_with_the_best_epoch():
    rng = np.random.default_rng(0)
    X, y = rng.random((200, 5)), rng.integers(0, 3, 200)  # nothing to learn: the accuracy soon stops rising
    clf = SigmoidNetClassifier(epochs=50, early_stopping=True, n_iter_no_change=2, random_state=0).fit(X, y)
    assert clf.n_iter_ < 50 and clf.n_iter_ - clf.best_epoch_ == 2
    best = max(e["validation_accuracy"] for e in clf.history_)
    assert clf.history_[clf.best_epoch_ - 1]["validation_accuracy"] == best
    held_out = X[180:], y[180:]  # the last validation_fraction (0.1) of the rows, as `digitnet train` holds out
    assert clf.score(*held_out) == pytest.approx(best)


def test_verbose_prints_a_line_per_epoch(capsys):
    X, y = np.random.default_rng(0).random((30, 2)), np.arange(30) % 2
    SigmoidNetClassifier(epochs=2, verbose=True).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[1].startswith("epoch   2/2  cost ")


def test_divergence_is_told_as_digitnet_tells_it():
    X, y = np.random.default_rng(0).random((40, 3)) * 1e30, np.arange(40) % 2
    with pytest.raises(TrainingDiverged, match=r"training diverged in epoch 1: the cost became inf"):
        SigmoidNetClassifier(epochs=1, eta=1e38, cost="cross-entropy", random_state=0).fit(X, y)


# ---------------------------------------------------------------------------
# scikit-learn's tools


def test_pipeline_grid_search_and_cross_validation(digits):
    X, y = digits
    pipeline = make_pipeline(MinMaxScaler(), SigmoidNetClassifier(epochs=10, random_state=0))
    assert cross_val_score(pipeline, X * 16, y, cv=3).mean() > 0.9  # 0.935
    search = GridSearchCV(SigmoidNetClassifier(epochs=3, random_state=0),
                          {"hidden": [10, (30,)], "eta": np.array([0.3, 3.0])}, cv=2).fit(X[:600], y[:600])
    assert search.best_params_ == {"hidden": (30,), "eta": 3.0} and search.best_estimator_.n_iter_ == 3
    assert search.best_estimator_.score(X[600:], y[600:]) > 0.7


def test_next_to_mlp_classifier_in_cross_val_score(digits):
    X, y = digits
    scores = {type(clf).__name__: cross_val_score(clf, X, y, cv=3).mean()
              for clf in (SigmoidNetClassifier(hidden=30, epochs=10, random_state=0),
                          MLPClassifier(hidden_layer_sizes=(30,), tol=1e-2, random_state=0))}
    assert scores["SigmoidNetClassifier"] > 0.9 and scores["MLPClassifier"] > 0.85


def test_feature_names_are_kept():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(np.random.default_rng(0).random((20, 3)), columns=["a", "b", "c"])
    clf = SigmoidNetClassifier(epochs=1).fit(frame, np.arange(20) % 2)
    assert clf.feature_names_in_.tolist() == ["a", "b", "c"] and clf.n_features_in_ == 3


# ---------------------------------------------------------------------------
# scikit-learn is optional


def test_without_scikit_learn_one_clear_import_error(monkeypatch):
    for name in [m for m in sys.modules if m == "sklearn" or m.startswith("sklearn.")]:
        monkeypatch.setitem(sys.modules, name, None)  # `import sklearn...` now raises ImportError
    monkeypatch.delitem(sys.modules, "digitnet.sklearn")
    with pytest.raises(ImportError, match=r"^digitnet.sklearn needs scikit-learn 1.6 or newer: "
                                          r"pip install digitnet\[sklearn\]$"):
        importlib.import_module("digitnet.sklearn")


def test_importing_digitnet_needs_no_scikit_learn():
    code = ("import sys; sys.modules['sklearn'] = None; import digitnet, digitnet.config, digitnet.training; "
            "print(sorted(m for m in sys.modules if m.startswith('sklearn.')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
