#!/usr/bin/env bash
# Issue 8's fleet benchmark: DEVICES (default 10,000) virtual devices of pylon-fleet-sim polling
# one pylon-registry (PostgreSQL on the same machine), in two modes, one after the other:
#   long poll  (--long-poll 25): idle requests/s, the registry's CPU, and the time for the whole
#              fleet to converge on a new release (rollout in one wave of 100%);
#   plain poll (--long-poll 0 --poll-interval POLL, default 30 s): requests/s, p99 latency of the
#              director endpoint (client side, every request), the registry's CPU, and convergence.
# Each mode runs a fresh fleet of its own (fleet bench-long / bench-plain). CPU is the registry's
# utime+stime over a WINDOW-second idle window (default 50, starting 40 s after convergence so
# that the reports of the update are all in and long polls run their steady cycle) from
# /proc/PID/stat; PostgreSQL's
# backends are measured the same way. Run under pg_virtualenv:
#   pg_virtualenv -t -v 15 bench/fleet/run_fleet_bench.sh
# Output: OUT/summary.md (default build/bench-fleet).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="${PYLON_BIN:-$ROOT/build/bin}"
OUT="${OUT:-$ROOT/build/bench-fleet}"
DEVICES="${DEVICES:-10000}"
WINDOW="${WINDOW:-50}"
POLL="${POLL:-30}"
MODELS="$ROOT/tests/data/runtime"
export PYLON_REGISTRY_MAX_CONNECTIONS=$((DEVICES + 2000))
source "$ROOT/tests/registry_e2e/lib.sh"
start_registry "$BIN" "$OUT/work"
source "$ROOT/tests/agent_e2e/lib.sh"
sim_bin=$BIN/pylon-fleet-sim
ticks=$(getconf CLK_TCK)
py() { python3 -c "$@"; }

publish_two() {
    mkdir -p "$work/x86-$1" "$work/arm-$1"
    cp "$MODELS/stories260K-q8_0.gguf" "$work/x86-$1/model.gguf"
    cp "$MODELS/stories260K-q4_0.gguf" "$work/arm-$1/model.gguf"
    "$pylon" publish "acme/tiny@$1" --draft --build x86-avx2 --arch x86_64 --isa avx2 \
        --min-ram-mb 256 --format gguf --quantization Q8_0 --file "$work/x86-$1/model.gguf" \
        --key "$work/acme.key" >/dev/null
    "$pylon" publish "acme/tiny@$1" --build arm-neon --arch aarch64 --isa neon --min-ram-mb 256 \
        --format gguf --quantization Q4_0 --file "$work/arm-$1/model.gguf" --key "$work/acme.key" >/dev/null
}
cpu_ticks() {  # PID... -> utime+stime summed
    local t=0 p
    for p in "$@"; do
        [[ -r /proc/$p/stat ]] || continue
        t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
    done
    echo "$t"
}
pg_pids() { pgrep -f "postgres: .*" | tr '\n' ' '; }
sim_field() { py "import json; s=json.load(open('$1')); print($2)"; }
converge() {  # FLEET VERSION STATUS_FILE -> seconds from rollout creation to every device on it
    local t0 want
    want=$(sim_field "$3" 's["enrolled"]')
    t0=$(date +%s.%N)
    "$pylon" rollout create "acme/tiny@$2" --fleet "$1" --waves 100% >/dev/null
    for _ in $(seq 3000); do
        [[ "$(sim_field "$3" 's["running"].get("acme/tiny@'"$2"'", 0)')" == "$want" ]] && break
        sleep 0.1
    done
    [[ "$(sim_field "$3" 's["running"].get("acme/tiny@'"$2"'", 0)')" == "$want" ]] ||
        { cat "$3"; fail "$1 did not converge on $2"; }
    py "print(round($(date +%s.%N) - $t0, 2))"
}

run_mode() {  # NAME SIM_ARGS...
    local name=$1
    shift
    local status=$work/$name.status
    "$pylon" fleet create "bench-$name" >/dev/null
    "$pylon" fleet enrollment-token "bench-$name" --out "$work/$name.token" >/dev/null
    local t0
    t0=$(date +%s.%N)
    "$sim_bin" --registry "$url" --token-file "$work/$name.token" --devices "$DEVICES" \
        --hardware-mix x86_64-avx2:50,aarch64-neon:50 --install-ms 100 --name-prefix "$name" \
        --status-file "$status" "$@" >"$work/$name.sim.log" 2>&1 &
    local sim=$!
    for _ in $(seq 6000); do
        [[ -f "$status" ]] && [[ "$(sim_field "$status" 's["enrolled"]')" == "$DEVICES" ]] && break
        sleep 0.1
    done
    local enrol_s
    enrol_s=$(py "print(round($(date +%s.%N) - $t0, 1))")
    [[ "$(sim_field "$status" 's["enrolled"]')" == "$DEVICES" ]] || { cat "$status"; fail "enrolment"; }
    local first second
    first=$(converge "bench-$name" 1.0.0 "$status")
    sleep 40
    # The idle window: requests, latency samples and CPU.
    local r0 c0 p0 pg t1 r1 c1 p1
    r0=$(sim_field "$status" 's["director_requests"]')
    pg=$(pg_pids)
    c0=$(cpu_ticks "$registry_pid"); p0=$(cpu_ticks $pg); t0=$(date +%s.%N)
    sleep "$WINDOW"
    r1=$(sim_field "$status" 's["director_requests"]')
    c1=$(cpu_ticks "$registry_pid"); p1=$(cpu_ticks $pg); t1=$(date +%s.%N)
    local lat
    lat=$(sim_field "$status" 's["director_latency_ms"]')  # every non-waiting request so far
    second=$(converge "bench-$name" 1.1.0 "$status")
    local errors
    errors=$(sim_field "$status" 's["errors"]')
    kill -TERM "$sim"; wait "$sim" || true
    py "
el = $t1 - $t0
req = ($r1 - $r0) / el
reg = ($c1 - $c0) / $ticks / el
pgc = ($p1 - $p0) / $ticks / el
lat = $lat
print(f'| $name | $DEVICES | {req:.0f} | {lat[\"p50\"]:.1f} | {lat[\"p99\"]:.1f} | {reg:.2f} | {1e6 * reg / req if req else 0:.0f} | {pgc:.2f} | $enrol_s | $first | $second | $errors |')
" >>"$OUT/rows.md"
}

mkdir -p "$OUT"
: >"$OUT/rows.md"
acme_namespace tiny
publish_two 1.0.0
publish_two 1.1.0
run_mode long --long-poll 25
run_mode plain --long-poll 0 --poll-interval "$POLL"
{
    echo "| mode | devices | director req/s (idle) | p50 ms | p99 ms | registry CPU (cores) | µs CPU / request | PostgreSQL CPU (cores) | enrolment (s) | converge on 1.0.0 (s) | converge on 1.1.0 (s) | sim errors |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    cat "$OUT/rows.md"
} >"$OUT/summary.md"
cat "$OUT/summary.md"
