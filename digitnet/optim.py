"""The update step of gradient descent: plain SGD, L2 and L1 weight decay, momentum.

Given backprop's nabla_w = sum_x dC_x/dw over a mini-batch of m examples (n
training examples in all), the textbook's rules (ch. 1 and 3) are:

    plain SGD      w <- w - (eta/m) nabla_w
    L2 (lambda)    w <- (1 - eta lambda / n) w - (eta/m) nabla_w
    L1 (lambda_1)  w <- w - (eta lambda_1 / n) sgn(w) - (eta/m) nabla_w
    momentum (mu)  v <- mu v - eta (nabla_w / m + decay terms),   w <- w + v

Biases get the same step without decay.  The velocities v are part of a run's
state: the checkpoint stores them so a resumed run continues exactly.
"""

from __future__ import annotations

import numpy as np

from digitnet.network import Network


class SGD:
    """Mini-batch gradient descent with optional L2, L1 and momentum, on a Network in place."""

    def __init__(self, network: Network, n: int, l2: float = 0.0, l1: float = 0.0, momentum: float = 0.0,
                 velocities: tuple[list, list] | None = None):
        self.network = network
        self.n = n
        self.l2 = float(l2)
        self.l1 = float(l1)
        self.momentum = float(momentum)
        if self.momentum:
            if velocities is None:
                velocities = ([np.zeros_like(w) for w in network.weights], [np.zeros_like(b) for b in network.biases])
            self.velocity_w = [np.ascontiguousarray(v, dtype=network.dtype) for v in velocities[0]]
            self.velocity_b = [np.ascontiguousarray(v, dtype=network.dtype) for v in velocities[1]]
        else:
            self.velocity_w = self.velocity_b = None
        # Scratch for the L2/L1 terms, so that a mini-batch's update allocates nothing.
        self._decay = [np.empty_like(w) for w in network.weights] if self.momentum or self.l1 else None

    @property
    def velocities(self) -> tuple[list, list] | None:
        """(velocity of each weight array, of each bias array), or None without momentum."""
        return None if self.velocity_w is None else (self.velocity_w, self.velocity_b)

    def step(self, nabla_b, nabla_w, learning_rate: float, m: int) -> None:
        """Apply one update from backprop's sums over a mini-batch of m examples (the nablas are overwritten)."""
        step = learning_rate / m
        net = self.network
        if not self.momentum:
            # The textbook's order of operations, so runs without momentum match earlier versions bit for bit.
            weight_decay = 1.0 - learning_rate * self.l2 / self.n
            for l, (w, b, gw, gb) in enumerate(zip(net.weights, net.biases, nabla_w, nabla_b)):
                if weight_decay != 1.0:
                    w *= weight_decay
                if self.l1:
                    decay = np.sign(w, out=self._decay[l])
                    decay *= learning_rate * self.l1 / self.n
                    w -= decay
                gw *= step
                w -= gw
                gb *= step
                b -= gb
            return
        mu = self.momentum
        for w, b, gw, gb, vw, vb, decay in zip(net.weights, net.biases, nabla_w, nabla_b,
                                               self.velocity_w, self.velocity_b, self._decay):
            vw *= mu
            gw *= step
            vw -= gw
            if self.l2:
                np.multiply(w, learning_rate * self.l2 / self.n, out=decay)
                vw -= decay
            if self.l1:
                np.sign(w, out=decay)
                decay *= learning_rate * self.l1 / self.n
                vw -= decay
            w += vw
            vb *= mu
            gb *= step
            vb -= gb
            b += vb
