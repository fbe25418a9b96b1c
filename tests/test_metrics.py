"""Chunked predictions, accuracy, confusion matrix and the output normalisation all commands share."""

import numpy as np
import pytest

from digitnet import metrics, predict
from digitnet.data import Split
from digitnet.network import Network


def split_of(n=25, seed=0):
    rng = np.random.default_rng(seed)
    return Split("test", rng.integers(0, 256, (n, 12), dtype=np.uint8), rng.integers(0, 3, n).astype(np.uint8))


def test_chunked_predictions_equal_one_pass():
    network = Network([12, 7, 3], init="scaled", rng=np.random.default_rng(0))
    split = split_of()
    whole = np.argmax(network.feedforward(split.images / np.float32(255)), axis=1)
    np.testing.assert_array_equal(metrics.predictions(network, split, chunk=4), whole)
    assert metrics.accuracy(network, split) == pytest.approx(np.mean(whole == split.labels))


def test_predicted_digits_read_pixels_or_floats_and_give_the_confidence_from_the_same_pass():
    network = Network([12, 7, 3], init="scaled", rng=np.random.default_rng(0))
    split = split_of()
    floats = split.images / np.float32(255)
    whole = network.feedforward(floats)
    confidence = np.empty((len(split), 3))
    np.testing.assert_array_equal(metrics.predicted_digits(network, split.images, chunk=4, confidence=confidence),
                                  np.argmax(whole, axis=1))
    np.testing.assert_allclose(confidence, metrics.normalised_outputs(whole), rtol=1e-6)
    np.testing.assert_array_equal(metrics.predicted_digits(network, floats, chunk=7), np.argmax(whole, axis=1))
    nothing = metrics.predicted_digits(network, np.zeros((0, 12), np.float32))
    assert nothing.shape == (0,) and nothing.dtype == np.int64


def test_accuracy_of_an_empty_split_is_nan():
    network = Network([12, 3], rng=np.random.default_rng(0))
    assert np.isnan(metrics.accuracy(network, Split("x", np.zeros((0, 12), np.uint8), np.zeros(0, np.uint8))))


def test_confusion_matrix_and_report():
    matrix = metrics.confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]))
    assert matrix.shape == (10, 10) and matrix[0, 0] == 1 and matrix[0, 1] == 1 and matrix.sum() == 4
    summary = metrics.classification_report(matrix)
    assert summary["accuracy"] == 0.75 and summary["per_class"][1]["precision"] == 0.5
    assert summary["per_class"][5]["recall"] is None


def test_normalised_outputs_rows_vectors_and_all_zero():
    rows = metrics.normalised_outputs(np.array([[0.5, 0.25, 0.25], [0.0, 0.0, 0.0]]))
    np.testing.assert_allclose(rows, [[0.5, 0.25, 0.25], [1 / 3, 1 / 3, 1 / 3]])
    np.testing.assert_allclose(metrics.normalised_outputs(np.array([2.0, 2.0])), [0.5, 0.5])


def test_predict_and_report_agree_when_every_output_is_zero():
    zeros = np.zeros(10)
    np.testing.assert_array_equal(predict.normalised(zeros), metrics.normalised_outputs(zeros[None])[0])
    assert predict.Prediction("x", scores=zeros).confidence == pytest.approx(0.1)


def test_softmax_outputs_are_their_own_confidence():
    network = Network([12, 7, 10], cost="log-likelihood", init="scaled", rng=np.random.default_rng(0))
    outputs = network.feedforward(split_of().images[:3] / np.float32(255)).astype(np.float64)
    np.testing.assert_allclose(metrics.normalised_outputs(outputs), outputs, rtol=1e-6)
    confidence = predict.Prediction("x", scores=outputs[0]).confidence
    assert confidence == pytest.approx(outputs[0].max(), rel=1e-6)
