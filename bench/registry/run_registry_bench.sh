#!/usr/bin/env bash
# Registry benchmarks: pylon-registry against nginx serving the same bytes on loopback.
#
#   pg_virtualenv -t -v 15 bench/registry/run_registry_bench.sh [BIN_DIR]
#
# BIN_DIR: the build's bin/ (default build/bin; pylon-registry is used). Needs PostgreSQL
# through the PG* variables (a database of its own is created and dropped), curl, openssl,
# wrk and nginx (installed with apt-get when missing and running as root).
#
# What is measured, in ROUNDS rounds; in each round the registry and nginx take turns, and the
# one that goes first alternates from round to round, so slow periods of a shared machine fall
# on both sides:
#  (a) small GETs, wrk -t2 -c32 -d10s --latency: GET /tuf/metadata/timestamp.json (no token)
#      and GET /v1/models/acme/tiny (read token), each against nginx serving a static file of
#      the same byte size;
#  (b) GET /v1/blobs/<digest> with If-None-Match: "<digest>" (read token) → 304, against nginx
#      with If-None-Match: <nginx's ETag of a file of the blob's size> → 304;
#  (c) download of a BLOB_MIB blob: curl -o /dev/null, registry /v1/blobs/<digest> against
#      nginx serving the same file;
#  (d) upload of a BLOB_MIB blob with hashing: curl -T FILE -X POST
#      /v1/namespaces/acme/uploads?digest=<digest> (monolithic; the registry hashes and writes
#      it, fsyncs and renames it into place). Each round uploads a different file (in the page
#      cache), so every round stores a new blob; `openssl dgst -sha256` over the same file is shown beside it
#      (the single-core hashing bound);
#  (e) the registry's VmRSS sampled from /proc/PID/status every 50 ms during each transfer of
#      (c) and (d), against its VmRSS just before; VmHWM at the end.
# Diagnostics, one run each: GET /healthz (no token, no database) and GET /v1/whoami (token check
# only), with the CPU used by the registry and by its PostgreSQL backends.
# Every response is checked once before measuring (status, size); wrk's non-2xx/3xx count must
# be 0. Output: per-round figures, medians, ratio registry/nginx, and PASS/FAIL against the
# targets (a, b ≥ 0.5× nginx requests/s; c ≥ 1 GB/s; d ≥ 700 MB/s; e growth < 64 MiB). Exit 0
# whether the targets pass or not; 2 when it cannot run.
#
# Environment: BENCH_ROUNDS (3), BENCH_WRK_SECONDS (10), BENCH_WRK_THREADS (2),
# BENCH_WRK_CONNECTIONS (32), BENCH_BLOB_MIB (2048), BENCH_WORK (scratch directory; default a
# new one under /tmp, removed at the end), BENCH_REGISTRY_ENV (extra VAR=VALUE words for the
# registry's environment, e.g. PYLON_REGISTRY_IO_THREADS=2).
# Units: MB/s = 10^6 bytes per second; 1 GB = 10^9 bytes; MiB = 2^20 bytes.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=$(cd "${1:-$repo/build/bin}" && pwd)
# shellcheck source-path=SCRIPTDIR/../../tests/registry_e2e
source "$repo/tests/registry_e2e/lib.sh"
e2e_skip() { echo "run_registry_bench.sh: cannot run: $*" >&2; exit 2; }
e2e_fail() { echo "run_registry_bench.sh: error: $*" >&2; exit 2; }

rounds=${BENCH_ROUNDS:-3}
wrk_seconds=${BENCH_WRK_SECONDS:-10}
wrk_threads=${BENCH_WRK_THREADS:-2}
wrk_conns=${BENCH_WRK_CONNECTIONS:-32}
blob_mib=${BENCH_BLOB_MIB:-2048}
blob_size=$((blob_mib * 1024 * 1024))

e2e_require_pg
[ -x "$bin/pylon-registry" ] || e2e_skip "$bin/pylon-registry is not built"
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || e2e_skip "install ${need[*]} (needs root)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" \
        >/dev/null || e2e_skip "apt-get install ${need[*]} failed"
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

