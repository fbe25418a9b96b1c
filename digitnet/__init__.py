"""digitnet: train, inspect and use an MNIST digit recogniser built on BP1-BP4.

The public Python API is three functions (the README's "From Python")::

    import digitnet
    model = digitnet.load("model.npz")      # or a textbook network2.py .json
    model.predict(images)                   # (n, 784) or (n, 28, 28); uint8 0-255 or floats 0-1
    model = digitnet.train(hidden=30, eta=3.0, epochs=30)   # the options of `digitnet train`
    mnist = digitnet.load_mnist()           # mnist.training / .validation / .test: .images, .labels

They live in ``digitnet.model`` and are re-exported here on first use, so that
``import digitnet`` (which the command line does, for ``__version__``) imports no numpy.
"""

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["load", "train", "load_mnist"]

if TYPE_CHECKING:
    from digitnet.model import load, load_mnist, train  # noqa: F401


def __getattr__(name: str):
    if name in __all__:
        from digitnet import model

        value = globals()[name] = getattr(model, name)
        return value
    raise AttributeError(f"module 'digitnet' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
