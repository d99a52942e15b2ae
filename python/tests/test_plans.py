"""Plans (pe.RootPlan, ApplyPlan, SolvePlan, GramPlan): made once, executed many times; their results are
the one-shot functions', bit for bit (a one-shot call is a plan executed once), and a plan refuses arrays
of another shape, dtype or device with the runtime's message."""

import numpy as np
import pytest

import pe
from conftest import spd

N = 24


def _strip(report):
    return {k: v for k, v in report.items() if not k.endswith("seconds")}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_root_plan_equals_the_one_shot_call(dtype):
    plan = pe.RootPlan(N, 2, dtype=dtype, target=1e-4)
    for seed in range(3):
        a = spd(N, 1e3, seed=seed, dtype=dtype)
        x, report = plan.execute(a)
        y, expected = pe.inverse_root(a, 2, target=1e-4)
        assert x.tobytes() == y.tobytes()
        assert _strip(report) == _strip(expected)
        assert report["certified"]


def test_root_plan_writes_into_out_and_batches():
    a = np.stack([spd(N, 1e2, seed=s) for s in range(3)])
    plan = pe.RootPlan(N, 4, dtype="f64", batch=3)
    out = np.empty_like(a)
    x, report = plan.execute(a, out=out)
    assert x is out
    expected, _ = pe.inverse_root(a, 4)
    assert out.tobytes() == expected.tobytes()
    assert len(report["scale"]) == 3


def test_a_plan_refuses_other_shapes_and_dtypes():
    plan = pe.RootPlan(N, 2, dtype="f32")
    with pytest.raises(pe.Error, match="does not match the plan"):
        plan.execute(spd(N + 1, 10, dtype=np.float32))
    with pytest.raises(pe.Error, match="does not match the plan"):
        plan.execute(spd(N, 10, dtype=np.float64))
    with pytest.raises(TypeError):
        pe.RootPlan(N, 2, dtype="f32", no_such_option=1)


def test_apply_solve_and_gram_plans_equal_their_functions():
    a = spd(N, 1e3, seed=4)
    b = np.random.default_rng(4).standard_normal((N, 3))
    plan = pe.ApplyPlan(N, 3, 2, dtype="f64", mode="materialize")
    assert not plan.direct
    z, _ = plan.execute(a, b)
    z1, _ = pe.apply_inverse_root(a, b, 2, mode="materialize")
    assert z.tobytes() == z1.tobytes()
    x, report = pe.SolvePlan(N, 3, dtype="f64").execute(a, b)
    x1, _ = pe.solve(a, b)
    assert x.tobytes() == x1.tobytes() and report["certified"]
    g = np.random.default_rng(5).standard_normal((10, N))
    cache = pe.GramCache()
    gp = pe.GramPlan(10, N, 3, 2, lam=0.1, dtype="f64", cache=cache)
    first, r1 = gp.execute(g, b)
    again, r2 = gp.execute(g, b)
    assert (r1["cache"], r2["cache"]) == ("miss", "hit")
    assert first.tobytes() == again.tobytes()
    # Without a cache the one-shot call may apply directly (another plan), both within the target 1e-3.
    expected, _ = pe.gram_apply(g, b, 2, lam=0.1)
    np.testing.assert_allclose(first, expected, rtol=2e-3, atol=1e-6)


def _enqueue_options():
    # conftest.spd has lambda_max = 1: both entry points then divide by the hint and start from the lower one.
    return dict(target=1e-4, verify=False, fallback="never", lambda_min_hint=1e-3, lambda_max_hint=1.0)


def test_enqueue_and_collect_give_execute_numbers():
    """The path a CUDA graph captures (docs/graphs.md), on the CPU: the same X as execute, bit for bit, and
    a report collected afterwards."""
    a = spd(N, 1e3, seed=4, dtype=np.float32)
    plan = pe.RootPlan(N, 2, dtype="f32", **_enqueue_options())
    x, executed = plan.execute(a)
    out = np.empty_like(a)
    plan.enqueue(a, out)
    collected = plan.collect()
    assert out.tobytes() == x.tobytes()
    for key in ("steps", "gemms", "l0", "scale", "model_eps", "status"):
        assert collected[key] == executed[key], key
    assert not collected["certified"]
    assert collected == plan.collect()  # read again: the same checks

    b = np.asfortranarray(np.linspace(-1, 1, N * 3, dtype=np.float32).reshape(N, 3))
    apply = pe.ApplyPlan(N, 3, 2, dtype="f32", mode="direct", **_enqueue_options())
    z, _ = apply.execute(a, b)
    zq = np.empty_like(b, order="F")
    apply.enqueue(a, b, zq)
    assert apply.collect()["mode"] == "direct"
    assert zq.tobytes(order="F") == np.asfortranarray(z).tobytes(order="F")


def test_enqueue_names_what_it_cannot_do():
    a = spd(N, 1e3, seed=5, dtype=np.float32)
    out = np.empty_like(a)
    with pytest.raises(pe.Error, match="options.verify"):
        pe.RootPlan(N, 2, dtype="f32", lambda_min_hint=1e-3, lambda_max_hint=1.0, fallback="never").enqueue(a, out)
    with pytest.raises(pe.Error, match="nothing was enqueued"):
        pe.RootPlan(N, 2, dtype="f32", **_enqueue_options()).collect()
