#!/usr/bin/env bash
# Crash test of resumable uploads: SIGKILL the registry in the middle of a 1 GiB PATCH, restart
# it on the same data directory and database, and resume.
#
#   crash_upload_test.sh BIN_DIR WORK_DIR
#
# BIN_DIR: the build's bin/ (pylon-registry); WORK_DIR: scratch space in the build tree (the
# generated source file is kept there between runs, everything else is removed). Needs
# PostgreSQL through the PG* variables (pg_virtualenv -t -v 15 ...); a database of its own is
# created and dropped. E2E_BLOB_MIB sets the blob size (default 1024).
#
# Checks, in order:
#  1. a PATCH of the whole file (Content-Range 0-<size-1>, rate-limited by curl so that the kill
#     lands mid-body) is cut by SIGKILL once about half the bytes are in uploads/<id>/data;
#  2. after the restart: no file under blobs/blobs/ (nothing partial is visible),
#     GET /v1/blobs/<digest> is 404, the session's status Range is 0-<kept-1> where <kept> is the
#     data file's size (0 < kept < size), and those bytes are the file's prefix;
#  3. PATCH from <kept> (Content-Range <kept>-<size-1>) → 202 with Range 0-<size-1>, then
#     PUT ?digest= → 201; the blob downloads with the same SHA-256; the blobs table holds exactly
#     that digest with that size; the session directory is gone;
#  4. expiry: with PYLON_REGISTRY_UPLOAD_SESSION_IDLE_SECONDS=2 and
#     PYLON_REGISTRY_MAINTENANCE_INTERVAL_SECONDS=1, a session idle for 3 s answers 404 to GET and
#     PATCH, and the maintenance task removes its directory within 10 s more.
# Exit 0: passed; 1: failed; 77: skipped (no PostgreSQL, curl or openssl, or binaries missing).
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: crash_upload_test.sh BIN_DIR WORK_DIR" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR
source "$here/lib.sh"
bin=$(cd "$1" && pwd)
mkdir -p "$2"
cache=$(cd "$2" && pwd)

e2e_require_pg
command -v curl >/dev/null || e2e_skip "curl is not installed (deploy/install-deps.sh)"
command -v openssl >/dev/null || e2e_skip "the openssl CLI is not installed"
[ -x "$bin/pylon-registry" ] || e2e_skip "$bin/pylon-registry is not built"

work=$(mktemp -d "$cache/run.XXXXXX")
trap 'e2e_cleanup; rm -rf "$work"' EXIT

size=$((${E2E_BLOB_MIB:-1024} * 1024 * 1024))
src=$cache/blob-$size.bin
# Deterministic content (AES-CTR keystream of a fixed key), generated once per size.
if [ "$(stat -c %s "$src" 2>/dev/null || echo 0)" != "$size" ]; then
    head -c "$size" /dev/zero |
        openssl enc -aes-128-ctr -nosalt -K 000102030405060708090a0b0c0d0e0f \
            -iv 00000000000000000000000000000000 >"$src.tmp"
    mv "$src.tmp" "$src"
fi
hex=$(openssl dgst -sha256 -r "$src" | cut -d' ' -f1)
digest=sha256:$hex
echo "blob: $size bytes, $digest"

db=pylon_e2e_crash_$$
e2e_createdb "$db"
data=$work/data
registry_start "$data" "$db"
admin_token=$(cat "$data/admin.token")  # used by api_* in lib.sh
export admin_token
api_create_namespace acme
token=$(api_create_token crash-test publish:acme)
auth=(-H "Authorization: Bearer $token")

