"""pe: certified fixed-budget matrix inverse p-th roots, on NumPy, PyTorch, JAX and CuPy arrays.

    x, report = pe.inverse_root(a, 4, target=1e-3)          # X ~ A^{-1/4}, A symmetric positive definite
    z, report = pe.apply_inverse_root(a, b, 2)              # Z ~ A^{-1/2} B
    x, report = pe.solve(a, b, target=1e-6)                 # A X = B
    z, report = pe.gram_apply(g, c, 2, lam=1e-3)            # Z ~ (G^T G + lam I)^{-1/2} C

Arrays: anything that speaks DLPack or the buffer protocol, float32 or float64, read without copying.
The last two dimensions are the matrix (C or Fortran order, any leading dimension); leading dimensions
are batch members (one call for many equal blocks; inverse_root and apply_inverse_root). Arrays on a
CUDA device run on the CUDA backend, on the caller's current stream (PyTorch's
torch.cuda.current_stream(), CuPy's current stream). Outputs are new arrays of the first argument's
kind, dtype and device, C-ordered.

Options are keyword arguments that mirror the C++ structs pe::Options, pe::SolveOptions and
pe::GramOptions (include/pe/pe.hpp, include/pe/solve.hpp): the same names and defaults, enums as strings,
with `storage=None` meaning "the input's dtype", `device=None` meaning "where the arrays are", and
`stream=None` meaning "the current stream of the arrays' framework".

`report` is the dict of pe::to_json for the C++ report, with exactly its keys (new C++ fields appear by
themselves). Bad input raises pe.Error (a ValueError) with the runtime's message; arguments of the wrong
type raise TypeError.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from . import _pe
from ._arrays import Call

Error = _pe.Error
GramCache = _pe.GramCache

__all__ = ["Error", "GramCache", "apply_inverse_root", "gram_apply", "inverse_root", "solve"]

try:
    from importlib.metadata import version as _version

    __version__ = _version("pe")
except Exception:  # not installed as a distribution (a build tree on sys.path)
    __version__ = "unknown"

Array = Any  # a NumPy, PyTorch, JAX or CuPy array, or any DLPack / buffer-protocol object


def _options(arguments: dict, *arrays: str) -> dict:
    """The keyword options of a call: its arguments less the arrays (names are the C++ members')."""
    return {name: value for name, value in arguments.items() if name not in arrays}


def _matrix_shape(rhs_shape: tuple, rows: int) -> tuple:
    """(..., rows, k) for a right-hand side of shape (..., m, k); shapes that are no matrix stay as they
    are, so that the compiled module names the argument."""
    return tuple(rhs_shape[:-2]) + (rows, rhs_shape[-1]) if len(rhs_shape) >= 2 else tuple(rhs_shape)


def inverse_root(
    a: Array,
    p: int,
    *,
    target: float = 1e-3,
    max_gemms: int = 0,
    max_steps: int = 0,
    degree: int = 0,
    precond: str = "frobenius",
    ridge: float = 0.0,
    l_target: float = 0.0,
    lambda_min_hint: float = 0.0,
    kappa_hint: float = 0.0,
    symmetrize_every: int = 1,
    renormalize: bool = False,
    symmetry_tolerance: float = -1.0,
    schedule_source: str = "compiled",
    schedule_file: str = "",
    device: Optional[str] = None,
    stream: Optional[int] = None,
    compute: str = "native",
    storage: Optional[str] = None,
) -> tuple[Array, dict]:
    """X ~ A^{-1/p} for symmetric positive definite A (n x n, or a batch (..., n, n)).

    Returns (x, report): x of a's kind, shape, dtype and device; report = pe::to_json(Report) as a dict
    (steps, gemms, final_eps, certified, target_reached, intervals, fallback, seconds, notes, ...).

    p: the root, 1..64. target: stop when the tracked bound of ||X^p A - I|| reaches it (0: budget
    only). max_gemms / max_steps: budgets, never exceeded (0: none / the default step limit).
    degree: of the step polynomial, 1, 2 or 0 (the cheaper for this target). precond: scaling before
    the iteration, none | frobenius | jacobi | ruiz | aol (the diagonal modes need p = 1).
    ridge: iterate on A + ridge I. l_target: floor for the normalised lower spectrum bound (a shift).
    lambda_min_hint / kappa_hint: a known lower bound of lambda_min(A) / an estimate of cond(A), which
    spares the Cholesky certification of the spectrum. symmetrize_every: symmetrise the residual every k
    steps (0: never). renormalize: re-centre the residual on its trace where the tables allow.
    symmetry_tolerance: max |a_ij - a_ji| / max|a| (< 0: 100 unit roundoffs of a's dtype).
    schedule_source: compiled | json_file (then schedule_file is the tables' path).
    device: cpu | cuda (None: where a is). stream: a cudaStream_t (None: the framework's current one).
    compute: native | tf32. storage: f32 | f64, the iteration's dtype (None: a's).
    """
    options = _options(locals(), "a")
    call = Call("a", a, options)
    a = call.input("a", a)
    x = call.output(a.shape, a.dtype)
    report = _pe.inverse_root(a, x, options)
    return call.result(x), json.loads(report)


def apply_inverse_root(
    a: Array,
    b: Array,
    p: int,
    *,
    target: float = 1e-3,
    max_gemms: int = 0,
    max_steps: int = 0,
    degree: int = 0,
    precond: str = "frobenius",
    ridge: float = 0.0,
    l_target: float = 0.0,
    lambda_min_hint: float = 0.0,
    kappa_hint: float = 0.0,
    mode: str = "automatic",
    reuse_count: int = 1,
    symmetrize_every: int = 1,
    renormalize: bool = False,
    symmetry_tolerance: float = -1.0,
    schedule_source: str = "compiled",
    schedule_file: str = "",
    device: Optional[str] = None,
    stream: Optional[int] = None,
    compute: str = "native",
    storage: Optional[str] = None,
) -> tuple[Array, dict]:
    """Z ~ A^{-1/p} B for symmetric positive definite A (n x n) and B (n x k), or batches of both.

    Returns (z, report): z of a's kind, dtype and device with b's shape; report = pe::to_json(Report).
    Options as for inverse_root, plus mode: automatic | materialize (form X, multiply once) | direct
    (carry the skinny Z through the steps), and reuse_count: how many times the caller will apply the
    same A (biases automatic toward materialize).
    """
    options = _options(locals(), "a", "b")
    call = Call("a", a, options)
    a = call.input("a", a)
    b = call.input("b", b, column_major=True)
    z = call.output(b.shape, a.dtype, column_major=True)
    report = _pe.apply_inverse_root(a, b, z, options)
    return call.result(z), json.loads(report)


def solve(
    a: Array,
    b: Array,
    *,
    target: float = 1e-6,
    max_gemms: int = 0,
    max_corrections: int = 3,
    structure: str = "automatic",
    inner_target: float = 0.0,
    polar_target: float = 0.5,
    precond: str = "frobenius",
    lambda_min_hint: float = 0.0,
    kappa_hint: float = 0.0,
    allow_fallback: bool = True,
    symmetry_tolerance: float = -1.0,
    schedule_source: str = "compiled",
    schedule_file: str = "",
    device: Optional[str] = None,
    stream: Optional[int] = None,
    compute: str = "native",
    storage: Optional[str] = None,
) -> tuple[Array, dict]:
    """X ~ A^{-1} B for A (n x n) and B (n x k), one matrix (no batch).

    Returns (x, report): x of a's kind, dtype and device with b's shape; report = pe::to_json(SolveReport)
    (method, structure, gemms, residuals, residual, target_reached, inverse, fallback, ...).

    target: relative residual ||B - A X||_F / ||B||_F to reach (0: budget only). max_gemms: budget for
    everything, never exceeded (0: none). max_corrections: refinement steps after X0 (0..10).
    structure: automatic | spd | general (automatic: symmetric with a positive diagonal is spd).
    inner_target: bound of ||I - M A|| for the approximate inverse (0: sqrt(target), clamped).
    polar_target: general A, where the polar iteration stops. precond, lambda_min_hint, kappa_hint,
    symmetry_tolerance, schedule_source, schedule_file, device, stream, compute, storage: as for
    inverse_root. allow_fallback: False reports non-convergence instead of running an LU solve.
    """
    options = _options(locals(), "a", "b")
    call = Call("a", a, options)
    a = call.input("a", a, column_major=True)
    b = call.input("b", b, column_major=True)
    x = call.output(b.shape, a.dtype, column_major=True)
    report = _pe.solve(a, b, x, options)
    return call.result(x), json.loads(report)


def gram_apply(
    g: Array,
    c: Array,
    p: int,
    *,
    lam: float,
    target: float = 1e-3,
    max_gemms: int = 0,
    degree: int = 0,
    rhs: str = "plain",
    side: str = "automatic",
    cache: Optional[GramCache] = None,
    version: int = 0,
    lambda_min_hint: float = 0.0,
    kappa_hint: float = 0.0,
    schedule_source: str = "compiled",
    schedule_file: str = "",
    device: Optional[str] = None,
    stream: Optional[int] = None,
    compute: str = "native",
    storage: Optional[str] = None,
) -> tuple[Array, dict]:
    """Z ~ (G^T G + lam I)^{-1/p} C for G (m x n), without forming the Gram matrix on the caller's side.

    rhs="plain": C is n x k. rhs="range": the result is (G^T G + lam I)^{-1/p} G^T C with C m x k, computed
    on the smaller of the two Grams (side: automatic | primal (n x n) | dual (m x m)). Z is n x k.
    Returns (z, report): z of g's kind, dtype and device; report = pe::to_json(GramReport) (side, cache,
    gemms, root (the root's Report), seconds, notes).

    lam: the ridge, >= 0 (0: the Gram must be invertible on the chosen side). cache: a pe.GramCache that
    keeps the Gram and its roots across calls with the same G; bump version whenever G's contents change.
    target, max_gemms, degree, lambda_min_hint, kappa_hint (of the regularised Gram), schedule_source,
    schedule_file, device, stream, compute, storage: as for inverse_root.
    """
    options = _options(locals(), "g", "c")
    call = Call("g", g, options)
    g = call.input("g", g, column_major=True)
    c = call.input("c", c, column_major=True)
    z = call.output(_matrix_shape(c.shape, g.shape[-1] if len(g.shape) else 0), g.dtype, column_major=True)
    report = _pe.gram_apply(g, c, z, options)
    return call.result(z), json.loads(report)
