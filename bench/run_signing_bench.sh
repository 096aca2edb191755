#!/usr/bin/env bash
# Signing benchmark for issue 2: Pylon's SHA-256 and signatures against OpenSSL, same run.
#
# Usage: bench/run_signing_bench.sh [BIN_DIR]
#   BIN_DIR (or $PYLON_BENCH_BIN; default build/bin) holds pylon-bench-signing.
# Environment (all optional):
#   BENCH_ROUNDS=5          SHA-256 rounds; each runs OpenSSL once and Pylon once, alternating
#                           which goes first so that drift on a shared machine hits both alike
#   BENCH_OPENSSL_SECONDS=2 seconds per `openssl speed -evp sha256` run (whole seconds)
#   BENCH_SIG_ROUNDS=5      signature rounds, alternated the same way
#   BENCH_SIG_SECONDS=1     seconds per sign or verify measurement, OpenSSL and Pylon (whole)
#   BENCH_CPU=0             the core both programs are pinned to with taskset
#
# Figures: GB/s with 1 GB = 1e9 bytes; `openssl speed` prints thousands of bytes per second of
# user CPU time, so Pylon's figure compared with it is the CPU-time one (its wall-clock figure is
# printed too). Medians over rounds; ratios are Pylon / OpenSSL.
# Targets (issue 2): Pylon SHA-256 at 16384-byte updates within 10% of OpenSSL (ratio of medians
# >= 0.90) and >= 1.5 GB/s. The script prints PASS/FAIL for each and exits 0 either way; it exits
# 2 when it cannot run (no binary, no openssl, output it cannot parse).
set -euo pipefail

die() {
    echo "run_signing_bench: $*" >&2
    exit 2
}

bin_dir=${1:-${PYLON_BENCH_BIN:-build/bin}}
bench=$bin_dir/pylon-bench-signing
rounds=${BENCH_ROUNDS:-5}
ossl_seconds=${BENCH_OPENSSL_SECONDS:-2}
sig_rounds=${BENCH_SIG_ROUNDS:-5}
sig_seconds=${BENCH_SIG_SECONDS:-1}
cpu=${BENCH_CPU:-0}
chunk=16384
target_ratio=0.90
target_gbps=1.5

for v in rounds ossl_seconds sig_rounds sig_seconds cpu; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number (got '${!v}')"
done
((rounds >= 1 && ossl_seconds >= 1 && sig_rounds >= 1 && sig_seconds >= 1)) ||
    die "rounds and seconds must be at least 1"
[[ -x $bench ]] || die "no executable $bench (build it: ninja -C <build> pylon-bench-signing)"
command -v openssl >/dev/null || die "openssl not found"

pin=()
if command -v taskset >/dev/null && taskset -c "$cpu" true 2>/dev/null; then
    pin=(taskset -c "$cpu")
else
    echo "warning: not pinned to one core (taskset missing or core $cpu unavailable)"
fi

# median NUMBER... -> the median, printed
median() {
    printf '%s\n' "$@" | sort -g |
        awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2];
                                  else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
# calc AWK_EXPRESSION -> its value, printed
calc() { awk "BEGIN { printf \"%.4f\", $1 }"; }
# verdict CONDITION_EXPRESSION -> PASS or FAIL
verdict() { awk "BEGIN { print (($1) ? \"PASS\" : \"FAIL\") }"; }

