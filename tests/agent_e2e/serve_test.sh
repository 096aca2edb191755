#!/usr/bin/env bash
# The agent daemon (pylon-agent run) serving through the runtime's OpenAI-compatible API with a
# real registry and PostgreSQL: it installs the assigned release and answers completions with
# it; an upgrade takes over the API without it ever failing a request (a poller checks /health
# and a completion throughout); the operator's rollback to 1.0.0 answers with 1.0.0 again; a
# correctly signed build that fails its health check is rolled back and the previous model keeps
# answering; SIGTERM stops it cleanly.
#
# Usage: serve_test.sh BIN_DIR WORK_DIR DATA_DIR      (exit 77: skipped, no PostgreSQL)
set -euo pipefail
source "$(dirname "$0")/../registry_e2e/lib.sh"
start_registry "$1" "$2"
models=$3/runtime
state=$work/agent
source "$(dirname "$0")/lib.sh"
acme_namespace tiny
publish() { publish_build "tiny@$1" "$2"; }
publish 1.0.0 "$models/stories260K-q8_0.gguf"
publish 1.1.0 "$models/stories260K-q4_0.gguf"
head -c 150000 "$models/stories260K-q8_0.gguf" > "$work/truncated.gguf"
publish 1.2.0 "$work/truncated.gguf"
expected() {  # FILE: the greedy text the runtime itself gives
    "$pylon" run -m "$1" -p "Once upon a time" -n 48 --temp 0 -t 1 --json 2>/dev/null |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["text"])'
}
want_10=$(expected "$models/stories260K-q8_0.gguf")
want_11=$(expected "$models/stories260K-q4_0.gguf")
[[ "$want_10" != "$want_11" ]] || fail "the two models answer alike: the switch would not show"

enroll_device "$state"
"$pylon" devices assign edge/dev-1 acme/tiny@1.0.0 >/dev/null
cat > "$work/agent.toml" <<TOML
state_dir = "$state"
[update]
# Every change below reaches the agent through a long poll: plain polls would take 5 minutes.
poll_interval_s = 300
long_poll_s = 20
[serve]
port = 0
threads = 1
model_id = "tiny"
TOML
"$agent" run --config "$work/agent.toml" >"$work/agent.log" 2>&1 &
agent_pid=$!
trap 'kill "$agent_pid" 2>/dev/null || true; e2e_cleanup' EXIT
port=
for _ in $(seq 100); do
    port=$(sed -n 's/.*serving on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$work/agent.log")
    [[ -n "$port" ]] && break
    sleep 0.1
done
[[ -n "$port" ]] || { cat "$work/agent.log"; fail "the agent does not serve"; }
api=http://127.0.0.1:$port
complete() {
    curl -sf "$api/v1/completions" -H 'Content-Type: application/json' \
        -d '{"model":"tiny","prompt":"Once upon a time","max_tokens":48,"temperature":0}' |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["choices"][0]["text"])'
}
wait_for_text() {  # WANT LABEL
    for _ in $(seq 150); do
        [[ "$(complete 2>/dev/null || true)" == "$1" ]] && return 0
        sleep 0.1
    done
    cat "$work/agent.log"; fail "$2"
}
wait_for_text "$want_10" "1.0.0 is not served"
echo "serving 1.0.0"

# Upgrade under load: nothing may fail while 1.1.0 takes over.
( while [[ ! -e "$work/stop-poller" ]]; do
      curl -s -o /dev/null -w '%{http_code}\n' "$api/health" >>"$work/health.codes"
      complete >/dev/null 2>&1 && echo ok >>"$work/completions" || echo failed >>"$work/completions"
  done ) &
poller=$!
sleep 3  # the agent settles and parks a long poll at the registry
t_assign=$(date +%s%N)
"$pylon" devices assign edge/dev-1 acme/tiny@1.1.0 >/dev/null
wait_for_text "$want_11" "1.1.0 did not take over"
echo "1.1.0 answered $(( ($(date +%s%N) - t_assign) / 1000000 )) ms after its assignment (long poll)"
sleep 0.5
touch "$work/stop-poller"; wait "$poller"
echo "served 1.1.0 after $(wc -l <"$work/health.codes") health checks, $(wc -l <"$work/completions") completions"
! grep -qv '^200$' "$work/health.codes" || fail "/health failed during the upgrade: $(sort "$work/health.codes" | uniq -c)"
! grep -q failed "$work/completions" || fail "a completion failed during the upgrade"
grep -q "pylon_serve_model_replacements_total 2" <(curl -s "$api/metrics") ||
    fail "not two models taken over (1.0.0, then 1.1.0)"

# The operator rolls back to 1.0.0 (still in the other slot): it answers again.
"$pylon" devices assign edge/dev-1 acme/tiny@1.0.0 >/dev/null
wait_for_text "$want_10" "the rollback to 1.0.0 is not served"
echo "rolled back to 1.0.0"
"$pylon" devices assign edge/dev-1 acme/tiny@1.1.0 >/dev/null
wait_for_text "$want_11" "1.1.0 did not take over again"

# A signed build that fails its health check: rolled back, 1.1.0 keeps answering.
"$pylon" devices assign edge/dev-1 acme/tiny@1.2.0 >/dev/null
for _ in $(seq 100); do
    "$pylon" devices list --fleet edge | grep -q "dev-1 .*rolled_back" && break
    sleep 0.1
done
"$pylon" devices list --fleet edge | grep -q "dev-1 .*rolled_back .*acme/tiny@1.1.0" ||
    { cat "$work/agent.log"; fail "the failing build was not reported rolled back"; }
[[ "$(complete)" == "$want_11" ]] || fail "1.1.0 does not answer after the failed update"

# The agent now waits in a long poll at the registry; a stop does not wait for it to end.
sleep 3
t0=$(date +%s%N)
kill -TERM "$agent_pid"
wait "$agent_pid" || fail "the agent did not stop cleanly"
stop_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
grep -q "stopping" "$work/agent.log" || fail "no clean stop logged"
(( stop_ms < 3000 )) || fail "the agent took ${stop_ms} ms to stop during a long poll"
echo "stopped in ${stop_ms} ms during a long poll"
echo "agent serving end to end: OK"
