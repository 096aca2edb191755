#!/usr/bin/env bash
# Runs real libFuzzer (clang-14, ASan + UBSan via -DPYLON_FUZZ=ON) on the named targets for a
# bounded time each, starting from a copy of fuzz/corpus/<target>/ (the repository is never
# modified). Exits non-zero on any finding and prints the crashing input.
#
# Usage: fuzz/run_libfuzzer.sh TARGET...      (e.g. gguf tokenizer)
# Environment: PYLON_FUZZ_SECONDS (default 60) per target; PYLON_FUZZ_BUILD_DIR (default
# <repo>/build-libfuzzer); PYLON_FUZZ_JOBS (default 2) for the build.
# Exit 77 (skipped) when clang-14 or its libFuzzer runtime is missing, unless CI is set: then 1.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${PYLON_FUZZ_SECONDS:-60}"
build="${PYLON_FUZZ_BUILD_DIR:-$repo/build-libfuzzer}"
jobs="${PYLON_FUZZ_JOBS:-2}"

if [ $# -eq 0 ]; then
    echo "usage: $0 TARGET..." >&2
    exit 2
fi

missing() {
    echo "run_libfuzzer.sh: $1" >&2
    if [ -n "${CI:-}" ]; then exit 1; fi
    exit 77
}
command -v clang-14 >/dev/null 2>&1 && command -v clang++-14 >/dev/null 2>&1 ||
    missing "clang-14 is not installed (deploy/install-deps.sh installs it)"
fuzzer_lib="$(clang++-14 -print-file-name=libclang_rt.fuzzer-x86_64.a 2>/dev/null || true)"
if [ "${fuzzer_lib#/}" = "$fuzzer_lib" ] || [ ! -f "$fuzzer_lib" ]; then
    fuzzer_lib="$(clang++-14 -print-runtime-dir 2>/dev/null)/libclang_rt.fuzzer-x86_64.a"
fi
[ -f "$fuzzer_lib" ] || missing "libFuzzer for clang-14 is missing (package libclang-rt-14-dev)"

launcher=()
if command -v ccache >/dev/null 2>&1; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
start=$(date +%s)
mkdir -p "$build"
CC=clang-14 CXX=clang++-14 cmake -S "$repo" -B "$build" -G Ninja -DPYLON_FUZZ=ON \
    -DPYLON_WERROR=OFF -DPYLON_BUILD_TESTS=OFF -DPYLON_BUILD_BENCH=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" >"$build/configure.log" 2>&1 ||
    { cat "$build/configure.log" >&2; exit 1; }
executables=()
for t in "$@"; do executables+=("fuzz_$t"); done
cmake --build "$build" --target "${executables[@]}" -j "$jobs"
echo "run_libfuzzer.sh: configure + build took $(($(date +%s) - start)) s"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
status=0
for t in "$@"; do
    max_len=65536
    if [ "$t" = "tokenizer" ]; then max_len=4096; fi
    mkdir -p "$work/$t/corpus" "$work/$t/artifacts"
    if [ -d "$repo/fuzz/corpus/$t" ]; then cp -r "$repo/fuzz/corpus/$t/." "$work/$t/corpus/"; fi
    echo "run_libfuzzer.sh: fuzzing $t for $seconds s"
    if ! "$build/bin/fuzz_$t" "$work/$t/corpus" -max_total_time="$seconds" -rss_limit_mb=2048 \
        -max_len="$max_len" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$work/$t/artifacts/" 2>"$work/$t/log"; then
        status=1
    fi
    grep -E '^(#[0-9]+.*DONE|stat::|Done )' "$work/$t/log" || tail -n 5 "$work/$t/log"
    for f in "$work/$t/artifacts"/*; do
        [ -e "$f" ] || continue
        status=1
        echo "run_libfuzzer.sh: $t finding: $(basename "$f") (base64 follows)" >&2
        base64 "$f" >&2
        tail -n 60 "$work/$t/log" >&2
    done
done
exit "$status"
