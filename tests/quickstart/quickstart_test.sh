#!/usr/bin/env bash
# The quickstart's story (deploy/quickstart_demo.sh) on the built binaries, twice: the first
# run leaves its registry, agent and PostgreSQL running, as a user's would; the second must stop
# them, start over and finish the whole story again (running it again is safe), then stop.
# Usage: quickstart_test.sh BIN_DIR
set -euo pipefail
bin=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
unset PGHOST PGHOSTADDR PGPORT PGDATABASE PGSERVICE PGUSER PGPASSWORD
if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    echo "quickstart_test: SKIP: running as root needs the postgres system user"; exit 77
fi
work=$(mktemp -d /tmp/pylon-qs.XXXXXX)
chmod 755 "$work"
dir=$work/quickstart
trap 'bash "$root/deploy/quickstart_demo.sh" --stop "$dir" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
fail() { echo "quickstart_test: FAIL: $*" >&2; exit 1; }

# check LOG: the story's milestones, in order.
check() {
    local log=$1
    grep -q "embedded PostgreSQL: creating a cluster" "$log" || fail "no embedded cluster created"
    grep -q "published acme/stories260k@1.0.0 .*2 build(s) in all" "$log" || fail "1.0.0 not published with two builds"
    grep -q "rollout 1: acme/stories260k@1.0.0 to fleet home — completed" "$log" || fail "1.0.0 not rolled out"
    grep -q "rollout 2: acme/stories260k@1.1.0 to fleet home — completed" "$log" || fail "1.1.0 not rolled out"
    grep -q "fleet home rolled back: 1 devices reassigned" "$log" || fail "no rollback"
    [ "$(grep -c '→ Once upon a time, there was' "$log")" -eq 3 ] || fail "not three completions"
    grep -Eq '^2 +home +acme/stories260k@1.1.0 +rolled_back' "$log" || fail "rollout 2 not rolled_back"
    grep -q "== Done" "$log" || fail "the story did not finish"
    # 1.0.0 (Q4_0) and 1.1.0 (Q8_0) answer differently: after the rollback the API must answer
    # as 1.0.0 did, not as 1.1.0.
    local c1 c2 c3
    c1=$(grep '→ Once upon a time' "$log" | sed -n 1p)
    c2=$(grep '→ Once upon a time' "$log" | sed -n 2p)
    c3=$(grep '→ Once upon a time' "$log" | sed -n 3p)
    # (On aarch64 both releases carry the same Q8_0 file: only x86_64 can tell them apart.)
    if [ "$(uname -m)" = x86_64 ] && [ "$c1" = "$c2" ]; then
        fail "1.1.0 answered exactly as 1.0.0: the upgrade did not reach the API"
    fi
    [ "$c1" = "$c3" ] || fail "after the rollback the API does not answer as 1.0.0 did"
}

bash "$root/deploy/quickstart_demo.sh" "$bin" "$dir" >"$work/run1.log" 2>&1 ||
    { cat "$work/run1.log"; fail "first run exited with $?"; }
check "$work/run1.log"
registry1=$(cat "$dir/registry.pid")
agent1=$(cat "$dir/agent.pid")
kill -0 "$registry1" && kill -0 "$agent1" || fail "the first run did not leave the registry and agent running"
pg1=$(head -n 1 "$dir/data/postgresql/data/postmaster.pid")

bash "$root/deploy/quickstart_demo.sh" "$bin" "$dir" --stop-at-end >"$work/run2.log" 2>&1 ||
    { cat "$work/run2.log"; fail "second run exited with $?"; }
check "$work/run2.log"
grep -q "Starting over in $dir" "$work/run2.log" || fail "the second run did not start over"
for p in "$registry1" "$agent1" "$pg1"; do
    ! kill -0 "$p" 2>/dev/null || fail "process $p of the first run still runs"
done
[ ! -f "$dir/registry.pid" ] && [ ! -f "$dir/data/postgresql/data/postmaster.pid" ] ||
    fail "--stop-at-end left the registry or PostgreSQL running"
echo "quickstart_test: OK (two runs; the second started over and stopped everything)"
