#!/usr/bin/env bash
# Run a command inside the StarCraft II docker image (pymarl convention):
#   bash run.sh GPU_ID python src/main.py --config=qmix --env-config=sc2 with agent=grsn
# GPU_ID: a device index (0, 1, ...), a list "0,1", or "cpu" for no GPU.
# The repository is mounted at /pymarl and results/ (or $RESULTS_DIR) at /pymarl/results.
# Build the image first: bash docker/build.sh
set -euo pipefail

if [ "$#" -lt 2 ]; then
    echo "usage: bash run.sh GPU_ID|cpu COMMAND [ARGS...]" >&2
    echo "  e.g. bash run.sh 0 python src/main.py --config=qmix --env-config=sc2 with agent=grsn" >&2
    exit 2
fi

gpu="$1"
shift
image="${IMAGE:-grsn-marl:latest}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
results="${RESULTS_DIR:-$root/results}"
mkdir -p "$results"
results="$(cd "$results" && pwd)"

command -v docker >/dev/null 2>&1 || { echo "run.sh: docker is not installed" >&2; exit 1; }

gpu_args=()
if [ "$gpu" != "cpu" ]; then
    gpu_args=(--gpus "\"device=${gpu}\"")
fi
tty_args=()
if [ -t 0 ] && [ -t 1 ]; then
    tty_args=(-it)
fi
name="${USER:-user}_grsn_gpu${gpu//,/_}_$(date +%Y%m%d_%H%M%S)_$$"

echo "Launching container $name on GPU ${gpu}: $*"
exec docker run --rm "${tty_args[@]}" "${gpu_args[@]}" \
    --name "$name" \
    --user "$(id -u):$(id -g)" \
    --shm-size=2g \
    -e HOME=/tmp \
    -e MPLCONFIGDIR=/tmp/matplotlib \
    -v "$root":/pymarl \
    -v "$results":/pymarl/results \
    -w /pymarl \
    "$image" "$@"
