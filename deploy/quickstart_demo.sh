#!/usr/bin/env bash
# The story of the quickstart (deploy/quickstart.sh runs it after installing and building; the
# test quickstart_demo runs it too): a registry on its own PostgreSQL cluster, a signed release
# with two hardware builds, a local device agent enrolled, the release rolled out and answering
# a completion, a second release rolled out, then rolled back.
#
# Usage: quickstart_demo.sh BIN_DIR DIR [--stop-at-end]
#        quickstart_demo.sh --stop DIR
# DIR is the quickstart's sandbox: each run stops what the previous run left running in it and
# starts it over. The registry and the agent keep running afterwards (their pids in DIR/*.pid)
# unless --stop-at-end.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
samples=$here/samples
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
note() { printf '   %s\n' "$*"; }
die() {
    echo "quickstart: FAILED: $*" >&2
    for f in "$dir"/registry.log "$dir"/agent.log; do
        [ -f "$f" ] && { echo "--- last lines of $f"; tail -n 15 "$f"; } >&2
    done
    exit 1
}

# Stops the registry and agent of an earlier run in DIR, and its PostgreSQL if a killed
# registry left it running.
stop_all() {
    local d=$1 name pid
    for name in agent registry; do
        [ -f "$d/$name.pid" ] || continue
        pid=$(cat "$d/$name.pid")
        if kill -0 "$pid" 2>/dev/null && grep -q "pylon-$name" "/proc/$pid/cmdline" 2>/dev/null; then
            kill -TERM "$pid"
            for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
        rm -f "$d/$name.pid"
    done
    local pgdata=$d/data/postgresql/data pg_ctl
    if [ -f "$pgdata/postmaster.pid" ] && kill -0 "$(head -n 1 "$pgdata/postmaster.pid")" 2>/dev/null; then
        pg_ctl=$(ls -d /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -n 1)
        if [ "$(id -u)" -eq 0 ]; then
            runuser -u postgres -- "$pg_ctl" stop -D "$pgdata" -m fast -s
        else
            "$pg_ctl" stop -D "$pgdata" -m fast -s
        fi
    fi
}

if [ "${1:-}" = --stop ]; then
    stop_all "$2"
    echo "quickstart: stopped the registry, the agent and PostgreSQL in $2"
    exit 0
fi
bin=$(cd "$1" && pwd)
dir=$2
stop_at_end=${3:-}
pylon=$bin/pylon

if [ -d "$dir" ]; then
    step "0. Starting over in $dir (the previous quickstart's processes are stopped)"
    stop_all "$dir"
    rm -rf "$dir"
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
data=$dir/data
export PYLON_CONFIG_DIR=$dir/cli   # the CLI's login, kept apart from yours

