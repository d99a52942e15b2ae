#!/usr/bin/env bash
# The Python package's GPU checks (issue 12), for a machine with a CUDA GPU where torch, JAX, CuPy,
# nanobind and scikit-build-core are installed (not part of CI): builds the package from the repository
# (runtime and CUDA backend included), runs the whole pytest suite (the CUDA-array tests of torch, CuPy
# and JAX, stream semantics included, run there instead of skipping), the PyTorch Shampoo example on the
# GPU, and the distributed example with NCCL (one rank per GPU) and with gloo (2 CPU ranks).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
"$python" -m pip install -q --no-build-isolation --no-deps . -Cbuild-dir=build/python-gpu
"$python" -m pytest -q -rs python/tests
"$python" examples/python/shampoo_torch.py --device cuda --epochs 10
gpus=$("$python" -c 'import torch; print(torch.cuda.device_count())')
"$python" examples/python/distributed_shampoo_torch.py --backend nccl --world-size "$gpus" --epochs 2
"$python" examples/python/distributed_shampoo_torch.py --backend gloo --world-size 2 --epochs 2
