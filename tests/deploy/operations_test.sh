#!/usr/bin/env bash
# Runs the operator procedures of docs/OPERATIONS.md exactly as written there — the shell blocks
# marked <!-- ops-test: NAME --> (backup, restore, rotate-offline, rotate-online) — against the
# quickstart's registry (published releases, an enrolled agent, rollouts), and checks their
# effect: the restored registry serves the same releases, tokens and devices without making a
# new admin token; after the key rotations the CLI and the running agent walk to the new root
# and accept the new snapshot and timestamp keys, and the old keys are gone from root.
# Usage: operations_test.sh BIN_DIR
set -euo pipefail
bin=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
doc=$root/docs/OPERATIONS.md
source "$root/tests/registry_e2e/lib.sh"
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
unset PGHOST PGHOSTADDR PGPORT PGDATABASE PGSERVICE PGUSER PGPASSWORD
if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    echo "operations_test: SKIP: running as root needs the postgres system user"; exit 77
fi
command -v pg_dump >/dev/null || { echo "operations_test: SKIP: no pg_dump"; exit 77; }
command -v python3 >/dev/null || { echo "operations_test: SKIP: no python3"; exit 77; }
work=$(mktemp -d /tmp/pylon-ops.XXXXXX)
chmod 755 "$work"
qs=$work/qs
reg_pid= agent_pid=
cleanup() {
    [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
    [ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null && wait "$reg_pid" 2>/dev/null
    bash "$root/deploy/quickstart_demo.sh" --stop "$qs" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "operations_test: FAIL: $*" >&2
    for f in "$work"/*.log "${DATA:-/nonexistent}.log"; do
        [ -f "$f" ] && { echo "--- $f"; tail -n 15 "$f"; } >&2
    done
    exit 1
}

# block NAME: the sh block after <!-- ops-test: NAME --> in docs/OPERATIONS.md.
block() {
    awk -v name="$1" '
        $0 == "<!-- ops-test: " name " -->" { armed = 1; next }
        armed && /^```sh$/ { inside = 1; next }
        inside && /^```$/ { exit }
        inside { print }' "$doc"
}
run_block() {  # NAME: runs it with DATA, BACKUP, OFFLINE and pylon's binaries on PATH
    local text
    text=$(block "$1")
    [ -n "$text" ] || fail "docs/OPERATIONS.md has no ops-test block \"$1\""
    echo "-- docs/OPERATIONS.md, $1:"
    printf '%s\n' "$text" | sed 's/^/   | /'
    (
        export DATA BACKUP OFFLINE KEYS PATH="$bin:$PATH"
        bash -euo pipefail -c "$text"
    ) >"$work/block-$1.log" 2>&1 || { cat "$work/block-$1.log"; fail "block $1 failed"; }
}
start_registry() {  # (replaces lib.sh's) on the quickstart's port: the agent and the CLI know the registry by URL
    E2E_LISTEN=127.0.0.1:$port registry_start "$DATA" embedded
    reg_pid=$registry_pid
}
stop_registry() { kill -TERM "$reg_pid"; wait "$reg_pid" || fail "the registry did not stop cleanly"; reg_pid=; }
rollout_completes() {  # VERSION WHY: a one-wave rollout to fleet home that must complete
    "$pylon" rollout create "acme/stories260k@$1" --fleet home --waves 100% >/dev/null
    local id state=
    id=$("$pylon" rollout list --fleet home | awk 'NR == 2 {print $1}')
    for _ in $(seq 300); do
        state=$("$pylon" rollout status "$id" --json | sed -n 's/^  "state": "\([a-z_]*\)".*/\1/p')
        [ "$state" = running ] || break
        sleep 0.2
    done
    [ "$state" = completed ] || fail "the rollout of $1 ($2) is $state"
}
root_field() {  # PYTHON-EXPRESSION on r (the registry's current root.json, signed part)
    python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['signed']; print($1)" "$DATA/tuf/repo/metadata/root.json"
}

echo "-- the quickstart's registry, releases, agent and rollouts"
bash "$root/deploy/quickstart_demo.sh" "$bin" "$qs" >"$work/quickstart.log" 2>&1 || fail "quickstart"
DATA=$qs/data BACKUP=$work/backup OFFLINE=$work/offline
export PYLON_CONFIG_DIR=$qs/cli
pylon=$bin/pylon
port=$(sed -n 's/.*registry listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$qs/registry.log")
token_before=$(cat "$DATA/admin.token")
"$pylon" devices list --fleet home >"$work/devices-before.txt"

run_block backup
[ -s "$BACKUP/pylon.dump" ] && [ -s "$BACKUP/data.tar" ] || fail "the backup is incomplete"

echo "-- everything stopped and the data directory removed"
bash "$root/deploy/quickstart_demo.sh" --stop "$qs" >/dev/null
rm -rf "$DATA"
run_block restore
start_registry restored
grep -q "created the bootstrap admin token" "$DATA.log" &&
    fail "the restored registry made a new admin token"
[ "$(cat "$DATA/admin.token")" = "$token_before" ] || fail "admin.token changed"
"$pylon" models show acme/stories260k --version 1.1.0 >/dev/null || fail "1.1.0 is gone"
"$pylon" pull acme/stories260k@1.0.0 --target x86_64-avx2 --out "$work/pulled" >/dev/null ||
    fail "pull after restore"
cmp "$work/pulled/model.gguf" "$root/deploy/samples/stories260K-q4_0.gguf" || fail "pulled bytes differ"
"$pylon" devices list --fleet home | awk '{print $1, $3}' >"$work/devices-after.txt"
awk '{print $1, $3}' "$work/devices-before.txt" | diff - "$work/devices-after.txt" || fail "devices differ"
echo "   restored: same admin token, releases pulled verified, same devices"
stop_registry

echo "-- key rotation (the offline keys moved to $OFFLINE, as they should be)"
mkdir -p "$OFFLINE" && mv "$DATA/tuf/offline-keys/"* "$OFFLINE/"
old_root=$(root_field "r['roles']['root']['keyids'][0]")
old_targets=$(root_field "r['roles']['targets']['keyids'][0]")
old_ts=$(root_field "r['roles']['timestamp']['keyids'][0]")
old_snap=$(root_field "r['roles']['snapshot']['keyids'][0]")
version_before=$(root_field "r['version']")
run_block rotate-offline
run_block rotate-online
version_after=$(root_field "r['version']")
for role in root targets timestamp snapshot; do
    ids=$(root_field "' '.join(r['roles']['$role']['keyids'])")
    for old in "$old_root" "$old_targets" "$old_ts" "$old_snap"; do
        case " $ids " in *" $old "*) fail "role $role still lists old key $old" ;; esac
    done
done
[ "$version_after" -eq $((version_before + 4)) ] ||
    fail "root went from version $version_before to $version_after, not 4 versions on"
start_registry rotated
"$pylon" pull acme/stories260k@1.1.0 --target x86_64-avx2 --out "$work/pulled2" >"$work/pull2.log" 2>&1 ||
    { cat "$work/pull2.log"; fail "the CLI does not follow the rotation"; }
cli_root=$(python3 -c "import json,glob; print(max(json.load(open(f))['signed']['version'] for f in glob.glob('$PYLON_CONFIG_DIR/tuf/*/root.json')))")
[ "$cli_root" -eq "$version_after" ] || fail "the CLI trusts root $cli_root, not $version_after"

echo "-- the agent follows: a rollout of 1.1.0 after the rotation completes"
"$bin/pylon-agent" run --config "$qs/agent.toml" >"$work/agent.log" 2>&1 &
agent_pid=$!
rollout_completes 1.1.0 "after the rotation"
agent_root=$(python3 -c "import json; print(json.load(open('$qs/agent/tuf/root.json'))['signed']['version'])")
[ "$agent_root" -eq "$version_after" ] || fail "the agent trusts root $agent_root, not $version_after"
echo "   root $version_before -> $version_after; the CLI and the agent trust version $version_after"

echo "-- publisher key rotation: add the new key, publish with it, remove the old one"
KEYS=$qs
run_block rotate-publisher-add
# Removing the old key before anything is signed with the new one is refused.
if (export DATA OFFLINE KEYS PATH="$bin:$PATH"; bash -euo pipefail -c "$(block rotate-publisher-remove)") \
    >"$work/early-remove.log" 2>&1; then
    fail "the old publisher key was removed while it alone signed acme.json"
fi
grep -q "refusing to re-delegate acme" "$work/early-remove.log" ||
    { cat "$work/early-remove.log"; fail "the early removal was not refused with its reason"; }
publish_120() {  # KEY: acme/stories260k@1.2.0 (one x86_64 build), signed with KEY
    mkdir -p "$work/m120" && cp "$root/deploy/samples/stories260K-q8_0.gguf" "$work/m120/model.gguf"
    "$pylon" publish acme/stories260k@1.2.0 --build x86_64-avx2 --arch x86_64 --isa avx2 \
        --min-ram-mb 64 --format gguf --quantization Q8_0 --file "$work/m120/model.gguf" \
        --key "$1" >"$work/publish-120.log" 2>&1
}
publish_120 "$KEYS/acme-2.key" || { cat "$work/publish-120.log"; fail "publishing with the new key"; }
run_block rotate-publisher-remove
"$pylon" pull acme/stories260k@1.2.0 --target x86_64-avx2 --out "$work/pulled3" >/dev/null ||
    fail "pull after the publisher rotation"
mkdir -p "$work/m130" && cp "$root/deploy/samples/stories260K-q4_0.gguf" "$work/m130/model.gguf"
if "$pylon" publish acme/stories260k@1.3.0 --build x86_64-avx2 --arch x86_64 --isa avx2 \
    --min-ram-mb 64 --format gguf --quantization Q4_0 --file "$work/m130/model.gguf" \
    --key "$KEYS/acme.key" >"$work/publish-old.log" 2>&1; then
    fail "a release signed with the removed publisher key was published"
fi
grep -q "bad_signature" "$work/publish-old.log" ||
    { cat "$work/publish-old.log"; fail "the old key's release was refused for another reason"; }
echo "   the removed key: $(tail -n 1 "$work/publish-old.log")"
rollout_completes 1.2.0 "signed with the new publisher key"
echo "   1.2.0 signed with the new key: pulled, rolled out; the old key is refused"

echo "-- a revoked device is refused (docs/OPERATIONS.md, \"Other keys\")"
kill "$agent_pid" && wait "$agent_pid" 2>/dev/null || true
agent_pid=
"$pylon" devices revoke home/this-machine
if "$bin/pylon-agent" check --state-dir "$qs/agent" >"$work/check.log" 2>&1; then
    fail "the revoked device's credential still works"
fi
grep -q "revoked" "$work/check.log" || { cat "$work/check.log"; fail "no refusal naming the revocation"; }
echo "operations_test: OK"
