"""PyTorch tensors: zero-copy in, torch tensors out on the same device; on a GPU the CUDA backend runs on
torch.cuda.current_stream(). Skips without torch (CUDA tests also without a GPU)."""

import numpy as np
import pytest

import pe
from conftest import exact_inverse_root, relative_error, spd

torch = pytest.importorskip("torch")
N = 32
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cpu_tensors_give_the_numpy_results(dtype):
    a_np = spd(N, 1e3, seed=1, dtype=np.float32 if dtype == torch.float32 else np.float64)
    b_np = np.random.default_rng(1).standard_normal((N, 3)).astype(a_np.dtype)
    a = torch.from_numpy(a_np).requires_grad_()  # DLPack refuses tensors that require grad: detached, no copy
    x, report = pe.inverse_root(a, 2)
    assert isinstance(x, torch.Tensor) and x.dtype == dtype and x.device.type == "cpu" and not x.requires_grad
    assert np.array_equal(x.numpy(), pe.inverse_root(a_np, 2)[0]) and report["backend"] == "cpu"
    z, _ = pe.apply_inverse_root(a, torch.from_numpy(b_np).T.contiguous().T, 2)  # column-major b
    assert np.array_equal(z.numpy(), pe.apply_inverse_root(a_np, b_np, 2)[0])
    s, _ = pe.solve(a, torch.from_numpy(b_np))
    assert np.array_equal(s.numpy(), pe.solve(a_np, b_np)[0])
    g = torch.from_numpy(np.random.default_rng(2).standard_normal((10, N)).astype(a_np.dtype))
    zg, _ = pe.gram_apply(g, torch.from_numpy(b_np), 2, lam=0.1)
    assert np.array_equal(zg.numpy(), pe.gram_apply(g.numpy(), b_np, 2, lam=0.1)[0])


def test_batched_and_strided_tensors():
    stack = torch.from_numpy(np.stack([spd(N, 1e2, seed=k) for k in range(4)]))
    x, _ = pe.inverse_root(stack, 2)
    xt, _ = pe.inverse_root(stack.mT, 2)  # per-member column-major view
    assert x.shape == stack.shape and torch.equal(x, xt)
    with pytest.raises(pe.Error, match="neither row- nor column-major"):
        pe.inverse_root(stack[:, ::2, ::2], 2)
    with pytest.raises(TypeError, match="dtype int64"):
        pe.inverse_root(stack.long(), 2)


@cuda
def test_cuda_tensors_run_on_the_gpu_and_stay_there():
    a_np = spd(N, 1e3, seed=3, dtype=np.float32)
    a = torch.from_numpy(a_np).cuda()
    x, report = pe.inverse_root(a, 2)
    assert x.is_cuda and x.dtype == torch.float32 and report["backend"] == "cuda"
    # f32 storage on another BLAS: the f32 rounding level at kappa^{1/2} amplification, not bit equality
    assert relative_error(x.cpu().numpy(), exact_inverse_root(a_np, 2)) <= report["final_eps"] + 1e-4
    b = torch.randn(N, 4, device="cuda")  # C order: the runtime needs column-major on the GPU (copied)
    z, _ = pe.apply_inverse_root(a, b, 2)
    assert z.is_cuda and z.is_contiguous() and z.shape == b.shape
    reference = exact_inverse_root(a_np, 2) @ b.cpu().double().numpy()
    assert relative_error(z.cpu().numpy(), reference) <= 2e-3
    s, report = pe.solve(a, b, target=1e-5)
    assert s.is_cuda and report["residual"] <= 1e-5
    xb, _ = pe.inverse_root(torch.stack([a, a]), 2)
    assert xb.shape == (2, N, N) and torch.equal(xb[0], xb[1])


@cuda
def test_cuda_calls_run_on_the_current_stream():
    side = torch.cuda.Stream()
    source = torch.from_numpy(spd(N, 1e2, seed=4, dtype=np.float32)).cuda()
    expected, _ = pe.inverse_root(source, 2)
    with torch.cuda.stream(side):
        a = torch.full((N, N), float("nan"), device="cuda")
        torch.cuda._sleep(200_000_000)  # keeps `side` busy: a is still NaN unless pe waits on this stream
        a.copy_(source)
        x, _ = pe.inverse_root(a, 2)  # queued on `side` after the copy
        x_side = x.clone()
    torch.cuda.synchronize()
    assert torch.isfinite(x_side).all() and torch.equal(x_side, expected)


@cuda
def test_a_mix_of_devices_is_named():
    with pytest.raises(pe.Error, match="pass every array of one call on the same device"):
        pe.apply_inverse_root(torch.eye(N, device="cuda"), torch.ones(N, 2), 2)
