#!/usr/bin/env python3
"""Shampoo on scikit-learn's digits in PyTorch, with exact roots (torch.linalg.eigh in double) and with
pe's roots (pe.inverse_root on the torch tensors themselves: zero-copy, on the GPU when there is one,
on PyTorch's current CUDA stream).

The same network and optimizer as shampoo_numpy.py (64+1 -> 64 -> 10, W <- W - lr L^{-1/4} G R^{-1/4},
roots every 5 steps, all factors of one shape in one batched pe call), with autograd gradients.

    python examples/python/shampoo_torch.py [--epochs 30] [--device cuda|cpu] [--seed 0]
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import torch

import pe

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from shampoo_numpy import digits, print_curves  # noqa: E402  (the data set and the table, shared)


def eigh_roots(factors: list, p: int) -> list:
    roots = []
    for a in factors:
        w, v = torch.linalg.eigh(a.double())
        roots.append(((v * w ** (-1.0 / p)) @ v.T).to(a.dtype))
    return roots


def pe_roots(factors: list, p: int, target: float = 1e-3) -> list:
    """One batched pe call per shape; the outputs are torch tensors on the factors' device."""
    roots: list = [None] * len(factors)
    by_shape: dict = {}
    for i, a in enumerate(factors):
        by_shape.setdefault(tuple(a.shape), []).append(i)
    for members in by_shape.values():
        x, _ = pe.inverse_root(torch.stack([factors[i] for i in members]), p, target=target)
        for k, i in enumerate(members):
            roots[i] = x[k]
    return roots


class Shampoo:
    def __init__(self, weights, roots, lr=0.02, beta=0.95, damping=1e-3, root_every=5, p=4):
        self.roots, self.lr, self.beta, self.damping, self.root_every, self.p = roots, lr, beta, damping, root_every, p
        self.left = [torch.zeros(w.shape[0], w.shape[0], dtype=w.dtype, device=w.device) for w in weights]
        self.right = [torch.zeros(w.shape[1], w.shape[1], dtype=w.dtype, device=w.device) for w in weights]
        self.left_roots = self.right_roots = None
        self.steps = 0

    def _damped(self, factor):
        delta = self.damping * torch.clamp(torch.trace(factor) / len(factor), min=1e-12)
        return factor + delta * torch.eye(len(factor), dtype=factor.dtype, device=factor.device)

    @torch.no_grad()
    def step(self, weights):
        grads = [w.grad for w in weights]
        for left, right, g in zip(self.left, self.right, grads):
            left.mul_(self.beta).add_(g @ g.T, alpha=1 - self.beta)
            right.mul_(self.beta).add_(g.T @ g, alpha=1 - self.beta)
        if self.steps % self.root_every == 0:
            roots = self.roots([self._damped(f) for f in self.left + self.right], self.p)
            self.left_roots, self.right_roots = roots[: len(self.left)], roots[len(self.left):]
        for w, g, lr_, rr in zip(weights, grads, self.left_roots, self.right_roots):
            w.sub_(self.lr * (lr_ @ g @ rr))
            w.grad = None
        self.steps += 1


def forward(weights, x):
    h = torch.relu(x @ weights[0].T)
    h1 = torch.cat([h, torch.ones(len(h), 1, dtype=h.dtype, device=h.device)], dim=1)
    return h1 @ weights[1].T


def train(roots, epochs: int = 30, seed: int = 0, device: str = "cpu", batch: int = 128):
    """Returns the per-epoch history [(train loss, test accuracy)] and the mean optimizer step time."""
    x_train, x_test, y_train, y_test = (torch.as_tensor(v, device=device) for v in digits(seed))
    x_train, x_test = x_train.float(), x_test.float()
    generator = torch.Generator().manual_seed(seed)
    weights = [(torch.randn(64, 65, generator=generator) / 65**0.5).to(device).requires_grad_(),
               (torch.randn(10, 65, generator=generator) / 65**0.5).to(device).requires_grad_()]
    optimizer = Shampoo(weights, roots)
    history, step_seconds = [], []
    for _ in range(epochs):
        order = torch.randperm(len(x_train), generator=generator).to(device)
        for start in range(0, len(order), batch):
            index = order[start:start + batch]
            torch.nn.functional.cross_entropy(forward(weights, x_train[index]), y_train[index]).backward()
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            optimizer.step(weights)
            if device == "cuda":
                torch.cuda.synchronize()
            step_seconds.append(time.perf_counter() - t0)
        with torch.no_grad():
            loss = torch.nn.functional.cross_entropy(forward(weights, x_train), y_train).item()
            accuracy = (forward(weights, x_test).argmax(dim=1) == y_test).float().mean().item()
        history.append((loss, accuracy))
    return history, sum(step_seconds) / len(step_seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--target", type=float, default=1e-3, help="pe's tracked bound of ||X^4 A - I||")
    args = parser.parse_args()
    exact, exact_step = train(eigh_roots, args.epochs, args.seed, args.device)
    ours, ours_step = train(lambda f, p: pe_roots(f, p, args.target), args.epochs, args.seed, args.device)
    print(f"Shampoo in PyTorch ({args.device}, float32) on scikit-learn's digits, roots every 5 steps")
    print_curves(exact, exact_step, ours, ours_step)


if __name__ == "__main__":
    main()
