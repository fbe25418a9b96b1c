"""An epoch's training examples, chunk by chunk: gathered, distorted, converted to floats.

SGD reads the shuffled training set a chunk at a time; with ``--augment`` the
distortions are the slow part, so ``chunk_stream`` makes them on a second
thread a chunk or two ahead of SGD (``--augment-inline``: on SGD's own
thread).  Either way the chunks are the same numbers: the distortions are
drawn from the run's generator in chunk order, whichever thread draws them.
"""

from __future__ import annotations

import queue
import threading
from typing import Iterator

import numpy as np

from digitnet import augment as augmenting
from digitnet.data import Split, to_float

# Examples converted from uint8 to float at a time: big enough to amortise the
# conversion, small enough to stay in cache and to move the progress bar smoothly.
CHUNK_EXAMPLES = 2000


class Chunk:
    """One chunk of an epoch's training examples, ready for SGD: float inputs and digit labels."""

    def __init__(self, size: int, split: Split, dtype):
        self.pixels = np.empty((size, split.images.shape[1]), dtype=split.images.dtype)
        self.x = np.empty((size, split.images.shape[1]), dtype=dtype)
        self.labels = np.empty(size, dtype=split.labels.dtype)
        self.count = 0


def chunks(split: Split, order: np.ndarray, chunk_size: int, buffers: list[Chunk],
           augmentation: augmenting.Augmentation, rng: np.random.Generator, dtype) -> Iterator[Chunk]:
    """The examples of ``split`` in ``order``, chunk by chunk, distorted by ``augmentation``.

    Draws the distortions from ``rng`` in chunk order, so the chunks are the
    same whichever thread runs this.  Cycles through ``buffers``.
    """
    images, labels = split.images, split.labels
    for number, start in enumerate(range(0, len(order), chunk_size)):
        index = order[start:start + chunk_size]
        k = len(index)
        chunk = buffers[number % len(buffers)]
        np.take(images, index, axis=0, out=chunk.pixels[:k])
        np.take(labels, index, out=chunk.labels[:k])
        if augmentation:
            augmenting.distort(chunk.pixels[:k], augmentation, rng, chunk.x[:k])
        else:
            to_float(chunk.pixels[:k], dtype, out=chunk.x[:k])
        chunk.count = k
        yield chunk


def chunk_stream(split: Split, order: np.ndarray, chunk_size: int, augmentation: augmenting.Augmentation,
                 rng: np.random.Generator, dtype, background: bool) -> Iterator[Chunk]:
    """``chunks``, produced on a second thread ahead of SGD when ``background``.

    The producer runs at most two chunks ahead (a queue of one, plus the chunk
    it is filling), so four buffers suffice: one in SGD's hands, one queued,
    one being filled, one spare.  numpy releases the GIL inside its loops, so
    the distortions run on the second core while SGD runs on the first.
    """
    size = min(chunk_size, len(order))
    if not background:
        yield from chunks(split, order, chunk_size, [Chunk(size, split, dtype)], augmentation, rng, dtype)
        return
    buffers = [Chunk(size, split, dtype) for _ in range(4)]
    ready: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    done = object()

    def produce():
        try:
            with np.errstate(over="raise", invalid="raise"):
                for chunk in chunks(split, order, chunk_size, buffers, augmentation, rng, dtype):
                    while not stop.is_set():
                        try:
                            ready.put(chunk, timeout=0.1)
                            break
                        except queue.Full:
                            pass
                    if stop.is_set():
                        return
            ready.put(done)
        except BaseException as e:  # handed to the consumer, which re-raises it
            ready.put(e)

    producer = threading.Thread(target=produce, name="digitnet-augment", daemon=True)
    producer.start()
    try:
        while True:
            item = ready.get()
            if item is done:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while producer.is_alive():
            try:
                ready.get(timeout=0.1)
            except queue.Empty:
                pass
        producer.join()
