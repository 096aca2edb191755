#!/usr/bin/env bash
# Rollouts against a real registry and PostgreSQL, with pylon-fleet-sim's virtual devices
# (issue 8, "Simulator tests"): a mixed-hardware fleet of N devices (default 1000)
#   1. a licence that excludes the fleet's region: the rollout is refused at creation;
#   2. 3 waves, no failures: completed; each device runs the build for its hardware, the others
#      are reported incompatible with the reason;
#   3. 20% of installs of the next release fail: the canary passes its failure threshold, the
#      rollout is aborted and rolled back before wave 2 starts, every device back on the first.
# Usage: sim_test.sh BIN_DIR WORK_DIR TEST_DATA_DIR [DEVICES]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
source "$ROOT/tests/registry_e2e/lib.sh"
e2e_require_pg
start_registry "$1" "$2"
models=$3/runtime
devices=${4:-1000}
source "$ROOT/tests/agent_e2e/lib.sh"
sim_bin=$bin/pylon-fleet-sim

py() { python3 -c "$@"; }
# publish_two VERSION: acme/tiny@VERSION with an x86_64 AVX2 build and an aarch64 NEON build.
publish_two() {
    mkdir -p "$work/x86-$1" "$work/arm-$1"
    cp "$models/stories260K-q8_0.gguf" "$work/x86-$1/model.gguf"
    cp "$models/stories260K-q4_0.gguf" "$work/arm-$1/model.gguf"
    "$pylon" publish "acme/tiny@$1" --draft --build x86-avx2 --arch x86_64 --isa avx2,fma \
        --min-ram-mb 256 --format gguf --quantization Q8_0 --file "$work/x86-$1/model.gguf" \
        --key "$work/acme.key" >/dev/null
    "$pylon" publish "acme/tiny@$1" --build arm-neon --arch aarch64 --isa neon \
        --min-ram-mb 256 --format gguf --quantization Q4_0 --file "$work/arm-$1/model.gguf" \
        --key "$work/acme.key" | grep -q "2 build(s) in all" || fail "$1: not both builds published"
}
status() { "$pylon" rollout status "$1" --json; }
wait_state() {  # ID STATE SECONDS
    local s=""
    for _ in $(seq $(($3 * 5))); do
        s=$(status "$1" | py 'import json,sys; print(json.load(sys.stdin)["state"])')
        [[ "$s" == "$2" ]] && return 0
        case "$s" in completed|aborted|rolled_back) break ;; esac
        sleep 0.2
    done
    status "$1"; tail -c 2000 "$work/sim.status"; fail "rollout $1 is $s, not $2"
}
sim_field() { py "import json; s=json.load(open('$work/sim.status')); print($1)"; }

acme_namespace tiny
"$pylon" models create acme/geo --license LicenseRef-geo --regions-denied DE >/dev/null
publish_two 1.0.0
publish_two 1.1.0
mkdir -p "$work/geo" && cp "$models/stories260K-q8_0.gguf" "$work/geo/model.gguf"
"$pylon" publish acme/geo@1.0.0 --build x86-avx2 --arch x86_64 --isa avx2 --min-ram-mb 256 \
    --format gguf --quantization Q8_0 --file "$work/geo/model.gguf" --key "$work/acme.key" >/dev/null

"$pylon" fleet create sim --region DE >/dev/null
"$pylon" fleet enrollment-token sim --out "$work/sim.token" >/dev/null
# 45% AVX2 PCs, 45% ARM boards, 10% old x86 without AVX2 (no build fits them).
"$sim_bin" --registry "$url" --token-file "$work/sim.token" --devices "$devices" \
    --hardware-mix x86_64-avx2:45,aarch64-neon:45,x86_64-sse:10 --long-poll 20 --install-ms 50 \
    --failure-rate 0.2 --fail-only /1.1.0/ --status-file "$work/sim.status" \
    >"$work/sim.log" 2>&1 &
sim_pid=$!
trap 'kill "$sim_pid" 2>/dev/null || true; e2e_cleanup' EXIT
for _ in $(seq 600); do
    [[ -f "$work/sim.status" ]] && [[ "$(sim_field 's["enrolled"]')" == "$devices" ]] && break
    sleep 0.2
done
[[ "$(sim_field 's["enrolled"]')" == "$devices" ]] || { cat "$work/sim.status"; fail "not all enrolled"; }
echo "$devices virtual devices enrolled"

