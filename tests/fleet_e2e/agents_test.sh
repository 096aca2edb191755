#!/usr/bin/env bash
# Rollouts with three real pylon-agent daemons of different hardware profiles (issue 8): no
# accelerator, a declared cuda-sm87 and a declared cuda-sm72. Release 1.0.0 and 1.1.0 each have
# a CPU build and a cuda-sm87 build. A two-wave rollout of 1.0.0, then of 1.1.0, completes (each
# agent installs and serves the build for its hardware); `pylon rollback --fleet` returns all
# three to 1.0.0, served again.
# Usage: agents_test.sh BIN_DIR WORK_DIR TEST_DATA_DIR
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
source "$ROOT/tests/registry_e2e/lib.sh"
e2e_require_pg
start_registry "$1" "$2"
models=$3/runtime
source "$ROOT/tests/agent_e2e/lib.sh"
agent=$bin/pylon-agent

publish_two() {  # VERSION CPU_FILE CUDA_FILE
    mkdir -p "$work/cpu-$1" "$work/cuda-$1"
    cp "$2" "$work/cpu-$1/model.gguf"
    cp "$3" "$work/cuda-$1/model.gguf"
    "$pylon" publish "acme/tiny@$1" --draft --build cpu --arch x86_64 --min-ram-mb 16 \
        --format gguf --quantization Q8_0 --file "$work/cpu-$1/model.gguf" \
        --key "$work/acme.key" >/dev/null
    "$pylon" publish "acme/tiny@$1" --build cuda --arch x86_64 --accelerator cuda-sm87 \
        --min-ram-mb 16 --format gguf --quantization Q4_0 --file "$work/cuda-$1/model.gguf" \
        --key "$work/acme.key" >/dev/null
}
acme_namespace tiny
publish_two 1.0.0 "$models/stories260K-q8_0.gguf" "$models/stories260K-q4_0.gguf"
publish_two 1.1.0 "$models/stories260K-f16.gguf" "$models/stories260K-f32.gguf"
"$pylon" fleet create lab >/dev/null
"$pylon" fleet enrollment-token lab --out "$work/lab.token" >/dev/null

pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; e2e_cleanup' EXIT
accel=("" "cuda-sm87" "cuda-sm72")
for i in 1 2 3; do
    state=$work/agent-$i
    extra=()
    [[ -n "${accel[$((i - 1))]}" ]] && extra=(--accelerator "${accel[$((i - 1))]}")
    "$agent" enroll --registry "$url" --token-file "$work/lab.token" --name "box-$i" \
        --state-dir "$state" "${extra[@]}" >/dev/null
    {
        echo "state_dir = \"$state\""
        echo "[update]"
        echo "poll_interval_s = 2"
        echo "long_poll_s = 10"
        echo "[device]"
        [[ -n "${accel[$((i - 1))]}" ]] && echo "accelerators = [\"${accel[$((i - 1))]}\"]"
        echo "[serve]"
        echo "port = 0"
        echo "threads = 1"
        echo "model_id = \"tiny\""
    } >"$work/agent-$i.toml"
    "$agent" run --config "$work/agent-$i.toml" >"$work/agent-$i.log" 2>&1 &
    pids+=($!)
done
ports=()
for i in 1 2 3; do
    p=
    for _ in $(seq 100); do
        p=$(sed -n 's/.*serving on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$work/agent-$i.log")
        [[ -n "$p" ]] && break
        sleep 0.1
    done
    [[ -n "$p" ]] || { cat "$work/agent-$i.log"; fail "agent $i does not serve"; }
    ports+=("$p")
done

rollout_to() {  # VERSION: a two-wave rollout (1 device, then the rest) that must complete
    "$pylon" rollout create "acme/tiny@$1" --fleet lab --waves 1,100% >/dev/null
    local id s
    id=$("$pylon" rollout list --fleet lab | awk 'NR==2 {print $1}')
    for _ in $(seq 600); do
        s=$("$pylon" rollout status "$id" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
        [[ "$s" == completed ]] && break
        [[ "$s" == running ]] || break
        sleep 0.2
    done
    "$pylon" rollout status "$id"
    [[ "$s" == completed ]] || { tail -5 "$work"/agent-*.log; fail "rollout of $1 is $s"; }
    "$pylon" rollout status "$id" --json | python3 -c '
import json, sys
r = json.load(sys.stdin)
assert len(r["waves"]) == 2 and r["waves"][0]["devices"] == 1 and r["waves"][1]["devices"] == 2, r["waves"]
assert r["succeeded"] == 3, r'
}
# Each agent serves VERSION, through the build for its hardware.
serving() {  # VERSION
    local i
    for i in 1 2 3; do
        local want=cpu
        [[ $i == 2 ]] && want=cuda
        local ok=
        for _ in $(seq 150); do
            if "$agent" status --state-dir "$work/agent-$i" --json 2>/dev/null |
                grep -q "\"target\": \"acme/tiny/$1/$want/model.gguf\""; then ok=1; break; fi
            sleep 0.1
        done
        [[ -n "$ok" ]] || { "$agent" status --state-dir "$work/agent-$i"; fail "box-$i does not run $1 ($want)"; }
        curl -sf "http://127.0.0.1:${ports[$((i - 1))]}/v1/completions" -H 'Content-Type: application/json' \
            -d '{"model":"tiny","prompt":"Once upon a time","max_tokens":8,"temperature":0}' >/dev/null ||
            fail "box-$i does not answer on $1"
    done
    echo "all three serve $1 (box-2 its cuda-sm87 build, box-1 and box-3 the CPU build)"
}
rollout_to 1.0.0
serving 1.0.0
rollout_to 1.1.0
serving 1.1.0
"$pylon" rollback --fleet lab
serving 1.0.0
"$pylon" rollout list --fleet lab | awk 'NR==2 {print $4}' | grep -qx rolled_back ||
    fail "the 1.1.0 rollout is not marked rolled back"
for p in "${pids[@]}"; do kill -TERM "$p"; wait "$p" || fail "an agent did not stop cleanly"; done
pids=()
echo "fleet agents end to end: OK"
