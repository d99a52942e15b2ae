"""Reference counting and memory: 10,000 calls leave the resident set flat and the inputs' reference
counts as they were (nanobind also reports leaked instances at exit)."""

import gc
import sys

import numpy as np
import pytest

import pe
from conftest import spd

CALLS = 10_000
N = 8


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_no_growth_over_ten_thousand_calls():
    a, b = spd(N, 1e2), np.ones((N, 2))
    g = np.random.default_rng(0).standard_normal((6, N))
    cache = pe.GramCache()
    calls = [
        lambda: pe.inverse_root(a, 2),
        lambda: pe.apply_inverse_root(a, b, 2),
        lambda: pe.solve(a, b),
        lambda: pe.gram_apply(g, b, 2, lam=0.1),
        lambda: pe.gram_apply(g, b, 2, lam=0.1, cache=cache, version=1),
    ]

    def failing():
        try:
            pe.inverse_root(a[:, :3], 2)
        except pe.Error:
            pass

    calls.append(failing)
    counts = (sys.getrefcount(a), sys.getrefcount(b), sys.getrefcount(g))
    for call in calls:
        for _ in range(200):  # warm up: allocator pools, the runtime's lazily loaded tables
            call()
    gc.collect()
    before = _resident_bytes()
    for i in range(CALLS):
        calls[i % len(calls)]()
    gc.collect()
    growth = _resident_bytes() - before
    # One leaked report string (~1 KB) or output (512 B) per call would be several MB; 1 MiB leaves
    # room for allocator pages that stay mapped.
    assert growth < 1 << 20, f"resident set grew by {growth} bytes over {CALLS} calls"
    assert (sys.getrefcount(a), sys.getrefcount(b), sys.getrefcount(g)) == counts
