"""The examples in examples/python: the NumPy Shampoo example in full (CI runs it), the PyTorch ones
where torch is installed."""

import os
import subprocess
import sys

import pytest

from conftest import REPO

EXAMPLES = REPO / "examples" / "python"
sys.path.insert(0, str(EXAMPLES))


def test_numpy_shampoo_reaches_the_same_accuracy_with_pe_roots_as_with_eigh_roots():
    import shampoo_numpy as example

    exact, _ = example.train(example.eigh_roots, epochs=12)
    ours, _ = example.train(example.pe_roots, epochs=12)
    exact_accuracy, ours_accuracy = exact[-1][1], ours[-1][1]
    # pe's roots are within 1e-3 (the target) of the exact ones, and the two runs track each other to
    # about four digits of the loss; 2 points of accuracy (9 of 450 test images) is far below what a
    # wrong root costs (identity roots: 0.68, square roots instead of fourth roots: 0.07 at 12 epochs).
    assert exact_accuracy > 0.9
    assert abs(ours_accuracy - exact_accuracy) <= 0.02, (exact, ours)
    assert abs(ours[-1][0] - exact[-1][0]) <= 0.05 * exact[-1][0]  # final training loss within 5 %


def test_numpy_shampoo_script_prints_both_curves():
    done = subprocess.run([sys.executable, str(EXAMPLES / "shampoo_numpy.py"), "--epochs", "2"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "eigh acc" in done.stdout and "time per optimizer step" in done.stdout


def test_torch_shampoo_reaches_the_same_accuracy_with_pe_roots():
    pytest.importorskip("torch")
    import shampoo_torch as example

    exact, _ = example.train(example.eigh_roots, epochs=12)
    ours, _ = example.train(example.pe_roots, epochs=12)
    # as for the NumPy version (float32 here, so the curves agree to about three digits)
    assert exact[-1][1] > 0.9 and abs(ours[-1][1] - exact[-1][1]) <= 0.02, (exact, ours)


def test_distributed_example_with_two_gloo_ranks():
    pytest.importorskip("torch")
    env = dict(os.environ, MASTER_ADDR="127.0.0.1")
    done = subprocess.run([sys.executable, str(EXAMPLES / "distributed_shampoo_torch.py"), "--world-size", "2",
                           "--epochs", "2"], capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "weights agree on every rank: True; gathered roots equal local roots: True" in done.stdout
