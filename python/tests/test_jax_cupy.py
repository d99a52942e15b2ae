"""JAX and CuPy arrays. JAX arrays are immutable: outputs are computed into a buffer and handed back as
JAX arrays on the input's device. Each test skips when its framework (or a GPU) is absent."""

import numpy as np
import pytest

import pe
from conftest import exact_inverse_root, relative_error, spd

N = 24


def test_jax_arrays_in_and_out():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    a_np = spd(N, 1e3, seed=1)
    a = jax.numpy.asarray(a_np)
    x, report = pe.inverse_root(a, 2)
    assert isinstance(x, jax.Array) and x.dtype == a.dtype and x.shape == a.shape
    expected, _ = pe.inverse_root(a_np, 2)
    if report["backend"] == "cpu":
        assert np.array_equal(np.asarray(x), expected)
    b = jax.numpy.ones((N, 2))
    z, _ = pe.apply_inverse_root(a, b, 2, target=1e-8)
    assert isinstance(z, jax.Array)
    assert relative_error(np.asarray(z), exact_inverse_root(a_np, 2) @ np.ones((N, 2))) <= 1e-7


def _cupy_with_gpu():
    cupy = pytest.importorskip("cupy")
    try:
        if cupy.cuda.runtime.getDeviceCount() == 0:
            pytest.skip("no CUDA device")
    except cupy.cuda.runtime.CUDARuntimeError:
        pytest.skip("no CUDA device")
    return cupy


def test_cupy_arrays_run_on_the_gpu():
    cupy = _cupy_with_gpu()
    a_np = spd(N, 1e3, seed=2, dtype=np.float32)
    a = cupy.asarray(a_np)
    x, report = pe.inverse_root(a, 2)
    assert isinstance(x, cupy.ndarray) and report["backend"] == "cuda"
    # f32 on the GPU: the f32 rounding level amplified by kappa^{1/2} beside the tracked bound
    assert relative_error(cupy.asnumpy(x), exact_inverse_root(a_np, 2)) <= report["final_eps"] + 1e-4
    b = cupy.random.standard_normal((N, 3), dtype=cupy.float32)
    z, _ = pe.apply_inverse_root(a, b, 2)
    assert z.flags.c_contiguous and z.shape == b.shape


def test_cupy_calls_run_on_the_current_stream():
    cupy = _cupy_with_gpu()
    source = cupy.asarray(spd(N, 1e2, seed=3, dtype=np.float32))
    expected, _ = pe.inverse_root(source, 2)
    side = cupy.cuda.Stream(non_blocking=True)
    with side:
        a = cupy.full((N, N), cupy.nan, dtype=cupy.float32)
        busy = cupy.ones((4096, 4096), dtype=cupy.float32)
        for _ in range(20):  # keeps `side` busy: a is still NaN unless pe waits on this stream
            busy = (busy @ busy) * (1.0 / 4096)
        a[...] = source
        a += busy[:N, :N] * 0
        x, _ = pe.inverse_root(a, 2)
    side.synchronize()
    assert bool(cupy.isfinite(x).all()) and bool((x == expected).all())