step "1. Start pylon-registry with only --data-dir: its own PostgreSQL cluster in data/postgresql"
(
    # Without a database URL or PG* variables, the registry runs its embedded cluster.
    unset PGHOST PGHOSTADDR PGPORT PGDATABASE PGSERVICE
    exec nohup "$bin/pylon-registry" --data-dir "$data" --listen 127.0.0.1:0 >"$dir/registry.log" 2>&1
) &
echo $! >"$dir/registry.pid"
port=
for _ in $(seq 600); do
    port=$(sed -n 's/.*registry listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$dir/registry.log")
    [ -n "$port" ] && break
    kill -0 "$(cat "$dir/registry.pid")" 2>/dev/null || die "pylon-registry did not start"
    sleep 0.1
done
[ -n "$port" ] || die "pylon-registry did not start listening"
url=http://127.0.0.1:$port
grep -E "embedded PostgreSQL|TUF repository created|admin token" "$dir/registry.log" |
    sed 's/^[^ ]* [a-z]* pylon-registry: /   /'
note "registry at $url"

step "2. Log in with the bootstrap admin token (the CLI pins the registry's TUF root)"
"$pylon" login --registry "$url" --token-file "$data/admin.token"

step "3. A publisher: a signing key, and namespace acme delegated to it in TUF"
"$pylon" key generate --out "$dir/acme"
"$pylon" namespace create acme --publisher-key "$dir/acme.pub" \
    --targets-key "$data/tuf/offline-keys/targets.key"
"$pylon" models create acme/stories260k --license MIT \
    --description "TinyStories 260K (Karpathy's tinyllamas), GGUF"

# publish VERSION X86_FILE ARM_FILE X86_QUANT ARM_QUANT: two builds, each with SLSA provenance
# and an OpenSSF model signature; the second publish signs the release's TUF targets.
publish() {
    local v=$1
    mkdir -p "$dir/builds/$v/x86" "$dir/builds/$v/arm"
    cp "$2" "$dir/builds/$v/x86/model.gguf"
    cp "$3" "$dir/builds/$v/arm/model.gguf"
    local common=(--format gguf --min-ram-mb 64 --key "$dir/acme.key" --quantizer llama.cpp
        --quantizer-version b4747
        --base-model-digest sha256:5a9d168bd9d9e29302e0d604e9a4c97184057ad87661cd7e7cc4318fdeba6d9c)
    "$pylon" publish "acme/stories260k@$v" --draft --build x86_64-avx2 --arch x86_64 --isa avx2 \
        --quantization "$4" --file "$dir/builds/$v/x86/model.gguf" "${common[@]}"
    "$pylon" publish "acme/stories260k@$v" --build aarch64-neon --arch aarch64 --isa neon \
        --quantization "$5" --file "$dir/builds/$v/arm/model.gguf" "${common[@]}"
}

step "4. Publish acme/stories260k@1.0.0: x86_64-avx2 (Q4_0) and aarch64-neon (Q8_0) builds"
publish 1.0.0 "$samples/stories260K-q4_0.gguf" "$samples/stories260K-q8_0.gguf" Q4_0 Q8_0
"$pylon" models show acme/stories260k --version 1.0.0

step "5. A device: fleet home, an enrolment token, this machine's pylon-agent enrolled"
"$pylon" fleet create home
"$pylon" fleet enrollment-token home --max-uses 1 --out "$dir/enrol.token"
"$bin/pylon-agent" enroll --registry "$url" --token-file "$dir/enrol.token" --name this-machine \
    --state-dir "$dir/agent"
cat >"$dir/agent.toml" <<EOF
# The quickstart's device agent (every option: deploy/config/agent.toml)
state_dir = "$dir/agent"
[update]
poll_interval_s = 5
long_poll_s = 25
[serve]
host = "127.0.0.1"
port = 0
model_id = "stories"
EOF
(exec nohup "$bin/pylon-agent" run --config "$dir/agent.toml" >"$dir/agent.log" 2>&1) &
echo $! >"$dir/agent.pid"
api=
for _ in $(seq 300); do
    api=$(sed -n 's/.*serving on \(http:\/\/127.0.0.1:[0-9]*\).*/\1/p' "$dir/agent.log" | head -n 1)
    [ -n "$api" ] && break
    kill -0 "$(cat "$dir/agent.pid")" 2>/dev/null || die "pylon-agent did not start"
    sleep 0.1
done
[ -n "$api" ] || die "pylon-agent does not serve"
note "pylon-agent runs; its OpenAI-compatible API is at $api (no model yet)"
"$pylon" devices list --fleet home

# rollout VERSION: a rollout in two waves (one canary device, then the rest), until it ends.
rollout() {
    local out id state=
    out=$("$pylon" rollout create "acme/stories260k@$1" --fleet home --waves 1,100%)
    echo "$out"
    id=$("$pylon" rollout list --fleet home | awk 'NR == 2 {print $1}')
    for _ in $(seq 1200); do
        state=$("$pylon" rollout status "$id" --json | sed -n 's/^  "state": "\([a-z_]*\)".*/\1/p')
        [ "$state" = running ] || [ "$state" = pending ] || break
        sleep 0.25
    done
    "$pylon" rollout status "$id"
    [ "$state" = completed ] || die "the rollout of $1 ended $state"
}

# ask: a completion from the device's local API, printed.
ask() {
    local answer
    answer=$(curl -fsS "$api/v1/completions" -H 'Content-Type: application/json' \
        -d '{"model":"stories","prompt":"Once upon a time","max_tokens":40,"temperature":0}') ||
        die "the device's API did not answer"
    note "curl $api/v1/completions  prompt: \"Once upon a time\""
    note "→ Once upon a time$(printf '%s' "$answer" | sed -n 's/.*"text":"\([^"]*\)".*/\1/p')"
}

# active VERSION: waits until the agent's API serves VERSION (the "serving:" line, written once
# the new model took over the API; the rollout counts the device a moment earlier).
active() {
    local status
    for _ in $(seq 300); do
        status=$("$bin/pylon-agent" status --state-dir "$dir/agent" 2>/dev/null) || true
        if printf '%s\n' "$status" | grep -q '^state: *healthy' &&
            printf '%s\n' "$status" | grep -q "^serving: *acme/stories260k/$1/"; then
            printf '%s\n' "$status" | sed 's/^/   /'
            return 0
        fi
        sleep 0.1
    done
    printf '%s\n' "$status"
    die "the agent does not serve $1"
}

step "6. Roll 1.0.0 out to fleet home; the agent verifies it through TUF, stages, health-checks, activates"
rollout 1.0.0
active 1.0.0

step "7. Ask the device: a completion from the agent's local API"
ask

step "8. Publish 1.1.0 (x86_64-avx2 now Q8_0) and roll it out; the API stays up during the switch"
publish 1.1.0 "$samples/stories260K-q8_0.gguf" "$samples/stories260K-q8_0.gguf" Q8_0 Q8_0
rollout 1.1.0
active 1.1.0
ask

step "9. Roll the fleet back: pylon rollback --fleet home"
"$pylon" rollback --fleet home
active 1.0.0
ask
"$pylon" rollout list --fleet home

step "Done"
cat <<EOF
   What happened: pylon-registry started its own PostgreSQL cluster in $data/postgresql,
   created its TUF repository (offline root and targets keys in $data/tuf/offline-keys) and
   an admin token ($data/admin.token). Release 1.0.0 of acme/stories260k was published with two
   builds, each signed (OpenSSF model signature) with SLSA provenance, under TUF targets signed by
   the acme publisher key. This machine's pylon-agent enrolled in fleet home, received 1.0.0
   through a rollout, verified and activated the build for its hardware, and answered on its
   OpenAI-compatible API. Release 1.1.0 rolled out the same way, and "pylon rollback" returned
   the fleet to 1.0.0.

   Look next:
     export PYLON_CONFIG_DIR=$dir/cli      # the CLI logged in to this registry
     $pylon rollout list --fleet home
     $pylon devices list --fleet home
     $pylon models show acme/stories260k --version 1.1.0
     curl $api/v1/models
     $bin/pylon-agent status --state-dir $dir/agent
     logs: $dir/registry.log, $dir/agent.log, $data/postgresql/postgresql.log
     docs: docs/ARCHITECTURE.md, docs/OPERATIONS.md (deploying for real: deploy/), docs/API.md
   Stop everything: ./deploy/quickstart.sh --stop   (running the quickstart again starts over)
EOF

if [ "$stop_at_end" = --stop-at-end ]; then
    stop_all "$dir"
    echo "   (stopped: --stop-at-end)"
fi
