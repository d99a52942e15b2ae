"""Every way a call can be wrong maps to the right exception: the wrong kind of object is a TypeError,
a bad value is pe.Error (a ValueError) with the runtime's message naming the argument."""

import array

import numpy as np
import pytest

import pe
from conftest import spd

N = 16
A = spd(N, 1e2, seed=1)
B = np.ones((N, 2))


def test_error_is_a_value_error():
    assert issubclass(pe.Error, ValueError)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: pe.inverse_root([[1.0, 0.0], [0.0, 1.0]], 2), "a: expected an array"),
        (lambda: pe.inverse_root(None, 2), "a: expected an array"),
        (lambda: pe.apply_inverse_root(A, "b", 2), "b: expected an array"),
        (lambda: pe.inverse_root(A.astype(np.int64), 2), "a: dtype int64 is not supported"),
        (lambda: pe.inverse_root(A.astype(np.complex128), 2), "a: dtype complex128 is not supported"),
        (lambda: pe.inverse_root(A > 0, 2), "a: dtype bool"),
        (lambda: pe.inverse_root(A, 2, target="small"), "target: expected a number, got str"),
        (lambda: pe.inverse_root(A, 2.5), "p: expected an int, got float"),
        (lambda: pe.inverse_root(A, True), "p: expected an int, got bool"),
        (lambda: pe.inverse_root(A, 2, renormalize=1), "renormalize: expected a bool"),
        (lambda: pe.inverse_root(A, 2, precond=1), "precond: expected a str"),
        (lambda: pe.inverse_root(A, 2, stream="s"), "stream: expected None or an int"),
        (lambda: pe.inverse_root(A, 2, unknown=1), "unexpected keyword argument 'unknown'"),
        (lambda: pe._pe.inverse_root(A, np.empty_like(A), {"p": 2, "bogus": 1}), "unexpected option 'bogus'"),
        (lambda: pe.gram_apply(A, B, 2, lam=0.1, cache=object()), "cache: expected None or a pe.GramCache"),
        (lambda: pe.gram_apply(A, B, 2), "missing 1 required keyword-only argument: 'lam'"),
    ],
)
def test_wrong_types_raise_type_error(call, message):
    with pytest.raises(TypeError, match=message) as caught:
        call()
    assert not isinstance(caught.value, pe.Error)


def _not_symmetric():
    a = A.copy()
    a[0, 1] += 1e-3
    return a


