"""A network in the textbook's JSON format, the file ``network2.py``'s ``save()`` writes and ``load()`` reads.

    {"sizes": [784, 30, 10],
     "weights": [w.tolist() for w in weights],    # each (n_out, n_in)
     "biases":  [b.tolist() for b in biases],     # each a column (n_out, 1): [[b_0], [b_1], ...]
     "cost": "CrossEntropyCost"}                  # or "QuadraticCost"

Plain lists of Python floats: each float32 weight becomes the float64 number equal to it, which
``json`` writes with the shortest digits that read back to the same float64, so a reader that
rounds to float32 (digitnet) gets the very same weights and the book's ``load()`` (``np.array``
per entry) gets their exact values.  The reader lives in ``digitnet.textbook_json``.
"""

from __future__ import annotations

from digitnet import textbook_json
from digitnet.export import ExportError

# network2.py's two cost classes (digitnet's name -> the book's); it has no softmax output layer,
# so no log-likelihood network.
BOOK_COSTS = {ours: book for book, ours in textbook_json.COST_NAMES.items() if book.endswith("Cost")}


def to_textbook_json(network) -> dict:
    """``network`` as network2.py's ``save()`` writes it (``json.dump`` the result); ExportError for a
    network the book's code cannot run: a log-likelihood network (softmax output layer)."""
    if network.cost.name not in BOOK_COSTS:
        raise ExportError(f"a {network.cost.name} network (softmax output layer) cannot be written in the "
                          "textbook's JSON: network2.py has only QuadraticCost and CrossEntropyCost, "
                          "both with sigmoid outputs; export it as ONNX instead")
    return textbook_json.dump(network)
