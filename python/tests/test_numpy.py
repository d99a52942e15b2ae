"""The package on NumPy arrays: results against exact references, every memory layout the views take,
batches, dtypes, and the options reaching the runtime."""

import inspect

import numpy as np
import pytest

import pe
from conftest import double_rounding, exact_inverse_root, relative_error, spd

N = 48


@pytest.mark.parametrize("p", [1, 2, 4])
def test_root_matches_the_exact_root_within_its_bound(p):
    a = spd(N, 1e4, seed=p)
    x, report = pe.inverse_root(a, p, target=1e-8)
    assert isinstance(x, np.ndarray) and x.shape == a.shape and x.dtype == np.float64
    assert report["target_reached"] and report["final_eps"] <= 1e-8
    # ||X^p A - I|| <= eps bounds each eigenvalue ratio of X to A^{-1/p} by (1 +- eps)^{1/p}, so the
    # relative error is at most about eps/p, plus rounding.
    assert relative_error(x, exact_inverse_root(a, p)) <= report["final_eps"] + double_rounding(1e4)


def test_apply_solve_and_gram_match_their_exact_references():
    a, rng = spd(N, 1e3, seed=3), np.random.default_rng(3)
    b = rng.standard_normal((N, 5))
    z, report = pe.apply_inverse_root(a, b, 2, target=1e-9)
    assert z.shape == b.shape and report["mode"] in ("direct", "materialize")
    # direct and materialised applies both keep the root's bound (eps/p per eigen-direction), plus rounding.
    assert relative_error(z, exact_inverse_root(a, 2) @ b) <= 1e-9 + double_rounding(1e3)
    x, report = pe.solve(a, b, target=1e-10)
    assert report["residual"] <= 1e-10
    assert np.linalg.norm(a @ x - b) <= 1e-10 * np.linalg.norm(b) * 1.01  # the reported residual, recomputed
    g, c = rng.standard_normal((20, N)), rng.standard_normal((20, 3))
    z, report = pe.gram_apply(g, c, 2, lam=1e-1, rhs="range", target=1e-9)
    reference = exact_inverse_root(g.T @ g + 1e-1 * np.eye(N), 2) @ g.T @ c
    assert report["side"] == "dual" and z.shape == (N, 3)
    assert relative_error(z, reference) <= 1e-9 + double_rounding(np.linalg.cond(g.T @ g + 1e-1 * np.eye(N)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_c_order_fortran_order_and_leading_dimensions_give_identical_results(dtype):
    a = spd(N, 1e3, seed=5, dtype=dtype)
    x, _ = pe.inverse_root(a, 2)
    assert x.dtype == dtype
    big = np.zeros((N + 7, N + 3), dtype=dtype)
    big[2:2 + N, 1:1 + N] = a
    for view in (np.asfortranarray(a), big[2:2 + N, 1:1 + N], np.asfortranarray(big)[2:2 + N, 1:1 + N]):
        assert not np.shares_memory(view, x)
        xv, _ = pe.inverse_root(view, 2)
        assert np.array_equal(xv, x)  # the same matrix, read through another layout: bit for bit
    b = np.random.default_rng(5).standard_normal((N, 4)).astype(dtype)
    z, _ = pe.apply_inverse_root(a, b, 2, mode="direct")
    zf, _ = pe.apply_inverse_root(a, np.asfortranarray(b), 2, mode="direct")
    wide = np.zeros((N, 9), dtype=dtype)
    wide[:, 2:6] = b
    zs, _ = pe.apply_inverse_root(a, wide[:, 2:6], 2, mode="direct")
    assert np.array_equal(z, zf) and np.array_equal(z, zs)
    column = b[:, 1:2]  # an n x 1 slice: strides (k, 1) with k > 1
    zc, _ = pe.apply_inverse_root(a, column, 2, mode="direct")
    zc_copy, _ = pe.apply_inverse_root(a, np.ascontiguousarray(column), 2, mode="direct")
    assert np.array_equal(zc, zc_copy)


def test_inputs_are_not_copied_or_modified():
    a = spd(N, 1e2, seed=6)
    a.setflags(write=False)  # read-only inputs are accepted (JAX hands out such views)
    before = a.copy()
    x, _ = pe.inverse_root(a, 2)
    assert np.array_equal(a, before) and not np.shares_memory(a, x)


def test_batches_of_any_leading_shape():
    members = np.stack([spd(N, 10.0 ** (k + 1), seed=k) for k in range(6)])
    xb, report = pe.inverse_root(members, 2, target=1e-8)
    assert xb.shape == members.shape and len(report["l0"]) == 6
    for k in range(6):
        # each member to the batch's bound (the batch runs until its worst member reaches the target)
        assert relative_error(xb[k], exact_inverse_root(members[k], 2)) <= report["final_eps"] + double_rounding(1e6)
    x4, _ = pe.inverse_root(members.reshape(2, 3, N, N), 2, target=1e-8)
    assert x4.shape == (2, 3, N, N) and np.array_equal(x4.reshape(6, N, N), xb)
    # members a stride apart that is not N*N (a slice of a larger stack), and per-member column-major
    padded = np.zeros((6, N + 2, N + 5))
    padded[:, :N, :N] = members
    xs, _ = pe.inverse_root(padded[:, :N, :N], 2, target=1e-8)
    xt, _ = pe.inverse_root(np.swapaxes(members, 1, 2), 2, target=1e-8)
    assert np.array_equal(xs, xb) and np.array_equal(xt, xb)
    b = np.random.default_rng(7).standard_normal((6, N, 3))
    zb, _ = pe.apply_inverse_root(members, b, 2, target=1e-8, mode="materialize")
    assert zb.shape == b.shape
    assert relative_error(zb[4], exact_inverse_root(members[4], 2) @ b[4]) <= 1e-8 + double_rounding(1e5)
    single, _ = pe.inverse_root(members[None, 3], 2, target=1e-8)  # a batch of one is a plain matrix
    alone, _ = pe.inverse_root(members[3], 2, target=1e-8)
    assert single.shape == (1, N, N) and np.array_equal(single[0], alone)


def test_storage_dtype_and_options_reach_the_runtime():
    a = spd(N, 1e3, seed=8)
    x, report = pe.inverse_root(a, 2, storage="f32")
    assert report["storage"] == "f32" and x.dtype == np.float64  # output in a's dtype, iterated in f32
    x32, _ = pe.inverse_root(a.astype(np.float32), 2)
    assert np.array_equal(x.astype(np.float32), x32)  # f64 -> f32 storage is the same computation
    a32, b32 = a.astype(np.float32), np.random.default_rng(8).standard_normal((N, 3)).astype(np.float32)
    for call in (lambda a_, b_, **options: pe.apply_inverse_root(a_, b_, 2, **options), pe.solve):
        wide, _ = call(a32.astype(np.float64), b32.astype(np.float64), storage="f32")
        narrow, _ = call(a32, b32)
        assert narrow.dtype == np.float32 and np.array_equal(wide.astype(np.float32), narrow)
    _, report = pe.inverse_root(a, 4, precond="none", max_gemms=12, target=0)
    assert report["precond"] == "none" and report["gemms"] <= 12
    _, report = pe.inverse_root(a, 2, kappa_hint=1e3)
    assert report["l0_source"] in ("kappa_hint", "gershgorin")
    _, report = pe.inverse_root(a, 2, ridge=1e-2)
    assert report["ridge"] == 1e-2 and report["matrix_changed"]
    _, report = pe.apply_inverse_root(a, np.ones((N, 2)), 2, mode="materialize")
    assert report["mode"] == "materialize"
    _, report = pe.solve(a, np.ones((N, 2)), structure="general")
    assert report["structure"] == "general"
    cache = pe.GramCache()
    g = np.random.default_rng(9).standard_normal((30, N))
    _, first = pe.gram_apply(g, np.ones((N, 2)), 2, lam=1e-2, cache=cache, version=1)
    _, second = pe.gram_apply(g, np.ones((N, 2)), 2, lam=1e-2, cache=cache, version=1)
    assert (first["cache"], second["cache"], len(cache)) == ("miss", "hit", 1)
    cache.clear()
    assert len(cache) == 0


@pytest.mark.parametrize(
    "function, option_set",
    [(pe.inverse_root, "root"), (pe.apply_inverse_root, "apply"), (pe.solve, "solve"), (pe.gram_apply, "gram")],
)
def test_keyword_defaults_are_the_cpp_defaults(function, option_set):
    cpp = pe._pe.default_options(option_set)
    signature = inspect.signature(function)
    python = {
        name: parameter.default
        for name, parameter in signature.parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and parameter.default is not inspect.Parameter.empty
    }
    # p (and lam for Gram applies) are required in Python: the rest must be exactly the C++ defaults.
    required = {"p", "lam"} & set(cpp)
    assert set(python) | required == set(cpp)
    for name, value in python.items():
        assert value == cpp[name] and type(value) is type(cpp[name]), name


def test_concurrent_calls_from_threads_give_the_sequential_results():
    # the binding releases the GIL while the runtime works; one-shot calls share no state
    from concurrent.futures import ThreadPoolExecutor

    matrices = [spd(N, 10.0 ** (k % 4 + 1), seed=k) for k in range(8)]
    sequential = [pe.inverse_root(m, 2)[0] for m in matrices]
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(lambda m: pe.inverse_root(m, 2)[0], matrices))
    assert all(np.array_equal(s, c) for s, c in zip(sequential, concurrent))
