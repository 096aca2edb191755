#!/usr/bin/env bash
# The device agent's figures (issue 7), with a real pylon-registry and PostgreSQL on loopback:
#   - idle RSS: `pylon-agent run` enrolled, no model assigned (target <= 10 MiB), median of 5
#     samples 3 s apart;
#   - time to verify and stage a ~100 MB build (the "verify_stage" phase: SHA-256 of the
#     downloaded file, rename into the inactive slot, fsyncs, slot.json), and the other phases;
#   - rollback time: an operator's rollback to the release the other slot holds (no download):
#     the whole `pylon-agent update-once` cycle until `current` points back at it (target < 1 s),
#     and the daemon's hand-over of the model to the API.
# Run under pg_virtualenv: pg_virtualenv -t -v 15 bench/agent/run_agent_bench.sh
# Output: build/bench-agent/summary.md (ROUNDS=5 rollbacks by default).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="${PYLON_BIN:-$ROOT/build/bin}"
OUT="${OUT:-$ROOT/build/bench-agent}"
ROUNDS="${ROUNDS:-5}"
source "$ROOT/tests/registry_e2e/lib.sh"
start_registry "$BIN" "$OUT/work"
state=$work/agent
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

source "$ROOT/tests/agent_e2e/lib.sh"
acme_namespace big
for v in 1.0.0 1.1.0; do
    mkdir -p "$work/m-$v"
    "$pylon" model synth --shape synth110M,layers=7 --type q8_0 --seed "${v//./}" \
        -o "$work/m-$v/model.gguf" >/dev/null 2>&1
    "$pylon" publish "acme/big@$v" --build cpu --arch x86_64 --min-ram-mb 256 --format gguf \
        --quantization Q8_0 --file "$work/m-$v/model.gguf" --key "$work/acme.key" >/dev/null
done
size=$(stat -c %s "$work/m-1.0.0/model.gguf")
enroll_device "$state"

# Idle RSS: the daemon with nothing assigned.
cat > "$work/agent.toml" <<TOML
state_dir = "$state"
[update]
poll_interval_s = 1
[serve]
port = 0
TOML
"$agent" run --config "$work/agent.toml" >"$work/idle.log" 2>&1 &
daemon=$!
sleep 3
rss=() pss=() dirty=()
for _ in 1 2 3 4 5; do
    rss+=("$(awk '/^VmRSS/ {print $2}' "/proc/$daemon/status")")
    pss+=("$(awk '/^Pss:/ {print $2}' "/proc/$daemon/smaps_rollup")")
    dirty+=("$(awk '/^Private_Dirty:/ {print $2}' "/proc/$daemon/smaps_rollup")")
    sleep 3
done
kill -TERM "$daemon"; wait "$daemon" || true
rss_kib=$(printf '%s\n' "${rss[@]}" | median)
pss_kib=$(printf '%s\n' "${pss[@]}" | median)
dirty_kib=$(printf '%s\n' "${dirty[@]}" | median)

cycle() {  # VERSION -> "wall download verify_stage health activate"
    "$pylon" devices assign edge/dev-1 "acme/big@$1" >/dev/null
    local t0 t1
    t0=$(date +%s.%N)
    "$agent" update-once --state-dir "$state" >"$work/cycle.out" 2>"$work/cycle.err"
    t1=$(date +%s.%N)
    grep -q "^installed:" "$work/cycle.out" || { cat "$work/cycle.out" "$work/cycle.err"; exit 1; }
    local d v h a
    d=$(grep -o 'download=[0-9.]*' "$work/cycle.err" | cut -d= -f2 || true)
    v=$(grep -o 'verify_stage=[0-9.]*' "$work/cycle.err" | cut -d= -f2)
    h=$(grep -o 'health=[0-9.]*' "$work/cycle.err" | cut -d= -f2)
    a=$(grep -o 'activate=[0-9.]*' "$work/cycle.err" | cut -d= -f2)
    echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}') ${d:-0} $v $h $a"
}
fresh=()
fresh+=("$(cycle 1.0.0)")
fresh+=("$(cycle 1.1.0)")
rollbacks=()
next=1.0.0
for _ in $(seq "$ROUNDS"); do
    rollbacks+=("$(cycle "$next")")
    [[ $next == 1.0.0 ]] && next=1.1.0 || next=1.0.0
done
col() { printf '%s\n' "${@:2}" | awk -v c="$1" '{print $c}' | median; }

# The daemon's hand-over of a model to the API (replace_model), after a rollback cycle.
"$agent" run --config "$work/agent.toml" >"$work/serve.log" 2>&1 &
daemon=$!
sleep 2
"$pylon" devices assign edge/dev-1 "acme/big@$next" >/dev/null
for _ in $(seq 100); do
    grep -q "took over the API" "$work/serve.log" && break
    sleep 0.1
done
kill -TERM "$daemon"; wait "$daemon" || true
takeover=$(sed -n 's/.*took over the API in \([0-9.]*\) ms.*/\1/p' "$work/serve.log" | tail -1)

mkdir -p "$OUT"
{
    echo "| measure | median | runs |"
    echo "| --- | ---: | ---: |"
    echo "| agent idle RSS, no model (KiB) | $rss_kib | 5 samples: ${rss[*]} |"
    echo "| agent idle PSS (KiB) | $pss_kib | 5 |"
    echo "| agent idle private dirty (heap, stacks; KiB) | $dirty_kib | 5 |"
    echo "| fresh install of $size bytes: download (s) | $(col 2 "${fresh[@]}") | 2 |"
    echo "| fresh install: verify and stage (s) | $(col 3 "${fresh[@]}") | 2 |"
    echo "| fresh install: health check (s) | $(col 4 "${fresh[@]}") | 2 |"
    echo "| fresh install: whole update-once cycle (s) | $(col 1 "${fresh[@]}") | 2 |"
    echo "| rollback (other slot, no download): verify (s) | $(col 3 "${rollbacks[@]}") | $ROUNDS |"
    echo "| rollback: health check (s) | $(col 4 "${rollbacks[@]}") | $ROUNDS |"
    echo "| rollback: whole update-once cycle (s) | $(col 1 "${rollbacks[@]}") | $ROUNDS |"
    echo "| daemon: the rolled-back model takes over the API (ms) | ${takeover:-?} | 1 |"
} | tee "$OUT/summary.md"
