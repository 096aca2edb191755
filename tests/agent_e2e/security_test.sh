#!/usr/bin/env bash
# The agent against a malicious or broken registry (a real pylon-registry and PostgreSQL whose
# storage and database the test tampers with, as an attacker holding the registry would): a
# tampered blob, an unsigned release, a replayed older director document, a target for other
# hardware, a licence that excludes the device's region, expired metadata — each refused or
# rolled back, reported to the registry, and the active model keeps serving.
#
# Usage: security_test.sh BIN_DIR WORK_DIR DATA_DIR      (exit 77: skipped, no PostgreSQL)
set -euo pipefail
source "$(dirname "$0")/../registry_e2e/lib.sh"
start_registry "$1" "$2"
models=$3/runtime
state=$work/agent
sql() { psql -X -q -t -A -d "$db" -c "$1"; }
source "$(dirname "$0")/lib.sh"
acme_namespace tiny
"$pylon" key generate --out "$work/mallory" >/dev/null
"$pylon" models create acme/regional --license MIT --regions-denied DE >/dev/null
publish() { publish_build "$@"; }
publish tiny@1.0.0 "$models/stories260K-q8_0.gguf" "$work/acme.key"
publish tiny@1.1.0 "$models/stories260K-q4_0.gguf" "$work/acme.key"
publish tiny@1.3.0 "$models/stories260K-f16.gguf" "$work/acme.key" aarch64 neon
# 1.2.0: signed by a key the namespace was not delegated to — refused at publishing, left a draft.
if publish tiny@1.2.0 "$models/stories260K-f32.gguf" "$work/mallory.key" 2>/dev/null; then
    fail "a release signed by a stranger was published"
fi
publish regional@1.0.0 "$models/stories260K-f32.gguf" "$work/acme.key"

enroll_device "$state"
device=$(sql "SELECT id FROM devices WHERE name = 'dev-1'")
"$pylon" devices assign edge/dev-1 acme/tiny@1.0.0 >/dev/null
"$agent" update-once --state-dir "$state" --region DE | grep -q "^installed:" || fail "1.0.0 not installed"
cp "$state/director.json" "$work/director-v-old.json"

expect() {  # OUTCOME_PREFIX MESSAGE_PART LABEL [agent prefix command...]
    local outcome=$1 part=$2 label=$3; shift 3
    "$@" "$agent" update-once --state-dir "$state" --region DE >"$work/out" 2>&1 || true
    grep -q "^$outcome" "$work/out" && grep -q -- "$part" "$work/out" ||
        { cat "$work/out"; fail "$label: expected $outcome … $part"; }
    cmp -s "$state/current/model.gguf" "$models/stories260K-q8_0.gguf" ||
        fail "$label: the active model changed"
    "$bin/pylon" run -m "$state/current/model.gguf" -p Once -n 2 -t 1 --temp 0 >/dev/null 2>&1 ||
        fail "$label: the active model does not load"
    local reported
    reported=$(sql "SELECT details->'report'->>'error' FROM device_events WHERE device_id = $device
                    AND kind = 'report' ORDER BY id DESC LIMIT 1")
    [[ "$reported" == *"$part"* ]] || fail "$label: not reported (last report: $reported)"
    echo "refused and reported: $label"
}

# 1. A tampered blob: the bytes no longer match the signed hash.
digest=$(sha256sum "$models/stories260K-q4_0.gguf" | cut -d' ' -f1)
blob=$(find "$data/blobs" -type f -name "$digest" | head -1)
[[ -n "$blob" ]] || fail "blob of 1.1.0 not found"
printf 'X' | dd of="$blob" bs=1 seek=5000 conv=notrunc status=none
"$pylon" devices assign edge/dev-1 acme/tiny@1.1.0 >/dev/null
expect "rolled_back:" "does not match the signed length and sha256" "tampered blob"

# 2. An unsigned release: the registry (tampered database) names a draft's build, which no
#    publisher signed into the image repository.
sql "UPDATE devices SET desired_release_id = (SELECT r.id FROM releases r JOIN models m ON
     m.id = r.model_id WHERE m.name = 'tiny' AND r.version = '1.2.0') WHERE id = $device"
expect "refused:" "TUF" "unsigned release"

# 3. A replayed older director document, served as if fresh.
old=$(cat "$work/director-v-old.json")
sql "UPDATE devices SET director_document = \$\$$old\$\$, director_expires_at = now() + interval '1 day',
     director_release_id = desired_release_id WHERE id = $device"
expect "refused:" "not above the accepted version" "replayed director document"

# 4. A target for other hardware: the registry is told the device is an aarch64 board.
hardware=$(sql "SELECT hardware::text FROM devices WHERE id = $device")
sql "UPDATE devices SET hardware = '{\"arch\":\"aarch64\",\"isa\":[\"neon\"],\"accelerators\":[],\"ram_mb\":8192}',
     director_document = NULL, desired_release_id = (SELECT r.id FROM releases r JOIN models m ON
     m.id = r.model_id WHERE m.name = 'tiny' AND r.version = '1.3.0') WHERE id = $device"
expect "refused:" "built for aarch64, the device is x86_64" "target for other hardware"

# 5. A licence that excludes the device's region (DE).
sql "UPDATE devices SET hardware = '$hardware'::jsonb, director_document = NULL WHERE id = $device"
"$pylon" devices assign edge/dev-1 acme/regional@1.0.0 >/dev/null
expect "refused:" "the licence excludes region DE" "licence region"

# 6. Expired metadata: the agent's clock three days ahead (director document and TUF timestamp
#    live one day).
"$pylon" devices assign edge/dev-1 acme/tiny@1.0.0 >/dev/null
expect "refused:" "expired" "expired metadata" faketime -f "+3d"
echo "agent security end to end: OK"
