"""Is a run only guessing?  The verdict in plain words, with the textbook's remedies ("" for a run that learns).

A network that has not learned answers about as well as picking one of the ten
digits at random (10%), and often answers the same digit for almost every
image.  The usual cause in the textbook's networks is saturation: sigmoid
units whose z is far from 0 have sigma'(z) ~ 0, so BP1's delta^L (quadratic
cost: (a - y) sigma'(z^L)) and every delta behind it (BP2) are ~0 and the
weights barely move; the cure is a smaller eta, the cross-entropy cost (its
delta^L = a - y has no sigma'), or scaled initial weights N(0, 1/n_in), which
keep z small (chapter 3).  ``verdict`` looks at the run's history and one
forward pass over a split; it changes nothing.
"""

from __future__ import annotations

import numpy as np

from digitnet.config import NUM_CLASSES, TrainConfig
from digitnet.data import Split
from digitnet.metrics import outputs_in_chunks
from digitnet.network import Network

GUESSING_BELOW = 0.20    # an accuracy below this after an epoch is near chance (1 in 10)
ONE_ANSWER = 0.5         # a network that answers one digit for more than half the images has not learned
SATURATED = 0.01         # an output within this of 0 or 1 is saturated (sigma' below 0.01)
ALL_SATURATED = 0.99     # ... and "the outputs are saturated" when this share of them are
FLAT_COST = 0.01         # the cost "stopped moving" when the first and last epochs differ by less than 1%


def verdict(network: Network, config: TrainConfig, history: list[dict], accuracy: float | None,
            split: Split, split_name: str) -> str:
    """Why the run is guessing and what to try, or "" when it is not.

    ``accuracy``: the best validation accuracy (or the test accuracy without a
    validation split); ``split``: the images to look at (``split_name``:
    "validation" or "test").  Guessing is an accuracy under GUESSING_BELOW or
    one digit answered for over ONE_ANSWER of the images, after one epoch or more.
    """
    if not history or len(split) == 0:
        return ""
    answers = np.zeros(NUM_CLASSES, dtype=np.int64)
    saturated = 0
    for _, outputs in outputs_in_chunks(network, split.images):
        answers += np.bincount(np.argmax(outputs, axis=1), minlength=NUM_CLASSES)
        saturated += int(np.count_nonzero((outputs < SATURATED) | (outputs > 1 - SATURATED)))
    digit = int(np.argmax(answers))
    share = answers[digit] / len(split)
    near_chance = accuracy is not None and accuracy < GUESSING_BELOW
    if not near_chance and share <= ONE_ANSWER:
        return ""
    epochs = len(history)
    said = f"{accuracy:.2%}" if accuracy is not None else "unknown"
    if near_chance:
        words = (f"The network is guessing: after {epochs} epoch{'s' if epochs > 1 else ''} its {split_name} "
                 f"accuracy is {said}, about what picking one of the ten digits at random gives (10%)")
        words += f", and it answers {digit} for {share:.0%} of the {split_name} images." if share > ONE_ANSWER else "."
    else:
        words = (f"The network is mostly guessing: it answers {digit} for {share:.0%} of the {split_name} "
                 f"images ({split_name} accuracy {said} after {epochs} epoch{'s' if epochs > 1 else ''}).")
    sigmoid = network.cost.output == "sigmoid"
    outputs_saturated = sigmoid and saturated >= ALL_SATURATED * len(split) * NUM_CLASSES
    if outputs_saturated and config.cost == "quadratic":
        words += (f" Its output neurons are saturated (within {SATURATED:g} of 0 or 1), where sigma'(z) is nearly 0: "
                  "BP1's delta = (a - y) sigma'(z) is nearly 0, and so is every gradient behind it.")
    elif outputs_saturated:
        words += f" Its output neurons are saturated (within {SATURATED:g} of 0 or 1): the weights have grown too large."
    costs = [h["training_cost"] for h in history if h.get("training_cost") is not None]
    if len(costs) >= 2 and abs(costs[-1] - costs[0]) <= FLAT_COST * abs(costs[0]):
        words += f" The training cost has stopped moving ({costs[0]:.5f} in epoch 1, {costs[-1]:.5f} in epoch {epochs})."
    falling = len(costs) >= 2 and costs[-1] < costs[0]
    return words + " " + _remedies(config, slow=falling and not outputs_saturated)


def _remedies(config: TrainConfig, slow: bool) -> str:
    """The textbook's remedies that apply: eta (smaller; larger for a run whose cost falls, too slowly,
    without saturated outputs), the cross-entropy cost, scaled initial weights."""
    tries = [f"a larger --eta (it was {config.learning_rate:g}) or more --epochs" if slow
             else f"a smaller --eta (it was {config.learning_rate:g})"]
    if config.cost == "quadratic":
        tries.append("--cost cross-entropy (its delta = a - y has no sigma'(z), so saturated outputs still learn)")
    if config.init == "normal":
        tries.append("--init scaled (weights N(0, 1/n_in) keep z small, out of saturation)")
    if len(tries) == 1:
        return f"Try {tries[0]}."
    return "Try " + ", ".join(tries[:-1]) + " or " + tries[-1] + "."
