"""digitnet.serve.workers: predictions in worker processes give the same answers as in-process ones."""

from __future__ import annotations

import io
import os
import signal

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digitnet import predict
from digitnet.network import Network
from digitnet.serve.workers import PredictionPool


def drawn_png(side: int = 280) -> bytes:
    image = Image.new("RGBA", (side, side), (255, 255, 255, 255))
    ImageDraw.Draw(image).line([(0.3 * side, 0.2 * side), (0.6 * side, 0.8 * side)], fill=(22, 22, 22, 255),
                               width=round(0.072 * side))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def network():
    return Network([784, 16, 10], rng=np.random.default_rng(3))


@pytest.fixture(scope="module")
def pool(network):
    started = PredictionPool(network, processes=2)
    assert started.wait_until_started(timeout=60), "the worker processes did not start"
    yield started
    started.close()


def test_workers_answer_like_the_server_process(pool, network):
    body = drawn_png()
    here = predict.predict_bytes(network, body)
    there = pool.predict(body)
    assert pool.running
    assert there.to_dict(with_input=True) == here.to_dict(with_input=True)
    assert np.array_equal(there.image, here.image)


def test_workers_report_unusable_pictures_like_the_server_process(pool, network):
    assert pool.predict(b"not an image").error == predict.predict_bytes(network, b"not an image").error


def test_no_workers_means_predictions_in_this_process(network):
    pool = PredictionPool(network, processes=0)
    assert not pool.running and not pool.wait_until_started(timeout=0.1)
    assert pool.predict(drawn_png()).digit == predict.predict_bytes(network, drawn_png()).digit
    pool.close()


def test_a_dead_worker_leaves_the_server_answering(network):
    pool = PredictionPool(network, processes=1)
    try:
        assert pool.wait_until_started(timeout=60)
        (pid,) = list(pool._executor._processes)
        os.kill(pid, signal.SIGKILL)
        body = drawn_png()
        answers = [pool.predict(body) for _ in range(3)]  # the first may find the pool broken
        assert all(a.digit == predict.predict_bytes(network, body).digit for a in answers)
        assert not pool.running
    finally:
        pool.close()


def test_close_stops_the_workers(network):
    pool = PredictionPool(network, processes=1)
    assert pool.wait_until_started(timeout=60)
    process = next(iter(pool._executor._processes.values()))
    pool.close()
    process.join(timeout=10)
    assert not process.is_alive()
    pool.close()  # twice is fine
