#!/usr/bin/env bash
# Configures and builds Pylon into build/ (binaries in build/bin/). Extra arguments go to CMake,
# e.g. deploy/build.sh -DPYLON_SANITIZE=address,undefined
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${PYLON_BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="${PYLON_BUILD_TYPE:-RelWithDebInfo}" "$@"
cmake --build "$build_dir" -j "$(nproc)"
