#!/usr/bin/env python3
"""Shampoo on scikit-learn's digits, with exact roots (numpy.linalg.eigh) and with pe's roots.

A two-layer network (64 -> 64 -> 10, ReLU, softmax cross-entropy; biases folded into the weights) is
trained by Shampoo: for each weight matrix W (m x n) with gradient G the optimizer keeps
    L <- beta L + (1 - beta) G G^T    (m x m),    R <- beta R + (1 - beta) G^T G    (n x n)
and steps W <- W - lr L^{-1/4} G R^{-1/4}, with the inverse fourth roots of the damped factors
(L + delta I, delta relative to their mean eigenvalue) recomputed every `root_every` steps. With pe, all
factors of one shape go to pe.inverse_root in one batched call (here R of both layers, 65 x 65).

    python examples/python/shampoo_numpy.py [--epochs 30] [--seed 0] [--target 1e-3]

Prints the loss and test accuracy per epoch side by side, and the time per optimizer step.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import pe


def digits(seed: int):
    """The 8 x 8 digits (1797 images, shipped with scikit-learn), scaled to [0, 1], a stratified 75/25
    split, with a constant 1 appended to every input (the bias)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = np.hstack([x / 16.0, np.ones((len(x), 1))])
    return train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)


def eigh_roots(factors: list, p: int) -> list:
    """Exact A^{-1/p} of each factor from its eigendecomposition (LAPACK, double)."""
    roots = []
    for a in factors:
        w, v = np.linalg.eigh(a)
        roots.append((v * w ** (-1.0 / p)) @ v.T)
    return roots


def pe_roots(factors: list, p: int, target: float = 1e-3) -> list:
    """pe's A^{-1/p} of each factor: one batched call per shape."""
    roots: list = [None] * len(factors)
    by_shape: dict = {}
    for i, a in enumerate(factors):
        by_shape.setdefault(a.shape, []).append(i)
    for members in by_shape.values():
        x, _ = pe.inverse_root(np.stack([factors[i] for i in members]), p, target=target)
        for k, i in enumerate(members):
            roots[i] = x[k]
    return roots


class Network:
    """64+1 -> 64 (ReLU) -> 10 (softmax); each layer one weight matrix, its last column the bias."""

    def __init__(self, seed: int, hidden: int = 64):
        rng = np.random.default_rng(seed)
        self.weights = [rng.standard_normal((hidden, 65)) / np.sqrt(65),
                        rng.standard_normal((10, hidden + 1)) / np.sqrt(hidden + 1)]

    def forward(self, x):
        h = np.maximum(x @ self.weights[0].T, 0)
        h1 = np.hstack([h, np.ones((len(h), 1))])
        logits = h1 @ self.weights[1].T
        logits -= logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        return h, h1, probabilities

    def loss_and_gradients(self, x, y):
        h, h1, prob = self.forward(x)
        loss = -np.mean(np.log(prob[np.arange(len(y)), y] + 1e-300))
        d_logits = prob.copy()
        d_logits[np.arange(len(y)), y] -= 1
        d_logits /= len(y)
        g2 = d_logits.T @ h1
        d_h = (d_logits @ self.weights[1][:, :-1]) * (h > 0)
        g1 = d_h.T @ x
        return loss, [g1, g2]

    def evaluate(self, x, y):
        _, _, prob = self.forward(x)
        loss = -np.mean(np.log(prob[np.arange(len(y)), y] + 1e-300))
        return float(loss), float(np.mean(prob.argmax(axis=1) == y))


class Shampoo:
    def __init__(self, weights, roots, lr=0.02, beta=0.95, damping=1e-3, root_every=5, p=4):
        self.roots, self.lr, self.beta, self.damping, self.root_every, self.p = roots, lr, beta, damping, root_every, p
        self.left = [np.zeros((w.shape[0],) * 2) for w in weights]
        self.right = [np.zeros((w.shape[1],) * 2) for w in weights]
        self.left_roots = self.right_roots = None
        self.steps = 0

    def _damped(self, factor):
        delta = self.damping * max(np.trace(factor) / len(factor), 1e-12)
        return factor + delta * np.eye(len(factor))

    def step(self, weights, grads):
        for left, right, g in zip(self.left, self.right, grads):
            left *= self.beta
            left += (1 - self.beta) * (g @ g.T)
            right *= self.beta
            right += (1 - self.beta) * (g.T @ g)
        if self.steps % self.root_every == 0:
            factors = [self._damped(f) for f in self.left + self.right]
            roots = self.roots(factors, self.p)
            self.left_roots, self.right_roots = roots[: len(self.left)], roots[len(self.left):]
        for w, g, lr_, rr in zip(weights, grads, self.left_roots, self.right_roots):
            w -= self.lr * (lr_ @ g @ rr)
        self.steps += 1


def train(roots, epochs: int = 30, seed: int = 0, batch: int = 128):
    """Trains the network with Shampoo using `roots` (eigh_roots or pe_roots); returns the per-epoch
    history [(train loss, test accuracy)] and the mean time of an optimizer step in seconds."""
    x_train, x_test, y_train, y_test = digits(seed)
    net = Network(seed)
    optimizer = Shampoo(net.weights, roots)
    rng = np.random.default_rng(seed)
    history, step_seconds = [], []
    for _ in range(epochs):
        order = rng.permutation(len(x_train))
        for start in range(0, len(order), batch):
            index = order[start:start + batch]
            _, grads = net.loss_and_gradients(x_train[index], y_train[index])
            t0 = time.perf_counter()
            optimizer.step(net.weights, grads)
            step_seconds.append(time.perf_counter() - t0)
        history.append((net.evaluate(x_train, y_train)[0], net.evaluate(x_test, y_test)[1]))
    return history, float(np.mean(step_seconds))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", type=float, default=1e-3, help="pe's tracked bound of ||X^4 A - I||")
    args = parser.parse_args()
    exact, exact_step = train(eigh_roots, args.epochs, args.seed)
    ours, ours_step = train(lambda f, p: pe_roots(f, p, args.target), args.epochs, args.seed)
    print("Shampoo (L^-1/4 G R^-1/4) on scikit-learn's digits, 64-64-10 network, roots every 5 steps")
    print_curves(exact, exact_step, ours, ours_step)


def print_curves(exact, exact_step, ours, ours_step):
    """The two runs' training loss and test accuracy per epoch side by side, then the step times."""
    print(f"{'epoch':>5}  {'eigh loss':>10} {'eigh acc':>9}  {'pe loss':>10} {'pe acc':>9}")
    for epoch, ((el, ea), (ol, oa)) in enumerate(zip(exact, ours), start=1):
        print(f"{epoch:>5}  {el:>10.4f} {ea:>9.4f}  {ol:>10.4f} {oa:>9.4f}")
    print(f"time per optimizer step: eigh {exact_step * 1e3:.3f} ms, pe {ours_step * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
