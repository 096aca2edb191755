#!/usr/bin/env bash
# Interop between `pylon serve` and the official `openai` npm client.
#
#   run.sh SOURCE_DIR WORK_DIR BIN_DIR MODEL
#
# SOURCE_DIR: this directory (package.json, package-lock.json, openai-client.mjs); WORK_DIR: a
# scratch directory in the build tree where the pinned openai package is installed with `npm ci`
# (only when the lock file changed since the last install; never into the source tree); BIN_DIR:
# the build's bin/ (pylon); MODEL: tests/data/runtime/stories260K-q8_0.gguf (its golden/ beside
# it holds llama.cpp's greedy continuation the client checks against).
#
# Starts `pylon serve` on a free loopback port, runs openai-client.mjs against it, then stops the
# server with SIGTERM and requires a clean exit.
# Exit 0: passed; 77 (CTest "skipped"): node/npm missing, or `pylon serve` not built.
set -euo pipefail

if [ $# -ne 4 ]; then
    echo "usage: run.sh SOURCE_DIR WORK_DIR BIN_DIR MODEL" >&2
    exit 2
fi
src=$(cd "$1" && pwd)
mkdir -p "$2"
work=$(cd "$2" && pwd)
bin=$(cd "$3" && pwd)
model=$(cd "$(dirname "$4")" && pwd)/$(basename "$4")

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "run.sh: SKIP: node and npm are not installed (deploy/install-deps.sh installs them)"
    exit 77
fi
if ! "$bin/pylon" serve --help >/dev/null 2>&1; then
    echo "run.sh: SKIP: pylon serve is not built"
    exit 77
fi
# Loopback only: never send the test's requests through a proxy.
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

cp "$src"/package.json "$src"/package-lock.json "$src"/*.mjs "$work"/
if ! cmp -s "$src/package-lock.json" "$work/.installed-lock.json"; then
    (cd "$work" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$src/package-lock.json" "$work/.installed-lock.json"
fi

fail() {
    echo "run.sh: FAIL: $*" >&2
    [ -f "$work/serve.log" ] && sed 's/^/  serve: /' "$work/serve.log" >&2
    exit 1
}

server_pid=
stop_server() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=
    fi
}
trap stop_server EXIT

"$bin/pylon" serve -m "$model" --port 0 -t 1 >"$work/serve.log" 2>&1 &
server_pid=$!
port=
for _ in $(seq 300); do
    port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$work/serve.log" | head -n1)
    [ -n "$port" ] && break
    kill -0 "$server_pid" 2>/dev/null || fail "pylon serve exited"
    sleep 0.1
done
[ -n "$port" ] || fail "pylon serve did not report its port"
base="http://127.0.0.1:$port"
# /health is 503 while the model loads, 200 when it is ready.
node -e '
    const url = process.argv[1] + "/health";
    (async () => {
        for (let i = 0; i < 300; i++) {
            try { if ((await fetch(url)).status === 200) return; } catch {}
            await new Promise((r) => setTimeout(r, 100));
        }
        process.exit(1);
    })();' "$base" || fail "/health did not become 200"

golden=$(dirname "$model")/golden/stories260K-q8_0.json
(cd "$work" && node openai-client.mjs "$base" "$golden") || fail "openai client checks"

kill -TERM "$server_pid"
status=0
wait "$server_pid" || status=$?
server_pid=
[ "$status" = 0 ] || fail "pylon serve exited with $status after SIGTERM"
grep -q "stopped" "$work/serve.log" || fail "no graceful stop in the log"
echo "ok"
