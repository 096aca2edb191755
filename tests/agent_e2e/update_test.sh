#!/usr/bin/env bash
# The device agent end to end, with a real PostgreSQL, pylon-registry and pylon-agent processes:
# publish 1.0.0 and assign it — the agent installs it; publish 1.1.0 and assign it — the agent
# upgrades; assign 1.0.0 again — the agent returns to 1.0.0 (from its other slot, no download); a
# correctly signed 1.2.0 that fails its health check (a truncated GGUF) is rolled back and
# reported, 1.0.0 stays active; a build for other hardware is not named (nothing changes); no
# stray files remain.
#
# Usage: update_test.sh BIN_DIR WORK_DIR DATA_DIR      (exit 77: skipped, no PostgreSQL)
set -euo pipefail
source "$(dirname "$0")/../registry_e2e/lib.sh"
start_registry "$1" "$2"
models=$3/runtime
state=$work/agent
source "$(dirname "$0")/lib.sh"
acme_namespace tiny
publish() { publish_build "tiny@$1" "$2" "$work/acme.key" x86_64 "${3:-}"; }
update() {  # EXPECTED_OUTCOME_PREFIX [extra update-once options]
    local want=$1
    shift
    "$agent" update-once --state-dir "$state" --region DE "$@" >"$work/out" 2>&1 || true
    cat "$work/out"
    grep -q "^$want" "$work/out" || fail "expected '$want'"
}
active_is() {  # FILE
    cmp -s "$state/current/model.gguf" "$1" || fail "the active model is not $1"
}
reported() {  # STATE VERSION
    "$pylon" devices list --fleet edge | grep -q "dev-1 .*$1 .*acme/tiny@$2" ||
        { "$pylon" devices list --fleet edge; fail "the registry does not show $1 $2"; }
}

publish 1.0.0 "$models/stories260K-q8_0.gguf"
publish 1.1.0 "$models/stories260K-q4_0.gguf"
head -c 150000 "$models/stories260K-q8_0.gguf" > "$work/truncated.gguf"
publish 1.2.0 "$work/truncated.gguf"
publish 1.3.0 "$models/stories260K-f16.gguf" avx512_nonexistent

enroll_device "$state"
"$pylon" devices assign edge/dev-1 acme/tiny@1.0.0
update "installed: acme/tiny/1.0.0/cpu/model.gguf in slot a"
active_is "$models/stories260K-q8_0.gguf"
reported healthy 1.0.0
# Every step was reported, signed: downloading, verifying, staged, activating, healthy.
"$pylon" devices show edge/dev-1 >"$work/show.json"
for st in downloading verifying staged activating healthy; do
    grep -q "\"state\": \"$st\"" "$work/show.json" || fail "no report of the $st step"
done

# The upgrade's download capped at 100 kB/s: the 0.28 MB file takes about 2.8 s.
"$pylon" devices assign edge/dev-1 acme/tiny@1.1.0
update "installed: acme/tiny/1.1.0/cpu/model.gguf in slot b" --bandwidth 100000
active_is "$models/stories260K-q4_0.gguf"
reported healthy 1.1.0
took=$(grep -o 'download=[0-9.]*' "$work/out" | cut -d= -f2)
size=$(stat -c %s "$models/stories260K-q4_0.gguf")
awk -v t="$took" -v n="$size" 'BEGIN {exit !(t >= 0.9 * n / 100000)}' ||
    fail "the bandwidth cap was not honoured: $size bytes in ${took}s"

# Rollback by the operator: a new director document naming 1.0.0, which slot a still holds.
"$pylon" devices assign edge/dev-1 acme/tiny@1.0.0
update "installed: acme/tiny/1.0.0/cpu/model.gguf in slot a"
active_is "$models/stories260K-q8_0.gguf"
reported healthy 1.0.0

# A correctly signed build that fails its health check: rolled back, reported, 1.0.0 serves on.
"$pylon" devices assign edge/dev-1 acme/tiny@1.2.0
update "rolled_back: "
active_is "$models/stories260K-q8_0.gguf"
reported rolled_back 1.0.0
"$pylon" devices show edge/dev-1 | grep -q '"last_error": ".*' || fail "no error reported"
"$agent" status --state-dir "$state" | grep -q "last error:" || fail "status shows no error"
"$agent" status --state-dir "$state" | grep -q "last check: .*rolled_back: health check" ||
    fail "status shows no last check"

# A build for other hardware: the director names no target (no build fits), nothing changes.
"$pylon" devices assign edge/dev-1 acme/tiny@1.3.0
update "nothing: no build of acme/tiny 1.3.0 fits this device"
active_is "$models/stories260K-q8_0.gguf"

# Upgrade again to 1.1.0 (slot b held the failed 1.2.0: downloaded afresh).
"$pylon" devices assign edge/dev-1 acme/tiny@1.1.0
update "installed: acme/tiny/1.1.0/cpu/model.gguf in slot b"
active_is "$models/stories260K-q4_0.gguf"

# No stray files: the two slots, the journal, the identity, TUF metadata, the director document.
stray=$(find "$state" -type f ! -path "$state/slots/*/model.gguf" ! -path "$state/slots/*/slot.json" \
    ! -path "$state/identity/*" ! -path "$state/tuf/*.json" ! -name journal.json ! -name director.json \
    ! -name agent.lock ! -name hardware.json ! -name last_check.json ! -name serving.json)
[[ -z "$stray" ]] || fail "stray files: $stray"
[[ -z "$(ls -A "$state/downloads" 2>/dev/null)" ]] || fail "downloads left behind"
echo "agent update end to end: OK"
