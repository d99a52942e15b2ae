"""How one call meets the caller's arrays: which framework they come from, where they live, which CUDA
stream is current there, and how outputs of the same kind and device are made.

Inputs reach the runtime as zero-copy views (the compiled module reads them through DLPack or the
buffer protocol), with these exceptions, each a copy of an operand next to an O(n^3) call:
- on a CUDA device the runtime takes right-hand sides, solve matrices, Gram factors and their outputs
  column-major (a symmetric A may be either), so C-ordered ones get a column-major copy on the caller's
  stream, and the output comes back C-ordered;
- JAX arrays on a GPU do not say which stream produced them and cannot be laid out column-major, so
  they are read into host memory and the runtime moves them to the GPU and back (device="cuda");
- JAX arrays are immutable, so outputs are computed into a NumPy buffer and handed back as JAX arrays
  on the input's device.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._pe import Error

_DLPACK_CUDA = 2  # kDLCUDA


def _kind(name: str, obj: Any) -> str:
    if isinstance(obj, np.ndarray):
        return "numpy"
    root = type(obj).__module__.partition(".")[0]
    if root == "torch" and hasattr(obj, "detach"):
        return "torch"
    if root in ("jax", "jaxlib") and hasattr(obj, "devices"):
        return "jax"
    if root == "cupy":
        return "cupy"
    if hasattr(obj, "__dlpack__") and hasattr(obj, "__dlpack_device__"):
        return "dlpack"
    try:
        memoryview(obj)
    except TypeError:
        raise TypeError(
            f"{name}: expected an array (NumPy, PyTorch, JAX, CuPy, or any object with __dlpack__ or the "
            f"buffer protocol), got {type(obj).__module__}.{type(obj).__qualname__}"
        ) from None
    return "buffer"


def _jax_on_gpu(obj: Any) -> bool:
    return any(d.platform == "gpu" for d in obj.devices())


class Call:
    """The arrays of one call. `first` (A, or G for Gram applies) decides the kind and the device of the
    outputs; the compiled module checks that every array it is handed is on one device."""

    def __init__(self, name: str, first: Any, options: dict):
        self.kind = _kind(name, first)
        if self.kind == "dlpack" and first.__dlpack_device__()[0] == _DLPACK_CUDA:
            raise Error(
                f"{name}: CUDA arrays of type {type(first).__qualname__}: outputs are made with PyTorch or CuPy; "
                "convert it with torch.from_dlpack or cupy.from_dlpack"
            )
        if self.kind in ("dlpack", "buffer"):
            self.kind = "numpy"  # host memory, read through NumPy's zero-copy views below
        self.device = first.device if self.kind in ("torch", "cupy") else None
        self.cuda = (self.kind == "torch" and first.device.type == "cuda") or self.kind == "cupy"
        self.jax_device = next(iter(first.devices())) if self.kind == "jax" else None
        if self.kind == "jax" and _jax_on_gpu(first) and options.get("device") is None:
            options["device"] = "cuda"  # host-staged: the runtime copies to the GPU and back
        if self.cuda and options.get("stream") is None:
            options["stream"] = self._current_stream()

    def _current_stream(self) -> int:
        if self.kind == "torch":
            import torch

            return torch.cuda.current_stream(self.device).cuda_stream
        import cupy

        with cupy.cuda.Device(self.device.id):
            return cupy.cuda.get_current_stream().ptr

    def input(self, name: str, obj: Any, column_major: bool = False) -> Any:
        """The array as the compiled module reads it. column_major: the runtime needs it so on a GPU."""
        kind = _kind(name, obj)
        if kind == "torch":
            return _column_major(kind, obj.detach()) if column_major and self.cuda else obj.detach()
        if kind == "cupy":
            return _column_major(kind, obj) if column_major else obj
        if kind == "jax":
            return np.asarray(obj) if _jax_on_gpu(obj) else obj
        if kind == "dlpack" and obj.__dlpack_device__()[0] != _DLPACK_CUDA:
            return np.from_dlpack(obj)
        if kind == "buffer":
            return np.asarray(obj)
        return obj  # NumPy, or a CUDA DLPack object (the compiled module names its device)

    def output(self, shape: tuple, dtype: Any, column_major: bool = False) -> Any:
        """An uninitialised output next to the inputs (NumPy for JAX and for other producers)."""
        shape = tuple(shape)
        flipped = shape[:-2] + shape[-1:] + shape[-2:-1]  # storage of a column-major (..., rows, cols)
        if self.kind == "torch":
            import torch

            if column_major and self.cuda and len(shape) >= 2:
                return torch.empty(flipped, dtype=dtype, device=self.device).mT
            return torch.empty(shape, dtype=dtype, device=self.device)
        if self.kind == "cupy":
            import cupy

            with cupy.cuda.Device(self.device.id):
                if column_major and len(shape) >= 2:
                    return cupy.empty(flipped, dtype=dtype).swapaxes(-1, -2)
                return cupy.empty(shape, dtype=dtype)
        return np.empty(shape, dtype=np.dtype(dtype))

    def result(self, buffer: Any) -> Any:
        """The output as the caller's kind of array: C-ordered, on the inputs' device."""
        if self.kind == "jax":
            import jax

            return jax.device_put(buffer, self.jax_device)
        if self.kind == "torch" and self.cuda:
            return buffer.contiguous()
        if self.kind == "cupy":
            import cupy

            return cupy.ascontiguousarray(buffer)
        return buffer


def _column_major(kind: str, obj: Any) -> Any:
    """obj itself when each matrix is column-major already, else a copy that is (on the current stream)."""
    if obj.ndim < 2:
        return obj
    rows = obj.shape[-2]
    if kind == "torch":  # strides in elements
        row_step, col_step = obj.stride()[-2:]
    else:  # CuPy: strides in bytes
        row_step, col_step = (s // obj.itemsize for s in obj.strides[-2:])
    if (row_step == 1 or rows == 1) and col_step >= rows:
        return obj
    if kind == "torch":
        return obj.mT.contiguous().mT
    import cupy

    return cupy.ascontiguousarray(obj.swapaxes(-1, -2)).swapaxes(-1, -2)
