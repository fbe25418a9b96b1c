"""digitnet.serve.workers: predictions in worker processes give the same answers as in-process ones."""

from __future__ import annotations

import io
import os
import signal
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digitnet import predict
from digitnet.images import Verdict
from digitnet.network import Network
from digitnet.serve.workers import PredictionPool, _pack, _unpack


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


def test_workers_write_the_answers_json_as_the_server_process_would(pool, network):
    """/api/predict's text comes from the worker: the same bytes as Prediction.to_json here."""
    for body in (drawn_png(), drawn_png(140)):
        text, error = pool.predict_json(body)
        assert error is None
        assert text == predict.predict_bytes(network, body).to_json(with_input=True).encode()
    assert pool.predict_json(b"not an image") == (None, predict.predict_bytes(network, b"not an image").error)


def test_no_workers_means_predictions_in_this_process(network):
    pool = PredictionPool(network, processes=0)
    assert not pool.running and not pool.wait_until_started(timeout=0.1)
    assert pool.predict(drawn_png()).digit == predict.predict_bytes(network, drawn_png()).digit
    here = predict.predict_bytes(network, drawn_png())
    assert pool.predict_json(drawn_png()) == (here.to_json(with_input=True).encode(), None)
    assert pool.predict_json(b"nope")[1] == predict.predict_bytes(network, b"nope").error
    pool.close()


def test_a_dead_worker_leaves_the_server_answering(network):
    pool = PredictionPool(network, processes=1)
    try:
        assert pool.wait_until_started(timeout=60)
        (process,) = pool._workers.values()
        os.kill(process.pid, signal.SIGKILL)
        process.join(timeout=10)
        body = drawn_png()
        answers = [pool.predict(body) for _ in range(3)]  # the first finds the worker gone
        assert all(a.digit == predict.predict_bytes(network, body).digit for a in answers)
        assert not pool.running
    finally:
        pool.close()


def test_when_one_of_two_workers_dies_the_other_carries_on_until_closed(network):
    """A dead worker is left out, the other answers; requests waiting when the pool closes are answered
    in this process."""
    pool = PredictionPool(network, processes=2)
    body = drawn_png()
    digit = predict.predict_bytes(network, body).digit
    try:
        assert pool.wait_until_started(timeout=60)
        first = pool._workers[pool._idle[-1]]  # the worker the next request gets
        (second,) = [process for process in pool._workers.values() if process is not first]
        os.kill(first.pid, signal.SIGKILL)
        first.join(timeout=10)
        assert [pool.predict(body).digit for _ in range(4)] == [digit] * 4
        assert pool.running and list(pool._workers.values()) == [second]
        with ThreadPoolExecutor(6) as threads:
            waiting = [threads.submit(pool.predict, body) for _ in range(6)]
            pool.close()
            assert [future.result(timeout=60).digit for future in waiting] == [digit] * 6
        second.join(timeout=10)
        assert not second.is_alive()
    finally:
        pool.close()


def test_many_threads_at_once_get_the_answers_of_one(pool, network):
    """8 request threads share 2 workers: each gets the answer to its own picture, not a neighbour's."""
    bodies = [drawn_png(side) for side in (120, 160, 200, 240, 280, 320, 360, 400)]
    expected = [predict.predict_bytes(network, body).to_dict(with_input=True) for body in bodies]
    with ThreadPoolExecutor(8) as threads:
        answers = list(threads.map(lambda body: pool.predict(body).to_dict(with_input=True), bodies * 3))
    assert answers == expected * 3


def test_the_answer_crosses_the_pipe_whole():
    """_pack/_unpack keep the scores and the input to the bit, the notes and the verdict."""
    answer = predict.Prediction(None, scores=np.linspace(0, 1, 10), image=np.random.default_rng(0).random(
        (28, 28), dtype=np.float32), warnings=["two digits"], verdict=Verdict(False, "almost no ink"))
    back = _unpack(_pack(answer))
    assert back.to_dict(with_input=True) == answer.to_dict(with_input=True)
    assert np.array_equal(back.scores, answer.scores) and np.array_equal(back.image, answer.image)
    assert back.image.dtype == np.float32 and back.scores.dtype == answer.scores.dtype
    assert _unpack(_pack(predict.Prediction(None, error="not an image"))).error == "not an image"


def test_close_stops_the_workers(network):
    pool = PredictionPool(network, processes=1)
    assert pool.wait_until_started(timeout=60)
    (process,) = pool._workers.values()
    pool.close()
    process.join(timeout=10)
    assert not process.is_alive()
    pool.close()  # twice is fine
    assert pool.predict(drawn_png()).digit == predict.predict_bytes(network, drawn_png()).digit  # in this process
