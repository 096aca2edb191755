#!/usr/bin/env bash
# Crash safety of the agent's updates, with a real registry and PostgreSQL: the agent is killed
# (SIGKILL, as a power cut stops it) in every state of an update — through its fault-injection
# points — and at 50 random instants of updates slowed by a bandwidth cap; after each kill the
# active model still loads, the next run completes the update or rolls it back cleanly, and no
# stray files accumulate.
#
# Usage: crash_test.sh BIN_DIR WORK_DIR DATA_DIR [RANDOM_KILLS]   (exit 77: no PostgreSQL)
set -euo pipefail
source "$(dirname "$0")/../registry_e2e/lib.sh"
start_registry "$1" "$2"
models=$3/runtime
kills=${4:-50}
state=$work/agent
source "$(dirname "$0")/lib.sh"
acme_namespace tiny
declare -A file_of
publish() {  # VERSION FILE
    publish_build "tiny@$1" "$2"
    file_of[$1]=$work/m-tiny@$1/model.gguf
}
publish 1.0.0 "$models/stories260K-q8_0.gguf"
publish 1.1.0 "$models/stories260K-f32.gguf"
# Builds that fail their health check (truncated GGUFs, each of other bytes: a build that failed
# is not retried, so each failing update needs its own).
for n in 0 1 2 3 4; do
    head -c $((150000 + n)) "$models/stories260K-q8_0.gguf" > "$work/truncated-$n.gguf"
    publish "1.2.$n" "$work/truncated-$n.gguf"
done
enroll_device "$state"
"$pylon" devices assign edge/dev-1 acme/tiny@1.0.0 >/dev/null
"$agent" update-once --state-dir "$state" >/dev/null

# After a kill: a model the runtime loads is active, the next runs settle the update, and only
# expected files remain.
check() {  # WANTED_VERSION (what should be active once settled) LABEL
    "$bin/pylon" run -m "$state/current/model.gguf" -p "Once" -n 2 -t 1 --temp 0 >/dev/null 2>&1 ||
        fail "$2: the active model does not load after the kill"
    local out all=""
    # `timeout -s KILL` signals its whole process group, itself included, so it returns before
    # the killed agent has finished exiting (on a loaded machine a thread stuck in fsync can take
    # a second): wait until the agent's lock is free, or the next run finds "another pylon-agent".
    flock -w 60 "$state/agent.lock" true || fail "$2: the killed agent held its lock for 60 s"
    # Settling may take a recovery run, the cycle that finishes the update, and one that finds
    # nothing to do; a loaded machine can add a retried step (a refused or failed call).
    for _ in 1 2 3 4 5; do
        out=$("$agent" update-once --state-dir "$state" 2>&1 || true)
        all+=$'\n  > '"$out"
        [[ "$out" == nothing:* ]] && break
    done
    [[ "$out" == nothing:* ]] || fail "$2: the agent did not settle in 5 runs:$all"
    cmp -s "$state/current/model.gguf" "${file_of[$1]}" || fail "$2: $1 is not active"
    "$agent" status --state-dir "$state" | grep -q "state: *\(healthy\|rolled_back\)" ||
        fail "$2: the journal is not at rest"
    local stray
    stray=$(find "$state" -type f ! -path "$state/slots/*/model.gguf" ! -path "$state/slots/*/slot.json" \
        ! -path "$state/identity/*" ! -path "$state/tuf/*.json" ! -name journal.json \
        ! -name director.json ! -name agent.lock ! -name hardware.json ! -name last_check.json ! -name serving.json ! -path "$state/downloads/*.part")
    [[ -z "$stray" ]] || fail "$2: stray files: $stray"
    [[ $(find "$state/downloads" -type f 2>/dev/null | wc -l) -le 1 ]] || fail "$2: partial downloads pile up"
    [[ ! -e "$state/current.new" ]] || fail "$2: current.new left behind"
}

current=1.0.0
other() { [[ $current == 1.0.0 ]] && echo 1.1.0 || echo 1.0.0; }
# Every state of a successful update, and of one that fails its health check.
for point in after:downloading after:verifying after:staged after:activating after:switch \
    after:healthy; do
    next=$(other)
    "$pylon" devices assign edge/dev-1 "acme/tiny@$next" >/dev/null
    if PYLON_AGENT_FAULT=$point "$agent" update-once --state-dir "$state" >/dev/null 2>&1; then
        fail "$point: the fault was not injected"
    fi
    check "$next" "$point"
    current=$next
    echo "killed $point: settled on $current"
done
n=0
for point in after:downloading after:staged after:activating after:failed after:rolled_back; do
    "$pylon" devices assign edge/dev-1 "acme/tiny@1.2.$n" >/dev/null
    n=$((n + 1))
    if PYLON_AGENT_FAULT=$point "$agent" update-once --state-dir "$state" >/dev/null 2>&1; then
        fail "$point (bad build): the fault was not injected"
    fi
    check "$current" "$point (bad build)"
    "$agent" status --state-dir "$state" | grep -q "state: *rolled_back" ||
        fail "$point (bad build): not rolled back"
    echo "killed $point of a failing update: $current still active"
done

# Random instants: updates slowed to ~1.5 MB/s, killed after 0-300 ms.
for i in $(seq "$kills"); do
    next=$(other)
    "$pylon" devices assign edge/dev-1 "acme/tiny@$next" >/dev/null
    delay=$(printf '0.%03d' $((RANDOM % 300)))
    timeout -s KILL "$delay" "$agent" update-once --state-dir "$state" --bandwidth 1500000 \
        >/dev/null 2>&1 || true
    check "$next" "random kill $i after ${delay}s"
    current=$next
done
echo "agent crash safety: OK ($kills random kills)"
