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

from typing import Any, Optional

import numpy as _np

from . import _pe
from ._arrays import Call

Error = _pe.Error
GramCache = _pe.GramCache

__all__ = [
    "ApplyPlan",
    "Error",
    "GramCache",
    "GramPlan",
    "RootPlan",
    "SolvePlan",
    "apply_inverse_root",
    "gram_apply",
    "inverse_root",
    "solve",
]

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
    lambda_max_hint: float = 0.0,
    symmetrize_every: int = 1,
    renormalize: bool = False,
    symmetry_tolerance: float = -1.0,
    verify: bool = True,
    fallback: str = "on_failure",
    fallback_factor: float = 10.0,
    elevated_steps: int = -1,
    newton_steps: int = 0,
    schedule_source: str = "compiled",
    schedule_file: str = "",
    device: Optional[str] = None,
    stream: Optional[int] = None,
    compute: str = "native",
    storage: Optional[str] = None,
) -> tuple[Array, dict]:
    """X ~ A^{-1/p} for symmetric positive definite A (n x n, or a batch (..., n, n)).

    Returns (x, report): x of a's kind, shape, dtype and device; report = pe::to_json(Report) as a dict
    (status, steps, gemms, verified_eps, model_eps, floor_eps, certified, target_reached, intervals,
    fallback, seconds, notes, ...). verified_eps is a proven bound of max |lambda(X^p A) - 1| for the
    returned x (None when not verified); certified is True exactly when it holds.

    p: the root, 1..64. target: the bound to reach (planned on the interval model; reached means the
    verified bound meets it; 0: budget only). max_gemms / max_steps: budgets, never exceeded (0: none / the default step limit).
    degree: of the step polynomial, 1, 2 or 0 (the cheaper for this target). precond: scaling before
    the iteration, none | frobenius | jacobi | ruiz | aol (the diagonal modes need p = 1).
    ridge: iterate on A + ridge I. l_target: floor for the normalised lower spectrum bound (a shift).
    lambda_min_hint / kappa_hint: a known lower bound of lambda_min(A) / an estimate of cond(A), which
    spares the Cholesky certification of the spectrum. symmetrize_every: symmetrise the residual every k
    steps (0: never). renormalize: re-centre the residual on its trace where the tables allow.
    symmetry_tolerance: max |a_ij - a_ji| / max|a| (< 0: 100 unit roundoffs of a's dtype).
    lambda_max_hint: a known upper bound of lambda_max(A). verify: certify the returned root.
    fallback: never | on_failure | on_unverified (the exact root when the verified bound misses the target
    by more than fallback_factor). elevated_steps: how many first steps run one precision level up (-1:
    as the drift model says the target needs). newton_steps: Newton corrections of the finished root
    (0..4; through A's eigendecomposition, for targets below what the iteration's rounding reaches).
    schedule_source: compiled | json_file (then schedule_file is the tables' path).
    device: cpu | cuda (None: where a is). stream: a cudaStream_t (None: the framework's current one).
    compute: native | tf32. storage: f32 | f64 | bf16 | f16, the iteration's dtype (None: a's; bf16/f16
    emulated on the CPU).
    """
    options = _options(locals(), "a")
    call = Call("a", a, options)
    a = call.input("a", a)
    x = call.output(a.shape, a.dtype)
    report = _pe.inverse_root(a, x, options)
    return call.result(x), report


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
    lambda_max_hint: float = 0.0,
    mode: str = "automatic",
    reuse_count: int = 1,
    symmetrize_every: int = 1,
    renormalize: bool = False,
    symmetry_tolerance: float = -1.0,
    verify: bool = True,
    fallback: str = "on_failure",
    fallback_factor: float = 10.0,
    elevated_steps: int = -1,
    newton_steps: int = 0,
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
    return call.result(z), report


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
    return call.result(x), report


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
    verify: bool = True,
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
    return call.result(z), report


# ---- Plans: made once for a shape, dtype, placement and options, executed many times ----------------


def _placement(device: str) -> tuple[str, int]:
    """("cpu", 0) or ("cuda", ordinal) from "cpu", "cuda" or "cuda:N"."""
    kind, _, ordinal = str(device).partition(":")
    if kind not in ("cpu", "cuda") or (ordinal and not ordinal.isdigit()):
        raise Error(f"device = '{device}' is unknown (expected cpu, cuda or cuda:N)")
    return kind, int(ordinal or 0)


def _dtype_name(dtype: Any) -> str:
    """"f32"/"f64" from those names, NumPy dtypes and types (np.float32), or torch dtypes."""
    if isinstance(dtype, type) or hasattr(dtype, "name"):
        try:
            import numpy as np

            dtype = np.dtype(dtype).name
        except TypeError:
            dtype = getattr(dtype, "name", str(dtype))
    name = str(dtype).replace("torch.", "")
    return {"float32": "f32", "float64": "f64"}.get(name, name)


class _Plan:
    """What every plan shares: the placement and the call that meets the caller's arrays."""

    def _execute(self, first_name: str, first: Any, arrays: list, out_shape: tuple, out: Optional[Array],
                 column_major: bool, compiled):
        if (out is None or type(out) is _np.ndarray) and all(type(arr) is _np.ndarray for _, arr, _ in arrays):
            # NumPy in and out: what Call would do (views as they are, a NumPy output), without its checks
            # of other frameworks; the compiled module checks dtypes, shapes and layouts either way.
            z = out if out is not None else _np.empty(out_shape, dtype=first.dtype)
            return z, compiled(*(arr for _, arr, _ in arrays), z)
        call = Call(first_name, first, {})
        inputs = [call.input(name, arr, column_major=cm) for name, arr, cm in arrays]
        dtype = inputs[0].dtype
        z = out if out is not None else call.output(out_shape, dtype, column_major=column_major)
        report = compiled(*inputs, z)
        return (z if out is not None else call.result(z)), report


