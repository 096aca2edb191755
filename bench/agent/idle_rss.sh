#!/usr/bin/env bash
# The agent's idle memory: a pylon-registry on its embedded PostgreSQL (TLS=1: with a
# self-signed P-256 certificate made with the openssl CLI), one device enrolled, `pylon-agent
# run` with nothing assigned (after its first cycle it waits in a long poll); after WARMUP
# seconds, VmRSS SAMPLES times 2 s apart, then PSS, private dirty and the largest mappings by
# RSS (/proc/PID/smaps). No PostgreSQL setup needed (the registry's embedded default).
#   PYLON_BIN=build-lead/bin [TLS=1] bench/agent/idle_rss.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="$(cd "${PYLON_BIN:-$ROOT/build/bin}" && pwd)"
TLS=${TLS:-0} WARMUP=${WARMUP:-6} SAMPLES=${SAMPLES:-5}
unset PGHOST PGHOSTADDR PGPORT PGDATABASE PGSERVICE
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
out=$(mktemp -d /tmp/pylon-idle.XXXXXX)
chmod 755 "$out"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$out"' EXIT
tls_env=() ca=() scheme=http
if [ "$TLS" = 1 ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=127.0.0.1 -addext "subjectAltName=IP:127.0.0.1" \
        -keyout "$out/key.pem" -out "$out/cert.pem" 2>/dev/null
    tls_env=(PYLON_REGISTRY_TLS_CERT="$out/cert.pem" PYLON_REGISTRY_TLS_KEY="$out/key.pem")
    ca=(--ca-file "$out/cert.pem") scheme=https
fi
env "${tls_env[@]}" "$BIN/pylon-registry" --data-dir "$out/data" --listen 127.0.0.1:0 \
    >"$out/registry.log" 2>&1 &
pids+=($!)
port=
for _ in $(seq 300); do
    port=$(sed -n 's/.*registry listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$out/registry.log")
    [ -n "$port" ] && break
    sleep 0.1
done
url=$scheme://127.0.0.1:$port
export PYLON_CONFIG_DIR=$out/cli
"$BIN/pylon" login --registry "$url" --token-file "$out/data/admin.token" "${ca[@]}" >/dev/null
"$BIN/pylon" fleet create edge >/dev/null
"$BIN/pylon" fleet enrollment-token edge --out "$out/enrol.token" >/dev/null
"$BIN/pylon-agent" enroll --registry "$url" --token-file "$out/enrol.token" --name dev-1 \
    --state-dir "$out/agent" "${ca[@]}" >/dev/null
{
    echo "state_dir = \"$out/agent\""
    echo "[update]"
    [ "$TLS" = 1 ] && echo "ca_file = \"$out/cert.pem\""
    echo "[serve]"
    echo "port = 0"
} >"$out/agent.toml"
"$BIN/pylon-agent" run --config "$out/agent.toml" >"$out/agent.log" 2>&1 &
d=$!
pids+=($d)
sleep "$WARMUP"
echo "registry: $url; agent pid $d ($(git -C "$ROOT" rev-parse --short HEAD))"
for _ in $(seq "$SAMPLES"); do
    awk '/^VmRSS:/ {print "VmRSS_kB", $2}' "/proc/$d/status"
    sleep 2
done
awk '/^(Pss|Private_Dirty|Private_Clean|Shared_Clean):/ {print $1, $2}' "/proc/$d/smaps_rollup"
echo "largest mappings by RSS (kB):"
awk '/^[0-9a-f]+-[0-9a-f]+ / {name = ($6 == "" ? "[anon]" : $6)} /^Rss:/ {rss[name] += $2}
     END {for (n in rss) printf "%8d %s\n", rss[n], n}' "/proc/$d/smaps" | sort -rn | head -12
