#!/usr/bin/env bash
# Interop between a running pylon-registry's TUF repository and the tuf-js client.
#
#   registry_run.sh SOURCE_DIR WORK_DIR BIN_DIR
#
# SOURCE_DIR: this directory; WORK_DIR: scratch space in the build tree (its own `npm ci`, apart
# from run.sh's, so the two tests may run in parallel); BIN_DIR: the build's bin/
# (pylon-registry, pylon). Needs PostgreSQL through the PG* variables (pg_virtualenv); a database
# of its own is created and dropped.
#
# 1. pylon-registry starts on a fresh database and data directory (it bootstraps its TUF
#    repository; the offline keys are in DATA/tuf/offline-keys/).
# 2. With the pylon CLI: `namespace create acme` delegates acme/* to a new publisher key (signed
#    with the offline targets key), a publish token, `models create`, `publish` of one build
#    with one 1 MiB file.
# 3. registry_client.js (tuf-js Updater): trusts GET /tuf/metadata/1.root.json, refreshes from
#    /tuf/metadata/, finds acme/tiny/1.0.0/x86_64-q8_0/model.gguf through acme.json, downloads
#    it from /tuf/targets/ and compares its sha256 with the uploaded file.
# 4. One byte of the stored blob is flipped on disk: tuf-js must still verify the metadata but
#    refuse the download.
# Exit 0: passed; 1: failed; 77 (CTest "skipped"): node/npm, PostgreSQL or the CLI's registry
# commands missing.
set -euo pipefail

if [ $# -ne 3 ]; then
    echo "usage: registry_run.sh SOURCE_DIR WORK_DIR BIN_DIR" >&2
    exit 2
fi
src=$(cd "$1" && pwd)
mkdir -p "$2"
cache=$(cd "$2" && pwd)
bin=$(cd "$3" && pwd)
# shellcheck source-path=SCRIPTDIR/../../registry_e2e
source "$src/../../registry_e2e/lib.sh"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    e2e_skip "node and npm are not installed (deploy/install-deps.sh installs them)"
fi
e2e_require_pg
command -v curl >/dev/null || e2e_skip "curl is not installed (deploy/install-deps.sh)"
[ -x "$bin/pylon-registry" ] || e2e_skip "$bin/pylon-registry is not built"
for cmd in "namespace create" "models create" publish login; do
    # shellcheck disable=SC2086
    "$bin/pylon" $cmd --help >/dev/null 2>&1 || e2e_skip "pylon $cmd is not built yet"
done

cp "$src"/package.json "$src"/package-lock.json "$src"/registry_client.js "$cache"/
if ! cmp -s "$src/package-lock.json" "$cache/.installed-lock.json"; then
    (cd "$cache" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$src/package-lock.json" "$cache/.installed-lock.json"
fi

work=$(mktemp -d "$cache/run.XXXXXX")
trap 'e2e_cleanup; rm -rf "$work"' EXIT
export PYLON_CONFIG_DIR=$work/config  # the CLI's credentials and trusted root, not ~/.config

# --- 1. registry ------------------------------------------------------------------------------
db=pylon_tufjs_$$
e2e_createdb "$db"
data=$work/data
registry_start "$data" "$db"
admin=(--registry "$registry_url" --token-file "$data/admin.token")

# --- 2. namespace, delegation, publish --------------------------------------------------------
pylon() { "$bin/pylon" "$@" >>"$work/cli.log" 2>&1 || { cat "$work/cli.log" >&2; e2e_fail "pylon $1 $2"; }; }
pylon key generate --out "$work/acme"
pylon login "${admin[@]}"  # trusts the registry's root for the CLI's own TUF client
pylon namespace create acme --publisher-key "$work/acme.pub" \
    --targets-key "$data/tuf/offline-keys/targets.key" "${admin[@]}"
pylon token create --name publisher --scope publish:acme --out "$work/publish.token" "${admin[@]}"
pub=(--registry "$registry_url" --token-file "$work/publish.token")
pylon login "${pub[@]}"
pylon models create acme/tiny --license MIT "${pub[@]}"
mkdir -p "$work/build"
head -c $((1024 * 1024)) /dev/urandom >"$work/build/model.gguf"
pylon publish acme/tiny@1.0.0 --build x86_64-q8_0 --arch x86_64 --min-ram-mb 64 \
    --format gguf --quantization Q8_0 --file "$work/build/model.gguf" --key "$work/acme.key" \
    "${pub[@]}"
target=acme/tiny/1.0.0/x86_64-q8_0/model.gguf
echo "published $target on $registry_url"

# --- 3. tuf-js refreshes, finds the target through acme.json, downloads it --------------------
node "$cache/registry_client.js" "$registry_url" "$work/build/model.gguf" "$target" ||
    e2e_fail "tuf-js could not verify and download $target from the registry"

# --- 4. tampered bytes on the server are refused ----------------------------------------------
hex=$(sha256sum "$work/build/model.gguf" | cut -d' ' -f1)
blob=$data/blobs/blobs/sha256/${hex:0:2}/$hex
[ -f "$blob" ] || e2e_fail "no stored blob at $blob"
chmod u+w "$blob"
byte=$(od -An -tx1 -j 4096 -N 1 "$blob" | tr -d ' ')
if [ "$byte" = ff ]; then flip='\x00'; else flip='\xff'; fi
printf '%b' "$flip" | dd of="$blob" bs=1 seek=4096 conv=notrunc status=none
cmp -s "$blob" "$work/build/model.gguf" && e2e_fail "the stored blob did not change"
node "$cache/registry_client.js" "$registry_url" "$work/build/model.gguf" "$target" \
    --expect-download-failure || e2e_fail "tuf-js accepted a tampered target"
echo "registry_run.sh: PASS"
