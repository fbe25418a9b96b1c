"""digitnet: train, inspect and use an MNIST digit recogniser built on BP1-BP4."""

__version__ = "0.1.0"