# Pylon's text output: "<label> <per-round...> | median <cpu> <unit> (cpu), <wall> <unit> (wall)".
# pylon_median TEXT LABEL_REGEX cpu|wall
pylon_median() {
    awk -v re="$2" -v which="$3" '$0 ~ re {
        for (i = 1; i <= NF; i++)
            if ($i == "median") { print (which == "cpu") ? $(i + 1) : $(i + 4); exit }
    }' <<<"$1"
}
# Needs a number: dies on an empty or non-numeric parse.
need_number() {
    [[ $2 =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "could not parse $1 (got '$2')"
}

ossl_sha_cmd=("${pin[@]}" openssl speed -evp sha256 -bytes "$chunk" -seconds "$ossl_seconds")
pylon_sha_cmd=("${pin[@]}" "$bench" --only sha256 --rounds 1 --chunk "$chunk" --chunk 1048576)
ossl_sig_cmd=("${pin[@]}" openssl speed -seconds "$sig_seconds" ed25519 ecdsap256)
pylon_sig_cmd=("${pin[@]}" "$bench" --only sign --rounds 1 --seconds "$sig_seconds")

# run_ossl: one `openssl speed` SHA-256 run; sets ossl (GB/s).
run_ossl() {
    local out kbps
    out=$("${ossl_sha_cmd[@]}" 2>/dev/null) || die "openssl speed failed"
    # Last line: "sha256   1142865.92k", thousands of bytes per second for $chunk-byte blocks.
    kbps=$(awk '$1 == "sha256" { v = $NF } END { sub(/k$/, "", v); print v }' <<<"$out")
    need_number "openssl sha256 figure" "$kbps"
    ossl=$(calc "$kbps * 1000 / 1e9")
}
# run_pylon: one Pylon SHA-256 round; sets pylon, pylon_wall (16 KiB updates), pylon_big (1 MiB).
run_pylon() {
    local out
    out=$("${pylon_sha_cmd[@]}") || die "pylon-bench-signing failed"
    pylon=$(pylon_median "$out" "^  chunk $chunk B" cpu)
    pylon_wall=$(pylon_median "$out" "^  chunk $chunk B" wall)
    pylon_big=$(pylon_median "$out" "^  chunk 1048576 B" cpu)
    for v in pylon pylon_wall pylon_big; do need_number "pylon $v" "${!v}"; done
}
# run_ossl_sig: one `openssl speed` signature run; sets o_ed_s o_ed_v o_ec_s o_ec_v (per s).
run_ossl_sig() {
    local out
    out=$("${ossl_sig_cmd[@]}" 2>/dev/null) || die "openssl speed (signatures) failed"
    # "... bits EdDSA (Ed25519)   0.0001s   0.0002s  11736.0   4388.0": sign/s, verify/s last.
    read -r o_ed_s o_ed_v < <(awk '/\(Ed25519\)/ { print $(NF - 1), $NF }' <<<"$out") || true
    read -r o_ec_s o_ec_v < <(awk '/\(nistp256\)/ { print $(NF - 1), $NF }' <<<"$out") || true
    for v in o_ed_s o_ed_v o_ec_s o_ec_v; do need_number "openssl $v" "${!v:-}"; done
}
# run_pylon_sig: one Pylon signature round; sets p_ed_s p_ed_v p_ec_s p_ec_v (per s).
run_pylon_sig() {
    local out
    out=$("${pylon_sig_cmd[@]}") || die "pylon-bench-signing (signatures) failed"
    p_ed_s=$(pylon_median "$out" '^  ed25519 sign/s' cpu)
    p_ed_v=$(pylon_median "$out" '^  ed25519 verify/s' cpu)
    p_ec_s=$(pylon_median "$out" '^  ecdsa-p256 sign/s' cpu)
    p_ec_v=$(pylon_median "$out" '^  ecdsa-p256 verify/s' cpu)
    for v in p_ed_s p_ed_v p_ec_s p_ec_v; do need_number "pylon $v" "${!v}"; done
}
# record NAME OPENSSL PYLON: keeps both figures and their ratio for this round.
record() {
    sig_all[openssl_$1]+=" $2" sig_all[pylon_$1]+=" $3"
    sig_all[ratio_$1]+=" $(calc "$3 / $2")"
}

echo "== Pylon signing benchmark (issue 2)"
echo "date:     $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine:  $(nproc) cores, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)," \
    "sha_ni $(grep -qw sha_ni /proc/cpuinfo && echo present || echo absent)"
echo "openssl:  $(openssl version)"
revision=$(git -C "$(dirname "$0")" describe --always --dirty 2>/dev/null || echo '?')
echo "pylon:    $bench (source $revision)"
echo "commands (alternated, $rounds round(s); the first command of a round alternates):"
echo "  ${ossl_sha_cmd[*]}"
echo "  ${pylon_sha_cmd[*]}"
echo

echo "== SHA-256, GB/s (1 GB = 1e9 bytes), $chunk-byte updates unless noted"
printf '%-6s %12s %14s %14s %16s %8s\n' round openssl pylon_cpu pylon_wall pylon_1MiB_cpu ratio
ossl_all=() pylon_all=() pylon_wall_all=() pylon_big_all=() ratio_all=()
for ((r = 1; r <= rounds; r++)); do
    if ((r % 2)); then run_ossl; run_pylon; else run_pylon; run_ossl; fi
    ratio=$(calc "$pylon / $ossl")
    printf '%-6s %12.3f %14.3f %14.3f %16.3f %8.3f\n' "$r" "$ossl" "$pylon" "$pylon_wall" \
        "$pylon_big" "$ratio"
    ossl_all+=("$ossl") pylon_all+=("$pylon") pylon_wall_all+=("$pylon_wall")
    pylon_big_all+=("$pylon_big") ratio_all+=("$ratio")
done
m_ossl=$(median "${ossl_all[@]}")
m_pylon=$(median "${pylon_all[@]}")
m_ratio=$(calc "$m_pylon / $m_ossl")
printf '%-6s %12.3f %14.3f %14.3f %16.3f %8.3f\n' median "$m_ossl" "$m_pylon" \
    "$(median "${pylon_wall_all[@]}")" "$(median "${pylon_big_all[@]}")" "$m_ratio"
echo "ratio of medians pylon/openssl: $m_ratio (median of per-round ratios:" \
    "$(median "${ratio_all[@]}"))"
echo "target 'within 10% of OpenSSL' (ratio >= $target_ratio):" \
    "$(verdict "$m_ratio >= $target_ratio")"
echo "target '>= $target_gbps GB/s' (pylon median $m_pylon):" \
    "$(verdict "$m_pylon >= $target_gbps")" \
    "(OpenSSL's own median here: $m_ossl GB/s, $(verdict "$m_ossl >= $target_gbps") on this target)"
echo

echo "== Signatures, operations/s of CPU time (reference only, no target)"
echo "commands (alternated, $sig_rounds round(s)):"
echo "  ${ossl_sig_cmd[*]}"
echo "  ${pylon_sig_cmd[*]}"
declare -A sig_all=()
names=(ed25519_sign ed25519_verify ecdsa_p256_sign ecdsa_p256_verify)
for ((r = 1; r <= sig_rounds; r++)); do
    if ((r % 2)); then run_ossl_sig; run_pylon_sig; else run_pylon_sig; run_ossl_sig; fi
    record ed25519_sign "$o_ed_s" "$p_ed_s"
    record ed25519_verify "$o_ed_v" "$p_ed_v"
    record ecdsa_p256_sign "$o_ec_s" "$p_ec_s"
    record ecdsa_p256_verify "$o_ec_v" "$p_ec_v"
done
printf '%-20s %12s %12s %10s %s\n' figure openssl pylon ratio "(per-round ratios)"
for n in "${names[@]}"; do
    # The lists are space-separated numbers: split them on purpose.
    # shellcheck disable=SC2086
    o=$(median ${sig_all[openssl_$n]})
    # shellcheck disable=SC2086
    p=$(median ${sig_all[pylon_$n]})
    # shellcheck disable=SC2086
    printf '%-20s %12.1f %12.1f %10.3f (%s )\n' "$n/s" "$o" "$p" \
        "$(median ${sig_all[ratio_$n]})" "${sig_all[ratio_$n]}"
done
echo "(medians over rounds; ratio: median of the per-round pylon/openssl ratios)"
echo "(Pylon's Ed25519 is libsodium; OpenSSL's reference is its own Ed25519. OpenSSL's ECDSA"
echo " figure signs a precomputed 20-byte digest; Pylon's hashes a 32-byte message first.)"