def _not_finite():
    a = A.copy()
    a[3, 3] = np.nan
    return a


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: pe.inverse_root(np.ones(N), 2), r"a: a 1-D array of shape \(16,\) is not a matrix"),
        (lambda: pe.inverse_root(np.ones((0, 0)), 2), "a: shape 0 x 0 must be at least 1 x 1"),
        (lambda: pe.inverse_root(np.ones((0, N, N)), 2), "a: batch count 0 must be >= 1"),
        (lambda: pe.inverse_root(A[:, :5], 2), "a: shape 16 x 5 is not square"),
        (lambda: pe.inverse_root(A[::2, ::2], 2), "neither row- nor column-major"),
        (lambda: pe.inverse_root(A[::-1], 2), "neither row- nor column-major"),
        (lambda: pe.inverse_root(np.broadcast_to(A, (3, N, N)), 2), "a: batch stride 0 is below"),
        (lambda: pe.inverse_root(np.stack([A, A, A, A])[::2], 2), None),  # evenly spaced members: fine
        (lambda: pe.inverse_root(np.stack([A] * 6).reshape(2, 3, N, N)[:, :2], 2), "not evenly spaced"),
        (lambda: pe.inverse_root(A.astype(np.float16), 2), "a: dtype f16 is not supported"),
        (lambda: pe.inverse_root(_not_symmetric(), 2), "a: not symmetric"),
        (lambda: pe.inverse_root(_not_finite(), 2), "expected finite values"),
        (lambda: pe.inverse_root(-A, 2), "not positive definite"),
        (lambda: pe.inverse_root(A, 0), "options.p = 0"),
        (lambda: pe.inverse_root(A, 2, target=2.0), "options.target = 2"),
        (lambda: pe.inverse_root(A, 2, target=0), r"options.target = 0 \(budget only\) needs a budget"),
        (lambda: pe.inverse_root(A, 2, max_gemms=-1), "options.max_gemms = -1"),
        (lambda: pe.inverse_root(A, 2, max_gemms=2**40), "max_gemms = 1099511627776: out of range"),
        (lambda: pe.inverse_root(A, 2, degree=5), "options.degree = 5"),
        (lambda: pe.inverse_root(A, 2, precond="jacobi"), "jacobi"),
        (lambda: pe.inverse_root(A, 2, precond="fast"), "precond mode 'fast' is unknown"),
        (lambda: pe.inverse_root(A, 2, compute="fp8"), "compute = 'fp8' is unknown"),
        (lambda: pe.inverse_root(A, 2, storage="fp8"), "storage = 'fp8' is unknown"),
        (lambda: pe.inverse_root(A, 2, device="tpu"), "device = 'tpu' is unknown"),
        (lambda: pe.inverse_root(A, 2, schedule_source="json_file"), "schedule_file is empty"),
        (lambda: pe.inverse_root(A, 2, schedule_source="json_file", schedule_file="/nonexistent.json"),
         "nonexistent"),
        (lambda: pe.apply_inverse_root(A, np.ones((N + 1, 2)), 2), "b: shape 17 x 2"),
        (lambda: pe.apply_inverse_root(A, B, 2, mode="lazy"), "mode = 'lazy' is unknown"),
        (lambda: pe.apply_inverse_root(A, B, 2, reuse_count=0), "options.reuse_count = 0"),
        (lambda: pe.solve(A, B, structure="banded"), "banded"),
        (lambda: pe.solve(np.stack([A, A]), np.stack([B, B])), "batch count 2: solves and Gram applies take one"),
        (lambda: pe.solve(np.zeros((N, N)), B), None),  # singular: the runtime's own error below
        (lambda: pe.gram_apply(A, B, 2, lam=-1.0), "lambda"),
        (lambda: pe.gram_apply(A, B, 2, lam=0.1, side="left"), "side = 'left' is unknown"),
        (lambda: pe.gram_apply(A, B, 2, lam=0.1, version=-1), "version = -1: expected >= 0"),
        (lambda: pe._pe.default_options("polar"), "option set 'polar' is unknown"),
    ],
)
def test_bad_values_raise_pe_error(call, message):
    if message is None:
        try:
            call()
        except pe.Error:
            pass  # a singular solve is a pe.Error too; evenly spaced members succeed
        return
    with pytest.raises(pe.Error, match=message):
        call()


def test_buffer_protocol_and_dlpack_objects_are_arrays():
    flat = array.array("d", A.ravel())  # 1-D buffer: read, then named as no matrix
    with pytest.raises(pe.Error, match="1-D array"):
        pe.inverse_root(flat, 2)
    matrix = memoryview(flat).cast("B").cast("d", (N, N))
    x, _ = pe.inverse_root(matrix, 2)
    reference, _ = pe.inverse_root(A, 2)
    assert isinstance(x, np.ndarray) and np.array_equal(x, reference)

    class OnlyDLPack:  # a producer NumPy does not know by type
        def __init__(self, a):
            self._a = a

        def __dlpack__(self, **kwargs):
            return self._a.__dlpack__(**kwargs)

        def __dlpack_device__(self):
            return self._a.__dlpack_device__()

    x, _ = pe.inverse_root(OnlyDLPack(A), 2)
    assert np.array_equal(x, reference)


def test_a_failed_call_leaves_no_partial_output_behind():
    # outputs are new arrays: a call that raises returns nothing, and its inputs are untouched
    a = _not_symmetric()
    before = a.copy()
    with pytest.raises(pe.Error):
        pe.inverse_root(a, 2)
    assert np.array_equal(a, before)
