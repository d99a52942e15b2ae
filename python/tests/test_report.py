"""The report dict has exactly the keys of pe::to_json, at every level; the field list below is the
documented one (include/pe/pe.hpp, include/pe/solve.hpp), so a key that the C++ side adds or renames
shows up here and in the parity tests (which compare with pe-run's --json)."""

import numpy as np

import pe
from conftest import spd

ROOT_KEYS = {
    "status", "steps", "gemms", "degree", "verified_eps", "model_eps", "final_eps", "floor_eps", "drift_eps",
    "estimated_residual", "certified", "target_reached", "intervals", "precond", "scale", "l0", "l0_source", "ridge",
    "shift", "matrix_changed", "mode", "storage", "backend", "schedules", "fallback", "fallback_reason", "seconds",
    "verify_seconds", "newton_steps", "newton_gemms", "notes",
}
STEP_KEYS = {"step", "degree", "precision", "gemms", "interval", "bucket_l_edge", "rigorous"}
SOLVE_KEYS = {
    "method", "structure", "gemms", "inverse_gemms", "polar_gemms", "corrections", "residuals", "predicted",
    "residual", "verified_residual", "certified", "status", "target_reached", "polar_steps", "polar_bound",
    "polar_certified", "inverse", "fallback",
    "fallback_reason", "storage", "backend", "seconds", "notes",
}
GRAM_KEYS = {"side", "cache", "gemms", "root", "seconds", "notes"}


def _root_keys_hold(report):
    assert set(report) == ROOT_KEYS, set(report) ^ ROOT_KEYS
    for step in report["intervals"]:
        assert set(step) == STEP_KEYS


def test_root_and_apply_reports():
    a = spd(24, 1e3)
    _, report = pe.inverse_root(a, 2)
    _root_keys_hold(report)
    assert report["certified"] and report["verified_eps"] is not None and report["status"] == "ok"
    assert report["steps"] == len(report["intervals"]) > 0 and report["backend"] == "cpu"
    _, report = pe.apply_inverse_root(a, np.ones((24, 2)), 2)
    _root_keys_hold(report)


def test_solve_and_gram_reports():
    a = spd(24, 1e3)
    _, report = pe.solve(a, np.ones((24, 2)))
    assert SOLVE_KEYS <= set(report)
    _root_keys_hold(report["inverse"])
    _, report = pe.gram_apply(np.random.default_rng(0).standard_normal((10, 24)), np.ones((24, 1)), 2, lam=0.1)
    assert GRAM_KEYS <= set(report)
    _root_keys_hold(report["root"])