class RootPlan(_Plan):
    """pe.RootPlan(n, p, *, dtype="f32", batch=1, device="cpu", **options): X ~ A^{-1/p} for every A of
    this shape (n x n, `batch` members), dtype and device, made once; execute(a) many times. Options are
    those of inverse_root (the stream is fixed when the plan is made: None is the default stream). The
    plan holds the backend, its workspace, the tables and the verifier: execute allocates nothing in the
    runtime (pass out= to reuse an output array too). One plan must not execute on two threads at once.
    """

    def __init__(self, n: int, p: int, *, dtype: Any = "f32", batch: int = 1, device: str = "cpu", **options: Any):
        kind, ordinal = _placement(device)
        options["p"] = p
        self.n, self.p, self.batch, self.dtype, self.device = n, p, batch, _dtype_name(dtype), device
        self._plan = _pe.RootPlan(n, batch, self.dtype, kind, ordinal, options)

    def execute(self, a: Array, out: Optional[Array] = None) -> tuple[Array, dict]:
        """(x, report) for this A: x of a's kind and device (or `out`, written in place)."""
        return self._execute("a", a, [("a", a, False)], tuple(getattr(a, "shape", ())), out, False, self._plan.execute)

    def enqueue(self, a: Array, out: Array) -> None:
        """Issues X <- A^{-1/p} into `out` without reading anything back, so that it can be captured into a
        CUDA graph (docs/graphs.md). Needs verify=False, fallback="never", lambda_min_hint and
        lambda_max_hint. The arrays are used as they are (no conversion, no copy: the plan's dtype, C or
        Fortran order); collect() returns the report."""
        self._plan.enqueue(a, out)

    def collect(self) -> dict:
        """The report of the last enqueue (or of the last replay of a captured one), after waiting for it."""
        return self._plan.collect()


class ApplyPlan(_Plan):
    """pe.ApplyPlan(n, k, p, *, dtype="f32", batch=1, device="cpu", **options): Z ~ A^{-1/p} B for A n x n
    and B n x k; options as for apply_inverse_root. `direct` says which mode the plan chose."""

    def __init__(self, n: int, k: int, p: int, *, dtype: Any = "f32", batch: int = 1, device: str = "cpu",
                 **options: Any):
        kind, ordinal = _placement(device)
        options["p"] = p
        self.n, self.k, self.p, self.batch, self.dtype = n, k, p, batch, _dtype_name(dtype)
        self._plan = _pe.ApplyPlan(n, k, batch, self.dtype, kind, ordinal, options)

    @property
    def direct(self) -> bool:
        return self._plan.direct

    def execute(self, a: Array, b: Array, out: Optional[Array] = None) -> tuple[Array, dict]:
        return self._execute("a", a, [("a", a, False), ("b", b, True)], tuple(getattr(b, "shape", ())), out, True,
                             self._plan.execute)

    def enqueue(self, a: Array, b: Array, out: Array) -> None:
        """As RootPlan.enqueue, for Z <- A^{-1/p} B into `out`; b and out used as they are (Fortran order)."""
        self._plan.enqueue(a, b, out)

    def collect(self) -> dict:
        """As RootPlan.collect."""
        return self._plan.collect()


class SolvePlan(_Plan):
    """pe.SolvePlan(n, k, *, dtype="f32", device="cpu", **options): A X = B for A n x n, B n x k; options
    as for solve."""

    def __init__(self, n: int, k: int, *, dtype: Any = "f32", device: str = "cpu", **options: Any):
        kind, ordinal = _placement(device)
        self.n, self.k, self.dtype = n, k, _dtype_name(dtype)
        self._plan = _pe.SolvePlan(n, k, self.dtype, kind, ordinal, options)

    def execute(self, a: Array, b: Array, out: Optional[Array] = None) -> tuple[Array, dict]:
        return self._execute("a", a, [("a", a, True), ("b", b, True)], tuple(getattr(b, "shape", ())), out, True,
                             self._plan.execute)


class GramPlan(_Plan):
    """pe.GramPlan(m, n, k, p, *, lam, dtype="f32", device="cpu", rhs="plain", **options): Gram applies
    for G m x n and C (n x k for rhs plain, m x k for rhs range); options as for gram_apply."""

    def __init__(self, m: int, n: int, k: int, p: int, *, lam: float, dtype: Any = "f32", device: str = "cpu",
                 rhs: str = "plain", **options: Any):
        kind, ordinal = _placement(device)
        options.update(p=p, lam=lam, rhs=rhs)
        self.m, self.n, self.k, self.p, self.dtype = m, n, k, p, _dtype_name(dtype)
        self._plan = _pe.GramPlan(m, n, m if rhs == "range" else n, k, self.dtype, kind, ordinal, options)

    def execute(self, g: Array, c: Array, out: Optional[Array] = None) -> tuple[Array, dict]:
        shape = tuple(getattr(c, "shape", ()))
        return self._execute("g", g, [("g", g, True), ("c", c, True)], _matrix_shape(shape, self.n), out, True,
                             self._plan.execute)
