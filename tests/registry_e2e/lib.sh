# shellcheck shell=bash disable=SC2154  # bin, work, admin_token: set by the caller
# Helpers for end-to-end tests and benchmarks that run a real pylon-registry process against
# PostgreSQL (sourced, not executed). The caller sets `bin` (the build's bin/ directory) and
# `work` (a scratch directory it owns) before using them.
#
#   e2e_skip MSG                     exit 77 (CTest "skipped") with a message
#   e2e_fail MSG                     exit 1 with a message
#   e2e_require_pg                   skip unless PGHOST is set (run under pg_virtualenv)
#   e2e_createdb NAME                create a database, dropped again by e2e_cleanup
#   registry_start DATA DB [VAR=VALUE...]
#                                    start pylon-registry on ${E2E_LISTEN:-127.0.0.1:0}
#                                    (environment VAR=VALUE added) on database DB, or with DB
#                                    "embedded" on its own cluster in DATA/postgresql (the PG*
#                                    variables removed for it); sets registry_pid and
#                                    registry_url; log in DATA.log (emptied first)
#   registry_kill [SIGNAL]           signal the registry (default TERM) and reap it
#   http_status OUT_HEADERS CURL_ARGS...
#                                    run curl, print the status code, headers into OUT_HEADERS
#   header_value HEADERS_FILE NAME   a header's value (case-insensitive name, CR stripped)
#   json_field JSON NAME             a string field of a one-line JSON object (no escapes in the value)
#   api_create_namespace NS          POST /v1/namespaces as admin (token in $admin_token)
#   api_create_token NAME SCOPE      POST /v1/tokens as admin; prints the new token
#   e2e_cleanup                      stop the registry, drop the databases (install as EXIT trap)
#   start_registry BIN_DIR WORK_DIR  all of the above for a CLI-driven test: a fresh WORK_DIR, a
#                                    database, the registry started (DATA=WORK_DIR/data) and the
#                                    pylon CLI logged in as its bootstrap admin; sets bin, work,
#                                    data, db, url (= registry_url), pylon, PYLON_CONFIG_DIR, and
#                                    e2e_cleanup as the EXIT trap
#   fail MSG                         exit 1, printing the registry log's tail
#
# The registry's port is read from its "registry listening on HOST:PORT" log line, so tests
# never pick ports themselves.

# Loopback only: never send the test's requests through a proxy.
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

registry_pid=
registry_url=
e2e_databases=()

e2e_skip() {
    echo "${0##*/}: SKIP: $*"
    exit 77
}

e2e_fail() {
    echo "${0##*/}: FAIL: $*" >&2
    exit 1
}

e2e_require_pg() {
    if [ -z "${PGHOST:-}" ]; then
        e2e_skip "PGHOST is not set (run under: pg_virtualenv -t -v 15 ctest -L postgres)"
    fi
    command -v createdb >/dev/null || e2e_skip "createdb (postgresql-client) is not installed"
    command -v psql >/dev/null || e2e_skip "psql (postgresql-client) is not installed"
}

e2e_createdb() {
    createdb "$1" || e2e_fail "createdb $1"
    e2e_databases+=("$1")
}

registry_start() {
    local data=$1 db=$2
    shift 2
    local log=$data.log
    : >"$log"
    local database=(--database-url "dbname=$db") unset_pg=()
    if [ "$db" = embedded ]; then
        database=(--database-url embedded)
        unset_pg=(-u PGHOST -u PGHOSTADDR -u PGPORT -u PGDATABASE -u PGSERVICE -u PGUSER)
    fi
    env "${unset_pg[@]}" "$@" "$bin/pylon-registry" --listen "${E2E_LISTEN:-127.0.0.1:0}" \
        --data-dir "$data" "${database[@]}" >>"$log" 2>&1 &
    registry_pid=$!
    local addr=
    for _ in $(seq 300); do
        addr=$(grep -o 'registry listening on [^ ]*' "$log" | head -n1 | cut -d' ' -f4 || true)
        [ -n "$addr" ] && break
        if ! kill -0 "$registry_pid" 2>/dev/null; then
            cat "$log" >&2
            registry_pid=
            e2e_fail "pylon-registry exited during start-up"
        fi
        sleep 0.1
    done
    [ -n "$addr" ] || { cat "$log" >&2; e2e_fail "pylon-registry did not start in 30 s"; }
    registry_url="http://$addr"
}

registry_kill() {
    local sig=${1:-TERM}
    if [ -n "$registry_pid" ]; then
        kill "-$sig" "$registry_pid" 2>/dev/null || true
        wait "$registry_pid" 2>/dev/null || true
        registry_pid=
    fi
}

http_status() {
    local headers=$1
    shift
    curl -sS -o /dev/null -D "$headers" -w '%{http_code}' "$@"
}

header_value() {
    grep -i "^$2:" "$1" | tail -n1 | cut -d: -f2- | tr -d '\r' | sed 's/^ *//'
}

json_field() {
    printf '%s' "$1" | sed -n "s/.*\"$2\" *: *\"\([^\"]*\)\".*/\1/p" | head -n1
}

api_create_namespace() {
    local status
    status=$(curl -sS -o "$work/ns.out" -w '%{http_code}' -X POST \
        -H "Authorization: Bearer $admin_token" -H 'Content-Type: application/json' \
        --data-binary "{\"name\": \"$1\"}" "$registry_url/v1/namespaces")
    [ "$status" = 201 ] || e2e_fail "POST /v1/namespaces $1: $status $(cat "$work/ns.out")"
}

api_create_token() {
    local body token
    body=$(curl -sS -f -X POST -H "Authorization: Bearer $admin_token" \
        -H 'Content-Type: application/json' \
        --data-binary "{\"name\": \"$1\", \"scopes\": [\"$2\"]}" "$registry_url/v1/tokens") ||
        e2e_fail "POST /v1/tokens ($2)"
    token=$(json_field "$body" token)
    [ -n "$token" ] || e2e_fail "POST /v1/tokens answered no token: $body"
    printf '%s\n' "$token"
}

e2e_cleanup() {
    registry_kill TERM
    local db
    for db in "${e2e_databases[@]}"; do dropdb --if-exists "$db" 2>/dev/null || true; done
}

start_registry() {
    bin=$1 work=$2
    e2e_require_pg
    rm -rf "$work" && mkdir -p "$work"
    db="pylon_e2e_$$_$RANDOM"
    e2e_createdb "$db"
    trap e2e_cleanup EXIT
    data=$work/data
    export PYLON_CONFIG_DIR=$work/config
    registry_start "$data" "$db"
    url=$registry_url
    pylon=$bin/pylon
    "$pylon" login --registry "$url" --token-file "$data/admin.token"
}

fail() {
    echo "FAIL: $*"
    tail -20 "$data.log" 2>/dev/null || true
    exit 1
}
