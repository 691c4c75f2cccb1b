#!/usr/bin/env bash
# GPU check of the Triton scan kernels, one short run (< 8 min) on a fresh CUDA machine:
#   1. versions (GPU, torch, Triton); installs requirements-gpu.txt only if Triton is missing
#   2. the neuron tests, including the compiled-kernel tests that need CUDA
#   3. benchmarks/train_speed.py --device cuda (learner update and kernels, 3m and 8m shapes)
# Results: $OUT (if set, e.g. on a lent device machine) else benchmarks/results:
#   train_speed_gpu.json / .md and gpu_check.log.
#   bash benchmarks/gpu_check.sh                 # PYTHON=/path/to/python to pick the interpreter
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DEST=${OUT:-benchmarks/results}
mkdir -p "$DEST"
exec > >(tee "$DEST/gpu_check.log") 2>&1
export PYTHONUNBUFFERED=1 PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python

echo "== versions"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv || true
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())"
if ! "$PY" -c "import triton" 2>/dev/null; then
    "$PY" -m pip install -q -r requirements-gpu.txt \
        || { echo "Triton is not installed and could not be installed: no GPU kernels to check"; exit 1; }
fi
"$PY" -c "import triton; print('triton', triton.__version__)"

echo "== tests (compiled kernels on CUDA + interpreter)"
# (not fatal: the benchmark still runs; failures are in the log)
timeout 300 "$PY" -m pytest -q -p no:cacheprovider tests/modules/neurons -rs || echo "== TESTS FAILED (rc $?)"

echo "== benchmark"
timeout 300 "$PY" benchmarks/train_speed.py --device cuda --maps 3m,8m --repeats 20 --warmup 3 \
    --out-dir "$DEST"
echo "== done"
