#!/usr/bin/env python3
"""Distributed Shampoo preconditioner roots with torch.distributed: the blocks are spread over the ranks,
each rank computes its blocks with one batched pe call per block shape, and an all-gather hands every
rank all the roots (the way Distributed Shampoo and DASH scale out).

The model is data parallel (gradients all-reduced), so every rank holds the same Kronecker factors L and
R. Each weight matrix is split into blocks of at most --block rows and columns; a block of shape
(m, n) has its own L (m x m) and R (n x n). Factors are dealt to ranks largest first (balancing the work);
every 5 steps a rank computes the inverse fourth roots of its factors only, and
dist.all_gather assembles them on every rank.

    python examples/python/distributed_shampoo_torch.py --world-size 2             # gloo, 2 CPU ranks
    python examples/python/distributed_shampoo_torch.py --backend nccl --world-size 1   # on the GPU
    torchrun --nproc-per-node 2 examples/python/distributed_shampoo_torch.py       # ranks from torchrun

Trains a 64 -> 128 -> 64 -> 10 network on scikit-learn's digits, then checks that every rank ended
with the same weights, and that the gathered roots equal those each rank's batched calls give.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import socket
import sys

import torch
import torch.distributed as dist

import pe

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from shampoo_numpy import digits  # noqa: E402


def blocks_of(shape, block):
    """(row slice, column slice) of each block of a matrix of `shape`."""
    rows, cols = shape
    return [(slice(i, min(i + block, rows)), slice(j, min(j + block, cols)))
            for i in range(0, rows, block) for j in range(0, cols, block)]


class DistributedShampoo:
    def __init__(self, weights, block, rank, world, lr=0.005, beta=0.95, damping=1e-3, root_every=5, target=1e-3):
        self.weights, self.rank, self.world = weights, rank, world
        self.lr, self.beta, self.damping, self.root_every, self.target = lr, beta, damping, root_every, target
        self.blocks = [(w_index, rs, cs) for w_index, w in enumerate(weights) for rs, cs in blocks_of(w.shape, block)]
        like = dict(dtype=weights[0].dtype, device=weights[0].device)
        # factors[2 k] = L of block k, factors[2 k + 1] = R of block k
        self.factors = []
        for w_index, rs, cs in self.blocks:
            m, n = rs.stop - rs.start, cs.stop - cs.start
            self.factors += [torch.zeros(m, m, **like), torch.zeros(n, n, **like)]
        self.roots = [torch.eye(len(f), **like) for f in self.factors]
        # largest first, dealt round-robin: every rank gets a similar share of the O(n^3) work
        order = sorted(range(len(self.factors)), key=lambda i: -len(self.factors[i]))
        self.owner = {i: k % world for k, i in enumerate(order)}
        self.steps = 0

    def _damped(self, factor):
        delta = self.damping * torch.clamp(torch.trace(factor) / len(factor), min=1e-12)
        return factor + delta * torch.eye(len(factor), dtype=factor.dtype, device=factor.device)

    def local_roots(self, indices):
        """Inverse fourth roots of the given factors: one batched pe call per factor shape."""
        out = {}
        by_size: dict = {}
        for i in indices:
            by_size.setdefault(len(self.factors[i]), []).append(i)
        for members in by_size.values():
            x, _ = pe.inverse_root(torch.stack([self._damped(self.factors[i]) for i in members]), 4, target=self.target)
            out.update(zip(members, x))
        return out

    def refresh_roots(self):
        mine = [i for i in range(len(self.factors)) if self.owner[i] == self.rank]
        computed = self.local_roots(mine)
        # every rank's roots, flattened into one buffer of a size every rank knows (padding the short ones)
        sizes = [sum(self.factors[i].numel() for i in self.owner if self.owner[i] == r) for r in range(self.world)]
        like = dict(dtype=self.factors[0].dtype, device=self.factors[0].device)
        send = torch.zeros(max(sizes), **like)
        if mine:
            flat = torch.cat([computed[i].reshape(-1) for i in mine])
            send[: flat.numel()] = flat
        gathered = [torch.empty_like(send) for _ in range(self.world)]
        dist.all_gather(gathered, send)
        for r in range(self.world):
            offset = 0
            for i in (i for i in range(len(self.factors)) if self.owner[i] == r):
                count = self.factors[i].numel()
                self.roots[i] = gathered[r][offset:offset + count].reshape(self.factors[i].shape)
                offset += count

    @torch.no_grad()
    def step(self):
        for w in self.weights:  # data parallel: the mean gradient on every rank
            dist.all_reduce(w.grad)
            w.grad /= self.world
        for k, (w_index, rs, cs) in enumerate(self.blocks):
            g = self.weights[w_index].grad[rs, cs]
            self.factors[2 * k].mul_(self.beta).add_(g @ g.T, alpha=1 - self.beta)
            self.factors[2 * k + 1].mul_(self.beta).add_(g.T @ g, alpha=1 - self.beta)
        if self.steps % self.root_every == 0:
            self.refresh_roots()
        for k, (w_index, rs, cs) in enumerate(self.blocks):
            w = self.weights[w_index]
            w[rs, cs] -= self.lr * (self.roots[2 * k] @ w.grad[rs, cs] @ self.roots[2 * k + 1])
        for w in self.weights:
            w.grad = None
        self.steps += 1


def forward(weights, biases, x):
    for w, b in zip(weights[:-1], biases[:-1]):
        x = torch.relu(x @ w.T + b)
    return x @ weights[-1].T + biases[-1]


def run(rank, world, backend, epochs, block):
    device = torch.device(f"cuda:{rank % torch.cuda.device_count()}") if backend == "nccl" else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, rank=rank, world_size=world)
    x_train, x_test, y_train, y_test = digits(0)
    x_train, x_test = (torch.as_tensor(v[:, :64], dtype=torch.float32, device=device) for v in (x_train, x_test))
    y_train, y_test = (torch.as_tensor(v, device=device) for v in (y_train, y_test))
    generator = torch.Generator().manual_seed(0)  # the same initial weights on every rank
    sizes = [64, 128, 64, 10]
    weights = [(torch.randn(o, i, generator=generator) / i**0.5).to(device).requires_grad_()
               for i, o in zip(sizes[:-1], sizes[1:])]
    biases = [torch.zeros(o, device=device, requires_grad=True) for o in sizes[1:]]
    optimizer = DistributedShampoo(weights, block, rank, world)
    shard = slice(rank, None, world)  # this rank's share of every batch
    for epoch in range(epochs):
        order = torch.randperm(len(x_train), generator=generator).to(device)
        for start in range(0, len(order), 128):
            index = order[start:start + 128][shard]
            torch.nn.functional.cross_entropy(forward(weights, biases, x_train[index]), y_train[index]).backward()
            optimizer.step()
            with torch.no_grad():
                for b in biases:
                    dist.all_reduce(b.grad)
                    b -= 0.1 * b.grad / world
                    b.grad = None
        with torch.no_grad():
            accuracy = (forward(weights, biases, x_test).argmax(dim=1) == y_test).float().mean().item()
        if rank == 0:
            print(f"epoch {epoch + 1}: test accuracy {accuracy:.4f}", flush=True)

    # Every rank must hold the same weights, and the gathered roots must be the ones computed locally.
    with torch.no_grad():
        mine = torch.cat([w.reshape(-1) for w in weights])
        everyone = [torch.empty_like(mine) for _ in range(world)]
        dist.all_gather(everyone, mine)
        agree = all(torch.equal(everyone[0], other) for other in everyone)
        optimizer.refresh_roots()
        # each rank recomputes every rank's share (the same batched calls) and compares with what arrived
        same_roots = True
        for r in range(world):
            local = optimizer.local_roots([i for i in optimizer.owner if optimizer.owner[i] == r])
            same_roots = same_roots and all(torch.equal(x, optimizer.roots[i]) for i, x in local.items())
    if rank == 0:
        shapes = sorted({tuple(f.shape) for f in optimizer.factors})
        print(f"{world} rank(s) ({backend}, {device.type}): {len(optimizer.factors)} factors of shapes {shapes}; "
              f"weights agree on every rank: {agree}; gathered roots equal local roots: {same_roots}", flush=True)
    dist.destroy_process_group()
    if not (agree and same_roots):
        raise SystemExit(1)


def _spawned(rank, world, backend, epochs, block):
    run(rank, world, backend, epochs, block)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["gloo", "nccl"], default="gloo")
    parser.add_argument("--world-size", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--block", type=int, default=32, help="largest block side of a preconditioner factor")
    args = parser.parse_args()
    if "RANK" in os.environ:  # started by torchrun
        run(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), args.backend, args.epochs, args.block)
        return
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    if "MASTER_PORT" not in os.environ:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            os.environ["MASTER_PORT"] = str(s.getsockname()[1])
    torch.multiprocessing.spawn(_spawned, args=(args.world_size, args.backend, args.epochs, args.block),
                                nprocs=args.world_size)


if __name__ == "__main__":
    main()
