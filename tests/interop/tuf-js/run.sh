#!/usr/bin/env bash
# Interop between Pylon's TUF code and tuf-js (the npm TUF client and metadata library).
#
#   run.sh SOURCE_DIR WORK_DIR BIN_DIR
#
# SOURCE_DIR: this directory (package.json, package-lock.json, the scripts); WORK_DIR: a scratch
# directory in the build tree, where the pinned npm packages are installed with `npm ci` (only
# when the lock file changed since the last install; never into the source tree); BIN_DIR: the
# build's bin/ (pylon, pylon-tuf-client).
#
# 1. @tufjs/models writes a repository (make-repo.js: a root rotation, a delegation);
#    pylon-tuf-client init/refresh/download reads it from a loopback HTTP server (serve.js): the
#    top-level target, again (from cache, no request), and the delegated one.
# 2. `pylon tuf-repo` writes a repository (ECDSA P-256 targets key, a delegation, a root rotation
#    to threshold 2); the tuf-js Updater refreshes and downloads both targets (tuf-js-client.js).
# Exit 0: both passed; 77 (CTest "skipped"): node/npm missing, or `pylon tuf-repo` not built.
set -euo pipefail

if [ $# -ne 3 ]; then
    echo "usage: run.sh SOURCE_DIR WORK_DIR BIN_DIR" >&2
    exit 2
fi
src=$(cd "$1" && pwd)
mkdir -p "$2"
work=$(cd "$2" && pwd)
bin=$(cd "$3" && pwd)

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "run.sh: SKIP: node and npm are not installed (deploy/install-deps.sh installs them)"
    exit 77
fi
# Loopback only: never send the test's requests through a proxy.
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

cp "$src"/package.json "$src"/package-lock.json "$src"/*.js "$work"/
if ! cmp -s "$src/package-lock.json" "$work/.installed-lock.json"; then
    (cd "$work" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$src/package-lock.json" "$work/.installed-lock.json"
fi

server_pid=
stop_server() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=
    fi
}
trap stop_server EXIT

# Starts serve.js on DIR; sets $base to its URL. Requests are logged to DIR.requests.
start_server() {
    local dir=$1 port_file=$1.port
    rm -f "$port_file" "$dir.requests"
    node "$work/serve.js" "$dir" "$dir.requests" >"$port_file" &
    server_pid=$!
    for _ in $(seq 100); do
        if [ -s "$port_file" ]; then break; fi
        sleep 0.1
    done
    base="http://127.0.0.1:$(head -n1 "$port_file")"
}

fail() {
    echo "run.sh: FAIL: $*" >&2
    exit 1
}

# --- 1. tuf-js writes, Pylon reads ----------------------------------------------------------
echo "== @tufjs/models repository -> pylon-tuf-client"
t=$work/tufjs-to-pylon
rm -rf "$t"
mkdir -p "$t"
content="hello from @tufjs/models"
node "$work/make-repo.js" "$t/repo" models/hello.txt "$content"
start_server "$t/repo"
client=("$bin/pylon-tuf-client" --metadata-dir "$t/client/metadata")
"${client[@]}" init "$t/repo/trusted_root.json" || fail "pylon-tuf-client init"
"${client[@]}" --metadata-url "$base/metadata" refresh || fail "pylon-tuf-client refresh"
for role in root timestamp snapshot targets; do
    [ -f "$t/client/metadata/$role.json" ] || fail "no trusted $role.json after refresh"
done
download() {
    "${client[@]}" --metadata-url "$base/metadata" --target-name "$1" \
        --target-base-url "$base/targets" --target-dir "$t/client/targets" download
}
download models/hello.txt || fail "pylon-tuf-client download"
[ "$(cat "$t/client/targets/models%2Fhello.txt")" = "$content" ] ||
    fail "downloaded target differs"
node -e 'const md = JSON.parse(require("fs").readFileSync(process.argv[1]));
          process.exit(md.signed.version === 2 ? 0 : 1);' "$t/client/metadata/root.json" ||
    fail "root version 2 is not trusted"
target_requests() { grep -c '^/targets/' "$t/repo.requests" || true; }
before=$(target_requests)
download models/hello.txt || fail "pylon-tuf-client download (cached)"
[ "$(target_requests)" = "$before" ] || fail "a cached target was downloaded again"
download acme/delegated.txt || fail "pylon-tuf-client download (delegated target)"
[ "$(cat "$t/client/targets/acme%2Fdelegated.txt")" = "$content" ] ||
    fail "downloaded delegated target differs"
[ -f "$t/client/metadata/acme.json" ] || fail "no trusted acme.json"
stop_server
echo "ok"

# --- 2. Pylon writes, tuf-js reads ----------------------------------------------------------
echo "== pylon tuf-repo repository -> tuf-js"
if ! "$bin/pylon" tuf-repo init --help 2>/dev/null | grep -q "tuf-repo init"; then
    echo "run.sh: SKIP: pylon tuf-repo is not built yet"
    exit 77
fi
p=$work/pylon-to-tufjs
rm -rf "$p"
mkdir -p "$p"
printf 'model bytes from pylon\n' >"$p/model.bin"
keys=$p/keys
mkdir -p "$keys"
for k in root root2 snapshot timestamp acme; do
    "$bin/pylon" key generate --out "$keys/$k" >/dev/null || fail "pylon key generate"
done
"$bin/pylon" key generate --type ecdsa-p256 --out "$keys/targets" >/dev/null ||
    fail "pylon key generate"
repo=$p/repo
online=(--snapshot-key "$keys/snapshot.key" --timestamp-key "$keys/timestamp.key")
tuf_repo() { "$bin/pylon" tuf-repo "$@" >/dev/null || fail "pylon tuf-repo $1"; }
# Top-level target (ECDSA P-256 targets key), a delegated role with its own target, and a root
# rotation to version 2 with threshold 2: tuf-js walks the root chain and the delegation.
tuf_repo init "$repo" --root-key "$keys/root.key" --targets-key "$keys/targets.key" "${online[@]}"
tuf_repo add-target "$repo" "$p/model.bin" --path models/model.bin \
    --targets-key "$keys/targets.key" "${online[@]}"
tuf_repo delegate "$repo" --name acme --key "$keys/acme.pub" --paths 'acme/*' \
    --targets-key "$keys/targets.key" "${online[@]}"
tuf_repo add-target "$repo" "$p/model.bin" --path acme/model.bin --role acme \
    --key "$keys/acme.key"
tuf_repo snapshot "$repo" "${online[@]}"
tuf_repo rotate "$repo" --role root --add-key "$keys/root2.pub" --threshold 2 \
    --signing-key "$keys/root.key" --signing-key "$keys/root2.key" "${online[@]}"
[ -f "$repo/metadata/2.root.json" ] || fail "no 2.root.json after the root rotation"
node "$work/tuf-js-client.js" "$repo" "$repo/metadata/1.root.json" "$p/model.bin" \
    models/model.bin acme/model.bin || fail "tuf-js could not use the repository pylon wrote"
echo "ok"