if [ -n "${BENCH_WORK:-}" ]; then
    work=$BENCH_WORK
    mkdir -p "$work"
    keep_work=1
else
    work=$(mktemp -d /tmp/pylon-registry-bench.XXXXXX)
    keep_work=0
fi
chmod 0755 "$work"
nginx_pid=
sampler_pid=
cleanup() {
    [ -n "$sampler_pid" ] && kill "$sampler_pid" 2>/dev/null
    if [ -n "$nginx_pid" ]; then kill "$nginx_pid" 2>/dev/null; wait "$nginx_pid" 2>/dev/null; fi
    e2e_cleanup
    if [ "$keep_work" = 0 ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}'; }

# --- set-up -----------------------------------------------------------------------------------
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "== load average at start: $(cut -d' ' -f1-3 /proc/loadavg); $(date -u '+%F %T UTC')"
db=pylon_bench_$$
e2e_createdb "$db"
data=$work/data
# shellcheck disable=SC2086
registry_start "$data" "$db" ${BENCH_REGISTRY_ENV:-}
admin_token=$(cat "$data/admin.token")  # used by api_* in lib.sh
export admin_token
api_create_namespace acme
pub_token=$(api_create_token bench-publish publish:acme)
read_token=$(api_create_token bench-read read)
curl -sS -f -o /dev/null -X POST -H "Authorization: Bearer $pub_token" \
    -H 'Content-Type: application/json' \
    --data-binary '{"name": "tiny", "description": "benchmark model", "license": {"spdx": "MIT"}}' \
    "$registry_url/v1/namespaces/acme/models" || e2e_fail "creating acme/tiny"

# Deterministic blob files (AES-CTR keystream, one key per round).
make_blob() {  # FILE ROUND
    head -c "$blob_size" /dev/zero |
        openssl enc -aes-128-ctr -nosalt -K "$(printf '%032x' "$2")" \
            -iv 00000000000000000000000000000000 >"$1"
}
upload() {  # FILE DIGEST → prints "status speed_upload"
    curl -sS -o /dev/null -w '%{http_code} %{speed_upload}' -X POST -H 'Expect:' \
        -H "Authorization: Bearer $pub_token" -T "$1" \
        "$registry_url/v1/namespaces/acme/uploads?digest=$2"
}
sha_of() { openssl dgst -sha256 -r "$1" | cut -d' ' -f1; }

# nginx: the static twins of what the registry serves, on another loopback port.
www=$work/www
mkdir -p "$www" "$work/nginx"
curl -sS -f -o "$www/timestamp.json" "$registry_url/tuf/metadata/timestamp.json"
curl -sS -f -o "$www/model.json" -H "Authorization: Bearer $read_token" \
    "$registry_url/v1/models/acme/tiny"
nginx_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/nginx/nginx.conf" <<EOF
# Benchmark reference: static files, defaults otherwise (sendfile, ETag, keep-alive).
user root;
worker_processes auto;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    default_type application/octet-stream;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    server {
        listen 127.0.0.1:$nginx_port;
        root $www;
    }
}
EOF
"$nginx_bin" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" &
nginx_pid=$!
nginx_url=http://127.0.0.1:$nginx_port
for _ in $(seq 100); do curl -s -o /dev/null "$nginx_url/timestamp.json" && break; sleep 0.1; done

