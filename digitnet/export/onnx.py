"""A network as an ONNX model, built node by node from its weights with the ``onnx`` package's helpers.

The graph is the feedforward pass of ``digitnet.network`` written in ONNX's operators, one
layer at a time, for a batch whose rows are the examples:

    Z^l = A^{l-1} (w^l)^T + b^l      Gemm(A, w, b, transB=1): w keeps the book's (n_out, n_in) shape
    A^l = sigma(Z^l)                 Sigmoid (hidden layers, and the output of the quadratic and
                                     cross-entropy networks)
    A^L = softmax(Z^L)               Softmax(axis=1) for the log-likelihood networks
    digit = argmax_j A^L_j           ArgMax(axis=1, keepdims=0), int64

    input   pixels       float32 (batch, sizes[0]): 784 pixels per row for MNIST, 0 (black) to 1
                         (white ink), in the order of the 28x28 image's rows
    outputs activations  float32 (batch, sizes[-1])
            digit        int64 (batch,)

"batch" is a dynamic dimension: one picture or ten thousand.  Opset 13 and IR version 8 (ONNX
1.10, 2021): every onnxruntime since 1.10 loads the file (the ``onnx`` package's own default IR
version is newer than most runtimes in the field accept).  ONNX runtimes compute in float32, so a
float64 network is written as float32 (its weights rounded to the nearest float32); the model's
metadata says so ("dtype" and "exported_as").

The metadata (``metadata_props``, each value JSON text): digitnet's version, the training
settings, the test accuracy the checkpoint recorded for these weights, which weights ("best"
or "last"), the sizes and the cost.
"""

from __future__ import annotations

import json

import numpy as np

from digitnet import __version__
from digitnet.export import ExportError

OPSET = 13
IR_VERSION = 8
INPUT = "pixels"
OUTPUTS = ("activations", "digit")
BATCH = "batch"


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ExportError("ONNX export needs the onnx package: pip install 'digitnet[onnx]'") from None
    return onnx


def recorded_accuracy(metadata: dict, weights: str | None):
    """The test accuracy the checkpoint recorded for the weights exported ("best" or "last"), or None."""
    if weights == "last" and "test_accuracy_last_epoch" in metadata:
        value = metadata["test_accuracy_last_epoch"]
    else:
        value = metadata.get("test_accuracy")
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _layers(network, helper, numpy_helper):
    """The initializers and nodes of the feedforward pass: Gemm then Sigmoid (Softmax last for softmax outputs)."""
    initializers, nodes = [], []
    last = len(network.weights) - 1
    previous = INPUT
    for l, (w, b) in enumerate(zip(network.weights, network.biases)):
        layer = l + 1  # layers counted from 1, the first hidden layer (the input is layer 0)
        w_name, b_name, z_name = f"weights_{layer}", f"biases_{layer}", f"z_{layer}"
        initializers += [numpy_helper.from_array(np.ascontiguousarray(w, dtype=np.float32), w_name),
                         numpy_helper.from_array(np.ascontiguousarray(b, dtype=np.float32), b_name)]
        # Z^l = A^{l-1} (w^l)^T + b^l
        nodes.append(helper.make_node("Gemm", [previous, w_name, b_name], [z_name], name=f"gemm_{layer}",
                                      transB=1))
        out = OUTPUTS[0] if l == last else f"a_{layer}"
        if l == last and network.cost.output == "softmax":
            nodes.append(helper.make_node("Softmax", [z_name], [out], name=f"softmax_{layer}", axis=1))
        else:
            nodes.append(helper.make_node("Sigmoid", [z_name], [out], name=f"sigmoid_{layer}"))
        previous = out
    nodes.append(helper.make_node("ArgMax", [OUTPUTS[0]], [OUTPUTS[1]], name="argmax", axis=1, keepdims=0))
    return initializers, nodes


def _properties(network, metadata: dict, weights: str | None) -> dict[str, str]:
    hyperparameters = metadata.get("hyperparameters")
    return {key: json.dumps(value) for key, value in {
        "digitnet_version": __version__,
        "settings": hyperparameters if isinstance(hyperparameters, dict) else {},
        "test_accuracy": recorded_accuracy(metadata, weights),
        "weights": weights,
        "sizes": network.sizes,
        "cost": network.cost.name,
        "dtype": network.dtype.name,
        "exported_as": "float32",
        "source": metadata.get("source") or "digitnet checkpoint",
    }.items()}


def to_onnx(network, metadata: dict | None = None, weights: str | None = None):
    """``network`` as an ``onnx.ModelProto`` that ``onnx.checker.check_model`` accepts.

    ``metadata`` is the checkpoint's (for the settings and the recorded test accuracy) and
    ``weights`` which of its weights ``network`` holds ("best" or "last", as ``Checkpoint.weights``
    says).  ``.SerializeToString()`` gives the file's bytes.  ExportError when the ``onnx`` package
    is not installed.
    """
    onnx = _onnx()
    from onnx import TensorProto, helper, numpy_helper

    metadata = metadata if isinstance(metadata, dict) else {}
    initializers, nodes = _layers(network, helper, numpy_helper)
    sizes = network.sizes
    graph = helper.make_graph(
        nodes, f"digitnet_{'_'.join(map(str, sizes))}",
        inputs=[helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [BATCH, sizes[0]],
                                              "pixels 0 (black) to 1 (white ink), one picture per row")],
        outputs=[helper.make_tensor_value_info(OUTPUTS[0], TensorProto.FLOAT, [BATCH, sizes[-1]],
                                               f"the output layer's activations ({network.cost.output})"),
                 helper.make_tensor_value_info(OUTPUTS[1], TensorProto.INT64, [BATCH],
                                               "the answer: the output with the largest activation")],
        initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="digitnet", producer_version=__version__,
                              doc_string=f"A {'-'.join(map(str, sizes))} sigmoid network trained by backpropagation "
                                         f"(digitnet {__version__}), {network.cost.name} cost.")
    model.ir_version = IR_VERSION
    helper.set_model_props(model, _properties(network, metadata, weights))
    onnx.checker.check_model(model)
    return model
