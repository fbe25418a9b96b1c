"""The chunks SGD reads: gathered, distorted and converted, on a second thread or inline, the same either way."""

import threading

import numpy as np
import pytest

from digitnet import batches
from digitnet.augment_spec import parse
from digitnet.config import TrainConfig
from digitnet.data import Split, load_mnist, to_float
from digitnet.training import Trainer


def small_config(**overrides):
    values = dict(hidden_sizes=(12,), epochs=3, batch_size=10, learning_rate=3.0, seed=0, validation_size=100)
    values.update(overrides)
    return TrainConfig(**values)


def split_of(n=50, seed=0):
    rng = np.random.default_rng(seed)
    return Split("training", rng.integers(0, 256, (n, 784), dtype=np.uint8), rng.integers(0, 10, n).astype(np.uint8))


def stream(split, augment, background, seed=1, chunk_size=16):
    """Every chunk of one epoch as (inputs, labels) copies, and the generator's state after it."""
    rng = np.random.default_rng(seed)
    order = np.random.default_rng(0).permutation(len(split))
    seen = [(c.x[:c.count].copy(), c.labels[:c.count].copy())
            for c in batches.chunk_stream(split, order, chunk_size, parse(augment), rng, np.float32, background)]
    return seen, rng.bit_generator.state


@pytest.mark.parametrize("augment", ["", "shift=2", "elastic=34:4,affine=15:0.15"])
def test_chunks_are_the_same_numbers_on_either_thread(augment):
    split = split_of()
    (inline, inline_rng), (background, background_rng) = (stream(split, augment, b) for b in (False, True))
    assert [len(labels) for _, labels in inline] == [16, 16, 16, 2]
    for (x, labels), (x2, labels2) in zip(inline, background, strict=True):
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(labels, labels2)
    assert inline_rng == background_rng


def test_without_distortions_a_chunk_is_the_ordered_images_as_floats():
    split = split_of()
    order = np.random.default_rng(0).permutation(len(split))
    (x, labels), *_ = stream(split, "", False)[0]
    np.testing.assert_array_equal(x, to_float(split.images[order[:16]]))
    np.testing.assert_array_equal(labels, split.labels[order[:16]])


@pytest.mark.parametrize("augment", ["shift=2", "elastic=34:4,affine=15:0.15"])
def test_background_distortion_equals_inline(synthetic_data_dir, augment):
    """The producer thread draws from the run's generator in the same order as inline code would."""
    data = load_mnist(synthetic_data_dir, validation_size=100)
    runs_ = []
    for inline in (False, True):
        trainer = Trainer(data, small_config(augment=augment, augment_inline=inline, batch_size=16))
        list(trainer.epochs())
        runs_.append((trainer.network.weights + trainer.network.biases, trainer.rng.bit_generator.state))
    for a, b in zip(runs_[0][0], runs_[1][0]):
        np.testing.assert_array_equal(a, b)
    assert runs_[0][1] == runs_[1][1]


def test_background_producer_error_reaches_the_caller_and_the_thread_ends(synthetic_data_dir, monkeypatch):
    import threading

    from digitnet import augment

    data = load_mnist(synthetic_data_dir, validation_size=100)
    trainer = Trainer(data, small_config(augment="elastic=10:4", batch_size=10))
    calls = []

    def failing(*args, **kwargs):
        calls.append(threading.current_thread().name)
        raise MemoryError("no room for distortions")

    monkeypatch.setattr(augment, "distort", failing)
    with pytest.raises(MemoryError, match="no room"):
        next(trainer.epochs())
    assert calls == ["digitnet-augment"]
    assert not any(t.name == "digitnet-augment" for t in threading.enumerate())


def test_stopping_mid_epoch_stops_the_producer(synthetic_data_dir):
    import threading

    data = load_mnist(synthetic_data_dir, validation_size=100)
    trainer = Trainer(data, small_config(augment="elastic=10:4", batch_size=10))

    def interrupt(images):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        next(trainer.epochs(on_progress=interrupt))
    assert not any(t.name == "digitnet-augment" for t in threading.enumerate())