# 1. Licence: acme/geo excludes DE, where fleet sim stands.
out=$("$pylon" rollout create acme/geo@1.0.0 --fleet sim 2>&1) && fail "a licence-forbidden rollout was created"
grep -q "excludes region DE, where fleet sim stands" <<<"$out" || fail "unclear licence refusal: $out"
echo "licence refusal: $out"

# 2. Three waves, no failures.
t0=$(date +%s.%N)
"$pylon" rollout create acme/tiny@1.0.0 --fleet sim --waves 10%,30%,100% >/dev/null
r1=$("$pylon" rollout list --fleet sim | awk 'NR==2 {print $1}')
wait_state "$r1" completed 240
echo "rollout $r1 completed in $(py "print(round($(date +%s.%N) - $t0, 1))") s"
"$pylon" rollout status "$r1"
status "$r1" >"$work/r1.json"
py "
import json
r = json.load(open('$work/r1.json')); s = json.load(open('$work/sim.status'))
prof = s['profiles']
compatible = sum(v['devices'] for k, v in prof.items() if k != 'x86_64-sse')
assert r['devices'] == compatible, (r['devices'], compatible)
assert r['succeeded'] == compatible and r['failed'] == 0, r
assert r['incompatible'] == prof['x86_64-sse']['devices'] > 0, (r['incompatible'], prof)
assert [w['state'] for w in r['waves']] == ['succeeded'] * 3, r['waves']
# Each device installed the build for its hardware, and only that one.
assert prof['x86_64-avx2']['targets'] == {'acme/tiny/1.0.0/x86-avx2/model.gguf': prof['x86_64-avx2']['devices']}, prof
assert prof['aarch64-neon']['targets'] == {'acme/tiny/1.0.0/arm-neon/model.gguf': prof['aarch64-neon']['devices']}, prof
assert prof['x86_64-sse']['targets'] == {}, prof
assert s['running']['acme/tiny@1.0.0'] == compatible, s['running']
"
"$pylon" rollout status "$r1" --json >/dev/null
reason=$(curl -sf -H "Authorization: Bearer $(cat "$data/admin.token")" \
    "$url/v1/rollouts/$r1/devices?state=incompatible&limit=1" |
    py 'import json,sys; print(json.load(sys.stdin)["items"][0]["reason"])')
grep -q "built for x86_64.*needs avx2\|needs avx2" <<<"$reason" || fail "incompatible without its reason: $reason"
echo "incompatible devices reported: $reason"

# 3. 20% of 1.1.0 installs fail: the canary aborts the rollout and rolls it back.
"$pylon" rollout create acme/tiny@1.1.0 --fleet sim --waves 10%,50%,100% --failure-threshold 0.1 >/dev/null
r2=$("$pylon" rollout list --fleet sim | awk 'NR==2 {print $1}')
[[ "$r2" != "$r1" ]] || fail "no second rollout"
wait_state "$r2" rolled_back 240
"$pylon" rollout status "$r2"
status "$r2" >"$work/r2.json"
py "
import json
r = json.load(open('$work/r2.json'))
w = r['waves']
assert w[0]['state'] == 'failed' and w[0]['failed'] > 0.1 * w[0]['devices'], w[0]
assert w[1]['state'] == 'pending' and 'started_at' not in w[1] and w[1]['assigned'] == 0, w[1]
assert w[2]['state'] == 'pending', w[2]
assert 'failure threshold' in r['reason'], r['reason']
"
# Every device is back on 1.0.0 (those that installed 1.1.0 in the canary reinstall 1.0.0).
for _ in $(seq 300); do
    [[ "$(sim_field 's["running"].get("acme/tiny@1.0.0", 0)')" == "$(py "import json; print(json.load(open('$work/r1.json'))['devices'])")" ]] && break
    sleep 0.2
done
sim_field 's["running"]'
[[ "$(sim_field 's["running"].get("acme/tiny@1.1.0", 0)')" == 0 ]] || fail "devices left on 1.1.0"
[[ "$(sim_field 's["errors"]')" == 0 ]] || fail "simulator errors: $(sim_field 's["error_kinds"], s["last_error"]')"
kill -TERM "$sim_pid"; wait "$sim_pid" || true
echo "fleet simulator end to end: OK"
