#!/usr/bin/env python3
"""What a Python call of pe costs beyond the C++ call it makes, at n = 64 (issue 12).

Each call is timed around pe.inverse_root in Python, and the C++ one-shot call inside it times itself
(report["seconds"]: from entering pe::inverse_root to its return), so both figures come from the same
call in the same process; the overhead is their difference (views, options, the output allocation,
the report's dict). Also timed: the compiled entry point alone (_pe.inverse_root on a prepared
output and options dict, without the Python wrapper), and a plan made once
(pe.RootPlan.execute, with out= and without), whose report times the C++ execute the same way.
Medians of --calls calls.

    .venv/bin/python bench/python_overhead.py [--n 64] [--calls 3000]
"""

import argparse
import statistics
import time

import numpy as np

import pe
from pe import _pe


def spd(n, kappa, seed=0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    a = (q * np.logspace(-np.log10(kappa), 0, n)) @ q.T
    return np.triu(a) + np.triu(a, 1).T


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args()
    print(f"pe.inverse_root, n = {args.n}, p = 2, kappa = 1e4, target 1e-3, CPU backend; medians of {args.calls} calls")
    print(f"{'dtype':<6} {'python call':>12} {'C++ call':>10} {'overhead':>10} {'_pe alone':>10} {'_pe overhead':>13}"
          f" {'plan call':>10} {'C++ execute':>12} {'overhead':>10} {'out= overhead':>14}")
    for dtype in (np.float32, np.float64):
        a = spd(args.n, 1e4).astype(dtype)
        for _ in range(200):
            pe.inverse_root(a, 2)
        wall, inner, compiled, compiled_inner = [], [], [], []
        plan_wall, plan_inner, out_wall, out_inner = [], [], [], []
        x = np.empty_like(a)
        options = {"p": 2}
        plan = pe.RootPlan(args.n, 2, dtype=dtype)
        for _ in range(200):
            plan.execute(a)
        for _ in range(args.calls):
            t0 = time.perf_counter()
            _, report = pe.inverse_root(a, 2)
            wall.append(time.perf_counter() - t0)
            inner.append(report["seconds"])
            t0 = time.perf_counter()
            compiled_report = _pe.inverse_root(a, x, options)
            compiled.append(time.perf_counter() - t0)
            compiled_inner.append(compiled_report["seconds"])
            t0 = time.perf_counter()
            _, report = plan.execute(a)
            plan_wall.append(time.perf_counter() - t0)
            plan_inner.append(report["seconds"])
            t0 = time.perf_counter()
            _, report = plan.execute(a, out=x)
            out_wall.append(time.perf_counter() - t0)
            out_inner.append(report["seconds"])
        overhead = statistics.median(w - s for w, s in zip(wall, inner))
        compiled_overhead = statistics.median(w - s for w, s in zip(compiled, compiled_inner))
        plan_overhead = statistics.median(w - s for w, s in zip(plan_wall, plan_inner))
        out_overhead = statistics.median(w - s for w, s in zip(out_wall, out_inner))
        print(f"{np.dtype(dtype).name:<6} {statistics.median(wall) * 1e6:>9.1f} us {statistics.median(inner) * 1e6:>7.1f} us "
              f"{overhead * 1e6:>7.1f} us {statistics.median(compiled) * 1e6:>7.1f} us {compiled_overhead * 1e6:>10.1f} us "
              f"{statistics.median(plan_wall) * 1e6:>7.1f} us {statistics.median(plan_inner) * 1e6:>9.1f} us "
              f"{plan_overhead * 1e6:>7.1f} us {out_overhead * 1e6:>11.1f} us")


if __name__ == "__main__":
    main()