# --- 1. open a session, kill the registry mid-PATCH ------------------------------------------
status=$(http_status "$work/h" -X POST "${auth[@]}" "$registry_url/v1/namespaces/acme/uploads")
[ "$status" = 202 ] || e2e_fail "POST uploads: $status"
location=$(header_value "$work/h" Location)
id=${location##*/}
[ -n "$id" ] || e2e_fail "no Location in the POST answer"
part=$data/blobs/uploads/$id/data
[ -f "$part" ] || e2e_fail "no session data file at $part"

curl -sS -o /dev/null -X PATCH "${auth[@]}" -H "Content-Range: 0-$((size - 1))" \
    --limit-rate "${E2E_RATE:-128M}" -T "$src" "$registry_url$location" 2>"$work/curl.err" &
curl_pid=$!
half=$((size / 2))
killed=0
for _ in $(seq 6000); do  # up to 300 s
    if [ "$(stat -c %s "$part" 2>/dev/null || echo 0)" -ge "$half" ]; then
        registry_kill KILL
        killed=1
        break
    fi
    kill -0 "$curl_pid" 2>/dev/null || break
    sleep 0.05
done
if wait "$curl_pid"; then e2e_fail "the PATCH succeeded although the registry was killed"; fi
[ "$killed" = 1 ] || e2e_fail "the upload never reached half ($(cat "$work/curl.err"))"
echo "killed the registry (SIGKILL) at $(stat -c %s "$part") bytes on disk"

# --- 2. restart: nothing partial is visible, the session kept a prefix -----------------------
registry_start "$data" "$db"
leftovers=$(find "$data/blobs/blobs" -type f 2>/dev/null | head -n5)
[ -z "$leftovers" ] || e2e_fail "files under blobs/blobs after the crash: $leftovers"
status=$(http_status "$work/h" "${auth[@]}" "$registry_url/v1/blobs/$digest")
[ "$status" = 404 ] || e2e_fail "GET /v1/blobs/<digest> after the crash: $status, want 404"

status=$(http_status "$work/h" "${auth[@]}" "$registry_url$location")
[ "$status" = 204 ] || e2e_fail "GET session status after restart: $status"
kept=$(stat -c %s "$part")
if [ "$kept" -le 0 ] || [ "$kept" -ge "$size" ]; then e2e_fail "the session kept $kept bytes"; fi
range=$(header_value "$work/h" Range)
[ "$range" = "0-$((kept - 1))" ] || e2e_fail "status Range '$range', data file has $kept bytes"
cmp -s -n "$kept" "$src" "$part" || e2e_fail "the kept bytes are not a prefix of the file"
echo "after restart: session Range $range (kept $kept of $size bytes), no blob visible"

# --- 3. resume, complete, download, check the database ---------------------------------------
# The rest of the file, streamed from a pipe (chunked transfer), no second copy on disk.
status=$(tail -c "+$((kept + 1))" "$src" |
    http_status "$work/h" -X PATCH "${auth[@]}" -H "Content-Range: $kept-$((size - 1))" \
        -T - "$registry_url$location")
[ "$status" = 202 ] || e2e_fail "resuming PATCH: $status"
range=$(header_value "$work/h" Range)
[ "$range" = "0-$((size - 1))" ] || e2e_fail "Range after resuming: '$range'"
status=$(http_status "$work/h" -X PUT "${auth[@]}" -T /dev/null \
    "$registry_url$location?digest=$digest")
[ "$status" = 201 ] || e2e_fail "PUT ?digest=: $status"
[ "$(header_value "$work/h" Location)" = "/v1/blobs/$digest" ] || e2e_fail "PUT Location"
[ ! -e "$data/blobs/uploads/$id" ] || e2e_fail "the completed session's directory remains"

got=$(curl -sS -f "${auth[@]}" "$registry_url/v1/blobs/$digest" | openssl dgst -sha256 -r |
    cut -d' ' -f1)
[ "$got" = "$hex" ] || e2e_fail "downloaded blob has sha256 $got, want $hex"
rows=$(psql -X -At -d "$db" -c "SELECT digest || ' ' || size FROM blobs ORDER BY digest")
[ "$rows" = "$digest $size" ] || e2e_fail "blobs table: '$rows', want '$digest $size'"
echo "resumed and completed: download matches, blobs table has exactly $digest ($size bytes)"

# --- 4. idle sessions expire ------------------------------------------------------------------
registry_kill TERM
registry_start "$data" "$db" PYLON_REGISTRY_UPLOAD_SESSION_IDLE_SECONDS=2 \
    PYLON_REGISTRY_MAINTENANCE_INTERVAL_SECONDS=1
status=$(http_status "$work/h" -X POST "${auth[@]}" "$registry_url/v1/namespaces/acme/uploads")
[ "$status" = 202 ] || e2e_fail "POST uploads (expiry): $status"
location=$(header_value "$work/h" Location)
status=$(printf 'abc' | http_status "$work/h" -X PATCH "${auth[@]}" -H 'Content-Range: 0-2' \
    -H 'Content-Type: application/octet-stream' --data-binary @- "$registry_url$location")
[ "$status" = 202 ] || e2e_fail "PATCH (expiry): $status"
status=$(http_status "$work/h" "${auth[@]}" "$registry_url$location")
[ "$status" = 204 ] || e2e_fail "fresh session status: $status"
[ -d "$data/blobs/uploads/${location##*/}" ] || e2e_fail "no directory for the fresh session"
sleep 3  # the idle limit itself is what is tested: wait past it
status=$(http_status "$work/h" "${auth[@]}" "$registry_url$location")
[ "$status" = 404 ] || e2e_fail "session idle past its limit answers $status to GET, want 404"
status=$(printf 'def' | http_status "$work/h" -X PATCH "${auth[@]}" -H 'Content-Range: 3-5' \
    --data-binary @- "$registry_url$location")
[ "$status" = 404 ] || e2e_fail "session idle past its limit answers $status to PATCH, want 404"
for _ in $(seq 100); do
    [ -e "$data/blobs/uploads/${location##*/}" ] || break
    sleep 0.1
done
[ ! -e "$data/blobs/uploads/${location##*/}" ] ||
    e2e_fail "the maintenance task did not remove the expired session's directory"
echo "idle session expired (404 after 3 s with a 2 s limit) and its directory was removed"
echo "crash_upload_test.sh: PASS"
