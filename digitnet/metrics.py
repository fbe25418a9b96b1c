"""How well a network does: predictions in chunks, accuracy, confusion matrix, output shares.

One home for what ``evaluate``, ``report``, ``predict`` and the training loop
all measure, so they cannot disagree.
"""

from __future__ import annotations

import numpy as np

from digitnet.config import NUM_CLASSES
from digitnet.data import Split, to_float
from digitnet.network import Network

# Images per forward pass: bounds memory (10,000 x 800 float32 hidden activations = 32 MB).
CHUNK = 10000


def outputs_in_chunks(network: Network, images: np.ndarray, chunk: int = CHUNK):
    """Yield (start, output activations) for image rows, ``chunk`` images at a time: uint8 pixels
    (0..255, as MNIST stores them, made floats a chunk at a time) or floats in [0, 1]."""
    for start in range(0, len(images), chunk):
        rows = images[start:start + chunk]
        yield start, network.feedforward(to_float(rows, network.dtype) if rows.dtype == np.uint8 else rows)


def predicted_digits(network: Network, images: np.ndarray, chunk: int = CHUNK,
                     confidence: np.ndarray | None = None) -> np.ndarray:
    """The digit the network sees in each image row (the index of its largest output), in chunks.

    With ``confidence`` (an (n, 10) array), each row's ``normalised_outputs``
    are written into it from the same forward pass.
    """
    out = np.empty(len(images), dtype=np.int64)
    for start, outputs in outputs_in_chunks(network, images, chunk):
        out[start:start + len(outputs)] = np.argmax(outputs, axis=1)
        if confidence is not None:
            confidence[start:start + len(outputs)] = normalised_outputs(outputs)
    return out


def predictions(network: Network, split: Split, chunk: int = CHUNK) -> np.ndarray:
    """The predicted digit (index of the largest output) for every image of the split."""
    return predicted_digits(network, split.images, chunk)


def accuracy(network: Network, split: Split) -> float:
    """Fraction of the split classified correctly (NaN for an empty split)."""
    if len(split) == 0:
        return float("nan")
    return float(np.mean(predictions(network, split) == split.labels))


def normalised_outputs(outputs: np.ndarray) -> np.ndarray:
    """Output activations divided by their sum per row (or for one vector); uniform where all are 0.

    A sigmoid output layer gives ten independent activations in [0, 1] that need
    not sum to 1: their share is a confidence, not a calibrated probability.  A
    softmax layer (the log-likelihood cost) already sums to 1, so its outputs
    come back unchanged: the probabilities the network assigns.  A network that
    outputs nothing at all is equally unsure of every digit, hence uniform.
    """
    outputs = np.asarray(outputs, dtype=np.float64)
    total = outputs.sum(axis=-1, keepdims=True)
    uniform = np.full_like(outputs, 1.0 / outputs.shape[-1])
    return np.divide(outputs, total, out=uniform, where=total > 0)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """10x10 counts; rows are the true digit, columns the predicted one."""
    flat = labels.astype(np.int64) * NUM_CLASSES + predicted.astype(np.int64)
    return np.bincount(flat, minlength=NUM_CLASSES ** 2).reshape(NUM_CLASSES, NUM_CLASSES)


def classification_report(matrix: np.ndarray) -> dict:
    """Accuracy, and precision and recall per digit, from a confusion matrix."""
    correct = int(np.trace(matrix))
    total = int(matrix.sum())
    per_class = []
    for digit in range(NUM_CLASSES):
        true_positive = int(matrix[digit, digit])
        predicted = int(matrix[:, digit].sum())
        actual = int(matrix[digit, :].sum())
        per_class.append({
            "digit": digit,
            "precision": true_positive / predicted if predicted else None,
            "recall": true_positive / actual if actual else None,
            "support": actual,
        })
    return {
        "accuracy": correct / total if total else None,
        "correct": correct,
        "total": total,
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
    }


def evaluate(network: Network, split: Split) -> dict:
    """``classification_report`` for the network on a split."""
    return classification_report(confusion_matrix(split.labels, predictions(network, split)))
