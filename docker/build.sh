#!/usr/bin/env bash
# Build the StarCraft II image: bash docker/build.sh [TAG]   (default tag: grsn-marl:latest)
# The context is the repository root; docker/Dockerfile.dockerignore keeps it to the two files used.
set -euo pipefail

tag="${1:-${IMAGE:-grsn-marl:latest}}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"

command -v docker >/dev/null 2>&1 || { echo "docker/build.sh: docker is not installed" >&2; exit 1; }
echo "Building $tag from $root (downloads StarCraft II, about 4 GB) ..."
DOCKER_BUILDKIT=1 docker build -f "$here/Dockerfile" -t "$tag" "$root"
