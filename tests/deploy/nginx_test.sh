#!/usr/bin/env bash
# deploy/nginx/pylon-registry.conf, as shipped (only its ports, certificate paths and server name
# replaced), in front of a real pylon-registry (embedded PostgreSQL): HTTP redirects to HTTPS;
# through TLS a publisher logs in, publishes (upload unbuffered) and pulls back verified; a
# device enrols, and its parked long poll is woken through the proxy when the operator assigns.
# Usage: nginx_test.sh BIN_DIR
set -euo pipefail
bin=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/tests/registry_e2e/lib.sh"  # registry_start (its fail() is replaced below)
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
unset PGHOST PGHOSTADDR PGPORT PGDATABASE PGSERVICE PGUSER PGPASSWORD
nginx=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$nginx" ] || { echo "nginx_test: SKIP: nginx is not installed"; exit 77; }
if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    echo "nginx_test: SKIP: running as root needs the postgres system user"; exit 77
fi
work=$(mktemp -d /tmp/pylon-nginx.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "nginx_test: FAIL: $*" >&2
    for f in "$work"/*.log; do echo "--- $f"; tail -n 15 "$f"; done >&2
    exit 1
}
export PYLON_CONFIG_DIR=$work/cli
pylon=$bin/pylon

# The registry on loopback, its own PostgreSQL.
registry_start "$work/data" embedded
pids+=("$registry_pid")
port=${registry_url##*:}

# A CA and a certificate for localhost / 127.0.0.1 (the openssl CLI, as an operator would).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=Pylon test CA" -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
    -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$work/san.ext"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
    -CAcreateserial -days 2 -extfile "$work/san.ext" -out "$work/server.pem" 2>/dev/null

# The shipped site file, adapted: loopback ports, this certificate, server name localhost.
start_nginx() {
    http_port=$((20000 + RANDOM % 20000))
    https_port=$((http_port + 1))
    sed -e "s|server 127.0.0.1:8080;|server 127.0.0.1:$port;|" \
        -e "/listen \[::\]/d" \
        -e "s|listen 80;|listen 127.0.0.1:$http_port;|" \
        -e "s|listen 443 ssl http2;|listen 127.0.0.1:$https_port ssl http2;|" \
        -e "s|/etc/ssl/certs/registry.example.com.pem|$work/server.pem|" \
        -e "s|/etc/ssl/private/registry.example.com.key|$work/server.key|" \
        -e "s|registry.example.com|localhost|" \
        "$root/deploy/nginx/pylon-registry.conf" >"$work/site.conf"
    grep -q "127.0.0.1:$port" "$work/site.conf" && grep -q "$work/server.pem" "$work/site.conf" ||
        fail "the shipped nginx example no longer has the expected upstream or certificate lines"
    mkdir -p "$work/nginx-tmp"
    cat >"$work/nginx.conf" <<CONF
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 256; }
http {
    access_log $work/nginx-access.log;
    client_body_temp_path $work/nginx-tmp/body;
    proxy_temp_path $work/nginx-tmp/proxy;
    fastcgi_temp_path $work/nginx-tmp/fastcgi;
    uwsgi_temp_path $work/nginx-tmp/uwsgi;
    scgi_temp_path $work/nginx-tmp/scgi;
    include $work/site.conf;
}
CONF
    "$nginx" -t -c "$work/nginx.conf" -p "$work" >"$work/nginx-t.log" 2>&1 || fail "nginx -t refused the example"
    "$nginx" -c "$work/nginx.conf" -p "$work" >"$work/nginx-start.log" 2>&1
}
for _ in 1 2 3 4 5; do
    if start_nginx; then break; fi
    grep -q "Address already in use" "$work/nginx-error.log" "$work/nginx-start.log" 2>/dev/null || fail "nginx did not start"
done
for _ in $(seq 50); do [ -s "$work/nginx.pid" ] && break; sleep 0.1; done
url=https://localhost:$https_port
curl -fsS --cacert "$work/ca.pem" "$url/readyz" >/dev/null || fail "readyz through nginx"

echo "-- plain HTTP is redirected to HTTPS (308, method kept)"
code=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "http://localhost:$http_port/v1/models")
[ "$code" = "308 https://localhost/v1/models" ] || fail "HTTP answered '$code'"

echo "-- publish and pull back through TLS"
"$pylon" login --registry "$url" --token-file "$work/data/admin.token" --ca-file "$work/ca.pem"
"$pylon" key generate --out "$work/acme" >/dev/null
"$pylon" namespace create acme --publisher-key "$work/acme.pub" \
    --targets-key "$work/data/tuf/offline-keys/targets.key" >/dev/null
"$pylon" models create acme/tiny --license MIT >/dev/null
mkdir -p "$work/model"
cp "$root/deploy/samples/stories260K-q8_0.gguf" "$work/model/model.gguf"
"$pylon" publish acme/tiny@1.0.0 --build cpu --arch "$(uname -m)" --min-ram-mb 16 --format gguf \
    --quantization Q8_0 --file "$work/model/model.gguf" --key "$work/acme.key" >/dev/null
"$pylon" pull acme/tiny@1.0.0 --target cpu --out "$work/pulled" >/dev/null
cmp "$work/pulled/model.gguf" "$work/model/model.gguf" || fail "pulled bytes differ"
grep -Eq "(POST|PATCH|PUT) /v1/namespaces/acme/uploads" "$work/nginx-access.log" ||
    fail "the upload did not go through nginx"

echo "-- a device enrols through TLS; its parked long poll is woken through the proxy"
"$pylon" fleet create edge >/dev/null
"$pylon" fleet enrollment-token edge --out "$work/enrol.token" >/dev/null
"$bin/pylon-agent" enroll --registry "$url" --token-file "$work/enrol.token" --name box \
    --state-dir "$work/agent" --ca-file "$work/ca.pem" >/dev/null
cat >"$work/agent.toml" <<CONF
state_dir = "$work/agent"
[update]
poll_interval_s = 300
long_poll_s = 50
ca_file = "$work/ca.pem"
[serve]
port = 0
threads = 1
CONF
"$bin/pylon-agent" run --config "$work/agent.toml" >"$work/agent.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    grep -q "GET /v1/device/director" "$work/nginx-access.log" && break
    sleep 0.1
done
sleep 2   # the agent has found nothing to do and parked a long poll at the registry
start=$(date +%s%N)
"$pylon" devices assign edge/box acme/tiny@1.0.0 >/dev/null
ok=
for _ in $(seq 150); do
    if "$bin/pylon-agent" status --state-dir "$work/agent" 2>/dev/null | grep -q "^slot a: *acme/tiny/1.0.0/"; then
        ok=1; break
    fi
    sleep 0.1
done
[ -n "$ok" ] || fail "the assignment did not reach the device within 15 s through nginx"
ms=$((($(date +%s%N) - start) / 1000000))
echo "   installed ${ms} ms after the assignment (the poll interval is 300 s: the long poll carried it)"
grep -q "GET /v1/device/director" "$work/nginx-access.log" || fail "the director was not polled through nginx"
echo "nginx_test: OK"
