"""Shared helpers for the Python package's tests: SPD matrices with known spectra, exact references
(LAPACK eigh in double), and the C++ reference program pe-run."""

from __future__ import annotations

import os
import pathlib
import shutil

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


def spd(n: int, kappa: float, seed: int = 0, dtype=np.float64) -> np.ndarray:
    """Q diag(logspace(-log10 kappa, 0)) Q^T, symmetric to the last bit (rounded once, then mirrored)."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    a = (q * np.logspace(-np.log10(kappa), 0, n)) @ q.T
    a = np.triu(a) + np.triu(a, 1).T
    return a.astype(dtype)


def exact_inverse_root(a: np.ndarray, p: int) -> np.ndarray:
    w, v = np.linalg.eigh(np.asarray(a, dtype=np.float64))
    return (v * w ** (-1.0 / p)) @ v.T


def double_rounding(kappa: float) -> float:
    """Allowance for double rounding in a root's relative error beside its tracked bound (which is the
    exact-arithmetic model's, issue 15): the first steps amplify rounding by about kappa^{1/2}, and
    1e-13 is about 1000 unit roundoffs (n = 48 terms per product, a few dozen products)."""
    return 1e-13 * kappa**0.5


def relative_error(x, reference) -> float:
    return float(np.linalg.norm(np.asarray(x, dtype=np.float64) - reference) / np.linalg.norm(reference))


@pytest.fixture(scope="session")
def pe_run() -> str:
    """The pe-run binary: $PE_RUN (scripts/test.sh sets it, and then it must exist), else the default
    build's; the parity tests skip only when neither is there (a bare `pip install .`)."""
    given = os.environ.get("PE_RUN")
    if given:
        path = pathlib.Path(given)
        if not path.is_absolute():
            path = REPO / path
        assert path.is_file(), f"PE_RUN={given} does not exist"
        return str(path)
    default = REPO / "build/default/tools/pe-run/pe-run"
    if default.is_file():
        return str(default)
    found = shutil.which("pe-run")
    if not found:
        pytest.skip("pe-run not built (set PE_RUN or build the default preset)")
    return found
