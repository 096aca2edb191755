#!/usr/bin/env bash
# The agent's idle memory over HTTPS: a pylon-registry with a self-signed P-256 certificate
# (openssl CLI), one device enrolled with --ca-file, `pylon-agent run` with nothing assigned
# (after its first cycle it waits in a long poll over TLS); VmRSS 3 times 2 s apart after 6 s,
# then PSS and private dirty pages. Run under pg_virtualenv:
#   PYLON_BIN=build-lead/bin pg_virtualenv -t -v 15 bench/agent/idle_tls.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="${PYLON_BIN:-$ROOT/build/bin}"
OUT="${OUT:-$ROOT/build/bench-agent-tls}"
rm -rf $OUT; mkdir -p $OUT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
  -addext "subjectAltName=IP:127.0.0.1" -keyout $OUT/key.pem -out $OUT/cert.pem 2>/dev/null
source "$ROOT/tests/registry_e2e/lib.sh"
bin=$BIN work=$OUT
db="rss_$$"; e2e_createdb "$db"; trap e2e_cleanup EXIT
data=$OUT/data
export PYLON_CONFIG_DIR=$OUT/config
registry_start "$data" "$db" PYLON_REGISTRY_TLS_CERT=$OUT/cert.pem PYLON_REGISTRY_TLS_KEY=$OUT/key.pem
url=${registry_url/http:/https:}
pylon=$BIN/pylon
"$pylon" login --registry "$url" --token-file "$data/admin.token" --ca-file $OUT/cert.pem >/dev/null
"$pylon" fleet create edge >/dev/null
"$pylon" fleet enrollment-token edge --out "$OUT/enrol.token" >/dev/null
"$BIN/pylon-agent" enroll --registry "$url" --token-file "$OUT/enrol.token" --name dev-1 \
    --state-dir $OUT/agent --ca-file $OUT/cert.pem >/dev/null
cat > $OUT/agent.toml <<TOML
state_dir = "$OUT/agent"
[update]
poll_interval_s = 1
ca_file = "$OUT/cert.pem"
[serve]
port = 0
TOML
"$BIN/pylon-agent" run --config $OUT/agent.toml >$OUT/idle.log 2>&1 &
d=$!
sleep 6
for i in 1 2 3; do grep -E "VmRSS" /proc/$d/status; sleep 2; done
awk '/^Pss:/ {print "Pss", $2}' /proc/$d/smaps_rollup
awk '/^Private_Dirty:/ {print "Private_Dirty", $2}' /proc/$d/smaps_rollup
kill -TERM $d; wait $d || true
