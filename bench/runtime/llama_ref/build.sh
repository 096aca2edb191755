#!/usr/bin/env bash
# Builds llama.cpp b4753 (the release bundled by the npm package node-llama-cpp 3.6.0, five
# commits after the b4748 that made ../../../tests/data/runtime/golden) as the goldens were
# built: GCC 12.2 with -march=native on a Zen 4 EPYC, which GCC 12.2 (no znver4 yet) spells
# -march=znver3 plus Zen 4's AVX-512 extensions, tuned for znver3 (so the auto-vectoriser uses
# 512-bit vectors). That build reproduces all four stories260K goldens to 6.6e-6; builds tuned
# for Intel (e.g. -march=icelake-server, 256-bit auto-vectorisation) miss the F32 one by up to
# 1.6e-3. Then builds golden_ref.cpp against it.
# Usage: bench/runtime/llama_ref/build.sh [WORKDIR]   (needs npm, cmake, ninja, g++; ~6 min)
#   LLAMA_REF_FLAGS="..." LLAMA_REF_BUILD=name  other compiler flags, in llama.cpp/name
# Then: WORKDIR/golden_ref MODEL.gguf GOLDEN.json [CASE]   prints the golden agreement;
#       DUMP_DIR=dir ... also writes every F32/F16 tensor of every step (eval callback).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${1:-/tmp/llama-ref}
mkdir -p "$work" && cd "$work"
. "$here/source.sh"
zen4="-march=znver3 -mtune=znver3 -mavx512f -mavx512dq -mavx512cd -mavx512bw -mavx512vl"
zen4+=" -mavx512ifma -mavx512vbmi -mavx512vbmi2 -mavx512vnni -mavx512bitalg -mavx512vpopcntdq"
zen4+=" -mavx512bf16 -mgfni -mvaes -mvpclmulqdq"
flags=${LLAMA_REF_FLAGS:-$zen4}
build=${LLAMA_REF_BUILD:-build-zen4}
cmake -S llama.cpp -B llama.cpp/$build -G Ninja -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF \
    -DGGML_NATIVE=OFF -DGGML_AVX=OFF -DGGML_AVX2=OFF -DGGML_FMA=OFF -DGGML_F16C=OFF \
    "-DCMAKE_C_FLAGS=$flags" "-DCMAKE_CXX_FLAGS=$flags" -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_SERVER=OFF >/dev/null
ninja -C llama.cpp/$build llama >/dev/null
L=$work/llama.cpp
g++ -O2 -std=c++17 "$here/golden_ref.cpp" -I"$L/include" -I"$L/ggml/include" -L"$L/$build/bin" \
    -lllama -lggml -lggml-base -Wl,-rpath,"$L/$build/bin" -o "golden_ref${LLAMA_REF_BUILD:+-$build}"
echo "built $work/golden_ref"
