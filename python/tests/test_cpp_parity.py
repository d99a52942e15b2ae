"""The Python results are the C++ API's, bit for bit: the same matrices through pe-run (which calls the
same entry points on .npy files) give identical outputs and identical reports (but the wall time).

pe-run reads every file into double and hands the runtime row-major float64 views with the file's dtype
as the storage dtype, so the Python calls here are given exactly those views (C-ordered float64 arrays,
storage=<the file's dtype>): the comparison is of the same C++ call, whatever the runtime does with the
caller's dtype. That float32 arrays given directly compute the same is test_numpy's business."""

import json
import subprocess

import numpy as np
import pytest

import pe
from conftest import spd

N = 40


def _without_seconds(report):
    """Reports less their wall-clock fields (seconds, verify_seconds: the only ones two runs may differ in), at
    every depth."""
    if isinstance(report, dict):
        return {k: _without_seconds(v) for k, v in report.items() if not k.endswith("seconds")}
    if isinstance(report, list):
        return [_without_seconds(v) for v in report]
    return report


def _as_pe_run_reads(array):
    """The array as pe-run hands it to the runtime, and the storage option it sets."""
    return np.ascontiguousarray(array, dtype=np.float64), np.dtype(array.dtype).name.replace("float", "f")


def _same_output(python, expected):
    """pe-run writes its double output in the storage dtype; so does the comparison."""
    return python.astype(expected.dtype).tobytes() == expected.tobytes()


def _pe_run(pe_run, tmp_path, command, arrays, flags):
    files = []
    for name, value in arrays.items():
        path = tmp_path / f"{name}.npy"
        np.save(path, value)
        files.append(str(path))
    out = tmp_path / "out.npy"
    names = dict(zip(arrays, files))
    args = [pe_run, command, "--in", names["in"], "--out", str(out), "--json", *flags]
    if "rhs" in names:
        args += ["--rhs", names["rhs"]]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return np.load(out), json.loads(done.stdout)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [1, 2, 4])
def test_inverse_root_equals_pe_run(pe_run, tmp_path, dtype, p):
    a = spd(N, 1e4, seed=p, dtype=dtype)
    expected, expected_report = _pe_run(pe_run, tmp_path, "root", {"in": a}, ["--p", str(p), "--target", "1e-6"])
    a64, storage = _as_pe_run_reads(a)
    x, report = pe.inverse_root(a64, p, target=1e-6, storage=storage)
    assert _same_output(x, expected)
    assert _without_seconds(report) == _without_seconds(expected_report)


@pytest.mark.parametrize("mode", ["direct", "materialize"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_apply_equals_pe_run(pe_run, tmp_path, dtype, mode):
    a = spd(N, 1e3, seed=11, dtype=dtype)
    b = np.random.default_rng(11).standard_normal((N, 3)).astype(dtype)
    flags = ["--p", "2", "--mode", mode, "--max-gemms", "30"]
    expected, expected_report = _pe_run(pe_run, tmp_path, "apply", {"in": a, "rhs": b}, flags)
    (a64, storage), (b64, _) = _as_pe_run_reads(a), _as_pe_run_reads(b)
    z, report = pe.apply_inverse_root(a64, b64, 2, mode=mode, max_gemms=30, storage=storage)
    assert _same_output(z, expected)
    assert _without_seconds(report) == _without_seconds(expected_report)


@pytest.mark.parametrize("structure", ["spd", "general"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_solve_equals_pe_run(pe_run, tmp_path, dtype, structure):
    rng = np.random.default_rng(12)
    a = spd(N, 1e2, seed=12) if structure == "spd" else np.eye(N) * 4 + rng.standard_normal((N, N))
    a, b = a.astype(dtype), rng.standard_normal((N, 2)).astype(dtype)
    flags = ["--target", "1e-5", f"--{structure}"]
    expected, expected_report = _pe_run(pe_run, tmp_path, "solve", {"in": a, "rhs": b}, flags)
    (a64, storage), (b64, _) = _as_pe_run_reads(a), _as_pe_run_reads(b)
    x, report = pe.solve(a64, b64, target=1e-5, structure=structure, storage=storage)
    assert _same_output(x, expected)
    assert _without_seconds(report) == _without_seconds(expected_report)


@pytest.mark.parametrize("rhs", ["plain", "range"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gram_apply_equals_pe_run(pe_run, tmp_path, dtype, rhs):
    rng = np.random.default_rng(13)
    g = rng.standard_normal((25, N)).astype(dtype)
    c = rng.standard_normal((25 if rhs == "range" else N, 3)).astype(dtype)
    flags = ["--p", "2", "--lambda", "0.01"] + (["--range"] if rhs == "range" else [])
    expected, expected_report = _pe_run(pe_run, tmp_path, "gram-apply", {"in": g, "rhs": c}, flags)
    (g64, storage), (c64, _) = _as_pe_run_reads(g), _as_pe_run_reads(c)
    z, report = pe.gram_apply(g64, c64, 2, lam=0.01, rhs=rhs, storage=storage)
    assert _same_output(z, expected)
    assert _without_seconds(report) == _without_seconds(expected_report)
