#!/usr/bin/env bash
# `pylon-registry --data-dir D` alone (no database URL, no PG* variables) runs on a private
# PostgreSQL cluster in D/postgresql: created on first start, socket-only, stopped with the
# registry, adopted after the registry was killed, kept across restarts, and held by one
# registry at a time.
# Usage: embedded_postgres_test.sh BIN_DIR
set -euo pipefail
bin=$1
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
unset PGHOST PGHOSTADDR PGPORT PGDATABASE PGSERVICE PGUSER PGPASSWORD

fail() {
    echo "embedded_postgres_test: FAIL: $*" >&2
    for f in "$work"/registry*.log "$data/postgresql/setup.log"; do
        [ -f "$f" ] && { echo "--- $f"; tail -n 20 "$f"; } >&2
    done
    exit 1
}
skip() { echo "embedded_postgres_test: SKIP: $*"; exit 77; }

if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    skip "running as root needs the postgres system user (postgresql-15)"
fi
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v pg_config >/dev/null ||
    skip "no PostgreSQL server binaries (postgresql-15)"
pg_bin=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -n 1)")

# Under /tmp, whose parents the postgres user can search wherever the build tree is.
work=$(mktemp -d /tmp/pylon-epg.XXXXXX)
chmod 755 "$work"
data=$work/data
pid=
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    if [ -f "$data/postgresql/data/postmaster.pid" ]; then
        if [ "$(id -u)" -eq 0 ]; then
            runuser -u postgres -- "$pg_bin/pg_ctl" stop -D "$data/postgresql/data" -m immediate -s
        else
            "$pg_bin/pg_ctl" stop -D "$data/postgresql/data" -m immediate -s
        fi
    fi
    rm -rf "$work"
}
trap cleanup EXIT

pg_running() { [ -f "$data/postgresql/data/postmaster.pid" ] && kill -0 "$(head -n 1 "$data/postgresql/data/postmaster.pid")" 2>/dev/null; }

n=0
start() {  # start [ARGS...]: the registry on a free port; sets pid and url
    n=$((n + 1))
    log=$work/registry$n.log
    "$bin/pylon-registry" --data-dir "$data" --listen 127.0.0.1:0 "$@" >"$log" 2>&1 &
    pid=$!
    local port=
    for _ in $(seq 300); do
        port=$(sed -n 's/.*registry listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$log")
        [ -n "$port" ] && break
        kill -0 "$pid" 2>/dev/null || fail "registry $n exited during start-up"
        sleep 0.1
    done
    [ -n "$port" ] || fail "registry $n did not listen"
    url=http://127.0.0.1:$port
}
stop() {  # stop SIGNAL: and reap; a TERM must exit 0
    kill -"$1" "$pid"
    local rc=0
    wait "$pid" || rc=$?
    pid=
    if [ "$1" = TERM ] && [ "$rc" -ne 0 ]; then fail "registry $n exited with $rc after SIGTERM"; fi
}
api() { curl -fsS -H "Authorization: Bearer $(cat "$data/admin.token")" "$@"; }

echo "-- first start creates the cluster and the schema"
start
grep -q "embedded PostgreSQL: creating a cluster" "$log" || fail "no cluster created"
[ -f "$data/postgresql/data/PG_VERSION" ] || fail "no cluster in $data/postgresql/data"
[ "$(stat -c %a "$data/postgresql")" = 700 ] || fail "postgresql/ is not 0700"
[ "$(stat -c %a "$data/postgresql/run")" = 700 ] || fail "the socket directory is not 0700"
[ -S "$data/postgresql/run/.s.PGSQL.5432" ] || fail "no Unix socket in postgresql/run"
listen=$(psql -h "$data/postgresql/run" -U pylon -d pylon -Atc "SHOW listen_addresses")
[ -z "$listen" ] || fail "the embedded server listens on TCP: '$listen'"
token=$(cat "$data/admin.token")
api -X POST "$url/v1/fleets" -H 'Content-Type: application/json' -d '{"name":"kept"}' >/dev/null
curl -fsS "$url/readyz" >/dev/null || fail "not ready"

echo "-- a second registry on the same data directory is refused"
rc=0
"$bin/pylon-registry" --data-dir "$data" --listen 127.0.0.1:0 >"$work/second.log" 2>&1 || rc=$?
[ "$rc" -eq 1 ] || fail "second registry exited with $rc, not 1"
grep -q "another pylon-registry uses" "$work/second.log" || fail "second registry: $(cat "$work/second.log")"

echo "-- a wrong embedded_postgres_bin_dir is refused, naming it"
rc=0
PYLON_REGISTRY_EMBEDDED_POSTGRES_BIN_DIR=/nonexistent/bin "$bin/pylon-registry" \
    --data-dir "$work/other" --listen 127.0.0.1:0 >"$work/badbin.log" 2>&1 || rc=$?
[ "$rc" -eq 1 ] || fail "a wrong bin dir exited with $rc, not 1"
grep -q "no initdb and pg_ctl in /nonexistent/bin" "$work/badbin.log" || fail "badbin: $(cat "$work/badbin.log")"

echo "-- SIGTERM stops the registry and its PostgreSQL"
stop TERM
grep -q "embedded PostgreSQL: stopped" "$log" || fail "no stop logged"
! pg_running || fail "PostgreSQL still runs after the registry stopped"

echo "-- a restart keeps the data (same token, same fleet); --database-url embedded wins over PG*"
PGHOST=/nonexistent start --database-url embedded
grep -q "creating a cluster" "$log" && fail "the cluster was created again"
[ "$(cat "$data/admin.token")" = "$token" ] || fail "admin.token was replaced"
api "$url/v1/fleets/kept" | grep -q '"kept"' || fail "the fleet created before the restart is gone"

echo "-- after SIGKILL the server keeps running and the next registry adopts it"
stop KILL
pg_running || fail "PostgreSQL stopped with the killed registry"
start
grep -q "adopting the server already running" "$log" || fail "the running server was not adopted"
api "$url/v1/fleets/kept" | grep -q '"kept"' || fail "the fleet is gone after adoption"
stop TERM
! pg_running || fail "PostgreSQL still runs after the adopting registry stopped"
echo "embedded_postgres_test: OK"
