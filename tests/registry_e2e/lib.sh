# Shared by the end-to-end scripts: a real pylon-registry on a fresh database of the PostgreSQL
# the PG* variables name (pg_virtualenv), logged in as its bootstrap admin.
#
#   source lib.sh; start_registry BIN_DIR WORK_DIR
# sets: work, data, url, pylon (the CLI), PYLON_CONFIG_DIR; stops the registry and drops the
# database on exit. fail MESSAGE prints the registry log's tail and exits 1.

start_registry() {
    bin=$1 work=$2
    if [[ -z "${PGHOST:-}" || -z "${PGDATABASE:-}" ]]; then
        echo "skipped: no PostgreSQL (run under pg_virtualenv)"; exit 77
    fi
    rm -rf "$work" && mkdir -p "$work"
    db="pylon_e2e_$$_$RANDOM"
    createdb "$db"
    data=$work/data
    export PYLON_CONFIG_DIR=$work/config
    "$bin/pylon-registry" --listen 127.0.0.1:0 --data-dir "$data" --database-url "dbname=$db" \
        >"$work/registry.log" 2>&1 &
    registry_pid=$!
    trap 'kill "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true; dropdb --force "$db" || true' EXIT
    local port=
    for _ in $(seq 300); do
        port=$(sed -n 's/.*registry listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$work/registry.log")
        [[ -n "$port" ]] && break
        kill -0 "$registry_pid" || { cat "$work/registry.log"; exit 1; }
        sleep 0.1
    done
    [[ -n "$port" ]] || { echo "registry did not start"; cat "$work/registry.log"; exit 1; }
    url=http://127.0.0.1:$port
    pylon=$bin/pylon
    "$pylon" login --registry "$url" --token-file "$data/admin.token"
}

fail() { echo "FAIL: $*"; tail -20 "$work/registry.log"; exit 1; }