echo "== generating the ${blob_mib} MiB blob"
declare -a blob_file blob_hex
blob_file[1]=$work/blob-1.bin
make_blob "${blob_file[1]}" 1
blob_hex[1]=$(sha_of "${blob_file[1]}")
ln "${blob_file[1]}" "$www/blob.bin"
chmod 0644 "$www"/*

# --- checks before measuring ------------------------------------------------------------------
rauth=(-H "Authorization: Bearer $read_token")
same_size() {
    local a b
    a=$(curl -sS -f "${@:3}" "$1" | wc -c)
    b=$(curl -sS -f "$2" | wc -c)
    [ "$a" = "$b" ] || e2e_fail "$1 has $a bytes, $2 has $b"
    echo "$a"
}
ts_size=$(same_size "$registry_url/tuf/metadata/timestamp.json" "$nginx_url/timestamp.json")
model_size=$(same_size "$registry_url/v1/models/acme/tiny" "$nginx_url/model.json" "${rauth[@]}")
echo "== timestamp.json: $ts_size bytes; model JSON: $model_size bytes"

# --- wrk --------------------------------------------------------------------------------------
# Prints "requests_per_s p99_ms"; fails on socket errors or non-2xx/3xx answers.
wrk_run() {
    local out
    out=$(wrk -t"$wrk_threads" -c"$wrk_conns" -d"${wrk_seconds}s" --latency "$@")
    if grep -q 'Non-2xx or 3xx' <<<"$out"; then
        echo "$out" >&2
        e2e_fail "wrk saw error responses"
    fi
    local rps p99
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
              f = (u == "us") ? 0.001 : (u == "s") ? 1000 : (u == "m") ? 60000 : 1;
              printf "%.3f", v * f}' <<<"$out")
    echo "$rps $p99"
}

declare -A results
measure_pair() {  # KEY ROUND REGISTRY_WRK_ARGS... -- NGINX_WRK_ARGS...
    local key=$1 round=$2
    shift 2
    local reg=() ngx=() seen=0 a
    for a in "$@"; do
        if [ "$a" = -- ]; then seen=1; continue; fi
        if [ "$seen" = 0 ]; then reg+=("$a"); else ngx+=("$a"); fi
    done
    local first side
    if [ $((round % 2)) = 1 ]; then first=reg; else first=ngx; fi
    for side in "$first" $([ "$first" = reg ] && echo ngx || echo reg); do
        if [ "$side" = reg ]; then
            results[$key,reg,$round]=$(wrk_run "${reg[@]}")
        else
            results[$key,ngx,$round]=$(wrk_run "${ngx[@]}")
        fi
    done
    echo "  round $round $key: registry ${results[$key,reg,$round]} | nginx ${results[$key,ngx,$round]} (req/s p99_ms)"
}

# Blob for (b): the round-1 big blob, uploaded now (also a warm-up of the upload path).
echo "== uploading the (b)/(c) blob"
st=$(upload "${blob_file[1]}" "sha256:${blob_hex[1]}")
st=${st%% *}
[ "$st" = 201 ] || e2e_fail "uploading blob 1: $st"
etag_reg="\"sha256:${blob_hex[1]}\""
etag_ngx=$(curl -sS -I "$nginx_url/blob.bin" | awk -F': ' 'tolower($1) == "etag" {print $2}' | tr -d '\r')
[ -n "$etag_ngx" ] || e2e_fail "nginx sends no ETag"
st=$(curl -sS -o /dev/null -w '%{http_code}' "${rauth[@]}" -H "If-None-Match: $etag_reg" \
    "$registry_url/v1/blobs/sha256:${blob_hex[1]}")
[ "$st" = 304 ] || e2e_fail "registry If-None-Match answered $st"
st=$(curl -sS -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag_ngx" "$nginx_url/blob.bin")
[ "$st" = 304 ] || e2e_fail "nginx If-None-Match answered $st"

echo "== (a), (b): wrk -t$wrk_threads -c$wrk_conns -d${wrk_seconds}s --latency, $rounds rounds"
for r in $(seq "$rounds"); do
    measure_pair timestamp "$r" "$registry_url/tuf/metadata/timestamp.json" -- \
        "$nginx_url/timestamp.json"
    measure_pair model "$r" -H "Authorization: Bearer $read_token" \
        "$registry_url/v1/models/acme/tiny" -- "$nginx_url/model.json"
    measure_pair blob304 "$r" -H "Authorization: Bearer $read_token" \
        -H "If-None-Match: $etag_reg" "$registry_url/v1/blobs/sha256:${blob_hex[1]}" -- \
        -H "If-None-Match: $etag_ngx" "$nginx_url/blob.bin"
done

# Diagnostics (one run each, not a target): where the time of a small GET goes. /healthz has
# neither token nor database; /v1/whoami only checks the token (one PostgreSQL query). CPU
# seconds of the registry and of its PostgreSQL backends (the pids pg_stat_activity lists for
# its database) over the run, per second of wall time.
tck=$(getconf CLK_TCK)
cpu_ticks() {
    local t=0 p
    for p in "$@"; do
        if [ -r "/proc/$p/stat" ]; then t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); fi
    done
    echo "$t"
}
echo "== diagnostics: wrk -t$wrk_threads -c$wrk_conns -d${wrk_seconds}s, one run each"
for path in /healthz /v1/whoami; do
    mapfile -t backends < <(psql -X -At -d "$db" -c \
        "SELECT pid FROM pg_stat_activity WHERE datname = '$db' AND pid <> pg_backend_pid()")
    reg0=$(cpu_ticks "$registry_pid"); pg0=$(cpu_ticks "${backends[@]}")
    res=$(wrk_run -H "Authorization: Bearer $read_token" "$registry_url$path")
    reg1=$(cpu_ticks "$registry_pid"); pg1=$(cpu_ticks "${backends[@]}")
    awk -v p="$path" -v r="$res" -v a=$((reg1 - reg0)) -v b=$((pg1 - pg0)) -v t="$tck" \
        -v s="$wrk_seconds" -v n="${#backends[@]}" 'BEGIN {split(r, x, " ");
        printf "  %-12s %9.0f req/s, p99 %s ms; CPU: registry %.2f cores, PostgreSQL (%d backends) %.2f cores\n",
               p, x[1], x[2], a / t / s, n, b / t / s}'
done

# --- (c), (d), (e) ----------------------------------------------------------------------------
vm() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }  # kB
# Writes the largest VmRSS (kB) seen to FILE until killed.
sample_rss() {
    local pid=$1 out=$2 max=0 k v _
    while :; do
        while read -r k v _; do
            if [ "$k" = VmRSS: ]; then
                if [ "$v" -gt "$max" ]; then max=$v; echo "$max" >"$out"; fi
                break
            fi
        done <"/proc/$pid/status" || break
        sleep 0.05
    done
}
with_rss() {  # RESULT_VAR CMD... : runs CMD, sets RESULT_VAR to "before_kB peak_kB"
    local var=$1
    shift
    local before
    before=$(vm "$registry_pid" VmRSS)
    echo "$before" >"$work/rss.peak"
    sample_rss "$registry_pid" "$work/rss.peak" &
    sampler_pid=$!
    "$@"
    kill "$sampler_pid" 2>/dev/null
    wait "$sampler_pid" 2>/dev/null || true
    sampler_pid=
    printf -v "$var" '%s %s' "$before" "$(cat "$work/rss.peak")"
}
download() {  # URL [CURL_ARGS] → sets dl_result "bytes speed"
    dl_result=$(curl -sS -o /dev/null -w '%{size_download} %{speed_download}' "$@")
}

rss=
up_result=
upload_round() { up_result=$(upload "$f" "sha256:$hex"); }
echo "== (c) download, (d) upload of ${blob_mib} MiB blobs, $rounds rounds"
declare -a c_reg c_ngx d_reg d_sha rss_growth
for r in $(seq "$rounds"); do
    run_reg() {
        with_rss rss download "${rauth[@]}" "$registry_url/v1/blobs/sha256:${blob_hex[1]}"
        read -r bytes speed <<<"$dl_result"
        [ "$bytes" = "$blob_size" ] || e2e_fail "registry download gave $bytes bytes"
        c_reg[r]=$(awk -v s="$speed" 'BEGIN {printf "%.0f", s / 1e6}')
        read -r before peak <<<"$rss"
        rss_growth+=($((peak - before)))
        echo "    registry download: ${c_reg[r]} MB/s; VmRSS ${before} -> peak ${peak} kB"
    }
    run_ngx() {
        download "$nginx_url/blob.bin"
        read -r bytes speed <<<"$dl_result"
        [ "$bytes" = "$blob_size" ] || e2e_fail "nginx download gave $bytes bytes"
        c_ngx[r]=$(awk -v s="$speed" 'BEGIN {printf "%.0f", s / 1e6}')
        echo "    nginx download: ${c_ngx[r]} MB/s"
    }
    if [ $((r % 2)) = 1 ]; then run_reg; run_ngx; else run_ngx; run_reg; fi

    # (d): a new file each round (key r+1), so each upload stores a new blob.
    f=$work/upload-$r.bin
    make_blob "$f" $((r + 1))
    hex=$(sha_of "$f")
    cat "$f" >/dev/null  # in the page cache, as the download's source is
    t0=$(date +%s.%N)
    openssl dgst -sha256 "$f" >/dev/null
    t1=$(date +%s.%N)
    d_sha[r]=$(awk -v a="$t0" -v b="$t1" -v n="$blob_size" 'BEGIN {printf "%.0f", n / (b - a) / 1e6}')
    with_rss rss upload_round
    read -r st speed <<<"$up_result"
    [ "$st" = 201 ] || e2e_fail "upload round $r answered $st"
    d_reg[r]=$(awk -v s="$speed" 'BEGIN {printf "%.0f", s / 1e6}')
    read -r before peak <<<"$rss"
    rss_growth+=($((peak - before)))
    echo "    registry upload: ${d_reg[r]} MB/s (openssl dgst -sha256 of the file: ${d_sha[r]} MB/s); VmRSS ${before} -> peak ${peak} kB"
    rm -f "$f"
done
hwm=$(vm "$registry_pid" VmHWM)

# --- summary ----------------------------------------------------------------------------------
col() { local key=$1 side=$2 field=$3 r; for r in $(seq "$rounds"); do
    cut -d' ' -f"$field" <<<"${results[$key,$side,$r]}"; done; }
verdict() { awk -v v="$1" -v t="$2" 'BEGIN {print (v >= t) ? "PASS" : "FAIL"}'; }
echo
echo "== summary (medians of $rounds rounds)"
printf '%-34s %12s %12s %8s %10s %10s  %s\n' measurement registry nginx ratio "p99 reg" "p99 nginx" target
for key in timestamp model blob304; do
    rr=$(col "$key" reg 1 | median); nr=$(col "$key" ngx 1 | median)
    rp=$(col "$key" reg 2 | median); np=$(col "$key" ngx 2 | median)
    q=$(ratio "$rr" "$nr")
    printf '%-34s %12.0f %12.0f %8s %8sms %8sms  >= 0.5x nginx: %s\n' "($key) req/s" "$rr" "$nr" "$q" \
        "$rp" "$np" "$(verdict "$q" 0.5)"
done
cm=$(printf '%s\n' "${c_reg[@]}" | median); cn=$(printf '%s\n' "${c_ngx[@]}" | median)
printf '%-34s %12s %12s %8s %10s %10s  >= 1000 MB/s: %s\n' "(c) download MB/s" "$cm" "$cn" \
    "$(ratio "$cm" "$cn")" - - "$(verdict "$cm" 1000)"
dm=$(printf '%s\n' "${d_reg[@]}" | median); ds=$(printf '%s\n' "${d_sha[@]}" | median)
printf '%-34s %12s %12s %8s %10s %10s  >= 700 MB/s: %s\n' "(d) upload MB/s (vs sha256 CLI)" "$dm" "$ds" \
    "$(ratio "$dm" "$ds")" - - "$(verdict "$dm" 700)"
gmax=$(printf '%s\n' "${rss_growth[@]}" | sort -g | tail -n1)
printf '%-34s %12s kB (max over transfers); VmHWM at the end %s kB  < 65536 kB: %s\n' \
    "(e) VmRSS growth" "$gmax" "$hwm" "$( [ "$gmax" -lt 65536 ] && echo PASS || echo FAIL)"
echo "== load average at end: $(cut -d' ' -f1-3 /proc/loadavg); $(date -u '+%F %T UTC')"
