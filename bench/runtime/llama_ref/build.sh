#!/usr/bin/env bash
# Builds llama.cpp b4753 (the release bundled by the npm package node-llama-cpp 3.6.0, five
# commits after the b4748 that made ../../../tests/data/runtime/golden) for the goldens' CPU
# features (Zen 4's AVX-512 set: no AMX, no AVX512-FP16), and golden_ref.cpp against it.
# Usage: bench/runtime/llama_ref/build.sh [WORKDIR]   (needs npm, cmake, ninja, g++; ~6 min)
# Then: WORKDIR/golden_ref MODEL.gguf GOLDEN.json [CASE]   prints the golden agreement;
#       DUMP_DIR=dir ... also writes every F32/F16 tensor of every step (eval callback).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${1:-/tmp/llama-ref}
mkdir -p "$work" && cd "$work"
[ -f node-llama-cpp-3.6.0.tgz ] || npm pack node-llama-cpp@3.6.0 >/dev/null
tar xzf node-llama-cpp-3.6.0.tgz package/llama/gitRelease.bundle package/llama/binariesGithubRelease.json
grep -q '"b4753"' package/llama/binariesGithubRelease.json
[ -d llama.cpp ] || git clone -q package/llama/gitRelease.bundle llama.cpp
flags="-march=icelake-server -mavx512bf16"
cmake -S llama.cpp -B llama.cpp/build-z4 -G Ninja -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF \
    -DGGML_NATIVE=OFF -DGGML_AVX=OFF -DGGML_AVX2=OFF -DGGML_FMA=OFF -DGGML_F16C=OFF \
    "-DCMAKE_C_FLAGS=$flags" "-DCMAKE_CXX_FLAGS=$flags" -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_SERVER=OFF >/dev/null
ninja -C llama.cpp/build-z4 llama >/dev/null
L=$work/llama.cpp
g++ -O2 -std=c++17 "$here/golden_ref.cpp" -I"$L/include" -I"$L/ggml/include" -L"$L/build-z4/bin" \
    -lllama -lggml -lggml-base -Wl,-rpath,"$L/build-z4/bin" -o golden_ref
echo "built $work/golden_ref"
