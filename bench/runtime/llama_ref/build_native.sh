#!/usr/bin/env bash
# Builds llama.cpp b4753's llama-bench (and llama-cli) for this CPU (GGML_NATIVE, as llama.cpp
# is normally built), from the same node-llama-cpp 3.6.0 source as build.sh, so that
# run_runtime_bench.sh can measure llama.cpp and Pylon alternately on one machine
# (LLAMA_BENCH=WORKDIR/llama.cpp/build-native/bin/llama-bench).
# Usage: bench/runtime/llama_ref/build_native.sh [WORKDIR]   (needs npm, cmake, ninja; ~6 min)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${1:-/tmp/llama-ref}
mkdir -p "$work" && cd "$work"
. "$here/source.sh"
cmake -S llama.cpp -B llama.cpp/build-native -G Ninja -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF \
    -DGGML_NATIVE=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF >/dev/null
ninja -C llama.cpp/build-native llama-bench llama-cli >/dev/null
echo "built $work/llama.cpp/build-native/bin/llama-bench"
